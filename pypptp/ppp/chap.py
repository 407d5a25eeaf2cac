"""CHAP (RFC 1994) with MD5, MS-CHAP v1 (RFC 2433) and MS-CHAP v2 (RFC 2759), both sides, sans-IO.

One engine per side, :class:`ChapAuthenticator` and :class:`ChapPeer`, and
a small digest object per algorithm (:class:`ChapDigest`) that knows the
sizes, computes and checks Response values, and writes and reads the
Success and Failure messages.

The exchange (RFC 1994 section 2): the authenticator sends a Challenge with
a new Identifier, and retransmits it unchanged every ``restart_timeout``
until a Response arrives, at most ``max_challenges`` times.  A Response must
carry the current Challenge's Identifier; it is answered with Success or
Failure carrying the same Identifier.  A repeated Response after that gets
the same packet again, because the first may have been lost (sections
4.1-4.2).  CHAP-MD5 fails for good on the first wrong Response; MS-CHAP
allows ``max_attempts`` Responses, each failure but the last with ``R=1``
and a fresh challenge in ``C=``, to which the peer answers with Identifier
+ 1 (RFC 2433 appendix B.1, RFC 2759 section 6).

Packet layouts (RFC 1994 section 4): Challenge and Response data is
Value-Size (1 byte), Value, Name (the rest); Success and Failure data is a
Message (the rest).  Value-Size must fit inside the packet, and a Response
Value must be exactly 16 bytes (MD5) or 49 bytes (MS-CHAP).
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import hmac
import os
import re
import typing

from pypptp.ppp import logtext
from pypptp.ppp.auth import (
    AUTH_PROTOCOL_CHAP,
    AuthConfig,
    AuthRequest,
    AuthResult,
    Exchange,
    ExternalVerdict,
    MsChapKeys,
    RandomBytes,
    SecretLookup,
    clipped,
    name_problem,
    nt_hash,
    random_checked,
    wire_bytes,
    wire_text,
)
from pypptp.ppp.crypto import (
    challenge_hash,
    challenge_response,
    check_authenticator_response,
    generate_authenticator_response,
    hash_nt_password_hash,
    lm_password_hash,
    strip_domain,
)
from pypptp.ppp.packet import ControlPacket

__all__ = [
    "Answer",
    "ChapAuthenticator",
    "ChapCode",
    "ChapDigest",
    "ChapPeer",
    "Md5Digest",
    "MsChapV1Digest",
    "MsChapV2Digest",
    "Verdict",
    "digest_for",
    "offered_retry",
    "parse_value_name",
]

_GRANTED = b"Access granted"  # the Success Message of CHAP-MD5 and MS-CHAPv1 (pppd's)
_DUMMY_PASSWORD = "\0 no such user \0"  # checked when there is no record, so that both cases cost the same

MS_CHAP_ERRORS = {  # RFC 2759 section 6, RFC 2433 section 6
    646: "ERROR_RESTRICTED_LOGON_HOURS",
    647: "ERROR_ACCT_DISABLED",
    648: "ERROR_PASSWD_EXPIRED",
    649: "ERROR_NO_DIALIN_PERMISSION",
    691: "ERROR_AUTHENTICATION_FAILURE",
    709: "ERROR_CHANGING_PASSWORD",
}


_RETRY_ALLOWED = re.compile(rb"\bR=1\b")
_RETRY_CHALLENGE = re.compile(rb"\bC=([0-9A-Fa-f]+)\b")


def offered_retry(message: bytes, size: int) -> bytes | None:
    """The challenge an MS-CHAP Failure Message offers for a retry (``R=1`` and ``C=`` with ``size``
    bytes in hex, RFC 2759 section 6), or None: then the failure is final."""
    if not _RETRY_ALLOWED.search(message):
        return None
    found = _RETRY_CHALLENGE.search(message)
    if found is None or len(found.group(1)) != 2 * size:
        return None
    return bytes.fromhex(found.group(1).decode("ascii"))


class ChapCode(enum.IntEnum):
    """CHAP packet codes (RFC 1994 section 4)."""

    CHALLENGE = 1
    RESPONSE = 2
    SUCCESS = 3
    FAILURE = 4


def _code_name(code: int) -> str:
    try:
        return ChapCode(code).name.title()
    except ValueError:
        return f"code {code}"  # 5-7 are MS-CHAP Change-Password (not supported)


def parse_value_name(data: bytes) -> tuple[bytes, bytes] | str:
    """(Value, Name) of a Challenge or Response (RFC 1994 section 4.1), or why it is malformed."""
    if not data:
        return "no Value-Size"
    size = data[0]
    if 1 + size > len(data):
        return f"Value-Size {size} runs past the packet ({len(data)} data bytes)"
    return data[1 : 1 + size], data[1 + size :]


def _says(message: bytes) -> str:
    return f"; the server says {clipped(wire_text(message))!r}" if message else ""


# -- the digests ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Verdict:
    """The authenticator's judgement of one Response Value."""

    ok: bool
    success_message: bytes = b""
    keys: MsChapKeys | None = None
    reason: str = ""
    """Why it failed, when it is not simply the password (e.g. an LM-only response)."""


@dataclasses.dataclass(frozen=True)
class Answer:
    """The peer's Response Value to one Challenge, and what it needs to check the Success."""

    value: bytes
    keys: MsChapKeys | None = None
    peer_challenge: bytes = b""
    challenge: bytes = b""
    user: bytes = b""
    """The user name as hashed (domain stripped), MS-CHAPv2 only."""


class ChapDigest(typing.Protocol):
    """What differs between CHAP algorithms (the idea of pppd's ``chap_digest_type``)."""

    name: str
    algorithm: int
    """The Algorithm octet of the LCP option: 0x05, 0x80 or 0x81."""
    challenge_size: int
    """Bytes in the Challenges we send."""
    response_size: int
    """The exact Value-Size of an acceptable Response."""
    retry: bool
    """Whether a Failure may allow a retry (R=1)."""

    def challenge_ok(self, size: int) -> bool:
        """Peer side: is a Challenge Value of ``size`` bytes acceptable?"""

    def verify(self, identifier: int, challenge: bytes, name: bytes, value: bytes, password: str) -> Verdict:
        """Authenticator side: judge a Response ``value`` (already ``response_size`` bytes long)."""

    def accepted(self, verdict: ExternalVerdict) -> Verdict:
        """Authenticator side, :attr:`AuthConfig.external`: an external judge accepted; the Success to send
        and the keys, or (``ok`` False, ``reason``) why its answer cannot be used."""

    def failure_message(self, challenge: bytes, retry: bool) -> bytes:
        """Authenticator side: the Failure Message; ``challenge`` is what C= carries."""

    def respond(
        self, identifier: int, challenge: bytes, user: bytes, password: str, random_bytes: RandomBytes
    ) -> Answer:
        """Peer side: the Response Value to a Challenge."""

    def check_success(self, message: bytes, answer: Answer) -> str | None:
        """Peer side: None if the Success Message is acceptable, else why not."""

    def describe_failure(self, message: bytes) -> str:
        """Peer side: a Failure Message, for the log."""


class Md5Digest:
    """CHAP with MD5 (RFC 1994 section 2): Value = MD5(Identifier || secret || Challenge)."""

    name = "CHAP-MD5"
    algorithm = 0x05
    challenge_size = 16
    response_size = 16
    retry = False

    @staticmethod
    def _value(identifier: int, challenge: bytes, password: str) -> bytes:
        return hashlib.md5(bytes((identifier,)) + wire_bytes(password) + challenge).digest()

    def challenge_ok(self, size: int) -> bool:
        return size >= 1

    def verify(self, identifier: int, challenge: bytes, name: bytes, value: bytes, password: str) -> Verdict:
        ok = hmac.compare_digest(value, self._value(identifier, challenge, password))
        return Verdict(ok, _GRANTED)

    def accepted(self, verdict: ExternalVerdict) -> Verdict:
        return Verdict(True, verdict.message or _GRANTED)  # CHAP-MD5 keys nothing

    def failure_message(self, challenge: bytes, retry: bool) -> bytes:
        return b"Access denied"

    def respond(
        self, identifier: int, challenge: bytes, user: bytes, password: str, random_bytes: RandomBytes
    ) -> Answer:
        return Answer(self._value(identifier, challenge, password))

    def check_success(self, message: bytes, answer: Answer) -> str | None:
        return None

    def describe_failure(self, message: bytes) -> str:
        return "the server sent Failure" + _says(message)


_MS_FIELD = re.compile(r"(?:^|\s)([ERCV])=(\S*)")


def _describe_ms_failure(message: bytes) -> str:
    """An MS-CHAP Failure Message ``E=e R=r C=c V=v M=text`` (RFC 2759 section 6) in words."""
    head, marker, tail = message.partition(b"M=")
    fields = dict(_MS_FIELD.findall(head.decode("ascii", "replace")))
    error = fields.get("E", "")
    if not error.isdigit():
        return "the server sent Failure" + _says(message)
    words = [f"E={error} {MS_CHAP_ERRORS.get(int(error), '(unknown error)')}"]
    if fields.get("R") == "1":
        words.append("retry allowed (R=1), not attempted: the credentials have not changed")
    if marker and tail:
        words.append(f"the server says {clipped(wire_text(tail))!r}")
    return "; ".join(words)


class MsChapV1Digest:
    """MS-CHAP v1 (RFC 2433 sections 5-6): 8-byte challenge, 49-byte Response.

    Response Value: 24 bytes LAN Manager response (zero: deprecated and not
    supported), 24 bytes NT response, 1 byte "use NT response" flag.
    """

    name = "MS-CHAP"
    algorithm = 0x80
    challenge_size = 8
    response_size = 49
    retry = True

    @staticmethod
    def _keys(challenge: bytes, password: str, nt_response: bytes) -> MsChapKeys:
        password_hash = nt_hash(password)
        return MsChapKeys(
            1, password_hash, hash_nt_password_hash(password_hash), nt_response, challenge, lm_password_hash(password)
        )

    def challenge_ok(self, size: int) -> bool:
        return size == self.challenge_size

    def verify(self, identifier: int, challenge: bytes, name: bytes, value: bytes, password: str) -> Verdict:
        nt_response, use_nt = value[24:48], value[48]
        password_hash = nt_hash(password)
        ok = hmac.compare_digest(nt_response, challenge_response(challenge, password_hash))
        if not use_nt:
            return Verdict(False, reason="only a LAN Manager response (flag 0), which is not supported")
        if not ok:
            return Verdict(False)
        return Verdict(True, _GRANTED, self._keys(challenge, password, nt_response))

    def accepted(self, verdict: ExternalVerdict) -> Verdict:
        return Verdict(True, verdict.message or _GRANTED, verdict.keys)

    def failure_message(self, challenge: bytes, retry: bool) -> bytes:
        return f"E=691 R={int(retry)} C={challenge.hex().upper()} V=2".encode("ascii")

    def respond(
        self, identifier: int, challenge: bytes, user: bytes, password: str, random_bytes: RandomBytes
    ) -> Answer:
        nt_response = challenge_response(challenge, nt_hash(password))
        return Answer(bytes(24) + nt_response + b"\x01", self._keys(challenge, password, nt_response))

    def check_success(self, message: bytes, answer: Answer) -> str | None:
        return None

    def describe_failure(self, message: bytes) -> str:
        return _describe_ms_failure(message)


_AUTHENTICATOR_RESPONSE = re.compile(rb"S=[0-9A-Fa-f]{40}")


class MsChapV2Digest:
    """MS-CHAP v2 (RFC 2759 sections 3-8): 16-byte challenge, 49-byte Response, mutual authentication.

    Response Value: 16 bytes Peer-Challenge, 8 reserved (zero), 24 bytes
    NT-Response, 1 byte Flags (zero; Windows 98 sends 4).  The Success
    Message ``S=<40 hex>`` proves that the server knows the password too.
    """

    name = "MS-CHAP-V2"
    algorithm = 0x81
    challenge_size = 16
    response_size = 49
    retry = True

    def challenge_ok(self, size: int) -> bool:
        return size == self.challenge_size

    def verify(self, identifier: int, challenge: bytes, name: bytes, value: bytes, password: str) -> Verdict:
        peer_challenge, nt_response, flags = value[:16], value[24:48], value[48]
        user = strip_domain(name)  # section 8.2: ChallengeHash always uses the name without the domain
        password_hash = nt_hash(password)
        expected = challenge_response(challenge_hash(peer_challenge, challenge, user), password_hash)
        if not hmac.compare_digest(nt_response, expected):
            return Verdict(False)
        message = generate_authenticator_response(password_hash, nt_response, peer_challenge, challenge, user)
        if not flags:  # pppd: a client with non-zero Flags (Windows 98) mis-parses M=
            message += " M=Access granted"
        keys = MsChapKeys(2, password_hash, hash_nt_password_hash(password_hash), nt_response, challenge)
        return Verdict(True, message.encode("ascii"), keys)

    def accepted(self, verdict: ExternalVerdict) -> Verdict:
        if not _AUTHENTICATOR_RESPONSE.match(verdict.message):
            # section 5: the client checks S= and hangs up without it; no use succeeding
            return Verdict(False, reason="the authentication server accepted without an S= authenticator "
                           "response (MS-CHAP2-Success)")  # fmt: skip
        return Verdict(True, verdict.message, verdict.keys)

    def failure_message(self, challenge: bytes, retry: bool) -> bytes:
        return f"E=691 R={int(retry)} C={challenge.hex().upper()} V=3 M=Authentication failed".encode("ascii")

    def respond(
        self, identifier: int, challenge: bytes, user: bytes, password: str, random_bytes: RandomBytes
    ) -> Answer:
        peer_challenge = random_checked(random_bytes, 16)
        hashed_user = strip_domain(user)
        password_hash = nt_hash(password)
        nt_response = challenge_response(challenge_hash(peer_challenge, challenge, hashed_user), password_hash)
        keys = MsChapKeys(2, password_hash, hash_nt_password_hash(password_hash), nt_response, challenge)
        value = peer_challenge + bytes(8) + nt_response + b"\x00"
        return Answer(value, keys, peer_challenge, challenge, hashed_user)

    def check_success(self, message: bytes, answer: Answer) -> str | None:
        """Section 5: the client must check S= and end the session when it is wrong."""
        if answer.keys is None or not _AUTHENTICATOR_RESPONSE.match(message):
            return "Success without an S= authenticator response (RFC 2759 section 5)" + _says(message)
        received = message[:42].decode("ascii")
        keys = answer.keys
        if not check_authenticator_response(
            received, keys.password_hash, keys.nt_response, answer.peer_challenge, answer.challenge, answer.user
        ):
            return "the server's S= authenticator response is wrong: it does not know our password"
        return None

    def describe_failure(self, message: bytes) -> str:
        return _describe_ms_failure(message)


_DIGESTS: dict[int, ChapDigest] = {0x05: Md5Digest(), 0x80: MsChapV1Digest(), 0x81: MsChapV2Digest()}


def digest_for(algorithm: int) -> ChapDigest:
    """The digest for a CHAP Algorithm octet (RFC 1994 section 3); ValueError if unsupported."""
    try:
        return _DIGESTS[algorithm]
    except KeyError:
        raise ValueError(f"unsupported CHAP algorithm 0x{algorithm:02x}") from None


# -- the authenticator ------------------------------------------------------------------------


class _ServerState(enum.Enum):
    INITIAL = "initial"  # start() not called yet
    CHALLENGED = "challenged"  # a Challenge is outstanding and retransmitted
    AWAITING_RETRY = "awaiting-retry"  # MS-CHAP Failure with R=1 sent; waiting for Identifier + 1
    VERIFYING = "verifying"  # a Response is with the external judge (AuthConfig.external)
    DONE = "done"  # result is final


class ChapAuthenticator(Exchange):
    """The server side of CHAP, for one digest."""

    def __init__(
        self,
        digest: ChapDigest,
        config: AuthConfig,
        secrets: SecretLookup,
        *,
        random_bytes: RandomBytes = os.urandom,
    ) -> None:
        super().__init__(AUTH_PROTOCOL_CHAP, digest.name)
        self.digest = digest
        self.config = config
        self.secrets = secrets
        self._random_bytes = random_bytes
        self._state = _ServerState.INITIAL
        self._identifier = 0  # what the next acceptable Response carries
        self._challenge = b""  # what it must answer
        self._challenge_packet: ControlPacket | None = None
        self._challenges_sent = 0
        self._failures = 0
        self._peer_name = ""
        self._last_reply: ControlPacket | None = None  # re-sent for a repeated Response

    @property
    def challenge(self) -> bytes:
        """The challenge the next Response must answer (empty before :meth:`start`)."""
        return self._challenge

    def start(self, now: float) -> None:
        if self._state is not _ServerState.INITIAL:
            return
        self._identifier = random_checked(self._random_bytes, 1)[0]
        self._challenge = random_checked(self._random_bytes, self.digest.challenge_size)
        data = bytes((len(self._challenge),)) + self._challenge + wire_bytes(self.config.our_name)
        self._challenge_packet = ControlPacket(ChapCode.CHALLENGE, self._identifier, data)
        self._state = _ServerState.CHALLENGED
        self._send_challenge(now)

    def _send_challenge(self, now: float) -> None:
        assert self._challenge_packet is not None
        self._challenges_sent += 1
        self._send(self._challenge_packet)  # a retransmission is identical (RFC 1994 section 4.1)
        self._deadline = now + self.config.restart_timeout

    def handle_timer(self, now: float) -> None:
        if self._deadline is None or now < self._deadline:
            return
        if self._state is _ServerState.CHALLENGED:
            if self._challenges_sent < self.config.max_challenges:
                self._send_challenge(now)
                return
            reason = f"no Response to {self._challenges_sent} Challenges"
        else:
            reason = f"no retry Response within {self._retry_wait:g} s of the Failure"
        self._state = _ServerState.DONE
        self._finish(AuthResult(False, self.name, self._peer_name, f"{self.name} authentication failed: {reason}"))

    @property
    def _retry_wait(self) -> float:
        return self.config.restart_timeout * max(1, self.config.max_challenges)

    def receive(self, packet: ControlPacket, now: float) -> None:
        ident = packet.identifier
        if packet.code != ChapCode.RESPONSE:
            self._anomaly(f"{_code_name(packet.code)} (Identifier {ident}) is not for the authenticator; discarded")
            return
        parsed = parse_value_name(packet.data)
        if isinstance(parsed, str):
            self._anomaly(f"malformed Response (Identifier {ident}) discarded: {parsed}")
            return
        value, name = parsed
        if len(value) != self.digest.response_size:
            size = self.digest.response_size
            self._anomaly(f"Response (Identifier {ident}) with Value-Size {len(value)}, not {size}, discarded")
            return
        waiting = self._state in (_ServerState.CHALLENGED, _ServerState.AWAITING_RETRY)
        if waiting and ident == self._identifier:
            self._judge(ident, value, name, now)
        elif self._last_reply is not None and ident == self._last_reply.identifier:
            self._send(self._last_reply)  # sections 4.1-4.2: the same code again, the first may be lost
        elif self._state is _ServerState.VERIFYING:
            self._anomaly(f"Response with Identifier {ident} discarded: the authentication server is judging one")
        elif waiting:
            self._anomaly(f"Response with Identifier {ident} discarded: the current Challenge is {self._identifier}")
        else:
            self._anomaly(f"Response with Identifier {ident} discarded: no Challenge outstanding")

    def _judge(self, identifier: int, value: bytes, name_bytes: bytes, now: float) -> None:
        name = self._peer_name = wire_text(name_bytes)
        lookup_name = wire_text(strip_domain(name_bytes)) if self.config.strip_domain else name
        problem = name_problem(name)  # refused before any lookup: a failed attempt like a wrong password
        if problem:
            self._fail(identifier, name, f"{problem}: refused", now)
            return
        if self.config.external:
            attempt = self._failures + 1
            self._state = _ServerState.VERIFYING
            self._ask(AuthRequest(self.name, bytes(name_bytes), identifier, self._challenge, bytes(value), attempt))
            return
        record = self.secrets.lookup(lookup_name, self.config.our_name)
        password = record.secret if record is not None else _DUMMY_PASSWORD
        verdict = self.digest.verify(identifier, self._challenge, name_bytes, value, password)
        if record is not None and verdict.ok:
            where = f"secret at {record.where}"
            self._succeed(
                identifier,
                name,
                verdict.success_message,
                where,
                AuthResult(True, self.name, name, "", secret=record, keys=verdict.keys),
            )
        elif record is None:
            self._fail(
                identifier, name, f"no secret for client {clipped(lookup_name)!r} server {self.config.our_name!r}", now
            )
        else:
            self._fail(identifier, name, verdict.reason or f"wrong password (secret at {record.where})", now)

    def complete(self, verdict: ExternalVerdict, now: float) -> None:
        """The external judge's answer to the Response we handed over (:attr:`AuthConfig.external`)."""
        if self._state is not _ServerState.VERIFYING:
            return
        request = self._take_awaited()
        assert request is not None
        name, identifier = wire_text(request.name), request.identifier
        if not verdict.ok:
            self._fail(
                identifier,
                name,
                verdict.reason or "rejected by the authentication server",
                now,
                verdict.message or None,
            )
            return
        success = self.digest.accepted(verdict)
        if not success.ok:
            self._fail(identifier, name, success.reason, now, None, final=True)
            return
        where = verdict.reason or "the authentication server"
        result = AuthResult(True, self.name, name, "", keys=success.keys, grant=verdict.grant)
        self._succeed(identifier, name, success.success_message, where, result)

    def _succeed(self, identifier: int, name: str, message: bytes, where: str, result: AuthResult) -> None:
        self._reply(ControlPacket(ChapCode.SUCCESS, identifier, message))
        self._state = _ServerState.DONE
        text = f"{self.name} authentication succeeded for {clipped(name)!r} ({where})"
        self._pppd_line(logtext.chap_peer_succeeded(clipped(name)))  # pppd's line
        self._finish(dataclasses.replace(result, message=text))

    def _fail(
        self, identifier: int, name: str, reason: str, now: float, message: bytes | None = None, *, final: bool = False
    ) -> None:
        """A failed attempt: a Failure with R=1 and a new challenge while attempts remain (MS-CHAP), else
        the final one.  ``message``: the external judge's Failure text; its ``C=`` (with R=1) is the
        challenge of the retry, and R=1 becomes R=0 when no retry is left."""
        shown = clipped(name)
        self._failures += 1
        self.failed_attempts.append(name)
        attempts = f"attempt {self._failures} of {self.config.max_attempts}"
        retry: bytes | None = None
        if self.digest.retry and self._failures < self.config.max_attempts and not final:
            if message is None:
                retry = random_checked(self._random_bytes, self.digest.challenge_size)
                message = self.digest.failure_message(retry, True)
            else:
                retry = offered_retry(message, self.digest.challenge_size)
        if retry is not None:
            assert message is not None
            self._reply(ControlPacket(ChapCode.FAILURE, identifier, message))
            self._challenge = retry
            self._identifier = (identifier + 1) & 0xFF  # RFC 2433 B.1: the retry carries Identifier + 1
            self._state = _ServerState.AWAITING_RETRY
            self._deadline = now + self._retry_wait
            self._note(f"{attempts} failed for {shown!r}: {reason}; Failure with R=1 and a new challenge")
            self._pppd_line(logtext.peer_failed_chap(shown))  # pppd's line, which fail2ban and friends match
            return
        if message is None:
            message = self.digest.failure_message(self._challenge, False)
        elif self.digest.retry:
            message = _RETRY_ALLOWED.sub(b"R=0", message)
        self._reply(ControlPacket(ChapCode.FAILURE, identifier, message))
        self._state = _ServerState.DONE
        if self.digest.retry:
            reason += f" ({attempts})"
        self._pppd_line(logtext.peer_failed_chap(shown))
        self._finish(AuthResult(False, self.name, name, f"{self.name} authentication failed for {shown!r}: {reason}"))

    def _reply(self, packet: ControlPacket) -> None:
        self._last_reply = packet
        self._send(packet)


# -- the peer ---------------------------------------------------------------------------------


class ChapPeer(Exchange):
    """The client side of CHAP, for one digest.

    It has no timer: the authenticator speaks first and retransmits its
    Challenge, and a retransmitted Challenge (same Identifier and Value)
    gets the same Response.  A Failure is final even when it allows a retry
    (R=1), because a retry needs new credentials.  Re-authentication after
    the result is not supported: a new Challenge then is logged and
    discarded.
    """

    def __init__(self, digest: ChapDigest, config: AuthConfig, *, random_bytes: RandomBytes = os.urandom) -> None:
        super().__init__(AUTH_PROTOCOL_CHAP, digest.name)
        self.digest = digest
        self.config = config
        self._random_bytes = random_bytes
        self._user = wire_bytes(config.user)
        self._answered: tuple[int, bytes] | None = None  # (Identifier, Challenge Value) of our Response
        self._answer: Answer | None = None
        self._response: ControlPacket | None = None

    def start(self, now: float) -> None:
        """Nothing to send: the authenticator speaks first (RFC 1994 section 2)."""

    def handle_timer(self, now: float) -> None:
        """No timer on this side."""

    def receive(self, packet: ControlPacket, now: float) -> None:
        if packet.code == ChapCode.CHALLENGE:
            self._on_challenge(packet)
        elif packet.code in (ChapCode.SUCCESS, ChapCode.FAILURE):
            self._on_outcome(packet)
        else:
            self._anomaly(f"{_code_name(packet.code)} (Identifier {packet.identifier}) is not for the peer; discarded")

    def _on_challenge(self, packet: ControlPacket) -> None:
        ident = packet.identifier
        parsed = parse_value_name(packet.data)
        if isinstance(parsed, str):
            self._anomaly(f"malformed Challenge (Identifier {ident}) discarded: {parsed}")
            return
        value, _server_name = parsed
        if not self.digest.challenge_ok(len(value)):
            self._anomaly(f"Challenge (Identifier {ident}) with Value-Size {len(value)} discarded")
            return
        if self._response is not None and self._answered == (ident, value):
            self._send(self._response)  # a retransmitted Challenge: the same Response
            return
        if self.result is not None:
            self._anomaly(f"new Challenge (Identifier {ident}) after the exchange ended discarded")
            return
        answer = self.digest.respond(ident, value, self._user, self.config.password, self._random_bytes)
        data = bytes((len(answer.value),)) + answer.value + self._user
        self._answered, self._answer = (ident, value), answer
        self._response = ControlPacket(ChapCode.RESPONSE, ident, data)
        self._send(self._response)

    def _on_outcome(self, packet: ControlPacket) -> None:
        success = packet.code == ChapCode.SUCCESS
        kind = _code_name(packet.code)
        if self._response is None or self._answer is None or packet.identifier != self._response.identifier:
            self._anomaly(f"{kind} with Identifier {packet.identifier} answers no Response of ours; discarded")
            return
        if self.result is not None:
            if self.result.success != success:
                self._anomaly(f"{kind} after the exchange ended; ignored")
            return  # a repeated Success or Failure
        user = self.config.user
        if not success:
            message = f"{self.name} authentication failed: {self.digest.describe_failure(packet.data)}"
            self._finish(AuthResult(False, self.name, user, message))
            return
        problem = self.digest.check_success(packet.data, self._answer)
        if problem is not None:
            self._finish(AuthResult(False, self.name, user, f"{self.name} authentication failed: {problem}"))
            return
        message = f"{self.name} authentication succeeded{_says(packet.data)}"
        self._finish(AuthResult(True, self.name, user, message, keys=self._answer.keys))
