"""``pypptpctl`` against a real daemon in namespaces, with library client sessions held.

The daemon runs as ``pypptpd -f`` in the server namespace (its control socket in the test's directory);
``pypptpctl`` runs as a program, as an admin would run it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pypptp.aio.client import PptpClientError
from pypptp.client.tunnel import PptpClientSession
from pypptp.daemon.control import request
from tests.conftest import REPO, Pypptpd, tunnel_ping
from tests.test_daemon_netns import SECRETS, SEED_CONF, SEED_OPTIONS, SERVER_IP, open_client, write_recorders

pytestmark = pytest.mark.netns


def ctl(daemon: Pypptpd, *words: str) -> subprocess.CompletedProcess[str]:
    """``pypptpctl -S <the daemon's socket> words...``."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    argv = [sys.executable, "-m", "pypptp.daemon.ctl", "-S", str(daemon.control_socket), *words]
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, env=env, check=False)


def as_nobody(path: str) -> str:
    """What a client running as ``nobody`` gets from the control socket (a forked child, setuid: the venv's
    interpreter may be out of nobody's reach)."""
    entry = pwd.getpwnam("nobody")
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.setgid(entry.pw_gid)
            os.setuid(entry.pw_uid)
            try:
                text = json.dumps(request(path, ["show", "stat"]))
            except OSError as exc:
                text = f"OSError: {exc.strerror}"
            os.write(write_end, text.encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        out = pipe.read().decode()
    os.waitpid(pid, 0)
    return out


def ctl_json(daemon: Pypptpd, *words: str) -> Any:
    done = ctl(daemon, *words, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


async def ended(session: PptpClientSession) -> str:
    reason = await asyncio.wait_for(session.wait_closed(), 10)
    await session.close()
    return reason


def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "not within the time"
        time.sleep(0.05)


async def test_show_sessions_terminate_reload_and_stat(start_pypptpd: Callable[..., Pypptpd]) -> None:
    daemon = start_pypptpd(SEED_CONF, secrets=SECRETS, options=SEED_OPTIONS)
    recorded = write_recorders(daemon)
    alice = await open_client(daemon, "alice", "s3cret", tun=False)
    bob = await open_client(daemon, "bob", "bob pw", tun=False)
    assert await tunnel_ping(alice, SERVER_IP)

    rows = {row["user"]: row for row in ctl_json(daemon, "show", "sessions")}
    assert sorted(rows) == ["alice", "bob"]
    assert alice.network is not None and bob.network is not None
    for row, session in ((rows["alice"], alice), (rows["bob"], bob)):
        assert session.network is not None
        assert row["peer"] == daemon.pair.client_ip
        assert row["remote"] == str(session.network.local_address)  # the client's address is the daemon's remote
        assert row["local"] == SERVER_IP
        assert row["state"] == "active"
        assert row["ifname"].startswith("ppp")
        assert row["mppe"] == "MPPE 128-bit stateless"
        assert row["call_id"] > 0 and row["peer_call_id"] > 0
    assert rows["bob"]["remote"] == "192.168.0.245"  # pinned by chap-secrets
    assert rows["alice"]["rx_packets"] >= 1 and rows["alice"]["rx_bytes"] >= 28  # the ping came through
    assert rows["alice"]["tx_packets"] >= 1

    table = ctl(daemon, "show", "sessions")
    assert table.returncode == 0
    header, rule, *lines = table.stdout.splitlines()
    assert "ifname" in header and "username" in header and "rx-bytes" in header and "-+-" in rule
    assert len(lines) == 2 and any("alice" in line and rows["alice"]["ifname"] in line for line in lines)
    assert len({line.index("|") for line in [header, *lines]}) == 1  # aligned

    # terminate by user name: LCP Terminate, ip-down, CDN, StopCCRQ; the reason in the log
    done = ctl(daemon, "terminate", "username", "bob")
    assert done.returncode == 0, done.stderr
    assert "bob" in done.stdout
    assert await ended(bob) == "LCP terminated by peer"
    daemon.wait_log("session ended: terminated by admin (pypptpctl)")
    wait_for(lambda: Path(f"{recorded}.ip-down.argv").exists())
    assert "192.168.0.245" in Path(f"{recorded}.ip-down.argv").read_text()
    assert [row["user"] for row in ctl_json(daemon, "show", "sessions")] == ["alice"]

    # bob's pinned address is free again; terminate by interface and by address
    bob = await open_client(daemon, "bob", "bob pw", tun=False)
    assert bob.network is not None and str(bob.network.local_address) == "192.168.0.245"
    done = ctl(daemon, "terminate", "if", rows["alice"]["ifname"])
    assert done.returncode == 0, done.stderr
    assert await ended(alice) == "LCP terminated by peer"
    done = ctl(daemon, "terminate", "ip", "192.168.0.245")
    assert done.returncode == 0, done.stderr
    await ended(bob)
    wait_for(lambda: ctl_json(daemon, "show", "sessions") == [])

    # nothing matched: 1; a usage error: 2
    assert ctl(daemon, "terminate", "username", "nobody").returncode == 1
    assert ctl(daemon, "terminate", "ip", "not-an-address").returncode == 2
    assert ctl(daemon, "terminate", "if").returncode == 2

    # all
    sessions = [await open_client(daemon, tun=False) for _ in range(2)]
    done = ctl(daemon, "terminate", "all")
    assert done.returncode == 0 and done.stdout.count("terminating") == 2
    for session in sessions:
        await ended(session)

    # a wrong password is counted, by reason and method
    with pytest.raises(PptpClientError):
        await open_client(daemon, "alice", "wrong", tun=False)
    with pytest.raises(PptpClientError):
        await open_client(daemon, "mallory", "x", tun=False)
    daemon.wait_log("failed for 'mallory'")
    stat = ctl_json(daemon, "show", "stat")
    assert stat["auth_failures"].get("bad_secret/MS-CHAP-V2", 0) >= 1
    assert stat["auth_failures"].get("unknown_user/MS-CHAP-V2", 0) >= 1
    assert stat["sessions"] == 0 and stat["sessions_started"] == 5 and stat["sessions_peak"] == 2
    assert stat["sessions_ended"]["admin"] == 5
    assert stat["rx_packets"] >= 1 and stat["rx_bytes"] >= 28
    assert set(stat["gre"]) >= {"lost", "reordered", "duplicate", "unknown_call"}
    text = ctl(daemon, "show", "stat")
    assert text.returncode == 0 and "bad_secret/MS-CHAP-V2: " in text.stdout and "peak: 2" in text.stdout

    # reload: SIGHUP's work, its outcome printed
    done = ctl(daemon, "reload")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("reload: secrets and pppd options re-read")
    daemon.wait_log("MGR: pypptpctl reload: secrets and pppd options re-read")
    daemon.options.write_text("bogus-option-xyz\n")
    done = ctl(daemon, "reload")
    assert done.returncode == 0 and "keeping the running configuration" in done.stdout


async def test_root_only_and_hostile_clients(start_pypptpd: Callable[..., Pypptpd]) -> None:
    public = Path(tempfile.mkdtemp(prefix="pypptp-ctl-"))  # a directory nobody may enter: only the file mode stops it
    public.chmod(0o755)
    try:
        await _root_only_and_hostile_clients(start_pypptpd, public / "pypptpd.sock")
    finally:
        shutil.rmtree(public, ignore_errors=True)


async def _root_only_and_hostile_clients(start_pypptpd: Callable[..., Pypptpd], control: Path) -> None:
    daemon = start_pypptpd(SEED_CONF, ["--control-socket", str(control)], secrets=SECRETS, options=SEED_OPTIONS)
    daemon.control_socket = control
    path = str(control)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert as_nobody(path) == "OSError: Permission denied"
    os.chmod(path, 0o666)  # past the file mode, the daemon checks the client's uid itself (SO_PEERCRED)
    assert "permission denied: root only" in as_nobody(path)
    os.chmod(path, 0o600)

    def talk(data: bytes) -> dict[str, Any]:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(10)
            sock.connect(path)
            with contextlib.suppress(OSError):
                sock.sendall(data)
            answer = json.loads(sock.makefile("rb").readline())
            assert isinstance(answer, dict)
            return answer

    for garbage in (b"\x00\xff garbage\n", b"[1,2]\n", b'{"command": "show"}\n', b'{"command": [1]}\n'):
        answer = talk(garbage)
        assert answer["ok"] is False and answer["error"]
    answer = talk(b'{"command": ["frobnicate"]}\n')
    assert "unknown command" in answer["error"]
    assert talk(b"x" * 1_000_000)["ok"] is False  # a huge line: an error, bounded reading
    idle = []
    for _ in range(40):  # many clients, saying nothing: some told busy, none crash the daemon
        sock = socket.socket(socket.AF_UNIX)
        sock.connect(path)
        idle.append(sock)
    busy = ctl(daemon, "show", "stat")
    assert busy.returncode == 1 and "busy" in busy.stderr
    for sock in idle:
        sock.close()
    wait_for(lambda: ctl(daemon, "show", "stat").returncode == 0)
    session = await open_client(daemon, tun=False)
    assert len(ctl_json(daemon, "show", "sessions")) == 1
    await session.close()
    assert daemon.process.poll() is None


def test_a_stale_socket_is_replaced_and_a_live_one_refuses(start_pypptpd: Callable[..., Pypptpd]) -> None:
    first = start_pypptpd(SEED_CONF)
    # another daemon (its own pidfile) on the same control socket: refused, the first one's socket intact
    workdir = first.workdir.parent / "second"
    workdir.mkdir()
    other = Pypptpd(
        first.pair,
        workdir,
        ["listen 127.0.0.1", "localip 192.168.9.1", "remoteip 192.168.9.2-5"],
        ["--control-socket", str(first.control_socket)],
    )
    assert other.process.wait(15) == 1
    assert "another daemon listens on it" in other.log()
    assert ctl(first, "show", "stat").returncode == 0
    # killed, its socket file stays behind; the next daemon replaces it
    first.process.send_signal(signal.SIGKILL)
    first.process.wait(10)
    assert os.path.exists(first.control_socket)
    third_dir = first.workdir.parent / "third"
    third_dir.mkdir()
    third = Pypptpd(
        first.pair, third_dir, [f"listen {first.pair.server_ip}"], ["--control-socket", str(first.control_socket)]
    )
    try:
        third.wait_listening()
        done = subprocess.run(
            [sys.executable, "-m", "pypptp.daemon.ctl", "-S", str(first.control_socket), "show", "stat"],
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
        assert done.returncode == 0, done.stderr
        assert third.terminate() == 0
        assert not os.path.exists(first.control_socket)  # removed at exit
    finally:
        third.terminate()


def test_cannot_reach_is_said_clearly(tmp_path: Path) -> None:
    argv = [sys.executable, "-m", "pypptp.daemon.ctl", "-S", str(tmp_path / "none.sock"), "show", "stat"]
    done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=30)
    assert done.returncode == 1 and "cannot reach pypptpd at" in done.stderr
    done = subprocess.run([*argv[:-2], "frob"], capture_output=True, text=True, check=False, timeout=30)
    assert done.returncode == 2


async def test_with_workers_one_socket_answers_for_all(start_pypptpd: Callable[..., Pypptpd]) -> None:
    conf = ["localip 192.168.0.1", "remoteip 192.168.1.10-40", "connections 30"]  # room in both halves
    secrets = 'alice pptpd s3cret *\nbob pptpd "bob pw" *\n'
    daemon = start_pypptpd(conf, ["--workers", "2"], secrets=secrets, options=SEED_OPTIONS)
    sessions = [await open_client(daemon, tun=False) for _ in range(4)]
    bob = await open_client(daemon, "bob", "bob pw", tun=False)
    rows = ctl_json(daemon, "show", "sessions")
    assert len(rows) == 5 and {row["worker"] for row in rows} <= {0, 1}
    assert len({row["remote"] for row in rows}) == 5  # the pool is shared out, never handed out twice
    table = ctl(daemon, "show", "sessions").stdout
    assert "worker" in table.splitlines()[0]
    stat = ctl_json(daemon, "show", "stat")
    assert stat["workers"] == 2 and stat["sessions"] == 5 and stat["sessions_started"] == 5
    [bob_row] = [row for row in rows if row["user"] == "bob"]
    done = ctl(daemon, "terminate", "username", "bob")  # whichever worker holds it
    assert done.returncode == 0, done.stderr
    await ended(bob)
    daemon.wait_log("session ended: terminated by admin (pypptpctl)")
    done = ctl(daemon, "terminate", "if", "ppp99")
    assert done.returncode == 1
    done = ctl(daemon, "reload")
    assert done.returncode == 0 and done.stdout.count("reload: secrets and pppd options re-read") == 2
    done = ctl(daemon, "terminate", "all")
    assert done.returncode == 0 and done.stdout.count("terminating") == 4
    for session in sessions:
        await ended(session)
    wait_for(lambda: ctl_json(daemon, "show", "sessions") == [])
    assert ctl_json(daemon, "show", "stat")["sessions_ended"]["admin"] == 5
    assert bob_row["worker"] in (0, 1)
    assert daemon.terminate() == 0
    assert not daemon.control_socket.exists()
    assert not list(daemon.workdir.glob("pypptpd.sock*"))  # the workers' sockets too
