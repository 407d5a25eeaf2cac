"""Regression guard for the hot path: its cost per packet as a ratio to a floor loop in the same run.

Never an absolute time (these machines are noisy): ``benchmarks.bench_tunnel`` measures the
project's encap and decap beside loops doing only the unavoidable syscalls and RC4/SHA-1 work, and
this test fails when the project is more than :data:`MAX_RATIO` times its floor, which a real
slowdown (a log call, a copy of every packet, generic dispatch) would cause.  Today's figures are
about 1.15-1.2 stateless and 1.2-1.3 stateful; the bound leaves room for a noisy shared CI machine.
A row over the bound is measured once more, with more rounds, and must pass then: a busy neighbour
(two of three rounds disturbed gave 2.3 on a loaded two-core machine) rarely strikes twice, a real
slowdown always does.
"""

from __future__ import annotations

import pytest

from benchmarks.bench_tunnel import run

pytestmark = pytest.mark.netns

MAX_RATIO = 2.0


def _over(result: dict[str, object]) -> dict[str, object]:
    """The rows at or over :data:`MAX_RATIO`, by name."""
    over: dict[str, object] = {}
    for mode in ("stateless", "stateful"):
        table = result[mode]
        assert isinstance(table, dict)
        for direction in ("encap", "decap"):
            row = table[direction]
            if row["ratio"] >= MAX_RATIO:
                over[f"{mode} {direction}"] = row
    return over


async def test_hot_path_stays_near_its_floor(require_netns: None) -> None:
    first = _over(await run(batch=200, rounds=3))
    if first:
        again = _over(await run(batch=200, rounds=7))
        assert not again, f"over {MAX_RATIO} twice: first {first}, again {again}"
