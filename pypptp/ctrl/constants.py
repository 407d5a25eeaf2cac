"""PPTP control-channel constants (RFC 2637 section 1.4, 2.1-2.16).

Every number that appears on the wire lives here, as an enum where the RFC
gives the values names.  Byte order is handled only in :mod:`pypptp.ctrl.messages`.
"""

from __future__ import annotations

import enum

__all__ = [
    "HEADER_SIZE",
    "MAGIC_COOKIE",
    "PPTP_PORT",
    "PROTOCOL_VERSION",
    "BearerCapability",
    "BearerType",
    "ControlMessageType",
    "DisconnectResult",
    "EchoResult",
    "FramingCapability",
    "FramingType",
    "GeneralError",
    "IncomingCallResult",
    "OutgoingCallResult",
    "PptpMessageType",
    "StartResult",
    "StopReason",
    "StopResult",
]


PPTP_PORT = 1723
"""TCP port of the control connection (RFC 2637 section 1.4)."""

MAGIC_COOKIE = 0x1A2B3C4D
"""Magic Cookie carried by every control message (RFC 2637 section 1.4)."""

PROTOCOL_VERSION = 0x0100
"""Version 1, revision 0: the only PPTP version that exists (RFC 2637 section 2.1)."""

HEADER_SIZE = 12
"""Length, PPTP Message Type, Magic Cookie, Control Message Type, Reserved0."""


class PptpMessageType(enum.IntEnum):
    """PPTP Message Type field (RFC 2637 section 1.4)."""

    CONTROL = 1
    MANAGEMENT = 2  # defined by the RFC, but no management message exists


class ControlMessageType(enum.IntEnum):
    """Control Message Type field (RFC 2637 section 1.4)."""

    START_CONTROL_CONNECTION_REQUEST = 1
    START_CONTROL_CONNECTION_REPLY = 2
    STOP_CONTROL_CONNECTION_REQUEST = 3
    STOP_CONTROL_CONNECTION_REPLY = 4
    ECHO_REQUEST = 5
    ECHO_REPLY = 6
    OUTGOING_CALL_REQUEST = 7
    OUTGOING_CALL_REPLY = 8
    INCOMING_CALL_REQUEST = 9
    INCOMING_CALL_REPLY = 10
    INCOMING_CALL_CONNECTED = 11
    CALL_CLEAR_REQUEST = 12
    CALL_DISCONNECT_NOTIFY = 13
    WAN_ERROR_NOTIFY = 14
    SET_LINK_INFO = 15


class GeneralError(enum.IntEnum):
    """General Error Codes, the Error Code octet (RFC 2637 section 2.16)."""

    NONE = 0
    NOT_CONNECTED = 1
    BAD_FORMAT = 2
    BAD_VALUE = 3
    NO_RESOURCE = 4
    BAD_CALL_ID = 5
    PAC_ERROR = 6


class StartResult(enum.IntEnum):
    """Start-Control-Connection-Reply Result Code (RFC 2637 section 2.2)."""

    SUCCESS = 1
    GENERAL_ERROR = 2
    ALREADY_EXISTS = 3
    NOT_AUTHORIZED = 4
    BAD_PROTOCOL_VERSION = 5


class StopReason(enum.IntEnum):
    """Stop-Control-Connection-Request Reason (RFC 2637 section 2.3).

    accel-ppp sends 0, which the RFC does not define; we accept it as
    ``UNSPECIFIED`` so that such a peer can still stop cleanly.
    """

    UNSPECIFIED = 0
    NONE = 1
    STOP_PROTOCOL = 2
    STOP_LOCAL_SHUTDOWN = 3


class StopResult(enum.IntEnum):
    """Stop-Control-Connection-Reply Result Code (RFC 2637 section 2.4)."""

    OK = 1
    GENERAL_ERROR = 2


class EchoResult(enum.IntEnum):
    """Echo-Reply Result Code (RFC 2637 section 2.6)."""

    OK = 1
    GENERAL_ERROR = 2


class OutgoingCallResult(enum.IntEnum):
    """Outgoing-Call-Reply Result Code (RFC 2637 section 2.8)."""

    CONNECTED = 1
    GENERAL_ERROR = 2
    NO_CARRIER = 3
    BUSY = 4
    NO_DIAL_TONE = 5
    TIME_OUT = 6
    DO_NOT_ACCEPT = 7


class IncomingCallResult(enum.IntEnum):
    """Incoming-Call-Reply Result Code (RFC 2637 section 2.10)."""

    CONNECT = 1
    GENERAL_ERROR = 2
    DO_NOT_ACCEPT = 3


class DisconnectResult(enum.IntEnum):
    """Call-Disconnect-Notify Result Code (RFC 2637 section 2.13)."""

    LOST_CARRIER = 1
    GENERAL_ERROR = 2
    ADMIN_SHUTDOWN = 3
    REQUEST = 4


class FramingCapability(enum.IntFlag):
    """Framing Capabilities bit mask (RFC 2637 section 2.1); unknown bits are kept."""

    ASYNC = 0x1
    SYNC = 0x2


class BearerCapability(enum.IntFlag):
    """Bearer Capabilities bit mask (RFC 2637 section 2.1); unknown bits are kept."""

    ANALOG = 0x1
    DIGITAL = 0x2


class BearerType(enum.IntEnum):
    """Bearer Type of an Outgoing-Call-Request (RFC 2637 section 2.7)."""

    ANALOG = 1
    DIGITAL = 2
    ANY = 3


class FramingType(enum.IntEnum):
    """Framing Type of an Outgoing-Call-Request (RFC 2637 section 2.7)."""

    ASYNC = 1
    SYNC = 2
    ANY = 3
