// The symmetric primitives of PROTOCOL.md §1 over WebCrypto: SHA-256, SHA-512, HMAC-SHA256 and
// HKDF-SHA256. Raw keys are imported as non-extractable CryptoKeys for the one operation.
import { concat } from './byte-coding.js';

const subtle = globalThis.crypto.subtle;

export async function sha256(bytes) {
  return new Uint8Array(await subtle.digest('SHA-256', bytes));
}

export async function sha512(bytes) {
  return new Uint8Array(await subtle.digest('SHA-512', bytes));
}

export async function hmac(key, ...message) {
  const cryptoKey = await subtle.importKey('raw', key, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  return new Uint8Array(await subtle.sign('HMAC', cryptoKey, message.length === 1 ? message[0] : concat(...message)));
}

/** HKDF-SHA256 (RFC 5869); a missing salt is 32 zero bytes (§1). */
export async function hkdf(ikm, { salt = new Uint8Array(32), info, length }) {
  const cryptoKey = await subtle.importKey('raw', ikm, 'HKDF', false, ['deriveBits']);
  const bits = await subtle.deriveBits({ name: 'HKDF', hash: 'SHA-256', salt, info }, cryptoKey, length * 8);
  return new Uint8Array(bits);
}
