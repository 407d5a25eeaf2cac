"""Call IDs: unique across the server, never 0, not guessable (RFC 2637 section 3.2.2)."""

from __future__ import annotations

import itertools
import random

from pypptp.ctrl.callids import CallIdAllocator


class CountingSet(set[int]):
    """The allocator's set of IDs in use, counting the IDs it looks at: its work, counted, not timed (and
    stopped as soon as it is too much, rather than left to run for minutes)."""

    looked_at = 0
    LIMIT = 5_000_000  # about 1.7 million with this seed

    def __contains__(self, item: object) -> bool:
        CountingSet.looked_at += 1
        if CountingSet.looked_at > self.LIMIT:
            raise AssertionError(f"filling the Call ID space looked at more than {self.LIMIT} IDs")
        return super().__contains__(item)


def test_ids_are_unique_and_non_zero_until_the_space_is_full() -> None:
    """Filling the whole space stays cheap: random probes, then a walk from a random start once the space
    is nearly full, never a walk from the start for every ID (65535 squared over 2: 2 billion looks)."""
    allocator = CallIdAllocator(randbelow=random.Random(16).randrange)
    allocator._in_use = CountingSet()
    CountingSet.looked_at = 0
    ids = [allocator.allocate() for _ in range(65535)]
    assert None not in ids and 0 not in ids and len(set(ids)) == 65535
    assert CountingSet.looked_at >= 65535  # (the allocator did use this set)
    assert allocator.allocate() is None
    allocator.release(1234)
    assert allocator.allocate() == 1234


def test_ids_are_not_sequential_like_pptpd() -> None:
    allocator = CallIdAllocator()
    ids = [allocator.allocate() or 0 for _ in range(64)]
    steps = {b - a for a, b in itertools.pairwise(ids)}
    assert len(steps) > 32, "consecutive Call IDs follow a pattern"
    assert ids != sorted(ids)
    # two servers do not produce the same sequence
    assert [CallIdAllocator().allocate() for _ in range(8)] != [CallIdAllocator().allocate() for _ in range(8)]


def test_capacity_and_release() -> None:
    allocator = CallIdAllocator(capacity=2)
    a, b = allocator.allocate(), allocator.allocate()
    assert a is not None and b is not None and a != b and len(allocator) == 2
    assert allocator.allocate() is None
    allocator.release(a)
    allocator.release(a)  # releasing twice is harmless
    assert a not in allocator and len(allocator) == 1
    assert allocator.allocate() is not None


def test_a_seeded_source_makes_allocation_reproducible() -> None:
    first = CallIdAllocator(randbelow=random.Random(7).randrange)
    second = CallIdAllocator(randbelow=random.Random(7).randrange)
    assert [first.allocate() for _ in range(50)] == [second.allocate() for _ in range(50)]
