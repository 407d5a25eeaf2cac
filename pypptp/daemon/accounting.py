"""What accounting and audit scripts read: the session summary line and the names written to wtmp.

Every session ends with one line, in the session's voice (``pppd[PID]``), after pppd's lines and
``session ended: REASON``::

    session summary: user="alice" peer=198.18.0.2 ip=192.168.0.234 if=ppp0 duration=12.3s sent=1234
    received=5678 reason="LCP terminated by peer"

(one line, folded here), always these keys in this order, so that a script can match the line with
one regular expression or split it on spaces outside the quotes:

* ``user``: the name the peer authenticated with (without ``DOMAIN\\`` under ``chapms-strip-domain``,
  as pppd's PEERNAME), ``""`` when it never did: a session that did not authenticate gets its line
  too, for the audit trail (a failed login's name is in pppd's ``Peer NAME failed ...`` line);
* ``peer``: the client's address, the one its TCP connection came from;
* ``ip`` and ``if``: the client's tunnel address and the ``pppN`` interface, ``-`` until the peer
  authenticated (they are given then);
* ``duration``: seconds from the call (Outgoing-Call-Reply) to the end, a tenth of a second
  precise; pppd's ``Connect time`` line and ``last`` count from the network's start instead;
* ``sent``, ``received``: the IP bytes into and out of the tunnel, pppd's ``Sent ... received ...``
  figures (``BYTES_SENT``/``BYTES_RCVD`` for ip-down), exact (never wrapped at 4 GiB);
* ``reason``: why the session ended, the text of ``session ended: REASON``.

Names are the peer's choice: :func:`escaped` keeps every value on one line and within its quotes
(``\\``, ``"``, spaces and whatever is not printable become ``\\\\``, ``\\"``, ``\\x20``, ``\\xHH`` or
``\\uHHHH``; a byte that was not UTF-8 shows as ``\\xHH``).  The wtmp user name (:func:`wtmp_user`)
is escaped the same way, so that ``last`` prints one column for it and nothing a terminal obeys.
"""

from __future__ import annotations

from pypptp.ppp.auth import MAX_NAME_CHARS

__all__ = ["escaped", "summary_line", "wtmp_user"]


def escaped(text: str, *, spaces: bool = True) -> str:
    """``text`` with ``\\`` and ``"`` backslashed and every character that is not printable (with
    ``spaces``, a space too) as ``\\xHH`` or ``\\uHHHH``: no newline, no control character, no quote
    left to end a quoted value early."""
    out = []
    for c in text:
        code = ord(c)
        if c in '\\"':
            out.append("\\" + c)
        elif c.isprintable() and (c != " " or not spaces):
            out.append(c)
        elif 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8 (surrogateescape): the byte
            out.append(f"\\x{code - 0xDC00:02x}")
        else:
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
    return "".join(out)


def wtmp_user(name: str, strip_domain: bool) -> str:
    """The name written to wtmp's ``ut_user`` (cut to 32 bytes by the record), and the summary's
    ``user``: the peer's, without ``DOMAIN\\`` under ``chapms-strip-domain``, escaped."""
    if strip_domain:
        name = name.rpartition("\\")[2]
    return escaped(name[:MAX_NAME_CHARS])


def summary_line(
    *,
    user: str,
    strip_domain: bool,
    peer: str,
    ip: str | None,
    ifname: str | None,
    duration: float,
    sent: int,
    received: int,
    reason: str,
) -> str:
    """The session's summary line (see the module's docstring); ``user`` as the peer sent it ("" if
    it never authenticated), ``ip``/``ifname`` None before authentication."""
    return (
        f'session summary: user="{wtmp_user(user, strip_domain)}" peer={escaped(peer)} ip={ip or "-"} '
        f"if={ifname or '-'} duration={max(0.0, duration):.1f}s sent={sent} received={received} "
        f'reason="{escaped(reason, spaces=False)}"'
    )
