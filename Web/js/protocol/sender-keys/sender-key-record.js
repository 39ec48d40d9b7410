// The receiving side of one member's room key (PROTOCOL.md §7.2, §7.4): the current chain and up
// to 4 previous ones, each with its skipped keys. Decryption is all-or-nothing.
import { toHex } from '../byte-coding.js';
import { ProtocolError, ErrorCode } from '../errors.js';
import { IdentityKey } from '../identity-key.js';
import { KDFLabels } from '../kdf-labels.js';
import { decryptMessage } from '../message-cipher.js';
import { ProtocolLimits } from '../protocol-limits.js';
import { stepChain } from '../ratchet/chain-key.js';
import { SenderKeyMessage } from './sender-key-messages.js';

function chainFrom(distribution) {
  return {
    chainId: distribution.chainId, signingKey: distribution.signingKey, iteration: distribution.iteration,
    chainKey: distribution.chainKey, skipped: new Map(),
  };
}

const cloneChain = (chain) => ({ ...chain, skipped: new Map(chain.skipped) });

export const sameAddress = (a, b) => a.name === b.name && a.deviceId === b.deviceId;

export class SenderKeyRecord {
  /** `owner`: { name, deviceId } of the device whose pairwise session carried the distribution. */
  constructor({ distributionId, owner, chains }) {
    this.distributionId = distributionId;
    this.owner = owner;
    this.chains = chains;
  }

  static fromDistribution(distribution, owner) {
    return new SenderKeyRecord({ distributionId: distribution.distributionId, owner, chains: [chainFrom(distribution)] });
  }

  clone() {
    return new SenderKeyRecord({ distributionId: this.distributionId, owner: this.owner, chains: this.chains.map(cloneChain) });
  }

  get currentChainId() {
    return this.chains[this.chains.length - 1].chainId;
  }

  /** A rotation (new chain id) from the owner; a chain already held is ignored if its key is the same. */
  add(distribution, sender) {
    if (!sameAddress(sender, this.owner)) throw new ProtocolError(ErrorCode.unknownKey, 'a distribution from another device than its owner');
    if (toHex(distribution.distributionId) !== toHex(this.distributionId)) throw new ProtocolError(ErrorCode.unknownKey, 'another distribution id');
    const known = this.chains.find((chain) => chain.chainId === distribution.chainId);
    if (known) {
      if (!known.signingKey.equals(distribution.signingKey)) throw new ProtocolError(ErrorCode.unknownKey, 'a chain id already held with another signing key');
      return;
    }
    this.chains.push(chainFrom(distribution));
    if (this.chains.length > ProtocolLimits.senderKeyMaxPreviousChains + 1) this.chains.shift();
  }

  /** Decrypts a decoded SenderKeyMessage; this record changes only if it authenticates. */
  async decrypt(message) {
    if (toHex(message.distributionId) !== toHex(this.distributionId)) throw new ProtocolError(ErrorCode.unknownKey, 'another distribution id');
    let position = -1;
    for (let i = this.chains.length - 1; i >= 0; i--) {
      if (this.chains[i].chainId === message.chainId) {
        position = i;
        break;
      }
    }
    if (position < 0) throw new ProtocolError(ErrorCode.unknownKey, `unknown chain ${message.chainId}`);
    const chain = cloneChain(this.chains[position]);
    const header = message.header;
    // The signature first: a forgery costs no key derivation.
    if (!(await chain.signingKey.isValidSignature(message.signature, SenderKeyMessage.signatureInput(header, message.ciphertext)))) {
      throw new ProtocolError(ErrorCode.badSignature, 'the room message signature does not verify');
    }
    const messageKey = await messageKeyFor(message.iteration, chain);
    const plaintext = await decryptMessage(messageKey, message.ciphertext, header, KDFLabels.senderKeyMessageKeys);
    this.chains[position] = chain;
    return plaintext;
  }

  toStorable() {
    return {
      distributionId: this.distributionId, owner: this.owner,
      chains: this.chains.map((chain) => ({ ...chain, signingKey: chain.signingKey.bytes, skipped: [...chain.skipped] })),
    };
  }

  static fromStorable(stored) {
    return new SenderKeyRecord({
      distributionId: stored.distributionId, owner: stored.owner,
      chains: stored.chains.map((chain) => ({ ...chain, signingKey: new IdentityKey(chain.signingKey), skipped: new Map(chain.skipped) })),
    });
  }
}

async function messageKeyFor(iteration, chain) {
  if (iteration >= ProtocolLimits.counterSentinel) throw new ProtocolError(ErrorCode.malformed, 'iteration 2³² − 1 is never used');
  if (iteration < chain.iteration) {
    const key = chain.skipped.get(iteration);
    if (key === undefined) {
      const oldest = chain.skipped.keys().next();
      if (!oldest.done && iteration < oldest.value) throw new ProtocolError(ErrorCode.expired, 'older than every stored key');
      throw new ProtocolError(ErrorCode.duplicate, 'room message already received');
    }
    chain.skipped.delete(iteration);
    return key;
  }
  if (iteration - chain.iteration > ProtocolLimits.senderKeyMaxForward) throw new ProtocolError(ErrorCode.tooManySkipped, 'too far ahead in the sender chain');
  while (chain.iteration < iteration) {
    const { messageKey, nextChainKey } = await stepChain(chain.chainKey);
    chain.skipped.set(chain.iteration, messageKey);
    chain.chainKey = nextChainKey;
    chain.iteration += 1;
  }
  while (chain.skipped.size > ProtocolLimits.senderKeyMaxStoredKeys) chain.skipped.delete(chain.skipped.keys().next().value);
  const { messageKey, nextChainKey } = await stepChain(chain.chainKey);
  chain.chainKey = nextChainKey;
  chain.iteration = iteration + 1;
  return messageKey;
}
