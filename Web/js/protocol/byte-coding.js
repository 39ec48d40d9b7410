// Byte strings are Uint8Array throughout. Fixed-width integers are big-endian (PROTOCOL.md,
// conventions); decoding is strict and never reads past its input.
import { ProtocolError, ErrorCode } from './errors.js';

export function concat(...parts) {
  let length = 0;
  for (const part of parts) length += part.length;
  const out = new Uint8Array(length);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

export function u16(value) {
  return new Uint8Array([(value >>> 8) & 0xff, value & 0xff]);
}

export function u32(value) {
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) throw new RangeError('u32 out of range');
  return new Uint8Array([value >>> 24, (value >>> 16) & 0xff, (value >>> 8) & 0xff, value & 0xff]);
}

/** Numbers up to 2⁵³ − 1 or BigInts up to 2⁶⁴ − 1. */
export function u64(value) {
  let big = BigInt(value);
  if (big < 0n || big > 0xffffffffffffffffn) throw new RangeError('u64 out of range');
  const out = new Uint8Array(8);
  for (let i = 7; i >= 0; i--) {
    out[i] = Number(big & 0xffn);
    big >>= 8n;
  }
  return out;
}

export function utf8(text) {
  return new TextEncoder().encode(text);
}

export function fromUTF8(bytes) {
  return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
}

const hexDigits = '0123456789abcdef';

export function toHex(bytes) {
  let out = '';
  for (const byte of bytes) out += hexDigits[byte >> 4] + hexDigits[byte & 15];
  return out;
}

export function fromHex(text) {
  if (typeof text !== 'string' || text.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(text)) {
    throw new ProtocolError(ErrorCode.malformed, 'not a hex string');
  }
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.substr(i * 2, 2), 16);
  return out;
}

/** Standard base64 with padding (RFC 4648 §4), as the server's JSON and Swift's Data use. */
export function toBase64(bytes) {
  let binary = '';
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

export function fromBase64(text) {
  if (typeof text !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) {
    throw new ProtocolError(ErrorCode.malformed, 'not standard base64');
  }
  const binary = atob(text);
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return out;
}

/** base64url without padding (RFC 4648 §5): message ids. */
export function toBase64URL(bytes) {
  return toBase64(bytes).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

export function fromBase64URL(text) {
  if (typeof text !== 'string' || !/^[A-Za-z0-9_-]*$/.test(text) || text.length % 4 === 1) {
    throw new ProtocolError(ErrorCode.malformed, 'not base64url');
  }
  const padded = text.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (text.length % 4)) % 4);
  return fromBase64(padded);
}

/** Reads fixed-width big-endian fields, refusing truncation and leftovers. */
export class ByteReader {
  constructor(bytes) {
    this.bytes = bytes;
    this.offset = 0;
  }

  get remaining() {
    return this.bytes.length - this.offset;
  }

  read(count) {
    if (count < 0 || this.offset + count > this.bytes.length) {
      throw new ProtocolError(ErrorCode.malformed, `truncated: needed ${count}, available ${this.remaining}`);
    }
    const out = this.bytes.slice(this.offset, this.offset + count);
    this.offset += count;
    return out;
  }

  readByte() {
    return this.read(1)[0];
  }

  readU16() {
    const b = this.read(2);
    return (b[0] << 8) | b[1];
  }

  readU32() {
    const b = this.read(4);
    return ((b[0] << 24) >>> 0) + (b[1] << 16) + (b[2] << 8) + b[3];
  }

  /** As a BigInt: creation times and counters may exceed 2⁵³ in hostile input. */
  readU64() {
    const b = this.read(8);
    let value = 0n;
    for (const byte of b) value = (value << 8n) | BigInt(byte);
    return value;
  }

  readFlag() {
    const flag = this.readByte();
    if (flag > 1) throw new ProtocolError(ErrorCode.malformed, 'flag byte other than 0x00 or 0x01');
    return flag === 1;
  }

  readRest() {
    return this.read(this.remaining);
  }

  finish() {
    if (this.remaining !== 0) throw new ProtocolError(ErrorCode.malformed, `${this.remaining} bytes left over`);
  }
}
