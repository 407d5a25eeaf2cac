"""pptpd's address pool: the ``localip`` and ``remoteip`` lists of pptpd.conf(5).

Each list is comma-separated; an entry is one address or a range:

* ``192.168.0.245``: one address;
* ``192.168.0.234-238``: a range whose end is the last octet (pptpd's form);
  pptpd also lets the dash sit in another octet, ``198.18-19.1.231`` being
  198.18.1.231 and 198.19.1.231, and so do we;
* ``192.168.0.234-192.168.0.238``: a range with a full end address (ours;
  pptpd reads it as a host name and fails).

White space around entries is ignored.  Host names are refused (pptpd
resolves them once, at start-up; a daemon should not depend on DNS to read its
configuration).  A list, and each range, holds at most :data:`MAX_ADDRESSES`.

The slots, as pptpd's manager builds them (``processIPStr`` in pptpd.c, the
slot table in pptpmanager.c): slot *i* pairs remote address *i* with local
address *i*, or with the only local address when ``localip`` holds one
address, which every session then shares.  The number of sessions is the
number of remote addresses, or the smaller of the two counts when there are
several local addresses; pptpd lowers ``connections`` to it ("Maximum of N
connections reduced to M, not enough IP addresses given") and ignores the
addresses beyond ``connections``.  The daemon does the same with
:attr:`AddressPool.capacity` (:mod:`pypptp.daemon.config`).  A new session
takes the lowest free slot, as pptpd's ``slot_find_empty`` does.

Without ``localip`` or ``remoteip``, pptpd does not leave the choice to pppd
(only ``delegate`` does that): it falls back to its compiled-in lists,
``192.168.0.1-100`` (local) and ``192.168.1.1-100`` (remote), see
``DEFAULT_LOCAL_IP_LIST`` in pptpd's defaults.h.  We do the same, so that a
pptpd.conf without them behaves as before, and say so in
:attr:`AddressPool.warnings`.

Where we are stricter than pptpd, with the reason:

* a remote address listed twice is an error in both (pptpd: "Remote IP
  address ... in config is a duplicate!"), but pptpd only notices among the
  first ``connections`` addresses;
* a remote address that is also a local address is an error: the peer would
  get the server's own address.  pptpd does not check;
* unusable addresses (0.0.0.0, loopback, multicast, class E (240/4) and the
  broadcast address) are errors: pppd refuses such a peer address at run
  time, one session at a time.

Addresses pinned to users in chap-secrets (a single address in a record's
address list) are reserved: :meth:`AddressPool.reserve` takes the slots whose
remote address is pinned out of the dynamic allocation, so no other session
gets a pinned user's address; that user's session takes its own slot with
:meth:`AddressPool.acquire_remote` (pptpd does not do this: it hands the
address out to anyone, and pppd then gives the pinned user the same one).

Draining: a session's addresses are not free again the moment it ends.  Its ``pppN`` is still being
removed then (the kernel routes the peer address through the old device until it is unlisted), its proxy
ARP entry withdrawn and its ip-down run, which undoes by address what ip-up did (``route del -net ... gw
$5``): a client that redials at once and gets the same address would have its new route, proxy ARP entry
or firewall rule removed by its old session's teardown.  pptpd never had the problem, its slot being free
only once pppd had exited, after ip-down.  So the daemon releases such a lease with ``draining=True``: the
slot waits among the *draining* ones until :meth:`AddressPool.drained` (the teardown is over, or took too
long: the daemon bounds it), and :meth:`AddressPool.acquire` prefers any free slot to a draining one; when
only draining slots are left it hands out the one that started draining first, and the daemon holds the
new session's network until that slot's teardown is over.

Worker processes (``pypptpd --workers N``, :mod:`pypptp.daemon.workers`) hand out from the whole
pool together: after :meth:`AddressPool.share_across_processes`, a slot is also claimed across the
daemon's processes (:class:`pypptp.host.claims.Claims`, name ``slot/I``) when it is handed out, and
released with the lease.  :meth:`AddressPool.acquire` then takes the lowest slot that no worker holds,
so the workers together keep pptpd's rule that a limit of ``connections`` uses only the first
``connections`` slots, and a killed worker's slots are free again at once (the kernel drops its claims).
A draining slot keeps its claim until it is drained, and its worker holds ``drain/I`` meanwhile: the
other workers skip it while anything else is free.  When nothing else is, one process may wait for it:
the one that holds ``wait/I`` (the worker that drains it, handing it to a new session of its own, or
another, whose lease is then :meth:`~AddressPool.waiting` until :meth:`~AddressPool.settle` gets it the
slot's claim, once the draining worker lets go of it).  A process that takes ``slot/I`` while another
holds ``wait/I`` lets go of it again, so the slot goes to the one waiting; the draining worker releases
``drain/I`` before ``slot/I``, so whoever sees ``drain/I`` held knows ``slot/I`` is not free yet.
"""

from __future__ import annotations

import dataclasses
import heapq
from collections.abc import Sequence
from ipaddress import IPv4Address

from pypptp.host.claims import Claim, Claims

__all__ = ["DEFAULT_LOCALIP", "DEFAULT_REMOTEIP", "MAX_ADDRESSES", "AddressPool", "Lease", "PoolError"]

MAX_ADDRESSES = 65536
"""The most addresses one list (and one range) may hold."""
DEFAULT_LOCALIP = "192.168.0.1-100"
"""pptpd's ``DEFAULT_LOCAL_IP_LIST``, used when pptpd.conf has no ``localip``."""
DEFAULT_REMOTEIP = "192.168.1.1-100"
"""pptpd's ``DEFAULT_REMOTE_IP_LIST``, used when pptpd.conf has no ``remoteip``."""


class PoolError(ValueError):
    """An address list is unusable; the text names where it came from."""


@dataclasses.dataclass(frozen=True)
class Lease:
    """One slot of the pool: the addresses of one session's two ends."""

    local: IPv4Address
    remote: IPv4Address
    index: int
    """The slot number, from 0; the lowest free one is handed out first."""


def _octets(text: str, where: str, entry: str) -> list[int]:
    values: list[int] = []
    for part in text.split("."):
        if not part.isdigit() or not part.isascii() or len(part) > 3 or int(part) > 255:
            raise PoolError(f"{where}{entry!r} is not an IPv4 address or range (host names are not resolved)")
        values.append(int(part))
    return values


def _as_int(octets: Sequence[int]) -> int:
    return int.from_bytes(bytes(octets), "big")


def _entry_addresses(entry: str, where: str, room: int) -> range | list[int]:
    """The addresses of one entry, as integers, in order; at most ``room`` of them."""
    if entry.count("-") > 1:
        raise PoolError(f"{where}{entry!r}: a range has one '-'")
    if "-" not in entry:
        octets = _octets(entry, where, entry)
        if len(octets) != 4:
            raise PoolError(f"{where}{entry!r} is not an IPv4 address (host names are not resolved)")
        return [_as_int(octets)]
    left_text, right_text = entry.split("-")
    left, right = _octets(left_text, where, entry), _octets(right_text, where, entry)
    if len(left) == 4 and len(right) == 4:  # a.b.c.d-e.f.g.h
        first, last = _as_int(left), _as_int(right)
        if last < first:
            raise PoolError(f"{where}{entry!r}: the range ends before it starts")
        if last - first + 1 > room:
            raise PoolError(f"{where}{entry!r}: more than {MAX_ADDRESSES} addresses")
        return range(first, last + 1)
    if len(left) + len(right) != 5:  # pptpd's a.b.c.d-e: the dash splits one octet
        raise PoolError(f"{where}{entry!r} is not an address range (a.b.c.d-e or a.b.c.d-e.f.g.h)")
    low, high = left[-1], right[0]
    if high < low:
        raise PoolError(f"{where}{entry!r}: the range ends before it starts")
    if high - low + 1 > room:
        raise PoolError(f"{where}{entry!r}: more than {MAX_ADDRESSES} addresses")
    return [_as_int([*left[:-1], n, *right[1:]]) for n in range(low, high + 1)]


def _unusable(address: IPv4Address) -> str:
    if address.is_unspecified:
        return "the unspecified address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_reserved:  # class E (240/4), the broadcast address included
        return "a reserved address"
    return ""


def parse_address_list(text: str, where: str = "", what: str = "address list") -> list[IPv4Address]:
    """The addresses of one pptpd list, in order (duplicates kept); raise :class:`PoolError`."""
    prefix = f"{where}: {what}: " if where else f"{what}: "
    if not text.strip():
        raise PoolError(f"{prefix}empty")
    values: list[int] = []
    for raw in text.split(","):
        entry = raw.strip()
        if not entry:
            raise PoolError(f"{prefix}empty entry in {text.strip()!r}")
        values.extend(_entry_addresses(entry, prefix, MAX_ADDRESSES - len(values)))
        if len(values) > MAX_ADDRESSES:
            raise PoolError(f"{prefix}more than {MAX_ADDRESSES} addresses")
    addresses = [IPv4Address(value) for value in values]
    for address in addresses:
        reason = _unusable(address)
        if reason:
            raise PoolError(f"{prefix}{address} is {reason}")
    return addresses


class AddressPool:
    """The session slots of ``localip`` and ``remoteip``; hands out the lowest free one."""

    def __init__(
        self,
        local: Sequence[IPv4Address],
        remote: Sequence[IPv4Address],
        *,
        local_where: str = "",
        remote_where: str = "",
    ) -> None:
        local_prefix = f"{local_where}: localip: " if local_where else "localip: "
        remote_prefix = f"{remote_where}: remoteip: " if remote_where else "remoteip: "
        if not local:
            raise PoolError(f"{local_prefix}no address")
        if not remote:
            raise PoolError(f"{remote_prefix}no address")
        self.local: tuple[IPv4Address, ...] = tuple(IPv4Address(a) for a in local)
        self.remote: tuple[IPv4Address, ...] = tuple(IPv4Address(a) for a in remote)
        self.warnings: list[str] = []
        seen: set[IPv4Address] = set()
        for address in self.remote:
            if address in seen:
                raise PoolError(f"{remote_prefix}{address} is listed twice")
            seen.add(address)
        own = seen.intersection(self.local)
        if own:
            raise PoolError(f"{remote_prefix}{min(own)} is also a local address (localip)")
        self.shared_local = len(self.local) == 1
        """True when every session uses the one local address."""
        if self.shared_local:
            self.capacity = len(self.remote)
        else:
            self.capacity = min(len(self.local), len(self.remote))
            if len(self.local) > len(self.remote):
                self.warnings.append(
                    f"{local_prefix}{len(self.local)} addresses for {len(self.remote)} remote ones: "
                    f"only the first {self.capacity} are used"
                )
            elif len(self.local) < len(self.remote):
                self.warnings.append(
                    f"{remote_prefix}{len(self.remote)} addresses for {len(self.local)} local ones: "
                    f"only the first {self.capacity} are used"
                )
        self._next = 0  # slots from this one on have never been handed out
        self._free: list[int] = []  # released slots (a heap)
        self._leased: set[int] = set()
        self._reserved: frozenset[int] = frozenset()  # slots of pinned addresses: never handed out by acquire()
        self._parked: list[int] = []  # free reserved slots taken off the heap, back on it when unreserved
        self._draining: dict[int, None] = {}  # released slots whose teardown is under way, oldest first
        self._claims: Claims | None = None  # set: other processes hand out slots of this pool too
        self._held: dict[int, Claim] = {}  # shared: the cross-process claim of each slot leased here
        self._drain_claims: dict[int, Claim] = {}  # shared: ``drain/I`` of each slot draining here
        self._wait_claims: dict[int, Claim] = {}  # shared: ``wait/I``: this process is next for slot I (see waiting())

    @classmethod
    def parse(
        cls,
        localip: str | None,
        remoteip: str | None,
        where: str = "",
        *,
        local_where: str | None = None,
        remote_where: str | None = None,
    ) -> AddressPool:
        """The pool of pptpd.conf's ``localip`` and ``remoteip`` values (None: absent: pptpd's defaults).

        ``where`` (say ``/etc/pptpd.conf``) prefixes every error;
        ``local_where`` / ``remote_where`` override it for one list (say ``/etc/pptpd.conf:12``).
        """
        lw = where if local_where is None else local_where
        rw = where if remote_where is None else remote_where
        notes: list[str] = []
        if localip is None:
            localip, lw = DEFAULT_LOCALIP, where
            notes.append(f"{where + ': ' if where else ''}no localip: pptpd's default {DEFAULT_LOCALIP} is used")
        if remoteip is None:
            remoteip, rw = DEFAULT_REMOTEIP, where
            notes.append(f"{where + ': ' if where else ''}no remoteip: pptpd's default {DEFAULT_REMOTEIP} is used")
        pool = cls(
            parse_address_list(localip, lw, "localip"),
            parse_address_list(remoteip, rw, "remoteip"),
            local_where=lw,
            remote_where=rw,
        )
        pool.warnings[:0] = notes
        return pool

    def share_across_processes(self, claims: Claims) -> None:
        """From now on other processes (the daemon's other workers) hand out this pool's slots too: each
        slot is claimed across them (``slot/I``) when leased here, and skipped while another holds it.
        Call it before any slot is handed out."""
        if self._leased:
            raise ValueError("share_across_processes: slots are already in use")
        self._claims = claims

    @property
    def size(self) -> int:
        """How many slots this pool hands out: :attr:`capacity`."""
        return self.capacity

    @property
    def in_use(self) -> int:
        """Slots handed out and not yet released."""
        return len(self._leased)

    def lease_at(self, index: int) -> Lease:
        """Slot ``index``'s addresses (whether in use or not)."""
        if not 0 <= index < self.capacity:
            raise IndexError(f"slot {index} is outside the pool (capacity {self.capacity})")
        local = self.local[0] if self.shared_local else self.local[index]
        return Lease(local=local, remote=self.remote[index], index=index)

    @property
    def draining(self) -> int:
        """Slots released with ``draining=True`` and not yet :meth:`drained`."""
        return len(self._draining)

    def is_draining(self, index: int) -> bool:
        """Slot ``index`` was released while its session's teardown goes on, and is not drained yet."""
        return index in self._draining

    def acquire(self) -> Lease | None:
        """The lowest free slot that is not reserved, now in use; else the draining slot (not reserved)
        that started draining first (:meth:`is_draining` still says so: the caller waits for its
        teardown); None when every such slot is taken."""
        if self._claims is not None:
            return self._acquire_shared()
        for _ in range(self.capacity + 1):
            index = self._pop_free()
            if index is None:
                return self._take_draining()
            if index in self._reserved:
                self._parked.append(index)
                continue
            self._leased.add(index)
            return self.lease_at(index)
        return None

    def _take_draining(self) -> Lease | None:
        """The draining slot (not reserved) released first, now in use (its claim, shared, is held already;
        and ``wait/I`` too, until it is drained, unless another process is waiting for it)."""
        for index in self._draining:
            if index not in self._reserved and index not in self._leased:
                lease = self._lease_draining(index)
                if lease is not None:
                    return lease
        return None

    def _lease_draining(self, index: int) -> Lease | None:
        """Draining slot ``index`` (this process's), now in use; shared, ``wait/I`` held until it is drained,
        and None if another process holds it (that process is next for the slot)."""
        if self._claims is not None:
            wait = self._claims.take(f"wait/{index}")
            if wait is None:
                return None
            self._wait_claims[index] = wait
        self._leased.add(index)
        return self.lease_at(index)

    def _acquire_shared(self) -> Lease | None:
        """:meth:`acquire` across processes: the lowest slot no process holds.  The slots below it are
        held (at most ``connections`` of them, plus the reserved ones), one ``bind`` each.  Else a
        draining slot: one of this process's own (it holds their claims), else one another process
        drains, :meth:`waiting` for it."""
        assert self._claims is not None
        for index in range(self.capacity):
            if index not in self._leased and index not in self._reserved and index not in self._draining:
                lease = self._take_shared(index)
                if lease is not None:
                    return lease
        return self._take_draining() or self._wait_for_another()

    def _take_shared(self, index: int) -> Lease | None:
        """Slot ``index``, now in use here and claimed across processes; None if another process holds it,
        or waits for it (``wait/I``: it is that process's turn)."""
        assert self._claims is not None
        claim = self._claims.take(f"slot/{index}")
        if claim is None:  # another worker's session has it
            return None
        if self._held_elsewhere(f"wait/{index}"):
            claim.release()
            return None
        self._held[index] = claim
        self._leased.add(index)
        return self.lease_at(index)

    def _held_elsewhere(self, name: str) -> bool:
        """Another process holds claim ``name`` (a probe: taken and let go at once if nobody does)."""
        assert self._claims is not None
        claim = self._claims.take(name)
        if claim is None:
            return True
        claim.release()
        return False

    def _wait_for_another(self) -> Lease | None:
        """A slot another process drains, now in use here and :meth:`waiting` (``wait/I`` held), or taken
        outright if that process let go of it meanwhile; None if there is none nobody waits for."""
        assert self._claims is not None
        for index in range(self.capacity):
            if index in self._leased or index in self._reserved or index in self._draining:
                continue
            if not self._held_elsewhere(f"drain/{index}"):
                continue  # in use, not draining
            wait = self._claims.take(f"wait/{index}")
            if wait is None:  # another process is next for it
                continue
            claim = self._claims.take(f"slot/{index}")
            if claim is not None:  # the teardown ended meanwhile
                wait.release()
                self._held[index] = claim
            elif not self._held_elsewhere(f"drain/{index}"):  # ended, and someone took the slot first
                wait.release()
                continue
            else:
                self._wait_claims[index] = wait  # (not draining here: waiting() says so)
            self._leased.add(index)
            return self.lease_at(index)
        return None

    def waiting(self, index: int) -> bool:
        """Slot ``index`` is leased here while another process still drains it: its session must not use
        the addresses before :meth:`settle` says the slot is ours."""
        return index in self._wait_claims and index not in self._draining  # (else it is this process's own)

    def settle(self, index: int) -> bool:
        """A :meth:`waiting` slot: True once its claim is ours (the other process's teardown is over;
        try again later otherwise, a ``bind`` each time).  True for a slot that is not waiting."""
        if not self.waiting(index):
            return True
        assert self._claims is not None
        claim = self._claims.take(f"slot/{index}")
        if claim is None:
            return False
        self._held[index] = claim
        self._wait_claims.pop(index).release()
        return True

    def _pop_free(self) -> int | None:
        """The lowest free slot: a released one, else the next never handed out (skipping those that
        :meth:`acquire_remote` took early)."""
        if self._free:
            return heapq.heappop(self._free)
        while self._next < self.capacity:
            index = self._next
            self._next += 1
            if index not in self._leased and index not in self._draining:  # (drained: it is freed then)
                return index
        return None

    @property
    def available(self) -> int:
        """Slots :meth:`acquire` can still hand out, draining ones included (shared across processes: not
        counting the other processes' leases, which this one does not know)."""
        return self.capacity - len(self._leased) - len(self._reserved.difference(self._leased))

    def reserve(self, addresses: frozenset[IPv4Address] | set[IPv4Address]) -> list[IPv4Address]:
        """Keep the slots whose remote address is in ``addresses`` (pinned to users in chap-secrets) out of
        :meth:`acquire` from now on, instead of whatever was reserved before; slots in use stay in use.
        Returns the reserved addresses that lie in this pool."""
        index_of = {address: index for index, address in enumerate(self.remote[: self.capacity])}
        reserved = frozenset(index_of[a] for a in addresses if a in index_of)
        for index in self._parked:  # no longer reserved: back among the free slots
            if index not in reserved:
                heapq.heappush(self._free, index)
        self._parked = [index for index in self._parked if index in reserved]
        self._reserved = reserved
        return sorted(self.remote[index] for index in reserved)

    def acquire_remote(self, remote: IPv4Address) -> Lease | None:
        """The slot whose remote address is ``remote``, now in use: a pinned user's own slot, reserved or
        not.  None when it is in use (here, or shared: by another process) or not in this pool."""
        index = next((i for i, address in enumerate(self.remote[: self.capacity]) if address == remote), None)
        if index is None or index in self._leased:
            return None
        if index in self._draining:  # the pinned user is back before its last session's teardown is over
            return self._lease_draining(index)
        if self._claims is not None:
            return self._take_shared(index)
        if index < self._next:  # handed out before: it waits among the free or parked
            if index in self._parked:
                self._parked.remove(index)
            else:
                self._free.remove(index)
                heapq.heapify(self._free)
        self._leased.add(index)  # (never handed out yet: _pop_free skips it while it is leased)
        return self.lease_at(index)

    def release(self, lease: Lease, *, draining: bool = False) -> None:
        """Give a slot back; releasing a lease that is not in use raises :class:`ValueError`.

        ``draining``: its session's teardown is still under way; the slot is free only after
        :meth:`drained` (meanwhile :meth:`acquire` hands it out only when nothing else is free)."""
        if lease.index not in self._leased or self.lease_at(lease.index) != lease:
            raise ValueError(f"{lease} is not in use in this pool")
        index = lease.index
        self._leased.remove(index)
        if self.waiting(index):  # it never was ours: nothing of it to drain
            self._wait_claims.pop(index).release()
        elif draining:
            self._draining.pop(index, None)  # (taken while draining: it goes to the back)
            self._draining[index] = None
            if self._claims is not None and index not in self._drain_claims:
                claim = self._claims.take(f"drain/{index}")
                if claim is not None:
                    self._drain_claims[index] = claim
        elif index in self._draining:  # taken while draining, back before that ended: it drains on
            claim = self._wait_claims.pop(index, None)  # (and this process is no longer next for it)
            if claim is not None:
                claim.release()
        else:
            self._free_slot(index)

    def drained(self, index: int) -> None:
        """Slot ``index``'s teardown is over: it is no longer draining, and free unless it was handed out
        again meanwhile (that session goes on with it)."""
        if index in self._draining:
            del self._draining[index]
            for claims in (self._drain_claims, self._wait_claims):  # ``drain/I`` before ``slot/I``
                claim = claims.pop(index, None)
                if claim is not None:
                    claim.release()
            if index not in self._leased:
                self._free_slot(index)

    def _free_slot(self, index: int) -> None:
        claim = self._held.pop(index, None)
        if claim is not None:
            claim.release()
            return
        if index < self._next:  # otherwise _pop_free reaches it in its turn
            heapq.heappush(self._free, index)

    def __repr__(self) -> str:
        share = "" if self._claims is None else " shared"
        draining = f" draining={len(self._draining)}" if self._draining else ""
        return (
            f"<AddressPool capacity={self.capacity}{share} in_use={self.in_use}{draining} "
            f"shared_local={self.shared_local}>"
        )
