"""``/etc/ppp/chap-secrets`` (and ``pap-secrets``) with pppd's semantics.

One secret per record: ``client server secret [address ...] [-- option ...]``.

Lexical rules (pppd's options-file word parser): white space separates
words and a newline ends a record; ``#`` starts a comment outside quotes;
``"..."`` and ``'...'`` group words (quotes may be mixed inside one word);
backslash escapes: newline (continuation), ``\\a \\b \\f \\n \\r \\t``,
``\\s`` (space), ``\\ddd`` (octal, up to 3 digits), ``\\xHH`` (hex, up to
2 digits), and any other character taken literally.  Words are at most
1023 bytes.

Matching: a name matches itself or ``*``.  The best match wins: an exact
client scores 2, an exact server 1; on a tie the first record in the file
wins.  A secret ``@/path`` is the first word of that file.

Address lists: none (three words) or ``-`` forbid every address; ``*``
allows any; ``a.b.c.d`` allows that host (and the first such host is the
address to assign); ``a.b.c.d/n`` a subnet; ``a.b.c.d/n+`` the address
whose host part is the ppp unit number + 1 (skipped, as pppd skips it, when
that does not fit below the subnet's broadcast address); ``!spec`` forbids.
The first entry that matches decides.  Host names are refused: resolving them would
make the daemon depend on DNS at authentication time.

Errors name the file and the line.  Files are read safely: regular files
only, no symbolic links, bounded in size, with a warning when other users
may read them.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import stat

__all__ = ["AddressPolicy", "ChapSecret", "ChapSecrets", "SecretsError", "parse_secrets", "read_secrets_file"]

MAX_WORD = 1023
MAX_FILE_BYTES = 4 * 1024 * 1024

_SIMPLE_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "s": " "}


class SecretsError(ValueError):
    """A secrets file is unusable; the text names the file and line."""


@dataclasses.dataclass(frozen=True)
class _Entry:
    allow: bool
    network: ipaddress.IPv4Network | None  # None: any address ("*")
    unit_based: bool = False  # a.b.c.d/n+


@dataclasses.dataclass(frozen=True)
class AddressPolicy:
    """Which addresses the peer may use (pppd's ``set_allowed_addrs``)."""

    entries: tuple[_Entry, ...] = ()

    def allows(self, address: ipaddress.IPv4Address | str, unit: int = 0) -> bool:
        address = ipaddress.IPv4Address(address)
        if address.is_loopback or address.is_multicast or address.is_reserved or address.is_unspecified:
            return False
        for entry in self.entries:
            if entry.network is None:
                return entry.allow
            if entry.unit_based:
                if address == self._unit_address(entry.network, unit):  # (None: skipped)
                    return entry.allow
            elif address in entry.network:
                return entry.allow
        return False

    def assigned_address(self, unit: int = 0) -> ipaddress.IPv4Address | None:
        """The address to give the peer: the first single host (or ``/n+``) allowed."""
        for entry in self.entries:
            if not entry.allow or entry.network is None:
                continue
            if entry.unit_based:
                address = self._unit_address(entry.network, unit)
                if address is not None:
                    return address
                continue  # the unit does not fit in this subnet: pppd skips the entry
            if entry.network.prefixlen == 32:
                return entry.network.network_address
        return None

    def pinned(self) -> ipaddress.IPv4Address | None:
        """The one address this record always gives its user (a single host, not a ``/n+`` form, is the
        address :meth:`assigned_address` picks); None when it depends on the unit or there is none."""
        for entry in self.entries:
            if not entry.allow or entry.network is None:
                continue
            if entry.unit_based:
                return None
            if entry.network.prefixlen == 32:
                return entry.network.network_address
        return None

    @staticmethod
    def _unit_address(network: ipaddress.IPv4Network, unit: int) -> ipaddress.IPv4Address | None:
        """Host ``unit + 1`` of ``network``, or None when that is the broadcast address or beyond (pppd
        skips the entry then; unit 2 of a /30 would be its broadcast address, unit 300 of a /24 outside
        it, and at the top of the address space the sum would not be an address at all)."""
        offset = unit + 1
        if offset >= network.num_addresses - 1:
            return None
        return network.network_address + offset


@dataclasses.dataclass(frozen=True)
class ChapSecret:
    """One record of a secrets file."""

    client: str
    server: str
    secret: str
    addresses: AddressPolicy
    options: tuple[str, ...]
    where: str  # "file:line", for log lines


@dataclasses.dataclass(frozen=True)
class ChapSecrets:
    """The records of a secrets file, looked up with pppd's best-match rule."""

    records: tuple[ChapSecret, ...]
    warnings: tuple[str, ...] = ()

    def pinned_addresses(self) -> dict[ipaddress.IPv4Address, ChapSecret]:
        """Addresses pinned to one user each (:meth:`AddressPolicy.pinned`), with the first record that
        pins each; the daemon keeps them out of the dynamic pool."""
        pinned: dict[ipaddress.IPv4Address, ChapSecret] = {}
        for record in self.records:
            address = record.addresses.pinned()
            if address is not None:
                pinned.setdefault(address, record)
        return pinned

    def lookup(self, client: str, server: str) -> ChapSecret | None:
        best: ChapSecret | None = None
        best_score = -1
        for record in self.records:
            if record.client not in (client, "*") or record.server not in (server, "*"):
                continue
            score = (2 if record.client == client else 0) + (1 if record.server == server else 0)
            if score > best_score:  # strict: on a tie the first record wins
                best, best_score = record, score
        return best


def _words(text: str, path: str) -> list[list[tuple[str, int]]]:
    """Records of (word, line number), by pppd's lexical rules."""
    records: list[list[tuple[str, int]]] = []
    current: list[tuple[str, int]] = []
    line = 1
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "\n":
            if current:
                records.append(current)
                current = []
            line += 1
            i += 1
            continue
        if ch in " \t\r\f\v":
            i += 1
            continue
        if ch == "\\" and i + 1 < n and text[i + 1] == "\n":  # a continuation between words
            line += 1
            i += 2
            continue
        if ch == "#":
            while i < n and text[i] != "\n":
                i += 1
            continue
        word: list[str] = []
        start_line = line
        quote: str | None = None
        while i < n:
            ch = text[i]
            if quote is None and (ch in " \t\r\f\v\n" or ch == "#"):
                break
            if ch == "\\":
                i += 1
                if i >= n:
                    break
                ch = text[i]
                if ch == "\n":  # continuation
                    line += 1
                    i += 1
                    continue
                if ch in _SIMPLE_ESCAPES:
                    word.append(_SIMPLE_ESCAPES[ch])
                    i += 1
                elif ch in "01234567":
                    digits = text[i : i + 3]
                    count = len(digits) - len(digits.lstrip("01234567"))
                    word.append(chr(int(digits[:count], 8) & 0xFF))
                    i += count
                elif ch == "x" and i + 1 < n and text[i + 1] in "0123456789abcdefABCDEF":
                    digits = text[i + 1 : i + 3]
                    count = 2 if len(digits) == 2 and digits[1] in "0123456789abcdefABCDEF" else 1
                    word.append(chr(int(digits[:count], 16)))
                    i += 1 + count
                else:
                    word.append(ch)
                    i += 1
                continue
            if quote is not None and ch == quote:
                quote = None
            elif quote is None and ch in "\"'":
                quote = ch
            else:
                if ch == "\n":
                    line += 1
                word.append(ch)
            i += 1
        if quote is not None:
            raise SecretsError(f"{path}:{start_line}: unterminated {quote} quote")
        value = "".join(word)
        if len(value.encode("utf-8", "surrogateescape")) > MAX_WORD:
            raise SecretsError(f"{path}:{start_line}: a word is longer than {MAX_WORD} bytes")
        current.append((value, start_line))
    if current:
        records.append(current)
    return records


def _address_entry(word: str, where: str) -> _Entry:
    allow = not word.startswith("!")
    spec = word[1:] if not allow else word
    unit_based = spec.endswith("+")
    if unit_based:
        spec = spec[:-1]
        if "/" not in spec:
            raise SecretsError(f"{where}: {word!r}: '+' needs a subnet (a.b.c.d/n+)")
    try:
        network = ipaddress.IPv4Network(spec, strict=False)
    except ValueError:
        raise SecretsError(
            f"{where}: {word!r} is not an IPv4 address or subnet (host names are not resolved)"
        ) from None
    return _Entry(allow, network, unit_based)


def _policy(words: list[str], where: str) -> AddressPolicy:
    if not words or words[0] == "-":
        return AddressPolicy(())  # pppd: no address authorised
    entries: list[_Entry] = []
    for word in words:
        if word == "*":
            entries.append(_Entry(True, None))
            break
        entries.append(_address_entry(word, where))
    return AddressPolicy(tuple(entries))


def _read_limited(path: str) -> tuple[str, list[str]]:
    """Read a secrets file safely; returns its text and warnings."""
    warnings: list[str] = []
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise SecretsError(f"{path}: cannot open: {exc.strerror}") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise SecretsError(f"{path}: not a regular file")
    with os.fdopen(fd, "rb") as f:
        if info.st_size > MAX_FILE_BYTES:
            raise SecretsError(f"{path}: {info.st_size} bytes, more than {MAX_FILE_BYTES}")
        if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            warnings.append(
                f"{path}: has world and/or group access ({stat.filemode(info.st_mode)}); pppd warns of this "
                "too (chmod 600)"
            )
        data = f.read(MAX_FILE_BYTES + 1)
    return data.decode("utf-8", "surrogateescape"), warnings


def parse_secrets(text: str, path: str = "<string>", *, read_file: bool = True) -> ChapSecrets:
    """Parse the text of a secrets file.  ``@/path`` secrets are read unless ``read_file`` is false."""
    records: list[ChapSecret] = []
    warnings: list[str] = []
    for record in _words(text, path):
        line = record[0][1]
        where = f"{path}:{line}"
        words = [w for w, _ in record]
        if len(words) < 3:
            raise SecretsError(f"{where}: a record needs client, server and secret; got {len(words)} word(s)")
        client, server, secret, *rest = words
        options: tuple[str, ...] = ()
        if "--" in rest:
            cut = rest.index("--")
            rest, options = rest[:cut], tuple(rest[cut + 1 :])
        if secret.startswith("@") and read_file:
            if not secret.startswith("@/"):
                raise SecretsError(f"{where}: a secret from a file needs an absolute path (@/path)")
            file_text, file_warnings = _read_limited(secret[1:])
            warnings.extend(file_warnings)
            first = _words(file_text, secret[1:])
            secret = first[0][0][0] if first else ""
        records.append(ChapSecret(client, server, secret, _policy(rest, where), options, where))
    return ChapSecrets(tuple(records), tuple(warnings))


def read_secrets_file(path: str) -> ChapSecrets:
    """Read and parse ``path`` (for example ``/etc/ppp/chap-secrets``)."""
    text, warnings = _read_limited(path)
    secrets = parse_secrets(text, path)
    return dataclasses.replace(secrets, warnings=(*warnings, *secrets.warnings))
