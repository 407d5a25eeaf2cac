"""Read a lab capture with tshark, once, and check it: no malformed frame, the protocol ladder present.

One pass (``tshark -r CAP -T fields``) extracts the few fields the checks need; each check is then a
Python predicate over those rows, so a 40 MB iperf capture is dissected once, not once per filter.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

FIELDS = [
    "frame.number",
    "frame.protocols",
    "ip.src",
    "pptp.control_message_type",
    "ppp.code",
    "lcp.opt.auth_protocol",
    "lcp.opt.algorithm",
    "chap.code",
    "ccp.opt.type",
    "ppp.protocol",
    "tcp.flags.fin",
    "tcp.flags.reset",
]

# PPTP control message types (RFC 2637 §2.2), LCP codes (RFC 1661 §5), CHAP codes (RFC 1994 §4).
PPTP_SCCRQ, PPTP_SCCRP, PPTP_OCRQ, PPTP_OCRP = 1, 2, 7, 8
PPTP_ECHO_REQUEST, PPTP_ECHO_REPLY, PPTP_CCRQ, PPTP_CDN = 5, 6, 12, 13
LCP_TERMINATE_REQUEST, LCP_TERMINATE_ACK, LCP_ECHO_REQUEST, LCP_ECHO_REPLY = 5, 6, 9, 10
CHAP_RESPONSE, CHAP_SUCCESS, CHAP_FAILURE = 2, 3, 4
CCP_OPT_MPPE = 18
PPP_COMP = 0x00FD


@dataclass(frozen=True)
class Row:
    number: int
    protocols: list[str]
    src: str
    values: dict[str, list[int]]

    def has(self, name: str, value: int | None = None) -> bool:
        got = self.values.get(name, [])
        return bool(got) if value is None else value in got

    def proto(self, name: str) -> bool:
        return name in self.protocols


def _ints(text: str) -> list[int]:
    out = []
    for part in text.split(","):
        part = part.strip()
        if part:
            try:
                out.append(int(part, 0))
            except ValueError:
                out.append(1 if part in ("True", "Set") else 0)
    return out


def read_capture(path: Path) -> list[Row]:
    argv = ["tshark", "-n", "-r", str(path), "-T", "fields", "-E", "occurrence=a", "-E", "separator=\t"]
    for name in FIELDS:
        argv += ["-e", name]
    result = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=600)
    if result.returncode != 0:
        raise AssertionError(f"tshark -r {path} failed: {result.stderr}")
    rows = []
    for line in result.stdout.splitlines():
        cols = line.split("\t")
        cols += [""] * (len(FIELDS) - len(cols))
        values = {name: _ints(cols[i]) for i, name in enumerate(FIELDS) if i >= 3}
        rows.append(Row(int(cols[0]), cols[1].split(":"), cols[2].split(",")[0], values))
    return rows


Check = Callable[[Row], bool]

LADDER: dict[str, Check] = {
    "PPTP control SCCRQ": lambda r: r.has("pptp.control_message_type", PPTP_SCCRQ),
    "PPTP control OCRP": lambda r: r.has("pptp.control_message_type", PPTP_OCRP),
    "GRE": lambda r: r.proto("gre"),
    "LCP": lambda r: r.proto("lcp"),
    "LCP auth MS-CHAPv2 (c223/0x81)": lambda r: (
        r.has("lcp.opt.auth_protocol", 0xC223) and r.has("lcp.opt.algorithm", 0x81)
    ),
    "CHAP response": lambda r: r.has("chap.code", CHAP_RESPONSE),
    "CHAP success": lambda r: r.has("chap.code", CHAP_SUCCESS),
    "CCP MPPE option": lambda r: r.has("ccp.opt.type", CCP_OPT_MPPE),
    "IPCP": lambda r: r.proto("ipcp"),
    "encrypted data (PPP 0x00fd)": lambda r: r.has("ppp.protocol", PPP_COMP),
}


def count(rows: list[Row], check: Check) -> int:
    return sum(1 for row in rows if check(row))


def malformed(rows: list[Row]) -> list[int]:
    return [row.number for row in rows if any(p.startswith("_ws.malformed") for p in row.protocols)]


def assert_capture(
    path: Path, ladder: dict[str, Check] | None = None, extra: dict[str, Check] | None = None
) -> list[Row]:
    """0 malformed frames, and every step of ``ladder`` (default :data:`LADDER`) and ``extra`` seen."""
    rows = read_capture(path)
    assert rows, f"{path}: empty capture"
    bad = malformed(rows)
    assert not bad, f"{path}: malformed frames {bad[:20]}"
    wanted = {**(LADDER if ladder is None else ladder), **(extra or {})}
    missing = [name for name, check in wanted.items() if count(rows, check) == 0]
    assert not missing, f"{path}: protocol ladder incomplete, missing {missing}"
    return rows
