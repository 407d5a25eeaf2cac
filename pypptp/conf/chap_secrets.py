"""Reading ``/etc/ppp/chap-secrets`` (and an ``@/path`` secret's file) safely.

The records and pppd's matching rules are :mod:`pypptp.ppp.secrets`, which
reads no file; this module gives it the files.  Files are read safely:
regular files only, no symbolic links, at most :data:`MAX_FILE_BYTES`, with a
warning when other users may read them (pppd warns of this too).  An
``@/path`` secret's file is read the same way, warnings included.

:func:`file_stamp` tells the daemon whether the file changed since it was
read: pppd reads chap-secrets at every authentication, the daemon re-reads
it when its stamp changes.
"""

from __future__ import annotations

import dataclasses
import os
import stat

from pypptp.ppp.secrets import ChapSecrets, SecretsError, parse_secrets

__all__ = ["CHAP_SECRETS", "MAX_FILE_BYTES", "Stamp", "file_stamp", "read_limited", "read_secrets_file"]

CHAP_SECRETS = "/etc/ppp/chap-secrets"
"""pppd's chap-secrets file (its ``chap-secrets FILE`` option, pppd 2.5, or pypptpd's ``--secrets``, names another)."""
MAX_FILE_BYTES = 4 * 1024 * 1024

Stamp = tuple[int, int, int, int]
"""A file's (device, inode, size, modification time in ns): another value, another file or a changed one."""


def read_limited(path: str) -> tuple[str, list[str]]:
    """Read a secrets file safely (see the module docstring); returns its text and warnings.
    Raises :class:`~pypptp.ppp.secrets.SecretsError`.  The ``read_file`` of
    :func:`~pypptp.ppp.secrets.parse_secrets`."""
    warnings: list[str] = []
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise SecretsError(f"{path}: cannot open: {exc.strerror}") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise SecretsError(f"{path}: not a regular file")
    with os.fdopen(fd, "rb") as f:
        if info.st_size > MAX_FILE_BYTES:
            raise SecretsError(f"{path}: {info.st_size} bytes, more than {MAX_FILE_BYTES}")
        if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            warnings.append(
                f"{path}: has world and/or group access ({stat.filemode(info.st_mode)}); pppd warns of this "
                "too (chmod 600)"
            )
        data = f.read(MAX_FILE_BYTES + 1)
    return data.decode("utf-8", "surrogateescape"), warnings


def read_secrets_file(path: str) -> ChapSecrets:
    """Read and parse ``path`` (for example ``/etc/ppp/chap-secrets``), ``@/path`` secrets included."""
    text, warnings = read_limited(path)
    secrets = parse_secrets(text, path, read_file=read_limited)
    return dataclasses.replace(secrets, warnings=(*warnings, *secrets.warnings))


def file_stamp(path: str) -> Stamp | None:
    """``path``'s :data:`Stamp` (following a symbolic link), or None when it cannot be looked at."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)
