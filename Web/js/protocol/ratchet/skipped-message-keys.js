// MKSKIPPED (PROTOCOL.md §6.5): message keys derived ahead, by (ratchet key, N), at most 2000 over
// all chains, oldest evicted first. A Map keeps insertion order, which is age.
import { toHex } from '../byte-coding.js';
import { ProtocolLimits } from '../protocol-limits.js';

export class SkippedMessageKeys {
  constructor(entries = new Map()) {
    this.entries = entries;
  }

  static key(ratchetKey, messageNumber) {
    return `${toHex(ratchetKey)}:${messageNumber}`;
  }

  clone() {
    return new SkippedMessageKeys(new Map(this.entries));
  }

  get size() {
    return this.entries.size;
  }

  insert(ratchetKey, messageNumber, messageKey) {
    this.entries.set(SkippedMessageKeys.key(ratchetKey, messageNumber), messageKey);
    while (this.entries.size > ProtocolLimits.maxStoredSkippedKeys) {
      this.entries.delete(this.entries.keys().next().value);
    }
  }

  /** Removes and returns the key, or null. */
  take(ratchetKey, messageNumber) {
    const name = SkippedMessageKeys.key(ratchetKey, messageNumber);
    const messageKey = this.entries.get(name);
    if (messageKey === undefined) return null;
    this.entries.delete(name);
    return messageKey;
  }
}
