"""The cores stay sans-IO: no module of pypptp/ctrl/, pypptp/gre/ or pypptp/ppp/ imports anything outside them.

The three cores take bytes and a time (``now``, a float their callers read from
a clock) and give back bytes, events and the texts of log lines; everything that
touches the operating system (sockets, files, clocks, threads, the event loop,
logging) lives above them, in aio/, host/, conf/, daemon/ and client/.  This test
reads every core module's source (its AST: nothing is imported) and fails with
each offending line.  The rule, precisely:

* ``pypptp.ctrl``, ``pypptp.gre`` and ``pypptp.ppp`` (and their modules) may be
  imported, absolutely or relatively; any other part of pypptp may not (not even
  for type checking only: a core's types do not name the layers above it), nor
  the top package itself;
* of the standard library, the modules of :data:`PURE_STDLIB` only: computation
  with no I/O, no clock, no threads, no event loop; ``secrets`` gives randomness.
  So ``logging``, ``asyncio``, ``socket``, ``select``, ``threading``, ``time``,
  ``pathlib``, ``io``, ``subprocess``, ``signal``, ``sys`` and ``importlib`` are out;
* ``os`` for ``os.urandom`` only (the default of the injectable ``random_bytes``
  parameters; imported as ``os`` or ``from os import urandom``): any other use of
  the module, ``os.open`` or ``getattr(os, ...)`` alike, fails;
* of other packages, ``cryptography`` (RC4, DES, 3DES for MPPE and MS-CHAP) and ``arc4`` (RC4
  contexts that live for one packet, cheaper to create: stateless MPPE and key changes) only: both
  are pure computation on bytes, no I/O, no state beyond the cipher's;
* the builtins that do I/O or import by name (:data:`IO_BUILTINS`: ``open``,
  ``print``, ``input``, ``breakpoint``, ``exec``, ``eval``, ``__import__``) are not called.

To allow a standard module, add it to :data:`PURE_STDLIB` with a reason that fits the rule.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "pypptp"
CORES = ("ctrl", "gre", "ppp")
PURE_STDLIB = frozenset(
    {
        "__future__",
        "abc",
        "binascii",
        "bisect",
        "collections",
        "copy",
        "dataclasses",
        "enum",
        "functools",
        "hashlib",
        "heapq",
        "hmac",
        "ipaddress",
        "itertools",
        "math",
        "operator",
        "re",
        "secrets",
        "string",
        "struct",
        "types",
        "typing",
        "unicodedata",
        "zlib",
    }
)
"""Standard modules the cores may import (with their submodules, e.g. ``collections.abc``)."""
THIRD_PARTY = frozenset({"arc4", "cryptography"})
OS_ALLOWED = frozenset({"urandom"})
IO_BUILTINS = frozenset({"open", "print", "input", "breakpoint", "exec", "eval", "__import__"})


def core_modules() -> list[tuple[str, Path]]:
    """(dotted name, path) of every module of the cores."""
    found = []
    for core in CORES:
        for path in sorted((PACKAGE / core).rglob("*.py")):
            parts = ["pypptp", *path.relative_to(PACKAGE).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            found.append((".".join(parts), path))
    return found


def _module_problem(name: str) -> str | None:
    """Why importing module ``name`` breaks the rule, or None."""
    parts = name.split(".")
    if parts[0] == "pypptp":
        return None if len(parts) > 1 and parts[1] in CORES else "outside the cores"
    if name == "os":
        return None  # its uses are checked: os.urandom only
    if parts[0] in PURE_STDLIB or parts[0] in THIRD_PARTY:
        return None
    if parts[0] in sys.stdlib_module_names:
        return "a standard module that is not pure computation (see PURE_STDLIB)"
    return "neither a core, the standard library, cryptography nor arc4"


def _absolute(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    """The module a ``from ... import`` names, relative imports resolved."""
    if not node.level:
        return node.module or ""
    parts = module.split(".")
    if not is_package:
        parts.pop()
    if node.level > 1:
        parts = parts[: len(parts) - (node.level - 1)]
    return ".".join([*parts, node.module] if node.module else parts)


def violations(source: str, module: str, where: str, *, is_package: bool = False) -> list[str]:
    """Each line of ``source`` (the text of ``module``, shown as ``where``) that breaks the rule."""
    tree = ast.parse(source)
    found: list[tuple[int, str]] = []
    os_names: set[str] = set()

    def report(node: ast.stmt | ast.expr, text: str) -> None:
        found.append((node.lineno, text))

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                problem = _module_problem(alias.name)
                if problem:
                    report(node, f"import {alias.name}: {problem}")
                elif alias.name == "os":
                    os_names.add(alias.asname or "os")
        elif isinstance(node, ast.ImportFrom):
            target = _absolute(node, module, is_package)
            names = [alias.name for alias in node.names]
            if target == "os":
                for name in names:
                    if name not in OS_ALLOWED:
                        report(node, f"from os import {name}: os is allowed for os.urandom only")
            elif target == "pypptp":  # from pypptp import ppp, daemon, __version__...
                for name in names:
                    if name not in CORES:
                        report(node, f"from pypptp import {name}: outside the cores")
            else:
                problem = _module_problem(target)
                if problem:
                    report(node, f"from {target} import {', '.join(names)}: {problem}")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in IO_BUILTINS:
            report(node, f"{node.func.id}(): a builtin that does I/O or imports")

    allowed_uses = {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id in os_names
        and node.attr in OS_ALLOWED
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id in os_names and id(node) not in allowed_uses:
            report(node, f"uses {node.id} other than {node.id}.urandom: os is allowed for os.urandom only")
    return [f"{where}:{line}: {text}" for line, text in sorted(set(found))]


MODULES = core_modules()


def test_every_core_module_is_scanned() -> None:
    names = {name for name, _ in MODULES}
    assert {"pypptp.ctrl", "pypptp.gre", "pypptp.ppp", "pypptp.ppp.link", "pypptp.ppp.logtext"} <= names
    assert {"pypptp.ppp.secrets", "pypptp.ppp.words", "pypptp.gre.codec", "pypptp.ctrl.connection"} <= names
    assert all(not name.startswith(("pypptp.aio", "pypptp.daemon", "pypptp.conf")) for name in names)


@pytest.mark.parametrize(("module", "path"), MODULES, ids=[name for name, _ in MODULES])
def test_a_core_module_imports_nothing_outside_the_cores(module: str, path: Path) -> None:
    where = str(path.relative_to(PACKAGE.parent))
    problems = violations(path.read_text(encoding="utf-8"), module, where, is_package=path.name == "__init__.py")
    assert not problems, "the sans-IO cores import only the cores (see tests/test_layers.py):\n" + "\n".join(problems)


# -- the scan itself: it must see what it is there to catch ---------------------------------------


@pytest.mark.parametrize(
    ("source", "caught"),
    [
        ("from pypptp.daemon import logs as ppplog\n", "from pypptp.daemon import logs: outside the cores"),
        ("from ..daemon import logs\n", "from pypptp.daemon import logs: outside the cores"),
        ("from .. import conf\n", "from pypptp import conf: outside the cores"),
        ("from pypptp import __version__\n", "from pypptp import __version__: outside the cores"),
        ("import pypptp.aio.session\n", "import pypptp.aio.session: outside the cores"),
        ("import pypptp\n", "import pypptp: outside the cores"),
        ("import logging\n", "import logging: a standard module that is not pure"),
        ("def f():\n    import asyncio\n", "2: import asyncio: a standard module"),
        ("import typing\nif typing.TYPE_CHECKING:\n    import socket\n", "3: import socket"),
        ("from time import monotonic\n", "from time import monotonic: a standard module"),
        ("import os.path\n", "import os.path: a standard module"),
        ("import importlib\n", "import importlib: a standard module"),
        ("import pyroute2\n", "import pyroute2: neither a core"),
        ("import os\nfd = os.open('x', 0)\n", "2: uses os other than os.urandom"),
        ("import os as _os\nflag = getattr(_os, 'O_CLOEXEC', 0)\n", "2: uses _os other than _os.urandom"),
        ("from os import open as os_open\n", "from os import open: os is allowed for os.urandom only"),
        ("text = open('/etc/ppp/chap-secrets').read()\n", "open(): a builtin that does I/O"),
        ("print('x')\n", "print(): a builtin"),
        ("m = __import__('logging')\n", "__import__(): a builtin"),
    ],
)
def test_the_scan_catches(source: str, caught: str) -> None:
    problems = violations(source, "pypptp.ppp.example", "example.py")
    assert any(caught in problem for problem in problems), problems


def test_the_scan_allows_what_the_rule_allows() -> None:
    source = (
        "from __future__ import annotations\n"
        "import os\nimport secrets as _secrets\nimport hashlib\nfrom collections.abc import Callable\n"
        "from cryptography.hazmat.primitives.ciphers import Cipher\nfrom arc4 import ARC4\n"
        "from pypptp.ppp import logtext\nfrom pypptp.gre.codec import NO_NUMBER\nfrom . import words\n"
        "from .words import split_words\nfrom pypptp import ctrl\n"
        "def f(random_bytes: Callable[[int], bytes] = os.urandom) -> bytes:\n"
        "    return random_bytes(8) + _secrets.token_bytes(2)\n"
        "class Link:\n    def open(self) -> None:\n        self.lcp.open(0.0)\n"
    )
    assert violations(source, "pypptp.ppp.example", "example.py") == []
    assert violations("from . import link\n", "pypptp.ppp", "__init__.py", is_package=True) == []
    assert violations("from . import link\n", "pypptp.ppp.x", "x.py") == []  # pypptp.ppp.link


def test_the_allowed_standard_modules_are_standard() -> None:
    assert PURE_STDLIB.issubset(sys.stdlib_module_names)
    assert not {"os", "sys", "time", "logging", "asyncio", "socket", "threading", "io", "pathlib"} & PURE_STDLIB


# -- the stack above the cores ------------------------------------------------------------------------

BELOW: dict[str, frozenset[str]] = {
    "aio": frozenset({"ctrl", "gre", "ppp", "aio", "host"}),
    "host": frozenset({"host"}),
    "conf": frozenset({"ctrl", "gre", "ppp", "conf"}),
    "aaa": frozenset({"ctrl", "gre", "ppp", "aio", "host", "conf", "aaa"}),
    "daemon": frozenset({"ctrl", "gre", "ppp", "aio", "host", "conf", "aaa", "daemon"}),
    "client": frozenset({"ctrl", "gre", "ppp", "aio", "host", "client"}),
}
"""Folders are the stack: what each layer above the cores may import of pypptp (the fuzzer, a tool on top,
may import anything).  An import upwards (aio/ importing the daemon, say) is what made ``import
pypptp.aio.server`` circular once."""


def _pypptp_imports(path: Path) -> list[tuple[int, str]]:
    """(line, the part of pypptp it names: ``aio``, ``daemon``...) for each import of a pypptp module."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module is not None and node.level == 0:
            names = [node.module]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "pypptp" and len(parts) > 1:
                found.append((node.lineno, parts[1]))
    return found


@pytest.mark.parametrize("layer", sorted(BELOW))
def test_each_layer_imports_only_what_lies_below_it(layer: str) -> None:
    allowed = BELOW[layer]
    offences = [
        f"{path.relative_to(PACKAGE.parent)}:{line}: imports pypptp.{part}"
        for path in sorted((PACKAGE / layer).rglob("*.py"))
        for line, part in _pypptp_imports(path)
        if part not in allowed
    ]
    assert not offences, "\n".join(offences)
