"""MPPE keys (RFC 3079) against the RFC vectors, and the codec (RFC 3078) against itself, a model of
the Linux kernel's ``ppp_mppe.c`` and a model of an RFC-literal stateful sender."""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable

import pytest
from cryptography.hazmat.decrepit.ciphers.algorithms import ARC4
from cryptography.hazmat.primitives.ciphers import Cipher
from hypothesis import given, settings
from hypothesis import strategies as st

import pypptp.ppp.mppe as mppe_module
from pypptp.ppp.auth import MsChapKeys
from pypptp.ppp.crypto import hash_nt_password_hash, lm_password_hash, nt_password_hash
from pypptp.ppp.mppe import (
    MPPE_OVERHEAD,
    MppeDecryptor,
    MppeEncryptor,
    change_key,
    get_asymmetric_start_key,
    get_master_key,
    get_new_key_from_sha,
    initial_session_key,
    key_length,
    start_keys,
)
from tests.strict_rc4 import StrictCipher, StrictOneShot, strict_rc4

__all__ = ["strict_rc4"]  # the fixture, used by name below


def h(text: str) -> bytes:
    return bytes.fromhex(text)


def rc4(key: bytes, data: bytes) -> bytes:
    return Cipher(ARC4(key), mode=None).encryptor().update(data)


# RFC 3079 section 3.5 inputs (the RFC 2759 section 9.2 exchange), ccp-mppe.md 6.4
PASSWORD_HASH_HASH = h("41 C0 0C 58 4B D2 D9 1C 40 17 A2 A1 2F A5 9F 3F")
NT_RESPONSE = h("82 30 9E CD 8D 70 8B 5E A0 8F AA 39 81 CD 83 54 42 33 11 4A 3D 85 D6 DF")
MASTER_KEY = h("FD EC E3 71 7A 8C 83 8C B3 88 E5 27 AE 3C DD 31")
SERVER_SEND_START = h("8B 7C DC 14 9B 99 3A 1B A1 18 CB 15 3F 56 DC CB")
SERVER_RECEIVE_START = h("D5 F0 E9 52 1E 3E A9 58 96 45 E8 60 51 C8 22 26")
V2_KEYS = MsChapKeys(2, nt_password_hash("clientPass"), PASSWORD_HASH_HASH, NT_RESPONSE, bytes(16))

# RFC 3079 section 2.5 (MS-CHAPv1), ccp-mppe.md 7
V1_CHALLENGE = h("10 2D B5 DF 08 5D 30 41")
V1_KEYS = MsChapKeys(
    1,
    nt_password_hash("clientPass"),
    hash_nt_password_hash(nt_password_hash("clientPass")),
    bytes(24),
    V1_CHALLENGE,
    lm_password_hash("clientPass"),
)

IP = 0x0021
PAYLOAD = bytes(range(256)) * 5 + bytes(120)  # 1400 bytes


# -- RFC 3079 vectors -----------------------------------------------------------------------------


def test_master_key_and_server_send_start_keys_rfc3079_3_5() -> None:
    assert get_master_key(PASSWORD_HASH_HASH, NT_RESPONSE) == MASTER_KEY
    assert get_asymmetric_start_key(MASTER_KEY, 16, send=True, server=True) == SERVER_SEND_START
    assert get_asymmetric_start_key(MASTER_KEY, 8, send=True, server=True) == SERVER_SEND_START[:8]
    assert get_asymmetric_start_key(MASTER_KEY, 16, send=False, server=True) == SERVER_RECEIVE_START  # computed


@pytest.mark.parametrize(
    ("bits", "start", "session", "rc4_test_message"),
    [
        (
            128,
            SERVER_SEND_START,
            "40 5C B2 24 7A 79 56 E6 E2 11 00 7A E2 7B 22 D4",
            "81 84 83 17 DF 68 84 62 72 FB 5A BE",
        ),
        (40, SERVER_SEND_START[:8], "D1 26 9E C4 9F A6 2E 3E", "92 91 37 91 7E 58 03 D6 68 D7 58 98"),
        # RFC 3079 3.5.2 prints the last byte as 58 (and calls the key SendSessionKey40): B8 recomputed
        (56, SERVER_SEND_START[:8], "D1 5C 00 C4 9F A6 2E 3E", "3F 10 68 33 FA 44 8D A8 42 BC 57 B8"),
    ],
    ids=["128", "40", "56"],
)
def test_initial_session_keys_and_rc4_samples_rfc3079_3_5(
    bits: int, start: bytes, session: str, rc4_test_message: str
) -> None:
    key = initial_session_key(start, bits)
    assert key == h(session)
    assert rc4(key, b"test message") == h(rc4_test_message)


def test_server_receive_initial_keys_computed_vectors() -> None:
    assert initial_session_key(SERVER_RECEIVE_START, 128) == h("49 D1 1D 0F 0C C6 BE FB A2 A9 B4 B6 88 F9 1E EE")
    assert initial_session_key(SERVER_RECEIVE_START[:8], 40) == h("D1 26 9E D2 AE 99 90 38")


@pytest.mark.parametrize(
    ("start", "first", "second"),
    [
        (
            SERVER_SEND_START,
            "72 6F 10 50 0E 2B 54 13 5B 1B 74 D7 68 2F 04 71",
            "28 05 BC 78 69 BE C8 25 57 3A 78 03 E9 5A 3A CD",
        ),
        (
            SERVER_RECEIVE_START,
            "0E 09 C1 08 10 1D FD DE F6 C0 E2 F2 D9 5D 0B AD",
            "03 27 34 39 AC 5F 94 C9 7F 13 D9 13 3D F4 DF C5",
        ),
    ],
    ids=["server-send", "server-receive"],
)
def test_key_change_vectors(start: bytes, first: str, second: str) -> None:
    key = initial_session_key(start, 128)
    key = change_key(start, key, 128)
    assert key == h(first)
    assert change_key(start, key, 128) == h(second)


def test_40_bit_key_change_vector_and_the_sha_step() -> None:
    start = SERVER_SEND_START[:8]
    assert change_key(start, initial_session_key(start, 40), 40) == h("D1 26 9E CE 4D 98 D1 81")
    assert get_new_key_from_sha(SERVER_SEND_START, SERVER_SEND_START, 16) == initial_session_key(SERVER_SEND_START, 128)


def test_first_stateless_packet_ccp_mppe_6_4() -> None:
    encryptor = MppeEncryptor(SERVER_SEND_START, 128)
    packet = encryptor.encrypt(IP, h("45 00 00"))
    assert packet == h("90 00 70 58 13 2B E0")  # A|D, count 0, then RC4(00 21 45 00 00) after one key change
    assert encryptor.count == 0 and encryptor.key_changes == 1


def test_v2_start_keys_match_across_the_link() -> None:
    for bits in (40, 56, 128):
        server_send, server_receive = start_keys(V2_KEYS, bits, server=True)
        client_send, client_receive = start_keys(V2_KEYS, bits, server=False)
        assert server_send == client_receive == SERVER_SEND_START[: key_length(bits)]
        assert server_receive == client_send == SERVER_RECEIVE_START[: key_length(bits)]


def test_v1_keys_rfc3079_2_5() -> None:
    lm_start, same = start_keys(V1_KEYS, 40, server=True)
    assert lm_start == same == h("76 A1 52 93 60 96 D7 83")  # first 8 bytes of LmPasswordHash
    assert get_new_key_from_sha(lm_start, lm_start, 8) == h("D8 08 01 53 8C EC 4A 08")
    assert initial_session_key(lm_start, 40) == h("D1 26 9E 53 8C EC 4A 08")
    assert start_keys(V1_KEYS, 56, server=False) == (lm_start, lm_start)
    assert initial_session_key(lm_start, 56) == h("D1 08 01 53 8C EC 4A 08")
    # Get_Start_Key: RFC 3079 2.5.3 prints "AC CA D1" in step 3 and "AC C1 D1" in step 4; C1 recomputed
    get_start_key = h("A8 94 78 50 CF C0 AC C1 D1 78 9F B6 2D DC DD B0")
    assert start_keys(V1_KEYS, 128, server=True) == (get_start_key, get_start_key)
    assert initial_session_key(get_start_key, 128) == h("59 D1 59 BC 09 F7 6F 1D A2 A8 6A 28 FF EC 0B 1E")


def test_v1_40_bit_without_the_lm_hash_uses_the_nt_based_key_as_linux_would() -> None:
    keys = MsChapKeys(1, V1_KEYS.password_hash, V1_KEYS.password_hash_hash, bytes(24), V1_CHALLENGE)
    assert start_keys(keys, 40, server=True) == (h("A8 94 78 50 CF C0 AC C1"),) * 2


def test_derivation_rejects_what_it_cannot_do() -> None:
    with pytest.raises(ValueError):
        key_length(64)
    with pytest.raises(ValueError):
        get_asymmetric_start_key(MASTER_KEY, 12, send=True, server=True)
    with pytest.raises(ValueError):
        start_keys(MsChapKeys(3, bytes(16), bytes(16), bytes(24), bytes(16)), 128, server=True)
    with pytest.raises(ValueError):
        MppeEncryptor(SERVER_SEND_START[:8], 128)  # a 128-bit start key is 16 bytes
    with pytest.raises(ValueError):
        MppeDecryptor(SERVER_SEND_START, 40)


# -- the codec, our sender to our receiver ----------------------------------------------------------


def pair(bits: int, stateful: bool, *, server_sends: bool = True) -> tuple[MppeEncryptor, MppeDecryptor]:
    """An encryptor on one side of the link and the decryptor on the other, keys from one exchange."""
    send, _ = start_keys(V2_KEYS, bits, server=server_sends)
    _, receive = start_keys(V2_KEYS, bits, server=not server_sends)
    return MppeEncryptor(send, bits, stateful=stateful), MppeDecryptor(receive, bits, stateful=stateful)


def ipv4_checksum(header: bytes | bytearray) -> bytes:
    """The Internet checksum (RFC 1071) of ``header``, its checksum field zero."""
    total = sum(int.from_bytes(header[i : i + 2], "big") for i in range(0, len(header), 2))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return (~total & 0xFFFF).to_bytes(2, "big")


def payload(n: int) -> bytes:
    """An IPv4 packet of 24 to 48 bytes, numbered ``n``: version 4, IHL 5, total length and header
    checksum right, as a peer sends them (a stateless receiver checks all that after a loss)."""
    body = n.to_bytes(4, "big") * (5 + n % 7)
    packet = bytearray(b"\x45\x00" + (len(body) + 4).to_bytes(2, "big") + body)
    packet[10:12] = bytes(2)
    packet[10:12] = ipv4_checksum(packet[:20])
    return bytes(packet)


def test_payloads_are_valid_ipv4_packets() -> None:
    for n in range(20):
        packet = payload(n)
        assert packet[0] == 0x45 and int.from_bytes(packet[2:4], "big") == len(packet) >= 24
        assert ipv4_checksum(packet[:20]) == bytes(2)  # a valid header sums to 0xFFFF


MODES = [(bits, stateful) for bits in (40, 56, 128) for stateful in (False, True)]
MODE_IDS = [f"{bits}-{'stateful' if stateful else 'stateless'}" for bits, stateful in MODES]


@pytest.mark.parametrize(("bits", "stateful"), MODES, ids=MODE_IDS)
@pytest.mark.parametrize("server_sends", [True, False], ids=["server-to-client", "client-to-server"])
def test_round_trip(bits: int, stateful: bool, server_sends: bool) -> None:
    encryptor, decryptor = pair(bits, stateful, server_sends=server_sends)
    for n in range(600):  # past two stateful flag packets
        protocol = (0x0021, 0x0057, 0x002D, 0x00FA)[n % 4]
        packet = encryptor.encrypt(protocol, payload(n))
        assert len(packet) == len(payload(n)) + MPPE_OVERHEAD
        assert decryptor.decrypt(packet) == (protocol, payload(n))
    assert encryptor.count == 599
    assert encryptor.key_changes == (600 if not stateful else 2) == decryptor.key_changes
    assert not any(decryptor.dropped.values())
    assert not decryptor.take_reset_request()


@pytest.mark.parametrize("stateful", [False, True], ids=["stateless", "stateful"])
def test_coherency_count_wraps_at_4096(stateful: bool) -> None:
    encryptor, decryptor = pair(128, stateful)
    counts = []
    for n in range(4096 + 300):
        packet = encryptor.encrypt(IP, payload(n))
        counts.append((packet[0] & 0x0F) << 8 | packet[1])
        assert decryptor.decrypt(packet) == (IP, payload(n))
    assert counts == [n % 4096 for n in range(4096 + 300)]
    assert encryptor.key_changes == decryptor.key_changes == (4396 if not stateful else 17)


def test_inputs_of_every_buffer_type() -> None:
    encryptor, decryptor = pair(128, True)
    for kind in (bytes, bytearray, memoryview):
        packet = encryptor.encrypt(IP, kind(PAYLOAD))
        assert decryptor.decrypt(kind(packet)) == (IP, PAYLOAD)


@pytest.mark.parametrize("protocol", [0x0000, 0x0001, 0x0020, 0x00FB, 0x00FD, 0x8021, 0xC021, 0xC223])
def test_only_protocols_0x21_to_0xfa_are_encrypted(protocol: int) -> None:
    encryptor, _ = pair(128, False)
    with pytest.raises(ValueError):
        encryptor.encrypt(protocol, b"x")
    assert encryptor.count == 4095  # nothing sent


def test_header_bits_stateless_every_packet_flushed() -> None:
    encryptor, _ = pair(40, False)
    headers = [encryptor.encrypt(IP, b"x")[:2] for _ in range(300)]
    assert headers == [bytes((0x90 | n >> 8, n & 0xFF)) for n in range(300)]


def test_header_bits_stateful_as_linux() -> None:
    encryptor, _ = pair(128, True)
    headers = [encryptor.encrypt(IP, b"x")[:2] for _ in range(600)]
    # count 0 with the initial key and no A; A only on flag packets (count low byte 0xFF)
    assert headers[0] == h("10 00")
    assert [n for n, header in enumerate(headers) if header[0] & 0x80] == [255, 511]
    assert all(header[0] & 0x70 == 0x10 for header in headers)


def test_stateful_first_packet_uses_the_initial_key() -> None:
    encryptor = MppeEncryptor(SERVER_SEND_START, 128, stateful=True)
    packet = encryptor.encrypt(IP, h("45 00 00"))
    assert packet == h("10 00") + rc4(initial_session_key(SERVER_SEND_START, 128), h("00 21 45 00 00"))
    assert encryptor.key_changes == 0


@pytest.mark.parametrize("stateful", [False, True], ids=["stateless", "stateful"])
def test_pfc_compressed_inner_protocol_is_accepted(stateful: bool) -> None:
    start = SERVER_SEND_START
    key = initial_session_key(start, 128)
    if not stateful:
        key = change_key(start, key, 128)
    header = h("90 00") if not stateful else h("10 00")
    decryptor = MppeDecryptor(start, 128, stateful=stateful)
    assert decryptor.decrypt(header + rc4(key, b"\x21" + PAYLOAD)) == (0x21, PAYLOAD)
    assert decryptor.decrypt(b"\x90\x01" if not stateful else b"\x10\x01") is None  # short


# -- stateless synchronisation (RFC 3078 section 8.1) -------------------------------------------------


def test_stateless_loss_is_bridged_by_key_changes() -> None:
    encryptor, decryptor = pair(128, False)
    packets = [encryptor.encrypt(IP, payload(n)) for n in range(3000)]
    rng = random.Random(7)
    kept = [n for n in range(3000) if rng.random() > 0.3]
    for n in kept:
        assert decryptor.decrypt(packets[n]) == (IP, payload(n))
    assert decryptor.key_changes == kept[-1] + 1  # one per count, lost or not
    assert not any(decryptor.dropped.values())


def test_stateless_burst_loss_up_to_2047_is_honoured() -> None:
    encryptor, decryptor = pair(128, False)
    packets = [encryptor.encrypt(IP, payload(n)) for n in range(2050)]
    assert decryptor.decrypt(packets[0]) == (IP, payload(0))
    assert decryptor.decrypt(packets[2047]) == (IP, payload(2047))  # 2047 ahead: accepted
    assert decryptor.key_changes == 2048
    assert decryptor.decrypt(packets[2048]) == (IP, payload(2048))


def test_stateless_late_and_duplicate_packets_are_dropped_without_key_work() -> None:
    encryptor, decryptor = pair(128, False)
    packets = [encryptor.encrypt(IP, payload(n)) for n in range(2100)]
    for n in range(10):
        decryptor.decrypt(packets[n])
    changes = decryptor.key_changes
    assert decryptor.decrypt(packets[9]) is None  # duplicate
    assert decryptor.decrypt(packets[5]) is None  # late: 4092 ahead, i.e. 4 behind
    assert decryptor.decrypt(packets[2057]) is None  # 2048 ahead: taken for late too
    assert decryptor.key_changes == changes  # none of that cost a key change (Linux's old bug: 4092)
    assert decryptor.dropped["duplicate"] == 1 and decryptor.dropped["late"] == 2
    assert decryptor.decrypt(packets[10]) == (IP, payload(10))  # the state was left alone


def test_stateless_reordering_loses_only_the_late_packet() -> None:
    encryptor, decryptor = pair(128, False)
    packets = [encryptor.encrypt(IP, payload(n)) for n in range(6)]
    order = [0, 2, 1, 3, 5, 4]
    results = [decryptor.decrypt(packets[n]) for n in order]
    assert results == [(IP, payload(0)), (IP, payload(2)), None, (IP, payload(3)), (IP, payload(5)), None]
    assert decryptor.dropped["late"] == 2


def test_stateless_receiver_insists_on_d_and_a() -> None:
    encryptor, decryptor = pair(128, False)
    packet = encryptor.encrypt(IP, PAYLOAD)
    assert decryptor.decrypt(bytes([packet[0] & ~0x10]) + packet[1:]) is None
    assert decryptor.decrypt(bytes([packet[0] & ~0x80]) + packet[1:]) is None
    assert decryptor.dropped["unencrypted"] == 1 and decryptor.dropped["not flushed"] == 1
    assert decryptor.decrypt(packet) == (IP, PAYLOAD)


def test_stateless_garbage_does_not_move_the_keys() -> None:
    encryptor, decryptor = pair(128, False)
    packets = [encryptor.encrypt(IP, payload(n)) for n in range(5)]
    assert decryptor.decrypt(packets[0]) == (IP, payload(0))
    forged = packets[4][:2] + bytes([packets[4][2] ^ 0x02]) + packets[4][3:]  # decrypts to protocol 0x0221
    assert decryptor.decrypt(forged) is None and decryptor.dropped["implausible jump"] == 1  # 4 ahead
    forged = packets[1][:2] + bytes([packets[1][2] ^ 0x02]) + packets[1][3:]
    assert decryptor.decrypt(forged) is None and decryptor.dropped["bad protocol"] == 1  # the next count
    for n in range(1, 5):
        assert decryptor.decrypt(packets[n]) == (IP, payload(n))


def test_stateless_reset_request_changes_nothing() -> None:
    encryptor, decryptor = pair(128, False)
    encryptor.reset_requested()
    packet = encryptor.encrypt(IP, PAYLOAD)
    assert packet[:2] == h("90 00") and encryptor.key_changes == 1
    assert decryptor.decrypt(packet) == (IP, PAYLOAD)
    assert not decryptor.take_reset_request()


# -- stateful synchronisation (RFC 3078 section 8.2, as Linux does it) ------------------------------


def test_stateful_loss_reset_and_resynchronisation() -> None:
    encryptor, decryptor = pair(128, True)
    for n in range(10):
        assert decryptor.decrypt(encryptor.encrypt(IP, payload(n))) == (IP, payload(n))
    encryptor.encrypt(IP, payload(10))  # lost
    assert decryptor.decrypt(encryptor.encrypt(IP, payload(11))) is None
    assert decryptor.discarding
    assert decryptor.take_reset_request() is True
    assert decryptor.take_reset_request() is False  # once per loss
    assert decryptor.decrypt(encryptor.encrypt(IP, payload(12))) is None  # still discarding
    assert not decryptor.take_reset_request()
    encryptor.reset_requested()
    encryptor.reset_requested()  # a repeated Reset-Request before the next packet: one key change
    changes = encryptor.key_changes
    packet = encryptor.encrypt(IP, payload(13))
    assert packet[0] & 0x80 and encryptor.key_changes == changes + 1
    assert decryptor.decrypt(packet) == (IP, payload(13))
    assert not decryptor.discarding
    for n in range(14, 700):  # across flag packets
        assert decryptor.decrypt(encryptor.encrypt(IP, payload(n))) == (IP, payload(n))
    assert decryptor.dropped["lost"] == 1 and decryptor.dropped["discarding"] == 1
    assert encryptor.key_changes == decryptor.key_changes


@pytest.mark.parametrize("lost", [1, 200, 256, 300, 1000, 3000], ids=lambda n: f"lost{n}")
def test_stateful_loss_across_flag_packets(lost: int) -> None:
    encryptor, decryptor = pair(40, True)
    for n in range(250):
        assert decryptor.decrypt(encryptor.encrypt(IP, payload(n))) == (IP, payload(n))
    for n in range(250, 250 + lost):
        encryptor.encrypt(IP, payload(n))  # lost, flag packets among them
    assert decryptor.decrypt(encryptor.encrypt(IP, b"next")) is None
    assert decryptor.take_reset_request()
    encryptor.reset_requested()
    packet = encryptor.encrypt(IP, payload(9999))  # an IP packet: a resynchronisation must be plausible
    assert decryptor.decrypt(packet) == (IP, payload(9999))
    for n in range(600):
        assert decryptor.decrypt(encryptor.encrypt(IP, payload(n))) == (IP, payload(n))


def test_stateful_duplicate_is_dropped_without_a_reset() -> None:
    encryptor, decryptor = pair(128, True)
    packet = encryptor.encrypt(IP, PAYLOAD)
    assert decryptor.decrypt(packet) == (IP, PAYLOAD)
    assert decryptor.decrypt(packet) is None
    assert decryptor.dropped["duplicate"] == 1 and not decryptor.take_reset_request()
    assert decryptor.decrypt(encryptor.encrypt(IP, b"more")) == (IP, b"more")


def test_stateful_garbage_asks_for_a_reset() -> None:
    encryptor, decryptor = pair(128, True)
    assert decryptor.decrypt(encryptor.encrypt(IP, PAYLOAD)) == (IP, PAYLOAD)
    packet = encryptor.encrypt(IP, PAYLOAD)
    assert decryptor.decrypt(packet[:2] + bytes(x ^ 0x02 for x in packet[2:])) is None
    assert decryptor.dropped["bad protocol"] == 1 and decryptor.take_reset_request() and decryptor.discarding
    encryptor.reset_requested()
    assert decryptor.decrypt(encryptor.encrypt(IP, payload(2))) == (IP, payload(2))


def test_stateful_lost_flushed_packet_is_found_by_the_search() -> None:
    """Linux's sender changes key once per Reset-Request it acts on: when the A packet answering the
    first request is lost, the next one is two changes ahead."""
    encryptor, decryptor = pair(128, True)
    assert decryptor.decrypt(encryptor.encrypt(IP, b"0")) == (IP, b"0")
    encryptor.encrypt(IP, b"lost")
    assert decryptor.decrypt(encryptor.encrypt(IP, b"gap")) is None and decryptor.take_reset_request()
    encryptor.reset_requested()
    encryptor.encrypt(IP, b"flushed, lost")
    assert decryptor.decrypt(encryptor.encrypt(IP, b"discarded")) is None
    assert decryptor.discarding  # the link repeats its Reset-Request on its timer
    encryptor.reset_requested()
    assert decryptor.decrypt(encryptor.encrypt(IP, payload(5))) == (IP, payload(5))  # plausible: IPv4
    assert decryptor.decrypt(encryptor.encrypt(IP, b"in step")) == (IP, b"in step")


def test_stateful_flag_packet_without_a_from_an_rfc_sender_changes_key() -> None:
    start = SERVER_SEND_START
    key = initial_session_key(start, 128)
    stream = Cipher(ARC4(key), mode=None).encryptor()
    decryptor = MppeDecryptor(start, 128, stateful=True)
    for n in range(255):
        packet = bytes((0x10 | n >> 8, n & 0xFF)) + stream.update(b"\x00\x21" + payload(n))
        assert decryptor.decrypt(packet) == (IP, payload(n))
    key = change_key(start, key, 128)
    assert decryptor.decrypt(h("10 FF") + rc4(key, b"\x00\x21flag")) == (IP, b"flag")


# -- interoperation with Linux (a model of drivers/net/ppp/ppp_mppe.c and ppp_generic's gating) ------


class LinuxMppe:
    """One direction of Linux's MPPE, as read from ``ppp_mppe.c`` (behaviour only), for these tests.

    Sender: count from 4095; a key change (and A) when stateless, on a flag packet, or after a
    Reset-Request; no A on the first stateful packet.  Receiver: stateless rekeys up to the count
    (late packets more than 2048 behind dropped); stateful expects count + 1, else discards until an
    A packet, then rekeys once per 256-block crossed and once for the A.  ppp_generic stops feeding
    the decompressor after an error until pppd gets the Reset-Ack (``error``).
    """

    def __init__(self, start_key: bytes, bits: int, *, stateful: bool) -> None:
        self.start_key, self.bits, self.stateful = start_key, bits, stateful
        self.key = initial_session_key(start_key, bits)
        self.stream = Cipher(ARC4(self.key), mode=None).encryptor()
        self.count = 4095
        self.flush_next = False
        self.discard = False
        self.error = False

    def rekey(self) -> None:
        self.key = change_key(self.start_key, self.key, self.bits)
        self.stream = Cipher(ARC4(self.key), mode=None).encryptor()

    def compress(self, protocol: int, data: bytes) -> bytes:
        self.count = (self.count + 1) % 4096
        bits = 0x10
        if not self.stateful or self.count & 0xFF == 0xFF or self.flush_next:
            self.rekey()
            bits |= 0x80
        self.flush_next = False
        return bytes((bits | self.count >> 8, self.count & 0xFF)) + self.stream.update(
            protocol.to_bytes(2, "big") + data
        )

    def decompress(self, packet: bytes) -> tuple[int, bytes] | None:
        """None: an error, after which pppd sends a Reset-Request (and this side waits for the Ack)."""
        if self.error:
            return None
        result = self._decompress(packet)
        if result is None:
            self.error = True
        return result

    def _decompress(self, packet: bytes) -> tuple[int, bytes] | None:
        if len(packet) <= 2:
            return None
        flushed = packet[0] & 0x80
        count = (packet[0] & 0x0F) << 8 | packet[1]
        if not packet[0] & 0x10 or (not self.stateful and not flushed):
            return None
        if self.stateful and count & 0xFF == 0xFF and not flushed:
            return None
        if not self.stateful:
            if (count - self.count) % 4096 > 2048:
                return None
            while self.count != count:
                self.rekey()
                self.count = (self.count + 1) % 4096
        else:
            if not self.discard:
                self.count = (self.count + 1) % 4096
                if count != self.count:
                    self.discard = True
                    return None
            elif not flushed:
                return None
            else:
                while count & ~0xFF != self.count & ~0xFF:
                    self.rekey()
                    self.count = (self.count + 256) % 4096
                self.discard = False
                self.count = count
            if flushed:
                self.rekey()
        data = self.stream.update(packet[2:])
        if data[0] & 1:
            return data[0], data[1:]
        return data[0] << 8 | data[1], data[2:]


def run_link(
    send: Callable[[int, bytes], bytes],
    receive: Callable[[bytes], tuple[int, bytes] | None],
    wants_reset: Callable[[], bool],
    reset: Callable[[], None],
    *,
    packets: int,
    loss: float,
    seed: int,
) -> int:
    """Send ``packets`` with random loss; every Reset-Request
    reaches the sender before its next packet.  Every packet delivered must be the one sent.
    Returns how many were delivered."""
    rng = random.Random(seed)
    delivered = 0
    for n in range(packets):
        packet = send(IP, payload(n))
        if rng.random() < loss:
            continue
        result = receive(packet)
        if result is not None:
            assert result == (IP, payload(n)), f"packet {n} decrypted to garbage"
            delivered += 1
        if wants_reset():
            reset()
    return delivered


def our_receiver(decryptor: MppeDecryptor, every: int = 8) -> Callable[[], bool]:
    """When our link sends a Reset-Request: once per loss, and again on its timer (here: every
    ``every`` packets) while the decryptor is still discarding."""
    waited = 0

    def wants_reset() -> bool:
        nonlocal waited
        if decryptor.take_reset_request():
            waited = 0
            return True
        waited += 1
        if decryptor.discarding and waited >= every:
            waited = 0
            return True
        return False

    return wants_reset


@pytest.mark.parametrize(("bits", "stateful"), [(40, False), (128, False), (40, True), (128, True)])
@pytest.mark.parametrize("loss", [0.0, 0.02, 0.3])
def test_our_sender_to_linux(bits: int, stateful: bool, loss: float) -> None:
    """Lost packets of every kind, our answers to Reset-Requests included."""
    send, _ = start_keys(V2_KEYS, bits, server=True)
    _, receive = start_keys(V2_KEYS, bits, server=False)
    ours = MppeEncryptor(send, bits, stateful=stateful)
    linux = LinuxMppe(receive, bits, stateful=stateful)

    def reset() -> None:  # pppd's Reset-Request reaches us; our Reset-Ack reaches pppd
        ours.reset_requested()
        linux.error = False

    delivered = run_link(
        ours.encrypt,
        linux.decompress,
        lambda: linux.error,
        reset,
        packets=4500,
        loss=loss,
        seed=bits,
    )  # every packet may be lost, the answers to Reset-Requests included (see the next test)
    assert delivered > 4500 * (1 - loss) * (0.97 if not stateful or not loss else 0.4)


@pytest.mark.parametrize("sender", ["linux", "ours"])
def test_a_lost_reset_answer_and_a_linux_receiver(sender: str) -> None:
    """Linux's flaw: the A packet answering a Reset-Request is lost (or dropped because it revealed a
    gap), the sender changes key again for the next request, and a Linux receiver, which rekeys once per
    A packet it sees and once per 256-block crossed, stays one change behind for good, behind a Linux
    sender.  Ours answers at a flag position, whose key change the receiver accounts for: it recovers
    (seen in the QEMU interop tests under loss: the Linux client decrypted garbage until CCP restarted)."""
    theirs = LinuxMppe(SERVER_SEND_START, 128, stateful=True)
    ours = MppeEncryptor(SERVER_SEND_START, 128, stateful=True)
    encrypt = theirs.compress if sender == "linux" else ours.encrypt

    def reset() -> None:  # the Reset-Request reaches the sender
        if sender == "linux":
            theirs.flush_next = True
        else:
            ours.reset_requested()

    linux = LinuxMppe(SERVER_SEND_START, 128, stateful=True)
    assert linux.decompress(encrypt(IP, b"0")) == (IP, b"0")
    encrypt(IP, b"lost")
    assert linux.decompress(encrypt(IP, b"gap")) is None
    reset()
    linux.error = False
    encrypt(IP, b"flushed, lost")
    assert linux.decompress(encrypt(IP, b"discarded")) is None
    reset()
    linux.error = False
    result = linux.decompress(encrypt(IP, b"second flushed"))
    if sender == "linux":
        assert result != (IP, b"second flushed")
    else:
        assert result == (IP, b"second flushed")
        assert all(linux.decompress(encrypt(IP, payload(n))) == (IP, payload(n)) for n in range(300))


@pytest.mark.parametrize(("bits", "stateful"), [(40, False), (128, False), (40, True), (128, True)])
@pytest.mark.parametrize("loss", [0.0, 0.02, 0.3])
def test_linux_sender_to_us(bits: int, stateful: bool, loss: float) -> None:
    send, _ = start_keys(V2_KEYS, bits, server=False)
    _, receive = start_keys(V2_KEYS, bits, server=True)
    linux = LinuxMppe(send, bits, stateful=stateful)
    ours = MppeDecryptor(receive, bits, stateful=stateful)

    def reset() -> None:  # our Reset-Request reaches pppd, whose Reset-Ack makes the kernel flush
        linux.flush_next = True

    delivered = run_link(linux.compress, ours.decrypt, our_receiver(ours), reset, packets=4500, loss=loss, seed=bits)
    assert delivered > 4500 * (1 - loss) * (0.97 if not stateful or not loss else 0.4)
    assert ours.dropped["bad protocol"] == 0


class RfcSender:
    """A stateful sender that reads RFC 3078 literally, like FreeBSD's ng_mppc: A on the first packet
    (tables initialised), flag packets change key without A, a Reset-Request re-initialises RC4 with
    the current key and sets A."""

    def __init__(self, start_key: bytes, bits: int) -> None:
        self.start_key, self.bits = start_key, bits
        self.key = initial_session_key(start_key, bits)
        self.stream = Cipher(ARC4(self.key), mode=None).encryptor()
        self.count = 4095
        self.flush_next = True

    def compress(self, protocol: int, data: bytes) -> bytes:
        self.count = (self.count + 1) % 4096
        bits = 0x10
        if self.count & 0xFF == 0xFF:
            self.key = change_key(self.start_key, self.key, self.bits)
            self.stream = Cipher(ARC4(self.key), mode=None).encryptor()
        if self.flush_next:
            self.stream = Cipher(ARC4(self.key), mode=None).encryptor()
            bits |= 0x80
            self.flush_next = False
        return bytes((bits | self.count >> 8, self.count & 0xFF)) + self.stream.update(
            protocol.to_bytes(2, "big") + data
        )


@pytest.mark.parametrize("loss", [0.0, 0.02, 0.3])
def test_rfc_sender_to_us(loss: float) -> None:
    sender = RfcSender(SERVER_SEND_START, 128)
    ours = MppeDecryptor(SERVER_SEND_START, 128, stateful=True)

    def reset() -> None:
        sender.flush_next = True

    delivered = run_link(sender.compress, ours.decrypt, our_receiver(ours), reset, packets=3000, loss=loss, seed=3)
    assert delivered > 3000 * (1 - loss) * 0.4


# -- robustness --------------------------------------------------------------------------------------


@settings(max_examples=400, deadline=None)
@given(data=st.binary(max_size=64), stateful=st.booleans(), bits=st.sampled_from([40, 56, 128]))
def test_random_bytes_never_raise(data: bytes, stateful: bool, bits: int) -> None:
    _, decryptor = pair(bits, stateful)
    result = decryptor.decrypt(data)
    assert result is None or (0x21 <= result[0] <= 0xFA and isinstance(result[1], bytes))
    decryptor.take_reset_request()


@settings(max_examples=200, deadline=None)
@given(
    stream=st.lists(st.tuples(st.integers(0, 2), st.binary(min_size=2, max_size=8)), max_size=40),
    stateful=st.booleans(),
)
def test_mutated_packet_streams_never_raise(stream: list[tuple[int, bytes]], stateful: bool) -> None:
    encryptor, decryptor = pair(128, stateful)
    for action, noise in stream:
        packet = encryptor.encrypt(IP, noise)
        if action == 1:
            packet = noise[:2] + packet[2:]  # a random header: any count, any bits
        elif action == 2:
            packet = packet[:2] + noise
        result = decryptor.decrypt(packet)
        assert result is None or 0x21 <= result[0] <= 0xFA
        if decryptor.take_reset_request():
            encryptor.reset_requested()


@pytest.mark.parametrize("stateful", [False, True])
@pytest.mark.parametrize("bits", [40, 56, 128])
def test_encrypting_into_a_send_buffer_gives_the_same_packets_as_encrypt(
    stateful: bool, bits: int, strict_rc4: list[int]
) -> None:
    """The data path reads a packet behind the inner protocol field in one buffer and encrypts it into
    its send buffer behind the headers: byte for byte what :meth:`encrypt` returns, across a stateful
    flag packet and a Reset-Request, with buffers that never overlap (cryptography 51's rule, enforced
    here on every release)."""
    start = bytes(range(16))[: key_length(bits)]
    reference, data_path = MppeEncryptor(start, bits, stateful=stateful), MppeEncryptor(start, bits, stateful=stateful)
    plain, send = bytearray(2 + 1500), bytearray(24 + 1500)
    source, out = memoryview(plain), memoryview(send)[22:]
    plain[0:2] = b"\x00\x21"
    for n in range(300):
        packet = bytes([0x45, n & 0xFF]) + bytes((n * 7 + i) & 0xFF for i in range(40 + n))
        if n == 200:
            reference.reset_requested()
            data_path.reset_requested()
        plain[2 : 2 + len(packet)] = packet
        send[20:22] = data_path.encrypt_into(source[: 2 + len(packet)], out)
        assert bytes(send[20 : 24 + len(packet)]) == reference.encrypt(0x21, packet), n
    assert data_path.key_changes == reference.key_changes
    # every packet's RC4 went through a checked call (update_into, or arc4 when stateless), beside
    # the key changes' (as long as a key)
    assert len([n for n in strict_rc4 if n > key_length(bits)]) >= 300


def test_in_place_rc4_is_refused_as_cryptography_51_does(strict_rc4: list[int]) -> None:
    """The strict wrapper itself: overlapping buffers raise, disjoint slices of one buffer do not.
    Stateful: its running RC4 is cryptography's (stateless RC4 is arc4's, bytes in, bytes out: a view
    of a buffer, which could be the one being written, is refused)."""
    encryptor = MppeEncryptor(SERVER_SEND_START, 128, stateful=True)
    buffer = memoryview(bytearray(64))
    with pytest.raises(TypeError, match="arc4 takes bytes, not memoryview"):
        mppe_module.OneShotRC4(bytes(16)).encrypt(buffer[0:20])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="overlap"):
        encryptor.encrypt_into(buffer[0:20], buffer[10:40])
    with pytest.raises(ValueError, match="overlap"):
        encryptor.encrypt_into(buffer[0:20], buffer[0:20])
    encryptor.encrypt_into(buffer[0:20], buffer[20:40])


def _decrypt_hot(hot: MppeDecryptor, frame: bytes | memoryview, offset: int = 0) -> tuple[int, bytes] | None:
    """What the session's general receive path (``PppSession.receive_frame``) makes of one packet:
    :meth:`decrypt_next`, and :meth:`decrypt` for what it leaves (None)."""
    data = hot.decrypt_next(frame, offset)
    if data is None:
        return hot.decrypt(frame, offset)
    assert not data or (data[0] == 0 and 0x21 <= data[1] <= 0xFA)  # always the 2-byte protocol field
    return (data[1], bytes(data[2:])) if data else None


@settings(max_examples=150, deadline=None)
@given(
    stream=st.lists(st.tuples(st.integers(0, 6), st.binary(min_size=1, max_size=8)), max_size=60),
    stateful=st.booleans(),
    offset=st.sampled_from([0, 1, 2, 4]),
)
def test_the_data_paths_decryption_agrees_with_decrypt(
    stream: list[tuple[int, bytes]], stateful: bool, offset: int
) -> None:
    """The session's receive path (:meth:`decrypt_next`, then :meth:`decrypt` for what it leaves) and
    :meth:`decrypt` alone on twin decryptors fed the same mutated stream: the same results, drops, key
    changes and reset requests, with PFC-compressed protocols, losses, duplicates, garbage, short packets
    and flipped ciphertext among them."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(mppe_module, "Cipher", StrictCipher)
        patch.setattr(mppe_module, "OneShotRC4", StrictOneShot)
        encryptor, by_copy = pair(128, stateful)
        _, hot = pair(128, stateful)
        pending: list[bytes] = []
        for action, noise in stream:
            packet = encryptor.encrypt(IP, payload(len(pending)))
            if action == 1:
                packet = noise[:2] + packet[2:]  # a random header: any count, any bits
            elif action == 2:
                packet = packet[:2] + noise  # garbage, or short
            elif action == 3:
                pending.append(packet)  # lost for now, replayed later (late or duplicate)
                continue
            elif action == 4 and pending:
                packet = pending.pop(0)
            elif action == 6:  # bits flipped in the ciphertext (RC4 has no integrity): the protocol reads 00 00
                packet = packet[:2] + bytes(a ^ b for a, b in zip(packet[2:4], b"\x00\x21", strict=True)) + packet[4:]
            frame = memoryview(bytearray(b"\xff\x03\x00\xfd"[:offset] + packet))  # as GRE hands it over
            expected = by_copy.decrypt(frame, offset)
            assert _decrypt_hot(hot, frame, offset) == expected
            assert hot.dropped == by_copy.dropped
            assert hot.key_changes == by_copy.key_changes
            assert hot.take_reset_request() == by_copy.take_reset_request()
            if action == 5:
                encryptor.reset_requested()


def _compressed_first_packet(stateful: bool) -> tuple[bytes, bytes, bytes]:
    """(start key, the key of packet 0, packet 0 with a PFC-compressed inner protocol, 0x21 alone)."""
    start = SERVER_SEND_START
    key = initial_session_key(start, 128)
    if not stateful:
        key = change_key(start, key, 128)
    return start, key, (h("90 00") if not stateful else h("10 00")) + rc4(key, b"\x21" + PAYLOAD)


@pytest.mark.parametrize("stateful", [False, True], ids=["stateless", "stateful"])
def test_decrypt_next_takes_the_common_packet_and_leaves_the_rest_untouched(stateful: bool) -> None:
    """The common packet decrypts in one call, protocol field first; a PFC-compressed one comes expanded;
    a packet that is not the next one (stateless: a count jump; stateful: a flag packet) is left to the
    general path with nothing changed, and that path then takes it."""
    encryptor, decryptor = pair(128, stateful)
    _, reference = pair(128, stateful)
    for n in range(300):  # past a stateful flag packet (count 255)
        frame = memoryview(bytearray(b"\xfd" + encryptor.encrypt(IP, payload(n))))
        assert reference.decrypt(frame, 1) == (IP, payload(n))
        data = decryptor.decrypt_next(frame, 1)
        if data is None:  # only the flag packet, stateful
            assert stateful and n == 255
            assert decryptor.key_changes == reference.key_changes - 1  # untouched: the key change is left to
            assert decryptor.decrypt(frame, 1) == (IP, payload(n))  # the general path
        else:
            assert data == b"\x00\x21" + payload(n)
        assert decryptor.key_changes == reference.key_changes
    assert not any(decryptor.dropped.values())
    if not stateful:  # a jump of two counts: the general path's (a plausible packet is needed)
        encryptor.encrypt(IP, payload(0))
        frame = memoryview(bytearray(b"\xfd" + encryptor.encrypt(IP, payload(1))))
        changes = decryptor.key_changes
        assert decryptor.decrypt_next(frame, 1) is None and decryptor.key_changes == changes
    start, key, compressed = _compressed_first_packet(stateful)
    decryptor = MppeDecryptor(start, 128, stateful=stateful)
    assert decryptor.decrypt_next(compressed, 0) == b"\x00\x21" + PAYLOAD
    bad = b"\x00\x00" + PAYLOAD  # protocol 0: none MPPE carries
    # stateful, the stream runs on after the first packet; stateless, the next key
    cipher = (
        rc4(key, b"\x21" + PAYLOAD + bad)[1 + len(PAYLOAD) :] if stateful else rc4(change_key(start, key, 128), bad)
    )
    garbage = (h("90 01") if not stateful else h("10 01")) + cipher
    assert decryptor.decrypt_next(garbage, 0) == b""  # decrypts to no protocol: dropped, counted
    assert decryptor.dropped["bad protocol"] == 1
    assert decryptor.take_reset_request() == stateful  # stateful: a loss, a Reset-Request


@pytest.mark.parametrize("stateful", [False, True], ids=["stateless", "stateful"])
def test_the_receive_path_takes_pfc_and_long_streams(stateful: bool, strict_rc4: list[int]) -> None:
    """The session's receive path (:func:`_decrypt_hot`) past stateful flag packets and a count wrap, and
    with a PFC-compressed inner protocol, its payload after one byte."""
    encryptor, decryptor = pair(128, stateful)
    for n in range(4096 + 20):
        frame = memoryview(bytearray(b"\xfd" + encryptor.encrypt(IP, payload(n))))
        assert _decrypt_hot(decryptor, frame, 1) == (IP, payload(n))
    assert not any(decryptor.dropped.values())
    start, _, compressed = _compressed_first_packet(stateful)
    decryptor = MppeDecryptor(start, 128, stateful=stateful)
    assert _decrypt_hot(decryptor, compressed) == (0x21, PAYLOAD)


# -- spoofed packets (issue 14) ----------------------------------------------------------------------
#
# MPPE has no integrity check: anyone who can inject GRE with the peer's address and Call ID can send
# packets with any coherency count.  They must not cost the session more than a packet or so, nor the
# daemon more CPU than a legit packet does.


def ipv4(n: int, size: int) -> bytes:
    """A valid IPv4 packet of ``size`` bytes (header checksum right), numbered ``n``."""
    header = bytearray(b"\x45\x00" + size.to_bytes(2, "big") + n.to_bytes(4, "big") + b"\x40\x11" + bytes(10))
    header[10:12] = ipv4_checksum(header)
    return bytes(header) + bytes((n + i) & 0xFF for i in range(size - 20))


def ipv6(n: int, size: int) -> bytes:
    """An IPv6 packet of ``size`` bytes (payload length right), numbered ``n`` (its source address)."""
    header = b"\x60\x00\x00\x00" + (size - 40).to_bytes(2, "big") + b"\x3b\x40" + n.to_bytes(16, "big") + bytes(16)
    return header + bytes((n + i) & 0xFF for i in range(size - 40))


def spoofed(rng: random.Random, count: int, size: int, bits: int = 0x90) -> bytes:
    """What a blind attacker can send: a header with ``bits`` and ``count``, then random bytes."""
    return bytes((bits & 0xF0 | count >> 8, count & 0xFF)) + rng.randbytes(size)


def receive(decryptor: MppeDecryptor, packet: bytes, hot: bool) -> tuple[int, bytes] | None:
    """:meth:`decrypt`, or the session's receive path (:func:`_decrypt_hot`, on a PFC-compressed frame)."""
    return _decrypt_hot(decryptor, b"\xfd" + packet, 1) if hot else decryptor.decrypt(packet)


def receive_state(decryptor: MppeDecryptor) -> tuple[object, ...]:
    return decryptor._key, decryptor._last, decryptor._next


def stateless_packet(start: bytes, count: int, data: bytes) -> bytes:
    """A stateless packet with ``count`` and any inner ``data`` (protocol field included, so that it
    may be PFC-compressed), keyed as the sender's (count + 1)-th key change."""
    key = initial_session_key(start, 128)
    for _ in range(count + 1):
        key = change_key(start, key, 128)
    return bytes((0x90 | count >> 8, count & 0xFF)) + rc4(key, data)


@pytest.mark.parametrize("hot", [False, True], ids=["decrypt", "receive-path"])
def test_stateless_a_spoofed_count_jump_is_dropped_and_changes_nothing(hot: bool) -> None:
    """One spoofed packet whose count jumps 2 to 2047 ahead used to be committed whenever its first
    decrypted byte looked like a protocol (about 43 %: a PFC-compressed one passes 109 of 256), after
    which the peer's packets were all late until it caught up.  Now a jump is committed only when it
    decrypts to a valid IPv4 or IPv6 packet; anything else is dropped and the receive state stays."""
    rng = random.Random(14)
    encryptor, decryptor = pair(128, False)
    assert receive(decryptor, encryptor.encrypt(IP, payload(0)), hot) == (IP, payload(0))
    for n in range(1, 301):
        before = receive_state(decryptor)
        count = (decryptor._last + rng.randrange(2, 2048)) & 0xFFF
        assert receive(decryptor, spoofed(rng, count, rng.randrange(1, 1500)), hot) is None, n
        assert receive_state(decryptor) == before
        assert receive(decryptor, encryptor.encrypt(IP, payload(n)), hot) == (IP, payload(n)), n
    assert decryptor.dropped["implausible jump"] == 300
    assert decryptor.dropped["bad protocol"] == 0


@pytest.mark.parametrize("hot", [False, True], ids=["decrypt", "receive-path"])
def test_stateless_a_real_loss_is_still_bridged(hot: bool) -> None:
    """What a peer sends after a loss passes: IPv4 (full or PFC-compressed protocol field, any IHL)
    and IPv6.  A jump to anything else is dropped: a bad checksum, a wrong length, another protocol,
    an IPv4 packet cut short."""
    start = SERVER_SEND_START
    options = bytearray(ipv4(7, 60))
    options[0] = 0x47  # IHL 7: 8 bytes of options, all in the checksum
    options[28:] = bytes(32)
    options[10:12] = bytes(2)
    options[10:12] = ipv4_checksum(options[:28])
    bad_checksum = bytearray(ipv4(5, 100))
    bad_checksum[11] ^= 1
    cases = [
        (b"\x00\x21" + ipv4(1, 1400), (0x21, ipv4(1, 1400))),
        (b"\x21" + ipv4(2, 20), (0x21, ipv4(2, 20))),
        (b"\x00\x57" + ipv6(3, 1280), (0x57, ipv6(3, 1280))),
        (b"\x57" + ipv6(4, 40), (0x57, ipv6(4, 40))),
        (b"\x00\x21" + bytes(options), (0x21, bytes(options))),
        (b"\x00\x21" + bytes(bad_checksum), None),
        (b"\x00\x21" + ipv4(6, 100)[:99], None),  # total length 100, 99 bytes
        (b"\x00\x57" + ipv6(7, 100) + b"x", None),
        (b"\x00\x2d" + ipv4(8, 100), None),  # VJ-compressed TCP: fine in order, not after a jump
        (b"\x00\x21" + b"\x45" * 19, None),
    ]
    decryptor = MppeDecryptor(start, 128)
    count = 0
    for data, expected in cases:
        count += 3  # two lost before each
        assert receive(decryptor, stateless_packet(start, count, data), hot) == expected, data[:4]
        if expected is None:
            count -= 3
    assert decryptor.dropped["implausible jump"] == 5 and decryptor._last == count
    count += 1
    assert receive(decryptor, stateless_packet(start, count, b"\x00\x2dvj"), hot) == (0x2D, b"vj")  # in order


@pytest.mark.parametrize("hot", [False, True], ids=["decrypt", "receive-path"])
def test_stateless_oversized_packets_are_dropped_before_any_work(hot: bool) -> None:
    """No peer sends more than our MRU (at most pppd's 16384) plus MPPE's 4 bytes: a longer packet, a
    spoofed train of IP fragments reassembled for instance, is dropped before any key change."""
    rng = random.Random(14)
    encryptor, decryptor = pair(128, False)
    assert receive(decryptor, encryptor.encrypt(IP, payload(0)), hot) == (IP, payload(0))
    changes = decryptor.key_changes
    for count in (1, 2, 1000, 2047):
        assert receive(decryptor, spoofed(rng, count, mppe_module.MAX_INFORMATION - 1), hot) is None
        assert receive(decryptor, spoofed(rng, count, 60000), hot) is None
    assert decryptor.key_changes == changes and decryptor.dropped["oversize"] == 8
    largest = ipv4(1, mppe_module.MAX_INFORMATION - MPPE_OVERHEAD)
    encryptor.encrypt(IP, payload(1))  # lost: the largest packet is a jump, and passes
    assert receive(decryptor, encryptor.encrypt(IP, largest), hot) == (IP, largest)


@pytest.mark.parametrize("hot", [False, True], ids=["decrypt", "receive-path"])
def test_stateless_a_burst_of_spoofed_packets_costs_the_peer_at_most_one_packet(hot: bool) -> None:
    """1,000 spoofed packets with random counts, bits, lengths and bodies, the peer sending one packet
    in ten among them: at most one of its packets is lost (a spoofed packet with exactly the next
    count that passes the cheap in-order check takes that count), and it goes on unharmed."""
    rng = random.Random(14)
    encryptor, decryptor = pair(128, False)
    lost = sent = 0
    for n in range(1000):
        bits = rng.choice((0x90, 0x90, 0x90, 0x10, 0x80, rng.randrange(256)))
        receive(decryptor, spoofed(rng, rng.randrange(4096), rng.randrange(1, 1500), bits), hot)
        if n % 10 == 0:
            sent += 1
            lost += receive(decryptor, encryptor.encrypt(IP, payload(sent)), hot) != (IP, payload(sent))
    assert lost <= 1
    for n in range(sent + 1, sent + 100):
        assert receive(decryptor, encryptor.encrypt(IP, payload(n)), hot) == (IP, payload(n))


def test_stateless_keys_ahead_are_computed_once_and_kept_compactly() -> None:
    """Far jumps are paid for once: the keys ahead of the current one that a jump needed are kept (one
    bytearray, at most 2047 keys), shifted as the receiver moves on, and never computed again, by a
    later spoofed packet or by the peer's packets that reach them."""
    rng = random.Random(14)
    encryptor, decryptor = pair(128, False)
    assert decryptor.decrypt(encryptor.encrypt(IP, payload(0))) == (IP, payload(0))
    assert decryptor.decrypt(spoofed(rng, 2047, 100)) is None
    assert decryptor.key_changes == 1 + 2047 and len(decryptor._ahead) == 2047 * 16
    for _ in range(1000):
        decryptor.decrypt(spoofed(rng, 1 + rng.randrange(2, 2047), 100))
    assert decryptor.key_changes == 1 + 2047  # nothing computed twice
    for n in range(1, 2049):
        assert decryptor.decrypt(encryptor.encrypt(IP, payload(n))) == (IP, payload(n))
        assert len(decryptor._ahead) == max(0, 2047 - n) * 16
    assert decryptor.key_changes == encryptor.key_changes == 2049
    assert decryptor.decrypt(encryptor.encrypt(IP, payload(0))) == (IP, payload(0))  # the plain hot path again


@pytest.mark.parametrize("size", [100, 1400])
def test_stateless_a_spoofed_packet_costs_about_what_a_legit_one_does(size: int) -> None:
    """The CPU bound (the issue's bar: at most 2x a legit packet per bogus one, averaged over a burst of
    1,000).  The attacker's worst case: every count jumps 2 to 2047 ahead (none is dropped as late
    before any work), at a fresh receiver (no key ahead computed yet), with packets of the legit size.
    Each round times 1,000 legit packets, then 1,000 spoofed ones, in this thread's CPU time; the
    median ratio of 5 rounds must stay under 3 (measured: about 1; before the fix, about 200)."""
    ratios = []
    for round_ in range(5):
        rng = random.Random(round_)
        encryptor, decryptor = pair(128, False)
        legit = [encryptor.encrypt(IP, ipv4(n, size)) for n in range(1000)]
        _, victim = pair(128, False)
        victim.decrypt(legit[0])
        spoofs = [spoofed(rng, rng.randrange(2, 2048), size + 2) for _ in range(1000)]  # victim's last: 0
        legit_time, spoofed_time = cpu_time(decryptor, legit), cpu_time(victim, spoofs)
        assert victim.dropped["implausible jump"] == 1000 and not decryptor.dropped["bad protocol"]
        ratios.append(spoofed_time / legit_time)
        if ratios[-1] > 30:
            break  # far off: no need to wait for more rounds
    print(f"spoofed/legit CPU, {size}-byte packets: {ratios}")
    assert statistics.median(ratios) < 3, ratios


# -- spoofed packets, stateful: at worst one Reset cycle --------------------------------------------


def stateful_link_after(
    encryptor: MppeEncryptor, decryptor: MppeDecryptor, first: int, packets: int
) -> tuple[list[bool], int]:
    """The peer's packets ``first`` on, each Reset-Request reaching it before its next packet (a
    Reset cycle as short as can be).  Returns whether each packet came through, and the requests."""
    came_through, resets = [], 0
    for n in range(first, first + packets):
        came_through.append(decryptor.decrypt(encryptor.encrypt(IP, payload(n))) == (IP, payload(n)))
        if decryptor.take_reset_request():
            resets += 1
            encryptor.reset_requested()
    return came_through, resets


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("kind", ["next count", "other count", "flushed, next count", "flushed, other count"])
def test_stateful_one_spoofed_packet_costs_at_most_one_reset_cycle(kind: str, seed: int) -> None:
    rng = random.Random(seed)
    encryptor, decryptor = pair(128, True)
    came_through, resets = stateful_link_after(encryptor, decryptor, 0, 100)
    assert all(came_through) and not resets
    count = (encryptor.count + 1) & 0xFFF if "next" in kind else (encryptor.count + rng.randrange(2, 4096)) & 0xFFF
    decryptor.decrypt(spoofed(rng, count, rng.randrange(1, 1500), 0x90 if "flushed" in kind else 0x10))
    if decryptor.take_reset_request():
        resets += 1
        encryptor.reset_requested()
    came_through, more = stateful_link_after(encryptor, decryptor, 100, 300)
    assert resets + more <= 1
    first_good = came_through.index(True)
    assert all(came_through[first_good:]), came_through
    assert first_good <= 4  # the garbage of a stolen count may pass the cheap check a few times


def test_stateful_after_a_burst_of_spoofed_packets_one_reset_cycle_resynchronises() -> None:
    rng = random.Random(14)
    encryptor, decryptor = pair(128, True)
    stateful_link_after(encryptor, decryptor, 0, 100)
    for n in range(1000):
        bits = rng.choice((0x90, 0x10, rng.randrange(256)))
        decryptor.decrypt(spoofed(rng, rng.randrange(4096), rng.randrange(1, 1500), bits))
        if n % 10 == 0:
            stateful_link_after(encryptor, decryptor, 100 + n, 1)
        elif decryptor.take_reset_request():
            encryptor.reset_requested()
    came_through, resets = stateful_link_after(encryptor, decryptor, 2000, 300)
    assert resets <= 1
    first_good = came_through.index(True)
    assert first_good <= 4 and all(came_through[first_good:])


def test_stateful_while_discarding_only_a_plausible_packet_resynchronises() -> None:
    """A packet with A that decrypts to no IP packet under any candidate key does not resynchronise a
    discarding receiver (a forged one would, almost always, with a wrong key), and asks for no more
    Reset-Requests: the link repeats its own on a timer."""
    encryptor, decryptor = pair(128, True)
    assert decryptor.decrypt(encryptor.encrypt(IP, payload(0))) == (IP, payload(0))
    encryptor.encrypt(IP, payload(1))  # lost
    assert decryptor.decrypt(encryptor.encrypt(IP, payload(2))) is None and decryptor.take_reset_request()
    encryptor.reset_requested()
    assert decryptor.decrypt(encryptor.encrypt(IP, b"not an IP packet")) is None
    assert decryptor.discarding and not decryptor.take_reset_request()
    rng = random.Random(14)
    for _ in range(200):
        assert decryptor.decrypt(spoofed(rng, rng.randrange(4096), rng.randrange(1, 1500))) is None
    assert decryptor.discarding and not decryptor.take_reset_request()
    assert len(decryptor._ahead) <= 22 * 16 and len(decryptor._heads) <= 23  # the current key too
    encryptor.reset_requested()  # the link's timer
    assert decryptor.decrypt(encryptor.encrypt(IP, payload(3))) == (IP, payload(3))  # two changes ahead: found
    assert decryptor.decrypt(encryptor.encrypt(IP, payload(4))) == (IP, payload(4))
    assert not decryptor._heads


def test_stateful_a_spoofed_packet_costs_about_what_a_legit_one_does() -> None:
    """Stateful, the attacker's best: packets with A while the receiver discards, each tried with up to
    eight keys.  The keys come from those kept ahead and only 62 bytes of keystream per key are needed,
    kept too: per forged packet, about twice a legit 1400-byte stateful packet (measured 1.9; which
    costs only its RC4, 3 us; before, 9 times).  Bound 4, median of 5 rounds."""
    ratios = []
    for round_ in range(5):
        rng = random.Random(round_)
        encryptor, decryptor = pair(128, True)
        legit = [encryptor.encrypt(IP, ipv4(n, 1400)) for n in range(1000)]
        _, victim = pair(128, True)
        victim.decrypt(legit[0])
        victim.decrypt(legit[2])  # a loss: discarding from now on
        spoofs = [spoofed(rng, rng.randrange(4096), 1402) for _ in range(1000)]
        legit_time, spoofed_time = cpu_time(decryptor, legit), cpu_time(victim, spoofs)
        assert victim.discarding and victim.dropped["bad protocol"] == 1000
        ratios.append(spoofed_time / legit_time)
        if ratios[-1] > 30:
            break
    print(f"stateful spoofed/legit CPU: {ratios}")
    assert statistics.median(ratios) < 4, ratios


@settings(max_examples=500, deadline=None)
@given(header=st.binary(min_size=20, max_size=60).filter(lambda b: len(b) % 4 == 0), pfc=st.booleans())
def test_the_plausibility_check_computes_the_internet_checksum(header: bytes, pfc: bool) -> None:
    """The header read as one number is a multiple of 0xFFFF exactly when its ones' complement sum is
    0xFFFF (RFC 1071), for any IHL; the rest of the check is version, IHL and total length."""
    ihl = len(header) // 4
    packet = bytearray(header + bytes(8))
    packet[0] = 0x40 | ihl
    packet[2:4] = len(packet).to_bytes(2, "big")
    valid = bytearray(packet)
    valid[10:12] = bytes(2)
    valid[10:12] = ipv4_checksum(valid[: 4 * ihl])
    protocol = b"\x21" if pfc else b"\x00\x21"
    for candidate in (packet, valid):
        expected = ipv4_checksum(candidate[: 4 * ihl]) == bytes(2) and any(candidate[: 4 * ihl])
        assert mppe_module._plausible(protocol + candidate, len(protocol) + len(candidate)) == expected
    assert mppe_module._plausible(protocol + valid, len(protocol) + len(valid))
    assert not mppe_module._plausible(b"\x00\x57" + valid, len(valid) + 2)
    assert not mppe_module._plausible(protocol + valid, len(protocol) + len(valid) + 1)


def cpu_time(decryptor: MppeDecryptor, packets: list[bytes]) -> float:
    """The CPU time ``decryptor`` spends on ``packets`` through the session's receive path."""
    started = time.thread_time()
    for packet in packets:
        _decrypt_hot(decryptor, packet)
    return time.thread_time() - started
