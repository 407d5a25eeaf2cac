"""``pypptpd --workers N``: N worker processes serve as one server; the parent supervises them.

One asyncio process runs on one core.  With ``--workers N`` the parent reads
and checks the configuration, writes the pid file (its own pid, as pptpd
does), makes the listening socket, then forks N workers before any event
loop exists.  Each worker is a whole daemon (:class:`pypptp.daemon.manager.Daemon`);
together they behave as one server: a client is refused only when the server
as a whole has no address or no ``connections`` slot left.

* **TCP 1723**: the parent accepts, and hands each accepted socket to the
  least-loaded worker over a UNIX ``SOCK_SEQPACKET`` socketpair
  (``SCM_RIGHTS``, :class:`Dispatcher`); each worker reports its load
  (connections received, connections held: pending or with a session) back
  over the same pair, so the parent counts the ones in flight exactly.  The
  parent never reads a PPTP byte: it accepts, picks, sends, closes its copy
  (bounded batches; a worker whose channel fails is skipped for the next).
  With the kernel's ``SO_REUSEPORT`` hash instead (before), one worker took 7
  of 8 sessions and refused a client while another had room;
* **GRE**: each worker opens its own raw GRE socket with a classic BPF filter
  that accepts only the Call IDs of its class, ``ID % N == i``
  (:mod:`pypptp.host.bpf`), and hands out only Call IDs of that class
  (:class:`~pypptp.ctrl.callids.CallIdAllocator`): Call IDs are unique across
  workers, and a packet is queued on one socket and wakes one worker;
* **the address pool, ``connections``, pinned addresses**: shared, claimed
  synchronously at authentication across the workers with abstract UNIX
  socket names (:class:`pypptp.host.claims.Claims`: ``slot/I`` for a pool
  slot, ``seat/I`` for one of the ``connections`` seats, ``pin/A`` for an
  address pinned by chap-secrets or RADIUS' Framed-IP-Address).  A bind is
  atomic and the kernel drops the name when its holder dies, so a killed
  worker's addresses and seats are free again at once;
* **the pending-connection budget** (``--max-pending``, ``--max-pending-per-source``)
  is split as :func:`split` does, so the workers together never hold more;
  the parent's least-loaded choice spreads a flood evenly over them;
* **pppN units**: claimed across processes (:func:`pypptp.host.tun.share_units_between_processes`),
  with a retry on a name taken meanwhile;
* ip-up and ip-down run in the worker that owns the session, once per session.
  ``--workers`` is lowered to ``connections`` if it is larger.

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
import select
import signal
import socket
import sys
import time
from collections.abc import Callable

from pypptp.aio.server import LOAD  # a worker's load report: connections received so far, held now

__all__ = [
    "EXIT_CANNOT_START",
    "LOAD",
    "MAX_WORKERS",
    "RELOADED_SIGNAL",
    "Dispatcher",
    "Supervisor",
    "die_with_parent",
    "effective_workers",
    "listening_socket",
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
    """Each worker's part of a budget (the pending connections); the parts add up to the whole."""
    return [connections // workers + (1 if index < connections % workers else 0) for index in range(workers)]


def effective_workers(requested: int, connections: int) -> tuple[int, str | None]:
    """The number of workers to run, and a warning if ``requested`` had to be lowered."""
    if requested > connections:
        return connections, f"--workers {requested} lowered to {connections}: only {connections} connections allowed"
    return requested, None


def listening_socket(address: str, port: int, backlog: int = 128) -> socket.socket:
    """The supervisor's TCP socket listening on ``address:port`` (no ``SO_REUSEPORT``: a bind fails if
    anything listens there already); non-blocking, for :class:`Dispatcher`.  Raises OSError."""
    host = "" if address in ("", "0.0.0.0") else address
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(backlog)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


ACCEPT_BATCH = 64
"""Connections the supervisor accepts per wake-up; the rest wait in the backlog for the next."""
REPORT_BATCH = 256
"""Load reports read from one worker per wake-up (the last one counts)."""
POLL_INTERVAL = 0.1
"""Seconds the supervisor waits on its sockets before it looks at its (blocked) signals again."""


class Dispatcher:
    """In the supervisor: accepts on the listening socket and hands each connection to the least-loaded
    worker (see the module docstring).  A worker's load is what it holds (its last report) plus what was
    sent to it and not yet received by it; of equally loaded workers, the one sent the fewest so far (so
    short connections still go round), then the lowest index."""

    def __init__(self, listener: socket.socket, count: int) -> None:
        self.listener: socket.socket | None = listener
        self.count = count
        self.channels: list[socket.socket | None] = [None] * count
        """The supervisor's end of each worker's channel (None: no worker there now)."""
        self.sent = [0] * count
        self.received = [0] * count
        self.held = [0] * count
        self.mine: socket.socket | None = None
        """In a worker (after :meth:`in_child`): its end of its channel."""
        self.dispatched = 0
        self.dropped = 0
        """Connections closed at once: no worker could take them."""

    def load(self, index: int) -> int:
        in_flight = (self.sent[index] - self.received[index]) & 0xFFFFFFFF  # the worker counts modulo 2**32
        return self.held[index] + in_flight

    def open(self, index: int) -> socket.socket:
        """A new channel for worker ``index`` (about to be forked): the worker's end."""
        self.gone(index)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        ours.setblocking(False)
        self.channels[index] = ours
        self.sent[index] = self.received[index] = self.held[index] = 0
        return theirs

    def in_child(self, theirs: socket.socket) -> None:
        """In the worker just forked: keep only its own end of its channel."""
        if self.listener is not None:
            self.listener.close()
            self.listener = None
        for index, channel in enumerate(self.channels):
            if channel is not None:
                channel.close()
                self.channels[index] = None
        self.mine = theirs

    def gone(self, index: int) -> None:
        """Worker ``index`` is gone: its channel closed (the connections still in it are closed with it)."""
        channel, self.channels[index] = self.channels[index], None
        if channel is not None:
            channel.close()

    def stop_accepting(self) -> None:
        if self.listener is not None:
            self.listener.close()
            self.listener = None

    def close(self) -> None:
        self.stop_accepting()
        for index in range(self.count):
            self.gone(index)

    def wait(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for a connection or a report, and handle what came (bounded)."""
        poller = select.poll()
        if self.listener is not None:
            poller.register(self.listener, select.POLLIN)
        for channel in self.channels:
            if channel is not None:
                poller.register(channel, select.POLLIN)
        try:
            ready = poller.poll(timeout * 1000)
        except InterruptedError:
            return
        fds = {fd for fd, _ in ready}
        for index, channel in enumerate(self.channels):
            if channel is not None and channel.fileno() in fds:
                self._reports(index, channel)
        if self.listener is not None and self.listener.fileno() in fds:
            self._accept()

    def _reports(self, index: int, channel: socket.socket) -> None:
        for _ in range(REPORT_BATCH):
            try:
                data = channel.recv(64)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                data = b""
            if not data:  # the worker is gone; its reaping restarts it with a new channel
                if self.channels[index] is channel:
                    self.gone(index)
                return
            if len(data) == LOAD.size:
                self.received[index], self.held[index] = LOAD.unpack(data)

    def _accept(self) -> None:
        assert self.listener is not None
        for _ in range(ACCEPT_BATCH):
            try:
                conn, _ = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # EMFILE and the like: the connection waits in the backlog
                log.error("MGR: accept: %s", exc.strerror or exc)
                return
            try:
                self._dispatch(conn)
            finally:
                conn.close()  # the worker has its own copy now (or the client gets a reset)

    def _dispatch(self, conn: socket.socket) -> None:
        order = sorted((self.load(i), self.sent[i], i) for i in range(self.count) if self.channels[i] is not None)
        for _, _, index in order:
            channel = self.channels[index]
            assert channel is not None
            try:
                socket.send_fds(channel, [b"c"], [conn.fileno()])
            except (BlockingIOError, InterruptedError):  # that worker is behind: the next one
                continue
            except OSError:
                self.gone(index)
                continue
            self.sent[index] += 1
            self.dispatched += 1
            return
        self.dropped += 1
        log.warning("MGR: no worker could take a connection; closed")


_supervisor: int | None = None  # in a worker: the supervisor's pid


def worker_ready() -> None:
    """In a worker: tell the supervisor that this worker serves (its sockets and devices are open).  Only
    the supervisor that forked it, and only while it is still the parent: the signal's default action
    kills, and an orphan's new parent (a subreaper) would not expect it."""
    if _supervisor is not None and os.getppid() == _supervisor:
        with contextlib.suppress(OSError):
            os.kill(_supervisor, READY_SIGNAL)


def die_with_parent(parent: int) -> None:
    """This process (a worker, or the control front) gets SIGTERM when ``parent`` (the supervisor) dies,
    even by SIGKILL: a worker then ends its sessions politely, and no orphan keeps serving where the pid
    file no longer leads (prctl ``PR_SET_PDEATHSIG``)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
    if os.getppid() != parent:  # it died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


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
        dispatcher: Dispatcher | None = None,
    ) -> None:
        self.dispatcher = dispatcher
        """Accepts and hands out the connections in this process, between two looks at the signals;
        ``run_worker`` finds its channel in ``dispatcher.mine``."""
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
                if self.dispatcher is None:
                    self._wait_signal(1.0)
                else:
                    self.dispatcher.wait(POLL_INTERVAL)
                    for _ in range(len(SIGNALS) * 4):  # bounded: what came meanwhile
                        if not self._wait_signal(0):
                            break
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
        theirs = self.dispatcher.open(index) if self.dispatcher is not None else None
        pid = os.fork()
        if pid == 0:
            self._child(index, parent, theirs)  # never returns
        if theirs is not None:
            theirs.close()
        self.workers[pid] = index
        return pid

    def _child(self, index: int, parent: int, theirs: socket.socket | None) -> None:
        global _supervisor
        _supervisor = parent
        status = EXIT_CRASHED
        try:
            signal.pthread_sigmask(signal.SIG_SETMASK, self._mask)
            if self.dispatcher is not None and theirs is not None:
                self.dispatcher.in_child(theirs)
            die_with_parent(parent)
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
                if self.dispatcher is not None:
                    self.dispatcher.gone(index)
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

    def _wait_signal(self, timeout: float) -> bool:
        """Handle one signal, waiting up to ``timeout`` seconds for it; whether one came."""
        info = signal.sigtimedwait(SIGNALS, timeout)
        if info is None:
            return False
        if info.si_signo == signal.SIGCHLD:
            return True
        if info.si_signo == READY_SIGNAL:
            index = self.workers.get(info.si_pid)
            if index is not None and not self.ready and not self._stopping:
                self._ready_indices.add(index)
                if len(self._ready_indices) == self.count:
                    self.ready = True
                    if self.on_ready is not None:
                        self.on_ready()
            return True
        if info.si_signo == RELOADED_SIGNAL:
            if self.on_reload is not None:
                self.on_reload()
            return True
        if info.si_signo == signal.SIGHUP:
            if self.on_reload is not None:
                self.on_reload()
            log.info("MGR: SIGHUP: passed to %d worker(s)", len(self.workers))
            self._signal_all(signal.SIGHUP)
        elif info.si_signo in (signal.SIGUSR1, signal.SIGUSR2):  # the workers act on them (pypptp.daemon.cli)
            self._signal_all(signal.Signals(info.si_signo))
        else:
            self._stop(signal.Signals(info.si_signo))
        return True

    def _stop(self, signum: signal.Signals) -> None:
        if not self._stopping:
            log.info("MGR: %s: stopping %d worker(s)", signum.name, len(self.workers))
            self._stopping = True
            self._kill_at = self.clock() + self.stop_timeout
            if self.dispatcher is not None:  # no new connection during the shutdown, as a single daemon
                self.dispatcher.stop_accepting()
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
