"""``--workers N``: one control socket and one ``/metrics`` for all workers.

Each worker answers on a socket of its own (``PATH.workerI``, 0600, the same code as a single
daemon's: :mod:`pypptp.daemon.control`).  The supervisor cannot serve anything itself: it runs no
event loop and no thread, so that it can fork restarted workers safely (:class:`~pypptp.daemon.workers.Supervisor`).
So a small *front* process, forked by the supervisor before the workers, owns ``PATH`` and the
metrics endpoint: every request is passed to every worker, and their answers merged
(:func:`~pypptp.daemon.control.merge`: one table of all sessions, counters added; ``terminate``
reaches whichever worker holds the session).  ``/metrics`` asks every worker for a snapshot at each
scrape and labels each series with its ``worker``.

``reload`` has every worker reload (each answers with its outcome), then tells the supervisor with
:data:`~pypptp.daemon.workers.RELOADED_SIGNAL` to re-read the configuration a restarted worker would
start with, as SIGHUP does, without passing it on again.

The front dies with the supervisor (``PR_SET_PDEATHSIG``), is stopped with SIGTERM when the shutdown
begins, and says whether it could take the socket before any worker starts (a live daemon on it
stops the start, as in a single process).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
from typing import Any

from pypptp.daemon.control import ControlError, ControlSocket, merge, request
from pypptp.daemon.workers import RELOADED_SIGNAL, die_with_parent

__all__ = ["Front", "worker_socket"]

log = logging.getLogger("pypptpd")

WORKER_TIMEOUT = 10.0


def worker_socket(path: str, index: int) -> str:
    """A worker's own control socket, which the front asks."""
    return f"{path}.worker{index}"


class Front:
    """The front process: started with :meth:`start` (in the supervisor, before the workers)."""

    def __init__(self, path: str | None, metrics: tuple[str, int] | None, count: int) -> None:
        self.path = path
        self.metrics = metrics
        self.count = count
        self.pid: int | None = None

    def start(self, close_in_child: list[socket.socket]) -> None:
        """Fork the front; return once it serves.  Raises ControlError with its reason if it cannot."""
        if self.metrics is not None and self.path is None:  # it asks the workers over their sockets
            raise ControlError("--metrics with --workers needs the control socket (not --control-socket none)")
        read_end, write_end = os.pipe()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # the front
            os.close(read_end)
            status = 1
            try:
                for sock in close_in_child:
                    sock.close()
                die_with_parent(parent)
                status = asyncio.run(self._serve(write_end, parent))
            except BaseException as exc:
                with contextlib.suppress(BaseException):
                    os.write(write_end, f"{exc}".encode()[:512] or b"internal error")
            finally:
                with contextlib.suppress(BaseException):
                    logging.shutdown()
                os._exit(status)
        os.close(write_end)
        self.pid = pid
        with os.fdopen(read_end, "rb") as pipe:
            said = pipe.read(1024).decode(errors="replace")
        if said != "ok":
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
            self.pid = None
            raise ControlError(said or "the control front ended")

    def stop(self) -> None:
        if self.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGTERM)

    async def _serve(self, ready_fd: int, parent: int) -> int:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        loop.add_signal_handler(signal.SIGHUP, lambda: None)  # the supervisor's business, not the front's
        control = None
        metrics: Any = None
        try:
            if self.path is not None:
                control = ControlSocket(self.path, lambda command: self._ask_all(command, parent))
                await control.start()
            if self.metrics is not None:
                from pypptp.daemon.metrics import MetricsServer

                metrics = MetricsServer(self.metrics, self._snapshots)
                metrics.start()
        except (ControlError, OSError) as exc:
            if control is not None:
                control.close()
            os.write(ready_fd, str(exc).encode()[:512])
            os.close(ready_fd)
            return 1
        os.write(ready_fd, b"ok")
        os.close(ready_fd)
        await stop.wait()
        if control is not None:
            control.close()
        if metrics is not None:
            metrics.close()
        return 0

    def _ask(self, index: int, command: list[str]) -> dict[str, Any] | None:
        assert self.path is not None
        try:
            return request(worker_socket(self.path, index), command, WORKER_TIMEOUT)
        except (OSError, ValueError) as exc:
            log.warning("MGR: control: worker %d did not answer: %s", index, exc)
            return None

    async def _ask_all(self, command: list[str], parent: int) -> dict[str, Any]:
        answers = await asyncio.gather(*(asyncio.to_thread(self._ask, i, command) for i in range(self.count)))
        got = [answer for answer in answers if answer is not None]
        merged = merge(got)
        if merged.get("ok") and command == ["reload"]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(parent, RELOADED_SIGNAL)  # what a restarted worker starts with
        missing = self.count - len(got)
        if missing and merged.get("ok"):
            merged["missing_workers"] = missing
        return merged

    def _snapshots(self) -> list[tuple[str | None, dict[str, Any]]]:
        out: list[tuple[str | None, dict[str, Any]]] = []
        for index in range(self.count):
            answer = self._ask(index, ["snapshot"])
            if answer is not None and answer.get("ok"):
                out.append((str(index), answer))
        return out
