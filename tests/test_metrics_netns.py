"""``--metrics HOST:PORT``: the daemon's Prometheus endpoint, scraped over HTTP, by a real Prometheus too.

The daemon runs in the server namespace; the test scrapes it from the client namespace, and a real
``prometheus`` server (Debian's package) runs in the server namespace, scraping every second, and is
asked through its HTTP API.  ``promtool check metrics`` checks the text.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from pypptp.aio.client import PptpClientError
from pypptp.host.netns import NetnsPair
from tests.conftest import Pypptpd, require_tools, tunnel_ping
from tests.test_daemon_netns import SECRETS, SEED_CONF, SEED_OPTIONS, SERVER_IP, open_client

pytestmark = pytest.mark.netns

PORT = 9477
PROMETHEUS_PORT = 9478


def http_get(pair: NetnsPair, ns: str, address: tuple[str, int], target: str) -> str:
    """The body of ``GET target`` from a socket made in namespace ``ns``."""
    sock = pair.connect(ns, address)
    with sock:
        sock.setblocking(True)
        sock.settimeout(10)
        sock.sendall(f"GET {target} HTTP/1.0\r\nHost: {address[0]}\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.split(b" ")[1] == b"200", head
    return body.decode()


def scrape(daemon: Pypptpd) -> str:
    return http_get(daemon.pair, daemon.pair.client_ns, (daemon.pair.server_ip, PORT), "/metrics")


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return out


def value(text: str, name: str, **labels: str) -> float:
    return samples(text).get((name, tuple(sorted(labels.items()))), 0.0)


def wait_value(daemon: Pypptpd, name: str, expected: float, timeout: float = 5.0, **labels: str) -> str:
    deadline = time.monotonic() + timeout
    while True:
        text = scrape(daemon)
        if value(text, name, **labels) == expected or time.monotonic() > deadline:
            assert value(text, name, **labels) == expected, text
            return text
        time.sleep(0.1)


async def test_scraped_values_move_with_sessions(start_pypptpd: Callable[..., Pypptpd]) -> None:
    require_tools("promtool")
    daemon = start_pypptpd(SEED_CONF, ["--metrics", f"198.18.0.1:{PORT}"], secrets=SECRETS, options=SEED_OPTIONS)
    text = scrape(daemon)
    assert value(text, "pypptp_sessions") == 0
    assert value(text, "pypptp_sessions_started_total") == 0
    assert ("pypptp_sessions_ended_total", (("reason", "admin"),)) in samples(text)

    session = await open_client(daemon, tun=False)
    assert await tunnel_ping(session, SERVER_IP)
    text = scrape(daemon)
    assert value(text, "pypptp_sessions") == 1 and value(text, "pypptp_calls") == 1
    assert value(text, "pypptp_sessions_started_total") == 1
    assert value(text, "pypptp_tunnel_receive_packets_total") >= 1
    assert value(text, "pypptp_tunnel_receive_bytes_total") >= 28
    assert value(text, "pypptp_tunnel_transmit_packets_total") >= 1
    received = value(text, "pypptp_tunnel_receive_bytes_total")

    await session.close()
    text = wait_value(daemon, "pypptp_sessions", 0)
    assert value(text, "pypptp_sessions_ended_total", reason="peer_terminate") == 1
    assert value(text, "pypptp_tunnel_receive_bytes_total") >= received  # a counter never goes back

    with pytest.raises(PptpClientError):
        await open_client(daemon, "alice", "wrong", tun=False)
    text = wait_value(daemon, "pypptp_auth_failures_total", 1, reason="bad_secret", method="MS-CHAP-V2")
    assert value(text, "pypptp_pending_connections") == 0
    for name in ("pypptp_connections_refused_total", "pypptp_connections_evicted_total"):
        assert (name, ()) in samples(text)
    for kind in ("lost", "reordered", "duplicate", "unknown_call"):
        assert ("pypptp_gre_anomalies_total", (("kind", kind),)) in samples(text)

    checked = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr


@contextlib.contextmanager
def prometheus(pair: NetnsPair, workdir: Path, target: str) -> Iterator[Callable[[str], list[dict[str, object]]]]:
    """A real Prometheus server in the server namespace scraping ``target`` every second; yields a query."""
    config = workdir / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        f"scrape_configs:\n  - job_name: pypptpd\n    static_configs:\n      - targets: ['{target}']\n"
    )
    log = (workdir / "prometheus.log").open("wb")
    argv = [
        "prometheus",
        f"--config.file={config}",
        f"--storage.tsdb.path={workdir / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{PROMETHEUS_PORT}",
    ]
    process = subprocess.Popen(pair.exec_argv(pair.server_ns, argv), stdout=log, stderr=subprocess.STDOUT)

    def query(expression: str) -> list[dict[str, object]]:
        target = "/api/v1/query?query=" + urllib.parse.quote(expression)
        answer = json.loads(http_get(pair, pair.server_ns, ("127.0.0.1", PROMETHEUS_PORT), target))
        assert answer["status"] == "success", answer
        result = answer["data"]["result"]
        assert isinstance(result, list)
        return result

    try:
        yield query
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        log.close()


def wait_query(query: Callable[[str], list[dict[str, object]]], expression: str, expected: str) -> None:
    deadline = time.monotonic() + 30
    last: object = None
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, AssertionError):
            last = query(expression)
            if last and last[0]["value"][1] == expected:  # type: ignore[index]
                return
        time.sleep(0.5)
    raise AssertionError(f"{expression}: {last!r}, not {expected}")


async def test_a_real_prometheus_sees_the_session_come_and_go(
    start_pypptpd: Callable[..., Pypptpd], tmp_path: Path
) -> None:
    require_tools("prometheus")
    daemon = start_pypptpd(SEED_CONF, ["--metrics", f"198.18.0.1:{PORT}"], secrets=SECRETS, options=SEED_OPTIONS)
    loop = asyncio.get_running_loop()
    with prometheus(daemon.pair, tmp_path, f"198.18.0.1:{PORT}") as query:

        async def until(expression: str, expected: str) -> None:  # off the loop: the client session runs on
            await loop.run_in_executor(None, wait_query, query, expression, expected)

        await until("pypptp_sessions", "0")
        session = await open_client(daemon, tun=False)
        await until("pypptp_sessions", "1")
        await until("pypptp_sessions_started_total", "1")
        await session.close()
        await until("pypptp_sessions", "0")
        await until('pypptp_sessions_ended_total{reason="peer_terminate"}', "1")


async def test_with_workers_each_series_has_its_worker(start_pypptpd: Callable[..., Pypptpd]) -> None:
    require_tools("promtool")
    daemon = start_pypptpd(
        ["localip 192.168.0.1", "remoteip 192.168.1.10-40", "connections 30"],  # room in both halves
        ["--workers", "2", "--metrics", f"198.18.0.1:{PORT}"],
        secrets=SECRETS,
        options=SEED_OPTIONS,
    )
    sessions = [await open_client(daemon, tun=False) for _ in range(3)]
    text = scrape(daemon)
    per_worker = [value(text, "pypptp_sessions", worker=str(i)) for i in (0, 1)]
    assert sum(per_worker) == 3
    assert ("pypptp_sessions", (("worker", "0"),)) in samples(text)
    assert ("pypptp_sessions", (("worker", "1"),)) in samples(text)
    for session in sessions:
        await session.close()
    text = scrape(daemon)
    deadline = time.monotonic() + 5
    while sum(value(text, "pypptp_sessions", worker=str(i)) for i in (0, 1)) and time.monotonic() < deadline:
        time.sleep(0.1)
        text = scrape(daemon)
    assert sum(value(text, "pypptp_sessions_ended_total", worker=str(i), reason="peer_terminate") for i in (0, 1)) == 3
    checked = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
