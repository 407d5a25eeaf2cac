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
    fifo = tmp_path / "fifo.pw"
    os.mkfifo(fifo)
    secrets_path.write_text(f"alice pptpd @{fifo} *\n")
    with pytest.raises(SecretsError, match=f"^{fifo}: not a regular file"):
        read_secrets_file(str(secrets_path))


def test_a_symbolic_link_is_followed_as_pppd_follows_it(tmp_path: Path) -> None:
    """pppd opens chap-secrets with fopen, which follows links: refusing one (ELOOP) broke a working setup."""
    target = tmp_path / "etc-tree" / "chap-secrets"
    target.parent.mkdir()
    target.write_text("alice pptpd s3cret *\n")
    target.chmod(0o600)
    link = tmp_path / "chap-secrets"
    link.symlink_to(target)
    secrets = read_secrets_file(str(link))
    assert secrets.lookup("alice", "pptpd") is not None and secrets.warnings == ()
    target.chmod(0o644)  # the target's permissions are the ones checked
    assert read_secrets_file(str(link)).warnings == (
        f"{link}: has world and/or group access (-rw-r--r--); pppd warns of this too (chmod 600)",
    )
    target.unlink()
    os.mkfifo(target)  # a link to a FIFO: refused at once, not a daemon blocked in open()
    with pytest.raises(SecretsError, match=rf"^{link} \(a link to {target}\): not a regular file; chap-secrets"):
        read_secrets_file(str(link))
    target.unlink()
    with pytest.raises(SecretsError, match=rf"^{link}: cannot open: No such file or directory$"):
        read_secrets_file(str(link))  # a dangling link


def test_a_byte_order_mark_is_an_error_when_strict_and_skipped_with_a_warning_otherwise(tmp_path: Path) -> None:
    path = tmp_path / "chap-secrets"
    path.write_bytes(b"\xef\xbb\xbfxiaoming pptpd s3cret *\n")
    path.chmod(0o600)
    expected = (
        f"{path}:1: starts with a UTF-8 byte order mark (saved by Notepad?): pppd reads it as part of the first "
        "name, which then matches no login{}; "
        f"remove it, e.g. sed -i '1s/^\\xEF\\xBB\\xBF//' {path}"
    )
    with pytest.raises(SecretsError) as caught:
        read_secrets_file(str(path), strict=True)
    assert str(caught.value) == expected.format("")
    secrets = read_secrets_file(str(path))  # the daemon: xiaoming can log in, and the log says why it warns
    assert secrets.warnings == (expected.format(" (pypptpd skips it)"),)
    record = secrets.lookup("xiaoming", "pptpd")
    assert record is not None and record.client == "xiaoming"
    pw = tmp_path / "pw"
    pw.write_bytes(b"\xef\xbb\xbfs3cret\n")  # an @/path secret's file too
    path.write_text(f"xiaoming pptpd @{pw} *\n")
    record = read_secrets_file(str(path)).lookup("xiaoming", "pptpd")
    assert record is not None and record.secret == "s3cret"
    with pytest.raises(SecretsError, match=rf"^{pw}:1: starts with a UTF-8 byte order mark"):
        read_secrets_file(str(path), strict=True)


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
