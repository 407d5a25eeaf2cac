"""CCP option handling (RFC 1962) for MPPE only (RFC 3078 section 2), for the shared automaton.

CCP is symmetric: each side's Configure-Request lists what it can
*decompress*, so what we Ack in the peer's request is how we send, and what
the peer Acks in ours is how we receive (RFC 1962 section 2).  The two
directions are negotiated separately and may differ.

Option 18 carries 4 Supported Bits (ccp-mppe.md section 2, as 32-bit values):
H 0x01000000 stateless, S 0x40 128-bit, M 0x80 56-bit, L 0x20 40-bit, C 0x01
MPPC compression, D 0x10 obsolete; every other bit is reserved.

* Our request: option 18 with one key-length bit, the strongest the policy
  allows, plus H unless the policy allows stateful mode (then we propose
  stateful and accept H back in a Nak).  Never C, never another CCP option.
  A Nak is followed when it names one allowed key length with an acceptable
  H bit.  After any other Nak, and after a Reject of option 18, we stop
  asking for MPPE; when MPPE is required :attr:`CcpOptions.failed` says why
  and the link terminates LCP (RFC 3078 section 2: "If MPPE negotiation
  fails the link SHOULD be terminated").
* The peer's request: every other option is Rejected (Deflate 26/24,
  BSD-Compress 21, Predictor, OUI... pppd clients offer ``bsd v1 15`` and
  ``deflate 15`` unless ``nobsdcomp nodeflate``), and so is option 18 of the
  wrong length; a Reject goes out alone (RFC 1661 section 5.4).  Option 18 is
  Acked when it holds exactly one allowed key-length bit, no C, D or reserved
  bit, and H (or no H when stateful mode is allowed).  Otherwise it is Nak'd
  with one key-length bit, the strongest we allow among those offered, else
  our strongest, plus H (RFC 3078 section 2.1).  Evidence from pppd logs
  (ccp-mppe.md section 2.1, spec README): Windows first offers
  ``01 00 00 E0`` (H+M+S+L), or ``E1`` with "software compression", gets the
  Nak ``01 00 00 40`` and comes back with exactly that; pptp-linux with
  ``require-mppe-128`` (lab README item 7) offers ``01 00 00 40`` at once.
* Giving up: when the peer, after our Nak, offers no key length we allow or
  still insists on stateful mode while we refuse it, or when Max-Failure
  Naks have been sent (``converge``), option 18 is Rejected and, if MPPE is
  required, :attr:`CcpOptions.failed` says why.  An identical repeat of the
  offer we Nak'd is taken as a retransmission (our Nak may have been lost on
  GRE) and Nak'd again; Max-Failure bounds that.  A peer whose request has
  no option 18 at all cannot decrypt: it is Acked (there is nothing to Nak
  or Reject) and, if MPPE is required, ``failed`` is set.

Reset-Request (14) and Reset-Ack (15) are CCP's extra codes (RFC 1962
section 3.1): in Opened a Reset-Request is answered with a Reset-Ack
carrying its Identifier; the link resets the MPPE sender itself.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from pypptp.ppp.fsm import Options, Verdict
from pypptp.ppp.packet import Code, ControlPacket

__all__ = [
    "C_BIT",
    "D_BIT",
    "H_BIT",
    "L_BIT",
    "MPPE",
    "MPPE_WORDS",
    "M_BIT",
    "S_BIT",
    "CcpOptions",
    "MppePolicy",
    "describe_mppe",
]

MPPE = 18
"""CCP option type of Microsoft PPC, carrying MPPE (RFC 1962 section 4, RFC 3078 section 2)."""

H_BIT, C_BIT, D_BIT, L_BIT, S_BIT, M_BIT = 0x01000000, 0x01, 0x10, 0x20, 0x40, 0x80
MPPE_VALUE_SIZE = 4

_BIT_OF_LENGTH = {128: S_BIT, 56: M_BIT, 40: L_BIT}  # strongest first (RFC 3078 section 2.1)
_LENGTH_OF_BIT = {bit: bits for bits, bit in _BIT_OF_LENGTH.items()}
_STRENGTH_MASK = S_BIT | M_BIT | L_BIT
_KNOWN_MASK = H_BIT | _STRENGTH_MASK | C_BIT | D_BIT
_RESET_CODES = frozenset({Code.RESET_REQUEST, Code.RESET_ACK})


def describe_mppe(value: int) -> str:
    """Supported Bits in pppd's log form, e.g. ``mppe +H -M +S -L -D -C`` for ``01 00 00 40``."""
    flags = ((H_BIT, "H"), (M_BIT, "M"), (S_BIT, "S"), (L_BIT, "L"), (D_BIT, "D"), (C_BIT, "C"))
    text = "mppe " + " ".join(("+" if value & bit else "-") + name for bit, name in flags)
    reserved = value & ~_KNOWN_MASK
    return f"{text} reserved=0x{reserved:08x}" if reserved else text


MPPE_WORDS: dict[str, tuple[str, int]] = {
    "require-mppe": ("require", 0),
    "+mppe": ("require", 0),
    "nomppe": ("off", 0),
    "-mppe": ("off", 0),
    "mppe-stateful": ("stateful", 1),
    "nomppe-stateful": ("stateful", 0),
    **{word: ("require", bits) for bits in _BIT_OF_LENGTH for word in (f"require-mppe-{bits}", f"+mppe-{bits}")},
    **{f"{w}-{bits}": ("refuse", bits) for bits in _BIT_OF_LENGTH for w in ("refuse-mppe", "nomppe", "-mppe")},
}
"""pppd's MPPE option words (pppd ccp.c, with its aliases) -> (what, key length): what is ``require``,
``refuse``, ``off`` or ``stateful`` (key length 1: allowed, 0: not); a key length of 0 otherwise means any.
56-bit words are pypptp's own: pppd and the Linux kernel have no 56-bit MPPE.  The options-file reader
(:mod:`pypptp.conf.pppd_options`) knows the words by it."""


@dataclasses.dataclass(frozen=True)
class MppePolicy:
    """pppd's MPPE options: ``require-mppe``, ``require-mppe-40``, ``require-mppe-128``,
    ``nomppe``, ``mppe-stateful`` / ``nomppe-stateful``, ``refuse-mppe-40`` /
    ``refuse-mppe-128`` (and 56).  The default is pptpd's ``require-mppe-128``, stateless.

    ``strengths`` is normalised to strongest first; a disabled policy is never required.
    """

    enabled: bool = True
    """False for ``nomppe``: we neither ask for nor accept option 18."""
    required: bool = True
    """The link terminates LCP when CCP cannot agree on MPPE."""
    strengths: tuple[int, ...] = (128,)
    """Allowed key lengths in bits, from {128, 56, 40}."""
    stateful: bool = False
    """``mppe-stateful``: stateful mode allowed, and proposed.  Default stateless only, like pppd."""

    def __post_init__(self) -> None:
        strengths = tuple(self.strengths)
        unknown = [bits for bits in strengths if bits not in _BIT_OF_LENGTH]
        if unknown:
            raise ValueError(f"MPPE key lengths are 128, 56 or 40 bits, not {unknown}")
        if len(set(strengths)) != len(strengths):
            raise ValueError(f"MPPE key lengths given twice: {strengths}")
        object.__setattr__(self, "strengths", tuple(sorted(strengths, reverse=True)))
        if not self.enabled:
            object.__setattr__(self, "required", False)
        elif not strengths:
            raise ValueError("MPPE is enabled but no key length is allowed")

    @classmethod
    def from_pppd_options(cls, words: Sequence[str]) -> MppePolicy:
        """The policy of pppd option words, e.g. ``["require-mppe-128", "mppe-stateful"]``.

        ``require-mppe`` allows 128, 56 and 40 bits; ``require-mppe-40/-56/-128`` narrow it
        to those named; ``refuse-mppe-N`` (``nomppe-N``, ``-mppe-N``) removes one; ``nomppe``
        disables MPPE.  Without any ``require-mppe*`` word the policy is pypptp's default,
        ``require-mppe-128``.  Words without "mppe" are other pppd options and are skipped.
        Contradictions raise :class:`ValueError`.
        """
        require_all: str | None = None
        required: dict[int, str] = {}
        refused: dict[int, str] = {}
        off: str | None = None
        stateful: dict[bool, str] = {}
        for word in words:
            if "mppe" not in word:
                continue
            what, bits = MPPE_WORDS.get(word, ("unknown", 0))
            if what == "unknown":
                raise ValueError(f"unknown MPPE option {word!r}")
            if what == "require" and not bits:
                require_all = word
            elif what == "require":
                required[bits] = word
            elif what == "refuse":
                refused[bits] = word
            elif what == "off":
                off = word
            else:
                stateful[bool(bits)] = word
        if len(stateful) == 2:
            raise ValueError(f"{stateful[True]!r} contradicts {stateful[False]!r}")
        allow_stateful = stateful.get(True) is not None
        requiring = [*([require_all] if require_all else []), *required.values()]
        if off is not None:
            if requiring:
                raise ValueError(f"{off!r} contradicts {requiring[0]!r}")
            return cls(enabled=False, required=False, stateful=allow_stateful)
        for bits, word in required.items():
            if bits in refused:
                raise ValueError(f"{word!r} contradicts {refused[bits]!r}")
        base = set(required) or (set(_BIT_OF_LENGTH) if require_all else set(cls.strengths))
        strengths = tuple(bits for bits in _BIT_OF_LENGTH if bits in base and bits not in refused)
        if not strengths:
            refusing = " ".join(repr(refused[bits]) for bits in sorted(refused, reverse=True))
            allowed = "require-mppe-128 by default" if not requiring else " ".join(map(repr, requiring))
            raise ValueError(
                f"{refusing} refuse every MPPE key length allowed ({allowed}) while MPPE is required; "
                "allow another length (require-mppe, require-mppe-40) or disable MPPE (nomppe)"
            )
        return cls(strengths=strengths, stateful=allow_stateful)


def _single_strength(value: int) -> int | None:
    """The key length of ``value`` when it holds exactly one key-length bit, else None."""
    return _LENGTH_OF_BIT.get(value & _STRENGTH_MASK)


class CcpOptions:
    """The CCP :class:`~pypptp.ppp.fsm.OptionHandler` for MPPE, for either role.

    Negotiated results, valid after This-Layer-Up: :attr:`send_bits`,
    :attr:`send_stateful` (what we Acked in the peer's request),
    :attr:`receive_bits`, :attr:`receive_stateful` (what the peer Acked in
    ours); :attr:`failed` when MPPE is required and cannot be agreed.
    """

    def __init__(self, policy: MppePolicy | None = None) -> None:
        self.policy = policy or MppePolicy()
        self.send_bits: int | None = None
        """Key length of our sending direction; None: no MPPE that way."""
        self.send_stateful = False
        self.receive_bits: int | None = None
        """Key length of what we receive; None: no MPPE that way."""
        self.receive_stateful = False
        self.reset_requests = 0
        """Reset-Requests received in Opened (all negotiations)."""
        self.reset_acks = 0
        """Reset-Acks received in Opened (all negotiations)."""
        self.request: int | None = None
        """The Supported Bits of our next Configure-Request; None: no option 18."""
        # Why MPPE cannot be agreed, split by direction: the automaton calls reset() right after
        # judge_request() for a Configure-Request received in Stopped or Opened (RFC 1661 4.1:
        # RCR in Opened is "tld, scr, sca/scn"), which must not erase the verdict just reached.
        self._our_failure: str | None = None  # our request: reset() clears it
        self._peer_failure: str | None = None  # the peer's request: our next Ack decides it
        self._nakked_offer: int | None = None  # the peer's option 18 we Nak'd; None after an Ack
        self._proposed_stateful = False  # mppe-stateful: we Nak'd the peer's H once (until our next Ack)
        self.reset()

    @property
    def failed(self) -> str | None:
        """Why MPPE cannot be agreed while it is required (the link closes LCP and logs this)."""
        return self._our_failure or self._peer_failure

    def reset(self) -> None:
        """A fresh negotiation: ask again from the policy, forget what the peer Acked and our failure.

        The results of the peer's request (``send_*``) are replaced at our next Ack of it, as
        LCP and IPCP do, since that Ack may come just before this call (see ``__init__``)."""
        policy = self.policy
        self.request = None
        if policy.enabled:
            self.request = _BIT_OF_LENGTH[policy.strengths[0]] | (0 if policy.stateful else H_BIT)
        self.receive_bits = None
        self.receive_stateful = False
        self._our_failure = None

    # -- our request ----------------------------------------------------------------------------

    def build_request(self) -> Options:
        if self.request is None:
            return []
        return [(MPPE, self.request.to_bytes(MPPE_VALUE_SIZE, "big"))]

    def on_ack(self, options: Options) -> None:
        """Record how the peer will send to us (the Ack repeats our request)."""
        self.receive_bits, self.receive_stateful = None, False
        for kind, value in options:
            if kind == MPPE and len(value) == MPPE_VALUE_SIZE:
                bits = int.from_bytes(value, "big")
                self.receive_bits = _single_strength(bits)
                self.receive_stateful = not bits & H_BIT

    def on_nak(self, options: Options) -> None:
        """Follow a Nak naming one allowed key length with an acceptable H bit; else give up."""
        for kind, value in options:
            if kind != MPPE or len(value) != MPPE_VALUE_SIZE or not self.policy.enabled:
                continue  # we ask for nothing else: a suggestion of another option is ignored
            suggested = int.from_bytes(value, "big")
            bits = _single_strength(suggested)
            adopted = (suggested & (H_BIT | _STRENGTH_MASK)) if bits is not None else None
            stateless_wanted = self.request is not None and self.request & H_BIT and not self.policy.stateful
            if bits in self.policy.strengths and not suggested & H_BIT and stateless_wanted:
                continue  # a proposal of stateful mode, which we refuse: ask for stateless again
            if bits not in self.policy.strengths or not self._h_acceptable(suggested):
                self._give_up(f"peer wants {describe_mppe(suggested)}, which our policy does not allow")
            elif adopted == self.request:
                self._give_up(f"peer Naks the {describe_mppe(suggested)} it suggested")  # no progress
            else:
                self.request = adopted  # C, D and reserved bits are dropped: we never ask for them

    def on_reject(self, options: Options) -> None:
        if any(kind == MPPE for kind, _ in options):
            self._give_up("peer rejected MPPE")

    def _give_up(self, reason: str) -> None:
        """Stop asking for option 18: no MPPE in our receiving direction, a failure when required."""
        self.request = None
        if self.policy.required and self._our_failure is None:
            self._our_failure = reason

    # -- the peer's request ---------------------------------------------------------------------

    def _h_acceptable(self, value: int) -> bool:
        return bool(value & H_BIT) or self.policy.stateful

    def _acceptable(self, value: int) -> bool:
        """Ackable as it is: one allowed key length, nothing but H besides, H as we allow."""
        return (
            _single_strength(value) in self.policy.strengths
            and not value & ~(H_BIT | _STRENGTH_MASK)
            and self._h_acceptable(value)
        )

    def _something_acceptable(self, value: int) -> bool:
        """Whether the offer holds anything we could agree to (an allowed key length, H as we allow)."""
        allowed = sum(_BIT_OF_LENGTH[bits] for bits in self.policy.strengths)
        return bool(value & allowed) and self._h_acceptable(value)

    def _nak_value(self, offered: int) -> int:
        """RFC 3078 section 2.1: one key-length bit, the strongest we allow that the peer offered,
        else our strongest; plus H, unless the peer offered stateful mode and we allow it."""
        strengths = self.policy.strengths
        bits = next((b for b in strengths if offered & _BIT_OF_LENGTH[b]), strengths[0])
        stateless = H_BIT if offered & H_BIT or not self.policy.stateful else 0
        return _BIT_OF_LENGTH[bits] | stateless

    def judge_request(self, options: Options, converge: bool) -> tuple[Verdict, Options]:
        rejects: Options = []
        naks: Options = []
        accepted: int | None = None
        nakked: int | None = None
        failure: str | None = None
        seen = False
        for kind, value in options:
            if kind != MPPE or not self.policy.enabled or len(value) != MPPE_VALUE_SIZE or seen:
                rejects.append((kind, value))  # Deflate, BSD-Compress, Predictor, OUI, unknown, bad 18
                continue
            seen = True
            offered = int.from_bytes(value, "big")
            propose_stateful = self.policy.stateful and not self._proposed_stateful
            if self._acceptable(offered) and offered & H_BIT and propose_stateful:
                # pppd with mppe-stateful still asks for stateless and goes stateful only when Nak'd
                # (its ccp_nakci): propose stateful once; a peer that asks for H again gets it.
                self._proposed_stateful = True
                nakked = offered
                naks.append((MPPE, (offered & ~H_BIT).to_bytes(MPPE_VALUE_SIZE, "big")))
            elif self._acceptable(offered):
                accepted = offered
            elif converge:
                failure = f"MPPE not agreed after Max-Failure Naks; peer offers {describe_mppe(offered)}"
                rejects.append((kind, value))
            elif (
                self._nakked_offer is not None
                and offered != self._nakked_offer  # an identical repeat may be a retransmission
                and not self._something_acceptable(offered)
            ):
                if offered & _STRENGTH_MASK and not self._h_acceptable(offered):
                    failure = f"peer insists on stateful MPPE ({describe_mppe(offered)}), which we refuse"
                else:
                    failure = f"peer offers no MPPE key length we allow ({describe_mppe(offered)})"
                rejects.append((kind, value))
            else:
                nakked = offered
                naks.append((MPPE, self._nak_value(offered).to_bytes(MPPE_VALUE_SIZE, "big")))
        if rejects:  # RFC 1661 section 5.4: Rejects go out alone
            if failure is not None and self.policy.required:
                self._peer_failure = failure
            return Verdict.REJECT, rejects
        if naks:
            self._nakked_offer = nakked
            return Verdict.NAK, naks
        self._nakked_offer = None
        self._proposed_stateful = False
        if accepted is None:
            self.send_bits, self.send_stateful = None, False
            self._peer_failure = "peer does not ask for MPPE" if self.policy.required else None
        else:
            self.send_bits, self.send_stateful = _single_strength(accepted), not accepted & H_BIT
            self._peer_failure = None
        return Verdict.ACK, options

    # -- CCP's extra codes (RFC 1962 section 3.1) ----------------------------------------------------

    def extra_code(self, packet: ControlPacket) -> bool:
        return packet.code in _RESET_CODES

    def echo_reply(self, packet: ControlPacket) -> ControlPacket | None:
        """Reset-Request -> Reset-Ack with the same Identifier and no data; Reset-Ack needs no answer."""
        if packet.code == Code.RESET_REQUEST:
            self.reset_requests += 1
            return ControlPacket(Code.RESET_ACK, packet.identifier)
        if packet.code == Code.RESET_ACK:
            self.reset_acks += 1
        return None
