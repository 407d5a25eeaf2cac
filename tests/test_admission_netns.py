"""Availability under abuse: idle and half-open connections never lock users out (issue: survive the
internet, section 1), and the daemon's resources stay bounded while they are held.

A :class:`~tests.flood.Flood` holds idle, SCCRQ-then-silent and trickling connections to a real
pypptpd, from one address and from 20, reopening each one the daemon drops; meanwhile a real client
connects again and again and must get its first ping reply through the tunnel within 3 s every time.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable

import pytest

from pypptp.client_session import PptpClientSession
from pypptp.server import ServerSettings, listen_backlog
from tests.conftest import Pypptpd, tunnel_ping
from tests.flood import Flood
from tests.test_daemon_netns import SECRETS, SEED_CONF, SEED_OPTIONS, daemon_fds, daemon_rss, open_client

pytestmark = pytest.mark.netns

FLOOD_PER_KIND = int(os.environ.get("PYPPTP_FLOOD_PER_KIND", "100"))
"""Connections of each kind held (400 in all: more than the default pending budget of 256); the issue's
bar is 1000 of each: PYPPTP_FLOOD_PER_KIND=1000 runs it."""
ATTEMPTS = 5
FIRST_PING_WITHIN = 3.0


def add_sources(daemon: Pypptpd, count: int) -> list[str]:
    """``count`` more addresses on the client namespace's link (198.18.0.100...), for the flood."""
    sources = [f"198.18.0.{100 + n}" for n in range(count)]
    for address in sources:
        subprocess.run(["ip", "-n", daemon.pair.client_ns, "addr", "add", f"{address}/24", "dev", "veth0"], check=True)
    return sources


def daemon_resources(daemon: Pypptpd) -> tuple[int, int]:
    """(open descriptors, RSS in KiB) of the daemon process."""
    return daemon_fds(daemon), daemon_rss(daemon)


async def first_ping(daemon: Pypptpd) -> tuple[float, PptpClientSession]:
    """Seconds from the TCP connect to the first ping reply through a new tunnel."""
    started = time.monotonic()
    session = await open_client(daemon, tun=False)
    if await tunnel_ping(session, "192.168.0.1", attempts=20, wait=0.25):
        return time.monotonic() - started, session
    await session.close()
    raise AssertionError("no ping reply through the tunnel")


@pytest.mark.parametrize("source_count", [1, 20], ids=["one-source", "twenty-sources"])
async def test_a_client_gets_through_while_the_pending_budget_is_flooded(
    start_pypptpd: Callable[..., Pypptpd], source_count: int
) -> None:
    daemon = start_pypptpd(SEED_CONF, secrets=SECRETS, options=SEED_OPTIONS)
    baseline_fds, baseline_rss = daemon_resources(daemon)
    flood = Flood(daemon.pair.client_ns, daemon.address, add_sources(daemon, source_count), FLOOD_PER_KIND)
    await flood.start()
    try:
        await flood.wait_held(0.5, timeout=30)
        assert flood.stats.opened >= 0.5 * FLOOD_PER_KIND * 4
        times = []
        for _ in range(ATTEMPTS):
            elapsed, session = await first_ping(daemon)
            times.append(elapsed)
            await session.close()
        fds, rss = daemon_resources(daemon)
    finally:
        await flood.stop()
    print(
        f"first ping {[round(t, 2) for t in times]} s; fds {baseline_fds}->{fds}; "
        f"RSS {baseline_rss}->{rss} KiB; {flood.stats}"
    )
    assert max(times) < FIRST_PING_WITHIN, times
    # bounded by the pending budget and one accept batch (asyncio accepts up to the listen backlog per
    # wakeup before the protocol sees them), not by what the flood holds
    settings = ServerSettings(max_connections=6)
    assert fds < baseline_fds + settings.max_pending + listen_backlog(settings) + 16, (baseline_fds, fds)
    assert rss < baseline_rss + 64 * 1024, (baseline_rss, rss)
    log = daemon.log()
    assert "connection(s) dropped to make room" in log
    assert log.count("connection(s) dropped") < 20  # a summary, not a line per connection
