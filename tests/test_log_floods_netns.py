"""Log floods (issue 15 section 2): no input from one peer makes more than a few dozen log lines.

Each flood runs against the real ``pypptpd -f`` (its log is its stderr); the lines the flood caused
are counted, the control connection must be closed where a bound applies, and another client must
still get a working session afterwards.  Every flood is bounded in count and time; traffic stays
between the two test namespaces (and inside tunnels).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path

import pytest

from pypptp.aio.client import ControlClient
from pypptp.aio.gre import GreCall, GreTransport
from pypptp.aio.session import PppSession
from pypptp.client.tunnel import client_link_config
from pypptp.ctrl.messages import EchoRequest, OutgoingCallRequest, SetLinkInfo, StartControlConnectionRequest
from pypptp.host.netns import NetnsPair
from pypptp.ppp.chap import ChapCode
from pypptp.ppp.frame import Protocol, encode_frame, parse_frame
from pypptp.ppp.link import PppLink
from pypptp.ppp.packet import Code, ControlPacket, decode_packet
from tests.conftest import REPO, Pypptpd, tunnel_ping
from tests.test_daemon_netns import SECRETS, SEED_CONF, SEED_OPTIONS, SERVER_IP, open_client

pytestmark = pytest.mark.netns

LINE_BAR = 36
"""A few dozen: the most log lines one flood may cause (each test reports what it measured)."""


def log_lines(daemon: Pypptpd) -> list[str]:
    return daemon.log().splitlines()


async def wait_lines(daemon: Pypptpd, text: str, timeout: float = 10.0) -> list[str]:
    """The daemon's log lines once one contains ``text`` (the event loop keeps running meanwhile)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        lines = log_lines(daemon)
        if any(text in line for line in lines):
            return lines
        await asyncio.sleep(0.05)
    raise AssertionError(f"{text!r} not logged within {timeout} s:\n{daemon.log()[-4000:]}")


async def another_client_works(daemon: Pypptpd) -> None:
    session = await open_client(daemon, tun=False)
    try:
        assert await tunnel_ping(session, SERVER_IP)
    finally:
        await session.close()


async def read_until_closed(sock: socket.socket, timeout: float) -> bytes:
    """Everything the daemon sends until it closes ``sock`` (EOF or reset)."""
    loop = asyncio.get_running_loop()
    received = bytearray()
    async with asyncio.timeout(timeout):
        while True:
            try:
                data = await loop.sock_recv(sock, 65536)
            except ConnectionResetError:
                return bytes(received)
            if not data:
                return bytes(received)
            received += data


async def test_a_flood_of_slis_for_an_unknown_call_id(start_pypptpd: Callable[..., Pypptpd]) -> None:
    """20,000 Set-Link-Info messages for a Call ID that is not ours, after an SCCRQ: 480 KB in.  Before,
    20,000 WARNING lines (1.9 MB) and the connection stayed open; now the first is logged, the connection
    is stopped at the anomaly bound (64 a minute), and one summary line counts the rest."""
    daemon = start_pypptpd(SEED_CONF, secrets=SECRETS, options=SEED_OPTIONS)
    before = len(log_lines(daemon))
    sock = daemon.client_socket()
    address, port = sock.getsockname()[:2]
    peer = f"{address}:{port}"
    loop = asyncio.get_running_loop()
    flood = StartControlConnectionRequest().encode() + SetLinkInfo(peer_call_id=4242).encode() * 20_000
    reader = asyncio.ensure_future(read_until_closed(sock, 5.0))
    with contextlib.suppress(OSError, TimeoutError):  # the daemon hangs up in the middle
        await asyncio.wait_for(loop.sock_sendall(sock, flood), 5.0)
    try:
        await reader
        closed_by_daemon = True
    except TimeoutError:
        closed_by_daemon = False
    sock.close()
    lines = (await wait_lines(daemon, f"Client {peer} control connection finished"))[before:]
    mine = [line for line in lines if peer in line]
    print(f"\nSLI flood: {len(lines)} log line(s), {len(mine)} naming the peer, closed: {closed_by_daemon}")
    assert closed_by_daemon
    assert len(lines) <= LINE_BAR, "\n".join(lines)
    assert sum("SLI for unknown Call ID 4242" in line for line in mine) == 1
    assert any("protocol anomalies within 60 s" in line for line in mine)
    assert any("SLI for an unknown Call ID: " in line for line in mine)  # the summary, with its count
    await another_client_works(daemon)


# -- a stalled log ------------------------------------------------------------------------------------


def read_all(fd: int, timeout: float) -> bytes:
    """Everything from ``fd`` until EOF, at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    output = bytearray()
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            break
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            break
        output += chunk
    return bytes(output)


async def test_a_stalled_log_reader_never_stalls_the_daemon(netns_pair: NetnsPair, tmp_path: Path) -> None:
    """``pypptpd -f -d`` with its stderr a pipe nobody reads (systemd's journal, stalled): 6,000 control
    Echo-Requests make 12,000 debug lines, far beyond the pipe.  Before, the daemon blocked on the write
    and nobody got in; now the lines beyond the log thread's queue are dropped and counted, a client gets
    a session and its pings are answered, and the count is logged once the reader catches up."""
    secrets, options = tmp_path / "chap-secrets", tmp_path / "options"
    secrets.write_text(SECRETS)
    secrets.chmod(0o600)
    options.write_text(SEED_OPTIONS)
    (tmp_path / "options.system").write_text("")
    conf = tmp_path / "pptpd.conf"
    conf.write_text(
        "".join(f"{line}\n" for line in [f"listen {netns_pair.server_ip}", *SEED_CONF, f"option {options}"])
    )
    argv = [sys.executable, "-m", "pypptp.daemon.cli", "-f", "-d", "-c", str(conf), "-p", str(tmp_path / "pid")]
    argv += ["--control-socket", str(tmp_path / "sock")]
    argv += ["--secrets", str(secrets), "--system-options", str(tmp_path / "options.system")]
    argv += ["--ip-up", str(tmp_path / "ip-up"), "--ip-down", str(tmp_path / "ip-down")]
    read_end, write_end = os.pipe()
    process = subprocess.Popen(
        netns_pair.exec_argv(netns_pair.server_ns, argv),
        stdout=write_end,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        cwd=REPO,
    )
    os.close(write_end)
    daemon = types.SimpleNamespace(pair=netns_pair, address=(netns_pair.server_ip, 1723))
    loop = asyncio.get_running_loop()
    try:
        deadline = loop.time() + 10
        while True:  # listening? (its log is not ours to read yet)
            try:
                netns_pair.connect(netns_pair.client_ns, daemon.address, 0.5).close()
                break
            except OSError:
                assert loop.time() < deadline and process.poll() is None
                await asyncio.sleep(0.1)
        sock = netns_pair.connect(netns_pair.client_ns, daemon.address)
        flood = StartControlConnectionRequest().encode() + EchoRequest(identifier=7).encode() * 6_000
        reader = asyncio.ensure_future(read_until_closed(sock, 10.0))
        await asyncio.wait_for(loop.sock_sendall(sock, flood), 10.0)
        await asyncio.sleep(1.0)
        started = loop.time()
        session = await open_client(daemon, tun=False)  # type: ignore[arg-type]
        try:
            assert await tunnel_ping(session, SERVER_IP)
            elapsed = loop.time() - started
        finally:
            await session.close()
        sock.close()
        reader.cancel()
        print(f"\nstalled log: a session and a ping through it in {elapsed:.2f} s")
        assert elapsed < 5.0
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)  # it writes what it queued, then exits
        output = await loop.run_in_executor(None, read_all, read_end, 20.0)
        if process.poll() is None:
            process.kill()
        process.wait(10)
        os.close(read_end)
    text = output.decode(errors="replace")
    dropped = re.findall(r"MGR: (\d+) log line\(s\) dropped", text)
    print(f"stalled log: {sum(map(int, dropped))} line(s) dropped and counted")
    assert dropped and "MGR: Exit." in text


# -- PPP floods from one call ---------------------------------------------------------------------------


class HeldCall:
    """A call whose own CHAP frames are held back, so the daemon's side stays in the Authenticate phase
    (retransmitting its Challenge) while the test writes CHAP frames of its own; LCP is negotiated by a
    library link as usual."""

    def __init__(self, daemon: Pypptpd) -> None:
        self.daemon = daemon
        self.challenge: ControlPacket | None = None
        self.control: ControlClient | None = None
        self.transport = GreTransport()
        self.gre: GreCall | None = None
        self.ppp: PppSession | None = None

    async def open(self) -> HeldCall:
        pair = self.daemon.pair
        self.control = await ControlClient.connect(sock=self.daemon.client_socket(), timeout=10)
        await self.control.start()
        call = await self.control.open_call(window=256)
        assert call.peer_call_id is not None
        self.transport.open(pair.socket(pair.client_ns, socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_GRE))
        gre = self.gre = GreCall(
            self.transport, pair.server_ip, call.call_id, call.peer_call_id, lambda f: None, peer_window=256
        )

        def send(frame: bytes | memoryview) -> bool:
            return True if parse_frame(frame)[0] == Protocol.CHAP else gre.send(frame)

        link = PppLink(client_link_config("alice", "s3cret"))
        ppp = self.ppp = PppSession(link, send, log=logging.getLogger("test.held"), attach_tun=False)

        def deliver(frame: memoryview | bytes) -> None:
            protocol, offset = parse_frame(frame)
            if protocol == Protocol.CHAP and frame[offset] == ChapCode.CHALLENGE:
                self.challenge = decode_packet(bytes(frame[offset:]))
            ppp.receive_frame(frame)

        gre.deliver = deliver
        ppp.start()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while self.challenge is None:
            assert loop.time() < deadline, "no CHAP Challenge"
            await asyncio.sleep(0.02)
        return self

    async def send(self, frames: list[bytes]) -> int:
        """Send each frame, waiting for the GRE window when it is full (bounded); how many went."""
        assert self.gre is not None
        sent = 0
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        for frame in frames:
            while not self.gre.send(frame):
                if loop.time() > deadline:
                    return sent
                await asyncio.sleep(0.002)
            sent += 1
            if sent % 200 == 0:
                await asyncio.sleep(0.005)  # let the daemon's socket keep up (a loss changes nothing)
        return sent

    async def close(self) -> None:
        if self.ppp is not None:
            self.ppp.close("test over")
        if self.control is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.control.stop(), 3)
            self.control.close()
        if self.gre is not None:
            self.gre.close()
        self.transport.close()


def chap(code: int, identifier: int, data: bytes) -> bytes:
    return encode_frame(Protocol.CHAP, ControlPacket(code, identifier, data).encode())


async def test_bogus_chap_responses_in_the_authenticate_phase(start_pypptpd: Callable[..., Pypptpd]) -> None:
    """20,000 CHAP packets before the real Response: wrong Identifier, wrong Value-Size, malformed, a code
    for the other side.  Before, one INFO line each."""
    daemon = start_pypptpd(SEED_CONF, secrets=SECRETS, options=SEED_OPTIONS)
    before = len(log_lines(daemon))
    held = await HeldCall(daemon).open()
    assert held.challenge is not None
    ident = held.challenge.identifier
    kinds = [
        chap(ChapCode.RESPONSE, (ident + 7) & 0xFF, b"\x31" + bytes(49) + b"mallory"),
        chap(ChapCode.RESPONSE, ident, b"\x10" + bytes(16) + b"mallory"),
        chap(ChapCode.RESPONSE, ident, b"\xff"),
        chap(5, ident, bytes(20)),
    ]
    try:
        sent = await held.send(kinds * 5_000)
        await asyncio.sleep(0.5)
    finally:
        await held.close()
    lines = (await wait_lines(daemon, "session summary: "))[before:]  # the last line of a session
    print(f"\nbogus CHAP: {sent} sent, {len(lines)} log line(s)")
    assert sent > 10_000
    assert len(lines) <= LINE_BAR, "\n".join(lines)
    assert any("repeated on this link and counted" in line for line in lines)
    await another_client_works(daemon)


async def test_echo_replies_carrying_the_servers_magic(start_pypptpd: Callable[..., Pypptpd]) -> None:
    """10,000 LCP Echo-Replies carrying the daemon's own magic number.  Before, one WARNING each."""
    daemon = start_pypptpd(SEED_CONF, secrets=SECRETS, options=SEED_OPTIONS)
    before = len(log_lines(daemon))
    session = await open_client(daemon, tun=False)
    try:
        assert session.ppp is not None and session.gre is not None
        magic = session.ppp.link.lcp_options.peer_magic.to_bytes(4, "big")
        reply = encode_frame(Protocol.LCP, ControlPacket(Code.ECHO_REPLY, 9, magic).encode())
        loop = asyncio.get_running_loop()
        sent, deadline = 0, loop.time() + 30
        while sent < 10_000 and loop.time() < deadline:
            if session.gre.send(reply):
                sent += 1
                if sent % 200 == 0:
                    await asyncio.sleep(0.005)
            else:
                await asyncio.sleep(0.002)
        assert await tunnel_ping(session, SERVER_IP)  # the session itself carries on
    finally:
        await session.close()
    lines = (await wait_lines(daemon, "session summary: "))[before:]  # the last line of a session
    echo = [line for line in lines if "Echo-Reply" in line]
    print(f"\nEcho-Replies with our magic: {sent} sent, {len(lines)} log line(s) for the whole session")
    assert sent == 10_000 and len(echo) == 2, echo  # the first, and the summary with the count
    assert len(lines) <= LINE_BAR, "\n".join(lines)
    await another_client_works(daemon)


async def test_a_60_kb_chap_name(start_pypptpd: Callable[..., Pypptpd]) -> None:
    """Before, a 60 KB name wrote 720 KB of log in two lines."""
    daemon = start_pypptpd(SEED_CONF, secrets=SECRETS, options=SEED_OPTIONS)
    size_before = len(daemon.log())
    before = len(log_lines(daemon))
    held = await HeldCall(daemon).open()
    assert held.challenge is not None
    try:
        response = chap(ChapCode.RESPONSE, held.challenge.identifier, b"\x31" + bytes(49) + b"A" * 60_000)
        assert await held.send([response]) == 1
        await wait_lines(daemon, "authentication failed for")
    finally:
        await held.close()
    lines = (await wait_lines(daemon, "session summary: "))[before:]  # the last line of a session
    written = len(daemon.log()) - size_before
    print(f"\n60 KB name: {len(lines)} log line(s), {written} bytes")
    assert written < 8192 and max(map(len, lines)) < 400
    await another_client_works(daemon)


async def test_a_flood_of_connections_from_one_address(start_pypptpd: Callable[..., Pypptpd]) -> None:
    """Connections are cheap to open: 300 from one address, each an SCCRQ and an OCRQ (a call that never
    authenticates), then gone.  pptpd logs each one (several lines); here an address's first 5 a minute
    are logged as usual, the rest at debug level, counted in a summary; a client from that same address
    that authenticates is logged in full again."""
    daemon = start_pypptpd(SEED_CONF, secrets=SECRETS, options=SEED_OPTIONS)
    before = len(log_lines(daemon))
    loop = asyncio.get_running_loop()
    hello = StartControlConnectionRequest().encode() + OutgoingCallRequest(call_id=7).encode()
    for _ in range(300):  # bounded: 300 connections, a few seconds
        sock = daemon.client_socket()
        await loop.sock_sendall(sock, hello)
        await asyncio.sleep(0.005)
        sock.close()
    lines = await wait_lines(daemon, "logged at debug level only")
    flood = lines[before:]
    print(f"300 connections from one address: {len(flood)} log lines")
    # 5 connections in full and the summary: 10 lines each, pppd's own included as pppd wrote them for each
    # call (its start-up line, Modem hangup, Connection terminated., Exit.), and one spare each
    assert len(flood) <= 5 * 11 + 1
    session = await open_client(daemon, tun=False)  # the same address, authenticated: logged as usual
    try:
        assert await tunnel_ping(session, SERVER_IP)
        assert "Connect: ppp0" in daemon.log()
    finally:
        await session.close()
