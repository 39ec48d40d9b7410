public import Foundation
public import SecureChatAPI

/// The account this device belongs to and how to reach its server (sealed in the local store:
/// the tokens are credentials).
struct AccountRecord: Codable, Sendable {
    var server: URL
    var userId: String
    var username: String
    var deviceId: UInt32
    var accessToken: String
    var accessTokenExpiresAt: Date
    var refreshToken: String
    var refreshTokenExpiresAt: Date
    /// Prekey ids are never reused (API.md §3.3): the next one to hand out.
    var nextOneTimePreKeyId: UInt32
    var nextSignedPreKeyId: UInt32
    var currentSignedPreKeyId: UInt32

    mutating func apply(_ tokens: TokenResponse) {
        accessToken = tokens.accessToken
        accessTokenExpiresAt = tokens.accessTokenExpiresAt
        refreshToken = tokens.refreshToken
        refreshTokenExpiresAt = tokens.refreshTokenExpiresAt
    }
}

/// What this device knows about a user: the identity keys of their devices as first seen or last
/// accepted (trust on first use), and whether the user verified them.
public struct Contact: Codable, Sendable, Equatable {
    public var userId: String
    public var username: String
    /// Device id → identity key, as accepted.
    public var devices: [UInt32: Data]
    /// Devices seen since, not yet accepted: while any is here, sending to this contact is held.
    public var changedDevices: [UInt32: Data]?
    public var verified: Bool

    public var hasPendingChange: Bool { !(changedDevices ?? [:]).isEmpty }
}

/// Which conversation a message belongs to.
public enum Conversation: Hashable, Sendable, Codable {
    case direct(userId: String)
    case room(code: String)

    var archiveName: String {
        switch self {
        case .direct(let userId): "direct:\(userId)"
        case .room(let code): "room:\(code)"
        }
    }
}

/// A message as the archive keeps it and as events report it.
public struct ChatMessage: Codable, Sendable, Equatable {
    public var conversation: Conversation
    public var sender: DeviceAddress
    public var envelope: Envelope
    public var sentAt: Date
    public var outgoing: Bool
    /// Set when the sending device was not trusted when the message arrived: a device of the
    /// contact that the user has not accepted yet, or a room member nobody admitted. Show it
    /// marked, as the server could have put that device or member there.
    public var unconfirmedSender: Bool?

    public var id: String { envelope.id }

    public init(conversation: Conversation, sender: DeviceAddress, envelope: Envelope, sentAt: Date, outgoing: Bool, unconfirmedSender: Bool? = nil) {
        self.conversation = conversation
        self.sender = sender
        self.envelope = envelope
        self.sentAt = sentAt
        self.outgoing = outgoing
        self.unconfirmedSender = unconfirmedSender
    }
}

public enum ConnectionState: Sendable, Equatable {
    case connecting
    /// Connected and caught up with everything the server stored for this device.
    case online
    /// The connection dropped or could not be made; the client is trying again.
    case offline(reason: String)
    /// Stopped on purpose (``SecureChatClient/disconnect()`` or ``SecureChatClient/close()``).
    case disconnected
}

public enum ClientEvent: Sendable {
    case connection(ConnectionState)
    case message(ChatMessage)
    /// The server stored a message this device sent (it has its client id).
    case accepted(id: String)
    /// The server refused a message this device sent, for good (it is no longer queued).
    case sendFailed(id: String, reason: String)
    /// Someone started or stopped typing in a conversation (never stored anywhere).
    case typing(Conversation, sender: DeviceAddress, started: Bool)
    /// A contact's devices changed: sending to them is held until the change is accepted.
    case identityChanged(Contact)
    /// A delivery that could not be decrypted; it is acknowledged, as it never will be.
    case undecryptable(sender: DeviceAddress, reason: String)
    /// The server ended this device's session (logout elsewhere, password change): log in again.
    case sessionEnded
    /// A membership change in a room (join, leave, removal, ban, role change, deletion).
    case roomEvent(ServerFrame.RoomEvent)
    /// The server lists a room member whom no admin's device admitted: this device gives them no
    /// keys (they cannot read what it sends) until an admin admits them, or the user trusts
    /// them here with ``SecureChatClient/trustMember(_:in:)``.
    case unconfirmedMember(room: String, userId: String)
    /// A member was admitted (by an admin's signed message, or by this device's user).
    case memberAdmitted(room: String, userId: String, by: String)
}

/// Where this device stands with its own sender key in one room.
struct RoomKeyState: Codable, Sendable {
    /// The chain `distributedTo` refers to; a new chain starts the set again.
    var chainId: UInt32?
    /// Devices ("userId.deviceId") that have this chain.
    var distributedTo: Set<String> = []
    /// Set when someone left or was removed: the next send starts a new chain first.
    var rotateBeforeNextSend = false
    /// The members this device trusts to read the room (user ids): the members listed when it
    /// joined (or itself, when it created the room), then those an admin's device admitted with a
    /// signed message. Nil until first set. Others get none of this device's keys.
    var admitted: Set<String>?
    /// Members the server lists who are not admitted yet, already reported to the application.
    var unconfirmed: Set<String> = []
    /// On an admin's device: admit everyone who joins, as soon as the join is seen.
    var autoAdmit = false
}
