"""An asyncio RADIUS client: Access-Request for PAP, CHAP-MD5, MS-CHAP and MS-CHAPv2, and accounting.

pppd's ``radius.so`` asks the servers of radiusclient.conf
(:class:`~pypptp.conf.radiusclient.RadiusConfig`) in turn; so does
:class:`RadiusClient`, on its own UDP sockets (the event loop's datagram
endpoints, never a blocking call), with pyrad (:mod:`pyrad.packet`) as the
codec only.

**Requests.**  An Access-Request carries what pppd's plugin sends: User-Name as
the peer sent it, the method's attributes (PAP: User-Password; CHAP-MD5:
CHAP-Password and CHAP-Challenge; MS-CHAP: MS-CHAP-Challenge and
MS-CHAP-Response; MS-CHAPv2: MS-CHAP-Challenge and MS-CHAP2-Response, RFC 2548),
NAS-Identifier and/or NAS-IP-Address (without either configured, the source
address of the socket), NAS-Port (the pppN unit), NAS-Port-Type Virtual,
Service-Type Framed-User, Framed-Protocol PPP, Calling-Station-Id,
Called-Station-Id, and whatever the caller adds.  Every request carries a
Message-Authenticator (RFC 3579), first, as the BlastRADIUS advisory asks.

**Answers.**  A datagram is accepted only when its Identifier is outstanding on
that socket, its Response Authenticator is right (RFC 2865 section 3), it has no
Proxy-State (we send none: one in the answer is the BlastRADIUS forgery's
signature) and, for an Access-Accept, -Reject or -Challenge, it carries a valid
Message-Authenticator (CVE-2024-3596: without one an Access-Reject can be turned
into an Access-Accept).  Anything else is dropped and logged (rate-limited), and
the request keeps waiting: a forged datagram can delay an answer, never decide it.

**Retries and failover** as radiusclient does them: a request is sent to a
server ``radius_retries`` times, ``radius_timeout`` seconds apart (the same
datagram each time for an Access-Request, so that a late answer to an earlier
copy still counts; an Accounting-Request gets a new Identifier and its
Acct-Delay-Time updated), then the next server is asked.  A server that did not
answer is *dead* for ``radius_deadtime`` seconds: it is asked only after the
live ones.  When no server answers, the result says so (:attr:`RadiusReply.answered`
is False) and one error line is logged: an outage is an answer, never an
exception or a hang.

**Bounds.**  Identifiers are per socket (256 each); a server gets up to
:data:`MAX_SOCKETS_PER_SERVER` sockets, and at most :data:`MAX_OUTSTANDING`
requests of a kind (authentication, accounting) are outstanding at once; up to
:data:`MAX_QUEUED` more wait for a slot, and beyond that a request fails at once
(logged).  A released Identifier goes to the back of its socket's queue, so it is
reused only after the 255 others.

Logging: the ``pypptpd.radius`` logger.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import hashlib
import hmac
import ipaddress
import logging
import os
import random
import struct
import time
import typing
from collections.abc import Callable, Iterable

from pyrad import packet as rp

from pypptp.aaa.dictionary import load_dictionary
from pypptp.aaa.logbudget import LogBudget
from pypptp.conf.radiusclient import RadiusConfig, RadiusServer
from pypptp.ppp.auth import ExternalVerdict, MsChapKeys, printable, wire_text

__all__ = [
    "MAX_OUTSTANDING",
    "MAX_QUEUED",
    "MAX_SOCKETS_PER_SERVER",
    "AuthRequestLike",
    "RadiusClient",
    "RadiusReply",
    "decrypt_ms_chap_mppe_keys",
    "to_verdict",
]

logger = logging.getLogger("pypptpd.radius")

MAX_PACKET = 4096
"""RFC 2865 section 3: the largest RADIUS packet."""
MAX_SOCKETS_PER_SERVER = 4
MAX_OUTSTANDING = 256 * MAX_SOCKETS_PER_SERVER
"""Requests of one kind (authentication or accounting) on the wire at once."""
MAX_QUEUED = 1024
"""Requests of one kind waiting for an Identifier; more fail at once."""
LOG_BURST = 10
LOG_WINDOW = 60.0
"""At most :data:`LOG_BURST` dropped-datagram warnings per :data:`LOG_WINDOW` seconds; the rest are counted
(:class:`~pypptp.aaa.logbudget.LogBudget`)."""

METHODS = ("PAP", "CHAP-MD5", "MS-CHAP", "MS-CHAP-V2")
_MS = 311
_CODE_NAMES = {
    rp.AccessAccept: "Access-Accept",
    rp.AccessReject: "Access-Reject",
    rp.AccessChallenge: "Access-Challenge",
    rp.AccountingResponse: "Accounting-Response",
}
_ANSWERS = {
    rp.AccessRequest: (rp.AccessAccept, rp.AccessReject, rp.AccessChallenge),
    rp.AccountingRequest: (rp.AccountingResponse,),
}


class AuthRequestLike(typing.Protocol):
    """What the PPP core hands to an external verifier (``pypptp.ppp.auth.AuthRequest``)."""

    @property
    def method(self) -> str: ...  # "PAP", "CHAP-MD5", "MS-CHAP" or "MS-CHAP-V2"
    @property
    def name(self) -> bytes: ...
    @property
    def identifier(self) -> int: ...  # the CHAP Identifier
    @property
    def challenge(self) -> bytes: ...  # ours: 16 bytes (CHAP-MD5, v2), 8 (v1), b"" (PAP)
    @property
    def response(self) -> bytes: ...  # the CHAP Response Value as on the wire; PAP: the password


@dataclasses.dataclass(frozen=True)
class RadiusReply:
    """What a RADIUS server said (or that none did), in plain fields."""

    accepted: bool
    answered: bool
    """False: no server answered (an outage), or the request was never sent (:attr:`reason` says why)."""
    reason: str
    """For the log: who answered what, or why nobody did."""
    server: str = ""
    """``host:port`` of the server that answered."""
    reply_message: str | None = None
    """Reply-Message (several joined by newlines)."""
    ms_chap_error: str | None = None
    """MS-CHAP-Error's text after its Ident byte: ``E=691 R=0 C=... V=3 M=...``."""
    ms_chap2_success: str | None = None
    """MS-CHAP2-Success's text after its Ident byte: ``S=<40 hex>``."""
    mppe_send_key: bytes | None = None
    """MS-MPPE-Send-Key, decrypted, without its length byte and padding: the key the NAS sends with."""
    mppe_recv_key: bytes | None = None
    ms_chap_mppe_keys: bytes | None = None
    """MS-CHAP-MPPE-Keys (MS-CHAPv1), decrypted: 8 bytes of LAN Manager key, 16 of NT key (MD4(NT hash))."""
    mppe_policy: int | None = None
    """MS-MPPE-Encryption-Policy: 1 allowed, 2 required."""
    mppe_types: int | None = None
    """MS-MPPE-Encryption-Types: bit 2 (0x2) 40-bit keys, bit 4 (0x4) 128-bit keys."""
    framed_ip_address: ipaddress.IPv4Address | None = None
    framed_pool: str | None = None
    session_timeout: int | None = None
    idle_timeout: int | None = None
    acct_interim_interval: int | None = None
    framed_mtu: int | None = None
    classes: tuple[bytes, ...] = ()
    """Class attributes, to be echoed in accounting (RFC 2865 section 5.25)."""
    problems: tuple[str, ...] = ()
    """Attributes of the answer that could not be read (dropped; the rest of the answer stands)."""


# -- helpers --------------------------------------------------------------------------------------


def _md5(*parts: bytes) -> bytes:
    return hashlib.md5(b"".join(parts)).digest()


def decrypt_ms_chap_mppe_keys(value: bytes, secret: bytes, request_authenticator: bytes) -> bytes | None:
    """MS-CHAP-MPPE-Keys (RFC 2548 section 2.4.1): hidden like User-Password (RFC 2865 section 5.2) with the
    Request Authenticator; 32 bytes on the wire, of which the first 24 are the keys.  None when malformed."""
    if len(value) != 32:
        return None
    plain = b""
    last = request_authenticator
    for offset in range(0, len(value), 16):
        block = value[offset : offset + 16]
        plain += bytes(a ^ b for a, b in zip(block, _md5(secret, last), strict=True))
        last = block
    return plain[:24]


def _attributes(raw: bytes) -> list[tuple[int, int, int]] | None:
    """(type, offset of the value, its length) of each attribute of a packet; None if they do not add up."""
    found = []
    offset = 20
    while offset < len(raw):
        if offset + 2 > len(raw):
            return None
        kind, length = raw[offset], raw[offset + 1]
        if length < 2 or offset + length > len(raw):
            return None
        found.append((kind, offset + 2, length - 2))
        offset += length
    return found


def verify_answer(raw: bytes, request_code: int, request_authenticator: bytes, secret: bytes) -> str | None:
    """Why the datagram ``raw`` is no valid answer to the request, or None when it is one (see the module
    docstring).  ``raw`` is cut to its Length field first."""
    if len(raw) < 20:
        return f"{len(raw)} bytes, shorter than a RADIUS header"
    code, _, length = struct.unpack("!BBH", raw[:4])
    if not 20 <= length <= min(len(raw), MAX_PACKET):
        return f"Length field {length} for {len(raw)} bytes"
    raw = raw[:length]
    if code not in _ANSWERS[request_code]:
        return f"code {code} is no answer to code {request_code}"
    if not hmac.compare_digest(raw[4:20], _md5(raw[:4], request_authenticator, raw[20:], secret)):
        return "wrong Response Authenticator (wrong shared secret, or forged)"
    attributes = _attributes(raw)
    if attributes is None:
        return "attribute lengths do not add up"
    if any(kind == 33 for kind, _, _ in attributes):
        return "Proxy-State in the answer, though the request had none (BlastRADIUS forgery?)"
    authenticators = [(offset, size) for kind, offset, size in attributes if kind == 80]
    if not authenticators:
        if request_code == rp.AccessRequest:
            return "no Message-Authenticator (required on Access-* answers: BlastRADIUS, CVE-2024-3596)"
        return None
    if len(authenticators) > 1 or authenticators[0][1] != 16:
        return "malformed Message-Authenticator"
    offset, _ = authenticators[0]
    zeroed = raw[:4] + request_authenticator + raw[20:offset] + bytes(16) + raw[offset + 16 :]
    if not hmac.compare_digest(raw[offset : offset + 16], hmac.new(secret, zeroed, "md5").digest()):
        return "wrong Message-Authenticator (forged?)"
    return None


# -- sockets --------------------------------------------------------------------------------------


@dataclasses.dataclass
class _Pending:
    code: int
    authenticator: bytes
    secret: bytes
    answer: asyncio.Future[bytes]


class _Channel(asyncio.DatagramProtocol):
    """One connected UDP socket to one server and its 256 Identifiers."""

    def __init__(self, server: RadiusServer, warn: Callable[..., None]) -> None:
        self.server = server
        self._warn = warn
        """A dropped datagram's warning, within the client's :class:`~pypptp.aaa.logbudget.LogBudget`."""
        ids = list(range(256))
        random.SystemRandom().shuffle(ids)
        self.free: collections.deque[int] = collections.deque(ids)
        self.pending: dict[int, _Pending] = {}
        self.transport: asyncio.DatagramTransport | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = typing.cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[typing.Any, ...]) -> None:
        if len(data) < 20:
            self._warn("RADIUS: %s: dropped a datagram of %d bytes", self.server, len(data))
            return
        pending = self.pending.get(data[1])
        if pending is None or pending.answer.done():
            self._warn("RADIUS: %s: dropped an answer with Identifier %d: none outstanding", self.server, data[1])
            return
        problem = verify_answer(data, pending.code, pending.authenticator, pending.secret)
        if problem is not None:
            self._warn("RADIUS: %s: dropped an answer (Identifier %d): %s", self.server, data[1], problem)
            return
        pending.answer.set_result(data[: struct.unpack("!H", data[2:4])[0]])

    def error_received(self, exc: Exception) -> None:
        logger.debug("RADIUS: %s: %s", self.server, exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        for pending in self.pending.values():
            pending.answer.cancel()  # the request moves on to the next server

    @property
    def local_address(self) -> str | None:
        if self.transport is None:
            return None
        sockname = self.transport.get_extra_info("sockname")
        return str(sockname[0]) if sockname else None

    def send(self, data: bytes) -> None:
        if self.transport is not None and not self.closed:
            self.transport.sendto(data)


class _ServerState:
    def __init__(self, server: RadiusServer) -> None:
        self.server = server
        self.channels: list[_Channel] = []
        self.dead_until = 0.0
        self.opening: asyncio.Lock = asyncio.Lock()


# -- the client -----------------------------------------------------------------------------------


class RadiusClient:
    """A RADIUS client for one :class:`~pypptp.conf.radiusclient.RadiusConfig` (see the module docstring).

    Use it from one event loop; :meth:`close` releases its sockets."""

    def __init__(
        self,
        config: RadiusConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_outstanding: int = MAX_OUTSTANDING,
        max_queued: int = MAX_QUEUED,
    ) -> None:
        self.config = config
        self.dictionary = load_dictionary()
        self._clock = clock
        self._auth = [_ServerState(server) for server in config.auth_servers]
        self._acct = [_ServerState(server) for server in config.acct_servers]
        self._slots = {
            rp.AccessRequest: asyncio.Semaphore(max_outstanding),
            rp.AccountingRequest: asyncio.Semaphore(max_outstanding),
        }
        self._waiting = {rp.AccessRequest: 0, rp.AccountingRequest: 0}
        self._max_queued = max_queued
        self._log = LogBudget(logger, LOG_BURST, LOG_WINDOW)
        self._closed = False

    @property
    def accounting(self) -> bool:
        """Whether accounting servers are configured."""
        return bool(self._acct)

    async def close(self) -> None:
        """Close every socket; requests still waiting end as unanswered."""
        self._closed = True
        for state in (*self._auth, *self._acct):
            for channel in state.channels:
                if channel.transport is not None:
                    channel.transport.close()
            state.channels.clear()

    # -- authentication --------------------------------------------------------------------------

    async def authenticate(
        self,
        request: AuthRequestLike,
        *,
        nas_port: int | None = None,
        calling_station_id: str | None = None,
        called_station_id: str | None = None,
        attributes: Iterable[tuple[str, object]] = (),
    ) -> RadiusReply:
        """Ask the servers about ``request``; never raises for a RADIUS problem (see :class:`RadiusReply`)."""
        method = request.method
        problem = _request_problem(request)
        if problem is not None:
            logger.warning("RADIUS: %s request for %s not sent: %s", method, _user(request), problem)
            return RadiusReply(False, False, f"not sent: {problem}")
        if not self._auth:
            return RadiusReply(False, False, "no authserver configured")
        extra = list(attributes)
        given = {name for name, _ in extra}
        common: list[tuple[str, object]] = [
            ("User-Name", bytes(request.name)),
            ("Service-Type", "Framed-User"),
            ("Framed-Protocol", "PPP"),
            ("NAS-Port-Type", "Virtual"),
        ]
        if nas_port is not None:
            common.append(("NAS-Port", nas_port))
        if calling_station_id is not None:
            common.append(("Calling-Station-Id", calling_station_id))
        if called_station_id is not None:
            common.append(("Called-Station-Id", called_station_id))

        def build(server: RadiusServer, channel: _Channel, identifier: int) -> tuple[bytes, rp.Packet]:
            packet = rp.AuthPacket(
                code=rp.AccessRequest,
                id=identifier,
                secret=server.secret,
                authenticator=os.urandom(16),
                dict=self.dictionary,
            )
            packet.add_message_authenticator()
            for name, value in common:
                self._add(packet, name, value)
            self._add_nas(packet, channel, given)
            self._add_method(packet, request)
            for name, value in extra:
                self._add(packet, name, value)
            return packet.RequestPacket(), packet

        result = await self._exchange(rp.AccessRequest, self._auth, build, f"user {_user(request)}")
        if isinstance(result, str):
            return RadiusReply(False, False, result)
        raw, packet, server = result
        try:
            return self._read_access_answer(raw, packet, server)
        except (ValueError, KeyError, TypeError, rp.PacketError, struct.error) as exc:
            logger.warning("RADIUS: %s: cannot decode its answer: %s", server, exc)
            return RadiusReply(False, True, f"undecodable answer from {server}: {exc}", str(server))

    def _add_method(self, packet: rp.Packet, request: AuthRequestLike) -> None:
        method, response = request.method, request.response
        if method == "PAP":
            packet[2] = [packet.PwCrypt(bytes(response))]  # User-Password
        elif method == "CHAP-MD5":
            packet[3] = [bytes((request.identifier,)) + response]  # CHAP-Password
            packet[60] = [bytes(request.challenge)]  # CHAP-Challenge
        elif method == "MS-CHAP":
            lm, nt, flags = response[:24], response[24:48], response[48]
            packet[(_MS, 11)] = [bytes(request.challenge)]  # MS-CHAP-Challenge
            packet[(_MS, 1)] = [bytes((request.identifier, flags)) + lm + nt]  # MS-CHAP-Response
        else:  # MS-CHAP-V2
            peer_challenge, reserved, nt, flags = response[:16], response[16:24], response[24:48], response[48]
            packet[(_MS, 11)] = [bytes(request.challenge)]
            packet[(_MS, 25)] = [bytes((request.identifier, flags)) + peer_challenge + reserved + nt]

    def _read_access_answer(self, raw: bytes, request: rp.Packet, server: RadiusServer) -> RadiusReply:
        answer = rp.AuthPacket(packet=raw, secret=server.secret, dict=self.dictionary)
        answer.request_authenticator = request.authenticator
        problems: list[str] = []

        def get(name: str) -> list[typing.Any]:
            try:
                return list(answer.get(name, []))
            except (ValueError, KeyError, rp.PacketError, struct.error) as exc:
                problems.append(f"{name}: {exc}")
                return []

        def one(name: str) -> typing.Any:
            values = get(name)
            return values[0] if values else None

        def text(value: object) -> str:
            return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)

        def integer(name: str) -> int | None:
            """The first value as a number (pyrad would give a named value's name instead)."""
            values = answer.get(self._key(name)) or []
            if values and len(values[0]) != 4:
                problems.append(f"{name}: {len(values[0])} bytes, 4 expected")
                return None
            return int.from_bytes(values[0], "big") if values else None

        def after_ident(name: str) -> str | None:
            value = one(name)
            if value is None:
                return None
            raw_value = value.encode("utf-8") if isinstance(value, str) else bytes(value)
            return raw_value[1:].decode("utf-8", "replace") if raw_value else ""

        keys: dict[str, bytes | None] = {}
        for name, field in (("MS-MPPE-Send-Key", "mppe_send_key"), ("MS-MPPE-Recv-Key", "mppe_recv_key")):
            key = one(name)
            if key is not None and len(key) != 16:
                problems.append(f"{name}: a {len(key)}-byte key, 16 expected")
                key = None
            keys[field] = key
        chap_keys = None
        encrypted = answer.get((_MS, 12))
        if encrypted:
            chap_keys = decrypt_ms_chap_mppe_keys(encrypted[0], server.secret, request.authenticator)
            if chap_keys is None:
                problems.append(f"MS-CHAP-MPPE-Keys: {len(encrypted[0])} bytes, 32 expected")
        address = one("Framed-IP-Address")
        messages = [text(message) for message in get("Reply-Message")]
        code = answer.code
        reply = RadiusReply(
            accepted=code == rp.AccessAccept,
            answered=True,
            reason=f"{_CODE_NAMES.get(code, code)} from {server}",
            server=str(server),
            reply_message="\n".join(messages) if messages else None,
            ms_chap_error=after_ident("MS-CHAP-Error"),
            ms_chap2_success=after_ident("MS-CHAP2-Success"),
            mppe_send_key=keys["mppe_send_key"],
            mppe_recv_key=keys["mppe_recv_key"],
            ms_chap_mppe_keys=chap_keys,
            mppe_policy=integer("MS-MPPE-Encryption-Policy"),
            mppe_types=integer("MS-MPPE-Encryption-Types"),
            framed_ip_address=ipaddress.IPv4Address(address) if address is not None else None,
            framed_pool=text(one("Framed-Pool")) if one("Framed-Pool") is not None else None,
            session_timeout=integer("Session-Timeout"),
            idle_timeout=integer("Idle-Timeout"),
            acct_interim_interval=integer("Acct-Interim-Interval"),
            framed_mtu=integer("Framed-MTU"),
            classes=tuple(bytes(value) for value in answer.get(25, [])),
            problems=tuple(problems),
        )
        if code == rp.AccessChallenge:
            reply = dataclasses.replace(
                reply, reason=f"Access-Challenge from {server}: not supported, taken as a reject"
            )
        for problem in problems:
            logger.warning("RADIUS: %s: %s", server, problem)
        return reply

    # -- accounting ------------------------------------------------------------------------------

    async def account(self, attributes: Iterable[tuple[str, object]]) -> bool:
        """Send one Accounting-Request with ``attributes`` (Acct-Status-Type, Acct-Session-Id, ...; we add
        NAS-Identifier/NAS-IP-Address and Acct-Delay-Time); True when a server acknowledged it.  A record no
        server took is logged as lost."""
        record = list(attributes)
        if not self._acct:
            return False
        fields = dict(record)
        what = f"{fields.get('Acct-Status-Type', '?')} record of session {fields.get('Acct-Session-Id', '?')}"
        delay = int(typing.cast(int, fields.get("Acct-Delay-Time", 0)))
        record = [(name, value) for name, value in record if name != "Acct-Delay-Time"]
        given = {name for name, _ in record}
        first = self._clock()

        def build(server: RadiusServer, channel: _Channel, identifier: int) -> tuple[bytes, rp.Packet]:
            packet = rp.AcctPacket(code=rp.AccountingRequest, id=identifier, secret=server.secret, dict=self.dictionary)
            packet.add_message_authenticator()
            for name, value in record:
                self._add(packet, name, value)
            self._add_nas(packet, channel, given)
            self._add(packet, "Acct-Delay-Time", delay + int(self._clock() - first))
            return packet.RequestPacket(), packet

        result = await self._exchange(rp.AccountingRequest, self._acct, build, what)
        if isinstance(result, str):
            logger.error("RADIUS: accounting %s lost: %s", what, result)
            return False
        return True

    # -- the exchange ----------------------------------------------------------------------------

    async def _exchange(
        self,
        code: int,
        servers: list[_ServerState],
        build: Callable[[RadiusServer, _Channel, int], tuple[bytes, rp.Packet]],
        what: str,
    ) -> tuple[bytes, rp.Packet, RadiusServer] | str:
        """Send to the servers in turn until one answers: (answer, request, server), or why none did."""
        if self._closed:
            return "the RADIUS client is closed"
        slots = self._slots[code]
        if slots.locked() and self._waiting[code] >= self._max_queued:
            failure = f"{self._max_queued} requests already wait for an answer"
            logger.error("RADIUS: %s not sent: %s", what, failure)
            return failure
        self._waiting[code] += 1
        try:
            await slots.acquire()
        finally:
            self._waiting[code] -= 1
        try:
            now = self._clock()
            order = [state for state in servers if state.dead_until <= now]
            order += sorted((state for state in servers if state.dead_until > now), key=lambda s: s.dead_until)
            tried = []
            for state in order:
                if self._closed:
                    return "the RADIUS client is closed"
                try:
                    result = await self._ask(code, state, build)
                except _EncodeError as exc:
                    logger.error("RADIUS: %s not sent: cannot encode it: %s", what, exc)
                    return f"cannot encode the request: {exc}"
                except OSError as exc:
                    logger.warning("RADIUS: %s: cannot send: %s", state.server, exc)
                    result = None
                if result is not None:
                    if state.dead_until:
                        logger.info("RADIUS: %s answers again", state.server)
                    state.dead_until = 0.0
                    return result[0], result[1], state.server
                tried.append(str(state.server))
                if self.config.deadtime > 0:
                    state.dead_until = self._clock() + self.config.deadtime
            failure = (
                f"no answer from {', '.join(tried)} ({self.config.retries} tries each, {self.config.timeout:g} s apart)"
            )
            if code == rp.AccessRequest:
                logger.error("RADIUS: %s: %s", what, failure)
            return failure
        finally:
            slots.release()

    async def _ask(
        self,
        code: int,
        state: _ServerState,
        build: Callable[[RadiusServer, _Channel, int], tuple[bytes, rp.Packet]],
    ) -> tuple[bytes, rp.Packet] | None:
        """Up to ``retries`` sends to one server; its answer, or None."""
        loop = asyncio.get_running_loop()
        server = state.server
        channel = identifier = None
        pending: _Pending | None = None
        packet: rp.Packet | None = None
        data = b""
        try:
            for attempt in range(self.config.retries):
                if pending is None or code == rp.AccountingRequest:
                    # an Accounting-Request changes (Acct-Delay-Time), so it needs a new Identifier (RFC 5080)
                    if channel is not None and identifier is not None:
                        _release(channel, identifier)
                    channel, identifier = await self._identifier(state)
                    try:
                        data, packet = build(server, channel, identifier)
                    except (ValueError, KeyError, TypeError, struct.error) as exc:
                        raise _EncodeError(exc) from None
                    authenticator = data[4:20]
                    pending = _Pending(code, authenticator, server.secret, loop.create_future())
                    channel.pending[identifier] = pending
                assert channel is not None and pending is not None and packet is not None
                channel.send(data)
                if attempt:
                    logger.debug(
                        "RADIUS: %s: no answer, sent again (%d of %d)", server, attempt + 1, self.config.retries
                    )
                try:
                    answer = await asyncio.wait_for(asyncio.shield(pending.answer), self.config.timeout)
                except TimeoutError:
                    continue
                except asyncio.CancelledError:
                    task = asyncio.current_task()
                    if pending.answer.cancelled() and not (task is not None and task.cancelling()):
                        return None  # the socket closed under us
                    raise
                return answer, packet
            logger.warning("RADIUS: no answer from %s after %d tries", server, self.config.retries)
            return None
        finally:
            if channel is not None and identifier is not None:
                _release(channel, identifier)

    async def _identifier(self, state: _ServerState) -> tuple[_Channel, int]:
        """A free Identifier on a socket to ``state``'s server, opening a socket when all are busy."""
        if self._closed:
            raise OSError("the RADIUS client is closed")
        for channel in state.channels:
            if channel.free and not channel.closed:
                return channel, channel.free.popleft()
        async with state.opening:
            state.channels = [channel for channel in state.channels if not channel.closed]
            for channel in state.channels:
                if channel.free:
                    return channel, channel.free.popleft()
            if len(state.channels) >= MAX_SOCKETS_PER_SERVER:  # cannot happen: the slots are fewer
                raise OSError(f"all {MAX_SOCKETS_PER_SERVER * 256} Identifiers are in use")
            loop = asyncio.get_running_loop()
            server = state.server
            local = (self.config.bindaddr, 0) if self.config.bindaddr else None
            _, channel = await loop.create_datagram_endpoint(
                lambda: _Channel(server, self._warn_dropped), remote_addr=(server.host, server.port), local_addr=local
            )
            state.channels.append(channel)
            return channel, channel.free.popleft()

    def _warn_dropped(self, message: str, *args: object) -> None:
        self._log.warning(self._clock(), message, *args)

    # -- attributes ------------------------------------------------------------------------------

    def _add(self, packet: rp.Packet, name: str, value: object) -> None:
        """Add one attribute; octets go in as they are (pyrad would read a value starting ``0x`` as hex)."""
        attribute = self.dictionary[name]
        if attribute.type == "octets" and isinstance(value, bytes | bytearray) and not attribute.encrypt:
            packet.setdefault(self._key(name), []).append(bytes(value))
        else:
            packet.AddAttribute(name, value)

    def _key(self, name: str) -> int | tuple[int, int]:
        """The packet key of attribute ``name``: its code, or (vendor, code) for a vendor's attribute."""
        attribute = self.dictionary[name]
        vendor = self.dictionary.vendors.GetForward(attribute.vendor) if attribute.vendor else 0
        return (vendor, attribute.code) if vendor else attribute.code

    def _add_nas(self, packet: rp.Packet, channel: _Channel, given: set[str]) -> None:
        """NAS-Identifier and/or NAS-IP-Address: the configured ones, else the socket's source address;
        nothing when the caller's attributes (``given``: their names) identify the NAS already."""
        if given & {"NAS-Identifier", "NAS-IP-Address", "NAS-IPv6-Address"}:
            return
        if self.config.nas_identifier:
            self._add(packet, "NAS-Identifier", self.config.nas_identifier)
        address: str | ipaddress.IPv4Address | ipaddress.IPv6Address | None = self.config.nas_ip
        if address is None and not self.config.nas_identifier:
            address = channel.local_address
        if address is None:
            return
        parsed = ipaddress.ip_address(str(address).split("%")[0])
        if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is None:
            self._add(packet, "NAS-IPv6-Address", str(parsed))
        else:
            v4 = parsed.ipv4_mapped if isinstance(parsed, ipaddress.IPv6Address) else parsed
            self._add(packet, "NAS-IP-Address", str(v4))


def _user(request: AuthRequestLike) -> str:
    """The peer's name for a log line: quoted, escaped, clipped (it is the peer's text)."""
    return f'"{printable(wire_text(bytes(request.name)))}"'


class _EncodeError(Exception):
    """A request pyrad cannot encode (an attribute too long, a bad value): no server would take it."""


def _release(channel: _Channel, identifier: int) -> None:
    if channel.pending.pop(identifier, None) is not None:
        channel.free.append(identifier)


def _request_problem(request: AuthRequestLike) -> str | None:
    """Why ``request`` cannot be sent, or None."""
    method, challenge, response = request.method, request.challenge, request.response
    if method not in METHODS:
        return f"unknown method {method!r}"
    if not 1 <= len(request.name) <= 253:
        return f"a user name of {len(request.name)} bytes (1 to 253 fit in User-Name)"
    if method == "PAP":
        return None if len(response) <= 128 else f"a password of {len(response)} bytes (128 fit in User-Password)"
    if not 0 <= request.identifier <= 255:
        return f"CHAP Identifier {request.identifier}"
    if method == "CHAP-MD5":
        if len(response) != 16:
            return f"a CHAP-MD5 response of {len(response)} bytes, 16 expected"
        return None if 1 <= len(challenge) <= 253 else f"a challenge of {len(challenge)} bytes"
    expected = 8 if method == "MS-CHAP" else 16
    if len(challenge) != expected or len(response) != 49:
        return f"{method}: a {len(challenge)}-byte challenge, a {len(response)}-byte response ({expected}, 49 expected)"
    return None


# -- the core's verdict ---------------------------------------------------------------------------


def to_verdict(reply: RadiusReply, request: AuthRequestLike) -> ExternalVerdict:
    """``reply`` as the core's :class:`~pypptp.ppp.auth.ExternalVerdict`, whose ``grant`` is the whole answer.
    The message is what the server wants the peer told: MS-CHAP2-Success's ``S=...`` (required for an
    MS-CHAPv2 success: without it the client cannot check the server), MS-CHAP-Error's ``E=...`` (whose
    ``C=`` a retry answers), or Reply-Message for PAP and CHAP-MD5; empty otherwise, which the core reads as
    "the method's own".  Keys: MS-CHAP's MPPE material."""
    method = request.method
    ms_chap = method in ("MS-CHAP", "MS-CHAP-V2")
    if not reply.accepted:
        message = (reply.ms_chap_error if ms_chap else reply.reply_message) or ""
        reason = reply.reason
        if reply.reply_message and ms_chap:
            reason += f" ({reply.reply_message})"
        return ExternalVerdict(False, message.encode("utf-8", "replace"), reason, None, reply)
    keys = None
    if method == "MS-CHAP-V2":
        if reply.ms_chap2_success is None:
            reason = f"{reply.reason} without MS-CHAP2-Success: the client could not check the server"
            return ExternalVerdict(False, b"", reason, None, reply)
        message = reply.ms_chap2_success
        if reply.mppe_send_key is not None and reply.mppe_recv_key is not None:
            keys = MsChapKeys(
                version=2,
                password_hash=b"",
                password_hash_hash=b"",
                nt_response=bytes(request.response[24:48]),
                challenge=bytes(request.challenge),
                send_key=reply.mppe_send_key,
                recv_key=reply.mppe_recv_key,
            )
    elif method == "MS-CHAP":
        message = reply.reply_message or ""
        if reply.ms_chap_mppe_keys is not None:
            lm_key, nt_key = reply.ms_chap_mppe_keys[:8], reply.ms_chap_mppe_keys[8:24]
            keys = MsChapKeys(
                version=1,
                password_hash=b"",
                password_hash_hash=nt_key,
                nt_response=bytes(request.response[24:48]),
                challenge=bytes(request.challenge),
                lm_password_hash=lm_key if any(lm_key) else None,
            )
    else:
        message = reply.reply_message or ""
    return ExternalVerdict(True, message.encode("utf-8", "replace"), reply.reason, keys, reply)
