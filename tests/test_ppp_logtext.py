"""pppd's log lines (:mod:`pypptp.ppp.logtext`), character for character."""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest

from pypptp.ppp import logtext

# What real pppd logs say (pptpd users' syslog excerpts), and what the functions must give.
EXACT = [
    (logtext.started("2.4.9", "root", 0), "pppd 2.4.9 started by root, uid 0"),
    (logtext.using_interface("ppp0"), "Using interface ppp0"),
    (logtext.connect("ppp0", "/dev/pts/1"), "Connect: ppp0 <--> /dev/pts/1"),
    (logtext.peer_failed_chap("alice"), "Peer alice failed CHAP authentication"),
    (logtext.chap_peer_succeeded("alice"), "CHAP peer authentication succeeded for alice"),
    (logtext.pap_peer_succeeded("alice"), "PAP peer authentication succeeded for alice"),
    (logtext.pap_peer_failed("alice"), "PAP peer authentication failed for alice"),
    (logtext.compression_enabled(*[logtext.mppe_method(128, False)] * 2), "MPPE 128-bit stateless compression enabled"),
    (logtext.compression_enabled(*[logtext.mppe_method(40, True)] * 2), "MPPE 40-bit stateful compression enabled"),
    (logtext.compression_enabled("MPPE 128-bit stateless", None), "MPPE 128-bit stateless receive compression enabled"),
    (logtext.compression_enabled(None, "MPPE 40-bit stateless"), "MPPE 40-bit stateless transmit compression enabled"),
    (
        logtext.compression_enabled("Deflate (15)", "BSD-Compress (15)"),
        "Deflate (15) / BSD-Compress (15) compression enabled",
    ),
    (logtext.local_ip(IPv4Address("192.168.0.1")), "local  IP address 192.168.0.1"),
    (logtext.remote_ip("192.168.0.234"), "remote IP address 192.168.0.234"),
    (
        logtext.peer_not_authorized(IPv4Address("10.0.0.9")),
        "Peer is not authorized to use remote address 10.0.0.9",
    ),
    (logtext.primary_dns("8.8.8.8"), "primary   DNS address 8.8.8.8"),
    (logtext.secondary_dns("8.8.4.4"), "secondary DNS address 8.8.4.4"),
    (logtext.terminated_by_peer(), "LCP terminated by peer"),
    (logtext.terminated_by_peer("LCP", b"User request"), "LCP terminated by peer (User request)"),
    (logtext.echo_failure(4), "No response to 4 echo-requests"),
    (logtext.link_disconnected(), "Serial link appears to be disconnected."),
    (logtext.connect_time(72), "Connect time 1.2 minutes."),
    (logtext.bytes_transferred(123, 456), "Sent 123 bytes, received 456 bytes."),
    (logtext.hangup(), "Modem hangup"),
    (logtext.connection_terminated(), "Connection terminated."),
    (logtext.terminating_on_signal(15), "Terminating on signal 15"),
    (logtext.hangup_signal(), "Hangup (SIGHUP)"),
    (logtext.cannot_execute("/etc/ppp/ip-up", "Invalid argument"), "Can't execute /etc/ppp/ip-up: Invalid argument"),
    (
        logtext.child_signalled("/etc/ppp/ip-up", 42, 15),
        "Child process /etc/ppp/ip-up (pid 42) terminated with signal 15",
    ),
    (logtext.script_finished("/etc/ppp/ip-up", 42, 1), "Script /etc/ppp/ip-up finished (pid 42), status = 0x1"),
    (logtext.script_finished("/etc/ppp/ip-up", 42, 0), "Script /etc/ppp/ip-up finished (pid 42), status = 0x0"),
    (logtext.exit_line(), "Exit."),
]


@pytest.mark.parametrize(("line", "expected"), EXACT, ids=[e for _, e in EXACT])
def test_exact_wording(line: str, expected: str) -> None:
    assert line == expected


def test_the_docstring_table_shows_what_the_functions_write() -> None:
    doc = logtext.__doc__ or ""
    shown = [expected for _, expected in EXACT if f"``{expected}``" in doc]
    assert len(shown) >= 20
    for line in (
        logtext.local_ip("192.168.0.1"),
        logtext.compression_enabled(logtext.mppe_method(128, False), logtext.mppe_method(128, False)),
        logtext.connect_time(72),
        logtext.bytes_transferred(123, 456),
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
    assert logtext.connect_time(seconds) == f"Connect time {shown} minutes."


def test_link_stats_in_pppds_order() -> None:
    assert logtext.link_stats(72, 1, 2) == ("Connect time 1.2 minutes.", "Sent 1 bytes, received 2 bytes.")


def test_quoted_is_pppds_percent_q() -> None:
    assert logtext.quoted("alice") == "alice"
    assert logtext.quoted('DOMAIN\\al"ice') == 'DOMAIN\\\\al\\"ice'
    assert logtext.quoted("a\tb\nc\bd\fe\x01\x7f") == "a\\tb\\nc\\bd\\fe\\x01\\x7f"
    assert logtext.quoted("José") == "José"  # bytes from 0xa0 pass unchanged
    assert logtext.quoted(b"\x85x") == "\\x85x"


def test_visible_is_pppds_percent_v() -> None:
    # A Windows Terminate-Request's data (the peer's magic number and more), as pppd shows it.
    assert logtext.visible(b"\x1b\xb1\x0f\x85\x00<\xcdt\x00\x00\x02\xe6") == "^[M-1^OM-^E^@<M-Mt^@^@^BM-f"
    assert logtext.visible(b"\x7f\xff\t") == "^?M-^?\t"
    assert logtext.terminated_by_peer("LCP", b"\x00\x01") == "LCP terminated by peer (^@^A)"
