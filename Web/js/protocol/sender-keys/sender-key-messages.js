// Sender-key distribution messages (PROTOCOL.md §7.2) and room messages (§7.3).
import { ByteReader, concat, u32 } from '../byte-coding.js';
import { ProtocolError, ErrorCode } from '../errors.js';
import { IdentityKey } from '../identity-key.js';
import { KDFLabels } from '../kdf-labels.js';
import { ProtocolLimits } from '../protocol-limits.js';
import { WireFormat, prefix, readPrefix } from '../wire-format.js';

const maxCiphertextLength = ProtocolLimits.maxMessagePlaintext + 16 + 32;

export class SenderKeyDistributionMessage {
  constructor({ distributionId, chainId, iteration, chainKey, signingKey }) {
    this.distributionId = distributionId;
    this.chainId = chainId;
    this.iteration = iteration;
    this.chainKey = chainKey;
    /** An IdentityKey: the same validation as identity keys (§2.1). */
    this.signingKey = signingKey;
  }

  encode() {
    return concat(prefix(WireFormat.senderKeyDistribution), this.distributionId, u32(this.chainId), u32(this.iteration), this.chainKey, this.signingKey.bytes);
  }

  static decode(bytes) {
    const reader = new ByteReader(bytes);
    readPrefix(reader, WireFormat.senderKeyDistribution);
    const message = new SenderKeyDistributionMessage({
      distributionId: reader.read(16), chainId: reader.readU32(), iteration: reader.readU32(), chainKey: reader.read(32),
      signingKey: new IdentityKey(reader.read(32)),
    });
    reader.finish();
    if (message.iteration === ProtocolLimits.counterSentinel) throw new ProtocolError(ErrorCode.malformed, 'iteration 2³² − 1 is never used');
    return message;
  }
}

export class SenderKeyMessage {
  constructor({ distributionId, chainId, iteration, ciphertext, signature }) {
    this.distributionId = distributionId;
    this.chainId = chainId;
    this.iteration = iteration;
    this.ciphertext = ciphertext;
    this.signature = signature;
  }

  /** Bytes 0..<26: the associated data of ENCRYPT. */
  static header(distributionId, chainId, iteration) {
    return concat(prefix(WireFormat.senderKeyMessage), distributionId, u32(chainId), u32(iteration));
  }

  static signatureInput(header, ciphertext) {
    return concat(KDFLabels.senderKeyMessageSignature, header, ciphertext);
  }

  get header() {
    return SenderKeyMessage.header(this.distributionId, this.chainId, this.iteration);
  }

  encode() {
    return concat(this.header, this.ciphertext, this.signature);
  }

  static decode(bytes) {
    const reader = new ByteReader(bytes);
    readPrefix(reader, WireFormat.senderKeyMessage);
    const distributionId = reader.read(16);
    const chainId = reader.readU32();
    const iteration = reader.readU32();
    const body = reader.readRest();
    const ciphertextLength = body.length - 64;
    if (ciphertextLength < 48 || ciphertextLength > maxCiphertextLength || (ciphertextLength - 32) % 16 !== 0) {
      throw new ProtocolError(ErrorCode.malformed, `room ciphertext length ${ciphertextLength} out of bounds`);
    }
    return new SenderKeyMessage({ distributionId, chainId, iteration, ciphertext: body.slice(0, ciphertextLength), signature: body.slice(ciphertextLength) });
  }
}
