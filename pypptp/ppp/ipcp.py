"""IPCP option handling (RFC 1332, RFC 1877) for the shared automaton.

What a PPTP server (or client) asks for and accepts, option by option:

* 3 IP-Address (RFC 1332 section 3.3): the server asks for its own end of
  the link (pptpd's ``localip``) and keeps it when Nak'd; it stops sending
  it when Rejected.  The peer's value is Acked when it equals the address
  assigned to the peer (pool or chap-secrets), and Nak'd with that address
  otherwise, 0.0.0.0 ("please tell me") included.  The server never Rejects
  option 3 while it has an address to give, not even after Max-Failure:
  a Reject would leave the client without an address (pppd then fails in
  ``ipcp_up``).  Instead, a peer that still refuses the assigned address
  after Max-Failure Naks sets :attr:`IpcpOptions.address_refused`, and the
  layer above closes IPCP (as it does for LCP's ``auth_refused``): the RFC
  1661 section 4.1 table re-initialises the restart counter on every Nak
  received, so nothing in the automaton itself ends such a loop.
* Omitted option 3 (RFC 1332 section 3.3: "If negotiation about the remote
  IP-address is required, and the peer did not provide the option in its
  Configure-Request, the option SHOULD be appended to a Configure-Nak"):
  done as pppd's ``ipcp_reqci`` does.  When the request is not being
  Rejected and the server has an address to give, IP-Address is appended to
  every Nak; a request that would have been Acked is Nak'd with IP-Address
  alone, once per negotiation.  If the peer still omits it, its request is
  Acked and the assigned address is used anyway (pppd's ``ipcp_up``).  After
  Max-Failure the hint is no longer sent.
* 129/131 Primary/Secondary DNS, 130/132 Primary/Secondary NBNS (RFC 1877
  section 1): Nak'd with the configured server (``ms-dns``/``ms-wins``),
  Acked when the value already equals it, Rejected when that server is not
  configured.  Windows asks for all four with 0.0.0.0 (spec ipcp.md section
  3.1, pppd and accel-ppp logs); pptp-linux asks for the DNS pair only with
  ``usepeerdns``.
* Rejected: 2 IP-Compression-Protocol (we have no VJ; pptp-linux asks for
  ``02 06 00 2d 0f 01`` unless ``novj``, lab README item 8), 1 IP-Addresses
  (deprecated, RFC 1332 section 3.1), every unknown option, and a known
  option of the wrong length.  The server never asks for VJ itself.

A Reject takes precedence over a Nak (RFC 1661 section 5.4): when something
is Rejected, only the Rejects are sent, so Windows gets its WINS options
Rejected in one round and its address Nak'd in the next.

A client asks for IP-Address 0.0.0.0 (or its configured address), on
request for the name servers with 0.0.0.0, and, to imitate pptp-linux in
interop tests, for VJ ``02 06 00 2d 0f 01`` (dropped when Nak'd or
Rejected).  It adopts what a Nak suggests unless the value is 0.0.0.0,
loopback, multicast or class E.  It Acks the server's own non-zero address
and Rejects everything else.

IPCP has codes 1-7 only (RFC 1332 section 2): anything else is Code-Rejected
by the automaton.
"""

from __future__ import annotations

import dataclasses
from ipaddress import IPv4Address

from pypptp.ppp.fsm import Options, Verdict
from pypptp.ppp.packet import ControlPacket
from pypptp.ppp.secrets import AddressPolicy

__all__ = ["IpcpConfig", "IpcpOptions"]

ADDRS, COMPRESS, ADDR = 1, 2, 3  # pppd's CI_ADDRS, CI_COMPRESSTYPE, CI_ADDR
DNS1, WINS1, DNS2, WINS2 = 129, 130, 131, 132  # pppd's CI_MS_DNS1, CI_MS_WINS1, CI_MS_DNS2, CI_MS_WINS2
ADDRESS_SIZE = 4
VJ_REQUEST = bytes.fromhex("002d0f01")  # pppd's <compress VJ 0f 01> (RFC 1332 section 4.1)

_NAME_SERVERS = (DNS1, WINS1, DNS2, WINS2)  # the order Windows sends them in
_ZERO = IPv4Address(0)


def _usable(address: IPv4Address) -> bool:
    """Not 0.0.0.0, loopback, multicast or class E (pppd's ``bad_ip_adrs``)."""
    return not (address.is_unspecified or address.is_loopback or address.is_multicast or address.is_reserved)


@dataclasses.dataclass(frozen=True)
class IpcpConfig:
    """What we ask for and accept."""

    server: bool = True
    local_address: IPv4Address | None = None
    """Our end of the link.  Server: pptpd's ``localip``; None: do not send IP-Address.
    Client: the address to ask for; None: ask the server for one (0.0.0.0)."""
    peer_address: IPv4Address | None = None
    """Server: the address assigned to the peer (pool or chap-secrets).  Ignored by a client."""
    dns: tuple[IPv4Address, ...] = ()
    """Server: ``ms-dns``, at most 2 (primary 129, secondary 131)."""
    wins: tuple[IPv4Address, ...] = ()
    """Server: ``ms-wins``, at most 2 (primary 130, secondary 132)."""
    request_dns: bool = False
    """Client: ask for DNS servers, 129 and 131 (pppd's ``usepeerdns``)."""
    allowed: AddressPolicy | None = None
    """Server: the addresses the peer may use (its chap-secrets record); None: any usable one."""
    request_wins: bool = False
    """Client: ask for NBNS servers too, 130 and 132 (Windows does)."""
    unit: int = 0
    """The ppp unit number, for ``a.b.c.d/n+`` entries of :attr:`allowed`."""
    request_vj: bool = False
    """Client: ask for VJ compression as pppd does without ``novj`` (pptp-linux), to test how a
    server refuses it.  pypptp has no VJ: a peer that Acks it would send packets we cannot read."""

    def __post_init__(self) -> None:
        # accept strings too ("192.168.0.1"): a library user should not have to build IPv4Address objects
        for name in ("local_address", "peer_address"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, IPv4Address):
                object.__setattr__(self, name, IPv4Address(value))
        for name in ("dns", "wins"):
            object.__setattr__(self, name, tuple(IPv4Address(a) for a in getattr(self, name)))
        if len(self.dns) > 2 or len(self.wins) > 2:
            raise ValueError("IPCP carries at most two DNS and two NBNS servers (RFC 1877 section 1)")


class IpcpOptions:
    """The IPCP :class:`~pypptp.ppp.fsm.OptionHandler`.

    Negotiated results, valid after This-Layer-Up: :attr:`local_address`,
    :attr:`peer_address`, :attr:`peer_dns`, :attr:`peer_wins`.
    """

    def __init__(self, config: IpcpConfig) -> None:
        self.config = config
        self.local_address: IPv4Address | None = None
        """Ours as the peer acknowledged it (a client: the address the server gave us)."""
        self.peer_address: IPv4Address | None = None
        """The peer's: a server's is the one it assigned; a client's is the server's own address."""
        self.peer_dns: tuple[IPv4Address, ...] = ()
        """The DNS servers the peer acknowledged in our request (a client's view of the server's)."""
        self.peer_wins: tuple[IPv4Address, ...] = ()
        self.reset()

    def reset(self) -> None:
        cfg = self.config
        self.our_address: IPv4Address | None = cfg.local_address
        if not cfg.server and self.our_address is None:
            self.our_address = _ZERO  # "please tell me" (RFC 1332 section 3.3)
        wanted = set()
        if not cfg.server and cfg.request_dns:
            wanted |= {DNS1, DNS2}
        if not cfg.server and cfg.request_wins:
            wanted |= {WINS1, WINS2}
        self.name_servers: dict[int, IPv4Address] = {kind: _ZERO for kind in _NAME_SERVERS if kind in wanted}
        """The name-server options we ask for, with the value we ask with."""
        self.ask_vj = cfg.request_vj and not cfg.server
        self.address_refused = False
        """The peer still wants an address other than the assigned one after Max-Failure Naks."""
        self._hint_address = True  # pppd's wo->req_addr: Nak an omitted IP-Address once

    def peer_address_allowed(self) -> bool:
        """Whether the peer may use the negotiated address (pppd's ``auth_ip_addr``).

        No address at all is not allowed (pppd: "Could not determine remote IP address")."""
        address = self.peer_address
        if address is None:
            return False
        if self.config.allowed is None:
            return _usable(address)
        return self.config.allowed.allows(address, self.config.unit)

    # -- our request ----------------------------------------------------------------------

    def build_request(self) -> Options:
        options: Options = [(COMPRESS, VJ_REQUEST)] if self.ask_vj else []
        if self.our_address is not None:
            options.append((ADDR, self.our_address.packed))
        options += [(kind, address.packed) for kind, address in self.name_servers.items()]
        return options

    def on_ack(self, options: Options) -> None:
        """Record what the peer agreed to: our address and the name servers it gave us."""
        values = {kind: IPv4Address(value) for kind, value in options if len(value) == ADDRESS_SIZE}
        address = values.get(ADDR)
        self.local_address = address if address is not None and not address.is_unspecified else None
        self.peer_dns = tuple(values[k] for k in (DNS1, DNS2) if k in values and not values[k].is_unspecified)
        self.peer_wins = tuple(values[k] for k in (WINS1, WINS2) if k in values and not values[k].is_unspecified)

    def on_nak(self, options: Options) -> None:
        for kind, value in options:
            if kind == COMPRESS:
                self.ask_vj = False  # VJ with other parameters, or another protocol: we have neither
                continue
            if len(value) != ADDRESS_SIZE:
                continue
            address = IPv4Address(value)
            if not _usable(address):
                continue  # a Nak of 0.0.0.0, loopback or multicast suggests nothing we could use
            if kind == ADDR and not self.config.server:
                self.our_address = address  # the server assigns our address (RFC 1332 section 3.3)
            elif kind in self.name_servers:
                self.name_servers[kind] = address  # RFC 1877 section 1
            # a server keeps its own address; the peer's counters turn its Naks into a Reject

    def on_reject(self, options: Options) -> None:
        for kind, _ in options:
            if kind == ADDR:
                self.our_address = None
            elif kind == COMPRESS:
                self.ask_vj = False
            else:
                self.name_servers.pop(kind, None)

    # -- the peer's request -------------------------------------------------------------------

    def judge_request(self, options: Options, converge: bool) -> tuple[Verdict, Options]:
        if self.config.server:
            return self._judge_as_server(options, converge)
        return self._judge_as_client(options)

    def _judge_as_server(self, options: Options, converge: bool) -> tuple[Verdict, Options]:
        cfg = self.config
        naks: Options = []
        rejects: Options = []
        peer_address = cfg.peer_address  # used as well when the peer does not send option 3
        sent_address = False
        for kind, value in options:
            if kind == ADDR and len(value) == ADDRESS_SIZE:
                sent_address = True
                address = IPv4Address(value)
                if cfg.peer_address is None:
                    # Nothing to give: a usable, allowed address is Acked; 0.0.0.0 or a refused
                    # one is Rejected, since a Nak would have no value to carry (pppd's ipcp_reqci).
                    if _usable(address) and (cfg.allowed is None or cfg.allowed.allows(address, cfg.unit)):
                        peer_address = address
                    else:
                        rejects.append((kind, value))
                elif address != cfg.peer_address:
                    naks.append((ADDR, cfg.peer_address.packed))  # even after Max-Failure
                    self.address_refused = self.address_refused or converge
            elif kind in _NAME_SERVERS and len(value) == ADDRESS_SIZE:
                offered = self._name_server(kind)
                if offered is None or (converge and value != offered.packed):
                    rejects.append((kind, value))  # not configured, or still disputed after Max-Failure
                elif value != offered.packed:
                    naks.append((kind, offered.packed))
            else:
                rejects.append((kind, value))  # 1 IP-Addresses, 2 VJ, unknown, wrong length
        if rejects:
            return Verdict.REJECT, rejects
        if not sent_address and cfg.peer_address is not None and self._hint_address and not converge:
            if not naks:
                self._hint_address = False  # turning an Ack into a Nak: once per negotiation
            naks.append((ADDR, cfg.peer_address.packed))  # RFC 1332 section 3.3
        if naks:
            return Verdict.NAK, naks
        self.peer_address = peer_address
        return Verdict.ACK, options

    def _name_server(self, kind: int) -> IPv4Address | None:
        servers = self.config.dns if kind in (DNS1, DNS2) else self.config.wins
        index = 0 if kind in (DNS1, WINS1) else 1
        return servers[index] if index < len(servers) else None

    def _judge_as_client(self, options: Options) -> tuple[Verdict, Options]:
        rejects: Options = []
        peer_address: IPv4Address | None = None
        for kind, value in options:
            if kind == ADDR and len(value) == ADDRESS_SIZE and value != _ZERO.packed:
                peer_address = IPv4Address(value)  # the server's own end of the link
            else:
                rejects.append((kind, value))  # 0.0.0.0: we have no address to give the server; VJ...
        if rejects:
            return Verdict.REJECT, rejects
        self.peer_address = peer_address
        return Verdict.ACK, options

    # -- no extra codes (RFC 1332 section 2) ------------------------------------------------------

    def extra_code(self, packet: ControlPacket) -> bool:
        return False

    def echo_reply(self, packet: ControlPacket) -> ControlPacket | None:
        return None
