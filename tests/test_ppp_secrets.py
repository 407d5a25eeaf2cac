"""chap-secrets with pppd's semantics (spec auth.md section 7)."""

from __future__ import annotations

import ipaddress

import pytest

from pypptp.ppp.secrets import SecretsError, parse_secrets

DEBIAN_SAMPLE = """\
# Secrets for authentication using CHAP
# client        server  secret                  IP addresses
alice           pptpd   "s3cret pass"           192.168.0.234
bob             *       bobpw                   *
*               pptpd   guestpw                 -
carol           pptpd   carolpw
"""


def test_debian_style_records() -> None:
    secrets = parse_secrets(DEBIAN_SAMPLE, "chap-secrets")
    alice = secrets.lookup("alice", "pptpd")
    assert alice is not None and alice.secret == "s3cret pass" and alice.where == "chap-secrets:3"
    assert alice.addresses.assigned_address() == ipaddress.IPv4Address("192.168.0.234")
    assert alice.addresses.allows("192.168.0.234") and not alice.addresses.allows("192.168.0.235")
    bob = secrets.lookup("bob", "anything")
    assert bob is not None and bob.addresses.allows("192.168.7.7") and bob.addresses.assigned_address() is None
    guest = secrets.lookup("mallory", "pptpd")
    assert guest is not None and guest.secret == "guestpw" and not guest.addresses.allows("192.168.0.1")
    carol = secrets.lookup("carol", "pptpd")
    assert carol is not None and not carol.addresses.allows("192.168.0.1")  # three words: no address
    assert secrets.lookup("mallory", "other") is None


def test_best_match_exact_client_beats_exact_server_and_first_wins_ties() -> None:
    secrets = parse_secrets("* pptpd wild-client\nalice * wild-server\nalice * second\n")
    record = secrets.lookup("alice", "pptpd")
    assert record is not None and record.secret == "wild-server"
    both = parse_secrets("alice * a\nalice pptpd b\n").lookup("alice", "pptpd")
    assert both is not None and both.secret == "b"
    assert parse_secrets("Alice pptpd x\n").lookup("alice", "pptpd") is None  # case matters


@pytest.mark.parametrize(
    ("line", "secret"),
    [
        ('u s "a b"', "a b"),
        ("u s 'a\"b'", 'a"b'),
        ('u s a"b c"d', "ab cd"),
        (r"u s a\sb", "a b"),
        (r"u s a\tb", "a\tb"),
        (r"u s \101\x42\x4", "AB\x04"),
        (r"u s \#not-a-comment", "#not-a-comment"),
        (r"u s a\\b", "a\\b"),
        ("u s pw#comment", "pw"),
        ('u s "p#w"', "p#w"),
        ("u s pw\\\n 198.18.0.4", "pw"),
    ],
)
def test_lexical_rules(line: str, secret: str) -> None:
    record = parse_secrets(line + "\n").lookup("u", "s")
    assert record is not None and record.secret == secret


def test_continuation_keeps_one_record() -> None:
    record = parse_secrets("u s pw \\\n 198.18.0.9\n").lookup("u", "s")
    assert record is not None and record.addresses.allows("198.18.0.9")


def test_address_lists() -> None:
    text = "u s pw !198.18.0.5 198.18.0.0/24 198.18.1.7\n"
    policy = parse_secrets(text).records[0].addresses
    assert not policy.allows("198.18.0.5")  # the first matching entry decides
    assert policy.allows("198.18.0.6") and policy.allows("198.18.1.7")
    assert not policy.allows("198.18.2.1")
    assert policy.assigned_address() == ipaddress.IPv4Address("198.18.1.7")
    unit = parse_secrets("u s pw 192.168.5.0/24+\n").records[0].addresses
    assert unit.assigned_address(unit=3) == ipaddress.IPv4Address("192.168.5.4")
    assert unit.allows("192.168.5.4", unit=3) and not unit.allows("192.168.5.5", unit=3)
    anything = parse_secrets("u s pw *\n").records[0].addresses
    assert anything.allows("198.18.0.1") and not anything.allows("127.0.0.1")  # never loopback
    assert not anything.allows("224.0.0.1") and not anything.allows("0.0.0.0")


def test_options_after_double_dash() -> None:
    record = parse_secrets("u s pw * -- mtu 1400 debug\n").records[0]
    assert record.options == ("mtu", "1400", "debug") and record.addresses.allows("198.18.0.1")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("alice pptpd\n", "chap-secrets:1: a record needs client, server and secret"),
        ("# c\n\nalice pptpd pw vpn.example\n", "chap-secrets:3: 'vpn.example' is not an IPv4 address"),
        ('alice pptpd "unterminated\n', 'chap-secrets:1: unterminated " quote'),
        ("alice pptpd pw 198.18.0.1+\n", "chap-secrets:1: '198.18.0.1+': '+' needs a subnet"),
        ("alice pptpd @relative\n", "chap-secrets:1: a secret from a file needs an absolute path"),
        ("u s " + "x" * 1024 + "\n", "chap-secrets:1: a word is longer than 1023 bytes"),
    ],
)
def test_errors_name_file_and_line(text: str, message: str) -> None:
    with pytest.raises(SecretsError) as info:
        parse_secrets(text, "chap-secrets")
    assert str(info.value).startswith(message)


def test_an_at_secret_is_read_with_the_given_reader_only() -> None:
    """The core reads no file: ``@/path`` is read by the caller's ``read_file`` (its first word, its
    warnings kept), and stays as written without one."""
    asked: list[str] = []

    def read_file(path: str) -> tuple[str, list[str]]:
        asked.append(path)
        return "  from-file  ignored\nsecond line\n", [f"{path}: a warning"]

    secrets = parse_secrets("alice pptpd @/etc/ppp/alice.pw *\n", read_file=read_file)
    record = secrets.lookup("alice", "pptpd")
    assert record is not None and record.secret == "from-file" and asked == ["/etc/ppp/alice.pw"]
    assert secrets.warnings == ("/etc/ppp/alice.pw: a warning",)
    unread = parse_secrets("alice pptpd @/etc/ppp/alice.pw *\n").lookup("alice", "pptpd")
    assert unread is not None and unread.secret == "@/etc/ppp/alice.pw"
    empty = parse_secrets("alice pptpd @/empty *\n", read_file=lambda path: ("# nothing\n", []))
    assert empty.records[0].secret == ""


@pytest.mark.parametrize(
    ("entry", "unit", "expected"),
    [
        ("198.18.4.0/30+", 0, "198.18.4.1"),
        ("198.18.4.0/30+", 1, "198.18.4.2"),
        ("198.18.4.0/30+", 2, None),  # would be the /30's broadcast address: skipped
        ("198.18.4.0/24+", 253, "198.18.4.254"),
        ("198.18.4.0/24+", 254, None),
        ("198.18.4.0/24+", 300, None),  # outside the subnet
        ("255.255.255.0/24+", 4000, None),  # beyond the address space: was an AddressValueError
        ("198.18.4.0/32+", 0, None),
    ],
)
def test_unit_based_addresses_that_do_not_fit_are_skipped(entry: str, unit: int, expected: str | None) -> None:
    """pppd skips an ``a.b.c.d/n+`` entry when the unit does not fit in the subnet; so do we, and the
    next entry decides."""
    policy = parse_secrets(f"alice * pw {entry}\n").records[0].addresses
    assigned = policy.assigned_address(unit)
    assert (str(assigned) if assigned else None) == expected
    if expected is not None:
        assert policy.allows(expected, unit)
    fallback = parse_secrets(f"alice * pw {entry} 198.18.9.9\n").records[0].addresses
    assert str(fallback.assigned_address(unit)) == (expected or "198.18.9.9")
