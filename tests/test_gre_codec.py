"""Enhanced GRE header codec (RFC 2637 section 4.1), against the spec's byte tables."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pypptp.gre.codec import (
    DATA_ACK_HEADER,
    DATA_HEADER,
    FLAGS_ACK_ONLY,
    FLAGS_DATA,
    FLAGS_DATA_ACK,
    MAX_HEADER_SIZE,
    NO_NUMBER,
    PPP_PROTOCOL_TYPE,
    GreError,
    GreHeader,
    decode_header,
    encode_packet,
    write_header,
)

# gre.md section 2.4: Call ID 0x1234, payload length 0x0050, seq 7, ack 5
DATA_ACK = bytes.fromhex("30 81 88 0B 00 50 12 34 00 00 00 07 00 00 00 05")
DATA = bytes.fromhex("30 01 88 0B 00 50 12 34 00 00 00 07")
ACK_ONLY = bytes.fromhex("20 81 88 0B 00 00 12 34 00 00 00 05")
PAYLOAD = bytes(range(0x50))


@pytest.mark.parametrize(
    ("header", "seq", "ack"),
    [(DATA_ACK, 7, 5), (DATA, 7, NO_NUMBER)],
    ids=["data+ack", "data"],
)
def test_the_spec_shapes_encode_and_decode(header: bytes, seq: int, ack: int) -> None:
    assert encode_packet(0x1234, PAYLOAD, seq, ack) == header + PAYLOAD
    assert decode_header(header + PAYLOAD) == GreHeader(0x1234, 0x50, seq, ack, len(header))


def test_ack_only_shape() -> None:
    assert encode_packet(0x1234, ack=5) == ACK_ONLY
    assert decode_header(ACK_ONLY) == GreHeader(0x1234, 0, NO_NUMBER, 5, 12)


def test_the_named_wire_format_packs_the_spec_shapes() -> None:
    """The names the data path (pypptp.aio.gre) packs and unpacks headers with are the spec's bytes."""
    assert DATA_ACK_HEADER.pack(FLAGS_DATA_ACK, PPP_PROTOCOL_TYPE, 0x50, 0x1234, 7, 5) == DATA_ACK
    assert DATA_HEADER.pack(FLAGS_DATA, PPP_PROTOCOL_TYPE, 0x50, 0x1234, 7) == DATA
    assert DATA_HEADER.pack(FLAGS_ACK_ONLY, PPP_PROTOCOL_TYPE, 0, 0x1234, 5) == ACK_ONLY
    assert DATA_ACK_HEADER.unpack(DATA_ACK) == (0x3081, 0x880B, 0x50, 0x1234, 7, 5)
    assert MAX_HEADER_SIZE == DATA_ACK_HEADER.size == 16 and DATA_HEADER.size == 12


def test_write_header_in_front_of_a_payload_in_a_reused_buffer() -> None:
    buffer = bytearray(2048)
    buffer[MAX_HEADER_SIZE : MAX_HEADER_SIZE + len(PAYLOAD)] = PAYLOAD
    start = write_header(buffer, MAX_HEADER_SIZE, 0x1234, len(PAYLOAD), 7, 5)
    assert start == 0 and bytes(buffer[: MAX_HEADER_SIZE + len(PAYLOAD)]) == DATA_ACK + PAYLOAD
    start = write_header(buffer, MAX_HEADER_SIZE, 0x1234, len(PAYLOAD), 7, NO_NUMBER)
    assert start == 4 and bytes(buffer[4 : MAX_HEADER_SIZE + len(PAYLOAD)]) == DATA + PAYLOAD
    view = memoryview(buffer)
    start = write_header(view, MAX_HEADER_SIZE, 0x1234, 0, NO_NUMBER, 5)
    assert bytes(view[start:MAX_HEADER_SIZE]) == ACK_ONLY
    with pytest.raises(ValueError):
        write_header(buffer, MAX_HEADER_SIZE, 1, 10, NO_NUMBER, 5)  # payload needs a sequence number
    with pytest.raises(ValueError):
        write_header(buffer, MAX_HEADER_SIZE, 1, 0, NO_NUMBER, NO_NUMBER)


def test_decode_uses_only_the_valid_length_of_a_reused_buffer() -> None:
    buffer = bytearray(4096)
    packet = DATA + PAYLOAD
    buffer[: len(packet)] = packet
    assert decode_header(buffer, len(packet)).payload_length == 0x50
    with pytest.raises(GreError, match="Payload Length 80 but only 79"):
        decode_header(buffer, len(packet) - 1)


def test_bytes_after_the_payload_are_ignored() -> None:
    assert decode_header(DATA + PAYLOAD + b"padding").payload_length == 0x50


@pytest.mark.parametrize(
    ("byte", "mask", "message"),
    [
        (0, 0x80, "C (checksum) set"),
        (0, 0x40, "R (routing) set"),
        (0, 0x08, "s (strict source route) set"),
        (0, 0x01, "Recur 1"),
        (0, 0x04, "Recur 4"),
        (1, 0x08, "Flags 0x1"),
        (1, 0x40, "Flags 0x8"),
    ],
)
def test_every_forbidden_bit_is_refused(byte: int, mask: int, message: str) -> None:
    for good in (DATA_ACK + PAYLOAD, DATA + PAYLOAD, ACK_ONLY):
        bad = bytearray(good)
        bad[byte] |= mask
        with pytest.raises(GreError, match=message.replace("(", r"\(").replace(")", r"\)")):
            decode_header(bytes(bad))


def test_key_bit_required() -> None:
    bad = bytearray(DATA + PAYLOAD)
    bad[0] &= ~0x20
    with pytest.raises(GreError, match="K \\(key\\) clear"):
        decode_header(bytes(bad))


@pytest.mark.parametrize("version", [0, 2, 3, 7])
def test_version_must_be_1(version: int) -> None:
    bad = bytearray(DATA + PAYLOAD)
    bad[1] = (bad[1] & 0xF8) | version
    with pytest.raises(GreError, match=f"version {version}, not 1"):
        decode_header(bytes(bad))


def test_protocol_must_be_ppp() -> None:
    bad = bytearray(DATA + PAYLOAD)
    bad[2:4] = b"\x08\x00"
    with pytest.raises(GreError, match="protocol type 0x0800"):
        decode_header(bytes(bad))


def test_neither_seq_nor_ack_is_refused() -> None:
    with pytest.raises(GreError, match="S = A = 0"):
        decode_header(bytes.fromhex("20 01 88 0B 00 00 12 34"))


def test_ack_only_with_a_payload_is_refused() -> None:
    with pytest.raises(GreError, match="ack-only packet"):
        decode_header(bytes.fromhex("20 81 88 0B 00 04 12 34 00 00 00 05") + b"abcd")


@pytest.mark.parametrize("packet", [DATA_ACK + PAYLOAD, DATA + PAYLOAD, ACK_ONLY], ids=["data+ack", "data", "ack"])
def test_every_truncation_is_refused(packet: bytes) -> None:
    for cut in range(len(packet)):
        with pytest.raises(GreError, match=r"truncated|Payload Length"):
            decode_header(packet[:cut])


@settings(max_examples=2000, deadline=None)
@given(st.binary(max_size=40))
def test_random_bytes_raise_only_gre_error(data: bytes) -> None:
    try:
        header = decode_header(data)
    except GreError:
        return
    assert header.header_size + header.payload_length <= len(data)
    assert header.seq != NO_NUMBER or header.ack != NO_NUMBER


numbers = st.integers(0, 0xFFFFFFFF)


@settings(max_examples=500, deadline=None)
@given(st.integers(0, 0xFFFF), st.binary(max_size=300), numbers, st.one_of(st.just(NO_NUMBER), numbers))
def test_round_trip(call_id: int, payload: bytes, seq: int, ack: int) -> None:
    packet = encode_packet(call_id, payload, seq, ack)
    header = decode_header(packet)
    assert (header.call_id, header.seq, header.ack, header.payload_length) == (call_id, seq, ack, len(payload))
    assert packet[header.header_size :] == payload
