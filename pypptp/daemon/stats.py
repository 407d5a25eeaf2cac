"""What the daemon tells ``pypptpctl`` and ``/metrics``: per-session rows and daemon-wide counters.

Everything here is read or counted on the slow path: a session's row is built from counters the data
path keeps anyway (:class:`~pypptp.aio.session.SessionStats`, the GRE call's
:class:`~pypptp.gre.sequencing.GreCounters`), when asked; the daemon-wide counters move when a session
starts or ends, an authentication fails, or a connection is refused or evicted (those two are counted
by :class:`~pypptp.aio.server.ControlServer` already).  When a session ends its byte, packet and GRE
anomaly figures are added to :class:`DaemonStats`' retired totals, so the daemon's totals never go
backwards (Prometheus counters must not).

End reasons and authentication failure reasons are free text in the log; as labels they are
normalised into the small fixed sets :data:`END_REASONS` and :data:`AUTH_FAILURE_REASONS`, so that a
peer cannot make the label set grow.
"""

from __future__ import annotations

import dataclasses
import resource
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pypptp.daemon.manager import Daemon, DaemonSession

__all__ = [
    "AUTH_FAILURE_REASONS",
    "END_REASONS",
    "GRE_ANOMALIES",
    "DaemonStats",
    "end_label",
    "session_row",
    "snapshot",
]

END_REASONS = (
    "admin",
    "peer_terminate",
    "call_cleared",
    "auth_failed",
    "idle",
    "maxconnect",
    "echo_timeout",
    "shutdown",
    "refused",
    "error",
    "other",
)
"""The ``reason`` label of ``pypptp_sessions_ended_total``: every end reason maps to one of these."""

AUTH_FAILURE_REASONS = ("unknown_user", "bad_secret", "rejected")
"""Why an authentication attempt failed: no chap-secrets record for that name, a wrong secret, or the RADIUS
server rejected it (Access-Reject, or no server answered)."""

GRE_ANOMALIES = ("lost", "reordered", "duplicate", "stale", "far", "unknown_call", "malformed")
"""GRE anomalies: per call (lost, reordered, duplicate, stale, far) and of the transport (unknown_call:
GRE for no call of ours; malformed)."""

_PER_CALL = {"lost": "lost", "reordered": "reordered", "duplicate": "duplicates", "stale": "stale", "far": "far"}

_END_PATTERNS = (
    ("pypptpctl", "admin"),
    ("terminated by peer", "peer_terminate"),
    ("call cleared", "call_cleared"),
    ("authentication", "auth_failed"),
    ("idle", "idle"),
    ("connect time", "maxconnect"),
    ("echo", "echo_timeout"),
    ("shutting down", "shutdown"),
    ("no address", "refused"),
    ("connection limit", "refused"),
    ("in use", "refused"),
    ("error", "error"),
    ("cannot", "error"),
)


def end_label(reason: str) -> str:
    """The label of an end reason (one of :data:`END_REASONS`)."""
    lowered = reason.lower()
    for pattern, label in _END_PATTERNS:
        if pattern in lowered:
            return label
    return "other"


@dataclasses.dataclass
class DaemonStats:
    """The daemon-wide counters (one per process: each ``--workers`` worker has its own)."""

    started_at: float = dataclasses.field(default_factory=time.time)
    """Wall-clock start, for the uptime."""
    sessions_started: int = 0
    """Sessions that authenticated and got addresses."""
    sessions_peak: int = 0
    ended: dict[str, int] = dataclasses.field(default_factory=lambda: dict.fromkeys(END_REASONS, 0))
    """Sessions (that had started) ended, by :func:`end_label`."""
    calls_ended: int = 0
    """Calls ended, authenticated or not."""
    auth_failures: dict[str, int] = dataclasses.field(default_factory=dict)
    """By ``reason/method``, e.g. ``bad_secret/MS-CHAP-V2`` (bounded: two reasons by four methods)."""
    retired: dict[str, int] = dataclasses.field(
        default_factory=lambda: dict.fromkeys(("rx_bytes", "tx_bytes", "rx_packets", "tx_packets", *_PER_CALL), 0)
    )
    """Byte, packet and per-call GRE anomaly figures of the sessions that ended."""

    def session_started(self, now_admitted: int) -> None:
        self.sessions_started += 1
        self.sessions_peak = max(self.sessions_peak, now_admitted)

    def session_ended(self, session: DaemonSession, reason: str) -> None:
        """Called once per call as it ends: its figures join the retired totals.  The label comes from why
        the link closed, when it did (an LCP Terminate-Request from the peer, then its CCRQ: the peer ended
        it), else from ``reason``."""
        self.calls_ended += 1
        if session.addresses is not None:
            self.ended[end_label(session.ppp.link.close_reason or reason)] += 1
        _add_session(self.retired, session)

    def auth_failed(self, reason: str, method: str) -> None:
        key = f"{reason}/{method[:16]}"
        if key in self.auth_failures or len(self.auth_failures) < 32:  # bounded whatever a peer sends
            self.auth_failures[key] = self.auth_failures.get(key, 0) + 1


def session_row(session: DaemonSession, now: float, worker: int | None = None) -> dict[str, Any]:
    """One session, as ``pypptpctl show sessions`` shows it (plain JSON types)."""
    ppp = session.ppp
    up = session.up
    if ppp.closed:
        state = "ending"
    elif ppp.network is not None:
        state = "active"
    else:
        state = ppp.link.phase.name.lower()
    local, remote = session.addresses if session.addresses is not None else (None, None)
    stats = ppp.stats
    return {
        "ifname": f"ppp{session.unit}" if session.unit >= 0 else "",
        "user": session.user,
        "peer": session.connection.peer_ip,
        "local": str(local) if local is not None else "",
        "remote": str(remote) if remote is not None else "",
        "state": state,
        "uptime": round(now - ppp.started_at, 1),
        "rx_bytes": stats.bytes_received,
        "tx_bytes": stats.bytes_sent,
        "rx_packets": stats.packets_received,
        "tx_packets": stats.packets_sent,
        "mppe": up.mppe if up is not None else "",
        "call_id": session.call.call_id,
        "peer_call_id": session.call.peer_call_id,
        "worker": worker,
        "acct_session_id": session.radius.session_id if session.radius is not None else "",  # RADIUS only
    }


def snapshot(daemon: Daemon, now: float, worker: int | None = None) -> dict[str, Any]:
    """Everything ``show sessions``, ``show stat`` and ``/metrics`` need, taken at once on the event loop
    (plain JSON types: it crosses to the metrics thread and, with workers, between processes)."""
    stats, server, transport = daemon.stats, daemon.server, daemon.transport
    rows = [session_row(session, now, worker) for session in daemon.sessions.values()]
    totals = dict(stats.retired)
    for session in daemon.sessions.values():
        _add_session(totals, session)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    gre = {kind: totals[kind] for kind in _PER_CALL}
    gre["unknown_call"] = transport.counters.unknown_call
    gre["malformed"] = transport.counters.malformed
    return {
        "sessions": rows,
        "stat": {
            "uptime": round(time.time() - stats.started_at, 1),
            "sessions": daemon.admitted,
            "calls": len(daemon.sessions),
            "sessions_peak": stats.sessions_peak,
            "sessions_started": stats.sessions_started,
            "sessions_ended": dict(stats.ended),
            "auth_failures": dict(stats.auth_failures),
            "connections": len(server.connections),
            "pending": server.pending_count,
            "refused": server.refused,
            "evicted": server.evicted,
            "timed_out": server.timed_out,
            "rx_bytes": totals["rx_bytes"],
            "tx_bytes": totals["tx_bytes"],
            "rx_packets": totals["rx_packets"],
            "tx_packets": totals["tx_packets"],
            "gre": gre,
            "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2),
            "workers": 1,
        },
    }


def _add_session(totals: dict[str, int], session: DaemonSession) -> None:
    """A session's traffic and GRE anomaly counters added to ``totals`` (the ended sessions' running
    totals, or a snapshot's sum over the live ones)."""
    stats, counters = session.ppp.stats, session.gre.seq.counters
    totals["rx_bytes"] += stats.bytes_received
    totals["tx_bytes"] += stats.bytes_sent
    totals["rx_packets"] += stats.packets_received
    totals["tx_packets"] += stats.packets_sent
    for kind, field in _PER_CALL.items():
        totals[kind] += getattr(counters, field)
