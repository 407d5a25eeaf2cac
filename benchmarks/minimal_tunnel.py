"""A minimal PPTP-shaped tunnel endpoint: the floor that ``benchmarks.bench_iperf`` compares pypptp with.

``python -m benchmarks.minimal_tunnel --side server|client --mode stateless|stateful --peer IP`` (root),
run inside a network namespace (``ip netns exec``), one process per side.  No project code: this is
the unavoidable work of a user-space PPTP data path and nothing else, so that the project's
throughput can be judged against what the same machine, language and crypto library can do.

Per endpoint:

* a TUN device (python-pytun, ``IFF_TUN | IFF_NO_PI``) named ``ppp0``, configured with ``ip``: a
  point-to-point address (``--local`` peer ``--remote``), MTU 1396 (a 1400-byte MRU minus MPPE's 4
  bytes, RFC 3078 section 3), IPv6 off, up;
* one raw ``IPPROTO_GRE`` socket with ``IP_MTU_DISCOVER = IP_PMTUDISC_DONT`` and a 4 MiB receive
  buffer (``SO_RCVBUFFORCE``), as the project's transport has;
* one epoll loop that drains each ready descriptor in bounded batches (:data:`BATCH` per wakeup).

TUN -> GRE, per packet: ``os.readv`` into a reused buffer just after the inner PPP protocol field
(0x0021, written once); MPPE-128 (RFC 3078): stateless, a key change (section 7.3: SHA-1 of start key,
pad1, session key, pad2, then RC4 of the interim key with itself) and a new RC4 context for the data,
every packet with bits A and D (sections 7.1, 8.1), both ``arc4``'s as in the project (cheaper to
create than cryptography's; bytes in, bytes out); stateful, one long-lived cryptography RC4 ``update``, with a key
change and a new context only before a flag packet (count low byte 0xFF, section 7.2) or after a CCP
Reset-Request; then the PPP frame (protocol 0x00FD compressed to one byte by PFC, the 2-byte MPPE
header, the ciphertext) behind a 16-byte enhanced GRE header (RFC 2637 section 4.1: K, S, A, version 1,
protocol 0x880B, payload length, the peer's Call ID, our Sequence Number and, piggy-backed, the highest
Sequence Number received) sent with one ``sendto``.

GRE -> TUN, per packet: ``recv_into`` a reused buffer, skip the IP header by its IHL and the GRE header
(12 or 16 bytes), check protocol and Call ID, note the Sequence Number for the next ack, decrypt
(stateless: as many key changes as the coherency count moved, section 8.1, and ``arc4``'s bytes out;
stateful: the running RC4's ``update_into`` a reused buffer), check the inner protocol, ``os.write`` the
IP packet to the TUN device.

Deliberately absent, since a loss-free veth needs none of it: GRE windows, ack-only packets, ack
time-outs and reordering (RFC 2637 sections 4.2-4.4), every PPP control protocol.  The one exception is
stateful MPPE after a loss (a full socket buffer can drop a packet even on veth): the receiver sends a
CCP Reset-Request (RFC 1962 section 3.1, RFC 3078 section 8.2), discards until a packet with A, and
then tries a few key changes; that is never on the common path and is counted.

Both ends derive their keys from fixed 16-byte start keys, one per direction.  The process prints
``ready`` once the device is up, and on SIGTERM or after ``--max-seconds`` a ``stats {json}`` line and
exits.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import time
from typing import Any

import pytun
from arc4 import ARC4 as OneShotRC4  # RC4 for one packet: the library pypptp.ppp.mppe chose for it
from cryptography.hazmat.decrepit.ciphers.algorithms import ARC4
from cryptography.hazmat.primitives.ciphers import Cipher

BATCH = 64
"""Packets drained from one descriptor per wakeup (bounded, so the other one gets its turn)."""
MTU = 1396
RCVBUF = 4 * 1024 * 1024
IP_MTU_DISCOVER = getattr(socket, "IP_MTU_DISCOVER", 10)
IP_PMTUDISC_DONT = getattr(socket, "IP_PMTUDISC_DONT", 0)
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)

START_KEYS = (bytes(range(16)), bytes(range(100, 116)))
"""Start keys of the two directions: server -> client, client -> server."""
CALL_IDS = {"server": 0x1111, "client": 0x2222}
PAD1, PAD2 = bytes(40), b"\xf2" * 40
GRE_PPP = 0x880B
GRE_FLAGS_ACK = 0x3081  # K, S, A set, version 1 (RFC 2637 section 4.1)
PFC_MPPE = 0xFD  # PPP protocol 0x00FD with Protocol-Field-Compression
FLUSHED, ENCRYPTED = 0x80, 0x10  # MPPE bits A and D (RFC 3078 section 3.1)
CCP_RESET_REQUEST = b"\x80\xfd\x0e\x01\x00\x04"  # PPP CCP (0x80FD), Reset-Request, id 1, length 4
RESET_EVERY = 32
"""Stateful, discarding after a loss: another Reset-Request every this many discarded packets."""
SEARCH = 8
"""Stateful: key changes tried for a packet with A after a loss (each Reset-Request acted on is one)."""
HEADER = 16 + 1 + 2  # GRE, PFC protocol, MPPE header
_GRE = struct.Struct(">HHHHII")
_GRE_IN = struct.Struct(">HHHHI")


def new_rc4(key: bytes) -> Any:
    """A fresh RC4 context's ``update`` (the same library calls as the project)."""
    return Cipher(ARC4(key), mode=None).encryptor().update


def new_rc4_into(key: bytes) -> tuple[Any, Any]:
    """A fresh RC4 context's ``update`` and ``update_into`` (stateful decryption: into a reused buffer)."""
    context = Cipher(ARC4(key), mode=None).encryptor()
    return context.update, context.update_into


class KeyChanger:
    """RFC 3078 section 7.3 for one 128-bit start key, with the SHA-1 prefix (start key, pad1) fed once."""

    __slots__ = ("_prefix",)

    def __init__(self, start_key: bytes) -> None:
        self._prefix = hashlib.sha1(start_key + PAD1)

    def next(self, key: bytes) -> bytes:
        sha = self._prefix.copy()
        sha.update(key)
        sha.update(PAD2)
        interim = sha.digest()[:16]
        return OneShotRC4(interim).encrypt(interim)


def initial_key(start_key: bytes) -> bytes:
    """The first session key: the SHA step of the start key with itself, no RC4 (RFC 3079 section 3)."""
    return hashlib.sha1(start_key + PAD1 + start_key + PAD2).digest()[:16]


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


def make_tun(local: str, remote: str, mtu: int = MTU) -> Any:
    """``ppp0`` in our namespace: point-to-point ``local`` peer ``remote``, ``mtu``, IPv6 off, up."""
    tun = pytun.TunTapDevice(name="ppp0", flags=pytun.IFF_TUN | pytun.IFF_NO_PI)
    try:
        with open("/proc/sys/net/ipv6/conf/ppp0/disable_ipv6", "w", encoding="ascii") as switch:
            switch.write("1")
    except OSError:
        pass
    _ip("addr", "add", local, "peer", f"{remote}/32", "dev", "ppp0")
    _ip("link", "set", "ppp0", "mtu", str(mtu), "up")
    return tun


class Endpoint:
    """One side of the tunnel: a TUN fd, a raw GRE socket and the MPPE state of both directions."""

    def __init__(self, side: str, stateful: bool, tun_fd: int, sock: socket.socket, peer: str) -> None:
        send_index = 0 if side == "server" else 1
        self.stateful = stateful
        self.tun_fd = tun_fd
        self.sock = sock
        self.peer = (peer, 0)
        self.our_call = CALL_IDS[side]
        self.peer_call = CALL_IDS["client" if side == "server" else "server"]
        # sending direction
        self.tx_changer = KeyChanger(START_KEYS[send_index])
        self.tx_key = initial_key(START_KEYS[send_index])
        self.tx_update = new_rc4(self.tx_key)
        self.tx_count = 4095
        self.tx_seq = 0
        self.tx_reset = False
        # receiving direction
        self.rx_changer = KeyChanger(START_KEYS[1 - send_index])
        self.rx_key = initial_key(START_KEYS[1 - send_index])
        self.rx_update, self.rx_update_into = new_rc4_into(self.rx_key)
        self.rx_last = 4095  # stateless: count of the last packet accepted; stateful: of the last in step
        self.rx_next = 0 if stateful else -1  # stateful: count expected next, -1 while discarding
        self.rx_discarded = 0
        self.highest = 0xFFFFFFFF  # highest GRE Sequence Number received, our piggy-backed ack
        self.stats = dict.fromkeys(
            ("tun_in", "gre_out", "gre_in", "tun_out", "gre_gaps", "send_errors", "dropped", "resets_sent"), 0
        )
        self.stats.update(resets_received=0, resyncs=0, wakeups=0)
        self.out = bytearray(HEADER + 65536)
        self.out_view = memoryview(self.out)
        self.inp = bytearray(2 + 65536)
        self.inp[:2] = b"\x00\x21"  # the inner PPP protocol field, IPv4 (RFC 3078 section 3)
        self.inp_view = memoryview(self.inp)
        self.rx = bytearray(65536)
        self.rx_view = memoryview(self.rx)
        self.plain = bytearray(65536)
        """Stateful: the running RC4 decrypts into this (the inner protocol field first), the TUN write is
        from here (the project's receive path does the same)."""
        self.plain_view = memoryview(self.plain)

    # -- TUN -> GRE ------------------------------------------------------------------------------------

    def from_tun(self) -> None:
        """Drain up to :data:`BATCH` packets from the TUN device into the tunnel."""
        fd, inp_view, out, out_view, sock, peer = (
            self.tun_fd,
            self.inp_view,
            self.out,
            self.out_view,
            self.sock,
            self.peer,
        )
        target = inp_view[2:]
        stateful, changer, peer_call = self.stateful, self.tx_changer, self.peer_call
        count, seq, key, update = self.tx_count, self.tx_seq, self.tx_key, self.tx_update
        sent = errors = 0
        try:
            for _ in range(BATCH):
                try:
                    n = os.readv(fd, (target,))
                except BlockingIOError:
                    break
                count = (count + 1) & 0xFFF
                if not stateful:  # RFC 3078 sections 7.1, 7.3: key change and new RC4 for every packet
                    key = changer.next(key)
                    data = OneShotRC4(key).encrypt(bytes(inp_view[: n + 2]))  # arc4: bytes in, bytes out
                    first = FLUSHED | ENCRYPTED
                elif count & 0xFF == 0xFF or self.tx_reset:  # flag packet (section 7.2) or after a Reset-Request
                    self.tx_reset = False
                    key = changer.next(key)
                    update = new_rc4(key)
                    data = update(inp_view[: n + 2])
                    first = FLUSHED | ENCRYPTED
                else:
                    data = update(inp_view[: n + 2])
                    first = ENCRYPTED
                m = len(data)
                _GRE.pack_into(out, 0, GRE_FLAGS_ACK, GRE_PPP, m + 3, peer_call, seq, self.highest)
                out[16] = PFC_MPPE
                out[17] = first | count >> 8
                out[18] = count & 0xFF
                out[HEADER : HEADER + m] = data
                seq = (seq + 1) & 0xFFFFFFFF
                try:
                    sock.sendto(out_view[: HEADER + m], peer)
                    sent += 1
                except OSError:
                    errors += 1
        finally:
            self.tx_count, self.tx_seq, self.tx_key, self.tx_update = count, seq, key, update
            stats = self.stats
            stats["tun_in"] += sent + errors
            stats["gre_out"] += sent
            stats["send_errors"] += errors

    # -- GRE -> TUN ------------------------------------------------------------------------------------

    def from_gre(self) -> None:
        """Drain up to :data:`BATCH` GRE packets from the raw socket, decrypt, write them to the TUN."""
        sock, rx, rx_view, fd = self.sock, self.rx, self.rx_view, self.tun_fd
        plain, plain_view = self.plain, self.plain_view
        stateful, changer, our_call = self.stateful, self.rx_changer, self.our_call
        stats = self.stats
        received = written = gaps = 0
        highest = self.highest
        try:
            for _ in range(BATCH):
                try:
                    length = sock.recv_into(rx)
                except BlockingIOError:
                    break
                received += 1
                ihl = (rx[0] & 0x0F) * 4
                flags, protocol, payload_length, call_id, seq = _GRE_IN.unpack_from(rx, ihl)
                if protocol != GRE_PPP or call_id != our_call or not flags & 0x1000:
                    continue
                if seq != (highest + 1) & 0xFFFFFFFF:
                    gaps += 1
                highest = seq
                start = ihl + (16 if flags & 0x80 else 12)
                end = start + payload_length
                if end > length or payload_length < 4:
                    continue
                if rx[start] == PFC_MPPE:
                    start += 1
                elif rx[start] == 0xFF and rx[start + 3] == PFC_MPPE:  # address, control, 0x00FD
                    start += 4
                else:
                    self._control(rx_view[start:end])
                    continue
                first = rx[start]
                count = (first & 0x0F) << 8 | rx[start + 1]
                body = rx_view[start + 2 : end]
                if not stateful:  # RFC 3078 section 8.1: one key change per count step
                    changes = (count - self.rx_last) & 0xFFF
                    if changes == 0 or changes >= 2048:
                        stats["dropped"] += 1
                        continue
                    key = changer.next(self.rx_key)
                    for _ in range(changes - 1):
                        key = changer.next(key)
                    data = OneShotRC4(key).encrypt(bytes(body))
                    if data[0] != 0 or data[1] != 0x21:
                        stats["dropped"] += 1
                        continue
                    self.rx_key, self.rx_last = key, count
                elif count == self.rx_next and first & FLUSHED == 0:  # in step: the RC4 stream runs on
                    self.rx_next = (count + 1) & 0xFFF
                    self.rx_update_into(body, plain_view)  # into a reused buffer: no new bytes per packet
                    if plain[0] != 0 or plain[1] != 0x21:
                        self._lost(count)
                        continue
                    os.write(fd, plain_view[2 : end - start])
                    written += 1
                    continue
                else:
                    resynced = self._stateful_slow(first, count, body)
                    if resynced is None:
                        continue
                    data = resynced
                os.write(fd, memoryview(data)[2:])
                written += 1
        finally:
            self.highest = highest
            stats["gre_in"] += received
            stats["tun_out"] += written
            stats["gre_gaps"] += gaps

    def _control(self, frame: memoryview) -> None:
        """Not an MPPE packet: the only control packet here is a CCP Reset-Request."""
        if bytes(frame[:3]) == CCP_RESET_REQUEST[:3]:
            self.stats["resets_received"] += 1
            self.tx_reset = True

    def _stateful_slow(self, first: int, count: int, body: memoryview) -> bytes | None:
        """Stateful MPPE off the common path: a flag packet in step, a loss, or the resynchronisation after one."""
        stats = self.stats
        if self.rx_next >= 0:
            if count != self.rx_next:
                self._lost((self.rx_next - 1) & 0xFFF)
                return None
            # In step with A (a flag packet, or the answer to a Reset-Request): one key change.
            self.rx_key = self.rx_changer.next(self.rx_key)
            self.rx_update, self.rx_update_into = new_rc4_into(self.rx_key)
            self.rx_next = (count + 1) & 0xFFF
            data: bytes = self.rx_update(body)
            if data[0] != 0 or data[1] != 0x21:
                self._lost(count)
                return None
            return data
        if not first & FLUSHED:  # discarding until a packet with A (section 8.2)
            stats["dropped"] += 1
            self.rx_discarded += 1
            if self.rx_discarded % RESET_EVERY == 0:
                self._send_reset()
            return None
        # One key change per flag packet missed (256-blocks crossed), then the packet's own change(s).
        key = self.rx_key
        for _ in range(((count >> 8) - (((self.rx_last + 1) & 0xFFF) >> 8)) & 0x0F):
            key = self.rx_changer.next(key)
        for _ in range(SEARCH):
            key = self.rx_changer.next(key)
            update, update_into = new_rc4_into(key)
            data = update(body)
            if data[0] == 0 and data[1] == 0x21 and len(data) >= 22 and data[4] << 8 | data[5] == len(data) - 2:
                self.rx_key, self.rx_update, self.rx_next = key, update, (count + 1) & 0xFFF
                self.rx_update_into = update_into
                stats["resyncs"] += 1
                return data
        stats["dropped"] += 1
        self._send_reset()
        return None

    def _lost(self, last_good: int) -> None:
        self.stats["dropped"] += 1
        self.rx_last = last_good
        self.rx_next = -1
        self.rx_discarded = 0
        self._send_reset()

    def _send_reset(self) -> None:
        """A CCP Reset-Request in a GRE packet without a Sequence Number's meaning for the data."""
        self.stats["resets_sent"] += 1
        n = len(CCP_RESET_REQUEST)
        _GRE.pack_into(self.out, 0, GRE_FLAGS_ACK, GRE_PPP, n, self.peer_call, self.tx_seq, self.highest)
        self.tx_seq = (self.tx_seq + 1) & 0xFFFFFFFF
        self.out[16 : 16 + n] = CCP_RESET_REQUEST
        try:
            self.sock.sendto(self.out_view[: 16 + n], self.peer)
        except OSError:
            self.stats["send_errors"] += 1

    # -- loop ------------------------------------------------------------------------------------------

    def run(self, deadline: float) -> None:
        """The epoll loop, until ``deadline`` (monotonic) or a signal handler raises."""
        tun_fd, sock_fd = self.tun_fd, self.sock.fileno()
        poller = select.epoll()
        poller.register(tun_fd, select.EPOLLIN)
        poller.register(sock_fd, select.EPOLLIN)
        from_tun, from_gre, stats = self.from_tun, self.from_gre, self.stats
        try:
            while time.monotonic() < deadline:
                events = poller.poll(0.5)
                stats["wakeups"] += 1
                for fd, _ in events:
                    if fd == tun_fd:
                        from_tun()
                    else:
                        from_gre()
        finally:
            poller.close()


class _Stop(Exception):
    pass


def _stop(signum: int, frame: object) -> None:
    raise _Stop


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.minimal_tunnel", description=__doc__.split("\n")[0])
    parser.add_argument("--side", choices=("server", "client"), required=True)
    parser.add_argument("--mode", choices=("stateless", "stateful"), default="stateless")
    parser.add_argument("--peer", required=True, help="the other endpoint's outer IPv4 address")
    parser.add_argument("--local", required=True, help="our tunnel address")
    parser.add_argument("--remote", required=True, help="the peer's tunnel address")
    parser.add_argument("--mtu", type=int, default=MTU)
    parser.add_argument("--max-seconds", type=float, default=600.0, help="exit after this long whatever happens")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    tun = make_tun(args.local, args.remote, args.mtu)
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_GRE)
    endpoint: Endpoint | None = None
    try:
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DONT)
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RCVBUF)
        tun_fd = tun.fileno()
        os.set_blocking(tun_fd, False)
        endpoint = Endpoint(args.side, args.mode == "stateful", tun_fd, sock, args.peer)
        print(f"ready {args.side} {args.mode} pid {os.getpid()}", flush=True)
        endpoint.run(time.monotonic() + args.max_seconds)
    except _Stop:
        pass
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if endpoint is not None:
            print("stats " + json.dumps(endpoint.stats), flush=True)
        sock.close()
        tun.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
