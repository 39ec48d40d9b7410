// Public Ed25519 keys (identity keys and sender signing keys) with the validation of
// PROTOCOL.md §2.1, their X25519 form (§3) and signature verification through WebCrypto.
import { EdwardsPoint, groupOrder } from './edwards-point.js';
import { p, mod, invert, fromBytesLE, toBytesLE } from './field25519.js';
import { ProtocolError, ErrorCode } from './errors.js';
import { toHex, fromHex } from './byte-coding.js';

const smallOrderU = new Set([
  0n,
  1n,
  p - 1n,
  fromBytesLE(fromHex('e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800')),
  fromBytesLE(fromHex('5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157')),
]);

/** Throws unless `bytes` is a valid X25519 public key (§2.1). */
export function validateX25519PublicKey(bytes) {
  if (!(bytes instanceof Uint8Array) || bytes.length !== 32) {
    throw new ProtocolError(ErrorCode.invalidKey, 'an X25519 public key is 32 bytes');
  }
  if (bytes[31] & 0x80) throw new ProtocolError(ErrorCode.invalidKey, 'X25519 public key with bit 255 set');
  const u = fromBytesLE(bytes);
  if (u >= p) throw new ProtocolError(ErrorCode.invalidKey, 'X25519 public key not below p');
  if (smallOrderU.has(u)) throw new ProtocolError(ErrorCode.invalidKey, 'X25519 public key of small order');
  return bytes;
}

// Validation costs two scalar multiplications: remember keys already checked (public data, so a
// cache leaks nothing). Bounded so that a stream of hostile keys cannot grow it.
const validatedKeys = new Map();

export class IdentityKey {
  /** Throws ProtocolError(invalidKey) unless the 32 bytes pass every check of §2.1. */
  constructor(bytes) {
    if (!(bytes instanceof Uint8Array) || bytes.length !== 32) {
      throw new ProtocolError(ErrorCode.invalidKey, 'an Ed25519 public key is 32 bytes');
    }
    const hex = toHex(bytes);
    let y = validatedKeys.get(hex);
    if (y === undefined) {
      const point = EdwardsPoint.decode(bytes);
      if (point === null) throw new ProtocolError(ErrorCode.invalidKey, 'not an Ed25519 point');
      if (point.multiply(8n).isIdentity) throw new ProtocolError(ErrorCode.invalidKey, 'Ed25519 key of small order');
      if (!point.multiply(groupOrder).isIdentity) {
        throw new ProtocolError(ErrorCode.invalidKey, 'Ed25519 key outside the prime-order subgroup');
      }
      y = point.y;
      if (validatedKeys.size >= 4096) validatedKeys.delete(validatedKeys.keys().next().value);
      validatedKeys.set(hex, y);
    }
    this.bytes = bytes.slice();
    this.y = y;
  }

  /** crypto_sign_ed25519_pk_to_curve25519: u = (1 + y) / (1 − y). y = 1 is the identity, refused above. */
  get x25519() {
    return toBytesLE(mod((1n + this.y) * invert(mod(1n - this.y))));
  }

  equals(other) {
    return other instanceof IdentityKey && toHex(this.bytes) === toHex(other.bytes);
  }

  /** Ed25519 verification (RFC 8032) of a 64-byte signature. */
  async isValidSignature(signature, message) {
    if (!(signature instanceof Uint8Array) || signature.length !== 64) return false;
    try {
      const key = await crypto.subtle.importKey('raw', this.bytes, { name: 'Ed25519' }, false, ['verify']);
      return await crypto.subtle.verify({ name: 'Ed25519' }, key, signature, message);
    } catch {
      return false;
    }
  }

  async verify(signature, message) {
    if (!(await this.isValidSignature(signature, message))) {
      throw new ProtocolError(ErrorCode.badSignature, 'the signature does not verify');
    }
  }
}
