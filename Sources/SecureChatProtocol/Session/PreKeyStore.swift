public import SecureChatKeys

/// Where a device keeps its private prekeys. The session layer looks keys up and removes a
/// one-time prekey only after the first message under it has authenticated.
///
/// It also remembers which initiations (ephemeral keys) each signed prekey has accepted, so that a
/// replayed first message — which, without a one-time prekey, would otherwise decrypt again — cannot
/// start a second session. Forget those together with the signed prekey.
public protocol PreKeyStore {
    func signedPreKey(id: UInt32) -> SignedPreKeyPair?
    func oneTimePreKey(id: UInt32) -> OneTimePreKeyPair?
    mutating func removeOneTimePreKey(id: UInt32)
    func hasAcceptedInitiation(ephemeralKey: X25519PublicKey, signedPreKeyId: UInt32) -> Bool
    mutating func recordAcceptedInitiation(ephemeralKey: X25519PublicKey, signedPreKeyId: UInt32)
}

/// A ``PreKeyStore`` in memory, for tests and for clients that persist it themselves.
public struct InMemoryPreKeyStore: PreKeyStore, Sendable {
    public private(set) var signedPreKeys: [UInt32: SignedPreKeyPair] = [:]
    public private(set) var oneTimePreKeys: [UInt32: OneTimePreKeyPair] = [:]
    private var acceptedInitiations: [UInt32: Set<X25519PublicKey>] = [:]

    public init(signedPreKeys: [SignedPreKeyPair] = [], oneTimePreKeys: [OneTimePreKeyPair] = []) {
        for key in signedPreKeys { self.signedPreKeys[key.id] = key }
        for key in oneTimePreKeys { self.oneTimePreKeys[key.id] = key }
    }

    public mutating func add(_ key: SignedPreKeyPair) { signedPreKeys[key.id] = key }
    public mutating func add(_ key: OneTimePreKeyPair) { oneTimePreKeys[key.id] = key }
    public mutating func removeSignedPreKey(id: UInt32) {
        signedPreKeys[id] = nil
        acceptedInitiations[id] = nil
    }

    public func signedPreKey(id: UInt32) -> SignedPreKeyPair? { signedPreKeys[id] }
    public func oneTimePreKey(id: UInt32) -> OneTimePreKeyPair? { oneTimePreKeys[id] }
    public mutating func removeOneTimePreKey(id: UInt32) { oneTimePreKeys[id] = nil }

    public func hasAcceptedInitiation(ephemeralKey: X25519PublicKey, signedPreKeyId: UInt32) -> Bool {
        acceptedInitiations[signedPreKeyId]?.contains(ephemeralKey) ?? false
    }

    public mutating func recordAcceptedInitiation(ephemeralKey: X25519PublicKey, signedPreKeyId: UInt32) {
        acceptedInitiations[signedPreKeyId, default: []].insert(ephemeralKey)
    }
}
