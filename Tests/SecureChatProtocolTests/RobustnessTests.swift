import Crypto
import SecureChatKeys
import SecureChatTestSupport
import Testing
@testable import SecureChatProtocol

@Suite("Robustness: hostile bytes and leaky descriptions")
struct RobustnessTests {
    /// Valid encodings of every wire type, to mutate.
    static func samples() throws -> [[UInt8]] {
        var fixture = try SessionFixture()
        var alice = try Session.initiate(identity: fixture.alice, bundle: fixture.bundle)
        let preKey = try alice.encrypt(Array("hello".utf8)).serialized
        guard case .preKey(let first) = try SessionMessage(serialized: preKey) else { return [] }
        var (bob, _) = try Session.accept(first, identity: fixture.bob, store: &fixture.bobStore)
        let ratchet = try bob.encrypt(Array("hi".utf8)).serialized
        var sender = SenderKeyState(distributionId: [UInt8](repeating: 3, count: 16), createdAt: 0)
        return [
            preKey, ratchet, fixture.bundle.serialized, fixture.bundle.signedPreKey.serialized,
            try #require(fixture.bundle.oneTimePreKey).serialized, sender.distributionMessage.serialized.bytes,
            try sender.encrypt([1, 2, 3]).serialized,
        ]
    }

    /// Runs every decoder on `bytes`; each must return or throw, never trap.
    static func decodeEverything(_ bytes: [UInt8]) {
        _ = try? SessionMessage(serialized: bytes)
        _ = try? RatchetMessage(serialized: bytes)
        _ = try? PreKeyMessage(serialized: bytes)
        _ = try? PreKeyBundle(serialized: bytes)
        _ = try? OneTimePreKeyPublic(serialized: bytes)
        _ = try? SenderKeyDistributionMessage(serialized: bytes)
        _ = try? SenderKeyMessage(serialized: bytes)
        _ = try? RatchetHeader(encoded: bytes)
        _ = try? RatchetState(serialized: SecretBytes(bytes))
        _ = try? SenderKeyRecord(serialized: SecretBytes(bytes))
        _ = try? IdentityKey(rawRepresentation: bytes)
        _ = try? X25519PublicKey(rawRepresentation: bytes)
    }

    @Test("4,000 random and mutated inputs reach every decoder without a crash")
    func hostileBytes() throws {
        var generator = SeededGenerator(seed: 99)
        let samples = try Self.samples()
        #expect(samples.count == 7)
        for round in 0..<4000 {
            var bytes: [UInt8]
            if round % 4 == 0 {
                bytes = generator.bytes(Int.random(in: 0...300, using: &generator))
            } else {
                bytes = samples[round % samples.count]
                switch Int.random(in: 0..<4, using: &generator) {
                case 0 where !bytes.isEmpty:
                    bytes[Int.random(in: 0..<bytes.count, using: &generator)] ^= UInt8.random(in: 1...255, using: &generator)
                case 1:
                    bytes = Array(bytes.prefix(Int.random(in: 0...bytes.count, using: &generator)))
                case 2:
                    bytes += generator.bytes(Int.random(in: 1...40, using: &generator))
                default:
                    // Keep the version and type, randomise the rest: reaches the field decoders.
                    bytes = Array(bytes.prefix(2)) + generator.bytes(max(0, bytes.count - 2))
                }
            }
            Self.decodeEverything(bytes)
        }
    }

    @Test("oversized inputs are refused with a length error, not processed")
    func oversized() {
        var huge = [UInt8](repeating: 0, count: 2 + 40 + RatchetMessage.maxCiphertextLength + 16)
        huge[0] = WireFormat.version
        huge[1] = WireFormat.MessageType.ratchetMessage.rawValue
        // A valid ratchet key so that only the length can be the problem.
        let key = Curve25519.KeyAgreement.PrivateKey().publicKey.rawRepresentation
        huge.replaceSubrange(2..<34, with: key)
        #expect(throws: DecodeError.lengthOutOfBounds(field: "ciphertext", length: RatchetMessage.maxCiphertextLength + 16)) {
            try RatchetMessage(serialized: huge)
        }
    }

    @Test("no description, debug description or dump of a secret-holding value shows its key bytes")
    func redaction() throws {
        var fixture = try SessionFixture()
        var (alice, bob) = try fixture.establish()
        let reply = try bob.encrypt([1])
        _ = try alice.decrypt(reply)
        let sender = SenderKeyState(distributionId: [UInt8](repeating: 3, count: 16), createdAt: 0)
        let identity = IdentityKeyPair()
        let secrets: [String: [UInt8]] = [
            "identity seed": identity.seed.bytes,
            "chain key": sender.distributionMessage.chainKey.bytes,
            "session state": Array(alice.ratchet.serialized.bytes[67..<99]),  // the root key inside it
        ]
        let values: [Any] = [
            identity, alice, bob, alice.ratchet, sender, sender.distributionMessage,
            SenderKeyRecord(distribution: sender.distributionMessage, owner: SenderKeyTests.alice), fixture.bobStore,
            SecretBytes.random(count: 32),
        ]
        for value in values {
            var dumped = ""
            dump(value, to: &dumped)
            let texts = [String(describing: value), String(reflecting: value), dumped]
            for text in texts {
                for (name, secret) in secrets {
                    let hex = secret.prefix(6).map { String(format: "%02x", $0) }.joined()
                    #expect(!text.contains(hex), "\(name) visible in \(type(of: value)): \(text.prefix(200))")
                    #expect(!text.contains(secret.prefix(6).map(String.init).joined(separator: ", ")), "\(name) visible as decimals")
                }
            }
            #expect(dumped.count < 400, "dump of \(type(of: value)) shows internals: \(dumped.prefix(200))")
        }
    }
}
