"""PPP authentication (PAP, CHAP-MD5, MS-CHAP v1 and v2), both sides, sans-IO.

RFC vectors through the packet path, a real pptpd MS-CHAPv2 exchange and a
real Cisco PAP exchange replayed, our client against our server in memory,
timers driven by ``now``, and malformed packets that must never raise.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pypptp.gre.codec import decode_header
from pypptp.ppp.auth import (
    AUTH_PROTOCOL_CHAP,
    AUTH_PROTOCOL_PAP,
    AuthConfig,
    AuthMethod,
    AuthResult,
    MsChapKeys,
    SecretLookup,
    make_authenticator,
    make_peer,
)
from pypptp.ppp.chap import ChapAuthenticator, ChapPeer, MsChapV2Digest, parse_value_name
from pypptp.ppp.crypto import generate_authenticator_response, lm_password_hash, nt_password_hash
from pypptp.ppp.frame import encode_frame, parse_frame
from pypptp.ppp.lcp import AUTH_CHAP_MD5, AUTH_MSCHAP_V1, AUTH_MSCHAP_V2, AUTH_PAP
from pypptp.ppp.link import Authenticated, LinkEvent, LinkLog, Phase, PppLink
from pypptp.ppp.packet import ControlPacket, decode_packet
from pypptp.ppp.secrets import AddressPolicy, ChapSecret, ChapSecrets, parse_secrets
from tests import fixtures
from tests.test_ppp_crypto import _chap_packets
from tests.test_ppp_link import SECRETS as LINK_SECRETS
from tests.test_ppp_link import Wire as LinkWire
from tests.test_ppp_link import client_config as link_client_config
from tests.test_ppp_link import counter32, of, rng_bytes
from tests.test_ppp_link import server_config as link_server_config

ALL = [AUTH_PAP, AUTH_CHAP_MD5, AUTH_MSCHAP_V1, AUTH_MSCHAP_V2]
CHAP = [AUTH_CHAP_MD5, AUTH_MSCHAP_V1, AUTH_MSCHAP_V2]
MSCHAP = [AUTH_MSCHAP_V1, AUTH_MSCHAP_V2]
NAMES = {AUTH_PAP: "PAP", AUTH_CHAP_MD5: "CHAP-MD5", AUTH_MSCHAP_V1: "MS-CHAP", AUTH_MSCHAP_V2: "MS-CHAP-V2"}
IDS = [NAMES[o] for o in ALL]

SECRETS = parse_secrets(
    'alice pptpd "s3cret pass" 198.18.0.20\nbob * hunter2 *\ncarol otherserver nope *\nCORP\\\\dave pptpd d4ve *\n',
    "chap-secrets",
)
RFC2759_AUTH_CHALLENGE = bytes.fromhex("5B5D7C7D7B3F2F3E3C2C602132262628")
RFC2759_PEER_CHALLENGE = bytes.fromhex("21402324255E262A28295F2B3A337C7E")
MOXIE_PASSWORD = "bPCFyF2uL1p5Lg5yrKmqmY"  # tests/fixtures/README.md


# -- helpers ---------------------------------------------------------------------------------


def seeded(seed: int) -> Callable[[int], bytes]:
    """A deterministic stand-in for os.urandom."""
    rng = random.Random(seed)
    return rng.randbytes


def scripted(**by_size: bytes) -> Callable[[int], bytes]:
    """random_bytes that yields fixed values by size (``n1=``, ``n16=``...); others are seeded."""
    fallback = seeded(99)
    return lambda n: by_size.get(f"n{n}", fallback(n))


def server(option: bytes, secrets: SecretLookup = SECRETS, seed: int = 1, **config: Any) -> AuthMethod:
    """Our authenticator for ``option``; ``config`` are AuthConfig fields."""
    return make_authenticator(option, AuthConfig(**config), secrets, random_bytes=seeded(seed))


def client(option: bytes, user: str, password: str, seed: int = 2, **config: Any) -> AuthMethod:
    """Our peer for ``option``; ``config`` are AuthConfig fields."""
    return make_peer(option, AuthConfig(user=user, password=password, **config), random_bytes=seeded(seed))


Wire = list[tuple[str, ControlPacket]]


def talk(
    peer: AuthMethod, authenticator: AuthMethod, now: float = 0.0, *, start: bool = True, log: list[str] | None = None
) -> Wire:
    """Start both sides and deliver packets (through encode/decode) until both are quiet.

    Returns what went over the wire; the log lines of both sides go to ``log``."""
    wire: Wire = []
    if start:
        authenticator.start(now)
        peer.start(now)
    for _ in range(20):
        to_peer, server_lines = authenticator.drain()
        to_server, peer_lines = peer.drain()
        if log is not None:
            log += server_lines + peer_lines
        if not to_peer and not to_server:
            break
        for packet in to_server:
            wire.append(("peer", packet))
            authenticator.receive(decode_packet(packet.encode()), now)
        for packet in to_peer:
            wire.append(("server", packet))
            peer.receive(decode_packet(packet.encode()), now)
    return wire


def sent(method: AuthMethod) -> list[ControlPacket]:
    return method.drain()[0]


def quiet(method: AuthMethod) -> list[str]:
    """The log lines of a method that must not have sent anything."""
    packets, lines = method.drain()
    assert packets == []
    return lines


def final(method: AuthMethod) -> AuthResult:
    assert method.result is not None
    return method.result


def hexid(value: object) -> str:
    """A short test id for bytes parameters."""
    return (value.hex()[:20] or "empty") if isinstance(value, bytes) else str(value)


def chap(code: int, identifier: int, value: bytes, name: bytes = b"") -> ControlPacket:
    return ControlPacket(code, identifier, bytes((len(value),)) + value + name)


def pap_request(identifier: int, user: bytes, password: bytes) -> ControlPacket:
    return ControlPacket(1, identifier, bytes((len(user),)) + user + bytes((len(password),)) + password)


# -- factories ---------------------------------------------------------------------------------


@pytest.mark.parametrize("option", ALL, ids=IDS)
def test_factories_build_both_sides(option: bytes) -> None:
    protocol = AUTH_PROTOCOL_PAP if option == AUTH_PAP else AUTH_PROTOCOL_CHAP
    for method in (server(option), client(option, "alice", "x")):
        assert (method.protocol, method.name, method.result) == (protocol, NAMES[option], None)
        assert method.drain() == ([], [])


@pytest.mark.parametrize("option", [b"\xc2\x23\x06", b"\xc2\x23", b"\xc0\x25", b""], ids=hexid)
def test_factories_refuse_unsupported_options(option: bytes) -> None:
    with pytest.raises(ValueError, match="unsupported"):
        make_authenticator(option, AuthConfig(), SECRETS)
    with pytest.raises(ValueError, match="unsupported"):
        make_peer(option, AuthConfig())


def test_pap_peer_refuses_fields_that_do_not_fit() -> None:
    with pytest.raises(ValueError, match="255"):
        make_peer(AUTH_PAP, AuthConfig(user="u" * 256))
    with pytest.raises(ValueError, match="255"):
        make_peer(AUTH_PAP, AuthConfig(user="u", password="é" * 128))


def test_random_source_of_the_wrong_size_is_our_bug() -> None:
    method = make_authenticator(AUTH_MSCHAP_V2, AuthConfig(), SECRETS, random_bytes=lambda n: b"x")
    with pytest.raises(ValueError, match="random_bytes"):
        method.start(0.0)


# -- our client against our server ----------------------------------------------------------


@pytest.mark.parametrize("option", ALL, ids=IDS)
def test_success(option: bytes) -> None:
    srv, peer = server(option), client(option, "alice", "s3cret pass")
    talk(peer, srv)
    ours, theirs = final(srv), final(peer)
    assert ours.success and theirs.success, (ours.message, theirs.message)
    assert ours.method == theirs.method == NAMES[option]
    assert ours.peer_name == theirs.peer_name == "alice"
    assert ours.secret is not None and ours.secret.where == "chap-secrets:1"
    assert str(ours.secret.addresses.assigned_address()) == "198.18.0.20"
    assert "succeeded" in ours.message and "alice" in ours.message
    assert theirs.secret is None
    assert srv.next_deadline() is None and peer.next_deadline() is None
    if option in MSCHAP:
        assert ours.keys is not None and ours.keys == theirs.keys  # the same MPPE material on both sides
        assert ours.keys.version == (1 if option == AUTH_MSCHAP_V1 else 2)
        assert ours.keys.password_hash == nt_password_hash("s3cret pass")
        assert len(ours.keys.challenge) == (8 if option == AUTH_MSCHAP_V1 else 16)
        assert (ours.keys.lm_password_hash is not None) == (option == AUTH_MSCHAP_V1)
    else:
        assert ours.keys is None and theirs.keys is None


def test_server_name_wildcard_record_matches() -> None:
    srv, peer = server(AUTH_MSCHAP_V2, our_name="vpn1"), client(AUTH_MSCHAP_V2, "bob", "hunter2")
    talk(peer, srv)
    secret = final(srv).secret
    assert final(srv).success and secret is not None and secret.client == "bob"


@pytest.mark.parametrize("option", ALL, ids=IDS)
def test_wrong_password_fails_once_and_for_all_without_retry(option: bytes) -> None:
    srv, peer = server(option, max_attempts=1), client(option, "alice", "wrong")
    wire = talk(peer, srv)
    ours, theirs = final(srv), final(peer)
    assert not ours.success and not theirs.success
    assert "wrong password (secret at chap-secrets:1)" in ours.message and ours.secret is None and ours.keys is None
    assert "failed" in theirs.message
    last = wire[-1][1]
    if option == AUTH_PAP:
        assert (last.code, last.data) == (3, b"\x0fLogin incorrect")
    elif option == AUTH_CHAP_MD5:
        assert (last.code, last.data) == (4, b"Access denied")
    elif option == AUTH_MSCHAP_V1:
        assert re.fullmatch(rb"E=691 R=0 C=[0-9A-F]{16} V=2", last.data), last.data
        assert "E=691 ERROR_AUTHENTICATION_FAILURE" in theirs.message
    else:
        assert re.fullmatch(rb"E=691 R=0 C=[0-9A-F]{32} V=3 M=Authentication failed", last.data), last.data
        assert "E=691 ERROR_AUTHENTICATION_FAILURE" in theirs.message
        assert "'Authentication failed'" in theirs.message


@pytest.mark.parametrize("option", ALL, ids=IDS)
def test_unknown_user_fails_exactly_like_a_wrong_password(option: bytes) -> None:
    wrong_srv, wrong_peer = server(option, max_attempts=1), client(option, "alice", "wrong")
    unknown_srv, unknown_peer = server(option, max_attempts=1), client(option, "mallory", "wrong")
    wrong_wire, unknown_wire = talk(wrong_peer, wrong_srv), talk(unknown_peer, unknown_srv)
    # the same challenge (same seed), so the server's packets are byte for byte the same
    assert [p for who, p in wrong_wire if who == "server"] == [p for who, p in unknown_wire if who == "server"]
    assert final(wrong_peer).message == final(unknown_peer).message
    assert "no secret for client 'mallory' server 'pptpd'" in final(unknown_srv).message
    assert final(unknown_srv).peer_name == "mallory"


@pytest.mark.parametrize("option", CHAP, ids=IDS[1:])
def test_record_for_another_server_name_is_not_used(option: bytes) -> None:
    srv, peer = server(option, max_attempts=1), client(option, "carol", "nope")
    talk(peer, srv)
    assert not final(srv).success and "no secret for client 'carol'" in final(srv).message


@pytest.mark.parametrize("option", ALL, ids=IDS)
def test_domain_is_stripped_for_the_lookup_only_when_configured(option: bytes) -> None:
    srv, peer = server(option, strip_domain=True), client(option, "CORP\\alice", "s3cret pass")
    talk(peer, srv)
    assert final(srv).success and final(peer).success
    assert final(srv).peer_name == "CORP\\alice"  # the result keeps the name as sent
    srv, peer = server(option, max_attempts=1), client(option, "CORP\\alice", "s3cret pass")
    talk(peer, srv)
    assert not final(srv).success and "no secret for client 'CORP\\\\alice'" in final(srv).message


@pytest.mark.parametrize("option", ALL, ids=IDS)
def test_domain_name_matches_a_record_with_the_domain_when_not_stripped(option: bytes) -> None:
    # MS-CHAPv2 hashes the stripped name either way (RFC 2759 section 8.2); the lookup uses the full one
    srv, peer = server(option), client(option, "CORP\\dave", "d4ve")
    talk(peer, srv)
    assert final(srv).success and final(peer).success


# -- MS-CHAP retries (RFC 2759 section 6, RFC 2433 appendix B.1) -----------------------------------


def retry_response(option: bytes, failure: ControlPacket, user: str, password: str) -> ControlPacket:
    """What a client does after R=1 with new credentials: answer C= with Identifier + 1."""
    match = re.search(rb"C=([0-9A-F]+)", failure.data)
    assert match is not None
    fresh = client(option, user, password, seed=7)
    fresh.receive(chap(1, (failure.identifier + 1) & 0xFF, bytes.fromhex(match[1].decode()), b"pptpd"), 1.0)
    (response,) = sent(fresh)
    return response


@pytest.mark.parametrize("option", MSCHAP, ids=IDS[2:])
def test_retry_with_r1_then_success(option: bytes) -> None:
    srv, peer = server(option), client(option, "alice", "typo")
    lines: list[str] = []
    wire = talk(peer, srv, log=lines)
    who, failure = wire[-1]
    hex_digits = 32 if option == AUTH_MSCHAP_V2 else 16
    version = b"V=3 M=Authentication failed" if option == AUTH_MSCHAP_V2 else b"V=2"
    assert who == "server" and failure.code == 4
    assert re.fullmatch(rb"E=691 R=1 C=[0-9A-F]{%d} " % hex_digits + version, failure.data), failure.data
    assert srv.result is None  # waiting for the retry
    assert f"{NAMES[option]}: attempt 1 of 3 failed for 'alice'" in "\n".join(lines)
    assert not final(peer).success and "retry allowed (R=1)" in final(peer).message
    # the C= challenge is now the current one
    assert isinstance(srv, ChapAuthenticator)
    assert srv.challenge.hex().upper().encode() in failure.data
    retry = retry_response(option, failure, "alice", "s3cret pass")
    assert retry.identifier == (failure.identifier + 1) & 0xFF
    srv.receive(retry, 2.0)
    (success,) = sent(srv)
    assert (success.code, success.identifier) == (3, retry.identifier)
    keys = final(srv).keys
    assert final(srv).success and keys is not None and keys.challenge == srv.challenge


@pytest.mark.parametrize("option", MSCHAP, ids=IDS[2:])
def test_attempts_exhausted_end_in_r0(option: bytes) -> None:
    srv, peer = server(option, max_attempts=3), client(option, "alice", "typo")
    failure = talk(peer, srv)[-1][1]
    failures = [failure]
    for _ in range(2):
        srv.receive(retry_response(option, failure, "alice", "still wrong"), 1.0)
        (failure,) = sent(srv)
        failures.append(failure)
    assert [re.findall(rb"R=(\d)", f.data) for f in failures] == [[b"1"], [b"1"], [b"0"]]
    result = final(srv)
    assert not result.success and "attempt 3 of 3" in result.message
    # R=0 names the challenge that was just answered, not a new one
    assert isinstance(srv, ChapAuthenticator) and srv.challenge.hex().upper().encode() in failures[-1].data
    # and a further Response is no use
    srv.receive(retry_response(option, failures[-1], "alice", "s3cret pass"), 2.0)
    assert sent(srv) == [] and not final(srv).success


def test_retry_wait_times_out() -> None:
    srv, peer = server(AUTH_MSCHAP_V2), client(AUTH_MSCHAP_V2, "alice", "typo")
    talk(peer, srv, now=10.0)
    assert srv.result is None and srv.next_deadline() == 10.0 + 30.0
    srv.handle_timer(39.9)
    assert srv.result is None and sent(srv) == []
    srv.handle_timer(40.0)
    assert not final(srv).success and "no retry Response within 30 s" in final(srv).message
    assert sent(srv) == [] and srv.next_deadline() is None


def test_lost_failure_with_r1_is_resent_for_the_old_identifier() -> None:
    srv, peer = server(AUTH_MSCHAP_V2), client(AUTH_MSCHAP_V2, "alice", "typo")
    wire = talk(peer, srv)
    (response,) = [p for who, p in wire if who == "peer"]
    failure = wire[-1][1]
    srv.receive(response, 1.0)
    assert sent(srv) == [failure]


def test_mschap_v1_lm_only_response_is_refused() -> None:
    srv = server(AUTH_MSCHAP_V1, max_attempts=1)
    srv.start(0.0)
    (challenge,) = sent(srv)
    peer = client(AUTH_MSCHAP_V1, "alice", "s3cret pass")
    peer.receive(challenge, 0.0)
    (response,) = sent(peer)
    value = bytearray(response.data)
    value[49] = 0  # the "use NT response" flag
    srv.receive(ControlPacket(2, response.identifier, bytes(value)), 0.0)
    assert not final(srv).success and "LAN Manager" in final(srv).message


# -- RFC vectors through the packet path -----------------------------------------------------


def test_rfc2759_9_2_vector_through_packets() -> None:
    secrets = parse_secrets("User * clientPass *\n")
    srv = make_authenticator(
        AUTH_MSCHAP_V2, AuthConfig(), secrets, random_bytes=scripted(n1=b"\x07", n16=RFC2759_AUTH_CHALLENGE)
    )
    peer = make_peer(
        AUTH_MSCHAP_V2, AuthConfig(user="User", password="clientPass"), random_bytes=lambda n: RFC2759_PEER_CHALLENGE
    )
    wire = talk(peer, srv)
    (challenge, response, success) = [p for _, p in wire]
    assert (challenge.code, challenge.identifier) == (1, 7)
    assert challenge.data == b"\x10" + RFC2759_AUTH_CHALLENGE + b"pptpd"
    nt_response = bytes.fromhex("82309ECD8D708B5EA08FAA3981CD83544233114A3D85D6DF")
    assert response.data == b"\x31" + RFC2759_PEER_CHALLENGE + bytes(8) + nt_response + b"\x00User"
    assert success.data == b"S=407A5589115FD0D6209F510FE9C04566932CDA56 M=Access granted"
    keys = final(srv).keys
    assert keys is not None and keys == final(peer).keys
    assert keys.password_hash.hex().upper() == "44EBBA8D5312B8D611474411F56989AE"
    assert keys.password_hash_hash.hex().upper() == "41C00C584BD2D91C4017A2A12FA59F3F"
    assert keys.nt_response == nt_response and keys.challenge == RFC2759_AUTH_CHALLENGE


def test_rfc2433_b2_vector_through_packets() -> None:
    challenge_value = bytes.fromhex("102DB5DF085D3041")
    srv = make_authenticator(
        AUTH_MSCHAP_V1, AuthConfig(), parse_secrets("u * MyPw *\n"), random_bytes=scripted(n8=challenge_value)
    )
    peer = make_peer(AUTH_MSCHAP_V1, AuthConfig(user="u", password="MyPw"))
    wire = talk(peer, srv)
    (challenge, response, success) = [p for _, p in wire]
    assert challenge.data == b"\x08" + challenge_value + b"pptpd"
    nt_response = bytes.fromhex("4E9D3C8F9CFD385D5BF4D3246791956CA4C351AB409A3D61")
    assert response.data == b"\x31" + bytes(24) + nt_response + b"\x01u"
    assert (success.code, success.data) == (3, b"Access granted")
    keys = final(srv).keys
    assert keys is not None and keys == final(peer).keys
    assert keys.password_hash.hex().upper() == "FC156AF7EDCD6C0EDDE3337D427F4EAC"
    assert keys.lm_password_hash == lm_password_hash("MyPw")


def test_rfc3079_lm_hash_reaches_the_v1_keys() -> None:
    srv, peer = server(AUTH_MSCHAP_V1, parse_secrets("u * clientPass *\n")), client(AUTH_MSCHAP_V1, "u", "clientPass")
    talk(peer, srv)
    keys = final(srv).keys
    assert keys is not None and keys.lm_password_hash is not None
    assert keys.lm_password_hash.hex().upper() == "76A152936096D7830E2390227404AFD2"


def test_chap_md5_computed_example_through_packets() -> None:
    # shared/spec/auth.md section 3.1: Identifier 1, secret "secret", challenge 00..0F
    challenge_value = bytes(range(16))
    srv = make_authenticator(
        AUTH_CHAP_MD5,
        AuthConfig(),
        parse_secrets("u * secret *\n"),
        random_bytes=scripted(n1=b"\x01", n16=challenge_value),
    )
    peer = make_peer(AUTH_CHAP_MD5, AuthConfig(user="u", password="secret"))
    wire = talk(peer, srv)
    response = wire[1][1]
    assert response.encode() == bytes.fromhex("0201 0016 10 740E86463BDA3A4D7017D6E0FBA0699D 75")
    assert (wire[2][1].code, wire[2][1].data) == (3, b"Access granted")
    assert final(srv).success and final(peer).success


# -- real captures ---------------------------------------------------------------------------


def test_chapcrack_capture_replayed_through_the_authenticator() -> None:
    """pptpd's MS-CHAPv2 exchange with user moxie: our server sends the same three packets."""
    challenge_raw, response_raw, success_raw = _chap_packets()
    capture_challenge = decode_packet(challenge_raw)
    authenticator_challenge = capture_challenge.data[1:17]
    srv = make_authenticator(
        AUTH_MSCHAP_V2,
        AuthConfig(),
        parse_secrets(f"moxie pptpd {MOXIE_PASSWORD} *\n"),
        random_bytes=scripted(n1=bytes((capture_challenge.identifier,)), n16=authenticator_challenge),
    )
    srv.start(0.0)
    (challenge,) = sent(srv)
    assert challenge.encode() == challenge_raw  # identical, name "pptpd" included
    srv.receive(decode_packet(response_raw), 0.5)
    (success,) = sent(srv)
    assert success.encode() == success_raw
    assert success.data.startswith(b"S=54644F81E5F18C0EE9E26776495D6BC7ADDFB767 M=Access granted")
    result = final(srv)
    assert result.success and result.peer_name == "moxie" and result.keys is not None
    assert result.keys.nt_response == decode_packet(response_raw).data[25:49]


def test_chapcrack_capture_replayed_through_the_peer() -> None:
    """The client side sends the capture's Response when given its peer challenge, and checks S=."""
    challenge_raw, response_raw, success_raw = _chap_packets()
    peer_challenge = decode_packet(response_raw).data[1:17]
    peer = make_peer(
        AUTH_MSCHAP_V2, AuthConfig(user="moxie", password=MOXIE_PASSWORD), random_bytes=lambda n: peer_challenge
    )
    peer.receive(decode_packet(challenge_raw), 0.0)
    (response,) = sent(peer)
    assert response.encode() == response_raw
    peer.receive(decode_packet(success_raw), 0.1)
    assert final(peer).success and "Access granted" in final(peer).message
    wrong = make_peer(AUTH_MSCHAP_V2, AuthConfig(user="moxie", password="guess"), random_bytes=lambda n: peer_challenge)
    wrong.receive(decode_packet(challenge_raw), 0.0)
    sent(wrong)
    wrong.receive(decode_packet(success_raw), 0.1)  # S= computed for another password
    assert not final(wrong).success and "does not know our password" in final(wrong).message


def _pap_packets() -> list[tuple[str, bytes]]:
    """(source address, PAP packet) of the packetlife capture: an Ixia client and a Cisco server."""
    from scapy.layers.inet import IP
    from scapy.utils import rdpcap

    packets = []
    for frame in rdpcap(str(fixtures.capture("packetlife_PPTP_negotiation.cap"))):
        if IP not in frame or frame[IP].proto != 47:
            continue
        ip = frame[IP]
        raw = bytes(ip)[ip.ihl * 4 : ip.len]
        header = decode_header(raw)
        ppp = raw[header.header_size : header.header_size + header.payload_length]
        if ppp[:2] == b"\xff\x03":
            ppp = ppp[2:]
        if ppp[:2] == b"\xc0\x23":
            packets.append((ip.src, ppp[2:]))
    return packets


def test_packetlife_pap_exchange_replayed_both_ways() -> None:
    (client_address, request_raw), (server_address, ack_raw) = _pap_packets()
    assert client_address != server_address  # the Request from the Ixia client, the Ack from the Cisco server
    srv = make_authenticator(AUTH_PAP, AuthConfig(), parse_secrets("ixia * ixia *\n"))
    srv.start(0.0)
    srv.receive(decode_packet(request_raw), 0.1)
    (ack,) = sent(srv)
    assert (ack.code, ack.identifier, ack.data) == (2, 0, b"\x08Login ok")
    assert final(srv).success and final(srv).peer_name == "ixia"
    peer = make_peer(AUTH_PAP, AuthConfig(user="ixia", password="ixia"), random_bytes=lambda n: b"\x00")
    peer.start(0.0)
    (request,) = sent(peer)
    assert request.encode() == request_raw
    peer.receive(decode_packet(ack_raw), 0.1)  # Cisco's Ack has an empty message
    assert final(peer).success


# -- timers ----------------------------------------------------------------------------------


@pytest.mark.parametrize("option", CHAP, ids=IDS[1:])
def test_challenge_is_retransmitted_then_the_server_gives_up(option: bytes) -> None:
    srv = server(option, restart_timeout=2.0, max_challenges=4)
    srv.start(100.0)
    (first,) = sent(srv)
    assert first.code == 1 and srv.next_deadline() == 102.0
    srv.handle_timer(101.9)
    assert sent(srv) == []
    for attempt in range(3):
        now = 102.0 + 2.0 * attempt
        srv.handle_timer(now)
        assert sent(srv) == [first]  # same Identifier, same value
        assert srv.next_deadline() == now + 2.0
    srv.handle_timer(108.0)
    assert sent(srv) == [] and not final(srv).success
    assert "no Response to 4 Challenges" in final(srv).message and srv.next_deadline() is None
    srv.handle_timer(200.0)
    assert sent(srv) == []


def test_late_response_to_a_retransmitted_challenge_still_succeeds() -> None:
    srv, peer = server(AUTH_MSCHAP_V2), client(AUTH_MSCHAP_V2, "alice", "s3cret pass")
    srv.start(0.0)
    sent(srv)  # the first Challenge is lost
    srv.handle_timer(3.0)
    talk(peer, srv, 3.0, start=False)
    assert final(srv).success and final(peer).success


def test_pap_server_waits_pap_timeout() -> None:
    srv = server(AUTH_PAP, pap_timeout=30.0)
    assert srv.next_deadline() is None
    srv.start(5.0)
    assert sent(srv) == [] and srv.next_deadline() == 35.0
    srv.handle_timer(34.0)
    assert srv.result is None
    srv.handle_timer(35.0)
    assert not final(srv).success and "no Authenticate-Request within 30 s" in final(srv).message


def test_pap_peer_retransmits_with_new_identifiers_then_gives_up() -> None:
    peer = client(AUTH_PAP, "alice", "pw", restart_timeout=3.0, max_requests=3)
    peer.start(0.0)
    requests = sent(peer)
    for now in (3.0, 6.0):
        peer.handle_timer(now - 0.1)
        assert sent(peer) == []
        peer.handle_timer(now)
        requests += sent(peer)
    assert [r.data for r in requests] == [b"\x05alice\x02pw"] * 3
    first = requests[0].identifier
    assert [r.identifier for r in requests] == [first, (first + 1) & 0xFF, (first + 2) & 0xFF]
    peer.handle_timer(9.0)
    assert sent(peer) == [] and not final(peer).success and "no reply to 3" in final(peer).message


def test_pap_peer_accepts_a_late_ack_to_an_earlier_request() -> None:
    peer = client(AUTH_PAP, "alice", "pw")
    peer.start(0.0)
    (first,) = sent(peer)
    peer.handle_timer(3.0)
    sent(peer)
    peer.receive(ControlPacket(2, (first.identifier - 1) & 0xFF, b"\x00"), 3.5)
    assert peer.result is None and "answers no request" in quiet(peer)[0]
    peer.receive(ControlPacket(2, first.identifier, b"\x08Login ok"), 3.5)
    assert final(peer).success and "'Login ok'" in final(peer).message and peer.next_deadline() is None
    peer.handle_timer(100.0)
    assert sent(peer) == []


def test_pap_nak_is_a_failure_for_the_peer() -> None:
    peer = client(AUTH_PAP, "alice", "pw")
    peer.start(0.0)
    (request,) = sent(peer)
    peer.receive(ControlPacket(3, request.identifier, b"\x0fLogin incorrect"), 0.1)
    assert not final(peer).success and "'Login incorrect'" in final(peer).message
    peer.receive(ControlPacket(2, request.identifier, b"\x00"), 0.2)  # contradicts the result: logged, ignored
    assert not final(peer).success and "after the exchange ended" in quiet(peer)[0]


# -- repeated and stray packets --------------------------------------------------------------


@pytest.mark.parametrize("password", ["s3cret pass", "wrong"])
@pytest.mark.parametrize("option", CHAP, ids=IDS[1:])
def test_repeated_response_gets_the_same_code_again(option: bytes, password: str) -> None:
    srv, peer = server(option, max_attempts=1), client(option, "alice", password)
    wire = talk(peer, srv)
    (response,) = [p for who, p in wire if who == "peer"]
    reply = wire[-1][1]
    assert reply.code == (3 if password == "s3cret pass" else 4)
    result = srv.result
    for later in (1.0, 60.0):
        srv.receive(response, later)
        assert sent(srv) == [reply]
    assert srv.result is result
    # a repeated Success or Failure at the peer changes nothing and says nothing
    peer.receive(reply, 2.0)
    assert peer.drain() == ([], []) and final(peer).success == (password == "s3cret pass")


@pytest.mark.parametrize("password", ["s3cret pass", "wrong"])
def test_repeated_pap_request_gets_the_same_code_with_its_identifier(password: str) -> None:
    srv = server(AUTH_PAP)
    srv.start(0.0)
    srv.receive(pap_request(9, b"alice", password.encode()), 0.1)
    (reply,) = sent(srv)
    code = 2 if password == "s3cret pass" else 3
    assert (reply.code, reply.identifier) == (code, 9)
    srv.receive(pap_request(10, b"alice", b"anything at all"), 0.2)  # not judged again
    (again,) = sent(srv)
    assert (again.code, again.identifier, again.data) == (code, 10, reply.data)
    assert final(srv).success == (password == "s3cret pass")


@pytest.mark.parametrize("option", CHAP, ids=IDS[1:])
def test_response_with_another_identifier_is_discarded(option: bytes) -> None:
    srv = server(option)
    srv.start(0.0)
    (challenge,) = sent(srv)
    peer = client(option, "alice", "s3cret pass")
    peer.receive(challenge, 0.0)
    (response,) = sent(peer)
    stray = ControlPacket(2, (response.identifier + 5) & 0xFF, response.data)
    srv.receive(stray, 0.1)
    assert srv.result is None and "current Challenge is" in quiet(srv)[0]
    srv.receive(response, 0.2)
    assert final(srv).success


@pytest.mark.parametrize("option", CHAP, ids=IDS[1:])
def test_repeated_challenge_gets_the_same_response_and_a_new_one_a_new_response(option: bytes) -> None:
    peer = client(option, "alice", "x")
    challenge = chap(1, 40, bytes(range(8 if option == AUTH_MSCHAP_V1 else 16)), b"pptpd")
    peer.receive(challenge, 0.0)
    (first,) = sent(peer)
    peer.receive(challenge, 3.0)
    assert sent(peer) == [first]  # same peer challenge too, for MS-CHAPv2
    peer.receive(chap(1, 41, challenge.data[-6:0:-1]), 6.0)  # a new Identifier and value
    (second,) = sent(peer)
    assert second.identifier == 41 and second.data != first.data
    # Success for the old Identifier no longer counts
    peer.receive(ControlPacket(3, 40, b""), 6.5)
    assert peer.result is None and "answers no Response" in quiet(peer)[0]


def test_peer_ignores_outcomes_before_any_response_and_new_challenges_after_the_result() -> None:
    peer = client(AUTH_CHAP_MD5, "alice", "x")
    peer.receive(ControlPacket(3, 1, b"welcome"), 0.0)
    assert peer.result is None and "answers no Response" in quiet(peer)[0]
    peer.receive(chap(1, 1, b"\x01\x02"), 0.0)
    sent(peer)
    peer.receive(ControlPacket(3, 1, b"welcome"), 0.1)
    assert final(peer).success and "'welcome'" in final(peer).message
    peer.receive(chap(1, 2, b"\x03"), 100.0)
    assert "after the exchange ended" in quiet(peer)[0]


@pytest.mark.parametrize("option", ALL, ids=IDS)
def test_packets_for_the_other_role_are_discarded_with_a_log_line(option: bytes) -> None:
    srv, peer = server(option), client(option, "alice", "x")
    srv.start(0.0)
    sent(srv)
    own_codes = {1} if option == AUTH_PAP else {2}  # what an authenticator accepts
    for code in range(0, 9):
        if code not in own_codes:
            srv.receive(ControlPacket(code, 1, b"\x01\x00"), 0.0)
            assert len(quiet(srv)) == 1, code
        peer_codes = {2, 3} if option == AUTH_PAP else {1, 3, 4}
        if code not in peer_codes:
            peer.receive(ControlPacket(code, 1, b"\x01\x00"), 0.0)
            assert len(quiet(peer)) == 1, code
    assert srv.result is None and peer.result is None


@pytest.mark.parametrize("option", ALL, ids=IDS)
def test_server_discards_packets_before_start(option: bytes) -> None:
    srv = server(option)
    packet = (
        pap_request(1, b"alice", b"s3cret pass")
        if option == AUTH_PAP
        else chap(2, 1, bytes(49 if option in MSCHAP else 16), b"alice")
    )
    srv.receive(packet, 0.0)
    assert srv.result is None and len(quiet(srv)) == 1


# -- MS-CHAPv2 Success details (RFC 2759 section 5) ---------------------------------------------


def mschapv2_pair(flags: int = 0) -> tuple[AuthMethod, AuthMethod, ControlPacket]:
    """A server and a peer; the peer has answered the Challenge with Flags ``flags`` (response returned)."""
    srv, peer = server(AUTH_MSCHAP_V2), client(AUTH_MSCHAP_V2, "alice", "s3cret pass")
    srv.start(0.0)
    (challenge,) = sent(srv)
    peer.receive(challenge, 0.0)
    (response,) = sent(peer)
    data = bytearray(response.data)
    data[49] = flags
    return srv, peer, ControlPacket(2, response.identifier, bytes(data))


def test_non_zero_flags_get_a_success_without_m() -> None:
    srv, _, response = mschapv2_pair(flags=4)  # Windows 98
    srv.receive(response, 0.1)
    (success,) = sent(srv)
    assert re.fullmatch(rb"S=[0-9A-F]{40}", success.data)
    assert final(srv).success


@pytest.mark.parametrize(
    ("message", "why"),
    [
        (b"M=Access granted", "without an S="),
        (b"", "without an S="),
        (b"S=1234", "without an S="),
        (b"S=" + b"0" * 40 + b" M=ok", "does not know our password"),
    ],
)
def test_peer_refuses_a_success_with_a_missing_or_wrong_s(message: bytes, why: str) -> None:
    _, peer, response = mschapv2_pair()
    peer.receive(ControlPacket(3, response.identifier, message), 0.1)
    assert not final(peer).success and why in final(peer).message and final(peer).keys is None


def test_peer_accepts_a_lower_case_s() -> None:
    srv, peer, response = mschapv2_pair()
    srv.receive(response, 0.1)
    (success,) = sent(srv)
    peer.receive(ControlPacket(3, success.identifier, success.data[:42].lower().replace(b"s=", b"S=")), 0.2)
    assert final(peer).success


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (b"E=648 R=0 C=00000000000000000000000000000000 V=3 M=Password expired", "E=648 ERROR_PASSWD_EXPIRED"),
        (b"E=691 R=0 V=3 M=Authentication failure", "E=691 ERROR_AUTHENTICATION_FAILURE"),  # accel-ppp
        (b"E=12345 R=1", "E=12345 (unknown error); retry allowed"),
        (b"go away", "the server says 'go away'"),
        (b"E=x R=0", "the server says 'E=x R=0'"),
    ],
)
def test_peer_reads_failure_messages(message: bytes, expected: str) -> None:
    _, peer, response = mschapv2_pair()
    peer.receive(ControlPacket(4, response.identifier, message), 0.1)
    assert not final(peer).success and expected in final(peer).message


# -- malformed packets (CVE-2020-8597: never trust a length) --------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"",  # no Value-Size
        b"\x31",  # Value-Size 49, no value
        b"\x31" + bytes(48),  # one byte short
        b"\xff" + bytes(60),  # lying Value-Size
        b"\x30" + bytes(48) + b"alice",  # Value-Size 48
        b"\x32" + bytes(50) + b"alice",  # Value-Size 50
        b"\x10" + bytes(16) + b"alice",  # an MD5-sized value
    ],
    ids=hexid,
)
@pytest.mark.parametrize("option", MSCHAP, ids=IDS[2:])
def test_malformed_mschap_responses_are_discarded(option: bytes, data: bytes) -> None:
    srv = server(option)
    srv.start(0.0)
    (challenge,) = sent(srv)
    srv.receive(ControlPacket(2, challenge.identifier, data), 0.1)
    assert srv.result is None and "discarded" in quiet(srv)[0]
    peer = client(option, "alice", "s3cret pass")  # the exchange goes on as if nothing happened
    peer.receive(challenge, 0.2)
    srv.receive(sent(peer)[0], 0.3)
    assert final(srv).success


@pytest.mark.parametrize(
    "data", [b"", b"\x11" + bytes(16), b"\x0f" + bytes(15) + b"alice", b"\x11" + bytes(17)], ids=hexid
)
def test_malformed_md5_responses_are_discarded(data: bytes) -> None:
    srv = server(AUTH_CHAP_MD5)
    srv.start(0.0)
    (challenge,) = sent(srv)
    srv.receive(ControlPacket(2, challenge.identifier, data), 0.1)
    assert srv.result is None and "discarded" in quiet(srv)[0]


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x05alic",  # Peer-ID runs past the end
        b"\x05alice",  # no Passwd-Length
        b"\x05alice\x03pw",  # Passwd-Length lies
        b"\xffalice\x02pw",
        b"\x05alice\x02pwXX",  # bytes after the Password
    ],
    ids=hexid,
)
def test_malformed_pap_requests_are_discarded(data: bytes) -> None:
    srv = server(AUTH_PAP)
    srv.start(0.0)
    srv.receive(ControlPacket(1, 1, data), 0.1)
    assert srv.result is None and "malformed" in quiet(srv)[0]
    srv.receive(pap_request(2, b"alice", b"s3cret pass"), 0.2)
    assert final(srv).success


@pytest.mark.parametrize("data", [b"", b"\x09Login ok", b"\x02", b"\x01ab"], ids=hexid)
def test_malformed_pap_replies_are_discarded(data: bytes) -> None:
    peer = client(AUTH_PAP, "alice", "pw")
    peer.start(0.0)
    (request,) = sent(peer)
    peer.receive(ControlPacket(2, request.identifier, data), 0.1)
    assert peer.result is None and "malformed" in quiet(peer)[0]


@pytest.mark.parametrize("option", CHAP, ids=IDS[1:])
@pytest.mark.parametrize("data", [b"", b"\x10", b"\x10" + bytes(15), b"\xff" + bytes(40), b"\x00pptpd"], ids=hexid)
def test_malformed_or_empty_challenges_are_discarded(option: bytes, data: bytes) -> None:
    peer = client(option, "alice", "x")
    peer.receive(ControlPacket(1, 1, data), 0.0)
    assert "discarded" in quiet(peer)[0]


@pytest.mark.parametrize("option", MSCHAP, ids=IDS[2:])
def test_mschap_peer_wants_its_challenge_size(option: bytes) -> None:
    wrong = 16 if option == AUTH_MSCHAP_V1 else 8
    peer = client(option, "alice", "x")
    peer.receive(chap(1, 1, bytes(wrong), b"pptpd"), 0.0)
    assert "Value-Size" in quiet(peer)[0]


# -- names and secrets that are not UTF-8 ----------------------------------------------------------


@pytest.mark.parametrize("option", ALL, ids=IDS)
def test_names_and_secrets_that_are_not_utf8(option: bytes) -> None:
    record = ChapSecret("r\udce9my", "*", "pa\udcffss", AddressPolicy(), (), "test:1")
    secrets = ChapSecrets((record,))
    srv = server(option, secrets)
    peer = client(option, "r\udce9my", "pa\udcffss")
    wire = talk(peer, srv)
    assert final(srv).success and final(peer).success and final(srv).peer_name == "r\udce9my"
    assert b"r\xe9my" in wire[0 if option == AUTH_PAP else 1][1].data  # the raw byte on the wire
    srv = server(option, ChapSecrets((ChapSecret("x", "*", "\ud800", AddressPolicy(), (), "t:1"),)))
    talk(client(option, "x", "\ud800"), srv)
    assert srv.result is not None


# -- property: random packets never raise -------------------------------------------------------


class _AnyUser:
    """Every name has the secret "pw", so random Responses reach the verification code."""

    record = ChapSecret("*", "*", "pw", AddressPolicy(), (), "test:1")

    def lookup(self, client: str, server: str) -> ChapSecret | None:
        return self.record if client != "nobody" else None


_packets = st.one_of(
    st.builds(ControlPacket, st.integers(0, 255), st.integers(0, 255), st.binary(max_size=80)),
    st.builds(  # well-formed CHAP/PAP-like layouts with plausible sizes
        lambda code, ident, size, value, name: ControlPacket(code, ident, bytes((size,)) + value + name),
        st.integers(0, 5),
        st.integers(0, 255),
        st.sampled_from([0, 1, 8, 16, 49, 255]),
        st.binary(max_size=60),
        st.sampled_from([b"", b"nobody", b"CORP\\x", b"\xff\xfe", b"pw"]),
    ),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    option=st.sampled_from(ALL),
    side=st.sampled_from(["server", "peer"]),
    started=st.booleans(),
    steps=st.lists(st.tuples(_packets, st.floats(0, 5)), max_size=12),
)
def test_random_packets_never_raise(
    option: bytes, side: str, started: bool, steps: list[tuple[ControlPacket, float]]
) -> None:
    config = AuthConfig(user="u", password="pw", max_attempts=2)
    method = (
        make_authenticator(option, config, _AnyUser(), random_bytes=seeded(3))
        if side == "server"
        else make_peer(option, config, random_bytes=seeded(4))
    )
    now = 0.0
    if started:
        method.start(now)
    for packet, delay in steps:
        now += delay
        method.receive(packet, now)
        method.handle_timer(now)
        packets, lines = method.drain()
        for out in packets:
            assert decode_packet(out.encode()) == out
        assert all(isinstance(line, str) for line in lines)
        deadline = method.next_deadline()
        assert deadline is None or deadline >= now
    result = method.result
    assert result is None or isinstance(result, AuthResult)
    if result is not None and result.keys is not None:
        assert isinstance(result.keys, MsChapKeys) and result.success


def test_mschapv2_digest_authenticator_response_is_the_crypto_one() -> None:
    # the server's S= is generate_authenticator_response over what the peer sent
    srv, _, response = mschapv2_pair()
    srv.receive(response, 0.1)
    (success,) = sent(srv)
    assert isinstance(srv, ChapAuthenticator) and isinstance(srv.digest, MsChapV2Digest)
    value = response.data[1:50]
    expected = generate_authenticator_response(
        nt_password_hash("s3cret pass"), value[24:48], value[:16], srv.challenge, b"alice"
    )
    assert success.data == expected.encode() + b" M=Access granted"


def test_chap_peer_has_no_timer() -> None:
    peer = client(AUTH_MSCHAP_V2, "alice", "x")
    assert isinstance(peer, ChapPeer)
    peer.start(0.0)
    peer.handle_timer(1000.0)
    assert peer.drain() == ([], []) and peer.next_deadline() is None


# -- a broken check must fail these (issue 15): every byte that is checked, checked -----------------------
#
# Comparing only the first 16 of the 24 NT-Response bytes, or handing an authentication packet to a method
# other than the negotiated one, passed every test above.  Each test here starts from a response that
# succeeds (an RFC vector) and changes one thing.

RFC2759_RESPONSE = RFC2759_PEER_CHALLENGE + bytes(8) + bytes.fromhex("82309ECD8D708B5EA08FAA3981CD83544233114A3D85D6DF")
RFC2759_RESPONSE += b"\x00"  # Flags
RFC2433_CHALLENGE = bytes.fromhex("102DB5DF085D3041")
RFC2433_RESPONSE = bytes(24) + bytes.fromhex("4E9D3C8F9CFD385D5BF4D3246791956CA4C351AB409A3D61") + b"\x01"
MD5_CHALLENGE = bytes(range(16))  # shared/spec/auth.md section 3.1: Identifier 1, secret "secret"
MD5_RESPONSE = bytes.fromhex("740E86463BDA3A4D7017D6E0FBA0699D")
# what each method checks: MS-CHAPv2 the Peer-Challenge and the NT-Response (bytes 16-23 are reserved, the
# Flags byte is Windows 98's); MS-CHAPv1 the NT-Response (the LAN Manager response is not supported)
CHECKED = {
    AUTH_MSCHAP_V2: [*range(16), *range(24, 48)],
    AUTH_MSCHAP_V1: list(range(24, 48)),
    AUTH_CHAP_MD5: list(range(16)),
}
VECTORS = {  # option -> (secrets, challenge packet Identifier, challenge, good Response value, name)
    AUTH_MSCHAP_V2: (
        "User * clientPass *\nOther * clientPass *\n",
        7,
        RFC2759_AUTH_CHALLENGE,
        RFC2759_RESPONSE,
        b"User",
    ),
    AUTH_MSCHAP_V1: ("u * MyPw *\n", 7, RFC2433_CHALLENGE, RFC2433_RESPONSE, b"u"),
    AUTH_CHAP_MD5: ("u * secret *\n", 1, MD5_CHALLENGE, MD5_RESPONSE, b"u"),
}


def judged(option: bytes, value: bytes, name: bytes | None = None) -> int:
    """The code our authenticator answers the RFC vector's Challenge's Response ``value`` with (3 Success,
    4 Failure), from a fresh authenticator each time.  Checks that a Success and only a Success ends in
    a successful result."""
    secrets, identifier, challenge, _, user = VECTORS[option]
    size = f"n{len(challenge)}"
    srv = make_authenticator(
        option,
        AuthConfig(),
        parse_secrets(secrets),
        random_bytes=scripted(n1=bytes((identifier,)), **{size: challenge}),
    )
    srv.start(0.0)
    (sent_challenge,) = sent(srv)
    assert sent_challenge.data[1 : 1 + len(challenge)] == challenge
    srv.receive(chap(2, identifier, value, user if name is None else name), 0.0)
    (reply,) = sent(srv)
    assert reply.code in (3, 4)
    assert (srv.result is not None and srv.result.success) is (reply.code == 3)
    return reply.code


@pytest.mark.parametrize("option", list(VECTORS), ids=[NAMES[o] for o in VECTORS])
def test_the_rfc_vectors_succeed(option: bytes) -> None:
    """The starting point of the tests below: the unchanged Response succeeds."""
    assert judged(option, VECTORS[option][3]) == 3


@pytest.mark.parametrize(
    ("option", "position"),
    [(option, position) for option, positions in CHECKED.items() for position in positions],
    ids=[f"{NAMES[o]}-byte{p}" for o, positions in CHECKED.items() for p in positions],
)
def test_every_bit_of_every_checked_byte_matters(option: bytes, position: int) -> None:
    good = VECTORS[option][3]
    for mask in (*(1 << bit for bit in range(8)), 0xFF):
        changed = bytearray(good)
        changed[position] ^= mask
        assert judged(option, bytes(changed)) == 4, f"byte {position} ^ {mask:#04x} was accepted"


@pytest.mark.parametrize("option", list(VECTORS), ids=[NAMES[o] for o in VECTORS])
def test_a_truncated_or_shifted_response_fails(option: bytes) -> None:
    """A comparison of a prefix, or of the wrong slice, would pass some of these."""
    good = VECTORS[option][3]
    positions = CHECKED[option]
    first, last = positions[0], positions[-1] + 1
    for changed in (
        good[:first] + bytes(last - first) + good[last:],  # the checked bytes zeroed
        good[:first] + good[first + 1 : last] + b"\x00" + good[last:],  # shifted by one
        good[:first] + good[first:last][::-1] + good[last:],  # reversed
        good[: last - 8] + bytes(8) + good[last:],  # the last 8 checked bytes zeroed
    ):
        assert len(changed) == len(good)
        assert judged(option, changed) == 4


def test_mschap_v1_flag_zero_means_no_nt_response() -> None:
    """MS-CHAPv1's "use NT response" flag at 0: the LAN Manager response, which we do not support,
    even with a valid NT-Response in its place."""
    assert judged(AUTH_MSCHAP_V1, RFC2433_RESPONSE[:48] + b"\x00") == 4


def test_mschap_v2_binds_the_user_name() -> None:
    """RFC 2759 section 8.2: the Challenge Hash includes the user name; the same Response under another
    user's name fails, though both have the same password."""
    assert judged(AUTH_MSCHAP_V2, RFC2759_RESPONSE, b"Other") == 4


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(list(VECTORS)), st.data())
def test_a_random_response_never_succeeds(option: bytes, data: st.DataObject) -> None:
    value = data.draw(st.binary(min_size=len(VECTORS[option][3]), max_size=len(VECTORS[option][3])))
    if value != VECTORS[option][3]:
        assert judged(option, value) == 4


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(list(VECTORS)), st.data())
def test_a_changed_response_never_succeeds(option: bytes, data: st.DataObject) -> None:
    """Any non-empty set of checked bytes changed, in any way."""
    changes = data.draw(st.dictionaries(st.sampled_from(CHECKED[option]), st.integers(1, 255), min_size=1))
    value = bytearray(VECTORS[option][3])
    for position, mask in changes.items():
        value[position] ^= mask
    assert judged(option, bytes(value)) == 4


def pap_judged(user: bytes, password: bytes) -> int:
    srv = server(AUTH_PAP, parse_secrets("u * secret *\n"))
    srv.start(0.0)
    srv.receive(pap_request(1, user, password), 0.0)
    (reply,) = sent(srv)
    assert (srv.result is not None and srv.result.success) is (reply.code == 2)
    return reply.code


def test_pap_checks_every_byte_of_the_password() -> None:
    assert pap_judged(b"u", b"secret") == 2
    for position in range(6):
        for mask in (*(1 << bit for bit in range(8)), 0xFF):
            changed = bytearray(b"secret")
            changed[position] ^= mask
            assert pap_judged(b"u", bytes(changed)) == 3
    for password in (b"", b"s", b"secre", b"secret\x00", b"secrets", b"SECRET", b"secret" * 2):
        assert pap_judged(b"u", password) == 3
    assert pap_judged(b"v", b"secret") == 3


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=40))
def test_a_random_pap_password_never_succeeds(password: bytes) -> None:
    if password != b"secret":
        assert pap_judged(b"u", password) == 3


def test_the_peer_checks_every_digit_of_s() -> None:
    """RFC 2759 section 5: our client ends the session on a Success whose S= differs in any digit."""
    srv, peer, response = mschapv2_pair()
    srv.receive(response, 0.1)
    (success,) = sent(srv)
    peer.receive(success, 0.2)
    assert final(peer).success
    for position in range(2, 42):
        _, peer, response = mschapv2_pair()
        data = bytearray(success.data)
        data[position] = ord("0") if data[position] != ord("0") else ord("1")
        peer.receive(ControlPacket(3, response.identifier, bytes(data)), 0.2)
        assert not final(peer).success, f"S= digit {position - 2} changed was accepted"


# -- only the negotiated method authenticates (the link's dispatch; CVE-2020-8597's lesson) -----------------
#
# Our server and client links in memory (test_ppp_link.py), one packet held back at the moment a forged one
# of another method is delivered in its place; the held packet then still completes the exchange.


def auth_packet(frame: bytes) -> ControlPacket | None:
    """The packet of a PAP or CHAP frame, else None."""
    protocol, offset = parse_frame(frame)
    return decode_packet(frame[offset:]) if protocol in (AUTH_PROTOCOL_PAP, AUTH_PROTOCOL_CHAP) else None


def auth_wire(method: bytes, hold_to_server: int = 0, hold_to_client: int = 0) -> tuple[LinkWire, ControlPacket, bytes]:
    """Our links negotiating ``method``, run until quiet while the first PAP/CHAP frame of code
    ``hold_to_server`` (or ``hold_to_client``) is held back: the wire, that packet and its frame."""
    server_link = PppLink(
        link_server_config(method), secrets=LINK_SECRETS, random_bytes=rng_bytes(1), random32=counter32(1)
    )
    client_link = PppLink(link_client_config(), random_bytes=rng_bytes(2), random32=counter32(2))
    wire = LinkWire(server_link, client_link)
    server_link.open(wire.now)
    client_link.open(wire.now)
    held: list[bytes] = []
    for _ in range(200):
        frames_s, events_s = server_link.drain()
        frames_c, events_c = client_link.drain()
        wire.server_events += events_s
        wire.client_events += events_c
        if not frames_s and not frames_c:
            break
        for frames, link, code in ((frames_s, client_link, hold_to_client), (frames_c, server_link, hold_to_server)):
            for frame in frames:
                packet = auth_packet(frame)
                if packet is not None and packet.code == code and not held:
                    held.append(frame)
                else:
                    link.receive_frame(frame, wire.now)
    [frame] = held
    packet = auth_packet(frame)
    assert packet is not None
    return wire, packet, frame


def deliver_forged(link: PppLink, protocol: int, packets: list[ControlPacket]) -> None:
    """Each forged packet is dropped by the link as not negotiated: no reply, no result."""
    events: list[LinkEvent] = []
    for packet in packets:
        link.receive_frame(encode_frame(protocol, packet.encode()), 0.0)
        frames, more = link.drain()
        assert frames == [] and of(more, Authenticated) == []
        events += more
    assert any("not negotiated" in e.message for e in of(events, LinkLog))
    assert all(a.result is None for a in (link.auth_local, link.auth_remote) if a is not None)
    assert link.phase is Phase.AUTHENTICATE


def authenticated(events: list[LinkEvent], local: bool) -> list[bool]:
    return [e.result.success for e in of(events, Authenticated) if e.local is local]


@pytest.mark.parametrize("method", [AUTH_MSCHAP_V2, AUTH_MSCHAP_V1, AUTH_CHAP_MD5], ids=["mschapv2", "mschapv1", "md5"])
def test_a_pap_request_with_the_right_password_never_authenticates_a_chap_link(method: bytes) -> None:
    wire, response, frame = auth_wire(method, hold_to_server=2)  # the client's CHAP Response, held
    pap = [pap_request(identifier, b"alice", b"s3cret pass") for identifier in (1, 2, response.identifier)]
    deliver_forged(wire.server, AUTH_PROTOCOL_PAP, pap)
    wire.server.receive_frame(frame, wire.now)  # the negotiated method still works
    wire.exchange()
    assert authenticated(wire.server_events, local=True) == [True] and wire.server.phase is Phase.NETWORK


def test_chap_packets_never_authenticate_a_pap_link() -> None:
    wire, request, frame = auth_wire(AUTH_PAP, hold_to_server=1)  # the client's Authenticate-Request, held
    peer = client(AUTH_MSCHAP_V2, "alice", "s3cret pass")
    peer.receive(chap(1, request.identifier, bytes(16), b"pptpd"), 0.0)
    (response,) = sent(peer)
    forged = [response, chap(2, request.identifier, MD5_RESPONSE, b"alice"), chap(1, 9, bytes(16), b"pptpd")]
    deliver_forged(wire.server, AUTH_PROTOCOL_CHAP, forged)
    wire.server.receive_frame(frame, wire.now)
    wire.exchange()
    assert authenticated(wire.server_events, local=True) == [True] and wire.server.phase is Phase.NETWORK


@pytest.mark.parametrize("method", [AUTH_CHAP_MD5, AUTH_MSCHAP_V2], ids=["md5", "mschapv2"])
def test_our_chap_client_takes_its_outcome_only_from_chap(method: bytes) -> None:
    """A PAP Authenticate-Nak (code 3, like CHAP's Success) with our Response's Identifier is no CHAP
    Success: a link that handed it to the CHAP-MD5 peer would count itself authenticated by a server that
    never proved it knows the password; nor is a PAP Ack (2) or code 4 a CHAP Failure."""
    wire, success, frame = auth_wire(method, hold_to_client=3)  # the server's Success, held
    forged = [ControlPacket(code, success.identifier, data) for code in (3, 2, 4) for data in (b"\x00", success.data)]
    deliver_forged(wire.client, AUTH_PROTOCOL_PAP, forged)
    wire.client.receive_frame(frame, wire.now)
    wire.exchange()
    assert authenticated(wire.client_events, local=False) == [True] and wire.client.phase is Phase.NETWORK


def test_our_pap_client_takes_its_outcome_only_from_pap() -> None:
    """A CHAP Success (3) or Failure (4) with our request's Identifier is no PAP Nak (3) or Ack."""
    wire, ack, frame = auth_wire(AUTH_PAP, hold_to_client=2)  # the server's Authenticate-Ack, held
    forged = [ControlPacket(code, ack.identifier, ack.data) for code in (3, 4, 2)]
    deliver_forged(wire.client, AUTH_PROTOCOL_CHAP, forged)
    wire.client.receive_frame(frame, wire.now)
    wire.exchange()
    assert authenticated(wire.client_events, local=False) == [True] and wire.client.phase is Phase.NETWORK


@pytest.mark.parametrize(
    ("negotiated", "other"),
    [
        (AUTH_MSCHAP_V2, AUTH_MSCHAP_V1),
        (AUTH_MSCHAP_V2, AUTH_CHAP_MD5),
        (AUTH_MSCHAP_V1, AUTH_MSCHAP_V2),
        (AUTH_MSCHAP_V1, AUTH_CHAP_MD5),
        (AUTH_CHAP_MD5, AUTH_MSCHAP_V2),
        (AUTH_CHAP_MD5, AUTH_MSCHAP_V1),
    ],
    ids=["v2-gets-v1", "v2-gets-md5", "v1-gets-v2", "v1-gets-md5", "md5-gets-v2", "md5-gets-v1"],
)
def test_a_response_of_another_chap_algorithm_never_authenticates(negotiated: bytes, other: bytes) -> None:
    """CHAP's algorithm is LCP's choice, not the Response's: one computed with the right password by
    another algorithm over our Challenge (cut or doubled to the size that algorithm takes) is discarded
    (another Value-Size) or fails."""
    wire, challenge, _ = auth_wire(negotiated, hold_to_client=1)  # our Challenge, held from the client
    parsed = parse_value_name(challenge.data)
    assert not isinstance(parsed, str)
    size = 8 if other == AUTH_MSCHAP_V1 else 16
    impostor = client(other, "alice", "s3cret pass")
    impostor.receive(chap(1, challenge.identifier, (parsed[0] * 2)[:size], b"pptpd"), 0.0)
    (response,) = sent(impostor)
    server = wire.server
    server.receive_frame(encode_frame(AUTH_PROTOCOL_CHAP, response.encode()), 0.0)
    frames, events = server.drain()
    replies = [auth_packet(f) for f in frames]
    assert [p.code for p in replies if p is not None] in ([], [4])  # discarded, or a Failure
    assert not any(e.result.success for e in of(events, Authenticated))
    assert server.auth_local is not None and (server.auth_local.result is None or not server.auth_local.result.success)
