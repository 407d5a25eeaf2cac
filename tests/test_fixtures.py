"""The reference data in tests/fixtures is all there, unchanged, and every file has its origin noted.

tests/fixtures/README.md lists each file with its size, SHA-256, origin and licence; a clone that
lost a file, a file edited by accident, or a new file without its row fails here.
"""

from __future__ import annotations

import hashlib
import re

import pytest

from tests.fixtures import CAPTURES, FIXTURES, RFCS, capture, capture_files, rfc

ROW = re.compile(
    r"^\| `(?P<path>[^`]+)` \| (?P<size>\d+) \| `(?P<sha256>[0-9a-f]{64})` "
    r"\| (?P<origin>[^|]+) \| (?P<licence>[^|]+) \|$"
)
NOT_DATA = {"README.md", "__init__.py"}


def _listed() -> dict[str, tuple[int, str]]:
    rows = [ROW.match(line) for line in (FIXTURES / "README.md").read_text().splitlines()]
    listed = {m["path"]: (int(m["size"]), m["sha256"]) for m in rows if m is not None}
    assert all(m["origin"].strip() and m["licence"].strip() for m in rows if m is not None)
    return listed


def _present() -> set[str]:
    return {
        path.relative_to(FIXTURES).as_posix()
        for path in FIXTURES.rglob("*")
        if path.is_file() and path.name not in NOT_DATA and "__pycache__" not in path.parts
    }


def test_the_files_are_exactly_those_listed() -> None:
    listed = _listed()
    assert len(listed) == 12
    assert _present() == set(listed)


@pytest.mark.parametrize("name", sorted(_listed()))
def test_each_file_is_as_published(name: str) -> None:
    size, digest = _listed()[name]
    data = (FIXTURES / name).read_bytes()
    assert (len(data), hashlib.sha256(data).hexdigest()) == (size, digest)


def test_a_missing_fixture_is_an_error_not_a_skip() -> None:
    with pytest.raises(FileNotFoundError, match=re.escape("tests/fixtures/README.md")):
        capture("absent.pcap")
    with pytest.raises(FileNotFoundError):
        rfc("rfc0000.txt")
    assert capture("tcpdump_tests_pptp.pcap").parent == CAPTURES and rfc("rfc1661.txt").parent == RFCS
    assert [p.name for p in capture_files()] == sorted(
        n.split("/")[1] for n in _listed() if n.endswith(("cap", "dump"))
    )
