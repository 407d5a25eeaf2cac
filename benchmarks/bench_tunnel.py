"""Per-packet cost of the tunnel's hot path, encap and decap, beside a floor loop in the same run.

``python -m benchmarks.bench_tunnel [--json FILE] [--batch N] [--rounds N]`` (root; iproute2).

Setup, in two throw-away namespaces joined by veth: a server :class:`PppSession` with its ``ppp0``
TUN device and raw GRE socket in one, a library-mode client session in the other, negotiated for
real (MS-CHAPv2, MPPE-128), once stateless and once stateful.  Then, per round, 1400-byte IPv4
packets:

* **encap** (TUN -> MPPE -> GRE): a UDP socket in the server namespace queues ``batch`` datagrams
  to the client's tunnel address, which the kernel puts into ``ppp0``; timed: the session's TUN
  reader draining them (read, MSS check, encrypt, frame, GRE header, sendto).
  Floor: ``os.readv`` from the same TUN fd into a buffer behind the inner protocol field, the same
  RC4 calls encrypting it into a send buffer behind the headers (stateless: SHA-1 and two new
  ``arc4`` contexts, one for the key change and one for the data, bytes in and bytes out, so a copy
  each way; stateful: one cryptography ``update_into`` on a long-lived context, and the key change of
  every 256th packet) and ``sendto`` of as many bytes on the same raw socket; no project code, no
  other copy.  The library for each context is the one :mod:`pypptp.ppp.mppe` chose
  (``OneShotRC4``, imported from there, so that project and floor always make the same choice).
  Never in place: cryptography 51 refuses overlap.
* **decap** (GRE -> MPPE -> TUN): the client sends ``batch`` encrypted packets; timed: the server's
  GRE transport draining them (recv_into, GRE decode, demultiplex, sequencing, decrypt, TUN write).
  Floor: ``recv_into`` + the same RC4 calls decrypting into a second buffer + ``os.write``
  of the plaintext from there to the TUN, fed by packets from a separate encryptor so the session's
  state is not disturbed (stateful: with the key change of every 256th packet).

Rounds alternate project and floor, each round's project figure is divided by the floor measured
right after it, and the median of those paired ratios is the result (never an absolute time: these
machines are noisy, and slow drifts of the host cancel within a pair); the medians in µs are shown
beside it.  Every loop is bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import ipaddress
import json
import logging
import os
import socket
import statistics
import time
from collections.abc import Callable
from typing import Any

from cryptography.hazmat.decrepit.ciphers.algorithms import ARC4
from cryptography.hazmat.primitives.ciphers import Cipher

from benchmarks.bench_sessions import ipv4_udp
from pypptp.aio.gre import GreTransport, set_receive_buffer
from pypptp.aio.session import session_over_gre
from pypptp.gre.codec import DATA_HEADER, FLAGS_DATA, PPP_PROTOCOL_TYPE
from pypptp.host.netns import NetnsPair, netns_available, two_hosts
from pypptp.host.tun import TunDevice
from pypptp.ppp.auth import AuthConfig
from pypptp.ppp.ccp import MppePolicy
from pypptp.ppp.ipcp import IpcpConfig
from pypptp.ppp.lcp import AUTH_MSCHAP_V2, LcpConfig
from pypptp.ppp.link import LinkConfig, PppLink
from pypptp.ppp.mppe import MppeEncryptor, OneShotRC4, initial_session_key
from pypptp.ppp.secrets import parse_secrets

BATCH = 400  # below the TUN's 500-packet queue
ROUNDS = 11
SERVER_TUNNEL, CLIENT_TUNNEL = "192.168.0.1", "192.168.0.234"
SERVER_CALL, CLIENT_CALL = 0x1111, 0x2222
UDP_PAYLOAD = bytes(1400 - 28)
_PAD1, _PAD2 = bytes(40), b"\xf2" * 40


def _raw(pair: NetnsPair, ns: str) -> socket.socket:
    sock = pair.socket(ns, socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_GRE)
    set_receive_buffer(sock, 16 * 1024 * 1024)
    return sock


class Bench:
    """Both ends of one negotiated tunnel, in-process."""

    def __init__(self, pair: NetnsPair, stateful: bool) -> None:
        self.pair = pair
        self.stateful = stateful
        self._floor_tx_count = 0
        start_key = os.urandom(16)
        self._floor_sender = MppeEncryptor(start_key, 128, stateful=stateful)
        """The decap floor's packets: a stream that does not belong to the session, so the session's
        state stays untouched; the floor decrypts it with its own key state, run on across rounds."""
        self._floor_rx: tuple[bytes, bytes, int, Any] = (start_key, initial_session_key(start_key, 128), 4095, None)
        """The floors' coherency counts and keys, run on across rounds as the session's does (stateful: a key
        change every 256 packets, RFC 3078 section 7.2, is unavoidable work too)."""
        policy = MppePolicy(stateful=stateful)
        self.server_sock, self.client_sock = _raw(pair, pair.server_ns), _raw(pair, pair.client_ns)
        self.server_gre, self.client_gre = GreTransport(), GreTransport()
        self.server_gre.open(self.server_sock)
        self.client_gre.open(self.client_sock)
        server_link = PppLink(
            LinkConfig(
                lcp=LcpConfig(mru=1500),
                auth=AuthConfig(our_name="pptpd"),
                ipcp=IpcpConfig(local_address=_ip(SERVER_TUNNEL), peer_address=_ip(CLIENT_TUNNEL)),
                mppe=policy,
            ),
            secrets=parse_secrets("bench pptpd bench *\n"),
        )
        client_link = PppLink(
            LinkConfig(
                server=False,
                lcp=LcpConfig(server=False, auth_methods=(AUTH_MSCHAP_V2,)),
                auth=AuthConfig(user="bench", password="bench"),
                ipcp=IpcpConfig(server=False),
                mppe=policy,
            )
        )
        log = logging.getLogger("bench")
        self.server_call, self.server = session_over_gre(
            self.server_gre,
            pair.client_ip,
            SERVER_CALL,
            CLIENT_CALL,
            server_link,
            peer_window=65535,
            our_window=65535,
            log=log,
            make_tun=lambda: TunDevice(netns=pair.server_ns),
        )
        self.client_call, self.client = session_over_gre(
            self.client_gre,
            pair.server_ip,
            CLIENT_CALL,
            SERVER_CALL,
            client_link,
            peer_window=65535,
            our_window=65535,
            log=log,
            attach_tun=False,
        )
        self.sink = pair.socket(pair.server_ns, socket.AF_INET, socket.SOCK_DGRAM)
        self.source = pair.socket(pair.server_ns, socket.AF_INET, socket.SOCK_DGRAM)

    async def start(self) -> None:
        self.server.start()
        self.client.start()
        for _ in range(200):
            if self.server.tun is not None and self.client.network is not None:
                break
            await asyncio.sleep(0.02)
        assert self.server.tun is not None and self.client.network is not None, "the tunnel did not come up"
        self.sink.bind((SERVER_TUNNEL, 9))
        self.sink.setblocking(False)
        set_receive_buffer(self.sink, 16 * 1024 * 1024)
        self.server_gre.unwatch()
        await asyncio.sleep(0.1)

    def close(self) -> None:
        self.server.close("bench over")
        self.client.close("bench over")
        self.server_call.close()
        self.client_call.close()
        for sock in (self.sink, self.source):
            sock.close()
        self.server_gre.close()
        self.client_gre.close()

    # -- encap ------------------------------------------------------------------------------------

    def _queue_into_tun(self, batch: int) -> None:
        for _ in range(batch):
            self.source.sendto(UDP_PAYLOAD, (CLIENT_TUNNEL, 9))

    def encap_project(self, batch: int) -> float:
        self._queue_into_tun(batch)
        sent = self.server.stats.packets_sent
        started = time.perf_counter()
        for _ in range(batch):
            self.server._from_tun()
            if self.server.stats.packets_sent - sent >= batch:
                break
        elapsed = time.perf_counter() - started
        done = self.server.stats.packets_sent - sent
        return elapsed / max(1, done)

    def encap_floor(self, batch: int) -> float:
        """Read behind the inner protocol field, encrypt into the send buffer behind the headers, send:
        what the project's copy-free path must do at least."""
        assert self.server.tun is not None
        fd, sock, peer = self.server.tun.fd, self.server_sock, (self.pair.client_ip, 0)
        plain = bytearray(b"\x00\x21" + bytes(65536))
        source = memoryview(plain)
        target = source[2:]
        buffer = bytearray(24 + 65536)
        view = memoryview(buffer)
        cipher = view[22:]
        start_key = session_key = os.urandom(16)
        stream = Cipher(ARC4(session_key), mode=None).encryptor().update_into
        self._queue_into_tun(batch)
        done = 0
        started = time.perf_counter()
        count = self._floor_tx_count
        for _ in range(batch):
            try:
                n = os.readv(fd, (target,))
            except BlockingIOError:
                break
            data = source[: n + 2]  # the inner protocol field and the packet
            count = (count + 1) & 0xFFF
            if self.stateful:
                if count & 0xFF == 0xFF:  # RFC 3078 section 7.2: a flag packet changes key
                    interim = hashlib.sha1(start_key + _PAD1 + session_key + _PAD2).digest()[:16]
                    session_key = OneShotRC4(interim).encrypt(interim)
                    stream = Cipher(ARC4(session_key), mode=None).encryptor().update_into
                stream(data, cipher)
            else:
                interim = hashlib.sha1(start_key + _PAD1 + session_key + _PAD2).digest()[:16]
                session_key = OneShotRC4(interim).encrypt(interim)
                cipher[: n + 2] = OneShotRC4(session_key).encrypt(bytes(data))  # bytes in, bytes out
            sock.sendto(view[7 : 24 + n], peer)  # as many bytes as the project's frame: GRE 12, PPP 1, MPPE 4
            done += 1
        elapsed = time.perf_counter() - started
        self._floor_tx_count = count
        return elapsed / max(1, done)

    # -- decap ------------------------------------------------------------------------------------

    def _drain_sink(self) -> None:
        for _ in range(100_000):
            try:
                self.sink.recv(65536)
            except BlockingIOError:
                return

    def decap_project(self, batch: int) -> float:
        packet = ipv4_udp(CLIENT_TUNNEL, SERVER_TUNNEL, UDP_PAYLOAD, port=9)
        for _ in range(batch):
            self.client.send_ip(packet)
        received = self.server.stats.packets_received
        started = time.perf_counter()
        for _ in range(batch):
            self.server_gre.drain()
            if self.server.stats.packets_received - received >= batch:
                break
        elapsed = time.perf_counter() - started
        done = self.server.stats.packets_received - received
        self._drain_sink()
        return elapsed / max(1, done)

    def decap_floor(self, batch: int) -> float:
        assert self.server.tun is not None
        packet = ipv4_udp(CLIENT_TUNNEL, SERVER_TUNNEL, UDP_PAYLOAD, port=9)
        client = self.client_sock
        for n in range(batch):
            body = self._floor_sender.encrypt(0x21, packet)
            gre = DATA_HEADER.pack(FLAGS_DATA, PPP_PROTOCOL_TYPE, len(body), 0x9999, n)
            client.sendto(gre + body, (self.pair.server_ip, 0))
        fd, sock = self.server.tun.fd, self.server_sock
        buffer = bytearray(65536)
        out = memoryview(bytearray(65536))
        start_key, session_key, count, stream = self._floor_rx
        if stream is None:
            stream = Cipher(ARC4(session_key), mode=None).encryptor().update_into
        done = 0
        time.sleep(0.01)
        started = time.perf_counter()
        for _ in range(batch):
            try:
                n = sock.recv_into(buffer)
            except BlockingIOError:
                break
            view = memoryview(buffer)[20 + 12 + 2 : n]  # after the IP, GRE (12) and MPPE headers
            count = (count + 1) & 0xFFF
            if self.stateful:
                if count & 0xFF == 0xFF:  # RFC 3078 section 7.2: a flag packet changes key
                    interim = hashlib.sha1(start_key + _PAD1 + session_key + _PAD2).digest()[:16]
                    session_key = OneShotRC4(interim).encrypt(interim)
                    stream = Cipher(ARC4(session_key), mode=None).encryptor().update_into
                stream(view, out)
            else:
                interim = hashlib.sha1(start_key + _PAD1 + session_key + _PAD2).digest()[:16]
                session_key = OneShotRC4(interim).encrypt(interim)
                out[: len(view)] = OneShotRC4(session_key).encrypt(bytes(view))  # bytes in, bytes out
            os.write(fd, out[2 : len(view)])  # the IP packet, after the inner protocol field
            done += 1
        elapsed = time.perf_counter() - started
        self._floor_rx = start_key, session_key, count, stream
        assert done == 0 or bytes(out[:3]) == b"\x00\x21\x45", "the decap floor decrypted garbage"
        self._drain_sink()
        return elapsed / max(1, done)


def _ip(text: str) -> ipaddress.IPv4Address:
    return ipaddress.IPv4Address(text)


async def _measure(pair: NetnsPair, stateful: bool, batch: int, rounds: int) -> dict[str, dict[str, Any]]:
    bench = Bench(pair, stateful)
    await bench.start()
    results: dict[str, dict[str, list[float]]] = {
        "encap": {"project": [], "floor": []},
        "decap": {"project": [], "floor": []},
    }
    measures: dict[str, tuple[Callable[[int], float], Callable[[int], float]]] = {
        "encap": (bench.encap_project, bench.encap_floor),
        "decap": (bench.decap_project, bench.decap_floor),
    }
    try:
        for _ in range(rounds):
            for name, (project_round, floor_round) in measures.items():
                results[name]["project"].append(project_round(batch) * 1e6)
                await asyncio.sleep(0.02)  # let the client side and the kernel catch up, untimed
                results[name]["floor"].append(floor_round(batch) * 1e6)
                await asyncio.sleep(0.02)
    finally:
        bench.close()
    summary: dict[str, dict[str, Any]] = {}
    for name, series in results.items():
        project, floor = statistics.median(series["project"]), statistics.median(series["floor"])
        paired = [p / f for p, f in zip(series["project"], series["floor"], strict=True)]
        summary[name] = {
            "project_us": round(project, 2),
            "floor_us": round(floor, 2),
            "ratio": round(statistics.median(paired), 3),
            "ratio_of_medians": round(project / floor, 3),
            "ratios": [round(r, 3) for r in paired],
        }
    return summary


async def run(
    batch: int = BATCH, rounds: int = ROUNDS, modes: tuple[str, ...] = ("stateless", "stateful")
) -> dict[str, object]:
    out: dict[str, object] = {"batch": batch, "rounds": rounds, "packet_bytes": 1400}
    for stateful in (mode == "stateful" for mode in modes):
        with two_hosts("bt") as pair:
            out["stateful" if stateful else "stateless"] = await _measure(pair, stateful, batch, rounds)
    return out


def format_table(result: dict[str, object]) -> list[str]:
    """The result of :func:`run` as printable lines."""
    lines = [
        f"(a) MPPE-128 hot path, µs per {result['packet_bytes']}-byte packet, median of {result['rounds']} rounds "
        f"of {result['batch']} (ratio: the median of each round's project/floor):",
        f"  {'':22}{'project':>10}{'floor':>10}{'ratio':>8}",
    ]
    for mode in ("stateless", "stateful"):
        table = result.get(mode)
        if not isinstance(table, dict):
            continue
        for name in ("encap", "decap"):
            row = table[name]
            lines.append(
                f"  {mode + ' ' + name:22}{row['project_us']:>10.2f}{row['floor_us']:>10.2f}{row['ratio']:>8.2f}"
            )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", metavar="FILE")
    parser.add_argument("--batch", type=int, default=BATCH)
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--mode", choices=("stateless", "stateful"), action="append", help="default: both")
    args = parser.parse_args()
    modes = tuple(args.mode or ("stateless", "stateful"))
    reason = netns_available()
    if reason is not None:
        raise SystemExit(f"bench_tunnel {reason}")
    result = asyncio.run(run(min(args.batch, 450), args.rounds, modes))
    print("\n".join(format_table(result)))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
