"""pppd's standard log lines, word for word, for the tools and habits that read them.

Admins grep for these lines, log watchers and fail2ban filters match them, and
accounting scripts take the byte counts from them; a drop-in replacement has
to write them the same way.  Each function returns one line as pppd formats it
(from pppd 2.4.x/2.5.x ``main.c``, ``auth.c``, ``ipcp.c``, ``ccp.c``, ``fsm.c``,
``lcp.c``, ``upap.c`` and ``chap-new.c``; the text was read for behaviour only).
pppd's ``%I`` is a dotted quad, ``%q`` and ``%v`` are :func:`quoted` and
:func:`visible`.  Under pptpd, pppd's tty is the pty pptpctrl gave it
(``/dev/pts/N``); we have none, see :mod:`pypptp.daemon.scripts` for the name we use.

This module only spells the lines; it imports no logging, so the sans-IO PPP engine
(:mod:`~pypptp.ppp.link`, :mod:`~pypptp.ppp.chap`, :mod:`~pypptp.ppp.pap`) writes its lines with it,
and so do the daemon's manager and scripts.  How they reach syslog, pppd's ``logfile`` and the log
thread is :mod:`pypptp.daemon.logs`.

=========================================================  =======  ====================================================
Line (example)                                             Level    When pppd writes it (source)
=========================================================  =======  ====================================================
``pppd 2.4.9 started by root, uid 0``                      notice   start-up; syslog only, never the ``logfile``
                                                                    (``main.c`` main)
``Using interface ppp0``                                   info     the ppp unit exists (``main.c`` set_ifunit)
``Connect: ppp0 <--> /dev/pts/1``                          notice   the device is attached, LCP starts
                                                                    (``auth.c`` start_link)
``Peer alice failed CHAP authentication``                  warn     wrong CHAP/MS-CHAP response (``chap-new.c``)
``CHAP peer authentication succeeded for alice``           notice   right CHAP/MS-CHAP response, server side
                                                                    (``chap-new.c``)
``PAP peer authentication succeeded for alice``            notice   PAP, server side (``upap.c``); ``failed`` on a
                                                                    wrong password (warn)
``MPPE 128-bit stateless compression enabled``             notice   CCP opened, same method both ways (``ccp.c``
                                                                    ccp_up and method_name)
``local  IP address 192.168.0.1``                          notice   IPCP up (``ipcp.c`` ipcp_up); two spaces after
                                                                    ``local`` so the addresses line up
``remote IP address 192.168.0.234``                        notice   IPCP up, when the peer has an address
``Peer is not authorized to use remote address 10.0.0.9``  error    IPCP: chap-secrets does not allow the peer's
                                                                    address (``ipcp.c`` ipcp_up)
``primary   DNS address 8.8.8.8``                          notice   IPCP up, DNS servers the *peer* gave us
``secondary DNS address 8.8.4.4``                          notice   (``usepeerdns``: a client; a server's ``ms-dns``
                                                                    values are never logged this way)
``LCP terminated by peer (...)``                           info     Terminate-Request received while Opened
                                                                    (``fsm.c`` fsm_rtermreq; the reason in ``%v``)
``No response to 4 echo-requests``                         info     LCP echo keepalive gave up (``lcp.c``), followed by
``Serial link appears to be disconnected.``                notice   this line
``Connect time 1.2 minutes.``                              info     IPCP down, and at link end if not printed yet
``Sent 123 bytes, received 456 bytes.``                    info     (``main.c`` print_link_stats, once per link)
``Modem hangup``                                           notice   EOF on the device: under pptpd, pptpctrl closed
                                                                    the pty (call cleared, TCP gone) (``main.c``)
``Connection terminated.``                                 notice   the link is down for good (``auth.c``
                                                                    link_terminated)
``Terminating on signal 15``                               info     SIGTERM/SIGINT received (``main.c``)
``Hangup (SIGHUP)``                                        info     SIGHUP received (``main.c``)
``Can't execute /etc/ppp/ip-up: Invalid argument``         warn     a script exists but is not an executable file
                                                                    (``main.c`` run_program, errno preset to EINVAL); a
                                                                    missing one is skipped silently
``Child process /etc/ppp/ip-up (pid 42) terminated with    warn     a script died of a signal (``main.c``
signal 15``                                                         forget_child)
``Script /etc/ppp/ip-up finished (pid 42), status = 0x1``  debug    a script exited (``main.c`` forget_child)
``Exit.``                                                  info     pppd exits; syslog only (``main.c`` die)
=========================================================  =======  ====================================================

Typical order at the end of a pptpd session that the client hangs up:
``LCP terminated by peer``, ``Connect time``, ``Sent``, ``Modem hangup``,
``Connection terminated.``, ``Exit.``.
"""

from __future__ import annotations

from ipaddress import IPv4Address

__all__ = [
    "bytes_transferred",
    "cannot_execute",
    "chap_peer_succeeded",
    "child_signalled",
    "compression_enabled",
    "connect",
    "connect_time",
    "connection_terminated",
    "echo_failure",
    "exit_line",
    "hangup",
    "hangup_signal",
    "link_disconnected",
    "link_stats",
    "local_ip",
    "mppe_method",
    "pap_peer_failed",
    "pap_peer_succeeded",
    "peer_failed_chap",
    "peer_not_authorized",
    "primary_dns",
    "quoted",
    "remote_ip",
    "script_finished",
    "secondary_dns",
    "started",
    "terminated_by_peer",
    "terminating_on_signal",
    "using_interface",
    "visible",
]

Address = IPv4Address | str


# -- pppd's %q and %v ----------------------------------------------------------------------------


def quoted(text: str | bytes) -> str:
    """pppd's ``%q``: no quotes around it; ``"`` and ``\\`` get a backslash, control characters and
    bytes 0x7f-0x9f become ``\\t``, ``\\n``, ``\\b``, ``\\f`` or ``\\xHH``; other bytes pass as they are."""
    data = text.encode("utf-8", "surrogateescape") if isinstance(text, str) else text
    out = bytearray()
    for c in data:
        if c in (0x22, 0x5C):
            out += b"\\" + bytes((c,))
        elif c < 0x20 or 0x7F <= c < 0xA0:
            out += _ESCAPES.get(c) or b"\\x%02x" % c
        else:
            out.append(c)
    return out.decode("utf-8", "backslashreplace")


_ESCAPES = {0x09: b"\\t", 0x0A: b"\\n", 0x08: b"\\b", 0x0C: b"\\f"}


def visible(data: bytes) -> str:
    """pppd's ``%v``: bytes from 0x80 up as ``M-`` and the low 7 bits; control characters as ``^X``
    (DEL as ``^?``); a tab stays a tab."""
    out = []
    for c in data:
        if c >= 0x80:
            out.append("M-")
            c -= 0x80
        if c == 0x09:
            out.append("\t")
        elif c < 0x20 or c == 0x7F:
            out.append("^" + chr(c ^ 0x40))
        else:
            out.append(chr(c))
    return "".join(out)


# -- the lines ------------------------------------------------------------------------------------


def started(version: str, user: str, uid: int) -> str:
    return f"pppd {version} started by {user}, uid {uid}"


def using_interface(ifname: str) -> str:
    return f"Using interface {ifname}"


def connect(ifname: str, device: str) -> str:
    return f"Connect: {ifname} <--> {device}"


def peer_failed_chap(name: str | bytes) -> str:
    return f"Peer {quoted(name)} failed CHAP authentication"


def chap_peer_succeeded(name: str | bytes) -> str:
    return f"CHAP peer authentication succeeded for {quoted(name)}"


def pap_peer_succeeded(name: str | bytes) -> str:
    return f"PAP peer authentication succeeded for {quoted(name)}"


def pap_peer_failed(name: str | bytes) -> str:
    return f"PAP peer authentication failed for {quoted(name)}"


def mppe_method(bits: int, stateful: bool) -> str:
    """pppd's name for an MPPE variant: ``MPPE 128-bit stateless``.

    pppd names only 128 and 40 bits (it never negotiates 56); 56 follows the same pattern here.
    """
    return f"MPPE {bits}-bit {'stateful' if stateful else 'stateless'}"


def compression_enabled(receive_method: str | None, transmit_method: str | None) -> str:
    """pppd's ``ccp_up`` line: ``MPPE 128-bit stateless compression enabled`` when both directions use
    the same method, ``RECEIVE / TRANSMIT compression enabled`` when they differ, and ``... receive
    compression enabled`` or ``... transmit compression enabled`` when only one direction compresses
    (MPPE optional, and the peer asked for it one way only)."""
    if receive_method is not None and transmit_method is not None:
        if receive_method == transmit_method:
            return f"{receive_method} compression enabled"
        return f"{receive_method} / {transmit_method} compression enabled"
    if receive_method is not None:
        return f"{receive_method} receive compression enabled"
    return f"{transmit_method} transmit compression enabled"


def local_ip(address: Address) -> str:
    return f"local  IP address {address}"


def remote_ip(address: Address) -> str:
    return f"remote IP address {address}"


def peer_not_authorized(address: Address) -> str:
    return f"Peer is not authorized to use remote address {address}"


def primary_dns(address: Address) -> str:
    return f"primary   DNS address {address}"


def secondary_dns(address: Address) -> str:
    return f"secondary DNS address {address}"


def terminated_by_peer(protocol: str = "LCP", reason: bytes = b"") -> str:
    """``LCP terminated by peer``, with the Terminate-Request's data in parentheses when it has any."""
    if reason:
        return f"{protocol} terminated by peer ({visible(reason)})"
    return f"{protocol} terminated by peer"


def echo_failure(unanswered: int) -> str:
    return f"No response to {unanswered} echo-requests"


def link_disconnected() -> str:
    return "Serial link appears to be disconnected."


def connect_time(seconds: float) -> str:
    """``Connect time 1.2 minutes.``: pppd counts whole seconds and rounds up to a tenth of a minute."""
    tenths = (int(max(0.0, seconds)) + 5) // 6
    return f"Connect time {tenths // 10}.{tenths % 10} minutes."


def bytes_transferred(sent: int, received: int) -> str:
    """``Sent 123 bytes, received 456 bytes.`` (pppd 2.4 printed 32-bit counters that wrap at 4 GiB;
    the exact counts are given here)."""
    return f"Sent {sent} bytes, received {received} bytes."


def link_stats(seconds: float, sent: int, received: int) -> tuple[str, str]:
    """The two lines pppd prints once per link: :func:`connect_time`, :func:`bytes_transferred`."""
    return connect_time(seconds), bytes_transferred(sent, received)


def hangup() -> str:
    return "Modem hangup"


def connection_terminated() -> str:
    return "Connection terminated."


def terminating_on_signal(signal_number: int) -> str:
    return f"Terminating on signal {signal_number}"


def hangup_signal() -> str:
    return "Hangup (SIGHUP)"


def cannot_execute(path: str, reason: str) -> str:
    return f"Can't execute {path}: {reason}"


def child_signalled(program: str, pid: int, signal_number: int) -> str:
    return f"Child process {program} (pid {pid}) terminated with signal {signal_number}"


def script_finished(program: str, pid: int, status: int) -> str:
    return f"Script {program} finished (pid {pid}), status = {status:#x}"


def exit_line() -> str:
    return "Exit."
