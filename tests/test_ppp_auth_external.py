"""Authentication judged outside the core (``AuthConfig.external``): what a RADIUS backend relies on.

The judge here does what a RADIUS server does with an Access-Request (RFC 2865 PAP and CHAP, RFC 2548
MS-CHAP), from the AuthRequest alone and a password it knows: it checks the response, and for
MS-CHAPv2 answers with the ``S=`` authenticator response and the two MPPE keys the server derives
(RFC 3079 section 3), which is all the NAS ever learns.  Our own client must then authenticate, check
``S=``, and exchange MPPE-encrypted data with the server keyed from those keys alone.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import re
from typing import Any

import pytest

from pypptp.ppp.auth import AuthMethod, AuthRequest, ExternalVerdict, MsChapKeys
from pypptp.ppp.chap import ChapAuthenticator, ChapCode, offered_retry
from pypptp.ppp.crypto import (
    challenge_hash,
    challenge_response,
    generate_authenticator_response,
    hash_nt_password_hash,
    lm_password_hash,
    nt_password_hash,
    strip_domain,
)
from pypptp.ppp.frame import Protocol
from pypptp.ppp.lcp import AUTH_CHAP_MD5, AUTH_MSCHAP_V1, AUTH_MSCHAP_V2, AUTH_PAP
from pypptp.ppp.link import Authenticated, DataReceived, LinkConfig, NetworkUp, Phase, VerifyRequested
from pypptp.ppp.mppe import get_asymmetric_start_key, get_master_key
from pypptp.ppp.packet import ControlPacket
from pypptp.ppp.pap import PapCode
from tests.test_ppp_auth import chap, client, final, pap_request, sent, server
from tests.test_ppp_link import PING, Wire, client_config, connect, flows_both_ways, of, server_config

PASSWORD = "s3cret pass"
ALL = [AUTH_MSCHAP_V2, AUTH_MSCHAP_V1, AUTH_CHAP_MD5, AUTH_PAP]
IDS = ["mschapv2", "mschapv1", "chap-md5", "pap"]


def judge(request: AuthRequest, password: str = PASSWORD, *, error: bytes | None = None) -> ExternalVerdict:
    """A RADIUS server's decision, from the request and the user's password (nothing from the core)."""
    if request.method == "PAP":
        ok = hmac.compare_digest(request.response, password.encode())
        return ExternalVerdict(ok, reason="judge")
    if request.method == "CHAP-MD5":
        value = hashlib.md5(bytes((request.identifier,)) + password.encode() + request.challenge).digest()
        return ExternalVerdict(hmac.compare_digest(request.response, value), reason="judge")
    password_hash = nt_password_hash(password)
    if request.method == "MS-CHAP":
        nt_response = request.response[24:48]
        if nt_response != challenge_response(request.challenge, password_hash):
            return ExternalVerdict(False, error or b"E=691 R=1", reason="judge")
        keys = MsChapKeys(1, b"", hash_nt_password_hash(password_hash), nt_response, request.challenge,
                          lm_password_hash(password))  # fmt: skip
        return ExternalVerdict(True, reason="judge", keys=keys)
    peer_challenge, nt_response = request.response[:16], request.response[24:48]
    user = strip_domain(request.name)
    expected = challenge_response(challenge_hash(peer_challenge, request.challenge, user), password_hash)
    if nt_response != expected:
        return ExternalVerdict(False, error or b"E=691 R=1 C=" + b"AB" * 16 + b" V=3 M=rejected", reason="judge")
    success = generate_authenticator_response(password_hash, nt_response, peer_challenge, request.challenge, user)
    master = get_master_key(hash_nt_password_hash(password_hash), nt_response)
    send = get_asymmetric_start_key(master, 16, send=True, server=True)  # MS-MPPE-Send-Key
    recv = get_asymmetric_start_key(master, 16, send=False, server=True)  # MS-MPPE-Recv-Key
    # nothing the NAS could derive from: only the server's keys
    keys = MsChapKeys(2, b"", b"", nt_response, request.challenge, send_key=send, recv_key=recv)
    return ExternalVerdict(True, success.encode(), reason="judge", keys=keys, grant={"Framed-MTU": 1400})


def external(option: bytes, **config: Any) -> ChapAuthenticator:
    """:func:`tests.test_ppp_auth.server` judging outside (PAP's has the ``pending``, ``complete`` of CHAP's)."""
    return server(option, _NoLookup(), 5, external=True, **config)  # type: ignore[return-value]


def challenged(srv: AuthMethod, peer: AuthMethod) -> ControlPacket:
    """Start both sides, give the peer our Challenge (PAP: nothing), and return its answer, not yet delivered."""
    srv.start(0.0)
    peer.start(0.0)
    for packet in sent(srv):
        peer.receive(packet, 0.0)
    (response,) = sent(peer)
    return response


class _NoLookup:
    def lookup(self, client: str, server: str) -> None:
        raise AssertionError("an external authenticator never looks secrets up")


# -- the authenticators alone ------------------------------------------------------------------------


@pytest.mark.parametrize("option", ALL, ids=IDS)
def test_the_request_carries_what_radius_needs_and_the_verdict_decides(option: bytes) -> None:
    srv = external(option)
    peer = client(option, "alice", PASSWORD)
    response = challenged(srv, peer)
    srv.receive(response, 0.0)
    assert sent(srv) == [] and srv.result is None and srv.next_deadline() is None  # waiting, no retransmission
    request = srv.pending
    assert request is not None and srv.awaiting is request and request.name == b"alice"
    assert PASSWORD not in repr(request) and "alice" in repr(request)
    if option != AUTH_PAP:
        assert request.challenge == srv.challenge and request.identifier == response.identifier
    srv.receive(response, 1.0)  # a repeat while the judge works is discarded
    assert sent(srv) == []
    srv.pending = None  # what the link does when it takes it
    srv.complete(judge(request), 2.0)
    (reply,) = sent(srv)
    peer.receive(reply, 2.0)
    assert final(peer).success, final(peer).message  # MS-CHAPv2: our client checked S=
    result = final(srv)
    assert result.success and "(judge)" in result.message
    if option == AUTH_MSCHAP_V2:
        assert result.grant == {"Framed-MTU": 1400} and result.keys is not None and result.keys.send_key
    srv.complete(judge(request), 3.0)  # a second verdict changes nothing
    assert sent(srv) == [] and final(srv) is result


@pytest.mark.parametrize("option", ALL, ids=IDS)
def test_a_rejection_fails_the_attempt(option: bytes) -> None:
    srv = external(option, max_attempts=1)
    peer = client(option, "alice", "wrong")
    srv.receive(challenged(srv, peer), 0.0)
    assert srv.pending is not None
    srv.complete(judge(srv.pending), 1.0)
    (reply,) = sent(srv)
    assert reply.code == (PapCode.AUTHENTICATE_NAK if option == AUTH_PAP else ChapCode.FAILURE)
    result = final(srv)
    assert not result.success and "judge" in result.message and srv.failed_attempts == ["alice"]
    if option in (AUTH_MSCHAP_V1, AUTH_MSCHAP_V2):
        # the judge allowed a retry, but no attempt is left: the client must not retry
        assert b"R=0" in reply.data and b"R=1" not in reply.data


def test_ms_chap_error_from_the_server_reaches_the_client_and_its_challenge_is_the_retrys() -> None:
    srv = external(AUTH_MSCHAP_V2)
    peer = client(AUTH_MSCHAP_V2, "alice", "typo")
    srv.receive(challenged(srv, peer), 0.0)
    assert srv.pending is not None
    error = b"E=691 R=1 C=" + b"5A" * 16 + b" V=3 M=Bad password for alice"
    srv.complete(judge(srv.pending, error=error), 1.0)
    (failure,) = sent(srv)
    assert failure.code == 4 and failure.data == error  # verbatim
    assert srv.challenge == bytes([0x5A]) * 16 and srv.result is None
    peer.receive(failure, 1.0)
    assert "Bad password for alice" in final(peer).message
    retry_peer = client(AUTH_MSCHAP_V2, "alice", PASSWORD, seed=9)
    retry_peer.receive(chap(1, (failure.identifier + 1) & 0xFF, srv.challenge, b"pptpd"), 2.0)
    srv.receive(sent(retry_peer)[0], 2.0)
    request = srv.pending
    assert request is not None and request.attempt == 2 and request.challenge == bytes([0x5A]) * 16
    srv.complete(judge(request), 3.0)
    (success,) = sent(srv)
    assert success.code == 3 and final(srv).success


def test_ms_chap_error_without_a_usable_challenge_is_final() -> None:
    assert offered_retry(b"E=691 R=1 C=00 V=3", 16) is None
    assert offered_retry(b"E=691 R=0 C=" + b"00" * 16, 16) is None
    assert offered_retry(b"E=691 R=1 C=" + b"0a" * 8 + b" V=2", 8) == bytes([10]) * 8
    srv = external(AUTH_MSCHAP_V1)
    peer = client(AUTH_MSCHAP_V1, "alice", "typo")
    srv.receive(challenged(srv, peer), 0.0)
    assert srv.pending is not None
    srv.complete(judge(srv.pending, error=b"E=691 R=1"), 1.0)  # FreeRADIUS's v1 text: no C=
    (failure,) = sent(srv)
    assert failure.data == b"E=691 R=0" and not final(srv).success


def test_mschapv2_accepted_without_s_equals_is_a_failure() -> None:
    srv = external(AUTH_MSCHAP_V2)
    peer = client(AUTH_MSCHAP_V2, "alice", PASSWORD)
    srv.receive(challenged(srv, peer), 0.0)
    srv.complete(ExternalVerdict(True, b"", reason="a server without MS-CHAP2-Success"), 1.0)
    (failure,) = sent(srv)
    assert failure.code == 4 and b"R=0" in failure.data
    assert not final(srv).success and "S= authenticator response" in final(srv).message


def test_pap_reply_message_is_the_servers() -> None:
    srv = external(AUTH_PAP)
    srv.start(0.0)
    srv.receive(pap_request(7, b"alice", b"nope"), 0.0)
    assert srv.pending is not None and srv.pending.response == b"nope"
    srv.complete(ExternalVerdict(False, b"Account expired", reason="Access-Reject"), 1.0)
    (nak,) = sent(srv)
    assert nak.code == 3 and nak.data == b"\x0fAccount expired"
    srv.receive(pap_request(7, b"alice", b"nope"), 2.0)  # a repeat after the reply gets the same reply
    assert sent(srv) == [nak]


def test_a_control_character_in_the_name_is_refused_before_the_judge() -> None:
    srv = external(AUTH_MSCHAP_V2)
    srv.start(0.0)
    response = chap(2, srv.drain()[0][0].identifier, bytes(49), b"al\nice")
    srv.receive(response, 0.0)
    assert srv.pending is None and sent(srv)[0].code == 4


# -- on a link ------------------------------------------------------------------------------------------


def external_link(method: bytes = AUTH_MSCHAP_V2, **changes: Any) -> Wire:
    base = server_config(method)
    config: LinkConfig = dataclasses.replace(base, auth=dataclasses.replace(base.auth, external=True), **changes)
    return connect(config, client_config(), seed=3, secrets=None)


@pytest.mark.parametrize("method", [AUTH_MSCHAP_V2, AUTH_MSCHAP_V1], ids=["mschapv2", "mschapv1"])
def test_mppe_keyed_from_the_servers_keys_carries_data_both_ways(method: bytes) -> None:
    wire = external_link(method)
    [asked] = of(wire.server_events, VerifyRequested)
    assert wire.server.phase is Phase.AUTHENTICATE
    assert wire.server.auth_verdict(asked.request, judge(asked.request), wire.now)
    wire.exchange()
    [done] = of(wire.server_events, Authenticated)
    assert done.result.success
    [up] = of(wire.server_events, NetworkUp)
    assert up.mppe == "MPPE 128-bit stateless"
    flows_both_ways(wire, 3)


def test_swapped_keys_would_not_decrypt() -> None:
    """The test above can fail: keys the wrong way round give garbage, which the link drops."""
    wire = external_link()
    [asked] = of(wire.server_events, VerifyRequested)
    good = judge(asked.request)
    assert good.keys is not None
    swapped = MsChapKeys(2, b"", b"", b"", b"", send_key=good.keys.recv_key, recv_key=good.keys.send_key)
    assert wire.server.auth_verdict(asked.request, ExternalVerdict(True, good.message, keys=swapped), wire.now)
    wire.exchange()
    assert of(wire.server_events, NetworkUp) and of(wire.client_events, NetworkUp)  # up: only the keys are wrong
    frame = wire.client.send_data(Protocol.IPV4, PING)
    assert frame is not None
    wire.server.receive_frame(frame, wire.now)
    assert of(wire.server.drain()[1], DataReceived) == []
    decryptor = wire.server.decryptor
    assert decryptor is not None and decryptor.dropped["bad protocol"] == 1  # dropped by MPPE, as garbage


def test_a_late_verdict_after_the_link_went_down_is_ignored() -> None:
    wire = external_link()
    [asked] = of(wire.server_events, VerifyRequested)
    wire.server.lower_down(wire.now, "call cleared")
    assert not wire.server.auth_verdict(asked.request, judge(asked.request), wire.now)
    assert not of(wire.server.drain()[1], Authenticated)


def test_a_verdict_for_an_old_lcp_session_does_not_authenticate_the_new_one() -> None:
    wire = external_link()
    [old] = of(wire.server_events, VerifyRequested)
    wire.client.renegotiate(wire.now)  # the client restarts LCP while the judge works
    wire.exchange()
    fresh = of(wire.server_events, VerifyRequested)[-1]
    assert fresh.request is not old.request
    assert not wire.server.auth_verdict(old.request, judge(old.request), wire.now)
    assert wire.server.phase is Phase.AUTHENTICATE
    assert wire.server.auth_verdict(fresh.request, judge(fresh.request), wire.now)
    wire.exchange()
    assert of(wire.server_events, NetworkUp)


def test_a_judge_that_never_answers_is_bounded_by_the_setup_deadline() -> None:
    wire = external_link(setup_timeout=20.0)
    assert of(wire.server_events, VerifyRequested)
    wire.advance(25.0)
    assert wire.server.phase is Phase.DEAD
    assert re.search(r"no network protocol|setup", str(wire.server.close_reason)), wire.server.close_reason
