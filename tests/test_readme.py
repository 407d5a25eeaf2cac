"""The README opens with the two commands, and .ci/run runs the test command word for word."""

from __future__ import annotations

from pathlib import Path

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
