"""The iperf3 benchmark (``benchmarks.bench_iperf``) runs end to end: real pypptpd and client, the minimal
tunnel beside them, both MPPE modes.

Upload only and 1 s per iperf3 run, to stay short; no absolute throughput is asserted (the machine is
shared and noisy), only that every figure is there and positive and that the table formats.
"""

from __future__ import annotations

import pytest

from benchmarks.bench_iperf import MODES, format_table, run
from tests.conftest import require_tools

pytestmark = pytest.mark.netns


def test_bench_iperf_measures_both_tunnels(require_netns: None) -> None:
    require_tools("iperf3")
    result = run(1.0, directions=("up",))
    for mode in MODES:
        entry = result[mode]
        assert f"MPPE 128-bit {mode}" in entry["project"]["tunnel"]
        for kind in ("project", "minimal"):
            assert entry[kind]["mbps"]["up"] > 0, (mode, kind, entry[kind])
        assert entry["ratio"]["up"] > 0 and entry["paired"]["up"] > 0
        assert entry["project"]["client_stats"]["session"]["packets_sent"] > 0
        assert entry["project"]["daemon_bytes"]["received"] > 0
        assert entry["minimal"]["client_stats"]["gre_out"] > 0
        assert entry["minimal"]["server_stats"]["tun_out"] > 0
    lines = format_table(result)
    assert any(line.startswith("stateless  up") for line in lines)
    assert any(line.startswith("stateful   up") for line in lines)
