// ENCRYPT and DECRYPT of PROTOCOL.md §6.3 (and §7.1 under the sender-key label): AES-256-CBC with
// PKCS#7, then HMAC-SHA256 over aad ‖ ct. The tag is checked in constant time before anything is
// decrypted, and every failure is the same error, so there is no padding oracle.
import { concat } from './byte-coding.js';
import { constantTimeEqual } from './constant-time.js';
import { ProtocolError, ErrorCode } from './errors.js';
import { hkdf, hmac } from './hmac-sha256.js';
import { wipe } from './secret-bytes.js';

const subtle = globalThis.crypto.subtle;

async function expand(messageKey, info) {
  const okm = await hkdf(messageKey, { info, length: 80 });
  return { encryptionKey: okm.slice(0, 32), authenticationKey: okm.slice(32, 64), iv: okm.slice(64, 80), okm };
}

export async function encryptMessage(messageKey, plaintext, associatedData, info) {
  const keys = await expand(messageKey, info);
  try {
    const aes = await subtle.importKey('raw', keys.encryptionKey, 'AES-CBC', false, ['encrypt']);
    const ciphertext = new Uint8Array(await subtle.encrypt({ name: 'AES-CBC', iv: keys.iv }, aes, plaintext));
    const tag = await hmac(keys.authenticationKey, associatedData, ciphertext);
    return concat(ciphertext, tag);
  } finally {
    wipe(keys.okm, keys.encryptionKey, keys.authenticationKey, keys.iv);
  }
}

export async function decryptMessage(messageKey, data, associatedData, info) {
  const failure = () => new ProtocolError(ErrorCode.authentication, 'the message does not authenticate');
  if (data.length < 48 || (data.length - 32) % 16 !== 0) throw failure();
  const keys = await expand(messageKey, info);
  try {
    const ciphertext = data.subarray(0, data.length - 32);
    const tag = await hmac(keys.authenticationKey, associatedData, ciphertext);
    if (!constantTimeEqual(tag, data.subarray(data.length - 32))) throw failure();
    const aes = await subtle.importKey('raw', keys.encryptionKey, 'AES-CBC', false, ['decrypt']);
    try {
      return new Uint8Array(await subtle.decrypt({ name: 'AES-CBC', iv: keys.iv }, aes, ciphertext));
    } catch {
      throw failure();
    }
  } finally {
    wipe(keys.okm, keys.encryptionKey, keys.authenticationKey, keys.iv);
  }
}
