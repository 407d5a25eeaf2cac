"""The ``pppN`` TUN devices that stand in for pppd's ppp interfaces.

A session's device is created with python-pytun (``IFF_TUN | IFF_NO_PI``:
bare IP packets, no packet-information header) under the lowest free
``pppN`` name, as pppd's units are numbered, and configured with pyroute2
the way pppd configures a ppp interface: a point-to-point address (ours,
with the peer's as the other end, which makes the kernel add the /32 route
to the peer), the MTU, and link up.  IPv6 is switched off on the device
unless IPV6CP runs, so the kernel's router solicitations do not knock on a
tunnel that cannot carry them.

Hot-path I/O is done on the raw file descriptor with ``os.read`` and
``os.write``: pytun's own ``read()`` raises ``pytun.Error`` instead of
``BlockingIOError`` on an empty non-blocking descriptor.

Everything here must run in the network namespace that should own the
device (the daemon runs in its own; a test client creates its device from a
thread that entered the client namespace).

Units are claimed, not just picked: a unit is chosen when the call is
established but the device is created seconds later, when IPCP is up, so
:func:`claim_unit` returns a :class:`UnitClaim` that holds the unit until it
is released, and a released claim can never drop a newer claim on the same
unit (a device removed in the background used to release its unit a second
time, after a new session had claimed it: two sessions then made the same
``pppN`` and the second died with EBUSY).  A :class:`TunDevice` made from a
claim owns it from then on and releases it once the device is gone.

Several processes picking units (``pypptpd --workers N``): after
:func:`share_units_between_processes`, :func:`claim_unit` also claims the unit
by binding an abstract UNIX socket named after it (``\\0pypptpd/pppN``).
Abstract names belong to the network namespace, as ``pppN`` names do; a
bind is atomic, and the kernel drops the name when its holder closes it or
dies, so a killed worker leaves no stale claim.  ``TunDevice(unit,
retry=True)`` is the safety net for anything else that creates ``pppN``
meanwhile (a pppd on the same host): if the name turns out to be taken, it
takes the next free unit instead (a few times at most).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import ipaddress
import os
import threading
from collections.abc import Callable
from typing import TypeVar

import pytun
from pyroute2 import IPRoute

from pypptp.host.claims import Claim, Claims

__all__ = ["TunDevice", "TunError", "UnitClaim", "claim_unit", "share_units_between_processes", "wait_closed"]

_T = TypeVar("_T")
MAX_UNITS = 4096
MAX_RETRIES = 8
"""How many other units ``TunDevice(unit, retry=True)`` tries when the name it was given is taken."""
_claimed: dict[int, UnitClaim] = {}  # units this process holds or is creating
_claim_lock = threading.Lock()
_shared: Claims | None = None  # set: other processes pick units too; claim them with abstract sockets


_closer: concurrent.futures.ThreadPoolExecutor | None = None
_closing: set[concurrent.futures.Future[None]] = set()
_closing_lock = threading.Lock()


class TunError(OSError):
    """A TUN device could not be created or configured."""


def _exists(name: str) -> bool:
    return os.path.exists(f"/sys/class/net/{name}")


def share_units_between_processes(tag: str | None = "pypptpd") -> None:
    """From now on other processes in this namespace pick units too: claim each across processes.

    ``tag`` names the claims (``\\0TAG/pppN``); every process that shares the units must use the same
    one.  ``None`` goes back to claims within this process only."""
    global _shared
    _shared = None if tag is None else Claims(tag)


class UnitClaim:
    """One ``pppN`` unit held by this process (and, shared, across processes) until released."""

    __slots__ = ("_shared", "owned_by_device", "unit")

    def __init__(self, unit: int, shared: Claim | None) -> None:
        self.unit = unit
        self._shared = shared  # the claim across processes, when shared
        self.owned_by_device = False
        """Set by the :class:`TunDevice` made from this claim: it releases the claim once the device is
        gone, and :meth:`release` leaves it alone meanwhile."""

    def release(self) -> None:
        """Give the unit back, unless a device owns the claim; harmless twice, and never touches a newer
        claim on the same unit."""
        if not self.owned_by_device:
            self._drop()

    def _drop(self) -> None:
        with _claim_lock:
            if _claimed.get(self.unit) is not self:
                return
            del _claimed[self.unit]
        if self._shared is not None:
            self._shared.release()

    def __repr__(self) -> str:
        return f"<UnitClaim ppp{self.unit}{' (device)' if self.owned_by_device else ''}>"


def claim_unit() -> UnitClaim:
    """The lowest N such that ``pppN`` is neither claimed here nor an existing interface (pppd's rule),
    nor claimed by another process sharing the units; claimed until released."""
    with _claim_lock:
        for unit in range(MAX_UNITS):
            if unit in _claimed or _exists(f"ppp{unit}"):
                continue
            shared = None
            if _shared is not None:
                shared = _shared.take(f"ppp{unit}")
                if shared is None:  # another worker picked it
                    continue
            claim = _claimed[unit] = UnitClaim(unit, shared)
            return claim
    raise TunError(f"no free pppN name below ppp{MAX_UNITS}")


class TunDevice:
    """One ``pppN`` TUN device: create, configure, read/write by fd, close."""

    def __init__(self, claim: UnitClaim | None = None, *, netns: str | None = None, retry: bool = False) -> None:
        """Create ``ppp<claim.unit>`` (a new claim when None) and own the claim from then on.

        ``retry``: if that name was created by someone else meanwhile, take the next free unit (at most
        :data:`MAX_RETRIES` times; :attr:`unit` and :attr:`claim` tell which one was made).  On failure
        the claim is left to the caller."""
        self.netns = netns
        """Create and configure the device in this named namespace (a client in a test) instead of ours."""
        self.claim: UnitClaim | None = None
        if netns is not None:
            self.unit, self._device = _in_netns(netns, _first_free_in_namespace)
        else:
            claim = claim_unit() if claim is None else claim
            for attempt in range(MAX_RETRIES + 1):
                try:
                    self._device = pytun.TunTapDevice(name=f"ppp{claim.unit}", flags=pytun.IFF_TUN | pytun.IFF_NO_PI)
                    break
                except pytun.Error as exc:
                    if not retry or attempt == MAX_RETRIES or not _exists(f"ppp{claim.unit}"):
                        raise TunError(f"cannot create ppp{claim.unit}: {exc}") from None
                    claim.release()
                    claim = claim_unit()
            claim.owned_by_device = True
            self.claim = claim
            self.unit = claim.unit
        self.name = f"ppp{self.unit}"
        self.fd = self._device.fileno()
        os.set_blocking(self.fd, False)
        self.closed = False
        self.gone: concurrent.futures.Future[None] | None = None
        """Once :meth:`close` was called: done when the device is gone (the kernel has unlisted it, and
        its routes with it), which the daemon waits for before it hands the device's addresses out again."""

    def configure(
        self,
        local: ipaddress.IPv4Address,
        peer: ipaddress.IPv4Address,
        mtu: int,
        *,
        ipv6: bool = False,
    ) -> None:
        """Point-to-point address ``local`` peer ``peer``, the MTU, IPv6 off unless asked, link up."""

        def ipv6_off() -> None:
            if not ipv6:
                switch = f"/proc/sys/net/ipv6/conf/{self.name}/disable_ipv6"
                with contextlib.suppress(OSError), open(switch, "w", encoding="ascii") as f:  # no IPv6: nothing to do
                    f.write("1")

        def netlink(ip: IPRoute) -> None:
            index = _index(ip, self.name)
            ip.addr("add", index=index, local=str(local), address=str(peer), prefixlen=32)
            ip.link("set", index=index, mtu=mtu, state="up")

        self._netlink(netlink, f"cannot configure {self.name}", before=ipv6_off)

    def set_mtu(self, mtu: int) -> None:
        def netlink(ip: IPRoute) -> None:
            ip.link("set", index=_index(ip, self.name), mtu=mtu)

        self._netlink(netlink, f"cannot set the MTU of {self.name}")

    def _netlink(
        self, function: Callable[[IPRoute], None], what: str, before: Callable[[], None] | None = None
    ) -> None:
        """``function`` in the device's namespace: ours on a netlink thread (:func:`_off_loop`), another
        (:attr:`netns`) in a thread that entered it, with an IPRoute of its own."""
        if self.netns is None:
            if before is not None:
                before()
            _off_loop(function, what)
            return

        def there() -> None:
            if before is not None:
                before()
            with IPRoute() as ip:
                try:
                    function(ip)
                except Exception as exc:  # pyroute2 raises NetlinkError and friends
                    raise TunError(f"{what}: {exc}") from None

        _in_netns(self.netns, there)

    def close(self, *, wait: bool = False) -> None:
        """Remove the device (closing the last descriptor deletes a non-persistent TUN).

        The kernel takes about 18 ms to unregister a network device (it waits for an RCU grace
        period), measured with 200 sessions here: done on the event loop, every hang-up would stall
        every other session that long.  So the descriptor is closed, and the unit released, on a
        small thread pool; ``wait`` (or :func:`wait_closed`, for everything pending) blocks until done.
        The caller must have stopped using :attr:`fd` (removed it from the loop) before this."""
        if self.closed:
            return
        self.closed = True
        device, claim = self._device, self.claim

        def remove() -> None:
            with contextlib.suppress(Exception):
                device.close()
            if claim is not None:
                claim._drop()  # the device is gone: the unit is free again

        if wait:
            remove()
            self.gone = concurrent.futures.Future()
            self.gone.set_result(None)
            return
        with _closing_lock:
            global _closer
            if _closer is None:
                _closer = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="pppN-close")
            future = _closer.submit(remove)
            _closing.add(future)
        future.add_done_callback(_forget)
        self.gone = future


def _forget(future: concurrent.futures.Future[None]) -> None:
    with _closing_lock:
        _closing.discard(future)


def wait_closed(timeout: float = 30.0) -> bool:
    """Block until every device closed in the background is gone (shutdown, tests); False on timeout."""
    with _closing_lock:
        pending = list(_closing)
    _, not_done = concurrent.futures.wait(pending, timeout=timeout)
    return not not_done


def _first_free_in_namespace() -> tuple[int, pytun.TunTapDevice]:
    """In a foreign namespace our sysfs view is wrong: try ppp0, ppp1... until one can be made."""
    for unit in range(64):
        name = f"ppp{unit}"
        if os.path.exists(f"/proc/self/task/{threading.get_native_id()}/net/dev"):
            with open(f"/proc/self/task/{threading.get_native_id()}/net/dev", encoding="ascii") as f:
                if any(line.split(":")[0].strip() == name for line in f):
                    continue
        try:
            return unit, pytun.TunTapDevice(name=name, flags=pytun.IFF_TUN | pytun.IFF_NO_PI)
        except pytun.Error:
            continue
    raise TunError("no free pppN name in the namespace")


def _in_netns(netns: str, function: Callable[[], _T]) -> _T:
    from pypptp.host.netns import run_in_netns  # only tests and the demo use namespaces

    return run_in_netns(netns, function)


# -- netlink off the event loop ---------------------------------------------------------------------
#
# pyroute2 0.9's synchronous API drives an asyncio loop of its own and refuses to run inside one that is
# already running (ours), so every netlink call runs on a thread, with an IPRoute socket of its own, in
# one of two small pools: "device" for the calls the event loop waits for (a pppN's address, MTU and
# state at network-up: about 2 ms, whatever the number of interfaces, measured with 200), and "lookup"
# for the ones it does not wait for (proxy ARP, which dumps every IPv4 address: about 10 ms with 200
# interfaces; see :mod:`pypptp.host.proxyarp`), so that a device never queues behind a lookup.

_netlink_pools: dict[str, concurrent.futures.ThreadPoolExecutor] = {}
_netlink_lock = threading.Lock()
NETLINK_THREADS = {"device": 1, "lookup": 2}


def netlink_soon(
    function: Callable[[IPRoute], _T], what: str, *, pool: str = "lookup"
) -> concurrent.futures.Future[_T]:
    """``function(ip)`` on a netlink thread of ``pool``, with that thread's IPRoute; the future's
    exception is a :class:`TunError` saying ``what`` failed.  Await it with :func:`asyncio.wrap_future`."""
    with _netlink_lock:
        executor = _netlink_pools.get(pool)
        if executor is None:
            executor = _netlink_pools[pool] = concurrent.futures.ThreadPoolExecutor(
                max_workers=NETLINK_THREADS[pool], thread_name_prefix=f"netlink-{pool}"
            )
    return executor.submit(_on_netlink_thread, function, what)


def _on_netlink_thread(function: Callable[[IPRoute], _T], what: str) -> _T:
    try:
        with IPRoute() as ip:  # a socket per call: a session that ends leaves no descriptor behind
            return function(ip)
    except TunError:
        raise
    except Exception as exc:  # pyroute2 raises NetlinkError and friends
        raise TunError(f"{what}: {exc}") from None


def _off_loop(function: Callable[[IPRoute], _T], what: str) -> _T:
    """``function(ip)`` on the "device" netlink thread; the caller (the event loop) waits for it, as
    pppd waits for its ioctls: a few round trips, about 2 ms."""
    return netlink_soon(function, what, pool="device").result()


def _index(ip: IPRoute, name: str) -> int:
    found = ip.link_lookup(ifname=name)
    if not found:
        raise TunError(f"no interface {name}")
    return int(found[0])


def _forget_netlink_threads() -> None:
    """In a forked child (a worker): the parent's threads are not there; new pools on first use."""
    global _netlink_lock
    _netlink_pools.clear()
    _netlink_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_netlink_threads)
