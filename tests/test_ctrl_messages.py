"""The control-message codec (RFC 2637 sections 1.4, 2.1-2.16) against the spec digest.

Every size, offset and code below is copied from /work/shared/spec/pptp-control.md
(sections 3-6), not derived from :mod:`pypptp.ctrl.messages`, so that a wrong
struct format, field order or enum in the codec makes these tests fail.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import pytest

from pypptp.ctrl.constants import DisconnectResult, GeneralError, OutgoingCallResult
from pypptp.ctrl.messages import (
    MESSAGE_CLASSES,
    CallClearRequest,
    CallDisconnectNotify,
    ControlMessage,
    ControlMessageError,
    EchoReply,
    EchoRequest,
    IncomingCallConnected,
    IncomingCallReply,
    IncomingCallRequest,
    OutgoingCallReply,
    OutgoingCallRequest,
    SetLinkInfo,
    StartControlConnectionReply,
    StartControlConnectionRequest,
    StopControlConnectionReply,
    StopControlConnectionRequest,
    WanErrorNotify,
    check_header_prefix,
    decode_message,
)

BAD_FORMAT = GeneralError.BAD_FORMAT
BAD_VALUE = GeneralError.BAD_VALUE

# -- the spec, hard-coded ---------------------------------------------------------------

# pptp-control.md section 4: Control Message Type code and total length, in code order.
SPEC_SIZES = [156, 156, 16, 16, 16, 20, 168, 32, 220, 24, 28, 16, 148, 40, 24]
SPEC_CLASSES: list[type[ControlMessage]] = [
    StartControlConnectionRequest,
    StartControlConnectionReply,
    StopControlConnectionRequest,
    StopControlConnectionReply,
    EchoRequest,
    EchoReply,
    OutgoingCallRequest,
    OutgoingCallReply,
    IncomingCallRequest,
    IncomingCallReply,
    IncomingCallConnected,
    CallClearRequest,
    CallDisconnectNotify,
    WanErrorNotify,
    SetLinkInfo,
]
SPEC_CODE = {cls: code for code, cls in enumerate(SPEC_CLASSES, start=1)}
SPEC_SIZE = dict(zip(SPEC_CLASSES, SPEC_SIZES, strict=True))

MAGIC = bytes.fromhex("1A2B3C4D")


class F(NamedTuple):
    """One body field of pptp-control.md section 5: wire name in our code, offset, size, kind."""

    name: str
    offset: int
    size: int
    kind: str = "int"  # "int", "str" (NUL-padded), "reserved", "code"


R, S, C = "reserved", "str", "code"

# pptp-control.md section 5, field by field (offsets count from the Length field).
LAYOUT: dict[type[ControlMessage], list[F]] = {
    StartControlConnectionRequest: [
        F("protocol_version", 12, 2),
        F("reserved1", 14, 2, R),
        F("framing_capabilities", 16, 4),
        F("bearer_capabilities", 20, 4),
        F("maximum_channels", 24, 2),
        F("firmware_revision", 26, 2),
        F("host_name", 28, 64, S),
        F("vendor_string", 92, 64, S),
    ],
    StartControlConnectionReply: [
        F("protocol_version", 12, 2),
        F("result_code", 14, 1, C),
        F("error_code", 15, 1, C),
        F("framing_capabilities", 16, 4),
        F("bearer_capabilities", 20, 4),
        F("maximum_channels", 24, 2),
        F("firmware_revision", 26, 2),
        F("host_name", 28, 64, S),
        F("vendor_string", 92, 64, S),
    ],
    StopControlConnectionRequest: [F("reason", 12, 1, C), F("reserved1", 13, 1, R), F("reserved2", 14, 2, R)],
    StopControlConnectionReply: [F("result_code", 12, 1, C), F("error_code", 13, 1, C), F("reserved1", 14, 2, R)],
    EchoRequest: [F("identifier", 12, 4)],
    EchoReply: [
        F("identifier", 12, 4),
        F("result_code", 16, 1, C),
        F("error_code", 17, 1, C),
        F("reserved1", 18, 2, R),
    ],
    OutgoingCallRequest: [
        F("call_id", 12, 2),
        F("call_serial_number", 14, 2),
        F("minimum_bps", 16, 4),
        F("maximum_bps", 20, 4),
        F("bearer_type", 24, 4),
        F("framing_type", 28, 4),
        F("packet_recv_window_size", 32, 2),
        F("packet_processing_delay", 34, 2),
        F("phone_number_length", 36, 2),
        F("reserved1", 38, 2, R),
        F("phone_number", 40, 64, S),
        F("subaddress", 104, 64, S),
    ],
    OutgoingCallReply: [
        F("call_id", 12, 2),
        F("peer_call_id", 14, 2),
        F("result_code", 16, 1, C),
        F("error_code", 17, 1, C),
        F("cause_code", 18, 2),
        F("connect_speed", 20, 4),
        F("packet_recv_window_size", 24, 2),
        F("packet_processing_delay", 26, 2),
        F("physical_channel_id", 28, 4),
    ],
    IncomingCallRequest: [
        F("call_id", 12, 2),
        F("call_serial_number", 14, 2),
        F("call_bearer_type", 16, 4),
        F("physical_channel_id", 20, 4),
        F("dialed_number_length", 24, 2),
        F("dialing_number_length", 26, 2),
        F("dialed_number", 28, 64, S),
        F("dialing_number", 92, 64, S),
        F("subaddress", 156, 64, S),
    ],
    IncomingCallReply: [
        F("call_id", 12, 2),
        F("peer_call_id", 14, 2),
        F("result_code", 16, 1, C),
        F("error_code", 17, 1, C),
        F("packet_recv_window_size", 18, 2),
        F("packet_transmit_delay", 20, 2),
        F("reserved1", 22, 2, R),
    ],
    IncomingCallConnected: [
        F("peer_call_id", 12, 2),
        F("reserved1", 14, 2, R),
        F("connect_speed", 16, 4),
        F("packet_recv_window_size", 20, 2),
        F("packet_transmit_delay", 22, 2),
        F("framing_type", 24, 4),
    ],
    CallClearRequest: [F("call_id", 12, 2), F("reserved1", 14, 2, R)],
    CallDisconnectNotify: [
        F("call_id", 12, 2),
        F("result_code", 14, 1, C),
        F("error_code", 15, 1, C),
        F("cause_code", 16, 2),
        F("reserved1", 18, 2, R),
        F("call_statistics", 20, 128, S),
    ],
    WanErrorNotify: [
        F("peer_call_id", 12, 2),
        F("reserved1", 14, 2, R),
        F("crc_errors", 16, 4),
        F("framing_errors", 20, 4),
        F("hardware_overruns", 24, 4),
        F("buffer_overruns", 28, 4),
        F("time_out_errors", 32, 4),
        F("alignment_errors", 36, 4),
    ],
    SetLinkInfo: [
        F("peer_call_id", 12, 2),
        F("reserved1", 14, 2, R),
        F("send_accm", 16, 4),
        F("receive_accm", 20, 4),
    ],
}

# pptp-control.md section 6: the values each code field may take.
GENERAL_ERRORS = set(range(7))  # 6.8
VALID_CODES: dict[tuple[type[ControlMessage], str], set[int]] = {
    (StartControlConnectionReply, "result_code"): {1, 2, 3, 4, 5},  # 6.1
    (StartControlConnectionReply, "error_code"): GENERAL_ERRORS,
    # 6.6 defines 1-3; 0 is accepted on purpose (accel-ppp sends it, section 5.3; StopReason.UNSPECIFIED).
    (StopControlConnectionRequest, "reason"): {0, 1, 2, 3},
    (StopControlConnectionReply, "result_code"): {1, 2},  # 6.2
    (StopControlConnectionReply, "error_code"): GENERAL_ERRORS,
    (EchoReply, "result_code"): {1, 2},  # 6.3
    (EchoReply, "error_code"): GENERAL_ERRORS,
    (OutgoingCallReply, "result_code"): {1, 2, 3, 4, 5, 6, 7},  # 6.4
    (OutgoingCallReply, "error_code"): GENERAL_ERRORS,
    (IncomingCallReply, "result_code"): {1, 2, 3},  # 6.5
    (IncomingCallReply, "error_code"): GENERAL_ERRORS,
    (CallDisconnectNotify, "result_code"): {1, 2, 3, 4},  # 6.7
    (CallDisconnectNotify, "error_code"): GENERAL_ERRORS,
}

# Every (class, field) for the parametrized tests.
ALL_FIELDS = [(cls, f) for cls in SPEC_CLASSES for f in LAYOUT[cls]]
RESERVED_FIELDS = [(cls, F("reserved0", 10, 2, R)) for cls in SPEC_CLASSES] + [
    (cls, f) for cls, f in ALL_FIELDS if f.kind == R
]
TEXT_FIELDS = [(cls, f) for cls, f in ALL_FIELDS if f.kind == S]
INT_FIELDS = [(cls, f) for cls, f in ALL_FIELDS if f.kind != S] + [
    (cls, F("reserved0", 10, 2, R)) for cls in SPEC_CLASSES
]
CODE_FIELDS = [(cls, f) for cls, f in ALL_FIELDS if f.kind == C]


def field_id(param: Any) -> str:
    if isinstance(param, F):
        return param.name
    if isinstance(param, type):
        return param.__name__
    return str(param)


# -- sample messages: every field distinctive and different from its default ------------


def sample_values(cls: type[ControlMessage]) -> dict[str, Any]:
    """Keyword arguments giving every body field of ``cls`` a distinctive value.

    Integers have a different value in every byte (so a byte-order or offset
    mistake shows), codes take the largest value the spec allows, reserved
    fields stay 0, strings are ASCII of varying length.
    """
    values: dict[str, Any] = {}
    for index, f in enumerate(LAYOUT[cls], start=1):
        if f.kind == R:
            continue
        if f.kind == C:
            values[f.name] = max(VALID_CODES[(cls, f.name)])
        elif f.kind == S:
            values[f.name] = f"{f.name}#{SPEC_CODE[cls]}~" + "x" * index
        elif f.size == 2:
            values[f.name] = ((0x80 | index) << 8) | f.offset
        else:
            values[f.name] = 0xC0000000 | (index << 16) | (f.offset << 8) | 0x5A
    return values


def sample(cls: type[ControlMessage]) -> ControlMessage:
    return cls(**sample_values(cls))


def wire(cls: type[ControlMessage]) -> bytes:
    return sample(cls).encode()


def patched(data: bytes, offset: int, raw: bytes) -> bytes:
    out = bytearray(data)
    out[offset : offset + len(raw)] = raw
    return bytes(out)


def expect_error(
    data: bytes | bytearray | memoryview, code: GeneralError, *, strict: bool = True
) -> ControlMessageError:
    with pytest.raises(ControlMessageError) as info:
        decode_message(data, strict=strict)
    assert info.value.error_code is code, info.value
    assert info.value.messages == []  # only the stream framer fills it
    return info.value


classes = pytest.mark.parametrize("cls", SPEC_CLASSES, ids=field_id)


# -- the spec tables agree with the codec's classes ---------------------------------------


def test_message_classes_cover_the_fifteen_types() -> None:
    assert len(MESSAGE_CLASSES) == 15
    assert {int(t): c for t, c in MESSAGE_CLASSES.items()} == {SPEC_CODE[c]: c for c in SPEC_CLASSES}


def test_parametrization_is_over_message_classes() -> None:
    assert [MESSAGE_CLASSES[t] for t in sorted(MESSAGE_CLASSES)] == SPEC_CLASSES


@classes
def test_layout_table_matches_dataclass_fields(cls: type[ControlMessage]) -> None:
    """Our spec table names exactly the class's fields, in wire order, and tiles the body."""
    names = [f.name for f in dataclasses.fields(cls)]
    assert names == ["reserved0", *(f.name for f in LAYOUT[cls])]
    position = 12
    for f in LAYOUT[cls]:
        assert f.offset == position, f
        position += f.size
    assert position == SPEC_SIZE[cls]


@classes
def test_sample_values_differ_from_defaults(cls: type[ControlMessage]) -> None:
    """The round trip below is only meaningful if no field keeps its default."""
    values = sample_values(cls)
    for field in dataclasses.fields(cls):
        if field.name not in values:
            continue
        if field.default is not dataclasses.MISSING:
            assert values[field.name] != field.default, field.name


# -- round trip, size, header, layout --------------------------------------------------------


@classes
def test_round_trip(cls: type[ControlMessage]) -> None:
    message = sample(cls)
    data = message.encode()
    for decoded in (
        cls.decode(data),
        ControlMessage.decode(data),
        decode_message(data),
        decode_message(bytearray(data)),
        decode_message(memoryview(data)),
        decode_message(data, strict=False),
    ):
        assert decoded == message
        assert type(decoded) is cls
        assert decoded.encode() == data


@classes
def test_default_message_round_trips(cls: type[ControlMessage]) -> None:
    required = {f.name: 0x1234 for f in dataclasses.fields(cls) if f.default is dataclasses.MISSING}
    if (cls, "result_code") in VALID_CODES:
        required["result_code"] = 1
    message = cls(**required)
    assert cls.decode(message.encode()) == message


@classes
def test_encoded_length_matches_spec_table(cls: type[ControlMessage]) -> None:
    data = wire(cls)
    assert len(data) == SPEC_SIZE[cls]
    assert SPEC_SIZE[cls] == cls.SIZE


@classes
def test_header_bytes(cls: type[ControlMessage]) -> None:
    data = wire(cls)
    assert data[0:2] == SPEC_SIZE[cls].to_bytes(2, "big")  # Length
    assert data[2:4] == b"\x00\x01"  # PPTP Message Type: control
    assert data[4:8] == MAGIC
    assert data[8:10] == SPEC_CODE[cls].to_bytes(2, "big")  # Control Message Type
    assert data[10:12] == b"\x00\x00"  # Reserved0


@classes
def test_every_field_at_its_spec_offset(cls: type[ControlMessage]) -> None:
    values = sample_values(cls)
    data = wire(cls)
    for f in LAYOUT[cls]:
        got = data[f.offset : f.offset + f.size]
        if f.kind == R:
            assert got == bytes(f.size), f
        elif f.kind == S:
            raw = values[f.name].encode("ascii")
            assert got == raw + bytes(f.size - len(raw)), f
        else:
            assert got == int(values[f.name]).to_bytes(f.size, "big"), f


@classes
def test_boundary_integers_round_trip(cls: type[ControlMessage]) -> None:
    """0 and the all-ones value of every plain integer field survive (no sign or width slip)."""
    plain = [f for f in LAYOUT[cls] if f.kind == "int"]
    for value_of in (lambda f: 0, lambda f: (1 << (8 * f.size)) - 1):
        values = sample_values(cls) | {f.name: value_of(f) for f in plain}
        message = cls(**values)
        data = message.encode()
        assert cls.decode(data) == message
        for f in plain:
            assert data[f.offset : f.offset + f.size] == value_of(f).to_bytes(f.size, "big")


def test_unnamed_bearer_and_framing_types_are_kept() -> None:
    """OCRQ Bearer/Framing Type are plain integers (spec 6.9 names 1-3, other values are not refused)."""
    data = patched(wire(OutgoingCallRequest), 24, bytes.fromhex("DEADBEEF 00000000"))
    message = OutgoingCallRequest.decode(data)
    assert message.bearer_type == 0xDEADBEEF
    assert message.framing_type == 0


def test_capability_bits_outside_the_named_flags_are_kept() -> None:
    data = patched(wire(StartControlConnectionRequest), 16, bytes.fromhex("80000007 FFFFFFFF"))
    message = StartControlConnectionRequest.decode(data)
    assert int(message.framing_capabilities) == 0x80000007
    assert int(message.bearer_capabilities) == 0xFFFFFFFF
    assert message.encode() == data


# -- golden encodings written from pptp-control.md section 5 ---------------------------------


def h(text: str) -> bytes:
    return bytes.fromhex(text)


GOLDEN_SCCRQ = (
    h("009C 0001 1A2B3C4D 0001 0000")  # Length 156, control, magic, type 1, reserved0
    + h("0100 0000")  # Protocol Version 1.0, Reserved1
    + h("00000001 00000002")  # Framing: async; Bearer: digital
    + h("1234 5678")  # Maximum Channels, Firmware Revision
    + h("70707470 2E657861 6D706C65")  # Host Name "pptp.example" ...
    + h("00") * 52  # ... zero-filled to 64
    + h("41434D45 20565049")  # Vendor String "ACME VPI" ...
    + h("00") * 56  # ... zero-filled to 64
)

GOLDEN_OCRQ = (
    h("00A8 0001 1A2B3C4D 0007 0000")  # Length 168, type 7
    + h("0B91 0002")  # Call ID 2961, Call Serial Number 2
    + h("0000012C 05F5E100")  # Minimum BPS 300, Maximum BPS 100000000
    + h("00000003 00000003")  # Bearer Type any, Framing Type either
    + h("0040 000A")  # Packet Recv. Window Size 64, Packet Processing Delay 10
    + h("0003 0000")  # Phone Number Length 3, Reserved1
    + h("353535")  # Phone Number "555" ...
    + h("00") * 61
    + h("6162")  # Subaddress "ab" ...
    + h("00") * 62
)

GOLDEN_OCRP = (
    h("0020 0001 1A2B3C4D 0008 0000")  # Length 32, type 8
    + h("C0DE 0B91")  # Call ID, Peer's Call ID
    + h("02 04")  # Result General Error, Error No-Resource
    + h("0010")  # Cause Code
    + h("0001E240")  # Connect Speed 123456
    + h("0020 0003")  # Window 32, Delay 3
    + h("00000007")  # Physical Channel ID
)

GOLDEN_CDN = (
    h("0094 0001 1A2B3C4D 000D 0000")  # Length 148, type 13
    + h("C0DE")  # Call ID (the PAC's)
    + h("03 00")  # Result Admin Shutdown, Error None
    + h("0000 0000")  # Cause Code, Reserved1
    + h("42797465 733A2034 32")  # Call Statistics "Bytes: 42" ...
    + h("00") * 119  # ... zero-filled to 128
)

GOLDEN: list[tuple[bytes, ControlMessage]] = [
    (
        GOLDEN_SCCRQ,
        StartControlConnectionRequest(
            protocol_version=0x0100,
            framing_capabilities=1,
            bearer_capabilities=2,
            maximum_channels=0x1234,
            firmware_revision=0x5678,
            host_name="pptp.example",
            vendor_string="ACME VPI",
        ),
    ),
    (
        GOLDEN_OCRQ,
        OutgoingCallRequest(
            call_id=2961,
            call_serial_number=2,
            minimum_bps=300,
            maximum_bps=100_000_000,
            bearer_type=3,
            framing_type=3,
            packet_recv_window_size=64,
            packet_processing_delay=10,
            phone_number_length=3,
            phone_number="555",
            subaddress="ab",
        ),
    ),
    (
        GOLDEN_OCRP,
        OutgoingCallReply(
            call_id=0xC0DE,
            peer_call_id=2961,
            result_code=OutgoingCallResult.GENERAL_ERROR,
            error_code=GeneralError.NO_RESOURCE,
            cause_code=0x10,
            connect_speed=123456,
            packet_recv_window_size=32,
            packet_processing_delay=3,
            physical_channel_id=7,
        ),
    ),
    (
        GOLDEN_CDN,
        CallDisconnectNotify(
            call_id=0xC0DE,
            result_code=DisconnectResult.ADMIN_SHUTDOWN,
            error_code=GeneralError.NONE,
            call_statistics="Bytes: 42",
        ),
    ),
]


@pytest.mark.parametrize(("golden", "message"), GOLDEN, ids=["SCCRQ", "OCRQ", "OCRP", "CDN"])
def test_golden_encoding(golden: bytes, message: ControlMessage) -> None:
    assert len(golden) == SPEC_SIZE[type(message)]
    assert message.encode().hex() == golden.hex()
    assert decode_message(golden) == message
    assert type(message).decode(golden) == message


# -- strings ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("cls", "f"), TEXT_FIELDS, ids=field_id)
def test_full_width_string_without_nul_round_trips(cls: type[ControlMessage], f: F) -> None:
    text = "".join(chr(ord("A") + i % 26) for i in range(f.size))
    message = cls(**(sample_values(cls) | {f.name: text}))
    data = message.encode()
    assert data[f.offset : f.offset + f.size] == text.encode("ascii")
    assert getattr(cls.decode(data), f.name) == text


def test_sixty_four_byte_host_name_round_trips() -> None:
    name = "h" * 60 + ".org"
    message = StartControlConnectionRequest(host_name=name, vendor_string="v" * 64)
    data = message.encode()
    assert data[28:92] == name.encode()
    assert data[92:156] == b"v" * 64
    decoded = StartControlConnectionRequest.decode(data)
    assert decoded.host_name == name
    assert decoded.vendor_string == "v" * 64


@pytest.mark.parametrize(("cls", "f"), TEXT_FIELDS, ids=field_id)
def test_string_stops_at_first_nul(cls: type[ControlMessage], f: F) -> None:
    """Win95 did not zero-fill: whatever follows the first NUL is ignored (spec 6.10)."""
    garbage = b"win95\x00" + bytes(range(0xFF, 0xFF - (f.size - 6), -1))
    data = patched(wire(cls), f.offset, garbage)
    decoded = cls.decode(data)
    assert getattr(decoded, f.name) == "win95"
    # the neighbouring fields are unaffected
    for other in LAYOUT[cls]:
        if other.kind == S and other != f:
            assert getattr(decoded, other.name) == sample_values(cls)[other.name]


def test_string_starting_with_nul_is_empty() -> None:
    data = patched(wire(CallDisconnectNotify), 20, b"\x00junk")
    assert CallDisconnectNotify.decode(data).call_statistics == ""


def test_high_bytes_decode_one_to_one_as_latin1() -> None:
    data = patched(wire(StartControlConnectionRequest), 28, b"\xe9t\xe9\xff\x80".ljust(64, b"\x00"))
    message = StartControlConnectionRequest.decode(data)
    assert message.host_name == "\xe9t\xe9\xff\x80"
    assert message.encode() == data


@pytest.mark.parametrize(("cls", "f"), TEXT_FIELDS, ids=field_id)
@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(lambda width: "y" * (width + 1), id="one-too-long"),
        pytest.param(lambda width: "y" * (2 * width), id="much-too-long"),
        pytest.param(lambda width: "ab\x00cd", id="nul-inside"),
        pytest.param(lambda width: "\x00", id="nul-only"),
        pytest.param(lambda width: "euro \u20ac", id="not-latin1"),
        pytest.param(lambda width: "\u65e5\u672c", id="cjk"),
        pytest.param(lambda width: b"bytes", id="bytes-not-str"),
        pytest.param(lambda width: 42, id="int-not-str"),
    ],
)
def test_bad_strings_refused_on_encode(cls: type[ControlMessage], f: F, bad: Any) -> None:
    message = cls(**(sample_values(cls) | {f.name: bad(f.size)}))
    with pytest.raises(ValueError, match=f.name):
        message.encode()


# -- integers out of range on encode -------------------------------------------------------------


@pytest.mark.parametrize(("cls", "f"), INT_FIELDS, ids=field_id)
def test_out_of_range_integers_refused_on_encode(cls: type[ControlMessage], f: F) -> None:
    bits = 8 * f.size
    for bad in (-1, 1 << bits, (1 << bits) + 1, 1 << 64, 1.0, "1", None):
        message = cls(**(sample_values(cls) | {f.name: bad}))
        with pytest.raises(ValueError, match=f.name):
            message.encode()
    # the largest value that fits is accepted
    assert len(cls(**(sample_values(cls) | {f.name: (1 << bits) - 1})).encode()) == SPEC_SIZE[cls]


# -- malformed input ------------------------------------------------------------------------------


@classes
@pytest.mark.parametrize("magic", ["00000000", "4D3C2B1A", "1A2B3C4E", "FFFFFFFF", "1A2B3C00"])
def test_bad_magic(cls: type[ControlMessage], magic: str) -> None:
    expect_error(patched(wire(cls), 4, h(magic)), BAD_FORMAT)
    expect_error(patched(wire(cls), 4, h(magic)), BAD_FORMAT, strict=False)


@classes
def test_buffer_longer_than_length(cls: type[ControlMessage]) -> None:
    data = wire(cls)
    for extra in (b"\x00", data[:12], data):
        error = expect_error(data + extra, BAD_FORMAT)
        assert error.message_type == SPEC_CODE[cls]


@classes
def test_length_not_the_size_of_the_type(cls: type[ControlMessage]) -> None:
    """Length lies about the type, and the buffer is exactly Length bytes long."""
    size = SPEC_SIZE[cls]
    data = wire(cls)
    lies = {size - 1, size + 1, *SPEC_SIZES} - {size}
    for lie in sorted(n for n in lies if 16 <= n <= 220):
        body = (data + bytes(lie))[:lie]
        error = expect_error(patched(body, 0, lie.to_bytes(2, "big")), BAD_FORMAT)
        assert error.message_type == SPEC_CODE[cls], lie


@pytest.mark.parametrize("length", [0, 1, 11, 12, 15, 221, 256, 0x9C00, 0xFFFF])
def test_length_outside_legal_range(length: int) -> None:
    data = patched(wire(EchoRequest), 0, length.to_bytes(2, "big"))
    buffer = (data + bytes(length))[: max(length, 12)]
    error = expect_error(buffer, BAD_FORMAT)
    assert error.message_type is None
    with pytest.raises(ControlMessageError) as info:
        check_header_prefix(buffer[:2])
    assert info.value.error_code is BAD_FORMAT


@classes
@pytest.mark.parametrize("pptp_type", [2, 0, 3, 0x0100, 0x8001, 0xFFFF])
def test_pptp_message_type_other_than_control(cls: type[ControlMessage], pptp_type: int) -> None:
    data = patched(wire(cls), 2, pptp_type.to_bytes(2, "big"))
    expect_error(data, BAD_VALUE)
    expect_error(data, BAD_VALUE, strict=False)


@pytest.mark.parametrize("control_type", [0, 16, 17, 0x0100, 0x0F00, 0xFFFF])
@pytest.mark.parametrize("length", [16, 156, 220])
def test_unknown_control_message_type(control_type: int, length: int) -> None:
    data = length.to_bytes(2, "big") + h("0001") + MAGIC + control_type.to_bytes(2, "big") + bytes(length - 10)
    assert len(data) == length
    error = expect_error(data, BAD_VALUE)
    assert error.message_type is None
    expect_error(data, BAD_VALUE, strict=False)


@classes
def test_truncated_at_every_length(cls: type[ControlMessage]) -> None:
    data = wire(cls)
    assert len(data) == SPEC_SIZE[cls]
    for n in range(SPEC_SIZE[cls]):
        for strict in (True, False):
            error = expect_error(data[:n], BAD_FORMAT, strict=strict)
            if n >= 12:
                assert error.message_type == SPEC_CODE[cls], n


@pytest.mark.parametrize(("cls", "f"), RESERVED_FIELDS, ids=field_id)
def test_nonzero_reserved(cls: type[ControlMessage], f: F) -> None:
    for raw in (b"\x01".rjust(f.size, b"\x00"), b"\x80".ljust(f.size, b"\x00"), b"\xff" * f.size):
        data = patched(wire(cls), f.offset, raw)
        error = expect_error(data, BAD_VALUE)
        assert error.message_type == SPEC_CODE[cls]
        with pytest.raises(ControlMessageError):
            cls.decode(data)

        kept = cls.decode(data, strict=False)
        assert getattr(kept, f.name) == int.from_bytes(raw, "big")
        assert kept.nonzero_reserved() == [f.name]
        assert kept.encode() == data  # kept, not zeroed
        expected = sample(cls)
        assert dataclasses.replace(kept, **{f.name: 0}) == expected


@classes
def test_zero_reserved_reports_nothing(cls: type[ControlMessage]) -> None:
    assert sample(cls).nonzero_reserved() == []
    assert cls.decode(wire(cls), strict=False).nonzero_reserved() == []


def test_several_nonzero_reserved_all_reported() -> None:
    data = patched(wire(StopControlConnectionRequest), 10, h("0001"))
    data = patched(data, 13, h("02 0003"))
    message = StopControlConnectionRequest.decode(data, strict=False)
    assert (message.reserved0, message.reserved1, message.reserved2) == (1, 2, 3)
    assert sorted(message.nonzero_reserved()) == ["reserved0", "reserved1", "reserved2"]


@pytest.mark.parametrize(("cls", "f"), CODE_FIELDS, ids=field_id)
def test_code_fields_accept_only_defined_values(cls: type[ControlMessage], f: F) -> None:
    valid = VALID_CODES[(cls, f.name)]
    for value in range(256):
        data = patched(wire(cls), f.offset, bytes([value]))
        if value in valid:
            decoded = cls.decode(data)
            assert getattr(decoded, f.name) == value
        else:
            for strict in (True, False):
                error = expect_error(data, BAD_VALUE, strict=strict)
                assert error.message_type == SPEC_CODE[cls], value


def test_undefined_codes_named_in_the_brief() -> None:
    sccrp = wire(StartControlConnectionReply)
    expect_error(patched(sccrp, 14, b"\x09"), BAD_VALUE)  # result 9
    expect_error(patched(sccrp, 15, b"\x07"), BAD_VALUE)  # error code 7
    expect_error(patched(wire(EchoReply), 17, b"\x07"), BAD_VALUE)
    expect_error(patched(wire(OutgoingCallReply), 16, b"\x08"), BAD_VALUE)
    expect_error(patched(wire(CallDisconnectNotify), 14, b"\x00"), BAD_VALUE)


@classes
def test_decode_as_wrong_subclass(cls: type[ControlMessage]) -> None:
    data = wire(cls)
    for other in SPEC_CLASSES:
        if other is cls:
            continue
        with pytest.raises(ControlMessageError) as info:
            other.decode(data)
        assert info.value.error_code is BAD_VALUE
        assert info.value.message_type == SPEC_CODE[cls]


def test_echo_request_decode_of_sccrq_bytes() -> None:
    with pytest.raises(ControlMessageError) as info:
        EchoRequest.decode(wire(StartControlConnectionRequest))
    assert info.value.error_code is BAD_VALUE
    assert info.value.message_type == 1


def test_error_is_a_value_error_with_a_reason() -> None:
    with pytest.raises(ValueError, match="Magic") as info:
        decode_message(patched(wire(EchoRequest), 4, h("00000000")))
    assert isinstance(info.value, ControlMessageError)
    assert info.value.reason


# -- check_header_prefix -----------------------------------------------------------------------


@classes
def test_header_prefix_needs_ten_bytes(cls: type[ControlMessage]) -> None:
    data = wire(cls)
    for n in range(10):
        assert check_header_prefix(data[:n]) is None, n
    for n in (10, 11, 12, len(data)):
        assert check_header_prefix(data[:n]) == SPEC_SIZE[cls]
    assert check_header_prefix(memoryview(data)[:10]) == SPEC_SIZE[cls]


def test_header_prefix_checks_each_field_as_soon_as_present() -> None:
    data = wire(EchoRequest)
    with pytest.raises(ControlMessageError):
        check_header_prefix(h("0005"))
    with pytest.raises(ControlMessageError):
        check_header_prefix(data[:2] + h("0002"))
    with pytest.raises(ControlMessageError):
        check_header_prefix(data[:4] + h("1A2B3C4E"))
    with pytest.raises(ControlMessageError) as info:
        check_header_prefix(h("009C") + data[2:10])  # Echo-Request claiming 156 bytes
    assert info.value.error_code is BAD_FORMAT
    assert info.value.message_type == 5
