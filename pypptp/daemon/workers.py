"""``pypptpd --workers N``: N worker processes share the calls; the parent supervises them.

One asyncio process runs on one core.  With ``--workers N`` the parent reads
and checks the configuration, writes the pid file (its own pid, as pptpd
does), makes the listening sockets, then forks N workers before any event
loop exists.  Each worker is a whole daemon (:class:`pypptp.daemon.manager.Daemon`)
over its own part of every shared resource, so that workers never have to
talk to each other:

* **TCP 1723**: N listening sockets bound to the same address with
  ``SO_REUSEPORT`` (:func:`listening_sockets`); the kernel spreads incoming
  connections over them by a hash of the addresses and ports, and worker *i*
  accepts on socket *i*.  The parent keeps every socket open, so a restarted
  worker takes over its predecessor's socket and the connections queued on it;
  a bind probe without ``SO_REUSEPORT`` first makes sure that no other server
  (another pypptpd included) already listens there;
* **GRE**: each worker opens its own raw GRE socket with a classic BPF filter
  that accepts only the Call IDs of its class, ``ID % N == i``
  (:mod:`pypptp.host.bpf`), and hands out only Call IDs of that class
  (:class:`~pypptp.ctrl.callids.CallIdAllocator`).  A packet is queued on
  one socket and wakes one worker, instead of being copied to all;
* **the address pool**: worker *i* owns slots *i*, *i+N*, *i+2N*...
  (:meth:`~pypptp.daemon.pool.AddressPool.share`); static addresses from
  chap-secrets are per user and need no split;
* **connections**: the limit is split, worker *i* takes
  ``connections // N`` plus one if ``i < connections % N`` (:func:`split`),
  so the total never exceeds it.  As the kernel picks the worker, a
  connection can be refused by a full worker while another has room; and
  with interleaved slots worker *i* stays within the first ``connections``
  slots, as pptpd's single pool does.  ``--workers`` is lowered to
  ``connections`` if it is larger;
* **pppN units**: claimed across processes (:func:`pypptp.host.tun.share_units_between_processes`),
  with a retry on a name taken meanwhile;
* ip-up and ip-down run in the worker that owns the session, once per session.

The supervisor (:class:`Supervisor`, in the parent): SIGTERM and SIGINT are
passed to every worker, which ends its sessions politely (LCP
Terminate-Request, then CDN and StopCCRQ) and exits; SIGHUP is passed on, and
every worker re-reads chap-secrets and the pppd options and reopens its log
files.  Each worker tells the supervisor when it serves (:data:`READY_SIGNAL`);
once all have, the supervisor reports the daemon ready (to systemd, and to
the process that started a detached daemon).  A worker that dies
unasked is logged and restarted, at most :data:`RESTARTS_ALLOWED` times in
:data:`RESTART_WINDOW` seconds, after which everything is shut down.  Its
sessions are gone with it (their ``pppN`` devices disappear with the process;
ip-down does not run, as with a pppd killed by SIGKILL); the other workers'
sessions carry on.  A worker that cannot start (exit status
:data:`EXIT_CANNOT_START`) shuts everything down.  The parent exits 0 when
every worker ended cleanly after SIGTERM, 1 otherwise.

Log lines keep their ``name[pid]:`` form (``pypptpd[PID]``, ``pppd.pppN[PID]``),
each process with its own pid as pptpd's control processes had; the parent
logs which pid is which worker.
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable

__all__ = [
    "EXIT_CANNOT_START",
    "MAX_WORKERS",
    "RELOADED_SIGNAL",
    "Supervisor",
    "die_with_parent",
    "effective_workers",
    "listening_sockets",
    "split",
    "worker_ready",
]

log = logging.getLogger("pypptpd")

MAX_WORKERS = 64
EXIT_CANNOT_START = 3
"""A worker's exit status when it could not start serving (its socket or device failed): no restart."""
EXIT_CRASHED = 70
"""A worker's exit status after an unexpected exception (EX_SOFTWARE): restarted."""
RESTARTS_ALLOWED = 5
RESTART_WINDOW = 60.0
STOP_TIMEOUT = 60.0
"""Seconds the workers have to end their sessions after SIGTERM (ip-down included) before SIGKILL."""
READY_SIGNAL = signal.SIGRTMIN
"""What a worker sends the supervisor once it serves (:func:`worker_ready`); real-time, so each one is queued."""
RELOADED_SIGNAL = signal.SIGRTMIN + 1
"""``pypptpctl reload`` reloaded every worker (:mod:`pypptp.daemon.fanout`): the supervisor re-reads the
configuration a restarted worker starts with, as on SIGHUP, without passing anything on."""
SIGNALS = {
    signal.SIGTERM,
    signal.SIGINT,
    signal.SIGHUP,
    signal.SIGUSR1,
    signal.SIGUSR2,
    signal.SIGCHLD,
    READY_SIGNAL,
    RELOADED_SIGNAL,
}
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def split(connections: int, workers: int) -> list[int]:
    """Each worker's part of the connection limit; the parts add up to ``connections``."""
    return [connections // workers + (1 if index < connections % workers else 0) for index in range(workers)]


def effective_workers(requested: int, connections: int) -> tuple[int, str | None]:
    """The number of workers to run, and a warning if ``requested`` had to be lowered."""
    if requested > connections:
        return connections, f"--workers {requested} lowered to {connections}: only {connections} connections allowed"
    return requested, None


def listening_sockets(address: str, port: int, count: int, backlog: int = 128) -> list[socket.socket]:
    """``count`` TCP sockets listening on ``address:port`` together (``SO_REUSEPORT``); raise OSError.

    A probe bind without ``SO_REUSEPORT`` first: it fails if anything already listens there, even a
    socket that would have joined our group (another pypptpd with workers)."""
    host = "" if address in ("", "0.0.0.0") else address
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((host, port))
            sock.listen(backlog)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets


_supervisor: int | None = None  # in a worker: the supervisor's pid


def worker_ready() -> None:
    """In a worker: tell the supervisor that this worker serves (its sockets and devices are open).  Only
    the supervisor that forked it, and only while it is still the parent: the signal's default action
    kills, and an orphan's new parent (a subreaper) would not expect it."""
    if _supervisor is not None and os.getppid() == _supervisor:
        with contextlib.suppress(OSError):
            os.kill(_supervisor, READY_SIGNAL)


def _die_with_parent(parent: int) -> None:
    """A worker gets SIGTERM (and ends its sessions politely) when the supervisor dies, even by SIGKILL:
    no orphan keeps serving where the pid file no longer leads (prctl ``PR_SET_PDEATHSIG``)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
    if os.getppid() != parent:  # it died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


def die_with_parent(parent: int) -> None:
    """This process gets SIGTERM when ``parent`` (the supervisor) dies (another child of it than a worker)."""
    _die_with_parent(parent)


def _describe(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by signal {-code} ({signal.Signals(-code).name})"
        return f"killed by signal {-code}"
    return f"exited with status {code}"


class Supervisor:
    """Forks ``count`` workers running ``run_worker(index)`` (which returns an exit status) and keeps them.

    :meth:`run` returns when every worker is gone: 0 after a clean shutdown, 1 otherwise.  It must be
    called before any event loop or thread exists in this process.  ``on_ready`` is called once, when
    every worker has called :func:`worker_ready`; ``on_stop`` when the shutdown begins."""

    def __init__(
        self,
        count: int,
        run_worker: Callable[[int], int],
        *,
        on_reload: Callable[[], None] | None = None,
        on_ready: Callable[[], None] | None = None,
        on_stop: Callable[[], None] | None = None,
        restarts: int = RESTARTS_ALLOWED,
        window: float = RESTART_WINDOW,
        stop_timeout: float = STOP_TIMEOUT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.count = count
        self.run_worker = run_worker
        self.on_reload = on_reload
        self.on_ready = on_ready
        self.on_stop = on_stop
        self.ready = False
        """Every worker said it serves (once; a restarted worker's word changes nothing)."""
        self._ready_indices: set[int] = set()
        self.restarts = restarts
        self.window = window
        self.stop_timeout = stop_timeout
        self.clock = clock
        """Seconds, for the restart window and the stop time-out (tests give their own)."""
        self.workers: dict[int, int] = {}
        """pid -> worker index, for the workers alive."""
        self.status = 0
        self._restart_times: collections.deque[float] = collections.deque()
        self._stopping = False
        self._kill_at = 0.0
        self._killed = False
        self._mask: set[int | signal.Signals] = set()

    def run(self) -> int:
        self._mask = signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
        try:
            for index in range(self.count):
                log.info("MGR: worker %d started (pid %d)", index, self._spawn(index))
            while self.workers:
                self._wait_signal(1.0)
                self._reap()
                if self._stopping and not self._killed and self.clock() >= self._kill_at:
                    self._kill_stragglers()
        finally:
            for _ in range(len(SIGNALS)):  # consume what came after the last worker, or it would act now
                if signal.sigtimedwait(SIGNALS, 0) is None:
                    break
            signal.pthread_sigmask(signal.SIG_SETMASK, self._mask)
        return self.status

    # -- workers -----------------------------------------------------------------------------

    def _spawn(self, index: int) -> int:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:
            self._child(index, parent)  # never returns
        self.workers[pid] = index
        return pid

    def _child(self, index: int, parent: int) -> None:
        global _supervisor
        _supervisor = parent
        status = EXIT_CRASHED
        try:
            signal.pthread_sigmask(signal.SIG_SETMASK, self._mask)
            _die_with_parent(parent)
            status = self.run_worker(index)
        except BaseException:
            with contextlib.suppress(BaseException):
                log.exception("MGR: worker %d: internal error", index)
        finally:
            with contextlib.suppress(BaseException):
                logging.shutdown()
            os._exit(status)

    def _reap(self) -> None:
        for _ in range(4 * MAX_WORKERS):  # bounded; each pass reaps one worker
            try:
                pid, wait_status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            index = self.workers.pop(pid, None)
            if index is not None:
                self._ended(index, pid, os.waitstatus_to_exitcode(wait_status))

    def _ended(self, index: int, pid: int, code: int) -> None:
        if self._stopping:
            if code not in (0, -signal.SIGTERM, -signal.SIGINT):  # a signal before its handlers were set: clean
                log.warning("MGR: worker %d (pid %d) %s", index, pid, _describe(code))
                self.status = 1
            return
        if code == EXIT_CANNOT_START:
            log.error("MGR: worker %d (pid %d) could not start; shutting down", index, pid)
            self.status = 1
            self._stop(signal.SIGTERM)
            return
        log.error("MGR: worker %d (pid %d) %s; its sessions are lost", index, pid, _describe(code))
        now = self.clock()
        while self._restart_times and self._restart_times[0] <= now - self.window:
            self._restart_times.popleft()
        if len(self._restart_times) >= self.restarts:
            log.error(
                "MGR: %d worker restarts within %.0f s: giving up; shutting down", len(self._restart_times), self.window
            )
            self.status = 1
            self._stop(signal.SIGTERM)
            return
        self._restart_times.append(now)
        new_pid = self._spawn(index)
        log.warning("MGR: worker %d restarted (pid %d)", index, new_pid)

    # -- signals -----------------------------------------------------------------------------

    def _wait_signal(self, timeout: float) -> None:
        info = signal.sigtimedwait(SIGNALS, timeout)
        if info is None or info.si_signo == signal.SIGCHLD:
            return
        if info.si_signo == READY_SIGNAL:
            index = self.workers.get(info.si_pid)
            if index is not None and not self.ready and not self._stopping:
                self._ready_indices.add(index)
                if len(self._ready_indices) == self.count:
                    self.ready = True
                    if self.on_ready is not None:
                        self.on_ready()
            return
        if info.si_signo == RELOADED_SIGNAL:
            if self.on_reload is not None:
                self.on_reload()
            return
        if info.si_signo == signal.SIGHUP:
            if self.on_reload is not None:
                self.on_reload()
            log.info("MGR: SIGHUP: passed to %d worker(s)", len(self.workers))
            self._signal_all(signal.SIGHUP)
        elif info.si_signo in (signal.SIGUSR1, signal.SIGUSR2):  # the workers act on them (pypptp.daemon.cli)
            self._signal_all(signal.Signals(info.si_signo))
        else:
            self._stop(signal.Signals(info.si_signo))

    def _stop(self, signum: signal.Signals) -> None:
        if not self._stopping:
            log.info("MGR: %s: stopping %d worker(s)", signum.name, len(self.workers))
            self._stopping = True
            self._kill_at = self.clock() + self.stop_timeout
            if self.on_stop is not None:
                self.on_stop()
        self._signal_all(signum)

    def _signal_all(self, signum: signal.Signals) -> None:
        for pid in list(self.workers):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    def _kill_stragglers(self) -> None:
        self._killed = True
        for pid, index in list(self.workers.items()):
            log.error(
                "MGR: worker %d (pid %d) still running %.0f s after SIGTERM: SIGKILL", index, pid, self.stop_timeout
            )
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.status = 1
