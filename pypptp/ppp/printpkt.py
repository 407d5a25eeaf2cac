"""pppd's packet lines for ``debug``: ``[LCP ConfReq id=0x1 <mru 1400> <magic 0x5f2e1c3a>]``, as pppd spells them.

With its ``debug`` option pppd logs every control packet it sends or receives
as ``sent [...]`` or ``rcvd [...]`` (``main.c`` dump_packet, ``utils.c``
format_packet); these are the lines admins paste into forum questions, and
the ones they compare with a working server's.  :func:`format_packet` spells
the bracketed part the same way, from the print functions of pppd 2.4.9/2.5
(``lcp.c`` lcp_printpkt, ``upap.c``, ``chap.c`` chap_print_pkt, ``ipcp.c``,
``ipv6cp.c``, ``ccp.c``, ``eap.c``; read for the format only):

* a control protocol: its name, the code's name (``code=0x..`` for an unknown
  one), ``id=0x..``, then what the code carries: each option in ``<...>`` (an
  option pppd does not know, or of a wrong length, as ``< 0d 03 06>``: its
  bytes in hex), a Terminate-Request's text in quotes, an Echo's magic;
  leftover bytes in hex (LCP: 32 at most, then `` ...``);
* a packet whose length field does not fit: ``[LCP]`` and its bytes in hex;
* a data protocol: ``[IP data]`` and 8 bytes; any other: ``[proto=0x8057]``
  and 32 bytes, then `` ...``.

Deliberate differences, on malformed input only: an ``ms-dns``/``ms-wins``
option shorter than 6 bytes is shown in hex (pppd reads past it); an EAP
packet shows its type and the Identity/Notification message, other types'
data in hex.  pppd's debug buffer holds 1023 characters; a line is cut at
:data:`MAX_TEXT` characters the same way, so a hostile 1500-byte packet
gives one bounded line.  Never raises on any input.
"""

from __future__ import annotations

from collections.abc import Callable
from ipaddress import IPv4Address

__all__ = ["MAX_TEXT", "format_packet", "print_string"]

MAX_TEXT = 1000
"""Characters of one packet's text at most (pppd cuts its whole line at 1023)."""

_Out = list[str]
_OptionPrinter = Callable[[int, bytes], tuple[str, int]]
"""(option type, the option's bytes, header included) -> (text, bytes of it the text used); the rest of
the option follows in hex.  ("", 0): unknown, all of it in hex."""


def format_packet(protocol: int, information: bytes | bytearray | memoryview) -> str:
    """The text pppd logs after ``sent `` or ``rcvd `` for a frame of ``protocol`` carrying ``information``."""
    data = bytes(information)
    out: _Out = []
    entry = _PROTOCOLS.get(protocol)
    rest = data
    if entry is not None:
        name, printer = entry
        out.append("[" + name)
        used = printer(data, out)
        out.append("]")
        rest = data[used:]
    elif protocol | 0x8000 in _DATA_NAMES:
        out.append(f"[{_DATA_NAMES[protocol | 0x8000]} data]")
        out.append(_hex(data[:8]) + (" ..." if len(data) > 8 else ""))
        rest = b""
    else:
        out.append(f"[proto=0x{protocol:x}]")
    if rest:
        out.append(_hex(rest[:32]) + (" ..." if len(rest) > 32 else ""))
    text = "".join(out)
    return text[:MAX_TEXT]


def print_string(data: bytes) -> str:
    """pppd's ``print_string``: in double quotes; ``\\`` and ``"`` escaped, ``\\n``, ``\\r``, ``\\t``, other
    bytes outside printable ASCII as three octal digits (``\\377``)."""
    out = ['"']
    for c in data[:MAX_TEXT]:  # (the line is cut there anyway)
        if 0x20 <= c <= 0x7E:
            out.append("\\" + chr(c) if c in (0x5C, 0x22) else chr(c))
        else:
            out.append(_STRING_ESCAPES.get(c) or f"\\{c:03o}")
    out.append('"')
    return "".join(out)


_STRING_ESCAPES = {0x0A: "\\n", 0x0D: "\\r", 0x09: "\\t"}


def _hex(data: bytes) -> str:
    return "".join(f" {c:02x}" for c in data)


def _header(data: bytes, names: tuple[str | None, ...], out: _Out) -> tuple[int, int] | None:
    """Code and length of a control packet, with `` Name id=0x..`` written; None (nothing written) when
    the packet is shorter than its header or its length field does not fit."""
    if len(data) < 4:
        return None
    code, ident, length = data[0], data[1], int.from_bytes(data[2:4], "big")
    if length < 4 or length > len(data):
        return None
    name = names[code - 1] if 1 <= code <= len(names) else None
    out.append(f" {name}" if name is not None else f" code=0x{code:x}")
    out.append(f" id=0x{ident:x}")
    return code, length


def _options(data: bytes, start: int, end: int, option: _OptionPrinter, out: _Out) -> int:
    """The option list from ``start``: each as `` <text hex>``; where the list stops making sense (a length
    below 2 or past the end), the offset of the rest."""
    i = start
    while end - i >= 2:
        kind, length = data[i], data[i + 1]
        if length < 2 or length > end - i:
            break
        raw = data[i : i + length]
        text, used = option(kind, raw) if len(out) < MAX_TEXT else ("", 0)
        out.append(" <" + text + _hex(raw[used:]) + ">")
        i += length
    return i


def _terminate_text(data: bytes, i: int, end: int, out: _Out, space: str = " ") -> int:
    """A Terminate-Request's or -Ack's data, as a string when its first byte is printable."""
    if i < end and 0x20 <= data[i] < 0x7F:
        out.append(space + print_string(data[i:end]))
        return end
    return i


def _address(raw: bytes, at: int) -> str:
    return str(IPv4Address(raw[at : at + 4]))


# -- LCP ------------------------------------------------------------------------------------------

_LCP_CODES = (
    "ConfReq",
    "ConfAck",
    "ConfNak",
    "ConfRej",
    "TermReq",
    "TermAck",
    "CodeRej",
    "ProtRej",
    "EchoReq",
    "EchoRep",
    "DiscReq",
    "Ident",
    "TimeRem",
)
_CHAP_ALGORITHMS = {5: " MD5", 0x80: " MS", 0x81: " MS-v2"}
_ENDPOINT_CLASSES = ("null", "local", "IP", "MAC", "magic", "phone")


def _lcp_option(kind: int, raw: bytes) -> tuple[str, int]:
    length = len(raw)
    if kind == 1 and length == 4:
        return f"mru {int.from_bytes(raw[2:4], 'big')}", 4
    if kind == 2 and length == 6:
        return f"asyncmap 0x{int.from_bytes(raw[2:6], 'big'):x}", 6
    if kind == 3 and length >= 4:
        protocol = int.from_bytes(raw[2:4], "big")
        if protocol == 0xC023:
            return "auth pap", 4
        if protocol == 0xC223:
            algorithm = _CHAP_ALGORITHMS.get(raw[4]) if length > 4 else None
            return ("auth chap" + algorithm, 5) if algorithm else ("auth chap", 4)
        if protocol == 0xC227:
            return "auth eap", 4
        return f"auth 0x{protocol:x}", 4
    if kind == 4 and length >= 4:
        protocol = int.from_bytes(raw[2:4], "big")
        return ("quality lqr" if protocol == 0xC025 else f"quality 0x{protocol:x}"), 4
    if kind == 13 and length >= 3:
        return ("callback CBCP" if raw[2] == 6 else f"callback 0x{raw[2]:x}"), 3
    if kind == 5 and length == 6:
        return f"magic 0x{int.from_bytes(raw[2:6], 'big'):x}", 6
    if kind in (7, 8, 18) and length == 2:
        return {7: "pcomp", 8: "accomp", 18: "ssnhf"}[kind], 2
    if kind == 17 and length == 4:
        return f"mrru {int.from_bytes(raw[2:4], 'big')}", 4
    if kind == 19 and length >= 3:
        value = raw[3 : 3 + 20]  # pppd keeps 20 bytes of a discriminator
        return f"endpoint [{_endpoint(raw[2], value)}]", 3 + len(value)
    return "", 0


def _endpoint(klass: int, value: bytes) -> str:
    """pppd's ``epdisc_to_str``: ``local:01.02``, ``IP:198.18.0.1``, ``MAC:00:11:...``, ``magic:0a0b0c0d``."""
    if klass == 0 and not value:
        return "null"
    if klass == 2 and len(value) == 4:
        return f"IP:{IPv4Address(value)}"
    separator, every = ".", 1
    if klass == 3 and len(value) == 6:
        separator = ":"
    elif klass == 4 and len(value) % 4 == 0:
        every = 4
    out = [_ENDPOINT_CLASSES[klass] if klass < len(_ENDPOINT_CLASSES) else str(klass)]
    for i, c in enumerate(value):
        if i % every == 0:
            out.append(":" if i == 0 else separator)
        out.append(f"{c:02x}")
    return "".join(out)


def _lcp(data: bytes, out: _Out) -> int:
    header = _header(data, _LCP_CODES, out)
    if header is None:
        return 0
    code, end = header
    i = 4
    if code in (1, 2, 3, 4):
        i = _options(data, i, end, _lcp_option, out)
    elif code in (5, 6):
        i = _terminate_text(data, i, end, out)
    elif code in (9, 10, 11, 12, 13):
        if end - i >= 4:
            out.append(f" magic=0x{int.from_bytes(data[i : i + 4], 'big'):x}")
            i += 4
        if code == 13 and end - i >= 4:
            out.append(f" seconds={int.from_bytes(data[i : i + 4], 'big')}")
            i += 4
        elif code == 13:  # pppd stops there: the rest in hex
            code = 0
        if code in (12, 13) and i < end:
            out.append(" " + print_string(data[i:end]))
            i = end
    _rest(data, i, end, out, 32)
    return end


def _rest(data: bytes, i: int, end: int, out: _Out, limit: int | None = None) -> int:
    """The packet's bytes from ``i`` to ``end`` in hex (``limit`` of them at most, then `` ...``)."""
    if limit is not None and end - i > limit:
        out.append(_hex(data[i : i + limit]) + " ...")
    elif i < end:
        out.append(_hex(data[i : min(end, i + MAX_TEXT // 3 + 1)]))  # (the line is cut there anyway)
    return end


# -- PAP, CHAP, EAP --------------------------------------------------------------------------------


def _pap(data: bytes, out: _Out) -> int:
    header = _header(data, ("AuthReq", "AuthAck", "AuthNak"), out)
    if header is None:
        return 0
    code, end = header
    i = 4
    if code == 1 and end - i >= 1:
        user = data[i]
        if end - i >= user + 2:
            secret = data[i + user + 1]
            if end - i >= user + secret + 2:
                out.append(" user=" + print_string(data[i + 1 : i + 1 + user]) + " password=<hidden>")
                i += user + secret + 2
    elif code in (2, 3) and end - i >= 1 and end - i >= data[i] + 1:
        out.append(" " + print_string(data[i + 1 : i + 1 + data[i]]))
        i += data[i] + 1
    return _rest(data, i, end, out)


def _chap(data: bytes, out: _Out) -> int:
    header = _header(data, ("Challenge", "Response", "Success", "Failure"), out)
    if header is None:
        return 0
    code, end = header
    if code in (1, 2):
        if end > 4 and end - 4 >= data[4] + 1:
            value_end = 5 + data[4]
            out.append(f" <{data[5:value_end].hex()}>, name = " + print_string(data[value_end:end]))
    elif code in (3, 4):
        out.append(" " + print_string(data[4:end]))
    else:
        out.append(_hex(data[4:end]))
    return end


_EAP_TYPES = (
    "Identity",
    "Notification",
    "Nak",
    "MD5-Challenge",
    "OTP",
    "Generic-Token",
    None,
    None,
    "RSA",
    "DSS",
    "KEA",
    "KEA-Validate",
    "TLS",
    "Defender",
    "Windows 2000",
    "Arcot",
    "Cisco",
    "Nokia",
    "SRP",
    None,
    "TTLS",
    "RAS",
    "AKA",
    "3COM",
    "PEAP",
    "MSCHAPv2",
)


def _eap(data: bytes, out: _Out) -> int:
    if len(data) < 4:
        return 0
    code, ident, end = data[0], data[1], int.from_bytes(data[2:4], "big")
    names = ("Request", "Response", "Success", "Failure")
    out.append(f" {names[code - 1]}" if 1 <= code <= 4 else f" code=0x{code:x}")
    out.append(f" id=0x{ident:x}")
    if end < 4 or end > len(data):
        out.append(f" <bad length={end}>")
        return 0
    i = 4
    if code in (1, 2):
        if i >= end:
            out.append(" <missing type>")
        else:
            kind = data[i]
            i += 1
            name = _EAP_TYPES[kind - 1] if 1 <= kind <= len(_EAP_TYPES) else None
            out.append(f" {name}" if name is not None else f" type=0x{kind:x}")
            if kind in (1, 2):
                out.append(" <Message " + print_string(data[i:end]) + ">" if i < end else " <No message>")
                i = end
    if end - i > 8:
        out.append(_hex(data[i : i + 8]) + "...")
    elif i < end:
        out.append(_hex(data[i:end]))
    return end


# -- IPCP, IPV6CP, CCP --------------------------------------------------------------------------------

_NCP_CODES = ("ConfReq", "ConfAck", "ConfNak", "ConfRej", "TermReq", "TermAck", "CodeRej")
_CCP_CODES = (*_NCP_CODES, None, None, None, None, None, None, "ResetReq", "ResetAck")


def _ipcp_option(kind: int, raw: bytes) -> tuple[str, int]:
    length = len(raw)
    if kind == 1 and length == 10:
        return f"addrs {_address(raw, 2)} {_address(raw, 6)}", 10
    if kind == 2 and length >= 4:
        protocol = int.from_bytes(raw[2:4], "big")
        return "compress " + {0x2D: "VJ", 0x37: "old-VJ"}.get(protocol, f"0x{protocol:x}"), 4
    if kind == 3 and length == 6:
        return f"addr {_address(raw, 2)}", 6
    if kind in (129, 131) and length >= 6:
        return f"ms-dns{1 if kind == 129 else 2} {_address(raw, 2)}", 6
    if kind in (130, 132) and length >= 6:
        return f"ms-wins {_address(raw, 2)}", 6
    return "", 0


def _ipv6cp_option(kind: int, raw: bytes) -> tuple[str, int]:
    if kind == 2 and len(raw) >= 4:
        return f"compress 0x{int.from_bytes(raw[2:4], 'big'):x}", 4
    if kind == 1 and len(raw) == 10:
        return "addr fe80::" + ":".join(raw[i : i + 2].hex() for i in range(2, 10, 2)), 10
    return "", 0


def _ccp_option(kind: int, raw: bytes) -> tuple[str, int]:
    length = len(raw)
    if kind == 18 and length >= 6:
        bits = raw[5]
        flags = [("+H" if raw[2] & 0x01 else "-H")]
        flags += [("+" if bits & bit else "-") + letter for bit, letter in _MPPE_BITS]
        text = "mppe " + " ".join(flags)
        if raw[2] & ~0x01 or raw[3] or raw[4] or bits & ~0xF1:
            text += f" +U ({raw[2]:02x} {raw[3]:02x} {raw[4]:02x} {raw[5]:02x})"
        return text, 6
    if kind in (24, 26) and length >= 4:
        text = f"deflate{'(old#)' if kind == 24 else ''} {(raw[2] >> 4) + 8}"
        if raw[2] & 0x0F != 8:
            text += f" method {raw[2] & 0x0F}"
        if raw[3] != 0:
            text += f" check {raw[3]}"
        return text, 4
    if kind == 21 and length >= 3:
        return f"bsd v{raw[2] >> 5} {raw[2] & 0x1F}", 3
    if kind in (1, 2) and length >= 2:
        return f"predictor {kind}", 2
    return "", 0


_MPPE_BITS = ((0x80, "M"), (0x40, "S"), (0x20, "L"), (0x10, "D"), (0x01, "C"))


def _control(
    names: tuple[str | None, ...], option: _OptionPrinter, *, text_space: str = " "
) -> Callable[[bytes, _Out], int]:
    """The printer of an NCP: options for Configure-*, the text of Terminate-*, the rest in hex."""

    def printer(data: bytes, out: _Out) -> int:
        header = _header(data, names, out)
        if header is None:
            return 0
        code, end = header
        i = 4
        if code in (1, 2, 3, 4):
            i = _options(data, i, end, option, out)
        elif code in (5, 6):
            i = _terminate_text(data, i, end, out, text_space)
        return _rest(data, i, end, out)

    return printer


def _nothing(data: bytes, out: _Out) -> int:
    """ECP: pppd prints nothing of it (``[ECP]`` and its bytes in hex)."""
    return 0


_PROTOCOLS: dict[int, tuple[str, Callable[[bytes, _Out], int]]] = {
    0xC021: ("LCP", _lcp),
    0xC023: ("PAP", _pap),
    0xC223: ("CHAP", _chap),
    0x8021: ("IPCP", _control(_NCP_CODES, _ipcp_option)),
    0x8057: ("IPV6CP", _control(_NCP_CODES, _ipv6cp_option)),
    0x80FD: ("CCP", _control(_CCP_CODES, _ccp_option, text_space="")),  # pppd writes no space there
    0x8053: ("ECP", _nothing),
    0xC227: ("EAP", _eap),
}
"""pppd's ``protocols[]``: number -> (name, printer returning the bytes it accounted for; 0: none)."""

_DATA_NAMES = {0x8021: "IP", 0x8057: "IPV6", 0x80FD: "Compressed", 0x8053: "Encrypted"}
"""The data protocols of those (number | 0x8000), as pppd names them: ``[IP data]``."""
