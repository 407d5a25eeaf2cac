"""Every benchmark of the data path in one command: ``python -m benchmarks [--json FILE] [--quick]`` (root).

(a) hot path, µs per packet, encap and decap, stateless and stateful, each beside a floor loop that does
    only the unavoidable syscalls and crypto calls, measured in the same run (:mod:`benchmarks.bench_tunnel`);
(b) iperf3 TCP through one pypptpd tunnel with the project's client, beside a minimal Python tunnel loop
    in the same namespaces and run (:mod:`benchmarks.bench_iperf`);
(c) sessions established per second with N concurrent clients, and the daemon's RSS per session across
    200 sessions (:mod:`benchmarks.bench_sessions`);
(d) aggregate packets per second with 8 and 64 sessions, and with 8 sessions on one and on two worker
    processes (``pypptpd --workers``) (:mod:`benchmarks.bench_sessions`).

Everything runs in network namespaces the benchmarks create and delete; nothing touches the root
namespace's network.  Ratios, not absolute times, are the figures to compare across machines.
``--quick`` shortens every part (a smoke run, about a minute); ``--only a,b`` picks parts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import sys
import time
from typing import Any

from benchmarks import bench_iperf, bench_sessions, bench_tunnel
from pypptp.host.netns import netns_available

PARTS = ("a", "b", "c", "d")


def run(parts: tuple[str, ...] = PARTS, *, quick: bool = False) -> dict[str, Any]:
    """Run the chosen parts; returns their results by part (``c`` and ``d`` share one run)."""
    out: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "quick": quick,
    }
    if "a" in parts:
        out["a"] = asyncio.run(bench_tunnel.run(batch=200, rounds=3) if quick else bench_tunnel.run())
    if "b" in parts:
        out["b"] = bench_iperf.run(2.0, rounds=1) if quick else bench_iperf.run(5.0, rounds=3)  # the median of 3
    if "c" in parts or "d" in parts:
        if quick:
            sessions = bench_sessions.run(
                sessions_total=20, concurrency=(1, 8), pps_sessions=(8,), workers=(1, 2), seconds=0.5, repeats=1
            )
        else:
            sessions = bench_sessions.run(workers=(1, 2))
        out["cd"] = asyncio.run(sessions)
    return out


def format_table(result: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    if "a" in result:
        lines += [*bench_tunnel.format_table(result["a"]), ""]
    if "b" in result:
        lines += [*bench_iperf.format_table(result["b"]), ""]
    if "cd" in result:
        lines += bench_sessions.format_table(result["cd"])
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--json", metavar="FILE", help="also write every figure as JSON")
    parser.add_argument("--quick", action="store_true", help="a short smoke run of every part")
    parser.add_argument("--only", default=",".join(PARTS), help="parts to run, e.g. a,b (default: all)")
    args = parser.parse_args(argv)
    parts = tuple(part for part in args.only.split(",") if part)
    unknown = set(parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown part(s): {', '.join(sorted(unknown))}; choose from {', '.join(PARTS)}")
    reason = netns_available()
    if reason is not None:
        print(f"benchmarks: {reason}", file=sys.stderr)
        return 2
    started = time.monotonic()
    result = run(parts, quick=args.quick)
    result["seconds_total"] = round(time.monotonic() - started, 1)
    print("\n".join(format_table(result)))
    print(f"\n(all parts took {result['seconds_total']} s)")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
