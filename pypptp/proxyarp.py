"""pppd's ``proxyarp``: answer ARP for a client's tunnel address on the LAN it appears to be on.

pppd (sifproxyarp) finds the Ethernet-like interface whose IPv4 subnet holds
the peer's address and publishes an ARP entry for the peer there, so hosts
on that LAN reach the client through this server.  Here the same is a proxy
neighbour entry (``ip neigh add proxy PEER dev IF``) made with pyroute2 when
the session's network comes up and removed when it ends.  As with pppd, the
kernel must forward IPv4 (net.ipv4.ip_forward) for the traffic to pass;
that switch is the administrator's, never flipped here.
"""

from __future__ import annotations

import contextlib
import ipaddress

from pyroute2 import IPRoute

from pypptp.tun import TunError, _off_loop

__all__ = ["add_proxy_arp", "remove_proxy_arp"]

NTF_PROXY = 0x08


def _lan_interface(ip: IPRoute, peer: ipaddress.IPv4Address) -> tuple[int, str] | None:
    """(index, name) of the first non-ppp interface whose IPv4 network contains ``peer``."""
    names = {link["index"]: link.get_attr("IFLA_IFNAME") for link in ip.get_links()}
    for address in ip.get_addr(family=2):
        name = names.get(address["index"], "")
        if name.startswith("ppp") or name == "lo":
            continue
        network = ipaddress.IPv4Network(f"{address.get_attr('IFA_ADDRESS')}/{address['prefixlen']}", strict=False)
        if peer in network and network.prefixlen < 32:
            return address["index"], name
    return None


def add_proxy_arp(peer: ipaddress.IPv4Address) -> str | None:
    """Publish ``peer`` on its LAN; returns the interface name, or None when no LAN holds it
    (pppd logs "Cannot determine ethernet address for proxy ARP" then)."""
    found: list[str] = []

    def netlink() -> None:
        with IPRoute() as ip:
            lan = _lan_interface(ip, peer)
            if lan is not None:
                ip.neigh("replace", dst=str(peer), ifindex=lan[0], flags=NTF_PROXY)
                found.append(lan[1])

    _off_loop(netlink, f"cannot add a proxy ARP entry for {peer}")
    return found[0] if found else None


def remove_proxy_arp(peer: ipaddress.IPv4Address, interface: str) -> None:
    def netlink() -> None:
        with IPRoute() as ip:
            index = ip.link_lookup(ifname=interface)
            if index:
                ip.neigh("del", dst=str(peer), ifindex=index[0], flags=NTF_PROXY)

    with contextlib.suppress(TunError):  # the interface or the entry is already gone
        _off_loop(netlink, f"cannot remove the proxy ARP entry for {peer}")
