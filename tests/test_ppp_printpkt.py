"""pppd's debug packet lines (:mod:`pypptp.ppp.printpkt`), against the text pppd's print functions produce.

The expected strings follow pppd's ``lcp_printpkt``, ``ipcp_printpkt``, ``ccp_printpkt``,
``chap_print_pkt``, ``upap_printpkt`` and ``format_packet``, option by option; the link test checks that
a whole negotiation is logged with them, in order, only at debug, bounded under a flood.
"""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from pypptp.ppp.frame import Protocol, encode_frame
from pypptp.ppp.link import PACKET_LINE_BURST, LinkLog, PppLink
from pypptp.ppp.packet import ControlPacket
from pypptp.ppp.printpkt import MAX_TEXT, format_packet, print_string
from tests import fixtures
from tests.test_ppp_link import SECRETS, client_config, counter32, of, rng_bytes, server_config
from tests.test_ppp_log_bounds import negotiate


def packet(code: int, identifier: int, data: bytes = b"") -> bytes:
    return ControlPacket(code, identifier, data).encode()


def options(*items: tuple[int, bytes]) -> bytes:
    return b"".join(bytes((kind, len(value) + 2)) + value for kind, value in items)


LCP_REQUEST = options(
    (1, (1400).to_bytes(2, "big")),
    (2, bytes(4)),
    (3, b"\xc2\x23\x81"),
    (5, bytes.fromhex("5f2e1c3a")),
    (7, b""),
    (8, b""),
)


def lcp(code: int, identifier: int, data: bytes = b"") -> str:
    return format_packet(Protocol.LCP, packet(code, identifier, data))


def test_lcp() -> None:
    assert (
        format_packet(Protocol.LCP, packet(1, 1, LCP_REQUEST))
        == "[LCP ConfReq id=0x1 <mru 1400> <asyncmap 0x0> <auth chap MS-v2> <magic 0x5f2e1c3a> <pcomp> <accomp>]"
    )
    windows = options((13, b"\x06"), (17, (1614).to_bytes(2, "big")), (19, b"\x01" + bytes(range(1, 5))))
    assert (
        format_packet(Protocol.LCP, packet(1, 0, windows))
        == "[LCP ConfReq id=0x0 <callback CBCP> <mrru 1614> <endpoint [local:01.02.03.04]>]"
    )
    assert (
        format_packet(Protocol.LCP, packet(4, 0, options((13, b"\x06"))))[-24:]
        == "ConfRej id=0x0 <callback CBCP>]"[-24:]
    )
    # unknown option, or a known one of a wrong length: its bytes in hex
    assert format_packet(Protocol.LCP, packet(1, 2, options((99, b"\x01"), (1, b"\x05")))) == (
        "[LCP ConfReq id=0x2 < 63 03 01> < 01 03 05>]"
    )
    assert format_packet(Protocol.LCP, packet(3, 3, options((3, b"\xc2\x23\x05")))) == (
        "[LCP ConfNak id=0x3 <auth chap MD5>]"
    )
    assert format_packet(Protocol.LCP, packet(5, 2, b"User request")) == '[LCP TermReq id=0x2 "User request"]'
    assert format_packet(Protocol.LCP, packet(6, 2)) == "[LCP TermAck id=0x2]"
    assert lcp(9, 0, bytes.fromhex("12345678")) == "[LCP EchoReq id=0x0 magic=0x12345678]"
    assert lcp(10, 7, bytes.fromhex("0000000a")) == "[LCP EchoRep id=0x7 magic=0xa]"
    assert lcp(8, 1, bytes.fromhex("8057010100")) == "[LCP ProtRej id=0x1 80 57 01 01 00]"
    assert format_packet(Protocol.LCP, packet(12, 1, bytes(4) + b"MSRASV5.20")) == (
        '[LCP Ident id=0x1 magic=0x0 "MSRASV5.20"]'
    )
    assert format_packet(Protocol.LCP, packet(77, 1)) == "[LCP code=0x4d id=0x1]"


def test_lcp_leftovers_and_bad_lengths() -> None:
    assert format_packet(Protocol.LCP, packet(7, 1, bytes(40))) == "[LCP CodeRej id=0x1" + " 00" * 32 + " ...]"
    # a length field beyond the frame: the name, then the bytes (32 at most)
    assert format_packet(Protocol.LCP, bytes.fromhex("01010010")) == "[LCP] 01 01 00 10"
    # padding after the packet's length shows after the bracket
    assert format_packet(Protocol.LCP, packet(6, 1) + b"\x00\x00") == "[LCP TermAck id=0x1] 00 00"


def test_ipcp() -> None:
    request = options((3, bytes(4)), (129, bytes(4)), (131, bytes(4)))
    assert (
        format_packet(Protocol.IPCP, packet(1, 1, request))
        == "[IPCP ConfReq id=0x1 <addr 0.0.0.0> <ms-dns1 0.0.0.0> <ms-dns2 0.0.0.0>]"
    )
    nak = options((3, bytes((192, 168, 0, 234))), (129, bytes((8, 8, 8, 8))), (130, bytes((192, 0, 2, 1))))
    assert (
        format_packet(Protocol.IPCP, packet(3, 1, nak))
        == "[IPCP ConfNak id=0x1 <addr 192.168.0.234> <ms-dns1 8.8.8.8> <ms-wins 192.0.2.1>]"
    )
    assert format_packet(Protocol.IPCP, packet(4, 2, options((2, b"\x00\x2d\x0f\x01")))) == (
        "[IPCP ConfRej id=0x2 <compress VJ 0f 01>]"
    )
    assert format_packet(Protocol.IPCP, packet(5, 3, b"bye")) == '[IPCP TermReq id=0x3 "bye"]'


def test_ccp_chap_pap() -> None:
    stateless_128 = options((18, bytes.fromhex("01000040")))
    assert format_packet(Protocol.CCP, packet(1, 1, stateless_128)) == "[CCP ConfReq id=0x1 <mppe +H -M +S -L -D -C>]"
    windows = options((18, bytes.fromhex("010000e1")))
    assert format_packet(Protocol.CCP, packet(1, 4, windows)) == "[CCP ConfReq id=0x4 <mppe +H +M +S +L -D +C>]"
    assert format_packet(Protocol.CCP, packet(1, 5, options((18, bytes.fromhex("03000040"))))) == (
        "[CCP ConfReq id=0x5 <mppe +H -M +S -L -D -C +U (03 00 00 40)>]"
    )
    assert format_packet(Protocol.CCP, packet(4, 1, options((26, b"\x78\x00"), (21, b"\x2f")))) == (
        "[CCP ConfRej id=0x1 <deflate 15> <bsd v1 15>]"
    )
    assert format_packet(Protocol.CCP, packet(14, 9)) == "[CCP ResetReq id=0x9]"
    assert format_packet(Protocol.CCP, packet(5, 1, b"x")) == '[CCP TermReq id=0x1"x"]'  # pppd writes no space
    challenge = bytes((16,)) + bytes(range(16)) + b"pptpd"
    assert format_packet(Protocol.CHAP, packet(1, 1, challenge)) == (
        '[CHAP Challenge id=0x1 <000102030405060708090a0b0c0d0e0f>, name = "pptpd"]'
    )
    assert format_packet(Protocol.CHAP, packet(3, 1, b"S=ABCD M=Access granted")) == (
        '[CHAP Success id=0x1 "S=ABCD M=Access granted"]'
    )
    assert format_packet(Protocol.CHAP, packet(4, 2, b"E=691 R=1")) == '[CHAP Failure id=0x2 "E=691 R=1"]'
    assert format_packet(Protocol.PAP, packet(1, 1, b"\x05alice\x06s3cret")) == (
        '[PAP AuthReq id=0x1 user="alice" password=<hidden>]'
    )
    assert format_packet(Protocol.PAP, packet(2, 1, b"\x08Login ok")) == '[PAP AuthAck id=0x1 "Login ok"]'


def test_other_protocols_and_strings() -> None:
    assert format_packet(0x0021, bytes(range(20))) == "[IP data] 00 01 02 03 04 05 06 07 ..."
    assert format_packet(0x002B, bytes(3)) == "[proto=0x2b] 00 00 00"
    assert format_packet(0x8057, packet(1, 1, options((1, bytes.fromhex("0211223344556677"))))) == (
        "[IPV6CP ConfReq id=0x1 <addr fe80::0211:2233:4455:6677>]"
    )
    assert format_packet(0x8053, b"\x01\x01\x00\x04") == "[ECP] 01 01 00 04"
    assert format_packet(0xC227, packet(2, 1, b"\x01alice")) == '[EAP Response id=0x1 Identity <Message "alice">]'
    assert print_string(b'a"b\\c\n\r\t\x01\xff') == '"a\\"b\\\\c\\n\\r\\t\\001\\377"'


def test_a_hostile_packet_gives_one_bounded_line() -> None:
    name = b"\xff" * 1400
    text = format_packet(Protocol.CHAP, packet(2, 1, b"\x00" + name))
    assert text.startswith("[CHAP Response id=0x1 <>, name = ") and len(text) == MAX_TEXT
    assert len(format_packet(Protocol.LCP, packet(1, 1, options(*[(99, bytes(253))] * 5)))) == MAX_TEXT


@given(st.integers(0, 0xFFFF), st.binary(max_size=1600))
def test_never_raises_and_stays_bounded(protocol: int, data: bytes) -> None:
    text = format_packet(protocol, data)
    assert text.startswith("[") and len(text) <= MAX_TEXT and "\n" not in text


@given(st.sampled_from([0xC021, 0x8021, 0x80FD, 0xC223, 0xC023, 0x8057, 0xC227]), st.binary(max_size=300))
def test_never_raises_on_well_framed_control_packets(protocol: int, body: bytes) -> None:
    text = format_packet(
        protocol, bytes(((body[:1] or b"\x01")[0] % 16, 1)) + (len(body) + 4).to_bytes(2, "big") + body
    )
    assert len(text) <= MAX_TEXT and re.match(r"\[[A-Z0-9]+ (\w+|code=0x[0-9a-f]+) id=0x1\b", text)


def test_real_windows_and_cisco_packets_are_understood() -> None:
    """Every control packet of the packetlife capture (a client and a Cisco PPTP server) prints with its
    options named: no option pppd knows falls back to hex."""
    from scapy.layers.inet import IP
    from scapy.utils import rdpcap

    from pypptp.gre.codec import decode_header

    lines = []
    for frame in rdpcap(str(fixtures.capture("packetlife_PPTP_negotiation.cap"))):
        if IP not in frame or frame[IP].proto != 47:
            continue
        raw = bytes(frame[IP])[frame[IP].ihl * 4 : frame[IP].len]
        header = decode_header(raw)
        ppp = raw[header.header_size : header.header_size + header.payload_length]
        if ppp[:2] == b"\xff\x03":
            ppp = ppp[2:]
        if len(ppp) > 2 and ppp[0] & 0x80:
            lines.append(format_packet(int.from_bytes(ppp[:2], "big"), ppp[2:]))
    assert any(line.startswith("[LCP ConfReq id=") and "<magic 0x" in line for line in lines)
    assert any(line.startswith("[PAP AuthReq id=0x0 user=") for line in lines)
    assert any(line.startswith("[IPCP ConfReq id=") and "<addr " in line for line in lines)
    assert not [line for line in lines if "< " in line or "code=" in line], lines


# -- the link's lines ---------------------------------------------------------------------------------


def debug_links(enabled: list[bool]) -> tuple[PppLink, PppLink]:
    server = PppLink(server_config(), secrets=SECRETS, random_bytes=rng_bytes(1))
    client = PppLink(client_config(), random_bytes=rng_bytes(2), random32=counter32(2))
    server.log_packets = lambda: enabled[0]
    return server, client


def packet_lines(events: list) -> list[str]:
    return [e.message for e in of(events, LinkLog) if re.match(r"(sent|rcvd) \[", e.message)]


def test_a_negotiation_is_logged_packet_by_packet_in_order() -> None:
    server, client = debug_links([True])
    events = negotiate(server, client)
    assert server.network_up is not None
    lines = packet_lines(events)
    assert lines[0].startswith("sent [LCP ConfReq id=0x1 <mru 1400> <auth chap MS-v2> <magic 0x")
    assert re.fullmatch(r"rcvd \[LCP ConfReq id=0x1 <magic 0x[0-9a-f]+> <pcomp> <accomp>\]", lines[1])
    assert lines[2] == "sent " + lines[1][5:].replace("ConfReq", "ConfAck")
    assert any(re.fullmatch(r'sent \[CHAP Challenge id=0x\w+ <[0-9a-f]{32}>, name = "pptpd"\]', line) for line in lines)
    assert any(re.fullmatch(r'rcvd \[CHAP Response id=0x\w+ <[0-9a-f]{98}>, name = "alice"\]', line) for line in lines)
    assert any(
        re.fullmatch(r'sent \[CHAP Success id=0x\w+ "S=[0-9A-F]{40} M=Access granted"\]', line) for line in lines
    )
    assert "sent [CCP ConfReq id=0x1 <mppe +H -M +S -L -D -C>]" in lines
    assert any(line.startswith("rcvd [IPCP ConfReq id=0x1 <addr 0.0.0.0>") for line in lines)
    messages = [e.message for e in of(events, LinkLog)]
    success = next(i for i, m in enumerate(messages) if m.startswith("sent [CHAP Success"))
    succeeded = next(i for i, m in enumerate(messages) if m.endswith("CHAP peer authentication succeeded for alice"))
    assert succeeded > success  # pppd's order: the Success sent, then the line


def test_no_packet_lines_without_debug_and_no_echo_lines_once_up() -> None:
    enabled = [False]
    server, client = debug_links(enabled)
    assert packet_lines(negotiate(server, client)) == []
    enabled[0] = True
    echo = encode_frame(Protocol.LCP, packet(9, 5, bytes(4)))
    server.receive_frame(echo, 1.0)
    _, events = server.drain()
    assert packet_lines(events) == []  # pppd's debug 1 hides Echo once the network was up
    server.receive_frame(encode_frame(0x002B, b"\x00\x01"), 1.0)
    _, events = server.drain()
    assert packet_lines(events)[0] == "rcvd [proto=0x2b] 00 01"
    assert packet_lines(events)[1].startswith("sent [LCP ProtRej id=")


def test_a_flood_is_logged_within_the_rate() -> None:
    server, client = debug_links([True])
    negotiate(server, client)
    flood = encode_frame(0x002B, b"\x00")
    lines: list[str] = []
    for i in range(5000):
        server.receive_frame(flood, 10.0 + i * 0.001)  # 1000 a second for 5 s
        lines += [e.message for e in of(server.drain()[1], LinkLog)]
    packet_lines_count = len([line for line in lines if line.startswith(("rcvd", "sent"))])
    assert packet_lines_count <= PACKET_LINE_BURST + 5 * 20 + 2
    assert any(re.fullmatch(r"\d+ packet line\(s\) not logged: more than 20 a second", line) for line in lines)
    summary = server.take_notice_summary()
    assert summary is not None and "debug packet lines beyond the rate" in summary
