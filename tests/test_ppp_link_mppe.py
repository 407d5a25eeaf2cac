"""CCP and MPPE on a whole link: policy, the IP gate, the MTU rule, resets (RFC 1962, RFC 3078).

Our server against our client in memory, as in test_ppp_link.py, plus CCP
packets written by hand where a real client behaves differently from ours
(Windows' first request, its retransmission after CCP opened).
"""

from __future__ import annotations

import pytest

from pypptp.ppp.ccp import MppePolicy
from pypptp.ppp.frame import Protocol, encode_frame
from pypptp.ppp.fsm_table import State
from pypptp.ppp.lcp import AUTH_MSCHAP_V1, AUTH_MSCHAP_V2, AUTH_PAP, LcpConfig
from pypptp.ppp.link import DataReceived, LinkDown, LinkLog, NetworkUp, Phase, PppLink
from pypptp.ppp.packet import Code, ControlPacket
from tests.test_ppp_link import (
    NO_MPPE,
    PING,
    SECRETS,
    client_config,
    connect,
    control,
    counter32,
    of,
    rng_bytes,
    server_config,
)

STATEFUL = MppePolicy(stateful=True)


def ccp_request(identifier: int, hex_options: str) -> bytes:
    packet = ControlPacket(Code.CONFIGURE_REQUEST, identifier, bytes.fromhex(hex_options))
    return encode_frame(Protocol.CCP, packet.encode())


@pytest.mark.parametrize("bits", [128, 56, 40])
@pytest.mark.parametrize("stateful", [False, True], ids=["stateless", "stateful"])
@pytest.mark.parametrize("method", [AUTH_MSCHAP_V2, AUTH_MSCHAP_V1], ids=["mschapv2", "mschapv1"])
def test_every_strength_and_mode_carries_data_both_ways(bits: int, stateful: bool, method: bytes) -> None:
    policy = MppePolicy(strengths=(bits,), stateful=stateful)
    wire = connect(server_config(method, mppe=policy), client_config(mppe=policy))
    mode = "stateful" if stateful else "stateless"
    [up_s] = of(wire.server_events, NetworkUp)
    assert up_s.mppe == f"MPPE {bits}-bit {mode}"
    for i in range(300):  # past a stateful flag packet (count 0xFF)
        payload = PING[:-1] + bytes([i & 0xFF])
        frame = wire.client.send_data(Protocol.IPV4, payload)
        assert frame is not None
        wire.server.receive_frame(frame, wire.now)
        back = wire.server.send_data(Protocol.IPV4, payload)
        assert back is not None
        wire.client.receive_frame(back, wire.now)
        assert of(wire.server.drain()[1], DataReceived) == [DataReceived(Protocol.IPV4, payload)]
        assert of(wire.client.drain()[1], DataReceived) == [DataReceived(Protocol.IPV4, payload)]


def test_ipcp_waits_for_ccp_and_the_mtu_loses_four_bytes() -> None:
    wire = connect(server_config(), client_config())
    messages = [e.message if isinstance(e, LinkLog) else type(e).__name__ for e in wire.server_events]
    enabled = messages.index("MPPE 128-bit stateless compression enabled")
    assert enabled < messages.index("NetworkUp")
    [up_c] = of(wire.client_events, NetworkUp)
    assert up_c.mtu == 1396  # Windows' MRU 1400 less MPPE's 4 bytes (ccp-mppe.md section 9)


def test_oversize_packets_are_counted_and_logged_once() -> None:
    wire = connect(server_config(), client_config())
    big = bytes(1397)
    assert wire.client.send_data(Protocol.IPV4, big) is None
    assert wire.client.send_data(Protocol.IPV4, big) is None
    assert wire.client.send_data(Protocol.IPV4, bytes(1396)) is not None
    _, events = wire.client.drain()
    assert wire.client.counters["oversize"] == 2
    assert len([e for e in of(events, LinkLog) if "exceeds the link MTU 1396" in e.message]) == 1


def test_unencrypted_ip_is_dropped_while_mppe_is_on() -> None:
    wire = connect(server_config(), client_config())
    wire.server.receive_frame(encode_frame(Protocol.IPV4, PING), wire.now)
    wire.server.receive_frame(encode_frame(Protocol.IPV4, PING), wire.now)
    _, events = wire.server.drain()
    assert of(events, DataReceived) == [] and wire.server.counters["unencrypted"] == 2


def test_windows_first_request_and_its_retransmission_after_ccp_opened() -> None:
    """Windows offers H+M+S+L and gets a Nak for H+S; its identical retransmission after CCP
    opened is Acked without touching the encryption (pppd renegotiates: Windows error 734)."""
    wire = connect(server_config(), client_config())
    link = wire.server
    link.receive_frame(ccp_request(40, "12060100 00e0"), wire.now)  # a fresh offer: renegotiation
    frames, _ = link.drain()
    [nak] = [p for p in control(frames, Protocol.CCP) if p.code == Code.CONFIGURE_NAK]
    assert (nak.identifier, nak.data) == (40, bytes.fromhex("120601000040"))
    for frame in frames:  # our new Configure-Request goes to our client; CCP opens again
        wire.client.receive_frame(frame, wire.now)
    wire.exchange()
    assert link.ncps[Protocol.CCP].automaton.state is State.OPENED
    encryptor = link.encryptor
    [acked] = [p for p in control(wire.to_server, Protocol.CCP) if p.code == Code.CONFIGURE_REQUEST][-1:]
    link.receive_frame(encode_frame(Protocol.CCP, acked.encode()), wire.now)  # retransmitted as it was
    frames, _ = link.drain()
    assert [(p.code, p.identifier) for p in control(frames, Protocol.CCP)] == [(Code.CONFIGURE_ACK, acked.identifier)]
    assert link.encryptor is encryptor and link.ncps[Protocol.CCP].automaton.state is State.OPENED


def test_windows_bare_h_request_gets_the_strength_we_want() -> None:
    wire = connect(server_config(), client_config())
    wire.server.receive_frame(ccp_request(7, "1206 01000000 1a04 7800"), wire.now)  # + Deflate
    frames, _ = wire.server.drain()
    replies = [p for p in control(frames, Protocol.CCP) if p.identifier == 7]
    assert [(p.code, p.data) for p in replies] == [(Code.CONFIGURE_REJECT, bytes.fromhex("1a047800"))]
    wire.server.receive_frame(ccp_request(8, "1206 01000000"), wire.now)
    frames, _ = wire.server.drain()
    [nak] = [p for p in control(frames, Protocol.CCP) if p.identifier == 8]
    assert (nak.code, nak.data) == (Code.CONFIGURE_NAK, bytes.fromhex("120601000040"))


def test_mppe_required_with_pap_closes_the_link() -> None:
    wire = connect(server_config(AUTH_PAP, mppe=MppePolicy()), client_config())
    wire.advance(10)
    [down] = of(wire.server_events, LinkDown)
    assert down.reason == "MPPE required, but MS-CHAP authentication was not performed"
    assert of(wire.server_events, NetworkUp) == []


def test_client_without_mppe_is_terminated_by_a_server_that_requires_it() -> None:
    """Windows with "no encryption" Protocol-Rejects CCP: a server requiring MPPE hangs up."""
    wire = connect(server_config(), client_config(mppe=NO_MPPE))
    wire.advance(10)
    rejects = [p for p in control(wire.to_server, Protocol.LCP) if p.code == Code.PROTOCOL_REJECT]
    assert rejects and rejects[0].data[:2] == b"\x80\xfd"
    [down] = of(wire.server_events, LinkDown)
    assert down.reason.startswith("MPPE required but not agreed")
    assert of(wire.server_events, NetworkUp) == [] and wire.server.phase is Phase.DEAD


def test_no_common_strength_terminates() -> None:
    wire = connect(server_config(mppe=MppePolicy(strengths=(128,))), client_config(mppe=MppePolicy(strengths=(40,))))
    wire.advance(60)
    [down] = of(wire.server_events, LinkDown)
    assert down.reason.startswith("MPPE required but not agreed")


def test_optional_mppe_with_a_peer_that_refuses_it_carries_clear_ip() -> None:
    wire = connect(server_config(mppe=MppePolicy(required=False)), client_config(mppe=NO_MPPE))
    wire.advance(10)
    [up] = of(wire.server_events, NetworkUp)
    assert up.mppe == "" and up.mtu == 1500
    assert wire.server.lcp.state is State.OPENED


def test_stateful_loss_sends_one_reset_request_and_resynchronises() -> None:
    wire = connect(server_config(mppe=STATEFUL), client_config(mppe=STATEFUL))
    server, client = wire.server, wire.client
    assert server.mppe_name == "MPPE 128-bit stateful"
    for i in range(3):
        frame = client.send_data(Protocol.IPV4, PING)
        assert frame is not None
        if i == 1:
            continue  # lost
        server.receive_frame(frame, wire.now)
    frames, events = server.drain()
    assert len(of(events, DataReceived)) == 1  # the packet after the loss is discarded
    [reset] = control(frames, Protocol.CCP)
    assert reset.code == Code.RESET_REQUEST
    client.receive_frame(encode_frame(Protocol.CCP, reset.encode()), wire.now)
    frames, _ = client.drain()
    assert [(p.code, p.identifier) for p in control(frames, Protocol.CCP)] == [(Code.RESET_ACK, reset.identifier)]
    server.receive_frame(frames[0], wire.now)
    frame = client.send_data(Protocol.IPV4, PING)  # carries the flushed bit
    assert frame is not None
    server.receive_frame(frame, wire.now)
    assert of(server.drain()[1], DataReceived) == [DataReceived(Protocol.IPV4, PING)]


def test_stateless_duplicate_and_late_packets_are_dropped() -> None:
    wire = connect(server_config(), client_config())
    frames = [wire.client.send_data(Protocol.IPV4, PING[:-1] + bytes([i])) for i in range(4)]
    assert all(f is not None for f in frames)
    for frame in (frames[0], frames[2], frames[0], frames[1], frames[3]):  # a duplicate and a late one
        assert frame is not None
        wire.server.receive_frame(frame, wire.now)
    got = [e.payload[-1] for e in of(wire.server.drain()[1], DataReceived)]
    assert got == [0, 2, 3]


def test_ccp_before_the_network_phase_is_discarded() -> None:
    link = PppLink(server_config(), secrets=SECRETS, random_bytes=rng_bytes(1), random32=counter32(1))
    link.open(0.0)
    link.drain()
    link.receive_frame(ccp_request(1, "120601000040"), 0.0)
    assert link.drain()[0] == [] and link.phase is Phase.ESTABLISH


def test_a_pptp_linux_client_gets_128_bit_stateless() -> None:
    linux = client_config(lcp=LcpConfig(accm=0, auth_methods=(AUTH_MSCHAP_V2,)), mppe=MppePolicy())
    wire = connect(server_config(), linux)
    first = next(p for p in control(wire.to_server, Protocol.CCP) if p.code == Code.CONFIGURE_REQUEST)
    assert first.data == bytes.fromhex("120601000040")
    [up] = of(wire.client_events, NetworkUp)
    assert up.mppe == "MPPE 128-bit stateless"


def test_stateful_reset_request_is_repeated_until_a_flushed_packet_arrives() -> None:
    wire = connect(server_config(mppe=STATEFUL), client_config(mppe=STATEFUL))
    server, client = wire.server, wire.client
    frames = [client.send_data(Protocol.IPV4, PING) for _ in range(3)]
    for frame in (frames[0], frames[2]):  # frames[1] lost
        assert frame is not None
        server.receive_frame(frame, wire.now)
    first, _ = server.drain()
    assert server.next_deadline() == wire.now + 1.0
    server.handle_timer(wire.now + 1.0)  # the Reset-Request was lost as well: sent again, same Identifier
    again, _ = server.drain()
    [a], [b] = control(first, Protocol.CCP), control(again, Protocol.CCP)
    assert a == b and a.code == Code.RESET_REQUEST
    client.receive_frame(again[0], wire.now + 1.0)
    client.drain()
    flushed = client.send_data(Protocol.IPV4, PING)
    assert flushed is not None
    server.receive_frame(flushed, wire.now + 1.5)
    assert of(server.drain()[1], DataReceived) == [DataReceived(Protocol.IPV4, PING)]
    server.handle_timer(wire.now + 2.0)
    assert server.drain()[0] == [] and server.next_deadline() is None  # resynchronised: no more requests


def test_ipcp_asks_again_as_soon_as_ccp_opens_after_a_pppd_style_terminate_ack() -> None:
    """pppd starts IPCP only once CCP is up and answers an earlier IPCP request with a Terminate-Ack;
    the server must not then wait a whole restart period (3 s) to ask again.  Here the client's IPCP
    is held back, both ways, until its CCP has opened, as pppd's is."""
    from pypptp.ppp.frame import parse_frame
    from pypptp.ppp.packet import decode_packet

    server = PppLink(server_config(), secrets=SECRETS, random_bytes=rng_bytes(5), random32=counter32(5))
    client = PppLink(client_config(), random_bytes=rng_bytes(6), random32=counter32(6))
    server.open(0.0)
    client.open(0.0)
    term_acks = 0
    for _ in range(100):
        to_client, _ = server.drain()
        to_server, _ = client.drain()
        if not to_client and not to_server:
            break
        ccp = client.ncps.get(Protocol.CCP)
        client_ipcp_started = ccp is not None and ccp.automaton.state is State.OPENED
        for frame in to_client:
            protocol, offset = parse_frame(frame)
            if protocol == Protocol.IPCP and not client_ipcp_started:
                packet = decode_packet(frame[offset:])
                if packet.code == Code.CONFIGURE_REQUEST:
                    term_acks += 1
                    reply = ControlPacket(Code.TERMINATE_ACK, packet.identifier).encode()
                    server.receive_frame(encode_frame(Protocol.IPCP, reply), 0.0)
                continue
            client.receive_frame(frame, 0.0)
        for frame in to_server:
            if parse_frame(frame)[0] == Protocol.IPCP and not client_ipcp_started:
                continue
            server.receive_frame(frame, 0.0)
    assert term_acks >= 1
    # still at t=0: our request was sent again once CCP was up and the client Acked it
    assert server.ncps[Protocol.IPCP].automaton.state in (State.ACK_RCVD, State.OPENED)
