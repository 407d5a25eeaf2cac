"""pppd's ``proxyarp``: answer ARP for a client's tunnel address on the LAN it appears to be on.

pppd (sifproxyarp) finds the Ethernet-like interface whose IPv4 subnet holds
the peer's address and publishes an ARP entry for the peer there, so hosts
on that LAN reach the client through this server.  Here the same is a proxy
neighbour entry (``ip neigh add proxy PEER dev IF``) made with pyroute2 when
the session's network comes up and removed when it ends.  As with pppd, the
kernel must forward IPv4 (net.ipv4.ip_forward) for the traffic to pass;
that switch is the administrator's, never flipped here.

Finding the LAN means dumping every IPv4 address of the host: about 10 ms
with 200 interfaces (61 ms when every link was dumped too).  Both functions
are coroutines that run the netlink work on a thread of their own
(:func:`pypptp.host.tun.netlink_soon`) and never block the event loop: the
daemon continues the session's network-up (ip-up) and network-down (ip-down)
when they are done, in pppd's order (the entry exists before ip-up, and is
gone before ip-down).  Do not cancel them: a cancelled add may still have
made its entry.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress

from pyroute2 import IPRoute

from pypptp.host.tun import TunError, netlink_soon

__all__ = ["add_proxy_arp", "remove_proxy_arp"]

NTF_PROXY = 0x08


def _lan_interface(ip: IPRoute, peer: ipaddress.IPv4Address) -> tuple[int, str] | None:
    """(index, name) of the first non-ppp interface whose IPv4 network contains ``peer``.  The name is
    the address's label (``eth0``, or ``eth0:1`` for an alias): no dump of every link is needed."""
    for address in ip.get_addr(family=2):
        name = str(address.get_attr("IFA_LABEL") or "").partition(":")[0]
        if name.startswith("ppp") or name == "lo":
            continue
        network = ipaddress.IPv4Network(f"{address.get_attr('IFA_ADDRESS')}/{address['prefixlen']}", strict=False)
        if peer in network and network.prefixlen < 32:
            return address["index"], name
    return None


async def add_proxy_arp(peer: ipaddress.IPv4Address) -> str | None:
    """Publish ``peer`` on its LAN; returns the interface name, or None when no LAN holds it
    (pppd logs "Cannot determine ethernet address for proxy ARP" then).  Raises TunError."""

    def netlink(ip: IPRoute) -> str | None:
        lan = _lan_interface(ip, peer)
        if lan is None:
            return None
        ip.neigh("replace", dst=str(peer), ifindex=lan[0], flags=NTF_PROXY)
        return lan[1]

    return await asyncio.wrap_future(netlink_soon(netlink, f"cannot add a proxy ARP entry for {peer}"))


async def remove_proxy_arp(peer: ipaddress.IPv4Address, interface: str) -> None:
    def netlink(ip: IPRoute) -> None:
        index = ip.link_lookup(ifname=interface)
        if index:
            ip.neigh("del", dst=str(peer), ifindex=index[0], flags=NTF_PROXY)

    with contextlib.suppress(TunError):  # the interface or the entry is already gone
        await asyncio.wrap_future(netlink_soon(netlink, f"cannot remove the proxy ARP entry for {peer}"))
