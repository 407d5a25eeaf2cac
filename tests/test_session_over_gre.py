"""``session_over_gre``: a GRE call and its PPP session, wired to each other at construction.

The daemon, the library client and the benchmarks build their sessions with it.  Here two of them, a
server with a stand-in TUN device and a library-mode client, each on a GRE transport with no socket:
what a call sends (its GRE header written in front of the frame) reaches the other transport's call as
the raw socket would hand it over.  No namespace, no root.
"""

from __future__ import annotations

import asyncio
import logging
from typing import cast

from pypptp.aio.gre import MIN_SEND_WINDOW, GreCall, GreTransport
from pypptp.aio.session import session_over_gre
from pypptp.gre.codec import decode_header
from pypptp.host.tun import TunDevice
from pypptp.ppp.ccp import MppePolicy
from pypptp.ppp.link import PppLink
from tests.fake_network import FakeTun
from tests.test_ppp_link import PING, SECRETS, client_config, counter32, rng_bytes, server_config
from tests.test_ppp_session_renegotiation import PONG, until

log = logging.getLogger("test.session_over_gre")
SERVER_IP, CLIENT_IP = "198.18.0.1", "198.18.0.2"
SERVER_CALL, CLIENT_CALL = 0x1111, 0x2222


def carry(call: GreCall, to: GreTransport) -> None:
    """Stand in for the raw socket under ``call``: each packet it sends reaches ``to``'s call for it, on
    the next loop iteration, as GreTransport.drain would hand it over (decoded, then ``gre_received``)."""
    loop = asyncio.get_running_loop()

    def arrive(packet: bytes) -> None:
        header = decode_header(packet)
        target = next(c for c in to.calls.values() if c.call_id == header.call_id)
        payload = memoryview(packet)[header.header_size : header.header_size + header.payload_length]
        target.gre_received(header.seq, header.ack, payload, loop.time())

    def sendto(packet: memoryview, peer: tuple[str, int]) -> int:
        loop.call_soon(arrive, bytes(packet))
        return len(packet)

    call.sendto = sendto


async def test_a_call_and_its_session_are_wired_together_and_carry_ip_both_ways() -> None:
    server_transport, client_transport = GreTransport(), GreTransport()
    tun = FakeTun()
    server_call, server = session_over_gre(
        server_transport,
        CLIENT_IP,
        SERVER_CALL,
        CLIENT_CALL,
        PppLink(server_config(mppe=MppePolicy()), secrets=SECRETS, random_bytes=rng_bytes(1), random32=counter32(1)),
        peer_window=3,  # what pptp-linux announces
        our_window=3,  # echoed, as the daemon does
        log=log,
        make_tun=lambda: cast(TunDevice, tun),
    )
    client_call, client = session_over_gre(
        client_transport,
        SERVER_IP,
        CLIENT_CALL,
        SERVER_CALL,
        PppLink(client_config(mppe=MppePolicy()), random_bytes=rng_bytes(2), random32=counter32(2)),
        peer_window=256,
        our_window=256,
        log=log,
        attach_tun=False,
    )
    try:
        # wired at construction: the call delivers into the session, the session sends through the call
        assert server_call.deliver == server.receive_frame and client_call.deliver == client.receive_frame
        assert server.send == server_call.send and server.call is server_call
        assert server.notify_room == server_call.notify_room
        assert server_transport.calls == {server_call.peer_ip_int << 16 | SERVER_CALL: server_call}
        # a window below MIN_SEND_WINDOW is not honoured
        assert server_call.seq.peer_window == MIN_SEND_WINDOW and client_call.seq.peer_window == 256
        carry(server_call, client_transport)
        carry(client_call, server_transport)
        server.start()
        client.start()
        await until(lambda: server.network is not None and client.network is not None)
        received = client.received
        assert received is not None and server.tun is not None
        for i in range(20):  # TUN -> server hot path -> GRE -> client, and back to the TUN
            packet = PING[:-1] + bytes([i])
            tun.theirs.send(packet)
            assert await asyncio.wait_for(received.get(), 2.0) == packet
            reply = PONG[:-1] + bytes([i])
            assert client.send_ip(reply)
            assert await asyncio.wait_for(asyncio.get_running_loop().sock_recv(tun.theirs, 65536), 2.0) == reply
        assert server.stats.packets_sent == server.stats.packets_received == 20
    finally:
        for session in (client, server):
            session.close("test over")
        server_call.close()
        client_call.close()
