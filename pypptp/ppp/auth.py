"""PPP authentication, sans-IO: the interface every method implements, and the factories.

Four methods, each with an authenticator (server) and a peer (client) side:

* PAP (RFC 1334 section 2): :mod:`pypptp.ppp.pap`;
* CHAP-MD5 (RFC 1994), MS-CHAP v1 (RFC 2433) and MS-CHAP v2 (RFC 2759):
  one CHAP engine with a small digest object per algorithm,
  :mod:`pypptp.ppp.chap`.

What drives a method (:class:`AuthMethod`): ``start(now)`` when the link
enters the Authenticate phase (RFC 1661 section 3.5), ``receive(packet,
now)`` for each decoded packet of its protocol, and ``handle_timer(now)``
at ``next_deadline()``.  What comes out: ``drain()`` gives the packets to
send and log lines, and ``result`` is set exactly once, when the exchange
is final.  No sockets, no clocks: time is always a parameter.

Every received packet is parsed with its lengths checked before anything
is read (the lesson of pppd's CVE-2020-8597: never trust a length field); a
malformed or unexpected packet is discarded with a log line and never
raises.  Secrets are compared in constant time, and an unknown user fails
exactly like a wrong password.

Names travel as bytes.  They are decoded as UTF-8 with ``surrogateescape``
(how :mod:`pypptp.ppp.secrets` decodes the file) for secrets lookups and
logs; the MS-CHAP hashes use the raw bytes.  A name holding a control
character (NUL, C0, DEL, C1, or a Unicode line or paragraph separator) is
refused at authentication as a failed attempt (:func:`name_problem`): no
secret can hold one, and such a name would otherwise reach logs and the
scripts' PEERNAME.  Bytes that are not UTF-8 (a client in a legacy code
page) are allowed.  Peer-supplied text is never logged raw: log lines hold at
most 64 characters of it (:func:`clipped`), escaped (``repr``, pppd's ``%q``
or :func:`printable`), and :func:`peer_authname` is what the scripts get as
PEERNAME (pppd's ``peer_authname``: the name after ``chapms-strip-domain``,
made printable, at most 256 characters).

These methods are weak (PAP sends the password in clear, MS-CHAPv2 reduces
to one DES key): they exist for interoperability.
"""

from __future__ import annotations

import dataclasses
import os
import typing
import unicodedata
from collections.abc import Callable

from pypptp.ppp.crypto import md4
from pypptp.ppp.lcp import AUTH_CHAP_MD5, AUTH_MSCHAP_V1, AUTH_MSCHAP_V2, AUTH_PAP
from pypptp.ppp.packet import ControlPacket
from pypptp.ppp.secrets import ChapSecret

__all__ = [
    "AUTH_PROTOCOL_CHAP",
    "AUTH_PROTOCOL_PAP",
    "AuthConfig",
    "AuthMethod",
    "AuthRequest",
    "AuthResult",
    "ExternalVerdict",
    "MsChapKeys",
    "PeerNotice",
    "SecretLookup",
    "clipped",
    "make_authenticator",
    "make_peer",
    "name_problem",
    "peer_authname",
    "printable",
]

AUTH_PROTOCOL_PAP = 0xC023
AUTH_PROTOCOL_CHAP = 0xC223

RandomBytes = Callable[[int], bytes]


@dataclasses.dataclass(frozen=True)
class AuthConfig:
    """Every knob of authentication, both sides (pppd's names and defaults)."""

    our_name: str = "pptpd"
    """pppd ``name``: the Name in our CHAP Challenge, and the server field of secrets lookups."""
    strip_domain: bool = False
    """pppd ``chapms-strip-domain``: drop ``DOMAIN\\`` from the peer's name for the secrets lookup.
    (The MS-CHAPv2 ChallengeHash always uses the stripped name, RFC 2759 section 8.2.)"""
    restart_timeout: float = 3.0
    """CHAP Challenge / PAP Authenticate-Request retransmission interval (seconds)."""
    max_challenges: int = 10
    """Server: Challenges sent without a Response before giving up.  After an MS-CHAP
    Failure with R=1 the server waits ``max_challenges * restart_timeout`` for the retry."""
    pap_timeout: float = 30.0
    """Server: how long to wait for a PAP Authenticate-Request (pppd ``UPAP_DEFREQTIME``)."""
    max_attempts: int = 3
    """Server, MS-CHAP v1/v2: Responses checked at most.  Each failure before the last is a
    Failure with R=1 and a new C= challenge; the last one has R=0 and is final."""
    user: str = ""
    """Client side: our user name (may be ``DOMAIN\\user``)."""
    password: str = ""
    """Client side: our password."""
    max_requests: int = 10
    """Client PAP: Authenticate-Requests sent before giving up."""
    external: bool = False
    """Server: the peer's credentials are judged above the core (an AAA backend such as RADIUS), not
    against a :class:`SecretLookup`: the authenticator sets :attr:`AuthMethod.pending` to an
    :class:`AuthRequest` and waits for :meth:`AuthMethod.complete`."""


@dataclasses.dataclass(frozen=True)
class MsChapKeys:
    """Keying material for MPPE (RFC 3079), from MS-CHAP v1 or v2 only."""

    version: int
    """1 or 2."""
    password_hash: bytes
    """NtPasswordHash, 16 bytes (RFC 2759 section 8.3)."""
    password_hash_hash: bytes
    """MD4(NtPasswordHash), 16 bytes (RFC 2759 section 8.4)."""
    nt_response: bytes
    """The 24-byte NT response of the successful exchange."""
    challenge: bytes
    """The authenticator's challenge: 8 bytes for v1, 16 bytes for v2."""
    lm_password_hash: bytes | None = None
    """v1 only: RFC 3079's 40- and 56-bit keys derive from the LAN Manager hash."""
    send_key: bytes | None = None
    """v2 through an AAA server: the authenticator's send start key as the server gave it (RADIUS
    MS-MPPE-Send-Key, RFC 2548 section 2.4.2), used as is: the NAS never learns the password hash, so
    the RFC 3079 derivation happens on the server.  With :attr:`recv_key`, it replaces the derivation."""
    recv_key: bytes | None = None
    """v2 through an AAA server: the authenticator's receive start key (RADIUS MS-MPPE-Recv-Key)."""


@dataclasses.dataclass(frozen=True)
class AuthResult:
    """How an exchange ended."""

    success: bool
    method: str
    """"PAP", "CHAP-MD5", "MS-CHAP" or "MS-CHAP-V2"."""
    peer_name: str
    """Server side: the name the peer sent (domain not stripped); client side: our user."""
    message: str
    """A human reason, for the log."""
    secret: ChapSecret | None = None
    """Server side, on success: the matched record (the link needs its addresses)."""
    keys: MsChapKeys | None = None
    """MS-CHAP success, both sides: what MPPE derives its keys from."""
    grant: object = None
    """Server side, judged externally: what the backend attached to its :class:`ExternalVerdict` (for
    RADIUS, the Access-Accept's attributes: address, timeouts, Class); the core never reads it."""


@dataclasses.dataclass(frozen=True)
class AuthRequest:
    """What the peer sent, for a judge outside the core (:attr:`AuthConfig.external`): everything a RADIUS
    Access-Request needs (RFC 2865 PAP and CHAP, RFC 2548 MS-CHAP), nothing the core derived."""

    method: str
    """"PAP", "CHAP-MD5", "MS-CHAP" or "MS-CHAP-V2"."""
    name: bytes
    """The name as the peer sent it (``DOMAIN\\`` included)."""
    identifier: int
    """The Identifier of the Response (CHAP) or Authenticate-Request (PAP)."""
    challenge: bytes
    """CHAP: the challenge it answers (16 bytes for CHAP-MD5 and MS-CHAPv2, 8 for MS-CHAPv1); PAP: empty."""
    response: bytes
    """CHAP: the Response Value as on the wire (16 bytes for MD5, 49 for MS-CHAP v1 and v2); PAP: the
    password."""
    attempt: int = 1
    """1 for the first Response, 2 for the retry after a Failure with R=1, ..."""

    def __repr__(self) -> str:  # never the password or the response in a log or a traceback
        return f"AuthRequest({self.method}, {clipped(wire_text(self.name))!r}, attempt {self.attempt})"


@dataclasses.dataclass(frozen=True)
class ExternalVerdict:
    """An external judge's answer to an :class:`AuthRequest`."""

    ok: bool
    message: bytes = b""
    """The text of our Success or Failure (CHAP) or Ack or Nak (PAP) packet; empty: the method's own.
    MS-CHAPv2 success needs the server's ``S=`` authenticator response here (RADIUS MS-CHAP2-Success
    without its Ident octet); an MS-CHAP failure may carry ``E=... R=... C=... V=... M=...`` (RADIUS
    MS-CHAP-Error): its ``C=`` is then the challenge a retry must answer."""
    reason: str = ""
    """For the log: why it failed, or where the answer came from."""
    keys: MsChapKeys | None = None
    """MS-CHAP success: the MPPE keying material (for v2, :attr:`MsChapKeys.send_key` and ``recv_key``)."""
    grant: object = None
    """Handed back in :attr:`AuthResult.grant`."""


class SecretLookup(typing.Protocol):
    """Where an authenticator finds secrets; :class:`~pypptp.ppp.secrets.ChapSecrets` is one."""

    def lookup(self, client: str, server: str) -> ChapSecret | None: ...


class AuthMethod(typing.Protocol):
    """The one interface of every method, authenticator and peer alike."""

    protocol: int
    """The PPP protocol number of its packets: 0xC023 (PAP) or 0xC223 (CHAP)."""
    name: str
    """"PAP", "CHAP-MD5", "MS-CHAP" or "MS-CHAP-V2"."""
    result: AuthResult | None
    """Set once, when the exchange is final (success or failure)."""
    failed_attempts: list[str]
    """The authenticator: the peer name of each attempt that failed (a CHAP retry is an attempt too),
    until the link takes them; the peer side never has any."""
    pending: AuthRequest | None
    """An authenticator under :attr:`AuthConfig.external`: the credentials to judge, until the link takes
    them; the authenticator then waits (no retransmission, repeats discarded) for :meth:`complete`."""
    awaiting: AuthRequest | None
    """The request whose verdict the authenticator waits for, or None."""

    def start(self, now: float) -> None:
        """Begin: a server sends its first Challenge or starts waiting; a PAP peer sends its request."""

    def receive(self, packet: ControlPacket, now: float) -> None:
        """A decoded packet of :attr:`protocol` arrived."""

    def handle_timer(self, now: float) -> None:
        """Time passed; act if :meth:`next_deadline` has come."""

    def next_deadline(self) -> float | None:
        """When :meth:`handle_timer` next has work, or None."""

    def drain(self) -> tuple[list[ControlPacket], list[str]]:
        """Packets to send, and log lines (notices and anomalies), since the last call.  A line about a
        packet the peer should not have sent is a :class:`PeerNotice`."""

    def complete(self, verdict: ExternalVerdict, now: float) -> None:
        """The external verdict on :attr:`awaiting`; ignored when nothing is awaited."""


# -- shared by the methods --------------------------------------------------------------------


class PeerNotice(str):
    """A log line about a packet the peer should not have sent (discarded): a peer can send any number of
    them, so the link logs each kind once and counts the repeats."""

    __slots__ = ()


class Exchange:
    """What all the methods share: output queues, the deadline and the final result."""

    def __init__(self, protocol: int, name: str) -> None:
        self.protocol = protocol
        self.name = name
        self.result: AuthResult | None = None
        self.failed_attempts: list[str] = []
        self.pending: AuthRequest | None = None
        self.awaiting: AuthRequest | None = None
        self._deadline: float | None = None
        self._out: list[ControlPacket] = []
        self._log: list[str] = []

    def next_deadline(self) -> float | None:
        return self._deadline

    def complete(self, verdict: ExternalVerdict, now: float) -> None:
        """Only an authenticator under :attr:`AuthConfig.external` waits for one."""

    def _ask(self, request: AuthRequest) -> None:
        """Hand ``request`` to the external judge and wait: no timer (the judge is bounded above the
        core, and the link's setup deadline bounds the whole phase)."""
        self.pending = self.awaiting = request
        self._deadline = None

    def _take_awaited(self) -> AuthRequest | None:
        """The request a verdict is for, taken (None if nothing was awaited)."""
        request, self.awaiting, self.pending = self.awaiting, None, None
        return request

    def drain(self) -> tuple[list[ControlPacket], list[str]]:
        out, log = self._out, self._log
        self._out, self._log = [], []
        return out, log

    def _note(self, text: str) -> None:
        self._log.append(f"{self.name}: {text}")

    def _pppd_line(self, text: str) -> None:
        """One of pppd's own lines (:mod:`~pypptp.ppp.logtext`), bare as pppd writes it: fail2ban filters and
        log searches match it word for word."""
        self._log.append(text)

    def _anomaly(self, text: str) -> None:
        """A discarded packet: a :class:`PeerNotice`, which the link logs once per kind."""
        self._log.append(PeerNotice(f"{self.name}: {text}"))

    def _send(self, packet: ControlPacket) -> None:
        self._out.append(packet)

    def _finish(self, result: AuthResult) -> None:
        """Record the final result (only the first one counts) and stop the timer."""
        if self.result is None:
            self.result = result
        self._deadline = None


def wire_text(data: bytes) -> str:
    """A name from the wire as text: UTF-8, undecodable bytes kept as surrogates (like secrets.py)."""
    return data.decode("utf-8", "surrogateescape")


def wire_bytes(value: str) -> bytes:
    """The bytes of a name or secret; the inverse of :func:`wire_text`, and never raises."""
    try:
        return value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a lone surrogate that did not come from surrogateescape
        return value.encode("utf-8", "surrogatepass")


LOG_TEXT_LIMIT = 64
"""Characters of peer-supplied text in a log line (then ``...``)."""
MAX_NAME_CHARS = 256
"""pppd's MAXNAMELEN: the longest PEERNAME (pppd keeps at most this much of a peer's name)."""


def printable(text: str, limit: int = LOG_TEXT_LIMIT) -> str:
    """Peer-supplied text made safe for a log line: whatever is not printable (control characters,
    undecodable bytes, separators) escaped as ``\\xHH`` / ``\\uHHHH``, at most ``limit`` characters of
    the text, then ``...`` if there was more."""
    head = text[: limit + 1]
    cleaned = "".join(c if c.isprintable() else _escape(c) for c in head[:limit])
    return cleaned + ("..." if len(text) > limit else "")


def _escape(c: str) -> str:
    code = ord(c)
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8 (surrogateescape): show the byte
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def clipped(text: str, limit: int = LOG_TEXT_LIMIT) -> str:
    """At most ``limit`` characters of ``text``, then ``...``; for a line that escapes by itself (``repr``,
    pppd's ``%q``)."""
    return text if len(text) <= limit else text[:limit] + "..."


def name_problem(name: str) -> str | None:
    """Why a peer's name is refused at authentication, or None: it holds a control character (NUL,
    C0, DEL, C1) or a line or paragraph separator."""
    for c in name:
        if unicodedata.category(c) in ("Cc", "Zl", "Zp"):
            return f"the name holds the control character U+{ord(c):04X}"
    return None


def peer_authname(name: str, strip_domain: bool) -> str:
    """What pppd passes to ip-up and ip-down as PEERNAME (``peer_authname``): the name without
    ``DOMAIN\\`` under ``chapms-strip-domain``, made printable, at most :data:`MAX_NAME_CHARS`."""
    if strip_domain:
        name = name.rpartition("\\")[2]
    return "".join(c if c.isprintable() else _escape(c) for c in name[:MAX_NAME_CHARS])[:MAX_NAME_CHARS]


def nt_hash(password: str) -> bytes:
    """NtPasswordHash (RFC 2759 section 8.3) that never raises.

    A password read from a file that is not UTF-8 holds lone surrogates, which
    UTF-16 cannot encode strictly; they are hashed as their code units.
    """
    return md4(password.encode("utf-16-le", "surrogatepass"))


def random_checked(random_bytes: RandomBytes, size: int) -> bytes:
    """``size`` bytes from ``random_bytes``; a source that returns another size is a bug."""
    value = random_bytes(size)
    if len(value) != size:
        raise ValueError(f"random_bytes({size}) returned {len(value)} bytes")
    return bytes(value)


# -- factories ---------------------------------------------------------------------------------

_CHAP_ALGORITHMS = {AUTH_CHAP_MD5: 0x05, AUTH_MSCHAP_V1: 0x80, AUTH_MSCHAP_V2: 0x81}


def make_authenticator(
    option: bytes, config: AuthConfig, secrets: SecretLookup, *, random_bytes: RandomBytes = os.urandom
) -> AuthMethod:
    """The server side for the LCP Authentication-Protocol value the peer acknowledged.

    ``option`` is :data:`~pypptp.ppp.lcp.AUTH_PAP`, ``AUTH_CHAP_MD5``, ``AUTH_MSCHAP_V1`` or
    ``AUTH_MSCHAP_V2``; anything else raises :class:`ValueError`.
    """
    from pypptp.ppp.chap import ChapAuthenticator, digest_for
    from pypptp.ppp.pap import PapAuthenticator

    option = bytes(option)
    if option == AUTH_PAP:
        return PapAuthenticator(config, secrets, random_bytes=random_bytes)
    if option in _CHAP_ALGORITHMS:
        return ChapAuthenticator(digest_for(_CHAP_ALGORITHMS[option]), config, secrets, random_bytes=random_bytes)
    raise ValueError(f"unsupported Authentication-Protocol option value {option.hex()}")


def make_peer(option: bytes, config: AuthConfig, *, random_bytes: RandomBytes = os.urandom) -> AuthMethod:
    """The client side for the LCP Authentication-Protocol value we acknowledged.

    Raises :class:`ValueError` for an unsupported value, or a user name or
    password that cannot be sent (PAP fields hold at most 255 bytes).
    """
    from pypptp.ppp.chap import ChapPeer, digest_for
    from pypptp.ppp.pap import PapPeer

    option = bytes(option)
    if option == AUTH_PAP:
        return PapPeer(config, random_bytes=random_bytes)
    if option in _CHAP_ALGORITHMS:
        return ChapPeer(digest_for(_CHAP_ALGORITHMS[option]), config, random_bytes=random_bytes)
    raise ValueError(f"unsupported Authentication-Protocol option value {option.hex()}")
