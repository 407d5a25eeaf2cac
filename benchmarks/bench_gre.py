"""GRE data-path cost per packet, beside a bare floor loop, in namespaces it creates.

``python -m benchmarks.bench_gre [--json FILE]`` (root; iproute2).

Setup: two throw-away namespaces joined by veth (198.18.0.1 and
198.18.0.2).  For each round the sender fills the receiver's raw GRE socket
with ``BATCH`` GRE data packets of 1400-byte payload, then the receiver
processes them as fast as it can, timed with ``perf_counter``:

* **project path**: ``GreTransport``'s drain (``recv_into`` into the reused
  buffer, IHL strip, ``decode_header``, demultiplexing) -> ``GreCall``
  (``GreSequencer.on_data``) -> deliver, which echoes the payload back with
  ``GreCall.send`` (window check, sequence and ack numbers, ``write_header``
  into the reused buffer, ``sendto``);
* **floor**: ``recv_into`` + ``sendto`` of the same bytes, nothing else.

Rounds alternate between the two, so both see the same machine state; the
median of the rounds is reported with the ratio.  A third table measures
the fact the transport's design rests on: every unconnected raw GRE socket
on the host gets its own copy of every GRE packet, so the kernel's work per
packet grows with the number of such sockets.  Every loop is bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import statistics
import time

from pypptp.aio.gre import GreCall, GreTransport, set_receive_buffer
from pypptp.gre.codec import encode_packet
from pypptp.gre.sequencing import GreSequencer
from pypptp.host.netns import NetnsPair, netns_available, two_hosts

BATCH = 1500
ROUNDS = 9
PAYLOAD = bytes(1400)
CALL_ID, PEER_CALL_ID = 0x1234, 0x4321


def _raw(pair: NetnsPair, ns: str) -> socket.socket:
    sock = pair.socket(ns, socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_GRE)
    set_receive_buffer(sock, 16 * 1024 * 1024)
    return sock


def _fill(sender: socket.socket, pair: NetnsPair, first_seq: int) -> None:
    for n in range(BATCH):
        sender.sendto(encode_packet(CALL_ID, PAYLOAD, seq=(first_seq + n) & 0xFFFFFFFF), (pair.server_ip, 0))


def _drain_sink(sink: socket.socket) -> None:
    sink.setblocking(False)
    try:
        while sink.recv(65536):
            pass
    except BlockingIOError:
        pass


def _floor_round(receiver: socket.socket, peer: tuple[str, int]) -> float:
    buffer = bytearray(65536)
    view = memoryview(buffer)
    receiver.setblocking(False)
    done = 0
    start = time.perf_counter()
    while done < BATCH:
        try:
            n = receiver.recv_into(buffer)
        except BlockingIOError:
            break
        ihl = (buffer[0] & 0x0F) * 4
        receiver.sendto(view[ihl:n], peer)
        done += 1
    elapsed = time.perf_counter() - start
    if done != BATCH:
        raise RuntimeError(f"floor round saw {done} of {BATCH} packets: receive buffer too small")
    return elapsed / BATCH * 1e6


def _project_round(transport: GreTransport, pair: NetnsPair) -> float:
    sequencer = GreSequencer(peer_window=65535, our_window=65535)
    call = GreCall(
        transport, pair.client_ip, CALL_ID, PEER_CALL_ID, lambda payload: call.send(payload), sequencer=sequencer
    )
    try:
        start = time.perf_counter()
        for _ in range(BATCH):  # bounded; each call drains up to 256 packets
            before = transport.counters.received
            transport.drain()
            if transport.counters.received == before:
                break
        elapsed = time.perf_counter() - start
        delivered = sequencer.counters.delivered
        if delivered != BATCH or call.seq.counters.sent != BATCH:
            raise RuntimeError(f"project round delivered {delivered}, sent {call.seq.counters.sent} of {BATCH}")
        return elapsed / BATCH * 1e6
    finally:
        call.close()


async def _main_async() -> dict[str, object]:
    with two_hosts("bench") as pair:
        sender = _raw(pair, pair.client_ns)  # also the sink for the echoed packets
        transport = GreTransport()
        floors, projects = [], []
        seq = 0
        for _ in range(ROUNDS):  # one receiving socket at a time: each would get a copy of every packet
            floor_sock = _raw(pair, pair.server_ns)
            _fill(sender, pair, seq)
            seq += BATCH
            floors.append(_floor_round(floor_sock, (pair.client_ip, 0)))
            floor_sock.close()
            _drain_sink(sender)
            transport.open(_raw(pair, pair.server_ns), watch=False)  # driven by hand, timed
            _fill(sender, pair, seq)
            seq += BATCH
            projects.append(_project_round(transport, pair))
            transport.close()
            _drain_sink(sender)
        floor, project = statistics.median(floors), statistics.median(projects)

        copies: dict[int, float] = {}
        for extra in (0, 8, 64):
            extras = [_raw(pair, pair.server_ns) for _ in range(extra)]
            receiver = _raw(pair, pair.server_ns)
            start = time.perf_counter()
            _fill(sender, pair, seq)
            seq += BATCH
            copies[extra] = (time.perf_counter() - start) / BATCH * 1e6
            for sock in [*extras, receiver]:
                sock.close()
        sender.close()
    return {
        "batch": BATCH,
        "rounds": ROUNDS,
        "payload_bytes": len(PAYLOAD),
        "floor_us_per_packet": floor,
        "project_us_per_packet": project,
        "ratio": project / floor,
        "send_us_per_packet_by_extra_unconnected_sockets": copies,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="GRE data-path cost per packet.")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    reason = netns_available()
    if reason is not None:
        raise SystemExit(f"bench_gre {reason}: it creates network namespaces")
    results = asyncio.run(_main_async())
    print(f"GRE per 1400-byte packet, median of {ROUNDS} rounds of {BATCH}:")
    print(f"  floor   recv_into + sendto                                    {results['floor_us_per_packet']:7.2f} us")
    print(f"  project drain+decode+demux+sequencing+encode+send (echo)      {results['project_us_per_packet']:7.2f} us")
    print(f"  ratio   project / floor                                       {results['ratio']:7.2f}")
    print("Sender's cost per packet by extra unconnected raw GRE sockets at the receiver (each gets a copy):")
    for extra, micros in results["send_us_per_packet_by_extra_unconnected_sockets"].items():  # type: ignore[attr-defined]
        print(f"  {extra:3d} extra sockets: {micros:7.2f} us")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
