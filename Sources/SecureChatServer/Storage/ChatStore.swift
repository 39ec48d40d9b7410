import SecureChatAPI

/// Everything the server keeps, behind one interface with a SQLite and a PostgreSQL implementation.
///
/// Each method is one transaction that leaves the data consistent. Refusals the caller must
/// report (a taken username, a banned member…) are thrown as ``APIFailure``; anything else thrown
/// is a database failure. Payloads arrive and leave sealed (``AtRestCipher``): the store never
/// sees a key. Rules shared by both implementations live in ``RoomPolicy``.
protocol ChatStore: Sendable {
    // MARK: Accounts
    func createUser(_ user: UserRecord) async throws
    func user(id: String) async throws -> UserRecord?
    func user(username: String) async throws -> UserRecord?
    func updatePasswordHash(userId: String, hash: String) async throws
    func updateProfile(userId: String, displayName: String, statusText: String, avatarAttachmentId: String?) async throws
    /// Deletes the account with its devices, sessions, memberships (handing rooms over) and messages.
    /// Returns the attachments whose files must be removed.
    func deleteUser(id: String, now: Milliseconds) async throws -> (attachmentIds: [String], deliveries: [InboxEntry])
    func shareARoom(_ userA: String, _ userB: String) async throws -> Bool

    // MARK: Sessions (refresh-token families)
    func createSession(id: String, userId: String, tokenHash: [UInt8], now: Milliseconds, expiresAt: Milliseconds) async throws
    func rotateRefreshToken(oldHash: [UInt8], newHash: [UInt8], now: Milliseconds, newExpiresAt: Milliseconds) async throws -> RefreshOutcome
    func revokeSession(id: String, now: Milliseconds) async throws
    func revokeSessions(userId: String, except keptSessionId: String?, now: Milliseconds) async throws
    func isSessionActive(id: String, now: Milliseconds) async throws -> Bool
    /// What a socket's hello checks: the session behind its token, then the device it names.
    func socketDevice(sessionId: String, userId: String, deviceId: UInt32, now: Milliseconds) async throws -> SocketDevice

    // MARK: Devices and prekeys
    func addDevice(_ device: DeviceRecord, oneTimePreKeys: [(id: UInt32, encoded: [UInt8])]) async throws -> DeviceRecord
    func devices(userId: String) async throws -> [DeviceRecord]
    func device(userId: String, deviceId: UInt32) async throws -> DeviceRecord?
    func deleteDevice(userId: String, deviceId: UInt32) async throws -> Bool
    func replaceSignedPreKey(userId: String, deviceId: UInt32, encoded: [UInt8]) async throws -> Bool
    /// Returns the device's new count.
    func addOneTimePreKeys(userId: String, deviceId: UInt32, keys: [(id: UInt32, encoded: [UInt8])]) async throws -> Int
    /// Hands out one bundle per device of `userId`, each one-time prekey at most once ever.
    func claimBundles(userId: String) async throws -> [ClaimedBundle]

    // MARK: Rooms
    func createRoom(_ room: RoomRecord, ownerId: String, now: Milliseconds) async throws -> RoomRecord
    func room(code: String) async throws -> RoomRecord?
    func membership(roomId: Int64, userId: String) async throws -> MembershipRecord?
    func rooms(userId: String) async throws -> [RoomSummary]
    func memberCount(roomId: Int64) async throws -> Int
    func join(roomId: Int64, userId: String, maxMembers: Int, now: Milliseconds) async throws -> [InboxEntry]
    func leave(roomId: Int64, userId: String, now: Milliseconds) async throws -> [InboxEntry]
    func members(roomId: Int64) async throws -> [MemberRecord]
    func setRole(roomId: Int64, actorId: String, targetId: String, role: RoomRole, now: Milliseconds) async throws -> [InboxEntry]
    func kick(roomId: Int64, actorId: String, targetId: String, ban: Bool, now: Milliseconds) async throws -> [InboxEntry]
    func unban(roomId: Int64, actorId: String, targetId: String) async throws
    func bans(roomId: Int64) async throws -> [String]
    func setRoomPassword(roomId: Int64, actorId: String, hash: String?) async throws
    func deleteRoom(roomId: Int64, actorId: String, now: Milliseconds) async throws -> (attachmentIds: [String], deliveries: [InboxEntry])

    // MARK: Messages
    /// Stores a batch of sends and acknowledgements (device key → highest seq) in one transaction
    /// (group commit), sends in order.
    func append(_ sends: [PendingSend], acknowledging acks: [Int64: Int64]) async throws -> [SendOutcome]
    /// Stored deliveries to a device after `seq`, oldest first.
    func inbox(deviceKey: Int64, after seq: Int64, limit: Int) async throws -> [InboxEntry]
    /// Deliveries stored and not yet acknowledged, to every device (for the metrics).
    func pendingDeliveryCount() async throws -> Int
    /// Forgets every delivery to the device up to and including `seq`.
    func acknowledge(deviceKey: Int64, upTo seq: Int64) async throws
    func history(roomId: Int64, visibleAfter: Int64, before: Int64?, limit: Int) async throws -> [HistoryRecord]
    /// Deletes messages, events and attachments past their expiry; returns attachment ids to unlink.
    func deleteExpired(now: Milliseconds) async throws -> [String]

    // MARK: Attachments
    func createAttachment(_ attachment: AttachmentRecord, grantedTo: [String]) async throws
    func attachment(id: String) async throws -> AttachmentRecord?
    func canRead(attachmentId: String, userId: String) async throws -> Bool
    func attachmentBytes(uploaderId: String, now: Milliseconds) async throws -> Int64
    func deleteAttachment(id: String) async throws

    // MARK: Audit log
    func recordAudit(_ event: AuditEvent) async throws
    /// Newest first.
    func auditEvents(_ query: AuditQuery) async throws -> [AuditEvent]
    /// Deletes events older than `before`; returns how many.
    @discardableResult
    func deleteAudit(before: Milliseconds) async throws -> Int

    // MARK: At-rest keys
    /// Re-seals every stored payload not under `keyId` by calling `reseal`, in batches.
    func resealPayloads(notUnder keyId: String, reseal: @escaping @Sendable (SealedPayload, PayloadLocation) throws -> SealedPayload) async throws -> Int
    /// Reachability, for `/ready`.
    func ping() async throws
    /// Closes connections; the store is unusable afterwards.
    func shutdown() async
    /// Background upkeep the store wants while the server runs, called every
    /// ``maintenanceInterval``: SQLite checkpoints its write-ahead log here, off the writer's path.
    func maintain() async throws
}

extension ChatStore {
    var maintenanceInterval: Duration { .milliseconds(250) }
    func maintain() async throws {}

    func socketDevice(sessionId: String, userId: String, deviceId: UInt32, now: Milliseconds) async throws -> SocketDevice {
        try await socketDeviceInTwoReads(sessionId: sessionId, userId: userId, deviceId: deviceId, now: now)
    }

    /// The session, then the device, each with its own read.
    func socketDeviceInTwoReads(sessionId: String, userId: String, deviceId: UInt32, now: Milliseconds) async throws -> SocketDevice {
        guard try await isSessionActive(id: sessionId, now: now) else { return .sessionEnded }
        return try await device(userId: userId, deviceId: deviceId).map(SocketDevice.device) ?? .unknownDevice
    }
}

enum SocketDevice: Sendable {
    case sessionEnded
    case unknownDevice
    case device(DeviceRecord)
}
