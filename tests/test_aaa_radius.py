"""pypptp.aaa.radius against RADIUS servers played by the test on loopback UDP, with pyrad building and
reading their side: the attributes of each method, answers decoded, forged and unsigned answers dropped
(BlastRADIUS), retries, failover, deadtime, an outage, accounting, and the bounds."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import itertools
import logging
import time
from collections.abc import Callable
from ipaddress import IPv4Address

import pytest
from pyrad import packet as rp

from pypptp.aaa import load_dictionary
from pypptp.aaa.radius import (
    LOG_BURST,
    LOG_WINDOW,
    RadiusClient,
    RadiusReply,
    decrypt_ms_chap_mppe_keys,
    to_verdict,
    verify_answer,
)
from pypptp.conf.radiusclient import RadiusConfig, RadiusServer
from pypptp.ppp.auth import MsChapKeys

SECRET = b"testing123"
DICT = load_dictionary()


@dataclasses.dataclass(frozen=True)
class Req:
    method: str
    name: bytes
    identifier: int
    challenge: bytes
    response: bytes


PAP = Req("PAP", b"alice", 0, b"", b"s3cret")
CHAP = Req("CHAP-MD5", b"alice", 7, bytes(range(16)), bytes(range(100, 116)))
# v1: LM(24) NT(24) flags(1); v2: peer challenge(16) reserved(8) NT(24) flags(1)
V1 = Req("MS-CHAP", b"alice", 9, bytes(range(8)), bytes(24) + bytes(range(24)) + b"\x01")
V2 = Req("MS-CHAP-V2", b"alice", 42, bytes(range(16)), bytes(range(50, 66)) + bytes(8) + bytes(range(24)) + b"\x00")

Handler = Callable[[rp.Packet, bytes], "bytes | None"]


class FakeServer(asyncio.DatagramProtocol):
    """A RADIUS server on 127.0.0.1: ``handler(request, raw)`` returns the answer's bytes, or None to stay
    silent.  Records every datagram and its source."""

    def __init__(self, handler: Handler, secret: bytes = SECRET) -> None:
        self.handler = handler
        self.secret = secret
        self.received: list[tuple[bytes, tuple[str, int], float]] = []
        self.sent: list[bytes] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.received.append((data, addr, time.monotonic()))
        kind = rp.AcctPacket if data[0] == rp.AccountingRequest else rp.AuthPacket
        request = kind(packet=data, secret=self.secret, dict=DICT)
        answer = self.handler(request, data)
        if answer is not None and self.transport is not None:
            self.sent.append(answer)
            self.transport.sendto(answer, addr)

    @property
    def port(self) -> int:
        assert self.transport is not None
        return self.transport.get_extra_info("sockname")[1]

    def requests(self) -> list[rp.Packet]:
        return [
            (rp.AcctPacket if data[0] == rp.AccountingRequest else rp.AuthPacket)(
                packet=data, secret=self.secret, dict=DICT
            )
            for data, _, _ in self.received
        ]


async def serve(handler: Handler, secret: bytes = SECRET) -> FakeServer:
    loop = asyncio.get_running_loop()
    _, server = await loop.create_datagram_endpoint(lambda: FakeServer(handler, secret), local_addr=("127.0.0.1", 0))
    return server


def config(*servers: FakeServer, acct: tuple[FakeServer, ...] = (), **fields: object) -> RadiusConfig:
    made = RadiusConfig(
        path="test",
        auth_servers=tuple(RadiusServer("127.0.0.1", s.port, SECRET) for s in servers),
        acct_servers=tuple(RadiusServer("127.0.0.1", s.port, SECRET) for s in acct),
        timeout=0.2,
        retries=2,
    )
    return dataclasses.replace(made, **fields)  # type: ignore[arg-type]


def answer(code: int, **attributes: object) -> Handler:
    """A server answering ``code`` with ``attributes`` (``Reply_Message`` for Reply-Message)."""

    def handler(request: rp.Packet, raw: bytes) -> bytes:
        reply = request.CreateReply()
        reply.code = code
        for name, value in attributes.items():
            reply.AddAttribute(name.replace("_", "-"), value)
        return reply.ReplyPacket()

    return handler


def accept(**attributes: object) -> Handler:
    return answer(rp.AccessAccept, **attributes)


def reject(**attributes: object) -> Handler:
    return answer(rp.AccessReject, **attributes)


def all_identifiers_free(client: RadiusClient) -> bool:
    """No Identifier leaked: every socket has its 256 back and nothing pending."""
    channels = [channel for state in (*client._auth, *client._acct) for channel in state.channels]
    return bool(channels) and all(len(c.free) == 256 and not c.pending for c in channels)


# -- requests ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("request_", [PAP, CHAP, V1, V2], ids=lambda r: r.method)
async def test_access_request_is_what_pyrad_builds_from_the_attribute_names(request_: Req) -> None:
    server = await serve(accept())
    client = RadiusClient(config(server))
    try:
        reply = await client.authenticate(
            request_, nas_port=3, calling_station_id="203.0.113.9", called_station_id="192.0.2.1"
        )
    finally:
        await client.close()
    assert reply.accepted and reply.answered and reply.server == f"127.0.0.1:{server.port}"
    ((raw, _, _),) = server.received
    # the same request built by pyrad from attribute names, with the same Identifier and authenticator
    reference = rp.AuthPacket(code=rp.AccessRequest, id=raw[1], secret=SECRET, authenticator=raw[4:20], dict=DICT)
    reference.add_message_authenticator()
    reference["User-Name"] = "alice"
    reference["Service-Type"] = "Framed-User"
    reference["Framed-Protocol"] = "PPP"
    reference["NAS-Port-Type"] = "Virtual"
    reference["NAS-Port"] = 3
    reference["Calling-Station-Id"] = "203.0.113.9"
    reference["Called-Station-Id"] = "192.0.2.1"
    reference["NAS-IP-Address"] = "127.0.0.1"  # the socket's source address: nothing configured
    if request_ is PAP:
        reference["User-Password"] = reference.PwCrypt("s3cret")
    elif request_ is CHAP:
        reference[3] = [bytes([7]) + bytes(range(100, 116))]  # CHAP-Password: Identifier + value
        reference[60] = [bytes(range(16))]
    elif request_ is V1:
        reference[(311, 11)] = [bytes(range(8))]
        reference[(311, 1)] = [bytes([9, 1]) + bytes(24) + bytes(range(24))]  # ident, flags, LM, NT
    else:
        reference[(311, 11)] = [bytes(range(16))]
        reference[(311, 25)] = [bytes([42, 0]) + bytes(range(50, 66)) + bytes(8) + bytes(range(24))]
    assert raw == reference.RequestPacket()
    decoded = server.requests()[0]
    assert decoded.verify_message_authenticator()
    assert raw[20] == 80  # Message-Authenticator first
    if request_ is PAP:
        assert decoded.PwDecrypt(decoded["User-Password"][0]) == "s3cret"
    if request_ is CHAP:
        assert decoded.VerifyChapPasswd(b"irrelevant") is False  # pyrad reads our CHAP-Password


async def test_nas_identifier_and_extra_attributes() -> None:
    server = await serve(accept())
    client = RadiusClient(config(server, nas_identifier="pptp-1"))
    try:
        await client.authenticate(V2, attributes=[("Framed-MTU", 1400), ("Class", b"0x41")])
    finally:
        await client.close()
    request = server.requests()[0]
    assert request["NAS-Identifier"] == ["pptp-1"] and "NAS-IP-Address" not in request
    assert request["Framed-MTU"] == [1400]
    assert request[25] == [b"0x41"]  # octets go in as they are (pyrad would have read 0x41 as hex)


async def test_the_callers_nas_attributes_replace_ours() -> None:
    server = await serve(acct_ok)
    client = RadiusClient(config(acct=(server,), nas_identifier="configured"))
    try:
        assert await client.account([*RECORD, ("NAS-IP-Address", "192.0.2.10")])
    finally:
        await client.close()
    request = server.requests()[0]
    assert request["NAS-IP-Address"] == ["192.0.2.10"] and "NAS-Identifier" not in request


async def test_closing_ends_waiting_requests_cleanly() -> None:
    server = await serve(lambda request, raw: None)
    client = RadiusClient(config(server, server, timeout=5, retries=3))
    task = asyncio.create_task(client.authenticate(PAP))
    while not server.received:
        await asyncio.sleep(0.01)
    started = time.monotonic()
    await client.close()
    reply = await task
    assert not reply.answered and reply.reason == "the RADIUS client is closed"
    assert time.monotonic() - started < 1 and len(server.received) == 1


async def test_requests_that_cannot_be_sent() -> None:
    client = RadiusClient(config())
    assert (await client.authenticate(PAP)).reason == "no authserver configured"
    bad = dataclasses.replace(V2, response=b"short")
    reply = await client.authenticate(bad)
    assert not reply.answered and "49 expected" in reply.reason
    long_password = dataclasses.replace(PAP, response=b"x" * 129)
    assert "128 fit" in (await client.authenticate(long_password)).reason


# -- answers -----------------------------------------------------------------------------------------


async def test_accept_is_read_keys_decrypted_and_turned_into_a_verdict() -> None:
    send_key, recv_key = bytes(range(16)), bytes(range(16, 32))
    server = await serve(
        accept(
            MS_CHAP2_Success=bytes([42]) + b"S=" + b"A" * 40,
            MS_MPPE_Send_Key=send_key,
            MS_MPPE_Recv_Key=recv_key,
            MS_MPPE_Encryption_Policy="Encryption-Required",
            MS_MPPE_Encryption_Types=6,
            Framed_IP_Address="192.168.7.7",
            Framed_Pool="shared",
            Session_Timeout=3600,
            Idle_Timeout=600,
            Acct_Interim_Interval=60,
            Framed_MTU=1400,
            Class=[b"one", b"two"],
            Reply_Message="welcome",
        )
    )
    client = RadiusClient(config(server))
    try:
        reply = await client.authenticate(V2)
    finally:
        await client.close()
    # the salt-encrypted keys really were encrypted on the wire
    assert send_key not in server.sent[0] and recv_key not in server.sent[0] and reply.problems == ()
    assert reply == RadiusReply(
        accepted=True,
        answered=True,
        reason=f"Access-Accept from 127.0.0.1:{server.port}",
        server=f"127.0.0.1:{server.port}",
        reply_message="welcome",
        ms_chap2_success="S=" + "A" * 40,
        mppe_send_key=send_key,
        mppe_recv_key=recv_key,
        mppe_policy=2,
        mppe_types=6,
        framed_ip_address=IPv4Address("192.168.7.7"),
        framed_pool="shared",
        session_timeout=3600,
        idle_timeout=600,
        acct_interim_interval=60,
        framed_mtu=1400,
        classes=(b"one", b"two"),
    )
    verdict = to_verdict(reply, V2)
    assert (verdict.ok, verdict.message, verdict.grant) == (True, b"S=" + b"A" * 40, reply)
    fields = {f.name for f in dataclasses.fields(MsChapKeys)}
    if "send_key" in fields:
        assert verdict.keys is not None
        assert (verdict.keys.send_key, verdict.keys.recv_key) == (send_key, recv_key)
        assert verdict.keys.nt_response == bytes(range(24)) and verdict.keys.challenge == V2.challenge


async def test_ms_chap_v1_keys() -> None:
    lm_key, nt_key = bytes(8), bytes(range(16))

    def handler(request: rp.Packet, raw: bytes) -> bytes:
        reply = request.CreateReply()
        reply.code = rp.AccessAccept
        # RFC 2548 2.4.1: hidden like User-Password, with the Request Authenticator (pyrad's PwCrypt)
        hider = rp.AuthPacket(secret=SECRET, authenticator=request.authenticator, dict=DICT)
        reply[(311, 12)] = [hider.PwCrypt(lm_key + nt_key)]
        return reply.ReplyPacket()

    server = await serve(handler)
    client = RadiusClient(config(server))
    try:
        reply = await client.authenticate(V1)
    finally:
        await client.close()
    assert reply.ms_chap_mppe_keys == lm_key + nt_key
    verdict = to_verdict(reply, V1)
    assert verdict.ok and verdict.message == b""
    assert verdict.keys == MsChapKeys(1, b"", nt_key, bytes(range(24)), V1.challenge, None)


def test_ms_chap_mppe_keys_decryption_against_pyrad() -> None:
    authenticator = bytes(range(16))
    hidden = rp.AuthPacket(secret=b"s", authenticator=authenticator, dict=DICT).PwCrypt(bytes(range(1, 25)))
    assert decrypt_ms_chap_mppe_keys(hidden, b"s", authenticator) == bytes(range(1, 25))
    assert decrypt_ms_chap_mppe_keys(hidden[:16], b"s", authenticator) is None


async def test_reject_with_ms_chap_error_reaches_the_peer() -> None:
    error = "E=691 R=0 C=000102030405060708090A0B0C0D0E0F V=3 M=Authentication rejected"
    server = await serve(reject(MS_CHAP_Error=chr(42) + error, Reply_Message="bad password"))
    client = RadiusClient(config(server))
    try:
        reply = await client.authenticate(V2)
    finally:
        await client.close()
    assert not reply.accepted and reply.answered and reply.ms_chap_error == error
    verdict = to_verdict(reply, V2)
    assert (verdict.ok, verdict.message) == (False, error.encode())
    assert verdict.reason == f"Access-Reject from 127.0.0.1:{server.port} (bad password)"
    # without MS-CHAP-Error: empty, the core's own Failure; PAP and CHAP get Reply-Message
    bare = dataclasses.replace(reply, ms_chap_error=None, reply_message=None)
    assert to_verdict(bare, V2).message == to_verdict(bare, V1).message == to_verdict(bare, PAP).message == b""
    assert to_verdict(reply, CHAP).message == b"bad password"


async def test_accept_without_ms_chap2_success_fails_v2() -> None:
    server = await serve(accept())
    client = RadiusClient(config(server))
    try:
        verdict = to_verdict(await client.authenticate(V2), V2)
    finally:
        await client.close()
    assert not verdict.ok and "without MS-CHAP2-Success" in verdict.reason


# -- forged and unsigned answers are dropped ------------------------------------------------------------


def unsigned(request: rp.Packet, raw: bytes) -> bytes:
    reply = request.CreateReply(message_authenticator=False)
    reply.code = rp.AccessAccept
    return reply.ReplyPacket()


def wrong_signature(request: rp.Packet, raw: bytes) -> bytes:
    signed = bytearray(accept()(request, raw) or b"")
    assert signed[20] == 80
    signed[22] ^= 1  # the Message-Authenticator's first byte; then a right Response Authenticator again
    signed[4:20] = hashlib.md5(bytes(signed[:4]) + request.authenticator + bytes(signed[20:]) + SECRET).digest()
    return bytes(signed)


def wrong_secret(request: rp.Packet, raw: bytes) -> bytes:
    request.secret = b"not the secret"
    return accept()(request, raw) or b""


def with_proxy_state(request: rp.Packet, raw: bytes) -> bytes:
    reply = request.CreateReply()
    reply.code = rp.AccessAccept
    reply[33] = [b"forged"]
    return reply.ReplyPacket()


@pytest.mark.parametrize(
    ("handler", "logged"),
    [
        (unsigned, "no Message-Authenticator (required on Access-* answers: BlastRADIUS, CVE-2024-3596)"),
        (wrong_signature, "wrong Message-Authenticator"),
        (wrong_secret, "wrong Response Authenticator"),
        (with_proxy_state, "Proxy-State in the answer"),
    ],
    ids=["unsigned", "wrong-signature", "wrong-secret", "proxy-state"],
)
async def test_bad_answers_are_dropped_and_logged(
    handler: Handler, logged: str, caplog: pytest.LogCaptureFixture
) -> None:
    server = await serve(handler)
    client = RadiusClient(config(server))
    caplog.set_level(logging.DEBUG, "pypptpd.radius")
    try:
        reply = await client.authenticate(PAP)
    finally:
        await client.close()
    assert not reply.accepted and not reply.answered and reply.reason.startswith("no answer from")
    assert len(server.received) == 2  # the request was sent again: a bad answer decides nothing
    assert any(logged in record.getMessage() for record in caplog.records)
    assert all(record.name == "pypptpd.radius" for record in caplog.records)


async def test_forged_answer_then_the_real_one() -> None:
    """A datagram with a bad signature arriving first does not stop the real answer from counting."""
    real = accept(Reply_Message="real")

    def handler(request: rp.Packet, raw: bytes) -> bytes | None:
        assert server.transport is not None
        server.transport.sendto(unsigned(request, raw), server.received[-1][1])
        return real(request, raw)

    server = await serve(handler)
    client = RadiusClient(config(server))
    try:
        reply = await client.authenticate(PAP)
    finally:
        await client.close()
    assert reply.accepted and reply.reply_message == "real" and len(server.received) == 1


async def test_dropped_datagrams_are_logged_within_a_budget(caplog: pytest.LogCaptureFixture) -> None:
    """15 junk datagrams per try, 2 tries: 10 warnings; a window later, the next one counts the other 20."""

    def junk(request: rp.Packet, raw: bytes) -> None:
        assert server.transport is not None
        for _ in range(15):
            server.transport.sendto(b"junk", server.received[-1][1])

    now = [1000.0]
    server = await serve(junk)
    client = RadiusClient(config(server), clock=lambda: now[0])
    caplog.set_level(logging.WARNING, "pypptpd.radius")

    def dropped() -> list[str]:
        return [r.getMessage() for r in caplog.records if "dropped a datagram of 4 bytes" in r.getMessage()]

    try:
        assert not (await client.authenticate(PAP)).answered
        assert len(dropped()) == LOG_BURST
        now[0] += LOG_WINDOW
        assert not (await client.authenticate(PAP)).answered
    finally:
        await client.close()
    assert len(dropped()) == 2 * LOG_BURST
    assert dropped()[LOG_BURST].endswith("(20 similar line(s) suppressed)")


def test_verify_answer_rejects_junk() -> None:
    assert verify_answer(b"\x02", rp.AccessRequest, bytes(16), SECRET) == "1 bytes, shorter than a RADIUS header"
    header = bytes([2, 1, 0, 200]) + bytes(16)
    assert verify_answer(header, rp.AccessRequest, bytes(16), SECRET) == "Length field 200 for 20 bytes"
    assert "no answer to code 1" in (verify_answer(bytes([5, 1, 0, 20]) + bytes(16), 1, bytes(16), SECRET) or "")


# -- retries, failover, deadtime, outage ----------------------------------------------------------------


def silent_for(count: int, then: Handler) -> Handler:
    seen = [0]

    def handler(request: rp.Packet, raw: bytes) -> bytes | None:
        seen[0] += 1
        return None if seen[0] <= count else then(request, raw)

    return handler


async def test_retransmission_is_the_same_datagram_after_the_timeout() -> None:
    server = await serve(silent_for(2, accept()))
    client = RadiusClient(config(server, retries=3, timeout=0.3))
    try:
        reply = await client.authenticate(V2)
    finally:
        await client.close()
    assert reply.accepted
    datagrams = [data for data, _, _ in server.received]
    times = [at for _, _, at in server.received]
    assert len(datagrams) == 3 and datagrams[0] == datagrams[1] == datagrams[2]
    assert all(0.25 < later - earlier < 0.6 for earlier, later in itertools.pairwise(times))


async def test_failover_then_the_dead_server_is_asked_last(caplog: pytest.LogCaptureFixture) -> None:
    down = await serve(lambda request, raw: None)
    up = await serve(accept())
    now = [1000.0]
    client = RadiusClient(config(down, up, retries=2, timeout=0.2, deadtime=30), clock=lambda: now[0])
    caplog.set_level(logging.INFO, "pypptpd.radius")
    try:
        started = time.monotonic()
        first = await client.authenticate(PAP)
        elapsed = time.monotonic() - started
        assert first.accepted and first.server == f"127.0.0.1:{up.port}"
        assert len(down.received) == 2 and 0.35 < elapsed < 1.5  # two tries 0.2 s apart, then the next server
        assert f"no answer from 127.0.0.1:{down.port} after 2 tries" in caplog.text
        second = await client.authenticate(PAP)
        assert second.accepted and len(down.received) == 2  # dead: not asked while another answers
        now[0] += 31  # the deadtime is over
        await client.authenticate(PAP)
        assert len(down.received) == 4
    finally:
        await client.close()


async def test_outage_is_a_clear_result_bounded_in_time_and_the_loop_runs_on(caplog: pytest.LogCaptureFixture) -> None:
    first = await serve(lambda request, raw: None)
    second = await serve(lambda request, raw: None)
    client = RadiusClient(config(first, second, retries=2, timeout=0.2))
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.create_task(ticker())
    caplog.set_level(logging.INFO, "pypptpd.radius")
    try:
        started = time.monotonic()
        replies = await asyncio.gather(*(client.authenticate(PAP) for _ in range(20)))
        elapsed = time.monotonic() - started
        assert all_identifiers_free(client)
    finally:
        task.cancel()
        await client.close()
    assert 0.75 < elapsed < 2.0 and ticks > 40  # 2 servers x 2 tries x 0.2 s; the loop never blocked
    assert {reply.answered for reply in replies} == {False}
    assert replies[0].reason == (
        f"no answer from 127.0.0.1:{first.port}, 127.0.0.1:{second.port} (2 tries each, 0.2 s apart)"
    )
    assert 'RADIUS: user "alice": no answer from' in caplog.text


async def test_unreachable_server_name_is_a_failure_not_an_exception() -> None:
    client = RadiusClient(
        RadiusConfig(path="t", auth_servers=(RadiusServer("nonexistent.invalid", 1812, b"s"),), timeout=0.2, retries=1)
    )
    try:
        reply = await client.authenticate(PAP)
    finally:
        await client.close()
    assert not reply.answered and reply.reason.startswith("no answer from nonexistent.invalid:1812")


# -- accounting ---------------------------------------------------------------------------------------


def acct_ok(request: rp.Packet, raw: bytes) -> bytes:
    return request.CreateReply().ReplyPacket()


RECORD = [
    ("Acct-Status-Type", "Stop"),
    ("Acct-Session-Id", "4E2A0001"),
    ("User-Name", "alice"),
    ("NAS-Port", 0),
    ("NAS-Port-Type", "Virtual"),
    ("Acct-Input-Octets", 1234),
    ("Acct-Input-Gigawords", 1),
    ("Acct-Terminate-Cause", "User-Request"),
    ("Class", b"one"),
]


async def test_accounting_lands_with_delay_time_updated_on_each_retransmission() -> None:
    server = await serve(silent_for(2, acct_ok))
    client = RadiusClient(config(acct=(server,), retries=3, timeout=0.6))
    try:
        assert await client.account(RECORD)
        assert all_identifiers_free(client)
    finally:
        await client.close()
    requests = server.requests()
    assert len(requests) == 3
    assert [request["Acct-Delay-Time"][0] for request in requests] == [0, 0, 1]
    assert len({request.id for request in requests}) == 3  # a changed request gets a new Identifier
    for (raw, _, _), request in zip(server.received, requests, strict=True):
        assert request.VerifyAcctRequest() and raw[20] == 80 and request.verify_message_authenticator()
    last = requests[-1]
    assert last["Acct-Status-Type"] == ["Stop"] and last["Acct-Session-Id"] == ["4E2A0001"]
    assert last["Acct-Input-Gigawords"] == [1] and last["Class"] == [b"one"]
    assert last["NAS-IP-Address"] == ["127.0.0.1"]


async def test_lost_accounting_record_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    server = await serve(lambda request, raw: None)
    client = RadiusClient(config(acct=(server,), retries=1, timeout=0.2))
    caplog.set_level(logging.INFO, "pypptpd.radius")
    try:
        assert not await client.account(RECORD)
    finally:
        await client.close()
    assert "accounting Stop record of session 4E2A0001 lost: no answer from" in caplog.text
    assert not await RadiusClient(config()).account(RECORD)  # no acctserver: nothing to do


# -- bounds -----------------------------------------------------------------------------------------


async def test_more_than_256_outstanding_use_another_socket() -> None:
    held: list[tuple[rp.Packet, tuple[str, int]]] = []
    server: FakeServer

    def handler(request: rp.Packet, raw: bytes) -> None:
        held.append((request, server.received[-1][1]))
        if len(held) == 300:  # answer only once all are outstanding
            assert server.transport is not None
            for request_, addr in held:
                server.transport.sendto(accept()(request_, b"") or b"", addr)

    server = await serve(handler)
    client = RadiusClient(config(server, timeout=5, retries=1))
    try:
        replies = await asyncio.gather(*(client.authenticate(PAP) for _ in range(300)))
    finally:
        await client.close()
    assert all(reply.accepted for reply in replies)
    sources = {addr for _, addr, _ in server.received}
    assert len(sources) == 2  # 256 Identifiers a socket


async def test_queue_is_bounded() -> None:
    server = await serve(lambda request, raw: None)
    client = RadiusClient(config(server, timeout=0.3, retries=1), max_outstanding=2, max_queued=3)
    try:
        replies = await asyncio.gather(*(client.authenticate(PAP) for _ in range(8)))
    finally:
        await client.close()
    full = [reply for reply in replies if reply.reason == "3 requests already wait for an answer"]
    assert len(full) == 3 and len(server.received) == 5
