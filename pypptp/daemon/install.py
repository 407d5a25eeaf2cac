"""``pypptpd-install``: the files that make pypptpd a system service, put where the system reads them.

They ship inside the package (``pypptp/daemon/data``), so that a ``pip
install`` has them too:

========================================  ===========================================================
``/etc/systemd/system/pypptpd.service``   the systemd unit (``Type=notify``, ``ExecReload`` sends
                                          SIGHUP, hardening, the capabilities the daemon needs); its
                                          ``ExecStart`` names the ``pypptpd`` installed beside this
                                          command
``/etc/logrotate.d/pypptpd``              rotates ``/var/log/ppp.log`` and ``/var/log/pypptpd.log``,
                                          then SIGHUP: the daemon reopens them
``/etc/pptpd.conf``                       Debian's default, in our words (``option
                                          /etc/ppp/pptpd-options``, addresses commented out)
``/etc/ppp/pptpd-options``                Debian's default: MS-CHAPv2 and MPPE-128 required,
                                          proxyarp, no other compression
========================================  ===========================================================

An existing file is never overwritten (the admin's configuration, or a unit
they edited): it is kept, and said so.  ``--root DIR`` installs under DIR
instead of ``/`` (for packaging, and for the tests).  It prints what it did
and what to run next (``systemctl daemon-reload``, ``enable --now``); it
starts nothing itself.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from importlib import resources
from pathlib import Path

__all__ = ["FILES", "install", "main"]

FILES = (
    ("pypptpd.service", "etc/systemd/system/pypptpd.service", 0o644),
    ("logrotate", "etc/logrotate.d/pypptpd", 0o644),
    ("pptpd.conf", "etc/pptpd.conf", 0o644),
    ("pptpd-options", "etc/ppp/pptpd-options", 0o644),
)
"""(name in the package's data, path under the root, mode)."""
PLACEHOLDER = "@PYPPTPD@"


def data(name: str) -> str:
    """A shipped file's text."""
    return resources.files("pypptp.daemon").joinpath("data", name).read_text(encoding="utf-8")


def pypptpd_path() -> str:
    """The ``pypptpd`` to start: the one beside this command (the same installation, a venv included),
    else the one on PATH, else /usr/local/bin/pypptpd (pip's place for a system-wide install)."""
    here = Path(sys.argv[0]).resolve().parent / "pypptpd" if sys.argv and sys.argv[0] else None
    if here is not None and here.is_file() and os.access(here, os.X_OK):
        return str(here)
    beside_python = Path(sys.executable).parent / "pypptpd"
    if beside_python.is_file():
        return str(beside_python)
    return shutil.which("pypptpd") or "/usr/local/bin/pypptpd"


def install(root: Path, executable: str) -> list[str]:
    """Install every file of :data:`FILES` under ``root`` that is not there yet; a line per file."""
    lines = []
    for name, relative, mode in FILES:
        target = root / relative
        if target.exists() or target.is_symlink():
            lines.append(f"kept {target} (it exists; the shipped version is not installed)")
            continue
        text = data(name).replace(PLACEHOLDER, executable)
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "x", encoding="utf-8") as f:  # "x": never through a file that appeared meanwhile
            f.write(text)
        os.chmod(target, mode)
        lines.append(f"installed {target}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="pypptpd-install",
        description="Install pypptpd's systemd unit, logrotate snippet and default configuration "
        "(/etc/pptpd.conf, /etc/ppp/pptpd-options); existing files are kept, never overwritten.",
    )
    parser.add_argument("--root", metavar="DIR", default="/", help="install under DIR instead of / (default /)")
    parser.add_argument(
        "--pypptpd", metavar="PATH", default=None, help="the pypptpd the unit starts (default: the one beside this)"
    )
    args = parser.parse_args(argv)
    executable = args.pypptpd or pypptpd_path()
    try:
        lines = install(Path(args.root), executable)
    except OSError as exc:
        print(f"pypptpd-install: {exc}", file=sys.stderr)
        return 1
    for line in lines:
        print(line)
    print(f"the unit starts {executable}")
    if Path(args.root).resolve() == Path("/"):
        print("next: put users in /etc/ppp/chap-secrets, set localip/remoteip in /etc/pptpd.conf, then")
        print("      systemctl daemon-reload && systemctl enable --now pypptpd")
    return 0


if __name__ == "__main__":
    sys.exit(main())
