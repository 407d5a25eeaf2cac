"""MPPE: the keys (RFC 3079) and the data codec (RFC 3078), sans-IO.

Keys.  MS-CHAPv2 (RFC 3079 section 3): MasterKey = SHA-1(PasswordHashHash,
NT-Response, Magic1); each direction's start key = SHA-1(MasterKey, pad1,
Magic2 or Magic3, pad2); the initial session key is the SHA step
:func:`get_new_key_from_sha` of the start key with itself plus the salt, and
*no* RC4 step (ccp-mppe.md 6.1: the RFC's own sample keys come out only that
way, and Linux does the same).  MS-CHAPv1 (RFC 3079 section 2): one key for
both directions, see :func:`start_keys`.  Every later key is
:func:`change_key` (RFC 3078 section 7.3): the SHA step, RC4 the interim key
with itself, salt.

Packets (RFC 3078 section 3.1): the PPP information field of protocol
0x00FD is a 2-byte header, bits A (0x80, flushed) and D (0x10, encrypted)
in the first byte above a 12-bit coherency count, followed by RC4 of the
inner 2-byte protocol and the inner information field: 4 bytes of growth,
:data:`MPPE_OVERHEAD`.  Only inner protocols 0x0021-0x00FA are encrypted.

Stateless mode (RFC 3078 sections 7.1 and 8.1; ccp-mppe.md 8.1): one key
change before every packet, the first one included, a fresh RC4 each time,
A and D on every packet.  The receiver performs N = (count - last) mod 4096
key changes.  N == 0 is a duplicate and N >= 2048 a late packet: both are
dropped before any key work, so a late packet costs nothing (Linux before
its late-packet fix performed up to 4095 key changes for one).  Jumps of 1
to 2047 are honoured: losing hundreds of packets in a burst is normal on a
busy link, and the key state after N changes does not depend on why they
were missed.  The same threshold as Linux's current receiver (it drops gaps
above 2048) keeps both ends in agreement.  Nothing is committed (key, count)
before the packet decrypts to something plausible, so a corrupt or forged
packet leaves the state the peer still agrees with:

* the next count (N == 1, the hot path) needs only a valid inner protocol
  (strong for a 2-byte protocol, 218 of 65536 garbage values pass, weak for a
  PFC-compressed one, which must be accepted and passes about 109 of 256; a
  forged packet with exactly the next count can at worst take that count,
  one packet, since its key is the right one anyway);
* a jump (N >= 2) is committed only when the packet decrypts to a valid IPv4
  packet (version, IHL, total length and header checksum) or IPv6 packet
  (version, payload length), see :func:`_plausible`; anything else is
  dropped as an "implausible jump".  MPPE has no integrity check: before
  this, a forged packet with a random body and a jump of a few hundred
  passed the protocol check about 43 % of the time and left the real peer's
  packets late until it caught up, and a train of such jumps desynchronised
  the keys for good.  Linux's ``ppp_mppe`` commits any jump; this is ours.

CPU: a jump needs N key changes (SHA-1 and an RC4 context, about 1.3 us
each; 2047 of them about 3 ms), which a forged packet could ask for again
and again.  So the keys ahead of the current one are kept as they are
computed (one bytearray, at most 2047 keys, 32 KiB with 128-bit keys),
shifted out as the receiver moves on and never computed twice: the key work
a receiver ever does is bounded by how far its peer really goes plus 2047.
A jump's packet is decrypted in two steps, the first 62 bytes (inner
protocol and the longest IPv4 header), then, only if plausible, the rest.
Averaged over a burst of 1,000 forged packets that all jump, at a fresh
receiver, each costs 1.2 to 1.6 times what decrypting a legit packet of the
same size does (``tests/test_ppp_mppe.py`` measures it).  Longer packets
than any peer may send (:data:`MAX_INFORMATION`) are dropped before any work.

Stateful mode follows Linux ``drivers/net/ppp/ppp_mppe.c`` (the peer in CI,
pppd ``mppe-stateful``) where it differs from RFC 3078 section 8.2
(ccp-mppe.md 8.2).  Sender:

* the count starts at 4095, so the first packet is 0; that packet uses the
  initial session key and carries D without A (Linux says so in a comment:
  contrary to RFC 3078 section 3.1, which would set A);
* the RC4 keystream runs on across packets;
* key change before a flag packet (count low byte 0xFF, RFC 3078 section
  7.2), *with* A set: Linux's receiver drops a flag packet without A;
* after a CCP Reset-Request, the next packet performs a full key change and
  carries A, as Linux's does (RFC 3078 section 8.2 says only to re-initialise
  RC4 with the current key; a Linux receiver performs a key change on every
  A packet, so the RFC's way would desynchronise it), and, ours only, it is
  sent as the next *flag packet*: its count jumps to the next one whose low
  byte is 0xFF.  A Linux receiver rekeys once per 256-block crossed when it
  resynchronises, so a key change made at a flag position is accounted for
  even when that packet never arrives (lost, or dropped because it revealed a
  gap); Linux's own sender changes key at the next packet whatever its count,
  and a lost answer to a Reset-Request leaves its receiver one change behind
  for good (seen in the QEMU interop tests under loss: the Linux client
  decrypted garbage until CCP restarted).  Several Reset-Requests before the
  next packet cause one key change (the peer cannot know how many arrived).

Receiver:

* the expected count is the last one + 1 (last starts at 4095); a packet
  with A, or a flag packet, performs one key change before it is decrypted
  (Linux: every A packet; a flag packet without A, which only an RFC sender
  would send, is accepted where Linux would drop it);
* any other count is a loss (Linux, RFC 3078 section 8.2): the packet is
  dropped, :meth:`MppeDecryptor.take_reset_request` becomes True once so
  that the link sends one CCP Reset-Request, and packets are discarded until
  one with A arrives.  An exact duplicate of the last count is dropped
  without this (ours; Linux would treat it as a loss);
* on that A packet: one key change per flag packet missed since the last
  good one, counted as Linux does (256-blocks crossed), then the packet's own
  key change, and the count is taken from the packet;
* the decrypted inner protocol is checked (ours; Linux passes garbage up);
  garbage after a packet without A means the keys are out of step: drop,
  reset request, discard as after a loss;
* a packet with A is tried with several keys, in order: Linux's (one
  change), the RFC's (no change: RC4 re-initialised with the current key;
  not for a flag packet), then up to six further changes.  Those are for a
  flaw of Linux's scheme: its sender changes key once per Reset-Request it
  acts on, so every lost A packet leaves it one more change ahead, and a
  Linux receiver never catches up (it keeps decrypting garbage).  The first
  key that yields a plausible IPv4 or IPv6 packet (:func:`_plausible`, as a
  stateless jump) wins.  In step, Linux's key also settles it with any valid
  inner protocol: at once for a flag packet, otherwise when no other key
  gives a plausible packet.  While discarding, nothing less than plausible
  resynchronises (ours: before, the first key with a valid protocol field
  won, which a forged packet with A offered almost always among eight keys,
  possibly several changes ahead of the sender's: one Reset cycle per change
  until the sender caught up).  If no key will do, the packet is dropped;
  in step the receiver then asks for a reset; while discarding it does not
  ask again (the link repeats its own Reset-Request on a timer while
  :attr:`MppeDecryptor.discarding`, pppd: every second, since the A packet
  that answers it may be lost; a request per forged packet would make a
  Linux sender change key once more for each).  So a forged packet costs at
  worst one Reset cycle.  The candidate keys come from the keys kept ahead
  (at most 22), and only the first 62 bytes are tried with each, from
  keystream kept per key: a forged packet with A costs no RC4 context.

What we send avoids that flaw on a Linux receiver (the flag-position answer
above); a Linux *sender* still has it, so a Linux peer's packets may stay
unreadable after its answer is lost, whatever we do (the search above finds
up to six changes).  Stateful MPPE is for loss-free links (RFC 3078 section
9); the link uses stateless unless configured otherwise.

Hot path: :meth:`MppeEncryptor.encrypt` and :meth:`MppeDecryptor.decrypt`
are plain and flat: precomputed headers and protocol fields, a SHA-1 object
pre-fed with the start key and 40 zero bytes (copied per key change), no
logging.  The data path sends with the copy-free
:meth:`MppeEncryptor.encrypt_into`, which runs RC4 from one caller's buffer
into another (stateful: cryptography's ``update_into``, never in place:
cryptography 51 refuses overlapping buffers; stateless: ``arc4``, bytes in,
bytes out); the session's receive hot path decrypts the common packet itself
(stateful: ``update_into`` a reused buffer) and ends the odd ones with
:meth:`MppeDecryptor.settle`; its general path calls
:meth:`MppeDecryptor.decrypt_next`, leaving the rest to :meth:`decrypt`.  Two RC4
libraries, each where it is cheaper (measured; see the comment above
:func:`running_rc4`, the one place the choice is made): stateless mode needs
two new RC4 contexts per packet (one inside the key change), and creating
cryptography's costs more than encrypting 1400 bytes; ``arc4``'s C type is
created for a fraction of that, while cryptography's long-lived context runs
1400 bytes faster.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator

from arc4 import ARC4 as OneShotRC4
from cryptography.hazmat.decrepit.ciphers.algorithms import ARC4
from cryptography.hazmat.primitives.ciphers import Cipher, CipherContext

from pypptp.ppp.auth import MsChapKeys

__all__ = [
    "CARRIED",
    "HEADERS",
    "MPPE_OVERHEAD",
    "MppeDecryptor",
    "MppeEncryptor",
    "OneShotRC4",
    "change_key",
    "get_asymmetric_start_key",
    "get_master_key",
    "get_new_key_from_sha",
    "initial_session_key",
    "key_length",
    "running_rc4",
    "start_keys",
]

MPPE_OVERHEAD = 4
"""Growth of the PPP information field: the 2-byte MPPE header plus the inner protocol field (RFC 3078
section 3; pppd's ``MPPE_PAD``)."""

FLUSHED = 0x80  # bit A: RC4 (re)initialised before this packet
ENCRYPTED = 0x10  # bit D
FIRST_PROTOCOL, LAST_PROTOCOL = 0x0021, 0x00FA  # the inner protocols MPPE encrypts (RFC 3078 section 3)
COUNT_SPACE = 4096
LATE = 2048
"""Stateless: a count this far or further ahead of the last one is taken for a late (old) packet."""
_SEARCH = 6
"""Stateful: key changes tried beyond the expected one for a packet with A (a lost A packet)."""
MAX_INFORMATION = 16384 + MPPE_OVERHEAD
"""The longest MPPE information field a peer may send: our MRU, at most pppd's MAXMRU (16384), plus
MPPE's 4 bytes.  Anything longer (a spoofed train of IP fragments, reassembled) is dropped before any
key or RC4 work."""
_HEAD = 62
"""Bytes decrypted first from a packet that must pass :func:`_plausible`: the inner protocol field and
the longest IPv4 header.  A spoofed packet costs only that much RC4."""

# RFC 3079 section 3.4 (and 2.4 for the pads), checked byte for byte against ccp-mppe.md 6.3.
_MAGIC1 = b"This is the MPPE Master Key"
_MAGIC2 = b"On the client side, this is the send key; on the server side, it is the receive key."
_MAGIC3 = b"On the client side, this is the receive key; on the server side, it is the send key."
_PAD1 = bytes(40)
_PAD2 = b"\xf2" * 40
_Update = Callable[[bytes | bytearray | memoryview], bytes]  # a running RC4's update
_UpdateInto = Callable[[bytes | bytearray | memoryview, memoryview], int]  # and its update_into
_SALT = {40: b"\xd1\x26\x9e", 56: b"\xd1", 128: b""}  # RFC 3078 section 7.3, RFC 3079 sections 3.1-3.2

# Which RC4 serves which context, decided here and nowhere else (measured, ``benchmarks.bench_mppe``
# and ``benchmarks.bench_tunnel``): an RC4 that lives for one packet (every key change, every stateless
# packet, a stateful candidate key's head) is ``arc4``'s, whose C type costs 0.9 us to create and run
# over a 16-byte key where cryptography's ``Cipher(ARC4(key), mode=None).encryptor()`` costs 2.8 us (its
# Python wrapper: algorithm, cipher and context objects); a long-lived one (stateful) is
# cryptography's, whose ``update_into`` over 1400 bytes is faster (2.8 us against 3.1) and copy-free.
# ``arc4`` takes ``bytes`` only and returns new ``bytes``: a one-shot context costs a copy in and a
# copy out (about 0.1 us each for 1400 bytes), and still saves about 1 us per 1400-byte packet.


def running_rc4(key: bytes) -> CipherContext:
    """A long-lived RC4 context (stateful MPPE's running stream): cryptography's."""
    return Cipher(ARC4(key), mode=None).encryptor()


# Precomputed fields of the hot path: the header for each count, with and without A, and the inner
# protocol fields MPPE may carry.
HEADERS = tuple(bytes((ENCRYPTED | count >> 8, count & 0xFF)) for count in range(COUNT_SPACE))
_HEADERS_FLUSHED = tuple(bytes((FLUSHED | ENCRYPTED | count >> 8, count & 0xFF)) for count in range(COUNT_SPACE))
CARRIED = bytes(FIRST_PROTOCOL <= protocol <= LAST_PROTOCOL for protocol in range(256))
"""1 at each second byte of a 2-byte inner protocol field MPPE carries (0x0021-0x00FA): one lookup."""
_PROTOCOLS = tuple(protocol.to_bytes(2, "big") for protocol in range(LAST_PROTOCOL + 1))


def key_length(bits: int) -> int:
    """Session key length in bytes: 8 for 40- and 56-bit keys, 16 for 128-bit keys."""
    if bits == 128:
        return 16
    if bits in (40, 56):
        return 8
    raise ValueError(f"MPPE keys are 40, 56 or 128 bits, not {bits}")


def _salted(key: bytes, bits: int) -> bytes:
    salt = _SALT[bits]
    return salt + key[len(salt) :]


# -- key derivation (RFC 3079) --------------------------------------------------------------------


def get_master_key(password_hash_hash: bytes, nt_response: bytes) -> bytes:
    """MasterKey: the first 16 bytes of SHA-1(PasswordHashHash, NT-Response, Magic1) (RFC 3079 3.4)."""
    return hashlib.sha1(password_hash_hash + nt_response + _MAGIC1).digest()[:16]


def get_asymmetric_start_key(master_key: bytes, length: int, *, send: bool, server: bool) -> bytes:
    """One direction's start key, ``length`` (8 or 16) bytes (RFC 3079 section 3.4).

    Magic3 for the server's send key and the client's receive key, Magic2 for the other two, so
    that one side's send key is the other side's receive key (ccp-mppe.md 6.2).
    """
    if length not in (8, 16):
        raise ValueError(f"an MPPE start key is 8 or 16 bytes, not {length}")
    magic = _MAGIC3 if send == server else _MAGIC2
    return hashlib.sha1(master_key + _PAD1 + magic + _PAD2).digest()[:length]


def get_new_key_from_sha(start_key: bytes, session_key: bytes, length: int) -> bytes:
    """The SHA step of a key change: SHA-1(start, pad1, session, pad2), first ``length`` bytes.

    RFC 3078 section 7.3 step 1 ("GetNewKeyFromSHA"); RFC 3079's "Get_Key" is the same function.
    """
    return hashlib.sha1(start_key[:length] + _PAD1 + session_key[:length] + _PAD2).digest()[:length]


def initial_session_key(start_key: bytes, bits: int) -> bytes:
    """The first session key: the SHA step of the start key with itself, then the salt.

    No RC4 step here (ccp-mppe.md 6.1): only later key changes encrypt the interim key.
    """
    length = key_length(bits)
    return _salted(get_new_key_from_sha(start_key, start_key, length), bits)


def change_key(start_key: bytes, session_key: bytes, bits: int) -> bytes:
    """The next session key (RFC 3078 section 7.3): SHA step, RC4 the interim key with itself, salt."""
    length = key_length(bits)
    interim = get_new_key_from_sha(start_key, session_key, length)
    return _salted(OneShotRC4(interim).encrypt(interim), bits)


def start_keys(keys: MsChapKeys, bits: int, *, server: bool) -> tuple[bytes, bytes]:
    """Our (send, receive) start keys for ``bits`` from the MS-CHAP exchange.

    MS-CHAPv2 (RFC 3079 section 3): a MasterKey from the NT-Response, then one asymmetric start key
    per direction.  MS-CHAPv1 (RFC 3079 section 2): the same key both ways; 128-bit keys from
    Get_Start_Key = SHA-1(PasswordHashHash, PasswordHashHash, Challenge), 40- and 56-bit keys from
    the first 8 bytes of the LAN Manager hash when ``keys.lm_password_hash`` is set.  pppd does not
    follow the RFC there: it hands the kernel Get_Start_Key for every length and refuses 40-bit MPPE
    with MS-CHAPv1, so a Linux peer never uses the LM keys.  Without an LM hash we do what the Linux
    kernel would do with pppd's key: the first 8 bytes of Get_Start_Key.
    """
    length = key_length(bits)
    if keys.version == 2 and keys.send_key is not None and keys.recv_key is not None:
        # from an AAA server (RFC 2548 MS-MPPE-Send-Key/Recv-Key): the authenticator's 16-byte asymmetric
        # start keys, of which a shorter key is the prefix (GetAsymmetricStartKey truncates the same SHA-1)
        if server:
            return keys.send_key[:length], keys.recv_key[:length]
        return keys.recv_key[:length], keys.send_key[:length]
    if keys.version == 2:
        master_key = get_master_key(keys.password_hash_hash, keys.nt_response)
        return (
            get_asymmetric_start_key(master_key, length, send=True, server=server),
            get_asymmetric_start_key(master_key, length, send=False, server=server),
        )
    if keys.version == 1:
        if length == 8 and keys.lm_password_hash is not None:
            key = keys.lm_password_hash[:8]
        else:
            digest = hashlib.sha1(keys.password_hash_hash + keys.password_hash_hash + keys.challenge[:8]).digest()
            key = digest[:length]
        return key, key
    raise ValueError(f"MS-CHAP version is 1 or 2, not {keys.version}")


class _KeyChanger:
    """RFC 3078 section 7.3 for one start key, with the SHA-1 prefix (start key, pad1) fed once."""

    __slots__ = ("_cut", "_length", "_prefix", "_salt")

    def __init__(self, start_key: bytes, bits: int) -> None:
        self._length = key_length(bits)
        if len(start_key) != self._length:
            raise ValueError(f"a {bits}-bit MPPE start key is {self._length} bytes, not {len(start_key)}")
        self._prefix = hashlib.sha1(bytes(start_key) + _PAD1)
        self._salt = _SALT[bits]
        self._cut = len(self._salt)

    def next(self, key: bytes) -> bytes:
        sha = self._prefix.copy()
        sha.update(key)
        sha.update(_PAD2)
        interim = sha.digest()[: self._length]
        key = OneShotRC4(interim).encrypt(interim)
        if self._cut:
            return self._salt + key[self._cut :]
        return key


def _protocol(data: bytes | bytearray | memoryview, length: int) -> int:
    """The inner protocol at the start of ``length`` decrypted bytes, or 0 when it is not one MPPE
    carries.  It may be PFC-compressed to one byte: an odd first byte (as Linux accepts); the payload
    then starts at 1, otherwise at 2."""
    first = data[0]
    if first & 1:
        return first if FIRST_PROTOCOL <= first <= LAST_PROTOCOL else 0
    if first or length < 2:
        return 0
    second = data[1]
    return second if FIRST_PROTOCOL <= second <= LAST_PROTOCOL else 0


def _inner(data: bytes) -> tuple[int, bytes] | None:
    """(inner protocol, payload) from decrypted data, or None when the protocol is not one MPPE carries."""
    protocol = _protocol(data, len(data))
    if not protocol:
        return None
    return protocol, data[1:] if data[0] else data[2:]


def _plausible(data: bytes | bytearray | memoryview, length: int) -> bool:
    """Whether decrypted data is surely a packet the peer sent: the check for a stateless count jump and
    for a stateful resynchronisation, where a forged packet must not pass.

    ``length`` bytes were decrypted in all, the inner protocol field first (2 bytes, or 1 when
    PFC-compressed); ``data`` holds at least the first ``min(length, 62)``.  True for IPv4 (0x21:
    version 4, IHL at least 5, total length equal to what came, header checksum valid) and IPv6 (0x57:
    version 6, payload length + 40 equal to what came).  Random bytes pass about once in 2**36 (IPv4)
    or 2**20 (IPv6) beyond the protocol field; a peer's IP packets always do.
    """
    if length < 21:  # a PFC-compressed protocol field and a 20-byte IPv4 header at least
        return False
    first = data[0]
    if first:
        protocol, start = first, 1
    else:
        protocol, start = data[1], 2
    size = length - start
    if protocol == 0x21:
        version = data[start]
        ihl = (version & 0x0F) * 4
        return (
            version >> 4 == 4
            and 20 <= ihl <= size
            and data[start + 2] << 8 | data[start + 3] == size
            # the ones' complement sum of the header's 16-bit words is 0xFFFF: as 2**16 is 1 modulo
            # 0xFFFF, the header read as one number is that sum modulo 0xFFFF, hence 0
            and int.from_bytes(data[start : start + ihl], "big") % 0xFFFF == 0
        )
    if protocol == 0x57:
        return size >= 40 and data[start] >> 4 == 6 and (data[start + 4] << 8 | data[start + 5]) + 40 == size
    return False


class MppeEncryptor:
    """The sending half of MPPE for one direction (RFC 3078; stateful as Linux, see the module).

    :meth:`encrypt` turns an inner protocol and payload into the information field of a PPP 0x00FD
    packet; :meth:`reset_requested` is called when the peer's CCP Reset-Request arrives (the link
    sends the Reset-Ack).  Hot path: plain and flat.
    """

    __slots__ = ("_changer", "_fast", "_key", "_stateful", "_update", "_update_into", "count", "key_changes")

    def __init__(self, start_key: bytes, bits: int, *, stateful: bool = False) -> None:
        self._changer = _KeyChanger(start_key, bits)
        self._key = initial_session_key(start_key, bits)
        self._stateful = stateful
        self._fast = stateful
        """Stateful, and no Reset-Request waiting: a packet that is not a flag packet keeps its RC4."""
        context = running_rc4(self._key)  # stateful: the running RC4
        self._update: _Update = context.update
        self._update_into: _UpdateInto = context.update_into
        self.count = COUNT_SPACE - 1
        """Coherency count of the last packet sent; 4095 before the first, so that one is 0."""
        self.key_changes = 0
        """Key changes performed so far (RFC 3078 section 7.3)."""

    def encrypt(self, protocol: int, payload: bytes | bytearray | memoryview) -> bytes:
        """The MPPE information field: header, then RC4 of the 2-byte ``protocol`` and ``payload``.

        ``protocol`` must be one MPPE encrypts, 0x0021-0x00FA; anything else is a ValueError (the
        caller sends other protocols in clear, RFC 3078 section 3).
        """
        if not FIRST_PROTOCOL <= protocol <= LAST_PROTOCOL:
            raise ValueError(f"MPPE encrypts protocols 0x0021-0x00FA only, not {protocol:#06x}")
        count = (self.count + 1) & 0xFFF
        if self._fast and count & 0xFF != 0xFF:  # stateful, no key change: D only, the stream runs on
            self.count = count
            return HEADERS[count] + self._update(_PROTOCOLS[protocol] + payload)
        if self._stateful:
            count |= 0xFF  # a flag packet, or an answer to a Reset-Request sent as the next one (module docstring)
        self.count = count
        return self._flushed(count, _PROTOCOLS[protocol] + payload)

    def _flushed(self, count: int, data: bytes) -> bytes:
        """A key change and a fresh RC4, with A: before every packet when stateless (RFC 3078 section
        7.1); stateful, before a flag packet (section 7.2) or after a Reset-Request (Linux)."""
        key = self._key = self._changer.next(self._key)
        self.key_changes += 1
        if not self._stateful:  # an RC4 for this packet only
            return _HEADERS_FLUSHED[count] + OneShotRC4(key).encrypt(data)
        return _HEADERS_FLUSHED[count] + self._rekeyed(key).update(data)

    def _rekeyed(self, key: bytes) -> CipherContext:
        """Stateful: a fresh RC4 with the new ``key`` becomes the running one."""
        context = running_rc4(key)
        self._update, self._update_into = context.update, context.update_into
        self._fast = True
        return context

    def encrypt_into(self, data: memoryview, out: memoryview) -> bytes:
        """The data path's :meth:`encrypt`, with no copy: ``data`` holds the inner protocol field and
        the payload; their RC4 goes to the start of ``out``, and the MPPE header to put in front of it
        is returned (RFC 3078 section 3).

        ``out`` must not overlap ``data`` (cryptography 51 refuses overlapping buffers, and in-place
        RC4 was never promised); it may be longer than ``data``.  The caller reads a packet into one
        buffer behind the inner protocol field and encrypts it into its send buffer behind the headers.
        """
        count = (self.count + 1) & 0xFFF
        if self._fast and count & 0xFF != 0xFF:  # stateful, no key change: D only, the stream runs on
            self.count = count
            self._update_into(data, out)
            return HEADERS[count]
        key = self._key = self._changer.next(self._key)
        self.key_changes += 1
        if self._stateful:
            count |= 0xFF  # a flag packet, or an answer to a Reset-Request sent as the next one (module docstring)
            self._rekeyed(key).update_into(data, out)
        else:  # stateless: an RC4 for this packet only, which takes bytes and returns bytes
            encrypted = OneShotRC4(key).encrypt(bytes(data))
            out[: len(encrypted)] = encrypted
        self.count = count
        return _HEADERS_FLUSHED[count]

    def reset_requested(self) -> None:
        """A CCP Reset-Request arrived: the next packet changes key and carries A.

        Stateful: a full key change as Linux does (not the RFC's RC4 re-initialisation), at the next flag
        position of the coherency count (see the module docstring); several requests before the next
        packet cause one change.  Stateless: nothing to do, every packet already changes key and carries A.
        """
        self._fast = False


class MppeDecryptor:
    """The receiving half of MPPE for one direction (RFC 3078; stateful as Linux, see the module).

    :meth:`decrypt` takes the information field of a PPP 0x00FD packet and returns the inner protocol
    and payload, or None for a dropped packet (counted in :attr:`dropped`, never raised).  In stateful
    mode, after every call the link asks :meth:`take_reset_request` whether to send a CCP
    Reset-Request; while :attr:`discarding` stays True it may repeat the request on its own timer.
    Hot path: plain and flat.
    """

    __slots__ = (
        "_ahead",
        "_changer",
        "_heads",
        "_key",
        "_last",
        "_length",
        "_next",
        "_stateful",
        "_update",
        "_update_into",
        "dropped",
        "key_changes",
        "reset_pending",
    )

    def __init__(self, start_key: bytes, bits: int, *, stateful: bool = False) -> None:
        self._changer = _KeyChanger(start_key, bits)
        self._key = initial_session_key(start_key, bits)
        self._length = key_length(bits)
        self._ahead = bytearray()
        """The keys after the current one, as far as some packet needed them, end to end: key changes
        1, 2, ... of ``_key``.  Each is computed once; a commit shifts them out.  At most 2047 keys
        stateless (32 KiB with 128-bit keys), 22 stateful."""
        self._heads: dict[bytes, int] = {}
        """Stateful: the first :data:`_HEAD` bytes of each candidate key's RC4 keystream, as one number,
        so that trying a key on a packet with A costs no new RC4 context; emptied on each
        resynchronisation (at most 23 entries: the current key and 22 ahead; under 5 KiB)."""
        self._stateful = stateful
        context = running_rc4(self._key)  # stateful: the running RC4
        self._update: _Update = context.update
        self._update_into: _UpdateInto = context.update_into
        self._last = COUNT_SPACE - 1
        """Stateless: the count of the last packet accepted.  Stateful, while discarding: of the last
        packet decrypted before the loss."""
        self._next = 0 if stateful else -1
        """Stateful: the count expected next, -1 while discarding.  Always -1 when stateless."""
        self.reset_pending = False
        """True from a detected loss until :meth:`take_reset_request` (the data path reads this flag
        instead of calling the method for every packet)."""
        self.key_changes = 0
        """Key changes performed so far, including those of candidate keys tried and rejected."""
        self.dropped: dict[str, int] = dict.fromkeys(
            (
                "short",
                "oversize",
                "unencrypted",
                "not flushed",
                "duplicate",
                "late",
                "implausible jump",
                "lost",
                "discarding",
                "bad protocol",
            ),
            0,
        )
        """Dropped packets by reason.  "short": under 3 bytes; "oversize": over
        :data:`MAX_INFORMATION`; "unencrypted": D clear; "not flushed": stateless without A;
        "duplicate": the last count again; "late": stateless, 2048 or more ahead, i.e. behind;
        "implausible jump": stateless, 2 to 2047 ahead and not decrypting to an IP packet (forged or
        corrupt); "lost": stateful, the packet that revealed a gap; "discarding": stateful, waiting for
        A after a loss; "bad protocol": the decrypted inner protocol is not 0x0021-0x00FA (wrong key or
        corrupt packet), or stateful, no key gives a packet with A a plausible one."""

    @property
    def discarding(self) -> bool:
        """Stateful: a loss was seen and no packet with A has arrived since."""
        return self._next < 0 and self._stateful

    def take_reset_request(self) -> bool:
        """True once per detected loss (stateful): the link then sends one CCP Reset-Request."""
        if self.reset_pending:
            self.reset_pending = False
            return True
        return False

    def decrypt(self, information: bytes | bytearray | memoryview, offset: int = 0) -> tuple[int, bytes] | None:
        """(inner protocol, payload) of an MPPE packet, or None when it is dropped.

        The packet starts ``offset`` bytes into ``information`` (the data path passes a whole PPP frame
        and the length of its address, control and protocol fields, which saves a slice)."""
        if offset + 3 < len(information) <= offset + MAX_INFORMATION:
            first = information[offset]
            count = (first & 0x0F) << 8 | information[offset + 1]
            if count == self._next and first & 0x90 == 0x10 and count & 0xFF != 0xFF:
                # Stateful, in sequence, neither A nor a flag packet: the RC4 stream runs on.
                self._next = (count + 1) & 0xFFF
                data = self._update(information[offset + 2 :])
                if data[0] == 0 and 0x21 <= data[1] <= 0xFA:  # FIRST_PROTOCOL, LAST_PROTOCOL
                    return data[1], data[2:]
                return self._checked(data, count)
        return self._decrypt(information[offset:] if offset else information)

    def decrypt_next(self, frame: bytes | bytearray | memoryview, offset: int) -> bytes | None:
        """The common packet decrypted in one call, else None with nothing changed (the session's receive
        path for what its hot path leaves, ``PppSession.receive_frame``; the hot path itself does these
        cases inline, held equal by ``tests/test_session_straight.py``).

        The MPPE packet starts ``offset`` bytes into the PPP ``frame``.  The common packet is the next one,
        3 to :data:`MAX_INFORMATION` bytes: stateless with A and D (one key change), stateful in step
        with D only and not a flag packet (the RC4 stream runs on).  The result is its decryption, the
        inner protocol field first, two bytes (``00 21`` to ``00 FA``: PFC-compressed ones are expanded,
        which costs a copy); empty when the packet decrypted to no protocol MPPE carries: dropped and
        counted as :meth:`decrypt` does (stateful, a loss: see :meth:`take_reset_request`).  None: not the
        common packet, nothing done; :meth:`decrypt` takes it."""
        if not 3 < len(frame) - offset <= 16388:  # MAX_INFORMATION (a literal: no global lookup)
            return None
        first = frame[offset]
        count = (first & 0x0F) << 8 | frame[offset + 1]
        if count == self._next:  # stateful and in step (never stateless: _next stays -1)
            if first & 0x90 != 0x10 or count & 0xFF == 0xFF:  # A, or a flag packet: a key change
                return None
            self._next = (count + 1) & 0xFFF
            data: bytes = self._update(frame[offset + 2 :])
            if not data[0] and CARRIED[data[1]]:
                return data
            return self.settle(data, count, None)
        if first & 0x90 != 0x90 or (count - self._last) & 0xFFF != 1 or self._ahead or self._stateful:
            return None  # not the next stateless packet, or keys computed ahead to use first
        key = self._changer.next(self._key)
        self.key_changes += 1
        data = OneShotRC4(key).encrypt(bytes(frame[offset + 2 :]))  # bytes in, bytes out
        if not data[0] and CARRIED[data[1]]:
            self._key = key
            self._last = count
            return data
        return self.settle(data, count, key)

    def settle(self, data: bytes, count: int, key: bytes | None) -> bytes:
        """The end of a common packet (see :meth:`decrypt_next`) whose decryption ``data`` does not start
        with a 2-byte inner protocol field MPPE carries: a PFC-compressed field, or a wrong key (stateful:
        a loss; stateless: a corrupt packet).  ``count`` is its coherency count, ``key`` the stateless
        packet's key (None: stateful, the stream has already run on).  Returns what :meth:`decrypt_next`
        returns for it: the packet with its protocol field expanded, or empty, dropped and counted.  The
        receive data path (``pypptp.aio.session``), which decrypts the common packet itself, ends such a
        packet here too."""
        if key is None:
            inner = self._checked(data, count)
        else:
            inner = _inner(data)
            if inner is None:  # wrong key or corrupt packet: keep the state the peer still agrees with
                self._ahead += key  # computed once: kept for the next packet
                self.dropped["bad protocol"] += 1
            else:
                self._key = key
                self._last = count
        if inner is None:
            return b""
        return _PROTOCOLS[inner[0]] + inner[1]  # a PFC-compressed protocol field, expanded

    def _decrypt(self, information: bytes | bytearray | memoryview) -> tuple[int, bytes] | None:
        """Everything but the stateful fast path: checks, key changes, loss."""
        if len(information) > MAX_INFORMATION:
            self.dropped["oversize"] += 1
            return None
        if self._stateful:
            if len(information) < 3:  # header and at least a PFC-compressed protocol
                self.dropped["short"] += 1
                return None
            first = information[0]
            if not first & ENCRYPTED:
                self.dropped["unencrypted"] += 1
                return None
            return self._decrypt_stateful(information, first, (first & 0x0F) << 8 | information[1])
        changes = self._stateless_changes(information)
        if not changes:
            return None
        key = self._key_ahead(changes)
        context = OneShotRC4(key)
        if changes == 1:  # the next count: the cheap check
            inner = _inner(context.encrypt(bytes(information[2:])))
            if inner is None:  # wrong key or corrupt packet: keep the state the peer still agrees with
                self.dropped["bad protocol"] += 1
                return None
        else:  # a jump: committed only for a plausible packet, a forged one must not move the keys
            head = context.encrypt(bytes(information[2 : 2 + _HEAD]))
            if not _plausible(head, len(information) - 2):
                self.dropped["implausible jump"] += 1
                return None
            data = head + context.encrypt(bytes(information[2 + _HEAD :]))
            inner = (data[0], data[1:]) if data[0] else (data[1], data[2:])
        self._commit(key, changes)
        self._last = (self._last + changes) & 0xFFF
        return inner

    def _stateless_changes(self, information: bytes | bytearray | memoryview) -> int:
        """Stateless: the checks, then how many key changes the packet's count asks for (RFC 3078
        section 8.1: as many as the count moved), 1 to 2047; 0 when the packet is dropped."""
        if len(information) < 3:  # header and at least a PFC-compressed protocol
            self.dropped["short"] += 1
            return 0
        first = information[0]
        if not first & ENCRYPTED:
            self.dropped["unencrypted"] += 1
            return 0
        if not first & FLUSHED:
            self.dropped["not flushed"] += 1
            return 0
        changes = (((first & 0x0F) << 8 | information[1]) - self._last) & 0xFFF
        if changes == 0:
            self.dropped["duplicate"] += 1
            return 0
        if changes >= LATE:
            self.dropped["late"] += 1
            return 0
        return changes

    def _key_ahead(self, changes: int) -> bytes:
        """The session key ``changes`` (at least 1) key changes after the current one, from the keys
        computed ahead; those missing are computed now and kept.  Nothing is committed."""
        ahead, length = self._ahead, self._length
        cached = len(ahead) // length
        if changes <= cached:
            return bytes(ahead[(changes - 1) * length : changes * length])
        key = bytes(ahead[-length:]) if cached else self._key
        next_key = self._changer.next
        for _ in range(changes - cached):
            key = next_key(key)
            ahead += key
        self.key_changes += changes - cached
        return key

    def _commit(self, key: bytes, changes: int) -> None:
        """``key``, ``changes`` key changes after the current one, becomes the current key."""
        self._key = key
        ahead = self._ahead
        if ahead and changes:
            del ahead[: changes * self._length]

    def _decrypt_stateful(
        self, information: bytes | bytearray | memoryview, first: int, count: int
    ) -> tuple[int, bytes] | None:
        flag = count & 0xFF == 0xFF
        if self._next < 0:  # discarding
            if not first & FLUSHED:  # RFC 3078 section 8.2: silently discard until A
                self.dropped["discarding"] += 1
                return None
            # One key change per flag packet missed: the 256-blocks crossed since the last good packet
            # + 1, as Linux counts them.  Then the packet's own change, in _flushed.
            missed = ((count >> 8) - (((self._last + 1) & 0xFFF) >> 8)) & 0x0F
            return self._flushed(information, count, flag, missed)
        if count != self._next:
            last = (self._next - 1) & 0xFFF
            if count == last:
                self.dropped["duplicate"] += 1
                return None
            self._lose(last)
            self.dropped["lost"] += 1
            return None
        if first & FLUSHED:
            return self._flushed(information, count, flag, 0)
        if flag:  # a flag packet without A: only an RFC sender sends one (Linux would drop it)
            self._commit(self._key_ahead(1), 1)
            self._run(running_rc4(self._key))
        self._next = (count + 1) & 0xFFF
        return self._checked(self._update(information[2:]), count)

    def _checked(self, data: bytes, count: int) -> tuple[int, bytes] | None:
        """Stateful: the inner packet of ``data``, or a resynchronisation when it makes no sense."""
        inner = _inner(data)
        if inner is None:  # keys out of step, or a corrupt packet
            self._lose(count)
            self.dropped["bad protocol"] += 1
        return inner

    def _flushed(
        self, information: bytes | bytearray | memoryview, count: int, flag: bool, missed: int
    ) -> tuple[int, bytes] | None:
        """A packet with A, ``missed`` key changes owed for flag packets missed (0 in step): find the
        key that decrypts it.

        The first candidate that gives a :func:`_plausible` packet wins.  In step, the expected key
        (one change) also settles it with any valid protocol: at once for a flag packet, otherwise when
        no other candidate is plausible.  While discarding, nothing less than plausible will do: a
        forged packet must not move the keys (each of its candidates would pass a protocol check 43 %
        of the time, and a key several changes ahead of the sender's stalls the link until the sender
        has caught up, one Reset cycle per change).
        """
        data = information[2:]
        length = len(data)
        size = min(length, _HEAD)
        # Only the head is decrypted, with keystream kept per candidate key: the rest for the winner.
        cipher = int.from_bytes(data[:size], "big")
        shift = 8 * (_HEAD - size)
        heads = self._heads
        in_step = self._next >= 0
        fallback: tuple[bytes, int, bytes] | None = None
        for changes, candidate in self._candidates(missed, flag):
            stream = heads.get(candidate)
            if stream is None:
                stream = heads[candidate] = int.from_bytes(OneShotRC4(candidate).encrypt(bytes(_HEAD)), "big")
            head = (cipher ^ stream >> shift).to_bytes(size, "big")
            if _plausible(head, length):
                return self._resynchronised(candidate, changes, head, data, count)
            if in_step and changes == 1 and _protocol(head, length):
                if flag:
                    return self._resynchronised(candidate, changes, head, data, count)
                fallback = (candidate, changes, head)
        if fallback is not None:
            return self._resynchronised(*fallback, data, count)
        if in_step:  # the last packet we agree on is the one before; ask for a reset
            self._lose((count - 1) & 0xFFF)
        # Already discarding: no new Reset-Request (the link repeats its own on a timer).  Each one
        # would make a Linux sender change key once more, and forged packets would ask for many.
        self.dropped["bad protocol"] += 1
        return None

    def _resynchronised(
        self, key: bytes, changes: int, head: bytes, data: bytes | bytearray | memoryview, count: int
    ) -> tuple[int, bytes] | None:
        """Stateful: ``key`` (``changes`` after the current one) decrypted ``head``; its RC4, past the
        head, decrypts the rest of ``data`` and becomes the running one."""
        context = running_rc4(key)
        context.update(bytes(len(head)))
        decrypted = head + context.update(data[len(head) :])
        self._commit(key, changes)
        self._heads.clear()
        self._run(context)
        self._next = (count + 1) & 0xFFF
        return _inner(decrypted)

    def _run(self, context: CipherContext) -> None:
        """Stateful: ``context`` becomes the running RC4."""
        self._update, self._update_into = context.update, context.update_into

    def _candidates(self, missed: int, flag: bool) -> Iterator[tuple[int, bytes]]:
        """(key changes after the current key, key) a packet with A may use, likeliest first (see the
        module docstring), ``missed`` changes owed first.  Computed as needed, each once."""
        yield missed + 1, self._key_ahead(missed + 1)  # Linux: A means a key change
        if not flag or self._next < 0:
            # RFC 3078 section 8.2: RC4 re-initialised with the current key; or, discarding, a sender that
            # answers a Reset-Request at a flag position (as ours does) after a forged or repeated packet
            # with A already moved us on by the one change it makes
            yield missed, self._key_ahead(missed) if missed else self._key
        for extra in range(2, 2 + _SEARCH):  # the sender acted on Reset-Requests whose A packets we lost
            yield missed + extra, self._key_ahead(missed + extra)

    def _lose(self, last: int) -> None:
        """Stateful loss: drop until a packet with A, and ask for a CCP Reset-Request once."""
        self._last = last
        self._next = -1
        self.reset_pending = True
