"""PPTP control channel (RFC 2637): codec, stream framer and sans-IO connection.

Nothing in this package does I/O: see :mod:`pypptp.aio.server` and
:mod:`pypptp.aio.client` for the asyncio layer.
"""

from pypptp.ctrl import constants, events, messages
from pypptp.ctrl.callids import CallIdAllocator
from pypptp.ctrl.connection import ControlConfig, ControlConnection, ControlState, LocalProtocolError, Role
from pypptp.ctrl.constants import *  # noqa: F403
from pypptp.ctrl.events import *  # noqa: F403
from pypptp.ctrl.framer import ControlStreamFramer
from pypptp.ctrl.messages import *  # noqa: F403

__all__ = [
    "CallIdAllocator",
    "ControlConfig",
    "ControlConnection",
    "ControlState",
    "ControlStreamFramer",
    "LocalProtocolError",
    "Role",
    *constants.__all__,
    *events.__all__,
    *messages.__all__,
]
