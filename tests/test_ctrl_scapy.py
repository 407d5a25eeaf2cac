"""Our control-message codec against scapy's independent PPTP implementation.

``scapy.layers.pptp`` was written from RFC 2637 by someone else, so byte-exact
agreement in both directions is evidence that our field table (order, widths,
byte order, string padding) is right.  For each of the 15 message types:

* scapy -> ours: scapy builds the message with distinctive, non-default values
  in every field; our strict decoder must give back exactly those values;
* ours -> scapy: our encoder must produce scapy's bytes exactly, and scapy
  must dissect our bytes into the same values;
* Reserved fields: scapy writes non-zero values where RFC 2637 says "MUST be
  0"; strict decoding refuses them, lenient decoding keeps them in place.

``CASES`` is the explicit field-name mapping between the two implementations.
scapy is trusted only where it agrees with RFC 2637; where it does not, the
defect is pinned by a test of its own below (``test_scapy_defect_*``), so it
stays visible and the test fails the day scapy fixes it.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from typing import Any

import pytest
from scapy.fields import StrFixedLenField
from scapy.layers.pptp import (
    PPTP,
    PPTPCallClearRequest,
    PPTPCallDisconnectNotify,
    PPTPEchoReply,
    PPTPEchoRequest,
    PPTPIncomingCallConnected,
    PPTPIncomingCallReply,
    PPTPIncomingCallRequest,
    PPTPOutgoingCallReply,
    PPTPOutgoingCallRequest,
    PPTPSetLinkInfo,
    PPTPStartControlConnectionReply,
    PPTPStartControlConnectionRequest,
    PPTPStopControlConnectionReply,
    PPTPStopControlConnectionRequest,
    PPTPWANErrorNotify,
)
from scapy.packet import NoPayload, Packet

from pypptp.ctrl.constants import (
    MAGIC_COOKIE,
    BearerType,
    ControlMessageType,
    DisconnectResult,
    EchoResult,
    GeneralError,
    IncomingCallResult,
    OutgoingCallResult,
    PptpMessageType,
    StartResult,
    StopReason,
    StopResult,
)
from pypptp.ctrl.messages import (
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
    decode_message,
)

# -- distinctive values -------------------------------------------------------------

HOST_64 = "pptp-server-01.lab.example.org.with-a-name-exactly-64-chars-long"  # fills the field: no NUL at all
VENDOR_LATIN1 = "Vendor \xe9\xfc\xff v7.3"  # bytes >= 0x80 must map one-to-one (Latin-1)
SUBADDRESS_64 = "".join(chr(0x21 + i) for i in range(64))  # '!' .. '`': 64 printable, distinct bytes
CALL_STATS_128 = ("rx=123456 tx=654321 crc=0 align=0 " * 4)[:128]  # the 128-octet CDN field, full
assert len(HOST_64) == len(SUBADDRESS_64) == 64 and len(CALL_STATS_128) == 128

RFC_TEXT_WIDTHS: Mapping[str, int] = {
    # RFC 2637 sections 2.1, 2.2, 2.7, 2.9, 2.13: every text field is 64 octets except Call Statistics.
    "host_name": 64,
    "vendor_string": 64,
    "phone_number": 64,
    "subaddress": 64,
    "dialed_number": 64,
    "dialing_number": 64,
    "call_statistics": 128,
}

# -- the mapping table ----------------------------------------------------------------

HEADER_FIELDS = ("len", "type", "magic_cookie", "ctrl_msg_type")
"""scapy's names for Length, PPTP Message Type, Magic Cookie and Control Message Type."""

RESERVED0 = ("reserved0", "reserved_0", 0xA00A)
"""Reserved0 of the common header: (ours, scapy's, a non-zero value for the Reserved tests)."""


@dataclasses.dataclass(frozen=True)
class Case:
    """One message type: our class, scapy's class and the field mapping between them.

    ``fields`` lists every non-reserved body field in wire order as
    (our name, scapy's name, distinctive value); ``reserved`` lists the body's
    Reserved fields as (our name, scapy's name, non-zero value of the field's
    width).  ``scapy_workaround`` holds values scapy gets wrong by default.
    """

    ours: type[ControlMessage]
    theirs: type[Packet]
    fields: tuple[tuple[str, str, int | str], ...]
    reserved: tuple[tuple[str, str, int], ...] = ()
    scapy_workaround: Mapping[str, int] = dataclasses.field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.ours.TYPE.name


CASES: tuple[Case, ...] = (
    Case(
        StartControlConnectionRequest,
        PPTPStartControlConnectionRequest,
        fields=(
            ("protocol_version", "protocol_version", 0x0102),
            ("framing_capabilities", "framing_capabilities", 0xA1B2C3D7),  # unknown bits are kept
            ("bearer_capabilities", "bearer_capabilities", 0xE5F60713),
            ("maximum_channels", "maximum_channels", 0x2B3C),
            ("firmware_revision", "firmware_revision", 0x0870),
            ("host_name", "host_name", HOST_64),
            ("vendor_string", "vendor_string", VENDOR_LATIN1),
        ),
        reserved=(("reserved1", "reserved_1", 0xB11B),),
    ),
    Case(
        StartControlConnectionReply,
        PPTPStartControlConnectionReply,
        fields=(
            ("protocol_version", "protocol_version", 0x0103),
            ("result_code", "result_code", StartResult.GENERAL_ERROR),
            ("error_code", "error_code", GeneralError.PAC_ERROR),
            ("framing_capabilities", "framing_capabilities", 0x8000_0002),
            ("bearer_capabilities", "bearer_capabilities", 0x4000_0001),
            ("maximum_channels", "maximum_channels", 0x0A0B),
            ("firmware_revision", "firmware_revision", 0xF00D),
            ("host_name", "host_name", "gw"),
            ("vendor_string", "vendor_string", HOST_64),
        ),
    ),
    Case(
        StopControlConnectionRequest,
        PPTPStopControlConnectionRequest,
        fields=(("reason", "reason", StopReason.STOP_LOCAL_SHUTDOWN),),
        reserved=(("reserved1", "reserved_1", 0xC3), ("reserved2", "reserved_2", 0xC44C)),
    ),
    Case(
        StopControlConnectionReply,
        PPTPStopControlConnectionReply,
        fields=(
            ("result_code", "result_code", StopResult.GENERAL_ERROR),
            ("error_code", "error_code", GeneralError.BAD_CALL_ID),
        ),
        # RFC 2637 section 2.4 names this field Reserved1; scapy calls it reserved_2.
        reserved=(("reserved1", "reserved_2", 0xD55D),),
    ),
    Case(
        EchoRequest,
        PPTPEchoRequest,
        fields=(("identifier", "identifier", 0xDEADBEEF),),
    ),
    Case(
        EchoReply,
        PPTPEchoReply,
        fields=(
            ("identifier", "identifier", 0xFEEDFACE),
            ("result_code", "result_code", EchoResult.GENERAL_ERROR),
            ("error_code", "error_code", GeneralError.NO_RESOURCE),
        ),
        reserved=(("reserved1", "reserved_1", 0xE66E),),
    ),
    Case(
        OutgoingCallRequest,
        PPTPOutgoingCallRequest,
        fields=(
            ("call_id", "call_id", 0xC0DE),
            ("call_serial_number", "call_serial_number", 0x7828),
            ("minimum_bps", "minimum_bps", 0x0102_0304),
            ("maximum_bps", "maximum_bps", 0x0506_0708),
            # Bearer and Framing Type are plain integers in our codec: full width checks byte order.
            ("bearer_type", "bearer_type", 0x1122_3344),
            ("framing_type", "framing_type", 0x5566_7788),
            ("packet_recv_window_size", "pkt_window_size", 0x0A40),
            ("packet_processing_delay", "pkt_proc_delay", 0x0B0C),
            ("phone_number_length", "phone_number_len", 11),
            ("phone_number", "phone_number", "+1 555 0100"),
            ("subaddress", "subaddress", SUBADDRESS_64),
        ),
        reserved=(("reserved1", "reserved_1", 0xF77F),),
    ),
    Case(
        OutgoingCallReply,
        PPTPOutgoingCallReply,
        fields=(
            ("call_id", "call_id", 0xBEEF),
            ("peer_call_id", "peer_call_id", 0xC0DE),
            ("result_code", "result_code", OutgoingCallResult.DO_NOT_ACCEPT),
            ("error_code", "error_code", GeneralError.BAD_VALUE),
            ("cause_code", "cause_code", 0x1F2E),
            ("connect_speed", "connect_speed", 0x3D4C_5B6A),
            ("packet_recv_window_size", "pkt_window_size", 0x0102),
            ("packet_processing_delay", "pkt_proc_delay", 0x0304),
            ("physical_channel_id", "channel_id", 0x7988_A9BA),
        ),
    ),
    Case(
        IncomingCallRequest,
        PPTPIncomingCallRequest,
        fields=(
            ("call_id", "call_id", 0x4321),
            ("call_serial_number", "call_serial_number", 0x8765),
            ("call_bearer_type", "bearer_type", 0x0000_0002),  # RFC 2637 section 2.9: 1 analog, 2 digital
            ("physical_channel_id", "channel_id", 0xCAFE_BABE),
            ("dialed_number_length", "dialed_number_len", 64),
            ("dialing_number_length", "dialing_number_len", 7),
            ("dialed_number", "dialed_number", "9" * 64),
            ("dialing_number", "dialing_number", "5550123"),
            ("subaddress", "subaddress", "ext. \xa7 42"),
        ),
    ),
    Case(
        IncomingCallReply,
        PPTPIncomingCallReply,
        fields=(
            ("call_id", "call_id", 0x0F1E),
            ("peer_call_id", "peer_call_id", 0x4321),
            ("result_code", "result_code", IncomingCallResult.DO_NOT_ACCEPT),
            ("error_code", "error_code", GeneralError.NOT_CONNECTED),
            ("packet_recv_window_size", "pkt_window_size", 0x2D3C),
            ("packet_transmit_delay", "pkt_transmit_delay", 0x4B5A),
        ),
        reserved=(("reserved1", "reserved_1", 0x1881),),
        # scapy's default Length is 148; the message is 24 octets (test_scapy_defect_icrp_default_length).
        scapy_workaround={"len": 24},
    ),
    Case(
        IncomingCallConnected,
        PPTPIncomingCallConnected,
        fields=(
            ("peer_call_id", "peer_call_id", 0x6978),
            ("connect_speed", "connect_speed", 0x8796_A5B4),
            ("packet_recv_window_size", "pkt_window_size", 0xC3D2),
            ("packet_transmit_delay", "pkt_transmit_delay", 0xE1F0),
            ("framing_type", "framing_type", 0x0000_0002),  # RFC 2637 section 2.11: 1 async, 2 sync
        ),
        reserved=(("reserved1", "reserved_1", 0x2992),),
    ),
    Case(
        CallClearRequest,
        PPTPCallClearRequest,
        fields=(("call_id", "call_id", 0xA5A6),),
        reserved=(("reserved1", "reserved_1", 0x3AA3),),
    ),
    Case(
        CallDisconnectNotify,
        PPTPCallDisconnectNotify,
        fields=(
            ("call_id", "call_id", 0xB7B8),
            ("result_code", "result_code", DisconnectResult.REQUEST),
            ("error_code", "error_code", GeneralError.BAD_FORMAT),
            ("cause_code", "cause_code", 0xC9CA),
            ("call_statistics", "call_statistic", CALL_STATS_128),
        ),
        reserved=(("reserved1", "reserved_1", 0x4BB4),),
    ),
    Case(
        WanErrorNotify,
        PPTPWANErrorNotify,
        fields=(
            ("peer_call_id", "peer_call_id", 0xDBDC),
            ("crc_errors", "crc_errors", 0x0101_0202),
            ("framing_errors", "framing_errors", 0x0303_0404),
            ("hardware_overruns", "hardware_overruns", 0x0505_0606),
            ("buffer_overruns", "buffer_overruns", 0x0707_0808),
            ("time_out_errors", "time_out_errors", 0x0909_0A0A),
            ("alignment_errors", "alignment_errors", 0x0B0B_0C0C),
        ),
        reserved=(("reserved1", "reserved_1", 0x5CC5),),
    ),
    Case(
        SetLinkInfo,
        PPTPSetLinkInfo,
        fields=(
            ("peer_call_id", "peer_call_id", 0xEDEE),
            ("send_accm", "send_accm", 0x000A_0000),
            ("receive_accm", "receive_accm", 0x1234_5678),
        ),
        reserved=(("reserved1", "reserved_1", 0x6DD6),),
    ),
)

CASE_PARAMS = [pytest.param(case, id=case.id) for case in CASES]
CASE_BY_TYPE = {case.ours.TYPE: case for case in CASES}


# -- helpers ------------------------------------------------------------------------


def scapy_value(value: int | str) -> int | bytes:
    """scapy takes bytes for its StrFixedLenFields and plain ints for everything else."""
    return value.encode("latin-1") if isinstance(value, str) else int(value)


def build_scapy(case: Case, *, reserved: bool = False) -> Packet:
    """scapy's message with the case's values (and, if asked, non-zero Reserved fields)."""
    kwargs: dict[str, Any] = {theirs: scapy_value(value) for _, theirs, value in case.fields}
    if reserved:
        for _, theirs, value in (RESERVED0, *case.reserved):
            kwargs[theirs] = value
    kwargs.update(case.scapy_workaround)
    return case.theirs(**kwargs)


def build_ours(case: Case, *, reserved: bool = False) -> ControlMessage:
    kwargs: dict[str, Any] = {ours: value for ours, _, value in case.fields}
    if reserved:
        for ours, _, value in (RESERVED0, *case.reserved):
            kwargs[ours] = value
    return case.ours(**kwargs)


def scapy_field_width(packet_class: type[Packet], name: str) -> int:
    field = next(f for f in packet_class.fields_desc if f.name == name)
    assert isinstance(field, StrFixedLenField), f"{packet_class.__name__}.{name} is not a fixed-width string"
    width = field.length_from(packet_class())
    assert isinstance(width, int)
    return width


def our_default(message_class: type[ControlMessage], name: str) -> object:
    field = next(f for f in dataclasses.fields(message_class) if f.name == name)
    return field.default  # dataclasses.MISSING for required fields


# -- the table itself -------------------------------------------------------------------


def test_table_covers_all_15_message_types() -> None:
    assert [case.ours.TYPE for case in CASES] == list(ControlMessageType)
    for case in CASES:
        assert case.theirs().ctrl_msg_type == case.ours.TYPE, case.id


@pytest.mark.parametrize("case", CASE_PARAMS)
def test_table_maps_every_field_in_wire_order(case: Case) -> None:
    """Each table row pairs a field of ours with scapy's field at the same position on the wire."""
    rows = [(ours, theirs) for ours, theirs, _ in case.fields] + [(ours, theirs) for ours, theirs, _ in case.reserved]
    mapping = dict([(RESERVED0[0], RESERVED0[1]), *rows])
    assert len(mapping) == len(rows) + 1, "a field of ours is mapped twice"
    our_fields = [f.name for f in dataclasses.fields(case.ours)]
    their_fields = [f.name for f in case.theirs.fields_desc]
    assert set(mapping) == set(our_fields), "the table must name every field of ours"
    assert their_fields == [*HEADER_FIELDS, *(mapping[name] for name in our_fields)]


@pytest.mark.parametrize("case", CASE_PARAMS)
def test_table_values_are_distinctive(case: Case) -> None:
    """Every value differs from both implementations' defaults, and numbers differ from each other,
    so that a swapped, shifted or defaulted field cannot go unnoticed."""
    scapy_defaults = case.theirs()
    numbers = [int(value) for _, _, value in case.fields if not isinstance(value, str)]
    assert len(set(numbers)) == len(numbers), "two numeric fields share a value"
    for ours, theirs, value in case.fields:
        assert value != our_default(case.ours, ours), f"{ours} is our default"
        their_default = scapy_defaults.getfieldval(theirs)
        if isinstance(value, str):
            assert value.encode("latin-1") != their_default, f"{theirs} is scapy's default"
            assert "\0" not in value and value, f"{ours}: text values must be non-empty and NUL-free"
        else:
            assert value != 0, f"{ours} must be non-zero"
            assert their_default is None or value != int(their_default), f"{theirs} is scapy's default"
    for ours, _, value in (RESERVED0, *case.reserved):
        assert value != 0 and our_default(case.ours, ours) == 0


# -- scapy -> ours ----------------------------------------------------------------------


@pytest.mark.parametrize("case", CASE_PARAMS)
def test_scapy_bytes_decode_to_the_same_values(case: Case) -> None:
    wire = bytes(build_scapy(case))
    assert len(wire) == case.ours.SIZE
    message = decode_message(wire)  # strict: Reserved fields are zero here
    assert type(message) is case.ours
    assert case.ours.decode(wire) == message
    for ours, _, value in case.fields:
        decoded = getattr(message, ours)
        assert decoded == value, ours
        if isinstance(value, enum.Enum):  # result and error codes come back as their enum
            assert type(decoded) is type(value), ours
    for ours, _, _ in (RESERVED0, *case.reserved):
        assert getattr(message, ours) == 0, ours
    assert message.nonzero_reserved() == []
    assert message == build_ours(case)  # dataclass equality: every field, none forgotten


# -- ours -> scapy ----------------------------------------------------------------------


@pytest.mark.parametrize("case", CASE_PARAMS)
def test_our_bytes_equal_scapy_bytes(case: Case) -> None:
    ours = build_ours(case).encode()
    theirs = bytes(build_scapy(case))
    assert ours.hex(" ", 4) == theirs.hex(" ", 4)  # a readable diff on failure
    assert ours == theirs


@pytest.mark.parametrize("case", CASE_PARAMS)
def test_scapy_dissects_our_bytes_to_the_same_values(case: Case) -> None:
    wire = build_ours(case).encode()
    packet = PPTP(wire)  # scapy picks the message class from the Control Message Type
    assert type(packet) is case.theirs
    assert isinstance(packet.payload, NoPayload), "scapy found bytes after the message"
    assert packet.len == case.ours.SIZE == len(wire)
    assert packet.type == PptpMessageType.CONTROL
    assert packet.magic_cookie == MAGIC_COOKIE
    assert packet.ctrl_msg_type == case.ours.TYPE
    for _, theirs, value in case.fields:
        dissected = packet.getfieldval(theirs)
        if isinstance(value, str):
            # scapy keeps the NUL padding of a fixed-width string; we strip it when decoding.
            width = scapy_field_width(case.theirs, theirs)
            assert dissected == value.encode("latin-1").ljust(width, b"\0"), theirs
        else:
            assert int(dissected) == value, theirs
    for _, theirs, _ in (RESERVED0, *case.reserved):
        assert packet.getfieldval(theirs) == 0, theirs


# -- Reserved fields ----------------------------------------------------------------------


@pytest.mark.parametrize("case", CASE_PARAMS)
def test_nonzero_reserved_fields_sit_where_scapy_puts_them(case: Case) -> None:
    """Non-zero Reserved values make their offsets visible: strict decoding refuses them
    (Bad-Value), lenient decoding keeps each one in its own field, and encoding agrees."""
    wire = bytes(build_scapy(case, reserved=True))
    with pytest.raises(ControlMessageError) as refused:
        decode_message(wire)
    assert refused.value.error_code is GeneralError.BAD_VALUE
    assert refused.value.message_type is case.ours.TYPE

    message = decode_message(wire, strict=False)
    assert message == build_ours(case, reserved=True)
    assert message.nonzero_reserved() == [ours for ours, _, _ in (RESERVED0, *case.reserved)]
    assert build_ours(case, reserved=True).encode() == wire


# -- sizes and string widths against RFC 2637 ------------------------------------------------

SCAPY_DEFAULT_LENGTH_DEFECTS: Mapping[ControlMessageType, int] = {
    # scapy's PPTPIncomingCallReply: LenField("len", 148), the CDN's size; RFC 2637 section 2.10 gives 24.
    ControlMessageType.INCOMING_CALL_REPLY: 148,
}


@pytest.mark.parametrize("case", CASE_PARAMS)
def test_scapy_default_message_sizes(case: Case) -> None:
    """scapy's default messages have the RFC 2637 size on the wire; the Length field it writes
    agrees except for the known defects listed in SCAPY_DEFAULT_LENGTH_DEFECTS."""
    default = case.theirs()
    assert len(bytes(default)) == case.ours.SIZE
    assert default.len == SCAPY_DEFAULT_LENGTH_DEFECTS.get(case.ours.TYPE, case.ours.SIZE)


def test_scapy_defect_icrp_default_length() -> None:
    """scapy defect: a default PPTPIncomingCallReply says Length 148 but is 24 bytes long.

    RFC 2637 section 2.10 and our codec: 24.  Such bytes are refused by our decoder,
    which is why the ICRP case above sets ``len=24`` explicitly.
    """
    assert IncomingCallReply.SIZE == 24
    wire = bytes(PPTPIncomingCallReply())
    assert len(wire) == 24
    assert int.from_bytes(wire[:2], "big") == 148  # the wrong Length scapy writes
    with pytest.raises(ControlMessageError, match="INCOMING_CALL_REPLY Length is 148, must be 24"):
        decode_message(wire)
    fixed = bytes(PPTPIncomingCallReply(len=24))
    assert decode_message(fixed) == IncomingCallReply(
        call_id=1, peer_call_id=1, result_code=IncomingCallResult.CONNECT, packet_recv_window_size=64
    )


@pytest.mark.parametrize(
    "case", [pytest.param(c, id=c.id) for c in CASES if any(isinstance(v, str) for _, _, v in c.fields)]
)
def test_string_fields_have_rfc_widths(case: Case) -> None:
    """Both implementations give every text field its RFC 2637 width; ours refuses one byte more."""
    for ours, theirs, _ in case.fields:
        if ours not in RFC_TEXT_WIDTHS:
            continue
        width = RFC_TEXT_WIDTHS[ours]
        assert scapy_field_width(case.theirs, theirs) == width, theirs
        fits: dict[str, Any] = {ours: "x" * width}
        too_long: dict[str, Any] = {ours: "x" * (width + 1)}
        full = dataclasses.replace(build_ours(case), **fits)
        assert decode_message(full.encode()) == full
        with pytest.raises(ValueError, match=f"{ours} is {width + 1} bytes long"):
            dataclasses.replace(full, **too_long).encode()
    assert {ours for ours, _, v in case.fields if isinstance(v, str)} <= set(RFC_TEXT_WIDTHS)


# -- other scapy discrepancies, pinned so that they stay visible ---------------------------------


def test_scapy_discrepancy_truncates_overlong_strings_silently() -> None:
    """scapy cuts a 65-byte host name to 64 without a word; our encoder refuses it."""
    wire = bytes(PPTPStartControlConnectionRequest(host_name=b"H" * 65))
    assert len(wire) == StartControlConnectionRequest.SIZE
    assert decode_message(wire).host_name == "H" * 64  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="host_name is 65 bytes long, the field holds 64"):
        StartControlConnectionRequest(host_name="H" * 65).encode()


def test_scapy_defect_icrp_result_codes_use_ocrp_names() -> None:
    """scapy labels ICRP Result Codes with the OCRP table: 3 shows as "No Carrier".

    RFC 2637 section 2.10: 3 is Do-Not-Accept (and 4-7 are undefined for an ICRP).
    Only the label is wrong; the wire value is the same.
    """
    packet = PPTPIncomingCallReply(len=24, result_code=IncomingCallResult.DO_NOT_ACCEPT)
    assert packet.sprintf("%PPTPIncomingCallReply.result_code%") == "No Carrier"
    assert decode_message(bytes(packet)).result_code is IncomingCallResult.DO_NOT_ACCEPT  # type: ignore[attr-defined]


def test_scapy_defect_icrq_default_bearer_type_is_undefined() -> None:
    """scapy's default ICRQ Call Bearer Type is 3 ("Any type of channel"), a value RFC 2637
    section 2.9 does not define for an ICRQ (1 analog, 2 digital); ours defaults to analog.
    Our codec keeps bearer types as plain integers, so it decodes the 3 unchanged."""
    assert PPTPIncomingCallRequest().bearer_type == 3
    assert IncomingCallRequest(call_id=1).call_bearer_type == BearerType.ANALOG
    assert decode_message(bytes(PPTPIncomingCallRequest())).call_bearer_type == 3  # type: ignore[attr-defined]


def test_scapy_discrepancy_dispatches_on_the_low_byte_of_the_message_type() -> None:
    """scapy picks the message class from byte 9 only: Control Message Type 0x0101 (257, which
    does not exist) is dissected as an SCCRQ.  Our decoder refuses it (Bad-Value)."""
    wire = bytearray(bytes(PPTPStartControlConnectionRequest()))
    wire[8] = 0x01
    packet = PPTP(bytes(wire))
    assert type(packet) is PPTPStartControlConnectionRequest
    assert packet.ctrl_msg_type == 0x0101
    with pytest.raises(ControlMessageError, match="unknown Control Message Type 257") as refused:
        decode_message(bytes(wire))
    assert refused.value.error_code is GeneralError.BAD_VALUE


def test_scapy_sli_default_accm_differs_from_rfc_default() -> None:
    """Not a wire defect, a difference of defaults: scapy's SLI carries ACCMs of 0, ours
    0xFFFFFFFF, the value RFC 2637 section 2.15 says applies until an SLI arrives."""
    assert PPTPSetLinkInfo().send_accm == PPTPSetLinkInfo().receive_accm == 0
    ours = SetLinkInfo(peer_call_id=1)
    assert ours.send_accm == ours.receive_accm == 0xFFFFFFFF
    assert decode_message(bytes(PPTPSetLinkInfo())) == SetLinkInfo(peer_call_id=1, send_accm=0, receive_accm=0)
