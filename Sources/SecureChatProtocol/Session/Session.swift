package import Crypto
public import SecureChatKeys

/// Why a pairwise session operation failed. The session and the prekey store are unchanged after each.
public enum SessionError: Error, Equatable, Sendable {
    /// The bytes are not a well-formed message.
    case malformed(DecodeError)
    /// X3DH could not be completed (unknown or consumed prekey, degenerate key).
    case keyAgreement(X3DHError)
    /// The ratchet refused the message.
    case ratchet(RatchetError)
    /// A prekey message for a session started by a different X3DH: it must start a new session instead.
    case initiationMismatch
}

/// A pairwise session with one remote device: the ratchet state, both identities, and — on the
/// initiator until the responder first answers — the X3DH parameters every message repeats.
///
/// **A value is one session**: keep one live copy and persist it after every operation (see ``RatchetState``).
public struct Session: Sendable {
    public private(set) var ratchet: RatchetState
    public let localIdentity: IdentityKey
    public let remoteIdentity: IdentityKey
    /// Set on the initiator until a message from the responder arrives: outgoing messages are
    /// ``PreKeyMessage``s carrying it.
    public private(set) var pendingInitiation: X3DHInitiation?
    /// On the responder: the X3DH that created the session, to recognise the initiator's repeated prekey messages.
    public let acceptedInitiation: X3DHInitiation?

    /// Starts a session as initiator from a fetched, verified bundle.
    public static func initiate(identity: IdentityKeyPair, bundle: PreKeyBundle) throws(SessionError) -> Session {
        try initiate(identity: identity, bundle: bundle, ephemeralKey: .init(), keySource: SystemKeySource())
    }

    package static func initiate(
        identity: IdentityKeyPair, bundle: PreKeyBundle, ephemeralKey: Curve25519.KeyAgreement.PrivateKey,
        keySource: some RatchetKeySource
    ) throws(SessionError) -> Session {
        let (agreement, initiation): (X3DHAgreement, X3DHInitiation)
        do {
            (agreement, initiation) = try X3DH.initiate(identity: identity, bundle: bundle, ephemeralKey: ephemeralKey)
        } catch {
            throw .keyAgreement(error)
        }
        let ratchet: RatchetState
        do {
            ratchet = try RatchetState.initiator(
                sharedSecret: agreement.sharedSecret, associatedData: agreement.associatedData,
                responderRatchetKey: bundle.signedPreKey.publicKey, keySource: keySource)
        } catch {
            throw .ratchet(error)
        }
        return Session(
            ratchet: ratchet, localIdentity: identity.publicKey, remoteIdentity: bundle.identityKey,
            pendingInitiation: initiation, acceptedInitiation: nil)
    }

    /// Accepts a prekey message as responder: repeats X3DH, decrypts the message, and only then
    /// removes the one-time prekey it used from `store` — so it is consumed exactly once, and a
    /// forged or replayed prekey message consumes nothing.
    public static func accept(
        _ message: PreKeyMessage, identity: IdentityKeyPair, store: inout some PreKeyStore
    ) throws(SessionError) -> (session: Session, plaintext: [UInt8]) {
        try accept(message, identity: identity, store: &store, keySource: SystemKeySource())
    }

    package static func accept(
        _ message: PreKeyMessage, identity: IdentityKeyPair, store: inout some PreKeyStore,
        keySource: some RatchetKeySource
    ) throws(SessionError) -> (session: Session, plaintext: [UInt8]) {
        let initiation = message.initiation
        guard !store.hasAcceptedInitiation(ephemeralKey: initiation.ephemeralKey, signedPreKeyId: initiation.signedPreKeyId)
        else { throw .keyAgreement(.initiationReplayed) }
        guard let signedPreKey = store.signedPreKey(id: initiation.signedPreKeyId) else {
            throw .keyAgreement(.unknownSignedPreKey(id: initiation.signedPreKeyId))
        }
        var oneTimePreKey: OneTimePreKeyPair?
        if let id = initiation.oneTimePreKeyId {
            guard let key = store.oneTimePreKey(id: id) else { throw .keyAgreement(.unknownOneTimePreKey(id: id)) }
            oneTimePreKey = key
        }
        let agreement: X3DHAgreement
        do {
            agreement = try X3DH.respond(
                identity: identity, signedPreKey: signedPreKey, oneTimePreKey: oneTimePreKey, initiation: initiation)
        } catch {
            throw .keyAgreement(error)
        }
        var ratchet = RatchetState.responder(
            sharedSecret: agreement.sharedSecret, associatedData: agreement.associatedData,
            ratchetKey: signedPreKey.privateKey)
        let plaintext: [UInt8]
        do {
            plaintext = try ratchet.decrypt(
                header: message.message.header, ciphertext: message.message.ciphertext, keySource: keySource)
        } catch {
            throw .ratchet(error)
        }
        if let id = initiation.oneTimePreKeyId { store.removeOneTimePreKey(id: id) }
        store.recordAcceptedInitiation(ephemeralKey: initiation.ephemeralKey, signedPreKeyId: initiation.signedPreKeyId)
        let session = Session(
            ratchet: ratchet, localIdentity: identity.publicKey, remoteIdentity: initiation.initiatorIdentityKey,
            pendingInitiation: nil, acceptedInitiation: initiation)
        return (session, plaintext)
    }

    /// Restores a session from its parts (see ``RatchetState/serialized``).
    public init(
        ratchet: RatchetState, localIdentity: IdentityKey, remoteIdentity: IdentityKey,
        pendingInitiation: X3DHInitiation?, acceptedInitiation: X3DHInitiation?
    ) {
        self.ratchet = ratchet
        self.localIdentity = localIdentity
        self.remoteIdentity = remoteIdentity
        self.pendingInitiation = pendingInitiation
        self.acceptedInitiation = acceptedInitiation
    }

    /// Encrypts the next message: a prekey message while the responder has not answered, a ratchet message after.
    public mutating func encrypt(_ plaintext: [UInt8]) throws(SessionError) -> SessionMessage {
        let (header, ciphertext): (RatchetHeader, [UInt8])
        do {
            (header, ciphertext) = try ratchet.encrypt(plaintext)
        } catch {
            throw .ratchet(error)
        }
        let message = RatchetMessage(header: header, ciphertext: ciphertext)
        if let pendingInitiation {
            return .preKey(PreKeyMessage(initiation: pendingInitiation, message: message))
        }
        return .ratchet(message)
    }

    /// Decrypts a message in this session. A prekey message is accepted only if it repeats the
    /// X3DH that created the session; any other starts a new session through ``accept(_:identity:store:)``.
    public mutating func decrypt(_ message: SessionMessage) throws(SessionError) -> [UInt8] {
        try decrypt(message, keySource: SystemKeySource())
    }

    package mutating func decrypt(_ message: SessionMessage, keySource: some RatchetKeySource) throws(SessionError) -> [UInt8] {
        let ratchetMessage: RatchetMessage
        switch message {
        case .ratchet(let inner):
            ratchetMessage = inner
        case .preKey(let preKeyMessage):
            guard preKeyMessage.initiation == acceptedInitiation else { throw .initiationMismatch }
            ratchetMessage = preKeyMessage.message
        }
        let plaintext: [UInt8]
        do {
            plaintext = try ratchet.decrypt(
                header: ratchetMessage.header, ciphertext: ratchetMessage.ciphertext, keySource: keySource)
        } catch {
            throw .ratchet(error)
        }
        // Any authenticated message from the responder proves it has the session.
        pendingInitiation = nil
        return plaintext
    }
}
