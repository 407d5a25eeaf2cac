"""PPP framing inside GRE: ACFC and PFC both ways, LCP never compressed."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pypptp.ppp.frame import FrameError, Protocol, encode_frame, parse_frame


@pytest.mark.parametrize(
    ("frame", "protocol", "offset"),
    [
        (bytes.fromhex("ff03c0210101000a"), 0xC021, 4),  # LCP, uncompressed
        (bytes.fromhex("c0210101000a"), 0xC021, 2),  # address/control compressed away
        (bytes.fromhex("ff030021450000"), 0x0021, 4),  # IPv4, full
        (bytes.fromhex("ff0321450000"), 0x0021, 3),  # IPv4 with PFC
        (bytes.fromhex("21450000"), 0x0021, 1),  # ACFC and PFC: pptp-linux's MPPE data uses fd this way
        (bytes.fromhex("fd9001"), 0x00FD, 1),
        (bytes.fromhex("80fd0101"), 0x80FD, 2),
    ],
)
def test_parse_accepts_every_compression(frame: bytes, protocol: int, offset: int) -> None:
    assert parse_frame(frame) == (protocol, offset)


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (b"", "holds no protocol"),
        (b"\xff\x03", "holds no protocol"),
        (b"\xc0", "inside its protocol field"),
        (b"\xff\x03\xc0", "inside its protocol field"),
        (b"\xc0\x20", "low bit clear"),
        (b"\x00\x00", "low bit clear"),
    ],
)
def test_parse_refuses_unusable_frames(frame: bytes, message: str) -> None:
    with pytest.raises(FrameError, match=message):
        parse_frame(frame)


def test_encode_applies_only_what_the_peer_accepted() -> None:
    assert encode_frame(Protocol.IPV4, b"E") == bytes.fromhex("ff030021") + b"E"
    assert encode_frame(Protocol.IPV4, b"E", pfc=True) == bytes.fromhex("ff0321") + b"E"
    assert encode_frame(Protocol.IPV4, b"E", acfc=True, pfc=True) == bytes.fromhex("21") + b"E"
    assert encode_frame(Protocol.IPCP, b"x", acfc=True, pfc=True) == bytes.fromhex("8021") + b"x"


def test_lcp_is_never_compressed() -> None:
    assert encode_frame(Protocol.LCP, b"\x09", acfc=True, pfc=True) == bytes.fromhex("ff03c02109")


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(list(Protocol)), st.binary(max_size=40), st.booleans(), st.booleans())
def test_round_trip(protocol: Protocol, information: bytes, acfc: bool, pfc: bool) -> None:
    frame = encode_frame(protocol, information, acfc=acfc, pfc=pfc)
    number, offset = parse_frame(frame)
    assert number == protocol and frame[offset:] == information


@settings(max_examples=2000, deadline=None)
@given(st.binary(max_size=8))
def test_random_bytes_raise_only_frame_error(data: bytes) -> None:
    try:
        protocol, offset = parse_frame(data)
    except FrameError:
        return
    assert protocol & 1 and offset <= len(data)
