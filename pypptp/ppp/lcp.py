"""LCP option handling (RFC 1661 section 6, RFC 1570, RFC 1990) for the shared automaton.

What a PPTP server (or client) asks for and accepts, option by option:

* 1 MRU: we ask for ours unless it is the default 1500; the peer's is Acked
  from 128 up (pppd's floor), otherwise Nak'd to 128.
* 2 ACCM: Acked (escaping does not exist on GRE).
* 3 Authentication-Protocol: the server asks for the configured method
  (MS-CHAPv2 ``c223 81`` by default) and follows a Nak to another method
  if that one is allowed.  A Nak toward a method we refuse is answered as
  pppd's ``lcp_nakci`` does: we ask for our next allowed method, and with
  none left stop asking (:attr:`LcpOptions.auth_refused`); LCP then opens
  without authentication and the link, which requires it, terminates with
  "peer refused to authenticate" (pppd's ``link_established``).  Following
  the peer for ever instead made the server resend Configure-Requests at
  wire speed.  The server Rejects a peer that asks *it* to authenticate.
  A client Acks an allowed method and Naks others with its first choice.
* 5 Magic-Number: ours is random and non-zero; the peer's is Nak'd when it
  is 0 or equals ours (loop-back, section 6.4).
* 7 PFC, 8 ACFC: asked for by us, Acked for the peer.
* Rejected, with the evidence: 13 Callback (Windows sends ``0d 03 06``,
  CBCP), 17 MRRU and 19 Endpoint Discriminator (Windows with multilink
  enabled), 23 Link Discriminator (Windows RRAS), 4 Quality-Protocol and
  every option we do not know.

Echo-Request gets an Echo-Reply carrying our Magic-Number; Discard-Request,
Identification (Windows sends "MSRASV5.20" and its computer name) and
Time-Remaining are accepted silently; Protocol-Reject goes to the automaton
as RXJ.
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Callable

from pypptp.ppp.fsm import Options, Verdict
from pypptp.ppp.packet import Code, ControlPacket

__all__ = ["AUTH_CHAP_MD5", "AUTH_MSCHAP_V1", "AUTH_MSCHAP_V2", "AUTH_PAP", "LcpConfig", "LcpOptions"]

MRU, ACCM, AUTH, QUALITY, MAGIC, PFC, ACFC = 1, 2, 3, 4, 5, 7, 8
MIN_MRU = 128
DEFAULT_MRU = 1500

AUTH_PAP = b"\xc0\x23"
AUTH_CHAP_MD5 = b"\xc2\x23\x05"
AUTH_MSCHAP_V1 = b"\xc2\x23\x80"
AUTH_MSCHAP_V2 = b"\xc2\x23\x81"

_LCP_EXTRA_CODES = frozenset(
    {Code.PROTOCOL_REJECT, Code.ECHO_REQUEST, Code.ECHO_REPLY, Code.DISCARD_REQUEST}
    | {Code.IDENTIFICATION, Code.TIME_REMAINING}
)


@dataclasses.dataclass(frozen=True)
class LcpConfig:
    """What we ask for and accept."""

    server: bool = True
    mru: int = DEFAULT_MRU
    auth_methods: tuple[bytes, ...] = (AUTH_MSCHAP_V2,)
    """Allowed methods, preferred first; empty for ``noauth``."""
    pfc: bool = True
    acfc: bool = True
    accm: int | None = None
    """Ask for this Async-Control-Character-Map (pptp-linux asks for 0); None: do not."""
    extra: tuple[tuple[int, bytes], ...] = ()
    """Further options to request as given, dropped when Rejected (a client imitating Windows
    asks for Callback ``(13, b"\\x06")``, MRRU, an Endpoint Discriminator)."""


class LcpOptions:
    """The LCP :class:`~pypptp.ppp.fsm.OptionHandler`."""

    def __init__(self, config: LcpConfig | None = None, *, random32: Callable[[], int] | None = None) -> None:
        self.config = config or LcpConfig()
        self._random32 = random32 or (lambda: secrets.randbits(32))
        self.peer_mru = DEFAULT_MRU
        self.peer_magic = 0
        self.peer_pfc = self.peer_acfc = False
        self.peer_auth: bytes | None = None  # what the peer (a server) wants us to use
        self.reset()

    # -- negotiated results -------------------------------------------------------------

    def reset(self) -> None:
        cfg = self.config
        self.our_mru = cfg.mru
        self.our_auth: bytes | None = cfg.auth_methods[0] if cfg.server and cfg.auth_methods else None
        self.our_magic = self._new_magic()
        self.ask_pfc, self.ask_acfc = cfg.pfc, cfg.acfc
        self.ask_accm = cfg.accm
        self.extra = list(cfg.extra)
        self.auth_refused = False
        self.loopback_suspected = False

    def _new_magic(self) -> int:
        while True:
            value = self._random32() & 0xFFFFFFFF
            if value:
                return value

    # -- our request ----------------------------------------------------------------------

    def build_request(self) -> Options:
        options: Options = []
        if self.our_mru != DEFAULT_MRU:
            options.append((MRU, self.our_mru.to_bytes(2, "big")))
        if self.ask_accm is not None:
            options.append((ACCM, self.ask_accm.to_bytes(4, "big")))
        if self.our_auth is not None:
            options.append((AUTH, self.our_auth))
        if self.our_magic:
            options.append((MAGIC, self.our_magic.to_bytes(4, "big")))
        if self.ask_pfc:
            options.append((PFC, b""))
        if self.ask_acfc:
            options.append((ACFC, b""))
        options.extend(self.extra)
        return options

    def on_ack(self, options: Options) -> None:
        """Nothing to adopt: an Ack repeats our request."""

    def on_nak(self, options: Options) -> None:
        for kind, value in options:
            if kind == MRU and len(value) == 2:
                self.our_mru = max(MIN_MRU, min(int.from_bytes(value, "big"), self.config.mru))
            elif kind == MAGIC:
                self.our_magic = self._new_magic()  # a fresh value breaks a possible loop
            elif kind == AUTH and self.our_auth is not None:
                self._auth_nakked(value)
            elif kind == PFC:
                self.ask_pfc = False
            elif kind == ACFC:
                self.ask_acfc = False
            elif kind == ACCM and len(value) == 4:
                self.ask_accm = int.from_bytes(value, "big")

    def _auth_nakked(self, suggested: bytes) -> None:
        """pppd's ``lcp_nakci``: follow a suggestion we allow; otherwise ask for our next allowed method,
        and with none left stop asking (the link then ends, since it requires authentication)."""
        allowed = self.config.auth_methods
        if suggested == self.our_auth:
            return  # our own method suggested back: nothing to follow (pppd calls it a bad Nak)
        if suggested in allowed:
            self.our_auth = suggested  # Windows 10 Naks PAP/CHAP/MS-CHAPv1 with MS-CHAPv2
            return
        position = allowed.index(self.our_auth) if self.our_auth in allowed else len(allowed)
        following = allowed[position + 1 :]
        self.our_auth = following[0] if following else None
        if self.our_auth is None:
            self.auth_refused = True  # the peer wants only methods we refuse

    def on_reject(self, options: Options) -> None:
        for kind, _ in options:
            if kind == MRU:
                self.our_mru = DEFAULT_MRU
            elif kind == AUTH:
                self.our_auth = None
                self.auth_refused = True  # the server needs authentication: the layer above closes
            elif kind == MAGIC:
                self.our_magic = 0  # the peer does not use magic numbers
            elif kind == PFC:
                self.ask_pfc = False
            elif kind == ACFC:
                self.ask_acfc = False
            elif kind == ACCM:
                self.ask_accm = None
            self.extra = [option for option in self.extra if option[0] != kind]

    # -- the peer's request -------------------------------------------------------------------

    def judge_request(self, options: Options, converge: bool) -> tuple[Verdict, Options]:
        naks: Options = []
        nakked: Options = []  # the peer's own options behind each Nak: Rejected as sent under ``converge``
        rejects: Options = []
        peer_mru, peer_magic, peer_pfc, peer_acfc = DEFAULT_MRU, 0, False, False
        peer_auth: bytes | None = None
        for kind, value in options:
            if kind == MRU and len(value) == 2:
                mru = int.from_bytes(value, "big")
                if mru < MIN_MRU:
                    naks.append((MRU, MIN_MRU.to_bytes(2, "big")))
                    nakked.append((kind, value))
                peer_mru = mru
            elif kind == ACCM and len(value) == 4:
                pass
            elif kind == MAGIC and len(value) == 4:
                magic = int.from_bytes(value, "big")
                if magic == 0 or (magic == self.our_magic and self.our_magic):
                    self.loopback_suspected = magic != 0
                    if not converge:
                        naks.append((MAGIC, self._new_magic().to_bytes(4, "big")))
                peer_magic = magic
            elif kind == PFC and not value:
                peer_pfc = True
            elif kind == ACFC and not value:
                peer_acfc = True
            elif kind == AUTH and not self.config.server and len(value) >= 2:
                if value in self.config.auth_methods:
                    peer_auth = value
                elif self.config.auth_methods:
                    naks.append((AUTH, self.config.auth_methods[0]))
                    nakked.append((kind, value))
                else:
                    rejects.append((kind, value))
            elif kind in (MRU, MAGIC) and not converge:  # known option, wrong length: suggest a good one
                naks.append((MRU, MIN_MRU.to_bytes(2, "big")) if kind == MRU else (MAGIC, b"\x00\x00\x00\x01"))
                nakked.append((kind, value))
            else:
                rejects.append((kind, value))  # callback, MRRU, discriminators, quality, unknown...
        if converge:  # RFC 1661 section 5.4: a Reject carries the peer's options unmodified, in its order
            rejects = [option for option in options if option in rejects or option in nakked]
            naks = []
        if rejects:
            return Verdict.REJECT, rejects
        if naks:
            return Verdict.NAK, naks
        self.peer_mru, self.peer_magic = peer_mru, peer_magic
        self.peer_pfc, self.peer_acfc, self.peer_auth = peer_pfc, peer_acfc, peer_auth
        return Verdict.ACK, options

    # -- LCP's extra codes ------------------------------------------------------------------

    def extra_code(self, packet: ControlPacket) -> bool:
        return packet.code in _LCP_EXTRA_CODES

    def echo_reply(self, packet: ControlPacket) -> ControlPacket | None:
        """Echo-Request -> Echo-Reply with our Magic-Number (section 5.8); others need no answer."""
        if packet.code != Code.ECHO_REQUEST or len(packet.data) < 4:
            return None
        their_magic = int.from_bytes(packet.data[:4], "big")
        if self.our_magic and their_magic == self.our_magic:
            self.loopback_suspected = True
        return ControlPacket(Code.ECHO_REPLY, packet.identifier, self.our_magic.to_bytes(4, "big") + packet.data[4:])
