"""The receive hot path writes to the TUN only what an open NCP carries (issue 15 section 5).

``PppSession.receive_frame`` decrypts MPPE frames itself once the network is up; it wrote whatever
inner protocol MPPE carries (0x21-0xFA) to the TUN, where the link's slow path checks that the
protocol's NCP is Opened.  Only IPv4 (IPCP Opened) and IPv6 (IPV6CP Opened) may reach the TUN, or the
library's queue; the rest goes to the link, which discards it.  In-process sessions as in
test_ppp_session_renegotiation.py: a packet socket pair stands in for the TUN.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable

import pytest

from pypptp.aio.session import PppSession
from pypptp.ppp.ccp import MppePolicy
from pypptp.ppp.frame import Protocol, encode_frame
from pypptp.ppp.link import PppLink
from pypptp.ppp.mppe import MppeEncryptor
from tests.test_ppp_link import PING, client_config, counter32, rng_bytes
from tests.test_ppp_session_renegotiation import PONG, Pair, log, until

IPV6_PACKET = bytes.fromhex("6000000000083a40" + "fe80" + "00" * 13 + "01" + "fe80" + "00" * 13 + "02") + bytes(8)
"""An IPv6 packet: an 8-byte ICMPv6 payload, link-local addresses."""
OTHER = {  # protocols MPPE carries that no NCP of ours opens
    "ipx": 0x2B,
    "vj-compressed": 0x2D,
    "vj-uncompressed": 0x2F,
    "appletalk": 0x29,
    "highest": 0xFA,
}


def encrypted(encryptor: MppeEncryptor, protocol: int, payload: bytes) -> bytes:
    """What a peer holding the keys sends: any inner protocol it likes, encrypted (pppd's ACFC off)."""
    return encode_frame(Protocol.COMPRESSED, encryptor.encrypt(protocol, payload))


def sender(target: Callable[[], PppSession]) -> Callable[[bytes | memoryview], bool]:
    loop = asyncio.get_running_loop()

    def send(frame: bytes | memoryview) -> bool:
        loop.call_soon(target().receive_frame, bytes(frame))
        return True

    return send


def nothing_more(sock: socket.socket) -> bool:
    try:
        sock.recv(65536)
    except BlockingIOError:
        return True
    return False


async def tun_gets(pair: Pair) -> bytes:
    return await asyncio.wait_for(asyncio.get_running_loop().sock_recv(pair.tun.theirs, 65536), 2.0)


@pytest.mark.parametrize("stateful", [False, True], ids=["stateless", "stateful"])
@pytest.mark.parametrize("protocol", [*OTHER.values(), Protocol.IPV6], ids=[*OTHER, "ipv6-without-ipv6cp"])
async def test_a_protocol_without_an_open_ncp_never_reaches_the_tun(protocol: int, stateful: bool) -> None:
    pair = Pair(MppePolicy(stateful=stateful))
    await pair.start()
    try:
        server = pair.server
        assert server._fast_decryptor is not None and server._fast_fd == pair.tun.fd  # the hot path runs
        encryptor = pair.client_link.encryptor
        assert encryptor is not None
        payload = IPV6_PACKET if protocol == Protocol.IPV6 else PING
        for _ in range(3):
            server.receive_frame(encrypted(encryptor, protocol, payload))
        assert pair.client.send_ip(PONG)  # then an IPv4 packet: the first thing the TUN gets
        assert await tun_gets(pair) == PONG
        assert nothing_more(pair.tun.theirs)
        assert server.stats.packets_received == 1 and not server.closed
        await pair.flows_both_ways(3)  # the decryptor kept its state: the tunnel goes on
    finally:
        pair.close()


@pytest.mark.parametrize("protocol", [0x2B, Protocol.IPV6], ids=["ipx", "ipv6-without-ipv6cp"])
async def test_nor_the_librarys_queue(protocol: int) -> None:
    """A library-mode session (no TUN) queues only what an open NCP carries."""
    pair = Pair(MppePolicy())
    await pair.start()
    try:
        client, received = pair.client, pair.client.received
        assert received is not None and client._fast_decryptor is not None
        encryptor = pair.server_link.encryptor
        assert encryptor is not None
        client.receive_frame(encrypted(encryptor, protocol, PING))
        pair.tun.theirs.send(PING)  # then an IPv4 packet through the server's TUN
        assert await asyncio.wait_for(received.get(), 2.0) == PING
        assert received.empty() and client.stats.packets_received == 1
    finally:
        pair.close()


async def test_ipv6_reaches_the_tun_once_ipv6cp_is_open() -> None:
    pair = Pair(MppePolicy(), ipv6=True)
    client_link = PppLink(client_config(mppe=MppePolicy(), ipv6=True), random_bytes=rng_bytes(2), random32=counter32(2))
    pair.client_link = client_link
    pair.client = PppSession(client_link, sender(lambda: pair.server), log=log, attach_tun=False)
    await pair.start()
    try:
        server = pair.server
        await until(lambda: pair.server_link.data_open(Protocol.IPV6) and client_link.data_open(Protocol.IPV6))
        assert server._fast_decryptor is not None
        encryptor = client_link.encryptor
        assert encryptor is not None
        server.receive_frame(encrypted(encryptor, Protocol.IPV6, IPV6_PACKET))
        assert await tun_gets(pair) == IPV6_PACKET
        server.receive_frame(encrypted(encryptor, 0x2B, PING))  # still nothing else
        server.receive_frame(encrypted(encryptor, Protocol.IPV4, PONG))
        assert await tun_gets(pair) == PONG
        assert nothing_more(pair.tun.theirs)
    finally:
        pair.close()
