public import Foundation

/// One device of one account. Every delivery is addressed to devices, never to accounts.
public struct DeviceAddress: Codable, Sendable, Hashable {
    public var userId: String
    public var deviceId: UInt32
    public init(userId: String, deviceId: UInt32) {
        self.userId = userId
        self.deviceId = deviceId
    }
}

/// A pairwise envelope: ciphertext for one device (Double Ratchet messages differ per device).
public struct RecipientCiphertext: Codable, Sendable, Equatable {
    public var userId: String
    public var deviceId: UInt32
    public var ciphertext: Data
    public init(userId: String, deviceId: UInt32, ciphertext: Data) {
        self.userId = userId
        self.deviceId = deviceId
        self.ciphertext = ciphertext
    }
}

/// The JSON frames a client sends over `/v1/ws`, discriminated by `"type"`. See docs/API.md.
public enum ClientFrame: Sendable, Equatable {
    /// Must be the first frame: authenticates the socket (tokens never go in URLs) and resumes
    /// delivery after the last sequence number the device has processed.
    case hello(Hello)
    /// A message to store and deliver: either to a room (one sender-key ciphertext for every
    /// member device) or to listed devices (one pairwise ciphertext each).
    case send(Send)
    /// The device has processed every delivery up to and including `seq`.
    case ack(Ack)
    /// Relayed at once to connected devices and never stored: typing indicators, call signalling.
    case ephemeral(Ephemeral)

    public struct Hello: Codable, Sendable, Equatable {
        public var token: String
        public var deviceId: UInt32
        /// The highest sequence number this device has processed, if it knows one.
        public var resumeAfter: Int64?
        public init(token: String, deviceId: UInt32, resumeAfter: Int64? = nil) {
            self.token = token
            self.deviceId = deviceId
            self.resumeAfter = resumeAfter
        }
    }

    public struct Send: Codable, Sendable, Equatable {
        /// Chosen by the client, unique per sending device: a retried send with the same id is
        /// stored once and answered with the first answer.
        public var id: String
        public var room: String?
        public var ciphertext: Data?
        public var recipients: [RecipientCiphertext]?
        /// Attachments the message points at: they are deleted with it.
        public var attachmentIds: [String]?
        public init(id: String, room: String, ciphertext: Data, attachmentIds: [String]? = nil) {
            self.id = id
            self.room = room
            self.ciphertext = ciphertext
            self.recipients = nil
            self.attachmentIds = attachmentIds
        }
        public init(id: String, recipients: [RecipientCiphertext], attachmentIds: [String]? = nil) {
            self.id = id
            self.room = nil
            self.ciphertext = nil
            self.recipients = recipients
            self.attachmentIds = attachmentIds
        }
    }

    public struct Ack: Codable, Sendable, Equatable {
        public var seq: Int64
        public init(seq: Int64) { self.seq = seq }
    }

    public struct Ephemeral: Codable, Sendable, Equatable {
        public var room: String?
        public var payload: Data?
        public var recipients: [RecipientCiphertext]?
        public init(room: String, payload: Data) {
            self.room = room
            self.payload = payload
            self.recipients = nil
        }
        public init(recipients: [RecipientCiphertext]) {
            self.room = nil
            self.payload = nil
            self.recipients = recipients
        }
    }
}

/// The JSON frames the server sends over `/v1/ws`, discriminated by `"type"`. See docs/API.md.
public enum ServerFrame: Sendable, Equatable {
    /// The answer to `hello`; stored deliveries after `resumeAfter` follow, then `caughtUp`.
    case welcome(Welcome)
    /// A send is durably stored: it will reach every recipient device. Sent once per `send`,
    /// and again with `duplicate: true` for a retried id.
    case accepted(Accepted)
    /// A stored message for this device. Acknowledge with `ack` once processed.
    case message(Delivery)
    /// A stored membership change in one of the device's rooms; acknowledged like messages.
    case roomEvent(RoomEvent)
    /// Every stored delivery up to `seq` has been sent; later ones arrive as they are sent.
    case caughtUp(CaughtUp)
    /// A relayed ephemeral payload.
    case ephemeral(EphemeralDelivery)
    /// The device's one-time prekeys are running low: upload more.
    case preKeysLow(PreKeysLow)
    /// A frame was refused; `id` names the send it concerns, if any. The socket stays open
    /// unless the error is about authentication.
    case error(ErrorFrame)

    public struct Welcome: Codable, Sendable, Equatable {
        public var userId: String
        public var deviceId: UInt32
        /// The sequence number of the last delivery stored for this device. A client whose own
        /// counter is higher holds state from before a restore: the server ignored its
        /// `resumeAfter` and sends every stored delivery, so the client resets its counter to 0.
        public var lastSeq: Int64
        public init(userId: String, deviceId: UInt32, lastSeq: Int64) {
            self.userId = userId
            self.deviceId = deviceId
            self.lastSeq = lastSeq
        }
    }

    public struct Accepted: Codable, Sendable, Equatable {
        public var id: String
        public var messageId: Int64
        public var sentAt: Date
        public var duplicate: Bool
        public init(id: String, messageId: Int64, sentAt: Date, duplicate: Bool) {
            self.id = id
            self.messageId = messageId
            self.sentAt = sentAt
            self.duplicate = duplicate
        }
    }

    public struct Delivery: Codable, Sendable, Equatable {
        /// Per receiving device, increasing by one with each stored delivery to it.
        public var seq: Int64
        public var messageId: Int64
        public var sender: DeviceAddress
        public var clientMessageId: String
        /// The room code for a room message, absent for a pairwise one.
        public var room: String?
        public var ciphertext: Data
        public var sentAt: Date
        public init(
            seq: Int64, messageId: Int64, sender: DeviceAddress, clientMessageId: String, room: String?,
            ciphertext: Data, sentAt: Date
        ) {
            self.seq = seq
            self.messageId = messageId
            self.sender = sender
            self.clientMessageId = clientMessageId
            self.room = room
            self.ciphertext = ciphertext
            self.sentAt = sentAt
        }
    }

    public enum MembershipChange: String, Codable, Sendable {
        case joined, left, kicked, banned, roleChanged, deleted
    }

    public struct RoomEvent: Codable, Sendable, Equatable {
        public var seq: Int64
        public var room: String
        public var change: MembershipChange
        /// The member concerned.
        public var userId: String
        /// Who did it (the member themselves for `joined` and `left`).
        public var actorUserId: String
        public var role: RoomRole?
        public var at: Date
        public init(
            seq: Int64, room: String, change: MembershipChange, userId: String, actorUserId: String, role: RoomRole?,
            at: Date
        ) {
            self.seq = seq
            self.room = room
            self.change = change
            self.userId = userId
            self.actorUserId = actorUserId
            self.role = role
            self.at = at
        }
    }

    public struct CaughtUp: Codable, Sendable, Equatable {
        public var seq: Int64
        public init(seq: Int64) { self.seq = seq }
    }

    public struct EphemeralDelivery: Codable, Sendable, Equatable {
        public var sender: DeviceAddress
        public var room: String?
        public var payload: Data
        public init(sender: DeviceAddress, room: String?, payload: Data) {
            self.sender = sender
            self.room = room
            self.payload = payload
        }
    }

    public struct PreKeysLow: Codable, Sendable, Equatable {
        public var count: Int
        public init(count: Int) { self.count = count }
    }

    public struct ErrorFrame: Codable, Sendable, Equatable {
        public var code: APIErrorCode
        public var message: String
        public var id: String?
        /// For `rate_limited`: seconds before the refused frame may be sent again.
        public var retryAfter: Int?
        public init(code: APIErrorCode, message: String, id: String? = nil, retryAfter: Int? = nil) {
            self.code = code
            self.message = message
            self.id = id
            self.retryAfter = retryAfter
        }
    }
}
