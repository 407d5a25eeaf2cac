"""Every negotiation converges or ends (issue 14 section 2).

A client that Naks our Authentication-Protocol toward a method we refuse used to make the server
resend Configure-Requests for ever (about 7,000 a second).  The bounds, each checked here against a
client written packet by packet:

* pppd's ``lcp_nakci``: a Nak toward a method we refuse makes us ask for our next allowed method, and
  with none left we drop the option; LCP then opens without authentication and, since we require it,
  the link is terminated with pppd's "peer refused to authenticate" (``auth.c``, ``link_established``).
* pppd's ``rnakloops`` (``fsm.c``): from the Max-Failure-th Configure-Nak in a row, a Nak is taken as a
  Reject of the options it names, so a peer that bounces us between two allowed values converges.
* Ours, in the one automaton: a layer whose requests were Nak'd or Rejected more than
  ``max_refused_requests`` times in one negotiation is closed with a reason the link logs (RFC 1661's
  irc re-initialises the restart counter on every Nak, so nothing in the RFC ends a peer that never
  agrees).
* Ours, in the link: a link that has no network protocol up ``LinkConfig.setup_timeout`` seconds after
  it started (or after an LCP renegotiation) is closed with a log line.

The bar: fewer than 20 Configure-Requests and a Terminate-Request within 1 s of simulated time.
"""

from __future__ import annotations

import dataclasses

import pytest

from pypptp.ppp.frame import Protocol, encode_frame, parse_frame
from pypptp.ppp.fsm import Automaton
from pypptp.ppp.fsm_table import State
from pypptp.ppp.lcp import AUTH_CHAP_MD5, AUTH_MSCHAP_V1, AUTH_MSCHAP_V2, AUTH_PAP, LcpConfig
from pypptp.ppp.link import LinkDown, LinkEvent, LinkLog, NetworkUp, Phase, PppLink
from pypptp.ppp.packet import Code, ControlPacket, decode_packet, encode_options, parse_options
from tests.test_ppp_fsm import CONFIG, MiniHandler
from tests.test_ppp_link import SECRETS, client_config, connect, control, counter32, of, rng_bytes, server_config

AUTH = 3
REFUSED = {"pap": AUTH_PAP, "chap-md5": AUTH_CHAP_MD5, "mschapv1": AUTH_MSCHAP_V1}
CLIENT_REQUEST = bytes.fromhex("0506 5e6f7a8b 0702 0802")  # pptp-linux without asyncmap: magic, PFC, ACFC


# -- the automaton ------------------------------------------------------------------------------------


def _negotiating(handler: MiniHandler | None = None) -> tuple[Automaton, ControlPacket]:
    automaton = Automaton("a", handler or MiniHandler(), CONFIG)
    automaton.open(0.0)
    automaton.up(0.0)
    [request] = automaton.drain()[0]
    return automaton, request


def test_from_the_max_failure_th_nak_in_a_row_a_nak_is_taken_as_a_reject() -> None:
    """pppd's rnakloops: a peer suggesting a new value each time cannot keep us asking for ever."""
    automaton, request = _negotiating()
    for n in range(CONFIG.max_failure):
        assert parse_options(request.data)[0][0] == 1, f"option 1 dropped after only {n} Naks"
        suggestion = encode_options([(1, bytes([n, n]))])
        automaton.receive(ControlPacket(Code.CONFIGURE_NAK, request.identifier, suggestion), 0.0)
        [request] = automaton.drain()[0]
    assert parse_options(request.data) == []  # the Max-Failure-th Nak was taken as a Reject
    assert any("taken as a Configure-Reject" in line for line in automaton.anomalies)


def test_a_reject_or_an_ack_breaks_the_run_of_naks() -> None:
    automaton, request = _negotiating()
    for n in range(2 * CONFIG.max_failure):
        code = Code.CONFIGURE_REJECT if n % 3 == 2 else Code.CONFIGURE_NAK
        data = encode_options([(97, b"")]) if code == Code.CONFIGURE_REJECT else encode_options([(1, b"\x05\x78")])
        automaton.receive(ControlPacket(code, request.identifier, data), 0.0)
        [request] = automaton.drain()[0]
    assert parse_options(request.data) == [(1, b"\x05\x78")]  # never max_failure Naks in a row


@pytest.mark.parametrize("code", [Code.CONFIGURE_NAK, Code.CONFIGURE_REJECT])
def test_a_peer_that_never_agrees_has_the_layer_closed(code: int) -> None:
    """Naks or Rejects of an option we do not send leave our request unchanged for ever: past
    max_refused_requests the automaton closes the layer (Terminate-Request) and says why."""
    automaton, request = _negotiating()
    requests = 1
    for _ in range(100):
        automaton.receive(ControlPacket(code, request.identifier, encode_options([(42, b"\x01")])), 0.0)
        out, _ = automaton.drain()
        if [p.code for p in out] == [Code.TERMINATE_REQUEST]:
            break
        [request] = out
        assert request.code == Code.CONFIGURE_REQUEST
        requests += 1
    assert requests == 1 + CONFIG.max_refused_requests < 20
    assert automaton.state is State.CLOSING
    [failure] = automaton.failures
    assert failure == f"a: no agreement after {CONFIG.max_refused_requests + 1} Configure-Naks/Rejects of our requests"


def test_the_refusal_count_starts_again_with_each_negotiation() -> None:
    a, request = _negotiating()
    for _ in range(CONFIG.max_refused_requests):  # the whole budget: still negotiating
        a.receive(ControlPacket(Code.CONFIGURE_REJECT, request.identifier, encode_options([(42, b"")])), 0.0)
        [request] = a.drain()[0]
    assert a.state is State.REQ_SENT and not a.failures
    a.receive(ControlPacket(Code.CONFIGURE_ACK, request.identifier, request.data), 0.0)
    a.receive(ControlPacket(Code.CONFIGURE_REQUEST, 1, encode_options([(1, b"\x05\x78")])), 0.0)
    assert a.state is State.OPENED
    a.drain()
    a.receive(ControlPacket(Code.CONFIGURE_REQUEST, 2, encode_options([(1, b"\x05\x78")])), 0.0)  # renegotiation
    [request, _ack] = a.drain()[0]
    for _ in range(CONFIG.max_refused_requests):
        a.receive(ControlPacket(Code.CONFIGURE_REJECT, request.identifier, encode_options([(42, b"")])), 0.0)
        [request] = a.drain()[0]
    assert a.state is State.ACK_SENT and not a.failures


# -- a client that Naks our Authentication-Protocol ------------------------------------------------------


class ScriptedClient:
    """A PPTP client's LCP written packet by packet (no CHAP, no PAP, no NCPs).

    It sends pptp-linux's Configure-Request, Acks each of the server's requests that carries no
    Authentication-Protocol, and Naks each one that does, suggesting ``nak_auth`` (``stubborn``: it
    appends that suggestion to a Nak of every request, with or without the option; RFC 1661 section
    5.3 lets a Nak carry options the request did not).  It answers a Terminate-Request."""

    def __init__(self, nak_auth: bytes | None, *, stubborn: bool = False) -> None:
        self.nak_auth = nak_auth
        self.stubborn = stubborn
        self.identifier = 0

    def request(self) -> bytes:
        self.identifier += 1
        return encode_frame(
            Protocol.LCP, ControlPacket(Code.CONFIGURE_REQUEST, self.identifier, CLIENT_REQUEST).encode()
        )

    def answer(self, packet: ControlPacket) -> list[bytes]:
        if packet.code == Code.CONFIGURE_REQUEST:
            has_auth = any(kind == AUTH for kind, _ in parse_options(packet.data))
            if self.nak_auth is not None and (has_auth or self.stubborn):
                reply = ControlPacket(Code.CONFIGURE_NAK, packet.identifier, encode_options([(AUTH, self.nak_auth)]))
            else:
                reply = ControlPacket(Code.CONFIGURE_ACK, packet.identifier, packet.data)
        elif packet.code == Code.TERMINATE_REQUEST:
            reply = ControlPacket(Code.TERMINATE_ACK, packet.identifier)
        else:
            return []
        return [encode_frame(Protocol.LCP, reply.encode())]


@dataclasses.dataclass
class Run:
    sent: list[tuple[float, ControlPacket]]  # the server's LCP packets, with the time each left
    events: list[LinkEvent]

    def codes(self, code: int) -> list[float]:
        return [when for when, packet in self.sent if packet.code == code]


def run(server: PppLink, client: ScriptedClient, seconds: float = 1.0, step: float = 0.01) -> Run:
    """The server against the scripted client for ``seconds`` of simulated time (bounded)."""
    result = Run([], [])
    now = 0.0
    server.open(now)
    to_server = [client.request()]
    while True:
        for _ in range(1000):
            for frame in to_server:
                server.receive_frame(frame, now)
            frames, events = server.drain()
            result.events += events
            to_server = []
            for frame in frames:
                protocol, offset = parse_frame(frame)
                if protocol == Protocol.LCP:
                    packet = decode_packet(frame[offset:])
                    result.sent.append((now, packet))
                    to_server += client.answer(packet)
            if not to_server:
                break
        else:
            raise AssertionError("the server and the client never went quiet at one instant")
        if now >= seconds or server.phase is Phase.DEAD:
            return result
        now = round(now + step, 6)
        server.handle_timer(now)


def _server() -> PppLink:
    """The seed's options: require-mschap-v2, require-mppe-128."""
    return PppLink(server_config(), secrets=SECRETS, random_bytes=rng_bytes(1), random32=counter32(1))


@pytest.mark.parametrize("method", list(REFUSED.values()), ids=list(REFUSED))
def test_a_client_naking_auth_toward_a_refused_method_is_terminated_within_a_second(method: bytes) -> None:
    result = run(_server(), ScriptedClient(method))
    requests, terminates = result.codes(Code.CONFIGURE_REQUEST), result.codes(Code.TERMINATE_REQUEST)
    assert len(requests) < 20 and terminates and terminates[0] <= 1.0
    # pppd drops the option after the Nak (lcp_nakci), LCP opens without it, and link_established hangs up
    assert len(requests) == 2
    [second] = [packet for _, packet in result.sent if packet.code == Code.CONFIGURE_REQUEST][1:]
    assert AUTH not in dict(parse_options(second.data))
    warnings = [e.message for e in of(result.events, LinkLog) if e.level == "warning"]
    assert "peer refused to authenticate: terminating link" in warnings
    assert [e.reason for e in of(result.events, LinkDown)] == ["peer refused to authenticate"]
    assert of(result.events, NetworkUp) == []


@pytest.mark.parametrize("method", list(REFUSED.values()), ids=list(REFUSED))
def test_a_client_naking_every_request_is_terminated_within_a_second(method: bytes) -> None:
    """The Nak keeps suggesting authentication after we stopped asking: nothing changes our request,
    so only the bound on refused requests ends it."""
    result = run(_server(), ScriptedClient(method, stubborn=True))
    requests, terminates = result.codes(Code.CONFIGURE_REQUEST), result.codes(Code.TERMINATE_REQUEST)
    assert len(requests) < 20 and terminates and terminates[0] <= 1.0
    warnings = [e.message for e in of(result.events, LinkLog) if e.level == "warning"]
    assert any(line.startswith("LCP: no agreement after") for line in warnings), warnings
    [down] = of(result.events, LinkDown)
    assert down.reason.startswith("LCP: no agreement after")


def test_a_client_bouncing_us_between_two_allowed_methods_converges() -> None:
    """Allowed MS-CHAPv2 and v1; the client Naks each toward the other (pppd's rnakloops ends it)."""
    config = server_config(lcp=LcpConfig(mru=1400, auth_methods=(AUTH_MSCHAP_V2, AUTH_MSCHAP_V1)))
    server = PppLink(config, secrets=SECRETS, random_bytes=rng_bytes(1), random32=counter32(1))

    class Bouncer(ScriptedClient):
        def answer(self, packet: ControlPacket) -> list[bytes]:
            asked = dict(parse_options(packet.data)).get(AUTH) if packet.code == Code.CONFIGURE_REQUEST else None
            self.nak_auth = {AUTH_MSCHAP_V2: AUTH_MSCHAP_V1, AUTH_MSCHAP_V1: AUTH_MSCHAP_V2}.get(asked or b"")
            return super().answer(packet)

    result = run(server, Bouncer(None))
    requests, terminates = result.codes(Code.CONFIGURE_REQUEST), result.codes(Code.TERMINATE_REQUEST)
    assert len(requests) <= 1 + CONFIG.max_failure and terminates and terminates[0] <= 1.0
    assert [e.reason for e in of(result.events, LinkDown)] == ["peer refused to authenticate"]


@pytest.mark.parametrize("method", list(REFUSED.values()), ids=list(REFUSED))
def test_our_client_limited_to_a_refused_method_is_told_off_at_once(method: bytes) -> None:
    wire = connect(server_config(), client_config(lcp=LcpConfig(server=False, auth_methods=(method,))))
    codes = [p.code for p in control(wire.to_client, Protocol.LCP)]
    assert codes.count(Code.CONFIGURE_REQUEST) == 2 and Code.TERMINATE_REQUEST in codes
    assert [e.reason for e in of(wire.server_events, LinkDown)] == ["peer refused to authenticate"]
    assert wire.server.phase is Phase.DEAD  # without any time passing


def test_a_server_allowing_a_second_method_follows_the_nak_to_it() -> None:
    config = server_config(lcp=LcpConfig(mru=1400, auth_methods=(AUTH_MSCHAP_V2, AUTH_MSCHAP_V1)))
    wire = connect(config, client_config(lcp=LcpConfig(server=False, auth_methods=(AUTH_MSCHAP_V1,))))
    assert wire.server.network_up is not None and of(wire.server_events, LinkDown) == []


# -- the link's deadline ----------------------------------------------------------------------------------


def test_a_link_that_never_reaches_the_network_is_closed_at_the_deadline() -> None:
    """The client Acks LCP and then never answers the Challenge: closed at setup_timeout (here shorter
    than CHAP's own 10 Challenges x 3 s), with a log line."""
    server = PppLink(server_config(setup_timeout=10.0), secrets=SECRETS, random_bytes=rng_bytes(1))
    result = run(server, ScriptedClient(None), seconds=20.0, step=0.5)
    [terminate] = result.codes(Code.TERMINATE_REQUEST)
    assert terminate == 10.0
    warnings = [e.message for e in of(result.events, LinkLog) if e.level == "warning"]
    assert "no network protocol came up within 10 s; closing the link" in warnings
    assert [e.reason for e in of(result.events, LinkDown)] == ["no network protocol came up within 10 s"]


def test_a_client_renegotiating_before_each_challenge_times_out_is_closed_at_the_default_deadline() -> None:
    """Each LCP renegotiation restarts CHAP's ten Challenges: only the link's deadline ends this."""
    server = _server()
    assert server.config.setup_timeout == 60.0

    client = ScriptedClient(None)
    now = 0.0
    server.open(now)
    pending = [client.request()]
    terminate_at = None
    for _ in range(2000):  # 0.1 s steps, 200 s at most
        for _ in range(50):
            for frame in pending:
                server.receive_frame(frame, now)
            frames, _ = server.drain()
            pending = []
            for frame in frames:
                protocol, offset = parse_frame(frame)
                if protocol == Protocol.LCP:
                    packet = decode_packet(frame[offset:])
                    if packet.code == Code.TERMINATE_REQUEST and terminate_at is None:
                        terminate_at = now
                    pending += client.answer(packet)
            if not pending:
                break
        if server.phase is Phase.DEAD:
            break
        now = round(now + 0.1, 6)
        if round(now * 10) % 200 == 0:  # every 20 s, before CHAP gives up at 30 s
            pending.append(client.request())
        server.handle_timer(now)
    assert terminate_at == 60.0


def test_the_deadline_is_gone_once_the_network_is_up_and_back_after_a_renegotiation() -> None:
    wire = connect(server_config(), client_config())
    assert wire.server.network_up is not None
    assert wire.server.setup_deadline is None and wire.server.next_deadline() is None
    wire.advance(300, step=10)
    assert wire.server.network_up is not None and of(wire.server_events, LinkDown) == []
    wire.server.renegotiate(wire.now)  # back to Establish: a fresh deadline
    assert wire.server.setup_deadline == wire.now + 60.0
    wire.exchange()
    assert wire.server.network_up is not None and wire.server.setup_deadline is None


def test_a_zero_setup_timeout_means_no_deadline() -> None:
    server = PppLink(server_config(setup_timeout=0.0), secrets=SECRETS, random_bytes=rng_bytes(1))
    server.open(0.0)
    server.drain()
    assert server.next_deadline() == 3.0  # only LCP's restart timer
