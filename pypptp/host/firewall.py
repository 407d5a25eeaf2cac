"""The host's packet filter, read and asked what it does to one packet (``pypptpd --diagnose``).

Two readers build one model (:class:`Ruleset`: chains of :class:`Rule`, each a list of :class:`Match`
and an action): :func:`parse_nft_json` reads ``nft -j list ruleset``, :func:`parse_iptables_save` reads
``iptables-save``.  :func:`read_firewall` runs them: nftables first (every table, native or made by
iptables-nft), with the tables iptables-nft manages read from ``iptables-save`` instead (in nft's JSON
their conntrack matches and REJECT/MASQUERADE targets are opaque ``xt`` expressions), plus
iptables-legacy's tables when that backend has any (both backends filter the same packets).

:meth:`Ruleset.verdict` walks a :class:`Probe` (one packet: protocol, port, addresses, interfaces,
conntrack state) through every base chain of the hooks it crosses, in priority order, following jumps,
gotos and returns.  Matches it does not understand (named sets, rate limits, marks, ``xt`` matches...)
are not guessed: a rule with one is skipped, and remembered as a doubt; a verdict that such a rule could
have changed is reported as uncertain rather than as OK or FAIL.  Every walk is bounded (jump depth,
rules per walk), and so is every reader (output size, rule count).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import shlex
import shutil
import subprocess
from collections.abc import Iterable, Iterator
from ipaddress import IPv4Address, IPv4Network
from typing import Any, Literal

__all__ = [
    "MAX_RULES",
    "Chain",
    "Firewall",
    "Match",
    "Probe",
    "Rule",
    "Ruleset",
    "Verdict",
    "parse_iptables_save",
    "parse_nft_json",
    "read_firewall",
]

MAX_RULES = 20000
"""Rules read from one tool at most: a ruleset bigger than this is cut (and said so)."""
MAX_OUTPUT = 16 * 1024 * 1024
"""Bytes of a tool's output parsed at most (a cut JSON document is an error, said in the report)."""
MAX_DEPTH = 16
"""Nested jumps followed at most (the kernel allows 16 too)."""
MAX_STEPS = 100000
"""Rules looked at per walk at most."""
TOOL_TIMEOUT = 10.0

PROTOCOLS = {"icmp": 1, "igmp": 2, "tcp": 6, "udp": 17, "gre": 47, "esp": 50, "ah": 51, "sctp": 132, "udplite": 136}
_HOOKS = {"PREROUTING": "prerouting", "INPUT": "input", "FORWARD": "forward", "OUTPUT": "output"}
_HOOKS["POSTROUTING"] = "postrouting"
_IPTABLES_PRIORITY = {"raw": -300, "mangle": -150, "nat": 0, "filter": 0, "security": 50}
_NAT_PRIORITY = {"prerouting": -100, "input": 100, "output": -100, "postrouting": 100}
IPTABLES_NFT_TABLES = ("filter", "nat", "mangle", "raw", "security")

Field = Literal["proto", "dport", "saddr", "daddr", "iif", "oif", "ctstate", "other"]


@dataclasses.dataclass(frozen=True)
class Match:
    """One condition of a rule.  ``values``: protocol numbers (``proto``), (low, high) port ranges
    (``dport``, for protocol ``proto``), networks (``saddr``/``daddr``), interface names, a trailing
    ``*`` for a prefix (``iif``/``oif``), conntrack states (``ctstate``); ``other``: not understood."""

    field: Field
    values: tuple[Any, ...] = ()
    negate: bool = False
    proto: int = 0
    text: str = ""

    def test(self, probe: Probe) -> bool | None:
        """True or False for ``probe``; None when it cannot be told (the probe leaves that field open)."""
        field = self.field
        if field == "proto":
            return (probe.proto in self.values) != self.negate
        if field == "dport":
            if probe.dport is None or probe.proto != (self.proto or probe.proto):
                return False  # "tcp dport" implies TCP, negated or not ("th dport": any protocol with ports)
            return any(low <= probe.dport <= high for low, high in self.values) != self.negate
        if field in ("saddr", "daddr"):
            address = probe.saddr if field == "saddr" else probe.daddr
            if any(network.prefixlen == 0 for network in self.values):
                return not self.negate
            if address is None:
                return None
            return any(address in network for network in self.values) != self.negate
        if field in ("iif", "oif"):
            name = probe.iif if field == "iif" else probe.oif
            if name is None:  # an interface not known, but a real one: never the loopback
                return self.negate if self.values == ("lo",) else None
            return any(_name_matches(pattern, name) for pattern in self.values) != self.negate
        if field == "ctstate":
            return (probe.ctstate in self.values) != self.negate
        return None


def _name_matches(pattern: str, name: str) -> bool:
    if pattern.endswith("*"):
        return name.startswith(pattern[:-1])
    return name == pattern


Action = Literal["accept", "drop", "return", "jump", "goto", "masquerade", "snat", "unknown", "none"]


@dataclasses.dataclass
class Rule:
    """Conditions (all must hold) and what happens then; ``none``: the rule only counts or logs."""

    matches: list[Match]
    action: Action
    target: str = ""
    text: str = ""


@dataclasses.dataclass
class Chain:
    family: str
    table: str
    name: str
    hook: str | None = None
    kind: str = "filter"
    priority: int = 0
    policy: str = "accept"
    rules: list[Rule] = dataclasses.field(default_factory=list)
    origin: str = "nft"
    """The tool that shows it: ``nft``, ``iptables`` (iptables-nft) or ``iptables-legacy``."""


@dataclasses.dataclass(frozen=True)
class Probe:
    """One packet to walk through the rules; None leaves a field open (any client address, say)."""

    proto: int
    dport: int | None = None
    saddr: IPv4Address | None = None
    daddr: IPv4Address | None = None
    iif: str | None = None
    oif: str | None = None
    ctstate: str = "new"


@dataclasses.dataclass
class Verdict:
    """What the rules do to a probe: ``accept``/``drop`` (filter), ``nat``/``none`` (a NAT walk).
    ``rule``: the deciding rule (None: a policy, or nothing there); ``chain``: where it was decided;
    ``doubts``: rules not understood that could have decided otherwise."""

    outcome: str
    chain: Chain | None = None
    rule: Rule | None = None
    doubts: list[Rule] = dataclasses.field(default_factory=list)
    base: Chain | None = None
    """The base chain whose walk decided (``chain`` may be one it jumped to)."""

    @property
    def certain(self) -> bool:
        return not self.doubts

    def where(self) -> str:
        if self.chain is None:
            return "no chain on this path"
        place = f"{self.chain.family} {self.chain.table} {self.chain.name}"
        return f"{place}: {self.rule.text}" if self.rule is not None else f"{place}: policy {self.chain.policy}"


@dataclasses.dataclass
class Ruleset:
    chains: dict[tuple[str, str, str], Chain] = dataclasses.field(default_factory=dict)
    source: str = ""
    """The tools read, for the report."""

    def add(self, chain: Chain) -> Chain:
        return self.chains.setdefault((chain.family, chain.table, chain.name), chain)

    def base_chains(self, hook: str, kind: str) -> list[Chain]:
        """IPv4's base chains (families ``ip`` and ``inet``) of ``hook`` and type ``kind``, in order."""
        found = [c for c in self.chains.values() if c.hook == hook and c.kind == kind and c.family in ("ip", "inet")]
        return sorted(found, key=lambda chain: chain.priority)

    @property
    def empty(self) -> bool:
        return not any(chain.rules or chain.policy != "accept" for chain in self.chains.values())

    def filters(self) -> bool:
        """Whether any filter base chain could drop anything."""
        return any(
            c.hook is not None and c.kind == "filter" and (c.rules or c.policy != "accept")
            for c in self.chains.values()
        )

    def verdict(self, probe: Probe, hooks: Iterable[str]) -> Verdict:
        """Filter the probe through ``hooks`` (e.g. ``("prerouting", "input")``): dropped by the first
        chain that drops it, accepted when every chain accepted it."""
        doubts: list[Rule] = []
        last: Verdict = Verdict("accept")
        for hook in hooks:
            for chain in self.base_chains(hook, "filter"):
                outcome, chain_at, rule = self._walk(chain, probe, 0, doubts, [0])
                if outcome == "return" or outcome == "none":
                    outcome, rule, chain_at = chain.policy, None, chain
                if outcome != "accept":
                    contrary = [d for d in doubts if d.action != "drop"]
                    return Verdict("drop", chain_at, rule, contrary, chain)
                last = Verdict("accept", chain_at, rule, [], chain)
        last.doubts = [d for d in doubts if d.action != "accept"]
        return last

    def nat(self, probe: Probe, hook: str = "postrouting") -> Verdict:
        """Whether a NAT chain of ``hook`` masquerades or SNATs the probe: ``nat`` or ``none``."""
        doubts: list[Rule] = []
        for chain in self.base_chains(hook, "nat"):
            outcome, chain_at, rule = self._walk(chain, probe, 0, doubts, [0])
            if outcome in ("masquerade", "snat"):
                contrary = [d for d in doubts if d.action not in ("masquerade", "snat")]
                return Verdict("nat", chain_at, rule, contrary, chain)
            if outcome not in ("return", "none", "accept"):  # a drop in a NAT chain: nothing is translated
                break
        return Verdict("none", None, None, [d for d in doubts if d.action in ("masquerade", "snat", "jump", "goto")])

    def _walk(
        self, chain: Chain, probe: Probe, depth: int, doubts: list[Rule], steps: list[int]
    ) -> tuple[str, Chain, Rule | None]:
        for rule in chain.rules:
            steps[0] += 1
            if steps[0] > MAX_STEPS:
                doubts.append(rule)
                return "none", chain, None
            results = [match.test(probe) for match in rule.matches]
            if False in results or rule.action == "none":
                continue
            if None in results or rule.action == "unknown":
                doubts.append(rule)
                continue
            if rule.action in ("jump", "goto"):
                sub = self.chains.get((chain.family, chain.table, rule.target))
                if sub is None or depth >= MAX_DEPTH:
                    doubts.append(rule)
                    continue
                outcome, at, decided = self._walk(sub, probe, depth + 1, doubts, steps)
                if outcome in ("return", "none"):
                    if rule.action == "goto":
                        return "return", chain, rule
                    continue
                return outcome, at, decided
            return rule.action, chain, rule
        return "return" if chain.hook is None else "none", chain, None


# -- nftables ---------------------------------------------------------------------------------


def parse_nft_json(text: str) -> Ruleset:
    """``nft -j list ruleset``'s output (raises ValueError when it is not that)."""
    try:
        document = json.loads(text)
        items = document["nftables"]
    except (ValueError, TypeError, KeyError, RecursionError) as exc:
        raise ValueError(f"not nft's JSON: {exc}") from None
    ruleset = Ruleset(source="nftables")
    rules = 0
    for item in items if isinstance(items, list) else ():
        if not isinstance(item, dict):
            continue
        if isinstance(chain := item.get("chain"), dict):
            ruleset.add(_nft_chain(chain))
        elif isinstance(rule := item.get("rule"), dict):
            rules += 1
            if rules > MAX_RULES:
                break
            key = (str(rule.get("family")), str(rule.get("table")), str(rule.get("chain")))
            owner = ruleset.chains.get(key) or ruleset.add(Chain(*key))
            owner.rules.extend(_nft_rule(rule.get("expr") or []))
    return ruleset


def _nft_chain(chain: dict[str, Any]) -> Chain:
    hook = chain.get("hook")
    prio = chain.get("prio", 0)
    return Chain(
        family=str(chain.get("family")),
        table=str(chain.get("table")),
        name=str(chain.get("name")),
        hook=str(hook) if hook else None,
        kind=str(chain.get("type", "filter")),
        priority=prio if isinstance(prio, int) else 0,
        policy=str(chain.get("policy", "accept")),
    )


def _nft_rule(expressions: list[Any]) -> list[Rule]:
    """One rule, or one per entry of its verdict map (``ct state vmap { established : accept, ... }``: the
    entries are disjoint, so the map is the same as a rule per entry)."""
    matches: list[Match] = []
    action: Action = "none"
    target = ""
    words: list[str] = []
    vmap: list[Rule] | None = None
    for expression in expressions if isinstance(expressions, list) else ():
        if not isinstance(expression, dict) or len(expression) != 1:
            matches.append(Match("other", text=str(expression)[:80]))
            continue
        [(key, value)] = expression.items()
        verdict = _nft_verdict(key, value)
        if key == "match" and isinstance(value, dict):
            match = _nft_match(value)
            matches.append(match)
            words.append(match.text)
        elif verdict is not None:
            action, target = verdict
            words.append(_verdict_text(verdict))
        elif key in ("counter", "log", "mangle", "notrack", "meter", "set", "quota"):
            words.append("" if key == "counter" else key)
        elif key in ("limit", "xt") and not (key == "xt" and isinstance(value, dict) and value.get("type") == "target"):
            matches.append(Match("other", text=_xt_name(key, value)))
            words.append(matches[-1].text)
        elif key == "vmap" and (vmap := _nft_vmap(value, matches, words)) is not None:
            break
        else:  # queue, dnat, an xt target, a map not understood...: what it does is not known here
            action = "unknown"
            words.append(_xt_name(key, value))
    if vmap is not None:
        return vmap
    return [Rule(matches, action, target, " ".join(word for word in words if word))]


def _nft_verdict(key: str, value: object) -> tuple[Action, str] | None:
    if key in ("accept", "drop", "return", "masquerade", "snat"):
        return key, ""  # type: ignore[return-value]
    if key == "reject":
        return "drop", ""
    if key in ("jump", "goto") and isinstance(value, dict):
        return key, str(value.get("target", ""))  # type: ignore[return-value]
    return None


def _verdict_text(verdict: tuple[Action, str]) -> str:
    return f"{verdict[0]} {verdict[1]}".strip()


def _nft_vmap(value: object, matches: list[Match], words: list[str]) -> list[Rule] | None:
    """A verdict map's entries as rules after ``matches``; None when it is not understood."""
    if not isinstance(value, dict) or not isinstance(data := value.get("data"), dict):
        return None
    entries = data.get("set")
    if not isinstance(entries, list):
        return None
    rules = []
    for entry in entries:
        if not isinstance(entry, list) or len(entry) != 2 or not isinstance(entry[1], dict) or len(entry[1]) != 1:
            return None
        [(key, inner)] = entry[1].items()
        verdict = _nft_verdict(key, inner)
        match = _nft_match({"op": "==", "left": value.get("key"), "right": entry[0]})
        if verdict is None or match.field == "other":
            return None
        text = " ".join(word for word in [*words, match.text, _verdict_text(verdict)] if word)
        rules.append(Rule([*matches, match], verdict[0], verdict[1], f"{text} (vmap)"))
    return rules


def _xt_name(key: str, value: object) -> str:
    if key == "xt" and isinstance(value, dict):
        return f"xt {value.get('type', '')} {value.get('name', '')}".strip()
    return key


def _nft_match(match: dict[str, Any]) -> Match:
    op, left, right = match.get("op", "=="), match.get("left"), match.get("right")
    text = f"{_nft_text(left)} {'' if op in ('==', 'in') else op + ' '}{_nft_text(right)}"
    negate = op == "!="
    if op not in ("==", "!=", "in") or not isinstance(left, dict):
        return Match("other", text=text)
    if isinstance(payload := left.get("payload"), dict):
        protocol, field = payload.get("protocol"), payload.get("field")
        if protocol == "ip" and field == "protocol":
            return _proto_match(right, negate, text)
        if protocol == "ip" and field in ("saddr", "daddr"):
            networks = _networks(right)
            if networks is not None:
                return Match(field, networks, negate, text=text)
        if protocol in ("tcp", "udp", "sctp", "th") and field == "dport":
            ports = _ports(right)
            if ports is not None:
                return Match("dport", ports, negate, proto=PROTOCOLS.get(protocol, 0), text=text)
    elif isinstance(meta := left.get("meta"), dict):
        key = meta.get("key")
        if key == "l4proto":
            return _proto_match(right, negate, text)
        if key == "nfproto" and right in ("ipv4", "ipv6"):
            return Match("proto", (), negate != (right == "ipv4"), text=text)  # ipv4: always true
        if key in ("iifname", "oifname", "iif", "oif"):  # (iif and oif show the interface's name too)
            names = _strings(right)
            if names is not None:
                return Match("iif" if key.startswith("i") else "oif", names, negate, text=text)
    elif isinstance(ct := left.get("ct"), dict) and ct.get("key") == "state":
        states = _strings(right)
        if states is not None:
            return Match("ctstate", states, negate, text=text)
    return Match("other", text=text)


def _proto_match(right: object, negate: bool, text: str) -> Match:
    values: list[object] = list(_set_items(right))
    numbers = []
    for value in values:
        if isinstance(value, int):
            numbers.append(value)
        elif isinstance(value, str) and value in PROTOCOLS:
            numbers.append(PROTOCOLS[value])
        else:
            return Match("other", text=text)
    return Match("proto", tuple(numbers), negate, text=text)


def _set_items(right: object) -> Iterator[object]:
    if isinstance(right, dict) and isinstance(right.get("set"), list):
        yield from right["set"]
    elif isinstance(right, list):
        yield from right
    else:
        yield right


def _networks(right: object) -> tuple[IPv4Network, ...] | None:
    out = []
    for item in _set_items(right):
        try:
            if isinstance(item, str):
                out.append(IPv4Network(item, strict=False))
            elif isinstance(item, dict) and isinstance(prefix := item.get("prefix"), dict):
                out.append(IPv4Network(f"{prefix.get('addr')}/{prefix.get('len')}", strict=False))
            elif isinstance(item, dict) and isinstance(bounds := item.get("range"), list) and len(bounds) == 2:
                low, high = IPv4Address(bounds[0]), IPv4Address(bounds[1])
                out.extend(ipaddress.summarize_address_range(low, high))
            else:
                return None
        except ValueError:
            return None
    return tuple(out)


def _ports(right: object) -> tuple[tuple[int, int], ...] | None:
    out = []
    for item in _set_items(right):
        if isinstance(item, int):
            out.append((item, item))
        elif isinstance(item, dict) and isinstance(bounds := item.get("range"), list) and len(bounds) == 2:
            if not all(isinstance(bound, int) for bound in bounds):
                return None
            out.append((bounds[0], bounds[1]))
        else:
            return None
    return tuple(out)


def _strings(right: object) -> tuple[str, ...] | None:
    items = list(_set_items(right))
    if not all(isinstance(item, str) for item in items):
        return None
    return tuple(items)  # type: ignore[arg-type]


def _nft_text(value: object) -> str:
    """A short nft-like rendering of an expression, for the report."""
    if isinstance(value, dict) and len(value) == 1:
        [(key, inner)] = value.items()
        if key == "payload" and isinstance(inner, dict):
            return f"{inner.get('protocol')} {inner.get('field')}"
        if key in ("meta", "ct") and isinstance(inner, dict):
            return f"{'meta ' if key == 'meta' else 'ct '}{inner.get('key')}"
        if key == "prefix" and isinstance(inner, dict):
            return f"{inner.get('addr')}/{inner.get('len')}"
        if key == "range" and isinstance(inner, list):
            return "-".join(map(_nft_text, inner))
        if key == "set" and isinstance(inner, list):
            return "{ " + ", ".join(map(_nft_text, inner)) + " }"
        return key
    if isinstance(value, list):
        return ",".join(map(_nft_text, value))
    return str(value)


# -- iptables -----------------------------------------------------------------------------------


def parse_iptables_save(text: str, origin: str = "iptables", tables: Iterable[str] | None = None) -> Ruleset:
    """``iptables-save``'s output; ``tables``: only those.  Chains are named as iptables names them, in
    family ``ip``; iptables-legacy's (``origin``) in tables named ``filter (legacy)``..., apart from
    iptables-nft's."""
    ruleset = Ruleset(source=origin)
    family = "ip"
    wanted = set(tables) if tables is not None else None
    table = ""
    rules = 0
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("*"):
            table = line[1:]
        elif wanted is not None and table not in wanted:
            continue
        elif line.startswith(":") and table:
            parts = line[1:].split()
            if len(parts) >= 2:
                hook = _HOOKS.get(parts[0])
                ruleset.add(
                    Chain(
                        family,
                        _table_name(table, origin),
                        parts[0],
                        hook=hook,
                        kind="nat" if table == "nat" else "filter" if table == "filter" else table,
                        priority=_NAT_PRIORITY.get(hook or "", 0)
                        if table == "nat"
                        else _IPTABLES_PRIORITY.get(table, 0),
                        policy="drop" if parts[1] == "DROP" else "accept",
                        origin=origin,
                    )
                )
        elif line.startswith("-A ") and table:
            rules += 1
            if rules > MAX_RULES:
                break
            try:
                words = shlex.split(line)
            except ValueError:
                continue
            if len(words) < 2:
                continue
            key = (family, _table_name(table, origin), words[1])
            chain = ruleset.chains.get(key) or ruleset.add(Chain(*key, origin=origin))
            chain.rules.append(_iptables_rule(words[2:], line[3 + len(words[1]) :].strip()))
    return ruleset


def _iptables_priority(table: str, hook: str | None) -> int:
    return _NAT_PRIORITY.get(hook or "", 0) if table == "nat" else _IPTABLES_PRIORITY.get(table, 0)


def _table_name(table: str, origin: str) -> str:
    return f"{table} (legacy)" if origin == "iptables-legacy" else table


_TARGETS: dict[str, Action] = {
    "ACCEPT": "accept",
    "DROP": "drop",
    "REJECT": "drop",
    "RETURN": "return",
    "MASQUERADE": "masquerade",
    "SNAT": "snat",
    "LOG": "none",
    "NFLOG": "none",
    "TCPMSS": "none",
    "CT": "none",
    "MARK": "none",
    "CONNMARK": "none",
}


def _iptables_rule(words: list[str], text: str) -> Rule:
    matches: list[Match] = []
    action: Action = "none"
    target = ""
    proto = 0
    negate = False
    i = 0
    while i < len(words):
        word = words[i]
        value = words[i + 1] if i + 1 < len(words) else ""
        if word == "!":
            negate = True
            i += 1
            continue
        step = 2
        if word in ("-p", "--protocol"):
            number = PROTOCOLS.get(value.lower()) if not value.isdigit() else int(value)
            if value.lower() != "all":
                matches.append(
                    Match("proto", (number,), negate, text=f"-p {value}")
                    if number is not None
                    else Match("other", text=f"-p {value}")
                )
            proto = number if number is not None and not negate else 0
        elif word in ("-s", "--source", "-d", "--destination"):
            try:
                networks = tuple(IPv4Network(part, strict=False) for part in value.split(","))
                matches.append(Match("saddr" if word in ("-s", "--source") else "daddr", networks, negate, text=word))
            except ValueError:
                matches.append(Match("other", text=f"{word} {value}"))
        elif word in ("-i", "--in-interface", "-o", "--out-interface"):
            pattern = value[:-1] + "*" if value.endswith("+") else value
            field: Field = "iif" if word in ("-i", "--in-interface") else "oif"
            matches.append(Match(field, (pattern,), negate, text=f"{word} {value}"))
        elif word in ("--dport", "--destination-port", "--dports", "--destination-ports"):
            ports = _iptables_ports(value)
            if ports is None or not proto:
                matches.append(Match("other", text=f"{word} {value}"))
            else:
                matches.append(Match("dport", ports, negate, proto=proto, text=f"--dport {value}"))
        elif word in ("--ctstate", "--state"):
            states = tuple(state.lower() for state in value.split(","))
            matches.append(Match("ctstate", states, negate, text=f"{word} {value}"))
        elif word in ("-m", "--match"):
            if value not in ("tcp", "udp", "multiport", "conntrack", "state", "comment"):
                matches.append(Match("other", text=f"-m {value}"))
        elif word in ("-j", "--jump", "-g", "--goto"):
            known = _TARGETS.get(value)
            if known is not None:
                action = known
            elif value.isupper():  # another extension target: not understood
                action = "unknown"
            else:
                action, target = ("goto" if word in ("-g", "--goto") else "jump"), value
            i = len(words)  # the target's own options follow
            continue
        elif word == "--comment":
            pass
        elif word.startswith("-"):
            # an option of an extension not understood: its rule is a doubt (arguments skipped)
            matches.append(Match("other", text=word))
            step = 1
            while i + step < len(words) and not words[i + step].startswith("-") and words[i + step] != "!":
                step += 1
        else:
            step = 1
        negate = False
        i += step
    return Rule(matches, action, target, text)


def _iptables_ports(value: str) -> tuple[tuple[int, int], ...] | None:
    out = []
    for part in value.split(","):
        low, _, high = part.partition(":")
        if not low.isdigit() or (high and not high.isdigit()):
            return None
        out.append((int(low), int(high or low)))
    return tuple(out)


# -- reading the host --------------------------------------------------------------------------


@dataclasses.dataclass
class Firewall:
    """What :func:`read_firewall` found: the merged rules, the tools used, and why some could not be read."""

    ruleset: Ruleset
    tools: list[str]
    problems: list[str]
    tool: str
    """The tool the fixes are written for: ``nft``, or ``iptables`` when its tables carry the rules."""


def _run(argv: list[str]) -> tuple[str | None, str]:
    """A tool's output, or None and why not."""
    if shutil.which(argv[0]) is None:
        return None, f"{argv[0]} not installed"
    try:
        result = subprocess.run(argv, capture_output=True, timeout=TOOL_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"{argv[0]}: {exc}"
    if result.returncode != 0:
        error = result.stderr.decode(errors="replace").strip().splitlines()
        return None, f"{' '.join(argv)}: {error[-1] if error else f'exit status {result.returncode}'}"
    return result.stdout[:MAX_OUTPUT].decode(errors="replace"), ""


def read_firewall() -> Firewall:
    """The packet filter of this network namespace, as far as the installed tools show it."""
    ruleset = Ruleset()
    tools: list[str] = []
    problems: list[str] = []
    nft_text, why = _run(["nft", "-j", "list", "ruleset"])
    managed: set[str] = set()
    legacy_read = False
    if nft_text is not None:
        try:
            nft = parse_nft_json(nft_text)
        except ValueError as exc:
            problems.append(f"nft: {exc}")
        else:
            tools.append("nft")
            ruleset.chains.update(nft.chains)
            managed = {t for (f, t, name) in nft.chains if f == "ip" and t in IPTABLES_NFT_TABLES and name in _HOOKS}
    else:
        problems.append(f"cannot read nftables: {why}")
    if nft_text is None or managed:
        # iptables-nft's tables are nft tables, but nft's JSON shows their conntrack matches and REJECT or
        # MASQUERADE targets as opaque xt expressions: iptables-save renders them in full.  Without nft,
        # this is all there is to read.
        save, why = _run(["iptables-save"])
        if save is not None and nft_text is None and "nf_tables" not in save:  # iptables is legacy here
            ruleset.chains.update(parse_iptables_save(save, origin="iptables-legacy").chains)
            tools.append("iptables-save")
            legacy_read = True
        elif save is not None and (nft_text is None or "nf_tables" in save):
            for key in [key for key in ruleset.chains if key[0] == "ip" and key[1] in managed]:
                del ruleset.chains[key]
            ruleset.chains.update(parse_iptables_save(save, tables=managed or None).chains)
            tools.append("iptables-save")
        elif save is None and nft_text is None:
            problems.append(f"cannot read iptables: {why}")
        elif managed:
            for key in [key for key in ruleset.chains if key[0] == "ip" and key[1] in managed]:
                ruleset.chains[key].origin = "iptables"
    if _legacy_tables() and not legacy_read:
        legacy, why = _run(["iptables-legacy-save"])
        if legacy is not None:
            ruleset.chains.update(parse_iptables_save(legacy, origin="iptables-legacy").chains)
            tools.append("iptables-legacy-save")
        else:
            problems.append(f"iptables-legacy has tables but cannot be read: {why}")
    ruleset.source = ", ".join(tools)
    return Firewall(ruleset, tools, problems, _fix_tool(ruleset, "nft" in tools))


def _fix_tool(ruleset: Ruleset, nft: bool) -> str:
    """nft, unless the rules that filter are iptables' (or nft is not installed)."""
    active = [c for c in ruleset.chains.values() if c.hook is not None and (c.rules or c.policy != "accept")]
    if not nft or (active and all(c.origin != "nft" for c in active)):
        return "iptables"
    return "nft"


def _legacy_tables() -> bool:
    """Whether iptables-legacy holds any table (the ip_tables module lists them; not loaded: none)."""
    try:
        with open("/proc/net/ip_tables_names", encoding="ascii") as f:
            return bool(f.read(4096).strip())
    except OSError:
        return False
