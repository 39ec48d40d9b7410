import Foundation
import SecureChatKeys
import SecureChatProtocol
import Testing

/// The README's "Using the protocol core" example, kept compiling and passing.
@Suite("README example")
struct ReadmeExampleTests {
    @Test("the README's session example runs as written")
    func readmeExample() throws {
        let bob = IdentityKeyPair()
        let signedPreKey = bob.makeSignedPreKey(id: 1, createdAt: UInt64(Date().timeIntervalSince1970))
        let oneTimePreKey = OneTimePreKeyPair(id: 1)
        var bobStore = InMemoryPreKeyStore(signedPreKeys: [signedPreKey], oneTimePreKeys: [oneTimePreKey])
        let bundle = try PreKeyBundle(identityKey: bob.publicKey, signedPreKey: signedPreKey.publicPart,
                                      oneTimePreKey: oneTimePreKey.publicPart)

        let alice = IdentityKeyPair()
        var aliceSession = try Session.initiate(identity: alice, bundle: try PreKeyBundle(serialized: bundle.serialized))
        let wire = try aliceSession.encrypt(Array("hello".utf8)).serialized

        guard case .preKey(let first) = try SessionMessage(serialized: wire) else {
            Issue.record("the first message is a prekey message")
            return
        }
        var (bobSession, plaintext) = try Session.accept(first, identity: bob, store: &bobStore)
        #expect(plaintext == Array("hello".utf8))
        let reply = try bobSession.encrypt(Array("hi".utf8))
        #expect(try aliceSession.decrypt(reply) == Array("hi".utf8))

        let number = SafetyNumber(local: alice.publicKey, localUserId: "alice", remote: bob.publicKey, remoteUserId: "bob")
        #expect(number.groups.joined(separator: " ").count == 71)
    }
}
