public import Foundation

/// What travels inside the encryption (PROTOCOL.md §15): one JSON object per message, padded
/// before encryption. The server never sees any of it.
public struct Envelope: Sendable, Equatable {
    /// The sender's id for this message, unique per sending device; edits, deletes, replies,
    /// reactions and receipts refer to messages by it (with the sender's user id).
    public var id: String
    /// On copies sent to the sender's own other devices: the user the conversation is with.
    public var conversation: String?
    public var content: Content

    public init(id: String, conversation: String? = nil, content: Content) {
        self.id = id
        self.conversation = conversation
        self.content = content
    }
}

public enum Content: Sendable, Equatable {
    case text(String, replyTo: String?)
    case edit(target: String, text: String)
    case delete(target: String)
    case reaction(target: String, emoji: String, remove: Bool)
    case attachment(AttachmentPointer, caption: String?)
    case receipt(Receipt, ids: [String])
    case typing(started: Bool)
    /// Call set-up for the web client's WebRTC calls: offers, answers, ICE candidates, ends.
    case call(CallSignal)
    /// The sender's room key (PROTOCOL.md §7.2), sent only over pairwise sessions. The SDK
    /// handles it; applications never see it as a message.
    case senderKey(room: String, distribution: Data)
    /// A room message from an admin's device: these users may read the room. Signed, like every
    /// room message, with the admin device's sender key.
    case admission(userIds: [String])
    /// The sender's avatar (an encrypted attachment; nil when removed), so that contacts and
    /// co-members can decrypt the picture the server's profile names only by id.
    case profile(avatar: AttachmentPointer?)

    public enum Receipt: String, Codable, Sendable {
        case delivered, read
    }

    public var isReceipt: Bool {
        if case .receipt = self { true } else { false }
    }
}

/// One step of setting up or ending a call (WebRTC's session descriptions and candidates travel
/// end-to-end encrypted, so the server never learns them).
public struct CallSignal: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable {
        case offer, answer, candidate, hangup, reject
    }

    /// Random, chosen by the caller; every signal of one call carries it.
    public var callId: String
    public var kind: Kind
    /// The session description, for `offer` and `answer`.
    public var sdp: String?
    /// An ICE candidate line, for `candidate`.
    public var candidate: String?
    /// Whether the call carries video (on `offer`).
    public var video: Bool?

    public init(callId: String, kind: Kind, sdp: String? = nil, candidate: String? = nil, video: Bool? = nil) {
        self.callId = callId
        self.kind = kind
        self.sdp = sdp
        self.candidate = candidate
        self.video = video
    }
}

/// Everything needed to fetch and decrypt an attachment; it travels only inside the encryption.
public struct AttachmentPointer: Codable, Sendable, Equatable {
    public var attachmentId: String
    public var key: Data
    public var digest: Data
    public var size: UInt64
    public var name: String
    public var contentType: String

    public init(attachmentId: String, key: Data, digest: Data, size: UInt64, name: String, contentType: String) {
        self.attachmentId = attachmentId
        self.key = key
        self.digest = digest
        self.size = size
        self.name = name
        self.contentType = contentType
    }
}

extension Envelope: Codable {
    /// The version of this JSON layout: a receiver refuses versions it does not know.
    static let version = 1

    private enum Keys: String, CodingKey {
        case v, id, conversation, type, text, replyTo, target, emoji, remove, attachment, caption, receipt, ids, started, room, distribution, userIds, call, avatar
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: Keys.self)
        let version = try container.decode(Int.self, forKey: .v)
        guard version == Self.version else {
            throw DecodingError.dataCorruptedError(forKey: .v, in: container, debugDescription: "unsupported content version \(version)")
        }
        id = try container.decode(String.self, forKey: .id)
        conversation = try container.decodeIfPresent(String.self, forKey: .conversation)
        switch try container.decode(String.self, forKey: .type) {
        case "text":
            content = .text(try container.decode(String.self, forKey: .text), replyTo: try container.decodeIfPresent(String.self, forKey: .replyTo))
        case "edit":
            content = .edit(target: try container.decode(String.self, forKey: .target), text: try container.decode(String.self, forKey: .text))
        case "delete":
            content = .delete(target: try container.decode(String.self, forKey: .target))
        case "reaction":
            content = .reaction(
                target: try container.decode(String.self, forKey: .target), emoji: try container.decode(String.self, forKey: .emoji),
                remove: try container.decodeIfPresent(Bool.self, forKey: .remove) ?? false)
        case "attachment":
            content = .attachment(
                try container.decode(AttachmentPointer.self, forKey: .attachment),
                caption: try container.decodeIfPresent(String.self, forKey: .caption))
        case "receipt":
            content = .receipt(try container.decode(Content.Receipt.self, forKey: .receipt), ids: try container.decode([String].self, forKey: .ids))
        case "typing":
            content = .typing(started: try container.decode(Bool.self, forKey: .started))
        case "senderKey":
            content = .senderKey(room: try container.decode(String.self, forKey: .room), distribution: try container.decode(Data.self, forKey: .distribution))
        case "call":
            content = .call(try container.decode(CallSignal.self, forKey: .call))
        case "admission":
            content = .admission(userIds: try container.decode([String].self, forKey: .userIds))
        case "profile":
            content = .profile(avatar: try container.decodeIfPresent(AttachmentPointer.self, forKey: .avatar))
        case let other:
            throw DecodingError.dataCorruptedError(forKey: .type, in: container, debugDescription: "unknown content type \(other)")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Keys.self)
        try container.encode(Self.version, forKey: .v)
        try container.encode(id, forKey: .id)
        try container.encodeIfPresent(conversation, forKey: .conversation)
        switch content {
        case .text(let text, let replyTo):
            try container.encode("text", forKey: .type)
            try container.encode(text, forKey: .text)
            try container.encodeIfPresent(replyTo, forKey: .replyTo)
        case .edit(let target, let text):
            try container.encode("edit", forKey: .type)
            try container.encode(target, forKey: .target)
            try container.encode(text, forKey: .text)
        case .delete(let target):
            try container.encode("delete", forKey: .type)
            try container.encode(target, forKey: .target)
        case .reaction(let target, let emoji, let remove):
            try container.encode("reaction", forKey: .type)
            try container.encode(target, forKey: .target)
            try container.encode(emoji, forKey: .emoji)
            if remove { try container.encode(true, forKey: .remove) }
        case .attachment(let pointer, let caption):
            try container.encode("attachment", forKey: .type)
            try container.encode(pointer, forKey: .attachment)
            try container.encodeIfPresent(caption, forKey: .caption)
        case .receipt(let receipt, let ids):
            try container.encode("receipt", forKey: .type)
            try container.encode(receipt, forKey: .receipt)
            try container.encode(ids, forKey: .ids)
        case .typing(let started):
            try container.encode("typing", forKey: .type)
            try container.encode(started, forKey: .started)
        case .call(let signal):
            try container.encode("call", forKey: .type)
            try container.encode(signal, forKey: .call)
        case .admission(let userIds):
            try container.encode("admission", forKey: .type)
            try container.encode(userIds, forKey: .userIds)
        case .profile(let avatar):
            try container.encode("profile", forKey: .type)
            try container.encodeIfPresent(avatar, forKey: .avatar)
        case .senderKey(let room, let distribution):
            try container.encode("senderKey", forKey: .type)
            try container.encode(room, forKey: .room)
            try container.encode(distribution, forKey: .distribution)
        }
    }
}
