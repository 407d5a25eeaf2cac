"""pypptpd end to end: the real daemon in one namespace, the library client in another, IP through.

The daemon runs as ``pypptpd -f`` in the server namespace with files written
here.  The client session runs in the test process: its TCP and raw GRE
sockets and its ``pppN`` TUN device are made inside the client namespace.
Traffic goes only to addresses inside the tunnel (192.168.0.0/16) between
the two namespaces; the seed's DNS servers are negotiated, never contacted.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from pypptp.aio.client import PptpClientError
from pypptp.client.demo import ping, tcp_transfer
from pypptp.client.tunnel import PptpClientSession, client_link_config
from pypptp.host.netns import NetnsPair
from pypptp.host.tun import TunDevice
from pypptp.ppp.ccp import MppePolicy
from pypptp.ppp.lcp import AUTH_CHAP_MD5, AUTH_MSCHAP_V1, AUTH_MSCHAP_V2, AUTH_PAP
from tests.conftest import Pypptpd, icmp_echo
from tests.seed import SEED_OPTIONS as DEBIAN_SEED_OPTIONS

pytestmark = pytest.mark.netns

SEED_CONF = ["localip 192.168.0.1", "remoteip 192.168.0.234-238,192.168.0.245"]
SEED_OPTIONS = "# the seed's /etc/ppp/pptpd-options (Debian's, trimmed)\n" + DEBIAN_SEED_OPTIONS.replace(
    "proxyarp\n", ""
)
SECRETS = """# client server secret IP
alice pptpd s3cret *
bob pptpd "bob pw" 192.168.0.245
"""
RECORDER = """#!/bin/sh
out="{out}.$(basename "$0")"
printf '%s\\n' "$@" > "$out.argv.tmp" && mv "$out.argv.tmp" "$out.argv"
env | sort > "$out.env.tmp" && mv "$out.env.tmp" "$out.env"
"""
SERVER_IP = "192.168.0.1"


def run(*argv: str) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=False).stdout


def write_recorders(daemon: Pypptpd) -> Path:
    out = daemon.workdir / "script"
    for path in (daemon.ip_up, daemon.ip_down):
        path.write_text(RECORDER.format(out=out))
        path.chmod(0o755)
    return out


async def open_client(
    daemon: Pypptpd,
    user: str = "alice",
    password: str = "s3cret",
    *,
    tun: bool = True,
    auth: bytes = AUTH_MSCHAP_V2,
    mppe: MppePolicy | None = None,
    mru: int = 1400,
    source: str | None = None,
) -> PptpClientSession:
    """A client session from the client namespace (from ``source``, another of its addresses, if given)."""
    pair = daemon.pair
    gre = pair.socket(pair.client_ns, socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_GRE)
    if source is None:
        sock = pair.connect(pair.client_ns, daemon.address)
    else:
        sock = pair.socket(pair.client_ns)
        sock.bind((source, 0))
        sock.settimeout(5)
        sock.connect(daemon.address)
        sock.setblocking(False)
        gre.bind((source, 0))
    config = client_link_config(user, password, auth_methods=(auth,), mppe=mppe, mru=mru)
    return await PptpClientSession.connect(
        pair.server_ip,
        user=user,
        password=password,
        config=config,
        sock=sock,
        gre_sock=gre,
        attach_tun=tun,
        make_tun=lambda: TunDevice(netns=pair.client_ns),
        timeout=15,
    )


def interfaces(pair: NetnsPair) -> list[str]:
    return re.findall(r"^\d+: (ppp\d+)", run("ip", "-n", pair.server_ns, "-o", "link"), re.M)


def interfaces_after_close(pair: NetnsPair, timeout: float = 2.0) -> list[str]:
    """The pppN devices left once a session has ended: the daemon removes them off its event loop (the
    kernel takes ~18 ms per device), so they may outlive the log line by a few milliseconds."""
    deadline = time.monotonic() + timeout
    while (left := interfaces(pair)) and time.monotonic() < deadline:
        time.sleep(0.02)
    return left


def daemon_fds(daemon: Pypptpd) -> int:
    pid = int(daemon.pidfile.read_text())
    return len(os.listdir(f"/proc/{pid}/fd"))


def daemon_rss(daemon: Pypptpd) -> int:
    """The daemon's resident memory, KiB."""
    pid = int(daemon.pidfile.read_text())
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


# -- the seed configuration -----------------------------------------------------------------------


async def test_seed_configuration_end_to_end(start_pypptpd: Callable[..., Pypptpd]) -> None:
    daemon = start_pypptpd(SEED_CONF, secrets=SECRETS, options=SEED_OPTIONS)
    out = write_recorders(daemon)
    session = await open_client(daemon)
    pair = daemon.pair
    try:
        up = session.network
        assert up is not None
        assert (str(up.local_address), str(up.peer_address)) == ("192.168.0.234", SERVER_IP)
        assert [str(a) for a in up.dns] == ["8.8.8.8", "8.8.4.4"]
        assert up.mppe == "MPPE 128-bit stateless"
        assert up.mtu == 1496  # the server asks for no MRU: 1500, less MPPE's 4 bytes
        daemon.wait_log("Using interface ppp0")  # the server's side may finish IPCP a moment after ours
        server_link = run("ip", "-n", pair.server_ns, "-o", "link", "show", "ppp0")
        assert "mtu 1396" in server_link  # our client's MRU 1400 less 4, as pppd does with Windows
        await ping(pair)
        _, mss = await tcp_transfer(pair, 2_000_000)
        assert mss <= 1396 - 40
        daemon.wait_log("remote IP address 192.168.0.234")
        argv = (out.parent / "script.ip-up.argv").read_text().split("\n")
        assert (
            argv[0] == "ppp0" and argv[1].startswith(f"pptp/{pair.client_ip}/") and argv[2:4] == ["115200", SERVER_IP]
        )
        assert argv[4:6] == ["192.168.0.234", pair.client_ip]  # remote, then ipparam = the client's address
        env = (out.parent / "script.ip-up.env").read_text()
        for line in ("IFNAME=ppp0", f"IPLOCAL={SERVER_IP}", "IPREMOTE=192.168.0.234", "PEERNAME=alice"):
            assert line in env.splitlines()
    finally:
        await session.close()
    log = daemon.wait_log("Sent ")
    assert re.search(r"Sent \d{7,} bytes, received \d+ bytes\.", log) or re.search(r"received \d{7,} bytes", log)
    for _ in range(50):
        if (out.parent / "script.ip-down.env").exists():
            break
        await asyncio.sleep(0.1)
    down_env = (out.parent / "script.ip-down.env").read_text().splitlines()
    assert "IFNAME=ppp0" in down_env and any(line.startswith("BYTES_RCVD=") for line in down_env)
    assert interfaces_after_close(pair) == []
    assert "192.168.0" not in run("ip", "-n", pair.server_ns, "route")


async def test_static_address_from_chap_secrets(start_pypptpd: Callable[..., Pypptpd]) -> None:
    daemon = start_pypptpd(SEED_CONF, secrets=SECRETS, options=SEED_OPTIONS)
    session = await open_client(daemon, "bob", "bob pw", tun=False)
    try:
        assert session.network is not None and str(session.network.local_address) == "192.168.0.245"
    finally:
        await session.close()


# -- every auth method and MPPE mode --------------------------------------------------------------

MODES = {
    "mschapv2-mppe128": ("require-mschap-v2\nrequire-mppe-128\n", AUTH_MSCHAP_V2, MppePolicy()),
    "mschapv2-mppe40": ("require-mschap-v2\nrequire-mppe-40\n", AUTH_MSCHAP_V2, MppePolicy(strengths=(40,))),
    "mschapv2-stateful": (
        "require-mschap-v2\nrequire-mppe-128\nmppe-stateful\n",
        AUTH_MSCHAP_V2,
        MppePolicy(stateful=True),
    ),
    "mschapv1-mppe128": ("require-mschap\nrequire-mppe-128\n", AUTH_MSCHAP_V1, MppePolicy()),
    "chap-md5-clear": ("require-chap\nnomppe\n", AUTH_CHAP_MD5, MppePolicy(enabled=False, required=False)),
    "pap-clear": ("require-pap\nnomppe\n", AUTH_PAP, MppePolicy(enabled=False, required=False)),
}


@pytest.mark.parametrize("mode", list(MODES))
async def test_each_auth_method_and_mppe_mode_carries_ping_and_tcp(
    start_pypptpd: Callable[..., Pypptpd], mode: str
) -> None:
    options, method, policy = MODES[mode]
    daemon = start_pypptpd(SEED_CONF, secrets=SECRETS, options="name pptpd\n" + options)
    session = await open_client(daemon, auth=method, mppe=policy)
    try:
        assert session.network is not None
        expected = {"mschapv2-mppe40": "MPPE 40-bit stateless", "mschapv2-stateful": "MPPE 128-bit stateful"}
        assert session.network.mppe == expected.get(mode, "" if "clear" in mode else "MPPE 128-bit stateless")
        await ping(daemon.pair)
        await tcp_transfer(daemon.pair, 500_000)
    finally:
        await session.close()


async def test_wrong_password_is_refused_and_logged(start_pypptpd: Callable[..., Pypptpd]) -> None:
    daemon = start_pypptpd(SEED_CONF, secrets=SECRETS, options=SEED_OPTIONS)
    with pytest.raises(PptpClientError, match=r"[Aa]uthentication failed"):
        await open_client(daemon, "alice", "wrong", tun=False)
    daemon.wait_log("failed for 'alice'")
    assert interfaces_after_close(daemon.pair) == []


# -- many sessions, limits, teardown -----------------------------------------------------------------


async def test_twenty_concurrent_sessions_then_nothing_left(start_pypptpd: Callable[..., Pypptpd]) -> None:
    conf = ["localip 192.168.0.1", "remoteip 192.168.1.10-40", "connections 30"]
    daemon = start_pypptpd(conf, secrets=SECRETS, options=SEED_OPTIONS)
    await asyncio.sleep(0.2)
    fds_before = daemon_fds(daemon)
    sessions = await asyncio.gather(*(open_client(daemon, tun=False) for _ in range(20)))
    try:
        assert len({str(s.network.local_address) for s in sessions if s.network}) == 20
        assert sorted(interfaces(daemon.pair)) == sorted(f"ppp{n}" for n in range(20))
        for s in sessions:  # a ping from each session, answered by the server's kernel through its pppN
            assert s.network is not None
            assert s.send(icmp_echo(str(s.network.local_address), SERVER_IP))
        replies = await asyncio.wait_for(asyncio.gather(*(s.recv() for s in sessions)), 10)
        assert all(r[9] == 1 and r[20] == 0 for r in replies)  # ICMP, type 0: Echo-Reply
    finally:
        await asyncio.gather(*(s.close() for s in sessions))
    deadline = time.monotonic() + 10
    while (interfaces(daemon.pair) or daemon_fds(daemon) > fds_before) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    assert interfaces(daemon.pair) == []
    assert "192.168.1." not in run("ip", "-n", daemon.pair.server_ns, "route")
    assert daemon_fds(daemon) == fds_before
    assert daemon.log().count("Connection terminated.") == 20


async def test_pool_exhaustion_is_refused_cleanly(start_pypptpd: Callable[..., Pypptpd]) -> None:
    """Six slots, one of them (.245) pinned to bob in chap-secrets: bob gets his own address (a second
    bob is refused while it is in use), five sessions of alice fill the rest, a seventh session is
    refused once authenticated, with the reason in the log, and the addresses come back afterwards."""
    daemon = start_pypptpd(SEED_CONF, secrets=SECRETS, options=SEED_OPTIONS)
    sessions = [await open_client(daemon, "bob", "bob pw", tun=False)]
    try:
        with pytest.raises(PptpClientError):
            await open_client(daemon, "bob", "bob pw", tun=False)
        daemon.wait_log("address 192.168.0.245 is in use by another session")
        sessions += [await open_client(daemon, tun=False) for _ in range(5)]
        addresses = sorted(str(s.network.local_address) for s in sessions if s.network)
        assert addresses == [f"192.168.0.{n}" for n in (234, 235, 236, 237, 238, 245)]
        with pytest.raises(PptpClientError):
            await open_client(daemon, tun=False)
        daemon.wait_log("connection limit 6 reached")
    finally:
        for s in sessions:
            await s.close()
    again = await open_client(daemon, tun=False)  # addresses come back to the pool
    await again.close()


async def test_connections_limits_authenticated_sessions(start_pypptpd: Callable[..., Pypptpd]) -> None:
    """``connections 2`` (pool of 5): two sessions up, a third authenticates and is refused, its address
    never lent; after one ends, a new one comes up."""
    daemon = start_pypptpd([*SEED_CONF, "connections 2"], secrets=SECRETS, options=SEED_OPTIONS)
    sessions = [await open_client(daemon, tun=False) for _ in range(2)]
    try:
        with pytest.raises(PptpClientError):
            await open_client(daemon, tun=False)
        daemon.wait_log("connection limit 2 reached")
        await sessions.pop().close()
        sessions.append(await open_client(daemon, tun=False))
    finally:
        for s in sessions:
            await s.close()


# -- signals ----------------------------------------------------------------------------------------


async def test_sighup_rereads_secrets_for_new_sessions(start_pypptpd: Callable[..., Pypptpd]) -> None:
    daemon = start_pypptpd(SEED_CONF, secrets=SECRETS, options=SEED_OPTIONS)
    first = await open_client(daemon, tun=False)
    with pytest.raises(PptpClientError):
        await open_client(daemon, "carol", "carol pw", tun=False)
    daemon.secrets.write_text(SECRETS + "carol pptpd 'carol pw' *\n")
    daemon.process.send_signal(signal.SIGHUP)
    daemon.wait_log("SIGHUP: secrets and pppd options re-read")
    carol = await open_client(daemon, "carol", "carol pw", tun=False)
    assert first.ppp is not None and not first.ppp.closed  # the running session carried on
    await carol.close()
    await first.close()


async def test_chap_secrets_changes_apply_at_the_next_authentication(start_pypptpd: Callable[..., Pypptpd]) -> None:
    """As pppd, which reads chap-secrets at every authentication: removing a user takes effect at once,
    with no SIGHUP; a running session carries on; a broken edit keeps the previous secrets."""
    daemon = start_pypptpd(SEED_CONF, secrets=SECRETS, options=SEED_OPTIONS)
    first = await open_client(daemon, tun=False)
    daemon.secrets.write_text(SECRETS.replace("alice pptpd s3cret *\n", ""))
    with pytest.raises(PptpClientError):
        await open_client(daemon, tun=False)
    daemon.secrets.write_text(SECRETS + 'carol pptpd "unterminated\n')
    with pytest.raises(PptpClientError):  # the broken file is not used: still the secrets without alice
        await open_client(daemon, tun=False)
    daemon.wait_log("unterminated")
    daemon.secrets.write_text(SECRETS)
    again = await open_client(daemon, tun=False)
    assert first.ppp is not None and not first.ppp.closed
    await again.close()
    await first.close()
    assert "keeping the previous secrets" in daemon.log()


async def test_sigterm_terminates_sessions_then_exits(start_pypptpd: Callable[..., Pypptpd]) -> None:
    daemon = start_pypptpd(SEED_CONF, secrets=SECRETS, options=SEED_OPTIONS)
    session = await open_client(daemon, tun=False)
    daemon.process.send_signal(signal.SIGTERM)
    reason = await asyncio.wait_for(session.wait_closed(), 10)
    assert reason == "LCP terminated by peer"
    await session.close()
    assert await asyncio.get_running_loop().run_in_executor(None, daemon.process.wait, 10) == 0
    assert "MGR: Exit." in daemon.log()
    assert interfaces(daemon.pair) == []


# -- pppd options the daemon applies ------------------------------------------------------------------


async def test_proxyarp_publishes_the_client_on_the_lan(start_pypptpd: Callable[..., Pypptpd]) -> None:
    daemon = start_pypptpd(SEED_CONF, secrets=SECRETS, options=SEED_OPTIONS + "proxyarp\n")
    ns = daemon.pair.server_ns
    for command in (  # a LAN on 192.168.0.0/24 inside the server namespace
        ["link", "add", "lan0", "type", "veth", "peer", "name", "lan1"],
        ["addr", "add", "192.168.0.2/24", "dev", "lan0"],
        ["link", "set", "lan0", "up"],
    ):
        subprocess.run(["ip", "-n", ns, *command], check=True)
    session = await open_client(daemon, tun=False)
    try:
        daemon.wait_log("proxy ARP entry for 192.168.0.234 on lan0")
        assert "192.168.0.234 dev lan0 proxy" in run("ip", "-n", ns, "neigh", "show", "proxy")
    finally:
        await session.close()
    daemon.wait_log("Connection terminated.")
    assert "192.168.0.234" not in run("ip", "-n", ns, "neigh", "show", "proxy")


@pytest.mark.parametrize(
    ("option", "logged"), [("idle 1", "lack of activity"), ("maxconnect 1", "Connect time expired")]
)
async def test_idle_and_maxconnect_end_the_session(
    start_pypptpd: Callable[..., Pypptpd], option: str, logged: str
) -> None:
    daemon = start_pypptpd(SEED_CONF, secrets=SECRETS, options=SEED_OPTIONS + option + "\n")
    session = await open_client(daemon, tun=False)
    reason = await asyncio.wait_for(session.wait_closed(), 10)
    assert reason == "LCP terminated by peer"
    await session.close()
    daemon.wait_log(logged)


@pytest.mark.parametrize("how", ["rst", "ccrq-then-close"])
async def test_tcp_loss_or_pptp_linux_style_hangup_releases_everything(
    start_pypptpd: Callable[..., Pypptpd], how: str
) -> None:
    """pptp-linux sends CCRQ and closes TCP at once; a crashed client just disappears (RST)."""
    daemon = start_pypptpd(SEED_CONF, secrets=SECRETS, options=SEED_OPTIONS)
    session = await open_client(daemon, tun=False)
    daemon.wait_log("Using interface ppp0")
    if how == "ccrq-then-close":
        session.control.connection.clear_call(session.call.call_id, asyncio.get_running_loop().time())
        session.control._protocol.flush()  # type: ignore[union-attr]
    session.control.close()  # no StopCCRQ, no LCP: the TCP connection is simply gone
    await asyncio.sleep(0.2)  # let our loop actually close the socket (wait_log blocks it)
    daemon.wait_log("Connection terminated.")
    assert interfaces_after_close(daemon.pair) == []
    assert "192.168.0.234" not in run("ip", "-n", daemon.pair.server_ns, "route")
    if session.ppp is not None:
        session.ppp.close("test over")
    session.transport.close()
    again = await open_client(daemon, tun=False)  # the address and the unit are free again
    assert again.network is not None and str(again.network.local_address) == "192.168.0.234"
    await again.close()


async def test_a_full_gre_window_pauses_the_tun_reader_instead_of_dropping(
    start_pypptpd: Callable[..., Pypptpd],
) -> None:
    """RFC 2637 section 4.2: with a 2-packet window the client keeps packets in its TUN queue until an
    ack opens the window; read and dropped, TCP would take them for loss."""
    daemon = start_pypptpd(SEED_CONF, secrets=SECRETS, options=SEED_OPTIONS)
    session = await open_client(daemon)
    try:
        assert session.gre is not None and session.ppp is not None
        sequencer = session.gre.seq
        sequencer.peer_window = sequencer.window = 2
        elapsed, _ = await tcp_transfer(daemon.pair, 1_000_000)
        assert elapsed < 20
        assert session.ppp.stats.tun_pauses > 0, "the window never filled: the test proves nothing"
        assert session.ppp.stats.send_refused == 0
        assert sequencer.counters.ack_timeouts == 0
    finally:
        await session.close()
