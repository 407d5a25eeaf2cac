"""IPV6CP Interface-Identifier negotiation (RFC 5072 section 4.1, ipcp.md section 5)."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pypptp.ppp.fsm import Automaton, Options, Verdict
from pypptp.ppp.fsm_table import State
from pypptp.ppp.ipv6cp import Ipv6cpConfig, Ipv6cpOptions
from pypptp.ppp.packet import Code, ControlPacket
from tests.ppp_helpers import pump

IPV6CP = 0x8057
OURS = bytes.fromhex("0211223344556677")  # configured: the u/l bit may be set
THEIRS = bytes.fromhex("a0b0c0d0e0f00102")
ZERO = bytes(8)


def counting(start: int = 1) -> Callable[[int], bytes]:
    """A reproducible random source: distinct 8-byte values whose first byte varies."""
    counter = itertools.count(start)
    return lambda n: (next(counter) * 0x0301010101010101 % (1 << 64)).to_bytes(8, "big")[:n]


def handler(interface_id: bytes | None = OURS, start: int = 1) -> Ipv6cpOptions:
    return Ipv6cpOptions(Ipv6cpConfig(interface_id), random_bytes=counting(start))


def well_formed(identifier: bytes) -> bool:
    return len(identifier) == 8 and identifier != ZERO and not identifier[0] & 0x02


def test_a_random_identifier_is_non_zero_with_the_universal_local_bit_clear() -> None:
    ipv6cp = Ipv6cpOptions(random_bytes=lambda n: b"\xff" * n)
    assert ipv6cp.build_request() == [(1, bytes.fromhex("fdffffffffffffff"))]
    draws = iter([ZERO, bytes.fromhex("0200000000000000"), bytes.fromhex("0600000000000001")])
    skipping = Ipv6cpOptions(random_bytes=lambda n: next(draws))
    assert skipping.our_id == bytes.fromhex("0400000000000001")  # zero, then zero once the bit is cleared
    assert all(well_formed(Ipv6cpOptions().our_id) for _ in range(50))  # os.urandom


def test_a_broken_random_source_and_a_bad_configuration_raise() -> None:
    with pytest.raises(RuntimeError):
        Ipv6cpOptions(random_bytes=lambda n: bytes(n))
    with pytest.raises(ValueError):
        Ipv6cpConfig(bytes(7))


def test_configured_identifier_is_requested_as_is() -> None:
    assert handler().build_request() == [(1, OURS)]


# -- judging the peer's identifier (the table of RFC 5072 section 4.1) ----------------------------------


def test_different_non_zero_identifiers_are_acked() -> None:
    ipv6cp = handler()
    assert ipv6cp.judge_request([(1, THEIRS)], converge=False) == (Verdict.ACK, [(1, THEIRS)])
    assert ipv6cp.peer_id == THEIRS


def test_a_zero_identifier_is_naked_with_a_fresh_one_not_ours() -> None:
    ipv6cp = handler()
    verdict, [(kind, suggested)] = ipv6cp.judge_request([(1, ZERO)], converge=False)
    assert verdict is Verdict.NAK and kind == 1
    assert well_formed(suggested) and suggested != OURS


def test_a_collision_is_naked_with_a_different_identifier() -> None:
    ipv6cp = handler(None)
    ours = ipv6cp.our_id
    verdict, [(kind, suggested)] = ipv6cp.judge_request([(1, ours)], converge=False)
    assert verdict is Verdict.NAK and kind == 1 and well_formed(suggested) and suggested != ours


def test_both_zero_is_rejected() -> None:
    ipv6cp = handler(ZERO)
    assert ipv6cp.build_request() == [(1, ZERO)]  # "please supply one"
    assert ipv6cp.judge_request([(1, ZERO)], converge=False) == (Verdict.REJECT, [(1, ZERO)])


def test_after_max_failure_naks_become_rejects() -> None:
    ipv6cp = handler()
    assert ipv6cp.judge_request([(1, OURS)], converge=True) == (Verdict.REJECT, [(1, OURS)])
    assert ipv6cp.judge_request([(1, THEIRS)], converge=True)[0] is Verdict.ACK


def test_compression_unknown_options_and_wrong_lengths_are_rejected() -> None:
    request: Options = [(2, b"\x00\x4f"), (1, b"\x01" * 7), (99, b""), (1, THEIRS)]
    assert handler().judge_request(request, converge=False) == (Verdict.REJECT, request[:3])


# -- Naks and Rejects of our request -----------------------------------------------------------------


def test_a_nak_different_from_our_last_suggestion_is_adopted() -> None:
    ipv6cp = handler()
    ipv6cp.on_nak([(1, THEIRS)])
    assert ipv6cp.build_request() == [(1, THEIRS)]


def test_a_nak_equal_to_our_last_suggestion_or_zero_makes_us_choose_anew() -> None:
    ipv6cp = handler()
    _, [(_, suggested)] = ipv6cp.judge_request([(1, OURS)], converge=False)  # we suggest one to the peer
    ipv6cp.on_nak([(1, suggested)])  # and the peer suggests the same one to us: the ends collide
    [(_, mine)] = ipv6cp.build_request()
    assert well_formed(mine) and mine not in (suggested, OURS)
    ipv6cp.on_nak([(1, ZERO)])
    [(_, again)] = ipv6cp.build_request()
    assert well_formed(again) and again != mine


def test_a_reject_stops_the_option_and_our_tentative_identifier_stays_local() -> None:
    ipv6cp = handler()
    ipv6cp.on_reject([(1, OURS)])
    ipv6cp.on_nak([(1, THEIRS)])  # RFC 5072 section 4.1: MUST NOT ask again
    assert ipv6cp.build_request() == []
    ipv6cp.on_ack([])
    assert ipv6cp.local_id == OURS
    ipv6cp.reset()
    assert ipv6cp.build_request() == [(1, OURS)]


def test_no_extra_codes() -> None:
    ipv6cp = handler()
    assert not ipv6cp.extra_code(ControlPacket(Code.ECHO_REQUEST, 1, bytes(4)))
    assert ipv6cp.echo_reply(ControlPacket(Code.ECHO_REQUEST, 1, bytes(4))) is None


# -- full negotiations ---------------------------------------------------------------------------------


def _negotiate(a: Ipv6cpOptions, b: Ipv6cpOptions) -> tuple[Automaton, Automaton]:
    server = Automaton("ipv6cp", a, protocol=IPV6CP)
    client = Automaton("ipv6cp", b, protocol=IPV6CP)
    for automaton in (server, client):
        automaton.open(0.0)
        automaton.up(0.0)
    pump(server, client, 0.0)
    return server, client


def test_random_identifiers_negotiate_to_opened() -> None:
    a, b = Ipv6cpOptions(), Ipv6cpOptions()
    server, client = _negotiate(a, b)
    assert server.state is client.state is State.OPENED
    assert a.local_id == b.peer_id and b.local_id == a.peer_id and a.local_id != b.local_id
    assert well_formed(a.local_id) and well_formed(b.local_id)


def test_colliding_identifiers_end_different() -> None:
    a, b = handler(OURS, 1), handler(OURS, 1000)
    server, client = _negotiate(a, b)
    assert server.state is client.state is State.OPENED
    assert a.local_id == b.peer_id and b.local_id == a.peer_id and a.local_id != b.local_id
    assert ZERO not in (a.local_id, b.local_id)


def test_a_peer_asking_for_an_identifier_gets_one() -> None:
    a, b = handler(OURS), handler(ZERO)
    server, client = _negotiate(a, b)
    assert server.state is client.state is State.OPENED
    assert well_formed(b.local_id) and b.local_id == a.peer_id and a.local_id == b.peer_id == OURS


def test_both_zero_opens_without_identifiers() -> None:
    a, b = handler(ZERO), handler(ZERO, 1000)
    server, client = _negotiate(a, b)
    assert server.state is client.state is State.OPENED
    assert a.local_id == a.peer_id == b.local_id == b.peer_id == ZERO  # the layer above must cope


# -- robustness ----------------------------------------------------------------------------------------

_OPTION = st.tuples(st.sampled_from([1, 2, 0, 255]) | st.integers(0, 255), st.binary(max_size=10))


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from([None, OURS, ZERO]),
    st.lists(st.lists(_OPTION, max_size=5), min_size=1, max_size=4),
    st.booleans(),
)
def test_random_option_lists_never_raise(interface_id: bytes | None, requests: list[Options], converge: bool) -> None:
    ipv6cp = handler(interface_id)
    for options in requests:
        verdict, reply = ipv6cp.judge_request(options, converge)
        if verdict is Verdict.ACK:
            assert reply == options
        elif verdict is Verdict.NAK:
            assert all(kind == 1 and well_formed(value) for kind, value in reply)
        else:
            remaining = iter(options)
            assert reply and all(option in remaining for option in reply)
        ipv6cp.on_nak(options)
        ipv6cp.on_reject(options)
        ipv6cp.on_ack(ipv6cp.build_request())
        assert all(len(value) == 8 for _, value in ipv6cp.build_request())
