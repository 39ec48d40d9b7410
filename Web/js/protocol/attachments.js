// Attachment encryption (PROTOCOL.md §9): the STREAM construction over AES-256-GCM in chunks, so
// memory stays one chunk whatever the file's size. The digest (SHA-256 of the whole stream) and
// the size travel inside the end-to-end encrypted message.
import { ByteReader, concat, u32 } from './byte-coding.js';
import { constantTimeEqual } from './constant-time.js';
import { ProtocolError, ErrorCode } from './errors.js';
import { hkdf } from './hmac-sha256.js';
import { KDFLabels } from './kdf-labels.js';
import { ProtocolLimits } from './protocol-limits.js';
import { randomBytes, wipe } from './secret-bytes.js';
import { SHA256Stream } from './sha256-stream.js';
import { WireFormat, prefix, readPrefix } from './wire-format.js';

const subtle = globalThis.crypto.subtle;
const headerLength = 22;
const tagLength = 16;

async function deriveKeys(key, salt) {
  const okm = await hkdf(key, { salt, info: KDFLabels.attachment, length: 39 });
  const aes = await subtle.importKey('raw', okm.subarray(0, 32), 'AES-GCM', false, ['encrypt', 'decrypt']);
  const noncePrefix = okm.slice(32, 39);
  wipe(okm);
  return { aes, noncePrefix };
}

function nonce(noncePrefix, index, final) {
  if (index >= ProtocolLimits.maxAttachmentChunks) throw new ProtocolError(ErrorCode.malformed, 'more than 2³² − 1 chunks');
  return concat(noncePrefix, u32(index), new Uint8Array([final ? 1 : 0]));
}

export class AttachmentEncryptor {
  static headerLength = headerLength;
  static tagLength = tagLength;

  /** `key`: 32 random bytes (one per file). `salt` is random unless a test vector gives it. */
  constructor(key, { salt = randomBytes(16), chunkSize = ProtocolLimits.defaultAttachmentChunkSize } = {}) {
    if (chunkSize < ProtocolLimits.minAttachmentChunkSize || chunkSize > ProtocolLimits.maxAttachmentChunkSize) throw new RangeError('chunk size out of range');
    this.header = concat(prefix(WireFormat.attachmentStream), u32(chunkSize), salt);
    this.chunkSize = chunkSize;
    this.keys = deriveKeys(key, salt);
    this.pending = new Uint8Array(chunkSize);
    this.pendingLength = 0;
    this.chunkIndex = 0;
    this.headerSent = false;
    this.digest = new SHA256Stream();
  }

  /** The stream length for a file of `plaintextSize` bytes (what an upload announces first). */
  static streamLength(plaintextSize, chunkSize = ProtocolLimits.defaultAttachmentChunkSize) {
    const chunks = Math.max(1, Math.ceil(plaintextSize / chunkSize));
    return headerLength + plaintextSize + chunks * tagLength;
  }

  /** Feeds plaintext; returns the ciphertext ready so far. A chunk is sealed once more data follows it. */
  async update(plaintext) {
    const output = [this.takeHeader()];
    let offset = 0;
    while (offset < plaintext.length) {
      if (this.pendingLength === this.chunkSize) {
        output.push(await this.seal(false));
      }
      const take = Math.min(this.chunkSize - this.pendingLength, plaintext.length - offset);
      this.pending.set(plaintext.subarray(offset, offset + take), this.pendingLength);
      this.pendingLength += take;
      offset += take;
    }
    return this.emit(concat(...output));
  }

  /** Seals the final chunk: { ciphertext, digest }. */
  async finalize() {
    const ciphertext = this.emit(concat(this.takeHeader(), await this.seal(true)));
    wipe(this.pending);
    return { ciphertext, digest: this.digest.finalize() };
  }

  takeHeader() {
    if (this.headerSent) return new Uint8Array(0);
    this.headerSent = true;
    return this.header;
  }

  async seal(final) {
    const { aes, noncePrefix } = await this.keys;
    const sealed = new Uint8Array(await subtle.encrypt(
      { name: 'AES-GCM', iv: nonce(noncePrefix, this.chunkIndex, final), additionalData: this.header, tagLength: 128 },
      aes, this.pending.subarray(0, this.pendingLength)));
    this.chunkIndex += 1;
    this.pendingLength = 0;
    return sealed;
  }

  emit(bytes) {
    this.digest.update(bytes);
    return bytes;
  }
}

export class AttachmentDecryptor {
  /** `expectedDigest` and `expectedSize` come from the message that carried the attachment. */
  constructor(key, { expectedDigest, expectedSize }) {
    this.key = key;
    this.expectedDigest = expectedDigest;
    this.expectedSize = expectedSize;
    this.pending = new Uint8Array(0);
    this.header = null;
    this.chunkIndex = 0;
    this.plaintextSize = 0;
    this.digest = new SHA256Stream();
    this.failure = null;
  }

  /** Feeds ciphertext; returns the plaintext of every chunk known not to be the last one. */
  async update(ciphertext) {
    if (this.failure) throw this.failure;
    try {
      this.digest.update(ciphertext);
      this.pending = concat(this.pending, ciphertext);
      if (this.header === null) {
        if (this.pending.length < headerLength) return new Uint8Array(0);
        await this.readHeader();
      }
      const sealedChunk = this.chunkSize + tagLength;
      const output = [];
      let consumed = 0;
      while (this.pending.length - consumed > sealedChunk) {
        output.push(await this.open(this.pending.subarray(consumed, consumed + sealedChunk), false));
        consumed += sealedChunk;
      }
      if (consumed > 0) this.pending = this.pending.slice(consumed);
      if (this.plaintextSize > this.expectedSize) throw new ProtocolError(ErrorCode.authentication, 'the attachment is larger than stated');
      return concat(...output);
    } catch (error) {
      this.failure = error;
      throw error;
    }
  }

  /** Opens the final chunk and checks digest and size; only then is the file accepted. */
  async finalize() {
    if (this.failure) throw this.failure;
    if (this.header === null || this.pending.length < tagLength) throw new ProtocolError(ErrorCode.malformed, 'the attachment stream is truncated');
    let output;
    try {
      output = await this.open(this.pending, true);
    } catch {
      // A stream cut at a chunk boundary ends with a chunk sealed as not final.
      throw new ProtocolError(ErrorCode.malformed, 'the attachment stream is truncated or tampered');
    }
    this.pending = new Uint8Array(0);
    if (!constantTimeEqual(this.digest.finalize(), this.expectedDigest)) throw new ProtocolError(ErrorCode.authentication, 'the attachment digest differs');
    if (this.plaintextSize !== this.expectedSize) throw new ProtocolError(ErrorCode.authentication, 'the attachment size differs');
    return output;
  }

  async readHeader() {
    const header = this.pending.slice(0, headerLength);
    const reader = new ByteReader(header);
    readPrefix(reader, WireFormat.attachmentStream);
    const chunkSize = reader.readU32();
    if (chunkSize < ProtocolLimits.minAttachmentChunkSize || chunkSize > ProtocolLimits.maxAttachmentChunkSize) {
      throw new ProtocolError(ErrorCode.malformed, 'attachment chunk size out of range');
    }
    this.chunkSize = chunkSize;
    this.keys = await deriveKeys(this.key, reader.read(16));
    this.header = header;
    this.pending = this.pending.slice(headerLength);
  }

  async open(sealed, final) {
    const { aes, noncePrefix } = this.keys;
    let plaintext;
    try {
      plaintext = new Uint8Array(await subtle.decrypt(
        { name: 'AES-GCM', iv: nonce(noncePrefix, this.chunkIndex, final), additionalData: this.header, tagLength: 128 }, aes, sealed));
    } catch {
      throw new ProtocolError(ErrorCode.authentication, `attachment chunk ${this.chunkIndex} does not authenticate`);
    }
    this.chunkIndex += 1;
    this.plaintextSize += plaintext.length;
    return plaintext;
  }
}
