#!/usr/bin/env python3
"""Generate Tests/Vectors/identity-libsodium.json from libsodium (via PyNaCl).

Why this exists: SecureChat converts Ed25519 identity keys to X25519 with its
own Swift field/curve code. These vectors come from an independent, widely
deployed implementation, so the Swift tests catch any divergence in the
birational map, the secret-key clamping, or the set of rejected public keys.

Usage:  pip install pynacl==1.6.2 && python3 Tests/Interop/libsodium_identity.py

The output is fully deterministic (no randomness anywhere): re-running the
script must reproduce the committed file byte for byte.

A second, report-only section probes how libsodium treats non-canonical
y encodings (y >= p). SecureChat rejects every such encoding; libsodium does
not, and we want that difference written down rather than discovered later.
Only encodings that libsodium rejects end up in the JSON file.
"""

import hashlib
import json
import pathlib
import sys

import nacl
import nacl.exceptions
from nacl.bindings import (
    crypto_scalarmult_base,
    crypto_sign_ed25519_pk_to_curve25519,
    crypto_sign_ed25519_sk_to_curve25519,
    crypto_sign_seed_keypair,
)

# PyNaCl statically links its own libsodium and does not bind
# sodium_version_string(), so the libsodium version cannot be queried at
# runtime. It is taken from the PyNaCl changelog / bundled configure.ac, and we
# refuse to run under any other PyNaCl so the "generator" field cannot lie.
BUNDLED_LIBSODIUM = {"1.6.2": "1.0.20-stable"}

OUT_PATH = pathlib.Path(__file__).resolve().parent.parent / "Vectors" / "identity-libsodium.json"
SEED_DOMAIN = b"securechat-identity-libsodium"
CASE_COUNT = 64

# --- Minimal edwards25519 arithmetic -----------------------------------------
# Only used to *construct* hostile inputs (torsion points, off-curve and
# mixed-order encodings). Speed and constant time are irrelevant here; clarity
# is what matters, so plain affine coordinates over Python ints.

P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493  # prime subgroup order
D = (-121665 * pow(121666, -1, P)) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)

IDENTITY = (0, 1)


def add(p1, p2):
    (x1, y1), (x2, y2) = p1, p2
    t = D * x1 * x2 * y1 * y2 % P
    x3 = (x1 * y2 + x2 * y1) * pow(1 + t, -1, P) % P
    y3 = (y1 * y2 + x1 * x2) * pow(1 - t, -1, P) % P
    return (x3, y3)


def mul(k, pt):
    acc = IDENTITY
    while k:
        if k & 1:
            acc = add(acc, pt)
        pt = add(pt, pt)
        k >>= 1
    return acc


def x_squared(y):
    """x^2 = (y^2 - 1) / (d*y^2 + 1); the denominator never vanishes since d is a non-square."""
    return (y * y - 1) * pow(D * y * y + 1, -1, P) % P


def is_square(a):
    return a % P == 0 or pow(a, (P - 1) // 2, P) == 1


def sqrt(a):
    """Square root mod p (p = 5 mod 8); caller guarantees a is a square."""
    r = pow(a, (P + 3) // 8, P)
    if r * r % P != a % P:
        r = r * SQRT_M1 % P
    assert r * r % P == a % P
    return r


def decode(y, sign):
    """Affine point for (y, sign bit of x), or None if y is not on the curve."""
    xx = x_squared(y)
    if not is_square(xx):
        return None
    x = sqrt(xx)
    if (x & 1) != sign:
        x = (P - x) % P
    return (x, y)


def encode_int(y, sign):
    """Raw 32-byte encoding; y is NOT reduced, so y >= p yields non-canonical bytes."""
    assert 0 <= y < 2**255
    return (y | (sign << 255)).to_bytes(32, "little")


def encode(pt):
    x, y = pt
    return encode_int(y, x & 1)


def order(pt):
    """Order of pt as a divisor of 8*L (the full group order)."""
    for n in (1, 2, 4, 8, L, 2 * L, 4 * L, 8 * L):
        if mul(n, pt) == IDENTITY:
            return n
    raise AssertionError("point order does not divide 8L")


BASE = decode(4 * pow(5, -1, P) % P, 0)
assert order(BASE) == L


def torsion_points():
    """All 8 points of the 8-torsion subgroup, generated from one order-8 point."""
    # Any y whose point has order 8; taken from the known 8-torsion y value and
    # then checked rather than trusted.
    y8 = 2707385501144840649318225287225658788936804267575313519463743609750303402022
    t8 = decode(y8, 0)
    assert order(t8) == 8
    points = [mul(k, t8) for k in range(8)]
    assert len(set(points)) == 8
    return points


# --- libsodium wrappers ------------------------------------------------------


def libsodium_pk_to_x25519(ed_pk):
    """libsodium's conversion, or None when libsodium rejects the key."""
    try:
        return crypto_sign_ed25519_pk_to_curve25519(ed_pk)
    except nacl.exceptions.RuntimeError:
        return None


def hx(b):
    return b.hex()


# --- Valid identity keys -----------------------------------------------------


def seed(i):
    return hashlib.sha256(SEED_DOMAIN + i.to_bytes(4, "big")).digest()


def valid_cases():
    cases = []
    for i in range(CASE_COUNT):
        s = seed(i)
        ed_pk, ed_sk = crypto_sign_seed_keypair(s)
        x_sk = crypto_sign_ed25519_sk_to_curve25519(ed_sk)
        x_pk = libsodium_pk_to_x25519(ed_pk)
        assert x_pk is not None, f"libsodium rejected its own public key (case {i})"
        # The two conversions are independent code paths in libsodium; they must
        # describe the same key pair or the vectors are worthless.
        assert crypto_scalarmult_base(x_sk) == x_pk, f"case {i}: X25519 pair mismatch"
        # Cross-check the birational map u = (1 + y) / (1 - y) with plain ints,
        # so a bug in the generator cannot hide behind libsodium agreeing with itself.
        y = int.from_bytes(ed_pk, "little") & (2**255 - 1)
        assert (1 + y) * pow(1 - y, -1, P) % P == int.from_bytes(x_pk, "little"), f"case {i}"
        cases.append({
            "ed25519_seed": hx(s),
            "ed25519_public": hx(ed_pk),
            "x25519_private": hx(x_sk),
            "x25519_public": hx(x_pk),
        })
    return cases


# --- Invalid public keys -----------------------------------------------------


def small_order_encodings():
    """Every byte string whose y (possibly >= p) is the y of an 8-torsion point.

    Besides the canonical encodings this includes "negative zero" for the two
    points with x = 0, and y + p whenever that still fits in 255 bits (only
    y = 0 and y = 1 do). Those are exactly libsodium's blacklist with the sign
    bit masked off, i.e. 14 strings.
    """
    out = []
    seen = set()
    for t in torsion_points():
        x, y = t
        for y_enc in (y, y + P):
            if y_enc >= 2**255:
                continue
            for sign in (0, 1):
                enc = encode_int(y_enc, sign)
                if enc in seen:
                    continue
                seen.add(enc)
                notes = [f"small order ({order(t)})"]
                if y_enc >= P:
                    notes.append("non-canonical y+p")
                if sign != (x & 1):
                    notes.append("x=0 with sign bit set" if x == 0 else "sign flipped")
                out.append((enc, ", ".join(notes)))
    return out


def off_curve_encodings():
    """y values with no matching x: the simplest class of garbage a peer can send.

    Two deterministic searches: the smallest such y (easy to eyeball in a
    debugger) and full-size y values from a hash counter (exercise every limb).
    """
    out = []
    y = 2
    while len(out) < 6:
        if not is_square(x_squared(y)):
            out.append((encode_int(y, 0), f"not on curve (y={y})"))
        y += 1
    counter = 0
    found = 0
    while found < 6:
        h = hashlib.sha256(b"securechat-identity-offcurve" + counter.to_bytes(4, "big")).digest()
        y = int.from_bytes(h, "little") & (2**255 - 1)
        if y < P and not is_square(x_squared(y)):
            sign = found & 1  # alternate sign bits; they must not matter
            out.append((encode_int(y, sign), f"not on curve (hashed y #{counter})"))
            found += 1
        counter += 1
    return out


def mixed_order_encodings():
    """Prime-order point + each nonzero torsion point.

    These decode fine and are not on any blacklist, so only a real subgroup
    check catches them; that is the check we most need the Swift code to get right.
    """
    out = []
    for j in range(2):
        k = int.from_bytes(hashlib.sha256(b"securechat-identity-mixed" + j.to_bytes(4, "big")).digest(), "little") % L
        prime_point = mul(k, BASE)
        assert order(prime_point) == L
        for t in torsion_points():
            if t == IDENTITY:
                continue
            q = add(prime_point, t)
            out.append((encode(q), f"mixed order ({order(q) // L}*L): k{j}*B + torsion of order {order(t)}"))
    return out


# --- Report-only probe of non-canonical y ------------------------------------


def classify(y):
    pt = decode(y, 0)
    if pt is None:
        return "off-curve"
    o = order(pt)
    return "prime-order" if o == L else f"order {o}" if o <= 8 else f"mixed ({o // L}*L)"


def probe_non_canonical():
    """Return rejected encodings for the file and print what libsodium accepts.

    The non-canonical encodings are exactly y + p for y in 0..18 (with either
    sign bit): 38 strings in total. libsodium reduces y mod p before decoding, so
    we expect it to accept y + p whenever y itself is an acceptable key.
    """
    rejected, accepted = [], []
    print("non-canonical y probe (encoding y+p, y in 0..18, both sign bits):")
    for y in range(19):
        for sign in (0, 1):
            enc = encode_int(y + P, sign)
            x_pk = libsodium_pk_to_x25519(enc)
            canon = libsodium_pk_to_x25519(encode_int(y, sign))
            kind = classify(y)
            verdict = "ACCEPTED" if x_pk is not None else "rejected"
            same = ""
            if x_pk is not None:
                same = " (same X25519 as canonical y)" if x_pk == canon else " (DIFFERENT X25519 from canonical y!)"
            print(f"  y=p+{y:<2} sign={sign}  y is {kind:<11} -> {verdict}{same}")
            (accepted if x_pk is not None else rejected).append((y, sign, enc, kind))

    print("edge cases:")
    edges = [
        ("y=p-1 (order 2), sign 0", encode_int(P - 1, 0)),
        ("y=p-1 (order 2), sign 1", encode_int(P - 1, 1)),
        ("y=p (=0), sign 0", encode_int(P, 0)),
        ("y=2^255-1 (=p+18), sign 0", encode_int(2**255 - 1, 0)),
        ("all 0xff bytes (y=2^255-1, sign 1)", b"\xff" * 32),
        ("y=p-2, sign 0", encode_int(P - 2, 0)),
    ]
    for name, enc in edges:
        verdict = "ACCEPTED" if libsodium_pk_to_x25519(enc) is not None else "rejected"
        print(f"  {name:<36} y mod p is {classify(int.from_bytes(enc, 'little') % 2**255 % P):<11} -> {verdict}")

    print(f"summary: {len(accepted)} accepted, {len(rejected)} rejected of 38 non-canonical encodings")
    print("  accepted:", ", ".join(f"p+{y}/s{s}" for y, s, _, _ in accepted) or "none")
    return [(enc, f"non-canonical y=p+{y} ({kind})") for y, s, enc, kind in rejected]


# --- Main --------------------------------------------------------------------


def main():
    libsodium_version = BUNDLED_LIBSODIUM.get(nacl.__version__)
    if libsodium_version is None:
        sys.exit(f"unknown PyNaCl {nacl.__version__}; add its bundled libsodium version to BUNDLED_LIBSODIUM")

    invalid = []
    seen = set()
    groups = [small_order_encodings(), off_curve_encodings(), mixed_order_encodings(), probe_non_canonical()]
    for group in groups:
        for enc, reason in group:
            if enc in seen:  # small-order y+p strings show up in two groups
                continue
            seen.add(enc)
            assert libsodium_pk_to_x25519(enc) is None, f"libsodium accepts {enc.hex()} ({reason})"
            invalid.append({"ed25519_public": hx(enc), "reason": reason})

    doc = {
        "schema": "securechat-identity-vectors/1",
        "generator": f"libsodium {libsodium_version} via PyNaCl {nacl.__version__}",
        "cases": valid_cases(),
        "invalid_public_keys": invalid,
    }
    OUT_PATH.parent.mkdir(parents=True, exist_ok=True)
    OUT_PATH.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {OUT_PATH}: {len(doc['cases'])} cases, {len(invalid)} invalid public keys")


if __name__ == "__main__":
    main()
