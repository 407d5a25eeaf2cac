"""Kernel and IP helpers with no protocol state.

:mod:`~pypptp.host.tun` (the ``pppN`` TUN devices), :mod:`~pypptp.host.proxyarp` (proxy neighbour
entries), :mod:`~pypptp.host.bpf` (the GRE socket's per-worker filter), :mod:`~pypptp.host.netns`
(throw-away network namespaces for tests and the demo), :mod:`~pypptp.host.mss` (TCP MSS clamping),
:mod:`~pypptp.host.wtmp` (wtmp records for ``last``, glibc's ``updwtmp``),
:mod:`~pypptp.host.firewall` (nftables/iptables rulesets read and walked) and :mod:`~pypptp.host.diagnose`
(what on this host stops PPTP: ``pypptpd --diagnose`` and the daemon's run-time hints).
"""

from pypptp.host.mss import clamp_mss, mss_for_mtu
from pypptp.host.netns import NetnsPair, netns_available, run_in_netns, two_hosts
from pypptp.host.proxyarp import add_proxy_arp, remove_proxy_arp
from pypptp.host.tun import TunDevice, TunError, UnitClaim, claim_unit

__all__ = [
    "NetnsPair",
    "TunDevice",
    "TunError",
    "UnitClaim",
    "add_proxy_arp",
    "claim_unit",
    "clamp_mss",
    "mss_for_mtu",
    "netns_available",
    "remove_proxy_arp",
    "run_in_netns",
    "two_hosts",
]
