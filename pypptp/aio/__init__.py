"""The asyncio layer: every use of the event loop.

The sans-IO cores (:mod:`pypptp.ctrl`, :mod:`pypptp.gre`, :mod:`pypptp.ppp`) take bytes and a time and
give back bytes and events; this layer owns the sockets, the TUN descriptors and the timers that drive
them: :mod:`~pypptp.aio.timer` (one timer following a core's next deadline),
:mod:`~pypptp.aio.control` (a control connection on a TCP transport), :mod:`~pypptp.aio.server` (the
control server, with its admission budget) and :mod:`~pypptp.aio.client` (a control client),
:mod:`~pypptp.aio.gre` (the raw GRE socket and its calls), :mod:`~pypptp.aio.session` (one call's PPP
session and its hot path), :mod:`~pypptp.aio.buffers` (the data path's shared buffers) and
:mod:`~pypptp.aio.throttle` (the per-address authentication failure budget the server enforces).
"""
