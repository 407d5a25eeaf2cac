"""PPP control packets and their option lists (RFC 1661 sections 5 and 6).

LCP, IPCP, IPV6CP and CCP share one format: Code, Identifier, Length (the
whole packet, header included), Data; PAP and CHAP use the same header.
Decoding checks every length before reading: the Length field must cover
the header and fit the buffer (bytes beyond it are padding and ignored), and
every option must have a Length of at least 2 that ends inside the packet.
A packet that breaks these rules is silently discarded by the caller (RFC
1661 section 5: "invalid Length: silently discard"), so the only exception
is :class:`PacketError`, whose text says what was wrong for the log.
"""

from __future__ import annotations

import dataclasses
import enum

__all__ = ["Code", "ControlPacket", "PacketError", "decode_packet", "encode_options", "parse_options"]

HEADER_SIZE = 4


class Code(enum.IntEnum):
    """Control packet codes (RFC 1661 section 5, RFC 1570 section 1, RFC 1962 section 3.1)."""

    CONFIGURE_REQUEST = 1
    CONFIGURE_ACK = 2
    CONFIGURE_NAK = 3
    CONFIGURE_REJECT = 4
    TERMINATE_REQUEST = 5
    TERMINATE_ACK = 6
    CODE_REJECT = 7
    PROTOCOL_REJECT = 8  # LCP only
    ECHO_REQUEST = 9
    ECHO_REPLY = 10
    DISCARD_REQUEST = 11
    IDENTIFICATION = 12
    TIME_REMAINING = 13
    RESET_REQUEST = 14  # CCP only
    RESET_ACK = 15  # CCP only


class PacketError(ValueError):
    """A received control packet is malformed; discard it and log why."""


@dataclasses.dataclass(frozen=True, slots=True)
class ControlPacket:
    """One control packet; ``code`` is an int because unknown codes must be Code-Rejected."""

    code: int
    identifier: int
    data: bytes = b""

    def encode(self) -> bytes:
        length = HEADER_SIZE + len(self.data)
        if length > 0xFFFF or not 0 <= self.code <= 0xFF or not 0 <= self.identifier <= 0xFF:
            raise ValueError(f"cannot encode {self!r}")
        return bytes((self.code, self.identifier)) + length.to_bytes(2, "big") + self.data


def decode_packet(buffer: bytes | bytearray | memoryview) -> ControlPacket:
    """Decode the control packet at the start of ``buffer``; raise :class:`PacketError`."""
    available = len(buffer)
    if available < HEADER_SIZE:
        raise PacketError(f"truncated: {available} bytes, the header needs {HEADER_SIZE}")
    length = (buffer[2] << 8) | buffer[3]
    if length < HEADER_SIZE:
        raise PacketError(f"Length {length} is shorter than the header")
    if length > available:
        raise PacketError(f"Length {length} but only {available} bytes")
    return ControlPacket(buffer[0], buffer[1], bytes(buffer[HEADER_SIZE:length]))


def parse_options(data: bytes) -> list[tuple[int, bytes]]:
    """(type, value) pairs of a Configure-* packet's data; raise :class:`PacketError`."""
    options: list[tuple[int, bytes]] = []
    offset, end = 0, len(data)
    while offset < end:
        if end - offset < 2:
            raise PacketError(f"option at offset {offset} is cut off after its type")
        kind, length = data[offset], data[offset + 1]
        if length < 2:
            raise PacketError(f"option {kind} has Length {length}, below the minimum of 2")
        if offset + length > end:
            raise PacketError(f"option {kind} has Length {length} but only {end - offset} bytes remain")
        options.append((kind, data[offset + 2 : offset + length]))
        offset += length
    return options


def encode_options(options: list[tuple[int, bytes]]) -> bytes:
    """The wire form of (type, value) pairs."""
    out = bytearray()
    for kind, value in options:
        if len(value) > 253:
            raise ValueError(f"option {kind} value is {len(value)} bytes; at most 253 fit")
        out += bytes((kind, len(value) + 2)) + value
    return bytes(out)
