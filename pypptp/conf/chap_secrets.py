"""Reading ``/etc/ppp/chap-secrets`` (and an ``@/path`` secret's file) safely.

The records and pppd's matching rules are :mod:`pypptp.ppp.secrets`, which
reads no file; this module gives it the files.  Files are read safely: a
symbolic link is followed, as pppd follows it (``/etc/ppp/chap-secrets`` is
often a link into a configuration tree), but what it leads to must be a regular
file, opened without blocking (a FIFO would hang the daemon) and read up to
:data:`MAX_FILE_BYTES`, with a warning when other users may read it (pppd warns
of this too).  An ``@/path`` secret's file is read the same way, warnings included.

A UTF-8 byte order mark at the start (Notepad writes one) would be part of the
first client name to pppd (``\ufeffalice``, who can never log in).  Read
``strict`` (``pypptpd --check``) it is an error; otherwise it is skipped with a
warning, so that a file saved by Notepad on a running server locks nobody out.

:func:`file_stamp` tells the daemon whether the file changed since it was
read: pppd reads chap-secrets at every authentication, the daemon re-reads
it when its stamp changes.
"""

from __future__ import annotations

import dataclasses
import os
import stat

from pypptp.conf.words import drop_bom
from pypptp.ppp.secrets import ChapSecrets, SecretsError, parse_secrets

__all__ = ["CHAP_SECRETS", "MAX_FILE_BYTES", "Stamp", "file_stamp", "read_limited", "read_secrets_file"]

CHAP_SECRETS = "/etc/ppp/chap-secrets"
"""pppd's chap-secrets file (its ``chap-secrets FILE`` option, pppd 2.5, or pypptpd's ``--secrets``, names another)."""
MAX_FILE_BYTES = 4 * 1024 * 1024
_BOM_CONSEQUENCE = "pppd reads it as part of the first name, which then matches no login"

Stamp = tuple[int, int, int, int]
"""A file's (device, inode, size, modification time in ns): another value, another file or a changed one."""


def read_limited(path: str, *, strict: bool = False) -> tuple[str, list[str]]:
    """Read a secrets file safely (see the module docstring); returns its text and warnings.
    Raises :class:`~pypptp.ppp.secrets.SecretsError` (with ``strict``, for a byte order mark too).
    The ``read_file`` of :func:`~pypptp.ppp.secrets.parse_secrets`."""
    warnings: list[str] = []
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise SecretsError(f"{path}: cannot open: {exc.strerror}") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        shown = f"{path} (a link to {os.path.realpath(path)})" if os.path.islink(path) else path
        raise SecretsError(f"{shown}: not a regular file; chap-secrets must be one")
    with os.fdopen(fd, "rb") as f:
        if info.st_size > MAX_FILE_BYTES:
            raise SecretsError(f"{path}: {info.st_size} bytes, more than {MAX_FILE_BYTES}")
        if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            warnings.append(
                f"{path}: has world and/or group access ({stat.filemode(info.st_mode)}); pppd warns of this "
                "too (chmod 600)"
            )
        data = f.read(MAX_FILE_BYTES + 1)
    text, bom = drop_bom(data.decode("utf-8", "surrogateescape"), path, _BOM_CONSEQUENCE, strict)
    if bom is not None:
        if strict:
            raise SecretsError(bom)
        warnings.append(bom)
    return text, warnings


def read_secrets_file(path: str, *, strict: bool = False) -> ChapSecrets:
    """Read and parse ``path`` (for example ``/etc/ppp/chap-secrets``), ``@/path`` secrets included.
    ``strict``: a byte order mark is an error (:func:`read_limited`)."""
    text, warnings = read_limited(path, strict=strict)
    secrets = parse_secrets(text, path, read_file=lambda secret_path: read_limited(secret_path, strict=strict))
    return dataclasses.replace(secrets, warnings=(*warnings, *secrets.warnings))


def file_stamp(path: str) -> Stamp | None:
    """``path``'s :data:`Stamp` (following a symbolic link), or None when it cannot be looked at."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)
