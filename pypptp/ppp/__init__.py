"""PPP over GRE, sans-IO: the RFC 1661 automaton, LCP, authentication, CCP with MPPE, IPCP, IPV6CP.

:class:`pypptp.ppp.link.PppLink` is the entry point: link phases, the
protocol table and the LCP keepalive, built on :mod:`~pypptp.ppp.fsm`
(one automaton for every control protocol) with the option handlers of
:mod:`~pypptp.ppp.lcp`, :mod:`~pypptp.ppp.ccp`, :mod:`~pypptp.ppp.ipcp` and
:mod:`~pypptp.ppp.ipv6cp`, the authentication methods of :mod:`~pypptp.ppp.auth`
(PAP, CHAP-MD5, MS-CHAP v1 and v2) and the MPPE codecs of :mod:`~pypptp.ppp.mppe`.
Around them: chap-secrets records and pppd's matching (:mod:`~pypptp.ppp.secrets`,
with pppd's word syntax, :mod:`~pypptp.ppp.words`) and pppd's log lines as
plain texts (:mod:`~pypptp.ppp.logtext`).  Nothing here does I/O, reads a clock
or logs: the callers pass ``now``, read the files (:mod:`pypptp.conf`) and write
the lines (:mod:`pypptp.daemon.logs`); tests/test_layers.py keeps it so.

The package exports the engine: :class:`PppLink` with its :class:`LinkConfig` (and the parts of one:
:class:`LcpConfig`, :class:`AuthConfig`, :class:`IpcpConfig`, :class:`Ipv6cpConfig`, :class:`MppePolicy`,
:class:`FsmConfig`) and the events it gives back; the automaton, frames and packets; chap-secrets
records; the MPPE codecs on their own.  Everything else is in the modules.
"""

from pypptp.ppp.auth import AuthConfig, AuthResult, MsChapKeys
from pypptp.ppp.ccp import MppePolicy
from pypptp.ppp.frame import Protocol, encode_frame, parse_frame
from pypptp.ppp.fsm import Automaton, FsmConfig, LayerEvent
from pypptp.ppp.ipcp import IpcpConfig
from pypptp.ppp.ipv6cp import Ipv6cpConfig
from pypptp.ppp.lcp import AUTH_CHAP_MD5, AUTH_MSCHAP_V1, AUTH_MSCHAP_V2, AUTH_PAP, LcpConfig
from pypptp.ppp.link import (
    AddressAssigner,
    Assignment,
    AuthAttemptFailed,
    Authenticated,
    DataReceived,
    LinkConfig,
    LinkDown,
    LinkEvent,
    LinkLog,
    NetworkDown,
    NetworkUp,
    Phase,
    PhaseChanged,
    PppLink,
)
from pypptp.ppp.mppe import MPPE_OVERHEAD, MppeDecryptor, MppeEncryptor
from pypptp.ppp.packet import Code, ControlPacket
from pypptp.ppp.secrets import ChapSecret, ChapSecrets, SecretsError, parse_secrets

__all__ = [
    "AUTH_CHAP_MD5",
    "AUTH_MSCHAP_V1",
    "AUTH_MSCHAP_V2",
    "AUTH_PAP",
    "MPPE_OVERHEAD",
    "AddressAssigner",
    "Assignment",
    "AuthAttemptFailed",
    "AuthConfig",
    "AuthResult",
    "Authenticated",
    "Automaton",
    "ChapSecret",
    "ChapSecrets",
    "Code",
    "ControlPacket",
    "DataReceived",
    "FsmConfig",
    "IpcpConfig",
    "Ipv6cpConfig",
    "LayerEvent",
    "LcpConfig",
    "LinkConfig",
    "LinkDown",
    "LinkEvent",
    "LinkLog",
    "MppeDecryptor",
    "MppeEncryptor",
    "MppePolicy",
    "MsChapKeys",
    "NetworkDown",
    "NetworkUp",
    "Phase",
    "PhaseChanged",
    "PppLink",
    "Protocol",
    "SecretsError",
    "encode_frame",
    "parse_frame",
    "parse_secrets",
]
