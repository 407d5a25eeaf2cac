"""A structured trace of one session, sans-IO: the tracer interface and the JSON form of its events.

The idea is aioquic's qlog (``aioquic/quic/logger.py``): the protocol objects
hold an optional tracer and, only when one is set, hand it events as
``tracer.event(time, category, name, data)``, ``data`` a dictionary of plain
JSON values.  With no tracer (the default) nothing is built: the objects test
``if self.tracer is not None`` on their slow paths only, and data packets are
never traced one by one (IP over MPPE is the hot path; at most the owner
reports counters now and then).

Categories: ``ctrl`` (PPTP control messages, decoded), ``ppp`` (PPP control
packets in and out: protocol, code, identifier, options, and the bytes),
``fsm`` (automaton state changes: protocol, RFC 1661 event, old and new
state), ``phase`` (link phases), ``auth`` (method, peer name, outcome),
``mppe`` (bits and statefulness of each direction, key changes counted),
``gre`` (sequencing anomalies, as counters).

Secrets never reach a trace.  Passwords, keys and the values that allow an
offline dictionary attack on the password (the CHAP/MS-CHAP Challenge and
Response values: an MS-CHAPv2 NT-Response with its challenges is all a
cracker needs; the ``S=`` authenticator response of a Success and the ``C=``
challenge of a Failure alike) are overwritten with zero bytes of the same
length in the stored packet bytes (:func:`redact`), so the packet still
decodes and prints the same shape; MPPE events carry key lengths and counts,
never key bytes.

Attacker-controlled strings (peer names, host names, messages) are stored as
JSON strings (``json.dumps`` escapes them) and clipped to :data:`MAX_TEXT`.
The file writer lives above the cores (:mod:`pypptp.aio.trace`); the reader
is ``python -m pypptp.trace``.
"""

from __future__ import annotations

import dataclasses
import enum
import ipaddress
import re
import typing

from pypptp.ppp.frame import PROTOCOL_NAMES, Protocol
from pypptp.ppp.packet import PacketError, decode_packet, parse_options

__all__ = [
    "MAX_TEXT",
    "TRACE_VERSION",
    "MemoryTracer",
    "TraceEvent",
    "Tracer",
    "message_data",
    "packet_data",
    "redact",
]

TRACE_VERSION = 1
"""The version of the trace format, in every trace's header."""
MAX_TEXT = 256
"""Characters kept of an attacker-controlled string (names, messages), and hex digits of a value."""

_OPTION_CODES = frozenset({1, 2, 3, 4})  # Configure-Request/-Ack/-Nak/-Reject carry options
_NEGOTIATED = frozenset({Protocol.LCP, Protocol.IPCP, Protocol.IPV6CP, Protocol.CCP})
_CHAP_SECRET_TEXT = re.compile(rb"([SC]=)([0-9A-Fa-f]+)")


class Tracer(typing.Protocol):
    """What the protocol objects call, when one is set: one event, its time the caller's clock."""

    def event(self, time: float, category: str, name: str, data: dict[str, typing.Any]) -> None: ...


@dataclasses.dataclass(frozen=True)
class TraceEvent:
    time: float
    category: str
    name: str
    data: dict[str, typing.Any]


class MemoryTracer:
    """Keeps events in a list (tests, and library users who want them in memory); ``max_events`` bounds it,
    the events beyond it are counted in :attr:`dropped`."""

    def __init__(self, max_events: int = 100_000) -> None:
        self.events: list[TraceEvent] = []
        self.max_events = max_events
        self.dropped = 0

    def event(self, time: float, category: str, name: str, data: dict[str, typing.Any]) -> None:
        if len(self.events) >= self.max_events:
            self.dropped += 1
            return
        self.events.append(TraceEvent(time, category, name, data))


def clip(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + "..."


def redact(protocol: int, information: bytes | bytearray | memoryview) -> bytes:
    """The packet with its secret-bearing fields zeroed (same length): CHAP Challenge and Response values,
    the ``S=``/``C=`` hex of CHAP Success and Failure messages, the PAP password."""
    data = bytearray(information)
    if len(data) < 4:
        return bytes(data)
    code = data[0]
    if protocol == Protocol.CHAP:
        if code in (1, 2) and len(data) >= 5:
            size = data[4]
            end = min(len(data), 5 + size)
            data[5:end] = bytes(end - 5)
        elif code in (3, 4):
            data[4:] = _CHAP_SECRET_TEXT.sub(lambda m: m.group(1) + b"0" * len(m.group(2)), bytes(data[4:]))
    elif protocol == Protocol.PAP and code == 1 and len(data) >= 5:
        at = 5 + data[4]  # the password's length byte, after the peer id
        if at < len(data):
            end = min(len(data), at + 1 + data[at])
            data[at + 1 : end] = bytes(end - at - 1)
    return bytes(data)


def packet_data(protocol: int, information: bytes | bytearray | memoryview) -> dict[str, typing.Any]:
    """A PPP control packet, decoded: protocol (number and name), code, identifier, length, the options of a
    Configure-* packet (``[type, hex value]`` pairs) and the redacted bytes as hex (what the reader prints
    from: :func:`~pypptp.ppp.printpkt.format_packet` gives pppd's text)."""
    raw = redact(protocol, information)
    data: dict[str, typing.Any] = {
        "protocol": PROTOCOL_NAMES.get(protocol, f"0x{protocol:04x}"),
        "proto": protocol,
    }
    try:
        packet = decode_packet(raw)
    except PacketError as exc:
        data["error"] = str(exc)
    else:
        data["code"] = packet.code
        data["id"] = packet.identifier
        data["length"] = 4 + len(packet.data)
        if protocol in _NEGOTIATED and packet.code in _OPTION_CODES:
            try:
                data["options"] = [[kind, value.hex()] for kind, value in parse_options(packet.data)]
            except PacketError as exc:
                data["options_error"] = str(exc)
    data["hex"] = raw.hex()
    return data


def message_data(message: object) -> dict[str, typing.Any]:
    """A PPTP control message (a dataclass), as a dictionary of its fields: numbers as numbers, enums by
    their wire values (also enums), strings clipped; byte strings as hex (their length only past :data:`MAX_TEXT`)."""
    data: dict[str, typing.Any] = {"type": type(message).__name__}
    if dataclasses.is_dataclass(message) and not isinstance(message, type):
        for field in dataclasses.fields(message):
            data[field.name] = _plain(getattr(message, field.name))
    return data


def _plain(value: object) -> typing.Any:
    if isinstance(value, int) and not isinstance(value, bool):  # result codes, types, flags: wire values, as a
        return int(value)  # decoded message has them (it keeps plain numbers where the RFC allows any)
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, bool | int | float) or value is None:
        return value
    if isinstance(value, str):
        return clip(value)
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        return raw.hex() if len(raw) * 2 <= MAX_TEXT else {"length": len(raw)}
    if isinstance(value, ipaddress.IPv4Address | ipaddress.IPv6Address):
        return str(value)
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value[:64]]
    return clip(str(value))
