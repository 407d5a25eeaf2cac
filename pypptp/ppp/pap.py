"""PAP, the Password Authentication Protocol (RFC 1334 section 2), both sides, sans-IO.

The peer sends Authenticate-Request (Peer-ID and Password, in clear) with a
new Identifier every ``restart_timeout`` until an Ack or Nak arrives, at
most ``max_requests`` times.  The authenticator waits ``pap_timeout`` for a
request, answers Authenticate-Ack "Login ok" or Authenticate-Nak "Login
incorrect" with the request's Identifier, and answers every repeated request
after that with the same code: the Ack may have been lost (section 2.2.2).
One failure is final.

Packet layouts (section 2.2): Authenticate-Request data is Peer-ID Length
(1 byte), Peer-ID, Passwd-Length (1 byte), Password; Ack and Nak data is
Msg-Length (1 byte), Message.  Both length bytes must fit inside the
packet's Length, and nothing may follow the last field.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import hmac
import os

from pypptp.ppp import logtext
from pypptp.ppp.auth import (
    AUTH_PROTOCOL_PAP,
    AuthConfig,
    AuthRequest,
    AuthResult,
    Exchange,
    ExternalVerdict,
    RandomBytes,
    SecretLookup,
    clipped,
    name_problem,
    random_checked,
    wire_bytes,
    wire_text,
)
from pypptp.ppp.crypto import strip_domain
from pypptp.ppp.packet import ControlPacket

__all__ = ["ACK_MESSAGE", "NAK_MESSAGE", "PapAuthenticator", "PapCode", "PapPeer", "parse_reply", "parse_request"]

ACK_MESSAGE = b"Login ok"
NAK_MESSAGE = b"Login incorrect"
_NAME = "PAP"
_DUMMY_SECRET = b"\0 no such user \0"  # compared when there is no record, so that both cases cost the same


class PapCode(enum.IntEnum):
    """PAP packet codes (RFC 1334 section 2.2)."""

    AUTHENTICATE_REQUEST = 1
    AUTHENTICATE_ACK = 2
    AUTHENTICATE_NAK = 3


def _code_name(code: int) -> str:
    try:
        return PapCode(code).name.replace("_", "-").title()
    except ValueError:
        return f"unknown code {code}"


def parse_request(data: bytes) -> tuple[bytes, bytes] | str:
    """(Peer-ID, Password) of an Authenticate-Request (section 2.2.1), or why it is malformed."""
    if not data:
        return "no Peer-ID Length"
    id_length = data[0]
    if 1 + id_length + 1 > len(data):
        return f"Peer-ID Length {id_length} does not leave room for Passwd-Length in {len(data)} data bytes"
    password_length = data[1 + id_length]
    end = 2 + id_length + password_length
    if end > len(data):
        return f"Passwd-Length {password_length} runs past the packet ({len(data)} data bytes)"
    if end < len(data):
        return f"{len(data) - end} bytes follow the Password"
    return data[1 : 1 + id_length], data[2 + id_length : end]


def parse_reply(data: bytes) -> bytes | str:
    """The Message of an Authenticate-Ack or -Nak (section 2.2.2), or why it is malformed."""
    if not data:
        return "no Msg-Length"
    length = data[0]
    if 1 + length > len(data):
        return f"Msg-Length {length} runs past the packet ({len(data)} data bytes)"
    if 1 + length < len(data):
        return f"{len(data) - 1 - length} bytes follow the Message"
    return data[1:]


def _with_length(*fields: bytes) -> bytes:
    return b"".join(bytes((len(field),)) + field for field in fields)


class _State(enum.Enum):
    INITIAL = "initial"
    WAITING = "waiting"
    VERIFYING = "verifying"  # the request is with the external judge (AuthConfig.external)
    DONE = "done"


class PapAuthenticator(Exchange):
    """The server side: wait for an Authenticate-Request and judge it."""

    def __init__(self, config: AuthConfig, secrets: SecretLookup, *, random_bytes: RandomBytes = os.urandom) -> None:
        super().__init__(AUTH_PROTOCOL_PAP, _NAME)
        self.config = config
        self.secrets = secrets
        self._state = _State.INITIAL
        self._reply_code = PapCode.AUTHENTICATE_NAK
        self._message = b""  # an external judge's text for the reply, else Login ok / Login incorrect

    def start(self, now: float) -> None:
        if self._state is _State.INITIAL:
            self._state = _State.WAITING
            self._deadline = now + self.config.pap_timeout

    def handle_timer(self, now: float) -> None:
        if self._deadline is None or now < self._deadline:
            return
        self._state = _State.DONE
        self._finish(AuthResult(False, _NAME, "", f"no Authenticate-Request within {self.config.pap_timeout:g} s"))

    def receive(self, packet: ControlPacket, now: float) -> None:
        if packet.code != PapCode.AUTHENTICATE_REQUEST:
            self._anomaly(f"{_code_name(packet.code)} (Identifier {packet.identifier}) is not for the authenticator")
            return
        parsed = parse_request(packet.data)
        if isinstance(parsed, str):
            self._anomaly(f"malformed Authenticate-Request (Identifier {packet.identifier}) discarded: {parsed}")
            return
        if self._state is _State.INITIAL:
            self._anomaly("Authenticate-Request before the Authenticate phase discarded")
        elif self._state is _State.VERIFYING:
            self._anomaly(f"Authenticate-Request (Identifier {packet.identifier}) discarded: the server is judging one")
        elif self._state is _State.DONE:
            # section 2.2.1: a repeated request after the reply gets the same code (the reply may be lost)
            self._reply(packet.identifier, self._reply_code)
        else:
            self._judge(packet.identifier, *parsed)

    def _judge(self, identifier: int, peer_id: bytes, password: bytes) -> None:
        name = wire_text(peer_id)
        lookup_name = wire_text(strip_domain(peer_id)) if self.config.strip_domain else name
        problem = name_problem(name)  # refused before any lookup: a Nak, a failed attempt
        if problem:
            self._fail(identifier, name, f"{problem}: refused")
            return
        if self.config.external:
            self._state = _State.VERIFYING
            self._ask(AuthRequest(_NAME, bytes(peer_id), identifier, b"", bytes(password)))
            return
        record = self.secrets.lookup(lookup_name, self.config.our_name)
        expected = wire_bytes(record.secret) if record is not None else _DUMMY_SECRET
        # constant time, and hashing first hides the secret's length too
        same = hmac.compare_digest(hashlib.sha256(password).digest(), hashlib.sha256(expected).digest())
        if same and record is not None:
            self._succeed(
                identifier, name, f"secret at {record.where}", AuthResult(True, _NAME, name, "", secret=record)
            )
        elif record is None:
            self._fail(
                identifier, name, f"no secret for client {clipped(lookup_name)!r} server {self.config.our_name!r}"
            )
        else:
            self._fail(identifier, name, f"wrong password (secret at {record.where})")

    def complete(self, verdict: ExternalVerdict, now: float) -> None:
        """The external judge's answer to the request we handed over (:attr:`AuthConfig.external`)."""
        if self._state is not _State.VERIFYING:
            return
        request = self._take_awaited()
        assert request is not None
        name = wire_text(request.name)
        if verdict.message:  # a Reply-Message: what this Ack or Nak (and its repeats) say
            self._message = verdict.message[:255]
        if verdict.ok:
            result = AuthResult(True, _NAME, name, "", grant=verdict.grant)
            self._succeed(request.identifier, name, verdict.reason or "the authentication server", result)
        else:
            self._fail(request.identifier, name, verdict.reason or "rejected by the authentication server")

    def _succeed(self, identifier: int, name: str, where: str, result: AuthResult) -> None:
        self._state = _State.DONE
        self._reply_code = PapCode.AUTHENTICATE_ACK
        self._reply(identifier, self._reply_code)
        self._pppd_line(logtext.pap_peer_succeeded(clipped(name)))
        message = f"PAP authentication succeeded for {clipped(name)!r} ({where})"
        self._finish(dataclasses.replace(result, message=message))

    def _fail(self, identifier: int, name: str, reason: str) -> None:
        self._state = _State.DONE
        self._reply_code = PapCode.AUTHENTICATE_NAK
        self._reply(identifier, self._reply_code)
        self.failed_attempts.append(name)
        self._pppd_line(logtext.pap_peer_failed(clipped(name)))
        self._finish(AuthResult(False, _NAME, name, f"PAP authentication failed for {clipped(name)!r}: {reason}"))

    def _reply(self, identifier: int, code: PapCode) -> None:
        message = self._message or (ACK_MESSAGE if code is PapCode.AUTHENTICATE_ACK else NAK_MESSAGE)
        self._send(ControlPacket(code, identifier, _with_length(message)))


class PapPeer(Exchange):
    """The client side: send Authenticate-Requests until an Ack or a Nak."""

    def __init__(self, config: AuthConfig, *, random_bytes: RandomBytes = os.urandom) -> None:
        super().__init__(AUTH_PROTOCOL_PAP, _NAME)
        self.config = config
        self._random_bytes = random_bytes
        self._user = wire_bytes(config.user)
        self._password = wire_bytes(config.password)
        for field, value in (("user name", self._user), ("password", self._password)):
            if len(value) > 255:
                raise ValueError(f"a PAP {field} holds at most 255 bytes, this one has {len(value)}")
        self._identifier = 0
        self._sent: set[int] = set()  # Identifiers of our requests: a late reply to any of them counts
        self._count = 0

    def start(self, now: float) -> None:
        if not self._count:
            self._identifier = random_checked(self._random_bytes, 1)[0]
            self._request(now)

    def handle_timer(self, now: float) -> None:
        if self._deadline is None or now < self._deadline:
            return
        if self._count >= self.config.max_requests:
            message = f"no reply to {self._count} Authenticate-Requests"
            self._finish(AuthResult(False, _NAME, self.config.user, message))
            return
        self._identifier = (self._identifier + 1) & 0xFF  # section 2.2.1: a new Identifier each time
        self._request(now)

    def _request(self, now: float) -> None:
        self._count += 1
        self._sent.add(self._identifier)
        self._send(
            ControlPacket(PapCode.AUTHENTICATE_REQUEST, self._identifier, _with_length(self._user, self._password))
        )
        self._deadline = now + self.config.restart_timeout

    def receive(self, packet: ControlPacket, now: float) -> None:
        code = packet.code
        if code not in (PapCode.AUTHENTICATE_ACK, PapCode.AUTHENTICATE_NAK):
            self._anomaly(f"{_code_name(code)} (Identifier {packet.identifier}) is not for the peer")
            return
        parsed = parse_reply(packet.data)
        if isinstance(parsed, str):
            self._anomaly(f"malformed {_code_name(code)} (Identifier {packet.identifier}) discarded: {parsed}")
            return
        if packet.identifier not in self._sent:
            self._anomaly(f"{_code_name(code)} with Identifier {packet.identifier} answers no request of ours")
            return
        success = code == PapCode.AUTHENTICATE_ACK
        if self.result is not None:
            if self.result.success != success:
                self._anomaly(f"{_code_name(code)} after the exchange ended; ignored")
            return  # a repeated reply
        server_says = f": the server says {clipped(wire_text(parsed))!r}" if parsed else ""
        outcome = "succeeded" if success else "failed"
        self._finish(AuthResult(success, _NAME, self.config.user, f"PAP authentication {outcome}{server_says}"))
