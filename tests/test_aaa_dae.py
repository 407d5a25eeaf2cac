"""The RFC 5176 Dynamic Authorization server (pypptp.aaa.dae) on loopback UDP: requests built by pyrad,
and by FreeRADIUS's radclient, the tool an admin uses."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import shutil
import struct
import time
from collections.abc import AsyncIterator
from ipaddress import IPv4Address
from typing import Any

import pytest
from pyrad.packet import CoAACK, CoANAK, CoAPacket, CoARequest, DisconnectACK, DisconnectNAK, DisconnectRequest

from pypptp.aaa import load_dictionary
from pypptp.aaa.accounting import Nas
from pypptp.aaa.dae import LOG_BURST, DaeClient, DaeServer, ErrorCause, SessionIdentification
from tests.conftest import require_tools

SECRET = b"dae-secret"
NAS = Nas(ip=IPv4Address("198.18.0.1"), identifier="pptp-1")


@dataclasses.dataclass(eq=False)
class Session:
    user_name: str
    acct_session_id: str
    framed_ip: IPv4Address
    nas_port: int
    calling_station_id: str = "198.18.0.2"


class Handler:
    """The daemon's side, as the DaeHandler protocol has it: sessions matched as the accounting
    records name them."""

    def __init__(self, sessions: list[Session]) -> None:
        self.sessions = sessions
        self.disconnected: list[Session] = []
        self.timeouts: list[tuple[Session, int]] = []
        self.fail = False

    def find(self, identification: SessionIdentification) -> list[Session]:
        if self.fail:
            raise RuntimeError("broken")
        return [s for s in self.sessions if identification.matches(**dataclasses.asdict(s))]

    def disconnect(self, session: Session) -> None:
        self.disconnected.append(session)

    def set_session_timeout(self, session: Session, seconds: int) -> None:
        self.timeouts.append((session, seconds))


def sessions() -> list[Session]:
    return [
        Session("alice", "AAAA0001", IPv4Address("192.168.0.10"), 0),
        Session("bob", "AAAA0002", IPv4Address("192.168.0.11"), 1),
        Session("bob", "AAAA0003", IPv4Address("192.168.0.12"), 2, "198.18.0.3"),
    ]


@pytest.fixture
async def dae() -> AsyncIterator[tuple[DaeServer, Handler]]:
    handler = Handler(sessions())
    clients = [DaeClient.parse("127.0.0.1", SECRET), DaeClient.parse("127.0.0.0/8", b"other")]
    server = DaeServer(clients, handler, NAS, host="127.0.0.1", port=0)
    await server.start()
    try:
        yield server, handler
    finally:
        server.close()


class _Receiver(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.answers: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.answers.put_nowait(data)


async def exchange(server: DaeServer, *datagrams: bytes, wait: float = 1.0) -> list[bytes]:
    """Send the datagrams from one socket; the answers that came back within ``wait`` seconds."""
    loop = asyncio.get_running_loop()
    transport, receiver = await loop.create_datagram_endpoint(_Receiver, remote_addr=server.address)
    try:
        for datagram in datagrams:
            transport.sendto(datagram)
        answers: list[bytes] = []
        deadline = loop.time() + wait
        while len(answers) < len(datagrams):
            try:
                answers.append(await asyncio.wait_for(receiver.answers.get(), max(0.01, deadline - loop.time())))
            except TimeoutError:
                break
        return answers
    finally:
        transport.close()


def request(code: int = DisconnectRequest, secret: bytes = SECRET, ma: bool = False, **attributes: Any) -> CoAPacket:
    packet = CoAPacket(code, secret=secret, dict=load_dictionary(), **attributes)
    if ma:
        packet.add_message_authenticator()
    return packet


def verified(sent: CoAPacket, raw: bytes) -> CoAPacket:
    """The answer decoded, after checking its Response Authenticator and Message-Authenticator."""
    answer = CoAPacket(secret=sent.secret, dict=load_dictionary(), packet=raw)
    assert sent.VerifyReply(answer, raw)
    assert answer.message_authenticator  # always sent: the client can hold us to it
    return answer


async def ask(server: DaeServer, packet: CoAPacket) -> CoAPacket | None:
    raw = packet.RequestPacket()
    answers = await exchange(server, raw)
    return verified(packet, answers[0]) if answers else None


async def test_disconnect_by_user_name(dae: tuple[DaeServer, Handler]) -> None:
    server, handler = dae
    answer = await ask(server, request(User_Name="alice"))
    assert answer is not None and answer.code == DisconnectACK
    assert "Error-Cause" not in answer
    assert [s.acct_session_id for s in handler.disconnected] == ["AAAA0001"]


async def test_a_request_applies_to_every_matching_session(dae: tuple[DaeServer, Handler]) -> None:
    server, handler = dae
    answer = await ask(server, request(User_Name="bob"))
    assert answer is not None and answer.code == DisconnectACK
    assert [s.acct_session_id for s in handler.disconnected] == ["AAAA0002", "AAAA0003"]


@pytest.mark.parametrize(
    ("attributes", "ended"),
    [
        ({"Acct_Session_Id": "AAAA0002"}, ["AAAA0002"]),
        ({"Framed_IP_Address": "192.168.0.12"}, ["AAAA0003"]),
        ({"User_Name": "bob", "Calling_Station_Id": "198.18.0.3"}, ["AAAA0003"]),
        ({"NAS_Port": 1}, ["AAAA0002"]),
        ({"User_Name": "bob", "NAS_IP_Address": "198.18.0.1", "NAS_Identifier": "pptp-1"}, ["AAAA0002", "AAAA0003"]),
    ],
)
async def test_identification(dae: tuple[DaeServer, Handler], attributes: dict[str, Any], ended: list[str]) -> None:
    server, handler = dae
    answer = await ask(server, request(**attributes))
    assert answer is not None and answer.code == DisconnectACK
    assert [s.acct_session_id for s in handler.disconnected] == ended


@pytest.mark.parametrize(
    ("code", "attributes", "cause"),
    [
        (DisconnectRequest, {"User_Name": "carol"}, "Session-Context-Not-Found"),
        (DisconnectRequest, {"User_Name": "alice", "Framed_IP_Address": "192.168.0.11"}, "Session-Context-Not-Found"),
        (DisconnectRequest, {}, "Missing-Attribute"),
        (DisconnectRequest, {"NAS_IP_Address": "198.18.0.1"}, "Missing-Attribute"),
        (DisconnectRequest, {"User_Name": "alice", "NAS_IP_Address": "198.18.0.9"}, "NAS-Identification-Mismatch"),
        (DisconnectRequest, {"User_Name": "alice", "NAS_Identifier": "pptp-2"}, "NAS-Identification-Mismatch"),
        (DisconnectRequest, {"User_Name": "alice", "NAS_IPv6_Address": "2001:db8::1"}, "NAS-Identification-Mismatch"),
        (DisconnectRequest, {"User_Name": "alice", "Filter_Id": "x"}, "Unsupported-Attribute"),
        (DisconnectRequest, {"User_Name": "alice", "Session_Timeout": 60}, "Unsupported-Attribute"),
        (DisconnectRequest, {"User_Name": "alice", "MS_CHAP_Domain": "x"}, "Unsupported-Attribute"),
        (CoARequest, {"User_Name": "alice"}, "Missing-Attribute"),
        (CoARequest, {"User_Name": "alice", "Idle_Timeout": 60}, "Unsupported-Attribute"),
        (CoARequest, {"User_Name": "alice", "Service_Type": "Authorize-Only"}, "Unsupported-Service"),
        (CoARequest, {"User_Name": "nobody", "Session_Timeout": 60}, "Session-Context-Not-Found"),
    ],
)
async def test_naks(
    dae: tuple[DaeServer, Handler], code: int, attributes: dict[str, Any], cause: str, caplog: pytest.LogCaptureFixture
) -> None:
    server, handler = dae
    with caplog.at_level(logging.INFO, logger="pypptpd.dae"):
        answer = await ask(server, request(code, **attributes))
    assert f"-NAK {cause} (" in caplog.records[-1].getMessage()
    assert answer is not None
    assert answer.code == (DisconnectNAK if code == DisconnectRequest else CoANAK)
    assert answer["Error-Cause"] == [cause]
    assert handler.disconnected == [] and handler.timeouts == []  # nothing done on a NAK


async def test_invalid_values_and_repeated_identification(dae: tuple[DaeServer, Handler]) -> None:
    server, _ = dae
    short_ip = request(User_Name="alice")
    short_ip[8] = [b"\xc0\xa8\x00"]  # Framed-IP-Address of 3 octets
    answer = await ask(server, short_ip)
    assert answer is not None and answer["Error-Cause"] == ["Invalid-Attribute-Value"]
    twice = request(User_Name="alice")
    twice.AddAttribute("User-Name", "bob")
    answer = await ask(server, twice)
    assert answer is not None and answer["Error-Cause"] == ["Invalid-Request"]


async def test_coa_session_timeout(dae: tuple[DaeServer, Handler]) -> None:
    server, handler = dae
    answer = await ask(server, request(CoARequest, User_Name="bob", Session_Timeout=600))
    assert answer is not None and answer.code == CoAACK
    assert [(s.acct_session_id, t) for s, t in handler.timeouts] == [("AAAA0002", 600), ("AAAA0003", 600)]
    assert handler.disconnected == []


async def test_a_failing_handler_gets_resources_unavailable(dae: tuple[DaeServer, Handler]) -> None:
    server, handler = dae
    handler.fail = True
    answer = await ask(server, request(User_Name="alice"))
    assert answer is not None and answer.code == DisconnectNAK
    assert answer["Error-Cause"] == ["Resources-Unavailable"]


async def test_proxy_state_and_state_are_echoed(dae: tuple[DaeServer, Handler]) -> None:
    server, _ = dae
    packet = request(CoARequest, User_Name="alice", Session_Timeout=60, State=b"st\x00te")
    packet.AddAttribute("Proxy-State", b"hop-1")
    packet.AddAttribute("Proxy-State", b"hop-2")
    answer = await ask(server, packet)
    assert answer is not None and answer.code == CoAACK
    assert answer["Proxy-State"] == [b"hop-1", b"hop-2"]
    assert answer["State"] == [b"st\x00te"]


async def test_wrong_secret_unknown_source_and_bad_codes_are_dropped(dae: tuple[DaeServer, Handler]) -> None:
    server, handler = dae
    assert await ask(server, request(User_Name="alice", secret=b"wrong")) is None
    # 127.0.0.1 has its own secret: the /8's does not work from it (the longest prefix wins)
    assert await ask(server, request(User_Name="alice", secret=b"other")) is None
    access = request(User_Name="alice")
    access.code = 1  # Access-Request: not for this port
    assert await ask(server, access) is None
    assert handler.disconnected == []
    assert server.dropped == 3
    lonely = DaeServer([DaeClient.parse("192.0.2.0/24", SECRET)], handler, NAS, host="127.0.0.1", port=0)
    await lonely.start()
    try:
        assert await ask(lonely, request(User_Name="alice")) is None
        assert lonely.dropped == 1
    finally:
        lonely.close()


async def test_length_field(dae: tuple[DaeServer, Handler]) -> None:
    server, handler = dae
    packet = request(User_Name="alice")
    raw = packet.RequestPacket()
    answers = await exchange(server, raw + b"padding")  # octets past Length are padding
    assert len(answers) == 1 and verified(packet, answers[0]).code == DisconnectACK
    truncated = request(User_Name="bob")
    raw = truncated.RequestPacket()
    assert await exchange(server, raw[:-1], b"\x28\x01\x00", wait=0.3) == []
    assert [s.user_name for s in handler.disconnected] == ["alice"]


async def test_message_authenticator(dae: tuple[DaeServer, Handler]) -> None:
    server, handler = dae
    answer = await ask(server, request(User_Name="alice", ma=True))
    assert answer is not None and answer.code == DisconnectACK
    forged = request(User_Name="bob", ma=True)
    raw = bytearray(forged.RequestPacket())
    at = raw.index(bytes([80, 18])) + 2
    raw[at] ^= 1  # a wrong Message-Authenticator, then a Request Authenticator that covers it
    raw[4:20] = hashlib.md5(bytes(raw[:4]) + bytes(16) + bytes(raw[20:]) + SECRET).digest()
    assert await exchange(server, bytes(raw), wait=0.3) == []
    strict = DaeServer([DaeClient.parse("127.0.0.1", SECRET, True)], handler, NAS, host="127.0.0.1", port=0)
    await strict.start()
    try:
        assert await ask(strict, request(User_Name="bob")) is None
        answer = await ask(strict, request(User_Name="bob", ma=True))
        assert answer is not None and answer.code == DisconnectACK
    finally:
        strict.close()
    assert [s.user_name for s in handler.disconnected] == ["alice", "bob", "bob"]


async def test_event_timestamp_window(dae: tuple[DaeServer, Handler]) -> None:
    server, handler = dae
    assert await ask(server, request(User_Name="alice", Event_Timestamp=int(time.time()) - 302)) is None
    assert await ask(server, request(User_Name="alice", Event_Timestamp=int(time.time()) + 302)) is None
    answer = await ask(server, request(User_Name="alice", Event_Timestamp=int(time.time()) - 5))
    assert answer is not None and answer.code == DisconnectACK
    assert len(handler.disconnected) == 1


async def test_a_retransmission_gets_the_cached_answer(dae: tuple[DaeServer, Handler]) -> None:
    server, handler = dae
    packet = request(User_Name="alice")
    raw = packet.RequestPacket()
    first, again = await exchange(server, raw, raw)
    assert first == again and verified(packet, first).code == DisconnectACK
    assert len(handler.disconnected) == 1  # acted on once
    assert server.duplicates == 1
    other = request(User_Name="alice")  # a new request (new authenticator): acted on again
    assert (await ask(server, other)) is not None
    assert len(handler.disconnected) == 2


def test_the_cache_is_bounded_and_expires() -> None:
    now = [1000.0]
    handler = Handler(sessions())
    server = DaeServer([DaeClient.parse("127.0.0.1", SECRET)], handler, NAS, max_cached=4, clock=lambda: now[0])
    raws = [request(User_Name="alice", id=i).RequestPacket() for i in range(10)]
    for raw in raws:
        assert server.handle(raw, ("127.0.0.1", 5000)) is not None
    assert len(server._answers) == 4
    assert server.handle(raws[9], ("127.0.0.1", 5000)) is not None and server.duplicates == 1
    assert len(handler.disconnected) == 10
    now[0] += server.duplicate_window + 1
    server.handle(raws[9], ("127.0.0.1", 5000))  # too late to be a retransmission: a new request
    assert len(handler.disconnected) == 11 and server.duplicates == 1


def test_drops_are_logged_within_a_budget(caplog: pytest.LogCaptureFixture) -> None:
    now = [1000.0]
    server = DaeServer([DaeClient.parse("192.0.2.1", SECRET)], Handler([]), NAS, clock=lambda: now[0])
    raw = request(User_Name="alice").RequestPacket()
    with caplog.at_level(logging.WARNING, logger="pypptpd.dae"):
        for port in range(1000, 1100):
            assert server.handle(raw, ("127.0.0.1", port)) is None
        assert len(caplog.records) == LOG_BURST
        assert "127.0.0.1:1000, which is not a configured client" in caplog.records[0].getMessage()
        now[0] += 61
        server.handle(raw, ("127.0.0.1", 2000))
    assert len(caplog.records) == LOG_BURST + 1
    assert "(90 similar line(s) suppressed)" in caplog.records[-1].getMessage()
    assert server.dropped == 101


def test_ipv4_mapped_sources_and_client_parsing() -> None:
    handler = Handler(sessions())
    server = DaeServer([DaeClient.parse("127.0.0.1", SECRET)], handler, NAS)
    raw = request(User_Name="alice").RequestPacket()
    assert server.handle(raw, ("::ffff:127.0.0.1", 5000, 0, 0)) is not None  # a dual-stack socket's view
    with pytest.raises(ValueError, match="empty secret"):
        DaeClient.parse("127.0.0.1", "")
    with pytest.raises(ValueError):
        DaeClient.parse("not-an-address", "x")


def test_identification_text() -> None:
    identification = SessionIdentification(user_name="alice", framed_ip=IPv4Address("192.168.0.10"), nas_port=0)
    assert str(identification) == "User-Name='alice' Framed-IP-Address=192.168.0.10 NAS-Port=0"
    assert ErrorCause.SESSION_CONTEXT_NOT_FOUND == 503
    for cause in ErrorCause:  # as the shipped dictionary names them (radclient's names too)
        assert load_dictionary().attributes["Error-Cause"].values.GetForward(cause.label) == struct.pack("!I", cause)


# -- the real radclient (freeradius-utils) -----------------------------------------------------


async def radclient(server: DaeServer, kind: str, text: str, secret: bytes = SECRET, *options: str) -> str:
    """radclient's output for one request typed as an admin types it."""
    require_tools("radclient")  # installed by the README's test command: a failure in CI, never a skip
    radclient_path = shutil.which("radclient")
    assert radclient_path is not None
    host, port = server.address
    args = [radclient_path, "-x", "-t", "1", "-r", "2", *options, f"{host}:{port}", kind, secret.decode()]
    process = await asyncio.create_subprocess_exec(
        *args, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(process.communicate(text.encode()), 15)
    return out.decode(errors="replace")


async def test_radclient_disconnect_and_coa(dae: tuple[DaeServer, Handler]) -> None:
    server, handler = dae
    out = await radclient(server, "disconnect", "User-Name = alice\n")
    assert "Received Disconnect-ACK" in out, out
    assert [s.acct_session_id for s in handler.disconnected] == ["AAAA0001"]
    out = await radclient(server, "disconnect", 'User-Name = "carol"\n')
    assert "Received Disconnect-NAK" in out and "Error-Cause = Session-Context-Not-Found" in out, out
    out = await radclient(server, "disconnect", 'Acct-Session-Id = "AAAA0002", NAS-IP-Address = 198.18.0.9\n')
    assert "Received Disconnect-NAK" in out and "Error-Cause = NAS-Identification-Mismatch" in out, out
    out = await radclient(server, "coa", "User-Name = bob, Session-Timeout = 3600, Message-Authenticator = 0x00\n")
    assert "Received CoA-ACK" in out, out
    assert [(s.acct_session_id, t) for s, t in handler.timeouts] == [("AAAA0002", 3600), ("AAAA0003", 3600)]
    out = await radclient(server, "coa", "User-Name = bob, Filter-Id = web-only\n")
    assert "Received CoA-NAK" in out and "Error-Cause = Unsupported-Attribute" in out, out


async def test_radclient_wrong_secret_gets_no_answer(dae: tuple[DaeServer, Handler]) -> None:
    server, handler = dae
    out = await radclient(server, "disconnect", "User-Name = alice\n", b"not-the-secret")
    assert "Received" not in out and "No reply from server" in out, out
    assert handler.disconnected == [] and server.dropped >= 2  # the first try and radclient's retry


async def test_radclient_retransmission_is_answered_from_the_cache(dae: tuple[DaeServer, Handler]) -> None:
    """The first answer is lost on the way back: radclient sends the same request again after its
    1-second timeout, and gets the answer again, while the session was ended once."""
    server, handler = dae
    assert server.transport is not None
    transport = server.transport
    real_sendto = transport.sendto
    lost: list[bytes] = []

    def lossy_sendto(data: bytes, addr: Any = None) -> None:
        if not lost:
            lost.append(data)
            return
        real_sendto(data, addr)

    transport.sendto = lossy_sendto  # type: ignore[method-assign,assignment]
    out = await radclient(server, "disconnect", "User-Name = alice\n")
    assert "Received Disconnect-ACK" in out, out
    assert len(lost) == 1 and server.duplicates == 1
    assert len(handler.disconnected) == 1


def test_request_authenticator_is_md5_over_zeroes_and_secret() -> None:
    """Section 3.5 by hand, without pyrad's request encoder: the server accepts exactly that."""
    handler = Handler(sessions())
    server = DaeServer([DaeClient.parse("127.0.0.1", SECRET)], handler, NAS)
    attributes = bytes([1, 7]) + b"alice"
    header = struct.pack("!BBH", DisconnectRequest, 9, 20 + len(attributes))
    good = header + hashlib.md5(header + bytes(16) + attributes + SECRET).digest() + attributes
    assert server.handle(good, ("127.0.0.1", 1)) is not None
    bad = header + hashlib.md5(header + bytes(16) + attributes + b"x").digest() + attributes
    assert server.handle(bad, ("127.0.0.1", 2)) is None
    assert len(handler.disconnected) == 1
