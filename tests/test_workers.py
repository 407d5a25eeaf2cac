"""``pypptpd --workers N``: the GRE socket filter, the shares of Call IDs, pool, connections and units,
and the real daemon with two workers between two namespaces (sessions on both, SIGTERM, SIGKILL)."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ipaddress
import os
import random
import re
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pypptp.aio.gre import GreTransport
from pypptp.client.tunnel import PptpClientError, PptpClientSession, client_link_config
from pypptp.ctrl.callids import CallIdAllocator
from pypptp.daemon import cli
from pypptp.daemon.pool import AddressPool
from pypptp.daemon.workers import (
    EXIT_CANNOT_START,
    LOAD,
    Dispatcher,
    Supervisor,
    effective_workers,
    listening_socket,
    split,
)
from pypptp.gre.codec import decode_header, encode_packet
from pypptp.host import tun
from pypptp.host.bpf import attach_filter, gre_call_id_filter, open_gre_socket
from pypptp.host.claims import Claims
from pypptp.host.netns import NetnsPair, run_in_netns
from tests.conftest import REPO, Pypptpd, tunnel_ping
from tests.test_daemon_netns import open_client

CONF = ["localip 192.168.0.1", "remoteip 192.168.1.10-29", "connections 20"]
SERVER_TUNNEL_IP = "192.168.0.1"
RECORDER = '#!/bin/sh\necho "$1 $5" >> "{out}.$(basename "$0")"\n'


# -- the filter program ------------------------------------------------------------------------------


def test_filter_program_for_worker_1_of_2() -> None:
    program = gre_call_id_filter(2, 1)
    assert len(program) == 6 * 8
    instructions = [struct.unpack_from("=HBBI", program, offset) for offset in range(0, len(program), 8)]
    assert instructions == [
        (0xB1, 0, 0, 0),  # ldxb 4*([0]&0xf)
        (0x48, 0, 0, 6),  # ldh [x+6]: the GRE Call ID
        (0x94, 0, 0, 2),  # mod #2
        (0x15, 0, 1, 1),  # jeq #1, accept, drop
        (0x06, 0, 0, 0x40000),  # ret: the whole packet
        (0x06, 0, 0, 0),  # ret: drop
    ]
    if sys.byteorder == "little":
        words = ["b100000000000000", "4800000006000000", "9400000002000000", "1500000101000000"]
        words += ["0600000000000400", "0600000000000000"]
        assert program.hex() == "".join(words)


@pytest.mark.parametrize(("workers", "index"), [(1, 0), (2, 2), (2, -1), (0, 0)])
def test_filter_needs_two_workers_and_an_index_among_them(workers: int, index: int) -> None:
    with pytest.raises(ValueError):
        gre_call_id_filter(workers, index)


def test_attach_refuses_a_partial_instruction() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock, pytest.raises(ValueError):
        attach_filter(sock, b"\x06\x00" * 3)


# -- the shares ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("stride", "offset", "count"), [(2, 0, 32767), (2, 1, 32768), (3, 2, 21845), (64, 0, 1023)])
def test_call_ids_stay_in_their_class_never_0(stride: int, offset: int, count: int) -> None:
    allocator = CallIdAllocator(stride=stride, offset=offset)
    ids = [allocator.allocate() for _ in range(count)]
    assert None not in ids and 0 not in ids and len(set(ids)) == count
    assert {i % stride for i in ids if i is not None} == {offset}
    assert allocator.allocate() is None and allocator.capacity == count
    allocator.release(ids[0] or 0)
    assert allocator.allocate() == ids[0]


def test_call_ids_of_a_class_are_still_random() -> None:
    ids = [CallIdAllocator(stride=2, offset=1).allocate() for _ in range(16)]
    assert len(set(ids)) > 8


def test_the_default_class_draws_exactly_as_before() -> None:
    """Seeded runs (replay tests) give the same IDs as the allocator without classes did."""
    source = random.Random(3)
    expected = [1 + source.randrange(65535) for _ in range(20)]
    allocator = CallIdAllocator(randbelow=random.Random(3).randrange)
    assert [allocator.allocate() for _ in range(20)] == expected


@pytest.mark.parametrize(("stride", "offset"), [(0, 0), (2, 2), (2, -1)])
def test_call_id_class_must_make_sense(stride: int, offset: int) -> None:
    with pytest.raises(ValueError):
        CallIdAllocator(stride=stride, offset=offset)


def _claims() -> Claims:
    return Claims(f"pypptp-test-{os.getpid()}-{random.getrandbits(32)}")


def test_workers_hand_out_the_whole_pool_lowest_first_never_the_same_slot() -> None:
    """Two workers' pools over the same claims (as two processes: a claim is a bind, atomic across them):
    each takes the lowest slot nobody holds, so together they fill the pool in order."""
    claims = _claims()
    pools = [AddressPool.parse("192.168.0.1", "192.168.1.10-16") for _ in range(2)]
    for pool in pools:
        pool.share_across_processes(claims)
    taken = [pools[n % 2].acquire() for n in range(7)]
    assert [lease.index for lease in taken if lease is not None] == list(range(7))
    assert pools[0].acquire() is None and pools[1].acquire() is None  # the whole pool is in use
    assert taken[3] is not None
    pools[1].release(taken[3])  # worker 1's slot, free for worker 0 at once
    again = pools[0].acquire()
    assert again is not None and again.index == 3
    with pytest.raises(ValueError):
        pools[1].release(again)  # not worker 1's lease
    assert pools[1].acquire_remote(ipaddress.IPv4Address("192.168.1.13")) is None  # held by worker 0
    pools[0].release(again)
    pinned = pools[1].acquire_remote(ipaddress.IPv4Address("192.168.1.13"))
    assert pinned is not None and pinned.index == 3
    assert pools[0].acquire_remote(ipaddress.IPv4Address("192.168.1.13")) is None


def _shared_pools(count: int, remoteip: str) -> list[AddressPool]:
    claims = _claims()
    pools = [AddressPool.parse("192.168.0.1", remoteip) for _ in range(count)]
    for pool in pools:
        pool.share_across_processes(claims)
    return pools


def test_a_slot_another_worker_drains_is_waited_for_and_then_handed_over() -> None:
    """Worker A's session ended, its teardown under way; the pool's only slot: worker B's new session gets
    it waiting (no use of the addresses before :meth:`settle`), and nobody else gets it meanwhile."""
    a, b, c = _shared_pools(3, "192.168.1.10")
    first = a.acquire()
    assert first is not None
    a.release(first, draining=True)
    taken = a.acquire()  # A's own new session may take it over...
    assert taken == first
    assert b.acquire() is None  # ...and then B gets nothing: A holds it, and A is next for it
    a.release(taken)  # (A's session ended before the teardown was over: the slot still drains)
    waiting = b.acquire()
    assert waiting == first and b.waiting(0) and not b.settle(0)
    assert a.acquire() is None and c.acquire() is None  # B is next for it
    a.drained(0)  # the teardown is over: A lets go of drain/0, then slot/0
    assert c.acquire() is None  # C takes slot/0, sees B waiting for it, lets go again
    assert b.settle(0) and not b.waiting(0) and b.settle(0)
    assert a.acquire() is None and c.acquire() is None
    b.release(waiting)
    assert c.acquire() == first


def test_another_workers_draining_slot_is_used_only_when_nothing_else_is_free() -> None:
    a, b = _shared_pools(2, "192.168.1.10-11")
    first = a.acquire()
    assert first is not None and first.index == 0
    a.release(first, draining=True)
    other = b.acquire()
    assert other is not None and other.index == 1 and not b.waiting(1)
    last = b.acquire()
    assert last is not None and last.index == 0 and b.waiting(0)
    b.release(last)  # B's session ended before it got the slot: nothing of it to give back
    assert not b.waiting(0) and a.acquire() == first  # A may take its own draining slot again
    a.drained(0)
    a.release(first)
    assert b.acquire() == first and not b.waiting(0)


def test_a_dead_workers_slots_are_free_again() -> None:
    """A worker killed with SIGKILL releases nothing itself: the kernel drops its claims with it."""
    claims = _claims()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the worker: takes slots 0 and 1 and a seat, says so, then waits to be killed
        try:
            pool = AddressPool.parse("192.168.0.1", "192.168.1.10-16")
            pool.share_across_processes(claims)
            held = [pool.acquire(), pool.acquire(), claims.first_free("seat", 5)]
            os.write(write_end, b"ok" if all(held) else b"no")
            time.sleep(60)
        finally:
            os._exit(0)
    os.close(write_end)
    try:
        assert os.read(read_end, 2) == b"ok"
        pool = AddressPool.parse("192.168.0.1", "192.168.1.10-16")
        pool.share_across_processes(claims)
        lease = pool.acquire()
        assert lease is not None and lease.index == 2  # 0 and 1 are the other worker's
        seat = claims.first_free("seat", 5)
        assert seat is not None and seat.name == "seat/1"
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(read_end)
    assert [lease.index for lease in iter(pool.acquire, None)] == [0, 1, 3, 4, 5, 6]
    freed = claims.first_free("seat", 5)
    assert freed is not None and freed.name == "seat/0" and claims.take("seat/0") is None
    seat.release()
    seat.release()  # harmless twice
    assert claims.take("seat/1") is not None


def test_the_dispatcher_hands_each_connection_to_the_least_loaded_worker() -> None:
    """On loopback, without forking: the supervisor's side of two channels, their workers' ends read here."""
    listener = listening_socket("127.0.0.1", 0)
    dispatcher = Dispatcher(listener, 2)
    theirs = [dispatcher.open(index) for index in range(2)]
    address = listener.getsockname()
    clients: list[socket.socket] = []

    def connect(count: int) -> list[int]:
        """``count`` connections; which worker got each (by the fds arriving on their channels)."""
        for _ in range(count):
            clients.append(socket.create_connection(address, timeout=5))
        got: list[int] = []
        for _ in range(100):
            dispatcher.wait(0.05)
            for index, channel in enumerate(theirs):
                if channel.fileno() < 0:  # closed: a worker gone
                    continue
                channel.setblocking(False)
                with contextlib.suppress(BlockingIOError):
                    while True:
                        _, fds, _, _ = socket.recv_fds(channel, 16, 4)
                        for fd in fds:
                            os.close(fd)
                            got.append(index)
            if len(got) == count:
                return got
        raise AssertionError(f"only {got} of {count} connections handed out")

    try:
        assert sorted(connect(4)) == [0, 0, 1, 1]  # nothing reported yet: in flight counts as load
        theirs[0].send(LOAD.pack(2, 0))  # worker 0 received its 2 and closed them; worker 1 holds its 2
        theirs[1].send(LOAD.pack(2, 2))
        assert connect(3) == [0, 0, 1]  # 0 < 2: worker 0 twice, then both hold 2, worker 1 sent fewer
        theirs[1].send(LOAD.pack(2**32 - 1, 0))  # (a report modulo 2**32)
        dispatcher.wait(0.05)
        assert dispatcher.load(1) == 4  # 3 sent, "-1" received: 4 in flight
        theirs[0].close()  # worker 0 gone: its channel fails, the next worker takes the connection
        assert connect(1) == [1]
        assert dispatcher.channels[0] is None and dispatcher.dropped == 0
        theirs[1].close()
        clients.append(socket.create_connection(address, timeout=5))
        for _ in range(20):
            dispatcher.wait(0.05)
        assert dispatcher.dropped == 1 and clients[-1].recv(1) == b""  # no worker: closed at once
    finally:
        dispatcher.close()
        for sock in [*clients, *theirs]:
            sock.close()


def test_pending_budget_split_and_workers_lowered() -> None:
    assert split(256, 2) == [128, 128]
    assert split(7, 3) == [3, 2, 2]
    assert sum(split(101, 4)) == 101
    assert effective_workers(4, 100) == (4, None)
    workers, warning = effective_workers(4, 2)
    assert workers == 2 and warning is not None and "lowered to 2" in warning


def test_check_reports_the_split(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    conf, secrets, options = tmp_path / "pptpd.conf", tmp_path / "chap-secrets", tmp_path / "options"
    conf.write_text("localip 192.168.0.1\nremoteip 192.168.1.10-16\nconnections 5\n")
    secrets.write_text("alice pptpd s3cret *\n")
    secrets.chmod(0o600)
    options.write_text("name pptpd\n")  # the server column of alice's line
    argv = ["--check", "-c", str(conf), "--secrets", str(secrets), "--system-options", str(options)]
    assert cli.main([*argv, "--workers", "3"]) == 0
    out = capsys.readouterr().out
    assert "ok: 3 workers: the parent hands each connection to the least-loaded worker" in out
    assert "the pool (7 address(es)) and the 5 connections shared by all" in out
    assert "pending connections 86+85+85" in out
    assert cli.main([*argv, "--workers", "9"]) == 0
    assert "--workers 9 lowered to 5" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        cli.main([*argv, "--workers", "0"])


# -- the supervisor, with stand-in workers ---------------------------------------------------------------


def test_a_worker_that_keeps_dying_is_restarted_a_bounded_number_of_times(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", "pypptpd")
    # every death at the same moment (the supervisor's clock stands still): all within the restart window
    assert Supervisor(2, lambda index: 9, restarts=3, clock=lambda: 0.0).run() == 1
    # 3 restarts, then the death that gives up (the last worker may die again while it is told to stop)
    assert caplog.text.count("exited with status 9; its sessions are lost") == 4
    assert caplog.text.count("restarted (pid") == 3 and "giving up" in caplog.text


def test_restarts_older_than_the_window_are_forgotten(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", "pypptpd")
    runs = tmp_path / "runs"
    readings = iter(range(0, 10_000, 61))  # each death 61 s after the one before: outside a 60 s window

    def worker(index: int) -> int:
        with runs.open("a") as out:
            out.write("run\n")
        return 9 if len(runs.read_text().splitlines()) <= 3 else EXIT_CANNOT_START

    assert Supervisor(1, worker, restarts=1, window=60.0, clock=lambda: float(next(readings))).run() == 1
    assert caplog.text.count("exited with status 9; its sessions are lost") == 3
    assert caplog.text.count("restarted (pid") == 3 and "giving up" not in caplog.text
    assert "could not start" in caplog.text


def test_a_worker_that_cannot_start_stops_the_others(caplog: pytest.LogCaptureFixture) -> None:
    def worker(index: int) -> int:
        if index == 1:
            return EXIT_CANNOT_START
        time.sleep(3600)  # until SIGTERM (its default action: the worker had no time to set handlers)
        return 0

    assert Supervisor(2, worker).run() == 1
    assert "worker 1" in caplog.text and "could not start" in caplog.text and "restarted" not in caplog.text
    assert "SIGKILL" not in caplog.text  # SIGTERM ended worker 0, not the kill a minute later


# -- pppN units across processes ----------------------------------------------------------------------


@pytest.fixture
def shared_units() -> Iterator[str]:
    tag = f"pypptp-test-{os.getpid()}"
    tun.share_units_between_processes(tag)
    try:
        yield tag
    finally:
        tun.share_units_between_processes(None)


def test_a_unit_claimed_by_another_process_is_skipped(shared_units: str) -> None:
    first = tun.claim_unit()
    other = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)  # stands for another worker's claim
    try:
        other.bind(f"\0{shared_units}/ppp{first.unit + 1}")
        second = tun.claim_unit()
        assert second.unit == first.unit + 2
    finally:
        other.close()
    first.release()
    second.release()
    again = tun.claim_unit()
    assert again.unit == first.unit  # released claims are free again, across processes too
    first.release()  # an old claim released again is harmless, and leaves the newer claim alone
    assert tun.claim_unit().unit == first.unit + 1
    again.release()


def test_a_late_release_never_frees_a_newer_claim_on_the_same_unit() -> None:
    """The race behind "cannot create ppp0: Device or resource busy": a session's device, removed in the
    background, released its unit a second time after a new session had claimed it, so a third
    session claimed the same unit and one of the two failed at IPCP-up."""
    old = tun.claim_unit()
    old.release()  # the daemon, at the end of the old session
    new = tun.claim_unit()
    assert new.unit == old.unit
    old._drop()  # the background removal of the old session's device, late
    third = tun.claim_unit()
    assert third.unit != new.unit
    new.release()
    third.release()


# -- namespaces ---------------------------------------------------------------------------------------


def _call_ids(sock: socket.socket) -> list[int]:
    """The Call IDs of the GRE packets queued on ``sock`` (-1: too short to hold one)."""
    ids: list[int] = []
    while True:
        try:
            packet = sock.recv(65536)
        except BlockingIOError:
            return ids
        ihl = (packet[0] & 0x0F) * 4
        ids.append(decode_header(packet[ihl:]).call_id if len(packet) >= ihl + 8 else -1)


@pytest.mark.netns
async def test_two_filtered_sockets_each_receive_exactly_their_class(netns_pair: NetnsPair) -> None:
    ns = netns_pair.server_ns
    filtered = [run_in_netns(ns, lambda i=index: open_gre_socket(2, i)) for index in range(2)]  # type: ignore[misc]
    everything = netns_pair.socket(ns, socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_GRE)
    everything.setblocking(False)
    sender = netns_pair.socket(netns_pair.client_ns, socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_GRE)
    try:
        for call_id in range(10):
            sender.sendto(encode_packet(call_id, b"payload", seq=call_id), (netns_pair.server_ip, 0))
        sender.sendto(b"\x30\x01", (netns_pair.server_ip, 0))  # too short to hold a Call ID: nobody's
        seen: list[int] = []
        deadline = time.monotonic() + 5
        while len(seen) < 11 and time.monotonic() < deadline:
            seen += _call_ids(everything)
            await asyncio.sleep(0.01)
        assert sorted(seen) == [-1, *range(10)]  # all arrived (the unfiltered socket sees every one)
        assert sorted(_call_ids(filtered[0])) == [0, 2, 4, 6, 8]
        assert sorted(_call_ids(filtered[1])) == [1, 3, 5, 7, 9]
    finally:
        for sock in (*filtered, everything, sender):
            sock.close()


@pytest.mark.netns
def test_a_unit_taken_meanwhile_is_replaced_by_the_next(netns_pair: NetnsPair) -> None:
    """``TunDevice(claim, retry=True)``, in the namespace's own view of /sys (as the daemon runs): a claim
    on ppp0 made before another process created ppp0."""
    script = (
        "from pypptp.host.tun import TunDevice, UnitClaim\n"
        "first = TunDevice()\n"
        "second = TunDevice(UnitClaim(0, None), retry=True)\n"
        "print(first.name, second.name)\n"
    )
    result = subprocess.run(
        netns_pair.exec_argv(netns_pair.server_ns, [sys.executable, "-c", script]),
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
        cwd=REPO,
    )
    assert result.stdout.split() == ["ppp0", "ppp1"], result.stderr


# -- the daemon with two workers ------------------------------------------------------------------------


def _interfaces(pair: NetnsPair) -> list[str]:
    out = subprocess.run(["ip", "-n", pair.server_ns, "-o", "link"], capture_output=True, text=True, check=False)
    return re.findall(r"^\d+: (ppp\d+)", out.stdout, re.M)


async def _log_match(daemon: Pypptpd, pattern: str, count: int = 1, timeout: float = 10.0) -> list[re.Match[str]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = list(re.finditer(pattern, daemon.log(), re.M))
        if len(found) >= count:
            return found
        await asyncio.sleep(0.02)
    raise AssertionError(f"{pattern!r} not logged {count} time(s) within {timeout} s:\n{daemon.log()}")


TWO_WORKERS = ["--workers", "2", "--log-budget", "0"]
"""Two workers, every connection's line logged: _connect_to finds which worker took a connection by its
line, and opens more than the 5 a minute from one address that the log budget logs at info level."""


async def _workers(daemon: Pypptpd) -> dict[int, int]:
    """Worker pid -> index, once both listen."""
    await _log_match(daemon, r"listening on", 2)
    return {int(m[2]): int(m[1]) for m in re.finditer(r"MGR: worker (\d+) started \(pid (\d+)\)", daemon.log())}


async def _connect_to(daemon: Pypptpd, wanted: dict[int, int], attempts: int = 60) -> list[tuple[socket.socket, int]]:
    """TCP connections from the client namespace, ``wanted[pid]`` of them accepted by each worker pid.

    The kernel picks the worker by a hash of the ports: connect, see in the log which worker accepted,
    keep the connection if that worker still needs one (bounded)."""
    kept: list[tuple[socket.socket, int]] = []
    need = dict(wanted)
    for _ in range(attempts):
        if not any(need.values()):
            return kept
        sock = daemon.client_socket()
        port = sock.getsockname()[1]
        pattern = rf"pptpd\[(\d+)\]: CTRL: Client {re.escape(daemon.pair.client_ip)}:{port} control connection"
        pid = int((await _log_match(daemon, pattern))[0][1])
        if need.get(pid, 0) > 0:
            need[pid] -= 1
            kept.append((sock, pid))
        else:
            sock.close()
    raise AssertionError(f"the kernel never chose some worker: still needed {need}")


async def _sessions(daemon: Pypptpd, socks: list[tuple[socket.socket, int]], transport: GreTransport) -> list:
    config = client_link_config("alice", "s3cret")
    return list(
        await asyncio.gather(
            *(
                PptpClientSession.connect(
                    daemon.pair.server_ip,
                    user="alice",
                    password="s3cret",
                    config=config,
                    sock=sock,
                    transport=transport,
                    timeout=15,
                )
                for sock, _ in socks
            )
        )
    )


async def _ping_all(sessions: list[PptpClientSession]) -> None:
    """An ICMP Echo-Request from each session to the server's tunnel address, and its reply (within 10 s).
    Sent again every half second until it comes: the server's end of a tunnel comes up a moment after the
    client's when its address was still being released by the session before (its ``pppN`` removed, its
    ip-down run, possibly in the other worker)."""
    replies = await asyncio.wait_for(asyncio.gather(*(tunnel_ping(s, SERVER_TUNNEL_IP, 20) for s in sessions)), 11)
    assert all(replies), replies


def _gre_transport(pair: NetnsPair) -> GreTransport:
    transport = GreTransport()
    transport.open(pair.socket(pair.client_ns, socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_GRE))
    return transport


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.mark.netns
async def test_two_workers_share_six_sessions_then_sigterm_releases_everything(
    start_pypptpd: Callable[..., Pypptpd],
) -> None:
    daemon = start_pypptpd(CONF, TWO_WORKERS)
    out = daemon.workdir / "script"
    for path in (daemon.ip_up, daemon.ip_down):
        path.write_text(RECORDER.format(out=out))
        path.chmod(0o755)
    workers = await _workers(daemon)
    assert sorted(workers.values()) == [0, 1] and int(daemon.pidfile.read_text()) == daemon.process.pid
    daemon.process.send_signal(signal.SIGHUP)
    await _log_match(daemon, r"SIGHUP: secrets and pppd options re-read", 2)  # each worker
    transport = _gre_transport(daemon.pair)
    socks = await _connect_to(daemon, {pid: 3 for pid in workers})
    sessions = await _sessions(daemon, socks, transport)
    try:
        for session, (_, pid) in zip(sessions, socks, strict=True):
            index = workers[pid]
            assert session.call.peer_call_id is not None and session.call.peer_call_id % 2 == index
        slots = sorted(
            int(s.network.local_address) - int(ipaddress.IPv4Address("192.168.1.10")) for s in sessions if s.network
        )
        assert slots == list(range(6))  # one pool: the lowest six slots, whichever worker took each
        await _ping_all(sessions)
        await _log_match(daemon, r"Using interface ppp\d+", 6)
        assert len(set(_interfaces(daemon.pair))) == 6
        assert "cannot create ppp" not in daemon.log()
        daemon.process.send_signal(signal.SIGTERM)
        reasons = await asyncio.wait_for(asyncio.gather(*(s.wait_closed() for s in sessions)), 15)
        assert set(reasons) == {"LCP terminated by peer"}
    finally:
        await asyncio.gather(*(s.close() for s in sessions))
        transport.close()
    status = await asyncio.get_running_loop().run_in_executor(None, daemon.process.wait, 20)
    assert status == 0, daemon.log()
    assert all(_gone(pid) for pid in workers)
    assert _interfaces(daemon.pair) == []
    assert daemon.log().count("MGR: Exit.") == 3  # each worker, then the parent
    downs = Path(f"{out}.ip-down").read_text().split("\n")[:-1]
    ups = Path(f"{out}.ip-up").read_text().split("\n")[:-1]
    assert len(downs) == 6 and sorted(downs) == sorted(ups) and len({line.split()[0] for line in downs}) == 6


@pytest.mark.netns
async def test_a_killed_worker_is_restarted_and_the_other_carries_on(start_pypptpd: Callable[..., Pypptpd]) -> None:
    daemon = start_pypptpd(CONF, TWO_WORKERS)
    workers = await _workers(daemon)
    victim, survivor = sorted(workers, key=workers.__getitem__)
    transport = _gre_transport(daemon.pair)
    socks = await _connect_to(daemon, {victim: 1, survivor: 2})
    sessions = await _sessions(daemon, socks, transport)
    lost = [s for s, (_, pid) in zip(sessions, socks, strict=True) if pid == victim]
    kept = [s for s in sessions if s not in lost]
    try:
        await _ping_all(sessions)
        os.kill(victim, signal.SIGKILL)
        await _log_match(daemon, rf"MGR: worker 0 \(pid {victim}\) killed by signal 9 \(SIGKILL\)")
        restarted = int((await _log_match(daemon, r"MGR: worker 0 restarted \(pid (\d+)\)"))[0][1])
        await asyncio.wait_for(lost[0].control.wait_closed(), 10)  # its TCP connection went with it
        await _ping_all(kept)
        await _log_match(daemon, r"listening on", 3)
        (sock, _), *_ = await _connect_to(daemon, {restarted: 1})
        fresh = (await _sessions(daemon, [(sock, restarted)], transport))[0]
        sessions.append(fresh)
        assert fresh.call.peer_call_id is not None and fresh.call.peer_call_id % 2 == 0
        await _ping_all([*kept, fresh])
        assert len(_interfaces(daemon.pair)) == 3
    finally:
        for session in lost:
            if session.ppp is not None:
                session.ppp.close("worker gone")
        await asyncio.gather(*(s.close() for s in sessions))
        transport.close()
    assert daemon.terminate() == 0, daemon.log()
    assert _interfaces(daemon.pair) == []


@pytest.mark.netns
async def test_workers_end_when_the_supervisor_is_killed(start_pypptpd: Callable[..., Pypptpd]) -> None:
    """No orphan keeps serving where the pid file no longer leads (PR_SET_PDEATHSIG)."""
    daemon = start_pypptpd(CONF, TWO_WORKERS)
    workers = await _workers(daemon)
    daemon.process.kill()
    for _ in range(100):
        if all(_gone(pid) for pid in workers):
            break
        await asyncio.sleep(0.05)
    assert all(_gone(pid) for pid in workers)
    assert daemon.log().count("MGR: Exit.") == 2


# -- one server: the whole pool and limit from every worker, sessions spread by load ---------------------

SEED_POOL = ["localip 192.168.0.1", "remoteip 192.168.0.234-238"]
"""The seed's pool without its pinned address: five addresses, so ``connections`` is 5."""
SEED_ADDRESSES = [f"192.168.0.{n}" for n in range(234, 239)]


def _session_workers(daemon: Pypptpd) -> collections.Counter[int]:
    """Sessions (authenticated, with a unit) by worker pid, from the pppd ``Connect:`` lines."""
    return collections.Counter(int(m[1]) for m in re.finditer(r"pppd\[(\d+)\]: ppp\d+: Connect: ppp", daemon.log()))


async def _ended(daemon: Pypptpd, count: int) -> None:
    """Until the daemon has ended ``count`` sessions and removed their devices: an old ``pppN`` routes its
    peer address until it is unlisted, so a new session given that address before then has its replies
    sent into the old device (as with a single process; a client takes longer to redial)."""
    await _log_match(daemon, r"Connection terminated\.", count, timeout=15)
    deadline = time.monotonic() + 5
    while _interfaces(daemon.pair) and time.monotonic() < deadline:
        await asyncio.sleep(0.01)


@pytest.mark.netns
async def test_five_clients_at_once_on_the_five_addresses_with_two_workers_ten_rounds(
    start_pypptpd: Callable[..., Pypptpd],
) -> None:
    """The issue's bar: five Windows-style clients (MS-CHAPv2, MPPE) connecting at once to the seed pool
    with two workers are all served, each round, on the five addresses (with the kernel's SO_REUSEPORT
    hash and split shares, one of the five was refused in every round: "connection limit 3 reached")."""
    daemon = start_pypptpd(SEED_POOL, TWO_WORKERS)
    workers = await _workers(daemon)
    up = 0
    for round_ in range(10):
        results = await asyncio.gather(*(open_client(daemon, tun=False) for _ in range(5)), return_exceptions=True)
        sessions = [r for r in results if isinstance(r, PptpClientSession)]
        try:
            up += len(sessions)
            assert len(sessions) == 5, (round_, [r for r in results if isinstance(r, BaseException)])
            assert sorted(str(s.network.local_address) for s in sessions if s.network) == SEED_ADDRESSES
            await _ping_all(sessions)
        finally:
            await asyncio.gather(*(s.close() for s in sessions))
        await _ended(daemon, 5 * (round_ + 1))
    assert up == 50
    assert "connection limit" not in daemon.log() and "no address left" not in daemon.log()
    by_worker = _session_workers(daemon)
    assert set(by_worker) == set(workers) and all(count >= 20 for count in by_worker.values()), by_worker
    assert daemon.terminate() == 0, daemon.log()


@pytest.mark.netns
async def test_eight_sessions_on_two_workers_are_split_by_load(start_pypptpd: Callable[..., Pypptpd]) -> None:
    """Each connection goes to the least-loaded worker: 8 sessions at once, 4 and 4 (one off at most);
    the kernel's hash had split them 7/1."""
    daemon = start_pypptpd(CONF, TWO_WORKERS)
    workers = await _workers(daemon)
    sessions = list(await asyncio.gather(*(open_client(daemon, tun=False) for _ in range(8))))
    try:
        await _ping_all(sessions)
        by_worker = _session_workers(daemon)
        assert set(by_worker) == set(workers) and sum(by_worker.values()) == 8
        assert max(by_worker.values()) - min(by_worker.values()) <= 2, by_worker  # 4/4, or 5/3
        calls = collections.Counter(s.call.peer_call_id % 2 for s in sessions if s.call.peer_call_id is not None)
        assert sorted(calls.values()) == sorted(by_worker.values())  # Call ID i mod 2: worker i's
        assert len({s.call.peer_call_id for s in sessions}) == 8
        assert len(set(_interfaces(daemon.pair))) == 8  # pppN unique across the workers
    finally:
        await asyncio.gather(*(s.close() for s in sessions))
    assert daemon.terminate() == 0, daemon.log()


@pytest.mark.netns
async def test_a_killed_workers_addresses_and_seats_are_free_again(start_pypptpd: Callable[..., Pypptpd]) -> None:
    """The five addresses and five seats all held; SIGKILL the worker holding most: its sessions' addresses
    and seats are free again at once (the kernel drops its claims), the survivor's are untouched."""
    daemon = start_pypptpd(SEED_POOL, TWO_WORKERS)
    workers = await _workers(daemon)
    sessions = list(await asyncio.gather(*(open_client(daemon, tun=False) for _ in range(5))))
    try:
        by_worker = _session_workers(daemon)
        victim = max(by_worker, key=by_worker.__getitem__)
        os.kill(victim, signal.SIGKILL)
        await _log_match(daemon, rf"MGR: worker {workers[victim]} restarted")
        await _log_match(daemon, r"listening on", 3)
        lost = by_worker[victim]
        fresh = list(await asyncio.gather(*(open_client(daemon, tun=False) for _ in range(lost))))
        kept = [s for s in sessions if s.ppp is not None and not s.ppp.closed]
        sessions += fresh
        assert len(kept) == 5 - lost
        held = sorted(str(s.network.local_address) for s in [*kept, *fresh] if s.network)
        assert held == SEED_ADDRESSES  # the lost sessions' addresses, handed out again
        await _ping_all([*kept, *fresh])
        with pytest.raises(PptpClientError):  # and the pool is full again
            await open_client(daemon, tun=False)
    finally:
        for session in sessions:
            if session.ppp is not None:
                session.ppp.close("worker gone")
        await asyncio.gather(*(s.close() for s in sessions))
    assert daemon.terminate() == 0, daemon.log()


@pytest.mark.netns
async def test_the_pending_budget_holds_across_workers(start_pypptpd: Callable[..., Pypptpd]) -> None:
    """``--max-pending 4`` with two workers: eight silent connections, four of them dropped (each worker
    keeps two, evicting its oldest), never eight held as two full budgets of four."""
    daemon = start_pypptpd(CONF, [*TWO_WORKERS, "--max-pending", "4"])
    await _workers(daemon)
    socks = [daemon.client_socket() for _ in range(8)]
    try:

        def alive() -> int:
            count = 0
            for sock in socks:
                try:
                    count += sock.recv(1, socket.MSG_PEEK) != b""
                except BlockingIOError:
                    count += 1
                except OSError:
                    pass
            return count

        deadline = time.monotonic() + 10
        while alive() > 4 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
        assert alive() == 4, daemon.log()
        assert len(re.findall(r"dropped to make room|4 pending connections|2 pending connections", daemon.log())) >= 1
    finally:
        for sock in socks:
            sock.close()
    assert daemon.terminate() == 0, daemon.log()
