"""The asyncio skin of the PPTP server's control channel (TCP 1723).

This is the only place with a loop, transports and timers for the control
channel: each accepted connection gets a :class:`ControlConnection` (sans-IO)
and one timer handle re-armed at its ``next_deadline()``.  Accepting never
waits on a connection: the first-message deadline (pptpd's ``stimeout``) is
that connection's own timer, so idle connections cannot block others.

Admission.  pptpd counts every accepted TCP connection against
``connections``, so a handful of idle sockets lock every user out.  Here a
connection is *pending* from accept until the session behind its call has
authenticated (the daemon then calls :meth:`ControlServer.admit`); only
admitted connections count against ``connections``, which the daemon
enforces on sessions.  Pending connections get a budget of their own
(:attr:`ServerSettings.max_pending`) with a fair policy when it is full:

* a source address already holding :attr:`ServerSettings.max_pending_per_source`
  pending connections loses its own oldest one;
* otherwise the oldest pending connection of the source that holds the most
  is dropped, so one busy source (or a few) cannot push out anyone else's
  new connection;

and a deadline, :attr:`ServerSettings.pending_timeout` seconds from accept to
authentication, on top of each phase's own (SCCRQ within ``stimeout``, a call
within :attr:`~pypptp.ctrl.connection.ControlConfig.call_timeout`, the PPP
link's own negotiation limits).  Dropped connections are counted and logged
in summary (at most one line a minute), never one line each.

Password guessing: every failed authentication is logged with the peer's
address (``MGR: authentication failed for 'NAME' from ADDRESS``, a line
fail2ban can match), and an address that fails
:attr:`ServerSettings.auth_fail_limit` times within
:attr:`ServerSettings.auth_fail_window` seconds has its new connections
dropped at accept for :attr:`ServerSettings.auth_fail_block` seconds
(:class:`~pypptp.aio.throttle.FailureThrottle`); other addresses never notice.

Protocol anomalies (tolerated mistakes of a peer, most of which get no
reply) are logged once per reason and connection at WARNING, and their
repeats summed up in one line when the connection ends (or a minute after
the first repeat, for a long-lived one); the sans-IO connection stops itself
after :attr:`~pypptp.ctrl.connection.ControlConfig.max_anomalies` of them a
minute.  Peer-supplied text (SCCRQ host and vendor, user names) is escaped
and capped (:func:`~pypptp.ppp.auth.printable`).

The listener is IPv4 only, as pptpd's: the GRE data path and the address
pool are IPv4.

A failure inside one connection is logged and ends that connection only.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import logging
import socket
import struct
from collections.abc import Callable
from typing import Protocol

from pypptp.aio.control import ControlProtocol
from pypptp.aio.throttle import FailureThrottle
from pypptp.ctrl.callids import CallIdAllocator
from pypptp.ctrl.connection import ControlConfig, ControlConnection, LocalProtocolError, Role
from pypptp.ctrl.constants import PPTP_PORT, StopReason
from pypptp.ctrl.events import (
    Call,
    CallCleared,
    CallEstablished,
    CallRefused,
    ControlConnectionClosed,
    ControlConnectionEstablished,
    EchoAnswered,
    Event,
    ProtocolAnomaly,
    SetLinkInfoReceived,
)
from pypptp.ctrl.messages import ControlMessage
from pypptp.ppp.auth import printable

log = logging.getLogger("pypptpd")


@dataclasses.dataclass(frozen=True)
class ServerSettings:
    """What the control server needs from pptpd.conf and the command line."""

    listen: str = "0.0.0.0"
    port: int = PPTP_PORT
    max_connections: int = 100
    """Sessions (authenticated) at once; the daemon enforces it, and sizes the listen backlog with it."""
    max_pending: int = 256
    """Connections still negotiating (accepted, not yet authenticated) held at once."""
    max_pending_per_source: int = 64
    """Of those, from one source address."""
    pending_timeout: float = 60.0
    """Seconds from accept to authentication; a connection still pending then is dropped."""
    auth_fail_limit: int = 5
    """Authentication failures from one address within :attr:`auth_fail_window` that block it; 0: never."""
    auth_fail_window: float = 60.0
    auth_fail_block: float = 300.0
    """Seconds a blocked address has its new connections dropped at accept."""
    log_budget: int = 5
    """Connections a minute from one address whose lines are logged as usual; beyond, until one of them
    authenticates, their lines go to debug level and a summary says how many (0: no limit)."""
    control: ControlConfig = dataclasses.field(default_factory=ControlConfig)
    trace: bool = False
    """``debug``: the daemon logs at debug level, which includes every control message in and out."""
    call_id_stride: int = 1
    call_id_offset: int = 0
    """Hand out only Call IDs with ``ID % call_id_stride == call_id_offset`` (worker processes split the
    space this way, see :mod:`pypptp.daemon.workers`)."""


class CallHooks(Protocol):
    """What stands behind the calls (the daemon's sessions); the control server tells it of each."""

    def call_established(self, connection: ServerConnection, call: Call) -> None: ...

    def call_cleared(self, connection: ServerConnection, call: Call, reason: str) -> None: ...


MAX_EARLY_CONTROL = 16
"""Control messages of a connection kept for its session's trace before the call exists (SCCRQ, SCCRP, OCRQ,
OCRP and a few echoes)."""
HANDOFF_BATCH = 64
"""Connections taken from the supervisor's channel per wake-up of the loop (:meth:`ControlServer.take_from`)."""
LOAD = struct.Struct("=II")
"""A worker's load report to its supervisor: connections received so far, connections held now."""
SUMMARY_INTERVAL = 60.0
"""Seconds between two summary lines about dropped pending connections."""
ANOMALY_SUMMARY_INTERVAL = 60.0
"""Seconds between two summary lines about one connection's repeated protocol anomalies."""


class ControlServer:
    """Accepts PPTP control connections and runs one sans-IO connection each."""

    def __init__(self, settings: ServerSettings, hooks: CallHooks | None = None) -> None:
        self.settings = settings
        self.hooks = hooks
        self.trace_control = False
        """Set by a daemon that traces sessions: connections keep their first control messages for it."""
        self.call_ids = CallIdAllocator(stride=settings.call_id_stride, offset=settings.call_id_offset)
        self.connections: set[ServerConnection] = set()
        self.pending: dict[str, dict[ServerConnection, None]] = {}
        """Pending connections by source address, oldest first (see the module docstring)."""
        self.pending_count = 0
        self.evicted = 0
        """Pending connections dropped to make room for a newer one."""
        self.timed_out = 0
        """Pending connections dropped at :attr:`ServerSettings.pending_timeout`."""
        self.refused = 0
        """Connections dropped at accept (an address blocked for its authentication failures)."""
        self.auth_failures = 0
        self.throttle = (
            FailureThrottle(settings.auth_fail_limit, settings.auth_fail_window, settings.auth_fail_block)
            if settings.auth_fail_limit > 0
            else None
        )
        self._unreported: collections.Counter[str] = collections.Counter()
        self._logged: dict[str, list[float]] = {}  # source -> [start of its minute, connections logged in it]
        self._reported_at: dict[str, float] = {}
        self._report_timer: asyncio.TimerHandle | None = None
        self._last_source: dict[str, str] = {}
        self._server: asyncio.Server | None = None
        self._handoff: socket.socket | None = None  # take_from(): where accepted connections come from
        self._handed = 0  # connections received from it
        self._adopting: set[asyncio.Task[object]] = set()
        self._load_due = False

    @property
    def sockets(self) -> list[tuple[str, int]]:
        if self._server is None:
            return []
        return [s.getsockname()[:2] for s in self._server.sockets]

    async def start(self, sock: socket.socket | None = None) -> None:
        """Listen on ``settings.listen``:``settings.port``, or accept on ``sock``, a bound TCP socket made
        elsewhere (a test's); a ``--workers`` worker takes its connections with :meth:`take_from` instead."""
        loop = asyncio.get_running_loop()
        backlog = listen_backlog(self.settings)
        if sock is not None:
            self._server = await loop.create_server(lambda: ServerConnection(self), sock=sock, backlog=backlog)
        else:
            self._server = await loop.create_server(
                lambda: ServerConnection(self),
                host=self.settings.listen or "0.0.0.0",  # IPv4 only, as pptpd (None would add [::])
                port=self.settings.port,
                family=socket.AF_INET,
                reuse_address=True,
                backlog=backlog,
            )
        log.info("MGR: Manager process started, listening on %s:%d", self.settings.listen, self.settings.port)

    def take_from(self, channel: socket.socket) -> None:
        """Serve the connections another process accepted and passes over ``channel`` (a UNIX
        ``SOCK_SEQPACKET`` socket: one accepted socket per message, ``SCM_RIGHTS``), instead of
        listening: a ``--workers`` worker, whose supervisor accepts on 1723 and hands each connection to
        the least-loaded worker (:class:`pypptp.daemon.workers.Dispatcher`).

        Back over ``channel`` goes this server's load whenever it changes: how many connections it has
        received so far and how many it holds (pending or with a session), 8 bytes (:data:`LOAD`), so
        the supervisor counts those still in flight without guessing."""
        loop = asyncio.get_running_loop()
        channel.setblocking(False)
        self._handoff = channel
        loop.add_reader(channel.fileno(), self._receive)
        log.info("MGR: Manager process started, listening on %s:%d", self.settings.listen, self.settings.port)

    def _receive(self) -> None:
        channel = self._handoff
        if channel is None:
            return
        loop = self._loop
        for _ in range(HANDOFF_BATCH):  # bounded per wake-up; the rest waits for the next
            try:
                data, fds, _flags, _address = socket.recv_fds(channel, 16, 4)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                log.error("MGR: connections from the supervisor: %s", exc)
                self._stop_taking()
                return
            if not data and not fds:  # the supervisor is gone (its workers follow it, PR_SET_PDEATHSIG)
                self._stop_taking()
                return
            for fd in fds:
                self._handed += 1
                sock = socket.socket(fileno=fd)
                if sock.family != socket.AF_INET or sock.type != socket.SOCK_STREAM:
                    sock.close()
                    continue
                sock.setblocking(False)
                task = loop.create_task(loop.connect_accepted_socket(lambda: ServerConnection(self), sock))
                self._adopting.add(task)
                task.add_done_callback(self._adopted)
        self._load_changed()

    def _adopted(self, task: asyncio.Task[object]) -> None:
        self._adopting.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("MGR: a connection from the supervisor could not be served: %s", task.exception())
        self._load_changed()

    def _load_changed(self) -> None:
        """A connection came or went: the supervisor hears of this worker's load (once per loop pass)."""
        if self._handoff is not None and not self._load_due:
            self._load_due = True
            self._loop.call_soon(self._send_load)

    def _send_load(self) -> None:
        self._load_due = False
        if self._handoff is None:
            return
        live = len(self.connections) + len(self._adopting)
        try:
            self._handoff.send(LOAD.pack(self._handed & 0xFFFFFFFF, live))  # (modulo 2**32: the parent subtracts)
        except (BlockingIOError, InterruptedError):  # the supervisor is behind; the next report says it all
            pass
        except OSError:
            self._stop_taking()

    def _stop_taking(self) -> None:
        channel, self._handoff = self._handoff, None
        if channel is not None:
            with contextlib.suppress(Exception):
                self._loop.remove_reader(channel.fileno())
            channel.close()

    async def serve_forever(self) -> None:
        if self._server is None:  # take_from(): connections arrive through the loop's reader
            await asyncio.get_running_loop().create_future()
        assert self._server is not None
        await self._server.serve_forever()

    async def shutdown(self, grace: float = 2.0) -> None:
        """Stop accepting; CDN + StopCCRQ to every client, wait briefly, close all."""
        if self._server is not None:
            self._server.close()
        self._stop_taking()
        if self._report_timer is not None:
            self._report_timer.cancel()
            self._report()
        for protocol in list(self.connections):
            protocol.stop(StopReason.STOP_LOCAL_SHUTDOWN)
        deadline = asyncio.get_running_loop().time() + grace
        while self.connections and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        for protocol in list(self.connections):
            protocol.abort("server shut down")
        if self._server is not None:
            await self._server.wait_closed()

    # -- admission (see the module docstring) ----------------------------------------------------

    def admit(self, connection: ServerConnection) -> None:
        """The session behind ``connection`` authenticated: it leaves the pending budget, and its lines are
        logged as usual whatever the budget of its address."""
        self._forget_pending(connection)
        connection.quiet = False

    def _quiet(self, source: str) -> bool:
        """Whether a new connection from ``source`` is past its address's log budget this minute."""
        budget = self.settings.log_budget
        if budget <= 0:
            return False
        now = self._loop.time()
        logged = self._logged.get(source)
        if logged is None or now - logged[0] >= 60.0:
            if len(self._logged) >= 65536:  # bounded: forget the addresses whose minute is over
                self._logged = {s: w for s, w in self._logged.items() if now - w[0] < 60.0}
            logged = self._logged[source] = [now, 0]
        logged[1] += 1
        if logged[1] <= budget:
            return False
        self._tally(f"logged at debug level only (more than {budget} a minute from one address)", source)
        return True

    def auth_failed(self, connection: ServerConnection, name: str, method: str) -> None:
        """The session behind ``connection`` failed to authenticate as ``name``: log it with the peer's
        address, and count it toward that address's budget."""
        self.auth_failures += 1
        source = connection.peer_ip
        log.warning("MGR: authentication failed for %r from %s (%s)", printable(name), source, method)
        if self.throttle is not None and self.throttle.failed(source, self._loop.time()):
            settings = self.settings
            log.warning(
                "MGR: %s: %d authentication failures within %g s: refusing its connections for %g s",
                source,
                settings.auth_fail_limit,
                settings.auth_fail_window,
                settings.auth_fail_block,
            )

    def _blocked(self, connection: ServerConnection) -> bool:
        """Drop a new connection at accept if its address is blocked for authentication failures."""
        if self.throttle is None or not self.throttle.blocked(connection.peer_ip, self._loop.time()):
            return False
        self.refused += 1
        self._tally("refused: the address is blocked for its authentication failures", connection.peer_ip)
        return True

    def _enter_pending(self, connection: ServerConnection) -> None:
        """Count a new connection as pending, dropping another (or an older one of its source) if full."""
        settings = self.settings
        source = connection.peer_ip
        mine = self.pending.get(source)
        victim: ServerConnection | None = None
        if mine is not None and len(mine) >= settings.max_pending_per_source:
            victim = next(iter(mine))
            why = f"more than {settings.max_pending_per_source} pending from {source}"
        elif self.pending_count >= settings.max_pending:
            busiest = max(self.pending.values(), key=len)
            victim = next(iter(busiest))
            why = f"{settings.max_pending} pending connections"
        if victim is not None:
            self.evicted += 1
            self._tally(f"dropped to make room ({why})", victim.peer_ip)
            victim.drop_pending("dropped to make room for a newer connection")
        self.pending.setdefault(source, {})[connection] = None
        self.pending_count += 1
        connection.pending_timer = self._loop.call_later(settings.pending_timeout, connection.pending_expired)

    def _forget_pending(self, connection: ServerConnection) -> None:
        timer, connection.pending_timer = connection.pending_timer, None
        if timer is None:
            return
        timer.cancel()
        source = connection.peer_ip
        mine = self.pending.get(source)
        if mine is not None and connection in mine:
            del mine[connection]
            self.pending_count -= 1
            if not mine:
                del self.pending[source]

    def _tally(self, what: str, source: str) -> None:
        """Count a connection dropped or quietened for ``what``: the first of each kind is logged at once,
        the rest in one summary line a minute later (so at most one line of each kind a minute)."""
        self._unreported[what] += 1
        self._last_source[what] = source
        now = self._loop.time()
        reported_at = self._reported_at.get(what)
        if reported_at is None or now - reported_at >= SUMMARY_INTERVAL:
            self._report_kind(what, now)
        elif self._report_timer is None:
            self._report_timer = self._loop.call_at(reported_at + SUMMARY_INTERVAL, self._report)

    def _report_kind(self, what: str, now: float) -> None:
        count = self._unreported.pop(what, 0)
        if count:
            self._reported_at[what] = now
            log.warning("MGR: %d connection(s) %s (the last from %s)", count, what, self._last_source[what])

    def _report(self) -> None:
        """The summary lines due (and, at shutdown, every pending one)."""
        self._report_timer = None
        now = self._loop.time()
        for what in list(self._unreported):
            self._report_kind(what, now)

    @property
    def _loop(self) -> asyncio.AbstractEventLoop:
        return asyncio.get_running_loop()


def listen_backlog(settings: ServerSettings) -> int:
    """The listen backlog: room for every session and the whole pending budget (the kernel caps it)."""
    return max(128, min(4096, settings.max_connections + settings.max_pending))


class ServerConnection(ControlProtocol):
    """One accepted TCP 1723 connection."""

    def __init__(self, server: ControlServer) -> None:
        super().__init__()
        self.server = server
        self.pending_timer: asyncio.TimerHandle | None = None
        """Set while the connection is pending (accepted, its session not yet authenticated)."""
        self.anomalies: collections.Counter[str] = collections.Counter()
        """Every protocol anomaly of this connection, by reason."""
        self._unreported: collections.Counter[str] = collections.Counter()
        self._anomaly_report: asyncio.TimerHandle | None = None
        self.tracer: Callable[[float, str, ControlMessage], None] | None = None
        """The session's trace (:func:`pypptp.aio.trace.control_tracer`) sees every control message, once set."""
        self.early_control: list[tuple[float, str, ControlMessage]] | None = [] if server.trace_control else None
        """With :attr:`ControlServer.trace_control`: the messages before the call (SCCRQ, OCRQ...), bounded,
        for the session's trace to start with."""
        self.quiet = False
        """Past its address's log budget (:attr:`ServerSettings.log_budget`) and not authenticated: its
        lines (and its session's) go to debug level."""

    def _info(self, message: str, *args: object) -> None:
        log.log(logging.DEBUG if self.quiet else logging.INFO, message, *args)

    def _warning(self, message: str, *args: object) -> None:
        log.log(logging.DEBUG if self.quiet else logging.WARNING, message, *args)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        server = self.server
        if server._blocked(self):
            self.abort("blocked for authentication failures")
            return
        server.connections.add(self)
        server._load_changed()
        server._enter_pending(self)
        self.quiet = server._quiet(self.peer_ip)
        self.conn = ControlConnection(
            Role.SERVER, self.loop.time(), config=server.settings.control, call_ids=server.call_ids, tracer=self._trace
        )
        self._info("CTRL: Client %s control connection started", self.peer)
        self._rearm()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if self.conn is not None:  # nothing more goes in or out: drop the cycle through our bound method
            self.conn.tracer = None
        self._report_anomalies()
        self.server._forget_pending(self)
        self.server.connections.discard(self)
        self.server._load_changed()

    @property
    def pending(self) -> bool:
        return self.pending_timer is not None

    def pending_expired(self) -> None:
        """:attr:`ServerSettings.pending_timeout` passed before authentication."""
        self.pending_timer = None  # the handle has fired
        self.server._forget_pending(self)
        self.server.timed_out += 1
        self.server._tally(f"still pending after {self.server.settings.pending_timeout:g} s", self.peer_ip)
        self.drop_pending(f"not authenticated within {self.server.settings.pending_timeout:g} s")

    def drop_pending(self, reason: str) -> None:
        """Drop a pending connection at once (its calls cleared, the TCP connection reset)."""
        self.server._forget_pending(self)
        self.abort(reason)

    def stop(self, reason: StopReason) -> None:
        if self.conn is not None and not self.conn.closed:
            self.conn.stop(self.loop.time(), reason)
            self.flush()

    @property
    def peer_ip(self) -> str:
        return self.peer.rpartition(":")[0]

    def hang_up(self, call_id: int, reason: StopReason = StopReason.NONE) -> None:
        """The session behind ``call_id`` ended: CDN, then StopCCRQ (one call per connection, like
        pptpd's control process, which ends with its pppd)."""
        conn = self.conn
        if conn is None or conn.closed:
            return
        now = self.loop.time()
        try:
            if call_id in conn.calls:
                conn.clear_call(call_id, now)
            if not conn.calls:
                conn.stop(now, reason)
        except LocalProtocolError:  # the connection is already stopping
            pass
        self.flush()

    def handle_events(self, events: list[Event]) -> None:
        for event in events:
            if isinstance(event, ControlConnectionEstablished):
                start = event.peer_start
                self._info(
                    "CTRL: %s: SCCRQ accepted (host '%s', vendor '%s', firmware %d)",
                    self.peer,
                    printable(start.host_name),
                    printable(start.vendor_string),
                    start.firmware_revision,
                )
            elif isinstance(event, CallEstablished):
                call = event.call
                self._info(
                    "CTRL: %s: call established, our Call ID %d, peer Call ID %d, peer window %d",
                    self.peer,
                    call.call_id,
                    call.peer_call_id,
                    call.peer_window,
                )
                if self.server.hooks is not None:
                    self.server.hooks.call_established(self, call)
            elif isinstance(event, CallRefused):
                self._warning(
                    "CTRL: %s: OCRQ from peer Call ID %d refused: %s/%s",
                    self.peer,
                    event.peer_call_id,
                    getattr(event.result_code, "name", event.result_code),
                    event.error_code.name,
                )
            elif isinstance(event, CallCleared):
                self._info("CTRL: %s: call %d cleared (%s)", self.peer, event.call.call_id, event.reason)
                if self.server.hooks is not None:
                    self.server.hooks.call_cleared(self, event.call, event.reason)
            elif isinstance(event, SetLinkInfoReceived):
                log.debug("CTRL: %s: Set-Link-Info ignored (ACCMs mean nothing on GRE)", self.peer)
            elif isinstance(event, EchoAnswered):
                log.debug("CTRL: %s: Echo-Reply after %.3f s", self.peer, event.round_trip)
            elif isinstance(event, ProtocolAnomaly):
                self._anomaly(event)
            elif isinstance(event, ControlConnectionClosed):
                self._report_anomalies()
                self._info("CTRL: Client %s control connection finished (%s)", self.peer, event.reason)

    def _anomaly(self, event: ProtocolAnomaly) -> None:
        """The first anomaly of each reason is logged at once; repeats are counted and summed up when the
        connection ends, or a minute after the first unreported one (at most a line a minute)."""
        self.anomalies[event.reason] += 1
        if self.anomalies[event.reason] == 1:
            self._warning("CTRL: %s: %s", self.peer, printable(event.description, 200))
            return
        self._unreported[event.reason] += 1
        if self._anomaly_report is None:
            self._anomaly_report = self.loop.call_later(ANOMALY_SUMMARY_INTERVAL, self._report_anomalies)

    def _report_anomalies(self) -> None:
        if self._anomaly_report is not None:
            self._anomaly_report.cancel()
            self._anomaly_report = None
        if self._unreported:
            counts = ", ".join(f"{reason}: {count}" for reason, count in self._unreported.most_common(8))
            more = len(self._unreported) - 8
            self._warning(
                "CTRL: %s: protocol anomalies repeated (%s%s)", self.peer, counts, f", {more} more" if more > 0 else ""
            )
            self._unreported.clear()

    def _trace(self, now: float, direction: str, message: ControlMessage) -> None:
        """Every control message in and out, while debug logging is on (``-d``, or SIGUSR1), and to the
        session's trace when there is one."""
        if self.tracer is not None:
            self.tracer(now, direction, message)
        elif self.early_control is not None and len(self.early_control) < MAX_EARLY_CONTROL:
            self.early_control.append((now, direction, message))
        if log.isEnabledFor(logging.DEBUG):
            log.debug("CTRL: %s %s %.3f %r", self.peer, direction, now, message)
