"""One PPP session on asyncio: a GRE call, a :class:`~pypptp.ppp.link.PppLink` and a ``pppN`` TUN.

Shared by the daemon (one per call) and the library client.  The session
owns no socket: frames leave through a ``send`` callable (the call's
:class:`~pypptp.aio.gre.GreCall`) and arrive through :meth:`PppSession.receive_frame`
(the call's ``deliver``); :func:`session_over_gre` builds a call and its
session wired to each other that way.  It owns the link's timer, the TUN
device once the network is up, and the byte counters pppd reports at the end.

Data path, per direction:

* GRE -> TUN: the frame goes to the link (which decrypts MPPE and checks
  that the NCP is open); IPv4 packets have their TCP MSS clamped and are
  written to the TUN descriptor.  Hot path (:meth:`PppSession._straight_receive`,
  the call's ``straight``): the demultiplexer hands over the call's first
  data packet of a wakeup, and the session takes it and the ones that follow
  from the socket itself, as long as each is the common one (the next in
  GRE order, the common MPPE packet): the sequencer's and the decryptor's
  state in local variables for the run, stateful RC4 into a reused buffer,
  the TUN write when the packet holds IPv4 with IPCP Opened or IPv6 with
  IPV6CP Opened (one table lookup).  Anything else is stored back and goes
  the general way (the call's ``received``, then :meth:`PppSession.receive_frame`
  with the MPPE core's ``decrypt_next`` and ``decrypt``).
* TUN -> GRE: each wakeup drains the TUN descriptor (bounded) into one
  reused buffer; IPv4 SYNs get their MSS clamped; the link encrypts and
  frames; the GRE call sends.  Hot path (:meth:`PppSession._tun_burst`): a
  burst within the peer's GRE window, MPPE encrypting from that buffer
  straight into the send buffer behind the headers, which one ``struct``
  pack writes in front (GRE with the highest number received as the ack on
  every packet, PPP prefix, MPPE header), one ``sendto`` each; the GRE
  numbers, the ack and the counters are taken once per burst.  Never in
  place: cryptography 51 refuses overlapping buffers.

LCP renegotiation (the peer's, or :meth:`PppSession.renegotiate`) takes the
network down and up again on the same ``pppN``: the hot path stops at once
(the link drops its MPPE codecs on LCP down) and runs again with the new
encryptor and decryptor, keyed from the new authentication, as soon as the
link reports the network up.  The device keeps its addresses; a changed MTU
is applied, changed addresses end the session (the device cannot take them
over; pppd would reconfigure it).

MSS clamping (on by default) keeps TCP segments within the tunnel MTU,
which MPPE makes 4 bytes smaller than the peer's MRU: Windows advertises
an MSS for MRU 1400 without that allowance (ccp-mppe.md section 9).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import functools
import logging
import os
import socket
import struct
from collections.abc import Awaitable, Callable
from ipaddress import IPv4Address
from typing import Any, Required, TypedDict, Unpack

from pypptp.aio.buffers import TX_DATA, data_buffers
from pypptp.aio.gre import (
    DATA_ACK_START,
    DATA_START,
    FAST_END,
    MIN_SEND_WINDOW,
    GreCall,
    GreTransport,
    gre_fast_unpack,
)
from pypptp.aio.timer import DeadlineTimer
from pypptp.gre.codec import DATA_ACK_HEADER, FLAGS_DATA, FLAGS_DATA_ACK, NO_NUMBER, PPP_PROTOCOL_TYPE
from pypptp.gre.sequencing import GreSequencer
from pypptp.host.mss import clamp_mss, mss_for_mtu
from pypptp.host.tun import TunDevice, TunError
from pypptp.ppp import logtext
from pypptp.ppp.auth import AuthRequest, ExternalVerdict
from pypptp.ppp.frame import Protocol
from pypptp.ppp.link import (
    AuthAttemptFailed,
    Authenticated,
    DataReceived,
    LinkDown,
    LinkLog,
    NetworkDown,
    NetworkUp,
    Phase,
    PhaseChanged,
    PppLink,
    VerifyRequested,
)
from pypptp.ppp.mppe import CARRIED, HEADERS, MppeDecryptor, MppeEncryptor, OneShotRC4

__all__ = ["PppSession", "SessionOptions", "SessionStats", "Verifier", "session_over_gre"]

Verifier = Callable[["PppSession", AuthRequest], Awaitable[ExternalVerdict]]
"""Judges a peer's credentials outside the core (``AuthConfig.external``; the daemon's AAA backend, e.g.
RADIUS).  It must end in bounded time; an exception counts as a rejection."""

_write = os.write  # the hot path's TUN write, bound once
_RunState = tuple[int, int, int, bool, "float | None", bool, int, int, bytes, int, int, int]
"""The receive state :meth:`PppSession._straight_receive` keeps in locals for a run, as it stores it back."""
_Loaded = tuple[int, "dict[int, Any]", int, bool, "float | None", int, int, bytes, bytearray, "Callable[..., Any]"]
"""The receive state :meth:`PppSession._straight_receive` takes from the cores (``_straight_load``)."""

MAX_TUN_PACKETS_PER_WAKEUP = 64
ROOM_POLL = 0.05
"""Seconds a TUN reader paused by a full GRE window waits before it looks again without an ack."""
_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "notice": logging.INFO, "warning": logging.WARNING}


def _protocol_table(*protocols: int) -> bytes:
    """256 flags: 1 at each inner protocol number (0x21-0xFA, one byte) the hot path may deliver."""
    table = bytearray(256)
    for protocol in protocols:
        table[protocol] = 1
    return bytes(table)


_TUN_PROTOCOLS = {
    (ipv4, ipv6): _protocol_table(*[p for p, on in ((Protocol.IPV4, ipv4), (Protocol.IPV6, ipv6)) if on])
    for ipv4 in (False, True)
    for ipv6 in (False, True)
}
"""By (IPCP Opened, IPV6CP Opened): the inner protocols the receive hot path writes to the TUN."""


def _mppe_offset(frame: bytes | memoryview) -> int:
    """Where the MPPE packet starts in a PPP ``frame`` (more than 4 bytes) whose protocol is 0x00FD with its
    address and control fields (FF 03 00 FD), or uncompressed without them (00 FD); 0 for any other frame.
    (The usual shape, FD alone, is tested inline by the caller.)"""
    if frame[0] == 0xFF and frame[1] == 3 and frame[2] == 0 and frame[3] == 0xFD:
        return 4
    if frame[0] == 0 and frame[1] == 0xFD:
        return 2
    return 0


@functools.cache
def _frame_header(prefix: bytes) -> tuple[Callable[..., None], int]:
    """The TUN hot path's frame header for a PPP ``prefix`` (address, control, protocol 0x00FD as
    negotiated): the GRE header with Sequence and Acknowledgment Numbers (RFC 2637 section 4.1), the
    prefix and the 2-byte MPPE header (RFC 3078 section 3), packed in one call.  Its ``pack_into``, and
    where it starts in the send buffer so that it ends where the ciphertext starts (``TX_DATA - 2``)."""
    header = struct.Struct(f"{DATA_ACK_HEADER.format}{len(prefix)}s2s")
    return header.pack_into, TX_DATA - 2 - header.size


def _is_syn(packet: bytes | bytearray | memoryview, start: int, end: int) -> bool:
    """Whether the IPv4 packet ``packet[start:end]``, known to carry TCP, is a SYN (or SYN-ACK): the only
    segments whose MSS is clamped, on either path.  Its callers test for TCP first (one byte, inline), so
    that other packets pay no call."""
    flags = start + (packet[start] & 0x0F) * 4 + 13  # the TCP flags byte, after the IHL's IP header
    return end > flags and packet[flags] & 0x02 != 0


@dataclasses.dataclass(slots=True)
class SessionStats:
    bytes_sent: int = 0  # IP bytes into the tunnel (pppd counts what the interface sent)
    bytes_received: int = 0
    packets_sent: int = 0
    packets_received: int = 0
    tun_write_errors: int = 0
    send_refused: int = 0  # no room in the peer's GRE window, or the link would not send
    tun_pauses: int = 0  # the TUN reader waited for the peer's GRE window to open


class PppSession:
    """A PPP link wired to a frame sender, timers and (once IPCP is up) a TUN device."""

    def __init__(
        self,
        link: PppLink,
        send: Callable[[bytes | memoryview], bool],
        *,
        call: GreCall | None = None,
        log: logging.Logger,
        on_up: Callable[[PppSession, NetworkUp], None] | None = None,
        on_auth: Callable[[PppSession, Authenticated | AuthAttemptFailed], None] | None = None,
        on_down: Callable[[PppSession, str], None] | None = None,
        attach_tun: bool = True,
        clamp: bool = True,
        make_tun: Callable[[], TunDevice] = TunDevice,
        idle: float = 0.0,
        maxconnect: float = 0.0,
        verify: Verifier | None = None,
    ) -> None:
        self.link = link
        link.log_packets = lambda: log.isEnabledFor(logging.DEBUG)  # pppd's debug packet lines (slow path)
        self.send = send
        self.call = call
        """The GRE call that ``send`` sends through, if it is one (:func:`session_over_gre`): the TUN hot path
        then frames and sends bursts itself (:meth:`_tun_burst`); without, every packet takes the link."""
        self.notify_room = call.notify_room if call is not None else None
        """With it (the call's ``GreCall.notify_room``), a full window pauses the TUN reader until an
        ack opens it, or :data:`ROOM_POLL` passes; without, packets read meanwhile are dropped."""
        self._tun_paused = False
        self._room_poll: asyncio.TimerHandle | None = None
        self.log = log
        self.on_up = on_up
        self.on_auth = on_auth
        """Told of each failed attempt to authenticate the peer and of every final result (the daemon
        counts failures per address)."""
        self.on_down = on_down
        self.attach_tun = attach_tun
        self.clamp = clamp
        self.make_tun = make_tun
        self.idle = idle
        """pppd ``idle``: end the link after this many seconds without IP packets either way; 0: never."""
        self.maxconnect = maxconnect
        """pppd ``maxconnect``: end the link this many seconds after the network came up; 0: never."""
        self.verify = verify
        """Given a :class:`~pypptp.ppp.link.VerifyRequested`, runs off the link (a task per request, at most
        one at a time: the authenticator waits) and hands the verdict back; cancelled when the session ends."""
        self._verifying: asyncio.Task[None] | None = None
        self.mtu_limit = 0
        """The largest MTU the interface may get (RADIUS Framed-MTU), 0: whatever the peer's MRU allows."""
        self._idle_mark = -1
        self.loop = asyncio.get_running_loop()
        self.tun: TunDevice | None = None
        self.network: NetworkUp | None = None
        self.stats = SessionStats()
        self.started_at = self.loop.time()
        self.network_since: float | None = None
        """When IPCP came up (pppd's CONNECT_TIME counts from there)."""
        self.closed = False
        self.close_reason = ""
        self.received: asyncio.Queue[bytes] | None = None if attach_tun else asyncio.Queue(maxsize=1024)
        """Without a TUN (library use), received IP packets wait here."""
        self._mss = 0
        self._buffers = data_buffers()
        """The hot path's buffers, shared with every session of this thread (:mod:`pypptp.aio.buffers`)."""
        self._rx, self._rx_view = self._buffers.rx, self._buffers.rx_view
        self._tx_prefix = b""
        """The PPP address/control/protocol prefix of our MPPE frames (written in front of each packet
        with its GRE and MPPE headers: the send buffer is shared)."""
        self._tx_pack, self._tx_start = _frame_header(b"")
        """The hot path's frame header for :attr:`_tx_prefix` (:func:`_frame_header`)."""
        self._timer = DeadlineTimer(self.loop, self._on_timer)
        self._fast_decryptor: MppeDecryptor | None = None
        self._fast_encryptor: MppeEncryptor | None = None
        self._fast_mtu = 0
        self._fast_fd = -1
        """The TUN descriptor while the hot path runs and a TUN is attached; -1 otherwise."""
        self._fast_open = _TUN_PROTOCOLS[False, False]
        """Indexed by a decrypted inner protocol: 1 when the hot path may deliver it, i.e. IPv4 with IPCP
        Opened, IPv6 with IPV6CP Opened (one lookup per packet; the slow path keeps it up to date)."""
        self._limits = DeadlineTimer(self.loop, self._on_limits)
        self._tun_setting: tuple[IPv4Address, IPv4Address, int] | None = None
        """The TUN device's local and peer addresses and MTU, as configured."""
        self.network_hold: asyncio.Future[Any] | None = None
        """Set by the owner before IPCP comes up (the daemon: the previous holder of the session's address
        is still being torn down): the network comes up here (the TUN device, ``on_up``) only once it is
        done.  The peer's packets meanwhile are dropped, as by an interface that is not up yet."""

    # -- driving ---------------------------------------------------------------------------

    def start(self) -> None:
        self.link.open(self.loop.time())
        self._flush()

    def receive_frame(self, frame: bytes | memoryview) -> None:
        """A PPP frame from GRE (the GreCall's ``deliver``); never raises.

        Once the network is up with MPPE, an encrypted frame is decrypted and its IP packet delivered
        here (:meth:`_deliver`), without the link's event machinery; everything else goes to the link.
        The common packet (the next one, in the common MPPE shape: :meth:`MppeDecryptor.decrypt_next
        <pypptp.ppp.mppe.MppeDecryptor.decrypt_next>`) costs one call into the core.  With a TUN, the
        packets that come here are those the hot path leaves (:meth:`_straight_receive`: reordered ones,
        key changes); without (library use), all of them."""
        decryptor = self._fast_decryptor
        if decryptor is not None and len(frame) > 4:
            offset = 1 if frame[0] == 0xFD else _mppe_offset(frame)
            if offset:
                try:
                    data = decryptor.decrypt_next(frame, offset)
                    if data is None:  # not the common packet: the core's general path
                        self._receive_mppe(decryptor, frame, offset)
                    else:
                        self._ended_mppe(decryptor, data)
                except Exception:
                    self.log.exception("internal error on the data path; closing the session")
                    self.close("internal error")
                return
        if self.closed:
            return
        try:
            self.link.receive_frame(frame, self.loop.time())
            self._flush()
        except Exception:  # a bug must cost this session only
            self.log.exception("internal error on a received frame; closing the session")
            self.close("internal error")

    def _straight_receive(
        self, sock: socket.socket, frame: memoryview, seq: int, ack: int, start: int, end: int, left: int, now: float
    ) -> tuple[int, int]:
        """The GRE -> TUN hot path, installed as the call's :attr:`GreCall.straight
        <pypptp.aio.gre.GreCall.straight>` while the network is up with MPPE and a TUN takes the packets.

        The demultiplexer hands over the first data packet of this call it read into ``frame`` (the
        transport's receive buffer: its numbers, and where its PPP frame lies); this takes it, then reads
        the packets that follow from ``sock`` itself, at most ``left``, as long as they are this call's data
        packets of the usual shapes.  Returns (reads it made, of the demultiplexer's ``left``; what the buffer
        holds now): the length of a packet read and not taken (another call's, or an unusual one) that the
        demultiplexer must take next, 0 for none, -1 when the socket is empty.

        A packet is the common one when it is the next in GRE order with nothing held
        (:meth:`GreSequencer.in_order <pypptp.gre.sequencing.GreSequencer.in_order>`'s case) and the common
        MPPE packet (:meth:`MppeDecryptor.decrypt_next <pypptp.ppp.mppe.MppeDecryptor.decrypt_next>`'s case)
        behind a one-byte protocol field (FD, PFC).  Both checks come first and change nothing; then both
        cores' state moves as those two methods move it, kept in local variables for the run and stored
        back (:meth:`_straight_store`) before anything else can look at it: at the end, and before a packet
        that is not the common one goes the general way (:meth:`GreCall.received
        <pypptp.aio.gre.GreCall.received>`, then :meth:`receive_frame`).  A stateful packet is decrypted
        into the thread's receive buffer and written from there.  ``tests/test_session_straight.py`` drives
        both paths with the same packets, one and several at a time, and holds them equal.  Never raises,
        like :meth:`receive_frame`."""
        decryptor, stats = self._fast_decryptor, self.stats
        call = self.call
        # installed by _update_fast_path, which takes it away with the decryptor, the TUN or the session
        assert call is not None and decryptor is not None
        sequencer = call.seq
        key, transport_counters = call.key, call.transport.counters
        unpack, fast_end, data_ack_start, data_start = gre_fast_unpack, FAST_END, DATA_ACK_START, DATA_START
        ppp_type, data_ack, data_only, no_number = PPP_PROTOCOL_TYPE, FLAGS_DATA_ACK, FLAGS_DATA, NO_NUMBER
        fd, tun = self._fast_fd, self._fast_open
        plain, packet_buffer, changer = self._rx, self._rx_view, decryptor._changer
        stateful_mode = decryptor._stateful
        threshold, delay = sequencer._ack_now_threshold, sequencer.ack_delay
        # the cores' receive state, in locals for the run (stored back by _straight_store)
        expected, held, unacked, pending, due, next_count, last, mppe_key, ahead, update_into = self._straight_load(
            sequencer, decryptor
        )
        delivered = changes = packets = nbytes = 0
        rearm = False
        used = read = 0
        length = -2  # (the first packet is in hand)
        try:
            while True:
                if length != -2:  # the next packet, read here: this call's data packet of the usual shapes?
                    if used == left:
                        return used, 0
                    used += 1
                    try:
                        length = sock.recv_into(frame)
                    except BlockingIOError:
                        return used, -1
                    except OSError as exc:
                        transport_counters.receive_errors += 1
                        if exc.errno in (errno.EBADF, errno.ENOTSOCK):
                            return used, -1
                        continue
                    read += 1
                    # as the demultiplexer checks them (GreTransport.drain); anything else goes back to it
                    if frame[0] != 0x45 or length < fast_end:
                        return used, length
                    src, flags, protocol, payload_length, call_id, seq, ack = unpack(frame, 12)
                    if flags == data_ack:
                        start = data_ack_start
                    elif flags == data_only:
                        start, ack = data_start, no_number
                    else:
                        return used, length
                    end = start + payload_length
                    if protocol != ppp_type or src << 16 | call_id != key or end > length:
                        return used, length
                length = 0
                if (
                    seq != expected
                    or held
                    or not 4 < end - start <= 16389  # 1 + MAX_INFORMATION
                    or frame[start] != 0xFD
                ):
                    common = False
                else:
                    first = frame[start + 1]
                    count = (first & 0x0F) << 8 | frame[start + 2]
                    if count == next_count:  # stateful, in step (never stateless: _next stays -1)
                        common = first & 0x90 == 0x10 and count & 0xFF != 0xFF  # neither A nor a flag packet
                    else:
                        common = (
                            not stateful_mode and first & 0x90 == 0x90 and (count - last) & 0xFFF == 1 and not ahead
                        )
                if common:
                    # GRE: the packet is the next one (GreSequencer.in_order's accounting)
                    if ack != sequencer._peer_acked and ack >= 0:  # a new ack (most packets repeat the last one)
                        sequencer.on_ack(ack, now)
                    if call.room_waiter is not None:
                        call.wake_room_waiter(now)
                    expected = (seq + 1) & 0xFFFFFFFF
                    delivered += 1
                    unacked += 1
                    if not pending:
                        pending = True
                        due = now if unacked >= threshold else now + delay
                        rearm = True
                    elif unacked >= threshold and due != now:
                        due = now
                        rearm = True
                    # MPPE: the common packet (MppeDecryptor.decrypt_next's cases)
                    if count == next_count:
                        next_count = (count + 1) & 0xFFF
                        n = end - start - 3
                        update_into(frame[start + 3 : end], packet_buffer)
                        data: bytes | bytearray = plain
                        packet = packet_buffer
                        new_key = None
                    else:
                        new_key = changer.next(mppe_key)
                        changes += 1
                        data = OneShotRC4(new_key).encrypt(bytes(frame[start + 3 : end]))  # bytes in, bytes out
                        n = len(data)
                        packet = memoryview(data)
                    if data[0] or not CARRIED[data[1]]:  # no 2-byte protocol MPPE carries: the core settles it
                        step = functools.partial(self._settle, decryptor, bytes(packet[:n]), count, new_key)
                    else:
                        if new_key is not None:
                            mppe_key, last = new_key, count
                        protocol = data[1]
                        if tun[protocol]:
                            packets += 1
                            nbytes += n - 2
                            try:
                                # A TCP SYN gets its MSS clamped (byte 35: the flags behind a 20-byte IPv4 header)
                                if (
                                    n > 35
                                    and (data[35] & 0x02 or data[2] != 0x45)
                                    and protocol == 0x21
                                    and data[11] == 6
                                ):
                                    _write(fd, memoryview(self._clamped(bytes(packet[:n]), 2))[2:])
                                else:
                                    _write(fd, packet[2:n])
                            except OSError:
                                stats.tun_write_errors += 1
                            continue
                        # an NCP that is not open, or no TUN: the session's general delivery
                        step = functools.partial(self._decrypted, protocol, bytes(packet[2:n]))
                else:
                    step = functools.partial(self._call_received, frame, seq, ack, start, end, now)
                # the general way, with the cores' state stored first and taken again after
                loaded = self._straight_aside(
                    sequencer,
                    decryptor,
                    (
                        expected,
                        delivered,
                        unacked,
                        pending,
                        due,
                        rearm,
                        next_count,
                        last,
                        mppe_key,
                        changes,
                        packets,
                        nbytes,
                    ),
                    step,
                )
                delivered = changes = packets = nbytes = 0
                rearm = False
                if loaded is None:  # the hot path ended
                    return used, 0
                expected, held, unacked, pending, due, next_count, last, mppe_key, ahead, update_into = loaded
        except Exception:
            self.log.exception("internal error on the data path; closing the session")
            self.close("internal error")
            return used, 0
        finally:
            transport_counters.received += read
            if delivered or changes or rearm or packets:
                self._straight_store(
                    sequencer,
                    decryptor,
                    (
                        expected,
                        delivered,
                        unacked,
                        pending,
                        due,
                        rearm,
                        next_count,
                        last,
                        mppe_key,
                        changes,
                        packets,
                        nbytes,
                    ),
                )

    def _straight_store(self, sequencer: GreSequencer, decryptor: MppeDecryptor, state: _RunState) -> None:
        """The receive state :meth:`_straight_receive` kept in locals (``state``: the next number expected,
        packets delivered, the owed ack's count, flag and deadline, whether the ack timer must follow it; the
        decryptor's next count, last count and key, key changes made; packets written to the TUN and their
        IP bytes), stored back: the GRE sequencer as ``delivered`` calls of its in-order case would leave
        it (the last one numbered ``expected - 1``), the MPPE decryptor as its common cases would, the
        session's counters."""
        expected, delivered, unacked, pending, due, rearm, next_count, last, key, changes, packets, nbytes = state
        if delivered:
            sequencer._last_delivered = sequencer._highest_received = (expected - 1) & 0xFFFFFFFF
            sequencer._expected = expected
            counters = sequencer.counters
            counters.received += delivered
            counters.delivered += delivered
        sequencer._unacked_received, sequencer._ack_pending, sequencer._ack_due = unacked, pending, due
        decryptor._next, decryptor._last, decryptor._key = next_count, last, key
        decryptor.key_changes += changes
        stats = self.stats
        stats.packets_received += packets
        stats.bytes_received += nbytes
        if rearm and self.call is not None:
            self.call.rearm()

    def _straight_aside(
        self, sequencer: GreSequencer, decryptor: MppeDecryptor, state: _RunState, step: Callable[[], object]
    ) -> _Loaded | None:
        """A packet :meth:`_straight_receive` leaves to the general way: its run's state stored back
        (:meth:`_straight_store`), ``step`` run, the state taken again (:meth:`_straight_load`); None when
        the hot path has ended meanwhile (the session closed, the TUN went, or renegotiation replaced the
        decryptor)."""
        self._straight_store(sequencer, decryptor, state)
        step()
        if self.call is None or self.call.straight is None or self._fast_decryptor is not decryptor:
            return None
        return self._straight_load(sequencer, decryptor)

    @staticmethod
    def _straight_load(sequencer: GreSequencer, decryptor: MppeDecryptor) -> _Loaded:
        """The receive state :meth:`_straight_receive` keeps in locals, from the cores (see :meth:`_straight_store`):
        the sequencer's next number, held packets and owed ack; the decryptor's next count (stateful), last
        count and key (stateless), the keys it computed ahead, and its running RC4 (stateful)."""
        return (
            sequencer._expected,
            sequencer._held,
            sequencer._unacked_received,
            sequencer._ack_pending,
            sequencer._ack_due,
            decryptor._next,
            decryptor._last,
            decryptor._key,
            decryptor._ahead,
            decryptor._update_into,
        )

    def _call_received(self, frame: memoryview, seq: int, ack: int, start: int, end: int, now: float) -> None:
        """A packet off :meth:`_straight_receive`'s common case: the call's general path (sequencing,
        reordering), which hands what it delivers to :meth:`receive_frame`."""
        if self.call is not None:
            self.call.received(seq, ack, frame[start:end], now)

    def _clamped(self, packet: bytes, start: int = 0) -> bytes:
        """An IPv4 TCP packet (from ``start``: a decrypted one has its protocol field first) with its MSS
        clamped, in a copy, if it is a SYN and clamping is on; otherwise ``packet`` itself (other segments
        are not copied)."""
        if not (self.clamp and _is_syn(packet, start, len(packet))):
            return packet
        copy = bytearray(packet)
        clamp_mss(memoryview(copy)[start:], self._mss)
        return bytes(copy)

    def _decrypted(self, protocol: int, payload: bytes) -> None:
        """A decrypted packet the hot path's TUN write does not take: through :meth:`_deliver` (the TUN, or a
        library user's queue) when its NCP is open, otherwise to the link (which discards it)."""
        if self._fast_open[protocol]:
            self._deliver(protocol, payload)
        else:
            self.link.receive_decrypted(protocol, payload, self.loop.time())
            self._flush()

    def _receive_mppe(self, decryptor: MppeDecryptor, frame: bytes | memoryview, offset: int) -> None:
        """An MPPE packet off the common case (a stateful key change, a loss, a stateless jump, an odd
        size): the core's general path decrypts it, then as any decrypted packet."""
        inner = decryptor.decrypt(frame, offset)
        self._report_loss(decryptor)
        if inner is not None:
            self._decrypted(*inner)

    def _ended_mppe(self, decryptor: MppeDecryptor, data: bytes) -> None:
        """The end of a common MPPE packet (:meth:`MppeDecryptor.decrypt_next
        <pypptp.ppp.mppe.MppeDecryptor.decrypt_next>`, :meth:`MppeDecryptor.settle
        <pypptp.ppp.mppe.MppeDecryptor.settle>`): its decryption, protocol field first, delivered; or,
        empty, dropped, perhaps a loss to report."""
        if data:
            self._decrypted(data[1], data[2:])
        else:
            self._report_loss(decryptor)

    def _settle(self, decryptor: MppeDecryptor, data: bytes, count: int, key: bytes | None) -> None:
        """:meth:`MppeDecryptor.settle <pypptp.ppp.mppe.MppeDecryptor.settle>`, then :meth:`_ended_mppe` (the
        straight path's step for such a packet: run once the run's state is stored back)."""
        self._ended_mppe(decryptor, decryptor.settle(data, count, key))

    def _report_loss(self, decryptor: MppeDecryptor) -> None:
        """Stateful: a loss the decryptor detected asks the peer for a reset (a CCP Reset-Request, once per
        loss: :meth:`MppeDecryptor.take_reset_request <pypptp.ppp.mppe.MppeDecryptor.take_reset_request>`)."""
        if decryptor.reset_pending and decryptor.take_reset_request():
            self.link.request_mppe_reset(self.loop.time())
            self._flush()

    def send_ip(self, packet: bytes | bytearray | memoryview) -> bool:
        """Library use: send one IP packet through the tunnel."""
        protocol = Protocol.IPV6 if packet and packet[0] >> 4 == 6 else Protocol.IPV4
        frame = self.link.send_data(protocol, packet)
        if frame is None or not self.send(frame):
            self.stats.send_refused += 1
            self._flush()
            return False
        self.stats.packets_sent += 1
        self.stats.bytes_sent += len(packet)
        return True

    def close(self, reason: str) -> None:
        """End the session by any path: the link is dropped at once, the TUN removed, once."""
        if self.closed:
            return
        self.closed = True
        self.close_reason = reason
        self._fast_decryptor = self._fast_encryptor = None
        self._timer.close()  # no timer of an ended session fires again (and their callbacks' cycles go)
        self._limits.close()
        if self._verifying is not None:
            self._verifying.cancel()
            self._verifying = None
        if self.link.phase is not Phase.DEAD:  # not Dead: tell the link its lower layer is gone
            self.link.lower_down(self.loop.time(), reason)
            self.link.drain()
        self._remove_tun()
        try:
            if self.on_down is not None:
                self.on_down(self, reason)
        finally:
            self._release()

    def _release(self) -> None:
        """The session has ended and its owner has been told: drop what leads back to it or to its owner's
        objects (its timers' bound methods, the GRE call's methods, whose ``deliver`` is this session's,
        the owner's callbacks, which close over the owner's per-session record), so that reference counting
        frees the session as soon as its owner lets go of it, not the next full garbage collection (its
        timers were closed first thing)."""
        self.on_up = self.on_auth = self.on_down = None
        self.verify = None
        self.network_hold = None
        self.make_tun = _no_tun
        self.send = _closed_send
        self.call = None
        self.notify_room = None
        self.link.detach()

    def renegotiate(self, protocol: int = Protocol.LCP) -> None:
        """Restart LCP (RFC 1661 section 4.2: a fresh Configure-Request in Opened): authentication, CCP
        and IPCP run again, and the data path resumes with the new MPPE keys.  Or restart one NCP."""
        if not self.closed:
            self.link.renegotiate(self.loop.time(), protocol)
            self._flush()

    def terminate(self, reason: str) -> None:
        """Close politely: LCP Terminate-Request first; ``close`` follows when LCP finishes."""
        if not self.closed:
            self.link.close(self.loop.time(), reason)
            self._flush()

    def set_limits(self, *, idle: float | None = None, maxconnect: float | None = None) -> None:
        """Change ``idle`` or ``maxconnect`` of a live session (RADIUS Idle-Timeout and Session-Timeout, at
        authentication or by a CoA-Request): ``maxconnect`` still counts from the network's start."""
        if idle is not None:
            self.idle = max(0.0, idle)
        if maxconnect is not None:
            self.maxconnect = max(0.0, maxconnect)
        if self.network_since is not None and not self.closed:
            self._arm_limits(self.loop.time())

    # -- internals ---------------------------------------------------------------------------

    def _start_verifying(self, request: AuthRequest) -> None:
        if self.verify is None:  # a link configured for an external judge without one: a bug of the caller
            self.log.error("no authentication backend to judge %r; refusing", request)
            self.link.auth_verdict(
                request, ExternalVerdict(False, reason="no authentication backend"), self.loop.time()
            )
            return
        if self._verifying is not None:
            self._verifying.cancel()
        self._verifying = asyncio.ensure_future(self._verify(request))

    async def _verify(self, request: AuthRequest) -> None:
        assert self.verify is not None
        try:
            verdict = await self.verify(self, request)
        except asyncio.CancelledError:
            raise
        except Exception:
            self.log.exception("internal error while judging %r; refusing", request)
            verdict = ExternalVerdict(False, reason="internal error of the authentication backend")
        self._verifying = None
        if self.closed:
            return
        try:
            self.link.auth_verdict(request, verdict, self.loop.time())
            self._flush()
        except Exception:
            self.log.exception("internal error after authentication; closing the session")
            self.close("internal error")

    def _flush(self) -> None:
        frames, events = self.link.drain()
        for frame in frames:
            self.send(frame)
        for event in events:
            if isinstance(event, DataReceived):
                self._deliver(event.protocol, event.payload)
            elif isinstance(event, LinkLog):
                self.log.log(_LEVELS.get(event.level, logging.INFO), "%s", event.message)
            elif isinstance(event, NetworkUp):
                self._network_up(event)
            elif isinstance(event, NetworkDown):
                self.log.info("network down: %s", event.reason)
                self.network = None
            elif isinstance(event, Authenticated | AuthAttemptFailed):
                if self.on_auth is not None:  # (the link logs the outcome)
                    self.on_auth(self, event)
            elif isinstance(event, VerifyRequested):
                self._start_verifying(event.request)
            elif isinstance(event, PhaseChanged):
                self.log.debug("phase %s", event.phase.name)
            elif isinstance(event, LinkDown):
                self.close(event.reason)
                return
        if not self.closed:
            self._timer.arm(self.link.next_deadline())
        self._update_fast_path()

    def _update_fast_path(self) -> None:
        """The hot path runs while the network is up with MPPE both ways (re-checked after each
        slow-path step, so renegotiation or teardown takes it away at once)."""
        link = self.link
        up = self.network is not None and not self.closed and link.network_up is not None
        self._fast_decryptor = link.decryptor if up else None
        self._fast_encryptor = link.encryptor if up else None
        self._fast_fd = self.tun.fd if up and self.tun is not None and self.received is None else -1
        self._fast_open = _TUN_PROTOCOLS[up and link.data_open(Protocol.IPV4), up and link.data_open(Protocol.IPV6)]
        if self.call is not None:
            straight = self._fast_fd >= 0 and self._fast_decryptor is not None
            self.call.straight = self._straight_receive if straight else None
        if self._fast_encryptor is not None and link.network_up is not None:
            prefix = self._tx_prefix = link.frame_prefix(Protocol.COMPRESSED)
            self._tx_pack, self._tx_start = _frame_header(prefix)
            self._fast_mtu = link.network_up.mtu

    def _on_timer(self, now: float) -> None:
        try:
            self.link.handle_timer(now)
            self._flush()
        except Exception:
            self.log.exception("internal error in a PPP timer; closing the session")
            self.close("internal error")

    def _network_up(self, up: NetworkUp) -> None:
        hold = self.network_hold
        if hold is not None:
            if not hold.done():
                hold.add_done_callback(lambda _: self._network_up_after_hold(up))
                return
            self.network_hold = None
        if 0 < self.mtu_limit < up.mtu:  # RADIUS Framed-MTU: the interface (and the MSS clamp) stay below it
            up = dataclasses.replace(up, mtu=self.mtu_limit)
        previous, self.network = self._tun_setting, up
        if self.network_since is None:
            self.network_since = self.loop.time()
            self._idle_mark = self.stats.packets_sent + self.stats.packets_received
            self._arm_limits(self.network_since)
        self._mss = mss_for_mtu(up.mtu)
        if self.attach_tun and self.tun is None:
            try:
                self.tun = self.make_tun()
                self.tun.configure(up.local_address, up.peer_address, up.mtu)
            except TunError as exc:
                self.log.error("%s", exc)
                self._remove_tun()
                self.terminate("cannot set up the network interface")
                return
            self.loop.add_reader(self.tun.fd, self._from_tun)
            self._tun_setting = (up.local_address, up.peer_address, up.mtu)
            self.log.info("%s", logtext.using_interface(self.tun.name))  # pppd's line, when pppN exists
            self.log.info("MTU %d", up.mtu)  # ours (the interface is in the line before, and in -f's format)
        elif self.tun is not None and previous is not None:  # up again after an LCP renegotiation
            if (up.local_address, up.peer_address) != previous[:2]:
                self.log.warning(
                    "renegotiation changed the addresses to %s/%s (%s has %s/%s); closing",
                    up.local_address,
                    up.peer_address,
                    self.tun.name,
                    previous[0],
                    previous[1],
                )
                self.terminate("IP addresses changed on renegotiation")
                return
            if up.mtu != previous[2]:
                try:
                    self.tun.set_mtu(up.mtu)
                except TunError as exc:
                    self.log.error("%s", exc)
                    self.terminate("cannot set the MTU of the network interface")
                    return
                self._tun_setting = (up.local_address, up.peer_address, up.mtu)
                self.log.info("%s: MTU now %d", self.tun.name, up.mtu)
        if self.on_up is not None:
            self.on_up(self, up)

    def _arm_limits(self, now: float) -> None:
        deadlines = []
        if self.idle > 0:
            deadlines.append(now + self.idle)
        if self.maxconnect > 0 and self.network_since is not None:
            deadlines.append(self.network_since + self.maxconnect)
        self._limits.arm(min(deadlines) if deadlines else None)

    def _on_limits(self, now: float) -> None:
        """pppd's idle and maxconnect checks, with its log lines."""
        if self.closed:
            return
        if self.maxconnect > 0 and self.network_since is not None and now >= self.network_since + self.maxconnect:
            self.log.info("Connect time expired")
            self.terminate("Connect time expired")
            return
        if self.idle > 0:
            mark = self.stats.packets_sent + self.stats.packets_received
            if mark == self._idle_mark:
                self.log.info("Terminating connection due to lack of activity.")
                self.terminate("idle timeout")
                return
            self._idle_mark = mark
        self._arm_limits(now)

    def _deliver(self, protocol: int, payload: bytes) -> None:
        stats = self.stats
        stats.packets_received += 1
        stats.bytes_received += len(payload)
        if self.received is not None:
            with contextlib.suppress(asyncio.QueueFull):  # nobody reads: drop, like a full interface queue
                self.received.put_nowait(payload)
            return
        if self.tun is None:
            return
        if protocol == Protocol.IPV4 and len(payload) > 33 and payload[9] == 6:  # TCP
            payload = self._clamped(payload)
        try:
            os.write(self.tun.fd, payload)
        except OSError:
            self.stats.tun_write_errors += 1

    def _from_tun(self) -> None:
        """Drain the TUN device (bounded), send each packet into the tunnel: in bursts on the hot path
        (:meth:`_tun_burst`), the rest through the link."""
        tun = self.tun
        if tun is None or self.closed:
            return
        fd, link, stats, target = tun.fd, self.link, self.stats, self._buffers.plain_target
        left = MAX_TUN_PACKETS_PER_WAKEUP
        linked = False
        try:
            while left > 0:
                call = self.call
                if self._fast_encryptor is not None and call is not None and call.seq.highest_received >= 0:
                    n, left = self._tun_burst(fd, left)
                    if n <= 0:
                        break
                else:  # no hot path (or nothing received yet, so no ack to carry): one packet at a time
                    left -= 1
                    try:
                        n = os.readv(fd, (target,))
                    except BlockingIOError:
                        break
                    if n < 20:  # no IP packet is shorter (0: nothing more to read)
                        if n == 0:
                            break
                        continue
                # a packet for the link (not IPv4, over the MTU, or no hot path): it frames, we send
                version = target[0] >> 4
                if version != 4 and version != 6:
                    continue
                if self.clamp and version == 4 and target[9] == 6 and _is_syn(target, 0, n):
                    clamp_mss(target[:n], self._mss)
                linked = True
                frame = link.send_data(Protocol.IPV4 if version == 4 else Protocol.IPV6, target[:n])
                if frame is None or not self.send(frame):
                    stats.send_refused += 1
                    continue
                stats.packets_sent += 1
                stats.bytes_sent += n
        except OSError as exc:
            self.log.warning("reading %s failed: %s", tun.name, exc)
        except Exception:
            self.log.exception("internal error on the TUN path; closing the session")
            self.close("internal error")
            return
        if linked:  # the link saw packets (it may have logged or queued): its output and timers
            self._flush()

    def _tun_burst(self, fd: int, left: int) -> tuple[int, int]:
        """The TUN -> GRE hot path: read, encrypt and send IPv4 packets, at most ``left``, within the peer's
        GRE window.  Returns (n, reads left): n > 0 when the packet just read (``n`` bytes at the plain
        buffer's target) must take the link instead (not IPv4, or over the MTU); 0 when the device is
        drained, the window is full or ``left`` is used up.

        A burst is numbered from the sequencer's next number and carries the highest Sequence Number
        received as its Acknowledgment Number on every packet (RFC 2637 section 4.1 allows it on any
        packet; repeating it costs the peer nothing); the numbers, the ack and the counters are taken
        once, after it.  Each packet's GRE header, PPP prefix and MPPE header go in front of the ciphertext
        with one pack, and the frame leaves with one ``sendto``."""
        call = self.call
        encryptor = self._fast_encryptor
        assert call is not None and encryptor is not None
        sequencer = call.seq
        ack = sequencer.highest_received  # (the caller checked there is one)
        buffers = self._buffers
        plain, source, target = buffers.plain, buffers.plain_view, buffers.plain_target
        tx, view, cipher = buffers.tx, buffers.tx_view, buffers.tx_cipher
        encrypt, pack, start, prefix = encryptor.encrypt_into, self._tx_pack, self._tx_start, self._tx_prefix
        # stateful MPPE's common packet inline (MppeEncryptor.encrypt_into's first case): the running RC4,
        # D only, while no key change is due; the count is the encryptor's, kept here for the burst
        count, running, headers = encryptor.count, encryptor._update_into if encryptor._fast else None, HEADERS
        sendto, peer, peer_call, mtu = call.sendto, call.peer, call.peer_call_id, self._fast_mtu
        clamp, extra, flags = self.clamp, len(prefix) + 4, FLAGS_DATA_ACK  # extra: prefix, MPPE header, 00 21
        readv, targets, data_at = os.readv, (target,), TX_DATA
        now = self.loop.time()  # one reading per burst for the GRE window and sequence timing
        pausing = self.notify_room is not None
        number = first = sequencer.next_seq
        stop = first + sequencer.room(now)  # the first number the peer's window has no room for
        left = min(left, 0x100000000 - first)  # no wrap within a burst: numbers count up plainly
        nbytes = refused = errors = would_block = 0
        try:
            while left > 0:
                if number == stop and pausing:  # the window is full
                    self._pause_tun()  # leave packets in the kernel's queue: back-pressure, not loss
                    return 0, left
                left -= 1
                try:
                    n = readv(fd, targets)
                except BlockingIOError:
                    return 0, left
                if n < 20:  # no IP packet is shorter (0: nothing more to read)
                    if n == 0:
                        return 0, left
                    continue
                if plain[2] >> 4 != 4 or n > mtu:
                    return n, left  # (the link's path clamps an IPv4 SYN's MSS)
                # A TCP SYN gets its MSS clamped.  Byte 35 is the TCP flags byte behind a 20-byte header:
                # one test passes over nearly every other packet (any other header length looks closer).
                if (plain[35] & 0x02 or plain[2] != 0x45) and plain[11] == 6 and clamp and _is_syn(plain, 2, n + 2):
                    clamp_mss(target[:n], self._mss)
                if number == stop:  # window full, nobody to wait for it: dropped
                    refused += 1
                    continue
                # the inner protocol field (00 21, never overwritten) and the packet, encrypted into the
                # send buffer behind the headers, which go in front of it
                count = (count + 1) & 0xFFF
                if running is not None and count & 0xFF != 0xFF:
                    running(source[: n + 2], cipher)
                    mppe = headers[count]
                else:  # a key change (stateful: a flag packet; stateless: every packet): the encryptor's
                    encryptor.count = (count - 1) & 0xFFF
                    mppe = encrypt(source[: n + 2], cipher)
                    count = encryptor.count
                    running = encryptor._update_into if encryptor._fast else None  # (a new RC4 after a change)
                pack(tx, start, flags, 0x880B, n + extra, peer_call, number, ack, prefix, mppe)
                number += 1
                nbytes += n
                try:
                    sendto(view[start : data_at + n], peer)
                except BlockingIOError:
                    would_block += 1  # dropping is legal for PPP
                except OSError:
                    errors += 1  # the transport's socket is gone, or the network said no
            return 0, left
        finally:
            encryptor.count = count
            sent = number - first
            stats = self.stats
            if sent:
                sequencer.take_seqs(sent, now)
                sequencer.take_ack()  # it went out on these packets
                call.count_sent(sent, errors, would_block)
                stats.packets_sent += sent
                stats.bytes_sent += nbytes
            stats.send_refused += refused

    def _network_up_after_hold(self, up: NetworkUp) -> None:
        """:attr:`network_hold` is done: the network comes up now, unless the session ended or IPCP went
        down meanwhile (a newer network-up, if any, waits on the same hold)."""
        if self.closed or self.link.network_up is not up:
            return
        self.network_hold = None
        try:
            self._network_up(up)
            self._update_fast_path()
        except Exception:
            self.log.exception("internal error at network-up; closing the session")
            self.close("internal error")

    def _pause_tun(self) -> None:
        tun = self.tun
        if tun is None or self._tun_paused or self.notify_room is None:
            return
        self.loop.remove_reader(tun.fd)
        self._tun_paused = True
        self.stats.tun_pauses += 1
        self.notify_room(self._resume_tun)
        # the window may also open by the RFC 2637 section 4.4 ack time-out, which only a send attempt
        # notices: look again a little later
        self._room_poll = self.loop.call_later(ROOM_POLL, self._resume_tun)

    def _resume_tun(self) -> None:
        if self._room_poll is not None:
            self._room_poll.cancel()
            self._room_poll = None
        if not self._tun_paused:
            return
        self._tun_paused = False
        if self.tun is not None and not self.closed:
            self.loop.add_reader(self.tun.fd, self._from_tun)

    def _remove_tun(self) -> None:
        if self._room_poll is not None:
            self._room_poll.cancel()
            self._room_poll = None
        self._tun_paused = False
        self._tun_setting = None
        tun, self.tun = self.tun, None
        self._update_fast_path()  # no TUN: no hot path into it (the call's straight path is taken away too)
        if tun is not None:
            with contextlib.suppress(Exception):
                self.loop.remove_reader(tun.fd)
            tun.close()


class SessionOptions(TypedDict, total=False):
    """The keyword arguments of :class:`PppSession` that :func:`session_over_gre` passes on."""

    log: Required[logging.Logger]
    on_up: Callable[[PppSession, NetworkUp], None] | None
    on_auth: Callable[[PppSession, Authenticated | AuthAttemptFailed], None] | None
    on_down: Callable[[PppSession, str], None] | None
    attach_tun: bool
    clamp: bool
    make_tun: Callable[[], TunDevice]
    idle: float
    maxconnect: float
    verify: Verifier | None


def session_over_gre(
    transport: GreTransport,
    peer_ip: str,
    call_id: int,
    peer_call_id: int,
    link: PppLink,
    *,
    peer_window: int,
    our_window: int,
    **options: Unpack[SessionOptions],
) -> tuple[GreCall, PppSession]:
    """A call's GRE data path on ``transport`` and the PPP session it carries, wired to each other (the
    daemon's sessions, the client's, the benchmarks').

    The session sends through the call (``send``, and on the hot path ``send_in_place``, ``room`` and
    ``notify_room``); the call delivers each payload straight from the GRE demultiplexer to
    :meth:`PppSession.receive_frame` (hot path: nothing in between).  ``peer_window`` is the receive window
    the peer announced (at least :data:`~pypptp.aio.gre.MIN_SEND_WINDOW` is used), ``our_window`` the one
    we announced; ``options`` go to :class:`PppSession`.  Start the session with :meth:`PppSession.start`.
    """
    gre = GreCall(
        transport,
        peer_ip,
        call_id,
        peer_call_id,
        _not_yet,
        peer_window=max(MIN_SEND_WINDOW, peer_window),
        our_window=our_window,
    )
    ppp = PppSession(link, gre.send, call=gre, **options)
    gre.deliver = ppp.receive_frame  # before anything can arrive: the loop drains the transport, not this code
    return gre, ppp


def _no_tun() -> TunDevice:
    """An ended session's ``make_tun``."""
    raise TunError("the session has ended")


def _closed_send(frame: bytes | memoryview) -> bool:
    """An ended session's ``send``: nothing goes out."""
    return False


def _not_yet(payload: memoryview | bytes) -> None:
    """A call's ``deliver`` for the moment between its construction and its session's (never called)."""
