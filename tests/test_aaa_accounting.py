"""RADIUS accounting records (pypptp.aaa.accounting): what Start, Interim-Update and Stop carry, encoded
by pyrad through the shipped dictionary, and the Acct-Terminate-Cause of every way a session ends."""

from __future__ import annotations

import ast
import struct
from enum import IntEnum
from ipaddress import IPv4Address
from pathlib import Path

import pytest
from pyrad.packet import AccountingRequest, AcctPacket

from pypptp.aaa import load_dictionary
from pypptp.aaa.accounting import (
    END_CAUSES,
    AccountingSession,
    AcctAuthentic,
    AcctStatusType,
    Counters,
    Nas,
    SessionIds,
    TerminateCause,
    interim_record,
    start_record,
    stop_record,
    terminate_cause,
)
from pypptp.daemon.manager import ADMIN_REASON
from pypptp.ppp import logtext

PACKAGE = Path(__file__).resolve().parent.parent / "pypptp"
NAS = Nas(ip=IPv4Address("198.18.0.1"), identifier="pptp-1")
T0 = 1_700_000_000.0


def session(**changes: object) -> AccountingSession:
    fields: dict[str, object] = {
        "session_id": "65536F000004D200000001",
        "user_name": "alice",
        "unit": 3,
        "calling_station": "198.18.0.2",
        "called_station": "198.18.0.1",
        "started": T0,
        "framed_ip": IPv4Address("192.168.0.10"),
        "classes": (b"class-1", b"\x00\xffclass-2"),
    }
    fields.update(changes)
    return AccountingSession(**fields)  # type: ignore[arg-type]


def encoded(record: list[tuple[str, str | int | bytes]]) -> AcctPacket:
    """The record as the client sends it, decoded again as the server reads it."""
    packet = AcctPacket(AccountingRequest, id=7, secret=b"s3cret", dict=load_dictionary())
    for name, value in record:
        packet.AddAttribute(name, value)
    raw = packet.RequestPacket()
    received = AcctPacket(secret=b"s3cret", dict=load_dictionary(), packet=raw)
    assert received.VerifyAcctRequest()
    return received


def test_start_record_on_the_wire() -> None:
    received = encoded(start_record(NAS, session(), now=T0))
    assert received["Acct-Status-Type"] == ["Start"]
    assert received["Acct-Session-Id"] == ["65536F000004D200000001"]
    assert received["User-Name"] == ["alice"]
    assert received["NAS-IP-Address"] == ["198.18.0.1"]
    assert received["NAS-Identifier"] == ["pptp-1"]
    assert received["NAS-Port"] == [3]
    assert received["NAS-Port-Id"] == ["ppp3"]
    assert received["NAS-Port-Type"] == ["Virtual"]
    assert received["Service-Type"] == ["Framed-User"]
    assert received["Framed-Protocol"] == ["PPP"]
    assert received["Calling-Station-Id"] == ["198.18.0.2"]
    assert received["Called-Station-Id"] == ["198.18.0.1"]
    assert received["Framed-IP-Address"] == ["192.168.0.10"]
    assert received["Class"] == [b"class-1", b"\x00\xffclass-2"]  # each value, in order
    assert received["Acct-Authentic"] == ["RADIUS"]
    assert received["Event-Timestamp"] == [int(T0)]
    for counter in ("Acct-Session-Time", "Acct-Input-Octets", "Acct-Terminate-Cause"):
        assert counter not in received  # RFC 2866: no usage in a Start


def test_interim_carries_the_counters_with_gigawords() -> None:
    counters = Counters(input_octets=5 * 2**32 + 1234, output_octets=999, input_packets=2**32 + 7, output_packets=3)
    received = encoded(interim_record(NAS, session(), counters, now=T0 + 61.9))
    assert received["Acct-Status-Type"] == ["Interim-Update"]
    assert received["Acct-Session-Time"] == [61]
    assert received["Acct-Input-Octets"] == [1234]
    assert received["Acct-Input-Gigawords"] == [5]
    assert received["Acct-Output-Octets"] == [999]
    assert received["Acct-Output-Gigawords"] == [0]
    assert received["Acct-Input-Packets"] == [7]  # no Gigawords for packets: the 32-bit counter wraps
    assert received["Acct-Output-Packets"] == [3]
    assert "Acct-Terminate-Cause" not in received


def test_stop_maps_the_end_reason() -> None:
    counters = Counters(input_octets=100, output_octets=200, input_packets=1, output_packets=2)
    received = encoded(stop_record(NAS, session(), counters, "Peer not responding", now=T0 + 10))
    assert received["Acct-Status-Type"] == ["Stop"]
    assert received["Acct-Terminate-Cause"] == ["Lost-Carrier"]
    assert received["Acct-Input-Octets"] == [100]  # input: from the client
    assert received["Acct-Output-Octets"] == [200]
    assert received["Acct-Session-Time"] == [10]
    explicit = encoded(stop_record(NAS, session(), counters, TerminateCause.ADMIN_RESET, now=T0))
    assert explicit["Acct-Terminate-Cause"] == ["Admin-Reset"]


def test_a_nas_by_identifier_only_and_a_session_without_address_or_class() -> None:
    nas = Nas(identifier="pptp-2")
    record = start_record(nas, session(framed_ip=None, classes=(), authentic=AcctAuthentic.LOCAL), now=T0)
    names = [name for name, _ in record]
    assert "NAS-IP-Address" not in names and "Framed-IP-Address" not in names and "Class" not in names
    assert encoded(record)["Acct-Authentic"] == ["Local"]
    with pytest.raises(ValueError, match="NAS-IP-Address or a NAS-Identifier"):
        Nas()


def test_without_a_nas_the_client_names_it() -> None:
    names = [name for name, _ in start_record(None, session(), now=T0)]
    assert "NAS-IP-Address" not in names and "NAS-Identifier" not in names and "NAS-Port" in names


@pytest.mark.parametrize(
    ("enum", "attribute"),
    [(TerminateCause, "Acct-Terminate-Cause"), (AcctStatusType, "Acct-Status-Type"), (AcctAuthentic, "Acct-Authentic")],
)
def test_labels_are_the_dictionary_value_names(enum: type[IntEnum], attribute: str) -> None:
    values = load_dictionary().attributes[attribute].values
    for member in enum:
        assert values.GetForward(member.label) == struct.pack("!I", member), member  # type: ignore[attr-defined]


def test_session_time_never_negative_after_a_clock_step() -> None:
    record = stop_record(NAS, session(), Counters(), "idle timeout", now=T0 - 5)
    assert ("Acct-Session-Time", 0) in record


def test_session_ids_are_unique_across_sessions_restarts_and_workers() -> None:
    ids = SessionIds(started=T0, pid=1234)
    first, second = ids.next(), ids.next()
    assert first == f"{int(T0):08X}0004D2" + "00000001"
    assert len(first) == len(second) == 22 and first != second
    restarted = SessionIds(started=T0, pid=1250)  # a restart within the same second: another pid
    worker = SessionIds(started=T0, pid=1235)  # a --workers sibling, same start second
    later = SessionIds(started=T0 + 1, pid=1234)  # a pid reused later
    assert len({first, restarted.next(), worker.next(), later.next()}) == 4


# -- Acct-Terminate-Cause: every end reason the daemon produces ---------------------------------

REASONS = [
    (logtext.terminated_by_peer(), TerminateCause.USER_REQUEST),
    ("call cleared: CCRQ received", TerminateCause.USER_REQUEST),
    ("call cleared: CDN GENERAL_ERROR", TerminateCause.USER_REQUEST),
    ("call cleared: peer sent StopCCRQ (NONE)", TerminateCause.USER_REQUEST),
    ("call cleared: TCP connection closed by peer", TerminateCause.LOST_CARRIER),
    ("call cleared: TCP connection lost: [Errno 104] Connection reset by peer", TerminateCause.LOST_CARRIER),
    ("call cleared: no Echo-Reply within 60 s", TerminateCause.LOST_CARRIER),
    ("Peer not responding", TerminateCause.LOST_CARRIER),
    ("idle timeout", TerminateCause.IDLE_TIMEOUT),
    ("Connect time expired", TerminateCause.SESSION_TIMEOUT),
    (ADMIN_REASON, TerminateCause.ADMIN_RESET),
    ("pypptpd is shutting down", TerminateCause.ADMIN_REBOOT),
    ("call cleared: StopCCRQ sent", TerminateCause.NAS_REQUEST),
    ("call cleared: malformed control message: bad magic cookie", TerminateCause.PORT_ERROR),
    ("call cleared: more than 100 protocol anomalies within 10 s", TerminateCause.PORT_ERROR),
    ("cannot set up the network interface", TerminateCause.PORT_ERROR),
    ("cannot set the MTU of the network interface", TerminateCause.PORT_ERROR),
    ("LCP: the peer renegotiated more than 5 times within 60 s", TerminateCause.PORT_ERROR),
    ("MPPE required but not agreed: peer rejected CCP", TerminateCause.SERVICE_UNAVAILABLE),
    ("CCP went down while MPPE was on", TerminateCause.SERVICE_UNAVAILABLE),
    ("No network protocols running", TerminateCause.SERVICE_UNAVAILABLE),
    ("no network protocol came up within 60 s", TerminateCause.SERVICE_UNAVAILABLE),
    ("LCP: no agreement after 10 Configure-Naks/Rejects of our requests", TerminateCause.SERVICE_UNAVAILABLE),
    ("connection limit 100 reached; no address for this session", TerminateCause.SERVICE_UNAVAILABLE),
    ("no address left in the pool (10 in use)", TerminateCause.SERVICE_UNAVAILABLE),
    ("address 192.168.0.5 is in use by another session", TerminateCause.SERVICE_UNAVAILABLE),
    ("Authentication failed", TerminateCause.USER_ERROR),
    ("peer refused to authenticate", TerminateCause.USER_ERROR),
    ("IP addresses changed on renegotiation", TerminateCause.NAS_REQUEST),
    ("/etc/ppp/ip-up could not be started", TerminateCause.NAS_ERROR),
    ("internal error", TerminateCause.NAS_ERROR),
    ("something nobody wrote down", TerminateCause.NAS_ERROR),
]


@pytest.mark.parametrize(("reason", "cause"), REASONS)
def test_terminate_cause(reason: str, cause: TerminateCause) -> None:
    assert terminate_cause(reason) is cause


def test_dae_disconnect_reason_is_admin_reset() -> None:
    from pypptp.aaa.dae import DISCONNECT_REASON

    assert terminate_cause(DISCONNECT_REASON) is TerminateCause.ADMIN_RESET


def _text(arg: ast.expr) -> str | None:
    """A literal string, or an f-string with ``X`` for each value it formats."""
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        return arg.value
    if isinstance(arg, ast.JoinedStr):
        return "".join(str(v.value) if isinstance(v, ast.Constant) else "X" for v in arg.values)
    return None


def _literal_reasons() -> set[str]:
    """Every literal end reason in the code: the string passed to a session's or link's ``terminate``/
    ``close``/``_close_lcp``, a control connection's ``_close``/``_release(reason=...)`` (which reach the
    session as ``call cleared: REASON``), and the link's ``reason = "..."`` assignments."""
    found: set[str] = set()
    for name in ("aio/session.py", "ppp/link.py", "daemon/manager.py", "ctrl/connection.py"):
        prefix = "call cleared: " if name.startswith("ctrl/") else ""
        for node in ast.walk(ast.parse((PACKAGE / name).read_text())):
            args: list[ast.expr] = []
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                if node.func.attr in ("terminate", "close", "_close"):
                    args = node.args[:1]
                elif node.func.attr == "_close_lcp":
                    args = node.args[1:2]
                args += [k.value for k in node.keywords if k.arg == "reason"]
            elif isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "reason" for t in node.targets
            ):
                args = [node.value]
            found.update(prefix + text for text in map(_text, args) if text is not None)
    return found


NO_SESSION_YET = {
    "call cleared: no X within X s",  # the control connection's establishment timeout: no call yet
    "call cleared: no call within X s",
    "the session could not be started",  # a trace's last word, not an end reason
}


def test_every_end_reason_in_the_code_has_a_deliberate_cause() -> None:
    """A new end reason in the code must get its row in END_CAUSES (the default, NAS-Error, is for what
    nobody foresaw): left are the manager's ``call cleared: {reason}`` wrapper, whose reasons are the
    control connection's (checked with the prefix), and those of connections that never had a session."""
    reasons = _literal_reasons()
    assert {"Peer not responding", "idle timeout", "call cleared: CCRQ received", "call cleared: X"} <= reasons
    unmapped = {r for r in reasons if not any(pattern in r.lower() for pattern, _ in END_CAUSES)}
    assert unmapped - NO_SESSION_YET == {"call cleared: X"}
