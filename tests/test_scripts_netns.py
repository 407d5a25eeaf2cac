"""ip-up and PEERNAME against the real daemon (issue 15 section 3): a user cannot skip their own ip-up.

PEERNAME is the raw name from the wire no more: it is what pppd passes (the name after
``chapms-strip-domain``, printable, at most 256 characters); a name with a control character is refused
at authentication; and a session whose ip-up exists but cannot be started is ended, loudly.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from pypptp.aio.client import PptpClientError
from tests.conftest import Pypptpd
from tests.test_daemon_netns import SECRETS, SEED_CONF, SEED_OPTIONS, open_client, write_recorders

pytestmark = pytest.mark.netns

STRIP = SEED_OPTIONS + "chapms-strip-domain\n"


async def wait_file(path: Path, timeout: float = 5.0) -> str:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not path.exists():
        if loop.time() > deadline:
            raise AssertionError(f"{path} never appeared")
        await asyncio.sleep(0.05)
    return path.read_text()


async def test_peername_is_the_stripped_name(start_pypptpd: Callable[..., Pypptpd]) -> None:
    daemon = start_pypptpd(SEED_CONF, secrets=SECRETS, options=STRIP)
    out = write_recorders(daemon)
    session = await open_client(daemon, "CORP\\alice", "s3cret", tun=False)
    try:
        env = (await wait_file(out.parent / "script.ip-up.env")).splitlines()
        assert "PEERNAME=alice" in env
    finally:
        await session.close()


async def test_a_nul_in_the_domain_part_is_refused_and_runs_no_script(start_pypptpd: Callable[..., Pypptpd]) -> None:
    """Before: ``EVIL\\x00\\alice`` authenticated as alice, ip-up died with ``ValueError: embedded null
    byte`` and the tunnel came up without it."""
    daemon = start_pypptpd(SEED_CONF, secrets=SECRETS, options=STRIP)
    out = write_recorders(daemon)
    with pytest.raises(PptpClientError):
        await open_client(daemon, "EVIL\x00\\alice", "s3cret", tun=False)
    log = daemon.wait_log("control character U+0000")
    assert "Peer EVIL\\x00\\\\alice failed CHAP authentication" in log  # pppd's line, escaped as its %q
    assert "\x00" not in log and "embedded null byte" not in log
    assert not (out.parent / "script.ip-up.env").exists()
    session = await open_client(daemon, tun=False)  # alice, properly, still gets in
    await session.close()


async def test_an_ip_up_that_cannot_be_started_ends_the_session(start_pypptpd: Callable[..., Pypptpd]) -> None:
    daemon = start_pypptpd(SEED_CONF, secrets=SECRETS, options=SEED_OPTIONS)
    daemon.ip_up.write_text("#!/bin/sh\nexit 0\n")
    daemon.ip_up.chmod(0o644)  # exists, not executable: pppd logs "Can't execute" and carries on
    session = await open_client(daemon, tun=False)
    try:
        reason = await asyncio.wait_for(session.wait_closed(), 10)
        assert reason == "LCP terminated by peer"
    finally:
        await session.close()
    log = daemon.wait_log("Connection terminated.")
    assert f"Can't execute {daemon.ip_up}: Invalid argument" in log
    assert f"{daemon.ip_up} could not be started (Invalid argument): ending the session" in log
