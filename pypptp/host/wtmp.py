"""wtmp records, as pppd's ``logwtmp`` writes them for pptpd's ``-w``, so that ``last`` lists VPN sessions.

With ``logwtmp`` (``-w``) pptpd loads its ``pptpd-logwtmp.so`` plugin into each
pppd; at IPCP up the plugin calls ``logwtmp(ifname, peer_authname,
pptpd-original-ip)`` and at IPCP down ``logwtmp(ifname, "", "")``.  Debian's
pppd is linked with libutil, so that is glibc's ``logwtmp``: a zeroed
``struct utmp`` with ``ut_type`` USER_PROCESS (a name) or DEAD_PROCESS (none),
``ut_pid`` the process, ``ut_line``, ``ut_user`` and ``ut_host`` copied with
``strncpy`` (cut at the field's size, no NUL when full), ``ut_tv`` the time
of day; then ``updwtmp(_PATH_WTMP)``.  Only wtmp: pppd's own ``logwtmp``,
which also rewrote utmp, is compiled out when libutil has one, so ``who``
never listed pppd's sessions and does not list ours.  One addition: glibc
leaves ``ut_addr_v6`` zero, here it holds the client's address too, so that
``last -i`` shows it rather than ``0.0.0.0``.

:func:`encode` and :func:`decode` are the record (Linux glibc's layout, 384
bytes: the 64-bit ABIs keep 32-bit times in it for 32-bit programs' sake);
:func:`append` is glibc's ``updwtmp``: the file is opened for writing, never
created (``updwtmp`` does not create it either; a missing wtmp means the admin
does not want one), write-locked with ``fcntl`` as glibc does (``F_SETLKW``
with a 10 s alarm there; here non-blocking attempts for up to 10 s, since an
alarm cannot serve a thread), a torn record at its end cut off, and the record
appended, or the file cut back if it could not be written whole.

:class:`WtmpWriter` calls :func:`append` on a thread of its own: the lock can
be held by another process for seconds, and the event loop must not wait for
it.  One thread, first in first out, keeps each session's logout after its
login; its queue is bounded (:data:`QUEUE_LIMIT`), and records that cannot be
written are counted and said in one warning per failing stretch, not one per
record.
"""

from __future__ import annotations

import dataclasses
import errno
import fcntl
import logging
import os
import queue
import stat
import struct
import threading
import time
from ipaddress import IPv4Address

__all__ = [
    "DEAD_PROCESS",
    "LOCK_TIMEOUT",
    "QUEUE_LIMIT",
    "RECORD_SIZE",
    "USER_PROCESS",
    "WTMP",
    "UtmpRecord",
    "WtmpWriter",
    "append",
    "decode",
    "encode",
    "read_records",
]

WTMP = "/var/log/wtmp"
"""glibc's ``_PATH_WTMP``."""
USER_PROCESS = 7
DEAD_PROCESS = 8
LOCK_TIMEOUT = 10.0
"""Seconds :func:`append` waits for the file's lock: glibc's ``TIMEOUT`` in ``utmp_file.c``."""
QUEUE_LIMIT = 1024
"""Records waiting for the writer thread at most; two per session, so only a wtmp locked for minutes
with sessions coming and going fills it."""

# type, pid, line, id, user, host, exit (termination, exit), session, tv_sec, tv_usec, addr_v6, reserved
_LAYOUT = struct.Struct("=h2xi32s4s32s256shhiii16s20x")
RECORD_SIZE = _LAYOUT.size
assert RECORD_SIZE == 384


@dataclasses.dataclass(frozen=True)
class UtmpRecord:
    """One ``struct utmp``; the texts as bytes, as the file holds them (cut at the field sizes)."""

    type: int
    pid: int
    line: bytes
    user: bytes = b""
    host: bytes = b""
    time: float = 0.0
    """Seconds since the epoch (``ut_tv``, microseconds kept)."""
    address: IPv4Address | None = None
    """``ut_addr_v6``'s first word, an IPv4 address in network order (None when zero)."""
    id: bytes = b""

    @classmethod
    def login(cls, line: str, user: str, host: str, when: float, address: IPv4Address | None = None) -> UtmpRecord:
        """glibc's ``logwtmp(line, user, host)`` with a name: USER_PROCESS.  ``user`` is written as it is
        given (the caller makes a peer's name safe); texts are UTF-8, cut at a character's boundary."""
        return cls(USER_PROCESS, os.getpid(), _text(line, 32), _text(user, 32), _text(host, 256), when, address)

    @classmethod
    def logout(cls, line: str, when: float) -> UtmpRecord:
        """glibc's ``logwtmp(line, "", "")``: DEAD_PROCESS, which ends the login on ``line`` for ``last``."""
        return cls(DEAD_PROCESS, os.getpid(), _text(line, 32), b"", b"", when)


def _text(value: str, size: int) -> bytes:
    """``value`` in UTF-8 in ``size`` bytes at most (``strncpy`` keeps no NUL when the field is full), cut
    before a character rather than inside one."""
    data = value.encode("utf-8", "surrogateescape")
    if len(data) <= size:
        return data
    cut = size
    while cut > 0 and data[cut] & 0xC0 == 0x80:  # data[cut] starts the part cut off: not a continuation
        cut -= 1
    return data[:cut]


def encode(record: UtmpRecord) -> bytes:
    """The record's 384 bytes.  A time beyond 2038 does not fit the 32-bit ``tv_sec`` and raises
    :class:`ValueError`, as does a text longer than its field."""
    for name, size in (("line", 32), ("user", 32), ("host", 256), ("id", 4)):
        if len(getattr(record, name)) > size:
            raise ValueError(f"ut_{name} holds {size} bytes, not {len(getattr(record, name))}")
    seconds = int(record.time)
    micros = min(999_999, max(0, round((record.time - seconds) * 1_000_000)))
    if not -(2**31) <= seconds < 2**31:
        raise ValueError(f"time {record.time} does not fit ut_tv's 32-bit seconds")
    address = record.address.packed + bytes(12) if record.address is not None else bytes(16)
    return _LAYOUT.pack(
        record.type,
        record.pid,
        record.line,
        record.id,
        record.user,
        record.host,
        0,
        0,
        0,
        seconds,
        micros,
        address,
    )


def decode(data: bytes) -> UtmpRecord:
    """A record from its 384 bytes (texts up to their first NUL)."""
    if len(data) != RECORD_SIZE:
        raise ValueError(f"a utmp record is {RECORD_SIZE} bytes, not {len(data)}")
    kind, pid, line, ident, user, host, _, _, _, seconds, micros, address = _LAYOUT.unpack(data)
    first = address[:4]
    return UtmpRecord(
        type=kind,
        pid=pid,
        line=line.partition(b"\0")[0],
        user=user.partition(b"\0")[0],
        host=host.partition(b"\0")[0],
        time=seconds + micros / 1_000_000,
        address=IPv4Address(first) if any(address) else None,
        id=ident.partition(b"\0")[0],
    )


def read_records(path: str) -> list[UtmpRecord]:
    """Every whole record of a wtmp file (a torn one at the end is left out, as ``last`` does)."""
    with open(path, "rb") as f:
        data = f.read()
    whole = len(data) - len(data) % RECORD_SIZE
    return [decode(data[at : at + RECORD_SIZE]) for at in range(0, whole, RECORD_SIZE)]


def append(path: str, data: bytes, *, lock_timeout: float = LOCK_TIMEOUT) -> None:
    """glibc's ``updwtmp``: ``data`` (one record) appended to the wtmp file ``path`` under its write lock.

    Raises :class:`OSError`: the file is missing (it is not created), not a regular file (a FIFO would
    block), not writable, its lock not had within ``lock_timeout`` seconds (``ETIMEDOUT``), or the record
    not written whole (the file is cut back to its previous size: no torn record is left)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", path)
        _lock(fd, path, lock_timeout)
        size = os.fstat(fd).st_size
        if size % RECORD_SIZE:  # a record torn by a crash would shift every later one: glibc cuts it off
            size -= size % RECORD_SIZE
            os.ftruncate(fd, size)
        try:
            written = os.write(fd, data)
        except OSError:
            os.ftruncate(fd, size)
            raise
        if written != len(data):
            os.ftruncate(fd, size)
            raise OSError(errno.ENOSPC, f"only {written} of {len(data)} bytes written", path)
    finally:
        os.close(fd)  # releases the lock


def _lock(fd: int, path: str, timeout: float) -> None:
    """The whole file's ``fcntl`` write lock, the one glibc's utmp functions take (``lockf`` is ``fcntl``
    F_SETLK on Linux), tried every 10 ms until ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except OSError as exc:
            if exc.errno not in (errno.EACCES, errno.EAGAIN):
                raise
        if time.monotonic() >= deadline:
            raise OSError(errno.ETIMEDOUT, f"its lock is held by another process for {timeout:g} s", path)
        time.sleep(0.01)


class WtmpWriter:
    """Records appended to wtmp files in order, on one thread started at the first record.

    :meth:`write` never blocks: when :data:`QUEUE_LIMIT` records wait already, the record is dropped and
    counted.  A failure (file missing, lock timeout, disk full) is one warning on ``log`` naming the file
    and the reason; later failures are counted, not logged, until a record is written again, when one
    line says how many were lost."""

    def __init__(self, log: logging.Logger, *, lock_timeout: float = LOCK_TIMEOUT) -> None:
        self.log = log
        self.lock_timeout = lock_timeout
        self._queue: queue.Queue[tuple[str, UtmpRecord] | None] = queue.Queue(QUEUE_LIMIT)
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._count_lock = threading.Lock()  # lost is counted on the caller's thread (queue full) and on ours
        self.written = 0
        self.lost = 0
        """Records dropped (queue full) or not written, since the last one written."""
        self.failing = False

    def write(self, path: str, record: UtmpRecord) -> None:
        """Queue ``record`` for the wtmp file ``path``."""
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="wtmp", daemon=True)
                self._thread.start()
        try:
            self._queue.put_nowait((path, record))
        except queue.Full:
            self._lost(path, f"{QUEUE_LIMIT} records wait already")

    def close(self, timeout: float = LOCK_TIMEOUT + 2.0) -> None:
        """Write what is queued (bounded by ``timeout`` seconds), then stop the thread."""
        thread = self._thread
        if thread is None:
            return
        deadline = time.monotonic() + timeout
        try:
            self._queue.put(None, timeout=timeout)
        except queue.Full:
            return
        thread.join(max(0.0, deadline - time.monotonic()))
        if not thread.is_alive():
            with self._start_lock:
                self._thread = None

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            path, record = item
            try:
                append(path, encode(record), lock_timeout=self.lock_timeout)
            except (OSError, ValueError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
                self._lost(path, reason)
                continue
            with self._count_lock:
                self.written += 1
                lost, self.lost = self.lost, 0
                failing, self.failing = self.failing, False
            if failing or lost:
                self.log.warning("MGR: wtmp: %s written again; %d record(s) were lost", path, lost)

    def _lost(self, path: str, reason: str) -> None:
        with self._count_lock:
            self.lost += 1
            first, self.failing = not self.failing, True
        if first:
            self.log.warning("MGR: wtmp: cannot write to %s (%s): records are lost until it can", path, reason)
