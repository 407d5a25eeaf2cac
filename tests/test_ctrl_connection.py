"""The sans-IO control connection (RFC 2637 section 3), both roles, with explicit times."""

from __future__ import annotations

import dataclasses
import inspect
from typing import NamedTuple

import pytest

from pypptp.ctrl.callids import CallIdAllocator
from pypptp.ctrl.connection import TRANSITIONS, ControlConfig, ControlConnection, ControlState, LocalProtocolError, Role
from pypptp.ctrl.constants import (
    ControlMessageType,
    DisconnectResult,
    EchoResult,
    GeneralError,
    IncomingCallResult,
    OutgoingCallResult,
    StartResult,
    StopReason,
    StopResult,
)
from pypptp.ctrl.events import (
    CallCleared,
    CallEstablished,
    CallRefused,
    CallState,
    ControlConnectionClosed,
    ControlConnectionEstablished,
    EchoAnswered,
    Event,
    ProtocolAnomaly,
    SetLinkInfoReceived,
    StartRefused,
    WanErrorReceived,
)
from pypptp.ctrl.framer import ControlStreamFramer
from pypptp.ctrl.messages import (
    CallClearRequest,
    CallDisconnectNotify,
    ControlMessage,
    EchoReply,
    EchoRequest,
    IncomingCallConnected,
    IncomingCallReply,
    IncomingCallRequest,
    OutgoingCallReply,
    OutgoingCallRequest,
    SetLinkInfo,
    StartControlConnectionReply,
    StartControlConnectionRequest,
    StopControlConnectionReply,
    StopControlConnectionRequest,
    WanErrorNotify,
)


def parse(data: bytes) -> list[ControlMessage]:
    return ControlStreamFramer().feed(data)


def only(data: bytes) -> ControlMessage:
    messages = parse(data)
    assert len(messages) == 1, messages
    return messages[0]


def of(events: list[Event], kind: type) -> list:
    return [e for e in events if isinstance(e, kind)]


def established_server(now: float = 0.0, **config: object) -> ControlConnection:
    conn = ControlConnection(Role.SERVER, now, config=ControlConfig(**config))  # type: ignore[arg-type]
    out, events = conn.receive(StartControlConnectionRequest().encode(), now)
    assert isinstance(only(out), StartControlConnectionReply)
    assert of(events, ControlConnectionEstablished)
    return conn


def server_with_call(now: float = 0.0, peer_call_id: int = 0, **config: object) -> tuple[ControlConnection, int]:
    conn = established_server(now, **config)
    out, _events = conn.receive(OutgoingCallRequest(call_id=peer_call_id).encode(), now)
    reply = only(out)
    assert isinstance(reply, OutgoingCallReply) and reply.result_code is OutgoingCallResult.CONNECTED
    return conn, reply.call_id


def established_client(now: float = 0.0) -> ControlConnection:
    conn = ControlConnection(Role.CLIENT, now)
    conn.start(now)
    assert isinstance(only(conn.drain()[0]), StartControlConnectionRequest)
    _, events = conn.receive(StartControlConnectionReply(result_code=StartResult.SUCCESS).encode(), now)
    assert of(events, ControlConnectionEstablished)
    return conn


def client_with_call(now: float = 0.0, server_call_id: int = 777) -> tuple[ControlConnection, int]:
    conn = established_client(now)
    call = conn.open_call(now)
    ocrq = only(conn.drain()[0])
    assert isinstance(ocrq, OutgoingCallRequest) and ocrq.call_id == call.call_id
    reply = OutgoingCallReply(
        call_id=server_call_id, peer_call_id=call.call_id, result_code=OutgoingCallResult.CONNECTED
    )
    _, events = conn.receive(reply.encode(), now)
    assert of(events, CallEstablished)
    return conn, call.call_id


# -- server: establishment --------------------------------------------------------------


def test_sccrq_gets_sccrp_success_with_our_identity() -> None:
    conn = ControlConnection(Role.SERVER, 0.0, config=ControlConfig(host_name="vpn", vendor_string="v"))
    out, events = conn.receive(StartControlConnectionRequest(host_name="win", vendor_string="MS").encode(), 1.0)
    reply = only(out)
    assert isinstance(reply, StartControlConnectionReply)
    assert (reply.result_code, reply.error_code, reply.protocol_version) == (StartResult.SUCCESS, 0, 0x0100)
    assert (reply.host_name, reply.vendor_string, reply.maximum_channels) == ("vpn", "v", 1)
    assert conn.state is ControlState.ESTABLISHED
    [established] = of(events, ControlConnectionEstablished)
    assert established.peer_start.host_name == "win"


def test_duplicate_sccrq_gets_result_3_and_the_connection_stays() -> None:
    conn = established_server()
    out, events = conn.receive(StartControlConnectionRequest().encode(), 1.0)
    reply = only(out)
    assert isinstance(reply, StartControlConnectionReply) and reply.result_code is StartResult.ALREADY_EXISTS
    assert conn.state is ControlState.ESTABLISHED and of(events, ProtocolAnomaly)


@pytest.mark.parametrize("version", [0x0000, 0x0001, 0x00FF, 0x0101, 0x0200, 0xFFFF])
def test_unsupported_version_gets_result_5_and_close(version: int) -> None:
    conn = ControlConnection(Role.SERVER, 0.0)
    out, events = conn.receive(StartControlConnectionRequest(protocol_version=version).encode(), 0.5)
    reply = only(out)
    assert isinstance(reply, StartControlConnectionReply)
    assert reply.result_code is StartResult.BAD_PROTOCOL_VERSION and reply.protocol_version == 0x0100
    assert conn.closed and of(events, ControlConnectionClosed)


def test_first_message_deadline() -> None:
    conn = ControlConnection(Role.SERVER, 100.0, config=ControlConfig(establish_timeout=10))
    assert conn.next_deadline() == 110.0
    assert conn.handle_timer(109.9) == (b"", [])
    out, events = conn.handle_timer(110.0)
    assert out == b"" and conn.closed
    assert of(events, ControlConnectionClosed)[0].reason == "no SCCRQ within 10 s"
    assert conn.next_deadline() is None


def test_partial_sccrq_does_not_extend_the_deadline() -> None:
    conn = ControlConnection(Role.SERVER, 0.0)
    conn.receive(StartControlConnectionRequest().encode()[:100], 5.0)
    assert conn.next_deadline() == 10.0
    conn.handle_timer(10.0)
    assert conn.closed


@pytest.mark.parametrize(
    ("request_message", "reply_type"),
    [
        (OutgoingCallRequest(call_id=9), OutgoingCallReply),
        (EchoRequest(identifier=5), EchoReply),
        (CallClearRequest(call_id=9), CallDisconnectNotify),
    ],
)
def test_requests_before_sccrq_get_not_connected(request_message: ControlMessage, reply_type: type) -> None:
    conn = ControlConnection(Role.SERVER, 0.0)
    out, events = conn.receive(request_message.encode(), 1.0)
    reply = only(out)
    assert isinstance(reply, reply_type)
    assert reply.result_code == 2 and reply.error_code is GeneralError.NOT_CONNECTED  # type: ignore[attr-defined]
    assert conn.state is ControlState.IDLE and of(events, ProtocolAnomaly)
    assert conn.calls == {}


def test_stopccrq_before_sccrq_is_answered_and_closes() -> None:
    conn = ControlConnection(Role.SERVER, 0.0)
    out, _ = conn.receive(StopControlConnectionRequest().encode(), 1.0)
    assert isinstance(only(out), StopControlConnectionReply) and conn.closed


def test_other_message_before_sccrq_closes_without_reply() -> None:
    conn = ControlConnection(Role.SERVER, 0.0)
    out, events = conn.receive(SetLinkInfo(peer_call_id=1).encode(), 1.0)
    assert out == b"" and conn.closed
    assert "SET_LINK_INFO in state idle" in of(events, ControlConnectionClosed)[0].reason


# -- server: calls ------------------------------------------------------------------------


def test_ocrq_with_call_id_0_is_accepted_and_window_echoed() -> None:
    conn = established_server()
    ocrq = OutgoingCallRequest(call_id=0, call_serial_number=30760, maximum_bps=64000, packet_recv_window_size=3)
    out, events = conn.receive(ocrq.encode(), 1.0)
    reply = only(out)
    assert isinstance(reply, OutgoingCallReply)
    assert reply.result_code is OutgoingCallResult.CONNECTED and reply.error_code is GeneralError.NONE
    assert reply.peer_call_id == 0 and reply.call_id != 0
    assert reply.packet_recv_window_size == 3 and reply.connect_speed == 64000
    [up] = of(events, CallEstablished)
    assert up.call.call_id == reply.call_id and up.call.peer_call_id == 0 and up.call.serial_number == 30760
    assert reply.call_id in conn.call_ids and conn.calls[reply.call_id].state is CallState.ESTABLISHED


def test_configured_connect_speed() -> None:
    conn = established_server(connect_speed=115200)
    reply = only(conn.receive(OutgoingCallRequest(call_id=1).encode(), 1.0)[0])
    assert isinstance(reply, OutgoingCallReply) and reply.connect_speed == 115200


def test_second_call_beyond_the_limit_gets_no_resource() -> None:
    conn, first = server_with_call()
    out, events = conn.receive(OutgoingCallRequest(call_id=5).encode(), 1.0)
    reply = only(out)
    assert isinstance(reply, OutgoingCallReply)
    assert (reply.result_code, reply.error_code, reply.call_id) == (
        OutgoingCallResult.GENERAL_ERROR,
        GeneralError.NO_RESOURCE,
        0,
    )
    assert list(conn.calls) == [first] and of(events, CallRefused)


def test_duplicate_peer_call_id_gets_bad_call_id() -> None:
    conn, _ = server_with_call(peer_call_id=42, max_calls=4)
    reply = only(conn.receive(OutgoingCallRequest(call_id=42).encode(), 1.0)[0])
    assert isinstance(reply, OutgoingCallReply) and reply.error_code is GeneralError.BAD_CALL_ID
    reply = only(conn.receive(OutgoingCallRequest(call_id=43).encode(), 1.0)[0])
    assert isinstance(reply, OutgoingCallReply) and reply.result_code is OutgoingCallResult.CONNECTED


def test_out_of_call_ids_across_the_server_gets_no_resource() -> None:
    shared = CallIdAllocator(capacity=1)
    a = ControlConnection(Role.SERVER, 0.0, call_ids=shared)
    b = ControlConnection(Role.SERVER, 0.0, call_ids=shared)
    for conn in (a, b):
        conn.receive(StartControlConnectionRequest().encode(), 0.0)
    assert only(a.receive(OutgoingCallRequest(call_id=1).encode(), 0.0)[0]).result_code == 1  # type: ignore[attr-defined]
    reply = only(b.receive(OutgoingCallRequest(call_id=1).encode(), 0.0)[0])
    assert isinstance(reply, OutgoingCallReply) and reply.error_code is GeneralError.NO_RESOURCE
    a.receive(StopControlConnectionRequest().encode(), 1.0)  # frees a's call ID
    reply = only(b.receive(OutgoingCallRequest(call_id=1).encode(), 1.0)[0])
    assert isinstance(reply, OutgoingCallReply) and reply.result_code is OutgoingCallResult.CONNECTED


def test_ccrq_gets_cdn_with_our_call_id_and_releases_it() -> None:
    conn, ours = server_with_call(peer_call_id=7)
    out, events = conn.receive(CallClearRequest(call_id=7).encode(), 2.0)
    cdn = only(out)
    assert isinstance(cdn, CallDisconnectNotify)
    assert cdn.call_id == ours and cdn.result_code is DisconnectResult.REQUEST
    [cleared] = of(events, CallCleared)
    assert cleared.by_peer and cleared.call.state is CallState.CLEARED
    assert conn.calls == {} and ours not in conn.call_ids and conn.state is ControlState.ESTABLISHED


def test_ccrq_for_unknown_call_gets_cdn_bad_call_id() -> None:
    conn, ours = server_with_call(peer_call_id=7)
    cdn = only(conn.receive(CallClearRequest(call_id=8).encode(), 2.0)[0])
    assert isinstance(cdn, CallDisconnectNotify)
    assert (cdn.call_id, cdn.result_code, cdn.error_code) == (
        0,
        DisconnectResult.GENERAL_ERROR,
        GeneralError.BAD_CALL_ID,
    )
    assert ours in conn.calls


def test_set_link_info_is_accepted_without_reply() -> None:
    conn, ours = server_with_call()
    out, events = conn.receive(SetLinkInfo(peer_call_id=ours, send_accm=0, receive_accm=0).encode(), 1.0)
    assert out == b""
    [sli] = of(events, SetLinkInfoReceived)
    assert sli.call.send_accm == 0 and sli.call.receive_accm == 0
    out, events = conn.receive(SetLinkInfo(peer_call_id=ours ^ 1).encode(), 1.0)
    assert out == b"" and of(events, ProtocolAnomaly) and conn.state is ControlState.ESTABLISHED


def test_incoming_call_request_is_refused() -> None:
    conn = established_server()
    reply = only(conn.receive(IncomingCallRequest(call_id=3).encode(), 1.0)[0])
    assert isinstance(reply, IncomingCallReply)
    assert reply.result_code is IncomingCallResult.DO_NOT_ACCEPT and reply.peer_call_id == 3


@pytest.mark.parametrize(
    "message",
    [
        WanErrorNotify(peer_call_id=1),
        OutgoingCallReply(call_id=1, peer_call_id=1, result_code=OutgoingCallResult.CONNECTED),
        CallDisconnectNotify(call_id=1, result_code=DisconnectResult.REQUEST),
        StartControlConnectionReply(result_code=StartResult.SUCCESS),
        IncomingCallReply(call_id=1, peer_call_id=1, result_code=IncomingCallResult.CONNECT),
        IncomingCallConnected(peer_call_id=1),
    ],
)
def test_message_a_server_never_receives_stops_the_connection(message: ControlMessage) -> None:
    conn, ours = server_with_call()
    out, events = conn.receive(message.encode(), 5.0)
    assert isinstance(only(out), StopControlConnectionRequest)
    assert conn.state is ControlState.WAIT_STOP_REPLY and conn.calls == {} and ours not in conn.call_ids
    assert of(events, ProtocolAnomaly) and of(events, CallCleared)
    assert conn.next_deadline() == 65.0
    assert conn.handle_timer(64.9) == (b"", [])
    _, events = conn.handle_timer(65.0)
    assert conn.closed and "no StopCCRP within 60 s" in of(events, ControlConnectionClosed)[0].reason


def test_peer_stopccrq_clears_calls_and_closes() -> None:
    conn, ours = server_with_call()
    out, events = conn.receive(StopControlConnectionRequest(reason=StopReason.STOP_LOCAL_SHUTDOWN).encode(), 3.0)
    reply = only(out)
    assert isinstance(reply, StopControlConnectionReply) and reply.result_code is StopResult.OK
    [cleared] = of(events, CallCleared)
    assert cleared.by_peer and cleared.call.call_id == ours and ours not in conn.call_ids
    assert conn.closed and of(events, ControlConnectionClosed)[0].by_peer


def test_stopccrq_reason_0_from_accel_ppp_is_accepted() -> None:
    conn = established_server()
    out, _ = conn.receive(StopControlConnectionRequest(reason=StopReason.UNSPECIFIED).encode(), 1.0)
    assert isinstance(only(out), StopControlConnectionReply) and conn.closed


def test_local_stop_sends_cdn_then_stopccrq_and_waits_for_stopccrp() -> None:
    conn, ours = server_with_call()
    conn.stop(10.0, StopReason.STOP_LOCAL_SHUTDOWN)
    out, events = conn.drain()
    cdn, stop = parse(out)
    assert isinstance(cdn, CallDisconnectNotify) and cdn.call_id == ours
    assert cdn.result_code is DisconnectResult.ADMIN_SHUTDOWN
    assert isinstance(stop, StopControlConnectionRequest) and stop.reason is StopReason.STOP_LOCAL_SHUTDOWN
    assert conn.state is ControlState.WAIT_STOP_REPLY and of(events, CallCleared)
    # an Echo-Request is still answered while stopping; other messages are ignored
    assert isinstance(only(conn.receive(EchoRequest(identifier=1).encode(), 11.0)[0]), EchoReply)
    assert conn.receive(OutgoingCallRequest(call_id=1).encode(), 11.0)[0] == b""
    _, events = conn.receive(StopControlConnectionReply().encode(), 12.0)
    assert conn.closed and not of(events, ControlConnectionClosed)[0].by_peer


def test_server_clear_call_sends_cdn() -> None:
    conn, ours = server_with_call()
    conn.clear_call(ours, 1.0, DisconnectResult.LOST_CARRIER)
    out, events = conn.drain()
    cdn = only(out)
    assert isinstance(cdn, CallDisconnectNotify) and cdn.result_code is DisconnectResult.LOST_CARRIER
    assert of(events, CallCleared) and conn.calls == {}


def test_connection_lost_releases_everything() -> None:
    shared = CallIdAllocator()
    conn = ControlConnection(Role.SERVER, 0.0, call_ids=shared, config=ControlConfig(max_calls=3))
    conn.receive(StartControlConnectionRequest().encode(), 0.0)
    for peer in (1, 2, 3):
        conn.receive(OutgoingCallRequest(call_id=peer).encode(), 0.0)
    assert len(shared) == 3
    events = conn.connection_lost(1.0, "reset")
    assert len(of(events, CallCleared)) == 3 and len(shared) == 0
    assert conn.closed and conn.next_deadline() is None
    assert conn.receive(StartControlConnectionRequest().encode(), 2.0) == (b"", [])


# -- keepalive (section 3.1.4) ------------------------------------------------------------


def test_echo_request_is_answered_with_its_identifier() -> None:
    conn = established_server()
    reply = only(conn.receive(EchoRequest(identifier=0xDEADBEEF).encode(), 1.0)[0])
    assert isinstance(reply, EchoReply)
    assert (reply.identifier, reply.result_code, reply.error_code) == (0xDEADBEEF, EchoResult.OK, GeneralError.NONE)


def test_idle_60s_sends_echo_and_no_reply_in_60s_closes() -> None:
    conn = established_server(0.0, call_timeout=0)  # the echo timer alone (a call would do the same)
    assert conn.next_deadline() == 60.0
    conn.receive(SetLinkInfo(peer_call_id=99).encode(), 30.0)  # any message resets the idle timer
    assert conn.next_deadline() == 90.0
    assert conn.handle_timer(89.0) == (b"", [])
    out, _ = conn.handle_timer(90.0)
    echo = only(out)
    assert isinstance(echo, EchoRequest)
    assert conn.next_deadline() == 150.0
    assert conn.handle_timer(149.0) == (b"", [])
    _, events = conn.handle_timer(150.0)
    assert conn.closed and of(events, ControlConnectionClosed)[0].reason == "no Echo-Reply within 60 s"


def test_echo_reply_rearms_the_idle_timer() -> None:
    conn = established_server(0.0, call_timeout=0)
    echo = only(conn.handle_timer(60.0)[0])
    assert isinstance(echo, EchoRequest)
    _, events = conn.receive(EchoReply(identifier=echo.identifier ^ 1).encode(), 61.0)
    assert of(events, ProtocolAnomaly) and conn.next_deadline() == 120.0  # wrong identifier
    _, events = conn.receive(EchoReply(identifier=echo.identifier).encode(), 62.0)
    [answered] = of(events, EchoAnswered)
    assert answered.round_trip == pytest.approx(2.0)
    assert conn.next_deadline() == 122.0
    second = only(conn.handle_timer(122.0)[0])
    assert isinstance(second, EchoRequest) and second.identifier != echo.identifier


def test_echo_can_be_disabled() -> None:
    conn = established_server(0.0, echo_interval=0, call_timeout=0)
    assert conn.next_deadline() is None
    conn, _ = server_with_call(0.0, echo_interval=0)
    assert conn.next_deadline() is None


def test_an_established_connection_without_a_call_is_stopped() -> None:
    """SCCRQ, then silence: pptpd keeps such a connection for as long as it answers echoes; here it
    gets ``call_timeout`` seconds to place its call, then a StopCCRQ and the close."""
    conn = established_server(0.0)
    assert conn.next_deadline() == 10.0
    _, events = conn.receive(EchoRequest(identifier=1).encode(), 9.0)  # answering echoes does not help
    assert conn.next_deadline() == 10.0
    out, events = conn.handle_timer(10.0)
    assert isinstance(only(out), StopControlConnectionRequest)
    assert conn.closed and of(events, ControlConnectionClosed)[0].reason == "no call within 10 s"


def test_the_call_deadline_stops_with_a_call_and_starts_again_when_it_is_cleared() -> None:
    conn, our_id = server_with_call(0.0, peer_call_id=7)
    assert conn.next_deadline() == 60.0  # only the echo timer
    out, _ = conn.receive(CallClearRequest(call_id=7).encode(), 30.0)
    assert isinstance(only(out), CallDisconnectNotify)
    assert conn.next_deadline() == 40.0  # a new call may come, within call_timeout
    out, _ = conn.receive(OutgoingCallRequest(call_id=8).encode(), 39.0)
    assert isinstance(only(out), OutgoingCallReply)
    assert conn.next_deadline() == 99.0
    assert our_id not in conn.calls


# -- malformed and unusual input ----------------------------------------------------------


def test_malformed_bytes_close_without_reply() -> None:
    conn, ours = server_with_call()
    out, events = conn.receive(b"\x00\x10\x00\x01\xde\xad\xbe\xef", 1.0)
    assert out == b"" and conn.closed
    assert "bad Magic Cookie" in of(events, ControlConnectionClosed)[0].reason
    assert ours not in conn.call_ids


def test_valid_messages_before_a_malformed_one_are_still_handled() -> None:
    conn = ControlConnection(Role.SERVER, 0.0)
    data = StartControlConnectionRequest().encode() + EchoRequest(identifier=3).encode() + b"\x00\x01"
    out, events = conn.receive(data, 1.0)
    sccrp, echo_reply = parse(out)
    assert isinstance(sccrp, StartControlConnectionReply) and isinstance(echo_reply, EchoReply)
    assert of(events, ControlConnectionEstablished) and conn.closed


def test_nonzero_reserved_is_tolerated_and_reported_by_default() -> None:
    conn = ControlConnection(Role.SERVER, 0.0)
    out, events = conn.receive(StartControlConnectionRequest(reserved0=1, reserved1=2).encode(), 0.0)
    assert isinstance(only(out), StartControlConnectionReply) and conn.state is ControlState.ESTABLISHED
    assert "reserved0, reserved1" in of(events, ProtocolAnomaly)[0].description


def test_strict_reserved_closes() -> None:
    conn = ControlConnection(Role.SERVER, 0.0, config=ControlConfig(strict_reserved=True))
    out, events = conn.receive(StartControlConnectionRequest(reserved1=2).encode(), 0.0)
    assert out == b"" and conn.closed and "reserved1" in of(events, ControlConnectionClosed)[0].reason


def test_tracer_sees_every_message_in_both_directions() -> None:
    seen: list[tuple[float, str, str]] = []
    conn = ControlConnection(Role.SERVER, 0.0, tracer=lambda t, d, m: seen.append((t, d, type(m).__name__)))
    conn.receive(StartControlConnectionRequest().encode() + OutgoingCallRequest(call_id=1).encode(), 2.5)
    assert seen == [
        (2.5, "in", "StartControlConnectionRequest"),
        (2.5, "out", "StartControlConnectionReply"),
        (2.5, "in", "OutgoingCallRequest"),
        (2.5, "out", "OutgoingCallReply"),
    ]


# -- client (PNS) side ---------------------------------------------------------------------


def test_client_full_exchange_against_server_in_memory() -> None:
    server = ControlConnection(Role.SERVER, 0.0)
    client = ControlConnection(Role.CLIENT, 0.0)

    def pump(now: float) -> None:
        for _ in range(10):
            to_server, _ = client.drain()
            to_client, _ = server.receive(to_server, now)
            back, _ = client.receive(to_client, now)
            to_server2, _ = server.receive(back, now)
            if not (to_server or to_client or back or to_server2):
                return
            client.receive(to_server2, now)

    client.start(0.0)
    pump(0.0)
    assert client.state is server.state is ControlState.ESTABLISHED
    call = client.open_call(1.0, window=3)
    pump(1.0)
    server_call = next(iter(server.calls.values()))
    assert call.state is CallState.ESTABLISHED
    assert (call.peer_call_id, server_call.peer_call_id) == (server_call.call_id, call.call_id)
    assert call.peer_window == 3  # pptpd and accel-ppp echo the client's window
    client.clear_call(call.call_id, 2.0)
    assert call.state is CallState.WAIT_DISCONNECT
    pump(2.0)
    assert client.calls == {} and server.calls == {}
    client.stop(3.0)
    pump(3.0)
    assert client.closed and server.closed


def test_client_sccrp_refusal() -> None:
    conn = ControlConnection(Role.CLIENT, 0.0)
    conn.start(0.0)
    reply = StartControlConnectionReply(result_code=StartResult.GENERAL_ERROR, error_code=GeneralError.NO_RESOURCE)
    _, events = conn.receive(reply.encode(), 1.0)
    [refused] = of(events, StartRefused)
    assert refused.error_code is GeneralError.NO_RESOURCE and conn.closed


def test_client_sccrp_with_other_version_stops_with_stop_protocol() -> None:
    conn = ControlConnection(Role.CLIENT, 0.0)
    conn.start(0.0)
    conn.drain()
    out, _ = conn.receive(
        StartControlConnectionReply(result_code=StartResult.SUCCESS, protocol_version=0x0200).encode(), 1.0
    )
    stop = only(out)
    assert isinstance(stop, StopControlConnectionRequest) and stop.reason is StopReason.STOP_PROTOCOL
    assert conn.state is ControlState.WAIT_STOP_REPLY


def test_client_sccrp_deadline() -> None:
    conn = ControlConnection(Role.CLIENT, 0.0, config=ControlConfig(establish_timeout=60))
    assert conn.next_deadline() is None
    conn.start(5.0)
    assert conn.next_deadline() == 65.0
    _, events = conn.handle_timer(65.0)
    assert conn.closed and of(events, ControlConnectionClosed)[0].reason == "no SCCRP within 60 s"


def test_client_ocrp_failure_releases_the_call() -> None:
    conn = established_client()
    call = conn.open_call(1.0)
    conn.drain()
    reply = OutgoingCallReply(
        call_id=0,
        peer_call_id=call.call_id,
        result_code=OutgoingCallResult.GENERAL_ERROR,
        error_code=GeneralError.NO_RESOURCE,
    )
    _, events = conn.receive(reply.encode(), 2.0)
    [refused] = of(events, CallRefused)
    assert refused.by_peer and refused.error_code is GeneralError.NO_RESOURCE
    assert conn.calls == {} and call.call_id not in conn.call_ids


def test_client_no_ocrp_closes_after_60s() -> None:
    conn = established_client(0.0)
    conn.open_call(10.0)
    assert conn.next_deadline() == 60.0  # idle echo comes first
    conn.handle_timer(60.0)
    conn.receive(EchoReply(identifier=1).encode(), 60.0)
    assert conn.next_deadline() == 70.0
    _, events = conn.handle_timer(70.0)
    assert conn.closed and of(events, CallCleared)


def test_client_cdn_with_server_call_id() -> None:
    conn, _ours = client_with_call(server_call_id=777)
    _, events = conn.receive(CallDisconnectNotify(call_id=777, result_code=DisconnectResult.ADMIN_SHUTDOWN).encode(), 1)
    [cleared] = of(events, CallCleared)
    assert cleared.result_code is DisconnectResult.ADMIN_SHUTDOWN and cleared.by_peer and conn.calls == {}
    assert not of(events, ProtocolAnomaly)


def test_client_tolerates_accel_ppp_cdn_with_its_own_call_id() -> None:
    conn, ours = client_with_call(server_call_id=777)
    _, events = conn.receive(CallDisconnectNotify(call_id=ours, result_code=DisconnectResult.REQUEST).encode(), 1.0)
    assert of(events, CallCleared) and of(events, ProtocolAnomaly) and conn.calls == {}


def test_client_wan_error_notify_is_reported() -> None:
    conn, ours = client_with_call()
    out, events = conn.receive(WanErrorNotify(peer_call_id=ours, crc_errors=3).encode(), 1.0)
    assert out == b""
    [wen] = of(events, WanErrorReceived)
    assert wen.message.crc_errors == 3


def test_client_refuses_ocrq_with_do_not_accept() -> None:
    conn = established_client()
    reply = only(conn.receive(OutgoingCallRequest(call_id=4).encode(), 1.0)[0])
    assert isinstance(reply, OutgoingCallReply) and reply.result_code is OutgoingCallResult.DO_NOT_ACCEPT


def test_local_api_misuse_raises_local_protocol_error() -> None:
    server = ControlConnection(Role.SERVER, 0.0)
    client = ControlConnection(Role.CLIENT, 0.0)
    with pytest.raises(LocalProtocolError):
        server.start(0.0)
    with pytest.raises(LocalProtocolError):
        client.open_call(0.0)
    with pytest.raises(LocalProtocolError):
        client.send_echo(0.0)
    with pytest.raises(LocalProtocolError):
        server.clear_call(1, 0.0)


# -- every message in every state has a defined outcome -------------------------------------


def _sample(message_type: ControlMessageType, call_id: int) -> ControlMessage:
    samples: dict[ControlMessageType, ControlMessage] = {
        ControlMessageType.START_CONTROL_CONNECTION_REQUEST: StartControlConnectionRequest(),
        ControlMessageType.START_CONTROL_CONNECTION_REPLY: StartControlConnectionReply(result_code=StartResult.SUCCESS),
        ControlMessageType.STOP_CONTROL_CONNECTION_REQUEST: StopControlConnectionRequest(),
        ControlMessageType.STOP_CONTROL_CONNECTION_REPLY: StopControlConnectionReply(),
        ControlMessageType.ECHO_REQUEST: EchoRequest(identifier=1),
        ControlMessageType.ECHO_REPLY: EchoReply(identifier=1),
        ControlMessageType.OUTGOING_CALL_REQUEST: OutgoingCallRequest(call_id=call_id),
        ControlMessageType.OUTGOING_CALL_REPLY: OutgoingCallReply(
            call_id=call_id, peer_call_id=call_id, result_code=OutgoingCallResult.CONNECTED
        ),
        ControlMessageType.INCOMING_CALL_REQUEST: IncomingCallRequest(call_id=call_id),
        ControlMessageType.INCOMING_CALL_REPLY: IncomingCallReply(
            call_id=call_id, peer_call_id=call_id, result_code=IncomingCallResult.CONNECT
        ),
        ControlMessageType.INCOMING_CALL_CONNECTED: IncomingCallConnected(peer_call_id=call_id),
        ControlMessageType.CALL_CLEAR_REQUEST: CallClearRequest(call_id=call_id),
        ControlMessageType.CALL_DISCONNECT_NOTIFY: CallDisconnectNotify(
            call_id=call_id, result_code=DisconnectResult.REQUEST
        ),
        ControlMessageType.WAN_ERROR_NOTIFY: WanErrorNotify(peer_call_id=call_id),
        ControlMessageType.SET_LINK_INFO: SetLinkInfo(peer_call_id=call_id),
    }
    return samples[message_type]


def _in_state(role: Role, state: ControlState) -> tuple[ControlConnection, int]:
    if role is Role.SERVER:
        if state is ControlState.IDLE:
            return ControlConnection(Role.SERVER, 0.0), 1
        conn, call_id = server_with_call(peer_call_id=1)
    else:
        if state is ControlState.IDLE:
            return ControlConnection(Role.CLIENT, 0.0), 1
        if state is ControlState.WAIT_CTL_REPLY:
            conn = ControlConnection(Role.CLIENT, 0.0)
            conn.start(0.0)
            conn.drain()
            return conn, 1
        conn, call_id = client_with_call(server_call_id=1)
    if state is ControlState.WAIT_STOP_REPLY:
        conn.stop(0.0)
        conn.drain()
    assert conn.state is state
    return conn, call_id


STATES = [(role, state) for role, table in TRANSITIONS.items() for state in table]


@pytest.mark.parametrize(("role", "state"), STATES, ids=[f"{r.value}-{s.value}" for r, s in STATES])
@pytest.mark.parametrize("message_type", list(ControlMessageType), ids=lambda t: t.name)
def test_every_message_in_every_state_has_a_defined_outcome(
    role: Role, state: ControlState, message_type: ControlMessageType
) -> None:
    """A reply, a close, a state change or a reported event: never silence, never an exception."""
    conn, call_id = _in_state(role, state)
    out, events = conn.receive(_sample(message_type, call_id).encode(), 1.0)
    assert out or events or conn.state is not state, f"{message_type.name} was silently swallowed"
    assert all(isinstance(m, ControlMessage) for m in parse(out))
    if conn.closed:
        assert isinstance(events[-1], ControlConnectionClosed)
    assert TRANSITIONS[role][state].get(None) is not None
    transition = TRANSITIONS[role][state].get(message_type) or TRANSITIONS[role][state][None]
    assert conn.state in (transition.next_state, *transition.otherwise), "the state is not one its entry declares"


def test_every_entry_declares_where_it_leads_and_its_handler_does_not_set_the_state() -> None:
    """h11's rule: the table holds every transition; the engine, not a handler, applies it."""
    for role, states in TRANSITIONS.items():
        for state, table in states.items():
            for message_type, transition in table.items():
                where = f"{role.value} {state.value} {message_type}"
                assert isinstance(transition.next_state, ControlState), where
                assert transition.next_state not in transition.otherwise, where
                assert "self.state =" not in inspect.getsource(transition.handler), where


# -- the table against RFC 2637 section 3.1 ----------------------------------------------------------------

S = ControlState
SCCRQ, SCCRP = ControlMessageType.START_CONTROL_CONNECTION_REQUEST, ControlMessageType.START_CONTROL_CONNECTION_REPLY
STOP_RQ, STOP_RP = ControlMessageType.STOP_CONTROL_CONNECTION_REQUEST, ControlMessageType.STOP_CONTROL_CONNECTION_REPLY
ORIGINATOR, RECEIVER = Role.CLIENT, Role.SERVER  # our client, the PNS, opens the TCP connection
EARLIER_VERSION = 0x00FF
"""A version earlier than ours (1.0) that we cannot support: the RFC's "Version Not OK"."""


class Arrow(NamedTuple):
    """One arrow of an RFC 2637 section 3.1 state diagram that a received message draws."""

    section: str
    role: Role
    state: ControlState
    received: ControlMessageType
    version_ok: bool
    next_state: ControlState
    sends: type[ControlMessage] | None


RFC_2637_3_1 = [
    # Transcribed by hand from RFC 2637 (July 1999), section 3.1.1 "Control Connection Originator" and
    # section 3.1.2 "Control connection Receiver": their state diagrams and the text under them.  The RFC's
    # idle after "Close TCP" is CLOSED here: a ControlConnection serves one TCP connection (a new one
    # starts idle).
    #
    # 3.1.1, wait_ctl_reply: "If the version is earlier and supported, the originator moves to the
    # established state.  If the version is earlier and not supported, a Stop-Control-Connection-Request
    # SHOULD be sent to the peer and the originator moves into the wait_stop_reply state."
    Arrow("3.1.1", ORIGINATOR, S.WAIT_CTL_REPLY, SCCRP, True, S.ESTABLISHED, None),
    Arrow("3.1.1", ORIGINATOR, S.WAIT_CTL_REPLY, SCCRP, False, S.WAIT_STOP_REPLY, StopControlConnectionRequest),
    # 3.1.1, established: "If the originator receives a Stop-Control-Connection-Request it SHOULD send a
    # Stop-Control-Connection-Reply and close the TCP connection"
    Arrow("3.1.1", ORIGINATOR, S.ESTABLISHED, STOP_RQ, True, S.CLOSED, StopControlConnectionReply),
    # 3.1.1, wait_stop_reply: "If a Stop-Control-Connection-Reply is received, the TCP connection SHOULD be
    # closed and the control connection becomes idle."
    Arrow("3.1.1", ORIGINATOR, S.WAIT_STOP_REPLY, STOP_RP, True, S.CLOSED, None),
    # 3.1.2, idle: "If the version is earlier than the receiver's version and the version cannot be
    # supported, the receiver SHOULD send a Start-Connection-Reply message, close the TCP connection and
    # remain in the idle state.  If the receiver's version is the same as earlier than the peer's, the
    # receiver SHOULD send a Start-Control-Connection-Reply with the receiver's version and enter the
    # established state."
    Arrow("3.1.2", RECEIVER, S.IDLE, SCCRQ, True, S.ESTABLISHED, StartControlConnectionReply),
    Arrow("3.1.2", RECEIVER, S.IDLE, SCCRQ, False, S.CLOSED, StartControlConnectionReply),
    # 3.1.2, established: the same text as 3.1.1's (the diagram's arrow to Idle reads "Receive Start Ctl
    # Connection Request /Send Stop Reply Close TCP": the text and the reply say Stop-Control-Connection-
    # Request, which is what is read here)
    Arrow("3.1.2", RECEIVER, S.ESTABLISHED, STOP_RQ, True, S.CLOSED, StopControlConnectionReply),
    # 3.1.2, Wait-Stop-Reply: "Receive Stop Control Connection Reply /Close TCP"
    Arrow("3.1.2", RECEIVER, S.WAIT_STOP_REPLY, STOP_RP, True, S.CLOSED, None),
]


def _arrow_id(arrow: Arrow) -> str:
    version = "" if arrow.version_ok else "-version-not-ok"
    return f"{arrow.section}-{arrow.state.value}-{arrow.received.name}{version}"


@pytest.mark.parametrize("arrow", RFC_2637_3_1, ids=_arrow_id)
def test_the_table_reads_as_rfc_2637_section_3_1(arrow: Arrow) -> None:
    """Each arrow of the RFC's diagrams is an entry of its own (not the state's default) that leads where
    the RFC says: to the entry's next state, or, for a version we cannot support, to one it declares."""
    transition = TRANSITIONS[arrow.role][arrow.state].get(arrow.received)
    assert transition is not None, f"section {arrow.section}: no entry for {arrow.received.name} in {arrow.state}"
    if arrow.version_ok:
        assert transition.next_state is arrow.next_state
    else:
        assert arrow.next_state in transition.otherwise


@pytest.mark.parametrize("arrow", RFC_2637_3_1, ids=_arrow_id)
def test_the_connection_moves_as_rfc_2637_section_3_1(arrow: Arrow) -> None:
    """The same arrows, driven: the message arrives in that state; the state after it is the RFC's, and
    what goes out is what the arrow sends."""
    conn, call_id = _in_state(arrow.role, arrow.state)
    message = _sample(arrow.received, call_id)
    if not arrow.version_ok:
        assert isinstance(message, StartControlConnectionRequest | StartControlConnectionReply)
        message = dataclasses.replace(message, protocol_version=EARLIER_VERSION)
    out, events = conn.receive(message.encode(), 1.0)
    assert conn.state is arrow.next_state
    assert [type(m) for m in parse(out)] == ([arrow.sends] if arrow.sends is not None else [])
    if arrow.next_state is S.CLOSED:
        assert isinstance(events[-1], ControlConnectionClosed) and conn.next_deadline() is None
    if arrow.next_state is S.WAIT_STOP_REPLY:  # now only the StopCCRP is waited for (section 3.1.4)
        assert conn.next_deadline() == 1.0 + conn.config.reply_timeout


def test_local_terminate_and_the_originators_open_follow_rfc_2637_section_3_1() -> None:
    """The two arrows of section 3.1 that no received message draws: the originator's "TCP Open Indication
    /Send Start Control Connection Request" (idle to wait_ctl_reply: ``start``) and, on either side,
    "Local Terminate /Send Stop Control Request" (established to wait_stop_reply: ``stop``)."""
    client = ControlConnection(Role.CLIENT, 0.0)
    client.start(0.0)
    assert client.state is S.WAIT_CTL_REPLY and isinstance(only(client.drain()[0]), StartControlConnectionRequest)
    for conn in (established_client(), established_server()):
        conn.stop(1.0)
        assert conn.state is S.WAIT_STOP_REPLY
        assert isinstance(parse(conn.drain()[0])[-1], StopControlConnectionRequest)


# -- a bound on tolerated anomalies (issue 15 section 2) ---------------------------------------------


def test_a_flood_of_slis_for_an_unknown_call_id_stops_the_connection_at_the_anomaly_bound() -> None:
    """20,000 SLIs naming no call of ours: each is a tolerated anomaly with no reply, so nothing else
    (the write-buffer guard) would ever stop the peer.  The connection stops itself (StopCCRQ, closed)
    at the bound, and the anomalies carry one stable reason for the owner to count."""
    conn, call_id = server_with_call()
    flood = SetLinkInfo(peer_call_id=call_id + 1).encode() * 20_000
    out, events = conn.receive(flood, 1.0)
    anomalies = of(events, ProtocolAnomaly)
    assert len(anomalies) == conn.config.max_anomalies + 1
    assert {a.reason for a in anomalies} == {"SLI for an unknown Call ID"}
    assert isinstance(only(out), StopControlConnectionRequest)
    closed = of(events, ControlConnectionClosed)
    assert conn.closed and len(closed) == 1 and "protocol anomalies" in closed[0].reason
    assert of(events, CallCleared) and conn.calls == {}


def test_the_anomaly_bound_counts_within_a_window() -> None:
    """A peer with a rare quirk is never stopped: the count starts again each ``anomaly_window``."""
    conn, call_id = server_with_call(max_anomalies=4, anomaly_window=60.0)
    sli = SetLinkInfo(peer_call_id=call_id + 1).encode()
    for minute in range(10):
        _, events = conn.receive(sli * 4, minute * 61.0)
        assert len(of(events, ProtocolAnomaly)) == 4 and not conn.closed
    _, events = conn.receive(sli * 5, 1000.0)
    assert conn.closed and of(events, ControlConnectionClosed)


def test_anomalies_before_sccrq_count_too() -> None:
    conn = ControlConnection(Role.SERVER, 0.0, config=ControlConfig(max_anomalies=8))
    out, events = conn.receive(EchoRequest(identifier=1).encode() * 100, 0.0)
    assert len(of(events, ProtocolAnomaly)) == 9 and conn.closed
    assert len(parse(out)) == 9  # the nine Not-Connected replies, then nothing more
