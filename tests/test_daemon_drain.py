"""An ended session's addresses drain until its teardown is over, and no longer than the daemon's limit.

The daemon's bookkeeping alone (:meth:`Daemon._release_addresses`, :meth:`Daemon._hold_while_draining`,
:meth:`Daemon._drain`), with stand-ins for the session, its device and its scripts, so that a teardown
that never ends can be tried in a fraction of a second; tests/test_reconnect_netns.py runs the whole
thing with the real daemon.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import ipaddress
import logging
import os
import time
import types
from typing import Any

import pytest

from pypptp.daemon import manager
from pypptp.daemon.manager import DRAIN_LIMIT, Daemon
from pypptp.daemon.pool import AddressPool
from pypptp.host.claims import Claims

LOCAL = ipaddress.IPv4Address("192.168.0.1")
PEER = ipaddress.IPv4Address("192.168.0.234")


class Scripts:
    """ip-down as the script runner runs it: :meth:`wait` returns once ``finished`` is set."""

    def __init__(self) -> None:
        self.finished = asyncio.Event()

    async def wait(self) -> None:
        await self.finished.wait()


def daemon(pool: AddressPool, limit: float = DRAIN_LIMIT) -> Daemon:
    made = Daemon.__new__(Daemon)
    made.pool, made.claims = pool, None
    made._draining, made._draining_pins, made._drains = {}, {}, set()
    made._pinned_in_use = set()
    made.drain_limit = limit
    return made


def session(pool: AddressPool, *, device: bool = True) -> Any:
    lease = pool.acquire()
    assert lease is not None
    gone: concurrent.futures.Future[None] = concurrent.futures.Future()
    return types.SimpleNamespace(
        lease=lease,
        addresses=(lease.local, lease.remote),
        pinned=None,
        held=(),
        seat=None,
        tun=types.SimpleNamespace(gone=gone) if device else None,
        scripts=Scripts(),
        unit=0,
        log=logging.LoggerAdapter(logging.getLogger("test.drain"), {}),
        ppp=types.SimpleNamespace(network_hold=None, closed=False),
    )


async def test_the_address_drains_until_the_device_is_gone_and_ip_down_has_run() -> None:
    pool = AddressPool.parse(str(LOCAL), str(PEER))
    owner = daemon(pool)
    old = session(pool)
    slot = old.lease.index
    done = owner._release_addresses(old)
    assert done is not None and pool.is_draining(slot) and owner._draining == {PEER: done}
    drain = asyncio.ensure_future(owner._drain(old, done, slot, None))
    new = session(pool)  # the pool's only address: handed out, the new session's network held
    owner._hold_while_draining(new)
    assert new.ppp.network_hold is done
    old.scripts.finished.set()  # ip-down done, the device not yet gone
    await asyncio.sleep(0.05)
    assert not done.done() and pool.is_draining(slot)
    old.tun.gone.set_result(None)
    await asyncio.wait_for(drain, 1)
    assert done.done() and not pool.is_draining(slot) and owner._draining == {}
    assert pool.in_use == 1  # the new session goes on with it


async def test_a_teardown_that_never_ends_frees_the_address_at_the_limit(caplog: pytest.LogCaptureFixture) -> None:
    pool = AddressPool.parse(str(LOCAL), str(PEER))
    owner = daemon(pool, limit=0.2)
    old = session(pool)
    old.tun.gone.set_result(None)
    done = owner._release_addresses(old)
    assert done is not None
    loop = asyncio.get_running_loop()
    started = loop.time()
    with caplog.at_level(logging.WARNING, logger="test.drain"):
        await asyncio.wait_for(owner._drain(old, done, 0, None), 2)  # ip-down never finishes
    assert 0.2 <= loop.time() - started < 1.0
    assert done.done() and not pool.is_draining(0) and owner._draining == {}
    assert "is not over after 0.2 s: its addresses are free again anyway" in caplog.text
    assert pool.acquire() is not None


async def test_a_session_that_made_no_device_frees_its_address_at_once() -> None:
    pool = AddressPool.parse(str(LOCAL), str(PEER))
    owner = daemon(pool)
    never_up = session(pool, device=False)
    assert owner._release_addresses(never_up) is None
    assert not pool.is_draining(0) and owner._draining == {}
    fresh = session(pool)
    owner._hold_while_draining(fresh)
    assert fresh.ppp.network_hold is None  # nothing to wait for


async def test_a_failing_teardown_still_frees_the_address(caplog: pytest.LogCaptureFixture) -> None:
    pool = AddressPool.parse(str(LOCAL), str(PEER))
    owner = daemon(pool)
    old = session(pool)
    old.tun.gone.set_exception(OSError("the device would not go"))
    done = owner._release_addresses(old)
    assert done is not None
    with caplog.at_level(logging.ERROR, logger="test.drain"):
        await asyncio.wait_for(owner._drain(old, done, 0, None), 1)
    assert done.done() and not pool.is_draining(0) and "internal error while ppp0 was torn down" in caplog.text


class PinClaim:
    """A ``pin/ADDRESS`` claim (``--workers``), noting whether it was let go."""

    def __init__(self, address: ipaddress.IPv4Address) -> None:
        self.name = f"pin/{address}"
        self.released = False

    def release(self) -> None:
        self.released = True


async def test_a_refused_session_leaves_its_predecessors_draining_pin_claimed() -> None:
    """A pinned user back while its last session still drains takes over that session's ``pin/`` claim;
    when the new session is refused (no slot left for it, say), the claim stays held until the drain is
    over: no other worker may hand the address out meanwhile."""
    pool = AddressPool.parse(str(LOCAL), str(PEER))
    owner = daemon(pool)
    draining = asyncio.get_running_loop().create_future()
    owner._draining[PEER] = draining
    pin, other = PinClaim(PEER), PinClaim(ipaddress.IPv4Address("192.168.0.99"))
    refused: Any = types.SimpleNamespace(held=(pin, other), seat=None)
    owner._release_held(refused)
    assert not pin.released and owner._draining_pins == {PEER: pin}
    assert other.released and refused.held == ()


# -- --workers: every seat of ``connections`` held by another worker's session that is ending ----------


def seated_daemon(pool: AddressPool, tag: str) -> Daemon:
    owner = daemon(pool)
    owner.claims = Claims(tag)
    owner.settings = types.SimpleNamespace(max_connections=1)  # type: ignore[assignment]
    return owner


def terminable(new: Any) -> list[str]:
    """``new.ppp.terminate`` recording its reasons (and closing the stand-in session)."""
    reasons: list[str] = []

    def terminate(reason: str) -> None:
        reasons.append(reason)
        new.ppp.closed = True

    new.ppp.terminate = terminate
    return reasons


async def test_a_seat_another_worker_gives_up_a_moment_later_is_waited_for() -> None:
    """A redial can reach another worker before the one that served it has seen its TCP connection go:
    its seat is still held then.  The new session waits for it (its network held), not refused."""
    tag = f"pypptp-test-seat-{os.getpid()}-{time.monotonic_ns()}"
    pool = AddressPool.parse(str(LOCAL), "192.168.0.234-235")
    owner = seated_daemon(pool, tag)
    ending = Claims(tag).take("seat/0")  # the other worker's ended session, not released yet
    assert ending is not None
    new = session(pool, device=False)
    reasons = terminable(new)
    owner._hold_while_draining(new, seat_wait=True)
    hold = new.ppp.network_hold
    assert hold is not None and not hold.done() and new.seat is None
    await asyncio.sleep(0.1)
    assert not hold.done()
    ending.release()
    await asyncio.wait_for(hold, 1)
    assert new.seat is not None and new.seat.name == "seat/0" and not reasons
    new.seat.release()


async def test_a_seat_that_stays_held_refuses_the_session_after_the_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(manager, "SEAT_WAIT", 0.2)
    tag = f"pypptp-test-seat-{os.getpid()}-{time.monotonic_ns()}"
    pool = AddressPool.parse(str(LOCAL), "192.168.0.234-235")
    owner = seated_daemon(pool, tag)
    other = Claims(tag).take("seat/0")  # a live session of the other worker: the limit is really reached
    assert other is not None
    new = session(pool, device=False)
    reasons = terminable(new)
    loop = asyncio.get_running_loop()
    started = loop.time()
    owner._hold_while_draining(new, seat_wait=True)
    while not reasons and loop.time() - started < 2:
        await asyncio.sleep(0.02)
    assert reasons == ["connection limit 1 reached; no address for this session"]
    assert 0.2 <= loop.time() - started < 1.0 and new.seat is None
    other.release()
