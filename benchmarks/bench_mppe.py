"""MPPE codec cost per packet, beside bare ``cryptography`` floors measured in the same run.

``python -m benchmarks.bench_mppe [--json FILE] [--packets N] [--rounds R] [--bits 40|56|128]``

For each mode, ``--packets`` packets of a 1400-byte IPv4 payload go through the project path:

* **stateless encrypt / decrypt**: ``MppeEncryptor.encrypt`` / ``MppeDecryptor.decrypt`` with
  ``stateful=False``: a key change (RFC 3078 section 7.3) and a fresh RC4 for every packet;
* **stateful encrypt / decrypt**: the same with ``stateful=True``: one running RC4, a key change
  every 256 packets (flag packets; included in the project figure, not in the floor).

Encryption takes the payload as bytes; decryption takes each packet's information field as a
``memoryview``, as the link passes it.  Each is set beside a floor, a bare loop doing only the work
no implementation can skip:

* stateless: SHA-1 of the key change (a pre-fed object copied, two updates, digest), a new RC4
  context to encrypt the interim key with itself, a new RC4 context for the data and its update,
  both ``arc4``'s (the library :mod:`pypptp.ppp.mppe` chose for one-packet contexts, imported from
  there: the floor makes the same choice as the project);
* stateful: one long-lived RC4 ``update`` of the packet's 1402 encrypted bytes.

Two more lines: the plain "new RC4 context + update" loop, and the stateful decrypt floor plus the
one copy that returning the payload as ``bytes`` without its protocol field costs.  Every loop is
bounded; rounds alternate project and floor so both see the same machine state, and the best
round counts.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from collections.abc import Callable

from cryptography.hazmat.decrepit.ciphers.algorithms import ARC4
from cryptography.hazmat.primitives.ciphers import Cipher

from pypptp.ppp.mppe import MppeDecryptor, MppeEncryptor, OneShotRC4, key_length

PACKETS = 3000
ROUNDS = 7
PAYLOAD_BYTES = 1400
IPV4 = 0x0021
# An IPv4-shaped payload: version 4, IHL 5, total length 1400, then a pattern.
PAYLOAD = b"\x45\x00" + PAYLOAD_BYTES.to_bytes(2, "big") + bytes(range(256)) * 5 + bytes(PAYLOAD_BYTES - 4 - 1280)
ENCRYPTED = b"\x00\x21" + PAYLOAD  # what RC4 runs over: inner protocol + payload


def _timed(loop: Callable[[], int]) -> float:
    """Microseconds per packet of one run of ``loop``, which returns how many packets it did."""
    start = time.perf_counter()
    done = loop()
    return (time.perf_counter() - start) / done * 1e6


def _project_encrypt(start_key: bytes, bits: int, stateful: bool, packets: int) -> Callable[[], int]:
    encryptor = MppeEncryptor(start_key, bits, stateful=stateful)

    def loop() -> int:
        encrypt = encryptor.encrypt
        for _ in range(packets):
            encrypt(IPV4, PAYLOAD)
        return packets

    return loop


def _project_decrypt(start_key: bytes, bits: int, stateful: bool, sent: list[memoryview]) -> Callable[[], int]:
    decryptor = MppeDecryptor(start_key, bits, stateful=stateful)

    def loop() -> int:
        decrypt = decryptor.decrypt
        for packet in sent:
            decrypt(packet)
        if any(decryptor.dropped.values()):
            raise RuntimeError(f"the decryptor dropped packets: {decryptor.dropped}")
        return len(sent)

    return loop


def _floor_stateless(start_key: bytes, length: int, inputs: list[bytes]) -> Callable[[], int]:
    def loop() -> int:
        prefix = hashlib.sha1(start_key + bytes(40))
        pad2 = b"\xf2" * 40
        key = start_key
        for data in inputs:
            sha = prefix.copy()
            sha.update(key)
            sha.update(pad2)
            interim = sha.digest()[:length]
            key = OneShotRC4(interim).encrypt(interim)
            OneShotRC4(key).encrypt(data)
        return len(inputs)

    return loop


def _floor_stateful(start_key: bytes, inputs: list[bytes]) -> Callable[[], int]:
    def loop() -> int:
        update = Cipher(ARC4(start_key), mode=None).encryptor().update
        for data in inputs:
            update(data)
        return len(inputs)

    return loop


def _floor_stateful_copy(start_key: bytes, sent: list[memoryview]) -> Callable[[], int]:
    def loop() -> int:
        update = Cipher(ARC4(start_key), mode=None).encryptor().update
        for packet in sent:
            update(packet[2:])[2:]
        return len(sent)

    return loop


def _bare(start_key: bytes, packets: int) -> Callable[[], int]:
    def loop() -> int:
        for _ in range(packets):
            Cipher(ARC4(start_key), mode=None).encryptor().update(ENCRYPTED)
        return packets

    return loop


def _bare_one_shot(start_key: bytes, packets: int) -> Callable[[], int]:
    def loop() -> int:
        for _ in range(packets):
            OneShotRC4(start_key).encrypt(ENCRYPTED)
        return packets

    return loop


def run(packets: int = PACKETS, rounds: int = ROUNDS, bits: int = 128) -> dict[str, object]:
    """The measurements, as the JSON output holds them."""
    start_key = bytes(range(0x40, 0x40 + key_length(bits)))
    results: dict[str, object] = {"packets": packets, "rounds": rounds, "payload_bytes": PAYLOAD_BYTES, "bits": bits}
    for stateful in (False, True):
        mode = "stateful" if stateful else "stateless"
        sender = MppeEncryptor(start_key, bits, stateful=stateful)
        sent = [memoryview(sender.encrypt(IPV4, PAYLOAD)) for _ in range(packets)]
        for operation in ("encrypt", "decrypt"):
            # The floor reads what the project reads: one plaintext again and again, or every packet.
            inputs = [ENCRYPTED] * packets if operation == "encrypt" else [bytes(packet[2:]) for packet in sent]
            project, floor = float("inf"), float("inf")
            for _ in range(rounds):  # fresh codec state per round, built outside the timing
                if operation == "encrypt":
                    loop = _project_encrypt(start_key, bits, stateful, packets)
                else:
                    loop = _project_decrypt(start_key, bits, stateful, sent)
                project = min(project, _timed(loop))
                if stateful:
                    floor = min(floor, _timed(_floor_stateful(start_key, inputs)))
                else:
                    floor = min(floor, _timed(_floor_stateless(start_key, len(start_key), inputs)))
            results[f"{mode} {operation}"] = {"project_us": project, "floor_us": floor, "ratio": project / floor}
    results["bare RC4 new context + update"] = {"us": min(_timed(_bare(start_key, packets)) for _ in range(rounds))}
    results["bare arc4 new context + encrypt"] = {
        "us": min(_timed(_bare_one_shot(start_key, packets)) for _ in range(rounds))
    }
    stateful_sent = sent  # the last mode above
    results["stateful decrypt floor + payload copy"] = {
        "us": min(_timed(_floor_stateful_copy(start_key, stateful_sent)) for _ in range(rounds))
    }
    return results


FLOORS = {
    "stateless": "SHA-1 + new arc4 (key change) + new arc4 + encrypt",
    "stateful": "one long-lived RC4 update",
}


def main() -> None:
    parser = argparse.ArgumentParser(description="MPPE codec cost per packet, beside bare cryptography floors.")
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--packets", type=int, default=PACKETS, help=f"packets per round (default {PACKETS})")
    parser.add_argument("--rounds", type=int, default=ROUNDS, help=f"rounds, the best counts (default {ROUNDS})")
    parser.add_argument("--bits", type=int, choices=(40, 56, 128), default=128, help="key length (default 128)")
    args = parser.parse_args()
    if not 1 <= args.packets <= 1_000_000 or not 1 <= args.rounds <= 100:
        raise SystemExit("bench_mppe: --packets is 1 to 1000000, --rounds 1 to 100")
    results = run(args.packets, args.rounds, args.bits)
    print(f"MPPE-{args.bits} per {PAYLOAD_BYTES}-byte packet, best of {args.rounds} rounds of {args.packets}:")
    print(f"  {'':19} {'project':>10} {'floor':>10} {'ratio':>6}   floor")
    for mode in ("stateless", "stateful"):
        for operation in ("encrypt", "decrypt"):
            row = results[f"{mode} {operation}"]
            assert isinstance(row, dict)
            print(
                f"  {mode + ' ' + operation:19} {row['project_us']:7.2f} us {row['floor_us']:7.2f} us"
                f" {row['ratio']:6.2f}   {FLOORS[mode]}"
            )
    bare = results["bare RC4 new context + update"]
    assert isinstance(bare, dict)
    print(f"  {'bare RC4':19} {'':10} {bare['us']:7.2f} us {'':6}   new cryptography RC4 context + update, per packet")
    bare = results["bare arc4 new context + encrypt"]
    assert isinstance(bare, dict)
    print(f"  {'bare arc4':19} {'':10} {bare['us']:7.2f} us {'':6}   new arc4 context + encrypt, per packet")
    copy = results["stateful decrypt floor + payload copy"]
    assert isinstance(copy, dict)
    print(
        f"  {'stateful decrypt':19} {'':10} {copy['us']:7.2f} us {'':6}   floor + the payload copy a bytes result costs"
    )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
