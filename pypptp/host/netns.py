"""Throw-away network namespaces for tests, the demo and benchmarks.

:func:`two_hosts` creates a server namespace and a client namespace joined by
a veth pair (built from :func:`namespaces` and :func:`link`, which tests use
for other shapes) created directly inside them (nothing is added to, or routed
through, the root namespace), with test-network addresses from
198.18.0.0/15 (RFC 2544), and deletes both on exit, whatever happened.

:meth:`NetnsPair.socket` makes a socket that lives in a namespace without
moving the calling process: a helper thread enters the namespace with
setns(2), which changes only that thread, creates the socket and exits.  A
socket keeps the namespace it was created in, so the test process can use it
from its own event loop.  Needs root and iproute2.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import os
import shutil
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator
from socket import socket as Socket
from typing import TypeVar

__all__ = [
    "CLIENT_IP",
    "SERVER_IP",
    "NetnsPair",
    "link",
    "namespaces",
    "netns_available",
    "run_in_netns",
    "two_hosts",
]

CLONE_NEWNET = 0x40000000
NETNS_DIR = "/run/netns"

SERVER_IP = "198.18.0.1"
CLIENT_IP = "198.18.0.2"
PREFIX_LEN = 24

_R = TypeVar("_R")


def _ip(*args: str) -> None:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {result.stderr.strip()}")


def run_in_netns(name: str, function: Callable[[], _R]) -> _R:
    """Run ``function`` in a fresh thread that has entered namespace ``name``."""
    outcome: list[_R] = []
    failure: list[BaseException] = []

    def body() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = os.open(os.path.join(NETNS_DIR, name), os.O_RDONLY)
            try:
                if libc.setns(fd, CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, f"setns({name}): {os.strerror(err)}")
            finally:
                os.close(fd)
            outcome.append(function())
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=body, name=f"netns-{name}")
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return outcome[0]


@dataclasses.dataclass(frozen=True)
class NetnsPair:
    """A server and a client namespace on one link."""

    server_ns: str
    client_ns: str
    server_ip: str = SERVER_IP
    client_ip: str = CLIENT_IP

    def exec_argv(self, ns: str, argv: list[str]) -> list[str]:
        """``argv`` wrapped to run inside namespace ``ns``."""
        return ["ip", "netns", "exec", ns, *argv]

    def socket(self, ns: str, family: int = socket.AF_INET, kind: int = socket.SOCK_STREAM, proto: int = 0) -> Socket:
        """A new socket that lives in namespace ``ns``."""
        return run_in_netns(ns, lambda: socket.socket(family, kind, proto))

    def connect(self, ns: str, address: tuple[str, int], timeout: float = 5.0) -> Socket:
        """A TCP socket in ``ns``, connected to ``address`` and left non-blocking."""
        sock = self.socket(ns)
        try:
            sock.settimeout(timeout)
            sock.connect(address)
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        return sock


@contextlib.contextmanager
def namespaces(*names: str) -> Iterator[tuple[str, ...]]:
    """Create network namespaces ``names``; delete them (and their veths) afterwards."""
    created: list[str] = []
    try:
        for name in names:
            _ip("netns", "add", name)
            created.append(name)
        yield names
    finally:
        for name in reversed(created):
            with contextlib.suppress(RuntimeError):
                _ip("netns", "delete", name)


def link(ns_a: str, address_a: str, ns_b: str, address_b: str, ifname: str = "veth0") -> None:
    """Join two namespaces with a veth pair created directly inside them, addressed /24, up."""
    _ip("link", "add", ifname, "netns", ns_a, "type", "veth", "peer", "name", ifname, "netns", ns_b)
    for ns, address in ((ns_a, address_a), (ns_b, address_b)):
        _ip("-n", ns, "addr", "add", f"{address}/{PREFIX_LEN}", "dev", ifname)
        _ip("-n", ns, "link", "set", ifname, "up")
        _ip("-n", ns, "link", "set", "lo", "up")


@contextlib.contextmanager
def two_hosts(tag: str) -> Iterator[NetnsPair]:
    """Create ``pypptp-<tag>-<pid>-srv`` and ``...-cli`` joined by veth; delete them after."""
    base = f"pypptp-{tag}-{os.getpid()}"
    pair = NetnsPair(f"{base}-srv", f"{base}-cli")
    with namespaces(pair.server_ns, pair.client_ns):
        link(pair.server_ns, pair.server_ip, pair.client_ns, pair.client_ip)
        yield pair


def netns_available() -> str | None:
    """``None`` if namespaces can be made here, else the reason they cannot."""
    if os.geteuid() != 0:
        return "needs root"
    if shutil.which("ip") is None:
        return "needs iproute2 (the ip command)"
    return None
