"""PPP control packets and option lists: every length checked before reading."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pypptp.ppp.frame import parse_frame
from pypptp.ppp.packet import Code, ControlPacket, PacketError, decode_packet, encode_options, parse_options
from tests import fixtures

# Windows' first LCP Configure-Request (spec ppp.md, section 10): MRU 1400, magic, PFC, ACFC, callback
WINDOWS_LCP = bytes.fromhex("01 00 00 15 01 04 05 78 05 06 12 34 56 78 07 02 08 02 0d 03 06")


def test_decode_a_real_configure_request() -> None:
    packet = decode_packet(WINDOWS_LCP + b"\x00\x00padding")
    assert (packet.code, packet.identifier) == (Code.CONFIGURE_REQUEST, 0)
    assert parse_options(packet.data) == [
        (1, bytes.fromhex("0578")),
        (5, bytes.fromhex("12345678")),
        (7, b""),
        (8, b""),
        (13, b"\x06"),
    ]
    assert packet.encode() == WINDOWS_LCP
    assert encode_options(parse_options(packet.data)) == packet.data


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "truncated"),
        (b"\x01\x00\x00", "truncated"),
        (b"\x01\x00\x00\x03", "shorter than the header"),
        (b"\x01\x00\x00\x10\x01\x04", "Length 16 but only 6"),
    ],
)
def test_bad_packet_lengths(data: bytes, message: str) -> None:
    with pytest.raises(PacketError, match=message):
        decode_packet(data)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x01", "cut off after its type"),
        (b"\x01\x00", "below the minimum of 2"),
        (b"\x01\x01", "below the minimum of 2"),
        (b"\x01\x04\x05", "only 3 bytes remain"),
        (b"\x07\x02\x01\x05\x00", "only 3 bytes remain"),
    ],
)
def test_bad_option_lengths(data: bytes, message: str) -> None:
    with pytest.raises(PacketError, match=message):
        parse_options(data)


def test_encode_limits() -> None:
    with pytest.raises(ValueError):
        encode_options([(1, bytes(254))])
    with pytest.raises(ValueError):
        ControlPacket(256, 0).encode()


@settings(max_examples=1000, deadline=None)
@given(st.binary(max_size=64))
def test_random_bytes_raise_only_packet_error(data: bytes) -> None:
    try:
        packet = decode_packet(data)
        parse_options(packet.data)
    except PacketError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 255), st.integers(0, 255), st.lists(st.tuples(st.integers(0, 255), st.binary(max_size=20))))
def test_round_trip(code: int, identifier: int, options: list[tuple[int, bytes]]) -> None:
    packet = ControlPacket(code, identifier, encode_options(options))
    decoded = decode_packet(packet.encode())
    assert decoded == packet and parse_options(decoded.data) == options


# tcpdump's fuzzer-found frames: where each file's link type puts the PPP frame, and why it is bad
FUZZ_PCAPS = {
    # DLT_PPP: an IPCP Configure-Nak whose option claims 230 bytes
    "tcpdump_tests_ppp-invalid-lengths.pcap": (0, "option 230 has Length 230 but only 38 bytes remain"),
    # Ethernet with ethertype 0x880B: a CCP packet whose Length runs past the frame
    "tcpdump_tests_ppp_ccp_config_deflate_option_asan.pcap": (14, "Length 15 but only 7 bytes"),
    # DLT_PPP_SERIAL: address, control and a stray HDLC flag, then an IPCP Configure-Request
    # whose IP-Compression option claims more bytes than are left
    "tcpdump_tests_ppp_error_hexdump.pcap": (3, "option 2 has Length 32 but only 27 bytes remain"),
}


@pytest.mark.parametrize("name", sorted(FUZZ_PCAPS))
def test_fuzzer_found_frames_are_rejected_cleanly(name: str) -> None:
    from scapy.utils import PcapReader

    offset, reason = FUZZ_PCAPS[name]
    [frame] = [bytes(p)[offset:] for p in PcapReader(str(fixtures.capture(name)))]
    _, start = parse_frame(frame)
    with pytest.raises(PacketError, match=reason):
        packet = decode_packet(frame[start:])
        parse_options(packet.data)
