"""RFC 1661 section 4.1's State Transition Table, transcribed by hand, independently of pypptp.

Typed from the RFC's two printed halves, one state (column) at a time, where pypptp's
``pypptp.ppp.fsm_table`` lays the table out by event (row) and parses it with its own
``parse_cell``: nothing here comes from that module, so a cell changed there (or a parser that
misreads one) shows as a difference.  tests/test_ppp_fsm_table.py checks this transcription against
the RFC text (tests/fixtures/rfc/rfc1661.txt, with a reader of its own) and pypptp's table against
this transcription; tests/test_ppp_fsm.py drives the automaton through every cell of it.

A cell is (actions, next state, footnote); an event missing from a state's entry is the RFC's "-"
(an illegal event there).  Footnotes, RFC 1661 section 4.1: ``p`` passive option (see the Stopped
state), ``r`` restart option (see the Open event), ``x`` crossed connection (see the RCA event).
Actions, section 4.4: tlu This-Layer-Up, tld This-Layer-Down, tls This-Layer-Started, tlf
This-Layer-Finished, irc Initialize-Restart-Count, zrc Zero-Restart-Count, scr Send-Configure-Request,
sca Send-Configure-Ack, scn Send-Configure-Nak/Rej, str Send-Terminate-Request, sta
Send-Terminate-Ack, scj Send-Code-Reject, ser Send-Echo-Reply.
"""

from __future__ import annotations

Cell = tuple[tuple[str, ...], int, str]

STATES = {
    0: "Initial",
    1: "Starting",
    2: "Closed",
    3: "Stopped",
    4: "Closing",
    5: "Stopping",
    6: "Req-Sent",
    7: "Ack-Rcvd",
    8: "Ack-Sent",
    9: "Opened",
}
"""Section 4.2, with the numbers and names the table's header prints."""

EVENTS = (
    "Up",
    "Down",
    "Open",
    "Close",
    "TO+",
    "TO-",
    "RCR+",
    "RCR-",
    "RCA",
    "RCN",
    "RTR",
    "RTA",
    "RUC",
    "RXJ+",
    "RXJ-",
    "RXR",
)
"""Section 4.3, in the table's order."""

ACTIONS = ("tlu", "tld", "tls", "tlf", "irc", "zrc", "scr", "sca", "scn", "str", "sta", "scj", "ser")
"""Section 4.4."""

TABLE: dict[int, dict[str, Cell]] = {
    0: {  # Initial: only the administrative events and Up are legal
        "Up": ((), 2, ""),
        "Open": (("tls",), 1, ""),
        "Close": ((), 0, ""),
    },
    1: {  # Starting
        "Up": (("irc", "scr"), 6, ""),
        "Open": ((), 1, ""),
        "Close": (("tlf",), 0, ""),
    },
    2: {  # Closed: no timer; every packet but a Terminate-Ack or Code-Reject is answered with Terminate-Ack
        "Down": ((), 0, ""),
        "Open": (("irc", "scr"), 6, ""),
        "Close": ((), 2, ""),
        "RCR+": (("sta",), 2, ""),
        "RCR-": (("sta",), 2, ""),
        "RCA": (("sta",), 2, ""),
        "RCN": (("sta",), 2, ""),
        "RTR": (("sta",), 2, ""),
        "RTA": ((), 2, ""),
        "RUC": (("scj",), 2, ""),
        "RXJ+": ((), 2, ""),
        "RXJ-": (("tlf",), 2, ""),
        "RXR": ((), 2, ""),
    },
    3: {  # Stopped
        "Down": (("tls",), 1, ""),
        "Open": ((), 3, "r"),
        "Close": ((), 2, ""),
        "RCR+": (("irc", "scr", "sca"), 8, ""),
        "RCR-": (("irc", "scr", "scn"), 6, ""),
        "RCA": (("sta",), 3, ""),
        "RCN": (("sta",), 3, ""),
        "RTR": (("sta",), 3, ""),
        "RTA": ((), 3, ""),
        "RUC": (("scj",), 3, ""),
        "RXJ+": ((), 3, ""),
        "RXJ-": (("tlf",), 3, ""),
        "RXR": ((), 3, ""),
    },
    4: {  # Closing
        "Down": ((), 0, ""),
        "Open": ((), 5, "r"),
        "Close": ((), 4, ""),
        "TO+": (("str",), 4, ""),
        "TO-": (("tlf",), 2, ""),
        "RCR+": ((), 4, ""),
        "RCR-": ((), 4, ""),
        "RCA": ((), 4, ""),
        "RCN": ((), 4, ""),
        "RTR": (("sta",), 4, ""),
        "RTA": (("tlf",), 2, ""),
        "RUC": (("scj",), 4, ""),
        "RXJ+": ((), 4, ""),
        "RXJ-": (("tlf",), 2, ""),
        "RXR": ((), 4, ""),
    },
    5: {  # Stopping
        "Down": ((), 1, ""),
        "Open": ((), 5, "r"),
        "Close": ((), 4, ""),
        "TO+": (("str",), 5, ""),
        "TO-": (("tlf",), 3, ""),
        "RCR+": ((), 5, ""),
        "RCR-": ((), 5, ""),
        "RCA": ((), 5, ""),
        "RCN": ((), 5, ""),
        "RTR": (("sta",), 5, ""),
        "RTA": (("tlf",), 3, ""),
        "RUC": (("scj",), 5, ""),
        "RXJ+": ((), 5, ""),
        "RXJ-": (("tlf",), 3, ""),
        "RXR": ((), 5, ""),
    },
    6: {  # Req-Sent
        "Down": ((), 1, ""),
        "Open": ((), 6, ""),
        "Close": (("irc", "str"), 4, ""),
        "TO+": (("scr",), 6, ""),
        "TO-": (("tlf",), 3, "p"),
        "RCR+": (("sca",), 8, ""),
        "RCR-": (("scn",), 6, ""),
        "RCA": (("irc",), 7, ""),
        "RCN": (("irc", "scr"), 6, ""),
        "RTR": (("sta",), 6, ""),
        "RTA": ((), 6, ""),
        "RUC": (("scj",), 6, ""),
        "RXJ+": ((), 6, ""),
        "RXJ-": (("tlf",), 3, ""),
        "RXR": ((), 6, ""),
    },
    7: {  # Ack-Rcvd
        "Down": ((), 1, ""),
        "Open": ((), 7, ""),
        "Close": (("irc", "str"), 4, ""),
        "TO+": (("scr",), 6, ""),
        "TO-": (("tlf",), 3, "p"),
        "RCR+": (("sca", "tlu"), 9, ""),
        "RCR-": (("scn",), 7, ""),
        "RCA": (("scr",), 6, "x"),
        "RCN": (("scr",), 6, "x"),
        "RTR": (("sta",), 6, ""),
        "RTA": ((), 6, ""),
        "RUC": (("scj",), 7, ""),
        "RXJ+": ((), 6, ""),
        "RXJ-": (("tlf",), 3, ""),
        "RXR": ((), 7, ""),
    },
    8: {  # Ack-Sent
        "Down": ((), 1, ""),
        "Open": ((), 8, ""),
        "Close": (("irc", "str"), 4, ""),
        "TO+": (("scr",), 8, ""),
        "TO-": (("tlf",), 3, "p"),
        "RCR+": (("sca",), 8, ""),
        "RCR-": (("scn",), 6, ""),
        "RCA": (("irc", "tlu"), 9, ""),
        "RCN": (("irc", "scr"), 8, ""),
        "RTR": (("sta",), 6, ""),
        "RTA": ((), 8, ""),
        "RUC": (("scj",), 8, ""),
        "RXJ+": ((), 8, ""),
        "RXJ-": (("tlf",), 3, ""),
        "RXR": ((), 8, ""),
    },
    9: {  # Opened: no timer; anything that restarts negotiation takes the layer down first (tld)
        "Down": (("tld",), 1, ""),
        "Open": ((), 9, "r"),
        "Close": (("tld", "irc", "str"), 4, ""),
        "RCR+": (("tld", "scr", "sca"), 8, ""),
        "RCR-": (("tld", "scr", "scn"), 6, ""),
        "RCA": (("tld", "scr"), 6, "x"),
        "RCN": (("tld", "scr"), 6, "x"),
        "RTR": (("tld", "zrc", "sta"), 5, ""),
        "RTA": (("tld", "scr"), 6, ""),
        "RUC": (("scj",), 9, ""),
        "RXJ+": ((), 9, ""),
        "RXJ-": (("tld", "irc", "str"), 5, ""),
        "RXR": (("ser",), 9, ""),
    },
}
"""State number -> event -> cell: 120 legal cells, 40 illegal ones."""


def cell(state: int, event: str) -> Cell | None:
    """The RFC's cell for ``event`` in ``state``; None for "-"."""
    return TABLE[state].get(event)
