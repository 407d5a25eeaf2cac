"""CCP and MPPE on a whole link: policy, the IP gate, the MTU rule, resets (RFC 1962, RFC 3078).

Our server against our client in memory, as in test_ppp_link.py, plus CCP
packets written by hand where a real client behaves differently from ours
(Windows' first request, its retransmission after CCP opened).
"""

from __future__ import annotations

import pytest

from pypptp.ppp.ccp import MppePolicy
from pypptp.ppp.frame import Protocol, encode_frame, parse_frame
from pypptp.ppp.fsm_table import State
from pypptp.ppp.lcp import AUTH_MSCHAP_V1, AUTH_MSCHAP_V2, AUTH_PAP, LcpConfig
from pypptp.ppp.link import DataReceived, LinkDown, LinkLog, NetworkUp, Phase, PppLink
from pypptp.ppp.packet import Code, ControlPacket
from tests.test_ppp_link import (
    NO_MPPE,
    PING,
    SECRETS,
    Wire,
    client_config,
    connect,
    control,
    counter32,
    flows_both_ways,
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
    flows_both_ways(wire)  # past a stateful flag packet (count 0xFF)


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


def windows_ccp_wire(offers: dict[int, str]) -> tuple[Wire, dict[int, list[ControlPacket]]]:
    """Our server and client, except that CCP starts as Windows' does: its first offers (Identifier ->
    options in hex) reach the server just before the client's own request, which is the one Windows
    sends after our Nak.  Returns the wire, up, and the server's replies to each offer."""
    server = PppLink(server_config(), secrets=SECRETS, random_bytes=rng_bytes(1), random32=counter32(1))
    client = PppLink(client_config(), random_bytes=rng_bytes(101), random32=counter32(101))
    wire = Wire(server, client)
    server.open(wire.now)
    client.open(wire.now)
    replies: dict[int, list[ControlPacket]] = {}
    for _ in range(100):
        to_client, events_s = server.drain()
        to_server, events_c = client.drain()
        wire.server_events += events_s
        wire.client_events += events_c
        wire.to_client += to_client
        wire.to_server += to_server
        if not to_client and not to_server:
            break
        for frame in to_client:
            client.receive_frame(frame, wire.now)
        for frame in to_server:
            ours = [p for p in control([frame], Protocol.CCP) if p.code == Code.CONFIGURE_REQUEST]
            for identifier, options in offers.items() if ours and not replies else ():
                server.receive_frame(ccp_request(identifier, options), wire.now)
                frames, _ = server.drain()
                replies[identifier] = [p for p in control(frames, Protocol.CCP) if p.identifier == identifier]
                for reply in frames:  # Identifiers none of our client's: it ignores the replies
                    client.receive_frame(reply, wire.now)
            server.receive_frame(frame, wire.now)
    wire.exchange()
    assert server.ncps[Protocol.CCP].automaton.state is State.OPENED and server.phase is Phase.NETWORK
    return wire, replies


def test_windows_first_request_and_its_retransmission_after_ccp_opened() -> None:
    """Windows offers H+M+S+L and gets a Nak for H+S; its identical retransmission (same Identifier,
    same data) of the request we Acked, after CCP opened, is Acked again without touching the
    encryption (pppd renegotiates, and then ends the link: Windows error 734)."""
    wire, replies = windows_ccp_wire({40: "12060100 00e0"})
    assert [(p.code, p.data) for p in replies[40]] == [(Code.CONFIGURE_NAK, bytes.fromhex("120601000040"))]
    link = wire.server
    encryptor, decryptor = link.encryptor, link.decryptor
    assert encryptor is not None and decryptor is not None
    sent = KeystreamLog()
    carry(wire, sent, 5)
    [acked] = [p for p in control(wire.to_server, Protocol.CCP) if p.code == Code.CONFIGURE_REQUEST][-1:]
    for _ in range(3):
        link.receive_frame(encode_frame(Protocol.CCP, acked.encode()), wire.now)  # retransmitted as it was
        frames, events = link.drain()
        acks = control(frames, Protocol.CCP)
        assert [(p.code, p.identifier, p.data) for p in acks] == [(Code.CONFIGURE_ACK, acked.identifier, acked.data)]
        assert of(events, LinkDown) == [] and link.phase is Phase.NETWORK
        assert link.encryptor is encryptor and link.decryptor is decryptor
        assert link.ncps[Protocol.CCP].automaton.state is State.OPENED
        carry(wire, sent, 5)


def test_windows_bare_h_request_gets_the_strength_we_want() -> None:
    _, replies = windows_ccp_wire({7: "1206 01000000 1a04 7800", 8: "1206 01000000"})  # + Deflate, then bare
    assert [(p.code, p.data) for p in replies[7]] == [(Code.CONFIGURE_REJECT, bytes.fromhex("1a047800"))]
    assert [(p.code, p.data) for p in replies[8]] == [(Code.CONFIGURE_NAK, bytes.fromhex("120601000040"))]


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


# -- CCP restarts on the same keys (issue 15 section 4) ----------------------------------------------------
#
# A CCP restart would build new MPPE codecs from the same MS-CHAP keys, at coherency count 0: the same
# keystream again for the server's packets, and the client's recorded packets decrypting again.  pppd ends
# the link whenever CCP goes down with MPPE on (ccp_down: "MPPE disabled", lcp_close); so do we, except
# for Windows' retransmission of the request we Acked (above).  Resets are not restarts.


REUSE_REASON = "CCP went down while MPPE was on"
REUSE_LINE = f"{REUSE_REASON}: ending the link (MPPE restarted on the same keys would reuse its keystream)"


class KeystreamLog:
    """The keystream of every MPPE frame a link sent for a known payload: none may ever come twice."""

    def __init__(self) -> None:
        self.seen: dict[bytes, int] = {}

    def add(self, frame: bytes, payload: bytes) -> None:
        protocol, offset = parse_frame(frame)
        assert protocol == Protocol.COMPRESSED
        information = frame[offset:]
        count = (information[0] & 0x0F) << 8 | information[1]
        plain = Protocol.IPV4.to_bytes(2, "big") + payload
        stream = bytes(c ^ p for c, p in zip(information[2:], plain, strict=False))
        assert stream not in self.seen, f"keystream reused: count {count}, first sent with count {self.seen[stream]}"
        self.seen[stream] = count


def carry(wire: Wire, sent: KeystreamLog, packets: int, *, start: int = 0) -> tuple[list[bytes], int]:
    """``packets`` pings each way while the links let them: the server's frames go through ``sent``.
    Returns the client's frames and how many payloads the server received."""
    client_frames: list[bytes] = []
    received = 0
    for i in range(start, start + packets):
        payload = PING[:-1] + bytes([i & 0xFF])
        frame = wire.server.send_data(Protocol.IPV4, payload)
        if frame is not None:
            sent.add(frame, payload)
            wire.client.receive_frame(frame, wire.now)
        back = wire.client.send_data(Protocol.IPV4, payload)
        if back is not None:
            client_frames.append(back)
            wire.server.receive_frame(back, wire.now)
        frames, events = wire.server.drain()
        wire.server_events += events
        received += len(of(events, DataReceived))
        for frame in frames:
            wire.client.receive_frame(frame, wire.now)
        wire.exchange()
    return client_frames, received


def lcp(code: int, identifier: int, data: bytes = b"") -> bytes:
    return encode_frame(Protocol.LCP, ControlPacket(code, identifier, data).encode())


def ccp(code: int, identifier: int, data: bytes = b"") -> bytes:
    return encode_frame(Protocol.CCP, ControlPacket(code, identifier, data).encode())


RESTARTS = {
    # a new Configure-Request in Opened: RFC 1661's tld, scr, sca/scn
    "request-same-options": lambda acked: ccp(Code.CONFIGURE_REQUEST, (acked.identifier + 1) & 0xFF, acked.data),
    "request-same-id-other-options": lambda acked: ccp(
        Code.CONFIGURE_REQUEST, acked.identifier, bytes.fromhex("1206010000e0")
    ),
    "request-windows-offer": lambda acked: ccp(Code.CONFIGURE_REQUEST, 0x99, bytes.fromhex("1206010000e0")),
    "request-empty": lambda acked: ccp(Code.CONFIGURE_REQUEST, 0x99),
    "terminate-request": lambda acked: ccp(Code.TERMINATE_REQUEST, 0x99),
    "terminate-ack": lambda acked: ccp(Code.TERMINATE_ACK, 0x99),  # tld, scr
    "code-reject": lambda acked: ccp(Code.CODE_REJECT, 0x99, ControlPacket(Code.CONFIGURE_REQUEST, 1).encode()),
    "protocol-reject": lambda acked: lcp(Code.PROTOCOL_REJECT, 0x99, b"\x80\xfd" + acked.encode()),
}


def acked_request(wire: Wire, side: str) -> ControlPacket:
    """The CCP Configure-Request the attacked side last Acked (what a forger copies)."""
    frames = wire.to_server if side == "server" else wire.to_client
    return [p for p in control(frames, Protocol.CCP) if p.code == Code.CONFIGURE_REQUEST][-1]


@pytest.mark.parametrize("restart", list(RESTARTS))
@pytest.mark.parametrize("stateful", [False, True], ids=["stateless", "stateful"])
def test_a_forged_ccp_restart_ends_the_link_and_no_keystream_repeats(restart: str, stateful: bool) -> None:
    """Issue 15 section 4: one forged CCP packet made the server encrypt the same packets with the same
    keystream again, and made it accept the client's recorded packets a second time."""
    policy = MppePolicy(stateful=stateful)
    wire = connect(server_config(mppe=policy), client_config(mppe=policy))
    server = wire.server
    sent = KeystreamLog()
    recorded, received = carry(wire, sent, 20)
    assert received == 20 and len(sent.seen) == 20
    server.receive_frame(RESTARTS[restart](acked_request(wire, "server")), wire.now)
    assert server.encryptor is None and server.decryptor is None  # at once: nothing more is encrypted
    assert server.send_data(Protocol.IPV4, PING) is None
    wire.exchange()  # whatever the server answered reaches the client, and the client's answer the server
    for frame in recorded:  # the client's recorded packets, replayed
        server.receive_frame(frame, wire.now)
    assert of(server.drain()[1], DataReceived) == []
    _, received = carry(wire, sent, 20)  # the same packets again: never the same keystream
    assert received == 0 and len(sent.seen) == 20
    wire.advance(10)
    reason = REUSE_REASON if restart != "request-empty" else "MPPE required but not agreed: peer does not ask for MPPE"
    [down] = of(wire.server_events, LinkDown)
    assert down.reason == reason
    assert (REUSE_LINE in [e.message for e in of(wire.server_events, LinkLog)]) is (reason == REUSE_REASON)
    assert server.phase is Phase.DEAD and of(wire.server_events, NetworkUp)[1:] == []


@pytest.mark.parametrize("restart", ["request-same-options", "terminate-request"])
def test_our_client_ends_its_link_too(restart: str) -> None:
    wire = connect(server_config(), client_config())
    client = wire.client
    client.receive_frame(RESTARTS[restart](acked_request(wire, "client")), wire.now)
    _, events = client.drain()
    assert client.encryptor is None and client.decryptor is None
    assert client.send_data(Protocol.IPV4, PING) is None
    assert client.close_reason == REUSE_REASON
    assert REUSE_LINE in [e.message for e in of(events, LinkLog)]


@pytest.mark.parametrize("stateful", [False, True], ids=["stateless", "stateful"])
def test_resets_and_retransmissions_are_not_restarts(stateful: bool) -> None:
    """A Reset-Request (the peer lost a stateful packet), a Reset-Ack and the retransmitted request we
    Acked keep the link and its codecs; the keystream never repeats (a reset is a key change)."""
    policy = MppePolicy(stateful=stateful)
    wire = connect(server_config(mppe=policy), client_config(mppe=policy))
    server = wire.server
    codecs = server.encryptor, server.decryptor
    sent = KeystreamLog()
    acked = acked_request(wire, "server")
    total = 0
    for i, frame in enumerate(
        [ccp(Code.RESET_REQUEST, 7), ccp(Code.RESET_ACK, 7), encode_frame(Protocol.CCP, acked.encode())] * 3
    ):
        _, received = carry(wire, sent, 10, start=10 * i)
        total += received
        server.receive_frame(frame, wire.now)
        frames, events = server.drain()
        assert of(events, LinkDown) == [] and server.phase is Phase.NETWORK
        for reply in frames:
            wire.client.receive_frame(reply, wire.now)
        wire.exchange()
    _, received = carry(wire, sent, 10, start=90)
    assert total + received == 100 and len(sent.seen) == 100
    assert (server.encryptor, server.decryptor) == codecs and server.ccp_options is not None
    # stateful: the server answers each (forged) Reset-Request at the next flag position, which the
    # client, in step all along, takes for a loss and answers with a Reset-Request of its own: 3 + 3
    assert server.ccp_options.reset_requests == (6 if stateful else 3) and server.ccp_options.reset_acks == 3


def test_lcp_renegotiation_after_a_reset_still_keys_afresh() -> None:
    """What may restart MPPE is a new LCP session, with a new authentication and new keys."""
    wire = connect(server_config(), client_config())
    sent = KeystreamLog()
    carry(wire, sent, 5)
    wire.server.receive_frame(ccp(Code.RESET_REQUEST, 1), wire.now)
    wire.exchange()
    wire.client.renegotiate(wire.now)
    wire.exchange()
    assert wire.server.phase is Phase.NETWORK and len(of(wire.server_events, NetworkUp)) == 2
    _, received = carry(wire, sent, 5, start=5)
    assert received == 5 and len(sent.seen) == 10
