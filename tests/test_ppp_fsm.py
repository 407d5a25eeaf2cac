"""The RFC 1661 automaton engine: every cell of the transition table, then whole negotiations.

Each cell's expected outcome comes from RFC 1661 as transcribed by hand in tests/rfc1661_table.py, not
from pypptp's own table."""

from __future__ import annotations

import pytest

from pypptp.ppp.fsm import Automaton, FsmConfig, LayerEvent, Verdict
from pypptp.ppp.fsm_table import Action, Event, State
from pypptp.ppp.packet import Code, ControlPacket, encode_options
from tests import rfc1661_table
from tests.ppp_helpers import pump

Options = list[tuple[int, bytes]]
NAK_ME, REJECT_ME = 99, 98


class MiniHandler:
    """Requests option 1 = 0x0578; Naks option 99 (suggesting 1), Rejects option 98."""

    def __init__(self) -> None:
        self.request: Options = [(1, b"\x05\x78")]
        self.acked: Options | None = None
        self.resets = 0

    def reset(self) -> None:
        self.resets += 1

    def build_request(self) -> Options:
        return list(self.request)

    def judge_request(self, options: Options, converge: bool) -> tuple[Verdict, Options]:
        rejected = [o for o in options if o[0] == REJECT_ME or (converge and o[0] == NAK_ME)]
        if rejected:
            return Verdict.REJECT, rejected
        naked = [(kind, b"\x01") for kind, value in options if kind == NAK_ME and value != b"\x01"]
        if naked:
            return Verdict.NAK, naked
        return Verdict.ACK, options

    def on_ack(self, options: Options) -> None:
        self.acked = options

    def on_nak(self, options: Options) -> None:
        self.request = [o for o in self.request if o[0] not in dict(options)] + options

    def on_reject(self, options: Options) -> None:
        self.request = [o for o in self.request if o not in options]

    def extra_code(self, packet: ControlPacket) -> bool:
        return packet.code in (9, 10, 11)

    def echo_reply(self, packet: ControlPacket) -> ControlPacket | None:
        return ControlPacket(10, packet.identifier, packet.data) if packet.code == 9 else None


CONFIG = FsmConfig(restart_timeout=3.0, max_configure=10, max_terminate=2, max_failure=5)
SENDS = {
    Action.SCR: Code.CONFIGURE_REQUEST,
    Action.STR: Code.TERMINATE_REQUEST,
    Action.STA: Code.TERMINATE_ACK,
    Action.SCJ: Code.CODE_REJECT,
    Action.SER: Code.ECHO_REPLY,
}
LAYER = {Action.TLU: LayerEvent.UP, Action.TLD: LayerEvent.DOWN, Action.TLS: LayerEvent.STARTED,
         Action.TLF: LayerEvent.FINISHED}  # fmt: skip


def _primed(state: State) -> Automaton:
    """An automaton put in ``state`` with an outstanding request (identifier 7)."""
    automaton = Automaton("test", MiniHandler(), CONFIG)
    automaton.state = state
    automaton.restart_count = 5
    automaton._identifier = automaton._request_id = 7
    automaton._request = encode_options(automaton.handler.build_request())
    return automaton


def _fire(automaton: Automaton, event: Event, now: float) -> None:
    request = encode_options([(1, b"\x05\x78")])
    packets = {
        Event.RCR_PLUS: ControlPacket(Code.CONFIGURE_REQUEST, 40, request),
        Event.RCR_MINUS: ControlPacket(Code.CONFIGURE_REQUEST, 41, encode_options([(NAK_ME, b"\x09")])),
        Event.RCA: ControlPacket(Code.CONFIGURE_ACK, 7, automaton._request),
        Event.RCN: ControlPacket(Code.CONFIGURE_NAK, 7, encode_options([(1, b"\x05\xdc")])),
        Event.RTR: ControlPacket(Code.TERMINATE_REQUEST, 42),
        Event.RTA: ControlPacket(Code.TERMINATE_ACK, 43),
        Event.RUC: ControlPacket(200, 44, b"?"),
        Event.RXJ_PLUS: ControlPacket(Code.CODE_REJECT, 45, bytes([12, 1, 0, 4])),
        Event.RXJ_MINUS: ControlPacket(Code.CODE_REJECT, 46, bytes([1, 1, 0, 4])),
        Event.RXR: ControlPacket(Code.ECHO_REQUEST, 47, b"\x00\x00\x00\x00"),
    }
    if event in packets:
        automaton.receive(packets[event], now)
    elif event in (Event.TO_PLUS, Event.TO_MINUS):
        automaton.restart_count = 3 if event is Event.TO_PLUS else 0
        automaton.deadline = now
        automaton.handle_timer(now)
    else:
        {Event.UP: automaton.up, Event.DOWN: automaton.down, Event.OPEN: automaton.open,
         Event.CLOSE: automaton.close}[event](now)  # fmt: skip


CELLS = [(event, state) for event in Event for state in State]


@pytest.mark.parametrize(("event", "state"), CELLS, ids=[f"{e.value}-{s.name}" for e, s in CELLS])
def test_every_cell_of_the_table(event: Event, state: State) -> None:
    automaton = _primed(state)
    _fire(automaton, event, 100.0)
    out, events = automaton.drain()
    cell = rfc1661_table.cell(state.value, event.value)  # typed from the RFC, not pypptp's table
    if cell is None:  # illegal: logged, nothing else
        assert automaton.state is state and out == [] and events == []
        assert any("illegal" in a for a in automaton.anomalies)
        return
    names, number, _ = cell
    actions, next_state = [Action(name) for name in names], State(number)
    assert automaton.state is next_state
    assert events == [LAYER[a] for a in actions if a in LAYER]
    expected_codes = []
    for action in actions:
        if action in SENDS:
            expected_codes.append(SENDS[action])
        elif action in (Action.SCA, Action.SCN):
            expected_codes.append(Code.CONFIGURE_ACK if event is Event.RCR_PLUS else Code.CONFIGURE_NAK)
    assert [p.code for p in out] == expected_codes
    if Action.IRC in actions:
        base = CONFIG.max_terminate if Action.STR in actions else CONFIG.max_configure
        assert automaton.restart_count == base - (Action.SCR in actions or Action.STR in actions)
    if Action.ZRC in actions:
        assert automaton.restart_count == 0 and automaton.deadline == 103.0
    if Action.SCR in actions or Action.STR in actions:
        assert automaton.deadline == 103.0
    if next_state not in (State.CLOSING, State.STOPPING, State.REQ_SENT, State.ACK_RCVD, State.ACK_SENT):
        assert automaton.deadline is None
    if Action.STA in actions and event is Event.RTR:
        assert out[[p.code for p in out].index(Code.TERMINATE_ACK)].identifier == 42  # answers the request


def test_two_automata_negotiate_to_opened_and_terminate() -> None:
    a, b = Automaton("a", MiniHandler(), CONFIG), Automaton("b", MiniHandler(), CONFIG)
    for automaton in (a, b):
        automaton.open(0.0)
        assert automaton.drain()[1] == [LayerEvent.STARTED]
        automaton.up(0.0)
    pump(a, b, 0.0)
    assert a.state is b.state is State.OPENED
    assert a.handler.acked == [(1, b"\x05\x78")]  # type: ignore[attr-defined]
    assert a.handler.resets == 1  # type: ignore[attr-defined]  # once per fresh negotiation, not on irc
    assert a.next_deadline() is None
    a.close(1.0)
    assert a.state is State.CLOSING
    out, events = a.drain()
    assert events == [LayerEvent.DOWN] and [p.code for p in out] == [Code.TERMINATE_REQUEST]
    b.receive(out[0], 1.0)
    assert b.state is State.STOPPING and b.restart_count == 0  # zrc: waits one restart period
    out_b, events_b = b.drain()
    assert events_b == [LayerEvent.DOWN]
    a.receive(out_b[0], 1.0)
    assert a.state is State.CLOSED and a.drain()[1] == [LayerEvent.FINISHED]
    b.handle_timer(4.0)
    assert b.state is State.STOPPED and b.drain()[1] == [LayerEvent.FINISHED]


def test_nak_and_reject_lead_to_agreement() -> None:
    a, b = Automaton("a", MiniHandler(), CONFIG), Automaton("b", MiniHandler(), CONFIG)
    a.handler.request = [(1, b"\x05\x78"), (NAK_ME, b"\x09"), (REJECT_ME, b"")]  # type: ignore[attr-defined]
    for automaton in (a, b):
        automaton.open(0.0)
        automaton.up(0.0)
    pump(a, b, 0.0)
    assert a.state is b.state is State.OPENED
    assert a.handler.acked == [(1, b"\x05\x78"), (NAK_ME, b"\x01")]  # type: ignore[attr-defined]


def test_max_configure_gives_up_with_this_layer_finished() -> None:
    a = Automaton("a", MiniHandler(), CONFIG)
    a.open(0.0)
    a.up(0.0)
    out, events = a.drain()
    sent = len(out)
    now = 0.0
    for _ in range(20):
        now += 3.0
        a.handle_timer(now)
        out, new_events = a.drain()
        sent += len(out)
        events += new_events
        if a.state is State.STOPPED:
            break
    assert sent == CONFIG.max_configure and a.state is State.STOPPED
    assert events[-1] is LayerEvent.FINISHED and a.next_deadline() is None


def test_max_failure_turns_naks_into_rejects() -> None:
    a = Automaton("a", MiniHandler(), CONFIG)
    a.open(0.0)
    a.up(0.0)
    a.drain()
    codes = []
    for n in range(CONFIG.max_failure + 1):
        a.receive(ControlPacket(Code.CONFIGURE_REQUEST, n, encode_options([(NAK_ME, b"\x09")])), 0.0)
        codes.append(a.drain()[0][-1].code)
    assert codes == [Code.CONFIGURE_NAK] * CONFIG.max_failure + [Code.CONFIGURE_REJECT]


def test_replies_with_a_stale_identifier_or_wrong_options_are_ignored() -> None:
    a = Automaton("a", MiniHandler(), CONFIG)
    a.open(0.0)
    a.up(0.0)
    request = a.drain()[0][0]
    a.receive(ControlPacket(Code.CONFIGURE_ACK, request.identifier ^ 1, request.data), 0.0)
    a.receive(ControlPacket(Code.CONFIGURE_ACK, request.identifier, request.data + b"\x07\x02"), 0.0)
    a.receive(ControlPacket(Code.CONFIGURE_NAK, request.identifier, b"\x01\x09"), 0.0)  # malformed option
    assert a.state is State.REQ_SENT and len(a.anomalies) == 3
    a.receive(ControlPacket(Code.CONFIGURE_ACK, request.identifier, request.data), 0.0)
    assert a.state is State.ACK_RCVD


@pytest.mark.parametrize("keep_open", [False, True])
def test_repeated_request_in_opened_renegotiates_unless_keep_open(keep_open: bool) -> None:
    """RCR in Opened is tld/scr/sca by the table; CCP opts out for an identical retransmission."""
    a = Automaton("a", MiniHandler(), CONFIG, keep_open_on_repeat=keep_open)
    b = Automaton("b", MiniHandler(), CONFIG)
    for automaton in (a, b):
        automaton.open(0.0)
        automaton.up(0.0)
    sent_by_b: list[ControlPacket] = []
    for _ in range(10):
        out_a, _ = a.drain()
        out_b, _ = b.drain()
        if not out_a and not out_b:
            break
        sent_by_b += out_b
        for packet in out_a:
            b.receive(packet, 0.0)
        for packet in out_b:
            a.receive(packet, 0.0)
    assert a.state is State.OPENED
    [acked] = [p for p in sent_by_b if p.code == Code.CONFIGURE_REQUEST]
    renegotiation = ControlPacket(Code.CONFIGURE_REQUEST, (acked.identifier + 1) & 0xFF, acked.data)
    repeat = ControlPacket(Code.CONFIGURE_REQUEST, acked.identifier, acked.data)  # a retransmission
    a.receive(repeat, 1.0)
    out, events = a.drain()
    if keep_open:
        assert a.state is State.OPENED and events == []
        assert [(p.code, p.identifier, p.data) for p in out] == [(Code.CONFIGURE_ACK, repeat.identifier, repeat.data)]
    else:
        assert a.state is State.ACK_SENT and events == [LayerEvent.DOWN]
        assert [p.code for p in out] == [Code.CONFIGURE_REQUEST, Code.CONFIGURE_ACK]
    if keep_open:  # the same options under a new Identifier: a real renegotiation
        a.receive(renegotiation, 2.0)
        assert a.state is State.ACK_SENT and a.drain()[1] == [LayerEvent.DOWN]


# -- work a peer can make us repeat --------------------------------------------------------------


def _opened_pair() -> tuple[Automaton, Automaton]:
    ours, theirs = Automaton("ours", MiniHandler(), CONFIG), Automaton("theirs", MiniHandler(), CONFIG)
    for automaton in (ours, theirs):
        automaton.up(0.0)
        automaton.open(0.0)
    pump(ours, theirs, 0.0)
    assert ours.state is State.OPENED and theirs.state is State.OPENED
    return ours, theirs


def test_renegotiations_from_opened_are_bounded() -> None:
    """The peer takes the layer back to negotiation five times within a minute: each is honoured; the
    sixth closes the layer (Terminate-Request) with a reason, instead of a sixth round."""
    ours, theirs = _opened_pair()
    for n in range(5):
        theirs.down(float(n))
        theirs.up(float(n))
        pump(ours, theirs, float(n))
        assert ours.state is State.OPENED and not ours.failures
        ours.drain()
    theirs.down(5.0)
    theirs.up(5.0)
    out = theirs.drain()[0]
    for packet in out:
        ours.receive(packet, 5.0)
    sent, _ = ours.drain()
    assert [p.code for p in sent] == [Code.TERMINATE_REQUEST]
    assert ours.state is State.CLOSING
    assert ours.failures == ["ours: the peer renegotiated more than 5 times within 60 s"]


def test_renegotiations_spread_over_time_are_fine() -> None:
    ours, theirs = _opened_pair()
    for n in range(20):
        now = 13.0 * n  # under five a minute
        theirs.down(now)
        theirs.up(now)
        pump(ours, theirs, now)
        assert ours.state is State.OPENED and not ours.failures


def test_echo_floods_get_a_bounded_number_of_replies() -> None:
    ours, _ = _opened_pair()
    for n in range(100):
        ours.receive(ControlPacket(9, n & 0xFF, b"\x00\x00\x00\x00"), 10.0)
    replies, _ = ours.drain()
    assert len(replies) == CONFIG.max_replies
    assert any("asks too often" in line for line in ours.anomalies)
    for n in range(100):
        ours.receive(ControlPacket(9, n & 0xFF, b"\x00\x00\x00\x00"), 11.0)  # one second later
    assert len(ours.drain()[0]) == int(CONFIG.reply_rate)
    ours.receive(ControlPacket(9, 1, b"\x00\x00\x00\x00"), 100.0)  # the bucket refills
    assert len(ours.drain()[0]) == 1
