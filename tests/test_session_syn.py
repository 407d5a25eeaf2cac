"""The session's SYN test (``pypptp.aio.session._is_syn``): which TCP segments get their MSS clamped.

Shared by the three places that clamp: the receive hot path (from the decrypt buffer), the slow path's
delivery to the TUN and the TUN reader (from its buffer, behind the inner protocol field).  Packets built
by scapy; the reused buffers those paths read are larger than the packet, so the test must stop at ``end``.
"""

from __future__ import annotations

import pytest
from scapy.layers.inet import IPOption_NOP

from pypptp.aio.session import _is_syn
from tests.test_mss import LINUX_SYN_OPTIONS, syn4


@pytest.mark.parametrize(
    ("flags", "syn"),
    [("S", True), ("SA", True), ("SE", True), ("A", False), ("PA", False), ("FA", False), ("R", False), ("", False)],
)
@pytest.mark.parametrize("offset", [0, 2], ids=["at-0", "behind-the-protocol-field"])
def test_only_segments_with_syn_are_clamped(flags: str, syn: bool, offset: int) -> None:
    packet = bytes(offset) + bytes(syn4(LINUX_SYN_OPTIONS, flags))
    assert _is_syn(packet, offset, len(packet)) is syn
    assert _is_syn(memoryview(bytearray(packet)), offset, len(packet)) is syn


def test_the_flags_are_found_after_ip_options() -> None:
    packet = syn4(LINUX_SYN_OPTIONS, "A", options=[IPOption_NOP()] * 4)  # IHL 6
    assert packet[0] == 0x46
    assert not _is_syn(packet, 0, len(packet))
    packet[24 + 13] |= 0x02  # the real flags byte, past the options
    assert _is_syn(packet, 0, len(packet))


def test_nothing_is_read_past_the_end_of_the_packet() -> None:
    """A segment cut before its flags byte is no SYN, whatever the reused buffer holds after it."""
    packet = bytes(syn4(LINUX_SYN_OPTIONS, "S"))
    buffer = bytearray(packet) + bytes(64)
    assert _is_syn(buffer, 0, len(packet))
    assert not _is_syn(buffer, 0, 20 + 13)  # the flags byte is byte 33: not in the packet
    assert _is_syn(buffer, 0, 20 + 14)
