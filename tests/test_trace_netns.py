"""``pypptpd --trace DIR`` against a library client tracing its own side, in network namespaces.

What the server's trace says it sent is what the client's trace says it
received, packet for packet (PPP control packets) and message for message
(PPTP control), and the other way round; the file is named without anything
the peer chose; a flood of LCP Echo-Requests ends the file with ``truncated``
at the bound and costs the session nothing.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pypptp.client.tunnel import PptpClientSession, client_link_config
from pypptp.ppp.frame import Protocol, encode_frame
from pypptp.ppp.packet import Code, ControlPacket
from tests.conftest import Pypptpd

pytestmark = pytest.mark.netns

NAME = re.compile(r"^\d{8}T\d{6}\.\d{6}Z-\d{1,5}-198\.18\.\d{1,3}\.\d{1,3}\.jsonl$")


async def traced_client(daemon: Pypptpd, trace: Path) -> PptpClientSession:
    pair = daemon.pair
    gre = pair.socket(pair.client_ns, socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_GRE)
    sock = pair.connect(pair.client_ns, daemon.address)
    return await PptpClientSession.connect(
        pair.server_ip,
        user="alice",
        password="s3cret",
        config=client_link_config("alice", "s3cret", mru=1400),
        sock=sock,
        gre_sock=gre,
        timeout=15,
        trace=str(trace),
    )


def read_events(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def wait_for_end(directory: Path, timeout: float = 10.0) -> Path:
    """The one trace file in ``directory``, once its ``end`` event is written."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        files = list(directory.iterdir())
        if len(files) == 1 and files[0].read_text().rstrip().endswith("}") and '"event":"end"' in files[0].read_text():
            return files[0]
        time.sleep(0.05)
    raise AssertionError(f"no finished trace in {directory}: {list(directory.iterdir())}")


def of(events: list[dict[str, Any]], category: str, name: str) -> list[dict[str, Any]]:
    return [e["data"] for e in events if e["category"] == category and e["event"] == name]


async def test_the_servers_trace_and_the_clients_agree_packet_for_packet(
    start_pypptpd: Callable[..., Pypptpd], tmp_path: Path
) -> None:
    traces = tmp_path / "traces"
    traces.mkdir()
    daemon = start_pypptpd(args=["--trace", str(traces)])
    client_file = tmp_path / "client.jsonl"
    session = await traced_client(daemon, client_file)
    assert session.network is not None
    await session.close()
    server_file = wait_for_end(traces)
    assert NAME.match(server_file.name), server_file.name
    server, client = read_events(server_file), read_events(client_file)
    for events in (server, client):
        assert events[0]["event"] == "header" and events[-1]["event"] == "end"
        assert events[0]["data"]["version"] == 1
    assert server[0]["data"]["role"] == "server" and server[0]["data"]["peer"] == daemon.pair.client_ip
    assert client[0]["data"]["role"] == "client" and client[0]["data"]["peer"] == daemon.pair.server_ip

    # PPP control packets, both ways, in order, field for field
    assert len(of(server, "ppp", "sent")) >= 8
    assert of(server, "ppp", "sent") == of(client, "ppp", "rcvd")
    assert of(client, "ppp", "sent") == of(server, "ppp", "rcvd")

    # PPTP control messages: from the SCCRQ on, the server received what the client sent and the other way
    server_rcvd, client_sent = of(server, "ctrl", "rcvd"), of(client, "ctrl", "sent")
    server_sent, client_rcvd = of(server, "ctrl", "sent"), of(client, "ctrl", "rcvd")
    assert [m["type"] for m in server_rcvd[:2]] == ["StartControlConnectionRequest", "OutgoingCallRequest"]
    assert server_rcvd == client_sent[: len(server_rcvd)]
    assert server_sent == client_rcvd[: len(server_sent)]
    assert "CallDisconnectNotify" in [m["type"] for m in server_sent] or "CallClearRequest" in [
        m["type"] for m in server_rcvd
    ]

    # the rest of the story, on the server's side
    assert of(server, "auth", "result")[0]["success"] is True and of(server, "auth", "result")[0]["peer"] == "alice"
    assert of(server, "mppe", "keys-derived")[0]["send_bits"] == 128
    assert [p["new"] for p in of(server, "phase", "change")][:3] == ["ESTABLISH", "AUTHENTICATE", "NETWORK"]
    assert of(server, "gre", "counters")[0]["received"] > 0
    assert "s3cret" not in server_file.read_text() and "s3cret" not in client_file.read_text()


async def test_a_flood_of_echo_requests_truncates_the_trace_at_its_bound(
    start_pypptpd: Callable[..., Pypptpd], tmp_path: Path
) -> None:
    traces = tmp_path / "traces"
    traces.mkdir()
    bound = 300
    daemon = start_pypptpd(args=["--trace", str(traces), "--trace-max-events", str(bound)])
    session = await traced_client(daemon, tmp_path / "client.jsonl")
    assert session.ppp is not None and session.gre is not None
    magic = session.ppp.link.lcp_options.our_magic.to_bytes(4, "big")
    sent = 0
    for burst in range(20):
        for i in range(100):
            echo = ControlPacket(Code.ECHO_REQUEST, (burst * 100 + i) & 0xFF, magic).encode()
            sent += session.gre.send(encode_frame(Protocol.LCP, echo))
        await asyncio.sleep(0.05)  # the server's acks open the window again
    assert sent > bound * 2
    assert not session.ppp.closed  # the flood costs the session nothing
    await session.close()
    server_file = wait_for_end(traces)
    events = read_events(server_file)
    assert len(events) == bound + 2  # the bound (the header counts), then truncated and end
    assert events[-2]["event"] == "truncated" and events[-1]["event"] == "end"
    assert events[-1]["data"]["dropped"] > 0
    assert server_file.stat().st_size < 200_000
