"""``python -m pypptp.fuzz``: fuzz a real pypptpd in throw-away namespaces (root, iproute2).

::

    python -m pypptp.fuzz [--seed N] [--minutes M | --batches B] [--json FILE]
    python -m pypptp.fuzz --seed N --batch K         # replay batch K of seed N
    python -m pypptp.fuzz --replay FILE              # replay a batch saved by a failing run

Exit status: 0 when every check of every batch passed, 1 when one failed (the report names the seed,
the batch and every input in hex, and the batch is saved for ``--replay``), 2 when it cannot run here.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from pypptp.fuzz.inputs import Batch, batch_at, batches
from pypptp.fuzz.runner import LOG_TALLIES, BatchResult, Runner
from pypptp.host.netns import NetnsPair, netns_available, two_hosts

__all__ = ["main", "run"]


def _plan(seed: int, count: int | None, deadline: float | None) -> Iterator[Batch]:
    """The seed's batches until ``count`` of them or the ``deadline`` (monotonic), whichever is first."""
    for batch in batches(seed):
        if (count is not None and batch.index >= count) or (deadline is not None and time.monotonic() >= deadline):
            return
        yield batch


async def run(
    pair: NetnsPair, workdir: Path, plan: Iterator[Batch], *, say: Callable[[str], object] = print
) -> tuple[list[BatchResult], dict[str, object]]:
    """Set up, play every batch of ``plan`` (stopping at the first that fails its checks), tear down.
    Returns the results and what the baseline was."""
    results: list[BatchResult] = []
    async with Runner(pair, workdir) as runner:
        baseline = {"fds": runner.baseline_fds, "devices": runner.baseline_devices}
        say(f"pypptpd in {pair.server_ns}: baseline {runner.baseline_fds} descriptors, {runner.baseline_devices}")
        for batch in plan:
            result = await runner.run_batch(batch)
            results.append(result)
            verdict = "ok" if result.ok else "FAILED"
            say(
                f"batch {batch.index}: {len(batch.steps)} inputs, {result.seconds:.1f} s, "
                f"pings {result.pings - result.pings_lost}/{result.pings}, {verdict}"
            )
            if not result.ok:
                break
    return results, baseline


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pypptp.fuzz",
        description="Fuzz a real pypptpd in its own network namespaces: mutated control sequences, PPP frames "
        "from unauthenticated and authenticated calls and raw GRE, with checks after every batch.",
    )
    parser.add_argument("--seed", type=int, help="the seed (default: a random one, printed)")
    how_long = parser.add_mutually_exclusive_group()
    how_long.add_argument("--minutes", type=float, help="run batches for this long (default 1)")
    how_long.add_argument("--batches", type=int, help="run this many batches")
    how_long.add_argument("--batch", type=int, metavar="K", help="run batch K of the seed only (a replay)")
    how_long.add_argument("--replay", metavar="FILE", help="run the batch saved in FILE by a failing run")
    parser.add_argument("--json", metavar="FILE", help="write a summary as JSON")
    parser.add_argument(
        "--failures", metavar="DIR", default=".", help="where a failing batch is saved for --replay (default: .)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    reason = netns_available()
    if reason is not None:
        print(f"python -m pypptp.fuzz {reason}: it creates network namespaces (run it as root).", file=sys.stderr)
        return 2
    seed = args.seed if args.seed is not None else secrets.randbelow(1 << 32)
    plan: Iterator[Batch]
    if args.replay:
        saved = json.loads(Path(args.replay).read_text())
        batch = Batch.from_json(saved.get("batch", saved))
        seed, plan = batch.seed, iter([batch])
    elif args.batch is not None:
        plan = iter([batch_at(seed, args.batch)])
    elif args.batches is not None:
        plan = _plan(seed, args.batches, None)
    else:
        plan = _plan(seed, None, time.monotonic() + 60 * (args.minutes if args.minutes is not None else 1.0))
    print(f"pypptp.fuzz: seed {seed}", flush=True)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="pypptp-fuzz-") as tmp, two_hosts("fuzz") as pair:
        os.chmod(tmp, 0o755)
        results, baseline = asyncio.run(run(pair, Path(tmp), plan, say=lambda line: print(line, flush=True)))
    seconds = time.monotonic() - started
    failed = next((r for r in results if not r.ok), None)
    saved_to = None
    if failed is not None:
        saved_to = str(Path(args.failures) / f"pypptp-fuzz-{seed}-{failed.batch.index}.json")
        Path(saved_to).write_text(json.dumps(failed.to_json(), indent=1))
        print(failed.report(saved_to), flush=True)
    steps = sum(len(r.batch.steps) for r in results)
    tally = {name: sum(r.tally[name] for r in results) for name in LOG_TALLIES}
    print("the daemon logged: " + ", ".join(f"{count} {name}" for name, count in tally.items()))
    print(f"{len(results)} batches, {steps} inputs in {seconds:.0f} s: {'FAILED' if failed else 'no failure'}")
    if args.json:
        summary = {
            "seed": seed,
            "seconds": round(seconds, 1),
            "baseline": baseline,
            "batches": [
                {k: v for k, v in r.to_json().items() if k not in ("batch", "sent")}
                | {"index": r.batch.index, "inputs": len(r.batch.steps), "digest": r.batch.digest()}
                for r in results
            ],
            "inputs": steps,
            "pings": sum(r.pings for r in results),
            "pings_lost": sum(r.pings_lost for r in results),
            "tally": tally,
            "failed": failed.to_json() if failed is not None else None,
            "saved": saved_to,
        }
        Path(args.json).write_text(json.dumps(summary, indent=1))
    return 1 if failed is not None else 0


if __name__ == "__main__":
    sys.exit(main())
