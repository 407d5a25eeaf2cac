"""The README opens with the two commands, and .ci/run runs the test command word for word."""

from __future__ import annotations

import importlib.metadata
import re
import tomllib
from pathlib import Path

import pytest

from tests.conftest import RUNTIME_DEPENDENCIES

REPO = Path(__file__).resolve().parents[1]


def _readme_commands() -> list[str]:
    lines = (REPO / "README.md").read_text().splitlines()
    head = lines[: lines.index("---")]
    return [line.strip() for line in head if line.startswith("    ")]


def test_readme_opens_with_exactly_two_commands() -> None:
    install, test = _readme_commands()
    assert install.startswith("apt-get") and install.endswith("pypptp-demo")
    assert "pytest" in test and "ruff check" in test and "mypy" in test


def test_ci_runs_the_readme_test_command() -> None:
    _, test = _readme_commands()
    ci_lines = [line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines()]
    assert test in ci_lines


def test_the_ppp_library_example_runs_as_printed(capsys: pytest.CaptureFixture[str]) -> None:
    """The in-memory PPP example of the README brings both ends up (no network, no root)."""
    text = (REPO / "README.md").read_text()
    [example] = [block for block in re.findall(r"```python\n(.*?)```", text, re.S) if "PppLink" in block]
    exec(compile(example, "README.md", "exec"), {})
    printed = capsys.readouterr().out
    assert printed.count("NetworkUp(") == 2 and "192.168.0.234" in printed


def _numbers(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version)[:3])


def test_the_readme_states_the_lower_bounds_that_pyproject_declares() -> None:
    """The lowest versions the README says were tested are the bounds pyproject.toml claims, and the
    installed releases satisfy them."""
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    bounds: dict[str, str] = {}
    for line in declared:
        match = re.fullmatch(r"([\w-]+)>=([\d.]+)", line)
        assert match is not None, f"a lower bound and nothing else: {line}"
        bounds[match[1]] = match[2]
    assert sorted(bounds) == sorted(RUNTIME_DEPENDENCIES)
    text = (REPO / "README.md").read_text()
    for name, lowest in bounds.items():
        assert f"`{name}>={lowest}`" in text
        installed = importlib.metadata.version(name)
        assert _numbers(installed) >= _numbers(lowest), (name, installed, lowest)
