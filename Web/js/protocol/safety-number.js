// Safety numbers (PROTOCOL.md §8): Signal's numeric fingerprint version 0 over the 32-byte
// identity key and the user id, 60 digits, and the 74-byte scannable form for a QR code.
import { concat, utf8 } from './byte-coding.js';
import { constantTimeEqual } from './constant-time.js';
import { ProtocolError, ErrorCode } from './errors.js';
import { sha512 } from './hmac-sha256.js';
import { ProtocolLimits } from './protocol-limits.js';

const scannablePrefix = new Uint8Array([0x08, 0x01, 0x12, 0x22, 0x0a, 0x20]);
const scannableMiddle = new Uint8Array([0x1a, 0x22, 0x0a, 0x20]);

function digits(fingerprint) {
  let out = '';
  for (let i = 0; i < 30; i += 5) {
    let value = 0;
    for (let j = 0; j < 5; j++) value = value * 256 + fingerprint[i + j];
    out += String(value % 100000).padStart(5, '0');
  }
  return out;
}

export class SafetyNumber {
  static scannableVersion = 1;

  constructor(localFingerprint, remoteFingerprint) {
    this.localFingerprint = localFingerprint;
    this.remoteFingerprint = remoteFingerprint;
    const local = digits(localFingerprint);
    const remote = digits(remoteFingerprint);
    this.displayable = local < remote ? local + remote : remote + local;
    this.scannable = concat(scannablePrefix, localFingerprint.subarray(0, 32), scannableMiddle, remoteFingerprint.subarray(0, 32));
  }

  /** From raw keys and identifiers (bytes). */
  static async compute({ localKey, localIdentifier, remoteKey, remoteIdentifier, iterations = ProtocolLimits.fingerprintIterations }) {
    const [local, remote] = await Promise.all([
      SafetyNumber.fingerprint(localKey, localIdentifier, iterations),
      SafetyNumber.fingerprint(remoteKey, remoteIdentifier, iterations),
    ]);
    return new SafetyNumber(local, remote);
  }

  /** SecureChat's inputs: identity keys (IdentityKey) and user ids. */
  static forUsers({ local, localUserId, remote, remoteUserId }) {
    return SafetyNumber.compute({ localKey: local.bytes, localIdentifier: utf8(localUserId), remoteKey: remote.bytes, remoteIdentifier: utf8(remoteUserId) });
  }

  /** H₁ = SHA512(0x0000 ‖ key ‖ id ‖ key), Hᵢ = SHA512(Hᵢ₋₁ ‖ key). */
  static async fingerprint(key, identifier, iterations = ProtocolLimits.fingerprintIterations) {
    let hash = await sha512(concat(new Uint8Array(2), key, identifier, key));
    const buffer = new Uint8Array(64 + key.length);
    buffer.set(key, 64);
    for (let i = 1; i < iterations; i++) {
      buffer.set(hash, 0);
      hash = await sha512(buffer);
    }
    return hash;
  }

  /** Twelve groups of five digits. */
  get groups() {
    return this.displayable.match(/.{5}/g);
  }

  /** Whether a scanned code is the other party's view of this pair of keys. */
  matches(scanned) {
    if (scanned.length !== 74) throw new ProtocolError(ErrorCode.malformed, 'a scannable code is 74 bytes');
    if (scanned[0] !== 0x08 || !constantTimeEqual(scanned.subarray(2, 6), scannablePrefix.subarray(2)) || !constantTimeEqual(scanned.subarray(38, 42), scannableMiddle)) {
      throw new ProtocolError(ErrorCode.malformed, 'not a scannable safety number');
    }
    if (scanned[1] !== SafetyNumber.scannableVersion) throw new ProtocolError(ErrorCode.versionMismatch, `scannable version ${scanned[1]}`);
    const sameRemote = constantTimeEqual(scanned.subarray(6, 38), this.remoteFingerprint.subarray(0, 32));
    const sameLocal = constantTimeEqual(scanned.subarray(42, 74), this.localFingerprint.subarray(0, 32));
    return sameRemote && sameLocal;
  }
}
