/// A point on edwards25519 in extended coordinates (X : Y : Z : T), x = X/Z, y = Y/Z, xy = T/Z.
///
/// Used only to validate Ed25519 public keys before converting them to X25519 form, so all
/// arithmetic is variable-time (the inputs are public).
struct EdwardsPoint: Sendable {
    var x: FieldElement
    var y: FieldElement
    var z: FieldElement
    var t: FieldElement

    static let identity = EdwardsPoint(x: .zero, y: .one, z: .one, t: .zero)

    /// d = −121665 / 121666.
    static let d: FieldElement = {
        let numerator = -FieldElement(121_665, 0, 0, 0, 0)
        return numerator * FieldElement(121_666, 0, 0, 0, 0).inverse
    }()

    static let twiceD: FieldElement = d + d

    /// sqrt(−1) = 2^((p−1)/4).
    static let squareRootOfMinusOne: FieldElement = {
        // (p − 1) / 4 = 2^253 − 5, little-endian.
        var exponent = [UInt8](repeating: 0xff, count: 32)
        exponent[0] = 0xfb
        exponent[31] = 0x1f
        return FieldElement(2, 0, 0, 0, 0).power(littleEndianExponent: exponent)
    }()

    /// The prime order of the main subgroup, ℓ = 2^252 + 27742317777372353535851937790883648493, little-endian.
    static let groupOrder: [UInt8] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10,
    ]

    /// Decodes a compressed point as RFC 8032 section 5.1.3 does, rejecting y ≥ p,
    /// points off the curve, and the non-canonical encoding of x = 0 with the sign bit set.
    init?(compressed bytes: [UInt8]) {
        guard bytes.count == 32, let y = FieldElement(canonicalBytes: bytes) else { return nil }
        let signBit = bytes[31] >> 7 == 1
        let ySquared = y.squared
        let u = ySquared - .one
        let v = Self.d * ySquared + .one
        // x = u·v³·(u·v⁷)^((p−5)/8)
        let v3 = v.squared * v
        let v7 = v3.squared * v
        var x = u * v3 * (u * v7).powerPMinus5Over8
        let check = v * x.squared
        if check == u {
            // x is a square root of u/v.
        } else if check == -u {
            x = x * Self.squareRootOfMinusOne
        } else {
            return nil
        }
        if x.isZero && signBit { return nil }
        if x.isNegative != signBit { x = -x }
        self.init(x: x, y: y, z: .one, t: x * y)
    }

    init(x: FieldElement, y: FieldElement, z: FieldElement, t: FieldElement) {
        self.x = x
        self.y = y
        self.z = z
        self.t = t
    }

    /// The affine y coordinate.
    var affineY: FieldElement { y * z.inverse }

    var isIdentity: Bool { x.isZero && (y - z).isZero }

    /// Complete addition for a = −1 twisted Edwards curves (Hisil–Wong–Carter–Dawson 2008, "add-2008-hwcd-3").
    static func + (p: EdwardsPoint, q: EdwardsPoint) -> EdwardsPoint {
        let a = (p.y - p.x) * (q.y - q.x)
        let b = (p.y + p.x) * (q.y + q.x)
        let c = p.t * twiceD * q.t
        let zz = p.z * q.z
        let d = zz + zz
        let e = b - a, f = d - c, g = d + c, h = b + a
        return EdwardsPoint(x: e * f, y: g * h, z: f * g, t: e * h)
    }

    /// 2·P for a = −1 (Hisil–Wong–Carter–Dawson 2008, "dbl-2008-hwcd"): 4 multiplications and 4 squarings.
    var doubled: EdwardsPoint {
        let a = x.squared
        let b = y.squared
        let zz = z.squared
        let c = zz + zz
        let e = (x + y).squared - a - b
        let g = b - a          // D + B with D = −A
        let f = g - c
        let h = -a - b         // D − B
        return EdwardsPoint(x: e * f, y: g * h, z: f * g, t: e * h)
    }

    /// self multiplied by a little-endian scalar (public scalars only).
    func multiplied(byLittleEndian scalar: [UInt8]) -> EdwardsPoint {
        var result = EdwardsPoint.identity
        var started = false
        for byte in scalar.reversed() {
            for bit in stride(from: 7, through: 0, by: -1) {
                if started { result = result.doubled }
                if (byte >> UInt8(bit)) & 1 == 1 {
                    result = started ? result + self : self
                    started = true
                }
            }
        }
        return result
    }

    /// Whether 8·P is the identity: one of the eight points of small order.
    var hasSmallOrder: Bool {
        doubled.doubled.doubled.isIdentity
    }

    /// Whether ℓ·P is the identity: P lies in the prime-order subgroup (or is the identity).
    var isInPrimeOrderSubgroup: Bool {
        multiplied(byLittleEndian: Self.groupOrder).isIdentity
    }
}
