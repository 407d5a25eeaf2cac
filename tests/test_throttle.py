"""The per-source authentication failure budget (issue: survive the internet, section 5)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pypptp.aio.throttle import FailureThrottle


def test_five_failures_in_a_minute_block_the_address_for_five_minutes() -> None:
    throttle = FailureThrottle()
    for n in range(4):
        assert not throttle.failed("198.18.0.9", float(n))
        assert throttle.blocked("198.18.0.9", float(n)) == 0
    assert throttle.failed("198.18.0.9", 10.0)
    assert throttle.blocked("198.18.0.9", 10.0) == 300.0
    assert throttle.blocked("198.18.0.9", 309.0) == 1.0
    assert throttle.blocked("198.18.0.9", 310.0) == 0
    assert throttle.blocked("198.18.0.10", 10.0) == 0  # another address is never affected


def test_failures_spread_wider_than_the_window_never_block() -> None:
    throttle = FailureThrottle(limit=5, window=60.0)
    assert not any(throttle.failed("198.18.0.9", n * 16.0) for n in range(100))  # 3.75 a minute


def test_failures_during_a_block_do_not_extend_it_and_count_afresh_after() -> None:
    throttle = FailureThrottle(limit=2, window=10.0, block=100.0)
    assert not throttle.failed("a", 0.0)
    assert throttle.failed("a", 1.0)
    assert not throttle.failed("a", 50.0)  # a connection that was already open when the block began
    assert throttle.blocked("a", 50.0) == 51.0
    assert not throttle.failed("a", 200.0)
    assert throttle.failed("a", 201.0)


def test_memory_is_bounded() -> None:
    throttle = FailureThrottle(max_sources=100)
    for n in range(10_000):
        throttle.failed(f"10.0.{n >> 8}.{n & 255}", float(n))
    assert len(throttle) == 100


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError):
        FailureThrottle(limit=0)


@given(st.lists(st.tuples(st.integers(0, 3), st.floats(0, 5)), max_size=200))
def test_a_blocked_source_had_limit_failures_within_the_window(events: list[tuple[int, float]]) -> None:
    """Against a plain model: a block starts exactly when the limit-th failure within the window lands
    outside a block."""
    throttle = FailureThrottle(limit=3, window=10.0, block=20.0)
    now = 0.0
    history: dict[int, list[float]] = {}
    until: dict[int, float] = {}
    for source, step in events:
        now += step
        blocked_before = until.get(source, 0.0) > now
        started = throttle.failed(str(source), now)
        times = history.setdefault(source, [])
        times.append(now)
        expected = not blocked_before and len(times) >= 3 and now - times[-3] <= 10.0
        assert started == expected
        if started:
            until[source] = now + 20.0
            times.clear()
