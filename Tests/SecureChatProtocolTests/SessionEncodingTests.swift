import SecureChatKeys
import Testing

@testable import SecureChatProtocol

@Suite("Session encoding")
struct SessionEncodingTests {
    @Test("a stored session restores with its initiation state and keeps talking", arguments: [true, false])
    func roundTrip(withOneTimePreKey: Bool) throws {
        var fixture = try SessionFixture(withOneTimePreKey: withOneTimePreKey)
        var (alice, bob) = try fixture.establish()
        // Alice still repeats her initiation; Bob remembers the one he accepted.
        #expect(alice.pendingInitiation != nil && bob.acceptedInitiation != nil)
        alice = try Session(serialized: alice.serialized)
        bob = try Session(serialized: bob.serialized)
        #expect(alice.pendingInitiation == bob.acceptedInitiation)
        #expect(alice.remoteIdentity == fixture.bob.publicKey && bob.remoteIdentity == fixture.alice.publicKey)

        let second = try alice.encrypt(Array("again".utf8))
        guard case .preKey = second else {
            Issue.record("until Bob answers, a restored initiator still sends prekey messages")
            return
        }
        #expect(try bob.decrypt(second) == Array("again".utf8))
        let reply = try bob.encrypt(Array("reply".utf8))
        #expect(try alice.decrypt(reply) == Array("reply".utf8))
        alice = try Session(serialized: alice.serialized)
        #expect(alice.pendingInitiation == nil)
        guard case .ratchet = try alice.encrypt(Array("third".utf8)) else {
            Issue.record("after the answer, a restored initiator sends ratchet messages")
            return
        }
    }

    @Test("truncated, extended, flagged or versioned wrongly: a typed error, never a session")
    func malformed() throws {
        var fixture = try SessionFixture()
        let (alice, _) = try fixture.establish()
        let bytes = alice.serialized.bytes
        for cut in [0, 1, 33, 65, 66, 100, bytes.count - 1] {
            #expect(throws: DecodeError.self) { try Session(serialized: SecretBytes(bytes.prefix(cut))) }
        }
        #expect(throws: DecodeError.self) { try Session(serialized: SecretBytes(bytes + [0])) }
        var version = bytes
        version[0] = 2
        #expect(throws: DecodeError.unsupportedVersion(2)) { try Session(serialized: SecretBytes(version)) }
        var flags = bytes
        flags[65] = 0x04
        #expect(throws: DecodeError.invalidField("session flags")) { try Session(serialized: SecretBytes(flags)) }
    }
}
