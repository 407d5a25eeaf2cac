"""pypptp: a pure-Python PPTP VPN server (pptpd + pppd) and protocol library.

Layers, bottom to top: :mod:`pypptp.gre` (enhanced GRE data path),
:mod:`pypptp.ctrl` (RFC 2637 control channel), :mod:`pypptp.ppp` (PPP), then
the asyncio daemon (:mod:`pypptp.aio.server`, :mod:`pypptp.daemon.cli`) and client
(:mod:`pypptp.aio.client`).
"""

__version__ = "0.1.0"
