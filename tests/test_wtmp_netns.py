"""``-w``: the real daemon's wtmp records read back with ``last -f``, and every session's summary line.

A library client session from the client namespace logs in and out; ``last`` (util-linux) must show
the user on ``pppN`` from the client's address, with its logout time; the summary line's figures must
be the client's counters, seen from the other end.
"""

from __future__ import annotations

import datetime
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from pypptp.aio.client import PptpClientError
from pypptp.client.tunnel import PptpClientSession
from pypptp.host import wtmp
from tests.conftest import Pypptpd, tunnel_ping
from tests.test_daemon_netns import SECRETS, SEED_CONF, SEED_OPTIONS, SERVER_IP, open_client

pytestmark = pytest.mark.netns

SUMMARY = re.compile(
    r"^\S+ \S+ pppd\[\d+\]: (?:ppp\d+: )?session summary: user=\"(?P<user>(?:[^\"\\]|\\.)*)\" peer=(?P<peer>\S+) "
    r"ip=(?P<ip>\S+) if=(?P<ifname>\S+) duration=(?P<duration>\d+\.\d)s sent=(?P<sent>\d+) "
    r"received=(?P<received>\d+) reason=\"(?P<reason>(?:[^\"\\]|\\.)*)\"$",
    re.M,
)
HOSTILE = 'ev il"x\\\u202eb\xa0'
"""A space, a quote, a backslash, a right-to-left override and a no-break space (control characters are
refused at authentication: ``name_problem``)."""
HOSTILE_SECRETS = SECRETS + 'ev\\sil\\"x\\\\\u202eb\xa0 pptpd s3cret *\n'
HOSTILE_ESCAPED = 'ev\\x20il\\"x\\\\\\u202eb\\xa0'


HOLD_LOCK = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_WRONLY)
fcntl.lockf(fd, fcntl.LOCK_EX)
print("locked", flush=True)
deadline = time.monotonic() + 20
while sys.argv[3] not in open(sys.argv[2], errors="replace").read() and time.monotonic() < deadline:
    time.sleep(0.05)
time.sleep(0.5)
"""
"""Another process holding wtmp's lock (glibc's, fcntl) until a text is in a log, and half a second more."""


def start(start_pypptpd: Callable[..., Pypptpd], path: Path, *flags: str, secrets: str = SECRETS) -> Pypptpd:
    return start_pypptpd(SEED_CONF, [*flags, "--wtmp", str(path)], secrets=secrets, options=SEED_OPTIONS)


def records(path: Path, count: int, timeout: float = 5.0) -> list[wtmp.UtmpRecord]:
    """The file's records once there are ``count`` (the daemon writes them on a thread of its own)."""
    deadline = time.monotonic() + timeout
    while len(found := wtmp.read_records(str(path))) < count and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(found) == count, found
    return found


def last(path: Path) -> list[str]:
    """``last -F -w -f path`` (whole names), once the second of the file's last record is over (``last`` says ``still
    running`` for a logout in the second it runs in)."""
    newest = max((record.time for record in wtmp.read_records(str(path))), default=0.0)
    while time.time() < int(newest) + 1:
        time.sleep(0.05)
    out = subprocess.run(
        ["last", "-F", "-w", "-f", str(path)], capture_output=True, text=True, check=True, env={"TZ": "UTC"}
    ).stdout
    return [line for line in out.splitlines() if line and " begins " not in line]


def summaries(daemon: Pypptpd, count: int) -> list[dict[str, str]]:
    deadline = time.monotonic() + 15
    while len(found := [m.groupdict() for m in SUMMARY.finditer(daemon.log())]) < count:
        assert time.monotonic() < deadline, daemon.log()
        time.sleep(0.05)
    assert len(found) == count and daemon.log().count("session summary:") == count, daemon.log()
    return found


def utc(seconds: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC).replace(tzinfo=None)


def last_times(line: str) -> tuple[datetime.datetime, datetime.datetime]:
    """Login and logout of a ``last -F`` line."""
    stamp = r"\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}"
    match = re.search(rf"({stamp}) - ({stamp})", line)
    assert match, line
    login, logout = (datetime.datetime.strptime(s, "%a %b %d %H:%M:%S %Y") for s in match.groups())
    return login, logout


async def ping_and_close(session: PptpClientSession) -> tuple[int, int]:
    """Traffic both ways, then the session closed; the client's (sent, received) IP bytes."""
    assert await tunnel_ping(session, SERVER_IP)
    assert session.ppp is not None
    await session.close()
    return session.ppp.stats.bytes_sent, session.ppp.stats.bytes_received


async def test_last_shows_the_session_and_the_summary_has_its_figures(
    start_pypptpd: Callable[..., Pypptpd], tmp_path: Path
) -> None:
    path = tmp_path / "wtmp"
    path.touch()
    daemon = start(start_pypptpd, path, "-w")
    before = time.time()
    session = await open_client(daemon, tun=False)
    login = records(path, 1)[0]
    assert (login.type, login.line, login.user, login.host) == (wtmp.USER_PROCESS, b"ppp0", b"alice", b"198.18.0.2")
    assert str(login.address) == "198.18.0.2" and before <= login.time <= time.time()
    client_sent, client_received = await ping_and_close(session)
    logout = records(path, 2)[1]
    assert (logout.type, logout.line, logout.user, logout.host) == (wtmp.DEAD_PROCESS, b"ppp0", b"", b"")
    assert login.time <= logout.time <= time.time()

    lines = last(path)
    assert len(lines) == 1, lines
    assert lines[0].split()[:3] == ["alice", "ppp0", "198.18.0.2"]
    assert "gone - no logout" not in lines[0] and "still logged in" not in lines[0]
    assert last_times(lines[0]) == (utc(int(login.time)), utc(int(logout.time)))

    (summary,) = summaries(daemon, 1)
    assert summary["user"] == "alice" and summary["peer"] == daemon.pair.client_ip == "198.18.0.2"
    assert (summary["ip"], summary["ifname"]) == ("192.168.0.234", "ppp0")
    assert f"session ended: {summary['reason']}" in daemon.log()
    assert 0.0 <= float(summary["duration"]) <= time.time() - before + 0.1
    assert int(summary["sent"]) == client_received > 0 and int(summary["received"]) == client_sent > 0
    assert f"Sent {summary['sent']} bytes, received {summary['received']} bytes." in daemon.log()  # pppd's figures


async def test_two_sessions_and_a_shutdown(start_pypptpd: Callable[..., Pypptpd], tmp_path: Path) -> None:
    """Two sessions at once: one ends, then SIGTERM ends the other; its logout is written before exit."""
    path = tmp_path / "wtmp"
    path.touch()
    daemon = start(start_pypptpd, path, "-w")
    alice = await open_client(daemon, tun=False)
    bob = await open_client(daemon, "bob", "bob pw", tun=False)
    records(path, 2)
    await ping_and_close(bob)
    records(path, 3)
    assert await tunnel_ping(alice, SERVER_IP)
    last_line = "(server shut down)"  # where a daemon that did not wait for its wtmp thread would exit
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(path), str(daemon.log_path), last_line], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
    assert daemon.terminate() == 0  # once it has written alice's logout, when the lock is free
    assert holder.wait(5) == 0
    found = records(path, 4, timeout=0)
    assert [(r.type, r.line, r.user) for r in found] == [
        (wtmp.USER_PROCESS, b"ppp0", b"alice"),
        (wtmp.USER_PROCESS, b"ppp1", b"bob"),
        (wtmp.DEAD_PROCESS, b"ppp1", b""),
        (wtmp.DEAD_PROCESS, b"ppp0", b""),
    ]
    lines = last(path)
    assert [line.split()[:3] for line in lines] == [["bob", "ppp1", "198.18.0.2"], ["alice", "ppp0", "198.18.0.2"]]
    assert not [line for line in lines if "gone - no logout" in line or "still logged in" in line]
    bob_line, alice_line = summaries(daemon, 2)
    assert (bob_line["user"], bob_line["ip"], bob_line["ifname"]) == ("bob", "192.168.0.245", "ppp1")
    assert (alice_line["user"], alice_line["ip"], alice_line["ifname"]) == ("alice", "192.168.0.234", "ppp0")
    assert alice_line["reason"] == "pypptpd is shutting down" and int(alice_line["received"]) > 0
    await alice.close()


async def test_a_hostile_name_is_escaped_in_wtmp_and_in_the_summary(
    start_pypptpd: Callable[..., Pypptpd], tmp_path: Path
) -> None:
    path = tmp_path / "wtmp"
    path.touch()
    daemon = start(start_pypptpd, path, "-w", secrets=HOSTILE_SECRETS)
    session = await open_client(daemon, HOSTILE, "s3cret", tun=False)
    await ping_and_close(session)
    login = records(path, 2)[0]
    assert login.user == HOSTILE_ESCAPED.encode()
    lines = last(path)
    assert len(lines) == 1 and lines[0].split()[:3] == [HOSTILE_ESCAPED, "ppp0", "198.18.0.2"], lines
    (summary,) = summaries(daemon, 1)
    assert summary["user"] == HOSTILE_ESCAPED


async def test_without_w_no_record_and_a_failed_login_has_its_summary(
    start_pypptpd: Callable[..., Pypptpd], tmp_path: Path
) -> None:
    path = tmp_path / "wtmp"
    path.touch()
    daemon = start(start_pypptpd, path)
    await ping_and_close(await open_client(daemon, tun=False))
    with pytest.raises((PptpClientError, TimeoutError, OSError)):
        await open_client(daemon, password="wrong")
    ok, failed = summaries(daemon, 2)
    assert ok["user"] == "alice" and int(ok["sent"]) > 0
    assert (failed["user"], failed["ip"], failed["ifname"], failed["sent"], failed["received"]) == (
        "",
        "-",
        "-",
        "0",
        "0",
    )
    assert failed["peer"] == "198.18.0.2" and failed["reason"]
    assert path.stat().st_size == 0
