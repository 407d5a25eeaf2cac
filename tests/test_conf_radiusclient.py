"""radiusclient.conf and its servers file, as pppd's radius plugin reads them (pypptp.conf.radiusclient)."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

import pytest

from pypptp.conf.radiusclient import (
    RadiusConfig,
    RadiusConfigError,
    RadiusServer,
    parse_radiusclient_conf,
    read_radiusclient_conf,
)

# The Debian HOWTOs' radiusclient.conf (pptpd + pppd radius plugin), comments shortened.
HOWTO_CONF = """\
# General settings
auth_order	radius
login_tries	4
login_timeout	60
nologin /etc/nologin
issue	/etc/radiusclient/issue

# RADIUS settings
authserver 	localhost
acctserver 	localhost
servers		{servers}
dictionary 	{dictionary}
login_radius	/usr/sbin/login.radius
seqfile		/var/run/radius.seq
mapfile		/etc/radiusclient/port-id-map
default_realm
radius_timeout	10
radius_retries	3
login_local	/bin/login
"""

SERVERS = """\
## Server Name or Client/Server pair		Key
## ----------------				---------------
#
#portmaster.elemental.net			hardlyasecret
localhost					testing123
"""


def write(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


@pytest.fixture
def howto(tmp_path: Path) -> Path:
    """A radiusclient directory as the HOWTOs leave it; returns radiusclient.conf."""
    servers = write(tmp_path / "servers", SERVERS)
    dictionary = write(tmp_path / "dictionary", "ATTRIBUTE User-Name 1 string\n", 0o644)
    # (radiusclient's sample has default_realm with no value: the same as not given)
    return write(tmp_path / "radiusclient.conf", HOWTO_CONF.format(servers=servers, dictionary=dictionary), 0o644)


def test_the_howto_configuration(howto: Path) -> None:
    config = read_radiusclient_conf(str(howto))
    assert config.auth_servers == (RadiusServer("localhost", 1812, b"testing123", f"{howto}:9"),)
    assert config.acct_servers == (RadiusServer("localhost", 1813, b"testing123", f"{howto}:10"),)
    assert (config.timeout, config.retries, config.deadtime) == (10, 3, 0)
    assert config.nas_identifier is None and config.nas_ip is None and config.bindaddr is None
    assert config.servers_file == str(howto.parent / "servers")
    assert config.dictionary == str(howto.parent / "dictionary")
    assert config.warnings == []
    # the login program's keywords are accepted and noted
    assert any("login_tries ignored" in note for note in config.notes)
    assert any("auth_order ignored" in note for note in config.notes)


def test_secrets_are_not_shown() -> None:
    server = RadiusServer("radius.example.net", 1812, b"s3cret")
    assert "s3cret" not in repr(server) and str(server) == "radius.example.net:1812"
    assert str(RadiusServer("2001:db8::1", 1812, b"x")) == "[2001:db8::1]:1812"


def test_server_forms_and_failover_order(tmp_path: Path) -> None:
    servers = write(tmp_path / "servers", "192.0.2.1 one\nradius2.example.net two\n[2001:db8::5] five\n")
    text = (
        f"servers {servers}\n"
        "authserver 192.0.2.1:11812,radius2.example.net [2001:db8::5]:1645\n"
        "acctserver radius3.example.net:1813:inline-secret, [2001:db8::6]::v6secret\n"
        "radius_timeout 2\nradius_retries 1\nradius_deadtime 30\n"
        "nas-identifier pptp-1\nnas-ip 198.51.100.7\nbindaddr 198.51.100.7\n"
    )
    config = parse_radiusclient_conf(text, "radiusclient.conf")
    assert [(s.host, s.port, s.secret) for s in config.auth_servers] == [
        ("192.0.2.1", 11812, b"one"),
        ("radius2.example.net", 1812, b"two"),
        ("2001:db8::5", 1645, b"five"),
    ]
    assert [(s.host, s.port, s.secret, s.inline) for s in config.acct_servers] == [
        ("radius3.example.net", 1813, b"inline-secret", True),
        ("2001:db8::6", 1813, b"v6secret", True),
    ]
    assert (config.timeout, config.retries, config.deadtime) == (2, 1, 30)
    assert config.nas_identifier == "pptp-1"
    assert config.nas_ip == ipaddress.IPv4Address("198.51.100.7") and config.bindaddr == "198.51.100.7"


def test_secret_found_by_address_and_paired_form(tmp_path: Path) -> None:
    servers = write(tmp_path / "servers", "nas.example.net/127.0.0.1 paired\n")
    config = parse_radiusclient_conf(f"servers {servers}\nauthserver localhost\n", "c")
    assert config.auth_servers[0].secret == b"paired"  # localhost resolves to 127.0.0.1
    assert config.warnings == ["c: no acctserver: sessions are not accounted"]


def test_pppd_spelling_of_nas_identifier_and_bindaddr_any() -> None:
    config = parse_radiusclient_conf("authserver h::s\nnas_identifier box\nbindaddr *\n")
    assert config.nas_identifier == "box" and config.bindaddr is None


def errors_of(text: str, servers_text: str | None = None) -> list[str]:
    with pytest.raises(RadiusConfigError) as info:
        parse_radiusclient_conf(text, "r.conf", servers_text=servers_text)
    return list(info.value.messages)


def test_every_error_is_collected_with_its_line() -> None:
    messages = errors_of(
        "authserver localhost\n"
        "radius_timout 5\n"  # unknown, with a suggestion
        "radius_retries 0\n"
        "radius_retries 3\n"  # duplicate
        "radius_deadtime soon\n"
        "acctserver localhost:99999\n"
        "nas-ip nas.example.net\n"
        "bindaddr eth0\n"
        "serv-type tls\n"
        "auth_order radius,radius\n"
        "servers /nonexistent/servers\n",
    )
    assert messages == [
        "r.conf:2: unknown keyword 'radius_timout' (did you mean radius_timeout?)",
        "r.conf:3: radius_retries needs a whole number from 1 to 100, got '0'",
        "r.conf:4: radius_retries given again (first at r.conf:3); radiusclient refuses that",
        "r.conf:5: radius_deadtime needs a whole number from 0 to 86400, got 'soon'",
        "r.conf:6: acctserver: 'localhost:99999': the port must be a number from 1 to 65535",
        "r.conf:7: nas-ip needs an IPv4 or IPv6 address, got 'nas.example.net'",
        "r.conf:8: bindaddr needs an address or *, got 'eth0' (names are not resolved)",
        "r.conf:9: serv-type tls: pypptp speaks RADIUS over UDP only",
        "r.conf:10: auth_order: 'radius,radius': radius, local, 'radius,local' or 'local,radius'",
        "/nonexistent/servers: servers file: cannot open: No such file or directory",
    ]


def test_required_things() -> None:
    assert errors_of("radius_timeout 3\n") == ["r.conf: no authserver: the RADIUS server to ask is required"]
    assert errors_of("authserver a\n") == ["r.conf: no servers file (the secrets), and a server has no inline secret"]
    assert errors_of("authserver a\nservers s\n", servers_text="b secret\n") == [
        "r.conf:1: authserver a: no secret for it in s"
    ]
    assert errors_of("authserver\n") == ["r.conf:1: authserver needs a value"]
    assert errors_of("authserver [2001:db8::1:1812\n") == [
        "r.conf:1: authserver: '[2001:db8::1:1812': an IPv6 address needs its closing ']'"
    ]


def test_servers_file_lines(tmp_path: Path) -> None:
    long_secret = "x" * 60
    config = parse_radiusclient_conf(
        "authserver a,b\nservers s\n", "r.conf", servers_text=f"# comment\n\na {long_secret}\nb bee # note\n"
    )
    assert [s.secret for s in config.auth_servers] == [long_secret.encode(), b"bee"]
    assert any(
        w.startswith("s:3: the secret is 60 bytes long: radiusclient used only its first 48") for w in config.warnings
    )
    assert errors_of("authserver a\nservers s\n", servers_text="a\n") == [
        "s:1: 'a' has no secret (a line is HOST SECRET)",
        "r.conf:1: authserver a: no secret for it in s",
    ]


def test_too_open_servers_file_is_an_error_group_readable_a_warning(howto: Path) -> None:
    servers = howto.parent / "servers"
    servers.chmod(0o644)
    with pytest.raises(RadiusConfigError) as info:
        read_radiusclient_conf(str(howto))
    assert info.value.messages == (
        f"{servers}: servers file holds RADIUS shared secrets and any user may read it (-rw-r--r--): "
        f"chmod 600 {servers}",
    )
    servers.chmod(0o640)
    config = read_radiusclient_conf(str(howto))
    assert config.warnings == [
        f"{servers}: servers file holds RADIUS shared secrets and its group may read it (-rw-r-----): "
        f"chmod 600 {servers}"
    ]


def test_inline_secrets_make_the_configuration_a_secrets_file(tmp_path: Path) -> None:
    conf = write(tmp_path / "radiusclient.conf", "authserver 192.0.2.1:1812:s3cret\n", 0o644)
    with pytest.raises(RadiusConfigError, match="any user may read it"):
        read_radiusclient_conf(str(conf))
    conf.chmod(0o600)
    assert read_radiusclient_conf(str(conf)).auth_servers[0].secret == b"s3cret"


def test_unreadable_and_odd_files(tmp_path: Path) -> None:
    with pytest.raises(RadiusConfigError, match="cannot open: No such file"):
        read_radiusclient_conf(str(tmp_path / "missing.conf"))
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(RadiusConfigError, match="not a regular file"):
        read_radiusclient_conf(str(fifo))  # a FIFO must not hang the reader
    big = write(tmp_path / "big", "#" * (1024 * 1024 + 1))
    with pytest.raises(RadiusConfigError, match="more than 1048576"):
        read_radiusclient_conf(str(big))


def test_missing_dictionary_is_a_warning_and_a_bom_is_skipped(tmp_path: Path) -> None:
    config = parse_radiusclient_conf("\ufeffauthserver h::s\ndictionary /nonexistent/dictionary\n", "r.conf")
    assert isinstance(config, RadiusConfig) and config.auth_servers[0].host == "h"
    assert any("byte order mark" in warning for warning in config.warnings)
    assert any("dictionary /nonexistent/dictionary: no such file" in w for w in config.warnings)
