"""The library's PPTP client: :mod:`~pypptp.client.tunnel` brings a tunnel up (and ``python -m
pypptp.client.tunnel`` keeps one on a TUN device); :mod:`~pypptp.client.demo` is ``pypptp-demo``.

The names are imported on first use, so that ``python -m pypptp.client.tunnel`` runs its module once
(an eager import here made runpy warn that the module was already in ``sys.modules``)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pypptp.client.tunnel import PptpClientSession, client_link_config

__all__ = ["PptpClientSession", "client_link_config"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("pypptp.client.tunnel"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
