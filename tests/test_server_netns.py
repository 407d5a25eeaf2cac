"""The real ``pypptpd`` process against the library client, over real sockets,
in two network namespaces created by the test (198.18.0.1 <-> 198.18.0.2)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from pypptp.aio.client import ControlClient, run_sequence
from pypptp.ctrl.constants import DisconnectResult, StartResult
from pypptp.ctrl.events import CallCleared, ControlConnectionClosed
from pypptp.ctrl.messages import (
    ControlMessage,
    StartControlConnectionReply,
    StartControlConnectionRequest,
    decode_message,
)
from pypptp.host.netns import NetnsPair
from tests.conftest import REPO, Pypptpd, private_var_log

pytestmark = pytest.mark.netns

StartDaemon = Callable[..., Pypptpd]


async def _client(daemon: Pypptpd, timeout: float = 5.0) -> ControlClient:
    return await ControlClient.connect(sock=daemon.client_socket(), timeout=timeout)


async def _read_eof(sock: socket.socket, timeout: float) -> float:
    """Seconds until the server closes ``sock`` (EOF or reset)."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    async with asyncio.timeout(timeout):
        while True:
            try:
                data = await loop.sock_recv(sock, 4096)
            except ConnectionResetError:
                return loop.time() - start
            if not data:
                return loop.time() - start


async def test_library_client_runs_the_whole_exchange(start_pypptpd: StartDaemon) -> None:
    daemon = start_pypptpd(args=["-d"])
    lines: list[str] = []
    await run_sequence(daemon.pair.server_ip, sock=daemon.client_socket(), out=lines.append)
    text = "\n".join(lines)
    for step in (
        "SCCRQ -> SCCRP SUCCESS",
        "OCRQ -> OCRP CONNECTED",
        "Echo-Request -> Echo-Reply",
        "CCRQ -> CDN REQUEST",
    ):
        assert step in text
    assert "StopCCRQ -> StopCCRP" in text
    log = daemon.wait_log("control connection finished")
    assert "SCCRQ accepted" in log and "call established" in log and "cleared (CCRQ received)" in log
    assert daemon.terminate() == 0
    assert "MGR: Exit." in daemon.log()


async def test_200_idle_connections_do_not_delay_a_real_client(start_pypptpd: StartDaemon) -> None:
    daemon = start_pypptpd(["connections 300", "localip 192.168.0.1", "remoteip 192.168.1.1-255,192.168.2.1-60"])
    idle: list[socket.socket] = []
    try:
        for n in range(200):
            sock = daemon.client_socket()
            if n % 2:  # half send a partial header and stall
                sock.send(b"\x00\x9c\x00\x01")
            idle.append(sock)
        started = time.monotonic()
        client = await _client(daemon)
        reply = await client.start()
        call = await client.open_call()
        elapsed = time.monotonic() - started
        assert reply.result_code is StartResult.SUCCESS
        assert call.peer_call_id
        print(f"SCCRQ/OCRQ behind 200 idle connections: {elapsed * 1000:.1f} ms")
        assert elapsed < 1.0, f"SCCRQ/OCRQ took {elapsed:.3f} s behind 200 idle connections"
        # one address holds at most max_pending_per_source (64) connections still negotiating: the
        # oldest idle ones were dropped to make room, the newest 63 are still open beside the client
        still_open = 0
        for sock in idle:
            try:
                sock.recv(1)
            except BlockingIOError:
                still_open += 1
            except OSError:
                pass
        assert still_open == 63
        assert idle[-1].fileno() >= 0
        await client.stop()
    finally:
        for sock in idle:
            sock.close()


async def test_first_message_deadline_closes_only_the_silent_connection(start_pypptpd: StartDaemon) -> None:
    daemon = start_pypptpd(["stimeout 1"])
    silent = daemon.client_socket()
    connected_at = time.monotonic()
    client = await _client(daemon)
    await client.start()
    await client.open_call()  # (an established connection must place its call within stimeout too)
    try:
        await _read_eof(silent, timeout=5.0)
        waited = time.monotonic() - connected_at  # from the silent connection's own start
        assert 0.9 <= waited <= 3.0, waited
        assert "no SCCRQ within 1 s" in daemon.wait_log("no SCCRQ within 1 s")
        assert await client.echo() >= 0  # the established connection is untouched
    finally:
        silent.close()
        await client.stop()


async def test_idle_connections_do_not_count_against_connections(start_pypptpd: StartDaemon) -> None:
    """pptpd counts every accepted connection against ``connections``, so three idle sockets locked a
    three-connection server; here only authenticated sessions count (see test_daemon_netns)."""
    daemon = start_pypptpd(["connections 3"])
    held = [daemon.client_socket() for _ in range(5)]
    try:
        await asyncio.sleep(0.2)
        client = await _client(daemon)
        assert (await client.start()).result_code is StartResult.SUCCESS
        assert (await client.open_call()).peer_call_id
        await client.stop()
        assert "connection limit" not in daemon.log()
    finally:
        for sock in held:
            sock.close()


async def test_hostile_peer_does_not_disturb_another_session(start_pypptpd: StartDaemon) -> None:
    daemon = start_pypptpd(args=["--log-budget", "0"])  # every connection's lines, to count them
    good = await _client(daemon)
    await good.start()
    call = await good.open_call()
    loop = asyncio.get_running_loop()
    hostile_inputs = [
        b"\x00\x9c\x00\x01\xde\xad\xbe\xef" + bytes(148),  # bad magic
        b"\x00\x05",  # Length below the minimum
        b"\xff\xff\x00\x01\x1a\x2b\x3c\x4d",  # Length above the maximum
        b"\x00\x10\x00\x02\x1a\x2b\x3c\x4d\x00\x05\x00\x00" + bytes(4),  # management message
        b"\x00\x10\x00\x01\x1a\x2b\x3c\x4d\x00\x63\x00\x00" + bytes(4),  # control type 99
        b"\x00\x9c\x00\x01\x1a\x2b\x3c\x4d\x00\x07\x00\x00",  # OCRQ header with SCCRQ's length
    ]
    for payload in hostile_inputs:
        sock = daemon.client_socket()
        await loop.sock_sendall(sock, payload)
        assert await _read_eof(sock, timeout=3.0) < 2.0, payload.hex()
        sock.close()
    assert daemon.log().count("malformed control message") == len(hostile_inputs)
    assert await good.echo() >= 0
    cleared = await good.clear_call(call)
    assert cleared.result_code is DisconnectResult.REQUEST
    await good.stop()


async def test_unsupported_version_gets_result_5_and_close(start_pypptpd: StartDaemon) -> None:
    daemon = start_pypptpd()
    sock = daemon.client_socket()
    loop = asyncio.get_running_loop()
    await loop.sock_sendall(sock, StartControlConnectionRequest(protocol_version=0x0200).encode())
    data = b""
    async with asyncio.timeout(3):
        while len(data) < StartControlConnectionReply.SIZE:
            chunk = await loop.sock_recv(sock, 4096)
            assert chunk, "closed before the SCCRP"
            data += chunk
    reply: ControlMessage = decode_message(data[: StartControlConnectionReply.SIZE])
    assert isinstance(reply, StartControlConnectionReply)
    assert reply.result_code is StartResult.BAD_PROTOCOL_VERSION
    assert await _read_eof(sock, timeout=3.0) < 2.0
    sock.close()


async def test_sigterm_sends_cdn_and_stopccrq_then_exits(start_pypptpd: StartDaemon) -> None:
    daemon = start_pypptpd()
    client = await _client(daemon)
    await client.start()
    call = await client.open_call()
    daemon.process.terminate()
    reason = await client.wait_closed()
    assert reason == "peer sent StopCCRQ (STOP_LOCAL_SHUTDOWN)"
    cleared = [e for e in client.events if isinstance(e, CallCleared)]
    assert [(e.call.call_id, e.result_code, e.by_peer) for e in cleared] == [
        (call.call_id, DisconnectResult.ADMIN_SHUTDOWN, True)
    ]
    assert isinstance(client.events[-1], ControlConnectionClosed)
    assert daemon.process.wait(10) == 0
    assert "MGR: Exit." in daemon.log()


async def test_without_f_the_daemon_detaches_writes_its_pidfile_and_serves(
    netns_pair: NetnsPair, tmp_path: Path
) -> None:
    conf = tmp_path / "pptpd.conf"
    conf.write_text(f"listen {netns_pair.server_ip}\n")
    pidfile = tmp_path / "pptpd.pid"
    (tmp_path / "chap-secrets").write_text("alice pptpd s3cret *\n")
    argv = [sys.executable, "-m", "pypptp.daemon.cli", "-c", str(conf), "-p", str(pidfile)]
    argv += ["--control-socket", str(pidfile) + ".sock"]
    argv += ["--secrets", str(tmp_path / "chap-secrets"), "--system-options", str(tmp_path / "no-options")]
    (tmp_path / "var-log").mkdir()  # no syslog here: the fall-back log goes to the test's directory
    launcher = subprocess.run(
        private_var_log(netns_pair.exec_argv(netns_pair.server_ns, argv), tmp_path / "var-log"),
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=10,
    )
    assert launcher.returncode == 0  # the foreground parent exits at once
    deadline = time.monotonic() + 10
    while not pidfile.exists() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    pid = int(pidfile.read_text())
    try:
        for _ in range(100):
            try:
                sock = netns_pair.connect(netns_pair.client_ns, (netns_pair.server_ip, 1723), timeout=1)
                break
            except ConnectionRefusedError:
                await asyncio.sleep(0.05)
        else:
            pytest.fail("the detached daemon never started listening")
        client = await ControlClient.connect(sock=sock, timeout=5)
        assert (await client.start()).result_code is StartResult.SUCCESS
        await client.stop()
    finally:
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while pidfile.exists() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert not pidfile.exists(), "the daemon did not remove its pidfile on SIGTERM"
