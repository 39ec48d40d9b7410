// The web client's protocol code under node's test runner: every vector file (ours, the Python
// implementation's and the web client's own), then round trips, tampering, replay and
// out-of-order delivery with fresh random keys, as a device uses them.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdirSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { checkFile, checkHighYClaim, decryptAttachment } from './vector-checks.mjs';
import { concat, fromBase64, fromBase64URL, toBase64, toBase64URL, utf8 } from '../../Web/js/protocol/byte-coding.js';
import { ProtocolError } from '../../Web/js/protocol/errors.js';
import { IdentityKeyPair } from '../../Web/js/protocol/identity-key-pair.js';
import { generateX25519KeyPair } from '../../Web/js/protocol/key-source.js';
import { MessagePadding } from '../../Web/js/protocol/padding.js';
import { OneTimePreKey, PreKeyBundle, SignedPreKey, signedPreKeySignatureInput } from '../../Web/js/protocol/pre-key-bundle.js';
import { SafetyNumber } from '../../Web/js/protocol/safety-number.js';
import { SenderKeyDistributionMessage } from '../../Web/js/protocol/sender-keys/sender-key-messages.js';
import { SenderKeyState } from '../../Web/js/protocol/sender-keys/sender-key-state.js';
import { SenderKeyStore } from '../../Web/js/protocol/sender-keys/sender-key-store.js';
import { InMemoryPreKeyStore } from '../../Web/js/protocol/session/pre-key-store.js';
import { Session } from '../../Web/js/protocol/session/session.js';
import { decodeSessionMessage, PreKeyMessage } from '../../Web/js/protocol/session/session-messages.js';
import { SHA256Stream } from '../../Web/js/protocol/sha256-stream.js';
import { RatchetState } from '../../Web/js/protocol/ratchet/ratchet-state.js';
import { AttachmentEncryptor } from '../../Web/js/protocol/attachments.js';
import { randomBytes } from '../../Web/js/protocol/secret-bytes.js';

const vectors = join(dirname(fileURLToPath(import.meta.url)), '..', 'Vectors');
const vectorFiles = ['', 'python', 'js']
  .map((folder) => join(vectors, folder))
  .filter((folder) => existsSync(folder))
  .flatMap((folder) => readdirSync(folder).filter((name) => name.endsWith('.json')).map((name) => join(folder, name)));

describe('vector files', () => {
  test('section 2.1: no y in [p, 2^255) decodes to a prime-order point', () => checkHighYClaim());
  assert.ok(vectorFiles.length >= 13, `expected the Swift, libsodium and Python vector files, found ${vectorFiles.length}`);
  for (const path of vectorFiles) {
    test(path.slice(vectors.length + 1), async (t) => {
      let cases = 0;
      await checkFile(path, async (name, run) => {
        cases += 1;
        await t.test(name, run);
      });
      assert.ok(cases > 0, 'a vector file with no case');
    });
  }
});

const refusal = (code) => (error) => error instanceof ProtocolError && (code === undefined || error.code === code);

/** Alice and Bob with real random keys, a signed prekey and one-time prekeys, as devices have them. */
async function twoDevices({ withOneTimePreKey = true } = {}) {
  const alice = await IdentityKeyPair.generate();
  const bob = await IdentityKeyPair.generate();
  const signedPair = await generateX25519KeyPair();
  const createdAt = 1767225600;
  const signature = await bob.sign(signedPreKeySignatureInput(7, signedPair.publicKey, createdAt));
  const signedPreKey = new SignedPreKey({ id: 7, publicKey: signedPair.publicKey, createdAt, signature });
  const oneTimePair = await generateX25519KeyPair();
  const store = new InMemoryPreKeyStore({
    signedPreKeys: [{ id: 7, ...signedPair, createdAt, signature }],
    oneTimePreKeys: [{ id: 42, ...oneTimePair }],
  });
  const bundle = await PreKeyBundle.verified({
    identityKey: bob.publicKey, signedPreKey, oneTimePreKey: withOneTimePreKey ? new OneTimePreKey({ id: 42, publicKey: oneTimePair.publicKey }) : null,
  });
  return { alice, bob, bundle, store };
}

async function establishedSession() {
  const devices = await twoDevices();
  const { session: aliceSession } = await Session.initiate(devices.alice, devices.bundle);
  const first = await aliceSession.encrypt(utf8('hello'));
  const { session: bobSession } = await Session.accept(PreKeyMessage.decode(first), devices.bob, devices.store);
  await aliceSession.decrypt(decodeSessionMessage(await bobSession.encrypt(utf8('hi'))));
  return { ...devices, aliceSession, bobSession };
}

describe('pairwise sessions with random keys', () => {
  test('a conversation both ways, across several DH ratchet steps', async () => {
    const { aliceSession, bobSession } = await establishedSession();
    for (let turn = 0; turn < 6; turn++) {
      const [from, to] = turn % 2 === 0 ? [aliceSession, bobSession] : [bobSession, aliceSession];
      for (let n = 0; n < 3; n++) {
        const text = `turn ${turn} message ${n}`;
        const decrypted = await to.decrypt(decodeSessionMessage(await from.encrypt(utf8(text))));
        assert.equal(new TextDecoder().decode(decrypted), text);
      }
    }
    assert.equal(aliceSession.pendingInitiation, null, 'the initiation is dropped once Bob answered');
  });

  test('out-of-order delivery within and across chains, then every replay refused', async () => {
    const { aliceSession, bobSession } = await establishedSession();
    const sent = [];
    for (let i = 0; i < 5; i++) sent.push(await aliceSession.encrypt(utf8(`a${i}`)));
    await aliceSession.decrypt(decodeSessionMessage(await bobSession.encrypt(utf8('interrupt'))));
    for (let i = 5; i < 8; i++) sent.push(await aliceSession.encrypt(utf8(`a${i}`)));
    const order = [7, 2, 0, 6, 4, 1, 5, 3];
    for (const i of order) {
      assert.equal(new TextDecoder().decode(await bobSession.decrypt(decodeSessionMessage(sent[i]))), `a${i}`);
    }
    for (const i of order) {
      const before = bobSession.ratchet.fingerprint();
      await assert.rejects(bobSession.decrypt(decodeSessionMessage(sent[i])), refusal('duplicate'));
      assert.equal(bobSession.ratchet.fingerprint(), before);
    }
  });

  test('every flipped byte of a ratchet message is refused and changes nothing', async () => {
    const { aliceSession, bobSession } = await establishedSession();
    const message = await aliceSession.encrypt(utf8('tamper with me'));
    const before = bobSession.ratchet.fingerprint();
    for (let i = 0; i < message.length; i++) {
      const tampered = message.slice();
      tampered[i] ^= 0x01;
      await assert.rejects(async () => bobSession.decrypt(decodeSessionMessage(tampered)), refusal(), `byte ${i}`);
      assert.equal(bobSession.ratchet.fingerprint(), before, `state after byte ${i}`);
    }
    assert.equal(new TextDecoder().decode(await bobSession.decrypt(decodeSessionMessage(message))), 'tamper with me');
  });

  test('every flipped byte of a prekey message is refused and consumes nothing', async () => {
    const { alice, bob, bundle, store } = await twoDevices();
    const { session } = await Session.initiate(alice, bundle);
    const message = await session.encrypt(utf8('first'));
    for (let i = 0; i < message.length; i++) {
      const tampered = message.slice();
      tampered[i] ^= 0x80;
      await assert.rejects(async () => Session.accept(PreKeyMessage.decode(tampered), bob, store), refusal(), `byte ${i}`);
      assert.notEqual(store.oneTimePreKey(42), null, `byte ${i} consumed the one-time prekey`);
    }
    const { plaintext } = await Session.accept(PreKeyMessage.decode(message), bob, store);
    assert.equal(new TextDecoder().decode(plaintext), 'first');
    assert.equal(store.oneTimePreKey(42), null);
    await assert.rejects(Session.accept(PreKeyMessage.decode(message), bob, store), refusal('initiationReplayed'));
  });

  test('without a one-time prekey a replayed first message cannot start a second session', async () => {
    const { alice, bob, bundle, store } = await twoDevices({ withOneTimePreKey: false });
    const { session } = await Session.initiate(alice, bundle);
    const message = await session.encrypt(utf8('first'));
    await Session.accept(PreKeyMessage.decode(message), bob, store);
    await assert.rejects(Session.accept(PreKeyMessage.decode(message), bob, store), refusal('initiationReplayed'));
  });

  test('the responder cannot send before it has received', async () => {
    const responder = RatchetState.responder({ sharedSecret: randomBytes(32), associatedData: randomBytes(64), ratchetKeyPair: await generateX25519KeyPair() });
    await assert.rejects(responder.encrypt(utf8('too early')), refusal('state'));
    assert.equal(responder.sendCount, 0);
    // Once a message arrived (Session.accept decrypts one), the responder has a sending chain.
    const { alice, bob, bundle, store } = await twoDevices();
    const { session } = await Session.initiate(alice, bundle);
    const { session: bobSession } = await Session.accept(PreKeyMessage.decode(await session.encrypt(utf8('x'))), bob, store);
    assert.equal(new TextDecoder().decode(await session.decrypt(decodeSessionMessage(await bobSession.encrypt(utf8('reply'))))), 'reply');
  });

  test('a bundle whose signed part changed is refused', async () => {
    const { bundle } = await twoDevices();
    const bytes = bundle.encode();
    // Identity key, signed prekey id, key, creation time, signature (the one-time prekey is not
    // signed, as in X3DH).
    for (const i of [2, 33, 34, 37, 38, 69, 70, 77, 78, 141]) {
      const tampered = bytes.slice();
      tampered[i] ^= 0x01;
      await assert.rejects(PreKeyBundle.decode(tampered), refusal(), `byte ${i}`);
    }
    assert.ok(await PreKeyBundle.decode(bytes));
  });

  test('two encryptions at once on one ratchet: the second is refused, no key is used twice', async () => {
    const { aliceSession, bobSession } = await establishedSession();
    const results = await Promise.allSettled([aliceSession.encrypt(utf8('one')), aliceSession.encrypt(utf8('two'))]);
    assert.deepEqual(results.map((r) => r.status), ['fulfilled', 'rejected']);
    assert.ok(refusal('state')(results[1].reason));
    assert.equal(new TextDecoder().decode(await bobSession.decrypt(decodeSessionMessage(results[0].value))), 'one');
    assert.equal(new TextDecoder().decode(await bobSession.decrypt(decodeSessionMessage(await aliceSession.encrypt(utf8('three'))))), 'three');
  });

  test('sessions survive structured cloning (what IndexedDB stores)', async () => {
    const { aliceSession, bobSession } = await establishedSession();
    const restored = Session.fromStorable(structuredClone(bobSession.toStorable()));
    const message = await aliceSession.encrypt(utf8('after restore'));
    assert.equal(new TextDecoder().decode(await restored.decrypt(decodeSessionMessage(message))), 'after restore');
  });
});

describe('sender keys with random keys', () => {
  const alice = { name: 'alice', deviceId: 1 };

  async function room() {
    const sending = await SenderKeyState.create({ createdAt: 1767225600 });
    const receiving = new SenderKeyStore();
    receiving.process(SenderKeyDistributionMessage.decode(sending.distributionMessage.encode()), alice);
    return { sending, receiving };
  }

  test('round trip, out of order, replay refused', async () => {
    const { sending, receiving } = await room();
    const messages = [];
    for (let i = 0; i < 6; i++) messages.push(await sending.encrypt(utf8(`m${i}`)));
    for (const i of [3, 0, 5, 1, 4, 2]) {
      const { plaintext, sender } = await receiving.decrypt(messages[i]);
      assert.equal(new TextDecoder().decode(plaintext), `m${i}`);
      assert.deepEqual(sender, alice);
    }
    for (const message of messages) await assert.rejects(receiving.decrypt(message), refusal('duplicate'));
  });

  test('every flipped byte of a room message is refused', async () => {
    const { sending, receiving } = await room();
    const message = await sending.encrypt(utf8('room tamper'));
    for (let i = 0; i < message.length; i++) {
      const tampered = message.slice();
      tampered[i] ^= 0x01;
      await assert.rejects(receiving.decrypt(tampered), refusal(), `byte ${i}`);
    }
    assert.equal(new TextDecoder().decode((await receiving.decrypt(message)).plaintext), 'room tamper');
  });

  test('a rotated chain is accepted from its owner only; old chains still decrypt', async () => {
    const { sending, receiving } = await room();
    const before = await sending.encrypt(utf8('before'));
    const rotated = await sending.rotated(1767225700);
    const distribution = SenderKeyDistributionMessage.decode(rotated.distributionMessage.encode());
    assert.throws(() => receiving.process(distribution, { name: 'mallory', deviceId: 1 }), refusal());
    receiving.process(distribution, alice);
    const after = await rotated.encrypt(utf8('after'));
    assert.equal(new TextDecoder().decode((await receiving.decrypt(after)).plaintext), 'after');
    assert.equal(new TextDecoder().decode((await receiving.decrypt(before)).plaintext), 'before');
  });

  test('rotation policy: 5000 messages or 7 days', async () => {
    const { sending } = await room();
    const policy = { maxMessages: 2, maxAge: 7 * 24 * 3600 };
    assert.equal(sending.needsRotation(policy, 1767225600), false);
    assert.equal(sending.needsRotation(policy, 1767225600 + 7 * 24 * 3600), true);
    await sending.encrypt(utf8('1'));
    await sending.encrypt(utf8('2'));
    assert.equal(sending.needsRotation(policy, 1767225600), true);
  });
});

describe('attachments, padding, digests, encodings', () => {
  test('a 3 MiB file in odd pieces: round trip; every chunk boundary cut is refused', async () => {
    const key = randomBytes(32);
    const plaintext = randomBytes(3 * 1024 * 1024 + 17);
    const encryptor = new AttachmentEncryptor(key);
    const parts = [];
    for (let offset = 0; offset < plaintext.length; offset += 100003) parts.push(await encryptor.update(plaintext.subarray(offset, offset + 100003)));
    const last = await encryptor.finalize();
    const stream = concat(...parts, last.ciphertext);
    assert.equal(stream.length, AttachmentEncryptor.streamLength(plaintext.length));
    assert.deepEqual(last.digest, new Uint8Array(createHash('sha256').update(stream).digest()));
    const decrypted = await decryptAttachment(key, stream, { digest: last.digest, size: plaintext.length, feed: 65536 * 3 + 5 });
    assert.ok(Buffer.from(decrypted).equals(Buffer.from(plaintext)));
    const chunk = 65536 + 16;
    const cut = stream.subarray(0, 22 + 3 * chunk);
    const ownDigest = new Uint8Array(createHash('sha256').update(cut).digest());
    await assert.rejects(decryptAttachment(key, cut, { digest: ownDigest, size: 3 * 65536, feed: 4096 }), refusal());
  });

  test('incremental SHA-256 equals WebCrypto at every length around the block size', async () => {
    for (const length of [0, 1, 55, 56, 63, 64, 65, 119, 120, 127, 128, 1000, 100000]) {
      const data = randomBytes(length);
      const stream = new SHA256Stream();
      for (let offset = 0; offset < length; offset += 37) stream.update(data.subarray(offset, offset + 37));
      assert.deepEqual(stream.finalize(), new Uint8Array(await crypto.subtle.digest('SHA-256', data)), `length ${length}`);
    }
  });

  test('padding hides length in 160-byte blocks and refuses a missing marker', () => {
    assert.equal(MessagePadding.pad(new Uint8Array(0)).length, 160);
    assert.equal(MessagePadding.pad(new Uint8Array(159)).length, 160);
    assert.equal(MessagePadding.pad(new Uint8Array(160)).length, 320);
    const text = utf8('padded');
    assert.deepEqual(MessagePadding.unpad(MessagePadding.pad(text)), text);
    assert.throws(() => MessagePadding.unpad(new Uint8Array(160)), refusal('malformed'));
    assert.throws(() => MessagePadding.unpad(concat(text, new Uint8Array([0x81, 0]))), refusal('malformed'));
  });

  test('base64 and base64url round trips; URL-safe text is not standard base64', () => {
    for (const length of [0, 1, 2, 3, 16, 100]) {
      const bytes = randomBytes(length);
      assert.deepEqual(fromBase64(toBase64(bytes)), bytes);
      assert.deepEqual(fromBase64URL(toBase64URL(bytes)), bytes);
      assert.equal(toBase64(bytes), Buffer.from(bytes).toString('base64'));
    }
    assert.throws(() => fromBase64('-_-_'), refusal('malformed'));
  });

  test('safety numbers: both parties see the same 60 digits', async () => {
    const a = await IdentityKeyPair.generate();
    const b = await IdentityKeyPair.generate();
    const mine = await SafetyNumber.forUsers({ local: a.publicKey, localUserId: 'aaaa', remote: b.publicKey, remoteUserId: 'bbbb' });
    const theirs = await SafetyNumber.forUsers({ local: b.publicKey, localUserId: 'bbbb', remote: a.publicKey, remoteUserId: 'aaaa' });
    assert.equal(mine.displayable, theirs.displayable);
    assert.match(mine.displayable, /^\d{60}$/);
    assert.equal(mine.groups.length, 12);
    assert.ok(mine.matches(theirs.scannable));
  });
});
