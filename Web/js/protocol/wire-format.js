// The two leading bytes of every binary encoding (PROTOCOL.md §2).
import { ProtocolError, ErrorCode } from './errors.js';

export const WireFormat = Object.freeze({
  version: 0x01,
  ratchetMessage: 0x01,
  preKeyMessage: 0x02,
  senderKeyMessage: 0x03,
  senderKeyDistribution: 0x04,
  preKeyBundle: 0x10,
  signedPreKey: 0x11,
  oneTimePreKey: 0x12,
  attachmentStream: 0x20,
});

export function prefix(type) {
  return new Uint8Array([WireFormat.version, type]);
}

export function readPrefix(reader, type) {
  const version = reader.readByte();
  if (version !== WireFormat.version) throw new ProtocolError(ErrorCode.malformed, `unsupported version ${version}`);
  const found = reader.readByte();
  if (found !== type) throw new ProtocolError(ErrorCode.malformed, `unexpected type ${found}, expected ${type}`);
}
