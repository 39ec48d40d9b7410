import Crypto
import Foundation
import SecureChatTestSupport
import Testing
@testable import SecureChatKeys

@Suite("Identity keys and their X25519 form")
struct IdentityKeyTests {
    /// libsodium's crypto_sign_ed25519_sk_to_curve25519, written out for the test.
    static func x25519PrivateKey(seed: some DataProtocol) -> Curve25519.KeyAgreement.PrivateKey {
        var scalar = Array(SHA512.hash(data: Array(seed)).prefix(32))
        scalar[0] &= 0xf8
        scalar[31] &= 0x7f
        scalar[31] |= 0x40
        return try! Curve25519.KeyAgreement.PrivateKey(rawRepresentation: scalar)
    }

    @Test("converted public key equals the public key of the converted private key, for 2000 random keys")
    func conversionCommutes() throws {
        // Given 2000 random Ed25519 identities
        for _ in 0..<2000 {
            let signing = Curve25519.Signing.PrivateKey()
            // When both halves are converted
            let identity = try IdentityKey(rawRepresentation: signing.publicKey.rawRepresentation)
            let derivedPrivate = Self.x25519PrivateKey(seed: signing.rawRepresentation)
            // Then the public conversion matches the private one
            #expect(identity.agreementKey.rawRepresentation == Array(derivedPrivate.publicKey.rawRepresentation))
        }
    }

    @Test("libsodium's outputs are reproduced and its rejections repeated")
    func libsodiumVectors() throws {
        struct File: Decodable {
            struct Case: Decodable { let ed25519_seed, ed25519_public, x25519_private, x25519_public: String }
            struct Invalid: Decodable { let ed25519_public, reason: String }
            let schema: String
            let cases: [Case]
            let invalid_public_keys: [Invalid]
        }
        let data = try Data(contentsOf: vectorsDirectory.appendingPathComponent("identity-libsodium.json"))
        let file = try JSONDecoder().decode(File.self, from: data)
        #expect(file.schema == "securechat-identity-vectors/1")
        #expect(file.cases.count >= 64)
        for vector in file.cases {
            let signing = try Curve25519.Signing.PrivateKey(rawRepresentation: Hex.decode(vector.ed25519_seed))
            #expect(Hex.encode(signing.publicKey.rawRepresentation) == vector.ed25519_public)
            let identity = try IdentityKey(rawRepresentation: Hex.decode(vector.ed25519_public))
            #expect(Hex.encode(identity.agreementKey.rawRepresentation) == vector.x25519_public)
            #expect(Hex.encode(Self.x25519PrivateKey(seed: signing.rawRepresentation).rawRepresentation) == vector.x25519_private)
        }
        #expect(file.invalid_public_keys.count >= 40)
        for invalid in file.invalid_public_keys {
            #expect(throws: PublicKeyError.self, "\(invalid.reason)") {
                try IdentityKey(rawRepresentation: Hex.decode(invalid.ed25519_public))
            }
        }
    }

    @Test("wrong lengths are refused with the length")
    func wrongLength() {
        #expect(throws: PublicKeyError.wrongLength(31)) { try IdentityKey(rawRepresentation: [UInt8](repeating: 1, count: 31)) }
        #expect(throws: PublicKeyError.wrongLength(33)) { try X25519PublicKey(rawRepresentation: [UInt8](repeating: 1, count: 33)) }
    }

    @Test("every small-order X25519 point is refused; X25519 with each gives the all-zero output")
    func smallOrderX25519() throws {
        for point in X25519PublicKey.smallOrderPoints {
            #expect(throws: PublicKeyError.invalidX25519Point) { try X25519PublicKey(rawRepresentation: point) }
            // Confirms the table: agreement with a small-order point yields all zeros, which swift-crypto
            // returns without complaint (so the protocol must refuse these points itself).
            let key = try Curve25519.KeyAgreement.PublicKey(rawRepresentation: point)
            let shared = try Curve25519.KeyAgreement.PrivateKey().sharedSecretFromKeyAgreement(with: key)
            #expect(shared.withUnsafeBytes { $0.allSatisfy { $0 == 0 } })
        }
        // Non-canonical: u = p, and any key with bit 255 set.
        #expect(throws: PublicKeyError.invalidX25519Point) { try X25519PublicKey(rawRepresentation: FieldElement.primeBytes) }
        var highBit = Array(Curve25519.KeyAgreement.PrivateKey().publicKey.rawRepresentation)
        highBit[31] |= 0x80
        #expect(throws: PublicKeyError.invalidX25519Point) { try X25519PublicKey(rawRepresentation: highBit) }
    }

    @Test("signatures verify only for the signed message and the right key")
    func signatures() throws {
        let signing = Curve25519.Signing.PrivateKey()
        let identity = try IdentityKey(rawRepresentation: signing.publicKey.rawRepresentation)
        let message = Array("hello".utf8)
        let signature = Array(try signing.signature(for: message))
        #expect(identity.isValidSignature(signature, for: message))
        #expect(!identity.isValidSignature(signature, for: Array("hellp".utf8)))
        #expect(!identity.isValidSignature(signature.dropLast(), for: message))
    }

    @Test("field arithmetic agrees with small-number arithmetic")
    func fieldArithmetic() {
        var generator = SeededGenerator(seed: 7)
        for _ in 0..<500 {
            let a = UInt64.random(in: 0..<(1 << 30), using: &generator)
            let b = UInt64.random(in: 1..<(1 << 30), using: &generator)
            let fa = FieldElement(a, 0, 0, 0, 0), fb = FieldElement(b, 0, 0, 0, 0)
            #expect((fa * fb).canonicalBytes == FieldElement(canonicalBytes: littleEndian(a * b))!.canonicalBytes)
            #expect((fa * fb * fb.inverse) == fa)
            #expect((fa + fb - fb) == fa)
            #expect((fa - fb + fb) == fa)
        }
        // Squaring, doubling and the addition chains agree with their generic forms.
        var exponent = FieldElement.primeBytes
        exponent[0] = 0xeb  // p − 2
        var sqrtExponent = [UInt8](repeating: 0xff, count: 32)
        sqrtExponent[0] = 0xfd
        sqrtExponent[31] = 0x0f  // (p − 5) / 8
        for _ in 0..<50 {
            var bytes = generator.bytes(32)
            bytes[31] &= 0x3f
            let element = FieldElement(canonicalBytes: bytes)!
            #expect(element.squared == element * element)
            #expect(element.inverse == element.power(littleEndianExponent: exponent))
            #expect(element.powerPMinus5Over8 == element.power(littleEndianExponent: sqrtExponent))
            #expect(element * element.inverse == .one)
        }
        let base = try! IdentityKey(rawRepresentation: Curve25519.Signing.PrivateKey().publicKey.rawRepresentation)
        let point = base.signingKey.point
        #expect((point.doubled.affineY) == ((point + point).affineY))
        // p − 1 + 1 wraps to zero.
        var pMinusOne = FieldElement.primeBytes
        pMinusOne[0] -= 1
        #expect((FieldElement(canonicalBytes: pMinusOne)! + .one).isZero)
        #expect(EdwardsPoint.squareRootOfMinusOne.squared == -FieldElement.one)
    }

    private func littleEndian(_ value: UInt64) -> [UInt8] {
        (0..<32).map { $0 < 8 ? UInt8(truncatingIfNeeded: value >> (8 * UInt64($0))) : 0 }
    }
}
