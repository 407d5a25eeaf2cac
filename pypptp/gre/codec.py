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
"""

from __future__ import annotations

import struct
from typing import NamedTuple

__all__ = [
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
MAX_HEADER_SIZE = 16
NO_NUMBER = -1
"""Stands for an absent Sequence or Acknowledgment Number (no allocation, no None checks)."""

_FLAG_S = 0x10  # byte 0
_FLAG_A = 0x80  # byte 1
_BYTE0_FIXED_MASK = 0xEF  # every byte-0 bit except S: must read exactly K (0x20)
_BYTE1_FIXED_MASK = 0x7F  # every byte-1 bit except A: must read exactly Ver 1

_BASE = struct.Struct(">BBHHH")  # flags, flags+version, protocol, payload length, call ID
_WORD = struct.Struct(">I")
_DATA_ACK = struct.Struct(">BBHHHII")
_DATA = struct.Struct(">BBHHHI")  # also the ack-only shape: 8 bytes + one 32-bit number


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
    b0, b1, protocol, payload_length, call_id = _BASE.unpack_from(buffer, 0)
    if b0 & _BYTE0_FIXED_MASK != 0x20 or b1 & _BYTE1_FIXED_MASK != 0x01:
        raise GreError(_explain_flags(b0, b1))
    if protocol != PPP_PROTOCOL_TYPE:
        raise GreError(f"protocol type 0x{protocol:04X}, not PPP (0x880B)")
    has_seq = b0 & _FLAG_S
    has_ack = b1 & _FLAG_A
    if has_seq:
        if has_ack:
            header_size = 16
            if length < 16:
                raise GreError(f"truncated: {length} bytes, a data+ack header needs 16")
            seq, ack = struct.unpack_from(">II", buffer, 8)
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
            _DATA_ACK.pack_into(buffer, start, 0x30, 0x81, PPP_PROTOCOL_TYPE, payload_length, call_id, seq, ack)
        else:
            start = end - 12
            _DATA.pack_into(buffer, start, 0x30, 0x01, PPP_PROTOCOL_TYPE, payload_length, call_id, seq)
        return start
    if ack < 0 or payload_length:
        raise ValueError("a GRE packet without a Sequence Number must be ack-only")
    start = end - 12
    _DATA.pack_into(buffer, start, 0x20, 0x81, PPP_PROTOCOL_TYPE, 0, call_id, ack)
    return start


def encode_packet(call_id: int, payload: bytes = b"", seq: int = NO_NUMBER, ack: int = NO_NUMBER) -> bytes:
    """A whole GRE packet as new bytes (convenient for tests and tools; the
    data path uses :func:`write_header` on a reused buffer instead)."""
    buffer = bytearray(MAX_HEADER_SIZE + len(payload))
    buffer[MAX_HEADER_SIZE:] = payload
    start = write_header(buffer, MAX_HEADER_SIZE, call_id, len(payload), seq, ack)
    return bytes(buffer[start:])
