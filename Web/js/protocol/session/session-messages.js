// Ratchet messages (PROTOCOL.md §6.6) and prekey messages (§6.7).
import { ByteReader, concat, u32 } from '../byte-coding.js';
import { ProtocolError, ErrorCode } from '../errors.js';
import { IdentityKey, validateX25519PublicKey } from '../identity-key.js';
import { ProtocolLimits } from '../protocol-limits.js';
import { RatchetHeader } from '../ratchet/ratchet-header.js';
import { WireFormat, prefix, readPrefix } from '../wire-format.js';
import { X3DHInitiation } from '../x3dh.js';

const maxCiphertextLength = ProtocolLimits.maxMessagePlaintext + 16 + 32;

export class RatchetMessage {
  constructor({ header, ciphertext }) {
    this.header = header;
    this.ciphertext = ciphertext;
  }

  encode() {
    return concat(prefix(WireFormat.ratchetMessage), this.header.encode(), this.ciphertext);
  }

  static decode(bytes) {
    const reader = new ByteReader(bytes);
    readPrefix(reader, WireFormat.ratchetMessage);
    const header = RatchetHeader.decode(reader.read(RatchetHeader.encodedLength));
    const ciphertext = reader.readRest();
    if (ciphertext.length < 48 || ciphertext.length > maxCiphertextLength || (ciphertext.length - 32) % 16 !== 0) {
      throw new ProtocolError(ErrorCode.malformed, `ciphertext length ${ciphertext.length} out of bounds`);
    }
    return new RatchetMessage({ header, ciphertext });
  }
}

export class PreKeyMessage {
  constructor({ initiation, message }) {
    this.initiation = initiation;
    this.message = message;
  }

  encode() {
    const i = this.initiation;
    const ids = i.oneTimePreKeyId === null
      ? concat(u32(i.signedPreKeyId), new Uint8Array([0]))
      : concat(u32(i.signedPreKeyId), new Uint8Array([1]), u32(i.oneTimePreKeyId));
    return concat(prefix(WireFormat.preKeyMessage), i.initiatorIdentityKey.bytes, i.ephemeralKey, ids, this.message.encode());
  }

  static decode(bytes) {
    const reader = new ByteReader(bytes);
    readPrefix(reader, WireFormat.preKeyMessage);
    const initiatorIdentityKey = new IdentityKey(reader.read(32));
    const ephemeralKey = validateX25519PublicKey(reader.read(32));
    const signedPreKeyId = reader.readU32();
    const oneTimePreKeyId = reader.readFlag() ? reader.readU32() : null;
    const message = RatchetMessage.decode(reader.readRest());
    return new PreKeyMessage({ initiation: new X3DHInitiation({ initiatorIdentityKey, ephemeralKey, signedPreKeyId, oneTimePreKeyId }), message });
  }
}

/** A pairwise message of either kind, by its type byte. */
export function decodeSessionMessage(bytes) {
  if (bytes.length >= 2 && bytes[0] === WireFormat.version && bytes[1] === WireFormat.preKeyMessage) {
    return { kind: 'preKey', message: PreKeyMessage.decode(bytes) };
  }
  return { kind: 'ratchet', message: RatchetMessage.decode(bytes) };
}
