"""LCP renegotiation in the middle of a transfer, against the real daemon (RFC 1661 section 4.2, RCR in Opened).

Our library client sends a fresh LCP Configure-Request while a TCP transfer and pings run through the
tunnel: LCP, MS-CHAPv2, CCP and IPCP run again on both sides, the MPPE keys change (a new MS-CHAPv2
challenge), and data flows again on the same ``pppN`` with the same addresses.  Only addresses inside
the test's namespaces are used.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from pypptp.client.demo import ping, tcp_transfer
from pypptp.ppp.ccp import MppePolicy
from pypptp.ppp.link import Phase
from tests.conftest import Pypptpd
from tests.test_daemon_netns import SECRETS, SEED_CONF, SEED_OPTIONS, interfaces, open_client

pytestmark = pytest.mark.netns

MODES = {"stateless": ("", MppePolicy()), "stateful": ("mppe-stateful\n", MppePolicy(stateful=True))}


@pytest.mark.parametrize("mode", list(MODES))
async def test_lcp_renegotiation_mid_transfer_resumes_with_new_keys(
    start_pypptpd: Callable[..., Pypptpd], mode: str
) -> None:
    extra, policy = MODES[mode]
    daemon = start_pypptpd(SEED_CONF, secrets=SECRETS, options=SEED_OPTIONS + extra)
    session = await open_client(daemon, mppe=policy)
    pair = daemon.pair
    try:
        ppp = session.ppp
        assert ppp is not None and session.network is not None
        link = ppp.link
        first = session.network
        await ping(pair)
        encryptor, decryptor = link.encryptor, link.decryptor
        assert encryptor is not None and decryptor is not None
        assert link.mppe_keys is not None
        first_challenge = link.mppe_keys.challenge
        transfer = asyncio.ensure_future(tcp_transfer(pair, 8_000_000))
        for _ in range(400):  # renegotiate once a good part of the transfer went through (bounded: 20 s)
            if ppp.stats.bytes_sent > 1_000_000 or transfer.done():
                break
            await asyncio.sleep(0.05)
        assert not transfer.done(), "the transfer ended before the renegotiation: the test proves nothing"
        ups = daemon.log().count("remote IP address 192.168.0.234")
        ppp.renegotiate()
        assert link.phase is Phase.ESTABLISH and link.encryptor is None and ppp._fast_encryptor is None
        await asyncio.wait_for(transfer, 40)
        await ping(pair)
        assert link.phase is Phase.NETWORK and session.network == first  # same addresses
        assert link.encryptor is not None and link.encryptor is not encryptor
        assert link.decryptor is not None and link.decryptor is not decryptor
        assert link.mppe_keys is not None and link.mppe_keys.challenge != first_challenge  # new keys
        assert ppp._fast_encryptor is link.encryptor and ppp._fast_decryptor is link.decryptor  # the hot path
        for _ in range(100):  # the server's IPCP came up again (bounded: 5 s)
            if daemon.log().count("remote IP address 192.168.0.234") > ups:
                break
            await asyncio.sleep(0.05)
        assert daemon.log().count("remote IP address 192.168.0.234") > ups
        assert interfaces(pair) == ["ppp0"]
    finally:
        await session.close()
