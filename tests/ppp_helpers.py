"""Shared by the PPP tests: run two automata against each other in memory."""

from __future__ import annotations

from pypptp.ppp.fsm import Automaton


def pump(a: Automaton, b: Automaton, now: float, rounds: int = 50) -> None:
    """Deliver each side's packets to the other until both are quiet (bounded)."""
    for _ in range(rounds):
        out_a, _ = a.drain()
        out_b, _ = b.drain()
        if not out_a and not out_b:
            return
        for packet in out_a:
            b.receive(packet, now)
        for packet in out_b:
            a.receive(packet, now)
