"""The shipped RADIUS dictionary: pyrad reads it, it has what the NAS sends and honours, and it names and
numbers every attribute as FreeRADIUS does (the server the tests run against, and whose users file and
radclient an admin writes attribute names for)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pypptp.aaa import DICTIONARY_PATH, load_dictionary
from tests.conftest import require_tools

MICROSOFT = 311

EXPECTED = {
    # name: (vendor, code, type, encrypt)
    "User-Password": (0, 2, "string", 1),
    "CHAP-Password": (0, 3, "octets", 0),
    "CHAP-Challenge": (0, 60, "octets", 0),
    "Class": (0, 25, "octets", 0),
    "Framed-IP-Address": (0, 8, "ipaddr", 0),
    "Framed-MTU": (0, 12, "integer", 0),
    "Session-Timeout": (0, 27, "integer", 0),
    "Idle-Timeout": (0, 28, "integer", 0),
    "Acct-Interim-Interval": (0, 85, "integer", 0),
    "Acct-Input-Gigawords": (0, 52, "integer", 0),
    "Acct-Output-Gigawords": (0, 53, "integer", 0),
    "Acct-Session-Id": (0, 44, "string", 0),
    "Acct-Terminate-Cause": (0, 49, "integer", 0),
    "Event-Timestamp": (0, 55, "date", 0),
    "Message-Authenticator": (0, 80, "octets", 0),
    "Framed-Pool": (0, 88, "string", 0),
    "NAS-Port-Type": (0, 61, "integer", 0),
    "Error-Cause": (0, 101, "integer", 0),
    "MS-CHAP-Response": (MICROSOFT, 1, "octets", 0),
    "MS-CHAP-Error": (MICROSOFT, 2, "string", 0),
    "MS-MPPE-Encryption-Policy": (MICROSOFT, 7, "integer", 0),
    "MS-MPPE-Encryption-Types": (MICROSOFT, 8, "integer", 0),
    "MS-CHAP-Challenge": (MICROSOFT, 11, "octets", 0),
    "MS-CHAP-MPPE-Keys": (MICROSOFT, 12, "octets", 1),
    "MS-MPPE-Send-Key": (MICROSOFT, 16, "octets", 2),
    "MS-MPPE-Recv-Key": (MICROSOFT, 17, "octets", 2),
    "MS-CHAP2-Response": (MICROSOFT, 25, "octets", 0),
    "MS-CHAP2-Success": (MICROSOFT, 26, "octets", 0),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_the_attributes_the_nas_uses_are_defined(name: str) -> None:
    dictionary = load_dictionary()
    vendor, code, kind, encrypt = EXPECTED[name]
    attribute = dictionary[name]
    assert (dictionary.vendors.GetForward(attribute.vendor), attribute.code) == (vendor, code)
    assert (attribute.type, attribute.encrypt) == (kind, encrypt)


def test_named_values() -> None:
    dictionary = load_dictionary()
    assert dictionary["NAS-Port-Type"].values.GetForward("Virtual") == b"\x00\x00\x00\x05"
    assert dictionary["Service-Type"].values.GetForward("Framed-User") == b"\x00\x00\x00\x02"
    assert dictionary["Framed-Protocol"].values.GetForward("PPP") == b"\x00\x00\x00\x01"
    causes = dictionary["Acct-Terminate-Cause"].values
    assert [causes.GetForward(name)[-1] for name in ("User-Request", "Lost-Carrier", "Idle-Timeout")] == [1, 2, 4]
    assert causes.GetForward("Session-Timeout")[-1] == 5 and causes.GetForward("Admin-Reset")[-1] == 6
    assert dictionary["Error-Cause"].values.GetForward("Session-Context-Not-Found") == (503).to_bytes(4, "big")
    statuses = dictionary["Acct-Status-Type"].values
    assert [statuses.GetForward(name)[-1] for name in ("Start", "Stop", "Interim-Update")] == [1, 2, 3]


def test_pyrad_reads_it_without_skipping_anything_and_it_is_cached() -> None:
    assert DICTIONARY_PATH.is_file()
    dictionary = load_dictionary()
    assert not dictionary.skipped_attributes
    assert load_dictionary() is dictionary


FREERADIUS = Path("/usr/share/freeradius")


def _freeradius_attributes() -> dict[str, tuple[int, int]]:
    """name -> (vendor, code) from FreeRADIUS's own dictionaries of the RFCs ours covers."""
    found: dict[str, tuple[int, int]] = {}
    for name in ("rfc2865", "rfc2866", "rfc2869", "rfc3162", "rfc3576", "rfc4372", "rfc4818", "microsoft"):
        vendor = 0
        for line in (FREERADIUS / f"dictionary.{name}").read_text().splitlines():
            words = line.split("#")[0].split()
            if words[:1] == ["VENDOR"]:
                vendor = int(words[2])
            elif words[:1] == ["ATTRIBUTE"]:
                found[words[1]] = (vendor, int(words[2]))
    return found


def test_names_and_codes_agree_with_freeradius() -> None:
    require_tools("freeradius")  # its dictionaries are in /usr/share/freeradius
    theirs = _freeradius_attributes()
    ours = re.findall(r"^ATTRIBUTE\s+(\S+)\s+(\d+)", DICTIONARY_PATH.read_text(), re.MULTILINE)
    dictionary = load_dictionary()
    differ = [
        name
        for name, code in ours
        if theirs.get(name) != (dictionary.vendors.GetForward(dictionary[name].vendor), int(code))
    ]
    assert len(ours) > 90 and not differ
