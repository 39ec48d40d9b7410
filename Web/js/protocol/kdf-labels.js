// Every HKDF info string and KDF constant (PROTOCOL.md §11). A label is part of the wire format:
// changing one is a new protocol version.
import { utf8 } from './byte-coding.js';

export const KDFLabels = Object.freeze({
  x3dh: utf8('SecureChat X3DH v1'),
  rootKey: utf8('SecureChat Double Ratchet root v1'),
  ratchetMessageKeys: utf8('SecureChat Double Ratchet message keys v1'),
  senderKeyMessageKeys: utf8('SecureChat Sender Key message keys v1'),
  attachment: utf8('SecureChat attachment v1'),
  signedPreKeySignature: utf8('SecureChat signed prekey v1'),
  senderKeyMessageSignature: utf8('SecureChat sender key message v1'),
  messageKeySeed: 0x01,
  chainKeySeed: 0x02,
  x3dhPrefix: new Uint8Array(32).fill(0xff),
});
