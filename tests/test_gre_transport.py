"""The GRE transport and a call's data path (pypptp.aio.gre) without root: a fake raw socket, a clock
the test moves (tests/fake_network.py).

GRE headers are built and read here by hand from RFC 2637 section 4.1, not with pypptp's codec, so
the transport's own fast-path parsing and header writing are checked against the RFC's layout.
"""

from __future__ import annotations

import errno
import socket
import struct

import pytest

from pypptp.aio import gre as aio_gre
from pypptp.aio.gre import GreCall, GreTransport, set_receive_buffer
from tests.fake_network import ClockLoop, FakeNetwork, FakeRawSocket, advance, ipv4_header, run, turns, until

SERVER, CLIENT, STRANGER = "198.18.0.1", "198.18.0.2", "198.18.0.66"
OUR_CALL, PEER_CALL = 0x1001, 0x2002


def gre(call_id: int, payload: bytes = b"", seq: int | None = None, ack: int | None = None) -> bytes:
    """RFC 2637 section 4.1: C R K S s Recur A Flags Ver = 0 0 1 S 0 000 A 0000 001, protocol 0x880B,
    Key = payload length and Call ID, then the Sequence and Acknowledgment Numbers that are present."""
    flags = 0x2001 | (0x1000 if seq is not None else 0) | (0x0080 if ack is not None else 0)
    header = struct.pack(">HHHH", flags, 0x880B, len(payload), call_id)
    if seq is not None:
        header += struct.pack(">I", seq)
    if ack is not None:
        header += struct.pack(">I", ack)
    return header + payload


def read_gre(packet: bytes) -> tuple[int, int | None, int | None, bytes]:
    """(Call ID, Sequence Number or None, Acknowledgment Number or None, payload) of a GRE packet we sent."""
    flags, protocol, length, call_id = struct.unpack_from(">HHHH", packet)
    assert flags & ~0x1080 == 0x2001 and protocol == 0x880B, packet[:8].hex()
    offset, seq, ack = 8, None, None
    if flags & 0x1000:
        (seq,) = struct.unpack_from(">I", packet, offset)
        offset += 4
    if flags & 0x0080:
        (ack,) = struct.unpack_from(">I", packet, offset)
        offset += 4
    assert len(packet) == offset + length
    return call_id, seq, ack, packet[offset:]


class Endpoint:
    """A transport on a fake socket with one call to the peer, recording what the call delivers."""

    def __init__(
        self,
        sock: FakeRawSocket,
        peer: str,
        call_id: int,
        peer_call_id: int,
        peer_window: int = 64,
        our_window: int = 64,
    ) -> None:
        self.sock = sock
        self.transport = GreTransport()
        self.transport.open(sock)  # type: ignore[arg-type]
        self.delivered: list[bytes] = []
        self.call = GreCall(
            self.transport,
            peer,
            call_id,
            peer_call_id,
            lambda p: self.delivered.append(bytes(p)),
            peer_window=peer_window,
            our_window=our_window,
        )

    def close(self) -> None:
        self.call.close()
        self.transport.close()


def server_side(peer_window: int = 64, our_window: int = 64) -> Endpoint:
    return Endpoint(FakeRawSocket(SERVER), CLIENT, OUR_CALL, PEER_CALL, peer_window, our_window)


# -- receiving --------------------------------------------------------------------------------------


def test_data_packets_of_every_shape_reach_their_call_in_order() -> None:
    async def body(loop: ClockLoop) -> None:
        end = server_side()
        sock = end.sock
        try:
            assert end.call.send(b"out-0") and end.call.send(b"out-1")  # something for the peer to ack
            sock.receive_gre(CLIENT, gre(OUR_CALL, b"first", seq=7))  # data only: the first number is taken
            sock.receive_gre(CLIENT, gre(OUR_CALL, b"second", seq=8))  # data only, in order: the fast path
            sock.receive_gre(CLIENT, gre(OUR_CALL, b"third", seq=9, ack=0))  # data and ack
            sock.receive_gre(CLIENT, gre(OUR_CALL, ack=1))  # ack only: nothing to deliver
            packet = gre(OUR_CALL, b"fourth", seq=10)
            header = bytearray(ipv4_header(CLIENT, SERVER, 4 + len(packet)))
            header[0] = 0x46  # an IPv4 header with 4 bytes of options (IHL 6): the slow path
            sock.receive(bytes(header) + b"\x01\x01\x01\x00" + packet)
            await until(lambda: len(end.delivered) == 4)
            assert end.delivered == [b"first", b"second", b"third", b"fourth"]
            counters, seq = end.transport.counters, end.call.seq
            assert counters.received == 5 and counters.malformed == 0 and counters.unknown_call == 0
            assert seq.unacked == 0 and seq.counters.acks_received == 2
            assert seq.counters.delivered == 4
        finally:
            end.close()

    run(body)


def test_duplicates_and_reordering_are_sorted_out_and_a_gap_is_written_off_by_the_timer() -> None:
    async def body(loop: ClockLoop) -> None:
        end = server_side()
        try:
            # 2 waits for 1 (its duplicate is dropped), 1 fills the gap (and is too old the second time),
            # 3 goes missing
            for seq in (0, 2, 2, 1, 1, 4):
                end.sock.receive_gre(CLIENT, gre(OUR_CALL, b"%d" % seq, seq=seq))
            await turns()
            assert end.delivered == [b"0", b"1", b"2"]
            counters = end.call.seq.counters
            assert counters.duplicates == 1 and counters.stale == 1 and counters.reordered == 1
            await advance(loop, end.call.seq.reorder_timeout)  # 3 never comes: 4 goes up after the time-out
            assert end.delivered == [b"0", b"1", b"2", b"4"] and counters.lost == 1
        finally:
            end.close()

    run(body)


def test_gre_for_another_call_or_from_another_address_is_dropped_and_counted() -> None:
    async def body(loop: ClockLoop) -> None:
        end = server_side()
        try:
            end.sock.receive_gre(CLIENT, gre(OUR_CALL + 1, b"other call", seq=0))
            end.sock.receive_gre(STRANGER, gre(OUR_CALL, b"spoofed", seq=0))  # right Call ID, wrong peer
            end.sock.receive_gre(CLIENT, b"\x30\x01\x88\x0b\x00")  # too short for a header
            end.sock.receive_gre(CLIENT, gre(OUR_CALL, b"x", seq=0)[:-1])  # payload cut short
            end.sock.receive_gre(CLIENT, b"\x20\x01\x08\x00" + gre(OUR_CALL, seq=0)[4:])  # not PPP
            version_0 = bytearray(gre(OUR_CALL, bytes(20), seq=1))
            version_0[1] &= 0xF8  # plain GRE (RFC 2784), not PPTP's enhanced GRE: long enough for the fast path
            end.sock.receive_gre(CLIENT, bytes(version_0))
            lying = gre(OUR_CALL, bytes(100), seq=1, ack=0)[:36]  # a Payload Length past the packet's end
            end.sock.receive_gre(CLIENT, lying)
            await turns()
            counters = end.transport.counters
            assert end.delivered == []
            assert counters.unknown_call == 2 and counters.malformed == 5 and counters.received == 7
        finally:
            end.close()

    run(body)


def test_gre_that_overtakes_the_call_is_kept_briefly_and_handed_over_once_it_exists() -> None:
    """A server starts LCP as it sends its Outgoing-Call-Reply: its first Configure-Request may reach a
    client's transport before the client has registered the call."""

    async def body(loop: ClockLoop) -> None:
        sock = FakeRawSocket(CLIENT)
        transport = GreTransport()
        transport.open(sock)  # type: ignore[arg-type]
        sock.receive_gre(SERVER, gre(PEER_CALL, b"early-lcp", seq=0))
        sock.receive_gre(SERVER, gre(PEER_CALL + 1, b"stale", seq=0))
        await turns()
        assert transport.counters.unknown_call == 2
        delivered: list[bytes] = []
        call = GreCall(transport, SERVER, PEER_CALL, OUR_CALL, lambda p: delivered.append(bytes(p)))
        assert delivered == []  # not during construction: once its owner has wired it up
        await turns()
        assert delivered == [b"early-lcp"]
        sock.receive_gre(SERVER, gre(PEER_CALL, b"next", seq=1))
        await turns()
        assert delivered == [b"early-lcp", b"next"]
        # what is kept is bounded in age ...
        await advance(loop, aio_gre.EARLY_SECONDS + 0.1)
        late: list[bytes] = []
        other = GreCall(transport, SERVER, PEER_CALL + 1, OUR_CALL, lambda p: late.append(bytes(p)))
        await turns()
        assert late == []
        other.close()
        # ... and in number
        for n in range(100):
            sock.receive_gre(SERVER, gre(0x3000 + n, b"x", seq=0))
        await turns()
        assert transport.counters.unknown_call == 102
        kept: list[bytes] = []
        newest = GreCall(transport, SERVER, 0x3000 + 99, OUR_CALL, lambda p: kept.append(bytes(p)))
        oldest = GreCall(transport, SERVER, 0x3000, OUR_CALL, lambda p: kept.append(b"oldest"))
        await turns()
        assert kept == [b"x"]  # the newest is still there, the oldest was pushed out
        for each in (call, newest, oldest):
            each.close()
        transport.close()

    run(body)


def test_a_wakeup_reads_a_bounded_number_of_packets_and_the_loop_comes_back_for_the_rest() -> None:
    async def body(loop: ClockLoop) -> None:
        end = server_side(our_window=65535)
        try:
            total = aio_gre.MAX_PACKETS_PER_WAKEUP + 44
            for seq in range(total):
                end.sock.receive_gre(CLIENT, gre(OUR_CALL, seq.to_bytes(4, "big"), seq=seq))
            end.transport.drain()  # one wakeup, by hand
            assert len(end.delivered) == aio_gre.MAX_PACKETS_PER_WAKEUP
            await turns()  # the socket is still readable: the loop drains the rest
            assert [int.from_bytes(p, "big") for p in end.delivered] == list(range(total))
        finally:
            end.close()

    run(body)


def test_receive_errors_other_than_eagain_are_counted_not_fatal() -> None:
    async def body(loop: ClockLoop) -> None:
        end = server_side()
        try:
            end.sock.receive_errors += [OSError(errno.ENOPROTOOPT, "Protocol not available"), ConnectionRefusedError()]
            end.sock.receive_gre(CLIENT, gre(OUR_CALL, b"after the errors", seq=0))
            await turns()
            assert end.transport.counters.receive_errors == 2 and end.delivered == [b"after the errors"]
            end.sock.receive_errors.append(OSError(errno.EBADF, "Bad file descriptor"))
            end.sock.receive_gre(CLIENT, gre(OUR_CALL, b"later", seq=1))
            end.transport.drain()  # EBADF ends the wakeup at once
            assert end.transport.counters.receive_errors == 3 and end.delivered == [b"after the errors"]
            end.transport.drain()
            assert end.delivered == [b"after the errors", b"later"]
        finally:
            end.close()

    run(body)


# -- sending ------------------------------------------------------------------------------------------


def test_sends_carry_the_peers_call_id_our_numbers_and_the_ack_we_owe() -> None:
    async def body(loop: ClockLoop) -> None:
        end = server_side()
        try:
            assert end.call.send(b"a") and end.call.send(memoryview(b"bb"))
            end.sock.receive_gre(CLIENT, gre(OUR_CALL, b"in", seq=41))
            await turns()
            assert end.call.send(b"ccc")  # the ack rides on the next data packet
            sent = [(read_gre(packet), address) for packet, address in end.sock.sent]
            assert sent == [
                ((PEER_CALL, 0, None, b"a"), (CLIENT, 0)),
                ((PEER_CALL, 1, None, b"bb"), (CLIENT, 0)),
                ((PEER_CALL, 2, 41, b"ccc"), (CLIENT, 0)),
            ]
            assert end.transport.counters.sent == 3
            await advance(loop, 1.0)
            assert len(end.sock.sent) == 3  # that ack was the last one owed: no ack-only packet follows
        finally:
            end.close()

    run(body)


def test_an_ack_only_packet_goes_when_no_data_carries_the_ack_in_time() -> None:
    async def body(loop: ClockLoop) -> None:
        end = server_side()
        try:
            end.sock.receive_gre(CLIENT, gre(OUR_CALL, b"in", seq=5))
            await turns()
            assert end.sock.sent == []
            await advance(loop, end.call.seq.ack_delay / 2)
            assert end.sock.sent == []
            await advance(loop, end.call.seq.ack_delay / 2)
            [(packet, address)] = end.sock.sent
            assert read_gre(packet) == (PEER_CALL, None, 5, b"") and address == (CLIENT, 0)
            assert end.call.seq.counters.ack_only_sent == 1
            # a quarter of our window (at most 16) unacknowledged: the ack goes at once
            for seq in range(6, 6 + 16):
                end.sock.receive_gre(CLIENT, gre(OUR_CALL, b"x", seq=seq))
            await turns()
            assert read_gre(end.sock.sent[-1][0]) == (PEER_CALL, None, 21, b"")
        finally:
            end.close()

    run(body)


def test_a_full_window_refuses_sends_until_an_ack_wakes_the_waiter() -> None:
    async def body(loop: ClockLoop) -> None:
        end = server_side(peer_window=4)  # RFC 2637 section 4.2.1: we start at half of it
        call = end.call
        woken: list[float] = []
        try:
            assert call.seq.window == 2
            assert call.send(b"0") and call.send(b"1")
            assert not call.send(b"2") and call.seq.counters.window_full == 1
            assert len(end.sock.sent) == 2
            call.notify_room(lambda: woken.append(loop.time()))
            end.sock.receive_gre(CLIENT, gre(OUR_CALL, ack=0))  # ack-only: the slow path
            await turns()
            assert woken == [loop.time()] and call.room_waiter is None
            assert call.send(b"2") and not call.send(b"3")
            call.notify_room(lambda: woken.append(-1.0))
            end.sock.receive_gre(CLIENT, gre(OUR_CALL, b"data", seq=0, ack=2))  # piggy-backed: the fast path
            await turns()
            assert woken[-1] == -1.0 and call.room_waiter is None
        finally:
            end.close()

    run(body)


def test_a_peer_that_never_acks_opens_the_window_again_after_the_ack_timeout() -> None:
    """RFC 2637 section 4.4: the outstanding packets are written off and the window halves."""

    async def body(loop: ClockLoop) -> None:
        end = server_side(peer_window=8)
        call = end.call
        try:
            while call.send(b"x"):
                pass
            assert call.seq.unacked == 4
            await advance(loop, call.seq.ack_timeout / 2)
            assert not call.send(b"still full")
            await advance(loop, call.seq.ack_timeout)
            assert call.send(b"after the time-out")
            assert call.seq.counters.ack_timeouts == 1 and call.seq.window == 2
        finally:
            end.close()

    run(body)


def test_send_in_place_writes_the_header_in_front_of_the_frame() -> None:
    async def body(loop: ClockLoop) -> None:
        end = server_side()
        try:
            buffer = bytearray(64)
            buffer[16:21] = b"frame"
            assert end.call.seq.can_send(loop.time())
            end.call.send_in_place(buffer, memoryview(buffer), 16, 21, loop.time())
            assert read_gre(end.sock.sent[0][0]) == (PEER_CALL, 0, None, b"frame")
            end.sock.receive_gre(CLIENT, gre(OUR_CALL, b"in", seq=3))
            await turns()
            end.call.send_in_place(buffer, memoryview(buffer), 16, 21, loop.time())
            assert read_gre(end.sock.sent[1][0]) == (PEER_CALL, 1, 3, b"frame")
        finally:
            end.close()

    run(body)


@pytest.mark.parametrize(
    ("error", "counter"),
    [(BlockingIOError(), "send_would_block"), (OSError(errno.ENOBUFS, "No buffer space"), "send_errors")],
    ids=["would-block", "enobufs"],
)
def test_send_errors_are_counted_and_the_call_goes_on(error: OSError, counter: str) -> None:
    async def body(loop: ClockLoop) -> None:
        end = server_side()
        try:
            end.sock.send_errors += [error, error]
            assert end.call.send(b"lost")  # the frame was given to the network: dropping is legal for PPP
            buffer = bytearray(32)
            end.call.send_in_place(buffer, memoryview(buffer), 16, 20, loop.time())
            assert getattr(end.transport.counters, counter) == 2 and end.transport.counters.sent == 0
            assert end.call.send(b"kept")
            assert [read_gre(p)[1:] for p, _ in end.sock.sent] == [(2, None, b"kept")]
            assert end.transport.counters.sent == 1
            end.sock.send_errors.append(error)  # and an ack-only packet's send (the transport's sendto)
            end.sock.receive_gre(CLIENT, gre(OUR_CALL, b"in", seq=0))
            await turns()
            await advance(loop, 1.0)
            assert getattr(end.transport.counters, counter) == 3 and len(end.sock.sent) == 1
        finally:
            end.close()

    run(body)


def test_a_closed_transport_sends_nothing_and_counts_it() -> None:
    async def body(loop: ClockLoop) -> None:
        end = server_side()
        end.sock.receive_gre(CLIENT, gre(OUR_CALL, b"in", seq=0))  # an ack is owed
        await turns()
        end.transport.close()
        assert end.sock.closed
        await advance(loop, 1.0)  # the ack-only timer fires on a closed transport: counted, harmless
        assert end.transport.counters.send_errors == 1
        assert end.call.send(b"x")  # the call's socket is gone: counted as a send error
        assert end.transport.counters.send_errors == 2 and end.sock.sent == []
        end.transport.drain()  # nothing to read from
        end.call.close()
        end.transport.close()  # twice is harmless

    run(body)


def test_a_call_made_before_the_transport_is_open_cannot_send() -> None:
    async def body(loop: ClockLoop) -> None:
        transport = GreTransport()
        call = GreCall(transport, CLIENT, OUR_CALL, PEER_CALL, lambda p: None)
        assert call.send(b"x") and transport.counters.send_errors == 1
        with pytest.raises(OSError) as raised:
            GreTransport.closed_sendto(memoryview(b""), (CLIENT, 0))
        assert raised.value.errno == errno.EBADF
        call.close()

    run(body)


def test_a_closed_call_is_forgotten() -> None:
    async def body(loop: ClockLoop) -> None:
        end = server_side()
        end.sock.receive_gre(CLIENT, gre(OUR_CALL, b"in", seq=0))
        await turns()
        end.call.notify_room(lambda: None)
        end.call.close()
        assert end.transport.calls == {} and end.call.room_waiter is None
        await advance(loop, 1.0)
        assert end.sock.sent == []  # its ack timer went with it
        end.sock.receive_gre(CLIENT, gre(OUR_CALL, b"after", seq=1))
        await turns()
        assert end.delivered == [b"in"] and end.transport.counters.unknown_call == 1
        end.transport.close()

    run(body)


# -- opening -----------------------------------------------------------------------------------------


def test_open_sets_df_off_a_large_buffer_and_the_local_address() -> None:
    async def body(loop: ClockLoop) -> None:
        sock = FakeRawSocket(SERVER)
        transport = GreTransport(local_ip=SERVER)
        transport.open(sock)  # type: ignore[arg-type]
        assert (socket.IPPROTO_IP, aio_gre.IP_MTU_DISCOVER, aio_gre.IP_PMTUDISC_DONT) in sock.options
        assert (socket.SOL_SOCKET, aio_gre.SO_RCVBUFFORCE, aio_gre.SOCKET_BUFFER_BYTES) in sock.options
        assert sock.bound == (SERVER, 0)
        transport.unwatch()  # the caller drives drain() from now on
        delivered: list[bytes] = []
        call = GreCall(transport, CLIENT, OUR_CALL, PEER_CALL, lambda p: delivered.append(bytes(p)))
        sock.receive_gre(CLIENT, gre(OUR_CALL, b"by hand", seq=0))
        await turns()
        assert delivered == []
        transport.drain()
        assert delivered == [b"by hand"]
        call.close()
        transport.close()

    run(body)


def test_without_privilege_the_receive_buffer_is_asked_for_the_ordinary_way() -> None:
    class Unprivileged(FakeRawSocket):
        def setsockopt(self, level: int, name: int, value: int) -> None:
            if name == aio_gre.SO_RCVBUFFORCE:
                raise PermissionError(errno.EPERM, "Operation not permitted")
            super().setsockopt(level, name, value)

    sock = Unprivileged()
    try:
        set_receive_buffer(sock, 1 << 20)  # type: ignore[arg-type]
        assert sock.options == [(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)]
    finally:
        sock.close()


def test_two_transports_on_a_fake_network_carry_a_call_both_ways() -> None:
    async def body(loop: ClockLoop) -> None:
        network = FakeNetwork()
        server = Endpoint(FakeRawSocket(SERVER, network), CLIENT, OUR_CALL, PEER_CALL)
        client = Endpoint(FakeRawSocket(CLIENT, network), SERVER, PEER_CALL, OUR_CALL)
        try:
            for n in range(200):
                assert server.call.send(b"s%d" % n) or n >= server.call.seq.window
                assert client.call.send(b"c%d" % n) or n >= client.call.seq.window
                await turns(2)
            await advance(loop, 1.0)
            assert server.delivered == [b"c%d" % n for n in range(200)]
            assert client.delivered == [b"s%d" % n for n in range(200)]
            assert server.call.seq.unacked == 0 and client.call.seq.unacked == 0
        finally:
            server.close()
            client.close()

    run(body)
