"""MS-CHAP primitives against the RFC vectors and a real MS-CHAPv2 exchange."""

from __future__ import annotations

import pytest

from pypptp.gre.codec import decode_header
from pypptp.ppp.crypto import (
    MAGIC1,
    MAGIC2,
    challenge_hash,
    challenge_response,
    check_authenticator_response,
    des_encrypt,
    expand_des_key,
    generate_authenticator_response,
    generate_nt_response,
    hash_nt_password_hash,
    lm_password_hash,
    md4,
    mschap1_nt_response,
    nt_password_hash,
    strip_domain,
)
from tests import fixtures


@pytest.mark.parametrize(
    ("message", "digest"),
    [  # RFC 1320 appendix A.5, the whole test suite
        (b"", "31d6cfe0d16ae931b73c59d7e0c089c0"),
        (b"a", "bde52cb31de33e46245e05fbdbd6fb24"),
        (b"abc", "a448017aaf21d8525fc10ae87aa6729d"),
        (b"message digest", "d9130a8164549fe818874806e1c7014b"),
        (b"abcdefghijklmnopqrstuvwxyz", "d79e1c308aa5bbcdeea8ed63df412da9"),
        (b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", "043f8582f241db351ce627e153e7f0e4"),
        (b"1234567890" * 8, "e33b4ddc9c38f2199c3e7b164fcc0536"),
    ],
)
def test_md4_rfc1320_suite(message: bytes, digest: str) -> None:
    assert md4(message).hex() == digest


@pytest.mark.parametrize("size", [55, 56, 63, 64, 65, 119, 120, 1000])
def test_md4_padding_boundaries_are_consistent(size: int) -> None:
    data = bytes(range(256)) * 4
    assert len(md4(data[:size])) == 16
    assert md4(data[:size]) != md4(data[: size + 1])


def test_des_key_expansion_rfc2433_b3() -> None:
    assert expand_des_key(bytes.fromhex("FC156AF7EDCD6C")).hex().upper() == "FD0B5B5E7F6E34D9"
    assert expand_des_key(bytes.fromhex("0EDDE3337D427F")).hex().upper() == "0E6E796737EA08FE"
    with pytest.raises(ValueError):
        expand_des_key(bytes(8))


def test_des_known_answer() -> None:
    # the classic DES example: key 01 23 45 67 89 AB CD EF, plaintext "Now is t";
    # our keys are the 56 bits without the parity bits (the low bit of each byte)
    key8 = bytes.fromhex("0123456789ABCDEF")
    bits = 0
    for byte in key8:
        bits = (bits << 7) | (byte >> 1)
    assert des_encrypt(bits.to_bytes(7, "big"), b"Now is t").hex() == "3fa40e8a984d4815"


def test_mschap_v1_rfc2433_b2() -> None:
    assert "MyPw".encode("utf-16-le").hex() == "4d00790050007700"
    assert nt_password_hash("MyPw").hex().upper() == "FC156AF7EDCD6C0EDDE3337D427F4EAC"
    response = mschap1_nt_response(bytes.fromhex("102DB5DF085D3041"), "MyPw")
    assert response.hex().upper() == "4E9D3C8F9CFD385D5BF4D3246791956CA4C351AB409A3D61"


def test_lm_password_hash_rfc3079() -> None:
    assert lm_password_hash("clientPass").hex().upper() == "76A152936096D7830E2390227404AFD2"


AUTH_CHALLENGE = bytes.fromhex("5B5D7C7D7B3F2F3E3C2C602132262628")
PEER_CHALLENGE = bytes.fromhex("21402324255E262A28295F2B3A337C7E")


def test_mschap_v2_rfc2759_9_2() -> None:
    assert len(MAGIC1) == 39 and len(MAGIC2) == 41
    assert challenge_hash(PEER_CHALLENGE, AUTH_CHALLENGE, b"User").hex().upper() == "D02E4386BCE91226"
    password_hash = nt_password_hash("clientPass")
    assert password_hash.hex().upper() == "44EBBA8D5312B8D611474411F56989AE"
    assert hash_nt_password_hash(password_hash).hex().upper() == "41C00C584BD2D91C4017A2A12FA59F3F"
    nt_response = generate_nt_response(AUTH_CHALLENGE, PEER_CHALLENGE, b"User", "clientPass")
    assert nt_response.hex().upper() == "82309ECD8D708B5EA08FAA3981CD83544233114A3D85D6DF"
    assert challenge_response(challenge_hash(PEER_CHALLENGE, AUTH_CHALLENGE, b"User"), password_hash) == nt_response
    expected = "S=407A5589115FD0D6209F510FE9C04566932CDA56"
    assert generate_authenticator_response(password_hash, nt_response, PEER_CHALLENGE, AUTH_CHALLENGE, b"User") == (
        expected
    )
    args = (password_hash, nt_response, PEER_CHALLENGE, AUTH_CHALLENGE, b"User")
    assert check_authenticator_response(expected, *args)
    assert check_authenticator_response(expected.lower().replace("s=", "S="), *args)
    assert not check_authenticator_response(expected[:-1] + "7", *args)
    assert not check_authenticator_response("S=", *args)


def test_domain_is_stripped_at_the_last_backslash() -> None:
    assert strip_domain(b"CORP\\alice") == b"alice"
    assert strip_domain(b"a\\b\\carol") == b"carol"
    assert strip_domain(b"bob") == b"bob"


def _chap_packets() -> list[bytes]:
    """The CHAP packets (code onwards) of the capture's three GRE packets."""
    from scapy.layers.inet import IP
    from scapy.utils import rdpcap

    packets = []
    for frame in rdpcap(str(fixtures.capture("chapcrack_tests_pptp.cap"))):
        ip = frame[IP]
        raw = bytes(ip)[ip.ihl * 4 : ip.len]
        header = decode_header(raw)
        ppp = raw[header.header_size : header.header_size + header.payload_length]
        if ppp[:2] == b"\xff\x03":
            ppp = ppp[2:]
        assert ppp[:2] == b"\xc2\x23", ppp[:4].hex()  # CHAP
        packets.append(ppp[2:])
    return packets


def test_real_mschapv2_exchange_reproduces_the_servers_success() -> None:
    """moxie0/chapcrack's capture: pptpd challenged a client; the password is known."""
    challenge, response, success = _chap_packets()
    assert (challenge[0], response[0], success[0]) == (1, 2, 3)  # Challenge, Response, Success
    assert challenge[4] == 16 and response[4] == 49
    authenticator_challenge = challenge[5:21]
    value = response[5:54]
    peer_challenge, nt_response, flags = value[:16], value[24:48], value[48]
    user_name = response[54 : int.from_bytes(response[2:4], "big")]
    assert user_name == b"moxie" and flags == 0
    password = "bPCFyF2uL1p5Lg5yrKmqmY"
    # the server's check: the NT-Response the client sent is what the password gives
    assert generate_nt_response(authenticator_challenge, peer_challenge, strip_domain(user_name), password) == (
        nt_response
    )
    authenticator = generate_authenticator_response(
        nt_password_hash(password), nt_response, peer_challenge, authenticator_challenge, strip_domain(user_name)
    )
    assert authenticator == "S=54644F81E5F18C0EE9E26776495D6BC7ADDFB767"
    message = success[4 : int.from_bytes(success[2:4], "big")]
    assert message.startswith(authenticator.encode())
    assert generate_nt_response(authenticator_challenge, peer_challenge, user_name, "wrong") != nt_response
