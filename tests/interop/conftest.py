"""Interop lab: real Linux PPTP clients (and poptop pptpd) in QEMU VMs against a real pypptpd.

Everything lives in one throw-away network namespace per test: a bridge ``br0`` (198.18.0.1/24,
where pypptpd listens), one tap per VM on it, a dumpcap per VM tap, and an iperf3 server.  Nothing
is added to, or routed through, the root namespace; the namespace is deleted afterwards.

Each VM boots the cached image (``build_image.py``) and runs ``run.sh`` from its own 9p share
directory; it writes result lines (``PASS ...``, ``FAIL ...``, ``READY ...``) to ``results`` there,
pppd's log to ``pppd.log`` and syslog to ``messages``.  The host can answer through marker files in
the same directory (:meth:`Vm.release`).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.interop import build_image

REPO = Path(__file__).resolve().parents[2]
BRIDGE_IP = "198.18.0.1"
TUNNEL_LOCAL = "192.168.0.1"
REMOTE_POOL = "192.168.0.234-238"

# Host tools the lab needs, and the Debian package that brings each one.
HOST_TOOLS = {
    "ip": "iproute2",
    "qemu-system-x86_64": "qemu-system-x86",
    "debootstrap": "debootstrap",
    "cpio": "cpio",
    "zstd": "zstd",
    "dumpcap": "tshark",
    "tshark": "tshark",
    "iperf3": "iperf3",
}

# The reference pppd options poptop's sample ships, used for both servers.
SERVER_OPTIONS = [
    "name pptpd",
    "refuse-pap",
    "refuse-chap",
    "refuse-mschap",
    "require-mschap-v2",
    "require-mppe-128",
    f"ms-dns {TUNNEL_LOCAL}",
    "proxyarp",
    "nodefaultroute",
    "lock",
    "nobsdcomp",
    "novj",
    "novjccomp",
    "nologfd",
]
SECRETS = "test * secret *\n"

_counter = itertools.count()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "interop: boots QEMU VMs with real PPTP clients/servers (slow, needs root)")


def _missing_tools() -> list[str]:
    return [tool for tool in HOST_TOOLS if shutil.which(tool) is None]


def _unavailable() -> str | None:
    if os.geteuid() != 0:
        return "needs root"
    missing = _missing_tools()
    if missing and os.environ.get("CI") and shutil.which("apt-get"):
        packages = sorted({HOST_TOOLS[tool] for tool in missing})
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(
            ["apt-get", "install", "-y", "--no-install-recommends", *packages], env=env, check=False, timeout=900
        )
        missing = _missing_tools()
    if missing:
        return f"missing host tools: {', '.join(missing)} (apt-get install {' '.join(HOST_TOOLS[t] for t in missing)})"
    return None


@pytest.fixture(scope="session")
def lab_image() -> build_image.Image:
    """The VM image; skips (locally) or fails (in CI) if the lab cannot run here."""
    if os.environ.get("PYPPTP_SKIP_INTEROP") == "1" and not os.environ.get("CI"):
        pytest.skip("PYPPTP_SKIP_INTEROP=1")
    reason = _unavailable()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"interop lab cannot run in CI: {reason}")
        pytest.skip(f"interop lab: {reason}")
    return build_image.ensure_image()


def _ip(*args: str, check: bool = True) -> None:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {result.stderr.strip()}")


def _stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def wait_until(predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@dataclass
class Vm:
    """One QEMU guest on the lab bridge."""

    name: str
    address: str
    share: Path
    tap: str
    capture: Path
    process: subprocess.Popen[bytes]
    dumpcap: subprocess.Popen[bytes]
    console: Path

    def results(self) -> list[str]:
        path = self.share / "results"
        return path.read_text(errors="replace").splitlines() if path.exists() else []

    def text(self, name: str) -> str:
        path = self.share / name
        return path.read_text(errors="replace") if path.exists() else ""

    def wait_result(self, prefix: str, timeout: float) -> str:
        """The first result line starting with ``prefix`` (or a FAIL line, which ends the wait)."""
        found: list[str] = []

        def ready() -> bool:
            for line in self.results():
                if line.startswith(prefix) or line.startswith("FAIL"):
                    found.append(line)
                    return True
            if self.process.poll() is not None:
                found.append(f"FAIL VM exited before {prefix!r}")
                return True
            return False

        wait_until(ready, timeout, f"{self.name}: {prefix!r}\n{self.diagnostics()}")
        return found[0]

    def release(self, marker: str) -> None:
        """Let the guest script go on past ``wait_for MARKER``."""
        (self.share / marker).write_text("go\n")

    def wait_exit(self, timeout: float) -> int:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired as exc:
            raise AssertionError(f"{self.name} still running after {timeout} s\n{self.diagnostics()}") from exc

    def diagnostics(self) -> str:
        tail = "\n".join(self.text("run.out").splitlines()[-30:])
        ppp = "\n".join(self.text("pppd.log").splitlines()[-30:])
        return f"--- {self.name} run.out ---\n{tail}\n--- {self.name} pppd.log ---\n{ppp}"

    def iperf(self, tag: str) -> dict[str, float]:
        """Mbit/s received, for ``iperf-up-TAG.json`` and ``iperf-down-TAG.json`` written by the guest."""
        figures: dict[str, float] = {}
        for direction in ("up", "down"):
            data = json.loads(self.text(f"iperf-{direction}-{tag}.json"))
            figures[direction] = round(data["end"]["sum_received"]["bits_per_second"] / 1e6, 2)
        return figures


class Pypptpd:
    """``python -m pypptp.daemon.cli -f`` in the lab namespace, with files the harness writes."""

    def __init__(self, ns: str, workdir: Path, options: list[str], conf: list[str], secrets: str) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.ns = ns
        self.options = workdir / "pptpd-options"
        self.options.write_text("".join(f"{line}\n" for line in options))
        self.secrets = workdir / "chap-secrets"
        self.secrets.write_text(secrets)
        self.secrets.chmod(0o600)
        self.system_options = workdir / "options.system"
        self.system_options.write_text("")
        self.conf = workdir / "pptpd.conf"
        lines = [f"listen {BRIDGE_IP}", f"localip {TUNNEL_LOCAL}", f"remoteip {REMOTE_POOL}", *conf]
        lines.append(f"option {self.options}")
        self.conf.write_text("".join(f"{line}\n" for line in lines))
        self.log_path = workdir / "pypptpd.log"
        argv = [sys.executable, "-m", "pypptp.daemon.cli", "-f", "-d", "-c", str(self.conf)]
        argv += ["--secrets", str(self.secrets), "--system-options", str(self.system_options)]
        argv += ["--ip-up", str(workdir / "ip-up"), "--ip-down", str(workdir / "ip-down")]
        argv += ["-p", str(workdir / "pptpd.pid"), "--control-socket", str(workdir / "pypptpd.sock")]
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            ["ip", "netns", "exec", ns, *argv], stdout=self._log, stderr=subprocess.STDOUT, env=env, cwd=REPO
        )
        wait_until(self._listening, 15, f"pypptpd listening on {BRIDGE_IP}:1723\n{self.log()}")

    def _listening(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"pypptpd exited ({self.process.returncode}):\n{self.log()}")
        out = subprocess.run(["ip", "netns", "exec", self.ns, "ss", "-Hltn", "sport = :1723"], capture_output=True)
        return bool(out.stdout.strip())

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        _stop(self.process)
        self._log.close()


@dataclass
class Lab:
    """One namespace with a bridge; VMs, pypptpd and iperf3 started in it; all stopped after."""

    image: build_image.Image
    ns: str
    workdir: Path
    vms: list[Vm] = field(default_factory=list)
    daemons: list[Pypptpd] = field(default_factory=list)
    helpers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def exec_argv(self, argv: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.ns, *argv]

    def sh(self, *argv: str) -> str:
        return subprocess.run(self.exec_argv(list(argv)), capture_output=True, text=True, check=False).stdout

    def start_pypptpd(
        self, options: list[str] | None = None, conf: list[str] | None = None, secrets: str = SECRETS
    ) -> Pypptpd:
        workdir = self.workdir / f"pypptpd{len(self.daemons)}"
        daemon = Pypptpd(self.ns, workdir, options or SERVER_OPTIONS, conf or [], secrets)
        self.daemons.append(daemon)
        return daemon

    def start_iperf_server(self) -> None:
        log = (self.workdir / "iperf3-server.log").open("wb")
        self.helpers.append(
            subprocess.Popen(self.exec_argv(["iperf3", "-s", "-p", "5201"]), stdout=log, stderr=subprocess.STDOUT)
        )

    def start_vm(self, name: str, address: str, script: str, memory: int = 384) -> Vm:
        index = len(self.vms)
        tap = f"tap{index}"
        share = self.workdir / name
        share.mkdir(parents=True)
        (share / "run.sh").write_text(script)
        _ip("-n", self.ns, "tuntap", "add", "dev", tap, "mode", "tap")
        _ip("-n", self.ns, "link", "set", tap, "master", "br0")
        _ip("-n", self.ns, "link", "set", tap, "up")
        capture = self.workdir / f"{name}.pcapng"
        dumpcap = subprocess.Popen(
            self.exec_argv(["dumpcap", "-q", "-i", tap, "-w", str(capture)]),
            stdout=subprocess.DEVNULL,
            stderr=(self.workdir / f"{name}.dumpcap.log").open("wb"),
        )
        wait_until(lambda: capture.exists() and capture.stat().st_size > 0, 15, f"dumpcap on {tap}")
        console = self.workdir / f"{name}.console"
        argv = [
            "qemu-system-x86_64",
            "-M",
            "pc,accel=tcg",
            "-cpu",
            "max",
            "-smp",
            "1",
            "-m",
            str(memory),
            "-nodefaults",
            "-no-reboot",
            "-display",
            "none",
            "-kernel",
            str(self.image.kernel),
            "-initrd",
            str(self.image.initrd),
            "-append",
            f"console=ttyS0 quiet panic=-1 pptplab.addr={address}/24 pptplab.name={name}",
            "-netdev",
            f"tap,id=n0,ifname={tap},script=no,downscript=no",
            "-device",
            f"virtio-net-pci,netdev=n0,mac=52:54:00:18:00:{index + 16:02x}",
            "-virtfs",
            f"local,path={share},mount_tag=share,security_model=none,id=fs0",
            "-serial",
            f"file:{console}",
        ]
        qemu_log = (self.workdir / f"{name}.qemu.log").open("wb")
        process = subprocess.Popen(self.exec_argv(argv), stdout=qemu_log, stderr=subprocess.STDOUT)
        vm = Vm(name, address, share, tap, capture, process, dumpcap, console)
        self.vms.append(vm)
        return vm

    def server_links(self) -> str:
        """``ip -o link`` and ``ip -4 route`` of the lab namespace (pppN devices, tunnel routes)."""
        return self.sh("ip", "-o", "link") + self.sh("ip", "-4", "route")

    def close(self) -> None:
        for vm in self.vms:
            _stop(vm.process, timeout=5)
        for vm in self.vms:
            _stop(vm.dumpcap, signal.SIGINT, timeout=5)
        for helper in self.helpers:
            _stop(helper, timeout=5)
        for daemon in self.daemons:
            with contextlib.suppress(Exception):
                daemon.stop()

    def stop_captures(self) -> None:
        for vm in self.vms:
            _stop(vm.dumpcap, signal.SIGINT, timeout=5)


@pytest.fixture
def lab(lab_image: build_image.Image, tmp_path: Path) -> Iterator[Lab]:
    ns = f"ppi-{os.getpid()}-{next(_counter)}"
    _ip("netns", "add", ns)
    try:
        _ip("-n", ns, "link", "set", "lo", "up")
        _ip("-n", ns, "link", "add", "br0", "type", "bridge")
        _ip("-n", ns, "addr", "add", f"{BRIDGE_IP}/24", "dev", "br0")
        _ip("-n", ns, "link", "set", "br0", "up")
        subprocess.run(["ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.br0.disable_ipv6=1"], check=False)
        lab = Lab(lab_image, ns, tmp_path)
        try:
            yield lab
        finally:
            lab.close()
            print(f"\ninterop artifacts: {tmp_path}")
    finally:
        _ip("netns", "delete", ns, check=False)
