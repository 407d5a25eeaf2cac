"""MSS clamping: SYNs built by hand and by scapy, checksums checked two ways, and fuzzing.

Checksums are verified by an independent one's complement sum over the
pseudo-header and segment (a valid segment sums to 0xFFFF) and against scapy's
own recomputation.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, TCP, UDP, in4_chksum
from scapy.layers.inet6 import IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrFragment, IPv6ExtHdrHopByHop, in6_chksum
from scapy.packet import Packet, raw

from pypptp.host import mss
from pypptp.host.mss import MAX_IPV6_EXTENSION_HEADERS, clamp_mss, mss_for_mtu

SRC4, DST4 = "192.168.0.234", "192.168.0.1"
SRC6, DST6 = "2001:db8::234", "2001:db8:1::34"


@pytest.fixture(autouse=True)
def strict() -> Iterator[None]:
    """Inside these tests, an exception in clamp_mss is a failure, not a quiet False."""
    mss._reraise = True
    yield
    mss._reraise = False


# -- an independent reference ---------------------------------------------------------------------


def ones_sum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def locate_tcp(packet: bytes) -> tuple[bytes, int, int]:
    """(pseudo-header, TCP offset, TCP end) for IPv4, or IPv6 with extension headers."""
    if packet[0] >> 4 == 4:
        ihl = (packet[0] & 15) * 4
        end = struct.unpack("!H", packet[2:4])[0]
        pseudo = packet[12:20] + struct.pack("!xBH", 6, end - ihl)
        return pseudo, ihl, end
    end = 40 + struct.unpack("!H", packet[4:6])[0]
    nh, off = packet[6], 40
    while nh != 6:
        nh, off = packet[off], off + (8 if nh == 44 else (packet[off + 1] + 1) * 8)
    pseudo = packet[8:40] + struct.pack("!I3xB", end - off, 6)
    return pseudo, off, end


def checksum_valid(packet: bytes) -> bool:
    pseudo, tcp, end = locate_tcp(packet)
    return ones_sum(pseudo + packet[tcp:end]) == 0xFFFF


def scapy_checksum_agrees(packet: bytes) -> bool:
    """scapy computes the checksum of the same bytes (pseudo-header included): it must be the one we wrote.

    scapy's own checksum routines over the exact segment bytes: rebuilding the
    packet instead would let scapy normalise odd option lists first."""
    _, tcp, end = locate_tcp(packet)
    segment = packet[tcp : tcp + 16] + b"\0\0" + packet[tcp + 18 : end]
    ours = struct.unpack("!H", packet[tcp + 16 : tcp + 18])[0]
    if packet[0] >> 4 == 4:
        return bool(in4_chksum(6, IP(packet), segment) == ours)
    return bool(in6_chksum(6, IPv6(packet)[TCP], segment) == ours)


def mss_values(packet: bytes) -> list[int]:
    parsed: Packet = IP(packet) if packet[0] >> 4 == 4 else IPv6(packet)
    return [value for name, value in parsed[TCP].options if name == "MSS"]


def check_clamped(packet: bytearray, limit: int) -> None:
    assert mss_values(bytes(packet)) and all(v <= limit for v in mss_values(bytes(packet)))
    assert checksum_valid(bytes(packet))
    assert scapy_checksum_agrees(bytes(packet))


# -- packets --------------------------------------------------------------------------------------

WINDOWS_SYN_OPTIONS = [("MSS", 1360), ("NOP", None), ("WScale", 8), ("NOP", None), ("NOP", None), ("SAckOK", b"")]
LINUX_SYN_OPTIONS = [("MSS", 1460), ("SAckOK", b""), ("Timestamp", (123456, 0)), ("NOP", None), ("WScale", 7)]


def syn4(tcp_options: list[tuple[str, object]], flags: str = "S", **ip: Any) -> bytearray:
    packet = IP(src=SRC4, dst=DST4, **ip) / TCP(sport=49721, dport=443, flags=flags, seq=1000, options=tcp_options)
    return bytearray(raw(packet))


def syn6(options: list[tuple[str, object]], flags: str = "S", *extensions: Packet) -> bytearray:
    packet: Packet = IPv6(src=SRC6, dst=DST6)
    for extension in extensions:
        packet = packet / extension
    return bytearray(raw(packet / TCP(sport=49722, dport=443, flags=flags, options=options)))


def hand_built_syn(mss_value: int) -> bytearray:
    """An IPv4 SYN built field by field (no scapy): MSS, NOP, NOP, SACK-permitted."""
    options = struct.pack("!BBH", 2, 4, mss_value) + b"\x01\x01\x04\x02"
    tcp = struct.pack("!HHIIBBHHH", 50000, 80, 0x01020304, 0, (5 + len(options) // 4) << 4, 0x02, 64240, 0, 0)
    tcp += options
    src, dst = ipaddress.IPv4Address(SRC4).packed, ipaddress.IPv4Address(DST4).packed
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 0x1234, 0x4000, 128, 6, 0, src, dst)
    ip = ip[:10] + struct.pack("!H", 0xFFFF - ones_sum(ip)) + ip[12:]
    csum = 0xFFFF - ones_sum(src + dst + struct.pack("!xBH", 6, len(tcp)) + tcp)
    tcp = tcp[:16] + struct.pack("!H", csum) + tcp[18:]
    return bytearray(ip + tcp)


# -- mss_for_mtu ----------------------------------------------------------------------------------


def test_mss_for_mtu() -> None:
    assert mss_for_mtu(1396) == 1356  # Windows MRU 1400 less MPPE's 4 (ccp-mppe.md section 9)
    assert mss_for_mtu(1500) == 1460
    assert mss_for_mtu(1396, ipv6=True) == 1336
    assert mss_for_mtu(68) == 28
    with pytest.raises(ValueError):
        mss_for_mtu(67)


# -- clamping real SYNs ---------------------------------------------------------------------------


def test_hand_built_syn_is_clamped_and_checksum_stays_valid() -> None:
    packet = hand_built_syn(1460)
    assert checksum_valid(bytes(packet))
    assert clamp_mss(packet, 1356)
    assert struct.unpack("!H", packet[42:44])[0] == 1356
    check_clamped(packet, 1356)
    assert IP(bytes(packet))[IP].chksum == struct.unpack("!H", packet[10:12])[0]  # IP header untouched


@pytest.mark.parametrize("options", [WINDOWS_SYN_OPTIONS, LINUX_SYN_OPTIONS], ids=["windows", "linux"])
@pytest.mark.parametrize("flags", ["S", "SA", "SE", "SEC"], ids=["syn", "syn-ack", "syn-ece", "syn-ece-cwr"])
def test_scapy_syns_are_clamped(options: list[tuple[str, object]], flags: str) -> None:
    packet = syn4(options, flags)
    before = bytes(packet)
    assert clamp_mss(packet, 1300)
    assert mss_values(bytes(packet)) == [1300]
    check_clamped(packet, 1300)
    changed = [i for i in range(len(before)) if before[i] != packet[i]]
    assert len(changed) <= 4  # two MSS bytes, two checksum bytes


@pytest.mark.parametrize("prefix", [0, 1, 2, 3, 5], ids=lambda n: f"{n}-nops")
@pytest.mark.parametrize("value", [1361, 1460, 0xFFFF, 0x8000, 0x05FF, 0xFF00])
def test_checksum_correct_at_every_alignment(prefix: int, value: int) -> None:
    options: list[tuple[str, object]] = [("NOP", None)] * prefix + [("MSS", value)]
    for build in (syn4, syn6):
        packet = build(options)
        assert clamp_mss(packet, 1356)
        check_clamped(packet, 1356)


@pytest.mark.parametrize("limit", [1, 255, 256, 536, 1356, 0xFFFE])
def test_any_limit(limit: int) -> None:
    packet = syn4([("MSS", 0xFFFF)])
    assert clamp_mss(packet, limit)
    assert mss_values(bytes(packet)) == [limit]
    check_clamped(packet, limit)


def test_ipv6_syn_ack() -> None:
    packet = syn6(LINUX_SYN_OPTIONS, "SA")
    assert clamp_mss(packet, mss_for_mtu(1396, ipv6=True))
    assert mss_values(bytes(packet)) == [1336]
    check_clamped(packet, 1336)


def test_every_mss_option_is_clamped() -> None:
    packet = syn4([("MSS", 1460), ("NOP", None), ("MSS", 1400), ("MSS", 1200)])
    assert clamp_mss(packet, 1356)
    assert mss_values(bytes(packet)) == [1356, 1356, 1200]
    check_clamped(packet, 1356)


def test_ipv4_with_ip_options() -> None:
    packet = syn4(LINUX_SYN_OPTIONS, options=[b"\x94\x04\x00\x00"])  # Router Alert: IHL 6
    assert packet[0] == 0x46
    assert clamp_mss(packet, 1356)
    check_clamped(packet, 1356)


def test_ipv4_first_fragment_is_clamped_later_fragments_skipped() -> None:
    first = syn4(LINUX_SYN_OPTIONS)
    first[6] |= 0x20  # More Fragments, offset 0: the TCP header is here
    first[10:12] = b"\0\0"
    assert clamp_mss(first, 1356)
    assert mss_values(bytes(first)) == [1356]
    later = syn4(LINUX_SYN_OPTIONS)
    later[7] = 1  # offset 8 bytes: what looks like TCP is the middle of a segment
    assert unchanged(later)


@pytest.mark.parametrize(
    "extensions",
    [
        [IPv6ExtHdrHopByHop()],
        [IPv6ExtHdrDestOpt()],
        [IPv6ExtHdrFragment(offset=0, m=1)],
        [IPv6ExtHdrHopByHop(), IPv6ExtHdrDestOpt(), IPv6ExtHdrFragment(offset=0)],
    ],
    ids=["hop-by-hop", "destination", "first-fragment", "three"],
)
def test_ipv6_extension_headers(extensions: list[Packet]) -> None:
    packet = syn6(LINUX_SYN_OPTIONS, "S", *extensions)
    assert clamp_mss(packet, 1336)
    check_clamped(packet, 1336)


def test_ipv6_limits() -> None:
    later = syn6(LINUX_SYN_OPTIONS, "S", IPv6ExtHdrFragment(offset=1))
    assert not clamp_mss(later, 1336)
    too_deep = syn6(LINUX_SYN_OPTIONS, "S", *[IPv6ExtHdrDestOpt()] * (MAX_IPV6_EXTENSION_HEADERS + 1))
    assert not clamp_mss(too_deep, 1336)
    jumbo = syn6(LINUX_SYN_OPTIONS)
    jumbo[4:6] = b"\0\0"
    assert not clamp_mss(jumbo, 1336)


# -- packets that must be left alone --------------------------------------------------------------


def unchanged(packet: bytearray, limit: int = 1356) -> bool:
    before = bytes(packet)
    return clamp_mss(packet, limit) is False and bytes(packet) == before


def test_left_alone() -> None:
    assert unchanged(syn4([]))  # SYN without MSS
    assert unchanged(syn4([("SAckOK", b""), ("WScale", 7)]))
    assert unchanged(syn4([("MSS", 1356)]))  # equal to the limit
    assert unchanged(syn4([("MSS", 1200)]))
    assert unchanged(syn4([("MSS", 1460)], "A"))  # not a SYN, even with an MSS option
    assert unchanged(syn4([("MSS", 1460)], "R"))
    assert unchanged(syn4([("MSS", 1460)], "FA"))
    assert unchanged(bytearray(raw(IP(src=SRC4, dst=DST4) / UDP() / (b"\x02" * 100))))
    assert unchanged(bytearray(raw(IPv6() / UDP() / (b"\x02" * 100))))
    assert unchanged(syn6([("MSS", 1200)]))
    assert unchanged(syn6([("MSS", 1460)], "A"))
    assert unchanged(bytearray(b"\x00" * 60))
    assert unchanged(bytearray(b""))


@pytest.mark.parametrize("limit", [0, -1, 0x10000, 1 << 40])
def test_nonsense_limit_changes_nothing(limit: int) -> None:
    assert unchanged(syn4(LINUX_SYN_OPTIONS), limit)


@pytest.mark.parametrize(
    "raw_options",
    [
        b"\x02\x03\x05\xb4",  # MSS with length 3
        b"\x02\x05\x05\xb4\x00\x00\x00\x00",  # MSS with length 5
        b"\x08\x00\x02\x04\x05\xb4\x00\x00",  # an option of length 0 before the MSS
        b"\x08\x01\x02\x04\x05\xb4\x00\x00",  # length 1
        b"\x02\x04\x05\xb4\x08\x0a\x00\x00",  # a Timestamp running past the header, after the MSS
        b"\x00\x00\x00\x00\x02\x04\x05\xb4",  # End of Option List before the MSS
        b"\x01\x01\x01\x02",  # the header ends inside the MSS option
    ],
)
def test_malformed_options_left_alone(raw_options: bytes) -> None:
    packet = syn4([])
    packet[32] = (5 + len(raw_options) // 4) << 4
    packet[40:40] = raw_options
    packet[2:4] = struct.pack("!H", len(packet))
    assert unchanged(packet)


@pytest.mark.parametrize("first", [0x40, 0x41, 0x44, 0x4F, 0x00, 0x50, 0x7F])
def test_bad_version_or_ihl(first: int) -> None:
    packet = syn4(LINUX_SYN_OPTIONS)
    packet[0] = first  # IHL below 5, or 15 (the TCP header would start past its options), or not IP
    assert unchanged(packet)


def test_data_offset_out_of_range() -> None:
    short = syn4(LINUX_SYN_OPTIONS)
    short[32] = 0x40  # data offset 4 words: below the minimum
    assert unchanged(short)
    long = syn4(LINUX_SYN_OPTIONS)
    long[32] = 0xF0  # 60 bytes: past the end of the packet
    assert unchanged(long)


def test_total_length_is_respected() -> None:
    packet = syn4(LINUX_SYN_OPTIONS)
    packet[2:4] = struct.pack("!H", 40)  # Total Length says the options are not part of the packet
    assert unchanged(packet)
    padded = syn4(LINUX_SYN_OPTIONS) + bytearray(20)  # trailing padding beyond Total Length is fine
    assert clamp_mss(padded, 1356)


def test_every_truncation_is_safe() -> None:
    whole = syn4(LINUX_SYN_OPTIONS)
    for n in range(len(whole)):
        packet = whole[:n]
        before = bytes(packet)
        if clamp_mss(packet, 1356):
            assert n >= 20 + 20 + 4  # the MSS option was in what remained
        else:
            assert bytes(packet) == before


# -- memoryviews, as the session passes them ------------------------------------------------------


def test_memoryview_slice_of_a_reused_buffer() -> None:
    syn = syn4(LINUX_SYN_OPTIONS)
    buffer = bytearray(65536)
    buffer[: len(syn)] = syn
    view = memoryview(buffer)[: len(syn)]
    assert clamp_mss(view, 1356)
    check_clamped(bytearray(buffer[: len(syn)]), 1356)


def test_read_only_and_odd_views_never_raise() -> None:
    mss._reraise = False
    syn = bytes(syn4(LINUX_SYN_OPTIONS))
    assert not clamp_mss(memoryview(syn), 1356)
    assert not clamp_mss(memoryview(bytearray(syn)).cast("c"), 1356)  # type: ignore[arg-type]
    assert not clamp_mss(memoryview(bytearray(syn)).cast("B", (len(syn) // 4, 4)), 1356)
    assert not clamp_mss(memoryview(bytearray(syn[:4])).cast("I")[0:1], 1356)
    assert not clamp_mss(b"not a buffer", 1356)  # type: ignore[arg-type]
    assert not clamp_mss(None, 1356)  # type: ignore[arg-type]


# -- fuzzing --------------------------------------------------------------------------------------


def tcp_flags_of(packet: bytes) -> int | None:
    """scapy's view: the TCP flags if this is a TCP segment with a header, else None."""
    try:
        parsed: Packet = IP(packet) if packet[0] >> 4 == 4 else IPv6(packet)
        return int(parsed[TCP].flags)
    except Exception:
        return None


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=120), st.integers(min_value=1, max_value=0xFFFF))
def test_random_bytes_never_raise(data: bytes, limit: int) -> None:
    packet = bytearray(data)
    if clamp_mss(packet, limit):
        assert (tcp_flags_of(bytes(packet)) or 0) & 0x02
    else:
        assert bytes(packet) == data


@st.composite
def tcp_packets(draw: st.DrawFn) -> bytearray:
    flags = draw(st.integers(min_value=0, max_value=0xFF) | st.sampled_from([0x02, 0x12]))
    pieces = st.one_of(
        st.just(b"\x01"),  # NOP
        st.just(b"\x00"),  # End of Option List
        st.integers(0, 0xFFFF).map(lambda v: b"\x02\x04" + v.to_bytes(2, "big")),  # MSS
        st.binary(min_size=1, max_size=6),  # anything, well-formed or not
    )
    option_bytes = b"".join(draw(st.lists(pieces, max_size=8)))[:40]
    option_bytes += b"\x01" * (-len(option_bytes) % 4)
    layer = TCP(flags=flags, options=[], dataofs=5 + len(option_bytes) // 4) / draw(st.binary(max_size=30))
    ip: Packet = IP(src=SRC4, dst=DST4) if draw(st.booleans()) else IPv6(src=SRC6, dst=DST6)
    packet = bytearray(raw(ip / layer))
    start = 20 if ip.version == 4 else 40
    packet[start + 20 : start + 20] = option_bytes
    if ip.version == 4:
        packet[2:4] = struct.pack("!H", len(packet))
    else:
        packet[4:6] = struct.pack("!H", len(packet) - 40)
    pseudo, tcp, end = locate_tcp(bytes(packet))
    packet[tcp + 16 : tcp + 18] = b"\0\0"
    packet[tcp + 16 : tcp + 18] = struct.pack("!H", 0xFFFF - ones_sum(pseudo + bytes(packet[tcp:end])))
    return packet


@settings(max_examples=400, deadline=None)
@given(tcp_packets(), st.sampled_from([536, 1356, 1460]))
def test_structured_tcp(packet: bytearray, limit: int) -> None:
    assert checksum_valid(bytes(packet))
    before = bytes(packet)
    _, tcp, _ = locate_tcp(before)
    if clamp_mss(packet, limit):
        assert before[tcp + 13] & 0x02
        assert checksum_valid(bytes(packet))
        assert scapy_checksum_agrees(bytes(packet))
    else:
        assert bytes(packet) == before
    if not before[tcp + 13] & 0x02:
        assert bytes(packet) == before
