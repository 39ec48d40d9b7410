import Foundation
import SecureChatKeys
import SecureChatProtocol

/// The device's private prekeys as the session layer sees them (``PreKeyStore``), loaded from
/// the local store; every change is also collected, to be committed with the step that made it.
struct DeviceKeys: PreKeyStore, Sendable {
    private(set) var signedPreKeys: [UInt32: (pair: SignedPreKeyPair, createdAt: UInt64)] = [:]
    private(set) var oneTimePreKeys: [UInt32: OneTimePreKeyPair] = [:]
    private var acceptedInitiations: Set<String> = []
    /// Removals and additions since the last ``drainChanges(into:)``.
    private var pending = LocalStore.Changes()

    init() {}

    init(store: LocalStore, identity: IdentityKey) throws(ClientError) {
        for (name, payload) in try store.records(.signedPreKey) {
            let bytes = [UInt8](payload)
            guard bytes.count == SignedPreKeyPublic.encodedLength + 32,
                  let publicPart = try? SignedPreKeyPublic(serialized: bytes.prefix(SignedPreKeyPublic.encodedLength), signedBy: identity),
                  let pair = try? SignedPreKeyPair(publicPart: publicPart, privateKey: SecretBytes(bytes.suffix(32)))
            else { throw .corruptLocalState("signed prekey \(name)") }
            signedPreKeys[pair.id] = (pair, publicPart.createdAt)
        }
        for (name, payload) in try store.records(.oneTimePreKey) {
            guard let id = UInt32(name), let pair = try? OneTimePreKeyPair(id: id, privateKey: SecretBytes(payload))
            else { throw .corruptLocalState("one-time prekey \(name)") }
            oneTimePreKeys[id] = pair
        }
        acceptedInitiations = Set(try store.records(.acceptedInitiation).map(\.name))
    }

    mutating func add(_ pair: SignedPreKeyPair, createdAt: UInt64) {
        signedPreKeys[pair.id] = (pair, createdAt)
        var payload = Data(pair.publicPart.serialized)
        payload.append(contentsOf: pair.privateKeyBytes.bytes)
        pending.put(.signedPreKey, String(pair.id), payload)
    }

    mutating func removeSignedPreKey(id: UInt32) {
        signedPreKeys[id] = nil
        pending.delete(.signedPreKey, String(id))
        for name in acceptedInitiations where name.hasPrefix("\(id):") {
            acceptedInitiations.remove(name)
            pending.delete(.acceptedInitiation, name)
        }
    }

    mutating func add(_ pair: OneTimePreKeyPair) {
        oneTimePreKeys[pair.id] = pair
        pending.put(.oneTimePreKey, String(pair.id), Data(pair.privateKeyBytes.bytes))
    }

    /// Moves the collected changes into `changes`.
    mutating func drainChanges(into changes: inout LocalStore.Changes) {
        changes.merge(pending)
        pending = LocalStore.Changes()
    }

    // MARK: PreKeyStore

    func signedPreKey(id: UInt32) -> SignedPreKeyPair? { signedPreKeys[id]?.pair }
    func oneTimePreKey(id: UInt32) -> OneTimePreKeyPair? { oneTimePreKeys[id] }

    mutating func removeOneTimePreKey(id: UInt32) {
        oneTimePreKeys[id] = nil
        pending.delete(.oneTimePreKey, String(id))
    }

    func hasAcceptedInitiation(ephemeralKey: X25519PublicKey, signedPreKeyId: UInt32) -> Bool {
        acceptedInitiations.contains(Self.initiationName(ephemeralKey, signedPreKeyId))
    }

    mutating func recordAcceptedInitiation(ephemeralKey: X25519PublicKey, signedPreKeyId: UInt32) {
        let name = Self.initiationName(ephemeralKey, signedPreKeyId)
        acceptedInitiations.insert(name)
        pending.put(.acceptedInitiation, name, Data())
    }

    private static func initiationName(_ key: X25519PublicKey, _ signedPreKeyId: UInt32) -> String {
        "\(signedPreKeyId):" + key.rawRepresentation.map { String(format: "%02x", $0) }.joined()
    }
}
