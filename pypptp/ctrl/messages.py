"""The 15 PPTP control messages as typed objects (RFC 2637 sections 1.4, 2.1-2.15).

Each message is a frozen dataclass whose fields, in declaration order, *are*
the wire layout after the common header: a field's metadata gives its struct
format, and a class decorator builds one :class:`struct.Struct` per message
type from that table.  Byte order (network, big-endian) appears only here.

Decoding is strict:

* the buffer must hold exactly one message, ``Length`` bytes long;
* ``Length`` must be the fixed size of the message type (RFC 2637 has no
  variable-length control message);
* PPTP Message Type must be 1 (control; no management message exists);
* the Magic Cookie must be ``0x1A2B3C4D``;
* result and error codes must be values the RFC defines;
* with ``strict=True`` (the default) every Reserved field must be zero.

Anything else raises :class:`ControlMessageError` and nothing else: decoding
never reads past the buffer, because every length is checked against the
buffer before a field is unpacked.

Fixed-width strings (host name, vendor, phone numbers, call statistics) are
NUL-padded ASCII.  They are decoded up to the first NUL or the end of the
field, so a 64-byte name with no NUL is legal; bytes are mapped one-to-one
with Latin-1 so that nothing a peer sends is lost or raises.
"""

from __future__ import annotations

import dataclasses
import enum
import struct
from typing import Any, ClassVar, TypeVar, dataclass_transform

from pypptp.ctrl.constants import (
    HEADER_SIZE,
    MAGIC_COOKIE,
    PROTOCOL_VERSION,
    BearerCapability,
    BearerType,
    ControlMessageType,
    DisconnectResult,
    EchoResult,
    FramingCapability,
    FramingType,
    GeneralError,
    IncomingCallResult,
    OutgoingCallResult,
    PptpMessageType,
    StartResult,
    StopReason,
    StopResult,
)

__all__ = [
    "MAX_MESSAGE_SIZE",
    "MESSAGE_CLASSES",
    "MESSAGE_SIZES",
    "MIN_MESSAGE_SIZE",
    "CallClearRequest",
    "CallDisconnectNotify",
    "ControlMessage",
    "ControlMessageError",
    "EchoReply",
    "EchoRequest",
    "IncomingCallConnected",
    "IncomingCallReply",
    "IncomingCallRequest",
    "OutgoingCallReply",
    "OutgoingCallRequest",
    "SetLinkInfo",
    "StartControlConnectionReply",
    "StartControlConnectionRequest",
    "StopControlConnectionReply",
    "StopControlConnectionRequest",
    "WanErrorNotify",
    "check_header_prefix",
    "decode_message",
]


class ControlMessageError(ValueError):
    """Bytes from the peer are not a valid PPTP control message.

    This is the one exception the decoder and the stream framer raise.  The
    text says what was wrong; :attr:`error_code` is the RFC 2637 section 2.16
    General Error Code that describes it (Bad-Format for framing and length
    problems, Bad-Value for out-of-range fields), and :attr:`message_type` is
    the Control Message Type when the header got that far.  When the stream
    framer raises it, :attr:`messages` holds the valid messages that the same
    ``feed()`` call decoded before the bad one, so a caller can still act on
    them; it is empty otherwise.
    """

    def __init__(
        self,
        reason: str,
        error_code: GeneralError = GeneralError.BAD_FORMAT,
        message_type: ControlMessageType | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.error_code = error_code
        self.message_type = message_type
        self.messages: list[ControlMessage] = []


# -- field descriptions ---------------------------------------------------------

_HEADER = struct.Struct(">HHIH")  # Length, PPTP Message Type, Magic Cookie, Control Type
_UINT_BITS = {"B": 8, "H": 16, "I": 32}


def _u8(default: int = 0, *, enum_type: type[enum.IntEnum] | None = None) -> Any:
    return dataclasses.field(default=default, metadata={"fmt": "B", "enum": enum_type})


def _u16(default: int = 0) -> Any:
    return dataclasses.field(default=default, metadata={"fmt": "H"})


def _u32(default: int = 0, *, flag_type: type[enum.IntFlag] | None = None) -> Any:
    return dataclasses.field(default=default, metadata={"fmt": "I", "flag": flag_type})


def _code(enum_type: type[enum.IntEnum], default: int | None = None) -> Any:
    """A one-octet result or error code that must be one of ``enum_type``'s values."""
    if default is None:
        return dataclasses.field(metadata={"fmt": "B", "enum": enum_type})
    return dataclasses.field(default=default, metadata={"fmt": "B", "enum": enum_type})


def _required16() -> Any:
    return dataclasses.field(metadata={"fmt": "H"})


def _required32() -> Any:
    return dataclasses.field(metadata={"fmt": "I"})


def _text(width: int) -> Any:
    return dataclasses.field(default="", metadata={"fmt": f"{width}s", "width": width})


def _reserved(fmt: str) -> Any:
    return dataclasses.field(default=0, metadata={"fmt": fmt, "reserved": True})


@dataclasses.dataclass(frozen=True, slots=True)
class _FieldSpec:
    name: str
    fmt: str
    enum_type: type[enum.IntEnum] | None = None
    flag_type: type[enum.IntFlag] | None = None
    width: int = 0  # text fields only
    reserved: bool = False


def _spec(field: dataclasses.Field[Any]) -> _FieldSpec:
    meta = field.metadata
    return _FieldSpec(
        name=field.name,
        fmt=meta["fmt"],
        enum_type=meta.get("enum"),
        flag_type=meta.get("flag"),
        width=meta.get("width", 0),
        reserved=meta.get("reserved", False),
    )


# -- the base class ----------------------------------------------------------------


MESSAGE_CLASSES: dict[ControlMessageType, type[ControlMessage]] = {}
"""Control Message Type -> message class: the codec's dispatch table."""


@dataclass_transform(kw_only_default=True, frozen_default=True)
@dataclasses.dataclass(frozen=True, kw_only=True)
class ControlMessage:
    """Common part of every control message (RFC 2637 section 2.1 header).

    A subclass names its type in the class statement,
    ``class EchoRequest(ControlMessage, message_type=...)``, and declares its
    fields in wire order; it becomes a frozen, keyword-only dataclass and its
    struct layout is built from the field table.
    """

    TYPE: ClassVar[ControlMessageType]
    SIZE: ClassVar[int]
    _STRUCT: ClassVar[struct.Struct]
    _SPECS: ClassVar[tuple[_FieldSpec, ...]]

    reserved0: int = _reserved("H")

    def __init_subclass__(cls, *, message_type: ControlMessageType, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        dataclasses.dataclass(frozen=True, kw_only=True)(cls)
        specs = tuple(_spec(f) for f in dataclasses.fields(cls))
        cls.TYPE = message_type
        cls._SPECS = specs
        cls._STRUCT = struct.Struct(_HEADER.format + "".join(s.fmt for s in specs))
        cls.SIZE = cls._STRUCT.size
        MESSAGE_CLASSES[message_type] = cls

    def encode(self) -> bytes:
        """Return the message's wire bytes.

        Raises :class:`ValueError` if a field does not fit its wire width (a
        local programming error, never a peer's).
        """
        values: list[int | bytes] = []
        for spec in self._SPECS:
            value = getattr(self, spec.name)
            if spec.width:
                values.append(_encode_text(value, spec.width, spec.name))
            else:
                bits = _UINT_BITS[spec.fmt]
                if not isinstance(value, int) or not 0 <= value < (1 << bits):
                    raise ValueError(f"{type(self).__name__}.{spec.name}={value!r} does not fit {bits} bits")
                values.append(int(value))
        return self._STRUCT.pack(self.SIZE, PptpMessageType.CONTROL, MAGIC_COOKIE, self.TYPE, *values)

    def nonzero_reserved(self) -> list[str]:
        """Names of Reserved fields that are not zero (RFC 2637: they MUST be 0)."""
        return [spec.name for spec in self._SPECS if spec.reserved and getattr(self, spec.name)]

    @classmethod
    def decode(cls: type[_M], data: bytes | bytearray | memoryview, *, strict: bool = True) -> _M:
        """Decode exactly one message from ``data``.

        Called on :class:`ControlMessage` it returns whichever message type the
        header names; called on a subclass it also insists on that type.
        Raises :class:`ControlMessageError` and nothing else.
        """
        message = decode_message(data, strict=strict)
        if cls is not ControlMessage and not isinstance(message, cls):
            raise ControlMessageError(
                f"expected {cls.TYPE.name}, got {message.TYPE.name}",
                GeneralError.BAD_VALUE,
                message.TYPE,
            )
        return message  # type: ignore[return-value]


_M = TypeVar("_M", bound=ControlMessage)


def _encode_text(value: str, width: int, name: str) -> bytes:
    try:
        raw = value.encode("latin-1")
    except (AttributeError, UnicodeEncodeError) as exc:
        raise ValueError(f"{name}={value!r} is not a Latin-1 string") from exc
    if len(raw) > width:
        raise ValueError(f"{name} is {len(raw)} bytes long, the field holds {width}")
    if b"\0" in raw:
        raise ValueError(f"{name} contains a NUL byte")
    return raw  # struct pads with NULs


def _decode_text(raw: bytes) -> str:
    end = raw.find(b"\0")
    return (raw if end < 0 else raw[:end]).decode("latin-1")


# -- the 15 messages (RFC 2637 sections 2.1-2.15) ----------------------------


class StartControlConnectionRequest(ControlMessage, message_type=ControlMessageType.START_CONTROL_CONNECTION_REQUEST):
    """SCCRQ, 156 bytes (RFC 2637 section 2.1)."""

    protocol_version: int = _u16(PROTOCOL_VERSION)
    reserved1: int = _reserved("H")
    framing_capabilities: int = _u32(FramingCapability.ASYNC | FramingCapability.SYNC, flag_type=FramingCapability)
    bearer_capabilities: int = _u32(BearerCapability.ANALOG | BearerCapability.DIGITAL, flag_type=BearerCapability)
    maximum_channels: int = _u16(0)
    firmware_revision: int = _u16(0)
    host_name: str = _text(64)
    vendor_string: str = _text(64)


class StartControlConnectionReply(ControlMessage, message_type=ControlMessageType.START_CONTROL_CONNECTION_REPLY):
    """SCCRP, 156 bytes (RFC 2637 section 2.2)."""

    protocol_version: int = _u16(PROTOCOL_VERSION)
    result_code: StartResult = _code(StartResult)
    error_code: GeneralError = _code(GeneralError, GeneralError.NONE)
    framing_capabilities: int = _u32(FramingCapability.ASYNC | FramingCapability.SYNC, flag_type=FramingCapability)
    bearer_capabilities: int = _u32(BearerCapability.ANALOG | BearerCapability.DIGITAL, flag_type=BearerCapability)
    maximum_channels: int = _u16(0)
    firmware_revision: int = _u16(0)
    host_name: str = _text(64)
    vendor_string: str = _text(64)


class StopControlConnectionRequest(ControlMessage, message_type=ControlMessageType.STOP_CONTROL_CONNECTION_REQUEST):
    """StopCCRQ, 16 bytes (RFC 2637 section 2.3).  Clears every call on the connection."""

    reason: StopReason = _code(StopReason, StopReason.NONE)
    reserved1: int = _reserved("B")
    reserved2: int = _reserved("H")


class StopControlConnectionReply(ControlMessage, message_type=ControlMessageType.STOP_CONTROL_CONNECTION_REPLY):
    """StopCCRP, 16 bytes (RFC 2637 section 2.4)."""

    result_code: StopResult = _code(StopResult, StopResult.OK)
    error_code: GeneralError = _code(GeneralError, GeneralError.NONE)
    reserved1: int = _reserved("H")


class EchoRequest(ControlMessage, message_type=ControlMessageType.ECHO_REQUEST):
    """Echo-Request, 16 bytes (RFC 2637 section 2.5)."""

    identifier: int = _required32()


class EchoReply(ControlMessage, message_type=ControlMessageType.ECHO_REPLY):
    """Echo-Reply, 20 bytes (RFC 2637 section 2.6)."""

    identifier: int = _required32()
    result_code: EchoResult = _code(EchoResult, EchoResult.OK)
    error_code: GeneralError = _code(GeneralError, GeneralError.NONE)
    reserved1: int = _reserved("H")


class OutgoingCallRequest(ControlMessage, message_type=ControlMessageType.OUTGOING_CALL_REQUEST):
    """OCRQ, 168 bytes (RFC 2637 section 2.7): the VPN client (PNS) asks for a call.

    Bearer and framing types are kept as plain integers: the RFC names 1-3,
    and a server has no reason to refuse a call over them.
    """

    call_id: int = _required16()
    call_serial_number: int = _u16(0)
    minimum_bps: int = _u32(300)
    maximum_bps: int = _u32(100_000_000)
    bearer_type: int = _u32(BearerType.ANY)
    framing_type: int = _u32(FramingType.ANY)
    packet_recv_window_size: int = _u16(64)
    packet_processing_delay: int = _u16(0)
    phone_number_length: int = _u16(0)
    reserved1: int = _reserved("H")
    phone_number: str = _text(64)
    subaddress: str = _text(64)


class OutgoingCallReply(ControlMessage, message_type=ControlMessageType.OUTGOING_CALL_REPLY):
    """OCRP, 32 bytes (RFC 2637 section 2.8): the server (PAC) answers an OCRQ."""

    call_id: int = _required16()
    peer_call_id: int = _required16()
    result_code: OutgoingCallResult = _code(OutgoingCallResult)
    error_code: GeneralError = _code(GeneralError, GeneralError.NONE)
    cause_code: int = _u16(0)
    connect_speed: int = _u32(0)
    packet_recv_window_size: int = _u16(64)
    packet_processing_delay: int = _u16(0)
    physical_channel_id: int = _u32(0)


class IncomingCallRequest(ControlMessage, message_type=ControlMessageType.INCOMING_CALL_REQUEST):
    """ICRQ, 220 bytes (RFC 2637 section 2.9); not used by VPN clients."""

    call_id: int = _required16()
    call_serial_number: int = _u16(0)
    call_bearer_type: int = _u32(BearerType.ANALOG)
    physical_channel_id: int = _u32(0)
    dialed_number_length: int = _u16(0)
    dialing_number_length: int = _u16(0)
    dialed_number: str = _text(64)
    dialing_number: str = _text(64)
    subaddress: str = _text(64)


class IncomingCallReply(ControlMessage, message_type=ControlMessageType.INCOMING_CALL_REPLY):
    """ICRP, 24 bytes (RFC 2637 section 2.10); not used by VPN clients."""

    call_id: int = _required16()
    peer_call_id: int = _required16()
    result_code: IncomingCallResult = _code(IncomingCallResult)
    error_code: GeneralError = _code(GeneralError, GeneralError.NONE)
    packet_recv_window_size: int = _u16(64)
    packet_transmit_delay: int = _u16(0)
    reserved1: int = _reserved("H")


class IncomingCallConnected(ControlMessage, message_type=ControlMessageType.INCOMING_CALL_CONNECTED):
    """ICCN, 28 bytes (RFC 2637 section 2.11); not used by VPN clients."""

    peer_call_id: int = _required16()
    reserved1: int = _reserved("H")
    connect_speed: int = _u32(0)
    packet_recv_window_size: int = _u16(64)
    packet_transmit_delay: int = _u16(0)
    framing_type: int = _u32(FramingType.ASYNC)


class CallClearRequest(ControlMessage, message_type=ControlMessageType.CALL_CLEAR_REQUEST):
    """CCRQ, 16 bytes (RFC 2637 section 2.12); carries the PNS's (client's) Call ID."""

    call_id: int = _required16()
    reserved1: int = _reserved("H")


class CallDisconnectNotify(ControlMessage, message_type=ControlMessageType.CALL_DISCONNECT_NOTIFY):
    """CDN, 148 bytes (RFC 2637 section 2.13); carries the PAC's (server's) Call ID."""

    call_id: int = _required16()
    result_code: DisconnectResult = _code(DisconnectResult)
    error_code: GeneralError = _code(GeneralError, GeneralError.NONE)
    cause_code: int = _u16(0)
    reserved1: int = _reserved("H")
    call_statistics: str = _text(128)


class WanErrorNotify(ControlMessage, message_type=ControlMessageType.WAN_ERROR_NOTIFY):
    """WEN, 40 bytes (RFC 2637 section 2.14); PAC to PNS, cumulative counters."""

    peer_call_id: int = _required16()
    reserved1: int = _reserved("H")
    crc_errors: int = _u32(0)
    framing_errors: int = _u32(0)
    hardware_overruns: int = _u32(0)
    buffer_overruns: int = _u32(0)
    time_out_errors: int = _u32(0)
    alignment_errors: int = _u32(0)


class SetLinkInfo(ControlMessage, message_type=ControlMessageType.SET_LINK_INFO):
    """SLI, 24 bytes (RFC 2637 section 2.15); PNS to PAC, async ACCMs (no effect on GRE)."""

    peer_call_id: int = _required16()
    reserved1: int = _reserved("H")
    send_accm: int = _u32(0xFFFFFFFF)
    receive_accm: int = _u32(0xFFFFFFFF)


MESSAGE_SIZES: dict[ControlMessageType, int] = {t: c.SIZE for t, c in MESSAGE_CLASSES.items()}
"""Control Message Type -> its one legal Length."""

MIN_MESSAGE_SIZE = min(MESSAGE_SIZES.values())  # 16
MAX_MESSAGE_SIZE = max(MESSAGE_SIZES.values())  # 220, the ICRQ


# -- decoding --------------------------------------------------------------------


def check_header_prefix(prefix: bytes | bytearray | memoryview) -> int | None:
    """Validate as much of a control-message header as ``prefix`` holds.

    Returns the message's Length once the first 10 bytes (through the Control
    Message Type) are present and valid, or ``None`` if more bytes are needed
    to say.  Raises :class:`ControlMessageError` as soon as the prefix is
    wrong, checking the Length against the legal range before any arithmetic
    is done with it.  Shared by :func:`decode_message` and the stream framer.
    """
    available = len(prefix)
    if available < 2:
        return None
    length = (prefix[0] << 8) | prefix[1]
    if not MIN_MESSAGE_SIZE <= length <= MAX_MESSAGE_SIZE:
        raise ControlMessageError(
            f"Length {length} is outside {MIN_MESSAGE_SIZE}..{MAX_MESSAGE_SIZE}", GeneralError.BAD_FORMAT
        )
    if available < 4:
        return None
    pptp_type = (prefix[2] << 8) | prefix[3]
    if pptp_type != PptpMessageType.CONTROL:
        what = "a management message" if pptp_type == PptpMessageType.MANAGEMENT else "unknown"
        raise ControlMessageError(
            f"PPTP Message Type {pptp_type} ({what}); only control messages (1) exist", GeneralError.BAD_VALUE
        )
    if available < 8:
        return None
    magic = int.from_bytes(prefix[4:8], "big")
    if magic != MAGIC_COOKIE:
        raise ControlMessageError(f"bad Magic Cookie 0x{magic:08X}", GeneralError.BAD_FORMAT)
    if available < 10:
        return None
    raw_type = (prefix[8] << 8) | prefix[9]
    try:
        message_type = ControlMessageType(raw_type)
    except ValueError:
        raise ControlMessageError(f"unknown Control Message Type {raw_type}", GeneralError.BAD_VALUE) from None
    expected = MESSAGE_SIZES[message_type]
    if length != expected:
        raise ControlMessageError(
            f"{message_type.name} Length is {length}, must be {expected}", GeneralError.BAD_FORMAT, message_type
        )
    return length


def decode_message(data: bytes | bytearray | memoryview, *, strict: bool = True) -> ControlMessage:
    """Decode one complete control message; see the module docstring for the checks."""
    available = len(data)
    if available < HEADER_SIZE:
        raise ControlMessageError(f"truncated: {available} bytes, a header needs {HEADER_SIZE}")
    length = check_header_prefix(data)
    assert length is not None  # 12 bytes are enough to decide
    message_type = ControlMessageType((data[8] << 8) | data[9])
    if available != length:
        raise ControlMessageError(
            f"{message_type.name} Length is {length} but the buffer holds {available} bytes",
            GeneralError.BAD_FORMAT,
            message_type,
        )
    cls = MESSAGE_CLASSES[message_type]
    raw = cls._STRUCT.unpack(data)[4:]
    values: dict[str, Any] = {}
    for spec, value in zip(cls._SPECS, raw, strict=True):
        if spec.width:
            value = _decode_text(value)
        elif spec.enum_type is not None:
            try:
                value = spec.enum_type(value)
            except ValueError:
                raise ControlMessageError(
                    f"{message_type.name} {spec.name} {value} is not a defined {spec.enum_type.__name__}",
                    GeneralError.BAD_VALUE,
                    message_type,
                ) from None
        elif spec.flag_type is not None:
            value = spec.flag_type(value)
        elif spec.reserved and value and strict:
            raise ControlMessageError(
                f"{message_type.name} {spec.name} is 0x{value:X}, must be 0", GeneralError.BAD_VALUE, message_type
            )
        values[spec.name] = value
    return cls(**values)
