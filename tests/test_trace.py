"""The structured trace (issue 18), in memory: two links negotiating, each with its tracer.

Checked against the packets themselves: every control packet a side put on the
wire is in its trace as ``sent`` and in the other's as ``rcvd``, in order, with
the decoded fields of the packet; automaton state changes follow RFC 1661's
table; nothing secret is in a trace (the password, the NT-Response, the MPPE
keys); the reader prints the lines pppd's ``debug`` gives (the link's own);
the file writer is bounded and ends with ``truncated`` under a flood.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pypptp.aio.trace import GreTraceWatch, JsonLinesTracer, control_tracer
from pypptp.ctrl.connection import ControlConnection, Role
from pypptp.gre.sequencing import GreCounters
from pypptp.ppp.frame import Protocol, parse_frame
from pypptp.ppp.fsm_table import Event, State, transition
from pypptp.ppp.lcp import AUTH_CHAP_MD5, AUTH_MSCHAP_V1, AUTH_MSCHAP_V2, AUTH_PAP
from pypptp.ppp.link import LinkLog, PppLink
from pypptp.ppp.mppe import start_keys
from pypptp.ppp.packet import Code, ControlPacket, decode_packet, parse_options
from pypptp.ppp.trace import MemoryTracer, TraceEvent, packet_data, redact
from pypptp.trace.reader import format_trace
from tests.test_ppp_link import SECRETS, Wire, client_config, counter32, rng_bytes, server_config

_QUIET = {0x0021, 0x0057, 0x00FD, 0x00FB, 0x002D, 0x002F}
_EVENT_NAMES = {e.value: e for e in Event}
METHODS = (AUTH_MSCHAP_V2, AUTH_MSCHAP_V1, AUTH_CHAP_MD5, AUTH_PAP)


def traced_pair(method: bytes = AUTH_MSCHAP_V2, *, debug: bool = False) -> tuple[Wire, MemoryTracer, MemoryTracer]:
    server_trace, client_trace = MemoryTracer(), MemoryTracer()
    server = PppLink(
        server_config(method), secrets=SECRETS, random_bytes=rng_bytes(1), random32=counter32(1), tracer=server_trace
    )
    client = PppLink(client_config(), random_bytes=rng_bytes(101), random32=counter32(101))
    client.tracer = client_trace  # the attribute works as the keyword does
    if debug:
        server.log_packets = client.log_packets = lambda: True
    wire = Wire(server, client)
    wire.start()
    return wire, server_trace, client_trace


def control_packets(frames: list[bytes]) -> list[tuple[int, bytes]]:
    """(protocol, information) of each control frame, in order."""
    out = []
    for frame in frames:
        protocol, offset = parse_frame(frame)
        if protocol not in _QUIET:
            out.append((protocol, frame[offset:]))
    return out


def packets(trace: MemoryTracer, direction: str) -> list[dict[str, Any]]:
    return [e.data for e in trace.events if e.category == "ppp" and e.name == direction]


def as_json_lines(trace: MemoryTracer) -> str:
    return "".join(json.dumps(e.__dict__) + "\n" for e in trace.events)


@pytest.mark.parametrize("method", METHODS, ids=["mschapv2", "mschapv1", "chap-md5", "pap"])
def test_every_packet_sent_is_traced_as_sent_here_and_rcvd_there_with_its_decoded_fields(method: bytes) -> None:
    wire, server_trace, client_trace = traced_pair(method)
    assert wire.server.network_up is not None
    wire.client.close(wire.now, "done")
    wire.exchange()
    for frames, sender, receiver in (
        (wire.to_client, server_trace, client_trace),
        (wire.to_server, client_trace, server_trace),
    ):
        sent = control_packets(frames)
        assert len(sent) >= 6
        assert packets(sender, "sent") == packets(receiver, "rcvd")
        for (protocol, information), data in zip(sent, packets(sender, "sent"), strict=True):
            packet = decode_packet(information)
            assert (data["proto"], data["code"], data["id"], data["length"]) == (
                protocol,
                packet.code,
                packet.identifier,
                len(information),
            )
            assert data["hex"] == redact(protocol, information).hex()
            if packet.code in (1, 2, 3, 4) and protocol in (Protocol.LCP, Protocol.IPCP, Protocol.CCP):
                assert data["options"] == [[k, v.hex()] for k, v in parse_options(packet.data)]


def test_state_changes_follow_the_rfc1661_table_and_phases_walk_dead_to_network() -> None:
    _, server_trace, client_trace = traced_pair()
    for trace in (server_trace, client_trace):
        changes = [e.data for e in trace.events if e.category == "fsm"]
        for change in changes:
            cell = transition(State[change["old"]], _EVENT_NAMES[change["event"]])
            assert cell is not None and cell.next_state is State[change["new"]], change
        lcp = [(c["old"], c["new"]) for c in changes if c["protocol"] == "LCP"]
        assert lcp[:2] == [("INITIAL", "STARTING"), ("STARTING", "REQ_SENT")]  # Open, then Up (RFC 1661 4.1)
        assert lcp[-1][1] == "OPENED"
        assert {c["protocol"] for c in changes} == {"LCP", "CCP", "IPCP"}
        phases = [e.data["new"] for e in trace.events if e.category == "phase"]
        assert phases == ["ESTABLISH", "AUTHENTICATE", "NETWORK"]
        times = [e.time for e in trace.events]
        assert times == sorted(times)
    results = [e.data for e in server_trace.events if e.category == "auth" and e.name == "result"]
    assert results == [
        {
            "method": "MS-CHAP-V2",
            "authenticating": "peer",
            "success": True,
            "peer": "alice",
            "message": results[0]["message"],
            "mppe_keys": True,
        }
    ]
    (keys,) = [e.data for e in server_trace.events if e.category == "mppe"]
    assert keys == {"send_bits": 128, "send_stateful": False, "receive_bits": 128, "receive_stateful": False}


@pytest.mark.parametrize("method", METHODS, ids=["mschapv2", "mschapv1", "chap-md5", "pap"])
def test_no_password_response_or_key_is_in_a_trace(method: bytes) -> None:
    wire, server_trace, client_trace = traced_pair(method)
    password = b"s3cret pass"
    secrets = [password, password.decode().encode("utf-16-le")]
    auth_packets = [
        (p, info) for p, info in control_packets(wire.to_server + wire.to_client) if p in (Protocol.CHAP, Protocol.PAP)
    ]
    assert auth_packets
    for protocol, information in auth_packets:
        packet = decode_packet(information)
        if protocol == Protocol.CHAP and packet.code in (1, 2):
            secrets.append(packet.data[1 : 1 + packet.data[0]])  # every Challenge and Response value
    keys = wire.server.mppe_keys
    if method in (AUTH_MSCHAP_V2, AUTH_MSCHAP_V1):
        assert keys is not None and wire.server.encryptor is not None
        secrets += [keys.nt_response, keys.password_hash, keys.password_hash_hash, keys.challenge]
        secrets += [k for k in start_keys(keys, 128, server=True)]
    text = as_json_lines(server_trace) + as_json_lines(client_trace)
    for secret in secrets:
        assert len(secret) >= 8
        assert secret.hex() not in text and secret.hex().upper() not in text
        assert secret.decode("latin-1") not in text
    # and the test can fail: the raw packets do hold them
    raw = "".join(info.hex() for _, info in auth_packets)
    assert any(secret.hex() in raw for secret in secrets[2:] or secrets[:1])


def test_redaction_keeps_lengths_and_clears_pap_passwords_and_chap_values() -> None:
    pap = ControlPacket(Code.CONFIGURE_REQUEST, 7, b"\x05alice\x06secret").encode()
    assert redact(Protocol.PAP, pap) == ControlPacket(1, 7, b"\x05alice\x06" + bytes(6)).encode()
    response = ControlPacket(2, 1, b"\x04\xde\xad\xbe\xefalice").encode()
    assert redact(Protocol.CHAP, response) == ControlPacket(2, 1, b"\x04" + bytes(4) + b"alice").encode()
    success = ControlPacket(3, 1, b"S=0123456789ABCDEF M=ok").encode()
    assert redact(Protocol.CHAP, success) == ControlPacket(3, 1, b"S=0000000000000000 M=ok").encode()
    for bad in (b"", b"\x02\x01", b"\x02\x01\x00\x09\xff", b"\x01\x01\x00\x06\x09"):  # truncated: no exception
        assert len(redact(Protocol.CHAP, bad)) == len(bad) and len(redact(Protocol.PAP, bad)) == len(bad)
        packet_data(Protocol.CHAP, bad)


def _zero_secrets(line: str) -> str:
    """The link's own debug line with the values a trace stores zeroed, zeroed."""
    if "[CHAP " not in line and "[PAP " not in line:
        return line
    line = re.sub(r"<([0-9a-f]+)>", lambda m: "<" + "0" * len(m.group(1)) + ">", line)
    line = re.sub(r"([SC]=)([0-9A-Fa-f]+)", lambda m: m.group(1) + "0" * len(m.group(2)), line)
    return re.sub(r'(passwd=)"([^"]*)"', lambda m: m.group(1) + '"' + "\\000" * len(m.group(2)) + '"', line)


@pytest.mark.parametrize("method", METHODS, ids=["mschapv2", "mschapv1", "chap-md5", "pap"])
def test_the_reader_prints_the_lines_pppd_debug_logs(method: bytes) -> None:
    wire, server_trace, _ = traced_pair(method, debug=True)
    logged = [
        e.message
        for e in wire.server_events
        if isinstance(e, LinkLog) and e.level == "debug" and e.message.startswith(("sent [", "rcvd ["))
    ]
    events = [json.loads(json.dumps(e.__dict__ | {"event": e.name})) for e in server_trace.events]
    printed = list(format_trace(events, times=False, only={"ppp"}))
    assert len(printed) > 8
    assert printed == [_zero_secrets(line) for line in logged]
    timed = list(format_trace(events, only={"fsm"}))
    assert re.match(r" *0\.000000 LCP: INITIAL -> STARTING \(Open\)$", timed[0])


def test_nothing_is_traced_by_default_and_tracing_changes_nothing_on_the_wire() -> None:
    link = PppLink(server_config())
    assert link.tracer is None and link.lcp.tracer is None
    plain = Wire(
        PppLink(server_config(), secrets=SECRETS, random_bytes=rng_bytes(1), random32=counter32(1)),
        PppLink(client_config(), random_bytes=rng_bytes(101), random32=counter32(101)),
    )
    plain.start()
    traced, _, _ = traced_pair()
    assert plain.to_client == traced.to_client and plain.to_server == traced.to_server
    assert all(ncp.automaton.tracer is not None for ncp in traced.server.ncps.values())


def test_data_packets_are_not_traced() -> None:
    wire, server_trace, _ = traced_pair()
    before = len(server_trace.events)
    for _ in range(50):
        frame = wire.client.send_data(Protocol.IPV4, b"\x45" + bytes(39))
        assert frame is not None
        wire.server.receive_frame(frame, wire.now)
    assert len(server_trace.events) == before


def test_control_messages_both_ways_with_their_fields() -> None:
    server_trace, client_trace = MemoryTracer(), MemoryTracer()
    server = ControlConnection(Role.SERVER, 0.0, tracer=control_tracer(server_trace))
    client = ControlConnection(Role.CLIENT, 0.0, tracer=control_tracer(client_trace))

    def exchange() -> None:
        data, _ = client.drain()
        out, _ = server.receive(data, 0.1)
        client.receive(out, 0.2)

    client.start(0.0)
    exchange()
    client.open_call(0.3, window=64)
    exchange()
    sent, rcvd = (
        [e.data for e in client_trace.events if e.name == "sent"],
        [e.data for e in server_trace.events if e.name == "rcvd"],
    )
    assert [m["type"] for m in sent] == ["StartControlConnectionRequest", "OutgoingCallRequest"]
    assert sent == rcvd
    replies = [e.data for e in server_trace.events if e.name == "sent"]
    assert [m["type"] for m in replies] == ["StartControlConnectionReply", "OutgoingCallReply"]
    assert replies[1]["result_code"] == 1 and replies[1]["peer_call_id"] == sent[1]["call_id"]
    assert replies == [e.data for e in client_trace.events if e.name == "rcvd"]
    assert all(e.category == "ctrl" for e in server_trace.events + client_trace.events)


def _read(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_the_file_has_a_header_relative_times_and_an_end(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    trace = JsonLinesTracer(str(path), start=100.0, header={"peer": "198.18.0.2", "call_id": 5})
    trace.event(100.25, "ppp", "sent", {"name": 'a "quoted"\nname'})
    trace.close(101.0, reason="done").result(timeout=5)
    header, event, end = _read(path)
    assert header["event"] == "header" and header["time"] == 0.0
    assert header["data"]["version"] == 1 and header["data"]["peer"] == "198.18.0.2"
    assert header["data"]["call_id"] == 5 and "start" in header["data"] and "pypptp" in header["data"]
    assert event == {"time": 0.25, "category": "ppp", "event": "sent", "data": {"name": 'a "quoted"\nname'}}
    assert end["event"] == "end" and end["data"]["reason"] == "done" and end["time"] == 1.0
    assert path.stat().st_mode & 0o777 == 0o600  # user names and addresses: root's eyes only
    again = JsonLinesTracer(str(path), start=0.0)  # never over an existing file
    again.close().result(timeout=5)
    assert again.error is not None and _read(path)[0]["data"]["peer"] == "198.18.0.2"


@pytest.mark.parametrize("bound", ["events", "bytes"])
def test_the_file_is_bounded_and_says_truncated(tmp_path: Path, bound: str) -> None:
    path = tmp_path / "t.jsonl"
    if bound == "events":
        trace = JsonLinesTracer(str(path), start=0.0, max_events=50)
    else:
        trace = JsonLinesTracer(str(path), start=0.0, max_bytes=4000)
    for i in range(10_000):
        trace.event(i / 1000, "ppp", "rcvd", {"proto": 0xC021, "code": 9, "id": i & 0xFF, "hex": "09" * 16})
    trace.close(10.0).result(timeout=5)
    events = _read(path)
    assert events[-2]["event"] == "truncated" and events[-1]["event"] == "end"
    assert events[-1]["data"]["dropped"] == 10_000 - (len(events) - 3)
    if bound == "events":
        assert len(events) <= 52
    else:
        assert path.stat().st_size < 4000 + 200


def test_a_file_that_cannot_be_written_costs_the_session_nothing(tmp_path: Path) -> None:
    trace = JsonLinesTracer(str(tmp_path / "missing" / "t.jsonl"), start=0.0)
    trace.event(0.0, "ppp", "sent", {})
    trace.close().result(timeout=5)
    assert trace.error is not None


def test_gre_anomalies_are_traced_from_the_counters() -> None:
    async def run() -> list[TraceEvent]:
        tracer, counters = MemoryTracer(), GreCounters()
        watch = GreTraceWatch(tracer, counters, asyncio.get_running_loop())
        counters.lost += 3
        counters.received += 100
        watch._report(1.0)
        watch._report(2.0)  # nothing new: nothing traced
        counters.duplicates += 1
        watch.stop()
        return tracer.events

    events = asyncio.run(run())
    assert [(e.name, e.data) for e in events[:2]] == [("anomalies", {"lost": 3}), ("anomalies", {"duplicates": 1})]
    assert events[2].name == "counters" and events[2].data["received"] == 100


def test_python_m_pypptp_trace_prints_the_file(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    trace = JsonLinesTracer(str(path), start=0.0, header={"peer": "198.18.0.2"})
    lcp = ControlPacket(Code.CONFIGURE_REQUEST, 1, bytes.fromhex("010405780506deadbeef")).encode()
    trace.event(0.5, "ppp", "sent", packet_data(Protocol.LCP, lcp))
    trace.event(0.5, "fsm", "state", {"protocol": "LCP", "event": "RCA", "old": "REQ_SENT", "new": "ACK_RCVD"})
    trace.close(1.0).result(timeout=5)
    with path.open("a") as file:
        file.write("not json\n")  # skipped
    result = subprocess.run(
        [sys.executable, "-m", "pypptp.trace", str(path), "--no-times", "--only", "ppp", "--only", "fsm"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.splitlines() == [
        "sent [LCP ConfReq id=0x1 <mru 1400> <magic 0xdeadbeef>]",
        "LCP: REQ_SENT -> ACK_RCVD (RCA)",
    ]
    timed = subprocess.run(
        [sys.executable, "-m", "pypptp.trace", str(path)], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert timed[0].startswith("  0.000000 # ")
    assert timed[1] == "  0.500000 sent [LCP ConfReq id=0x1 <mru 1400> <magic 0xdeadbeef>]"
    missing = [sys.executable, "-m", "pypptp.trace", str(tmp_path / "none")]
    assert subprocess.run(missing, capture_output=True).returncode == 1


def test_automaton_anomalies_are_traced() -> None:
    wire, server_trace, _ = traced_pair()
    wire.server.lcp.up(wire.now)  # Up in Opened: illegal (RFC 1661's table has no such cell)
    wire.server.handle_timer(wire.now)  # the link collects what the automaton reported
    anomalies = [e.data for e in server_trace.events if e.category == "fsm" and e.name == "anomaly"]
    assert anomalies == [{"protocol": "LCP", "text": "LCP: event Up is illegal in state OPENED"}]
