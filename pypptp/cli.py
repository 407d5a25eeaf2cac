"""``pypptpd``: the daemon's command line (pptpd(8) flags, see :mod:`pypptp.daemon_config`).

``pypptpd -c /etc/pptpd.conf`` reads pptpd.conf, ``/etc/ppp/options`` then the
``option`` file, and ``/etc/ppp/chap-secrets``; detaches unless ``-f``;
writes its pidfile; serves PPTP calls with one PPP session and ``pppN``
device each.  ``--check`` validates every file and exits (0 valid, 1 not).

Flags of ours, not pptpd's: ``--check``, ``--secrets FILE``, ``--system-options
FILE`` (instead of /etc/ppp/options), ``--ip-up``/``--ip-down PATH`` (instead of
/etc/ppp/ip-up and ip-down) and ``--no-mss-clamp``.  Signals: SIGTERM and
SIGINT end every session politely and exit; SIGHUP re-reads chap-secrets and
the pppd options for new sessions.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import logging.handlers
import os
import signal
import sys
from collections.abc import Sequence

from pypptp.ctrl.connection import ControlConfig
from pypptp.daemon import Daemon, DaemonPaths
from pypptp.daemon_config import ERRORS, DaemonConfig, build_parser, check, load
from pypptp.pool import Lease
from pypptp.ppp.link import LinkConfig
from pypptp.pppd_options import SYSTEM_OPTIONS
from pypptp.server import ServerSettings

log = logging.getLogger("pypptpd")


def _parser() -> argparse.ArgumentParser:
    parser = build_parser()
    parser.add_argument("--system-options", metavar="FILE", default=SYSTEM_OPTIONS, help="instead of /etc/ppp/options")
    parser.add_argument("--ip-up", metavar="PATH", default="/etc/ppp/ip-up", help="script run when a network is up")
    parser.add_argument("--ip-down", metavar="PATH", default="/etc/ppp/ip-down", help="script run when it is down")
    parser.add_argument("--no-mss-clamp", action="store_true", help="do not clamp the TCP MSS of SYNs to the MTU")
    return parser


_OURS = ("--system-options", "--ip-up", "--ip-down", "--no-mss-clamp")


def _pptpd_argv(argv: Sequence[str]) -> list[str]:
    """The arguments without ours, for :mod:`pypptp.daemon_config` (which knows pptpd's set)."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        name = arg.split("=", 1)[0]
        if name in _OURS:
            skip = "=" not in arg and name != "--no-mss-clamp"
            continue
        out.append(arg)
    return out


def settings_from(config: DaemonConfig) -> ServerSettings:
    return ServerSettings(
        listen=config.listen,
        port=config.port,
        max_connections=config.connections,
        control=ControlConfig(host_name="local", vendor_string="pypptp", establish_timeout=float(config.stimeout)),
        trace=config.debug,
    )


def _daemonize() -> None:
    """Classic double fork: detach from the terminal and the session."""
    if os.fork() > 0:
        os._exit(0)
    os.setsid()
    if os.fork() > 0:
        os._exit(0)
    os.chdir("/")
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)


def _setup_logging(foreground: bool, debug: bool) -> None:
    level = logging.DEBUG if debug else logging.INFO
    handler: logging.Handler
    if foreground:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s[%(process)d]: %(message)s"))
    elif os.path.exists("/dev/log"):
        handler = logging.handlers.SysLogHandler("/dev/log", facility=logging.handlers.SysLogHandler.LOG_DAEMON)
        handler.setFormatter(logging.Formatter("%(name)s[%(process)d]: %(message)s"))
    else:
        handler = logging.NullHandler()
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("asyncio").setLevel(logging.WARNING)
    logging.getLogger("pyroute2").setLevel(logging.WARNING)


def _write_pidfile(path: str) -> None:
    try:
        with open(path, "w", encoding="ascii") as f:
            f.write(f"{os.getpid()}\n")
    except OSError as exc:
        log.warning("MGR: cannot write pidfile %s: %s", path, exc.strerror)


class _Configured:
    """The per-session configuration, swapped whole on SIGHUP."""

    def __init__(self, config: DaemonConfig) -> None:
        self.config = config

    def link_config(self, lease: Lease, unit: int) -> LinkConfig:
        return self.config.options.link_config(local_address=lease.local, peer_address=lease.remote, unit=unit)

    @property
    def idle(self) -> float:
        return float(self.config.options.idle)

    @property
    def maxconnect(self) -> float:
        return float(self.config.options.maxconnect)

    @property
    def proxyarp(self) -> bool:
        return self.config.options.proxyarp


async def _serve(config: DaemonConfig, args: argparse.Namespace, argv: list[str]) -> int:
    configured = _Configured(config)
    daemon = Daemon(
        settings_from(config),
        config.pool,
        configured,
        paths=DaemonPaths(secrets=config.secrets_path, ip_up=args.ip_up, ip_down=args.ip_down),
        ipparam=not config.noipparam,
        speed=config.speed,
        clamp_mss=not args.no_mss_clamp,
        logfile=config.options.logfile,
    )
    try:
        await daemon.start()
    except OSError as exc:
        log.error("MGR: cannot start: %s", exc)
        return 1
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    def reload() -> None:
        try:
            fresh = load(argv, system_options=args.system_options)
        except ERRORS as exc:
            log.error("MGR: SIGHUP: %s; keeping the running configuration", exc)
            return
        configured.config = fresh
        daemon.paths.secrets = fresh.secrets_path
        daemon.load_secrets()
        for warning in fresh.warnings:
            log.warning("MGR: %s", warning)
        log.info("MGR: SIGHUP: secrets and pppd options re-read; they apply to new sessions")

    loop.add_signal_handler(signal.SIGHUP, reload)
    serving = asyncio.ensure_future(daemon.server.serve_forever())
    await stop.wait()
    log.info(
        "MGR: shutting down: %d session(s), %d connection(s)", len(daemon.sessions), len(daemon.server.connections)
    )
    serving.cancel()
    await daemon.shutdown()
    log.info("MGR: Exit.")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    pptpd_argv = _pptpd_argv(argv)
    if args.check:
        status, messages = check(pptpd_argv, system_options=args.system_options)
        for line in messages:
            print(line)
        return status
    try:
        config = load(pptpd_argv, system_options=args.system_options)
    except ERRORS as exc:
        print(f"pypptpd: {exc}", file=sys.stderr)
        return 2
    if not config.foreground:
        _daemonize()
    _setup_logging(config.foreground, config.debug)
    for warning in config.warnings:
        log.warning("MGR: %s", warning)
    for note in config.notes:
        log.debug("MGR: %s", note)
    _write_pidfile(config.pidfile)
    try:
        return asyncio.run(_serve(config, args, pptpd_argv))
    finally:
        with contextlib.suppress(OSError):
            os.unlink(config.pidfile)


if __name__ == "__main__":
    sys.exit(main())
