"""Property tests: hostile bytes never get past the control codec, framer or connection.

The decoder and the framer may raise :class:`ControlMessageError` and nothing
else; :class:`ControlConnection` never raises at all on anything a peer sends,
and keeps its invariants (valid output, a timer while alive, only live calls,
silence after it closed).
"""

from __future__ import annotations

import dataclasses
import itertools
import random
from collections.abc import Iterator
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pypptp.ctrl.callids import CallIdAllocator
from pypptp.ctrl.connection import ControlConfig, ControlConnection, ControlState, Role
from pypptp.ctrl.constants import DisconnectResult, GeneralError, StartResult, StopReason
from pypptp.ctrl.events import (
    CallCleared,
    CallEstablished,
    CallState,
    ControlConnectionClosed,
    Event,
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
    OutgoingCallReply,
    OutgoingCallRequest,
    SetLinkInfo,
    StartControlConnectionReply,
    StartControlConnectionRequest,
    WanErrorNotify,
    decode_message,
)

# Sized so that the whole file runs in well under 20 s.
MANY = settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FEW = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DEEP = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

CLASSES = [MESSAGE_CLASSES[t] for t in sorted(MESSAGE_CLASSES)]
MAGIC = bytes.fromhex("1A2B3C4D")
BITS = {"B": 8, "H": 16, "I": 32}
ID_FIELDS = ("call_id", "peer_call_id", "identifier")
PEER_ERRORS = (GeneralError.BAD_FORMAT, GeneralError.BAD_VALUE)


# -- strategies -----------------------------------------------------------------------------


def field_strategy(field: dataclasses.Field[Any], *, reserved: bool) -> st.SearchStrategy[Any]:
    meta = field.metadata
    width = meta.get("width", 0)
    if width:
        return st.text(st.characters(min_codepoint=1, max_codepoint=255), max_size=width)
    enum_type = meta.get("enum")
    if enum_type is not None:
        # favour the "all is well" value (Error None; Result Success / OK / Connected) to get past handshakes
        favoured = enum_type(0) if enum_type is GeneralError else enum_type(1)
        return st.one_of(st.just(favoured), st.sampled_from(list(enum_type)))
    anything = st.integers(0, (1 << BITS[meta["fmt"]]) - 1)
    if meta.get("reserved"):
        return st.one_of(st.just(0), anything) if reserved else st.just(0)
    if field.name == "protocol_version":
        return st.one_of(st.just(0x0100), anything)
    return anything


def message_of(cls: type[ControlMessage], *, reserved: bool = False, **fixed: Any) -> st.SearchStrategy[ControlMessage]:
    """Valid messages of ``cls``, with non-zero Reserved fields if ``reserved`` (strategies are built once)."""
    key = (cls, reserved, tuple(sorted(fixed.items())))
    if key not in _MESSAGE_STRATEGIES:
        kwargs = {f.name: field_strategy(f, reserved=reserved) for f in dataclasses.fields(cls)}
        kwargs.update({name: st.just(value) for name, value in fixed.items()})
        _MESSAGE_STRATEGIES[key] = st.builds(cls, **kwargs)
    return _MESSAGE_STRATEGIES[key]


_MESSAGE_STRATEGIES: dict[tuple[Any, ...], st.SearchStrategy[ControlMessage]] = {}
ANY_MESSAGE = {
    reserved: st.one_of([message_of(cls, reserved=reserved) for cls in CLASSES]) for reserved in (False, True)
}


def draw_message(data: st.DataObject, cls: type[ControlMessage], reserved: bool, ids: list[int]) -> ControlMessage:
    """A message of ``cls`` whose Call ID / identifier fields often name one of ``ids`` (the IDs in play)."""
    message = data.draw(message_of(cls, reserved=reserved))
    changes: dict[str, int] = {}
    for field in dataclasses.fields(cls):
        if field.name not in ID_FIELDS:
            continue
        fitting = [i for i in ids if i < 1 << BITS[field.metadata["fmt"]]]
        if not fitting:
            continue
        if data.draw(st.booleans()):
            changes[field.name] = data.draw(st.sampled_from(fitting))
    return dataclasses.replace(message, **changes)


def handshake(role: Role) -> st.SearchStrategy[ControlMessage]:
    """What the peer of ``role`` sends first and that establishes the connection: SCCRQ or a successful SCCRP."""
    if role is Role.SERVER:
        return message_of(StartControlConnectionRequest, protocol_version=0x0100)
    return message_of(StartControlConnectionReply, protocol_version=0x0100, result_code=StartResult.SUCCESS)


def _maybe_handshake(role: Role) -> st.SearchStrategy[bytes]:
    good = handshake(role).map(lambda m: m.encode())
    return st.one_of(good, good, good, st.just(b""))


MAYBE_HANDSHAKE = {role: _maybe_handshake(role) for role in Role}
"""Usually the handshake, so that the rest of the input reaches the established state."""


# The messages each role's peer sends on an established connection (spec pptp-control.md section 1).
PEER_MESSAGES: dict[Role, list[type[ControlMessage]]] = {
    Role.SERVER: [OutgoingCallRequest, OutgoingCallRequest, CallClearRequest, SetLinkInfo, EchoRequest, EchoReply],
    Role.CLIENT: [OutgoingCallReply, CallDisconnectNotify, WanErrorNotify, EchoRequest, EchoReply],
}
PEER_STREAM = {
    role: st.lists(st.one_of(*(message_of(cls, reserved=True) for cls in classes), ANY_MESSAGE[True]), max_size=10)
    for role, classes in PEER_MESSAGES.items()
}
"""Lists of messages, mostly of the kinds the peer sends on an established connection."""


chunk_sizes = st.lists(st.integers(1, 80), max_size=30)


def chunked(data: bytes, sizes: list[int]) -> Iterator[bytes]:
    """``data`` cut into pieces of the given sizes, repeated cyclically (one piece if none)."""
    if not sizes:
        yield data
        return
    position = 0
    for size in itertools.cycle(sizes):
        if position >= len(data):
            return
        yield data[position : position + size]
        position += size


@st.composite
def hostile_stream(draw: st.DrawFn) -> bytes:
    """Valid messages, damaged messages and plain garbage, back to back."""
    pieces = draw(
        st.lists(
            st.one_of(
                ANY_MESSAGE[True].map(lambda m: m.encode()),
                mutated_message(),
                st.binary(max_size=40),
            ),
            max_size=8,
        )
    )
    return b"".join(pieces)


@st.composite
def mutated_message(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(ANY_MESSAGE[True]).encode())
    for _ in range(draw(st.integers(1, 4))):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    return bytes(data)


@st.composite
def valid_header_message(draw: st.DrawFn) -> tuple[type[ControlMessage], bytes]:
    """A correct 10-byte header for a random type, then a random or damaged body, sometimes cut or padded."""
    cls = draw(st.sampled_from(CLASSES))
    size = cls.SIZE
    head = size.to_bytes(2, "big") + b"\x00\x01" + MAGIC + int(cls.TYPE).to_bytes(2, "big")
    random_body = st.binary(min_size=size - 10, max_size=size - 10)
    damaged_body = message_of(cls, reserved=True).flatmap(
        lambda m: st.lists(st.tuples(st.integers(10, size - 1), st.integers(0, 255)), max_size=4).map(
            lambda edits: _apply(m.encode(), edits)[10:]
        )
    )
    body = draw(st.one_of(random_body, damaged_body))
    data = head + body
    cut = draw(st.one_of(st.just(0), st.integers(-size, 4)))
    if cut < 0:
        data = data[:cut]
    elif cut > 0:
        data += bytes(cut)
    return cls, data


def _apply(data: bytes, edits: list[tuple[int, int]]) -> bytes:
    out = bytearray(data)
    for position, value in edits:
        out[position] = value
    return bytes(out)


# -- the decoder ---------------------------------------------------------------------------


def decode_or_error(data: bytes, strict: bool) -> ControlMessage | ControlMessageError:
    try:
        return decode_message(data, strict=strict)
    except ControlMessageError as exc:
        assert exc.error_code in PEER_ERRORS
        assert exc.message_type is None or exc.message_type in MESSAGE_CLASSES
        return exc


@MANY
@given(st.binary(max_size=300), st.booleans())
def test_decode_random_bytes(data: bytes, strict: bool) -> None:
    result = decode_or_error(data, strict)
    if isinstance(result, ControlMessage):
        assert len(data) == result.SIZE
        assert decode_message(result.encode(), strict=strict) == result


@MANY
@given(valid_header_message())
def test_decode_behind_a_valid_header(case: tuple[type[ControlMessage], bytes]) -> None:
    cls, data = case
    strict = decode_or_error(data, True)
    lenient = decode_or_error(data, False)
    if isinstance(strict, ControlMessage):
        assert type(strict) is cls
        assert lenient == strict
        assert strict.nonzero_reserved() == []
        assert cls.decode(strict.encode()) == strict
    if isinstance(lenient, ControlMessage):
        assert type(lenient) is cls
        assert len(data) == cls.SIZE
        assert decode_message(lenient.encode(), strict=False) == lenient
        if isinstance(strict, ControlMessageError):
            # only the Reserved check separates the two modes
            assert strict.error_code is GeneralError.BAD_VALUE
            assert strict.message_type is cls.TYPE
            assert lenient.nonzero_reserved() != []
    if len(data) != cls.SIZE:
        assert isinstance(lenient, ControlMessageError)
        assert lenient.error_code is GeneralError.BAD_FORMAT


@MANY
@given(st.data())
def test_valid_messages_round_trip(data: st.DataObject) -> None:
    cls = data.draw(st.sampled_from(CLASSES))
    message = data.draw(message_of(cls, reserved=True))
    wire = message.encode()
    assert len(wire) == cls.SIZE
    assert decode_message(wire, strict=False) == message
    if not message.nonzero_reserved():
        assert cls.decode(wire) == message


# -- the framer -----------------------------------------------------------------------------


@FEW
@given(st.one_of(st.binary(max_size=400), hostile_stream()), chunk_sizes, st.booleans())
def test_framer_random_bytes(stream: bytes, sizes: list[int], strict: bool) -> None:
    framer = ControlStreamFramer(strict=strict)
    fed = decoded = 0
    failed = False
    for chunk in chunked(stream, sizes):
        try:
            messages = framer.feed(chunk)
        except ControlMessageError as exc:
            assert exc.error_code in PEER_ERRORS
            assert all(isinstance(m, ControlMessage) for m in exc.messages)
            assert not (failed and exc.messages), "a refusal after the first error handed out messages"
            assert framer.buffered == 0
            failed = True
            continue
        assert not failed, "the framer accepted input after an error"
        fed += len(chunk)
        decoded += sum(m.SIZE for m in messages)
        assert fed == decoded + framer.buffered
        assert 0 <= framer.buffered < 220


@FEW
@given(st.lists(ANY_MESSAGE[True], max_size=10), chunk_sizes)
def test_framer_valid_messages_any_chunking(messages: list[ControlMessage], sizes: list[int]) -> None:
    framer = ControlStreamFramer(strict=False)
    got: list[ControlMessage] = []
    for chunk in chunked(b"".join(m.encode() for m in messages), sizes):
        got += framer.feed(chunk)
    assert got == messages
    assert framer.buffered == 0


# -- the connection ------------------------------------------------------------------------


def seeded_call_ids(seed: int, capacity: int | None = None) -> CallIdAllocator:
    """The real allocator with a reproducible random source: hypothesis must see
    the same run each time it replays an example, or it reports a flaky strategy."""
    return CallIdAllocator(capacity=capacity, randbelow=random.Random(seed).randrange)


class Harness:
    """Drives one ControlConnection and checks its invariants after every step."""

    def __init__(
        self, role: Role, now: float, config: ControlConfig | None = None, call_ids: CallIdAllocator | None = None
    ) -> None:
        self.now = now
        self.conn = ControlConnection(role, now, config=config, call_ids=call_ids or seeded_call_ids(0))
        self.closed_seen = False
        self.after_close = 0
        """Steps run after ControlConnectionClosed (each checked to be silent)."""
        self.sent = ControlStreamFramer(strict=True)
        self.seen_ids: set[int] = set()
        if role is Role.CLIENT:
            self.conn.start(now)
            self.absorb(*self.conn.drain())
        self.check()

    @property
    def finished(self) -> bool:
        """Closed, and silence afterwards checked a few times: further steps would add nothing."""
        return self.after_close >= 3

    # every step -----------------------------------------------------------------------

    def receive(self, data: bytes) -> None:
        self.absorb(*self.conn.receive(data, self.now))

    def advance(self, dt: float) -> None:
        self.now += dt

    def timer(self) -> None:
        self.absorb(*self.conn.handle_timer(self.now))
        deadline = self.conn.next_deadline()
        assert deadline is None or deadline > self.now, "handle_timer left a deadline that is already due"

    def absorb(self, out: bytes, events: list[Event]) -> None:
        if self.closed_seen:
            self.after_close += 1
            assert out == b"", "bytes produced after ControlConnectionClosed"
            assert events == [], "events after ControlConnectionClosed"
        for message in self.sent.feed(out):  # everything we send is a well-formed message
            assert message.nonzero_reserved() == []
            for name in ID_FIELDS:
                if hasattr(message, name):
                    self.seen_ids.add(getattr(message, name))
        assert self.sent.buffered == 0, "a partial message was sent"
        closes = [i for i, e in enumerate(events) if isinstance(e, ControlConnectionClosed)]
        assert len(closes) <= 1
        if closes:
            assert closes[0] == len(events) - 1, "ControlConnectionClosed is not the last event"
            self.closed_seen = True
        for event in events:
            if isinstance(event, CallCleared):
                assert event.call.state is CallState.CLEARED
                assert self.conn.calls.get(event.call.call_id) is not event.call
            if isinstance(event, CallEstablished):
                assert event.call.peer_call_id is not None
        self.check()

    def check(self) -> None:
        conn = self.conn
        assert conn.closed == self.closed_seen
        assert conn.closed == (conn.state is ControlState.CLOSED)
        deadline = conn.next_deadline()
        assert deadline is None or isinstance(deadline, float)
        # with the default timers a live connection always has something to wait for
        assert (deadline is None) == conn.closed
        for call_id, call in conn.calls.items():
            assert call_id == call.call_id
            assert call_id != 0
            assert call.state is not CallState.CLEARED
            assert call_id in conn.call_ids
        assert len(conn.call_ids) == len(conn.calls)
        if conn.calls:
            assert conn.state is ControlState.ESTABLISHED
        if conn.role is Role.SERVER:
            assert len(conn.calls) <= conn.config.max_calls
            peers = [c.peer_call_id for c in conn.calls.values()]
            assert len(peers) == len(set(peers))
        if conn.closed:
            assert not conn.calls

    def interesting_ids(self) -> list[int]:
        ids = set(self.seen_ids)
        for call in self.conn.calls.values():
            ids.add(call.call_id)
            if call.peer_call_id is not None:
                ids.add(call.peer_call_id)
        return sorted(ids)


roles = st.sampled_from([Role.SERVER, Role.CLIENT])
time_steps = st.one_of(
    st.sampled_from([0.0, 0.001, 5.0, 9.999, 10.0, 30.0, 59.999, 60.0, 61.0, 120.0]),
    st.floats(0, 150, allow_nan=False),
)
short_steps = st.one_of(st.floats(0, 3), st.floats(0, 3), st.floats(0, 3), time_steps)


@FEW
@given(
    st.data(),
    roles,
    st.one_of(st.binary(max_size=400), hostile_stream()),
    chunk_sizes,
    st.lists(time_steps, max_size=30),
)
def test_connection_random_bytes(
    data: st.DataObject, role: Role, garbage: bytes, sizes: list[int], steps: list[float]
) -> None:
    h = Harness(role, 1000.0)
    times = iter(steps)
    for chunk in chunked(data.draw(MAYBE_HANDSHAKE[role]) + garbage, sizes):
        h.receive(chunk)
        dt = next(times, 0.0)
        h.advance(dt)
        if dt:
            h.timer()
        if h.finished:
            return
    for dt in times:
        h.advance(dt)
        h.timer()
        if h.finished:
            return


@FEW
@given(st.data(), roles, chunk_sizes, st.lists(time_steps, max_size=30))
def test_connection_valid_messages(data: st.DataObject, role: Role, sizes: list[int], steps: list[float]) -> None:
    first = data.draw(MAYBE_HANDSHAKE[role])
    stream = first + b"".join(m.encode() for m in data.draw(PEER_STREAM[role]))
    h = Harness(role, 0.0)
    times = iter(steps)
    for chunk in chunked(stream, sizes):
        h.receive(chunk)
        h.advance(next(times, 0.0))
        h.timer()
        if h.finished:
            return
    for dt in times:
        h.advance(dt)
        h.timer()
        if h.finished:
            return


# weights: most steps are messages; garbage and "stop"/"lost" end the connection, so they are rarer
ACTIONS = ["message"] * 6 + ["timer"] * 2 + ["api"] * 2 + ["deadline", "bytes"]


@DEEP
@given(roles, st.booleans(), st.data())
def test_connection_interleaved(role: Role, strict_reserved: bool, data: st.DataObject) -> None:
    """Messages built around the Call IDs and echo identifiers in play, API calls and timers, interleaved."""
    config = ControlConfig(max_calls=data.draw(st.integers(1, 2)), strict_reserved=strict_reserved)
    call_ids = seeded_call_ids(
        data.draw(st.integers(0, 1 << 32)), capacity=data.draw(st.sampled_from([None, None, 1, 2]))
    )
    h = Harness(role, 0.0, config, call_ids)
    conn = h.conn
    h.receive(data.draw(MAYBE_HANDSHAKE[role]))
    for _ in range(data.draw(st.integers(5, 40))):
        action = data.draw(st.sampled_from(ACTIONS))
        if action == "message":
            cls = data.draw(st.sampled_from(PEER_MESSAGES[role] * 6 + CLASSES))
            reserved = data.draw(st.sampled_from([False, False, False, True]))  # strict_reserved closes on them
            message = draw_message(data, cls, reserved, h.interesting_ids())
            for chunk in chunked(message.encode(), data.draw(chunk_sizes)):
                h.receive(chunk)
        elif action == "bytes":
            h.receive(data.draw(st.one_of(mutated_message(), st.binary(min_size=1, max_size=40))))
        elif action == "timer":
            h.advance(data.draw(short_steps))
            h.timer()
        elif action == "deadline":
            deadline = conn.next_deadline()
            if deadline is not None:
                h.now = max(h.now, deadline)
            h.timer()
        else:
            api_call(h, data)
        if h.finished:
            break


def api_call(h: Harness, data: st.DataObject) -> None:
    """One local API call whose preconditions hold; it must not raise either."""
    conn = h.conn
    established = conn.state is ControlState.ESTABLISHED
    choices = ["stop", "lost"]
    if established:
        choices += ["echo"] * 2
        if conn.calls:
            choices += ["clear"] * 2
        if conn.role is Role.CLIENT and len(conn.call_ids) < conn.call_ids.capacity:
            choices += ["open"] * 3
    choice = data.draw(st.sampled_from(choices))
    if choice == "open":
        call = conn.open_call(
            h.now,
            window=data.draw(st.integers(0, 0xFFFF)),
            phone_number=data.draw(st.text(st.characters(min_codepoint=0x30, max_codepoint=0x39), max_size=64)),
        )
        assert conn.calls[call.call_id] is call
        assert call.state is CallState.WAIT_REPLY
    elif choice == "clear":
        call_id = data.draw(st.sampled_from(sorted(conn.calls)))
        conn.clear_call(call_id, h.now, data.draw(st.sampled_from(list(DisconnectResult))))
    elif choice == "echo":
        conn.send_echo(h.now)
    elif choice == "stop":
        conn.stop(h.now, data.draw(st.sampled_from(list(StopReason))))
        assert conn.state in (ControlState.WAIT_STOP_REPLY, ControlState.CLOSED)
    else:
        events = conn.connection_lost(h.now)
        h.absorb(b"", events)
        assert conn.closed
        return
    h.absorb(*conn.drain())
