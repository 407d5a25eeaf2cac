"""``pypptpd --diagnose`` and the daemon's run-time hints, on real hosts: network namespaces, each with
its own sysctls and its own nftables (or iptables) ruleset.

Each verdict is exercised both ways on the live kernel state: forwarding off then on, TCP 1723 and GRE
dropped then accepted, the forward chain dropping then accepting, the masquerade missing then present.
Where a check fails, the fix it prints is run as printed (inside the namespace) and the check must then
pass: the fixes are commands that work, not prose.  Every nft, iptables and sysctl call runs inside
``ip netns exec``; nothing touches the root namespace.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pypptp.aio.client import PptpClientError
from pypptp.client.tunnel import PptpClientSession, client_link_config
from pypptp.daemon.manager import NO_GRE_AFTER
from pypptp.host.netns import link, namespaces
from tests.conftest import REPO, Pypptpd, require_tools

pytestmark = pytest.mark.netns

SERVER, UPSTREAM = "198.18.0.1", "198.18.0.2"
CONF = ["listen 198.18.0.1", "localip 192.168.0.1", "remoteip 192.168.0.234-238"]
NFT = os.environ.get("NFT", "nft")


def ns_run(ns: str, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["ip", "netns", "exec", ns, *argv], capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"{argv}: {result.stderr}")
    return result


class Host:
    """A server namespace with an upstream one: veth0 198.18.0.1/24, default route via 198.18.0.2."""

    def __init__(self, ns: str, workdir: Path) -> None:
        self.ns = ns
        self.conf = workdir / "pptpd.conf"
        self.options = workdir / "options"
        self.secrets = workdir / "chap-secrets"
        self.system = workdir / "options.system"
        self.set_conf(CONF)
        self.options.write_text("name pptpd\nrequire-mschap-v2\n")
        self.secrets.write_text("alice pptpd s3cret *\n")
        self.system.write_text("")

    def set_conf(self, lines: list[str]) -> None:
        self.conf.write_text("".join(f"{line}\n" for line in [*lines, f"option {self.conf.parent / 'options'}"]))

    def sysctl(self, setting: str) -> None:
        ns_run(self.ns, "sysctl", "-q", "-w", setting)

    def ruleset(self, text: str) -> None:
        ns_run(self.ns, NFT, "flush", "ruleset")
        if text:
            path = self.conf.parent / "rules.nft"
            path.write_text(text)
            ns_run(self.ns, NFT, "-f", str(path))

    def diagnose(
        self, env: dict[str, str] | None = None, ip: str = "ip"
    ) -> tuple[int, dict[str, tuple[str, str, list[str]]], str]:
        """Exit status; item -> (status, detail, fixes); the whole output."""
        argv = [sys.executable, "-m", "pypptp.daemon.cli", "--diagnose", "-c", str(self.conf)]
        argv += ["--secrets", str(self.secrets), "--system-options", str(self.system)]
        environment = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
        result = subprocess.run(
            [ip, "netns", "exec", self.ns, *argv], capture_output=True, text=True, env=environment, cwd=REPO
        )
        assert not result.stderr, result.stderr
        items: dict[str, tuple[str, str, list[str]]] = {}
        last = ""
        for line in result.stdout.splitlines():
            fix = re.match(r"\s+fix: (.*)", line)
            if fix:
                items[last][2].append(fix[1])
                continue
            match = re.match(r"(\S.*?)\s{2,}(OK|WARN|FAIL|INFO)\s+(.*)", line)
            assert match, f"not an item line: {line!r}\n{result.stdout}"
            last = match[1]
            items[last] = (match[2], match[3], [])
        return result.returncode, items, result.stdout

    def status(self, item: str) -> str:
        return self.diagnose()[1][item][0]

    def apply(self, fixes: list[str]) -> None:
        """Run the fixes as printed (without /etc/sysctl.d lines, which would change the machine's files)."""
        assert fixes
        for fix in fixes:
            if "/etc/" in fix:
                continue
            ns_run(self.ns, "sh", "-c", fix)


@pytest.fixture
def require_nft(require_netns: None) -> None:
    """As require_netns: skipped without nft on a developer machine, a failure in CI (CI set)."""
    require_tools(NFT, "iptables")


@pytest.fixture
def host(require_nft: None, tmp_path: Path) -> Iterator[Host]:
    base = f"pypptp-diag-{os.getpid()}"
    with namespaces(f"{base}-srv", f"{base}-up") as (server, upstream):
        link(server, SERVER, upstream, UPSTREAM)
        subprocess.run(["ip", "-n", server, "route", "add", "default", "via", UPSTREAM], check=True)
        yield Host(server, tmp_path)


ALLOW_ALL_INPUT = """
table inet filter {
  chain input { type filter hook input priority 0; policy drop; iifname "lo" accept; %s }
}
"""


def test_forwarding_off_fails_and_on_passes(host: Host) -> None:
    host.sysctl("net.ipv4.ip_forward=0")
    status, items, _ = host.diagnose()
    assert items["ip_forward"][0] == "FAIL" and status == 1
    assert "sysctl -w net.ipv4.ip_forward=1" in items["ip_forward"][2]
    host.apply(items["ip_forward"][2])
    assert host.status("ip_forward") == "OK"
    host.sysctl("net.ipv4.conf.default.forwarding=0")  # a new pppN would start with forwarding off
    assert host.status("ip_forward") == "FAIL"


def test_tcp_1723_and_gre_dropped_then_accepted_by_the_printed_fix(host: Host) -> None:
    host.ruleset(ALLOW_ALL_INPUT % "tcp dport 22 accept;")
    _, items, out = host.diagnose()
    assert items["TCP 1723 in"][0] == "FAIL", out
    assert items["GRE in"][0] == "FAIL", out
    assert "policy drop" in items["TCP 1723 in"][1]
    host.apply(items["TCP 1723 in"][2])
    host.apply(items["GRE in"][2])
    _, items, out = host.diagnose()
    assert items["TCP 1723 in"][0] == "OK" and items["GRE in"][0] == "OK", out
    listed = ns_run(host.ns, NFT, "list", "ruleset").stdout
    assert "tcp dport 1723 accept" in listed and "ip protocol gre accept" in listed


def test_an_explicit_drop_rule_is_named(host: Host) -> None:
    host.ruleset(ALLOW_ALL_INPUT.replace("policy drop", "policy accept") % "ip protocol gre counter drop;")
    _, items, out = host.diagnose()
    assert items["GRE in"][0] == "FAIL" and "ip protocol gre drop" in items["GRE in"][1], out
    assert items["TCP 1723 in"][0] == "OK", out


def test_gre_accepted_only_as_a_reply_is_a_warning(host: Host) -> None:
    host.ruleset(ALLOW_ALL_INPUT % "ct state established,related accept; tcp dport 1723 accept;")
    _, items, out = host.diagnose()
    assert items["GRE in"][0] == "WARN" and "only as a reply" in items["GRE in"][1], out
    assert items["TCP 1723 in"][0] == "OK"


def test_a_rule_not_understood_gives_a_warning_not_a_verdict(host: Host) -> None:
    host.ruleset(
        "table inet filter {\n set vpn { type inet_service; elements = { 1723 } }\n"
        "  chain input { type filter hook input priority 0; policy drop; tcp dport @vpn accept; }\n}\n"
    )
    _, items, out = host.diagnose()
    assert items["TCP 1723 in"][0] == "WARN" and "@vpn" in items["TCP 1723 in"][1], out


def test_a_rule_for_other_sources_only_is_not_taken_for_an_accept(host: Host) -> None:
    """Accepting 1723 from one network only: other clients are dropped, which cannot be called OK."""
    host.ruleset(ALLOW_ALL_INPUT % "ip saddr 203.0.113.0/24 tcp dport 1723 accept; ip protocol gre accept;")
    _, items, out = host.diagnose()
    assert items["TCP 1723 in"][0] == "WARN", out


def test_forward_chain_drop_then_accept(host: Host) -> None:
    host.sysctl("net.ipv4.ip_forward=1")
    host.ruleset("table inet filter {\n chain forward { type filter hook forward priority 0; policy drop; }\n}\n")
    status, items, out = host.diagnose()
    assert items["forward pool -> out"][0] == "FAIL", out
    assert items["forward replies -> pool"][0] == "FAIL", out
    assert status == 1
    assert any('oifname "veth0"' in fix for fix in items["forward pool -> out"][2])
    host.apply(items["forward pool -> out"][2])
    host.apply(items["forward replies -> pool"][2])
    _, items, out = host.diagnose()
    assert items["forward pool -> out"][0] == "OK" and items["forward replies -> pool"][0] == "OK", out


def test_masquerade_missing_then_present(host: Host) -> None:
    host.ruleset("")
    _, items, out = host.diagnose()
    nat = items["NAT for the pool"]
    assert nat[0] == "FAIL" and "192.168.0.232/29" in nat[1] and "veth0" in nat[1], out
    host.apply(nat[2])  # no nat table yet: the fix makes one
    _, items, out = host.diagnose()
    assert items["NAT for the pool"][0] == "OK", out
    # a masquerade for another interface does not count
    host.ruleset(
        "table ip nat {\n chain postrouting { type nat hook postrouting priority srcnat; "
        'ip saddr 192.168.0.0/24 oifname "eth9" masquerade; }\n}\n'
    )
    assert host.status("NAT for the pool") == "FAIL"


def test_no_nat_needed_for_a_public_pool_and_a_warning_with_proxyarp(host: Host) -> None:
    host.ruleset("")
    # (a configuration only: nothing is sent to these addresses)
    host.set_conf(["listen 198.18.0.1", "localip 185.0.2.1", "remoteip 185.0.2.10-19"])
    assert host.status("NAT for the pool") == "OK"
    host.set_conf(CONF)
    host.options.write_text("name pptpd\nrequire-mschap-v2\nproxyarp\n")
    assert host.status("NAT for the pool") == "WARN"


def test_everything_right_exits_0(host: Host) -> None:
    host.sysctl("net.ipv4.ip_forward=1")
    host.ruleset(
        ALLOW_ALL_INPUT
        % "tcp dport 1723 accept; ip protocol gre accept;"
        + "table ip nat {\n chain postrouting { type nat hook postrouting priority srcnat; "
        'ip saddr 192.168.0.0/24 oifname "veth0" masquerade; }\n}\n'
    )
    status, items, out = host.diagnose()
    assert status == 0, out
    assert {item: values[0] for item, values in items.items() if values[0] not in ("OK", "INFO")} == {}, out
    assert items["listen address"][1].startswith("198.18.0.1 on veth0")


def test_every_fix_as_printed_makes_the_host_pass(host: Host) -> None:
    """The README's sample: SSH in and nothing else, forwarding off; every fix applied, exit 0."""
    host.sysctl("net.ipv4.ip_forward=0")
    host.ruleset(
        ALLOW_ALL_INPUT % "ct state established,related accept; tcp dport 22 accept;"
        + "table inet filter {\n chain forward { type filter hook forward priority 0; policy drop; }\n}\n"
    )
    status, items, out = host.diagnose()
    assert status == 1
    assert [item for item, (verdict, _, _) in items.items() if verdict in ("FAIL", "WARN")] == [
        "ip_forward",
        "TCP 1723 in",
        "GRE in",
        "forward pool -> out",
        "forward replies -> pool",
        "NAT for the pool",
    ], out
    for verdict, _, fixes in items.values():
        if verdict in ("FAIL", "WARN"):
            host.apply(fixes)
    status, items, out = host.diagnose()
    assert status == 0 and all(verdict in ("OK", "INFO") for verdict, _, _ in items.values()), out


def test_egress_mtu_too_small_then_the_printed_mtu_option(host: Host) -> None:
    ns_run(host.ns, "ip", "link", "set", "veth0", "mtu", "1400")
    _, items, out = host.diagnose()
    status, detail, fixes = items["egress MTU"]
    assert status == "WARN" and "fragmented" in detail and fixes == ["mtu 1356  (in the pppd options file)"], out
    host.options.write_text(host.options.read_text() + fixes[0].split("  ")[0] + "\n")
    _, items, out = host.diagnose()
    assert items["egress MTU"][0] == "OK" and "1356 (the mtu option) + 44 = 1400" in items["egress MTU"][1], out


def test_strict_rp_filter_with_two_default_routes(host: Host) -> None:
    ns_run(host.ns, "ip", "link", "add", "veth1", "type", "veth", "peer", "name", "veth2")
    for command in ("ip addr add 198.19.0.1/24 dev veth1", "ip link set veth1 up", "ip link set veth2 up"):
        ns_run(host.ns, *command.split())
    ns_run(host.ns, *["ip", "route", "add", "default", "via", "198.19.0.2", "dev", "veth1", "metric", "200"])
    host.sysctl("net.ipv4.conf.all.rp_filter=0")
    assert host.status("rp_filter") == "OK"
    host.sysctl("net.ipv4.conf.all.rp_filter=1")
    _, items, out = host.diagnose()
    assert items["rp_filter"][0] == "WARN" and "several default routes" in items["rp_filter"][1], out
    host.apply(items["rp_filter"][2])
    assert host.status("rp_filter") == "OK"


def test_listen_address_not_on_this_host(host: Host) -> None:
    host.set_conf(["listen 198.18.0.77", "localip 192.168.0.1", "remoteip 192.168.0.234-238"])
    assert host.status("listen address") == "FAIL"


def test_iptables_rules_are_read_and_fixed_with_iptables(host: Host) -> None:
    """iptables-nft's rules: read from iptables-save (nft shows their conntrack matches as opaque xt
    expressions), and fixed with iptables commands."""
    host.ruleset("")
    for rule in (
        "-P INPUT DROP",
        "-A INPUT -i lo -j ACCEPT",
        "-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
        "-A INPUT -p tcp -j REJECT --reject-with tcp-reset",
        "-P FORWARD DROP",
    ):
        ns_run(host.ns, "iptables", *rule.split())
    _, items, out = host.diagnose()
    assert items["TCP 1723 in"][0] == "FAIL" and "REJECT" in items["TCP 1723 in"][1], out
    assert items["GRE in"][0] == "WARN", out  # accepted as a reply only
    assert items["NAT for the pool"][0] == "FAIL", out
    for item in ("TCP 1723 in", "GRE in", "forward pool -> out", "forward replies -> pool", "NAT for the pool"):
        assert all(fix.startswith("iptables ") for fix in items[item][2]), items[item]
        host.apply(items[item][2])
    _, items, out = host.diagnose()
    for item in ("TCP 1723 in", "GRE in", "forward pool -> out", "forward replies -> pool", "NAT for the pool"):
        assert items[item][0] == "OK", out


def test_no_firewall_tool_is_a_warning_not_a_crash(host: Host, tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    _, items, out = host.diagnose(env={"PATH": str(empty)}, ip=shutil.which("ip") or "ip")
    assert items["firewall"][0] == "WARN" and "nft not installed" in items["firewall"][1], out
    assert "TCP 1723 in" not in items


def test_bad_configuration_is_a_failure_and_the_host_is_still_checked(host: Host) -> None:
    host.set_conf(["localip 192.168.0.1", "remoteip nonsense"])
    status, items, out = host.diagnose()
    assert items["configuration"][0] == "FAIL" and status == 1, out
    assert "ip_forward" in items


# -- at run time -------------------------------------------------------------------------------------


async def _connect(daemon: Pypptpd, timeout: float) -> PptpClientSession:
    pair = daemon.pair
    gre = pair.socket(pair.client_ns, socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_GRE)
    sock = pair.connect(pair.client_ns, daemon.address)
    config = client_link_config("alice", "s3cret")
    return await PptpClientSession.connect(
        pair.server_ip, user="alice", password="s3cret", config=config, sock=sock, gre_sock=gre, timeout=timeout
    )


def test_no_gre_from_the_client_is_logged_with_the_likely_cause(
    require_nft: None, start_pypptpd: Callable[..., Pypptpd]
) -> None:
    daemon = start_pypptpd(["localip 192.168.0.1", "remoteip 192.168.0.234-238"])
    pair = daemon.pair
    rules = daemon.workdir / "drop-gre.nft"
    rules.write_text(
        "table inet t {\n chain input { type filter hook input priority 0; "
        f"ip saddr {pair.client_ip} ip protocol gre drop; }}\n}}\n"
    )
    ns_run(pair.server_ns, NFT, "-f", str(rules))

    async def attempt() -> None:
        with contextlib.suppress(Exception):
            await _connect(daemon, timeout=8)

    asyncio.run(attempt())
    log = daemon.wait_log("no GRE from", timeout=2)
    assert re.search(
        rf"GRE: no GRE from {re.escape(pair.client_ip)} in 5 s after OCRP .*: is IP protocol 47 allowed "
        r"through the firewall, and the client's NAT PPTP-aware\?",
        log,
    ), log
    assert log.count("no GRE from") == 1


def test_a_session_that_cannot_leave_says_so_once(start_pypptpd: Callable[..., Pypptpd]) -> None:
    daemon = start_pypptpd(["localip 192.168.0.1", "remoteip 192.168.0.234-238"])
    pair = daemon.pair
    ns_run(pair.server_ns, "sysctl", "-q", "-w", "net.ipv4.ip_forward=0")

    async def session(hold: float) -> None:
        client = await _connect(daemon, timeout=15)
        await asyncio.sleep(hold)
        await client.close()

    asyncio.run(session(0.3))
    log = daemon.wait_log("cannot leave this host", timeout=3)
    assert "ip_forward is off: traffic from ppp0 cannot leave this host (sysctl -w net.ipv4.ip_forward=1)" in log
    assert "no default route: traffic from ppp0" in log  # the test namespace has none
    assert log.count("ip_forward is off") == 1
    assert "no GRE from" not in log

    # forwarding on and a route out: nothing to say
    ns_run(pair.server_ns, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
    subprocess.run(["ip", "-n", pair.server_ns, "route", "add", "default", "via", pair.client_ip], check=True)
    asyncio.run(session(NO_GRE_AFTER + 0.5))  # long enough for a wrong "no GRE" line too
    deadline = time.monotonic() + 3
    while daemon.log().count("Connection terminated") < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    later = daemon.log()[len(log) :]
    assert "Connection terminated" in later, later
    assert "ip_forward is off" not in later and "no default route" not in later, later
    assert "no GRE from" not in later, later


def test_the_client_says_no_gre_came_back(require_nft: None, start_pypptpd: Callable[..., Pypptpd]) -> None:
    """GRE blocked on the client's side: the library client's error names the likely cause instead of a
    bare LCP failure (and the server, which hears the client, has nothing to say)."""
    daemon = start_pypptpd(["localip 192.168.0.1", "remoteip 192.168.0.234-238"])
    pair = daemon.pair
    rules = daemon.workdir / "drop-gre.nft"
    rules.write_text("table inet t {\n chain input { type filter hook input priority 0; ip protocol gre drop; }\n}\n")
    ns_run(pair.client_ns, NFT, "-f", str(rules))
    with pytest.raises(PptpClientError, match=rf"no GRE from {re.escape(pair.server_ip)}: is IP protocol 47"):
        asyncio.run(_connect(daemon, timeout=6))
    assert "no GRE from" not in daemon.log()
