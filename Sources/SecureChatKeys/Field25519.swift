/// An element of GF(2^255 − 19) in five 51-bit limbs.
///
/// Only public values pass through this type (Ed25519 public keys on their way to their
/// X25519 form), so its operations are variable-time by design. Limbs stay below 2^52
/// between operations; `canonicalBytes` performs the full reduction.
struct FieldElement: Equatable, Sendable {
    private static let mask51: UInt64 = (1 << 51) - 1

    var limbs: (UInt64, UInt64, UInt64, UInt64, UInt64)

    init(_ l0: UInt64, _ l1: UInt64, _ l2: UInt64, _ l3: UInt64, _ l4: UInt64) {
        limbs = (l0, l1, l2, l3, l4)
    }

    static let zero = FieldElement(0, 0, 0, 0, 0)
    static let one = FieldElement(1, 0, 0, 0, 0)

    /// The field prime 2^255 − 19, little-endian.
    static let primeBytes: [UInt8] = [0xed] + [UInt8](repeating: 0xff, count: 30) + [0x7f]

    /// Parses 32 little-endian bytes, ignoring bit 255. Returns nil when the value is not below p.
    init?(canonicalBytes bytes: [UInt8]) {
        precondition(bytes.count == 32, "a field element is 32 bytes")
        var value = bytes
        value[31] &= 0x7f
        // Compare with p from the most significant byte down.
        var isBelowPrime = false
        for index in stride(from: 31, through: 0, by: -1) where value[index] != Self.primeBytes[index] {
            isBelowPrime = value[index] < Self.primeBytes[index]
            break
        }
        guard isBelowPrime else { return nil }
        func load(_ offset: Int) -> UInt64 {
            var word: UInt64 = 0
            for index in 0..<8 where offset + index < 32 {
                word |= UInt64(value[offset + index]) << UInt64(8 * index)
            }
            return word
        }
        self.init(
            load(0) & Self.mask51,
            (load(6) >> 3) & Self.mask51,
            (load(12) >> 6) & Self.mask51,
            (load(19) >> 1) & Self.mask51,
            (load(25) >> 4) & Self.mask51
        )
    }

    /// The fully reduced value as 32 little-endian bytes.
    var canonicalBytes: [UInt8] {
        var element = self.carried()
        // After carrying the value is below 2^255 + small; subtract p when it is at least p.
        var (l0, l1, l2, l3, l4) = element.limbs
        var quotient = (l0 &+ 19) >> 51
        quotient = (l1 &+ quotient) >> 51
        quotient = (l2 &+ quotient) >> 51
        quotient = (l3 &+ quotient) >> 51
        quotient = (l4 &+ quotient) >> 51
        l0 &+= 19 &* quotient
        l1 &+= l0 >> 51; l0 &= Self.mask51
        l2 &+= l1 >> 51; l1 &= Self.mask51
        l3 &+= l2 >> 51; l2 &= Self.mask51
        l4 &+= l3 >> 51; l3 &= Self.mask51
        l4 &= Self.mask51
        element.limbs = (l0, l1, l2, l3, l4)
        var bytes = [UInt8](repeating: 0, count: 32)
        var accumulator: UInt64 = 0
        var bitsHeld: UInt64 = 0
        var byteIndex = 0
        for limb in [l0, l1, l2, l3, l4] {
            // Feed 51 bits in two halves so the accumulator never overflows.
            for (part, width) in [(limb & ((1 << 26) - 1), UInt64(26)), (limb >> 26, UInt64(25))] {
                accumulator |= part << bitsHeld
                bitsHeld += width
                while bitsHeld >= 8, byteIndex < 32 {
                    bytes[byteIndex] = UInt8(truncatingIfNeeded: accumulator)
                    accumulator >>= 8
                    bitsHeld -= 8
                    byteIndex += 1
                }
            }
        }
        if byteIndex < 32 { bytes[byteIndex] = UInt8(truncatingIfNeeded: accumulator) }
        return bytes
    }

    var isZero: Bool { canonicalBytes.allSatisfy { $0 == 0 } }

    /// The low bit of the canonical value: the "sign" of RFC 8032.
    var isNegative: Bool { canonicalBytes[0] & 1 == 1 }

    static func == (lhs: FieldElement, rhs: FieldElement) -> Bool {
        lhs.canonicalBytes == rhs.canonicalBytes
    }

    private func carried() -> FieldElement {
        var (l0, l1, l2, l3, l4) = limbs
        l1 &+= l0 >> 51; l0 &= Self.mask51
        l2 &+= l1 >> 51; l1 &= Self.mask51
        l3 &+= l2 >> 51; l2 &= Self.mask51
        l4 &+= l3 >> 51; l3 &= Self.mask51
        l0 &+= 19 &* (l4 >> 51); l4 &= Self.mask51
        l1 &+= l0 >> 51; l0 &= Self.mask51
        return FieldElement(l0, l1, l2, l3, l4)
    }

    static func + (lhs: FieldElement, rhs: FieldElement) -> FieldElement {
        FieldElement(
            lhs.limbs.0 &+ rhs.limbs.0, lhs.limbs.1 &+ rhs.limbs.1, lhs.limbs.2 &+ rhs.limbs.2,
            lhs.limbs.3 &+ rhs.limbs.3, lhs.limbs.4 &+ rhs.limbs.4
        ).carried()
    }

    static func - (lhs: FieldElement, rhs: FieldElement) -> FieldElement {
        // Add 4p first so that no limb goes negative for inputs below 2^53.
        let fourP0: UInt64 = 0x1F_FFFF_FFFF_FFB4
        let fourP: UInt64 = 0x1F_FFFF_FFFF_FFFC
        let right = rhs.carried()
        return FieldElement(
            lhs.limbs.0 &+ fourP0 &- right.limbs.0, lhs.limbs.1 &+ fourP &- right.limbs.1,
            lhs.limbs.2 &+ fourP &- right.limbs.2, lhs.limbs.3 &+ fourP &- right.limbs.3,
            lhs.limbs.4 &+ fourP &- right.limbs.4
        ).carried()
    }

    static prefix func - (value: FieldElement) -> FieldElement {
        .zero - value
    }

    /// Limbs stay below 2^52 between operations (every operation ends with a carry), so products
    /// fit the 128-bit accumulators without carrying the inputs again.
    static func * (lhs: FieldElement, rhs: FieldElement) -> FieldElement {
        let a = lhs.limbs
        let b = rhs.limbs
        let b1x19 = b.1 &* 19, b2x19 = b.2 &* 19, b3x19 = b.3 &* 19, b4x19 = b.4 &* 19

        var r0 = WideAccumulator(), r1 = WideAccumulator(), r2 = WideAccumulator()
        var r3 = WideAccumulator(), r4 = WideAccumulator()
        r0.add(a.0, b.0); r0.add(a.1, b4x19); r0.add(a.2, b3x19); r0.add(a.3, b2x19); r0.add(a.4, b1x19)
        r1.add(a.0, b.1); r1.add(a.1, b.0); r1.add(a.2, b4x19); r1.add(a.3, b3x19); r1.add(a.4, b2x19)
        r2.add(a.0, b.2); r2.add(a.1, b.1); r2.add(a.2, b.0); r2.add(a.3, b4x19); r2.add(a.4, b3x19)
        r3.add(a.0, b.3); r3.add(a.1, b.2); r3.add(a.2, b.1); r3.add(a.3, b.0); r3.add(a.4, b4x19)
        r4.add(a.0, b.4); r4.add(a.1, b.3); r4.add(a.2, b.2); r4.add(a.3, b.1); r4.add(a.4, b.0)
        return reduce(&r0, &r1, &r2, &r3, &r4)
    }

    /// self², with the symmetric products computed once (15 multiplications instead of 25).
    var squared: FieldElement {
        let a = limbs
        let a0x2 = a.0 &* 2, a1x2 = a.1 &* 2, a2x2 = a.2 &* 2, a3x2 = a.3 &* 2
        let a3x19 = a.3 &* 19, a4x19 = a.4 &* 19
        var r0 = WideAccumulator(), r1 = WideAccumulator(), r2 = WideAccumulator()
        var r3 = WideAccumulator(), r4 = WideAccumulator()
        r0.add(a.0, a.0); r0.add(a1x2, a4x19); r0.add(a2x2, a3x19)
        r1.add(a0x2, a.1); r1.add(a2x2, a4x19); r1.add(a.3, a3x19)
        r2.add(a0x2, a.2); r2.add(a.1, a.1); r2.add(a3x2, a4x19)
        r3.add(a0x2, a.3); r3.add(a1x2, a.2); r3.add(a.4, a4x19)
        r4.add(a0x2, a.4); r4.add(a1x2, a.3); r4.add(a.2, a.2)
        return Self.reduce(&r0, &r1, &r2, &r3, &r4)
    }

    private static func reduce(
        _ r0: inout WideAccumulator, _ r1: inout WideAccumulator, _ r2: inout WideAccumulator,
        _ r3: inout WideAccumulator, _ r4: inout WideAccumulator
    ) -> FieldElement {
        r1.add(r0.shiftedOut51())
        r2.add(r1.shiftedOut51())
        r3.add(r2.shiftedOut51())
        r4.add(r3.shiftedOut51())
        let carry = r4.shiftedOut51()
        var l0 = r0.low &+ 19 &* carry
        var l1 = r1.low
        l1 &+= l0 >> 51; l0 &= mask51
        return FieldElement(l0, l1, r2.low, r3.low, r4.low)
    }

    /// self^(2^count), by repeated squaring.
    func squared(times count: Int) -> FieldElement {
        var result = self
        for _ in 0..<count { result = result.squared }
        return result
    }

    /// self^(2^250 − 1) and self^11, the shared start of the inversion and square-root chains.
    private var power2To250Minus1AndEleven: (FieldElement, FieldElement) {
        let z2 = squared
        let z9 = self * z2.squared(times: 2)
        let z11 = z2 * z9
        let z2To5Minus1 = z9 * z11.squared                              // 2^5 − 1
        let z2To10Minus1 = z2To5Minus1.squared(times: 5) * z2To5Minus1
        let z2To20Minus1 = z2To10Minus1.squared(times: 10) * z2To10Minus1
        let z2To40Minus1 = z2To20Minus1.squared(times: 20) * z2To20Minus1
        let z2To50Minus1 = z2To40Minus1.squared(times: 10) * z2To10Minus1
        let z2To100Minus1 = z2To50Minus1.squared(times: 50) * z2To50Minus1
        let z2To200Minus1 = z2To100Minus1.squared(times: 100) * z2To100Minus1
        let z2To250Minus1 = z2To200Minus1.squared(times: 50) * z2To50Minus1
        return (z2To250Minus1, z11)
    }

    /// self^(2^252 − 3) = self^((p − 5) / 8), for square roots (254 squarings, 11 multiplications).
    var powerPMinus5Over8: FieldElement {
        power2To250Minus1AndEleven.0.squared(times: 2) * self
    }


    /// self^exponent, the exponent given as 32 little-endian bytes (public exponents only).
    func power(littleEndianExponent exponent: [UInt8]) -> FieldElement {
        var result = FieldElement.one
        for byte in exponent.reversed() {
            for bit in stride(from: 7, through: 0, by: -1) {
                result = result.squared
                if (byte >> UInt8(bit)) & 1 == 1 { result = result * self }
            }
        }
        return result
    }

    /// The multiplicative inverse (Fermat: self^(p − 2) = self^(2^255 − 21)); zero maps to zero.
    var inverse: FieldElement {
        let (z2To250Minus1, z11) = power2To250Minus1AndEleven
        return z2To250Minus1.squared(times: 5) * z11
    }
}

/// A 128-bit sum of 64×64-bit products, kept as two words so no 128-bit integer type is needed.
private struct WideAccumulator {
    var high: UInt64 = 0
    var low: UInt64 = 0

    mutating func add(_ a: UInt64, _ b: UInt64) {
        let product = a.multipliedFullWidth(by: b)
        let (sum, overflow) = low.addingReportingOverflow(product.low)
        low = sum
        high &+= product.high &+ (overflow ? 1 : 0)
    }

    mutating func add(_ value: UInt64) {
        let (sum, overflow) = low.addingReportingOverflow(value)
        low = sum
        high &+= overflow ? 1 : 0
    }

    /// Removes and returns everything above bit 51, leaving the low 51 bits.
    mutating func shiftedOut51() -> UInt64 {
        let carry = (high << 13) | (low >> 51)
        low &= (1 << 51) - 1
        high = 0
        return carry
    }
}
