"""The daemon's whole configuration: pptpd(8)'s flags, pptpd.conf, the pppd options, chap-secrets, the pool.

:func:`load` turns a command line into one :class:`DaemonConfig`; :func:`check`
does the same and reports every problem instead of raising (``pypptpd --check``).

Command-line flags, pptpd's, with the long forms of its ``getopt_long`` table:
``-b/--bcrelay IF``, ``-c/--conf FILE``, ``-d/--debug``, ``-e/--ppp FILE``,
``-f/--fg``, ``-h/--help``, ``-i/--noipparam``, ``-l/--listen IP``,
``-o/--option FILE``, ``-p/--pidfile FILE``, ``-s/--speed BAUD``,
``-t/--stimeout N``, ``-v/--version``, ``-w/--logwtmp``,
``-C/--connections N``, ``-D/--delegate``, ``-V/--vrf NAME``.  Ours, not
pptpd's: ``--check`` (read and validate every file, then exit),
``--secrets FILE`` (another chap-secrets file, for tests and trials) and
``--wtmp FILE`` (where ``-w`` writes, instead of ``/var/log/wtmp``).

Precedence.  pptpd's usage text says "Command line options will override any
default settings and any settings specified in the config file", and pptpd.c
reads each keyword only when the flag was not given, with two exceptions,
both bugs, that we fix:

* ``stimeout`` in the file is never read: pptpd reads it only when its
  variable is 0, but the variable starts at the default, 10.  We honour it
  (and ``-t`` beats it);
* ``connections`` in the file is read unconditionally after the flags, so it
  beats ``-C``.  Here ``-C`` wins, like every other flag.

So, for every setting: the command line, else pptpd.conf, else pptpd's default.
Values are checked as pptpd.conf's are (:mod:`pypptp.conf.pptpd`): ``-l`` needs an
IPv4 address (pptpd would also resolve a host name), ``-t`` and ``-C`` a
positive number (pptpd's ``atoi`` takes anything).

Files, in pptpd's order:

* pptpd.conf: ``-c FILE`` must exist; without ``-c``, a missing
  ``/etc/pptpd.conf`` means pptpd's defaults (pptpd does the same);
* the pppd options: ``/etc/ppp/options`` when it exists, then the ``option``
  file (``-o`` beats the keyword), which must be readable (pptpd checks this
  at start-up too);
* chap-secrets: ``--secrets``, else the ``chap-secrets`` pppd option (pppd
  2.5), else ``/etc/ppp/chap-secrets``.  It must be readable when the peer
  has to authenticate; with ``noauth`` it is read if present;
* the pool of ``localip``/``remoteip`` (:mod:`pypptp.daemon.pool`): its capacity
  caps ``connections``, with a warning, as pptpd lowers its connection limit
  to the number of address pairs.

``ipparam``: pptpd gives pppd ``ipparam CLIENT-IP`` after the options file
unless ``noipparam`` (``-i``) is set, so the ip-up scripts see the client's
address; with ``noipparam``, an ``ipparam`` in the options file shows
through.  :attr:`DaemonConfig.noipparam` carries the flag.

``--check`` is as strict as the daemons it replaces: what would make pptpd or
pppd refuse to start, or fail every call or every login, is an error (status 1)
naming the file and line and what to do.  The daemon refuses to start on the
same errors (an unknown pppd option; a ``logfile`` pppd could not open), with
two exceptions where it can do better than fail every login, with a warning
instead: a UTF-8 byte order mark is skipped (pppd would take it for part of the
first word), and a chap-secrets file in which no line can match (wrong server
column, no address allowed, or no line at all) is read anyway, since it is
re-read when it changes (pppd reads it for each call).  A line whose server
column is neither ``*`` nor our ``name`` (the host name without one, as pppd)
can never match: a warning names it.

``logwtmp`` (``-w``): login and logout records in wtmp for ``last``
(:mod:`pypptp.host.wtmp`); a warning when the file does not exist, since it is
not created (glibc's ``updwtmp`` does not create it either).

Not implemented, and said so in a warning when set: ``bcrelay``, ``vrf``,
``delegate`` and ``ppp`` (``-e``).  ``speed`` (``-s``) is read
and kept; it only set the baud rate of the pty between pptpd and pppd,
which changes nothing on the PPTP link.
"""

from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import os
from collections.abc import Callable, Sequence
from typing import TypeVar

from pypptp import __version__
from pypptp.conf.chap_secrets import CHAP_SECRETS, Stamp, file_stamp, read_secrets_file
from pypptp.conf.pppd_options import (
    RADIUS_CONFIG_FILE,
    SYSTEM_OPTIONS,
    OptionsError,
    PppdOptions,
    read_pppd_options,
)
from pypptp.conf.pptpd import (
    DEFAULT_CONNECTIONS,
    DEFAULT_LISTEN,
    DEFAULT_PATH,
    DEFAULT_PIDFILE,
    DEFAULT_SPEED,
    DEFAULT_STIMEOUT,
    ConfigError,
    PptpdConfig,
    read_pptpd_conf,
)
from pypptp.conf.radiusclient import RadiusConfig, RadiusConfigError, read_radiusclient_conf
from pypptp.ctrl.constants import PPTP_PORT
from pypptp.daemon.pool import AddressPool, PoolError
from pypptp.host.wtmp import WTMP
from pypptp.ppp.secrets import ChapSecrets, SecretsError

__all__ = [
    "DEFAULT_CONF",
    "DEFAULT_SECRETS",
    "ERRORS",
    "DaemonConfig",
    "build_parser",
    "check",
    "load",
    "validate",
]

DEFAULT_CONF = DEFAULT_PATH
"""pptpd.conf without ``-c`` (:data:`pypptp.conf.pptpd.DEFAULT_PATH`)."""
DEFAULT_SECRETS = CHAP_SECRETS
"""chap-secrets without ``--secrets`` or pppd's ``chap-secrets`` option
(:data:`pypptp.conf.chap_secrets.CHAP_SECRETS`)."""
ERRORS = (ConfigError, OptionsError, SecretsError, PoolError, RadiusConfigError)
"""What :func:`load` raises for a bad file or flag; all are :class:`ValueError`, and name the file and line."""

_NOT_IMPLEMENTED = {
    "bcrelay": "no broadcast relay is run",
    "vrf": "sockets stay in the default VRF",
    "delegate": "addresses still come from localip/remoteip",
    "ppp": "pypptpd has its own PPP engine and runs no pppd",
}
_SHORT = {"bcrelay": "-b", "vrf": "-V", "delegate": "-D", "logwtmp": "-w", "ppp": "-e", "option": "-o"}

_T = TypeVar("_T")


@dataclasses.dataclass
class DaemonConfig:
    """Everything the daemon needs, merged: flags beat pptpd.conf, which beats pptpd's defaults."""

    conf_path: str | None
    """The pptpd.conf read; None when the default one is absent (pptpd's defaults apply)."""
    pptpd: PptpdConfig
    options: PppdOptions
    options_files: list[str]
    """The pppd options files read, in order."""
    secrets_path: str
    secrets: ChapSecrets | None
    """The chap-secrets records as read now (None: absent, allowed with ``noauth``).
    pppd re-reads the file for each authentication; the daemon starts with these and re-reads
    :attr:`secrets_path` when its stamp is no longer :attr:`secrets_stamp`."""
    pool: AddressPool
    listen: str = DEFAULT_LISTEN
    port: int = PPTP_PORT
    stimeout: int = DEFAULT_STIMEOUT
    connections: int = DEFAULT_CONNECTIONS
    """The effective limit: ``connections`` (or ``-C``), capped by :attr:`AddressPool.capacity`."""
    pidfile: str = DEFAULT_PIDFILE
    debug: bool = False
    foreground: bool = False
    check_only: bool = False
    """``--check``: validate and exit."""
    speed: str = DEFAULT_SPEED
    noipparam: bool = False
    logwtmp: bool = False
    """``-w``/``logwtmp``: wtmp records of each session (:attr:`wtmp`)."""
    wtmp: str = WTMP
    warnings: list[str] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)
    """Debug-level remarks (options accepted and ignored because they mean nothing on PPTP)."""
    secrets_stamp: Stamp | None = None
    """The chap-secrets file's :func:`~pypptp.conf.chap_secrets.file_stamp` when :attr:`secrets` was read."""
    radius: RadiusConfig | None = None
    """``plugin radius.so``: radiusclient's configuration (``radius-config-file``); None: chap-secrets."""


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"a positive whole number is needed, not {text!r}")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    """pptpd's flags (and ours: ``--check``, ``--secrets``)."""
    parser = argparse.ArgumentParser(
        prog="pypptpd",
        description="PPTP VPN server, a drop-in for poptop pptpd.",
        epilog="Flags given here override the same settings in the configuration file.",
    )
    add = parser.add_argument
    add("-b", "--bcrelay", metavar="IF", help="relay broadcasts from IF (not implemented; warns)")
    add("-c", "--conf", metavar="FILE", help=f"configuration file (default {DEFAULT_CONF})")
    add("-d", "--debug", action="store_true", default=None, help="log every control message")
    add("-e", "--ppp", metavar="FILE", help="pppd binary (not used: pypptpd has its own PPP; warns)")
    add("-f", "--fg", action="store_true", help="run in the foreground and log to stderr")
    add("-i", "--noipparam", action="store_true", default=None, help="do not pass the client's address as ipparam")
    add("-l", "--listen", metavar="IP", help="IPv4 address to listen on (default: all)")
    add("-o", "--option", metavar="FILE", help=f"pppd options file (read after {SYSTEM_OPTIONS})")
    add("-p", "--pidfile", metavar="FILE", help=f"PID file (default {DEFAULT_PIDFILE})")
    add("-s", "--speed", metavar="BAUD", help="pppd line speed (kept; no effect on PPTP)")
    add(
        "-t",
        "--stimeout",
        metavar="N",
        type=_positive,
        help=f"seconds a new connection has to send SCCRQ ({DEFAULT_STIMEOUT})",
    )
    add("-v", "--version", action="version", version=f"pypptpd {__version__}")
    add("-w", "--logwtmp", action="store_true", default=None, help="login and logout records in wtmp, for last")
    add(
        "-C",
        "--connections",
        metavar="N",
        type=_positive,
        help=f"maximum concurrent connections ({DEFAULT_CONNECTIONS})",
    )
    add("-D", "--delegate", action="store_true", default=None, help="let pppd allocate addresses (not implemented)")
    add("-V", "--vrf", metavar="NAME", help="VRF for the sockets (not implemented; warns)")
    add("--check", action="store_true", help="read and validate every file, report, and exit (not in pptpd)")
    add("--secrets", metavar="FILE", help=f"chap-secrets file (default {DEFAULT_SECRETS}; not in pptpd)")
    add("--wtmp", metavar="FILE", default=WTMP, help=f"the wtmp file -w writes to (default {WTMP}; not in pptpd)")
    return parser


def _attempt(errors: list[str] | None, build: Callable[[], _T], fallback: Callable[[], _T]) -> _T:
    """``build()``; with an error list (``--check``), record its error and carry on with ``fallback()``."""
    if errors is None:
        return build()
    try:
        return build()
    except ERRORS as exc:
        errors.extend(exc.messages if isinstance(exc, OptionsError | RadiusConfigError) else [str(exc)])
        return fallback()


def _readable(path: str, where: str) -> None:
    try:
        os.close(os.open(path, os.O_RDONLY | os.O_NONBLOCK))  # a FIFO must not block the daemon
    except OSError as exc:
        raise OptionsError(f"{where}: pppd options file {path}: cannot read: {exc.strerror}") from None


def _check_dae(options: PppdOptions, radius: RadiusConfig) -> None:
    """``radius-dae-listen`` and ``radius-dae-clients``, as the daemon will read them at start."""
    from pypptp.daemon.radius import dae_clients, parse_dae_listen

    assert options.radius_dae_listen is not None
    try:
        parse_dae_listen(options.radius_dae_listen, options.lines.get("radius-dae-listen", "radius-dae-listen"))
        dae_clients(radius, options.radius_dae_clients)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _check_logfile(options: PppdOptions) -> None:
    """pppd opens ``logfile`` (creating it) while it reads its options, and refuses to start when it
    cannot: every call would fail.  Checked here without creating anything."""
    path = options.logfile
    if path is None:
        return
    where = options.lines.get("logfile", "logfile")
    directory = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        problem, fix = "is a directory", "name a file"
    elif os.path.exists(path) and not os.access(path, os.W_OK):
        problem, fix = "is not writable", "make it writable"
    elif os.path.exists(path):
        return
    elif not os.path.isdir(directory):
        problem, fix = f"is in a directory that does not exist, {directory}", f"create it (mkdir -p {directory})"
    elif not os.access(directory, os.W_OK | os.X_OK):
        problem, fix = f"is in a directory that is not writable, {directory}", "make it writable"
    else:
        return
    raise OptionsError(
        f"{where}: logfile {path} {problem}: pppd cannot open it and refuses to start; {fix}, "
        "or change or remove the logfile line"
    )


def _check_secrets(secrets: ChapSecrets, options: PppdOptions, path: str) -> tuple[list[str], str | None]:
    """What pppd checks before it asks a peer to authenticate (``auth_check_options``: a secret for our
    name that allows the peer some address, else "no suitable secret(s) found" and no call can work):
    a warning per line that can never be used, and what to say when no line can."""
    our = options.our_name
    source = (
        f"the name option, {options.lines['name']}" if "name" in options.lines else "this host's name: no name option"
    )
    warnings: list[str] = []
    usable = 0
    for record in secrets.records:
        if record.server not in (our, "*"):
            warnings.append(
                f"{record.where}: server {record.server!r} is neither * nor our name {our!r} ({source}): "
                f"this line can never match; write {our} or * in the second column"
            )
        elif not any(entry.allow for entry in record.addresses.entries):
            warnings.append(
                f"{record.where}: {record.client!r} is allowed no IP address (no fourth column, or -): pppd "
                "and pypptpd refuse the link after the login; write * (any address) in the fourth column"
            )
        else:
            usable += 1
    if usable:
        return warnings, None
    what = "it has no secrets" if not secrets.records else "none of its lines can be used (see the warnings)"
    return warnings, (
        f"{path}: {what}, and the peer must authenticate: every login would fail (pppd refuses the calls: "
        f'"no suitable secret(s) found"); add a line: USER {our} PASSWORD *'
    )


def _build(
    args: argparse.Namespace,
    errors: list[str] | None,
    *,
    default_conf: str,
    system_options: str,
    default_secrets: str,
) -> DaemonConfig | None:
    # pptpd.conf: nothing else can be read without it
    conf_path: str | None = args.conf or default_conf
    if args.conf is None and conf_path is not None and not os.path.exists(conf_path):
        conf_path = None
    strict = errors is not None  # --check: what pppd or pptpd would fail on is an error, every one of them
    try:
        pptpd = read_pptpd_conf(conf_path, strict=strict) if conf_path is not None else PptpdConfig()
    except ConfigError as exc:
        if errors is None:
            raise
        errors.append(str(exc))
        return None
    if errors is not None:
        errors.extend(pptpd.errors)
    lines = pptpd.lines
    conf_name = conf_path or "pptpd.conf"

    def where(keyword: str) -> str:
        return f"{conf_name}:{lines[keyword]}" if keyword in lines else conf_name

    warnings = list(pptpd.warnings)

    def flag_or_file(name: str) -> tuple[object, str]:
        """The setting's value and where it came from: the command line, else the file."""
        value = getattr(args, name)
        if value is not None:
            return value, f"command line: {_SHORT[name]}/--{name}"
        return getattr(pptpd, name), where(name)

    # the command line beats the file, for every setting (pptpd's -C and stimeout bugs fixed)
    if args.listen is not None:
        try:
            ipaddress.IPv4Address(args.listen)
        except ValueError:
            message = f"command line: -l/--listen needs an IPv4 address, got {args.listen!r}"
            if errors is None:
                raise ConfigError(message) from None
            errors.append(message)
    listen = args.listen or pptpd.listen or DEFAULT_LISTEN
    stimeout = args.stimeout if args.stimeout is not None else pptpd.stimeout
    connections = args.connections if args.connections is not None else pptpd.connections
    for keyword, why in _NOT_IMPLEMENTED.items():
        value, source = flag_or_file(keyword)
        if value:
            warnings.append(f"{source}: {keyword} is not implemented by pypptpd and is ignored: {why}")

    logwtmp, logwtmp_where = flag_or_file("logwtmp")
    if logwtmp and not os.path.isfile(args.wtmp):
        what = "is not a regular file" if os.path.exists(args.wtmp) else "does not exist"
        warnings.append(
            f"{logwtmp_where}: logwtmp: {args.wtmp} {what}: no wtmp records are written (pppd's logwtmp "
            f"does not create the file either): install -m 664 -g utmp /dev/null {args.wtmp}"
        )

    # the pppd options: /etc/ppp/options, then pptpd.conf's option (or -o)
    option_file, option_where = flag_or_file("option")
    files = [system_options] if os.path.exists(system_options) else []

    def read_options() -> PppdOptions:
        if isinstance(option_file, str):
            _readable(option_file, option_where)
            return read_pppd_options([*files, option_file], strict=strict)
        return read_pppd_options(files, strict=strict)

    failed = len(errors) if errors is not None else 0
    options = _attempt(errors, read_options, PppdOptions)
    options_ok = errors is None or len(errors) == failed  # else the checks below would judge defaults
    if options_ok:
        _attempt(errors, lambda: _check_logfile(options), lambda: None)
    options_files = list(options.files) or [*files, *([option_file] if isinstance(option_file, str) else [])]
    warnings.extend(options.warnings)

    # RADIUS (pppd's radius plugin): radiusclient's files instead of chap-secrets
    radius: RadiusConfig | None = None
    if options_ok and options.radius:
        radius_path = options.radius_config_file or RADIUS_CONFIG_FILE
        radius = _attempt(errors, lambda: read_radiusclient_conf(radius_path), lambda: None)
        if radius is not None:
            warnings.extend(radius.warnings)
            if options.radius_dae_listen is not None:
                _attempt(errors, lambda: _check_dae(options, radius), lambda: None)
        if radius is not None and not radius.auth_servers:
            (errors if errors is not None else warnings).append(
                f"{radius.path}: no authserver: pppd's radius plugin could authenticate nobody"
            )

    # chap-secrets: needed when the peer authenticates (against it: not with RADIUS)
    secrets_path: str = args.secrets or options.chap_secrets or default_secrets
    secrets_stamp = file_stamp(secrets_path)

    def read_secrets() -> ChapSecrets | None:
        if not os.path.exists(secrets_path):
            if not options.auth_methods or options.radius:
                return None  # noauth, or RADIUS: nobody is asked for a secret from the file
            raise SecretsError(f"{secrets_path}: missing, and the peer must authenticate (see --secrets)")
        return read_secrets_file(secrets_path, strict=strict)

    secrets = _attempt(errors, read_secrets, lambda: None)
    if secrets is not None:
        warnings.extend(secrets.warnings)
        if options_ok and options.auth_methods and not options.radius:
            unusable, none_usable = _check_secrets(secrets, options, secrets_path)
            warnings.extend(unusable)
            if none_usable is not None:
                (errors if errors is not None else warnings).append(none_usable)

    # the pool, which caps the connections
    def make_pool() -> AddressPool:
        return AddressPool.parse(
            pptpd.localip,
            pptpd.remoteip,
            conf_name,
            local_where=where("localip"),
            remote_where=where("remoteip"),
        )

    failed = len(errors) if errors is not None else 0
    pool = _attempt(errors, make_pool, lambda: AddressPool.parse(None, None))
    pool_ok = errors is None or len(errors) == failed
    if pool_ok:
        warnings.extend(pool.warnings)
    if pool_ok and secrets is not None:
        for address, record in secrets.pinned_addresses().items():
            if address in pool.remote[: pool.capacity]:
                warnings.append(
                    f"{record.where}: {address} is pinned to {record.client!r} and lies in remoteip "
                    f"({where('remoteip')}): it is kept for that user, and the pool has one address fewer"
                )
    if pool_ok and pool.capacity < connections:
        if args.connections is not None:
            source = f"command line: -C {connections}"
        elif "connections" in lines:
            source = f"{where('connections')}: connections {connections}"
        else:
            source = f"{conf_name}: connections {connections} (the default)"
        warnings.append(
            f"{source} lowered to {pool.capacity}: localip/remoteip give only {pool.capacity} "
            "address pairs (pptpd lowers it too)"
        )
        connections = pool.capacity

    return DaemonConfig(
        conf_path=conf_path,
        pptpd=pptpd,
        options=options,
        options_files=options_files,
        secrets_path=secrets_path,
        secrets=secrets,
        pool=pool,
        listen=listen,
        port=PPTP_PORT,
        stimeout=stimeout,
        connections=connections,
        pidfile=args.pidfile or pptpd.pidfile,
        debug=bool(args.debug or pptpd.debug),
        foreground=args.fg,
        check_only=args.check,
        speed=args.speed or pptpd.speed,
        noipparam=bool(args.noipparam or pptpd.noipparam),
        logwtmp=bool(logwtmp),
        wtmp=args.wtmp,
        warnings=warnings,
        notes=list(options.notes),
        secrets_stamp=secrets_stamp if secrets is not None else None,
        radius=radius,
    )


def load(
    argv: Sequence[str] | None = None,
    *,
    default_conf: str = DEFAULT_CONF,
    system_options: str = SYSTEM_OPTIONS,
    default_secrets: str = DEFAULT_SECRETS,
) -> DaemonConfig:
    """Parse the command line and read every file; raise one of :data:`ERRORS` on the first problem.

    ``-h`` and ``-v`` print and raise :class:`SystemExit`, as do bad flags (argparse).  The keyword
    arguments move the default paths, for tests.
    """
    args = build_parser().parse_args(argv)
    config = _build(
        args, None, default_conf=default_conf, system_options=system_options, default_secrets=default_secrets
    )
    assert config is not None  # without an error list, _build raises instead
    return config


def check(
    argv: Sequence[str] | None = None,
    *,
    default_conf: str = DEFAULT_CONF,
    system_options: str = SYSTEM_OPTIONS,
    default_secrets: str = DEFAULT_SECRETS,
) -> tuple[int, list[str]]:
    """Validate everything :func:`load` reads; return the exit status (0 valid, 1 not) and the messages.

    Every error is reported, not just the first (a pptpd.conf error stops the rest, since the other
    files depend on it); each names its file and line.  Warnings follow, then a summary when valid.
    Bad flags, ``-h`` and ``-v`` raise :class:`SystemExit` as in :func:`load`.
    """
    status, messages, _ = validate(
        argv, default_conf=default_conf, system_options=system_options, default_secrets=default_secrets
    )
    return status, messages


def validate(
    argv: Sequence[str] | None = None,
    *,
    default_conf: str = DEFAULT_CONF,
    system_options: str = SYSTEM_OPTIONS,
    default_secrets: str = DEFAULT_SECRETS,
) -> tuple[int, list[str], DaemonConfig | None]:
    """:func:`check`, and the configuration it read when it is valid (None when not), for more checks
    on it without reading the files again (``--check --workers N``)."""
    args = build_parser().parse_args(argv)
    errors: list[str] = []
    config = _build(
        args, errors, default_conf=default_conf, system_options=system_options, default_secrets=default_secrets
    )
    messages = [f"error: {error}" for error in errors]
    if config is not None:
        messages += [f"warning: {warning}" for warning in config.warnings]
    if errors or config is None:
        return 1, messages, None
    secrets = f"{len(config.secrets.records)} records" if config.secrets is not None else "absent"
    judge = f"secrets {config.secrets_path} ({secrets})"
    if config.radius is not None:
        radius = config.radius
        servers = ", ".join(f"{s.host}:{s.port}" for s in radius.auth_servers)
        accounting = ", ".join(f"{s.host}:{s.port}" for s in radius.acct_servers) or "none"
        judge = f"RADIUS {radius.path} (authserver {servers}; acctserver {accounting})"
        if config.options.radius_dae_listen is not None:
            judge += f"; DAE on {config.options.radius_dae_listen}"
    messages.append(
        f"ok: {config.conf_path or 'no pptpd.conf (defaults)'}; listen {config.listen}:{config.port}; "
        f"{config.connections} connections; pool of {config.pool.capacity}; "
        f"options {', '.join(config.options_files) or 'none'}; {judge}"
    )
    return 0, messages, config
