"""wtmp records (``-w``) read back by util-linux's ``last`` and ``utmpdump``, the file's lock, the writer
thread, the summary line's format and escaping, and the configuration of ``-w``/``logwtmp``/``--wtmp``.

The end-to-end tests (a real daemon, a real client session) are in ``test_wtmp_netns.py``.
"""

from __future__ import annotations

import datetime
import errno
import logging
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from pypptp.daemon.accounting import escaped, summary_line, wtmp_user
from pypptp.daemon.config import DaemonConfig, load
from pypptp.host import wtmp
from pypptp.host.wtmp import DEAD_PROCESS, RECORD_SIZE, USER_PROCESS, UtmpRecord, WtmpWriter, append, decode, encode

LOGIN_AT = 1796500000.25  # 2026-12-05 19:46:40.25 UTC
CLIENT = IPv4Address("198.18.0.2")


def last(path: Path, *flags: str) -> list[str]:
    """``last -F -f path`` (full times), in UTC, without the trailing ``path begins ...`` line."""
    out = subprocess.run(
        ["last", "-F", *flags, "-f", str(path)], capture_output=True, text=True, check=True, env={"TZ": "UTC"}
    ).stdout
    return [line for line in out.splitlines() if line and " begins " not in line]


def utc(seconds: float) -> str:
    """``last -F``'s spelling of a time, in UTC."""
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC).strftime("%a %b %e %H:%M:%S %Y")


@pytest.fixture
def wtmp_file(tmp_path: Path) -> Path:
    path = tmp_path / "wtmp"
    path.touch()
    return path


def test_record_layout_round_trip() -> None:
    record = UtmpRecord.login("ppp0", "alice", "198.18.0.2", LOGIN_AT, CLIENT)
    data = encode(record)
    assert len(data) == RECORD_SIZE == 384
    assert decode(data) == record
    assert data[:2] == USER_PROCESS.to_bytes(2, sys.byteorder)
    assert data[8:12] == b"ppp0" and data[44:49] == b"alice" and data[76:86] == b"198.18.0.2"
    assert data[348:352] == CLIENT.packed  # ut_addr_v6[0], network order
    logout = decode(encode(UtmpRecord.logout("ppp0", LOGIN_AT + 1)))
    assert (logout.type, logout.user, logout.host, logout.address) == (DEAD_PROCESS, b"", b"", None)
    assert logout.pid == os.getpid()


def test_texts_are_cut_at_their_field_size_on_a_character_boundary() -> None:
    record = UtmpRecord.login("ppp0", "é" * 20, "h" * 300, LOGIN_AT)
    assert record.user == ("é" * 16).encode()  # 32 bytes, strncpy: no NUL when full
    assert record.host == b"h" * 256
    assert decode(encode(record)).user == record.user
    odd = UtmpRecord.login("ppp0", "a" + "é" * 20, "", LOGIN_AT)
    assert odd.user == ("a" + "é" * 15).encode()  # 31 bytes: half an é is not written
    with pytest.raises(ValueError, match="ut_user holds 32 bytes"):
        encode(UtmpRecord(USER_PROCESS, 1, b"ppp0", b"x" * 33))
    with pytest.raises(ValueError, match="32-bit"):
        encode(UtmpRecord(USER_PROCESS, 1, b"ppp0", b"x", time=2.0**31))


def test_utmpdump_reads_the_records_and_writes_the_same_bytes_back(wtmp_file: Path, tmp_path: Path) -> None:
    """utmpdump is built on the system's own ``struct utmp``: its text of our records, turned back into
    records by ``utmpdump -r``, gives our bytes again, field for field."""
    append(str(wtmp_file), encode(UtmpRecord.login("ppp0", "alice", "198.18.0.2", LOGIN_AT, CLIENT)))
    append(str(wtmp_file), encode(UtmpRecord.logout("ppp0", LOGIN_AT + 754.5)))
    dump = subprocess.run(["utmpdump", str(wtmp_file)], capture_output=True, text=True, check=True).stdout
    lines = dump.splitlines()
    pid = os.getpid()
    assert re.fullmatch(
        rf"\[7\] \[{pid:05d}\] \[ *\] \[alice *\] \[ppp0 *\] \[198\.18\.0\.2 *\] \[198\.18\.0\.2 *\] "
        r"\[2026-12-05T19:46:40,250000\+00:00\]",
        lines[0],
    ), lines
    assert re.fullmatch(
        rf"\[8\] \[{pid:05d}\] \[ *\] \[ *\] \[ppp0 *\] \[ *\] \[0\.0\.0\.0 *\] \[2026-12-05T19:59:14,750000\+00:00\]",
        lines[1],
    ), lines
    back = tmp_path / "back"
    subprocess.run(["utmpdump", "-r", "-o", str(back)], input=dump, text=True, check=True, capture_output=True)
    ours, theirs = wtmp_file.read_bytes(), back.read_bytes()
    assert len(theirs) == len(ours) == 2 * RECORD_SIZE
    for at in (0, RECORD_SIZE):  # utmpdump writes the empty ut_id it printed as "[    ]" back as spaces
        assert theirs[at + 40 : at + 44] == b"    " and ours[at + 40 : at + 44] == bytes(4)
        assert (
            theirs[at : at + 40] + theirs[at + 44 : at + RECORD_SIZE]
            == ours[at : at + 40] + ours[at + 44 : at + RECORD_SIZE]
        )


def test_last_shows_the_session_with_its_logout(wtmp_file: Path) -> None:
    append(str(wtmp_file), encode(UtmpRecord.login("ppp0", "alice", "198.18.0.2", LOGIN_AT, CLIENT)))
    append(str(wtmp_file), encode(UtmpRecord.login("ppp1", "bob", "198.18.0.3", LOGIN_AT + 5)))
    append(str(wtmp_file), encode(UtmpRecord.logout("ppp0", LOGIN_AT + 754.5)))
    lines = last(wtmp_file)
    assert len(lines) == 2, lines
    bob, alice = (line.split() for line in lines)
    assert alice[:3] == ["alice", "ppp0", "198.18.0.2"]
    login, logout = utc(LOGIN_AT), utc(LOGIN_AT + 754.5)
    assert f" {login} - {logout}  (00:12)" in lines[1]
    assert bob[:3] == ["bob", "ppp1", "198.18.0.3"]
    assert lines[0].endswith("gone - no logout")  # no logout yet, and this pid never was its process
    assert last(wtmp_file, "-i")[1].split()[2] == "198.18.0.2"  # ut_addr_v6: last -i shows the address too


def test_a_new_record_after_a_torn_one_starts_on_a_record_boundary(wtmp_file: Path) -> None:
    """glibc's updwtmp cuts off what a crash left half written, or every later record would be misread."""
    append(str(wtmp_file), encode(UtmpRecord.login("ppp0", "alice", "198.18.0.2", LOGIN_AT)))
    with wtmp_file.open("ab") as f:
        f.write(b"\x07" * 100)
    append(str(wtmp_file), encode(UtmpRecord.logout("ppp0", LOGIN_AT + 60)))
    assert wtmp_file.stat().st_size == 2 * RECORD_SIZE
    assert [r.type for r in wtmp.read_records(str(wtmp_file))] == [USER_PROCESS, DEAD_PROCESS]


def test_a_missing_file_is_not_created(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        append(str(tmp_path / "wtmp"), encode(UtmpRecord.logout("ppp0", LOGIN_AT)))
    assert not (tmp_path / "wtmp").exists()


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "wtmp"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # with a reader, opening it for writing would work
    try:
        with pytest.raises(OSError, match="not a regular file") as caught:
            append(str(fifo), encode(UtmpRecord.logout("ppp0", LOGIN_AT)))
        assert caught.value.errno == errno.EINVAL
    finally:
        os.close(reader)


HOLD_LOCK = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_WRONLY)
fcntl.lockf(fd, fcntl.LOCK_EX)  # F_SETLKW, F_WRLCK, the whole file: what glibc's updwtmp takes
print("locked", flush=True)
sys.stdin.readline()
"""


@pytest.fixture
def lock_holder(wtmp_file: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holding wtmp's fcntl write lock until its stdin is closed."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(wtmp_file)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
    yield holder
    if holder.poll() is None:
        holder.kill()
    holder.wait()


def release(holder: subprocess.Popen[str]) -> None:
    assert holder.stdin is not None
    holder.stdin.close()
    holder.wait(5)


def test_the_lock_is_waited_for_and_then_given_up(wtmp_file: Path, lock_holder: subprocess.Popen[str]) -> None:
    data = encode(UtmpRecord.logout("ppp0", LOGIN_AT))
    started = time.monotonic()
    with pytest.raises(OSError, match="held by another process") as caught:
        append(str(wtmp_file), data, lock_timeout=0.3)
    assert caught.value.errno == errno.ETIMEDOUT and time.monotonic() - started >= 0.3
    assert wtmp_file.stat().st_size == 0
    threading.Timer(0.3, release, (lock_holder,)).start()
    started = time.monotonic()
    append(str(wtmp_file), data, lock_timeout=5)
    assert time.monotonic() - started >= 0.25 and wtmp_file.read_bytes() == data


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def writer_log() -> Iterator[tuple[logging.Logger, Lines]]:
    logger = logging.getLogger("test_wtmp.writer")
    handler = Lines()
    logger.addHandler(handler)
    yield logger, handler
    logger.removeHandler(handler)


def test_the_writer_keeps_the_order(wtmp_file: Path, writer_log: tuple[logging.Logger, Lines]) -> None:
    writer = WtmpWriter(writer_log[0])
    for unit in range(50):
        writer.write(str(wtmp_file), UtmpRecord.login(f"ppp{unit}", "alice", "198.18.0.2", LOGIN_AT + unit))
        writer.write(str(wtmp_file), UtmpRecord.logout(f"ppp{unit}", LOGIN_AT + unit + 0.5))
    writer.close()
    records = wtmp.read_records(str(wtmp_file))
    assert [(r.type, r.line) for r in records] == [
        (kind, f"ppp{unit}".encode()) for unit in range(50) for kind in (USER_PROCESS, DEAD_PROCESS)
    ]
    assert writer.written == 100 and writer_log[1].lines == []


def test_the_writer_says_a_failure_once_and_counts_what_it_lost(
    tmp_path: Path, writer_log: tuple[logging.Logger, Lines]
) -> None:
    logger, handler = writer_log
    path = tmp_path / "wtmp"
    writer = WtmpWriter(logger)
    for unit in range(3):
        writer.write(str(path), UtmpRecord.logout(f"ppp{unit}", LOGIN_AT))
    writer.close()
    assert handler.lines == [
        f"MGR: wtmp: cannot write to {path} (No such file or directory): records are lost until it can"
    ]
    path.touch()
    writer.write(str(path), UtmpRecord.logout("ppp9", LOGIN_AT))
    writer.close()
    assert handler.lines[1:] == [f"MGR: wtmp: {path} written again; 3 record(s) were lost"]
    assert [r.line for r in wtmp.read_records(str(path))] == [b"ppp9"]


def test_the_writer_never_blocks_and_its_queue_is_bounded(
    wtmp_file: Path, lock_holder: subprocess.Popen[str], writer_log: tuple[logging.Logger, Lines]
) -> None:
    """With wtmp locked by another process, records wait on the writer's thread, never on the caller's;
    past :data:`~pypptp.host.wtmp.QUEUE_LIMIT` they are dropped and counted."""
    logger, handler = writer_log
    writer = WtmpWriter(logger, lock_timeout=30)
    started = time.monotonic()
    total = wtmp.QUEUE_LIMIT + 10
    for n in range(total):
        writer.write(str(wtmp_file), UtmpRecord.logout(f"ppp{n}", LOGIN_AT))
    assert time.monotonic() - started < 1.0
    assert writer.lost >= 9  # one record may have left the queue for the lock before the queue filled
    assert handler.lines[0].endswith(f"({wtmp.QUEUE_LIMIT} records wait already): records are lost until it can")
    release(lock_holder)
    writer.close()
    written = len(wtmp.read_records(str(wtmp_file)))
    assert written + 10 >= total >= written + 9 and writer.written == written
    assert re.fullmatch(rf"MGR: wtmp: {wtmp_file} written again; (9|10) record\(s\) were lost", handler.lines[-1])


# -- the summary line and the names -------------------------------------------------------------

HOSTILE = 'ev il\n\x1b[31m"x\\\udcff'
"""A name with a space, a newline, an escape sequence, a quote, a backslash and a byte that is not UTF-8."""


def test_escaped() -> None:
    assert escaped(HOSTILE) == 'ev\\x20il\\x0a\\x1b[31m\\"x\\\\\\xff'
    assert escaped("a b", spaces=False) == "a b" and escaped("\u2028") == "\\u2028"
    assert wtmp_user("ACME\\alice", strip_domain=True) == "alice"
    assert wtmp_user("ACME\\alice", strip_domain=False) == "ACME\\\\alice"


def test_summary_line() -> None:
    line = summary_line(
        user="alice",
        strip_domain=False,
        peer="198.18.0.2",
        ip="192.168.0.234",
        ifname="ppp0",
        duration=12.34,
        sent=1234,
        received=5678,
        reason="LCP terminated by peer",
    )
    assert line == (
        'session summary: user="alice" peer=198.18.0.2 ip=192.168.0.234 if=ppp0 duration=12.3s sent=1234 '
        'received=5678 reason="LCP terminated by peer"'
    )
    hostile = summary_line(
        user=HOSTILE,
        strip_domain=False,
        peer="198.18.0.2",
        ip=None,
        ifname=None,
        duration=0.04,
        sent=0,
        received=0,
        reason='LCP terminated by peer ("bye"\n)',
    )
    assert hostile == (
        'session summary: user="ev\\x20il\\x0a\\x1b[31m\\"x\\\\\\xff" peer=198.18.0.2 ip=- if=- duration=0.0s '
        'sent=0 received=0 reason="LCP terminated by peer (\\"bye\\"\\x0a)"'
    )
    assert "\n" not in hostile and "\x1b" not in hostile


# -- configuration ------------------------------------------------------------------------------


@pytest.fixture
def conf(tmp_path: Path) -> Path:
    (tmp_path / "options").write_text("name pptpd\nnoauth\n")
    path = tmp_path / "pptpd.conf"
    path.write_text(f"option {tmp_path / 'options'}\nlocalip 192.168.0.1\nremoteip 192.168.0.2-9\n")
    return path


def load_with(conf: Path, *extra: str) -> DaemonConfig:
    return load(["-c", str(conf), "--secrets", "/nonexistent", *extra], system_options="/nonexistent")


def wtmp_warnings(config: DaemonConfig) -> list[str]:
    return [warning for warning in config.warnings if ": logwtmp: " in warning]


def test_w_and_logwtmp_turn_it_on_and_wtmp_names_the_file(conf: Path, wtmp_file: Path) -> None:
    config = load_with(conf)
    assert not config.logwtmp and config.wtmp == "/var/log/wtmp"
    config = load_with(conf, "-w", "--wtmp", str(wtmp_file))
    assert config.logwtmp and config.wtmp == str(wtmp_file)
    assert not wtmp_warnings(config)
    conf.write_text(conf.read_text() + "logwtmp\n")
    config = load_with(conf, "--logwtmp", "--wtmp", str(wtmp_file))
    assert config.logwtmp and not wtmp_warnings(config)
    assert load_with(conf, "--wtmp", str(wtmp_file)).logwtmp


def test_a_missing_wtmp_is_a_warning(conf: Path, tmp_path: Path) -> None:
    missing = tmp_path / "nowtmp"
    config = load_with(conf, "-w", "--wtmp", str(missing))
    assert wtmp_warnings(config) == [
        f"command line: -w/--logwtmp: logwtmp: {missing} does not exist: no wtmp records are written (pppd's "
        f"logwtmp does not create the file either): install -m 664 -g utmp /dev/null {missing}"
    ]
    conf.write_text(conf.read_text() + "logwtmp\n")
    config = load_with(conf, "--wtmp", str(tmp_path))
    assert [w.split(": no wtmp")[0] for w in wtmp_warnings(config)] == [
        f"{conf}:4: logwtmp: {tmp_path} is not a regular file"
    ]
