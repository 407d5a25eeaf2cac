"""pypptpd with ``plugin radius.so`` against a real FreeRADIUS, end to end, in the test's namespaces.

What a pptpd+radius admin moving over relies on: the options file and radiusclient's files as they are;
MS-CHAPv2 + MPPE-128 keyed from FreeRADIUS's MS-MPPE keys (a ping proves both directions); the address
from FreeRADIUS's pool; Access-Reject's reason in the log and in the client's Failure; Start, Interim and
Stop records with the session's own byte counts; a Disconnect-Request from the real ``radclient``; a CoA
changing Session-Timeout; FreeRADIUS stopped: a clean, bounded failure, and recovery when it is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from pypptp.aio.client import PptpClientError
from pypptp.host.netns import NetnsPair
from pypptp.ppp.ccp import MppePolicy
from pypptp.ppp.lcp import AUTH_CHAP_MD5, AUTH_MSCHAP_V1, AUTH_PAP
from tests.conftest import Pypptpd, require_tools, tunnel_ping
from tests.freeradius import FreeRadius, RadiusClient, RadiusUser
from tests.test_daemon_netns import open_client

SECRET = "radius-test-secret"
POOL = ("192.168.100.10", "192.168.100.29")
DAE_SECRET = "dae-test-secret"


def radius_files(workdir: Path, server: str, *, timeout: int = 2, retries: int = 1, dae: bool = True) -> str:
    """radiusclient's files as a Debian HOWTO sets them up, and the options lines that point to them."""
    workdir.mkdir(parents=True, exist_ok=True)
    servers = workdir / "servers"
    servers.write_text(f"# host secret\n{server} {SECRET}\n")
    servers.chmod(0o600)
    conf = workdir / "radiusclient.conf"
    conf.write_text(
        "auth_order radius\n"
        f"authserver {server}:1812\n"
        f"acctserver {server}:1813\n"
        f"servers {servers}\n"
        "dictionary /etc/radiusclient/dictionary\n"
        f"radius_timeout {timeout}\n"
        f"radius_retries {retries}\n"
        "login_tries 4\nlogin_timeout 60\n"
    )
    lines = f"plugin radius.so\nradius-config-file {conf}\n"
    if dae:
        clients = workdir / "dae-clients"
        clients.write_text(f"{server} {DAE_SECRET}\n")
        clients.chmod(0o600)
        lines += f"radius-dae-listen {server}:3799\nradius-dae-clients {clients}\n"
    return lines


def options(method: str = "require-mschap-v2\nrequire-mppe-128\n") -> str:
    return "name pptpd\n" + method


@pytest.fixture
def radius_daemon(
    netns_pair: NetnsPair, start_freeradius: Callable[..., FreeRadius], start_pypptpd: Callable[..., Pypptpd],
    tmp_path: Path, request: pytest.FixtureRequest,
) -> tuple[FreeRadius, Pypptpd]:  # fmt: skip
    """FreeRADIUS and pypptpd in the server namespace (the NAS is 198.18.0.1); users alice (interim
    updates every 2 s, a Class) and bob; the pool 192.168.100.10-29 of FreeRADIUS (sqlippool)."""
    require_tools("freeradius", "radclient")
    method = getattr(request, "param", "require-mschap-v2\nrequire-mppe-128\n")
    users = [
        RadiusUser("alice", "s3cret", {"Acct-Interim-Interval": 2, "Class": "gold-plan"}),
        RadiusUser("bob", "b0b-pass"),
    ]
    radius = start_freeradius(
        netns_pair.server_ns,
        netns_pair.server_ip,
        users=users,
        clients=[RadiusClient(netns_pair.server_ip, SECRET)],
        pool=POOL,
        pool_key="%{Acct-Session-Id}",
    )
    return radius, radius_pypptpd(start_pypptpd, netns_pair, tmp_path, ["-d"], method)


def radius_pypptpd(
    start_pypptpd: Callable[..., Pypptpd],
    pair: NetnsPair,
    tmp_path: Path,
    args: list[str],
    method: str = "require-mschap-v2\nrequire-mppe-128\n",
) -> Pypptpd:
    """pypptpd in ``pair``'s server namespace with ``plugin radius.so``, asking the FreeRADIUS there."""
    lines = radius_files(tmp_path / "radius", pair.server_ip)
    conf = ["localip 192.168.0.1", "remoteip 192.168.0.234-238"]
    return start_pypptpd(conf, args, secrets="", options=options(method) + lines)


def session_line(daemon: Pypptpd, user: str) -> dict[str, str]:
    """The fields of the daemon's session summary line for ``user``."""
    log = daemon.wait_log(f'session summary: user="{user}"', timeout=10)
    line = [x for x in log.splitlines() if f'session summary: user="{user}"' in x][-1]
    return dict(re.findall(r'(\w+)=("[^"]*"|\S+)', line.split("session summary: ", 1)[1]))


def test_mschapv2_mppe128_keyed_by_freeradius_carries_a_ping(radius_daemon: tuple[FreeRadius, Pypptpd]) -> None:
    radius, daemon = radius_daemon

    async def scenario() -> tuple[str, bool]:
        session = await open_client(daemon, "alice", "s3cret", tun=False)
        try:
            assert session.network is not None
            assert session.network.mppe == "MPPE 128-bit stateless"
            return str(session.network.local_address), await tunnel_ping(session, "192.168.0.1")
        finally:
            await session.close()

    address, answered = asyncio.run(scenario())
    assert answered, daemon.log()
    assert address in radius.pool_addresses  # Framed-IP-Address from FreeRADIUS's sqlippool
    log = daemon.wait_log("session summary")
    assert re.search(rf"RADIUS: Access-Accept from {daemon.pair.server_ip}:1812 for 'alice': address {address}", log)
    records = radius.wait_accounting(2)
    assert [r["Acct-Status-Type"] for r in records][:1] == ["Start"]


def test_a_wrong_password_fails_with_freeradius_reason(radius_daemon: tuple[FreeRadius, Pypptpd]) -> None:
    radius, daemon = radius_daemon

    async def scenario() -> str:
        with pytest.raises(PptpClientError) as caught:
            await open_client(daemon, "alice", "not-the-password", tun=False)
        return str(caught.value)

    failure = asyncio.run(scenario())
    assert "691" in failure or "authentication failed" in failure.lower(), failure
    log = daemon.wait_log("Peer alice failed CHAP authentication")
    assert re.search(r"MS-CHAP-V2: attempt 1 of 3 failed for 'alice': Access-Reject", log), log
    assert "E=691" in log, log
    assert radius.leased() == {}  # an Access-Reject leases nothing


def test_start_interim_stop_carry_the_sessions_counts(radius_daemon: tuple[FreeRadius, Pypptpd]) -> None:
    radius, daemon = radius_daemon

    async def scenario() -> None:
        session = await open_client(daemon, "alice", "s3cret", tun=False)
        try:
            assert await tunnel_ping(session, "192.168.0.1")
            await asyncio.sleep(4.5)  # two interim updates at 2 s
            for _ in range(5):
                assert await tunnel_ping(session, "192.168.0.1")
        finally:
            await session.close()

    asyncio.run(scenario())
    summary = session_line(daemon, "alice")
    records = radius.wait_accounting(4, timeout=10)
    kinds = [r["Acct-Status-Type"] for r in records]
    assert kinds[0] == "Start" and kinds[-1] == "Stop" and kinds.count("Interim-Update") >= 2, kinds
    ids = {r["Acct-Session-Id"] for r in records}
    assert len(ids) == 1
    stop = records[-1]
    # RFC 2866: input is what the NAS received from the user; the summary's received likewise
    assert int(stop["Acct-Input-Octets"]) == int(summary["received"]), (stop, summary)
    assert int(stop["Acct-Output-Octets"]) == int(summary["sent"]), (stop, summary)
    assert int(stop["Acct-Input-Packets"]) >= 6 and int(stop["Acct-Output-Packets"]) >= 6
    assert stop["Acct-Terminate-Cause"] == "User-Request", stop
    assert stop["User-Name"] == "alice" and stop["Class"].endswith(("gold-plan", "676f6c642d706c616e"))
    assert stop["NAS-Port-Type"] == "Virtual" and stop["NAS-Port"] == summary["if"].removeprefix("ppp")
    assert stop["Framed-IP-Address"] == summary["ip"] and stop["Calling-Station-Id"] == daemon.pair.client_ip
    assert stop["NAS-IP-Address"] == daemon.pair.server_ip
    assert int(stop["Acct-Session-Time"]) >= 4


def radclient(pair: NetnsPair, kind: str, attributes: str, port: int = 3799, secret: str = DAE_SECRET) -> str:
    argv = ["radclient", "-x", "-t", "3", "-r", "1", f"{pair.server_ip}:{port}", kind, secret]
    result = subprocess.run(
        pair.exec_argv(pair.server_ns, argv), input=attributes + "\n", capture_output=True, text=True, timeout=30
    )
    return result.stdout + result.stderr


def test_a_disconnect_request_from_radclient_ends_the_session(radius_daemon: tuple[FreeRadius, Pypptpd]) -> None:
    radius, daemon = radius_daemon

    async def scenario() -> tuple[str, str, bool]:
        session = await open_client(daemon, "alice", "s3cret", tun=False)
        try:
            assert await tunnel_ping(session, "192.168.0.1")
            loop = asyncio.get_running_loop()
            wrong = await loop.run_in_executor(None, radclient, daemon.pair, "disconnect", 'User-Name = "nobody"')
            right = await loop.run_in_executor(None, radclient, daemon.pair, "disconnect", 'User-Name = "alice"')
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(session.wait_closed(), 5)
            return wrong, right, session.down_reason is not None
        finally:
            await session.close()

    wrong, right, closed = asyncio.run(scenario())
    assert "Disconnect-NAK" in wrong and "Session-Context-Not-Found" in wrong, wrong
    assert "Disconnect-ACK" in right, right
    assert closed
    stop = [r for r in radius.wait_accounting(2, timeout=10) if r["Acct-Status-Type"] == "Stop"]
    assert stop and stop[-1]["Acct-Terminate-Cause"] == "Admin-Reset", stop


def test_a_coa_session_timeout_applies_to_the_live_session(radius_daemon: tuple[FreeRadius, Pypptpd]) -> None:
    radius, daemon = radius_daemon

    async def scenario() -> tuple[str, float]:
        session = await open_client(daemon, "bob", "b0b-pass", tun=False)
        try:
            assert await tunnel_ping(session, "192.168.0.1")
            loop = asyncio.get_running_loop()
            answer = await loop.run_in_executor(
                None, radclient, daemon.pair, "coa", 'User-Name = "bob", Session-Timeout = 3'
            )
            began = time.monotonic()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(session.wait_closed(), 10)
            return answer, time.monotonic() - began
        finally:
            await session.close()

    answer, waited = asyncio.run(scenario())
    assert "CoA-ACK" in answer, answer
    assert waited < 8
    stop = [r for r in radius.wait_accounting(2, timeout=10) if r["Acct-Status-Type"] == "Stop"]
    assert stop and stop[-1]["Acct-Terminate-Cause"] == "Session-Timeout", stop


def test_freeradius_stopped_fails_cleanly_and_recovers(radius_daemon: tuple[FreeRadius, Pypptpd]) -> None:
    """While nobody answers, a login fails in bounded time, and a session already up carries on unharmed:
    its pings during the wait come back as fast as before (the wait is the new session's own task)."""
    radius, daemon = radius_daemon

    async def down() -> tuple[float, list[float]]:
        established = await open_client(daemon, "bob", "b0b-pass", tun=False)
        try:
            radius.stop()
            began = time.monotonic()
            attempt = asyncio.ensure_future(open_client(daemon, "alice", "s3cret", tun=False))
            rtts = []
            while not attempt.done():
                sent = time.monotonic()
                assert await tunnel_ping(established, "192.168.0.1", attempts=1, wait=1.0)
                rtts.append(time.monotonic() - sent)
                await asyncio.sleep(0.2)
            with pytest.raises(PptpClientError):
                await attempt
            return time.monotonic() - began, rtts
        finally:
            await established.close()

    waited, rtts = asyncio.run(down())
    assert waited < 15  # radius_timeout 2 s x (1 + 1 retry): bounded, never a hang
    assert len(rtts) >= 5 and max(rtts) < 0.5, rtts  # every ping answered, none held up by the wait
    daemon.wait_log("no answer from RADIUS", timeout=5)
    radius.start()

    async def back() -> bool:
        session = await open_client(daemon, "alice", "s3cret", tun=False)
        try:
            return await tunnel_ping(session, "192.168.0.1")
        finally:
            await session.close()

    assert asyncio.run(back())


@pytest.mark.parametrize("radius_daemon", ["require-mschap\nrequire-mppe-128\n"], indirect=True, ids=["v1"])
def test_mschap_v1_keyed_by_freeradius(radius_daemon: tuple[FreeRadius, Pypptpd]) -> None:
    _, daemon = radius_daemon

    async def scenario() -> bool:
        session = await open_client(daemon, "bob", "b0b-pass", tun=False, auth=AUTH_MSCHAP_V1)
        try:
            return await tunnel_ping(session, "192.168.0.1")
        finally:
            await session.close()

    assert asyncio.run(scenario()), daemon.log()


@pytest.mark.parametrize(
    ("radius_daemon", "method"),
    [("require-pap\nnomppe\n", AUTH_PAP), ("require-chap\nnomppe\n", AUTH_CHAP_MD5)],
    indirect=["radius_daemon"],
    ids=["pap", "chap-md5"],
)
def test_pap_and_chap_md5_through_freeradius(radius_daemon: tuple[FreeRadius, Pypptpd], method: bytes) -> None:
    _, daemon = radius_daemon
    no_mppe = MppePolicy(enabled=False, required=False)

    async def scenario() -> bool:
        session = await open_client(daemon, "bob", "b0b-pass", tun=False, auth=method, mppe=no_mppe)
        try:
            return await tunnel_ping(session, "192.168.0.1")
        finally:
            await session.close()

    assert asyncio.run(scenario()), daemon.log()
    assert "Access-Accept from" in daemon.log()

    async def wrong() -> None:
        with pytest.raises(PptpClientError):
            await open_client(daemon, "bob", "nope", tun=False, auth=method, mppe=no_mppe)

    asyncio.run(wrong())
    assert "Access-Reject from" in daemon.wait_log("Access-Reject from")


def test_sighup_rereads_radiusclient_files_and_keeps_the_backend(
    radius_daemon: tuple[FreeRadius, Pypptpd], tmp_path: Path
) -> None:
    _, daemon = radius_daemon
    servers = tmp_path / "radius" / "servers"
    good = servers.read_text()

    async def connect() -> bool:
        try:
            session = await open_client(daemon, "bob", "b0b-pass", tun=False)
        except Exception:
            return False
        await session.close()
        return True

    servers.write_text(good.replace(SECRET, "not-the-shared-secret"))
    daemon.process.send_signal(signal.SIGHUP)
    daemon.wait_log("RADIUS: configuration re-read")
    assert not asyncio.run(connect())  # FreeRADIUS drops what the wrong secret signs: no answer
    daemon.wait_log("no answer from RADIUS for 'bob'", timeout=10)
    servers.write_text(good)
    daemon.process.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 5
    while daemon.log().count("RADIUS: configuration re-read") < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert asyncio.run(connect())
    options = daemon.options.read_text()
    chap_only = "".join(line for line in options.splitlines(True) if "radius" not in line)
    daemon.options.write_text(chap_only)  # an admin's slip: RADIUS stays until a restart
    daemon.process.send_signal(signal.SIGHUP)
    daemon.wait_log("'plugin radius.so' changed: RADIUS stays in use until pypptpd restarts")
    assert asyncio.run(connect())
    assert daemon.log().count("Access-Accept from") == 2


def test_radius_with_two_workers(
    netns_pair: NetnsPair, start_freeradius: Callable[..., FreeRadius], start_pypptpd: Callable[..., Pypptpd],
    tmp_path: Path,
) -> None:  # fmt: skip
    """``--workers 2``: each worker asks RADIUS for its own sessions; the Acct-Session-Ids stay unique
    across the workers (their pids are in them), and the DAE listener is off, as logged."""
    require_tools("freeradius")
    users = [RadiusUser(f"user{i}", f"pass-{i}") for i in range(4)]
    clients = [RadiusClient(netns_pair.server_ip, SECRET)]
    ip = netns_pair.server_ip
    radius = start_freeradius(
        netns_pair.server_ns, ip, users=users, clients=clients, pool=POOL, pool_key="%{Acct-Session-Id}"
    )
    daemon = radius_pypptpd(start_pypptpd, netns_pair, tmp_path, ["-d", "--workers", "2"], "require-mschap-v2\n")

    async def scenario() -> list[str]:
        sessions = await asyncio.gather(*(open_client(daemon, u.name, u.password, tun=False) for u in users))
        try:
            for session in sessions:
                assert await tunnel_ping(session, "192.168.0.1")
            return [str(s.network.local_address) for s in sessions if s.network is not None]
        finally:
            await asyncio.gather(*(s.close() for s in sessions))

    addresses = asyncio.run(scenario())
    assert len(set(addresses)) == 4 and set(addresses) <= set(radius.pool_addresses)
    starts = [r for r in radius.wait_accounting(8, timeout=10) if r["Acct-Status-Type"] == "Start"]
    ids = {r["Acct-Session-Id"] for r in starts}
    assert len(ids) == 4
    assert len({i[8:14] for i in ids}) == 2  # two worker pids: both workers took sessions
    assert "radius-dae-listen is off with --workers" in daemon.log()
