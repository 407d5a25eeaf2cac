"""Claims shared by the processes of one daemon (``pypptpd --workers N``), released when their holder dies.

The workers of one daemon hand out from one address pool and one ``connections`` limit, and each
allocation is made synchronously (the PPP link asks for its addresses at authentication, and waits for
no one).  A claim is an abstract UNIX socket bound to a name of the daemon's (``\\0pypptpd/PID/NAME``),
and :func:`pypptp.host.tun.claim_unit` claims ``pppN`` with one (``\\0pypptpd/pppN``):

* ``bind`` is atomic: of two workers binding the same name at once, exactly one succeeds (EADDRINUSE
  for the other), with no lock file, no shared memory and no message to anyone;
* the kernel drops the name when the socket is closed, so a worker killed by SIGKILL leaves nothing
  behind: everything it held is free again at once (a lock file would need a ``flock`` on it and a
  directory to clean up; an allocator process would be one more thing to die);
* abstract names belong to the network namespace, so daemons in two namespaces never meet, and ``PID``
  (the supervisor's) keeps two daemons of one namespace apart.

A claim costs one file descriptor while held and one ``bind`` to take (about 2 µs; a refused one the
same), at authentication only, never per packet.
"""

from __future__ import annotations

import socket

__all__ = ["Claim", "Claims"]


class Claim:
    """One name held by this process until :meth:`release` (harmless twice) or its death."""

    __slots__ = ("_socket", "name")

    def __init__(self, name: str, sock: socket.socket) -> None:
        self.name = name
        self._socket: socket.socket | None = sock

    @property
    def held(self) -> bool:
        return self._socket is not None

    def release(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def __repr__(self) -> str:
        return f"<Claim {self.name}{'' if self.held else ' (released)'}>"


class Claims:
    """The names of one daemon's processes: ``\\0TAG/NAME``; every process sharing them uses one ``tag``."""

    def __init__(self, tag: str) -> None:
        self.tag = tag

    def take(self, name: str) -> Claim | None:
        """``name``, now held by this process; None if another process (or this one) holds it."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        try:
            sock.bind(f"\0{self.tag}/{name}")
        except OSError:  # EADDRINUSE: held elsewhere
            sock.close()
            return None
        return Claim(name, sock)

    def first_free(self, kind: str, count: int) -> Claim | None:
        """The lowest ``KIND/i`` (``0 <= i < count``) that nobody holds, now held; None if all are."""
        for index in range(count):
            claim = self.take(f"{kind}/{index}")
            if claim is not None:
                return claim
        return None

    def __repr__(self) -> str:
        return f"<Claims {self.tag}>"
