"""ip-up / ip-down: pppd's argv and environment, run for real by /bin/sh scripts, and the ordering."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import pwd
import signal
from pathlib import Path

import pytest

from pypptp.daemon import scripts
from pypptp.daemon.scripts import ScriptInfo, ScriptRunner, call_tty, run_script, script_argv, script_env

LOG = logging.getLogger("test.scripts")

INFO = ScriptInfo(
    ifname="ppp0",
    tty=call_tty("198.18.0.2", 4242),
    speed="115200",
    local="192.168.0.1",
    remote="192.168.0.234",
    ipparam="198.18.0.2",
    peer_name="alice",
    unit=0,
    pid=1234,
)
DOWN_INFO = ScriptInfo(
    ifname="ppp0",
    tty=call_tty("198.18.0.2", 4242),
    speed=115200,
    local="192.168.0.1",
    remote="192.168.0.234",
    ipparam="198.18.0.2",
    peer_name="alice",
    pid=1234,
    connect_time=75.9,
    bytes_sent=5_000_000_000,
    bytes_received=456,
)


def write_script(path: Path, body: str, mode: int = 0o755) -> str:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(mode)
    return str(path)


def environ_of(path: Path) -> dict[str, str]:
    entries = path.read_bytes().split(b"\0")
    return dict(entry.decode().split("=", 1) for entry in entries if entry)


def gone(pid: int) -> bool:
    """Whether no process ``pid`` exists (reaped) now."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


# -- argv and environment, as values ---------------------------------------------------------------


def test_argv_with_and_without_ipparam() -> None:
    assert script_argv("/etc/ppp/ip-up", INFO) == [
        "/etc/ppp/ip-up",
        "ppp0",
        "pptp/198.18.0.2/4242",
        "115200",
        "192.168.0.1",
        "192.168.0.234",
        "198.18.0.2",
    ]
    noipparam = ScriptInfo("ppp3", "pptp/198.18.0.9/7", 115200, "198.19.0.1", "198.19.0.2")
    assert script_argv("/x", noipparam) == ["/x", "ppp3", "pptp/198.18.0.9/7", "115200", "198.19.0.1", "198.19.0.2"]


def test_call_tty_has_no_white_space_and_ends_with_the_call_id() -> None:
    tty = call_tty("203.0.113.7", 65535)
    assert tty == "pptp/203.0.113.7/65535"
    assert os.path.basename(tty) == "65535"
    assert not any(c.isspace() for c in tty)


def test_up_environment_is_exactly_pppds() -> None:
    env = script_env(INFO, down=False)
    assert env == {
        "ORIG_UID": str(os.getuid()),
        "PPPLOGNAME": pwd.getpwuid(os.getuid()).pw_name,
        "PPPD_PID": "1234",
        "DEVICE": "pptp/198.18.0.2/4242",
        "IFNAME": "ppp0",
        "SPEED": "115200",
        "IPLOCAL": "192.168.0.1",
        "IPREMOTE": "192.168.0.234",
        "PEERNAME": "alice",
    }
    assert "PATH" not in env  # pppd clears the environment


def test_down_environment_adds_the_statistics() -> None:
    env = script_env(DOWN_INFO, down=True)
    assert env["CONNECT_TIME"] == "75"  # whole seconds, as pppd's %u of a tv_sec difference
    assert env["BYTES_SENT"] == "5000000000"
    assert env["BYTES_RCVD"] == "456"
    assert set(env) - set(script_env(DOWN_INFO, down=False)) == {"CONNECT_TIME", "BYTES_SENT", "BYTES_RCVD"}


def test_optional_variables() -> None:
    info = ScriptInfo(
        "ppp1",
        "pptp/198.18.0.2/5",
        "115200",
        "198.18.0.1",
        "198.18.0.2",
        dns=("8.8.8.8", "8.8.4.4"),
        wins=("198.18.0.53",),
        linkname="office",
        call_file="office",
    )
    env = script_env(info, down=False)
    assert env["DNS1"] == "8.8.8.8"
    assert env["DNS2"] == "8.8.4.4"
    assert env["USEPEERDNS"] == "1"
    assert env["WINS1"] == "198.18.0.53"
    assert "WINS2" not in env
    assert env["LINKNAME"] == "office"
    assert env["CALL_FILE"] == "office"
    assert "PEERNAME" not in env  # the peer did not authenticate
    assert "USEPEERDNS" not in script_env(INFO, down=False)


def test_pid_defaults_to_ours() -> None:
    assert ScriptInfo("ppp0", "t", 1, "a", "b").pid == os.getpid()


# -- running real scripts --------------------------------------------------------------------------


async def test_script_sees_pppds_argv_environment_and_surroundings(tmp_path: Path) -> None:
    out = tmp_path / "out"
    path = write_script(
        tmp_path / "ip-down",
        f"""cat /proc/$$/environ > {out}.env
for a in "$0" "$@"; do echo "$a"; done > {out}.argv
pwd > {out}.pwd
umask > {out}.umask
cat > {out}.stdin
ps -o sid= -p $$ > {out}.sid
""",
    )
    assert await run_script(path, DOWN_INFO, down=True, log=LOG) == 0
    assert (tmp_path / "out.argv").read_text().splitlines() == script_argv(path, DOWN_INFO)
    assert environ_of(tmp_path / "out.env") == script_env(DOWN_INFO, down=True)
    assert (tmp_path / "out.pwd").read_text().strip() == "/"
    assert (tmp_path / "out.umask").read_text().strip() == "0077"
    assert (tmp_path / "out.stdin").read_text() == ""
    sid = (tmp_path / "out.sid").read_text().strip()
    assert sid and int(sid) != os.getsid(0)  # a session of its own


async def test_missing_script_is_skipped_silently(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, LOG.name)
    assert await run_script(str(tmp_path / "nothing"), INFO, down=False, log=LOG) is None
    assert caplog.records == []


@pytest.mark.parametrize("kind", ["not-executable", "directory"])
async def test_unusable_script_is_logged_as_pppd_does(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, kind: str
) -> None:
    path = str(tmp_path) if kind == "directory" else write_script(tmp_path / "ip-up", "exit 0\n", mode=0o644)
    assert await run_script(path, INFO, down=False, log=LOG) is None
    assert [r.getMessage() for r in caplog.records] == [f"Can't execute {path}: Invalid argument"]


async def test_unrunnable_file(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "ip-up"
    path.write_bytes(b"\x7fELF garbage")
    path.chmod(0o755)
    assert await run_script(str(path), INFO, down=False, log=LOG) is None
    assert caplog.records[0].getMessage().startswith(f"Can't execute {path}: ")


async def test_failure_and_stderr_are_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, LOG.name)
    path = write_script(tmp_path / "ip-up", "echo 'ip: RTNETLINK answers: File exists' >&2\necho >&2\nexit 3\n")
    assert await run_script(path, INFO, down=False, log=LOG) == 3
    messages = [(r.levelno, r.getMessage()) for r in caplog.records if r.levelno >= logging.INFO]
    assert messages[0] == (logging.WARNING, f"{path}: ip: RTNETLINK answers: File exists")
    assert messages[1][0] == logging.WARNING
    assert messages[1][1].startswith(f"Script {path} finished (pid ") and messages[1][1].endswith("status = 0x3")
    assert len(messages) == 2  # the empty line is not logged


async def test_stderr_is_bounded(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, LOG.name)
    path = write_script(tmp_path / "ip-up", "i=0; while [ $i -lt 2000 ]; do echo line $i >&2; i=$((i+1)); done\n")
    assert await run_script(path, INFO, down=False, log=LOG) == 0
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith(path)]
    assert len(lines) == scripts.MAX_STDERR_LINES + 1
    assert lines[-1].startswith(f"{path}: (more output not shown")


async def test_signal_death(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = write_script(tmp_path / "ip-up", "kill -TERM $$\nsleep 5\n")
    status = await run_script(path, INFO, down=False, log=LOG)
    assert status == -signal.SIGTERM
    assert any(" terminated with signal 15" in r.getMessage() for r in caplog.records)


async def test_time_out_kills_the_script(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Stopped by SIGTERM at the time-out: had the time-out not worked, the script would have finished
    its 30 s and written its marker, with status 0."""
    path = write_script(tmp_path / "ip-up", f"echo $$ > {tmp_path}/pid\nsleep 30\necho finished > {tmp_path}/end\n")
    try:
        assert await run_script(path, INFO, down=False, timeout=0.5, log=LOG) is None
        assert gone(int((tmp_path / "pid").read_text()))  # reaped before run_script returned
        assert not (tmp_path / "end").exists()
        assert any("still running after 0.5 s: killing it" in r.getMessage() for r in caplog.records)
    finally:  # its sleep, left behind in the script's session
        with contextlib.suppress(ProcessLookupError):
            os.killpg(int((tmp_path / "pid").read_text()), signal.SIGKILL)


async def test_a_script_that_ignores_sigterm_gets_sigkill(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGTERM is ignored (and so by its sleep): only SIGKILL, KILL_GRACE later, stops it before its marker."""
    monkeypatch.setattr(scripts, "KILL_GRACE", 0.3)
    body = f"trap '' TERM\necho $$ > {tmp_path}/pid\nsleep 30\necho finished > {tmp_path}/end\n"
    path = write_script(tmp_path / "ip-up", body)
    try:
        assert await run_script(path, INFO, down=False, timeout=0.3, log=LOG) is None
        assert gone(int((tmp_path / "pid").read_text()))
        assert not (tmp_path / "end").exists()
    finally:  # its sleep, left behind in the script's session
        with contextlib.suppress(ProcessLookupError):
            os.killpg(int((tmp_path / "pid").read_text()), signal.SIGKILL)


async def test_a_background_child_holding_stderr_does_not_block(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, LOG.name)
    pid_file = tmp_path / "daemon.pid"
    path = write_script(tmp_path / "ip-up", f"sleep 30 &\necho $! > {pid_file}\necho started >&2\nexit 0\n")
    try:
        assert await run_script(path, INFO, down=False, log=LOG) == 0
        assert not gone(int(pid_file.read_text()))  # returned while the child still holds the pipe
        assert [r.getMessage() for r in caplog.records] == [f"{path}: started"]
    finally:
        with contextlib.suppress(Exception):
            os.kill(int(pid_file.read_text()), signal.SIGTERM)


async def test_cancelling_stops_the_script(tmp_path: Path) -> None:
    path = write_script(tmp_path / "ip-up", f"echo $$ > {tmp_path}/pid\nexec sleep 30\n")
    task = asyncio.ensure_future(run_script(path, INFO, down=False, log=LOG))
    for _ in range(100):
        if (tmp_path / "pid").exists() and (tmp_path / "pid").read_text():
            break
        await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    pid = int((tmp_path / "pid").read_text())
    for _ in range(100):
        await asyncio.sleep(0.02)  # let the child watcher reap it
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
    else:
        pytest.fail("the script survived cancellation")


# -- ScriptRunner: pppd's ordering -----------------------------------------------------------------


def marker_scripts(tmp_path: Path, *, gated: bool = False) -> tuple[Path, str, str]:
    """ip-up and ip-down that write their steps to ``order``; a ``gated`` ip-up waits between its two
    steps until the test calls :func:`release` (no sleeps: the test decides when it ends)."""
    log = tmp_path / "order"
    wait = ""
    if gated:
        os.mkfifo(tmp_path / "gate")
        wait = f"read line < {tmp_path / 'gate'}\n"
    up = write_script(tmp_path / "ip-up", f"echo up-start >> {log}\n{wait}echo up-end >> {log}\n")
    down = write_script(tmp_path / "ip-down", f'echo "down $CONNECT_TIME" >> {log}\n')
    return log, up, down


def order(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


async def started(log: Path) -> None:
    """Until the gated ip-up has written its first step (bounded)."""
    for _ in range(1000):
        if order(log):
            return
        await asyncio.sleep(0.01)
    raise AssertionError("ip-up never started")


async def release(tmp_path: Path) -> None:
    """Let the gated ip-up finish (its ``read`` returns), once it has opened the gate (bounded)."""
    for _ in range(1000):
        try:
            gate = os.open(tmp_path / "gate", os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:  # ENXIO: nobody has it open for reading yet
            if exc.errno != errno.ENXIO:
                raise
            await asyncio.sleep(0.01)
            continue
        os.write(gate, b"go\n")
        os.close(gate)
        return
    raise AssertionError("ip-up never opened its gate")


async def test_ip_down_waits_for_a_running_ip_up(tmp_path: Path) -> None:
    log, up, down = marker_scripts(tmp_path, gated=True)
    runner = ScriptRunner(up, down, log=LOG)
    runner.up(INFO)
    await started(log)
    assert runner.busy
    runner.down(DOWN_INFO)
    for _ in range(10):
        await asyncio.sleep(0)
    assert order(log) == ["up-start"] and runner.busy  # ip-down has not started beside it
    await release(tmp_path)
    await runner.wait()
    assert order(log) == ["up-start", "up-end", "down 75"]
    assert list(runner.history) == [("up", 0), ("down", 0)]
    assert not runner.busy


async def test_down_without_up_runs_nothing(tmp_path: Path) -> None:
    log, up, down = marker_scripts(tmp_path)
    runner = ScriptRunner(up, down, log=LOG)
    runner.down(DOWN_INFO)
    await runner.wait()
    assert order(log) == []
    assert not runner.history


async def test_repeated_calls_run_each_script_once(tmp_path: Path) -> None:
    log, up, down = marker_scripts(tmp_path)
    runner = ScriptRunner(up, down, log=LOG)
    runner.up(INFO)
    runner.up(INFO)
    await runner.wait()
    runner.up(INFO)
    runner.down(DOWN_INFO)
    runner.down(DOWN_INFO)
    await runner.wait()
    assert order(log) == ["up-start", "up-end", "down 75"]


async def test_up_again_after_down(tmp_path: Path) -> None:
    log, up, down = marker_scripts(tmp_path)
    runner = ScriptRunner(up, down, log=LOG)
    for _ in range(2):
        runner.up(INFO)
        await runner.wait()
        runner.down(DOWN_INFO)
        await runner.wait()
    assert order(log) == ["up-start", "up-end", "down 75"] * 2


async def test_down_and_up_again_while_ip_up_runs_changes_nothing(tmp_path: Path) -> None:
    """As pppd: when the script ends, the wanted state is up again, and ip-up already ran."""
    log, up, down = marker_scripts(tmp_path, gated=True)
    runner = ScriptRunner(up, down, log=LOG)
    runner.up(INFO)
    await started(log)
    runner.down(DOWN_INFO)
    runner.up(INFO)
    await release(tmp_path)
    await runner.wait()
    assert order(log) == ["up-start", "up-end"]


async def test_cancelled_wait_leaves_the_script_running(tmp_path: Path) -> None:
    log, up, down = marker_scripts(tmp_path, gated=True)
    runner = ScriptRunner(up, down, log=LOG)
    runner.up(INFO)
    await started(log)
    waiting = asyncio.ensure_future(runner.wait())
    await asyncio.sleep(0)
    waiting.cancel()  # the gated script cannot have ended: the wait is cancelled, not the script
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert runner.busy
    await release(tmp_path)
    await runner.wait()
    assert order(log) == ["up-start", "up-end"]


async def test_missing_scripts_are_fine(tmp_path: Path) -> None:
    runner = ScriptRunner(str(tmp_path / "no-up"), str(tmp_path / "no-down"), log=LOG)
    runner.up(INFO)
    runner.down(DOWN_INFO)
    await runner.wait()
    assert list(runner.history) == [("up", None), ("down", None)]


# -- names from the wire, and an ip-up that cannot be started (issue 15 section 3) ----------------------


async def test_a_nul_in_any_value_never_stops_the_script(tmp_path: Path) -> None:
    """``ValueError: embedded null byte`` made the script never run while the tunnel came up."""
    out = tmp_path / "out"
    path = write_script(tmp_path / "ip-up", f'printf %s "$PEERNAME" > {out}.name\nprintf %s "$6" > {out}.ipparam\n')
    info = ScriptInfo(
        ifname="ppp0", tty="t", speed=1, local="192.168.0.1", remote="192.168.0.2", ipparam="a\0b", peer_name="x\0y"
    )
    assert await run_script(path, info, down=False, log=LOG) == 0
    assert (tmp_path / "out.name").read_text() == "x\\x00y"
    assert (tmp_path / "out.ipparam").read_text() == "a\\x00b"
    assert "\0" not in "".join(script_argv(path, info)) + "".join(script_env(info, down=True).values())


@pytest.mark.parametrize("kind", ["not-executable", "no-interpreter", "directory"])
async def test_an_ip_up_that_cannot_be_started_is_reported_to_the_runners_owner(tmp_path: Path, kind: str) -> None:
    if kind == "directory":
        up = str(tmp_path)
    elif kind == "not-executable":
        up = write_script(tmp_path / "ip-up", "exit 0\n", mode=0o644)
    else:
        up = str(tmp_path / "ip-up")
        Path(up).write_text("#!/nonexistent/interpreter\n")
        Path(up).chmod(0o755)
    failures: list[tuple[str, str]] = []
    runner = ScriptRunner(up, str(tmp_path / "no-ip-down"), log=LOG)
    runner.on_not_started = lambda which, reason: failures.append((which, reason))
    runner.up(INFO)
    await runner.wait()
    assert [which for which, _ in failures] == ["up"] and failures[0][1]


async def test_a_missing_or_failing_ip_up_is_no_failure_to_start(tmp_path: Path) -> None:
    failures: list[tuple[str, str]] = []
    for up in (str(tmp_path / "absent"), write_script(tmp_path / "ip-up", "exit 1\n")):
        runner = ScriptRunner(up, str(tmp_path / "no-ip-down"), log=LOG)
        runner.on_not_started = lambda which, reason: failures.append((which, reason))
        runner.up(INFO)
        await runner.wait()
    assert failures == []
