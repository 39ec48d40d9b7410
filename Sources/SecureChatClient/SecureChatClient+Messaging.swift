import Foundation
import SecureChatAPI
import SecureChatKeys
import SecureChatProtocol

extension SecureChatClient {
    // MARK: Sending

    /// Sends a text to a user (by username), encrypted for each of their devices and for this
    /// account's other devices. Returns once it is queued durably on this device; it reaches the
    /// server as soon as the connection is up (``flush(timeout:)`` waits for that).
    @discardableResult
    public func send(_ text: String, to username: String, replyTo: String? = nil) async throws(ClientError) -> ChatMessage {
        try await send(.text(text, replyTo: replyTo), to: username)
    }

    /// Sends any content to a user; see ``send(_:to:replyTo:)``.
    @discardableResult
    public func send(_ content: Content, to username: String) async throws(ClientError) -> ChatMessage {
        let contact = try await resolve(username: username)
        return try await send(content, toUserId: contact.userId)
    }

    @discardableResult
    public func send(_ content: Content, toUserId userId: String) async throws(ClientError) -> ChatMessage {
        guard !isClosed else { throw .closed }
        let theirs = try await devices(of: userId)
        guard !theirs.isEmpty else { throw .noDevices(contacts[userId]?.username ?? userId) }
        let mine = try await devices(of: account.userId).filter { $0.deviceId != account.deviceId }
        let recipients = theirs.map { DeviceAddress(userId: userId, deviceId: $0.deviceId) }
            + mine.map { DeviceAddress(userId: account.userId, deviceId: $0.deviceId) }
        try await ensureSessions(for: recipients)

        let id = Self.newMessageId()
        let envelope = Envelope(id: id, content: content)
        let copy = Envelope(id: id, conversation: userId, content: content)
        var changes = LocalStore.Changes()
        var ciphertexts: [RecipientCiphertext] = []
        let forThem = MessagePadding.pad(Array(try Self.encode(envelope)))
        let forMe = MessagePadding.pad(Array(try Self.encode(copy)))
        let sessionsBefore = sessions
        do {
            for recipient in recipients {
                ciphertexts.append(try encryptPairwise(recipient.userId == userId ? forThem : forMe, for: recipient, changes: &changes))
            }
            let frame = ClientFrame.Send(id: id, recipients: ciphertexts)
            let message = ChatMessage(conversation: .direct(userId: userId), sender: address, envelope: envelope, sentAt: Date(), outgoing: true)
            changes.enqueue(id: id, try Self.encode(ClientFrame.send(frame)))
            if Self.isArchived(content) { changes.archive(message.conversation.archiveName, try Self.encode(message)) }
            // The advanced ratchets, the queued frame and the archive entry are one commit: a crash
            // never leaves a ciphertext queued under keys the sessions have forgotten, or the reverse.
            try commit(changes)
        } catch {
            sessions = sessionsBefore
            throw error
        }
        await sendOutboxIfConnected()
        return ChatMessage(conversation: .direct(userId: userId), sender: address, envelope: envelope, sentAt: Date(), outgoing: true)
    }

    /// Encrypts for one device with its session, which advances in memory and in `changes`.
    func encryptPairwise(_ plaintext: [UInt8], for recipient: DeviceAddress, changes: inout LocalStore.Changes) throws(ClientError) -> RecipientCiphertext {
        guard var session = sessions[recipient] else { throw .cryptography("no session with \(recipient.userId).\(recipient.deviceId)") }
        let message: SessionMessage
        do {
            message = try session.encrypt(plaintext)
        } catch {
            throw .cryptography("\(error)")
        }
        sessions[recipient] = session
        changes.put(.session, Self.sessionName(recipient), Data(session.serialized.bytes))
        return RecipientCiphertext(userId: recipient.userId, deviceId: recipient.deviceId, ciphertext: Data(message.serialized))
    }

    /// A client message id: 16 random bytes in base64url (no padding), unique per device.
    static func newMessageId() -> String {
        Data(SecretBytes.random(count: 16).bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    /// The contact of a username, looked up on the server the first time.
    func resolve(username: String) async throws(ClientError) -> Contact {
        if let known = contacts.values.first(where: { $0.username.lowercased() == username.lowercased() }) { return known }
        let token = try await validToken()
        let found: UserLookupResponse
        do {
            found = try await api.send(.GET, "/v1/users?username=\(APIClient.segment(username))", token: token)
        } catch .server(404, _, _) {
            throw .unknownUser(username)
        }
        if let known = contacts[found.userId] { return known }
        return Contact(userId: found.userId, username: found.username, devices: [:], changedDevices: nil, verified: false)
    }

    /// How long a fetched device list is used for sending, by default. A device added in the meantime misses
    /// what is sent during that time; a deleted one makes the server refuse, and the send is
    /// repeated without it.
    static let defaultDeviceListLifetime: TimeInterval = 10

    /// A user's accepted devices, fetched again when the last list is older than `deviceListLifetime`.
    func devices(of userId: String) async throws(ClientError) -> [PublicDevice] {
        if let cached = deviceLists[userId], -cached.fetchedAt.timeIntervalSinceNow < deviceListLifetime,
           contacts[userId]?.hasPendingChange == false {
            return cached.devices
        }
        let devices = try await currentDevices(of: userId)
        deviceLists[userId] = (devices, Date())
        return devices
    }

    /// A user's devices as the server lists them, checked against what this device accepted
    /// before: a first contact is trusted as seen; a device that appeared since is held back
    /// until the change is accepted (``acceptIdentityChange(of:)``).
    func currentDevices(of userId: String) async throws(ClientError) -> [PublicDevice] {
        let token = try await validToken()
        let listed: UserDevicesResponse = try await api.send(.GET, "/v1/users/\(APIClient.segment(userId))/devices", token: token)
        var contact = contacts[userId]
            ?? Contact(userId: userId, username: listed.username, devices: [:], changedDevices: nil, verified: false)
        contact.username = listed.username
        let seen = Dictionary(listed.devices.map { ($0.deviceId, $0.identityKey) }, uniquingKeysWith: { first, _ in first })
        let isFirstContact = contacts[userId] == nil
        var changes = LocalStore.Changes()
        if isFirstContact || (userId == account.userId && contact.devices.isEmpty) {
            contact.devices = seen
        } else {
            // Devices that are gone are simply dropped; new ones (or a changed key) need acceptance.
            contact.devices = contact.devices.filter { seen[$0.key] == $0.value }
            let changed = seen.filter { contact.devices[$0.key] != $0.value }
            contact.changedDevices = changed.isEmpty ? nil : changed
        }
        if contacts[userId] != contact {
            contacts[userId] = contact
            changes.put(.contact, userId, try Self.encode(contact))
            try commit(changes)
            if contact.hasPendingChange { emit(.identityChanged(contact)) }
        }
        if contact.hasPendingChange { throw .identityChanged(userId: userId) }
        return listed.devices.filter { contact.devices[$0.deviceId] != nil }
    }

    /// Trusts a contact's current devices (after the user saw the change, ideally compared safety numbers).
    public func acceptIdentityChange(of userId: String) throws(ClientError) {
        guard var contact = contacts[userId] else { throw .unknownUser(userId) }
        contact.devices.merge(contact.changedDevices ?? [:]) { $1 }
        contact.changedDevices = nil
        contact.verified = false
        contacts[userId] = contact
        deviceLists[userId] = nil
        var changes = LocalStore.Changes()
        changes.put(.contact, userId, try Self.encode(contact))
        try commit(changes)
    }

    /// Marks a contact's current devices as verified (the user compared safety numbers).
    public func markVerified(_ userId: String) throws(ClientError) {
        guard var contact = contacts[userId] else { throw .unknownUser(userId) }
        contact.verified = true
        contacts[userId] = contact
        var changes = LocalStore.Changes()
        changes.put(.contact, userId, try Self.encode(contact))
        try commit(changes)
    }

    /// Starts sessions with the recipients that have none, from freshly claimed bundles whose
    /// identity keys must match the accepted ones.
    func ensureSessions(for recipients: [DeviceAddress]) async throws(ClientError) {
        let missing = Dictionary(grouping: recipients.filter { sessions[$0] == nil }, by: \.userId)
        for (userId, devices) in missing {
            let token = try await validToken()
            let claimed: BundleResponse = try await api.send(.POST, "/v1/users/\(APIClient.segment(userId))/bundles", token: token)
            var changes = LocalStore.Changes()
            // Sessions made while the claim was under way (a message from them, another send) stay.
            for device in devices where sessions[device] == nil {
                guard let bundle = claimed.devices.first(where: { $0.deviceId == device.deviceId }) else {
                    throw .noDevices(contacts[userId]?.username ?? userId)
                }
                guard contacts[userId]?.devices[device.deviceId] == bundle.identityKey else {
                    throw .identityChanged(userId: userId)
                }
                let session: Session
                do {
                    let identityKey = try IdentityKey(rawRepresentation: bundle.identityKey)
                    let signed = try SignedPreKeyPublic(serialized: bundle.signedPreKey, signedBy: identityKey)
                    let oneTime = try bundle.oneTimePreKey.map { bytes throws(PreKeyBundleError) in try OneTimePreKeyPublic(serialized: bytes) }
                    let preKeyBundle = try PreKeyBundle(identityKey: identityKey, signedPreKey: signed, oneTimePreKey: oneTime)
                    session = try Session.initiate(identity: identity, bundle: preKeyBundle)
                } catch {
                    throw .cryptography("the bundle of \(userId).\(device.deviceId) is not valid: \(error)")
                }
                sessions[device] = session
                changes.put(.session, Self.sessionName(device), Data(session.serialized.bytes))
            }
            try commit(changes)
        }
    }

    // MARK: Receiving

    /// Decrypts a delivery, commits the session, archive entry and cursor together, then acknowledges.
    func receive(_ delivery: ServerFrame.Delivery) async throws {
        guard delivery.seq > cursor else {
            // Already processed (a resume raced an ack): acknowledge again, deliver nothing twice.
            try await acknowledge(delivery.seq)
            return
        }
        if contacts[delivery.sender.userId] == nil {
            // A first contact: learn their name and devices (trusted as first seen).
            _ = try? await currentDevices(of: delivery.sender.userId)
        }
        // What decrypting may change in memory before the commit; put back if the commit fails,
        // so that the delivery, which the server sends again, still decrypts.
        let before = (
            session: sessions[delivery.sender], keys: keys, roomKeys: delivery.room.flatMap { senderKeyStores[$0] },
            contact: contacts[delivery.sender.userId])
        let restore = { [self] in
            sessions[delivery.sender] = before.session
            keys = before.keys
            if let room = delivery.room { senderKeyStores[room] = before.roomKeys }
            contacts[delivery.sender.userId] = before.contact
        }
        var changes = LocalStore.Changes()
        let plaintext: [UInt8]
        do {
            if let room = delivery.room {
                plaintext = try decryptRoomMessage(delivery, room: room, changes: &changes)
            } else {
                plaintext = try decrypt(delivery, changes: &changes)
            }
        } catch {
            emit(.undecryptable(sender: delivery.sender, reason: "\(error)"))
            try await acknowledge(delivery.seq)
            return
        }
        guard let unpadded = try? MessagePadding.unpad(plaintext),
              let envelope = try? APIJSON.makeDecoder().decode(Envelope.self, from: Data(unpadded))
        else {
            try commit(changes, orRestore: restore)
            emit(.undecryptable(sender: delivery.sender, reason: "the decrypted content is not a message this client understands"))
            try await acknowledge(delivery.seq)
            return
        }
        if case .senderKey(let room, let distribution) = envelope.content {
            do {
                guard delivery.room == nil else { throw ClientError.cryptography("a room key arrived in a room message") }
                try await processDistribution(distribution, room: room, from: delivery.sender, changes: &changes)
            } catch {
                emit(.undecryptable(sender: delivery.sender, reason: "a room key was refused: \(error)"))
            }
            changes.put(.cursor, "inbox", Self.cursorPayload(delivery.seq))
            try commit(changes, orRestore: restore)
            cursor = delivery.seq
            try await write(.ack(.init(seq: delivery.seq)))
            return
        }
        if case .admission(let userIds) = envelope.content {
            do {
                guard let room = delivery.room else { throw ClientError.cryptography("an admission arrived outside a room") }
                try await processAdmission(userIds, room: room, from: delivery.sender, changes: &changes)
            } catch {
                emit(.undecryptable(sender: delivery.sender, reason: "\(error)"))
            }
        }
        let conversation: Conversation
        if let room = delivery.room {
            conversation = .room(code: room)
        } else {
            conversation = .direct(userId: delivery.sender.userId == account.userId ? (envelope.conversation ?? account.userId) : delivery.sender.userId)
        }
        let message = ChatMessage(
            conversation: conversation, sender: delivery.sender, envelope: envelope, sentAt: delivery.sentAt,
            outgoing: delivery.sender.userId == account.userId, unconfirmedSender: isUnconfirmed(delivery.sender, room: delivery.room) ? true : nil)
        if Self.isArchived(envelope.content) {
            changes.archive(message.conversation.archiveName, try Self.encode(message))
        }
        changes.put(.cursor, "inbox", Self.cursorPayload(delivery.seq))
        try commit(changes, orRestore: restore)
        cursor = delivery.seq
        // Committed: the application hears of it now, even if the socket closes before the ack
        // goes out (the next connection resumes after the stored cursor).
        if case .admission = envelope.content {} else { emit(.message(message)) }
        try await write(.ack(.init(seq: delivery.seq)))
        if sendsDeliveryReceipts, !message.outgoing, Self.isArchived(envelope.content) {
            await acknowledgeDelivery(of: message)
        }
    }

    /// Whether a sending device is outside what this device trusts: not among its user's accepted
    /// devices, or (in a room) a member nobody admitted.
    func isUnconfirmed(_ sender: DeviceAddress, room: String?) -> Bool {
        guard let contact = contacts[sender.userId], contact.devices[sender.deviceId] != nil else { return true }
        if let room, let admitted = roomKeyStates[room]?.admitted, !admitted.contains(sender.userId) { return true }
        return false
    }

    /// Commits, or undoes the in-memory changes `restore` knows of and rethrows.
    private func commit(_ changes: LocalStore.Changes, orRestore restore: () -> Void) throws(ClientError) {
        do {
            try commit(changes)
        } catch {
            restore()
            throw error
        }
    }

    /// Typing indicators and receipts are shown, not kept.
    static func isArchived(_ content: Content) -> Bool {
        switch content {
        case .typing, .receipt, .senderKey, .admission, .call, .profile: false
        default: true
        }
    }

    func decrypt(_ delivery: ServerFrame.Delivery, changes: inout LocalStore.Changes) throws -> [UInt8] {
        let message = try SessionMessage(serialized: [UInt8](delivery.ciphertext))
        let sender = delivery.sender
        if var session = sessions[sender] {
            let isOtherInitiation: Bool
            if case .preKey(let preKey) = message { isOtherInitiation = preKey.initiation != session.acceptedInitiation } else { isOtherInitiation = false }
            if !isOtherInitiation {
                let plaintext = try session.decrypt(message)
                sessions[sender] = session
                changes.put(.session, Self.sessionName(sender), Data(session.serialized.bytes))
                return plaintext
            }
        }
        guard case .preKey(let preKey) = message else { throw ClientError.cryptography("no session with the sender") }
        try checkSenderIdentity(preKey.initiation.initiatorIdentityKey, of: sender, changes: &changes)
        var store = keys
        let (session, plaintext) = try Session.accept(preKey, identity: identity, store: &store)
        store.drainChanges(into: &changes)
        keys = store
        sessions[sender] = session
        changes.put(.session, Self.sessionName(sender), Data(session.serialized.bytes))
        return plaintext
    }

    /// A new session's identity key must be the accepted one for that device. An unknown device
    /// of a known contact is recorded as a change (sending to them is then held); a first
    /// contact is trusted as seen.
    private func checkSenderIdentity(_ key: IdentityKey, of sender: DeviceAddress, changes: inout LocalStore.Changes) throws {
        let raw = Data(key.rawRepresentation)
        if var contact = contacts[sender.userId] {
            if contact.devices[sender.deviceId] == raw { return }
            if contact.devices[sender.deviceId] != nil {
                throw ClientError.cryptography("the identity key of \(sender.userId).\(sender.deviceId) changed")
            }
            contact.changedDevices = (contact.changedDevices ?? [:]).merging([sender.deviceId: raw]) { $1 }
            contacts[sender.userId] = contact
            changes.put(.contact, sender.userId, try Self.encode(contact))
            emit(.identityChanged(contact))
        } else {
            let contact = Contact(userId: sender.userId, username: sender.userId, devices: [sender.deviceId: raw], changedDevices: nil, verified: false)
            contacts[sender.userId] = contact
            changes.put(.contact, sender.userId, try Self.encode(contact))
        }
    }
}
