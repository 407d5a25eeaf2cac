"""No peer harms another (issue 15 section 1): a client renegotiating IPCP in a loop, against the real
daemon with proxyarp (Debian's default options), does not raise another session's ping latency above
50 ms, and the loop is cut short: the sixth renegotiation within a minute closes that client's IPCP."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from pypptp.ppp.frame import Protocol
from tests.conftest import Pypptpd, icmp_echo
from tests.test_daemon_netns import SECRETS, SEED_CONF, SEED_OPTIONS, open_client

pytestmark = pytest.mark.netns

MAX_LATENCY = 0.050


async def test_an_ipcp_renegotiation_loop_does_not_slow_another_session(
    start_pypptpd: Callable[..., Pypptpd],
) -> None:
    daemon = start_pypptpd(SEED_CONF, secrets=SECRETS, options=SEED_OPTIONS + "proxyarp\n")
    storm = await open_client(daemon, tun=False)
    victim = await open_client(daemon, tun=False)
    assert victim.network is not None and storm.ppp is not None
    renegotiations = 0

    async def renegotiate_in_a_loop() -> None:
        nonlocal renegotiations
        ppp = storm.ppp
        assert ppp is not None
        for _ in range(200):  # bounded: 200 rounds, 4 s at most
            if ppp.closed or Protocol.IPCP not in ppp.link.ncps:
                return
            ppp.renegotiate(Protocol.IPCP)  # a fresh Configure-Request from Opened
            renegotiations += 1
            await asyncio.sleep(0.02)

    async def ping_steadily() -> list[float]:
        up = victim.network
        assert up is not None
        rtts: list[float] = []
        for n in range(100):  # 2 s of pings, one every 20 ms
            sent = time.monotonic()
            victim.send(icmp_echo(str(up.local_address), "192.168.0.1"))
            try:
                reply = await asyncio.wait_for(victim.recv(), 1.0)
            except TimeoutError:
                rtts.append(1.0)
                continue
            if reply[9] == 1 and reply[20] == 0:
                rtts.append(time.monotonic() - sent)
            await asyncio.sleep(0.02 if n else 0)
        return rtts

    storming = asyncio.ensure_future(renegotiate_in_a_loop())
    rtts = await ping_steadily()
    await storming
    print(f"{renegotiations} renegotiations; victim ping max {max(rtts) * 1000:.1f} ms, {len(rtts)} replies")
    assert len(rtts) == 100 and max(rtts) < MAX_LATENCY, rtts
    log = daemon.wait_log("the peer renegotiated more than 5 times within 60 s")
    assert log.count("/etc/ppp/ip-up") <= 2 or "ip-up" not in log  # no ip-up per renegotiation
    await asyncio.wait_for(storm.wait_closed(), 10)  # the storm's IPCP closed, and with it its link
    await storm.close()
    await victim.close()
