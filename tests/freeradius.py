"""A real FreeRADIUS (Debian's ``freeradius`` 3.2) for the RADIUS tests, in a network namespace the test gives.

:class:`FreeRadius` writes a complete, minimal configuration of its own into a directory (radiusd reads
nothing from ``/etc/freeradius``: only the dictionaries in ``/usr/share/freeradius`` and the modules in
``/usr/lib/freeradius``; the harness itself takes the pool's SQLite schema from Debian's copy), creates
the SQLite address pool, starts ``freeradius -f -d DIR`` inside the namespace and waits until it answers
a Status-Server.  It answers Access-Requests for its ``users`` (PAP,
CHAP, MS-CHAP v1 and v2 with MPPE keys), hands out Framed-IP-Address from one ``sqlippool`` pool shared by
every NAS, releases the address on accounting Stop and writes every accounting record to one detail file
(:meth:`FreeRadius.accounting_records`).

Why a namespace is enough to keep it apart from the machine: every instance binds its sockets inside the
test's namespace, which has its own port space, so a system ``freeradius.service`` (Debian starts one on
install where systemd runs, bound to 1812/1813 of the root namespace) neither collides with nor answers
for ours; and our configuration directory, pid file, log, detail file and database are all in the test's
directory, never ``/etc/freeradius``, ``/var/log/freeradius`` or ``/run/freeradius``.

Message-Authenticator (BlastRADIUS, CVE-2024-3596): Debian 12's 3.2.1+dfsg-4+deb12u1 predates the fix
(3.2.5 added ``require_message_authenticator = auto`` and always signs replies).  So both directions are
set here explicitly: every client has ``require_message_authenticator = yes`` (an Access-Request without
one is dropped), and post-auth adds a Message-Authenticator to every Access-Accept and Access-Reject (the
encoder computes it; 3.2.1 would otherwise sign only replies to EAP)."""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import hashlib
import hmac
import ipaddress
import secrets
import signal
import socket
import sqlite3
import struct
import subprocess
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from types import TracebackType

from pypptp.host.netns import run_in_netns

__all__ = [
    "FREERADIUS",
    "IPPOOL_SCHEMA",
    "FreeRadius",
    "RadiusClient",
    "RadiusUser",
    "parse_detail",
    "running",
]

FREERADIUS = "freeradius"
"""Debian's name for radiusd."""
IPPOOL_SCHEMA = Path("/etc/freeradius/3.0/mods-config/sql/ippool/sqlite/schema.sql")
"""The pool table as Debian ships it for rlm_sqlippool (read, never written)."""
DICTDIR = Path("/usr/share/freeradius")
LIBDIR = Path("/usr/lib/freeradius")
PROBE_ADDRESS = "127.0.0.1"
"""The readiness probe's listener: loopback of the namespace, with a client list of its own (see
:meth:`FreeRadius._probe`).  Tests' clients must not be 127.0.0.1 on the auth port."""

ACCESS_ACCEPT, ACCESS_REJECT, STATUS_SERVER = 2, 3, 12
MESSAGE_AUTHENTICATOR = 80
POOL_NETWORK = ipaddress.ip_network("192.168.0.0/16")
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
THREADS = 1
"""radiusd's worker threads (one: see the thread pool section), and as many SQL connections."""


@dataclasses.dataclass(frozen=True)
class RadiusUser:
    """One line of the users file: ``name`` with Cleartext-Password ``password`` and ``reply`` attributes
    (e.g. ``{"Session-Timeout": 3600, "Acct-Interim-Interval": 60, "Class": "gold"}``; ints are written
    bare, strings quoted)."""

    name: str
    password: str
    reply: Mapping[str, str | int] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class RadiusClient:
    """A NAS allowed to talk to the server: ``address`` is an address or a network (``198.18.0.0/24``)."""

    address: str
    secret: str


def _quote(value: str) -> str:
    """A double-quoted FreeRADIUS string (users file, configuration)."""
    if any(ch in value for ch in "\n\r\0"):
        raise ValueError(f"no control characters in a FreeRADIUS string: {value!r}")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _reply_value(value: str | int) -> str:
    return str(value) if isinstance(value, int) else _quote(value)


def parse_detail(text: str) -> list[dict[str, str]]:
    """The records of a detail file: a header line (the time), then ``\\tAttribute = value`` lines, then
    a blank line.  String values lose their quotes; an attribute that repeats keeps its last value."""
    records: list[dict[str, str]] = []
    current: dict[str, str] | None = None
    for line in text.splitlines():
        if not line.strip():
            current = None
        elif not line[0].isspace():
            current = {}
            records.append(current)
        elif current is not None:
            name, _, value = line.strip().partition(" = ")
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
            current[name] = value
    return records


def _sign(packet: bytes, secret: bytes) -> bytes:
    return hmac.new(secret, packet, hashlib.md5).digest()


def status_server_packet(identifier: int, secret: bytes) -> tuple[bytes, bytes]:
    """An RFC 5997 Status-Server with its Message-Authenticator, and its Request Authenticator."""
    authenticator = secrets.token_bytes(16)
    unsigned = struct.pack(
        "!BBH16sBB16s", STATUS_SERVER, identifier, 38, authenticator, MESSAGE_AUTHENTICATOR, 18, bytes(16)
    )
    return unsigned[:22] + _sign(unsigned, secret), authenticator


def check_response(reply: bytes, identifier: int, authenticator: bytes, secret: bytes) -> str | None:
    """``None`` if ``reply`` is an Access-Accept to our request with a valid Response Authenticator and a
    valid Message-Authenticator (RFC 2869 3.2: HMAC-MD5 over the reply with the Request Authenticator in
    place and the attribute zeroed), else what is wrong."""
    if len(reply) < 20:
        return f"short reply ({len(reply)} bytes)"
    code, ident, length = struct.unpack("!BBH", reply[:4])
    if code != ACCESS_ACCEPT or ident != identifier or length != len(reply):
        return f"reply code {code}, id {ident}, length {length} (of {len(reply)})"
    expected = hashlib.md5(reply[:4] + authenticator + reply[20:] + secret).digest()
    if reply[4:20] != expected:
        return "bad Response Authenticator"
    offset = 20
    while offset + 2 <= length:
        kind, size = reply[offset], reply[offset + 1]
        if size < 2:
            return "malformed attribute"
        if kind == MESSAGE_AUTHENTICATOR and size == 18:
            zeroed = reply[:4] + authenticator + reply[20 : offset + 2] + bytes(16) + reply[offset + 18 :]
            return None if _sign(zeroed, secret) == reply[offset + 2 : offset + 18] else "bad Message-Authenticator"
        offset += size
    return "no Message-Authenticator in the reply"


# The SQLite queries of Debian's mods-config/sql/ippool/sqlite/queries.conf, with one fix: in 3.2.1
# allocate_find lacks the AND between its two conditions (a syntax error at the first allocation;
# upstream fixed it in 3.2.2).  Stickiness (allocate_existing: the address a NAS port had before) is
# kept as Debian has it.
SQLIPPOOL_QUERIES = r"""
	allocate_begin = "BEGIN EXCLUSIVE"
	allocate_commit = "COMMIT"
	allocate_existing = "SELECT framedipaddress FROM ${ippool_table} \
		WHERE pool_name = '%{control:${pool_name}}' \
		AND nasipaddress = '%{NAS-IP-Address}' AND pool_key = '${pool_key}' \
		ORDER BY expiry_time DESC LIMIT 1"
	allocate_find = "SELECT framedipaddress FROM ${ippool_table} \
		WHERE pool_name = '%{control:${pool_name}}' AND expiry_time < datetime('now') \
		ORDER BY expiry_time LIMIT 1"
	pool_check = "SELECT id FROM ${ippool_table} WHERE pool_name='%{control:${pool_name}}' LIMIT 1"
	allocate_update = "UPDATE ${ippool_table} SET \
		nasipaddress = '%{NAS-IP-Address}', pool_key = '${pool_key}', \
		callingstationid = '%{Calling-Station-Id}', username = '%{User-Name}', \
		expiry_time = datetime(strftime('%%s', 'now') + ${lease_duration}, 'unixepoch') \
		WHERE framedipaddress = '%I'"
	start_update = "UPDATE ${ippool_table} SET \
		expiry_time = datetime(strftime('%%s', 'now') + ${lease_duration}, 'unixepoch') \
		WHERE nasipaddress = '%{NAS-IP-Address}' AND pool_key = '${pool_key}' \
		AND username = '%{User-Name}' AND callingstationid = '%{Calling-Station-Id}' \
		AND framedipaddress = '%{${attribute_name}}'"
	stop_clear = "UPDATE ${ippool_table} SET expiry_time = datetime('now') \
		WHERE nasipaddress = '%{NAS-IP-Address}' AND pool_key = '${pool_key}' \
		AND username = '%{User-Name}' AND callingstationid = '%{Calling-Station-Id}' \
		AND framedipaddress = '%{${attribute_name}}'"
	alive_update = "UPDATE ${ippool_table} SET \
		expiry_time = datetime(strftime('%%s', 'now') + ${lease_duration}, 'unixepoch') \
		WHERE nasipaddress = '%{NAS-IP-Address}' AND pool_key = '${pool_key}' \
		AND username = '%{User-Name}' AND callingstationid = '%{Calling-Station-Id}' \
		AND framedipaddress = '%{${attribute_name}}'"
	on_clear = "UPDATE ${ippool_table} SET expiry_time = datetime('now') WHERE nasipaddress = '%{NAS-IP-Address}'"
	off_clear = "UPDATE ${ippool_table} SET expiry_time = datetime('now') WHERE nasipaddress = '%{NAS-IP-Address}'"
"""


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the test process dies (PR_SET_PDEATHSIG survives the exec of
    ``ip netns exec`` and its exec of radiusd), so a killed test run leaves no radiusd holding its
    namespace alive."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)


class FreeRadius:
    """``freeradius -f`` in namespace ``netns``, listening on ``address`` (auth and acct ports), with a
    generated configuration in ``workdir``.  A context manager: started on entry, stopped on exit.

    ``pool`` is the first and last address (inclusive, inside 192.168.0.0/16) of sqlippool pool
    ``pool_name``; ``sqlippool=False`` leaves addresses to the NAS (no Framed-IP-Address unless a user's
    reply names one).  The pool's stickiness key is ``pool_key`` (Debian's ``%{NAS-Port}``: with the
    NAS-IP-Address, a NAS port keeps its address).  ``debug=True`` runs ``-X`` (everything a request does,
    in :meth:`log`; only there does 3.2.1 say why it dropped an unsigned Access-Request).

    Besides ``address``, it listens on the namespace's 127.0.0.1 at ``auth_port`` for the readiness probe
    alone (a client list of its own): tests' NAS must not send from there.

    Runs as root: the generated ``security`` section names no user/group (Debian's config switches to
    freerad, which could not read a test's 0700 tmp_path), and every file is root's, mode 0600 (0700 for
    directories), which FreeRADIUS's refusal of world-writable configuration accepts."""

    def __init__(
        self,
        netns: str,
        address: str,
        workdir: Path,
        *,
        users: Iterable[RadiusUser],
        clients: Iterable[RadiusClient],
        pool_name: str = "pptp",
        pool: tuple[str, str] = ("192.168.100.10", "192.168.100.59"),
        sqlippool: bool = True,
        pool_key: str = "%{NAS-Port}",
        auth_port: int = 1812,
        acct_port: int = 1813,
        debug: bool = False,
        ready_timeout: float = 10.0,
    ) -> None:
        self.netns = netns
        self.address = address
        self.workdir = workdir
        self.users = list(users)
        self.clients = list(clients)
        self.pool_name = pool_name
        self.sqlippool = sqlippool
        self.pool_key = pool_key
        self.auth_port = auth_port
        self.acct_port = acct_port
        self.debug = debug
        self.ready_timeout = ready_timeout
        first, last = (ipaddress.IPv4Address(a) for a in pool)
        if not (first in POOL_NETWORK and last in POOL_NETWORK and first <= last):
            raise ValueError(f"pool {pool} must be a range inside {POOL_NETWORK}")
        self.pool_addresses = [str(ipaddress.IPv4Address(n)) for n in range(int(first), int(last) + 1)]
        self.confdir = workdir / "raddb"
        self.log_path = workdir / "radius.log"
        self.output_path = workdir / "radiusd.out"
        self.detail_path = workdir / "detail"
        self.db_path = workdir / "ippool.sqlite"
        self._probe_secret = secrets.token_hex(16)
        self.process: subprocess.Popen[bytes] | None = None
        self.startup_seconds: float | None = None
        self._write_config()
        self._create_pool()

    # -- configuration -------------------------------------------------------------------------

    def _write_config(self) -> None:
        conf = self.confdir
        (conf / "mods-config").mkdir(parents=True, exist_ok=True)
        (conf / "radiusd.conf").write_text(self._radiusd_conf())
        (conf / "users").write_text(self._users_file())
        # radiusd loads ${confdir}/dictionary after the shipped ones when it exists: none of our own.
        for path in conf.rglob("*"):
            path.chmod(0o700 if path.is_dir() else 0o600)

    def _users_file(self) -> str:
        lines = []
        for user in self.users:
            lines.append(f"{_quote(user.name)} Cleartext-Password := {_quote(user.password)}")
            attrs = [f"\t{name} = {_reply_value(value)}" for name, value in user.reply.items()]
            lines.append(",\n".join(attrs) if attrs else "")
            lines.append("")
        return "\n".join(lines) + "\n"

    def _clients(self) -> str:
        out = []
        for n, client in enumerate(self.clients):
            network = ipaddress.ip_network(client.address, strict=False)
            address = str(network.network_address) if network.prefixlen == 32 else str(network)
            out.append(
                f"client nas{n} {{\n\tipaddr = {address}\n\tsecret = {_quote(client.secret)}\n"
                # BlastRADIUS: an Access-Request without Message-Authenticator is discarded.
                "\trequire_message_authenticator = yes\n\tnas_type = other\n}\n"
            )
        return "".join(out)

    def _radiusd_conf(self) -> str:
        d = self.workdir
        pool_control = (
            f"\tupdate control {{\n\t\t&Pool-Name := {_quote(self.pool_name)}\n\t}}\n" if self.sqlippool else ""
        )
        ippool_module = "\t\tsqlippool\n" if self.sqlippool else ""
        sql_modules = ""
        if self.sqlippool:
            sql_modules = f"""
	sql {{
		driver = "rlm_sql_sqlite"
		dialect = "sqlite"
		sqlite {{
			filename = {_quote(str(self.db_path))}
			busy_timeout = 2000
		}}
		read_clients = no
		# As many connections as worker threads: rlm_sql never waits for a free connection ("No
		# connections available and at max connection limit" is an Access-Reject: two NAS logging
		# users in at once reached it with 4 connections for 8 threads).
		pool {{
			start = 1
			min = 1
			max = {THREADS}
			spare = {THREADS - 1}
			uses = 0
			lifetime = 0
			idle_timeout = 0
			retry_delay = 1
		}}
	}}
	sqlippool {{
		sql_module_instance = "sql"
		ippool_table = "radippool"
		pool_name = "Pool-Name"
		lease_duration = 3600
		allocate_clear_timeout = 1
		attribute_name = Framed-IP-Address
		req_attribute_name = Framed-IP-Address
		pool_key = {_quote(self.pool_key)}
{SQLIPPOOL_QUERIES}
		messages {{
			success = "Allocated IP: %{{reply:Framed-IP-Address}} from %{{control:Pool-Name}} (user %{{User-Name}})"
			clear = "Released IP %{{request:Framed-IP-Address}} (nas %{{NAS-IP-Address}} user %{{User-Name}})"
			failed = "IP Allocation FAILED from %{{control:Pool-Name}} (user %{{User-Name}})"
			nopool = "No Pool-Name defined (user %{{User-Name}})"
		}}
	}}
"""
        return f"""# Generated by tests/freeradius.py: a minimal FreeRADIUS for pypptp's RADIUS tests.
prefix = /usr
localstatedir = {d}
confdir = {self.confdir}
raddbdir = {self.confdir}
modconfdir = {self.confdir}/mods-config
logdir = {d}
run_dir = {d}
db_dir = {d}
libdir = {LIBDIR}
dictdir = {DICTDIR}
pidfile = {d}/radiusd.pid
name = freeradius
max_request_time = 10
cleanup_delay = 2
hostname_lookups = no
proxy_requests = no

log {{
	destination = files
	file = {self.log_path}
	colourise = no
	auth = yes
	auth_badpass = yes
	auth_goodpass = no
}}

# No user/group: the server stays root (the test's files are root's, mode 0600; freerad could not read them).
security {{
	allow_core_dumps = no
	max_attributes = 200
	# Access-Reject at once: the default delay of 1 s would only slow the tests.
	reject_delay = 0
	status_server = yes
}}

# One worker thread: with SQLite behind sqlippool, two threads allocating at once (a read, then an
# UPDATE, on two connections) can meet SQLite's lock-upgrade deadlock, which busy_timeout does not wait
# out, or find no free connection (rlm_sql does not wait for one): the request fails in post-auth and
# the user is rejected ("Rejected in post-auth").  A production server would use PostgreSQL or MySQL;
# one thread serialises the requests, as a test server may.
thread pool {{
	start_servers = 1
	max_servers = {THREADS}
	min_spare_servers = 0
	max_spare_servers = 1
	max_requests_per_server = 0
	auto_limit_acct = no
}}

{self._clients()}
# The readiness probe's own client list, on loopback only (see FreeRadius._probe).
clients probe {{
	client probe {{
		ipaddr = {PROBE_ADDRESS}
		secret = {_quote(self._probe_secret)}
		require_message_authenticator = yes
	}}
}}

modules {{
	pap {{
		normalise = yes
	}}
	chap {{
	}}
	mschap {{
		use_mppe = yes
		require_encryption = yes
		require_strong = yes
		pool {{
			start = 0
			min = 0
			max = 1
			spare = 0
			uses = 0
			lifetime = 0
			idle_timeout = 0
			retry_delay = 30
		}}
	}}
	# unlang has no bare return codes in v3: "ok" is this module (Debian's mods-available/always).
	always ok {{
		rcode = ok
	}}
	files {{
		filename = {self.confdir}/users
	}}
	detail {{
		filename = {self.detail_path}
		escape_filenames = no
		permissions = 0600
		header = "%t"
		locking = yes
	}}
{sql_modules}}}

server default {{
	listen {{
		type = auth
		ipaddr = {self.address}
		port = {self.auth_port}
	}}
	listen {{
		type = acct
		ipaddr = {self.address}
		port = {self.acct_port}
	}}
	listen {{
		type = auth
		ipaddr = {PROBE_ADDRESS}
		port = {self.auth_port}
		clients = probe
	}}

	authorize {{
		chap
		mschap
		files
{pool_control}		pap
		# Status-Server skips post-auth: its Access-Accept gets its Message-Authenticator here (RFC 5997
		# requires one; 3.2.1 sends none by itself).
		Autz-Type Status-Server {{
			update reply {{
				&Message-Authenticator := 0x00
			}}
			ok
		}}
	}}

	authenticate {{
		Auth-Type PAP {{
			pap
		}}
		Auth-Type CHAP {{
			chap
		}}
		Auth-Type MS-CHAP {{
			mschap
		}}
	}}

	preacct {{
		files
	}}

	accounting {{
		detail
{ippool_module}	}}

	post-auth {{
{ippool_module}		# BlastRADIUS: 3.2.1 signs only EAP replies; the encoder fills this in.
		update reply {{
			&Message-Authenticator := 0x00
		}}
		Post-Auth-Type REJECT {{
			update reply {{
				&Message-Authenticator := 0x00
			}}
		}}
	}}
}}
"""

    def _create_pool(self) -> None:
        """The radippool table from Debian's schema, one row per address, all free (expired long ago)."""
        if not self.sqlippool:
            return
        self.db_path.unlink(missing_ok=True)
        with contextlib.closing(sqlite3.connect(self.db_path)) as db, db:
            db.executescript(IPPOOL_SCHEMA.read_text())
            db.executemany(
                "INSERT INTO radippool (id, pool_name, framedipaddress, expiry_time) VALUES (?, ?, ?, ?)",
                [(n + 1, self.pool_name, a, "2000-01-01 00:00:00") for n, a in enumerate(self.pool_addresses)],
            )
        self.db_path.chmod(0o600)

    # -- process -------------------------------------------------------------------------------

    def start(self) -> FreeRadius:
        """Start radiusd and wait (``ready_timeout``) until it answers a Status-Server."""
        if self.process is not None and self.process.poll() is None:
            raise RuntimeError("FreeRADIUS is already running")
        argv = [FREERADIUS, "-X" if self.debug else "-f", "-d", str(self.confdir), "-n", "radiusd"]
        begun = time.monotonic()
        with self.output_path.open("ab") as output:
            self.process = subprocess.Popen(
                ["ip", "netns", "exec", self.netns, *argv],
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )
        try:
            self._wait_ready(begun)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - begun
        return self

    def _wait_ready(self, begun: float) -> None:
        deadline = begun + self.ready_timeout
        problem: str | None = "no answer"
        assert self.process is not None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"freeradius exited with status {self.process.returncode}:\n{self.log()}")
            problem = self._probe(timeout=0.2)
            if problem is None:
                return
            time.sleep(0.02)
        raise RuntimeError(
            f"freeradius did not answer a Status-Server within {self.ready_timeout} s ({problem}):\n{self.log()}"
        )

    def _probe(self, timeout: float) -> str | None:
        """One Status-Server to the namespace's loopback listener (same server, same modules, a client
        list of its own so that no test's NAS address is taken): ``None`` if a valid, signed
        Access-Accept came back, else why not."""
        secret = self._probe_secret.encode()
        identifier = secrets.randbelow(256)
        packet, authenticator = status_server_packet(identifier, secret)
        sock = run_in_netns(self.netns, lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
        with sock:
            sock.settimeout(timeout)
            try:
                sock.connect((PROBE_ADDRESS, self.auth_port))  # connected: "refused" comes back at once
                sock.send(packet)
                reply = sock.recv(4096)
            except OSError as exc:  # refused while the port is not yet bound, or timed out
                return str(exc) or type(exc).__name__
        return check_response(reply, identifier, authenticator, secret)

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout``; a no-op when not running."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def __enter__(self) -> FreeRadius:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    # -- what the server wrote -----------------------------------------------------------------

    def log(self) -> str:
        """radiusd's log file and its stdout/stderr (``-X`` output goes there)."""
        parts = []
        for path in (self.log_path, self.output_path):
            if path.exists():
                parts.append(f"--- {path.name}\n{path.read_text(errors='replace')}")
        return "\n".join(parts)

    def accounting_records(self) -> list[dict[str, str]]:
        """Every record of the detail file so far, oldest first (see :func:`parse_detail`)."""
        if not self.detail_path.exists():
            return []
        return parse_detail(self.detail_path.read_text(errors="replace"))

    def wait_accounting(self, count: int, timeout: float = 5.0) -> list[dict[str, str]]:
        """The records once there are at least ``count`` of them (AssertionError with the log if not)."""
        deadline = time.monotonic() + timeout
        while True:
            records = self.accounting_records()
            if len(records) >= count or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        if len(records) < count:
            raise AssertionError(f"{len(records)} accounting records, wanted {count}:\n{self.log()}")
        return records

    def leases(self) -> list[dict[str, str]]:
        """The pool table's rows (all columns, by name), in address order; a row is leased while its
        ``expiry_time`` is in the future (``leased()``)."""
        if not self.sqlippool:
            return []
        with contextlib.closing(sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=5)) as db:
            cursor = db.execute("SELECT * FROM radippool ORDER BY id")
            names = [column[0] for column in cursor.description]
            return [dict(zip(names, map(str, row), strict=True)) for row in cursor.fetchall()]

    def leased(self) -> dict[str, str]:
        """Address -> username of the addresses leased now (expiry in the future, by SQLite's clock)."""
        if not self.sqlippool:
            return {}
        with contextlib.closing(sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=5)) as db:
            rows = db.execute(
                "SELECT framedipaddress, username FROM radippool WHERE expiry_time > datetime('now') ORDER BY id"
            ).fetchall()
        return {address: user for address, user in rows}


def running(server: FreeRadius) -> Iterator[FreeRadius]:
    """A module's shared server for one test, running before and after it (a test that stops it, to see an
    outage, has it back): ``yield from running(server)`` in a function-scoped fixture."""
    if not server.running:
        server.start()
    yield server
    if not server.running:
        server.start()
