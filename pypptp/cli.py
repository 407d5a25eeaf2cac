"""``pypptpd``: the daemon's command line (pptpd(8) flags).

Implemented flags: ``-c/--conf``, ``-f/--fg``, ``-l/--listen``, ``-d/--debug``,
``-t/--stimeout``, ``-C/--connections``, ``-p/--pidfile``, ``--version``.  A
flag given on the command line beats the same setting in pptpd.conf.

This release runs the PPTP control channel only: calls are accepted on TCP
1723, but no GRE/PPP session stands behind them yet.  Configuration keywords
that only matter to those layers are parsed and validated, and a warning
says they have no effect yet.
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

from pypptp import __version__
from pypptp.config import ConfigError, PptpdConfig, read_pptpd_conf
from pypptp.ctrl.connection import ControlConfig
from pypptp.server import ControlServer, ServerSettings

log = logging.getLogger("pypptpd")

DEFAULT_CONF = "/etc/pptpd.conf"
NOT_YET_EFFECTIVE = (
    "ppp",
    "option",
    "localip",
    "remoteip",
    "speed",
    "noipparam",
    "logwtmp",
    "vrf",
    "bcrelay",
    "delegate",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pypptpd", description="PPTP VPN server (drop-in for poptop pptpd).")
    parser.add_argument("-c", "--conf", default=DEFAULT_CONF, help="configuration file (default %(default)s)")
    parser.add_argument("-f", "--fg", action="store_true", help="run in the foreground, log to stderr")
    parser.add_argument("-l", "--listen", help="IPv4 address to listen on (default: all)")
    parser.add_argument("-d", "--debug", action="store_true", help="log every control message")
    parser.add_argument("-t", "--stimeout", type=int, help="seconds to wait for SCCRQ (default 10)")
    parser.add_argument("-C", "--connections", type=int, help="maximum concurrent control connections")
    parser.add_argument("-p", "--pidfile", help="PID file (default /var/run/pptpd.pid)")
    parser.add_argument("--version", action="version", version=f"pypptpd {__version__}")
    return parser


def settings_from(args: argparse.Namespace, config: PptpdConfig) -> ServerSettings:
    """Merge the file and the flags; flags win."""
    stimeout = args.stimeout if args.stimeout is not None else config.stimeout
    connections = args.connections if args.connections is not None else config.connections
    if stimeout < 1 or connections < 1:
        raise ConfigError("stimeout and connections must be positive")
    return ServerSettings(
        listen=args.listen or config.listen or "0.0.0.0",
        max_connections=connections,
        control=ControlConfig(host_name="local", vendor_string="pypptp", establish_timeout=float(stimeout)),
        trace=args.debug or config.debug,
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
        handler.setFormatter(logging.Formatter("%(asctime)s pypptpd[%(process)d]: %(message)s"))
    elif os.path.exists("/dev/log"):
        handler = logging.handlers.SysLogHandler("/dev/log", facility=logging.handlers.SysLogHandler.LOG_DAEMON)
        handler.setFormatter(logging.Formatter("pypptpd[%(process)d]: %(message)s"))
    else:
        handler = logging.NullHandler()
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("asyncio").setLevel(logging.WARNING)


def _write_pidfile(path: str) -> None:
    try:
        with open(path, "w", encoding="ascii") as f:
            f.write(f"{os.getpid()}\n")
    except OSError as exc:
        log.warning("MGR: cannot write pidfile %s: %s", path, exc.strerror)


async def _serve(settings: ServerSettings) -> int:
    server = ControlServer(settings)
    try:
        await server.start()
    except OSError as exc:
        log.error("MGR: cannot listen on %s:%d: %s", settings.listen, settings.port, exc.strerror)
        return 1
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    serving = asyncio.ensure_future(server.serve_forever())
    await stop.wait()
    log.info("MGR: shutting down: CDN and StopCCRQ to %d connection(s)", len(server.connections))
    serving.cancel()
    await server.shutdown()
    log.info("MGR: Exit.")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        # Like pptpd, run on defaults when the default file is absent; a file
        # named with -c must exist.
        missing_default = args.conf == DEFAULT_CONF and not os.path.exists(args.conf)
        config = PptpdConfig() if missing_default else read_pptpd_conf(args.conf)
        settings = settings_from(args, config)
    except ConfigError as exc:
        print(f"pypptpd: {exc}", file=sys.stderr)
        return 2
    if not args.fg:
        _daemonize()
    _setup_logging(args.fg, settings.trace)
    for warning in config.warnings:
        log.warning("MGR: %s", warning)
    idle = [k for k in NOT_YET_EFFECTIVE if k in config.present]
    if idle:
        log.warning("MGR: %s: no effect in this release (control channel only): %s", config.path, ", ".join(idle))
    pidfile = args.pidfile or config.pidfile
    _write_pidfile(pidfile)
    try:
        return asyncio.run(_serve(settings))
    finally:
        with contextlib.suppress(OSError):
            os.unlink(pidfile)


if __name__ == "__main__":
    sys.exit(main())
