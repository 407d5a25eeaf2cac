"""The trace file of one session: JSON lines written off the event loop, bounded (:mod:`pypptp.ppp.trace`).

:class:`JsonLinesTracer` is the tracer the daemon (``--trace DIR``) and the
client (``trace=path``) give a session's link and control connection.  One
JSON object per line::

    {"time": 0.0, "category": "trace", "event": "header", "data": {"version": 1, "start": "...", ...}}
    {"time": 0.0012, "category": "ppp", "event": "sent", "data": {"protocol": "LCP", "code": 1, ...}}

``time`` is seconds since the session's start, whose absolute time (UTC,
ISO 8601, and Unix seconds) is in the header.  The session must never wait
for the disk: lines are gathered in memory and handed, a chunk at a time, to
one writer thread shared by every trace of the process (one thread keeps each
file's chunks in order).  Bounded: at most ``max_events`` events and
``max_bytes`` bytes a file; past either, one ``truncated`` event ends the
file and later events are only counted (in the closing ``end`` event).  A
peer flooding Echo-Requests cannot grow a trace past its bound.

GRE sequencing anomalies (losses, reordering, duplicates...) are counted on
the data path, which never calls a tracer: :class:`GreTraceWatch` reads the
call's counters every :data:`GRE_INTERVAL` seconds (a timer that exists only
while a trace is on) and traces what changed.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import datetime
import json
import logging
import os
import threading
import typing
from collections.abc import Callable

from pypptp import __version__
from pypptp.ctrl.messages import ControlMessage
from pypptp.gre.sequencing import GreCounters
from pypptp.ppp.trace import TRACE_VERSION, Tracer, message_data

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_EVENTS",
    "GRE_INTERVAL",
    "GreTraceWatch",
    "JsonLinesTracer",
    "control_tracer",
    "wait_written",
]

log = logging.getLogger("pypptpd")

DEFAULT_MAX_EVENTS = 20_000
"""Events a trace file holds at most (a whole negotiation takes about 40)."""
DEFAULT_MAX_BYTES = 4 * 1024 * 1024
FLUSH_BYTES = 32 * 1024
"""Lines gathered before a chunk goes to the writer thread (and at close)."""
GRE_INTERVAL = 10.0
_GRE_ANOMALIES = ("lost", "reordered", "duplicates", "stale", "far", "resyncs", "bogus_acks", "ack_timeouts")

_executor: concurrent.futures.ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def _writer() -> concurrent.futures.ThreadPoolExecutor:
    """The one writer thread of the process (created on first use: nothing runs while no trace is on)."""
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="pypptp-trace")
        return _executor


def wait_written(timeout: float = 5.0) -> None:
    """Until every trace line handed to the writer thread so far is written and closed files are closed (a
    process that ends with ``os._exit``, a worker, calls it first); blocking: from a thread, or at the end."""
    if _executor is not None:
        with contextlib.suppress(concurrent.futures.TimeoutError):
            _executor.submit(lambda: None).result(timeout)


class JsonLinesTracer:
    """A :class:`~pypptp.ppp.trace.Tracer` writing one JSON-lines file.

    ``start`` is the clock reading (the callers' ``now``: the event loop's time) of the session's start;
    event times are written relative to it.  ``header`` goes into the first line's data.  The file is
    created exclusively (an existing file is never overwritten)."""

    def __init__(
        self,
        path: str,
        *,
        start: float,
        header: dict[str, typing.Any] | None = None,
        max_events: int = DEFAULT_MAX_EVENTS,
        max_bytes: int = DEFAULT_MAX_BYTES,
        wall: datetime.datetime | None = None,
    ) -> None:
        self.path = path
        self.start = start
        self.max_events = max_events
        self.max_bytes = max_bytes
        self.events = 0
        self.bytes = 0
        self.dropped = 0
        self.truncated = False
        self.closed = False
        self.error: str | None = None
        self._pending: list[str] = []
        self._pending_bytes = 0
        self._file: typing.TextIO | None = None
        self._done: concurrent.futures.Future[None] | None = None
        _writer().submit(self._open)
        wall = wall or datetime.datetime.now(datetime.UTC)
        data = {"version": TRACE_VERSION, "pypptp": __version__, "start": wall.isoformat()}
        data["start_unix"] = wall.timestamp()
        self._line(start, "trace", "header", data | (header or {}))

    def event(self, time: float, category: str, name: str, data: dict[str, typing.Any]) -> None:
        if self.closed or self.truncated:
            self.dropped += 1
            return
        if self.events >= self.max_events:
            self._truncate(time, f"{self.max_events} events")
            return
        line = self._encode(time, category, name, data)
        if self.bytes + len(line) > self.max_bytes:
            self._truncate(time, f"{self.max_bytes} bytes")
            return
        self._append(line)

    def close(self, time: float | None = None, **summary: typing.Any) -> concurrent.futures.Future[None]:
        """Write the ``end`` event (with ``summary`` and the count of events not written) and close the file;
        the future is done once the file is closed.  Idempotent."""
        if self._done is not None:
            return self._done
        end_time = self.start if time is None else time
        data = {"events": self.events, "dropped": self.dropped} | summary
        self._append(self._encode(end_time, "trace", "end", data))
        self.closed = True
        self._flush()
        self._done = _writer().submit(self._close)
        return self._done

    def flush(self) -> None:
        """Hand the lines gathered so far to the writer thread (they are written soon, not waited for)."""
        self._flush()

    # -- internals -------------------------------------------------------------------------

    def _encode(self, time: float, category: str, name: str, data: dict[str, typing.Any]) -> str:
        event = {"time": round(time - self.start, 6), "category": category, "event": name, "data": data}
        return json.dumps(event, separators=(",", ":"), default=str) + "\n"

    def _line(self, time: float, category: str, name: str, data: dict[str, typing.Any]) -> None:
        self._append(self._encode(time, category, name, data))

    def _truncate(self, time: float, bound: str) -> None:
        self.truncated = True
        self.dropped += 1
        self._append(self._encode(time, "trace", "truncated", {"bound": bound}))

    def _append(self, line: str) -> None:
        self.events += 1
        self.bytes += len(line)
        self._pending.append(line)
        self._pending_bytes += len(line)
        if self._pending_bytes >= FLUSH_BYTES:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            chunk = "".join(self._pending)
            self._pending.clear()
            self._pending_bytes = 0
            _writer().submit(self._write, chunk)

    # (the writer thread)

    def _open(self) -> None:
        try:  # new (never over another file or through a link), for root's eyes only: user names, addresses
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            self._file = os.fdopen(fd, "w", encoding="utf-8")
        except OSError as exc:
            self._failed(exc)

    def _write(self, chunk: str) -> None:
        if self._file is None:
            return
        try:
            self._file.write(chunk)
        except OSError as exc:
            self._failed(exc)

    def _close(self) -> None:
        file, self._file = self._file, None
        if file is not None:
            try:
                file.close()
            except OSError as exc:
                self._failed(exc)

    def _failed(self, exc: OSError) -> None:
        if self.error is None:
            self.error = str(exc)
            log.warning("trace %s: %s; the session goes on without it", self.path, exc)
        file, self._file = self._file, None
        if file is not None:
            with contextlib.suppress(OSError):
                file.close()


def control_tracer(tracer: Tracer) -> Callable[[float, str, ControlMessage], None]:
    """The control connection's tracer callable (``tracer(now, "in" | "out", message)``), as ``ctrl``
    events with the message's fields."""

    def trace(now: float, direction: str, message: ControlMessage) -> None:
        tracer.event(now, "ctrl", "rcvd" if direction == "in" else "sent", message_data(message))

    return trace


class GreTraceWatch:
    """Traces a call's GRE sequencing anomalies as they accumulate: every :data:`GRE_INTERVAL` seconds, the
    counters that changed (``gre`` ``anomalies``: the increase of each), and all counters at :meth:`stop`.
    The data path only counts, as it always does."""

    def __init__(self, tracer: Tracer, counters: GreCounters, loop: asyncio.AbstractEventLoop) -> None:
        self.tracer = tracer
        self.counters = counters
        self.loop = loop
        self._last = {name: 0 for name in _GRE_ANOMALIES}
        self._handle: asyncio.TimerHandle | None = loop.call_later(GRE_INTERVAL, self._check)

    def _check(self) -> None:
        self._handle = None
        self._report(self.loop.time())
        self._handle = self.loop.call_later(GRE_INTERVAL, self._check)

    def _report(self, now: float) -> None:
        changed = {}
        for name in _GRE_ANOMALIES:
            value = getattr(self.counters, name)
            if value != self._last[name]:
                changed[name] = value - self._last[name]
                self._last[name] = value
        if changed:
            self.tracer.event(now, "gre", "anomalies", changed)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        now = self.loop.time()
        self._report(now)
        self.tracer.event(now, "gre", "counters", dataclasses.asdict(self.counters))
