"""The library's PPTP client: bring a tunnel up, then send and receive IP (or attach a TUN).

::

    session = await PptpClientSession.connect("198.18.0.1", user="alice", password="s3cret")
    print(session.network)           # NetworkUp: our address, the server's, DNS, MTU, "MPPE 128-bit stateless"
    session.send(ip_packet)          # through the tunnel, encrypted
    reply = await session.recv()     # the next IP packet from the tunnel
    await session.close()            # LCP Terminate, CCRQ, StopCCRQ

The session ends by itself when the server hangs up in any way (LCP
Terminate, a CDN for our call, StopCCRQ, the TCP connection closed or
reset): :attr:`PptpClientSession.down_reason` says why, :meth:`wait_closed`
returns, :meth:`recv` raises :class:`PptpClientError` once the packets
received before are read, and :meth:`send` returns False.

With ``attach_tun=True`` the session creates a ``pppN`` TUN device for the
tunnel instead (root), so ordinary programs can use it.  ``sock`` and
``gre_sock`` let a caller pass sockets made elsewhere (a test makes them in
a network namespace); otherwise TCP and the raw GRE socket are opened here
(the raw socket needs root or CAP_NET_RAW).

``python -m pypptp.client.tunnel HOST -u USER -p PASSWORD`` brings a client
tunnel up on a TUN device and keeps it until interrupted (SIGINT or SIGTERM);
``--mppe-stateful`` allows stateful MPPE, ``--mru`` sets the MRU we announce,
``--stats`` prints the data path's counters at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import logging
import signal
import socket
import sys
import weakref
from collections.abc import Callable

from pypptp.aio.client import ControlClient, PptpClientError
from pypptp.aio.gre import GreCall, GreTransport
from pypptp.aio.session import PppSession, session_over_gre
from pypptp.aio.trace import GreTraceWatch, JsonLinesTracer, control_tracer
from pypptp.ctrl.callids import CallIdAllocator
from pypptp.ctrl.constants import PPTP_PORT
from pypptp.ctrl.events import Call, CallCleared, ControlConnectionClosed, Event
from pypptp.host.tun import TunDevice
from pypptp.ppp.auth import AuthConfig
from pypptp.ppp.ccp import MppePolicy
from pypptp.ppp.ipcp import IpcpConfig
from pypptp.ppp.lcp import AUTH_MSCHAP_V2, LcpConfig
from pypptp.ppp.link import LinkConfig, NetworkUp, PppLink
from pypptp.ppp.trace import Tracer

__all__ = ["PptpClientSession", "client_link_config"]

log = logging.getLogger("pypptp.aio.client")
RECEIVE_WINDOW = 1024
"""The Packet Recv. Window Size we announce in our OCRQ (RFC 2637 section 2.7): one raw socket with a
4 MiB buffer takes far more; 64 packets in flight (Windows' figure) held TCP to about 0.8 of what the
same path carries with 256 (``python -m benchmarks.bench_iperf``)."""
_SHARED_CALL_IDS: weakref.WeakKeyDictionary[GreTransport, CallIdAllocator] = weakref.WeakKeyDictionary()
"""One Call ID allocator per shared transport: sessions on one raw socket must not draw the same Call ID
(with 200 sessions each drawing at random from 65535, a repeat happened in about one run in four)."""


def client_link_config(
    user: str,
    password: str,
    *,
    auth_methods: tuple[bytes, ...] = (AUTH_MSCHAP_V2,),
    mppe: MppePolicy | None = None,
    request_dns: bool = True,
    mru: int = 1500,
) -> LinkConfig:
    """What pptp-linux's pppd asks for by default: MS-CHAPv2 only, MPPE-128 stateless required."""
    return LinkConfig(
        server=False,
        lcp=LcpConfig(server=False, mru=mru, auth_methods=auth_methods),
        auth=AuthConfig(user=user, password=password),
        ipcp=IpcpConfig(server=False, request_dns=request_dns),
        mppe=mppe or MppePolicy(),
    )


class PptpClientSession:
    """One client call with its PPP session; build it with :meth:`connect`."""

    def __init__(self, control: ControlClient, call: Call, transport: GreTransport) -> None:
        self.control = control
        self.call = call
        self.transport = transport
        self.gre: GreCall | None = None
        self.ppp: PppSession | None = None
        self.network: NetworkUp | None = None
        self.down_reason: str | None = None
        self._up: asyncio.Future[NetworkUp] = asyncio.get_running_loop().create_future()
        self._down = asyncio.Event()
        self._own_transport = True
        self.tracer: Tracer | None = None
        """The session's trace, when :meth:`connect` was given one."""
        self._trace_file: JsonLinesTracer | None = None
        self._gre_trace: GreTraceWatch | None = None

    @classmethod
    async def connect(
        cls,
        host: str,
        *,
        user: str,
        password: str,
        config: LinkConfig | None = None,
        port: int = PPTP_PORT,
        sock: socket.socket | None = None,
        gre_sock: socket.socket | None = None,
        attach_tun: bool = False,
        make_tun: Callable[[], TunDevice] = TunDevice,
        timeout: float = 30.0,
        transport: GreTransport | None = None,
        trace: str | Tracer | None = None,
    ) -> PptpClientSession:
        """TCP, SCCRQ, OCRQ, then LCP, authentication, CCP and IPCP; returns once IP can flow.
        Raises :class:`PptpClientError` with the reason if any step fails.

        ``transport``: an open :class:`GreTransport` shared by many sessions (one raw socket for all of
        them, as the server has; the kernel copies each GRE packet to every raw GRE socket).  The
        session then leaves it open when it closes; otherwise it opens and closes its own.

        ``trace``: a file name for a structured trace of the session (JSON lines, written by
        :class:`~pypptp.aio.trace.JsonLinesTracer`, closed by :meth:`close`; read it with ``python -m
        pypptp.trace``), or any :class:`~pypptp.ppp.trace.Tracer` (e.g. a
        :class:`~pypptp.ppp.trace.MemoryTracer`): control messages, PPP control packets, state changes,
        authentication and MPPE events, GRE anomalies; never data packets nor secrets."""
        shared = transport is not None
        call_ids = _SHARED_CALL_IDS.setdefault(transport, CallIdAllocator()) if transport is not None else None
        trace_file = None
        if isinstance(trace, str):
            header = {"role": "client", "peer": host if sock is None else sock.getpeername()[0]}
            trace = trace_file = JsonLinesTracer(trace, start=asyncio.get_running_loop().time(), header=header)
        tracer = control_tracer(trace) if trace is not None else None
        try:
            control = await ControlClient.connect(
                host, port, sock=sock, timeout=timeout, call_ids=call_ids, tracer=tracer
            )
        except BaseException:
            if trace_file is not None:
                trace_file.close(reason="connection failed")
            raise
        transport = transport if transport is not None else GreTransport()
        try:
            await control.start()
            call = await control.open_call(window=RECEIVE_WINDOW)
            if not shared:
                transport.open(gre_sock)
        except BaseException:
            control.close()
            if not shared:
                transport.close()
            if trace_file is not None:
                trace_file.close(reason="call refused")
            raise
        session = cls(control, call, transport)
        session._own_transport = not shared
        session.tracer, session._trace_file = trace, trace_file
        link = PppLink(config or client_link_config(user, password), tracer=trace)
        assert call.peer_call_id is not None
        peer_ip = host if sock is None else sock.getpeername()[0]
        session.gre, session.ppp = session_over_gre(
            transport,
            peer_ip,
            call.call_id,
            call.peer_call_id,
            link,
            peer_window=call.peer_window,
            our_window=RECEIVE_WINDOW,
            log=log,
            on_up=session._on_up,
            on_down=session._on_down,
            attach_tun=attach_tun,
            make_tun=make_tun,
        )
        if trace is not None:
            session._gre_trace = GreTraceWatch(trace, session.gre.seq.counters, asyncio.get_running_loop())
        control.listeners.append(session._on_control_event)
        if control.closed_reason is not None:  # the server hung up before we got here
            session._on_control_event(ControlConnectionClosed(control.closed_reason, True))
        session.ppp.start()
        try:
            async with asyncio.timeout(timeout):
                session.network = await session._up
        except (TimeoutError, PptpClientError) as exc:
            await session.close()
            reason = session.down_reason or "no network within the time allowed"
            counters = session.gre.seq.counters
            if not counters.received and not counters.acks_received:  # nothing came back: say what blocks it
                reason += (
                    f" (no GRE from {peer_ip}: is IP protocol 47 allowed through the firewalls, "
                    "and NAT on the way PPTP-aware?)"
                )
            raise PptpClientError(f"PPP negotiation failed: {reason}") from exc
        return session

    # -- data --------------------------------------------------------------------------------

    def send(self, packet: bytes | bytearray | memoryview) -> bool:
        """Send one IP packet; False if the tunnel refused it (not up, window full, too big)."""
        return self.ppp is not None and self.ppp.send_ip(packet)

    async def recv(self) -> bytes:
        """The next IP packet from the tunnel (library mode, without a TUN); once the session has ended
        and the packets received before are read, :class:`PptpClientError` with the reason."""
        assert self.ppp is not None and self.ppp.received is not None, "recv() needs attach_tun=False"
        received = self.ppp.received
        if received.empty() and not self._down.is_set():
            packet = asyncio.ensure_future(received.get())
            down = asyncio.ensure_future(self._down.wait())
            try:
                await asyncio.wait((packet, down), return_when=asyncio.FIRST_COMPLETED)
            finally:
                down.cancel()
                if not packet.done():
                    packet.cancel()
            if packet.done() and not packet.cancelled():
                return packet.result()
        if not received.empty():
            return received.get_nowait()
        raise PptpClientError(f"tunnel closed: {self.down_reason or 'closed'}")

    @property
    def tun_name(self) -> str | None:
        return self.ppp.tun.name if self.ppp is not None and self.ppp.tun is not None else None

    async def wait_closed(self) -> str:
        await self._down.wait()
        return self.down_reason or ""

    async def close(self, timeout: float = 5.0) -> None:
        """Hang up like pptp-linux: LCP Terminate, then CCRQ and StopCCRQ; always releases everything."""
        if self.ppp is not None and not self.ppp.closed:
            self.ppp.terminate("closed by the application")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._down.wait()
            self.ppp.close("closed by the application")
        with contextlib.suppress(PptpClientError):
            if self.control.closed_reason is None and self.call.call_id in self.control.calls:
                await self.control.clear_call(self.call)
        with contextlib.suppress(PptpClientError):
            if self.control.closed_reason is None:
                await self.control.stop()
        self.control.close()
        if self.gre is not None:
            self.gre.close()
        if self._own_transport:
            self.transport.close()
        if self._gre_trace is not None:
            self._gre_trace.stop()
            self._gre_trace = None
        if self._trace_file is not None:  # written off the loop; done (the file complete) when close returns
            done = self._trace_file.close(asyncio.get_running_loop().time(), reason=self.down_reason or "closed")
            with contextlib.suppress(Exception):
                await asyncio.wrap_future(done)

    # -- callbacks ------------------------------------------------------------------------------

    def _on_control_event(self, event: Event) -> None:
        """The server cleared our call or the control connection ended: the tunnel is gone with it
        (as pptp-linux's pppd ends when its pptp process does)."""
        if isinstance(event, CallCleared) and event.call is self.call:
            reason = f"call cleared: {event.reason}"  # a CDN, or the whole connection gone
        elif isinstance(event, ControlConnectionClosed):
            reason = f"control connection closed: {event.reason}"
        else:
            return
        if self.ppp is not None and not self.ppp.closed:
            self.ppp.close(self.ppp.link.close_reason or reason)  # "LCP terminated by peer" says more

    def _on_up(self, ppp: PppSession, up: NetworkUp) -> None:
        self.network = up
        if not self._up.done():
            self._up.set_result(up)

    def _on_down(self, ppp: PppSession, reason: str) -> None:
        self.down_reason = reason
        if self._trace_file is not None:
            self._trace_file.flush()  # the rest (CCRQ, StopCCRQ) comes with close()
        self._down.set()
        if not self._up.done():
            self._up.set_exception(PptpClientError(reason))


def _counters(session: PptpClientSession) -> dict[str, object]:
    """The data path's counters, for ``--stats``: the session's, the GRE call's and the transport's."""
    counters: dict[str, object] = {}
    if session.ppp is not None:
        counters["session"] = dataclasses.asdict(session.ppp.stats)
        counters["link"] = dict(session.ppp.link.counters)
    if session.gre is not None:
        seq = session.gre.seq
        counters["gre"] = {**dataclasses.asdict(seq.counters), "window": seq.window, "peer_window": seq.peer_window}
    counters["transport"] = dataclasses.asdict(session.transport.counters)
    return counters


async def _run(args: argparse.Namespace) -> int:
    mppe = MppePolicy(stateful=True) if args.mppe_stateful else None
    config = client_link_config(args.user, args.password, mppe=mppe, mru=args.mru)
    try:
        session = await PptpClientSession.connect(
            args.host, user=args.user, password=args.password, config=config, attach_tun=True, timeout=args.timeout
        )
    except PptpClientError as exc:
        print(f"pptp client: {exc}", file=sys.stderr)
        return 1
    up = session.network
    assert up is not None
    print(
        f"{session.tun_name}: {up.local_address} <-> {up.peer_address}, MTU {up.mtu}, {up.mppe or 'no encryption'}, "
        f"DNS {', '.join(map(str, up.dns)) or 'none'}",
        flush=True,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    down = asyncio.ensure_future(session.wait_closed())
    await asyncio.wait([down, asyncio.ensure_future(stop.wait())], return_when=asyncio.FIRST_COMPLETED)
    counters = _counters(session)  # before close() drops the session's state
    await session.close()
    print(f"tunnel closed: {session.down_reason or 'interrupted'}", flush=True)
    if args.stats:
        print("stats " + json.dumps(counters), flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pypptp.client.tunnel", description="Bring a PPTP client tunnel up on a pppN TUN device."
    )
    parser.add_argument("host")
    parser.add_argument("-u", "--user", required=True)
    parser.add_argument("-p", "--password", required=True)
    parser.add_argument(
        "--mppe-stateful", action="store_true", help="allow and propose stateful MPPE (pppd mppe-stateful)"
    )
    parser.add_argument("--mru", type=int, default=1500, help="the MRU we announce in LCP (default 1500)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds allowed to bring the tunnel up")
    parser.add_argument(
        "--stats", action="store_true", help="print the data path's counters as a 'stats {json}' line at the end"
    )
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(message)s")
    return asyncio.run(_run(args))


if __name__ == "__main__":
    sys.exit(main())
