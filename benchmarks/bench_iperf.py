"""TCP throughput of iperf3 through one pypptpd tunnel, beside a minimal tunnel loop measured in the same run.

``python -m benchmarks.bench_iperf [--seconds S] [--rounds N] [--json FILE] [--profile DIR] [--perf DIR]`` (root;
iproute2, iperf3).  About 50 s with the defaults (5 s per iperf3 run, one round).

For each MPPE mode (stateless, stateful), two tunnels are brought up at once, each between its own pair
of throw-away namespaces joined by veth (:func:`pypptp.host.netns.two_hosts`, 198.18.0.0/15):

* **project**: the real daemon, ``python -m pypptp.daemon.cli -f`` (``pypptpd``), in its server namespace with
  a generated pptpd.conf (localip 192.168.0.1, remoteip 192.168.0.234-238), options (MS-CHAPv2 only,
  ``require-mppe-128``, ``mppe-stateful`` for the stateful mode, MRU and MTU 1400) and chap-secrets;
  the project's client, ``python -m pypptp.client.tunnel`` with a ``ppp0`` TUN, in its client
  namespace as a separate process.  Both tunnel devices get MTU 1396 (MRU 1400 minus MPPE's 4 bytes).
* **minimal**: one :mod:`benchmarks.minimal_tunnel` process per side (no project code: TUN, raw GRE
  socket, MPPE-128 of the same mode, batched epoll loop), same tunnel addresses and MTU.

Then, in turn through each tunnel (an idle tunnel costs nothing; project and minimal alternate so both
see the same machine state, which other work on this 2-core machine disturbs), ``iperf3 -c 192.168.0.1
-t S -J`` from the client namespace to ``iperf3 -s -1`` bound to the server's tunnel address: upload
(client -> server) and download (``-R``).  The figure is the receiver's
``end.sum_received.bits_per_second`` (the median over ``--rounds``); ``end.sum_sent.retransmits`` is kept
beside it.  The result gives, per mode and direction, project and minimal Mbit/s and their ratio (the
target of issue 8 is 0.9), plus cheap diagnostics: the client's data-path counters (``--stats``: GRE
window refusals, ack time-outs, losses), the daemon's "Sent N bytes, received M bytes" line, the minimal
endpoints' counters, and the kernel's drops on each ``ppp0`` (TUN queue full) and raw socket (socket
buffer full) in both namespaces.

``--profile DIR`` also runs ``py-spy record --nonblocking -f raw`` on the daemon and on the client
during each project iperf3 run and prints their top functions by own time (py-spy costs some
throughput, so profiled figures are not comparable with plain ones).  ``--perf DIR`` records every
process of both tunnels with ``perf record`` (native code too: RC4, the kernel, the interpreter loop) and
prints, per end, the project's CPU per packet relative to the minimal loop's, split by where it goes
(:func:`perf_table`): the profile that shows where the last gap is.

Every wait is bounded, every process is stopped in ``finally`` (SIGTERM, then SIGKILL) and the
namespaces are always deleted.  Never an absolute threshold: only the ratio in the same run means
something, and even that moves by +-0.15 between runs on a busy machine.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import dataclasses
import json
import math
import os
import re
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from pypptp.client.demo import stop_process, wait_until_listening
from pypptp.host.netns import NetnsPair, netns_available, run_in_netns, two_hosts

REPO = Path(__file__).resolve().parents[1]
MODES = ("stateless", "stateful")
DIRECTIONS = ("up", "down")
TUNNEL_SERVER, TUNNEL_CLIENT = "192.168.0.1", "192.168.0.234"
MTU = 1396
USER, PASSWORD = "bench", "bench-password"
IPERF_PORT = 5201
OPTIONS = """name pptpd
refuse-pap
refuse-chap
refuse-mschap
require-mschap-v2
require-mppe-128
mru 1400
mtu 1400
"""
_SENT_RECEIVED = re.compile(r"Sent (\d+) bytes, received (\d+) bytes")


# -- small helpers -------------------------------------------------------------------------------------


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}


_stop = stop_process  # SIGTERM, then SIGKILL if it hangs; the exit status


class _Lines:
    """A child's stdout read without blocking past a deadline (select on the pipe)."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        self.process = process
        self.fd = process.stdout.fileno()
        self.text = ""
        self._eof = False

    def _read(self, timeout: float) -> bool:
        if self._eof:
            return False
        ready, _, _ = select.select([self.fd], [], [], max(0.0, timeout))
        if not ready:
            return True
        chunk = os.read(self.fd, 65536)
        if not chunk:
            self._eof = True
            return False
        self.text += chunk.decode(errors="replace")
        return True

    def wait_for(self, needle: str, timeout: float, what: str) -> str:
        """The first line containing ``needle``; RuntimeError with the output so far if it does not come."""
        deadline = time.monotonic() + timeout
        while True:
            for line in self.text.splitlines():
                if needle in line:
                    return line
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._read(remaining):
                break
        raise RuntimeError(f"{what}: no {needle!r} within {timeout} s (exit {self.process.poll()}):\n{self.text}")

    def rest(self, timeout: float = 5.0) -> str:
        """Everything until EOF (the process has been told to stop), bounded."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self._read(deadline - time.monotonic()):
            pass
        return self.text


def _stats_line(text: str) -> dict[str, Any]:
    for line in reversed(text.splitlines()):
        if line.startswith("stats "):
            parsed: dict[str, Any] = json.loads(line[6:])
            return parsed
    return {}


def _kernel_drops(pair: NetnsPair) -> dict[str, dict[str, int]]:
    """Per namespace: ppp0's receive and transmit drops (/proc/net/dev; a full TUN queue counts as a
    transmit drop) and the raw GRE sockets' drops (/proc/net/raw, a full receive buffer)."""

    def read() -> dict[str, int]:
        counts = {"ppp0_rx_drop": 0, "ppp0_tx_drop": 0, "raw_drops": 0}
        with open("/proc/thread-self/net/dev", encoding="ascii") as dev:
            for line in dev:
                name, _, fields = line.partition(":")
                if name.strip() == "ppp0":
                    numbers = fields.split()
                    counts["ppp0_rx_drop"], counts["ppp0_tx_drop"] = int(numbers[3]), int(numbers[11])
        with open("/proc/thread-self/net/raw", encoding="ascii") as raw:
            for line in list(raw)[1:]:
                columns = line.split()
                if columns and columns[1].endswith(":002F"):  # local address:protocol 47
                    counts["raw_drops"] += int(columns[-1])
        return counts

    return {"server": run_in_netns(pair.server_ns, read), "client": run_in_netns(pair.client_ns, read)}


def _diff(after: dict[str, dict[str, int]], before: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    return {side: {k: v - before[side].get(k, 0) for k, v in counts.items()} for side, counts in after.items()}


# -- iperf3 --------------------------------------------------------------------------------------------


def iperf(pair: NetnsPair, seconds: int, *, reverse: bool) -> dict[str, Any]:
    """One iperf3 test through the tunnel: upload (client -> server) or, ``reverse``, download.

    Returns Mbit/s as the receiver counted it, the sender's retransmits and the kernel drops meanwhile."""
    before = _kernel_drops(pair)
    server = subprocess.Popen(
        pair.exec_argv(
            pair.server_ns, ["iperf3", "-s", "-1", "--forceflush", "-B", TUNNEL_SERVER, "-p", str(IPERF_PORT)]
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        _Lines(server).wait_for("listening", 10, "iperf3 -s")
        argv = ["iperf3", "-c", TUNNEL_SERVER, "-p", str(IPERF_PORT), "-t", str(seconds), "-J"]
        argv += ["--connect-timeout", "5000", *(["-R"] if reverse else [])]
        client = subprocess.run(
            pair.exec_argv(pair.client_ns, argv), capture_output=True, text=True, timeout=seconds + 30, check=False
        )
        try:
            report = json.loads(client.stdout)
        except json.JSONDecodeError:
            raise RuntimeError(f"iperf3 -c: {client.stdout}{client.stderr}") from None
        if "error" in report:
            raise RuntimeError(f"iperf3 -c: {report['error']}")
        end = report["end"]
        return {
            "mbps": end["sum_received"]["bits_per_second"] / 1e6,
            "retransmits": end["sum_sent"].get("retransmits"),
            "kernel_drops": _diff(_kernel_drops(pair), before),
        }
    finally:
        _stop(server, 5)


# -- py-spy --------------------------------------------------------------------------------------------


def _py_spy() -> str:
    candidate = Path(sys.executable).parent / "py-spy"
    return str(candidate) if candidate.exists() else "py-spy"


@contextlib.contextmanager
def _recording(argvs: list[list[str]], seconds: int) -> Iterator[None]:
    """Profilers (one argv each) running while the block runs; each is waited for, bounded, afterwards."""
    recorders = [subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for argv in argvs]
    try:
        yield
    finally:
        for recorder in recorders:
            try:
                recorder.wait(seconds + 30)
            except subprocess.TimeoutExpired:
                _stop(recorder)


def _profiling(pids: dict[str, int], out: Path | None, seconds: int) -> contextlib.AbstractContextManager[None]:
    """``py-spy record -f raw`` of each process in ``pids`` (name -> pid) into ``out`` while the block runs."""
    argvs: list[list[str]] = []
    for name, pid in pids.items() if out is not None else ():
        assert out is not None
        argv = [_py_spy(), "record", "--nonblocking", "-r", "250", "-f", "raw", "-d", str(seconds + 1)]
        argvs.append([*argv, "-o", str(out.with_name(f"{out.name}-{name}.txt")), "--pid", str(pid)])
    return _recording(argvs, seconds)


def top_functions(raw_file: Path, n: int = 12) -> list[tuple[str, float, float]]:
    """(function, own %, total %) of a ``py-spy record -f raw`` file, the ``n`` largest by own time."""
    own: collections.Counter[str] = collections.Counter()
    total: collections.Counter[str] = collections.Counter()
    samples = 0
    for line in raw_file.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [re.sub(r" \((.*/)?([^/]*)\)$", r" (\2)", frame) for frame in stack.split(";")]
        samples += count
        own[frames[-1]] += count
        for frame in set(frames):
            total[frame] += count
    if not samples:
        return []
    return [(name, 100 * c / samples, 100 * total[name] / samples) for name, c in own.most_common(n)]


# -- perf: native profiles of both tunnels -------------------------------------------------------------

PERF_GROUPS = ("crypto", "kernel", "interpreter", "python", "libc", "other")
"""Where ``perf`` puts a tunnel process's CPU time: RC4 and SHA-1 (``arc4``, cryptography's Rust module
with its OpenSSL, libcrypto, hashlib), the kernel (syscalls, the network stack it runs for us,
scheduling), CPython's bytecode loop, the rest of libpython (objects, buffers, calls into C), libc,
anything else."""


def _perf_recording(pids: dict[str, int], out: Path | None, seconds: int) -> contextlib.AbstractContextManager[None]:
    """``perf record`` (999 Hz, no call graph) of each process in ``pids`` (name -> pid) into ``out`` while
    the block runs: the project's processes and the minimal loop's alike, native code included, which
    py-spy cannot see."""
    argvs: list[list[str]] = []
    for name, pid in pids.items() if out is not None else ():
        assert out is not None
        argv = ["perf", "record", "-F", "999", "-o", str(out.with_name(f"{out.name}-{name}.data")), "-p", str(pid)]
        argvs.append([*argv, "--", "sleep", str(max(1, seconds - 1))])
    return _recording(argvs, seconds)


def perf_split(data_file: Path) -> dict[str, float]:
    """The shares (%) of :data:`PERF_GROUPS` in one ``perf record`` file (``perf report`` by dso, symbol)."""
    report = subprocess.run(
        ["perf", "report", "-i", str(data_file), "--no-children", "--sort", "dso,sym", "-g", "none", "--stdio"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    ).stdout
    shares = dict.fromkeys(PERF_GROUPS, 0.0)
    for line in report.splitlines():
        match = re.match(r"\s*([\d.]+)%\s+(\S+)\s+\[[.k]\]\s+(\S+)", line)
        if not match:
            continue
        share, dso, symbol = float(match[1]), match[2], match[3]
        if "arc4" in dso or "libcrypto" in dso or "_hashlib" in dso or "_rust" in dso:  # _rust: cryptography's
            group = "crypto"
        elif "kernel" in dso:
            group = "kernel"
        elif "libpython" in dso:
            group = "interpreter" if symbol == "_PyEval_EvalFrameDefault" else "python"
        elif dso.startswith("libc"):
            group = "libc"
        else:
            group = "other"
        shares[group] += share
    return shares


def perf_table(directory: Path) -> list[str]:
    """Per mode, direction and process: the :func:`perf_split` of the project's processes beside the
    minimal loop's, each relative to the minimal process at the same end.  RC4 and SHA-1 do the same work
    per packet in both tunnels (the same library calls on the same bytes), so the ratio of their crypto
    shares is the ratio of CPU time per packet, and each group's share times that ratio puts it on the
    minimal process's scale: what is left over is the project's extra cost, by group."""
    lines = ["CPU per packet by group, % of the minimal process at the same end (perf, RC4/SHA-1 work equal):"]
    lines.append(f"  {'run':30}{'total':>7}" + "".join(f"{g:>12}" for g in PERF_GROUPS))
    ends = {"daemon": "server", "client": "client"}
    for data in sorted(directory.glob("*-project-*.data")):
        stem, _, end = data.stem.rpartition("-")
        minimal = directory / f"{stem.replace('-project', '-minimal')}-{ends.get(end, end)}.data"
        if end not in ends or not minimal.exists():
            continue
        ours, floor = perf_split(data), perf_split(minimal)
        if not ours["crypto"] or not floor["crypto"]:
            continue
        scale = floor["crypto"] / ours["crypto"]  # project CPU per packet / minimal's
        lines.append(
            f"  {stem.replace('-project', '') + ' ' + end:30}{100 * scale:>6.0f}%"
            + "".join(f"{ours[g] * scale:>6.1f}/{floor[g]:<5.1f}" for g in PERF_GROUPS)
        )
    return lines


# -- the two tunnels -----------------------------------------------------------------------------------


@dataclasses.dataclass
class Tunnel:
    """A tunnel that is up between the namespaces of ``pair``; ``info`` gathers its diagnostics, the last
    ones (counters printed at exit) once its context manager has ended."""

    kind: str
    pair: NetnsPair
    pids: dict[str, int]
    info: dict[str, Any] = dataclasses.field(default_factory=dict)


def _write_daemon_files(workdir: Path, pair: NetnsPair, mode: str) -> list[str]:
    """pptpd.conf, the options file, chap-secrets and empty system options; the daemon's argv."""
    options = workdir / "pptpd-options"
    options.write_text(OPTIONS + ("mppe-stateful\n" if mode == "stateful" else ""))
    secrets = workdir / "chap-secrets"
    secrets.write_text(f"{USER} pptpd {PASSWORD} *\n")
    secrets.chmod(0o600)
    conf = workdir / "pptpd.conf"
    conf.write_text(f"option {options}\nlisten {pair.server_ip}\nlocalip {TUNNEL_SERVER}\nremoteip 192.168.0.234-238\n")
    (workdir / "options.system").write_text("")
    files = ["--secrets", str(secrets), "--system-options", str(workdir / "options.system")]
    files += ["--ip-up", str(workdir / "ip-up"), "--ip-down", str(workdir / "ip-down")]
    files += ["--control-socket", str(workdir / "sock")]
    return [sys.executable, "-m", "pypptp.daemon.cli", "-f", "-c", str(conf), "-p", str(workdir / "pid"), *files]


@contextlib.contextmanager
def project_tunnel(mode: str) -> Iterator[Tunnel]:
    """The real pypptpd and the project's client (separate processes) in fresh namespaces, tunnel up."""
    with tempfile.TemporaryDirectory(prefix="pypptp-iperf-") as tmp, two_hosts(f"ip{mode[:5]}") as pair:
        workdir = Path(tmp)
        os.chmod(workdir, 0o755)
        daemon_argv = _write_daemon_files(workdir, pair, mode)
        client_argv = [sys.executable, "-m", "pypptp.client.tunnel", pair.server_ip, "-u", USER, "-p", PASSWORD]
        client_argv += ["--mru", "1400", "--timeout", "20", "--stats"]
        client_argv += ["--mppe-stateful"] if mode == "stateful" else []
        log_path = workdir / "pypptpd.log"
        daemon: subprocess.Popen[bytes] | None = None
        client: subprocess.Popen[bytes] | None = None
        tunnel = Tunnel("project", pair, {})
        with log_path.open("wb") as log_file:
            try:
                daemon = subprocess.Popen(
                    pair.exec_argv(pair.server_ns, daemon_argv),
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    env=_env(),
                    cwd=REPO,
                )
                wait_until_listening(daemon, log_path, 15)
                client = subprocess.Popen(
                    pair.exec_argv(pair.client_ns, client_argv),
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    env=_env(),
                    cwd=REPO,
                )
                client_out = _Lines(client)
                up = client_out.wait_for(" <-> ", 30, "the project's client")
                if f"MTU {MTU}" not in up or ("stateful" in up) != (mode == "stateful"):
                    raise RuntimeError(f"unexpected tunnel: {up}")
                tunnel.info["tunnel"] = up.strip()
                tunnel.pids.update(daemon=daemon.pid, client=client.pid)
                yield tunnel
                tunnel.info["client_status"] = _stop(client)
                tunnel.info["client_stats"] = _stats_line(client_out.rest())
            finally:
                if client is not None:
                    _stop(client)
                if daemon is not None:
                    tunnel.info["daemon_status"] = _stop(daemon, 15)
        match = _SENT_RECEIVED.search(log_path.read_text(errors="replace"))
        if match:
            tunnel.info["daemon_bytes"] = {"sent": int(match[1]), "received": int(match[2])}


@contextlib.contextmanager
def minimal_tunnel(mode: str, lifetime: float) -> Iterator[Tunnel]:
    """Two :mod:`benchmarks.minimal_tunnel` endpoints in fresh namespaces, tunnel up; each exits on its own
    after ``lifetime`` seconds at the latest."""
    with two_hosts(f"mi{mode[:5]}") as pair:
        endpoints: dict[str, tuple[subprocess.Popen[bytes], _Lines]] = {}
        tunnel = Tunnel("minimal", pair, {})
        sides = (
            ("server", pair.server_ns, pair.client_ip, TUNNEL_SERVER, TUNNEL_CLIENT),
            ("client", pair.client_ns, pair.server_ip, TUNNEL_CLIENT, TUNNEL_SERVER),
        )
        try:
            for side, ns, peer, local, remote in sides:
                argv = [sys.executable, "-m", "benchmarks.minimal_tunnel", "--side", side, "--mode", mode]
                argv += ["--peer", peer, "--local", local, "--remote", remote, "--mtu", str(MTU)]
                argv += ["--max-seconds", str(lifetime)]
                process = subprocess.Popen(
                    pair.exec_argv(ns, argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=_env(), cwd=REPO
                )
                lines = _Lines(process)
                endpoints[side] = (process, lines)
                lines.wait_for("ready", 15, f"minimal_tunnel --side {side}")
                tunnel.pids[side] = process.pid
            yield tunnel
            for side, (process, lines) in endpoints.items():
                _stop(process)
                tunnel.info[f"{side}_stats"] = _stats_line(lines.rest())
        finally:
            for process, _ in endpoints.values():
                _stop(process)


def measure_mode(
    mode: str,
    seconds: int,
    *,
    directions: Sequence[str] = DIRECTIONS,
    rounds: int = 1,
    profile: Path | None = None,
    perf: Path | None = None,
) -> dict[str, Any]:
    """Both tunnels of ``mode`` up at once (idle, a tunnel costs nothing), then iperf3 through each in turn,
    alternating project and minimal so that both see the same machine state; per direction the median of
    ``rounds`` runs.  ``profile``: py-spy the project's processes (see :func:`_profiling`)."""
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {"project": {}, "minimal": {}}
    lifetime = rounds * len(directions) * 2 * (seconds + 40) + 60
    with project_tunnel(mode) as project, minimal_tunnel(mode, lifetime) as minimal:
        for round_number in range(rounds):
            for direction in directions:
                order = (project, minimal) if round_number % 2 == 0 else (minimal, project)
                for tunnel in order:
                    out = None
                    if profile is not None and tunnel is project:
                        out = profile / f"{mode}-{direction}-{round_number}"
                    native = perf / f"{mode}-{direction}-{round_number}-{tunnel.kind}" if perf else None
                    with (
                        _profiling(tunnel.pids if out else {}, out, seconds),
                        _perf_recording(tunnel.pids, native, seconds),
                    ):
                        outcome = iperf(tunnel.pair, seconds, reverse=direction == "down")
                    runs[tunnel.kind].setdefault(direction, []).append(outcome)
    result: dict[str, Any] = {"ratio": {}}
    for tunnel in (project, minimal):
        medians = {d: statistics.median(r["mbps"] for r in runs[tunnel.kind][d]) for d in directions}
        result[tunnel.kind] = {"mbps": medians, "runs": runs[tunnel.kind], **tunnel.info}
    result["paired"] = {}
    for direction in directions:
        result["ratio"][direction] = result["project"]["mbps"][direction] / result["minimal"]["mbps"][direction]
        pairs = zip(runs["project"][direction], runs["minimal"][direction], strict=True)
        result["paired"][direction] = statistics.median(p["mbps"] / m["mbps"] for p, m in pairs)
    return result


def run(
    seconds: float = 5.0,
    *,
    modes: Sequence[str] = MODES,
    directions: Sequence[str] = DIRECTIONS,
    rounds: int = 1,
    profile: Path | None = None,
    perf: Path | None = None,
) -> dict[str, Any]:
    """Run the benchmark (synchronous; root, iproute2, iperf3).

    ``seconds`` per iperf3 run, rounded to a whole second (iperf3 counts whole seconds), at least 1;
    ``rounds`` runs per tunnel and direction (the median counts).  Returns a JSON-able dict: ``seconds``,
    ``mtu``, ``load`` (the load average at the start: other work on the machine skews every figure), and per
    mode ``project`` and ``minimal`` (``mbps`` per direction, every run with its retransmits and kernel
    drops, and the counters the processes printed at exit) and ``ratio`` per direction (project /
    minimal)."""
    whole = max(1, math.ceil(seconds - 0.5))
    with open("/proc/loadavg", encoding="ascii") as loadavg:
        load = float(loadavg.read().split()[0])
    result: dict[str, Any] = {"seconds": whole, "mtu": MTU, "rounds": rounds, "load": load}
    for mode in modes:
        result[mode] = measure_mode(mode, whole, directions=directions, rounds=rounds, profile=profile, perf=perf)
    return result


def format_table(result: dict[str, Any]) -> list[str]:
    """The result as text lines: Mbit/s per mode and direction, the ratio (of the medians), the paired
    ratio (the median of each round's project/minimal: the tunnels alternate within a round, so a round's
    two runs saw the same machine state, as in bench (a)), retransmits, and the counters that explain a gap
    (GRE window refusals, ack time-outs, kernel drops)."""
    lines = [
        f"iperf3 TCP through one tunnel, {result['seconds']} s per run, median of {result['rounds']}, "
        f"MTU {result['mtu']}, load average at start {result['load']:.2f}"
    ]
    lines.append(
        f"{'mode':<10} {'dir':<5} {'project':>9} {'minimal':>9} {'ratio':>6} {'paired':>7}  {'retransmits p/m':>15}"
    )
    for mode in MODES:
        if mode not in result:
            continue
        entry = result[mode]
        for direction, ratio in entry["ratio"].items():
            p, m = entry["project"], entry["minimal"]
            retransmits = f"{_sum(p, direction, 'retransmits')}/{_sum(m, direction, 'retransmits')}"
            lines.append(
                f"{mode:<10} {direction:<5} {p['mbps'][direction]:9.1f} {m['mbps'][direction]:9.1f} {ratio:6.2f} "
                f"{entry['paired'][direction]:7.2f}  {retransmits:>15}"
            )
    for mode in MODES:
        if mode not in result:
            continue
        project, minimal = result[mode]["project"], result[mode]["minimal"]
        stats = project.get("client_stats", {})
        session, gre = stats.get("session", {}), stats.get("gre", {})
        lines.append(
            f"{mode} project client: send_refused {session.get('send_refused')}, GRE window {gre.get('window')}"
            f"/{gre.get('peer_window')}, window_full {gre.get('window_full')}, ack_timeouts {gre.get('ack_timeouts')}"
            f", lost {gre.get('lost')}, ack_only_sent {gre.get('ack_only_sent')}"
        )
        daemon_bytes = project.get("daemon_bytes", {})
        lines.append(
            f"{mode} project daemon: sent {daemon_bytes.get('sent')} bytes, received {daemon_bytes.get('received')}"
        )
        for side in ("server", "client"):
            counters = minimal.get(f"{side}_stats", {})
            shown = ("gre_gaps", "dropped", "resyncs", "send_errors")
            lines.append(f"{mode} minimal {side}: " + ", ".join(f"{k} {counters.get(k)}" for k in shown))
        for direction in project["runs"]:
            lines.append(
                f"{mode} {direction} kernel drops: project {_drops(project, direction)}; "
                f"minimal {_drops(minimal, direction)}"
            )
    return lines


def _sum(entry: dict[str, Any], direction: str, key: str) -> int | None:
    values = [run_result.get(key) for run_result in entry["runs"][direction]]
    return None if None in values else sum(values)


def _drops(entry: dict[str, Any], direction: str) -> str:
    total: collections.Counter[str] = collections.Counter()
    for run_result in entry["runs"][direction]:
        for side, counts in run_result["kernel_drops"].items():
            for name, value in counts.items():
                total[f"{side} {name}"] += value
    return ", ".join(f"{name} {value}" for name, value in total.items() if value) or "none"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_iperf", description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="per iperf3 run (whole seconds)")
    parser.add_argument("--rounds", type=int, default=1, help="runs per tunnel and direction; the median counts")
    parser.add_argument("--json", type=Path, help="write the full result here")
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument("--directions", nargs="+", choices=DIRECTIONS, default=list(DIRECTIONS))
    parser.add_argument("--profile", type=Path, help="py-spy the project's processes; raw profiles go here")
    parser.add_argument("--perf", type=Path, help="perf record both tunnels' processes (linux-perf); data goes here")
    args = parser.parse_args(argv)
    reason = netns_available()
    if reason is not None:
        print(f"bench_iperf {reason}", file=sys.stderr)
        return 2
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
    if args.perf is not None:
        if shutil.which("perf") is None:
            print("bench_iperf --perf needs perf (Debian: apt-get install linux-perf)", file=sys.stderr)
            return 2
        args.perf.mkdir(parents=True, exist_ok=True)
    result = run(
        args.seconds,
        modes=args.modes,
        directions=args.directions,
        rounds=args.rounds,
        profile=args.profile,
        perf=args.perf,
    )
    print("\n".join(format_table(result)))
    if args.perf is not None:
        print("\n" + "\n".join(perf_table(args.perf)))
    if args.profile is not None:
        for raw in sorted(args.profile.glob("*.txt")):
            print(f"\n{raw.name}: own% total% function")
            for name, own, total in top_functions(raw):
                print(f"  {own:5.1f} {total:5.1f}  {name}")
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
