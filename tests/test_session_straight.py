"""The receive hot path (:meth:`PppSession._straight_receive`) against the general path, packet for packet.

The straight path does, inline, what three calls did for the common packet: the GRE sequencer's
in-order case (:meth:`GreSequencer.in_order <pypptp.gre.sequencing.GreSequencer.in_order>`), MPPE's
common case (:meth:`MppeDecryptor.decrypt_next <pypptp.ppp.mppe.MppeDecryptor.decrypt_next>`) and the
TUN write; everything else it hands to the call's general path.  Its rules are a second copy of those
cores' common cases, so they are held equal here: two tunnels negotiated identically (the same keys),
one server with the straight path and one without, get the same GRE packets (in order, lost, late,
duplicated, corrupted, with and without acks, with the long PPP prefix, across stateful flag packets,
with time passing for the reorder and ack timers), and after every step the two servers must agree on
everything: what reached the TUN, what they sent (acks, CCP Reset-Requests), the sequencer's whole
state, the decryptor's, and the session's counters.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import struct
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from pypptp.aio import gre as aio_gre
from pypptp.gre.codec import DATA_ACK_HEADER, DATA_HEADER, FLAGS_DATA, FLAGS_DATA_ACK, PPP_PROTOCOL_TYPE
from pypptp.host.mss import mss_for_mtu
from pypptp.ppp.ccp import MppePolicy
from tests.fake_network import ClockLoop, advance, ipv4_header, run, turns
from tests.test_ppp_link import PING
from tests.test_session_data_path import CLIENT, SERVER_CALL, Tunnel, mss_of, numbered, tcp_syn

IP = 0x21
# what the decryptor's state is made of, apart from its RC4 and SHA-1 objects (compared by their effects)
DECRYPTOR_STATE = ("_ahead", "_heads", "_key", "_last", "_length", "_next", "_stateful", "dropped", "key_changes")


def ip_packet(n: int, size: int) -> bytes:
    """An IPv4 packet of about ``size`` bytes, numbered ``n``; a TCP SYN now and then (clamped)."""
    if size % 97 == 0:
        return tcp_syn("192.168.0.234", "192.168.0.1", 1460)
    return numbered(PING + bytes(max(0, size - len(PING))), n)


@dataclasses.dataclass
class Peer:
    """The client's side, writing GRE for one server by hand: its MPPE encryptor and GRE numbering."""

    tunnel: Tunnel
    seq: int
    ack: int = -1
    sent: int = 0
    held: collections.deque[bytes] = dataclasses.field(default_factory=collections.deque)
    last: bytes = b""
    fallbacks: int = 0

    def frame(
        self, size: int, *, long_prefix: bool = False, corrupt: int = -1, header: tuple[int, int] | None = None
    ) -> bytes:
        """The next MPPE packet in a PPP frame; ``corrupt``: a ciphertext byte flipped (mostly the inner
        protocol field's); ``header``: (bits, count) written over its MPPE header."""
        encryptor = self.tunnel.client.link.encryptor
        assert encryptor is not None
        information = bytearray(encryptor.encrypt(IP, ip_packet(self.sent, size)))
        self.sent += 1
        if 0 <= corrupt < 1000:  # the inner protocol field or the IP header's first byte
            information[2 + corrupt % 3] ^= corrupt // 3 % 255 + 1
        elif corrupt >= 1000:  # anywhere
            information[2 + corrupt % (len(information) - 2)] ^= 0x5A
        if header is not None:
            bits, count = header
            information[:2] = bytes((bits | count >> 8 & 0x0F, count & 0xFF))
        return (b"\xff\x03\x00\xfd" if long_prefix else b"\xfd") + bytes(information)

    def gre(self, frame: bytes, ack_choice: int) -> bytes:
        """Next Sequence Number; the Acknowledgment Number: none, the server's last packet, the same as
        before, or a bogus one."""
        server_sequencer = self.tunnel.server_call.seq
        if ack_choice % 4 == 0:
            header = DATA_HEADER.pack(FLAGS_DATA, PPP_PROTOCOL_TYPE, len(frame), SERVER_CALL, self.seq)
        else:
            if ack_choice % 4 == 1:
                self.ack = (server_sequencer.next_seq - 1) & 0xFFFFFFFF
            elif ack_choice % 4 == 3:
                self.ack = 0 if ack_choice % 8 == 7 else ack_choice * 7919 & 0xFFFFFFFF
            ack = self.ack & 0xFFFFFFFF
            header = DATA_ACK_HEADER.pack(FLAGS_DATA_ACK, PPP_PROTOCOL_TYPE, len(frame), SERVER_CALL, self.seq, ack)
        self.seq = (self.seq + 1) & 0xFFFFFFFF
        return header + frame

    queueing: bool = False
    """While set, packets wait in the socket and one drain takes them all (the hot path's runs)."""

    def deliver(self, gre: bytes) -> None:
        self.last = gre
        self.tunnel.server_sock.receive_gre(CLIENT, gre)
        if not self.queueing:
            self.tunnel.server_transport.drain()

    def stray(self, parameter: int) -> None:
        """Something else on the socket, between this call's packets: another call's GRE, a control
        packet of this call, an IPv4 header with options, GRE with an odd header."""
        sock, choice = self.tunnel.server_sock, parameter % 4
        if choice == 0:  # a call that does not exist
            sock.receive_gre(CLIENT, DATA_HEADER.pack(FLAGS_DATA, PPP_PROTOCOL_TYPE, 4, SERVER_CALL ^ 1, 7) + b"abcd")
        elif choice == 1:  # an LCP Echo-Request of this call (not MPPE: the general path)
            echo = b"\xff\x03\xc0\x21\x09\x07\x00\x08" + bytes(4)
            self.deliver(self.gre(echo, parameter))
        elif choice == 2:  # this call's next packet behind an IPv4 header with options (the general parser)
            gre = self.gre(self.frame(60), parameter)
            options = bytes((0x46,)) + ipv4_header(CLIENT, sock.address, len(gre) + 4)[1:] + b"\x01\x01\x01\x00"
            sock.receive(options + gre)
        else:  # the sequence-only shape with a key but no S: malformed for PPTP
            sock.receive_gre(CLIENT, struct.pack(">HHHH", 0x2001, PPP_PROTOCOL_TYPE, 0, SERVER_CALL))
        if not self.queueing:
            self.tunnel.server_transport.drain()

    def drain(self) -> None:
        self.queueing = False
        self.tunnel.server_transport.drain()


def state(tunnel: Tunnel, seen: dict[str, list[bytes]]) -> dict[str, Any]:
    """Everything the two paths must agree on (what was written and sent is collected into ``seen``)."""
    sequencer = tunnel.server_call.seq
    decryptor = tunnel.server.link.decryptor
    seen["tun"] += tunnel.tun.written()
    seen["sent"] = [packet for packet, _ in tunnel.server_sock.sent]
    ours = {
        name: list(value) if isinstance(value, collections.deque) else value for name, value in vars(sequencer).items()
    }
    del ours["counters"]
    return {
        "tun": list(seen["tun"]),
        "sent": list(seen["sent"]),
        "sequencer": ours,
        "gre counters": dataclasses.asdict(sequencer.counters),
        "decryptor": {name: getattr(decryptor, name) for name in DECRYPTOR_STATE} if decryptor else None,
        "stats": dataclasses.asdict(tunnel.server.stats),
        "closed": tunnel.server.closed,
        "tun paused": (tunnel.server._tun_paused, tunnel.server_call.room_waiter is not None),
    }


async def twin_tunnels(stateful: bool) -> tuple[Tunnel, Tunnel, Peer, Peer]:
    """(the straight one, the general one, and a peer each), negotiated identically; the network cut so
    that the clients never react (the test writes their GRE)."""
    straight, general = Tunnel(MppePolicy(stateful=stateful)), Tunnel(MppePolicy(stateful=stateful))
    general.server._straight_receive = None  # type: ignore[assignment, method-assign]  # never installed
    await asyncio.gather(straight.start(), general.start())  # side by side: the same times everywhere
    for tunnel in (straight, general):
        tunnel.network.filter = lambda source, destination, gre: False
    keys = [tunnel.server.link.decryptor._key for tunnel in (straight, general)]  # type: ignore[union-attr]
    assert keys[0] == keys[1], "the twins must negotiate the same keys"
    assert straight.server_call.straight is not None and general.server_call.straight is None
    peers = []
    for tunnel in (straight, general):
        peer = Peer(tunnel, tunnel.server_call.seq._expected)
        general_path = tunnel.server._call_received

        def counted(*args: Any, peer: Peer = peer, general_path: Any = general_path) -> None:
            peer.fallbacks += 1
            general_path(*args)

        tunnel.server._call_received = counted  # type: ignore[method-assign, assignment]
        peers.append(peer)
    return straight, general, peers[0], peers[1]


def close(*tunnels: Tunnel) -> None:
    for tunnel in tunnels:
        tunnel.close()


@pytest.mark.parametrize("stateful", [False, True], ids=["stateless", "stateful"])
def test_the_straight_path_takes_every_common_packet_to_the_tun(stateful: bool) -> None:
    """300 packets in order (past a stateful flag packet, count 255): every one reaches the TUN intact,
    and only the flag packet leaves the straight path (for the general one)."""

    async def body(loop: ClockLoop) -> None:
        straight, general, peer, _ = await twin_tunnels(stateful)
        try:
            delivered_before = straight.server_call.seq.counters.delivered  # (the negotiation's frames)
            written = []
            for n in range(300):
                peer.deliver(peer.gre(peer.frame(100 + n), 1))
                written += straight.tun.written()
            assert len(written) == 300
            for n, packet in enumerate(written):
                sent = ip_packet(n, 100 + n)
                if sent[9] == 6:  # the SYN: its MSS clamped to the tunnel's
                    assert mss_of(packet) == mss_for_mtu(straight.server.network.mtu) < mss_of(sent)  # type: ignore[union-attr]
                    assert packet[:36] == sent[:36]
                else:
                    assert packet == sent
            assert peer.fallbacks == (1 if stateful else 0)
            assert straight.server.stats.packets_received == 300
            assert straight.server_call.seq.counters.delivered - delivered_before == 300
        finally:
            close(straight, general)

    run(body)


@settings(max_examples=250, deadline=None)
@example(
    preroll=255, steps=[(12, 0)], stateful=True, small_window=False
)  # a flag packet without A (an RFC 3078 sender)
@example(
    preroll=250,
    steps=[(16, 0), *[(0, 1)] * 9, (18, 1), (0, 2), (18, 2), (0, 0), (17, 0)],
    stateful=True,
    small_window=False,
)
@example(
    preroll=5,
    steps=[(16, 0), (0, 1), (3, 0), (0, 1), (7, 97), (0, 2), (18, 0), (0, 1), (17, 0)],
    stateful=False,
    small_window=False,
)
@example(
    preroll=3, steps=[(7, 97), (0, 0)], stateful=False, small_window=False
)  # decrypted to 00 00: not a protocol MPPE carries
@example(preroll=3, steps=[(7, 97), (15, 0)], stateful=False, small_window=False)  # the key computed ahead first
@example(preroll=3, steps=[(11, 1)], stateful=True, small_window=False)  # an MPPE header and one byte
@example(preroll=3, steps=[(14, 0), (0, 1), (15, 0)], stateful=True, small_window=False)  # A after a loss
@example(preroll=0, steps=[(13, 80), (0, 1), (0, 1)], stateful=False, small_window=False)  # a room waiter woken
@example(preroll=20, steps=[(9, 50)], stateful=True, small_window=False)  # an ack due at once: the timer follows
@example(preroll=3, steps=[(7, 97), (0, 0)], stateful=True, small_window=False)
@example(preroll=3, steps=[(0, 1), (0, 2), (16, 0), (0, 1), (0, 1), (17, 0)], stateful=True, small_window=True)
@given(
    preroll=st.one_of(st.integers(0, 40), st.integers(225, 258)),  # a few, or up to a stateful flag packet
    steps=st.lists(st.tuples(st.integers(0, 18), st.integers(0, 1500)), max_size=50),
    stateful=st.booleans(),
    small_window=st.booleans(),
)
def test_the_straight_path_agrees_with_the_general_path(
    preroll: int, steps: list[tuple[int, int]], stateful: bool, small_window: bool
) -> None:
    async def body(loop: ClockLoop) -> None:
        straight, general, *peers = await twin_tunnels(stateful)
        if small_window:  # as announced by pptp-linux (3) and echoed: an ack is due at once, every packet
            for tunnel in (straight, general):
                tunnel.server_call.seq._ack_now_threshold = 1
        seen: list[dict[str, list[bytes]]] = [{"tun": [], "sent": []}, {"tun": [], "sent": []}]
        try:
            for _ in range(preroll):
                for peer in peers:
                    peer.deliver(peer.gre(peer.frame(60), 2))
                assert state(straight, seen[0]) == state(general, seen[1])
            assert state(straight, seen[0]) == state(general, seen[1])
            for action, parameter in steps:
                if action == 9:  # time passes: reorder time-outs, ack-only packets
                    await advance(loop, parameter / 1000)
                elif action == 13:  # the servers send (their window fills: a room waiter, woken by an ack)
                    for tunnel in (straight, general):
                        for n in range(parameter % 90):
                            with contextlib.suppress(BlockingIOError):  # (a paused reader's queue is full)
                                tunnel.tun.theirs.send(numbered(PING, n))
                    await turns()
                general_decryptor = general.server.link.decryptor
                assert general_decryptor is not None
                for peer in peers:
                    size = 28 + parameter % 1400
                    if action <= 2:  # the next packet, in order
                        peer.deliver(peer.gre(peer.frame(size), parameter))
                    elif action == 3:  # lost
                        peer.gre(peer.frame(size), parameter)
                    elif action == 4:  # delayed: it comes later (action 5)
                        peer.held.append(peer.gre(peer.frame(size), parameter))
                    elif action == 5 and peer.held:
                        peer.deliver(peer.held.popleft())
                    elif action == 6 and peer.last:  # again
                        peer.deliver(peer.last)
                    elif action == 7:  # RC4 has no integrity: a flipped ciphertext byte goes unnoticed or not
                        peer.deliver(peer.gre(peer.frame(size, corrupt=parameter), parameter))
                    elif action == 8:  # address, control and the 2-byte protocol field
                        peer.deliver(peer.gre(peer.frame(size, long_prefix=True), parameter))
                    elif action == 10:  # a Sequence Number far ahead (a forged or confused peer)
                        peer.seq = (peer.seq + 400 + parameter) & 0xFFFFFFFF
                        peer.deliver(peer.gre(peer.frame(size), parameter))
                    elif action == 11:  # cut short: the MPPE header and 0 to 2 bytes
                        peer.deliver(peer.gre(peer.frame(size)[: 3 + parameter % 3], parameter))
                    elif action == 12:  # A cleared (stateful: an RFC sender's flag packet; stateless: dropped)
                        frame = bytearray(peer.frame(size))
                        frame[1] &= ~0x80
                        peer.deliver(peer.gre(bytes(frame), parameter))
                    elif action == 14:  # an MPPE packet lost before GRE (the Sequence Numbers run on)
                        peer.frame(size)
                    elif action == 16:  # from here on packets wait in the socket, for one drain (action 17)
                        peer.queueing = True
                    elif action == 17:
                        peer.drain()
                    elif action == 18:  # something else between this call's packets
                        peer.stray(parameter)
                    elif action == 15:  # a forged header, A and D, the count after the receiver's last one
                        count = general_decryptor._last + 1 + parameter % 2
                        peer.deliver(peer.gre(peer.frame(size, header=(0x90, count & 0xFFF)), parameter))
                assert state(straight, seen[0]) == state(general, seen[1]), (action, parameter)
            for peer in peers:
                peer.drain()
            assert state(straight, seen[0]) == state(general, seen[1])
            assert peers[1].fallbacks == 0  # (the general tunnel never enters the straight path)
        finally:
            close(straight, general)

    run(body)


def test_a_tun_write_error_on_the_straight_path_is_counted_and_the_session_goes_on() -> None:
    async def body(loop: ClockLoop) -> None:
        straight, general, peer, _ = await twin_tunnels(False)
        try:
            straight.tun.ours.shutdown(2)  # every write fails
            peer.deliver(peer.gre(peer.frame(100), 1))
            assert straight.server.stats.tun_write_errors == 1 and not straight.server.closed
            assert peer.fallbacks == 0
        finally:
            close(straight, general)

    run(body)


@pytest.mark.parametrize("stateful", [False, True], ids=["stateless", "stateful"])
def test_one_drain_takes_a_run_in_one_call_and_stops_at_its_budget(stateful: bool) -> None:
    """A run of packets waiting on the socket goes through the hot path in one call, which reads on by
    itself, and no further than the demultiplexer's budget per wakeup; the rest comes with the next."""

    async def body(loop: ClockLoop) -> None:
        straight, general, peer, _ = await twin_tunnels(stateful)
        try:
            calls = []
            hot_path = straight.server_call.straight
            assert hot_path is not None

            def counted(*args: Any) -> tuple[int, int]:
                calls.append(args[6])  # the budget it was given
                return hot_path(*args)

            straight.server_call.straight = counted
            budget = aio_gre.MAX_PACKETS_PER_WAKEUP
            counted_before = straight.server_transport.counters.received
            peer.queueing = True
            for n in range(budget + 10):
                peer.deliver(peer.gre(peer.frame(100 + n), 1))
            straight.server_transport.drain()
            assert len(straight.tun.written()) == budget and calls == [budget - 1]
            straight.server_transport.drain()
            assert len(straight.tun.written()) == 10 and len(calls) == 2
            assert straight.server.stats.packets_received == budget + 10
            assert straight.server_transport.counters.received - counted_before == budget + 10
        finally:
            close(straight, general)

    run(body)


@pytest.mark.parametrize("hot_path", [True, False], ids=["straight", "general"])
def test_a_stateful_packet_that_decrypts_to_garbage_asks_the_peer_for_a_reset(hot_path: bool) -> None:
    """RC4 has no integrity: a stateful packet in step whose inner protocol field decrypts to 00 00 is a
    loss as far as MPPE can tell (RFC 3078 section 8.2): dropped, and a CCP Reset-Request goes out, on
    either receive path."""

    async def body(loop: ClockLoop) -> None:
        straight, general, *peers = await twin_tunnels(True)
        tunnel, peer = (straight, peers[0]) if hot_path else (general, peers[1])
        try:
            for n in range(3):
                peer.deliver(peer.gre(peer.frame(100 + n), 1))
            sent_before = len(tunnel.server_sock.sent)
            peer.deliver(peer.gre(peer.frame(100, corrupt=97), 1))  # the protocol field's 00 21 becomes 00 00
            sent = [packet for packet, _ in tunnel.server_sock.sent[sent_before:]]
            assert any(b"\x80\xfd\x0e" in packet for packet in sent), sent  # CCP (80 FD) Reset-Request (14)
            assert tunnel.server.link.decryptor is not None
            assert tunnel.server.link.decryptor.dropped["bad protocol"] == 1
        finally:
            close(straight, general)

    run(body)
