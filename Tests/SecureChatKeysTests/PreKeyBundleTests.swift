import Crypto
import SecureChatTestSupport
import Testing
@testable import SecureChatKeys

@Suite("Prekey bundles")
struct PreKeyBundleTests {
    struct Fixture {
        let signing = Curve25519.Signing.PrivateKey()
        let identity: IdentityKey
        let bundle: PreKeyBundle

        init(withOneTimePreKey: Bool = true) throws {
            identity = try IdentityKey(rawRepresentation: signing.publicKey.rawRepresentation)
            let spk = try X25519PublicKey(rawRepresentation: Curve25519.KeyAgreement.PrivateKey().publicKey.rawRepresentation)
            let signature = try signing.signature(
                for: SignedPreKeyPublic.signedBytes(id: 7, publicKey: spk, createdAt: 1_800_000_000))
            let signed = SignedPreKeyPublic(id: 7, publicKey: spk, createdAt: 1_800_000_000, signature: Array(signature))
            let opk = try X25519PublicKey(rawRepresentation: Curve25519.KeyAgreement.PrivateKey().publicKey.rawRepresentation)
            bundle = try PreKeyBundle(
                identityKey: identity, signedPreKey: signed,
                oneTimePreKey: withOneTimePreKey ? OneTimePreKeyPublic(id: 42, publicKey: opk) : nil)
        }
    }

    @Test("round trip with and without a one-time prekey", arguments: [true, false])
    func roundTrip(withOneTimePreKey: Bool) throws {
        let fixture = try Fixture(withOneTimePreKey: withOneTimePreKey)
        let decoded = try PreKeyBundle(serialized: fixture.bundle.serialized)
        #expect(decoded == fixture.bundle)
        #expect(decoded.serialized == fixture.bundle.serialized)
        #expect(fixture.bundle.serialized.count == (withOneTimePreKey ? 179 : 143))
    }

    @Test("every flipped bit of the signed part or signature is refused")
    func everyFlipRejected() throws {
        let fixture = try Fixture()
        let bytes = fixture.bundle.serialized
        // Bytes 34..<142 hold the signed prekey id, key, timestamp and signature.
        for index in 34..<142 {
            for bit in [0, 3, 7] {
                var tampered = bytes
                tampered[index] ^= 1 << UInt8(bit)
                #expect(throws: PreKeyBundleError.self) { try PreKeyBundle(serialized: tampered) }
            }
        }
    }

    @Test("any other identity key fails the signature check")
    func wrongIdentity() throws {
        let fixture = try Fixture()
        let other = try IdentityKey(rawRepresentation: Curve25519.Signing.PrivateKey().publicKey.rawRepresentation)
        #expect(throws: PreKeyBundleError.badSignedPreKeySignature) {
            try PreKeyBundle(identityKey: other, signedPreKey: fixture.bundle.signedPreKey, oneTimePreKey: nil)
        }
    }

    @Test("every truncation and trailing bytes are typed errors")
    func truncation() throws {
        let bytes = try Fixture().bundle.serialized
        for length in 0..<bytes.count {
            #expect(throws: PreKeyBundleError.self) { try PreKeyBundle(serialized: bytes.prefix(length)) }
        }
        #expect(throws: PreKeyBundleError.malformed(.trailingBytes(count: 1))) { try PreKeyBundle(serialized: bytes + [0]) }
    }

    @Test("version, type, flag and key errors are precise")
    func preciseErrors() throws {
        let bytes = try Fixture().bundle.serialized
        var wrongVersion = bytes; wrongVersion[0] = 2
        #expect(throws: PreKeyBundleError.malformed(.unsupportedVersion(2))) { try PreKeyBundle(serialized: wrongVersion) }
        var wrongType = bytes; wrongType[1] = 0x01
        #expect(throws: PreKeyBundleError.malformed(.unexpectedType(expected: 0x10, found: 0x01))) {
            try PreKeyBundle(serialized: wrongType)
        }
        var badFlag = bytes; badFlag[142] = 2
        #expect(throws: PreKeyBundleError.malformed(.invalidField("has one-time prekey"))) { try PreKeyBundle(serialized: badFlag) }
        var smallOrderIdentity = bytes
        smallOrderIdentity.replaceSubrange(2..<34, with: [1] + [UInt8](repeating: 0, count: 31))
        #expect(throws: PreKeyBundleError.invalidIdentityKey(.invalidEd25519Point)) {
            try PreKeyBundle(serialized: smallOrderIdentity)
        }
        var zeroOneTime = bytes
        zeroOneTime.replaceSubrange(147..<179, with: [UInt8](repeating: 0, count: 32))
        #expect(throws: PreKeyBundleError.invalidOneTimePreKey(.invalidX25519Point)) { try PreKeyBundle(serialized: zeroOneTime) }
    }

    @Test("signed and one-time prekeys round-trip on their own")
    func separateEncodings() throws {
        let fixture = try Fixture()
        let signed = try SignedPreKeyPublic(serialized: fixture.bundle.signedPreKey.serialized, signedBy: fixture.identity)
        #expect(signed == fixture.bundle.signedPreKey)
        let oneTime = try #require(fixture.bundle.oneTimePreKey)
        #expect(try OneTimePreKeyPublic(serialized: oneTime.serialized) == oneTime)
        var forged = fixture.bundle.signedPreKey.serialized
        forged[5] ^= 1
        #expect(throws: PreKeyBundleError.badSignedPreKeySignature) {
            try SignedPreKeyPublic(serialized: forged, signedBy: fixture.identity)
        }
    }
}
