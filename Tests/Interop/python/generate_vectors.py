#!/usr/bin/env python3
"""Write SecureChat test vectors produced by the independent Python reference.

    python3 generate_vectors.py OUTDIR

Deterministic: every random value is SHA-256 of a per-case label and a counter, so two runs
write identical files. The files use the schemas of docs/PROTOCOL.md section 13 and of the
committed vectors, without the "sha256" seal (optional for other implementations). The
scenarios deliberately differ from the Swift generator's.
"""

from __future__ import annotations

import json
import os
import sys

import cryptography

import securechat_ref as sc
from securechat_ref import Drbg, ProtocolError, labelled_key

GENERATOR = f"securechat python reference (cryptography {cryptography.__version__})"


def h(b: bytes) -> str:
    return b.hex()


# ---------------------------------------------------------------------------------------------
# identity
# ---------------------------------------------------------------------------------------------

def _point_from_y(y: int, sign: int):
    x = sc.recover_x(y, sign)
    return None if x is None else (x, y, 1, x * y % sc.P)


def _order(pt) -> int:
    """Order of a point known to lie in the full group (order divides 8*l)."""
    for k in (1, 2, 4, 8):
        if sc.pt_is_identity(sc.pt_mul(k, pt)):
            return k
    for k in (1, 2, 4, 8):
        if sc.pt_is_identity(sc.pt_mul(k * sc.L, pt)):
            return k * sc.L
    raise AssertionError("not a curve point")


def _torsion_points():
    """All 8 points of order dividing 8: l*Q for points Q until the subgroup is covered."""
    pts, y = {}, 2
    while len(pts) < 8:
        q = _point_from_y(y, 0)
        y += 1
        if q is None:
            continue
        t = sc.pt_mul(sc.L, q)
        # The multiples of a generator of the torsion group give all 8.
        acc = sc.IDENTITY
        for _ in range(8):
            pts[sc.pt_encode(acc)] = acc
            acc = sc._pt_add(acc, t)
    return pts


def identity_file() -> dict:
    cases = []
    for i in range(32):
        seed = labelled_key("identity/seed", i)
        pub = sc.ed25519_public(seed)
        xpriv = sc.ed25519_seed_to_x25519_private(seed)
        cases.append({"ed25519_seed": h(seed), "ed25519_public": h(pub), "x25519_private": h(xpriv),
                      "x25519_public": h(sc.ed25519_public_to_x25519(pub))})
    invalid = []

    def add(b: bytes, reason: str):
        try:
            sc.validate_ed25519_public(b)
        except sc.InvalidKey:
            invalid.append({"ed25519_public": h(b), "reason": reason})
            return
        raise AssertionError(f"generator bug: {reason} is valid")

    torsion = _torsion_points()
    for enc, pt in sorted(torsion.items()):
        add(enc, f"small order ({_order(pt)})")
        if sc.pt_affine(pt)[0] == 0:
            add(enc[:31] + bytes([enc[31] | 0x80]), f"small order ({_order(pt)}), x = 0 with the sign bit set")
    for k in range(19):
        for sign in (0, 1):
            y = sc.P + k
            enc = (y | sign << 255).to_bytes(32, "little")
            pt = _point_from_y(k, sign)
            what = "off the curve" if pt is None else f"order {_order(pt)}" if _order(pt) <= 8 else \
                f"mixed order ({_order(pt) // sc.L}*l)"
            add(enc, f"non-canonical y = p + {k}, sign {sign} ({what} once reduced)")
    # Off-curve encodings from hashed y values.
    n = 0
    for j in range(100):
        if n == 6:
            break
        y = int.from_bytes(labelled_key("identity/off-curve", j), "little") & ((1 << 255) - 1)
        if y < sc.P and _point_from_y(y, 0) is None:
            add(y.to_bytes(32, "little"), f"not on the curve (hashed y #{j})")
            n += 1
    # Mixed order: a prime-order point plus a torsion point of order 2, 4 and 8.
    for j in range(2):
        k = int.from_bytes(labelled_key("identity/mixed", j), "little") % sc.L
        base = sc.pt_mul(k, sc.BASE)
        for enc, t in sorted(torsion.items()):
            o = _order(t)
            if o > 1:
                add(sc.pt_encode(sc._pt_add(base, t)), f"mixed order ({o}*l): prime-order point + torsion of order {o}")
    return {"schema": "securechat-identity-vectors/1", "generator": GENERATOR, "cases": cases,
            "invalid_public_keys": invalid}


# ---------------------------------------------------------------------------------------------
# x3dh
# ---------------------------------------------------------------------------------------------

def x3dh_file() -> dict:
    specs = [
        ("opk-large-ids", 0xFFFFFFFF, 2**63 - 1, 0, 48),
        ("no-opk-long-first-message", 7, 1_700_000_000, None, 300),
        ("opk-empty-first-message", 0, 0, 0xFFFFFFFF, 0),
        ("no-opk-sixteen-byte-message", 123456, 1_234_567_890, None, 16),
    ]
    cases = []
    for name, spk_id, created, opk_id, pt_len in specs:
        lab = "x3dh/" + name
        a_seed, b_seed = labelled_key(lab + "/alice-identity", 0), labelled_key(lab + "/bob-identity", 0)
        ek, ratchet = labelled_key(lab + "/alice-ephemeral", 0), labelled_key(lab + "/alice-ratchet", 0)
        spk_priv = labelled_key(lab + "/bob-spk", 0)
        opk_priv = labelled_key(lab + "/bob-opk", 0) if opk_id is not None else None
        spk_pub = sc.x25519_public(spk_priv)
        opk_pub = sc.x25519_public(opk_priv) if opk_priv else None
        ik_b = sc.ed25519_public(b_seed)
        sig = sc.ed25519_sign(b_seed, sc.signed_prekey_signature_input(spk_id, spk_pub, created))
        bundle = sc.Bundle(ik_b, spk_id, spk_pub, created, sig, opk_id, opk_pub).encode()
        first = Drbg(lab + "/plaintext").bytes(pt_len)
        session, res = sc.initiate_session(a_seed, bundle, ek, sc.KeySource.from_list([ratchet]))
        cases.append({
            "name": name,
            "alice_identity_seed": h(a_seed), "alice_ephemeral_private": h(ek), "alice_ratchet_private": h(ratchet),
            "bob_identity_seed": h(b_seed), "bob_signed_prekey_id": spk_id, "bob_signed_prekey_created_at": created,
            "bob_signed_prekey_private": h(spk_priv), "bob_one_time_prekey_id": opk_id,
            "bob_one_time_prekey_private": h(opk_priv) if opk_priv else None,
            "alice_identity_public": h(sc.ed25519_public(a_seed)),
            "alice_identity_x25519_public": h(sc.ed25519_public_to_x25519(sc.ed25519_public(a_seed))),
            "bob_identity_public": h(ik_b), "bob_identity_x25519_public": h(sc.ed25519_public_to_x25519(ik_b)),
            "bob_signed_prekey_public": h(spk_pub), "bob_signed_prekey_signature": h(sig),
            "bob_one_time_prekey_public": h(opk_pub) if opk_pub else None,
            "bundle": h(bundle), "dh": [h(d) for d in res.dh], "shared_secret": h(res.shared_secret),
            "associated_data": h(res.associated_data), "first_plaintext": h(first),
            "prekey_message": h(session.encrypt(first)),
        })
    return {"schema": "securechat-x3dh-vectors/1", "generator": GENERATOR, "info_hex": h(sc.X3DH_INFO), "cases": cases}


# ---------------------------------------------------------------------------------------------
# double ratchet
# ---------------------------------------------------------------------------------------------

class Transcript:
    """Runs two real parties and records what happened in the section 13 schema."""

    def __init__(self, name: str):
        self.name, lab = name, "dr/" + name
        self.lab, self.rng = lab, Drbg(lab + "/choices")
        self.sk = labelled_key(lab + "/shared-secret", 0)
        self.ad = (sc.ed25519_public(labelled_key(lab + "/alice-identity", 0))
                   + sc.ed25519_public(labelled_key(lab + "/bob-identity", 0)))
        self.bob_priv = labelled_key(lab + "/bob-signed-prekey", 0)
        self.st = {
            "alice": sc.ratchet_init_alice(self.sk, self.ad, sc.x25519_public(self.bob_priv),
                                           sc.KeySource(lambda i: labelled_key(lab + "/alice-ratchet", i))),
            "bob": sc.ratchet_init_bob(self.sk, self.ad, self.bob_priv,
                                       sc.KeySource(lambda i: labelled_key(lab + "/bob-ratchet", i))),
        }
        self.messages, self.events = [], []
        self.count = {"alice": 0, "bob": 0}
        self.pending = {"alice": [], "bob": []}     # sent, not yet delivered
        self.delivered = {"alice": [], "bob": []}
        self.sent_keys = {"alice": set(), "bob": set()}
        self.tamper_count = 0

    @staticmethod
    def other(p: str) -> str:
        return "bob" if p == "alice" else "alice"

    def can_send(self, p: str) -> bool:
        return self.st[p].cks is not None

    def send(self, p: str, pt: bytes) -> dict:
        hd, ct, mk = sc.ratchet_encrypt(self.st[p], pt)
        m = {"id": f"{p[0]}{self.count[p]}", "sender": p, "plaintext": h(pt),
             "header": {"dh": h(hd.dh), "pn": hd.pn, "n": hd.n}, "header_bytes": h(hd.encode()),
             "ciphertext": h(ct), "message_key": h(mk)}
        self.count[p] += 1
        self.messages.append(m)
        self.events.append({"op": "send", "party": p, "msg": m["id"]})
        self.pending[p].append(m)
        self.sent_keys[p].add(hd.dh)
        return m

    def recv(self, m: dict, must_fail: bool = False) -> bool:
        p = self.other(m["sender"])
        before = (self.st[p].encode(), self.st[p].keys.index)
        try:
            hd, ct = sc.decode_ratchet_message(bytes([1, 1]) + bytes.fromhex(m["header_bytes"]) + bytes.fromhex(m["ciphertext"]))
            new, pt, mk = sc.ratchet_decrypt(self.st[p], hd, ct)
        except ProtocolError:
            assert (self.st[p].encode(), self.st[p].keys.index) == before
            self.events.append({"op": "recv", "party": p, "msg": m["id"], "expect": "fail"})
            return False
        assert not must_fail, f"{self.name}: {m['id']} was expected to be refused"
        assert pt.hex() == m["plaintext"] and mk.hex() == m["message_key"]
        self.st[p] = new
        self.events.append({"op": "recv", "party": p, "msg": m["id"]})
        if m in self.pending[m["sender"]]:
            self.pending[m["sender"]].remove(m)
            self.delivered[m["sender"]].append(m)
        return True

    def tampered(self, m: dict, kind: str) -> dict:
        hb, ct = bytearray.fromhex(m["header_bytes"]), bytearray.fromhex(m["ciphertext"])
        r = self.rng
        if kind == "ciphertext":
            ct[r.randbelow(len(ct) - 32)] ^= 1 << r.randbelow(8)
        elif kind == "tag":
            ct[len(ct) - 32 + r.randbelow(32)] ^= 1 << r.randbelow(8)
        elif kind == "n":
            hb[36:40] = sc.u32((int.from_bytes(hb[36:40], "big") + 1 + r.randbelow(5)) % 2**32)
        elif kind == "pn":
            hb[32:36] = sc.u32((int.from_bytes(hb[32:36], "big") + 1 + r.randbelow(3)) % 2**32)
        elif kind == "ratchet-key":
            # A different but *valid* X25519 key, so that the refusal comes from authentication
            # after a DH ratchet step (and its key generation) rather than from decoding.
            while True:
                k = bytearray(hb[:32])
                k[r.randbelow(31)] ^= 1 << r.randbelow(8)
                try:
                    sc.validate_x25519_public(bytes(k))
                    break
                except sc.InvalidKey:
                    continue
            hb[:32] = k
        elif kind == "truncated":
            ct = ct[:-48] + ct[-32:]  # one block fewer: lengths stay well-formed
            if len(ct) < 48:
                ct = ct + bytes(16)
        elif kind == "n-beyond-max-skip":
            hb[36:40] = sc.u32(sc.MAX_SKIP + 1 + int.from_bytes(hb[36:40], "big"))
        elif kind == "pn-beyond-max-skip":
            hb[32:36] = sc.u32(0xFFFFFFFF)
        elif kind.startswith("invalid-key-"):
            hb[:32] = {"invalid-key-zero": bytes(32), "invalid-key-one": b"\x01" + bytes(31),
                       "invalid-key-p": (sc.P).to_bytes(32, "little"),
                       "invalid-key-high-bit": bytes(hb[:31]) + bytes([hb[31] | 0x80]),
                       "invalid-key-order-8": bytes.fromhex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
                       }[kind]
        else:
            raise ValueError(kind)
        self.tamper_count += 1
        t = {"id": f"{m['id']}-tampered-{kind}-{self.tamper_count}", "sender": m["sender"], "plaintext": None,
             "header": None, "header_bytes": h(bytes(hb)), "ciphertext": h(bytes(ct)), "message_key": None}
        self.messages.append(t)
        return t

    def attack(self, m: dict, kind: str) -> None:
        ok = self.recv(self.tampered(m, kind), must_fail=True)
        assert not ok

    def finish(self) -> dict:
        # Every generated key must appear in a header: whoever ratcheted without sending since, sends.
        for p in ("alice", "bob"):
            st = self.st[p]
            if st.keys.index and st.dhs_pub not in self.sent_keys[p]:
                self.send(p, b"closing")
        unused = {m["id"] for m in self.messages} - {e["msg"] for e in self.events}
        assert not unused, unused
        return {
            "name": self.name, "shared_secret": h(self.sk), "associated_data": h(self.ad),
            "bob_initial_ratchet_priv": h(self.bob_priv), "bob_initial_ratchet_pub": h(sc.x25519_public(self.bob_priv)),
            # Committed state only: the key source position of the final (committed) states.
            "alice_generated_ratchet_privs": [h(labelled_key(self.lab + "/alice-ratchet", i))
                                              for i in range(self.st["alice"].keys.index)],
            "bob_generated_ratchet_privs": [h(labelled_key(self.lab + "/bob-ratchet", i))
                                            for i in range(self.st["bob"].keys.index)],
            "messages": self.messages, "events": self.events,
        }


def _plaintext(rng: Drbg) -> bytes:
    r = rng.randbelow(20)
    n = [0, 15, 16, 17, 31, 32, 33, 64, 300][r] if r < 9 else rng.randbelow(40)
    return rng.bytes(n)


def dr_random(name: str, steps: int, burst: int) -> dict:
    """A long random conversation: interleaved sends, out-of-order delivery across DH steps,
    replays and tampered copies refused on both sides."""
    t = Transcript(name)
    rng = t.rng
    t.send("alice", _plaintext(rng))
    kinds = ["ciphertext", "tag", "n", "pn", "ratchet-key", "truncated"]
    while len(t.events) < steps:
        x = rng.randbelow(100)
        p = ["alice", "bob"][rng.randbelow(2)]
        q = t.other(p)
        if x < 8:
            # Flush everything in flight towards p, in a random order: forces a turn of the
            # DH ratchet, so that transcripts contain many DH steps.
            while t.pending[q]:
                assert t.recv(t.pending[q][rng.randbelow(len(t.pending[q]))])
        elif x < 38:
            if t.can_send(p):
                # Bursts, so that chains have several messages to reorder.
                for _ in range(1 + rng.randbelow(burst)):
                    t.send(p, _plaintext(rng))
        elif x < 80:
            if t.pending[q]:
                # Mostly the oldest, sometimes any: out of order within and across chains.
                i = 0 if rng.randbelow(2) == 0 else rng.randbelow(len(t.pending[q]))
                assert t.recv(t.pending[q][i])
        elif x < 88:
            if t.delivered[q]:
                t.recv(t.delivered[q][rng.randbelow(len(t.delivered[q]))], must_fail=True)
        else:
            pool = t.pending[q] + t.delivered[q]
            if pool:
                t.attack(pool[rng.randbelow(len(pool))], kinds[rng.randbelow(len(kinds))])
    # Deliver whatever is left, newest first, so the end exercises stored skipped keys too.
    for p in ("alice", "bob"):
        while t.pending[p]:
            t.recv(t.pending[p][-1])
    return t.finish()


def dr_skipped_across_chains() -> dict:
    t = Transcript("skipped-keys-across-three-chains")
    a = [t.send("alice", b"chain1-%d" % i) for i in range(5)]
    t.recv(a[4])                                       # stores a0..a3
    b0 = t.send("bob", b"bob ratchets")
    t.recv(b0)
    a += [t.send("alice", b"chain2-%d" % i) for i in range(3)]   # PN = 5
    t.recv(a[7])                                       # stores a5, a6
    b1 = t.send("bob", b"again")
    t.recv(b1)
    a.append(t.send("alice", b"chain3"))
    t.recv(a[8])
    for i in (0, 6, 2, 5, 1, 3):
        t.recv(a[i])
    for i in (3, 6, 4):
        t.recv(a[i], must_fail=True)                   # duplicates, also from older chains
    t.recv(b0, must_fail=True)
    return t.finish()


def dr_alice_rollback() -> dict:
    """Alice refuses messages that make *her* run a DH ratchet step; her key list is committed
    state only too, so the generated-then-discarded key pair is reused by the genuine message."""
    t = Transcript("alice-refuses-new-ratchet-keys")
    t.recv(t.send("alice", b"hi"))
    b0 = t.send("bob", b"first from bob")
    b1 = t.send("bob", b"second from bob")
    t.attack(b0, "ratchet-key")
    t.attack(b1, "pn")
    t.attack(b1, "tag")
    t.attack(b0, "pn-beyond-max-skip")
    t.recv(b1)
    t.attack(b0, "ciphertext")
    t.recv(b0)
    a1 = t.send("alice", b"ack")
    t.attack(a1, "ratchet-key")
    t.recv(a1)
    b2 = t.send("bob", b"third")
    t.attack(b2, "ratchet-key")
    t.recv(b2)
    return t.finish()


def dr_bounds_and_invalid_keys() -> dict:
    t = Transcript("bounds-and-invalid-header-keys")
    a0 = t.send("alice", b"")
    a1 = t.send("alice", b"x")
    for k in ("invalid-key-zero", "invalid-key-one", "invalid-key-p", "invalid-key-high-bit",
              "invalid-key-order-8", "n-beyond-max-skip"):
        t.attack(a1, k)
    t.recv(a1)
    t.attack(a1, "n-beyond-max-skip")
    t.recv(a0)
    b0 = t.send("bob", bytes(range(256)))
    for k in ("invalid-key-zero", "invalid-key-order-8", "pn-beyond-max-skip", "n-beyond-max-skip"):
        t.attack(b0, k)
    t.recv(b0)
    return t.finish()


def dr_file() -> dict:
    cases = [dr_random("random-interleaving-1", 200, 4), dr_random("random-interleaving-2", 200, 2),
             dr_skipped_across_chains(), dr_alice_rollback(), dr_bounds_and_invalid_keys()]
    return {"schema": "securechat-dr-vectors/1", "generator": GENERATOR,
            "params": {"kdf_rk_info_hex": h(sc.KDF_RK_INFO), "aead_info_hex": h(sc.DR_MESSAGE_KEYS_INFO),
                       "header_encoding": "dh32|pn_u32be|n_u32be", "max_skip": sc.MAX_SKIP,
                       "max_stored_skipped_keys": sc.MAX_STORED_SKIPPED_KEYS},
            "cases": cases}


# ---------------------------------------------------------------------------------------------
# sender keys
# ---------------------------------------------------------------------------------------------

class RoomTranscript:
    def __init__(self, name: str, initial_iteration: int):
        self.name, lab = name, "sender-keys/" + name
        self.rng = Drbg(lab + "/choices")
        self.chain = sc.SenderChain(Drbg(lab + "/distribution-id").bytes(16), Drbg(lab + "/chain-id").u32(),
                                    initial_iteration, labelled_key(lab + "/chain-key", 0),
                                    labelled_key(lab + "/signing-key", 0))
        self.head = {"name": name, "distribution_id": h(self.chain.distribution_id), "chain_id": self.chain.chain_id,
                     "initial_iteration": initial_iteration, "chain_key": h(self.chain.chain_key),
                     "signing_key_seed": h(self.chain.signing_seed), "signing_key_public": h(self.chain.signing_public),
                     "distribution_message": h(self.chain.distribution_message().encode())}
        self.store = sc.SenderKeyStore()
        assert self.store.process_distribution("room", "member", self.chain.distribution_message().encode())
        self.messages, self.events, self.n_tampered = [], [], 0

    def send(self, pt: bytes) -> dict:
        ser, mk, it = self.chain.encrypt(pt)
        m = {"id": f"m{it}", "iteration": it, "plaintext": h(pt), "message_key": h(mk), "serialized": h(ser)}
        self.messages.append(m)
        self.events.append({"op": "send", "msg": m["id"]})
        return m

    def recv(self, m: dict, fail: bool = False) -> None:
        before = self.store.records[("room", "member")].encode()
        try:
            pt, mk = self.store.decrypt("room", "member", bytes.fromhex(m["serialized"]))
        except ProtocolError:
            assert fail, f"{self.name}: {m['id']} refused"
            assert self.store.records[("room", "member")].encode() == before
            self.events.append({"op": "recv", "msg": m["id"], "expect": "fail"})
            return
        assert not fail, f"{self.name}: {m['id']} accepted"
        assert pt.hex() == m["plaintext"] and mk.hex() == m["message_key"]
        self.events.append({"op": "recv", "msg": m["id"]})

    def forged(self, m: dict, kind: str) -> dict:
        """Refuse-only copies. The re-signed ones use the real signing key: an insider (or a
        leaked key) whose messages pass the signature and must fail later without a trace."""
        b = bytearray.fromhex(m["serialized"])
        unsigned = b[:-64]

        def resign(u: bytearray) -> bytearray:
            return u + sc.ed25519_sign(self.chain.signing_seed, sc.sender_message_signature_input(bytes(u)))
        if kind == "signature":
            b[-1 - self.rng.randbelow(64)] ^= 1 << self.rng.randbelow(8)
        elif kind == "ciphertext":
            b[26 + self.rng.randbelow(len(b) - 26 - 64)] ^= 1
        elif kind == "resigned-bad-tag":
            unsigned[-1] ^= 1
            b = resign(unsigned)
        elif kind == "resigned-future-iteration-bad-tag":
            unsigned[22:26] = sc.u32(int.from_bytes(unsigned[22:26], "big") + 40)
            b = resign(unsigned)
        elif kind == "resigned-unknown-chain-id":
            unsigned[18:22] = sc.u32((int.from_bytes(unsigned[18:22], "big") + 1) % 2**32)
            b = resign(unsigned)
        elif kind == "resigned-other-distribution-id":
            unsigned[2] ^= 0x80
            b = resign(unsigned)
        elif kind == "resigned-beyond-max-forward":
            rec = self.store.records[("room", "member")]
            unsigned[22:26] = sc.u32(rec.chains[-1].iteration + sc.SENDER_KEY_MAX_FORWARD + 1)
            b = resign(unsigned)
        elif kind == "resigned-short-ciphertext":
            b = resign(unsigned[:-1])
        elif kind == "resigned-wrong-type":
            unsigned[1] = sc.T_SENDER_DIST
            b = resign(unsigned)
        else:
            raise ValueError(kind)
        self.n_tampered += 1
        t = {"id": f"{m['id']}-{kind}-{self.n_tampered}", "iteration": None, "plaintext": None,
             "message_key": None, "serialized": h(bytes(b))}
        self.messages.append(t)
        return t

    def finish(self) -> dict:
        assert {m["id"] for m in self.messages} <= {e["msg"] for e in self.events}
        return dict(self.head, messages=self.messages, events=self.events)


def sk_random() -> dict:
    t = RoomTranscript("random-order-replays-and-forgeries", 0)
    sent, received = [], []
    kinds = ["signature", "ciphertext", "resigned-bad-tag", "resigned-future-iteration-bad-tag"]
    while len(sent) < 40 or len(received) < len(sent):
        x = t.rng.randbelow(100)
        if x < 35 and len(sent) < 40:
            sent.append(t.send(_plaintext(t.rng)))
        elif x < 80:
            left = [m for m in sent if m not in received]
            if left:
                m = left[t.rng.randbelow(len(left))]
                t.recv(m)
                received.append(m)
        elif x < 88:
            if received:
                t.recv(received[t.rng.randbelow(len(received))], fail=True)
        elif sent:
            t.recv(t.forged(sent[t.rng.randbelow(len(sent))], kinds[t.rng.randbelow(len(kinds))]), fail=True)
    return t.finish()


def sk_insider() -> dict:
    t = RoomTranscript("insider-forgeries-rolled-back", 1000)
    m = [t.send(b"message %d" % i) for i in range(4)]
    for kind in ("resigned-bad-tag", "resigned-future-iteration-bad-tag", "resigned-unknown-chain-id",
                 "resigned-other-distribution-id", "resigned-beyond-max-forward", "resigned-short-ciphertext",
                 "resigned-wrong-type"):
        t.recv(t.forged(m[3], kind), fail=True)
    t.recv(m[3])
    t.recv(t.forged(m[1], "resigned-bad-tag"), fail=True)  # from the skipped keys: must keep the key
    t.recv(m[1])
    t.recv(m[0])
    t.recv(m[2])
    t.recv(t.forged(m[3], "resigned-beyond-max-forward"), fail=True)
    return t.finish()


def sk_near_limit() -> dict:
    t = RoomTranscript("near-the-iteration-limit", 2**32 - 8)
    m = [t.send(b"late %d" % i) for i in range(5)]  # iterations 2^32-8 .. 2^32-4
    for i in (4, 0, 2, 3, 1):
        t.recv(m[i])
    t.recv(m[4], fail=True)
    return t.finish()


def sk_padding() -> dict:
    t = RoomTranscript("padding-boundaries", 54321)
    m = [t.send(bytes([i]) * n) for i, n in enumerate((15, 16, 17, 31, 32, 33, 1024))]
    for x in reversed(m):
        t.recv(x)
    return t.finish()


def sender_keys_file() -> dict:
    return {"schema": "securechat-sender-key-vectors/1", "generator": GENERATOR,
            "params": {"message_keys_info_hex": h(sc.SENDER_KEY_MESSAGE_KEYS_INFO),
                       "signature_context_hex": h(sc.SENDER_KEY_SIGNATURE_CONTEXT),
                       "max_forward": sc.SENDER_KEY_MAX_FORWARD, "max_stored_keys": sc.SENDER_KEY_MAX_STORED_KEYS},
            "cases": [sk_random(), sk_insider(), sk_near_limit(), sk_padding()]}


# ---------------------------------------------------------------------------------------------
# safety numbers
# ---------------------------------------------------------------------------------------------

def safety_numbers_file() -> dict:
    inputs = [
        # libsignal's published inputs (33-byte keys with the 0x05 type byte, phone numbers).
        ("libsignal-inputs",
         bytes.fromhex("0506863bc66d02b40d27b8d49ca7c09e9239236f9d7d25d6fcca5ce13c7064d868"), b"+14152222222",
         bytes.fromhex("05f781b6fb32fed9ba1cf2de978d4d5da28dc34046ae814402b5c0dbd96fda907b"), b"+14153333333"),
    ]
    for i, (lid, rid) in enumerate([("zoë@example.org", "Ωmega"), ("7f3e2a9c-0d41-4a7e-9b7d-2f5c1e8a6b30", "a"),
                                    ("", "user-with-empty-peer")]):
        inputs.append((f"identities-{i}", sc.ed25519_public(labelled_key("safety/local", i)), lid.encode(),
                       sc.ed25519_public(labelled_key("safety/remote", i)), rid.encode()))
    cases = []
    for name, lk, lid, rk, rid in inputs:
        lfp, rfp = sc.fingerprint(lk, lid), sc.fingerprint(rk, rid)
        cases.append({"name": name, "local_key": h(lk), "local_identifier": h(lid), "remote_key": h(rk),
                      "remote_identifier": h(rid), "local_fingerprint": h(lfp), "remote_fingerprint": h(rfp),
                      "displayable": sc.displayable(lfp, rfp), "scannable": h(sc.scannable(lfp, rfp))})
    return {"schema": "securechat-fingerprint-vectors/1", "generator": GENERATOR,
            "iterations": sc.FINGERPRINT_ITERATIONS, "cases": cases}


# ---------------------------------------------------------------------------------------------
# attachments
# ---------------------------------------------------------------------------------------------

def attachments_file() -> dict:
    specs = [("empty-2k-chunks", 2048, 0), ("exactly-two-chunks", 1024, 2048), ("three-chunks-and-a-byte", 1024, 3073),
             ("one-short-of-two-odd-chunks", 1031, 2061), ("single-partial-chunk-64k", 65536, 700)]
    cases = []
    for name, size, n in specs:
        lab = "attachments/" + name
        key, salt = labelled_key(lab + "/key", 0), Drbg(lab + "/salt").bytes(16)
        pt = Drbg(lab + "/plaintext").bytes(n)
        stream = sc.encrypt_attachment(key, salt, pt, size)
        sealed = size + 16
        chunks = [stream[22 + i:22 + i + sealed] for i in range(0, len(stream) - 22, sealed)]
        hdr = stream[:22]
        t = []

        def add(desc: str, s: bytes):
            try:
                sc.decrypt_attachment(key, s)
            except ProtocolError:
                t.append({"description": desc, "stream": h(s)})
                return
            raise AssertionError(f"{name}: tampered stream accepted: {desc}")
        add("first ciphertext byte flipped", stream[:22] + bytes([stream[22] ^ 1]) + stream[23:])
        add("chunk size in the header changed", hdr[:2] + sc.u32(size + 1) + hdr[6:] + stream[22:])
        add("chunk size below the bound", hdr[:2] + sc.u32(1023) + hdr[6:] + stream[22:])
        add("version byte 2", b"\x02" + stream[1:])
        add("16 zero bytes appended", stream + bytes(16))
        add("last byte removed", stream[:-1])
        add("header only", hdr)
        if len(chunks) > 1:
            add("final chunk dropped (truncated at a chunk boundary)", hdr + b"".join(chunks[:-1]))
            add("first and last chunks swapped", hdr + chunks[-1] + b"".join(chunks[1:-1]) + chunks[0])
            add("first chunk repeated", hdr + chunks[0] + b"".join(chunks))
        cases.append({"name": name, "key": h(key), "salt": h(salt), "chunk_size": size, "plaintext": h(pt),
                      "stream": h(stream), "digest": h(sc.sha256(stream)), "tampered": t})
    return {"schema": "securechat-attachment-vectors/1", "generator": GENERATOR, "info_hex": h(sc.ATTACHMENT_INFO),
            "cases": cases}


FILES = {
    "identity.json": identity_file,
    "x3dh.json": x3dh_file,
    "double-ratchet.json": dr_file,
    "sender-keys.json": sender_keys_file,
    "safety-numbers.json": safety_numbers_file,
    "attachments.json": attachments_file,
}


def main(argv: list) -> int:
    if len(argv) != 1:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    out = argv[0]
    os.makedirs(out, exist_ok=True)
    for fname, make in FILES.items():
        text = json.dumps(make(), indent=2, ensure_ascii=True) + "\n"
        with open(os.path.join(out, fname), "w") as f:
            f.write(text)
        print(f"wrote {os.path.join(out, fname)} ({len(text)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
