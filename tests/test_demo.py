"""The README's first command ends in pypptp-demo: run it as a user would."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.netns


def test_demo_brings_a_tunnel_up_carries_traffic_and_cleans_up(require_netns: None) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pypptp.client.demo"], capture_output=True, text=True, timeout=120, cwd=REPO, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for step in (
        "encryption: MPPE 128-bit stateless",
        "3 packets transmitted, 3 received, 0% packet loss",
        "33554432 bytes in",
        "MS-CHAP-V2 peer authenticated as 'demo'",
        "Connection terminated.",
        "MGR: Exit.",
    ):
        assert step in result.stdout, result.stdout
    assert "pypptpd exited with status 0" in result.stdout
    # its own namespaces, named in its output, are gone (other programs may make theirs meanwhile)
    match = re.search(r"Namespaces (pypptp-demo-\d+-srv) and (pypptp-demo-\d+-cli) deleted", result.stdout)
    assert match is not None, result.stdout
    after = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout.split()
    assert match[1] not in after and match[2] not in after
