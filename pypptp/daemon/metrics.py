"""``--metrics HOST:PORT``: Prometheus text at ``/metrics``, with prometheus-client.

prometheus-client serves HTTP from a thread of its own (``start_http_server``), so a slow or hostile
scraper never holds the event loop.  That thread must not read the daemon's state while the loop
changes it: at each scrape the :class:`Collector` asks ``fetch`` for snapshots, which takes them on the
loop (:func:`on_loop`: ``run_coroutine_threadsafe``, bounded by :data:`SCRAPE_TIMEOUT`) or, with
``--workers``, asks each worker over its control socket.  Nothing is counted per packet for it: the
figures are the counters the daemon keeps anyway (:mod:`pypptp.daemon.stats`), read at scrape time.

Names follow Prometheus' conventions; with ``--workers`` every series has a ``worker`` label.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

from prometheus_client import start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector as _Collector
from prometheus_client.registry import CollectorRegistry

__all__ = ["SCRAPE_TIMEOUT", "Collector", "MetricsServer", "on_loop", "parse_address"]

log = logging.getLogger("pypptpd")

SCRAPE_TIMEOUT = 5.0

_Family = TypeVar("_Family", GaugeMetricFamily, CounterMetricFamily)

Snapshots = list[tuple[str | None, dict[str, Any]]]
"""(worker label or None, its :func:`~pypptp.daemon.stats.snapshot`)."""


def parse_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` too); ValueError if it is not one."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"HOST:PORT is needed, not {text!r}")
    return host.strip("[]") or "0.0.0.0", int(port)


def on_loop(
    loop: asyncio.AbstractEventLoop, take: Callable[[], Coroutine[Any, Any, dict[str, Any]]]
) -> Callable[[], Snapshots]:
    """A fetch for one process: its snapshot taken on ``loop`` and handed to the scraping thread."""

    def fetch() -> Snapshots:
        return [(None, asyncio.run_coroutine_threadsafe(take(), loop).result(SCRAPE_TIMEOUT))]

    return fetch


class Collector(_Collector):
    """The daemon's metrics, read at each scrape from ``fetch()``."""

    def __init__(self, fetch: Callable[[], Snapshots]) -> None:
        self.fetch = fetch

    def collect(self) -> Iterator[Any]:
        try:
            snapshots = self.fetch()
        except Exception as exc:
            log.warning("MGR: metrics: no figures for this scrape: %s", exc or type(exc).__name__)
            return
        labels = ["worker"] if any(worker is not None for worker, _ in snapshots) else []

        def each(family: _Family, key: str) -> _Family:
            for worker, snap in snapshots:
                family.add_metric(_values(worker), snap["stat"][key])
            return family

        def gauge(name: str, text: str, key: str) -> GaugeMetricFamily:
            return each(GaugeMetricFamily(name, text, labels=labels), key)

        def counter(name: str, text: str, key: str) -> CounterMetricFamily:
            return each(CounterMetricFamily(name, text, labels=labels), key)

        def by(name: str, text: str, label: str, key: str, split: bool = False) -> CounterMetricFamily:
            family = CounterMetricFamily(name, text, labels=[*labels, label, *(["method"] if split else [])])
            for worker, snap in snapshots:
                for what, value in sorted(snap["stat"][key].items()):
                    family.add_metric([*_values(worker), *(what.split("/", 1) if split else [what])], value)
            return family

        yield gauge("pypptp_sessions", "Sessions authenticated and holding addresses.", "sessions")
        yield gauge("pypptp_calls", "PPTP calls, authenticated or still negotiating.", "calls")
        yield gauge("pypptp_connections", "PPTP control connections.", "connections")
        yield gauge("pypptp_pending_connections", "Control connections not yet authenticated.", "pending")
        yield counter("pypptp_sessions_started", "Sessions that authenticated and got addresses.", "sessions_started")
        yield by("pypptp_sessions_ended", "Sessions ended, by normalised end reason.", "reason", "sessions_ended")
        yield by("pypptp_auth_failures", "Failed authentication attempts.", "reason", "auth_failures", split=True)
        yield counter("pypptp_connections_refused", "Connections dropped at accept (address blocked).", "refused")
        yield counter("pypptp_connections_evicted", "Pending connections dropped to make room.", "evicted")
        yield counter("pypptp_connections_timed_out", "Pending connections dropped at their timeout.", "timed_out")
        yield counter("pypptp_tunnel_receive_bytes", "IP bytes received through the tunnels.", "rx_bytes")
        yield counter("pypptp_tunnel_transmit_bytes", "IP bytes sent through the tunnels.", "tx_bytes")
        yield counter("pypptp_tunnel_receive_packets", "IP packets received through the tunnels.", "rx_packets")
        yield counter("pypptp_tunnel_transmit_packets", "IP packets sent through the tunnels.", "tx_packets")
        yield by(
            "pypptp_gre_anomalies",
            "GRE anomalies by kind.",
            "kind",
            "gre",
        )
        yield counter("pypptp_cpu_seconds", "CPU time of the daemon's process(es).", "cpu_seconds")


def _values(worker: str | None) -> list[str]:
    return [] if worker is None else [worker]


class MetricsServer:
    """prometheus-client's HTTP server on ``address``, with a registry of its own (only our metrics)."""

    def __init__(self, address: tuple[str, int], fetch: Callable[[], Snapshots]) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(Collector(fetch))
        self.address = address
        self._server: Any = None

    def start(self) -> None:
        """Listen (OSError if the address cannot be bound)."""
        started = start_http_server(self.address[1], self.address[0], registry=self.registry)
        self._server = started[0] if isinstance(started, tuple) else None

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
