"""LCP renegotiation after the network is up (RFC 1661 section 4.2: RCR in Opened is tld, scr, sca).

The link goes back to Establish, authenticates again, and CCP and IPCP come back up; data must flow
again, both ways, with MPPE keys from the new authentication (RFC 3079: they derive from the MS-CHAP
exchange, whose challenge is new), and nothing of the old keys may survive LCP down (issue 15
section 4: the first authentication's keys were kept for ever).  Our server against our client in
memory, as in test_ppp_link.py; an independent decryptor built from each authentication's keys says
which keys the data was encrypted with.
"""

from __future__ import annotations

import pytest

from pypptp.ppp.auth import MsChapKeys
from pypptp.ppp.ccp import MppePolicy
from pypptp.ppp.frame import Protocol, parse_frame
from pypptp.ppp.lcp import AUTH_MSCHAP_V1, AUTH_MSCHAP_V2
from pypptp.ppp.link import Authenticated, DataReceived, NetworkDown, NetworkUp, Phase, PppLink
from pypptp.ppp.mppe import MppeDecryptor, start_keys
from tests.test_ppp_link import PING, Wire, client_config, connect, flows_both_ways, of, server_config

MODES = {"stateless": MppePolicy(), "stateful": MppePolicy(stateful=True)}


def server_keys(wire: Wire) -> list[MsChapKeys]:
    """The keys of each successful authentication of the client by the server, in order."""
    keys = [e.result.keys for e in of(wire.server_events, Authenticated) if e.local and e.result.success]
    assert all(k is not None for k in keys)
    return [k for k in keys if k is not None]


def decrypts(keys: MsChapKeys, frame: bytes, stateful: bool) -> bool:
    """Whether the client's receiving direction keyed from ``keys`` reads ``frame`` (sent by the server)."""
    _, receive = start_keys(keys, 128, server=False)
    protocol, offset = parse_frame(frame)
    assert protocol == Protocol.COMPRESSED
    return MppeDecryptor(receive, 128, stateful=stateful).decrypt(frame, offset) == (Protocol.IPV4, PING)


def link_of(wire: Wire, side: str) -> PppLink:
    return wire.server if side == "server" else wire.client


@pytest.mark.parametrize("side", ["client", "server"], ids=["client-renegotiates", "server-renegotiates"])
@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("method", [AUTH_MSCHAP_V2, AUTH_MSCHAP_V1], ids=["mschapv2", "mschapv1"])
def test_data_flows_again_with_the_new_authentications_keys(mode: str, side: str, method: bytes) -> None:
    policy = MODES[mode]
    wire = connect(server_config(method, mppe=policy), client_config(mppe=policy))
    flows_both_ways(wire)
    [first_up] = of(wire.server_events, NetworkUp)
    old = wire.server.encryptor, wire.server.decryptor, wire.client.encryptor, wire.client.decryptor
    link_of(wire, side).renegotiate(wire.now)
    wire.exchange()
    assert len([e for e in wire.server_events if isinstance(e, NetworkDown)]) == 1
    ups = of(wire.server_events, NetworkUp)
    assert len(ups) == 2 and ups[1] == first_up  # same addresses, same MTU, same MPPE
    assert wire.server.phase is wire.client.phase is Phase.NETWORK
    new = wire.server.encryptor, wire.server.decryptor, wire.client.encryptor, wire.client.decryptor
    assert all(n is not None for n in new) and not any(n is o for n, o in zip(new, old, strict=True))
    first, second = server_keys(wire)
    assert first.challenge != second.challenge and first.nt_response != second.nt_response
    assert wire.server.mppe_keys == wire.client.mppe_keys == second
    # the server encrypts with the second authentication's keys, not the first's
    frame = wire.server.send_data(Protocol.IPV4, PING)
    assert frame is not None
    assert decrypts(second, frame, policy.stateful) and not decrypts(first, frame, policy.stateful)
    wire.client.receive_frame(frame, wire.now)
    assert of(wire.client.drain()[1], DataReceived) == [DataReceived(Protocol.IPV4, PING)]
    flows_both_ways(wire)


@pytest.mark.parametrize("mode", list(MODES))
def test_lcp_down_clears_every_key(mode: str) -> None:
    policy = MODES[mode]
    wire = connect(server_config(mppe=policy), client_config(mppe=policy))
    server = wire.server
    assert server.mppe_keys is not None and server.ccp_options is not None
    assert [r.keys is not None for r in server.auth_results] == [True]
    wire.client.renegotiate(wire.now)
    frames, _ = wire.client.drain()
    for frame in frames:  # the client's fresh LCP Configure-Request reaches the server in Opened
        server.receive_frame(frame, wire.now)
    assert server.phase is Phase.ESTABLISH
    assert server.encryptor is None and server.decryptor is None and server.mppe_keys is None
    assert server.ccp_options is None and server.ncps == {} and server.mppe_name == ""
    assert server.auth_local is None and server.auth_remote is None
    [result] = server.auth_results  # kept for the scripts' PEERNAME, without its keys and secret
    assert result.success and result.peer_name == "alice" and result.keys is None and result.secret is None
    assert server.send_data(Protocol.IPV4, PING) is None and not server.data_open(Protocol.IPV4)
    wire.exchange()
    assert [r.keys is not None for r in server.auth_results] == [False, True]
    flows_both_ways(wire, packets=3)
