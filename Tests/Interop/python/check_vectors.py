#!/usr/bin/env python3
"""Check SecureChat test-vector files against the independent Python reference.

    python3 check_vectors.py FILE...

Every schema of docs/PROTOCOL.md section 13 is checked in both roles (sender and receiver,
initiator and responder, encryptor and decryptor, local and remote party). The trailing
"sha256" seal is verified when present. Exits 1 with the failing file, case and event on any
mismatch, 0 when every file passes.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
import traceback

import cryptography

import securechat_ref as sc
from securechat_ref import ProtocolError


class Mismatch(Exception):
    pass


def expect(cond: bool, what: str) -> None:
    if not cond:
        raise Mismatch(what)


def eq(got, want, what: str) -> None:
    if got != want:
        g = got.hex() if isinstance(got, (bytes, bytearray)) else got
        w = want.hex() if isinstance(want, (bytes, bytearray)) else want
        raise Mismatch(f"{what}: computed {g!r}, file has {w!r}")


def hx(s) -> bytes:
    if not isinstance(s, str) or s != s.lower():
        raise Mismatch(f"expected lowercase hex, got {s!r}")
    return bytes.fromhex(s)


def refused(fn, what: str) -> ProtocolError:
    try:
        fn()
    except ProtocolError as e:
        return e
    raise Mismatch(f"{what}: accepted, must be refused")


# ---------------------------------------------------------------------------------------------
# The seal (section 13): SHA-256 of every byte before the line holding the final "sha256" member.
# ---------------------------------------------------------------------------------------------

SEAL_LINE = re.compile(rb'^[ \t]*"sha256"[ \t]*:[ \t]*"([0-9a-f]{64})"[ \t]*\r?$')


def check_seal(raw: bytes, doc: dict) -> str:
    if "sha256" not in doc:
        return "no seal (optional for other implementations)"
    lines = raw.split(b"\n")
    for idx in range(len(lines) - 1, -1, -1):
        m = SEAL_LINE.match(lines[idx])
        if m:
            break
    else:
        raise Mismatch('seal: the "sha256" member is not on a line of its own')
    expect(list(doc)[-1] == "sha256", 'seal: "sha256" is not the last member')
    tail = b"\n".join(lines[idx + 1:]).strip()
    expect(tail == b"}", "seal: something other than the closing brace follows the seal line")
    eq(m.group(1).decode(), doc["sha256"], "seal: value on the line vs parsed value")
    start = sum(len(l) + 1 for l in lines[:idx])  # up to and including the preceding newline
    eq(hashlib.sha256(raw[:start]).hexdigest(), doc["sha256"], "seal (SHA-256 of the bytes before its line)")
    return "seal ok"


# ---------------------------------------------------------------------------------------------
# securechat-identity-vectors/1
# ---------------------------------------------------------------------------------------------

_claim_checked = False


def check_doc_claim_high_y() -> None:
    """2.1 claims no y in [p, 2^255) decodes (mod p) to a prime-order point, so canonicity adds
    nothing over libsodium's checks. Verify it once: y - p ranges over 0..18."""
    global _claim_checked
    if _claim_checked:
        return
    for y in range(19):
        for sign in (0, 1):
            x = sc.recover_x(y, sign)
            if x is None:
                continue
            pt = (x, y, 1, x * y % sc.P)
            prime_order = (not sc.pt_is_identity(sc.pt_mul(8, pt))) and sc.pt_is_identity(sc.pt_mul(sc.L, pt))
            expect(not prime_order, f"section 2.1 claim: y = p + {y} decodes to a prime-order point")
    _claim_checked = True


def check_identity(doc: dict, case_cb) -> None:
    check_doc_claim_high_y()
    for i, c in enumerate(doc["cases"]):
        def run(c=c):
            seed = hx(c["ed25519_seed"])
            pub = hx(c["ed25519_public"])
            eq(sc.ed25519_public(seed), pub, "ed25519_public from seed")
            # Our own curve arithmetic must agree with cryptography's Ed25519: a*B.
            a = int.from_bytes(sc.ed25519_seed_to_x25519_private(seed), "little")
            eq(sc.pt_encode(sc.pt_mul(a, sc.BASE)), pub, "a*B with the reference curve arithmetic")
            xpriv = sc.ed25519_seed_to_x25519_private(seed)
            eq(xpriv, hx(c["x25519_private"]), "x25519_private (clamped SHA-512(seed)[0..<32])")
            xpub = hx(c["x25519_public"])
            eq(sc.ed25519_public_to_x25519(pub), xpub, "x25519_public by u = (1+y)/(1-y)")
            eq(sc.x25519_public(xpriv), xpub, "x25519_public as X25519(x, 9)")
            sc.validate_x25519_public(xpub)
            # The converted key must work for agreement in both directions.
            other = hashlib.sha256(seed).digest()
            eq(sc.dh(xpriv, sc.x25519_public(other)), sc.dh(other, xpub), "DH symmetry with the converted key")
        case_cb(f"case {i}", run)
    for i, c in enumerate(doc.get("invalid_public_keys", [])):
        def run(c=c):
            k = hx(c["ed25519_public"])
            expect(isinstance(c.get("reason"), str) and c["reason"], "invalid key without a reason")
            refused(lambda: sc.validate_ed25519_public(k), f"invalid key ({c['reason']})")
            refused(lambda: sc.ed25519_public_to_x25519(k), f"conversion of invalid key ({c['reason']})")
        case_cb(f"invalid key {i} ({c.get('reason')})", run)


# ---------------------------------------------------------------------------------------------
# securechat-x3dh-vectors/1
# ---------------------------------------------------------------------------------------------

def check_x3dh(doc: dict, case_cb) -> None:
    eq(hx(doc["info_hex"]), sc.X3DH_INFO, "info_hex")
    for c in doc["cases"]:
        def run(c=c):
            a_seed, b_seed = hx(c["alice_identity_seed"]), hx(c["bob_identity_seed"])
            ek = hx(c["alice_ephemeral_private"])
            spk_id, created = c["bob_signed_prekey_id"], c["bob_signed_prekey_created_at"]
            spk_priv = hx(c["bob_signed_prekey_private"])
            has_opk = c["bob_one_time_prekey_id"] is not None
            expect(has_opk == (c["bob_one_time_prekey_private"] is not None) == (c["bob_one_time_prekey_public"] is not None),
                   "one-time prekey fields must be all null or all set")
            opk_id = c["bob_one_time_prekey_id"]
            opk_priv = hx(c["bob_one_time_prekey_private"]) if has_opk else None

            # Public values derived from the private inputs.
            eq(sc.ed25519_public(a_seed), hx(c["alice_identity_public"]), "alice_identity_public")
            eq(sc.ed25519_public(b_seed), hx(c["bob_identity_public"]), "bob_identity_public")
            eq(sc.ed25519_public_to_x25519(hx(c["alice_identity_public"])), hx(c["alice_identity_x25519_public"]),
               "alice_identity_x25519_public")
            eq(sc.ed25519_public_to_x25519(hx(c["bob_identity_public"])), hx(c["bob_identity_x25519_public"]),
               "bob_identity_x25519_public")
            spk_pub = sc.x25519_public(spk_priv)
            eq(spk_pub, hx(c["bob_signed_prekey_public"]), "bob_signed_prekey_public")
            opk_pub = sc.x25519_public(opk_priv) if has_opk else None
            if has_opk:
                eq(opk_pub, hx(c["bob_one_time_prekey_public"]), "bob_one_time_prekey_public")

            # Bob publishes: signatures are verified, never compared (section 1).
            sig = hx(c["bob_signed_prekey_signature"])
            ik_b = sc.ed25519_public(b_seed)
            sc.ed25519_verify(ik_b, sig, sc.signed_prekey_signature_input(spk_id, spk_pub, created))
            our_sig = sc.ed25519_sign(b_seed, sc.signed_prekey_signature_input(spk_id, spk_pub, created))
            sc.ed25519_verify(ik_b, our_sig, sc.signed_prekey_signature_input(spk_id, spk_pub, created))
            spk = sc.SignedPrekey(spk_id, spk_pub, created, sig)
            eq(len(spk.encode()), 110, "signed prekey encoding length")
            eq(sc.SignedPrekey.decode(spk.encode()), spk, "signed prekey round trip")
            if has_opk:
                o = sc.OneTimePrekey(opk_id, opk_pub)
                eq(sc.OneTimePrekey.decode(o.encode()), o, "one-time prekey round trip")
            bundle_bytes = hx(c["bundle"])
            ours = sc.Bundle(ik_b, spk_id, spk_pub, created, our_sig, opk_id, opk_pub).encode()
            eq(len(bundle_bytes), 179 if has_opk else 143, "bundle length")
            eq(ours[:-(36 + 1 + 64)] if has_opk else ours[:-(1 + 64)],
               bundle_bytes[:-(36 + 1 + 64)] if has_opk else bundle_bytes[:-(1 + 64)], "bundle bytes before the signature")
            eq(ours[-37 if has_opk else -1:], bundle_bytes[-37 if has_opk else -1:], "bundle bytes after the signature")
            sc.Bundle.decode(ours)

            # Alice's role: decode and verify the file's bundle, run X3DH, send the first message.
            bundle = sc.Bundle.decode(bundle_bytes)
            dhs = [hx(d) for d in c["dh"]]
            eq(len(dhs), 4 if has_opk else 3, "number of DH outputs")
            session, res = sc.initiate_session(a_seed, bundle_bytes, ek,
                                               sc.KeySource.from_list([hx(c["alice_ratchet_private"])]))
            eq(res.dh, dhs, "DH1..DH4 (Alice)")
            eq(res.shared_secret, hx(c["shared_secret"]), "SK (Alice)")
            eq(res.associated_data, hx(c["associated_data"]), "AD (Alice)")
            first = hx(c["first_plaintext"])
            pkm = hx(c["prekey_message"])
            eq(session.encrypt(first), pkm, "prekey message (Alice)")

            # Bob's role: accept the file's prekey message.
            def store():
                s = sc.PrekeyStore(b_seed)
                s.signed[spk_id] = spk_priv
                if has_opk:
                    s.one_time[opk_id] = opk_priv
                return s
            bob = store()
            # A forged message consumes nothing (6.8).
            forged = pkm[:-1] + bytes([pkm[-1] ^ 1])
            refused(lambda: bob.accept(forged), "prekey message with a flipped tag byte")
            expect(not has_opk or opk_id in bob.one_time, "a forged prekey message consumed the one-time prekey")
            expect(not bob.sessions, "a forged prekey message created a session")
            bsession, pt, bres = bob.accept(pkm)
            eq(pt, first, "first plaintext (Bob)")
            eq(bres.dh, dhs, "DH1..DH4 (Bob)")
            eq(bres.shared_secret, hx(c["shared_secret"]), "SK (Bob)")
            eq(bres.associated_data, hx(c["associated_data"]), "AD (Bob)")
            expect(not has_opk or opk_id not in bob.one_time, "one-time prekey not deleted after decryption")
            # The same initiation again goes to its session, where it is a duplicate.
            before = bsession.state.encode()
            refused(lambda: bob.accept(pkm), "replayed first prekey message")
            eq(bsession.state.encode(), before, "session state after a refused replay")
            if has_opk:
                # Without that session, a replay must not start a second one: the key is gone.
                bob.sessions.clear()
                refused(lambda: bob.accept(pkm), "replayed prekey message after the one-time prekey was used")
            # Bob's unknown signed prekey id is refused.
            other = store()
            other.signed.clear()
            refused(lambda: other.accept(pkm), "prekey message naming an unknown signed prekey")
        case_cb(c["name"], run)


# ---------------------------------------------------------------------------------------------
# securechat-dr-vectors/1
# ---------------------------------------------------------------------------------------------

def check_dr(doc: dict, case_cb) -> None:
    p = doc["params"]
    eq(hx(p["kdf_rk_info_hex"]), sc.KDF_RK_INFO, "params.kdf_rk_info_hex")
    eq(hx(p["aead_info_hex"]), sc.DR_MESSAGE_KEYS_INFO, "params.aead_info_hex")
    eq(p["header_encoding"], "dh32|pn_u32be|n_u32be", "params.header_encoding")
    eq(p["max_skip"], sc.MAX_SKIP, "params.max_skip")
    eq(p["max_stored_skipped_keys"], sc.MAX_STORED_SKIPPED_KEYS, "params.max_stored_skipped_keys")
    for c in doc["cases"]:
        case_cb(c["name"], lambda c=c: check_dr_case(c))


def check_dr_case(c: dict) -> None:
    sk, ad = hx(c["shared_secret"]), hx(c["associated_data"])
    bob_priv, bob_pub = hx(c["bob_initial_ratchet_priv"]), hx(c["bob_initial_ratchet_pub"])
    eq(sc.x25519_public(bob_priv), bob_pub, "bob_initial_ratchet_pub")
    alice_list = [hx(k) for k in c["alice_generated_ratchet_privs"]]
    bob_list = [hx(k) for k in c["bob_generated_ratchet_privs"]]
    states = {
        "alice": sc.ratchet_init_alice(sk, ad, bob_pub, sc.KeySource.from_list(alice_list)),
        "bob": sc.ratchet_init_bob(sk, ad, bob_priv, sc.KeySource.from_list(bob_list)),
    }
    msgs = {}
    for m in c["messages"]:
        expect(m["id"] not in msgs, f"duplicate message id {m['id']}")
        expect(m["sender"] in states, f"message {m['id']}: unknown sender")
        refuse_only = m["plaintext"] is None
        expect(refuse_only == (m["header"] is None) == (m["message_key"] is None),
               f"message {m['id']}: plaintext, header and message_key must be null together")
        expect(len(hx(m["header_bytes"])) == 40, f"message {m['id']}: header_bytes must be 40 bytes")
        if not refuse_only:
            h = m["header"]
            eq(sc.Header(hx(h["dh"]), h["pn"], h["n"]).encode(), hx(m["header_bytes"]),
               f"message {m['id']}: header object vs header_bytes")
        msgs[m["id"]] = m
    used = set()
    for i, e in enumerate(c["events"]):
        where = f"event {i} ({e['op']} {e['party']} {e['msg']}{' expect ' + e['expect'] if 'expect' in e else ''})"
        try:
            expect(e["msg"] in msgs, "unknown message")
            expect(e["party"] in states, "unknown party")
            expect(e.get("expect", "ok") in ("ok", "fail"), "unknown expect value")
            m, party = msgs[e["msg"]], e["party"]
            used.add(e["msg"])
            st = states[party]
            if e["op"] == "send":
                expect(m["sender"] == party and m["plaintext"] is not None and "expect" not in e,
                       "a send must be by the message's sender, of a real message")
                h, ct, mk = sc.ratchet_encrypt(st, hx(m["plaintext"]))
                expect(not st.keys.overdrawn, "sender used a ratchet key beyond the listed ones")
                eq(h.encode(), hx(m["header_bytes"]), "header bytes")
                eq(ct, hx(m["ciphertext"]), "ciphertext")
                eq(mk, hx(m["message_key"]), "message key")
            elif e["op"] == "recv":
                expect(m["sender"] != party, "a party receiving its own message")
                wire = bytes([1, 1]) + hx(m["header_bytes"]) + hx(m["ciphertext"])
                before = (st.encode(), st.keys.index)

                def receive():
                    h, ct = sc.decode_ratchet_message(wire)
                    return sc.ratchet_decrypt(st, h, ct)
                if e.get("expect") == "fail":
                    refused(receive, "message")
                    eq((st.encode(), st.keys.index), before, "state after a refused message (must be unchanged)")
                else:
                    expect(m["plaintext"] is not None, "a successful recv of a refuse-only message")
                    try:
                        new, pt, mk = receive()
                    except ProtocolError as ex:
                        raise Mismatch(f"refused ({type(ex).__name__}: {ex}), must decrypt")
                    eq(pt, hx(m["plaintext"]), "plaintext")
                    eq(mk, hx(m["message_key"]), "message key")
                    expect(not new.keys.overdrawn, "receiver committed a ratchet key beyond the listed ones")
                    eq(sc.RatchetState.decode(new.encode(), new.keys).encode(), new.encode(),
                       "section 12 state encoding round trip")
                    states[party] = new
            else:
                raise Mismatch(f"unknown op {e['op']!r}")
        except (Mismatch, ProtocolError) as ex:
            raise Mismatch(f"{where}: {ex}") from ex
    unused = [m for m in msgs if m not in used]
    expect(not unused, f"messages used by no event: {unused}")
    # Committed-state-only key lists: every listed key consumed, none left over.
    eq(states["alice"].keys.index, len(alice_list), "alice_generated_ratchet_privs consumed")
    eq(states["bob"].keys.index, len(bob_list), "bob_generated_ratchet_privs consumed")
    # And every generated key appears in a header of a message it sent.
    for who, lst in (("alice", alice_list), ("bob", bob_list)):
        sent = {m["header"]["dh"] for m in msgs.values() if m["sender"] == who and m["header"]}
        for k in lst:
            expect(sc.x25519_public(k).hex() in sent, f"{who}'s generated key {k.hex()[:16]}… appears in no header")


# ---------------------------------------------------------------------------------------------
# securechat-sender-key-vectors/1
# ---------------------------------------------------------------------------------------------

ROOM, MEMBER = "room", "member"


def check_sender_keys(doc: dict, case_cb) -> None:
    p = doc["params"]
    eq(hx(p["message_keys_info_hex"]), sc.SENDER_KEY_MESSAGE_KEYS_INFO, "params.message_keys_info_hex")
    eq(hx(p["signature_context_hex"]), sc.SENDER_KEY_SIGNATURE_CONTEXT, "params.signature_context_hex")
    eq(p["max_forward"], sc.SENDER_KEY_MAX_FORWARD, "params.max_forward")
    eq(p["max_stored_keys"], sc.SENDER_KEY_MAX_STORED_KEYS, "params.max_stored_keys")
    for c in doc["cases"]:
        case_cb(c["name"], lambda c=c: check_sender_case(c))


def check_sender_case(c: dict) -> None:
    chain = sc.SenderChain(hx(c["distribution_id"]), c["chain_id"], c["initial_iteration"],
                           hx(c["chain_key"]), hx(c["signing_key_seed"]))
    eq(chain.signing_public, hx(c["signing_key_public"]), "signing_key_public")
    sc.validate_ed25519_public(chain.signing_public)
    dist = hx(c["distribution_message"])
    eq(chain.distribution_message().encode(), dist, "distribution message")
    eq(len(dist), 90, "distribution message length")
    store = sc.SenderKeyStore()
    expect(store.process_distribution(ROOM, MEMBER, dist), "distribution message not accepted")
    rec0 = store.records[(ROOM, MEMBER)].encode()
    expect(not store.process_distribution(ROOM, MEMBER, dist), "replayed distribution not ignored")
    eq(store.records[(ROOM, MEMBER)].encode(), rec0, "record after a replayed distribution")
    refused(lambda: store.process_distribution(ROOM, "someone-else", dist),
            "distribution id already bound to another member")

    msgs = {}
    for m in c["messages"]:
        expect(m["id"] not in msgs, f"duplicate message id {m['id']}")
        refuse_only = m["plaintext"] is None
        expect(refuse_only == (m["iteration"] is None) == (m["message_key"] is None),
               f"message {m['id']}: plaintext, iteration and message_key must be null together")
        msgs[m["id"]] = m
    used = set()
    for i, e in enumerate(c["events"]):
        where = f"event {i} ({e['op']} {e['msg']}{' expect ' + e['expect'] if 'expect' in e else ''})"
        try:
            expect(e["msg"] in msgs, "unknown message")
            m = msgs[e["msg"]]
            used.add(e["msg"])
            ser = hx(m["serialized"])
            if e["op"] == "send":
                expect(m["plaintext"] is not None and "expect" not in e, "a send of a refuse-only message")
                ours, mk, it = chain.encrypt(hx(m["plaintext"]))
                eq(it, m["iteration"], "iteration")
                eq(mk, hx(m["message_key"]), "message key")
                eq(ours[:-64], ser[:-64], "room message before the signature")
                # Signatures may be randomised: verify both, compare neither.
                sc.ed25519_verify(chain.signing_public, ours[-64:], sc.sender_message_signature_input(ours[:-64]))
                sc.ed25519_verify(chain.signing_public, ser[-64:], sc.sender_message_signature_input(ser[:-64]))
            elif e["op"] == "recv":
                before = store.records[(ROOM, MEMBER)].encode()
                if e.get("expect") == "fail":
                    refused(lambda: store.decrypt(ROOM, MEMBER, ser), "room message")
                    eq(store.records[(ROOM, MEMBER)].encode(), before, "record after a refused message (must be unchanged)")
                else:
                    expect(m["plaintext"] is not None, "a successful recv of a refuse-only message")
                    try:
                        pt, mk = store.decrypt(ROOM, MEMBER, ser)
                    except ProtocolError as ex:
                        raise Mismatch(f"refused ({type(ex).__name__}: {ex}), must decrypt")
                    eq(pt, hx(m["plaintext"]), "plaintext")
                    eq(mk, hx(m["message_key"]), "message key")
            else:
                raise Mismatch(f"unknown op {e['op']!r}")
        except (Mismatch, ProtocolError) as ex:
            raise Mismatch(f"{where}: {ex}") from ex
    unused = [m for m in msgs if m not in used]
    expect(not unused, f"messages used by no event: {unused}")
    rec = store.records[(ROOM, MEMBER)].encode()
    expect(not store.process_distribution(ROOM, MEMBER, dist), "late replayed distribution not ignored")
    eq(store.records[(ROOM, MEMBER)].encode(), rec, "a replayed distribution moved the chain")


# ---------------------------------------------------------------------------------------------
# securechat-fingerprint-vectors/1
# ---------------------------------------------------------------------------------------------

def check_fingerprints(doc: dict, case_cb) -> None:
    eq(doc["iterations"], sc.FINGERPRINT_ITERATIONS, "iterations")
    for c in doc["cases"]:
        def run(c=c):
            lfp = sc.fingerprint(hx(c["local_key"]), hx(c["local_identifier"]))
            rfp = sc.fingerprint(hx(c["remote_key"]), hx(c["remote_identifier"]))
            eq(lfp, hx(c["local_fingerprint"]), "local_fingerprint")
            eq(rfp, hx(c["remote_fingerprint"]), "remote_fingerprint")
            eq(sc.displayable(lfp, rfp), c["displayable"], "displayable (local view)")
            eq(sc.displayable(rfp, lfp), c["displayable"], "displayable (remote view)")
            eq(len(c["displayable"]), 60, "displayable length")
            code = hx(c["scannable"])
            eq(sc.scannable(lfp, rfp), code, "scannable (local view)")
            theirs = sc.scannable(rfp, lfp)
            # Each party scans the other's code.
            expect(sc.compare_scanned(theirs, lfp, rfp), "local party does not match the remote's code")
            expect(sc.compare_scanned(code, rfp, lfp), "remote party does not match the local code")
            expect(not sc.compare_scanned(code, lfp, rfp), "a party matched its own code")
            bad = bytearray(code)
            bad[-1] ^= 1
            expect(not sc.compare_scanned(bytes(bad), rfp, lfp), "a changed fingerprint byte matched")
            refused(lambda: sc.compare_scanned(code[:-1], rfp, lfp), "truncated scannable code")
            refused(lambda: sc.compare_scanned(code[:1] + b"\x02" + code[2:], rfp, lfp), "scannable version 2")
        case_cb(c["name"], run)


# ---------------------------------------------------------------------------------------------
# securechat-attachment-vectors/1
# ---------------------------------------------------------------------------------------------

def check_attachments(doc: dict, case_cb) -> None:
    eq(hx(doc["info_hex"]), sc.ATTACHMENT_INFO, "info_hex")
    for c in doc["cases"]:
        def run(c=c):
            key, salt, pt = hx(c["key"]), hx(c["salt"]), hx(c["plaintext"])
            stream, digest = hx(c["stream"]), hx(c["digest"])
            eq(sc.encrypt_attachment(key, salt, pt, c["chunk_size"]), stream, "stream (encryptor)")
            eq(hashlib.sha256(stream).digest(), digest, "digest")
            for feed in (1, 333, 4096, max(1, len(stream))):
                eq(sc.decrypt_attachment(key, stream, digest, len(pt), feed=feed), pt, f"plaintext (decryptor, feed {feed})")
            refused(lambda: sc.decrypt_attachment(key, stream, digest, len(pt) + 1), "stream with the wrong size")
            for t in c["tampered"]:
                ts = hx(t["stream"])
                expect(ts != stream, f"tampered stream {t['description']!r} equals the original")
                # Refused by the STREAM construction itself, not only by the digest check.
                refused(lambda: sc.decrypt_attachment(key, ts), f"tampered stream ({t['description']}) without digest")
                refused(lambda: sc.decrypt_attachment(key, ts, digest, len(pt)), f"tampered stream ({t['description']})")
        case_cb(c["name"], run)


CHECKERS = {
    "securechat-identity-vectors/1": check_identity,
    "securechat-x3dh-vectors/1": check_x3dh,
    "securechat-dr-vectors/1": check_dr,
    "securechat-sender-key-vectors/1": check_sender_keys,
    "securechat-fingerprint-vectors/1": check_fingerprints,
    "securechat-attachment-vectors/1": check_attachments,
}


def check_file(path: str, verbose: bool) -> list:
    failures = []
    raw = open(path, "rb").read()
    try:
        doc = json.loads(raw)
    except ValueError as e:
        return [f"{path}: not JSON: {e}"]
    schema = doc.get("schema")
    if schema not in CHECKERS:
        return [f"{path}: unknown schema {schema!r}"]
    try:
        seal = check_seal(raw, doc)
    except Mismatch as e:
        failures.append(f"{path}: {e}")
        seal = "seal FAILED"
    count = [0]

    def case_cb(name, fn):
        count[0] += 1
        try:
            fn()
        except (Mismatch, ProtocolError, KeyError, TypeError, ValueError) as e:
            kind = "" if isinstance(e, Mismatch) else f"{type(e).__name__}: "
            msg = f"{path}: case {name!r}: {kind}{e}"
            if verbose and not isinstance(e, Mismatch):
                msg += "\n" + traceback.format_exc()
            failures.append(msg)
    try:
        CHECKERS[schema](doc, case_cb)
    except (Mismatch, KeyError, TypeError, ValueError) as e:
        failures.append(f"{path}: {type(e).__name__}: {e}")
    status = "FAIL" if failures else "ok"
    print(f"{status:4} {path}: {schema}, {count[0]} cases, {seal} [{doc.get('generator', '?')}]")
    return failures


def main(argv: list) -> int:
    verbose = "-v" in argv
    files = [a for a in argv if a != "-v"]
    if not files:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    print(f"securechat python reference checker (cryptography {cryptography.__version__})")
    failures = []
    for f in files:
        failures += check_file(f, verbose)
    for f in failures:
        print("MISMATCH " + f, file=sys.stderr)
    if failures:
        print(f"{len(failures)} failure(s)", file=sys.stderr)
        return 1
    print("all files pass")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
