"""pptpd's localip/remoteip pool: list syntax, pptpd's slot rules, lowest-free allocation, errors."""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pypptp.daemon.pool import (
    DEFAULT_LOCALIP,
    DEFAULT_REMOTEIP,
    MAX_ADDRESSES,
    AddressPool,
    Lease,
    PoolError,
    parse_address_list,
)


def ips(*texts: str) -> list[IPv4Address]:
    return [IPv4Address(text) for text in texts]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("192.168.0.1", ips("192.168.0.1")),
        ("192.168.0.234-238", ips("192.168.0.234", "192.168.0.235", "192.168.0.236", "192.168.0.237", "192.168.0.238")),
        ("192.168.0.234-238,192.168.0.245", ips(*(f"192.168.0.{n}" for n in (234, 235, 236, 237, 238, 245)))),
        ("198.18.0.5-5", ips("198.18.0.5")),
        (" 198.18.0.1 , 198.18.0.2 ", ips("198.18.0.1", "198.18.0.2")),  # white space around entries
        (
            "198.18.0.254-198.18.1.1",
            ips("198.18.0.254", "198.18.0.255", "198.18.1.0", "198.18.1.1"),
        ),  # full end address
        ("198.18-19.1.231", ips("198.18.1.231", "198.19.1.231")),  # pptpd: the dash in another octet
        ("198.18.1-2.7", ips("198.18.1.7", "198.18.2.7")),
        ("198.18-19.0.7", ips("198.18.0.7", "198.19.0.7")),
        ("198.18.0.1,198.18.0.1", ips("198.18.0.1", "198.18.0.1")),  # duplicates are the pool's business
    ],
)
def test_list_syntax(text: str, expected: list[IPv4Address]) -> None:
    assert parse_address_list(text, "f:1", "remoteip") == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "f:3: remoteip: empty"),
        ("198.18.0.1,,198.18.0.2", "f:3: remoteip: empty entry"),
        ("198.18.0.1,", "f:3: remoteip: empty entry"),
        ("vpn.example.com", "f:3: remoteip: 'vpn.example.com' is not an IPv4 address or range (host names"),
        ("198.18.0", "f:3: remoteip: '198.18.0' is not an IPv4 address"),
        ("198.18.0.256", "f:3: remoteip: '198.18.0.256' is not an IPv4 address or range"),
        ("198.18.0.1-300", "f:3: remoteip: '198.18.0.1-300' is not an IPv4 address or range"),
        ("198.18.0.9-3", "f:3: remoteip: '198.18.0.9-3': the range ends before it starts"),
        ("198.18.1.0-198.18.0.1", "f:3: remoteip: '198.18.1.0-198.18.0.1': the range ends before it starts"),
        ("198.18.0.1-2-3", "f:3: remoteip: '198.18.0.1-2-3': a range has one '-'"),
        ("198.18.0.1-0.2", "f:3: remoteip: '198.18.0.1-0.2' is not an address range"),
        ("198.18.0.1-", "f:3: remoteip: '198.18.0.1-' is not an IPv4 address or range"),
        ("0.0.0.0", "f:3: remoteip: 0.0.0.0 is the unspecified address"),
        ("127.0.0.1", "f:3: remoteip: 127.0.0.1 is a loopback address"),
        ("224.0.0.1", "f:3: remoteip: 224.0.0.1 is a multicast address"),
        ("255.255.255.255", "f:3: remoteip: 255.255.255.255 is a reserved address"),
        ("198.18.0.0-198.19.0.0", f"f:3: remoteip: '198.18.0.0-198.19.0.0': more than {MAX_ADDRESSES} addresses"),
        ("198.18.0.0-198.18.255.255,198.19.0.0", f"f:3: remoteip: more than {MAX_ADDRESSES} addresses"),
    ],
)
def test_list_errors_name_where(text: str, message: str) -> None:
    with pytest.raises(PoolError) as caught:
        parse_address_list(text, "f:3", "remoteip")
    assert str(caught.value).startswith(message), str(caught.value)


def test_a_full_size_range_is_accepted() -> None:
    assert len(parse_address_list("198.18.0.0-198.18.255.255", "f:1")) == MAX_ADDRESSES


def test_seed_configuration_has_six_sessions_sharing_one_local_address() -> None:
    pool = AddressPool.parse("192.168.0.1", "192.168.0.234-238,192.168.0.245", "/etc/pptpd.conf")
    assert pool.capacity == 6 and pool.shared_local and pool.warnings == []
    leases = [pool.acquire() for _ in range(6)]
    assert [lease.remote for lease in leases if lease] == ips(
        *(f"192.168.0.{n}" for n in (234, 235, 236, 237, 238, 245))
    )
    assert {lease.local for lease in leases if lease} == {IPv4Address("192.168.0.1")}
    assert pool.acquire() is None and pool.in_use == 6


@pytest.mark.parametrize(
    ("localip", "remoteip", "capacity", "warning"),
    [
        ("198.18.0.1", "198.19.0.1-10", 10, None),  # one local address: shared, capacity = remote count
        ("198.18.0.1-10", "198.19.0.1-10", 10, None),  # one local per session
        ("198.18.0.1-4", "198.19.0.1-10", 4, "f:2: remoteip: 10 addresses for 4 local ones: only the first 4 are used"),
        ("198.18.0.1-10", "198.19.0.1-4", 4, "f:1: localip: 10 addresses for 4 remote ones: only the first 4 are used"),
        ("198.18.0.1,198.18.0.1", "198.19.0.1-2", 2, None),  # pptpd lets sessions share a repeated local address
    ],
)
def test_capacity_follows_pptpd(localip: str, remoteip: str, capacity: int, warning: str | None) -> None:
    pool = AddressPool.parse(localip, remoteip, "f", local_where="f:1", remote_where="f:2")
    assert pool.capacity == capacity
    assert pool.warnings == ([warning] if warning else [])


def test_one_local_address_per_session_pairs_by_index() -> None:
    pool = AddressPool.parse("198.18.0.1-3", "198.19.0.1-3")
    assert not pool.shared_local
    assert [pool.acquire() for _ in range(3)] == [
        Lease(IPv4Address(f"198.18.0.{n}"), IPv4Address(f"198.19.0.{n}"), n - 1) for n in (1, 2, 3)
    ]


def test_lowest_free_slot_first() -> None:
    pool = AddressPool.parse("198.18.0.1", "198.19.0.1-5")
    leases = [pool.acquire() for _ in range(5)]
    assert all(leases)
    pool.release(leases[3])  # type: ignore[arg-type]
    pool.release(leases[1])  # type: ignore[arg-type]
    assert pool.in_use == 3
    again = pool.acquire()
    assert again == leases[1] and again is not None and again.index == 1
    assert pool.acquire() == leases[3]
    assert pool.acquire() is None


def test_release_of_a_lease_not_in_use_raises() -> None:
    pool = AddressPool.parse("198.18.0.1", "198.19.0.1-2")
    lease = pool.acquire()
    assert lease is not None
    pool.release(lease)
    with pytest.raises(ValueError, match="not in use"):
        pool.release(lease)
    foreign = Lease(IPv4Address("198.19.9.9"), IPv4Address("198.19.0.1"), 0)
    pool.acquire()
    with pytest.raises(ValueError, match="not in use"):
        pool.release(foreign)


@pytest.mark.parametrize(
    ("localip", "remoteip", "message"),
    [
        ("198.18.0.1", "198.19.0.1,198.19.0.2,198.19.0.1", "pptpd.conf:9: remoteip: 198.19.0.1 is listed twice"),
        ("198.18.0.1", "198.18.0.1-3", "pptpd.conf:9: remoteip: 198.18.0.1 is also a local address"),
        ("198.18.0.1-3", "198.18.0.3-5", "pptpd.conf:9: remoteip: 198.18.0.3 is also a local address"),
        ("host", "198.19.0.1", "pptpd.conf:8: localip: 'host' is not an IPv4 address"),
        ("198.18.0.1", "", "pptpd.conf:9: remoteip: empty"),
    ],
)
def test_pool_errors_name_the_line(localip: str, remoteip: str, message: str) -> None:
    with pytest.raises(PoolError) as caught:
        AddressPool.parse(localip, remoteip, "pptpd.conf", local_where="pptpd.conf:8", remote_where="pptpd.conf:9")
    assert str(caught.value).startswith(message), str(caught.value)


def test_where_alone_prefixes_both_lists() -> None:
    with pytest.raises(PoolError, match=r"^/etc/pptpd\.conf: localip: 'x'"):
        AddressPool.parse("x", "198.18.0.2", "/etc/pptpd.conf")
    with pytest.raises(PoolError, match=r"^remoteip: 'y'"):
        AddressPool.parse("198.18.0.1", "y")


def test_absent_lists_fall_back_to_pptpd_defaults_with_a_warning() -> None:
    pool = AddressPool.parse(None, None, "/etc/pptpd.conf")
    assert pool.local == tuple(parse_address_list(DEFAULT_LOCALIP)) and len(pool.local) == 100
    assert pool.remote == tuple(parse_address_list(DEFAULT_REMOTEIP)) and pool.capacity == 100
    assert pool.warnings == [
        "/etc/pptpd.conf: no localip: pptpd's default 192.168.0.1-100 is used",
        "/etc/pptpd.conf: no remoteip: pptpd's default 192.168.1.1-100 is used",
    ]
    only_remote = AddressPool.parse("198.18.0.1", None)
    assert only_remote.capacity == 100 and only_remote.shared_local
    assert only_remote.warnings == ["no remoteip: pptpd's default 192.168.1.1-100 is used"]


def test_lease_at_bounds() -> None:
    pool = AddressPool.parse("198.18.0.1", "198.19.0.1-2")
    assert pool.lease_at(1) == Lease(IPv4Address("198.18.0.1"), IPv4Address("198.19.0.2"), 1)
    with pytest.raises(IndexError):
        pool.lease_at(2)


def test_direct_construction_needs_addresses() -> None:
    with pytest.raises(PoolError, match="localip: no address"):
        AddressPool([], ips("198.18.0.1"))
    with pytest.raises(PoolError, match=r"^x: remoteip: no address"):
        AddressPool(ips("198.18.0.1"), [], remote_where="x")


# -- addresses pinned in chap-secrets -------------------------------------------------------------


def test_pinned_addresses_leave_the_dynamic_pool() -> None:
    """Seed: remoteip 192.168.0.234-238,192.168.0.245 and bob pinned to .245: anyone else gets one of the
    other five, and bob's own slot is his whenever he comes."""
    pool = AddressPool.parse("192.168.0.1", "192.168.0.234-238,192.168.0.245")
    assert pool.reserve({IPv4Address("192.168.0.245"), IPv4Address("10.9.9.9")}) == ips("192.168.0.245")
    assert pool.available == 5
    leases = [pool.acquire() for _ in range(6)]
    assert [str(lease.remote) for lease in leases if lease] == [f"192.168.0.{n}" for n in range(234, 239)]
    assert leases[5] is None
    bob = pool.acquire_remote(IPv4Address("192.168.0.245"))
    assert bob is not None and bob.remote == IPv4Address("192.168.0.245")
    assert pool.acquire_remote(IPv4Address("192.168.0.245")) is None  # in use
    assert pool.acquire_remote(IPv4Address("10.9.9.9")) is None  # not in this pool
    pool.release(bob)
    assert pool.acquire() is None  # still reserved for bob
    pool.reserve(set())  # bob's record removed, SIGHUP: the address is anyone's again
    assert pool.acquire() == bob


def test_a_pinned_slot_taken_before_its_turn_is_skipped_then_comes_back() -> None:
    pool = AddressPool.parse("198.18.0.1", "198.18.1.1-4")
    third = pool.acquire_remote(IPv4Address("198.18.1.3"))
    assert third is not None
    assert [str(pool.acquire().remote) for _ in range(3)] == ["198.18.1.1", "198.18.1.2", "198.18.1.4"]  # type: ignore[union-attr]
    assert pool.acquire() is None
    pool.release(third)
    assert pool.acquire() == third


@given(
    st.lists(st.tuples(st.sampled_from(["acquire", "pinned", "release", "reserve"]), st.integers(0, 7)), max_size=60)
)
def test_slots_are_never_handed_out_twice(operations: list[tuple[str, int]]) -> None:
    """Any mix of dynamic leases, pinned leases, releases and changes of the reserved set: a slot is held
    by at most one lease, acquire() gives the lowest free unreserved slot, and every slot comes back."""
    check_against_model(8, 3, operations)


# -- draining: an ended session's slot, while its teardown goes on ---------------------------------


def test_a_draining_slot_is_handed_out_only_when_nothing_else_is_free() -> None:
    pool = AddressPool.parse("198.18.0.1", "198.18.1.1-3")
    first, second = pool.acquire(), pool.acquire()
    assert first is not None and second is not None
    pool.release(first, draining=True)
    assert pool.is_draining(0) and pool.draining == 1 and pool.in_use == 1 and pool.available == 2
    third = pool.acquire()
    assert third is not None and third.index == 2  # not slot 0, lower as it is
    again = pool.acquire()  # only the draining one is left: handed out, still draining (the caller waits)
    assert again == first and pool.is_draining(0)
    assert pool.acquire() is None
    pool.drained(0)  # the old teardown is over: the new session goes on with the slot
    assert not pool.is_draining(0) and pool.in_use == 3 and pool.acquire() is None
    pool.release(again)
    assert pool.acquire() == first


def test_drained_frees_the_slot_and_the_lowest_free_comes_first_again() -> None:
    pool = AddressPool.parse("198.18.0.1", "198.18.1.1-3")
    leases = [pool.acquire() for _ in range(3)]
    pool.release(leases[0], draining=True)  # type: ignore[arg-type]
    pool.release(leases[1], draining=True)  # type: ignore[arg-type]
    assert pool.acquire() == leases[0]  # the one that started draining first
    pool.drained(1)
    pool.drained(1)  # harmless twice
    assert pool.acquire() == leases[1] and not pool.is_draining(1)
    assert "draining=1" in repr(pool)


def test_a_slot_taken_while_draining_and_given_back_drains_on() -> None:
    """A session that took a draining slot and ended before that teardown was over (it never made its
    device): the slot is not free before the first teardown is over."""
    pool = AddressPool.parse("198.18.0.1", "198.18.1.1")
    lease = pool.acquire()
    assert lease is not None
    pool.release(lease, draining=True)
    taken = pool.acquire()
    assert taken == lease
    pool.release(taken)
    assert pool.is_draining(0) and pool.in_use == 0
    assert pool.acquire() == lease  # (still only as a draining slot)
    pool.release(lease)
    pool.drained(0)
    assert not pool.is_draining(0) and pool.acquire() == lease


def test_a_pinned_user_gets_its_draining_slot_and_a_reserved_one_stays_reserved() -> None:
    pool = AddressPool.parse("192.168.0.1", "192.168.0.234-235")
    pool.reserve({IPv4Address("192.168.0.235")})
    bob = pool.acquire_remote(IPv4Address("192.168.0.235"))
    assert bob is not None
    pool.release(bob, draining=True)
    first = pool.acquire()
    assert first is not None and first.index == 0
    assert pool.acquire() is None  # bob's draining slot is still reserved for bob
    assert pool.acquire_remote(IPv4Address("192.168.0.235")) == bob and pool.is_draining(1)
    pool.release(bob, draining=True)
    pool.drained(1)
    assert pool.acquire() is None  # free again, and still bob's
    pool.reserve(set())
    assert pool.acquire() == bob


def test_a_pinned_slot_taken_early_and_draining_is_not_handed_out_in_its_turn() -> None:
    pool = AddressPool.parse("198.18.0.1", "198.18.1.1-3")
    early = pool.acquire_remote(IPv4Address("198.18.1.2"))  # before acquire() ever reached slot 1
    assert early is not None
    pool.release(early, draining=True)
    assert [pool.acquire().index for _ in range(2)] == [0, 2]  # type: ignore[union-attr]
    pool.drained(1)
    assert pool.acquire() == early


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["acquire", "acquire", "pinned", "release", "drain", "drained", "reserve"]),
            st.integers(0, 3),
        ),
        max_size=80,
    )
)
def test_draining_slots_are_never_handed_out_twice_and_always_last(operations: list[tuple[str, int]]) -> None:
    """Any mix of leases, releases (draining or not), ends of teardowns and reserved sets, against a model:
    acquire() gives the lowest slot that is neither held, draining nor reserved, else the draining one
    (not held, not reserved) that started draining first; a slot is held by one lease at most; a draining
    slot is free only once drained and given back."""
    check_against_model(4, 3, operations)  # (few slots: a full pool, where draining ones go out, is common)


def check_against_model(size: int, step: int, operations: list[tuple[str, int]]) -> None:
    """``operations`` on a pool of ``size`` slots, each result held to a model (see the two tests above;
    ``reserve n`` reserves slots n and n * ``step`` for an odd n, none for an even one); then every slot
    comes back."""
    pool = AddressPool.parse("198.18.0.1", f"198.18.1.0-{size - 1}")
    held: dict[int, Lease] = {}
    draining: list[int] = []  # oldest first
    reserved: set[int] = set()
    for operation, n in operations:
        if operation == "acquire":
            lease = pool.acquire()
            free = [i for i in range(size) if i not in held and i not in draining and i not in reserved]
            waiting = [i for i in draining if i not in held and i not in reserved]
            expected = min(free) if free else waiting[0] if waiting else None
            assert (lease.index if lease else None) == expected
        elif operation == "pinned":
            lease = pool.acquire_remote(IPv4Address(f"198.18.1.{n}"))
            assert (lease is None) == (n in held)
        elif operation in ("release", "drain"):
            lease = held.pop(n, None)
            if lease is not None:
                pool.release(lease, draining=operation == "drain")
                if operation == "drain":
                    if n in draining:
                        draining.remove(n)
                    draining.append(n)
            continue
        elif operation == "drained":
            pool.drained(n)
            if n in draining:
                draining.remove(n)
            continue
        else:
            reserved = {n, (n * step) % size} if n % 2 else set()
            pool.reserve({IPv4Address(f"198.18.1.{i}") for i in reserved})
            continue
        if lease is not None:
            assert lease.index not in held
            held[lease.index] = lease
        assert all(pool.is_draining(i) == (i in draining) for i in range(size))
    for lease in held.values():
        pool.release(lease)
    for index in range(size):
        pool.drained(index)
    pool.reserve(set())
    assert pool.draining == 0
    assert sorted(lease.index for lease in (pool.acquire() for _ in range(size)) if lease) == list(range(size))
