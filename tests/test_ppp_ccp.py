"""CCP option handling for MPPE with the Windows and pptp-linux exchanges (ccp-mppe.md sections 1, 2, 8;
spec README "Windows and Linux client behaviour"; lab README item 7)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pypptp.ppp.ccp import (
    C_BIT,
    D_BIT,
    H_BIT,
    L_BIT,
    M_BIT,
    MPPE,
    S_BIT,
    CcpOptions,
    MppePolicy,
    describe_mppe,
)
from pypptp.ppp.fsm import Automaton, FsmConfig, Options, Verdict
from pypptp.ppp.fsm_table import State
from pypptp.ppp.packet import Code, ControlPacket, encode_options, parse_options
from tests.ppp_helpers import pump

CCP = 0x80FD
STATEFUL = MppePolicy(stateful=True)
ONLY_40 = MppePolicy(strengths=(40,))
UP_TO_56 = MppePolicy(strengths=(56, 40))
OPTIONAL = MppePolicy(required=False)
NOMPPE = MppePolicy(enabled=False)

WINDOWS = "1206 010000e0"  # H+M+S+L
WINDOWS_SOFTWARE_COMPRESSION = "1206 010000e1"  # ... + C
WINDOWS_BARE_H = "1206 01000000"
PPTP_LINUX = "1206 01000040"  # H+S, require-mppe-128
STATEFUL_128 = "1206 00000040"
DEFLATE, DEFLATE_DRAFT, BSD_COMPRESS, PREDICTOR_1 = "1a04 7800", "1804 7800", "1503 2f", "0102"


def opts(hex_text: str) -> Options:
    return parse_options(bytes.fromhex(hex_text))


def judge(ccp: CcpOptions, hex_text: str, converge: bool = False) -> tuple[Verdict, bytes]:
    verdict, options = ccp.judge_request(opts(hex_text), converge)
    return verdict, encode_options(options)


def request(ccp: CcpOptions) -> bytes:
    return encode_options(ccp.build_request())


def nak(hex_text: str) -> tuple[Verdict, bytes]:
    return Verdict.NAK, bytes.fromhex(hex_text)


def ack(hex_text: str) -> tuple[Verdict, bytes]:
    return Verdict.ACK, bytes.fromhex(hex_text)


def reject(hex_text: str) -> tuple[Verdict, bytes]:
    return Verdict.REJECT, bytes.fromhex(hex_text)


# -- constants ------------------------------------------------------------------------------------------


def test_bits_are_those_of_the_spec_table() -> None:
    assert (H_BIT, C_BIT, D_BIT, L_BIT, S_BIT, M_BIT, MPPE) == (0x01000000, 0x01, 0x10, 0x20, 0x40, 0x80, 18)
    assert describe_mppe(0x01000040) == "mppe +H -M +S -L -D -C"  # pppd's log form
    assert describe_mppe(0x010000E1) == "mppe +H +M +S +L -D +C"
    assert describe_mppe(0x80000010) == "mppe -H -M -S -L +D -C reserved=0x80000000"


# -- our request -------------------------------------------------------------------------------------------


def test_our_request_has_one_strength_bit_and_h_unless_stateful() -> None:
    assert request(CcpOptions()) == bytes.fromhex("120601000040")  # what pppd and accel-ppp servers send
    assert request(CcpOptions(MppePolicy(strengths=(40, 128)))) == bytes.fromhex("120601000040")  # strongest
    assert request(CcpOptions(UP_TO_56)) == bytes.fromhex("120601000080")
    assert request(CcpOptions(ONLY_40)) == bytes.fromhex("120601000020")
    assert request(CcpOptions(STATEFUL)) == bytes.fromhex("120600000040")
    assert CcpOptions(NOMPPE).build_request() == []


def test_the_peer_acking_our_request_sets_the_receiving_direction() -> None:
    ccp = CcpOptions()
    ccp.on_ack(ccp.build_request())
    assert (ccp.receive_bits, ccp.receive_stateful) == (128, False)
    stateful = CcpOptions(STATEFUL)
    stateful.on_ack(stateful.build_request())
    assert (stateful.receive_bits, stateful.receive_stateful) == (128, True)
    off = CcpOptions(NOMPPE)
    off.on_ack([])
    assert off.receive_bits is None and off.failed is None
    assert (ccp.send_bits, ccp.send_stateful) == (None, False)  # the other direction is untouched


def test_a_nak_with_an_allowed_strength_is_followed() -> None:
    both = CcpOptions(MppePolicy(strengths=(128, 40)))
    both.on_nak(opts("1206 01000020"))
    assert request(both) == bytes.fromhex("120601000020")
    stateful = CcpOptions(STATEFUL)  # we propose stateful; H back in the Nak is accepted
    stateful.on_nak(opts("1206 01000040"))
    assert request(stateful) == bytes.fromhex("120601000040") and stateful.failed is None
    dropped = CcpOptions(MppePolicy(strengths=(128, 40)))
    dropped.on_nak(opts("1206 01000021 1a04 7800"))  # C is dropped (never asked for), Deflate ignored
    assert request(dropped) == bytes.fromhex("120601000020") and dropped.failed is None


def test_a_stateful_proposal_to_a_stateless_policy_is_answered_by_asking_stateless_again() -> None:
    ccp = CcpOptions()
    ccp.on_nak(opts("1206 00000040"))
    assert ccp.failed is None and request(ccp) == bytes.fromhex("120601000040")


@pytest.mark.parametrize(
    ("policy", "suggestion", "reason"),
    [
        (MppePolicy(), "01000020", "peer wants mppe +H -M -S +L -D -C, which our policy does not allow"),
        (MppePolicy(), "010000e0", "peer wants mppe +H +M +S +L -D -C, which our policy does not allow"),
        (MppePolicy(), "01000000", "peer wants mppe +H -M -S -L -D -C, which our policy does not allow"),
        (MppePolicy(), "01000040", "peer Naks the mppe +H -M +S -L -D -C it suggested"),  # no progress
        (ONLY_40, "01000080", "peer wants mppe +H +M -S -L -D -C, which our policy does not allow"),
    ],
)
def test_a_nak_we_cannot_follow_fails_a_required_policy(policy: MppePolicy, suggestion: str, reason: str) -> None:
    ccp = CcpOptions(policy)
    ccp.on_nak(opts(f"1206 {suggestion}"))
    assert ccp.failed == reason
    assert ccp.build_request() == []  # we stop asking; the link closes LCP
    ccp.reset()
    assert ccp.failed is None and request(ccp) != b""


def test_a_nak_we_cannot_follow_means_no_mppe_our_way_when_optional() -> None:
    ccp = CcpOptions(OPTIONAL)
    ccp.on_nak(opts("1206 01000020"))
    assert ccp.failed is None and ccp.build_request() == []
    ccp.on_ack([])
    assert ccp.receive_bits is None


def test_a_reject_of_mppe_fails_a_required_policy_only() -> None:
    required = CcpOptions()
    required.on_reject(opts("1206 01000040"))
    assert required.failed == "peer rejected MPPE" and required.build_request() == []
    optional = CcpOptions(OPTIONAL)
    optional.on_reject(opts("1206 01000040"))
    assert optional.failed is None and optional.build_request() == []
    other = CcpOptions()
    other.on_reject(opts("1a04 7800"))  # never asked for: nothing changes
    assert other.failed is None and request(other) == bytes.fromhex("120601000040")


def test_reset_starts_afresh() -> None:
    ccp = CcpOptions()
    ccp.on_ack(ccp.build_request())
    ccp.on_reject(opts("1206 01000040"))
    assert ccp.failed == "peer rejected MPPE"
    ccp.reset()
    assert ccp.failed is None and ccp.receive_bits is None
    assert request(ccp) == bytes.fromhex("120601000040")


# -- the peer's request: Windows, pptp-linux, stateful offers ---------------------------------------------


def test_windows_first_request_is_naked_to_128_bit_stateless_then_acked() -> None:
    """ccp-mppe.md section 2.1: ConfReq +H +M +S +L, Nak +H +S, ConfReq +H +S, Ack."""
    ccp = CcpOptions()
    verdict, options = ccp.judge_request(opts(WINDOWS), converge=False)
    packet = ControlPacket(verdict.value, 4, encode_options(options))
    assert packet.encode() == bytes.fromhex("03 04 000a 1206 01000040")
    assert ccp.send_bits is None
    assert judge(ccp, "1206 01000040") == ack("120601000040")
    assert (ccp.send_bits, ccp.send_stateful, ccp.failed) == (128, False, None)


def test_windows_with_software_compression_gets_the_same_nak() -> None:
    ccp = CcpOptions()
    assert judge(ccp, WINDOWS_SOFTWARE_COMPRESSION) == nak("120601000040")
    assert judge(ccp, "1206 01000040") == ack("120601000040")


def test_windows_bare_h_is_naked_with_the_strength_we_want() -> None:
    assert judge(CcpOptions(), WINDOWS_BARE_H) == nak("120601000040")
    assert judge(CcpOptions(ONLY_40), WINDOWS_BARE_H) == nak("120601000020")
    assert judge(CcpOptions(STATEFUL), WINDOWS_BARE_H) == nak("120601000040")  # H offered: kept


def test_pptp_linux_request_is_acked_at_once() -> None:
    ccp = CcpOptions()
    assert judge(ccp, PPTP_LINUX) == ack("120601000040")
    assert (ccp.send_bits, ccp.send_stateful) == (128, False)


def test_a_stateful_offer_is_acked_only_when_stateful_is_allowed() -> None:
    stateless = CcpOptions()
    assert judge(stateless, STATEFUL_128) == nak("120601000040")
    assert judge(stateless, "1206 01000040") == ack("120601000040")
    assert stateless.send_stateful is False
    stateful = CcpOptions(STATEFUL)
    assert judge(stateful, STATEFUL_128) == ack("120600000040")
    assert (stateful.send_bits, stateful.send_stateful) == (128, True)
    # pppd with mppe-stateful asks for stateless and goes stateful only when Nak'd: we propose it once
    assert judge(stateful, PPTP_LINUX) == nak("120600000040")
    assert judge(stateful, PPTP_LINUX) == ack("120601000040")  # the peer insists: stateless is acceptable
    assert stateful.send_stateful is False
    assert judge(CcpOptions(STATEFUL), "1206 000000e0") == nak("120600000040")  # stays stateful
    assert judge(CcpOptions(STATEFUL), WINDOWS) == nak("120601000040")


def test_a_peer_insisting_on_stateful_fails() -> None:
    ccp = CcpOptions()
    assert judge(ccp, "1206 00000060") == nak("120601000040")
    assert judge(ccp, STATEFUL_128) == reject("120600000040")
    assert ccp.failed == "peer insists on stateful MPPE (mppe -H -M +S -L -D -C), which we refuse"


def test_40_bit_only_policy() -> None:
    ccp = CcpOptions(ONLY_40)
    assert judge(ccp, WINDOWS) == nak("120601000020")
    assert judge(ccp, "1206 01000020") == ack("120601000020")
    assert (ccp.send_bits, ccp.send_stateful) == (40, False)
    strict = CcpOptions(ONLY_40)
    assert judge(strict, PPTP_LINUX) == nak("120601000020")  # no L offered: our strongest
    assert judge(strict, PPTP_LINUX) == nak("120601000020")  # the same offer again: maybe a retransmission
    assert strict.failed is None
    assert judge(strict, "1206 01000080") == reject("120601000080")  # something else, still nothing we allow
    assert strict.failed == "peer offers no MPPE key length we allow (mppe +H +M -S -L -D -C)"


def test_56_bit_policy() -> None:
    ccp = CcpOptions(UP_TO_56)
    assert judge(ccp, WINDOWS) == nak("120601000080")  # the strongest we allow that was offered
    assert judge(ccp, "1206 01000080") == ack("120601000080")
    assert ccp.send_bits == 56
    assert judge(CcpOptions(UP_TO_56), "1206 01000020") == ack("120601000020")  # 40 is allowed too
    assert judge(CcpOptions(UP_TO_56), PPTP_LINUX) == nak("120601000080")


def test_other_ccp_options_are_rejected_first_then_mppe_is_naked() -> None:
    ccp = CcpOptions()
    offer = f"{BSD_COMPRESS} {DEFLATE} {DEFLATE_DRAFT} {WINDOWS} {PREDICTOR_1} 0006 00000001 6302"
    assert judge(ccp, offer) == reject(f"{BSD_COMPRESS} {DEFLATE} {DEFLATE_DRAFT} {PREDICTOR_1} 0006 00000001 6302")
    assert judge(ccp, WINDOWS) == nak("120601000040")  # the Reject did not count as our Nak
    assert judge(ccp, PPTP_LINUX) == ack("120601000040")


def test_mppe_of_the_wrong_length_and_a_second_mppe_are_rejected() -> None:
    assert judge(CcpOptions(), "1205 010000") == reject("1205010000")
    assert judge(CcpOptions(), "1207 0100004000") == reject("12070100004000")
    assert judge(CcpOptions(), f"{PPTP_LINUX} {WINDOWS}") == reject("1206010000e0")


def test_after_max_failure_mppe_is_rejected_and_a_required_policy_fails() -> None:
    ccp = CcpOptions()
    assert judge(ccp, f"{WINDOWS} {DEFLATE}", converge=True) == reject(f"{WINDOWS} {DEFLATE}")
    assert ccp.failed == "MPPE not agreed after Max-Failure Naks; peer offers mppe +H +M +S +L -D -C"
    optional = CcpOptions(OPTIONAL)
    assert judge(optional, WINDOWS, converge=True) == reject("1206010000e0")
    assert optional.failed is None
    assert judge(optional, "", converge=True) == ack("")  # the peer then asks for nothing
    assert optional.send_bits is None and optional.failed is None
    acceptable = CcpOptions()
    assert judge(acceptable, PPTP_LINUX, converge=True) == ack("120601000040")
    assert acceptable.failed is None


def test_a_peer_that_does_not_ask_for_mppe() -> None:
    required = CcpOptions()
    assert judge(required, "") == ack("")  # nothing to Nak or Reject: it cannot decrypt
    assert required.send_bits is None and required.failed == "peer does not ask for MPPE"
    assert judge(required, PPTP_LINUX) == ack("120601000040")
    assert required.failed is None  # a later good request clears it
    optional = CcpOptions(OPTIONAL)
    assert judge(optional, "") == ack("") and optional.failed is None


def test_nomppe_asks_for_nothing_and_rejects_mppe() -> None:
    ccp = CcpOptions(NOMPPE)
    assert judge(ccp, f"{WINDOWS} {DEFLATE}") == reject(f"{WINDOWS} {DEFLATE}")
    assert judge(ccp, PPTP_LINUX) == reject(PPTP_LINUX)
    assert judge(ccp, "") == ack("")
    assert ccp.send_bits is None and ccp.failed is None
    ccp.on_nak(opts(PPTP_LINUX))  # a Nak suggesting MPPE changes nothing
    assert ccp.build_request() == []


# -- Reset-Request and Reset-Ack -----------------------------------------------------------------------------


def test_reset_request_is_answered_with_a_reset_ack() -> None:
    ccp = CcpOptions()
    assert ccp.extra_code(ControlPacket(Code.RESET_REQUEST, 1))
    assert ccp.extra_code(ControlPacket(Code.RESET_ACK, 1))
    assert not ccp.extra_code(ControlPacket(Code.ECHO_REQUEST, 1, bytes(4)))
    assert ccp.echo_reply(ControlPacket(Code.RESET_REQUEST, 77, b"junk")) == ControlPacket(Code.RESET_ACK, 77, b"")
    assert ccp.echo_reply(ControlPacket(Code.RESET_ACK, 78)) is None
    assert (ccp.reset_requests, ccp.reset_acks) == (1, 1)


# -- policies from pppd options ------------------------------------------------------------------------------


def test_policy_defaults_and_normalisation() -> None:
    assert MppePolicy() == MppePolicy(enabled=True, required=True, strengths=(128,), stateful=False)
    assert MppePolicy(strengths=(40, 128, 56)).strengths == (128, 56, 40)
    assert MppePolicy(enabled=False).required is False  # nomppe is never required
    assert MppePolicy(enabled=False, strengths=()).strengths == ()
    for bad in ((64,), (128, 128), ()):
        with pytest.raises(ValueError):
            MppePolicy(strengths=bad)


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        ([], MppePolicy()),
        (["require-mppe-128"], MppePolicy(strengths=(128,))),
        (["require-mppe"], MppePolicy(strengths=(128, 56, 40))),
        (["+mppe"], MppePolicy(strengths=(128, 56, 40))),
        (["require-mppe-40"], MppePolicy(strengths=(40,))),
        (["require-mppe-40", "require-mppe-128"], MppePolicy(strengths=(128, 40))),
        (["require-mppe", "require-mppe-128"], MppePolicy(strengths=(128,))),
        (["require-mppe", "refuse-mppe-40"], MppePolicy(strengths=(128, 56))),
        (["require-mppe", "nomppe-56", "-mppe-128"], MppePolicy(strengths=(40,))),
        (["require-mppe-56"], MppePolicy(strengths=(56,))),
        (["require-mppe-128", "refuse-mppe-40"], MppePolicy(strengths=(128,))),
        (["require-mppe-128", "mppe-stateful"], MppePolicy(stateful=True)),
        (["require-mppe-128", "nomppe-stateful"], MppePolicy()),
        (["nomppe"], MppePolicy(enabled=False, required=False)),
        (["-mppe", "refuse-mppe-40"], MppePolicy(enabled=False)),
        # options.pptpd as shipped, split into words: other pppd options are skipped
        (["name", "pptpd", "refuse-pap", "require-mschap-v2", "require-mppe-128", "ms-dns", "8.8.8.8"], MppePolicy()),
    ],
)
def test_policy_from_pppd_options(words: list[str], expected: MppePolicy) -> None:
    assert MppePolicy.from_pppd_options(words) == expected


@pytest.mark.parametrize(
    ("words", "message"),
    [
        (["refuse-mppe-128"], "'refuse-mppe-128' refuse every MPPE key length allowed (require-mppe-128 by default)"),
        (
            ["require-mppe", "refuse-mppe-40", "refuse-mppe-56", "refuse-mppe-128"],
            "'refuse-mppe-128' 'refuse-mppe-56' 'refuse-mppe-40' refuse every MPPE key length allowed ('require-mppe')",
        ),
        (["require-mppe-40", "refuse-mppe-40"], "'require-mppe-40' contradicts 'refuse-mppe-40'"),
        (["require-mppe-128", "nomppe"], "'nomppe' contradicts 'require-mppe-128'"),
        (["mppe-stateful", "nomppe-stateful"], "'mppe-stateful' contradicts 'nomppe-stateful'"),
        (["require-mppe-129"], "unknown MPPE option 'require-mppe-129'"),
    ],
)
def test_policy_from_contradictory_pppd_options(words: list[str], message: str) -> None:
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        MppePolicy.from_pppd_options(words)


# -- whole negotiations -----------------------------------------------------------------------------------------


class WindowsLike(CcpOptions):
    """Offers everything it supports first (H+M+S+L), as the Windows client does, then follows the Nak."""

    def reset(self) -> None:
        super().reset()
        self.request = H_BIT | M_BIT | S_BIT | L_BIT


def _automata(server: CcpOptions, client: CcpOptions, config: FsmConfig | None = None) -> tuple[Automaton, Automaton]:
    """Two CCP automata, opened and up."""
    a = Automaton("CCP", server, config, protocol=CCP)
    b = Automaton("CCP", client, config, protocol=CCP)
    for automaton in (a, b):
        automaton.open(0.0)
        automaton.up(0.0)
    return a, b


def _negotiate(server: CcpOptions, client: CcpOptions) -> tuple[Automaton, Automaton]:
    a, b = _automata(server, client)
    pump(a, b, 0.0)
    return a, b


def _run(server: Automaton, client: Automaton, seen: list[ControlPacket], limit: int = 100) -> int:
    """Like pump(), but records what the server received and returns the rounds used."""
    for rounds in range(1, limit + 1):
        to_client, _ = server.drain()
        to_server, _ = client.drain()
        if not to_client and not to_server:
            return rounds
        seen += to_server
        for packet in to_client:
            client.receive(packet, 0.0)
        for packet in to_server:
            server.receive(packet, 0.0)
    return limit + 1


def test_windows_like_client_against_our_server_ends_128_bit_stateless_both_ways() -> None:
    ours, windows = CcpOptions(), WindowsLike(MppePolicy(strengths=(128, 56, 40)))
    server, client = _automata(ours, windows)
    seen: list[ControlPacket] = []
    first_server_request = server.drain()[0]
    assert [p.data for p in first_server_request] == [bytes.fromhex("120601000040")]
    for packet in first_server_request:
        client.receive(packet, 0.0)
    _run(server, client, seen)
    assert server.state is client.state is State.OPENED
    requests = [p.data for p in seen if p.code == Code.CONFIGURE_REQUEST]
    assert requests == [bytes.fromhex("1206010000e0"), bytes.fromhex("120601000040")]
    assert (ours.send_bits, ours.send_stateful, ours.receive_bits, ours.receive_stateful) == (128, False, 128, False)
    assert (windows.send_bits, windows.send_stateful) == (128, False)
    assert (windows.receive_bits, windows.receive_stateful) == (128, False)
    assert ours.failed is None and windows.failed is None
    assert not server.anomalies and not client.anomalies


def test_pptp_linux_like_client_is_acked_at_once() -> None:
    ours, linux = CcpOptions(), CcpOptions()
    server, client = _automata(ours, linux)
    seen: list[ControlPacket] = []
    _run(server, client, seen)
    assert server.state is client.state is State.OPENED
    assert [p.code for p in seen] == [Code.CONFIGURE_REQUEST, Code.CONFIGURE_ACK]
    assert (ours.send_bits, ours.receive_bits, linux.send_bits, linux.receive_bits) == (128, 128, 128, 128)


def test_stateful_on_both_sides() -> None:
    ours, theirs = CcpOptions(STATEFUL), CcpOptions(STATEFUL)
    server, client = _negotiate(ours, theirs)
    assert server.state is client.state is State.OPENED
    assert (ours.send_bits, ours.send_stateful, ours.receive_bits, ours.receive_stateful) == (128, True, 128, True)
    assert (theirs.send_stateful, theirs.receive_stateful) == (True, True)


def test_stateful_peer_against_a_stateless_server_ends_stateless() -> None:
    ours, theirs = CcpOptions(), CcpOptions(STATEFUL)
    server, client = _negotiate(ours, theirs)
    assert server.state is client.state is State.OPENED
    assert not (ours.send_stateful or ours.receive_stateful or theirs.send_stateful or theirs.receive_stateful)
    assert (ours.send_bits, ours.receive_bits) == (128, 128)


def test_optional_server_and_a_nomppe_peer_open_without_mppe() -> None:
    ours, theirs = CcpOptions(OPTIONAL), CcpOptions(NOMPPE)
    server, client = _negotiate(ours, theirs)
    assert server.state is client.state is State.OPENED
    assert (ours.send_bits, ours.receive_bits, ours.failed, theirs.failed) == (None, None, None, None)


def test_no_shared_strength_fails_on_both_sides_in_bounded_rounds() -> None:
    ours, theirs = CcpOptions(MppePolicy(strengths=(128,))), CcpOptions(ONLY_40)
    server, client = _automata(ours, theirs)
    seen: list[ControlPacket] = []
    rounds = _run(server, client, seen)
    assert rounds < 10
    # each side Naks the other's request with its own strength, which the other cannot follow
    assert ours.failed == "peer wants mppe +H -M -S +L -D -C, which our policy does not allow"
    assert theirs.failed == "peer wants mppe +H -M +S -L -D -C, which our policy does not allow"
    # both then stop asking for MPPE: no encryption either way (the link has closed LCP by then)
    assert (ours.send_bits, ours.receive_bits, theirs.send_bits, theirs.receive_bits) == (None, None, None, None)
    nakked = [p.data for p in seen if p.code == Code.CONFIGURE_NAK]
    assert nakked == [bytes.fromhex("120601000020")]


def test_no_shared_strength_with_the_link_closing_ccp() -> None:
    """What the link does: close as soon as ``failed`` is set; nothing loops."""
    ours, theirs = CcpOptions(MppePolicy(strengths=(128,))), CcpOptions(ONLY_40)
    server, client = _automata(ours, theirs)
    for _ in range(20):
        to_client, _ = server.drain()
        to_server, _ = client.drain()
        if not to_client and not to_server:
            break
        for packet in to_client:
            client.receive(packet, 0.0)
        for packet in to_server:
            server.receive(packet, 0.0)
        for automaton in (server, client):
            if automaton.handler.failed and automaton.state not in (State.CLOSING, State.CLOSED):  # type: ignore[attr-defined]
                automaton.close(0.0)
    assert server.state in (State.CLOSING, State.CLOSED) and client.state in (State.CLOSING, State.CLOSED)


class Insistent(CcpOptions):
    """Ignores every Nak: keeps offering H+M+S+L (even when its automaton, from the Max-Failure-th Nak
    in a row, hands the Nak'd option 18 over as Rejected)."""

    def reset(self) -> None:
        super().reset()
        self.request = H_BIT | M_BIT | S_BIT | L_BIT

    def on_nak(self, options: Options) -> None:
        pass

    def on_reject(self, options: Options) -> None:
        pass


def test_a_peer_ignoring_our_naks_is_rejected_after_max_failure() -> None:
    config = FsmConfig()
    ours = CcpOptions()
    server, client = _automata(ours, Insistent(MppePolicy(strengths=(128, 56, 40))), config)
    replies: list[ControlPacket] = []
    for _ in range(30):
        to_client, _ = server.drain()
        to_server, _ = client.drain()
        if not to_client and not to_server:
            break
        replies += [p for p in to_client if p.code in (Code.CONFIGURE_NAK, Code.CONFIGURE_REJECT)]
        for packet in to_client:
            client.receive(packet, 0.0)
        for packet in to_server:
            server.receive(packet, 0.0)
        if ours.failed:
            replies += server.drain()[0]  # the Reject that goes with it
            break
    assert [p.code for p in replies] == [Code.CONFIGURE_NAK] * config.max_failure + [Code.CONFIGURE_REJECT]
    assert replies[-1].data == bytes.fromhex("1206010000e0")
    assert ours.failed == "MPPE not agreed after Max-Failure Naks; peer offers mppe +H +M +S +L -D -C"


def test_reset_request_gets_a_reset_ack_through_the_automaton_in_opened() -> None:
    ours = CcpOptions()
    server, _ = _negotiate(ours, CcpOptions())
    assert server.state is State.OPENED
    server.receive(ControlPacket(Code.RESET_REQUEST, 0x42, b""), 1.0)
    out, events = server.drain()
    assert out == [ControlPacket(Code.RESET_ACK, 0x42, b"")] and events == []
    assert ControlPacket(Code.RESET_ACK, 0x42).encode() == bytes.fromhex("0f 42 0004")
    server.receive(ControlPacket(Code.RESET_ACK, 0x43, b""), 1.0)
    assert server.drain() == ([], []) and server.state is State.OPENED
    assert (ours.reset_requests, ours.reset_acks) == (1, 1)
    server.receive(ControlPacket(Code.ECHO_REQUEST, 0x44, bytes(4)), 1.0)  # not a CCP code
    [code_reject] = server.drain()[0]
    assert code_reject.code == Code.CODE_REJECT and server.state is State.OPENED


def test_reset_request_before_opened_is_discarded() -> None:
    ours = CcpOptions()
    server = Automaton("CCP", ours, protocol=CCP)
    server.open(0.0)
    server.up(0.0)
    server.drain()
    server.receive(ControlPacket(Code.RESET_REQUEST, 1, b""), 0.0)
    assert server.drain() == ([], []) and ours.reset_requests == 0


def test_a_fresh_windows_offer_in_opened_renegotiates_and_keeps_results() -> None:
    """RCR in Opened is tld, scr, sca/scn: reset() runs after judge_request() and must keep its verdict."""
    ours, theirs = CcpOptions(), CcpOptions()
    server, _ = _negotiate(ours, theirs)
    server.receive(ControlPacket(Code.CONFIGURE_REQUEST, 50, bytes.fromhex(WINDOWS.replace(" ", ""))), 1.0)
    out, _ = server.drain()
    assert [(p.code, p.data) for p in out] == [
        (Code.CONFIGURE_REQUEST, bytes.fromhex("120601000040")),
        (Code.CONFIGURE_NAK, bytes.fromhex("120601000040")),
    ]
    server.receive(ControlPacket(Code.CONFIGURE_REQUEST, 51, bytes.fromhex("120601000040")), 1.0)
    server.receive(ControlPacket(Code.CONFIGURE_ACK, out[0].identifier, out[0].data), 1.0)
    assert server.state is State.OPENED
    assert (ours.send_bits, ours.receive_bits, ours.failed) == (128, 128, None)
    # and an empty request in Opened still reports the failure, although reset() ran after it
    server.receive(ControlPacket(Code.CONFIGURE_REQUEST, 52, b""), 2.0)
    assert ours.failed == "peer does not ask for MPPE"


# -- robustness ------------------------------------------------------------------------------------------------

_VALUES = st.sampled_from([0x01000040, 0x010000E0, 0x010000E1, 0x01000000, 0x40, 0x20, 0x80, 0x11, 0xFFFFFFFF])
_MPPE_OPTION = (_VALUES | st.integers(0, 0xFFFFFFFF)).map(lambda v: (MPPE, v.to_bytes(4, "big")))
_OPTION = _MPPE_OPTION | st.tuples(st.sampled_from([MPPE, 0, 1, 2, 21, 24, 26, 255]), st.binary(max_size=8))
_POLICIES = st.sampled_from([MppePolicy(), STATEFUL, ONLY_40, UP_TO_56, OPTIONAL, NOMPPE])


@settings(max_examples=300, deadline=None)
@given(_POLICIES, st.lists(st.lists(_OPTION, max_size=5), min_size=1, max_size=5), st.booleans())
def test_random_option_lists_never_raise(policy: MppePolicy, requests: list[Options], converge: bool) -> None:
    ccp = CcpOptions(policy)
    for options in requests:
        verdict, reply = ccp.judge_request(options, converge)
        if verdict is Verdict.ACK:
            assert reply == options
            assert ccp.send_bits is None or ccp.send_bits in policy.strengths
        elif verdict is Verdict.REJECT:
            remaining = iter(options)
            assert reply and all(option in remaining for option in reply)  # unmodified, in order
        else:
            [(kind, value)] = reply
            assert kind == MPPE and len(value) == 4
            nakked = int.from_bytes(value, "big")
            assert nakked & ~(H_BIT | S_BIT | M_BIT | L_BIT) == 0 and bin(nakked & 0xE0).count("1") == 1
        ccp.on_nak(options)
        request_options = ccp.build_request()
        assert len(request_options) <= 1
        encode_options(request_options)
        ccp.on_reject(options)
        ccp.on_ack(ccp.build_request())
        assert ccp.receive_bits is None or ccp.receive_bits in policy.strengths
        assert ccp.failed is None or policy.required
