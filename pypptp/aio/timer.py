"""One asyncio timer that follows a sans-IO object's ``next_deadline()``.

Shared by the control-channel and GRE drivers.  ``arm(deadline)`` is cheap
when the deadline has not changed (the common case on the data path).  The
callback gets ``now``, never earlier than the deadline it was armed for:
asyncio may run a timer up to one clock resolution early, and a sans-IO
object shown a time before its own deadline would do nothing and re-arm
the same timer again.

Its owner holds it and it holds the owner's bound method: a reference cycle.  :meth:`DeadlineTimer.close`
drops the callback when the owner ends, so that the owner is freed by reference counting then, not at the
next full garbage collection (a daemon's closed sessions would otherwise keep their memory until one).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

__all__ = ["DeadlineTimer"]


class DeadlineTimer:
    def __init__(self, loop: asyncio.AbstractEventLoop, callback: Callable[[float], None]) -> None:
        self._loop = loop
        self._callback = callback
        self._handle: asyncio.TimerHandle | None = None
        self._at: float | None = None

    def arm(self, deadline: float | None) -> None:
        """Fire at ``deadline`` (``None``: not at all); replaces any earlier arming."""
        if deadline == self._at:
            return
        self.cancel()
        if deadline is not None:
            self._at = deadline
            self._handle = self._loop.call_at(deadline, self._fire)

    def ensure(self, deadline: float | None) -> None:
        """Fire no later than ``deadline``: an earlier arming stands, and ``None`` leaves the timer
        armed.  For a data path whose deadline comes and goes with nearly every packet (an ack owed,
        then piggy-backed): creating and cancelling an asyncio timer each time costs more than the
        occasional early wakeup, whose callback finds nothing due and arms for the real deadline."""
        if deadline is None or (self._at is not None and self._at <= deadline):
            return
        self.cancel()
        self._at = deadline
        self._handle = self._loop.call_at(deadline, self._fire)

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._handle = None
        self._at = None

    def close(self) -> None:
        """The owner has ended: cancel, and drop the callback (the cycle through the owner's bound method).
        A later :meth:`arm` or :meth:`ensure` is harmless: the timer then fires into nothing."""
        self.cancel()
        self._callback = _ended

    def _fire(self) -> None:
        now = max(self._loop.time(), self._at or 0.0)
        self._handle = None
        self._at = None
        self._callback(now)


def _ended(now: float) -> None:
    """A closed timer's callback."""
