"""``pypptp-demo``: a real PPTP tunnel between two throw-away namespaces, shown working.

What it does, all of it undone at the end:

1. creates two network namespaces joined by a veth pair, 198.18.0.1 (server)
   and 198.18.0.2 (client), touching nothing in the root namespace;
2. writes a pptpd.conf, a pppd options file (MS-CHAPv2, MPPE-128 required)
   and a chap-secrets file, and starts the real ``pypptpd -f`` in the server
   namespace;
3. brings a tunnel up with the library client in the client namespace: PPTP
   control channel, GRE, LCP, MS-CHAPv2, CCP/MPPE-128, IPCP, and a ``ppp0``
   TUN device on each side (192.168.0.234 <-> 192.168.0.1);
4. pings the server's tunnel address with the system's ``ping`` and times a
   TCP transfer through the tunnel;
5. hangs up, stops the daemon, prints its log and deletes the namespaces.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from pypptp.aio.client import PptpClientError
from pypptp.client.tunnel import PptpClientSession, client_link_config
from pypptp.host.netns import NetnsPair, netns_available, two_hosts
from pypptp.host.tun import TunDevice

__all__ = [
    "TUNNEL_SERVER",
    "main",
    "ping",
    "stop_process",
    "tcp_transfer",
    "wait_until_listening",
]

TUNNEL_SERVER = "192.168.0.1"
TRANSFER_BYTES = 32 * 1024 * 1024
USER, PASSWORD = "demo", "demo-password"


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


def stop_process(process: subprocess.Popen[Any], timeout: float = 10.0) -> int:
    """SIGTERM, wait ``timeout`` seconds, SIGKILL if it hangs; the exit status (negative: a signal).
    Shared by the demo, the tests, the fuzzer and the benchmarks, which all run pypptpd as a process."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
    return process.returncode


async def ping(pair: NetnsPair, target: str = TUNNEL_SERVER, count: int = 3) -> str:
    """The system's ping from the client namespace; returns its output (raises if any reply is missing)."""
    process = await asyncio.create_subprocess_exec(
        *pair.exec_argv(pair.client_ns, ["ping", "-n", "-c", str(count), "-i", "0.2", "-W", "2", target]),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    text = output.decode(errors="replace")
    if process.returncode != 0 or f"{count} received" not in text:
        raise RuntimeError(f"ping through the tunnel failed:\n{text}")
    return text


async def tcp_transfer(pair: NetnsPair, size: int, target: str = TUNNEL_SERVER, port: int = 5001) -> tuple[float, int]:
    """Send ``size`` bytes over TCP from the client namespace to ``target`` (a listener in the server
    namespace) through the tunnel.  Returns (seconds, the MSS the server's socket uses).  Bounded."""
    loop = asyncio.get_running_loop()
    listener = pair.socket(pair.server_ns)
    sender = pair.socket(pair.client_ns)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        for _ in range(250):  # the server's end of a new tunnel may get its address a moment after ours (5 s)
            try:
                listener.bind((target, port))
                break
            except OSError as exc:
                if exc.errno != errno.EADDRNOTAVAIL:
                    raise
                await asyncio.sleep(0.02)
        else:
            listener.bind((target, port))  # still not there: say so
        listener.listen(1)
        listener.setblocking(False)
        sender.setblocking(False)
        accepting = asyncio.ensure_future(loop.sock_accept(listener))
        started = time.monotonic()
        await asyncio.wait_for(loop.sock_connect(sender, (target, port)), 10)
        receiver, _ = await asyncio.wait_for(accepting, 10)
        with receiver:
            receiver.setblocking(False)
            mss = receiver.getsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG)
            chunk = bytes(range(256)) * 256

            async def send() -> None:
                sent = 0
                while sent < size:
                    piece = chunk[: min(len(chunk), size - sent)]
                    await loop.sock_sendall(sender, piece)
                    sent += len(piece)
                sender.shutdown(socket.SHUT_WR)

            sending = asyncio.ensure_future(send())
            received = 0
            while received < size:
                data = await asyncio.wait_for(loop.sock_recv(receiver, 262144), 20)
                if not data:
                    break
                received += len(data)
            await asyncio.wait_for(sending, 20)
        if received != size:
            raise RuntimeError(f"TCP transfer through the tunnel stopped at {received} of {size} bytes")
        return time.monotonic() - started, mss
    finally:
        listener.close()
        sender.close()


async def _client(pair: NetnsPair) -> None:
    say = print
    sock = pair.connect(pair.client_ns, (pair.server_ip, 1723))
    gre = pair.socket(pair.client_ns, socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_GRE)
    started = time.monotonic()
    session = await PptpClientSession.connect(
        pair.server_ip,
        user=USER,
        password=PASSWORD,
        config=client_link_config(USER, PASSWORD, mru=1400),
        sock=sock,
        gre_sock=gre,
        attach_tun=True,
        make_tun=lambda: TunDevice(netns=pair.client_ns),
        timeout=15,
    )
    try:
        up = session.network
        assert up is not None
        say(f"  tunnel up in {(time.monotonic() - started) * 1000:.0f} ms: PPTP, LCP, MS-CHAPv2 as {USER!r}, CCP, IPCP")
        say(f"  {session.tun_name} in {pair.client_ns}: {up.local_address} <-> {up.peer_address}, MTU {up.mtu}")
        dns = ", ".join(dict.fromkeys(map(str, up.dns))) or "none"
        say(f"  encryption: {up.mppe}; DNS offered: {dns} (negotiated only)")
        say(f"\n$ ip netns exec {pair.client_ns} ping -c 3 {TUNNEL_SERVER}")
        for line in (await ping(pair)).strip().splitlines():
            say("  " + line)
        say(f"\nTCP transfer of {TRANSFER_BYTES // (1024 * 1024)} MiB through the tunnel, client -> server:")
        seconds, mss = await tcp_transfer(pair, TRANSFER_BYTES)
        mbit = TRANSFER_BYTES * 8 / seconds / 1e6
        say(f"  {TRANSFER_BYTES} bytes in {seconds:.2f} s = {mbit:.1f} Mbit/s (TCP MSS {mss}, MPPE-128 stateless)")
    finally:
        await session.close()
        say(f"\n  hung up: LCP Terminate, CCRQ, StopCCRQ ({session.down_reason})")


def _run(pair: NetnsPair, workdir: Path) -> int:
    options = workdir / "pptpd-options"
    options.write_text("name pptpd\nrequire-mschap-v2\nrequire-mppe-128\nms-dns 192.168.0.1\nmru 1400\nmtu 1400\n")
    secrets = workdir / "chap-secrets"
    secrets.write_text(f"# client server secret IP\n{USER} pptpd {PASSWORD} *\n")
    secrets.chmod(0o600)
    conf = workdir / "pptpd.conf"
    conf.write_text(
        f"# written by pypptp-demo\noption {options}\nlisten {pair.server_ip}\nlocalip 192.168.0.1\n"
        "remoteip 192.168.0.234-238\n"
    )
    (workdir / "options.system").write_text("")
    log = workdir / "pypptpd.log"
    files = ["--secrets", str(secrets), "--system-options", str(workdir / "options.system")]
    files += ["--ip-up", str(workdir / "ip-up"), "--ip-down", str(workdir / "ip-down")]
    argv = [sys.executable, "-m", "pypptp.daemon.cli", "-f", "-c", str(conf), "-p", str(workdir / "pptpd.pid"), *files]
    argv += ["--control-socket", str(workdir / "pypptpd.sock")]  # not the host's /run/pypptpd.sock
    print(f"$ ip netns exec {pair.server_ns} pypptpd -f -c {conf}")
    with log.open("wb") as log_file:
        daemon = subprocess.Popen(pair.exec_argv(pair.server_ns, argv), stdout=log_file, stderr=subprocess.STDOUT)
    status = 0
    try:
        wait_until_listening(daemon, log)
        print(f"pypptpd is listening on {pair.server_ip}:1723 in namespace {pair.server_ns}\n")
        print(f"Library client in namespace {pair.client_ns} ({pair.client_ip}):")
        try:
            asyncio.run(_client(pair))
        except (PptpClientError, RuntimeError, OSError, TimeoutError) as exc:
            print(f"  FAILED: {exc}")
            status = 1
    finally:
        if daemon.poll() is None:
            daemon.terminate()
            daemon.wait(15)
    print(f"\npypptpd exited with status {daemon.returncode}; its log:")
    for line in log.read_text().splitlines():
        print("  " + line)
    return status if daemon.returncode == 0 else 1


def _parser() -> argparse.ArgumentParser:
    steps = (__doc__ or "").partition("\n\n")[2]
    return argparse.ArgumentParser(
        prog="pypptp-demo",
        description="A real PPTP tunnel between two throw-away network namespaces, shown working "
        "(run as root on Linux; takes a few seconds).",
        epilog=steps.replace("``", ""),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def main(argv: list[str] | None = None) -> int:
    _parser().parse_args(argv)  # --help (and -h) print what the demo does and exit, without running it
    reason = netns_available()
    if reason is not None:
        print(f"pypptp-demo {reason}: it creates network namespaces (run it as root on Linux).", file=sys.stderr)
        return 2
    print("pypptp demo: a PPTP tunnel between two throw-away network namespaces\n")
    with tempfile.TemporaryDirectory(prefix="pypptp-demo-") as tmp, two_hosts("demo") as pair:
        os.chmod(tmp, 0o755)
        status = _run(pair, Path(tmp))
    print(f"\nNamespaces {pair.server_ns} and {pair.client_ns} deleted.")
    if status == 0:
        print(
            "\nResult: the real pypptpd and the library client brought a PPTP tunnel up (MS-CHAPv2,\n"
            "MPPE-128 stateless), carried ping and TCP through it, and tore everything down."
        )
    else:
        print("\nResult: FAILED (see above).")
    return status


if __name__ == "__main__":
    sys.exit(main())
