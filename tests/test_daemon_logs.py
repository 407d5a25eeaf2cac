"""How the daemon writes pppd's lines (:mod:`pypptp.daemon.logs`): syslog, pppd's logfile format, the log thread."""

from __future__ import annotations

import contextlib
import logging
import logging.handlers
import os
import re
import socket
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from pypptp.daemon import logs
from pypptp.ppp import logtext


def test_levels_and_logger() -> None:
    assert logs.LEVELS["notice"] == logging.INFO
    assert logs.LEVELS["warn"] == logging.WARNING
    assert logs.pppd_logger(3) is logging.getLogger("pppd.ppp3")


def _record(name: str, message: str) -> logging.LogRecord:
    record = logging.LogRecord(name, logging.INFO, __file__, 1, message, None, None)
    record.process = 4242
    return record


def test_syslog_identities_are_the_originals() -> None:
    """fail2ban and log searches key on ``pptpd[PID]`` and ``pppd[PID]``: a session's lines (``pppd``,
    ``pppd.pppN``) carry pppd's, the daemon's (``pypptpd``, ``pypptp.*``) pptpd's; syslog's are bare."""
    syslog = logs.IdentFormatter()
    assert syslog.format(_record("pppd.ppp0", "Exit.")) == "pppd[4242]: Exit."
    assert syslog.format(_record("pppd", "rcvd [LCP ConfReq id=0x1]")) == "pppd[4242]: rcvd [LCP ConfReq id=0x1]"
    assert syslog.format(_record("pypptpd", "MGR: Exit.")) == "pptpd[4242]: MGR: Exit."
    assert syslog.format(_record("pypptp.aio.server", "CTRL: x")) == "pptpd[4242]: CTRL: x"
    assert syslog.format(_record("pppdx", "y")) == "pptpd[4242]: y"


def test_foreground_format_shows_the_interface() -> None:
    stderr = logs.IdentFormatter(timestamps=True, interface=True)
    line = stderr.format(_record("pppd.ppp3", "Connection terminated."))
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} pppd\[4242\]: ppp3: Connection terminated\.", line)
    assert stderr.format(_record("pppd", "Connect")).endswith(" pppd[4242]: Connect")
    assert stderr.format(_record("pypptpd", "MGR: Exit.")).endswith(" pptpd[4242]: MGR: Exit.")


# -- the logfile ----------------------------------------------------------------------------------


@pytest.fixture
def logger() -> logging.Logger:
    log = logging.getLogger("test.logs.logfile")
    log.setLevel(logging.DEBUG)
    log.propagate = False
    for handler in list(log.handlers):
        log.removeHandler(handler)
    return log


def test_logfile_is_bare_lines_appended(tmp_path: Path, logger: logging.Logger) -> None:
    path = tmp_path / "pppd.log"
    path.write_text("an earlier session\n")
    handler = logs.LogfileHandler(str(path))
    logger.addHandler(handler)
    logger.info("%s", logtext.started("2.4.9", "root", 0), extra=logs.SYSLOG_ONLY)
    logger.info("%s", logtext.using_interface("ppp0"))
    logger.debug("rcvd [LCP ConfReq id=0x1]")
    logger.warning("%s", logtext.peer_failed_chap("alice") + "\n")
    logger.info("%s", logtext.exit_line(), extra=logs.SYSLOG_ONLY)
    handler.close()
    assert path.read_text() == ("an earlier session\nUsing interface ppp0\nPeer alice failed CHAP authentication\n")


def test_logfile_with_debug(tmp_path: Path, logger: logging.Logger) -> None:
    path = tmp_path / "pppd.log"
    handler = logs.LogfileHandler(str(path), debug=True)
    logger.addHandler(handler)
    logger.debug("rcvd [LCP ConfReq id=0x1]")
    handler.close()
    assert path.read_text() == "rcvd [LCP ConfReq id=0x1]\n"


def test_a_failing_logfile_goes_quiet(
    tmp_path: Path, logger: logging.Logger, capsys: pytest.CaptureFixture[str]
) -> None:
    handler = logs.LogfileHandler(str(tmp_path / "no such directory" / "pppd.log"))
    logger.addHandler(handler)
    logger.info("first")
    logger.info("second")
    assert handler.broken
    assert capsys.readouterr().err == ""
    handler.close()


# -- a slow log never stalls the event loop (issue 15 section 2) -----------------------------------------


class StalledHandler(logging.Handler):
    """A syslog that stalls: each line waits until the test opens the gate."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.busy = threading.Event()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.busy.set()
        self.gate.wait()
        self.lines.append(record.getMessage())


def in_a_thread(work: Callable[[], None], bound: float = 30.0) -> bool:
    """Run ``work`` in a thread of its own; whether it returned (within ``bound`` seconds, a guard against
    a test that would hang, not a time limit on the work)."""
    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    thread.join(bound)
    return not thread.is_alive()


def test_a_stalled_handler_costs_the_logging_thread_nothing_and_drops_are_counted() -> None:
    stalled = StalledHandler()
    background = logs.BackgroundLog([stalled], limit=100)
    background.start()
    handler = logs.BackgroundHandler(background)
    logger = logging.getLogger("test.background")
    logger.propagate, logger.level = False, logging.INFO
    logger.addHandler(handler)
    try:
        logger.info("line 0")
        assert stalled.busy.wait(30.0)  # the writer holds line 0 and waits at the gate

        def the_rest() -> None:
            for n in range(1, 2_000):
                logger.info("line %d", n)

        assert in_a_thread(the_rest), "logging waited for the stalled handler"
        # nothing was written meanwhile: 100 lines queued, the other 1,899 dropped and counted
        assert stalled.lines == [] and background.dropped == 1_899
        stalled.gate.set()
        background.stop()
    finally:
        stalled.gate.set()
        logger.removeHandler(handler)
    written = [line for line in stalled.lines if line.startswith("line ")]
    notices = [line for line in stalled.lines if "dropped" in line]
    assert written == [f"line {n}" for n in range(101)]
    assert sum(int(re.findall(r"(\d+) log line", line)[0]) for line in notices) == 1_899


def test_a_stalled_syslog_does_not_stall_the_caller(tmp_path: Path) -> None:
    """A datagram syslog socket that nobody reads blocks its writer after a few lines (the kernel queues
    ten datagrams): the daemon used to freeze there, every session with it."""
    address = str(tmp_path / "log")
    syslogd = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    syslogd.bind(address)
    handler = logging.handlers.SysLogHandler(address)
    background = logs.BackgroundLog([handler], limit=50)
    background.start()
    front = logs.BackgroundHandler(background)
    logger = logging.getLogger("test.syslog")
    logger.propagate, logger.level = False, logging.INFO
    logger.addHandler(front)
    try:

        def lines() -> None:
            for n in range(500):
                logger.warning("CTRL: line %d", n)

        assert in_a_thread(lines), "logging waited for the stalled syslog"
        syslogd.settimeout(2.0)
        received: list[bytes] = []
        with contextlib.suppress(TimeoutError):
            while len(received) < 60:
                received.append(syslogd.recv(4096))
    finally:
        background.stop(timeout=2.0)
        logger.removeHandler(front)
        handler.close()
        syslogd.close()
    assert any(b"CTRL: line 0" in datagram for datagram in received)
    assert background.dropped > 0


def test_the_logfile_is_written_by_the_log_thread_too(tmp_path: Path, logger: logging.Logger) -> None:
    path = tmp_path / "ppp.log"
    other = StalledHandler()
    other.gate.set()  # open: it never stalls
    background = logs.BackgroundLog([other])
    background.start()
    logger.addHandler(logs.LogfileHandler(str(path)))
    try:
        writer = []
        original = logs.LogfileHandler.emit

        def emit(self: logs.LogfileHandler, record: logging.LogRecord) -> None:
            writer.append(threading.current_thread().name)
            original(self, record)

        logs.LogfileHandler.emit = emit  # type: ignore[method-assign]
        try:
            logger.info("%s", logtext.connection_terminated())
            background.flush()
        finally:
            logs.LogfileHandler.emit = original  # type: ignore[method-assign]
    finally:
        background.stop()
    assert path.read_text() == "Connection terminated.\n"
    assert writer and writer[-1] != threading.current_thread().name  # written on the log thread


def test_setup_logging_writes_syslog_and_pipes_through_the_log_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pypptp.daemon import cli

    root = logging.getLogger()
    saved = root.handlers[:], root.level
    address = str(tmp_path / "log")
    syslogd = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    syslogd.bind(address)
    read_end, write_end = os.pipe()
    try:
        cli._setup_logging(foreground=False, debug=False, syslog=address)
        assert [type(h) for h in root.handlers] == [logs.BackgroundHandler]
        logging.getLogger("pypptpd").info("MGR: hello")
        root.handlers[0].flush()
        assert re.match(rb"<\d+>pptpd\[\d+\]: MGR: hello", syslogd.recv(4096))
        with open(write_end, "w", closefd=False) as pipe:
            monkeypatch.setattr(sys, "stderr", pipe)
            cli._setup_logging(foreground=True, debug=False)  # stderr a pipe (systemd's journal)
            assert [type(h) for h in root.handlers] == [logs.BackgroundHandler]
            logging.getLogger("pypptpd").info("MGR: hello")
            root.handlers[0].flush()
            assert b"MGR: hello" in os.read(read_end, 4096)
        with open(tmp_path / "stderr", "w") as regular:
            monkeypatch.setattr(sys, "stderr", regular)
            cli._setup_logging(foreground=True, debug=False)  # -f 2>file: in place, in order
            assert [type(h) for h in root.handlers] == [logging.StreamHandler]
    finally:
        for handler in root.handlers:
            handler.close()
        root.handlers[:], root.level = saved
        syslogd.close()
        os.close(read_end)
        os.close(write_end)


def test_a_forked_worker_gets_a_log_thread_of_its_own() -> None:
    """``--workers``: the writer thread is not copied by fork(); the child starts its own."""
    read_end, write_end = os.pipe()
    stream = os.fdopen(write_end, "w")
    background = logs.BackgroundLog([logging.StreamHandler(stream)])
    background.start()
    front = logs.BackgroundHandler(background)
    logger = logging.getLogger("test.fork")
    logger.propagate, logger.level = False, logging.INFO
    logger.addHandler(front)
    try:
        pid = os.fork()
        if pid == 0:  # the worker: log, write everything out, exit
            try:
                logger.info("from the worker")
                background.stop()
            finally:
                os._exit(0)
        _, status = os.waitpid(pid, 0)
        logger.info("from the parent")
        background.stop()
        stream.close()
        output = os.read(read_end, 65536).decode()
    finally:
        logger.removeHandler(front)
        os.close(read_end)
    assert status == 0
    assert "from the worker" in output and "from the parent" in output
