"""Enhanced GRE header codec (RFC 2637 section 4.1).

Hot-path code: plain functions over buffers, no per-packet objects beyond
one small tuple on decode, no logging.  Byte order (network) lives here.

Header::

    byte 0: C R K S s Recur     byte 1: A Flags(4) Ver(3)     bytes 2-3: 0x880B
    bytes 4-5: Payload Length   bytes 6-7: Call ID (the receiver's)
    [Sequence Number, if S]     [Acknowledgment Number, if A]

Every bit is validated on receive: C = R = s = 0, K = 1, Recur = 0,
Flags = 0, Ver = 1, protocol 0x880B; a packet needs S or A (or both); an
ack-only packet (S = 0) carries no payload; the buffer must hold the header
and ``Payload Length`` bytes (bytes after that are ignored).  Optional
fields have no gaps: with S = 0 the ack sits at bytes 8-11.

The wire format is defined here once, by name, for this module and for the
data path that packs and unpacks headers itself (:mod:`pypptp.aio.gre`):
the protocol type, the three flag words of the shapes that are sent
(:data:`FLAGS_DATA_ACK`, :data:`FLAGS_DATA`, :data:`FLAGS_ACK_ONLY`), and
the two header layouts as precompiled :class:`struct.Struct` objects
(:data:`DATA_ACK_HEADER`, :data:`DATA_HEADER`).
"""

from __future__ import annotations

import struct
from typing import NamedTuple

__all__ = [
    "DATA_ACK_HEADER",
    "DATA_HEADER",
    "FLAGS_ACK_ONLY",
    "FLAGS_DATA",
    "FLAGS_DATA_ACK",
    "FLAG_A",
    "FLAG_S",
    "GRE_IP_PROTOCOL",
    "MAX_HEADER_SIZE",
    "NO_NUMBER",
    "PPP_PROTOCOL_TYPE",
    "GreError",
    "GreHeader",
    "decode_header",
    "encode_packet",
    "write_header",
]

GRE_IP_PROTOCOL = 47
PPP_PROTOCOL_TYPE = 0x880B
NO_NUMBER = -1
"""Stands for an absent Sequence or Acknowledgment Number (no allocation, no None checks)."""

# The first 16 bits of the header (bytes 0 and 1) as one word: C R K S s Recur | A Flags Ver.
FLAG_S = 0x1000
"""S: a Sequence Number is present (a data packet)."""
FLAG_A = 0x0080
"""A: an Acknowledgment Number is present."""
_FLAGS_FIXED = 0x2001  # K (key) set, Version 1: what the word reads once S and A are masked off
_FLAGS_FIXED_MASK = 0xFFFF & ~(FLAG_S | FLAG_A)  # every bit but S and A
FLAGS_DATA_ACK = _FLAGS_FIXED | FLAG_S | FLAG_A
"""0x3081: a data packet carrying an acknowledgment."""
FLAGS_DATA = _FLAGS_FIXED | FLAG_S
"""0x3001: a data packet without one."""
FLAGS_ACK_ONLY = _FLAGS_FIXED | FLAG_A
"""0x2081: an acknowledgment alone (no payload)."""

DATA_ACK_HEADER = struct.Struct(">HHHHII")
"""Flags, protocol type, Payload Length, Call ID, Sequence Number, Acknowledgment Number: 16 bytes."""
DATA_HEADER = struct.Struct(">HHHHI")
"""Flags, protocol type, Payload Length, Call ID and one 32-bit number: 12 bytes, the shape of a data packet
without an ack (the Sequence Number) and of an ack-only packet (the Acknowledgment Number)."""
MAX_HEADER_SIZE = DATA_ACK_HEADER.size

_BASE = struct.Struct(">HHHH")  # the 8 bytes every header starts with
_WORD = struct.Struct(">I")
_TWO_WORDS = struct.Struct(">II")


class GreError(ValueError):
    """A received packet is not a valid PPTP enhanced GRE packet (the text says why)."""


class GreHeader(NamedTuple):
    """A decoded header.  ``seq``/``ack`` are :data:`NO_NUMBER` when absent;
    the payload is ``buffer[header_size : header_size + payload_length]``."""

    call_id: int
    payload_length: int
    seq: int
    ack: int
    header_size: int


def decode_header(buffer: bytes | bytearray | memoryview, length: int = -1) -> GreHeader:
    """Validate and decode the GRE header at the start of ``buffer``.

    ``length`` is how many bytes of ``buffer`` are valid (a reused receive
    buffer is larger than the packet); by default all of it.
    Raises :class:`GreError`.
    """
    if length < 0:
        length = len(buffer)
    if length < 8:
        raise GreError(f"truncated: {length} bytes, the GRE header needs at least 8")
    flags, protocol, payload_length, call_id = _BASE.unpack_from(buffer, 0)
    if flags & _FLAGS_FIXED_MASK != _FLAGS_FIXED:
        raise GreError(_explain_flags(flags >> 8, flags & 0xFF))
    if protocol != PPP_PROTOCOL_TYPE:
        raise GreError(f"protocol type 0x{protocol:04X}, not PPP (0x880B)")
    has_seq = flags & FLAG_S
    has_ack = flags & FLAG_A
    if has_seq:
        if has_ack:
            header_size = 16
            if length < 16:
                raise GreError(f"truncated: {length} bytes, a data+ack header needs 16")
            seq, ack = _TWO_WORDS.unpack_from(buffer, 8)
        else:
            header_size = 12
            if length < 12:
                raise GreError(f"truncated: {length} bytes, a data header needs 12")
            seq = _WORD.unpack_from(buffer, 8)[0]
            ack = NO_NUMBER
        if length - header_size < payload_length:
            raise GreError(f"Payload Length {payload_length} but only {length - header_size} payload bytes")
        return GreHeader(call_id, payload_length, seq, ack, header_size)
    if not has_ack:
        raise GreError("neither a Sequence nor an Acknowledgment Number (S = A = 0)")
    if payload_length:
        raise GreError(f"ack-only packet (S = 0) with Payload Length {payload_length}")
    if length < 12:
        raise GreError(f"truncated: {length} bytes, an ack-only header needs 12")
    return GreHeader(call_id, 0, NO_NUMBER, _WORD.unpack_from(buffer, 8)[0], 12)


def _explain_flags(b0: int, b1: int) -> str:
    problems = []
    for mask, name in ((0x80, "C (checksum)"), (0x40, "R (routing)"), (0x08, "s (strict source route)")):
        if b0 & mask:
            problems.append(f"{name} set")
    if not b0 & 0x20:
        problems.append("K (key) clear")
    if b0 & 0x07:
        problems.append(f"Recur {b0 & 0x07}")
    if b1 & 0x78:
        problems.append(f"Flags 0x{(b1 & 0x78) >> 3:X}")
    if b1 & 0x07 != 1:
        problems.append(f"version {b1 & 0x07}, not 1 (enhanced GRE)")
    return "bad GRE header: " + ", ".join(problems)


def write_header(
    buffer: bytearray | memoryview, end: int, call_id: int, payload_length: int, seq: int, ack: int
) -> int:
    """Write a header that ends at ``buffer[end]`` and return where it starts.

    The caller reads the payload into ``buffer[end:]`` first (for example a
    TUN read into a buffer at offset :data:`MAX_HEADER_SIZE`), then the
    header goes in front of it: the packet is ``buffer[start : end +
    payload_length]`` with no copy.  ``seq``/``ack`` may be :data:`NO_NUMBER`;
    with no ``seq`` this is an ack-only packet and ``payload_length`` must be 0.
    """
    if seq >= 0:
        if ack >= 0:
            start = end - 16
            DATA_ACK_HEADER.pack_into(
                buffer, start, FLAGS_DATA_ACK, PPP_PROTOCOL_TYPE, payload_length, call_id, seq, ack
            )
        else:
            start = end - 12
            DATA_HEADER.pack_into(buffer, start, FLAGS_DATA, PPP_PROTOCOL_TYPE, payload_length, call_id, seq)
        return start
    if ack < 0 or payload_length:
        raise ValueError("a GRE packet without a Sequence Number must be ack-only")
    start = end - 12
    DATA_HEADER.pack_into(buffer, start, FLAGS_ACK_ONLY, PPP_PROTOCOL_TYPE, 0, call_id, ack)
    return start


def encode_packet(call_id: int, payload: bytes = b"", seq: int = NO_NUMBER, ack: int = NO_NUMBER) -> bytes:
    """A whole GRE packet as new bytes (convenient for tests and tools; the
    data path uses :func:`write_header` on a reused buffer instead)."""
    buffer = bytearray(MAX_HEADER_SIZE + len(payload))
    buffer[MAX_HEADER_SIZE:] = payload
    start = write_header(buffer, MAX_HEADER_SIZE, call_id, len(payload), seq, ack)
    return bytes(buffer[start:])
