"""pppd's ``/etc/ppp/ip-up`` and ``/etc/ppp/ip-down``: the same arguments, environment and ordering.

What pppd does (pppd(8) "SCRIPTS"; ``ipcp.c`` ipcp_up, ipcp_down, ipcp_script,
ipcp_script_done; ``main.c`` run_program, update_link_stats, set_ifunit;
``auth.c`` for PEERNAME), and what we do:

* **argv**: ``ip-up interface-name tty-device speed local-IP remote-IP ipparam``,
  argv[0] being the script's path.  Without ``ipparam`` pppd passes a NULL there,
  so the script gets five arguments, not six with an empty one.  pptpd runs
  pppd with ``ipparam <client's IP>`` unless ``noipparam``, and with speed
  ``115200`` unless ``speed`` is set.
* **tty-device**: under pptpd it is the pty that pptpctrl gave pppd,
  ``/dev/pts/N``.  We have no pty, and no device at all: :func:`call_tty` names
  the PPTP call instead, ``pptp/<client IP>/<our Call ID>``.  It has no white
  space (scripts that use ``$*`` unquoted keep their argument positions), is
  unique per call, and its basename (Debian's ip-up sets ``PPP_TTYNAME`` to it)
  is the Call ID that pptpd's own log lines show.  Nothing must open it.
* **environment**: pppd clears it and passes only its own variables; no
  ``PATH`` (Debian's ``/etc/ppp/ip-up`` sets one itself, for that reason):

  ==============================  =====================================================
  ``ORIG_UID``                    real uid of pppd's invoker (``main.c``)
  ``PPPLOGNAME``                  that user's name, always set (``main.c``)
  ``PPPD_PID``                    pppd's pid; ours is the daemon's (see below)
  ``DEVICE``                      the tty device, argv[2]
  ``IFNAME``                      the interface, argv[1]
  ``SPEED``                       argv[3]
  ``IPLOCAL``, ``IPREMOTE``       argv[4], argv[5] (``ipcp.c`` ipcp_up)
  ``PEERNAME``                    the name the peer authenticated with, if it did:
                                  pppd's ``peer_authname``, the name after
                                  ``chapms-strip-domain``, printable, at most 256
                                  characters (:func:`~pypptp.ppp.auth.peer_authname`)
  ``LINKNAME``                    pppd's ``linkname`` option, if given
  ``CALL_FILE``                   pppd's ``call`` option, if given
  ``DNS1``, ``DNS2``              DNS servers the *peer* gave us (``usepeerdns``;
                                  a server's own ``ms-dns`` are not exported)
  ``USEPEERDNS``                  ``1`` when DNS1 or DNS2 is set
  ``WINS1``, ``WINS2``            WINS servers the peer gave us
  ``CONNECT_TIME``                ip-down only: whole seconds since IPCP came up
  ``BYTES_SENT``,                 ip-down only: bytes through the interface (pppd 2.4
  ``BYTES_RCVD``                  wrapped them at 4 GiB; the exact counts are given)
  ==============================  =====================================================

* **running**: only if the path is a regular file with an execute bit; a
  missing script is skipped silently, any other problem is logged as pppd
  logs it (``Can't execute %s: %m``).  The child gets its own session
  (``setsid``), ``/`` as working directory, umask 077, stdin and stdout on
  ``/dev/null``.  We differ from pppd on purpose in two ways: stderr is read
  and logged (pppd throws it away, which hides why a script failed), and a
  script still running after ``timeout`` seconds gets SIGTERM, then SIGKILL
  :data:`KILL_GRACE` seconds later (pppd waits for ever).  The stderr pipe is
  kept open and drained until its last writer closes it, so a daemon that the
  script started in the background can still write to it, as it could to
  pppd's /dev/null.
* **values**: no argument or variable can stop a script from starting: a NUL
  (which ``execve`` cannot pass) becomes ``\\x00``.  A script that exists but
  cannot be started (not executable, no interpreter, a bad value) is logged as
  pppd logs it, and :attr:`ScriptRunner.on_not_started` tells the runner's
  owner: the daemon ends a session whose ip-up could not be started, where
  pppd would carry on without the per-user rules ip-up sets.
* **ordering** (``ipcp.c``): at most one of the two scripts runs at a time.
  ip-up runs when IPCP comes up, unless a script is running; ip-down runs when
  IPCP goes down, only if ip-up was started, and if ip-up is still running it
  waits for it to finish.  :class:`ScriptRunner` is that state machine.
* **PPPD_PID**: scripts sometimes ``kill -HUP $PPPD_PID`` to end their own link.
  With one daemon process for every session, that signal would reach pypptpd
  (which re-reads its configuration on SIGHUP) and end nothing.

:func:`run_script` never raises (cancellation aside: it stops the script and
propagates).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import errno
import functools
import logging
import os
import pwd
import signal
import stat
import subprocess
from collections.abc import Callable

from pypptp.ppp import logtext

__all__ = [
    "IP_DOWN",
    "IP_UP",
    "KILL_GRACE",
    "ScriptInfo",
    "ScriptRunner",
    "call_tty",
    "run_script",
    "script_argv",
    "script_env",
]

IP_UP = "/etc/ppp/ip-up"
IP_DOWN = "/etc/ppp/ip-down"
KILL_GRACE = 2.0
"""Seconds between SIGTERM and SIGKILL for a script past its time-out."""
STDERR_GRACE = 0.2
"""Seconds to wait, once a script has exited, for the rest of its stderr."""
MAX_STDERR_LINES = 20
MAX_STDERR_BYTES = 16384
MAX_LINE_CHARS = 300

Log = logging.Logger | logging.LoggerAdapter[logging.Logger]


@dataclasses.dataclass(frozen=True)
class ScriptInfo:
    """What ip-up and ip-down are told about one link: see the module docstring for where each goes."""

    ifname: str
    tty: str
    """argv[2] and ``DEVICE``: :func:`call_tty` (there is no pty)."""
    speed: int | str
    local: str
    remote: str
    ipparam: str = ""
    """argv[6]; empty (pptpd's ``noipparam``) leaves it out."""
    peer_name: str = ""
    unit: int = 0
    """The N of pppN; for the caller's bookkeeping, pppd exports no variable for it."""
    pid: int = dataclasses.field(default_factory=os.getpid)
    dns: tuple[str, ...] = ()
    """DNS servers the peer supplied to us (client side, ``usepeerdns``); () on a server."""
    connect_time: float = 0.0
    """Seconds since IPCP came up; ip-down only."""
    bytes_sent: int = 0
    bytes_received: int = 0
    wins: tuple[str, ...] = ()
    linkname: str = ""
    call_file: str = ""


def call_tty(peer_ip: str, call_id: int) -> str:
    """Our stand-in for pppd's tty device: ``pptp/<client IP>/<our Call ID>`` (see the module docstring)."""
    return f"pptp/{peer_ip}/{call_id}"


def script_argv(path: str, info: ScriptInfo) -> list[str]:
    """pppd's argv: path, interface, tty, speed, local IP, remote IP, then ipparam if there is one."""
    argv = [path, info.ifname, info.tty, str(info.speed), str(info.local), str(info.remote)]
    if info.ipparam:
        argv.append(info.ipparam)
    return [_passable(value) for value in argv]


def _passable(value: str) -> str:
    """``value`` as ``execve`` can pass it: a NUL as ``\\x00``, a lone surrogate that the file system
    encoding cannot write as ``\\uXXXX`` (those from undecodable bytes stay: they become the bytes)."""
    value = value.replace("\0", "\\x00")
    if any(0xD800 <= ord(c) <= 0xDFFF and not 0xDC80 <= ord(c) <= 0xDCFF for c in value):
        value = "".join(
            f"\\u{ord(c):04x}" if 0xD800 <= ord(c) <= 0xDFFF and not 0xDC80 <= ord(c) <= 0xDCFF else c for c in value
        )
    return value


@functools.lru_cache(maxsize=1)
def _login_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return "(unknown)"  # pppd's words when getpwuid() finds nobody


def script_env(info: ScriptInfo, *, down: bool) -> dict[str, str]:
    """The whole environment pppd gives ip-up (``down=False``) or ip-down (``down=True``); nothing else."""
    uid = os.getuid()
    env = {
        "ORIG_UID": str(uid),
        "PPPLOGNAME": _login_name(uid),
        "PPPD_PID": str(info.pid),
        "IFNAME": info.ifname,
        "SPEED": str(info.speed),
        "IPLOCAL": str(info.local),
    }
    if info.tty:
        env["DEVICE"] = info.tty
    if info.remote:
        env["IPREMOTE"] = str(info.remote)
    if info.peer_name:
        env["PEERNAME"] = info.peer_name
    if info.linkname:
        env["LINKNAME"] = info.linkname
    if info.call_file:
        env["CALL_FILE"] = info.call_file
    for name, values in (("DNS", info.dns), ("WINS", info.wins)):
        for index, value in enumerate(values[:2], start=1):
            env[f"{name}{index}"] = str(value)
    if info.dns:
        env["USEPEERDNS"] = "1"
    if down:
        env["CONNECT_TIME"] = str(int(max(0.0, info.connect_time)))
        env["BYTES_SENT"] = str(info.bytes_sent)
        env["BYTES_RCVD"] = str(info.bytes_received)
    return {name: _passable(value) for name, value in env.items()}


class _StderrReader:
    """Reads a script's stderr pipe until its last writer closes it, keeping the first lines only."""

    def __init__(self, fd: int, loop: asyncio.AbstractEventLoop) -> None:
        self.fd = fd
        self.loop = loop
        self.data = bytearray()
        self.dropped = 0
        self.eof = loop.create_future()
        os.set_blocking(fd, False)
        loop.add_reader(fd, self._readable)

    def _readable(self) -> None:
        try:
            chunk = os.read(self.fd, 65536)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if not chunk:
            self.close()
            return
        room = MAX_STDERR_BYTES - len(self.data)
        self.data += chunk[:room]
        self.dropped += max(0, len(chunk) - room)

    def close(self) -> None:
        if self.fd >= 0:
            with contextlib.suppress(Exception):
                self.loop.remove_reader(self.fd)
            os.close(self.fd)
            self.fd = -1
        if not self.eof.done():
            self.eof.set_result(None)

    def lines(self) -> list[str]:
        text = self.data.decode("utf-8", "backslashreplace")
        lines = [line.rstrip()[:MAX_LINE_CHARS] for line in text.splitlines() if line.strip()]
        if len(lines) > MAX_STDERR_LINES or self.dropped:
            lines = [*lines[:MAX_STDERR_LINES], f"(more output not shown: {self.dropped} bytes and more lines)"]
        return lines


async def run_script(path: str, info: ScriptInfo, *, down: bool, timeout: float = 30.0, log: Log) -> int | None:
    """Run ip-up (``down=False``) or ip-down as pppd would; wait for it, at most ``timeout`` seconds.

    Returns the exit status (negative: killed by that signal), or None when the
    script does not exist, could not be started or was killed for taking too
    long.  Everything worth knowing is logged to ``log``; never raises.
    """
    return (await _attempt(path, info, down=down, timeout=timeout, log=log)).status


@dataclasses.dataclass(frozen=True)
class _Outcome:
    status: int | None = None
    not_started: str = ""
    """Why a script that exists could not be started; empty when it ran or does not exist."""


async def _attempt(path: str, info: ScriptInfo, *, down: bool, timeout: float, log: Log) -> _Outcome:
    """:func:`run_script`, telling apart a script that could not be started."""
    try:
        return await _run(path, info, down=down, timeout=timeout, log=log)
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("running %s failed", path)
        return _Outcome()


async def _run(path: str, info: ScriptInfo, *, down: bool, timeout: float, log: Log) -> _Outcome:
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return _Outcome()  # pppd: not an error if the script does not exist
    except OSError as exc:
        reason = exc.strerror or str(exc)
        log.warning("%s", logtext.cannot_execute(path, reason))
        return _Outcome(not_started=reason)
    if not stat.S_ISREG(mode) or not mode & 0o111:
        # pppd presets errno to EINVAL for this case, hence its "Invalid argument"
        log.warning("%s", logtext.cannot_execute(path, os.strerror(errno.EINVAL)))
        return _Outcome(not_started=os.strerror(errno.EINVAL))

    loop = asyncio.get_running_loop()
    read_fd, write_fd = os.pipe()
    try:
        process = await asyncio.create_subprocess_exec(
            *script_argv(path, info),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=write_fd,
            env=script_env(info, down=down),
            cwd="/",
            start_new_session=True,
            umask=0o077,
        )
    except (OSError, ValueError, UnicodeError) as exc:  # e.g. ENOEXEC: no #! line
        os.close(read_fd)
        reason = (exc.strerror if isinstance(exc, OSError) else None) or str(exc)
        log.warning("%s", logtext.cannot_execute(path, reason))
        return _Outcome(not_started=reason)
    except BaseException:
        os.close(read_fd)
        raise
    finally:
        os.close(write_fd)
    stderr = _StderrReader(read_fd, loop)
    log.debug("Script %s started (pid %d)", path, process.pid)

    try:
        status = await _wait_or_kill(process, path, timeout, log)
    except BaseException:  # cancelled: stop the script, as pppd's childwait_end() would
        _signal(process, signal.SIGTERM)
        stderr.close()
        raise

    # The script is gone; a child it left in the background may hold the pipe for ever.
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.shield(stderr.eof), STDERR_GRACE)
    lines = stderr.lines()
    stderr.data.clear()
    level = logging.INFO if status == 0 else logging.WARNING
    for line in lines:
        log.log(level, "%s: %s", path, line)
    if status is not None and status < 0:
        log.warning("%s", logtext.child_signalled(path, process.pid, -status))
    elif status is not None:
        log.log(logging.WARNING if status else logging.DEBUG, "%s", logtext.script_finished(path, process.pid, status))
    return _Outcome(status)


async def _wait_or_kill(process: asyncio.subprocess.Process, path: str, timeout: float, log: Log) -> int | None:
    """The exit status, or None after SIGTERM (and SIGKILL :data:`KILL_GRACE` later) past ``timeout``."""
    try:
        return await asyncio.wait_for(process.wait(), timeout)
    except TimeoutError:
        pass
    log.warning("Script %s (pid %d) still running after %g s: killing it", path, process.pid, timeout)
    _signal(process, signal.SIGTERM)
    try:
        await asyncio.wait_for(process.wait(), KILL_GRACE)
    except TimeoutError:
        _signal(process, signal.SIGKILL)
        await process.wait()
    return None


def _signal(process: asyncio.subprocess.Process, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signum)


class ScriptRunner:
    """ip-up then ip-down for one session, never both at once: pppd's ``ipcp_script_state`` machine.

    :meth:`up` when the network comes up, :meth:`down` when it goes; both
    return at once (call them from the event loop) and :meth:`wait` waits
    until nothing runs or is due.  Bounded: one script process at a time, each
    stopped after ``timeout`` (plus :data:`KILL_GRACE`), and no queue, only the
    state wanted last, so a flapping link runs each script at most once per
    change of state.  ip-down runs only after an ip-up; a second :meth:`up`
    while up, or :meth:`down` while down, does nothing.
    """

    def __init__(
        self, ip_up: str = IP_UP, ip_down: str = IP_DOWN, *, log: Log | None = None, timeout: float = 30.0
    ) -> None:
        self.ip_up = ip_up
        self.ip_down = ip_down
        self.log: Log = log if log is not None else logging.getLogger("pppd")
        self.timeout = timeout
        self.history: collections.deque[tuple[str, int | None]] = collections.deque(maxlen=16)
        """The last scripts run: ("up" or "down", exit status)."""
        self.on_not_started: Callable[[str, str], object] | None = None
        """Called with ("up" or "down", the reason) when a script that exists could not be started (it is
        logged too): the daemon ends a session whose ip-up could not run."""
        self._started = False  # pppd's state s_up: ip-up was started and ip-down not yet
        self._want_up = False
        self._up_info: ScriptInfo | None = None
        self._down_info: ScriptInfo | None = None
        self._task: asyncio.Task[_Outcome] | None = None

    @property
    def busy(self) -> bool:
        """A script is running."""
        return self._task is not None

    def up(self, info: ScriptInfo) -> None:
        """IPCP is up: run ip-up, now or when the running script ends."""
        self._want_up, self._up_info = True, info
        self._kick()

    def down(self, info: ScriptInfo) -> None:
        """IPCP is down: run ip-down (with ``info``'s statistics) once ip-up has been run and has finished."""
        self._want_up, self._down_info = False, info
        self._kick()

    async def wait(self) -> None:
        """Until no script runs and none is due.  Cancelling the wait leaves the scripts alone."""
        while self._task is not None:
            await asyncio.wait({self._task})

    def _kick(self) -> None:
        if self._task is not None:
            return  # ipcp_script_done() will look again
        if self._want_up and not self._started and self._up_info is not None:
            self._started = True
            self._start("up", self.ip_up, self._up_info, down=False)
        elif not self._want_up and self._started and self._down_info is not None:
            self._started = False
            self._start("down", self.ip_down, self._down_info, down=True)

    def _start(self, which: str, path: str, info: ScriptInfo, *, down: bool) -> None:
        coroutine = _attempt(path, info, down=down, timeout=self.timeout, log=self.log)
        task = asyncio.get_running_loop().create_task(coroutine, name=f"{which} {info.ifname}")
        self._task = task
        task.add_done_callback(lambda t: self._done(which, t))

    def _done(self, which: str, task: asyncio.Task[_Outcome]) -> None:
        self._task = None
        outcome = _Outcome() if task.cancelled() or task.exception() is not None else task.result()
        self.history.append((which, outcome.status))
        if outcome.not_started and self.on_not_started is not None:
            try:
                self.on_not_started(which, outcome.not_started)
            except Exception:
                self.log.exception("internal error after %s could not be started", which)
        self._kick()
