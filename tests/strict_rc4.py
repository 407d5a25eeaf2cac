"""cryptography 51's rule on every release: ``update_into`` refuses overlapping buffers.

cryptography 51.0 made ``CipherContext.update_into(data, buf)`` raise ``ValueError: data and buf must
not overlap``; releases before it encrypted in place without a word, which is how an in-place data
path passed CI on 50.0.2 and failed on every fresh install.  :func:`strict_rc4` installs a wrapper
over the RC4 contexts that :mod:`pypptp.ppp.mppe` creates which enforces the rule whatever release
is installed, so the tests catch overlap before a release does.
"""

from __future__ import annotations

import ctypes
from collections.abc import Iterator
from typing import Any

import pytest

import pypptp.ppp.mppe as mppe


def _span(buffer: Any) -> tuple[int, int] | None:
    """The memory a writable, non-empty buffer occupies; None for a read-only or empty one."""
    view = memoryview(buffer)
    if view.readonly or not view.nbytes:
        return None
    start = ctypes.addressof(ctypes.c_char.from_buffer(view))
    return start, start + view.nbytes


def overlap(data: Any, buf: Any) -> bool:
    """True when ``data`` and ``buf`` share memory (a read-only view of the same object counts)."""
    spans = _span(data), _span(buf)
    if spans[0] is not None and spans[1] is not None:
        (a, b), (c, d) = spans  # type: ignore[misc]
        return a < d and c < b
    return memoryview(data).obj is memoryview(buf).obj


class StrictContext:
    def __init__(self, context: Any, calls: list[int]) -> None:
        self._context = context
        self._calls = calls
        self.update = context.update

    def update_into(self, data: Any, buf: Any) -> int:
        if overlap(data, buf):
            raise ValueError("data and buf must not overlap")
        self._calls.append(len(memoryview(data)))
        return int(self._context.update_into(data, buf))

    def finalize(self) -> bytes:
        return bytes(self._context.finalize())


class StrictCipher:
    calls: list[int] = []

    def __init__(self, algorithm: Any, mode: Any = None) -> None:
        self._cipher = _real_cipher(algorithm, mode=mode)

    def encryptor(self) -> StrictContext:
        return StrictContext(self._cipher.encryptor(), StrictCipher.calls)


_real_cipher = mppe.Cipher


@pytest.fixture
def strict_rc4(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Every RC4 context MPPE creates refuses overlapping ``update_into`` buffers; yields the lengths
    of the ``update_into`` calls made (so a test can tell the copy-free path ran)."""
    calls: list[int] = []
    monkeypatch.setattr(StrictCipher, "calls", calls)
    monkeypatch.setattr(mppe, "Cipher", StrictCipher)
    yield calls
