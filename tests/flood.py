"""A connection flood against TCP 1723, for the admission tests and the measurements in the README.

:class:`Flood` holds a number of connections of three kinds open to a server, from given source
addresses, and reopens each one the server drops, until it is stopped:

* ``idle``: connect and say nothing;
* ``sccrq``: send a valid SCCRQ, read whatever comes back, say nothing more;
* ``trickle``: send an SCCRQ one byte per second (a slow-loris);
* ``call``: SCCRQ then OCRQ, then nothing: a call that never authenticates (the server starts a PPP
  session for it and sends LCP Configure-Requests into the void).

Every loop is bounded (the number of connections, and a deadline); the sockets live in the namespace
given, so nothing is sent outside it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import socket

from pypptp.ctrl.messages import OutgoingCallRequest, StartControlConnectionRequest
from pypptp.daemon.cli import raise_fd_limit
from pypptp.host.netns import run_in_netns

KINDS = ("idle", "sccrq", "trickle", "call")
SCCRQ = StartControlConnectionRequest(host_name="flood", vendor_string="flood").encode()
OCRQ = OutgoingCallRequest(call_id=1, call_serial_number=1).encode()


@dataclasses.dataclass
class FloodStats:
    opened: int = 0
    dropped_by_server: int = 0
    refused: int = 0


class Flood:
    """``count`` connections of each kind in ``kinds``, spread over ``sources``, to ``address``."""

    def __init__(
        self,
        namespace: str,
        address: tuple[str, int],
        sources: list[str],
        count: int,
        kinds: tuple[str, ...] = KINDS,
        *,
        deadline: float = 120.0,
    ) -> None:
        self.namespace = namespace
        self.address = address
        self.sources = sources
        self.count = count
        self.kinds = kinds
        self.deadline = deadline
        self.stats = FloodStats()
        self.held = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._stop = asyncio.Event()

    async def start(self, ramp: float = 0.0) -> None:
        """Open every connection (spread over ``ramp`` seconds), then keep them open."""
        raise_fd_limit()
        loop = asyncio.get_running_loop()
        stop_at = loop.time() + self.deadline
        total = self.count * len(self.kinds)
        for n in range(total):
            kind = self.kinds[n % len(self.kinds)]
            source = self.sources[n % len(self.sources)]
            self._tasks.append(asyncio.ensure_future(self._hold(kind, source, stop_at)))
            if ramp and n % 50 == 49:
                await asyncio.sleep(ramp * 50 / total)

    async def wait_held(self, fraction: float = 0.9, timeout: float = 60.0) -> None:
        """Until at least ``fraction`` of the connections are open at once (or ``timeout``)."""
        loop = asyncio.get_running_loop()
        until = loop.time() + timeout
        while self.held < fraction * self.count * len(self.kinds) and loop.time() < until:
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        self._stop.set()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(BaseException):
                await task

    async def _hold(self, kind: str, source: str, stop_at: float) -> None:
        loop = asyncio.get_running_loop()
        for _ in range(100_000):  # reopen what the server drops, within the deadline
            if self._stop.is_set() or loop.time() >= stop_at:
                return
            sock = await loop.run_in_executor(None, run_in_netns, self.namespace, _new_socket)
            try:
                sock.bind((source, 0))
                await asyncio.wait_for(loop.sock_connect(sock, self.address), 5)
            except (OSError, TimeoutError):
                sock.close()
                self.stats.refused += 1
                await asyncio.sleep(0.2)
                continue
            self.stats.opened += 1
            self.held += 1
            try:
                await self._speak(kind, sock, stop_at)
            finally:
                self.held -= 1
                sock.close()

    async def _speak(self, kind: str, sock: socket.socket, stop_at: float) -> None:
        """Play ``kind`` until the server drops the connection (then count it) or the flood ends."""
        loop = asyncio.get_running_loop()
        try:
            if kind in ("sccrq", "call"):
                await loop.sock_sendall(sock, SCCRQ)
            if kind == "call":
                await loop.sock_sendall(sock, OCRQ)
            if kind == "trickle":
                for byte in SCCRQ:
                    await loop.sock_sendall(sock, bytes([byte]))
                    try:
                        if not await asyncio.wait_for(loop.sock_recv(sock, 4096), 1.0):
                            break
                    except TimeoutError:
                        continue
            else:
                while loop.time() < stop_at:
                    if not await loop.sock_recv(sock, 4096):
                        break
            self.stats.dropped_by_server += 1
        except OSError:
            self.stats.dropped_by_server += 1


def _new_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    return sock


async def _main(args: argparse.Namespace) -> None:
    flood = Flood(
        args.ns, (args.to, 1723), args.source, args.per_kind, tuple(args.kinds.split(",")), deadline=args.seconds
    )
    await flood.start()
    loop = asyncio.get_running_loop()
    until = loop.time() + args.seconds
    while loop.time() < until:
        print(f"held {flood.held} opened {flood.stats.opened} dropped {flood.stats.dropped_by_server}", flush=True)
        await asyncio.sleep(1.0)
    await flood.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="hold a connection flood against TCP 1723 (tests only)")
    parser.add_argument("--ns", required=True, help="the network namespace to flood from")
    parser.add_argument("--to", required=True, help="the server's address")
    parser.add_argument("--source", action="append", required=True, help="a source address (repeatable)")
    parser.add_argument("--per-kind", type=int, default=100)
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--seconds", type=float, default=60.0)
    asyncio.run(_main(parser.parse_args()))
