"""Shared fixtures: throw-away namespaces and a real pypptpd in one of them."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from pypptp.client.demo import stop_process, wait_until_listening
from pypptp.client.tunnel import PptpClientSession
from pypptp.host.netns import NetnsPair, netns_available, two_hosts
from tests.freeradius import FreeRadius

REPO = Path(__file__).resolve().parents[1]
RUNTIME_DEPENDENCIES = ("arc4", "cryptography", "prometheus-client", "pyrad", "pyroute2", "python-pytun")

settings.register_profile(
    "ci",
    derandomize=True,  # the same examples on every run: a CI failure replays, a pass means the same thing each time
    database=None,  # nothing written into the checkout
    deadline=None,  # a busy CI machine is no reason to fail
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
"""Hypothesis in CI (``CI`` set): derandomized, so every run tries the same examples.  Elsewhere the
default profile draws new ones each run (and keeps failures in .hypothesis/); HYPOTHESIS_PROFILE picks
a profile by name."""
HYPOTHESIS_PROFILE = os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "default")
settings.load_profile(HYPOTHESIS_PROFILE)


def pytest_report_header() -> list[str]:
    """Which releases of the runtime dependencies this run tests (CI runs twice: see the README), and
    which Hypothesis profile."""
    versions = ", ".join(f"{name} {importlib.metadata.version(name)}" for name in RUNTIME_DEPENDENCIES)
    return [f"runtime dependencies: {versions}", f"hypothesis profile: {HYPOTHESIS_PROFILE}"]


def need_netns() -> None:
    """Skip on a developer machine without root or iproute2; in CI (CI set)
    fail instead, so CI can never skip a namespace test silently (module fixtures call it directly)."""
    reason = netns_available()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"network namespace tests cannot run in CI: {reason}")
        pytest.skip(f"network namespaces: {reason}")


@pytest.fixture
def require_netns() -> None:
    """:func:`need_netns` for one test."""
    need_netns()


def require_tools(*names: str) -> None:
    """Skip on a developer machine without one of the programs ``names``; in CI (CI set) fail instead: the
    README's test command installs every one, so a missing one there is a broken command, not a skip."""
    missing = [name for name in names if shutil.which(name) is None]
    if missing:
        message = f"{', '.join(missing)} not installed (the README's test command installs them)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture
def require_freeradius(require_netns: None) -> None:
    """The RADIUS tests' server (Debian's ``freeradius``) and client tools (``radclient``, ``radtest`` from
    ``freeradius-utils``): see :func:`require_tools`."""
    require_tools("freeradius", "radclient", "radtest")


@pytest.fixture
def start_freeradius(require_freeradius: None, tmp_path: Path) -> Iterator[Callable[..., FreeRadius]]:
    """Factory: ``start_freeradius(netns, address, users=..., clients=..., **options)`` -> a running
    :class:`tests.freeradius.FreeRadius` (its files in ``tmp_path/freeradiusN``), stopped afterwards; the
    tail of each server's log is printed at teardown, which pytest shows when the test failed."""
    started: list[FreeRadius] = []

    def start(netns: str, address: str, **options: Any) -> FreeRadius:
        workdir = tmp_path / f"freeradius{len(started)}"
        workdir.mkdir()
        server = FreeRadius(netns, address, workdir, **options)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()
        print(f"--- FreeRADIUS in {server.netns} ({server.workdir}), log tail:\n{server.log()[-4000:]}")


@pytest.fixture
def netns_pair(require_netns: None, request: pytest.FixtureRequest) -> Iterator[NetnsPair]:
    """A server and a client namespace joined by veth, deleted afterwards."""
    with two_hosts(request.node.name[:8].strip("_[]").replace("_", "")) as pair:
        yield pair


def private_var_log(argv: list[str], logdir: Path) -> list[str]:
    """``argv`` run in a mount namespace of its own where ``/var/log`` is ``logdir`` (and ``/dev/log``, if
    the machine has one, leads nowhere): a detached pypptpd finds no syslog there and writes its
    fall-back log (``/var/log/pypptpd.log``) into the test's directory, never into the machine's."""
    dead_end = logdir / "dev-log"
    dead_end.touch()
    script = (
        'mount --bind "$1" /var/log && { [ ! -e /dev/log ] || mount --bind "$2" /dev/log; } && shift 2 && exec "$@"'
    )
    return ["unshare", "-m", "sh", "-c", script, "sh", str(logdir), str(dead_end), *argv]


DEFAULT_SECRETS = "alice pptpd s3cret *\n"
DEFAULT_OPTIONS = "name pptpd\nrequire-mschap-v2\nrequire-mppe-128\n"


class Pypptpd:
    """A real ``pypptpd -f`` process running in the server namespace.

    Its files live in ``workdir``: pptpd.conf, chap-secrets, the pppd options file (named by an
    ``option`` line unless the test gives its own), an empty stand-in for /etc/ppp/options, and
    ip-up/ip-down paths (absent unless the test writes them)."""

    def __init__(
        self,
        pair: NetnsPair,
        workdir: Path,
        conf_lines: list[str],
        args: list[str],
        *,
        secrets: str = DEFAULT_SECRETS,
        options: str = DEFAULT_OPTIONS,
        entry: Sequence[str] = ("-m", "pypptp.daemon.cli"),
    ) -> None:
        """``entry``: what ``python`` runs with the daemon's arguments (a wrapper of the entry point may watch it)."""
        self.pair = pair
        self.workdir = workdir
        self.conf = workdir / "pptpd.conf"
        self.secrets = workdir / "chap-secrets"
        self.secrets.write_text(secrets)
        self.secrets.chmod(0o600)
        self.options = workdir / "pptpd-options"
        self.options.write_text(options)
        (workdir / "options.system").write_text("")
        self.ip_up, self.ip_down = workdir / "ip-up", workdir / "ip-down"
        if not any(line.startswith("option ") for line in conf_lines):
            conf_lines = [*conf_lines, f"option {self.options}"]
        self.conf.write_text("".join(line + "\n" for line in conf_lines))
        self.log_path = workdir / "pypptpd.log"
        self.pidfile = workdir / "pptpd.pid"
        files = ["--secrets", str(self.secrets), "--system-options", str(workdir / "options.system")]
        files += ["--ip-up", str(self.ip_up), "--ip-down", str(self.ip_down)]
        self.control_socket = workdir / "pypptpd.sock"
        if not any(arg.startswith("--control-socket") for arg in args):  # never the machine's /run/pypptpd.sock
            files += ["--control-socket", str(self.control_socket)]
        argv = [
            sys.executable,
            *entry,
            "-f",
            "-c",
            str(self.conf),
            "-p",
            str(self.pidfile),
            *files,
            *args,
        ]
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            pair.exec_argv(pair.server_ns, argv), stdout=self._log, stderr=subprocess.STDOUT, env=env, cwd=REPO
        )

    @property
    def address(self) -> tuple[str, int]:
        return (self.pair.server_ip, 1723)

    def wait_listening(self, timeout: float = 10.0) -> None:
        wait_until_listening(self.process, self.log_path, timeout)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_log(self, text: str, timeout: float = 5.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            log = self.log()
            if text in log:
                return log
            time.sleep(0.05)
        raise AssertionError(f"{text!r} not logged within {timeout} s:\n{self.log()}")

    def terminate(self, timeout: float = 10.0) -> int:
        status = stop_process(self.process, timeout)
        self._log.close()
        return status

    def client_socket(self, timeout: float = 5.0) -> socket.socket:
        """A TCP connection from the client namespace to the daemon (non-blocking)."""
        return self.pair.connect(self.pair.client_ns, self.address, timeout)


@pytest.fixture
def start_pypptpd(netns_pair: NetnsPair, tmp_path: Path) -> Iterator[Callable[..., Pypptpd]]:
    """Factory: ``start_pypptpd(conf_lines, args)`` -> a listening :class:`Pypptpd`."""
    started: list[Pypptpd] = []

    def start(
        conf_lines: list[str] | None = None,
        args: list[str] | None = None,
        *,
        secrets: str = DEFAULT_SECRETS,
        options: str = DEFAULT_OPTIONS,
        entry: Sequence[str] = ("-m", "pypptp.daemon.cli"),
    ) -> Pypptpd:
        lines = conf_lines if conf_lines is not None else []
        lines = [f"listen {netns_pair.server_ip}", *lines]
        workdir = tmp_path / f"daemon{len(started)}"
        workdir.mkdir()
        daemon = Pypptpd(netns_pair, workdir, lines, args or [], secrets=secrets, options=options, entry=entry)
        started.append(daemon)
        daemon.wait_listening()
        return daemon

    yield start
    for daemon in started:
        with contextlib.suppress(Exception):
            daemon.terminate()


def icmp_echo(source: str, destination: str) -> bytes:
    """A minimal IPv4 ICMP Echo-Request with correct checksums."""

    def checksum(data: bytes) -> int:
        total = sum(int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2))
        while total >> 16:
            total = (total & 0xFFFF) + (total >> 16)
        return ~total & 0xFFFF

    icmp = bytearray(b"\x08\x00\x00\x00\x12\x34\x00\x01")
    icmp[2:4] = checksum(bytes(icmp)).to_bytes(2, "big")
    header = bytearray(b"\x45\x00\x00\x1c\x00\x01\x00\x00\x40\x01\x00\x00")
    header += socket.inet_aton(source) + socket.inet_aton(destination)
    header[10:12] = checksum(bytes(header)).to_bytes(2, "big")
    return bytes(header + icmp)


async def tunnel_ping(session: PptpClientSession, destination: str, attempts: int = 10, wait: float = 0.5) -> bool:
    """An ICMP echo through a library-mode client session, retried (the server's end of a new tunnel may
    come up a moment after the client's); True once a reply came."""
    up = session.network
    assert up is not None
    for _ in range(attempts):
        session.send(icmp_echo(str(up.local_address), destination))
        try:
            async with asyncio.timeout(wait):
                while True:
                    reply = await session.recv()
                    if reply[9] == 1 and reply[20] == 0:  # ICMP Echo-Reply
                        return True
        except TimeoutError:
            continue
    return False
