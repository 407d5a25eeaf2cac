"""The session's copy-free hot path carries real packets both ways, with RC4 never run in place.

cryptography 51 refuses overlapping ``update_into`` buffers; the data path used to encrypt in place
and carried not one packet on it.  Here the real server :class:`~pypptp.aio.session.PppSession` (TUN,
raw GRE socket) and a library-mode client, negotiated for real in two namespaces, exchange IPv4
packets under :func:`tests.strict_rc4.strict_rc4`, which enforces cryptography 51's rule on every
release; each packet must arrive intact.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from benchmarks.bench_sessions import ipv4_udp
from benchmarks.bench_tunnel import CLIENT_TUNNEL, SERVER_TUNNEL, UDP_PAYLOAD, Bench
from pypptp.host.netns import NetnsPair
from tests.strict_rc4 import strict_rc4

__all__ = ["strict_rc4"]
pytestmark = pytest.mark.netns

PACKETS = 300  # past a stateful flag packet (count 255), below the TUN's queue


@pytest.mark.parametrize("stateful", [False, True], ids=["stateless", "stateful"])
async def test_packets_cross_the_hot_path_intact_both_ways(
    netns_pair: NetnsPair, strict_rc4: list[int], stateful: bool
) -> None:
    bench = Bench(netns_pair, stateful)
    await bench.start()
    try:
        # TUN -> MPPE -> GRE: datagrams routed into ppp0 reach the client decrypted, byte for byte
        expected = ipv4_udp(SERVER_TUNNEL, CLIENT_TUNNEL, UDP_PAYLOAD, port=9)
        bench._queue_into_tun(PACKETS)
        for _ in range(PACKETS):
            bench.server._from_tun()
            if bench.server.stats.packets_sent >= PACKETS:
                break
        assert bench.server.stats.packets_sent == PACKETS
        received = bench.client.received
        assert received is not None
        got: list[bytes] = []
        deadline = time.monotonic() + 5
        while len(got) < PACKETS and time.monotonic() < deadline:
            try:
                got.append(await asyncio.wait_for(received.get(), 0.5))
            except TimeoutError:
                continue
        assert len(got) == PACKETS
        for packet in got:  # the kernel chose the identification and source port: compare the rest
            assert len(packet) == len(expected) and packet[12:20] == expected[12:20]
            assert packet[28:] == UDP_PAYLOAD
        # GRE -> MPPE -> TUN: packets the client sends reach a socket behind ppp0 intact
        packet = ipv4_udp(CLIENT_TUNNEL, SERVER_TUNNEL, UDP_PAYLOAD, port=9)
        for _ in range(PACKETS):
            assert bench.client.send_ip(packet)
        delivered = 0
        deadline = time.monotonic() + 5
        while delivered < PACKETS and time.monotonic() < deadline:
            bench.server_gre.drain()
            await asyncio.sleep(0)
            try:
                while delivered < PACKETS:
                    assert bench.sink.recv(65536) == UDP_PAYLOAD
                    delivered += 1
            except BlockingIOError:
                await asyncio.sleep(0.01)
        assert delivered == PACKETS
        assert bench.server.stats.tun_write_errors == 0
        decryptor = bench.server.link.decryptor
        assert decryptor is not None and not any(decryptor.dropped.values())
        # the checked RC4 calls ran for every packet (stateful: update_into sending, update receiving, new
        # bytes out; stateless: arc4's bytes in, bytes out), none overlapped (or it would have raised);
        # key changes are 16 bytes
        assert len([n for n in strict_rc4 if n > 16]) >= 2 * PACKETS
    finally:
        bench.close()
