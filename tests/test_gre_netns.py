"""Real raw GRE sockets between namespaces the test creates (198.18.0.1 <-> 198.18.0.2),
and a third namespace (198.18.1.3, linked to the server at 198.18.1.1) that spoofs."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
from collections.abc import Iterator

import pytest

from pypptp.aio_gre import GreCall, GreTransport, set_receive_buffer
from pypptp.gre.codec import encode_packet
from pypptp.netns import NetnsPair

pytestmark = pytest.mark.netns

SERVER_CALL_ID = 0x1001
CLIENT_CALL_ID = 0x2002


def _raw(pair: NetnsPair, ns: str) -> socket.socket:
    return pair.socket(ns, socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_GRE)


@contextlib.contextmanager
def _attacker(pair: NetnsPair) -> Iterator[str]:
    """A third namespace on its own link to the server: 198.18.1.3 -> 198.18.1.1."""
    ns = pair.server_ns.replace("-srv", "-atk")

    def ip(*args: str) -> None:
        subprocess.run(["ip", *args], check=True, capture_output=True)

    ip("netns", "add", ns)
    try:
        ip("link", "add", "veth1", "netns", pair.server_ns, "type", "veth", "peer", "name", "veth1", "netns", ns)
        ip("-n", pair.server_ns, "addr", "add", "198.18.1.1/24", "dev", "veth1")
        ip("-n", ns, "addr", "add", "198.18.1.3/24", "dev", "veth1")
        ip("-n", pair.server_ns, "link", "set", "veth1", "up")
        ip("-n", ns, "link", "set", "veth1", "up")
        yield ns
    finally:
        subprocess.run(["ip", "netns", "delete", ns], check=False, capture_output=True)


async def _until(condition: object, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():  # type: ignore[operator]
            await asyncio.sleep(0.01)


async def test_in_order_delivery_acks_and_fragmented_full_size_packets(netns_pair: NetnsPair) -> None:
    server_transport, client_transport = GreTransport(), GreTransport()
    server_transport.open(_raw(netns_pair, netns_pair.server_ns))
    client_transport.open(_raw(netns_pair, netns_pair.client_ns))
    # every raw GRE socket gets a copy of every GRE packet: this one watches the wire
    observer = _raw(netns_pair, netns_pair.server_ns)
    observer.setblocking(False)
    set_receive_buffer(observer, 8 * 1024 * 1024)
    received_by_server: list[bytes] = []
    received_by_client: list[bytes] = []
    server = GreCall(
        server_transport,
        netns_pair.client_ip,
        SERVER_CALL_ID,
        CLIENT_CALL_ID,
        lambda p: received_by_server.append(bytes(p)),
    )
    client = GreCall(
        client_transport,
        netns_pair.server_ip,
        CLIENT_CALL_ID,
        SERVER_CALL_ID,
        lambda p: received_by_client.append(bytes(p)),
    )
    try:
        payloads = [n.to_bytes(4, "big") * 350 for n in range(300)]  # 1400 bytes each
        payloads.append(b"F" * 3000)  # larger than the veth MTU: the kernel must fragment it
        for payload in payloads:
            for _ in range(500):  # bounded: wait for the window to open
                if client.send(payload):
                    break
                await asyncio.sleep(0.005)
            else:
                pytest.fail("the peer window never opened")
        await _until(lambda: len(received_by_server) == len(payloads))
        assert received_by_server == payloads
        # the server has no data to send: its ack-only packets must drain the client's window
        await _until(lambda: client.seq.unacked == 0)
        assert server.seq.counters.ack_only_sent >= 1
        assert server.send(b"reply") and client.send(b"more")
        await _until(lambda: received_by_client == [b"reply"] and len(received_by_server) == len(payloads) + 1)
        assert server.seq.counters.duplicates == server.seq.counters.stale == server.seq.counters.lost == 0
        assert server_transport.counters.malformed == server_transport.counters.unknown_call == 0
        seen = 0
        with contextlib.suppress(BlockingIOError):
            while True:
                ip_packet = observer.recv(65536)
                flags = int.from_bytes(ip_packet[6:8], "big")
                assert not flags & 0x4000, "GRE sent with DF set: IP_PMTUDISC_DONT is not in effect"
                seen += 1
        assert seen >= len(payloads)
    finally:
        observer.close()
        server.close()
        client.close()
        server_transport.close()
        client_transport.close()


async def test_spoofed_gre_with_a_valid_call_id_from_a_third_namespace_is_ignored(netns_pair: NetnsPair) -> None:
    with _attacker(netns_pair) as attacker_ns:
        transport = GreTransport()
        transport.open(_raw(netns_pair, netns_pair.server_ns))
        delivered: list[bytes] = []
        call = GreCall(
            transport, netns_pair.client_ip, SERVER_CALL_ID, CLIENT_CALL_ID, lambda p: delivered.append(bytes(p))
        )
        attacker = _raw(netns_pair, attacker_ns)
        legit = _raw(netns_pair, netns_pair.client_ns)
        try:
            for n in range(20):
                attacker.sendto(encode_packet(SERVER_CALL_ID, b"evil", seq=n), ("198.18.1.1", 0))
            attacker.sendto(b"\x00" * 20, ("198.18.1.1", 0))  # not even GRE
            legit.sendto(encode_packet(SERVER_CALL_ID, b"good", seq=0), (netns_pair.server_ip, 0))
            await _until(lambda: delivered == [b"good"])
            await _until(lambda: transport.counters.unknown_call == 20 and transport.counters.malformed == 1)
            assert call.seq.counters.received == 1
        finally:
            call.close()
            transport.close()
            attacker.close()
            legit.close()
