"""The daemon's configuration: pptpd's flags, precedence (pptpd's two bugs fixed), files, --check."""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from pypptp import __version__
from pypptp.aio.server import ServerSettings
from pypptp.conf.chap_secrets import CHAP_SECRETS, file_stamp
from pypptp.conf.pppd_options import SYSTEM_OPTIONS, OptionsError
from pypptp.conf.pptpd import (
    DEFAULT_CONNECTIONS,
    DEFAULT_LISTEN,
    DEFAULT_PIDFILE,
    DEFAULT_SPEED,
    DEFAULT_STIMEOUT,
    ConfigError,
    PptpdConfig,
)
from pypptp.daemon import manager
from pypptp.daemon.cli import main
from pypptp.daemon.config import DEFAULT_CONF, DEFAULT_SECRETS, DaemonConfig, build_parser, check, load, validate
from pypptp.daemon.manager import Daemon, DaemonPaths
from pypptp.daemon.pool import PoolError
from pypptp.ppp.lcp import AUTH_MSCHAP_V2
from pypptp.ppp.secrets import ChapSecrets, SecretsError
from tests.seed import SEED_OPTIONS

SEED_CONF = """\
# pptpd.conf as Debian ships it, trimmed
option {options}
#debug
localip 192.168.0.1
remoteip 192.168.0.234-238,192.168.0.245
"""
SECRETS = "# client server secret IP\nalice pptpd s3cret *\n"


class Setup:
    """A pptpd.conf, its options file and chap-secrets in a temporary directory."""

    def __init__(self, root: Path, conf: str = SEED_CONF, options: str = SEED_OPTIONS, secrets: str = SECRETS):
        self.root = root
        self.options = self.write("pptpd-options", options)
        self.conf = self.write("pptpd.conf", conf.format(options=self.options))
        self.secrets = self.write("chap-secrets", secrets)
        self.system = str(root / "no-system-options")

    def write(self, name: str, text: str) -> str:
        path = self.root / name
        path.write_text(text)
        path.chmod(0o600)
        return str(path)

    def argv(self, *extra: str) -> list[str]:
        return ["-c", self.conf, "--secrets", self.secrets, *extra]

    def load(self, *extra: str) -> DaemonConfig:
        return load(self.argv(*extra), system_options=self.system)

    def check(self, *extra: str) -> tuple[int, list[str]]:
        return check(self.argv(*extra), system_options=self.system)


@pytest.fixture
def setup(tmp_path: Path) -> Setup:
    return Setup(tmp_path)


def test_seed_configuration(setup: Setup) -> None:
    config = setup.load()
    assert config.conf_path == setup.conf and config.options_files == [setup.options]
    assert (config.listen, config.port, config.stimeout, config.pidfile) == ("0.0.0.0", 1723, 10, "/var/run/pptpd.pid")
    assert config.pool.capacity == 6 and config.connections == 6
    assert config.warnings == [
        f"{setup.conf}: connections 100 (the default) lowered to 6: localip/remoteip give only 6 address pairs "
        "(pptpd lowers it too)"
    ]
    assert len(config.notes) == 5  # lock, nobsdcomp, novj, novjccomp, nologfd
    assert config.secrets_path == setup.secrets and config.secrets is not None
    assert config.secrets.lookup("alice", "pptpd") is not None
    lease = config.pool.acquire()
    assert lease is not None
    link = config.options.link_config(local_address=lease.local, peer_address=lease.remote, unit=lease.index)
    assert link.ipcp.local_address == IPv4Address("192.168.0.1") and link.ipcp.peer_address == IPv4Address(
        "192.168.0.234"
    )
    assert link.ipcp.dns == (IPv4Address("8.8.8.8"), IPv4Address("8.8.4.4"))
    assert link.lcp.auth_methods == (AUTH_MSCHAP_V2,) and link.auth.our_name == "pptpd" and link.mppe.required


# -- the command line ---------------------------------------------------------------------------


def test_every_pptpd_flag_has_its_long_form() -> None:
    parser = build_parser()
    short_flags = "-b eth1 -c /c -d -e /usr/sbin/pppd -f -i -l 198.18.0.1 -o /o -p /p -s 38400 -t 5 -w -C 7 -D -V blue"
    long_flags = (
        "--bcrelay eth1 --conf /c --debug --ppp /usr/sbin/pppd --fg --noipparam --listen 198.18.0.1 --option /o "
        "--pidfile /p --speed 38400 --stimeout 5 --logwtmp --connections 7 --delegate --vrf blue"
    )
    short = parser.parse_args(short_flags.split(" "))
    long = parser.parse_args(long_flags.split(" "))
    assert vars(short) == vars(long)
    assert (short.bcrelay, short.conf, short.ppp, short.listen, short.option, short.pidfile) == (
        "eth1", "/c", "/usr/sbin/pppd", "198.18.0.1", "/o", "/p",
    )  # fmt: skip
    assert (short.debug, short.fg, short.noipparam, short.logwtmp, short.delegate) == (True,) * 5
    assert (short.speed, short.stimeout, short.connections, short.vrf) == ("38400", 5, 7, "blue")
    assert not short.check and short.secrets is None


@pytest.mark.parametrize("flag", ["-v", "--version"])
def test_version(flag: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        build_parser().parse_args([flag])
    assert caught.value.code == 0
    assert capsys.readouterr().out.strip() == f"pypptpd {__version__}"


@pytest.mark.parametrize("flag", ["-h", "--help"])
def test_help_lists_every_flag(flag: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        build_parser().parse_args([flag])
    assert caught.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: pypptpd")
    for option in ("--bcrelay", "--conf", "--debug", "--ppp", "--fg", "--noipparam", "--listen", "--option"):
        assert option in out
    for option in ("--pidfile", "--speed", "--stimeout", "--logwtmp", "--connections", "--delegate", "--vrf"):
        assert option in out
    assert "--check" in out and "--secrets" in out


@pytest.mark.parametrize("argv", [["-t", "0"], ["-C", "-1"], ["-C", "x"], ["--bogus"], ["-t"]])
def test_bad_flags_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        build_parser().parse_args(argv)
    assert caught.value.code == 2


# -- precedence: the command line, else the file, else pptpd's default ---------------------------


@pytest.mark.parametrize(
    ("conf", "argv", "expected"),
    [
        # stimeout in the file is honoured (pptpd never reads it); -t beats it
        ("stimeout 30", [], {"stimeout": 30}),
        ("stimeout 30", ["-t", "5"], {"stimeout": 5}),
        ("", ["-t", "5"], {"stimeout": 5}),
        ("", [], {"stimeout": 10}),
        # -C beats the file (in pptpd, the file beats -C)
        ("connections 4", [], {"connections": 4}),
        ("connections 4", ["-C", "2"], {"connections": 2}),
        ("connections 2", ["-C", "4"], {"connections": 4}),
        ("", ["-C", "3"], {"connections": 3}),
        ("", [], {"connections": 6}),  # 100, lowered to the pool's 6
        ("connections 50", ["-C", "40"], {"connections": 6}),
        # the others, as pptpd
        ("listen 198.18.0.1", [], {"listen": "198.18.0.1"}),
        ("listen 198.18.0.1", ["-l", "198.18.0.2"], {"listen": "198.18.0.2"}),
        ("pidfile /run/a.pid", [], {"pidfile": "/run/a.pid"}),
        ("pidfile /run/a.pid", ["-p", "/run/b.pid"], {"pidfile": "/run/b.pid"}),
        ("debug", [], {"debug": True}),
        ("", ["-d"], {"debug": True}),
        ("", [], {"debug": False, "foreground": False, "check_only": False, "noipparam": False}),
        ("", ["-f", "--check"], {"foreground": True, "check_only": True}),
        ("speed 9600", [], {"speed": "9600"}),
        ("speed 9600", ["-s", "38400"], {"speed": "38400"}),
        ("", [], {"speed": "115200"}),
        ("noipparam", [], {"noipparam": True}),
        ("", ["-i"], {"noipparam": True}),
    ],
)
def test_precedence(tmp_path: Path, conf: str, argv: list[str], expected: dict[str, object]) -> None:
    setup = Setup(tmp_path, SEED_CONF + conf + "\n")
    config = setup.load(*argv)
    assert {key: getattr(config, key) for key in expected} == expected


def test_connections_lowered_warning_names_the_source(tmp_path: Path) -> None:
    setup = Setup(tmp_path, SEED_CONF + "connections 50\n")
    assert f"{setup.conf}:6: connections 50 lowered to 6" in setup.load().warnings[0]
    assert setup.load("-C", "40").warnings[0].startswith("command line: -C 40 lowered to 6:")


def test_option_flag_beats_the_option_keyword(setup: Setup) -> None:
    other = setup.write("other-options", "noauth\nnomppe\nmtu 1300\n")
    config = setup.load("-o", other)
    assert config.options_files == [other] and config.options.mtu == 1300 and config.options.auth_methods == ()


def test_system_options_are_read_first(setup: Setup) -> None:
    system = setup.write("options", "lock\nmtu 1500\nms-wins 198.18.0.9\nname system\n")
    config = load(setup.argv(), system_options=system)
    assert config.options_files == [system, setup.options]
    assert config.options.mtu == 1500 and config.options.name == "pptpd"  # the pptpd options file comes later
    assert config.options.wins == [IPv4Address("198.18.0.9")]


def test_no_option_file_reads_only_the_system_options(tmp_path: Path) -> None:
    setup = Setup(tmp_path, "localip 198.18.0.1\nremoteip 198.18.0.2-3\n")
    system = setup.write("options", "ms-dns 198.18.0.53\n")
    config = load(setup.argv(), system_options=system)
    assert config.options_files == [system] and config.options.dns == [IPv4Address("198.18.0.53")]
    assert load(setup.argv(), system_options=str(tmp_path / "absent")).options_files == []


# -- pptpd.conf -----------------------------------------------------------------------------------------


def test_missing_default_conf_means_pptpd_defaults(tmp_path: Path) -> None:
    secrets = tmp_path / "chap-secrets"
    secrets.write_text("alice * s3cret *\n")  # no options file, so no name pptpd: * matches the host name
    secrets.chmod(0o600)
    config = load(
        ["--secrets", str(secrets)], default_conf=str(tmp_path / "pptpd.conf"), system_options=str(tmp_path / "o")
    )
    assert config.conf_path is None and config.pool.capacity == 100 and config.connections == 100
    assert config.pool.local[0] == IPv4Address("192.168.0.1") and config.pool.remote[0] == IPv4Address("192.168.1.1")
    assert config.warnings == [
        "pptpd.conf: no localip: pptpd's default 192.168.0.1-100 is used",
        "pptpd.conf: no remoteip: pptpd's default 192.168.1.1-100 is used",
    ]


def test_a_conf_named_with_c_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=rf"^{tmp_path}/nope: cannot read"):
        load(["-c", str(tmp_path / "nope")])


@pytest.mark.parametrize(
    ("keyword", "flag", "why"),
    [
        ("bcrelay eth1", "-b eth1", "no broadcast relay is run"),
        ("vrf blue", "-V blue", "sockets stay in the default VRF"),
        ("delegate", "-D", "addresses still come from localip/remoteip"),
        ("ppp /usr/sbin/pppd", "-e /usr/sbin/pppd", "pypptpd has its own PPP engine and runs no pppd"),
    ],
)
def test_unimplemented_keywords_warn(tmp_path: Path, keyword: str, flag: str, why: str) -> None:
    name = keyword.split()[0]
    setup = Setup(tmp_path, SEED_CONF + keyword + "\n")
    assert f"{setup.conf}:6: {name} is not implemented by pypptpd and is ignored: {why}" in setup.load().warnings
    plain = Setup(tmp_path)
    short = flag.split()[0]
    expected = f"command line: {short}/--{name}: {name} is not implemented by pypptpd and is ignored: {why}"
    assert expected in plain.load(*flag.split()).warnings


def test_repeated_keyword_warning_is_passed_on(tmp_path: Path) -> None:
    setup = Setup(tmp_path, SEED_CONF + "localip 198.19.9.9\n")
    assert f"{setup.conf}:6: localip repeated; the first occurrence wins" in setup.load().warnings


# -- chap-secrets -----------------------------------------------------------------------------------------


def test_secrets_path_precedence(setup: Setup) -> None:
    other = setup.write("other-secrets", "bob * pw *\n")
    assert load(["-c", setup.conf], system_options=setup.system, default_secrets=setup.secrets).secrets_path == (
        setup.secrets
    )
    options = setup.write("with-path", SEED_OPTIONS + f"chap-secrets {other}\n")
    config = load(["-c", setup.conf, "-o", options], system_options=setup.system, default_secrets=setup.secrets)
    assert config.secrets_path == other  # pppd 2.5's chap-secrets option beats the default
    config = load(["-c", setup.conf, "-o", options, "--secrets", setup.secrets], system_options=setup.system)
    assert config.secrets_path == setup.secrets  # --secrets beats both


def test_missing_secrets(tmp_path: Path) -> None:
    setup = Setup(tmp_path)
    os.unlink(setup.secrets)
    with pytest.raises(SecretsError, match=rf"^{setup.secrets}: missing, and the peer must authenticate"):
        setup.load()
    noauth = setup.write("noauth", "noauth\nnomppe\n")
    config = setup.load("-o", noauth)
    assert config.secrets is None and config.options.auth_methods == ()


def test_world_readable_secrets_warn(setup: Setup) -> None:
    os.chmod(setup.secrets, 0o644)
    assert any("has world and/or group access (-rw-r--r--)" in warning for warning in setup.load().warnings)


# -- errors name the file and the line -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("conf", "options", "secrets", "error", "message"),
    [
        (SEED_CONF + " debug\n", SEED_OPTIONS, SECRETS, ConfigError, "{conf}:6: line starts with white space"),
        (SEED_CONF + "bogus 1\n", SEED_OPTIONS, SECRETS, ConfigError, "{conf}:6: unknown keyword 'bogus'"),
        (SEED_CONF, SEED_OPTIONS + "mtu x\n", SECRETS, OptionsError, "{options}:16: mtu needs a whole number"),
        (SEED_CONF, "require-eap\n", SECRETS, OptionsError, "{options}:1: require-eap: EAP not supported"),
        (SEED_CONF, SEED_OPTIONS, SECRETS + "carol\n", SecretsError, "{secrets}:3: a record needs client"),
        (SEED_CONF.replace("192.168.0.245", "192.168.0.234"), SEED_OPTIONS, SECRETS, PoolError,
         "{conf}:5: remoteip: 192.168.0.234 is listed twice"),
        (SEED_CONF.replace("localip 192.168.0.1", "localip gw.lan"), SEED_OPTIONS, SECRETS, PoolError,
         "{conf}:4: localip: 'gw.lan' is not an IPv4 address"),
    ],
)  # fmt: skip
def test_errors_name_file_and_line(
    tmp_path: Path, conf: str, options: str, secrets: str, error: type[Exception], message: str
) -> None:
    setup = Setup(tmp_path, conf, options, secrets)
    expected = message.format(conf=setup.conf, options=setup.options, secrets=setup.secrets)
    with pytest.raises(error) as caught:
        setup.load()
    assert str(caught.value).startswith(expected), str(caught.value)
    status, messages = setup.check()
    assert status == 1 and messages[0].startswith(f"error: {expected}")


def test_option_file_that_cannot_be_read_names_its_source(tmp_path: Path) -> None:
    setup = Setup(tmp_path, SEED_CONF.replace("option {options}", "option {options}-gone"))
    with pytest.raises(OptionsError, match=rf"^{setup.conf}:2: pppd options file {setup.options}-gone: cannot read"):
        setup.load()
    with pytest.raises(OptionsError, match=r"^command line: -o/--option: pppd options file /nonexistent: cannot"):
        setup.load("-o", "/nonexistent")


def test_bad_listen_flag(setup: Setup) -> None:
    with pytest.raises(ConfigError, match=r"^command line: -l/--listen needs an IPv4 address, got 'vpn\.lan'"):
        setup.load("-l", "vpn.lan")


# -- check ----------------------------------------------------------------------------------------------------


def test_check_valid_configuration(setup: Setup) -> None:
    status, messages = setup.check()
    assert status == 0
    assert messages[0].startswith("warning: ") and "lowered to 6" in messages[0]
    assert messages[-1] == (
        f"ok: {setup.conf}; listen 0.0.0.0:1723; 6 connections; pool of 6; options {setup.options}; "
        f"secrets {setup.secrets} (1 records)"
    )


def test_check_reports_every_error(tmp_path: Path) -> None:
    conf = SEED_CONF.replace("remoteip 192.168.0.234-238,192.168.0.245", "remoteip 192.168.0.9-1")
    setup = Setup(tmp_path, conf, SEED_OPTIONS + "\nms-dns nowhere\n", "only two\n")
    status, messages = check(setup.argv("-l", "x"), system_options=setup.system)
    assert status == 1
    assert messages == [
        "error: command line: -l/--listen needs an IPv4 address, got 'x'",
        f"error: {setup.options}:17: ms-dns needs an IPv4 address, got 'nowhere' (host names are not resolved)",
        f"error: {setup.secrets}:1: a record needs client, server and secret; got 2 word(s)",
        f"error: {setup.conf}:5: remoteip: '192.168.0.9-1': the range ends before it starts",
    ]


def test_check_stops_at_a_bad_pptpd_conf(tmp_path: Path) -> None:
    setup = Setup(tmp_path, SEED_CONF + "stimeout soon\n", "mtu x\n")
    status, messages = setup.check()
    assert status == 1
    assert messages == [f"error: {setup.conf}:6: stimeout must be a positive whole number, got 'soon'"]


def test_check_passes_warnings_with_their_lines(tmp_path: Path) -> None:
    setup = Setup(tmp_path, SEED_CONF + "delegate\n", SEED_OPTIONS + "lcp-echo-adaptive\n")
    status, messages = setup.check()
    assert status == 0
    assert f"warning: {setup.conf}:6: delegate is not implemented by pypptpd and is ignored: " in "\n".join(messages)
    assert (
        f"warning: {setup.options}:16: 'lcp-echo-adaptive' ignored: pppd option not implemented by pypptp" in messages
    )


# -- each file read once ----------------------------------------------------------------------------

_opened: list[str] | None = None


def _audit(event: str, args: tuple[object, ...]) -> None:
    if event == "open" and _opened is not None and isinstance(args[0], str):
        _opened.append(args[0])


sys.addaudithook(_audit)  # (audit hooks cannot be removed; it records only inside opened_files)


@contextlib.contextmanager
def opened_files() -> Iterator[list[str]]:
    """Every file opened by path meanwhile (open() and os.open() alike), in order."""
    global _opened
    _opened = []
    try:
        yield _opened
    finally:
        _opened = None


def test_pptpd_conf_and_chap_secrets_are_each_read_once(setup: Setup) -> None:
    with opened_files() as opened:
        config = setup.load()
    assert opened.count(setup.conf) == 1 and opened.count(setup.secrets) == 1
    assert config.pptpd.lines == {"option": 2, "localip": 4, "remoteip": 5}
    assert config.secrets_stamp == file_stamp(setup.secrets)


def test_check_with_workers_reads_each_file_once(setup: Setup, capsys: pytest.CaptureFixture[str]) -> None:
    with opened_files() as opened:
        status = main([*setup.argv(), "--system-options", setup.system, "--check", "--workers", "2"])
    assert status == 0 and opened.count(setup.conf) == 1 and opened.count(setup.secrets) == 1
    assert "the pool (6 address(es)) and the 6 connections shared by all" in capsys.readouterr().out


def test_validate_gives_the_configuration_check_read(setup: Setup) -> None:
    status, messages, config = validate(setup.argv(), system_options=setup.system)
    assert (status, messages) == setup.check() and config is not None and config.secrets is not None
    setup.write("chap-secrets", "carol\n")
    status, _, config = validate(setup.argv(), system_options=setup.system)
    assert status == 1 and config is None


def test_defaults_are_spelled_once(setup: Setup) -> None:
    """pptpd's defaults live in pypptp.conf.pptpd; the configuration, pppd options and --help use them."""
    config = setup.load("-C", "3")
    defaults = PptpdConfig()
    assert (config.stimeout, config.pidfile, config.speed, config.listen) == (
        DEFAULT_STIMEOUT,
        DEFAULT_PIDFILE,
        DEFAULT_SPEED,
        DEFAULT_LISTEN,
    )
    assert (defaults.stimeout, defaults.connections, defaults.pidfile, defaults.speed) == (
        DEFAULT_STIMEOUT,
        DEFAULT_CONNECTIONS,
        DEFAULT_PIDFILE,
        DEFAULT_SPEED,
    )
    help_text = " ".join(build_parser().format_help().split())
    for shown in (
        f"PID file (default {DEFAULT_PIDFILE})",
        f"send SCCRQ ({DEFAULT_STIMEOUT})",
        f"concurrent connections ({DEFAULT_CONNECTIONS})",
        f"(default {DEFAULT_CONF}",
        f"(default {DEFAULT_SECRETS};",
        f"read after {SYSTEM_OPTIONS}",
    ):
        assert shown in help_text
    assert DEFAULT_SECRETS == CHAP_SECRETS == DaemonPaths().secrets


# -- the daemon starts with the secrets the configuration read ------------------------------------------


def daemon_for(config: DaemonConfig) -> Daemon:
    return Daemon(ServerSettings(), config.pool, None, paths=DaemonPaths(secrets=config.secrets_path))  # type: ignore[arg-type]


def test_the_daemon_takes_the_secrets_read_unless_the_file_changed(
    setup: Setup, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    config = setup.load()
    daemon = daemon_for(config)
    reads: list[str] = []
    real = manager.read_secrets_file

    def counted(path: str) -> ChapSecrets:
        reads.append(path)
        return real(path)

    monkeypatch.setattr(manager, "read_secrets_file", counted)
    caplog.set_level(logging.INFO, logger="pypptpd")
    daemon.load_secrets(config.secrets, config.secrets_stamp)
    assert reads == [] and daemon.secrets is config.secrets
    assert caplog.messages == [f"MGR: 1 secret(s) read from {setup.secrets}"]  # as when it read the file
    record = daemon.lookup("alice", "pptpd")
    assert reads == [] and record is not None and record.secret == "s3cret"  # unchanged: not read again

    setup.write("chap-secrets", SECRETS + "bob pptpd bobpw *\n")
    assert daemon.lookup("bob", "pptpd") is not None and reads == [setup.secrets]  # changed: read again
    daemon.load_secrets(config.secrets, config.secrets_stamp)  # a stale read (a worker started later)
    assert reads == [setup.secrets] * 2 and len(daemon.secrets.records) == 2
    daemon.load_secrets()
    assert reads == [setup.secrets] * 3


# -- --check as strict as pppd and pptpd (issue 17) ------------------------------------------------------------


def pypptpd(*argv: str) -> subprocess.CompletedProcess[str]:
    """The real program, as an administrator runs it."""
    return subprocess.run(
        [sys.executable, "-m", "pypptp.daemon.cli", *argv], capture_output=True, text=True, check=False, timeout=60
    )


def checked(setup: Setup) -> subprocess.CompletedProcess[str]:
    return pypptpd("--check", *setup.argv(), "--system-options", setup.system)


def test_debian_defaults_pass_check_with_no_error_and_no_warning_of_theirs(setup: Setup) -> None:
    result = checked(setup)
    assert result.returncode == 0, result.stdout
    assert [line for line in result.stdout.splitlines() if not line.startswith("ok: ")] == [
        f"warning: {setup.conf}: connections 100 (the default) lowered to 6: localip/remoteip give only 6 address "
        "pairs (pptpd lowers it too)"
    ]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (SEED_OPTIONS.replace("require-mppe-128", "requre-mppe-128"),
         "{options}:6: unknown pppd option 'requre-mppe-128': pppd refuses to start on it (every call would fail); "
         "did you mean 'require-mppe-128'? Correct it or remove it"),
        (SEED_OPTIONS.replace("ms-dns 8.8.8.8", "ms-dsn 8.8.8.8"),
         "{options}:7: unknown pppd option 'ms-dsn': pppd refuses to start on it (every call would fail); "
         "did you mean 'ms-dns'? Correct it or remove it"),
        (SEED_OPTIONS + "logfile {root}/no-such-dir/pptpd.log\n",
         "{options}:16: logfile {root}/no-such-dir/pptpd.log is in a directory that does not exist, "
         "{root}/no-such-dir: pppd cannot open it and refuses to start; create it (mkdir -p {root}/no-such-dir), "
         "or change or remove the logfile line"),
        (SEED_OPTIONS + "logfile {root}\n",
         "{options}:16: logfile {root} is a directory: pppd cannot open it and refuses to start; name a file, "
         "or change or remove the logfile line"),
    ],
)  # fmt: skip
def test_what_pppd_refuses_to_start_on_fails_check_and_the_daemon_refuses_too(
    tmp_path: Path, options: str, message: str
) -> None:
    setup = Setup(tmp_path, options=options.format(root=tmp_path))
    expected = message.format(options=setup.options, root=tmp_path)
    result = checked(setup)
    assert result.returncode == 1 and f"error: {expected}\n" in result.stdout, result.stdout
    # pptpd would run and every call's pppd would exit: pypptpd refuses to start instead, and says why
    started = pypptpd("-f", *setup.argv(), "--system-options", setup.system, "-p", str(tmp_path / "pid"))
    assert started.returncode == 2 and started.stderr == f"pypptpd: {expected}\n"


def test_the_daemon_refusing_to_start_says_every_error_on_a_line_of_its_own(tmp_path: Path) -> None:
    options = SEED_OPTIONS.replace("require-mppe-128", "requre-mppe-128").replace("ms-dns 8.8.8.8", "ms-dsn 8.8.8.8")
    setup = Setup(tmp_path, options=options)
    started = pypptpd("-f", *setup.argv(), "--system-options", setup.system, "-p", str(tmp_path / "pid"))
    lines = started.stderr.splitlines()
    assert started.returncode == 2 and len(lines) == 2, started.stderr
    assert all(line.startswith(f"pypptpd: {setup.options}:") for line in lines), lines
    assert "'requre-mppe-128'" in lines[0] and "'ms-dsn'" in lines[1]


def test_every_unknown_option_is_one_error_line(tmp_path: Path) -> None:
    setup = Setup(tmp_path, options=SEED_OPTIONS.replace("require-mppe-128", "requre-mppe-128") + "nologdf\n")
    status, messages = setup.check()
    assert status == 1
    assert [m.split(": ", 3)[1:3] for m in messages if m.startswith("error: ")] == [
        [f"{setup.options}:6", "unknown pppd option 'requre-mppe-128'"],
        [f"{setup.options}:16", "unknown pppd option 'nologdf'"],
    ]


def test_a_byte_order_mark_in_the_options_fails_check_and_the_daemon_skips_it(tmp_path: Path) -> None:
    setup = Setup(tmp_path)
    Path(setup.options).write_bytes(b"\xef\xbb\xbf" + SEED_OPTIONS.encode())
    expected = (
        f"{setup.options}:1: starts with a UTF-8 byte order mark (saved by Notepad?): pppd reads it as part of the "
        "first word, an option it does not know, and refuses to start{}; "
        f"remove it, e.g. sed -i '1s/^\\xEF\\xBB\\xBF//' {setup.options}"
    )
    result = checked(setup)
    assert result.returncode == 1 and f"error: {expected.format('')}\n" in result.stdout, result.stdout
    config = setup.load()  # the name line is not lost: the mark is skipped, and the log says so
    assert config.options.name == "pptpd" and expected.format(" (pypptpd skips it)") in config.warnings


def test_a_byte_order_mark_in_chap_secrets_fails_check_and_the_daemon_skips_it(tmp_path: Path) -> None:
    setup = Setup(tmp_path)
    Path(setup.secrets).write_bytes(b"\xef\xbb\xbfxiaoming pptpd s3cret *\n")
    result = checked(setup)
    assert result.returncode == 1
    assert f"error: {setup.secrets}:1: starts with a UTF-8 byte order mark (saved by Notepad?): pppd reads it " in (
        result.stdout
    )
    config = setup.load()
    assert config.secrets is not None and config.secrets.lookup("xiaoming", "pptpd") is not None
    assert any(w.startswith(f"{setup.secrets}:1: starts with a UTF-8 byte order mark") for w in config.warnings)


def test_a_byte_order_mark_in_pptpd_conf_fails_check_and_the_daemon_skips_it(tmp_path: Path) -> None:
    setup = Setup(tmp_path, conf="option {options}\nlocalip 192.168.0.1\nremoteip 192.168.0.234-238\n")
    Path(setup.conf).write_bytes(b"\xef\xbb\xbf" + Path(setup.conf).read_bytes())
    result = checked(setup)
    assert result.returncode == 1
    assert f"error: {setup.conf}:1: starts with a UTF-8 byte order mark (saved by Notepad?): pptpd reads it " in (
        result.stdout
    )
    assert setup.load().options_files == [setup.options]  # the option line counts


def test_a_misspelt_pptpd_conf_keyword_names_the_right_one(tmp_path: Path) -> None:
    setup = Setup(tmp_path, conf=SEED_CONF.replace("remoteip", "remotip"))
    status, messages = setup.check()
    assert status == 1 and messages == [
        f"error: {setup.conf}:5: unknown keyword 'remotip' (pptpd would ignore the line); did you mean 'remoteip'? "
        "Correct it or remove it"
    ]


def test_a_server_column_that_matches_no_name_warns_per_line_and_fails_when_no_line_can_match(
    tmp_path: Path,
) -> None:
    setup = Setup(tmp_path, secrets="alice pptp s3cret *\nbob pptpd pw *\ncarol * pw *\n")
    result = checked(setup)
    assert result.returncode == 0, result.stdout
    assert (
        f"warning: {setup.secrets}:1: server 'pptp' is neither * nor our name 'pptpd' (the name option, "
        f"{setup.options}:1): this line can never match; write pptpd or * in the second column\n"
    ) in result.stdout
    assert f"{setup.secrets}:2" not in result.stdout and f"{setup.secrets}:3" not in result.stdout
    setup.write("chap-secrets", "alice pptp s3cret *\nbob vpn pw *\n")
    result = checked(setup)
    assert result.returncode == 1
    assert f"warning: {setup.secrets}:2: server 'vpn' is neither * nor our name 'pptpd'" in result.stdout
    none_usable = (
        f"{setup.secrets}: none of its lines can be used (see the warnings), and the peer must authenticate: every "
        'login would fail (pppd refuses the calls: "no suitable secret(s) found"); add a line: USER pptpd PASSWORD *'
    )
    assert f"error: {none_usable}\n" in result.stdout
    config = setup.load()  # the daemon starts (chap-secrets is re-read when it changes), and says it
    assert none_usable in config.warnings


def test_without_a_name_option_the_server_column_is_the_host_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("socket.gethostname", lambda: "vpn-host")
    setup = Setup(tmp_path, options=SEED_OPTIONS.replace("name pptpd\n", ""))
    status, messages = setup.check()
    assert (
        status == 1
        and (
            f"warning: {setup.secrets}:2: server 'pptpd' is neither * nor our name 'vpn-host' (this host's name: no "
            "name option): this line can never match; write vpn-host or * in the second column"
        )
        in messages
    )


def test_no_secret_at_all_fails_check_unless_noauth(tmp_path: Path) -> None:
    setup = Setup(tmp_path, secrets="# nobody yet\n")
    status, messages = setup.check()
    assert status == 1 and messages[0].startswith(f"error: {setup.secrets}: it has no secrets, and the peer must")
    setup = Setup(tmp_path, options="noauth\nnomppe\n", secrets="# nobody\n")
    assert setup.check()[0] == 0


def test_a_line_allowing_no_address_warns(tmp_path: Path) -> None:
    setup = Setup(tmp_path, secrets=SECRETS + "bob pptpd pw\n")
    status, messages = setup.check()
    assert (
        status == 0
        and (
            f"warning: {setup.secrets}:3: 'bob' is allowed no IP address (no fourth column, or -): pppd and pypptpd "
            "refuse the link after the login; write * (any address) in the fourth column"
        )
        in messages
    )


def test_a_symlinked_chap_secrets_is_followed(tmp_path: Path) -> None:
    setup = Setup(tmp_path)
    link = tmp_path / "linked-secrets"
    link.symlink_to(setup.secrets)
    result = pypptpd("--check", "-c", setup.conf, "--secrets", str(link), "--system-options", setup.system)
    assert result.returncode == 0 and f"secrets {link} (1 records)" in result.stdout, result.stdout


def test_the_mppe_patch_syntax_passes_check_and_means_require_mppe_128(tmp_path: Path) -> None:
    (tmp_path / "patch").mkdir()
    (tmp_path / "seed").mkdir()
    patch = Setup(
        tmp_path / "patch", options=SEED_OPTIONS.replace("require-mppe-128", "mppe required,no40,no56,stateless")
    )
    result = checked(patch)
    assert result.returncode == 0, result.stdout
    assert [line for line in result.stdout.splitlines() if line.startswith("warning: ")] == [
        f"warning: {patch.conf}: connections 100 (the default) lowered to 6: localip/remoteip give only 6 address "
        "pairs (pptpd lowers it too)"
    ]
    assert patch.load().options.mppe == Setup(tmp_path / "seed").load().options.mppe
    patch.write("pptpd-options", SEED_OPTIONS.replace("require-mppe-128", "mppe required,no40,no56"))
    seed = Setup(tmp_path / "seed", options=SEED_OPTIONS + "mppe-stateful\n")
    assert patch.load().options.mppe == seed.load().options.mppe and seed.load().options.mppe.stateful
