// The sending side of a member's room key (PROTOCOL.md §7.1, §7.5): one chain and its signing
// key. The signing key is a non-extractable WebCrypto key; the chain key is bytes (it must be
// handed to members inside distributions).
import { ProtocolError, ErrorCode, exclusively } from '../errors.js';
import { ed25519Sign, importEd25519Seed } from '../identity-key-pair.js';
import { IdentityKey } from '../identity-key.js';
import { KDFLabels } from '../kdf-labels.js';
import { encryptMessage } from '../message-cipher.js';
import { ProtocolLimits } from '../protocol-limits.js';
import { stepChain } from '../ratchet/chain-key.js';
import { randomBytes } from '../secret-bytes.js';
import { SenderKeyDistributionMessage, SenderKeyMessage } from './sender-key-messages.js';

const subtle = globalThis.crypto.subtle;

/** 5,000 messages or 7 days, whichever comes first (§7.5). */
export const standardRotationPolicy = Object.freeze({ maxMessages: 5000, maxAge: 7 * 24 * 3600 });

function randomChainId() {
  return new DataView(randomBytes(4).buffer).getUint32(0);
}

export class SenderKeyState {
  constructor({ distributionId, chainId, iteration = 0, chainKey, signingKey, signingPublicKey, createdAt, messagesSent = 0 }) {
    this.distributionId = distributionId;
    this.chainId = chainId;
    this.iteration = iteration;
    this.chainKey = chainKey;
    this.signingKey = signingKey;
    this.signingPublicKey = signingPublicKey instanceof IdentityKey ? signingPublicKey : new IdentityKey(signingPublicKey);
    /** Unix seconds. */
    this.createdAt = createdAt;
    this.messagesSent = messagesSent;
  }

  /** A new chain with random chain id, chain key and signing key. */
  static async create({ distributionId = randomBytes(16), createdAt, chainId = randomChainId() }) {
    const pair = await subtle.generateKey({ name: 'Ed25519' }, false, ['sign', 'verify']);
    const signingPublicKey = new Uint8Array(await subtle.exportKey('raw', pair.publicKey));
    return new SenderKeyState({ distributionId, chainId, chainKey: randomBytes(32), signingKey: pair.privateKey, signingPublicKey, createdAt });
  }

  /** A chain from given secrets: test vectors only. */
  static async fromSecrets({ distributionId, chainId, iteration, chainKey, signingSeed, createdAt = 0 }) {
    const { signingKey, publicKey } = await importEd25519Seed(signingSeed);
    return new SenderKeyState({ distributionId, chainId, iteration, chainKey, signingKey, signingPublicKey: publicKey, createdAt });
  }

  get distributionMessage() {
    return new SenderKeyDistributionMessage({
      distributionId: this.distributionId, chainId: this.chainId, iteration: this.iteration, chainKey: this.chainKey, signingKey: this.signingPublicKey,
    });
  }

  needsRotation(policy, now) {
    return this.messagesSent >= policy.maxMessages || now >= this.createdAt + policy.maxAge;
  }

  /** The next chain: same distribution id, new everything else. */
  async rotated(now) {
    let chainId = randomChainId();
    while (chainId === this.chainId) chainId = randomChainId();
    return SenderKeyState.create({ distributionId: this.distributionId, createdAt: now, chainId });
  }

  /** Returns the encoded, signed room message; advances the chain. */
  async encrypt(plaintext) {
    return (await this.encryptReturningKey(plaintext)).message.encode();
  }

  /** One operation at a time: interleaved encryptions would reuse an iteration's key, so that is refused. */
  encryptReturningKey(plaintext) {
    return exclusively(this, 'sender key', () => this.encryptNow(plaintext));
  }

  async encryptNow(plaintext) {
    if (plaintext.length > ProtocolLimits.maxMessagePlaintext) throw new ProtocolError(ErrorCode.malformed, 'plaintext too large');
    if (this.iteration >= ProtocolLimits.counterSentinel) throw new ProtocolError(ErrorCode.state, 'sender chain exhausted: rotate');
    const { messageKey, nextChainKey } = await stepChain(this.chainKey);
    const header = SenderKeyMessage.header(this.distributionId, this.chainId, this.iteration);
    const ciphertext = await encryptMessage(messageKey, plaintext, header, KDFLabels.senderKeyMessageKeys);
    const signature = await ed25519Sign(this.signingKey, SenderKeyMessage.signatureInput(header, ciphertext));
    const message = new SenderKeyMessage({ distributionId: this.distributionId, chainId: this.chainId, iteration: this.iteration, ciphertext, signature });
    this.chainKey = nextChainKey;
    this.iteration += 1;
    this.messagesSent += 1;
    return { message, messageKey };
  }

  toStorable() {
    const { busy, ...fields } = this;
    void busy;
    return { ...fields, signingPublicKey: this.signingPublicKey.bytes };
  }

  static fromStorable(stored) {
    return new SenderKeyState(stored);
  }
}
