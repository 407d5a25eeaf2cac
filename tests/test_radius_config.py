"""``pypptpd --check`` with ``plugin radius.so``: radiusclient's files and the DAE lines, file and line on
every error, as an admin moving a pptpd+radius setup over runs it first."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pypptp.conf.radiusclient import RadiusConfig
from pypptp.daemon.radius import dae_clients
from tests.test_daemon_config import SEED_CONF, Setup
from tests.test_radius_netns import radius_files

OPTIONS = "name pptpd\nrequire-mschap-v2\nrequire-mppe-128\n"


def radius_setup(tmp_path: Path, extra: str = "", *, dae: bool = True) -> Setup:
    lines = radius_files(tmp_path / "radius", "198.18.0.1", dae=dae)
    return Setup(tmp_path, SEED_CONF, OPTIONS + lines + extra, "")


def test_a_radius_setup_checks_ok_without_chap_secrets(tmp_path: Path) -> None:
    setup = radius_setup(tmp_path)
    Path(setup.secrets).unlink()  # RADIUS judges the users: no chap-secrets needed
    status, messages = setup.check()
    assert status == 0, messages
    radius = tmp_path / "radius"
    assert messages[-1].endswith(
        f"RADIUS {radius}/radiusclient.conf (authserver 198.18.0.1:1812; acctserver 198.18.0.1:1813); "
        "DAE on 198.18.0.1:3799"
    ), messages[-1]
    config = setup.load()
    assert config.radius is not None and config.options.radius
    assert config.options.link_config().auth.external


def test_a_missing_radiusclient_conf_is_an_error_naming_it(tmp_path: Path) -> None:
    setup = radius_setup(tmp_path)
    (tmp_path / "radius" / "radiusclient.conf").unlink()
    status, messages = setup.check()
    assert status == 1
    assert any("radiusclient.conf" in m and m.startswith("error: ") for m in messages), messages


def test_errors_in_radiusclient_conf_name_file_and_line(tmp_path: Path) -> None:
    setup = radius_setup(tmp_path)
    conf = tmp_path / "radius" / "radiusclient.conf"
    conf.write_text(conf.read_text() + "radius_timeout soon\nauthservr 198.18.0.9\n")
    status, messages = setup.check()
    assert status == 1
    errors = [m for m in messages if m.startswith("error: ")]
    assert any(f"{conf}:10:" in m and "radius_timeout" in m for m in errors), errors
    assert any(f"{conf}:11:" in m and "authservr" in m for m in errors), errors


def test_bad_dae_lines_are_errors_with_their_place(tmp_path: Path) -> None:
    setup = radius_setup(tmp_path, dae=False, extra="radius-dae-listen 198.18.0.1:99999\n")
    status, messages = setup.check()
    assert status == 1
    assert any(f"{setup.options}:6: radius-dae-listen 198.18.0.1:99999: the port" in m for m in messages), messages
    clients = tmp_path / "dae-clients"
    clients.write_text("198.18.0.7\n")  # a host without its secret
    clients.chmod(0o600)
    setup = radius_setup(tmp_path / "b", dae=False, extra=f"radius-dae-listen 3799\nradius-dae-clients {clients}\n")
    status, messages = setup.check()
    assert status == 1
    assert any(f"{clients}:1:" in m for m in messages), messages


def test_radius_options_before_the_plugin_line_are_errors(tmp_path: Path) -> None:
    setup = Setup(tmp_path, SEED_CONF, OPTIONS + "radius-config-file /etc/x\nplugin radius.so\n", "")
    status, messages = setup.check()
    assert status == 1
    assert f"error: {setup.options}:4: 'radius-config-file' is an option of pppd's radius plugin" in messages[0]


def test_the_dae_clients_file_is_read_as_a_secrets_file(tmp_path: Path) -> None:
    """radius-dae-clients holds shared secrets: read as the servers file is (never world-readable, a
    regular file only, its byte order mark dropped)."""
    config = RadiusConfig(path="test")
    clients = tmp_path / "dae-clients"
    clients.write_text("\ufeff198.18.0.7 s3cret\n")
    clients.chmod(0o644)
    with pytest.raises(ValueError, match="any user may read it"):
        dae_clients(config, str(clients))
    clients.chmod(0o600)
    assert [str(client.network) for client in dae_clients(config, str(clients))] == ["198.18.0.7/32"]
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo, 0o600)
    with pytest.raises(ValueError, match="not a regular file"):
        dae_clients(config, str(fifo))
