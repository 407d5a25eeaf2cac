"""Many sessions against the real daemon: setup rate, memory per session, aggregate packets per second.

``python -m benchmarks.bench_sessions [--json FILE] [--sessions 200] [--concurrency 1,8,32]
[--pps-sessions 8,64] [--workers 1,2] [--seconds 2] [--repeats 2]`` (root; iproute2).

Black box, so that the figures are what an administrator gets: ``pypptpd -f`` runs as a subprocess
in a throw-away server namespace (MS-CHAPv2, ``require-mppe-128``, stateless MPPE, ``connections
300``, a 354-address pool), and the library client (:class:`~pypptp.client.tunnel.PptpClientSession`,
no TUN) runs in this process, in the client namespace, every session sharing one raw GRE socket (the
kernel copies each GRE packet to every raw GRE socket, so one per session would make the client side
pay once per session for every packet).  :class:`Clients` says what the harness does around the
library client's shared-transport mode (two races, each worth a 3-second stall otherwise).

* **Setup rate** (issue 8 (c)): for each concurrency N, M sessions are established with N connects
  in flight at any time; sessions/s is M over the time from the first TCP connect to the last
  NetworkUp (TCP, SCCRQ, OCRQ, LCP, MS-CHAPv2, CCP/MPPE, IPCP, and the server's ``pppN``), with the
  per-session latency (median, maximum) and the daemon's CPU time per session.  The largest N runs
  first, with ``sessions_total`` sessions, on a daemon that has served one warm-up session; the others
  run with at most :data:`SMALL_RUN` sessions each.
* **Memory per session**: the daemon's resident set (VmRSS, summed over its process tree) after the
  warm-up session came and went, and again with the ``sessions_total`` sessions up; the difference
  over the count, and the RSS after each run has closed its sessions.  Every session is closed
  (LCP Terminate, CCRQ, StopCCRQ) and the server namespace must be left without a ``pppN``.
* **Churn** (issue 20): ``churn`` more rounds of ``sessions_total`` sessions up and closed on the same
  daemon, the RSS with each round up and after it closed.  Closed sessions are freed when they close and
  their memory serves the next ones, so the RSS stays put round after round; sessions kept in reference
  cycles until a full collection made it climb (by 10 MiB over 4 rounds of 200, before).
* **Aggregate packets per second** (issue 8 (d)) with 8 and with 64 sessions up, 1400-byte IPv4
  packets, counted by the kernel, each the best of ``repeats`` runs:

  - *encap* (server TUN -> MPPE -> GRE): a UDP blaster process in the server namespace (``nice``
    19, so that it only takes CPU nobody else wants) sends to the sessions' client addresses in turn,
    which the kernel routes into the daemon's ``pppN`` devices; the rate is the GRE packets that
    left the server (its veth's tx_packets) over a fixed window.  The clients do not decrypt, but
    acknowledge promptly (the daemon honours the GRE send window).  The blaster's offered rate shows
    the daemon, not the blaster, was the bottleneck.
  - *decap* (GRE -> MPPE -> server TUN): for each session a run of packets is encrypted beforehand
    with its real client-side MPPE encryptor and numbered on from its GRE call (UDP to a sink socket
    nobody reads in the server namespace, so no ICMP comes back); they are sent with a fixed window
    per session over the daemon's acks.  Delivered is the sum of the server's ``pppN`` rx_packets;
    the rate is delivered over the time from the first send to the last counter movement.

  Beside each rate: the daemon's CPU use (utime + stime of its process tree, in CPUs), its CPU time
  per packet, and the CPU the rest of the host used meanwhile ("other"): on a shared machine the rates
  follow the CPU the daemon gets, the CPU time per packet much less.
* **Workers**: the packet rates with the smallest ``pps_sessions`` again on a daemon started with
  ``--workers N`` for each N > 1 asked for (when this pypptpd has the flag), beside the single-worker
  figures, and how the sessions were spread over the processes.

With two CPUs or more the load generator (this process, the blaster) is pinned to the last CPU and a
single-worker daemon to the others (see :func:`run`).  Every loop is bounded; the daemon is always
stopped and the namespaces deleted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from pypptp.aio.client import PptpClientError
from pypptp.aio.gre import GreCall, GreTransport
from pypptp.client.demo import stop_process, wait_until_listening
from pypptp.client.tunnel import PptpClientSession, client_link_config
from pypptp.gre.codec import NO_NUMBER, GreError, decode_header, encode_packet
from pypptp.host.netns import NetnsPair, netns_available, two_hosts
from pypptp.ppp.ccp import MppePolicy
from pypptp.ppp.frame import Protocol

REPO = Path(__file__).resolve().parents[1]
USER, PASSWORD = "bench", "bench-password"
LOCAL_IP = "192.168.0.1"
REMOTE_IP = "192.168.1.1-254,192.168.2.1-100"  # 354 addresses
CONNECTIONS = 300
PACKET_BYTES = 1400
UDP_PAYLOAD_BYTES = PACKET_BYTES - 28
SINK_PORT = 9  # discard: the blaster's and the decap packets' destination port
SMALL_RUN = 50
"""Sessions per setup run for every concurrency but the largest (N=1 is slow)."""
GROW_CONCURRENCY = 8
"""Connects in flight while the packet-rate phases bring their sessions up."""
MAX_DECAP_PACKETS = 60_000
"""Bound on the pre-encrypted decap packets (about 90 MB at 1.4 KB each)."""
WARM = 0.3  # seconds of blasting before the encap window opens
CONNECT_TIMEOUT = 30.0
MAX_PACKETS_PER_READ = 256
ACK_EVERY = 8
"""The encap phase's clients acknowledge every this many packets of a call..."""
ACK_DELAY = 0.001
"""...and the rest of a read burst this many seconds after it."""
EARLY_HOLD = 1.0
DECAP_WINDOW = 32
"""Unacknowledged packets per session in the decap phase (64 sessions: 2,048 packets, within the daemon's
4 MB socket buffer; the daemon acks every 16)."""
DECAP_DEADLINE = 20.0

BLASTER = r"""
import json, os, resource, socket, sys, time
os.nice(19)
seconds, targets = float(sys.argv[1]), [(a, int(sys.argv[3])) for a in sys.argv[2].split(",")]
payload = bytes(int(sys.argv[4]))
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.setblocking(False)
sent = errors = i = 0
n = len(targets)
print("ready", flush=True)
start = time.monotonic()
deadline = start + seconds
while time.monotonic() < deadline:
    for _ in range(64):
        try:
            sock.sendto(payload, targets[i % n])
            sent += 1
        except OSError:
            errors += 1
        i += 1
usage = resource.getrusage(resource.RUSAGE_SELF)
cpu = usage.ru_utime + usage.ru_stime
print(json.dumps({"sent": sent, "errors": errors, "elapsed": time.monotonic() - start, "cpu": cpu}), flush=True)
"""


# -- the daemon, seen from outside ---------------------------------------------------------------------


def _process_tree(root: int) -> list[int]:
    """``root`` and its descendants, from the ppid field of every /proc/PID/stat."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as f:
                ppid = int(f.read().rpartition(")")[2].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    tree: list[int] = []
    todo = [root]
    while todo and len(tree) < 10_000:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, ()))
    return tree


def _rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _run_queue_ns(pid: int) -> int:
    """Nanoseconds ``pid`` has spent runnable but waiting for a CPU (/proc/PID/schedstat)."""
    try:
        with open(f"/proc/{pid}/schedstat", encoding="ascii") as f:
            return int(f.read().split()[1])
    except (OSError, ValueError, IndexError):
        return 0


def _cpu_ticks(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            fields = f.read().rpartition(")")[2].split()
        return int(fields[11]) + int(fields[12])  # utime, stime
    except (OSError, ValueError, IndexError):
        return 0


class NetDev:
    """Per-interface packet counters of one namespace, read through a process living in it."""

    def __init__(self, rx: int, tx: int, tx_dropped: int) -> None:
        self.rx, self.tx, self.tx_dropped = rx, tx, tx_dropped


def read_net_dev(pid: int) -> dict[str, NetDev]:
    """/proc/PID/net/dev: the counters of the namespace ``pid`` lives in."""
    with open(f"/proc/{pid}/net/dev", encoding="ascii") as f:
        lines = f.read().splitlines()[2:]
    out: dict[str, NetDev] = {}
    for line in lines:
        name, _, data = line.partition(":")
        fields = data.split()
        out[name.strip()] = NetDev(int(fields[1]), int(fields[9]), int(fields[11]))
    return out


def _sum(devices: dict[str, NetDev], field: str, prefix: str = "ppp") -> int:
    return sum(getattr(dev, field) for name, dev in devices.items() if name.startswith(prefix))


def workers_supported() -> bool:
    """Whether this pypptpd has ``--workers``."""
    result = subprocess.run(
        [sys.executable, "-m", "pypptp.daemon.cli", "--help"], capture_output=True, text=True, cwd=REPO, check=False
    )
    return "--workers" in result.stdout


class Daemon:
    """``pypptpd -f`` in the server namespace, with its files in a temporary directory."""

    def __init__(
        self,
        pair: NetnsPair,
        workdir: Path,
        *,
        workers: int = 1,
        stateful: bool = False,
        cpus: set[int] | None = None,
    ) -> None:
        self.pair = pair
        self.workdir = workdir
        options = workdir / "pptpd-options"
        options.write_text(
            "name pptpd\nrequire-mschap-v2\nrequire-mppe-128\n" + ("mppe-stateful\n" if stateful else "")
        )
        secrets = workdir / "chap-secrets"
        secrets.write_text(f"{USER} pptpd {PASSWORD} *\n")
        secrets.chmod(0o600)
        (workdir / "options.system").write_text("")
        conf = workdir / "pptpd.conf"
        conf.write_text(
            f"option {options}\nlisten {pair.server_ip}\nlocalip {LOCAL_IP}\nremoteip {REMOTE_IP}\n"
            f"connections {CONNECTIONS}\n"
        )
        self.log_path = workdir / "pypptpd.log"
        argv = [sys.executable, "-m", "pypptp.daemon.cli", "-f", "-c", str(conf), "-p", str(workdir / "pptpd.pid")]
        argv += ["--control-socket", str(workdir / "pypptpd.sock")]
        argv += ["--secrets", str(secrets), "--system-options", str(workdir / "options.system")]
        argv += ["--ip-up", str(workdir / "ip-up"), "--ip-down", str(workdir / "ip-down")]
        if workers > 1:
            argv += ["--workers", str(workers)]
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                pair.exec_argv(pair.server_ns, argv), stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO
            )
        self.pid = self.process.pid  # ``ip netns exec`` execs the daemon: same process
        if cpus:  # not (only) the load generator's CPU, which this process may be pinned to
            with contextlib.suppress(OSError):
                os.sched_setaffinity(self.pid, cpus)
        self._tree: list[int] = [self.pid]

    def wait_listening(self) -> None:
        wait_until_listening(self.process, self.log_path, timeout=20.0)
        self.refresh_tree()

    def refresh_tree(self) -> list[int]:
        self._tree = _process_tree(self.pid)
        return self._tree

    def rss_kib(self) -> int:
        return sum(_rss_kib(pid) for pid in self.refresh_tree())

    def cpu_seconds(self) -> float:
        """utime + stime of the process tree as last listed (cheap enough to call often)."""
        return sum(_cpu_ticks(pid) for pid in self._tree) / os.sysconf("SC_CLK_TCK")

    def tun_devices_per_process(self) -> list[int]:
        """How many TUN devices (sessions) each process of the tree holds: how the workers share the calls."""
        counts = []
        for pid in self.refresh_tree():
            try:
                fds = os.listdir(f"/proc/{pid}/fd")
            except OSError:
                continue
            count = 0
            for fd in fds:
                with contextlib.suppress(OSError):
                    count += os.readlink(f"/proc/{pid}/fd/{fd}") == "/dev/net/tun"
            counts.append(count)
        return counts

    def waiting_seconds(self) -> float:
        """Time the process tree (as last listed) spent waiting for a CPU while runnable."""
        return sum(_run_queue_ns(pid) for pid in self._tree) / 1e9

    def net_dev(self) -> dict[str, NetDev]:
        return read_net_dev(self.pid)

    def ppp_interfaces(self) -> list[str]:
        return sorted(name for name in self.net_dev() if name.startswith("ppp"))

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL; leftovers of its process tree are killed by pid."""
        tree = self.refresh_tree() if self.process.poll() is None else []
        stop_process(self.process, 15)
        for pid in tree[1:]:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        return self.process.returncode


# -- the clients ------------------------------------------------------------------------------------------


def _checksum(header: bytes | bytearray) -> int:
    total = sum(int.from_bytes(header[i : i + 2], "big") for i in range(0, len(header), 2))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ipv4_udp(source: str, destination: str, payload: bytes, port: int = SINK_PORT) -> bytes:
    """An IPv4 UDP packet (UDP checksum 0: none) of ``28 + len(payload)`` bytes."""
    total = 28 + len(payload)
    header = bytearray(b"\x45\x00" + total.to_bytes(2, "big") + b"\x00\x01\x40\x00\x40\x11\x00\x00")
    header += socket.inet_aton(source) + socket.inet_aton(destination)
    header[10:12] = _checksum(header).to_bytes(2, "big")
    udp = (40000).to_bytes(2, "big") + port.to_bytes(2, "big") + (8 + len(payload)).to_bytes(2, "big") + b"\0\0"
    return bytes(header) + udp + payload


class Clients:
    """Library client sessions in the client namespace, sharing one raw GRE socket.

    Two things around the library client's shared-transport mode (the socket is read here rather than
    by :meth:`GreTransport.drain`, for the acking mode below):

    * GRE that arrives for a call not registered yet is held (at most :data:`EARLY_HOLD` seconds) and
      handed over once its call appears, as :class:`GreTransport` itself does: the daemon sends its
      first LCP Configure-Request right after the OCRP, before ``PptpClientSession.connect`` has
      registered its call; dropped, it costs LCP's 3-second restart.  ``hold_early=False`` shows that.
      (The sessions' Call IDs come from one allocator per shared transport, in ``connect`` itself.)
    * :meth:`acking`: during the encap phase the clients only acknowledge, without decrypting: at once
      every :data:`ACK_EVERY` packets of a call, the rest :data:`ACK_DELAY` after a read burst, so that
      the daemon's GRE send window does not wait on this process.
    """

    def __init__(self, pair: NetnsPair, *, stateful: bool = False, hold_early: bool = True) -> None:
        self.pair = pair
        self.stateful = stateful
        self.hold_early = hold_early
        self.sessions: list[PptpClientSession] = []
        self.failures: list[str] = []
        self.durations: list[float] = []
        """Seconds from TCP connect to NetworkUp of every session brought up, in order."""
        self.transport = GreTransport()
        self.after_drain: Callable[[], None] | None = None
        """Called after every read burst of the GRE socket (the decap sender refills its windows)."""
        self.received = 0
        self.acks: dict[int, int] = {}
        """The last Acknowledgment Number the server sent on each of our calls (the decap sender's window)."""
        self.early_held = 0
        """GRE packets that came before their call was registered (see the class docstring)."""
        self.early_lost = 0
        self.unknown = 0
        self._sock: socket.socket | None = None
        self._buffer = bytearray(65536)
        self._view = memoryview(self._buffer)
        self._by_call_id: dict[int, GreCall] = {}
        self._early: list[tuple[float, int, int, int, bytes]] = []
        self._early_timer: asyncio.TimerHandle | None = None
        self._acking: dict[int, int] | None = None  # our Call ID -> the server's, while acking
        self._highest: dict[int, int] = {}
        self._unacked: dict[int, int] = {}
        self._ack_timer: asyncio.TimerHandle | None = None

    def open(self) -> None:
        sock = self.pair.socket(self.pair.client_ns, socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_GRE)
        self.transport.open(sock, watch=False)  # sets the socket up (buffer, DF); we read it
        asyncio.get_running_loop().add_reader(sock.fileno(), self._readable)
        self._sock = sock

    def close(self) -> None:
        if self._early_timer is not None:
            self._early_timer.cancel()
        if self._sock is not None:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(self._sock.fileno())
            self._sock = None
        self.transport.close()

    @contextlib.contextmanager
    def acking(self, sessions: Sequence[PptpClientSession]) -> Iterator[None]:
        """While inside: acknowledge the server's GRE data at once and deliver nothing (encap phase)."""
        self._acking = {s.call.call_id: s.call.peer_call_id or 0 for s in sessions}
        self._highest.clear()
        self._unacked.clear()
        try:
            yield
        finally:
            self._acking = None
            if self._ack_timer is not None:
                self._ack_timer.cancel()
                self._ack_timer = None

    def _call(self, call_id: int) -> GreCall | None:
        """Our call ``call_id`` as the transport has it registered now.  Cached by Call ID; the cache is
        rebuilt on a miss, when the number of calls changed and after every close (a closed session's
        Call ID may come back in a new one: each control connection draws its own at random)."""
        by_id = self._by_call_id
        call = by_id.get(call_id)
        if call is None or len(by_id) != len(self.transport.calls):
            by_id = self._by_call_id = {c.call_id: c for c in self.transport.calls.values()}
            call = by_id.get(call_id)
        return call

    def _ack(self, call_id: int) -> None:
        assert self._acking is not None
        self._unacked[call_id] = 0
        packet = encode_packet(self._acking[call_id], ack=self._highest[call_id])
        self.transport.sendto(memoryview(packet), (self.pair.server_ip, 0))

    def _readable(self) -> None:
        sock = self._sock
        if sock is None:
            return
        buffer, view = self._buffer, self._view
        now = asyncio.get_running_loop().time()
        acking, highest, unacked = self._acking, self._highest, self._unacked
        for _ in range(MAX_PACKETS_PER_READ):
            try:
                length = sock.recv_into(buffer)
            except BlockingIOError:
                break
            except OSError:
                continue
            self.received += 1
            ihl = (buffer[0] & 0x0F) * 4
            try:
                header = decode_header(view[ihl:length])
            except GreError:
                continue
            call_id = header.call_id
            if acking is not None and call_id in acking:
                if header.seq != NO_NUMBER:
                    highest[call_id] = header.seq
                    count = unacked[call_id] = unacked.get(call_id, 0) + 1
                    if count >= ACK_EVERY:
                        self._ack(call_id)
                continue
            start = ihl + header.header_size
            payload = view[start : start + header.payload_length]
            call = self._call(call_id)
            if call is None:
                if self.hold_early and len(self._early) < 1000:
                    self.early_held += 1
                    self._early.append((now, call_id, header.seq, header.ack, bytes(payload)))
                    self._arm_early()
                else:
                    self.unknown += 1
                continue
            if self._early:  # held packets of this call go first: the sequencer drops what is behind
                self._retry_early()
            if header.ack != NO_NUMBER:
                self.acks[call_id] = header.ack
            call.gre_received(header.seq, header.ack, payload, now)
        if acking is not None and self._ack_timer is None and any(unacked.values()):
            self._ack_timer = asyncio.get_running_loop().call_later(ACK_DELAY, self._ack_pending)
        if self.after_drain is not None:
            self.after_drain()

    def _ack_pending(self) -> None:
        """The rest of a burst, :data:`ACK_DELAY` later (unless :data:`ACK_EVERY` acked it meanwhile)."""
        self._ack_timer = None
        if self._acking is not None:
            for call_id, count in self._unacked.items():
                if count:
                    self._ack(call_id)

    def _arm_early(self) -> None:
        if self._early_timer is None:
            self._early_timer = asyncio.get_running_loop().call_later(0.002, self._retry_early)

    def _retry_early(self) -> None:
        """Hand held packets to calls that have appeared since; drop those held too long."""
        if self._early_timer is not None:
            self._early_timer.cancel()
            self._early_timer = None
        now = asyncio.get_running_loop().time()
        waiting = []
        for item in self._early:
            arrived, call_id, seq, ack, payload = item
            call = self._call(call_id)
            if call is not None:
                call.gre_received(seq, ack, memoryview(payload), now)
            elif now - arrived < EARLY_HOLD:
                waiting.append(item)
            else:
                self.early_lost += 1
        self._early = waiting
        if waiting:
            self._arm_early()

    async def _connect_one(self, sock: socket.socket) -> PptpClientSession:
        loop = asyncio.get_running_loop()
        try:
            sock.setblocking(False)
            async with asyncio.timeout(10):
                await loop.sock_connect(sock, (self.pair.server_ip, 1723))
        except BaseException:
            sock.close()
            raise
        return await PptpClientSession.connect(
            self.pair.server_ip,
            user=USER,
            password=PASSWORD,
            config=client_link_config(USER, PASSWORD, mppe=MppePolicy(stateful=self.stateful)),
            sock=sock,
            transport=self.transport,
            timeout=CONNECT_TIMEOUT,
        )

    async def establish(self, count: int, concurrency: int) -> tuple[float, int, int]:
        """Bring ``count`` more sessions up, ``concurrency`` connects at a time.  Returns (seconds from the
        first connect to the last NetworkUp, sessions up, failures); failures are kept in :attr:`failures`."""
        loop = asyncio.get_running_loop()
        socks = [self.pair.socket(self.pair.client_ns) for _ in range(count)]  # untimed: a test-harness cost
        gate = asyncio.Semaphore(max(1, concurrency))
        last_up = [0.0]
        made: list[PptpClientSession] = []
        failed = [0]
        taken: set[socket.socket] = set()

        async def one(sock: socket.socket) -> None:
            async with gate:
                taken.add(sock)
                began = loop.time()
                try:
                    session = await self._connect_one(sock)
                except (PptpClientError, OSError, TimeoutError) as exc:
                    failed[0] += 1
                    if len(self.failures) < 20:
                        self.failures.append(f"{type(exc).__name__}: {exc}")
                    return
                made.append(session)
                last_up[0] = loop.time()
                self.durations.append(last_up[0] - began)

        started = loop.time()
        tasks = [asyncio.ensure_future(one(sock)) for sock in socks]
        try:
            async with asyncio.timeout(60 + count * CONNECT_TIMEOUT / max(1, concurrency)):
                await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            self.sessions.extend(made)
            for sock in socks:
                if sock not in taken:  # never handed to a connect (cancelled): ours to close
                    sock.close()
        return max(0.0, last_up[0] - started), len(made), failed[0]

    async def close_all(self) -> int:
        """Hang every session up (LCP Terminate, CCRQ, StopCCRQ); returns how many failed to close cleanly."""
        sessions, self.sessions = self.sessions, []
        try:
            results = await asyncio.gather(*(session.close() for session in sessions), return_exceptions=True)
        finally:
            self._by_call_id = {}
        return sum(1 for result in results if isinstance(result, BaseException))


# -- packet-rate phases -------------------------------------------------------------------------------------


async def _wait_sessions(daemon: Daemon, count: int, timeout: float = 20.0) -> list[str]:
    """Wait until the server namespace holds ``count`` pppN interfaces (or the time is up); return them."""
    deadline = time.monotonic() + timeout
    names = daemon.ppp_interfaces()
    while len(names) != count and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        names = daemon.ppp_interfaces()
    return names


class Usage:
    """CPU time so far: the whole host's (busy, from /proc/stat), this process's, the daemon's (and its
    run-queue wait); differences over a window say who used the CPUs and whether the daemon had one."""

    def __init__(self, daemon: Daemon) -> None:
        with open("/proc/stat", encoding="ascii") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
        self.host = (sum(fields) - fields[3] - (fields[4] if len(fields) > 4 else 0)) / os.sysconf("SC_CLK_TCK")
        usage = resource.getrusage(resource.RUSAGE_SELF)
        self.own = usage.ru_utime + usage.ru_stime
        self.daemon = daemon.cpu_seconds()
        self.wait = daemon.waiting_seconds()
        self.at = time.monotonic()

    def since(self, start: Usage, extra: float = 0.0) -> dict[str, float]:
        """CPUs used from ``start`` to this snapshot: the daemon's, its run-queue wait, the clients' (this
        process and ``extra``, e.g. the blaster) and the rest of the host's (other load and softirqs)."""
        window = max(self.at - start.at, 1e-6)
        daemon, own = self.daemon - start.daemon, self.own - start.own
        return {
            "daemon_cpu": round(daemon / window, 2),
            "daemon_cpu_wait": round((self.wait - start.wait) / window, 2),
            "load_cpu": round((own + extra) / window, 2),
            "other_cpu": round(max(0.0, self.host - start.host - daemon - own - extra) / window, 2),
        }


async def measure_encap(daemon: Daemon, clients: Clients, sessions: list[PptpClientSession], seconds: float) -> dict:
    """Server TUN -> MPPE -> GRE with ``sessions``: the GRE packets leaving the server per second."""
    pair = clients.pair
    targets = ",".join(str(s.network.local_address) for s in sessions if s.network is not None)
    argv = [sys.executable, "-c", BLASTER, str(WARM + seconds + 0.3), targets, str(SINK_PORT), str(UDP_PAYLOAD_BYTES)]
    with clients.acking(sessions):
        blaster = await asyncio.create_subprocess_exec(
            *pair.exec_argv(pair.server_ns, argv), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        try:
            assert blaster.stdout is not None
            ready = await asyncio.wait_for(blaster.stdout.readline(), 15)
            if ready.strip() != b"ready":
                raise RuntimeError(f"the blaster did not start: {ready!r}")
            await asyncio.sleep(WARM)
            daemon.refresh_tree()
            before, usage0 = daemon.net_dev(), Usage(daemon)
            received0, acks0 = clients.received, clients.transport.counters.sent
            await asyncio.sleep(seconds)
            after, usage1 = daemon.net_dev(), Usage(daemon)
            received1, acks1 = clients.received, clients.transport.counters.sent
            out, err = await asyncio.wait_for(blaster.communicate(), seconds + 15)
        finally:
            if blaster.returncode is None:
                blaster.kill()
                await blaster.wait()
    report = json.loads(out.decode().strip().splitlines()[-1]) if out.strip() else {}
    window = usage1.at - usage0.at
    blaster_cpu = report.get("cpu", 0.0) * window / max(report.get("elapsed", 1.0), 1e-9)  # its share in the window
    sent = after["veth0"].tx - before["veth0"].tx
    into_tun = _sum(after, "tx") - _sum(before, "tx")
    tun_dropped = _sum(after, "tx_dropped") - _sum(before, "tx_dropped")
    return {
        "pps": round(sent / window),
        "mbit": round(sent / window * PACKET_BYTES * 8 / 1e6, 1),
        "offered_pps": round(report.get("sent", 0) / max(report.get("elapsed", 1.0), 1e-9)),
        "tun_pps": round(into_tun / window),
        "tun_dropped_pps": round(tun_dropped / window),
        "client_received_pps": round((received1 - received0) / window),
        "client_acks_pps": round((acks1 - acks0) / window),
        **usage1.since(usage0, blaster_cpu),
        "daemon_us_per_packet": round((usage1.daemon - usage0.daemon) * 1e6 / max(1, sent), 2),
        "window_s": round(window, 3),
        "blaster_errors": report.get("errors", 0),
        "blaster_stderr": err.decode(errors="replace").strip()[-300:],
    }


async def measure_decap(daemon: Daemon, clients: Clients, sessions: list[PptpClientSession], packets: int) -> dict:
    """GRE -> MPPE -> server TUN: ``packets`` pre-built packets spread over ``sessions``, sent with at most
    :data:`DECAP_WINDOW` unacknowledged per session; delivered = the server's pppN rx_packets.

    Each session's packets are encrypted beforehand with its real client-side MPPE encryptor and numbered
    with its GRE call's next Sequence Numbers (taken from its sequencer), so that the daemon sees them as
    the continuation of the call.  The window is this sender's own, over the acks the daemon sends, rather
    than the call's adaptive one: that one halves on every ack time-out and, once this process has been
    starved of CPU for half a second by other load, can shrink to one packet for good (seen on a busy
    machine: 3,000 pps instead of 40,000, for twenty seconds)."""
    pair = clients.pair
    per_session = max(20, packets // max(1, len(sessions)))
    loop = asyncio.get_running_loop()
    runs: list[tuple[int, list[int], list[memoryview]]] = []  # (our Call ID, sequence numbers, packets)
    for session in sessions:  # untimed: encrypt with the session's real client-side MPPE state
        assert session.ppp is not None and session.gre is not None and session.network is not None
        link, gre, up = session.ppp.link, session.gre, session.network
        encryptor = link.encryptor
        assert encryptor is not None, "MPPE is not up"
        inner = ipv4_udp(str(up.local_address), str(up.peer_address), bytes(UDP_PAYLOAD_BYTES))
        prefix = link.frame_prefix(Protocol.COMPRESSED)
        numbers = [gre.seq.take_seq(loop.time()) for _ in range(per_session)]
        built = [
            memoryview(encode_packet(gre.peer_call_id, prefix + encryptor.encrypt(0x21, inner), seq=number))
            for number in numbers
        ]
        clients.acks[gre.call_id] = (numbers[0] - 1) & 0xFFFFFFFF
        runs.append((gre.call_id, numbers, built))
    total = per_session * len(runs)
    positions = [0] * len(runs)
    sent = [0]
    peer = (pair.server_ip, 0)
    acks, sendto = clients.acks, clients.transport.sendto

    def refill() -> None:
        for index, (call_id, numbers, built) in enumerate(runs):
            position = start = positions[index]
            acked, end = acks[call_id], len(built)
            while position < end and (numbers[position] - acked) & 0xFFFFFFFF <= DECAP_WINDOW:
                sendto(built[position], peer)
                position += 1
            sent[0] += position - start
            positions[index] = position

    sink = pair.socket(pair.server_ns, socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sink.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sink.bind(("0.0.0.0", SINK_PORT))
        daemon.refresh_tree()
        delivered0, usage0 = _sum(daemon.net_dev(), "rx"), Usage(daemon)
        started = last_change = usage0.at
        usage1 = usage0
        delivered = 0
        deadline = started + DECAP_DEADLINE
        clients.after_drain = refill
        refill()
        while time.monotonic() < deadline:
            await asyncio.sleep(0.01)
            refill()
            now = time.monotonic()
            count = _sum(daemon.net_dev(), "rx") - delivered0
            if count != delivered:
                delivered, last_change, usage1 = count, now, Usage(daemon)
            if sent[0] >= total and (delivered >= sent[0] or now - last_change > 0.5):
                break
    finally:
        clients.after_drain = None
        sink.close()
    elapsed = max(last_change - started, 1e-6)
    return {
        "pps": round(delivered / elapsed),
        "mbit": round(delivered / elapsed * PACKET_BYTES * 8 / 1e6, 1),
        "prepared": total,
        "sent": sent[0],
        "delivered": delivered,
        "delivered_fraction": round(delivered / max(1, sent[0]), 4),
        **usage1.since(usage0),
        "daemon_us_per_packet": round((usage1.daemon - usage0.daemon) * 1e6 / max(1, delivered), 2),
        "seconds": round(elapsed, 3),
    }


async def measure_pps(daemon: Daemon, clients: Clients, count: int, seconds: float, repeats: int = 2) -> dict:
    """Encap, then decap, ``repeats`` times each with the first ``count`` sessions up (the caller brought them
    up); the best of each is the figure (on a shared machine other load only ever lowers it), all are kept."""
    sessions = clients.sessions[:count]
    encaps, decaps = [], []
    for _ in range(max(1, repeats)):
        encaps.append(await measure_encap(daemon, clients, sessions, seconds))
        await asyncio.sleep(0.3)  # let the queues drain before the other direction
    encap = max(encaps, key=lambda r: r["pps"])
    budget = int(min(MAX_DECAP_PACKETS, max(2000, encap["pps"] * seconds)))
    for _ in range(max(1, repeats)):
        decaps.append(await measure_decap(daemon, clients, sessions, budget))
        await asyncio.sleep(0.3)
    decap = max(decaps, key=lambda r: r["pps"])
    return {
        "sessions": count,
        "encap": encap,
        "decap": decap,
        "encap_runs_pps": [r["pps"] for r in encaps],
        "decap_runs_pps": [r["pps"] for r in decaps],
    }


# -- the runs ------------------------------------------------------------------------------------------------


async def _grow(daemon: Daemon, clients: Clients, count: int) -> None:
    missing = count - len(clients.sessions)
    if missing > 0:
        _, _, failed = await clients.establish(missing, GROW_CONCURRENCY)
        if failed or len(clients.sessions) < count:
            raise RuntimeError(f"only {len(clients.sessions)} of {count} sessions came up: {clients.failures[-3:]}")
    await _wait_sessions(daemon, len(clients.sessions))


async def _release(daemon: Daemon, clients: Clients) -> dict:
    unclean = await clients.close_all()
    left = await _wait_sessions(daemon, 0)
    return {"unclean_closes": unclean, "ppp_left": len(left)}


async def _up_then_released(daemon: Daemon, clients: Clients, up: int) -> tuple[list[str], int, dict]:
    """Once the ``up`` sessions have their pppN and have settled: those names and the RSS with them up; then
    every session closed, the daemon given time to settle, and the release's outcome (:func:`_release`)."""
    names = await _wait_sessions(daemon, up)
    await asyncio.sleep(0.5)
    rss_up = daemon.rss_kib()
    release = await _release(daemon, clients)
    await asyncio.sleep(0.5)
    return names, rss_up, release


@dataclasses.dataclass(frozen=True)
class Plan:
    """What :func:`run` measures (its arguments)."""

    sessions_total: int = 200
    concurrency: tuple[int, ...] = (1, 8, 32)
    pps_sessions: tuple[int, ...] = (8, 64)
    workers: tuple[int, ...] = (1,)
    seconds: float = 2.0
    repeats: int = 2
    stateful: bool = False
    churn: int = 3
    """Rounds of ``sessions_total`` sessions up and down after the setup runs (the RSS after each)."""
    workarounds: bool = True
    """The client-side workaround of :class:`Clients` (early GRE held; the harness reads the GRE socket itself)."""
    daemon_cpus: set[int] | None = None
    """A single-worker daemon's CPUs (None: any)."""
    workers_cpus: set[int] | None = None


async def _setup_runs(daemon: Daemon, clients: Clients, plan: Plan, out: dict[str, Any]) -> None:
    """Issue 8 (c): the setup rate for each concurrency; the memory figure and the release check on the
    largest, which runs first on a daemon that has served one warm-up session."""
    await clients.establish(1, 1)  # warm-up: imports, the first TUN, the allocator
    if not clients.sessions:
        raise RuntimeError(f"the warm-up session failed: {clients.failures}\n{daemon.log()[-2000:]}")
    await _release(daemon, clients)
    await asyncio.sleep(0.3)
    for index, n in enumerate(sorted(set(plan.concurrency), reverse=True)):
        count = plan.sessions_total if index == 0 else min(plan.sessions_total, SMALL_RUN)
        daemon.refresh_tree()
        rss0, usage0, early0 = daemon.rss_kib(), Usage(daemon), clients.early_held
        first = len(clients.durations)
        elapsed, up, failed = await clients.establish(count, n)
        usage1 = Usage(daemon)
        durations = sorted(clients.durations[first:]) or [0.0]
        row: dict[str, Any] = {
            "concurrency": n,
            "sessions": count,
            "up": up,
            "failed": failed,
            "seconds": round(elapsed, 3),
            "per_second": round(up / elapsed, 1) if elapsed > 0 else 0.0,
            "latency_ms": {
                "median": round(durations[len(durations) // 2] * 1000, 1),
                "p90": round(durations[int(len(durations) * 0.9)] * 1000, 1),
                "max": round(durations[-1] * 1000, 1),
            },
            "slower_than_1s": sum(1 for d in durations if d > 1.0),
            **usage1.since(usage0),
            "daemon_cpu_ms_per_session": round((usage1.daemon - usage0.daemon) * 1000 / max(1, up), 2),
            "early_gre_held": clients.early_held - early0,
            "call_id_collisions": len(clients.sessions) - len({c.call.call_id for c in clients.sessions}),
        }
        if index == 0:
            names, rss_up, out["release"] = await _up_then_released(daemon, clients, up)
            out["memory"] = {
                "sessions": up,
                "ppp_interfaces_up": len(names),
                "rss_before_kib": rss0,
                "rss_up_kib": rss_up,
                "rss_after_kib": daemon.rss_kib(),
                "per_session_kib": round((rss_up - rss0) / max(1, up), 1),
            }
        else:
            row["release"] = await _release(daemon, clients)
            await asyncio.sleep(0.5)
        row["rss_after_kib"] = daemon.rss_kib()
        out["setup"].append(row)
        out.setdefault("rss_after_runs_kib", []).append(row["rss_after_kib"])  # in run order
    out["setup"].sort(key=lambda r: r["concurrency"])
    rounds = out["churn"] = []
    for _ in range(plan.churn):
        _, up, failed = await clients.establish(plan.sessions_total, max(plan.concurrency))
        _, rss_up, release = await _up_then_released(daemon, clients, up)
        rounds.append({"up": up, "failed": failed, "rss_up_kib": rss_up, "rss_after_kib": daemon.rss_kib(), **release})


async def _with_daemon(pair: NetnsPair, workdir: Path, plan: Plan, workers: int) -> dict:
    """One daemon: with one worker, the setup runs and the packet rates for every ``pps_sessions``; with
    more, the packet rates for the smallest ``pps_sessions`` (the comparison)."""
    out: dict[str, Any] = {"workers": workers, "setup": [], "pps": []}
    cpus = plan.daemon_cpus if workers == 1 else plan.workers_cpus
    daemon = Daemon(pair, workdir, workers=workers, stateful=plan.stateful, cpus=cpus)
    clients = Clients(pair, stateful=plan.stateful, hold_early=plan.workarounds)
    try:
        daemon.wait_listening()
        if workers > 1:
            await asyncio.sleep(0.5)  # let the workers start
        clients.open()
        if workers == 1:
            await _setup_runs(daemon, clients, plan, out)
        counts = sorted(set(plan.pps_sessions)) if workers == 1 else sorted(set(plan.pps_sessions))[:1]
        for count in counts:
            await _grow(daemon, clients, count)
            spread = daemon.tun_devices_per_process()
            row = await measure_pps(daemon, clients, count, plan.seconds, plan.repeats)
            out["pps"].append({"workers": workers, "sessions_per_process": spread, "rss_kib": daemon.rss_kib(), **row})
        out["pps_release"] = await _release(daemon, clients)
        out["failures"] = clients.failures[:10]
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(clients.close_all(), 30)
        clients.close()
        out["daemon_exit"] = daemon.stop()
        out["daemon_log_tail"] = daemon.log()[-1500:] if out["daemon_exit"] not in (0, None) else ""
    return out


async def run(
    *,
    sessions_total: int = 200,
    concurrency: Sequence[int] = (1, 8, 32),
    pps_sessions: Sequence[int] = (8, 64),
    workers: Sequence[int] = (1,),
    seconds: float = 2.0,
    repeats: int = 2,
    stateful: bool = False,
    pin: bool = True,
    workarounds: bool = True,
    churn: int = 3,
) -> dict:
    """Every measurement, on a fresh daemon (one per worker count) in fresh namespaces; see the module
    docstring.  A single-worker daemon always runs (setup, memory, packet rates); each worker count
    above 1 in ``workers`` adds a daemon with ``--workers N`` measured with the smallest ``pps_sessions``.

    ``pin``: with two CPUs or more, this process (the clients) and the blaster run on the last CPU
    only, a single-worker daemon on the others: otherwise the scheduler often puts the daemon beside
    the clients that wake it, and it waits for a CPU a third to a half of the time (measured with
    /proc/PID/schedstat).  A daemon with workers may use every CPU, the load generator's included.

    ``workarounds=False`` drops the client-side workarounds of :class:`Clients`, to see the library
    client's shared-transport races in the setup figures (3-second stalls)."""
    if not 1 <= sessions_total <= CONNECTIONS - 10:
        raise ValueError(f"sessions_total must be 1..{CONNECTIONS - 10}")
    if not pps_sessions or max(pps_sessions) > CONNECTIONS - 10 or min(pps_sessions) < 1:
        raise ValueError(f"pps_sessions must be within 1..{CONNECTIONS - 10}")
    cpus = os.sched_getaffinity(0)
    load_cpu = max(cpus) if pin and len(cpus) >= 2 else None
    plan = Plan(
        sessions_total=sessions_total,
        concurrency=tuple(concurrency),
        pps_sessions=tuple(pps_sessions),
        workers=tuple(workers),
        seconds=seconds,
        repeats=repeats,
        stateful=stateful,
        workarounds=workarounds,
        churn=churn,
        daemon_cpus=cpus - {load_cpu} if load_cpu is not None else None,
        workers_cpus=set(cpus) if load_cpu is not None else None,
    )
    result: dict[str, Any] = {
        "cpus": len(cpus),
        "packet_bytes": PACKET_BYTES,
        "mppe": "MPPE-128 " + ("stateful" if stateful else "stateless"),
        "seconds": seconds,
        "repeats": repeats,
        "client_workarounds": workarounds,
        "cpu_placement": {
            "load": sorted(cpus if load_cpu is None else {load_cpu}),
            "daemon": sorted(plan.daemon_cpus or cpus),
            "daemon_with_workers": sorted(cpus),
        },
        "workers": [],
    }
    if load_cpu is not None:
        os.sched_setaffinity(0, {load_cpu})
    try:
        with tempfile.TemporaryDirectory(prefix="pypptp-bench-") as tmp, two_hosts("bs") as pair:
            os.chmod(tmp, 0o755)
            main = await _with_daemon(pair, Path(tmp), plan, 1)
        result.update({key: value for key, value in main.items() if key != "workers"})
        extra = sorted({w for w in plan.workers if w > 1})
        if extra and not workers_supported():
            result["workers_error"] = "this pypptpd has no --workers flag"
        elif extra:
            for w in extra:
                with tempfile.TemporaryDirectory(prefix="pypptp-bench-") as tmp, two_hosts(f"bw{w}") as pair:
                    os.chmod(tmp, 0o755)
                    result["workers"].append(await _with_daemon(pair, Path(tmp), plan, w))
    finally:
        os.sched_setaffinity(0, cpus)
    return result


# -- output --------------------------------------------------------------------------------------------------


def format_table(result: dict) -> list[str]:
    """The result as printable lines."""
    placement = result.get("cpu_placement", {})
    lines = [
        f"pypptpd under many sessions: {result['mppe']}, MS-CHAPv2, {result['packet_bytes']}-byte packets",
        f"{result['cpus']} CPUs: a single-worker daemon on {placement.get('daemon')}, with workers on "
        f"{placement.get('daemon_with_workers')}; the clients and the blaster on {placement.get('load')}",
        "Session setup (first TCP connect to last NetworkUp), 1 worker:",
        f"  {'concurrency':>11}{'sessions':>9}{'failed':>7}{'seconds':>8}{'sessions/s':>11}"
        f"{'latency p50/max ms':>20}{'daemon CPU':>11}{'CPU ms/session':>15}{'other':>6}",
    ]
    for row in result.get("setup", []):
        latency = f"{row['latency_ms']['median']:.0f}/{row['latency_ms']['max']:.0f}"
        lines.append(
            f"  {row['concurrency']:>11}{row['up']:>9}{row['failed']:>7}{row['seconds']:>8.2f}"
            f"{row['per_second']:>11.1f}{latency:>20}{row['daemon_cpu']:>11.2f}"
            f"{row['daemon_cpu_ms_per_session']:>15.2f}{row['other_cpu']:>6.2f}"
        )
    memory = result.get("memory")
    if memory:
        lines.append(
            f"Daemon memory: RSS {memory['rss_before_kib'] / 1024:.1f} MiB idle -> {memory['rss_up_kib'] / 1024:.1f} "
            f"MiB with {memory['sessions']} sessions = {memory['per_session_kib']:.1f} KiB per session; "
            f"{memory['rss_after_kib'] / 1024:.1f} MiB after they closed"
        )
    after = result.get("rss_after_runs_kib")
    if after:
        runs = ", ".join(f"{kib / 1024:.1f}" for kib in after)
        lines.append(f"RSS after each setup run had closed its sessions, in run order: {runs} MiB")
    churn = result.get("churn")
    if churn:
        rounds = ", ".join(f"{r['rss_up_kib'] / 1024:.1f}/{r['rss_after_kib'] / 1024:.1f}" for r in churn)
        lines.append(f"Churn, {len(churn)} more rounds of {churn[0]['up']} sessions, RSS up/closed: {rounds} MiB")
    release = result.get("release")
    if release:
        lines.append(
            f"After closing them: {release['ppp_left']} ppp interfaces left, {release['unclean_closes']} unclean closes"
        )
    rows = list(result.get("pps", [])) + [row for daemon in result.get("workers", []) for row in daemon["pps"]]
    if rows:
        lines.append(
            f"Aggregate packets per second, best of {result.get('repeats', 1)} (encap: server TUN -> MPPE -> GRE; "
            "decap: GRE -> MPPE -> server TUN):"
        )
        lines.append(
            f"  {'workers':>7}{'sessions':>9} |{'encap pps':>10}{'Mbit/s':>7}{'offered':>8}{'CPU':>5}{'us/pkt':>7} |"
            f"{'decap pps':>10}{'Mbit/s':>7}{'deliv.':>7}{'CPU':>5}{'us/pkt':>7} |{'other':>6}"
        )
        spreads = []
        for row in rows:
            encap, decap = row["encap"], row["decap"]
            if row["workers"] > 1:
                spreads.append(f"{row['workers']} workers, {row['sessions']} sessions: {row['sessions_per_process']}")
            other = max(encap.get("other_cpu", 0.0), decap.get("other_cpu", 0.0))
            lines.append(
                f"  {row['workers']:>7}{row['sessions']:>9} |{encap['pps']:>10}{encap['mbit']:>7.0f}"
                f"{encap['offered_pps']:>8}{encap['daemon_cpu']:>5.2f}{encap['daemon_us_per_packet']:>7.1f} |"
                f"{decap['pps']:>10}{decap['mbit']:>7.0f}{decap['delivered_fraction'] * 100:>6.0f}%"
                f"{decap['daemon_cpu']:>5.2f}{decap['daemon_us_per_packet']:>7.1f} |{other:>6.2f}"
            )
        lines.append(
            "  offered: the blaster's UDP pps towards the TUNs; CPU: the daemon's, in CPUs; us/pkt: daemon CPU time"
        )
        lines.append(
            "  per packet; other: CPUs busy with neither the daemon nor the load generator (other load, softirqs)"
        )
        for spread in spreads:
            lines.append(f"  sessions per process (TUN devices held), {spread}")
    if result.get("workers_error"):
        lines.append(f"Workers comparison skipped: {result['workers_error']}")
    return lines


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(",") if part.strip())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_sessions", description=__doc__.splitlines()[0])
    parser.add_argument("--json", metavar="FILE")
    parser.add_argument("--sessions", type=int, default=200, help="sessions of the largest setup run (default 200)")
    parser.add_argument("--concurrency", type=_ints, default=(1, 8, 32), help="connects in flight (default 1,8,32)")
    parser.add_argument("--pps-sessions", type=_ints, default=(8, 64), help="sessions for packet rates (8,64)")
    parser.add_argument("--workers", type=_ints, default=(1,), help="worker counts to compare, e.g. 1,2")
    parser.add_argument("--seconds", type=float, default=2.0, help="encap measuring window (default 2)")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each packet-rate measure; the best counts")
    parser.add_argument("--no-pin", action="store_true", help="do not pin the load generator to the last CPU")
    parser.add_argument(
        "--no-client-workarounds", action="store_true", help="show the library client's shared-transport races"
    )
    parser.add_argument("--stateful", action="store_true", help="negotiate stateful MPPE (mppe-stateful)")
    parser.add_argument("--churn", type=int, default=3, help="rounds of --sessions up and closed after (default 3)")
    args = parser.parse_args(argv)
    reason = netns_available()
    if reason is not None:
        print(f"bench_sessions {reason}", file=sys.stderr)
        return 2
    result = asyncio.run(
        run(
            sessions_total=args.sessions,
            concurrency=args.concurrency,
            pps_sessions=args.pps_sessions,
            workers=args.workers,
            seconds=args.seconds,
            repeats=args.repeats,
            stateful=args.stateful,
            pin=not args.no_pin,
            workarounds=not args.no_client_workarounds,
            churn=max(0, args.churn),
        )
    )
    for line in format_table(result):
        print(line)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
