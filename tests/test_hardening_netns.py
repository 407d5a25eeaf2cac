"""Races, leaks and signals found under load (issue: survive the internet, section 4), against a real
pypptpd in namespaces."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from pypptp.aio.client import PptpClientError
from pypptp.ctrl.messages import (
    OutgoingCallRequest,
    StartControlConnectionRequest,
    StopControlConnectionRequest,
    decode_message,
)
from pypptp.host.netns import NetnsPair
from tests.conftest import Pypptpd, icmp_echo, tunnel_ping
from tests.test_daemon_netns import (
    SECRETS,
    SEED_CONF,
    SEED_OPTIONS,
    daemon_fds,
    daemon_rss,
    interfaces,
    open_client,
    run,
)

pytestmark = pytest.mark.netns

ROUNDS, AT_ONCE = 30, 5


async def test_a_storm_of_concurrent_sessions_never_claims_one_ppp_name_twice(
    start_pypptpd: Callable[..., Pypptpd],
) -> None:
    """30 rounds of 5 sessions at once, each closed before the next round: pppN names used to be
    released twice (once by the session, once by the device's background removal), and two sessions
    of a later round then made the same pppN: "cannot create ppp0: Device or resource busy"."""
    daemon = start_pypptpd(SEED_CONF, secrets=SECRETS, options=SEED_OPTIONS)
    await asyncio.sleep(0.2)
    fds_before = daemon_fds(daemon)
    up = 0
    rss: list[int] = []
    for _ in range(ROUNDS):
        results = await asyncio.gather(
            *(open_client(daemon, tun=False) for _ in range(AT_ONCE)), return_exceptions=True
        )
        sessions = [r for r in results if not isinstance(r, BaseException)]
        pinged = await asyncio.gather(*(tunnel_ping(s, "192.168.0.1") for s in sessions))
        up += sum(pinged)
        await asyncio.gather(*(s.close() for s in sessions))
        rss.append(daemon_rss(daemon))
    print(f"{up}/{ROUNDS * AT_ONCE} sessions pinged; RSS (KiB) after rounds 1, 11, 21, 30: {rss[::10] + rss[-1:]}")
    assert up == ROUNDS * AT_ONCE, daemon.log()[-3000:]
    assert rss[-1] - rss[9] < 4096, rss  # a plateau: no growth per session once warm
    assert "cannot create ppp" not in daemon.log()
    deadline = time.monotonic() + 10
    while (interfaces(daemon.pair) or daemon_fds(daemon) > fds_before) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    assert interfaces(daemon.pair) == [] and daemon_fds(daemon) == fds_before
    again = await open_client(daemon, tun=False)  # every pool address came back
    await again.close()


async def test_the_library_client_notices_the_server_going_away(start_pypptpd: Callable[..., Pypptpd]) -> None:
    """The daemon killed outright (no LCP Terminate, no CDN): the TCP connection closes, and the client
    session ends and tells its caller, instead of staying "up"."""
    daemon = start_pypptpd(SEED_CONF, secrets=SECRETS, options=SEED_OPTIONS)
    session = await open_client(daemon, tun=False)
    daemon.process.send_signal(signal.SIGKILL)
    reason = await asyncio.wait_for(session.wait_closed(), 5)
    assert reason == "call cleared: TCP connection closed by peer"
    assert session.ppp is not None and session.ppp.closed
    with pytest.raises(PptpClientError, match="tunnel closed"):
        await asyncio.wait_for(session.recv(), 1)
    assert session.network is not None and not session.send(icmp_echo(str(session.network.local_address), "1.2.3.4"))
    await session.close()


async def test_a_cdn_alone_ends_the_client_session(start_pypptpd: Callable[..., Pypptpd]) -> None:
    """The server clears the call (its idle limit here) and the client's session ends with the call."""
    daemon = start_pypptpd(SEED_CONF, secrets=SECRETS, options=SEED_OPTIONS + "idle 1\n")
    session = await open_client(daemon, tun=False)
    reason = await asyncio.wait_for(session.wait_closed(), 10)
    assert reason  # LCP terminated by peer, or the CDN: whichever came first, the session is over
    assert session.ppp is not None and session.ppp.closed
    await session.close()


async def test_sigusr1_toggles_debug_and_sigusr2_is_ignored(start_pypptpd: Callable[..., Pypptpd]) -> None:
    """pppd's SIGUSR1 toggles debug and SIGUSR2 renegotiates CCP; neither may kill the daemon (SIGUSR1
    used to, at once: no log, no ip-down, a stale pidfile)."""
    daemon = start_pypptpd(SEED_CONF, secrets=SECRETS, options=SEED_OPTIONS)
    session = await open_client(daemon, tun=False)
    daemon.process.send_signal(signal.SIGUSR1)
    daemon.wait_log("SIGUSR1: debug logging on")
    await session.close()  # control messages are traced now
    daemon.wait_log("CTRL: 198.18.0.2")
    daemon.process.send_signal(signal.SIGUSR2)
    daemon.wait_log("SIGUSR2: ignored")
    daemon.process.send_signal(signal.SIGUSR1)
    daemon.wait_log("SIGUSR1: debug logging off")
    assert daemon.process.poll() is None
    again = await open_client(daemon, tun=False)
    await again.close()
    assert daemon.terminate() == 0 and not daemon.pidfile.exists()


def test_the_daemon_listens_on_ipv4_only(netns_pair: NetnsPair, tmp_path: Path) -> None:
    """As pptpd, with no listen line: an IPv6 call ended in a traceback (the pool and GRE are IPv4)."""
    daemon = Pypptpd(netns_pair, tmp_path, ["localip 192.168.0.1", "remoteip 192.168.0.234-238"], [])
    try:
        daemon.wait_listening()
        listening = run("ip", "netns", "exec", netns_pair.server_ns, "ss", "-Hltn", "sport", "= :1723")
    finally:
        daemon.terminate()
    assert "0.0.0.0:1723" in listening and "[::]" not in listening and "*:1723" not in listening


async def test_a_connection_that_never_places_a_call_is_stopped(start_pypptpd: Callable[..., Pypptpd]) -> None:
    """SCCRQ, then silence: stopped after stimeout (here 2 s) with a StopCCRQ, where pptpd would keep it
    for as long as it answered echoes."""
    daemon = start_pypptpd(SEED_CONF, ["-t", "2"], secrets=SECRETS, options=SEED_OPTIONS)
    sock = daemon.client_socket()
    loop = asyncio.get_running_loop()
    started = time.monotonic()
    await loop.sock_sendall(sock, StartControlConnectionRequest().encode())
    received = b""
    while True:
        chunk = await asyncio.wait_for(loop.sock_recv(sock, 4096), 10)
        if not chunk:
            break
        received += chunk
    sock.close()
    elapsed = time.monotonic() - started
    assert 1.5 < elapsed < 4
    assert isinstance(decode_message(received[156:]), StopControlConnectionRequest)
    assert re.search(r"no call within 2 s", daemon.log())


def test_the_daemon_raises_its_open_files_limit(start_pypptpd: Callable[..., Pypptpd]) -> None:
    daemon = start_pypptpd(SEED_CONF, secrets=SECRETS, options=SEED_OPTIONS)
    pid = int(daemon.pidfile.read_text())
    with open(f"/proc/{pid}/limits", encoding="ascii") as f:
        line = next(line for line in f if line.startswith("Max open files"))
    soft, hard = line.split()[3:5]
    assert soft == hard, line
    assert os.path.exists(f"/proc/{pid}")


async def test_password_guessing_is_throttled_per_source(start_pypptpd: Callable[..., Pypptpd]) -> None:
    """Five wrong passwords within a minute from one address: its next connections are dropped at accept
    for --auth-fail-block seconds (3 here); another address is never affected; each failure is logged
    with the peer's address, in a line fail2ban can match."""
    daemon = start_pypptpd(SEED_CONF, ["--auth-fail-block", "3"], secrets=SECRETS, options=SEED_OPTIONS)
    for _ in range(5):
        with pytest.raises(PptpClientError):
            await open_client(daemon, "alice", "guess")
    log = daemon.wait_log("refusing its connections for 3 s")
    assert log.count("MGR: authentication failed for 'alice' from 198.18.0.2 (MS-CHAP-V2)") == 5
    started = time.monotonic()
    with pytest.raises((PptpClientError, OSError)):  # dropped at once, even with the right password
        await open_client(daemon)
    assert time.monotonic() - started < 1.0
    other = "198.18.0.77"  # another address of the client namespace: never affected
    run("ip", "-n", daemon.pair.client_ns, "addr", "add", f"{other}/24", "dev", "veth0")
    session = await open_client(daemon, source=other)
    await session.close()
    await asyncio.sleep(3.2)  # the block ends
    session = await open_client(daemon)
    await session.close()
    daemon.wait_log("connection(s) refused: the address is blocked for its authentication failures")


async def test_pending_calls_do_not_shift_a_unit_based_address(start_pypptpd: Callable[..., Pypptpd]) -> None:
    """chap-secrets ``a.b.c.d/n+`` gives the address host unit + 1: the unit is chosen once the user is
    known, so calls that never authenticate (here three, held open) neither take units nor move the
    address of the user who comes after them.  Until then their lines are logged as plain ``pppd``."""
    secrets = SECRETS + "dave pptpd 'dave pw' 192.168.3.0/28+\n"
    daemon = start_pypptpd(SEED_CONF, secrets=secrets, options=SEED_OPTIONS)
    loop = asyncio.get_running_loop()
    held = []
    for n in range(3):
        sock = daemon.client_socket()
        await loop.sock_sendall(
            sock, StartControlConnectionRequest().encode() + OutgoingCallRequest(call_id=n).encode()
        )
        held.append(sock)
    daemon.wait_log("Call ID 2")
    dave = await open_client(daemon, "dave", "dave pw", tun=False)
    try:
        assert dave.network is not None and str(dave.network.local_address) == "192.168.3.1"  # unit 0
        log = daemon.log()
        assert "Connect: ppp0 <-->" in log and "Connect: ppp1" not in log
    finally:
        await dave.close()
        for sock in held:
            sock.close()
