"""Read a session trace back and print it as pppd's debug lines, to read or to diff two sessions.

PPP control packets print exactly as pppd's ``debug`` shows them (``sent [LCP
ConfReq id=0x1 <mru 1400> <magic 0x1a2b3c4d>]``, from the stored bytes through
:func:`~pypptp.ppp.printpkt.format_packet`; the secret values stored zeroed
print as zeros), control messages as ``rcvd [PPTP OutgoingCallRequest
call_id=1 ...]``, the rest as one line per event (``LCP: REQ_SENT -> ACK_RCVD
(RCA)``, ``phase NETWORK``, ``auth result method=MS-CHAPv2 ...``).  Each line
starts with the seconds since the session's start, unless ``--no-times``:
then two sessions' outputs diff line by line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterable, Iterator
from typing import Any, TextIO

from pypptp.ppp.printpkt import format_packet

__all__ = ["format_event", "format_trace", "main", "read_trace"]

MAX_LINE = 1 << 20
"""Longer lines are not events the tracer writes: skipped, not parsed."""


def read_trace(lines: Iterable[str]) -> Iterator[dict[str, Any]]:
    """The events of a trace, in order; lines that are not events are skipped (a truncated last line)."""
    for line in lines:
        if len(line) > MAX_LINE or not line.strip():
            continue
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict) and isinstance(event.get("data", {}), dict):
            yield event


def format_event(event: dict[str, Any]) -> str:
    """One event as its line (without the time)."""
    category, name = str(event.get("category", "?")), str(event.get("event", "?"))
    data: dict[str, Any] = event.get("data") or {}
    if category == "ppp" and "hex" in data:
        try:
            raw = bytes.fromhex(str(data["hex"]))
            return f"{name} {format_packet(int(data['proto']), raw)}"
        except (ValueError, TypeError, KeyError):
            pass
    if category == "ctrl" and name in ("sent", "rcvd"):
        fields = " ".join(f"{k}={_value(v)}" for k, v in data.items() if k != "type")
        return f"{name} [PPTP {data.get('type', '?')}{' ' if fields else ''}{fields}]"
    if category == "fsm" and name == "state":
        return f"{data.get('protocol')}: {data.get('old')} -> {data.get('new')} ({data.get('event')})"
    if category == "phase":
        return f"phase {data.get('new')}"
    if category == "trace" and name == "header":
        return "# " + " ".join(f"{k}={_value(v)}" for k, v in data.items())
    fields = " ".join(f"{k}={_value(v)}" for k, v in data.items())
    return f"{category} {name}{' ' if fields else ''}{fields}"


def _value(value: Any) -> str:
    return value if isinstance(value, str) and value and " " not in value else json.dumps(value)


def format_trace(
    events: Iterable[dict[str, Any]], *, times: bool = True, only: set[str] | None = None
) -> Iterator[str]:
    """The lines of a trace; ``only`` keeps those categories (``ppp``, ``ctrl``...)."""
    for event in events:
        if only and event.get("category") not in only:
            continue
        line = format_event(event)
        if times:
            time = event.get("time")
            line = f"{time:10.6f} {line}" if isinstance(time, int | float) else f"{'':10} {line}"
        yield line


def main(argv: list[str] | None = None, out: TextIO | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pypptp.trace", description=__doc__.split("\n\n")[0])
    parser.add_argument("file", metavar="FILE", help="a trace (JSON lines; - for standard input)")
    parser.add_argument("--no-times", action="store_true", help="leave the times out (to diff two sessions)")
    parser.add_argument(
        "--only",
        metavar="CATEGORY",
        action="append",
        help="print only this category (ppp, ctrl, fsm, phase, auth, mppe, gre, link, trace); repeatable",
    )
    args = parser.parse_args(argv)
    out = out or sys.stdout
    try:
        source = sys.stdin if args.file == "-" else open(args.file, encoding="utf-8", errors="replace")  # noqa: SIM115
    except OSError as exc:
        print(f"python -m pypptp.trace: {exc}", file=sys.stderr)
        return 1
    try:
        with source:
            for line in format_trace(read_trace(source), times=not args.no_times, only=set(args.only or ())):
                out.write(line + "\n")
            out.flush()
    except BrokenPipeError:  # `| head` has what it wanted: stop quietly, as cat does (SIGPIPE's status)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    return 0
