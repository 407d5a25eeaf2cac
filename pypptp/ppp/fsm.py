"""The RFC 1661 option-negotiation automaton, sans-IO: one engine for LCP, IPCP, IPV6CP and CCP.

The engine turns what happens (``up``, ``down``, ``open``, ``close``, a
received control packet, ``handle_timer``) into an RFC 1661 event, looks the
event up in :data:`pypptp.ppp.fsm_table.TRANSITIONS` and performs the actions
of that cell.  What is specific to a protocol lives in an
:class:`OptionHandler`: building our Configure-Request, judging the peer's,
and digesting Acks, Naks and Rejects (pppd's ``fsm_callbacks``).

Timers and counters (RFC 1661 section 4.6): the restart timer runs only in
Closing, Stopping, Req-Sent, Ack-Rcvd and Ack-Sent; ``irc`` sets the restart
counter to Max-Terminate when a Terminate-Request follows, else to
Max-Configure; after Max-Failure Configure-Naks without an Ack, Naks turn
into Rejects so that negotiation converges.  Time is always a parameter.

Every negotiation converges or ends, whatever the peer answers.  The RFC
bounds only the Naks we send: ``irc`` re-initialises the restart counter on
every Nak or Reject received, so a peer that never agrees would get a new
Configure-Request per answer for ever.  Two bounds on what we receive:

* From the Max-Failure-th Configure-Nak in a row (pppd's ``rnakloops``), a
  Nak is taken as a Configure-Reject of our options it names: we stop asking
  for them rather than follow the peer's suggestion once more.
* When our requests of one negotiation have been Nak'd or Rejected more than
  ``max_refused_requests`` times, the layer is closed (the table's Close:
  Terminate-Request) and :attr:`Automaton.failures` says why, for the layer
  above to log.  The count starts again with each negotiation (This-Layer-Up,
  or a Configure-Request sent from outside Req-Sent/Ack-Rcvd/Ack-Sent).

Work a peer can make us repeat once the layer is up is bounded too (not in
the RFC nor pppd; issue: no peer harms another):

* A peer may take an Opened layer back to negotiation (a Configure-Request,
  or a stray Ack or Nak, in Opened: RFC 1661's tld, scr...) at most
  ``max_restarts`` times within ``restart_window`` seconds; the next time the
  layer is closed instead, with a reason in :attr:`Automaton.failures`.  Each
  renegotiation brings the network down and up again around the session, so
  a loop of them would keep the daemon busy for nothing.
* Packets we answer in Opened (LCP Echo-Request, CCP Reset-Request: ``ser``)
  are answered from a bucket of ``max_replies`` refilled at ``reply_rate`` a
  second; beyond it they are dropped and counted in :attr:`Automaton.anomalies`.

Outputs are drained with :meth:`Automaton.drain`: control packets to send
and :class:`LayerEvent` values for the layer above (This-Layer-Up and
friends), plus anomalies to log.
"""

from __future__ import annotations

import collections
import dataclasses
import enum
from typing import Protocol

from pypptp.ppp.fsm_table import Action, Event, State, transition
from pypptp.ppp.packet import Code, ControlPacket, PacketError, encode_options, parse_options
from pypptp.ppp.trace import Tracer

__all__ = ["Automaton", "FsmConfig", "LayerEvent", "OptionHandler", "Verdict"]

Options = list[tuple[int, bytes]]

_TIMER_STATES = frozenset({State.CLOSING, State.STOPPING, State.REQ_SENT, State.ACK_RCVD, State.ACK_SENT})
_NEGOTIATING = frozenset({State.REQ_SENT, State.ACK_RCVD, State.ACK_SENT})
_ESSENTIAL_CODES = frozenset(range(1, 8))  # a Code-Reject of these is fatal (RXJ-)
_RENEGOTIATING = frozenset({Event.RCR_PLUS, Event.RCR_MINUS, Event.RCA, Event.RCN})  # in Opened: tld, scr...


class LayerEvent(enum.Enum):
    """What the automaton tells the layers around it (RFC 1661 section 4.4)."""

    UP = "this-layer-up"
    DOWN = "this-layer-down"
    STARTED = "this-layer-started"
    FINISHED = "this-layer-finished"


class Verdict(enum.Enum):
    ACK = Code.CONFIGURE_ACK
    NAK = Code.CONFIGURE_NAK
    REJECT = Code.CONFIGURE_REJECT


class OptionHandler(Protocol):
    """The per-protocol part of negotiation (LCP, IPCP, CCP...)."""

    def reset(self) -> None:
        """A fresh negotiation starts: rebuild our request from the configuration.
        (What the peer asked for is recorded each time its request is Acked.)"""

    def build_request(self) -> Options:
        """The options of our next Configure-Request."""

    def judge_request(self, options: Options, converge: bool) -> tuple[Verdict, Options]:
        """ACK with the options unchanged, NAK with suggested values, or REJECT with the
        unacceptable options.  ``converge`` is true after Max-Failure Naks: Reject what
        would have been Nak'd."""

    def on_ack(self, options: Options) -> None:
        """The peer acknowledged our request (already checked to be identical)."""

    def on_nak(self, options: Options) -> None:
        """Adjust our request to the peer's suggestions."""

    def on_reject(self, options: Options) -> None:
        """Stop asking for the rejected options."""

    def extra_code(self, packet: ControlPacket) -> bool:
        """Whether this protocol knows ``packet.code`` beyond codes 1-7 (LCP's Echo...)."""

    def echo_reply(self, packet: ControlPacket) -> ControlPacket | None:
        """The answer to an extra-code packet in Opened (``ser``), if it has one."""


@dataclasses.dataclass(frozen=True)
class FsmConfig:
    """RFC 1661 section 4.6 parameters (pppd's defaults)."""

    restart_timeout: float = 3.0
    max_configure: int = 10
    max_terminate: int = 2
    max_failure: int = 5
    """Naks sent without an Ack before we Reject instead; also the run of Naks received after which
    a Nak is taken as a Reject (pppd's ``maxnakloops``, both ways)."""
    max_refused_requests: int = 10
    """Configure-Naks and Configure-Rejects of our requests tolerated in one negotiation; one more and
    the layer closes.  Not in the RFC nor in pppd (whose counters, like the RFC's, restart on every
    answer): with the run-of-Naks rule above and options that are dropped when Rejected, an honest
    peer needs a handful of rounds (Windows and pptp-linux: at most two), so ten is generous, and it
    keeps a peer that never agrees to 11 Configure-Requests before our Terminate-Request."""
    max_restarts: int = 5
    """Renegotiations the peer may start from Opened within :attr:`restart_window`; one more closes the
    layer.  Real clients renegotiate rarely if ever (an LCP renegotiation after a long outage)."""
    restart_window: float = 60.0
    max_replies: int = 20
    """Echo-Requests and Reset-Requests answered in a burst (the bucket's size)..."""
    reply_rate: float = 10.0
    """...and per second after it (pppd's echo interval is seconds, a stateful MPPE receiver asks for a
    reset at most once a second)."""


class Automaton:
    """One instance of the RFC 1661 automaton for one protocol."""

    def __init__(
        self,
        name: str,
        handler: OptionHandler,
        config: FsmConfig | None = None,
        *,
        protocol: int = 0,
        keep_open_on_repeat: bool = False,
    ) -> None:
        self.name = name
        self.protocol = protocol
        self.keep_open_on_repeat = keep_open_on_repeat
        """In Opened, answer a retransmission of the Configure-Request we last Acked (same
        Identifier, same data) with a plain Configure-Ack instead of renegotiating (RFC 1661
        section 4.2's RCR in Opened: tld, scr, sca).  Windows retransmits its CCP request after
        CCP has opened; renegotiating MPPE on it, as pppd does, makes Windows drop the call with
        error 734.  A peer that really renegotiates has had a reply, so it must use a new
        Identifier (RFC 1661 section 5.1), and gets the table's treatment."""
        self._acked_request: tuple[int, bytes] | None = None  # (Identifier, data) of the request we last Acked
        """This automaton's PPP protocol number (a Protocol-Reject naming it is fatal)."""
        self.rejected_protocols: list[int] = []
        """Protocols the peer Protocol-Rejected (LCP): the layer above stops their NCPs."""
        self.handler = handler
        self.config = config or FsmConfig()
        self.state = State.INITIAL
        self.restart_count = 0
        self.deadline: float | None = None
        self._identifier = 0
        self._request_id: int | None = None  # the Identifier of our outstanding Configure-Request
        self._request: bytes = b""  # its data, to check an Ack against
        self._naks_sent = 0
        self._naks_received = 0  # Configure-Naks in a row for our requests (pppd's rnakloops)
        self._refused = 0  # Configure-Naks and -Rejects for our requests in this negotiation
        self._out: list[ControlPacket] = []
        self._events: list[LayerEvent] = []
        self.anomalies: list[str] = []
        self.failures: list[str] = []
        """Why the automaton closed its layer by itself (a peer that never agreed), to log: the layer
        above clears the list."""
        self.failure: str | None = None
        """The last of those reasons, kept until a fresh negotiation."""
        self._restarts: collections.deque[float] = collections.deque(maxlen=max(1, self.config.max_restarts + 1))
        """When the peer last took the layer out of Opened (the newest last)."""
        self._replies = float(self.config.max_replies)  # the reply bucket
        self._replies_at: float | None = None
        # context of the event being processed, used by sca/scn/sta/scj/ser
        self._received: ControlPacket | None = None
        self._reply: tuple[Verdict, Options] | None = None
        self.tracer: Tracer | None = None
        """Told of every state change (category ``fsm``: protocol, RFC 1661 event, old and new state), when
        set (:mod:`pypptp.ppp.trace`); the link sets it on its automatons."""

    # -- inputs --------------------------------------------------------------------------

    def up(self, now: float) -> None:
        self._fire(Event.UP, now)

    def down(self, now: float) -> None:
        self._fire(Event.DOWN, now)

    def open(self, now: float) -> None:
        self._fire(Event.OPEN, now)

    def close(self, now: float) -> None:
        self._fire(Event.CLOSE, now)

    def retransmit_now(self, now: float) -> None:
        """Fire the restart timer early (TO+) if our Configure-Request is still unanswered: the link
        uses it when the peer is known to have just become ready (pppd's IPCP waits for CCP, so our
        first IPCP request met a Terminate-Ack and would otherwise wait a whole restart period)."""
        if self.state in (State.REQ_SENT, State.ACK_SENT) and self.deadline is not None and self.restart_count > 0:
            self.deadline = None
            self._fire(Event.TO_PLUS, now)

    def protocol_rejected(self, now: float) -> None:
        """The peer Protocol-Rejected this protocol (RFC 1661 section 5.7): RXJ-, stop sending it."""
        self._fire(Event.RXJ_MINUS, now)

    def handle_timer(self, now: float) -> None:
        if self.deadline is None or now < self.deadline:
            return
        self.deadline = None
        self._fire(Event.TO_PLUS if self.restart_count > 0 else Event.TO_MINUS, now)

    def next_deadline(self) -> float | None:
        return self.deadline

    def receive(self, packet: ControlPacket, now: float) -> None:
        """A control packet of this protocol arrived (already decoded)."""
        self._received = packet
        try:
            event = self._classify(packet)
            if event is not None:
                self._fire(event, now)
        finally:
            self._received = None
            self._reply = None

    def drain(self) -> tuple[list[ControlPacket], list[LayerEvent]]:
        out, events = self._out, self._events
        self._out, self._events = [], []
        return out, events

    # -- classification of received packets (RFC 1661 section 4.3) ---------------------------

    def _classify(self, packet: ControlPacket) -> Event | None:
        code = packet.code
        if code == Code.CONFIGURE_REQUEST:
            repeat = (packet.identifier, packet.data) == self._acked_request
            if self.keep_open_on_repeat and self.state is State.OPENED and repeat:
                self.anomalies.append(f"{self.name}: retransmitted Configure-Request in Opened; Acked again, kept open")
                self._send(Code.CONFIGURE_ACK, packet.identifier, packet.data)
                return None
            options = self._options(packet)
            if options is None:
                return None
            converge = self._naks_sent >= self.config.max_failure
            verdict, reply = self.handler.judge_request(options, converge)
            self._reply = (verdict, reply if verdict is not Verdict.ACK else options)
            return Event.RCR_PLUS if verdict is Verdict.ACK else Event.RCR_MINUS
        if code in (Code.CONFIGURE_ACK, Code.CONFIGURE_NAK, Code.CONFIGURE_REJECT):
            if packet.identifier != self._request_id:
                self.anomalies.append(f"{self.name}: {Code(code).name} with identifier {packet.identifier} ignored")
                return None
            if code == Code.CONFIGURE_ACK:
                if packet.data != self._request:
                    self.anomalies.append(f"{self.name}: Configure-Ack does not match our request; ignored")
                    return None
                self._request_id = None
                self._naks_received = 0
                self.handler.on_ack(parse_options(packet.data))
                return Event.RCA
            options = self._options(packet)
            if options is None:
                return None
            self._request_id = None  # one answer per request
            return self._refusal(code, options)
        if code == Code.TERMINATE_REQUEST:
            return Event.RTR
        if code == Code.TERMINATE_ACK:
            return Event.RTA
        if code == Code.CODE_REJECT:
            rejected = packet.data[0] if packet.data else 0
            return Event.RXJ_MINUS if rejected in _ESSENTIAL_CODES else Event.RXJ_PLUS
        if self.handler.extra_code(packet):
            if code == Code.PROTOCOL_REJECT:  # LCP only (RFC 1661 section 5.7)
                if len(packet.data) < 2:
                    self.anomalies.append(f"{self.name}: Protocol-Reject without a protocol; discarded")
                    return None
                rejected = int.from_bytes(packet.data[:2], "big")
                self.rejected_protocols.append(rejected)
                return Event.RXJ_MINUS if rejected == self.protocol else Event.RXJ_PLUS
            return Event.RXR
        return Event.RUC

    def _refusal(self, code: int, options: Options) -> Event:
        """A valid Configure-Nak or Configure-Reject of our request: RCN, or Close past the bound."""
        if code == Code.CONFIGURE_NAK:
            self._naks_received += 1
            if self._naks_received >= self.config.max_failure:
                # pppd's treat_as_reject: drop what the peer keeps Nak'ing instead of following it
                named = {kind for kind, _ in options}
                rejected = [option for option in parse_options(self._request) if option[0] in named]
                self.anomalies.append(
                    f"{self.name}: Configure-Nak number {self._naks_received} in a row taken as a Configure-Reject"
                )
                self.handler.on_reject(rejected)
            else:
                self.handler.on_nak(options)
        else:
            self._naks_received = 0
            self.handler.on_reject(options)
        self._refused += 1
        if self._refused > self.config.max_refused_requests and self.state in _NEGOTIATING:
            self.failure = f"{self.name}: no agreement after {self._refused} Configure-Naks/Rejects of our requests"
            self.failures.append(self.failure)
            return Event.CLOSE
        return Event.RCN

    def _options(self, packet: ControlPacket) -> Options | None:
        try:
            return parse_options(packet.data)
        except PacketError as exc:  # RFC 1661 section 6: silently discard
            self.anomalies.append(f"{self.name}: {Code(packet.code).name} discarded: {exc}")
            return None

    # -- the engine -----------------------------------------------------------------------

    def _fire(self, event: Event, now: float) -> None:
        if self.state is State.OPENED and event in _RENEGOTIATING and self._too_many_restarts(now):
            event = Event.CLOSE
        cell = transition(self.state, event)
        if cell is None:
            self.anomalies.append(f"{self.name}: event {event.value} is illegal in state {self.state.name}")
            return
        if cell.note == "x":
            self.anomalies.append(f"{self.name}: crossed connection ({event.value} in {self.state.name})")
        for action in cell.actions:
            self._perform(action, cell.actions, now)
        old, self.state = self.state, cell.next_state
        if self.tracer is not None and old is not self.state:
            data = {"protocol": self.name, "event": event.value, "old": old.name, "new": self.state.name}
            self.tracer.event(now, "fsm", "state", data)
        if self.state not in _TIMER_STATES:
            self.deadline = None

    def _too_many_restarts(self, now: float) -> bool:
        """Record a renegotiation the peer starts from Opened; True when it is one too many."""
        restarts = self._restarts
        restarts.append(now)
        limit = self.config.max_restarts
        if len(restarts) <= limit or now - restarts[0] > self.config.restart_window:
            return False
        self.failure = (
            f"{self.name}: the peer renegotiated more than {limit} times within {self.config.restart_window:g} s"
        )
        self.failures.append(self.failure)
        return True

    def _may_reply(self, now: float) -> bool:
        """Take a token from the reply bucket (see the module docstring)."""
        config = self.config
        if self._replies_at is not None:
            self._replies = min(float(config.max_replies), self._replies + (now - self._replies_at) * config.reply_rate)
        self._replies_at = now
        if self._replies < 1.0:
            return False
        self._replies -= 1.0
        return True

    def _perform(self, action: Action, actions: tuple[Action, ...], now: float) -> None:
        if action is Action.TLU:
            self._naks_sent = self._naks_received = self._refused = 0
            self._events.append(LayerEvent.UP)
        elif action is Action.TLD:
            self._events.append(LayerEvent.DOWN)
        elif action is Action.TLS:
            self._events.append(LayerEvent.STARTED)
        elif action is Action.TLF:
            self._events.append(LayerEvent.FINISHED)
        elif action is Action.IRC:
            terminating = Action.STR in actions
            self.restart_count = self.config.max_terminate if terminating else self.config.max_configure
        elif action is Action.ZRC:
            self.restart_count = 0
            self.deadline = now + self.config.restart_timeout
        elif action is Action.SCR:
            if self.state not in _NEGOTIATING:  # a fresh negotiation: forget our earlier request
                self.handler.reset()
                self._naks_sent = self._naks_received = self._refused = 0
                self.failure = None
            self._identifier = (self._identifier + 1) & 0xFF
            self._request_id = self._identifier
            self._request = encode_options(self.handler.build_request())
            self._send(Code.CONFIGURE_REQUEST, self._identifier, self._request)
            self.restart_count -= 1
            self.deadline = now + self.config.restart_timeout
        elif action in (Action.SCA, Action.SCN):
            assert self._received is not None and self._reply is not None
            verdict, options = self._reply
            if verdict is Verdict.NAK:
                self._naks_sent += 1
            data = encode_options(options)
            received = self._received
            self._acked_request = (received.identifier, received.data) if verdict is Verdict.ACK else None
            self._send(verdict.value, self._received.identifier, data)
        elif action is Action.STR:
            self._identifier = (self._identifier + 1) & 0xFF
            self._send(Code.TERMINATE_REQUEST, self._identifier, b"")
            self.restart_count -= 1
            self.deadline = now + self.config.restart_timeout
        elif action is Action.STA:
            identifier = self._received.identifier if self._received is not None else self._identifier
            self._send(Code.TERMINATE_ACK, identifier, b"")
        elif action is Action.SCJ:
            assert self._received is not None
            self._identifier = (self._identifier + 1) & 0xFF
            self._send(Code.CODE_REJECT, self._identifier, self._received.encode())
        elif action is Action.SER:
            assert self._received is not None
            reply = self.handler.echo_reply(self._received)
            if reply is not None:
                if self._may_reply(now):
                    self._out.append(reply)
                else:
                    self.anomalies.append(f"{self.name}: {Code(reply.code).name} not sent: the peer asks too often")

    def _send(self, code: int, identifier: int, data: bytes) -> None:
        self._out.append(ControlPacket(code, identifier, data))
