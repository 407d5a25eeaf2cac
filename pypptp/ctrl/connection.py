"""The PPTP control connection, sans-IO, for both roles (RFC 2637 section 3).

A :class:`ControlConnection` is driven by exactly three things:

* ``receive(data, now)``: bytes that arrived on the TCP connection;
* ``handle_timer(now)``: called at (or after) ``next_deadline()``;
* API calls: ``start``, ``open_call``, ``clear_call``, ``send_echo``, ``stop``
  and ``connection_lost``.

Each of them queues bytes to send and :mod:`events <pypptp.ctrl.events>`;
``receive`` and ``handle_timer`` return both, ``drain()`` returns them after
an API call.  Time is always a parameter; nothing here touches a socket.

Roles (spec pptp-control.md section 1): the VPN server is the RFC's PAC and
the receiver of the TCP connection (``Role.SERVER``); the VPN client is the
PNS and the originator (``Role.CLIENT``).

What happens to each received message in each state is the table
``TRANSITIONS`` at the end of this module, as h11's: role -> state ->
message type -> (handler, next state).  Read it next to RFC 2637 sections
3.1.1, 3.1.2 and 3.2.4.  Handlers do the work (replies, events, calls) and
never assign the state: the dispatcher applies the entry's next state, or
the one the handler chose among the others its entry declares (for a
version we cannot speak, or a refusal).  Besides the table, only timers,
the API (``start``, ``stop``, ``connection_lost``), malformed bytes and the
anomaly bound move the state.  A peer's mistake never raises: it gets a
defined reply (a refusal carrying Not-Connected, Bad-Call-ID, No-Resource,
Do-Not-Accept...), is tolerated and reported as ``ProtocolAnomaly``, or
closes the connection (``ControlConnectionClosed``).  Tolerance is bounded:
more than :attr:`ControlConfig.max_anomalies` anomalies within
:attr:`ControlConfig.anomaly_window` stop the connection.  Misuse of the API by
our own code raises :class:`LocalProtocolError`.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable
from typing import NamedTuple

from pypptp.ctrl.callids import CallIdAllocator
from pypptp.ctrl.constants import (
    PROTOCOL_VERSION,
    BearerCapability,
    ControlMessageType,
    DisconnectResult,
    EchoResult,
    FramingCapability,
    GeneralError,
    IncomingCallResult,
    OutgoingCallResult,
    StartResult,
    StopReason,
    StopResult,
)
from pypptp.ctrl.events import (
    Call,
    CallCleared,
    CallEstablished,
    CallRefused,
    CallState,
    ControlConnectionClosed,
    ControlConnectionEstablished,
    EchoAnswered,
    Event,
    ProtocolAnomaly,
    SetLinkInfoReceived,
    StartRefused,
    WanErrorReceived,
)
from pypptp.ctrl.framer import ControlStreamFramer
from pypptp.ctrl.messages import (
    CallClearRequest,
    CallDisconnectNotify,
    ControlMessage,
    ControlMessageError,
    EchoReply,
    EchoRequest,
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

T = ControlMessageType


class Role(enum.Enum):
    SERVER = "server"  # RFC 2637 PAC; receiver of the TCP connection
    CLIENT = "client"  # RFC 2637 PNS; originator of the TCP connection


class ControlState(enum.Enum):
    """Control-connection states (RFC 2637 sections 3.1.1 and 3.1.2)."""

    IDLE = "idle"  # server: waiting for SCCRQ; client: not started
    WAIT_CTL_REPLY = "wait-ctl-reply"  # client: SCCRQ sent
    ESTABLISHED = "established"
    WAIT_STOP_REPLY = "wait-stop-reply"  # StopCCRQ sent
    CLOSED = "closed"


class LocalProtocolError(Exception):
    """Our own code used the connection wrongly (wrong role or state)."""


Tracer = Callable[[float, str, ControlMessage], None]
"""``tracer(now, "in" | "out", message)``: sees every message, for a structured trace."""


@dataclasses.dataclass(frozen=True)
class ControlConfig:
    """Everything that tunes one control connection (RFC 2637 sections 2.2, 2.8, 3.1.4)."""

    host_name: str = "local"
    vendor_string: str = "pypptp"
    firmware_revision: int = 1
    framing_capabilities: int = FramingCapability.ASYNC | FramingCapability.SYNC
    bearer_capabilities: int = BearerCapability.ANALOG | BearerCapability.DIGITAL
    maximum_channels: int = 1
    establish_timeout: float = 10.0
    """Server: seconds to wait for SCCRQ (pptpd's ``stimeout``); client: for SCCRP."""
    call_timeout: float = 10.0
    """Server: seconds an established control connection may hold no call (before its first OCRQ, or
    after its last call is cleared) before it is stopped (StopCCRQ, then closed); 0 disables.  Ours:
    pptpd lets such a connection live for as long as it answers echoes."""
    echo_interval: float = 60.0
    """Send Echo-Request after this long without a received message; 0 disables."""
    echo_timeout: float = 60.0
    """Close if the Echo-Reply has not come after this long."""
    reply_timeout: float = 60.0
    """How long to wait for StopCCRP, OCRP or CDN before closing (section 3.1.4)."""
    max_calls: int = 1
    """Calls per control connection; pptpd and Windows use one."""
    connect_speed: int | None = None
    """OCRP Connect Speed; ``None`` reports the client's Maximum BPS, as pptpd does."""
    strict_reserved: bool = False
    """Close on non-zero Reserved fields; by default they are tolerated and reported."""
    max_anomalies: int = 64
    """Protocol anomalies (:class:`~pypptp.ctrl.events.ProtocolAnomaly`) tolerated within
    :attr:`anomaly_window`; one more stops the connection (StopCCRQ when established, then closed).
    Most anomalies get no reply (an SLI for an unknown Call ID), so nothing else would ever stop a
    peer that sends nothing but them.  A sound peer makes a handful in a connection's life (a stray
    Echo-Reply, a duplicate SCCRQ, a client's SLI with its own Call ID once per call): 64 a minute is
    far above that, and caps a flood at 64 messages before we hang up.  0: no bound."""
    anomaly_window: float = 60.0
    """Seconds over which :attr:`max_anomalies` counts; the count starts again after it."""


class Closing(NamedTuple):
    """What a handler returns to close the connection: the reason reported in
    :class:`~pypptp.ctrl.events.ControlConnectionClosed`, and whose doing it was."""

    reason: str
    by_peer: bool = True


Handler = Callable[["ControlConnection", ControlMessage, float], "ControlState | Closing | None"]
"""Handles one received message; returns ``None`` for its entry's next state, or the outcome it chose
instead: a :class:`ControlState`, or :class:`Closing` (the next state is then CLOSED)."""


class Transition(NamedTuple):
    """One cell of :data:`TRANSITIONS`."""

    handler: Handler
    next_state: ControlState
    otherwise: tuple[ControlState, ...] = ()
    """The other states the handler may choose (a peer's version we cannot speak, a refusal)."""


class ControlConnection:
    """One PPTP control connection, server (PAC) or client (PNS) side."""

    def __init__(
        self,
        role: Role,
        now: float,
        *,
        config: ControlConfig | None = None,
        call_ids: CallIdAllocator | None = None,
        tracer: Tracer | None = None,
    ) -> None:
        self.role = role
        self.config = config or ControlConfig()
        self.call_ids = call_ids if call_ids is not None else CallIdAllocator()
        self.tracer = tracer
        self.state = ControlState.IDLE
        self.calls: dict[int, Call] = {}
        """Live calls by our Call ID."""
        self.peer_start: StartControlConnectionRequest | StartControlConnectionReply | None = None
        self._framer = ControlStreamFramer(strict=self.config.strict_reserved)
        self._out = bytearray()
        self._events: list[Event] = []
        self._last_received = now
        self._establish_deadline: float | None = None
        self._no_call_deadline: float | None = None
        self._stop_deadline: float | None = None
        self._echo_identifier = 0
        self._echo_sent_at: float | None = None
        self._call_serial = 0
        self._anomalies = 0
        self._anomaly_window_start = now
        if role is Role.SERVER:
            self._establish_deadline = now + self.config.establish_timeout

    # -- driving the connection -------------------------------------------------

    def receive(self, data: bytes | bytearray | memoryview, now: float) -> tuple[bytes, list[Event]]:
        """Feed bytes from TCP; return (bytes to send, events)."""
        if self.state is not ControlState.CLOSED and data:
            try:
                messages = self._framer.feed(data)
            except ControlMessageError as exc:
                for message in exc.messages:
                    self._dispatch(message, now)
                if self.state is not ControlState.CLOSED:
                    self._close(f"malformed control message: {exc}", by_peer=True)
            else:
                for message in messages:
                    self._dispatch(message, now)
        return self.drain()

    def handle_timer(self, now: float) -> tuple[bytes, list[Event]]:
        """Run every timer that is due at ``now``; return (bytes to send, events)."""
        if self.state is ControlState.CLOSED:
            return self.drain()
        idle_deadline = self._idle_deadline()
        if self._establish_deadline is not None and now >= self._establish_deadline:
            waited = "SCCRQ" if self.role is Role.SERVER else "SCCRP"
            self._close(f"no {waited} within {self.config.establish_timeout:g} s", by_peer=True)
        elif self._stop_deadline is not None and now >= self._stop_deadline:
            self._close(f"no StopCCRP within {self.config.reply_timeout:g} s", by_peer=True)
        elif self._no_call_deadline is not None and now >= self._no_call_deadline:
            self._send(StopControlConnectionRequest(reason=StopReason.NONE), now)
            self._close(f"no call within {self.config.call_timeout:g} s", by_peer=True)
        elif self._echo_sent_at is not None and now >= self._echo_sent_at + self.config.echo_timeout:
            self._close(f"no Echo-Reply within {self.config.echo_timeout:g} s", by_peer=True)
        elif any(c.deadline is not None and now >= c.deadline for c in self.calls.values()):
            self._close("a call got no reply within the time allowed (RFC 2637 section 3.2.1)", by_peer=True)
        elif idle_deadline is not None and now >= idle_deadline:
            self.send_echo(now)
        return self.drain()

    def next_deadline(self) -> float | None:
        """When ``handle_timer`` must next be called, or ``None``."""
        if self.state is ControlState.CLOSED:
            return None
        deadlines = [self._establish_deadline, self._no_call_deadline, self._stop_deadline, self._idle_deadline()]
        if self._echo_sent_at is not None:
            deadlines.append(self._echo_sent_at + self.config.echo_timeout)
        deadlines.extend(c.deadline for c in self.calls.values())
        present = [d for d in deadlines if d is not None]
        return min(present) if present else None

    def connection_lost(self, now: float, reason: str = "TCP connection closed") -> list[Event]:
        """The transport went away: clear every call and finish."""
        if self.state is not ControlState.CLOSED:
            self._close(reason, by_peer=True)
        return self.drain()[1]

    def drain(self) -> tuple[bytes, list[Event]]:
        """Take the queued bytes and events."""
        data, events = bytes(self._out), self._events
        self._out.clear()
        self._events = []
        return data, events

    @property
    def closed(self) -> bool:
        return self.state is ControlState.CLOSED

    # -- local API ----------------------------------------------------------------

    def start(self, now: float) -> None:
        """Client: send SCCRQ (RFC 2637 section 3.1.1)."""
        self._require(Role.CLIENT, ControlState.IDLE, "start")
        cfg = self.config
        self._send(
            StartControlConnectionRequest(
                framing_capabilities=cfg.framing_capabilities,
                bearer_capabilities=cfg.bearer_capabilities,
                maximum_channels=0,  # a PNS SHOULD send 0 (section 2.1)
                firmware_revision=cfg.firmware_revision,
                host_name=cfg.host_name,
                vendor_string=cfg.vendor_string,
            ),
            now,
        )
        self.state = ControlState.WAIT_CTL_REPLY
        self._establish_deadline = now + cfg.establish_timeout

    def open_call(
        self,
        now: float,
        *,
        window: int = 64,
        minimum_bps: int = 300,
        maximum_bps: int = 100_000_000,
        phone_number: str = "",
    ) -> Call:
        """Client: send OCRQ for a new call (RFC 2637 sections 2.7, 3.2.4.2)."""
        self._require(Role.CLIENT, ControlState.ESTABLISHED, "open_call")
        call_id = self.call_ids.allocate()
        if call_id is None:
            raise LocalProtocolError("out of Call IDs")
        self._call_serial = (self._call_serial + 1) & 0xFFFF
        call = Call(call_id, None, self._call_serial, CallState.WAIT_REPLY, deadline=now + self.config.reply_timeout)
        self.calls[call_id] = call
        self._send(
            OutgoingCallRequest(
                call_id=call_id,
                call_serial_number=call.serial_number,
                minimum_bps=minimum_bps,
                maximum_bps=maximum_bps,
                packet_recv_window_size=window,
                phone_number_length=len(phone_number),
                phone_number=phone_number,
            ),
            now,
        )
        return call

    def clear_call(self, call_id: int, now: float, result: DisconnectResult = DisconnectResult.ADMIN_SHUTDOWN) -> None:
        """End one of our calls: the client sends CCRQ, the server sends CDN (section 3.2.4)."""
        call = self.calls.get(call_id)
        if call is None or self.state is not ControlState.ESTABLISHED:
            raise LocalProtocolError(f"no live call {call_id} on an established connection")
        if self.role is Role.CLIENT:
            if call.state is CallState.WAIT_DISCONNECT:
                return
            self._send(CallClearRequest(call_id=call.call_id), now)
            call.state = CallState.WAIT_DISCONNECT
            call.deadline = now + self.config.reply_timeout
        else:
            self._send(CallDisconnectNotify(call_id=call.call_id, result_code=result), now)
            self._release(call, result, by_peer=False, reason="cleared locally", now=now)

    def send_echo(self, now: float) -> int:
        """Send an Echo-Request (section 2.5); returns its identifier."""
        if self.state is not ControlState.ESTABLISHED:
            raise LocalProtocolError(f"cannot send Echo-Request in state {self.state.value}")
        self._echo_identifier = (self._echo_identifier + 1) & 0xFFFFFFFF
        self._echo_sent_at = now
        self._send(EchoRequest(identifier=self._echo_identifier), now)
        return self._echo_identifier

    def stop(self, now: float, reason: StopReason = StopReason.NONE) -> None:
        """Tear the connection down politely (section 3.1): the server first sends
        CDN (Admin-Shutdown) for each call, as pptpd does; then StopCCRQ."""
        if self.state in (ControlState.WAIT_STOP_REPLY, ControlState.CLOSED):
            return
        if self.state is not ControlState.ESTABLISHED:
            self._close("stopped locally before establishment", by_peer=False)
            return
        if self.role is Role.SERVER:
            for call in list(self.calls.values()):
                self.clear_call(call.call_id, now, DisconnectResult.ADMIN_SHUTDOWN)
        self._send(StopControlConnectionRequest(reason=reason), now)
        self._enter_wait_stop_reply(now)

    # -- internals -------------------------------------------------------------------

    def _require(self, role: Role, state: ControlState, what: str) -> None:
        if self.role is not role or self.state is not state:
            raise LocalProtocolError(f"{what}() needs a {role.value} in state {state.value}")

    def _send(self, message: ControlMessage, now: float) -> None:
        if self.tracer is not None:
            self.tracer(now, "out", message)
        self._out += message.encode()

    def _emit(self, event: Event) -> None:
        self._events.append(event)

    def _idle_deadline(self) -> float | None:
        if self.state is not ControlState.ESTABLISHED or self._echo_sent_at is not None:
            return None
        if self.config.echo_interval <= 0:
            return None
        return self._last_received + self.config.echo_interval

    def _dispatch(self, message: ControlMessage, now: float) -> None:
        if self.state is ControlState.CLOSED:
            return
        if self.tracer is not None:
            self.tracer(now, "in", message)
        self._last_received = now
        first = len(self._events)
        nonzero = message.nonzero_reserved()
        if nonzero:
            description = f"{message.TYPE.name}: non-zero {', '.join(nonzero)}"
            self._emit(ProtocolAnomaly(description, message, f"{message.TYPE.name}: non-zero Reserved fields"))
        table = TRANSITIONS[self.role][self.state]
        transition = table.get(message.TYPE) or table[None]
        outcome = transition.handler(self, message, now) or transition.next_state  # the handler's choice, if any
        state = ControlState.CLOSED if isinstance(outcome, Closing) else outcome
        assert state is transition.next_state or state in transition.otherwise, f"{transition} chose {state}"
        self._enter(state, outcome, now)
        anomalies = sum(isinstance(e, ProtocolAnomaly) for e in self._events[first:])
        if anomalies:
            self._count_anomalies(anomalies, now)

    def _enter(self, state: ControlState, outcome: ControlState | Closing, now: float) -> None:
        """Apply a transition of the table: the next state, with what entering it means."""
        if state is self.state:
            return
        if state is ControlState.ESTABLISHED:
            self.state = state
            self._establish_deadline = None
            self._expect_call(now)
        elif state is ControlState.WAIT_STOP_REPLY:
            self._enter_wait_stop_reply(now)
        elif state is ControlState.CLOSED:
            assert isinstance(outcome, Closing), "a transition to CLOSED needs the reason its handler returns"
            self._close(outcome.reason, by_peer=outcome.by_peer)
        else:
            self.state = state

    def _count_anomalies(self, count: int, now: float) -> None:
        """Stop the connection once more than ``max_anomalies`` came within ``anomaly_window``."""
        config = self.config
        if now - self._anomaly_window_start >= config.anomaly_window:
            self._anomaly_window_start, self._anomalies = now, 0
        self._anomalies += count
        if not config.max_anomalies or self._anomalies <= config.max_anomalies or self.closed:
            return
        if self.state is ControlState.ESTABLISHED:
            self._send(StopControlConnectionRequest(reason=StopReason.NONE), now)
        self._close(
            f"more than {config.max_anomalies} protocol anomalies within {config.anomaly_window:g} s", by_peer=True
        )

    def _close(self, reason: str, *, by_peer: bool) -> None:
        for call in list(self.calls.values()):
            self._release(call, DisconnectResult.GENERAL_ERROR, by_peer=by_peer, reason=reason, now=None)
        self.state = ControlState.CLOSED
        self._establish_deadline = self._no_call_deadline = self._stop_deadline = self._echo_sent_at = None
        self._emit(ControlConnectionClosed(reason, by_peer))

    def _release(self, call: Call, result: DisconnectResult, *, by_peer: bool, reason: str, now: float | None) -> None:
        """``now``: None when the whole connection is closing (no new call will be waited for)."""
        call.state = CallState.CLEARED
        call.deadline = None
        self.calls.pop(call.call_id, None)
        self.call_ids.release(call.call_id)
        self._emit(CallCleared(call, result, by_peer, reason))
        if not self.calls and now is not None:
            self._expect_call(now)

    def _expect_call(self, now: float) -> None:
        """Server, established, no call: the next OCRQ must come within ``call_timeout``."""
        if self.role is Role.SERVER and self.state is ControlState.ESTABLISHED and self.config.call_timeout > 0:
            self._no_call_deadline = now + self.config.call_timeout

    def _enter_wait_stop_reply(self, now: float) -> None:
        for call in list(self.calls.values()):  # StopCCRQ implicitly clears all calls (section 2.3)
            self._release(call, DisconnectResult.ADMIN_SHUTDOWN, by_peer=False, reason="StopCCRQ sent", now=None)
        self.state = ControlState.WAIT_STOP_REPLY
        self._establish_deadline = self._no_call_deadline = None
        self._echo_sent_at = None
        self._stop_deadline = now + self.config.reply_timeout

    def _find_by_peer_id(self, peer_call_id: int) -> Call | None:
        for call in self.calls.values():
            if call.peer_call_id == peer_call_id:
                return call
        return None

    # -- handlers: control connection (sections 3.1.1, 3.1.2) -------------------------

    def _on_start_request(self, message: ControlMessage, now: float) -> Closing | None:
        assert isinstance(message, StartControlConnectionRequest)
        if message.protocol_version != PROTOCOL_VERSION:
            self._send(self._start_reply(StartResult.BAD_PROTOCOL_VERSION), now)
            return Closing(f"unsupported protocol version 0x{message.protocol_version:04X}")
        self._send(self._start_reply(StartResult.SUCCESS), now)
        self.peer_start = message
        self._emit(ControlConnectionEstablished(message))
        return None

    def _on_duplicate_start(self, message: ControlMessage, now: float) -> None:
        self._send(self._start_reply(StartResult.ALREADY_EXISTS), now)
        self._emit(ProtocolAnomaly("SCCRQ on an established connection", message))

    def _start_reply(self, result: StartResult) -> StartControlConnectionReply:
        cfg = self.config
        return StartControlConnectionReply(
            result_code=result,
            framing_capabilities=cfg.framing_capabilities,
            bearer_capabilities=cfg.bearer_capabilities,
            maximum_channels=cfg.maximum_channels,
            firmware_revision=cfg.firmware_revision,
            host_name=cfg.host_name,
            vendor_string=cfg.vendor_string,
        )

    def _on_start_reply(self, message: ControlMessage, now: float) -> ControlState | Closing | None:
        assert isinstance(message, StartControlConnectionReply)
        if message.result_code is not StartResult.SUCCESS:
            self._emit(StartRefused(message.result_code, message.error_code))
            return Closing(f"SCCRP refused: {message.result_code.name}")
        if message.protocol_version != PROTOCOL_VERSION:  # section 3.1.1: "SHOULD" stop
            self._send(StopControlConnectionRequest(reason=StopReason.STOP_PROTOCOL), now)
            return ControlState.WAIT_STOP_REPLY
        self.peer_start = message
        self._emit(ControlConnectionEstablished(message))
        return None

    def _on_stop_request(self, message: ControlMessage, now: float) -> Closing:
        self._send(StopControlConnectionReply(result_code=StopResult.OK), now)
        assert isinstance(message, StopControlConnectionRequest)
        return Closing(f"peer sent StopCCRQ ({message.reason.name})")

    def _on_stop_reply(self, message: ControlMessage, now: float) -> Closing:
        return Closing("StopCCRP received", by_peer=False)

    def _on_echo_request(self, message: ControlMessage, now: float) -> None:
        assert isinstance(message, EchoRequest)
        self._send(EchoReply(identifier=message.identifier), now)

    def _on_echo_reply(self, message: ControlMessage, now: float) -> None:
        assert isinstance(message, EchoReply)
        if self._echo_sent_at is None or message.identifier != self._echo_identifier:
            self._emit(ProtocolAnomaly("Echo-Reply that answers no outstanding Echo-Request", message))
            return
        self._emit(EchoAnswered(message.identifier, now - self._echo_sent_at))
        self._echo_sent_at = None

    def _refuse_not_connected(self, message: ControlMessage, now: float) -> None:
        """A request before SCCRQ/SCCRP completed: its reply, with Error Not-Connected."""
        reply: ControlMessage
        nc = GeneralError.NOT_CONNECTED
        if isinstance(message, OutgoingCallRequest):
            reply = OutgoingCallReply(
                call_id=0, peer_call_id=message.call_id, result_code=OutgoingCallResult.GENERAL_ERROR, error_code=nc
            )
        elif isinstance(message, EchoRequest):
            reply = EchoReply(identifier=message.identifier, result_code=EchoResult.GENERAL_ERROR, error_code=nc)
        else:
            assert isinstance(message, CallClearRequest)
            reply = CallDisconnectNotify(call_id=0, result_code=DisconnectResult.GENERAL_ERROR, error_code=nc)
        self._send(reply, now)
        self._emit(ProtocolAnomaly(f"{message.TYPE.name} before the control connection was established", message))

    def _close_unexpected(self, message: ControlMessage, now: float) -> Closing:
        return Closing(f"{message.TYPE.name} in state {self.state.value}")

    def _stop_on_violation(self, message: ControlMessage, now: float) -> None:
        """A message this role never receives: the peer is broken; stop (section 3.1.4)."""
        self._emit(ProtocolAnomaly(f"{message.TYPE.name} is never sent to a {self.role.value}", message))
        self._send(StopControlConnectionRequest(reason=StopReason.NONE), now)

    def _ignore_stale(self, message: ControlMessage, now: float) -> None:
        self._emit(ProtocolAnomaly(f"unsolicited {message.TYPE.name} ignored", message))

    def _ignore_while_stopping(self, message: ControlMessage, now: float) -> None:
        self._emit(ProtocolAnomaly(f"{message.TYPE.name} ignored while stopping", message))

    # -- handlers: calls (section 3.2) ------------------------------------------------

    def _on_outgoing_call_request(self, message: ControlMessage, now: float) -> None:
        """Server: OCRQ -> OCRP.  Nothing to dial, so the call is up at once (section 3.2.4.1)."""
        assert isinstance(message, OutgoingCallRequest)
        peer_id = message.call_id  # any value, 0 included: Windows NT uses 0

        def refuse(result: OutgoingCallResult, error: GeneralError, why: str) -> None:
            self._send(OutgoingCallReply(call_id=0, peer_call_id=peer_id, result_code=result, error_code=error), now)
            self._emit(CallRefused(peer_id, result, error, by_peer=False))
            self._emit(
                ProtocolAnomaly(f"OCRQ for peer Call ID {peer_id} refused: {why}", message, f"OCRQ refused: {why}")
            )

        if self._find_by_peer_id(peer_id) is not None:
            refuse(OutgoingCallResult.GENERAL_ERROR, GeneralError.BAD_CALL_ID, "peer Call ID already in use")
            return
        if len(self.calls) >= self.config.max_calls:
            refuse(OutgoingCallResult.GENERAL_ERROR, GeneralError.NO_RESOURCE, "call limit of this connection")
            return
        call_id = self.call_ids.allocate()
        if call_id is None:
            refuse(OutgoingCallResult.GENERAL_ERROR, GeneralError.NO_RESOURCE, "out of Call IDs")
            return
        speed = self.config.connect_speed if self.config.connect_speed is not None else message.maximum_bps
        call = Call(
            call_id,
            peer_id,
            message.call_serial_number,
            CallState.ESTABLISHED,
            peer_window=message.packet_recv_window_size,
            peer_processing_delay=message.packet_processing_delay,
            connect_speed=speed,
        )
        self.calls[call_id] = call
        self._no_call_deadline = None
        self._send(
            OutgoingCallReply(
                call_id=call_id,
                peer_call_id=peer_id,
                result_code=OutgoingCallResult.CONNECTED,
                connect_speed=speed,
                packet_recv_window_size=message.packet_recv_window_size,  # echoed, as pptpd does
            ),
            now,
        )
        self._emit(CallEstablished(call))

    def _refuse_outgoing_call(self, message: ControlMessage, now: float) -> None:
        """Client: a PNS does not take outgoing calls (pptp-linux answers result 7 too)."""
        assert isinstance(message, OutgoingCallRequest)
        self._send(
            OutgoingCallReply(call_id=0, peer_call_id=message.call_id, result_code=OutgoingCallResult.DO_NOT_ACCEPT),
            now,
        )
        self._emit(ProtocolAnomaly("OCRQ sent to a client", message))

    def _on_incoming_call_request(self, message: ControlMessage, now: float) -> None:
        """Incoming calls are a dial-up feature no VPN uses: refuse (section 2.10)."""
        assert isinstance(message, IncomingCallRequest)
        self._send(
            IncomingCallReply(call_id=0, peer_call_id=message.call_id, result_code=IncomingCallResult.DO_NOT_ACCEPT),
            now,
        )
        self._emit(ProtocolAnomaly("incoming calls are not supported", message))

    def _on_call_clear_request(self, message: ControlMessage, now: float) -> None:
        """Server: CCRQ (client's Call ID) -> CDN with our Call ID, Result Request (section 2.13)."""
        assert isinstance(message, CallClearRequest)
        call = self._find_by_peer_id(message.call_id)
        if call is None:
            self._send(
                CallDisconnectNotify(
                    call_id=0, result_code=DisconnectResult.GENERAL_ERROR, error_code=GeneralError.BAD_CALL_ID
                ),
                now,
            )
            description = f"CCRQ for unknown peer Call ID {message.call_id}"
            self._emit(ProtocolAnomaly(description, message, "CCRQ for an unknown peer Call ID"))
            return
        self._send(CallDisconnectNotify(call_id=call.call_id, result_code=DisconnectResult.REQUEST), now)
        self._release(call, DisconnectResult.REQUEST, by_peer=True, reason="CCRQ received", now=now)

    def _on_set_link_info(self, message: ControlMessage, now: float) -> None:
        """Server: SLI names our Call ID; accepted, no reply defined (section 2.15)."""
        assert isinstance(message, SetLinkInfo)
        call = self.calls.get(message.peer_call_id)
        if call is None:
            description = f"SLI for unknown Call ID {message.peer_call_id}"
            self._emit(ProtocolAnomaly(description, message, "SLI for an unknown Call ID"))
            return
        call.send_accm, call.receive_accm = message.send_accm, message.receive_accm
        self._emit(SetLinkInfoReceived(call, message))

    def _on_outgoing_call_reply(self, message: ControlMessage, now: float) -> None:
        """Client: OCRP names our Call ID as its Peer's Call ID (section 2.8)."""
        assert isinstance(message, OutgoingCallReply)
        call = self.calls.get(message.peer_call_id)
        if call is None or call.state is not CallState.WAIT_REPLY:
            description = f"OCRP for Call ID {message.peer_call_id} we are not placing"
            self._emit(ProtocolAnomaly(description, message, "OCRP for a call we are not placing"))
            return
        if message.result_code is not OutgoingCallResult.CONNECTED:
            self.calls.pop(call.call_id)
            self.call_ids.release(call.call_id)
            self._emit(CallRefused(call.call_id, message.result_code, message.error_code, by_peer=True))
            return
        call.peer_call_id = message.call_id
        call.state = CallState.ESTABLISHED
        call.deadline = None
        call.peer_window = message.packet_recv_window_size
        call.peer_processing_delay = message.packet_processing_delay
        call.connect_speed = message.connect_speed
        self._emit(CallEstablished(call))

    def _on_call_disconnect_notify(self, message: ControlMessage, now: float) -> None:
        """Client: CDN carries the server's Call ID (section 2.13); accel-ppp sends ours instead."""
        assert isinstance(message, CallDisconnectNotify)
        call = self._find_by_peer_id(message.call_id)
        if call is None and message.call_id in self.calls:
            call = self.calls[message.call_id]
            self._emit(ProtocolAnomaly("CDN carries our Call ID, not the server's (accel-ppp does this)", message))
        if call is None:
            self._emit(
                ProtocolAnomaly(f"CDN for unknown Call ID {message.call_id}", message, "CDN for an unknown Call ID")
            )
            return
        self._release(call, message.result_code, by_peer=True, reason=f"CDN {message.result_code.name}", now=now)

    def _on_wan_error_notify(self, message: ControlMessage, now: float) -> None:
        """Client: WEN names our Call ID (section 2.14); reported, nothing else."""
        assert isinstance(message, WanErrorNotify)
        call = self.calls.get(message.peer_call_id)
        if call is None:
            description = f"WEN for unknown Call ID {message.peer_call_id}"
            self._emit(ProtocolAnomaly(description, message, "WEN for an unknown Call ID"))
            return
        self._emit(WanErrorReceived(call, message))


C = ControlConnection
S = ControlState
_EITHER_ESTABLISHED: dict[ControlMessageType | None, Transition] = {
    T.START_CONTROL_CONNECTION_REQUEST: Transition(C._on_duplicate_start, S.ESTABLISHED),
    T.STOP_CONTROL_CONNECTION_REQUEST: Transition(C._on_stop_request, S.CLOSED),  # sections 3.1.1, 3.1.2
    T.STOP_CONTROL_CONNECTION_REPLY: Transition(C._ignore_stale, S.ESTABLISHED),
    T.ECHO_REQUEST: Transition(C._on_echo_request, S.ESTABLISHED),
    T.ECHO_REPLY: Transition(C._on_echo_reply, S.ESTABLISHED),
    T.INCOMING_CALL_REQUEST: Transition(C._on_incoming_call_request, S.ESTABLISHED),
    None: Transition(C._stop_on_violation, S.WAIT_STOP_REPLY),
}
_WAIT_STOP_REPLY: dict[ControlMessageType | None, Transition] = {
    T.STOP_CONTROL_CONNECTION_REPLY: Transition(C._on_stop_reply, S.CLOSED),  # sections 3.1.1, 3.1.2
    T.STOP_CONTROL_CONNECTION_REQUEST: Transition(C._on_stop_request, S.CLOSED),
    T.ECHO_REQUEST: Transition(C._on_echo_request, S.WAIT_STOP_REPLY),
    None: Transition(C._ignore_while_stopping, S.WAIT_STOP_REPLY),
}

TRANSITIONS: dict[Role, dict[ControlState, dict[ControlMessageType | None, Transition]]] = {
    # role -> state -> received message type -> (handler, next state[, the other states it may choose]);
    # ``None`` is the state's default.  RFC 2637's idle after "Close TCP" is CLOSED: a connection object
    # serves one TCP connection.
    Role.SERVER: {  # the PAC, receiver of the TCP connection: section 3.1.2
        S.IDLE: {
            # version OK: SCCRP, established; version not OK: SCCRP with an error, closed
            T.START_CONTROL_CONNECTION_REQUEST: Transition(C._on_start_request, S.ESTABLISHED, (S.CLOSED,)),
            T.OUTGOING_CALL_REQUEST: Transition(C._refuse_not_connected, S.IDLE),
            T.ECHO_REQUEST: Transition(C._refuse_not_connected, S.IDLE),
            T.CALL_CLEAR_REQUEST: Transition(C._refuse_not_connected, S.IDLE),
            T.STOP_CONTROL_CONNECTION_REQUEST: Transition(C._on_stop_request, S.CLOSED),
            None: Transition(C._close_unexpected, S.CLOSED),
        },
        S.ESTABLISHED: {
            **_EITHER_ESTABLISHED,
            T.OUTGOING_CALL_REQUEST: Transition(C._on_outgoing_call_request, S.ESTABLISHED),
            T.CALL_CLEAR_REQUEST: Transition(C._on_call_clear_request, S.ESTABLISHED),
            T.SET_LINK_INFO: Transition(C._on_set_link_info, S.ESTABLISHED),
        },
        S.WAIT_STOP_REPLY: _WAIT_STOP_REPLY,
    },
    Role.CLIENT: {  # the PNS, originator of the TCP connection: section 3.1.1
        S.IDLE: {None: Transition(C._close_unexpected, S.CLOSED)},  # nothing is expected before start()
        S.WAIT_CTL_REPLY: {
            # version OK: established; version not OK: StopCCRQ, wait-stop-reply; refused: closed
            T.START_CONTROL_CONNECTION_REPLY: Transition(
                C._on_start_reply, S.ESTABLISHED, (S.WAIT_STOP_REPLY, S.CLOSED)
            ),
            T.OUTGOING_CALL_REQUEST: Transition(C._refuse_not_connected, S.WAIT_CTL_REPLY),
            T.ECHO_REQUEST: Transition(C._refuse_not_connected, S.WAIT_CTL_REPLY),
            T.STOP_CONTROL_CONNECTION_REQUEST: Transition(C._on_stop_request, S.CLOSED),
            None: Transition(C._close_unexpected, S.CLOSED),
        },
        S.ESTABLISHED: {
            **_EITHER_ESTABLISHED,
            T.START_CONTROL_CONNECTION_REPLY: Transition(C._ignore_stale, S.ESTABLISHED),
            T.OUTGOING_CALL_REQUEST: Transition(C._refuse_outgoing_call, S.ESTABLISHED),
            T.OUTGOING_CALL_REPLY: Transition(C._on_outgoing_call_reply, S.ESTABLISHED),
            T.CALL_DISCONNECT_NOTIFY: Transition(C._on_call_disconnect_notify, S.ESTABLISHED),
            T.WAN_ERROR_NOTIFY: Transition(C._on_wan_error_notify, S.ESTABLISHED),
        },
        S.WAIT_STOP_REPLY: _WAIT_STOP_REPLY,
    },
}
del C, S
