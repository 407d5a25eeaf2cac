"""Stand-ins for the data path's kernel objects, so that it runs without root or namespaces.

* :class:`ClockLoop`: an asyncio event loop whose clock the test moves (:func:`advance`): timers fire
  when the test says time has passed, never because the machine was slow.  I/O stays real.
* :class:`FakeRawSocket`: what :class:`~pypptp.aio.gre.GreTransport` uses of a raw ``IPPROTO_GRE``
  socket.  Received IP packets wait in memory; a real socket pair only rings the loop (its
  ``fileno``), so ``open(sock)`` watches it like a real one.  Sent packets are recorded and, on a
  :class:`FakeNetwork`, handed to the socket of the destination address with an IPv4 header in front,
  as the kernel would; errors to raise can be queued for either direction.
* :class:`FakeTun`: what :class:`~pypptp.aio.session.PppSession` uses of a TUN device, on a
  ``SOCK_SEQPACKET`` socket pair (one packet per read and write, as a TUN descriptor gives).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import errno
import socket
from collections.abc import Awaitable, Callable
from ipaddress import IPv4Address
from typing import TypeVar

T = TypeVar("T")


class ClockLoop(asyncio.SelectorEventLoop):
    """An event loop whose ``time()`` only moves when the test moves it."""

    def __init__(self, start: float = 1000.0) -> None:
        super().__init__()
        self.now = start

    def time(self) -> float:
        return self.now


def run(test: Callable[[ClockLoop], Awaitable[T]]) -> T:
    """Run ``test(loop)`` to completion on a fresh :class:`ClockLoop`."""
    loop = ClockLoop()
    try:
        return loop.run_until_complete(test(loop))
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


async def turns(count: int = 8) -> None:
    """Let the loop run ``count`` times (callbacks, ready I/O and due timers), without moving its clock."""
    for _ in range(count):
        await asyncio.sleep(0)


async def advance(loop: ClockLoop, seconds: float) -> None:
    """Let what is under way now happen, then move the clock and let what became due run."""
    await turns()
    loop.now += seconds
    await turns()


async def until(condition: Callable[[], object], turns_at_most: int = 2000) -> None:
    """Turn the loop until ``condition()`` holds: a bounded number of turns, no wall clock."""
    for _ in range(turns_at_most):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition not met")


async def until_in_time(loop: ClockLoop, condition: Callable[[], object], seconds: float, step: float = 0.01) -> None:
    """Let the loop's clock run in ``step`` s until ``condition()`` holds, at most ``seconds``."""
    for _ in range(round(seconds / step)):
        if condition():
            return
        await advance(loop, step)
    if not condition():
        raise AssertionError(f"condition not met within {seconds} s of the loop's clock")


def ipv4_header(source: str, destination: str, payload_length: int, protocol: int = 47) -> bytes:
    """A 20-byte IPv4 header (no checksum: nothing here checks it)."""
    total = 20 + payload_length
    return (
        bytes([0x45, 0, total >> 8, total & 0xFF, 0, 0, 0x40, 0, 64, protocol, 0, 0])
        + IPv4Address(source).packed
        + IPv4Address(destination).packed
    )


class FakeRawSocket:
    """A raw GRE socket's stand-in (see the module docstring)."""

    def __init__(self, address: str = "198.18.0.1", network: FakeNetwork | None = None) -> None:
        self.address = address
        self.network = network
        self.inbox: collections.deque[bytes] = collections.deque()
        self.sent: list[tuple[bytes, tuple[str, int]]] = []
        self.send_errors: list[OSError] = []
        """Raised by the next ``sendto`` calls, one each."""
        self.receive_errors: list[OSError] = []
        """Raised by the next ``recv_into`` calls, one each, before any packet."""
        self.options: list[tuple[int, int, int]] = []
        self.bound: tuple[str, int] | None = None
        self.closed = False
        self._bell, self._ringer = socket.socketpair()
        self._bell.setblocking(False)
        self._ringer.setblocking(False)
        self._rung = False
        if network is not None:
            network.sockets[address] = self

    # -- what GreTransport calls --------------------------------------------------------------------

    def fileno(self) -> int:
        return self._bell.fileno()

    def setblocking(self, flag: bool) -> None:
        pass

    def setsockopt(self, level: int, name: int, value: int) -> None:
        self.options.append((level, name, value))

    def bind(self, address: tuple[str, int]) -> None:
        self.bound = address

    def recv_into(self, buffer: bytearray) -> int:
        if self.receive_errors:
            raise self.receive_errors.pop(0)
        if not self.inbox:
            self._quiet()
            raise BlockingIOError
        packet = self.inbox.popleft()
        buffer[: len(packet)] = packet
        return len(packet)

    def sendto(self, data: bytes | memoryview, address: tuple[str, int]) -> int:
        if self.closed:
            raise OSError(errno.EBADF, "Bad file descriptor")
        if self.send_errors:
            raise self.send_errors.pop(0)
        packet = bytes(data)
        self.sent.append((packet, address))
        if self.network is not None:
            self.network.route(self.address, address[0], packet)
        return len(packet)

    def close(self) -> None:
        self.closed = True
        self._bell.close()
        self._ringer.close()

    # -- the test's side ------------------------------------------------------------------------------

    def receive(self, ip_packet: bytes) -> None:
        """An IP packet for this socket: the loop sees it readable."""
        self.inbox.append(ip_packet)
        if not self._rung and not self.closed:
            self._ringer.send(b"\0")
            self._rung = True

    def receive_gre(self, source: str, gre: bytes) -> None:
        self.receive(ipv4_header(source, self.address, len(gre)) + gre)

    def _quiet(self) -> None:
        if self._rung:
            with contextlib.suppress(BlockingIOError, OSError):
                while self._bell.recv(4096):
                    pass
            self._rung = False


class FakeNetwork:
    """Carries GRE between :class:`FakeRawSocket` s by destination address; ``filter`` may drop or
    hold a packet (return False to drop it)."""

    def __init__(self) -> None:
        self.sockets: dict[str, FakeRawSocket] = {}
        self.filter: Callable[[str, str, bytes], bool] | None = None
        self.carried = 0
        self.dropped = 0

    def route(self, source: str, destination: str, gre: bytes) -> None:
        if self.filter is not None and not self.filter(source, destination, gre):
            self.dropped += 1
            return
        target = self.sockets.get(destination)
        if target is None or target.closed:
            self.dropped += 1
            return
        self.carried += 1
        target.receive_gre(source, gre)


class FakeTun:
    """What the session uses of :class:`~pypptp.host.tun.TunDevice`, on one end of a packet socket pair:
    the test reads what the session wrote, and writes what the kernel would route into the tunnel, at
    ``theirs``."""

    def __init__(self, name: str = "ppp9") -> None:
        self.ours, self.theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.ours.setblocking(False)
        self.theirs.setblocking(False)
        self.fd = self.ours.fileno()
        self.name = name
        self.configured: list[tuple[IPv4Address, IPv4Address, int]] = []
        self.mtus: list[int] = []
        self.closed = False

    def configure(self, local: IPv4Address, peer: IPv4Address, mtu: int, *, ipv6: bool = False) -> None:
        self.configured.append((local, peer, mtu))

    def set_mtu(self, mtu: int) -> None:
        self.mtus.append(mtu)

    def close(self, *, wait: bool = False) -> None:
        self.closed = True
        self.ours.close()
        self.theirs.close()

    def written(self) -> list[bytes]:
        """Every packet the session wrote and nobody has read yet."""
        packets = []
        while True:
            try:
                packets.append(self.theirs.recv(65536))
            except BlockingIOError:
                return packets
