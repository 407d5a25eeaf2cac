"""The RFC 1661 option-negotiation automaton as data (RFC 1661 section 4.1).

One automaton serves LCP, IPCP, IPV6CP and CCP.  This module holds only its
transition table: ``TRANSITIONS[(event, state)] -> Transition(actions,
next_state, note)``.  A missing key is an illegal event ("-" in the RFC):
log it and change nothing.  The table below is laid out like the RFC's, so
the two can be read side by side; the test suite compares it, cell by cell,
with the table parsed from the RFC text.

Footnotes kept in ``note``: ``p`` (passive option on TO-: a PPTP server
hangs up instead, so the action stays tlf), ``r`` (restart option on an
extra Open: treated as "stay"), ``x`` (crossed connection: log it).
"""

from __future__ import annotations

import enum
from typing import NamedTuple

__all__ = ["TRANSITIONS", "Action", "Event", "State", "Transition", "transition"]


class State(enum.IntEnum):
    """RFC 1661 section 4.2."""

    INITIAL = 0
    STARTING = 1
    CLOSED = 2
    STOPPED = 3
    CLOSING = 4
    STOPPING = 5
    REQ_SENT = 6
    ACK_RCVD = 7
    ACK_SENT = 8
    OPENED = 9


class Event(enum.Enum):
    """RFC 1661 section 4.3."""

    UP = "Up"
    DOWN = "Down"
    OPEN = "Open"
    CLOSE = "Close"
    TO_PLUS = "TO+"
    TO_MINUS = "TO-"
    RCR_PLUS = "RCR+"
    RCR_MINUS = "RCR-"
    RCA = "RCA"
    RCN = "RCN"
    RTR = "RTR"
    RTA = "RTA"
    RUC = "RUC"
    RXJ_PLUS = "RXJ+"
    RXJ_MINUS = "RXJ-"
    RXR = "RXR"


class Action(enum.Enum):
    """RFC 1661 section 4.4."""

    TLU = "tlu"  # This-Layer-Up
    TLD = "tld"  # This-Layer-Down
    TLS = "tls"  # This-Layer-Started
    TLF = "tlf"  # This-Layer-Finished
    IRC = "irc"  # Initialize-Restart-Count
    ZRC = "zrc"  # Zero-Restart-Count
    SCR = "scr"  # Send-Configure-Request
    SCA = "sca"  # Send-Configure-Ack
    SCN = "scn"  # Send-Configure-Nak/Rej
    STR = "str"  # Send-Terminate-Request
    STA = "sta"  # Send-Terminate-Ack
    SCJ = "scj"  # Send-Code-Reject
    SER = "ser"  # Send-Echo-Reply


class Transition(NamedTuple):
    actions: tuple[Action, ...]
    next_state: State
    note: str  # "", "p", "r" or "x"


# Rows: events.  Columns: states 0-9.  Cell: actions/next state, or "-" (illegal).
_TABLE = """
        Initial   Starting     Closed  Stopped        Closing  Stopping  Req-Sent   Ack-Rcvd   Ack-Sent   Opened
Up      2         irc,scr/6    -       -              -        -         -          -          -          -
Down    -         -            0       tls/1          0        1         1          1          1          tld/1
Open    tls/1     1            irc,scr/6  3r          5r       5r        6          7          8          9r
Close   0         tlf/0        2       2              4        4         irc,str/4  irc,str/4  irc,str/4  tld,irc,str/4
TO+     -         -            -       -              str/4    str/5     scr/6      scr/6      scr/8      -
TO-     -         -            -       -              tlf/2    tlf/3     tlf/3p     tlf/3p     tlf/3p     -
RCR+    -         -            sta/2   irc,scr,sca/8  4        5         sca/8      sca,tlu/9  sca/8      tld,scr,sca/8
RCR-    -         -            sta/2   irc,scr,scn/6  4        5         scn/6      scn/7      scn/6      tld,scr,scn/6
RCA     -         -            sta/2   sta/3          4        5         irc/7      scr/6x     irc,tlu/9  tld,scr/6x
RCN     -         -            sta/2   sta/3          4        5         irc,scr/6  scr/6x     irc,scr/8  tld,scr/6x
RTR     -         -            sta/2   sta/3          sta/4    sta/5     sta/6      sta/6      sta/6      tld,zrc,sta/5
RTA     -         -            2       3              tlf/2    tlf/3     6          6          8          tld,scr/6
RUC     -         -            scj/2   scj/3          scj/4    scj/5     scj/6      scj/7      scj/8      scj/9
RXJ+    -         -            2       3              4        5         6          6          8          9
RXJ-    -         -            tlf/2   tlf/3          tlf/2    tlf/3     tlf/3      tlf/3      tlf/3      tld,irc,str/5
RXR     -         -            2       3              4        5         6          7          8          ser/9
"""


def parse_cell(cell: str) -> Transition | None:
    """``"irc,scr/6"`` -> Transition((IRC, SCR), REQ_SENT, ""); ``"-"`` -> None."""
    if cell == "-":
        return None
    note = ""
    if cell[-1] in "prx":
        cell, note = cell[:-1], cell[-1]
    actions_text, _, state_text = cell.rpartition("/")
    actions = tuple(Action(name) for name in actions_text.split(",")) if actions_text else ()
    return Transition(actions, State(int(state_text)), note)


def _build() -> dict[tuple[Event, State], Transition]:
    table: dict[tuple[Event, State], Transition] = {}
    for row in _TABLE.strip().splitlines()[1:]:
        name, *cells = row.split()
        if len(cells) != len(State):
            raise AssertionError(f"row {name} has {len(cells)} cells")
        for state, cell in zip(State, cells, strict=True):
            parsed = parse_cell(cell)
            if parsed is not None:
                table[(Event(name), state)] = parsed
    return table


TRANSITIONS = _build()


def transition(state: State, event: Event) -> Transition | None:
    """The RFC's answer for ``event`` in ``state``, or None if the event is illegal there."""
    return TRANSITIONS.get((event, state))
