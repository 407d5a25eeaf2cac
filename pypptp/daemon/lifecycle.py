"""Starting ``pypptpd`` once, and saying whether it started: the locked pidfile and the detach pipe.

**The pidfile** (pptpd's ``/var/run/pptpd.pid``) is locked (``flock``) on a
descriptor the daemon keeps open for its whole life, before anything is bound.
A second ``pypptpd`` with the same pidfile finds it locked and stops with
``another pypptpd is running (pid N, FILE)`` and status 1, touching neither
the file nor the first daemon (which used to lose its pidfile to the second
one's exit, so that ``kill -HUP $(cat /var/run/pptpd.pid)`` failed).  The file
is truncated and written only once locked, and unlinked at exit only by the
daemon that holds the lock.  The lock dies with the process, so a pidfile left
by a daemon killed with SIGKILL does not stop the next start.

**The detach pipe**: without ``-f``, ``pypptpd`` forks twice (the classic
detach) and the first process waits at the read end of a pipe until the
daemon says it listens (exit status 0) or why it could not start (the reason
on stderr, status 1): a start script learns the outcome from the status, as
with ``-f``, instead of a 0 followed by a line in syslog.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import sys

__all__ = ["AlreadyRunning", "DetachPipe", "PidFile"]

LOCK_ATTEMPTS = 10
"""Times the lock is taken again when the file was replaced meanwhile (a daemon exiting unlinks it)."""


class AlreadyRunning(Exception):
    """Another process holds the pidfile's lock."""


class PidFile:
    """The locked pidfile; :meth:`acquire` then :meth:`release` (at exit)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        """Lock the file and write our pid; raise :class:`AlreadyRunning` if another process holds it, OSError
        if it cannot be opened or written."""
        for _ in range(LOCK_ATTEMPTS):
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                other = _read_pid(fd)
                os.close(fd)
                if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                    who = f"pid {other}, " if other else ""
                    raise AlreadyRunning(f"another pypptpd is running ({who}{self.path})") from None
                raise
            if not _same_file(fd, self.path):  # unlinked or replaced by an exiting daemon: lock the new one
                os.close(fd)
                continue
            try:
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
            except OSError:
                os.close(fd)
                raise
            self._fd = fd
            return
        raise OSError(errno.EBUSY, f"{self.path} keeps being replaced")

    def release(self) -> None:
        """Unlink the file (only ours: we hold its lock) and unlock it; in a forked child that inherited the
        descriptor, call :meth:`forget` instead."""
        if self._fd is None:
            return
        if _same_file(self._fd, self.path):
            with contextlib.suppress(OSError):
                os.unlink(self.path)
        os.close(self._fd)
        self._fd = None

    def forget(self) -> None:
        """Close our descriptor without unlinking (a worker process: the lock stays with the supervisor)."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None


def _read_pid(fd: int) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        text = os.pread(fd, 32, 0).decode("ascii").strip()
        return int(text) if text else None
    return None


def _same_file(fd: int, path: str) -> bool:
    try:
        opened, named = os.fstat(fd), os.stat(path, follow_symlinks=False)
    except OSError:
        return False
    return (opened.st_dev, opened.st_ino) == (named.st_dev, named.st_ino)


class DetachPipe:
    """The pipe from the detached daemon to the process that started it (see the module docstring).

    :meth:`detach` forks twice; it returns in the daemon only (the first process waits, then exits with
    the daemon's outcome).  The daemon calls :meth:`ready` or :meth:`failed` once; either closes the pipe,
    and a daemon that dies first closes it too (the starter then says so)."""

    def __init__(self) -> None:
        self._fd: int | None = None

    def detach(self) -> None:
        """Classic double fork: detach from the terminal and the session; stdin, stdout and stderr become
        /dev/null in the daemon."""
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        read_end, write_end = os.pipe()
        if os.fork() > 0:
            os.close(write_end)
            os._exit(_wait_for_daemon(read_end))
        os.close(read_end)
        os.setsid()
        if os.fork() > 0:
            os._exit(0)
        os.chdir("/")
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        os.close(devnull)
        self._fd = write_end

    def ready(self) -> None:
        self._say(b"")

    def failed(self, reason: str) -> None:
        self._say(reason.encode("utf-8", "replace") or b"failed")

    def forget(self) -> None:
        """Close the write end without a word (a worker process, which must not keep the starter waiting)."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None

    def _say(self, message: bytes) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            os.write(self._fd, b"1" + message if message else b"0")
        self.forget()


def _wait_for_daemon(fd: int) -> int:
    """In the starting process: the daemon's word, as an exit status (and the reason on stderr)."""
    data = b""
    while len(data) < 4096:
        try:
            chunk = os.read(fd, 4096)
        except InterruptedError:
            continue
        data += chunk
        if not chunk or data:  # one write (atomic, under PIPE_BUF), or EOF: a worker may hold a copy open
            break
    if data[:1] == b"0":
        return 0
    reason = data[1:].decode("utf-8", "replace") if data else "the daemon exited before it was listening"
    print(f"pypptpd: {reason}", file=sys.stderr)
    return 1
