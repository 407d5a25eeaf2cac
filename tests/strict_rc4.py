"""cryptography 51's rule on every release: ``update_into`` refuses overlapping buffers.

cryptography 51.0 made ``CipherContext.update_into(data, buf)`` raise ``ValueError: data and buf must
not overlap``; releases before it encrypted in place without a word, which is how an in-place data
path passed CI on 50.0.2 and failed on every fresh install.  :func:`strict_rc4` installs a wrapper
over the RC4 contexts that :mod:`pypptp.ppp.mppe` creates which enforces the rule whatever release
is installed, so the tests catch overlap before a release does.

RC4 contexts that live for one packet (key changes, stateless packets) are ``arc4``'s
(:func:`pypptp.ppp.mppe.running_rc4` and ``OneShotRC4``: the choice is made there).  ``arc4`` has no
``update_into``: it takes ``bytes`` only (read-only, so never a view of a buffer being written) and
returns new ``bytes``, so no buffer can overlap; the wrapper enforces the ``bytes`` rule too and
records those calls, so that a test can tell every packet went through one of the two.
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

    def update(self, data: Any) -> bytes:
        """New bytes out (no buffer to overlap): recorded, as every RC4 call on the data path is."""
        self._calls.append(len(memoryview(data)))
        return bytes(self._context.update(data))

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


class StrictOneShot:
    def __init__(self, key: Any) -> None:
        if type(key) is not bytes:
            raise TypeError(f"arc4 takes bytes, not {type(key).__name__}")
        self._context = _real_one_shot(key)

    def encrypt(self, data: Any) -> bytes:
        if type(data) is not bytes:
            raise TypeError(f"arc4 takes bytes, not {type(data).__name__}")
        StrictCipher.calls.append(len(data))
        return bytes(self._context.encrypt(data))


_real_cipher = mppe.Cipher
_real_one_shot = mppe.OneShotRC4


@pytest.fixture
def strict_rc4(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Every RC4 context MPPE creates refuses overlapping ``update_into`` buffers; yields the lengths
    of the ``update_into`` calls made and of the data ``arc4`` encrypted (so a test can tell which path
    ran)."""
    calls: list[int] = []
    monkeypatch.setattr(StrictCipher, "calls", calls)
    monkeypatch.setattr(mppe, "Cipher", StrictCipher)
    monkeypatch.setattr(mppe, "OneShotRC4", StrictOneShot)
    yield calls
