"""SecureChat protocol version 1: an independent Python reference.

Written from docs/PROTOCOL.md alone (section numbers below refer to it), to check that the
document is enough to interoperate. It is a test tool, not a production library: it favours
readability over speed and makes no attempt at constant-time big-integer arithmetic (the only
field arithmetic here works on *public* keys; every secret operation goes through `cryptography`).

Dependencies: Python 3.11, the `cryptography` package.
"""

from __future__ import annotations

import hashlib
import hmac as _hmac
import struct
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, Optional

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF as _HKDF

# ---------------------------------------------------------------------------------------------
# Errors. "Refuse" in the document means: typed error, no state change, no output.
# ---------------------------------------------------------------------------------------------


class ProtocolError(Exception):
    """Any refusal."""


class DecodeError(ProtocolError):
    """Malformed encoding: version, type, truncation, trailing bytes, flag, bound (section 2)."""


class InvalidKey(ProtocolError):
    """A public key that fails section 2.1, or a DH whose output is all zero."""


class AuthError(ProtocolError):
    """DECRYPT failed. Deliberately one undistinguished error (6.3: no padding oracle)."""


class BadSignature(ProtocolError):
    pass


class TooManySkipped(ProtocolError):
    pass


class Duplicate(ProtocolError):
    pass


class Expired(ProtocolError):
    pass


class UnknownKey(ProtocolError):
    """Unknown prekey id, consumed one-time prekey, unknown sender chain."""


class StateError(ProtocolError):
    """Operation not allowed in this state (e.g. Bob sending before receiving)."""


class Malformed(ProtocolError):
    pass


class VersionMismatch(ProtocolError):
    pass


# ---------------------------------------------------------------------------------------------
# Labels (section 11). The hex column of the document is checked against the ASCII at import,
# so a typo in either would be caught here rather than as a mysterious vector mismatch.
# ---------------------------------------------------------------------------------------------

def _label(ascii_text: str, doc_hex: str) -> bytes:
    b = ascii_text.encode("ascii")
    assert b.hex() == doc_hex, f"PROTOCOL.md label hex disagrees with its ASCII: {ascii_text!r}"
    return b


X3DH_INFO = _label("SecureChat X3DH v1", "536563757265436861742058334448207631")
KDF_RK_INFO = _label("SecureChat Double Ratchet root v1",
                     "5365637572654368617420446f75626c65205261746368657420726f6f74207631")
DR_MESSAGE_KEYS_INFO = _label(
    "SecureChat Double Ratchet message keys v1",
    "5365637572654368617420446f75626c652052617463686574206d657373616765206b657973207631")
SENDER_KEY_MESSAGE_KEYS_INFO = _label(
    "SecureChat Sender Key message keys v1",
    "536563757265436861742053656e646572204b6579206d657373616765206b657973207631")
ATTACHMENT_INFO = _label("SecureChat attachment v1", "53656375726543686174206174746163686d656e74207631")
SIGNED_PREKEY_CONTEXT = _label("SecureChat signed prekey v1",
                               "53656375726543686174207369676e6564207072656b6579207631")
SENDER_KEY_SIGNATURE_CONTEXT = _label(
    "SecureChat sender key message v1",
    "536563757265436861742073656e646572206b6579206d657373616765207631")
X3DH_F = b"\xff" * 32

# Limits (section 10).
MAX_SKIP = 1000
MAX_STORED_SKIPPED_KEYS = 2000
SENDER_KEY_MAX_FORWARD = 25_000
SENDER_KEY_MAX_STORED_KEYS = 2000
PREVIOUS_SENDER_CHAINS_KEPT = 4
MAX_PLAINTEXT = 262_144
MIN_CHUNK_SIZE, MAX_CHUNK_SIZE, DEFAULT_CHUNK_SIZE = 1024, 1_048_576, 65_536
FINGERPRINT_ITERATIONS = 5200
# ct is the padded plaintext (<= MAX_PLAINTEXT + 16) plus the 32-byte tag: "at most 256 KiB + 48".
MAX_CIPHERTEXT = MAX_PLAINTEXT + 48

VERSION = 0x01
T_RATCHET, T_PREKEY, T_SENDER_MSG, T_SENDER_DIST = 0x01, 0x02, 0x03, 0x04
T_BUNDLE, T_SIGNED_PREKEY, T_ONE_TIME_PREKEY, T_ATTACHMENT = 0x10, 0x11, 0x12, 0x20

U32_MAX = 2**32 - 1


def u32(n: int) -> bytes:
    return struct.pack(">I", n)


def u64(n: int) -> bytes:
    return struct.pack(">Q", n)


# ---------------------------------------------------------------------------------------------
# Primitives (section 1)
# ---------------------------------------------------------------------------------------------

def sha256(b: bytes) -> bytes:
    return hashlib.sha256(b).digest()


def sha512(b: bytes) -> bytes:
    return hashlib.sha512(b).digest()


def hmac_sha256(key: bytes, msg: bytes) -> bytes:
    return _hmac.new(key, msg, hashlib.sha256).digest()


def hkdf(salt: Optional[bytes], ikm: bytes, info: bytes, length: int) -> bytes:
    # A missing salt is 32 zero bytes (RFC 5869's default for SHA-256); spelled out so that
    # callers passing 0^32 explicitly and callers passing None agree visibly.
    return _HKDF(algorithm=hashes.SHA256(), length=length,
                 salt=salt if salt is not None else b"\x00" * 32, info=info).derive(ikm)


def x25519_public(priv: bytes) -> bytes:
    return X25519PrivateKey.from_private_bytes(priv).public_key().public_bytes_raw()


def dh(priv: bytes, pub: bytes) -> bytes:
    """X25519, refusing an invalid peer key (2.1) and an all-zero output (section 1)."""
    validate_x25519_public(pub)
    try:
        out = X25519PrivateKey.from_private_bytes(priv).exchange(X25519PublicKey.from_public_bytes(pub))
    except ValueError as e:  # OpenSSL refuses an all-zero result itself
        raise InvalidKey("DH output is zero") from e
    if out == b"\x00" * 32:
        raise InvalidKey("DH output is zero")
    return out


def ed25519_public(seed: bytes) -> bytes:
    return Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes_raw()


def ed25519_sign(seed: bytes, msg: bytes) -> bytes:
    return Ed25519PrivateKey.from_private_bytes(seed).sign(msg)


def ed25519_verify(pub: bytes, sig: bytes, msg: bytes) -> None:
    if len(sig) != 64:
        raise BadSignature("signature length")
    try:
        Ed25519PublicKey.from_public_bytes(pub).verify(sig, msg)
    except (InvalidSignature, ValueError) as e:
        raise BadSignature("signature does not verify") from e


# ---------------------------------------------------------------------------------------------
# Curve arithmetic on public keys (sections 2.1 and 3). Plain Python ints.
# ---------------------------------------------------------------------------------------------

P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493
D = (-121665 * pow(121666, -1, P)) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)

# The five canonical u-coordinates of small-order points (2.1).
X25519_SMALL_ORDER_U = {
    0, 1, P - 1,
    int.from_bytes(bytes.fromhex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"), "little"),
    int.from_bytes(bytes.fromhex("5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157"), "little"),
}

# Extended twisted Edwards coordinates (X:Y:Z:T), x = X/Z, y = Y/Z, xy = T/Z; a = -1.
IDENTITY = (0, 1, 1, 0)


def _pt_add(p1, p2):
    # RFC 8032 section 5.1.4 (complete addition law, so it also doubles and handles O).
    X1, Y1, Z1, T1 = p1
    X2, Y2, Z2, T2 = p2
    A = (Y1 - X1) * (Y2 - X2) % P
    B = (Y1 + X1) * (Y2 + X2) % P
    C = 2 * D * T1 * T2 % P
    Dd = 2 * Z1 * Z2 % P
    E, F, G, H = B - A, Dd - C, Dd + C, B + A
    return (E * F % P, G * H % P, F * G % P, E * H % P)


def pt_mul(k: int, pt):
    # Double-and-add: variable time, acceptable because only public points are multiplied.
    acc = IDENTITY
    while k:
        if k & 1:
            acc = _pt_add(acc, pt)
        pt = _pt_add(pt, pt)
        k >>= 1
    return acc


def pt_is_identity(pt) -> bool:
    X, Y, Z, _ = pt
    return X % P == 0 and (Y - Z) % P == 0


def pt_affine(pt):
    X, Y, Z, _ = pt
    zi = pow(Z, -1, P)
    return X * zi % P, Y * zi % P


def pt_encode(pt) -> bytes:
    x, y = pt_affine(pt)
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


def _sqrt(a: int) -> Optional[int]:
    # p = 5 (mod 8): candidate a^((p+3)/8), fixed up by sqrt(-1) if it squares to -a.
    x = pow(a, (P + 3) // 8, P)
    if x * x % P == a % P:
        return x
    x = x * SQRT_M1 % P
    if x * x % P == a % P:
        return x
    return None


def recover_x(y: int, sign: int) -> Optional[int]:
    """x with the given sign bit such that (x, y) is on the curve, without any canonicity check."""
    num = (y * y - 1) % P
    den = (D * y * y + 1) % P
    x = _sqrt(num * pow(den, -1, P) % P)
    if x is None:
        return None
    if x & 1 != sign:
        x = (P - x) % P
    return x


BASE_Y = 4 * pow(5, -1, P) % P
BASE = (recover_x(BASE_Y, 0), BASE_Y, 1, recover_x(BASE_Y, 0) * BASE_Y % P)


def ed25519_decode_point(b: bytes):
    """Decode with the checks of 2.1 that concern the *encoding*: canonical and on the curve."""
    if len(b) != 32:
        raise InvalidKey("Ed25519 public key must be 32 bytes")
    n = int.from_bytes(b, "little")
    sign, y = n >> 255, n & ((1 << 255) - 1)
    if y >= P:
        raise InvalidKey("non-canonical y (y >= p)")
    x = recover_x(y, sign)
    if x is None:
        raise InvalidKey("not on the curve")
    if x == 0 and sign:
        # Would decode to the same point as the sign-clear encoding: a second encoding.
        raise InvalidKey("non-canonical: x = 0 with the sign bit set")
    return (x, y, 1, x * y % P)


def validate_ed25519_public(b: bytes):
    """Full 2.1 validation of an identity or sender signing key; returns the point."""
    pt = ed25519_decode_point(b)
    if pt_is_identity(pt_mul(8, pt)):
        raise InvalidKey("small order (8P = O)")
    if not pt_is_identity(pt_mul(L, pt)):
        raise InvalidKey("not in the prime-order subgroup (lP != O)")
    return pt


def ed25519_public_to_x25519(b: bytes) -> bytes:
    """crypto_sign_ed25519_pk_to_curve25519: u = (1 + y) / (1 - y)."""
    _, y = pt_affine(validate_ed25519_public(b))
    # y = 1 is the identity, already refused above, so 1 - y is invertible.
    u = (1 + y) * pow((1 - y) % P, -1, P) % P
    return u.to_bytes(32, "little")


def ed25519_seed_to_x25519_private(seed: bytes) -> bytes:
    """crypto_sign_ed25519_sk_to_curve25519: the clamped first half of SHA-512(seed)."""
    x = bytearray(sha512(seed)[:32])
    x[0] &= 0xF8
    x[31] &= 0x7F
    x[31] |= 0x40
    return bytes(x)


def validate_x25519_public(b: bytes) -> None:
    if len(b) != 32:
        raise InvalidKey("X25519 public key must be 32 bytes")
    if b[31] & 0x80:
        raise InvalidKey("X25519 public key has bit 255 set")
    u = int.from_bytes(b, "little")
    if u >= P:
        raise InvalidKey("X25519 public key u >= p")
    if u in X25519_SMALL_ORDER_U:
        raise InvalidKey("X25519 public key of small order")


# ---------------------------------------------------------------------------------------------
# Strict decoding helper (section 2)
# ---------------------------------------------------------------------------------------------

class Reader:
    def __init__(self, data: bytes):
        self.data, self.pos = bytes(data), 0

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise DecodeError("truncated")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def u8(self) -> int:
        return self.take(1)[0]

    def u32(self) -> int:
        return struct.unpack(">I", self.take(4))[0]

    def u64(self) -> int:
        return struct.unpack(">Q", self.take(8))[0]

    def flag(self) -> bool:
        f = self.u8()
        if f not in (0, 1):
            raise DecodeError("flag byte other than 0x00/0x01")
        return f == 1

    def rest(self) -> bytes:
        return self.take(len(self.data) - self.pos)

    def prefix(self, type_byte: int) -> None:
        v = self.u8()
        if v != VERSION:
            raise DecodeError(f"unknown version {v}")
        t = self.u8()
        if t != type_byte:
            raise DecodeError(f"unexpected type 0x{t:02x}")

    def end(self) -> None:
        if self.pos != len(self.data):
            raise DecodeError("bytes left over")


def _ed_key(r: Reader) -> bytes:
    k = r.take(32)
    validate_ed25519_public(k)
    return k


def _x_key(r: Reader) -> bytes:
    k = r.take(32)
    validate_x25519_public(k)
    return k


# ---------------------------------------------------------------------------------------------
# Prekeys (section 4)
# ---------------------------------------------------------------------------------------------

def signed_prekey_signature_input(spk_id: int, spk_pub: bytes, created_at: int) -> bytes:
    return SIGNED_PREKEY_CONTEXT + u32(spk_id) + spk_pub + u64(created_at)


@dataclass
class SignedPrekey:
    id: int
    public: bytes
    created_at: int
    signature: bytes

    def encode(self) -> bytes:
        return bytes([VERSION, T_SIGNED_PREKEY]) + u32(self.id) + self.public + u64(self.created_at) + self.signature

    @staticmethod
    def decode(b: bytes) -> "SignedPrekey":
        r = Reader(b)
        r.prefix(T_SIGNED_PREKEY)
        spk = SignedPrekey(r.u32(), _x_key(r), r.u64(), r.take(64))
        r.end()
        return spk


@dataclass
class OneTimePrekey:
    id: int
    public: bytes

    def encode(self) -> bytes:
        return bytes([VERSION, T_ONE_TIME_PREKEY]) + u32(self.id) + self.public

    @staticmethod
    def decode(b: bytes) -> "OneTimePrekey":
        r = Reader(b)
        r.prefix(T_ONE_TIME_PREKEY)
        o = OneTimePrekey(r.u32(), _x_key(r))
        r.end()
        return o


@dataclass
class Bundle:
    identity_key: bytes
    signed_prekey_id: int
    signed_prekey: bytes
    created_at: int
    signature: bytes
    one_time_prekey_id: Optional[int] = None
    one_time_prekey: Optional[bytes] = None

    def encode(self) -> bytes:
        out = (bytes([VERSION, T_BUNDLE]) + self.identity_key + u32(self.signed_prekey_id)
               + self.signed_prekey + u64(self.created_at) + self.signature)
        if self.one_time_prekey is None:
            return out + b"\x00"
        return out + b"\x01" + u32(self.one_time_prekey_id) + self.one_time_prekey

    @staticmethod
    def decode(b: bytes) -> "Bundle":
        """Decode and verify (4.3): any invalid key or a bad signature refuses the bundle."""
        r = Reader(b)
        r.prefix(T_BUNDLE)
        ik = _ed_key(r)
        spk_id, spk, created, sig = r.u32(), _x_key(r), r.u64(), r.take(64)
        opk_id = opk = None
        if r.flag():
            opk_id, opk = r.u32(), _x_key(r)
        r.end()
        ed25519_verify(ik, sig, signed_prekey_signature_input(spk_id, spk, created))
        return Bundle(ik, spk_id, spk, created, sig, opk_id, opk)


# ---------------------------------------------------------------------------------------------
# X3DH (section 5)
# ---------------------------------------------------------------------------------------------

@dataclass
class X3DHResult:
    dh: list            # DH1..DH3[, DH4] as Alice computes them
    shared_secret: bytes
    associated_data: bytes


def _x3dh_finish(dhs: list, ik_a: bytes, ik_b: bytes) -> X3DHResult:
    sk = hkdf(b"\x00" * 32, X3DH_F + b"".join(dhs), X3DH_INFO, 32)
    return X3DHResult(dhs, sk, ik_a + ik_b)


def x3dh_alice(alice_identity_seed: bytes, ephemeral_priv: bytes, bundle: Bundle) -> X3DHResult:
    ik_a_x = ed25519_seed_to_x25519_private(alice_identity_seed)
    ik_b_x = ed25519_public_to_x25519(bundle.identity_key)
    dhs = [dh(ik_a_x, bundle.signed_prekey),
           dh(ephemeral_priv, ik_b_x),
           dh(ephemeral_priv, bundle.signed_prekey)]
    if bundle.one_time_prekey is not None:
        dhs.append(dh(ephemeral_priv, bundle.one_time_prekey))
    return _x3dh_finish(dhs, ed25519_public(alice_identity_seed), bundle.identity_key)


def x3dh_bob(bob_identity_seed: bytes, spk_priv: bytes, opk_priv: Optional[bytes],
             alice_identity: bytes, alice_ephemeral: bytes) -> X3DHResult:
    ik_b_x = ed25519_seed_to_x25519_private(bob_identity_seed)
    ik_a_x = ed25519_public_to_x25519(alice_identity)
    # Same order as Alice's so the IKM is identical: DH1 = DH(IK_A, SPK_B) = DH(SPK_B, IK_A), ...
    dhs = [dh(spk_priv, ik_a_x),
           dh(ik_b_x, alice_ephemeral),
           dh(spk_priv, alice_ephemeral)]
    if opk_priv is not None:
        dhs.append(dh(opk_priv, alice_ephemeral))
    return _x3dh_finish(dhs, alice_identity, ed25519_public(bob_identity_seed))


# ---------------------------------------------------------------------------------------------
# Message-key ENCRYPT / DECRYPT (6.3, reused by 7.1 with another info)
# ---------------------------------------------------------------------------------------------

def kdf_ck(ck: bytes) -> tuple[bytes, bytes]:
    """Returns (next chain key, message key) (6.2)."""
    return hmac_sha256(ck, b"\x02"), hmac_sha256(ck, b"\x01")


def _message_keys(mk: bytes, info: bytes) -> tuple[bytes, bytes, bytes]:
    okm = hkdf(b"\x00" * 32, mk, info, 80)
    return okm[:32], okm[32:64], okm[64:80]


def aead_encrypt(mk: bytes, plaintext: bytes, aad: bytes, info: bytes) -> bytes:
    enc_key, auth_key, iv = _message_keys(mk, info)
    padder = padding.PKCS7(128).padder()
    padded = padder.update(plaintext) + padder.finalize()
    e = Cipher(algorithms.AES(enc_key), modes.CBC(iv)).encryptor()
    ct = e.update(padded) + e.finalize()
    return ct + hmac_sha256(auth_key, aad + ct)


def aead_decrypt(mk: bytes, data: bytes, aad: bytes, info: bytes) -> bytes:
    # Length and tag first, padding only after authentication: no padding oracle. All failures
    # are the same AuthError.
    if len(data) < 48 or (len(data) - 32) % 16:
        raise AuthError("authentication failed")
    enc_key, auth_key, iv = _message_keys(mk, info)
    ct, tag = data[:-32], data[-32:]
    if not _hmac.compare_digest(tag, hmac_sha256(auth_key, aad + ct)):
        raise AuthError("authentication failed")
    d = Cipher(algorithms.AES(enc_key), modes.CBC(iv)).decryptor()
    padded = d.update(ct) + d.finalize()
    try:
        unpadder = padding.PKCS7(128).unpadder()
        return unpadder.update(padded) + unpadder.finalize()
    except ValueError as e:
        raise AuthError("authentication failed") from e


# ---------------------------------------------------------------------------------------------
# Double Ratchet (section 6)
# ---------------------------------------------------------------------------------------------

def kdf_rk(rk: bytes, dh_out: bytes) -> tuple[bytes, bytes]:
    okm = hkdf(rk, dh_out, KDF_RK_INFO, 64)
    return okm[:32], okm[32:]


@dataclass(frozen=True)
class Header:
    dh: bytes
    pn: int
    n: int

    def encode(self) -> bytes:
        return self.dh + u32(self.pn) + u32(self.n)

    @staticmethod
    def read(r: Reader) -> "Header":
        return Header(_x_key(r), r.u32(), r.u32())


def encode_ratchet_message(h: Header, ciphertext: bytes) -> bytes:
    return bytes([VERSION, T_RATCHET]) + h.encode() + ciphertext


def decode_ratchet_message(b: bytes) -> tuple[Header, bytes]:
    r = Reader(b)
    r.prefix(T_RATCHET)
    h = Header.read(r)
    c = r.rest()
    # 6.6: ct is 16k bytes (k >= 1) followed by the 32-byte tag, at most 256 KiB + 48 in all.
    if len(c) < 48 or (len(c) - 32) % 16 or len(c) > MAX_CIPHERTEXT:
        raise DecodeError("ratchet ciphertext length out of bounds")
    return h, c


class KeySource:
    """Where a party's new ratchet key pairs come from.

    The index is part of the ratchet state so that a refused message, which discards the state
    copy, also 'un-generates' its key pair: the next generation reuses the same entry. This is
    what lets the vectors list committed keys only (section 13)."""

    def __init__(self, make: Callable[[int], bytes], limit: Optional[int] = None):
        self.make, self.limit, self.index = make, limit, 0
        self.overdrawn = False  # set when a key beyond `limit` had to be invented

    def clone(self) -> "KeySource":
        k = KeySource(self.make, self.limit)
        k.index, k.overdrawn = self.index, self.overdrawn
        return k

    def next_private(self) -> bytes:
        i = self.index
        self.index += 1
        if self.limit is not None and i >= self.limit:
            # A vector ran out of listed keys. Keep going with a throw-away key so that a message
            # which must be refused anyway is refused for its own reason; if such a state is ever
            # committed, the checker reports it through `overdrawn`.
            self.overdrawn = True
            return sha256(b"unlisted ratchet key" + u32(i))
        return self.make(i)

    @staticmethod
    def from_list(privs: list) -> "KeySource":
        return KeySource(lambda i: privs[i], limit=len(privs))

    @staticmethod
    def system() -> "KeySource":
        import os
        return KeySource(lambda i: os.urandom(32))


@dataclass
class RatchetState:
    ad: bytes
    rk: bytes
    dhs_priv: bytes
    dhs_pub: bytes
    dhr: Optional[bytes]
    cks: Optional[bytes]
    ckr: Optional[bytes]
    ns: int
    nr: int
    pn: int
    skipped: "OrderedDict[tuple[bytes, int], bytes]"
    keys: KeySource

    def copy(self) -> "RatchetState":
        return RatchetState(self.ad, self.rk, self.dhs_priv, self.dhs_pub, self.dhr, self.cks, self.ckr,
                            self.ns, self.nr, self.pn, OrderedDict(self.skipped), self.keys.clone())

    # Section 12 local encoding: also used by the checker to prove "state unchanged".
    def encode(self) -> bytes:
        flags = (self.dhr is not None) | (self.cks is not None) << 1 | (self.ckr is not None) << 2
        out = bytearray([VERSION]) + struct.pack(">H", len(self.ad)) + self.ad + self.rk + self.dhs_priv
        out.append(flags)
        for v in (self.dhr, self.cks, self.ckr):
            if v is not None:
                out += v
        out += u32(self.ns) + u32(self.nr) + u32(self.pn) + u32(len(self.skipped))
        for (k, n), mk in self.skipped.items():  # insertion order = oldest first
            out += k + u32(n) + mk
        return bytes(out)

    @staticmethod
    def decode(b: bytes, keys: KeySource) -> "RatchetState":
        r = Reader(b)
        if r.u8() != VERSION:
            raise DecodeError("unknown ratchet state version")
        ad = r.take(struct.unpack(">H", r.take(2))[0])
        rk, dhs_priv, flags = r.take(32), r.take(32), r.u8()
        if flags & ~7:
            raise DecodeError("unknown ratchet state flags")
        dhr = r.take(32) if flags & 1 else None
        cks = r.take(32) if flags & 2 else None
        ckr = r.take(32) if flags & 4 else None
        ns, nr, pn, count = r.u32(), r.u32(), r.u32(), r.u32()
        skipped = OrderedDict()
        for _ in range(count):
            k, n, mk = r.take(32), r.u32(), r.take(32)
            skipped[(k, n)] = mk
        r.end()
        return RatchetState(ad, rk, dhs_priv, x25519_public(dhs_priv), dhr, cks, ckr, ns, nr, pn, skipped, keys)


def ratchet_init_alice(sk: bytes, ad: bytes, bob_spk_pub: bytes, keys: KeySource) -> RatchetState:
    priv = keys.next_private()
    rk, cks = kdf_rk(sk, dh(priv, bob_spk_pub))
    return RatchetState(ad, rk, priv, x25519_public(priv), bob_spk_pub, cks, None, 0, 0, 0, OrderedDict(), keys)


def ratchet_init_bob(sk: bytes, ad: bytes, spk_priv: bytes, keys: KeySource) -> RatchetState:
    return RatchetState(ad, sk, spk_priv, x25519_public(spk_priv), None, None, None, 0, 0, 0, OrderedDict(), keys)


def ratchet_encrypt(st: RatchetState, plaintext: bytes) -> tuple[Header, bytes, bytes]:
    """Mutates st; returns (header, ciphertext, message key)."""
    if st.cks is None:
        raise StateError("no sending chain yet (the responder cannot send before receiving)")
    if len(plaintext) > MAX_PLAINTEXT:
        raise DecodeError("plaintext too large")
    if st.ns > U32_MAX:
        raise StateError("sending chain exhausted")
    st.cks, mk = kdf_ck(st.cks)
    h = Header(st.dhs_pub, st.pn, st.ns)
    st.ns += 1
    return h, aead_encrypt(mk, plaintext, st.ad + h.encode(), DR_MESSAGE_KEYS_INFO), mk


def _skip_message_keys(st: RatchetState, until: int) -> None:
    if st.nr + MAX_SKIP < until:
        raise TooManySkipped("too many skipped messages")
    if st.ckr is None:
        return
    while st.nr < until:
        st.ckr, mk = kdf_ck(st.ckr)
        st.skipped[(st.dhr, st.nr)] = mk
        st.nr += 1
        # One bound over all chains; insertion order is age, so the first entry is the oldest.
        while len(st.skipped) > MAX_STORED_SKIPPED_KEYS:
            st.skipped.popitem(last=False)


def _dh_ratchet(st: RatchetState, h: Header) -> None:
    st.pn = st.ns
    st.ns = st.nr = 0
    st.dhr = h.dh
    st.rk, st.ckr = kdf_rk(st.rk, dh(st.dhs_priv, st.dhr))
    st.dhs_priv = st.keys.next_private()
    st.dhs_pub = x25519_public(st.dhs_priv)
    st.rk, st.cks = kdf_rk(st.rk, dh(st.dhs_priv, st.dhr))


def ratchet_decrypt(st: RatchetState, h: Header, ciphertext: bytes) -> tuple[RatchetState, bytes, bytes]:
    """All-or-nothing: works on a copy and returns (new state, plaintext, message key).

    On any exception the caller still holds the untouched original, including its key source
    position (so a key pair generated in the DH step is discarded)."""
    s = st.copy()
    if (h.dh, h.n) in s.skipped:
        mk = s.skipped.pop((h.dh, h.n))
    else:
        if h.dh != s.dhr:
            _skip_message_keys(s, h.pn)
            _dh_ratchet(s, h)
        elif h.n < s.nr:
            raise Duplicate("message key already used or never stored")
        if s.ckr is None:
            # Only Alice before her first receipt: DHr is Bob's signed prekey, which no honest
            # message carries as its ratchet key. Not covered by the document; refuse.
            raise StateError("no receiving chain for this ratchet key")
        _skip_message_keys(s, h.n)
        s.ckr, mk = kdf_ck(s.ckr)
        s.nr += 1
    pt = aead_decrypt(mk, ciphertext, s.ad + h.encode(), DR_MESSAGE_KEYS_INFO)
    return s, pt, mk


class Session:
    """A pairwise session: ratchet state plus the pending prekey initiation of 6.7."""

    def __init__(self, state: RatchetState, initiation: Optional["PrekeyInitiation"] = None):
        self.state = state
        self.initiation = initiation  # Alice: sent with every message until she first receives

    def encrypt(self, plaintext: bytes) -> bytes:
        h, c, _ = ratchet_encrypt(self.state, plaintext)
        inner = encode_ratchet_message(h, c)
        if self.initiation is not None:
            return self.initiation.encode(inner)
        return inner

    def decrypt_ratchet_message(self, b: bytes) -> bytes:
        h, c = decode_ratchet_message(b)
        self.state, pt, _ = ratchet_decrypt(self.state, h, c)
        self.initiation = None
        return pt


# ---------------------------------------------------------------------------------------------
# Prekey messages (6.7, 6.8)
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PrekeyInitiation:
    identity_key: bytes
    ephemeral: bytes
    signed_prekey_id: int
    one_time_prekey_id: Optional[int]

    def encode(self, ratchet_message: bytes) -> bytes:
        out = bytes([VERSION, T_PREKEY]) + self.identity_key + self.ephemeral + u32(self.signed_prekey_id)
        if self.one_time_prekey_id is None:
            out += b"\x00"
        else:
            out += b"\x01" + u32(self.one_time_prekey_id)
        return out + ratchet_message


def decode_prekey_message(b: bytes) -> tuple[PrekeyInitiation, Header, bytes, bytes]:
    """Returns (initiation, inner header, inner ciphertext, inner encoding)."""
    r = Reader(b)
    r.prefix(T_PREKEY)
    ik, ek, spk_id = _ed_key(r), _x_key(r), r.u32()
    opk_id = r.u32() if r.flag() else None
    inner = r.rest()
    h, c = decode_ratchet_message(inner)
    return PrekeyInitiation(ik, ek, spk_id, opk_id), h, c, inner


def initiate_session(alice_identity_seed: bytes, bundle_bytes: bytes, ephemeral_priv: bytes,
                     keys: KeySource) -> tuple[Session, X3DHResult]:
    bundle = Bundle.decode(bundle_bytes)
    res = x3dh_alice(alice_identity_seed, ephemeral_priv, bundle)
    st = ratchet_init_alice(res.shared_secret, res.associated_data, bundle.signed_prekey, keys)
    init = PrekeyInitiation(ed25519_public(alice_identity_seed), x25519_public(ephemeral_priv),
                            bundle.signed_prekey_id, bundle.one_time_prekey_id)
    return Session(st, init), res


class PrekeyStore:
    """Bob's side of 6.8: prekeys by id, and the sessions created by prekey messages."""

    def __init__(self, identity_seed: bytes, keys_factory: Callable[[], KeySource] = KeySource.system):
        self.identity_seed = identity_seed
        self.signed: dict[int, bytes] = {}
        self.one_time: dict[int, bytes] = {}
        self.sessions: dict[PrekeyInitiation, Session] = {}
        self.keys_factory = keys_factory

    def accept(self, b: bytes) -> tuple[Session, bytes, X3DHResult | None]:
        init, h, c, inner = decode_prekey_message(b)
        existing = self.sessions.get(init)
        if existing is not None:
            # Same initiation again: it belongs to the session it created (a duplicate there
            # is refused by that session, not by starting a second one).
            return existing, existing.decrypt_ratchet_message(inner), None
        spk_priv = self.signed.get(init.signed_prekey_id)
        if spk_priv is None:
            raise UnknownKey("unknown signed prekey id")
        opk_priv = None
        if init.one_time_prekey_id is not None:
            opk_priv = self.one_time.get(init.one_time_prekey_id)
            if opk_priv is None:
                raise UnknownKey("unknown or consumed one-time prekey")
        res = x3dh_bob(self.identity_seed, spk_priv, opk_priv, init.identity_key, init.ephemeral)
        st = ratchet_init_bob(res.shared_secret, res.associated_data, spk_priv, self.keys_factory())
        st, pt, _ = ratchet_decrypt(st, h, c)
        # Only now, after authentication, is anything consumed or stored.
        if init.one_time_prekey_id is not None:
            del self.one_time[init.one_time_prekey_id]
        session = Session(st)
        self.sessions[init] = session
        return session, pt, res


# ---------------------------------------------------------------------------------------------
# Sender keys (section 7)
# ---------------------------------------------------------------------------------------------

def sender_message_signature_input(unsigned: bytes) -> bytes:
    return SENDER_KEY_SIGNATURE_CONTEXT + unsigned


@dataclass
class DistributionMessage:
    distribution_id: bytes
    chain_id: int
    iteration: int
    chain_key: bytes
    signing_public: bytes

    def encode(self) -> bytes:
        return (bytes([VERSION, T_SENDER_DIST]) + self.distribution_id + u32(self.chain_id)
                + u32(self.iteration) + self.chain_key + self.signing_public)

    @staticmethod
    def decode(b: bytes) -> "DistributionMessage":
        r = Reader(b)
        r.prefix(T_SENDER_DIST)
        m = DistributionMessage(r.take(16), r.u32(), r.u32(), r.take(32), _ed_key(r))
        r.end()
        if m.iteration == U32_MAX:
            raise DecodeError("iteration 2^32 - 1 is never used")
        return m


@dataclass
class SenderMessage:
    distribution_id: bytes
    chain_id: int
    iteration: int
    ciphertext: bytes
    signature: bytes
    signed_part: bytes  # bytes 0..<(length - 64)

    @staticmethod
    def decode(b: bytes) -> "SenderMessage":
        r = Reader(b)
        r.prefix(T_SENDER_MSG)
        dist, chain_id, it = r.take(16), r.u32(), r.u32()
        body = r.rest()
        if len(body) < 48 + 64:
            raise DecodeError("room message too short")
        ct, sig = body[:-64], body[-64:]
        if (len(ct) - 32) % 16 or len(ct) > MAX_CIPHERTEXT:
            raise DecodeError("room ciphertext length out of bounds")
        return SenderMessage(dist, chain_id, it, ct, sig, bytes(b[:-64]))


class SenderChain:
    """The sending side of 7.1."""

    def __init__(self, distribution_id: bytes, chain_id: int, iteration: int, chain_key: bytes,
                 signing_seed: bytes):
        self.distribution_id, self.chain_id = distribution_id, chain_id
        self.iteration, self.chain_key, self.signing_seed = iteration, chain_key, signing_seed
        self.signing_public = ed25519_public(signing_seed)

    def distribution_message(self) -> DistributionMessage:
        return DistributionMessage(self.distribution_id, self.chain_id, self.iteration, self.chain_key,
                                   self.signing_public)

    def encrypt(self, plaintext: bytes) -> tuple[bytes, bytes, int]:
        """Returns (serialized room message, message key, iteration)."""
        if self.iteration >= U32_MAX:
            raise StateError("sender chain exhausted: rotate")
        if len(plaintext) > MAX_PLAINTEXT:
            raise DecodeError("plaintext too large")
        it = self.iteration
        next_ck, mk = kdf_ck(self.chain_key)
        aad = bytes([VERSION, T_SENDER_MSG]) + self.distribution_id + u32(self.chain_id) + u32(it)
        unsigned = aad + aead_encrypt(mk, plaintext, aad, SENDER_KEY_MESSAGE_KEYS_INFO)
        sig = ed25519_sign(self.signing_seed, sender_message_signature_input(unsigned))
        self.chain_key, self.iteration = next_ck, it + 1
        return unsigned + sig, mk, it


@dataclass
class ReceiverChain:
    chain_id: int
    signing_public: bytes
    iteration: int          # the iteration of chain_key: the next one not yet derived
    chain_key: bytes
    skipped: "OrderedDict[int, bytes]" = field(default_factory=OrderedDict)

    def copy(self) -> "ReceiverChain":
        return ReceiverChain(self.chain_id, self.signing_public, self.iteration, self.chain_key,
                             OrderedDict(self.skipped))


@dataclass
class SenderKeyRecord:
    """Per (room, member): current chain last, up to 4 previous ones before it."""
    distribution_id: bytes
    chains: list  # of ReceiverChain, oldest first

    def copy(self) -> "SenderKeyRecord":
        return SenderKeyRecord(self.distribution_id, [c.copy() for c in self.chains])

    def encode(self) -> bytes:  # section 12
        out = bytearray([VERSION]) + self.distribution_id + bytes([len(self.chains)])
        for c in self.chains:
            out += u32(c.chain_id) + c.signing_public + u32(c.iteration) + c.chain_key + u32(len(c.skipped))
            for it, mk in c.skipped.items():
                out += u32(it) + mk
        return bytes(out)


class SenderKeyStore:
    """The receiving side of 7.2 and 7.4, for all rooms and members."""

    def __init__(self):
        self.records: dict[tuple[str, str], SenderKeyRecord] = {}
        self.bound: dict[bytes, tuple[str, str]] = {}

    def process_distribution(self, room: str, sender: str, b: bytes) -> bool:
        """Returns False when ignored (chain already held)."""
        m = DistributionMessage.decode(b)
        owner = self.bound.get(m.distribution_id)
        if owner is not None and owner != (room, sender):
            raise UnknownKey("distribution id already bound to another member")
        rec = self.records.get((room, sender))
        if rec is not None and rec.distribution_id != m.distribution_id:
            # Not specified by the document (a member's distribution id is stable); we treat a
            # new id from the same device as a fresh slot replacing the old one.
            del self.bound[rec.distribution_id]
            rec = None
        if rec is None:
            rec = SenderKeyRecord(m.distribution_id, [])
        if any(c.chain_id == m.chain_id for c in rec.chains):
            return False  # a replay never moves a chain backwards
        rec = rec.copy()
        rec.chains.append(ReceiverChain(m.chain_id, m.signing_public, m.iteration, m.chain_key))
        del rec.chains[:-(PREVIOUS_SENDER_CHAINS_KEPT + 1)]
        self.records[(room, sender)] = rec
        self.bound[m.distribution_id] = (room, sender)
        return True

    def decrypt(self, room: str, sender: str, b: bytes) -> tuple[bytes, bytes]:
        """Returns (plaintext, message key); all-or-nothing on the record."""
        rec = self.records.get((room, sender))
        m = SenderMessage.decode(b)
        if rec is None or rec.distribution_id != m.distribution_id:
            raise UnknownKey("no sender key for this distribution id")
        idx = next((i for i, c in enumerate(rec.chains) if c.chain_id == m.chain_id), None)
        if idx is None:
            raise UnknownKey("unknown chain id")
        # Signature first: a forgery must cost no key derivation (7.4).
        ed25519_verify(rec.chains[idx].signing_public, m.signature, sender_message_signature_input(m.signed_part))
        if m.iteration == U32_MAX:
            raise DecodeError("iteration 2^32 - 1 is never used")
        new = rec.copy()
        c = new.chains[idx]
        if m.iteration < c.iteration:
            mk = c.skipped.pop(m.iteration, None)
            if mk is None:
                if c.skipped and m.iteration < next(iter(c.skipped)):
                    raise Expired("older than every stored key")
                raise Duplicate("sender-key message already received")
        else:
            if m.iteration - c.iteration > SENDER_KEY_MAX_FORWARD:
                raise TooManySkipped("too far ahead in the sender chain")
            while c.iteration < m.iteration:
                c.chain_key, skipped_mk = kdf_ck(c.chain_key)
                c.skipped[c.iteration] = skipped_mk
                c.iteration += 1
                while len(c.skipped) > SENDER_KEY_MAX_STORED_KEYS:
                    c.skipped.popitem(last=False)
            c.chain_key, mk = kdf_ck(c.chain_key)
            c.iteration += 1
        pt = aead_decrypt(mk, m.ciphertext, m.signed_part[:26], SENDER_KEY_MESSAGE_KEYS_INFO)
        self.records[(room, sender)] = new
        return pt, mk


# ---------------------------------------------------------------------------------------------
# Safety numbers (section 8)
# ---------------------------------------------------------------------------------------------

def fingerprint(key: bytes, identifier: bytes, iterations: int = FINGERPRINT_ITERATIONS) -> bytes:
    h = sha512(b"\x00\x00" + key + identifier + key)
    for _ in range(iterations - 1):
        h = sha512(h + key)
    return h


def fingerprint_digits(h: bytes) -> str:
    return "".join("%05d" % (int.from_bytes(h[i:i + 5], "big") % 100000) for i in range(0, 30, 5))


def displayable(local_fp: bytes, remote_fp: bytes) -> str:
    a, b = fingerprint_digits(local_fp), fingerprint_digits(remote_fp)
    return a + b if a <= b else b + a


SCAN_PREFIX = bytes([0x08, 0x01, 0x12, 0x22, 0x0A, 0x20])
SCAN_MIDDLE = bytes([0x1A, 0x22, 0x0A, 0x20])


def scannable(local_fp: bytes, remote_fp: bytes) -> bytes:
    return SCAN_PREFIX + local_fp[:32] + SCAN_MIDDLE + remote_fp[:32]


def compare_scanned(code: bytes, local_fp: bytes, remote_fp: bytes) -> bool:
    """True on a match; Malformed / VersionMismatch as section 8 says."""
    # Version is judged before the rest of the layout, as libsignal parses the version field
    # first; the document does not fix this order.
    if len(code) >= 2 and code[0] == 0x08 and code[1] != 0x01:
        raise VersionMismatch("scannable fingerprint version")
    if len(code) != 74 or code[:6] != SCAN_PREFIX or code[38:42] != SCAN_MIDDLE:
        raise Malformed("scannable fingerprint layout")
    # Their "local" is our remote and the other way round.
    a = _hmac.compare_digest(code[6:38], remote_fp[:32])
    b = _hmac.compare_digest(code[42:74], local_fp[:32])
    return a and b


# ---------------------------------------------------------------------------------------------
# Attachments (section 9)
# ---------------------------------------------------------------------------------------------

def _attachment_keys(key: bytes, salt: bytes) -> tuple[AESGCM, bytes]:
    okm = hkdf(salt, key, ATTACHMENT_INFO, 39)
    return AESGCM(okm[:32]), okm[32:]


def _chunk_nonce(prefix: bytes, i: int, final: bool) -> bytes:
    if i > U32_MAX:
        raise DecodeError("too many chunks")
    return prefix + u32(i) + (b"\x01" if final else b"\x00")


def attachment_header(chunk_size: int, salt: bytes) -> bytes:
    if not MIN_CHUNK_SIZE <= chunk_size <= MAX_CHUNK_SIZE or len(salt) != 16:
        raise DecodeError("chunk size or salt out of bounds")
    return bytes([VERSION, T_ATTACHMENT]) + u32(chunk_size) + salt


def _read_exact(src, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        more = src.read(n - len(buf))
        if not more:
            break
        buf += more
    return buf


def encrypt_attachment_stream(key: bytes, salt: bytes, source, chunk_size: int = DEFAULT_CHUNK_SIZE
                              ) -> Iterator[bytes]:
    """Yields the header then each chunk, reading `source` (a binary file object) one chunk
    ahead: the only way to know, while streaming, which chunk is the final one."""
    header = attachment_header(chunk_size, salt)
    gcm, prefix = _attachment_keys(key, salt)
    yield header
    cur, i = _read_exact(source, chunk_size), 0
    while True:
        nxt = _read_exact(source, chunk_size) if len(cur) == chunk_size else b""
        final = not nxt
        yield gcm.encrypt(_chunk_nonce(prefix, i, final), cur, header)
        if final:
            return
        cur, i = nxt, i + 1


def encrypt_attachment(key: bytes, salt: bytes, plaintext: bytes, chunk_size: int = DEFAULT_CHUNK_SIZE) -> bytes:
    import io
    return b"".join(encrypt_attachment_stream(key, salt, io.BytesIO(plaintext), chunk_size))


class AttachmentDecryptor:
    """Streaming decryption. `update` releases authenticated chunks; only `finish` accepts the
    file (final chunk, digest, size). A chunk is known to be non-final only once more bytes
    follow it, so one full chunk is held back until then."""

    def __init__(self, key: bytes, expected_digest: Optional[bytes] = None, expected_size: Optional[int] = None):
        self.key, self.expected_digest, self.expected_size = key, expected_digest, expected_size
        self.buf, self.header, self.index, self.size = b"", None, 0, 0
        self.hash = hashlib.sha256()
        self.done = False

    def update(self, data: bytes) -> bytes:
        if self.done:
            raise DecodeError("data after the final chunk")
        self.hash.update(data)
        self.buf += data
        out = b""
        if self.header is None:
            if len(self.buf) < 22:
                return out
            r = Reader(self.buf[:22])
            r.prefix(T_ATTACHMENT)
            self.chunk_size, self.salt = r.u32(), r.take(16)
            if not MIN_CHUNK_SIZE <= self.chunk_size <= MAX_CHUNK_SIZE:
                raise DecodeError("chunk size out of bounds")
            self.header, self.buf = self.buf[:22], self.buf[22:]
            self.gcm, self.prefix = _attachment_keys(self.key, self.salt)
        sealed = self.chunk_size + 16
        while len(self.buf) > sealed:  # strictly more: this chunk cannot be the last one
            out += self._open(self.buf[:sealed], final=False)
            self.buf = self.buf[sealed:]
        return out

    def _open(self, chunk: bytes, final: bool) -> bytes:
        try:
            pt = self.gcm.decrypt(_chunk_nonce(self.prefix, self.index, final), chunk, self.header)
        except InvalidTag as e:
            raise AuthError("attachment chunk failed authentication") from e
        self.index += 1
        self.size += len(pt)
        return pt

    def finish(self) -> bytes:
        if self.header is None:
            raise DecodeError("truncated attachment header")
        if len(self.buf) < 16:
            raise AuthError("missing final chunk")
        out = self._open(self.buf, final=True)
        self.buf, self.done = b"", True
        if self.expected_digest is not None and not _hmac.compare_digest(self.hash.digest(), self.expected_digest):
            raise AuthError("attachment digest differs")
        if self.expected_size is not None and self.size != self.expected_size:
            raise AuthError("attachment size differs")
        return out


def decrypt_attachment(key: bytes, stream: bytes, digest: Optional[bytes] = None,
                       size: Optional[int] = None, feed: int = 4096) -> bytes:
    d = AttachmentDecryptor(key, digest, size)
    out = b""
    # Feed in small pieces to exercise the streaming path, not just the whole-buffer case.
    for i in range(0, len(stream), feed):
        out += d.update(stream[i:i + feed])
    return out + d.finish()


# ---------------------------------------------------------------------------------------------
# Deterministic randomness for the generator: SHA-256 of a label and a counter.
# ---------------------------------------------------------------------------------------------

class Drbg:
    def __init__(self, label: str):
        self.label, self.counter = label.encode(), 0

    def bytes(self, n: int) -> bytes:
        out = b""
        while len(out) < n:
            out += sha256(self.label + u32(self.counter))
            self.counter += 1
        return out[:n]

    def randbelow(self, n: int) -> int:
        return int.from_bytes(self.bytes(8), "big") % n

    def u32(self) -> int:
        return int.from_bytes(self.bytes(4), "big")


def labelled_key(label: str, i: int) -> bytes:
    return sha256(label.encode() + u32(i))
