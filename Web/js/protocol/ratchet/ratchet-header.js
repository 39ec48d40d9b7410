// The 40-byte header of a ratchet message (PROTOCOL.md §6.4): ratchet public key ‖ PN ‖ N.
import { ByteReader, concat, u32 } from '../byte-coding.js';
import { validateX25519PublicKey } from '../identity-key.js';

export class RatchetHeader {
  static encodedLength = 40;

  constructor({ ratchetKey, previousChainLength, messageNumber }) {
    this.ratchetKey = ratchetKey;
    this.previousChainLength = previousChainLength;
    this.messageNumber = messageNumber;
  }

  encode() {
    return concat(this.ratchetKey, u32(this.previousChainLength), u32(this.messageNumber));
  }

  static decode(bytes) {
    const reader = new ByteReader(bytes);
    const header = new RatchetHeader({
      ratchetKey: validateX25519PublicKey(reader.read(32)),
      previousChainLength: reader.readU32(),
      messageNumber: reader.readU32(),
    });
    reader.finish();
    return header;
  }
}
