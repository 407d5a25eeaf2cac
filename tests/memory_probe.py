"""``pypptpd`` (its real entry point, :func:`pypptp.daemon.cli.main`) with the cyclic garbage collector off and
a watch on every session: what of a session survives its end, and what a collection would have to free.

``python tests/memory_probe.py RESULTS_FILE PYPPTPD_ARGS...``.  A daemon with ``gc.disable()`` frees only what
reference counting frees; a session kept in a reference cycle stays until a full collection, which a daemon
under load runs rarely, so its memory does not come back when the session closes.  For each session, once it
has ended (the manager's one path for that, ``_session_down``) and the loop has turned for
:data:`SETTLE` seconds, one JSON line goes to ``RESULTS_FILE``:

* ``alive``: which of the session's objects (the manager's ``DaemonSession``, its ``PppSession``, ``PppLink``,
  ``GreCall``, log adapter, script runner) are still reachable, through weak references, without any
  collection;
* ``garbage``: the pypptp objects a collection then finds unreachable (``gc.DEBUG_SAVEALL``), by type: what
  was held only by cycles.
"""

from __future__ import annotations

import asyncio
import collections
import gc
import json
import sys
import types
import weakref
from typing import Any

from pypptp.daemon import cli, manager

__all__ = ["SETTLE", "main"]

SETTLE = 1.0
"""Seconds after a session's end before it is looked at (its CDN, StopCCRQ and last lines are out by then)."""


def _kind(obj: object) -> str | None:
    """A pypptp object's type name, or that of the pypptp object a method or cell holds, or a pypptp function's."""
    target: object = obj
    if type(obj) in weakref.ProxyTypes:  # (a dead proxy raises on any look)
        return None
    if isinstance(obj, types.MethodType):
        target = obj.__self__
    elif isinstance(obj, types.CellType):
        try:
            target = obj.cell_contents
        except ValueError:  # empty
            return None
    elif isinstance(obj, types.FunctionType):
        return f"function {obj.__qualname__}" if (obj.__module__ or "").startswith("pypptp") else None
    if not (type(target).__module__ or "").startswith("pypptp"):
        return None
    prefix = "" if target is obj else f"{type(obj).__name__} of "
    return prefix + type(target).__qualname__


def main(argv: list[str]) -> int:
    results = argv[0]
    watched: dict[int, dict[str, weakref.ref[Any]]] = {}
    start, down = manager.Daemon._start_session, manager.Daemon._session_down

    def start_session(self: manager.Daemon, connection: Any, call: Any) -> None:
        start(self, connection, call)
        session = self.sessions[(id(connection), call.call_id)]
        parts = {
            "DaemonSession": session,
            "PppSession": session.ppp,
            "PppLink": session.ppp.link,
            "GreCall": session.gre,
            "SessionLog": session.log,
            "ScriptRunner": session.scripts,
        }
        watched[call.call_id] = {name: weakref.ref(obj) for name, obj in parts.items()}

    def session_down(self: manager.Daemon, ppp: Any, reason: str) -> None:
        session = self._find(ppp)
        down(self, ppp, reason)
        if session is not None:
            call_id = session.call.call_id
            asyncio.get_running_loop().call_later(SETTLE, look, call_id)

    def look(call_id: int) -> None:
        refs = watched.pop(call_id, {})
        alive = sorted(name for name, ref in refs.items() if ref() is not None)
        gc.set_debug(gc.DEBUG_SAVEALL)
        found = gc.collect()
        kinds = collections.Counter(kind for kind in map(_kind, gc.garbage) if kind is not None)
        other = collections.Counter(type(obj).__qualname__ for obj in gc.garbage if type(obj) not in weakref.ProxyTypes)
        gc.garbage.clear()
        gc.set_debug(0)
        gc.collect()  # (what DEBUG_SAVEALL kept)
        line = {
            "call_id": call_id,
            "alive": alive,
            "collected": found,
            "garbage": dict(kinds.most_common()),
            "other": dict(other.most_common(12)),
        }
        with open(results, "a", encoding="utf-8") as f:
            f.write(json.dumps(line) + "\n")

    manager.Daemon._start_session = start_session  # type: ignore[method-assign]
    manager.Daemon._session_down = session_down  # type: ignore[method-assign]
    gc.disable()
    return cli.main(argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
