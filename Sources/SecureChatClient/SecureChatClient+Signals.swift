import Foundation
import SecureChatAPI
import SecureChatKeys
import SecureChatProtocol

/// Receipts, typing indicators, and the conversation as a person sees it (edits, deletions and
/// reactions applied to the messages they refer to).
extension SecureChatClient {
    /// Tests only: makes the stored access token look spent, so the next use refreshes it.
    func expireAccessTokenForTesting() {
        account.accessTokenExpiresAt = Date(timeIntervalSinceNow: -1)
    }

    /// Tests only: how long device lists are reused.
    func setDeviceListLifetime(_ seconds: TimeInterval) {
        deviceListLifetime = seconds
    }

    // MARK: Receipts

    /// Turns automatic `delivered` receipts for direct messages on or off (on by default).
    public func setSendsDeliveryReceipts(_ on: Bool) {
        sendsDeliveryReceipts = on
    }

    /// Tells the senders of `messages` that they were read. Receipts go to each sender alone,
    /// over the pairwise sessions, also for room messages.
    public func markRead(_ messages: [ChatMessage]) async throws(ClientError) {
        let bySender = Dictionary(grouping: messages.filter { !$0.outgoing }, by: \.sender.userId)
        for (userId, read) in bySender {
            try await send(.receipt(.read, ids: read.map(\.id)), toUserId: userId)
        }
    }

    /// A direct message arrived: its sender hears so (gathered while the backlog arrives).
    func acknowledgeDelivery(of message: ChatMessage) async {
        guard case .direct = message.conversation else { return }
        pendingReceipts[message.sender.userId, default: []].append(message.id)
        if connection.caughtUp { await sendPendingReceipts() }
    }

    func sendPendingReceipts() async {
        let pending = pendingReceipts
        pendingReceipts = [:]
        for (userId, ids) in pending {
            for batch in stride(from: 0, to: ids.count, by: 500) {
                do {
                    try await send(.receipt(.delivered, ids: Array(ids[batch..<min(batch + 500, ids.count)])), toUserId: userId)
                } catch {
                    // A receipt is a courtesy: a contact whose devices changed does not get one.
                    logger.debug("a delivery receipt was not sent", metadata: ["error": "\(error)"])
                }
            }
        }
    }

    // MARK: Typing

    /// Says that this device's user started or stopped typing. Relayed to whoever is connected
    /// and never stored; nothing is sent while offline.
    public func sendTyping(_ started: Bool, in conversation: Conversation) async throws(ClientError) {
        guard connection.welcomed else { return }
        let envelope = Envelope(id: Self.newMessageId(), content: .typing(started: started))
        let plaintext = MessagePadding.pad(Array(try Self.encode(envelope)))
        var changes = LocalStore.Changes()
        let frame: ClientFrame.Ephemeral
        switch conversation {
        case .direct(let userId):
            let devices = try await devices(of: userId).map { DeviceAddress(userId: userId, deviceId: $0.deviceId) }
            try await ensureSessions(for: devices)
            var ciphertexts: [RecipientCiphertext] = []
            for device in devices { ciphertexts.append(try encryptPairwise(plaintext, for: device, changes: &changes)) }
            frame = ClientFrame.Ephemeral(recipients: ciphertexts)
        case .room(let code):
            // Only members who already have this device's key can read it; no key is handed out for this.
            guard var senderKey = senderKeys[code] else { return }
            let message: SenderKeyMessage
            do {
                message = try senderKey.encrypt(plaintext)
            } catch {
                throw .cryptography("\(error)")
            }
            senderKeys[code] = senderKey
            changes.put(.senderKeyState, code, Data(senderKey.serialized.bytes))
            frame = ClientFrame.Ephemeral(room: code, payload: Data(message.serialized))
        }
        try commit(changes)
        do {
            try await write(.ephemeral(frame))
        } catch {
            logger.debug("a typing indicator was not sent", metadata: ["error": "\(error)"])
        }
    }

    /// A relayed frame: only typing indicators are expected; anything else is ignored.
    func receiveEphemeral(_ ephemeral: ServerFrame.EphemeralDelivery) throws {
        let delivery = ServerFrame.Delivery(
            seq: 0, messageId: 0, sender: ephemeral.sender, clientMessageId: "", room: ephemeral.room,
            ciphertext: ephemeral.payload, sentAt: Date())
        // A relayed frame never starts anything: no session from a prekey message, no first contact.
        guard ephemeral.room != nil || (sessions[ephemeral.sender] != nil && contacts[ephemeral.sender.userId] != nil) else { return }
        var changes = LocalStore.Changes()
        let plaintext: [UInt8]
        do {
            if let room = ephemeral.room {
                plaintext = try decryptRoomMessage(delivery, room: room, changes: &changes)
            } else {
                plaintext = try decrypt(delivery, changes: &changes)
            }
        } catch {
            logger.debug("a relayed frame could not be decrypted", metadata: ["error": "\(error)"])
            return
        }
        try commit(changes)
        guard let unpadded = try? MessagePadding.unpad(plaintext),
              let envelope = try? APIJSON.makeDecoder().decode(Envelope.self, from: Data(unpadded)),
              case .typing(let started) = envelope.content
        else { return }
        let conversation: Conversation = ephemeral.room.map { .room(code: $0) } ?? .direct(userId: ephemeral.sender.userId)
        emit(.typing(conversation, sender: ephemeral.sender, started: started))
    }

    // MARK: Timeline

    /// The archived conversation as it should be shown: each text or file message once, with
    /// edits (by its sender only) applied, deletions (by its sender only) blanking it, and
    /// reactions gathered. Oldest first; `limit` counts archived entries, newest kept.
    public func timeline(_ conversation: Conversation, limit: Int = 200) throws(ClientError) -> [TimelineItem] {
        var items: [TimelineItem] = []
        var index: [String: Int] = [:]
        func key(_ sender: String, _ id: String) -> String { "\(sender)/\(id)" }
        for message in try history(conversation, limit: limit) {
            let sender = message.sender.userId
            switch message.envelope.content {
            case .text, .attachment:
                index[key(sender, message.id)] = items.count
                items.append(TimelineItem(message: message))
            case .edit(let target, let text):
                if let position = index[key(sender, target)], !items[position].deleted {
                    items[position].text = text
                    items[position].edited = true
                }
            case .delete(let target):
                if let position = index[key(sender, target)] {
                    items[position].deleted = true
                    items[position].text = nil
                    items[position].reactions = [:]
                }
            case .reaction(let target, let emoji, let remove):
                // A reaction names a message by id; ids are random, so one match is the message.
                if let position = items.lastIndex(where: { $0.message.id == target }), !items[position].deleted {
                    if remove {
                        items[position].reactions[emoji]?.remove(sender)
                        if items[position].reactions[emoji]?.isEmpty == true { items[position].reactions[emoji] = nil }
                    } else {
                        items[position].reactions[emoji, default: []].insert(sender)
                    }
                }
            case .receipt, .typing, .senderKey, .admission, .call, .profile:
                break
            }
        }
        return items
    }
}

/// One message of a conversation as shown: its current text, whether it was edited or deleted,
/// and who reacted with what.
public struct TimelineItem: Sendable, Equatable {
    public var message: ChatMessage
    /// The text after the latest edit (for a file, its caption); nil once deleted.
    public var text: String?
    public var edited = false
    public var deleted = false
    /// Emoji → the user ids who reacted with it.
    public var reactions: [String: Set<String>] = [:]

    init(message: ChatMessage) {
        self.message = message
        switch message.envelope.content {
        case .text(let text, _): self.text = text
        case .attachment(_, let caption): self.text = caption
        default: self.text = nil
        }
    }

    /// The message this one answers, if any.
    public var replyTo: String? {
        if case .text(_, let replyTo) = message.envelope.content { replyTo } else { nil }
    }
}
