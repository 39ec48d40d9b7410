// X25519 key pairs: { privateKey: CryptoKey, publicKey: Uint8Array(32) }. A device's keys are
// generated inside WebCrypto as non-extractable keys; the test vectors import given private bytes
// (PROTOCOL.md §13), which is the only reason private bytes ever enter this code.
import { ProtocolError, ErrorCode } from './errors.js';
import { concat } from './byte-coding.js';
import { validateX25519PublicKey } from './identity-key.js';

const subtle = globalThis.crypto.subtle;
const x25519PKCS8Prefix = new Uint8Array([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x04, 0x22, 0x04, 0x20]);
const basePoint = new Uint8Array(32);
basePoint[0] = 9;

export async function generateX25519KeyPair() {
  const pair = await subtle.generateKey({ name: 'X25519' }, false, ['deriveBits']);
  return { privateKey: pair.privateKey, publicKey: new Uint8Array(await subtle.exportKey('raw', pair.publicKey)) };
}

/** Imports 32 private bytes as a non-extractable key; the public key is X25519(private, 9). */
export async function importX25519PrivateKey(privateBytes) {
  const privateKey = await subtle.importKey('pkcs8', concat(x25519PKCS8Prefix, privateBytes), { name: 'X25519' }, false, ['deriveBits']);
  const base = await subtle.importKey('raw', basePoint, { name: 'X25519' }, true, []);
  const publicKey = new Uint8Array(await subtle.deriveBits({ name: 'X25519', public: base }, privateKey, 256));
  return { privateKey, publicKey };
}

/** DH(a, B) of §1: refuses an invalid public key (§2.1) and an all-zero output. */
export async function dh(privateKey, publicBytes) {
  validateX25519PublicKey(publicBytes);
  const publicKey = await subtle.importKey('raw', publicBytes, { name: 'X25519' }, true, []);
  let shared;
  try {
    shared = new Uint8Array(await subtle.deriveBits({ name: 'X25519', public: publicKey }, privateKey, 256));
  } catch {
    // WebCrypto itself refuses an all-zero output (OperationError).
    throw new ProtocolError(ErrorCode.invalidKey, 'the DH output is zero');
  }
  if (shared.every((byte) => byte === 0)) throw new ProtocolError(ErrorCode.invalidKey, 'the DH output is zero');
  return shared;
}

/** Fresh random ratchet keys: what devices use. */
export const systemKeySource = Object.freeze({
  nextKeyPair: () => generateX25519KeyPair(),
  clone() {
    return this;
  },
});

/**
 * Keys listed in a test vector, in order. The position is part of the ratchet state it serves, so
 * a refused message (whose state copy is discarded) also gives back the key it drew (§13).
 */
export class ScriptedKeySource {
  constructor(privateKeys, index = 0) {
    this.privateKeys = privateKeys;
    this.index = index;
    this.overdrawn = false;
  }

  clone() {
    const copy = new ScriptedKeySource(this.privateKeys, this.index);
    copy.overdrawn = this.overdrawn;
    return copy;
  }

  async nextKeyPair() {
    const index = this.index++;
    if (index >= this.privateKeys.length) {
      // A message that must be refused anyway is refused for its own reason; if such a state is
      // ever committed, the checker sees `overdrawn`.
      this.overdrawn = true;
      return generateX25519KeyPair();
    }
    return importX25519PrivateKey(this.privateKeys[index]);
  }
}
