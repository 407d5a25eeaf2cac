"""The radiusclient configuration pppd's ``radius.so`` reads (``radius-config-file FILE``), and its ``servers`` file.

A pptpd+radius server set up by the Debian HOWTOs has ``plugin radius.so`` in
``/etc/ppp/pptpd-options`` and ``/etc/radiusclient/radiusclient.conf`` (pppd's
default; ``radius-config-file`` names another) like::

    auth_order      radius
    authserver      radius1.example.net:1812,radius2.example.net
    acctserver      radius1.example.net:1813
    servers         /etc/radiusclient/servers
    dictionary      /etc/radiusclient/dictionary
    radius_timeout  10
    radius_retries  3

with the shared secrets in ``servers``, one ``HOST SECRET`` a line.  The syntax
is radiusclient's (pppd's bundled copy, radiusclient-ng, freeradius-client and
radcli all read it alike): a line is a keyword, blanks, and the rest of the line
as its value; a line starting with ``#`` is a comment (a ``#`` later on is part
of the value, as there).  What each keyword does here:

* ``authserver`` / ``acctserver``: servers separated by commas or blanks, tried
  in order (failover).  Each is ``HOST``, ``HOST:PORT`` or ``HOST:PORT:SECRET``
  (radcli's inline secret; ``HOST::SECRET`` keeps the default port), with an
  IPv6 address in brackets (``[2001:db8::1]:1812``).  Without a port, the
  ``radius``/``radacct`` entries of ``/etc/services``, else 1812 and 1813.
  ``authserver`` is required; without ``acctserver`` nothing is accounted (a
  warning: radcli allows it, pppd's plugin refuses to start).
* ``servers``: the secrets file.  A line is ``HOST SECRET`` (``#`` lines are
  comments); ``HOST`` may be radiusclient's paired form ``NAS/SERVER``.  A
  server's secret is found by its name as written, else by its address (names
  are resolved once, when the file is read).  A server with no secret is an
  error.  The file must be a regular file of at most :data:`MAX_FILE_BYTES`;
  readable by any user (the secrets forge RADIUS answers) it is an error,
  readable by the group a warning, as pppd warns of chap-secrets.  A secret
  longer than 48 bytes is used whole, with a warning: radiusclient cut it to 48.
* ``radius_timeout`` (seconds, default 10), ``radius_retries`` (sends to one
  server before the next is tried, default 3) and ``radius_deadtime`` (seconds a
  server that did not answer is tried last, default 0: never): whole numbers,
  ``radius_timeout`` and ``radius_retries`` at least 1, as radiusclient requires.
* ``nas-identifier`` (radcli) or ``nas_identifier`` (pppd's copy): sent as
  NAS-Identifier; ``nas-ip`` (radcli): sent as NAS-IP-Address.  Without either,
  the requests carry the NAS-IP-Address of the socket's source address.
* ``bindaddr``: the local address the client's sockets bind to (``*``: any).
* ``dictionary``: pypptp encodes with its own dictionary
  (:mod:`pypptp.aaa.dictionary`), so the file is only recorded; a missing file is
  a warning (pppd would not start).
* ``default_realm``: recorded (pppd's plugin does not apply it either).
* ``serv-type``/``serv-auth-type`` (radcli): ``udp`` only; TCP, TLS and DTLS are errors.
* The login program's keywords (``auth_order``, ``login_tries``, ``login_timeout``,
  ``nologin``, ``issue``, ``login_radius``, ``login_local``, ``seqfile``,
  ``mapfile``) and ``clientdebug``: checked, then ignored (a note): pppd's plugin
  does not use them either.  radcli's ``tls-*`` keywords: ignored with a warning.

Errors, each ``file:line: ...``, are collected and raised together as one
:class:`RadiusConfigError`: an unknown keyword (radcli refuses it too; the
message suggests the nearest one), a keyword given twice (radiusclient's
"duplicate option line"), a bad value, a missing or unreadable file, a server
without a secret, a world-readable secrets file.
"""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import os
import re
import socket
import stat

from pypptp.conf.words import drop_bom

__all__ = [
    "DEFAULT_ACCT_PORT",
    "DEFAULT_AUTH_PORT",
    "RADIUSCLIENT_CONF",
    "RadiusConfig",
    "RadiusConfigError",
    "RadiusServer",
    "parse_radiusclient_conf",
    "parse_servers_file",
    "read_radiusclient_conf",
    "read_servers_file",
]

RADIUSCLIENT_CONF = "/etc/radiusclient/radiusclient.conf"
"""pppd's radius plugin reads this file unless ``radius-config-file`` names another."""
DEFAULT_AUTH_PORT = 1812
DEFAULT_ACCT_PORT = 1813
DEFAULT_TIMEOUT = 10
DEFAULT_RETRIES = 3
MAX_FILE_BYTES = 1024 * 1024
MAX_SERVERS = 8
"""radiusclient's SERVER_MAX: more servers on one line is an error there too."""
RADIUSCLIENT_SECRET_MAX = 48
"""radiusclient's MAX_SECRET_LENGTH: it silently cut longer secrets."""
MAX_SECRET = 128
"""A longer secret is refused: RFC 2865 puts no limit, FreeRADIUS and every NAS we know stop well below."""
MAX_LOOKUPS = 32
"""Names of the servers file looked up for one server at most (a lookup may wait on DNS)."""
MAX_TIMEOUT = 3600
MAX_RETRIES = 100

_WORD = re.compile(r"\S+")
_NUMBER = re.compile(r"[0-9]+")


class RadiusConfigError(ValueError):
    """The radiusclient configuration is unusable; each message names the file and line.

    :attr:`messages` lists every problem found, one line of ``str(error)`` each."""

    def __init__(self, *messages: str) -> None:
        super().__init__("\n".join(messages))
        self.messages = messages


@dataclasses.dataclass(frozen=True)
class RadiusServer:
    """One RADIUS server, in the order it is tried."""

    host: str
    """A name or an address as written (an IPv6 address without its brackets)."""
    port: int
    secret: bytes = dataclasses.field(repr=False)
    where: str = ""
    """``file:line`` of its ``authserver``/``acctserver`` line, for messages."""
    inline: bool = False
    """The secret was written on that line (radcli's ``HOST:PORT:SECRET``), not in the servers file."""

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


@dataclasses.dataclass
class RadiusConfig:
    """What pypptp's RADIUS client needs from the radiusclient configuration."""

    path: str
    auth_servers: tuple[RadiusServer, ...] = ()
    acct_servers: tuple[RadiusServer, ...] = ()
    """Empty: no accounting."""
    timeout: float = DEFAULT_TIMEOUT
    """``radius_timeout``: seconds to wait for an answer before sending again."""
    retries: int = DEFAULT_RETRIES
    """``radius_retries``: sends to one server (the first included) before the next one is tried."""
    deadtime: float = 0
    """``radius_deadtime``: seconds a server that gave no answer is tried only after the others; 0: never."""
    nas_identifier: str | None = None
    nas_ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None = None
    bindaddr: str | None = None
    """The local address to bind to; None: any (``bindaddr *`` or not given)."""
    dictionary: str | None = None
    """The dictionary named (recorded only: pypptp encodes with its own)."""
    servers_file: str | None = None
    default_realm: str | None = None
    warnings: list[str] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)
    """Keywords accepted and ignored (the login program's): for the debug log."""


# -- reading files safely ---------------------------------------------------------------------------


def _read(path: str, what: str, *, secret: bool, errors: list[str], warnings: list[str]) -> tuple[str, int] | None:
    """The text and mode of ``path``, or None (the reason appended to ``errors``); see the module docstring.
    A symbolic link is followed, but must lead to a regular file (a FIFO would hang the daemon).
    ``secret``: the file holds shared secrets, so access by other users is checked (:func:`_check_mode`)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        errors.append(f"{path}: {what}: cannot open: {exc.strerror}")
        return None
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode):
            errors.append(f"{path}: {what}: not a regular file")
            return None
        if info.st_size > MAX_FILE_BYTES:
            errors.append(f"{path}: {what}: {info.st_size} bytes, more than {MAX_FILE_BYTES}")
            return None
        data = f.read(MAX_FILE_BYTES + 1)
    if secret:
        _check_mode(path, what, info.st_mode, errors, warnings)
    text, bom = drop_bom(data.decode("utf-8", "surrogateescape"), path, "radiusclient reads it as text", False)
    if bom is not None:
        warnings.append(bom)
    return text, info.st_mode


def _check_mode(path: str, what: str, mode: int, errors: list[str], warnings: list[str]) -> None:
    """Secrets readable by any user are an error (they let anyone forge RADIUS answers); by the group, a
    warning (as pppd warns of a group-readable chap-secrets)."""
    if mode & stat.S_IRWXO:
        errors.append(
            f"{path}: {what} holds RADIUS shared secrets and any user may read it ({stat.filemode(mode)}): "
            f"chmod 600 {path}"
        )
    elif mode & stat.S_IRWXG:
        warnings.append(
            f"{path}: {what} holds RADIUS shared secrets and its group may read it ({stat.filemode(mode)}): "
            f"chmod 600 {path}"
        )


# -- servers ---------------------------------------------------------------------------------------


def _default_port(service: str, fallback: int) -> int:
    """The port of ``/etc/services``'s ``service``/udp entry, as radiusclient looks it up, else ``fallback``."""
    try:
        return socket.getservbyname(service, "udp")
    except OSError:
        return fallback


@dataclasses.dataclass(frozen=True)
class _ServerSpec:
    host: str
    port: int
    secret: bytes | None
    where: str


def _server_specs(value: str, keyword: str, where: str, errors: list[str]) -> list[_ServerSpec]:
    """The servers of an ``authserver``/``acctserver`` value (see the module docstring)."""
    default = (
        _default_port("radius", DEFAULT_AUTH_PORT)
        if keyword == "authserver"
        else _default_port("radacct", DEFAULT_ACCT_PORT)
    )
    specs: list[_ServerSpec] = []
    items = [item for item in re.split(r"[,\s]+", value.strip()) if item]
    for item in items:
        if item.startswith("["):
            host, bracket, rest = item[1:].partition("]")
            if not bracket:
                errors.append(f"{where}: {keyword}: {item!r}: an IPv6 address needs its closing ']'")
                continue
            if rest and not rest.startswith(":"):
                errors.append(f"{where}: {keyword}: {item!r}: ':PORT' may follow ']', nothing else")
                continue
            port_text, _, secret_text = rest[1:].partition(":")
        else:
            host, _, rest = item.partition(":")
            port_text, _, secret_text = rest.partition(":")
        secret = secret_text.encode("utf-8", "surrogateescape") if secret_text else None
        if not host:
            errors.append(f"{where}: {keyword}: {item!r}: no host")
            continue
        if port_text:
            if not _NUMBER.fullmatch(port_text) or not 1 <= int(port_text) <= 65535:
                errors.append(f"{where}: {keyword}: {item!r}: the port must be a number from 1 to 65535")
                continue
            port = int(port_text)
        else:
            port = default
        if item.startswith("["):
            try:
                ipaddress.IPv6Address(host)
            except ValueError:
                errors.append(f"{where}: {keyword}: {item!r}: {host!r} is no IPv6 address")
                continue
        specs.append(_ServerSpec(host, port, secret, where))
    if not items:
        errors.append(f"{where}: {keyword}: no server given")
    elif len(specs) > MAX_SERVERS:
        errors.append(f"{where}: {keyword}: {len(specs)} servers, at most {MAX_SERVERS}")
        del specs[MAX_SERVERS:]
    return specs


def parse_servers_file(text: str, path: str, errors: list[str], warnings: list[str]) -> list[tuple[str, bytes, str]]:
    """The (host, secret, ``file:line``) lines of a radiusclient ``servers`` file, in order."""
    entries: list[tuple[str, bytes, str]] = []
    for number, line in enumerate(text.splitlines(), 1):
        where = f"{path}:{number}"
        words = _WORD.findall(line)
        if not words or words[0].startswith("#"):
            continue
        if len(words) < 2:
            errors.append(f"{where}: {words[0]!r} has no secret (a line is HOST SECRET)")
            continue
        if len(words) > 2 and not words[2].startswith("#"):
            warnings.append(f"{where}: words after the secret are ignored, as radiusclient ignores them")
        secret = words[1].encode("utf-8", "surrogateescape")
        if len(secret) > MAX_SECRET:
            errors.append(f"{where}: the secret is {len(secret)} bytes long, more than {MAX_SECRET}")
            continue
        if len(secret) > RADIUSCLIENT_SECRET_MAX:
            warnings.append(
                f"{where}: the secret is {len(secret)} bytes long: radiusclient used only its first "
                f"{RADIUSCLIENT_SECRET_MAX}, pypptp uses all of it (the RADIUS server's must match)"
            )
        entries.append((words[0], secret, where))
    return entries


def read_servers_file(
    path: str, errors: list[str], warnings: list[str], what: str = "servers file"
) -> list[tuple[str, bytes, str]] | None:
    """Read ``path`` safely, as a file of shared secrets (see the module docstring), and parse it
    (:func:`parse_servers_file`); problems go to ``errors`` and ``warnings``.  None: it cannot be read."""
    read = _read(path, what, secret=True, errors=errors, warnings=warnings)
    return None if read is None else parse_servers_file(read[0], path, errors, warnings)


def _addresses(host: str) -> set[str]:
    """The addresses of ``host`` (a literal is itself; a name is looked up once, at configuration time)."""
    try:
        return {str(ipaddress.ip_address(host))}
    except ValueError:
        pass
    try:
        return {str(info[4][0]) for info in socket.getaddrinfo(host, None, type=socket.SOCK_DGRAM)}
    except (OSError, UnicodeError):
        return set()


def _find_secret(spec: _ServerSpec, entries: list[tuple[str, bytes, str]]) -> bytes | None:
    """``spec``'s secret from the servers file: by name as written, then by address (radiusclient
    compares addresses).  ``NAS/SERVER`` (paired form) matches either name."""
    candidates = [
        (name.removeprefix("[").removesuffix("]"), secret)
        for names, secret, _ in entries
        for name in names.split("/")
        if name
    ]
    for name, secret in candidates:
        if name.lower() == spec.host.lower():
            return secret
    ours = _addresses(spec.host)
    if ours:
        for name, secret in candidates[:MAX_LOOKUPS]:
            if ours & _addresses(name):
                return secret
    return None


# -- the configuration file ------------------------------------------------------------------------

_LOGIN_ONLY = ("auth_order", "login_tries", "login_timeout", "nologin", "issue", "login_radius", "login_local")
_KEYWORDS = frozenset(
    {
        "authserver",
        "acctserver",
        "servers",
        "dictionary",
        "radius_timeout",
        "radius_retries",
        "radius_deadtime",
        "nas-identifier",
        "nas_identifier",
        "nas-ip",
        "bindaddr",
        "default_realm",
        "seqfile",
        "mapfile",
        "clientdebug",
        "serv-type",
        "serv-auth-type",
        "radius_proto",
        "tls-verify-hostname",
        "tls-ca-file",
        "tls-cert-file",
        "tls-key-file",
        *_LOGIN_ONLY,
    }
)
"""radiusclient's, radiusclient-ng's, freeradius-client's and radcli's keywords (their option tables)."""
_EMPTY_ALLOWED = frozenset(
    {"default_realm", "nas-identifier", "dictionary", "seqfile", "mapfile", "nologin", "issue", "login_radius"}
    | {"login_local"}
)
"""String keywords radiusclient accepts with nothing after them: the same as not given."""
_SAME = {"nas_identifier": "nas-identifier", "serv-auth-type": "serv-type", "radius_proto": "serv-type"}


def _integer(value: str, keyword: str, where: str, low: int, high: int, errors: list[str]) -> int | None:
    if not _NUMBER.fullmatch(value) or not low <= int(value) <= high:
        errors.append(f"{where}: {keyword} needs a whole number from {low} to {high}, got {value!r}")
        return None
    return int(value)


def _auth_order(value: str, where: str, errors: list[str]) -> None:
    """radiusclient's check: ``radius`` or ``local``, optionally followed by the other one."""
    words = tuple(word for word in re.split(r"[,\s]+", value) if word)
    if words not in (("radius",), ("local",), ("radius", "local"), ("local", "radius")):
        errors.append(f"{where}: auth_order: {value!r}: radius, local, 'radius,local' or 'local,radius'")


def parse_radiusclient_conf(text: str, path: str = "<string>", *, servers_text: str | None = None) -> RadiusConfig:
    """Parse radiusclient.conf's ``text``; the ``servers`` file it names is read from disk (safely), unless
    ``servers_text`` gives its text.  Raises :class:`RadiusConfigError` with every problem found."""
    config = RadiusConfig(path=path)
    errors: list[str] = []
    seen: dict[str, str] = {}
    specs: dict[str, list[_ServerSpec]] = {}
    text, bom = drop_bom(text, path, "radiusclient reads it as part of the first keyword", False)
    if bom is not None:
        config.warnings.append(bom)
    for number, line in enumerate(text.splitlines(), 1):
        where = f"{path}:{number}"
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        keyword, _, value = stripped.replace("\t", " ").partition(" ")
        value = value.strip()
        if keyword not in _KEYWORDS:
            close = difflib.get_close_matches(keyword, sorted(_KEYWORDS), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            errors.append(f"{where}: unknown keyword {keyword!r}{hint}")
            continue
        canonical = _SAME.get(keyword, keyword)
        if canonical in seen:
            errors.append(f"{where}: {keyword} given again (first at {seen[canonical]}); radiusclient refuses that")
            continue
        seen[canonical] = where
        if not value:
            if canonical in _EMPTY_ALLOWED:  # radiusclient takes an empty string (its sample has default_realm so)
                continue
            errors.append(f"{where}: {keyword} needs a value")
            continue
        _keyword(config, canonical, keyword, value, where, errors, specs)
    if "authserver" not in seen:
        errors.append(f"{path}: no authserver: the RADIUS server to ask is required")
    if "acctserver" not in seen:
        config.warnings.append(f"{path}: no acctserver: sessions are not accounted")
    if "dictionary" not in seen:
        config.notes.append(f"{path}: no dictionary (radiusclient requires one; pypptp uses its own)")
    _resolve_secrets(config, specs, servers_text, errors)
    if errors:
        raise RadiusConfigError(*errors)
    return config


def _keyword(
    config: RadiusConfig,
    keyword: str,
    written: str,
    value: str,
    where: str,
    errors: list[str],
    specs: dict[str, list[_ServerSpec]],
) -> None:
    """Apply one ``keyword value`` line (``written``: the keyword as written, for messages)."""
    if keyword in ("authserver", "acctserver"):
        specs[keyword] = _server_specs(value, keyword, where, errors)
    elif keyword == "servers":
        config.servers_file = value
    elif keyword == "dictionary":
        config.dictionary = value
        if not os.path.isfile(value):
            config.warnings.append(
                f"{where}: dictionary {value}: no such file (pppd's plugin would not start; pypptp uses its own)"
            )
    elif keyword == "radius_timeout":
        timeout = _integer(value, keyword, where, 1, MAX_TIMEOUT, errors)
        if timeout is not None:
            config.timeout = timeout
    elif keyword == "radius_retries":
        retries = _integer(value, keyword, where, 1, MAX_RETRIES, errors)
        if retries is not None:
            config.retries = retries
    elif keyword == "radius_deadtime":
        deadtime = _integer(value, keyword, where, 0, 86400, errors)
        if deadtime is not None:
            config.deadtime = deadtime
    elif keyword == "nas-identifier":
        if len(value.encode("utf-8", "surrogateescape")) > 253:
            errors.append(f"{where}: {written}: more than 253 bytes do not fit in NAS-Identifier")
        else:
            config.nas_identifier = value
    elif keyword == "nas-ip":
        try:
            config.nas_ip = ipaddress.ip_address(value)
        except ValueError:
            errors.append(f"{where}: nas-ip needs an IPv4 or IPv6 address, got {value!r}")
    elif keyword == "bindaddr":
        if value != "*":
            try:
                config.bindaddr = str(ipaddress.ip_address(value))
            except ValueError:
                errors.append(f"{where}: bindaddr needs an address or *, got {value!r} (names are not resolved)")
    elif keyword == "default_realm":
        config.default_realm = value
        config.notes.append(f"{where}: default_realm recorded, not applied (pppd's radius plugin does not either)")
    elif keyword == "serv-type":
        if value.lower() != "udp":
            errors.append(f"{where}: {written} {value}: pypptp speaks RADIUS over UDP only")
    elif keyword.startswith("tls-"):
        config.warnings.append(f"{where}: {keyword} ignored: pypptp speaks RADIUS over UDP only")
    elif keyword == "auth_order":
        _auth_order(value, where, errors)
        config.notes.append(f"{where}: auth_order ignored: pppd's radius plugin does not use it either")
    elif keyword in ("login_tries", "login_timeout", "clientdebug"):
        if _integer(value, keyword, where, 0, 2**31 - 1, errors) is not None:
            config.notes.append(f"{where}: {keyword} ignored: it is the login program's")
    else:  # nologin, issue, login_radius, login_local, seqfile, mapfile
        config.notes.append(f"{where}: {keyword} ignored: it is the login program's")


def _resolve_secrets(
    config: RadiusConfig, specs: dict[str, list[_ServerSpec]], servers_text: str | None, errors: list[str]
) -> None:
    """Give every server its secret: inline, or from the ``servers`` file."""
    need_file = any(spec.secret is None for kind in specs.values() for spec in kind)
    entries: list[tuple[str, bytes, str]] = []
    if need_file:
        if config.servers_file is None:
            errors.append(f"{config.path}: no servers file (the secrets), and a server has no inline secret")
            return
        if servers_text is None:
            read = read_servers_file(config.servers_file, errors, config.warnings)
            if read is None:
                return
            entries = read
        else:
            entries = parse_servers_file(servers_text, config.servers_file, errors, config.warnings)
    for kind in ("authserver", "acctserver"):
        servers = []
        for spec in specs.get(kind, []):
            secret = spec.secret if spec.secret is not None else _find_secret(spec, entries)
            if secret is None:
                errors.append(f"{spec.where}: {kind} {spec.host}: no secret for it in {config.servers_file}")
                continue
            servers.append(RadiusServer(spec.host, spec.port, secret, spec.where, spec.secret is not None))
        if kind == "authserver":
            config.auth_servers = tuple(servers)
        else:
            config.acct_servers = tuple(servers)


def read_radiusclient_conf(path: str = RADIUSCLIENT_CONF) -> RadiusConfig:
    """Read and parse ``path`` and the ``servers`` file it names; raises :class:`RadiusConfigError`."""
    errors: list[str] = []
    warnings: list[str] = []
    read = _read(path, "radiusclient configuration", secret=False, errors=errors, warnings=warnings)
    if read is None:
        raise RadiusConfigError(*errors)
    text, mode = read
    try:
        config = parse_radiusclient_conf(text, path)
    except RadiusConfigError as exc:
        errors.extend(exc.messages)
        config = None
    if config is not None and any(server.inline for server in (*config.auth_servers, *config.acct_servers)):
        # radcli's HOST:PORT:SECRET makes this file a secrets file too
        _check_mode(path, "radiusclient configuration", mode, errors, warnings)
    if errors:
        raise RadiusConfigError(*errors)
    assert config is not None
    config.warnings[:0] = warnings
    return config
