"""``pptpd.conf`` with pptpd's parsing rules (pptpd.conf(5)).

Rules, as pptpd applies them:

* one ``keyword [value]`` per line; the value is the rest of the line with
  trailing white space removed (there are no inline comments: ``#`` after a
  keyword is part of the value);
* lines whose first character is ``#`` are comments; blank lines are ignored;
* the first occurrence of a keyword wins; later ones are ignored (we warn);
* a line that starts with white space is an error here: pptpd silently
  ignores it, which hides typos, so we report it with file and line.

Unknown keywords are reported as errors with file and line too (pptpd ignores
them silently, so a misspelt ``remoteip`` would leave pptpd's defaults), with the
closest keyword.  A UTF-8 byte order mark at the start (Notepad writes one) makes
pptpd ignore the first line; read ``strict`` (``pypptpd --check``) it is an error
(:attr:`PptpdConfig.errors`), otherwise it is skipped with a warning.  The file is
read as the pppd options are: a regular file (links followed), without blocking,
bounded in size.
"""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import os
import stat
from pathlib import Path

from pypptp.conf.words import drop_bom

__all__ = [
    "DEFAULT_CONNECTIONS",
    "DEFAULT_LISTEN",
    "DEFAULT_PATH",
    "DEFAULT_PIDFILE",
    "DEFAULT_SPEED",
    "DEFAULT_STIMEOUT",
    "KEYWORDS",
    "ConfigError",
    "PptpdConfig",
    "parse_pptpd_conf",
    "read_pptpd_conf",
]

FLAG_KEYWORDS = frozenset({"debug", "noipparam", "logwtmp", "delegate"})
VALUE_KEYWORDS = frozenset(
    {"ppp", "option", "stimeout", "vrf", "bcrelay", "connections", "localip", "remoteip", "listen", "pidfile", "speed"}
)

KEYWORDS = FLAG_KEYWORDS | VALUE_KEYWORDS  # the 15 keywords of pptpd.conf(5)

# pptpd's defaults, the one place they are spelled (the daemon's configuration and its --help use them)
DEFAULT_PATH = "/etc/pptpd.conf"
DEFAULT_CONNECTIONS = 100  # pptpd's MAX_CONNECTIONS
DEFAULT_STIMEOUT = 10  # seconds; pptpd's STIMEOUT
DEFAULT_SPEED = "115200"
DEFAULT_PIDFILE = "/var/run/pptpd.pid"
DEFAULT_LISTEN = "0.0.0.0"  # every address
MAX_FILE_BYTES = 1024 * 1024
_BOM_CONSEQUENCE = "pptpd reads it as part of the first line's keyword, and ignores that line"


class ConfigError(ValueError):
    """A configuration line is wrong; the text names the file and line."""


@dataclasses.dataclass
class PptpdConfig:
    """The parsed contents of a ``pptpd.conf``; values keep pptpd's defaults."""

    path: str | None = None
    ppp: str | None = None
    option: str | None = None
    debug: bool = False
    stimeout: int = DEFAULT_STIMEOUT
    noipparam: bool = False
    logwtmp: bool = False
    vrf: str | None = None
    bcrelay: str | None = None
    delegate: bool = False
    connections: int = DEFAULT_CONNECTIONS
    localip: str | None = None
    remoteip: str | None = None
    listen: str | None = None
    pidfile: str = DEFAULT_PIDFILE
    speed: str = DEFAULT_SPEED
    lines: dict[str, int] = dataclasses.field(default_factory=dict)
    """The line of each keyword's first occurrence (the one that counts), for messages about it."""
    warnings: list[str] = dataclasses.field(default_factory=list)
    errors: list[str] = dataclasses.field(default_factory=list)
    """Problems that do not stop the reading, found only when read ``strict`` (a byte order mark)."""

    @property
    def present(self) -> set[str]:
        """Keywords that appeared in the file."""
        return set(self.lines)


def parse_pptpd_conf(text: str, path: str = "<string>") -> PptpdConfig:
    """Parse the text of a pptpd.conf; raise :class:`ConfigError` on the first bad line."""
    config = PptpdConfig(path=path)
    for number, raw in enumerate(text.splitlines(), start=1):
        where = f"{path}:{number}"
        if not raw.strip() or raw.startswith("#"):
            continue
        if raw[0].isspace():
            raise ConfigError(f"{where}: line starts with white space (pptpd would ignore it): {raw.strip()!r}")
        parts = raw.split(None, 1)
        keyword, value = parts[0], parts[1].rstrip() if len(parts) > 1 else ""
        if keyword not in KEYWORDS:
            close = difflib.get_close_matches(keyword.lower(), sorted(KEYWORDS), n=1, cutoff=0.7)
            fix = f"did you mean {close[0]!r}? Correct it or remove it" if close else "remove it"
            raise ConfigError(f"{where}: unknown keyword {keyword!r} (pptpd would ignore the line); {fix}")
        if keyword in config.lines:
            config.warnings.append(f"{where}: {keyword} repeated; the first occurrence wins")
            continue
        config.lines[keyword] = number
        if keyword in FLAG_KEYWORDS:
            if value:
                raise ConfigError(f"{where}: {keyword} takes no value, got {value!r}")
            setattr(config, keyword, True)
            continue
        if not value:
            raise ConfigError(f"{where}: {keyword} needs a value")
        if keyword in ("stimeout", "connections"):
            if not value.isdigit() or int(value) < 1:
                raise ConfigError(f"{where}: {keyword} must be a positive whole number, got {value!r}")
            setattr(config, keyword, int(value))
        elif keyword == "listen":
            try:
                ipaddress.IPv4Address(value)
            except ValueError:
                raise ConfigError(f"{where}: listen needs an IPv4 address, got {value!r}") from None
            config.listen = value
        else:
            setattr(config, keyword, value)
    return config


def read_pptpd_conf(path: str | Path, *, strict: bool = False) -> PptpdConfig:
    """Read and parse a pptpd.conf file; ``strict``: a byte order mark goes to :attr:`PptpdConfig.errors`."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ConfigError(f"{path}: not a regular file")
        data = f.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise ConfigError(f"{path}: more than {MAX_FILE_BYTES} bytes")
    text, bom = drop_bom(data.decode("utf-8", errors="replace"), str(path), _BOM_CONSEQUENCE, strict)
    config = parse_pptpd_conf(text, str(path))
    if bom is not None:
        (config.errors if strict else config.warnings).insert(0, bom)
    return config
