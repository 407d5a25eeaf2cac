"""pppd's lines from the real daemon, in pppd's order, for each way a session ends; ``-d`` packet lines.

Admins' tools read these lines (fail2ban, logwatch, accounting scripts) and admins compare them with
what pppd wrote under pptpd; each test ends a session one way and checks the exact sequence of pppd's
lines (and our ``session ended`` line after them), under pppd's identity ``pppd[PID]``.
"""

from __future__ import annotations

import asyncio
import re
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from pypptp.aio.client import PptpClientError
from tests.conftest import Pypptpd
from tests.test_daemon_netns import SECRETS, SEED_CONF, SEED_OPTIONS, open_client

pytestmark = pytest.mark.netns

ENDING = re.compile(
    r"LCP terminated by peer.*|Connect time \d+\.\d minutes\.|Sent \d+ bytes, received \d+ bytes\.|Modem hangup"
    r"|Connection terminated\.|Exit\.|session ended: .*|Terminating on signal \d+|Peer \S+ failed CHAP authentication"
    r"|Terminating connection due to lack of activity\.|No response to \d+ echo-requests"
    r"|Serial link appears to be disconnected\."
)


def pppd_lines(daemon: Pypptpd) -> list[str]:
    """The messages of the lines logged as ``pppd[PID]`` (the foreground format: ``pppd[PID]: ppp0: ...``)."""
    found = re.findall(r" pppd\[\d+\]: (?:ppp\d+: )?(.*)$", daemon.log(), re.M)
    return [line for line in found if ENDING.fullmatch(line)]


def expect(daemon: Pypptpd, *patterns: str, timeout: float = 15) -> None:
    daemon.wait_log("session ended: ", timeout=timeout)
    lines = pppd_lines(daemon)
    assert len(lines) == len(patterns), lines
    for line, pattern in zip(lines, patterns, strict=True):
        assert re.fullmatch(pattern, line), (line, pattern, lines)


FIGURES = (r"Connect time \d+\.\d minutes\.", r"Sent \d+ bytes, received \d+ bytes\.")


def start(start_pypptpd: Callable[..., Pypptpd], options: str = SEED_OPTIONS, args: list[str] | None = None) -> Pypptpd:
    return start_pypptpd(SEED_CONF, args, secrets=SECRETS, options=options)


async def test_client_terminates_then_clears_the_call(start_pypptpd: Callable[..., Pypptpd]) -> None:
    """Windows' and pptp-linux's way: LCP Terminate-Request, then Call-Clear-Request."""
    daemon = start(start_pypptpd)
    session = await open_client(daemon, tun=False)
    daemon.wait_log("remote IP address")
    await session.close()
    expect(
        daemon,
        r"LCP terminated by peer( \(.*\))?",
        *FIGURES,
        "Modem hangup",
        r"Connection terminated\.",
        r"Exit\.",
        "session ended: .*",
    )
    assert re.search(r"^\S+ \S+ pppd\[\d+\]: pppd 2\.4\.9 started by \w+, uid \d+$", daemon.log(), re.M)
    assert re.search(r"^\S+ \S+ pppd\[\d+\]: ppp0: Connect: ppp0 <--> ", daemon.log(), re.M)
    assert re.search(r"^\S+ \S+ pptpd\[\d+\]: CTRL: ", daemon.log(), re.M)
    assert not re.search(r"pypptpd\[|pppd\.ppp", daemon.log())


async def test_client_clears_the_call_without_terminating(start_pypptpd: Callable[..., Pypptpd]) -> None:
    """The call cleared while IPCP is up: pptpctrl closed pppd's pty, and pppd said ``Modem hangup`` first."""
    daemon = start(start_pypptpd)
    session = await open_client(daemon, tun=False)
    daemon.wait_log("remote IP address")
    await session.control.clear_call(session.call)  # CCRQ, no LCP Terminate first
    expect(daemon, "Modem hangup", *FIGURES, r"Connection terminated\.", r"Exit\.", "session ended: call cleared.*")
    await session.close()


async def test_client_drops_the_connection(start_pypptpd: Callable[..., Pypptpd]) -> None:
    """TCP gone while IPCP is up: the same, pppd's ``Modem hangup`` first."""
    daemon = start(start_pypptpd)
    session = await open_client(daemon, tun=False)
    daemon.wait_log("remote IP address")
    session.control.close()
    await asyncio.sleep(0.2)  # the socket closes on the loop (expect() waits without it)
    expect(
        daemon,
        "Modem hangup",
        *FIGURES,
        r"Connection terminated\.",
        r"Exit\.",
        "session ended: call cleared: TCP connection closed by peer",
    )
    await session.close()


@pytest.mark.parametrize("number", [signal.SIGTERM, signal.SIGINT])
async def test_signal(start_pypptpd: Callable[..., Pypptpd], number: signal.Signals) -> None:
    """SIGTERM and SIGINT: pppd names the signal it received (SIGINT was said as 15 once)."""
    daemon = start(start_pypptpd)
    session = await open_client(daemon, tun=False)
    daemon.wait_log("remote IP address")
    daemon.process.send_signal(number)
    expect(
        daemon,
        f"Terminating on signal {int(number)}",
        *FIGURES,
        r"Connection terminated\.",
        r"Exit\.",
        "session ended: .*",
    )
    await session.close()


async def test_authentication_failure(start_pypptpd: Callable[..., Pypptpd]) -> None:
    daemon = start(start_pypptpd)
    with pytest.raises((PptpClientError, TimeoutError, OSError)):
        await open_client(daemon, password="wrong")
    daemon.wait_log("session ended: ", timeout=15)
    lines = pppd_lines(daemon)
    assert lines[0] == "Peer alice failed CHAP authentication"  # bare, as fail2ban's filters match it
    assert lines[-3:-1] == ["Connection terminated.", "Exit."] and lines[-1].startswith("session ended: ")
    assert not [line for line in lines if line.startswith(("Connect time", "Sent "))]  # IP never flowed


async def test_idle(start_pypptpd: Callable[..., Pypptpd]) -> None:
    daemon = start(start_pypptpd, SEED_OPTIONS + "idle 1\n")
    session = await open_client(daemon, tun=False)
    try:
        await asyncio.sleep(0)
        expect(
            daemon,
            r"Terminating connection due to lack of activity\.",
            *FIGURES,
            r"Connection terminated\.",
            r"Exit\.",
            "session ended: .*",
        )
    finally:
        await session.close()


async def test_debug_logs_pppd_packet_lines(start_pypptpd: Callable[..., Pypptpd]) -> None:
    plain = start(start_pypptpd)
    session = await open_client(plain, tun=False)
    plain.wait_log("remote IP address")
    await session.close()
    plain.wait_log("session ended")
    plain.terminate()
    assert not re.search(r"(sent|rcvd) \[", plain.log())
    debug = start(start_pypptpd, args=["-d"])
    session = await open_client(debug, tun=False)
    debug.wait_log("remote IP address")
    await session.close()
    log = debug.wait_log("session ended")
    assert re.search(r" pppd\[\d+\]: sent \[LCP ConfReq id=0x1 (<mru \d+> )?<auth chap MS-v2> <magic 0x[0-9a-f]+>", log)
    assert re.search(r" pppd\[\d+\]: rcvd \[LCP ConfReq id=0x1 ", log)
    assert re.search(r' pppd\[\d+\]: (ppp0: )?sent \[CHAP Challenge id=0x\w+ <[0-9a-f]{32}>, name = "pptpd"\]', log)
    assert re.search(r' pppd\[\d+\]: (ppp0: )?rcvd \[CHAP Response id=0x\w+ <[0-9a-f]{98}>, name = "alice"\]', log)
    assert re.search(r" pppd\[\d+\]: ppp0: rcvd \[IPCP ConfReq id=0x\w+ <addr 0\.0\.0\.0>", log)
    assert re.search(r" pppd\[\d+\]: ppp0: rcvd \[LCP TermReq id=0x\w+", log)


async def test_echo_failure(start_pypptpd: Callable[..., Pypptpd]) -> None:
    """The client goes silent (its GRE call closed): pppd's keepalive gives up."""
    daemon = start(start_pypptpd, SEED_OPTIONS + "lcp-echo-interval 1\nlcp-echo-failure 2\n")
    session = await open_client(daemon, tun=False)
    try:
        daemon.wait_log("remote IP address")
        assert session.gre is not None
        session.gre.close()
        await asyncio.sleep(0)
        expect(
            daemon,
            "No response to 2 echo-requests",
            r"Serial link appears to be disconnected\.",
            *FIGURES,
            r"Connection terminated\.",
            r"Exit\.",
            "session ended: Peer not responding",
            timeout=30,
        )
    finally:
        await session.close()


async def test_pppd_debug_option_logs_packet_lines(start_pypptpd: Callable[..., Pypptpd], tmp_path: Path) -> None:
    """pppd's own ``debug`` in the options file, without ``-d``: the sessions' packet lines, in the log and
    in pppd's ``logfile``, while the daemon's own debug lines stay off."""
    path = tmp_path / "pppd.log"
    daemon = start(start_pypptpd, SEED_OPTIONS + f"debug\nlogfile {path}\n")
    session = await open_client(daemon, tun=False)
    daemon.wait_log("remote IP address")
    await session.close()
    log = daemon.wait_log("session ended")
    assert re.search(r" pppd\[\d+\]: sent \[LCP ConfReq id=0x1 <auth chap MS-v2> <magic 0x", log)
    assert "open files limit" not in log  # the daemon's own debug line: -d's, not pppd's debug
    text = path.read_text()
    assert re.search(r"^sent \[LCP ConfReq id=0x1 <auth chap MS-v2>", text, re.M)
    assert re.search(r'^rcvd \[CHAP Response id=0x\w+ <[0-9a-f]{98}>, name = "alice"\]$', text, re.M)
    assert "Connection terminated." in text.splitlines() and "Exit." not in text.splitlines()  # syslog only


async def test_logfile_has_each_line_of_each_session_once(
    start_pypptpd: Callable[..., Pypptpd], tmp_path: Path
) -> None:
    """pppd's ``logfile`` gets the session's lines once each, before and after the unit is chosen, in the
    order the log has them (a handler on both ``pppd`` and ``pppd.ppp0`` wrote every line twice), and two
    sessions one after the other do not double it either."""
    path = tmp_path / "ppp.log"
    daemon = start(start_pypptpd, SEED_OPTIONS + f"logfile {path}\n")
    for count in (1, 2):
        session = await open_client(daemon, tun=False)
        wait_count(daemon, "remote IP address", count)
        await session.close()
        wait_count(daemon, "session ended", count)
    lines = path.read_text().splitlines()
    for line in ("CHAP peer authentication succeeded for alice", "Modem hangup", "Connection terminated."):
        assert lines.count(line) == 2, lines
    remote = [line for line in lines if line.startswith("remote IP address ")]
    # (the second session gets .235 while the first one's address still drains: its pppN removed, ip-down run)
    assert remote[:1] == ["remote IP address 192.168.0.234"] and len(remote) == 2
    assert remote[1] in ("remote IP address 192.168.0.234", "remote IP address 192.168.0.235")
    ours = [line for line in pppd_lines(daemon) if line != "Exit."]
    assert [line for line in lines if ENDING.fullmatch(line)] == ours


def wait_count(daemon: Pypptpd, text: str, count: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while daemon.log().count(text) < count:
        assert time.monotonic() < deadline, f"{text!r} not logged {count} times:\n{daemon.log()}"
        time.sleep(0.05)


async def test_logfile_named_anew_on_sighup_serves_the_sessions_after(
    start_pypptpd: Callable[..., Pypptpd], tmp_path: Path
) -> None:
    first, second = tmp_path / "first.log", tmp_path / "second.log"
    daemon = start(start_pypptpd, SEED_OPTIONS + f"logfile {first}\n")
    session = await open_client(daemon, tun=False)
    wait_count(daemon, "remote IP address", 1)
    await session.close()
    wait_count(daemon, "session ended", 1)
    daemon.options.write_text(SEED_OPTIONS + f"logfile {second}\n")
    daemon.process.send_signal(signal.SIGHUP)
    wait_count(daemon, "SIGHUP: secrets and pppd options re-read", 1)
    session = await open_client(daemon, tun=False)
    wait_count(daemon, "remote IP address", 2)
    await session.close()
    wait_count(daemon, "session ended", 2)
    assert first.read_text().splitlines().count("Connection terminated.") == 1
    assert second.read_text().splitlines().count("Connection terminated.") == 1
