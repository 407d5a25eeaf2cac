"""The firewall model without a kernel: nft's JSON and iptables-save's text parsed, and packets walked.

The live rulesets are exercised in tests/test_diagnose_netns.py; here, the semantics that a real
ruleset rarely shows all at once (jump, goto and return, negations, interface wildcards, rules not
understood), and hostile input: whatever the tools print, parsing either works or raises ValueError,
and a walk always ends.
"""

from __future__ import annotations

import contextlib
import json
from ipaddress import IPv4Address
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from pypptp.host.firewall import MAX_RULES, Probe, parse_iptables_save, parse_nft_json

INPUT = ("prerouting", "input")
GRE = Probe(47, iif="eth0")
TCP_1723 = Probe(6, 1723, iif="eth0")


def nft(*rules: tuple[str, list[dict[str, Any]]], policy: str = "drop", hook: str = "input") -> str:
    """A one-table ruleset: base chain ``base`` on ``hook``, other chains made as rules name them."""
    items: list[dict[str, Any]] = [
        {"chain": {"family": "inet", "table": "t", "name": "base", "type": "filter", "hook": hook, "prio": 0}},
    ]
    items[0]["chain"]["policy"] = policy
    for chain, expr in rules:
        items.append({"rule": {"family": "inet", "table": "t", "chain": chain, "expr": expr}})
    return json.dumps({"nftables": items})


def match(left: dict[str, Any], right: object, op: str = "==") -> dict[str, Any]:
    return {"match": {"op": op, "left": left, "right": right}}


L4 = {"meta": {"key": "l4proto"}}
DPORT = {"payload": {"protocol": "tcp", "field": "dport"}}
IIF = {"meta": {"key": "iifname"}}
ACCEPT: dict[str, Any] = {"accept": None}


def test_jump_return_and_goto() -> None:
    text = nft(
        ("base", [{"jump": {"target": "a"}}]),
        ("base", [match(L4, "gre"), {"drop": None}]),
        ("base", [ACCEPT]),
        ("a", [match(L4, "tcp"), {"goto": {"target": "b"}}]),
        ("a", [{"return": None}]),
        ("b", [match(DPORT, 1723), ACCEPT]),
    )
    ruleset = parse_nft_json(text)
    verdict = ruleset.verdict(TCP_1723, INPUT)
    assert verdict.outcome == "accept" and verdict.certain and verdict.chain is not None
    assert verdict.chain.name == "b" and verdict.base is not None and verdict.base.name == "base"
    # TCP to another port: b ends without a verdict, the goto returns to base's caller position: the
    # rest of base runs (not GRE: accepted by its last rule)
    assert ruleset.verdict(Probe(6, 22), INPUT).outcome == "accept"
    assert ruleset.verdict(GRE, INPUT).outcome == "drop"


def test_negation_and_interface_wildcards() -> None:
    ruleset = parse_nft_json(nft(("base", [match(IIF, "ppp*", "!="), match(L4, "gre"), ACCEPT])))
    assert ruleset.verdict(GRE, INPUT).outcome == "accept"
    assert ruleset.verdict(Probe(47, iif="ppp3"), INPUT).outcome == "drop"
    # the interface unknown: the rule might or might not apply, and the verdict says so
    assert not ruleset.verdict(Probe(47), INPUT).certain
    # unless it is the loopback's, which a packet from a client never comes in on
    ruleset = parse_nft_json(nft(("base", [match(IIF, "lo"), ACCEPT])))
    assert ruleset.verdict(Probe(47), INPUT).outcome == "drop" and ruleset.verdict(Probe(47), INPUT).certain


def test_a_rule_not_understood_makes_the_verdict_uncertain_only_when_it_could_change_it() -> None:
    ruleset = parse_nft_json(
        nft(("base", [match(DPORT, "@allowed"), ACCEPT]), ("base", [match(DPORT, 1723), {"drop": None}]))
    )
    verdict = ruleset.verdict(TCP_1723, INPUT)
    assert verdict.outcome == "drop" and not verdict.certain and "@allowed" in verdict.doubts[0].text
    # a drop not understood does not make an explicit drop uncertain
    ruleset = parse_nft_json(nft(("base", [{"limit": {"rate": 1}}, {"drop": None}])))
    verdict = ruleset.verdict(TCP_1723, INPUT)
    assert verdict.outcome == "drop" and verdict.certain and verdict.rule is None


def test_every_base_chain_of_a_hook_must_accept() -> None:
    accept_all = json.loads(nft(policy="accept"))
    drop_gre = json.loads(nft(("base", [match(L4, "gre"), {"drop": None}]), policy="accept"))
    for item in drop_gre["nftables"]:
        for kind in ("chain", "rule"):
            if kind in item:
                item[kind]["table"] = "u"
    text = json.dumps({"nftables": accept_all["nftables"] + drop_gre["nftables"]})
    verdict = parse_nft_json(text).verdict(GRE, INPUT)
    assert verdict.outcome == "drop" and verdict.chain is not None and verdict.chain.table == "u"


def test_nat_walk() -> None:
    saddr = {"payload": {"protocol": "ip", "field": "saddr"}}
    text = nft(
        ("base", [match(saddr, {"prefix": {"addr": "192.168.0.0", "len": 24}}), {"masquerade": None}]),
        hook="postrouting",
        policy="accept",
    )
    text = text.replace('"type": "filter"', '"type": "nat"')
    ruleset = parse_nft_json(text)
    assert ruleset.nat(Probe(6, 443, saddr=IPv4Address("192.168.0.234"))).outcome == "nat"
    assert ruleset.nat(Probe(6, 443, saddr=IPv4Address("192.168.1.234"))).outcome == "none"


IPTABLES = """# Generated by iptables-save
*filter
:INPUT DROP [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:vpn - [0:0]
-A INPUT -i lo -j ACCEPT
-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A INPUT ! -i eth0 -p gre -j DROP
-A INPUT -p tcp -m multiport --dports 22,1700:1800 -g vpn
-A INPUT -p 47 -m comment --comment "the GRE of PPTP" -j ACCEPT
-A INPUT -m recent --name x --rcheck --seconds 60 -j DROP
-A vpn -s 203.0.113.0/24 -j RETURN
-A vpn -p tcp --dport 1723 -j ACCEPT
-A FORWARD -i ppp+ -o eth0 -j ACCEPT
COMMIT
*nat
:POSTROUTING ACCEPT [0:0]
-A POSTROUTING -s 192.168.0.0/24 -o eth0 -j MASQUERADE
COMMIT
"""


def test_iptables_save() -> None:
    ruleset = parse_iptables_save(IPTABLES)
    verdict = ruleset.verdict(TCP_1723, INPUT)
    assert verdict.outcome == "accept" and not verdict.certain  # vpn's RETURN for some sources: unknown here
    verdict = ruleset.verdict(Probe(6, 1723, saddr=IPv4Address("198.18.0.2"), iif="eth0"), INPUT)
    assert verdict.outcome == "accept" and verdict.certain and verdict.chain is not None
    assert verdict.chain.name == "vpn"
    verdict = ruleset.verdict(Probe(6, 1723, saddr=IPv4Address("203.0.113.9"), iif="eth0"), INPUT)
    assert verdict.outcome == "drop"  # goto vpn, RETURN: back past INPUT's rules, to the policy
    assert ruleset.verdict(GRE, INPUT).outcome == "accept"
    assert ruleset.verdict(Probe(47, iif="eth1"), INPUT).outcome == "drop"
    # -m recent is not understood: a drop after all accepts changes nothing for GRE, but UDP is unsure
    assert ruleset.verdict(Probe(17, 53, iif="eth0"), INPUT).doubts == []
    forward = ruleset.verdict(Probe(6, 443, iif="ppp0", oif="eth0"), ("forward",))
    assert forward.outcome == "accept" and forward.certain
    assert ruleset.nat(Probe(6, 443, saddr=IPv4Address("192.168.0.9"), oif="eth0")).outcome == "nat"
    assert ruleset.nat(Probe(6, 443, saddr=IPv4Address("192.168.0.9"), oif="eth1")).outcome == "none"


def test_iptables_bounds_and_bad_lines() -> None:
    lines = ["*filter", ":INPUT ACCEPT [0:0]", '-A INPUT -p tcp -m comment --comment "unbalanced -j DROP']
    lines += ["-A INPUT -p tcp -j DROP"] * (MAX_RULES + 10) + ["COMMIT"]
    ruleset = parse_iptables_save("\n".join(lines))
    assert len(ruleset.chains["ip", "filter", "INPUT"].rules) == MAX_RULES - 1  # (the unbalanced line counts)
    assert ruleset.verdict(TCP_1723, INPUT).outcome == "drop"


def test_jump_loops_end() -> None:
    text = "*filter\n:INPUT DROP [0:0]\n:a - [0:0]\n:b - [0:0]\n-A INPUT -j a\n-A a -j b\n-A b -j a\nCOMMIT\n"
    verdict = parse_iptables_save(text).verdict(TCP_1723, INPUT)
    assert verdict.outcome == "drop" and not verdict.certain


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=30,
)
keys = st.sampled_from(["match", "accept", "drop", "jump", "goto", "counter", "xt", "reject", "vmap", "limit"])
expression = st.dictionaries(keys, json_values, min_size=1, max_size=2)


@given(st.lists(st.lists(expression, max_size=5), max_size=6), json_values)
def test_nft_json_of_any_shape_parses_or_raises_value_error(rules: list[list[Any]], junk: object) -> None:
    items: list[Any] = [
        {"chain": {"family": "inet", "table": "t", "name": "base", "type": "filter", "hook": "input", "prio": junk}},
        junk,
    ]
    items += [{"rule": {"family": "inet", "table": "t", "chain": "base", "expr": expr}} for expr in rules]
    ruleset = parse_nft_json(json.dumps({"nftables": items}))
    assert ruleset.verdict(TCP_1723, INPUT).outcome in ("accept", "drop")
    for text in ("", "[]", "{}", '{"nftables": 3}', "nft: not json"):
        with contextlib.suppress(ValueError):
            parse_nft_json(text)


@given(st.text(alphabet=st.sampled_from(list("*:-A !\n\"' INPUTDROPjpg1723tcpa")), max_size=300))
def test_iptables_text_of_any_shape_parses(text: str) -> None:
    ruleset = parse_iptables_save("*filter\n" + text)
    assert ruleset.verdict(TCP_1723, INPUT).outcome in ("accept", "drop")


def test_verdict_maps_and_transport_ports() -> None:
    """``nft -j`` of: ct state vmap { established : accept, related : accept, invalid : drop }; iif "lo"
    accept; meta l4proto vmap { tcp : jump tcpin, gre : accept }; th dport 1723 accept; and tcpin:
    tcp dport vmap { 22 : accept, 1700-1800 : drop } (nft 1.0.6's output)."""
    states: list[Any] = [["invalid", {"drop": None}], ["established", ACCEPT], ["related", ACCEPT]]
    vmap = [{"vmap": {"key": {"ct": {"key": "state"}}, "data": {"set": states}}}]
    l4 = [{"vmap": {"key": L4, "data": {"set": [["tcp", {"jump": {"target": "tcpin"}}], ["gre", ACCEPT]]}}}]
    ports = {"set": [[22, ACCEPT], [{"range": [1700, 1800]}, {"drop": None}]]}
    text = nft(
        ("base", vmap),
        ("base", [match({"meta": {"key": "iif"}}, "lo"), ACCEPT]),
        ("base", l4),
        ("base", [match({"payload": {"protocol": "th", "field": "dport"}}, 1723), ACCEPT]),
        ("tcpin", [{"vmap": {"key": DPORT, "data": ports}}]),
    )
    ruleset = parse_nft_json(text)
    verdict = ruleset.verdict(GRE, INPUT)
    assert verdict.outcome == "accept" and verdict.certain and verdict.rule is not None
    assert verdict.rule.text == "meta l4proto gre accept (vmap)"
    verdict = ruleset.verdict(TCP_1723, INPUT)
    assert verdict.outcome == "drop" and verdict.certain and verdict.chain is not None
    assert verdict.chain.name == "tcpin"
    assert ruleset.verdict(Probe(17, 1723), INPUT).outcome == "accept"  # th dport: UDP too
    assert ruleset.verdict(Probe(6, 22), INPUT).outcome == "accept"
    assert ruleset.verdict(Probe(47, ctstate="invalid"), INPUT).outcome == "drop"
    assert ruleset.verdict(Probe(1, iif="lo"), INPUT).outcome == "accept"
    # a map of something not understood: one rule, a doubt
    odd = nft(("base", [{"vmap": {"key": {"meta": {"key": "mark"}}, "data": {"set": [[1, ACCEPT]]}}}]))
    assert not parse_nft_json(odd).verdict(GRE, INPUT).certain
