// Signed prekeys, one-time prekeys and prekey bundles (PROTOCOL.md §4): public encodings, checked
// when decoded. The private halves stay in WebCrypto (see pre-key-store.js).
import { ByteReader, concat, u32, u64 } from './byte-coding.js';
import { IdentityKey, validateX25519PublicKey } from './identity-key.js';
import { KDFLabels } from './kdf-labels.js';
import { WireFormat, prefix, readPrefix } from './wire-format.js';

export function signedPreKeySignatureInput(id, publicKey, createdAt) {
  return concat(KDFLabels.signedPreKeySignature, u32(id), publicKey, u64(createdAt));
}

export class SignedPreKey {
  constructor({ id, publicKey, createdAt, signature }) {
    this.id = id;
    this.publicKey = validateX25519PublicKey(publicKey);
    /** Unix seconds, a BigInt when decoded. */
    this.createdAt = BigInt(createdAt);
    this.signature = signature;
  }

  encode() {
    return concat(prefix(WireFormat.signedPreKey), u32(this.id), this.publicKey, u64(this.createdAt), this.signature);
  }

  static decode(bytes) {
    const reader = new ByteReader(bytes);
    readPrefix(reader, WireFormat.signedPreKey);
    const key = new SignedPreKey({ id: reader.readU32(), publicKey: reader.read(32), createdAt: reader.readU64(), signature: reader.read(64) });
    reader.finish();
    return key;
  }

  async verify(identityKey) {
    await identityKey.verify(this.signature, signedPreKeySignatureInput(this.id, this.publicKey, this.createdAt));
  }
}

export class OneTimePreKey {
  constructor({ id, publicKey }) {
    this.id = id;
    this.publicKey = validateX25519PublicKey(publicKey);
  }

  encode() {
    return concat(prefix(WireFormat.oneTimePreKey), u32(this.id), this.publicKey);
  }

  static decode(bytes) {
    const reader = new ByteReader(bytes);
    readPrefix(reader, WireFormat.oneTimePreKey);
    const key = new OneTimePreKey({ id: reader.readU32(), publicKey: reader.read(32) });
    reader.finish();
    return key;
  }
}

export class PreKeyBundle {
  constructor({ identityKey, signedPreKey, oneTimePreKey = null }) {
    this.identityKey = identityKey;
    this.signedPreKey = signedPreKey;
    this.oneTimePreKey = oneTimePreKey;
  }

  encode() {
    const s = this.signedPreKey;
    const head = concat(prefix(WireFormat.preKeyBundle), this.identityKey.bytes, u32(s.id), s.publicKey, u64(s.createdAt), s.signature);
    if (this.oneTimePreKey === null) return concat(head, new Uint8Array([0]));
    return concat(head, new Uint8Array([1]), u32(this.oneTimePreKey.id), this.oneTimePreKey.publicKey);
  }

  /** Decodes and verifies (§4.3): an invalid key or signature refuses the bundle. */
  static async decode(bytes) {
    const reader = new ByteReader(bytes);
    readPrefix(reader, WireFormat.preKeyBundle);
    const identityKey = new IdentityKey(reader.read(32));
    const signedPreKey = new SignedPreKey({ id: reader.readU32(), publicKey: reader.read(32), createdAt: reader.readU64(), signature: reader.read(64) });
    const oneTimePreKey = reader.readFlag() ? new OneTimePreKey({ id: reader.readU32(), publicKey: reader.read(32) }) : null;
    reader.finish();
    return PreKeyBundle.verified({ identityKey, signedPreKey, oneTimePreKey });
  }

  /** A bundle from its parts (the server's JSON gives them separately), after the signature check. */
  static async verified({ identityKey, signedPreKey, oneTimePreKey = null }) {
    await signedPreKey.verify(identityKey);
    return new PreKeyBundle({ identityKey, signedPreKey, oneTimePreKey });
  }
}
