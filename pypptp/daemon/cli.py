"""``pypptpd``: the daemon's command line (pptpd(8) flags, see :mod:`pypptp.daemon.config`).

``pypptpd -c /etc/pptpd.conf`` reads pptpd.conf, ``/etc/ppp/options`` then the
``option`` file, and ``/etc/ppp/chap-secrets``; detaches unless ``-f``;
locks and writes its pidfile; serves PPTP calls with one PPP session and
``pppN`` device each.  ``--check`` validates every file and exits (0 valid, 1 not).

Starting (:mod:`pypptp.daemon.lifecycle`): the pidfile is locked before
anything is bound, so a second daemon stops with ``another pypptpd is running
(pid N, FILE)`` and status 1 and never touches the first's pidfile.  Without
``-f`` the command returns once the daemon listens (status 0) or prints why it
could not start (status 1).  Under systemd (``Type=notify``, :mod:`pypptp.daemon.systemd`)
the daemon says READY=1 once it listens, RELOADING=1 then READY=1 on SIGHUP,
STOPPING=1, and its session count as STATUS=.  The log goes to stderr with
``-f``, else to syslog; detached with no syslog to :data:`FALLBACK_LOG`, said
on stderr before detaching.

Flags of ours, not pptpd's: ``--check``, ``--secrets FILE``, ``--system-options
FILE`` (instead of /etc/ppp/options), ``--diagnose`` (check this host: forwarding, routes, firewall,
NAT; see :mod:`pypptp.daemon.diagnose`), ``--ip-up``/``--ip-down PATH`` (instead of
/etc/ppp/ip-up and ip-down), ``--no-mss-clamp`` and ``--workers N`` (N
processes share the calls, see :mod:`pypptp.daemon.workers`).  Signals: SIGTERM and
SIGINT end every session politely and exit; SIGHUP re-reads chap-secrets and
the pppd options for new sessions and reopens the log files (pppd's ``logfile``
and the fall-back, after logrotate).  With workers, the parent holds the
pidfile and passes each signal to every worker.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import logging
import logging.handlers
import os
import resource
import signal
import socket
import stat
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pypptp.daemon.metrics import MetricsServer
    from pypptp.daemon.radius import RadiusAaa

from pypptp.aio.server import ServerSettings, listen_backlog
from pypptp.aio.trace import DEFAULT_MAX_EVENTS
from pypptp.conf.pppd_options import SYSTEM_OPTIONS
from pypptp.ctrl.connection import ControlConfig
from pypptp.daemon import logs, systemd
from pypptp.daemon.config import ERRORS, DaemonConfig, build_parser, load, validate
from pypptp.daemon.control import CONTROL_SOCKET, ControlError, ControlSocket, execute
from pypptp.daemon.fanout import Front, worker_socket
from pypptp.daemon.lifecycle import AlreadyRunning, DetachPipe, PidFile
from pypptp.daemon.manager import Daemon, DaemonPaths
from pypptp.daemon.pool import AddressPool
from pypptp.daemon.scripts import IP_DOWN, IP_UP
from pypptp.daemon.stats import snapshot
from pypptp.daemon.workers import (
    EXIT_CANNOT_START,
    MAX_WORKERS,
    Dispatcher,
    Supervisor,
    effective_workers,
    listening_socket,
    split,
    worker_ready,
)
from pypptp.host.bpf import open_gre_socket
from pypptp.host.claims import Claims
from pypptp.ppp.link import LinkConfig

__all__ = [
    "ignore_usr2",
    "main",
    "raise_fd_limit",
    "settings_from",
    "toggle_debug",
]

log = logging.getLogger("pypptpd")


def _parser() -> argparse.ArgumentParser:
    parser = build_parser()
    parser.add_argument("--system-options", metavar="FILE", default=SYSTEM_OPTIONS, help=f"instead of {SYSTEM_OPTIONS}")
    parser.add_argument("--ip-up", metavar="PATH", default=IP_UP, help="script run when a network is up")
    parser.add_argument("--ip-down", metavar="PATH", default=IP_DOWN, help="script run when it is down")
    parser.add_argument("--no-mss-clamp", action="store_true", help="do not clamp the TCP MSS of SYNs to the MTU")
    parser.add_argument(
        "--diagnose",
        action="store_true",
        help="check this host for the configuration (forwarding, routes, firewall, NAT), report, and exit",
    )
    parser.add_argument(
        "--workers",
        metavar="N",
        type=_workers,
        default=1,
        help="worker processes sharing the calls, to use more than one core (default 1: a single process); "
        "they share the pool and the connection limit, and split the pending-connection budget",
    )
    parser.add_argument(
        "--control-socket",
        metavar="PATH",
        default=CONTROL_SOCKET,
        help=f"the Unix socket pypptpctl talks to, root only (default {CONTROL_SOCKET}; none: no socket)",
    )
    parser.add_argument(
        "--metrics",
        metavar="HOST:PORT",
        type=_metrics_address,
        default=None,
        help="serve Prometheus metrics over HTTP at http://HOST:PORT/metrics (default: none)",
    )
    parser.add_argument(
        "--max-pending",
        metavar="N",
        type=_count,
        default=ServerSettings.max_pending,
        help="connections still negotiating (not yet authenticated) held at once; when full, the oldest of the "
        f"busiest source is dropped (default {ServerSettings.max_pending})",
    )
    parser.add_argument(
        "--max-pending-per-source",
        metavar="N",
        type=_count,
        default=ServerSettings.max_pending_per_source,
        help=f"of those, from one address (default {ServerSettings.max_pending_per_source})",
    )
    parser.add_argument(
        "--pending-timeout",
        metavar="SECONDS",
        type=_count,
        default=int(ServerSettings.pending_timeout),
        help="seconds from accept to authentication; a connection still negotiating then is dropped "
        f"(default {ServerSettings.pending_timeout:g})",
    )
    parser.add_argument(
        "--auth-fail-limit",
        metavar="N",
        type=_count_or_zero,
        default=ServerSettings.auth_fail_limit,
        help="authentication failures from one address within --auth-fail-window that block it "
        f"(default {ServerSettings.auth_fail_limit}; 0: never block)",
    )
    parser.add_argument(
        "--auth-fail-window",
        metavar="SECONDS",
        type=_count,
        default=int(ServerSettings.auth_fail_window),
        help=f"seconds over which --auth-fail-limit counts (default {ServerSettings.auth_fail_window:g})",
    )
    parser.add_argument(
        "--auth-fail-block",
        metavar="SECONDS",
        type=_count,
        default=int(ServerSettings.auth_fail_block),
        help="seconds a blocked address has its connections dropped at accept "
        f"(default {ServerSettings.auth_fail_block:g})",
    )
    parser.add_argument(
        "--log-budget",
        metavar="N",
        type=_count_or_zero,
        default=ServerSettings.log_budget,
        help="connections a minute from one address logged as usual; beyond, until one authenticates, their "
        f"lines go to debug level and a summary counts them (default {ServerSettings.log_budget}; 0: no limit)",
    )
    parser.add_argument(
        "--trace",
        metavar="DIR",
        type=_directory,
        help="write a structured trace of each session into DIR (one JSON-lines file per session; read it "
        "with python -m pypptp.trace FILE)",
    )
    parser.add_argument(
        "--trace-max-events",
        metavar="N",
        type=_count,
        default=DEFAULT_MAX_EVENTS,
        help=f"events a trace file holds at most; then it ends with a truncated event (default {DEFAULT_MAX_EVENTS})",
    )
    return parser


def _directory(text: str) -> str:
    if not os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a directory")
    return text


def _metrics_address(text: str) -> tuple[str, int]:
    from pypptp.daemon.metrics import parse_address

    try:
        return parse_address(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _count_or_zero(text: str) -> int:
    return 0 if text == "0" else _count(text)


def _count(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 1_000_000:
        raise argparse.ArgumentTypeError(f"a whole number from 1 to 1000000 is needed, not {text!r}")
    return int(text)


def _workers(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= MAX_WORKERS:
        raise argparse.ArgumentTypeError(f"a whole number from 1 to {MAX_WORKERS} is needed, not {text!r}")
    return int(text)


_OURS = (
    "--system-options",
    "--ip-up",
    "--ip-down",
    "--no-mss-clamp",
    "--diagnose",
    "--workers",
    "--control-socket",
    "--metrics",
    "--max-pending",
    "--max-pending-per-source",
    "--pending-timeout",
    "--auth-fail-limit",
    "--auth-fail-window",
    "--auth-fail-block",
    "--log-budget",
    "--trace",
    "--trace-max-events",
)


def _pptpd_argv(argv: Sequence[str]) -> list[str]:
    """The arguments without ours, for :mod:`pypptp.daemon.config` (which knows pptpd's set)."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        name = arg.split("=", 1)[0]
        if name in _OURS:
            skip = "=" not in arg and name not in ("--no-mss-clamp", "--diagnose")
            continue
        out.append(arg)
    return out


def settings_from(config: DaemonConfig, args: argparse.Namespace | None = None) -> ServerSettings:
    """The control server's settings (with ``args``, our admission flags too); ``stimeout`` bounds both
    the wait for SCCRQ and, once it came, the wait for the call (OCRQ)."""
    timeout = float(config.stimeout)
    settings = ServerSettings(
        listen=config.listen,
        port=config.port,
        max_connections=config.connections,
        control=ControlConfig(
            host_name="local", vendor_string="pypptp", establish_timeout=timeout, call_timeout=timeout
        ),
        trace=config.debug,
    )
    if args is None:
        return settings
    return dataclasses.replace(
        settings,
        max_pending=args.max_pending,
        max_pending_per_source=args.max_pending_per_source,
        pending_timeout=float(args.pending_timeout),
        auth_fail_limit=args.auth_fail_limit,
        auth_fail_window=float(args.auth_fail_window),
        auth_fail_block=float(args.auth_fail_block),
        log_budget=args.log_budget,
    )


SYSLOG = "/dev/log"
FALLBACK_LOG = "/var/log/pypptpd.log"
"""Where a detached daemon logs when there is no syslog (no ``/dev/log``); said on stderr before detaching."""


def _detached_handler(syslog: str = SYSLOG, fallback: str = FALLBACK_LOG) -> logging.Handler:
    """The handler of a detached daemon, chosen before detaching (stderr still reaches the admin): syslog;
    with no syslog, ``fallback`` (reopened on SIGHUP, for logrotate), and a line on stderr that says so;
    if even that cannot be opened, nothing, said on stderr too, never silently."""
    why = _unreachable(syslog)
    if why is None:
        handler = logging.handlers.SysLogHandler(syslog, facility=logging.handlers.SysLogHandler.LOG_DAEMON)
        handler.setFormatter(logs.IdentFormatter())  # pptpd[PID], pppd[PID]: the originals' identities
        return handler
    try:
        file = logs.ReopenableFile(fallback)
        open(fallback, "a", encoding="utf-8").close()  # fails now, on the admin's terminal, not unseen later
    except OSError as exc:
        print(f"pypptpd: no syslog ({why}) and {fallback}: {exc.strerror}: no log", file=sys.stderr)
        return logging.NullHandler()
    print(f"pypptpd: no syslog ({why}): logging to {fallback}", file=sys.stderr)
    file.setFormatter(logs.IdentFormatter(timestamps=True, interface=True))
    return file


def _unreachable(path: str) -> str | None:
    """Why the syslog socket ``path`` cannot be written to (missing, or nobody reading a stale one); None
    if it can.  SysLogHandler itself would say nothing: it retries at each line, silently."""
    problem: OSError | None = None
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        with socket.socket(socket.AF_UNIX, kind) as probe:
            try:
                probe.connect(path)
            except OSError as exc:
                problem = problem or exc
                continue
            return None
    return f"{path}: {problem.strerror if problem is not None else 'unreachable'}"


def _setup_logging(
    foreground: bool, debug: bool, *, syslog: str = SYSLOG, detached: logging.Handler | None = None
) -> None:
    """stderr (``-f``), or ``detached`` (:func:`_detached_handler`: syslog or its fall-back).  Syslog, the
    fall-back file, and stderr when it is a pipe or a terminal, are written by a thread of its own
    (:class:`~pypptp.daemon.logs.BackgroundLog`), and so is pppd's ``logfile`` then: a slow or stalled
    reader costs log lines (counted, and said in the log), never the event loop's time.
    stderr redirected to a regular file is written in place, a page-cache write, in order with what the
    daemon does."""
    level = logging.DEBUG if debug else logging.INFO
    handler: logging.Handler
    in_place = False
    if foreground and _stderr_is_journal():
        handler = _journal_handler(syslog)
    elif foreground:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logs.IdentFormatter(timestamps=True, interface=True))
        in_place = _regular_file(sys.stderr)
    else:
        handler = detached if detached is not None else _detached_handler(syslog)
        in_place = isinstance(handler, logging.NullHandler)
    root = logging.getLogger()
    for old in root.handlers:
        if isinstance(old, logs.BackgroundHandler):
            old.close()
    if in_place:
        root.handlers[:] = [handler]
    else:
        background = logs.BackgroundLog([handler])
        background.start()
        root.handlers[:] = [logs.BackgroundHandler(background)]
    root.setLevel(level)
    logging.getLogger("asyncio").setLevel(logging.WARNING)
    logging.getLogger("pyroute2").setLevel(logging.WARNING)


def _stderr_is_journal() -> bool:
    """stderr is systemd's journal stream (the unit runs ``pypptpd -f``): systemd sets ``JOURNAL_STREAM``
    to that stream's ``device:inode`` so that a service can tell, and talk to the journal properly."""
    expected = os.environ.get("JOURNAL_STREAM", "")
    try:
        st = os.fstat(sys.stderr.fileno())
    except (AttributeError, OSError, ValueError):
        return False
    return expected == f"{st.st_dev}:{st.st_ino}"


def _journal_handler(syslog: str) -> logging.Handler:
    """Under systemd: the syslog socket (journald's, behind ``/dev/log``), so that each line carries its own
    identity (``SYSLOG_IDENTIFIER`` pptpd or pppd, as the originals'; fail2ban and ``journalctl -t pptpd``
    key on it) and no second time stamp; lines written to stderr would all be the unit's ``pypptpd`` and
    carry our time stamp too.  With no syslog socket, stderr, bare (the journal adds time and name)."""
    if _unreachable(syslog) is None:
        handler: logging.Handler = logging.handlers.SysLogHandler(
            syslog, facility=logging.handlers.SysLogHandler.LOG_DAEMON
        )
        handler.setFormatter(logs.IdentFormatter())
        return handler
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logs.IdentFormatter(interface=True))
    return handler


def _regular_file(stream: object) -> bool:
    try:
        return stat.S_ISREG(os.fstat(stream.fileno()).st_mode)  # type: ignore[attr-defined]
    except (AttributeError, OSError, ValueError):
        return False


def toggle_debug() -> None:
    """SIGUSR1, as pppd: debug logging on, or back off (the level ``-d`` or pptpd.conf's ``debug`` set)."""
    root = logging.getLogger()
    if root.level > logging.DEBUG:
        root.setLevel(logging.DEBUG)
        log.info("MGR: SIGUSR1: debug logging on")
    else:
        log.info("MGR: SIGUSR1: debug logging off")
        root.setLevel(logging.INFO)


def ignore_usr2() -> None:
    """SIGUSR2: pppd renegotiates compression; MPPE cannot restart on the same keys without reusing
    RC4 keystream, so the signal is logged and otherwise ignored (it never kills the daemon)."""
    log.info("MGR: SIGUSR2: ignored (pppd would renegotiate CCP; MPPE on the same keys must not restart)")


def raise_fd_limit() -> int:
    """The soft limit on open files raised to the hard one (every pending connection, session and pppN
    holds descriptors; Debian's soft default of 1024 would make accept() fail under load); the new limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20
    if soft != resource.RLIM_INFINITY and soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            return hard
    return soft


class _Startup:
    """How this process says it serves, or why it could not start: to systemd (``NOTIFY_SOCKET``), to the
    process that started it detached (:class:`~pypptp.daemon.lifecycle.DetachPipe`), and in the log."""

    def __init__(self, notify: systemd.Notifier, pipe: DetachPipe | None = None) -> None:
        self.notify = notify
        self.pipe = pipe

    def ready(self, status: str) -> None:
        self.notify.ready(status)
        if self.pipe is not None:
            _flush_log()
            self.pipe.ready()

    def failed(self, reason: str) -> None:
        log.error("MGR: cannot start: %s", reason)
        _flush_log()
        if self.pipe is not None:
            self.pipe.failed(f"cannot start: {reason}")


def _flush_log() -> None:
    """What was logged so far, written (the log thread's queue drained, at most a few seconds): the start
    lines are in the log before the starter returns."""
    for handler in logging.getLogger().handlers:
        with contextlib.suppress(Exception):
            handler.flush()


class _WorkerStartup(_Startup):
    """In a ``--workers`` worker: ready goes to the supervisor (which tells the others once every worker
    is); a failure goes to the starter at once."""

    def __init__(self, parent: _Startup) -> None:
        super().__init__(systemd.Notifier(None), parent.pipe)

    def ready(self, status: str) -> None:
        worker_ready()
        if self.pipe is not None:
            self.pipe.forget()


class _Configured:
    """The per-session configuration, swapped whole on SIGHUP."""

    def __init__(self, config: DaemonConfig) -> None:
        self.config = config
        self.radius = config.radius is not None
        """RADIUS or chap-secrets, as the daemon started: a SIGHUP changes RADIUS's servers, not the backend."""

    def link_config(self) -> LinkConfig:
        link = self.config.options.link_config()
        if link.auth.external != self.radius:
            link = dataclasses.replace(link, auth=dataclasses.replace(link.auth, external=self.radius))
        return link

    @property
    def idle(self) -> float:
        return float(self.config.options.idle)

    @property
    def maxconnect(self) -> float:
        return float(self.config.options.maxconnect)

    @property
    def proxyarp(self) -> bool:
        return self.config.options.proxyarp

    @property
    def debug(self) -> bool:
        return self.config.options.debug


@dataclasses.dataclass
class _Worker:
    """One worker's place among ``count`` (``--workers``): its channel to the supervisor, which hands it
    connections, and its part of the pending budget (the pool and ``connections`` are shared: ``tag``
    names the claims of this daemon's workers, :class:`pypptp.host.claims.Claims`)."""

    index: int
    count: int
    max_pending: int
    max_pending_per_source: int
    channel: socket.socket
    tag: str


STATUS_INTERVAL = 10.0
"""Seconds between two looks at the session count for systemd's ``STATUS=`` line (sent when it changed)."""


async def _start(daemon: Daemon, config: DaemonConfig, worker: _Worker | None, pool: AddressPool) -> None:
    """Listen and open the GRE socket (a worker: take the connections its supervisor hands it, and GRE for
    its Call IDs only)."""
    if worker is None:
        await daemon.start(secrets=config.secrets, secrets_stamp=config.secrets_stamp)
        return
    log.info(
        "MGR: worker %d of %d: Call IDs %d mod %d; the pool (%d addresses) and %d connection(s) shared; "
        "%d pending connection(s)",
        worker.index,
        worker.count,
        worker.index,
        worker.count,
        pool.size,
        daemon.settings.max_connections,
        worker.max_pending,
    )
    await daemon.start(
        handoff=worker.channel,
        gre_sock=open_gre_socket(worker.count, worker.index),
        secrets=config.secrets,
        secrets_stamp=config.secrets_stamp,
    )


def _radius(config: DaemonConfig, worker: _Worker | None) -> RadiusAaa | None:
    """``plugin radius.so``: the RADIUS backend (pppd's radius plugin, and RFC 5176 with ``radius-dae-listen``)."""
    if config.radius is None:
        return None
    from pypptp.daemon.radius import RadiusAaa

    options = config.options
    dae = options.radius_dae_listen
    if dae is not None and worker is not None:
        if worker.index == 0:
            log.warning(
                "MGR: %s: radius-dae-listen is off with --workers: a worker sees only its own sessions",
                options.lines.get("radius-dae-listen", "radius-dae-listen"),
            )
        dae = None
    return RadiusAaa(config.radius, listen=config.listen, dae_listen=dae, dae_clients_file=options.radius_dae_clients)


async def _serve(
    config: DaemonConfig,
    args: argparse.Namespace,
    argv: list[str],
    worker: _Worker | None = None,
    startup: _Startup | None = None,
) -> int:
    startup = startup or _Startup(systemd.Notifier(None))
    configured = _Configured(config)
    settings, pool = settings_from(config, args), config.pool
    if worker is not None:
        settings = dataclasses.replace(
            settings,
            max_pending=worker.max_pending,
            max_pending_per_source=worker.max_pending_per_source,
            call_id_stride=worker.count,
            call_id_offset=worker.index,
        )
    daemon = Daemon(
        settings,
        pool,
        configured,
        paths=DaemonPaths(secrets=config.secrets_path, ip_up=args.ip_up, ip_down=args.ip_down),
        ipparam=not config.noipparam,
        speed=config.speed,
        clamp_mss=not args.no_mss_clamp,
        logfile=config.options.logfile,
        wtmp=config.wtmp if config.logwtmp else None,
        trace_dir=args.trace,
        trace_max_events=args.trace_max_events,
        aaa=_radius(config, worker),
        claims=Claims(worker.tag) if worker is not None else None,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    index = worker.index if worker is not None else None

    async def take() -> dict[str, Any]:
        return snapshot(daemon, loop.time(), index)

    control: ControlSocket | None = None
    metrics: MetricsServer | None = None
    try:  # the control socket first: another daemon listening on it is the clearest reason not to start
        if args.control_socket != "none":
            path = args.control_socket if worker is None else worker_socket(args.control_socket, worker.index)
            control = ControlSocket(path, lambda command: execute(daemon, command, ctl_reload, index))
            await control.start()
        await _start(daemon, config, worker, pool)
        if args.metrics is not None and worker is None:
            from pypptp.daemon.metrics import MetricsServer, on_loop

            metrics = MetricsServer(args.metrics, on_loop(loop, take))
            metrics.start()
    except (ControlError, OSError) as exc:
        if control is not None:
            control.close()
        startup.failed(str(exc))
        if metrics is not None:
            metrics.close()
        if daemon.server.sockets:
            await daemon.shutdown()
        return 1
    received = [int(signal.SIGTERM)]

    def on_stop(number: int) -> None:
        received[0] = number
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_stop, int(sig))

    def reload(origin: str = "SIGHUP") -> str:
        """SIGHUP's work (``pypptpctl reload`` too, ``origin`` in the log): its outcome, in one line."""
        startup.notify.reloading()
        try:
            return _reload(origin)
        finally:
            startup.notify.ready(_status(daemon))

    def _reload(origin: str) -> str:
        reopened = logs.reopen_files()
        try:
            fresh = load(argv, system_options=args.system_options)
        except ERRORS as exc:
            for line in str(exc).splitlines():
                log.error("MGR: %s: %s", origin, line)
            log.error("MGR: %s: keeping the running configuration", origin)
            return f"failed, keeping the running configuration: {' '.join(str(exc).split())}"
        configured.config = fresh
        daemon.paths.secrets = fresh.secrets_path
        daemon.logfile = fresh.options.logfile
        daemon.wtmp = fresh.wtmp if fresh.logwtmp else None  # for new sessions; a session logs out where it logged in
        if (fresh.radius is not None) != configured.radius:
            kept = "RADIUS" if configured.radius else "chap-secrets"
            log.error("MGR: %s: 'plugin radius.so' changed: %s stays in use until pypptpd restarts", origin, kept)
        if daemon.aaa is not None and fresh.radius is not None:
            daemon.aaa.reconfigure(fresh.radius)  # new sessions ask the servers as the file now says
        if daemon.aaa is None:
            daemon.load_secrets(fresh.secrets, fresh.secrets_stamp)
        for warning in fresh.warnings:
            log.warning("MGR: %s", warning)
        outcome = f"secrets and pppd options re-read; they apply to new sessions; {reopened} log file(s) reopened"
        log.info("MGR: %s: %s", origin, outcome)
        return outcome + "".join(f"; warning: {warning}" for warning in fresh.warnings)

    def ctl_reload() -> str:
        return reload("pypptpctl reload")

    loop.add_signal_handler(signal.SIGHUP, reload)
    loop.add_signal_handler(signal.SIGUSR1, toggle_debug)
    loop.add_signal_handler(signal.SIGUSR2, ignore_usr2)
    startup.ready(f"listening on {config.listen}:{config.port}")  # once the handlers are there: a SIGHUP
    # sent as soon as the supervisor says "serving" must not meet SIGHUP's default action (which kills)
    serving = asyncio.ensure_future(daemon.server.serve_forever())
    status = asyncio.ensure_future(_report_status(daemon, startup.notify)) if startup.notify.enabled else None
    await stop.wait()
    startup.notify.stopping()
    if status is not None:
        status.cancel()
    log.info(
        "MGR: shutting down: %d session(s), %d connection(s)", len(daemon.sessions), len(daemon.server.connections)
    )
    serving.cancel()
    if control is not None:
        control.close()
    if metrics is not None:
        metrics.close()
    await daemon.shutdown(received[0])
    log.info("MGR: Exit.")
    return 0


def _status(daemon: Daemon) -> str:
    return f"{len(daemon.sessions)} session(s), {len(daemon.server.connections)} connection(s)"


async def _report_status(daemon: Daemon, notify: systemd.Notifier) -> None:
    """systemd's ``STATUS=`` (``systemctl status``): the session count, when it changed."""
    last = ""
    while True:
        await asyncio.sleep(STATUS_INTERVAL)
        now = _status(daemon)
        if now != last:
            notify.status(now)
            last = now


def _supervise(config: DaemonConfig, args: argparse.Namespace, argv: list[str], count: int, startup: _Startup) -> int:
    """``--workers N``: the listening socket, then N workers forked and kept by a :class:`Supervisor`,
    which hands each accepted connection to the least-loaded one (:class:`Dispatcher`)."""
    settings = settings_from(config, args)
    try:
        listener = listening_socket(config.listen, config.port, backlog=listen_backlog(settings))
    except OSError as exc:
        startup.failed(f"cannot listen on {config.listen}:{config.port}: {exc.strerror or exc}")
        return 1
    pending = split(settings.max_pending, count)
    per_source = split(settings.max_pending_per_source, count)
    current = [config]
    control_path = None if args.control_socket == "none" else args.control_socket
    front = Front(control_path, args.metrics, count)
    try:
        if control_path is not None or args.metrics is not None:
            front.start(close_in_child=[listener])
    except (ControlError, OSError) as exc:
        startup.failed(str(exc))
        listener.close()
        return 1
    dispatcher = Dispatcher(listener, count)
    tag = f"pypptpd/{os.getpid()}"
    log.info(
        "MGR: accepting on %s:%d for %d workers: each connection to the least-loaded; the pool and "
        "%d connection(s) shared",
        config.listen,
        config.port,
        count,
        config.connections,
    )

    def run_worker(index: int) -> int:
        assert dispatcher.mine is not None
        worker = _Worker(index, count, max(1, pending[index]), max(1, per_source[index]), dispatcher.mine, tag)
        status = asyncio.run(_serve(current[0], args, argv, worker, _WorkerStartup(startup)))
        return EXIT_CANNOT_START if status == 1 else status

    def reload() -> None:
        """SIGHUP: what a worker restarted later should start with (the workers log the outcome)."""
        startup.notify.reloading()
        logs.reopen_files()
        try:
            fresh = load(argv, system_options=args.system_options)
        except ERRORS:
            startup.notify.ready()
            return
        current[0] = dataclasses.replace(
            current[0],
            options=fresh.options,
            secrets_path=fresh.secrets_path,
            secrets=fresh.secrets,
            secrets_stamp=fresh.secrets_stamp,
        )
        startup.notify.ready()

    def stopping() -> None:
        startup.notify.stopping()
        front.stop()

    def ready() -> None:
        log.info("MGR: %d workers serving", count)
        startup.ready(f"{count} workers listening on {config.listen}:{config.port}")

    supervisor = Supervisor(
        count, run_worker, on_reload=reload, on_ready=ready, on_stop=stopping, dispatcher=dispatcher
    )
    try:
        status = supervisor.run()
    finally:
        dispatcher.close()
        front.stop()  # before the starter hears of a failure: nothing of ours outlives its answer
        if front.pid is not None:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(front.pid, 0)
    if not supervisor.ready and status != 0:
        startup.failed("a worker could not start")
    log.info("MGR: Exit.")
    return status


def _check_workers(config: DaemonConfig, requested: int, settings: ServerSettings) -> list[str]:
    """``--check --workers N``: how the workers would serve together."""
    count, lowered = effective_workers(requested, config.connections)
    lines = [f"warning: {lowered}"] if lowered else []
    if count > 1:
        pending = split(settings.max_pending, count)
        lines.append(
            f"ok: {count} workers: the parent hands each connection to the least-loaded worker; the pool "
            f"({config.pool.capacity} address(es)) and the {config.connections} connections shared by all; "
            f"pending connections {'+'.join(map(str, pending))}; worker i takes Call IDs i mod {count}"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    pptpd_argv = _pptpd_argv(argv)
    if args.diagnose:
        from pypptp.daemon import diagnose  # (only this verb reads the firewall)

        return diagnose.main(pptpd_argv, system_options=args.system_options)
    if args.check:
        status, messages, checked = validate(pptpd_argv, system_options=args.system_options)
        if checked is not None and args.workers > 1:
            messages += _check_workers(checked, args.workers, settings_from(checked, args))
        for line in messages:
            print(line)
        return status
    try:
        config = load(pptpd_argv, system_options=args.system_options)
    except ERRORS as exc:
        for line in str(exc).splitlines():
            print(f"pypptpd: {line}", file=sys.stderr)
        return 2
    pipe, detached = None, None
    if not config.foreground:
        detached = _detached_handler()
        pipe = DetachPipe()
        pipe.detach()
    _setup_logging(config.foreground, config.debug, detached=detached)
    startup = _Startup(systemd.notifier(), pipe)
    pidfile, pidfile_owner = PidFile(config.pidfile), os.getpid()
    try:
        pidfile.acquire()
    except AlreadyRunning as exc:
        startup.failed(str(exc))
        return 1
    except OSError as exc:  # as pptpd: a daemon without its pidfile still serves
        log.warning("MGR: cannot write pidfile %s: %s", config.pidfile, exc.strerror or exc)
    for warning in config.warnings:
        log.warning("MGR: %s", warning)
    for note in config.notes:
        log.debug("MGR: %s", note)
    workers, lowered = effective_workers(args.workers, config.connections)
    if lowered:
        log.warning("MGR: %s", lowered)
    log.debug("MGR: open files limit %d", raise_fd_limit())
    try:
        if workers > 1:
            return _supervise(config, args, pptpd_argv, workers, startup)
        return asyncio.run(_serve(config, args, pptpd_argv, startup=startup))
    finally:
        if os.getpid() == pidfile_owner:
            pidfile.release()


if __name__ == "__main__":
    sys.exit(main())
