// Random bytes and wiping. JavaScript cannot promise that no copy of a buffer survives (the
// engine may move it), but every secret buffer this code owns is overwritten once it is done.

export function randomBytes(count) {
  const out = new Uint8Array(count);
  // getRandomValues fills at most 65,536 bytes per call.
  for (let offset = 0; offset < count; offset += 65536) globalThis.crypto.getRandomValues(out.subarray(offset, offset + 65536));
  return out;
}

export function wipe(...buffers) {
  for (const buffer of buffers) if (buffer instanceof Uint8Array) buffer.fill(0);
}
