"""A client that reconnects at once gets a working tunnel (the real daemon, a library client).

Windows' "reconnect", NetworkManager's retries and scripts in a loop hang up and call again within a
few milliseconds.  The session that ended is still being torn down then: its ``pppN`` is removed off the
event loop, its proxy ARP entry withdrawn, its ip-down run (pppd runs ``/etc/ppp/ip-down.d`` through
run-parts: it takes a moment).  Handing its address to the new session at once, as pptpd's slot table
would if it freed the slot before pppd had exited, lets that teardown hit the new session: here ip-up
routes the client's LAN (192.168.77.0/24) through the tunnel and ip-down removes that route again, the way
the pptpd HOWTOs do it (``route del -net ... gw $5``: by gateway, the peer's address), so the old
session's ip-down deletes the new session's route when both sessions have the same peer address.

Each round brings a tunnel up, waits for its ip-up and for the ip-down of the round before, then checks
that the server's traffic to the client's LAN and a ping to the server both pass; then it hangs up
(politely, or by vanishing: a TCP reset) and calls again with no pause.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import socket
import struct
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from pypptp.aio.client import PptpClientError
from pypptp.client.tunnel import PptpClientSession
from tests.conftest import Pypptpd, tunnel_ping
from tests.test_daemon_netns import SEED_OPTIONS, SERVER_IP, interfaces_after_close, open_client, run

pytestmark = pytest.mark.netns

ROUNDS = 10
ROUND_DEADLINE = 10.0
"""Seconds one round (connect, the scripts, the checks, hang up) may take."""
SECRETS = "alice pptpd s3cret *\n"
CLIENT_LAN = "192.168.77.0/24"
CLIENT_HOST = "192.168.77.1"
IP_UP = f"""#!/bin/sh
# the client's LAN through its tunnel: $1 is pppN, $5 the client's tunnel address
ip route replace {CLIENT_LAN} via "$5" dev "$1"
echo "up $1 $5" >> "{{log}}"
"""
IP_DOWN = f"""#!/bin/sh
sleep 0.2  # (run-parts /etc/ppp/ip-down.d)
ip route del {CLIENT_LAN} via "$5"
echo "down $1 $5" >> "{{log}}"
"""


def install_scripts(daemon: Pypptpd) -> Path:
    """The ip-up and ip-down above; returns the file where they note each run."""
    log = daemon.workdir / "scripts.log"
    log.write_text("")
    daemon.ip_up.write_text(IP_UP.format(log=log))
    daemon.ip_down.write_text(IP_DOWN.format(log=log))
    daemon.ip_up.chmod(0o755)
    daemon.ip_down.chmod(0o755)
    return log


async def wait_runs(log: Path, which: str, count: int, timeout: float = 5.0) -> None:
    """Until ``which`` ("up" or "down") has run ``count`` times."""
    deadline = time.monotonic() + timeout
    while sum(line.startswith(which + " ") for line in log.read_text().splitlines()) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"ip-{which} has not run {count} times within {timeout} s:\n{log.read_text()}")
        await asyncio.sleep(0.02)


async def reaches_client_lan(daemon: Pypptpd, session: PptpClientSession, attempts: int = 3) -> bool:
    """A datagram from the server to a host on the client's LAN comes out of the client's tunnel."""
    sender = daemon.pair.socket(daemon.pair.server_ns, socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for attempt in range(attempts):
            marker = f"probe {attempt} {time.monotonic()}".encode()
            try:
                sender.sendto(marker, (CLIENT_HOST, 9))
            except OSError:  # no route (yet, or any more)
                await asyncio.sleep(0.3)
                continue
            try:
                async with asyncio.timeout(0.5):
                    while True:
                        packet = await session.recv()
                        if packet[16:20] == socket.inet_aton(CLIENT_HOST) and packet.endswith(marker):
                            return True
            except TimeoutError:
                continue
    finally:
        sender.close()
    return False


async def vanish(session: PptpClientSession) -> None:
    """The client dies: its TCP connection is reset (SO_LINGER 0), nothing else is said."""
    protocol = session.control._protocol
    assert protocol is not None and protocol.transport is not None
    protocol.transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    assert session.ppp is not None
    session.ppp.close("the client vanished")
    session.control.close()
    if session.gre is not None:
        session.gre.close()
    session.transport.close()


async def polite(session: PptpClientSession) -> None:
    await session.close()


async def reconnect_rounds(
    daemon: Pypptpd, log: Path, hang_up: Callable[[PptpClientSession], Awaitable[None]], held: int
) -> list[str]:
    """ROUNDS rounds of connect, check, hang up (``held`` other sessions stay up meanwhile); what went
    wrong in each round that failed."""
    failures: list[str] = []
    connected = 0  # (a round refused has no ip-up nor ip-down: the next one counts without it)
    for number in range(ROUNDS):
        async with asyncio.timeout(ROUND_DEADLINE):
            try:
                session = await open_client(daemon, tun=False)
            except PptpClientError as exc:
                failures.append(f"round {number}: {exc}")
                continue
            connected += 1
            try:
                up = session.network
                assert up is not None
                await wait_runs(log, "up", held + connected)
                await wait_runs(log, "down", connected - 1)  # the session before is torn down by now
                if not await reaches_client_lan(daemon, session):
                    route = run("ip", "-n", daemon.pair.server_ns, "route", "show", CLIENT_LAN).strip()
                    failures.append(f"round {number}: {CLIENT_HOST} unreachable via {up.local_address} ({route!r})")
                elif not await tunnel_ping(session, SERVER_IP, attempts=4, wait=0.5):
                    failures.append(f"round {number}: no echo reply through {up.local_address}")
            finally:
                await hang_up(session)
    return failures


VARIANTS = {
    "one-address": ("192.168.0.234", 0, 1),
    "two-addresses": ("192.168.0.234-235", 0, 1),
    "one-free": ("192.168.0.234-235", 1, 1),
    "two-addresses-two-workers": ("192.168.0.234-235", 0, 2),
    "one-free-two-workers": ("192.168.0.234-236", 2, 2),
}
"""remoteip, sessions held up all along (the redial gets the one address left), ``--workers``.  The
supervisor hands each connection to the least-loaded worker, of equals the one sent the fewest: in
one-free-two-workers each worker holds one of the two sessions held up, so the redials alternate between
the workers, and each new session waits for the address the other worker is still tearing down."""


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("how", ["close", "reset"])
async def test_immediate_reconnect_gets_a_working_tunnel(
    start_pypptpd: Callable[..., Pypptpd], variant: str, how: str
) -> None:
    pool, held, workers = VARIANTS[variant]
    args = ["--workers", str(workers)] if workers > 1 else []
    daemon = start_pypptpd(["localip 192.168.0.1", f"remoteip {pool}"], args, secrets=SECRETS, options=SEED_OPTIONS)
    deadline = time.monotonic() + 10
    while workers > 1 and daemon.log().count("listening on") < workers and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    log = install_scripts(daemon)
    others = [await open_client(daemon, tun=False) for _ in range(held)]
    try:
        await wait_runs(log, "up", held)  # (their ip-up routes the LAN to them: done before the rounds')
        started = time.monotonic()
        failures = await reconnect_rounds(daemon, log, polite if how == "close" else vanish, held)
        elapsed = time.monotonic() - started
    finally:
        for other in others:
            await other.close()
    assert failures == [], f"{len(failures)}/{ROUNDS} rounds failed ({elapsed:.1f} s): {failures}\n{daemon.log()}"
    await wait_runs(log, "down", ROUNDS + held)
    assert interfaces_after_close(daemon.pair, timeout=5) == []
    assert "192.168." not in run("ip", "-n", daemon.pair.server_ns, "route")
    peers = [line.split()[2] for line in log.read_text().splitlines() if line.startswith("up ")][held:]
    assert len(peers) == ROUNDS
    if held == 0 and "-" in pool:  # each round's address still drains when the next one calls: it gets the other
        assert all(a != b for a, b in itertools.pairwise(peers)), peers
    if workers > 1:  # (the redials went to both workers)
        assert len(set(re.findall(r"pppd\[(\d+)\]: ppp\d+: Connect: ", daemon.log()))) == workers
    if workers > 1 and held:  # and each waited, in both workers, for the address the other was tearing down
        assert len(set(re.findall(r"pppd\[(\d+)\]: ppp\d+: \S+ is still held by the teardown", daemon.log()))) == 2
