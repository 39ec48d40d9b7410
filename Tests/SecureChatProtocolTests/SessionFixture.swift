import Crypto
import SecureChatKeys
@testable import SecureChatProtocol

/// Alice (initiator) and Bob (responder) with Bob's prekeys, and a helper that runs the first exchange.
struct SessionFixture {
    let alice = IdentityKeyPair()
    let bob = IdentityKeyPair()
    var bobStore: InMemoryPreKeyStore
    let bundle: PreKeyBundle

    init(withOneTimePreKey: Bool = true) throws {
        let signed = bob.makeSignedPreKey(id: 1, createdAt: 1_800_000_000)
        let oneTime = OneTimePreKeyPair(id: 100)
        bobStore = InMemoryPreKeyStore(signedPreKeys: [signed], oneTimePreKeys: [oneTime])
        bundle = try PreKeyBundle(
            identityKey: bob.publicKey, signedPreKey: signed.publicPart,
            oneTimePreKey: withOneTimePreKey ? oneTime.publicPart : nil)
    }

    /// Both sessions after Alice's first message reached Bob.
    mutating func establish() throws -> (alice: Session, bob: Session) {
        var aliceSession = try Session.initiate(identity: alice, bundle: bundle)
        let first = try aliceSession.encrypt(Array("hello bob".utf8))
        guard case .preKey(let preKeyMessage) = first else { fatalError("first message must be a prekey message") }
        let (bobSession, plaintext) = try Session.accept(preKeyMessage, identity: bob, store: &bobStore)
        precondition(plaintext == Array("hello bob".utf8))
        return (aliceSession, bobSession)
    }
}

extension RatchetState {
    /// The encoded state, for byte-for-byte comparisons.
    var snapshot: [UInt8] { serialized.bytes }
}
