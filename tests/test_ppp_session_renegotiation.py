"""The asyncio session across an LCP renegotiation: the hot path resumes with the new MPPE objects.

A server :class:`~pypptp.aio.session.PppSession` with a stand-in TUN device (a ``SOCK_SEQPACKET`` socket
pair: one packet per read and write, as a TUN descriptor gives) and a library-mode client session,
their frames carried by the event loop in this process.  No namespace, no root.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable
from ipaddress import IPv4Address
from typing import Any, cast

import pytest

from pypptp.aio.session import PppSession
from pypptp.host.tun import TunDevice
from pypptp.ppp.ccp import MppePolicy
from pypptp.ppp.link import PppLink
from tests.fake_network import FakeTun
from tests.test_ppp_link import PING, SECRETS, client_config, counter32, rng_bytes, server_config

log = logging.getLogger("test.session")
PONG = PING[:20] + b"\x00" + PING[21:]  # an echo reply the other way


async def until(condition: Callable[[], object], timeout: float = 3.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.001)


class Pair:
    def __init__(self, policy: MppePolicy, **server_changes: Any) -> None:
        loop = asyncio.get_running_loop()
        self.tun = FakeTun()
        self.server_link = PppLink(
            server_config(mppe=policy, **server_changes),
            secrets=SECRETS,
            random_bytes=rng_bytes(1),
            random32=counter32(1),
        )
        self.client_link = PppLink(client_config(mppe=policy), random_bytes=rng_bytes(2), random32=counter32(2))
        self.ups = 0
        self.downs: list[str] = []

        def to(session: Callable[[], PppSession]) -> Callable[[bytes | memoryview], bool]:
            def send(frame: bytes | memoryview) -> bool:
                loop.call_soon(session().receive_frame, bytes(frame))
                return True

            return send

        self.server = PppSession(
            self.server_link,
            to(lambda: self.client),
            log=log,
            on_up=lambda _s, _u: self._up(),
            on_down=lambda _s, reason: self.downs.append(reason),
            make_tun=lambda: cast(TunDevice, self.tun),
        )
        self.client = PppSession(self.client_link, to(lambda: self.server), log=log, attach_tun=False)

    def _up(self) -> None:
        self.ups += 1

    async def start(self) -> None:
        self.server.start()
        self.client.start()
        await until(lambda: self.server.network is not None and self.client.network is not None)

    async def flows_both_ways(self, count: int = 300) -> None:
        """TUN -> server hot path -> client, and client -> server hot path -> TUN, packet by packet."""
        received = self.client.received
        assert received is not None
        for i in range(count):
            packet = PING[:-1] + bytes([i & 0xFF])
            self.tun.theirs.send(packet)
            assert await asyncio.wait_for(received.get(), 2.0) == packet
            reply = PONG[:-1] + bytes([i & 0xFF])
            assert self.client.send_ip(reply)
            loop = asyncio.get_running_loop()
            assert await asyncio.wait_for(loop.sock_recv(self.tun.theirs, 65536), 2.0) == reply

    def close(self) -> None:
        for session in (self.client, self.server):
            session.close("test over")


@pytest.mark.parametrize("stateful", [False, True], ids=["stateless", "stateful"])
async def test_the_hot_path_resumes_with_the_new_mppe_objects(stateful: bool) -> None:
    pair = Pair(MppePolicy(stateful=stateful))
    await pair.start()
    try:
        server, link = pair.server, pair.server_link
        assert server._fast_encryptor is link.encryptor is not None
        await pair.flows_both_ways()
        old = link.encryptor, link.decryptor, link.mppe_keys
        pair.client.renegotiate()
        await asyncio.sleep(0)  # one loop turn: the client's Configure-Request reaches the server
        assert server.network is None  # LCP went down: the hot path stops at once
        assert server._fast_encryptor is None and server._fast_decryptor is None
        await until(lambda: pair.ups == 2 and pair.client.network is not None)
        assert link.encryptor is not None and link.decryptor is not None and link.mppe_keys is not None
        assert link.encryptor is not old[0] and link.decryptor is not old[1] and link.mppe_keys != old[2]
        assert server._fast_encryptor is link.encryptor and server._fast_decryptor is link.decryptor
        assert server._fast_fd == pair.tun.fd
        await pair.flows_both_ways()
        assert pair.ups == 2 and pair.downs == []
        assert len(pair.tun.configured) == 1 and pair.tun.mtus == [] and not pair.tun.closed
        assert server.stats.tun_write_errors == 0
    finally:
        pair.close()


async def test_a_new_mtu_after_renegotiation_is_applied_to_the_device() -> None:
    pair = Pair(MppePolicy())
    await pair.start()
    try:
        [(_, _, mtu)] = pair.tun.configured
        assert mtu == 1496
        lcp = pair.client_link.lcp_options
        lcp.config = dataclasses.replace(lcp.config, mru=1300)  # the client announces a smaller MRU
        pair.client.renegotiate()
        await until(lambda: pair.ups == 2)
        assert pair.tun.mtus == [1296] and pair.server._fast_mtu == 1296
        await pair.flows_both_ways(3)
    finally:
        pair.close()


async def test_new_addresses_after_renegotiation_end_the_session() -> None:
    """The device keeps the addresses it was given; a session that would need others ends."""
    pair = Pair(MppePolicy())
    await pair.start()
    try:
        link = pair.server_link
        ipcp = dataclasses.replace(link.config.ipcp, peer_address=IPv4Address("192.168.0.235"))
        link.config = dataclasses.replace(link.config, ipcp=ipcp)
        pair.client.renegotiate()
        await until(lambda: pair.server.closed)
        assert pair.downs and pair.tun.closed
    finally:
        pair.close()
