"""Kernel and IP helpers with no protocol state.

:mod:`~pypptp.host.tun` (the ``pppN`` TUN devices), :mod:`~pypptp.host.proxyarp` (proxy neighbour
entries), :mod:`~pypptp.host.bpf` (the GRE socket's per-worker filter), :mod:`~pypptp.host.netns`
(throw-away network namespaces for tests and the demo) and :mod:`~pypptp.host.mss` (TCP MSS clamping).
"""
