"""``/etc/ppp/chap-secrets`` (and ``pap-secrets``) with pppd's semantics.

One secret per record: ``client server secret [address ...] [-- option ...]``.

Lexical rules: pppd's options-file words (:func:`pypptp.ppp.words.split_words`:
quotes, backslash escapes, ``#`` comments); a newline ends a record.

Matching: a name matches itself or ``*``.  The best match wins: an exact
client scores 2, an exact server 1; on a tie the first record in the file
wins.  A secret ``@/path`` is the first word of that file (read by the caller's
``read_file``, :func:`parse_secrets`).

Address lists: none (three words) or ``-`` forbid every address; ``*``
allows any; ``a.b.c.d`` allows that host (and the first such host is the
address to assign); ``a.b.c.d/n`` a subnet; ``a.b.c.d/n+`` the address
whose host part is the ppp unit number + 1 (skipped, as pppd skips it, when
that does not fit below the subnet's broadcast address); ``!spec`` forbids.
The first entry that matches decides.  Host names are refused: resolving them would
make the daemon depend on DNS at authentication time.

Errors name the file and the line.  This module reads no file: reading
chap-secrets safely (a regular file, symbolic links followed, bounded in size,
a warning when other users may read it), and the file of an ``@/path``
secret, is :mod:`pypptp.conf.chap_secrets`.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Callable, Sequence

from pypptp.ppp.words import WordError, split_words

__all__ = ["AddressPolicy", "ChapSecret", "ChapSecrets", "ReadFile", "SecretsError", "parse_secrets"]

ReadFile = Callable[[str], tuple[str, Sequence[str]]]
"""Reads the file of an ``@/path`` secret: its text and warnings about it; raises :class:`SecretsError`."""


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


def parse_secrets(text: str, path: str = "<string>", *, read_file: ReadFile | None = None) -> ChapSecrets:
    """Parse the text of a secrets file (``path`` names it in errors and in :attr:`ChapSecret.where`).

    A secret ``@/path`` is the first word of that file, read with ``read_file`` (which returns the
    file's text and warnings about it, and raises :class:`SecretsError`): the daemon passes
    :func:`pypptp.conf.chap_secrets.read_limited`.  Without ``read_file`` such a secret stays as written.
    """
    records: list[ChapSecret] = []
    warnings: list[str] = []
    for record in _split(text, path):
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
        if secret.startswith("@"):
            if not secret.startswith("@/"):
                raise SecretsError(f"{where}: a secret from a file needs an absolute path (@/path)")
            if read_file is not None:
                file_text, file_warnings = read_file(secret[1:])
                warnings.extend(file_warnings)
                first = _split(file_text, secret[1:])
                secret = first[0][0][0] if first else ""
        records.append(ChapSecret(client, server, secret, _policy(rest, where), options, where))
    return ChapSecrets(tuple(records), tuple(warnings))


def _split(text: str, path: str) -> list[list[tuple[str, int]]]:
    try:
        return split_words(text, path)
    except WordError as exc:
        raise SecretsError(str(exc)) from None
