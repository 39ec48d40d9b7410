// Points of edwards25519 in extended coordinates (X:Y:Z:T), for validating Ed25519 public keys
// (PROTOCOL.md §2.1) and converting them to X25519 (§3). Public data only.
import { p, mod, invert, sqrt, fromBytesLE } from './field25519.js';

/** d = −121665/121666. */
export const d = mod(-121665n * invert(121666n));
/** The order of the prime-order subgroup. */
export const groupOrder = (1n << 252n) + 27742317777372353535851937790883648493n;

export class EdwardsPoint {
  constructor(X, Y, Z, T) {
    this.X = X;
    this.Y = Y;
    this.Z = Z;
    this.T = T;
  }

  static identity = new EdwardsPoint(0n, 1n, 1n, 0n);

  /**
   * Decodes 32 bytes as RFC 8032 §5.1.3 with the canonicity rules of §2.1: y < p, and x = 0
   * only with the sign bit clear. Returns null when the bytes are not a point.
   */
  static decode(bytes) {
    if (bytes.length !== 32) return null;
    const value = fromBytesLE(bytes);
    const sign = value >> 255n;
    const y = value & ((1n << 255n) - 1n);
    if (y >= p) return null;
    const y2 = mod(y * y);
    let x = sqrt(mod((y2 - 1n) * invert(mod(d * y2 + 1n))));
    if (x === null) return null;
    if (x === 0n && sign === 1n) return null;
    if ((x & 1n) !== sign) x = p - x;
    return new EdwardsPoint(x, y, 1n, mod(x * y));
  }

  /** RFC 8032 §5.1.4: complete, so it also doubles and handles the identity. */
  add(other) {
    const A = mod((this.Y - this.X) * (other.Y - other.X));
    const B = mod((this.Y + this.X) * (other.Y + other.X));
    const C = mod(2n * d * this.T * other.T);
    const D = mod(2n * this.Z * other.Z);
    const E = B - A;
    const F = D - C;
    const G = D + C;
    const H = B + A;
    return new EdwardsPoint(mod(E * F), mod(G * H), mod(F * G), mod(E * H));
  }

  /** Double-and-add: variable time, acceptable for public points only. */
  multiply(scalar) {
    let result = EdwardsPoint.identity;
    let addend = this;
    let k = scalar;
    while (k > 0n) {
      if (k & 1n) result = result.add(addend);
      addend = addend.add(addend);
      k >>= 1n;
    }
    return result;
  }

  get isIdentity() {
    return mod(this.X) === 0n && mod(this.Y - this.Z) === 0n;
  }

  /** The affine y coordinate. */
  get y() {
    return mod(this.Y * invert(this.Z));
  }
}
