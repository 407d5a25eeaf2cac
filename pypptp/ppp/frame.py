"""The PPP frame inside GRE (RFC 1661 section 2, sections 6.5-6.6; RFC 1662 section 3.2).

RFC 2637 section 4 carries PPP with all media framing removed: no flags, no
escaping, no FCS.  What is left is Address/Control (``FF 03``, omitted under
ACFC), the Protocol field (one byte under PFC when the value allows it) and
the information field.

Receive is liberal whatever was negotiated (the Linux kernel does the same):
``FF 03`` is stripped when present; a Protocol field whose first byte is odd
is one byte long.  Send is exact: ACFC and PFC are applied only when the
peer asked for them, and never to LCP, whose frames always go out with
``FF 03`` and a two-byte protocol.
"""

from __future__ import annotations

import enum

__all__ = ["PROTOCOL_NAMES", "FrameError", "Protocol", "encode_frame", "parse_frame"]


class Protocol(enum.IntEnum):
    """PPP protocol numbers a PPTP server meets (RFC 1661 section 2 and the RFCs of each)."""

    IPV4 = 0x0021
    VJ_COMPRESSED = 0x002D
    VJ_UNCOMPRESSED = 0x002F
    MULTILINK = 0x003D
    IPV6 = 0x0057
    COMPRESSED_FRAGMENT = 0x00FB
    COMPRESSED = 0x00FD  # MPPE/MPPC data
    IPCP = 0x8021
    ECP = 0x8053
    IPV6CP = 0x8057
    CCP_FRAGMENT = 0x80FB
    CCP = 0x80FD
    LCP = 0xC021
    PAP = 0xC023
    LQR = 0xC025
    CBCP = 0xC029
    BACP = 0xC02B
    BAP = 0xC02D
    CHAP = 0xC223
    EAP = 0xC227


PROTOCOL_NAMES = {p.value: p.name for p in Protocol}


class FrameError(ValueError):
    """A received PPP frame is unusable (the text says why)."""


def parse_frame(frame: bytes | bytearray | memoryview) -> tuple[int, int]:
    """Return (protocol number, offset of the information field) of ``frame``.

    Raises :class:`FrameError` for a frame too short to hold a protocol, or
    whose protocol number is not valid (low bit of the low byte must be 1,
    of the high byte 0: RFC 1661 section 2).
    """
    length = len(frame)
    offset = 2 if length >= 2 and frame[0] == 0xFF and frame[1] == 0x03 else 0
    if offset >= length:
        raise FrameError(f"{length}-byte frame holds no protocol field")
    first = frame[offset]
    if first & 1:  # compressed: a one-byte protocol
        return first, offset + 1
    if offset + 2 > length:
        raise FrameError("frame ends inside its protocol field")
    protocol = (first << 8) | frame[offset + 1]
    if not protocol & 1:
        raise FrameError(f"invalid protocol number 0x{protocol:04X} (low bit clear)")
    return protocol, offset + 2


def encode_frame(protocol: int, information: bytes, *, acfc: bool = False, pfc: bool = False) -> bytes:
    """A PPP frame for GRE; ``acfc``/``pfc`` say what the peer agreed to receive.

    LCP is never compressed (RFC 1661 sections 6.5 and 6.6).
    """
    if protocol == Protocol.LCP:
        acfc = pfc = False
    head = b"" if acfc else b"\xff\x03"
    if pfc and protocol < 0x100:
        return head + bytes((protocol,)) + information
    return head + protocol.to_bytes(2, "big") + information
