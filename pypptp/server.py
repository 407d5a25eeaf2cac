"""The asyncio skin of the PPTP server's control channel (TCP 1723).

This is the only place with a loop, transports and timers for the control
channel: each accepted connection gets a :class:`ControlConnection` (sans-IO)
and one timer handle re-armed at its ``next_deadline()``.  Accepting never
waits on a connection: the first-message deadline (pptpd's ``stimeout``) is
that connection's own timer, so idle connections cannot block others.

A failure inside one connection is logged and ends that connection only.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import socket
from typing import Protocol

from pypptp.aio_control import ControlProtocol
from pypptp.ctrl.callids import CallIdAllocator
from pypptp.ctrl.connection import ControlConfig, ControlConnection, LocalProtocolError, Role
from pypptp.ctrl.constants import PPTP_PORT, StopReason
from pypptp.ctrl.events import (
    Call,
    CallCleared,
    CallEstablished,
    CallRefused,
    ControlConnectionClosed,
    ControlConnectionEstablished,
    EchoAnswered,
    Event,
    ProtocolAnomaly,
    SetLinkInfoReceived,
)
from pypptp.ctrl.messages import ControlMessage

log = logging.getLogger("pypptpd")


@dataclasses.dataclass(frozen=True)
class ServerSettings:
    """What the control server needs from pptpd.conf and the command line."""

    listen: str = "0.0.0.0"
    port: int = PPTP_PORT
    max_connections: int = 100
    control: ControlConfig = dataclasses.field(default_factory=ControlConfig)
    trace: bool = False
    """Log every control message in and out (``debug``)."""
    call_id_stride: int = 1
    call_id_offset: int = 0
    """Hand out only Call IDs with ``ID % call_id_stride == call_id_offset`` (worker processes split the
    space this way, see :mod:`pypptp.workers`)."""


class CallHooks(Protocol):
    """What stands behind the calls (the daemon's sessions); the control server tells it of each."""

    def call_established(self, connection: ServerConnection, call: Call) -> None: ...

    def call_cleared(self, connection: ServerConnection, call: Call, reason: str) -> None: ...


class ControlServer:
    """Accepts PPTP control connections and runs one sans-IO connection each."""

    def __init__(self, settings: ServerSettings, hooks: CallHooks | None = None) -> None:
        self.settings = settings
        self.hooks = hooks
        self.call_ids = CallIdAllocator(stride=settings.call_id_stride, offset=settings.call_id_offset)
        self.connections: set[ServerConnection] = set()
        self.refused = 0
        self._server: asyncio.Server | None = None

    @property
    def sockets(self) -> list[tuple[str, int]]:
        if self._server is None:
            return []
        return [s.getsockname()[:2] for s in self._server.sockets]

    async def start(self, sock: socket.socket | None = None) -> None:
        """Listen on ``settings.listen``:``settings.port``, or accept on ``sock``, a bound TCP socket made
        elsewhere (a worker's, with ``SO_REUSEPORT``: :func:`pypptp.workers.listening_sockets`)."""
        loop = asyncio.get_running_loop()
        backlog = max(128, self.settings.max_connections)
        if sock is not None:
            self._server = await loop.create_server(lambda: ServerConnection(self), sock=sock, backlog=backlog)
        else:
            host = None if self.settings.listen in ("", "0.0.0.0") else self.settings.listen
            self._server = await loop.create_server(
                lambda: ServerConnection(self),
                host=host,
                port=self.settings.port,
                reuse_address=True,
                backlog=backlog,
            )
        log.info("MGR: Manager process started, listening on %s:%d", self.settings.listen, self.settings.port)

    async def serve_forever(self) -> None:
        assert self._server is not None
        await self._server.serve_forever()

    async def shutdown(self, grace: float = 2.0) -> None:
        """Stop accepting; CDN + StopCCRQ to every client, wait briefly, close all."""
        if self._server is not None:
            self._server.close()
        for protocol in list(self.connections):
            protocol.stop(StopReason.STOP_LOCAL_SHUTDOWN)
        deadline = asyncio.get_running_loop().time() + grace
        while self.connections and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        for protocol in list(self.connections):
            protocol.abort("server shut down")
        if self._server is not None:
            await self._server.wait_closed()


class ServerConnection(ControlProtocol):
    """One accepted TCP 1723 connection."""

    def __init__(self, server: ControlServer) -> None:
        super().__init__()
        self.server = server

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        server = self.server
        if len(server.connections) >= server.settings.max_connections:
            server.refused += 1
            log.warning("MGR: connection limit %d reached, refusing %s", server.settings.max_connections, self.peer)
            self.abort("connection limit")
            return
        server.connections.add(self)
        tracer = self._trace if server.settings.trace else None
        self.conn = ControlConnection(
            Role.SERVER, self.loop.time(), config=server.settings.control, call_ids=server.call_ids, tracer=tracer
        )
        log.info("CTRL: Client %s control connection started", self.peer)
        self._rearm()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self.server.connections.discard(self)

    def stop(self, reason: StopReason) -> None:
        if self.conn is not None and not self.conn.closed:
            self.conn.stop(self.loop.time(), reason)
            self.flush()

    @property
    def peer_ip(self) -> str:
        return self.peer.rpartition(":")[0]

    def hang_up(self, call_id: int, reason: StopReason = StopReason.NONE) -> None:
        """The session behind ``call_id`` ended: CDN, then StopCCRQ (one call per connection, like
        pptpd's control process, which ends with its pppd)."""
        conn = self.conn
        if conn is None or conn.closed:
            return
        now = self.loop.time()
        try:
            if call_id in conn.calls:
                conn.clear_call(call_id, now)
            if not conn.calls:
                conn.stop(now, reason)
        except LocalProtocolError:  # the connection is already stopping
            pass
        self.flush()

    def handle_events(self, events: list[Event]) -> None:
        for event in events:
            if isinstance(event, ControlConnectionEstablished):
                start = event.peer_start
                log.info(
                    "CTRL: %s: SCCRQ accepted (host %r, vendor %r, firmware %d)",
                    self.peer,
                    start.host_name,
                    start.vendor_string,
                    start.firmware_revision,
                )
            elif isinstance(event, CallEstablished):
                call = event.call
                log.info(
                    "CTRL: %s: call established, our Call ID %d, peer Call ID %d, peer window %d",
                    self.peer,
                    call.call_id,
                    call.peer_call_id,
                    call.peer_window,
                )
                if self.server.hooks is not None:
                    self.server.hooks.call_established(self, call)
            elif isinstance(event, CallRefused):
                log.warning(
                    "CTRL: %s: OCRQ from peer Call ID %d refused: %s/%s",
                    self.peer,
                    event.peer_call_id,
                    getattr(event.result_code, "name", event.result_code),
                    event.error_code.name,
                )
            elif isinstance(event, CallCleared):
                log.info("CTRL: %s: call %d cleared (%s)", self.peer, event.call.call_id, event.reason)
                if self.server.hooks is not None:
                    self.server.hooks.call_cleared(self, event.call, event.reason)
            elif isinstance(event, SetLinkInfoReceived):
                log.debug("CTRL: %s: Set-Link-Info ignored (ACCMs mean nothing on GRE)", self.peer)
            elif isinstance(event, EchoAnswered):
                log.debug("CTRL: %s: Echo-Reply after %.3f s", self.peer, event.round_trip)
            elif isinstance(event, ProtocolAnomaly):
                log.warning("CTRL: %s: %s", self.peer, event.description)
            elif isinstance(event, ControlConnectionClosed):
                log.info("CTRL: Client %s control connection finished (%s)", self.peer, event.reason)

    def _trace(self, now: float, direction: str, message: ControlMessage) -> None:
        log.debug("CTRL: %s %s %.3f %r", self.peer, direction, now, message)
