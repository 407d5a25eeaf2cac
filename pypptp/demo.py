"""``pypptp-demo``: the real daemon and the library client in two namespaces.

What it does, all of it undone at the end:

1. creates two network namespaces joined by a veth pair, 198.18.0.1 (server)
   and 198.18.0.2 (client), touching nothing in the root namespace;
2. writes a pptpd.conf and starts ``pypptpd -f`` in the server namespace;
3. runs the library client in the client namespace: SCCRQ, OCRQ, Echo,
   CCRQ, StopCCRQ, printing each step and its timing;
4. sends SIGTERM to the daemon, prints its log, deletes the namespaces.

This release implements the PPTP control channel; GRE and PPP follow, so
the call it sets up carries no IP traffic yet, and the demo says so.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pypptp.client import PptpClientError, run_sequence
from pypptp.netns import NetnsPair, netns_available, two_hosts


def wait_until_listening(process: subprocess.Popen[bytes], log: Path, timeout: float = 10.0) -> None:
    """Wait until ``pypptpd -f`` logging to ``log`` is listening; raise with its log if it dies or hangs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"pypptpd exited with {process.returncode}:\n{log.read_text()}")
        if "listening on" in log.read_text():
            return
        time.sleep(0.05)
    raise RuntimeError(f"pypptpd did not start:\n{log.read_text()}")


def _run(pair: NetnsPair, workdir: Path) -> int:
    conf = workdir / "pptpd.conf"
    conf.write_text(f"# written by pypptp-demo\nlisten {pair.server_ip}\nstimeout 10\nconnections 10\n")
    log = workdir / "pypptpd.log"
    argv = [sys.executable, "-m", "pypptp.cli", "-f", "-c", str(conf), "-p", str(workdir / "pptpd.pid")]
    print(f"$ ip netns exec {pair.server_ns} pypptpd -f -c {conf}")
    with log.open("wb") as log_file:
        daemon = subprocess.Popen(pair.exec_argv(pair.server_ns, argv), stdout=log_file, stderr=subprocess.STDOUT)
    try:
        wait_until_listening(daemon, log)
        print(f"pypptpd is listening on {pair.server_ip}:1723 in namespace {pair.server_ns}\n")
        print(f"Library client in namespace {pair.client_ns} ({pair.client_ip}):")
        sock = pair.connect(pair.client_ns, (pair.server_ip, 1723))
        try:
            asyncio.run(run_sequence(pair.server_ip, sock=sock, out=lambda line: print("  " + line)))
        except PptpClientError as exc:
            print(f"  FAILED: {exc}")
            return 1
    finally:
        if daemon.poll() is None:
            daemon.terminate()
            daemon.wait(10)
    print(f"\npypptpd exited with status {daemon.returncode}; its log:")
    for line in log.read_text().splitlines():
        print("  " + line)
    return 0 if daemon.returncode == 0 else 1


def main() -> int:
    reason = netns_available()
    if reason is not None:
        print(f"pypptp-demo {reason}: it creates network namespaces (run it as root on Linux).", file=sys.stderr)
        return 2
    print("pypptp demo: a PPTP server and client in two throw-away network namespaces\n")
    with tempfile.TemporaryDirectory(prefix="pypptp-demo-") as tmp, two_hosts("demo") as pair:
        os.chmod(tmp, 0o755)
        status = _run(pair, Path(tmp))
    print(f"\nNamespaces {pair.server_ns} and {pair.client_ns} deleted.")
    if status == 0:
        print(
            "\nResult: the PPTP control channel works end to end (SCCRQ/SCCRP, OCRQ/OCRP, Echo, CCRQ/CDN,\n"
            "StopCCRQ/StopCCRP) between the real daemon and the library client.  This release has no GRE\n"
            "or PPP yet, so the call carries no IP traffic: that is the next piece of work."
        )
    return status


if __name__ == "__main__":
    sys.exit(main())
