"""Drive a sans-IO :class:`ControlConnection` from an asyncio transport.

Shared by the server (:mod:`pypptp.aio.server`) and the client
(:mod:`pypptp.aio.client`): bytes in -> ``receive``; one ``DeadlineTimer`` re-armed
at ``next_deadline()``; queued bytes out; events to ``handle_events``, which
subclasses implement.  ``ControlConnectionClosed`` closes the transport after
the queued bytes are flushed.  An exception inside costs this connection only.
"""

from __future__ import annotations

import asyncio
import logging

from pypptp.aio.timer import DeadlineTimer
from pypptp.ctrl.connection import ControlConnection
from pypptp.ctrl.events import ControlConnectionClosed, Event

log = logging.getLogger("pypptp.ctrl")

MAX_WRITE_BUFFER = 256 * 1024
"""A peer that stops reading while we queue this much is dropped."""


class ControlProtocol(asyncio.Protocol):
    """Base protocol: owns the transport, the timer and a ControlConnection."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.conn: ControlConnection | None = None
        self.peer = "?"
        self.local_ip = ""
        """Our address the peer connected to (RADIUS Called-Station-Id)."""
        self._timer = DeadlineTimer(self.loop, self._on_timer)

    # -- for subclasses ------------------------------------------------------------

    def handle_events(self, events: list[Event]) -> None:
        """React to the connection's events (logging, futures...)."""

    def flush(self) -> None:
        """Send what an API call on ``self.conn`` queued, and handle its events."""
        if self.conn is not None:
            self._apply(*self.conn.drain())

    def abort(self, reason: str) -> None:
        """Drop the connection at once (no more bytes are sent)."""
        if self.conn is not None and not self.conn.closed:
            self._dispatch_events(self.conn.connection_lost(self.loop.time(), reason))
        self._timer.cancel()
        if self.transport is not None:
            self.transport.abort()

    # -- asyncio callbacks ---------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if peer else "?"
        local = transport.get_extra_info("sockname")
        self.local_ip = str(local[0]) if local else ""

    def data_received(self, data: bytes) -> None:
        if self.conn is None:
            return
        try:
            self._apply(*self.conn.receive(data, self.loop.time()))
        except Exception:
            log.exception("CTRL: internal error on %s; dropping the connection", self.peer)
            self.abort("internal error")

    def connection_lost(self, exc: Exception | None) -> None:
        self._timer.close()  # (its callback is our bound method: the connection is freed when let go)
        if self.conn is not None and not self.conn.closed:
            reason = f"TCP connection lost: {exc}" if exc else "TCP connection closed by peer"
            try:
                self._dispatch_events(self.conn.connection_lost(self.loop.time(), reason))
            except Exception:
                log.exception("CTRL: internal error while closing %s", self.peer)

    # -- internals -----------------------------------------------------------------

    def _apply(self, out: bytes, events: list[Event]) -> None:
        transport = self.transport
        if out and transport is not None and not transport.is_closing():
            transport.write(out)
            if transport.get_write_buffer_size() > MAX_WRITE_BUFFER:
                log.warning("CTRL: %s is not reading what we send; dropping it", self.peer)
                self.handle_events(events)  # what this input did (a call it cleared) still counts
                self.abort("peer not reading")
                return
        self._dispatch_events(events)
        self._rearm()

    def _dispatch_events(self, events: list[Event]) -> None:
        self.handle_events(events)
        if any(isinstance(e, ControlConnectionClosed) for e in events):
            self._timer.cancel()
            if self.transport is not None:
                self.transport.close()  # flushes queued bytes first

    def _rearm(self) -> None:
        self._timer.arm(None if self.conn is None else self.conn.next_deadline())

    def _on_timer(self, now: float) -> None:
        if self.conn is None:
            return
        try:
            self._apply(*self.conn.handle_timer(now))
        except Exception:
            log.exception("CTRL: internal error in a timer of %s; dropping the connection", self.peer)
            self.abort("internal error")
