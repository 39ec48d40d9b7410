import Foundation
import SecureChatAPI

/// Times in the store are milliseconds since 1970 UTC, the API's unit.
typealias Milliseconds = Int64

struct UserRecord: Sendable, Equatable {
    var id: String
    var username: String
    var passwordHash: String
    var displayName: String
    var statusText: String
    var avatarAttachmentId: String?
    var createdAt: Milliseconds
}

struct SessionRecord: Sendable, Equatable {
    var id: String
    var userId: String
    var expiresAt: Milliseconds
}

enum RefreshOutcome: Sendable, Equatable {
    case rotated(SessionRecord)
    /// An already used token came back: the whole family (this session) was revoked.
    case reused(sessionId: String)
    case unknown
    case expired
}

struct DeviceRecord: Sendable, Equatable {
    /// The store's own key, never on the wire.
    var key: Int64
    var userId: String
    var deviceId: UInt32
    var name: String
    var identityKey: [UInt8]
    var signedPreKey: [UInt8]
    var createdAt: Milliseconds
    var oneTimePreKeyCount: Int
    /// The sequence number of the last delivery stored for the device.
    var lastSeq: Int64 = 0
}

struct ClaimedBundle: Sendable, Equatable {
    var device: DeviceRecord
    var oneTimePreKey: [UInt8]?
    /// One-time prekeys the device has left after this claim.
    var remaining: Int
}

struct RoomRecord: Sendable, Equatable {
    var id: Int64
    var code: String
    var name: String
    var passwordHash: String?
    var retentionSeconds: Int64
    var createdAt: Milliseconds
}

struct MembershipRecord: Sendable, Equatable {
    var roomId: Int64
    var userId: String
    var role: RoomRole
    var joinedAt: Milliseconds
    /// History is visible from messages after this id: a new member does not read the past.
    var historyAfterMessageId: Int64
}

struct MemberRecord: Sendable, Equatable {
    var userId: String
    var username: String
    var role: RoomRole
    var deviceIds: [UInt32]
    var joinedAt: Milliseconds
}

struct RoomSummary: Sendable, Equatable {
    var room: RoomRecord
    var role: RoomRole
    var memberCount: Int
}

/// A payload sealed by ``AtRestCipher`` under the key `keyId`.
struct SealedPayload: Sendable, Equatable {
    var keyId: String
    var bytes: [UInt8]
    /// The bytes this payload was sealed from, kept while the process that sealed them still holds
    /// the send: a live delivery then skips opening what it has just sealed. Never stored.
    var unsealed: Data?

    init(keyId: String, bytes: [UInt8], unsealed: Data? = nil) {
        self.keyId = keyId
        self.bytes = bytes
        self.unsealed = unsealed
    }

    /// Two payloads are equal when their stored form is: `unsealed` is a cache.
    static func == (lhs: SealedPayload, rhs: SealedPayload) -> Bool {
        lhs.keyId == rhs.keyId && lhs.bytes == rhs.bytes
    }
}

/// Where a sealed payload belongs, which its at-rest seal is bound to.
struct PayloadLocation: Sendable {
    var sender: DeviceAddress
    var clientMessageId: String
    /// The receiving device, for a pairwise payload.
    var recipient: DeviceAddress?
}

/// One accepted `send`, sealed, as the writer hands it to the store.
struct PendingSend: Sendable {
    enum Target: Sendable {
        case room(code: String, ciphertext: SealedPayload)
        case devices([(address: DeviceAddress, ciphertext: SealedPayload)])
    }

    var senderUserId: String
    var senderDeviceId: UInt32
    var senderDeviceKey: Int64
    var clientMessageId: String
    var target: Target
    var attachmentIds: [String]
    var sentAt: Milliseconds
    var expiresAt: Milliseconds
}

enum SendOutcome: Sendable {
    case accepted(messageId: Int64, sentAt: Milliseconds, duplicate: Bool, deliveries: [InboxEntry])
    case refused(APIErrorCode, String)
}

/// One stored delivery to one device.
struct InboxEntry: Sendable {
    enum Content: Sendable {
        case message(
            messageId: Int64, sender: DeviceAddress, clientMessageId: String, roomCode: String?,
            ciphertext: SealedPayload, sentAt: Milliseconds)
        case roomEvent(RoomEventRecord)
    }

    var deviceKey: Int64
    var seq: Int64
    var content: Content
}

struct RoomEventRecord: Sendable, Codable, Equatable {
    var room: String
    var change: ServerFrame.MembershipChange
    var userId: String
    var actorUserId: String
    var role: RoomRole?
    var at: Milliseconds
}

struct HistoryRecord: Sendable {
    var messageId: Int64
    var sender: DeviceAddress
    var clientMessageId: String
    var ciphertext: SealedPayload
    var sentAt: Milliseconds
}

struct AttachmentRecord: Sendable, Equatable {
    var id: String
    var uploaderUserId: String
    var roomId: Int64?
    var size: Int64
    var createdAt: Milliseconds
    var expiresAt: Milliseconds
}
