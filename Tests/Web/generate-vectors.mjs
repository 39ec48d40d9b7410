// Writes SecureChat test vectors (docs/PROTOCOL.md §13) computed by the web client's protocol code
// (Web/js/protocol, WebCrypto only):
//
//     node Tests/Web/generate-vectors.mjs [--python-labels] OUTDIR
//
// The case list and file structure mirror Tests/Interop/python/generate_vectors.py, so that the
// three implementations check each other on the same kinds of scenario; every cryptographic step
// (keys, signatures, X3DH, ratchet, sender keys, fingerprints, attachment streams) is done by the
// modules under Web/js/protocol, and every refusal recorded in a file was observed from them.
//
// Deterministic: every random value is SHA-256 of a per-case label and a u32 counter, so two runs
// write identical files (Ed25519 signatures from WebCrypto are deterministic too). The labels
// carry a "web/" prefix so that the inputs differ from the Python generator's. With
// --python-labels they do not, and the output can be diffed against Tests/Vectors/python: apart
// from the generator line, only the x3dh case "opk-large-ids" differs, whose creation time is kept
// below 2⁵³ here. No "sha256" seal is written (optional for other implementations).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AttachmentDecryptor, AttachmentEncryptor } from '../../Web/js/protocol/attachments.js';
import { concat, fromHex, toHex, u32, utf8 } from '../../Web/js/protocol/byte-coding.js';
import { EdwardsPoint, d as edwardsD, groupOrder } from '../../Web/js/protocol/edwards-point.js';
import { ProtocolError } from '../../Web/js/protocol/errors.js';
import { fromBytesLE, invert, mod, p as fieldPrime, sqrt, toBytesLE } from '../../Web/js/protocol/field25519.js';
import { sha256, sha512 } from '../../Web/js/protocol/hmac-sha256.js';
import { IdentityKey, validateX25519PublicKey } from '../../Web/js/protocol/identity-key.js';
import { IdentityKeyPair, ed25519Sign, importEd25519Seed } from '../../Web/js/protocol/identity-key-pair.js';
import { KDFLabels } from '../../Web/js/protocol/kdf-labels.js';
import { ScriptedKeySource, importX25519PrivateKey } from '../../Web/js/protocol/key-source.js';
import { OneTimePreKey, PreKeyBundle, SignedPreKey, signedPreKeySignatureInput } from '../../Web/js/protocol/pre-key-bundle.js';
import { ProtocolLimits } from '../../Web/js/protocol/protocol-limits.js';
import { RatchetState } from '../../Web/js/protocol/ratchet/ratchet-state.js';
import { SafetyNumber } from '../../Web/js/protocol/safety-number.js';
import { SenderKeyDistributionMessage } from '../../Web/js/protocol/sender-keys/sender-key-messages.js';
import { SenderKeyState } from '../../Web/js/protocol/sender-keys/sender-key-state.js';
import { SenderKeyStore } from '../../Web/js/protocol/sender-keys/sender-key-store.js';
import { InMemoryPreKeyStore } from '../../Web/js/protocol/session/pre-key-store.js';
import { PreKeyMessage, RatchetMessage } from '../../Web/js/protocol/session/session-messages.js';
import { Session } from '../../Web/js/protocol/session/session.js';
import { WireFormat } from '../../Web/js/protocol/wire-format.js';

const GENERATOR = `securechat web client (Web/js/protocol, WebCrypto in node ${process.versions.node})`;

let labelPrefix = 'web/';

const h = toHex;

function check(condition, what) {
  if (!condition) throw new Error(`generator bug: ${what}`);
}

/** Runs `operation`; returns the ProtocolError it refused with, or null if it succeeded. */
async function refusal(operation) {
  try {
    await operation();
    return null;
  } catch (error) {
    if (error instanceof ProtocolError) return error;
    throw error;
  }
}

// ---------------------------------------------------------------------------------------------
// Deterministic randomness, as the Python generator's Drbg: block i is SHA-256(label ‖ u32(i)),
// and a request takes whole blocks (leftover bytes are dropped), so that the same sequence of
// requests consumes the same counters in both generators.
// ---------------------------------------------------------------------------------------------

class Drbg {
  constructor(label) {
    this.label = utf8(labelPrefix + label);
    this.counter = 0;
  }

  async bytes(count) {
    const blocks = [];
    for (let have = 0; have < count; have += 32) blocks.push(await sha256(concat(this.label, u32(this.counter++))));
    return concat(...blocks).slice(0, count);
  }

  async randbelow(n) {
    let value = 0n;
    for (const byte of await this.bytes(8)) value = (value << 8n) | BigInt(byte);
    return Number(value % BigInt(n));
  }

  async u32() {
    const b = await this.bytes(4);
    return ((b[0] << 24) >>> 0) + (b[1] << 16) + (b[2] << 8) + b[3];
  }
}

function labelledKey(label, i) {
  return sha256(concat(utf8(labelPrefix + label), u32(i)));
}

async function ed25519Public(seed) {
  return (await importEd25519Seed(seed)).publicKey;
}

async function x25519Public(privateBytes) {
  return (await importX25519PrivateKey(privateBytes)).publicKey;
}

// ---------------------------------------------------------------------------------------------
// identity
// ---------------------------------------------------------------------------------------------

// The keys to refuse are built with edwards-point.js. Only what it lacks is here: encoding a point,
// and recovering x for a y without the canonicity checks of EdwardsPoint.decode (the non-canonical
// encodings are described by the point they would denote once reduced).
const basePoint = EdwardsPoint.decode(fromHex('5866666666666666666666666666666666666666666666666666666666666666'));

function affine(point) {
  const zInverse = invert(point.Z);
  return { x: mod(point.X * zInverse), y: mod(point.Y * zInverse) };
}

function encodePoint(point) {
  const { x, y } = affine(point);
  const out = toBytesLE(y);
  if (x & 1n) out[31] |= 0x80;
  return out;
}

function pointFromY(y, sign) {
  const y2 = mod(y * y);
  let x = sqrt(mod((y2 - 1n) * invert(mod(edwardsD * y2 + 1n))));
  if (x === null) return null;
  if (Number(x & 1n) !== sign) x = mod(fieldPrime - x);
  return new EdwardsPoint(x, y, 1n, mod(x * y));
}

/** The order of a point of the full group (it divides 8·ℓ). */
function order(point) {
  for (const k of [1n, 2n, 4n, 8n]) if (point.multiply(k).isIdentity) return k;
  for (const k of [1n, 2n, 4n, 8n]) if (point.multiply(k * groupOrder).isIdentity) return k * groupOrder;
  throw new Error('not a curve point');
}

/** The 8 points of order dividing 8, keyed by encoding: the multiples of ℓ·Q for points Q. */
function torsionPoints() {
  const points = new Map();
  for (let y = 2n; points.size < 8; y++) {
    const q = pointFromY(y, 0);
    if (q === null) continue;
    const t = q.multiply(groupOrder);
    let multiple = EdwardsPoint.identity;
    for (let i = 0; i < 8; i++) {
      points.set(h(encodePoint(multiple)), multiple);
      multiple = multiple.add(t);
    }
  }
  return [...points].sort(([a], [b]) => (a < b ? -1 : 1));
}

async function identityFile() {
  const cases = [];
  for (let i = 0; i < 32; i++) {
    const seed = await labelledKey('identity/seed', i);
    const pair = await IdentityKeyPair.fromSeed(seed);
    // IdentityKeyPair keeps its X25519 scalar inside WebCrypto; the file needs its bytes.
    const scalar = (await sha512(seed)).slice(0, 32);
    scalar[0] &= 0xf8;
    scalar[31] &= 0x7f;
    scalar[31] |= 0x40;
    const converted = pair.publicKey.x25519;
    check(h(await x25519Public(scalar)) === h(converted), 'the two X25519 forms of an identity key differ');
    cases.push({ ed25519_seed: h(seed), ed25519_public: h(pair.publicKey.bytes), x25519_private: h(scalar), x25519_public: h(converted) });
  }

  const invalid = [];
  const add = async (bytes, reason) => {
    check((await refusal(() => new IdentityKey(bytes))) !== null, `${reason} is accepted as an identity key`);
    invalid.push({ ed25519_public: h(bytes), reason });
  };
  const torsion = torsionPoints();
  for (const [encoding, point] of torsion) {
    const bytes = fromHex(encoding);
    await add(bytes, `small order (${order(point)})`);
    if (affine(point).x === 0n) {
      bytes[31] |= 0x80;
      await add(bytes, `small order (${order(point)}), x = 0 with the sign bit set`);
    }
  }
  for (let k = 0n; k < 19n; k++) {
    for (const sign of [0, 1]) {
      const bytes = toBytesLE(fieldPrime + k);
      bytes[31] |= sign << 7;
      const point = pointFromY(k, sign);
      let what = 'off the curve';
      if (point !== null) {
        const o = order(point);
        what = o <= 8n ? `order ${o}` : `mixed order (${o / groupOrder}*l)`;
      }
      await add(bytes, `non-canonical y = p + ${k}, sign ${sign} (${what} once reduced)`);
    }
  }
  for (let j = 0, found = 0; j < 100 && found < 6; j++) {
    const y = fromBytesLE(await labelledKey('identity/off-curve', j)) & ((1n << 255n) - 1n);
    if (y < fieldPrime && pointFromY(y, 0) === null) {
      await add(toBytesLE(y), `not on the curve (hashed y #${j})`);
      found++;
    }
  }
  // A prime-order point plus a torsion point: passes the small-order check, fails the subgroup one.
  for (let j = 0; j < 2; j++) {
    const base = basePoint.multiply(fromBytesLE(await labelledKey('identity/mixed', j)) % groupOrder);
    for (const [, t] of torsion) {
      const o = order(t);
      if (o > 1n) await add(encodePoint(base.add(t)), `mixed order (${o}*l): prime-order point + torsion of order ${o}`);
    }
  }
  return { schema: 'securechat-identity-vectors/1', generator: GENERATOR, cases, invalid_public_keys: invalid };
}

// ---------------------------------------------------------------------------------------------
// x3dh
// ---------------------------------------------------------------------------------------------

async function x3dhFile() {
  // [name, signed prekey id, created at, one-time prekey id, first plaintext length]. The Python
  // generator's first case uses created at = 2⁶³ − 1; here 2100-01-01 (above 2³², below 2⁵³)
  // still exercises the high bytes of the u64 while every number stays exact in JSON readers.
  const specs = [
    ['opk-large-ids', 0xffffffff, 4102444800, 0, 48],
    ['no-opk-long-first-message', 7, 1700000000, null, 300],
    ['opk-empty-first-message', 0, 0, 0xffffffff, 0],
    ['no-opk-sixteen-byte-message', 123456, 1234567890, null, 16],
  ];
  const cases = [];
  for (const [name, signedId, createdAt, oneTimeId, plaintextLength] of specs) {
    const lab = `x3dh/${name}`;
    const aliceSeed = await labelledKey(`${lab}/alice-identity`, 0);
    const bobSeed = await labelledKey(`${lab}/bob-identity`, 0);
    const ephemeralPrivate = await labelledKey(`${lab}/alice-ephemeral`, 0);
    const ratchetPrivate = await labelledKey(`${lab}/alice-ratchet`, 0);
    const signedPrivate = await labelledKey(`${lab}/bob-spk`, 0);
    const oneTimePrivate = oneTimeId === null ? null : await labelledKey(`${lab}/bob-opk`, 0);

    const alice = await IdentityKeyPair.fromSeed(aliceSeed);
    const bob = await IdentityKeyPair.fromSeed(bobSeed);
    const signedPair = await importX25519PrivateKey(signedPrivate);
    const oneTimePair = oneTimePrivate === null ? null : await importX25519PrivateKey(oneTimePrivate);
    const signature = await bob.sign(signedPreKeySignatureInput(signedId, signedPair.publicKey, createdAt));
    const bundleBytes = new PreKeyBundle({
      identityKey: bob.publicKey,
      signedPreKey: new SignedPreKey({ id: signedId, publicKey: signedPair.publicKey, createdAt, signature }),
      oneTimePreKey: oneTimePair === null ? null : new OneTimePreKey({ id: oneTimeId, publicKey: oneTimePair.publicKey }),
    }).encode();
    const first = await new Drbg(`${lab}/plaintext`).bytes(plaintextLength);

    // Alice works from the bundle as fetched: decoded and verified.
    const { session, agreement } = await Session.initiate(alice, await PreKeyBundle.decode(bundleBytes), {
      ephemeralKey: await importX25519PrivateKey(ephemeralPrivate),
      keySource: new ScriptedKeySource([ratchetPrivate]),
    });
    const preKeyMessage = await session.encrypt(first);

    // Bob must be able to read what the file promises he can.
    const store = new InMemoryPreKeyStore({
      signedPreKeys: [{ id: signedId, ...signedPair }],
      oneTimePreKeys: oneTimePair === null ? [] : [{ id: oneTimeId, ...oneTimePair }],
    });
    const accepted = await Session.accept(PreKeyMessage.decode(preKeyMessage), bob, store);
    check(h(accepted.plaintext) === h(first) && h(accepted.agreement.sharedSecret) === h(agreement.sharedSecret), `${name}: Bob does not read the prekey message`);

    cases.push({
      name,
      alice_identity_seed: h(aliceSeed), alice_ephemeral_private: h(ephemeralPrivate), alice_ratchet_private: h(ratchetPrivate),
      bob_identity_seed: h(bobSeed), bob_signed_prekey_id: signedId, bob_signed_prekey_created_at: createdAt,
      bob_signed_prekey_private: h(signedPrivate), bob_one_time_prekey_id: oneTimeId,
      bob_one_time_prekey_private: oneTimePrivate === null ? null : h(oneTimePrivate),
      alice_identity_public: h(alice.publicKey.bytes), alice_identity_x25519_public: h(alice.publicKey.x25519),
      bob_identity_public: h(bob.publicKey.bytes), bob_identity_x25519_public: h(bob.publicKey.x25519),
      bob_signed_prekey_public: h(signedPair.publicKey), bob_signed_prekey_signature: h(signature),
      bob_one_time_prekey_public: oneTimePair === null ? null : h(oneTimePair.publicKey),
      bundle: h(bundleBytes), dh: agreement.outputs.map(h), shared_secret: h(agreement.sharedSecret),
      associated_data: h(agreement.associatedData), first_plaintext: h(first), prekey_message: h(preKeyMessage),
    });
  }
  return { schema: 'securechat-x3dh-vectors/1', generator: GENERATOR, info_hex: h(KDFLabels.x3dh), cases };
}

// ---------------------------------------------------------------------------------------------
// double ratchet
// ---------------------------------------------------------------------------------------------

// ScriptedKeySource serves a fixed list and falls back to random keys past its end, so the list
// must outlast every case; the transcripts below draw a few dozen at most.
const RATCHET_KEYS_PER_PARTY = 256;

async function keyList(label) {
  const keys = [];
  for (let i = 0; i < RATCHET_KEYS_PER_PARTY; i++) keys.push(await labelledKey(label, i));
  return keys;
}

const other = (party) => (party === 'alice' ? 'bob' : 'alice');
const parties = ['alice', 'bob'];

/** Runs two real parties and records what happened in the §13 schema. */
class Transcript {
  static async create(name) {
    const t = new Transcript();
    const lab = `dr/${name}`;
    t.name = name;
    t.rng = new Drbg(`${lab}/choices`);
    t.sharedSecret = await labelledKey(`${lab}/shared-secret`, 0);
    t.associatedData = concat(await ed25519Public(await labelledKey(`${lab}/alice-identity`, 0)), await ed25519Public(await labelledKey(`${lab}/bob-identity`, 0)));
    t.bobPrivate = await labelledKey(`${lab}/bob-signed-prekey`, 0);
    t.keys = { alice: await keyList(`${lab}/alice-ratchet`), bob: await keyList(`${lab}/bob-ratchet`) };
    const bobPair = await importX25519PrivateKey(t.bobPrivate);
    t.bobPublic = bobPair.publicKey;
    // Each party gets its own copy of SK: the state keeps the array it is given.
    t.states = {
      alice: await RatchetState.initiator({
        sharedSecret: t.sharedSecret.slice(), associatedData: t.associatedData.slice(), responderRatchetKey: bobPair.publicKey,
        keySource: new ScriptedKeySource(t.keys.alice),
      }),
      bob: RatchetState.responder({
        sharedSecret: t.sharedSecret.slice(), associatedData: t.associatedData.slice(), ratchetKeyPair: bobPair,
        keySource: new ScriptedKeySource(t.keys.bob),
      }),
    };
    t.messages = [];
    t.events = [];
    t.count = { alice: 0, bob: 0 };
    t.pending = { alice: [], bob: [] }; // sent, not yet delivered
    t.delivered = { alice: [], bob: [] };
    t.sentKeys = { alice: new Set(), bob: new Set() };
    t.tamperCount = 0;
    return t;
  }

  canSend(party) {
    return this.states[party].sendingChainKey !== null;
  }

  async send(party, plaintext) {
    const { header, ciphertext, messageKey } = await this.states[party].encrypt(plaintext);
    const m = {
      id: `${party[0]}${this.count[party]}`, sender: party, plaintext: h(plaintext),
      header: { dh: h(header.ratchetKey), pn: header.previousChainLength, n: header.messageNumber },
      header_bytes: h(header.encode()), ciphertext: h(ciphertext), message_key: h(messageKey),
    };
    this.count[party] += 1;
    this.messages.push(m);
    this.events.push({ op: 'send', party, msg: m.id });
    this.pending[party].push(m);
    this.sentKeys[party].add(m.header.dh);
    return m;
  }

  /** Delivers `m` as the wire would; false if it was refused (the state then must be unchanged). */
  async recv(m, mustFail = false) {
    const party = other(m.sender);
    const state = this.states[party];
    const before = state.fingerprint();
    let result;
    const error = await refusal(async () => {
      const message = RatchetMessage.decode(concat(new Uint8Array([WireFormat.version, WireFormat.ratchetMessage]), fromHex(m.header_bytes), fromHex(m.ciphertext)));
      result = await state.decrypted(message.header, message.ciphertext);
    });
    if (error !== null) {
      check(state.fingerprint() === before, `${this.name}: a refused ${m.id} changed ${party}'s state`);
      this.events.push({ op: 'recv', party, msg: m.id, expect: 'fail' });
      return false;
    }
    check(!mustFail, `${this.name}: ${m.id} was expected to be refused`);
    check(h(result.plaintext) === m.plaintext && h(result.messageKey) === m.message_key, `${this.name}: ${m.id} decrypts to something else`);
    check(!result.state.keySource.overdrawn, `${this.name}: ${party} ran out of listed ratchet keys`);
    this.states[party] = result.state;
    this.events.push({ op: 'recv', party, msg: m.id });
    const i = this.pending[m.sender].indexOf(m);
    if (i >= 0) {
      this.pending[m.sender].splice(i, 1);
      this.delivered[m.sender].push(m);
    }
    return true;
  }

  /** A refuse-only copy of `m`, changed as `kind` says (the Python generator's kinds). */
  async tampered(m, kind) {
    const header = fromHex(m.header_bytes);
    let ciphertext = fromHex(m.ciphertext);
    const r = this.rng;
    const readU32 = (at) => new DataView(header.buffer).getUint32(at);
    const writeU32 = (at, value) => header.set(u32(value % 2 ** 32), at);
    switch (kind) {
      case 'ciphertext': {
        const at = await r.randbelow(ciphertext.length - 32);
        ciphertext[at] ^= 1 << (await r.randbelow(8));
        break;
      }
      case 'tag': {
        const at = ciphertext.length - 32 + (await r.randbelow(32));
        ciphertext[at] ^= 1 << (await r.randbelow(8));
        break;
      }
      case 'n':
        writeU32(36, readU32(36) + 1 + (await r.randbelow(5)));
        break;
      case 'pn':
        writeU32(32, readU32(32) + 1 + (await r.randbelow(3)));
        break;
      case 'ratchet-key': {
        // A different but *valid* X25519 key, so that the refusal comes from authentication
        // after a DH ratchet step (and its key generation) rather than from decoding.
        let key;
        do {
          key = header.slice(0, 32);
          const at = await r.randbelow(31);
          key[at] ^= 1 << (await r.randbelow(8));
        } while ((await refusal(() => validateX25519PublicKey(key))) !== null);
        header.set(key, 0);
        break;
      }
      case 'truncated':
        // One block fewer: the lengths stay well-formed, so decoding does not catch it.
        ciphertext = concat(ciphertext.subarray(0, ciphertext.length - 48), ciphertext.subarray(ciphertext.length - 32));
        if (ciphertext.length < 48) ciphertext = concat(ciphertext, new Uint8Array(16));
        break;
      case 'n-beyond-max-skip':
        writeU32(36, ProtocolLimits.maxSkip + 1 + readU32(36));
        break;
      case 'pn-beyond-max-skip':
        writeU32(32, 0xffffffff);
        break;
      case 'invalid-key-zero':
        header.fill(0, 0, 32);
        break;
      case 'invalid-key-one':
        header.fill(0, 0, 32);
        header[0] = 1;
        break;
      case 'invalid-key-p':
        header.set(toBytesLE(fieldPrime), 0);
        break;
      case 'invalid-key-high-bit':
        header[31] |= 0x80;
        break;
      case 'invalid-key-order-8':
        header.set(fromHex('e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800'), 0);
        break;
      default:
        throw new Error(`unknown tampering ${kind}`);
    }
    this.tamperCount += 1;
    const t = {
      id: `${m.id}-tampered-${kind}-${this.tamperCount}`, sender: m.sender, plaintext: null, header: null,
      header_bytes: h(header), ciphertext: h(ciphertext), message_key: null,
    };
    this.messages.push(t);
    return t;
  }

  async attack(m, kind) {
    await this.recv(await this.tampered(m, kind), true);
  }

  async finish() {
    // Every generated key must appear in a header: whoever ratcheted without sending since, sends.
    for (const party of parties) {
      const state = this.states[party];
      if (state.keySource.index > 0 && !this.sentKeys[party].has(h(state.sendingKeyPair.publicKey))) await this.send(party, utf8('closing'));
    }
    const used = new Set(this.events.map((e) => e.msg));
    const unused = this.messages.filter((m) => !used.has(m.id)).map((m) => m.id);
    check(unused.length === 0, `${this.name}: messages used by no event: ${unused}`);
    // Committed state only: the key source positions of the final states, which never include a
    // key drawn for a refused message (its state copy, key source included, was discarded).
    const generated = (party) => this.keys[party].slice(0, this.states[party].keySource.index).map(h);
    return {
      name: this.name, shared_secret: h(this.sharedSecret), associated_data: h(this.associatedData),
      bob_initial_ratchet_priv: h(this.bobPrivate), bob_initial_ratchet_pub: h(this.bobPublic),
      alice_generated_ratchet_privs: generated('alice'), bob_generated_ratchet_privs: generated('bob'),
      messages: this.messages, events: this.events,
    };
  }
}

async function randomPlaintext(rng) {
  const r = await rng.randbelow(20);
  const length = r < 9 ? [0, 15, 16, 17, 31, 32, 33, 64, 300][r] : await rng.randbelow(40);
  return rng.bytes(length);
}

const pick = async (rng, list) => list[await rng.randbelow(list.length)];

/** A long random conversation: interleaved sends, out-of-order delivery across DH steps, replays
 * and tampered copies refused on both sides. */
async function drRandom(name, steps, burst) {
  const t = await Transcript.create(name);
  const rng = t.rng;
  await t.send('alice', await randomPlaintext(rng));
  const kinds = ['ciphertext', 'tag', 'n', 'pn', 'ratchet-key', 'truncated'];
  while (t.events.length < steps) {
    const x = await rng.randbelow(100);
    const party = await pick(rng, parties);
    const from = other(party);
    if (x < 8) {
      // Flush everything in flight towards `party`, in a random order: forces a turn of the DH
      // ratchet, so that transcripts contain many DH steps.
      while (t.pending[from].length) check(await t.recv(await pick(rng, t.pending[from])), `${name}: a genuine message was refused`);
    } else if (x < 38) {
      // Bursts, so that chains have several messages to reorder.
      if (t.canSend(party)) for (let n = 1 + (await rng.randbelow(burst)); n > 0; n--) await t.send(party, await randomPlaintext(rng));
    } else if (x < 80) {
      if (t.pending[from].length) {
        // Mostly the oldest, sometimes any: out of order within and across chains.
        const i = (await rng.randbelow(2)) === 0 ? 0 : await rng.randbelow(t.pending[from].length);
        check(await t.recv(t.pending[from][i]), `${name}: a genuine message was refused`);
      }
    } else if (x < 88) {
      if (t.delivered[from].length) await t.recv(await pick(rng, t.delivered[from]), true);
    } else {
      const pool = [...t.pending[from], ...t.delivered[from]];
      if (pool.length) {
        const m = await pick(rng, pool);
        await t.attack(m, await pick(rng, kinds));
      }
    }
  }
  // Deliver whatever is left, newest first, so the end exercises stored skipped keys too.
  for (const party of parties) while (t.pending[party].length) await t.recv(t.pending[party].at(-1));
  return t.finish();
}

async function drSkippedAcrossChains() {
  const t = await Transcript.create('skipped-keys-across-three-chains');
  const a = [];
  for (let i = 0; i < 5; i++) a.push(await t.send('alice', utf8(`chain1-${i}`)));
  await t.recv(a[4]); // stores a0..a3
  const b0 = await t.send('bob', utf8('bob ratchets'));
  await t.recv(b0);
  for (let i = 0; i < 3; i++) a.push(await t.send('alice', utf8(`chain2-${i}`))); // PN = 5
  await t.recv(a[7]); // stores a5, a6
  const b1 = await t.send('bob', utf8('again'));
  await t.recv(b1);
  a.push(await t.send('alice', utf8('chain3')));
  await t.recv(a[8]);
  for (const i of [0, 6, 2, 5, 1, 3]) await t.recv(a[i]);
  for (const i of [3, 6, 4]) await t.recv(a[i], true); // duplicates, also from older chains
  await t.recv(b0, true);
  return t.finish();
}

/** Alice refuses messages that make *her* run a DH ratchet step; her key list is committed state
 * only too, so the generated-then-discarded key pair is reused by the genuine message. */
async function drAliceRollback() {
  const t = await Transcript.create('alice-refuses-new-ratchet-keys');
  await t.recv(await t.send('alice', utf8('hi')));
  const b0 = await t.send('bob', utf8('first from bob'));
  const b1 = await t.send('bob', utf8('second from bob'));
  await t.attack(b0, 'ratchet-key');
  await t.attack(b1, 'pn');
  await t.attack(b1, 'tag');
  await t.attack(b0, 'pn-beyond-max-skip');
  await t.recv(b1);
  await t.attack(b0, 'ciphertext');
  await t.recv(b0);
  const a1 = await t.send('alice', utf8('ack'));
  await t.attack(a1, 'ratchet-key');
  await t.recv(a1);
  const b2 = await t.send('bob', utf8('third'));
  await t.attack(b2, 'ratchet-key');
  await t.recv(b2);
  return t.finish();
}

async function drBoundsAndInvalidKeys() {
  const t = await Transcript.create('bounds-and-invalid-header-keys');
  const a0 = await t.send('alice', new Uint8Array(0));
  const a1 = await t.send('alice', utf8('x'));
  for (const kind of ['invalid-key-zero', 'invalid-key-one', 'invalid-key-p', 'invalid-key-high-bit', 'invalid-key-order-8', 'n-beyond-max-skip']) await t.attack(a1, kind);
  await t.recv(a1);
  await t.attack(a1, 'n-beyond-max-skip');
  await t.recv(a0);
  const b0 = await t.send('bob', Uint8Array.from({ length: 256 }, (_, i) => i));
  for (const kind of ['invalid-key-zero', 'invalid-key-order-8', 'pn-beyond-max-skip', 'n-beyond-max-skip']) await t.attack(b0, kind);
  await t.recv(b0);
  return t.finish();
}

async function doubleRatchetFile() {
  const cases = [
    await drRandom('random-interleaving-1', 200, 4),
    await drRandom('random-interleaving-2', 200, 2),
    await drSkippedAcrossChains(),
    await drAliceRollback(),
    await drBoundsAndInvalidKeys(),
  ];
  return {
    schema: 'securechat-dr-vectors/1', generator: GENERATOR,
    params: {
      kdf_rk_info_hex: h(KDFLabels.rootKey), aead_info_hex: h(KDFLabels.ratchetMessageKeys), header_encoding: 'dh32|pn_u32be|n_u32be',
      max_skip: ProtocolLimits.maxSkip, max_stored_skipped_keys: ProtocolLimits.maxStoredSkippedKeys,
    },
    cases,
  };
}

// ---------------------------------------------------------------------------------------------
// sender keys
// ---------------------------------------------------------------------------------------------

// The receiver's view of the sender: the address its pairwise session would give.
const member = { name: 'member', deviceId: 1 };

class RoomTranscript {
  static async create(name, initialIteration) {
    const t = new RoomTranscript();
    const lab = `sender-keys/${name}`;
    t.name = name;
    t.rng = new Drbg(`${lab}/choices`);
    const distributionId = await new Drbg(`${lab}/distribution-id`).bytes(16);
    const chainId = await new Drbg(`${lab}/chain-id`).u32();
    const chainKey = await labelledKey(`${lab}/chain-key`, 0);
    t.signingSeed = await labelledKey(`${lab}/signing-key`, 0);
    t.chain = await SenderKeyState.fromSecrets({ distributionId, chainId, iteration: initialIteration, chainKey: chainKey.slice(), signingSeed: t.signingSeed.slice() });
    const distribution = t.chain.distributionMessage.encode();
    t.head = {
      name, distribution_id: h(distributionId), chain_id: chainId, initial_iteration: initialIteration, chain_key: h(chainKey),
      signing_key_seed: h(t.signingSeed), signing_key_public: h(t.chain.signingPublicKey.bytes), distribution_message: h(distribution),
    };
    t.store = new SenderKeyStore();
    t.store.process(SenderKeyDistributionMessage.decode(distribution), member);
    t.messages = [];
    t.events = [];
    t.tamperCount = 0;
    return t;
  }

  snapshot() {
    return JSON.stringify(this.store.recordOf(member).toStorable(), (_, value) => (value instanceof Uint8Array ? h(value) : value));
  }

  async send(plaintext) {
    const { message, messageKey } = await this.chain.encryptReturningKey(plaintext);
    const m = { id: `m${message.iteration}`, iteration: message.iteration, plaintext: h(plaintext), message_key: h(messageKey), serialized: h(message.encode()) };
    this.messages.push(m);
    this.events.push({ op: 'send', msg: m.id });
    return m;
  }

  async recv(m, mustFail = false) {
    const before = this.snapshot();
    let result;
    const error = await refusal(async () => {
      result = await this.store.decrypt(fromHex(m.serialized));
    });
    if (error !== null) {
      check(mustFail, `${this.name}: ${m.id} refused (${error.code}: ${error.message})`);
      check(this.snapshot() === before, `${this.name}: a refused ${m.id} changed the record`);
      this.events.push({ op: 'recv', msg: m.id, expect: 'fail' });
      return;
    }
    check(!mustFail, `${this.name}: ${m.id} accepted`);
    check(h(result.plaintext) === m.plaintext, `${this.name}: ${m.id} decrypts to something else`);
    this.events.push({ op: 'recv', msg: m.id });
  }

  /** Refuse-only copies. The re-signed ones use the real signing key: an insider (or a leaked
   * key) whose messages pass the signature and must fail later without a trace. */
  async forged(m, kind) {
    let bytes = fromHex(m.serialized);
    const unsigned = bytes.slice(0, bytes.length - 64);
    const view = new DataView(unsigned.buffer);
    const resign = async (body) => concat(body, await ed25519Sign(this.chain.signingKey, concat(KDFLabels.senderKeyMessageSignature, body)));
    switch (kind) {
      case 'signature': {
        const at = bytes.length - 1 - (await this.rng.randbelow(64));
        bytes[at] ^= 1 << (await this.rng.randbelow(8));
        break;
      }
      case 'ciphertext':
        bytes[26 + (await this.rng.randbelow(bytes.length - 26 - 64))] ^= 1;
        break;
      case 'resigned-bad-tag':
        unsigned[unsigned.length - 1] ^= 1;
        bytes = await resign(unsigned);
        break;
      case 'resigned-future-iteration-bad-tag':
        view.setUint32(22, view.getUint32(22) + 40);
        bytes = await resign(unsigned);
        break;
      case 'resigned-unknown-chain-id':
        view.setUint32(18, (view.getUint32(18) + 1) % 2 ** 32);
        bytes = await resign(unsigned);
        break;
      case 'resigned-other-distribution-id':
        unsigned[2] ^= 0x80;
        bytes = await resign(unsigned);
        break;
      case 'resigned-beyond-max-forward':
        view.setUint32(22, this.store.recordOf(member).chains.at(-1).iteration + ProtocolLimits.senderKeyMaxForward + 1);
        bytes = await resign(unsigned);
        break;
      case 'resigned-short-ciphertext':
        bytes = await resign(unsigned.subarray(0, unsigned.length - 1));
        break;
      case 'resigned-wrong-type':
        unsigned[1] = WireFormat.senderKeyDistribution;
        bytes = await resign(unsigned);
        break;
      default:
        throw new Error(`unknown forgery ${kind}`);
    }
    this.tamperCount += 1;
    const t = { id: `${m.id}-${kind}-${this.tamperCount}`, iteration: null, plaintext: null, message_key: null, serialized: h(bytes) };
    this.messages.push(t);
    return t;
  }

  finish() {
    const used = new Set(this.events.map((e) => e.msg));
    check(this.messages.every((m) => used.has(m.id)), `${this.name}: a message is used by no event`);
    return { ...this.head, messages: this.messages, events: this.events };
  }
}

async function skRandom() {
  const t = await RoomTranscript.create('random-order-replays-and-forgeries', 0);
  const sent = [];
  const received = [];
  const kinds = ['signature', 'ciphertext', 'resigned-bad-tag', 'resigned-future-iteration-bad-tag'];
  while (sent.length < 40 || received.length < sent.length) {
    const x = await t.rng.randbelow(100);
    if (x < 35 && sent.length < 40) {
      sent.push(await t.send(await randomPlaintext(t.rng)));
    } else if (x < 80) {
      const left = sent.filter((m) => !received.includes(m));
      if (left.length) {
        const m = await pick(t.rng, left);
        await t.recv(m);
        received.push(m);
      }
    } else if (x < 88) {
      if (received.length) await t.recv(await pick(t.rng, received), true);
    } else if (sent.length) {
      const m = await pick(t.rng, sent);
      await t.recv(await t.forged(m, await pick(t.rng, kinds)), true);
    }
  }
  return t.finish();
}

async function skInsider() {
  const t = await RoomTranscript.create('insider-forgeries-rolled-back', 1000);
  const m = [];
  for (let i = 0; i < 4; i++) m.push(await t.send(utf8(`message ${i}`)));
  for (const kind of ['resigned-bad-tag', 'resigned-future-iteration-bad-tag', 'resigned-unknown-chain-id', 'resigned-other-distribution-id',
    'resigned-beyond-max-forward', 'resigned-short-ciphertext', 'resigned-wrong-type']) {
    await t.recv(await t.forged(m[3], kind), true);
  }
  await t.recv(m[3]);
  await t.recv(await t.forged(m[1], 'resigned-bad-tag'), true); // from the skipped keys: must keep the key
  await t.recv(m[1]);
  await t.recv(m[0]);
  await t.recv(m[2]);
  await t.recv(await t.forged(m[3], 'resigned-beyond-max-forward'), true);
  return t.finish();
}

async function skNearLimit() {
  const t = await RoomTranscript.create('near-the-iteration-limit', 2 ** 32 - 8);
  const m = [];
  for (let i = 0; i < 5; i++) m.push(await t.send(utf8(`late ${i}`))); // iterations 2³² − 8 … 2³² − 4
  for (const i of [4, 0, 2, 3, 1]) await t.recv(m[i]);
  await t.recv(m[4], true);
  return t.finish();
}

async function skPadding() {
  const t = await RoomTranscript.create('padding-boundaries', 54321);
  const m = [];
  for (const [i, length] of [15, 16, 17, 31, 32, 33, 1024].entries()) m.push(await t.send(new Uint8Array(length).fill(i)));
  for (const x of m.reverse()) await t.recv(x);
  return t.finish();
}

async function senderKeysFile() {
  return {
    schema: 'securechat-sender-key-vectors/1', generator: GENERATOR,
    params: {
      message_keys_info_hex: h(KDFLabels.senderKeyMessageKeys), signature_context_hex: h(KDFLabels.senderKeyMessageSignature),
      max_forward: ProtocolLimits.senderKeyMaxForward, max_stored_keys: ProtocolLimits.senderKeyMaxStoredKeys,
    },
    cases: [await skRandom(), await skInsider(), await skNearLimit(), await skPadding()],
  };
}

// ---------------------------------------------------------------------------------------------
// safety numbers
// ---------------------------------------------------------------------------------------------

async function safetyNumbersFile() {
  const inputs = [
    // libsignal's published inputs (33-byte keys with the 0x05 type byte, phone numbers).
    ['libsignal-inputs',
      fromHex('0506863bc66d02b40d27b8d49ca7c09e9239236f9d7d25d6fcca5ce13c7064d868'), utf8('+14152222222'),
      fromHex('05f781b6fb32fed9ba1cf2de978d4d5da28dc34046ae814402b5c0dbd96fda907b'), utf8('+14153333333')],
  ];
  const identifiers = [['zoë@example.org', 'Ωmega'], ['7f3e2a9c-0d41-4a7e-9b7d-2f5c1e8a6b30', 'a'], ['', 'user-with-empty-peer']];
  for (const [i, [localId, remoteId]] of identifiers.entries()) {
    inputs.push([`identities-${i}`, await ed25519Public(await labelledKey('safety/local', i)), utf8(localId),
      await ed25519Public(await labelledKey('safety/remote', i)), utf8(remoteId)]);
  }
  const cases = [];
  for (const [name, localKey, localId, remoteKey, remoteId] of inputs) {
    const local = await SafetyNumber.fingerprint(localKey, localId);
    const remote = await SafetyNumber.fingerprint(remoteKey, remoteId);
    const number = new SafetyNumber(local, remote);
    check(new SafetyNumber(remote, local).matches(number.scannable), `${name}: the remote party does not match the local code`);
    cases.push({
      name, local_key: h(localKey), local_identifier: h(localId), remote_key: h(remoteKey), remote_identifier: h(remoteId),
      local_fingerprint: h(local), remote_fingerprint: h(remote), displayable: number.displayable, scannable: h(number.scannable),
    });
  }
  return { schema: 'securechat-fingerprint-vectors/1', generator: GENERATOR, iterations: ProtocolLimits.fingerprintIterations, cases };
}

// ---------------------------------------------------------------------------------------------
// attachments
// ---------------------------------------------------------------------------------------------

/** The whole stream through AttachmentDecryptor; a refusal is a ProtocolError. */
async function decryptStream(key, stream, expectedDigest, expectedSize) {
  const decryptor = new AttachmentDecryptor(key, { expectedDigest, expectedSize });
  return concat(await decryptor.update(stream), await decryptor.finalize());
}

async function attachmentsFile() {
  const specs = [['empty-2k-chunks', 2048, 0], ['exactly-two-chunks', 1024, 2048], ['three-chunks-and-a-byte', 1024, 3073],
    ['one-short-of-two-odd-chunks', 1031, 2061], ['single-partial-chunk-64k', 65536, 700]];
  const cases = [];
  for (const [name, chunkSize, length] of specs) {
    const lab = `attachments/${name}`;
    const key = await labelledKey(`${lab}/key`, 0);
    const salt = await new Drbg(`${lab}/salt`).bytes(16);
    const plaintext = await new Drbg(`${lab}/plaintext`).bytes(length);
    const encryptor = new AttachmentEncryptor(key, { salt, chunkSize });
    const body = await encryptor.update(plaintext);
    const { ciphertext: tail, digest } = await encryptor.finalize();
    const stream = concat(body, tail);
    check(h(await decryptStream(key, stream, digest, length)) === h(plaintext), `${name}: the stream does not decrypt`);

    const headerLength = AttachmentEncryptor.headerLength;
    const header = stream.subarray(0, headerLength);
    const sealed = chunkSize + AttachmentEncryptor.tagLength;
    const chunks = [];
    for (let at = headerLength; at < stream.length; at += sealed) chunks.push(stream.subarray(at, at + sealed));
    const withChunkSize = (size) => concat(header.subarray(0, 2), u32(size), header.subarray(6), stream.subarray(headerLength));
    const tampered = [];
    // Refused with the tampered stream's own digest: the chunk rules must catch it, not the digest.
    const add = async (description, bytes) => {
      check((await refusal(async () => decryptStream(key, bytes, await sha256(bytes), length))) !== null, `${name}: tampered stream accepted: ${description}`);
      tampered.push({ description, stream: h(bytes) });
    };
    const flipped = stream.slice();
    flipped[headerLength] ^= 1;
    await add('first ciphertext byte flipped', flipped);
    await add('chunk size in the header changed', withChunkSize(chunkSize + 1));
    await add('chunk size below the bound', withChunkSize(ProtocolLimits.minAttachmentChunkSize - 1));
    await add('version byte 2', concat(new Uint8Array([2]), stream.subarray(1)));
    await add('16 zero bytes appended', concat(stream, new Uint8Array(16)));
    await add('last byte removed', stream.subarray(0, stream.length - 1));
    await add('header only', header);
    if (chunks.length > 1) {
      await add('final chunk dropped (truncated at a chunk boundary)', concat(header, ...chunks.slice(0, -1)));
      await add('first and last chunks swapped', concat(header, chunks.at(-1), ...chunks.slice(1, -1), chunks[0]));
      await add('first chunk repeated', concat(header, chunks[0], ...chunks));
    }
    cases.push({
      name, key: h(key), salt: h(salt), chunk_size: chunkSize, plaintext: h(plaintext), stream: h(stream), digest: h(digest), tampered,
    });
  }
  return { schema: 'securechat-attachment-vectors/1', generator: GENERATOR, info_hex: h(KDFLabels.attachment), cases };
}

// ---------------------------------------------------------------------------------------------

const files = {
  'identity.json': identityFile,
  'x3dh.json': x3dhFile,
  'double-ratchet.json': doubleRatchetFile,
  'sender-keys.json': senderKeysFile,
  'safety-numbers.json': safetyNumbersFile,
  'attachments.json': attachmentsFile,
};

/** Numbers must survive every JSON reader exactly (§13 allows up to 2⁶³, JavaScript reads 2⁵³). */
function checkNumbers(value, path) {
  if (typeof value === 'number') check(Number.isSafeInteger(value) && value >= 0, `${path}: ${value} is not a safe non-negative integer`);
  else if (Array.isArray(value)) value.forEach((v, i) => checkNumbers(v, `${path}[${i}]`));
  else if (value !== null && typeof value === 'object') for (const [k, v] of Object.entries(value)) checkNumbers(v, `${path}.${k}`);
}

async function main(argv) {
  const args = argv.filter((a) => a !== '--python-labels');
  if (args.length !== 1 || args[0].startsWith('-')) {
    console.error('usage: node Tests/Web/generate-vectors.mjs [--python-labels] OUTDIR');
    return 2;
  }
  if (args.length !== argv.length) labelPrefix = '';
  const out = args[0];
  mkdirSync(out, { recursive: true });
  for (const [name, make] of Object.entries(files)) {
    const doc = await make();
    checkNumbers(doc, name);
    // Two-space indentation and one value per line, as Python's json.dumps(indent=2) writes.
    const text = `${JSON.stringify(doc, null, 2)}\n`;
    writeFileSync(join(out, name), text);
    console.log(`wrote ${join(out, name)} (${Buffer.byteLength(text)} bytes)`);
  }
  return 0;
}

process.exitCode = await main(process.argv.slice(2));
