"""A classic BPF socket filter that gives each worker process only the GRE packets of its own calls.

The kernel hands a copy of every received GRE packet to every raw
``IPPROTO_GRE`` socket (``raw_v4_input``; see :mod:`pypptp.aio.gre`).  With
several worker processes (``pypptpd --workers N``, :mod:`pypptp.daemon.workers`),
each with its own raw socket, every packet would wake every worker.  Instead
each worker owns the Call IDs of one residue class (``ID % N == index``,
:class:`~pypptp.ctrl.callids.CallIdAllocator`), and its socket carries a
filter that accepts only that class.

How the kernel runs the filter (Documentation/networking/filter.rst, "Linux
Socket Filtering aka Berkeley Packet Filter"): ``setsockopt(SOL_SOCKET,
SO_ATTACH_FILTER, struct sock_fprog)`` attaches a classic BPF program, copied
into the kernel at that call.  ``sk_filter`` runs it on each packet before the
packet is queued on the socket (``sock_queue_rcv_skb``); it returns how many
bytes to keep, 0 meaning drop.  A dropped packet is never queued and never
wakes the process.  On a raw IPv4 socket the program sees the packet from its
IPv4 header on (``raw_rcv`` pushes the header back), after reassembly.  A
load past the end of the packet ends the program with 0 (drop); GRE that
short is malformed anyway.

The program (6 instructions)::

    ldxb  4*([0]&0xf)     X = IPv4 header length (BPF_LDX|BPF_B|BPF_MSH: IHL * 4)
    ldh   [x+6]           A = GRE bytes 6-7: the Call ID (RFC 2637 section 4.1: flags and version,
                              protocol type 0x880B, payload length, then the Call ID)
    mod   #N              A = A % N (BPF_ALU|BPF_MOD|BPF_K, Linux 3.7 and later)
    jeq   #index, 0, 1    the worker's class?
    ret   #0x40000        yes: keep the whole packet (any length up to 256 KiB)
    ret   #0              no: drop

``struct sock_filter`` is ``{u16 code; u8 jt; u8 jf; u32 k}`` in host byte
order; ``struct sock_fprog`` is ``{unsigned short len; struct sock_filter
*filter}``, built here with :mod:`struct` around a :mod:`ctypes` buffer that
lives until the call returns (the kernel copies the program).
"""

from __future__ import annotations

import contextlib
import ctypes
import socket
import struct

__all__ = ["SO_ATTACH_FILTER", "attach_filter", "gre_call_id_filter", "open_gre_socket"]

SO_ATTACH_FILTER = getattr(socket, "SO_ATTACH_FILTER", 26)
"""``<asm-generic/socket.h>``; Python's socket module does not export it."""

# classic BPF opcodes, <linux/filter.h> and <linux/bpf_common.h>
BPF_LD, BPF_LDX, BPF_ALU, BPF_JMP, BPF_RET = 0x00, 0x01, 0x04, 0x05, 0x06
BPF_H, BPF_B = 0x08, 0x10
BPF_IND, BPF_MSH = 0x40, 0xA0
BPF_MOD, BPF_JEQ, BPF_K = 0x90, 0x10, 0x00

ACCEPT = 0x40000
"""``ret`` value that keeps the whole packet: bytes to keep, more than any IPv4 packet holds."""
GRE_CALL_ID_OFFSET = 6
"""The Call ID's offset in the enhanced GRE header (RFC 2637 section 4.1): the low half of the key."""

_INSTRUCTION = struct.Struct("=HBBI")


def _insn(code: int, k: int = 0, jt: int = 0, jf: int = 0) -> bytes:
    return _INSTRUCTION.pack(code, jt, jf, k)


def gre_call_id_filter(workers: int, index: int) -> bytes:
    """The ``struct sock_filter`` array (host byte order) that accepts GRE with ``Call ID % workers == index``."""
    if workers < 2 or not 0 <= index < workers:
        raise ValueError(f"a filter for worker {index} of {workers}: need 2 or more workers and 0 <= index < workers")
    return b"".join(
        (
            _insn(BPF_LDX | BPF_B | BPF_MSH, 0),
            _insn(BPF_LD | BPF_H | BPF_IND, GRE_CALL_ID_OFFSET),
            _insn(BPF_ALU | BPF_MOD | BPF_K, workers),
            _insn(BPF_JMP | BPF_JEQ | BPF_K, index, jt=0, jf=1),
            _insn(BPF_RET | BPF_K, ACCEPT),
            _insn(BPF_RET | BPF_K, 0),
        )
    )


def attach_filter(sock: socket.socket, program: bytes) -> None:
    """``SO_ATTACH_FILTER``: run ``program`` (a ``struct sock_filter`` array) on every packet ``sock`` receives."""
    if not program or len(program) % _INSTRUCTION.size:
        raise ValueError("a classic BPF program is a whole number of 8-byte instructions")
    buffer = ctypes.create_string_buffer(program, len(program))
    fprog = struct.pack("@HP", len(program) // _INSTRUCTION.size, ctypes.addressof(buffer))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
    del buffer  # only now: the kernel has copied the program


def open_gre_socket(workers: int, index: int) -> socket.socket:
    """A raw GRE socket that receives only the GRE of worker ``index`` of ``workers`` (Call ID class).

    Packets queued before the filter was attached (any class) are read and discarded, so that
    everything the socket yields afterwards passed the filter."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_GRE)
    try:
        attach_filter(sock, gre_call_id_filter(workers, index))
        sock.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            for _ in range(100_000):  # bounded: what arrived in the moment before the filter
                sock.recv(65536)
    except BaseException:
        sock.close()
        raise
    return sock
