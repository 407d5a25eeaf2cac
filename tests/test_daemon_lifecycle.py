"""pypptpd's lifecycle: one daemon per pidfile, a start that reports failure, systemd's notifications,
log files reopened after logrotate, the logging fall-back, the shipped service files, demo --help.

The daemons run in namespaces of their own (the ``netns`` tests); a detached daemon (no ``-f``) also runs
in a mount namespace where ``/var/log`` is a directory of the test's, as there is no syslog here: its
fall-back log never touches the machine's ``/var/log``.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pypptp.daemon import cli, install, logs, systemd
from pypptp.daemon.lifecycle import AlreadyRunning, PidFile
from pypptp.host.netns import NetnsPair
from tests.conftest import REPO, Pypptpd, private_var_log, require_tools
from tests.test_daemon_netns import open_client

DAEMON = [sys.executable, "-m", "pypptp.daemon.cli"]


# -- the pidfile ---------------------------------------------------------------------------------------


def test_a_locked_pidfile_stops_a_second_holder_and_stays_untouched(tmp_path: Path) -> None:
    path = tmp_path / "pptpd.pid"
    first = PidFile(str(path))
    first.acquire()
    assert path.read_text() == f"{os.getpid()}\n"
    path.write_text("12345\n")  # what the second one reads and reports; it must not write
    second = PidFile(str(path))
    with pytest.raises(AlreadyRunning, match=rf"another pypptpd is running \(pid 12345, {path}\)"):
        second.acquire()
    second.release()  # never held: does nothing
    assert path.read_text() == "12345\n"
    first.release()
    assert not path.exists()


def test_a_stale_pidfile_is_taken_over(tmp_path: Path) -> None:
    """A daemon killed by SIGKILL leaves its pidfile, unlocked: the next start takes it."""
    path = tmp_path / "pptpd.pid"
    path.write_text("999999\nleftover text\n")
    pidfile = PidFile(str(path))
    pidfile.acquire()
    assert path.read_text() == f"{os.getpid()}\n"
    pidfile.release()


def test_the_pidfile_is_unlinked_only_if_it_is_still_ours(tmp_path: Path) -> None:
    path = tmp_path / "pptpd.pid"
    pidfile = PidFile(str(path))
    pidfile.acquire()
    path.unlink()
    path.write_text("4242\n")  # somebody else's file now
    pidfile.release()
    assert path.read_text() == "4242\n"


# -- sd_notify -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("abstract", [False, True])
def test_notifier_sends_datagrams_to_a_path_or_an_abstract_socket(tmp_path: Path, abstract: bool) -> None:
    name = f"@pypptp-test-{os.getpid()}" if abstract else str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as receiver:
        receiver.bind("\0" + name[1:] if abstract else name)
        receiver.settimeout(2)
        notify = systemd.Notifier(name)
        assert notify.ready("listening") and receiver.recv(4096) == b"READY=1\nSTATUS=listening"
        before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        assert notify.reloading()
        lines = receiver.recv(4096).decode().split("\n")
        assert lines[0] == "RELOADING=1" and lines[1].startswith("MONOTONIC_USEC=")
        assert before <= int(lines[1].split("=")[1]) <= time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        assert notify.stopping() and receiver.recv(4096) == b"STOPPING=1"
        notify.close()


def test_notifier_without_notify_socket_does_nothing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert not systemd.notifier().enabled and not systemd.notifier().ready()
    assert not systemd.Notifier("relative/path").enabled  # not a socket address systemd would give
    gone = systemd.Notifier(str(tmp_path / "nobody"))
    assert not gone.ready()  # no receiver: not sent, and no exception
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "notify"))
    assert systemd.notifier().enabled and "NOTIFY_SOCKET" not in os.environ  # scripts do not inherit it


# -- log files -----------------------------------------------------------------------------------------


def test_reopen_after_rename_writes_to_the_new_file_from_the_log_thread(tmp_path: Path) -> None:
    """logrotate renames ppp.log, SIGHUP reopens: lines logged while a writer thread writes, and the reopen
    from another thread, land whole, each once, in the old file or the new one, in order."""
    path = tmp_path / "ppp.log"
    logger = logging.getLogger("test.lifecycle.reopen")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    handler = logs.LogfileHandler(str(path))
    logger.addHandler(handler)
    background = logs.BackgroundLog([])
    background.start()
    try:
        count = 4000
        rotated = threading.Event()

        def rotate() -> None:
            deadline = time.monotonic() + 5
            while not path.exists() and time.monotonic() < deadline:
                time.sleep(0.001)
            path.rename(tmp_path / "ppp.log.1")
            assert logs.reopen_files() >= 1
            rotated.set()

        rotator = threading.Thread(target=rotate, daemon=True)
        rotator.start()
        for number in range(count):
            logger.info("line %d", number)
            if number == count // 2:
                rotator.join(5)
        assert rotated.is_set() and background.flush()
        old = (tmp_path / "ppp.log.1").read_text().splitlines()
        new = path.read_text().splitlines()
        assert old and new and old + new == [f"line {n}" for n in range(count)]
    finally:
        background.stop()
        logger.removeHandler(handler)
        handler.close()


def test_reopen_turns_a_broken_logfile_back_on(tmp_path: Path) -> None:
    directory = tmp_path / "logs"
    path = directory / "ppp.log"
    logger = logging.getLogger("test.lifecycle.broken")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    handler = logs.LogfileHandler(str(path))
    logger.addHandler(handler)
    try:
        logger.info("lost: no directory yet")
        assert handler.broken
        directory.mkdir()
        logger.info("still off, as pppd")
        handler.reopen()
        logger.info("back")
        handler.flush()
        assert path.read_text() == "back\n"
    finally:
        logger.removeHandler(handler)
        handler.close()


def test_no_syslog_falls_back_to_a_file_and_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = str(tmp_path / "no-dev-log")
    handler = cli._detached_handler(missing, str(tmp_path / "pypptpd.log"))
    assert isinstance(handler, logs.ReopenableFile) and handler.baseFilename == str(tmp_path / "pypptpd.log")
    handler.close()
    err = capsys.readouterr().err
    assert f"no syslog ({missing}: No such file or directory): logging to {tmp_path / 'pypptpd.log'}" in err
    stale = tmp_path / "stale-socket"  # a /dev/log nobody reads
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as gone:
        gone.bind(str(stale))
    handler = cli._detached_handler(str(stale), str(tmp_path / "nodir" / "pypptpd.log"))
    assert isinstance(handler, logging.NullHandler)
    err = capsys.readouterr().err
    assert f"no syslog ({stale}: Connection refused) and {tmp_path / 'nodir' / 'pypptpd.log'}" in err
    assert err.rstrip().endswith("no log")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as syslogd:
        syslogd.bind(str(tmp_path / "dev-log"))
        handler = cli._detached_handler(str(tmp_path / "dev-log"), str(tmp_path / "unused.log"))
        assert isinstance(handler, logging.handlers.SysLogHandler) and capsys.readouterr().err == ""
        handler.close()


@pytest.mark.parametrize("syslog_up", [True, False])
def test_under_systemd_lines_reach_the_journal_with_the_originals_identities(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, syslog_up: bool
) -> None:
    """The unit runs ``pypptpd -f``: stderr is the journal stream (``JOURNAL_STREAM`` names its device and
    inode).  Lines then go to the syslog socket as ``pptpd[PID]:`` and ``pppd[PID]:`` with no time stamp of
    ours (stderr would make every line the unit's ``pypptpd`` and stamp it twice); with no syslog socket,
    stderr without our time stamp."""
    stream = (tmp_path / "journal-stream").open("w")
    st = os.fstat(stream.fileno())
    monkeypatch.setenv("JOURNAL_STREAM", f"{st.st_dev}:{st.st_ino}")
    monkeypatch.setattr(sys, "stderr", stream)
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    path = str(tmp_path / "dev-log")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as syslogd:
        if syslog_up:
            syslogd.bind(path)
            syslogd.settimeout(5)
        try:
            cli._setup_logging(True, False, syslog=path)
            logging.getLogger("pypptpd").info("MGR: to the journal")
            logging.getLogger("pppd.ppp0").info("remote IP address 192.168.0.234")
            for handler in root.handlers:
                handler.flush()
            if syslog_up:
                got = [syslogd.recv(4096).decode() for _ in range(2)]
                pid = os.getpid()
                assert got == [
                    f"<30>pptpd[{pid}]: MGR: to the journal\x00",
                    f"<30>pppd[{pid}]: remote IP address 192.168.0.234\x00",
                ]
                assert (tmp_path / "journal-stream").read_text() == ""
            else:
                stream.flush()
                pid = os.getpid()
                assert (tmp_path / "journal-stream").read_text().splitlines() == [
                    f"pptpd[{pid}]: MGR: to the journal",
                    f"pppd[{pid}]: ppp0: remote IP address 192.168.0.234",
                ]
        finally:
            for handler in root.handlers:
                handler.close()
            root.handlers[:], level = saved
            root.setLevel(level)
            stream.close()


# -- the shipped files and pypptpd-install ---------------------------------------------------------------


def run_install(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pypptp.daemon.install", *args], capture_output=True, text=True, check=False, cwd=REPO
    )


def test_install_puts_every_file_in_place_and_never_overwrites(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc/pptpd.conf").write_text("# the admin's\n")
    result = run_install("--root", str(root), "--pypptpd", "/opt/pypptp/bin/pypptpd")
    assert result.returncode == 0, result.stderr
    unit = root / "etc/systemd/system/pypptpd.service"
    for path in (unit, root / "etc/logrotate.d/pypptpd", root / "etc/ppp/pptpd-options"):
        assert f"installed {path}" in result.stdout and (path.stat().st_mode & 0o777) == 0o644
    assert f"kept {root / 'etc/pptpd.conf'}" in result.stdout
    assert (root / "etc/pptpd.conf").read_text() == "# the admin's\n"
    text = unit.read_text()
    assert "ExecStart=/opt/pypptp/bin/pypptpd -f -c /etc/pptpd.conf" in text and "@" not in text
    unit.write_text(text + "# edited\n")
    again = run_install("--root", str(root))
    assert again.returncode == 0 and again.stdout.count("kept ") == 4 and unit.read_text().endswith("# edited\n")


def test_the_unit_says_what_the_issue_asks() -> None:
    unit = install.data("pypptpd.service")
    settings = {line.split("=", 1)[0]: line.split("=", 1)[1] for line in unit.splitlines() if "=" in line[:40]}
    assert settings["Type"] == "notify" and settings["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert " -f " in settings["ExecStart"]
    assert set(settings["CapabilityBoundingSet"].split()) == {"CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_NET_BIND_SERVICE"}
    assert settings["DeviceAllow"] == "/dev/net/tun rw" and settings["NoNewPrivileges"] == "yes"
    for breaking in ("PrivateNetwork", "RestrictAddressFamilies", "PrivateDevices", "ProtectKernelTunables"):
        assert breaking not in settings


def test_systemd_analyze_verify_finds_nothing_in_the_installed_unit(tmp_path: Path) -> None:
    require_tools("systemd-analyze")
    root = tmp_path / "root"
    assert run_install("--root", str(root)).returncode == 0
    unit = root / "etc/systemd/system/pypptpd.service"

    def verify(path: Path) -> subprocess.CompletedProcess[str]:
        # Only this unit: its dependencies (multi-user.target) pull in every unit enabled on the machine,
        # whose warnings are not ours (Debian's freeradius.service, which the README's test command
        # installs, warns about MemoryLimit=).
        argv = ["systemd-analyze", "verify", "--recursive-errors=no", str(path)]
        return subprocess.run(argv, capture_output=True, text=True, check=False)

    result = verify(unit)
    assert result.returncode == 0 and result.stdout + result.stderr == "", result.stdout + result.stderr
    broken = tmp_path / "pypptpd.service"  # the same check notices a mistake
    broken.write_text(unit.read_text().replace("KillMode=mixed", "KillMode=politely"))
    complaint = verify(broken)
    assert "politely" in complaint.stderr + complaint.stdout


def test_the_shipped_configuration_passes_check(tmp_path: Path) -> None:
    options = tmp_path / "pptpd-options"
    options.write_text(install.data("pptpd-options"))
    conf = tmp_path / "pptpd.conf"
    conf.write_text(install.data("pptpd.conf").replace("/etc/ppp/pptpd-options", str(options)))
    (tmp_path / "chap-secrets").write_text("alice pptpd s3cret *\n")
    (tmp_path / "chap-secrets").chmod(0o600)
    (tmp_path / "options").write_text("")
    argv = ["--check", "-c", str(conf), "--secrets", str(tmp_path / "chap-secrets")]
    argv += ["--system-options", str(tmp_path / "options")]
    result = subprocess.run([*DAEMON, *argv], capture_output=True, text=True, check=False, cwd=REPO)
    assert result.returncode == 0 and f"ok: {conf}" in result.stdout and str(options) in result.stdout, result.stdout
    parsed = cli.load(
        ["-c", str(conf), "--secrets", str(tmp_path / "chap-secrets")], system_options=str(tmp_path / "options")
    )
    link = parsed.options.link_config()
    assert parsed.options.proxyarp and link is not None


def test_demo_help_explains_and_runs_nothing() -> None:
    started = time.monotonic()
    for flag in ("-h", "--help"):
        result = subprocess.run(
            [sys.executable, "-m", "pypptp.client.demo", flag], capture_output=True, text=True, check=False, cwd=REPO
        )
        assert result.returncode == 0 and "usage: pypptp-demo" in result.stdout and "namespaces" in result.stdout
        assert "Namespaces" not in result.stdout and "pypptpd is listening" not in result.stdout
    assert time.monotonic() - started < 20


# -- real daemons --------------------------------------------------------------------------------------


def detached_argv(daemon: Pypptpd, pidfile: Path, *extra: str, logdir: Path) -> list[str]:
    """``pypptpd`` without ``-f``, with ``daemon``'s files, in its namespace, its ``/var/log`` ``logdir``."""
    argv = [*DAEMON, "-c", str(daemon.conf), "-p", str(pidfile), "--secrets", str(daemon.secrets)]
    argv += ["--system-options", str(daemon.workdir / "options.system"), *extra]
    return private_var_log(daemon.pair.exec_argv(daemon.pair.server_ns, argv), logdir)


def start_detached(argv: list[str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=30, env=env, cwd=REPO)


def stop_detached(pidfile: Path, timeout: float = 15.0) -> None:
    """SIGTERM to the detached daemon, then wait until it has removed its pidfile (it is not our child)."""
    pid = int(pidfile.read_text())
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while pidfile.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    if pidfile.exists():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        raise AssertionError(f"pypptpd (pid {pid}) did not exit after SIGTERM")


def accepts(daemon: Pypptpd) -> bool:
    try:
        daemon.client_socket(timeout=2).close()
    except OSError:
        return False
    return True


@pytest.fixture
def logdir(tmp_path: Path) -> Path:
    path = tmp_path / "var-log"
    path.mkdir()
    return path


@pytest.mark.netns
@pytest.mark.parametrize("workers", [1, 2])
def test_a_second_instance_fails_loudly_and_leaves_the_first_alone(
    start_pypptpd: Callable[..., Pypptpd], logdir: Path, workers: int
) -> None:
    args = ["--workers", str(workers)] if workers > 1 else []
    daemon = start_pypptpd(args=args)
    first = int(daemon.pidfile.read_text())
    # -f, as systemd runs it: the same pidfile
    argv = [*DAEMON, "-f", "-c", str(daemon.conf), "-p", str(daemon.pidfile), "--secrets", str(daemon.secrets)]
    argv += ["--system-options", str(daemon.workdir / "options.system"), *args]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    second = subprocess.run(
        daemon.pair.exec_argv(daemon.pair.server_ns, argv), capture_output=True, text=True, timeout=30, env=env
    )
    assert second.returncode == 1
    assert f"another pypptpd is running (pid {first}, {daemon.pidfile})" in second.stderr
    # detached: the starter says it, and its status is 1
    detached = start_detached(detached_argv(daemon, daemon.pidfile, *args, logdir=logdir))
    assert detached.returncode == 1, detached.stderr
    assert f"pypptpd: cannot start: another pypptpd is running (pid {first}, {daemon.pidfile})" in detached.stderr
    assert "logging to /var/log/pypptpd.log" in detached.stderr  # the fall-back, said before detaching
    assert "another pypptpd is running" in (logdir / "pypptpd.log").read_text()
    # the first one still has its pidfile, and it still leads to it
    assert daemon.pidfile.read_text() == f"{first}\n"
    os.kill(int(daemon.pidfile.read_text()), signal.SIGHUP)
    daemon.wait_log("SIGHUP")
    assert accepts(daemon)
    assert daemon.terminate() == 0 and not daemon.pidfile.exists()


@pytest.mark.netns
@pytest.mark.parametrize("workers", [1, 2])
def test_a_detached_start_returns_once_listening_or_says_why_not(
    start_pypptpd: Callable[..., Pypptpd], logdir: Path, workers: int
) -> None:
    args = ["--workers", str(workers)] if workers > 1 else []
    daemon = start_pypptpd()  # listening on the port, with its own pidfile
    theirs = daemon.pidfile.read_text()
    ours = daemon.workdir / "detached.pid"
    taken = start_detached(detached_argv(daemon, ours, *args, logdir=logdir))
    assert taken.returncode == 1
    assert "pypptpd: cannot start:" in taken.stderr and "address already in use" in taken.stderr.lower(), taken.stderr
    assert not ours.exists() and daemon.pidfile.read_text() == theirs
    assert daemon.terminate() == 0
    started = start_detached(detached_argv(daemon, ours, *args, logdir=logdir))
    try:
        assert started.returncode == 0, started.stderr
        assert accepts(daemon)  # at once: the status came when the port was listening
        assert "no syslog (/dev/log: " in started.stderr and "logging to /var/log/pypptpd.log" in started.stderr
        assert "listening on" in (logdir / "pypptpd.log").read_text()
    finally:
        stop_detached(ours)
    assert "MGR: Exit." in (logdir / "pypptpd.log").read_text()


@pytest.mark.netns
@pytest.mark.parametrize("workers", [1, 2])
async def test_logrotate_then_sighup_sends_new_lines_to_the_new_file(
    start_pypptpd: Callable[..., Pypptpd], tmp_path: Path, workers: int
) -> None:
    """A real session's lines in ppp.log; the shipped logrotate snippet (paths moved into the test's
    directory) rotates it and signals the daemon through its pidfile; the next session's lines go to
    the new ppp.log, none to ppp.log.1."""
    require_tools("logrotate")
    logfile = tmp_path / "ppp.log"
    options = f"name pptpd\nrequire-mschap-v2\nrequire-mppe-128\nlogfile {logfile}\n"
    args = ["--workers", str(workers)] if workers > 1 else []
    daemon = start_pypptpd(options=options, args=args)
    await sessions_on_every_worker(daemon, workers)  # each worker has the file open
    await wait_for(lambda: logfile.read_text().count("Connection terminated") >= workers)
    conf = tmp_path / "logrotate.conf"
    snippet = install.data("logrotate").replace("/var/log/ppp.log", str(logfile))
    snippet = snippet.replace("/var/log/pypptpd.log", str(tmp_path / "unused.log"))
    conf.write_text(snippet.replace("/var/run/pptpd.pid", str(daemon.pidfile)))
    rotated = subprocess.run(
        ["logrotate", "-f", "-s", str(tmp_path / "logrotate.state"), str(conf)], capture_output=True, text=True
    )
    assert rotated.returncode == 0, rotated.stderr
    old = tmp_path / "ppp.log.1"
    before = old.read_text()
    assert "Connection terminated" in before and not logfile.exists()
    await wait_for(lambda: daemon.log().count("log file(s) reopened") == workers)
    await sessions_on_every_worker(daemon, workers, since=len(daemon.log()))
    await wait_for(lambda: logfile.exists() and logfile.read_text().count("Connection terminated") >= workers)
    assert old.read_text() == before
    assert daemon.terminate() == 0


async def sessions_on_every_worker(daemon: Pypptpd, workers: int, since: int = 0) -> None:
    """Sessions one after another until every worker has served one (the kernel picks the worker by a
    hash of the client's port: a few tries)."""
    for _ in range(40):
        session = await open_client(daemon, tun=False)
        await session.close()
        await wait_for(lambda: daemon.log()[since:].count("Connection terminated") > 0)
        served = set(re.findall(r"\[(\d+)\]: (?:ppp\d+: )?Connect: ppp", daemon.log()[since:]))
        if len(served) >= workers:
            return
    raise AssertionError(f"sessions reached {len(served)} of {workers} workers")


async def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


@pytest.fixture
def notify_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    """A datagram socket set as NOTIFY_SOCKET for the daemons started next (a path: an abstract name
    would not reach another network namespace)."""
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as receiver:
        receiver.bind(str(path))
        receiver.setblocking(False)
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        yield receiver


def messages(receiver: socket.socket, until: str, timeout: float = 10.0) -> list[str]:
    """Datagrams received until one that has the line ``until``."""
    got: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            got.append(receiver.recv(4096).decode())
        except BlockingIOError:
            time.sleep(0.005)
            continue
        if until in got[-1].split("\n"):
            return got
    raise AssertionError(f"no {until} within {timeout} s; received {got}")


@pytest.mark.netns
@pytest.mark.parametrize("workers", [1, 2])
def test_sd_notify_ready_once_accepting_reloading_and_stopping(
    netns_pair: NetnsPair, tmp_path: Path, notify_socket: socket.socket, workers: int
) -> None:
    workdir = tmp_path / "daemon"
    workdir.mkdir()
    args = ["--workers", str(workers)] if workers > 1 else []
    daemon = Pypptpd(netns_pair, workdir, [f"listen {netns_pair.server_ip}"], args)
    try:
        ready = messages(notify_socket, "READY=1")
        assert accepts(daemon)  # READY=1 came once the port accepted
        assert all("READY=1" not in m for m in ready[:-1]) and "STATUS=" in ready[-1]
        if workers > 1:
            assert daemon.log().count("listening on") == workers and "2 workers serving" in daemon.log()
        daemon.process.send_signal(signal.SIGHUP)
        reload = messages(notify_socket, "READY=1")
        assert reload[0].startswith("RELOADING=1\nMONOTONIC_USEC=")
        daemon.process.send_signal(signal.SIGTERM)
        assert "STOPPING=1" in messages(notify_socket, "STOPPING=1")[-1]
        assert daemon.process.wait(30) == 0
    finally:
        daemon.terminate()


def test_pidfile_lock_is_an_flock_others_can_see(tmp_path: Path) -> None:
    """An admin's script can ask the same question: flock -n on the pidfile fails while pypptpd runs."""
    path = tmp_path / "pptpd.pid"
    pidfile = PidFile(str(path))
    pidfile.acquire()
    try:
        with open(path) as f, pytest.raises(BlockingIOError):
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        pidfile.release()
