"""The daemon: control server, GRE transport, address pool and one PPP session per call.

What poptop's pptpd manager, its per-connection ``pptpctrl`` and their pppd
did, in one asyncio process:

* a call established on TCP 1723 (OCRQ answered) gets a GRE call on the
  shared raw socket and a :class:`~pypptp.aio.session.PppSession` configured
  from the pppd options and ``chap-secrets``;
* once its peer has authenticated, the session gets the lowest free
  ``pppN`` unit, an address pair from the pool (``localip``/``remoteip``) or
  the address its chap-secrets record pins (kept out of the pool for that
  user, ``a.b.c.d/n+`` computed from that unit), and counts against
  ``connections``: a call that never authenticates holds none of them
  (pptpd lends them at accept, so a few idle connections lock everyone out,
  and pending calls would shift the units, hence the ``/n+`` addresses, of
  the users after them); the control server keeps such calls in a budget of
  their own (:mod:`pypptp.aio.server`).  Until then the session logs as
  ``pppd``; pppd's ``Connect: pppN <--> ...`` line comes with the unit;
* when the session's network comes up: the TUN device, ``/etc/ppp/ip-up``, and once, a warning if its
  traffic cannot leave this host (forwarding off, no default route: :mod:`pypptp.host.diagnose`),
  and with ``-w`` a login record in wtmp (:mod:`pypptp.host.wtmp`, written off the event loop);
* a call whose peer has sent no GRE :data:`NO_GRE_AFTER` seconds after the Outgoing-Call-Reply says
  what probably blocks it (IP protocol 47 filtered, a NAT that does not know PPTP), once;
* when it ends, by whatever path (LCP Terminate either way, CCRQ, StopCCRQ,
  TCP FIN or RST, echo timeouts, authentication failure, SIGTERM): ip-down,
  the TUN device, the GRE call, the Call ID and the pool address are all
  released (its addresses only once its ``pppN`` is gone and its ip-down has run, at most
  :data:`DRAIN_LIMIT` seconds: a client that redials at once gets another address, or waits for its
  own, see :meth:`Daemon._drain`), and the control connection gets a CDN and a StopCCRQ if it is
  still there, as pptpctrl did when its pppd exited; the session's last line is its summary
  (:mod:`pypptp.daemon.accounting`: user, peer, tunnel address, duration, bytes, reason), and with
  ``-w`` a logout record goes to wtmp;
* chap-secrets is looked at at every authentication and re-read when it
  changed, as pppd reads it at every authentication (removing a user takes
  effect at once); SIGHUP re-reads it and the pppd options for new sessions;
  SIGTERM ends every session politely (LCP Terminate-Request, then CDN and
  StopCCRQ) and exits.

A failing session is logged and cleaned up; the others carry on.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import functools
import logging
import os
import pwd
import signal
import socket
import time
from collections.abc import Callable, Coroutine
from ipaddress import IPv4Address
from typing import TYPE_CHECKING, Any, Protocol

from pypptp.aio.gre import GreCall, GreTransport
from pypptp.aio.server import ControlServer, ServerConnection, ServerSettings
from pypptp.aio.session import PppSession, session_over_gre
from pypptp.aio.trace import DEFAULT_MAX_EVENTS, GreTraceWatch, JsonLinesTracer, control_tracer, wait_written
from pypptp.conf.chap_secrets import CHAP_SECRETS, Stamp, file_stamp, read_secrets_file
from pypptp.conf.pptpd import DEFAULT_SPEED
from pypptp.ctrl.constants import StopReason
from pypptp.ctrl.events import Call
from pypptp.daemon import logs
from pypptp.daemon.accounting import summary_line, wtmp_user
from pypptp.daemon.pool import AddressPool, Lease
from pypptp.daemon.scripts import IP_DOWN, IP_UP, ScriptInfo, ScriptRunner, call_tty
from pypptp.daemon.stats import DaemonStats
from pypptp.host.claims import Claim, Claims
from pypptp.host.diagnose import forwarding_problem, route_problem
from pypptp.host.proxyarp import add_proxy_arp, remove_proxy_arp
from pypptp.host.tun import TunDevice, TunError, UnitClaim, claim_unit, share_units_between_processes, wait_closed
from pypptp.host.wtmp import UtmpRecord, WtmpWriter
from pypptp.ppp import logtext
from pypptp.ppp.auth import AuthRequest, AuthResult, ExternalVerdict, peer_authname
from pypptp.ppp.link import Assignment, AuthAttemptFailed, Authenticated, LinkConfig, NetworkUp, PppLink
from pypptp.ppp.secrets import ChapSecret, ChapSecrets, SecretsError

if TYPE_CHECKING:
    from pypptp.daemon.radius import RadiusAaa, RadiusSession

__all__ = ["ADMIN_REASON", "PPPD_VERSION", "Daemon", "DaemonSession"]

log = logging.getLogger("pypptpd")

ADMIN_REASON = "terminated by admin (pypptpctl)"
"""The end reason of a session ``pypptpctl terminate`` ends, in its log line and its metrics label."""
TERMINATE_GRACE = 3.0  # seconds SIGTERM waits for LCP Terminate-Acks before the control channel goes
NO_GRE_AFTER = 5.0
"""Seconds after the Outgoing-Call-Reply within which the peer's first GRE packet is expected; without
one, the session says what probably blocks it (a client answers our LCP Configure-Request at once)."""
NETLINK_PATIENCE = 10.0
"""Seconds a session's end waits for its proxy ARP entry to be made and withdrawn before ip-down runs
anyway (a netlink request takes milliseconds)."""
DRAIN_LIMIT = 35.0
"""Seconds at most that an ended session's addresses stay draining (:meth:`Daemon._drain`): its ``pppN``
removed, its proxy ARP entry withdrawn, its ip-down run (which the script runner stops after 30 s, and
kills 2 s later).  Past it the addresses are handed out anyway, with a warning."""
SETTLE_POLL = 0.02
"""With ``--workers``: how often a session waiting for what another worker holds (a slot it drains, a seat)
looks whether it is free (one ``bind``)."""
SEAT_WAIT = 1.0
"""``--workers``: how long a session found with every seat of ``connections`` held waits for one before it
is refused.  A client that redials at once can reach another worker before the one that served it has
seen its TCP connection go (the parent hands the redial to the less loaded worker: the one whose ended
session still counts); that seat comes free a few milliseconds later."""


class SessionLog(logging.LoggerAdapter[logging.Logger]):
    """A session's lines: below ERROR they go to debug level while its control connection is quiet (past
    its address's log budget, :attr:`~pypptp.aio.server.ServerSettings.log_budget`) and its peer has not
    authenticated (a refusal after a successful authentication is always logged as usual)."""

    def __init__(self, logger: logging.Logger, connection: ServerConnection) -> None:
        super().__init__(logger, {})
        self.connection = connection
        self.link: PppLink | None = None

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        if self.connection.quiet and level < logging.ERROR and not self._authenticated():
            level = logging.DEBUG
        super().log(level, msg, *args, **kwargs)

    def process(self, msg: object, kwargs: Any) -> tuple[object, Any]:
        return msg, kwargs  # keep the caller's ``extra`` (SYSLOG_ONLY); the adapter adds none of its own

    def _authenticated(self) -> bool:
        return self.link is not None and any(result.success for result in self.link.auth_results)


@dataclasses.dataclass(eq=False)
class DaemonSession:
    """Everything one call holds, so that every path releases all of it."""

    connection: ServerConnection
    call: Call
    gre: GreCall
    ppp: PppSession
    scripts: ScriptRunner
    log: logging.LoggerAdapter[logging.Logger]
    claim: UnitClaim | None = None
    """The ``pppN`` unit, from authentication until the device is gone (the device owns it once made)."""
    tun: TunDevice | None = None
    """The ``pppN`` device, once made (its :attr:`~pypptp.host.tun.TunDevice.gone` says when it is removed)."""
    lease: Lease | None = None
    """The pool slot, from authentication on (a pinned address outside the pool may need none)."""
    addresses: tuple[IPv4Address, IPv4Address] | None = None
    """(local, peer), from authentication on: the session counts against ``connections`` from then."""
    pinned: IPv4Address | None = None
    """The peer address its chap-secrets record pins, held by this session."""
    seat: Claim | None = None
    """With ``--workers``: its seat among the ``connections`` of all workers."""
    held: tuple[Claim, ...] = ()
    """With ``--workers``: its address claims across the workers (a pinned address)."""
    up: NetworkUp | None = None
    proxy_arp_on: str | None = None
    """The interface holding the session's proxy ARP entry, once made (the address: ``proxy_arp_for``)."""
    proxy_arp_for: IPv4Address | None = None
    proxy_arp: asyncio.Task[None] | None = None
    """Network-up with ``proxyarp``: the entry being made off the event loop, then ip-up."""
    cleared: bool = False
    """The control channel cleared the call (CCRQ, StopCCRQ, TCP gone): it needs no CDN or StopCCRQ."""
    hung_up_while_up: bool = False
    """The call was cleared while the network was up: pppd's ``Modem hangup`` came before its figures."""
    gre_watch: asyncio.TimerHandle | None = None
    """:data:`NO_GRE_AFTER` after the call: the check that the peer's GRE arrives."""
    wtmp: str | None = None
    """The wtmp file its login record went to (``-w``), which gets its logout record too."""
    trace: JsonLinesTracer | None = None
    """With ``--trace DIR``: the session's trace file."""
    gre_trace: GreTraceWatch | None = None
    radius: RadiusSession | None = None
    """With RADIUS: the session's Acct-Session-Id, what its Access-Accept granted, its accounting."""

    @property
    def local_ip(self) -> str:
        """Our address the client connected to."""
        return self.connection.local_ip

    @property
    def peer_name(self) -> str:
        """The name the peer last authenticated with, as it sent it ("" if it never did)."""
        result = next((r for r in reversed(self.ppp.link.auth_results) if r.success), None)
        return result.peer_name if result is not None else ""

    @property
    def user(self) -> str:
        """:attr:`peer_name` as pppd's PEERNAME (``DOMAIN\\`` stripped under ``chapms-strip-domain``),
        what ip-up, ``show sessions`` and ``terminate username`` use."""
        return peer_authname(self.peer_name, self.ppp.link.config.auth.strip_domain)

    @property
    def unit(self) -> int:
        """The ``pppN`` unit (-1 before authentication)."""
        return self.claim.unit if self.claim is not None else -1


class SessionPolicy(Protocol):
    """What the pppd options say about each new session (re-read on SIGHUP)."""

    def link_config(self) -> LinkConfig:
        """Without addresses or unit: the daemon assigns them once the peer has authenticated."""
        ...

    @property
    def idle(self) -> float: ...

    @property
    def maxconnect(self) -> float: ...

    @property
    def debug(self) -> bool:
        """pppd's ``debug`` option: the sessions' debug lines (pppd's packet lines) without ``-d``."""
        ...

    @property
    def proxyarp(self) -> bool: ...


@dataclasses.dataclass
class DaemonPaths:
    """Files the daemon reads and runs; tests point them elsewhere."""

    secrets: str = CHAP_SECRETS
    ip_up: str = IP_UP
    ip_down: str = IP_DOWN


class Daemon:
    """pypptpd's sessions behind a :class:`ControlServer`."""

    def __init__(
        self,
        settings: ServerSettings,
        pool: AddressPool,
        policy: SessionPolicy,
        *,
        paths: DaemonPaths | None = None,
        ipparam: bool = True,
        speed: str = DEFAULT_SPEED,
        clamp_mss: bool = True,
        logfile: str | None = None,
        wtmp: str | None = None,
        trace_dir: str | None = None,
        trace_max_events: int = DEFAULT_MAX_EVENTS,
        aaa: RadiusAaa | None = None,
        claims: Claims | None = None,
    ) -> None:
        """``claims``: other processes (``--workers``) serve from the same ``connections`` limit and pool:
        each session claims a seat (``seat/I``, ``I < connections``) and a pinned address (``pin/A``)
        across them, and the pool claims its slots (:meth:`AddressPool.share_across_processes`); they
        create ``pppN`` devices in this namespace too: units are claimed across processes, and one taken
        meanwhile is replaced by the next free one.
        ``wtmp``: the wtmp file for the sessions' login and logout records (``-w``), None for none."""
        self.settings = settings
        self.pool = pool
        self.policy = policy
        self.paths = paths or DaemonPaths()
        self.ipparam = ipparam
        self.speed = speed
        self.clamp_mss = clamp_mss
        self.logfile = logfile
        self.wtmp = wtmp
        self._wtmp_writer: WtmpWriter | None = None  # made at the first record: nothing when -w is off
        self.trace_dir = trace_dir
        """``--trace DIR``: one JSON-lines trace per session there (:mod:`pypptp.aio.trace`)."""
        self.trace_max_events = trace_max_events
        self._starting_trace: JsonLinesTracer | None = None  # the trace of the session being started
        self.claims = claims
        if claims is not None:
            share_units_between_processes()
            pool.share_across_processes(claims)
        self.secrets = ChapSecrets(())
        self._secrets_file = self.paths.secrets
        self._secrets_seen: Stamp | None = None
        self.server = ControlServer(settings, hooks=self)
        self.server.trace_control = trace_dir is not None
        self.transport = GreTransport(None if settings.listen in ("", "0.0.0.0") else settings.listen)
        self.sessions: dict[tuple[int, int], DaemonSession] = {}
        self.admitted = 0
        """Sessions with addresses (authenticated): what ``connections`` limits."""
        self._pinned_in_use: set[IPv4Address] = set()
        self.stopping = False
        self._runners: set[ScriptRunner] = set()  # sessions' script runners until their scripts end
        self._netlink: set[asyncio.Task[None]] = set()  # proxy ARP work (then ip-up or ip-down) under way
        self._draining: dict[IPv4Address, asyncio.Future[None]] = {}
        """The addresses of ended sessions whose teardown is under way (:meth:`_drain`): done when over."""
        self._draining_pins: dict[IPv4Address, Claim] = {}  # --workers: a draining pinned address's claim
        self._drains: set[asyncio.Task[None]] = set()
        self.drain_limit = DRAIN_LIMIT
        self.stats = DaemonStats()
        """Counters for ``pypptpctl show stat`` and ``/metrics`` (:mod:`pypptp.daemon.stats`)."""
        self.aaa = aaa
        """``plugin radius.so``: RADIUS judges the peers and gets the accounting (:mod:`pypptp.daemon.radius`);
        None: chap-secrets."""

    # -- lifecycle --------------------------------------------------------------------------

    def load_secrets(self, secrets: ChapSecrets | None = None, stamp: Stamp | None = None) -> None:
        """Read chap-secrets (at start and on SIGHUP); a bad file keeps the previous secrets.  Given
        ``secrets``, the file as the configuration read it (``stamp``: its
        :func:`~pypptp.conf.chap_secrets.file_stamp` then), take them instead of reading the file
        again, unless it has changed since."""
        self._secrets_file = self.paths.secrets
        self._secrets_seen = None
        if secrets is None or stamp is None or file_stamp(self._secrets_file) != stamp:
            self._refresh_secrets()
            return
        self._secrets_seen = stamp
        self._use_secrets(secrets)

    def lookup(self, client: str, server: str) -> ChapSecret | None:
        """The secrets record for an authentication (the links' ``secrets``): chap-secrets is re-read
        first if it changed since it was last read (pppd reads it at every authentication)."""
        self._refresh_secrets()
        return self.secrets.lookup(client, server)

    def _refresh_secrets(self) -> None:
        """Read chap-secrets if it is not the file last read (another inode, size or modification time)."""
        path = self._secrets_file
        seen = file_stamp(path)
        if seen is not None and seen == self._secrets_seen:
            return
        self._secrets_seen = seen
        try:
            secrets = read_secrets_file(path)
        except SecretsError as exc:
            log.error("MGR: %s; keeping the previous secrets", exc)
            return
        self._use_secrets(secrets)

    def _use_secrets(self, secrets: ChapSecrets) -> None:
        path = self._secrets_file
        for warning in secrets.warnings:
            log.warning("MGR: %s", warning)
        self.secrets = secrets
        reserved = self.pool.reserve(set(secrets.pinned_addresses()))
        log.info(
            "MGR: %d secret(s) read from %s%s",
            len(secrets.records),
            path,
            f"; kept out of the pool for their users: {', '.join(map(str, reserved))}" if reserved else "",
        )

    async def start(
        self,
        *,
        listener: socket.socket | None = None,
        gre_sock: socket.socket | None = None,
        secrets: ChapSecrets | None = None,
        secrets_stamp: Stamp | None = None,
        handoff: socket.socket | None = None,
    ) -> None:
        """Read the secrets (or take ``secrets``, see :meth:`load_secrets`), open the GRE socket (or adopt
        ``gre_sock``) and listen (or accept on ``listener``, a bound socket; or, a worker, take the
        connections its supervisor accepted from ``handoff``: :meth:`ControlServer.take_from`)."""
        if self.aaa is None:
            self.load_secrets(secrets, secrets_stamp)
        self.transport.open(gre_sock)
        if self.aaa is not None:
            await self.aaa.start(self)
        if handoff is not None:
            self.server.take_from(handoff)
        else:
            await self.server.start(listener)

    async def shutdown(self, signal_number: int = int(signal.SIGTERM)) -> None:
        """SIGTERM: LCP Terminate-Request in every session (each says ``Terminating on signal 15``, as each
        pppd did), a short wait, then CDN + StopCCRQ."""
        self.stopping = True
        sessions = list(self.sessions.values())
        for session in sessions:
            session.log.info("%s", logtext.terminating_on_signal(signal_number))
            session.ppp.terminate("pypptpd is shutting down")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + TERMINATE_GRACE
        while self.sessions and loop.time() < deadline:
            await asyncio.sleep(0.05)
        for session in list(self.sessions.values()):
            session.ppp.close("pypptpd is shutting down")
        await self.server.shutdown()
        if self._wtmp_writer is not None:  # the logout records of the sessions just ended
            await loop.run_in_executor(None, self._wtmp_writer.close)
        if self.aaa is not None:  # the sessions' Stop records, then the sockets
            await self.aaa.close()
        await self.wait_scripts()
        await loop.run_in_executor(None, wait_closed)  # every pppN gone before we say we exited
        if self._drains:  # (their devices are gone and their scripts done: nothing left but to say so)
            await asyncio.wait(list(self._drains), timeout=1.0)
        if self.trace_dir is not None:  # the sessions' last trace lines on disk (a worker ends by os._exit)
            await loop.run_in_executor(None, wait_written)
        self.transport.close()

    def terminate(self, sessions: list[DaemonSession], reason: str = ADMIN_REASON) -> None:
        """``pypptpctl terminate``: each session ends as any other does (LCP Terminate-Request; when LCP
        finishes, ip-down, the call's CDN and StopCCRQ, everything released), ``reason`` in its log."""
        for session in sessions:  # the link logs "closing the link: <reason>", the end "session ended: <reason>"
            session.ppp.terminate(reason)

    async def wait_scripts(self, timeout: float = 40.0) -> None:
        """Until every ip-up/ip-down has finished (each is bounded by its own timeout)."""
        if self._netlink:  # proxy ARP entries being made or removed: their ip-up or ip-down comes after
            await asyncio.wait(list(self._netlink), timeout=timeout)
        waits = [asyncio.ensure_future(runner.wait()) for runner in list(self._runners)]
        if waits:
            await asyncio.wait(waits, timeout=timeout)

    # -- the control server's hooks -------------------------------------------------------------

    def call_established(self, connection: ServerConnection, call: Call) -> None:
        try:
            self._start_session(connection, call)
        except Exception:
            log.exception("MGR: cannot start a session for %s; hanging up", connection.peer)
            trace, self._starting_trace = self._starting_trace, None
            if trace is not None:  # the session never started: its trace ends here
                connection.tracer = None
                trace.close(reason="the session could not be started")
            connection.hang_up(call.call_id)

    def call_cleared(self, connection: ServerConnection, call: Call, reason: str) -> None:
        session = self.sessions.get((id(connection), call.call_id))
        if session is not None:
            session.cleared = True
            session.hung_up_while_up = session.ppp.network is not None
            session.ppp.close(f"call cleared: {reason}")

    # -- sessions ------------------------------------------------------------------------------

    def _start_session(self, connection: ServerConnection, call: Call) -> None:
        policy = self.policy
        _pppd_debug(policy.debug)
        slog = SessionLog(logging.getLogger("pppd"), connection)  # pppd.pppN once the unit is chosen
        _attach_logfile(self.logfile, policy.debug)
        slog.info("%s", logtext.started(PPPD_VERSION, *_user()), extra=logs.SYSLOG_ONLY)
        peer_ip = connection.peer_ip
        assert call.peer_call_id is not None
        holder: list[DaemonSession] = []
        trace = self._open_trace(connection, call) if self.trace_dir is not None else None
        link = PppLink(
            policy.link_config(),
            secrets=self,  # looked up at authentication, re-read if the file changed (lookup)
            assign_addresses=lambda result: self._assign(holder[0], result),
            tracer=trace,
        )
        slog.link = link
        gre, ppp = session_over_gre(
            self.transport,
            peer_ip,
            call.call_id,
            call.peer_call_id,
            link,
            peer_window=call.peer_window,
            our_window=call.peer_window,  # we echo the client's window in the OCRP, as pptpd does
            log=slog,  # type: ignore[arg-type]
            on_up=self._session_up,
            on_down=self._session_down,
            on_auth=self._auth_event,
            clamp=self.clamp_mss,
            make_tun=lambda: self._make_tun(holder[0]),
            idle=policy.idle,
            maxconnect=policy.maxconnect,
            verify=self._verify if self.aaa is not None else None,
        )
        runner = ScriptRunner(self.paths.ip_up, self.paths.ip_down, log=slog)
        session = DaemonSession(connection, call, gre, ppp, runner, slog, trace=trace)
        if self.aaa is not None:
            session.radius = self.aaa.new_session()
        if trace is not None:
            session.gre_trace = GreTraceWatch(trace, gre.seq.counters, asyncio.get_running_loop())
        holder.append(session)
        self.sessions[(id(connection), call.call_id)] = session
        slog.debug("call from %s (Call ID %d)", peer_ip, call.call_id)
        session.gre_watch = asyncio.get_running_loop().call_later(NO_GRE_AFTER, self._check_gre, session)
        self._starting_trace = None  # the session owns it now
        ppp.start()

    def _open_trace(self, connection: ServerConnection, call: Call) -> JsonLinesTracer:
        """The session's trace file, ``<UTC start>-<our Call ID>-<peer address>.jsonl`` in the trace directory
        (nothing the peer chose is in the name), starting with the control messages before the call."""
        assert self.trace_dir is not None
        now = asyncio.get_running_loop().time()
        early = connection.early_control or []
        start = min([now] + [when for when, _, _ in early[:1]])  # the connection's first message, if kept
        wall = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=now - start)
        name = f"{wall:%Y%m%dT%H%M%S.%fZ}-{call.call_id}-{connection.peer_ip}.jsonl"
        header = {"role": "server", "peer": connection.peer_ip, "call_id": call.call_id}
        header |= {"peer_call_id": call.peer_call_id, "pid": os.getpid()}
        path = os.path.join(self.trace_dir, name)
        trace = JsonLinesTracer(path, start=start, header=header, wall=wall, max_events=self.trace_max_events)
        tracer = control_tracer(trace)
        for when, direction, message in early:
            tracer(when, direction, message)
        connection.early_control = None
        connection.tracer = tracer
        self._starting_trace = trace
        return trace

    def _check_gre(self, session: DaemonSession) -> None:
        """No GRE from the peer since the call was established: a filter drops IP protocol 47 (here, at
        the client, or on the way), or a NAT in between does not know PPTP.  Said once, at the deadline:
        the data path counts what it receives anyway, and nothing is added to it."""
        session.gre_watch = None
        counters = session.gre.seq.counters
        if session.ppp.closed or counters.received or counters.acks_received:
            return
        peer = session.connection.peer_ip
        log.log(
            logging.DEBUG if session.connection.quiet else logging.WARNING,
            "GRE: no GRE from %s in %g s after OCRP (our Call ID %d): is IP protocol 47 allowed through the "
            "firewall, and the client's NAT PPTP-aware?",
            peer,
            NO_GRE_AFTER,
            session.call.call_id,
        )

    def _make_tun(self, session: DaemonSession) -> TunDevice:
        """The session's ``pppN`` (made after authentication, which claimed the unit).  When other processes
        create units too (``--workers``), another unit if that one was taken meanwhile."""
        assert session.claim is not None
        if self.claims is None:
            session.tun = TunDevice(session.claim)
            return session.tun
        tun = TunDevice(session.claim, retry=True)
        if tun.claim is not None and tun.claim is not session.claim:
            session.log.warning("ppp%d was taken meanwhile; using ppp%d instead", session.unit, tun.unit)
            session.claim = tun.claim
            session.log.logger = logs.pppd_logger(tun.unit)
        session.tun = tun
        return tun

    def _assign(self, session: DaemonSession, result: AuthResult | None) -> Assignment | str:
        """The peer authenticated (the link asks before IPCP): its unit and addresses, or why it may not
        have any.

        ``connections`` counts these sessions; the unit is the lowest free one now; a pinned address (the
        user's chap-secrets record, ``a.b.c.d/n+`` for that unit) is the user's own slot, or outside the
        pool; any other session takes the lowest free slot.  A renegotiation keeps what the session has."""
        if session.addresses is not None and session.claim is not None:
            return Assignment(*session.addresses, session.claim.unit)
        limit = self.settings.max_connections
        if self.admitted >= limit:
            return f"connection limit {limit} reached; no address for this session"
        seat_wait = False
        if self.claims is not None:  # the other workers' sessions count too
            session.seat = self.claims.first_free("seat", limit)
            seat_wait = session.seat is None  # (an ending session's, maybe: waited for, bounded)
        claim = claim_unit()
        assigned = self._addresses(session, result, claim.unit)
        if isinstance(assigned, str):
            claim.release()
            self._release_held(session)
            return assigned
        session.claim = claim
        session.addresses = assigned
        if session.radius is not None and session.radius.grant is not None:
            self._apply_grant(session)
        self.admitted += 1
        self.stats.session_started(self.admitted)
        self.server.admit(session.connection)
        session.log.logger = logs.pppd_logger(claim.unit)
        peer_ip = session.connection.peer_ip
        session.log.info("%s", logtext.connect(f"ppp{claim.unit}", call_tty(peer_ip, session.call.call_id)))
        self._hold_while_draining(session, seat_wait)
        return Assignment(*assigned, claim.unit)

    def _addresses(
        self, session: DaemonSession, result: AuthResult | None, unit: int
    ) -> tuple[IPv4Address, IPv4Address] | str:
        """(local, peer) for a session on ``unit``, leased from the pool, or why there are none."""
        pool = self.pool
        secret = result.secret if result is not None else None
        static = secret.addresses.assigned_address(unit) if secret is not None else None
        if session.radius is not None and session.radius.grant is not None:
            static = session.radius.grant.framed_ip  # RADIUS Framed-IP-Address, else the pool
        if static is not None:
            if static in self._pinned_in_use:
                return f"address {static} is in use by another session"
            if self.claims is not None:  # (in the pool or not) another worker's session may have it
                pin = self._draining_pins.pop(static, None)  # (its last session here is still being torn down)
                pin = pin if pin is not None else self.claims.take(f"pin/{static}")
                if pin is None:
                    return f"address {static} is in use by another session"
                session.held = (*session.held, pin)
            lease = pool.acquire_remote(static)
            if lease is None and static in pool.remote[: pool.capacity]:
                return f"address {static} is in use by another session"
            if lease is None and not pool.shared_local:  # a local address from a slot of the pool
                lease = pool.acquire()
                if lease is None:
                    return f"no address left in the pool ({self._in_use(pool)})"
            local = lease.local if lease is not None else pool.local[0]
            session.pinned = static
            self._pinned_in_use.add(static)
            addresses = (local, static)
        else:
            lease = pool.acquire()
            if lease is None:
                return f"no address left in the pool ({self._in_use(pool)})"
            addresses = (lease.local, lease.remote)
        session.lease = lease
        return addresses

    def _in_use(self, pool: AddressPool) -> str:
        return f"{pool.in_use} in use" if self.claims is None else f"{pool.in_use} in use by this worker"

    def _teardown_addresses(self, local: IPv4Address, peer: IPv4Address) -> list[IPv4Address]:
        """The addresses a session's device holds that no other session shares: the peer's, and ours
        unless every session has the one ``localip`` (the kernel keeps a shared local address's routes
        while any device still has it)."""
        return [peer] if self.pool.shared_local else [peer, local]

    def _hold_while_draining(self, session: DaemonSession, seat_wait: bool = False) -> None:
        """A session given an address whose previous session is still being torn down: its network (the
        device, the routes, ip-up) comes up once that is over, not before (see :meth:`_drain`).  Likewise
        with ``seat_wait`` (``--workers``, every seat held): once a seat is free (:meth:`_await_seat`)."""
        assert session.addresses is not None
        loop = asyncio.get_running_loop()
        waits = [self._draining[a] for a in self._teardown_addresses(*session.addresses) if a in self._draining]
        if session.lease is not None and self.pool.waiting(session.lease.index):  # another worker drains it
            settled: asyncio.Future[None] = loop.create_future()
            self._background(self._settle(session, session.lease.index, settled))
            waits.append(settled)
        lines: list[tuple[str, object, float]] = []
        if waits:
            line = "%s is still held by the teardown of its previous session: the network comes up once that is over"
            lines.append((line + " (at most %g s)", session.addresses[1], self.drain_limit))
        if seat_wait:
            seated: asyncio.Future[None] = loop.create_future()
            self._background(self._await_seat(session, seated))
            waits.append(seated)
            line = "connection limit %d reached: waiting for a seat another worker's ended session gives up"
            lines.append((line + " (at most %g s)", self.settings.max_connections, SEAT_WAIT))
        if not waits:
            return
        session.ppp.network_hold = waits[0] if len(waits) == 1 else asyncio.gather(*waits, return_exceptions=True)
        for line, value, limit in lines:  # (after pppd's lines of this step: ours come after them)
            loop.call_soon(session.log.info, line, value, limit)

    def _background(self, coroutine: Coroutine[Any, Any, None]) -> None:
        """``coroutine`` run as one of the daemon's address tasks (drains and waits: :attr:`_drains`)."""
        task = asyncio.ensure_future(coroutine)
        self._drains.add(task)
        task.add_done_callback(self._drains.discard)

    async def _await_seat(self, session: DaemonSession, seated: asyncio.Future[None]) -> None:
        """``--workers``: until one of the ``connections`` seats is free (another worker's ended session
        gives its seat up once that worker has seen its TCP connection go), then the session's network
        comes up; past :data:`SEAT_WAIT`, the session is refused as the limit asks."""
        assert self.claims is not None
        claims, limit = self.claims, self.settings.max_connections

        def seat_free() -> bool:
            session.seat = claims.first_free("seat", limit)
            return session.seat is not None

        def refuse() -> None:
            session.ppp.terminate(f"connection limit {limit} reached; no address for this session")

        await self._poll(session, seat_free, SEAT_WAIT, refuse, seated)

    async def _settle(self, session: DaemonSession, index: int, settled: asyncio.Future[None]) -> None:
        """``--workers``: until the slot another worker drains is ours (:meth:`AddressPool.settle`), then
        the session's network comes up; bounded: past :attr:`drain_limit` (the other worker gives up
        waiting at that limit too) the session ends instead."""
        address = self.pool.lease_at(index).remote

        def ours() -> bool:
            return self.pool.settle(index)

        def give_up() -> None:
            session.log.warning("%s is still held by another worker after %g s", address, self.drain_limit)
            session.ppp.terminate(f"no address: {address} was not released in time")

        def still_leased() -> bool:
            return session.lease is not None and session.lease.index == index

        await self._poll(session, ours, self.drain_limit + 1.0, give_up, settled, still_leased)

    @staticmethod
    async def _poll(
        session: DaemonSession,
        ready: Callable[[], bool],
        seconds: float,
        give_up: Callable[[], None],
        done: asyncio.Future[None],
        wanted: Callable[[], bool] = lambda: True,
    ) -> None:
        """``--workers``: ask ``ready`` every :data:`SETTLE_POLL` while the session lives (and ``wanted``
        says the wait is still its own): ``done`` is set once it says yes; ``give_up`` runs after
        ``seconds`` instead."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while wanted() and not session.ppp.closed:
            if ready():
                done.set_result(None)
                return
            if loop.time() > deadline:
                give_up()
                return
            await asyncio.sleep(SETTLE_POLL)

    def _release_addresses(self, session: DaemonSession) -> asyncio.Future[None] | None:
        """Give back the session's seat, pool slot, pinned address and their claims.  A session that made
        its device keeps its addresses draining: the slot is released with ``draining``, the pinned
        address's claim (``--workers``) kept, and the future returned is done when :meth:`_drain` ends."""
        device_made = session.tun is not None and session.addresses is not None
        if session.lease is not None:
            self.pool.release(session.lease, draining=device_made)
            session.lease = None
        if session.pinned is not None:
            self._pinned_in_use.discard(session.pinned)
        done: asyncio.Future[None] | None = None
        if device_made:
            assert session.addresses is not None
            done = asyncio.get_running_loop().create_future()
            for address in self._teardown_addresses(*session.addresses):
                self._draining[address] = done
        self._release_held(session)
        return done

    async def _drain(
        self,
        session: DaemonSession,
        done: asyncio.Future[None],
        slot: int | None,
        down: asyncio.Task[None] | None,
    ) -> None:
        """An ended session's teardown, after which its addresses are free: its ``pppN`` removed (until the
        kernel has unlisted it, the device still routes the peer's address), its proxy ARP entry withdrawn
        and its ip-down run (which undoes, by address, what ip-up did: ``route del -net ... gw $5``).  A
        client redialling at once would otherwise get the same address and lose its new route, proxy ARP
        entry or firewall rules to that teardown; pptpd's slot, likewise, was free only once pppd had
        exited, after ip-down.  Bounded by :attr:`drain_limit` (a script killed, a device stuck: the
        addresses are handed out anyway, with a warning)."""
        assert session.addresses is not None
        gone = session.tun.gone if session.tun is not None else None
        try:
            async with asyncio.timeout(self.drain_limit):
                if gone is not None:
                    await asyncio.shield(asyncio.wrap_future(gone))
                if down is not None:
                    await asyncio.shield(down)
                await session.scripts.wait()
        except TimeoutError:
            session.log.warning(
                "the teardown of ppp%d (%s) is not over after %g s: its addresses are free again anyway",
                session.unit,
                session.addresses[1],
                self.drain_limit,
            )
        except Exception:
            session.log.exception("internal error while ppp%d was torn down", session.unit)
        finally:
            for address in self._teardown_addresses(*session.addresses):
                if self._draining.get(address) is done:
                    del self._draining[address]
                claim = self._draining_pins.pop(address, None)
                if claim is not None:
                    claim.release()
            if slot is not None:
                self.pool.drained(slot)
            done.set_result(None)

    def _release_held(self, session: DaemonSession) -> None:
        """What ``_assign`` claimed for a session: its seat, and its pinned addresses' claims but those of
        addresses still draining (this session's, or its predecessor's: :meth:`_addresses` took that
        one's claim over, and it stays nobody else's until :meth:`_drain` is over, even when ``_assign``
        then refuses the session)."""
        for claim in session.held:
            address = IPv4Address(claim.name.removeprefix("pin/"))
            if address in self._draining:
                self._draining_pins[address] = claim
            else:
                claim.release()
        if session.seat is not None:
            session.seat.release()
        session.held, session.seat = (), None

    async def _verify(self, ppp: PppSession, request: AuthRequest) -> ExternalVerdict:
        """A session's peer credentials, for the AAA backend (RADIUS)."""
        session = self._find(ppp)
        if session is None or self.aaa is None:
            return ExternalVerdict(False, reason="the session is gone")
        return await self.aaa.authenticate(session, request)

    def _apply_grant(self, session: DaemonSession) -> None:
        """What the Access-Accept granted, on the session about to come up."""
        assert session.radius is not None and session.radius.grant is not None
        grant, ppp = session.radius.grant, session.ppp
        if grant.session_timeout:
            ppp.set_limits(maxconnect=float(grant.session_timeout))  # pppd's radius plugin: maxconnect
        if grant.idle_timeout:
            ppp.set_limits(idle=float(grant.idle_timeout))
        if grant.framed_mtu:
            ppp.mtu_limit = grant.framed_mtu
        if grant.framed_pool and grant.framed_ip is None:
            session.log.info("Framed-Pool %r: pypptpd has one pool, remoteip's", grant.framed_pool[:64])

    def _auth_event(self, ppp: PppSession, event: Authenticated | AuthAttemptFailed) -> None:
        """Each failed attempt of a peer counts toward its address's budget (:mod:`pypptp.aio.server`)."""
        if isinstance(event, AuthAttemptFailed):
            session = self._find(ppp)
            if session is not None:
                if self.aaa is not None:
                    self.stats.auth_failed("rejected", event.method)
                    self.server.auth_failed(session.connection, event.peer_name, event.method)
                    return
                known = any(record.client == event.peer_name for record in self.secrets.records)
                self.stats.auth_failed("bad_secret" if known else "unknown_user", event.method)
                self.server.auth_failed(session.connection, event.peer_name, event.method)

    def _find(self, ppp: PppSession) -> DaemonSession | None:
        for session in self.sessions.values():
            if session.ppp is ppp:
                return session
        return None

    def _script_info(self, session: DaemonSession, up: NetworkUp) -> ScriptInfo:
        stats = session.ppp.stats
        return ScriptInfo(
            ifname=f"ppp{session.unit}",
            tty=call_tty(session.connection.peer_ip, session.call.call_id),
            speed=self.speed,
            local=str(up.local_address),
            remote=str(up.peer_address),
            ipparam=session.connection.peer_ip if self.ipparam else "",
            peer_name=session.user,
            unit=session.unit,
            dns=(),  # pppd exports DNS1/DNS2 only for servers the peer gave us (usepeerdns): none on a server
            connect_time=asyncio.get_running_loop().time() - (session.ppp.network_since or session.ppp.started_at),
            bytes_sent=stats.bytes_sent,
            bytes_received=stats.bytes_received,
        )

    def _session_up(self, ppp: PppSession, up: NetworkUp) -> None:
        session = self._find(ppp)
        if session is None:
            return
        previous = session.up
        session.up = up
        if previous is None:
            self._check_way_out(session)
            self._log_wtmp_login(session)
            if self.aaa is not None:
                self.aaa.started(session)
        if previous is not None and (previous.local_address, previous.peer_address) == (
            up.local_address,
            up.peer_address,
        ):
            return  # a renegotiation with the same addresses: ip-up and proxy ARP stand
        self._runners.add(session.scripts)
        session.scripts.on_not_started = lambda which, reason: self._script_not_started(session, which, reason)
        info = self._script_info(session, up)
        if self.policy.proxyarp and session.proxy_arp is None and session.proxy_arp_for is None:
            session.proxy_arp = self._off_loop(self._proxy_arp_then_ip_up(session, up, info))
        else:
            session.scripts.up(info)

    def _wtmp_records(self) -> WtmpWriter:
        """The thread that appends to wtmp, started with the first record (none while ``-w`` is off)."""
        if self._wtmp_writer is None:
            self._wtmp_writer = WtmpWriter(log)
        return self._wtmp_writer

    def _log_wtmp_login(self, session: DaemonSession) -> None:
        """pptpd-logwtmp's ip-up: ``logwtmp(pppN, peer's name, client's address)``, once per session."""
        if self.wtmp is None:
            return
        session.wtmp = self.wtmp
        peer_ip = session.connection.peer_ip
        name = wtmp_user(session.peer_name, session.ppp.link.config.auth.strip_domain)
        record = UtmpRecord.login(f"ppp{session.unit}", name, peer_ip, time.time(), IPv4Address(peer_ip))
        self._wtmp_records().write(self.wtmp, record)

    def _check_way_out(self, session: DaemonSession) -> None:
        """Once per session, as its network comes up: whether its traffic can leave this host (forwarding
        on, a route out); a few /proc reads, never on the data path."""
        ifname = f"ppp{session.unit}"
        for problem in (forwarding_problem(ifname), route_problem(ifname)):
            if problem is not None:
                session.log.warning("%s", problem)

    def _off_loop(self, work: Coroutine[object, object, None]) -> asyncio.Task[None]:
        task = asyncio.ensure_future(work)
        self._netlink.add(task)
        task.add_done_callback(self._netlink.discard)
        return task

    async def _proxy_arp_then_ip_up(self, session: DaemonSession, up: NetworkUp, info: ScriptInfo) -> None:
        """pppd's ipcp_up: the proxy ARP entry (netlink, off the event loop), then ip-up, unless the session
        ended meanwhile (its network-down removes the entry once this is done)."""
        try:
            interface = await add_proxy_arp(up.peer_address)
        except TunError as exc:
            session.log.warning("%s", exc)
            interface = None
        if interface is None:
            session.log.warning("Cannot determine ethernet address for proxy ARP")
        else:
            session.proxy_arp_on, session.proxy_arp_for = interface, up.peer_address
            session.log.info("proxy ARP entry for %s on %s", up.peer_address, interface)
        if not session.ppp.closed:
            session.scripts.up(info)

    async def _proxy_arp_off_then_ip_down(
        self, session: DaemonSession, lines: list[str], info: ScriptInfo | None
    ) -> None:
        """pppd's ipcp_down: the proxy ARP entry goes (once it has been made, if that was under way), then
        the session's last lines and ip-down, in pppd's order."""
        try:
            async with asyncio.timeout(NETLINK_PATIENCE):
                if session.proxy_arp is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.shield(session.proxy_arp)
                if session.proxy_arp_on is not None and session.proxy_arp_for is not None:
                    await asyncio.shield(remove_proxy_arp(session.proxy_arp_for, session.proxy_arp_on))
                    session.proxy_arp_on = session.proxy_arp_for = None
        except TimeoutError:
            session.log.warning("the proxy ARP entry was not withdrawn within %g s", NETLINK_PATIENCE)
        self._ip_down(session, lines, info)

    def _last_lines(self, session: DaemonSession, reason: str) -> list[str]:
        """pppd's lines at the end of a session, in pppd's order, then ours.

        pppd prints the link's figures when IPCP goes down (only for a link that carried IP), ``Modem
        hangup`` when pptpctrl closes its pty (the call was cleared: CCRQ, StopCCRQ, TCP gone),
        ``Connection terminated.`` when the link is dead and ``Exit.`` (syslog only) as it exits.  A call
        cleared while IPCP was up (the client just hung up) gives ``Modem hangup`` first, the figures
        next (the hangup takes LCP and IPCP down); after a Terminate-Request, an echo timeout, ``idle``,
        ``maxconnect``, SIGTERM or a failed authentication the figures come first, and ``Modem hangup``
        only if the call was then cleared before LCP finished."""
        ppp = session.ppp
        figures: list[str] = []
        if ppp.network_since is not None:
            elapsed = asyncio.get_running_loop().time() - ppp.network_since
            figures += logtext.link_stats(elapsed, ppp.stats.bytes_sent, ppp.stats.bytes_received)
        hangup = [logtext.hangup()] if session.cleared else []
        lines = hangup + figures if session.hung_up_while_up else figures + hangup
        lines += [logtext.connection_terminated(), logtext.exit_line()]
        summary = ppp.link.take_notice_summary()  # what the peer repeated, counted and not logged
        if summary is not None:
            lines.append(summary)
        lines.append(f"session ended: {reason}")
        assigned = session.addresses
        peer_address = session.up.peer_address if session.up is not None else assigned[1] if assigned else None
        lines.append(
            summary_line(
                user=session.peer_name,
                strip_domain=ppp.link.config.auth.strip_domain,
                peer=session.connection.peer_ip,
                ip=str(peer_address) if peer_address is not None else None,
                ifname=f"ppp{session.unit}" if assigned else None,
                duration=asyncio.get_running_loop().time() - ppp.started_at,
                sent=ppp.stats.bytes_sent,
                received=ppp.stats.bytes_received,
                reason=reason,
            )
        )
        return lines

    def _ip_down(self, session: DaemonSession, lines: list[str], info: ScriptInfo | None) -> None:
        for line in lines:
            if line == logtext.exit_line():
                session.log.info("%s", line, extra=logs.SYSLOG_ONLY)  # pppd writes it to syslog only
            else:
                session.log.info("%s", line)
        if info is not None:
            session.scripts.down(info)
            task = asyncio.ensure_future(session.scripts.wait())
            task.add_done_callback(lambda _: self._runners.discard(session.scripts))
        else:
            self._runners.discard(session.scripts)

    def _script_not_started(self, session: DaemonSession, which: str, reason: str) -> None:
        """ip-up exists but could not be started: the session ends (pppd would carry on, without the
        per-user rules and accounting ip-up sets up)."""
        if which != "up" or session.ppp.closed:
            return
        path = session.scripts.ip_up
        session.log.error(
            "%s could not be started (%s): ending the session, which must not run without it", path, reason
        )
        session.ppp.terminate(f"{path} could not be started")

    def _session_down(self, ppp: PppSession, reason: str) -> None:
        session = self._find(ppp)
        if session is None:
            return
        del self.sessions[(id(session.connection), session.call.call_id)]
        session.scripts.on_not_started = None  # (a closure over the session: a cycle through its runner)
        if session.gre_watch is not None:
            session.gre_watch.cancel()
        session.gre.close()
        if session.claim is not None:
            session.claim.release()  # a session that never made its device still holds its unit
        slot = session.lease.index if session.lease is not None else None
        drained = self._release_addresses(session)
        if session.addresses is not None:
            self.admitted -= 1
        if session.wtmp is not None:  # pptpd-logwtmp's ip-down: logwtmp(pppN, "", "")
            self._wtmp_records().write(session.wtmp, UtmpRecord.logout(f"ppp{session.unit}", time.time()))
        self.stats.session_ended(session, reason)
        if self.aaa is not None:
            self.aaa.stopped(session, reason)
        lines = self._last_lines(session, reason)
        info = self._script_info(session, session.up) if session.up is not None else None  # the figures of now
        down = None
        if session.proxy_arp is not None or session.proxy_arp_on is not None:
            down = self._off_loop(self._proxy_arp_off_then_ip_down(session, lines, info))
        else:
            self._ip_down(session, lines, info)
        if drained is not None:
            self._background(self._drain(session, drained, slot, down))
        if not session.cleared:  # the PPP side ended: CDN and StopCCRQ, as pptpctrl did when pppd exited
            stop = StopReason.STOP_LOCAL_SHUTDOWN if self.stopping else StopReason.NONE
            session.connection.hang_up(session.call.call_id, stop)
        if session.trace is not None:  # after the CDN and StopCCRQ, which it records
            if session.gre_trace is not None:
                session.gre_trace.stop()
            session.connection.tracer = None
            stats = ppp.stats
            summary = {"reason": reason, "bytes_sent": stats.bytes_sent, "bytes_received": stats.bytes_received}
            session.trace.close(asyncio.get_running_loop().time(), **summary)


PPPD_VERSION = "2.4.9"
"""The pppd whose behaviour and lines the sessions reproduce (Debian 12's), for its start-up line."""


@functools.cache
def _user() -> tuple[str, int]:
    """Who runs the daemon, for ``pppd 2.4.9 started by root, uid 0``."""
    uid = os.getuid()
    try:
        return pwd.getpwuid(uid).pw_name, uid
    except KeyError:
        return str(uid), uid


def _pppd_debug(on: bool) -> None:
    """pppd's ``debug`` option (re-read on SIGHUP): the ``pppd`` loggers at debug level, whatever the
    daemon's own level (``-d``, SIGUSR1), as each pppd had its own ``debug``."""
    pppd = logging.getLogger("pppd")
    if (pppd.level == logging.DEBUG) != on:
        pppd.setLevel(logging.DEBUG if on else logging.NOTSET)


def _attach_logfile(path: str | None, debug: bool = False) -> None:
    """pppd's ``logfile``, as the options read last give it: one handler on the ``pppd`` logger, which every
    session's lines reach (``pppd`` before the unit, ``pppd.pppN`` after, propagating), so each line is
    written once; another path after SIGHUP replaces it (pppd's per-process file becomes the file of the
    sessions started since), and no ``logfile`` removes it."""
    pppd = logging.getLogger("pppd")
    wanted = os.path.abspath(path) if path else None
    for handler in list(pppd.handlers):
        if isinstance(handler, logs.LogfileHandler):
            if handler.baseFilename == wanted:
                handler.with_debug = debug
                return
            pppd.removeHandler(handler)
            handler.close()
    if wanted is not None:
        with contextlib.suppress(OSError):
            pppd.addHandler(logs.LogfileHandler(wanted, debug=debug))
