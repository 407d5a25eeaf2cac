"""RFC 5176 Dynamic Authorization server (DAE): Disconnect-Request and CoA-Request from a RADIUS server.

A RADIUS server (or an admin with ``radclient``) ends a user's session, or changes its
Session-Timeout, by sending a request to the NAS's port 3799.  :class:`DaeServer` is that listener on
its own asyncio datagram endpoint; the daemon gives it a :class:`DaeHandler` that finds and acts on
sessions.  Per request, in this order (every step bounded; nothing waits):

1. the source address picks the client and its secret (:class:`DaeClient`, longest prefix); an unknown
   source is dropped (RFC 5176 section 6.1), and logged, at most :data:`LOG_BURST` lines a minute;
2. a code other than Disconnect-Request (40) or CoA-Request (43), or a length outside 20..4096 or
   past the datagram, is dropped (section 2.3; octets past Length are padding);
3. a retransmission (same source address and port, Identifier and Request Authenticator within
   :attr:`DaeServer.duplicate_window` seconds) gets the answer already sent, and nothing is done again
   (section 2.3); the cache holds at most :attr:`DaeServer.max_cached` answers;
4. the Request Authenticator (MD5 over the packet with 16 zero octets in its place, then the secret:
   section 3.5, like an Accounting-Request) and the Message-Authenticator if present (section 3.4;
   required from a client configured so) are checked: a mismatch is dropped, as is an Event-Timestamp
   more than :attr:`DaeServer.event_window` seconds off our clock (section 6.3; 300 s by default);
5. every attribute is mandatory (section 2.3): NAS identification (NAS-IP-Address, NAS-Identifier,
   NAS-IPv6-Address) must name us (else 403), session identification (User-Name, Acct-Session-Id,
   Framed-IP-Address, NAS-Port, Calling-Station-Id) must be there (else 402) and match at least
   one session, all of its attributes together (else 503); a CoA-Request's one change we make is
   Session-Timeout (Service-Type Authorize-Only: 405; anything else: 401);
6. every matching session is disconnected, or gets the new Session-Timeout (a request applies to all the
   sessions it matches, section 3), and the answer is an ACK; a NAK carries an Error-Cause
   (:class:`ErrorCause`).  Answers echo Proxy-State and State (sections 3.1, 3.3) and always carry a
   Message-Authenticator.

Log lines go to the ``pypptpd.dae`` logger.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import enum
import logging
import time
from collections.abc import Callable, Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from typing import Any, Protocol

from pyrad.dictionary import Dictionary
from pyrad.packet import CoAPacket

from pypptp.aaa.accounting import Nas
from pypptp.aaa.dictionary import load_dictionary
from pypptp.aaa.logbudget import LogBudget

__all__ = [
    "DAE_PORT",
    "DISCONNECT_REASON",
    "LOG_BURST",
    "DaeClient",
    "DaeHandler",
    "DaeServer",
    "ErrorCause",
    "SessionIdentification",
]

log = logging.getLogger("pypptpd.dae")

DAE_PORT = 3799
"""RFC 5176 section 3.1's port."""
DISCONNECT_REASON = "RADIUS Disconnect-Request"
"""The end reason the daemon gives a session a Disconnect-Request ends (its Stop says Admin-Reset)."""
LOG_BURST = 10
"""Lines a minute about dropped packets (unknown source, bad authenticator...): a flood of them costs
the log at most this many lines and one count of the rest."""
MAX_LENGTH = 4096  # RFC 2865 section 3

DISCONNECT_REQUEST, CoA_REQUEST = 40, 43
_NAMES = {40: "Disconnect-Request", 41: "Disconnect-ACK", 42: "Disconnect-NAK", 43: "CoA-Request", 44: "CoA-ACK"}
_NAMES[45] = "CoA-NAK"

# attribute codes (RFC 2865, 2866, 2869, 3162, 5176)
USER_NAME, NAS_IP_ADDRESS, NAS_PORT, SERVICE_TYPE, FRAMED_IP_ADDRESS = 1, 4, 5, 6, 8
STATE, SESSION_TIMEOUT, CALLING_STATION_ID, NAS_IDENTIFIER, PROXY_STATE = 24, 27, 31, 32, 33
ACCT_SESSION_ID, EVENT_TIMESTAMP, MESSAGE_AUTHENTICATOR, NAS_IPV6_ADDRESS = 44, 55, 80, 95
AUTHORIZE_ONLY = 17
_IDENTIFICATION = {USER_NAME: "User-Name", ACCT_SESSION_ID: "Acct-Session-Id", FRAMED_IP_ADDRESS: "Framed-IP-Address"}
_IDENTIFICATION |= {NAS_PORT: "NAS-Port", CALLING_STATION_ID: "Calling-Station-Id"}
_NAS_IDENTIFICATION = {NAS_IP_ADDRESS, NAS_IDENTIFIER, NAS_IPV6_ADDRESS}
_EVERY_REQUEST = {MESSAGE_AUTHENTICATOR, EVENT_TIMESTAMP, PROXY_STATE, STATE}


class ErrorCause(enum.IntEnum):
    """Error-Cause values a NAK carries (RFC 5176 section 3.5)."""

    UNSUPPORTED_ATTRIBUTE = 401
    MISSING_ATTRIBUTE = 402
    NAS_IDENTIFICATION_MISMATCH = 403
    INVALID_REQUEST = 404
    UNSUPPORTED_SERVICE = 405
    INVALID_ATTRIBUTE_VALUE = 407
    SESSION_CONTEXT_NOT_FOUND = 503
    RESOURCES_UNAVAILABLE = 506

    @property
    def label(self) -> str:
        """The value's name as FreeRADIUS's dictionary (and radclient's output) gives it."""
        return _CAUSE_LABELS[self]


_CAUSE_LABELS = {
    ErrorCause.UNSUPPORTED_ATTRIBUTE: "Unsupported-Attribute",
    ErrorCause.MISSING_ATTRIBUTE: "Missing-Attribute",
    ErrorCause.NAS_IDENTIFICATION_MISMATCH: "NAS-Identification-Mismatch",
    ErrorCause.INVALID_REQUEST: "Invalid-Request",
    ErrorCause.UNSUPPORTED_SERVICE: "Unsupported-Service",
    ErrorCause.INVALID_ATTRIBUTE_VALUE: "Invalid-Attribute-Value",
    ErrorCause.SESSION_CONTEXT_NOT_FOUND: "Session-Context-Not-Found",
    ErrorCause.RESOURCES_UNAVAILABLE: "Resources-Unavailable",
}


@dataclasses.dataclass(frozen=True)
class DaeClient:
    """A Dynamic Authorization Client we take requests from: its address or network and shared secret."""

    network: IPv4Network | IPv6Network
    secret: bytes
    require_message_authenticator: bool = False
    """Drop its requests that have no Message-Authenticator (the BlastRADIUS-era hardening)."""

    @classmethod
    def parse(cls, address: str, secret: str | bytes, require_message_authenticator: bool = False) -> DaeClient:
        """``address`` an address or a network (``192.0.2.10``, ``192.0.2.0/24``); raises ValueError."""
        secret = secret.encode() if isinstance(secret, str) else secret
        if not secret:
            raise ValueError(f"DAE client {address}: empty secret")
        return cls(ip_network(address, strict=False), secret, require_message_authenticator)


@dataclasses.dataclass(frozen=True)
class SessionIdentification:
    """The session identification attributes of a request; the ones present must all match a session."""

    user_name: str | None = None
    acct_session_id: str | None = None
    framed_ip: IPv4Address | None = None
    nas_port: int | None = None
    calling_station_id: str | None = None

    def matches(
        self,
        *,
        user_name: str,
        acct_session_id: str,
        framed_ip: IPv4Address | None,
        nas_port: int,
        calling_station_id: str,
    ) -> bool:
        """Whether a session with these values (as its accounting records give them) is identified."""
        return (
            (self.user_name is None or self.user_name == user_name)
            and (self.acct_session_id is None or self.acct_session_id == acct_session_id)
            and (self.framed_ip is None or self.framed_ip == framed_ip)
            and (self.nas_port is None or self.nas_port == nas_port)
            and (self.calling_station_id is None or self.calling_station_id == calling_station_id)
        )

    def __str__(self) -> str:
        parts = [
            f"{name}={value!r}" if isinstance(value, str) else f"{name}={value}"
            for name, value in (
                ("User-Name", self.user_name),
                ("Acct-Session-Id", self.acct_session_id),
                ("Framed-IP-Address", self.framed_ip),
                ("NAS-Port", self.nas_port),
                ("Calling-Station-Id", self.calling_station_id),
            )
            if value is not None
        ]
        return " ".join(parts)


class DaeHandler(Protocol):
    """What the daemon does for the DAE server.  Every call returns at once (no I/O, no waiting): the
    server calls them from the event loop, one request at a time, so nothing changes between ``find``
    and the actions on what it found."""

    def find(self, identification: SessionIdentification) -> Sequence[Any]:
        """The live sessions (authenticated, not ending) the identification matches (see
        :meth:`SessionIdentification.matches`), as references the other two calls take."""
        ...

    def disconnect(self, session: Any) -> None:
        """End the session as ``pypptpctl terminate`` does, with :data:`DISCONNECT_REASON`."""
        ...

    def set_session_timeout(self, session: Any, seconds: int) -> None:
        """The session's Session-Timeout is now ``seconds`` of service in all, counted from its start as
        the Access-Accept's is (RFC 2865 section 5.27), so a value already passed ends it now; 0 removes
        the limit."""
        ...


class _Nak(Exception):
    def __init__(self, cause: ErrorCause, why: str) -> None:
        super().__init__(why)
        self.cause = cause


@dataclasses.dataclass
class _Request:
    code: int
    identification: SessionIdentification
    session_timeout: int | None


class DaeServer(asyncio.DatagramProtocol):
    """The DAE listener (see the module's docstring)."""

    def __init__(
        self,
        clients: Sequence[DaeClient],
        handler: DaeHandler,
        nas: Nas | None,
        *,
        host: str = "0.0.0.0",
        port: int = DAE_PORT,
        event_window: float = 300.0,
        duplicate_window: float = 30.0,
        max_cached: int = 1024,
        dictionary: Dictionary | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``nas``: how we name ourselves (what NAS identification attributes must say; None: any of
        them is a mismatch).  ``clock``: wall-clock seconds, for Event-Timestamp and the cache."""
        self.clients = sorted(clients, key=lambda c: c.network.prefixlen, reverse=True)  # longest prefix first
        self.handler = handler
        self.nas = nas
        self.host, self.port = host, port
        self.event_window = event_window
        self.duplicate_window = duplicate_window
        self.max_cached = max_cached
        self.dictionary = dictionary or load_dictionary()
        self.clock = clock
        self.transport: asyncio.DatagramTransport | None = None
        self._answers: collections.OrderedDict[tuple[str, int, int, bytes], tuple[float, bytes]] = (
            collections.OrderedDict()
        )
        self._drops = LogBudget(log, LOG_BURST)
        self.dropped = 0
        """Requests dropped without an answer (unknown source, bad authenticator, stale, malformed)."""
        self.duplicates = 0
        """Retransmissions answered from the cache."""

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        """Bind the UDP socket (raises OSError if the address is taken)."""
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(lambda: self, local_addr=(self.host, self.port))
        log.info("DAE: listening on %s", self._where(self.address))

    @property
    def address(self) -> tuple[str, int]:
        """The bound (host, port): the port chosen when 0 was asked for."""
        assert self.transport is not None, "not started"
        host, port = self.transport.get_extra_info("sockname")[:2]
        return host, port

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
            self.transport = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a datagram endpoint's transport

    def error_received(self, exc: Exception) -> None:
        log.debug("DAE: socket error: %s", exc)  # an ICMP error for an answer sent: nothing to do

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        try:
            answer = self.handle(data, addr)
        except Exception:  # a bug must cost this request only
            log.exception("DAE: internal error on a request from %s; dropped", self._where(addr))
            return
        if answer is not None and self.transport is not None:
            self.transport.sendto(answer, addr)

    # -- one request -------------------------------------------------------------------------

    def handle(self, data: bytes, addr: tuple[Any, ...]) -> bytes | None:
        """The answer to one datagram from ``addr``, or None to drop it."""
        now = self.clock()
        source = ip_address(addr[0])
        if isinstance(source, IPv6Address) and source.ipv4_mapped is not None:
            source = source.ipv4_mapped
        client = next((c for c in self.clients if source in c.network), None)
        where = self._where(addr)
        if client is None:
            self._drop(now, "DAE: request from %s, which is not a configured client: dropped", where)
            return None
        if len(data) < 20:
            self._drop(now, "DAE: %d-octet datagram from %s: dropped", len(data), where)
            return None
        code, identifier, length = data[0], data[1], int.from_bytes(data[2:4], "big")
        if code not in (DISCONNECT_REQUEST, CoA_REQUEST):
            self._drop(now, "DAE: code %d from %s is not a Disconnect- or CoA-Request: dropped", code, where)
            return None
        if not 20 <= length <= min(len(data), MAX_LENGTH):
            self._drop(now, "DAE: Length %d in a %d-octet datagram from %s: dropped", length, len(data), where)
            return None
        data = data[:length]
        key = (str(source), addr[1], identifier, data[4:20])
        answer = self._cached(key, now)
        if answer is not None:
            self.duplicates += 1
            log.info("DAE: %s id %d from %s again: the same answer", _NAMES[code], identifier, where)
            return answer
        try:
            request = CoAPacket(secret=client.secret, dict=self.dictionary, packet=data)
        except Exception as exc:
            self._drop(now, "DAE: malformed %s from %s (%s): dropped", _NAMES[code], where, exc)
            return None
        if not request.VerifyCoARequest():
            self._drop(now, "DAE: bad Request Authenticator from %s (wrong secret?): dropped", where)
            return None
        raw: dict[Any, list[bytes]] = dict(collections.OrderedDict.items(request))
        authenticators = raw.get(MESSAGE_AUTHENTICATOR, [])
        if len(authenticators) > 1 or (authenticators and not request.verify_message_authenticator()):
            self._drop(now, "DAE: bad Message-Authenticator from %s: dropped", where)
            return None
        if not authenticators and client.require_message_authenticator:
            self._drop(now, "DAE: no Message-Authenticator from %s, which must send one: dropped", where)
            return None
        stamps = raw.get(EVENT_TIMESTAMP, [])
        if stamps and len(stamps[0]) == 4 and abs(int.from_bytes(stamps[0], "big") - now) > self.event_window:
            stamp = int.from_bytes(stamps[0], "big")
            self._drop(now, "DAE: Event-Timestamp %+d s off our clock from %s: dropped", stamp - now, where)
            return None
        answer = self._answer(request, raw, code, where)
        self._cache(key, now, answer)
        return answer

    def _answer(self, request: CoAPacket, raw: dict[Any, list[bytes]], code: int, where: str) -> bytes:
        what = f"{_NAMES[code]} id {request.id} from {where}"
        try:
            parsed = self._parse(raw, code)
            what += f" ({parsed.identification})"
            sessions = self._find(parsed.identification)
            self._act(parsed, sessions)
        except _Nak as nak:
            log.info("DAE: %s: %s: %s %s (%d)", what, nak, _NAMES[code + 2], nak.cause.label, nak.cause)
            return self._reply(request, raw, code + 2, nak.cause)
        if parsed.session_timeout is None:
            log.info("DAE: %s: %d session(s) ending: %s", what, len(sessions), _NAMES[code + 1])
        else:
            done = f"Session-Timeout {parsed.session_timeout} s for {len(sessions)} session(s)"
            log.info("DAE: %s: %s: %s", what, done, _NAMES[code + 1])
        return self._reply(request, raw, code + 1, None)

    def _parse(self, raw: dict[Any, list[bytes]], code: int) -> _Request:
        """The request's identification and change; a NAK for what we do not support or is not us."""
        if any(len(stamp) != 4 for stamp in raw.get(EVENT_TIMESTAMP, [])):
            raise _Nak(ErrorCause.INVALID_ATTRIBUTE_VALUE, "an Event-Timestamp not of 4 octets")
        values: dict[str, Any] = {}
        session_timeout = None
        for attribute, items in raw.items():
            if attribute in _EVERY_REQUEST:
                continue
            singular = attribute in _IDENTIFICATION or attribute in _NAS_IDENTIFICATION or attribute == SESSION_TIMEOUT
            if singular and len(items) > 1:
                raise _Nak(ErrorCause.INVALID_REQUEST, f"{len(items)} attributes {self._name(attribute)}")
            if attribute in _IDENTIFICATION:
                field, value = _identification(attribute, items[0])
                values[field] = value
            elif attribute in _NAS_IDENTIFICATION:
                self._check_nas(attribute, items[0])
            elif attribute == SESSION_TIMEOUT and code == CoA_REQUEST:
                session_timeout = _integer(items[0], "Session-Timeout")
            elif attribute == SERVICE_TYPE and code == CoA_REQUEST and items == [AUTHORIZE_ONLY.to_bytes(4, "big")]:
                raise _Nak(ErrorCause.UNSUPPORTED_SERVICE, "Service-Type Authorize-Only (no re-authorization here)")
            else:
                raise _Nak(ErrorCause.UNSUPPORTED_ATTRIBUTE, f"unsupported attribute {self._name(attribute)}")
        if not values:
            raise _Nak(ErrorCause.MISSING_ATTRIBUTE, "no session identification attribute")
        if code == CoA_REQUEST and session_timeout is None:
            raise _Nak(ErrorCause.MISSING_ATTRIBUTE, "no change asked (Session-Timeout is the one supported)")
        return _Request(code, SessionIdentification(**values), session_timeout)

    def _check_nas(self, attribute: int, value: bytes) -> None:
        nas = self.nas
        if attribute == NAS_IP_ADDRESS:
            ours = nas is not None and nas.ip is not None and len(value) == 4 and IPv4Address(value) == nas.ip
            shown = str(IPv4Address(value)) if len(value) == 4 else value.hex()
            name = "NAS-IP-Address"
        elif attribute == NAS_IDENTIFIER:
            ours = nas is not None and bool(nas.identifier) and value == str(nas.identifier).encode()
            shown, name = repr(value.decode("utf-8", "replace")), "NAS-Identifier"
        else:
            ours, shown, name = False, value.hex(), "NAS-IPv6-Address"
        if not ours:
            raise _Nak(ErrorCause.NAS_IDENTIFICATION_MISMATCH, f"{name} {shown} is not this NAS")

    def _find(self, identification: SessionIdentification) -> Sequence[Any]:
        try:
            sessions = list(self.handler.find(identification))
        except Exception as exc:
            log.exception("DAE: finding the sessions failed")
            raise _Nak(ErrorCause.RESOURCES_UNAVAILABLE, "internal error") from exc
        if not sessions:
            raise _Nak(ErrorCause.SESSION_CONTEXT_NOT_FOUND, "no session matches")
        return sessions

    def _act(self, request: _Request, sessions: Sequence[Any]) -> None:
        try:
            for session in sessions:
                if request.session_timeout is None:
                    self.handler.disconnect(session)
                else:
                    self.handler.set_session_timeout(session, request.session_timeout)
        except Exception as exc:
            log.exception("DAE: acting on the sessions failed")
            raise _Nak(ErrorCause.RESOURCES_UNAVAILABLE, "internal error") from exc

    def _reply(self, request: CoAPacket, raw: dict[Any, list[bytes]], code: int, cause: ErrorCause | None) -> bytes:
        reply = request.CreateReply()  # Identifier, Request Authenticator, Proxy-State
        reply.code = code
        reply.add_message_authenticator()
        if STATE in raw:
            reply[STATE] = list(raw[STATE])  # raw octets, unmodified
        if cause is not None:
            reply.AddAttribute("Error-Cause", int(cause))
        return bytes(reply.ReplyPacket())

    # -- helpers ----------------------------------------------------------------------------

    def _cached(self, key: tuple[str, int, int, bytes], now: float) -> bytes | None:
        answers = self._answers
        while answers:  # oldest first: drop the expired
            oldest = next(iter(answers.values()))
            if now - oldest[0] <= self.duplicate_window:
                break
            answers.popitem(last=False)
        hit = answers.get(key)
        return hit[1] if hit is not None else None

    def _cache(self, key: tuple[str, int, int, bytes], now: float, answer: bytes) -> None:
        self._answers[key] = (now, answer)
        while len(self._answers) > self.max_cached:
            self._answers.popitem(last=False)

    def _drop(self, now: float, message: str, *args: object) -> None:
        self.dropped += 1
        self._drops.warning(now, message, *args)

    def _name(self, attribute: Any) -> str:
        try:
            return str(self.dictionary.attrindex.GetBackward(attribute))
        except KeyError:
            return str(attribute)

    @staticmethod
    def _where(addr: tuple[Any, ...]) -> str:
        host, port = addr[0], addr[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"


def _integer(value: bytes, name: str) -> int:
    if len(value) != 4:
        raise _Nak(ErrorCause.INVALID_ATTRIBUTE_VALUE, f"{name} of {len(value)} octets")
    return int.from_bytes(value, "big")


def _identification(attribute: int, value: bytes) -> tuple[str, Any]:
    name = _IDENTIFICATION[attribute]
    if attribute == FRAMED_IP_ADDRESS:
        if len(value) != 4:
            raise _Nak(ErrorCause.INVALID_ATTRIBUTE_VALUE, f"{name} of {len(value)} octets")
        return "framed_ip", IPv4Address(value)
    if attribute == NAS_PORT:
        return "nas_port", _integer(value, name)
    if not value:
        raise _Nak(ErrorCause.INVALID_ATTRIBUTE_VALUE, f"empty {name}")
    text = value.decode("utf-8", "surrogateescape")  # as the PPP layer decodes the names peers send
    field = {USER_NAME: "user_name", ACCT_SESSION_ID: "acct_session_id", CALLING_STATION_ID: "calling_station_id"}
    return field[attribute], text
