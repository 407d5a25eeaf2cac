"""The data path's scratch buffers: one set per thread, shared by every session and call on it.

A session's hot path reads a TUN packet, encrypts it into a send buffer and sends it; a GRE call frames
a control packet in a buffer and sends it; a received packet (stateful MPPE) is decrypted into a buffer
and written to the TUN from there. Each of these finishes before the next starts (the event
loop runs one callback at a time, and ``sendto``/``write`` copy), so one set of buffers serves every
session of a thread.
Buffers per session cost 64 KiB each, resident as soon as they are written: with several per session,
a few hundred calls that never authenticate (a flood the pending budget allows) would hold hundreds
of MiB.  A thread of its own (a library user running loops in several threads) gets its own set.
"""

from __future__ import annotations

import threading

__all__ = ["PACKET_ROOM", "TX_DATA", "DataBuffers", "data_buffers"]

PACKET_ROOM = 65536
"""The largest packet a buffer takes (a TUN read, a GRE payload)."""
TX_DATA = 24
"""Where an IP packet's ciphertext lies in the send buffer: room for the GRE header (16), the PPP prefix
(at most 4: FF 03 00 FD), the MPPE header (2) and the encrypted inner protocol field (00 21)."""
GRE_HEADER_ROOM = 16
"""Room for the largest GRE header in front of a frame in :attr:`DataBuffers.gre`."""


class DataBuffers:
    """One thread's buffers (see the module docstring)."""

    def __init__(self) -> None:
        self.plain = bytearray(2 + PACKET_ROOM)
        """TUN reads land at 2, behind the inner protocol field of IPv4 (00 21): the hot path encrypts
        both from here into :attr:`tx` in one call (never in place: cryptography 51 refuses overlap)."""
        self.plain[1] = 0x21
        self.plain_view = memoryview(self.plain)
        self.plain_target = self.plain_view[2:]
        self.tx = bytearray(TX_DATA + PACKET_ROOM)
        """Frames sent by the hot path: GRE header, PPP prefix and MPPE header in front of the ciphertext,
        which starts at ``TX_DATA - 2``."""
        self.tx_view = memoryview(self.tx)
        self.tx_cipher = self.tx_view[TX_DATA - 2 :]
        self.rx = bytearray(PACKET_ROOM)
        """The receive hot path's plaintext (stateful MPPE: the running RC4 decrypts into it, the inner
        protocol field first), written to the TUN from here: no new ``bytes`` per packet."""
        self.rx_view = memoryview(self.rx)
        self.gre = bytearray(GRE_HEADER_ROOM + PACKET_ROOM)
        """A GRE call's other frames (control packets, ack-only packets), the header written in front."""
        self.gre_view = memoryview(self.gre)


_local = threading.local()


def data_buffers() -> DataBuffers:
    """This thread's buffers."""
    buffers: DataBuffers | None = getattr(_local, "buffers", None)
    if buffers is None:
        buffers = _local.buffers = DataBuffers()
    return buffers
