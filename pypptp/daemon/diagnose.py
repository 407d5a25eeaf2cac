"""``pypptpd --diagnose``: the host checked against the configuration (see :mod:`pypptp.host.diagnose`).

The configuration is read as ``--check`` reads it; the pool, the listen address, ``proxyarp`` and the
``mtu`` option go to :func:`pypptp.host.diagnose.diagnose`, which reads this network namespace.  Output:
one aligned line per item (``ITEM  STATUS  DETAIL``), each fix indented on the lines below; the exit
status is 1 when any item FAILs, 0 otherwise (WARN and INFO are advice).  A configuration that does not
load is a FAIL of its own, and the host is then checked with pptpd's defaults.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TextIO

from pypptp.daemon.config import DaemonConfig, validate
from pypptp.host.diagnose import FAIL, Finding, Setup, diagnose

__all__ = ["format_findings", "main", "setup_from"]


def setup_from(config: DaemonConfig) -> Setup:
    """What the host checks need from the configuration."""
    pool = config.pool
    options = config.options
    return Setup(
        listen=config.listen,
        pool=tuple(pool.remote[: pool.capacity]),
        proxyarp=options.proxyarp,
        mtu=options.mtu if options.mtu is not None else 1400,
        mtu_from_options=options.mtu is not None,
        port=config.port,
    )


def format_findings(findings: Sequence[Finding]) -> list[str]:
    """Aligned lines: item, status, detail; the fixes indented under their item."""
    width = max((len(f.item) for f in findings), default=0)
    lines = []
    for finding in findings:
        lines.append(f"{finding.item:<{width}}  {finding.status:<4}  {finding.detail}")
        lines += [f"{'':<{width}}        fix: {fix}" for fix in finding.fix]
    return lines


def main(argv: Sequence[str], *, system_options: str, out: TextIO = sys.stdout) -> int:
    """Check the host for the configuration ``argv`` (pptpd's flags) names; the exit status."""
    _, messages, config = validate(argv, system_options=system_options)
    findings: list[Finding] = []
    if config is None:
        errors = [line.removeprefix("error: ") for line in messages if line.startswith("error: ")]
        findings.append(
            Finding("configuration", FAIL, "; ".join(errors) + " (checking the host with pptpd's defaults)")
        )
        setup = Setup()
    else:
        setup = setup_from(config)
        pool = f"pool {setup.pool[0]}..{setup.pool[-1]}" if setup.pool else "no pool"
        findings.append(Finding("configuration", "OK", f"{config.conf_path or 'defaults'}; {pool}"))
    findings += diagnose(setup)
    for line in format_findings(findings):
        print(line, file=out)
    return 1 if any(f.status == FAIL for f in findings) else 0
