"""A budget of warning lines for what a peer can repeat at will (dropped datagrams): at most ``burst``
lines per ``period`` seconds, the count of the lines left out coming with the next line allowed.

Used by the RADIUS client (:mod:`pypptp.aaa.radius`) and the DAE listener (:mod:`pypptp.aaa.dae`)."""

from __future__ import annotations

import logging

__all__ = ["LogBudget"]


class LogBudget:
    """At most ``burst`` warnings on ``logger`` per ``period`` seconds; the rest are counted, and the count
    comes with the next warning allowed."""

    def __init__(self, logger: logging.Logger, burst: int = 10, period: float = 60.0) -> None:
        self.logger = logger
        self.burst, self.period = burst, period
        self.start = float("-inf")
        self.used = self.suppressed = 0

    def warning(self, now: float, message: str, *args: object) -> None:
        if now - self.start >= self.period:
            self.start, self.used = now, 0
        if self.used >= self.burst:
            self.suppressed += 1
            return
        self.used += 1
        if self.suppressed:
            message += " (%d similar line(s) suppressed)"
            args = (*args, self.suppressed)
            self.suppressed = 0
        self.logger.warning(message, *args)
