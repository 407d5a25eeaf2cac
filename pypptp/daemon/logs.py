"""How the daemon writes its lines: syslog as ``pptpd[PID]`` and ``pppd[PID]``, pppd's ``logfile``, a log thread.

The lines themselves, word for word, with the table of when pppd writes
each, are :mod:`pypptp.ppp.logtext` (plain functions, no logging); this
module has the machinery that writes them: :data:`LEVELS` (pppd's log
functions as logging levels), :func:`pppd_logger` (one logger per ``pppN``),
:class:`IdentFormatter`, :class:`LogfileHandler` and the log thread.

pppd's ``logfile`` option appends every line except debug ones (unless
``debug``) and the two syslog-only ones, bare: no time stamp, no program name,
one line per message.  :class:`LogfileHandler` writes that format; log the two
syslog-only lines (:func:`~pypptp.ppp.logtext.started` and
:func:`~pypptp.ppp.logtext.exit_line`) with ``extra=SYSLOG_ONLY`` to keep them
out of it.

Identities: fail2ban filters, logwatch and admins' searches key on the program
names the originals log under, ``pptpd[PID]`` (pptpd and pptpctrl) and
``pppd[PID]`` (one pppd per session).  :class:`IdentFormatter` gives each line
its original's name by logger: ``pppd`` and ``pppd.pppN`` (a session's lines)
as ``pppd``, every other logger (``pypptpd``, ``pypptp.*``) as ``pptpd``.  The
PID is the daemon's (or its worker's): all sessions share it, where each pppd
had its own; in syslog the lines stay pppd's, bare, and the foreground format
(stderr) adds the session's interface after the ident (``pppd[PID]: ppp0:
...``) so that concurrent sessions can be told apart.

Writing a line never blocks the event loop: the daemon logs through a
:class:`BackgroundHandler`, which hands each record to one writer thread
(:class:`BackgroundLog`) that drives the real handlers (syslog, stderr) and
the ``logfile``.  A syslog datagram socket blocks its writer once the kernel
holds ten unread datagrams; a stalled syslogd used to freeze the daemon and
every session in it.  The queue is bounded (:data:`LOG_QUEUE_LIMIT` records):
when it is full a line is dropped and counted, and the writer says how many
in one line when it catches up (``MGR: 1234 log line(s) dropped: ...``).
Everything queued is written at exit (bounded: :meth:`BackgroundLog.stop`).

Log files (:class:`ReopenableFile`: pppd's ``logfile``, the daemon's own log
when there is no syslog) are reopened on SIGHUP (:func:`reopen_files`): after
logrotate renames them, new lines go to new files.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import queue
import signal
import threading
import time
import weakref
from collections.abc import Sequence

__all__ = [
    "DAEMON_IDENT",
    "LEVELS",
    "LOG_QUEUE_LIMIT",
    "PPPD_IDENT",
    "SYSLOG_ONLY",
    "BackgroundHandler",
    "BackgroundLog",
    "IdentFormatter",
    "LogfileHandler",
    "ReopenableFile",
    "pppd_logger",
    "reopen_files",
]

LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "notice": logging.INFO,  # logging has no NOTICE; syslog gets these at "info"
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "fatal": logging.CRITICAL,
}
"""pppd's log functions (dbglog, info, notice, warn, error, fatal) -> logging levels."""

DAEMON_IDENT = "pptpd"
"""The daemon's own lines (pptpd's and pptpctrl's, which both log as ``pptpd``)."""
PPPD_IDENT = "pppd"
"""The sessions' lines (the ``pppd`` and ``pppd.pppN`` loggers)."""

SYSLOG_ONLY = {"pppd_syslog_only": True}
"""``extra=`` for :func:`~pypptp.ppp.logtext.started` and :func:`~pypptp.ppp.logtext.exit_line`, which pppd sends
to syslog only."""


# -- loggers, identities and the logfile -----------------------------------------------------------


class IdentFormatter(logging.Formatter):
    """``IDENT[PID]: message``, IDENT by logger name: ``pppd`` for ``pppd`` and ``pppd.pppN``, ``pptpd`` for the
    rest (see the module docstring).  ``timestamps`` puts the time in front (stderr: syslog adds its own);
    ``interface`` writes a session's ``pppN`` after the ident (``pppd[PID]: ppp0: ...``)."""

    def __init__(self, *, timestamps: bool = False, interface: bool = False) -> None:
        super().__init__("%(message)s")
        self.timestamps = timestamps
        self.interface = interface

    def format(self, record: logging.LogRecord) -> str:
        name = record.name
        unit = ""
        if name == "pppd" or name.startswith("pppd."):
            ident = PPPD_IDENT
            if self.interface and name.startswith("pppd."):
                unit = name[5:] + ": "
        else:
            ident = DAEMON_IDENT
        head = f"{ident}[{record.process}]: {unit}"
        if self.timestamps:
            head = f"{self.formatTime(record)} {head}"
        return head + super().format(record)


def pppd_logger(unit: int) -> logging.Logger:
    """The logger for session ``ppp<unit>``: ``pppd.ppp<unit>``, so that ``pppd`` catches them all."""
    return logging.getLogger(f"pppd.ppp{unit}")


class ReopenableFile(logging.FileHandler):
    """A log file appended to, opened at its first line, and closed by :meth:`reopen` so that the next
    line opens its path again: after logrotate renamed ``ppp.log`` to ``ppp.log.1``, SIGHUP makes the
    daemon write to a new ``ppp.log`` (:func:`reopen_files`) instead of the renamed one for good."""

    def __init__(self, path: str) -> None:
        super().__init__(path, mode="a", encoding="utf-8", delay=True)
        _files.add(self)

    def reopen(self) -> None:
        """Close the file now; the next line opens the path again.  Safe from any thread: the handler's lock
        is the one the log thread holds while it writes a line, so a line is written whole to one file."""
        with self.lock:  # type: ignore[union-attr]  # created by Handler.__init__
            stream, self.stream = self.stream, None
            if stream is not None:
                with contextlib.suppress(OSError, ValueError):
                    stream.close()


_files: weakref.WeakSet[ReopenableFile] = weakref.WeakSet()


def reopen_files() -> int:
    """SIGHUP: every :class:`ReopenableFile` of this process (pppd's ``logfile``, the daemon's own log file)
    closed, to be opened again by its next line; how many there were."""
    files = list(_files)
    for handler in files:
        handler.reopen()
    return len(files)


class LogfileHandler(ReopenableFile):
    """pppd's ``logfile FILE``: each message appended as one bare line (no time, no name).

    Debug records are skipped unless ``debug`` (pppd writes them there only with
    its ``debug`` option), and so are records logged with ``extra=SYSLOG_ONLY``.
    As in pppd, the first write that fails turns the file off (pppd sets
    ``log_to_fd`` to -1); nothing is printed to stderr.  Unlike pppd, SIGHUP
    (:meth:`reopen`, as after logrotate) opens the file again and tries anew.
    """

    def __init__(self, path: str, *, debug: bool = False) -> None:
        super().__init__(path)
        self.setFormatter(logging.Formatter("%(message)s"))
        self.with_debug = debug
        self.broken = False

    def filter(self, record: logging.LogRecord) -> bool:
        if self.broken or getattr(record, "pppd_syslog_only", False):
            return False
        if record.levelno <= logging.DEBUG and not self.with_debug:
            return False
        return bool(super().filter(record))

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        return line[:-1] if line.endswith("\n") else line

    def handle(self, record: logging.LogRecord) -> bool:
        background = _active
        if background is None or background.on_writer_thread():
            return bool(super().handle(record))
        if self.filter(record):  # to the log thread, which comes back here (without taking our lock now)
            background.submit(self, record)
            return True
        return False

    def emit(self, record: logging.LogRecord) -> None:
        try:
            super().emit(record)
        except Exception:  # FileHandler opens the file outside its own error handling
            self.handleError(record)

    def handleError(self, record: logging.LogRecord) -> None:
        self.broken = True
        self.close()

    def reopen(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            super().reopen()
            self.broken = False


# -- the log thread -----------------------------------------------------------------------------------

LOG_QUEUE_LIMIT = 8192
"""Records waiting for the writer thread at most: a few seconds of the busiest legitimate logging (500
sessions ending at once write about 3,000 lines), and a few MiB of memory when a log stalls."""
WRITER_THREAD = "pypptpd-log"
_active: BackgroundLog | None = None  # the log thread of this process, once started


class BackgroundLog:
    """One thread that writes log records to ``handlers`` (and to :class:`LogfileHandler` files), so that
    the threads that log (the event loop) never wait for a slow log.  See the module docstring."""

    def __init__(self, handlers: Sequence[logging.Handler], *, limit: int = LOG_QUEUE_LIMIT) -> None:
        self.handlers = list(handlers)
        self.limit = limit
        self.dropped = 0
        """Records dropped because the queue was full, in all."""
        self._unreported = 0
        self._lock = threading.Lock()
        self._queue: queue.Queue[tuple[logging.Handler | None, logging.LogRecord] | None] = queue.Queue(limit)
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the writer; :class:`LogfileHandler` files are written by it from now on."""
        global _active
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=WRITER_THREAD, daemon=True)
            self._thread.start()
        _active = self

    def on_writer_thread(self) -> bool:
        return threading.current_thread() is self._thread

    def submit(self, handler: logging.Handler | None, record: logging.LogRecord) -> None:
        """Queue ``record`` for ``handler`` (None: every handler of this log); never blocks: a full queue
        drops the record and counts it."""
        if self._thread is None:  # not started, or stopped: write now
            self._write(handler, record)
            return
        try:
            self._queue.put_nowait((handler, _prepared(record)))
        except queue.Full:
            with self._lock:
                self.dropped += 1
                self._unreported += 1

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait (at most ``timeout``) until everything queued is written; False if it was not."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and self._thread is not None and not self.on_writer_thread():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.005)
        return True

    def stop(self, timeout: float = 5.0) -> None:
        """Write what is queued (waiting at most ``timeout``), then end the thread."""
        global _active
        thread = self._thread
        if thread is None:
            return
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._queue.put(None, timeout=0.05)
                break
            except queue.Full:
                if time.monotonic() >= deadline:
                    break
        thread.join(max(0.0, deadline - time.monotonic()))
        if not thread.is_alive():
            self._thread = None
            self._report_drops()
        if _active is self:
            _active = None

    def _run(self) -> None:
        # Signals go to the main thread, never this one: the --workers supervisor blocks the signals it
        # waits for (sigtimedwait) in its main thread only, and a worker's READY_SIGNAL taken by this
        # thread would act by default, which kills the supervisor (seen with a detached --workers start).
        signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                self._report_drops()
                self._write(*item)
            except Exception:  # a handler that raises outside its own error handling: drop the line
                pass
            finally:
                self._queue.task_done()

    def _write(self, handler: logging.Handler | None, record: logging.LogRecord) -> None:
        if handler is not None:
            handler.handle(record)
            return
        for target in self.handlers:
            if record.levelno >= target.level:
                target.handle(record)

    def _report_drops(self) -> None:
        with self._lock:
            count, self._unreported = self._unreported, 0
        if count:
            line = f"MGR: {count} log line(s) dropped: the log was too slow (more than {self.limit} waiting)"
            self._write(
                None,
                logging.makeLogRecord(
                    {"name": "pypptpd", "levelno": logging.WARNING, "levelname": "WARNING", "msg": line}
                ),
            )

    def _after_fork(self) -> None:
        """In a forked child (a worker): the parent's thread is not there; start our own, on a fresh queue."""
        self._lock = threading.Lock()
        self._queue = queue.Queue(self.limit)
        self._unreported = 0
        self._thread = None
        self.start()


def _after_fork_in_child() -> None:
    if _active is not None and _active._thread is not None:
        _active._after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)


def _prepared(record: logging.LogRecord) -> logging.LogRecord:
    """A copy of ``record`` that another thread can format: the message merged with its arguments, the
    exception and stack as text (their objects may change, or keep frames alive, meanwhile)."""
    prepared = copy.copy(record)
    message = record.getMessage()
    if record.exc_info:
        message += "\n" + _TRACEBACKS.formatException(record.exc_info)
    elif record.exc_text:
        message += "\n" + record.exc_text
    if record.stack_info:
        message += "\n" + _TRACEBACKS.formatStack(record.stack_info)
    prepared.msg, prepared.args = message, None
    prepared.exc_info = prepared.exc_text = prepared.stack_info = None
    return prepared


_TRACEBACKS = logging.Formatter()


class BackgroundHandler(logging.Handler):
    """The handler the daemon's loggers write to: each record goes to the :class:`BackgroundLog` thread."""

    def __init__(self, background: BackgroundLog) -> None:
        super().__init__()
        self.background = background

    def emit(self, record: logging.LogRecord) -> None:
        self.background.submit(None, record)

    def flush(self) -> None:
        self.background.flush()

    def close(self) -> None:
        self.background.stop()
        super().close()
