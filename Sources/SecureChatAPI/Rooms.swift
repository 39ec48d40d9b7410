public import Foundation

/// What a member may do in a room. The creator is the owner; there is exactly one owner.
public enum RoomRole: String, Codable, Sendable, Comparable, CaseIterable {
    case member
    case admin
    case owner

    private var rank: Int {
        switch self {
        case .member: 0
        case .admin: 1
        case .owner: 2
        }
    }

    public static func < (lhs: RoomRole, rhs: RoomRole) -> Bool { lhs.rank < rhs.rank }
}

/// `POST /v1/rooms`.
public struct CreateRoomRequest: Codable, Sendable {
    public var name: String
    /// Optional: people then need the code and the password to join.
    public var password: String?
    /// Optional: how long messages are kept, at most the server's retention.
    public var retentionSeconds: Int64?
    public init(name: String, password: String? = nil, retentionSeconds: Int64? = nil) {
        self.name = name
        self.password = password
        self.retentionSeconds = retentionSeconds
    }
}

/// A room as its members see it.
public struct RoomResponse: Codable, Sendable, Equatable {
    /// The join code: 20 characters of base32, 100 random bits.
    public var code: String
    public var name: String
    public var passwordRequired: Bool
    public var retentionSeconds: Int64
    public var memberCount: Int
    public var role: RoomRole
    public var createdAt: Date
    public init(
        code: String, name: String, passwordRequired: Bool, retentionSeconds: Int64, memberCount: Int,
        role: RoomRole, createdAt: Date
    ) {
        self.code = code
        self.name = name
        self.passwordRequired = passwordRequired
        self.retentionSeconds = retentionSeconds
        self.memberCount = memberCount
        self.role = role
        self.createdAt = createdAt
    }
}

/// `GET /v1/rooms/{code}` for someone who is not a member: enough to show a join screen.
public struct RoomPreview: Codable, Sendable, Equatable {
    public var code: String
    public var name: String
    public var passwordRequired: Bool
    public init(code: String, name: String, passwordRequired: Bool) {
        self.code = code
        self.name = name
        self.passwordRequired = passwordRequired
    }
}

public struct RoomListResponse: Codable, Sendable {
    public var rooms: [RoomResponse]
    public init(rooms: [RoomResponse]) { self.rooms = rooms }
}

/// `POST /v1/rooms/{code}/join`.
public struct JoinRoomRequest: Codable, Sendable {
    public var password: String?
    public init(password: String? = nil) { self.password = password }
}

/// `PUT /v1/rooms/{code}/password`: `null` removes the password.
public struct RoomPasswordRequest: Codable, Sendable {
    public var password: String?
    public init(password: String?) { self.password = password }
}

/// `PUT /v1/rooms/{code}/members/{userId}/role`: only the owner changes roles; ownership is
/// handed over by making someone else `owner`, which makes the previous owner an admin.
public struct RoleChangeRequest: Codable, Sendable {
    public var role: RoomRole
    public init(role: RoomRole) { self.role = role }
}

/// `POST /v1/rooms/{code}/bans`.
public struct BanRequest: Codable, Sendable {
    public var userId: String
    public init(userId: String) { self.userId = userId }
}

/// One member: their devices are listed so that senders know whom to give their sender key.
public struct MemberResponse: Codable, Sendable, Equatable {
    public var userId: String
    public var username: String
    public var role: RoomRole
    public var deviceIds: [UInt32]
    public var joinedAt: Date
    public init(userId: String, username: String, role: RoomRole, deviceIds: [UInt32], joinedAt: Date) {
        self.userId = userId
        self.username = username
        self.role = role
        self.deviceIds = deviceIds
        self.joinedAt = joinedAt
    }
}

public struct MemberListResponse: Codable, Sendable {
    public var members: [MemberResponse]
    public init(members: [MemberResponse]) { self.members = members }
}

public struct BanListResponse: Codable, Sendable {
    public var userIds: [String]
    public init(userIds: [String]) { self.userIds = userIds }
}

/// One stored room message, as history returns it and as it was delivered.
public struct HistoryMessage: Codable, Sendable, Equatable {
    public var messageId: Int64
    public var sender: DeviceAddress
    public var clientMessageId: String
    public var ciphertext: Data
    public var sentAt: Date
    public init(messageId: Int64, sender: DeviceAddress, clientMessageId: String, ciphertext: Data, sentAt: Date) {
        self.messageId = messageId
        self.sender = sender
        self.clientMessageId = clientMessageId
        self.ciphertext = ciphertext
        self.sentAt = sentAt
    }
}

/// `GET /v1/rooms/{code}/messages?before=ID&limit=N`: newest first; pass the last `messageId`
/// as `before` for the next page. Only messages sent since the caller joined are returned.
public struct HistoryPage: Codable, Sendable {
    public var messages: [HistoryMessage]
    /// The `before` value for the next page, absent on the last page.
    public var nextBefore: Int64?
    public init(messages: [HistoryMessage], nextBefore: Int64?) {
        self.messages = messages
        self.nextBefore = nextBefore
    }
}
