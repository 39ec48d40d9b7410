// Arithmetic modulo p = 2²⁵⁵ − 19 on BigInts. Used on public keys only (validation and the
// Ed25519 → X25519 conversion of PROTOCOL.md §3), so variable time is acceptable: nothing secret
// ever reaches this file.

export const p = (1n << 255n) - 19n;

export function mod(a) {
  const r = a % p;
  return r < 0n ? r + p : r;
}

export function pow(base, exponent) {
  let result = 1n;
  let b = mod(base);
  let e = exponent;
  while (e > 0n) {
    if (e & 1n) result = (result * b) % p;
    b = (b * b) % p;
    e >>= 1n;
  }
  return result;
}

export function invert(a) {
  return pow(a, p - 2n);
}

/** The little-endian integer of 32 bytes (all 256 bits). */
export function fromBytesLE(bytes) {
  let value = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) value = (value << 8n) | BigInt(bytes[i]);
  return value;
}

export function toBytesLE(value) {
  const out = new Uint8Array(32);
  let v = value;
  for (let i = 0; i < 32; i++) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

export const sqrtMinusOne = pow(2n, (p - 1n) / 4n);

/** A square root of a, or null when a is not a square (p ≡ 5 mod 8). */
export function sqrt(a) {
  const x = pow(a, (p + 3n) / 8n);
  if (mod(x * x) === mod(a)) return x;
  const y = mod(x * sqrtMinusOne);
  if (mod(y * y) === mod(a)) return y;
  return null;
}
