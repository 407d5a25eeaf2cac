"""pptpd.conf parsing (pptpd.conf(5) rules) and the command line's precedence."""

from __future__ import annotations

from pathlib import Path

import pytest

from pypptp.conf.pptpd import KEYWORDS, ConfigError, PptpdConfig, parse_pptpd_conf, read_pptpd_conf
from pypptp.daemon.cli import main, settings_from
from pypptp.daemon.config import load

SEED = """\
###############################################################################
# pptpd.conf as Debian ships it, trimmed
###############################################################################
option /etc/ppp/pptpd-options
logwtmp
#debug
#connections 100
localip 192.168.0.1
remoteip 192.168.0.234-238,192.168.0.245
"""


def test_the_fifteen_keywords() -> None:
    assert len(KEYWORDS) == 15


def test_debian_seed_file() -> None:
    config = parse_pptpd_conf(SEED, "/etc/pptpd.conf")
    assert config.option == "/etc/ppp/pptpd-options" and config.logwtmp
    assert config.localip == "192.168.0.1" and config.remoteip == "192.168.0.234-238,192.168.0.245"
    assert not config.debug and config.connections == 100 and config.stimeout == 10
    assert config.present == {"option", "logwtmp", "localip", "remoteip"}
    assert config.warnings == []


def test_defaults_match_pptpd() -> None:
    config = PptpdConfig()
    assert (config.connections, config.stimeout, config.pidfile, config.speed) == (
        100,
        10,
        "/var/run/pptpd.pid",
        "115200",
    )


def test_first_occurrence_wins_and_repeats_are_reported() -> None:
    config = parse_pptpd_conf("connections 5\nconnections 7\n", "f.conf")
    assert config.connections == 5
    assert config.warnings == ["f.conf:2: connections repeated; the first occurrence wins"]


def test_no_inline_comments_the_rest_of_the_line_is_the_value() -> None:
    config = parse_pptpd_conf("pidfile /run/p.pid # not a comment\n")
    assert config.pidfile == "/run/p.pid # not a comment"


def test_tabs_separate_keyword_and_value() -> None:
    assert parse_pptpd_conf("listen\t198.18.0.1  \n").listen == "198.18.0.1"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("debug\n connections 5\n", "f.conf:2: line starts with white space"),
        ("\tlisten 198.18.0.1\n", "f.conf:1: line starts with white space"),
        ("listne 198.18.0.1\n", "f.conf:1: unknown keyword 'listne'"),
        ("debug yes\n", "f.conf:1: debug takes no value"),
        ("listen\n", "f.conf:1: listen needs a value"),
        ("connections many\n", "f.conf:1: connections must be a positive whole number"),
        ("stimeout 0\n", "f.conf:1: stimeout must be a positive whole number"),
        ("stimeout -5\n", "f.conf:1: stimeout must be a positive whole number"),
        ("# ok\n\nlisten 198.18.0.300\n", "f.conf:3: listen needs an IPv4 address"),
    ],
)
def test_broken_lines_name_file_and_line(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_pptpd_conf(text, "f.conf")
    assert str(info.value).startswith(message)


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        read_pptpd_conf(tmp_path / "missing.conf")


def test_flags_beat_the_file(tmp_path: Path) -> None:
    conf = tmp_path / "pptpd.conf"
    conf.write_text("listen 198.18.0.1\nstimeout 3\nconnections 5\n")
    (tmp_path / "chap-secrets").write_text("alice * s3cret *\n")
    base = ["-c", str(conf), "--secrets", str(tmp_path / "chap-secrets")]
    settings = settings_from(
        load([*base, "-l", "198.18.0.9", "-t", "4", "-C", "4", "-d"], system_options="/nonexistent")
    )
    assert settings.listen == "198.18.0.9" and settings.max_connections == 4 and settings.trace
    assert settings.control.establish_timeout == 4.0
    settings = settings_from(load(base, system_options="/nonexistent"))
    assert settings.listen == "198.18.0.1" and settings.max_connections == 5
    assert settings.control.establish_timeout == 3.0 and not settings.trace


def test_cli_reports_a_broken_config_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    conf = tmp_path / "pptpd.conf"
    conf.write_text("localip 192.168.0.1\n remoteip 192.168.0.2\n")
    assert main(["-f", "-c", str(conf)]) == 2
    assert f"{conf}:2: line starts with white space" in capsys.readouterr().err
