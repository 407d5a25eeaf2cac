"""RADIUS in the daemon: what pppd's radius plugin did for each pppd, and RFC 5176 on top.

``plugin radius.so`` in the options file makes :class:`RadiusAaa` the daemon's AAA backend:

* **authentication**: each session's authenticator hands the peer's credentials up
  (:class:`~pypptp.ppp.auth.AuthRequest`); an Access-Request goes to the ``authserver`` s with the
  session's Acct-Session-Id, the client's address (Calling-Station-Id) and ours (Called-Station-Id),
  and the answer becomes the CHAP Success or Failure (the server's MS-CHAP2-Success or MS-CHAP-Error
  text), MPPE keyed from MS-MPPE-Send-Key/Recv-Key (MS-CHAP-MPPE-Keys for v1).  What the
  Access-Accept grants (:class:`Grant`) shapes the session: Framed-IP-Address (else the local pool),
  Session-Timeout and Idle-Timeout (pppd's ``maxconnect`` and ``idle``), Acct-Interim-Interval,
  Class (echoed in accounting), Framed-MTU.  No answer from any server (timeouts, retries,
  failover: :mod:`pypptp.aaa.radius`) is a clean failure with a log line; other sessions never wait
  for it (each request is a task of its session);
* **accounting**: Start when the session's network is up, Interim-Update every
  Acct-Interim-Interval, Stop when it ends, with its byte and packet counts and the cause
  (:mod:`pypptp.aaa.accounting`); sent in the background, retried, a lost one logged;
* **dynamic authorization** (``radius-dae-listen``): Disconnect-Request ends the identified sessions
  as ``pypptpctl terminate`` does; CoA-Request with Session-Timeout changes a live session's limit
  (:mod:`pypptp.aaa.dae`).  The RADIUS servers of radiusclient's configuration may send them, with
  their secrets, and the hosts of ``radius-dae-clients``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import socket
import time
from collections.abc import Coroutine, Sequence
from ipaddress import IPv4Address, ip_address
from typing import TYPE_CHECKING, Any

from pypptp.aaa.accounting import (
    AccountingSession,
    Counters,
    Nas,
    SessionIds,
    interim_record,
    start_record,
    stop_record,
)
from pypptp.aaa.dae import DISCONNECT_REASON, DaeClient, DaeServer, SessionIdentification
from pypptp.aaa.radius import RadiusClient, RadiusReply, to_verdict
from pypptp.conf.radiusclient import RadiusConfig, read_servers_file
from pypptp.ppp.auth import AuthRequest, ExternalVerdict, clipped, wire_text

if TYPE_CHECKING:
    from pypptp.daemon.manager import Daemon, DaemonSession

__all__ = ["MIN_INTERIM", "Grant", "RadiusAaa", "RadiusSession", "dae_clients", "nas_address", "parse_dae_listen"]

log = logging.getLogger("pypptpd.radius")

MIN_INTERIM = 1.0
"""The shortest Acct-Interim-Interval honoured (seconds); a shorter one is raised to it.  RFC 2869 section
5.16 advises servers against less than 600 s; the floor only guards against 0 and floods."""
NAS_ASSIGNS = (IPv4Address("255.255.255.254"), IPv4Address("255.255.255.255"))
"""Framed-IP-Address values that leave the address to the NAS (RFC 2865 section 5.8): the pool then."""


@dataclasses.dataclass(frozen=True)
class Grant:
    """What an Access-Accept grants a session (:attr:`pypptp.ppp.auth.AuthResult.grant`)."""

    framed_ip: IPv4Address | None = None
    framed_pool: str | None = None
    session_timeout: int | None = None
    idle_timeout: int | None = None
    interim_interval: int | None = None
    classes: tuple[bytes, ...] = ()
    framed_mtu: int | None = None
    server: str = ""
    """The server that answered (``host:port``), for the log."""

    @classmethod
    def of(cls, answer: RadiusReply) -> Grant:
        framed_ip = answer.framed_ip_address if answer.framed_ip_address not in NAS_ASSIGNS else None
        return cls(
            framed_ip=framed_ip,
            framed_pool=answer.framed_pool,
            session_timeout=answer.session_timeout,
            idle_timeout=answer.idle_timeout,
            interim_interval=answer.acct_interim_interval,
            classes=tuple(answer.classes),
            framed_mtu=answer.framed_mtu,
            server=answer.server,
        )


@dataclasses.dataclass
class RadiusSession:
    """A session's RADIUS state, from its call to its Stop."""

    session_id: str
    user_name: str = ""
    """The name of its accepted Access-Request (what accounting and Disconnect-Request match)."""
    grant: Grant | None = None
    accounting: AccountingSession | None = None
    """Set at Start (the network is up); its Stop is owed from then."""
    interim: asyncio.TimerHandle | None = None


def nas_address(config: RadiusConfig, listen: str) -> IPv4Address | None:
    """Our NAS-IP-Address: radiusclient's ``nas-ip``/``bindaddr`` if set, else pptpd's ``listen`` address if
    it is one, else the address this host sends from toward the first RADIUS server (no packet is sent)."""
    for value in (config.nas_ip, config.bindaddr, listen):
        if value is None or str(value) in ("", "*", "0.0.0.0"):
            continue
        with contextlib.suppress(ValueError):
            address = ip_address(str(value))
            if isinstance(address, IPv4Address):
                return address
    servers = config.auth_servers or config.acct_servers
    if not servers:
        return None
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect((servers[0].host, servers[0].port))
            return IPv4Address(probe.getsockname()[0])
    except (OSError, ValueError):
        return None


def parse_dae_listen(value: str, where: str) -> tuple[str, int]:
    """``radius-dae-listen [ADDRESS:]PORT`` as (address, port); ValueError naming ``where`` otherwise."""
    host, _, port = value.rpartition(":")
    host = host.strip("[]") or "0.0.0.0"
    try:
        ip_address(host)
    except ValueError:
        raise ValueError(f"{where}: radius-dae-listen {value}: {host!r} is not an IP address") from None
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"{where}: radius-dae-listen {value}: the port must be 1 to 65535 (RFC 5176: 3799)")
    return host, int(port)


def dae_clients(config: RadiusConfig, extra_file: str | None) -> list[DaeClient]:
    """Who may send Disconnect and CoA requests: the RADIUS servers with their secrets, and the hosts of
    ``radius-dae-clients`` (a servers file: ``host secret`` lines).  Raises ValueError (file and line)."""
    clients: list[DaeClient] = []
    if extra_file:  # first: an entry there overrides a RADIUS server's own secret for the same host
        errors: list[str] = []
        warnings: list[str] = []
        for host, secret, where in read_servers_file(extra_file, errors, warnings, "radius-dae-clients file") or []:
            try:
                clients.append(DaeClient.parse(host, secret))
            except ValueError as exc:
                errors.append(f"{where}: {exc}")
        for warning in warnings:
            log.warning("DAE: %s", warning)
        if errors:
            raise ValueError("\n".join(errors))
    seen = {client.network for client in clients}
    for server in (*config.auth_servers, *config.acct_servers):
        with contextlib.suppress(ValueError):  # a host name: only addresses can be matched to a source
            client = DaeClient.parse(server.host, server.secret)
            if client.network not in seen:
                seen.add(client.network)
                clients.append(client)
    return clients


class RadiusAaa:
    """The daemon's RADIUS backend (see the module's docstring)."""

    def __init__(
        self,
        config: RadiusConfig,
        *,
        listen: str = "0.0.0.0",
        dae_listen: str | None = None,
        dae_clients_file: str | None = None,
    ) -> None:
        self.config = config
        self.client = RadiusClient(config)
        self._listen = listen
        ip = nas_address(config, listen)
        self.nas = (
            Nas(ip, config.nas_identifier) if ip is not None or config.nas_identifier else Nas(IPv4Address("127.0.0.1"))
        )
        self.ids = SessionIds()
        self.daemon: Daemon | None = None
        self.dae: DaeServer | None = None
        self._dae_listen = dae_listen
        self._dae_clients_file = dae_clients_file
        self._accounting: set[asyncio.Task[None]] = set()

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self, daemon: Daemon) -> None:
        """Open the client's sockets, and the DAE listener when configured (OSError if its port is taken)."""
        self.daemon = daemon
        servers = ", ".join(f"{s.host}:{s.port}" for s in self.config.auth_servers)
        log.info("RADIUS: authentication by %s; NAS %s", servers or "no server", self._nas_text())
        if self._dae_listen is not None:
            host, port = parse_dae_listen(self._dae_listen, "radius-dae-listen")
            clients = dae_clients(self.config, self._dae_clients_file)
            self.dae = DaeServer(clients, _DaeSessions(self), self.nas, host=host, port=port)
            await self.dae.start()

    def reconfigure(self, config: RadiusConfig) -> None:
        """SIGHUP: radiusclient's files re-read; new requests go to the servers they name now (as each new
        pppd read them).  Requests under way finish with the old client, which is closed after them; the
        DAE listener keeps its address and clients until a restart."""
        old, self.client, self.config = self.client, RadiusClient(config), config
        ip = nas_address(config, self._listen)
        if ip is not None or config.nas_identifier:
            self.nas = Nas(ip, config.nas_identifier)

        async def retire() -> None:
            await asyncio.sleep(config.timeout * (config.retries + 1) * max(1, len(config.auth_servers)) + 1)
            await old.close()

        self._keep(retire())
        log.info("RADIUS: configuration re-read from %s", config.path)

    async def close(self, timeout: float = 5.0) -> None:
        """After the sessions' Stops were queued: wait for them (bounded), then close the sockets."""
        if self._accounting:
            await asyncio.wait(list(self._accounting), timeout=timeout)
        if self.dae is not None:
            self.dae.close()
        await self.client.close()

    def _nas_text(self) -> str:
        parts = [str(self.nas.ip)] if self.nas.ip is not None else []
        return " ".join(parts + ([repr(self.nas.identifier)] if self.nas.identifier else []))

    # -- sessions --------------------------------------------------------------------------------

    def new_session(self) -> RadiusSession:
        return RadiusSession(self.ids.next())

    async def authenticate(self, session: DaemonSession, request: AuthRequest) -> ExternalVerdict:
        """One Access-Request for ``request``; the verdict the authenticator acts on."""
        state = session.radius
        assert state is not None
        answer = await self.client.authenticate(
            request,
            calling_station_id=session.connection.peer_ip,
            called_station_id=session.local_ip or None,
            attributes=[("Acct-Session-Id", state.session_id), *self.nas.attributes()],
        )
        name = clipped(wire_text(request.name))
        if answer.accepted:
            state.user_name = wire_text(request.name)
            state.grant = Grant.of(answer)
            session.log.info("RADIUS: %s for %r%s", answer.reason, name, _granted(state.grant))
        elif not answer.answered:
            session.log.warning("no answer from RADIUS for %r: %s", name, answer.reason)
        verdict = to_verdict(answer, request)
        reason = verdict.reason
        if answer.ms_chap_error and not verdict.ok:
            reason += f": {answer.ms_chap_error[:128]!r}"  # what the client is told, for the admin too
        return dataclasses.replace(verdict, reason=reason, grant=state.grant if answer.accepted else None)

    def started(self, session: DaemonSession) -> None:
        """The session's network is up (pppd's radius plugin sends Start at ip-up): Start, interim timer."""
        state = session.radius
        if state is None or state.accounting is not None or session.up is None:
            return
        grant = state.grant or Grant()
        state.accounting = AccountingSession(
            session_id=state.session_id,
            user_name=state.user_name,
            unit=session.unit,
            calling_station=session.connection.peer_ip,
            called_station=session.local_ip,
            started=time.time(),
            framed_ip=session.up.peer_address,
            classes=grant.classes,
        )
        self._send(start_record(self.nas, state.accounting), "Start", session)
        if grant.interim_interval:
            self._arm_interim(session, max(MIN_INTERIM, float(grant.interim_interval)))

    def _arm_interim(self, session: DaemonSession, interval: float) -> None:
        state = session.radius
        assert state is not None
        loop = asyncio.get_running_loop()
        state.interim = loop.call_later(interval, self._interim, session, interval)

    def _interim(self, session: DaemonSession, interval: float) -> None:
        state = session.radius
        if state is None or state.accounting is None or session.ppp.closed:
            return
        self._send(interim_record(self.nas, state.accounting, _counters(session)), "Interim-Update", session)
        self._arm_interim(session, interval)

    def stopped(self, session: DaemonSession, reason: str) -> None:
        """The session ended: Stop, if its Start was sent."""
        state = session.radius
        if state is None:
            return
        if state.interim is not None:
            state.interim.cancel()
            state.interim = None
        if state.accounting is None:
            return
        cause = session.ppp.link.close_reason or reason
        self._send(stop_record(self.nas, state.accounting, _counters(session), cause), "Stop", session)
        state.accounting = None

    def _send(self, attributes: list[tuple[str, Any]], kind: str, session: DaemonSession) -> None:
        async def send() -> None:
            if not await self.client.account(attributes):
                session.log.warning("RADIUS accounting %s for session %s was not acknowledged by any server",
                                    kind, session.radius.session_id if session.radius else "?")  # fmt: skip

        self._keep(send())

    def _keep(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` as a task that :meth:`close` waits for (bounded)."""
        task = asyncio.ensure_future(work)
        self._accounting.add(task)
        task.add_done_callback(self._accounting.discard)

    # -- dynamic authorization -------------------------------------------------------------------

    def find(self, identification: SessionIdentification) -> list[DaemonSession]:
        daemon = self.daemon
        if daemon is None:
            return []
        found = []
        for session in daemon.sessions.values():
            state = session.radius
            if state is None or state.grant is None or session.ppp.closed:
                continue
            framed = session.up.peer_address if session.up is not None else None
            if identification.matches(
                user_name=state.user_name,
                acct_session_id=state.session_id,
                framed_ip=framed,
                nas_port=session.unit,
                calling_station_id=session.connection.peer_ip,
            ):
                found.append(session)
        return found


def _granted(grant: Grant) -> str:
    """What an Access-Accept granted, for its log line."""
    parts = [f"address {grant.framed_ip}"] if grant.framed_ip is not None else []
    limits = (
        ("Session-Timeout", grant.session_timeout),
        ("Idle-Timeout", grant.idle_timeout),
        ("Acct-Interim-Interval", grant.interim_interval),
        ("Framed-MTU", grant.framed_mtu),
    )
    for name, value in limits:
        if value:
            parts.append(f"{name} {value}")
    if grant.classes:
        parts.append(f"{len(grant.classes)} Class")
    return f": {', '.join(parts)}" if parts else ""


def _counters(session: DaemonSession) -> Counters:
    stats = session.ppp.stats
    return Counters(stats.bytes_received, stats.bytes_sent, stats.packets_received, stats.packets_sent)


class _DaeSessions:
    """The DAE server's view of the daemon's sessions (:class:`pypptp.aaa.dae.DaeHandler`)."""

    def __init__(self, aaa: RadiusAaa) -> None:
        self.aaa = aaa

    def find(self, identification: SessionIdentification) -> Sequence[Any]:
        return self.aaa.find(identification)

    def disconnect(self, session: Any) -> None:
        session.log.info("%s: ending the session", DISCONNECT_REASON)
        session.ppp.terminate(DISCONNECT_REASON)

    def set_session_timeout(self, session: Any, seconds: int) -> None:
        session.log.info("Session-Timeout now %d s (RADIUS CoA-Request)", seconds)
        session.ppp.set_limits(maxconnect=float(seconds))
