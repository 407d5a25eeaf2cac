"""The daemon's control socket, which ``pypptpctl`` talks to (``--control-socket PATH``).

A Unix stream socket, mode 0600 and root only: besides the file mode, each client's credentials
(``SO_PEERCRED``) are checked, and a uid other than 0 or the daemon's own is refused.  One request a
connection, one line of JSON each way::

    -> {"command": ["show", "sessions"]}
    <- {"ok": true, "sessions": [...]}

    -> {"command": ["frobnicate"]}
    <- {"ok": false, "error": "unknown command: frobnicate ...", "usage": true}

Everything a client drives is bounded: a request line of at most :data:`MAX_REQUEST` bytes, read
within :data:`REQUEST_TIMEOUT` seconds, at most :data:`MAX_CLIENTS` clients at once (more are told
so and closed).  A bad request gets an error answer and is logged at debug level; it never ends the
daemon.

The socket file: one left by a daemon that was killed (nobody accepts on it) is replaced; one a live
daemon listens on stops this one from starting (the pidfile lock comes first, so a second daemon with
the same pidfile never gets here); it is removed at exit if it is still ours.

The commands themselves (:func:`execute`) answer from one process's
:class:`~pypptp.daemon.manager.Daemon`; with ``--workers`` the supervisor asks every worker and
merges the answers (:func:`merge`).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
import os
import socket
import stat
import struct
from collections.abc import Awaitable, Callable
from ipaddress import IPv4Address
from typing import TYPE_CHECKING, Any

from pypptp.daemon.stats import session_row, snapshot

if TYPE_CHECKING:
    from pypptp.daemon.manager import Daemon, DaemonSession

__all__ = [
    "CONTROL_SOCKET",
    "MAX_CLIENTS",
    "MAX_REQUEST",
    "REQUEST_TIMEOUT",
    "ControlError",
    "ControlSocket",
    "execute",
    "merge",
    "request",
]

log = logging.getLogger("pypptpd")

CONTROL_SOCKET = "/run/pypptpd.sock"
MAX_REQUEST = 4096
"""Bytes of one request line (a command is a few words)."""
MAX_RESPONSE = 64 * 1024 * 1024
"""Bytes of one answer a client reads (a worker's answer to the supervisor, ``pypptpctl``'s)."""
REQUEST_TIMEOUT = 5.0
MAX_CLIENTS = 8

Handler = Callable[[list[str]], Awaitable[dict[str, Any]]]
USAGE = "commands: show sessions | show stat | terminate if IFNAME|username NAME|ip ADDRESS|all | reload"


class ControlError(Exception):
    """The socket cannot be set up (another daemon listens on it, or the path is not a socket)."""


class ControlSocket:
    """The listening socket and its clients, each answered by ``handler(command)``."""

    def __init__(self, path: str, handler: Handler) -> None:
        self.path = path
        self.handler = handler
        self.clients = 0
        self._server: asyncio.AbstractServer | None = None
        self._inode: int | None = None

    async def start(self) -> None:
        _clear_stale(self.path)
        old = os.umask(0o177)  # 0600 from the start, never briefly wider
        try:
            self._server = await asyncio.start_unix_server(self._client, self.path, limit=MAX_REQUEST)
        finally:
            os.umask(old)
        os.chmod(self.path, 0o600)
        self._inode = os.stat(self.path).st_ino

    def close(self) -> None:
        """Stop listening and remove the file, unless another daemon's has replaced it since."""
        if self._server is not None:
            self._server.close()
            self._server = None
        with contextlib.suppress(OSError):
            if self._inode is not None and os.stat(self.path).st_ino == self._inode:
                os.unlink(self.path)
        self._inode = None

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.clients += 1
        try:
            if self.clients > MAX_CLIENTS:
                answer: dict[str, Any] = {"ok": False, "error": f"busy: {MAX_CLIENTS} control clients already"}
            elif not _allowed(writer):
                answer = {"ok": False, "error": "permission denied: root only"}
            else:
                answer = await self._answer(reader)
            writer.write(json.dumps(answer).encode() + b"\n")
            async with asyncio.timeout(REQUEST_TIMEOUT):
                await writer.drain()
        except (OSError, TimeoutError):
            pass
        finally:
            self.clients -= 1
            writer.close()

    async def _answer(self, reader: asyncio.StreamReader) -> dict[str, Any]:
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT):
                line = await reader.readline()
            command = _parse(line)
        except TimeoutError:
            return _error(f"no request within {REQUEST_TIMEOUT:g} s")
        except (ValueError, asyncio.LimitOverrunError):
            return _error(f"a request is one line of JSON, at most {MAX_REQUEST} bytes", usage=True)
        except _BadRequest as exc:
            return _error(str(exc), usage=True)
        try:
            return await self.handler(command)
        except Exception as exc:  # a command that fails is an answer, never the daemon's end
            log.exception("MGR: control command %s failed", " ".join(command))
            return _error(f"{' '.join(command)}: {exc}")


class _BadRequest(Exception):
    pass


def _parse(line: bytes) -> list[str]:
    if not line.endswith(b"\n"):
        raise _BadRequest("a request is one line of JSON ending with a newline")
    try:
        request = json.loads(line)
    except ValueError:
        raise _BadRequest("a request is one line of JSON") from None
    command = request.get("command") if isinstance(request, dict) else None
    if not isinstance(command, list) or not all(isinstance(word, str) for word in command) or len(command) > 8:
        raise _BadRequest('a request is {"command": [words]}')
    return command


def _error(text: str, *, usage: bool = False) -> dict[str, Any]:
    log.debug("MGR: control: %s", text)
    return {"ok": False, "error": text, "usage": usage}


def _allowed(writer: asyncio.StreamWriter) -> bool:
    """root, or the daemon's own uid (SO_PEERCRED: what the kernel says, not what the client claims)."""
    sock = writer.get_extra_info("socket")
    if sock is None:
        return False
    try:
        _pid, uid, _gid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
    except OSError:
        return False
    return uid in (0, os.geteuid())


def _clear_stale(path: str) -> None:
    """A socket file nobody listens on (its daemon was killed) is removed; a live one, or a file that is
    not a socket, is an error."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise ControlError(f"control socket {path}: exists and is not a socket")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        try:
            probe.connect(path)
        except OSError as exc:
            if exc.errno not in (errno.ECONNREFUSED, errno.ENOENT):
                raise ControlError(f"control socket {path}: {exc.strerror or exc}") from None
        else:
            raise ControlError(f"control socket {path}: another daemon listens on it")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def request(path: str, command: list[str], timeout: float = 10.0) -> dict[str, Any]:
    """One command to the daemon at ``path`` and its answer (a client: ``pypptpctl``, the supervisor).
    Raises OSError when the daemon cannot be reached, ValueError on an answer that is not JSON."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(path)
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # refused at once: its answer is there
            sock.sendall(json.dumps({"command": command}).encode() + b"\n")
        chunks: list[bytes] = []
        size = 0
        while size <= MAX_RESPONSE:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if chunk.endswith(b"\n"):
                break
    answer = json.loads(b"".join(chunks))
    if not isinstance(answer, dict):
        raise ValueError("the answer is not a JSON object")
    return answer


# -- the commands ---------------------------------------------------------------------------------


async def execute(
    daemon: Daemon, command: list[str], reload: Callable[[], str], worker: int | None = None
) -> dict[str, Any]:
    """One process's answer to ``command``."""
    now = asyncio.get_running_loop().time()
    match command:
        case ["show", "sessions"]:
            return {"ok": True, "sessions": snapshot(daemon, now, worker)["sessions"]}
        case ["show", "stat"]:
            return {"ok": True, "stat": snapshot(daemon, now, worker)["stat"]}
        case ["snapshot"]:
            return {"ok": True, **snapshot(daemon, now, worker)}
        case ["terminate", *what]:
            chosen = _select(daemon, what)
            if isinstance(chosen, str):
                return _error(chosen, usage=True)
            rows = [session_row(session, now, worker) for session in chosen]  # as they were, before they end
            daemon.terminate(chosen)
            return {"ok": True, "terminated": rows}
        case ["reload"]:
            return {"ok": True, "reload": [reload()]}
    return _error(f"unknown command: {' '.join(command)[:80]!r}; {USAGE}", usage=True)


def _select(daemon: Daemon, what: list[str]) -> list[DaemonSession] | str:
    sessions = list(daemon.sessions.values())
    match what:
        case ["all"]:
            return sessions
        case ["if", name]:
            return [s for s in sessions if s.unit >= 0 and f"ppp{s.unit}" == name]
        case ["username", name]:
            return [s for s in sessions if s.user == name]
        case ["ip", text]:
            try:
                address = IPv4Address(text)
            except ValueError:
                return f"not an IPv4 address: {text[:40]!r}"
            return [
                s
                for s in sessions
                if (s.addresses is not None and s.addresses[1] == address) or s.connection.peer_ip == str(address)
            ]
    return "terminate if IFNAME | username NAME | ip ADDRESS | all"


def merge(answers: list[dict[str, Any]]) -> dict[str, Any]:
    """The workers' answers to one command, as one: session lists joined, counters added, the first
    error if every worker failed."""
    good = [answer for answer in answers if answer.get("ok")]
    if not good:
        return answers[0] if answers else _error("no worker answered")
    merged: dict[str, Any] = {"ok": True}
    for answer in good:
        for key, value in answer.items():
            if key == "ok":
                continue
            if key == "stat":
                merged["stat"] = _add(merged.get("stat"), value)
                continue
            merged.setdefault(key, [])
            merged[key] += value
    if "stat" in merged:
        merged["stat"]["workers"] = len(good)
        merged["stat"]["uptime"] = max(answer["stat"]["uptime"] for answer in good)
    return merged


def _add(total: Any, value: Any) -> Any:
    if total is None:
        return value
    if isinstance(value, dict):
        return {key: _add(total.get(key), value.get(key, 0)) for key in {*total, *value}}
    return total + value
