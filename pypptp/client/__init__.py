"""The library's PPTP client: :mod:`~pypptp.client.tunnel` brings a tunnel up (and ``python -m
pypptp.client.tunnel`` keeps one on a TUN device); :mod:`~pypptp.client.demo` is ``pypptp-demo``."""

from pypptp.client.tunnel import PptpClientSession, client_link_config

__all__ = ["PptpClientSession", "client_link_config"]
