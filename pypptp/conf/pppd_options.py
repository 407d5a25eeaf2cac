"""pppd options files (pppd(8), OPTIONS FILES), for the server end of a PPTP call.

pptpd runs ``pppd local file OPTIONFILE SPEED LOCAL:REMOTE ipparam CLIENT`` for
each call (pptpctrl.c, ``launch_pppd``); pppd reads ``/etc/ppp/options`` first,
then the ``file`` from its command line.  :func:`read_pppd_options` reads the
same files in the same order, and a later file overrides an earlier one, as in
pppd.  Within the files, options apply in order: the last ``auth``/``noauth``,
``mtu`` or ``name`` wins.

Syntax: pppd's word syntax, :func:`pypptp.conf.words.split_words` (quotes,
backslash escapes, ``#`` comments); options may share a line, and an
option's argument may sit on the next line (pppd reads words, not lines).
Numbers follow pppd's C syntax: ``10``, ``0x1f`` (hex) or ``017`` (octal).

What the options mean here, and what we decided where pppd's meaning does not
carry over (see the option table, :data:`OPTIONS`, for the full list):

* **Authentication of the peer** (``auth``, ``noauth``, ``require-pap``,
  ``require-chap``, ``require-mschap``, ``require-mschap-v2``; ``+pap`` and
  the other aliases).  As in pppd, ``require-X`` also turns ``auth`` on, and
  the last of ``auth``/``noauth``/``require-X`` decides whether the peer
  must authenticate.  With ``auth`` and no ``require-X`` word, pppd asks for
  any method (CHAP with MS-CHAPv2 first, then PAP, then EAP); we ask for
  MS-CHAPv2 only, the one method that keys MPPE-128.  pppd also turns
  ``auth`` on by itself only when the host has a default route; a PPTP
  server always has one, so with none of these words we require MS-CHAPv2.
  Methods are preferred in the order MS-CHAPv2, MS-CHAPv1, CHAP-MD5, PAP.
  ``require-eap`` is an error: pypptp has no EAP.
* ``refuse-X`` (``-pap``...) means what it means in pppd: we will not
  authenticate *ourselves* to the peer with X.  It does not narrow what the
  server asks of the peer (a server is never asked to authenticate itself,
  and pypptp's LCP Rejects such a request).  ``require-X`` with ``refuse-X``
  is legal in pppd and here, but gets a warning since it is a common mistake.
* **MPPE** words (``require-mppe-128``, ``nomppe``, ``mppe-stateful``...)
  are collected and become a :class:`~pypptp.ppp.ccp.MppePolicy`
  (:meth:`~pypptp.ppp.ccp.MppePolicy.from_pppd_options`); without any, the
  policy is ``require-mppe-128``, stateless.  A later word overrides an earlier
  one that contradicts it (``nomppe`` after ``require-mppe-128``), with a
  warning, as pppd's option order would.  ``noccp`` disables MPPE.  MPPE
  needs MS-CHAP keys: when MPPE is required and PAP or CHAP-MD5 is allowed,
  or ``noauth`` is given, we warn, since pppd only fails such links at run
  time.
* ``ms-dns`` / ``ms-wins``: as in pppd, the last two given are the primary
  and secondary server, and one given alone is both.  Host names are refused.
* ``name``: our name in CHAP Challenges and the server column of
  chap-secrets.  Without it, pppd uses the host name (``gethostname``), and
  so do we: a chap-secrets file written for pppd's default keeps working.
  pptpd's sample options file sets ``name pptpd``.
* ``nopcomp`` / ``noaccomp``: we stop asking for PFC / ACFC.  pppd also
  Rejects the peer's request; pypptp's LCP still Acks it (a warning says so).
* ``chap-secrets FILE`` (pppd 2.5) is honoured by the daemon; ``pap-secrets``
  is not: pypptp checks PAP against the same chap-secrets file, with a warning.
* A ``LOCAL:REMOTE`` address word is ignored: pptpd's ``localip`` /
  ``remoteip`` give pppd the addresses on its command line, which overrides it.
* ``mppe SUBOPTIONS`` (``mppe required,no40,no56,stateless``): the syntax of
  the MPPE-MPPC patch to pppd (Jan Dubiec's, which pptpd's sample options file
  mentions and router firmwares ship; stock pppd 2.4 and 2.5 have no ``mppe``
  option).  As in that patch, it sets the whole MPPE policy: ``required``
  (without it MPPE is only accepted), ``stateless`` (without it stateful mode is
  allowed and proposed), ``no40``/``no56``/``no128`` (key lengths refused).  A
  later ``mppe`` or ``require-mppe-128``-family word overrides an earlier one.
* Options without meaning on PPTP (``lock``, ``crtscts``, ``asyncmap``,
  ``novj``...) are accepted and ignored with a note (:attr:`PppdOptions.notes`,
  for the debug log).  The other options of pppd 2.4 and 2.5 that pypptp does
  not implement (:data:`PPPD_ONLY`) are ignored with a warning: pppd accepts them.
  ``plugin radius.so`` (pppd's RADIUS plugin, any path to it) makes RADIUS the
  authentication and accounting backend (:mod:`pypptp.aaa`), configured by
  ``radius-config-file FILE`` (radiusclient's file; default
  :data:`RADIUS_CONFIG_FILE`), as the plugin is; ``avpair``, ``map-to-ifname``
  and ``map-to-ttyname`` are accepted with a warning.  pypptp adds
  ``radius-dae-listen [ADDRESS:]PORT`` (RFC 5176 Disconnect and CoA requests,
  from the RADIUS servers and ``radius-dae-clients FILE``'s hosts).  Any other
  ``plugin`` is ignored with a warning.
* A word that is no pppd option at all (``requre-mppe-128``, ``ms-dsn``) is an
  **error**, as in pppd ("unrecognized option"): pppd refuses to start, so with
  pptpd every call fails.  The message suggests the closest option.  Words on
  the same line after it are taken as its arguments (one error, not three).
  After ``plugin``, an unknown word may be the plugin's option: a warning.
  A number is pppd's line speed and a ``/dev/`` path its device: both ignored
  with a note (pptpd gives pppd the speed and the pty).
* A UTF-8 byte order mark at the start of a file (Notepad writes one): pppd
  would read it as part of the first word, which becomes an unknown option.
  Read with ``strict`` (``pypptpd --check``), it is an error; otherwise it is
  skipped with a warning, since it can only be a mistake.

Errors (:class:`OptionsError`) name the file and line: a missing or invalid
argument, an unreadable file, ``require-eap``, an impossible MPPE policy, an
unknown option.  Unknown options are collected: one :class:`OptionsError`
names them all (:attr:`OptionsError.messages`).
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import socket
import stat
from collections.abc import Callable, Sequence
from ipaddress import IPv4Address

from pypptp.conf.words import WordError, drop_bom, split_words
from pypptp.ppp.auth import AuthConfig
from pypptp.ppp.ccp import MPPE_WORDS, MppePolicy
from pypptp.ppp.fsm import FsmConfig
from pypptp.ppp.ipcp import IpcpConfig
from pypptp.ppp.ipv6cp import Ipv6cpConfig
from pypptp.ppp.lcp import AUTH_CHAP_MD5, AUTH_MSCHAP_V1, AUTH_MSCHAP_V2, AUTH_PAP, DEFAULT_MRU, LcpConfig
from pypptp.ppp.link import LinkConfig

__all__ = [
    "OPTIONS",
    "PPPD_ONLY",
    "RADIUS_CONFIG_FILE",
    "SYSTEM_OPTIONS",
    "OptionsError",
    "PppdOptions",
    "parse_pppd_options",
    "read_pppd_options",
]

SYSTEM_OPTIONS = "/etc/ppp/options"
MIN_MRU, MAX_MRU = 128, 16384  # pppd's MINMRU / MAXMRU, the limits of mtu and mru
MAX_NAME = 255  # pppd's MAXNAMELEN less the terminating NUL
MAX_FILE_BYTES = 1024 * 1024
MAX_INCLUDE_DEPTH = 8  # nested ``file`` options

# authentication methods, in our order of preference
METHODS = ("mschap-v2", "mschap", "chap", "pap")
_METHOD_BYTES = {"mschap-v2": AUTH_MSCHAP_V2, "mschap": AUTH_MSCHAP_V1, "chap": AUTH_CHAP_MD5, "pap": AUTH_PAP}
_METHOD_NAMES = {"mschap-v2": "MS-CHAPv2", "mschap": "MS-CHAP", "chap": "CHAP-MD5", "pap": "PAP", "eap": "EAP"}
_C_NUMBER = re.compile(r"0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*")
_ADDRESS_SPEC = re.compile(r"[0-9.]*:[0-9.]*")


class OptionsError(ValueError):
    """A pppd options file is unusable; the text names the file and line.

    One error may carry several problems (every unknown option of the files read):
    :attr:`messages` lists them, one line of ``str(error)`` each."""

    def __init__(self, *messages: str) -> None:
        super().__init__("\n".join(messages))
        self.messages = messages


@dataclasses.dataclass
class PppdOptions:
    """The options of the files read, in pppd's terms; :meth:`link_config` turns them into a session's."""

    name: str | None = None
    """``name``; None: not given (the host name is used, :attr:`our_name`)."""
    auth: bool | None = None
    """The last of ``auth`` (True), ``noauth`` (False) and ``require-X`` (True); None: none given."""
    require: set[str] = dataclasses.field(default_factory=set)
    """Methods named by ``require-X``: ``"mschap-v2"``, ``"mschap"``, ``"chap"``, ``"pap"``."""
    refuse: set[str] = dataclasses.field(default_factory=set)
    """Methods named by ``refuse-X`` (``"eap"`` too): those we will not authenticate ourselves with."""
    mppe_words: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    """The MPPE words in force, with where each came from (overridden ones removed)."""
    noccp: bool = False
    dns: list[IPv4Address] = dataclasses.field(default_factory=list)
    """``ms-dns``: the last two given."""
    wins: list[IPv4Address] = dataclasses.field(default_factory=list)
    """``ms-wins``: the last two given."""
    mtu: int | None = None
    """``mtu``: a cap on the interface MTU (the peer's MRU, less MPPE's overhead, otherwise)."""
    mru: int | None = None
    """``mru``: the MRU we ask for; None: pppd's default, 1500, not asked for."""
    pfc: bool = True
    acfc: bool = True
    echo_interval: int = 0
    echo_failure: int = 0
    lcp_restart: int = 3
    lcp_max_configure: int = 10
    lcp_max_terminate: int = 2
    lcp_max_failure: int = 5
    chap_restart: int = 3
    chap_max_challenge: int = 10
    idle: int = 0
    """``idle``: seconds without traffic before the link is closed; 0: never."""
    maxconnect: int = 0
    """``maxconnect``: seconds a link may stay up; 0: no limit."""
    debug: bool = False
    dump: bool = False
    logfile: str | None = None
    proxyarp: bool = False
    defaultroute: bool = False
    strip_domain: bool = False
    """``chapms-strip-domain``."""
    ipv6: bool = False
    """``+ipv6``: run IPV6CP."""
    ipv6cp_use_ipaddr: bool = False
    """``ipv6cp-use-ipaddr``: our interface identifier is our IPv4 address."""
    ipparam: str | None = None
    """``ipparam``.  pptpd passes ``ipparam CLIENT-IP`` after the options file unless ``noipparam``
    is set, so the daemon uses this value only with ``noipparam``."""
    usepeerdns: bool = False
    """``usepeerdns``: a client's option, recorded; it changes nothing on a server."""
    chap_secrets: str | None = None
    """``chap-secrets FILE`` (pppd 2.5); None: ``/etc/ppp/chap-secrets``."""
    radius: bool = False
    """``plugin radius.so``: RADIUS authenticates the peers and gets the accounting records."""
    radius_config_file: str = ""
    """``radius-config-file FILE``; empty: :data:`RADIUS_CONFIG_FILE`."""
    radius_dae_listen: str | None = None
    """``radius-dae-listen [ADDRESS:]PORT`` (ours): where RFC 5176 Disconnect and CoA requests are taken."""
    radius_dae_clients: str | None = None
    """``radius-dae-clients FILE`` (ours): more hosts allowed to send them, ``host secret`` lines."""
    files: list[str] = dataclasses.field(default_factory=list)
    """The files read, in order (``file`` inclusions too)."""
    warnings: list[str] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)
    """Options accepted and ignored because they mean nothing on PPTP: for the debug log."""
    errors: list[str] = dataclasses.field(default_factory=list)
    """What pppd would refuse to start on but does not stop the reading (unknown options; a byte order
    mark when reading ``strict``): raised together, as one :class:`OptionsError`, once the files are read."""
    lines: dict[str, str] = dataclasses.field(default_factory=dict)
    """Where each option was last given (``"file:line"``), for messages about what follows from it."""
    mppe_option: tuple[MppePolicy, str, str] | None = None
    """``mppe SUBOPTIONS`` (the MPPE-MPPC patch's syntax): its policy, its argument and where; None: not
    given, or overridden by a later MPPE word."""
    mppe: MppePolicy = dataclasses.field(default_factory=MppePolicy)
    """The MPPE policy of :attr:`mppe_words` and ``noccp`` (set when parsing ends)."""
    auth_methods: tuple[bytes, ...] = (AUTH_MSCHAP_V2,)
    """The methods the server asks for, preferred first; empty: no authentication (set when parsing ends)."""
    _auth_where: str = dataclasses.field(default="", repr=False, compare=False)
    _derived: list[str] = dataclasses.field(default_factory=list, repr=False, compare=False)

    @property
    def our_name(self) -> str:
        """``name``, or the host name as pppd uses it."""
        return self.name if self.name is not None else socket.gethostname()[:MAX_NAME]

    def link_config(
        self,
        *,
        local_address: IPv4Address | str | None = None,
        peer_address: IPv4Address | str | None = None,
        unit: int = 0,
    ) -> LinkConfig:
        """The server's :class:`~pypptp.ppp.link.LinkConfig` for one session (``pppN`` is ``unit``); without
        addresses, the daemon assigns them once the peer has authenticated."""
        local = IPv4Address(local_address) if local_address is not None else None
        if not self.ipv6cp_use_ipaddr:
            ipv6cp = Ipv6cpConfig()
        elif local is None:
            ipv6cp = Ipv6cpConfig(use_ipaddr=True)
        else:
            ipv6cp = Ipv6cpConfig(interface_id=bytes(4) + local.packed, use_ipaddr=True)
        return LinkConfig(
            server=True,
            lcp=LcpConfig(
                server=True,
                mru=self.mru if self.mru is not None else DEFAULT_MRU,
                auth_methods=self.auth_methods,
                pfc=self.pfc,
                acfc=self.acfc,
            ),
            fsm=FsmConfig(
                restart_timeout=float(self.lcp_restart),
                max_configure=self.lcp_max_configure,
                max_terminate=self.lcp_max_terminate,
                max_failure=self.lcp_max_failure,
            ),
            auth=AuthConfig(
                our_name=self.our_name,
                strip_domain=self.strip_domain,
                restart_timeout=float(self.chap_restart),
                max_challenges=self.chap_max_challenge,
                external=self.radius,  # pppd radius plugin: the RADIUS server judges the credentials
            ),
            ipcp=IpcpConfig(
                server=True,
                local_address=local,
                peer_address=IPv4Address(peer_address) if peer_address is not None else None,
                dns=_primary_secondary(self.dns),
                wins=_primary_secondary(self.wins),
                unit=unit,
            ),
            ipv6=self.ipv6,
            ipv6cp=ipv6cp,
            mppe=self.mppe,
            echo_interval=float(self.echo_interval),
            echo_failure=self.echo_failure,
            unit=unit,
        )

    # -- the end of parsing: what follows from all the options together ------------------------

    def resolve(self) -> None:
        """Work out :attr:`mppe` and :attr:`auth_methods` and their warnings (done when parsing ends)."""
        for message in self._derived:
            if message in self.warnings:
                self.warnings.remove(message)
        derived: list[str] = []
        self.mppe = self._mppe_policy(derived)
        self.auth_methods = self._methods(derived)
        weak = [_METHOD_NAMES[m] for m in ("chap", "pap") if _METHOD_BYTES[m] in self.auth_methods]
        if self.mppe.required and weak:
            derived.append(
                f"MPPE is required but {' and '.join(weak)} {'is' if len(weak) == 1 else 'are'} allowed: "
                "they give no MPPE keys, so a peer that authenticates with them is disconnected "
                "(pppd, too, fails such a link only at run time)"
            )
        if self.mppe.required and not self.auth_methods:
            derived.append(
                f"{self._auth_where or 'noauth'}: noauth with MPPE required: MPPE keys come from MS-CHAP, "
                "so every link will fail; add nomppe, or drop noauth"
            )
        if AUTH_PAP in self.auth_methods:
            derived.append(
                "require-pap: pypptp checks PAP passwords against the chap-secrets file (pppd reads pap-secrets)"
            )
        for method in sorted(self.require & self.refuse):
            derived.append(
                f"require-{method} and refuse-{method}: the peer must authenticate with {_METHOD_NAMES[method]}; "
                "refuse-* only stops us authenticating ourselves to the peer"
            )
        self._derived = derived
        self.warnings.extend(derived)

    def _methods(self, derived: list[str]) -> tuple[bytes, ...]:
        if self.auth is False:
            if self.require:
                names = ", ".join(f"require-{m}" for m in METHODS if m in self.require)
                derived.append(
                    f"{self._auth_where}: noauth comes last: the peer is not authenticated ({names} ignored)"
                )
            return ()
        chosen = [m for m in METHODS if m in self.require] or ["mschap-v2"]
        return tuple(_METHOD_BYTES[m] for m in chosen)

    def _mppe_policy(self, derived: list[str]) -> MppePolicy:
        if self.mppe_option is not None:
            policy, argument, where = self.mppe_option
            requiring = [f"mppe {argument} ({where})"] if policy.required else []
        else:
            words = [word for word, _ in self.mppe_words]
            try:
                policy = MppePolicy.from_pppd_options(words)
            except ValueError as exc:
                named = [where for word, where in self.mppe_words if repr(word) in str(exc)]
                where = named[-1] if named else self.mppe_words[-1][1] if self.mppe_words else "MPPE"
                raise OptionsError(f"{where}: {exc}") from None
            requiring = [f"{word} ({where})" for word, where in self.mppe_words if word.startswith(("require", "+"))]
        if self.noccp:
            if requiring:
                derived.append(f"noccp turns MPPE off: {', '.join(requiring)} has no effect")
            return MppePolicy(enabled=False, required=False)
        return policy


def _primary_secondary(servers: list[IPv4Address]) -> tuple[IPv4Address, ...]:
    """pppd: one server given is both primary and secondary."""
    return (servers[0], servers[0]) if len(servers) == 1 else tuple(servers)


# -- the option table ------------------------------------------------------------------------------

Handler = Callable[[PppdOptions, str, str, str], None]
"""``handler(options, option, argument, where)``: ``argument`` is ``""`` for options without one."""


@dataclasses.dataclass(frozen=True)
class Option:
    takes_argument: bool
    handler: Handler


def _c_value(value: str) -> int:
    """The value of a number in C's syntax (one :data:`_C_NUMBER` matches)."""
    base = 16 if value[:2] in ("0x", "0X") else 8 if value.startswith("0") else 10
    return int(value, base)


def _number(value: str, where: str, option: str, low: int = 0, high: int = 2**31 - 1) -> int:
    if not _C_NUMBER.fullmatch(value):
        raise OptionsError(f"{where}: {option} needs a whole number, got {value!r}")
    number = _c_value(value)
    if not low <= number <= high:
        raise OptionsError(f"{where}: {option} must be between {low} and {high}, got {value!r}")
    return number


def _address(value: str, where: str, option: str) -> IPv4Address:
    try:
        return IPv4Address(value)
    except ValueError:
        raise OptionsError(
            f"{where}: {option} needs an IPv4 address, got {value!r} (host names are not resolved)"
        ) from None


def _flag(attribute: str, value: bool = True) -> Option:
    def handler(options: PppdOptions, option: str, argument: str, where: str) -> None:
        setattr(options, attribute, value)

    return Option(False, handler)


def _integer(attribute: str, low: int = 0, high: int = 2**31 - 1) -> Option:
    def handler(options: PppdOptions, option: str, argument: str, where: str) -> None:
        setattr(options, attribute, _number(argument, where, option, low, high))

    return Option(True, handler)


def _text(attribute: str) -> Option:
    def handler(options: PppdOptions, option: str, argument: str, where: str) -> None:
        setattr(options, attribute, argument)

    return Option(True, handler)


def _auth(required: bool) -> Option:
    def handler(options: PppdOptions, option: str, argument: str, where: str) -> None:
        options.auth = required
        options._auth_where = where

    return Option(False, handler)


def _require(method: str) -> Option:
    def handler(options: PppdOptions, option: str, argument: str, where: str) -> None:
        options.require.add(method)
        options.auth = True
        options._auth_where = where

    return Option(False, handler)


def _refuse(method: str) -> Option:
    def handler(options: PppdOptions, option: str, argument: str, where: str) -> None:
        options.refuse.add(method)

    return Option(False, handler)


def _require_eap(options: PppdOptions, option: str, argument: str, where: str) -> None:
    raise OptionsError(f"{where}: {option}: EAP not supported")


def _name(options: PppdOptions, option: str, argument: str, where: str) -> None:
    if not argument or len(argument.encode("utf-8", "surrogateescape")) > MAX_NAME:
        raise OptionsError(f"{where}: name must be 1 to {MAX_NAME} bytes long")
    options.name = argument


def _servers(attribute: str) -> Option:
    def handler(options: PppdOptions, option: str, argument: str, where: str) -> None:
        servers: list[IPv4Address] = getattr(options, attribute)
        servers.append(_address(argument, where, option))
        if len(servers) > 2:
            del servers[0]
            options.warnings.append(f"{where}: a third {option}: the last two given are used, as pppd does")

    return Option(True, handler)


def _no_compression(attribute: str) -> Option:
    def handler(options: PppdOptions, option: str, argument: str, where: str) -> None:
        setattr(options, attribute, False)
        options.warnings.append(
            f"{where}: {option}: we no longer ask for it, but still accept the peer's request (pppd Rejects it)"
        )

    return Option(False, handler)


def _ignored(why: str, takes_argument: bool = False) -> Option:
    def handler(options: PppdOptions, option: str, argument: str, where: str) -> None:
        shown = f"{option} {argument}" if takes_argument else option
        options.notes.append(f"{where}: {shown!r} ignored: {why}")

    return Option(takes_argument, handler)


def _warned(why: str, takes_argument: bool = False) -> Option:
    def handler(options: PppdOptions, option: str, argument: str, where: str) -> None:
        shown = f"{option} {argument}" if takes_argument else option
        options.warnings.append(f"{where}: {shown!r} ignored: {why}")

    return Option(takes_argument, handler)


_MPPE_SUBOPTIONS = ("required", "stateless", "no40", "no56", "no128")


def _mppe_suboptions(options: PppdOptions, option: str, argument: str, where: str) -> None:
    """``mppe required,no40,no56,stateless``: the MPPE-MPPC patch's syntax, a whole MPPE policy."""
    given = [part.strip().lower() for part in argument.split(",")]
    wrong = [part for part in given if part not in _MPPE_SUBOPTIONS]
    if wrong:
        raise OptionsError(
            f"{where}: mppe: unknown suboption {wrong[0]!r}; the suboptions are {', '.join(_MPPE_SUBOPTIONS)}, "
            "separated by commas (mppe required,no40,no56,stateless)"
        )
    lengths = tuple(bits for bits in (128, 56, 40) if f"no{bits}" not in given)
    required = "required" in given
    if not lengths and required:
        raise OptionsError(
            f"{where}: mppe {argument}: MPPE is required but no40, no56 and no128 refuse every key length; "
            "drop no128, or write nomppe"
        )
    if lengths:
        policy = MppePolicy(required=required, strengths=lengths, stateful="stateless" not in given)
    else:
        policy = MppePolicy(enabled=False, required=False)  # the patch, too, turns MPPE off then
    shown = f"mppe {argument}"
    earlier = [f"{word!r} ({other})" for word, other in options.mppe_words]
    if options.mppe_option is not None:
        earlier.insert(0, f"'mppe {options.mppe_option[1]}' ({options.mppe_option[2]})")
    if earlier:
        options.warnings.append(f"{where}: {shown!r} overrides {', '.join(earlier)}")
    options.mppe_words = []
    options.mppe_option = (policy, argument, where)
    options.notes.append(f"{where}: {shown!r}: the MPPE-MPPC patch's syntax (stock pppd has no mppe option)")


RADIUS_CONFIG_FILE = "/etc/radiusclient/radiusclient.conf"
"""Where pppd's radius plugin reads radiusclient's configuration without ``radius-config-file``."""
_RADIUS_PLUGIN = "radius.so"


def _plugin(options: PppdOptions, option: str, argument: str, where: str) -> None:
    """``plugin radius.so`` (or a path to it) turns RADIUS on; any other plugin is not loaded."""
    name = os.path.basename(argument)
    if name == _RADIUS_PLUGIN:
        options.radius = True
    elif name in ("radattr.so", "radrealms.so"):
        options.warnings.append(f"{where}: 'plugin {argument}' ignored: pypptp has no {name} (RADIUS works without it)")
    else:
        options.warnings.append(f"{where}: 'plugin {argument}' ignored: pypptp has no pppd plugins but radius.so")


def _radius_option(attribute: str | None, takes_argument: bool = True) -> Option:
    """An option of pppd's radius plugin: known once ``plugin radius.so`` came before it, as in pppd."""

    def handler(options: PppdOptions, option: str, argument: str, where: str) -> None:
        if not options.radius:
            options.errors.append(
                f"{where}: {option!r} is an option of pppd's radius plugin: pppd refuses it before "
                f"'plugin {_RADIUS_PLUGIN}'; put that line first"
            )
        elif attribute is None:
            shown = f"{option} {argument}" if takes_argument else option
            options.warnings.append(f"{where}: {shown!r} ignored: not implemented by pypptp's RADIUS")
        else:
            setattr(options, attribute, argument)

    return Option(takes_argument, handler)


def _include(options: PppdOptions, option: str, argument: str, where: str) -> None:
    """``file FILE`` reads another options file at this point; the parser does it, knowing the depth."""
    raise AssertionError("file is handled by _parse")  # pragma: no cover


PPPD_ONLY: dict[str, bool] = {
    **dict.fromkeys(
        """
        +ipx --help --version -all -d -defaultroute6 -detach -ecp -h -ip -mn -mru -p -predictor1 -v cdtrcts
        default-mru defaultroute6 demand dryrun enable-session ipcp-accept-local ipcp-accept-remote
        ipcp-no-address ipcp-no-addresses ipv6cp-accept-local ipv6cp-accept-remote ipv6cp-noremote
        ipv6cp-nosend ipv6cp-use-persistent ipv6cp-use-remotenumber ipx ipxcp-accept-local
        ipxcp-accept-network ipxcp-accept-remote ktune lcp-echo-adaptive login master_detach mp mpshortseq
        ms-lanman multilink need-peer-eap nocdtrcts nodefaultroute6 nodeflatedraft noecp noendpoint noip
        noktune nolog nomagic nomp nompshortseq nomultilink nopredictor1 noremoteip noreplacedefaultroute
        noresolvconf nosendip notty papcrypt predictor1 receive-all replacedefaultroute show-options
        srp-use-pseudonym sync tls-verify-key-usage up_sdnotify usehostname usepeerwins xonxoff
        """.split(),  # noqa: SIM905 (pppd's names read better as text)
        False,
    ),
    **dict.fromkeys(
        """
        +ua -as active-filter allow-ip allow-number auth-down-script auth-up-script bsdcomp bundle ca call
        callback capath cert chap-interval chap-timeout child-timeout connect connect-delay crl crl-dir
        datarate defaultroute-metric defaultroute6-metric deflate disconnect domain eap-interval
        eap-max-rreq eap-max-sreq eap-restart eap-timeout endpoint escape ifname init ip-down-script
        ip-pre-up-script ip-up-script ipcp-max-configure ipcp-max-failure ipcp-max-terminate ipcp-restart
        ipv6 ipv6-down-script ipv6-up-script ipv6cp-max-configure ipv6cp-max-failure ipv6cp-max-terminate
        ipv6cp-restart ipx-network ipx-node ipx-router-name ipx-routing ipxcp-max-configure
        ipxcp-max-failure ipxcp-max-terminate ipxcp-restart kdebug key lcp-rtt-file linkname logfd
        max-tls-version maxfail maxoctets mo mo-direction mo-timeout mrru mschap-challenge
        mschap2-peer-challenge net-down-script net-init-script net-pre-up-script netmask pap-max-authreq
        pap-restart pap-timeout pass-filter password pkcs12 privgroup pty record remotename remotenumber set
        socket srp-interval srp-pn-secret stop-bits tls-verify-method unit unset user vj-max-slots vrf welcome
        """.split(),  # noqa: SIM905 (pppd's names read better as text)
        True,
    ),
}
"""The options of pppd 2.4.5 to 2.5 (their option tables: options.c, auth.c, tty.c, lcp.c, ipcp.c...)
that pypptp does not implement, and whether each takes an argument: accepted with a warning, since pppd
accepts them.  Plugins' options are not here."""

_SERIAL = "no serial line or modem on PPTP"
_CLIENT = "a dial-out (client) option, meaningless for a server"
_NO_COMPRESSION = "pypptp has no compression but MPPE's, so this is what it does anyway"

OPTIONS: dict[str, Option] = {
    # authentication
    "auth": _auth(True),
    "noauth": _auth(False),
    **{f"{prefix}{method}": _require(method) for method in METHODS for prefix in ("require-", "+")},
    **{f"{prefix}{method}": _refuse(method) for method in METHODS for prefix in ("refuse-", "-")},
    "require-eap": Option(False, _require_eap),
    "refuse-eap": _refuse("eap"),
    "name": Option(True, _name),
    "chapms-strip-domain": _flag("strip_domain"),
    "chap-secrets": _text("chap_secrets"),
    "pap-secrets": _warned("pypptp checks PAP against the chap-secrets file", True),
    "chap-restart": _integer("chap_restart", 1),
    "chap-max-challenge": _integer("chap_max_challenge", 1),
    # CCP (the MPPE words are handled apart: see MPPE_WORDS)
    "noccp": _flag("noccp"),
    "-ccp": _flag("noccp"),
    # IPCP and the interface
    "ms-dns": _servers("dns"),
    "ms-wins": _servers("wins"),
    "proxyarp": _flag("proxyarp"),
    "noproxyarp": _flag("proxyarp", False),
    "-proxyarp": _flag("proxyarp", False),
    "defaultroute": _flag("defaultroute"),
    "nodefaultroute": _flag("defaultroute", False),
    "-defaultroute": _flag("defaultroute", False),
    "ipparam": _text("ipparam"),
    "usepeerdns": _flag("usepeerdns"),
    "+ipv6": _flag("ipv6"),
    "noipv6": _flag("ipv6", False),
    "-ipv6": _flag("ipv6", False),
    "ipv6cp-use-ipaddr": _flag("ipv6cp_use_ipaddr"),
    # LCP
    "mtu": _integer("mtu", MIN_MRU, MAX_MRU),
    "mru": _integer("mru", MIN_MRU, MAX_MRU),
    "nopcomp": _no_compression("pfc"),
    "-pc": _no_compression("pfc"),
    "noaccomp": _no_compression("acfc"),
    "-ac": _no_compression("acfc"),
    "lcp-echo-interval": _integer("echo_interval"),
    "lcp-echo-failure": _integer("echo_failure"),
    "lcp-restart": _integer("lcp_restart", 1),
    "lcp-max-configure": _integer("lcp_max_configure", 1),
    "lcp-max-terminate": _integer("lcp_max_terminate", 1),
    "lcp-max-failure": _integer("lcp_max_failure", 1),
    # the link's life and the log
    "idle": _integer("idle"),
    "maxconnect": _integer("maxconnect"),
    "debug": _flag("debug"),
    "dump": _flag("dump"),
    "logfile": _text("logfile"),
    "file": Option(True, _include),
    "plugin": Option(True, _plugin),
    "radius-config-file": _radius_option("radius_config_file"),
    "radius-dae-listen": _radius_option("radius_dae_listen"),
    "radius-dae-clients": _radius_option("radius_dae_clients"),
    "avpair": _radius_option(None),
    **{word: _radius_option(None, False) for word in ("map-to-ifname", "map-to-ttyname")},
    # accepted and ignored: they mean nothing on a PPTP server
    **{word: _ignored(_SERIAL) for word in ("lock", "nolock", "crtscts", "nocrtscts", "-crtscts", "local", "modem")},
    **{word: _ignored(_SERIAL) for word in ("default-asyncmap", "-am")},
    "nologfd": _ignored("pypptpd logs through its own logger"),
    "asyncmap": _ignored(_SERIAL, True),
    **{word: _ignored(_NO_COMPRESSION) for word in ("nobsdcomp", "-bsdcomp", "nodeflate", "-deflate")},
    **{word: _ignored("pypptp has no Van Jacobson compression") for word in ("novj", "-vj", "novjccomp", "-vjccomp")},
    **{word: _ignored("pypptp has no IPX") for word in ("noipx", "-ipx")},
    **{word: _ignored(_CLIENT) for word in ("persist", "nopersist", "noipdefault")},
    "holdoff": _ignored(_CLIENT, True),
    **{word: _ignored("the server negotiates at once") for word in ("passive", "silent")},
    **{word: _ignored("pypptp never logs passwords") for word in ("hide-password", "show-password")},
    **{word: _ignored("pypptp is one daemon; no pppd detaches") for word in ("nodetach", "updetach")},
    # the MPPE-MPPC patch's: mppe SUBOPTIONS, and its compression, MPPC, which pypptp does not have
    "mppe": Option(True, _mppe_suboptions),
    "nomppc": _ignored(_NO_COMPRESSION),
    "mppc": _warned("pypptp has no MPPC compression"),
    # pppd's other options, accepted as pppd accepts them, with a warning that they do nothing here
    **{word: _warned("pppd option not implemented by pypptp", takes) for word, takes in PPPD_ONLY.items()},
}
"""Every pppd option we know, but the MPPE words (:meth:`MppePolicy.from_pppd_options` has those): ours,
the ones ignored with a note or a warning, and :data:`PPPD_ONLY`.  A word in neither is unknown."""


def _add_mppe(options: PppdOptions, word: str, where: str) -> None:
    """Add an MPPE word; an earlier word it contradicts is dropped, as pppd's option order would."""
    what, bits = MPPE_WORDS[word]

    def contradicts(other: str) -> bool:
        other_what, other_bits = MPPE_WORDS[other]
        if what == "off":
            return other_what == "require"
        if what == "require":
            return other_what == "off" or (bool(bits) and other_what == "refuse" and other_bits == bits)
        if what == "refuse":
            return other_what == "require" and other_bits == bits
        return other_what == "stateful" and other_bits != bits  # mppe-stateful / nomppe-stateful

    if options.mppe_option is not None:
        _, argument, other_where = options.mppe_option
        options.warnings.append(f"{where}: {word!r} overrides 'mppe {argument}' ({other_where})")
        options.mppe_option = None
    kept: list[tuple[str, str]] = []
    for other, other_where in options.mppe_words:
        if contradicts(other):
            options.warnings.append(f"{where}: {word!r} overrides {other!r} ({other_where})")
        else:
            kept.append((other, other_where))
    kept.append((word, where))
    options.mppe_words = kept


# -- reading --------------------------------------------------------------------------------------

_KNOWN_SET = frozenset({*OPTIONS, *MPPE_WORDS})
_KNOWN = sorted(_KNOWN_SET)
_BOM_CONSEQUENCE = "pppd reads it as part of the first word, an option it does not know, and refuses to start"


def _read_text(path: str) -> str:
    """The file's text: a regular file (a symbolic link to one is followed, as pppd follows it), opened
    without blocking (a FIFO would hang the daemon), at most :data:`MAX_FILE_BYTES`."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise OptionsError(f"{path}: cannot read: {exc.strerror}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OptionsError(f"{path}: not a regular file")
    with os.fdopen(fd, "rb") as f:
        data = f.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise OptionsError(f"{path}: more than {MAX_FILE_BYTES} bytes")
    return data.decode("utf-8", "surrogateescape")


def _unknown(options: PppdOptions, word: str, where: str) -> None:
    """A word that is no option: pppd's "unrecognized option", with the closest option we know."""
    if "plugin" in options.lines and not options.radius:
        options.warnings.append(
            f"{where}: unknown pppd option {word!r} ignored: perhaps an option of the plugin "
            f"({options.lines['plugin']}), which pypptp does not load"
        )
        return
    close = difflib.get_close_matches(word.lower(), _KNOWN, n=1, cutoff=0.75)
    fix = f"did you mean {close[0]!r}? Correct it or remove it" if close else "remove it"
    options.errors.append(
        f"{where}: unknown pppd option {word!r}: pppd refuses to start on it (every call would fail); {fix}"
    )


def _parse(text: str, path: str, options: PppdOptions, depth: int, strict: bool = False) -> None:
    options.files.append(path)
    text, bom = drop_bom(text, path, _BOM_CONSEQUENCE, strict)
    if bom is not None:
        (options.errors if strict else options.warnings).append(bom)
    try:
        records = split_words(text, path)
    except WordError as exc:
        raise OptionsError(str(exc)) from None
    words = [word for record in records for word in record]
    i = 0
    while i < len(words):
        word, line = words[i]
        where = f"{path}:{line}"
        i += 1
        if word in MPPE_WORDS:
            _add_mppe(options, word, where)
            options.lines[word] = where
            continue
        option = OPTIONS.get(word)
        if option is None:
            if _ADDRESS_SPEC.fullmatch(word):
                options.notes.append(f"{where}: address {word!r} ignored: the addresses come from localip/remoteip")
            elif _C_NUMBER.fullmatch(word) and _c_value(word) != 0:
                options.notes.append(f"{where}: speed {word!r} ignored: pptpd gives pppd the speed")
            elif word.startswith("/dev/"):
                options.warnings.append(f"{where}: device {word!r} ignored: a PPTP call has no serial device")
            else:
                _unknown(options, word, where)
                while i < len(words) and words[i][1] == line and words[i][0] not in _KNOWN_SET:
                    i += 1  # its arguments, most likely (ms-dsn 8.8.8.8): one error is enough
            continue
        argument = ""
        if option.takes_argument:
            if i >= len(words):
                raise OptionsError(f"{where}: option {word!r} needs an argument")
            argument = words[i][0]
            i += 1
        options.lines[word] = where
        if word == "file":
            if depth >= MAX_INCLUDE_DEPTH:
                raise OptionsError(f"{where}: file {argument!r}: more than {MAX_INCLUDE_DEPTH} nested files")
            try:
                included = _read_text(argument)
            except OptionsError as exc:
                raise OptionsError(f"{where}: file: {exc}") from None
            _parse(included, argument, options, depth + 1, strict)
            continue
        option.handler(options, word, argument, where)


def _finish(options: PppdOptions) -> PppdOptions:
    if options.errors:
        raise OptionsError(*options.errors)
    options.resolve()
    return options


def parse_pppd_options(
    text: str, path: str = "<string>", into: PppdOptions | None = None, *, strict: bool = False
) -> PppdOptions:
    """Parse the text of one options file, on top of ``into`` when given; errors raise :class:`OptionsError`.

    The MPPE policy and the authentication methods are worked out at the end
    (:meth:`PppdOptions.resolve`).  To read several files, prefer
    :func:`read_pppd_options`, which works them out once, after the last file.
    ``strict`` (``pypptpd --check``): a byte order mark is an error, as it is to pppd, not a warning.
    """
    options = into if into is not None else PppdOptions()
    _parse(text, path, options, 0, strict)
    return _finish(options)


def read_pppd_options(paths: Sequence[str], *, strict: bool = False) -> PppdOptions:
    """Read options files in order (``/etc/ppp/options`` first, then pptpd.conf's ``option``).

    A later file overrides an earlier one, as in pppd.  Every file must exist
    (leave out ``/etc/ppp/options`` when it does not).  ``strict``: as in :func:`parse_pppd_options`.
    Every unknown option of every file is reported, in one :class:`OptionsError`.
    """
    options = PppdOptions()
    for path in paths:
        _parse(_read_text(path), path, options, 0, strict)
    return _finish(options)
