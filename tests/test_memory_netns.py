"""A closed session's memory comes back when it closes (issue 20): nothing of it is left for the cyclic
garbage collector.

The real daemon runs in the server namespace through :mod:`tests.memory_probe`, which disables the collector
and, after each session's end, checks through weak references which of the session's objects are still
reachable, then what a collection finds.  Sessions kept in reference cycles (callbacks between the manager's
``DaemonSession``, the ``PppSession`` and its link, the GRE call, the log adapter, timers) survive their end
until a full collection: under a steady load the daemon's RSS stays where its peak was."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import Pypptpd
from tests.test_daemon_netns import open_client

pytestmark = pytest.mark.netns

SESSIONS = 3


async def _results(path: Path, count: int, timeout: float = 10.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            lines = path.read_text().splitlines()
            if len(lines) >= count:
                return [json.loads(line) for line in lines]
        await asyncio.sleep(0.05)
    written = path.read_text() if path.exists() else ""
    raise AssertionError(f"{count} session reports not written within {timeout} s: {written}")


@pytest.mark.parametrize("end", ["hang-up", "tcp-dropped"])
async def test_a_closed_session_is_freed_without_a_collection(
    start_pypptpd: Callable[..., Pypptpd], tmp_path: Path, end: str
) -> None:
    """Each session ends as a client hangs up (LCP Terminate, CCRQ, StopCCRQ) or as its TCP connection
    drops; a few seconds later nothing of it is reachable, and a collection finds none of its objects."""
    results = tmp_path / "sessions.jsonl"
    daemon = start_pypptpd(
        ["localip 192.168.0.1", "remoteip 192.168.0.234-238"], entry=["-m", "tests.memory_probe", str(results)]
    )
    ran = tmp_path / "scripts-ran"
    for script in (daemon.ip_up, daemon.ip_down):  # the scripts' path too (a runner, its tasks, their callbacks)
        script.write_text(f'#!/bin/sh\necho "$(basename "$0")" >> {ran}\n')
        script.chmod(0o755)
    for index in range(SESSIONS):
        session = await open_client(daemon, tun=False)
        if end == "tcp-dropped":
            session.control.close()
        await session.close(timeout=0.5)
        await _results(results, index + 1)
    reports = await _results(results, SESSIONS)
    assert [r["alive"] for r in reports] == [[]] * SESSIONS, reports
    # the first look collects what start-up left too; from the second session on, a session leaves nothing
    assert [r["garbage"] for r in reports[1:]] == [{}] * (SESSIONS - 1), reports
    log = daemon.log()
    assert log.count("session ended") == SESSIONS
    assert "could not be started" not in log, log
    assert sorted(ran.read_text().split()) == ["ip-down"] * SESSIONS + ["ip-up"] * SESSIONS
    if end == "tcp-dropped":
        assert "TCP connection" in log, log
