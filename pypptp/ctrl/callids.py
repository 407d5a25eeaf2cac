"""Call ID allocation (RFC 2637 section 3.2.2).

Our Call IDs are the demultiplexing key of every GRE packet we receive, so
they must be unique across the whole server (many clients may share one
public address behind NAT), never 0, and unpredictable: pptpd hands out
0, 128, 256..., which lets an off-path attacker guess the key of a live call
and inject GRE into it.  IDs come from :mod:`secrets`; released IDs go back
into the pool immediately (the GRE layer drops stray packets for unknown or
re-used calls by peer address as well).

Worker processes (``pypptpd --workers N``, :mod:`pypptp.daemon.workers`) split the
space by residue: worker *i* of *N* hands out only IDs with ``ID % N == i``
(``stride=N, offset=i``), so that a kernel socket filter can send each GRE
packet to the one worker that owns its Call ID (:mod:`pypptp.host.bpf`).  0 stays
excluded in every class; IDs within a class are still random.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable


class CallIdAllocator:
    """Hands out unique, random, non-zero 16-bit Call IDs.  One per server (or per worker)."""

    MIN_ID = 1
    MAX_ID = 0xFFFF

    def __init__(
        self,
        *,
        capacity: int | None = None,
        randbelow: Callable[[int], int] = secrets.randbelow,
        stride: int = 1,
        offset: int = 0,
    ) -> None:
        """``randbelow(n)`` returns a number in ``[0, n)``: :func:`secrets.randbelow`
        in service; a seeded ``random.Random(seed).randrange`` makes a run
        reproducible for replay and property tests.

        ``stride`` and ``offset``: hand out only IDs with ``ID % stride == offset`` (a worker's
        residue class); the default, 1 and 0, is the whole space."""
        if stride < 1 or not 0 <= offset < stride:
            raise ValueError(f"Call ID class {offset} mod {stride}: need 0 <= offset < stride")
        self.stride = stride
        self.offset = offset
        first = offset if offset >= self.MIN_ID else offset + stride
        self._ids = range(first, self.MAX_ID + 1, stride)
        """Every ID this allocator may hand out (0 never is)."""
        span = len(self._ids)
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
        ids = self._ids
        span = len(ids)
        # Random probes find a free ID quickly unless the space is nearly full;
        # then walk from a random start so that the time stays bounded.
        for _ in range(32):
            candidate = ids[self._randbelow(span)]
            if candidate not in self._in_use:
                self._in_use.add(candidate)
                return candidate
        start = self._randbelow(span)
        for step in range(span):
            candidate = ids[(start + step) % span]
            if candidate not in self._in_use:
                self._in_use.add(candidate)
                return candidate
        return None

    def release(self, call_id: int) -> None:
        """Return ``call_id`` to the pool (no-op if it was not allocated)."""
        self._in_use.discard(call_id)
