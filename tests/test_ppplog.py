"""pppd's log lines, character for character, and pppd's logfile format."""

from __future__ import annotations

import logging
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from pypptp import ppplog

# What real pppd logs say (pptpd users' syslog excerpts), and what the functions must give.
EXACT = [
    (ppplog.started("2.4.9", "root", 0), "pppd 2.4.9 started by root, uid 0"),
    (ppplog.using_interface("ppp0"), "Using interface ppp0"),
    (ppplog.connect("ppp0", "/dev/pts/1"), "Connect: ppp0 <--> /dev/pts/1"),
    (ppplog.peer_failed_chap("alice"), "Peer alice failed CHAP authentication"),
    (ppplog.pap_peer_succeeded("alice"), "PAP peer authentication succeeded for alice"),
    (ppplog.pap_peer_failed("alice"), "PAP peer authentication failed for alice"),
    (ppplog.compression_enabled(ppplog.mppe_method(128, False)), "MPPE 128-bit stateless compression enabled"),
    (ppplog.compression_enabled(ppplog.mppe_method(40, True)), "MPPE 40-bit stateful compression enabled"),
    (
        ppplog.compression_enabled("Deflate (15)", "BSD-Compress (15)"),
        "Deflate (15) / BSD-Compress (15) compression enabled",
    ),
    (ppplog.local_ip(IPv4Address("192.168.0.1")), "local  IP address 192.168.0.1"),
    (ppplog.remote_ip("192.168.0.234"), "remote IP address 192.168.0.234"),
    (ppplog.primary_dns("8.8.8.8"), "primary   DNS address 8.8.8.8"),
    (ppplog.secondary_dns("8.8.4.4"), "secondary DNS address 8.8.4.4"),
    (ppplog.terminated_by_peer(), "LCP terminated by peer"),
    (ppplog.terminated_by_peer("LCP", b"User request"), "LCP terminated by peer (User request)"),
    (ppplog.echo_failure(4), "No response to 4 echo-requests"),
    (ppplog.link_disconnected(), "Serial link appears to be disconnected."),
    (ppplog.connect_time(72), "Connect time 1.2 minutes."),
    (ppplog.bytes_transferred(123, 456), "Sent 123 bytes, received 456 bytes."),
    (ppplog.hangup(), "Modem hangup"),
    (ppplog.connection_terminated(), "Connection terminated."),
    (ppplog.terminating_on_signal(15), "Terminating on signal 15"),
    (ppplog.hangup_signal(), "Hangup (SIGHUP)"),
    (ppplog.cannot_execute("/etc/ppp/ip-up", "Invalid argument"), "Can't execute /etc/ppp/ip-up: Invalid argument"),
    (
        ppplog.child_signalled("/etc/ppp/ip-up", 42, 15),
        "Child process /etc/ppp/ip-up (pid 42) terminated with signal 15",
    ),
    (ppplog.script_finished("/etc/ppp/ip-up", 42, 1), "Script /etc/ppp/ip-up finished (pid 42), status = 0x1"),
    (ppplog.script_finished("/etc/ppp/ip-up", 42, 0), "Script /etc/ppp/ip-up finished (pid 42), status = 0x0"),
    (ppplog.exit_line(), "Exit."),
]


@pytest.mark.parametrize(("line", "expected"), EXACT, ids=[e for _, e in EXACT])
def test_exact_wording(line: str, expected: str) -> None:
    assert line == expected


def test_the_docstring_table_shows_what_the_functions_write() -> None:
    doc = ppplog.__doc__ or ""
    shown = [expected for _, expected in EXACT if f"``{expected}``" in doc]
    assert len(shown) >= 20
    for line in (
        ppplog.local_ip("192.168.0.1"),
        ppplog.compression_enabled(ppplog.mppe_method(128, False)),
        ppplog.connect_time(72),
        ppplog.bytes_transferred(123, 456),
    ):
        assert f"``{line}``" in doc


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (0, "0.0"),
        (0.9, "0.0"),
        (1, "0.1"),
        (6, "0.1"),
        (7, "0.2"),
        (59.9, "1.0"),
        (60, "1.0"),
        (61, "1.1"),
        (-5, "0.0"),
    ],
)
def test_connect_time_rounds_like_pppd(seconds: float, shown: str) -> None:
    assert ppplog.connect_time(seconds) == f"Connect time {shown} minutes."


def test_link_stats_in_pppds_order() -> None:
    assert ppplog.link_stats(72, 1, 2) == ("Connect time 1.2 minutes.", "Sent 1 bytes, received 2 bytes.")


def test_quoted_is_pppds_percent_q() -> None:
    assert ppplog.quoted("alice") == "alice"
    assert ppplog.quoted('DOMAIN\\al"ice') == 'DOMAIN\\\\al\\"ice'
    assert ppplog.quoted("a\tb\nc\bd\fe\x01\x7f") == "a\\tb\\nc\\bd\\fe\\x01\\x7f"
    assert ppplog.quoted("José") == "José"  # bytes from 0xa0 pass unchanged
    assert ppplog.quoted(b"\x85x") == "\\x85x"


def test_visible_is_pppds_percent_v() -> None:
    # A Windows Terminate-Request's data (the peer's magic number and more), as pppd shows it.
    assert ppplog.visible(b"\x1b\xb1\x0f\x85\x00<\xcdt\x00\x00\x02\xe6") == "^[M-1^OM-^E^@<M-Mt^@^@^BM-f"
    assert ppplog.visible(b"\x7f\xff\t") == "^?M-^?\t"
    assert ppplog.terminated_by_peer("LCP", b"\x00\x01") == "LCP terminated by peer (^@^A)"


def test_levels_and_logger() -> None:
    assert ppplog.LEVELS["notice"] == logging.INFO
    assert ppplog.LEVELS["warn"] == logging.WARNING
    assert ppplog.pppd_logger(3) is logging.getLogger("pppd.ppp3")
    record = logging.LogRecord("pppd.ppp0", logging.INFO, __file__, 1, "Exit.", None, None)
    record.process = 4242
    assert logging.Formatter(ppplog.SYSLOG_FORMAT).format(record) == "pppd[4242]: Exit."


# -- the logfile ----------------------------------------------------------------------------------


@pytest.fixture
def logger() -> logging.Logger:
    log = logging.getLogger("test.ppplog.logfile")
    log.setLevel(logging.DEBUG)
    log.propagate = False
    for handler in list(log.handlers):
        log.removeHandler(handler)
    return log


def test_logfile_is_bare_lines_appended(tmp_path: Path, logger: logging.Logger) -> None:
    path = tmp_path / "pppd.log"
    path.write_text("an earlier session\n")
    handler = ppplog.LogfileHandler(str(path))
    logger.addHandler(handler)
    logger.info("%s", ppplog.started("2.4.9", "root", 0), extra=ppplog.SYSLOG_ONLY)
    logger.info("%s", ppplog.using_interface("ppp0"))
    logger.debug("rcvd [LCP ConfReq id=0x1]")
    logger.warning("%s", ppplog.peer_failed_chap("alice") + "\n")
    logger.info("%s", ppplog.exit_line(), extra=ppplog.SYSLOG_ONLY)
    handler.close()
    assert path.read_text() == ("an earlier session\nUsing interface ppp0\nPeer alice failed CHAP authentication\n")


def test_logfile_with_debug(tmp_path: Path, logger: logging.Logger) -> None:
    path = tmp_path / "pppd.log"
    handler = ppplog.LogfileHandler(str(path), debug=True)
    logger.addHandler(handler)
    logger.debug("rcvd [LCP ConfReq id=0x1]")
    handler.close()
    assert path.read_text() == "rcvd [LCP ConfReq id=0x1]\n"


def test_a_failing_logfile_goes_quiet(
    tmp_path: Path, logger: logging.Logger, capsys: pytest.CaptureFixture[str]
) -> None:
    handler = ppplog.LogfileHandler(str(tmp_path / "no such directory" / "pppd.log"))
    logger.addHandler(handler)
    logger.info("first")
    logger.info("second")
    assert handler.broken
    assert capsys.readouterr().err == ""
    handler.close()
