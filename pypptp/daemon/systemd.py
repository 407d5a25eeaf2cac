"""systemd's readiness protocol (``sd_notify``) in plain Python, for the unit's ``Type=notify``.

systemd starts ``pypptpd -f`` and sets ``NOTIFY_SOCKET`` to a datagram socket
(a path, or an abstract name written with a leading ``@``); the daemon sends
newline-separated ``KEY=value`` lines there (sd_notify(3)):

* ``READY=1`` once TCP 1723 accepts (with ``--workers``, once every worker
  serves): ``systemctl start`` returns then, and units ordered after ours start;
* ``RELOADING=1`` with ``MONOTONIC_USEC=`` (CLOCK_MONOTONIC, microseconds) on
  SIGHUP, then ``READY=1`` when the files are re-read: ``systemctl reload``
  waits for it;
* ``STOPPING=1`` when SIGTERM begins the shutdown;
* ``STATUS=`` a line ``systemctl status`` shows (how many sessions).

Without ``NOTIFY_SOCKET`` (started by hand, or by another supervisor) every
call does nothing.  A send that fails is ignored: readiness is a courtesy to
the service manager, never a reason to stop serving.  No dependency: one
``AF_UNIX`` ``SOCK_DGRAM`` socket, sent to without blocking.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time

__all__ = ["Notifier", "notifier"]


class Notifier:
    """Sends sd_notify(3) messages to ``address`` (``NOTIFY_SOCKET``'s value); None: sends nothing."""

    def __init__(self, address: str | None) -> None:
        self.address: str | bytes | None = None
        if address and address[0] in "/@":
            self.address = "\0" + address[1:] if address[0] == "@" else address
        self._sock: socket.socket | None = None

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, *lines: str) -> bool:
        """Send ``KEY=value`` lines as one datagram; True if it was sent."""
        if self.address is None:
            return False
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self._sock.setblocking(False)
            self._sock.sendto("\n".join(lines).encode("utf-8", "replace"), self.address)
        except OSError:
            return False
        return True

    def ready(self, status: str | None = None) -> bool:
        return self.send("READY=1", *([f"STATUS={status}"] if status else []))

    def reloading(self) -> bool:
        return self.send("RELOADING=1", f"MONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}")

    def stopping(self) -> bool:
        return self.send("STOPPING=1")

    def status(self, text: str) -> bool:
        return self.send(f"STATUS={text}")

    def close(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
            self._sock = None


def notifier() -> Notifier:
    """The notifier for this process: ``NOTIFY_SOCKET`` read once and removed from the environment, so
    that ip-up and ip-down scripts (and anything else we start) do not talk to systemd in our name."""
    return Notifier(os.environ.pop("NOTIFY_SOCKET", None))
