"""Published attack inputs, replayed: each gets the protocol-correct reply or a clean close, never an
exception, and (end to end) leaves the daemon alive and serving a legit client.

* CVE-2022-23253 (Windows' PPTP driver): SCCRQ, then an Incoming-Call-Request sent by the client, then
  Incoming-Call-Connected twice.  Incoming calls are a dial-up feature: the ICRQ gets ICRP
  Do-Not-Accept, the first ICCN (a message a server never receives) a StopCCRQ, the second nothing.
* 20+ Echo-Requests in one TCP segment: every one answered, in order.
* A control message with Length 0 and an unknown type: the stream has lost synchronisation, the
  connection closes at once (after answering what came before it in the segment), with a log line.
* PAP with a zero-length name and password: Authenticate-Nak, then the link ends.
* An LCP frame with no body, and LCP packets that are only a header: silently discarded, or the
  RFC 1661 reply to the code.
* PPP frames shorter than 3 bytes: discarded, or (a valid one-byte protocol in the Network phase)
  Protocol-Rejected; through the link and through the session's hot path.
* A peer that stops reading: dropped once 256 KiB are queued for it, its call released, other
  sessions unaffected.

The sans-IO ones run against :class:`~pypptp.ctrl.connection.ControlConnection`,
:class:`~pypptp.ppp.link.PppLink` and :class:`~pypptp.aio.session.PppSession`; the end-to-end ones against
a real pypptpd in two namespaces (conftest's ``start_pypptpd``), with a legit library client.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import socket
from collections.abc import Callable

import pytest

from pypptp.aio.control import MAX_WRITE_BUFFER
from pypptp.aio.server import ControlServer, ServerConnection, ServerSettings
from pypptp.aio.session import PppSession
from pypptp.client.tunnel import PptpClientSession
from pypptp.ctrl.connection import ControlConnection, ControlState, Role
from pypptp.ctrl.constants import EchoResult, GeneralError, IncomingCallResult, StartResult
from pypptp.ctrl.events import Call, ControlConnectionClosed, ProtocolAnomaly
from pypptp.ctrl.framer import ControlStreamFramer
from pypptp.ctrl.messages import (
    CallClearRequest,
    ControlMessage,
    EchoReply,
    EchoRequest,
    IncomingCallConnected,
    IncomingCallReply,
    IncomingCallRequest,
    OutgoingCallRequest,
    StartControlConnectionReply,
    StartControlConnectionRequest,
    StopControlConnectionRequest,
)
from pypptp.fuzz.runner import close_session, icmp_echo, open_session
from pypptp.ppp.frame import Protocol, encode_frame, parse_frame
from pypptp.ppp.lcp import AUTH_PAP, LcpConfig
from pypptp.ppp.link import Authenticated, LinkDown, LinkEvent, Phase, PppLink
from pypptp.ppp.packet import Code, ControlPacket
from tests.conftest import Pypptpd
from tests.test_ppp_link import SECRETS, client_config, control, server_config

StartDaemon = Callable[..., Pypptpd]
CONF = ["localip 192.168.0.1", "remoteip 192.168.0.234-238"]
LENGTH_ZERO_UNKNOWN_TYPE = bytes.fromhex("0000 0001 1a2b3c4d 0063 0000 00000000")
"""Length 0, PPTP Message Type 1, the Magic Cookie, Control Message Type 99: 16 bytes."""
ECHOES = 25


def sent(out: bytes) -> list[ControlMessage]:
    """What the connection sent, decoded strictly (it must be whole, valid messages)."""
    framer = ControlStreamFramer(strict=True)
    messages = framer.feed(out)
    assert framer.buffered == 0
    return messages


# -- the control channel, sans-IO -------------------------------------------------------------------


def test_cve_2022_23253_icrq_then_iccn_twice_is_refused_sans_io() -> None:
    server = ControlConnection(Role.SERVER, 0.0)
    out, _ = server.receive(StartControlConnectionRequest().encode(), 0.1)
    [reply] = sent(out)
    assert isinstance(reply, StartControlConnectionReply) and reply.result_code is StartResult.SUCCESS
    out, events = server.receive(IncomingCallRequest(call_id=1).encode(), 0.2)
    [icrp] = sent(out)
    assert isinstance(icrp, IncomingCallReply)
    assert (icrp.peer_call_id, icrp.result_code) == (1, IncomingCallResult.DO_NOT_ACCEPT)
    assert [type(e) for e in events] == [ProtocolAnomaly] and not server.calls
    out, events = server.receive(IncomingCallConnected(peer_call_id=icrp.call_id).encode(), 0.3)
    assert [type(m) for m in sent(out)] == [StopControlConnectionRequest]
    assert server.state is ControlState.WAIT_STOP_REPLY
    out, events = server.receive(IncomingCallConnected(peer_call_id=icrp.call_id).encode(), 0.4)
    assert out == b"" and [type(e) for e in events] == [ProtocolAnomaly]
    assert not server.calls and len(server.call_ids) == 0


def test_cve_2022_23253_sequence_in_one_segment_sans_io() -> None:
    server = ControlConnection(Role.SERVER, 0.0)
    iccn = IncomingCallConnected(peer_call_id=0).encode()
    out, _ = server.receive(
        StartControlConnectionRequest().encode() + IncomingCallRequest(call_id=1).encode() + iccn + iccn, 0.1
    )
    kinds = [type(m) for m in sent(out)]
    assert kinds == [StartControlConnectionReply, IncomingCallReply, StopControlConnectionRequest]
    assert not server.calls and len(server.call_ids) == 0


@pytest.mark.parametrize("established", [True, False], ids=["after-sccrq", "before-sccrq"])
def test_many_echo_requests_in_one_segment_are_answered_in_order_sans_io(established: bool) -> None:
    server = ControlConnection(Role.SERVER, 0.0)
    first = StartControlConnectionRequest().encode() if established else b""
    echoes = b"".join(EchoRequest(identifier=1000 + i).encode() for i in range(ECHOES))
    out, _ = server.receive(first + echoes, 0.1)
    replies = sent(out)[1:] if established else sent(out)
    assert [r.identifier for r in replies if isinstance(r, EchoReply)] == [1000 + i for i in range(ECHOES)]
    assert len(replies) == ECHOES
    expected = (
        (EchoResult.OK, GeneralError.NONE) if established else (EchoResult.GENERAL_ERROR, GeneralError.NOT_CONNECTED)
    )
    assert all(isinstance(r, EchoReply) and (r.result_code, r.error_code) == expected for r in replies)


@pytest.mark.parametrize("before", ["nothing", "sccrq", "sccrq-and-echo"])
def test_length_zero_and_an_unknown_type_closes_cleanly_sans_io(before: str) -> None:
    server = ControlConnection(Role.SERVER, 0.0)
    prefix = {
        "nothing": b"",
        "sccrq": StartControlConnectionRequest().encode(),
        "sccrq-and-echo": StartControlConnectionRequest().encode() + EchoRequest(identifier=7).encode(),
    }[before]
    out, events = server.receive(prefix + LENGTH_ZERO_UNKNOWN_TYPE, 0.1)
    kinds = [type(m) for m in sent(out)]
    assert kinds == {"nothing": [], "sccrq": [StartControlConnectionReply]}.get(
        before, [StartControlConnectionReply, EchoReply]
    )  # what came before the bad bytes is answered
    closed = events[-1]
    assert isinstance(closed, ControlConnectionClosed) and closed.by_peer
    assert "malformed" in closed.reason and "Length 0" in closed.reason
    assert server.closed and server.next_deadline() is None
    assert server.receive(EchoRequest(identifier=8).encode(), 0.2) == (b"", [])  # silence afterwards


# -- PPP, sans-IO -----------------------------------------------------------------------------------


def pap_server() -> PppLink:
    return PppLink(server_config(AUTH_PAP), secrets=SECRETS)


def pap_client(**credentials: str) -> PppLink:
    """A PAP peer (test_ppp_link's alice, unless ``user``/``password`` say otherwise)."""
    return PppLink(client_config(**credentials, lcp=LcpConfig(auth_methods=(AUTH_PAP,))))


def exchange(
    server: PppLink, client: PppLink, *, until: Callable[[bytes], bool] | None = None
) -> tuple[list[LinkEvent], bytes | None]:
    """Carry frames both ways until both are quiet (bounded), or until the client is about to send a
    frame for which ``until`` is true.  The server's events, and that frame (withheld), if any."""
    events: list[LinkEvent] = []
    for _ in range(50):
        to_client, server_events = server.drain()
        to_server, _ = client.drain()
        events += server_events
        if not to_client and not to_server:
            return events, None
        for frame in to_client:
            client.receive_frame(frame, 0.0)
        for frame in to_server:
            if until is not None and until(frame):
                return events, frame
            server.receive_frame(frame, 0.0)
    raise AssertionError("the links never went quiet")


def is_pap(frame: bytes) -> bool:
    return parse_frame(frame)[0] == Protocol.PAP


@pytest.mark.parametrize(
    "request_data",
    [b"\x00\x00", b"", b"\x00", b"\x05\x00", b"\x00\x05"],
    ids=["zero-length-name-and-password", "no-fields", "no-password-length", "name-runs-past", "password-runs-past"],
)
def test_pap_with_a_zero_length_name_and_password(request_data: bytes) -> None:
    """The published input is the first; the others cut its fields short (malformed: discarded)."""
    server, client = pap_server(), pap_client()
    server.open(0.0)
    client.open(0.0)
    _, withheld = exchange(server, client, until=is_pap)  # LCP is Opened; the client's request waits
    assert server.phase is Phase.AUTHENTICATE and withheld is not None
    server.receive_frame(encode_frame(Protocol.PAP, ControlPacket(1, 42, request_data).encode()), 1.0)
    frames, events = server.drain()
    if request_data == b"\x00\x00":
        [nak] = control(frames, Protocol.PAP)
        assert (nak.code, nak.identifier) == (3, 42)  # Authenticate-Nak
        assert [p.code for p in control(frames, Protocol.LCP)] == [Code.TERMINATE_REQUEST]
        [auth] = [e for e in events if isinstance(e, Authenticated)]
        assert not auth.result.success and auth.result.peer_name == ""
        assert any(isinstance(e, LinkDown) for e in events) or server.phase is Phase.TERMINATE
    else:
        assert frames == [] and server.phase is Phase.AUTHENTICATE  # discarded; the real request still counts
        server.receive_frame(withheld, 1.0)
        exchange(server, client)
        assert server.network_up is not None


def test_pap_peer_with_an_empty_name_and_password_is_refused() -> None:
    """The same input from a real PAP peer configured with empty credentials."""
    server, client = pap_server(), pap_client(user="", password="")
    server.open(0.0)
    client.open(0.0)
    events, _ = exchange(server, client)
    [auth] = [e for e in events if isinstance(e, Authenticated)]
    assert not auth.result.success
    assert server.phase is Phase.DEAD and server.network_up is None


def mschap_pair() -> tuple[PppLink, PppLink]:
    return PppLink(server_config(), secrets=SECRETS), PppLink(client_config())


def established(phase: str) -> PppLink:
    """A server link in ``phase``: Establish (its first request out), Authenticate or Network."""
    server, client = mschap_pair()
    server.open(0.0)
    if phase == "establish":
        server.drain()
        return server
    client.open(0.0)
    if phase == "authenticate":
        exchange(server, client, until=lambda frame: parse_frame(frame)[0] == Protocol.CHAP)
        assert server.phase is Phase.AUTHENTICATE
    else:
        exchange(server, client)
        assert server.phase is Phase.NETWORK
    server.drain()
    return server


def echo_answered(server: PppLink) -> bool:
    """A valid LCP Echo-Request still gets its Echo-Reply (the link is unharmed)."""
    server.receive_frame(encode_frame(Protocol.LCP, ControlPacket(Code.ECHO_REQUEST, 77, bytes(4)).encode()), 2.0)
    frames, _ = server.drain()
    return [(p.code, p.identifier) for p in control(frames, Protocol.LCP)] == [(Code.ECHO_REPLY, 77)]


@pytest.mark.parametrize("phase", ["establish", "authenticate", "network"])
@pytest.mark.parametrize("frame", [b"\xff\x03\xc0\x21", b"\xc0\x21"], ids=["with-address-control", "without"])
def test_an_lcp_frame_with_no_body_is_discarded(phase: str, frame: bytes) -> None:
    server = established(phase)
    before = (server.phase, server.lcp.state)
    server.receive_frame(frame, 1.0)
    frames, events = server.drain()
    assert frames == [] and not [e for e in events if isinstance(e, LinkDown)]
    assert (server.phase, server.lcp.state) == before
    if phase == "network":
        assert echo_answered(server)


# RFC 1661 for an LCP packet that is only its 4-byte header, received while Opened (Network phase):
HEADER_ONLY_REPLIES: dict[int, list[int]] = {
    Code.CONFIGURE_REQUEST: [Code.CONFIGURE_REQUEST, Code.CONFIGURE_ACK],  # renegotiation: ours, then Ack
    Code.TERMINATE_REQUEST: [Code.TERMINATE_ACK],
    Code.TERMINATE_ACK: [Code.CONFIGURE_REQUEST],  # Opened + RTA: tld, scr (section 4.1)
    Code.RESET_REQUEST: [Code.CODE_REJECT],  # CCP's codes mean nothing to LCP
    Code.RESET_ACK: [Code.CODE_REJECT],
}
"""Every other code is discarded: Configure-Ack/Nak/Reject with an Identifier we never sent, a
Code-Reject or Protocol-Reject with nothing rejected, an Echo-Request too short for its Magic-Number,
Echo-Reply, Discard-Request, Identification, Time-Remaining; an undefined code gets a Code-Reject."""


@pytest.mark.parametrize("code", [*range(17), 255])
def test_header_only_lcp_packets_get_the_rfc_reply_or_none(code: int) -> None:
    server = established("network")
    server.receive_frame(encode_frame(Protocol.LCP, bytes((code, 9, 0, 4))), 1.0)
    frames, _ = server.drain()
    expected = HEADER_ONLY_REPLIES.get(code, [Code.CODE_REJECT] if code == 0 or code > 15 else [])
    assert [p.code for p in control(frames, Protocol.LCP)] == expected
    if code not in HEADER_ONLY_REPLIES:
        assert server.phase is Phase.NETWORK and echo_answered(server)


SHORT_FRAMES = (
    [b""] + [bytes((a,)) for a in range(256)] + [bytes(pair) for pair in itertools.product(range(256), repeat=2)]
)


@pytest.mark.parametrize("phase", ["establish", "authenticate", "network"])
def test_ppp_frames_shorter_than_3_bytes(phase: str) -> None:
    """Every frame of 0, 1 and 2 bytes: nothing comes out but an LCP Protocol-Reject for a valid
    one-byte (compressed) protocol number, and only in the Network phase (RFC 1661 section 5.7)."""
    server = established(phase)
    for frame in SHORT_FRAMES:
        server.receive_frame(frame, 1.0)
        frames, events = server.drain()
        assert not [e for e in events if isinstance(e, LinkDown)], frame.hex()
        for reply in frames:
            [packet] = control([reply], Protocol.LCP)
            assert phase == "network" and packet.code == Code.PROTOCOL_REJECT, (frame.hex(), reply.hex())
    assert server.phase is {"establish": Phase.ESTABLISH, "authenticate": Phase.AUTHENTICATE}.get(phase, Phase.NETWORK)
    if phase == "network":
        assert echo_answered(server)


async def test_short_frames_through_the_session_hot_path() -> None:
    """The session's hot path (MPPE up) reads a frame's first bytes itself: frames of 0 to 5 bytes,
    MPPE-shaped (FD, 00 FD, FF 03 00 FD prefixes) or not, are dropped without an error, and a real
    encrypted packet still comes through after them."""
    server_link, client = mschap_pair()
    to_client: list[bytes] = []
    log = logging.getLogger("tests.attack_inputs")

    def send(frame: bytes | memoryview) -> bool:
        to_client.append(bytes(frame))
        return True

    session = PppSession(server_link, send, log=log, attach_tun=False)
    session.start()
    client.open(0.0)
    for _ in range(50):  # negotiate through the session
        to_server, _ = client.drain()
        if not to_client and not to_server:
            break
        for frame in to_client:
            client.receive_frame(frame, 0.0)
        to_client.clear()
        for frame in to_server:
            session.receive_frame(frame)
    assert session.network is not None and session._fast_decryptor is not None
    prefixes = [b"", b"\xfd", b"\x00\xfd", b"\xff\x03\x00\xfd", b"\xff\x03", b"\x21"]
    tails = [b"", b"\x90", b"\x90\x01", b"\x10\x01", b"\x90\x01\x00", b"\xff\xff"]
    for prefix, tail in itertools.product(prefixes, tails):
        frame = (prefix + tail)[:5]
        session.receive_frame(frame)
        assert not session.closed, frame.hex()
    ping = icmp_echo("192.168.0.234", "192.168.0.1", 1, 1)
    data = client.send_data(Protocol.IPV4, ping)
    assert data is not None
    session.receive_frame(data)
    assert session.received is not None and session.received.get_nowait() == ping
    session.close("test over")


# -- end to end: a real pypptpd in two namespaces ------------------------------------------------------


async def read_messages(sock: socket.socket, count: int, timeout: float = 5.0) -> list[ControlMessage]:
    """The next ``count`` control messages the daemon sends (fewer if it closes first)."""
    loop = asyncio.get_running_loop()
    framer = ControlStreamFramer(strict=True)
    messages: list[ControlMessage] = []
    async with asyncio.timeout(timeout):
        while len(messages) < count:
            try:
                data = await loop.sock_recv(sock, 65536)
            except ConnectionResetError:
                break
            if not data:
                break
            messages += framer.feed(data)
    return messages


async def closed_by_daemon(sock: socket.socket, timeout: float = 3.0) -> bool:
    """True once the daemon has closed ``sock`` (EOF or reset) within ``timeout``, reading past what it sent."""
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(timeout):
            while await loop.sock_recv(sock, 65536):
                pass
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
    return True


async def legit_client_works(daemon: Pypptpd) -> None:
    """The daemon is alive and a legit client connects, gets an address and a ping answered."""
    assert daemon.process.poll() is None, daemon.log()
    session = await open_session(daemon.pair, user="alice", password="s3cret")
    try:
        assert session.network is not None
        source, target = str(session.network.local_address), str(session.network.peer_address)
        assert session.send(icmp_echo(source, target, 7, 1))
        reply = await asyncio.wait_for(session.recv(), 5)
        assert reply[9] == 1 and reply[20] == 0  # ICMP Echo-Reply
    finally:
        await close_session(session)
    assert "Traceback" not in daemon.log()


async def connect(daemon: Pypptpd) -> socket.socket:
    sock = daemon.client_socket()
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


@pytest.mark.netns
async def test_cve_2022_23253_against_the_daemon(start_pypptpd: StartDaemon) -> None:
    daemon = start_pypptpd(CONF)
    loop = asyncio.get_running_loop()
    iccn = IncomingCallConnected(peer_call_id=0).encode()
    for together in (False, True):  # message by message, then the whole sequence in one segment
        sock = await connect(daemon)
        try:
            pieces = [StartControlConnectionRequest().encode(), IncomingCallRequest(call_id=1).encode(), iccn, iccn]
            if together:
                pieces = [b"".join(pieces)]
            for piece in pieces:
                await loop.sock_sendall(sock, piece)
                await asyncio.sleep(0.05)
            replies = await read_messages(sock, 3)
            assert [type(m) for m in replies] == [
                StartControlConnectionReply,
                IncomingCallReply,
                StopControlConnectionRequest,
            ]
            icrp = replies[1]
            assert isinstance(icrp, IncomingCallReply) and icrp.result_code is IncomingCallResult.DO_NOT_ACCEPT
        finally:
            sock.close()
    log = daemon.wait_log("INCOMING_CALL_CONNECTED is never sent to a server")
    assert "call established" not in log
    await legit_client_works(daemon)


@pytest.mark.netns
async def test_many_echo_requests_in_one_segment_against_the_daemon(start_pypptpd: StartDaemon) -> None:
    daemon = start_pypptpd(CONF)
    loop = asyncio.get_running_loop()
    sock = await connect(daemon)
    try:
        await loop.sock_sendall(sock, StartControlConnectionRequest().encode())
        [reply] = await read_messages(sock, 1)
        assert isinstance(reply, StartControlConnectionReply) and reply.result_code is StartResult.SUCCESS
        segment = b"".join(EchoRequest(identifier=0xE000 + i).encode() for i in range(ECHOES))
        assert len(segment) < 1400  # one TCP segment on this link
        await loop.sock_sendall(sock, segment)
        replies = await read_messages(sock, ECHOES)
        assert [m.identifier for m in replies if isinstance(m, EchoReply)] == [0xE000 + i for i in range(ECHOES)]
        assert all(isinstance(m, EchoReply) and m.result_code is EchoResult.OK for m in replies)
    finally:
        sock.close()
    await legit_client_works(daemon)


@pytest.mark.netns
async def test_length_zero_and_an_unknown_type_against_the_daemon(start_pypptpd: StartDaemon) -> None:
    daemon = start_pypptpd(CONF)
    loop = asyncio.get_running_loop()
    for prefix in (b"", StartControlConnectionRequest().encode()):
        sock = await connect(daemon)
        try:
            await loop.sock_sendall(sock, prefix + LENGTH_ZERO_UNKNOWN_TYPE)
            assert await closed_by_daemon(sock)
        finally:
            sock.close()
    log = daemon.wait_log("Length 0 is outside")
    assert log.count("malformed control message: Length 0 is outside") == 2
    await legit_client_works(daemon)


async def ping_steadily(session: PptpClientSession, source: str, target: str, count: int) -> int:
    """``count`` pings 20 ms apart through a library session; how many were answered."""
    answered = 0
    for seq in range(count):
        assert session.send(icmp_echo(source, target, 9, seq))
        try:
            reply = await asyncio.wait_for(session.recv(), 2)
        except TimeoutError:
            continue
        answered += reply[20] == 0
        await asyncio.sleep(0.02)
    return answered


@pytest.mark.netns
async def test_a_peer_that_stops_reading_is_dropped_and_others_carry_on(start_pypptpd: StartDaemon) -> None:
    """It opens a call, then floods Echo-Requests and never reads: once 256 KiB of replies are queued
    the daemon drops it and releases its call; a legit session pings throughout."""
    daemon = start_pypptpd(CONF)
    loop = asyncio.get_running_loop()
    legit = await open_session(daemon.pair, user="alice", password="s3cret")
    assert legit.network is not None
    source, target = str(legit.network.local_address), str(legit.network.peer_address)
    stalled = daemon.pair.socket(daemon.pair.client_ns)
    try:
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)  # its window closes at once
        stalled.setblocking(False)
        await loop.sock_connect(stalled, daemon.address)
        await loop.sock_sendall(
            stalled, StartControlConnectionRequest().encode() + OutgoingCallRequest(call_id=9).encode()
        )
        daemon.wait_log("call established")
        flood = EchoRequest(identifier=1).encode() * (2 * MAX_WRITE_BUFFER // EchoReply.SIZE)
        pinging = asyncio.ensure_future(ping_steadily(legit, source, target, 40))
        with contextlib.suppress(OSError):  # the daemon may reset it before the whole flood went out
            await asyncio.wait_for(loop.sock_sendall(stalled, flood), 20)
        await loop.run_in_executor(None, daemon.wait_log, "is not reading what we send; dropping it")
        assert await closed_by_daemon(stalled)
        assert await pinging == 40
    finally:
        stalled.close()
        await close_session(legit)
    log = daemon.wait_log("session ended: call cleared: peer not reading")
    assert "cleared (peer not reading)" in log and "session ended: call cleared: peer not reading" in log
    await legit_client_works(daemon)


# -- found by the fuzzer -----------------------------------------------------------------------------


class _StalledTransport(asyncio.Transport):
    """A transport whose peer has stopped reading: everything written stays queued."""

    def __init__(self, queued: int = 0) -> None:
        super().__init__()
        self.queued = queued
        self.closing = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.queued += len(data)

    def get_write_buffer_size(self) -> int:
        return self.queued

    def is_closing(self) -> bool:
        return self.closing

    def abort(self) -> None:
        self.closing = True

    def close(self) -> None:
        self.closing = True

    def get_extra_info(self, name: str, default: object = None) -> object:
        return ("198.18.0.2", 40000) if name == "peername" else default


class _Hooks:
    """What the daemon learns of the calls (its sessions start and end on these)."""

    def __init__(self) -> None:
        self.live: set[int] = set()

    def call_established(self, connection: ServerConnection, call: Call) -> None:
        self.live.add(call.call_id)

    def call_cleared(self, connection: ServerConnection, call: Call, reason: str) -> None:
        self.live.discard(call.call_id)


async def test_a_peer_that_stops_reading_loses_no_call_clearing() -> None:
    """The stalled peer's last segment, the one whose reply passes the limit, clears its call: the
    daemon must hear of it (and the call is released) whichever way the connection then ends."""
    hooks = _Hooks()
    server = ControlServer(ServerSettings(), hooks=hooks)
    connection = ServerConnection(server)
    transport = _StalledTransport()
    connection.connection_made(transport)
    connection.data_received(StartControlConnectionRequest().encode() + OutgoingCallRequest(call_id=9).encode())
    assert len(hooks.live) == 1
    transport.queued = MAX_WRITE_BUFFER  # our replies piled up: the peer stopped reading long ago
    connection.data_received(CallClearRequest(call_id=9).encode())
    assert transport.closing  # dropped for not reading
    assert hooks.live == set(), "the call was cleared on the connection, but the daemon never heard of it"
