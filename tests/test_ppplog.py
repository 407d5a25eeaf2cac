"""pppd's log lines, character for character, and pppd's logfile format."""

from __future__ import annotations

import contextlib
import logging
import logging.handlers
import os
import re
import socket
import sys
import threading
import time
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from pypptp.daemon import logs as ppplog

# What real pppd logs say (pptpd users' syslog excerpts), and what the functions must give.
EXACT = [
    (ppplog.started("2.4.9", "root", 0), "pppd 2.4.9 started by root, uid 0"),
    (ppplog.using_interface("ppp0"), "Using interface ppp0"),
    (ppplog.connect("ppp0", "/dev/pts/1"), "Connect: ppp0 <--> /dev/pts/1"),
    (ppplog.peer_failed_chap("alice"), "Peer alice failed CHAP authentication"),
    (ppplog.pap_peer_succeeded("alice"), "PAP peer authentication succeeded for alice"),
    (ppplog.pap_peer_failed("alice"), "PAP peer authentication failed for alice"),
    (ppplog.compression_enabled(ppplog.mppe_method(128, False)), "MPPE 128-bit stateless compression enabled"),
    (ppplog.compression_enabled(ppplog.mppe_method(40, True)), "MPPE 40-bit stateful compression enabled"),
    (
        ppplog.compression_enabled("Deflate (15)", "BSD-Compress (15)"),
        "Deflate (15) / BSD-Compress (15) compression enabled",
    ),
    (ppplog.local_ip(IPv4Address("192.168.0.1")), "local  IP address 192.168.0.1"),
    (ppplog.remote_ip("192.168.0.234"), "remote IP address 192.168.0.234"),
    (ppplog.primary_dns("8.8.8.8"), "primary   DNS address 8.8.8.8"),
    (ppplog.secondary_dns("8.8.4.4"), "secondary DNS address 8.8.4.4"),
    (ppplog.terminated_by_peer(), "LCP terminated by peer"),
    (ppplog.terminated_by_peer("LCP", b"User request"), "LCP terminated by peer (User request)"),
    (ppplog.echo_failure(4), "No response to 4 echo-requests"),
    (ppplog.link_disconnected(), "Serial link appears to be disconnected."),
    (ppplog.connect_time(72), "Connect time 1.2 minutes."),
    (ppplog.bytes_transferred(123, 456), "Sent 123 bytes, received 456 bytes."),
    (ppplog.hangup(), "Modem hangup"),
    (ppplog.connection_terminated(), "Connection terminated."),
    (ppplog.terminating_on_signal(15), "Terminating on signal 15"),
    (ppplog.hangup_signal(), "Hangup (SIGHUP)"),
    (ppplog.cannot_execute("/etc/ppp/ip-up", "Invalid argument"), "Can't execute /etc/ppp/ip-up: Invalid argument"),
    (
        ppplog.child_signalled("/etc/ppp/ip-up", 42, 15),
        "Child process /etc/ppp/ip-up (pid 42) terminated with signal 15",
    ),
    (ppplog.script_finished("/etc/ppp/ip-up", 42, 1), "Script /etc/ppp/ip-up finished (pid 42), status = 0x1"),
    (ppplog.script_finished("/etc/ppp/ip-up", 42, 0), "Script /etc/ppp/ip-up finished (pid 42), status = 0x0"),
    (ppplog.exit_line(), "Exit."),
]


@pytest.mark.parametrize(("line", "expected"), EXACT, ids=[e for _, e in EXACT])
def test_exact_wording(line: str, expected: str) -> None:
    assert line == expected


def test_the_docstring_table_shows_what_the_functions_write() -> None:
    doc = ppplog.__doc__ or ""
    shown = [expected for _, expected in EXACT if f"``{expected}``" in doc]
    assert len(shown) >= 20
    for line in (
        ppplog.local_ip("192.168.0.1"),
        ppplog.compression_enabled(ppplog.mppe_method(128, False)),
        ppplog.connect_time(72),
        ppplog.bytes_transferred(123, 456),
    ):
        assert f"``{line}``" in doc


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (0, "0.0"),
        (0.9, "0.0"),
        (1, "0.1"),
        (6, "0.1"),
        (7, "0.2"),
        (59.9, "1.0"),
        (60, "1.0"),
        (61, "1.1"),
        (-5, "0.0"),
    ],
)
def test_connect_time_rounds_like_pppd(seconds: float, shown: str) -> None:
    assert ppplog.connect_time(seconds) == f"Connect time {shown} minutes."


def test_link_stats_in_pppds_order() -> None:
    assert ppplog.link_stats(72, 1, 2) == ("Connect time 1.2 minutes.", "Sent 1 bytes, received 2 bytes.")


def test_quoted_is_pppds_percent_q() -> None:
    assert ppplog.quoted("alice") == "alice"
    assert ppplog.quoted('DOMAIN\\al"ice') == 'DOMAIN\\\\al\\"ice'
    assert ppplog.quoted("a\tb\nc\bd\fe\x01\x7f") == "a\\tb\\nc\\bd\\fe\\x01\\x7f"
    assert ppplog.quoted("José") == "José"  # bytes from 0xa0 pass unchanged
    assert ppplog.quoted(b"\x85x") == "\\x85x"


def test_visible_is_pppds_percent_v() -> None:
    # A Windows Terminate-Request's data (the peer's magic number and more), as pppd shows it.
    assert ppplog.visible(b"\x1b\xb1\x0f\x85\x00<\xcdt\x00\x00\x02\xe6") == "^[M-1^OM-^E^@<M-Mt^@^@^BM-f"
    assert ppplog.visible(b"\x7f\xff\t") == "^?M-^?\t"
    assert ppplog.terminated_by_peer("LCP", b"\x00\x01") == "LCP terminated by peer (^@^A)"


def test_levels_and_logger() -> None:
    assert ppplog.LEVELS["notice"] == logging.INFO
    assert ppplog.LEVELS["warn"] == logging.WARNING
    assert ppplog.pppd_logger(3) is logging.getLogger("pppd.ppp3")
    record = logging.LogRecord("pppd.ppp0", logging.INFO, __file__, 1, "Exit.", None, None)
    record.process = 4242
    assert logging.Formatter(ppplog.SYSLOG_FORMAT).format(record) == "pppd[4242]: Exit."


# -- the logfile ----------------------------------------------------------------------------------


@pytest.fixture
def logger() -> logging.Logger:
    log = logging.getLogger("test.ppplog.logfile")
    log.setLevel(logging.DEBUG)
    log.propagate = False
    for handler in list(log.handlers):
        log.removeHandler(handler)
    return log


def test_logfile_is_bare_lines_appended(tmp_path: Path, logger: logging.Logger) -> None:
    path = tmp_path / "pppd.log"
    path.write_text("an earlier session\n")
    handler = ppplog.LogfileHandler(str(path))
    logger.addHandler(handler)
    logger.info("%s", ppplog.started("2.4.9", "root", 0), extra=ppplog.SYSLOG_ONLY)
    logger.info("%s", ppplog.using_interface("ppp0"))
    logger.debug("rcvd [LCP ConfReq id=0x1]")
    logger.warning("%s", ppplog.peer_failed_chap("alice") + "\n")
    logger.info("%s", ppplog.exit_line(), extra=ppplog.SYSLOG_ONLY)
    handler.close()
    assert path.read_text() == ("an earlier session\nUsing interface ppp0\nPeer alice failed CHAP authentication\n")


def test_logfile_with_debug(tmp_path: Path, logger: logging.Logger) -> None:
    path = tmp_path / "pppd.log"
    handler = ppplog.LogfileHandler(str(path), debug=True)
    logger.addHandler(handler)
    logger.debug("rcvd [LCP ConfReq id=0x1]")
    handler.close()
    assert path.read_text() == "rcvd [LCP ConfReq id=0x1]\n"


def test_a_failing_logfile_goes_quiet(
    tmp_path: Path, logger: logging.Logger, capsys: pytest.CaptureFixture[str]
) -> None:
    handler = ppplog.LogfileHandler(str(tmp_path / "no such directory" / "pppd.log"))
    logger.addHandler(handler)
    logger.info("first")
    logger.info("second")
    assert handler.broken
    assert capsys.readouterr().err == ""
    handler.close()


# -- a slow log never stalls the event loop (issue 15 section 2) -----------------------------------------


class SlowHandler(logging.Handler):
    """A syslog that takes ``delay`` seconds per line."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        time.sleep(self.delay)
        self.lines.append(record.getMessage())


def test_a_slow_handler_costs_the_logging_thread_nothing_and_drops_are_counted() -> None:
    slow = SlowHandler(0.001)
    background = ppplog.BackgroundLog([slow], limit=100)
    background.start()
    handler = ppplog.BackgroundHandler(background)
    logger = logging.getLogger("test.background")
    logger.propagate, logger.level = False, logging.INFO
    logger.addHandler(handler)
    try:
        started = time.monotonic()
        for n in range(2_000):
            logger.info("line %d", n)
        elapsed = time.monotonic() - started
        assert elapsed < 0.5, elapsed  # synchronously: at least 2 s
        background.stop()
    finally:
        logger.removeHandler(handler)
    written = [line for line in slow.lines if line.startswith("line ")]
    notices = [line for line in slow.lines if "dropped" in line]
    assert written[0] == "line 0" and len(written) >= 100
    dropped = sum(int(re.findall(r"(\d+) log line", line)[0]) for line in notices)
    assert notices and len(written) + dropped == 2_000
    assert background.dropped == dropped


def test_a_stalled_syslog_does_not_stall_the_caller(tmp_path: Path) -> None:
    """A datagram syslog socket that nobody reads blocks its writer after a few lines (the kernel queues
    ten datagrams): the daemon used to freeze there, every session with it."""
    address = str(tmp_path / "log")
    syslogd = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    syslogd.bind(address)
    handler = logging.handlers.SysLogHandler(address)
    background = ppplog.BackgroundLog([handler], limit=50)
    background.start()
    front = ppplog.BackgroundHandler(background)
    logger = logging.getLogger("test.syslog")
    logger.propagate, logger.level = False, logging.INFO
    logger.addHandler(front)
    try:
        started = time.monotonic()
        for n in range(500):
            logger.warning("CTRL: line %d", n)
        assert time.monotonic() - started < 0.5
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
    slow = SlowHandler(0.0)
    background = ppplog.BackgroundLog([slow])
    background.start()
    logger.addHandler(ppplog.LogfileHandler(str(path)))
    try:
        writer = []
        original = ppplog.LogfileHandler.emit

        def emit(self: ppplog.LogfileHandler, record: logging.LogRecord) -> None:
            writer.append(threading.current_thread().name)
            original(self, record)

        ppplog.LogfileHandler.emit = emit  # type: ignore[method-assign]
        try:
            logger.info("%s", ppplog.connection_terminated())
            background.flush()
        finally:
            ppplog.LogfileHandler.emit = original  # type: ignore[method-assign]
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
        assert [type(h) for h in root.handlers] == [ppplog.BackgroundHandler]
        logging.getLogger("pypptpd").info("MGR: hello")
        root.handlers[0].flush()
        assert b"pypptpd[" in syslogd.recv(4096)
        with open(write_end, "w", closefd=False) as pipe:
            monkeypatch.setattr(sys, "stderr", pipe)
            cli._setup_logging(foreground=True, debug=False)  # stderr a pipe (systemd's journal)
            assert [type(h) for h in root.handlers] == [ppplog.BackgroundHandler]
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
    background = ppplog.BackgroundLog([logging.StreamHandler(stream)])
    background.start()
    front = ppplog.BackgroundHandler(background)
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
