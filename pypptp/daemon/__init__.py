"""``pypptpd``, the pptpd replacement.

:mod:`~pypptp.daemon.manager` (pptpd's manager, "MGR": one PPP session per call, addresses, scripts),
:mod:`~pypptp.daemon.config` (the whole configuration, ``--check``), :mod:`~pypptp.daemon.cli` (the
command line), :mod:`~pypptp.daemon.workers` (``--workers``), :mod:`~pypptp.daemon.scripts`
(ip-up/ip-down), :mod:`~pypptp.daemon.pool` (``localip``/``remoteip``) and :mod:`~pypptp.daemon.logs`
(log handlers).
"""

from pypptp.daemon.config import DaemonConfig, check, load
from pypptp.daemon.manager import Daemon, DaemonPaths, DaemonSession
from pypptp.daemon.pool import AddressPool, Lease, PoolError

__all__ = [
    "AddressPool",
    "Daemon",
    "DaemonConfig",
    "DaemonPaths",
    "DaemonSession",
    "Lease",
    "PoolError",
    "check",
    "load",
]
