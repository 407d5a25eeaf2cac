"""The automaton's transition table, cell by cell, against RFC 1661 section 4.1.

Three sources that must agree, none of them read through pypptp's own cell parser:

* the RFC text itself (tests/fixtures/rfc/rfc1661.txt), read here by a reader of its own;
* a transcription typed by hand from the RFC, state by state (tests/rfc1661_table.py);
* pypptp's table, ``pypptp.ppp.fsm_table.TRANSITIONS``.

The transcription is checked against the RFC text, and pypptp's table against the transcription, so
a cell changed by hand in pypptp's table (or a parser that misreads one) fails here whatever the
other tests do.
"""

from __future__ import annotations

import re

import pytest

from pypptp.ppp.fsm_table import TRANSITIONS, Action, Event, State, Transition, parse_cell, transition
from tests import fixtures
from tests.rfc1661_table import ACTIONS, EVENTS, STATES, TABLE, Cell, cell

RFC_CELL = re.compile(r"^(?:(?P<actions>[a-z]{3}(?:,[a-z]{3})*)/)?(?P<state>[0-9])(?P<note>[prx]?)$")


def _read_rfc_cell(text: str) -> Cell | None:
    """One cell as the RFC prints it: ``-``, ``2``, ``3r``, ``irc,scr/6``, ``tlf/3p``."""
    if text == "-":
        return None
    match = RFC_CELL.match(text)
    assert match is not None, f"not an RFC 1661 cell: {text!r}"
    actions = tuple(match["actions"].split(",")) if match["actions"] else ()
    return actions, int(match["state"]), match["note"]


def _rfc_text_table() -> dict[tuple[int, str], Cell | None]:
    """Both printed halves of section 4.1's table, read from the RFC text."""
    lines = fixtures.rfc("rfc1661.txt").read_text().splitlines()
    start = lines.index("4.1.  State Transition Table")
    end = next(i for i in range(start, len(lines)) if lines[i].startswith("4.2."))
    table: dict[tuple[int, str], Cell | None] = {}
    names: dict[int, str] = {}
    columns: list[int] = []
    for line in lines[start:end]:
        head, bar, rest = line.partition("|")
        if not bar:
            continue
        words = rest.split()
        if head.strip() == "" and words and all(word.isdigit() for word in words):
            columns = [int(word) for word in words]  # "      |    0         1 ..." opens each half
        elif head.strip() == "Events":
            names.update(zip(columns, words, strict=True))  # "Events| Initial   Starting ..."
        elif head.strip() in EVENTS:
            assert len(words) == len(columns), line
            for state, word in zip(columns, words, strict=True):
                assert (state, head.strip()) not in table, f"{head.strip()} in {state} printed twice"
                table[(state, head.strip())] = _read_rfc_cell(word)
    assert names == STATES
    return table


def _ours(state: int, event: str) -> Cell | None:
    """pypptp's cell, in the transcription's terms."""
    found = TRANSITIONS.get((Event(event), State(state)))
    if found is None:
        return None
    return tuple(action.value for action in found.actions), int(found.next_state), found.note


def test_the_transcription_is_the_rfc_text() -> None:
    rfc = _rfc_text_table()
    assert len(rfc) == len(STATES) * len(EVENTS) == 160
    for (state, event), expected in rfc.items():
        assert cell(state, event) == expected, f"{event} in {STATES[state]} ({state}): RFC says {expected}"
    assert all(event in EVENTS for row in TABLE.values() for event in row)
    assert {a for row in TABLE.values() for actions, _, _ in row.values() for a in actions} == set(ACTIONS)


def test_the_names_are_the_rfcs() -> None:
    assert {state.value: state.name for state in State} == {
        number: name.upper().replace("-", "_") for number, name in STATES.items()
    }
    assert [event.value for event in Event] == list(EVENTS)
    assert [action.value for action in Action] == list(ACTIONS)


CELLS = [(state, event) for state in STATES for event in EVENTS]


@pytest.mark.parametrize(("state", "event"), CELLS, ids=[f"{event}-{STATES[state]}" for state, event in CELLS])
def test_every_cell_of_pypptps_table_is_the_rfcs(state: int, event: str) -> None:
    assert _ours(state, event) == cell(state, event)


def test_pypptps_table_has_nothing_else() -> None:
    assert len(TRANSITIONS) == sum(len(row) for row in TABLE.values()) == 120
    assert all(transition(state, event) is TRANSITIONS[(event, state)] for event, state in TRANSITIONS)


def test_parse_cell() -> None:
    assert parse_cell("-") is None
    assert parse_cell("2") == Transition((), State.CLOSED, "")
    assert parse_cell("tld,irc,str/5") == Transition((Action.TLD, Action.IRC, Action.STR), State.STOPPING, "")
    assert parse_cell("tlf/3p") == Transition((Action.TLF,), State.STOPPED, "p")
    assert parse_cell("scr/6x").note == "x"  # type: ignore[union-attr]


def test_a_few_cells_by_hand() -> None:
    """Spot checks written from RFC 1661 section 4 prose, not from either table."""
    # Up in Starting: initialize the counter and send a Configure-Request
    assert transition(State.STARTING, Event.UP) == Transition((Action.IRC, Action.SCR), State.REQ_SENT, "")
    # the last Ack completes negotiation: This-Layer-Up
    assert transition(State.ACK_SENT, Event.RCA) == Transition((Action.IRC, Action.TLU), State.OPENED, "")
    # a Terminate-Request while Opened: down, zero the counter, ack, wait in Stopping
    assert transition(State.OPENED, Event.RTR) == Transition((Action.TLD, Action.ZRC, Action.STA), State.STOPPING, "")
    # Echo-Request while Opened is answered; elsewhere it is ignored
    assert transition(State.OPENED, Event.RXR) == Transition((Action.SER,), State.OPENED, "")
    assert transition(State.REQ_SENT, Event.RXR) == Transition((), State.REQ_SENT, "")
    # illegal events have no entry
    assert transition(State.INITIAL, Event.RCR_PLUS) is None
    assert transition(State.OPENED, Event.UP) is None
