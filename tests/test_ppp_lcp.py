"""LCP option handling with the Windows 10 and pptp-linux option sets (spec README, ppp.md section 7)."""

from __future__ import annotations

import itertools

from pypptp.ppp.fsm import Automaton, Verdict
from pypptp.ppp.fsm_table import State
from pypptp.ppp.lcp import AUTH_MSCHAP_V1, AUTH_MSCHAP_V2, AUTH_PAP, LcpConfig, LcpOptions
from pypptp.ppp.packet import Code, ControlPacket, encode_options, parse_options
from tests.ppp_helpers import pump

LCP = 0xC021


def handler(config: LcpConfig | None = None, seed: int = 1) -> LcpOptions:
    counter = itertools.count(seed * 0x01010101)
    return LcpOptions(config, random32=lambda: next(counter))


def opts(hex_text: str) -> list[tuple[int, bytes]]:
    return parse_options(bytes.fromhex(hex_text))


WINDOWS_10 = "01040578 0506 1a2b3c4d 0702 0802 0d0306"
WINDOWS_MULTILINK = WINDOWS_10 + " 1104064e 1317 01" + "11" * 16 + "00000000"
PPTP_LINUX = "0206 00000000 0506 5e6f7a8b 0702 0802"


def test_our_server_request_is_mschapv2_magic_pfc_acfc() -> None:
    lcp = handler()
    assert encode_options(lcp.build_request()) == bytes.fromhex("0305c22381 0506 01010101 0702 0802")
    small = handler(LcpConfig(mru=1400))
    assert small.build_request()[0] == (1, b"\x05\x78")


def test_windows_10_first_request_loses_callback_then_is_acked() -> None:
    lcp = handler()
    verdict, options = lcp.judge_request(opts(WINDOWS_10), converge=False)
    assert verdict is Verdict.REJECT and options == [(13, b"\x06")]
    retry = opts("01040578 0506 1a2b3c4d 0702 0802")
    assert lcp.judge_request(retry, converge=False) == (Verdict.ACK, retry)
    assert (lcp.peer_mru, lcp.peer_magic, lcp.peer_pfc, lcp.peer_acfc) == (1400, 0x1A2B3C4D, True, True)


def test_windows_with_multilink_loses_callback_mrru_and_endpoint_discriminator() -> None:
    verdict, options = handler().judge_request(opts(WINDOWS_MULTILINK), converge=False)
    assert verdict is Verdict.REJECT and [kind for kind, _ in options] == [13, 17, 19]


def test_pptp_linux_request_is_acked_as_sent() -> None:
    options = opts(PPTP_LINUX)
    assert handler().judge_request(options, converge=False) == (Verdict.ACK, options)


def test_unknown_options_quality_and_link_discriminator_are_rejected() -> None:
    verdict, options = handler().judge_request(opts("0404c025 17040001 6303aa"), converge=False)
    assert verdict is Verdict.REJECT and [kind for kind, _ in options] == [4, 23, 99]


def test_a_server_rejects_being_asked_to_authenticate() -> None:
    verdict, options = handler().judge_request(opts("0305c22381"), converge=False)
    assert verdict is Verdict.REJECT and options == [(3, AUTH_MSCHAP_V2)]


def test_magic_zero_or_ours_is_naked_with_a_fresh_value() -> None:
    lcp = handler()
    ours = lcp.our_magic.to_bytes(4, "big")
    verdict, options = lcp.judge_request([(5, ours)], converge=False)
    assert verdict is Verdict.NAK and options[0][0] == 5 and options[0][1] not in (ours, bytes(4))
    assert lcp.loopback_suspected
    verdict, _ = lcp.judge_request([(5, bytes(4))], converge=False)
    assert verdict is Verdict.NAK


def test_tiny_mru_is_naked_to_128_and_bad_lengths_are_fixed() -> None:
    assert handler().judge_request([(1, (64).to_bytes(2, "big"))], converge=False) == (
        Verdict.NAK,
        [(1, (128).to_bytes(2, "big"))],
    )
    verdict, options = handler().judge_request([(1, b"\x05")], converge=False)
    assert verdict is Verdict.NAK and options == [(1, (128).to_bytes(2, "big"))]
    verdict, _ = handler().judge_request([(7, b"\x01")], converge=False)
    assert verdict is Verdict.REJECT  # PFC carries no data


def test_converging_turns_naks_into_rejects_but_never_rejects_magic() -> None:
    lcp = handler()
    verdict, options = lcp.judge_request([(1, (64).to_bytes(2, "big")), (5, bytes(4))], converge=True)
    assert verdict is Verdict.REJECT and [kind for kind, _ in options] == [1]


def test_auth_nak_is_followed_only_to_an_allowed_method() -> None:
    lcp = handler(LcpConfig(auth_methods=(AUTH_PAP, AUTH_MSCHAP_V2)))
    assert lcp.our_auth == AUTH_PAP
    lcp.on_nak([(3, AUTH_MSCHAP_V2)])  # Windows 10 Naks PAP with MS-CHAPv2
    assert lcp.our_auth == AUTH_MSCHAP_V2 and not lcp.auth_refused
    lcp.on_nak([(3, AUTH_MSCHAP_V1)])  # not allowed, and no method after MS-CHAPv2: stop asking (pppd)
    assert lcp.our_auth is None and lcp.auth_refused and 3 not in dict(lcp.build_request())


def test_auth_nak_toward_a_refused_method_walks_down_our_preferences() -> None:
    """pppd's lcp_nakci: our next-preferred method, then none; the link then refuses the peer."""
    lcp = handler(LcpConfig(auth_methods=(AUTH_MSCHAP_V2, AUTH_MSCHAP_V1)))
    lcp.on_nak([(3, AUTH_PAP)])
    assert lcp.our_auth == AUTH_MSCHAP_V1 and not lcp.auth_refused
    lcp.on_nak([(3, AUTH_MSCHAP_V1)])  # our own method suggested back: nothing changes
    assert lcp.our_auth == AUTH_MSCHAP_V1 and not lcp.auth_refused
    lcp.on_nak([(3, bytes.fromhex("c22305"))])  # CHAP-MD5, refused
    assert lcp.our_auth is None and lcp.auth_refused
    lcp.on_nak([(3, AUTH_MSCHAP_V2)])  # once dropped, the option stays dropped in this negotiation
    assert lcp.our_auth is None
    lcp.reset()
    assert lcp.our_auth == AUTH_MSCHAP_V2 and not lcp.auth_refused


def test_rejections_of_our_options() -> None:
    lcp = handler(LcpConfig(mru=1400))
    lcp.on_reject([(5, b""), (7, b""), (8, b""), (1, b"")])
    assert lcp.build_request() == [(3, AUTH_MSCHAP_V2)]
    lcp.on_reject([(3, AUTH_MSCHAP_V2)])
    assert lcp.auth_refused and lcp.build_request() == []


def test_client_accepts_an_allowed_method_and_naks_others() -> None:
    client = handler(LcpConfig(server=False))
    assert client.build_request()[0][0] == 5  # a client does not ask for authentication
    assert client.judge_request([(3, AUTH_MSCHAP_V2)], converge=False)[0] is Verdict.ACK
    assert client.peer_auth == AUTH_MSCHAP_V2
    assert client.judge_request([(3, AUTH_PAP)], converge=False) == (Verdict.NAK, [(3, AUTH_MSCHAP_V2)])


def _opened_pair() -> tuple[Automaton, Automaton]:
    server = Automaton("lcp", handler(LcpConfig(mru=1400), 1), protocol=LCP)
    client = Automaton("lcp", handler(LcpConfig(server=False), 7), protocol=LCP)
    for automaton in (server, client):
        automaton.open(0.0)
        automaton.up(0.0)
    pump(server, client, 0.0)
    return server, client


def test_server_and_client_negotiate_to_opened() -> None:
    server, client = _opened_pair()
    assert server.state is client.state is State.OPENED
    assert client.handler.peer_auth == AUTH_MSCHAP_V2  # type: ignore[attr-defined]
    assert client.handler.peer_mru == 1400 and server.handler.peer_pfc  # type: ignore[attr-defined]


def test_echo_identification_unknown_codes_and_protocol_reject_in_opened() -> None:
    server, _ = _opened_pair()
    lcp: LcpOptions = server.handler  # type: ignore[assignment]
    server.receive(ControlPacket(Code.ECHO_REQUEST, 9, b"\x00\x00\x00\x07data"), 1.0)
    [reply] = server.drain()[0]
    assert reply == ControlPacket(Code.ECHO_REPLY, 9, lcp.our_magic.to_bytes(4, "big") + b"data")
    server.receive(ControlPacket(Code.IDENTIFICATION, 10, b"\x00\x00\x00\x07MSRASV5.20"), 1.0)
    server.receive(ControlPacket(Code.TIME_REMAINING, 11, bytes(8)), 1.0)
    server.receive(ControlPacket(Code.DISCARD_REQUEST, 12, bytes(4)), 1.0)
    assert server.drain() == ([], []) and server.state is State.OPENED
    server.receive(ControlPacket(77, 13, b"x"), 1.0)
    [code_reject] = server.drain()[0]
    assert code_reject.code == Code.CODE_REJECT and code_reject.data == ControlPacket(77, 13, b"x").encode()
    server.receive(ControlPacket(Code.PROTOCOL_REJECT, 14, b"\x80\x57" + b"ipv6cp"), 1.0)
    assert server.state is State.OPENED and server.rejected_protocols == [0x8057]
    server.receive(ControlPacket(Code.PROTOCOL_REJECT, 15, b"\xc0\x21"), 1.0)
    assert server.state is State.STOPPING  # LCP itself rejected: fatal (RXJ-)


def test_after_max_failure_the_peers_own_options_are_rejected_unmodified() -> None:
    """RFC 1661 section 5.4: the Reject carries the options as the peer sent them, in its order."""
    lcp = handler(LcpConfig(server=False, auth_methods=(AUTH_MSCHAP_V2,)))
    request = opts("0104 0040 0304c023 0506 01020304 0d0306")
    verdict, options = lcp.judge_request(request, converge=False)
    assert verdict is Verdict.REJECT and options == [(13, b"\x06")]
    verdict, options = lcp.judge_request(request[:3], converge=False)
    assert verdict is Verdict.NAK and options == [(1, b"\x00\x80"), (3, AUTH_MSCHAP_V2)]
    verdict, options = lcp.judge_request(request, converge=True)
    assert verdict is Verdict.REJECT and options == [(1, b"\x00\x40"), (3, b"\xc0\x23"), (13, b"\x06")]
