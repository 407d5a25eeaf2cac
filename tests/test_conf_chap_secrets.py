"""Reading chap-secrets safely (:mod:`pypptp.conf.chap_secrets`): the records themselves are
tests/test_ppp_secrets.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pypptp.conf.chap_secrets import file_stamp, read_limited, read_secrets_file
from pypptp.ppp.secrets import SecretsError


def test_secret_from_a_file_and_safe_reading(tmp_path: Path) -> None:
    secret_file = tmp_path / "alice.pw"
    secret_file.write_text("  from-file  ignored\n")
    secret_file.chmod(0o600)
    secrets_path = tmp_path / "chap-secrets"
    secrets_path.write_text(f"alice pptpd @{secret_file} *\n")
    secrets_path.chmod(0o600)
    secrets = read_secrets_file(str(secrets_path))
    record = secrets.lookup("alice", "pptpd")
    assert record is not None and record.secret == "from-file" and secrets.warnings == ()
    for mode in (0o644, 0o620, 0o602, 0o640):  # any group or world bit, as pppd warns
        secrets_path.chmod(mode)
        assert any("has world and/or group access" in w for w in read_secrets_file(str(secrets_path)).warnings)
    secrets_path.chmod(0o600)
    link = tmp_path / "link"
    link.symlink_to(secrets_path)
    with pytest.raises(SecretsError, match="cannot open"):
        read_secrets_file(str(link))
    with pytest.raises(SecretsError, match="not a regular file"):
        read_secrets_file(str(tmp_path))
    with pytest.raises(SecretsError, match="cannot open"):
        read_secrets_file(os.path.join(str(tmp_path), "missing"))


def test_an_at_secret_file_is_read_as_safely(tmp_path: Path) -> None:
    secret_file = tmp_path / "alice.pw"
    secret_file.write_text("pw\n")
    secret_file.chmod(0o644)
    secrets_path = tmp_path / "chap-secrets"
    secrets_path.write_text(f"alice pptpd @{secret_file} *\n")
    secrets_path.chmod(0o600)
    assert read_secrets_file(str(secrets_path)).warnings == (
        f"{secret_file}: has world and/or group access (-rw-r--r--); pppd warns of this too (chmod 600)",
    )
    link = tmp_path / "link.pw"
    link.symlink_to(secret_file)
    secrets_path.write_text(f"alice pptpd @{link} *\n")
    with pytest.raises(SecretsError, match=f"^{link}: cannot open"):
        read_secrets_file(str(secrets_path))


def test_read_limited_refuses_a_file_too_big(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pypptp.conf import chap_secrets

    path = tmp_path / "chap-secrets"
    path.write_text("u s pw\n")
    path.chmod(0o600)
    assert read_limited(str(path)) == ("u s pw\n", [])
    monkeypatch.setattr(chap_secrets, "MAX_FILE_BYTES", 4)
    with pytest.raises(SecretsError, match=r"7 bytes, more than 4$"):
        read_limited(str(path))


def test_the_stamp_changes_with_the_file(tmp_path: Path) -> None:
    path = tmp_path / "chap-secrets"
    assert file_stamp(str(path)) is None
    path.write_text("u s pw\n")
    first = file_stamp(str(path))
    assert first is not None and first == file_stamp(str(path))
    path.write_text("u s longer-pw\n")
    assert file_stamp(str(path)) != first
