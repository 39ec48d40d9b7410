import Crypto
import SecureChatKeys
import SecureChatTestSupport
import Testing
@testable import SecureChatProtocol

@Suite("X3DH and session set-up")
struct X3DHTests {
    @Test("both sides derive the same SK and AD", arguments: [true, false])
    func agreement(withOneTimePreKey: Bool) throws {
        let fixture = try SessionFixture(withOneTimePreKey: withOneTimePreKey)
        let (initiatorAgreement, initiation) = try X3DH.initiate(identity: fixture.alice, bundle: fixture.bundle)
        let responderAgreement = try X3DH.respond(
            identity: fixture.bob, signedPreKey: try #require(fixture.bobStore.signedPreKey(id: 1)),
            oneTimePreKey: withOneTimePreKey ? fixture.bobStore.oneTimePreKey(id: 100) : nil, initiation: initiation)
        #expect(initiatorAgreement.sharedSecret == responderAgreement.sharedSecret)
        #expect(initiatorAgreement.associatedData == fixture.alice.publicKey.rawRepresentation + fixture.bob.publicKey.rawRepresentation)
        #expect(initiatorAgreement.associatedData == responderAgreement.associatedData)
        #expect(initiation.oneTimePreKeyId == (withOneTimePreKey ? 100 : nil))
    }

    @Test("omitting the one-time prekey on one side changes SK")
    func oneTimePreKeyMatters() throws {
        let fixture = try SessionFixture()
        let (initiatorAgreement, initiation) = try X3DH.initiate(identity: fixture.alice, bundle: fixture.bundle)
        let responderAgreement = try X3DH.respond(
            identity: fixture.bob, signedPreKey: try #require(fixture.bobStore.signedPreKey(id: 1)),
            oneTimePreKey: nil, initiation: initiation)
        #expect(initiatorAgreement.sharedSecret != responderAgreement.sharedSecret)
    }

    @Test("a one-time prekey is consumed exactly once")
    func oneTimePreKeyConsumedOnce() throws {
        var fixture = try SessionFixture()
        var aliceSession = try Session.initiate(identity: fixture.alice, bundle: fixture.bundle)
        guard case .preKey(let message) = try aliceSession.encrypt([1, 2, 3]) else { Issue.record("expected prekey message"); return }
        _ = try Session.accept(message, identity: fixture.bob, store: &fixture.bobStore)
        #expect(fixture.bobStore.oneTimePreKey(id: 100) == nil)
        // The same prekey message again cannot start a second session.
        #expect(throws: SessionError.keyAgreement(.initiationReplayed)) {
            try Session.accept(message, identity: fixture.bob, store: &fixture.bobStore)
        }
        // Nor can a fresh initiation from the same (now stale) bundle: the one-time prekey is gone.
        var stale = try Session.initiate(identity: fixture.alice, bundle: fixture.bundle)
        guard case .preKey(let fresh) = try stale.encrypt([4]) else { Issue.record("expected prekey message"); return }
        #expect(throws: SessionError.keyAgreement(.unknownOneTimePreKey(id: 100))) {
            try Session.accept(fresh, identity: fixture.bob, store: &fixture.bobStore)
        }
    }

    @Test("a forged prekey message consumes nothing")
    func forgedPreKeyMessageConsumesNothing() throws {
        var fixture = try SessionFixture()
        var aliceSession = try Session.initiate(identity: fixture.alice, bundle: fixture.bundle)
        guard case .preKey(let message) = try aliceSession.encrypt([1, 2, 3]) else { Issue.record("expected prekey message"); return }
        var bytes = message.serialized
        bytes[bytes.count - 1] ^= 1
        let forged = try PreKeyMessage(serialized: bytes)
        #expect(throws: SessionError.ratchet(.authenticationFailed)) {
            try Session.accept(forged, identity: fixture.bob, store: &fixture.bobStore)
        }
        #expect(fixture.bobStore.oneTimePreKey(id: 100) != nil)
        // The genuine message still works afterwards.
        _ = try Session.accept(message, identity: fixture.bob, store: &fixture.bobStore)
    }

    @Test("an impostor identity in the prekey message cannot start a session")
    func impostorIdentity() throws {
        var fixture = try SessionFixture()
        var aliceSession = try Session.initiate(identity: fixture.alice, bundle: fixture.bundle)
        guard case .preKey(let message) = try aliceSession.encrypt([1]) else { Issue.record("expected prekey message"); return }
        let mallory = IdentityKeyPair()
        let swapped = PreKeyMessage(
            initiation: X3DHInitiation(
                initiatorIdentityKey: mallory.publicKey, ephemeralKey: message.initiation.ephemeralKey,
                signedPreKeyId: 1, oneTimePreKeyId: 100),
            message: message.message)
        #expect(throws: SessionError.ratchet(.authenticationFailed)) {
            try Session.accept(swapped, identity: fixture.bob, store: &fixture.bobStore)
        }
    }

    @Test("unknown signed prekey is a precise error")
    func unknownSignedPreKey() throws {
        let fixture = try SessionFixture()
        var aliceSession = try Session.initiate(identity: fixture.alice, bundle: fixture.bundle)
        guard case .preKey(let message) = try aliceSession.encrypt([1]) else { Issue.record("expected prekey message"); return }
        var empty = InMemoryPreKeyStore()
        #expect(throws: SessionError.keyAgreement(.unknownSignedPreKey(id: 1))) {
            try Session.accept(message, identity: fixture.bob, store: &empty)
        }
    }

    @Test("the initiator sends prekey messages until the responder answers, then ratchet messages")
    func preKeyMessagesUntilAnswered() throws {
        var fixture = try SessionFixture()
        var (alice, bob) = try fixture.establish()
        // A second message before Bob answers is again a prekey message; Bob's session accepts it.
        let second = try alice.encrypt(Array("again".utf8))
        guard case .preKey = second else { Issue.record("expected prekey message"); return }
        #expect(try bob.decrypt(try SessionMessage(serialized: second.serialized)) == Array("again".utf8))
        let reply = try bob.encrypt(Array("hi alice".utf8))
        guard case .ratchet = reply else { Issue.record("responder sends ratchet messages"); return }
        #expect(try alice.decrypt(reply) == Array("hi alice".utf8))
        guard case .ratchet = try alice.encrypt([9]) else { Issue.record("after an answer, ratchet messages"); return }
        #expect(alice.pendingInitiation == nil)
    }

    @Test("a prekey message from a different X3DH is refused by an existing session")
    func initiationMismatch() throws {
        var fixture = try SessionFixture(withOneTimePreKey: false)
        var (_, bob) = try fixture.establish()
        var otherAlice = try Session.initiate(identity: fixture.alice, bundle: fixture.bundle)
        let other = try otherAlice.encrypt([1])
        #expect(throws: SessionError.initiationMismatch) { try bob.decrypt(other) }
    }

    @Test("stored key material restores exactly; wrong material is refused with a typed error")
    func restoringKeys() throws {
        let identity = IdentityKeyPair()
        #expect(try IdentityKeyPair(seed: identity.seed).publicKey == identity.publicKey)
        #expect(throws: PrivateKeyError.wrongLength(31)) { try IdentityKeyPair(seed: SecretBytes([UInt8](repeating: 1, count: 31))) }
        let signed = identity.makeSignedPreKey(id: 3, createdAt: 5)
        let restored = try SignedPreKeyPair(publicPart: signed.publicPart, privateKey: signed.privateKeyBytes)
        #expect(restored.publicPart == signed.publicPart)
        #expect(throws: PrivateKeyError.mismatchedPublicKey) {
            try SignedPreKeyPair(publicPart: signed.publicPart, privateKey: .random(count: 32))
        }
        let oneTime = OneTimePreKeyPair(id: 9)
        #expect(try OneTimePreKeyPair(id: 9, privateKey: oneTime.privateKeyBytes).publicPart == oneTime.publicPart)
        #expect(throws: PrivateKeyError.wrongLength(0)) { try OneTimePreKeyPair(id: 1, privateKey: SecretBytes([])) }
    }

    @Test("a replayed first message without a one-time prekey cannot start a second session")
    func replayWithoutOneTimePreKey() throws {
        var fixture = try SessionFixture(withOneTimePreKey: false)
        var alice = try Session.initiate(identity: fixture.alice, bundle: fixture.bundle)
        guard case .preKey(let first) = try alice.encrypt(Array("only once".utf8)) else { Issue.record("expected prekey message"); return }
        _ = try Session.accept(first, identity: fixture.bob, store: &fixture.bobStore)
        #expect(throws: SessionError.keyAgreement(.initiationReplayed)) {
            try Session.accept(first, identity: fixture.bob, store: &fixture.bobStore)
        }
        // A new initiation against the same signed prekey is still welcome.
        var again = try Session.initiate(identity: fixture.alice, bundle: fixture.bundle)
        guard case .preKey(let second) = try again.encrypt([1]) else { Issue.record("expected prekey message"); return }
        #expect(try Session.accept(second, identity: fixture.bob, store: &fixture.bobStore).plaintext == [1])
        // Forgetting the signed prekey forgets what it accepted, with the key itself.
        fixture.bobStore.removeSignedPreKey(id: 1)
        #expect(!fixture.bobStore.hasAcceptedInitiation(ephemeralKey: first.initiation.ephemeralKey, signedPreKeyId: 1))
    }
}
