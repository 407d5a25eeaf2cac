"""A per-source budget of authentication failures: password guessing slowed to a trickle.

One address that fails to authenticate ``limit`` times within ``window`` seconds is blocked for
``block`` seconds: the daemon drops its new connections at once, before any PPTP or PPP work.  Other
addresses are never affected.  Time is a parameter (no clock is read here), and memory is bounded:
at most ``max_sources`` addresses are remembered, the least recently failing forgotten first.

pppd bounds retries per connection only (pypptpd too: 3 per call, as ``chap-max-challenge``'s
spirit); without this, one address could try 16 passwords a second over new connections.
"""

from __future__ import annotations

import collections
import dataclasses

__all__ = ["FailureThrottle"]


@dataclasses.dataclass
class _Source:
    failures: collections.deque[float]
    blocked_until: float = 0.0


class FailureThrottle:
    """Failures by source address, and the blocks they cause."""

    def __init__(self, limit: int = 5, window: float = 60.0, block: float = 300.0, max_sources: int = 65536) -> None:
        if limit < 1 or window <= 0 or block <= 0 or max_sources < 1:
            raise ValueError("limit, window, block and max_sources must be positive")
        self.limit = limit
        self.window = window
        self.block = block
        self.max_sources = max_sources
        self._sources: collections.OrderedDict[str, _Source] = collections.OrderedDict()
        self.blocks = 0
        """Blocks started so far."""

    def failed(self, source: str, now: float) -> bool:
        """Count one failure from ``source``; True when it starts a block."""
        entry = self._sources.pop(source, None)
        if entry is None:
            entry = _Source(collections.deque(maxlen=self.limit))
        self._sources[source] = entry  # the most recent last
        while len(self._sources) > self.max_sources:
            self._sources.popitem(last=False)
        failures = entry.failures
        failures.append(now)
        if entry.blocked_until > now:
            return False
        if len(failures) == self.limit and now - failures[0] <= self.window:
            entry.blocked_until = now + self.block
            failures.clear()
            self.blocks += 1
            return True
        return False

    def blocked(self, source: str, now: float) -> float:
        """Seconds ``source`` stays blocked from ``now``; 0 when it may connect."""
        entry = self._sources.get(source)
        if entry is None or entry.blocked_until <= now:
            return 0.0
        return entry.blocked_until - now

    def __len__(self) -> int:
        return len(self._sources)
