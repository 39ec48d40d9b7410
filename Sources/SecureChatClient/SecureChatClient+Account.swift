import Foundation
public import SecureChatAPI
import SecureChatKeys
import SecureChatProtocol

/// The account's own keys on the server, its devices and its profile.
extension SecureChatClient {
    // MARK: Prekeys

    func replenishOneTimePreKeys(serverCount: Int) async throws {
        let missing = Self.oneTimePreKeyTarget - serverCount
        guard missing > 0 else { return }
        let first = account.nextOneTimePreKeyId
        let pairs = (0..<UInt32(missing)).map { OneTimePreKeyPair(id: first + $0) }
        for pair in pairs { keys.add(pair) }
        account.nextOneTimePreKeyId = first + UInt32(missing)
        var changes = LocalStore.Changes()
        keys.drainChanges(into: &changes)
        changes.put(.account, "account", try Self.encode(account))
        try commit(changes)
        let token = try await validToken()
        let _: PreKeyCountResponse = try await api.send(
            .POST, "/v1/devices/\(account.deviceId)/one-time-prekeys", token: token,
            json: OneTimePreKeyUpload(oneTimePreKeys: pairs.map { Data($0.publicPart.serialized) }))
    }

    /// Replaces the signed prekey once it is a week old, and forgets replaced ones after their grace period.
    func maintainSignedPreKey() async throws {
        let now = Date().timeIntervalSince1970
        guard let current = keys.signedPreKeys[account.currentSignedPreKeyId] else { return }
        var changes = LocalStore.Changes()
        for (id, entry) in keys.signedPreKeys where id != account.currentSignedPreKeyId
            && now - Double(entry.createdAt) > Self.signedPreKeyLifetime + Self.signedPreKeyGrace {
            keys.removeSignedPreKey(id: id)
        }
        if now - Double(current.createdAt) > Self.signedPreKeyLifetime {
            let id = account.nextSignedPreKeyId
            let pair = identity.makeSignedPreKey(id: id, createdAt: UInt64(now))
            keys.add(pair, createdAt: UInt64(now))
            account.nextSignedPreKeyId = id + 1
            account.currentSignedPreKeyId = id
            keys.drainChanges(into: &changes)
            changes.put(.account, "account", try Self.encode(account))
            try commit(changes)
            let token = try await validToken()
            try await api.send(
                .PUT, "/v1/devices/\(account.deviceId)/signed-prekey", token: token,
                json: SignedPreKeyUpload(signedPreKey: Data(pair.publicPart.serialized)))
            return
        }
        keys.drainChanges(into: &changes)
        try commit(changes)
    }
}

extension SecureChatClient {
    // MARK: Account queries

    /// This account's devices as the server lists them, each with its remaining one-time prekeys.
    public func devices() async throws(ClientError) -> [DeviceResponse] {
        let token = try await validToken()
        let list: DeviceListResponse = try await api.send(.GET, "/v1/devices", token: token)
        return list.devices
    }

    /// Every contact this device knows, by username.
    public var knownContacts: [Contact] { contacts.values.sorted { $0.username < $1.username } }

    /// The contact of a username, looking it up on the server if this device has not met them yet.
    public func contact(named username: String) async throws(ClientError) -> Contact {
        let contact = try await resolve(username: username)
        if contacts[contact.userId] == nil { _ = try? await currentDevices(of: contact.userId) }
        return contacts[contact.userId] ?? contact
    }
}

extension SecureChatClient {
    // MARK: Profile

    public func profile() async throws(ClientError) -> Profile {
        try await api.send(.GET, "/v1/profile", token: try await validToken())
    }

    /// Replaces this account's profile (every field; a nil avatar removes it).
    public func setProfile(displayName: String, statusText: String, avatarAttachmentId: String? = nil) async throws(ClientError) -> Profile {
        try await api.send(
            .PUT, "/v1/profile", token: try await validToken(),
            json: ProfileUpdate(displayName: displayName, statusText: statusText, avatarAttachmentId: avatarAttachmentId))
    }
}
