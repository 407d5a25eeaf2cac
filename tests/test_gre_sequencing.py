"""Per-call GRE sequencing (RFC 2637 sections 4.2-4.4): first numbers, wraparound,
reordering, duplicates, acks and the send window."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pypptp.gre.codec import NO_NUMBER
from pypptp.gre.sequencing import GreSequencer

MOD = 1 << 32


def feed(seqr: GreSequencer, seq: int, now: float = 0.0) -> list[int]:
    """Deliver one packet whose payload is its number; return what comes out, in order."""
    out = []
    payload = seq.to_bytes(4, "big")
    if seqr.on_data(seq, payload, now):
        out.append(seq)
    while (ready := seqr.pop_ready()) is not None:
        out.append(int.from_bytes(ready, "big"))
    return out


def drain(seqr: GreSequencer) -> list[int]:
    out = []
    while (ready := seqr.pop_ready()) is not None:
        out.append(int.from_bytes(ready, "big"))
    return out


first_numbers = st.one_of(st.sampled_from([0, 1, 0xFFFFFFFF, 0xFFFFFFF0, 0x7FFFFFFF]), st.integers(0, MOD - 1))


@settings(max_examples=300, deadline=None)
@given(first_numbers, st.integers(1, 200))
def test_in_order_from_any_first_number_and_across_wraparound(first: int, count: int) -> None:
    seqr = GreSequencer(peer_window=64)
    expected = [(first + i) % MOD for i in range(count)]
    got = [n for seq in expected for n in feed(seqr, seq)]
    assert got == expected
    c = seqr.counters
    assert (c.delivered, c.duplicates, c.stale, c.lost, c.reordered) == (count, 0, 0, 0, 0)
    assert seqr.take_ack() == expected[-1]


@settings(max_examples=300, deadline=None)
@given(first_numbers, st.integers(2, 120), st.randoms(use_true_random=False))
def test_reordering_within_the_buffer_is_undone(first: int, count: int, rnd: random.Random) -> None:
    numbers = [(first + i) % MOD for i in range(count)]
    rest = numbers[1:]
    rnd.shuffle(rest)
    seqr = GreSequencer(peer_window=64, reorder_capacity=300)
    got = [n for seq in [numbers[0], *rest] for n in feed(seqr, seq, 0.0)]
    assert got == numbers
    assert seqr.counters.lost == 0 and not seqr._held


@settings(max_examples=400, deadline=None)
@given(
    first_numbers,
    st.lists(st.tuples(st.integers(-40, 60), st.floats(0, 0.2)), min_size=1, max_size=150),
    st.integers(1, 32),
)
def test_any_arrival_pattern_gives_strictly_increasing_output_and_bounded_memory(
    first: int, arrivals: list[tuple[int, float]], capacity: int
) -> None:
    """Loss, duplication, reordering and late packets, with timers: the output
    never goes backwards, never repeats, and the buffer never exceeds its bound."""
    seqr = GreSequencer(peer_window=64, reorder_capacity=capacity, reorder_timeout=0.3)
    now = 0.0
    out: list[int] = []
    for offset, dt in [(0, 0.0), *arrivals]:
        now += dt
        seqr.handle_timer(now)
        out += drain(seqr)
        out += feed(seqr, (first + offset) % MOD, now)
        assert len(seqr._held) <= capacity
        if seqr._held:  # held packets always have their release pending
            oldest = min(arrival for arrival, _ in seqr._held.values())
            assert seqr.next_deadline() is not None
            assert seqr.next_deadline() <= oldest + seqr.reorder_timeout  # type: ignore[operator]
    seqr.handle_timer(now + 1.0)
    out += drain(seqr)
    assert not seqr._held
    relative = [(n - first) % MOD for n in out]
    assert all(b > a for a, b in itertools.pairwise(relative)), relative
    c = seqr.counters
    assert c.delivered == len(out)
    assert c.received == c.delivered + c.duplicates + c.stale


def test_duplicates_and_stale_packets_are_dropped_and_counted() -> None:
    seqr = GreSequencer(peer_window=64)
    assert feed(seqr, 10) == [10]
    assert feed(seqr, 11) == [11]
    assert feed(seqr, 11) == []
    assert feed(seqr, 5) == []
    assert feed(seqr, 13) == []  # held
    assert feed(seqr, 13) == []  # duplicate of a held packet
    assert feed(seqr, 12) == [12, 13]
    c = seqr.counters
    assert (c.duplicates, c.stale, c.reordered, c.delivered) == (2, 1, 1, 4)


def test_a_gap_is_written_off_after_the_reorder_timeout() -> None:
    seqr = GreSequencer(peer_window=64, reorder_timeout=0.3)
    feed(seqr, 1, 0.0)
    assert feed(seqr, 3, 1.0) == [] and feed(seqr, 4, 1.1) == []
    assert seqr.next_deadline() is not None
    seqr.handle_timer(1.29)
    assert drain(seqr) == []
    seqr.handle_timer(1.3)
    assert drain(seqr) == [3, 4]
    assert seqr.counters.lost == 1
    assert feed(seqr, 2, 1.4) == []  # too late now
    assert seqr.counters.stale == 1


def test_the_buffer_bridges_exactly_its_capacity() -> None:
    seqr = GreSequencer(peer_window=64, reorder_capacity=3)
    feed(seqr, 0)
    assert feed(seqr, 2) == [] and feed(seqr, 3) == [] and feed(seqr, 4) == []  # 3 held: full
    assert len(seqr._held) == 3
    assert feed(seqr, 6) == [2, 3, 4, 6]  # cannot be held: 1 and 5 written off
    assert seqr.counters.lost == 2 and not seqr._held


def test_a_jump_beyond_the_buffer_delivers_older_held_packets_first() -> None:
    seqr = GreSequencer(peer_window=64, reorder_capacity=10)
    feed(seqr, 100)
    assert feed(seqr, 102) == []
    assert feed(seqr, 150) == [102, 150]
    assert seqr.counters.lost == 1 + 47


# -- acks we owe ----------------------------------------------------------------------------


def test_ack_is_piggybacked_or_sent_alone_after_the_delay() -> None:
    seqr = GreSequencer(peer_window=64, our_window=64, ack_delay=0.1)
    assert seqr.take_ack() == NO_NUMBER and seqr.next_deadline() is None
    feed(seqr, 0, 5.0)
    assert seqr.next_deadline() == 5.1
    assert seqr.ack_only_due(5.05) == NO_NUMBER
    assert seqr.ack_only_due(5.1) == 0
    assert seqr.ack_only_due(5.2) == NO_NUMBER  # nothing new since
    feed(seqr, 1, 6.0)
    feed(seqr, 2, 6.01)
    assert seqr.take_ack() == 2  # piggy-backed on outgoing data
    assert seqr.next_deadline() is None and seqr.counters.ack_only_sent == 1


def test_ack_goes_at_once_when_a_quarter_of_our_window_is_unacked() -> None:
    seqr = GreSequencer(peer_window=64, our_window=16, ack_delay=0.5)
    for n in range(3):
        feed(seqr, n, 1.0)
    assert seqr.ack_only_due(1.0) == NO_NUMBER
    feed(seqr, 3, 1.0)
    assert seqr.ack_only_due(1.0) == 3


@pytest.mark.parametrize("shortcut", [False, True])
def test_with_a_large_window_the_ack_goes_at_once_after_16_packets(shortcut: bool) -> None:
    """A sender may keep fewer packets in flight than a 256-packet window allows: it must not wait for
    ``ack_delay`` (the data path's in-order shortcut behaves the same)."""
    seqr = GreSequencer(peer_window=64, our_window=256, ack_delay=0.5)
    feed(seqr, 0, 1.0)
    for n in range(1, 15):
        if shortcut:
            assert seqr.in_order(n, NO_NUMBER, 1.0) == 1
        else:
            feed(seqr, n, 1.0)
    assert seqr.ack_only_due(1.0) == NO_NUMBER and seqr.next_deadline() == 1.5
    if shortcut:
        assert seqr.in_order(15, NO_NUMBER, 1.0) == 2  # the deadline moved: the caller re-arms
    else:
        feed(seqr, 15, 1.0)
    assert seqr.next_deadline() == 1.0 and seqr.ack_only_due(1.0) == 15


def test_ack_reports_the_highest_received_even_with_a_gap() -> None:
    seqr = GreSequencer(peer_window=64)
    feed(seqr, 1)
    feed(seqr, 5)  # held
    assert seqr.take_ack() == 5
    feed(seqr, 3)  # late but not stale: does not move the ack backwards
    assert seqr.take_ack() == 5


# -- the send side ------------------------------------------------------------------------


def test_room_counts_what_the_window_takes_and_honours_the_ack_time_out() -> None:
    seqr = GreSequencer(peer_window=8, min_ack_timeout=1.0)  # the window starts at half: 4
    assert seqr.room(0.0) == 4
    for _ in range(3):
        seqr.take_seq(0.0)
    assert seqr.room(0.0) == 1
    seqr.take_seq(0.0)
    assert seqr.room(0.5) == 0 and seqr.counters.window_full == 1
    seqr.on_ack(1, 0.6)
    assert seqr.room(0.6) == 2
    seqr.take_seq(0.6)
    seqr.take_seq(0.6)
    assert seqr.room(5.0) == seqr.window and seqr.counters.ack_timeouts == 1  # written off, window halved


def test_our_numbers_start_at_0_and_the_window_limits_unacked_packets() -> None:
    seqr = GreSequencer(peer_window=3, min_ack_timeout=1.0)
    assert seqr.window == 2  # section 4.2.1: half of 3, rounded up
    assert seqr.can_send(0.0) and seqr.take_seq(0.0) == 0
    assert seqr.can_send(0.0) and seqr.take_seq(0.0) == 1
    assert not seqr.can_send(0.1) and seqr.counters.window_full == 1
    seqr.on_ack(0, 0.2)
    assert seqr.unacked == 1 and seqr.can_send(0.2)
    assert seqr.take_seq(0.2) == 2
    seqr.on_ack(2, 0.3)
    assert seqr.unacked == 0
    assert seqr.window == 3  # a whole window acked: opened by one, up to the announced 3


def test_cisco_initial_ack_and_bogus_acks_are_harmless() -> None:
    seqr = GreSequencer(peer_window=64)
    seqr.on_ack(0xFFFFFFFF, 0.0)  # "nothing received yet" before we sent anything
    assert seqr.unacked == 0 and seqr.counters.bogus_acks == 0
    seqr.take_seq(0.0)
    seqr.on_ack(7, 0.1)  # acks a number never sent
    assert seqr.counters.bogus_acks == 1 and seqr.unacked == 1
    seqr.on_ack(0, 0.2)
    assert seqr.unacked == 0 and seqr.counters.acks_received == 1


def test_a_peer_that_never_acks_cannot_stall_us() -> None:
    """The Linux kernel only piggy-backs acks: with no reverse traffic none come."""
    seqr = GreSequencer(peer_window=4, min_ack_timeout=0.5, max_ack_timeout=10.0)
    sent = 0
    now = 0.0
    for _ in range(200):
        now += 0.01
        if seqr.can_send(now):
            seqr.take_seq(now)
            sent += 1
    assert seqr.counters.ack_timeouts >= 1
    assert sent > 4
    assert seqr.window == 1  # halved on each time-out, never below 1


def test_rtt_estimate_follows_section_4_4() -> None:
    seqr = GreSequencer(peer_window=64, peer_processing_delay=0.0, min_ack_timeout=0.0, max_ack_timeout=100)
    seqr.take_seq(0.0)
    seqr.on_ack(0, 0.8)  # sample 0.8: DIFF 0.8, DEV 0.2, RTT 0.1, ATO 0.1 + 0.8
    assert abs(seqr.ack_timeout - 0.9) < 1e-9


def test_wraparound_on_the_send_side() -> None:
    seqr = GreSequencer(peer_window=64)
    seqr._next_seq = 0xFFFFFFFE
    seqr._peer_acked = 0xFFFFFFFD
    numbers = [seqr.take_seq(0.0) for _ in range(4)]
    assert numbers == [0xFFFFFFFE, 0xFFFFFFFF, 0, 1]
    assert seqr.unacked == 4
    seqr.on_ack(0, 0.1)
    assert seqr.unacked == 1


# -- spoofed packets (issue 14) ---------------------------------------------------------------------


def receive_state(seqr: GreSequencer) -> tuple[object, ...]:
    """Everything the receive side keeps, ack owed included."""
    return (
        seqr._last_delivered,
        seqr._expected,
        seqr._highest_received,
        dict(seqr._held),
        list(seqr._ready),
        seqr._ack_pending,
        seqr._ack_due,
        seqr._unacked_received,
    )


@pytest.mark.parametrize("first", [0, 1, 0xFFFFFF00, 0x7FFFFFF0])
def test_a_far_sequence_number_is_dropped_without_touching_the_receive_state(first: int) -> None:
    """RFC 2637 section 4.3 lets a receiver discard: a compliant sender is never further ahead than our
    window beyond what we acked, so a number far outside it is dropped, counted, and changes nothing:
    no delivery, no ack owed, the highest number received stays."""
    seqr = GreSequencer(peer_window=64, our_window=64, reorder_capacity=300)
    for n in range(5):
        feed(seqr, (first + n) % MOD, 1.0)
    feed(seqr, (first + 7) % MOD, 1.0)  # held: a gap of one
    seqr.take_ack()
    before = receive_state(seqr)
    far = seqr.far_jump
    assert far >= 300 + 64  # beyond what the reorder buffer and our window can bridge
    for offset in (far + 1, far + 1000, 1 << 30, (1 << 31) - 1, 1 << 31, MOD - far - 10, MOD - 5000):
        assert feed(seqr, (first + 4 + offset) % MOD, 2.0) == []
        assert receive_state(seqr) == before, offset
        assert seqr.next_deadline() == 1.0 + seqr.reorder_timeout  # only the held packet's time-out
    assert seqr.counters.far == 7
    assert seqr.take_ack() == NO_NUMBER
    assert feed(seqr, (first + 5) % MOD, 2.0) == [(first + 5) % MOD]  # the peer goes on as if nothing happened
    assert feed(seqr, (first + 6) % MOD, 2.0) == [(first + 6) % MOD, (first + 7) % MOD]
    assert seqr.in_order((first + 8) % MOD, NO_NUMBER, 2.0)  # fast path


def test_a_thousand_random_sequence_numbers_do_not_kill_the_call() -> None:
    """Today's attack: 1,000 blind packets with random Sequence Numbers among a steady stream.  Every
    legit packet is delivered, in order, and no spoofed one is."""
    seqr = GreSequencer(peer_window=64, our_window=64)
    rng = random.Random(14)
    got = feed(seqr, 1000)
    legit = 1001
    for n in range(1000):
        got += feed(seqr, rng.getrandbits(32), n * 0.001)
        if n % 10 == 9:
            got += feed(seqr, legit, n * 0.001)
            legit += 1
    assert got == list(range(1000, legit))
    c = seqr.counters
    assert c.delivered == legit - 1000 and c.lost == 0 and c.resyncs == 0
    assert c.received == c.delivered + c.duplicates + c.stale + c.far
    assert c.far >= 990  # nearly all of them are far ahead or far behind; the rest are stale
    assert seqr.take_ack() == legit - 1


def test_a_peer_that_lost_a_long_burst_is_followed_after_three_consecutive_packets() -> None:
    """The Linux kernel's pptp ignores windows: after a long outage it may come back far ahead.  Three
    packets in a row there are evidence enough (a blind spoofer would need consecutive 32-bit values):
    the receiver resynchronises and delivers from the third on."""
    seqr = GreSequencer(peer_window=64, our_window=64)
    for n in range(10):
        feed(seqr, n, 0.0)
    assert seqr.take_ack() == 9
    assert feed(seqr, 50_000, 1.0) == [] and feed(seqr, 50_001, 1.0) == []
    assert seqr.take_ack() == NO_NUMBER  # nothing acked on the way
    assert feed(seqr, 50_002, 1.0) == [50_002]
    assert seqr.take_ack() == 50_002
    assert seqr.in_order(50_003, NO_NUMBER, 1.0)  # the fast path again
    assert feed(seqr, 9, 1.0) == []  # old numbers are far behind now
    c = seqr.counters
    assert (c.resyncs, c.far, c.lost, c.delivered) == (1, 3, 0, 12)


def test_runs_are_broken_by_anything_not_consecutive() -> None:
    seqr = GreSequencer(peer_window=64, our_window=64)
    feed(seqr, 0)
    for seq in (70_000, 70_001, 90_000, 70_002, 70_003, 90_001, 70_005):
        assert feed(seqr, seq) == []
    assert seqr.counters.resyncs == 0 and feed(seqr, 1) == [1]


def test_a_spoofed_run_is_undone_by_the_peer_three_packets_later() -> None:
    """An attacker who sends three consecutive numbers moves the receiver there, but the real stream,
    now far behind, moves it back the same way: the damage is bounded to those packets."""
    seqr = GreSequencer(peer_window=64, our_window=64)
    for n in range(100):
        feed(seqr, n)
    held_before = feed(seqr, 102)  # held
    assert held_before == []
    assert feed(seqr, 1 << 30) == [] and feed(seqr, (1 << 30) + 1) == []
    assert feed(seqr, (1 << 30) + 2) == [102, (1 << 30) + 2]  # what was held goes up first
    got = [n for seq in range(103, 110) for n in feed(seqr, seq)]
    assert got == [105, 106, 107, 108, 109]
    assert seqr.counters.resyncs == 2


def test_the_first_packet_may_be_spoofed_too() -> None:
    """A spoofed packet that arrives before the peer's first one sets the starting number; the peer's
    own run then moves the receiver to where it really is."""
    seqr = GreSequencer(peer_window=64, our_window=64)
    assert feed(seqr, 0xDEADBEEF) == [0xDEADBEEF]
    got = [n for seq in range(0, 6) for n in feed(seqr, seq)]
    assert got == [2, 3, 4, 5]


def test_the_far_limit_caps_a_huge_announced_window() -> None:
    """A client may announce up to 65535 (the daemon echoes it): the limit stays small enough that
    random numbers almost never land inside it."""
    assert GreSequencer(peer_window=64, our_window=65535).far_jump == GreSequencer(64, our_window=1024).far_jump
    assert GreSequencer(peer_window=64, our_window=65535).far_jump < 2000


def test_spoofed_acks_far_ahead_or_behind_cannot_harm_the_send_side() -> None:
    """An ack for a number never sent is counted and ignored; one behind what was acked is nothing new.
    Neither moves the window, the outstanding count or the RTT estimate."""
    seqr = GreSequencer(peer_window=64, min_ack_timeout=0.5)
    for _ in range(20):
        seqr.take_seq(0.0)
    seqr.on_ack(9, 0.1)
    state = (seqr.unacked, seqr.window, seqr.ack_timeout, seqr._peer_acked, seqr._timed_seq, seqr._acked_in_window)
    assert state[0] == 10
    rng = random.Random(14)
    for ack in [*(rng.getrandbits(32) for _ in range(10_000)), 20, 21, 1 << 31, 9 + (1 << 31), 8, 0, MOD - 1]:
        seqr.on_ack(ack, 0.2)
        assert seqr.room(0.2) == seqr.window - 10
        assert (
            seqr.unacked,
            seqr.window,
            seqr.ack_timeout,
            seqr._peer_acked,
            seqr._timed_seq,
            seqr._acked_in_window,
        ) == state, ack
    assert seqr.counters.bogus_acks >= 4000 and seqr.counters.acks_received == 1
    seqr.on_ack(19, 0.3)  # the real ack still works
    assert seqr.unacked == 0


@settings(max_examples=300, deadline=None)
@given(
    first_numbers,
    st.lists(st.tuples(st.booleans(), st.integers(0, MOD - 1)), min_size=1, max_size=300),
    st.sampled_from([3, 64, 256, 65535]),
)
def test_far_spoofed_numbers_never_cost_a_legit_packet(
    first: int, arrivals: list[tuple[bool, int]], our_window: int
) -> None:
    """A steady peer and, among its packets, any numbers at least the far limit away from its own
    (unless they make a run of three): every packet of the peer is delivered, in order, nothing else
    is, and the ack reports the peer's last number."""
    seqr = GreSequencer(peer_window=64, our_window=our_window)
    limit = seqr.far_jump
    legit = [first]
    got = feed(seqr, first)
    previous = [-1, -1]  # the last two spoofed numbers
    for is_legit, value in arrivals:
        if is_legit:
            legit.append((legit[-1] + 1) % MOD)
            got += feed(seqr, legit[-1])
            continue
        seq = (legit[-1] + limit + 1 + value % (MOD - 2 * limit - 1)) % MOD  # far from the peer's number
        if previous[1] == (seq - 1) % MOD and previous[0] == (seq - 2) % MOD:
            continue  # a run of three: evidence, see the resync tests
        previous = [previous[1], seq]
        assert feed(seqr, seq) == []
    assert got == legit
    assert seqr.take_ack() == legit[-1]
    assert seqr.counters.resyncs == 0 and seqr.counters.lost == 0


# -- the hot paths' calls -------------------------------------------------------------------------


def test_a_burst_takes_its_numbers_at_once_as_one_by_one_would() -> None:
    """take_seqs(k) after numbering k packets from next_seq: the same state as k take_seq calls."""
    one, burst = GreSequencer(64), GreSequencer(64)
    numbers = [one.take_seq(1.0) for _ in range(5)]
    first = burst.next_seq
    assert burst.take_seqs(5, 1.0) == first == numbers[0] and burst.next_seq == numbers[-1] + 1
    assert (burst.unacked, burst.counters.sent) == (one.unacked, one.counters.sent) == (5, 5)
    one.on_ack(2, 1.2)
    burst.on_ack(2, 1.2)
    assert burst.unacked == one.unacked == 2 and burst.ack_timeout == one.ack_timeout  # same RTT sample


def test_the_highest_number_received_is_what_a_burst_carries() -> None:
    seqr = GreSequencer(64)
    assert seqr.highest_received == NO_NUMBER  # nothing yet: a burst carries no ack
    assert seqr.on_data(7, b"a", 0.0) and seqr.in_order(8, NO_NUMBER, 0.0)
    assert seqr.highest_received == 8 and seqr.take_ack() == 8
    assert seqr.highest_received == 8  # taking the ack does not forget it


def test_in_order_applies_the_packets_ack_and_leaves_everything_else_to_the_slow_path() -> None:
    seqr = GreSequencer(64)
    for _ in range(4):
        seqr.take_seq(0.0)
    assert seqr.on_data(100, b"a", 0.0)
    assert seqr.in_order(101, 1, 0.1) and seqr.unacked == 2  # the next packet: delivered, its ack applied
    assert seqr.in_order(101, 3, 0.1) == 0 and seqr.unacked == 2  # a duplicate: nothing, not even the ack
    assert seqr.in_order(103, 3, 0.1) == 0 and seqr.unacked == 2  # a gap: nothing
    assert seqr.in_order(102, 1, 0.2) and seqr.unacked == 2  # an old ack repeated: nothing new
    assert seqr.in_order(103, 9, 0.2) and seqr.unacked == 2 and seqr.counters.bogus_acks == 1
    assert seqr.counters.delivered == 4 and seqr.counters.acks_received == 1
