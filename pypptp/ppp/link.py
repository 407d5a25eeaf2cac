"""One PPP link, sans-IO: link phases, the protocol table, LCP keepalive (RFC 1661 section 3).

:class:`PppLink` takes PPP frames as they come out of GRE (``receive_frame(frame,
now)``) and gives back frames to send and :class:`LinkEvent` values
(``drain()``).  It owns one automaton per control protocol, the
authentication exchange and the LCP echo keepalive, and walks the phases of
RFC 1661 section 3.2:

* **Dead** until :meth:`PppLink.open` (the PPTP call is connected), and
  again after LCP finishes; :class:`LinkDown` then says why.
* **Establish**: LCP only (section 3.3).
* **Authenticate** once LCP is Opened with an Authentication-Protocol
  agreed: LCP and the agreed method's packets only (section 3.4); other
  protocols are silently discarded.
* **Network** after authentication (or straight away when none was
  agreed): CCP (when MPPE is enabled and MS-CHAP gave keys) and the NCPs
  (IPCP, IPV6CP when IPv6 is on) are brought Up and Opened together, so a
  client's early IPCP request never meets a Closed automaton and its
  Terminate-Ack (accel-ppp issue 353).  IP flows only while IPCP is Opened
  and, when MPPE is required, once CCP has opened and the MPPE codecs exist
  (RFC 3078 section 9); ``NetworkUp`` waits for both.  When MPPE is
  required and CCP fails, is Protocol-Rejected or authentication gave no
  keys, LCP is closed with the reason.  A protocol we do not run gets an LCP Protocol-Reject (section
  5.7), as does IPV6CP while IPv6 is off.  One NCP failing leaves the link
  up as long as another runs; with none left the link closes, as pppd does
  ("No network protocols running").
* **Terminate** after an administrative close, a peer's Terminate-Request,
  an authentication failure or an echo timeout (section 3.7).

Every negotiation converges or ends.  The automaton bounds the Naks and
Rejects it receives (:class:`~pypptp.ppp.fsm.FsmConfig`) and closes a layer
that never agrees, with a reason logged here; a peer that Naks the
Authentication-Protocol toward methods we refuse makes us drop the option,
and LCP opened without it ends the link ("peer refused to authenticate", as
pppd).  And the link itself has a deadline: no network protocol up
:attr:`LinkConfig.setup_timeout` seconds after :meth:`PppLink.open` (or after
LCP went back to Establish from the Network phase) closes it.

LCP renegotiation (a Configure-Request in Opened, RFC 1661 section 4.2, or
:meth:`PppLink.renegotiate`) takes the link back to Establish: everything
that belongs to the old LCP session goes on LCP down, the MPPE codecs, CCP's
state and every key (the MS-CHAP keys are dropped from
:attr:`PppLink.auth_results`), and the MPPE keys of the next CCP come from
the authentication of the new LCP session (RFC 3079 section 2: they derive
from the MS-CHAP exchange, whose challenge is new each time).

The protocol table (:attr:`PppLink.table`) maps each PPP protocol number to
the method that takes its frames and the first phase in which they are
accepted: pppd's ``protocols[]`` array in one dictionary.  Data frames of
the hot path are meant to be demultiplexed before they reach this class
(the session layer does that); those that arrive here are handed up as
:class:`DataReceived`.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import ipaddress
import os
import re
import secrets as _secrets
import types
import typing
from collections.abc import Callable, Mapping

from pypptp.ppp import logtext
from pypptp.ppp.auth import (
    AuthConfig,
    AuthMethod,
    AuthRequest,
    AuthResult,
    ExternalVerdict,
    MsChapKeys,
    PeerNotice,
    SecretLookup,
    clipped,
    make_authenticator,
    make_peer,
)
from pypptp.ppp.ccp import CcpOptions, MppePolicy
from pypptp.ppp.frame import PROTOCOL_NAMES, FrameError, Protocol, encode_frame, parse_frame
from pypptp.ppp.fsm import Automaton, FsmConfig, LayerEvent
from pypptp.ppp.fsm_table import State
from pypptp.ppp.ipcp import IpcpConfig, IpcpOptions
from pypptp.ppp.ipv6cp import Ipv6cpConfig, Ipv6cpOptions
from pypptp.ppp.lcp import LcpConfig, LcpOptions
from pypptp.ppp.mppe import MPPE_OVERHEAD, MppeDecryptor, MppeEncryptor, start_keys
from pypptp.ppp.packet import Code, ControlPacket, PacketError, decode_packet
from pypptp.ppp.printpkt import format_packet
from pypptp.ppp.trace import Tracer, clip, packet_data

__all__ = [
    "AddressAssigner",
    "Assignment",
    "AuthAttemptFailed",
    "Authenticated",
    "DataReceived",
    "LinkConfig",
    "LinkDown",
    "LinkEvent",
    "LinkLog",
    "NetworkDown",
    "NetworkUp",
    "Phase",
    "PhaseChanged",
    "PppLink",
    "VerifyRequested",
]

PACKET_LINE_RATE = 20.0
"""Debug packet lines a link writes a second on average at most (a burst of :data:`PACKET_LINE_BURST`); the
others are counted and said in one line when lines flow again, or in the link's last summary.  A whole
negotiation takes about 30; a flooding peer must not flood the log when debug is on (SIGUSR1 can turn it
on under attack)."""
PACKET_LINE_BURST = 100
_QUIET_PROTOCOLS = frozenset({0x0021, 0x0057, 0x00FD, 0x00FB, 0x002D, 0x002F})
"""Data (IP, IPv6, MPPE/compressed, VJ): the kernel carried them past pppd, which never logged them."""
RESET_INTERVAL = 1.0
"""Seconds between repeated CCP Reset-Requests while stateful MPPE waits for a flushed packet (pppd's)."""
_MAX_ROUNDS = 64  # bound on the event cascade after one input (each round drains every automaton)
_NUMBERS = re.compile(r"0x[0-9A-Fa-f]+|\d+")  # what varies between repeats of one kind of notice
_MAX_NOTICE_KINDS = 64


class Phase(enum.IntEnum):
    """RFC 1661 section 3.2; ordered, so ``phase >= Phase.NETWORK`` reads naturally."""

    DEAD = 0
    ESTABLISH = 1
    AUTHENTICATE = 2
    NETWORK = 3
    TERMINATE = 4


# -- events for the layer above ----------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class PhaseChanged:
    phase: Phase


@dataclasses.dataclass(frozen=True)
class Authenticated:
    """The authentication exchange is final; ``result.success`` says how it ended."""

    result: AuthResult
    local: bool
    """True when we authenticated the peer, False when we authenticated ourselves to it."""


@dataclasses.dataclass(frozen=True)
class AuthAttemptFailed:
    """We authenticated the peer, and one attempt failed (the exchange may allow another): what a
    per-address failure budget counts."""

    method: str
    peer_name: str


@dataclasses.dataclass(frozen=True)
class VerifyRequested:
    """We authenticate the peer under :attr:`~pypptp.ppp.auth.AuthConfig.external`: judge ``request``
    (e.g. by RADIUS) and hand the answer to :meth:`PppLink.auth_verdict`.  Until then the authenticator
    waits; the link's ``setup_timeout`` still runs."""

    request: AuthRequest


@dataclasses.dataclass(frozen=True)
class NetworkUp:
    """IPCP is Opened (and MPPE, when required): IPv4 may flow.

    ``mtu`` is the largest IP packet the peer accepts: its MRU, minus
    :data:`~pypptp.ppp.mppe.MPPE_OVERHEAD` when MPPE is on (ccp-mppe.md section 9; the
    cause of Linux's "compressor dropped pkt").  ``mppe`` names the encryption, e.g.
    "MPPE 128-bit stateless", or is empty."""

    local_address: ipaddress.IPv4Address
    peer_address: ipaddress.IPv4Address
    dns: tuple[ipaddress.IPv4Address, ...]
    wins: tuple[ipaddress.IPv4Address, ...]
    mtu: int
    mppe: str = ""


@dataclasses.dataclass(frozen=True)
class NetworkDown:
    reason: str


@dataclasses.dataclass(frozen=True)
class DataReceived:
    protocol: int
    payload: bytes


@dataclasses.dataclass(frozen=True)
class LinkDown:
    """LCP has finished: the link is Dead and the call below it should be cleared."""

    reason: str


@dataclasses.dataclass(frozen=True)
class LinkLog:
    """A line for the log: ``level`` is ``"info"``, ``"notice"``, ``"warning"`` or ``"debug"``."""

    level: str
    message: str


LinkEvent = (
    PhaseChanged
    | Authenticated
    | AuthAttemptFailed
    | VerifyRequested
    | NetworkUp
    | NetworkDown
    | DataReceived
    | LinkDown
    | LinkLog
)


@dataclasses.dataclass(frozen=True)
class LinkConfig:
    """Everything one link negotiates; the daemon builds it from pppd's options."""

    server: bool = True
    lcp: LcpConfig = dataclasses.field(default_factory=LcpConfig)
    fsm: FsmConfig = dataclasses.field(default_factory=FsmConfig)
    auth: AuthConfig = dataclasses.field(default_factory=AuthConfig)
    ipcp: IpcpConfig = dataclasses.field(default_factory=IpcpConfig)
    ipv6: bool = False
    """Run IPV6CP (pppd ``+ipv6``); off, its packets are Protocol-Rejected."""
    ipv6cp: Ipv6cpConfig = dataclasses.field(default_factory=Ipv6cpConfig)
    mppe: MppePolicy = dataclasses.field(default_factory=MppePolicy)
    """MPPE policy (pppd's require-mppe-128 by default): CCP runs when it is enabled, and IP waits
    for it when it is required (RFC 3078 section 9: no user data before MPPE is negotiated)."""
    echo_interval: float = 0.0
    """``lcp-echo-interval``: seconds between Echo-Requests once LCP is Opened; 0 = none."""
    echo_failure: int = 0
    """``lcp-echo-failure``: unanswered Echo-Requests before the peer is declared dead; 0 = never."""
    unit: int = 0
    """The ppp unit number (``pppN``); chap-secrets ``a.b.c.d/n+`` addresses depend on it."""
    identification: tuple[bytes, ...] = ()
    """LCP Identification messages sent once LCP is Opened (Windows sends two; RFC 1570 section 2.1)."""
    setup_timeout: float = 60.0
    """Seconds after :meth:`PppLink.open` (or after an LCP renegotiation from the Network phase) within
    which a network protocol must be up (IP may flow); past it the link is closed.  0: no deadline.
    pppd has none: its phases are bounded one by one (LCP: 10 Configure-Requests 3 s apart; CHAP: 10
    Challenges 3 s apart, PAP: 30 s), each about 30 s, which a slow but honest client never needs
    whole; 60 s leaves room for two of them back to back (an MS-CHAP retry after a Failure with R=1)
    and still frees the call and its pool address within a minute of a client that loops through
    the phases (e.g. an LCP renegotiation before each Challenge times out)."""


class Assignment(typing.NamedTuple):
    """What an :data:`AddressAssigner` gives an authenticated peer."""

    local: ipaddress.IPv4Address
    peer: ipaddress.IPv4Address
    unit: int
    """The ppp unit, chosen now that the user is known (chap-secrets ``a.b.c.d/n+`` addresses depend on it)."""


AddressAssigner = Callable[[AuthResult | None], Assignment | str]
"""``assign(result) -> Assignment | reason``: see :class:`PppLink`."""


@dataclasses.dataclass
class _Ncp:
    """A network control protocol running on the link."""

    name: str
    automaton: Automaton
    data_protocols: tuple[int, ...]
    network: bool = True
    """A network protocol (IPCP, IPV6CP); CCP is not one: the link closes when no network one is left."""


class PppLink:
    """The phases and protocols of one PPP link (both roles)."""

    def __init__(
        self,
        config: LinkConfig | None = None,
        *,
        secrets: SecretLookup | None = None,
        assign_addresses: AddressAssigner | None = None,
        random_bytes: Callable[[int], bytes] = os.urandom,
        random32: Callable[[], int] | None = None,
        tracer: Tracer | None = None,
    ) -> None:
        """``assign_addresses`` (server): called when the peer has authenticated, before IPCP starts, with
        the authentication's result; it returns the addresses IPCP is to use and the ppp unit (an
        :class:`Assignment`), or the reason the link must end instead (an address pool that lends
        addresses and units only to authenticated users, and enforces its limits there).  Without it,
        the addresses of ``config.ipcp`` (or the secrets record's, for ``config.unit``) are used.

        ``tracer`` (or :attr:`tracer` set later): a structured trace of the link (:mod:`pypptp.ppp.trace`):
        every control packet in and out, automaton state changes, phases, authentication and MPPE events;
        never data packets, never secrets."""
        self.config = config = config or LinkConfig()
        self._secrets = secrets
        self._assign_addresses = assign_addresses
        self._random_bytes = random_bytes
        lcp_config = dataclasses.replace(config.lcp, server=config.server)
        self.lcp_options = LcpOptions(lcp_config, random32=random32 or (lambda: _secrets.randbits(32)))
        self.lcp = Automaton("LCP", self.lcp_options, config.fsm, protocol=Protocol.LCP)
        self.phase = Phase.DEAD
        self.auth_local: AuthMethod | None = None  # we authenticate the peer
        self.auth_remote: AuthMethod | None = None  # we authenticate ourselves to the peer
        self.auth_results: list[AuthResult] = []
        """The final result of every authentication on this link, oldest first (scripts read the peer's
        name here).  Their MS-CHAP keys and secrets records are dropped on LCP down: keys come from the
        current LCP session's authentication only."""
        self.ipcp_options: IpcpOptions | None = None
        self._ipcp_opened = False
        self._ipcp_peer_waiting = False
        self.ipv6cp_options: Ipv6cpOptions | None = None
        self.ncps: dict[int, _Ncp] = {}
        self.ccp_options: CcpOptions | None = None
        self.encryptor: MppeEncryptor | None = None
        self.decryptor: MppeDecryptor | None = None
        self.mppe_keys: MsChapKeys | None = None
        """The MS-CHAP keys the MPPE codecs derive from, while they exist."""
        self.mppe_name = ""
        self.setup_deadline: float | None = None
        """When the link is closed unless a network protocol is up by then (:attr:`LinkConfig.setup_timeout`)."""
        self.network_up: NetworkUp | None = None
        self.counters: dict[str, int] = {"oversize": 0, "unencrypted": 0, "undecryptable": 0}
        """Data dropped by the slow path, by reason; each reason is logged the first time only."""
        self.close_reason = ""
        self._extra_id = 0  # Identifier of LCP Echo-Request / Protocol-Reject / Identification
        self._ccp_reset_id = 0
        self._reset_deadline: float | None = None
        self._logged_drops: set[str] = set()
        self._repeats: dict[str, int] = {}
        """Peer-driven notices by kind: how many were counted, not logged, after the first (:meth:`_notice`)."""
        self._owner_sums_up = False
        self.log_packets: Callable[[], bool] | None = None
        """Asked once per control packet: true to log it as pppd's ``debug`` does (``sent [LCP ConfReq id=0x1
        ...]``, ``rcvd [...]``, :mod:`~pypptp.ppp.printpkt`), as debug :class:`LinkLog` lines in the order of
        the link's other lines.  The owner sets it (the session: its logger at debug level); data frames
        never ask."""
        self._now = 0.0  # the time of the current input, for the packet lines' rate
        self._line_tokens = float(PACKET_LINE_BURST)
        self._line_stamp = 0.0
        self._lines_suppressed = 0
        self._network_was_up = False  # pppd's "unsuccess == 0": its debug 1 hides Echo lines from then on
        self._echo_deadline: float | None = None
        self._echo_pending = 0
        self._frames: list[bytes] = []
        self._events: list[LinkEvent] = []
        self._tracer: Tracer | None = None
        self.table = _protocol_table(config.ipv6, config.mppe.enabled)
        self.tracer = tracer

    @property
    def tracer(self) -> Tracer | None:
        """The link's tracer, or None (the default: nothing is traced, nothing is built)."""
        return self._tracer

    @tracer.setter
    def tracer(self, tracer: Tracer | None) -> None:
        self._tracer = tracer
        self.lcp.tracer = tracer
        for ncp in self.ncps.values():
            ncp.automaton.tracer = tracer

    # -- inputs --------------------------------------------------------------------------

    def open(self, now: float) -> None:
        """The lower layer (the PPTP call) is up: start LCP (RFC 1661 section 3.3)."""
        if self.phase is not Phase.DEAD:
            return
        self.close_reason = ""
        self._now = now
        self._arm_setup_deadline(now)
        self._set_phase(Phase.ESTABLISH)
        self.lcp.open(now)
        self.lcp.up(now)
        self._settle(now)

    def detach(self) -> None:
        """The owner is done with the link (its session has ended): drop the owner's callbacks, which close
        over the owner's per-session objects that hold this link (a reference cycle each), so that the link
        is freed by reference counting with its session.  The link reads as before (results, counters)."""
        self._assign_addresses = None
        self.log_packets = None

    def close(self, now: float, reason: str) -> None:
        """Terminate the link administratively (LCP Close), e.g. on SIGTERM or a CCRQ."""
        if self.phase is Phase.DEAD:
            return
        self._now = now
        self._close_lcp(now, reason)
        self._settle(now)

    def auth_verdict(self, request: AuthRequest, verdict: ExternalVerdict, now: float) -> bool:
        """The answer to a :class:`VerifyRequested`.  False (and nothing done) when the authenticator no
        longer waits for ``request``: the link went down or renegotiated meanwhile, and a verdict on old
        credentials must not authenticate the new LCP session."""
        auth = self.auth_local
        if self.phase is Phase.DEAD or auth is None or auth.awaiting is not request:
            return False
        self._now = now
        if self._tracer is not None:
            self._tracer.event(now, "auth", "verdict", {"method": request.method, "ok": verdict.ok})
        auth.complete(verdict, now)
        self._settle(now)
        return True

    def renegotiate(self, now: float, protocol: int = Protocol.LCP) -> None:
        """Restart LCP, or one NCP, from Opened (RFC 1661 section 4.3, note r: Down then Up): a fresh
        Configure-Request; after LCP, authentication and the NCPs run again."""
        automaton = self.lcp if protocol == Protocol.LCP else getattr(self.ncps.get(protocol), "automaton", None)
        if automaton is not None and automaton.state is State.OPENED:
            automaton.down(now)
            automaton.up(now)
            self._settle(now)

    def lower_down(self, now: float, reason: str) -> None:
        """The call or the TCP connection is gone: no more frames in or out.  The summary of the notices
        repeated on this link is left to the owner (:meth:`take_notice_summary`), who is tearing down and
        may not read the events of this call."""
        if self.phase is Phase.DEAD:
            return
        self.close_reason = self.close_reason or reason
        self._now = now
        self._owner_sums_up = True
        try:
            self.lcp.down(now)
            self._settle(now)
            if self.phase is not Phase.DEAD:  # LCP was in a state where Down does not finish it
                self._link_dead(now)
        finally:
            self._owner_sums_up = False
        self._frames.clear()

    def receive_frame(self, frame: bytes | bytearray | memoryview, now: float) -> None:
        """One PPP frame from GRE.  Never raises: bad input is logged and dropped."""
        if self.phase is Phase.DEAD:
            return
        view = memoryview(frame)
        try:
            protocol, offset = parse_frame(view)
        except FrameError as exc:
            self._log("debug", f"discarded a PPP frame: {exc}")
            return
        self._now = now
        if self._tracer is not None and protocol not in _QUIET_PROTOCOLS:
            self._tracer.event(now, "ppp", "rcvd", packet_data(protocol, view[offset:]))
        if self.log_packets is not None and protocol not in _QUIET_PROTOCOLS and self.log_packets():
            self._packet_line("rcvd", protocol, view[offset:])
        entry = self.table.get(protocol)
        if entry is None:
            self._unknown_protocol(protocol, view[offset:], now)
        elif self.phase < entry[0] or (self.phase is Phase.TERMINATE and protocol != Protocol.LCP):
            self._log("debug", f"discarded {_protocol_name(protocol)} in the {self.phase.name} phase")
        else:
            entry[1](self, protocol, view[offset:], now)
        self._settle(now)

    def handle_timer(self, now: float) -> None:
        self._now = now
        self.lcp.handle_timer(now)
        for ncp in list(self.ncps.values()):
            ncp.automaton.handle_timer(now)
        for auth in (self.auth_local, self.auth_remote):
            if auth is not None:
                auth.handle_timer(now)
        if self._echo_deadline is not None and now >= self._echo_deadline:
            self._echo_timer(now)
        if self._reset_deadline is not None and now >= self._reset_deadline:
            self._reset_deadline = None
            if self.decryptor is not None and self.decryptor.discarding:
                self._send_ccp_reset_request(now)
        if self.setup_deadline is not None and now >= self.setup_deadline:
            self.setup_deadline = None
            reason = f"no network protocol came up within {self.config.setup_timeout:g} s"
            self._log("warning", f"{reason}; closing the link")
            self._close_lcp(now, reason, log=False)
        self._settle(now)

    def next_deadline(self) -> float | None:
        deadlines = [self.lcp.next_deadline(), self._echo_deadline, self._reset_deadline, self.setup_deadline]
        deadlines += [ncp.automaton.next_deadline() for ncp in self.ncps.values()]
        deadlines += [a.next_deadline() for a in (self.auth_local, self.auth_remote) if a is not None]
        present = [d for d in deadlines if d is not None]
        return min(present) if present else None

    def drain(self) -> tuple[list[bytes], list[LinkEvent]]:
        """Frames to send (PPP, ready for GRE) and events, in order."""
        frames, events = self._frames, self._events
        self._frames, self._events = [], []
        return frames, events

    def data_open(self, protocol: int) -> bool:
        """May data of ``protocol`` (IPv4 0x0021, IPv6 0x0057) flow now?"""
        if self.config.mppe.required and self.encryptor is None:
            return False
        if protocol == Protocol.IPV4:
            return self.network_up is not None
        return any(protocol in ncp.data_protocols and ncp.automaton.state is State.OPENED for ncp in self.ncps.values())

    def send_data(self, protocol: int, payload: bytes | bytearray | memoryview) -> bytes | None:
        """A data frame for ``payload``, encrypted when MPPE is on (slow path; the session's hot path
        does the same with the same :attr:`encryptor`).  None while the data may not flow, or when
        the packet is larger than the peer accepts (counted, and logged the first time)."""
        if not self.data_open(protocol):
            return None
        if self.network_up is not None and len(payload) > self.network_up.mtu:
            self._drop("oversize", f"{len(payload)}-byte packet exceeds the link MTU {self.network_up.mtu}")
            return None
        if self.encryptor is not None:
            return self._encode(Protocol.COMPRESSED, self.encryptor.encrypt(protocol, payload))
        return self._encode(protocol, bytes(payload))

    # -- per-protocol input ---------------------------------------------------------------------

    def _on_lcp(self, protocol: int, information: memoryview, now: float) -> None:
        packet = self._decode(protocol, information)
        if packet is None:
            return
        if packet.code == Code.ECHO_REPLY and self.lcp.state is State.OPENED:
            self._echo_reply(packet)
        elif packet.code == Code.TERMINATE_REQUEST and self.lcp.state is State.OPENED:
            self.close_reason = self.close_reason or logtext.terminated_by_peer()
            self._log("info", logtext.terminated_by_peer(reason=bytes(packet.data[:64])))  # pppd's, with the text
        self.lcp.receive(packet, now)
        for rejected in self.lcp.rejected_protocols:
            self._protocol_rejected(rejected, now)
        self.lcp.rejected_protocols.clear()

    def _on_auth(self, protocol: int, information: memoryview, now: float) -> None:
        """PAP Requests and CHAP Responses go to our authenticator, the rest to our peer side."""
        packet = self._decode(protocol, information)
        if packet is None:
            return
        to_authenticator = packet.code == 1 if protocol == Protocol.PAP else packet.code not in (1, 3, 4)
        method = self.auth_local if to_authenticator else self.auth_remote
        if method is None or method.protocol != protocol:  # the CVE-2020-8597 lesson: only the agreed method
            self._log("debug", f"discarded {_protocol_name(protocol)} code {packet.code}: not negotiated")
            return
        method.receive(packet, now)

    def _on_ncp(self, protocol: int, information: memoryview, now: float) -> None:
        ncp = self.ncps.get(protocol)
        if ncp is None:  # Network phase but this NCP already gave up: it stays down
            self._log("debug", f"discarded {_protocol_name(protocol)}: not running")
            return
        packet = self._decode(protocol, information)
        if packet is None:
            return
        waiting_ipcp = protocol == Protocol.IPCP and ncp.automaton.state is State.REQ_SENT
        if waiting_ipcp and packet.code == Code.TERMINATE_ACK:
            self._ipcp_peer_waiting = True  # the peer's IPCP is not started yet (pppd waits for CCP)
        opened = ncp.automaton.state is State.OPENED
        if protocol == Protocol.CCP and packet.code == Code.RESET_REQUEST and opened and self.encryptor is not None:
            self.encryptor.reset_requested()  # the automaton answers with Reset-Ack (ser)
        ncp.automaton.receive(packet, now)
        if waiting_ipcp and self._ipcp_peer_waiting:
            ccp_ncp = self.ncps.get(Protocol.CCP)
            ready = ccp_ncp is None or ccp_ncp.automaton.state is State.OPENED
            if packet.code == Code.CONFIGURE_REQUEST or (packet.code == Code.TERMINATE_ACK and ready):
                self._ipcp_peer_waiting = False  # its IPCP runs (or will at once): ask again now
                ncp.automaton.retransmit_now(now)
        ccp = self.ccp_options
        if protocol == Protocol.CCP and ccp is not None and ccp.failed and self.config.mppe.required:
            self._close_lcp(now, f"MPPE required but not agreed: {ccp.failed}")
            return
        options = self.ipcp_options
        if protocol == Protocol.IPCP and options is not None and options.address_refused:
            options.address_refused = False
            self._log("warning", "the peer insists on an IP address we cannot give it; closing IPCP")
            ncp.automaton.close(now)

    def _on_data(self, protocol: int, information: memoryview, now: float) -> None:
        if self.decryptor is not None or (self.config.mppe.required and self.encryptor is None):
            self._drop("unencrypted", f"unencrypted {_protocol_name(protocol)} data while MPPE is required or on")
            return
        if not self.data_open(protocol):
            self._log("debug", f"discarded {_protocol_name(protocol)} data: its NCP is not Opened")
            return
        self._events.append(DataReceived(protocol, bytes(information)))

    def _on_encrypted(self, protocol: int, information: memoryview, now: float) -> None:
        """MPPE data (protocol 0x00FD): decrypt, then treat as the inner protocol's data."""
        decryptor = self.decryptor
        if decryptor is None:
            self._drop("undecryptable", "MPPE data before CCP opened")
            return
        inner = decryptor.decrypt(information)
        if decryptor.take_reset_request():
            self._ccp_reset_id = (self._ccp_reset_id + 1) & 0xFF
            self._send_ccp_reset_request(now)
        if inner is not None:
            self.receive_decrypted(*inner, now)

    def receive_decrypted(self, protocol: int, payload: bytes | bytearray | memoryview, now: float) -> None:
        """The inner protocol and payload of an MPPE frame, decrypted (here, or by a hot path that may
        deliver only IP of an open NCP itself): data of an Opened NCP, or discarded."""
        if not self.data_open(protocol):
            self._log("debug", f"discarded decrypted {_protocol_name(protocol)}: its NCP is not Opened")
            return
        self._events.append(DataReceived(protocol, bytes(payload)))

    def request_mppe_reset(self, now: float) -> None:
        """A hot path that decrypted outside :meth:`receive_frame` saw the decryptor ask for a reset."""
        self._ccp_reset_id = (self._ccp_reset_id + 1) & 0xFF
        self._send_ccp_reset_request(now)

    def frame_prefix(self, protocol: int) -> bytes:
        """The bytes in front of a data frame of ``protocol`` as we send it now (ACFC/PFC applied)."""
        return self._encode(protocol, b"")

    def _send_ccp_reset_request(self, now: float) -> None:
        """Stateful MPPE lost a packet: ask the sender to flush (RFC 1962 section 3.1, RFC 3078 section
        8.2).  Repeated with the same Identifier every :data:`RESET_INTERVAL` while the decryptor
        still discards, since the flushed packet that answers it can be lost too."""
        self._queue(Protocol.CCP, ControlPacket(Code.RESET_REQUEST, self._ccp_reset_id).encode())
        self._reset_deadline = now + RESET_INTERVAL

    def _unknown_protocol(self, protocol: int, information: memoryview, now: float) -> None:
        """RFC 1661 section 5.7: Protocol-Reject, but only while LCP is Opened in the Network phase."""
        name = _protocol_name(protocol)
        if self.phase is not Phase.NETWORK or self.lcp.state is not State.OPENED:
            self._log("debug", f"discarded {name} in the {self.phase.name} phase")
            return
        self._log("debug", f"Protocol-Reject for {name}")
        room = max(0, self.lcp_options.peer_mru - 6)
        self._send_lcp_extra(Code.PROTOCOL_REJECT, protocol.to_bytes(2, "big") + bytes(information[:room]))

    # -- the cascade of layer events ----------------------------------------------------------------

    def _settle(self, now: float) -> None:
        """Collect every automaton's output and act on layer events until nothing new happens."""
        self._now = now
        for _ in range(_MAX_ROUNDS):
            progressed = False
            packets, events = self.lcp.drain()
            progressed |= self._emit(Protocol.LCP, packets, self.lcp)
            for event in events:
                progressed = True
                self._lcp_event(event, now)
            for auth in (self.auth_local, self.auth_remote):
                if auth is None:
                    continue
                packets, lines = auth.drain()
                for packet in packets:
                    self._queue(auth.protocol, packet.encode())
                for line in lines:
                    if isinstance(line, PeerNotice):
                        self._notice("info", str(line))
                    else:
                        self._log("info", line)
                for name in auth.failed_attempts:
                    if self._tracer is not None:
                        self._tracer.event(now, "auth", "attempt-failed", {"method": auth.name, "peer": clip(name)})
                    self._events.append(AuthAttemptFailed(auth.name, name))
                auth.failed_attempts.clear()
                if auth.pending is not None:
                    request, auth.pending = auth.pending, None
                    if self._tracer is not None:
                        data = {"method": request.method, "attempt": request.attempt}
                        self._tracer.event(now, "auth", "verify-requested", data)
                    self._events.append(VerifyRequested(request))
                    progressed = True
                progressed |= bool(packets or lines)
                progressed |= self._check_auth(auth, now)
            for protocol, ncp in list(self.ncps.items()):
                packets, events = ncp.automaton.drain()
                progressed |= self._emit(protocol, packets, ncp.automaton)
                for event in events:
                    progressed = True
                    self._ncp_event(protocol, ncp, event, now)
            if not progressed:
                return
        self._log("warning", "PPP event cascade did not settle; stopped it")  # cannot happen by design

    def _emit(self, protocol: int, packets: list[ControlPacket], automaton: Automaton) -> bool:
        for packet in packets:
            self._queue(protocol, packet.encode())
        for anomaly in automaton.anomalies:
            if self._tracer is not None:
                self._tracer.event(self._now, "fsm", "anomaly", {"protocol": automaton.name, "text": clip(anomaly)})
            self._log("debug", anomaly)
        for failure in automaton.failures:  # the automaton closed its layer: a peer that never agreed
            if self._tracer is not None:
                self._tracer.event(self._now, "fsm", "failure", {"protocol": automaton.name, "text": clip(failure)})
            self._log("warning", failure)
            if automaton is self.lcp:
                self.close_reason = self.close_reason or failure
                self.setup_deadline = None
                if self.phase is not Phase.DEAD:
                    self._set_phase(Phase.TERMINATE)
        had_output = bool(packets or automaton.anomalies or automaton.failures)
        automaton.anomalies.clear()
        automaton.failures.clear()
        return had_output

    def _lcp_event(self, event: LayerEvent, now: float) -> None:
        if event is LayerEvent.UP:
            self._lcp_up(now)
        elif event is LayerEvent.DOWN:
            self._lcp_down(now)
        elif event is LayerEvent.STARTED:
            if self.phase is Phase.DEAD:
                self._set_phase(Phase.ESTABLISH)
        elif event is LayerEvent.FINISHED:
            self._link_dead(now)

    def _lcp_up(self, now: float) -> None:
        options = self.lcp_options
        if self.lcp_options.loopback_suspected:
            self._log("warning", "the peer's magic number equals ours: the line may be looped back")
        if self.config.echo_interval > 0:
            self._echo_pending = 0
            self._echo_deadline = now + self.config.echo_interval
        for message in self.config.identification:
            self._send_lcp_extra(Code.IDENTIFICATION, options.our_magic.to_bytes(4, "big") + message)
        if self.config.server and self.config.lcp.auth_methods and options.our_auth is None:
            self._log("warning", "peer refused to authenticate: terminating link")  # pppd's link_established
            self._close_lcp(now, "peer refused to authenticate", log=False)
            return
        if options.our_auth is not None:
            self.auth_local = make_authenticator(
                options.our_auth, self.config.auth, self._secrets or _NoSecrets(), random_bytes=self._random_bytes
            )
        if options.peer_auth is not None:
            self.auth_remote = make_peer(options.peer_auth, self.config.auth, random_bytes=self._random_bytes)
        if self.auth_local is None and self.auth_remote is None:
            self._enter_network(now)
            return
        self._set_phase(Phase.AUTHENTICATE)
        for auth in (self.auth_local, self.auth_remote):
            if auth is not None:
                if self._tracer is not None:
                    side = "peer" if auth is self.auth_local else "us"
                    self._tracer.event(now, "auth", "start", {"method": auth.name, "authenticating": side})
                auth.start(now)

    def _lcp_down(self, now: float) -> None:
        self._echo_deadline = None
        for ncp in list(self.ncps.values()):
            ncp.automaton.down(now)
        self._settle_ncps_quietly()
        self._end_lcp_session()
        self._network_down("LCP down")
        closing = self.lcp.state in (State.CLOSING, State.STOPPING, State.CLOSED, State.STOPPED)
        if not closing and self.setup_deadline is None:
            self._arm_setup_deadline(now)  # renegotiation from the Network phase: a fresh deadline
        self._set_phase(Phase.TERMINATE if closing else Phase.ESTABLISH)

    def _end_lcp_session(self) -> None:
        """Forget everything negotiated or derived in this LCP session: the NCPs, CCP's state, the MPPE
        codecs and every key (an LCP renegotiation authenticates again, and the keys come from there)."""
        self.ncps.clear()
        self._ipcp_opened = False
        self._ipcp_peer_waiting = False
        self._mppe_off()
        self.ccp_options = None
        self.auth_local = self.auth_remote = None
        self.auth_results = [
            dataclasses.replace(r, keys=None, secret=None) if r.keys is not None or r.secret is not None else r
            for r in self.auth_results
        ]

    def _arm_setup_deadline(self, now: float) -> None:
        timeout = self.config.setup_timeout
        self.setup_deadline = now + timeout if timeout > 0 else None

    def _settle_ncps_quietly(self) -> None:
        """NCPs going Down with LCP send nothing (LCP is no longer Opened); drop what they queued."""
        for ncp in self.ncps.values():
            ncp.automaton.drain()
            ncp.automaton.anomalies.clear()

    def _link_dead(self, now: float) -> None:
        summary = None if self._owner_sums_up else self.take_notice_summary()
        if summary is not None:
            self._log("info", summary)
        self._echo_deadline = None
        self.setup_deadline = None
        self._end_lcp_session()
        self._network_down("link dead")
        self._set_phase(Phase.DEAD)
        if self._tracer is not None:
            self._tracer.event(now, "link", "down", {"reason": clip(self.close_reason or "LCP finished")})
        self._events.append(LinkDown(self.close_reason or "LCP finished"))

    def _check_auth(self, auth: AuthMethod, now: float) -> bool:
        """React once to a final authentication result."""
        result = auth.result
        if result is None or any(r is result for r in self.auth_results):
            return False
        self.auth_results.append(result)
        local = auth is self.auth_local
        if self._tracer is not None:  # names and the message only: never secrets, challenges, responses
            data = {"method": result.method, "authenticating": "peer" if local else "us", "success": result.success}
            data |= {"peer": clip(result.peer_name), "message": clip(result.message)}
            data["mppe_keys"] = result.keys is not None
            self._tracer.event(now, "auth", "result", data)
        self._events.append(Authenticated(result, local))
        if not result.success:
            self._log("notice", result.message)
            self._close_lcp(now, "Authentication failed")
            return True
        self._log(
            "notice", f"{result.method} {'peer' if local else 'we'} authenticated as {clipped(result.peer_name)!r}"
        )
        pending = [a for a in (self.auth_local, self.auth_remote) if a is not None and not _succeeded(a)]
        if not pending and self.phase is Phase.AUTHENTICATE:
            self._enter_network(now)
        return True

    # -- Network phase ------------------------------------------------------------------------

    def _enter_network(self, now: float) -> None:
        self._set_phase(Phase.NETWORK)
        self._ipcp_opened = False
        self._ipcp_peer_waiting = False
        config = self.config
        ipcp_config = config.ipcp
        result = self.auth_local.result if self.auth_local is not None else None
        secret = result.secret if result is not None else None
        unit = config.unit
        if config.server and self._assign_addresses is not None:
            assigned = self._assign_addresses(result)
            if isinstance(assigned, str):
                self._log("warning", assigned)
                self._close_lcp(now, assigned)
                return
            unit = assigned.unit
            ipcp_config = dataclasses.replace(ipcp_config, local_address=assigned.local, peer_address=assigned.peer)
            if secret is not None:
                ipcp_config = dataclasses.replace(ipcp_config, allowed=secret.addresses)
        elif config.server and secret is not None:
            static = secret.addresses.assigned_address(unit)
            ipcp_config = dataclasses.replace(
                ipcp_config, peer_address=static or ipcp_config.peer_address, allowed=secret.addresses
            )
        ipcp_config = dataclasses.replace(ipcp_config, server=config.server, unit=unit)
        self.ipcp_options = IpcpOptions(ipcp_config)
        self.ncps[Protocol.IPCP] = _Ncp(
            "IPCP", Automaton("IPCP", self.ipcp_options, config.fsm, protocol=Protocol.IPCP), (Protocol.IPV4,)
        )
        if config.ipv6:
            ipv6cp_config = config.ipv6cp
            if ipv6cp_config.use_ipaddr and ipcp_config.local_address is not None:
                ipv6cp_config = dataclasses.replace(
                    ipv6cp_config, interface_id=ipcp_config.local_address.packed.rjust(8, b"\0")
                )
            self.ipv6cp_options = Ipv6cpOptions(ipv6cp_config, random_bytes=self._random_bytes)
            self.ncps[Protocol.IPV6CP] = _Ncp(
                "IPV6CP",
                Automaton("IPV6CP", self.ipv6cp_options, config.fsm, protocol=Protocol.IPV6CP),
                (Protocol.IPV6,),
            )
        if config.mppe.enabled:
            if self._mppe_keys() is None:
                if config.mppe.required:
                    self._close_lcp(now, "MPPE required, but MS-CHAP authentication was not performed")
                    return
            else:
                self.ccp_options = CcpOptions(config.mppe)
                ccp = Automaton("CCP", self.ccp_options, config.fsm, protocol=Protocol.CCP, keep_open_on_repeat=True)
                self.ncps[Protocol.CCP] = _Ncp("CCP", ccp, (), network=False)
        for ncp in self.ncps.values():
            ncp.automaton.tracer = self._tracer
            ncp.automaton.up(now)
            ncp.automaton.open(now)

    def _ncp_event(self, protocol: int, ncp: _Ncp, event: LayerEvent, now: float) -> None:
        if event is LayerEvent.UP:
            if protocol == Protocol.IPCP:
                self._ipcp_opened = True
            elif protocol == Protocol.CCP:
                self._ccp_up(now)
            else:
                self._log("info", f"{ncp.name} opened")
            self._maybe_network_up(now)
            if self.setup_deadline is not None and (self.data_open(Protocol.IPV4) or self.data_open(Protocol.IPV6)):
                self.setup_deadline = None  # a network protocol is up: the deadline is met
        elif event is LayerEvent.DOWN:
            if protocol == Protocol.IPCP:
                self._ipcp_opened = False
                self._network_down("IPCP down")
            elif protocol == Protocol.CCP:
                started = self.encryptor is not None or self.decryptor is not None
                self._mppe_off()
                if started:  # see _ccp_restarted
                    self._ccp_restarted(now)
                elif self.config.mppe.required:
                    self._network_down("CCP down")
        elif event is LayerEvent.FINISHED:
            self._log("info", f"{ncp.name} finished")
            self.ncps.pop(protocol, None)
            if protocol == Protocol.IPCP:
                self._network_down("IPCP finished")
            if protocol == Protocol.CCP and self.config.mppe.required and self.phase is Phase.NETWORK:
                failed = self.ccp_options.failed if self.ccp_options else None
                reason = failed or ncp.automaton.failure or "CCP finished"
                self._close_lcp(now, f"MPPE required but not agreed: {reason}")
            elif not any(n.network for n in self.ncps.values()) and self.phase is Phase.NETWORK:
                self._close_lcp(now, "No network protocols running")

    def _mppe_keys(self) -> MsChapKeys | None:
        """The keys of this LCP session's MS-CHAP authentication (RFC 3079 section 2), either side's."""
        for auth in (self.auth_local, self.auth_remote):
            result = auth.result if auth is not None else None
            if result is not None and result.success and result.keys is not None:
                return result.keys
        return None

    def _ccp_up(self, now: float) -> None:
        """CCP Opened: build the MPPE codecs from the MS-CHAP keys (RFC 3079)."""
        ccp, keys = self.ccp_options, self._mppe_keys()
        assert ccp is not None and keys is not None
        self.mppe_keys = keys
        server = self.config.server
        if ccp.send_bits is not None:
            send_start, _ = start_keys(keys, ccp.send_bits, server=server)
            self.encryptor = MppeEncryptor(send_start, ccp.send_bits, stateful=ccp.send_stateful)
        if ccp.receive_bits is not None:
            _, receive_start = start_keys(keys, ccp.receive_bits, server=server)
            self.decryptor = MppeDecryptor(receive_start, ccp.receive_bits, stateful=ccp.receive_stateful)
        if self.encryptor is None and self.config.mppe.required:
            self._close_lcp(now, "MPPE required but not agreed for our sending direction")
            return
        receive = logtext.mppe_method(ccp.receive_bits, ccp.receive_stateful) if ccp.receive_bits is not None else None
        send = logtext.mppe_method(ccp.send_bits, ccp.send_stateful) if ccp.send_bits is not None else None
        if receive is not None and send is not None and receive != send:
            self.mppe_name = f"{receive} / {send}"  # pppd's form when the directions differ
        else:
            self.mppe_name = send or receive or ""
        self._log("notice", logtext.compression_enabled(receive, send))
        if self._tracer is not None:  # the keys' lengths and modes, never their bytes
            data = {"send_bits": ccp.send_bits, "send_stateful": ccp.send_stateful if ccp.send_bits else None}
            data |= {"receive_bits": ccp.receive_bits}
            data["receive_stateful"] = ccp.receive_stateful if ccp.receive_bits else None
            self._tracer.event(now, "mppe", "keys-derived", data)
        ipcp = self.ncps.get(Protocol.IPCP)
        if ipcp is not None and self._ipcp_peer_waiting:
            # pppd starts IPCP only once CCP is up, so it answered our first request with a
            # Terminate-Ack: ask again at once instead of after a whole restart period
            self._ipcp_peer_waiting = False
            ipcp.automaton.retransmit_now(now)

    def _ccp_restarted(self, now: float) -> None:
        """CCP left Opened while MPPE was on (the peer's new Configure-Request, Terminate-Request or
        -Ack, Code-Reject or Protocol-Reject): end the link, as pppd does ("MPPE disabled").  A new CCP
        would build new codecs from the same MS-CHAP keys at coherency count 0 (RFC 3078, RFC 3079):
        the same keystream for our next packets, and the peer's earlier packets decrypting again; and
        with optional MPPE, IP would carry on in clear.  Only a new LCP session keys MPPE afresh.  Not
        a restart: Windows' retransmission of the request we Acked (re-Acked, ``keep_open_on_repeat``)
        and the Reset-Request/Reset-Ack of stateful MPPE."""
        reason = "CCP went down while MPPE was on"
        self._log("warning", f"{reason}: ending the link (MPPE restarted on the same keys would reuse its keystream)")
        self._network_down(reason)
        self._close_lcp(now, reason, log=False)

    def _mppe_off(self) -> None:
        if self._tracer is not None and (self.encryptor is not None or self.decryptor is not None):
            data = {"send_key_changes": getattr(self.encryptor, "key_changes", None)}
            data["receive_key_changes"] = getattr(self.decryptor, "key_changes", None)
            self._tracer.event(self._now, "mppe", "off", data)
        self.encryptor = self.decryptor = None
        self.mppe_keys = None
        self._reset_deadline = None
        self.mppe_name = ""

    def _maybe_network_up(self, now: float) -> None:
        """NetworkUp once IPCP is Opened and, when MPPE is required, the codecs exist."""
        if not self._ipcp_opened or self.network_up is not None or self.phase is not Phase.NETWORK:
            return
        if self.config.mppe.required and self.encryptor is None:
            return
        ncp = self.ncps.get(Protocol.IPCP)
        if ncp is not None:
            self._ipcp_up(ncp, now)

    def _ipcp_up(self, ncp: _Ncp, now: float) -> None:
        options = self.ipcp_options
        assert options is not None
        local, peer = options.local_address, options.peer_address
        if self.config.server and not options.peer_address_allowed():
            self._log("warning", logtext.peer_not_authorized(str(peer)))
            ncp.automaton.close(now)
            return
        if local is None or peer is None:
            self._log("warning", f"IPCP opened without addresses (local {local}, remote {peer})")
            ncp.automaton.close(now)
            return
        dns = options.config.dns if self.config.server else options.peer_dns
        wins = options.config.wins if self.config.server else options.peer_wins
        mtu = self.lcp_options.peer_mru - (MPPE_OVERHEAD if self.encryptor is not None else 0)
        self.network_up = NetworkUp(local, peer, tuple(dns), tuple(wins), mtu, self.mppe_name)
        self._network_was_up = True
        self._log("notice", logtext.local_ip(local))
        self._log("notice", logtext.remote_ip(peer))
        self._events.append(self.network_up)

    def _network_down(self, reason: str) -> None:
        if self.network_up is not None:
            self.network_up = None
            self._events.append(NetworkDown(reason))

    def _protocol_rejected(self, protocol: int, now: float) -> None:
        ncp = self.ncps.get(protocol)
        if ncp is None:  # nothing to stop: a peer may send any number of these
            message = f"the peer Protocol-Rejected {_protocol_name(protocol)}, which we do not run"
            self._notice("info", message, kind="Protocol-Reject for a protocol we do not run")
            return
        self._log("info", f"the peer Protocol-Rejected {_protocol_name(protocol)}")
        ncp.automaton.protocol_rejected(now)

    # -- LCP keepalive (pppd lcp-echo-interval / lcp-echo-failure) ---------------------------------

    def _echo_timer(self, now: float) -> None:
        config = self.config
        if config.echo_failure and self._echo_pending >= config.echo_failure:
            self._echo_deadline = None
            self._log("info", logtext.echo_failure(self._echo_pending))
            self._log("notice", logtext.link_disconnected())  # pppd's LcpLinkFailure, word for word
            self._close_lcp(now, "Peer not responding")
            return
        self._echo_pending += 1
        self._send_lcp_extra(Code.ECHO_REQUEST, self.lcp_options.our_magic.to_bytes(4, "big"))
        self._echo_deadline = now + config.echo_interval

    def _echo_reply(self, packet: ControlPacket) -> None:
        if len(packet.data) < 4:
            return
        magic = int.from_bytes(packet.data[:4], "big")
        if magic and magic == self.lcp_options.our_magic:
            self._notice("warning", "received our own Echo-Reply: the line may be looped back")
            return
        self._echo_pending = 0

    # -- helpers ----------------------------------------------------------------------------------

    def _close_lcp(self, now: float, reason: str, *, log: bool = True) -> None:
        self.close_reason = self.close_reason or reason
        self.setup_deadline = None  # LCP's Max-Terminate bounds what is left
        if log:
            self._log("notice", f"closing the link: {reason}")
        self.lcp.close(now)
        if self.phase is not Phase.DEAD:
            self._set_phase(Phase.TERMINATE)

    def _send_lcp_extra(self, code: int, data: bytes) -> None:
        self._extra_id = (self._extra_id + 1) & 0xFF
        self._queue(Protocol.LCP, ControlPacket(code, self._extra_id, data).encode())

    def _queue(self, protocol: int, information: bytes) -> None:
        """A control packet to send (its ``sent [...]`` line first, when packets are logged)."""
        if self._tracer is not None:
            self._tracer.event(self._now, "ppp", "sent", packet_data(protocol, information))
        if self.log_packets is not None and self.log_packets():
            self._packet_line("sent", protocol, information)
        self._frames.append(self._encode(protocol, information))

    def _packet_line(self, direction: str, protocol: int, information: bytes | memoryview) -> None:
        """pppd's ``sent [...]``/``rcvd [...]`` line, within :data:`PACKET_LINE_RATE`.  As pppd at debug level
        1, LCP Echo-Requests and -Replies are not shown once a network protocol has been up."""
        echo = protocol == Protocol.LCP and len(information) >= 4 and information[0] in (9, 10)
        if echo and self._network_was_up and 4 <= int.from_bytes(information[2:4], "big") <= len(information):
            return
        now = self._now
        tokens = min(float(PACKET_LINE_BURST), self._line_tokens + (now - self._line_stamp) * PACKET_LINE_RATE)
        self._line_stamp = now
        if tokens < 1.0:
            self._line_tokens = tokens
            self._lines_suppressed += 1
            return
        self._line_tokens = tokens - 1.0
        if self._lines_suppressed:
            count, self._lines_suppressed = self._lines_suppressed, 0
            self._log("debug", f"{count} packet line(s) not logged: more than {PACKET_LINE_RATE:g} a second")
        self._log("debug", f"{direction} {format_packet(protocol, information)}")

    def _decode(self, protocol: int, information: memoryview) -> ControlPacket | None:
        try:
            return decode_packet(information)
        except PacketError as exc:
            self._log("debug", f"discarded {_protocol_name(protocol)} packet: {exc}")
            return None

    def _encode(self, protocol: int, information: bytes) -> bytes:
        options = self.lcp_options
        opened = self.lcp.state is State.OPENED
        return encode_frame(protocol, information, acfc=opened and options.peer_acfc, pfc=opened and options.peer_pfc)

    def _set_phase(self, phase: Phase) -> None:
        if phase is not self.phase:
            if self._tracer is not None:
                self._tracer.event(self._now, "phase", "change", {"old": self.phase.name, "new": phase.name})
            self.phase = phase
            self._events.append(PhaseChanged(phase))

    def _drop(self, reason: str, message: str) -> None:
        """Count a dropped data packet; log each reason once per link (no log flood on the data path)."""
        self.counters[reason] += 1
        if reason not in self._logged_drops:
            self._logged_drops.add(reason)
            self._log("warning", f"{message}; dropped (further drops are only counted)")

    def _notice(self, level: str, message: str, kind: str = "") -> None:
        """A notice the peer can repeat at will (a discarded authentication packet, an Echo-Reply with our
        magic, a Protocol-Reject): logged the first time its kind (the message without its numbers) is
        seen on this link, then only counted; the counts are summed up in one line when the link ends
        (:meth:`take_notice_summary`)."""
        kind = kind or _NUMBERS.sub("#", message)
        if kind not in self._repeats:
            if len(self._repeats) >= _MAX_NOTICE_KINDS:
                kind = "other peer-driven notices"
                self._repeats.setdefault(kind, 0)
            else:
                self._repeats[kind] = 0
                self._log(level, message)
                return
        self._repeats[kind] += 1

    def take_notice_summary(self) -> str | None:
        """One line with the counts of the peer-driven notices repeated (and not logged) since the last
        summary, or None; logged by the link when it dies of itself, taken by the owner after
        :meth:`lower_down`."""
        if self._lines_suppressed:
            self._repeats["debug packet lines beyond the rate"] = self._lines_suppressed
            self._lines_suppressed = 0
        repeated = sorted(((count, kind) for kind, count in self._repeats.items() if count), reverse=True)
        self._repeats.clear()
        if not repeated:
            return None
        listed = "; ".join(f"{kind}: {count}" for count, kind in repeated[:8])
        more = f"; and {len(repeated) - 8} more kinds" if len(repeated) > 8 else ""
        return f"repeated on this link and counted, not logged: {listed}{more}"

    def _log(self, level: str, message: str) -> None:
        self._events.append(LinkLog(level, message))


_Handler = Callable[[PppLink, int, memoryview, float], None]


@functools.cache
def _protocol_table(ipv6: bool, mppe: bool) -> Mapping[int, tuple[Phase, _Handler]]:
    """:attr:`PppLink.table` for a link configuration: the same read-only mapping for every link of that
    shape, with the handlers unbound (a per-link dictionary of bound methods was a reference cycle per
    link, and a dictionary per session)."""
    table: dict[int, tuple[Phase, _Handler]] = {
        Protocol.LCP: (Phase.ESTABLISH, PppLink._on_lcp),
        Protocol.PAP: (Phase.AUTHENTICATE, PppLink._on_auth),
        Protocol.CHAP: (Phase.AUTHENTICATE, PppLink._on_auth),
        Protocol.IPCP: (Phase.NETWORK, PppLink._on_ncp),
        Protocol.IPV4: (Phase.NETWORK, PppLink._on_data),
    }
    if ipv6:
        table[Protocol.IPV6CP] = (Phase.NETWORK, PppLink._on_ncp)
        table[Protocol.IPV6] = (Phase.NETWORK, PppLink._on_data)
    if mppe:
        table[Protocol.CCP] = (Phase.NETWORK, PppLink._on_ncp)
        table[Protocol.COMPRESSED] = (Phase.NETWORK, PppLink._on_encrypted)
    return types.MappingProxyType(table)


class _NoSecrets:
    """Used when a server link was given no secrets: nobody can authenticate."""

    def lookup(self, client: str, server: str) -> None:
        return None


def _succeeded(auth: AuthMethod) -> bool:
    return auth.result is not None and auth.result.success


def _protocol_name(protocol: int) -> str:
    return PROTOCOL_NAMES.get(protocol, f"protocol 0x{protocol:04X}")
