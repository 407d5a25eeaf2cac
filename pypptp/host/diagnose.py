"""What on this host stops PPTP calls or their traffic: ``pypptpd --diagnose``, and the daemon's run-time hints.

The "can't connect / connected but no DNS" checklist, read from the live host (this network namespace)
instead of run by hand: the ``ip_forward`` and ``rp_filter`` sysctls, the route and MTU towards the
internet, the conntrack PPTP helper module, and the packet filter (:mod:`pypptp.host.firewall`) asked
about the packets a PPTP server needs: TCP 1723 and IP protocol 47 (GRE) in, GRE out, the pool's
traffic forwarded both ways, and masqueraded on its way out.  Each :class:`Finding` is OK, WARN, FAIL
or INFO, with the exact command that fixes it, written for the pool, the listen address and the
interfaces found.

Why each item matters, and how it is decided:

* ``ip_forward`` 0: the pool reaches this host and nothing beyond it.  ``conf/default/forwarding`` is
  what a new ``pppN`` starts with, and IPv4 forwards only what arrives on an interface with forwarding on;
* ``rp_filter``: strict mode (1) on a ``pppN`` (the larger of ``conf/all`` and ``conf/default``) accepts
  only its peer's own address, which is what the pool gives; a client routing a network of its own
  through the tunnel is dropped.  Strict mode on the egress interface only hurts a host with several
  default routes (replies may come back on another one).  Neither is a failure: a WARN at most;
* the conntrack PPTP helper (``nf_conntrack_pptp``) is needed by a NAT router *between* a client and
  this server (the client's home router, or this host's if it NATs PPTP clients of its own LAN), which
  must rewrite GRE's Call IDs; on this host it only lets ``ct state related`` rules accept GRE.  INFO;
* GRE in: a filter accepting it only as ``ct state established`` works while this server's first GRE
  packet leaves before the client's arrives (the reply direction then exists); a client that sends
  first is dropped: WARN;
* NAT: a private pool going out through another interface needs MASQUERADE (or SNAT); a public pool is
  routed as is; with ``proxyarp`` the pool lives on the LAN and needs none unless the LAN is NATed
  upstream: WARN rather than FAIL;
* the egress MTU: a full tunnel packet grows by :data:`GRE_OVERHEAD` bytes (outer IPv4, GRE with
  sequence and acknowledgment numbers, PPP header, MPPE); past the interface MTU it is fragmented
  (works, costs throughput): WARN.

:func:`forwarding_problem` and :func:`route_problem` are the run-time checks the daemon makes once per
session, when its network comes up (a few /proc reads, off the data path).
"""

from __future__ import annotations

import dataclasses
import os
import socket
from collections.abc import Callable
from ipaddress import IPv4Address, IPv4Network

from pyroute2 import IPRoute

from pypptp.host.firewall import Chain, Firewall, Probe, Verdict, read_firewall

__all__ = [
    "FAIL",
    "GRE_OVERHEAD",
    "INFO",
    "OK",
    "WARN",
    "Finding",
    "Setup",
    "diagnose",
    "forwarding_problem",
    "pool_network",
    "route_problem",
]

OK, WARN, FAIL, INFO = "OK", "WARN", "FAIL", "INFO"
GRE_OVERHEAD = 20 + 16 + 4 + 2 + 2
"""Bytes a tunnel packet grows by on the wire: outer IPv4 header, GRE header with sequence and
acknowledgment numbers, PPP address/control and protocol (0x00FD), MPPE header, the encrypted inner
protocol field."""
INTERNET = IPv4Address("198.51.100.1")
"""The destination standing for "the internet" when routes are looked up (TEST-NET-2: nothing is sent)."""
PROC_IPV4 = "/proc/sys/net/ipv4"


@dataclasses.dataclass(frozen=True)
class Setup:
    """What the configuration says (pptpd.conf and the pppd options)."""

    listen: str = "0.0.0.0"
    pool: tuple[IPv4Address, ...] = ()
    """The remote (clients') addresses."""
    proxyarp: bool = False
    mtu: int = 1400
    """The tunnel MTU to expect: the ``mtu`` option, else a Windows client's (MRU 1400)."""
    mtu_from_options: bool = False
    port: int = 1723


@dataclasses.dataclass
class Finding:
    item: str
    status: str
    detail: str
    fix: list[str] = dataclasses.field(default_factory=list)


# -- the host --------------------------------------------------------------------------------------


def sysctl(path: str) -> str | None:
    """A sysctl under /proc/sys/net/ipv4 (``ip_forward``, ``conf/ppp0/forwarding``); None if absent."""
    try:
        with open(os.path.join(PROC_IPV4, path), encoding="ascii") as f:
            return f.read(64).strip()
    except (OSError, ValueError):
        return None


def default_routes(first: bool = False) -> list[str]:
    """The interfaces of the main table's default routes (/proc/net/route), in its order; with ``first``,
    at most the first one.  The kernel lists its routes in address order, so defaults (0.0.0.0/0) come
    first: a router with a full table is not read through."""
    out: list[str] = []
    try:
        with open("/proc/net/route", encoding="ascii") as f:
            next(f, None)  # the header
            for line in f:
                fields = line.split()
                if len(fields) < 8 or fields[1] != "00000000":
                    break  # past 0.0.0.0/x
                if fields[7] == "00000000":
                    out.append(fields[0])
                    if first:
                        break
    except (OSError, ValueError):
        return out
    return out


@dataclasses.dataclass
class _Netlink:
    """Addresses, links and the route towards the internet, read once through netlink."""

    addresses: dict[IPv4Address, tuple[str, int]]
    """address -> (interface, prefix length)."""
    mtus: dict[str, int]
    route: tuple[str, str | None] | None
    """(interface, gateway) towards :data:`INTERNET`; None: unreachable."""


def _read_netlink() -> _Netlink:
    with IPRoute() as ip:
        links = ip.get_links()
        names = {link["index"]: link.get_attr("IFLA_IFNAME") for link in links}
        mtus = {link.get_attr("IFLA_IFNAME"): link.get_attr("IFLA_MTU") for link in links}
        addresses = {
            IPv4Address(a.get_attr("IFA_ADDRESS")): (names.get(a["index"], "?"), a["prefixlen"])
            for a in ip.get_addr(family=socket.AF_INET)
        }
        route: tuple[str, str | None] | None
        try:
            [found] = ip.route("get", dst=str(INTERNET))[:1]
            route = (names.get(found.get_attr("RTA_OIF"), "?"), found.get_attr("RTA_GATEWAY"))
        except Exception:  # ENETUNREACH, EHOSTUNREACH: no route
            route = None
    return _Netlink(addresses, mtus, route)


def pool_network(pool: tuple[IPv4Address, ...]) -> IPv4Network | None:
    """The smallest network holding every pool address (what a NAT rule names)."""
    if not pool:
        return None
    low, high = min(pool), max(pool)
    for length in range(32, -1, -1):
        network = IPv4Network(f"{low}/{length}", strict=False)
        if high in network:
            return network
    return None  # pragma: no cover (a /0 holds everything)


# -- the checks ------------------------------------------------------------------------------------


def diagnose(setup: Setup, *, firewall: Firewall | None = None) -> list[Finding]:
    """Every item, in the order an admin would look at them."""
    findings: list[Finding] = []
    try:
        net: _Netlink | None = _read_netlink()
    except Exception as exc:
        net = None
        findings.append(Finding("netlink", WARN, f"cannot read addresses and routes: {exc}"))
    egress = net.route[0] if net is not None and net.route is not None else None
    findings += _listen(setup, net)
    findings += _forwarding()
    findings += _route(net)
    findings += _mtu(setup, net, egress)
    findings += _rp_filter(egress)
    findings += _helper()
    findings += _firewall(setup, firewall if firewall is not None else read_firewall(), net, egress)
    return findings


def _listen(setup: Setup, net: _Netlink | None) -> list[Finding]:
    if setup.listen in ("", "0.0.0.0"):
        return [Finding("listen address", OK, f"all addresses, TCP port {setup.port}")]
    if net is None:
        return []
    address = IPv4Address(setup.listen)
    if address in net.addresses:
        name, _ = net.addresses[address]
        return [Finding("listen address", OK, f"{address} on {name}, TCP port {setup.port}")]
    return [
        Finding(
            "listen address",
            FAIL,
            f"{address} is not an address of this host: pypptpd cannot listen on it",
            [f"ip addr add {address}/24 dev IFACE  (or fix `listen` in pptpd.conf)"],
        )
    ]


def _forwarding() -> list[Finding]:
    forward, default = sysctl("ip_forward"), sysctl("conf/default/forwarding")
    if forward is None:
        return [Finding("ip_forward", WARN, f"cannot read {PROC_IPV4}/ip_forward")]
    fix = ["sysctl -w net.ipv4.ip_forward=1", "echo net.ipv4.ip_forward=1 > /etc/sysctl.d/90-pptpd.conf"]
    if forward != "1":
        return [Finding("ip_forward", FAIL, "0: the pool's traffic cannot leave this host", fix)]
    if default == "0":
        fix = ["sysctl -w net.ipv4.conf.default.forwarding=1"]
        fix.append("echo net.ipv4.conf.default.forwarding=1 > /etc/sysctl.d/90-pptpd.conf")
        return [Finding("ip_forward", FAIL, "1, but conf.default.forwarding is 0: each new pppN forwards nothing", fix)]
    return [Finding("ip_forward", OK, "1")]


def _route(net: _Netlink | None) -> list[Finding]:
    if net is None:
        return []
    if net.route is None:
        return [
            Finding(
                "route out",
                WARN,
                "no default route: the pool reaches this host's own networks only",
                ["ip route add default via GATEWAY"],
            )
        ]
    name, gateway = net.route
    return [Finding("route out", OK, f"default {'via ' + gateway + ' ' if gateway else ''}dev {name}")]


def _mtu(setup: Setup, net: _Netlink | None, egress: str | None) -> list[Finding]:
    if net is None or egress is None or egress not in net.mtus:
        return []
    mtu, need = net.mtus[egress], setup.mtu + GRE_OVERHEAD
    source = "the mtu option" if setup.mtu_from_options else "a Windows client's, without an mtu option"
    detail = f"{egress} {mtu}; tunnel MTU {setup.mtu} ({source}) + {GRE_OVERHEAD} = {need}"
    if mtu >= need:
        return [Finding("egress MTU", OK, detail)]
    fit = mtu - GRE_OVERHEAD
    return [
        Finding(
            "egress MTU",
            WARN,
            f"{detail}: full packets leave fragmented (works, slower)",
            [f"mtu {fit}  (in the pppd options file)"],
        )
    ]


def _rp_filter(egress: str | None) -> list[Finding]:
    every, default = sysctl("conf/all/rp_filter"), sysctl("conf/default/rp_filter")
    if every is None or default is None:
        return [Finding("rp_filter", WARN, "cannot read net.ipv4.conf.*.rp_filter")]
    ppp = max(int(every or 0), int(default or 0))
    out = int(sysctl(f"conf/{egress}/rp_filter") or 0) if egress else 0
    out = max(out, int(every or 0))
    names = {0: "off", 1: "strict", 2: "loose"}
    detail = f"pppN {names.get(ppp, ppp)}" + (f", {egress} {names.get(out, out)}" if egress else "")
    if out == 1 and len(set(default_routes())) > 1:
        return [
            Finding(
                "rp_filter",
                WARN,
                f"{detail}: several default routes, so replies may arrive on another interface and be dropped",
                [f"sysctl -w net.ipv4.conf.{egress}.rp_filter=2", "sysctl -w net.ipv4.conf.all.rp_filter=2"],
            )
        ]
    if ppp == 1:
        detail += " (each pppN accepts only its peer's pool address; a client's own network needs a route via it)"
    return [Finding("rp_filter", OK, detail)]


def _helper() -> list[Finding]:
    if os.path.exists("/sys/module/nf_conntrack_pptp"):
        return [Finding("conntrack PPTP helper", INFO, "nf_conntrack_pptp loaded")]
    return [
        Finding(
            "conntrack PPTP helper",
            INFO,
            "nf_conntrack_pptp not loaded: not needed here unless this host NATs PPTP clients of its own; "
            "clients behind NAT need it (or a PPTP-aware NAT) on their router",
        )
    ]


def _firewall(setup: Setup, firewall: Firewall, net: _Netlink | None, egress: str | None) -> list[Finding]:
    ruleset = firewall.ruleset
    if not firewall.tools:
        why = "; ".join(firewall.problems)
        return [Finding("firewall", WARN, f"cannot read the firewall: {why}")]
    findings = [
        Finding(
            "firewall",
            OK if not firewall.problems else WARN,
            f"read with {ruleset.source}"
            + (f"; {'; '.join(firewall.problems)}" if firewall.problems else "")
            + ("" if ruleset.filters() else "; no filtering rules"),
        )
    ]
    listen = None if setup.listen in ("", "0.0.0.0") else IPv4Address(setup.listen)
    inbound = egress
    if listen is not None and net is not None and listen in net.addresses:
        inbound = net.addresses[listen][0]
    tool = firewall.tool
    first = setup.pool[0] if setup.pool else None
    network = pool_network(setup.pool)

    # TCP 1723 in
    probe = Probe(6, setup.port, daddr=listen, iif=inbound)
    verdict = ruleset.verdict(probe, ("prerouting", "input"))
    findings.append(
        _filtered(f"TCP {setup.port} in", verdict, tool, f"tcp dport {setup.port}", f"-p tcp --dport {setup.port}")
    )

    # GRE in: as a new flow, else as a reply only
    probe = Probe(47, daddr=listen, iif=inbound)
    verdict = ruleset.verdict(probe, ("prerouting", "input"))
    finding = _filtered("GRE in", verdict, tool, "ip protocol gre", "-p gre")
    if verdict.outcome == "drop" and verdict.certain:
        reply = ruleset.verdict(dataclasses.replace(probe, ctstate="established"), ("prerouting", "input"))
        if reply.outcome == "accept":
            finding.status = WARN
            finding.detail = (
                f"accepted only as a reply ({reply.where()}): a client whose GRE arrives before ours is dropped"
            )
    findings.append(finding)

    # GRE out
    probe = Probe(47, saddr=listen, oif=inbound)
    findings.append(
        _filtered("GRE out", ruleset.verdict(probe, ("output", "postrouting")), tool, "ip protocol gre", "-p gre")
    )

    # the pool's traffic, forwarded both ways
    out_if = f'oifname "{egress}" ' if egress else ""
    out_opt = f"-o {egress} " if egress else ""
    probe = Probe(6, 443, saddr=first, iif="ppp0", oif=egress)
    verdict = ruleset.verdict(probe, ("prerouting", "forward", "postrouting"))
    findings.append(
        _filtered(
            "forward pool -> out", verdict, tool, f'iifname "ppp*" {out_if}'.strip(), f"-i ppp+ {out_opt}".strip()
        )
    )
    probe = Probe(6, 443, daddr=first, iif=egress, oif="ppp0", ctstate="established")
    verdict = ruleset.verdict(probe, ("prerouting", "forward", "postrouting"))
    findings.append(
        _filtered(
            "forward replies -> pool",
            verdict,
            tool,
            'oifname "ppp*" ct state established,related',
            "-o ppp+ -m conntrack --ctstate ESTABLISHED,RELATED",
        )
    )

    # NAT
    findings.append(_nat(setup, ruleset.nat(Probe(6, 443, saddr=first, oif=egress)), firewall, egress, network))
    return findings


def _filtered(item: str, verdict: Verdict, tool: str, nft_match: str, iptables_match: str) -> Finding:
    if verdict.outcome == "accept" and verdict.certain:
        return Finding(item, OK, f"accepted ({verdict.where()})")
    fix = _insert(verdict.base, tool, nft_match, iptables_match)
    if verdict.outcome == "drop" and verdict.certain:
        return Finding(item, FAIL, f"dropped ({verdict.where()})", fix)
    doubts = "; ".join(rule.text for rule in verdict.doubts[:3])
    outcome = "accepted" if verdict.outcome == "accept" else "dropped"
    return Finding(item, WARN, f"{outcome} unless a rule not understood here decides otherwise: {doubts}", fix)


def _insert(base: Chain | None, tool: str, nft_match: str, iptables_match: str) -> list[str]:
    """The command putting an accepting rule first in ``base`` (the chain that decided)."""
    if base is None:
        return []
    if base.origin == "nft" and tool == "nft":
        return [f"nft insert rule {base.family} {base.table} {base.name} '{nft_match} accept'"]
    command = "iptables-legacy" if base.origin == "iptables-legacy" else "iptables"
    table = base.table.removesuffix(" (legacy)")
    where = "" if table == "filter" else f"-t {table} "
    return [f"{command} {where}-I {base.name} {iptables_match} -j ACCEPT"]


def _nat(
    setup: Setup, verdict: Verdict, firewall: Firewall, egress: str | None, network: IPv4Network | None
) -> Finding:
    item = "NAT for the pool"
    if network is None:
        return Finding(item, WARN, "no pool configured (localip/remoteip)")
    if verdict.outcome == "nat" and verdict.certain:
        return Finding(item, OK, f"{network} translated ({verdict.where()})")
    fix = _nat_fix(firewall, egress, network)
    if verdict.outcome == "nat" or verdict.doubts:
        doubts = "; ".join(rule.text for rule in verdict.doubts[:3])
        return Finding(item, WARN, f"cannot tell: a rule not understood here decides: {doubts}", fix)
    if network.is_global:
        return Finding(item, OK, f"{network} is public: routed as is (the upstream router must route it here)")
    if setup.proxyarp:
        return Finding(
            item, WARN, f"no masquerade for {network}: fine with proxyarp, unless the LAN is not routed upstream", fix
        )
    if egress is None:
        return Finding(item, WARN, f"no masquerade for {network}, and no route out to check it for", fix)
    return Finding(item, FAIL, f"no masquerade or SNAT for {network} out of {egress}", fix)


def _nat_fix(firewall: Firewall, egress: str | None, network: IPv4Network) -> list[str]:
    out = egress or "IFACE"
    if firewall.tool != "nft":
        return [f"iptables -t nat -A POSTROUTING -s {network} -o {out} -j MASQUERADE"]
    rule = f"'ip saddr {network} oifname \"{out}\" masquerade'"
    chains = firewall.ruleset.base_chains("postrouting", "nat")
    native = [chain for chain in chains if chain.origin == "nft"]
    if native:
        chain = native[0]
        return [f"nft add rule {chain.family} {chain.table} {chain.name} {rule}"]
    return [
        "nft add table ip nat",
        "nft 'add chain ip nat postrouting { type nat hook postrouting priority srcnat; }'",
        f"nft add rule ip nat postrouting {rule}",
    ]


# -- at run time -------------------------------------------------------------------------------------


def forwarding_problem(ifname: str, read: Callable[[str], str | None] = sysctl) -> str | None:
    """Why traffic arriving on ``ifname`` (a session's ``pppN``) cannot be forwarded, or None."""
    if read("ip_forward") == "0":
        return f"ip_forward is off: traffic from {ifname} cannot leave this host (sysctl -w net.ipv4.ip_forward=1)"
    if read(f"conf/{ifname}/forwarding") == "0":
        return (
            f"forwarding is off on {ifname}: its traffic cannot leave this host "
            "(sysctl -w net.ipv4.conf.default.forwarding=1, for the next sessions)"
        )
    return None


def route_problem(ifname: str, routes: Callable[[bool], list[str]] = default_routes) -> str | None:
    """Why traffic from ``ifname`` cannot reach beyond this host's networks, or None."""
    if not routes(True):
        return f"no default route: traffic from {ifname} reaches only the networks this host has routes to"
    return None
