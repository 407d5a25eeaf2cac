"""Log floods (issue 15 section 2): no input from one peer makes more than a few dozen log lines.

Each flood runs against the real ``pypptpd -f`` (its log is its stderr); the lines the flood caused
are counted, the control connection must be closed where a bound applies, and another client must
still get a working session afterwards.  Every flood is bounded in count and time; traffic stays
between the two test namespaces (and inside tunnels).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable

import pytest

from pypptp.ctrl.messages import SetLinkInfo, StartControlConnectionRequest
from tests.conftest import Pypptpd, tunnel_ping
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
