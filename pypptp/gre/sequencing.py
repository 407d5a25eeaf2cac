"""Per-call GRE sequencing, acknowledgment and flow control (RFC 2637 sections 4.2-4.4), sans-IO.

One :class:`GreSequencer` per call; time is always a parameter.

Receive (section 4.3).  The peer's first Sequence Number is taken as it
comes (pptpd and Windows start at 0, pptp-linux and the Linux kernel at 1,
Cisco anywhere).  After it, a packet that is:

* the next one is delivered at once (the common case costs no allocation);
* ahead of a gap is held in a bounded reorder buffer, at most
  ``reorder_capacity`` packets (pptpd: 300) for at most ``reorder_timeout``
  seconds (pptpd: 0.3 s).  When the gap fills, the held run is released in
  order; when the oldest held packet times out, or a packet jumps further
  ahead than the buffer can bridge (more than ``reorder_capacity`` numbers
  past the next expected one), the gap is written off as lost and delivery
  resumes in order;
* at or behind the last delivered number (a duplicate or too old) is
  dropped and counted: PPP, and MPPE above all, tolerate loss but not
  reordering;
* far from the last delivered number, ahead or behind, by more than
  :attr:`GreSequencer.far_jump` (the reorder capacity + our announced
  window, at most :data:`FAR_WINDOW_MAX` of it, + :data:`FAR_SLACK`) is
  dropped and counted (``far``) without touching any receive state: no
  delivery, no ack owed, the highest number received stays.  A compliant
  sender never has more than our window unacknowledged, and our acks
  report the highest number received, so it cannot be that far ahead; a
  blind attacker who knows the peer's address and Call ID but guesses the
  numbers lands there almost always (PPTP has no integrity; RFC 2637
  section 4.3 lets a receiver discard).  A real peer can still get there,
  after a long outage or as the Linux kernel does, which ignores windows:
  :data:`RESYNC_RUN` far packets in a row, each the number after the one
  before, move the receiver to the last of them (the earlier ones are
  lost).  Random numbers would need consecutive 32-bit values to do that;
  an attacker who sends a run anyway is undone the same way by the peer's
  next three packets, which are then far behind.  (Beyond pptpd and the
  Linux kernel, which follow any jump.)

All comparisons are serial-number arithmetic modulo 2**32, so wraparound is
an ordinary step.

Acknowledgments: the Acknowledgment Number is the highest Sequence Number
received.  It rides on the next data packet when there is one; otherwise an
ack-only packet is due ``ack_delay`` seconds (default 0.1 s; real clients
wait up to 0.5 s) after the first unacknowledged receipt, or at once when
a quarter of our announced window (at most 16 packets) is unacknowledged.

Send (sections 4.2, 4.4).  Our numbers start at 0.  No more than the
peer's announced receive window may be unacknowledged (Windows announces
64, pptp-linux 3).  The peer's acks are checked: an ack for something we
never sent is ignored and counted; Cisco's 0xFFFFFFFF before anything was
received is simply "nothing yet".  An adaptive ack time-out (section 4.4:
RTT and deviation with gains 1/8 and 1/4, ATO = RTT + 4 * DEV, clamped)
guards against a peer that never acks (the Linux kernel only piggy-backs):
when it expires, the outstanding packets are written off and the window
halves (section 4.2.2, rounding up, at least 1); each full window acked
opens it by one again, up to the announced size (section 4.2.3).  Nothing
is ever retransmitted.
"""

from __future__ import annotations

import collections
import dataclasses

from pypptp.gre.codec import NO_NUMBER

__all__ = ["GreCounters", "GreSequencer"]

ACK_NOW_MAX = 16
"""Unacknowledged received packets after which an ack goes at once, whatever our window."""
FAR_SLACK = 256
"""Numbers beyond the reorder capacity and our window before a packet counts as far (RFC 2637 section 4.3
allows discarding it): room for a peer that overshoots our window a little."""
FAR_WINDOW_MAX = 1024
"""At most this much of our announced window widens the far limit (the daemon echoes a client's window,
up to 65535; random numbers must keep missing the limit)."""
RESYNC_RUN = 3
"""Consecutive far packets after which the receiver follows the peer there."""

_MOD = 1 << 32
_MASK = _MOD - 1
_HALF = 1 << 31


@dataclasses.dataclass(slots=True)
class GreCounters:
    """Per-call statistics; every drop has a counter."""

    received: int = 0
    delivered: int = 0
    reordered: int = 0  # delivered from the reorder buffer
    duplicates: int = 0
    stale: int = 0  # behind the last delivered packet
    lost: int = 0  # numbers written off as gaps
    far: int = 0  # dropped: implausibly far ahead or behind (spoofed, or before a resync)
    resyncs: int = 0  # runs of far packets the receiver moved to
    sent: int = 0
    window_full: int = 0  # sends refused because the peer's window was full
    acks_received: int = 0
    bogus_acks: int = 0  # acks for numbers never sent
    ack_timeouts: int = 0
    ack_only_sent: int = 0


class GreSequencer:
    """Sequence numbers, reordering, acks and the send window of one call."""

    def __init__(
        self,
        peer_window: int,
        our_window: int = 64,
        *,
        reorder_capacity: int = 300,
        reorder_timeout: float = 0.3,
        ack_delay: float = 0.1,
        peer_processing_delay: float = 0.0,
        min_ack_timeout: float = 0.5,
        max_ack_timeout: float = 10.0,
    ) -> None:
        self.counters = GreCounters()
        # receive side
        self._last_delivered = NO_NUMBER  # serial of the last packet handed up
        self._expected = NO_NUMBER  # the number after it (never a valid one before the first packet)
        self._highest_received = NO_NUMBER
        # seq -> (arrival time, payload), in arrival order: the first entry is the oldest
        self._held: dict[int, tuple[float, bytes]] = {}
        self._ready: collections.deque[bytes] = collections.deque()
        self.reorder_capacity = max(0, reorder_capacity)
        self.reorder_timeout = reorder_timeout
        self.far_jump = self.reorder_capacity + 1 + min(max(1, our_window), FAR_WINDOW_MAX) + FAR_SLACK
        """A packet further than this from the last delivered number, either way, is far (see the module)."""
        self._far_next = NO_NUMBER  # the number that would extend the current run of far packets
        self._far_run = 0
        # acks we owe the peer
        self.ack_delay = ack_delay
        self._ack_pending = False
        self._ack_due: float | None = None
        self._unacked_received = 0
        # Ack at once when a quarter of our announced window is unacked: an RFC
        # 2637 sender starts at half that window (section 4.2.1), so waiting for
        # half would stall it for ``ack_delay`` after every lost packet.  And at
        # most every ACK_NOW_MAX packets: a sender may keep fewer in flight than
        # a large window allows (measured: a sender holding 32 of a 256 window
        # waited ``ack_delay`` for every 32 packets, 2.5k packets/s in all).
        self._ack_now_threshold = max(1, min(ACK_NOW_MAX, our_window // 4))
        # send side
        self._next_seq = 0
        self._peer_acked = _MASK  # "nothing acked yet" is seq 0 - 1
        self.peer_window = max(1, peer_window)
        self.window = max(1, -(-self.peer_window // 2))  # section 4.2.1: half, rounded up, >= 1
        self._acked_in_window = 0
        self._ack_timer_start: float | None = None
        self._timed_seq = NO_NUMBER
        self._timed_at = 0.0
        self._rtt = peer_processing_delay
        self._dev = 0.0
        self.min_ack_timeout = min_ack_timeout
        self.max_ack_timeout = max_ack_timeout
        self.ack_timeout = self._clamp(self._rtt)

    # -- receive -------------------------------------------------------------------

    def on_data(self, seq: int, payload: bytes | bytearray | memoryview, now: float) -> bool:
        """A data packet arrived.  True: deliver ``payload`` now.  False: it
        was held (copied), queued or dropped.  Either way, drain
        :meth:`pop_ready` afterwards: it yields what follows, in order."""
        counters = self.counters
        counters.received += 1
        last = self._last_delivered
        if last < 0:  # the first packet: take its number as it comes
            self._last_delivered = self._highest_received = seq
            self._expected = (seq + 1) & _MASK
            self._owe_ack(now)
            counters.delivered += 1
            return True
        step = (seq - last) & _MASK
        if step == 0 or step >= _HALF:
            if step == 0:
                counters.duplicates += 1
            elif _MOD - step > self.far_jump:
                return self._far(seq, payload, now)
            else:
                counters.stale += 1
            return False
        if step > self.far_jump:
            return self._far(seq, payload, now)
        if (seq - self._highest_received) & _MASK < _HALF:
            self._highest_received = seq
        self._owe_ack(now)
        if step == 1:
            self._last_delivered = seq
            self._expected = (seq + 1) & _MASK
            counters.delivered += 1
            if self._held:
                self._release_run()
            return True
        # ahead of a gap
        if seq in self._held:
            counters.duplicates += 1
            return False
        if step - 1 > self.reorder_capacity:  # too far ahead to bridge: write the gap off
            self._skip_to(seq)  # older held packets go to the ready queue first
            self._last_delivered = seq
            self._expected = (seq + 1) & _MASK
            counters.delivered += 1
            if self._ready:
                self._ready.append(bytes(payload))
                self._release_run()
                return False
            self._release_run()
            return True
        # Held numbers lie in last+2 .. last+capacity+1, so at most
        # ``reorder_capacity`` packets are ever held: the bound is by construction.
        self._held[seq] = (now, bytes(payload))
        return False

    def in_order(self, seq: int, ack: int, now: float) -> int:
        """:meth:`on_data` and :meth:`on_ack` for the common case only: the call's receive path
        (``GreCall.received``) asks this first.  (The session's hot path, ``PppSession._straight_receive``,
        does the same accounting inline over a run of packets; ``tests/test_session_straight.py`` holds the
        two equal.)

        When ``seq`` is the very next number and nothing is held, the packet's Acknowledgment Number
        (``ack``; NO_NUMBER: none) is applied as :meth:`on_ack` would, the packet is accounted for exactly
        as :meth:`on_data` would (delivered, ack owed), and the result is 1, or 2 when the ack deadline
        moved (the caller re-arms its timer from :meth:`next_deadline`).  Otherwise nothing happens, the
        ack included, and the result is 0: the caller hands seq and ack to the slow path.  The first
        packet of a call always takes the slow way."""
        if seq != self._expected or self._held:
            return 0
        if ack != self._peer_acked and ack >= 0:  # a new ack (most packets repeat the last one)
            self.on_ack(ack, now)
        # Nothing held: nothing was received beyond the last number, so ``seq`` is also the highest seen.
        self._last_delivered = self._highest_received = seq
        self._expected = (seq + 1) & _MASK
        counters = self.counters
        counters.received += 1
        counters.delivered += 1
        unacked = self._unacked_received = self._unacked_received + 1
        if not self._ack_pending:
            self._ack_pending = True
            self._ack_due = now if unacked >= self._ack_now_threshold else now + self.ack_delay
            return 2
        if unacked >= self._ack_now_threshold and self._ack_due != now:
            self._ack_due = now
            return 2
        return 1

    def _far(self, seq: int, payload: bytes | bytearray | memoryview, now: float) -> bool:
        """A packet too far from the receive position to come from a compliant sender: dropped without
        touching the receive state, unless it completes a run of :data:`RESYNC_RUN` consecutive ones,
        in which case the receiver moves there (held packets go up first, in order)."""
        run = self._far_run + 1 if seq == self._far_next else 1
        if run < RESYNC_RUN:
            self._far_run = run
            self._far_next = (seq + 1) & _MASK
            self.counters.far += 1
            return False
        self._far_run = 0
        self._far_next = NO_NUMBER
        counters = self.counters
        counters.resyncs += 1
        self._release_held()
        self._last_delivered = self._highest_received = seq
        self._expected = (seq + 1) & _MASK
        self._owe_ack(now)
        counters.delivered += 1
        if self._ready:
            self._ready.append(bytes(payload))
            return False
        return True

    def _release_held(self) -> None:
        """Every held packet to the ready queue, in order; the gaps between them are written off."""
        last = self._last_delivered
        held = self._held
        for seq in sorted(held, key=lambda s: (s - last) & _MASK):
            self.counters.lost += ((seq - last) & _MASK) - 1
            self._ready.append(held.pop(seq)[1])
            self.counters.reordered += 1
            self.counters.delivered += 1
            last = seq

    def pop_ready(self) -> bytes | None:
        """The next payload released from the reorder buffer, in order, or None."""
        if self._ready:
            return self._ready.popleft()
        return None

    def _oldest_held(self) -> int:
        last = self._last_delivered
        return min(self._held, key=lambda s: (s - last) & _MASK)

    def _skip_to(self, seq: int) -> None:
        """Write off every number before ``seq``, releasing held packets in order."""
        last = self._last_delivered
        for held in sorted((s for s in self._held if (s - last) & _MASK < (seq - last) & _MASK),
                           key=lambda s: (s - last) & _MASK):  # fmt: skip
            self.counters.lost += ((held - last) & _MASK) - 1
            self._ready.append(self._held.pop(held)[1])
            self.counters.reordered += 1
            self.counters.delivered += 1
            last = held
        self.counters.lost += ((seq - last) & _MASK) - 1
        self._last_delivered = (seq - 1) & _MASK
        self._expected = seq
        self._release_run()

    def _release_run(self) -> None:
        """Move the held packets that now follow in order to the ready list."""
        held = self._held
        nxt = (self._last_delivered + 1) & _MASK
        while nxt in held:
            self._ready.append(held.pop(nxt)[1])
            self.counters.reordered += 1
            self.counters.delivered += 1
            self._last_delivered = nxt
            nxt = (nxt + 1) & _MASK
            self._expected = nxt

    # -- acks we owe ----------------------------------------------------------------

    def _owe_ack(self, now: float) -> None:
        self._unacked_received += 1
        if not self._ack_pending:
            self._ack_pending = True
            self._ack_due = now + self.ack_delay
        if self._unacked_received >= self._ack_now_threshold:
            self._ack_due = now

    def take_ack(self) -> int:
        """The ack to piggy-back on a data packet being sent now, or NO_NUMBER."""
        if not self._ack_pending:
            return NO_NUMBER
        self._ack_pending = False
        self._ack_due = None
        self._unacked_received = 0
        return self._highest_received

    def ack_only_due(self, now: float) -> int:
        """If an ack-only packet should go out now, its Acknowledgment Number; else NO_NUMBER."""
        if self._ack_due is None or now < self._ack_due:
            return NO_NUMBER
        self.counters.ack_only_sent += 1
        return self.take_ack()

    # -- send -------------------------------------------------------------------------

    @property
    def unacked(self) -> int:
        """Data packets sent and not yet acknowledged (or written off)."""
        return (self._next_seq - 1 - self._peer_acked) & _MASK

    def can_send(self, now: float) -> bool:
        """Whether the peer's window has room for one more data packet (the data path asks this before
        it encrypts, with the time of its wakeup)."""
        if (self._next_seq - 1 - self._peer_acked) & _MASK < self.window:
            return True
        if self._ack_timer_start is not None and now >= self._ack_timer_start + self.ack_timeout:
            self._on_ack_timeout(now)
            return True
        self.counters.window_full += 1
        return False

    def room(self, now: float) -> int:
        """How many data packets the peer's window takes now: :meth:`can_send` for a whole burst (the
        data path asks once per wakeup and counts down; nothing acks in between)."""
        free = self.window - ((self._next_seq - 1 - self._peer_acked) & _MASK)
        if free > 0:
            return free
        return self.window if self.can_send(now) else 0

    def take_seq(self, now: float) -> int:
        """The Sequence Number for a data packet being sent now."""
        return self.take_seqs(1, now)

    @property
    def next_seq(self) -> int:
        """The Sequence Number the next data packet gets (a burst numbers its packets from here, then
        takes them with :meth:`take_seqs`)."""
        return self._next_seq

    def take_seqs(self, count: int, now: float) -> int:
        """The first of ``count`` (at least 1) consecutive Sequence Numbers for data packets sent now,
        exactly as ``count`` calls of :meth:`take_seq` at ``now``: the send hot path numbers a burst from
        :attr:`next_seq` and takes the numbers once, after it (within :meth:`room`)."""
        seq = self._next_seq
        self._next_seq = (seq + count) & _MASK
        self.counters.sent += count
        if self._ack_timer_start is None:
            self._ack_timer_start = now
        if self._timed_seq < 0:
            self._timed_seq, self._timed_at = seq, now
        return seq

    @property
    def highest_received(self) -> int:
        """The highest Sequence Number received (NO_NUMBER before the first): what any packet may carry as
        its Acknowledgment Number (the send hot path puts it on every packet of a burst, then calls
        :meth:`take_ack` once)."""
        return self._highest_received

    def on_ack(self, ack: int, now: float) -> None:
        """An Acknowledgment Number arrived (piggy-backed or ack-only)."""
        acked = self._peer_acked
        progress = (ack - acked) & _MASK
        if progress == 0 or progress >= _HALF:
            return  # nothing new (Cisco's 0xFFFFFFFF before anything was sent lands here)
        unacked = (self._next_seq - 1 - acked) & _MASK  # :attr:`unacked`, inline: once per ack
        if progress > unacked:
            self.counters.bogus_acks += 1
            return
        self.counters.acks_received += 1
        self._peer_acked = ack
        if self._timed_seq >= 0 and (ack - self._timed_seq) & _MASK < _HALF:
            self._sample_rtt(now - self._timed_at)
            self._timed_seq = NO_NUMBER
        in_window = self._acked_in_window + progress
        if in_window >= self.window:
            in_window = 0
            if self.window < self.peer_window:
                self.window += 1  # section 4.2.3
        self._acked_in_window = in_window
        self._ack_timer_start = now if progress < unacked else None

    def _sample_rtt(self, sample: float) -> None:
        """Section 4.4.1: alpha 1/8, beta 1/4, chi 4."""
        diff = sample - self._rtt
        self._dev += (abs(diff) - self._dev) / 4
        self._rtt += diff / 8
        self.ack_timeout = self._clamp(self._rtt + 4 * self._dev)

    def _on_ack_timeout(self, now: float) -> None:
        """Section 4.4.2 and 4.2.2: write the outstanding packets off, halve the window."""
        self.counters.ack_timeouts += 1
        self._peer_acked = (self._next_seq - 1) & _MASK
        self._ack_timer_start = None
        self._timed_seq = NO_NUMBER
        self.window = max(1, -(-self.window // 2))
        self._acked_in_window = 0
        self._rtt *= 2
        self.ack_timeout = self._clamp(self._rtt + 4 * self._dev)

    def _clamp(self, value: float) -> float:
        return max(self.min_ack_timeout, min(value, self.max_ack_timeout))

    # -- timers -------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        """The earliest time :meth:`handle_timer` has work: an ack-only packet
        or a held packet's reorder time-out."""
        deadline = self._ack_due
        if self._held:
            oldest = self._oldest_arrival() + self.reorder_timeout
            if deadline is None or oldest < deadline:
                deadline = oldest
        return deadline

    def _oldest_arrival(self) -> float:
        return next(iter(self._held.values()))[0]  # insertion order is arrival order

    def handle_timer(self, now: float) -> None:
        """Release held packets whose reorder time is up (their gaps are
        written off); then drain :meth:`pop_ready` and check :meth:`ack_only_due`."""
        while self._held and self._oldest_arrival() + self.reorder_timeout <= now:
            self._skip_to(self._oldest_held())
