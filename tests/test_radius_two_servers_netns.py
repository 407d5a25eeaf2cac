"""Past one server: two pypptpd servers share one FreeRADIUS and its one address pool (sqlippool).

Four namespaces: the clients' host, two PPTP servers (each reached on its own link, as DNS round-robin
or ECMP would spread clients), and the RADIUS host both servers reach over links of their own::

    cli 198.18.1.2 --- 198.18.1.1 srv1 198.18.3.1 --- 198.18.3.2 rad
    cli 198.18.2.2 --- 198.18.2.1 srv2 198.18.4.1 --- 198.18.4.2 rad

Clients connect to both servers at once; every tunnel address comes from the one pool and none is given
twice; accounting from both servers lands in FreeRADIUS's one detail file, told apart by NAS-IP-Address;
when the sessions end, every lease is free again.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pypptp.client.tunnel import PptpClientSession
from pypptp.host.netns import NetnsPair, link, namespaces
from tests.conftest import Pypptpd, require_tools, tunnel_ping
from tests.freeradius import FreeRadius, RadiusClient, RadiusUser
from tests.test_daemon_netns import open_client
from tests.test_radius_netns import POOL, SECRET, radius_files

USERS = [RadiusUser(f"user{i}", f"pass-{i}", {"Acct-Interim-Interval": 60}) for i in range(8)]
PER_SERVER = 4


@pytest.fixture
def four_hosts(require_netns: None) -> Iterator[dict[str, str]]:
    base = f"pypptp-two-{os.getpid()}"
    names = {role: f"{base}-{role}" for role in ("cli", "srv1", "srv2", "rad")}
    with namespaces(*names.values()):
        link(names["cli"], "198.18.1.2", names["srv1"], "198.18.1.1", "veth1")
        link(names["cli"], "198.18.2.2", names["srv2"], "198.18.2.1", "veth2")
        link(names["srv1"], "198.18.3.1", names["rad"], "198.18.3.2", "veth3")
        link(names["srv2"], "198.18.4.1", names["rad"], "198.18.4.2", "veth4")
        # srv2 reaches the RADIUS server's address (198.18.3.2) through its own link
        subprocess.run(["ip", "-n", names["srv2"], "route", "add", "198.18.3.0/24", "via", "198.18.4.2"], check=True)
        yield names


def test_two_servers_share_one_radius_pool_and_one_accounting(
    four_hosts: dict[str, str], start_freeradius: Callable[..., FreeRadius], tmp_path: Path
) -> None:
    require_tools("freeradius")
    radius = start_freeradius(
        four_hosts["rad"],
        "198.18.3.2",
        users=USERS,
        clients=[RadiusClient("198.18.3.1", SECRET), RadiusClient("198.18.4.1", SECRET)],
        pool=POOL,
        pool_key="%{Acct-Session-Id}",
    )
    daemons: list[Pypptpd] = []
    try:
        for number in (1, 2):
            pair = NetnsPair(four_hosts[f"srv{number}"], four_hosts["cli"], f"198.18.{number}.1", f"198.18.{number}.2")
            workdir = tmp_path / f"srv{number}"
            workdir.mkdir()
            options = "name pptpd\nrequire-mschap-v2\nrequire-mppe-128\n"
            options += radius_files(workdir / "radius", "198.18.3.2", dae=False)
            conf = [f"listen {pair.server_ip}", "localip 192.168.0.1", "remoteip 192.168.0.234-238"]
            daemon = Pypptpd(pair, workdir, conf, ["-d"], secrets="", options=options)
            daemons.append(daemon)
            daemon.wait_listening()

        async def scenario() -> list[str]:
            async def one(daemon: Pypptpd, user: RadiusUser) -> PptpClientSession:
                return await open_client(daemon, user.name, user.password, tun=False)

            clients = [(daemons[i % 2], user) for i, user in enumerate(USERS)]
            sessions = await asyncio.gather(*(one(d, u) for d, u in clients))
            try:
                addresses = []
                for session in sessions:
                    assert session.network is not None
                    addresses.append(str(session.network.local_address))
                    assert await tunnel_ping(session, "192.168.0.1")
                return addresses
            finally:
                await asyncio.gather(*(s.close() for s in sessions))

        addresses = asyncio.run(scenario())
        assert len(addresses) == len(USERS) == 2 * PER_SERVER
        assert len(set(addresses)) == len(addresses), addresses  # no address given twice across the servers
        assert set(addresses) <= set(radius.pool_addresses)
        records = radius.wait_accounting(2 * len(USERS), timeout=15)
        starts = [r for r in records if r["Acct-Status-Type"] == "Start"]
        stops = [r for r in records if r["Acct-Status-Type"] == "Stop"]
        assert len(starts) == len(stops) == len(USERS)
        by_nas = {nas: sorted(r["User-Name"] for r in starts if r["NAS-IP-Address"] == nas)
                  for nas in ("198.18.1.1", "198.18.2.1")}  # fmt: skip
        assert by_nas == {
            "198.18.1.1": [u.name for u in USERS[0::2]],
            "198.18.2.1": [u.name for u in USERS[1::2]],
        }
        assert sorted(r["Framed-IP-Address"] for r in starts) == sorted(addresses)
        assert len({r["Acct-Session-Id"] for r in starts}) == len(USERS)
        for daemon in daemons:
            daemon.wait_log("session summary", timeout=5)
        deadline_leases = radius.leased()
        assert deadline_leases == {}, deadline_leases  # the Stops gave every address back
    finally:
        for daemon in daemons:
            with contextlib.suppress(Exception):
                daemon.terminate()
