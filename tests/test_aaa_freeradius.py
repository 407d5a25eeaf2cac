"""pypptp.aaa.radius against a real FreeRADIUS (Debian's freeradius 3.2, tests/freeradius.py's harness).

FreeRADIUS runs in namespace ``rad`` on 198.18.0.1; our client runs in namespace ``nas`` (198.18.0.2): the
client's event loop lives in a thread that has entered that namespace (``run_in_netns``), so its sockets
are the NAS's.  The configuration is read from radiusclient.conf text and a servers file, as pppd's
plugin reads them.  MS-CHAP answers are checked against our own RFC 2759/3079 code: the MS-MPPE keys
FreeRADIUS returns must equal the server's keys :mod:`pypptp.ppp.mppe` derives for the same exchange."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import os
import secrets
import time
from collections.abc import Awaitable, Callable, Iterator
from ipaddress import IPv4Address
from pathlib import Path
from typing import TypeVar

import pytest

from pypptp.aaa.radius import RadiusClient, RadiusReply, to_verdict
from pypptp.conf.radiusclient import RadiusConfig, parse_radiusclient_conf, read_radiusclient_conf
from pypptp.host.netns import link, namespaces, run_in_netns
from pypptp.ppp import crypto, mppe
from pypptp.ppp.auth import MsChapKeys
from tests.conftest import need_netns, require_tools
from tests.freeradius import FreeRadius, RadiusUser, running
from tests.freeradius import RadiusClient as AllowedNas
from tests.test_aaa_radius import Req

pytestmark = pytest.mark.netns

SERVER, NAS = "198.18.0.1", "198.18.0.2"
SECRET = "nas-secret"
POOL = ("192.168.110.10", "192.168.110.29")
USERS = [
    RadiusUser("alice", "s3cret", {"Session-Timeout": 3600, "Acct-Interim-Interval": 60, "Class": "gold"}),
    RadiusUser("bob", "hunter2", {"Idle-Timeout": 300, "Framed-MTU": 1400}),
]
CONF = f"""\
auth_order	radius
authserver	{SERVER}
acctserver	{SERVER}
servers		servers
dictionary	/etc/radiusclient/dictionary
radius_timeout	1
radius_retries	2
"""

_R = TypeVar("_R")


class Topology:
    def __init__(self) -> None:
        base = f"pypptp-fra-{os.getpid()}"
        self.radius, self.nas = f"{base}-rad", f"{base}-nas"


@pytest.fixture(scope="module")
def topology() -> Iterator[Topology]:
    need_netns()
    require_tools("freeradius")
    topo = Topology()
    with namespaces(topo.radius, topo.nas):
        link(topo.radius, SERVER, topo.nas, NAS, "veth1")
        yield topo


@pytest.fixture(scope="module")
def server(topology: Topology, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FreeRadius]:
    workdir = tmp_path_factory.mktemp("freeradius")
    radius = FreeRadius(topology.radius, SERVER, workdir, users=USERS, clients=[AllowedNas(NAS, SECRET)], pool=POOL)
    with radius:
        yield radius


@pytest.fixture
def radius(server: FreeRadius) -> Iterator[FreeRadius]:
    """The shared server, running (a test that stops it has it back)."""
    yield from running(server)


def config() -> RadiusConfig:
    return parse_radiusclient_conf(CONF, "radiusclient.conf", servers_text=f"{SERVER}\t{SECRET}\n")


def as_nas(topology: Topology, scenario: Callable[[RadiusClient], Awaitable[_R]]) -> _R:
    """Run ``scenario(client)`` on an event loop of the NAS namespace, the client closed afterwards."""

    async def main() -> _R:
        client = RadiusClient(config())
        try:
            return await scenario(client)
        finally:
            await client.close()

    return run_in_netns(topology.nas, lambda: asyncio.run(main()))


def pool_addresses() -> set[IPv4Address]:
    first, last = (int(IPv4Address(a)) for a in POOL)
    return {IPv4Address(n) for n in range(first, last + 1)}


def mschap_v2(user: bytes, password: str, identifier: int = 7) -> tuple[Req, bytes]:
    """A v2 request as the PPP core hands it up (the peer's 49-byte Response Value), and its peer challenge."""
    challenge, peer_challenge = secrets.token_bytes(16), secrets.token_bytes(16)
    nt_response = crypto.generate_nt_response(challenge, peer_challenge, user, password)
    return Req(
        "MS-CHAP-V2", user, identifier, challenge, peer_challenge + bytes(8) + nt_response + b"\x00"
    ), peer_challenge


def test_pap_accept_carries_the_users_attributes_and_a_pool_address(radius: FreeRadius, topology: Topology) -> None:
    async def scenario(client: RadiusClient) -> tuple[RadiusReply, RadiusReply]:
        good = await client.authenticate(
            Req("PAP", b"alice", 0, b"", b"s3cret"), nas_port=3, calling_station_id="203.0.113.3"
        )
        bad = await client.authenticate(Req("PAP", b"alice", 0, b"", b"wrong"), nas_port=4)
        return good, bad

    good, bad = as_nas(topology, scenario)
    assert good.accepted, radius.log()
    assert good.server == f"{SERVER}:1812" and good.framed_ip_address in pool_addresses()
    assert (good.session_timeout, good.acct_interim_interval, good.classes) == (3600, 60, (b"gold",))
    assert to_verdict(good, Req("PAP", b"alice", 0, b"", b"s3cret")).ok
    assert bad.answered and not bad.accepted and bad.reason == f"Access-Reject from {SERVER}:1812"


def test_chap_md5(radius: FreeRadius, topology: Topology) -> None:
    challenge = secrets.token_bytes(16)

    def chap(password: bytes) -> Req:
        return Req("CHAP-MD5", b"bob", 5, challenge, hashlib.md5(b"\x05" + password + challenge).digest())

    async def scenario(client: RadiusClient) -> tuple[RadiusReply, RadiusReply]:
        return await client.authenticate(chap(b"hunter2")), await client.authenticate(chap(b"hunter3"))

    good, bad = as_nas(topology, scenario)
    assert good.accepted, radius.log()
    assert (good.idle_timeout, good.framed_mtu) == (300, 1400)
    assert bad.answered and not bad.accepted


def test_mschap_v1_keys_are_md4_of_the_nt_hash(radius: FreeRadius, topology: Topology) -> None:
    challenge = secrets.token_bytes(8)
    nt_response = crypto.mschap1_nt_response(challenge, "s3cret")
    request = Req("MS-CHAP", b"alice", 11, challenge, bytes(24) + nt_response + b"\x01")

    reply = as_nas(topology, lambda client: client.authenticate(request))
    assert reply.accepted, radius.log()
    password_hash_hash = crypto.hash_nt_password_hash(crypto.nt_password_hash("s3cret"))
    assert reply.ms_chap_mppe_keys == bytes(8) + password_hash_hash  # FreeRADIUS 3.2 sends no LM key
    assert (reply.mppe_policy, reply.mppe_types) == (2, 4)  # required, 128-bit
    verdict = to_verdict(reply, request)
    assert verdict.ok and verdict.keys == MsChapKeys(1, b"", password_hash_hash, nt_response, challenge, None)


def test_mschap_v2_success_and_mppe_keys_are_what_rfc_3079_derives(radius: FreeRadius, topology: Topology) -> None:
    request, peer_challenge = mschap_v2(b"alice", "s3cret")
    reply = as_nas(topology, lambda client: client.authenticate(request, nas_port=7))
    assert reply.accepted, radius.log()
    password_hash = crypto.nt_password_hash("s3cret")
    nt_response = request.response[24:48]
    expected = crypto.generate_authenticator_response(
        password_hash, nt_response, peer_challenge, request.challenge, b"alice"
    )
    assert reply.ms_chap2_success == expected
    master = mppe.get_master_key(crypto.hash_nt_password_hash(password_hash), nt_response)
    assert reply.mppe_send_key == mppe.get_asymmetric_start_key(master, 16, send=True, server=True)
    assert reply.mppe_recv_key == mppe.get_asymmetric_start_key(master, 16, send=False, server=True)
    assert (reply.mppe_policy, reply.mppe_types) == (2, 4)
    verdict = to_verdict(reply, request)
    assert verdict.ok and verdict.message == expected.encode()
    fields = {field.name for field in dataclasses.fields(MsChapKeys)}
    if "send_key" in fields:  # the core's MsChapKeys carries the AAA server's keys
        assert verdict.keys is not None
        assert (verdict.keys.send_key, verdict.keys.recv_key) == (reply.mppe_send_key, reply.mppe_recv_key)


def test_mschap_v2_wrong_password_is_rejected_with_ms_chap_error(radius: FreeRadius, topology: Topology) -> None:
    request, _ = mschap_v2(b"alice", "not-it", identifier=9)
    reply = as_nas(topology, lambda client: client.authenticate(request))
    assert reply.answered and not reply.accepted
    assert reply.ms_chap_error is not None and reply.ms_chap_error.startswith("E=691"), reply
    verdict = to_verdict(reply, request)
    assert not verdict.ok and verdict.message == reply.ms_chap_error.encode()


def test_accounting_start_interim_stop_land_in_the_detail_file(radius: FreeRadius, topology: Topology) -> None:
    session = secrets.token_hex(4).upper()
    common: list[tuple[str, object]] = [
        ("Acct-Session-Id", session),
        ("User-Name", "alice"),
        ("NAS-Port", 3),
        ("NAS-Port-Type", "Virtual"),
        ("Calling-Station-Id", "203.0.113.3"),
        ("Framed-IP-Address", POOL[0]),
        ("Class", b"gold"),
    ]
    stop: list[tuple[str, object]] = [
        ("Acct-Input-Octets", 1234),
        ("Acct-Output-Octets", 5678),
        ("Acct-Input-Gigawords", 1),
        ("Acct-Session-Time", 42),
        ("Acct-Terminate-Cause", "User-Request"),
    ]
    before = len(radius.accounting_records())

    async def scenario(client: RadiusClient) -> list[bool]:
        return [
            await client.account([("Acct-Status-Type", "Start"), *common]),
            await client.account([("Acct-Status-Type", "Interim-Update"), *common, ("Acct-Session-Time", 21)]),
            await client.account([("Acct-Status-Type", "Stop"), *common, *stop]),
        ]

    assert as_nas(topology, scenario) == [True, True, True], radius.log()
    start, interim, last = radius.wait_accounting(before + 3)[before:]
    assert [r["Acct-Status-Type"] for r in (start, interim, last)] == ["Start", "Interim-Update", "Stop"]
    for record in (start, interim, last):
        assert record["Acct-Session-Id"] == session and record["User-Name"] == "alice"
        assert record["NAS-IP-Address"] == NAS and record["NAS-Port-Type"] == "Virtual"
        assert record["Class"] == "0x676f6c64" and record["Acct-Delay-Time"] == "0"
    assert (last["Acct-Input-Octets"], last["Acct-Output-Octets"], last["Acct-Input-Gigawords"]) == (
        "1234",
        "5678",
        "1",
    )
    assert last["Acct-Terminate-Cause"] == "User-Request" and last["Acct-Session-Time"] == "42"


def test_stopped_server_gives_a_clean_failure_and_recovery(radius: FreeRadius, topology: Topology) -> None:
    request = Req("PAP", b"bob", 0, b"", b"hunter2")
    radius.stop()
    started = time.monotonic()
    down = as_nas(topology, lambda client: client.authenticate(request))
    elapsed = time.monotonic() - started
    assert not down.answered and down.reason == f"no answer from {SERVER}:1812 (2 tries each, 1 s apart)"
    assert 1.8 < elapsed < 5
    radius.start()
    up = as_nas(topology, lambda client: client.authenticate(request))
    assert up.accepted, radius.log()


def test_radiusclient_conf_files_from_disk(tmp_path: Path) -> None:
    """The same configuration read from files, as the daemon will."""
    (tmp_path / "servers").write_text(f"{SERVER} {SECRET}\n")
    (tmp_path / "servers").chmod(0o600)
    conf = tmp_path / "radiusclient.conf"
    conf.write_text(CONF.replace("servers\t\tservers", f"servers\t\t{tmp_path / 'servers'}"))
    read = read_radiusclient_conf(str(conf))
    expected = [(SERVER, 1812, SECRET.encode()), (SERVER, 1813, SECRET.encode())]
    assert [(s.host, s.port, s.secret) for s in (*read.auth_servers, *read.acct_servers)] == expected
