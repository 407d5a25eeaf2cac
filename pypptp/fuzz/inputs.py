"""What the fuzzer sends: seeded, pure and reproducible (no I/O, no clock, no other randomness).

One ``random.Random(seed)`` draws every batch in turn, so batch K of a seed is the same wherever and
whenever it is drawn: :func:`batches` yields them, :func:`batch_at` draws the first K+1 and keeps the
last.  A batch is a list of :class:`Step` values in four streams, which the runner plays at once:

* ``control``: :data:`CONTROL_UNITS` TCP connections to port 1723, one after the other, each a
  mutated control sequence (valid SCCRQ/OCRQ... messages built with :mod:`pypptp.ctrl.messages`,
  then bit flips, truncations, Length lies, type swaps, repeats, reordering, garbage), cut into TCP
  segments, ended by a close, a reset, a half-close or a pause; now and then a peer that floods
  Echo-Requests and never reads.
* ``unauth``: one call set up with a valid SCCRQ and OCRQ, then PPP frames in GRE with the server's
  Call ID (LCP, PAP, CHAP, IPCP, CCP, IPV6CP, MPPE, unknown protocols, short frames; mutated or
  not), with in-order, repeated, skipped and stale GRE sequence numbers.  ``ack-lcp`` acks the
  server's LCP Configure-Request, so the call gets as far as authentication; ``chap`` answers the
  server's Challenge (with a made-up value) under the Challenge's Identifier.
* ``auth``: a second library client session that authenticates (MS-CHAPv2, MPPE-128) and then sends
  mutated frames through its own GRE call (``ppp``), MPPE data frames it encrypted and then damaged
  (``mppe``), and mutated control messages on its own TCP connection (``send``).
* ``gre``: raw GRE packets from the client namespace, headers and payloads mutated, for the fuzz
  calls' Call IDs or for drawn ones.

Values that only the run knows (the server's Call IDs, GRE sequence numbers, the server's LCP
request, the MPPE keys) are filled in when a step is played; the runner records the bytes it really
sent beside each step.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import random
from collections.abc import Iterator
from typing import Any

from pypptp.ctrl.messages import (
    MESSAGE_CLASSES,
    MESSAGE_SIZES,
    CallClearRequest,
    ControlMessage,
    EchoReply,
    EchoRequest,
    IncomingCallConnected,
    IncomingCallReply,
    IncomingCallRequest,
    OutgoingCallRequest,
    SetLinkInfo,
    StartControlConnectionRequest,
    StopControlConnectionRequest,
)
from pypptp.gre.codec import NO_NUMBER, encode_packet
from pypptp.ppp.frame import Protocol, encode_frame
from pypptp.ppp.lcp import AUTH_CHAP_MD5, AUTH_MSCHAP_V1, AUTH_MSCHAP_V2, AUTH_PAP
from pypptp.ppp.packet import Code, ControlPacket, encode_options

__all__ = [
    "CONTROL_UNITS",
    "OPS",
    "STREAMS",
    "Batch",
    "Step",
    "batch_at",
    "batches",
    "draw_batch",
    "mutate",
    "ppp_frame",
]

STREAMS = ("control", "unauth", "auth", "gre")
OPS = {
    "control": ("stall", "send", "close", "reset", "half-close", "linger"),
    "unauth": ("send", "ppp", "ack-lcp", "chap", "close", "reset"),
    "auth": ("ppp", "mppe", "send", "close", "reset"),
    "gre": ("gre", "gre-ipopt"),
}
"""What each stream's steps may do (the runner's dispatch)."""
CONTROL_UNITS = 3
FLOOD_ECHOES = 20_000
"""Echo-Requests a peer that never reads sends: their replies (400 KB) pass the daemon's 256 KiB limit."""
SEQ_MODES = ("next", "same", "skip", "back")
ACK_MODES = ("none", "last", "ahead", "cisco")


@dataclasses.dataclass(frozen=True)
class Step:
    """One input of a batch: what ``op`` does is per stream (:data:`OPS`)."""

    stream: str
    unit: int
    op: str
    data: bytes = b""
    note: str = ""
    wait: float = 0.0
    """Seconds to pause after the step (a linger's length for ``linger``)."""
    count: int = 1
    """``send``: the data is sent this many times; ``mppe``: cut the frame to this length when not 1;
    ``ppp`` with ``seq`` "skip" or "back": by how much."""
    seq: str = "next"
    """GRE Sequence Number of an ``unauth`` frame: the next one, the last one again, ``count`` ahead
    (the numbers between are never sent) or ``count`` behind (:data:`SEQ_MODES`)."""
    ack: str = "none"
    """GRE Acknowledgment Number of an ``unauth`` frame: none, the last number received, 1000 past it
    (data never sent), or Cisco's 0xFFFFFFFF (:data:`ACK_MODES`)."""
    target: str = ""
    """``gre``: the fuzz call whose Call ID goes into the header ("unauth", "auth"), or "" to keep it."""
    patch: tuple[tuple[int, int], ...] = ()
    """(offset, xor) pairs applied, offsets modulo the length, to a frame built at run time."""

    def to_json(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["data"] = self.data.hex()
        out["patch"] = [list(pair) for pair in self.patch]
        return out

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Step:
        values = dict(raw)
        values["data"] = bytes.fromhex(values["data"])
        values["patch"] = tuple((int(a), int(b)) for a, b in values["patch"])
        return cls(**values)

    def describe(self) -> str:
        """One line for a failure report: where, what, and the bytes in hex."""
        parts = [f"{self.stream}[{self.unit}] {self.op}"]
        if self.note:
            parts.append(self.note)
        for name, default in (("seq", "next"), ("ack", "none"), ("target", ""), ("count", 1), ("wait", 0.0)):
            value = getattr(self, name)
            if value != default:
                parts.append(f"{name}={value}")
        if self.patch:
            parts.append("patch=" + ",".join(f"{offset}^{xor:02x}" for offset, xor in self.patch))
        if self.data:
            parts.append(f"data={self.data.hex()}")
        return " ".join(parts)


@dataclasses.dataclass(frozen=True)
class Batch:
    """The inputs of one batch; ``seed`` and ``index`` say where they came from."""

    seed: int
    index: int
    steps: tuple[Step, ...]

    def units(self, stream: str) -> dict[int, list[tuple[int, Step]]]:
        """The stream's steps by unit (a connection or a session), in order, each with its index in
        :attr:`steps` (the runner records what it sent under that index)."""
        out: dict[int, list[tuple[int, Step]]] = {}
        for index, step in enumerate(self.steps):
            if step.stream == stream:
                out.setdefault(step.unit, []).append((index, step))
        return out

    def to_json(self) -> dict[str, Any]:
        return {"seed": self.seed, "index": self.index, "steps": [s.to_json() for s in self.steps]}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Batch:
        return cls(int(raw["seed"]), int(raw["index"]), tuple(Step.from_json(s) for s in raw["steps"]))

    def digest(self) -> str:
        """SHA-256 of the batch's canonical JSON: equal digests, equal inputs."""
        return hashlib.sha256(json.dumps(self.to_json(), sort_keys=True).encode()).hexdigest()


def batches(seed: int) -> Iterator[Batch]:
    """Every batch of ``seed``, in order, without end."""
    rng = random.Random(seed)
    index = 0
    while True:
        yield draw_batch(rng, seed, index)
        index += 1


def batch_at(seed: int, index: int) -> Batch:
    """Batch ``index`` of ``seed`` (the earlier ones are drawn and dropped: drawing is pure and quick)."""
    for batch in batches(seed):
        if batch.index == index:
            return batch
    raise AssertionError("unreachable")  # pragma: no cover


def draw_batch(rng: random.Random, seed: int, index: int) -> Batch:
    steps: list[Step] = []
    for unit in range(CONTROL_UNITS):
        steps += _control_unit(rng, unit)
    steps += _unauth_unit(rng)
    steps += _auth_unit(rng)
    steps += _gre_unit(rng)
    return Batch(seed, index, tuple(steps))


# -- values and mutations -----------------------------------------------------------------------------


def _interesting(rng: random.Random, bits: int) -> int:
    top = (1 << bits) - 1
    return rng.choice((0, 1, 2, top, top - 1, 1 << (bits - 1), rng.randrange(top + 1), rng.randrange(top + 1)))


def _text(rng: random.Random, width: int) -> str:
    size = rng.choice((0, 1, width, rng.randrange(width + 1)))
    return "".join(chr(rng.randrange(1, 256)) for _ in range(size))


def _pause(rng: random.Random, p: float = 0.3, longest: float = 0.01) -> float:
    return round(rng.uniform(0.001, longest), 4) if rng.random() < p else 0.0


def mutate(rng: random.Random, data: bytes, length_at: int = -1) -> tuple[bytes, str]:
    """One random damage to ``data`` and its name; ``length_at`` is where a 16-bit Length field sits."""
    out = bytearray(data)
    kinds = ["flip", "set", "truncate", "extend", "insert", "delete"]
    if length_at >= 0 and len(out) >= length_at + 2:
        kinds += ["length", "length"]
    kind = rng.choice(kinds) if out else "extend"
    if kind == "flip":
        positions = [rng.randrange(len(out)) for _ in range(rng.randint(1, 3))]
        for position in positions:
            out[position] ^= 1 << rng.randrange(8)
        return bytes(out), "flip@" + ",".join(map(str, positions))
    if kind == "set":
        position = rng.randrange(len(out))
        out[position] = rng.choice((0, 0xFF, 0x7F, 0x80, 1, rng.randrange(256)))
        return bytes(out), f"set@{position}={out[position]:02x}"
    if kind == "truncate":
        size = rng.randrange(len(out))
        return bytes(out[:size]), f"cut@{size}"
    if kind == "extend":
        extra = rng.randbytes(rng.choice((1, 2, 4, rng.randint(1, 64))))
        return bytes(out) + extra, f"+{len(extra)}"
    if kind == "insert":
        position = rng.randrange(len(out) + 1)
        extra = rng.randbytes(rng.randint(1, 8))
        return bytes(out[:position] + extra + out[position:]), f"insert@{position}+{len(extra)}"
    if kind == "delete":
        position = rng.randrange(len(out))
        size = rng.randint(1, 8)
        return bytes(out[:position] + out[position + size :]), f"delete@{position}-{size}"
    real = len(out) - max(0, length_at - 2)  # what a true Length would say
    lie = rng.choice((0, 1, 3, 4, real - 1, real + 1, real + 100, 0xFFFF, rng.randrange(0x10000))) & 0xFFFF
    out[length_at : length_at + 2] = lie.to_bytes(2, "big")
    return bytes(out), f"length={lie}"


# -- control messages (RFC 2637 section 2) --------------------------------------------------------------

_BITS = {"B": 8, "H": 16, "I": 32}
_PNS_SENDS: tuple[tuple[type[ControlMessage], int], ...] = (
    (OutgoingCallRequest, 4),
    (EchoRequest, 3),
    (SetLinkInfo, 2),
    (CallClearRequest, 2),
    (StopControlConnectionRequest, 1),
    (EchoReply, 1),
    (IncomingCallRequest, 1),
    (IncomingCallReply, 1),
    (IncomingCallConnected, 1),
    (StartControlConnectionRequest, 1),
)
_IN_A_CALL: tuple[tuple[type[ControlMessage], int], ...] = (
    (OutgoingCallRequest, 3),
    (EchoRequest, 3),
    (SetLinkInfo, 3),
    (EchoReply, 2),
    (IncomingCallRequest, 1),
    (CallClearRequest, 1),
    (StartControlConnectionRequest, 1),
)
"""What the authenticated session sends on its control connection: mostly what leaves its call up."""
_ALL_CLASSES = [MESSAGE_CLASSES[t] for t in sorted(MESSAGE_CLASSES)]
_CALL_ID_FIELDS = ("call_id", "peer_call_id")


def control_message(
    rng: random.Random, cls: type[ControlMessage], *, reserved: bool = True, **fixed: Any
) -> ControlMessage:
    """A message of ``cls`` with drawn field values: mostly the defaults' kind of value, now and then
    an extreme one; Reserved fields are zero, but rarely (never without ``reserved``)."""
    values: dict[str, Any] = {}
    for field in dataclasses.fields(cls):
        if field.name in fixed:
            continue
        meta = field.metadata
        has_default = field.default is not dataclasses.MISSING
        if meta.get("width"):
            values[field.name] = _text(rng, meta["width"])
        elif meta.get("enum") is not None:
            enum_type: type[enum.IntEnum] = meta["enum"]
            usual = has_default and rng.random() < 0.7
            values[field.name] = field.default if usual else rng.choice(list(enum_type))
        elif meta.get("reserved"):
            drawn = _interesting(rng, _BITS[meta["fmt"]])
            values[field.name] = drawn if reserved and rng.random() < 0.1 else 0
        elif has_default and rng.random() < 0.5:
            values[field.name] = field.default
        else:
            values[field.name] = _interesting(rng, _BITS[meta["fmt"]])
    return cls(**values, **fixed)


def _sccrq(rng: random.Random) -> bytes:
    return control_message(rng, StartControlConnectionRequest, reserved=False, protocol_version=0x0100).encode()


def _peer_message(
    rng: random.Random, call_ids: list[int], usual: tuple[tuple[type[ControlMessage], int], ...] = _PNS_SENDS
) -> tuple[str, bytes]:
    """A message of the ``usual`` kinds (mostly) or any other, its Call ID fields often one of ``call_ids``."""
    if rng.random() < 0.8:
        classes, weights = zip(*usual, strict=True)
        cls = rng.choices(classes, weights)[0]
    else:
        cls = rng.choice(_ALL_CLASSES)
    names = [f.name for f in dataclasses.fields(cls) if f.name in _CALL_ID_FIELDS]
    fixed: dict[str, Any] = {name: rng.choice(call_ids) for name in names if rng.random() < 0.6}
    return cls.TYPE.name, control_message(rng, cls, **fixed).encode()


def _mutate_control(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    """Damage aimed at the control header (Length, PPTP type, magic, Control type) or anywhere."""
    out = bytearray(data)
    kind = rng.choice(("length", "type", "type", "magic", "pptp-type", "any", "any"))
    if kind == "length":
        sizes = sorted(set(MESSAGE_SIZES.values()))
        lie = rng.choice((0, 1, 15, len(out) - 1, len(out) + 1, 221, 0xFFFF, rng.choice(sizes))) & 0xFFFF
        out[0:2] = lie.to_bytes(2, "big")
        return bytes(out), f"length={lie}"
    if kind == "type":
        new = rng.choice((0, 16, 0xFFFF, rng.randrange(1, 16), rng.randrange(0x10000)))
        out[8:10] = new.to_bytes(2, "big")
        known = next((t for t in MESSAGE_SIZES if t == new), None)
        fitted = known is not None and rng.random() < 0.5
        if known is not None and fitted:  # a valid header for the new type, over the old body
            size = MESSAGE_SIZES[known]
            out = out[:size] + bytes(max(0, size - len(out)))
            out[0:2] = size.to_bytes(2, "big")
        return bytes(out), f"type={new}{' (sized)' if fitted else ''}"
    if kind == "magic":
        out[4 + rng.randrange(4)] ^= 1 << rng.randrange(8)
        return bytes(out), "magic"
    if kind == "pptp-type":
        value = rng.choice((0, 2, 0xFFFF, rng.randrange(0x10000)))
        out[2:4] = value.to_bytes(2, "big")
        return bytes(out), f"pptp-type={value}"
    return mutate(rng, data, length_at=0)


def _segments(rng: random.Random, stream: bytes, unit: int, stream_name: str = "control") -> list[Step]:
    """The bytes as TCP segments: whole, in random pieces, or byte by byte at first."""
    mode = rng.random()
    pieces: list[bytes] = []
    if mode < 0.5 or len(stream) < 2:
        pieces = [stream]
    elif mode < 0.85:
        rest = stream
        while rest and len(pieces) < 63:
            size = rng.randint(1, 200)
            pieces.append(rest[:size])
            rest = rest[size:]
        if rest:
            pieces.append(rest)
    else:
        head = min(len(stream), rng.randint(2, 24))
        pieces = [stream[i : i + 1] for i in range(head)] + ([stream[head:]] if stream[head:] else [])
    return [Step(stream_name, unit, "send", piece, wait=_pause(rng, 0.2, 0.005)) for piece in pieces if piece]


def _stalled_unit(rng: random.Random, unit: int) -> list[Step]:
    """A peer that never reads: a flood of Echo-Requests, or Echo-Requests with a call opened and
    cleared in turn, so that whatever arrives with the reply that passes the daemon's limit is a call
    going up or down."""
    echo = EchoRequest(identifier=rng.randrange(1 << 32)).encode()
    steps = [Step("control", unit, "stall", note="never reads"), Step("control", unit, "send", _sccrq(rng), "SCCRQ")]
    if rng.random() < 0.5:
        steps.append(Step("control", unit, "send", echo, "Echo-Request", count=FLOOD_ECHOES))
    else:
        call_id = rng.randrange(0x10000)
        ocrq = OutgoingCallRequest(call_id=call_id).encode()
        ccrq = CallClearRequest(call_id=call_id).encode()
        for _ in range(FLOOD_ECHOES // 500):
            steps.append(Step("control", unit, "send", echo, "Echo-Request", count=500))
            steps.append(Step("control", unit, "send", ocrq, "OCRQ", wait=0.003))
            steps.append(Step("control", unit, "send", echo, "Echo-Request", count=500))
            steps.append(Step("control", unit, "send", ccrq, "CCRQ", wait=0.003))
    return [*steps, Step("control", unit, "linger", wait=0.5)]


def _control_unit(rng: random.Random, unit: int) -> list[Step]:
    if rng.random() < 0.03:
        return _stalled_unit(rng, unit)
    call_ids = [rng.randrange(0x10000) for _ in range(2)]
    messages: list[tuple[str, bytes]] = []
    if rng.random() < 0.85:
        messages.append(("SCCRQ", _sccrq(rng)))
    for _ in range(rng.randint(0, 8)):
        messages.append(_peer_message(rng, call_ids))
    damaged: list[tuple[str, bytes]] = []
    for name, data in messages:
        if rng.random() < 0.25:
            data, how = _mutate_control(rng, data)
            name = f"{name}[{how}]"
        damaged.append((name, data))
        if rng.random() < 0.08:
            damaged.append((name + "[again]", data))
    if len(damaged) > 2 and rng.random() < 0.1:
        start = rng.randrange(len(damaged) - 1)
        middle = damaged[start : start + 3]
        rng.shuffle(middle)
        damaged[start : start + 3] = middle
    if rng.random() < 0.1:
        damaged.insert(rng.randrange(len(damaged) + 1), ("garbage", rng.randbytes(rng.randint(1, 40))))
    stream = b"".join(data for _, data in damaged)
    steps = _segments(rng, stream, unit)
    note = " ".join(name for name, _ in damaged)
    ending = rng.choices(("close", "reset", "half-close", "linger"), (45, 20, 25, 10))[0]
    wait = round(rng.uniform(0.05, 0.3), 3) if ending == "linger" else 0.0
    return [*steps, Step("control", unit, ending, note=note, wait=wait)]


# -- PPP frames (RFC 1661, 1332, 1334, 1994, 2759, 1962, 3078, 5072) ---------------------------------------


def _options(rng: random.Random, choices: list[tuple[int, bytes]], unknown: bool = True) -> bytes:
    picked = [option for option in choices if rng.random() < 0.4]
    if unknown and rng.random() < 0.2:
        picked.append((rng.randrange(256), rng.randbytes(rng.choice((0, 1, 2, 4, rng.randrange(40))))))
    rng.shuffle(picked)
    return encode_options(picked)


def _lcp_options(rng: random.Random) -> bytes:
    auth = rng.choice((AUTH_MSCHAP_V2, AUTH_MSCHAP_V1, AUTH_CHAP_MD5, AUTH_PAP, b"\xc2\x27", rng.randbytes(3)))
    return _options(
        rng,
        [
            (1, _interesting(rng, 16).to_bytes(2, "big")),  # MRU
            (2, rng.randbytes(4)),  # ACCM
            (3, auth),
            (4, b"\xc0\x25" + rng.randbytes(4)),  # Quality-Protocol: LQR
            (5, rng.choice((bytes(4), rng.randbytes(4)))),  # Magic-Number
            (7, b""),  # PFC
            (8, b""),  # ACFC
            (13, b"\x06"),  # Callback: CBCP, as Windows asks
            (17, _interesting(rng, 16).to_bytes(2, "big")),  # MRRU
            (19, b"\x01" + rng.randbytes(rng.randrange(20))),  # Endpoint Discriminator
        ],
    )


def _ipcp_options(rng: random.Random) -> bytes:
    def address() -> bytes:
        return rng.choice((bytes(4), b"\xc0\xa8\x00\x01", b"\xc0\xa8\x00\xea", rng.randbytes(4)))

    vj = (2, b"\x00\x2d\x0f\x01")  # IP-Compression-Protocol: Van Jacobson, as pppd asks
    return _options(rng, [(3, address()), (129, address()), (130, address()), (131, address()), (132, address()), vj])


def _pap_request(rng: random.Random) -> bytes:
    def field() -> bytes:
        value = rng.choice((b"", b"alice", b"s3cret", rng.randbytes(rng.randrange(300))))[:255]
        length = len(value) if rng.random() < 0.8 else rng.randrange(256)
        return bytes((length,)) + value

    return field() + field()


def _chap_value(rng: random.Random, size: int) -> bytes:
    declared = size if rng.random() < 0.8 else rng.randrange(256)
    return bytes((declared,)) + rng.randbytes(size)


def _ccp_options(rng: random.Random) -> bytes:
    mppe = rng.choice((b"\x01\x00\x00\x40", b"\x00\x00\x00\x40", b"\x00\x00\x00\xe0", rng.randbytes(4)))
    return _options(rng, [(18, mppe), (26, b"\x58\x00"), (21, b"\x41")])  # MPPE (H, S, M, L bits), Deflate, BSD


def _ipv6cp_options(rng: random.Random) -> bytes:
    return _options(rng, [(1, rng.randbytes(8))])  # Interface-Identifier


_CONFIGURE = {
    Protocol.LCP: ("LCP", _lcp_options),
    Protocol.IPCP: ("IPCP", _ipcp_options),
    Protocol.CCP: ("CCP", _ccp_options),
    Protocol.IPV6CP: ("IPV6CP", _ipv6cp_options),
}


def _control_packet(rng: random.Random, protocol: int) -> tuple[str, bytes]:
    """A control packet of ``protocol`` (code, identifier, data), named."""
    ident = rng.randrange(256)
    name, configure = _CONFIGURE[Protocol(protocol)]
    codes = [Code.CONFIGURE_REQUEST] * 4 + [Code.CONFIGURE_ACK, Code.CONFIGURE_NAK, Code.CONFIGURE_REJECT]
    codes += [Code.TERMINATE_REQUEST, Code.TERMINATE_ACK, Code.CODE_REJECT]
    if protocol == Protocol.LCP:
        codes += [Code.PROTOCOL_REJECT, Code.ECHO_REQUEST, Code.ECHO_REPLY, Code.DISCARD_REQUEST]
        codes += [Code.IDENTIFICATION, Code.TIME_REMAINING] + [Code.ECHO_REQUEST] * 2
    if protocol == Protocol.CCP:
        codes += [Code.RESET_REQUEST, Code.RESET_ACK]
    code = rng.choice(codes) if rng.random() < 0.95 else rng.randrange(256)
    if code in (Code.CONFIGURE_REQUEST, Code.CONFIGURE_ACK, Code.CONFIGURE_NAK, Code.CONFIGURE_REJECT):
        data = configure(rng)
    elif code == Code.CODE_REJECT:
        data = bytes((rng.randrange(256), rng.randrange(256))) + b"\x00\x04"
    elif code == Code.PROTOCOL_REJECT:
        data = rng.choice((b"\x80\x57", b"\x80\x21", rng.randbytes(2))) + rng.randbytes(rng.randrange(12))
    elif code in (Code.ECHO_REQUEST, Code.ECHO_REPLY, Code.DISCARD_REQUEST):
        data = rng.randbytes(4) + rng.randbytes(rng.choice((0, 0, 8, rng.randrange(64))))
    elif code == Code.IDENTIFICATION:
        data = rng.randbytes(4) + b"MSRASV5.20"
    elif code == Code.TIME_REMAINING:
        data = rng.randbytes(8) + b"left"
    else:
        data = rng.randbytes(rng.choice((0, 0, 4, rng.randrange(32))))
    try:
        code_name = Code(code).name
    except ValueError:
        code_name = f"code{code}"
    return f"{name} {code_name}", ControlPacket(code, ident, data).encode()


def ppp_frame(rng: random.Random) -> tuple[str, bytes]:
    """A PPP frame as GRE carries it (named): control packets of every protocol a PPTP server meets,
    authentication packets, MPPE and IPv4 data, unknown protocols and frames too short to parse."""
    kind = rng.choices(
        ("lcp", "pap", "chap", "ipcp", "ccp", "ipv6cp", "mppe", "ipv4", "unknown", "short"),
        (30, 8, 10, 12, 10, 3, 8, 4, 5, 6),
    )[0]
    if kind == "short":
        frame = rng.choice((b"", b"\xff", b"\xff\x03", b"\xc0", b"\x21", b"\xfd", rng.randbytes(rng.randint(1, 2))))
        return f"short {len(frame)}", frame
    protocol: int
    if kind in ("lcp", "ipcp", "ccp", "ipv6cp"):
        protocol = {"lcp": Protocol.LCP, "ipcp": Protocol.IPCP, "ccp": Protocol.CCP, "ipv6cp": Protocol.IPV6CP}[kind]
        name, information = _control_packet(rng, protocol)
    elif kind == "pap":
        protocol = Protocol.PAP
        code = rng.choice((1, 1, 1, 2, 3, rng.randrange(256)))
        data = _pap_request(rng) if code == 1 else bytes((len(b"hi"),)) + b"hi"
        name, information = f"PAP code{code}", ControlPacket(code, rng.randrange(256), data).encode()
    elif kind == "chap":
        protocol = Protocol.CHAP
        code = rng.choice((2, 2, 2, 1, 3, 4, rng.randrange(256)))
        if code == 2:  # a Response: MS-CHAPv2's 49-byte value, a name
            data = _chap_value(rng, rng.choice((49, 49, 16, 0, rng.randrange(80)))) + rng.choice((b"alice", b""))
        elif code == 1:
            data = _chap_value(rng, 16) + b"pptpd"
        elif code == 3:
            data = b"S=" + rng.randbytes(20).hex().upper().encode() + b" M=ok"
        else:
            data = b"E=691 R=1 C=" + rng.randbytes(16).hex().encode() + b" V=3"
        name, information = f"CHAP code{code}", ControlPacket(code, rng.randrange(256), data).encode()
    elif kind == "mppe":
        protocol = Protocol.COMPRESSED
        header = rng.choice((0x90, 0x10, 0x80, 0x00, rng.randrange(256))) << 8 | rng.randrange(0x1000)
        information = header.to_bytes(2, "big") + rng.randbytes(rng.choice((0, 1, 2, 20, rng.randrange(200))))
        name = f"MPPE {header:04x}"
    elif kind == "ipv4":
        protocol = Protocol.IPV4
        information = b"\x45\x00\x00\x1c" + rng.randbytes(24)
        name = "IPv4"
    else:
        protocol = rng.choice((0x8041, 0xC025, 0x003D, 0x8053, 0x0031, rng.randrange(0x10000) | 1))
        information = rng.randbytes(rng.randrange(30))
        name = f"protocol {protocol:04x}"
    short_fields = rng.random() < 0.1 and protocol != Protocol.LCP
    frame = encode_frame(protocol, information, acfc=short_fields, pfc=short_fields)
    return name, frame


def _frame_step(rng: random.Random, mutated: float) -> tuple[str, bytes]:
    name, frame = ppp_frame(rng)
    if rng.random() < mutated:
        head = 4 if frame[:2] == b"\xff\x03" else 2  # where the control packet starts, as usual
        frame, how = mutate(rng, frame, length_at=head + 2)
        name = f"{name}[{how}]"
    return name, frame


# -- the unauthenticated call, the authenticated session, raw GRE ------------------------------------------------


def _our_lcp_request(rng: random.Random) -> bytes:
    """A Configure-Request the server accepts as it is (Magic-Number only), so its LCP can open."""
    options = encode_options([(5, (rng.randrange(1, 1 << 32)).to_bytes(4, "big"))])
    return encode_frame(Protocol.LCP, ControlPacket(Code.CONFIGURE_REQUEST, rng.randrange(256), options).encode())


def _unauth_unit(rng: random.Random) -> list[Step]:
    peer_call_id = rng.randrange(1, 0x10000)
    window = rng.choice((0, 1, 3, 64, 256, 0xFFFF, rng.randrange(0x10000)))
    ocrq = control_message(
        rng, OutgoingCallRequest, reserved=False, call_id=peer_call_id, packet_recv_window_size=window
    )
    setup = _sccrq(rng) + ocrq.encode()
    steps = [Step("unauth", 0, "send", setup, f"SCCRQ OCRQ call {peer_call_id} window {window}")]
    if rng.random() < 0.2:
        sli = control_message(rng, SetLinkInfo).encode()
        steps.append(Step("unauth", 0, "send", sli, "SLI"))
    handshake = rng.random() < 0.85  # both halves of LCP, so that the call gets to authentication
    if handshake or rng.random() < 0.5:
        steps.append(Step("unauth", 0, "ppp", _our_lcp_request(rng), "our LCP Configure-Request"))
    if handshake or rng.random() < 0.5:
        patch = ((rng.randrange(64), 1 << rng.randrange(8)),) if rng.random() < 0.1 else ()
        steps.append(Step("unauth", 0, "ack-lcp", note="Configure-Ack of the server's request", patch=patch))
    for _ in range(rng.randint(10, 40)):
        if rng.random() < 0.12:
            size = rng.choice((49, 49, 0, rng.randrange(80)))
            response = ControlPacket(2, 0, _chap_value(rng, size) + b"alice").encode()
            steps.append(Step("unauth", 0, "chap", encode_frame(Protocol.CHAP, response), f"CHAP Response {size}"))
            continue
        name, frame = _frame_step(rng, 0.6)
        seq = rng.choices(SEQ_MODES, (85, 5, 5, 5))[0]
        ack = rng.choices(ACK_MODES, (50, 40, 5, 5))[0]
        count = {"skip": rng.randint(2, 500), "back": rng.randint(1, 100)}.get(seq, 1)
        wait = _pause(rng, 0.4, 0.02)
        steps.append(Step("unauth", 0, "ppp", frame, name, wait=wait, count=count, seq=seq, ack=ack))
    ending = rng.choices(("ccrq", "terminate", "close", "reset"), (30, 20, 30, 20))[0]
    if ending == "ccrq":
        goodbye = CallClearRequest(call_id=peer_call_id).encode() + StopControlConnectionRequest().encode()
        steps += [Step("unauth", 0, "send", goodbye, "CCRQ StopCCRQ", wait=0.05), Step("unauth", 0, "close")]
    elif ending == "terminate":
        request = encode_frame(Protocol.LCP, ControlPacket(Code.TERMINATE_REQUEST, 1).encode())
        steps += [Step("unauth", 0, "ppp", request, "LCP Terminate-Request", wait=0.05), Step("unauth", 0, "close")]
    else:
        steps.append(Step("unauth", 0, ending))
    return steps


def _auth_unit(rng: random.Random) -> list[Step]:
    steps: list[Step] = []
    for _ in range(rng.randint(10, 30)):
        kind = rng.choices(("ppp", "mppe", "send"), (55, 30, 15))[0]
        wait = _pause(rng, 0.4, 0.02)
        if kind == "ppp":
            name, frame = _frame_step(rng, 0.5)
            steps.append(Step("auth", 0, "ppp", frame, name, wait=wait))
        elif kind == "mppe":
            patch = tuple(
                (rng.choice((0, 1, 2, 3, 4, 5, rng.randrange(64))), 1 << rng.randrange(8))
                for _ in range(rng.randint(0, 3))
            )
            cut = rng.choice((1, 1, 1, 0, 3, 4, 5, 6, rng.randrange(40)))
            note = "ICMP echo, encrypted, then damaged"
            steps.append(Step("auth", 0, "mppe", note=note, wait=wait, count=cut, patch=patch))
        else:
            name, data = _peer_message(rng, [rng.randrange(0x10000)], _IN_A_CALL)
            if rng.random() < 0.05:
                data, how = _mutate_control(rng, data)
                name = f"{name}[{how}]"
            steps.append(Step("auth", 0, "send", data, name, wait=wait))
    ending = rng.choices(("close", "reset", "terminate"), (60, 20, 20))[0]
    if ending == "terminate":
        request = encode_frame(Protocol.LCP, ControlPacket(Code.TERMINATE_REQUEST, 7).encode())
        steps.append(Step("auth", 0, "ppp", request, "LCP Terminate-Request", wait=0.05))
        ending = "close"
    return [*steps, Step("auth", 0, ending)]


def _gre_unit(rng: random.Random) -> list[Step]:
    steps: list[Step] = []
    for _ in range(rng.randint(20, 60)):
        target = rng.choices(("unauth", "auth", ""), (40, 25, 35))[0]
        payload_kind = rng.random()
        if payload_kind < 0.75:
            name, payload = _frame_step(rng, 0.4)
        elif payload_kind < 0.9:
            name, payload = "random", rng.randbytes(rng.randrange(100))
        else:
            name, payload = "empty", b""
        seq = rng.choice((0, 1, 0xFFFFFFFF, 0x7FFFFFFF, rng.randrange(1 << 32))) if rng.random() < 0.85 else NO_NUMBER
        ack = _interesting(rng, 32) if rng.random() < 0.4 else NO_NUMBER
        if seq == NO_NUMBER and (ack == NO_NUMBER or payload):
            payload = b""  # the codec writes an ack-only packet, or (with neither) one with S set
            seq = 0 if ack == NO_NUMBER else seq
        packet = bytearray(encode_packet(rng.randrange(0x10000), payload, seq, ack))
        if rng.random() < 0.3:
            field = rng.choice(("flags", "version", "protocol", "length"))
            if field == "flags":
                packet[0] = rng.randrange(256)
            elif field == "version":
                packet[1] = rng.randrange(256)
            elif field == "protocol":
                packet[2:4] = rng.choice((0x0800, 0x880A, rng.randrange(0x10000))).to_bytes(2, "big")
            else:
                packet[4:6] = rng.choice((0, len(payload) + 1, 0xFFFF, rng.randrange(0x10000))).to_bytes(2, "big")
            name += f" {field}"
        data = bytes(packet)
        if rng.random() < 0.15:
            data, how = mutate(rng, data)
            name += f"[{how}]"
        op = "gre-ipopt" if rng.random() < 0.1 else "gre"
        steps.append(Step("gre", 0, op, data, name, wait=_pause(rng, 0.3, 0.01), target=target))
    return steps
