"""The session's data path (pypptp.aio.session over pypptp.aio.gre) without root or namespaces.

A server :class:`~pypptp.aio.session.PppSession` with a stand-in TUN device and a library-mode client
session, each on a :class:`~pypptp.aio.gre.GreCall` over a :class:`~pypptp.aio.gre.GreTransport`
whose raw socket is a fake carried by an in-memory network, on an event loop whose clock only the
test moves (tests/fake_network.py).  Wired as the daemon wires them (``session_over_gre``).
Everything in between is the real code: negotiation (MS-CHAPv2, MPPE-128, IPCP), the GRE
demultiplexer and sequencing, and the session's hot path both ways.
"""

from __future__ import annotations

import asyncio
import dataclasses
import errno
import logging
import struct
from collections.abc import Callable
from typing import Any, cast

import pytest

from pypptp.aio import session as aio_session
from pypptp.aio.gre import GreCall, GreTransport
from pypptp.aio.session import PppSession, session_over_gre
from pypptp.gre.codec import NO_NUMBER, decode_header
from pypptp.host.tun import TunDevice, TunError
from pypptp.ppp.ccp import MppePolicy
from pypptp.ppp.link import PppLink
from tests.fake_network import (
    ClockLoop,
    FakeNetwork,
    FakeRawSocket,
    FakeTun,
    advance,
    run,
    turns,
    until,
    until_in_time,
)
from tests.test_ppp_link import NO_MPPE, PING, SECRETS, client_config, counter32, rng_bytes, server_config

LOG = logging.getLogger("test.session")
SERVER, CLIENT = "198.18.0.1", "198.18.0.2"
SERVER_CALL, CLIENT_CALL = 0x1001, 0x2002
TUNNEL_SERVER, TUNNEL_CLIENT = "192.168.0.1", "192.168.0.234"  # what IPCP gives (tests.test_ppp_link)
PONG = PING[:20] + b"\x00" + PING[21:]  # an echo reply, client to server


def numbered(packet: bytes, n: int) -> bytes:
    """``packet`` with ``n`` in its last two bytes (packets told apart, order checked)."""
    return packet[:-2] + struct.pack(">H", n & 0xFFFF)


def tcp_syn(source: str, destination: str, mss: int) -> bytes:
    """An IPv4 TCP SYN with an MSS option (checksums zero: the tunnel does not check them)."""
    tcp = struct.pack(">HHIIBBHHH", 40000, 80, 1, 0, 6 << 4, 0x02, 65535, 0, 0) + struct.pack(">BBH", 2, 4, mss)
    header = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 0, 0, 64, 6, 0, b"", b"")
    return header[:12] + bytes(int(x) for x in source.split(".")) + bytes(int(x) for x in destination.split(".")) + tcp


def mss_of(packet: bytes) -> int:
    ihl = (packet[0] & 0x0F) * 4
    assert packet[ihl + 20] == 2 and packet[ihl + 21] == 4  # the MSS option, first
    return int(struct.unpack_from(">H", packet, ihl + 22)[0])


def wire_session(
    transport: GreTransport, peer: str, call_id: int, peer_call_id: int, link: PppLink, **session_args: Any
) -> tuple[GreCall, PppSession]:
    """A GRE call and its PPP session, as the daemon and the client build them (windows of 64)."""
    return session_over_gre(
        transport, peer, call_id, peer_call_id, link, peer_window=64, our_window=64, log=LOG, **session_args
    )


class Tunnel:
    """The server (TUN) and a library-mode client, over GRE on a fake network."""

    def __init__(
        self,
        policy: MppePolicy | None = None,
        *,
        make_tun: Callable[[], TunDevice] | None = None,
        **server_args: Any,
    ) -> None:
        policy = policy or MppePolicy()
        self.network = FakeNetwork()
        self.server_sock, self.client_sock = FakeRawSocket(SERVER, self.network), FakeRawSocket(CLIENT, self.network)
        self.server_transport, self.client_transport = GreTransport(), GreTransport()
        self.server_transport.open(self.server_sock)  # type: ignore[arg-type]
        self.client_transport.open(self.client_sock)  # type: ignore[arg-type]
        self.tun = FakeTun()
        self.tun_packets: list[bytes] = []
        self.downs: list[str] = []
        server_link = PppLink(
            server_config(mppe=policy) if policy.enabled else server_config(mppe=NO_MPPE),
            secrets=SECRETS,
            random_bytes=rng_bytes(1),
            random32=counter32(1),
        )
        client_link = PppLink(
            client_config(mppe=policy if policy.enabled else NO_MPPE), random_bytes=rng_bytes(2), random32=counter32(2)
        )
        self.server_call, self.server = wire_session(
            self.server_transport,
            CLIENT,
            SERVER_CALL,
            CLIENT_CALL,
            server_link,
            on_down=lambda _s, reason: self.downs.append(reason),
            make_tun=make_tun or (lambda: cast(TunDevice, self.tun)),
            **server_args,
        )
        self.client_call, self.client = wire_session(
            self.client_transport, SERVER, CLIENT_CALL, SERVER_CALL, client_link, attach_tun=False
        )

    def narrow_window(self, packets: int) -> None:
        """The client's announced window, as if it had said ``packets`` (after the negotiation, whose
        frames a window of 1 would drop and retransmit for seconds)."""
        self.server_call.seq.peer_window = self.server_call.seq.window = packets

    async def start(self) -> None:
        self.server.start()
        self.client.start()
        loop = asyncio.get_running_loop()
        assert isinstance(loop, ClockLoop)
        await until_in_time(loop, lambda: self.server.network is not None and self.client.network is not None, 10.0)

    def tun_has(self, count: int) -> bool:
        """Whether the TUN got ``count`` packets in all (collected in :attr:`tun_packets`)."""
        self.tun_packets += self.tun.written()
        return len(self.tun_packets) >= count

    async def tun_gets(self, count: int) -> None:
        """Until the TUN got ``count`` packets in all."""
        await until(lambda: self.tun_has(count))

    @property
    def received(self) -> asyncio.Queue[bytes]:
        assert self.client.received is not None
        return self.client.received

    def client_got(self) -> list[bytes]:
        packets = []
        while not self.received.empty():
            packets.append(self.received.get_nowait())
        return packets

    def close(self) -> None:
        for session in (self.client, self.server):
            session.close("test over")
        for call, transport in ((self.client_call, self.client_transport), (self.server_call, self.server_transport)):
            call.close()
            transport.close()


def run_tunnel(test: Callable[[ClockLoop, Tunnel], Any], *args: Any, **kwargs: Any) -> None:
    async def body(loop: ClockLoop) -> None:
        tunnel = Tunnel(*args, **kwargs)
        try:
            await tunnel.start()
            await test(loop, tunnel)
        finally:
            tunnel.close()

    run(body)


# -- the hot path, both ways -------------------------------------------------------------------------


@pytest.mark.parametrize("stateful", [False, True], ids=["stateless", "stateful"])
def test_ip_packets_cross_the_hot_path_both_ways_encrypted_in_order(stateful: bool) -> None:
    wire: list[bytes] = []

    async def test(loop: ClockLoop, tunnel: Tunnel) -> None:
        server = tunnel.server
        assert server._fast_encryptor is not None and server._fast_decryptor is not None  # the hot path runs

        def record(source: str, destination: str, gre: bytes) -> bool:
            wire.append(gre)
            return True

        tunnel.network.filter = record
        count = 300  # past a stateful flag packet (count 255)
        for n in range(count):
            tunnel.tun.theirs.send(numbered(PING, n))  # routed into pppN: the server's TUN reader
            await until(lambda: not tunnel.received.empty())
            assert tunnel.received.get_nowait() == numbered(PING, n)
            assert tunnel.client.send_ip(numbered(PONG, n))
            await tunnel.tun_gets(n + 1)
        assert tunnel.tun_packets == [numbered(PONG, n) for n in range(count)]
        stats = server.stats
        assert (stats.packets_sent, stats.packets_received) == (count, count)
        assert stats.bytes_sent == stats.bytes_received == count * len(PING)
        assert stats.tun_write_errors == stats.send_refused == stats.tun_pauses == 0
        assert tunnel.client.stats.packets_received == count
        # MPPE on the wire: no packet's plaintext is there to read
        assert not any(PING[20:] in gre or PONG[20:] in gre for gre in wire)
        for counters in (tunnel.server_transport.counters, tunnel.client_transport.counters):
            assert counters.malformed == counters.unknown_call == counters.send_errors == 0
        assert tunnel.server_call.seq.counters.lost == tunnel.client_call.seq.counters.lost == 0

    run_tunnel(test, MppePolicy(stateful=stateful))


def test_without_mppe_packets_take_the_links_path_both_ways() -> None:
    async def test(loop: ClockLoop, tunnel: Tunnel) -> None:
        assert tunnel.server._fast_encryptor is None
        for n in range(20):
            tunnel.tun.theirs.send(numbered(PING, n))
            await until(lambda: not tunnel.received.empty())
            assert tunnel.received.get_nowait() == numbered(PING, n)
            assert tunnel.client.send_ip(numbered(PONG, n))
            await tunnel.tun_gets(n + 1)
        assert tunnel.tun_packets == [numbered(PONG, n) for n in range(20)]
        assert tunnel.server.stats.packets_sent == tunnel.server.stats.packets_received == 20

    run_tunnel(test, MppePolicy(enabled=False, required=False))


@pytest.mark.parametrize(
    "policy",
    [MppePolicy(stateful=False), MppePolicy(stateful=True), MppePolicy(enabled=False, required=False)],
    ids=["stateless", "stateful", "no-mppe"],
)
def test_tcp_syns_are_clamped_to_the_tunnel_mtu_both_ways(policy: MppePolicy) -> None:
    async def test(loop: ClockLoop, tunnel: Tunnel) -> None:
        network = tunnel.server.network
        assert network is not None
        mss = network.mtu - 40  # IPv4 and TCP headers without options
        tunnel.tun.theirs.send(tcp_syn(TUNNEL_SERVER, TUNNEL_CLIENT, 1460))
        await until(lambda: not tunnel.received.empty())
        assert mss_of(tunnel.received.get_nowait()) == mss
        assert tunnel.client.send_ip(tcp_syn(TUNNEL_CLIENT, TUNNEL_SERVER, 1460))
        await tunnel.tun_gets(1)
        assert mss_of(tunnel.tun_packets[0]) == mss
        small = tcp_syn(TUNNEL_CLIENT, TUNNEL_SERVER, 536)  # already small enough: left alone
        assert tunnel.client.send_ip(small)
        await tunnel.tun_gets(2)
        assert tunnel.tun_packets[1] == small
        ack = bytearray(tcp_syn(TUNNEL_CLIENT, TUNNEL_SERVER, 1460))
        ack[33] = 0x10  # not a SYN: never touched
        assert tunnel.client.send_ip(bytes(ack))
        await tunnel.tun_gets(3)
        assert tunnel.tun_packets[2] == ack

    run_tunnel(test, policy)


def with_ip_options(packet: bytes) -> bytes:
    """``packet`` (IPv4) with 4 bytes of IP options (NOPs) after its 20-byte header: IHL 6."""
    header = bytearray(packet[:20])
    header[0] = 0x46
    struct.pack_into(">H", header, 2, len(packet) + 4)
    return bytes(header) + b"\x01\x01\x01\x01" + packet[20:]


@pytest.mark.parametrize("stateful", [False, True], ids=["stateless", "stateful"])
def test_syns_behind_ip_options_are_clamped_on_the_hot_path_both_ways(stateful: bool) -> None:
    """The hot paths look for a SYN behind a 20-byte header first: a header with options must still be
    found (the client clamps nothing here, so what it receives was clamped by the server's burst)."""

    async def test(loop: ClockLoop, tunnel: Tunnel) -> None:
        tunnel.client.clamp = False
        network = tunnel.server.network
        assert network is not None and tunnel.server._fast_encryptor is not None
        mss = network.mtu - 40
        tunnel.tun.theirs.send(with_ip_options(tcp_syn(TUNNEL_SERVER, TUNNEL_CLIENT, 1460)))
        await until(lambda: not tunnel.received.empty())
        assert mss_of(tunnel.received.get_nowait()) == mss
        assert tunnel.client.send_ip(with_ip_options(tcp_syn(TUNNEL_CLIENT, TUNNEL_SERVER, 1460)))
        await tunnel.tun_gets(1)
        assert mss_of(tunnel.tun_packets[0]) == mss
        not_syn = bytearray(tcp_syn(TUNNEL_CLIENT, TUNNEL_SERVER, 1460))
        not_syn[33] = 0x10  # an ACK ...
        not_syn[35] = 0x02  # ... whose byte 35 (window) looks like a SYN's flags: never touched
        assert tunnel.client.send_ip(bytes(not_syn))
        tunnel.tun.theirs.send(bytes(not_syn))
        await tunnel.tun_gets(2)
        await until(lambda: not tunnel.received.empty())
        assert tunnel.tun_packets[1] == tunnel.received.get_nowait() == not_syn

    run_tunnel(test, MppePolicy(stateful=stateful))


def test_a_burst_is_numbered_in_order_and_every_packet_carries_the_ack() -> None:
    """Packets read in one wakeup leave as one burst: consecutive Sequence Numbers, each with the highest
    number received as its ack (RFC 2637 section 4.1 allows it on any packet), so the peer owes no wait."""
    wire: list[tuple[int, int, int]] = []

    async def test(loop: ClockLoop, tunnel: Tunnel) -> None:
        assert tunnel.client.send_ip(PONG)
        await tunnel.tun_gets(1)
        highest = tunnel.server_call.seq.highest_received
        first = tunnel.server_call.seq.next_seq
        transport_sent = tunnel.server_transport.counters.sent

        def record(source: str, destination: str, gre: bytes) -> bool:
            if source == SERVER:
                header = decode_header(gre)
                wire.append((header.seq, header.ack, header.call_id))
            return True

        tunnel.network.filter = record
        for n in range(5):
            tunnel.tun.theirs.send(numbered(PING, n))
        await until(lambda: tunnel.received.qsize() == 5)
        assert tunnel.client_got() == [numbered(PING, n) for n in range(5)]
        assert wire[:5] == [(first + n, highest, CLIENT_CALL) for n in range(5)]
        assert tunnel.server.stats.packets_sent == 5 and tunnel.server_call.seq.counters.sent == first + 5
        assert tunnel.server_call.seq.take_ack() == NO_NUMBER  # it went out with the burst: no ack-only packet
        counters = tunnel.server_transport.counters  # the burst counted once, as five packets sent
        assert counters.sent == transport_sent + 5 and counters.send_errors == counters.send_would_block == 0

    run_tunnel(test)


def test_what_the_hot_path_does_not_take_goes_through_the_link_or_is_skipped() -> None:
    async def test(loop: ClockLoop, tunnel: Tunnel) -> None:
        server = tunnel.server
        ipv6 = bytes.fromhex("6000000000083a40") + bytes(32) + bytes(8)
        tunnel.tun.theirs.send(b"\x45" + bytes(10))  # shorter than any IP packet: skipped
        tunnel.tun.theirs.send(b"\x50" + bytes(27))  # neither IPv4 nor IPv6: skipped
        tunnel.tun.theirs.send(ipv6)  # IPV6CP is not open: the link refuses it
        tunnel.tun.theirs.send(PING)
        await until(lambda: not tunnel.received.empty())
        assert tunnel.client_got() == [PING]
        assert server.stats.send_refused == 1 and server.stats.packets_sent == 1
        assert not tunnel.client.send_ip(ipv6)  # the library's send: refused the same way
        assert tunnel.client.stats.send_refused == 1

    run_tunnel(test)


def test_a_lost_negotiation_frame_is_sent_again_by_the_restart_timer() -> None:
    async def body(loop: ClockLoop) -> None:
        results: list[object] = []
        tunnel = Tunnel(on_auth=lambda _s, event: results.append(event))
        lost: list[bytes] = []

        def lose_the_first(source: str, destination: str, gre: bytes) -> bool:
            if lost:
                return True
            lost.append(gre)
            return False

        tunnel.network.filter = lose_the_first
        try:
            tunnel.server.start()
            tunnel.client.start()
            await turns()
            assert lost and tunnel.server.network is None
            await until_in_time(loop, lambda: tunnel.server.network is not None, 10.0)
            assert [type(event).__name__ for event in results] == ["Authenticated"]
            tunnel.tun.theirs.send(PING)
            await until(lambda: not tunnel.received.empty())
        finally:
            tunnel.close()

    run(body)


# -- the GRE window: back-pressure on the TUN reader --------------------------------------------------


def test_a_full_gre_window_pauses_the_tun_reader_and_an_ack_resumes_it() -> None:
    async def test(loop: ClockLoop, tunnel: Tunnel) -> None:
        server, call = tunnel.server, tunnel.server_call
        held: list[tuple[str, str, bytes]] = []

        def hold_acks(source: str, destination: str, gre: bytes) -> bool:
            if source == CLIENT:
                held.append((source, destination, gre))
                return False
            return True

        await advance(loop, 1.0)  # every ack of the negotiation is in
        tunnel.narrow_window(1)
        assert call.seq.unacked == 0
        tunnel.network.filter = hold_acks
        for n in range(5):
            tunnel.tun.theirs.send(numbered(PING, n))
        await turns()
        # one packet fills the window; the reader stops, the other four wait in the kernel's queue
        assert server.stats.packets_sent == 1 and server.stats.tun_pauses == 1
        assert server.stats.send_refused == 0 and call.room_waiter is not None
        await advance(loop, tunnel.client_call.seq.ack_delay)  # the client's ack-only packet: held back
        assert held and server.stats.packets_sent == 1
        tunnel.network.filter = None
        for packet in held:  # the ack arrives: the window opens, the reader resumes at once
            tunnel.network.route(*packet)
        await turns()
        assert server.stats.packets_sent == 2
        for _ in range(4):  # from now on the acks flow, one packet per round trip
            await advance(loop, tunnel.client_call.seq.ack_delay)
        assert tunnel.client_got() == [numbered(PING, n) for n in range(5)]
        assert server.stats.send_refused == 0 and server.stats.tun_pauses >= 2

    run_tunnel(test)


async def three_pings_into_a_window_of_one_never_acked(loop: ClockLoop, tunnel: Tunnel) -> None:
    """The peer's window narrowed to one packet and nothing of the client's reaching the server (no ack
    ever comes back); then three pings from the server's TUN."""
    await advance(loop, 1.0)
    tunnel.narrow_window(1)
    tunnel.network.filter = lambda source, destination, gre: source != CLIENT
    for n in range(3):
        tunnel.tun.theirs.send(numbered(PING, n))
    await turns()


def test_a_peer_that_never_acks_gets_packets_at_the_ack_timeouts_pace() -> None:
    """No ack ever comes back: the paused reader looks again every ROOM_POLL, and the window opens when
    the RFC 2637 section 4.4 ack time-out writes the outstanding packet off."""

    async def test(loop: ClockLoop, tunnel: Tunnel) -> None:
        server, call = tunnel.server, tunnel.server_call
        await three_pings_into_a_window_of_one_never_acked(loop, tunnel)
        assert server.stats.packets_sent == 1
        await advance(loop, aio_session.ROOM_POLL)  # looked again: still no room
        assert server.stats.packets_sent == 1 and server.stats.tun_pauses == 2
        for _ in range(200):
            await advance(loop, aio_session.ROOM_POLL)
            if server.stats.packets_sent == 3:
                break
        assert tunnel.client_got() == [numbered(PING, n) for n in range(3)]
        assert call.seq.counters.ack_timeouts == 2 and server.stats.send_refused == 0

    run_tunnel(test)


def test_without_a_room_waiter_a_full_window_drops_what_it_cannot_send() -> None:
    async def test(loop: ClockLoop, tunnel: Tunnel) -> None:
        server = tunnel.server
        server.notify_room = None  # a session wired without back-pressure (the library's default)
        await three_pings_into_a_window_of_one_never_acked(loop, tunnel)
        assert server.stats.packets_sent == 1 and server.stats.send_refused == 2 and server.stats.tun_pauses == 0

    run_tunnel(test)


# -- errors on the way -----------------------------------------------------------------------------


@pytest.mark.parametrize("mppe", [True, False], ids=["hot-path", "link-path"])
def test_tun_write_errors_are_counted_and_the_session_goes_on(mppe: bool) -> None:
    async def test(loop: ClockLoop, tunnel: Tunnel) -> None:
        tunnel.tun.theirs.close()  # nobody reads the TUN any more: every write fails (EPIPE)
        for n in range(3):
            assert tunnel.client.send_ip(numbered(PONG, n))
        await turns()
        assert tunnel.server.stats.tun_write_errors == 3 and not tunnel.server.closed
        tunnel.server.terminate("test over")
        await until(lambda: tunnel.server.closed)
        assert tunnel.downs and tunnel.tun.closed

    run_tunnel(test, MppePolicy() if mppe else MppePolicy(enabled=False, required=False))


@pytest.mark.parametrize(
    "error", [BlockingIOError(), OSError(errno.ENOBUFS, "No buffer space available")], ids=["eagain", "enobufs"]
)
def test_gre_send_errors_lose_packets_not_the_session(error: OSError) -> None:
    async def test(loop: ClockLoop, tunnel: Tunnel) -> None:
        counters = tunnel.server_transport.counters
        tunnel.server_sock.send_errors += [error] * 3
        for n in range(6):
            tunnel.tun.theirs.send(numbered(PING, n))
        await turns()
        assert tunnel.client_got() == []  # behind a gap of three GRE numbers
        await advance(loop, tunnel.client_call.seq.reorder_timeout)  # written off as lost
        assert tunnel.client_got() == [numbered(PING, n) for n in range(3, 6)]
        lost = counters.send_would_block if isinstance(error, BlockingIOError) else counters.send_errors
        assert lost == 3 and not tunnel.server.closed
        assert tunnel.server.stats.packets_sent == 6  # given to the network; PPP may lose them
        assert tunnel.client.send_ip(PONG)
        await tunnel.tun_gets(1)

    run_tunnel(test, MppePolicy(stateful=False))


def test_a_lost_packet_under_stateful_mppe_asks_the_peer_to_reset_and_the_tunnel_recovers() -> None:
    """RFC 3078 section 8: the receiver that lost a stateful packet sends CCP Reset-Request; the sender
    answers with a flushed packet, and the data flows again."""

    async def test(loop: ClockLoop, tunnel: Tunnel) -> None:
        dropped: list[bytes] = []
        to_client: list[bytes] = []

        def lose_one(source: str, destination: str, gre: bytes) -> bool:
            if source == SERVER:
                to_client.append(gre)
            elif len(gre) > 40 and not dropped:
                dropped.append(gre)
                return False
            return True

        tunnel.network.filter = lose_one
        for n in range(3):
            assert tunnel.client.send_ip(numbered(PONG, n))
        await advance(loop, tunnel.server_call.seq.reorder_timeout)  # the GRE gap is written off
        assert dropped and tunnel.tun.written() == []  # what follows the loss cannot be decrypted
        assert any(b"\x80\xfd\x0e" in gre for gre in to_client)  # CCP Reset-Request
        for n in range(3, 6):
            assert tunnel.client.send_ip(numbered(PONG, n))
        await tunnel.tun_gets(3)
        assert tunnel.tun_packets == [numbered(PONG, n) for n in range(3, 6)]
        assert not tunnel.server.closed

    run_tunnel(test, MppePolicy(stateful=True))


# -- limits and the end of a session ---------------------------------------------------------------


def test_idle_ends_a_session_without_traffic() -> None:
    async def test(loop: ClockLoop, tunnel: Tunnel) -> None:
        for _ in range(3):  # traffic keeps it up
            await advance(loop, 20.0)
            tunnel.tun.theirs.send(PING)
            await turns()
        assert not tunnel.server.closed
        await advance(loop, 30.0)
        await advance(loop, 30.0)
        await until(lambda: tunnel.server.closed)
        assert tunnel.downs == ["idle timeout"] and tunnel.tun.closed

    run_tunnel(test, idle=30.0)


def test_maxconnect_ends_a_session_whatever_its_traffic(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, LOG.name)

    async def test(loop: ClockLoop, tunnel: Tunnel) -> None:
        for _ in range(5):
            await advance(loop, 10.0)
            tunnel.tun.theirs.send(PING)
            await turns()
        assert not tunnel.server.closed
        await advance(loop, 15.0)
        await until(lambda: tunnel.server.closed)
        assert "Connect time expired" in caplog.text

    run_tunnel(test, maxconnect=60.0)


def test_a_tun_that_cannot_be_made_ends_the_session() -> None:
    def no_tun() -> TunDevice:
        raise TunError(errno.EPERM, "cannot create ppp0")

    async def body(loop: ClockLoop) -> None:
        tunnel = Tunnel(make_tun=no_tun)
        try:
            tunnel.server.start()
            tunnel.client.start()
            await until(lambda: tunnel.server.closed)
            assert tunnel.server.tun is None and tunnel.downs
        finally:
            tunnel.close()

    run(body)


def test_close_removes_the_tun_once_and_later_frames_are_ignored() -> None:
    async def test(loop: ClockLoop, tunnel: Tunnel) -> None:
        server = tunnel.server
        server.close("administratively closed")
        server.close("again")
        assert tunnel.downs == ["administratively closed"] and tunnel.tun.closed and server.tun is None
        assert server._fast_decryptor is None
        assert tunnel.client.send_ip(PONG)  # reaches a closed session: dropped
        await turns()
        assert server.stats.packets_received == 0

    run_tunnel(test)


@pytest.mark.parametrize("where", ["frame", "tun", "timer"])
def test_an_internal_error_costs_only_its_session(where: str, caplog: pytest.LogCaptureFixture) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("bug")

    async def test(loop: ClockLoop, tunnel: Tunnel) -> None:
        link = tunnel.server.link
        if where == "frame":
            link.receive_frame = broken  # type: ignore[method-assign]
            tunnel.client.renegotiate()  # an LCP frame: the slow path
        elif where == "tun":
            link.send_data = broken  # type: ignore[method-assign]
            tunnel.tun.theirs.send(bytes.fromhex("6000000000083a40") + bytes(40))  # IPv6: the link's path
        else:
            link.handle_timer = broken  # type: ignore[method-assign]
            tunnel.network.filter = lambda source, destination, gre: False  # no answer ...
            tunnel.server.renegotiate()  # ... to a Configure-Request: the restart timer fires
            await advance(loop, 5.0)
        await until(lambda: tunnel.server.closed)
        assert tunnel.downs == ["internal error"] and "internal error" in caplog.text

    run_tunnel(test)


def test_a_full_library_queue_drops_what_nobody_reads() -> None:
    async def test(loop: ClockLoop, tunnel: Tunnel) -> None:
        queue = tunnel.received
        for n in range(queue.maxsize + 10):
            tunnel.tun.theirs.send(numbered(PING, n))
            if n % 32 == 31:
                await turns()
        await advance(loop, 1.0)
        assert queue.full() and tunnel.client.stats.packets_received == queue.maxsize + 10
        assert queue.get_nowait() == numbered(PING, 0)

    run_tunnel(test)


def test_renegotiation_keeps_the_data_path_on_the_same_gre_call() -> None:
    async def test(loop: ClockLoop, tunnel: Tunnel) -> None:
        lcp = tunnel.client.link.lcp_options
        lcp.config = dataclasses.replace(lcp.config, mru=1300)
        tunnel.client.renegotiate()
        await until(lambda: tunnel.tun.mtus == [1296] and tunnel.server.network is not None)
        tunnel.tun.theirs.send(PING)
        await until(lambda: not tunnel.received.empty())
        assert tunnel.client_got() == [PING]

    run_tunnel(test)


def test_an_mtu_the_device_refuses_after_renegotiation_ends_the_session() -> None:
    async def test(loop: ClockLoop, tunnel: Tunnel) -> None:
        def refuse(mtu: int) -> None:
            raise TunError(errno.EINVAL, f"cannot set MTU {mtu}")

        tunnel.tun.set_mtu = refuse  # type: ignore[method-assign]
        lcp = tunnel.client.link.lcp_options
        lcp.config = dataclasses.replace(lcp.config, mru=1300)
        tunnel.client.renegotiate()
        await until_in_time(loop, lambda: tunnel.server.closed, 10.0)
        assert tunnel.tun.closed and tunnel.downs

    run_tunnel(test)
