"""RADIUS accounting records (RFC 2866, RFC 2869) built from a session: Start, Interim-Update and Stop.

This module only builds records; the RADIUS client sends them (pyrad encodes each ``(name, value)``
pair through the shipped dictionary, :func:`pypptp.aaa.load_dictionary`).  A record is a plain list of
``(attribute name, value)`` pairs rather than a mapping because RADIUS repeats attributes (``Class``
comes back once per value the Access-Accept carried, in its order, RFC 2865 section 5.25).  Values are
what pyrad's encoder takes: ``str`` for strings, addresses and the named values of enumerated
attributes (``Start``, ``Virtual``, ``Lost-Carrier``: the shipped dictionary's VALUE names, which read
well in a log line), ``int`` for counters and dates, ``bytes`` for octets.

What a record says, and why:

* ``Acct-Session-Id`` (:class:`SessionIds`): unique per session and per daemon start, so that the
  server's detail file and SQL rows (keyed by NAS and Acct-Session-Id) never merge two sessions;
* ``NAS-IP-Address`` and/or ``NAS-Identifier`` (:class:`Nas`, at least one, RFC 2865 section 5.4/5.32);
  ``NAS-Port`` is the ``pppN`` unit and ``NAS-Port-Id`` its name, ``NAS-Port-Type`` Virtual (5: a PPTP call
  has no physical port), ``Service-Type`` Framed and ``Framed-Protocol`` PPP, as pppd's radius plugin
  sends them;
* ``Calling-Station-Id`` is the client's public address (the one its TCP connection came from),
  ``Called-Station-Id`` ours, the address it connected to (RFC 2865 section 5.30/5.31, for a
  tunnel: where the call came from and went to);
* ``Acct-Input-*`` count what came *from* the client, ``Acct-Output-*`` what went to it (RFC 2866
  sections 5.3/5.4: input is what the NAS received on the port); octets are 64-bit, split into the low
  32 bits and ``Acct-*-Gigawords`` (RFC 2869 section 5.1/5.2, how many times the 32-bit counter
  wrapped); packet counters have no Gigawords and wrap at 2^32;
* ``Acct-Terminate-Cause`` (Stop) is :func:`terminate_cause` of how the session ended.
"""

from __future__ import annotations

import dataclasses
import enum
import os
import time
from collections.abc import Sequence
from ipaddress import IPv4Address

__all__ = [
    "END_CAUSES",
    "AccountingSession",
    "AcctAuthentic",
    "AcctStatusType",
    "Attributes",
    "Counters",
    "Nas",
    "SessionIds",
    "TerminateCause",
    "interim_record",
    "start_record",
    "stop_record",
    "terminate_cause",
]

Attributes = list[tuple[str, str | int | bytes]]
"""An accounting record: (attribute name, value) pairs in the order they go on the wire."""

_U32 = 0xFFFFFFFF


class AcctStatusType(enum.IntEnum):
    """RFC 2866 section 5.1."""

    START = 1
    STOP = 2
    INTERIM_UPDATE = 3

    @property
    def label(self) -> str:
        """The dictionary's VALUE name (``Interim-Update``)."""
        return _label(self.name)


class AcctAuthentic(enum.IntEnum):
    """RFC 2866 section 5.6: who authenticated the user (RADIUS, or the NAS itself: chap-secrets)."""

    RADIUS = 1
    LOCAL = 2
    REMOTE = 3

    @property
    def label(self) -> str:
        """The dictionary's VALUE name (``RADIUS``, ``Local``)."""
        return "RADIUS" if self is AcctAuthentic.RADIUS else _label(self.name)


class TerminateCause(enum.IntEnum):
    """Acct-Terminate-Cause, RFC 2866 section 5.10."""

    USER_REQUEST = 1
    LOST_CARRIER = 2
    LOST_SERVICE = 3
    IDLE_TIMEOUT = 4
    SESSION_TIMEOUT = 5
    ADMIN_RESET = 6
    ADMIN_REBOOT = 7
    PORT_ERROR = 8
    NAS_ERROR = 9
    NAS_REQUEST = 10
    NAS_REBOOT = 11
    PORT_UNNEEDED = 12
    PORT_PREEMPTED = 13
    PORT_SUSPENDED = 14
    SERVICE_UNAVAILABLE = 15
    CALLBACK = 16
    USER_ERROR = 17
    HOST_REQUEST = 18

    @property
    def label(self) -> str:
        """The dictionary's VALUE name (``Lost-Carrier``, ``NAS-Error``)."""
        return _label(self.name)


def _label(name: str) -> str:
    """``NAS_ERROR`` -> ``NAS-Error``, ``INTERIM_UPDATE`` -> ``Interim-Update``."""
    return "-".join(word if word == "NAS" else word.capitalize() for word in name.split("_"))


_C = TerminateCause
END_CAUSES: tuple[tuple[str, TerminateCause], ...] = (
    # the administrator: pypptpctl terminate (manager.ADMIN_REASON), a RADIUS Disconnect-Request
    # (dae.DISCONNECT_REASON), SIGTERM (the daemon stops: RFC 2866's "ending service on the NAS")
    ("terminated by admin", _C.ADMIN_RESET),
    ("disconnect-request", _C.ADMIN_RESET),
    ("shutting down", _C.ADMIN_REBOOT),
    # the user hung up: its LCP Terminate-Request, or the PPTP call or control connection it cleared
    ("lcp terminated by peer", _C.USER_REQUEST),
    ("call cleared: ccrq received", _C.USER_REQUEST),
    ("call cleared: cdn", _C.USER_REQUEST),
    ("call cleared: peer sent stopccrq", _C.USER_REQUEST),
    # the client went away without a word: TCP FIN or RST, no Echo-Reply on the control connection,
    # no LCP Echo-Reply (lcp-echo-failure)
    ("call cleared: tcp connection", _C.LOST_CARRIER),
    ("call cleared: no echo-reply", _C.LOST_CARRIER),
    ("peer not responding", _C.LOST_CARRIER),
    # pppd's limits (idle, maxconnect; RADIUS Session-Timeout and Idle-Timeout set the same ones)
    ("idle timeout", _C.IDLE_TIMEOUT),
    ("connect time expired", _C.SESSION_TIMEOUT),
    # the port (the call, its control connection, its pppN device) failed
    ("call cleared: malformed control message", _C.PORT_ERROR),
    ("protocol anomalies", _C.PORT_ERROR),
    ("a call got no reply", _C.PORT_ERROR),
    ("renegotiated more than", _C.PORT_ERROR),
    ("network interface", _C.PORT_ERROR),
    # negotiation failed or the service cannot be given: MPPE, no NCP, no address, the limit
    ("mppe", _C.SERVICE_UNAVAILABLE),
    ("no network protocol", _C.SERVICE_UNAVAILABLE),
    ("no agreement", _C.SERVICE_UNAVAILABLE),
    ("connection limit", _C.SERVICE_UNAVAILABLE),
    ("no address", _C.SERVICE_UNAVAILABLE),
    ("in use by another session", _C.SERVICE_UNAVAILABLE),
    # the user's input (name, password) was refused: no Start was sent for such a session
    ("authentication failed", _C.USER_ERROR),
    ("refused to authenticate", _C.USER_ERROR),
    # the NAS ended it for its own reasons
    ("ip addresses changed", _C.NAS_REQUEST),
    ("call cleared: stopccrq sent", _C.NAS_REQUEST),
    ("no stopccrp", _C.NAS_REQUEST),
    ("cleared locally", _C.NAS_REQUEST),
    ("stopped locally", _C.NAS_REQUEST),
    ("could not be started", _C.NAS_ERROR),
    ("internal error", _C.NAS_ERROR),
)
"""Substrings of the end reasons the daemon logs (``session ended: REASON``), lowercased, each with its
cause; the first that matches wins (:func:`terminate_cause`)."""


def terminate_cause(reason: str) -> TerminateCause:
    """The Acct-Terminate-Cause of a session that ended for ``reason``.

    ``reason`` is the first reason the link was closed for, else the session's (the text
    :func:`pypptp.daemon.stats.end_label` reads: ``link.close_reason or reason``): a peer's LCP
    Terminate-Request followed by its Call-Clear-Request is the user's request, not the clear that
    came after it.  An unknown reason is NAS-Error: something ended the session that this table
    does not know, which the accounting server should see as the NAS's doing."""
    lowered = reason.lower()
    for pattern, cause in END_CAUSES:
        if pattern in lowered:
            return cause
    return TerminateCause.NAS_ERROR


class SessionIds:
    """Acct-Session-Id values: ``SSSSSSSSPPPPPPCCCCCCCC`` (22 hex digits).

    ``S`` is this process's start time (Unix seconds), ``P`` its process id, ``C`` a counter of the
    sessions it started.  The counter keeps the ids of one process apart; the process's start time
    and id keep apart the processes of one NAS: a restarted daemon (its counter starts again at 1;
    a restart within the same second has another pid) and the ``--workers`` processes running side
    by side (same start second, each its own counter, different pids).  The ``pppN`` unit is not
    part of it: units are reused as soon as a session ends, so it would add nothing unique (it is
    in NAS-Port).  Different NASes are told apart by NAS-IP-Address/NAS-Identifier, which RADIUS
    servers key accounting on together with this id.  Opaque, fixed length and plain ASCII, as
    RFC 2866 section 5.5 asks of a string the server only compares."""

    def __init__(self, started: float | None = None, pid: int | None = None) -> None:
        self.prefix = f"{int(time.time() if started is None else started) & _U32:08X}"
        self.prefix += f"{(os.getpid() if pid is None else pid) & 0xFFFFFF:06X}"
        self.count = 0

    def next(self) -> str:
        self.count += 1
        return f"{self.prefix}{self.count & _U32:08X}"


@dataclasses.dataclass(frozen=True)
class Nas:
    """How this NAS names itself in every request: NAS-IP-Address, NAS-Identifier, or both (RFC 2865
    section 4.1: at least one)."""

    ip: IPv4Address | None = None
    identifier: str | None = None

    def __post_init__(self) -> None:
        if self.ip is None and not self.identifier:
            raise ValueError("a NAS needs a NAS-IP-Address or a NAS-Identifier")

    def attributes(self) -> Attributes:
        out: Attributes = []
        if self.ip is not None:
            out.append(("NAS-IP-Address", str(self.ip)))
        if self.identifier:
            out.append(("NAS-Identifier", self.identifier))
        return out


@dataclasses.dataclass(frozen=True)
class Counters:
    """A session's traffic so far; ``input`` is what came from the client (RFC 2866)."""

    input_octets: int = 0
    output_octets: int = 0
    input_packets: int = 0
    output_packets: int = 0


@dataclasses.dataclass
class AccountingSession:
    """What the records of one session repeat: filled by the daemon once the session has its unit
    and address, before its Start."""

    session_id: str
    """From :meth:`SessionIds.next`, one per session."""
    user_name: str
    """The name the user authenticated with, as sent in the Access-Request (the server matches it)."""
    unit: int
    """The ``pppN`` unit: NAS-Port."""
    calling_station: str
    """The client's public address."""
    called_station: str
    """Our address the client connected to."""
    started: float
    """Wall-clock time (``time.time()``) the session started, which Acct-Session-Time counts from."""
    framed_ip: IPv4Address | None = None
    classes: Sequence[bytes] = ()
    """The Access-Accept's Class values, echoed in every record in their order (RFC 2865 section 5.25)."""
    authentic: AcctAuthentic = AcctAuthentic.RADIUS


def _common(nas: Nas | None, session: AccountingSession, status: AcctStatusType, now: float) -> Attributes:
    out: Attributes = [("Acct-Status-Type", status.label), ("Acct-Session-Id", session.session_id)]
    out.append(("User-Name", session.user_name))
    if nas is not None:  # None: the client adds its configured NAS-Identifier/NAS-IP-Address
        out += nas.attributes()
    out += [
        ("NAS-Port", session.unit),
        ("NAS-Port-Id", f"ppp{session.unit}"),
        ("NAS-Port-Type", "Virtual"),
        ("Service-Type", "Framed-User"),
        ("Framed-Protocol", "PPP"),
        ("Calling-Station-Id", session.calling_station),
        ("Called-Station-Id", session.called_station),
    ]
    if session.framed_ip is not None:
        out.append(("Framed-IP-Address", str(session.framed_ip)))
    out += [("Class", value) for value in session.classes]
    out += [("Acct-Authentic", session.authentic.label), ("Event-Timestamp", int(now) & _U32)]
    return out


def _usage(session: AccountingSession, counters: Counters, now: float) -> Attributes:
    return [
        ("Acct-Session-Time", max(0, int(now - session.started)) & _U32),
        ("Acct-Input-Octets", counters.input_octets & _U32),
        ("Acct-Input-Gigawords", (counters.input_octets >> 32) & _U32),
        ("Acct-Output-Octets", counters.output_octets & _U32),
        ("Acct-Output-Gigawords", (counters.output_octets >> 32) & _U32),
        ("Acct-Input-Packets", counters.input_packets & _U32),
        ("Acct-Output-Packets", counters.output_packets & _U32),
    ]


def start_record(nas: Nas | None, session: AccountingSession, now: float | None = None) -> Attributes:
    """Accounting-Request Start: who, where, which address; no counters (RFC 2866 section 5.1)."""
    return _common(nas, session, AcctStatusType.START, time.time() if now is None else now)


def interim_record(
    nas: Nas | None, session: AccountingSession, counters: Counters, now: float | None = None
) -> Attributes:
    """Interim-Update (RFC 2869 section 2.1): the Start's attributes and the counters so far."""
    when = time.time() if now is None else now
    return _common(nas, session, AcctStatusType.INTERIM_UPDATE, when) + _usage(session, counters, when)


def stop_record(
    nas: Nas | None,
    session: AccountingSession,
    counters: Counters,
    cause: TerminateCause | str,
    now: float | None = None,
) -> Attributes:
    """Stop: the final counters and Acct-Terminate-Cause (``cause``, or :func:`terminate_cause` of the
    end reason given as text)."""
    when = time.time() if now is None else now
    if isinstance(cause, str):
        cause = terminate_cause(cause)
    record = _common(nas, session, AcctStatusType.STOP, when) + _usage(session, counters, when)
    record.append(("Acct-Terminate-Cause", cause.label))
    return record
