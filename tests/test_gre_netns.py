"""Real raw GRE sockets between namespaces the test creates (198.18.0.1 <-> 198.18.0.2),
and a third namespace (198.18.1.3, linked to the server at 198.18.1.1) that spoofs."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import socket
from collections.abc import Iterator

import pytest

from pypptp.aio.gre import GreCall, GreTransport, set_receive_buffer
from pypptp.gre.codec import encode_packet
from pypptp.host.netns import NetnsPair, link, namespaces

pytestmark = pytest.mark.netns

SERVER_CALL_ID = 0x1001
CLIENT_CALL_ID = 0x2002


def _raw(pair: NetnsPair, ns: str) -> socket.socket:
    return pair.socket(ns, socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_GRE)


@contextlib.contextmanager
def _attacker(pair: NetnsPair) -> Iterator[str]:
    """A third namespace on its own link to the server: 198.18.1.3 -> 198.18.1.1."""
    with namespaces(pair.server_ns.replace("-srv", "-atk")) as (ns,):
        link(pair.server_ns, "198.18.1.1", ns, "198.18.1.3", "veth1")
        yield ns


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


@contextlib.contextmanager
def _chain(tag: str) -> Iterator[tuple[str, ...]]:
    """server ns (198.18.2.1) -- relay ns (198.18.2.2 | 198.18.3.2) -- client ns (198.18.3.1)."""
    with namespaces(*(f"pypptp-{tag}-{os.getpid()}-{role}" for role in ("srv", "rly", "cli"))) as names:
        server_ns, relay_ns, client_ns = names
        link(server_ns, "198.18.2.1", relay_ns, "198.18.2.2", "vs")
        link(client_ns, "198.18.3.1", relay_ns, "198.18.3.2", "vc")
        yield names


class FaultyRelay:
    """Forwards GRE between the two sides, losing, duplicating and reordering
    packets with a seeded generator (this kernel has no netem)."""

    def __init__(self, sock: socket.socket, seed: int, loss: float, duplicate: float, reorder: float) -> None:
        self.sock = sock
        self.random = random.Random(seed)
        self.loss, self.duplicate, self.reorder = loss, duplicate, reorder
        self.held: list[tuple[int, bytes, tuple[str, int]]] = []  # (release after N more packets, packet, to)
        self.dropped_to_server: set[int] = set()
        self.stats = {"forwarded": 0, "dropped": 0, "duplicated": 0, "reordered": 0}
        sock.setblocking(False)
        asyncio.get_running_loop().add_reader(sock.fileno(), self._on_readable)

    def close(self) -> None:
        asyncio.get_running_loop().remove_reader(self.sock.fileno())
        self.sock.close()

    def flush(self) -> None:
        for _, packet, to in self.held:
            self.sock.sendto(packet, to)
        self.held.clear()

    def _release(self, gre: bytes) -> None:
        for index, (_, packet, target) in enumerate(self.held):
            if packet is gre:
                del self.held[index]
                self.sock.sendto(packet, target)
                return

    def _on_readable(self) -> None:
        while True:
            try:
                data = self.sock.recv(65536)
            except BlockingIOError:
                return
            ihl = (data[0] & 0x0F) * 4
            gre = data[ihl:]
            from_client = socket.inet_ntoa(data[12:16]) == "198.18.3.1"
            to = ("198.18.2.1", 0) if from_client else ("198.18.3.1", 0)
            self._forward(gre, to, from_client)

    def _forward(self, gre: bytes, to: tuple[str, int], from_client: bool) -> None:
        roll = self.random.random()
        if roll < self.loss:
            self.stats["dropped"] += 1
            if from_client and gre[0] & 0x10:  # a data packet: remember its number
                self.dropped_to_server.add(int.from_bytes(gre[8:12], "big"))
        elif roll < self.loss + self.reorder:
            self.stats["reordered"] += 1
            entry = (self.random.randint(1, 5), gre, to)
            self.held.append(entry)
            # a reordering network delays a packet by milliseconds, not until traffic resumes
            asyncio.get_running_loop().call_later(self.random.uniform(0.005, 0.05), self._release, gre)
        else:
            self.sock.sendto(gre, to)
            self.stats["forwarded"] += 1
            if self.random.random() < self.duplicate:
                self.sock.sendto(gre, to)
                self.stats["duplicated"] += 1
        still_held = []
        for countdown, packet, target in self.held:
            if countdown <= 1:
                self.sock.sendto(packet, target)
            else:
                still_held.append((countdown - 1, packet, target))
        self.held = still_held


async def test_loss_duplication_and_reordering_through_a_relay(require_netns: None) -> None:
    with _chain("relay") as (server_ns, relay_ns, client_ns):
        pair = NetnsPair(server_ns, client_ns)
        server_transport, client_transport = GreTransport(), GreTransport()
        server_transport.open(_raw(pair, server_ns))
        client_transport.open(_raw(pair, client_ns))
        relay = FaultyRelay(_raw(pair, relay_ns), seed=2637, loss=0.05, duplicate=0.05, reorder=0.10)
        got: list[int] = []
        max_held = 0

        def on_server(payload: memoryview | bytes) -> None:
            got.append(int.from_bytes(payload[:4], "big"))

        server = GreCall(server_transport, "198.18.2.2", SERVER_CALL_ID, CLIENT_CALL_ID, on_server)
        client = GreCall(client_transport, "198.18.3.2", CLIENT_CALL_ID, SERVER_CALL_ID, lambda p: None)
        try:
            total = 800
            for n in range(total):
                for _ in range(1000):  # bounded wait for the window
                    if client.send(n.to_bytes(4, "big") * 350):
                        break
                    await asyncio.sleep(0.002)
                else:
                    pytest.fail("the window never opened")
                max_held = max(max_held, len(server.seq._held))
                if n % 50 == 0:
                    await asyncio.sleep(0)
            relay.flush()
            await asyncio.sleep(0.5)  # past the reorder time-out: every gap is settled
            # in order, no duplicates, and exactly what the relay let through
            assert got == sorted(set(got))
            assert set(got) == set(range(total)) - relay.dropped_to_server
            counters = server.seq.counters
            assert counters.duplicates >= 1 and counters.reordered >= 1
            assert counters.lost == len(relay.dropped_to_server) and counters.stale == 0
            assert max_held <= server.seq.reorder_capacity and not server.seq._held
            # acks: the client's window drains although the relay loses acks too.  An ack lost
            # with nothing sent after it is only replaced when new data prompts the next one, so
            # probe with a few packets (bounded), as any traffic would.
            for probe in range(10):
                client.send(b"probe %d" % probe)
                await asyncio.sleep(0.3)
                relay.flush()
                if client.seq.unacked == 0:
                    break
            assert client.seq.unacked == 0
            assert relay.stats["dropped"] and relay.stats["duplicated"] and relay.stats["reordered"]
        finally:
            server.close()
            client.close()
            relay.close()
            server_transport.close()
            client_transport.close()


async def test_gre_that_overtakes_the_call_registration_is_delivered_once_the_call_exists(
    netns_pair: NetnsPair, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server starts LCP as it sends its Outgoing-Call-Reply: its first Configure-Request may reach a
    client's (shared, already open) transport before the client has registered the call."""
    transport = GreTransport()
    transport.open(_raw(netns_pair, netns_pair.client_ns))
    sender = _raw(netns_pair, netns_pair.server_ns)
    delivered: list[bytes] = []
    call = None
    try:
        sender.sendto(encode_packet(CLIENT_CALL_ID, b"early-lcp", seq=0), (netns_pair.client_ip, 0))
        sender.sendto(encode_packet(CLIENT_CALL_ID + 1, b"stale", seq=0), (netns_pair.client_ip, 0))
        await _until(lambda: transport.counters.unknown_call == 2)
        call = GreCall(transport, netns_pair.server_ip, CLIENT_CALL_ID, SERVER_CALL_ID, lambda p: None)
        call.deliver = lambda p: delivered.append(bytes(p))  # wired after registration, as session_over_gre does
        await _until(lambda: delivered == [b"early-lcp"])
        sender.sendto(encode_packet(CLIENT_CALL_ID, b"next", seq=1), (netns_pair.client_ip, 0))
        await _until(lambda: delivered == [b"early-lcp", b"next"])
        # what is kept is bounded in count and in age: a call registered too late gets nothing old
        monkeypatch.setattr("pypptp.aio.gre.EARLY_SECONDS", 0.0)
        await asyncio.sleep(0.01)
        late: list[bytes] = []
        other = GreCall(
            transport, netns_pair.server_ip, CLIENT_CALL_ID + 1, SERVER_CALL_ID, lambda p: late.append(bytes(p))
        )
        await asyncio.sleep(0.05)
        assert late == []
        other.close()
        for n in range(100):
            sender.sendto(encode_packet(0x3000 + n, b"x", seq=0), (netns_pair.client_ip, 0))
        await _until(lambda: transport.counters.unknown_call == 102)
        assert len(transport._early) <= 16
    finally:
        if call is not None:
            call.close()
        transport.close()
        sender.close()
