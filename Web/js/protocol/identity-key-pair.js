// A device's identity: an Ed25519 key pair whose X25519 form takes part in X3DH (PROTOCOL.md §3).
// Both private halves live in WebCrypto as non-extractable keys; the seed exists only while they
// are made and is wiped right after.
import { concat } from './byte-coding.js';
import { IdentityKey } from './identity-key.js';
import { sha512 } from './hmac-sha256.js';
import { randomBytes, wipe } from './secret-bytes.js';
import { importX25519PrivateKey } from './key-source.js';
import { fromBase64URL } from './byte-coding.js';

const subtle = globalThis.crypto.subtle;
const ed25519PKCS8Prefix = new Uint8Array([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20]);

/** An Ed25519 signing key from its 32-byte seed: { signingKey: CryptoKey, publicKey: Uint8Array }. */
export async function importEd25519Seed(seed) {
  const pkcs8 = concat(ed25519PKCS8Prefix, seed);
  try {
    // The public key is read once from a short-lived extractable copy: WebCrypto offers no other
    // way from a private key to its public key.
    const extractable = await subtle.importKey('pkcs8', pkcs8, { name: 'Ed25519' }, true, ['sign']);
    const jwk = await subtle.exportKey('jwk', extractable);
    const publicKey = fromBase64URL(jwk.x);
    wipe(fromBase64URL(jwk.d));
    const signingKey = await subtle.importKey('pkcs8', pkcs8, { name: 'Ed25519' }, false, ['sign']);
    return { signingKey, publicKey };
  } finally {
    wipe(pkcs8);
  }
}

export async function ed25519Sign(signingKey, message) {
  return new Uint8Array(await subtle.sign({ name: 'Ed25519' }, signingKey, message));
}

export class IdentityKeyPair {
  constructor({ signingKey, agreementKey, publicKey }) {
    this.signingKey = signingKey;
    /** The X25519 private key: crypto_sign_ed25519_sk_to_curve25519 of the seed. */
    this.agreementKey = agreementKey;
    this.publicKey = publicKey instanceof IdentityKey ? publicKey : new IdentityKey(publicKey);
  }

  static async generate() {
    const seed = randomBytes(32);
    try {
      return await IdentityKeyPair.fromSeed(seed);
    } finally {
      wipe(seed);
    }
  }

  static async fromSeed(seed) {
    const { signingKey, publicKey } = await importEd25519Seed(seed);
    const scalar = (await sha512(seed)).slice(0, 32);
    scalar[0] &= 0xf8;
    scalar[31] &= 0x7f;
    scalar[31] |= 0x40;
    const { privateKey: agreementKey } = await importX25519PrivateKey(scalar);
    wipe(scalar);
    return new IdentityKeyPair({ signingKey, agreementKey, publicKey });
  }

  sign(message) {
    return ed25519Sign(this.signingKey, message);
  }

  /** What IndexedDB stores: CryptoKeys survive structured cloning and stay non-extractable. */
  toStorable() {
    return { signingKey: this.signingKey, agreementKey: this.agreementKey, publicKey: this.publicKey.bytes };
  }

  static fromStorable(stored) {
    return new IdentityKeyPair(stored);
  }
}
