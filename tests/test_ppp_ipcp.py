"""IPCP option handling with the Windows and pptp-linux exchanges (ipcp.md section 3.1, lab README item 8)."""

from __future__ import annotations

from ipaddress import IPv4Address

from hypothesis import given, settings
from hypothesis import strategies as st

from pypptp.ppp.fsm import Automaton, FsmConfig, Options, Verdict
from pypptp.ppp.fsm_table import State
from pypptp.ppp.ipcp import IpcpConfig, IpcpOptions
from pypptp.ppp.packet import Code, ControlPacket, encode_options, parse_options
from pypptp.ppp.secrets import parse_secrets
from tests.ppp_helpers import pump

IPCP = 0x8021
SERVER_ADDRESS = IPv4Address("192.168.10.20")
ASSIGNED = IPv4Address("192.168.10.21")
DNS = (IPv4Address("8.8.8.8"), IPv4Address("8.8.4.4"))
WINS = (IPv4Address("192.168.10.2"),)
SERVER = IpcpConfig(local_address=SERVER_ADDRESS, peer_address=ASSIGNED)
WITH_DNS = IpcpConfig(local_address=SERVER_ADDRESS, peer_address=ASSIGNED, dns=DNS)

WINDOWS_FIRST = "0306 00000000 8106 00000000 8206 00000000 8306 00000000 8406 00000000"
PPTP_LINUX = "0206 002d0f01 0306 00000000"


def opts(hex_text: str) -> Options:
    return parse_options(bytes.fromhex(hex_text))


def judge(ipcp: IpcpOptions, hex_text: str, converge: bool = False) -> tuple[Verdict, Options]:
    return ipcp.judge_request(opts(hex_text), converge)


# -- the server's request --------------------------------------------------------------------------


def test_server_requests_its_address_and_never_vj() -> None:
    assert encode_options(IpcpOptions(SERVER).build_request()) == bytes.fromhex("0306 c0a80a14")
    assert IpcpOptions(IpcpConfig(peer_address=ASSIGNED)).build_request() == []  # no localip: no option 3


def test_server_keeps_its_address_when_naked_and_drops_it_when_rejected() -> None:
    ipcp = IpcpOptions(SERVER)
    ipcp.on_nak(opts("0306 0a000001 8106 01010101"))
    assert encode_options(ipcp.build_request()) == bytes.fromhex("0306 c0a80a14")
    ipcp.on_reject(opts("0306 c0a80a14"))
    assert ipcp.build_request() == []
    ipcp.on_ack([])
    assert ipcp.local_address is None
    ipcp.reset()  # a fresh negotiation asks again
    assert ipcp.build_request() == [(3, SERVER_ADDRESS.packed)]


# -- the peer's request, as Windows and pptp-linux send it --------------------------------------------


def test_windows_exchange_of_ipcp_md_3_1_step_by_step() -> None:
    """pppd/pptpd without ms-dns or ms-wins against a Windows client."""
    ipcp = IpcpOptions(SERVER)
    # steps 1-4: our request (without VJ, so the client's Reject of VJ never happens) is Acked
    request = ipcp.build_request()
    ipcp.on_ack(request)
    assert ipcp.local_address == SERVER_ADDRESS
    # steps 5-6: the four name-server options are Rejected, the address is not Nak'd yet
    assert judge(ipcp, WINDOWS_FIRST) == (Verdict.REJECT, opts(WINDOWS_FIRST)[1:])
    # steps 7-8: Nak with the assigned address, byte for byte as in the log
    verdict, options = ipcp.judge_request(opts("0306 00000000"), converge=False)
    assert verdict is Verdict.NAK
    nak = ControlPacket(verdict.value, 8, encode_options(options))
    assert nak.encode() == bytes.fromhex("03 08 00 0a 03 06 c0 a8 0a 15")
    # steps 9-10: Ack
    assert judge(ipcp, "0306 c0a80a15") == (Verdict.ACK, opts("0306c0a80a15"))
    assert ipcp.peer_address == ASSIGNED and ipcp.peer_address_allowed()


def test_windows_10_with_ms_dns_loses_wins_then_gets_address_and_dns() -> None:
    """The accel-ppp Windows 10 pattern: Reject wins1/wins2, Nak addr + dns1/dns2, Ack."""
    ipcp = IpcpOptions(WITH_DNS)
    assert judge(ipcp, WINDOWS_FIRST) == (Verdict.REJECT, opts("820600000000840600000000"))
    second = "0306 00000000 8106 00000000 8306 00000000"
    assert judge(ipcp, second) == (Verdict.NAK, opts("0306c0a80a15 8106 08080808 8306 08080404"))
    third = "0306 c0a80a15 8106 08080808 8306 08080404"
    assert judge(ipcp, third) == (Verdict.ACK, opts(third))
    assert ipcp.peer_address == ASSIGNED
    assert ipcp.peer_dns == () and ipcp.peer_wins == ()  # the server learns no name servers


def test_one_dns_server_rejects_the_secondary_and_wins_servers_are_naked() -> None:
    one_dns = IpcpOptions(IpcpConfig(local_address=SERVER_ADDRESS, peer_address=ASSIGNED, dns=DNS[:1]))
    assert judge(one_dns, WINDOWS_FIRST) == (Verdict.REJECT, opts("820600000000830600000000840600000000"))
    everything = IpcpOptions(IpcpConfig(peer_address=ASSIGNED, dns=DNS, wins=(*WINS, WINS[0] + 1)))
    verdict, options = everything.judge_request(opts(WINDOWS_FIRST), converge=False)
    assert verdict is Verdict.NAK  # everything configured: one round
    assert options == [
        (3, ASSIGNED.packed),
        (129, DNS[0].packed),
        (130, WINS[0].packed),
        (131, DNS[1].packed),
        (132, (WINS[0] + 1).packed),
    ]


def test_pptp_linux_loses_vj_then_gets_its_address() -> None:
    ipcp = IpcpOptions(SERVER)
    assert judge(ipcp, PPTP_LINUX) == (Verdict.REJECT, opts("0206002d0f01"))
    assert judge(ipcp, "0306 00000000") == (Verdict.NAK, opts("0306c0a80a15"))
    assert judge(ipcp, "0306 c0a80a15") == (Verdict.ACK, opts("0306c0a80a15"))


def test_deprecated_addresses_compression_unknown_and_wrong_lengths_are_rejected() -> None:
    request = "010a 0a000001 0a000002  0204 002d  0305 000000  8107 00000000 00  6302  0306 00000000"
    verdict, options = IpcpOptions(WITH_DNS).judge_request(opts(request), converge=False)
    assert verdict is Verdict.REJECT
    assert [kind for kind, _ in options] == [1, 2, 3, 129, 99]  # never the good option 3


def test_a_foreign_address_is_naked_with_the_assigned_one_even_when_converging() -> None:
    ipcp = IpcpOptions(WITH_DNS)
    assert judge(ipcp, "0306 0a000063") == (Verdict.NAK, opts("0306c0a80a15"))
    assert not ipcp.address_refused
    # after Max-Failure: the DNS Nak becomes a Reject (sent alone), option 3 is still Nak'd
    assert judge(ipcp, "0306 0a000063 8106 01010101", converge=True) == (Verdict.REJECT, opts("810601010101"))
    assert judge(ipcp, "0306 0a000063 8106 08080808", converge=True) == (Verdict.NAK, opts("0306c0a80a15"))
    assert ipcp.address_refused  # the layer above closes IPCP
    ipcp.reset()
    assert not ipcp.address_refused


def test_name_servers_equal_to_ours_are_acked_others_naked() -> None:
    ipcp = IpcpOptions(WITH_DNS)
    acked = "0306 c0a80a15 8106 08080808"
    assert judge(ipcp, acked) == (Verdict.ACK, opts(acked))
    assert judge(ipcp, "0306 c0a80a15 8306 01010101") == (Verdict.NAK, opts("830608080404"))


def test_an_omitted_address_is_appended_to_naks_and_asked_for_once() -> None:
    """RFC 1332 section 3.3 as pppd's ipcp_reqci does it."""
    ipcp = IpcpOptions(WITH_DNS)
    assert judge(ipcp, "8106 00000000") == (Verdict.NAK, opts("810608080808 0306c0a80a15"))
    assert judge(ipcp, "8106 08080808") == (Verdict.NAK, opts("0306c0a80a15"))  # would be Acked: Nak once
    assert judge(ipcp, "8106 08080808") == (Verdict.ACK, opts("810608080808"))
    assert ipcp.peer_address == ASSIGNED  # used even though the peer never named it
    assert judge(IpcpOptions(WITH_DNS), "8206 00000000") == (Verdict.REJECT, opts("820600000000"))  # Rejects alone
    assert judge(IpcpOptions(WITH_DNS), "", converge=True) == (Verdict.ACK, opts(""))  # no hint after Max-Failure


def test_a_server_with_no_address_to_give() -> None:
    policy = parse_secrets("u s pw 198.18.0.0/24\n").records[0].addresses
    anyone = IpcpOptions(IpcpConfig(local_address=SERVER_ADDRESS))
    assert judge(anyone, "0306 00000000") == (Verdict.REJECT, opts("030600000000"))  # nothing to Nak with
    assert judge(anyone, "0306 7f000001") == (Verdict.REJECT, opts("03067f000001"))  # loopback
    assert judge(anyone, "0306 c0a80105") == (Verdict.ACK, opts("0306c0a80105"))
    assert anyone.peer_address == IPv4Address("192.168.1.5") and anyone.peer_address_allowed()
    restricted = IpcpOptions(IpcpConfig(local_address=SERVER_ADDRESS, allowed=policy))
    assert judge(restricted, "0306 c0a80105")[0] is Verdict.REJECT
    assert judge(restricted, "0306 c6120005")[0] is Verdict.ACK
    assert judge(restricted, "")[0] is Verdict.ACK  # no hint: nothing to suggest
    assert restricted.peer_address is None and not restricted.peer_address_allowed()


def test_peer_address_allowed_follows_the_chap_secrets_record() -> None:
    policy = parse_secrets("u s pw 192.168.10.0/24+ 198.19.1.1\n").records[0].addresses
    unit_3 = IpcpOptions(IpcpConfig(peer_address=IPv4Address("192.168.10.4"), allowed=policy, unit=3))
    assert judge(unit_3, "0306 c0a80a04")[0] is Verdict.ACK and unit_3.peer_address_allowed()
    elsewhere = IpcpOptions(IpcpConfig(peer_address=IPv4Address("198.19.0.9"), allowed=policy))
    assert judge(elsewhere, "0306 c6130009")[0] is Verdict.ACK and not elsewhere.peer_address_allowed()
    loopback = IpcpOptions(IpcpConfig(peer_address=IPv4Address("127.0.0.2")))
    assert judge(loopback, "0306 7f000002")[0] is Verdict.ACK and not loopback.peer_address_allowed()
    assert not IpcpOptions(SERVER).peer_address_allowed()  # nothing negotiated yet


def test_more_than_two_name_servers_is_a_configuration_error() -> None:
    try:
        IpcpConfig(dns=(*DNS, DNS[0]))
    except ValueError:
        pass
    else:
        raise AssertionError("three DNS servers accepted")


# -- the client side ----------------------------------------------------------------------------------


def test_client_requests_like_pptp_linux_and_windows() -> None:
    assert encode_options(IpcpOptions(IpcpConfig(server=False)).build_request()) == bytes.fromhex("0306 00000000")
    usepeerdns = IpcpOptions(IpcpConfig(server=False, request_dns=True))
    assert encode_options(usepeerdns.build_request()) == bytes.fromhex("0306 00000000 8106 00000000 8306 00000000")
    windows = IpcpOptions(IpcpConfig(server=False, request_dns=True, request_wins=True))
    assert encode_options(windows.build_request()) == bytes.fromhex(WINDOWS_FIRST)
    pptp_linux = IpcpOptions(IpcpConfig(server=False, request_vj=True))
    assert encode_options(pptp_linux.build_request()) == bytes.fromhex(PPTP_LINUX)
    pptp_linux.on_reject(opts("0206 002d0f01"))
    assert encode_options(pptp_linux.build_request()) == bytes.fromhex("0306 00000000")
    assert IpcpOptions(IpcpConfig(request_vj=True)).build_request() == []  # a server never asks for VJ
    fixed = IpcpOptions(IpcpConfig(server=False, local_address=IPv4Address("198.18.0.7")))
    assert fixed.build_request() == [(3, IPv4Address("198.18.0.7").packed)]


def test_client_adopts_usable_suggestions_only() -> None:
    client = IpcpOptions(IpcpConfig(server=False, request_dns=True))
    for bad in ("00000000", "7f000001", "e0000001", "ffffffff"):
        client.on_nak(opts(f"0306 {bad} 8106 {bad}"))
        assert encode_options(client.build_request()) == bytes.fromhex("0306 00000000 8106 00000000 8306 00000000")
    client.on_nak(opts("0306 c0a80a15 8106 08080808 8306 08080404 8206 01020304 0305 000000"))
    assert encode_options(client.build_request()) == bytes.fromhex("0306 c0a80a15 8106 08080808 8306 08080404")
    client.on_reject(opts("8306 08080404"))
    request = client.build_request()
    assert [kind for kind, _ in request] == [3, 129]
    client.on_ack(request)
    assert client.local_address == ASSIGNED and client.peer_dns == (DNS[0],) and client.peer_wins == ()


def test_client_acks_the_server_address_and_rejects_the_rest() -> None:
    client = IpcpOptions(IpcpConfig(server=False))
    assert judge(client, "0306 c0a80a14") == (Verdict.ACK, opts("0306c0a80a14"))
    assert client.peer_address == SERVER_ADDRESS
    assert judge(client, "0306 00000000") == (Verdict.REJECT, opts("030600000000"))  # no address to give
    assert judge(client, "0206 002d0f01 0306 c0a80a14") == (Verdict.REJECT, opts("0206002d0f01"))  # pppd's VJ
    assert judge(client, "8106 00000000", converge=True) == (Verdict.REJECT, opts("810600000000"))


# -- full negotiations ---------------------------------------------------------------------------------


def _negotiate(server_config: IpcpConfig, client_config: IpcpConfig) -> tuple[Automaton, Automaton]:
    server = Automaton("ipcp", IpcpOptions(server_config), protocol=IPCP)
    client = Automaton("ipcp", IpcpOptions(client_config), protocol=IPCP)
    for automaton in (server, client):
        automaton.open(0.0)
        automaton.up(0.0)
    pump(server, client, 0.0)
    return server, client


def test_windows_like_client_learns_its_address_and_dns_and_the_server_nothing_else() -> None:
    server, client = _negotiate(WITH_DNS, IpcpConfig(server=False, request_dns=True, request_wins=True))
    assert server.state is client.state is State.OPENED
    theirs: IpcpOptions = client.handler  # type: ignore[assignment]
    ours: IpcpOptions = server.handler  # type: ignore[assignment]
    assert (theirs.local_address, theirs.peer_address) == (ASSIGNED, SERVER_ADDRESS)
    assert theirs.peer_dns == DNS and theirs.peer_wins == ()
    assert (ours.local_address, ours.peer_address) == (SERVER_ADDRESS, ASSIGNED)
    assert ours.peer_dns == () and ours.peer_wins == () and ours.peer_address_allowed()
    assert not server.anomalies and not client.anomalies


def test_pptp_linux_like_client_without_usepeerdns() -> None:
    server, client = _negotiate(WITH_DNS, IpcpConfig(server=False, request_vj=True))
    assert server.state is client.state is State.OPENED
    assert client.handler.local_address == ASSIGNED  # type: ignore[attr-defined]
    assert client.handler.peer_dns == ()  # type: ignore[attr-defined]


def test_windows_like_client_against_a_server_without_name_servers() -> None:
    server, client = _negotiate(SERVER, IpcpConfig(server=False, request_dns=True, request_wins=True))
    assert server.state is client.state is State.OPENED
    assert client.handler.local_address == ASSIGNED  # type: ignore[attr-defined]
    assert client.handler.peer_dns == client.handler.peer_wins == ()  # type: ignore[attr-defined]


def test_unknown_codes_are_code_rejected_in_opened() -> None:
    server, _ = _negotiate(SERVER, IpcpConfig(server=False))
    assert not server.handler.extra_code(ControlPacket(Code.ECHO_REQUEST, 1, bytes(4)))
    assert server.handler.echo_reply(ControlPacket(Code.ECHO_REQUEST, 1, bytes(4))) is None
    server.receive(ControlPacket(Code.ECHO_REQUEST, 40, bytes(4)), 1.0)
    [reply] = server.drain()[0]
    assert reply.code == Code.CODE_REJECT and server.state is State.OPENED


class StubbornClient(IpcpOptions):
    """Keeps asking for a foreign address whatever the server Naks (even when its automaton, from the
    Max-Failure-th Nak in a row, hands the Nak'd address over as Rejected)."""

    def on_nak(self, options: Options) -> None:
        pass

    def on_reject(self, options: Options) -> None:
        pass


def test_a_peer_that_keeps_asking_for_a_foreign_address_ends_bounded() -> None:
    config = FsmConfig()
    server = Automaton("ipcp", IpcpOptions(SERVER), config, protocol=IPCP)
    foreign = IpcpConfig(server=False, local_address=IPv4Address("198.19.9.9"))
    client = Automaton("ipcp", StubbornClient(foreign), config, protocol=IPCP)
    for automaton in (server, client):
        automaton.open(0.0)
        automaton.up(0.0)
    replies: list[ControlPacket] = []
    rounds = 0
    closed = False
    while rounds < 100:
        rounds += 1
        to_client, _ = server.drain()
        to_server, _ = client.drain()
        if not to_client and not to_server:
            break
        replies += [p for p in to_client if p.code in (Code.CONFIGURE_NAK, Code.CONFIGURE_REJECT)]
        for packet in to_client:
            client.receive(packet, 0.0)
        for packet in to_server:
            server.receive(packet, 0.0)
        if server.handler.address_refused and not closed:  # type: ignore[attr-defined]
            server.close(0.0)  # what the layer above does
            closed = True
    assert rounds < 20
    assert server.state in (State.CLOSING, State.CLOSED) and client.state is not State.OPENED
    assert len(replies) == config.max_failure + 1
    assert all(p == ControlPacket(Code.CONFIGURE_NAK, p.identifier, bytes.fromhex("0306c0a80a15")) for p in replies)


class NaksTheServerAddress(IpcpOptions):
    """A client that wants the server elsewhere: Naks its address, then Rejects it after Max-Failure."""

    def judge_request(self, options: Options, converge: bool) -> tuple[Verdict, Options]:
        if any(kind == 3 for kind, _ in options):
            return (Verdict.REJECT, [(3, SERVER_ADDRESS.packed)]) if converge else (Verdict.NAK, [(3, bytes(4))])
        return super().judge_request(options, converge)


def test_a_peer_naking_our_address_ends_with_a_reject_that_we_follow() -> None:
    server = Automaton("ipcp", IpcpOptions(SERVER), protocol=IPCP)
    client = Automaton("ipcp", NaksTheServerAddress(IpcpConfig(server=False)), protocol=IPCP)
    for automaton in (server, client):
        automaton.open(0.0)
        automaton.up(0.0)
    pump(server, client, 0.0, rounds=20)
    assert server.state is client.state is State.OPENED
    ours: IpcpOptions = server.handler  # type: ignore[assignment]
    assert ours.local_address is None and ours.peer_address == ASSIGNED
    assert client.handler.local_address == ASSIGNED  # type: ignore[attr-defined]


# -- robustness ----------------------------------------------------------------------------------------

_OPTION = st.tuples(
    st.sampled_from([1, 2, 3, 129, 130, 131, 132, 0, 4, 255]) | st.integers(0, 255), st.binary(max_size=10)
)
_CONFIGS = st.sampled_from(
    [
        SERVER,
        WITH_DNS,
        IpcpConfig(),
        IpcpConfig(local_address=SERVER_ADDRESS, allowed=parse_secrets("u s pw 198.18.0.0/8\n").records[0].addresses),
        IpcpConfig(server=False),
        IpcpConfig(server=False, request_dns=True, request_wins=True, request_vj=True),
    ]
)


@settings(max_examples=300, deadline=None)
@given(_CONFIGS, st.lists(st.lists(_OPTION, max_size=8), min_size=1, max_size=4), st.booleans())
def test_random_option_lists_never_raise(config: IpcpConfig, requests: list[Options], converge: bool) -> None:
    ipcp = IpcpOptions(config)
    for options in requests:
        verdict, reply = ipcp.judge_request(options, converge)
        if verdict is Verdict.ACK:
            assert reply == options
        elif verdict is Verdict.REJECT:
            remaining = iter(options)
            assert reply and all(option in remaining for option in reply)  # unmodified, in order
        else:
            assert reply and all(len(value) == 4 for _, value in reply)
        ipcp.on_nak(options)
        encode_options(ipcp.build_request())
        ipcp.on_reject(options)
        ipcp.on_ack(ipcp.build_request())
        ipcp.peer_address_allowed()
