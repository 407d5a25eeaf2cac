"""The automaton's transition table, cell by cell, against the table printed in RFC 1661 section 4.1."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pypptp.ppp.fsm_table import TRANSITIONS, Action, Event, State, Transition, parse_cell, transition

RFC_DIR = Path(os.environ.get("PYPPTP_RFCS") or Path(__file__).resolve().parents[2] / "shared" / "rfc")


def _rfc_table() -> dict[tuple[Event, State], Transition | None]:
    """Parse both halves of the RFC's State Transition Table from the RFC text."""
    path = RFC_DIR / "rfc1661.txt"
    if not path.exists():
        pytest.skip(f"{path} is not there (shared/rfc is absent)")
    lines = path.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "4.1.  State Transition Table")
    end = next(i for i, line in enumerate(lines[start:], start) if line.startswith("4.2."))
    table: dict[tuple[Event, State], Transition | None] = {}
    columns: list[State] = []
    for line in lines[start:end]:
        if "|" not in line:
            continue
        head, _, rest = line.partition("|")
        cells = rest.split()
        if head.strip() == "" and cells and all(c.isdigit() for c in cells):
            columns = [State(int(c)) for c in cells]  # the "| 0 1 2 ..." header of each half
            continue
        name = head.strip()
        if name not in {e.value for e in Event} or not cells:
            continue
        assert len(cells) == len(columns), line
        for state, cell in zip(columns, cells, strict=True):
            table[(Event(name), state)] = parse_cell(cell)
    return table


def test_every_cell_matches_the_rfc_text() -> None:
    rfc = _rfc_table()
    assert len(rfc) == len(Event) * len(State) == 160
    for (event, state), expected in rfc.items():
        assert transition(state, event) == expected, f"{event.value} in {state.name}"
    assert len(TRANSITIONS) == sum(1 for cell in rfc.values() if cell is not None)


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
