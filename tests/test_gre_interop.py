"""Our enhanced GRE codec against scapy and against real PPTP captures.

Two independent sources of truth for ``pypptp.gre.codec``:

* scapy's ``GRE_PPTP`` layer (``scapy.layers.l2``), written from RFC 2637 by
  someone else: for the three packet shapes (data + ack, data only, ack only)
  our ``encode_packet`` must produce scapy's bytes exactly, and our
  ``decode_header`` must read scapy's bytes back into the same fields.  Every
  bit RFC 2637 section 4.1 fixes is flipped in turn on scapy-built packets:
  our decoder must refuse each with ``GreError`` (and nothing else).
* real captures made by other people with real clients and servers
  (``tests/fixtures/captures``, origins and licences in its README): every
  GRE packet in them must decode, the facts the README states must show up,
  the payload must be what scapy sees, and re-encoding must give back the
  captured bytes exactly.  A capture that is missing or that scapy cannot
  read fails its test.

scapy quirks (pinned by tests below): ``GRE_PPTP`` has no checksum / offset /
routing fields, so with ``chksum_present=1`` or ``routing_present=1`` it sets
only the flag bit and the layout is otherwise unchanged; with ``key_present=0``
it still writes the Payload Length / Call ID words.  The generic ``GRE`` layer
does insert the 4-byte checksum + offset words when ``chksum_present=1``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scapy.layers.inet import IP
from scapy.layers.l2 import GRE, GRE_PPTP
from scapy.packet import Padding, Raw
from scapy.utils import rdpcap

from pypptp.gre.codec import (
    GRE_IP_PROTOCOL,
    NO_NUMBER,
    GreError,
    GreHeader,
    decode_header,
    encode_packet,
)
from tests import fixtures

NUMBERS = [0, 1, 2, 0x1234, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFE, 0xFFFFFFFF]
CALL_IDS = [0, 1, 0x1234, 0x7FFF, 0x8000, 0xFFFF]
PAYLOAD_LENGTHS = [0, 1, 1400, 65535]

# (seq present, ack present): the three legal shapes.
SHAPES = {"data+ack": (True, True), "data": (True, False), "ack-only": (False, True)}


def _payload(length: int) -> bytes:
    """A distinctive payload (not all zeros, so an offset error shows)."""
    return bytes((i * 7 + 3) & 0xFF for i in range(length))


def _scapy_packet(call_id: int, payload: bytes, seq: int, ack: int, **overrides: Any) -> bytes:
    """scapy's bytes for a PPTP GRE packet, every field set explicitly."""
    fields: dict[str, Any] = {
        "seqnum_present": int(seq != NO_NUMBER),
        "acknum_present": int(ack != NO_NUMBER),
        "payload_len": len(payload),
        "call_id": call_id,
    }
    if seq != NO_NUMBER:
        fields["sequence_number"] = seq
    if ack != NO_NUMBER:
        fields["ack_number"] = ack
    fields.update(overrides)
    layer = GRE_PPTP(**fields)
    return bytes(layer / Raw(payload)) if payload else bytes(layer)


def _cases() -> Iterator[Any]:
    for shape, (has_seq, has_ack) in SHAPES.items():
        lengths = PAYLOAD_LENGTHS if has_seq else [0]
        for i, number in enumerate(NUMBERS):
            call_id = CALL_IDS[i % len(CALL_IDS)]
            length = lengths[i % len(lengths)]
            seq = number if has_seq else NO_NUMBER
            # pair each seq with a different ack so swapped fields would show
            ack = NUMBERS[(i + 3) % len(NUMBERS)] if has_ack else NO_NUMBER
            if not has_seq:
                ack = number
            yield pytest.param(call_id, length, seq, ack, id=f"{shape}-cid{call_id:#x}-len{length}-n{number:#x}")
        # every payload length and call ID at least once per shape
        for length in lengths:
            for call_id in CALL_IDS:
                seq = 0xFFFFFFFF if has_seq else NO_NUMBER
                ack = 0x80000000 if has_ack else NO_NUMBER
                yield pytest.param(call_id, length, seq, ack, id=f"{shape}-cid{call_id:#x}-len{length}-edge")


# ---------------------------------------------------------------- scapy, byte for byte


def test_spec_examples_match_scapy() -> None:
    """The three example headers of the spec digest, section 2.4."""
    payload = _payload(0x50)
    examples = [
        (7, 5, payload, "30 81 88 0B 00 50 12 34 00 00 00 07 00 00 00 05"),
        (7, NO_NUMBER, payload, "30 01 88 0B 00 50 12 34 00 00 00 07"),
        (NO_NUMBER, 5, b"", "20 81 88 0B 00 00 12 34 00 00 00 05"),
    ]
    for seq, ack, body, header_hex in examples:
        expected = bytes.fromhex(header_hex) + body
        assert encode_packet(0x1234, body, seq, ack) == expected
        assert _scapy_packet(0x1234, body, seq, ack) == expected
        header = decode_header(expected)
        assert header == GreHeader(0x1234, len(body), seq, ack, len(expected) - len(body))


@pytest.mark.parametrize(("call_id", "length", "seq", "ack"), list(_cases()))
def test_encode_matches_scapy(call_id: int, length: int, seq: int, ack: int) -> None:
    payload = _payload(length)
    ours = encode_packet(call_id, payload, seq, ack)
    theirs = _scapy_packet(call_id, payload, seq, ack)
    assert ours == theirs
    # and scapy dissects our bytes into the same values
    dissected = GRE_PPTP(ours)
    assert dissected.call_id == call_id
    assert dissected.payload_len == length
    assert dissected.seqnum_present == (seq != NO_NUMBER)
    assert dissected.acknum_present == (ack != NO_NUMBER)
    assert (dissected.sequence_number if seq != NO_NUMBER else NO_NUMBER) == seq
    assert (dissected.ack_number if ack != NO_NUMBER else NO_NUMBER) == ack
    assert bytes(dissected.payload) == payload


@pytest.mark.parametrize(("call_id", "length", "seq", "ack"), list(_cases()))
def test_decode_scapy_bytes(call_id: int, length: int, seq: int, ack: int) -> None:
    payload = _payload(length)
    wire = _scapy_packet(call_id, payload, seq, ack)
    header = decode_header(wire)
    expected_size = 16 if seq != NO_NUMBER and ack != NO_NUMBER else 12
    assert header == GreHeader(call_id, length, seq, ack, expected_size)
    assert wire[header.header_size : header.header_size + header.payload_length] == payload
    # a reused receive buffer: trailing garbage beyond ``length`` is ignored
    buffer = bytearray(wire) + b"\xaa" * 32
    assert decode_header(memoryview(buffer), len(wire)) == header
    # one byte short of the packet is refused
    with pytest.raises(GreError):
        decode_header(wire, len(wire) - 1)


@given(
    shape=st.sampled_from(list(SHAPES.values())),
    call_id=st.integers(0, 0xFFFF),
    seq=st.integers(0, 0xFFFFFFFF),
    ack=st.integers(0, 0xFFFFFFFF),
    payload=st.binary(max_size=64),
)
def test_scapy_agreement_property(shape: tuple[bool, bool], call_id: int, seq: int, ack: int, payload: bytes) -> None:
    has_seq, has_ack = shape
    seq = seq if has_seq else NO_NUMBER
    ack = ack if has_ack else NO_NUMBER
    if not has_seq:
        payload = b""
    wire = _scapy_packet(call_id, payload, seq, ack)
    assert encode_packet(call_id, payload, seq, ack) == wire
    header = decode_header(wire)
    assert (header.call_id, header.payload_length, header.seq, header.ack) == (call_id, len(payload), seq, ack)


# ---------------------------------------------------------------- forbidden bits

FORBIDDEN: list[tuple[str, dict[str, int]]] = [
    ("chksum_present", {"chksum_present": 1}),
    ("routing_present", {"routing_present": 1}),
    ("key_present=0", {"key_present": 0}),
    ("strict_route_source", {"strict_route_source": 1}),
    *[(f"recursion_control={r}", {"recursion_control": r}) for r in range(1, 8)],
    *[(f"flags={f}", {"flags": f}) for f in range(1, 16)],
    *[(f"version={v}", {"version": v}) for v in (0, 2, 3, 4, 5, 6, 7)],
    *[(f"proto={p:#06x}", {"proto": p}) for p in (0x0800, 0x0000, 0x880A, 0x0B88, 0xFFFF)],
    ("all-at-once", {"chksum_present": 1, "routing_present": 1, "key_present": 0, "strict_route_source": 1}),
]


@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize("overrides", [pytest.param(o, id=name) for name, o in FORBIDDEN])
def test_decoder_rejects_forbidden_bits(shape: str, overrides: dict[str, int]) -> None:
    has_seq, has_ack = SHAPES[shape]
    payload = _payload(3) if has_seq else b""
    seq = 7 if has_seq else NO_NUMBER
    ack = 5 if has_ack else NO_NUMBER
    good = _scapy_packet(0x1234, payload, seq, ack)
    bad = _scapy_packet(0x1234, payload, seq, ack, **overrides)
    assert bad != good, "scapy did not change the bytes"
    # GRE_PPTP only flips bits: same length, same fields after the first 4 bytes
    assert len(bad) == len(good)
    assert bad[4:] == good[4:]
    with pytest.raises(GreError):
        decode_header(bad)


def test_scapy_gre_pptp_quirk_checksum_flag_adds_no_field() -> None:
    """scapy's GRE_PPTP with C = 1 sets the bit only (no checksum/offset words)."""
    wire = _scapy_packet(0x1234, b"abc", 7, 5, chksum_present=1)
    assert wire == bytes.fromhex("b0 81 88 0b 00 03 12 34 00 00 00 07 00 00 00 05") + b"abc"


@pytest.mark.parametrize("flag", ["chksum_present", "routing_present"])
def test_decoder_rejects_generic_gre_with_checksum_words(flag: str) -> None:
    """scapy's generic GRE inserts checksum + offset words (4 bytes) after the
    protocol type when C or R is set; the decoder must still raise GreError."""
    fields: dict[str, Any] = {
        "key_present": 1,
        "seqnum_present": 1,
        "version": 1,
        "proto": 0x880B,
        "key": 0x00031234,
        "sequence_number": 7,
        flag: 1,
    }
    packet = GRE(**fields) / Raw(b"abc")
    wire = bytes(packet)
    assert len(wire) == 4 + 4 + 4 + 4 + 3  # base, checksum+offset, key, seq, payload
    with pytest.raises(GreError):
        decode_header(wire)


def test_decoder_rejects_plain_gre_from_scapy() -> None:
    """RFC 1701 GRE (version 0, no key) carrying IPv4, as scapy builds it by default."""
    wire = bytes(GRE(proto=0x0800) / Raw(b"\x45" + bytes(19)))
    with pytest.raises(GreError):
        decode_header(wire)


# ---------------------------------------------------------------- real captures


@dataclass(frozen=True)
class CapturedGre:
    """One GRE packet from a capture: frame index, IP addresses, the GRE
    bytes (cut at the IP total length) and what scapy made of them."""

    frame: int
    src: str
    dst: str
    gre: bytes
    scapy_call_id: int
    scapy_payload_len: int
    scapy_seq: int
    scapy_ack: int
    scapy_payload: bytes


# Hard-coded so that a parsing regression shows: GRE packets per capture file.
EXPECTED_GRE_COUNTS = {
    "chapcrack_tests_pptp.cap": 3,
    "chapcrack_tests_sample.dump": 117,
    "packetlife_PPTP_negotiation.cap": 17,
    "packetlife_gre_and_4over6.cap": 2,
    "tcpdump_tests_pptp.pcap": 1,
    "tcpdump_tests_ppp-invalid-lengths.pcap": 0,
    "tcpdump_tests_ppp_ccp_config_deflate_option_asan.pcap": 0,
    "tcpdump_tests_ppp_error_hexdump.pcap": 0,
}


def _gre_packets(path: Path) -> list[CapturedGre]:
    frames = rdpcap(str(path))  # a capture scapy cannot read is a failure, not a skip
    found: list[CapturedGre] = []
    for index, frame in enumerate(frames):
        if IP not in frame or frame[IP].proto != GRE_IP_PROTOCOL:
            continue
        ip = frame[IP]
        raw = bytes(ip)
        ihl = (raw[0] & 0x0F) * 4
        total_length = int.from_bytes(raw[2:4], "big")
        assert len(raw) >= total_length, f"{path.name} frame {index}: truncated IP packet"
        gre = raw[ihl:total_length]  # cut off Ethernet padding after the IP packet
        layer = frame[GRE_PPTP]
        scapy_payload = bytes(layer.payload)
        if Padding in frame:  # scapy hangs the padding under the innermost layer
            padding = bytes(frame[Padding].load)
            assert scapy_payload.endswith(padding)
            scapy_payload = scapy_payload[: len(scapy_payload) - len(padding)]
        found.append(
            CapturedGre(
                frame=index,
                src=ip.src,
                dst=ip.dst,
                gre=gre,
                scapy_call_id=layer.call_id,
                scapy_payload_len=layer.payload_len,
                scapy_seq=layer.sequence_number if layer.seqnum_present else NO_NUMBER,
                scapy_ack=layer.ack_number if layer.acknum_present else NO_NUMBER,
                scapy_payload=scapy_payload,
            )
        )
    return found


def _decoded(name: str) -> list[tuple[CapturedGre, GreHeader]]:
    return [(packet, decode_header(packet.gre)) for packet in _gre_packets(fixtures.capture(name))]


def test_capture_file_list_is_known() -> None:
    """Every capture file is covered by EXPECTED_GRE_COUNTS (a new one must be counted)."""
    assert {p.name for p in fixtures.capture_files()} == set(EXPECTED_GRE_COUNTS)


@pytest.mark.parametrize("name", sorted(EXPECTED_GRE_COUNTS))
def test_every_captured_gre_packet_decodes_and_round_trips(name: str) -> None:
    decoded = _decoded(name)
    assert len(decoded) == EXPECTED_GRE_COUNTS[name]
    for packet, header in decoded:
        where = f"{name} frame {packet.frame}"
        # the same fields as scapy's independent dissector
        assert header.call_id == packet.scapy_call_id, where
        assert header.payload_length == packet.scapy_payload_len, where
        assert header.seq == packet.scapy_seq, where
        assert header.ack == packet.scapy_ack, where
        assert header.header_size == (16 if header.seq != NO_NUMBER and header.ack != NO_NUMBER else 12), where
        end = header.header_size + header.payload_length
        payload = packet.gre[header.header_size : end]
        assert len(payload) == header.payload_length, where
        assert payload == packet.scapy_payload, where
        # re-encoding gives back the captured bytes exactly
        assert encode_packet(header.call_id, payload, header.seq, header.ack) == packet.gre[:end], where
        # ack-only packets carry no payload and no sequence number
        if header.seq == NO_NUMBER:
            assert header.ack != NO_NUMBER and header.payload_length == 0, where


def _first_seq_by_sender(decoded: list[tuple[CapturedGre, GreHeader]]) -> dict[str, int]:
    first: dict[str, int] = {}
    for packet, header in decoded:
        if header.seq != NO_NUMBER:
            first.setdefault(packet.src, header.seq)
    return first


def _ack_only(decoded: list[tuple[CapturedGre, GreHeader]]) -> list[GreHeader]:
    return [h for _, h in decoded if h.seq == NO_NUMBER]


def test_packetlife_negotiation_facts() -> None:
    decoded = _decoded("packetlife_PPTP_negotiation.cap")
    # ack-only packets from the Ixia client (call ID 24 is the Cisco's)
    assert _ack_only(decoded) == [
        GreHeader(call_id=24, payload_length=0, seq=NO_NUMBER, ack=6, header_size=12),
        GreHeader(call_id=24, payload_length=0, seq=NO_NUMBER, ack=7, header_size=12),
    ]
    # two senders: the Ixia client starts at 0; the Cisco starts (as captured) at 1, and its
    # first packet acks 0xFFFFFFFF, before it has received anything
    first = _first_seq_by_sender(decoded)
    assert sorted(first.values()) == [0, 1]
    cisco_address = next(address for address, seq in first.items() if seq == 1)
    cisco = [h for p, h in decoded if p.src == cisco_address]
    assert cisco[0] == GreHeader(call_id=1, payload_length=18, seq=1, ack=0xFFFFFFFF, header_size=16)
    # the frame with Ethernet padding after the IP packet is among these
    assert any(p.frame == 17 and len(p.gre) == 25 for p, _ in decoded)


def test_packetlife_gre_large_sequence_numbers() -> None:
    decoded = _decoded("packetlife_gre_and_4over6.cap")
    assert [h for _, h in decoded] == [
        GreHeader(call_id=6016, payload_length=103, seq=430001, ack=539254, header_size=16),
        GreHeader(call_id=17, payload_length=178, seq=539320, ack=NO_NUMBER, header_size=12),
    ]
    assert all(h.seq > 0xFFFF for _, h in decoded)  # needs more than 16 bits


def test_chapcrack_session_facts() -> None:
    decoded = _decoded("chapcrack_tests_sample.dump")
    # pptp-linux client starts at 1, pptpd at 0
    first = _first_seq_by_sender(decoded)
    assert sorted(first.values()) == [0, 1]
    client = next(address for address, seq in first.items() if seq == 1)
    server = next(address for address, seq in first.items() if seq == 0)
    ack_only = _ack_only(decoded)
    assert len(ack_only) == 24
    assert all(h.payload_length == 0 and h.header_size == 12 and h.ack >= 0 for h in ack_only)
    # the GRE key carries the receiver's call ID: one per direction, 0 is real
    call_ids = {(p.src, h.call_id) for p, h in decoded}
    assert call_ids == {(client, 30720), (server, 0)}
    # every shape occurs
    sizes = {(h.seq != NO_NUMBER, h.ack != NO_NUMBER) for _, h in decoded}
    assert sizes == set(SHAPES.values())


def test_chapcrack_pptp_and_tcpdump_facts() -> None:
    chap = _decoded("chapcrack_tests_pptp.cap")
    assert [(h.call_id, h.seq, h.ack) for _, h in chap] == [(0, 3, NO_NUMBER), (46080, 4, 3), (0, 4, 4)]
    windows = _decoded("tcpdump_tests_pptp.pcap")
    # Windows NT 4 client: first sequence number 0, call ID 0
    assert [h for _, h in windows] == [GreHeader(call_id=0, payload_length=48, seq=0, ack=NO_NUMBER, header_size=12)]
    assert windows[0][0].gre[12:16] == b"\xff\x03\xc0\x21"  # LCP in the payload
