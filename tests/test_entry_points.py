"""Every ``python -m`` and console entry point the README names answers ``-h`` at once, with no warning.

``python -m pypptp.client.tunnel`` used to warn (runpy: the module was already imported by its
package's ``__init__``), which a user reads as something being wrong."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

MODULES = [
    "pypptp.client.tunnel",
    "pypptp.aio.client",
    "pypptp.client.demo",
    "pypptp.daemon.cli",
    "pypptp.daemon.ctl",
    "pypptp.fuzz",
    "pypptp.trace",
]


@pytest.mark.parametrize("module", MODULES)
def test_module_help_is_clean(module: str) -> None:
    result = subprocess.run(
        [sys.executable, "-W", "error", "-m", module, "-h"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout.startswith("usage: ")


def test_the_package_still_gives_the_client_names() -> None:
    import pypptp.client as client
    from pypptp.client.tunnel import PptpClientSession, client_link_config

    assert client.PptpClientSession is PptpClientSession and client.client_link_config is client_link_config
    with pytest.raises(AttributeError):
        _ = client.no_such_name


def test_the_trace_reader_stops_quietly_when_its_reader_goes(tmp_path: Path) -> None:
    """``python -m pypptp.trace FILE | head``: no BrokenPipeError traceback when head has had enough."""
    trace = tmp_path / "t.jsonl"
    event = {"time": 0.0, "category": "phase", "event": "phase", "data": {"phase": "ESTABLISH"}}
    trace.write_text("".join(json.dumps(event) + "\n" for _ in range(200_000)))
    reader = subprocess.Popen(
        [sys.executable, "-m", "pypptp.trace", str(trace)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO
    )
    assert reader.stdout is not None and reader.stderr is not None
    assert reader.stdout.readline()
    reader.stdout.close()
    status = reader.wait(60)
    assert reader.stderr.read() == b"" and status == 141
