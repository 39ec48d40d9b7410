// Hides a message's exact length inside the encryption (PROTOCOL.md §14.1): the plaintext, 0x80,
// then zeros up to the next multiple of 160 bytes.
import { ProtocolError, ErrorCode } from './errors.js';

export const MessagePadding = Object.freeze({
  blockSize: 160,

  pad(plaintext) {
    const padded = new Uint8Array((Math.floor(plaintext.length / 160) + 1) * 160);
    padded.set(plaintext);
    padded[plaintext.length] = 0x80;
    return padded;
  },

  unpad(padded) {
    let marker = padded.length - 1;
    while (marker >= 0 && padded[marker] === 0) marker--;
    if (marker < 0 || padded[marker] !== 0x80) throw new ProtocolError(ErrorCode.malformed, 'no padding marker');
    return padded.slice(0, marker);
  },
});
