"""What a peer can make one PPP link log (issue 15 sections 2 and 3), in memory.

Peer-driven notices (bogus CHAP or PAP packets in the Authenticate phase, Echo-Replies carrying our own
magic, repeated Protocol-Rejects) are logged once per reason and link, counted after that, and summed up
in one line when the link ends.  Peer-supplied names are escaped and capped in every log line, and a
name with a control character is refused at authentication.
"""

from __future__ import annotations

import pytest

from pypptp.ppp.auth import AuthConfig, peer_authname, printable
from pypptp.ppp.chap import ChapCode
from pypptp.ppp.frame import Protocol, encode_frame, parse_frame
from pypptp.ppp.lcp import AUTH_CHAP_MD5, AUTH_MSCHAP_V1, AUTH_MSCHAP_V2, AUTH_PAP
from pypptp.ppp.link import AuthAttemptFailed, Authenticated, LinkDown, LinkEvent, LinkLog, Phase, PppLink
from pypptp.ppp.packet import Code, ControlPacket, decode_packet
from tests.test_ppp_link import SECRETS, client_config, connect, counter32, of, rng_bytes, server_config

LOUD = {"info", "notice", "warning", "error"}
BAR = 12
"""Lines a flood of one kind may cause on one link, first occurrences and summary included."""


def loud(events: list[LinkEvent]) -> list[str]:
    return [e.message for e in of(events, LinkLog) if e.level in LOUD]


def in_authentication(method: bytes = AUTH_MSCHAP_V2, **server: object) -> tuple[PppLink, ControlPacket]:
    """A server link in the Authenticate phase with its Challenge outstanding (the client's CHAP and PAP
    frames are never delivered), and that Challenge (or, for PAP, a dummy)."""
    server_link = PppLink(server_config(method, **server), secrets=SECRETS, random_bytes=rng_bytes(1))
    client = PppLink(client_config(), random_bytes=rng_bytes(2), random32=counter32(2))
    server_link.open(0.0)
    client.open(0.0)
    challenge = ControlPacket(0, 0)
    for _ in range(50):
        to_client, _ = server_link.drain()
        to_server, _ = client.drain()
        if not to_client and not to_server:
            break
        for frame in to_client:
            protocol, offset = parse_frame(frame)
            if protocol == Protocol.CHAP:
                challenge = decode_packet(frame[offset:])
            client.receive_frame(frame, 0.0)
        for frame in to_server:
            if parse_frame(frame)[0] not in (Protocol.CHAP, Protocol.PAP):
                server_link.receive_frame(frame, 0.0)
    assert server_link.phase is Phase.AUTHENTICATE
    return server_link, challenge


def chap(code: int, identifier: int, data: bytes) -> bytes:
    return encode_frame(Protocol.CHAP, ControlPacket(code, identifier, data).encode())


def response_data(name: bytes, size: int = 49) -> bytes:
    return bytes((size,)) + bytes(size) + name


def test_bogus_chap_responses_in_the_authenticate_phase_are_logged_once_per_reason() -> None:
    """10,000 of each kind of bogus packet a peer can send before its real Response: wrong Identifier,
    wrong Value-Size, malformed, a code meant for the peer.  Before: one INFO line each."""
    link, challenge = in_authentication()
    wrong = (challenge.identifier + 7) & 0xFF
    kinds = [
        chap(ChapCode.RESPONSE, wrong, response_data(b"mallory")),
        chap(ChapCode.RESPONSE, challenge.identifier, response_data(b"mallory", 16)),
        chap(ChapCode.RESPONSE, challenge.identifier, b"\xff"),
        chap(5, challenge.identifier, b"\x00" * 20),  # MS-CHAP Change-Password: not supported
    ]
    events: list[LinkEvent] = []
    for n in range(10_000):
        for frame in kinds:
            link.receive_frame(frame, n * 0.001)
        events += link.drain()[1]
    lines = loud(events)
    assert len(lines) == len(kinds), lines
    assert link.phase is Phase.AUTHENTICATE  # bogus packets are no attempt: the real one may still come
    link.close(11.0, "test over")  # LCP ends of itself (Terminate-Requests, no answer): the link sums up
    lines = []
    for second in range(12, 60):
        link.handle_timer(float(second))
        lines += loud(link.drain()[1])
    assert link.phase is Phase.DEAD
    summary = [line for line in lines if "repeated" in line]
    assert len(summary) == 1 and "9999" in summary[0], lines
    assert len(lines) <= BAR


def test_echo_replies_carrying_our_magic_are_logged_once() -> None:
    wire = connect(server_config(), client_config())
    magic = wire.server.lcp_options.our_magic.to_bytes(4, "big")
    reply = encode_frame(Protocol.LCP, ControlPacket(Code.ECHO_REPLY, 1, magic).encode())
    events: list[LinkEvent] = []
    for n in range(10_000):
        wire.server.receive_frame(reply, wire.now + n * 0.001)
        events += wire.server.drain()[1]
    lines = loud(events)
    assert len(lines) == 1 and "our own Echo-Reply" in lines[0]
    wire.server.lower_down(wire.now + 20, "test over")  # the owner tears down: it takes the summary
    summary = wire.server.take_notice_summary()
    assert summary is not None and "9999" in summary and "Echo-Reply" in summary
    assert wire.server.take_notice_summary() is None


def test_protocol_rejects_for_protocols_we_do_not_run_are_logged_once() -> None:
    wire = connect(server_config(), client_config())
    events: list[LinkEvent] = []
    running = (Protocol.LCP, Protocol.CHAP, Protocol.IPCP, Protocol.CCP, Protocol.IPV4, Protocol.COMPRESSED)
    for n, protocol in enumerate(p for p in range(0x8001, 0xC001, 2) if p not in running):
        rejected = protocol.to_bytes(2, "big")
        frame = encode_frame(Protocol.LCP, ControlPacket(Code.PROTOCOL_REJECT, n & 0xFF, rejected).encode())
        wire.server.receive_frame(frame, wire.now)
        events += wire.server.drain()[1]
    assert len(loud(events)) == 1, loud(events)[:5]
    assert wire.server.network_up is not None


@pytest.mark.parametrize("method", [AUTH_MSCHAP_V2, AUTH_MSCHAP_V1, AUTH_CHAP_MD5], ids=["mschapv2", "mschapv1", "md5"])
def test_a_60_kb_chap_name_is_capped_in_every_line(method: bytes) -> None:
    """Before: a 60 KB name wrote 720 KB of log in two lines."""
    link, challenge = in_authentication(method)
    size = 16 if method == AUTH_CHAP_MD5 else 49
    name = b"A" * 60_000
    link.receive_frame(chap(ChapCode.RESPONSE, challenge.identifier, response_data(name, size)), 1.0)
    link.lower_down(2.0, "test over")
    events = link.drain()[1]
    lines = [e.message for e in of(events, LinkLog)]
    assert sum(map(len, lines)) < 4096, [len(line) for line in lines]
    assert [e.peer_name for e in of(events, AuthAttemptFailed)] == [name.decode()]  # the full name is kept


def pap_request(identifier: int, name: bytes, password: bytes) -> bytes:
    data = bytes((len(name),)) + name + bytes((len(password),)) + password
    return encode_frame(Protocol.PAP, ControlPacket(1, identifier, data).encode())


@pytest.mark.parametrize(
    "name",
    [b"alice\x00", b"ali\nce", b"\x01alice", b"alice\x7f", "al\u2028ice".encode()],
    ids=["nul", "lf", "soh", "del", "ls"],
)
@pytest.mark.parametrize("method", [AUTH_MSCHAP_V2, AUTH_CHAP_MD5, AUTH_PAP], ids=["mschapv2", "md5", "pap"])
def test_a_name_with_a_control_character_is_refused_as_a_failed_attempt(name: bytes, method: bytes) -> None:
    """A secret for the name without the control character exists, and the password is right: still a
    Failure (or Nak), counted, with the name escaped in the log."""
    server_link = PppLink(server_config(method), secrets=SECRETS, random_bytes=rng_bytes(1))
    client = PppLink(
        client_config(user=name.decode("utf-8", "surrogateescape")), random_bytes=rng_bytes(2), random32=counter32(2)
    )
    events = negotiate(server_link, client)
    assert not any(e.result.success for e in of(events, Authenticated))
    assert of(events, AuthAttemptFailed) and server_link.network_up is None
    lines = [e.message for e in of(events, LinkLog)]
    assert any("control character" in line for line in lines)
    for character in ("\x00", "\n", "\x01", "\x7f", "\u2028"):
        assert not any(character in line for line in lines)


def test_peer_authname_is_what_pppd_passes_as_peername() -> None:
    assert peer_authname("DOMAIN\\alice", True) == "alice"
    assert peer_authname("DOMAIN\\alice", False) == "DOMAIN\\alice"
    assert peer_authname("a\x00b", False) == "a\\x00b"
    assert peer_authname("x" * 1000, False) == "x" * 256
    assert len(peer_authname("\x01" * 1000, False)) == 256
    assert peer_authname("Jos\udce9", False) == "Jos\\xe9"  # a byte that is not UTF-8
    assert printable("a" * 100) == "a" * 64 + "..."


def test_the_server_refuses_a_control_character_before_looking_the_name_up() -> None:
    """With chapms-strip-domain the ``DOMAIN\\`` part is free text: a NUL there still refuses the name."""
    config = server_config(AUTH_MSCHAP_V2, auth=AuthConfig(our_name="pptpd", strip_domain=True))
    server_link = PppLink(config, secrets=SECRETS, random_bytes=rng_bytes(1))
    client = PppLink(client_config(user="EVIL\x00\\alice"), random_bytes=rng_bytes(2), random32=counter32(2))
    events = negotiate(server_link, client)
    assert not any(e.result.success for e in of(events, Authenticated))
    assert server_link.network_up is None and of(events, AuthAttemptFailed)
    assert of(events, LinkDown) or server_link.phase in (Phase.TERMINATE, Phase.AUTHENTICATE)


def negotiate(server: PppLink, client: PppLink, rounds: int = 100) -> list[LinkEvent]:
    """Open both links and carry their frames both ways until both are quiet (bounded); the server's events."""
    server.open(0.0)
    client.open(0.0)
    events: list[LinkEvent] = []
    for _ in range(rounds):
        to_client, server_events = server.drain()
        to_server, _ = client.drain()
        events += server_events
        if not to_client and not to_server:
            break
        for frame in to_client:
            client.receive_frame(frame, 0.0)
        for frame in to_server:
            server.receive_frame(frame, 0.0)
    return events
