"""The TCP stream framer for control messages (RFC 2637 section 1.4, spec pptp-control.md section 2)."""

from __future__ import annotations

import random

import pytest

from pypptp.ctrl.constants import (
    ControlMessageType,
    DisconnectResult,
    EchoResult,
    GeneralError,
    IncomingCallResult,
    OutgoingCallResult,
    StartResult,
    StopReason,
    StopResult,
)
from pypptp.ctrl.framer import ControlStreamFramer
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
)

BAD_FORMAT = GeneralError.BAD_FORMAT
BAD_VALUE = GeneralError.BAD_VALUE

# One distinctive message of each type; sizes from pptp-control.md section 4.
SAMPLES: dict[type[ControlMessage], ControlMessage] = {
    StartControlConnectionRequest: StartControlConnectionRequest(
        maximum_channels=7, firmware_revision=0x0203, host_name="client.example", vendor_string="v" * 64
    ),
    StartControlConnectionReply: StartControlConnectionReply(
        result_code=StartResult.SUCCESS, maximum_channels=1, host_name="server", vendor_string="pypptp"
    ),
    StopControlConnectionRequest: StopControlConnectionRequest(reason=StopReason.STOP_LOCAL_SHUTDOWN),
    StopControlConnectionReply: StopControlConnectionReply(
        result_code=StopResult.GENERAL_ERROR, error_code=GeneralError.PAC_ERROR
    ),
    EchoRequest: EchoRequest(identifier=0xDEADBEEF),
    EchoReply: EchoReply(identifier=0x01020304, result_code=EchoResult.OK),
    OutgoingCallRequest: OutgoingCallRequest(call_id=2961, call_serial_number=2, phone_number="12345"),
    OutgoingCallReply: OutgoingCallReply(call_id=0xBEEF, peer_call_id=2961, result_code=OutgoingCallResult.CONNECTED),
    IncomingCallRequest: IncomingCallRequest(call_id=9, dialed_number="1", dialing_number="2", subaddress="3"),
    IncomingCallReply: IncomingCallReply(call_id=1, peer_call_id=9, result_code=IncomingCallResult.DO_NOT_ACCEPT),
    IncomingCallConnected: IncomingCallConnected(peer_call_id=1, connect_speed=56000),
    CallClearRequest: CallClearRequest(call_id=2961),
    CallDisconnectNotify: CallDisconnectNotify(
        call_id=0xBEEF, result_code=DisconnectResult.REQUEST, call_statistics="stats"
    ),
    WanErrorNotify: WanErrorNotify(peer_call_id=2961, crc_errors=1, alignment_errors=0xFFFFFFFF),
    SetLinkInfo: SetLinkInfo(peer_call_id=0xBEEF, send_accm=0, receive_accm=0x000A0000),
}
SPEC_SIZE = dict(zip(SAMPLES, [156, 156, 16, 16, 16, 20, 168, 32, 220, 24, 28, 16, 148, 40, 24], strict=True))
MAGIC = bytes.fromhex("1A2B3C4D")

classes = pytest.mark.parametrize("cls", list(SAMPLES), ids=lambda c: c.__name__)


def header(length: int, control_type: int, *, pptp_type: int = 1, magic: bytes = MAGIC) -> bytes:
    return length.to_bytes(2, "big") + pptp_type.to_bytes(2, "big") + magic + control_type.to_bytes(2, "big")


def refuse(framer: ControlStreamFramer, data: bytes | bytearray, code: GeneralError) -> ControlMessageError:
    with pytest.raises(ControlMessageError) as info:
        framer.feed(data)
    assert info.value.error_code is code, info.value
    return info.value


def test_samples_cover_every_type() -> None:
    assert set(SAMPLES) == set(MESSAGE_CLASSES.values())
    for cls, message in SAMPLES.items():
        assert len(message.encode()) == SPEC_SIZE[cls]


# -- reassembly ---------------------------------------------------------------------------


@classes
def test_split_at_every_byte_boundary(cls: type[ControlMessage]) -> None:
    message = SAMPLES[cls]
    data = message.encode()
    for split in range(len(data) + 1):
        framer = ControlStreamFramer()
        first = framer.feed(data[:split])
        if split < len(data):
            assert first == [], split
            assert framer.buffered == split
            assert framer.feed(data[split:]) == [message], split
        else:
            assert first == [message]
            assert framer.feed(data[split:]) == []
        assert framer.buffered == 0


@classes
def test_split_inside_a_stream(cls: type[ControlMessage]) -> None:
    """A message split anywhere while another one precedes and follows it in the same segments."""
    before, after = SAMPLES[EchoRequest], SAMPLES[SetLinkInfo]
    data = before.encode() + SAMPLES[cls].encode() + after.encode()
    for split in range(len(data) + 1):
        framer = ControlStreamFramer()
        got = framer.feed(data[:split])
        got += framer.feed(data[split:])
        assert got == [before, SAMPLES[cls], after], split
        assert framer.buffered == 0


def test_several_messages_in_one_segment() -> None:
    messages = list(SAMPLES.values())
    framer = ControlStreamFramer()
    assert framer.feed(b"".join(m.encode() for m in messages)) == messages
    assert framer.buffered == 0


def test_several_messages_and_a_partial_one_in_one_segment() -> None:
    messages = list(SAMPLES.values())
    tail = SAMPLES[IncomingCallRequest].encode()
    framer = ControlStreamFramer()
    assert framer.feed(b"".join(m.encode() for m in messages) + tail[:100]) == messages
    assert framer.buffered == 100
    assert framer.feed(tail[100:219]) == []
    assert framer.buffered == 219
    assert framer.feed(tail[219:]) == [SAMPLES[IncomingCallRequest]]
    assert framer.buffered == 0


def test_same_message_repeated_back_to_back() -> None:
    message = SAMPLES[EchoRequest]
    framer = ControlStreamFramer()
    assert framer.feed(message.encode() * 50) == [message] * 50
    assert framer.buffered == 0


def test_byte_by_byte_long_mixed_stream() -> None:
    rng = random.Random(2637)
    messages = [m for _ in range(4) for m in SAMPLES.values()]
    rng.shuffle(messages)
    stream = b"".join(m.encode() for m in messages)
    ends = set()
    position = 0
    for m in messages:
        position += len(m.encode())
        ends.add(position)

    framer = ControlStreamFramer()
    got: list[ControlMessage] = []
    since_last = 0
    for index in range(len(stream)):
        out = framer.feed(stream[index : index + 1])
        since_last += 1
        if index + 1 in ends:
            assert len(out) == 1, index  # completed exactly at its last byte
            assert framer.buffered == 0
            since_last = 0
        else:
            assert out == [], index
            assert framer.buffered == since_last
        got += out
    assert got == messages
    assert framer.buffered == 0


def test_accepts_bytearray_and_memoryview_and_empty_feeds() -> None:
    data = SAMPLES[OutgoingCallRequest].encode()
    framer = ControlStreamFramer()
    assert framer.feed(b"") == []
    assert framer.feed(bytearray(data[:50])) == []
    assert framer.feed(memoryview(data)[50:100]) == []
    assert framer.feed(b"") == []
    assert framer.buffered == 100
    assert framer.feed(memoryview(data[100:])) == [SAMPLES[OutgoingCallRequest]]


def test_feed_data_is_copied() -> None:
    """Mutating the caller's buffer after feed() must not change what the framer holds."""
    data = SAMPLES[EchoRequest].encode()
    chunk = bytearray(data[:8])
    framer = ControlStreamFramer()
    assert framer.feed(chunk) == []
    chunk[4:8] = b"\x00\x00\x00\x00"
    assert framer.feed(data[8:]) == [SAMPLES[EchoRequest]]


# -- early refusal ----------------------------------------------------------------------------


@pytest.mark.parametrize("length", [0, 1, 11, 12, 15, 221, 256, 0x1000, 0xFFFF])
def test_length_out_of_range_refused_after_two_bytes(length: int) -> None:
    framer = ControlStreamFramer()
    assert framer.feed(length.to_bytes(2, "big")[:1]) == []
    assert framer.buffered == 1
    error = refuse(framer, length.to_bytes(2, "big")[1:], BAD_FORMAT)
    assert error.message_type is None
    refuse(ControlStreamFramer(), length.to_bytes(2, "big"), BAD_FORMAT)


@pytest.mark.parametrize("length", [16, 20, 156, 220])
def test_length_in_range_waits_for_more(length: int) -> None:
    framer = ControlStreamFramer()
    assert framer.feed(length.to_bytes(2, "big")) == []
    assert framer.buffered == 2


@pytest.mark.parametrize("pptp_type", [0, 2, 3, 0x0100, 0xFFFF])
def test_pptp_message_type_refused_after_four_bytes(pptp_type: int) -> None:
    framer = ControlStreamFramer()
    prefix = header(16, 5, pptp_type=pptp_type)
    assert framer.feed(prefix[:3]) == []
    refuse(framer, prefix[3:4], BAD_VALUE)


@classes
@pytest.mark.parametrize("magic", ["00000000", "4D3C2B1A", "1A2B3C4E", "FF2B3C4D"])
def test_bad_magic_refused_after_eight_bytes(cls: type[ControlMessage], magic: str) -> None:
    data = bytearray(SAMPLES[cls].encode())
    data[4:8] = bytes.fromhex(magic)
    framer = ControlStreamFramer()
    assert framer.feed(data[:7]) == []
    assert framer.buffered == 7
    refuse(framer, data[7:8], BAD_FORMAT)
    # the same when the 8 bytes come in one piece, and when nothing else follows
    refuse(ControlStreamFramer(), bytes(data[:8]), BAD_FORMAT)


@classes
def test_lying_length_refused_after_ten_bytes(cls: type[ControlMessage]) -> None:
    code = SAMPLES[cls].TYPE
    lies = {16, 20, 24, 156, 220, SPEC_SIZE[cls] + 1, SPEC_SIZE[cls] - 1} - {SPEC_SIZE[cls]}
    for lie in sorted(n for n in lies if 16 <= n <= 220):  # in range: only the type shows the lie
        prefix = header(lie, code)
        framer = ControlStreamFramer()
        assert framer.feed(prefix[:9]) == [], lie
        error = refuse(framer, prefix[9:10], BAD_FORMAT)
        assert error.message_type is code


@pytest.mark.parametrize("control_type", [0, 16, 0x0100, 0xFFFF])
def test_unknown_control_type_refused_after_ten_bytes(control_type: int) -> None:
    framer = ControlStreamFramer()
    prefix = header(16, control_type)
    assert framer.feed(prefix[:9]) == []
    refuse(framer, prefix[9:10], BAD_VALUE)


def test_bad_body_refused_once_complete() -> None:
    data = bytearray(SAMPLES[StartControlConnectionReply].encode())
    data[14] = 9  # undefined Result Code
    framer = ControlStreamFramer()
    assert framer.feed(data[:-1]) == []
    error = refuse(framer, data[-1:], BAD_VALUE)
    assert error.message_type is ControlMessageType.START_CONTROL_CONNECTION_REPLY


def test_nonzero_reserved_strict_and_lenient() -> None:
    data = bytearray(SAMPLES[CallClearRequest].encode())
    data[14:16] = b"\x12\x34"
    refuse(ControlStreamFramer(), bytes(data), BAD_VALUE)
    refuse(ControlStreamFramer(strict=True), bytes(data), BAD_VALUE)
    [message] = ControlStreamFramer(strict=False).feed(bytes(data))
    assert isinstance(message, CallClearRequest)
    assert message.reserved1 == 0x1234
    assert message.nonzero_reserved() == ["reserved1"]


# -- after an error ---------------------------------------------------------------------------


def bad_magic_message() -> bytes:
    data = bytearray(SAMPLES[EchoRequest].encode())
    data[4] ^= 0xFF
    return bytes(data)


def test_keeps_refusing_after_an_error() -> None:
    framer = ControlStreamFramer()
    refuse(framer, bad_magic_message(), BAD_FORMAT)
    assert framer.buffered == 0
    for data in (SAMPLES[EchoRequest].encode(), b"", b"\x00", SAMPLES[SetLinkInfo].encode() * 3):
        with pytest.raises(ControlMessageError) as info:
            framer.feed(data)
        assert info.value.error_code is BAD_FORMAT  # still the original error
        assert framer.buffered == 0


def test_messages_before_the_error_are_on_the_exception() -> None:
    first, second = SAMPLES[StartControlConnectionRequest], SAMPLES[OutgoingCallRequest]
    framer = ControlStreamFramer()
    error = refuse(framer, first.encode() + second.encode() + bad_magic_message(), BAD_FORMAT)
    assert error.messages == [first, second]


def test_only_messages_of_the_failing_feed_are_on_the_exception() -> None:
    earlier, partial = SAMPLES[EchoRequest], SAMPLES[SetLinkInfo]
    framer = ControlStreamFramer()
    assert framer.feed(earlier.encode() + partial.encode()[:5]) == [earlier]
    error = refuse(framer, partial.encode()[5:] + header(16, 0), BAD_VALUE)
    assert error.messages == [partial]


def test_error_with_no_complete_message_has_empty_messages() -> None:
    error = refuse(ControlStreamFramer(), b"\x00\x05", BAD_FORMAT)
    assert error.messages == []


def test_later_refusals_carry_no_stale_messages() -> None:
    """A later call decoded nothing: it must not hand the first call's messages out again.

    (Before commit 1ec8892 feed() re-raised the first error object, whose ``messages``
    still listed them; a caller acting on ``messages`` would have acted twice.)
    """
    message = SAMPLES[EchoRequest]
    framer = ControlStreamFramer()
    first = refuse(framer, message.encode() + bad_magic_message(), BAD_FORMAT)
    assert first.messages == [message]
    for data in (message.encode(), b""):
        with pytest.raises(ControlMessageError) as info:
            framer.feed(data)
        assert info.value.messages == []
        assert info.value.error_code is first.error_code
        assert info.value.message_type == first.message_type
    assert first.messages == [message]  # the first error is left as it was


def test_buffered_counts_only_the_incomplete_tail() -> None:
    framer = ControlStreamFramer()
    assert framer.buffered == 0
    a = SAMPLES[OutgoingCallReply].encode()
    b = SAMPLES[WanErrorNotify].encode()
    assert framer.feed(a[:31]) == []
    assert framer.buffered == 31
    assert framer.feed(a[31:] + b[:39]) == [SAMPLES[OutgoingCallReply]]
    assert framer.buffered == 39
    assert framer.feed(b[39:] + a) == [SAMPLES[WanErrorNotify], SAMPLES[OutgoingCallReply]]
    assert framer.buffered == 0
