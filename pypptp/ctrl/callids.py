"""Call ID allocation (RFC 2637 section 3.2.2).

Our Call IDs are the demultiplexing key of every GRE packet we receive, so
they must be unique across the whole server (many clients may share one
public address behind NAT), never 0, and unpredictable: pptpd hands out
0, 128, 256..., which lets an off-path attacker guess the key of a live call
and inject GRE into it.  IDs come from :mod:`secrets`; released IDs go back
into the pool immediately (the GRE layer drops stray packets for unknown or
re-used calls by peer address as well).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable


class CallIdAllocator:
    """Hands out unique, random, non-zero 16-bit Call IDs.  One per server."""

    MIN_ID = 1
    MAX_ID = 0xFFFF

    def __init__(self, *, capacity: int | None = None, randbelow: Callable[[int], int] = secrets.randbelow) -> None:
        """``randbelow(n)`` returns a number in ``[0, n)``: :func:`secrets.randbelow`
        in service; a seeded ``random.Random(seed).randrange`` makes a run
        reproducible for replay and property tests."""
        span = self.MAX_ID - self.MIN_ID + 1
        self.capacity = span if capacity is None else min(capacity, span)
        self._randbelow = randbelow
        self._in_use: set[int] = set()

    def __len__(self) -> int:
        return len(self._in_use)

    def __contains__(self, call_id: object) -> bool:
        return call_id in self._in_use

    def allocate(self) -> int | None:
        """A fresh Call ID, or ``None`` when the server is out of IDs."""
        if len(self._in_use) >= self.capacity:
            return None
        span = self.MAX_ID - self.MIN_ID + 1
        # Random probes find a free ID quickly unless the space is nearly full;
        # then walk from a random start so that the time stays bounded.
        for _ in range(32):
            candidate = self.MIN_ID + self._randbelow(span)
            if candidate not in self._in_use:
                self._in_use.add(candidate)
                return candidate
        start = self._randbelow(span)
        for step in range(span):
            candidate = self.MIN_ID + (start + step) % span
            if candidate not in self._in_use:
                self._in_use.add(candidate)
                return candidate
        return None

    def release(self, call_id: int) -> None:
        """Return ``call_id`` to the pool (no-op if it was not allocated)."""
        self._in_use.discard(call_id)
