"""The raw-socket GRE transport for asyncio (RFC 2637 section 4), and one call's data path.

Design: one *unconnected* raw ``IPPROTO_GRE`` socket per server process,
added to the loop with ``add_reader``; each wakeup drains it with
non-blocking ``recv_into`` into one reused buffer, strips the IP header by
its IHL, decodes the GRE header and demultiplexes by (peer IPv4 address,
our Call ID) through one dict lookup keyed by a single integer.  GRE from an
unknown peer or for an unknown call is dropped and counted.

Why not one socket per call: the kernel hands a copy of every GRE packet
to every unconnected raw GRE socket, and walks every raw GRE socket (a
connect()ed one included, which then filters by peer) for every packet.
One unconnected socket means exactly one copy and one walk step per packet.
Measured (``python -m benchmarks.bench_gre``, 1400-byte payloads over veth
between two namespaces, 2-core machine): the cost of sending one packet,
which on veth includes the receiving host's delivery, was 5.55 us with one
receiving raw GRE socket, 7.9 us with 8 more unconnected ones and 26 to 46
us with 64 more (two runs): a socket per call would make every packet pay
for every call.
Per-peer connected sockets only pay off when several worker processes must
split the traffic without each receiving all of it, which is the
multi-worker design's concern, not this one's.

Sending: ``IP_MTU_DISCOVER = IP_PMTUDISC_DONT`` makes every packet leave
with DF=0.  Linux's default for raw sockets (``IP_PMTUDISC_WANT``) already
fragments locally what exceeds the outgoing interface's MTU, but it sets DF
on everything that fits, so a full-size packet meeting a smaller MTU further
along the path is dropped with an ICMP "fragmentation needed" that nothing
here can act on (the GRE sender has no way to shrink a PPP frame already
sent; the inner TCP adapts through MSS clamping instead).  With DF=0 the
router on that path fragments it, and the peer reassembles.

Errors: ``BlockingIOError`` ends a drain; any other ``OSError`` (for
example ENOPROTOOPT or ECONNREFUSED after an ICMP protocol-unreachable) is
counted, never fatal.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import errno
import ipaddress
import socket
import struct
from collections.abc import Callable

from pypptp.aio.buffers import data_buffers
from pypptp.aio.timer import DeadlineTimer
from pypptp.gre.codec import (
    DATA_ACK_HEADER,
    DATA_HEADER,
    FLAGS_DATA,
    FLAGS_DATA_ACK,
    MAX_HEADER_SIZE,
    NO_NUMBER,
    PPP_PROTOCOL_TYPE,
    GreError,
    decode_header,
    write_header,
)
from pypptp.gre.sequencing import GreSequencer

__all__ = [
    "DATA_ACK_START",
    "DATA_START",
    "FAST_END",
    "MIN_SEND_WINDOW",
    "GreCall",
    "GreTransport",
    "StraightReceive",
    "TransportCounters",
    "gre_fast_unpack",
    "set_receive_buffer",
]

IP_MTU_DISCOVER = getattr(socket, "IP_MTU_DISCOVER", 10)
IP_PMTUDISC_DONT = getattr(socket, "IP_PMTUDISC_DONT", 0)
RECV_BUFFER_SIZE = 65536
MAX_PACKETS_PER_WAKEUP = 64  # bounded drain: other ready fds get their turn

EARLY_PACKETS = 16
EARLY_SECONDS = 2.0
"""GRE for a call not registered yet is kept (at most this many packets, this long) and handed to the call
when it registers: a server starts PPP the moment it sends its Outgoing-Call-Reply, so its first LCP
Configure-Request can overtake the reply and reach a client whose call does not exist yet; dropped, it
would cost a whole LCP restart period (3 s)."""

SOCKET_BUFFER_BYTES = 4 * 1024 * 1024  # absorbs bursts from many calls between two loop wakeups
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)

MIN_SEND_WINDOW = 64
"""The smallest GRE send window we honour, whatever the peer announced (the daemon and the client).
pptp-linux announces 3 in its OCRQ but acks lazily (user-space mode) or not at all (the kernel driver,
which ignores windows); pptpd and accel-ppp echo the window and do not let it throttle them.  Measured
with the real pptp-linux client in the VM harness: honouring 3 gave 4.2 Mbit/s server-to-client against
27 client-to-server.  Windows announces 64, so it is unaffected."""

StraightReceive = Callable[[socket.socket, memoryview, int, int, int, int, int, float], tuple[int, int]]
"""The signature of a call's receive hot path (:attr:`GreCall.straight`)."""

_SRC = struct.Struct(">I")
_FAST = struct.Struct(">I4x" + DATA_ACK_HEADER.format.lstrip(">"))
"""From byte 12 of a 20-byte IPv4 header on: the source address, then a GRE header as the codec's
:data:`~pypptp.gre.codec.DATA_ACK_HEADER` lays it out (RFC 2637 section 4.1; with A clear the last word
is payload): the data path's one unpack for the common packet shapes."""
FAST_END = 12 + _FAST.size  # 36: the bytes it reads
DATA_ACK_START = 20 + DATA_ACK_HEADER.size  # 36: the payload after an IPv4 header and a data+ack header
DATA_START = 20 + DATA_HEADER.size  # 32: after a data header
gre_fast_unpack = _FAST.unpack_from  # bound once: the hot path's calls cost no attribute lookup


def set_receive_buffer(sock: socket.socket, size: int) -> None:
    """Ask for a ``size``-byte receive buffer, past net.core.rmem_max when privileged."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, size)
    except PermissionError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)


def _peer_key(peer_ip: int, call_id: int) -> int:
    return (peer_ip << 16) | call_id


@dataclasses.dataclass(slots=True)
class TransportCounters:
    received: int = 0
    malformed: int = 0
    unknown_call: int = 0  # unknown (peer IP, Call ID): stray or spoofed
    receive_errors: int = 0
    sent: int = 0
    send_errors: int = 0
    send_would_block: int = 0


class GreTransport:
    """One raw GRE socket shared by every call of a server (or of a client)."""

    def __init__(self, local_ip: str | None = None) -> None:
        self.local_ip = local_ip
        self.counters = TransportCounters()
        self.calls: dict[int, GreCall] = {}
        self._early: collections.deque[tuple[int, float, int, int, bytes]] = collections.deque(maxlen=EARLY_PACKETS)
        """(peer key, arrival, Sequence Number, Acknowledgment Number, payload) of GRE for unknown calls."""
        self._sock: socket.socket | None = None
        self._buffer = bytearray(RECV_BUFFER_SIZE)
        self._view = memoryview(self._buffer)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._watching = False

    def open(self, sock: socket.socket | None = None, *, watch: bool = True) -> None:
        """Create the raw socket (or adopt ``sock``, e.g. one made in a namespace).

        With ``watch`` (the default) the loop calls :meth:`drain` whenever it
        is readable; without, the caller drives :meth:`drain` (benchmarks)."""
        if sock is None:
            sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_GRE)
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DONT)
        set_receive_buffer(sock, SOCKET_BUFFER_BYTES)
        if self.local_ip:
            sock.bind((self.local_ip, 0))
        self._sock = sock
        self._loop = asyncio.get_running_loop()
        self._watching = watch
        if watch:
            self._loop.add_reader(sock.fileno(), self.drain)

    def unwatch(self) -> None:
        """Stop the loop from draining the socket; the caller drives :meth:`drain` (benchmarks)."""
        if self._watching and self._loop is not None and self._sock is not None:
            self._loop.remove_reader(self._sock.fileno())
        self._watching = False

    def close(self) -> None:
        if self._sock is None:
            return
        if self._watching and self._loop is not None:
            self._loop.remove_reader(self._sock.fileno())
        self._sock.close()
        self._sock = None

    def add_call(self, call: GreCall) -> None:
        key = call.key
        self.calls[key] = call
        if self._loop is not None and any(early[0] == key for early in self._early):
            self._loop.call_soon(self._replay_early, key)  # once its owner has wired the call up

    def _replay_early(self, key: int) -> None:
        call = self.calls.get(key)
        now = self._loop.time() if self._loop is not None else 0.0
        kept = [early for early in self._early if early[0] == key and now - early[1] <= EARLY_SECONDS]
        for early in kept:
            self._early.remove(early)
        if call is not None:
            for _, _, seq, ack, payload in kept:
                call.gre_received(seq, ack, memoryview(payload), now)

    def _unknown(self, key: int, seq: int, ack: int, payload: memoryview, now: float) -> None:
        self.counters.unknown_call += 1
        self._early.append((key, now, seq, ack, bytes(payload)))

    def remove_call(self, call: GreCall) -> None:
        self.calls.pop(call.key, None)

    @staticmethod
    def closed_sendto(packet: memoryview, peer: tuple[str, int]) -> int:
        """What a call made on a transport not open (yet) sends with: nothing."""
        raise OSError(errno.EBADF, "the GRE transport is not open")

    def sendto(self, packet: memoryview, peer: tuple[str, int]) -> None:
        if self._sock is None:  # closed: a call's last timer may still fire; nothing to send on
            self.counters.send_errors += 1
            return
        try:
            self._sock.sendto(packet, peer)
            self.counters.sent += 1
        except BlockingIOError:
            self.counters.send_would_block += 1  # dropping is legal for PPP
        except OSError:
            self.counters.send_errors += 1

    def drain(self) -> None:
        """Hot path: read what the socket holds (at most MAX_PACKETS_PER_WAKEUP),
        demultiplex, hand each packet to its call."""
        sock = self._sock
        if sock is None:
            return
        buffer, view, counters, calls = self._buffer, self._view, self.counters, self.calls
        # the wire format's names as locals: looked up once per wakeup, not once per packet
        unpack, fast_end, data_ack_start, data_start = gre_fast_unpack, FAST_END, DATA_ACK_START, DATA_START
        ppp_type, data_ack, data, no_number = PPP_PROTOCOL_TYPE, FLAGS_DATA_ACK, FLAGS_DATA, NO_NUMBER
        assert self._loop is not None
        now = self._loop.time()
        left = MAX_PACKETS_PER_WAKEUP
        length = 0  # > 0: a packet the receive hot path read and handed back, in the buffer
        while left > 0 or length > 0:
            if length <= 0:
                left -= 1
                try:
                    length = sock.recv_into(buffer)
                except BlockingIOError:
                    return
                except OSError as exc:
                    counters.receive_errors += 1
                    if exc.errno in (errno.EBADF, errno.ENOTSOCK):
                        return
                    length = 0
                    continue
                counters.received += 1
            # IPv4 without options and the two usual header shapes, checked here as decode_header would
            if buffer[0] == 0x45 and length >= fast_end:
                src, flags, protocol, payload_length, call_id, seq, ack = unpack(buffer, 12)
                if protocol == ppp_type:
                    if flags == data_ack:
                        start = data_ack_start
                    elif flags == data:
                        start, ack = data_start, no_number
                    else:
                        start = 0
                    end = start + payload_length
                    if start and end <= length:
                        length = 0
                        call = calls.get(src << 16 | call_id)
                        if call is None:
                            self._unknown(src << 16 | call_id, seq, ack, view[start:end], now)
                            continue
                        straight = call.straight
                        if straight is not None:  # it reads on while the packets are its call's
                            used, length = straight(sock, view, seq, ack, start, end, left, now)
                            left -= used
                            if length < 0:  # the socket is empty
                                return
                        else:
                            call.received(seq, ack, view[start:end], now)
                        continue
            size, length = length, 0
            ihl = (buffer[0] & 0x0F) * 4
            try:
                header = decode_header(view[ihl:size])
            except GreError:
                counters.malformed += 1
                continue
            key = _peer_key(_SRC.unpack_from(buffer, 12)[0], header.call_id)
            call = calls.get(key)
            start = ihl + header.header_size
            if call is None:
                self._unknown(key, header.seq, header.ack, view[start : start + header.payload_length], now)
                continue
            call.gre_received(header.seq, header.ack, view[start : start + header.payload_length], now)


class GreCall:
    """The data path of one call: sequencing, acks and timers over a shared transport.

    ``deliver(payload)`` is called synchronously, in order, with a view into
    a shared buffer: copy it if you keep it.
    """

    def __init__(
        self,
        transport: GreTransport,
        peer_ip: str,
        call_id: int,
        peer_call_id: int,
        deliver: Callable[[memoryview | bytes], object],
        *,
        peer_window: int = 64,
        our_window: int = 64,
        sequencer: GreSequencer | None = None,
    ) -> None:
        self.transport = transport
        self.peer_ip = peer_ip
        self.peer_ip_int = int(ipaddress.IPv4Address(peer_ip))
        self.key = _peer_key(self.peer_ip_int, call_id)
        """(peer address, our Call ID) as one integer: the transport's demultiplexing key for this call."""
        self.call_id = call_id
        self.peer_call_id = peer_call_id
        self.deliver = deliver
        self.seq = sequencer or GreSequencer(peer_window, our_window)
        self.peer = (peer_ip, 0)
        """The peer's address as ``sendto`` takes it."""
        buffers = data_buffers()  # shared with every call of this thread: each send is done before the next
        self._out, self._out_view = buffers.gre, buffers.gre_view
        self._loop = asyncio.get_running_loop()
        self._timer = DeadlineTimer(self._loop, self._on_timer)
        self.room_waiter: Callable[[], None] | None = None
        """Who waits for room in the peer's window (:meth:`notify_room`)."""
        self.straight: StraightReceive | None = None
        """Set by the session while its receive hot path runs (``PppSession._straight_receive``): the
        demultiplexer hands it this call's data packets of the usual shapes as (the socket, the receive
        buffer, Sequence Number, Acknowledgment Number or NO_NUMBER, payload start, payload end, reads left
        in this wakeup, now); it takes that packet and reads on from the socket while the packets are
        this call's, :meth:`received` included for those that are not its common one, and returns (reads
        made, the length of a packet it read and left in the buffer for the demultiplexer, 0 for none,
        -1 when the socket is empty)."""
        self.sendto = transport._sock.sendto if transport._sock is not None else transport.closed_sendto
        """The transport's socket's ``sendto``, bound once: :meth:`send_in_place` sends with it, and so does the
        session's TUN hot path, which frames and sends bursts itself (and reports them with :meth:`count_sent`)."""
        transport.add_call(self)

    def close(self) -> None:
        """The call has ended: off the transport, and without the references that lead back to it or to
        its session (its timer's bound method, ``deliver``, the room waiter), so that it and its session are
        freed by reference counting once their owner lets go, not at the next full garbage collection."""
        self.transport.remove_call(self)
        self._timer.close()
        self.room_waiter = None
        self.straight = None
        self.deliver = _ended

    def send(self, payload: bytes | memoryview) -> bool:
        """Send one PPP frame; False if the peer's window is full (the frame is dropped)."""
        now = self._loop.time()
        if not self.seq.can_send(now):
            return False
        n = len(payload)
        self._out[MAX_HEADER_SIZE : MAX_HEADER_SIZE + n] = payload
        self.send_in_place(self._out, self._out_view, MAX_HEADER_SIZE, MAX_HEADER_SIZE + n, now)
        return True

    def send_in_place(self, buffer: bytearray, view: memoryview, start: int, end: int, now: float) -> None:
        """Send the PPP frame ``buffer[start:end]`` with no copy: the GRE header (RFC 2637 section 4.1) is
        written into the up to 16 bytes before ``start``.  Called only right after the sequencer's
        ``can_send(now)`` said True.  (Taking the ack needs no timer change: it only ever removes a
        deadline.)"""
        seq = self.seq
        start = write_header(buffer, start, self.peer_call_id, end - start, seq.take_seq(now), seq.take_ack())
        counters = self.transport.counters
        try:
            self.sendto(view[start:end], self.peer)  # the call's sendto, as the TUN hot path's bursts
            counters.sent += 1
        except BlockingIOError:
            counters.send_would_block += 1  # dropping is legal for PPP
        except OSError:
            counters.send_errors += 1  # the transport's socket is gone, or the network said no

    def count_sent(self, frames: int, errors: int, would_block: int) -> None:
        """A burst of ``frames`` data packets went through :attr:`sendto`, of which ``errors`` failed and
        ``would_block`` found the socket buffer full: the transport's counters, once per burst."""
        counters = self.transport.counters
        counters.sent += frames - errors - would_block
        counters.send_errors += errors
        counters.send_would_block += would_block

    def notify_room(self, waiter: Callable[[], None]) -> None:
        """Call ``waiter`` once, as soon as an ack opens the peer's window again (the session pauses
        its TUN reader while the window is full: packets wait in the kernel's queue instead of being
        read and dropped, which TCP would take for heavy loss)."""
        self.room_waiter = waiter

    def wake_room_waiter(self, now: float) -> None:
        waiter = self.room_waiter
        if waiter is not None and self.seq.can_send(now):
            self.room_waiter = None
            waiter()

    def received(self, seq_number: int, ack: int, payload: memoryview, now: float) -> None:
        """A data packet of the usual shapes from the demultiplexer (or from the session's receive hot path,
        which leaves it what is not its common packet): the sequencer's in-order case first, else
        :meth:`gre_received`."""
        fast = self.seq.in_order(seq_number, ack, now)
        if fast:
            if self.room_waiter is not None:
                self.wake_room_waiter(now)
            self.deliver(payload)
            if fast == 2:
                self.rearm()
        else:
            self.gre_received(seq_number, ack, payload, now)

    def gre_received(self, seq_number: int, ack: int, payload: memoryview, now: float) -> None:
        seq = self.seq
        if ack != NO_NUMBER:
            seq.on_ack(ack, now)
            if self.room_waiter is not None:
                self.wake_room_waiter(now)
        if seq_number != NO_NUMBER:
            fast = seq.in_order(seq_number, NO_NUMBER, now)  # (the ack was applied above)
            if fast:
                self.deliver(payload)
                if fast == 2:
                    self.rearm()
                return
            if seq.on_data(seq_number, payload, now):
                self.deliver(payload)
            while (ready := seq.pop_ready()) is not None:
                self.deliver(ready)
            self.rearm()

    def rearm(self) -> None:
        """Follow the sequencer's next deadline (after it changed outside this object's methods), lazily:
        see :meth:`DeadlineTimer.ensure`; the timer callback arms exactly."""
        self._timer.ensure(self.seq.next_deadline())

    def _on_timer(self, now: float) -> None:
        seq = self.seq
        seq.handle_timer(now)
        while (ready := seq.pop_ready()) is not None:
            self.deliver(ready)
        ack = seq.ack_only_due(now)
        if ack != NO_NUMBER:
            start = write_header(self._out, MAX_HEADER_SIZE, self.peer_call_id, 0, NO_NUMBER, ack)
            self.transport.sendto(self._out_view[start:MAX_HEADER_SIZE], self.peer)
        self._timer.arm(seq.next_deadline())


def _ended(payload: memoryview | bytes) -> None:
    """A closed call's ``deliver``: what still arrives for it is dropped."""
