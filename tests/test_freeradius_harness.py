"""The FreeRADIUS harness (tests/freeradius.py) against FreeRADIUS's own client tools, radclient and radtest.

These are the harness's smoke tests: before pypptpd's RADIUS backend trusts what this server says, the
server must be shown to say it to a client that is not ours.  One server (module fixture: it starts in a
quarter of a second, but the namespaces and pool are worth sharing) in namespace ``radius``, answering on
198.18.0.1; two NAS namespaces, each a client with its own secret: ``nas1`` (198.18.0.2, same link) and
``nas2`` (198.18.1.2, a second link, routed to 198.18.0.1 through the radius namespace)."""

from __future__ import annotations

import ipaddress
import os
import secrets
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pypptp.host.netns import NetnsPair, link, namespaces
from pypptp.ppp import crypto, mppe
from tests.conftest import need_netns, require_tools
from tests.freeradius import FreeRadius, RadiusClient, RadiusUser, parse_detail, running

SERVER = "198.18.0.1"
NAS1, NAS2 = "198.18.0.2", "198.18.1.2"
SECRET1, SECRET2 = "nas1-secret", "nas2-secret"
POOL = ("192.168.100.10", "192.168.100.29")
USERS = [
    RadiusUser("alice", "s3cret", {"Session-Timeout": 3600, "Acct-Interim-Interval": 60, "Class": "gold"}),
    RadiusUser("bob", "hunter2"),
    RadiusUser("carol", "c4rol", {"Idle-Timeout": 300}),
]


class Topology:
    def __init__(self, base: str) -> None:
        self.radius, self.nas1, self.nas2 = f"{base}-rad", f"{base}-nas1", f"{base}-nas2"
        self.nas = {NAS1: (self.nas1, SECRET1), NAS2: (self.nas2, SECRET2)}


@pytest.fixture(scope="module")
def topology() -> Iterator[Topology]:
    need_netns()
    require_tools("freeradius", "radclient", "radtest")
    topo = Topology(f"pypptp-frh-{os.getpid()}")
    with namespaces(topo.radius, topo.nas1, topo.nas2):
        link(topo.radius, SERVER, topo.nas1, NAS1, "veth1")
        link(topo.radius, "198.18.1.1", topo.nas2, NAS2, "veth2")
        subprocess.run(["ip", "-n", topo.nas2, "route", "add", f"{SERVER}/32", "via", "198.18.1.1"], check=True)
        yield topo


@pytest.fixture(scope="module")
def server(topology: Topology, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FreeRadius]:
    workdir = tmp_path_factory.mktemp("freeradius")
    clients = [RadiusClient(NAS1, SECRET1), RadiusClient(f"{NAS2}/32", SECRET2)]
    radius = FreeRadius(topology.radius, SERVER, workdir, users=USERS, clients=clients, pool=POOL)
    with radius:
        yield radius


@pytest.fixture
def radius(server: FreeRadius) -> Iterator[FreeRadius]:
    """The shared server, running (a test that stops it has it back), and its log shown on failure."""
    yield from running(server)


Reply = tuple[str | None, dict[str, str]]


def radclient(
    topology: Topology,
    nas: str,
    kind: str,
    attributes: dict[str, str | int],
    *,
    secret: str | None = None,
    signed: bool = True,
    timeout: float = 2.0,
) -> Reply:
    """One request with radclient from namespace of ``nas``: (reply code name or None, reply attributes as
    radclient prints them, string quotes removed)."""
    ns, nas_secret = topology.nas[nas]
    pairs = [f"{name} = {value}" for name, value in attributes.items()]
    if signed and kind == "auth":
        pairs.append("Message-Authenticator = 0x00")  # radclient computes it
    argv = ["radclient", "-x", "-t", str(timeout), "-r", "1", f"{SERVER}:{1812 if kind == 'auth' else 1813}"]
    argv += [kind, secret or nas_secret]
    result = subprocess.run(
        ["ip", "netns", "exec", ns, *argv], input=",".join(pairs) + "\n", capture_output=True, text=True, timeout=30
    )
    return parse_radclient(result.stdout)


def parse_radclient(output: str) -> Reply:
    code: str | None = None
    attrs: dict[str, str] = {}
    in_reply = False
    for line in output.splitlines():
        if line.startswith("Received "):
            code, in_reply = line.split()[1], True
        elif line.startswith("Sent "):
            in_reply = False
        elif in_reply and line.startswith("\t"):
            name, _, value = line.strip().partition(" = ")
            attrs[name] = value.strip('"')
    return code, attrs


def octets(value: str) -> bytes:
    assert value.startswith("0x"), value
    return bytes.fromhex(value[2:])


def pool_addresses() -> set[str]:
    first, last = (int(ipaddress.IPv4Address(a)) for a in POOL)
    return {str(ipaddress.IPv4Address(n)) for n in range(first, last + 1)}


def login(topology: Topology, nas: str, user: str, password: str, port: int, calling: str) -> Reply:
    return radclient(
        topology,
        nas,
        "auth",
        {
            "User-Name": f'"{user}"',
            "User-Password": f'"{password}"',
            "NAS-IP-Address": nas,
            "NAS-Port": port,
            "Calling-Station-Id": f'"{calling}"',
        },
    )


def test_pap_accept_carries_an_address_from_the_pool_and_the_users_attributes(
    radius: FreeRadius, topology: Topology
) -> None:
    code, reply = login(topology, NAS1, "alice", "s3cret", 1, "203.0.113.1")
    assert code == "Access-Accept", radius.log()
    assert reply["Framed-IP-Address"] in pool_addresses()
    assert reply["Session-Timeout"] == "3600" and reply["Acct-Interim-Interval"] == "60"
    assert octets(reply["Class"]) == b"gold"
    assert "Message-Authenticator" in reply  # radclient checked it: it drops a reply with a wrong one
    assert radius.leased()[reply["Framed-IP-Address"]] == "alice"
    [row] = [row for row in radius.leases() if row["framedipaddress"] == reply["Framed-IP-Address"]]
    assert (row["nasipaddress"], row["pool_key"], row["callingstationid"]) == (NAS1, "1", "203.0.113.1")


def test_two_nas_clients_get_distinct_addresses_from_the_one_pool(radius: FreeRadius, topology: Topology) -> None:
    """Both NAS use unit 2 (each its own ppp2): the pool keys on NAS-IP-Address and NAS-Port together."""
    code1, reply1 = login(topology, NAS1, "bob", "hunter2", 2, "203.0.113.2")
    code2, reply2 = login(topology, NAS2, "bob", "hunter2", 2, "203.0.113.3")
    assert code1 == code2 == "Access-Accept", radius.log()
    assert reply1["Framed-IP-Address"] != reply2["Framed-IP-Address"]
    leased = radius.leased()
    assert {reply1["Framed-IP-Address"], reply2["Framed-IP-Address"]} <= set(leased)
    by_address = {row["framedipaddress"]: row["nasipaddress"] for row in radius.leases()}
    assert by_address[reply1["Framed-IP-Address"]] == NAS1 and by_address[reply2["Framed-IP-Address"]] == NAS2


def test_a_wrong_password_is_rejected_signed_and_leases_nothing(radius: FreeRadius, topology: Topology) -> None:
    before = radius.leased()
    code, reply = login(topology, NAS1, "alice", "wrong", 3, "203.0.113.4")
    assert code == "Access-Reject"
    assert "Framed-IP-Address" not in reply and "Message-Authenticator" in reply
    code, _ = login(topology, NAS1, "nobody", "s3cret", 3, "203.0.113.4")
    assert code == "Access-Reject"
    assert radius.leased() == before


def test_an_access_request_without_message_authenticator_gets_no_answer(radius: FreeRadius, topology: Topology) -> None:
    """BlastRADIUS: require_message_authenticator drops it, with no reply at all (3.2.1 says why only at
    debug level, ``-X``: "Packet does not contain required Message-Authenticator attribute"); the same
    request signed is answered."""
    attributes: dict[str, str | int] = {"User-Name": '"alice"', "User-Password": '"s3cret"', "NAS-Port": 4}
    code, _ = radclient(topology, NAS1, "auth", attributes, signed=False, timeout=1)
    assert code is None
    code, _ = radclient(topology, NAS1, "auth", attributes)
    assert code == "Access-Accept", radius.log()


def test_a_wrong_secret_gets_no_answer(radius: FreeRadius, topology: Topology) -> None:
    attributes: dict[str, str | int] = {"User-Name": '"alice"', "User-Password": '"s3cret"', "NAS-Port": 4}
    code, _ = radclient(topology, NAS1, "auth", attributes, secret=SECRET2, timeout=1)
    assert code is None


def test_accounting_start_interim_and_stop_land_in_the_detail_file_and_stop_frees_the_lease(
    radius: FreeRadius, topology: Topology
) -> None:
    code, reply = login(topology, NAS2, "carol", "c4rol", 5, "203.0.113.5")
    assert code == "Access-Accept", radius.log()
    address = reply["Framed-IP-Address"]
    assert reply["Idle-Timeout"] == "300"
    session = secrets.token_hex(4).upper()
    common: dict[str, str | int] = {
        "User-Name": '"carol"',
        "NAS-IP-Address": NAS2,
        "NAS-Port": 5,
        "NAS-Port-Type": "Virtual",
        "Calling-Station-Id": '"203.0.113.5"',
        "Framed-IP-Address": address,
        "Acct-Session-Id": f'"{session}"',
        "Class": "0x676f6c64",
    }
    before = len(radius.accounting_records())
    code, _ = radclient(topology, NAS2, "acct", {**common, "Acct-Status-Type": "Start"})
    assert code == "Accounting-Response", radius.log()
    interim: dict[str, str | int] = {"Acct-Status-Type": "Interim-Update", "Acct-Input-Octets": 100}
    code, _ = radclient(topology, NAS2, "acct", {**common, **interim})
    assert code == "Accounting-Response", radius.log()
    assert address in radius.leased()
    stop: dict[str, str | int] = {"Acct-Status-Type": "Stop", "Acct-Input-Octets": 1234, "Acct-Output-Octets": 5678}
    stop |= {"Acct-Input-Gigawords": 1, "Acct-Session-Time": 42, "Acct-Terminate-Cause": "User-Request"}
    code, _ = radclient(topology, NAS2, "acct", {**common, **stop})
    assert code == "Accounting-Response", radius.log()
    start_record, interim_record, stop_record = radius.wait_accounting(before + 3)[before:]
    assert [r["Acct-Status-Type"] for r in (start_record, interim_record, stop_record)] == [
        "Start",
        "Interim-Update",
        "Stop",
    ]
    assert interim_record["Acct-Input-Octets"] == "100"
    for record in (start_record, interim_record, stop_record):
        assert record["Acct-Session-Id"] == session and record["User-Name"] == "carol"
        assert record["Framed-IP-Address"] == address and record["NAS-IP-Address"] == NAS2
        assert record["NAS-Port-Type"] == "Virtual" and record["Class"] == "0x676f6c64"
    assert (stop_record["Acct-Input-Octets"], stop_record["Acct-Output-Octets"]) == ("1234", "5678")
    assert stop_record["Acct-Input-Gigawords"] == "1" and stop_record["Acct-Terminate-Cause"] == "User-Request"
    assert address not in radius.leased()
    [row] = [row for row in radius.leases() if row["framedipaddress"] == address]
    assert row["username"] == "carol"  # released, not forgotten: expired now, free for the next allocation


def test_chap_md5_is_accepted_and_a_wrong_one_rejected(radius: FreeRadius, topology: Topology) -> None:
    """radclient builds CHAP-Password itself (RFC 2865 5.3: ident, MD5(ident + password + CHAP-Challenge))
    from the cleartext it is given: a pre-computed CHAP-Password in hex it would take for a cleartext
    password (it prints it as Cleartext-Password) and re-encode, so the cleartext is what it gets here."""

    def chap(password: str) -> Reply:
        attributes: dict[str, str | int] = {"User-Name": '"bob"', "NAS-IP-Address": NAS1, "NAS-Port": 9}
        attributes |= {"CHAP-Challenge": "0x" + secrets.token_bytes(16).hex(), "CHAP-Password": f'"{password}"'}
        return radclient(topology, NAS1, "auth", attributes)

    code, reply = chap("hunter2")
    assert code == "Access-Accept", radius.log()
    assert reply["Framed-IP-Address"] in pool_addresses()
    code, _ = chap("hunter3")
    assert code == "Access-Reject"
    assert "chap: Password comparison failed" in radius.log()


def test_mschap_v1_via_radtest_returns_the_mppe_keys_of_the_password(radius: FreeRadius, topology: Topology) -> None:
    """``radtest -t mschap`` speaks MS-CHAPv1 (MS-CHAP-Challenge + MS-CHAP-Response): the reply carries
    MS-CHAP-MPPE-Keys (LM key, then MD4 of the NT hash, RFC 2548 2.4.1), 128-bit MPPE required.  (The
    brief's "MS-MPPE-Send-Key/Recv-Key" are MS-CHAPv2's: see the next test.)"""
    result = subprocess.run(
        [
            "ip",
            "netns",
            "exec",
            topology.nas1,
            "radtest",
            "-x",
            "-t",
            "mschap",
            "alice",
            "s3cret",
            SERVER,
            "6",
            SECRET1,
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    code, reply = parse_radclient(result.stdout)
    assert code == "Access-Accept", result.stdout + result.stderr + radius.log()
    keys = octets(reply["MS-CHAP-MPPE-Keys"])
    password_hash = crypto.nt_password_hash("s3cret")
    assert keys[8:24] == crypto.hash_nt_password_hash(password_hash)
    # No LM key: 3.2.1 derives no LM-Password from a Cleartext-Password, and sends 8 zero bytes in its
    # place (a NAS must read all-zero as "none", never as a key).
    assert keys[:8] == bytes(8)
    assert reply["MS-MPPE-Encryption-Policy"] == "Encryption-Required"
    # 4 = 128-bit only (RFC 2548 2.4.3; require_strong); FreeRADIUS's dictionary has no name for 4 and
    # calls 1 and 2 "RC4-40bit-Allowed" and "RC4-128bit-Allowed", which RFC 2548 does not: go by numbers.
    assert reply["MS-MPPE-Encryption-Types"] == "4"


def test_mschap_v2_is_accepted_with_the_send_and_recv_keys_rfc3079_derives(
    radius: FreeRadius, topology: Topology
) -> None:
    """A real MS-CHAPv2 exchange (computed here as a PPTP client would) through radclient: the reply's
    MS-CHAP2-Success proves the server knows the password, and its MS-MPPE-Send-Key/Recv-Key are the
    server's (NAS's) RFC 3079 keys for this NT-Response."""
    challenge, peer_challenge = secrets.token_bytes(16), secrets.token_bytes(16)
    nt_response = crypto.generate_nt_response(challenge, peer_challenge, b"alice", "s3cret")
    ident = 7
    response = bytes([ident, 0]) + peer_challenge + bytes(8) + nt_response
    code, reply = radclient(
        topology,
        NAS1,
        "auth",
        {
            "User-Name": '"alice"',
            "NAS-IP-Address": NAS1,
            "NAS-Port": 7,
            "Calling-Station-Id": '"203.0.113.7"',
            "MS-CHAP-Challenge": "0x" + challenge.hex(),
            "MS-CHAP2-Response": "0x" + response.hex(),
        },
    )
    assert code == "Access-Accept", radius.log()
    password_hash = crypto.nt_password_hash("s3cret")
    success = octets(reply["MS-CHAP2-Success"])
    expected = crypto.generate_authenticator_response(password_hash, nt_response, peer_challenge, challenge, b"alice")
    assert success == bytes([ident]) + expected.encode()
    master = mppe.get_master_key(crypto.hash_nt_password_hash(password_hash), nt_response)
    send = mppe.get_asymmetric_start_key(master, 16, send=True, server=True)
    recv = mppe.get_asymmetric_start_key(master, 16, send=False, server=True)
    assert octets(reply["MS-MPPE-Send-Key"]) == send
    assert octets(reply["MS-MPPE-Recv-Key"]) == recv
    assert reply["MS-MPPE-Encryption-Policy"] == "Encryption-Required"
    assert reply["Framed-IP-Address"] in pool_addresses()


def test_a_wrong_mschap_v2_response_gets_ms_chap_error_691(radius: FreeRadius, topology: Topology) -> None:
    challenge, peer_challenge = secrets.token_bytes(16), secrets.token_bytes(16)
    nt_response = crypto.generate_nt_response(challenge, peer_challenge, b"alice", "not-it")
    response = bytes([9, 0]) + peer_challenge + bytes(8) + nt_response
    code, reply = radclient(
        topology,
        NAS1,
        "auth",
        {
            "User-Name": '"alice"',
            "MS-CHAP-Challenge": "0x" + challenge.hex(),
            "MS-CHAP2-Response": "0x" + response.hex(),
        },
    )
    assert code == "Access-Reject"
    assert "E=691" in reply["MS-CHAP-Error"]


def test_stopped_it_answers_nothing_and_started_again_it_answers(radius: FreeRadius, topology: Topology) -> None:
    radius.stop()
    assert not radius.running
    code, _ = login(topology, NAS1, "bob", "hunter2", 8, "203.0.113.8")
    assert code is None
    radius.start()
    assert radius.startup_seconds is not None and radius.startup_seconds < 5
    code, reply = login(topology, NAS1, "bob", "hunter2", 8, "203.0.113.8")
    assert code == "Access-Accept", radius.log()
    assert reply["Framed-IP-Address"] in pool_addresses()


def test_the_detail_parser_reads_freeradius_records() -> None:
    text = 'Sun Dec  6 00:54:38 2026\n\tUser-Name = "a \\"b\\""\n\tAcct-Status-Type = Start\n\n'
    text += "Sun Dec  6 00:54:39 2026\n\tAcct-Status-Type = Stop\n\tAcct-Input-Octets = 5\n\n"
    assert parse_detail(text) == [
        {"User-Name": 'a "b"', "Acct-Status-Type": "Start"},
        {"Acct-Status-Type": "Stop", "Acct-Input-Octets": "5"},
    ]


def test_the_pool_must_be_inside_192_168(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"192\.168\.0\.0/16"):
        FreeRadius("unused", SERVER, tmp_path, users=USERS, clients=[], pool=("192.0.2.1", "192.0.2.9"))


def test_a_server_that_cannot_start_fails_fast_with_its_log(topology: Topology, tmp_path: Path) -> None:
    """An address the namespace does not have: radiusd exits at once and the error says why."""
    broken = FreeRadius(topology.radius, "198.18.9.9", tmp_path, users=USERS, clients=[], ready_timeout=5)
    began = time.monotonic()
    with pytest.raises(RuntimeError, match="exited") as failure:
        broken.start()
    assert time.monotonic() - began < 5
    assert "198.18.9.9" in str(failure.value)
    assert not broken.running


def test_the_conftest_factory_runs_one_beside_pypptpd_without_a_pool(
    start_freeradius: Callable[..., FreeRadius], netns_pair: NetnsPair
) -> None:
    """The shape the daemon's RADIUS tests use: FreeRADIUS in pypptpd's own namespace, the NAS being that
    namespace's address; with sqlippool off, an address comes only from the user's own reply."""
    users = [RadiusUser("dave", "d4ve", {"Framed-IP-Address": "192.168.7.7", "Framed-MTU": 1400})]
    clients = [RadiusClient(netns_pair.server_ip, "same-box")]
    radius = start_freeradius(netns_pair.server_ns, netns_pair.server_ip, users=users, clients=clients, sqlippool=False)
    assert radius.startup_seconds is not None and radius.startup_seconds < 5
    request = "User-Name = dave, User-Password = d4ve, NAS-Port = 0, Message-Authenticator = 0x00\n"
    argv = ["radclient", "-x", "-t", "2", "-r", "1", f"{netns_pair.server_ip}:1812", "auth", "same-box"]
    result = subprocess.run(
        netns_pair.exec_argv(netns_pair.server_ns, argv), input=request, capture_output=True, text=True, timeout=30
    )
    code, reply = parse_radclient(result.stdout)
    assert code == "Access-Accept", result.stdout + result.stderr + radius.log()
    assert reply["Framed-IP-Address"] == "192.168.7.7" and reply["Framed-MTU"] == "1400"
    assert radius.leases() == []


def test_concurrent_logins_from_two_nas_never_share_an_address(topology: Topology, tmp_path: Path) -> None:
    """What two pypptpd servers do at once: 2 x 8 Access-Requests in flight together (radclient -p 8 from
    each NAS, the same eight NAS-Port values on both), one SQLite pool: 16 distinct addresses, and the
    pool, exactly 16, full.  (A pool keyed on the port alone fails here.)  A server of its own on other
    ports, beside the shared one."""
    pool = ("192.168.200.1", "192.168.200.16")
    clients = [RadiusClient("198.18.0.0/23", "both-nas")]
    users = [RadiusUser(f"u{n}", f"p{n}") for n in range(8)]
    with FreeRadius(
        topology.radius, SERVER, tmp_path, users=users, clients=clients, pool=pool, auth_port=11812, acct_port=11813
    ) as radius:
        requests = "\n".join(
            f"User-Name = u{n}, User-Password = p{n}, NAS-Port = {n}, Message-Authenticator = 0x00" for n in range(8)
        )
        procs = []
        for nas, ns in ((NAS1, topology.nas1), (NAS2, topology.nas2)):
            batch = tmp_path / f"requests-{nas}"
            batch.write_text("\n\n".join(f"{line}, NAS-IP-Address = {nas}" for line in requests.splitlines()) + "\n")
            argv = ["radclient", "-x", "-p", "8", "-t", "5", "-r", "1", "-f", str(batch), f"{SERVER}:11812"]
            argv += ["auth", "both-nas"]
            command = ["ip", "netns", "exec", ns, *argv]
            procs.append(subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
        outputs = [proc.communicate(timeout=30)[0] for proc in procs]
        addresses = [
            line.split(" = ")[1] for out in outputs for line in out.splitlines() if "Framed-IP-Address" in line
        ]
        replies = [out.count("Received Access-Accept") for out in outputs]
        assert replies == [8, 8], "".join(outputs) + radius.log()
        received = [a for a in addresses if a.startswith("192.168.200.")]
        assert len(received) == 16 and len(set(received)) == 16, received
        assert len(radius.leased()) == 16
