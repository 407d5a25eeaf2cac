"""``pypptpctl``: the running daemon's sessions and counters, and its controls (accel-cmd's role).

``pypptpctl [-S PATH] show sessions [--json]``, ``show stat [--json]``, ``terminate if IFNAME |
username NAME | ip ADDRESS | all``, ``reload``.  It talks to the daemon's control socket
(:mod:`pypptp.daemon.control`).  Exit status: 0 done, 1 nothing matched or the daemon said no or
cannot be reached (said on stderr), 2 a usage error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from pypptp.daemon.control import CONTROL_SOCKET, request

__all__ = ["format_sessions", "format_stat", "main"]

COLUMNS = (
    ("ifname", "ifname"),
    ("user", "username"),
    ("peer", "calling-sid"),
    ("remote", "ip"),
    ("local", "local-ip"),
    ("state", "state"),
    ("uptime", "uptime"),
    ("rx_bytes", "rx-bytes"),
    ("tx_bytes", "tx-bytes"),
    ("rx_packets", "rx-pkts"),
    ("tx_packets", "tx-pkts"),
    ("mppe", "mppe"),
    ("call_id", "call-id"),
    ("peer_call_id", "peer-call-id"),
    ("worker", "worker"),
)
"""(field, header): accel-cmd's ``show sessions`` names where it has one."""


def _uptime(seconds: float) -> str:
    whole = int(seconds)
    days, rest = divmod(whole, 86400)
    text = f"{rest // 3600:02}:{rest % 3600 // 60:02}:{rest % 60:02}"
    return f"{days}.{text}" if days else text


def _cell(field: str, value: Any) -> str:
    if value is None:
        return ""
    if field == "uptime":
        return _uptime(float(value))
    return str(value)


def format_sessions(rows: list[dict[str, Any]]) -> str:
    """An aligned table, ``|`` between columns, as accel-cmd's (numbers right-aligned)."""
    columns = COLUMNS if any(row.get("worker") is not None for row in rows) else COLUMNS[:-1]
    cells = [[_cell(field, row.get(field)) for field, _ in columns] for row in rows]
    widths = [max([len(header), *(len(line[i]) for line in cells)]) for i, (_, header) in enumerate(columns)]
    numeric = {"uptime", "rx_bytes", "tx_bytes", "rx_packets", "tx_packets", "call_id", "peer_call_id", "worker"}

    def line(values: list[str]) -> str:
        return " | ".join(
            value.rjust(width) if field in numeric else value.ljust(width)
            for (field, _), value, width in zip(columns, values, widths, strict=True)
        ).rstrip()

    header = " | ".join(h.center(w) for (_, h), w in zip(columns, widths, strict=True)).rstrip()
    rule = "-+-".join("-" * w for w in widths)
    return "\n".join([header, rule, *(line(values) for values in cells)])


def format_stat(stat: dict[str, Any]) -> str:
    """``show stat``, accel-cmd's layout: a heading per group, indented ``name: value`` lines."""
    out = [f"uptime: {_uptime(stat['uptime'])}", f"cpu: {stat['cpu_seconds']:g} s"]
    if stat.get("workers", 1) > 1:
        out.append(f"workers: {stat['workers']}")
    out += [
        "sessions:",
        f"  active: {stat['sessions']}",
        f"  negotiating: {stat['calls'] - stat['sessions']}",
        f"  peak: {stat['sessions_peak']}",
        f"  started: {stat['sessions_started']}",
        "  ended: " + (", ".join(f"{k} {v}" for k, v in sorted(stat["sessions_ended"].items()) if v) or "none"),
        "authentication failures:",
        *(f"  {key}: {value}" for key, value in sorted(stat["auth_failures"].items())),
        "connections:",
        f"  now: {stat['connections']}",
        f"  pending: {stat['pending']}",
        f"  refused: {stat['refused']}",
        f"  evicted: {stat['evicted']}",
        f"  timed out: {stat['timed_out']}",
        "traffic:",
        f"  rx: {stat['rx_bytes']} bytes, {stat['rx_packets']} packets",
        f"  tx: {stat['tx_bytes']} bytes, {stat['tx_packets']} packets",
        "gre:",
        *(f"  {kind}: {stat['gre'][kind]}" for kind in sorted(stat["gre"])),
    ]
    if not stat["auth_failures"]:
        out.insert(out.index("authentication failures:") + 1, "  none")
    return "\n".join(out)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pypptpctl", description="Show and control a running pypptpd.")
    parser.add_argument("-S", "--socket", metavar="PATH", default=CONTROL_SOCKET, help=f"default {CONTROL_SOCKET}")
    verbs = parser.add_subparsers(dest="verb", required=True)
    show = verbs.add_parser("show", help="show sessions | show stat")
    show.add_argument("what", choices=("sessions", "stat"))
    show.add_argument("--json", action="store_true", help="JSON, for scripts")
    terminate = verbs.add_parser("terminate", help="terminate if IFNAME | username NAME | ip ADDRESS | all")
    terminate.add_argument("selector", choices=("if", "username", "ip", "all"))
    terminate.add_argument("value", nargs="?")
    verbs.add_parser("reload", help="what SIGHUP does: re-read the secrets and options, reopen the logs")
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        status = _main(argv)
        sys.stdout.flush()  # a closed pipe raises here, inside the handler, not at the interpreter's exit
        return status
    except BrokenPipeError:  # `| head` has what it wanted: stop quietly, as cat does (SIGPIPE's status)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


def _main(argv: list[str] | None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.verb == "show":
        command = ["show", args.what]
    elif args.verb == "terminate":
        if (args.selector == "all") != (args.value is None):
            parser.error("terminate if IFNAME | username NAME | ip ADDRESS | all")
        command = ["terminate", args.selector, *([args.value] if args.value is not None else [])]
    else:
        command = ["reload"]
    try:
        answer = request(args.socket, command)
    except OSError as exc:
        print(f"pypptpctl: cannot reach pypptpd at {args.socket}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    except ValueError as exc:
        print(f"pypptpctl: {args.socket}: not an answer from pypptpd: {exc}", file=sys.stderr)
        return 1
    if not answer.get("ok"):
        print(f"pypptpctl: {answer.get('error', 'failed')}", file=sys.stderr)
        return 2 if answer.get("usage") else 1
    if command[0] == "show":
        value = answer[command[1]]
        if args.json:
            print(json.dumps(value, indent=2, sort_keys=True))
        else:
            print(format_sessions(value) if command[1] == "sessions" else format_stat(value))
        return 0
    if command[0] == "terminate":
        rows = answer["terminated"]
        for row in rows:
            print(f"terminating {row['ifname'] or '(no interface)'} {row['user']} {row['remote']} from {row['peer']}")
        if not rows:
            print("pypptpctl: no session matched", file=sys.stderr)
        return 0 if rows else 1
    for outcome in answer["reload"]:
        print(f"reload: {outcome}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
