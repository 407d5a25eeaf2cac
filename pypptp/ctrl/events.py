"""What a :class:`~pypptp.ctrl.connection.ControlConnection` reports to its owner.

Events are plain frozen dataclasses.  ``ControlConnectionClosed`` is always
the last event of a connection: the owner flushes what is left to send and
closes the TCP connection.
"""

from __future__ import annotations

import dataclasses
import enum

from pypptp.ctrl.constants import DisconnectResult, GeneralError
from pypptp.ctrl.messages import (
    ControlMessage,
    SetLinkInfo,
    StartControlConnectionReply,
    StartControlConnectionRequest,
    WanErrorNotify,
)

__all__ = [
    "Call",
    "CallCleared",
    "CallEstablished",
    "CallRefused",
    "CallState",
    "ControlConnectionClosed",
    "ControlConnectionEstablished",
    "EchoAnswered",
    "Event",
    "ProtocolAnomaly",
    "SetLinkInfoReceived",
    "StartRefused",
    "WanErrorReceived",
]


class CallState(enum.Enum):
    """A call's state (RFC 2637 section 3.2.4).  A VPN server has nothing to
    dial, so its calls go straight from idle to established."""

    WAIT_REPLY = "wait-reply"  # PNS: OCRQ sent, no OCRP yet
    ESTABLISHED = "established"
    WAIT_DISCONNECT = "wait-disconnect"  # PNS: CCRQ sent, no CDN yet
    CLEARED = "cleared"


@dataclasses.dataclass(eq=False)
class Call:
    """One call (one PPP session) on a control connection.

    ``call_id`` is ours: the peer puts it in every GRE packet it sends us.
    ``peer_call_id`` is the peer's: we put it in every GRE packet we send.
    """

    call_id: int
    peer_call_id: int | None
    serial_number: int
    state: CallState
    peer_window: int = 0
    peer_processing_delay: int = 0
    connect_speed: int = 0
    send_accm: int = 0xFFFFFFFF
    receive_accm: int = 0xFFFFFFFF
    deadline: float | None = None


class Event:
    """Base class of everything a control connection reports."""

    __slots__ = ()


@dataclasses.dataclass(frozen=True)
class ControlConnectionEstablished(Event):
    """SCCRQ answered with success (server) or SCCRP with success received (client)."""

    peer_start: StartControlConnectionRequest | StartControlConnectionReply


@dataclasses.dataclass(frozen=True)
class StartRefused(Event):
    """Client side: the server's SCCRP refused the control connection."""

    result_code: int
    error_code: GeneralError


@dataclasses.dataclass(frozen=True)
class CallEstablished(Event):
    """A call is up: GRE may flow with ``call.call_id`` / ``call.peer_call_id``."""

    call: Call


@dataclasses.dataclass(frozen=True)
class CallRefused(Event):
    """An OCRQ was answered with a failure (we refused it, or the peer did)."""

    peer_call_id: int
    result_code: int
    error_code: GeneralError
    by_peer: bool


@dataclasses.dataclass(frozen=True)
class CallCleared(Event):
    """A call ended; its Call ID has been released."""

    call: Call
    result_code: DisconnectResult
    by_peer: bool
    reason: str


@dataclasses.dataclass(frozen=True)
class SetLinkInfoReceived(Event):
    """Set-Link-Info for one of our calls; ACCMs mean nothing on GRE (RFC 2637 section 2.15)."""

    call: Call
    message: SetLinkInfo


@dataclasses.dataclass(frozen=True)
class WanErrorReceived(Event):
    """WAN-Error-Notify for one of our calls (client side, RFC 2637 section 2.14)."""

    call: Call
    message: WanErrorNotify


@dataclasses.dataclass(frozen=True)
class EchoAnswered(Event):
    """The peer answered our Echo-Request."""

    identifier: int
    round_trip: float


@dataclasses.dataclass(frozen=True)
class ProtocolAnomaly(Event):
    """The peer did something wrong that we tolerated (an owner logs it, boundedly).

    ``description`` says what happened, with the details (Call IDs...); ``reason`` names the kind
    without them, a small fixed set of strings, so that an owner can count repeats per reason and log
    each reason once.  A connection that meets too many anomalies stops itself
    (:attr:`~pypptp.ctrl.connection.ControlConfig.max_anomalies`)."""

    description: str
    message: ControlMessage | None = None
    reason: str = ""
    """The kind, without details; the description when not given."""

    def __post_init__(self) -> None:
        if not self.reason:
            object.__setattr__(self, "reason", self.description)


@dataclasses.dataclass(frozen=True)
class ControlConnectionClosed(Event):
    """The connection is finished: flush pending bytes and close TCP."""

    reason: str
    by_peer: bool
