"""Whole PPP links in memory: our server against our client, phase by phase (RFC 1661 section 3).

Each test builds two :class:`PppLink` objects, carries frames between them
with :func:`exchange` (bounded), and checks the events and packets a user of
the library would see.  Clients imitate the option sets of Windows 10 and of
pptp-linux (../shared/spec/README.md "Windows and Linux client behaviour").
"""

from __future__ import annotations

import dataclasses
import ipaddress
import random
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pypptp.ppp.auth import AuthConfig, SecretLookup
from pypptp.ppp.ccp import MppePolicy
from pypptp.ppp.frame import Protocol, encode_frame, parse_frame
from pypptp.ppp.fsm_table import State
from pypptp.ppp.ipcp import IpcpConfig
from pypptp.ppp.lcp import AUTH_CHAP_MD5, AUTH_MSCHAP_V1, AUTH_MSCHAP_V2, AUTH_PAP, LcpConfig
from pypptp.ppp.link import (
    Authenticated,
    DataReceived,
    LinkConfig,
    LinkDown,
    LinkEvent,
    LinkLog,
    NetworkDown,
    NetworkUp,
    Phase,
    PhaseChanged,
    PppLink,
)
from pypptp.ppp.packet import Code, ControlPacket, decode_packet
from pypptp.ppp.secrets import parse_secrets
from tests import fixtures

T = TypeVar("T")
IP = ipaddress.IPv4Address
SERVER_IP, POOL_IP = IP("192.168.0.1"), IP("192.168.0.234")
DNS = (IP("8.8.8.8"), IP("8.8.4.4"))  # the seed's ms-dns: negotiated only, nothing is sent to them
SECRETS = parse_secrets(
    'alice pptpd "s3cret pass" *\n'
    "bob pptpd bobpw 192.168.0.245\n"
    "carol pptpd carolpw\n"  # three words: no address allowed
    "dave pptpd davepw 192.168.0.0/16\n"
)
ALL_METHODS = (AUTH_MSCHAP_V2, AUTH_MSCHAP_V1, AUTH_CHAP_MD5, AUTH_PAP)


def rng_bytes(seed: int) -> Callable[[int], bytes]:
    generator = random.Random(seed)
    return generator.randbytes


def counter32(seed: int) -> Callable[[], int]:
    generator = random.Random(seed)
    return lambda: generator.getrandbits(32)


NO_MPPE = MppePolicy(enabled=False, required=False)
MSCHAP = (AUTH_MSCHAP_V2, AUTH_MSCHAP_V1)


def server_config(method: bytes = AUTH_MSCHAP_V2, **changes: Any) -> LinkConfig:
    """pptpd's defaults: MPPE-128 required with MS-CHAP; PAP and CHAP-MD5 cannot key MPPE (nomppe)."""
    base = LinkConfig(
        server=True,
        lcp=LcpConfig(mru=1400, auth_methods=(method,)),
        auth=AuthConfig(our_name="pptpd"),
        ipcp=IpcpConfig(server=True, local_address=SERVER_IP, peer_address=POOL_IP, dns=DNS),
        mppe=MppePolicy() if method in MSCHAP else NO_MPPE,
    )
    return _replace(base, changes)


def client_config(user: str = "alice", password: str = "s3cret pass", **changes: Any) -> LinkConfig:
    base = LinkConfig(
        server=False,
        lcp=LcpConfig(auth_methods=ALL_METHODS),
        auth=AuthConfig(user=user, password=password),
        ipcp=IpcpConfig(server=False, request_dns=True),
        mppe=MppePolicy(required=False),
    )
    return _replace(base, changes)


def _replace(config: LinkConfig, changes: dict[str, Any]) -> LinkConfig:
    return dataclasses.replace(config, **changes)


class Wire:
    """Two links and the frames between them; ``drop_to_server``/``drop_to_client`` simulate loss."""

    def __init__(self, server: PppLink, client: PppLink) -> None:
        self.server, self.client = server, client
        self.server_events: list[LinkEvent] = []
        self.client_events: list[LinkEvent] = []
        self.to_server: list[bytes] = []
        self.to_client: list[bytes] = []
        self.drop_to_server = self.drop_to_client = False
        self.now = 0.0

    def start(self) -> None:
        self.server.open(self.now)
        self.client.open(self.now)
        self.exchange()

    def exchange(self, rounds: int = 200) -> None:
        """Deliver frames both ways until both links are quiet (bounded)."""
        for _ in range(rounds):
            frames_s, events_s = self.server.drain()
            frames_c, events_c = self.client.drain()
            self.server_events += events_s
            self.client_events += events_c
            self.to_client += frames_s
            self.to_server += frames_c
            if not frames_s and not frames_c:
                return
            for frame in frames_s:
                if not self.drop_to_client:
                    self.client.receive_frame(frame, self.now)
            for frame in frames_c:
                if not self.drop_to_server:
                    self.server.receive_frame(frame, self.now)
        raise AssertionError("the links never went quiet")

    def advance(self, seconds: float, step: float = 1.0) -> None:
        """Let time pass in steps, firing timers and exchanging after each (bounded)."""
        end = self.now + seconds
        while self.now < end:
            self.now = min(end, self.now + step)
            self.server.handle_timer(self.now)
            self.client.handle_timer(self.now)
            self.exchange()


def of(events: list[LinkEvent], kind: type[T]) -> list[T]:
    return [e for e in events if isinstance(e, kind)]


def phases(events: list[LinkEvent]) -> list[Phase]:
    return [e.phase for e in of(events, PhaseChanged)]


def control(frames: list[bytes], protocol: int) -> list[ControlPacket]:
    packets = []
    for frame in frames:
        number, offset = parse_frame(frame)
        if number == protocol:
            packets.append(decode_packet(frame[offset:]))
    return packets


def connect(
    server_cfg: LinkConfig, client_cfg: LinkConfig, seed: int = 1, secrets: SecretLookup | None = SECRETS
) -> Wire:
    """The two links opened and talked to quiet; ``secrets``: the server's (None: a server judging outside)."""
    server = PppLink(server_cfg, secrets=secrets, random_bytes=rng_bytes(seed), random32=counter32(seed))
    client = PppLink(client_cfg, random_bytes=rng_bytes(seed + 100), random32=counter32(seed + 100))
    wire = Wire(server, client)
    wire.start()
    return wire


# -- every auth method end to end ---------------------------------------------------------------


@pytest.mark.parametrize("method", ALL_METHODS, ids=["mschapv2", "mschapv1", "chap-md5", "pap"])
def test_each_auth_method_brings_the_network_up(method: bytes) -> None:
    wire = connect(server_config(method), client_config())
    assert phases(wire.server_events) == [Phase.ESTABLISH, Phase.AUTHENTICATE, Phase.NETWORK]
    assert phases(wire.client_events) == [Phase.ESTABLISH, Phase.AUTHENTICATE, Phase.NETWORK]
    [auth] = of(wire.server_events, Authenticated)
    assert auth.local and auth.result.success and auth.result.peer_name == "alice"
    [up_s] = of(wire.server_events, NetworkUp)
    [up_c] = of(wire.client_events, NetworkUp)
    assert (up_s.local_address, up_s.peer_address) == (SERVER_IP, POOL_IP)
    assert (up_c.local_address, up_c.peer_address) == (POOL_IP, SERVER_IP)
    assert up_c.dns == DNS
    mschap = method in MSCHAP
    overhead = 4 if mschap else 0  # MPPE grows each frame by 4 bytes
    assert up_c.mtu == 1400 - overhead  # the server's MRU bounds what the client sends
    assert up_s.mtu == 1500 - overhead  # the client asked for no MRU: the default
    assert up_s.mppe == up_c.mppe == ("MPPE 128-bit stateless" if mschap else "")
    assert (auth.result.keys is not None) is mschap
    if mschap:
        [client_auth] = of(wire.client_events, Authenticated)
        assert client_auth.result.keys == auth.result.keys  # both ends hold the same MPPE keying material
    assert wire.server.lcp.state is State.OPENED and wire.client.lcp.state is State.OPENED
    assert wire.server.next_deadline() is None  # nothing pending once everything is Opened
    assert "remote IP address 192.168.0.234" in [e.message for e in of(wire.server_events, LinkLog)]


PING = bytes.fromhex("4500001c000000004001f8a5c0a800eac0a80001") + b"\x08\x00\xf7\xff\x00\x00\x00\x00"


def flows_both_ways(wire: Wire, packets: int = 300) -> None:
    """``packets`` pings each way (past a stateful flag packet), each delivered intact."""
    for i in range(packets):
        payload = PING[:-1] + bytes([i & 0xFF])
        frame = wire.client.send_data(Protocol.IPV4, payload)
        assert frame is not None
        wire.server.receive_frame(frame, wire.now)
        back = wire.server.send_data(Protocol.IPV4, payload)
        assert back is not None
        wire.client.receive_frame(back, wire.now)
        assert of(wire.server.drain()[1], DataReceived) == [DataReceived(Protocol.IPV4, payload)]
        assert of(wire.client.drain()[1], DataReceived) == [DataReceived(Protocol.IPV4, payload)]


@pytest.mark.parametrize("method", [AUTH_MSCHAP_V2, AUTH_PAP], ids=["mppe", "clear"])
def test_ip_packets_flow_both_ways_once_ipcp_is_open(method: bytes) -> None:
    wire = connect(server_config(method), client_config())
    frame = wire.client.send_data(Protocol.IPV4, PING)
    assert frame is not None
    # the client asked for ACFC and PFC: MPPE data is "fd 90 00 ...", clear IPv4 "21 45 ..."
    assert frame[:2] == (b"\xfd\x90" if method == AUTH_MSCHAP_V2 else b"\x21\x45")
    wire.server.receive_frame(frame, wire.now)
    _, events = wire.server.drain()
    assert of(events, DataReceived) == [DataReceived(Protocol.IPV4, PING)]
    back = wire.server.send_data(Protocol.IPV4, PING)
    assert back is not None
    wire.client.receive_frame(back, wire.now)
    assert of(wire.client.drain()[1], DataReceived) == [DataReceived(Protocol.IPV4, PING)]
    assert wire.client.send_data(Protocol.IPV6, PING) is None  # no IPV6CP: no IPv6


def test_static_address_from_chap_secrets_wins_over_the_pool() -> None:
    wire = connect(server_config(), client_config("bob", "bobpw"))
    [up_c] = of(wire.client_events, NetworkUp)
    assert up_c.local_address == IP("192.168.0.245")


def test_a_three_word_secret_allows_no_address_so_the_link_closes() -> None:
    wire = connect(server_config(), client_config("carol", "carolpw"))
    wire.advance(10)
    messages = [e.message for e in of(wire.server_events, LinkLog)]
    assert "Peer is not authorized to use remote address 192.168.0.234" in messages
    assert of(wire.server_events, NetworkUp) == []
    [down] = of(wire.server_events, LinkDown)
    assert down.reason == "No network protocols running"
    assert wire.server.phase is Phase.DEAD and wire.client.phase is Phase.DEAD


# -- authentication failures -----------------------------------------------------------------------


@pytest.mark.parametrize("method", ALL_METHODS, ids=["mschapv2", "mschapv1", "chap-md5", "pap"])
@pytest.mark.parametrize("user, password", [("alice", "wrong"), ("mallory", "s3cret pass")])
def test_wrong_password_or_unknown_user_terminates_the_link(method: bytes, user: str, password: str) -> None:
    wire = connect(server_config(method), client_config(user, password))
    wire.advance(10)
    [client_auth] = of(wire.client_events, Authenticated)
    assert not client_auth.result.success and not client_auth.local
    assert of(wire.server_events, NetworkUp) == [] and of(wire.client_events, NetworkUp) == []
    if method in (AUTH_MSCHAP_V2, AUTH_MSCHAP_V1):
        # the server allows a retry (R=1); our client does not retry the same password and hangs up
        assert of(wire.server_events, Authenticated) == []
        assert any("attempt 1 of 3 failed" in e.message for e in of(wire.server_events, LinkLog))
        assert [e.reason for e in of(wire.server_events, LinkDown)] == ["LCP terminated by peer"]
    else:
        [auth] = of(wire.server_events, Authenticated)
        assert not auth.result.success and auth.local
        assert [e.reason for e in of(wire.server_events, LinkDown)] == ["Authentication failed"]
    assert [e.reason for e in of(wire.client_events, LinkDown)] == ["Authentication failed"]
    assert Phase.NETWORK not in phases(wire.server_events)
    assert wire.server.phase is Phase.DEAD and wire.client.phase is Phase.DEAD


def test_client_that_refuses_every_method_is_closed_by_the_server() -> None:
    lcp = LcpConfig(auth_methods=())  # the client Rejects the Authentication-Protocol option
    wire = connect(server_config(), client_config(lcp=lcp))
    wire.advance(10)
    [down] = of(wire.server_events, LinkDown)
    assert down.reason == "peer refused to authenticate"
    assert Phase.NETWORK not in phases(wire.server_events)


def test_pap_packets_are_ignored_when_mschapv2_was_negotiated() -> None:
    wire = Wire(
        PppLink(server_config(), secrets=SECRETS, random_bytes=rng_bytes(3), random32=counter32(3)),
        PppLink(client_config(), random_bytes=rng_bytes(4), random32=counter32(4)),
    )
    wire.server.open(0.0)
    wire.client.open(0.0)
    for _ in range(20):  # run LCP only, until the server has sent its Challenge
        if wire.server.phase is Phase.AUTHENTICATE:
            break
        frames_s, _ = wire.server.drain()
        frames_c, _ = wire.client.drain()
        for frame in frames_s:
            wire.client.receive_frame(frame, 0.0)
        for frame in frames_c:
            wire.server.receive_frame(frame, 0.0)
    assert wire.server.phase is Phase.AUTHENTICATE
    wire.server.drain()
    pap = ControlPacket(1, 1, b"\x05alice\x0bs3cret pass").encode()
    wire.server.receive_frame(encode_frame(Protocol.PAP, pap), 0.0)
    frames, events = wire.server.drain()
    assert frames == [] and of(events, Authenticated) == []
    assert wire.server.phase is Phase.AUTHENTICATE


# -- Windows 10 and pptp-linux option sets ----------------------------------------------------------

WINDOWS_LCP = LcpConfig(
    mru=1400,
    auth_methods=(AUTH_MSCHAP_V2,),
    extra=((13, b"\x06"), (17, (1614).to_bytes(2, "big")), (19, b"\x01" + bytes(range(16)) + bytes(4))),
)


def test_windows_10_option_set() -> None:
    client = client_config(
        lcp=WINDOWS_LCP,
        ipv6=True,
        identification=(b"MSRASV5.20", b"MSRAS-0-MSEDGEWIN10"),
        ipcp=IpcpConfig(server=False, request_dns=True, request_wins=True),
    )
    wire = connect(server_config(), client)
    [lcp_reject] = [p for p in control(wire.to_client, Protocol.LCP) if p.code == Code.CONFIGURE_REJECT]
    assert lcp_reject.data[0::1][:1] == b"\x0d"  # callback, then MRRU and the endpoint discriminator
    assert {lcp_reject.data[0], lcp_reject.data[3], lcp_reject.data[7]} == {13, 17, 19}
    ipcp_s = control(wire.to_client, Protocol.IPCP)
    rejects = [p for p in ipcp_s if p.code == Code.CONFIGURE_REJECT]
    assert rejects and {rejects[0].data[0], rejects[0].data[6]} == {130, 132}  # no WINS configured
    assert not [p for p in ipcp_s if p.code == Code.TERMINATE_ACK]  # accel-ppp issue 353
    protocol_rejects = [p for p in control(wire.to_client, Protocol.LCP) if p.code == Code.PROTOCOL_REJECT]
    assert protocol_rejects and all(p.data[:2] == b"\x80\x57" for p in protocol_rejects)
    [up_c] = of(wire.client_events, NetworkUp)
    assert up_c.local_address == POOL_IP and up_c.dns == DNS and up_c.wins == ()
    assert wire.client.lcp.state is State.OPENED  # IPV6CP failing did not end the link
    assert Protocol.IPV6CP not in wire.client.ncps


def test_pptp_linux_option_set() -> None:
    client = client_config(
        lcp=LcpConfig(accm=0, auth_methods=(AUTH_MSCHAP_V2,)),
        ipv6=True,
        ipcp=IpcpConfig(server=False, request_dns=False, request_vj=True),
    )
    wire = connect(server_config(), client)
    first = control(wire.to_server, Protocol.LCP)[0]
    assert first.code == Code.CONFIGURE_REQUEST and first.data.startswith(bytes.fromhex("020600000000"))
    ipcp_s = control(wire.to_client, Protocol.IPCP)
    [vj_reject] = [p for p in ipcp_s if p.code == Code.CONFIGURE_REJECT]
    assert vj_reject.data == bytes.fromhex("0206002d0f01")
    [up_c] = of(wire.client_events, NetworkUp)
    assert up_c.local_address == POOL_IP and up_c.dns == ()


# -- phases and the protocol table ------------------------------------------------------------------


def test_unknown_protocol_is_protocol_rejected_only_in_the_network_phase() -> None:
    link = PppLink(server_config(), secrets=SECRETS, random_bytes=rng_bytes(1), random32=counter32(1))
    link.open(0.0)
    link.drain()
    link.receive_frame(encode_frame(0x8207, b"\x01\x01\x00\x04"), 0.0)  # Establish: silently discarded
    assert link.drain()[0] == []
    wire = connect(server_config(), client_config())
    information = b"\x01\x02\x00\x04" + bytes(3000)
    wire.server.receive_frame(encode_frame(0x8207, information), 0.0)
    frames, _ = wire.server.drain()
    [reject] = control(frames, Protocol.LCP)
    assert reject.code == Code.PROTOCOL_REJECT and reject.data[:2] == b"\x82\x07"
    assert len(reject.encode()) <= 1500  # truncated to the peer's MRU


def test_ipcp_before_authentication_is_discarded() -> None:
    link = PppLink(server_config(), secrets=SECRETS, random_bytes=rng_bytes(1), random32=counter32(1))
    link.open(0.0)
    link.drain()
    request = ControlPacket(Code.CONFIGURE_REQUEST, 1, bytes.fromhex("030600000000")).encode()
    link.receive_frame(encode_frame(Protocol.IPCP, request), 0.0)
    frames, _ = link.drain()
    assert frames == [] and link.phase is Phase.ESTABLISH


def test_early_ipcp_request_in_network_phase_gets_a_nak_not_a_terminate_ack() -> None:
    """accel-ppp issue 353 / ipcp.md 3.2: IPCP runs from the first moment of the Network phase."""
    wire = Wire(
        PppLink(server_config(), secrets=SECRETS, random_bytes=rng_bytes(3), random32=counter32(3)),
        PppLink(client_config(), random_bytes=rng_bytes(4), random32=counter32(4)),
    )
    wire.server.open(0.0)
    wire.client.open(0.0)
    for _ in range(20):  # step until the server has just entered the Network phase
        frames_s, _ = wire.server.drain()
        frames_c, _ = wire.client.drain()
        for frame in frames_c:
            wire.server.receive_frame(frame, 0.0)
        if wire.server.phase is Phase.NETWORK:
            break
        for frame in frames_s:
            wire.client.receive_frame(frame, 0.0)
    assert wire.server.phase is Phase.NETWORK
    wire.server.drain()
    request = ControlPacket(Code.CONFIGURE_REQUEST, 77, bytes.fromhex("030600000000")).encode()
    wire.server.receive_frame(encode_frame(Protocol.IPCP, request), 0.0)
    frames, _ = wire.server.drain()
    [reply] = control(frames, Protocol.IPCP)
    assert (reply.code, reply.identifier) == (Code.CONFIGURE_NAK, 77)
    assert reply.data == bytes.fromhex("0306c0a800ea")


def test_malformed_frames_and_packets_are_logged_and_dropped() -> None:
    wire = connect(server_config(), client_config())
    for frame in (b"", b"\xff\x03", b"\xff\x03\xc0", b"\x80\x20", b"\xc0\x21\x01\x01\x00\x09\x01", b"\xc0\x21\x01"):
        wire.server.receive_frame(frame, wire.now)
    frames, events = wire.server.drain()
    assert frames == [] and len(of(events, LinkLog)) == 6
    assert wire.server.lcp.state is State.OPENED and wire.server.network_up is not None


# -- termination --------------------------------------------------------------------------------------


def test_server_close_terminates_both_ends() -> None:
    wire = connect(server_config(), client_config())
    wire.server.close(wire.now, "SIGTERM")
    wire.exchange()
    wire.advance(10)
    assert [e.reason for e in of(wire.server_events, LinkDown)] == ["SIGTERM"]
    assert [e.reason for e in of(wire.client_events, LinkDown)] == ["LCP terminated by peer"]
    assert of(wire.server_events, NetworkDown) and of(wire.client_events, NetworkDown)
    assert phases(wire.server_events)[-2:] == [Phase.TERMINATE, Phase.DEAD]


def test_client_close_terminates_both_ends() -> None:
    wire = connect(server_config(), client_config())
    wire.client.close(wire.now, "user hang-up")
    wire.exchange()
    wire.advance(10)
    assert [e.reason for e in of(wire.server_events, LinkDown)] == ["LCP terminated by peer"]
    assert wire.server.next_deadline() is None and wire.client.next_deadline() is None


def test_lower_layer_down_ends_the_link_at_once() -> None:
    wire = connect(server_config(), client_config())
    wire.server.lower_down(wire.now, "TCP connection closed")
    frames, events = wire.server.drain()
    assert frames == []
    assert [e.reason for e in of(events, LinkDown)] == ["TCP connection closed"]
    assert wire.server.phase is Phase.DEAD and wire.server.next_deadline() is None


def test_lcp_renegotiation_in_network_phase_goes_back_to_establish_and_reauthenticates() -> None:
    wire = connect(server_config(), client_config())
    wire.client.renegotiate(wire.now)  # a fresh LCP Configure-Request in the Network phase
    wire.exchange()
    assert of(wire.server_events, NetworkDown)
    assert phases(wire.server_events)[-3:] == [Phase.ESTABLISH, Phase.AUTHENTICATE, Phase.NETWORK]
    assert len(of(wire.server_events, NetworkUp)) == 2
    assert len([a for a in of(wire.server_events, Authenticated) if a.result.success]) == 2


# -- LCP echo keepalive ------------------------------------------------------------------------------


def test_echo_keepalive_keeps_a_live_peer_and_drops_a_silent_one() -> None:
    wire = connect(server_config(echo_interval=30.0, echo_failure=3), client_config())
    wire.advance(300, step=5)
    echoes = [p for p in control(wire.to_client, Protocol.LCP) if p.code == Code.ECHO_REQUEST]
    assert len(echoes) == 10 and of(wire.server_events, LinkDown) == []
    wire.drop_to_server = True
    wire.advance(200, step=5)
    [down] = of(wire.server_events, LinkDown)
    assert down.reason == "Peer not responding"
    lines = [e.message for e in of(wire.server_events, LinkLog)]
    failed = lines.index("No response to 3 echo-requests")
    assert lines[failed + 1] == "Serial link appears to be disconnected."  # pppd's LcpLinkFailure, in order


# -- robustness ----------------------------------------------------------------------------------------

_PROTOCOLS = [Protocol.LCP, Protocol.PAP, Protocol.CHAP, Protocol.IPCP, Protocol.IPV6CP, Protocol.CCP, 0x0021, 0x8207]


@settings(max_examples=300, deadline=None)
@given(
    stage=st.sampled_from(["fresh", "network"]),
    frames=st.lists(
        st.one_of(
            st.binary(max_size=64),
            st.tuples(st.sampled_from(_PROTOCOLS), st.integers(1, 15), st.integers(0, 255), st.binary(max_size=40)).map(
                lambda t: encode_frame(
                    t[0], ControlPacket(t[1], t[2], t[3]).encode() if t[0] != 0x0021 else t[3], acfc=bool(t[2] & 1)
                )
            ),
        ),
        max_size=12,
    ),
)
def test_random_frames_never_raise_out_of_the_engine(stage: str, frames: list[bytes]) -> None:
    if stage == "fresh":
        link = PppLink(server_config(), secrets=SECRETS, random_bytes=rng_bytes(1), random32=counter32(1))
        link.open(0.0)
    else:
        link = connect(server_config(), client_config()).server
    for i, frame in enumerate(frames):
        link.receive_frame(frame, float(i))
        link.handle_timer(float(i) + 0.5)
        link.drain()
    assert link.phase in Phase


# -- the malformed PPP frames of tcpdump's fuzz captures ------------------------------------------------

FUZZ_CAPTURES = [
    "tcpdump_tests_ppp-invalid-lengths.pcap",
    "tcpdump_tests_ppp_ccp_config_deflate_option_asan.pcap",
    "tcpdump_tests_ppp_error_hexdump.pcap",
]


def pcap_ppp_frames(path: Path) -> list[bytes]:
    """PPP frames of a classic pcap file: DLT_PPP (9) and PPP-in-HDLC (50) as they are, Ethernet (1)
    from byte 14 on (the capture carries PPP under EtherType 0x880B)."""
    data = path.read_bytes()
    assert data[:4] == b"\xd4\xc3\xb2\xa1", f"{path.name}: not a little-endian pcap"
    link_type = struct.unpack_from("<I", data, 20)[0]
    frames, offset = [], 24
    while offset + 16 <= len(data):
        captured = struct.unpack_from("<I", data, offset + 8)[0]
        frame = data[offset + 16 : offset + 16 + captured]
        offset += 16 + captured
        frames.append(frame[14:] if link_type == 1 else frame)
    return frames


@pytest.mark.parametrize("name", FUZZ_CAPTURES)
def test_tcpdump_fuzz_frames_are_rejected_cleanly(name: str) -> None:
    frames = pcap_ppp_frames(fixtures.capture(name))
    assert frames
    wire = connect(server_config(), client_config())
    for frame in frames:
        for cut in (len(frame), 64, 8):  # whole, and truncated as a short read would leave it
            wire.server.receive_frame(frame[:cut], wire.now)
    out, events = wire.server.drain()
    assert of(events, LinkLog), "each bad frame leaves a line in the log"
    assert of(events, LinkDown) == [] and wire.server.network_up is not None
    for reply in out:  # whatever we answered is itself well formed
        _, offset = parse_frame(reply)
        decode_packet(reply[offset:])
