"""Control-channel micro-benchmarks: codec and sans-IO connection costs.

``python -m benchmarks.bench_ctrl [--json FILE]`` prints microseconds per
operation.  Every loop is bounded by a fixed count.  The control channel is
not a hot path (a handful of messages per session); these figures exist to
catch regressions and to size the session-setup rate.
"""

from __future__ import annotations

import argparse
import functools
import json
import time
from collections.abc import Callable

from pypptp.ctrl.connection import ControlConnection, Role
from pypptp.ctrl.messages import (
    MESSAGE_CLASSES,
    CallClearRequest,
    EchoRequest,
    OutgoingCallRequest,
    StartControlConnectionRequest,
    StopControlConnectionRequest,
    decode_message,
)

ROUNDS = 20_000


def _per_op(fn: Callable[[], object], rounds: int = ROUNDS) -> float:
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(rounds):
            fn()
        best = min(best, time.perf_counter() - start)
    return best / rounds * 1e6


def _session() -> None:
    conn = ControlConnection(Role.SERVER, 0.0)
    conn.receive(SESSION_BYTES, 0.0)


SESSION_BYTES = b"".join(
    m.encode()
    for m in (
        StartControlConnectionRequest(),
        OutgoingCallRequest(call_id=1),
        EchoRequest(identifier=1),
        CallClearRequest(call_id=1),
        StopControlConnectionRequest(),
    )
)


def run() -> dict[str, float]:
    results: dict[str, float] = {}
    for cls in MESSAGE_CLASSES.values():
        field_values = {"call_id": 1, "peer_call_id": 1, "identifier": 1, "result_code": 1}
        kwargs = {k: v for k, v in field_values.items() if k in cls.__dataclass_fields__}
        message = cls(**kwargs)
        wire = message.encode()
        results[f"encode {cls.__name__}"] = _per_op(message.encode)
        results[f"decode {cls.__name__}"] = _per_op(functools.partial(decode_message, wire))
    results["server session: SCCRQ+OCRQ+Echo+CCRQ+StopCCRQ"] = _per_op(_session, ROUNDS // 10)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    results = run()
    width = max(map(len, results))
    for name, micros in results.items():
        print(f"{name:<{width}}  {micros:8.2f} us")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"unit": "microseconds per operation", "results": results}, f, indent=2)


if __name__ == "__main__":
    main()
