"""pppd's standard log lines, word for word, for the tools and habits that read them.

Admins grep for these lines, log watchers and fail2ban filters match them, and
accounting scripts take the byte counts from them; a drop-in replacement has
to write them the same way.  Each function returns one line as pppd formats it
(from pppd 2.4.x/2.5.x ``main.c``, ``auth.c``, ``ipcp.c``, ``ccp.c``, ``fsm.c``,
``lcp.c``, ``upap.c`` and ``chap-new.c``; the text was read for behaviour only).
pppd's ``%I`` is a dotted quad, ``%q`` and ``%v`` are :func:`quoted` and
:func:`visible`.  Under pptpd, pppd's tty is the pty pptpctrl gave it
(``/dev/pts/N``); we have none, see :mod:`pypptp.daemon.scripts` for the name we use.

=========================================================  =======  ====================================================
Line (example)                                             Level    When pppd writes it (source)
=========================================================  =======  ====================================================
``pppd 2.4.9 started by root, uid 0``                      notice   start-up; syslog only, never the ``logfile``
                                                                    (``main.c`` main)
``Using interface ppp0``                                   info     the ppp unit exists (``main.c`` set_ifunit)
``Connect: ppp0 <--> /dev/pts/1``                          notice   the device is attached, LCP starts
                                                                    (``auth.c`` start_link)
``Peer alice failed CHAP authentication``                  warn     wrong CHAP/MS-CHAP response (``chap-new.c``)
``PAP peer authentication succeeded for alice``            notice   PAP, server side (``upap.c``); ``failed`` on a
                                                                    wrong password (warn)
``MPPE 128-bit stateless compression enabled``             notice   CCP opened, same method both ways (``ccp.c``
                                                                    ccp_up and method_name)
``local  IP address 192.168.0.1``                          notice   IPCP up (``ipcp.c`` ipcp_up); two spaces after
                                                                    ``local`` so the addresses line up
``remote IP address 192.168.0.234``                        notice   IPCP up, when the peer has an address
``primary   DNS address 8.8.8.8``                          notice   IPCP up, DNS servers the *peer* gave us
``secondary DNS address 8.8.4.4``                          notice   (``usepeerdns``: a client; a server's ``ms-dns``
                                                                    values are never logged this way)
``LCP terminated by peer (...)``                           info     Terminate-Request received while Opened
                                                                    (``fsm.c`` fsm_rtermreq; the reason in ``%v``)
``No response to 4 echo-requests``                         info     LCP echo keepalive gave up (``lcp.c``), followed by
``Serial link appears to be disconnected.``                notice   this line
``Connect time 1.2 minutes.``                              info     IPCP down, and at link end if not printed yet
``Sent 123 bytes, received 456 bytes.``                    info     (``main.c`` print_link_stats, once per link)
``Modem hangup``                                           notice   EOF on the device: under pptpd, pptpctrl closed
                                                                    the pty (call cleared, TCP gone) (``main.c``)
``Connection terminated.``                                 notice   the link is down for good (``auth.c``
                                                                    link_terminated)
``Terminating on signal 15``                               info     SIGTERM/SIGINT received (``main.c``)
``Hangup (SIGHUP)``                                        info     SIGHUP received (``main.c``)
``Can't execute /etc/ppp/ip-up: Invalid argument``         warn     a script exists but is not an executable file
                                                                    (``main.c`` run_program, errno preset to EINVAL); a
                                                                    missing one is skipped silently
``Child process /etc/ppp/ip-up (pid 42) terminated with    warn     a script died of a signal (``main.c``
signal 15``                                                         forget_child)
``Script /etc/ppp/ip-up finished (pid 42), status = 0x1``  debug    a script exited (``main.c`` forget_child)
``Exit.``                                                  info     pppd exits; syslog only (``main.c`` die)
=========================================================  =======  ====================================================

Typical order at the end of a pptpd session that the client hangs up:
``LCP terminated by peer``, ``Connect time``, ``Sent``, ``Modem hangup``,
``Connection terminated.``, ``Exit.``.

pppd's ``logfile`` option appends every line except debug ones (unless
``debug``) and the two syslog-only ones, bare: no time stamp, no program name,
one line per message.  :class:`LogfileHandler` writes that format; log the two
syslog-only lines with ``extra=SYSLOG_ONLY`` to keep them out of it.  Under
syslog pppd's lines carry the ident ``pppd[PID]`` (:data:`SYSLOG_FORMAT`).

Writing a line never blocks the event loop: the daemon logs through a
:class:`BackgroundHandler`, which hands each record to one writer thread
(:class:`BackgroundLog`) that drives the real handlers (syslog, stderr) and
the ``logfile``.  A syslog datagram socket blocks its writer once the kernel
holds ten unread datagrams; a stalled syslogd used to freeze the daemon and
every session in it.  The queue is bounded (:data:`LOG_QUEUE_LIMIT` records):
when it is full a line is dropped and counted, and the writer says how many
in one line when it catches up (``MGR: 1234 log line(s) dropped: ...``).
Everything queued is written at exit (bounded: :meth:`BackgroundLog.stop`).
"""

from __future__ import annotations

import copy
import logging
import os
import queue
import threading
import time
from collections.abc import Sequence
from ipaddress import IPv4Address

__all__ = [
    "LEVELS",
    "LOG_QUEUE_LIMIT",
    "SYSLOG_FORMAT",
    "SYSLOG_ONLY",
    "BackgroundHandler",
    "BackgroundLog",
    "LogfileHandler",
    "bytes_transferred",
    "cannot_execute",
    "child_signalled",
    "compression_enabled",
    "connect",
    "connect_time",
    "connection_terminated",
    "echo_failure",
    "exit_line",
    "hangup",
    "hangup_signal",
    "link_disconnected",
    "link_stats",
    "local_ip",
    "mppe_method",
    "pap_peer_failed",
    "pap_peer_succeeded",
    "peer_failed_chap",
    "pppd_logger",
    "primary_dns",
    "quoted",
    "remote_ip",
    "script_finished",
    "secondary_dns",
    "started",
    "terminated_by_peer",
    "terminating_on_signal",
    "using_interface",
    "visible",
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

SYSLOG_FORMAT = "pppd[%(process)d]: %(message)s"
"""What pppd's lines look like after syslog's time stamp and host name."""

SYSLOG_ONLY = {"pppd_syslog_only": True}
"""``extra=`` for :func:`started` and :func:`exit_line`, which pppd sends to syslog only."""

Address = IPv4Address | str


# -- pppd's %q and %v ----------------------------------------------------------------------------


def quoted(text: str | bytes) -> str:
    """pppd's ``%q``: no quotes around it; ``"`` and ``\\`` get a backslash, control characters and
    bytes 0x7f-0x9f become ``\\t``, ``\\n``, ``\\b``, ``\\f`` or ``\\xHH``; other bytes pass as they are."""
    data = text.encode("utf-8", "surrogateescape") if isinstance(text, str) else text
    out = bytearray()
    for c in data:
        if c in (0x22, 0x5C):
            out += b"\\" + bytes((c,))
        elif c < 0x20 or 0x7F <= c < 0xA0:
            out += _ESCAPES.get(c) or b"\\x%02x" % c
        else:
            out.append(c)
    return out.decode("utf-8", "backslashreplace")


_ESCAPES = {0x09: b"\\t", 0x0A: b"\\n", 0x08: b"\\b", 0x0C: b"\\f"}


def visible(data: bytes) -> str:
    """pppd's ``%v``: bytes from 0x80 up as ``M-`` and the low 7 bits; control characters as ``^X``
    (DEL as ``^?``); a tab stays a tab."""
    out = []
    for c in data:
        if c >= 0x80:
            out.append("M-")
            c -= 0x80
        if c == 0x09:
            out.append("\t")
        elif c < 0x20 or c == 0x7F:
            out.append("^" + chr(c ^ 0x40))
        else:
            out.append(chr(c))
    return "".join(out)


# -- the lines ------------------------------------------------------------------------------------


def started(version: str, user: str, uid: int) -> str:
    return f"pppd {version} started by {user}, uid {uid}"


def using_interface(ifname: str) -> str:
    return f"Using interface {ifname}"


def connect(ifname: str, device: str) -> str:
    return f"Connect: {ifname} <--> {device}"


def peer_failed_chap(name: str | bytes) -> str:
    return f"Peer {quoted(name)} failed CHAP authentication"


def pap_peer_succeeded(name: str | bytes) -> str:
    return f"PAP peer authentication succeeded for {quoted(name)}"


def pap_peer_failed(name: str | bytes) -> str:
    return f"PAP peer authentication failed for {quoted(name)}"


def mppe_method(bits: int, stateful: bool) -> str:
    """pppd's name for an MPPE variant: ``MPPE 128-bit stateless``.

    pppd names only 128 and 40 bits (it never negotiates 56); 56 follows the same pattern here.
    """
    return f"MPPE {bits}-bit {'stateful' if stateful else 'stateless'}"


def compression_enabled(method: str, transmit_method: str | None = None) -> str:
    """``MPPE 128-bit stateless compression enabled``; two methods: ``A / B compression enabled``."""
    if transmit_method is None or transmit_method == method:
        return f"{method} compression enabled"
    return f"{method} / {transmit_method} compression enabled"


def local_ip(address: Address) -> str:
    return f"local  IP address {address}"


def remote_ip(address: Address) -> str:
    return f"remote IP address {address}"


def primary_dns(address: Address) -> str:
    return f"primary   DNS address {address}"


def secondary_dns(address: Address) -> str:
    return f"secondary DNS address {address}"


def terminated_by_peer(protocol: str = "LCP", reason: bytes = b"") -> str:
    """``LCP terminated by peer``, with the Terminate-Request's data in parentheses when it has any."""
    if reason:
        return f"{protocol} terminated by peer ({visible(reason)})"
    return f"{protocol} terminated by peer"


def echo_failure(unanswered: int) -> str:
    return f"No response to {unanswered} echo-requests"


def link_disconnected() -> str:
    return "Serial link appears to be disconnected."


def connect_time(seconds: float) -> str:
    """``Connect time 1.2 minutes.``: pppd counts whole seconds and rounds up to a tenth of a minute."""
    tenths = (int(max(0.0, seconds)) + 5) // 6
    return f"Connect time {tenths // 10}.{tenths % 10} minutes."


def bytes_transferred(sent: int, received: int) -> str:
    """``Sent 123 bytes, received 456 bytes.`` (pppd 2.4 printed 32-bit counters that wrap at 4 GiB;
    the exact counts are given here)."""
    return f"Sent {sent} bytes, received {received} bytes."


def link_stats(seconds: float, sent: int, received: int) -> tuple[str, str]:
    """The two lines pppd prints once per link: :func:`connect_time`, :func:`bytes_transferred`."""
    return connect_time(seconds), bytes_transferred(sent, received)


def hangup() -> str:
    return "Modem hangup"


def connection_terminated() -> str:
    return "Connection terminated."


def terminating_on_signal(signal_number: int) -> str:
    return f"Terminating on signal {signal_number}"


def hangup_signal() -> str:
    return "Hangup (SIGHUP)"


def cannot_execute(path: str, reason: str) -> str:
    return f"Can't execute {path}: {reason}"


def child_signalled(program: str, pid: int, signal_number: int) -> str:
    return f"Child process {program} (pid {pid}) terminated with signal {signal_number}"


def script_finished(program: str, pid: int, status: int) -> str:
    return f"Script {program} finished (pid {pid}), status = {status:#x}"


def exit_line() -> str:
    return "Exit."


# -- loggers and the logfile ----------------------------------------------------------------------


def pppd_logger(unit: int) -> logging.Logger:
    """The logger for session ``ppp<unit>``: ``pppd.ppp<unit>``, so that ``pppd`` catches them all."""
    return logging.getLogger(f"pppd.ppp{unit}")


class LogfileHandler(logging.FileHandler):
    """pppd's ``logfile FILE``: each message appended as one bare line (no time, no name).

    Debug records are skipped unless ``debug`` (pppd writes them there only with
    its ``debug`` option), and so are records logged with ``extra=SYSLOG_ONLY``.
    As in pppd, the first write that fails turns the file off for good (pppd
    sets ``log_to_fd`` to -1); nothing is printed to stderr.
    """

    def __init__(self, path: str, *, debug: bool = False) -> None:
        super().__init__(path, mode="a", encoding="utf-8", delay=True)
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
