"""pppd options files: word syntax, every option we implement, pppd's semantics, errors with file and line."""

from __future__ import annotations

import os
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest

from pypptp.conf.pppd_options import (
    OPTIONS,
    PPPD_ONLY,
    OptionsError,
    PppdOptions,
    parse_pppd_options,
    read_pppd_options,
)
from pypptp.ppp.auth import AuthConfig
from pypptp.ppp.ccp import MPPE_WORDS, MppePolicy
from pypptp.ppp.fsm import FsmConfig
from pypptp.ppp.ipcp import IpcpConfig
from pypptp.ppp.ipv6cp import Ipv6cpConfig
from pypptp.ppp.lcp import AUTH_CHAP_MD5, AUTH_MSCHAP_V1, AUTH_MSCHAP_V2, AUTH_PAP, LcpConfig
from pypptp.ppp.link import LinkConfig
from tests.seed import DEBIAN_PPTPD_OPTIONS

LOCAL, PEER = IPv4Address("192.168.0.1"), IPv4Address("192.168.0.234")


def parse(text: str, path: str = "opts") -> PppdOptions:
    return parse_pppd_options(text, path)


def test_debian_pptpd_options_make_the_expected_link_config() -> None:
    options = parse(DEBIAN_PPTPD_OPTIONS, "/etc/ppp/pptpd-options")
    assert options.warnings == []
    assert [note.split(":", 2)[1] for note in options.notes] == ["20", "21", "22", "23", "24"]
    assert options.proxyarp and not options.defaultroute and options.name == "pptpd"
    assert options.link_config(local_address=LOCAL, peer_address=PEER, unit=3) == LinkConfig(
        server=True,
        lcp=LcpConfig(server=True, mru=1500, auth_methods=(AUTH_MSCHAP_V2,), pfc=True, acfc=True),
        fsm=FsmConfig(),
        auth=AuthConfig(our_name="pptpd"),
        ipcp=IpcpConfig(
            server=True,
            local_address=LOCAL,
            peer_address=PEER,
            dns=(IPv4Address("8.8.8.8"), IPv4Address("8.8.4.4")),
            unit=3,
        ),
        mppe=MppePolicy(enabled=True, required=True, strengths=(128,), stateful=False),
        unit=3,
    )


def test_empty_file_gives_pypptp_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("socket.gethostname", lambda: "vpn-host")
    config = parse("# nothing\n").link_config(local_address="198.18.0.1", peer_address="198.18.0.2", unit=0)
    assert config == LinkConfig(
        auth=AuthConfig(our_name="vpn-host"),
        ipcp=IpcpConfig(local_address=IPv4Address("198.18.0.1"), peer_address=IPv4Address("198.18.0.2")),
    )


# -- word syntax ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "attribute", "expected"),
    [
        ("name 'my server'", "name", "my server"),
        ('name "my server"', "name", "my server"),
        (r"name my\ server", "name", "my server"),
        (r"name a\sb", "name", "a b"),
        ('name my"serv"er', "name", "myserver"),
        ("name x # a comment\n", "name", "x"),
        ("name x#comment", "name", "x"),
        (r"name \x41\102", "name", "AB"),
        ("name\nsplit", "name", "split"),  # the argument may sit on the next line
        ("name \\\ncontinued", "name", "continued"),
        ("logfile /var/log/pptp.log", "logfile", "/var/log/pptp.log"),
        ("ipparam 'office vpn'", "ipparam", "office vpn"),
    ],
)
def test_word_syntax(text: str, attribute: str, expected: str) -> None:
    assert getattr(parse(text), attribute) == expected


def test_several_options_on_one_line_and_comments() -> None:
    options = parse("proxyarp debug dump # and then\n  mtu 1400 mru 1400  # sizes\n")
    assert (options.proxyarp, options.debug, options.dump, options.mtu, options.mru) == (True, True, True, 1400, 1400)


# -- each option --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mtu 1400", {"mtu": 1400}),
        ("mru 1396", {"mru": 1396}),
        ("mtu 0x578", {"mtu": 1400}),  # pppd's numbers: C syntax
        ("mru 02564", {"mru": 1396}),  # octal
        ("lcp-echo-interval 30 lcp-echo-failure 4", {"echo_interval": 30, "echo_failure": 4}),
        ("lcp-restart 2", {"lcp_restart": 2}),
        ("lcp-max-configure 7 lcp-max-terminate 3 lcp-max-failure 9", {"lcp_max_configure": 7}),
        ("idle 600 maxconnect 3600", {"idle": 600, "maxconnect": 3600}),
        ("debug dump", {"debug": True, "dump": True}),
        ("logfile /tmp/x", {"logfile": "/tmp/x"}),
        ("proxyarp", {"proxyarp": True}),
        ("proxyarp noproxyarp", {"proxyarp": False}),
        ("defaultroute", {"defaultroute": True}),
        ("defaultroute nodefaultroute", {"defaultroute": False}),
        ("chapms-strip-domain", {"strip_domain": True}),
        ("+ipv6", {"ipv6": True}),
        ("+ipv6 noipv6", {"ipv6": False}),
        ("ipv6cp-use-ipaddr", {"ipv6cp_use_ipaddr": True}),
        ("ipparam branch", {"ipparam": "branch"}),
        ("usepeerdns", {"usepeerdns": True}),
        ("noccp", {"noccp": True}),
        ("chap-secrets /etc/ppp/vpn-secrets", {"chap_secrets": "/etc/ppp/vpn-secrets"}),
        ("chap-restart 5 chap-max-challenge 4", {"chap_restart": 5, "chap_max_challenge": 4}),
        ("ms-wins 198.18.0.5", {"wins": [IPv4Address("198.18.0.5")]}),
        ("name a name b", {"name": "b"}),  # the last one wins
    ],
)
def test_options(text: str, expected: dict[str, Any]) -> None:
    options = parse(text)
    assert {key: getattr(options, key) for key in expected} == expected
    assert options.warnings == []


def test_lcp_and_auth_timers_reach_the_link_config() -> None:
    text = "lcp-restart 2 lcp-max-configure 7 lcp-max-terminate 3 lcp-max-failure 9 lcp-echo-interval 30\n"
    text += "lcp-echo-failure 4 chap-restart 5 chap-max-challenge 4 mru 1400 chapms-strip-domain name gw\n"
    config = parse(text).link_config(local_address=LOCAL, peer_address=PEER, unit=0)
    assert config.fsm == FsmConfig(restart_timeout=2.0, max_configure=7, max_terminate=3, max_failure=9)
    assert (config.echo_interval, config.echo_failure, config.lcp.mru) == (30.0, 4, 1400)
    assert config.auth == AuthConfig(our_name="gw", strip_domain=True, restart_timeout=5.0, max_challenges=4)


THIRD_DNS = "opts:1: a third ms-dns: the last two given are used, as pppd does"


@pytest.mark.parametrize(
    ("text", "dns", "warnings"),
    [
        ("ms-dns 8.8.8.8", ("8.8.8.8", "8.8.8.8"), []),  # pppd: one address is both primary and secondary
        ("ms-dns 8.8.8.8 ms-dns 8.8.4.4", ("8.8.8.8", "8.8.4.4"), []),
        ("ms-dns 192.0.2.53 ms-dns 8.8.8.8 ms-dns 8.8.4.4", ("8.8.8.8", "8.8.4.4"), [THIRD_DNS]),  # the last two
        ("", (), []),
    ],
)
def test_ms_dns_follows_pppd(text: str, dns: tuple[str, ...], warnings: list[str]) -> None:
    options = parse(text + "\nms-wins 198.18.0.9\n")
    config = options.link_config(local_address=LOCAL, peer_address=PEER, unit=0)
    assert config.ipcp.dns == tuple(IPv4Address(a) for a in dns)
    assert config.ipcp.wins == (IPv4Address("198.18.0.9"), IPv4Address("198.18.0.9"))
    assert options.warnings == warnings


@pytest.mark.parametrize(
    ("word", "attribute"), [("nopcomp", "pfc"), ("-pc", "pfc"), ("noaccomp", "acfc"), ("-ac", "acfc")]
)
def test_nopcomp_noaccomp_turn_compression_off_with_a_warning(word: str, attribute: str) -> None:
    options = parse(f"\n{word}\n")
    assert getattr(options, attribute) is False
    assert getattr(options.link_config(local_address=LOCAL, peer_address=PEER, unit=0).lcp, attribute) is False
    assert options.warnings == [
        f"opts:2: {word}: we no longer ask for it, but still accept the peer's request (pppd Rejects it)"
    ]


def test_ipv6cp_use_ipaddr_makes_the_interface_identifier() -> None:
    config = parse("+ipv6 ipv6cp-use-ipaddr").link_config(local_address=LOCAL, peer_address=PEER, unit=0)
    assert config.ipv6 and config.ipv6cp == Ipv6cpConfig(interface_id=bytes(4) + LOCAL.packed, use_ipaddr=True)


def test_name_defaults_to_the_host_name_like_pppd(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("socket.gethostname", lambda: "gateway.example.org")
    assert parse("").our_name == "gateway.example.org"
    assert parse("name pptpd").our_name == "pptpd"


@pytest.mark.parametrize(
    "word",
    [
        "lock", "nolock", "nobsdcomp", "nodeflate", "novj", "novjccomp", "nologfd", "noipx", "crtscts", "local",
        "persist", "passive", "silent", "hide-password", "show-password", "default-asyncmap", "modem",
    ],
)  # fmt: skip
def test_legacy_options_are_noted_not_warned(word: str) -> None:
    options = parse(f"{word}\n")
    assert options.warnings == []
    assert len(options.notes) == 1 and options.notes[0].startswith(f"opts:1: {word!r} ignored: ")


@pytest.mark.parametrize(("word", "argument"), [("asyncmap", "0"), ("holdoff", "10")])
def test_legacy_options_with_an_argument_consume_it(word: str, argument: str) -> None:
    options = parse(f"{word} {argument} proxyarp")
    assert options.warnings == [] and options.proxyarp
    assert options.notes[0].startswith(f"opts:1: '{word} {argument}' ignored: ")


def test_address_words_are_noted() -> None:
    options = parse("198.18.0.1:198.18.0.2\n:198.18.0.3\n")
    assert options.warnings == []
    assert [n.split(": ", 1)[0] for n in options.notes] == ["opts:1", "opts:2"]


def test_pppd_options_pypptp_lacks_are_warned_with_file_and_line() -> None:
    options = parse("proxyarp\n\nlcp-echo-adaptive\nkdebug 1\n", "/etc/ppp/pptpd-options")
    assert options.warnings == [
        "/etc/ppp/pptpd-options:3: 'lcp-echo-adaptive' ignored: pppd option not implemented by pypptp",
        "/etc/ppp/pptpd-options:4: 'kdebug 1' ignored: pppd option not implemented by pypptp",
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # the two: pppd says "unrecognized option" and refuses to start
        ("requre-mppe-128\n", "opts:1: unknown pppd option 'requre-mppe-128': pppd refuses to start on it "
         "(every call would fail); did you mean 'require-mppe-128'? Correct it or remove it"),
        ("proxyarp\nms-dsn 8.8.8.8\n", "opts:2: unknown pppd option 'ms-dsn': pppd refuses to start on it "
         "(every call would fail); did you mean 'ms-dns'? Correct it or remove it"),
        ("xyzzy\n", "opts:1: unknown pppd option 'xyzzy': pppd refuses to start on it (every call would fail); "
         "remove it"),
        ("Proxyarp\n", "opts:1: unknown pppd option 'Proxyarp': pppd refuses to start on it (every call would "
         "fail); did you mean 'proxyarp'? Correct it or remove it"),
    ],
)  # fmt: skip
def test_an_unknown_option_is_an_error_with_the_closest_option(text: str, message: str) -> None:
    with pytest.raises(OptionsError) as caught:
        parse(text)
    assert caught.value.messages == (message,) and str(caught.value) == message


def test_every_unknown_option_is_reported_at_once(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    first.write_text("requre-mppe-128 lock\n")
    second.write_text("proxyarp\nms-dsn 8.8.8.8 192.0.2.53\nnovj\nnobsdcomp-x\n")
    with pytest.raises(OptionsError) as caught:
        read_pppd_options([str(first), str(second)])
    assert [m.split(": ", 2)[:2] for m in caught.value.messages] == [
        [f"{first}:1", "unknown pppd option 'requre-mppe-128'"],
        [f"{second}:2", "unknown pppd option 'ms-dsn'"],  # its two addresses are not two more errors
        [f"{second}:4", "unknown pppd option 'nobsdcomp-x'"],
    ]


def test_after_a_plugin_an_unknown_option_is_only_warned() -> None:
    options = parse("plugin /usr/lib/pppd/2.4.9/winbind.so\nntlm_auth-helper /usr/bin/ntlm_auth\n")
    assert options.warnings[1] == (
        "opts:2: unknown pppd option 'ntlm_auth-helper' ignored: perhaps an option of the plugin (opts:1), "
        "which pypptp does not load"
    )


def test_the_radius_plugin_and_its_options() -> None:
    options = parse(
        "plugin /usr/lib/pppd/2.4.9/radius.so\nradius-config-file /etc/radcli/radiusclient.conf\n"
        "radius-dae-listen 198.18.0.1:3799\nradius-dae-clients /etc/ppp/dae-clients\nmap-to-ifname\n"
        "avpair Service-Type=Framed-User\n"
    )
    assert options.radius and options.radius_config_file == "/etc/radcli/radiusclient.conf"
    assert (options.radius_dae_listen, options.radius_dae_clients) == ("198.18.0.1:3799", "/etc/ppp/dae-clients")
    assert options.warnings == [
        "opts:5: 'map-to-ifname' ignored: not implemented by pypptp's RADIUS",
        "opts:6: 'avpair Service-Type=Framed-User' ignored: not implemented by pypptp's RADIUS",
    ]
    assert not parse("plugin radius.so\n").radius_config_file  # the plugin's default file then
    with pytest.raises(OptionsError, match="opts:1: 'radius-config-file' is an option of pppd's radius plugin"):
        parse("radius-config-file /etc/x\nplugin radius.so\n")  # pppd knows it only once the plugin is loaded
    with pytest.raises(OptionsError, match="unknown pppd option 'radius-config'"):
        parse("plugin radius.so\nradius-config /etc/x\n")  # a typo is no plugin option: an error


def test_a_speed_and_a_device_are_what_pppd_takes_them_for() -> None:
    options = parse("115200\n/dev/ttyS0\nproxyarp\n")
    assert options.notes == ["opts:1: speed '115200' ignored: pptpd gives pppd the speed"]
    assert options.warnings == ["opts:2: device '/dev/ttyS0' ignored: a PPTP call has no serial device"]
    with pytest.raises(OptionsError, match="unknown pppd option '0'"):
        parse("0\n")  # pppd's setspeed refuses a speed of 0 too


def test_every_pppd_option_is_known() -> None:
    """pppd's own option names, as its tables spell them (a sample of each file): none is unknown."""
    for word in (
        "ktune", "ipcp-accept-local", "ipcp-accept-remote", "noipdefault", "lcp-echo-adaptive", "usepeerwins",
        "multilink", "replacedefaultroute", "noresolvconf", "ifname", "remotename", "user", "maxfail", "unit",
        "ip-up-script", "connect-delay", "defaultroute-metric", "netmask", "pap-timeout", "chap-interval",
    ):  # fmt: skip
        assert word in OPTIONS, word
    assert not set(PPPD_ONLY) & set(MPPE_WORDS)


def test_plugin_and_pap_secrets_are_warned() -> None:
    options = parse("plugin rp-pppoe.so\npap-secrets /etc/ppp/pap\n")
    assert options.warnings == [
        "opts:1: 'plugin rp-pppoe.so' ignored: pypptp has no pppd plugins but radius.so",
        "opts:2: 'pap-secrets /etc/ppp/pap' ignored: pypptp checks PAP against the chap-secrets file",
    ]


# -- errors name the file and the line ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("proxyarp\nmtu", "opts:2: option 'mtu' needs an argument"),
        ("\n\nname", "opts:3: option 'name' needs an argument"),
        ("mtu big", "opts:1: mtu needs a whole number, got 'big'"),
        ("mtu 1400.5", "opts:1: mtu needs a whole number"),
        ("mtu -1", "opts:1: mtu needs a whole number"),
        ("mtu 089", "opts:1: mtu needs a whole number"),  # 0... is octal in pppd
        ("\nmru 100", "opts:2: mru must be between 128 and 16384, got '100'"),
        ("mtu 20000", "opts:1: mtu must be between 128 and 16384"),
        ("lcp-restart 0", "opts:1: lcp-restart must be between 1 and"),
        ("lcp-echo-interval x", "opts:1: lcp-echo-interval needs a whole number"),
        ("ms-dns dns.google", "opts:1: ms-dns needs an IPv4 address, got 'dns.google' (host names are not resolved)"),
        ("\nms-wins 198.18.0.300", "opts:2: ms-wins needs an IPv4 address"),
        ("name ''", "opts:1: name must be 1 to 255 bytes long"),
        ("name " + "n" * 256, "opts:1: name must be 1 to 255 bytes long"),
        ("\n\nrequire-eap", "opts:3: require-eap: EAP not supported"),
        ("name 'unterminated\n", "opts:1: unterminated ' quote"),
        ("refuse-mppe-128", "opts:1: 'refuse-mppe-128' refuse every MPPE key length"),
        ("require-mppe-128\nrequire-mppe-40\nrefuse-mppe-40\nrefuse-mppe-128\n", "opts:4: 'refuse-mppe-128'"),
    ],
)
def test_errors_name_file_and_line(text: str, message: str) -> None:
    with pytest.raises(OptionsError) as caught:
        parse(text)
    assert str(caught.value).startswith(message), str(caught.value)


# -- authentication: pppd's semantics, MS-CHAPv2 by default -----------------------------------------


@pytest.mark.parametrize(
    ("text", "methods"),
    [
        ("", (AUTH_MSCHAP_V2,)),
        ("auth", (AUTH_MSCHAP_V2,)),
        ("noauth", ()),
        ("require-mschap-v2", (AUTH_MSCHAP_V2,)),
        ("require-mschap", (AUTH_MSCHAP_V1,)),
        ("require-pap require-chap require-mschap require-mschap-v2",
         (AUTH_MSCHAP_V2, AUTH_MSCHAP_V1, AUTH_CHAP_MD5, AUTH_PAP)),
        ("require-pap require-mschap-v2", (AUTH_MSCHAP_V2, AUTH_PAP)),
        ("+mschap-v2 +mschap", (AUTH_MSCHAP_V2, AUTH_MSCHAP_V1)),  # pppd's aliases
        ("+chap", (AUTH_CHAP_MD5,)),
        ("refuse-pap refuse-chap refuse-mschap", (AUTH_MSCHAP_V2,)),  # refuse-* is about us, not the peer
        ("refuse-mschap-v2", (AUTH_MSCHAP_V2,)),
        ("noauth require-mschap", (AUTH_MSCHAP_V1,)),  # the last of auth/noauth/require-* wins
        ("require-mschap noauth", ()),
        ("require-mschap noauth auth", (AUTH_MSCHAP_V1,)),
        ("refuse-eap", (AUTH_MSCHAP_V2,)),
    ],
)  # fmt: skip
def test_auth_methods(text: str, methods: tuple[bytes, ...]) -> None:
    options = parse(text)
    assert options.auth_methods == methods
    assert options.link_config(local_address=LOCAL, peer_address=PEER, unit=0).lcp.auth_methods == methods


def test_refuse_words_are_recorded() -> None:
    assert parse("refuse-pap -chap refuse-mschap -mschap-v2 refuse-eap").refuse == {
        "pap", "chap", "mschap", "mschap-v2", "eap",
    }  # fmt: skip


# -- MPPE --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "policy"),
    [
        ("", MppePolicy()),
        ("require-mppe-128", MppePolicy(strengths=(128,))),
        ("require-mppe", MppePolicy(strengths=(128, 56, 40))),
        ("require-mppe refuse-mppe-40", MppePolicy(strengths=(128, 56))),
        ("require-mppe-40 require-mppe-128", MppePolicy(strengths=(128, 40))),
        ("require-mppe-128 mppe-stateful", MppePolicy(stateful=True)),
        ("nomppe", MppePolicy(enabled=False)),
        ("noccp", MppePolicy(enabled=False)),
        ("-ccp require-mppe-128", MppePolicy(enabled=False, required=False)),
    ],
)
def test_mppe_policy(text: str, policy: MppePolicy) -> None:
    options = parse(f"noauth {text}" if not policy.required else f"require-mschap-v2 {text}")
    assert options.mppe == policy
    assert options.link_config(local_address=LOCAL, peer_address=PEER, unit=0).mppe == policy


@pytest.mark.parametrize(
    ("text", "policy", "warning"),
    [
        ("require-mppe-128\nnomppe", MppePolicy(enabled=False),
         "opts:2: 'nomppe' overrides 'require-mppe-128' (opts:1)"),
        ("nomppe\nrequire-mppe-128", MppePolicy(),
         "opts:2: 'require-mppe-128' overrides 'nomppe' (opts:1)"),
        ("require-mppe-40\nrefuse-mppe-40\nrequire-mppe-128", MppePolicy(),
         "opts:2: 'refuse-mppe-40' overrides 'require-mppe-40' (opts:1)"),
        ("mppe-stateful\nnomppe-stateful", MppePolicy(),
         "opts:2: 'nomppe-stateful' overrides 'mppe-stateful' (opts:1)"),
    ],
)  # fmt: skip
def test_a_later_mppe_word_overrides_an_earlier_one(text: str, policy: MppePolicy, warning: str) -> None:
    options = parse(text)
    assert options.mppe == policy
    assert warning in options.warnings


def test_noccp_with_required_mppe_warns() -> None:
    options = parse("noccp\nrequire-mppe-128\n")
    assert not options.mppe.enabled
    assert "noccp turns MPPE off: require-mppe-128 (opts:2) has no effect" in options.warnings


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("require-pap", "MPPE is required but PAP is allowed"),
        ("require-chap require-mschap-v2", "MPPE is required but CHAP-MD5 is allowed"),
        ("require-chap require-pap", "MPPE is required but CHAP-MD5 and PAP are allowed"),
        ("\nnoauth", "opts:2: noauth with MPPE required"),
    ],
)
def test_mppe_with_methods_that_cannot_key_it_warns(text: str, fragment: str) -> None:
    assert any(fragment in warning for warning in parse(text).warnings), parse(text).warnings


def test_no_such_warning_without_mppe() -> None:
    assert parse("require-pap nomppe").warnings == [
        "require-pap: pypptp checks PAP passwords against the chap-secrets file (pppd reads pap-secrets)"
    ]
    assert parse("noauth nomppe").warnings == []


def test_require_and_refuse_the_same_method_warns() -> None:
    warnings = parse("require-chap refuse-chap nomppe").warnings
    assert any(w.startswith("require-chap and refuse-chap: the peer must authenticate with CHAP-MD5") for w in warnings)


def test_noauth_after_require_warns() -> None:
    warnings = parse("require-mschap-v2\nnoauth\nnomppe\n").warnings
    assert warnings == ["opts:2: noauth comes last: the peer is not authenticated (require-mschap-v2 ignored)"]


# -- several files ------------------------------------------------------------------------------------


def test_a_later_file_overrides_an_earlier_one(tmp_path: Path) -> None:
    system = tmp_path / "options"
    system.write_text("lock\nmtu 1500\nname system\nms-dns 192.0.2.53\nrequire-mppe-128\nproxyarp\n")
    pptpd = tmp_path / "pptpd-options"
    pptpd.write_text("mtu 1400\nname pptpd\nms-dns 8.8.8.8\nnomppe\nnoauth\n")
    options = read_pppd_options([str(system), str(pptpd)])
    assert options.files == [str(system), str(pptpd)]
    assert (options.mtu, options.name, options.proxyarp) == (1400, "pptpd", True)
    assert options.dns == [IPv4Address("192.0.2.53"), IPv4Address("8.8.8.8")]  # pppd keeps the last two
    assert not options.mppe.enabled and options.auth_methods == ()
    assert f"{pptpd}:4: 'nomppe' overrides 'require-mppe-128' ({system}:5)" in options.warnings


def test_mppe_is_worked_out_after_the_last_file(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    first.write_text("refuse-mppe-128\n")  # alone, this refuses the only length allowed
    second.write_text("require-mppe\n")
    assert read_pppd_options([str(first), str(second)]).mppe == MppePolicy(strengths=(56, 40))


def test_errors_in_a_second_file_name_it(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    first.write_text("proxyarp\n")
    second.write_text("# comment\n\nmtu none\n")
    with pytest.raises(OptionsError, match=rf"^{second}:3: mtu needs a whole number"):
        read_pppd_options([str(first), str(second)])


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(OptionsError, match=rf"^{tmp_path}/nope: cannot read: No such file"):
        read_pppd_options([str(tmp_path / "nope")])
    with pytest.raises(OptionsError, match=rf"^{tmp_path}: not a regular file"):
        read_pppd_options([str(tmp_path)])


def test_file_includes_another_file(tmp_path: Path) -> None:
    inner = tmp_path / "inner"
    inner.write_text("mtu 1300\nktune\n")
    outer = tmp_path / "outer"
    outer.write_text(f"mtu 1400\nfile {inner}\nproxyarp\n")
    options = read_pppd_options([str(outer)])
    assert options.mtu == 1300 and options.proxyarp and options.files == [str(outer), str(inner)]
    assert options.warnings == [f"{inner}:2: 'ktune' ignored: pppd option not implemented by pypptp"]
    inner.write_text("mtu 1300\nfoo\n")
    with pytest.raises(OptionsError, match=rf"^{inner}:2: unknown pppd option 'foo'"):
        read_pppd_options([str(outer)])
    outer.write_text(f"\nfile {tmp_path}/missing\n")
    with pytest.raises(OptionsError, match=rf"^{outer}:2: file: {tmp_path}/missing: cannot read"):
        read_pppd_options([str(outer)])
    outer.write_text(f"file {outer}\n")
    with pytest.raises(OptionsError, match="more than 8 nested files"):
        read_pppd_options([str(outer)])


def test_parse_into_accumulates_without_repeating_warnings() -> None:
    options = parse_pppd_options("require-pap\n", "a")
    parse_pppd_options("mtu 1400\n", "b", into=options)
    assert options.mtu == 1400 and options.auth_methods == (AUTH_PAP,)
    assert len(options.warnings) == len(set(options.warnings)) == 2


def test_every_option_in_the_table_parses() -> None:
    arguments = {
        "name": "x", "chap-secrets": "/x", "pap-secrets": "/x", "ms-dns": "198.18.0.1", "ms-wins": "198.18.0.1",
        "mtu": "1400", "mru": "1400", "ipparam": "x", "logfile": "/x", "plugin": "x.so", "asyncmap": "0",
        "holdoff": "1", "mppe": "required",
    }  # fmt: skip
    for word, option in OPTIONS.items():
        if word in ("require-eap", "file"):
            continue
        text = f"{word} {arguments.get(word, '3')}" if option.takes_argument else word
        parse("plugin radius.so " + text + " nomppe")  # no exception


# -- the MPPE-MPPC patch's syntax: mppe SUBOPTIONS ------------------------------------------------------


@pytest.mark.parametrize(
    ("argument", "policy"),
    [
        ("required,no40,no56,stateless", MppePolicy(strengths=(128,))),
        ("required,stateless", MppePolicy(strengths=(128, 56, 40))),
        ("required", MppePolicy(strengths=(128, 56, 40), stateful=True)),  # the patch's default is stateful
        ("required,no40,no56", MppePolicy(strengths=(128,), stateful=True)),
        ("no128,stateless", MppePolicy(required=False, strengths=(56, 40))),  # without required: accepted only
        ("REQUIRED,No40,no56,Stateless", MppePolicy(strengths=(128,))),
        ("no40,no56,no128", MppePolicy(enabled=False)),
    ],
)
def test_mppe_suboptions_map_onto_the_same_policy(argument: str, policy: MppePolicy) -> None:
    options = parse(f"require-mschap-v2\nmppe {argument}\n")
    assert options.mppe == policy and options.warnings == []
    assert options.link_config(local_address=LOCAL, peer_address=PEER, unit=0).mppe == policy
    assert options.notes == [f"opts:2: 'mppe {argument}': the MPPE-MPPC patch's syntax (stock pppd has no mppe option)"]


def test_mppe_suboptions_equal_the_require_mppe_128_family() -> None:
    assert parse("mppe required,no40,no56,stateless").mppe == parse("require-mppe-128").mppe
    assert parse("mppe required,no40,no56").mppe == parse("require-mppe-128 mppe-stateful").mppe


def test_mppe_suboptions_errors_say_what_to_write() -> None:
    with pytest.raises(OptionsError, match=r"^opts:2: mppe: unknown suboption 'stateles'; the suboptions are "):
        parse("proxyarp\nmppe required,stateles\n")
    with pytest.raises(OptionsError, match=r"^opts:1: mppe required,no40,no56,no128: .* drop no128, or write nomppe"):
        parse("mppe required,no40,no56,no128\n")
    with pytest.raises(OptionsError, match=r"^opts:1: option 'mppe' needs an argument"):
        parse("mppe")


def test_mppe_suboptions_and_mppe_words_the_later_wins() -> None:
    options = parse("require-mppe-40\nmppe required,stateless\n")
    assert options.mppe == MppePolicy(strengths=(128, 56, 40))
    assert "opts:2: 'mppe required,stateless' overrides 'require-mppe-40' (opts:1)" in options.warnings
    options = parse("mppe no128\nrequire-mppe-128\n")
    assert options.mppe == MppePolicy()
    assert "opts:2: 'require-mppe-128' overrides 'mppe no128' (opts:1)" in options.warnings
    options = parse("mppe required\nnoccp\n")
    assert not options.mppe.enabled
    assert "noccp turns MPPE off: mppe required (opts:1) has no effect" in options.warnings


# -- a byte order mark --------------------------------------------------------------------------------


def test_a_byte_order_mark_is_an_error_when_strict_and_skipped_with_a_warning_otherwise(tmp_path: Path) -> None:
    path = tmp_path / "pptpd-options"
    path.write_bytes(b"\xef\xbb\xbf" + DEBIAN_PPTPD_OPTIONS.encode())
    expected = (
        f"{path}:1: starts with a UTF-8 byte order mark (saved by Notepad?): pppd reads it as part of the first "
        "word, an option it does not know, and refuses to start{}; "
        f"remove it, e.g. sed -i '1s/^\\xEF\\xBB\\xBF//' {path}"
    )
    with pytest.raises(OptionsError) as caught:
        read_pppd_options([str(path)], strict=True)
    assert caught.value.messages == (expected.format(""),)
    options = read_pppd_options([str(path)])  # the daemon: the mark skipped, the name line kept
    assert options.warnings == [expected.format(" (pypptpd skips it)")]
    assert options.name == "pptpd"
    path.write_bytes(b"\xef\xbb\xbfname pptpd\n")  # the mark is right against the first word
    assert read_pppd_options([str(path)]).name == "pptpd"


def test_a_symlinked_options_file_is_followed_and_a_fifo_does_not_block(tmp_path: Path) -> None:
    target = tmp_path / "real"
    target.write_text("name linked\n")
    link = tmp_path / "link"
    link.symlink_to(target)
    assert read_pppd_options([str(link)]).name == "linked"
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(OptionsError, match=rf"^{fifo}: not a regular file"):
        read_pppd_options([str(fifo)])
