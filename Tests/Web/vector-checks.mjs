// Checks SecureChat vector files (docs/PROTOCOL.md §13) with the web client's protocol code, in
// both roles of every schema, as Tests/Interop/python/check_vectors.py does for Python:
//
//     node Tests/Web/vector-checks.mjs FILE...
//
// Also imported by the node tests (protocol.test.mjs), one test per case.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { concat, fromHex, toHex } from '../../Web/js/protocol/byte-coding.js';
import { ProtocolError } from '../../Web/js/protocol/errors.js';
import { EdwardsPoint, groupOrder } from '../../Web/js/protocol/edwards-point.js';
import { p as fieldPrime, sqrt, mod, invert } from '../../Web/js/protocol/field25519.js';
import { IdentityKey, validateX25519PublicKey } from '../../Web/js/protocol/identity-key.js';
import { IdentityKeyPair, importEd25519Seed } from '../../Web/js/protocol/identity-key-pair.js';
import { KDFLabels } from '../../Web/js/protocol/kdf-labels.js';
import { ScriptedKeySource, dh, importX25519PrivateKey } from '../../Web/js/protocol/key-source.js';
import { ProtocolLimits } from '../../Web/js/protocol/protocol-limits.js';
import { OneTimePreKey, PreKeyBundle, SignedPreKey, signedPreKeySignatureInput } from '../../Web/js/protocol/pre-key-bundle.js';
import { RatchetHeader } from '../../Web/js/protocol/ratchet/ratchet-header.js';
import { RatchetState } from '../../Web/js/protocol/ratchet/ratchet-state.js';
import { sha512 } from '../../Web/js/protocol/hmac-sha256.js';
import { InMemoryPreKeyStore } from '../../Web/js/protocol/session/pre-key-store.js';
import { Session } from '../../Web/js/protocol/session/session.js';
import { PreKeyMessage, RatchetMessage } from '../../Web/js/protocol/session/session-messages.js';
import { SafetyNumber } from '../../Web/js/protocol/safety-number.js';
import { SenderKeyDistributionMessage, SenderKeyMessage } from '../../Web/js/protocol/sender-keys/sender-key-messages.js';
import { SenderKeyState } from '../../Web/js/protocol/sender-keys/sender-key-state.js';
import { SenderKeyStore } from '../../Web/js/protocol/sender-keys/sender-key-store.js';
import { AttachmentDecryptor, AttachmentEncryptor } from '../../Web/js/protocol/attachments.js';

export class Mismatch extends Error {}

function expect(condition, what) {
  if (!condition) throw new Mismatch(what);
}

function eq(got, want, what) {
  const show = (v) => (v instanceof Uint8Array ? toHex(v) : JSON.stringify(v));
  if (show(got) !== show(want)) throw new Mismatch(`${what}: computed ${show(got)}, file has ${show(want)}`);
}

function hx(text) {
  if (typeof text !== 'string' || text !== text.toLowerCase()) throw new Mismatch(`expected lowercase hex, got ${JSON.stringify(text)}`);
  return fromHex(text);
}

async function refused(operation, what) {
  try {
    await operation();
  } catch (error) {
    if (error instanceof ProtocolError) return error;
    throw error;
  }
  throw new Mismatch(`${what}: accepted, must be refused`);
}

const flipLast = (bytes) => {
  const copy = bytes.slice();
  copy[copy.length - 1] ^= 1;
  return copy;
};

// The seal (§13): SHA-256 of every byte up to and including the newline before the final
// "sha256" member, which must be the file's last member on a line of its own.
export function checkSeal(raw, doc) {
  if (!('sha256' in doc)) return 'no seal';
  const text = raw.toString('latin1');
  const match = /,\n[ \t]*"sha256"[ \t]*:[ \t]*"([0-9a-f]{64})"[ \t]*\n\}\n?$/.exec(text);
  expect(match !== null, 'seal: the "sha256" member is not the last line before the closing brace');
  expect(Object.keys(doc).at(-1) === 'sha256', 'seal: "sha256" is not the last member');
  const end = match.index + 2;
  eq(createHash('sha256').update(raw.subarray(0, end)).digest('hex'), doc.sha256, 'seal (SHA-256 of the bytes before its line)');
  return 'seal ok';
}

async function x25519Public(privateBytes) {
  return (await importX25519PrivateKey(privateBytes)).publicKey;
}

/** Runs a case's send and recv events in order, each failure naming its event; all messages must be used. */
async function playEvents(events, messages, perform) {
  const used = new Set();
  for (const [i, e] of events.entries()) {
    const where = `event ${i} (${e.op}${e.party ? ` ${e.party}` : ''} ${e.msg}${e.expect ? ` expect ${e.expect}` : ''})`;
    try {
      expect(messages.has(e.msg), 'unknown message');
      expect(e.op === 'send' || e.op === 'recv', `unknown op ${e.op}`);
      used.add(e.msg);
      await perform(e, messages.get(e.msg));
    } catch (error) {
      if (error instanceof Mismatch || error instanceof ProtocolError) throw new Mismatch(`${where}: ${error.message}`);
      throw error;
    }
  }
  const unused = [...messages.keys()].filter((id) => !used.has(id));
  expect(unused.length === 0, `messages used by no event: ${unused}`);
}

/** A receive that must succeed: a refusal is reported as a mismatch with its reason. */
async function mustDecrypt(operation) {
  try {
    return await operation();
  } catch (error) {
    if (error instanceof ProtocolError) throw new Mismatch(`refused (${error.code}: ${error.message}), must decrypt`);
    throw error;
  }
}

// ---- securechat-identity-vectors/1

async function checkIdentity(doc, runCase) {
  for (const [i, c] of doc.cases.entries()) {
    await runCase(`case ${i}`, async () => {
      const seed = hx(c.ed25519_seed);
      const pub = hx(c.ed25519_public);
      const pair = await IdentityKeyPair.fromSeed(seed);
      eq(pair.publicKey.bytes, pub, 'ed25519_public from seed');
      const scalar = (await sha512(seed)).slice(0, 32);
      scalar[0] &= 0xf8; scalar[31] &= 0x7f; scalar[31] |= 0x40;
      eq(scalar, hx(c.x25519_private), 'x25519_private (clamped SHA-512(seed)[0..<32])');
      const xpub = hx(c.x25519_public);
      eq(new IdentityKey(pub).x25519, xpub, 'x25519_public by u = (1+y)/(1-y)');
      eq(await x25519Public(scalar), xpub, 'x25519_public as X25519(x, 9)');
      validateX25519PublicKey(xpub);
      // The converted key agrees in both directions with a key pair made from the seed's hash.
      const other = await importX25519PrivateKey(new Uint8Array(createHash('sha256').update(seed).digest()));
      eq(await dh(pair.agreementKey, other.publicKey), await dh(other.privateKey, xpub), 'DH symmetry with the converted key');
    });
  }
  for (const [i, c] of (doc.invalid_public_keys ?? []).entries()) {
    await runCase(`invalid key ${i} (${c.reason})`, async () => {
      expect(typeof c.reason === 'string' && c.reason.length > 0, 'invalid key without a reason');
      await refused(() => new IdentityKey(hx(c.ed25519_public)), `invalid key (${c.reason})`);
    });
  }
}

// §2.1 claims that no y in [p, 2²⁵⁵) decodes to a prime-order point; checked once.
export function checkHighYClaim() {
  const d = mod(-121665n * invert(121666n));
  for (let offset = 0n; offset < 19n; offset++) {
    const y = offset;
    const y2 = mod(y * y);
    const x = sqrt(mod((y2 - 1n) * invert(mod(d * y2 + 1n))));
    if (x === null) continue;
    for (const sx of [x, mod(fieldPrime - x)]) {
      const point = new EdwardsPoint(sx, y, 1n, mod(sx * y));
      const primeOrder = !point.multiply(8n).isIdentity && point.multiply(groupOrder).isIdentity;
      expect(!primeOrder, `section 2.1 claim: y = p + ${y} decodes to a prime-order point`);
    }
  }
}

// ---- securechat-x3dh-vectors/1

async function checkX3DH(doc, runCase) {
  eq(hx(doc.info_hex), KDFLabels.x3dh, 'info_hex');
  for (const c of doc.cases) {
    await runCase(c.name, async () => {
      const hasOneTime = c.bob_one_time_prekey_id !== null;
      expect(hasOneTime === (c.bob_one_time_prekey_private !== null) && hasOneTime === (c.bob_one_time_prekey_public !== null),
        'one-time prekey fields must be all null or all set');
      const alice = await IdentityKeyPair.fromSeed(hx(c.alice_identity_seed));
      const bob = await IdentityKeyPair.fromSeed(hx(c.bob_identity_seed));
      eq(alice.publicKey.bytes, hx(c.alice_identity_public), 'alice_identity_public');
      eq(bob.publicKey.bytes, hx(c.bob_identity_public), 'bob_identity_public');
      eq(alice.publicKey.x25519, hx(c.alice_identity_x25519_public), 'alice_identity_x25519_public');
      eq(bob.publicKey.x25519, hx(c.bob_identity_x25519_public), 'bob_identity_x25519_public');
      const signedPair = await importX25519PrivateKey(hx(c.bob_signed_prekey_private));
      eq(signedPair.publicKey, hx(c.bob_signed_prekey_public), 'bob_signed_prekey_public');
      const oneTimePair = hasOneTime ? await importX25519PrivateKey(hx(c.bob_one_time_prekey_private)) : null;
      if (hasOneTime) eq(oneTimePair.publicKey, hx(c.bob_one_time_prekey_public), 'bob_one_time_prekey_public');

      // Bob publishes: signatures are verified, never compared (§1).
      const id = c.bob_signed_prekey_id;
      const createdAt = BigInt(c.bob_signed_prekey_created_at);
      const fileSignature = hx(c.bob_signed_prekey_signature);
      await bob.publicKey.verify(fileSignature, signedPreKeySignatureInput(id, signedPair.publicKey, createdAt));
      const ourSignature = await bob.sign(signedPreKeySignatureInput(id, signedPair.publicKey, createdAt));
      const signed = new SignedPreKey({ id, publicKey: signedPair.publicKey, createdAt, signature: ourSignature });
      await signed.verify(bob.publicKey);
      eq(signed.encode().length, 110, 'signed prekey encoding length');
      eq(SignedPreKey.decode(signed.encode()).encode(), signed.encode(), 'signed prekey round trip');
      const oneTime = hasOneTime ? new OneTimePreKey({ id: c.bob_one_time_prekey_id, publicKey: oneTimePair.publicKey }) : null;
      if (oneTime) eq(OneTimePreKey.decode(oneTime.encode()).encode(), oneTime.encode(), 'one-time prekey round trip');
      const bundleBytes = hx(c.bundle);
      const ours = new PreKeyBundle({ identityKey: bob.publicKey, signedPreKey: signed, oneTimePreKey: oneTime }).encode();
      eq(bundleBytes.length, hasOneTime ? 179 : 143, 'bundle length');
      eq(ours.subarray(0, 78), bundleBytes.subarray(0, 78), 'bundle bytes before the signature');
      eq(ours.subarray(142), bundleBytes.subarray(142), 'bundle bytes after the signature');
      await PreKeyBundle.decode(ours);

      // Alice's role.
      const bundle = await PreKeyBundle.decode(bundleBytes);
      const ephemeral = await importX25519PrivateKey(hx(c.alice_ephemeral_private));
      const { session, agreement } = await Session.initiate(alice, bundle, {
        ephemeralKey: ephemeral, keySource: new ScriptedKeySource([hx(c.alice_ratchet_private)]),
      });
      const outputs = c.dh.map(hx);
      eq(outputs.length, hasOneTime ? 4 : 3, 'number of DH outputs');
      eq(concat(...agreement.outputs), concat(...outputs), 'DH1..DH4 (Alice)');
      eq(agreement.sharedSecret, hx(c.shared_secret), 'SK (Alice)');
      eq(agreement.associatedData, hx(c.associated_data), 'AD (Alice)');
      const first = hx(c.first_plaintext);
      const preKeyMessage = hx(c.prekey_message);
      eq(await session.encrypt(first), preKeyMessage, 'prekey message (Alice)');

      // Bob's role.
      const store = () => new InMemoryPreKeyStore({
        signedPreKeys: [{ id, ...signedPair }],
        oneTimePreKeys: hasOneTime ? [{ id: c.bob_one_time_prekey_id, ...oneTimePair }] : [],
      });
      const bobStore = store();
      await refused(async () => Session.accept(PreKeyMessage.decode(flipLast(preKeyMessage)), bob, bobStore), 'prekey message with a flipped tag byte');
      expect(!hasOneTime || bobStore.oneTimePreKey(c.bob_one_time_prekey_id) !== null, 'a forged prekey message consumed the one-time prekey');
      const accepted = await Session.accept(PreKeyMessage.decode(preKeyMessage), bob, bobStore);
      eq(accepted.plaintext, first, 'first plaintext (Bob)');
      eq(concat(...accepted.agreement.outputs), concat(...outputs), 'DH1..DH4 (Bob)');
      eq(accepted.agreement.sharedSecret, hx(c.shared_secret), 'SK (Bob)');
      eq(accepted.agreement.associatedData, hx(c.associated_data), 'AD (Bob)');
      expect(!hasOneTime || bobStore.oneTimePreKey(c.bob_one_time_prekey_id) === null, 'one-time prekey not deleted after decryption');
      // The same initiation again: its session refuses the duplicate, the store refuses a second session.
      const before = accepted.session.ratchet.fingerprint();
      await refused(() => accepted.session.decrypt({ kind: 'preKey', message: PreKeyMessage.decode(preKeyMessage) }), 'replayed first prekey message');
      eq(accepted.session.ratchet.fingerprint(), before, 'session state after a refused replay');
      await refused(() => Session.accept(PreKeyMessage.decode(preKeyMessage), bob, bobStore), 'replayed prekey message starting a second session');
      const other = store();
      other.removeSignedPreKey(id);
      await refused(() => Session.accept(PreKeyMessage.decode(preKeyMessage), bob, other), 'prekey message naming an unknown signed prekey');
    });
  }
}

// ---- securechat-dr-vectors/1

async function checkDoubleRatchet(doc, runCase) {
  const params = doc.params;
  eq(hx(params.kdf_rk_info_hex), KDFLabels.rootKey, 'params.kdf_rk_info_hex');
  eq(hx(params.aead_info_hex), KDFLabels.ratchetMessageKeys, 'params.aead_info_hex');
  eq(params.header_encoding, 'dh32|pn_u32be|n_u32be', 'params.header_encoding');
  eq(params.max_skip, ProtocolLimits.maxSkip, 'params.max_skip');
  eq(params.max_stored_skipped_keys, ProtocolLimits.maxStoredSkippedKeys, 'params.max_stored_skipped_keys');
  for (const c of doc.cases) await runCase(c.name, () => checkDoubleRatchetCase(c));
}

async function checkDoubleRatchetCase(c) {
  const sharedSecret = hx(c.shared_secret);
  const associatedData = hx(c.associated_data);
  const bobInitial = await importX25519PrivateKey(hx(c.bob_initial_ratchet_priv));
  eq(bobInitial.publicKey, hx(c.bob_initial_ratchet_pub), 'bob_initial_ratchet_pub');
  const aliceKeys = c.alice_generated_ratchet_privs.map(hx);
  const bobKeys = c.bob_generated_ratchet_privs.map(hx);
  const states = {
    alice: await RatchetState.initiator({ sharedSecret, associatedData, responderRatchetKey: bobInitial.publicKey, keySource: new ScriptedKeySource(aliceKeys) }),
    bob: RatchetState.responder({ sharedSecret, associatedData, ratchetKeyPair: bobInitial, keySource: new ScriptedKeySource(bobKeys) }),
  };
  const messages = new Map();
  for (const m of c.messages) {
    expect(!messages.has(m.id), `duplicate message id ${m.id}`);
    expect(m.sender in states, `message ${m.id}: unknown sender`);
    const refuseOnly = m.plaintext === null;
    expect(refuseOnly === (m.header === null) && refuseOnly === (m.message_key === null), `message ${m.id}: plaintext, header and message_key must be null together`);
    expect(hx(m.header_bytes).length === 40, `message ${m.id}: header_bytes must be 40 bytes`);
    if (!refuseOnly) {
      const header = new RatchetHeader({ ratchetKey: hx(m.header.dh), previousChainLength: m.header.pn, messageNumber: m.header.n });
      eq(header.encode(), hx(m.header_bytes), `message ${m.id}: header object vs header_bytes`);
    }
    messages.set(m.id, m);
  }
  await playEvents(c.events, messages, async (e, m) => {
    expect(e.party in states, 'unknown party');
    const state = states[e.party];
    if (e.op === 'send') {
      expect(m.sender === e.party && m.plaintext !== null && !('expect' in e), "a send must be by the message's sender, of a real message");
      const { header, ciphertext, messageKey } = await state.encrypt(hx(m.plaintext));
      expect(!state.keySource.overdrawn, 'sender used a ratchet key beyond the listed ones');
      eq(header.encode(), hx(m.header_bytes), 'header bytes');
      eq(ciphertext, hx(m.ciphertext), 'ciphertext');
      eq(messageKey, hx(m.message_key), 'message key');
      return;
    }
    expect(m.sender !== e.party, 'a party receiving its own message');
    const wire = concat(new Uint8Array([1, 1]), hx(m.header_bytes), hx(m.ciphertext));
    const receive = async () => {
      const message = RatchetMessage.decode(wire);
      return state.decrypted(message.header, message.ciphertext);
    };
    if (e.expect === 'fail') {
      const before = state.fingerprint();
      await refused(receive, 'message');
      eq(state.fingerprint(), before, 'state after a refused message (must be unchanged)');
      return;
    }
    const result = await mustDecrypt(receive);
    eq(result.plaintext, hx(m.plaintext), 'plaintext');
    eq(result.messageKey, hx(m.message_key), 'message key');
    expect(!result.state.keySource.overdrawn, 'receiver committed a ratchet key beyond the listed ones');
    states[e.party] = result.state;
  });
  eq(states.alice.keySource.index, aliceKeys.length, 'alice_generated_ratchet_privs consumed');
  eq(states.bob.keySource.index, bobKeys.length, 'bob_generated_ratchet_privs consumed');
  for (const [who, list] of [['alice', aliceKeys], ['bob', bobKeys]]) {
    const sent = new Set(c.messages.filter((m) => m.sender === who && m.header).map((m) => m.header.dh));
    for (const key of list) expect(sent.has(toHex(await x25519Public(key))), `${who}'s generated key appears in no header`);
  }
}

// ---- securechat-sender-key-vectors/1

const member = { name: 'member', deviceId: 1 };
const snapshot = (store) => JSON.stringify(store.recordOf(member)?.toStorable(), (key, value) => (value instanceof Uint8Array ? toHex(value) : value));

async function checkSenderKeys(doc, runCase) {
  const params = doc.params;
  eq(hx(params.message_keys_info_hex), KDFLabels.senderKeyMessageKeys, 'params.message_keys_info_hex');
  eq(hx(params.signature_context_hex), KDFLabels.senderKeyMessageSignature, 'params.signature_context_hex');
  eq(params.max_forward, ProtocolLimits.senderKeyMaxForward, 'params.max_forward');
  eq(params.max_stored_keys, ProtocolLimits.senderKeyMaxStoredKeys, 'params.max_stored_keys');
  for (const c of doc.cases) await runCase(c.name, () => checkSenderKeyCase(c));
}

async function checkSenderKeyCase(c) {
  const chain = await SenderKeyState.fromSecrets({
    distributionId: hx(c.distribution_id), chainId: c.chain_id, iteration: c.initial_iteration, chainKey: hx(c.chain_key), signingSeed: hx(c.signing_key_seed),
  });
  eq(chain.signingPublicKey.bytes, hx(c.signing_key_public), 'signing_key_public');
  const distributionBytes = hx(c.distribution_message);
  eq(chain.distributionMessage.encode(), distributionBytes, 'distribution message');
  eq(distributionBytes.length, 90, 'distribution message length');
  const store = new SenderKeyStore();
  store.process(SenderKeyDistributionMessage.decode(distributionBytes), member);
  const initial = snapshot(store);
  store.process(SenderKeyDistributionMessage.decode(distributionBytes), member);
  eq(snapshot(store), initial, 'record after a replayed distribution');
  await refused(() => store.process(SenderKeyDistributionMessage.decode(distributionBytes), { name: 'someone-else', deviceId: 1 }), 'distribution id already bound to another member');

  const messages = new Map();
  for (const m of c.messages) {
    expect(!messages.has(m.id), `duplicate message id ${m.id}`);
    const refuseOnly = m.plaintext === null;
    expect(refuseOnly === (m.iteration === null) && refuseOnly === (m.message_key === null), `message ${m.id}: plaintext, iteration and message_key must be null together`);
    messages.set(m.id, m);
  }
  await playEvents(c.events, messages, async (e, m) => {
    const serialized = hx(m.serialized);
    if (e.op === 'send') {
      expect(m.plaintext !== null && !('expect' in e), 'a send of a refuse-only message');
      const { message, messageKey } = await chain.encryptReturningKey(hx(m.plaintext));
      eq(message.iteration, m.iteration, 'iteration');
      eq(messageKey, hx(m.message_key), 'message key');
      const ours = message.encode();
      eq(ours.subarray(0, ours.length - 64), serialized.subarray(0, serialized.length - 64), 'room message before the signature');
      // Signatures are verified, never compared (§1).
      const signatureInput = (bytes) => concat(KDFLabels.senderKeyMessageSignature, bytes.subarray(0, bytes.length - 64));
      await chain.signingPublicKey.verify(ours.subarray(ours.length - 64), signatureInput(ours));
      await chain.signingPublicKey.verify(serialized.subarray(serialized.length - 64), signatureInput(serialized));
      return;
    }
    if (e.expect === 'fail') {
      const before = snapshot(store);
      await refused(() => store.decrypt(serialized), 'room message');
      eq(snapshot(store), before, 'record after a refused message (must be unchanged)');
      return;
    }
    const result = await mustDecrypt(() => store.decrypt(serialized));
    eq(result.plaintext, hx(m.plaintext), 'plaintext');
    eq(result.sender, member, 'sender');
  });
  const last = snapshot(store);
  store.process(SenderKeyDistributionMessage.decode(distributionBytes), member);
  eq(snapshot(store), last, 'a replayed distribution moved the chain');
}

// ---- securechat-fingerprint-vectors/1

async function checkFingerprints(doc, runCase) {
  eq(doc.iterations, ProtocolLimits.fingerprintIterations, 'iterations');
  for (const c of doc.cases) {
    await runCase(c.name, async () => {
      const local = await SafetyNumber.fingerprint(hx(c.local_key), hx(c.local_identifier));
      const remote = await SafetyNumber.fingerprint(hx(c.remote_key), hx(c.remote_identifier));
      eq(local, hx(c.local_fingerprint), 'local_fingerprint');
      eq(remote, hx(c.remote_fingerprint), 'remote_fingerprint');
      const mine = new SafetyNumber(local, remote);
      const theirs = new SafetyNumber(remote, local);
      eq(mine.displayable, c.displayable, 'displayable (local view)');
      eq(theirs.displayable, c.displayable, 'displayable (remote view)');
      eq(c.displayable.length, 60, 'displayable length');
      const code = hx(c.scannable);
      eq(mine.scannable, code, 'scannable (local view)');
      expect(mine.matches(theirs.scannable), "local party does not match the remote's code");
      expect(theirs.matches(code), 'remote party does not match the local code');
      expect(!mine.matches(code), 'a party matched its own code');
      expect(!theirs.matches(flipLast(code)), 'a changed fingerprint byte matched');
      await refused(() => theirs.matches(code.subarray(0, 73)), 'truncated scannable code');
      const version2 = code.slice();
      version2[1] = 2;
      await refused(() => theirs.matches(version2), 'scannable version 2');
    });
  }
}

// ---- securechat-attachment-vectors/1

export async function decryptAttachment(key, stream, { digest, size, feed }) {
  const decryptor = new AttachmentDecryptor(key, { expectedDigest: digest, expectedSize: size });
  const parts = [];
  for (let offset = 0; offset < stream.length; offset += feed) parts.push(await decryptor.update(stream.subarray(offset, offset + feed)));
  parts.push(await decryptor.finalize());
  return concat(...parts);
}

async function checkAttachments(doc, runCase) {
  eq(hx(doc.info_hex), KDFLabels.attachment, 'info_hex');
  for (const c of doc.cases) {
    await runCase(c.name, async () => {
      const key = hx(c.key);
      const plaintext = hx(c.plaintext);
      const stream = hx(c.stream);
      const digest = hx(c.digest);
      for (const feed of [1, 333, 4096, Math.max(1, plaintext.length)]) {
        const encryptor = new AttachmentEncryptor(key, { salt: hx(c.salt), chunkSize: c.chunk_size });
        const parts = [];
        for (let offset = 0; offset < plaintext.length; offset += feed) parts.push(await encryptor.update(plaintext.subarray(offset, offset + feed)));
        const last = await encryptor.finalize();
        eq(concat(...parts, last.ciphertext), stream, `stream (encryptor, feed ${feed})`);
        eq(last.digest, digest, 'digest');
      }
      eq(AttachmentEncryptor.streamLength(plaintext.length, c.chunk_size), stream.length, 'stream length');
      eq(new Uint8Array(createHash('sha256').update(stream).digest()), digest, 'digest (node)');
      for (const feed of [1, 333, 4096, Math.max(1, stream.length)]) {
        const feedSize = feed === 1 && stream.length > 20000 ? 97 : feed;
        eq(await decryptAttachment(key, stream, { digest, size: plaintext.length, feed: feedSize }), plaintext, `plaintext (decryptor, feed ${feedSize})`);
      }
      await refused(() => decryptAttachment(key, stream, { digest, size: plaintext.length + 1, feed: 4096 }), 'stream with the wrong size');
      for (const t of c.tampered) {
        const tampered = hx(t.stream);
        expect(toHex(tampered) !== toHex(stream), `tampered stream ${t.description} equals the original`);
        const ownDigest = new Uint8Array(createHash('sha256').update(tampered).digest());
        await refused(() => decryptAttachment(key, tampered, { digest: ownDigest, size: plaintext.length, feed: 4096 }), `tampered stream (${t.description}) with its own digest`);
        await refused(() => decryptAttachment(key, tampered, { digest, size: plaintext.length, feed: 4096 }), `tampered stream (${t.description})`);
      }
    });
  }
}

export const checkers = {
  'securechat-identity-vectors/1': checkIdentity,
  'securechat-x3dh-vectors/1': checkX3DH,
  'securechat-dr-vectors/1': checkDoubleRatchet,
  'securechat-sender-key-vectors/1': checkSenderKeys,
  'securechat-fingerprint-vectors/1': checkFingerprints,
  'securechat-attachment-vectors/1': checkAttachments,
};

/** Checks one file; `runCase(name, fn)` runs (or registers) each case. Returns the seal status. */
export async function checkFile(path, runCase) {
  const raw = readFileSync(path);
  // Numbers may be up to 2⁶³ (§13), beyond a double's exact range: long ones are read as strings
  // (and used as BigInts where they matter).
  const doc = JSON.parse(raw.toString('utf8').replace(/([:[,]\s*)(\d{16,})(?=\s*[,\]}])/g, '$1"$2"'));
  const checker = checkers[doc.schema];
  expect(checker !== undefined, `${path}: unknown schema ${doc.schema}`);
  const seal = checkSeal(raw, doc);
  await checker(doc, runCase);
  return { schema: doc.schema, seal, generator: doc.generator };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const files = process.argv.slice(2);
  let failures = 0;
  checkHighYClaim();
  for (const path of files) {
    let cases = 0;
    const problems = [];
    let info = {};
    try {
      info = await checkFile(path, async (name, run) => {
        cases += 1;
        try {
          await run();
        } catch (error) {
          problems.push(`${path}: case ${JSON.stringify(name)}: ${error.message}`);
        }
      });
    } catch (error) {
      problems.push(`${path}: ${error.message}`);
    }
    console.log(`${problems.length ? 'FAIL' : 'ok  '} ${path}: ${info.schema}, ${cases} cases, ${info.seal} [${info.generator ?? '?'}]`);
    for (const problem of problems) console.error(`MISMATCH ${problem}`);
    failures += problems.length;
  }
  if (failures) {
    console.error(`${failures} failure(s)`);
    process.exit(1);
  }
  console.log('all files pass');
}
