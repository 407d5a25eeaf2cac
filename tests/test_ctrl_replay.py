"""Replay a real Windows NT 4 client through our server side of the control connection.

The capture ``tcpdump_tests_pptp.pcap`` (tcpdump's own test suite, decoded by
tcpdump in ``tcpdump_tests_pptp.out``) holds a Windows NT client talking to
pptpd: SCCRQ, SCCRP, OCRQ (Call ID 0, window 64), OCRP, Set-Link-Info, then
FIN.  We feed the client's TCP byte stream, segment by segment and at the
capture's own timestamps, into ``ControlConnection(Role.SERVER, now)`` and
compare each of our replies with the one pptpd really sent.  Every control
message of both directions is also decoded (strictly) with our codec and
printed the way tcpdump prints it, which must reproduce the ``.out`` file.

Two traps in this capture: every frame the server sent appears twice (taken
on the server, outbound frames were seen twice), so segments are deduplicated
by TCP sequence number; and short frames carry Ethernet padding after the IP
packet, so a TCP payload is cut by the IP Total Length, not taken whole.

The capture and tcpdump's decode are public reference data kept in ``tests/fixtures/captures``
(origins and licences in ``tests/fixtures/README.md``).
"""

from __future__ import annotations

import dataclasses
import datetime
import re
from pathlib import Path

import pytest
from scapy.layers.inet import IP, TCP
from scapy.utils import rdpcap

from pypptp.ctrl.connection import ControlConnection, ControlState, Role
from pypptp.ctrl.constants import (
    PPTP_PORT,
    PROTOCOL_VERSION,
    BearerCapability,
    BearerType,
    FramingCapability,
    FramingType,
    GeneralError,
    OutgoingCallResult,
    StartResult,
)
from pypptp.ctrl.events import (
    CallCleared,
    CallEstablished,
    CallState,
    ControlConnectionClosed,
    ControlConnectionEstablished,
    Event,
    ProtocolAnomaly,
)
from pypptp.ctrl.framer import ControlStreamFramer
from pypptp.ctrl.messages import (
    ControlMessage,
    OutgoingCallReply,
    OutgoingCallRequest,
    SetLinkInfo,
    StartControlConnectionReply,
    StartControlConnectionRequest,
    decode_message,
)
from tests import fixtures

PCAP = fixtures.capture("tcpdump_tests_pptp.pcap")
TCPDUMP_OUT = fixtures.capture("tcpdump_tests_pptp.out")


# -- reading the capture ----------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Segment:
    """One TCP segment with payload, as captured."""

    frame: int  # 1-based, as tcpdump numbers the frames in the .out file
    time: float  # capture timestamp, seconds since the epoch
    from_client: bool  # towards port 1723
    seq: int  # absolute TCP sequence number
    payload: bytes


@dataclasses.dataclass(frozen=True)
class Capture:
    segments: list[Segment]  # every frame with a TCP payload, duplicates included
    first_time: float  # the client's SYN
    client_isn: int
    server_isn: int
    fin_time: float  # the server's first FIN
    tcpdump_lines: dict[int, str]  # frame number -> tcpdump's text for a PPTP frame

    def stream(self, *, from_client: bool) -> list[Segment]:
        """One direction's segments, deduplicated by sequence number, in sequence order;
        checked to be contiguous from the initial sequence number."""
        unique: dict[int, Segment] = {}
        for segment in self.segments:
            if segment.from_client != from_client:
                continue
            first = unique.setdefault(segment.seq, segment)
            assert first.payload == segment.payload, f"frames {first.frame} and {segment.frame} differ"
        ordered = sorted(unique.values(), key=lambda s: s.seq)
        expected = (self.client_isn if from_client else self.server_isn) + 1
        for segment in ordered:
            assert segment.seq == expected, f"gap or overlap before frame {segment.frame}"
            expected += len(segment.payload)
        return ordered


def _tcp_payload(ip: IP) -> bytes:
    """The TCP payload cut by the IP Total Length: short frames carry Ethernet padding."""
    tcp = ip[TCP]
    ip_header, tcp_header = ip.ihl * 4, tcp.dataofs * 4
    return bytes(tcp)[tcp_header : ip.len - ip_header]


_OUT_LINE = re.compile(r"^\s*(?P<frame>\d+)\s+(?P<stamp>\S+ \S+) IP .*?: pptp (?P<pptp>.*)$")


def _read_tcpdump_out(path: Path, frame_times: dict[int, float]) -> dict[int, str]:
    lines: dict[int, str] = {}
    for line in path.read_text().splitlines():
        match = _OUT_LINE.match(line)
        if match is None:
            continue
        frame = int(match["frame"])
        stamp = datetime.datetime.fromisoformat(match["stamp"]).replace(tzinfo=datetime.UTC)
        assert stamp.timestamp() == pytest.approx(frame_times[frame], abs=1e-6), f"frame {frame}: not the same frame"
        lines[frame] = match["pptp"]
    return lines


@pytest.fixture(scope="module")
def capture() -> Capture:
    segments: list[Segment] = []
    frame_times: dict[int, float] = {}
    isn: dict[bool, int] = {}
    fin_times: list[float] = []
    for frame, packet in enumerate(rdpcap(str(PCAP)), start=1):
        frame_times[frame] = float(packet.time)
        if IP not in packet or TCP not in packet:
            continue  # the GRE frame
        ip, tcp = packet[IP], packet[TCP]
        from_client = tcp.dport == PPTP_PORT
        if tcp.flags.S:
            isn[from_client] = tcp.seq
        if tcp.flags.F and not from_client:
            fin_times.append(float(packet.time))
        payload = _tcp_payload(ip)
        if payload:
            segments.append(Segment(frame, float(packet.time), from_client, tcp.seq, payload))
    return Capture(
        segments=segments,
        first_time=frame_times[1],
        client_isn=isn[True],
        server_isn=isn[False],
        fin_time=min(fin_times),
        tcpdump_lines=_read_tcpdump_out(TCPDUMP_OUT, frame_times),
    )


# -- tcpdump's way of printing a control message (print-pptp.c, without -v) ---------------------

_SHORT_NAMES = {
    StartControlConnectionRequest: "SCCRQ",
    StartControlConnectionReply: "SCCRP",
    OutgoingCallRequest: "OCRQ",
    OutgoingCallReply: "OCRP",
    SetLinkInfo: "SLI",
}


def _caps(value: int, letters: tuple[tuple[int, str], ...]) -> str:
    return "".join(letter for bit, letter in letters if value & bit)


def tcpdump_text(message: ControlMessage) -> str:
    """The text tcpdump prints after ``pptp`` for the five message types in this capture."""
    parts = [f"CTRL_MSGTYPE={_SHORT_NAMES[type(message)]}"]
    if isinstance(message, StartControlConnectionRequest | StartControlConnectionReply):
        v = message.protocol_version
        parts.append(f"PROTO_VER({v >> 8}.{v & 0xFF})")
        if isinstance(message, StartControlConnectionReply):
            parts += [f"RESULT_CODE({message.result_code:d})", f"ERR_CODE({message.error_code:d})"]
        parts += [
            f"FRAME_CAP({_caps(message.framing_capabilities, ((1, 'A'), (2, 'S')))})",
            f"BEARER_CAP({_caps(message.bearer_capabilities, ((2, 'D'), (1, 'A')))})",
            f"MAX_CHAN({message.maximum_channels})",
            f"FIRM_REV({message.firmware_revision})",
            f"HOSTNAME({message.host_name})",
            f"VENDOR({message.vendor_string})",
        ]
    elif isinstance(message, OutgoingCallRequest):
        bearer = {1: "A", 2: "D", 3: "Any"}.get(message.bearer_type, "?")
        framing = {1: "A", 2: "S", 3: "E"}.get(message.framing_type, "?")
        parts += [
            f"CALL_ID({message.call_id})",
            f"CALL_SER_NUM({message.call_serial_number})",
            f"MIN_BPS({message.minimum_bps})",
            f"MAX_BPS({message.maximum_bps})",
            f"BEARER_TYPE({bearer})",
            f"FRAME_TYPE({framing})",
            f"RECV_WIN({message.packet_recv_window_size})",
            f"PROC_DELAY({message.packet_processing_delay})",
            f"PHONE_NO_LEN({message.phone_number_length})",
            f"PHONE_NO({message.phone_number[: min(64, message.phone_number_length)]})",
            f"SUB_ADDR({message.subaddress})",
        ]
    elif isinstance(message, OutgoingCallReply):
        parts += [
            f"CALL_ID({message.call_id})",
            f"PEER_CALL_ID({message.peer_call_id})",
            f"RESULT_CODE({message.result_code:d})",
            f"ERR_CODE({message.error_code:d})",
            f"CAUSE_CODE({message.cause_code})",
            f"CONN_SPEED({message.connect_speed})",
            f"RECV_WIN({message.packet_recv_window_size})",
            f"PROC_DELAY({message.packet_processing_delay})",
            f"PHY_CHAN_ID({message.physical_channel_id})",
        ]
    else:
        assert isinstance(message, SetLinkInfo)
        parts += [
            f"PEER_CALL_ID({message.peer_call_id})",
            f"SEND_ACCM(0x{message.send_accm:08x})",
            f"RECV_ACCM(0x{message.receive_accm:08x})",
        ]
    return " ".join(parts)


# -- the capture as tcpdump saw it ----------------------------------------------------------


def test_capture_layout(capture: Capture) -> None:
    """What the replay relies on: the server's frames are there twice, the client's once,
    and each payload-carrying segment holds exactly one control message."""
    server_frames = [s.frame for s in capture.segments if not s.from_client]
    client_frames = [s.frame for s in capture.segments if s.from_client]
    assert server_frames == [8, 9, 13, 14]
    assert client_frames == [5, 10, 15]
    assert [len(s.payload) for s in capture.stream(from_client=True)] == [156, 168, 24]
    assert [s.frame for s in capture.stream(from_client=False)] == [8, 13]
    assert [len(s.payload) for s in capture.stream(from_client=False)] == [156, 32]
    assert sorted(capture.tcpdump_lines) == [5, 8, 9, 10, 13, 14, 15]


def test_every_control_message_decodes_as_tcpdump_printed_it(capture: Capture) -> None:
    """Both directions, duplicates included: strict decoding, then tcpdump's rendering."""
    decoded_frames = []
    for segment in capture.segments:
        message = decode_message(segment.payload)  # strict: the Reserved fields are zero
        assert message.nonzero_reserved() == []
        assert tcpdump_text(message) == capture.tcpdump_lines[segment.frame], f"frame {segment.frame}"
        decoded_frames.append(segment.frame)
    assert decoded_frames == sorted(capture.tcpdump_lines)


def test_decoded_values_of_the_windows_nt_session(capture: Capture) -> None:
    """The values tcpdump printed, spelled out field by field."""
    client = [decode_message(s.payload) for s in capture.stream(from_client=True)]
    server = [decode_message(s.payload) for s in capture.stream(from_client=False)]
    assert client == [
        StartControlConnectionRequest(
            protocol_version=PROTOCOL_VERSION,
            framing_capabilities=FramingCapability.ASYNC,
            bearer_capabilities=BearerCapability.ANALOG,
            maximum_channels=0,
            firmware_revision=2160,
            host_name="",
            vendor_string="Microsoft Windows NT",
        ),
        OutgoingCallRequest(
            call_id=0,
            call_serial_number=30760,
            minimum_bps=300,
            maximum_bps=100_000_000,
            bearer_type=BearerType.ANY,
            framing_type=FramingType.ANY,
            packet_recv_window_size=64,
            packet_processing_delay=0,
            phone_number_length=0,
            phone_number="",
            subaddress="",
        ),
        SetLinkInfo(peer_call_id=0, send_accm=0xFFFFFFFF, receive_accm=0xFFFFFFFF),
    ]
    assert server == [
        StartControlConnectionReply(
            protocol_version=PROTOCOL_VERSION,
            result_code=StartResult.SUCCESS,
            error_code=GeneralError.NONE,
            framing_capabilities=0,
            bearer_capabilities=0,
            maximum_channels=1,
            firmware_revision=1,
            host_name="local",
            vendor_string="MoretonBay",
        ),
        OutgoingCallReply(
            call_id=0,
            peer_call_id=0,
            result_code=OutgoingCallResult.CONNECTED,
            error_code=GeneralError.NONE,
            cause_code=0,
            connect_speed=100_000_000,
            packet_recv_window_size=64,
            packet_processing_delay=0,
            physical_channel_id=0,
        ),
    ]


# -- the replay ------------------------------------------------------------------------------


@dataclasses.dataclass
class Step:
    request: Segment
    ours: bytes
    events: list[Event]
    pptpd: bytes  # what pptpd sent after this request and before the client's next segment


def replay(capture: Capture) -> tuple[ControlConnection, list[Step], list[tuple[float, str, ControlMessage]]]:
    trace: list[tuple[float, str, ControlMessage]] = []
    connection = ControlConnection(
        Role.SERVER, capture.first_time, tracer=lambda now, way, message: trace.append((now, way, message))
    )
    requests = capture.stream(from_client=True)
    replies = capture.stream(from_client=False)
    steps = []
    for index, request in enumerate(requests):
        deadline = connection.next_deadline()
        assert deadline is not None and deadline > request.time, "no timer may be due during the capture"
        ours, events = connection.receive(request.payload, request.time)
        until = requests[index + 1].time if index + 1 < len(requests) else capture.fin_time
        pptpd = b"".join(r.payload for r in replies if request.time < r.time < until)
        steps.append(Step(request, ours, events, pptpd))
    return connection, steps, trace


def test_replay_windows_nt_client_through_our_server(capture: Capture) -> None:
    connection, (sccrq, ocrq, sli), trace = replay(capture)

    # SCCRQ -> SCCRP, Success, version 1.0, as pptpd answered.
    ours, theirs = decode_message(sccrq.ours), decode_message(sccrq.pptpd)
    assert isinstance(ours, StartControlConnectionReply) and isinstance(theirs, StartControlConnectionReply)
    assert len(sccrq.ours) == len(sccrq.pptpd) == StartControlConnectionReply.SIZE
    assert ours.result_code is theirs.result_code is StartResult.SUCCESS
    assert ours.error_code is theirs.error_code is GeneralError.NONE
    assert ours.protocol_version == theirs.protocol_version == 0x0100
    start = decode_message(sccrq.request.payload)
    assert isinstance(start, StartControlConnectionRequest)
    assert sccrq.events == [ControlConnectionEstablished(start)]
    assert connection.peer_start == start

    # OCRQ (Call ID 0, window 64, 100 Mbit/s) -> OCRP Connected, as pptpd answered,
    # except that our Call ID is random and never 0 (pptpd's was 0).
    request = decode_message(ocrq.request.payload)
    assert isinstance(request, OutgoingCallRequest)
    assert (request.call_id, request.packet_recv_window_size, request.maximum_bps) == (0, 64, 100_000_000)
    ours, theirs = decode_message(ocrq.ours), decode_message(ocrq.pptpd)
    assert isinstance(ours, OutgoingCallReply) and isinstance(theirs, OutgoingCallReply)
    assert len(ocrq.ours) == len(ocrq.pptpd) == OutgoingCallReply.SIZE
    assert ours.result_code is theirs.result_code is OutgoingCallResult.CONNECTED
    assert ours.error_code is theirs.error_code is GeneralError.NONE
    assert ours.peer_call_id == theirs.peer_call_id == 0  # the client's Call ID 0 is accepted
    assert ours.call_id != 0 and theirs.call_id == 0
    assert ours.packet_recv_window_size == theirs.packet_recv_window_size == 64  # echoed
    assert ours.connect_speed == theirs.connect_speed == 100_000_000  # the client's Maximum BPS
    assert ours.cause_code == theirs.cause_code == 0
    assert ours.packet_processing_delay == theirs.packet_processing_delay == 0
    assert ours.physical_channel_id == theirs.physical_channel_id == 0
    assert len(ocrq.events) == 1 and isinstance(ocrq.events[0], CallEstablished)
    call = ocrq.events[0].call
    assert (call.call_id, call.peer_call_id, call.serial_number) == (ours.call_id, 0, 30760)
    assert (call.state, call.peer_window, call.connect_speed) == (CallState.ESTABLISHED, 64, 100_000_000)

    # SLI naming pptpd's Call ID 0, which is not ours: no reply (pptpd sent none either),
    # reported as an anomaly, nothing else.
    assert sli.ours == sli.pptpd == b""
    assert len(sli.events) == 1 and isinstance(sli.events[0], ProtocolAnomaly)
    assert sli.events[0].message == SetLinkInfo(peer_call_id=0, send_accm=0xFFFFFFFF, receive_accm=0xFFFFFFFF)

    # Still established, the call still up, at the capture's times throughout.
    assert connection.state is ControlState.ESTABLISHED
    assert connection.calls == {call.call_id: call}
    assert [(now, way, type(m)) for now, way, m in trace] == [
        (sccrq.request.time, "in", StartControlConnectionRequest),
        (sccrq.request.time, "out", StartControlConnectionReply),
        (ocrq.request.time, "in", OutgoingCallRequest),
        (ocrq.request.time, "out", OutgoingCallReply),
        (sli.request.time, "in", SetLinkInfo),
    ]


def test_replay_until_the_servers_fin(capture: Capture) -> None:
    """Nothing is due by the time pptpd closed (about 1 s later); closing then clears the call."""
    connection, _, _ = replay(capture)
    assert connection.handle_timer(capture.fin_time) == (b"", [])
    assert connection.state is ControlState.ESTABLISHED
    events = connection.connection_lost(capture.fin_time)
    assert [type(e) for e in events] == [CallCleared, ControlConnectionClosed]
    assert connection.closed and connection.calls == {}


def test_replay_as_one_coalesced_segment(capture: Capture) -> None:
    """The same client bytes arriving in one TCP read give the same replies, in one batch."""
    stream = b"".join(s.payload for s in capture.stream(from_client=True))
    connection = ControlConnection(Role.SERVER, capture.first_time)
    ours, events = connection.receive(stream, capture.segments[-1].time)
    replies = ControlStreamFramer().feed(ours)
    assert [type(r) for r in replies] == [StartControlConnectionReply, OutgoingCallReply]
    assert [type(e) for e in events] == [ControlConnectionEstablished, CallEstablished, ProtocolAnomaly]
    assert connection.state is ControlState.ESTABLISHED
