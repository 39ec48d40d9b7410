// The Double Ratchet (PROTOCOL.md §6.5). decrypt works on a copy and replaces this state only
// when the message authenticates, so any refusal leaves it exactly as it was, skipped keys and
// the key source's position included.
import { concat, toHex } from '../byte-coding.js';
import { ProtocolError, ErrorCode, exclusively } from '../errors.js';
import { KDFLabels } from '../kdf-labels.js';
import { hkdf } from '../hmac-sha256.js';
import { dh, systemKeySource } from '../key-source.js';
import { decryptMessage, encryptMessage } from '../message-cipher.js';
import { ProtocolLimits } from '../protocol-limits.js';
import { stepChain } from './chain-key.js';
import { RatchetHeader } from './ratchet-header.js';
import { SkippedMessageKeys } from './skipped-message-keys.js';

async function kdfRK(rootKey, dhOutput) {
  const okm = await hkdf(dhOutput, { salt: rootKey, info: KDFLabels.rootKey, length: 64 });
  return { rootKey: okm.slice(0, 32), chainKey: okm.slice(32, 64) };
}

const sameBytes = (a, b) => a !== null && b !== null && toHex(a) === toHex(b);

export class RatchetState {
  constructor(fields) {
    this.associatedData = fields.associatedData;
    this.rootKey = fields.rootKey;
    /** DHs: { privateKey: CryptoKey, publicKey: Uint8Array }. */
    this.sendingKeyPair = fields.sendingKeyPair;
    this.remoteRatchetKey = fields.remoteRatchetKey ?? null;
    this.sendingChainKey = fields.sendingChainKey ?? null;
    this.receivingChainKey = fields.receivingChainKey ?? null;
    this.sendCount = fields.sendCount ?? 0;
    this.receiveCount = fields.receiveCount ?? 0;
    this.previousSendCount = fields.previousSendCount ?? 0;
    this.skipped = fields.skipped ?? new SkippedMessageKeys();
    this.keySource = fields.keySource ?? systemKeySource;
    this.busy = false;
  }

  clone() {
    return new RatchetState({ ...this, skipped: this.skipped.clone(), keySource: this.keySource.clone(), busy: false });
  }

  /** Alice: DHs new, DHr = Bob's signed prekey, RK, CKs = KDF_RK(SK, DH(DHs, SPK_B)). */
  static async initiator({ sharedSecret, associatedData, responderRatchetKey, keySource = systemKeySource }) {
    const sendingKeyPair = await keySource.nextKeyPair();
    const { rootKey, chainKey } = await kdfRK(sharedSecret, await dh(sendingKeyPair.privateKey, responderRatchetKey));
    return new RatchetState({ associatedData, rootKey, sendingKeyPair, remoteRatchetKey: responderRatchetKey, sendingChainKey: chainKey, keySource });
  }

  /** Bob: DHs = his signed prekey pair, RK = SK, no chains: he cannot send before receiving. */
  static responder({ sharedSecret, associatedData, ratchetKeyPair, keySource = systemKeySource }) {
    return new RatchetState({ associatedData, rootKey: sharedSecret, sendingKeyPair: ratchetKeyPair, keySource });
  }

  /**
   * Returns { header, ciphertext }; advances the sending chain. One state serves one operation at
   * a time: two encryptions interleaved at an await would reuse a message key, so that is refused.
   */
  encrypt(plaintext) {
    return exclusively(this, 'ratchet', () => this.encryptNow(plaintext));
  }

  async encryptNow(plaintext) {
    if (this.sendingChainKey === null) throw new ProtocolError(ErrorCode.state, 'no sending chain: the responder sends only after receiving');
    if (plaintext.length > ProtocolLimits.maxMessagePlaintext) throw new ProtocolError(ErrorCode.malformed, 'plaintext too large');
    if (this.sendCount >= ProtocolLimits.counterSentinel) throw new ProtocolError(ErrorCode.state, 'sending chain exhausted');
    const { messageKey, nextChainKey } = await stepChain(this.sendingChainKey);
    const header = new RatchetHeader({ ratchetKey: this.sendingKeyPair.publicKey, previousChainLength: this.previousSendCount, messageNumber: this.sendCount });
    const ciphertext = await encryptMessage(messageKey, plaintext, concat(this.associatedData, header.encode()), KDFLabels.ratchetMessageKeys);
    this.sendingChainKey = nextChainKey;
    this.sendCount += 1;
    return { header, ciphertext, messageKey };
  }

  /** Returns the plaintext; on any refusal this state is unchanged. */
  decrypt(header, ciphertext) {
    return exclusively(this, 'ratchet', async () => {
      const { state, plaintext } = await this.decrypted(header, ciphertext);
      Object.assign(this, state, { busy: true });
      return plaintext;
    });
  }

  /** The all-or-nothing step: { state (a new copy), plaintext, messageKey }. */
  async decrypted(header, ciphertext) {
    if (header.messageNumber >= ProtocolLimits.counterSentinel) throw new ProtocolError(ErrorCode.malformed, 'message number 2³² − 1 is never used');
    const state = this.clone();
    let messageKey = state.skipped.take(header.ratchetKey, header.messageNumber);
    if (messageKey === null) {
      if (!sameBytes(header.ratchetKey, state.remoteRatchetKey)) {
        await state.skipTo(header.previousChainLength);
        await state.ratchetStep(header.ratchetKey);
      } else if (header.messageNumber < state.receiveCount) {
        throw new ProtocolError(ErrorCode.duplicate, 'message key already used or never stored');
      }
      if (state.receivingChainKey === null) throw new ProtocolError(ErrorCode.state, 'no receiving chain for this ratchet key');
      await state.skipTo(header.messageNumber);
      const step = await stepChain(state.receivingChainKey);
      state.receivingChainKey = step.nextChainKey;
      state.receiveCount += 1;
      messageKey = step.messageKey;
    }
    const plaintext = await decryptMessage(messageKey, ciphertext, concat(state.associatedData, header.encode()), KDFLabels.ratchetMessageKeys);
    return { state, plaintext, messageKey };
  }

  async skipTo(until) {
    if (this.receiveCount + ProtocolLimits.maxSkip < until) throw new ProtocolError(ErrorCode.tooManySkipped, 'too many skipped messages');
    if (this.receivingChainKey === null) return;
    while (this.receiveCount < until) {
      const { messageKey, nextChainKey } = await stepChain(this.receivingChainKey);
      this.skipped.insert(this.remoteRatchetKey, this.receiveCount, messageKey);
      this.receivingChainKey = nextChainKey;
      this.receiveCount += 1;
    }
  }

  async ratchetStep(remoteRatchetKey) {
    this.previousSendCount = this.sendCount;
    this.sendCount = 0;
    this.receiveCount = 0;
    this.remoteRatchetKey = remoteRatchetKey;
    const receiving = await kdfRK(this.rootKey, await dh(this.sendingKeyPair.privateKey, remoteRatchetKey));
    this.sendingKeyPair = await this.keySource.nextKeyPair();
    const sending = await kdfRK(receiving.rootKey, await dh(this.sendingKeyPair.privateKey, remoteRatchetKey));
    this.rootKey = sending.rootKey;
    this.receivingChainKey = receiving.chainKey;
    this.sendingChainKey = sending.chainKey;
  }

  /**
   * Everything but the private key, as text: the vector checks compare it before and after a
   * refused message ("state unchanged", §13).
   */
  fingerprint() {
    const hex = (b) => (b === null ? '-' : toHex(b));
    return [
      hex(this.associatedData), hex(this.rootKey), hex(this.sendingKeyPair.publicKey), hex(this.remoteRatchetKey),
      hex(this.sendingChainKey), hex(this.receivingChainKey), this.sendCount, this.receiveCount, this.previousSendCount,
      [...this.skipped.entries].map(([k, v]) => `${k}=${toHex(v)}`).join(','), this.keySource.index ?? '-',
    ].join('|');
  }

  /** For IndexedDB (structured clone keeps the CryptoKey non-extractable). */
  toStorable() {
    return {
      associatedData: this.associatedData, rootKey: this.rootKey, sendingKeyPair: this.sendingKeyPair,
      remoteRatchetKey: this.remoteRatchetKey, sendingChainKey: this.sendingChainKey, receivingChainKey: this.receivingChainKey,
      sendCount: this.sendCount, receiveCount: this.receiveCount, previousSendCount: this.previousSendCount,
      skipped: [...this.skipped.entries],
    };
  }

  static fromStorable(stored) {
    return new RatchetState({ ...stored, skipped: new SkippedMessageKeys(new Map(stored.skipped)) });
  }
}
