"""Play fuzz batches against a real pypptpd in throw-away namespaces, and check it after each one.

:class:`Runner` starts ``pypptpd -f`` (``sys.executable -m pypptp.daemon.cli``) in the server namespace of a
:func:`~pypptp.host.netns.two_hosts` pair with its own files (pptpd.conf with ``localip 192.168.0.1`` and
``remoteip 192.168.0.234-238``, an options file with ``require-mschap-v2`` and ``require-mppe-128``,
chap-secrets), its log (stderr, ``-f``) going to a file.  A legit library client session comes up in
the client namespace and pings the server's tunnel address every :data:`PING_INTERVAL` seconds for
the whole run.  Then each batch (:mod:`pypptp.fuzz.inputs`) plays its four streams at once, and these
checks follow, each bounded in time:

* the daemon is alive;
* the legit session is still up and lost at most :data:`MAX_LOST_PINGS` pings during the batch;
* once the fuzz connections are closed: the daemon's open descriptors (``/proc/PID/fd``) and the
  ``pppN`` devices in the server namespace are back to their baseline;
* four fresh clients connect at once and get four distinct addresses from the pool (which, with the
  legit session's, is all five: an address or a connection slot leaked by a fuzz session makes one
  of them fail), then the descriptors and devices are back to the baseline again;
* every Call ID the daemon handed out during the batch (read from its OCRPs, and from its log) is
  logged as cleared;
* the daemon's log has no ``Traceback`` (nor asyncio's "Exception in callback" or "exception was
  never retrieved").

The fuzz connections of each batch come from two addresses of their own in 198.19.0.0/16
(:func:`attacker_addresses`), added to the client namespace for the batch, with a route to them in
the server namespace: the daemon blocks an address whose authentications keep failing, and the legit
user (198.18.0.2) must not be the one blocked.

Network safety: only the two namespaces are touched; the daemon listens on 198.18.0.1, and every
packet goes between the client namespace's addresses (198.18.0.2, 198.19.0.0/16) and 198.18.0.1 on
their veth, or to 192.168.0.0/24 inside the tunnels.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ipaddress
import logging
import os
import re
import socket
import struct
import subprocess
import sys
import time
from asyncio.subprocess import PIPE
from collections.abc import Awaitable, Callable
from pathlib import Path

import pypptp
from pypptp.aio.client import PptpClientError
from pypptp.client.demo import stop_process, wait_until_listening
from pypptp.client.tunnel import PptpClientSession, client_link_config
from pypptp.ctrl.constants import OutgoingCallResult
from pypptp.ctrl.framer import ControlStreamFramer
from pypptp.ctrl.messages import ControlMessageError, OutgoingCallReply, OutgoingCallRequest
from pypptp.fuzz.inputs import Batch, Step
from pypptp.gre.codec import NO_NUMBER, GreError, decode_header, encode_packet
from pypptp.host.netns import NetnsPair, _ip
from pypptp.ppp.frame import FrameError, Protocol, encode_frame, parse_frame
from pypptp.ppp.packet import Code, ControlPacket

__all__ = ["BatchResult", "FuzzDaemon", "Pinger", "Runner", "icmp_echo", "open_session"]

USER, PASSWORD = "fuzz", "fuzz-password"
POOL = tuple(f"192.168.0.{n}" for n in range(234, 239))
CONF = "localip 192.168.0.1\nremoteip 192.168.0.234-238\n"
OPTIONS = "name pptpd\nrequire-mschap-v2\nrequire-mppe-128\nms-dns 192.168.0.1\n"
PING_INTERVAL = 0.05
MAX_LOST_PINGS = 2
PING_WAIT = 3.0
"""Seconds the checks wait for the replies to the batch's last pings."""
SETTLE_TIMEOUT = 10.0
"""Seconds the checks wait for descriptors and devices to come back to the baseline."""
STREAMS_TIMEOUT = 40.0
"""A batch's streams together may take this long (each step is bounded well below it)."""
STEP_TIMEOUT = 5.0
OCRP_WAIT = 3.0
PEER_WAIT = 1.0
"""Seconds an ``ack-lcp`` or ``chap`` step waits for the server's LCP request or CHAP Challenge."""
PROBES = 4
ATTACKER_NETWORK = ipaddress.IPv4Network("198.19.0.0/16")
"""Where each batch's fuzz connections come from (:func:`attacker_addresses`); the legit session and the
pool probes come from the client namespace's own 198.18.0.2.  Fuzz calls fail authentication, and the
daemon blocks an address that fails too often: on its own addresses the legit user never notices."""
VETH = "veth0"  # :func:`pypptp.host.netns.link`'s interface in both namespaces
LOG_MARKERS = ("Traceback", "Exception in callback", "exception was never retrieved")
LOG_TALLIES = {
    "malformed control streams": "malformed control message",
    "peers that stopped reading": "is not reading what we send",
    "calls established": "call established",
    "authentications failed": "authentication failed",
    "authentications succeeded": "peer authenticated as",
    "LCP terminated by the peer": "LCP terminated by peer",
}
"""What the daemon's log says how often (how deep the inputs got; the pool probes count too)."""
REPORT_LOG_LINES = 3000
IP_OPTIONS_NOPS = b"\x01\x01\x01\x00"  # NOP NOP NOP EOL: a 24-byte IPv4 header
_ICMP_IDENT = 0x5046


# -- packets ---------------------------------------------------------------------------------------------


def _checksum(data: bytes) -> int:
    padded = data + b"\x00" * (len(data) & 1)
    total = sum(struct.unpack(f"!{len(padded) // 2}H", padded))
    total = (total & 0xFFFF) + (total >> 16)
    return ~(total + (total >> 16)) & 0xFFFF


def icmp_echo(source: str, destination: str, ident: int, seq: int) -> bytes:
    """An IPv4 ICMP Echo-Request from ``source`` to ``destination`` with identifier and sequence number."""
    body = struct.pack("!BBHHH", 8, 0, 0, ident, seq) + b"pypptp.fuzz ping"
    body = body[:2] + _checksum(body).to_bytes(2, "big") + body[4:]
    addresses = socket.inet_aton(source) + socket.inet_aton(destination)
    head = struct.pack("!BBHHHBBH", 0x45, 0, 20 + len(body), seq, 0, 64, 1, 0) + addresses
    return head[:10] + _checksum(head).to_bytes(2, "big") + head[12:] + body


def _echo_reply_seq(packet: bytes, ident: int) -> int | None:
    """The sequence number of an ICMP Echo-Reply with ``ident``, or None for anything else."""
    if len(packet) < 28 or packet[0] >> 4 != 4 or packet[9] != 1:
        return None
    at = (packet[0] & 0x0F) * 4
    if len(packet) < at + 8 or packet[at] != 0 or int.from_bytes(packet[at + 4 : at + 6], "big") != ident:
        return None
    return int.from_bytes(packet[at + 6 : at + 8], "big")


def _patched(frame: bytes, patch: tuple[tuple[int, int], ...]) -> bytes:
    if not frame or not patch:
        return frame
    out = bytearray(frame)
    for offset, xor in patch:
        out[offset % len(out)] ^= xor
    return bytes(out)


def attacker_addresses(index: int) -> tuple[str, str]:
    """Batch ``index``'s two source addresses in :data:`ATTACKER_NETWORK`: one for the control, the
    unauthenticated and the raw GRE streams, one for the authenticated fuzz session (reused after
    32,767 batches)."""
    first = (2 * index) % (ATTACKER_NETWORK.num_addresses - 2) + 1
    return str(ATTACKER_NETWORK[first]), str(ATTACKER_NETWORK[first + 1])


# -- the daemon and the clients ---------------------------------------------------------------------------


class FuzzDaemon:
    """``pypptpd -f`` in the server namespace, its files and its log in ``workdir``."""

    def __init__(self, pair: NetnsPair, workdir: Path) -> None:
        self.pair = pair
        self.workdir = workdir
        files = {
            "pptpd-options": OPTIONS,
            "chap-secrets": f"{USER} pptpd {PASSWORD} *\n",
            "options.system": "",  # instead of /etc/ppp/options
            "pptpd.conf": f"listen {pair.server_ip}\n{CONF}option {workdir / 'pptpd-options'}\n",
        }
        for name, text in files.items():
            (workdir / name).write_text(text)
            (workdir / name).chmod(0o600)
        self.log_path = workdir / "pypptpd.log"
        self.pidfile = workdir / "pptpd.pid"
        paths = {"-c": "pptpd.conf", "-p": "pptpd.pid", "--secrets": "chap-secrets", "--control-socket": "pypptpd.sock"}
        paths |= {"--system-options": "options.system", "--ip-up": "ip-up", "--ip-down": "ip-down"}
        # every connection's lines at their usual level (the leak check reads them): no per-address budget
        self.argv = [sys.executable, "-m", "pypptp.daemon.cli", "-f", "--log-budget", "0"]
        for flag, name in paths.items():
            self.argv += [flag, str(workdir / name)]
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start it and wait until it listens (raises with its log if it does not)."""
        source = str(Path(pypptp.__file__).resolve().parents[1])  # the daemon runs the fuzzer's own code
        env = {**os.environ, "PYTHONPATH": source}
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                self.pair.exec_argv(self.pair.server_ns, self.argv), stdout=log, stderr=subprocess.STDOUT, env=env
            )
        wait_until_listening(self.process, self.log_path)
        deadline = time.monotonic() + 5
        while not self.pidfile.exists() and time.monotonic() < deadline:
            time.sleep(0.02)

    @property
    def pid(self) -> int:
        return int(self.pidfile.read_text())

    def exit_status(self) -> int | None:
        """None while it runs."""
        assert self.process is not None
        return self.process.poll()

    def fds(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    async def devices(self) -> list[str]:
        """The ``pppN`` devices in the server namespace (asked again, a few times at most, while the
        kernel says the list changed under the dump: devices come and go as sessions end)."""
        for _ in range(5):
            process = await asyncio.create_subprocess_exec(
                "ip", "-n", self.pair.server_ns, "-o", "link", stdout=PIPE, stderr=PIPE
            )
            out, err = await process.communicate()
            if process.returncode == 0 and b"Dump was interrupted" not in err:
                break
        return sorted(re.findall(r"^\d+: (ppp\d+)", out.decode(errors="replace"), re.M))

    def log_size(self) -> int:
        return self.log_path.stat().st_size

    def log_since(self, offset: int) -> str:
        with self.log_path.open("rb") as log:
            log.seek(offset)
            return log.read().decode(errors="replace")

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout``; the exit status."""
        if self.process is None:
            return None
        return stop_process(self.process, timeout)


async def open_session(
    pair: NetnsPair, *, user: str = USER, password: str = PASSWORD, source: str = "", timeout: float = 10.0
) -> PptpClientSession:
    """A library client session from the client namespace (from ``source``, one of its addresses, if
    given) to the daemon, MS-CHAPv2 and MPPE-128; no TUN: IP goes through ``send``/``recv``."""
    loop = asyncio.get_running_loop()
    sock = pair.socket(pair.client_ns)
    gre = pair.socket(pair.client_ns, socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_GRE)
    try:
        if source:
            sock.bind((source, 0))
            gre.bind((source, 0))
        sock.setblocking(False)
        await asyncio.wait_for(loop.sock_connect(sock, (pair.server_ip, 1723)), timeout)
        return await PptpClientSession.connect(
            pair.server_ip,
            user=user,
            password=password,
            config=client_link_config(user, password, mru=1400),
            sock=sock,
            gre_sock=gre,
            timeout=timeout,
        )
    except BaseException:
        sock.close()
        gre.close()
        raise


async def close_session(session: PptpClientSession, timeout: float = 5.0) -> None:
    """Hang up politely, but within ``timeout`` whatever the server does; then drop what is left."""
    with contextlib.suppress(TimeoutError, PptpClientError, OSError):
        async with asyncio.timeout(timeout):
            await session.close(timeout=timeout / 2)
    if session.ppp is not None:
        session.ppp.close("fuzz: closed")
    session.control.close()
    if session.gre is not None:
        session.gre.close()
    session.transport.close()


class Pinger:
    """The legit session's steady ping: numbered Echo-Requests, and which of them were answered."""

    def __init__(self, session: PptpClientSession, interval: float = PING_INTERVAL) -> None:
        assert session.network is not None
        self.session = session
        self.source = str(session.network.local_address)
        self.target = str(session.network.peer_address)
        self.interval = interval
        self.next = 0
        """The number of the next ping (its ICMP sequence number is the low 16 bits)."""
        self.answered: set[int] = set()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [asyncio.ensure_future(self._send()), asyncio.ensure_future(self._receive())]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _send(self) -> None:
        while True:
            self.session.send(icmp_echo(self.source, self.target, _ICMP_IDENT, self.next & 0xFFFF))
            self.next += 1
            await asyncio.sleep(self.interval)

    async def _receive(self) -> None:
        while True:
            seq = _echo_reply_seq(await self.session.recv(), _ICMP_IDENT)
            if seq is not None:  # the newest ping with these low 16 bits
                self.answered.add(self.next - 1 - ((self.next - 1 - seq) & 0xFFFF))

    async def lost(self, start: int, end: int, wait: float = PING_WAIT) -> list[int]:
        """The pings numbered ``start`` to ``end - 1`` still unanswered after at most ``wait`` seconds."""
        deadline = asyncio.get_running_loop().time() + wait
        while True:
            missing = [n for n in range(start, end) if n not in self.answered]
            if not missing or asyncio.get_running_loop().time() >= deadline:
                self.answered = {n for n in self.answered if n >= end}
                return missing
            await asyncio.sleep(0.05)


# -- one batch -----------------------------------------------------------------------------------------


@dataclasses.dataclass
class BatchResult:
    batch: Batch
    failures: list[str] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)
    """What happened that is not a failure (the daemon closed a fuzz connection, a step was skipped)."""
    sent: dict[int, bytes] = dataclasses.field(default_factory=dict)
    """Step index -> the bytes that really went out, where the run filled something in."""
    seconds: float = 0.0
    timings: dict[str, float] = dataclasses.field(default_factory=dict)
    """Seconds each stream and the checks took."""
    pings: int = 0
    pings_lost: int = 0
    log: str = ""
    """The daemon's log lines written during the batch and its checks."""

    @property
    def tally(self) -> dict[str, int]:
        """:data:`LOG_TALLIES` counted in :attr:`log`."""
        return {name: self.log.count(text) for name, text in LOG_TALLIES.items()}

    @property
    def ok(self) -> bool:
        return not self.failures

    def report(self, replay_file: str | None = None) -> str:
        """The failure report: seed, batch, what failed, how to replay, every input in hex, the log."""
        batch = self.batch
        lines = [f"FAILED: seed {batch.seed}, batch {batch.index}:"]
        lines += [f"  - {failure}" for failure in self.failures]
        lines.append(f"replay: python -m pypptp.fuzz --seed {batch.seed} --batch {batch.index}")
        if replay_file:
            lines.append(f"    or: python -m pypptp.fuzz --replay {replay_file}")
        lines.append(f"inputs of batch {batch.index} ({len(batch.steps)} steps; 'sent' where the run filled in):")
        for index, step in enumerate(batch.steps):
            lines.append(f"  #{index} {step.describe()}")
            sent = self.sent.get(index)
            if sent is not None and sent != step.data:
                lines.append(f"      sent={sent.hex()}")
        lines += [f"  note: {note}" for note in self.notes]
        log = self.log.splitlines()
        shown = log if len(log) <= REPORT_LOG_LINES else [*log[:100], "...", *log[100 - REPORT_LOG_LINES :]]
        lines.append(f"daemon log during the batch and its checks ({len(log)} lines):")
        lines += ["  " + line for line in shown]
        return "\n".join(lines)

    def to_json(self) -> dict[str, object]:
        return {
            "batch": self.batch.to_json(),
            "failures": self.failures,
            "notes": self.notes,
            "sent": {str(index): data.hex() for index, data in sorted(self.sent.items())},
            "seconds": round(self.seconds, 3),
            "timings": self.timings,
            "pings": self.pings,
            "pings_lost": self.pings_lost,
            "tally": self.tally,
        }


@dataclasses.dataclass
class _FuzzCall:
    """The unauthenticated call's state, as far as GRE from the server tells it."""

    server_call_id: int | None = None
    seq: int = 0
    last_received: int = NO_NUMBER
    lcp_request: tuple[int, bytes] | None = None
    chap_identifier: int | None = None
    waited: bool = False
    """The first GRE step waited for the OCRP (the others do not wait again)."""
    missed: set[str] = dataclasses.field(default_factory=set)
    """What was waited for in vain: not waited for again."""
    heard: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)


class _ControlReader:
    """Reads a fuzz TCP connection to its end, decoding what the daemon says (as far as it decodes)."""

    def __init__(self, sock: socket.socket, on_ocrp: Callable[[OutgoingCallReply], None]) -> None:
        self.sock = sock
        self.on_ocrp = on_ocrp
        self.framer: ControlStreamFramer | None = ControlStreamFramer(strict=False)
        self.ocrp: asyncio.Future[OutgoingCallReply] = asyncio.get_running_loop().create_future()
        self.task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                data = await loop.sock_recv(self.sock, 65536)
            except OSError:
                return
            if not data:
                return
            if self.framer is None:
                continue
            try:
                messages = self.framer.feed(data)
            except ControlMessageError:
                self.framer = None  # we sent garbage; what follows is not worth decoding
                continue
            for message in messages:
                if isinstance(message, OutgoingCallReply):
                    self.on_ocrp(message)
                    if not self.ocrp.done():
                        self.ocrp.set_result(message)

    async def wait_eof(self, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self.task), timeout)

    def cancel(self) -> None:
        self.task.cancel()


class _LibraryLog(logging.Handler):
    """Where the fuzzer's own pypptp code (its client sessions) and asyncio log, instead of stderr:
    fuzz sessions are meant to fail, but a traceback there is a bug in pypptp too."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.tracebacks: list[str] = []
        self._loggers = [logging.getLogger("pypptp"), logging.getLogger("asyncio")]

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info or "Traceback" in record.getMessage():
            self.tracebacks.append(logging.Formatter("%(name)s: %(message)s").format(record))

    def attach(self) -> None:
        for logger in self._loggers:
            logger.addHandler(self)
            logger.propagate = False

    def detach(self) -> None:
        for logger in self._loggers:
            logger.removeHandler(self)
            logger.propagate = True


class Runner:
    """The daemon, the legit session, the fuzz sockets; :meth:`run_batch` plays and checks one batch."""

    def __init__(self, pair: NetnsPair, workdir: Path) -> None:
        self.pair = pair
        self.daemon = FuzzDaemon(pair, workdir)
        self.legit: PptpClientSession | None = None
        self.pinger: Pinger | None = None
        self.baseline_fds = 0
        self.baseline_devices: list[str] = []
        self._attacker = self._auth_source = ""
        """This batch's source addresses: the attacker's (control, unauth, raw GRE) and the
        authenticated fuzz session's (:func:`attacker_addresses`)."""
        self._gre: socket.socket | None = None
        """The attacker's raw GRE socket (it also hears the server's GRE to the unauthenticated call)."""
        self._gre_options: socket.socket | None = None
        self._gre_auth: socket.socket | None = None
        self._call = _FuzzCall()
        self._auth_call_id: int | None = None
        self._handed_out: set[int] = set()
        self._peer_call_ids: dict[int, _FuzzCall] = {}
        """The unauthenticated call by the Call ID the server's GRE to it carries (ours, from the OCRQ)."""
        self._library_log = _LibraryLog()

    # -- setting up and down ------------------------------------------------------------------------------

    async def __aenter__(self) -> Runner:
        self._library_log.attach()
        try:
            await self._set_up()
        except BaseException:
            await self.__aexit__()
            raise
        return self

    async def _set_up(self) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self.daemon.start)
        _ip("-n", self.pair.server_ns, "route", "add", str(ATTACKER_NETWORK), "dev", VETH)
        self.legit = await open_session(self.pair)
        self.pinger = Pinger(self.legit)
        self.pinger.start()
        probe = BatchResult(Batch(0, -1, ()))  # warm up: every kind of descriptor the daemon opens lazily
        await self._pool_probe(probe)
        if probe.failures:
            raise RuntimeError("the fuzzer's setup failed: " + "; ".join(probe.failures))
        await asyncio.sleep(0.5)
        self.baseline_devices = await self.daemon.devices()
        samples = []
        for _ in range(5):
            samples.append(self.daemon.fds())
            await asyncio.sleep(0.1)
        self.baseline_fds = min(samples)

    async def __aexit__(self, *exc_info: object) -> None:
        if self.pinger is not None:
            await self.pinger.stop()
        if self.legit is not None:
            await close_session(self.legit)
        await asyncio.get_running_loop().run_in_executor(None, self.daemon.stop)
        self._library_log.detach()

    @property
    def legit_call_id(self) -> int:
        assert self.legit is not None and self.legit.call.peer_call_id is not None
        return self.legit.call.peer_call_id

    # -- a batch ---------------------------------------------------------------------------------------------

    async def run_batch(self, batch: Batch) -> BatchResult:
        assert self.pinger is not None
        result = BatchResult(batch)
        started = time.monotonic()
        log_start = self.daemon.log_size()
        ping_start = self.pinger.next
        self._call = _FuzzCall()
        self._auth_call_id = None
        self._handed_out = set()
        self._attacker, self._auth_source = attacker_addresses(batch.index)
        for address in (self._attacker, self._auth_source):
            _ip("-n", self.pair.client_ns, "addr", "add", f"{address}/32", "dev", VETH)
        try:
            await self._play(batch, result)
            await self._timed("checks", self._check(result, ping_start, self.pinger.next), result)
        finally:
            for address in (self._attacker, self._auth_source):
                with contextlib.suppress(RuntimeError):
                    _ip("-n", self.pair.client_ns, "addr", "del", f"{address}/32", "dev", VETH)
        result.log = self.daemon.log_since(log_start)
        for marker in LOG_MARKERS:
            if marker in result.log:
                result.failures.append(f"the daemon logged {marker!r}")
        for traceback in self._library_log.tracebacks:
            result.failures.append(f"the fuzzer's own pypptp code logged an exception: {traceback}")
        self._library_log.tracebacks.clear()
        established = {int(n) for n in re.findall(r"call established, our Call ID (\d+)", result.log)}
        cleared = {int(n) for n in re.findall(r"call (\d+) cleared", result.log)}
        leaked = sorted((self._handed_out | established) - cleared - {self.legit_call_id})
        if leaked:
            result.failures.append(f"Call IDs handed out during the batch and never cleared: {leaked}")
        result.seconds = time.monotonic() - started
        return result

    async def _play(self, batch: Batch, result: BatchResult) -> None:
        """The four streams at once, from this batch's addresses, with its raw GRE sockets."""
        loop = asyncio.get_running_loop()
        self._gre = self._raw_socket(self._attacker)
        loop.add_reader(self._gre.fileno(), self._on_gre)
        self._gre_options = self._raw_socket(self._attacker)
        self._gre_options.setsockopt(socket.IPPROTO_IP, socket.IP_OPTIONS, IP_OPTIONS_NOPS)
        self._gre_auth = self._raw_socket(self._auth_source)
        streams = [
            self._timed(name, stream(batch, result), result)
            for name, stream in (
                ("control", self._control),
                ("unauth", self._unauth),
                ("auth", self._auth),
                ("gre", self._raw_gre),
            )
        ]
        try:
            async with asyncio.timeout(STREAMS_TIMEOUT):
                outcomes = await asyncio.gather(*streams, return_exceptions=True)
        except TimeoutError:
            result.failures.append(f"the batch's streams did not finish within {STREAMS_TIMEOUT:g} s")
        else:
            for outcome in outcomes:
                if isinstance(outcome, BaseException):
                    result.failures.append(f"fuzzer error: {outcome!r}")
        finally:
            loop.remove_reader(self._gre.fileno())
            for sock in (self._gre, self._gre_options, self._gre_auth):
                sock.close()

    def _raw_socket(self, source: str) -> socket.socket:
        sock = self.pair.socket(self.pair.client_ns, socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_GRE)
        sock.setblocking(False)
        sock.bind((source, 0))
        return sock

    @staticmethod
    async def _timed(name: str, work: Awaitable[None], result: BatchResult) -> None:
        started = time.monotonic()
        try:
            await work
        finally:
            result.timings[name] = round(time.monotonic() - started, 3)

    async def _check(self, result: BatchResult, ping_start: int, ping_end: int) -> None:
        assert self.pinger is not None and self.legit is not None
        status = self.daemon.exit_status()
        if status is not None:
            result.failures.append(f"pypptpd exited with status {status}")
            return
        lost = await self.pinger.lost(ping_start, ping_end)
        result.pings, result.pings_lost = ping_end - ping_start, len(lost)
        if len(lost) > MAX_LOST_PINGS:
            result.failures.append(f"the legit session lost {len(lost)} of {ping_end - ping_start} pings: {lost}")
        if self.legit.ppp is None or self.legit.ppp.closed or self.legit.control.closed_reason is not None:
            reason = self.legit.down_reason or self.legit.control.closed_reason
            result.failures.append(f"the legit session ended: {reason}")
        await self._settled(result, "after the batch")
        await self._pool_probe(result)
        await self._settled(result, "after the pool probe")

    async def _settled(self, result: BatchResult, when: str) -> None:
        """Wait until descriptors and devices are back to the baseline, or fail."""
        deadline = time.monotonic() + SETTLE_TIMEOUT
        while True:
            if self.daemon.exit_status() is not None:
                return
            fds, devices = self.daemon.fds(), await self.daemon.devices()
            if fds <= self.baseline_fds and devices == self.baseline_devices:
                return
            if time.monotonic() >= deadline:
                result.failures.append(
                    f"{when}, not back to the baseline within {SETTLE_TIMEOUT:g} s: {fds} open descriptors "
                    f"(baseline {self.baseline_fds}), devices {devices} (baseline {self.baseline_devices})"
                )
                return
            await asyncio.sleep(0.05)

    async def _pool_probe(self, result: BatchResult) -> None:
        """Four fresh clients at once: with the legit session they take the whole pool."""
        outcomes = await asyncio.gather(*(open_session(self.pair) for _ in range(PROBES)), return_exceptions=True)
        sessions = [o for o in outcomes if isinstance(o, PptpClientSession)]
        errors = [o for o in outcomes if not isinstance(o, PptpClientSession)]
        try:
            for session in sessions:
                if session.call.peer_call_id is not None:
                    self._handed_out.add(session.call.peer_call_id)
            if errors:
                result.failures.append(f"pool probe: {len(errors)} of {PROBES} fresh clients failed: {errors}")
            addresses = sorted(str(s.network.local_address) for s in sessions if s.network is not None)
            legit = self.legit.network if self.legit is not None else None
            taken = {str(legit.local_address)} if legit is not None else set()
            if len(set(addresses)) != len(addresses) or not set(addresses) <= set(POOL) - taken:
                result.failures.append(f"pool probe: addresses {addresses} (the legit session holds {taken})")
        finally:
            await asyncio.gather(*(close_session(s) for s in sessions))

    # -- the streams ---------------------------------------------------------------------------------------

    async def _connect(self, name: str, result: BatchResult, small_buffer: bool = False) -> socket.socket | None:
        """A TCP connection to the daemon from the batch's attacker address (None, and a failure, if the
        daemon does not accept it)."""
        sock = self.pair.socket(self.pair.client_ns)
        sock.bind((self._attacker, 0))
        if small_buffer:  # a peer that never reads: its window closes at once
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        try:
            await asyncio.wait_for(asyncio.get_running_loop().sock_connect(sock, (self.pair.server_ip, 1723)), 5)
        except (OSError, TimeoutError) as exc:
            sock.close()
            result.failures.append(f"{name}: cannot connect to the daemon: {exc!r}")
            return None
        return sock

    def _on_ocrp(self, reply: OutgoingCallReply) -> None:
        if reply.result_code is OutgoingCallResult.CONNECTED:
            self._handed_out.add(reply.call_id)

    async def _control(self, batch: Batch, result: BatchResult) -> None:
        for unit, steps in batch.units("control").items():
            stall = steps[0][1].op == "stall"
            sock = await self._connect(f"control[{unit}]", result, small_buffer=stall)
            if sock is None:
                return
            reader = None if stall else _ControlReader(sock, self._on_ocrp)
            try:
                await self._play_tcp(f"control[{unit}]", sock, reader, steps, result)
            finally:
                if reader is not None:
                    reader.cancel()
                sock.close()

    async def _play_tcp(
        self,
        name: str,
        sock: socket.socket,
        reader: _ControlReader | None,
        steps: list[tuple[int, Step]],
        result: BatchResult,
        other: Callable[[int, Step], Awaitable[None]] | None = None,
    ) -> None:
        """Play a TCP connection's steps; ``other`` plays the steps that are not about TCP."""
        loop = asyncio.get_running_loop()
        for index, step in steps:
            try:
                if step.op == "send":
                    await asyncio.wait_for(loop.sock_sendall(sock, step.data * step.count), STEP_TIMEOUT * 2)
                elif step.op == "reset":
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    return
                elif step.op == "half-close":
                    sock.shutdown(socket.SHUT_WR)
                    if reader is not None:
                        await reader.wait_eof(2.0)
                    return
                elif step.op == "linger":
                    await asyncio.sleep(step.wait)
                    return
                elif step.op == "close":
                    return
                elif other is not None:
                    await other(index, step)
            except (OSError, TimeoutError) as exc:
                result.notes.append(f"{name}: step {index} ({step.op}): {exc!r}; the connection ends here")
                return
            if step.wait and step.op != "linger":
                await asyncio.sleep(step.wait)

    # the unauthenticated call

    async def _unauth(self, batch: Batch, result: BatchResult) -> None:
        for _unit, steps in batch.units("unauth").items():
            await self._unauth_call(steps, result)

    async def _unauth_call(self, steps: list[tuple[int, Step]], result: BatchResult) -> None:
        sock = await self._connect("unauth", result)
        if sock is None:
            return
        reader = _ControlReader(sock, self._on_ocrp)
        call = self._call
        for _, step in steps:  # listen for the call's GRE before the OCRQ goes: the server's first LCP
            if step.op == "send":  # Configure-Request can overtake its OCRP
                with contextlib.suppress(ControlMessageError):
                    for message in ControlStreamFramer(strict=False).feed(step.data):
                        if isinstance(message, OutgoingCallRequest):
                            self._peer_call_ids[message.call_id] = call

        async def gre_step(index: int, step: Step) -> None:
            if not call.waited:  # the first GRE step waits for the call
                call.waited = True
                with contextlib.suppress(TimeoutError):
                    reply = await asyncio.wait_for(asyncio.shield(reader.ocrp), OCRP_WAIT)
                    if reply.result_code is OutgoingCallResult.CONNECTED:
                        call.server_call_id = reply.call_id
                if call.server_call_id is None:
                    result.failures.append(f"a valid SCCRQ and OCRQ got no connected OCRP within {OCRP_WAIT:g} s")
            if call.server_call_id is not None:
                await self._unauth_gre(index, step, call, result)

        try:
            await self._play_tcp("unauth", sock, reader, steps, result, gre_step)
        finally:
            reader.cancel()
            sock.close()
            self._peer_call_ids = {}

    async def _unauth_gre(self, index: int, step: Step, call: _FuzzCall, result: BatchResult) -> None:
        frame = step.data
        if step.op == "ack-lcp":
            if not await self._heard(call, "LCP Configure-Request", lambda: call.lcp_request is not None, result):
                return
            assert call.lcp_request is not None
            ident, options = call.lcp_request
            frame = encode_frame(Protocol.LCP, ControlPacket(Code.CONFIGURE_ACK, ident, options).encode())
        elif step.op == "chap":
            if not await self._heard(call, "CHAP Challenge", lambda: call.chap_identifier is not None, result):
                return
            assert call.chap_identifier is not None
            frame = frame[:5] + bytes((call.chap_identifier,)) + frame[6:]
        frame = _patched(frame, step.patch)
        if step.seq == "same":
            seq = call.seq - 1
        elif step.seq == "back":
            seq = call.seq - step.count
        else:
            if step.seq == "skip":
                call.seq += step.count
            seq = call.seq
            call.seq += 1
        last = call.last_received
        ack = {"last": last, "ahead": (last + 1000) & 0xFFFFFFFF if last >= 0 else NO_NUMBER, "cisco": 0xFFFFFFFF}
        assert call.server_call_id is not None
        packet = encode_packet(call.server_call_id, frame, seq & 0xFFFFFFFF, ack.get(step.ack, NO_NUMBER))
        self._send_gre(self._gre, packet, index, result)

    async def _heard(self, call: _FuzzCall, what: str, condition: Callable[[], bool], result: BatchResult) -> bool:
        """Wait (once per batch and kind) until the server has sent ``what``."""
        if what in call.missed:
            return condition()
        deadline = asyncio.get_running_loop().time() + PEER_WAIT
        while not condition():
            call.heard.clear()
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                call.missed.add(what)
                result.notes.append(
                    f"unauth: no {what} from the server within {PEER_WAIT:g} s; the steps that need it are skipped"
                )
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(call.heard.wait(), remaining)
        return True

    def _on_gre(self) -> None:
        """GRE in the client namespace: note what the server sends the unauthenticated call."""
        assert self._gre is not None
        for _ in range(256):
            try:
                data = self._gre.recv(65536)
            except BlockingIOError:
                return
            except OSError:
                continue
            at = (data[0] & 0x0F) * 4
            try:
                header = decode_header(memoryview(data)[at:])
            except GreError:
                continue
            call = self._peer_call_ids.get(header.call_id)
            if call is None:
                continue
            if header.seq != NO_NUMBER:
                call.last_received = header.seq
            frame = data[at + header.header_size : at + header.header_size + header.payload_length]
            try:
                protocol, offset = parse_frame(frame)
            except FrameError:
                continue
            if len(frame) >= offset + 4 and frame[offset] == Code.CONFIGURE_REQUEST and protocol == Protocol.LCP:
                length = int.from_bytes(frame[offset + 2 : offset + 4], "big")
                call.lcp_request = (frame[offset + 1], frame[offset + 4 : offset + length])
            elif len(frame) >= offset + 2 and frame[offset] == 1 and protocol == Protocol.CHAP:
                call.chap_identifier = frame[offset + 1]
            call.heard.set()

    def _send_gre(self, sock: socket.socket | None, packet: bytes, index: int, result: BatchResult) -> None:
        assert sock is not None
        result.sent[index] = packet
        try:
            sock.sendto(packet, (self.pair.server_ip, 0))
        except OSError as exc:
            result.notes.append(f"step {index}: sendto: {exc!r}")

    # the authenticated session

    async def _auth(self, batch: Batch, result: BatchResult) -> None:
        for _unit, steps in batch.units("auth").items():
            try:
                session = await open_session(self.pair, source=self._auth_source)
            except (PptpClientError, OSError, TimeoutError) as exc:
                result.failures.append(f"a valid client could not connect (for the authenticated stream): {exc}")
                return
            assert session.call.peer_call_id is not None
            self._auth_call_id = session.call.peer_call_id
            self._handed_out.add(session.call.peer_call_id)
            try:
                await self._play_auth(session, steps, result)
            finally:
                await close_session(session)

    async def _play_auth(self, session: PptpClientSession, steps: list[tuple[int, Step]], result: BatchResult) -> None:
        assert session.network is not None
        source, target = str(session.network.local_address), str(session.network.peer_address)
        for index, step in steps:
            ppp, gre, protocol = session.ppp, session.gre, session.control._protocol
            if ppp is None or ppp.closed or gre is None or protocol is None or protocol.transport is None:
                result.notes.append(f"auth: the session had ended before step {index}: {session.down_reason}")
                return
            if step.op == "ppp":
                gre.send(step.data)
            elif step.op == "mppe":
                frame = ppp.link.send_data(Protocol.IPV4, icmp_echo(source, target, _ICMP_IDENT + 1, index))
                if frame is None:
                    result.notes.append(f"auth: step {index}: the link would not encrypt (not up)")
                    continue
                frame = _patched(frame, step.patch)
                if step.count != 1:
                    frame = frame[: step.count]
                result.sent[index] = frame
                gre.send(frame)
            elif step.op == "send":
                protocol.transport.write(step.data)
            elif step.op == "reset":
                session.control.close()
                return
            elif step.op == "close":
                return
            if step.wait:
                await asyncio.sleep(step.wait)

    # raw GRE

    async def _raw_gre(self, batch: Batch, result: BatchResult) -> None:
        for _unit, steps in batch.units("gre").items():
            for index, step in steps:
                packet = bytearray(step.data)
                call_id = {"unauth": self._call.server_call_id, "auth": self._auth_call_id}.get(step.target)
                if call_id is not None and len(packet) >= 8:
                    packet[6:8] = call_id.to_bytes(2, "big")
                if len(packet) >= 8 and int.from_bytes(packet[6:8], "big") == self.legit_call_id:
                    packet[6:8] = (self.legit_call_id ^ 0x8000).to_bytes(2, "big")  # never the legit call
                sock = self._gre if step.op == "gre" else self._gre_options
                if step.target == "auth":  # from the address the authenticated session has
                    sock = self._gre_auth
                self._send_gre(sock, bytes(packet), index, result)
                await asyncio.sleep(step.wait)  # at least a yield, so the other streams run meanwhile
