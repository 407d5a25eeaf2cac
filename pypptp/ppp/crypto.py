"""The hash and cipher primitives of MS-CHAP v1 and v2 (RFC 1320, RFC 2433, RFC 2759).

Everything MS-CHAP needs, in one small module:

* MD4 (RFC 1320), written here: ``hashlib`` has no MD4 under OpenSSL 3;
* single DES with a 7-byte key (RFC 2433 A.4): ``cryptography``'s
  TripleDES with the parity-expanded 8-byte key repeated three times (the
  8-byte form is deprecated there);
* NtPasswordHash, HashNtPasswordHash, ChallengeResponse, LmPasswordHash;
* MS-CHAPv1's NT response; MS-CHAPv2's ChallengeHash, GenerateNTResponse and
  GenerateAuthenticatorResponse, and a constant-time check of the
  authenticator response for the client side.

These algorithms are broken: an MS-CHAPv2 exchange reduces to one DES key
(2**56 work), which also yields the MPPE keys.  They are implemented for
interoperability, not for security.
"""

from __future__ import annotations

import hashlib
import hmac
import struct

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes

__all__ = [
    "MAGIC1",
    "MAGIC2",
    "challenge_hash",
    "challenge_response",
    "check_authenticator_response",
    "des_encrypt",
    "expand_des_key",
    "generate_authenticator_response",
    "generate_nt_response",
    "hash_nt_password_hash",
    "lm_password_hash",
    "md4",
    "mschap1_nt_response",
    "nt_password_hash",
    "strip_domain",
]

MAGIC1 = b"Magic server to client signing constant"  # RFC 2759 section 8.7, 39 bytes
MAGIC2 = b"Pad to make it do more than one iteration"  # RFC 2759 section 8.7, 41 bytes
_LM_MAGIC = b"KGS!@#$%"  # RFC 2433 A.3

# -- MD4 (RFC 1320) -------------------------------------------------------------------

_MASK32 = 0xFFFFFFFF
_R2, _R3 = 0x5A827999, 0x6ED9EBA1
_ORDER2 = (0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15)
_ORDER3 = (0, 8, 4, 12, 2, 10, 6, 14, 1, 9, 5, 13, 3, 11, 7, 15)
_WORDS = struct.Struct("<16I")


def _rotl(value: int, shift: int) -> int:
    value &= _MASK32
    return ((value << shift) | (value >> (32 - shift))) & _MASK32


def md4(data: bytes) -> bytes:
    """MD4 digest of ``data`` (RFC 1320 section 3)."""
    length_bits = (len(data) * 8) & 0xFFFFFFFFFFFFFFFF
    padded = data + b"\x80" + b"\x00" * ((55 - len(data)) % 64) + struct.pack("<Q", length_bits)
    a, b, c, d = 0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476
    for offset in range(0, len(padded), 64):
        x = _WORDS.unpack_from(padded, offset)
        aa, bb, cc, dd = a, b, c, d
        for i in range(16):  # round 1: F(x,y,z) = xy | ~x z
            shift = (3, 7, 11, 19)[i % 4]
            f = (b & c) | (~b & d)
            a, b, c, d = d, _rotl(a + f + x[i], shift), b, c
        for i in range(16):  # round 2: G(x,y,z) = xy | xz | yz
            shift = (3, 5, 9, 13)[i % 4]
            g = (b & c) | (b & d) | (c & d)
            a, b, c, d = d, _rotl(a + g + x[_ORDER2[i]] + _R2, shift), b, c
        for i in range(16):  # round 3: H(x,y,z) = x ^ y ^ z
            shift = (3, 9, 11, 15)[i % 4]
            a, b, c, d = d, _rotl(a + (b ^ c ^ d) + x[_ORDER3[i]] + _R3, shift), b, c
        a, b, c, d = (a + aa) & _MASK32, (b + bb) & _MASK32, (c + cc) & _MASK32, (d + dd) & _MASK32
    return struct.pack("<4I", a, b, c, d)


# -- DES with a 7-byte key (RFC 2433 A.4) --------------------------------------------------


def expand_des_key(key7: bytes) -> bytes:
    """Spread 56 key bits over 8 bytes (7 bits each, high bits first) with odd parity."""
    if len(key7) != 7:
        raise ValueError(f"a DES key here is 7 bytes, got {len(key7)}")
    bits = int.from_bytes(key7, "big")
    out = bytearray(8)
    for i in range(8):
        group = (bits >> (49 - 7 * i)) & 0x7F
        byte = group << 1
        out[i] = byte | (bin(byte).count("1") % 2 == 0)  # odd parity in bit 0
    return bytes(out)


def des_encrypt(key7: bytes, block: bytes) -> bytes:
    """DES-ECB of one 8-byte block under a 7-byte key (RFC 2433 A.4)."""
    key8 = expand_des_key(key7)
    encryptor = Cipher(TripleDES(key8 * 3), modes.ECB()).encryptor()  # EDE with one key = DES
    return encryptor.update(block) + encryptor.finalize()


# -- shared building blocks (RFC 2433 appendix A, RFC 2759 section 8) -----------------------


def nt_password_hash(password: str) -> bytes:
    """MD4 of the UTF-16LE password (RFC 2759 section 8.3)."""
    return md4(password.encode("utf-16-le"))


def hash_nt_password_hash(password_hash: bytes) -> bytes:
    """MD4 of the NtPasswordHash (RFC 2759 section 8.4): what MPPE keys derive from."""
    return md4(password_hash)


def challenge_response(challenge: bytes, password_hash: bytes) -> bytes:
    """Three DES encryptions of the 8-byte challenge under the zero-padded hash (RFC 2759 section 8.5)."""
    if len(challenge) != 8:
        raise ValueError(f"the challenge here is 8 bytes, got {len(challenge)}")
    keys = password_hash.ljust(21, b"\0")
    return b"".join(des_encrypt(keys[i : i + 7], challenge) for i in (0, 7, 14))


def lm_password_hash(password: str) -> bytes:
    """LAN Manager hash (RFC 2433 A.2-A.3): needed only for 40-bit MS-CHAPv1 MPPE keys."""
    raw = password.upper().encode("latin-1", errors="replace")[:14].ljust(14, b"\0")
    return des_encrypt(raw[:7], _LM_MAGIC) + des_encrypt(raw[7:], _LM_MAGIC)


# -- MS-CHAP v1 (RFC 2433) ------------------------------------------------------------------


def mschap1_nt_response(challenge: bytes, password: str) -> bytes:
    """The 24-byte Windows NT compatible response (RFC 2433 A.5)."""
    return challenge_response(challenge, nt_password_hash(password))


# -- MS-CHAP v2 (RFC 2759) ------------------------------------------------------------------


def strip_domain(user_name: bytes) -> bytes:
    """The user name without a ``DOMAIN\\`` prefix: everything up to the last backslash goes."""
    return user_name.rpartition(b"\\")[2]


def challenge_hash(peer_challenge: bytes, authenticator_challenge: bytes, user_name: bytes) -> bytes:
    """First 8 bytes of SHA-1(peer challenge, authenticator challenge, user name) (section 8.2).

    ``user_name`` is used as given: strip the domain first (:func:`strip_domain`).
    """
    return hashlib.sha1(peer_challenge + authenticator_challenge + user_name).digest()[:8]


def generate_nt_response(
    authenticator_challenge: bytes, peer_challenge: bytes, user_name: bytes, password: str
) -> bytes:
    """The 24-byte NT-Response (RFC 2759 section 8.1)."""
    challenge = challenge_hash(peer_challenge, authenticator_challenge, user_name)
    return challenge_response(challenge, nt_password_hash(password))


def generate_authenticator_response(
    password_hash: bytes,
    nt_response: bytes,
    peer_challenge: bytes,
    authenticator_challenge: bytes,
    user_name: bytes,
) -> str:
    """``S=`` and 40 upper-case hex digits (RFC 2759 section 8.7), from the NtPasswordHash."""
    digest1 = hashlib.sha1(hash_nt_password_hash(password_hash) + nt_response + MAGIC1).digest()
    challenge = challenge_hash(peer_challenge, authenticator_challenge, user_name)
    digest2 = hashlib.sha1(digest1 + challenge + MAGIC2).digest()
    return "S=" + digest2.hex().upper()


def check_authenticator_response(
    received: str,
    password_hash: bytes,
    nt_response: bytes,
    peer_challenge: bytes,
    authenticator_challenge: bytes,
    user_name: bytes,
) -> bool:
    """Client side: does the server's ``S=`` prove it knows the password?  Constant time."""
    expected = generate_authenticator_response(
        password_hash, nt_response, peer_challenge, authenticator_challenge, user_name
    )
    return hmac.compare_digest(received[:42].upper().encode("ascii", "replace"), expected.encode("ascii"))
