// Speed of the web client's protocol code (Web/js/protocol) on WebCrypto, under node:
//
//     node Benchmarks/Web/protocol-bench.mjs
//
// Node's WebCrypto is OpenSSL behind the same API the browsers offer; browsers differ, so these
// are orders of magnitude for the JavaScript layer, not browser figures. Each line is the median
// of five runs.
import { IdentityKeyPair } from '../../Web/js/protocol/identity-key-pair.js';
import { generateX25519KeyPair } from '../../Web/js/protocol/key-source.js';
import { OneTimePreKey, PreKeyBundle, SignedPreKey, signedPreKeySignatureInput } from '../../Web/js/protocol/pre-key-bundle.js';
import { InMemoryPreKeyStore } from '../../Web/js/protocol/session/pre-key-store.js';
import { Session } from '../../Web/js/protocol/session/session.js';
import { PreKeyMessage, decodeSessionMessage } from '../../Web/js/protocol/session/session-messages.js';
import { SenderKeyDistributionMessage } from '../../Web/js/protocol/sender-keys/sender-key-messages.js';
import { SenderKeyState } from '../../Web/js/protocol/sender-keys/sender-key-state.js';
import { SenderKeyStore } from '../../Web/js/protocol/sender-keys/sender-key-store.js';
import { SafetyNumber } from '../../Web/js/protocol/safety-number.js';
import { AttachmentDecryptor, AttachmentEncryptor } from '../../Web/js/protocol/attachments.js';
import { EdwardsPoint, groupOrder } from '../../Web/js/protocol/edwards-point.js';
import { MessagePadding } from '../../Web/js/protocol/padding.js';
import { randomBytes } from '../../Web/js/protocol/secret-bytes.js';

async function median(runs, body) {
  const results = [];
  for (let i = 0; i < runs; i++) results.push(await body());
  results.sort((a, b) => a - b);
  return results[Math.floor(runs / 2)];
}

async function timed(count, operation) {
  const start = performance.now();
  for (let i = 0; i < count; i++) await operation(i);
  return (performance.now() - start) / count;
}

function line(name, milliseconds, unit = 'op') {
  console.log(`${name.padEnd(58)} ${(milliseconds * 1000).toFixed(0).padStart(8)} µs/${unit}  ${(1000 / milliseconds).toFixed(0).padStart(7)} ${unit}/s`);
}

async function devices() {
  const alice = await IdentityKeyPair.generate();
  const bob = await IdentityKeyPair.generate();
  const signed = await generateX25519KeyPair();
  const signature = await bob.sign(signedPreKeySignatureInput(1, signed.publicKey, 1767225600));
  const oneTime = await generateX25519KeyPair();
  const bundle = await PreKeyBundle.verified({
    identityKey: bob.publicKey, signedPreKey: new SignedPreKey({ id: 1, publicKey: signed.publicKey, createdAt: 1767225600, signature }),
    oneTimePreKey: new OneTimePreKey({ id: 1, publicKey: oneTime.publicKey }),
  });
  const store = new InMemoryPreKeyStore({ signedPreKeys: [{ id: 1, ...signed }], oneTimePreKeys: [{ id: 1, ...oneTime }] });
  return { alice, bob, bundle, store };
}

console.log(`node ${process.version}, ${process.platform}/${process.arch}`);

// IdentityKey remembers keys it validated; the checks themselves are what a new key costs.
line('Ed25519 key validation on BigInts (decode, 8·P, ℓ·P)', await median(5, async () => {
  const keys = [];
  for (let i = 0; i < 20; i++) keys.push((await IdentityKeyPair.generate()).publicKey.bytes);
  return timed(keys.length, (i) => {
    const point = EdwardsPoint.decode(keys[i]);
    if (point.multiply(8n).isIdentity || !point.multiply(groupOrder).isIdentity) throw new Error('invalid');
  });
}));

line('X3DH + first message: initiate, encrypt, accept, decrypt', await median(5, async () => {
  const sets = [];
  for (let i = 0; i < 10; i++) sets.push(await devices());
  return timed(sets.length, async (i) => {
    const { alice, bob, bundle, store } = sets[i];
    const { session } = await Session.initiate(alice, bundle);
    await Session.accept(PreKeyMessage.decode(await session.encrypt(MessagePadding.pad(new Uint8Array(40)))), bob, store);
  });
}));

const { alice, bob, bundle, store } = await devices();
const { session: sending } = await Session.initiate(alice, bundle);
const { session: receiving } = await Session.accept(PreKeyMessage.decode(await sending.encrypt(new Uint8Array(16))), bob, store);
await sending.decrypt(decodeSessionMessage(await receiving.encrypt(new Uint8Array(16))));
const text = MessagePadding.pad(new Uint8Array(100));
line('Double Ratchet: encrypt + decrypt one 160-byte message', await median(5, () => timed(300, async () => {
  await receiving.decrypt(decodeSessionMessage(await sending.encrypt(text)));
})), 'msg');
line('Double Ratchet: a DH step each message (ping-pong)', await median(5, () => timed(100, async (i) => {
  const [from, to] = i % 2 === 0 ? [sending, receiving] : [receiving, sending];
  await to.decrypt(decodeSessionMessage(await from.encrypt(text)));
})), 'msg');

const room = await SenderKeyState.create({ createdAt: 1767225600 });
const members = new SenderKeyStore();
members.process(SenderKeyDistributionMessage.decode(room.distributionMessage.encode()), { name: 'alice', deviceId: 1 });
line('sender key: encrypt + sign, verify + decrypt (160 bytes)', await median(5, () => timed(300, async () => {
  await members.decrypt(await room.encrypt(text));
})), 'msg');

line('safety number (2 × 5200 SHA-512)', await median(3, async () => {
  const a = await IdentityKeyPair.generate();
  const b = await IdentityKeyPair.generate();
  return timed(3, () => SafetyNumber.forUsers({ local: a.publicKey, localUserId: 'alice', remote: b.publicKey, remoteUserId: 'bob' }));
}));

const file = randomBytes(16 * 1024 * 1024);
const mib = file.length / 1024 / 1024;
line('attachment encrypt, 16 MiB in 256 KiB blocks (per MiB)', await median(3, async () => {
  const start = performance.now();
  const encryptor = new AttachmentEncryptor(randomBytes(32));
  const parts = [];
  for (let offset = 0; offset < file.length; offset += 262144) parts.push(await encryptor.update(file.subarray(offset, offset + 262144)));
  const last = await encryptor.finalize();
  parts.push(last.ciphertext);
  return (performance.now() - start) / mib;
}), 'MiB');
line('attachment decrypt and check, 16 MiB in 256 KiB pieces (per MiB)', await median(3, async () => {
  const key = randomBytes(32);
  const encryptor = new AttachmentEncryptor(key);
  const parts = [await encryptor.update(file)];
  const last = await encryptor.finalize();
  parts.push(last.ciphertext);
  const start = performance.now();
  const decryptor = new AttachmentDecryptor(key, { expectedDigest: last.digest, expectedSize: file.length });
  for (const part of parts) for (let offset = 0; offset < part.length; offset += 262144) await decryptor.update(part.subarray(offset, offset + 262144));
  await decryptor.finalize();
  return (performance.now() - start) / mib;
}), 'MiB');
