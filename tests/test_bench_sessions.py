"""The many-sessions benchmark, small: every figure it reports is there and positive, the daemon released
every session, and the table formats.  No performance assertion (the machines are shared and noisy)."""

from __future__ import annotations

import pytest

from benchmarks.bench_sessions import format_table, ipv4_udp, run


def test_ipv4_udp_packet_is_well_formed() -> None:
    packet = ipv4_udp("192.168.1.1", "192.168.0.1", bytes(1372))
    assert len(packet) == 1400
    assert int.from_bytes(packet[2:4], "big") == 1400
    total = sum(int.from_bytes(packet[i : i + 2], "big") for i in range(0, 20, 2))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    assert total == 0xFFFF  # the header checksum verifies
    assert int.from_bytes(packet[22:24], "big") == 9


@pytest.mark.netns
async def test_small_run_reports_every_figure(require_netns: None) -> None:
    result = await run(
        sessions_total=10, concurrency=(4,), pps_sessions=(4,), workers=(1,), seconds=0.5, repeats=1, churn=2
    )

    (setup,) = result["setup"]
    assert setup["up"] == 10 and setup["failed"] == 0
    assert setup["seconds"] > 0 and setup["per_second"] > 0

    memory = result["memory"]
    assert memory["sessions"] == 10 and memory["ppp_interfaces_up"] == 10
    assert memory["rss_before_kib"] > 0 and memory["rss_up_kib"] > 0

    churn = result["churn"]
    assert [(r["up"], r["failed"], r["ppp_left"]) for r in churn] == [(10, 0, 0)] * 2
    assert all(r["rss_up_kib"] > 0 and r["rss_after_kib"] > 0 for r in churn)

    # every session was released: no pppN left in the server namespace, every close clean
    assert result["release"] == {"unclean_closes": 0, "ppp_left": 0}
    assert result["pps_release"] == {"unclean_closes": 0, "ppp_left": 0}
    assert result["daemon_exit"] == 0

    (pps,) = result["pps"]
    assert pps["sessions"] == 4 and pps["workers"] == 1
    encap, decap = pps["encap"], pps["decap"]
    assert encap["pps"] > 0 and encap["mbit"] > 0 and encap["offered_pps"] > 0
    assert encap["client_received_pps"] > 0  # the GRE really reached the clients
    assert decap["pps"] > 0 and decap["mbit"] > 0
    assert decap["delivered"] > 0 and decap["delivered_fraction"] > 0.5  # the server could decrypt them

    lines = format_table(result)
    assert any("sessions/s" in line for line in lines)
    assert any("KiB per session" in line for line in lines)
    assert any("encap pps" in line for line in lines)
    assert any(line.startswith("Churn, 2 more rounds of 10 sessions") for line in lines)
    assert all(isinstance(line, str) for line in lines)
