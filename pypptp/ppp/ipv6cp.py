"""IPV6CP option handling (RFC 5072) for the shared automaton.

IPV6CP negotiates one option, 1 Interface-Identifier (RFC 5072 section
4.1): the 8 bytes that, after ``fe80::/64``, form each end's link-local
address.  Our tentative identifier is the configured one or a random one
with the universal/local bit (``0x02`` of the first byte) clear and not
zero, drawn afresh for each negotiation as pppd's ``ipv6cp_resetci`` does.

The peer's identifier is compared with the one in our last
Configure-Request (section 4.1):

=========================  ===================================================
peer's vs ours             reply
=========================  ===================================================
different, peer's is 0     Nak with a fresh non-zero identifier, not ours
different, both non-zero   Ack
equal, non-zero            Nak with a fresh non-zero identifier, not ours
both zero                  Reject (no unique identifier can be negotiated)
=========================  ===================================================

After Max-Failure Naks the Naks become Rejects (RFC 1661 section 4.6).

A Nak we receive: a suggestion different from the identifier we last
suggested to the peer is adopted; one equal to it (or zero) means the two
ends keep colliding, so we draw a new identifier of our own.  After a
Reject we stop sending the option (section 4.1: "MUST NOT contain").
Option 2 (IPv6-Compression-Protocol, gone from RFC 5072) and unknown
options are Rejected.  IPV6CP has codes 1-7 only (section 3).

A server that does not offer IPv6 does not run this handler at all: LCP
Protocol-Rejects 0x8057 (what accel-ppp does with Windows 10, and what the
lab's pptp-linux client meets).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable

from pypptp.ppp.fsm import Options, Verdict
from pypptp.ppp.packet import ControlPacket

__all__ = ["Ipv6cpConfig", "Ipv6cpOptions"]

INTERFACE_ID = 1
ID_SIZE = 8
UNIVERSAL_LOCAL_BIT = 0x02  # of the first byte (RFC 4291 appendix A); 0 = locally chosen
_ZERO_ID = bytes(ID_SIZE)
_MAX_DRAWS = 64  # a random source that keeps failing this long is broken


@dataclasses.dataclass(frozen=True)
class Ipv6cpConfig:
    """What we ask for."""

    interface_id: bytes | None = None
    """Our identifier (8 bytes); None: a random one.  All zeros asks the peer to supply one."""
    use_ipaddr: bool = False
    """pppd's ``ipv6cp-use-ipaddr``: the identifier is our IPv4 address (the link fills it in once IPCP's
    local address is known, which may be only after authentication)."""

    def __post_init__(self) -> None:
        if self.interface_id is not None and len(self.interface_id) != ID_SIZE:
            raise ValueError(f"an Interface-Identifier has {ID_SIZE} bytes, not {len(self.interface_id)}")


class Ipv6cpOptions:
    """The IPV6CP :class:`~pypptp.ppp.fsm.OptionHandler`.

    Negotiated results, valid after This-Layer-Up: :attr:`local_id` and
    :attr:`peer_id`, 8 bytes each, all zeros when unknown.
    """

    def __init__(
        self, config: Ipv6cpConfig | None = None, *, random_bytes: Callable[[int], bytes] = os.urandom
    ) -> None:
        self.config = config or Ipv6cpConfig()
        self._random_bytes = random_bytes
        self.local_id = _ZERO_ID
        """Ours: as the peer acknowledged it, or our tentative one if the peer Rejected the option."""
        self.peer_id = _ZERO_ID
        """The peer's, as we acknowledged it; zeros if it did not send one."""
        self.reset()

    def reset(self) -> None:
        configured = self.config.interface_id
        self.our_id = configured if configured is not None else self._new_id()
        """The identifier of our next (or last) Configure-Request."""
        self.ask_id = True
        self._last_suggested: bytes | None = None  # the identifier in our last Nak to the peer

    def _new_id(self, *avoid: bytes) -> bytes:
        """A random non-zero identifier with the u/l bit clear (RFC 5072 section 4.1), not in ``avoid``."""
        for _ in range(_MAX_DRAWS):
            candidate = bytearray(self._random_bytes(ID_SIZE)[:ID_SIZE].ljust(ID_SIZE, b"\0"))
            candidate[0] &= ~UNIVERSAL_LOCAL_BIT & 0xFF
            value = bytes(candidate)
            if value != _ZERO_ID and value not in avoid:
                return value
        raise RuntimeError("the random source gave no usable Interface-Identifier")

    # -- our request ----------------------------------------------------------------------

    def build_request(self) -> Options:
        return [(INTERFACE_ID, self.our_id)] if self.ask_id else []

    def on_ack(self, options: Options) -> None:
        self.local_id = self.our_id

    def on_nak(self, options: Options) -> None:
        for kind, value in options:
            if kind != INTERFACE_ID or len(value) != ID_SIZE or not self.ask_id:
                continue
            if value != _ZERO_ID and value != self._last_suggested:
                self.our_id = value  # a unique identifier: use it (section 4.1)
            else:
                self.our_id = self._new_id(value, self.our_id)  # the ends collide: choose a new one

    def on_reject(self, options: Options) -> None:
        if any(kind == INTERFACE_ID for kind, _ in options):
            self.ask_id = False

    # -- the peer's request -------------------------------------------------------------------

    def judge_request(self, options: Options, converge: bool) -> tuple[Verdict, Options]:
        naks: Options = []
        rejects: Options = []
        peer_id = _ZERO_ID
        for kind, value in options:
            if kind != INTERFACE_ID or len(value) != ID_SIZE:
                rejects.append((kind, value))  # 2 IPv6-Compression-Protocol, unknown, wrong length
            elif value == _ZERO_ID and self.our_id == _ZERO_ID:
                rejects.append((kind, value))  # no unique identifier is possible
            elif value == _ZERO_ID or value == self.our_id:
                if converge:
                    rejects.append((kind, value))
                else:
                    self._last_suggested = self._new_id(self.our_id, value)
                    naks.append((INTERFACE_ID, self._last_suggested))
            else:
                peer_id = value
        if rejects:
            return Verdict.REJECT, rejects
        if naks:
            return Verdict.NAK, naks
        self.peer_id = peer_id
        return Verdict.ACK, options

    # -- no extra codes (RFC 5072 section 3) ------------------------------------------------------

    def extra_code(self, packet: ControlPacket) -> bool:
        return False

    def echo_reply(self, packet: ControlPacket) -> ControlPacket | None:
        return None
