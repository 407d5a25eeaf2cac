"""An asyncio PPTP control client (the RFC 2637 PNS, what a VPN client plays).

::

    client = await ControlClient.connect("198.18.0.1")
    await client.start()                 # SCCRQ -> SCCRP
    call = await client.open_call()      # OCRQ -> OCRP
    rtt = await client.echo()            # Echo-Request -> Echo-Reply
    await client.clear_call(call)        # CCRQ -> CDN
    await client.stop()                  # StopCCRQ -> StopCCRP, TCP closed

It works against any PPTP server.  Every step raises :class:`PptpClientError`
with the reason when the server refuses, closes or does not answer in time.
``python -m pypptp.aio.client HOST`` runs that sequence and prints each step.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys
import time
from collections.abc import Callable

from pypptp.aio.control import ControlProtocol
from pypptp.ctrl.callids import CallIdAllocator
from pypptp.ctrl.connection import ControlConfig, ControlConnection, Role
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
    StartRefused,
)
from pypptp.ctrl.messages import ControlMessage, StartControlConnectionReply


class PptpClientError(Exception):
    """The server refused, closed the connection, or did not answer in time."""


class _ClientProtocol(ControlProtocol):
    def __init__(self, client: ControlClient) -> None:
        super().__init__()
        self.client = client

    def handle_events(self, events: list[Event]) -> None:
        for event in events:
            self.client._on_event(event)


class ControlClient:
    """One control connection to a PPTP server, driven with ``await``."""

    def __init__(self, config: ControlConfig, *, timeout: float, tracer: Callable[..., None] | None) -> None:
        self.config = config
        self.timeout = timeout
        self.events: list[Event] = []
        """Every event the connection reported, in order (for tests and research)."""
        self.closed_reason: str | None = None
        self.listeners: list[Callable[[Event], object]] = []
        """Called with every event as it happens (after the waiters): how a tunnel session learns that
        the server cleared its call or closed the connection."""
        self._tracer = tracer
        self._protocol: _ClientProtocol | None = None
        self._waiters: list[tuple[Callable[[Event], bool], asyncio.Future[Event]]] = []

    @classmethod
    async def connect(
        cls,
        host: str | None = None,
        port: int = PPTP_PORT,
        *,
        sock: socket.socket | None = None,
        config: ControlConfig | None = None,
        timeout: float = 10.0,
        tracer: Callable[[float, str, ControlMessage], None] | None = None,
        call_ids: CallIdAllocator | None = None,
    ) -> ControlClient:
        """Open TCP to ``host:port`` (or use the connected ``sock``).

        ``call_ids``: the allocator for our Call IDs, shared by every connection whose calls share one
        GRE transport (the transport tells calls apart by peer and Call ID, so those must not repeat)."""
        client = cls(config or ControlConfig(establish_timeout=60.0), timeout=timeout, tracer=tracer)
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                if sock is not None:
                    _, protocol = await loop.create_connection(lambda: _ClientProtocol(client), sock=sock)
                else:
                    if host is None:
                        raise ValueError("connect() needs a host or a connected sock")
                    _, protocol = await loop.create_connection(lambda: _ClientProtocol(client), host, port)
        except (OSError, TimeoutError) as exc:
            raise PptpClientError(f"cannot connect to {host}:{port}: {exc or 'timed out'}") from exc
        protocol.conn = ControlConnection(
            Role.CLIENT, loop.time(), config=client.config, tracer=tracer, call_ids=call_ids
        )
        client._protocol = protocol
        return client

    @property
    def connection(self) -> ControlConnection:
        assert self._protocol is not None and self._protocol.conn is not None
        return self._protocol.conn

    @property
    def calls(self) -> dict[int, Call]:
        return self.connection.calls

    # -- operations -------------------------------------------------------------------

    async def start(self) -> StartControlConnectionReply:
        """SCCRQ -> SCCRP; returns the server's reply."""
        event = await self._request(
            lambda now: self.connection.start(now),
            lambda e: isinstance(e, ControlConnectionEstablished | StartRefused),
            "SCCRP",
        )
        if isinstance(event, StartRefused):
            raise PptpClientError(f"server refused the control connection: {event.result_code!r}")
        assert isinstance(event, ControlConnectionEstablished)
        assert isinstance(event.peer_start, StartControlConnectionReply)
        return event.peer_start

    async def open_call(self, *, window: int = 64, maximum_bps: int = 100_000_000) -> Call:
        """OCRQ -> OCRP; returns the established call."""
        placed: list[Call] = []

        def answered(e: Event) -> bool:
            call_id = placed[0].call_id
            return (isinstance(e, CallEstablished) and e.call.call_id == call_id) or (
                isinstance(e, CallRefused) and e.peer_call_id == call_id
            )

        event = await self._request(
            lambda now: placed.append(self.connection.open_call(now, window=window, maximum_bps=maximum_bps)),
            answered,
            "OCRP",
        )
        if isinstance(event, CallRefused):
            raise PptpClientError(f"server refused the call: {event.result_code!r}/{event.error_code.name}")
        assert isinstance(event, CallEstablished)
        return event.call

    async def echo(self) -> float:
        """Echo-Request -> Echo-Reply; returns the round-trip time in seconds."""
        sent: list[int] = []
        event = await self._request(
            lambda now: sent.append(self.connection.send_echo(now)),
            lambda e: isinstance(e, EchoAnswered) and e.identifier == sent[0],
            "Echo-Reply",
        )
        assert isinstance(event, EchoAnswered)
        return event.round_trip

    async def clear_call(self, call: Call) -> CallCleared:
        """CCRQ -> CDN."""
        event = await self._request(
            lambda now: self.connection.clear_call(call.call_id, now),
            lambda e: isinstance(e, CallCleared) and e.call is call,
            "CDN",
        )
        assert isinstance(event, CallCleared)
        return event

    async def stop(self, reason: StopReason = StopReason.NONE) -> str:
        """StopCCRQ -> StopCCRP; the connection is closed afterwards.  Returns why it closed."""
        event = await self._request(
            lambda now: self.connection.stop(now, reason),
            lambda e: isinstance(e, ControlConnectionClosed),
            "StopCCRP",
        )
        assert isinstance(event, ControlConnectionClosed)
        return event.reason

    async def wait_closed(self) -> str:
        """Wait until the server (or a timer) ends the connection; returns why."""
        if self.closed_reason is not None:
            return self.closed_reason
        event = await self._request(None, lambda e: isinstance(e, ControlConnectionClosed), "close")
        assert isinstance(event, ControlConnectionClosed)
        return event.reason

    def close(self) -> None:
        """Drop the TCP connection without any goodbye."""
        if self._protocol is not None:
            self._protocol.abort("closed by the application")

    # -- internals ----------------------------------------------------------------------

    async def _request(
        self, action: Callable[[float], object] | None, predicate: Callable[[Event], bool], what: str
    ) -> Event:
        """Register a waiter for the answer, then act, then wait (so no answer is missed)."""
        assert self._protocol is not None
        future: asyncio.Future[Event] = self._protocol.loop.create_future()
        self._waiters.append((predicate, future))
        try:
            if action is not None:
                if self.closed_reason is not None:
                    raise PptpClientError(f"connection closed: {self.closed_reason}")
                action(self._protocol.loop.time())
                self._protocol.flush()
            async with asyncio.timeout(self.timeout):
                return await future
        except TimeoutError:
            raise PptpClientError(f"no {what} within {self.timeout:g} s") from None
        finally:
            self._waiters = [(p, f) for p, f in self._waiters if f is not future]

    def _on_event(self, event: Event) -> None:
        self.events.append(event)
        for predicate, future in self._waiters:
            if not future.done() and predicate(event):
                future.set_result(event)
                break
        if isinstance(event, ControlConnectionClosed):
            self.closed_reason = event.reason
            for _, future in self._waiters:
                if not future.done():
                    future.set_exception(PptpClientError(f"connection closed: {event.reason}"))
        for listener in list(self.listeners):
            listener(event)


async def run_sequence(
    host: str, port: int = PPTP_PORT, *, out: Callable[[str], object] = print, sock: socket.socket | None = None
) -> None:
    """SCCRQ / OCRQ / Echo / CCRQ / StopCCRQ against a server, printing each step."""
    t0 = time.monotonic()

    def say(text: str) -> None:
        out(f"[{time.monotonic() - t0:7.3f}s] {text}")

    client = await ControlClient.connect(host, port, sock=sock)
    say(f"TCP connected to {host}:{port}")
    reply = await client.start()
    say(
        f"SCCRQ -> SCCRP {reply.result_code.name}: server {reply.host_name!r}/{reply.vendor_string!r}, "
        f"version 0x{reply.protocol_version:04X}"
    )
    call = await client.open_call()
    say(f"OCRQ -> OCRP CONNECTED: our Call ID {call.call_id}, server's Call ID {call.peer_call_id}")
    rtt = await client.echo()
    say(f"Echo-Request -> Echo-Reply in {rtt * 1000:.2f} ms")
    cleared = await client.clear_call(call)
    say(f"CCRQ -> CDN {cleared.result_code.name}")
    reason = await client.stop()
    say(f"StopCCRQ -> StopCCRP; {reason}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pypptp.aio.client", description="Run a PPTP control-channel exchange against a server."
    )
    parser.add_argument("host")
    parser.add_argument("-p", "--port", type=int, default=PPTP_PORT)
    args = parser.parse_args(argv)
    try:
        asyncio.run(run_sequence(args.host, args.port))
    except PptpClientError as exc:
        print(f"pptp client: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
