#!/usr/bin/env python3
"""Bounds and flows that vector files cannot hold in a reasonable size (every message of a
transcript must appear in it, so MAX_SKIP alone would take 1001 messages, ~450 KB).

    python3 selftest.py
"""

from __future__ import annotations

import io

import securechat_ref as sc
from securechat_ref import KeySource, labelled_key


def pair(label: str):
    sk = labelled_key(label + "/sk", 0)
    ad = bytes(64)
    spk = labelled_key(label + "/spk", 0)
    alice = sc.ratchet_init_alice(sk, ad, sc.x25519_public(spk), KeySource(lambda i: labelled_key(label + "/a", i)))
    bob = sc.ratchet_init_bob(sk, ad, spk, KeySource(lambda i: labelled_key(label + "/b", i)))
    return alice, bob


def must_refuse(fn, err=sc.ProtocolError):
    try:
        fn()
    except err:
        return
    raise AssertionError("accepted, must be refused")


def test_max_skip():
    alice, bob = pair("max-skip")
    msgs = [sc.ratchet_encrypt(alice, b"%d" % i) for i in range(1002)]
    h, c, _ = msgs[1001]
    before = bob.encode()
    must_refuse(lambda: sc.ratchet_decrypt(bob, h, c), sc.TooManySkipped)     # 1001 ahead
    assert bob.encode() == before
    h, c, _ = msgs[1000]
    bob, pt, _ = sc.ratchet_decrypt(bob, h, c)                                # exactly 1000 ahead
    assert pt == b"1000" and len(bob.skipped) == 1000
    for i in (999, 0, 500):
        h, c, _ = msgs[i]
        bob, pt, _ = sc.ratchet_decrypt(bob, h, c)
        assert pt == b"%d" % i
    print("ok   MAX_SKIP: 1000 ahead accepted, 1001 refused with state unchanged")


def test_eviction():
    alice, bob = pair("eviction")
    first = []
    for chain in range(3):
        msgs = [sc.ratchet_encrypt(alice, b"c%d-%d" % (chain, i)) for i in range(1001)]
        first.append(msgs[0])
        h, c, _ = msgs[1000]
        bob, _, _ = sc.ratchet_decrypt(bob, h, c)                             # stores 1000 keys
        h, c, _ = sc.ratchet_encrypt(bob, b"turn")
        alice, _, _ = sc.ratchet_decrypt(alice, h, c)
    assert len(bob.skipped) == sc.MAX_STORED_SKIPPED_KEYS
    # 3000 stored in all, 2000 kept: the first chain's keys are the oldest and are gone.
    h, c, _ = first[0]
    must_refuse(lambda: sc.ratchet_decrypt(bob, h, c))
    for chain in (1, 2):
        h, c, _ = first[chain]
        bob, pt, _ = sc.ratchet_decrypt(bob, h, c)
        assert pt == b"c%d-0" % chain
    print("ok   MAX_STORED_SKIPPED_KEYS: oldest evicted first across chains")


def test_prekey_flow():
    a_seed, b_seed = labelled_key("flow/a", 0), labelled_key("flow/b", 0)
    spk_priv, opk_priv = labelled_key("flow/spk", 0), labelled_key("flow/opk", 0)
    spk_pub = sc.x25519_public(spk_priv)
    sig = sc.ed25519_sign(b_seed, sc.signed_prekey_signature_input(5, spk_pub, 99))
    bundle = sc.Bundle(sc.ed25519_public(b_seed), 5, spk_pub, 99, sig, 8, sc.x25519_public(opk_priv)).encode()
    must_refuse(lambda: sc.Bundle.decode(bundle[:-37] + b"\x02" + bundle[-36:]), sc.DecodeError)  # flag 2
    must_refuse(lambda: sc.Bundle.decode(bundle + b"\x00"), sc.DecodeError)
    bad_sig = bytearray(bundle)
    bad_sig[80] ^= 1
    must_refuse(lambda: sc.Bundle.decode(bytes(bad_sig)), sc.BadSignature)
    alice, _ = sc.initiate_session(a_seed, bundle, labelled_key("flow/ek", 0), KeySource.system())
    store = sc.PrekeyStore(b_seed)
    store.signed[5], store.one_time[8] = spk_priv, opk_priv
    m1, m2 = alice.encrypt(b"one"), alice.encrypt(b"two")
    assert m1[1] == sc.T_PREKEY and m2[1] == sc.T_PREKEY
    bob, pt, _ = store.accept(m2)
    assert pt == b"two" and 8 not in store.one_time
    s, pt, _ = store.accept(m1)                # same initiation: decrypted by the same session
    assert s is bob and pt == b"one"
    reply = bob.encrypt(b"hello alice")
    assert reply[1] == sc.T_RATCHET
    assert alice.decrypt_ratchet_message(reply) == b"hello alice"
    m3 = alice.encrypt(b"three")
    assert m3[1] == sc.T_RATCHET                # Alice stops sending prekey messages
    assert bob.decrypt_ratchet_message(m3) == b"three"
    print("ok   prekey flow: prekey messages until the first reply, one-time prekey consumed once")


def _chain(label, iteration=0):
    return sc.SenderChain(labelled_key(label + "/dist", 0)[:16], 77, iteration, labelled_key(label + "/ck", 0),
                          labelled_key(label + "/sig", 0))


def test_sender_key_bounds():
    ch = _chain("sk-bounds")
    store = sc.SenderKeyStore()
    store.process_distribution("r", "m", ch.distribution_message().encode())
    first, _, _ = ch.encrypt(b"zero")
    for _ in range(sc.SENDER_KEY_MAX_FORWARD):                 # iterations 1 .. 25000 skipped
        ch.chain_key, _ = sc.kdf_ck(ch.chain_key)
        ch.iteration += 1
    at_bound, _, it = ch.encrypt(b"exactly max forward")
    beyond_ch = _chain("sk-bounds")
    beyond_ch.iteration, beyond_ch.chain_key = ch.iteration, ch.chain_key
    # From the receiver's iteration 0: 25001 is 25001 ahead, refused.
    store2 = sc.SenderKeyStore()
    store2.process_distribution("r", "m", _chain("sk-bounds").distribution_message().encode())
    too_far, _, _ = beyond_ch.encrypt(b"too far")
    must_refuse(lambda: store2.decrypt("r", "m", too_far), sc.TooManySkipped)
    # After m0, the receiver is at 1 and iteration 25001 is exactly 25000 ahead.
    assert store.decrypt("r", "m", first)[0] == b"zero"
    assert it == 25001 and store.decrypt("r", "m", at_bound)[0] == b"exactly max forward"
    rec = store.records[("r", "m")].chains[-1]
    assert len(rec.skipped) == sc.SENDER_KEY_MAX_STORED_KEYS and min(rec.skipped) == 25001 - 2000
    print("ok   sender keys: 25000 ahead accepted, 25001 refused; 2000 stored keys, oldest evicted")


def test_sender_key_rotation():
    store = sc.SenderKeyStore()
    chains, firsts = [], []
    for k in range(6):
        ch = _chain("rot")
        ch.chain_id, ch.chain_key = 1000 + k, labelled_key("rot/ck", k)
        chains.append(ch)
        assert store.process_distribution("r", "m", ch.distribution_message().encode())
        firsts.append(ch.encrypt(b"chain %d" % k)[0])
    assert len(store.records[("r", "m")].chains) == 1 + sc.PREVIOUS_SENDER_CHAINS_KEPT
    must_refuse(lambda: store.decrypt("r", "m", firsts[0]), sc.UnknownKey)   # 5 rotations ago
    for k in range(1, 6):
        assert store.decrypt("r", "m", firsts[k])[0] == b"chain %d" % k
    print("ok   sender keys: current chain plus 4 previous ones")


def test_attachment_streaming():
    key, salt = labelled_key("att/key", 0), bytes(16)
    for n in (0, 1, sc.DEFAULT_CHUNK_SIZE, 3 * sc.DEFAULT_CHUNK_SIZE, 3 * sc.DEFAULT_CHUNK_SIZE + 5):
        data = bytes(i % 251 for i in range(n))
        chunks = list(sc.encrypt_attachment_stream(key, salt, io.BytesIO(data)))
        expected_chunks = max(1, -(-n // sc.DEFAULT_CHUNK_SIZE))
        assert len(chunks) == 1 + expected_chunks
        stream = b"".join(chunks)
        assert sc.decrypt_attachment(key, stream, sc.sha256(stream), n, feed=10_000) == data
    print("ok   attachments: chunk counts and streaming round trips at the default chunk size")


if __name__ == "__main__":
    test_max_skip()
    test_eviction()
    test_prekey_flow()
    test_sender_key_bounds()
    test_sender_key_rotation()
    test_attachment_streaming()
    print("all self-tests pass")
