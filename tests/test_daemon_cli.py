"""The pypptpd command line run as a program (``sys.executable -m pypptp.daemon.cli``), without namespaces."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SECRETS = "alice pptpd s3cret *\n"


def test_malformed_option_line_is_reported_with_file_and_line(tmp_path: Path) -> None:
    conf = tmp_path / "pptpd.conf"
    options = tmp_path / "pptpd-options"
    options.write_text("name pptpd\nms-dns not-an-address\n")
    conf.write_text(f"option {options}\nlocalip 192.168.0.1\nremoteip 192.168.0.234-238\n")
    (tmp_path / "chap-secrets").write_text(SECRETS)
    argv = ["-c", str(conf), "--secrets", str(tmp_path / "chap-secrets"), "--system-options", "/nonexistent"]
    result = subprocess.run(
        [sys.executable, "-m", "pypptp.daemon.cli", "--check", *argv], capture_output=True, text=True, check=False
    )
    assert result.returncode == 1 and f"{options}:2" in result.stdout
    started = subprocess.run(
        [sys.executable, "-m", "pypptp.daemon.cli", "-f", *argv],
        capture_output=True,
        text=True,
        check=False,
        timeout=10,
    )
    assert started.returncode == 2 and f"{options}:2" in started.stderr
