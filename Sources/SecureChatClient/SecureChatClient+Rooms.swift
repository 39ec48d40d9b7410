import Foundation
import SecureChatAPI
import SecureChatKeys
import SecureChatProtocol

/// Rooms: one sender-key ciphertext per message for every member (PROTOCOL.md §7), each
/// member's key handed to the others over the pairwise sessions.
extension SecureChatClient {
    // MARK: Sending

    @discardableResult
    public func send(_ text: String, toRoom code: String, replyTo: String? = nil) async throws(ClientError) -> ChatMessage {
        try await send(.text(text, replyTo: replyTo), toRoom: code)
    }

    /// Encrypts `content` once with this device's sender key for the room, after handing that key
    /// to every member device that does not have it yet.
    @discardableResult
    public func send(_ content: Content, toRoom code: String) async throws(ClientError) -> ChatMessage {
        guard !isClosed else { throw .closed }
        let members: [MemberResponse]
        if let cached = memberLists[code], -cached.fetchedAt.timeIntervalSinceNow < Self.memberListLifetime {
            members = cached.members
        } else {
            members = try await self.members(of: code)
        }
        // Device lists first (they may await); the room's own state is read only afterwards.
        for member in members {
            let known = contacts[member.userId]
            if known == nil || known?.hasPendingChange == true || Set(known?.devices.keys.map { $0 } ?? []) != Set(member.deviceIds) {
                _ = try await currentDevices(of: member.userId)
            }
        }
        var plan = planRoomSend(code, members: members)
        // Sessions for devices that lack one: this awaits, so the plan is made again afterwards
        // (a concurrent send, a typing indicator or a removal may have changed the room's state).
        while case let missing = plan.needing.filter({ sessions[$0] == nil }), !missing.isEmpty {
            try await ensureSessions(for: missing)
            plan = planRoomSend(code, members: members)
        }
        let (senderKey, keyState, needing) = (plan.senderKey, plan.keyState, plan.needing)

        // From here on nothing is awaited until the commit, so the plan is current.
        let sessionsBefore = sessions
        let message: ChatMessage
        do {
            message = try commitRoomSend(content, to: code, senderKey: senderKey, keyState: keyState, distributingTo: needing)
        } catch {
            sessions = sessionsBefore
            throw error
        }
        await sendOutboxIfConnected()
        return message
    }

    /// Who gets this device's room key and message now, from the room's state as it is at this
    /// moment (no awaits: the caller uses the result before anything else can run).
    private func planRoomSend(_ code: String, members: [MemberResponse]) -> (senderKey: SenderKeyState, keyState: RoomKeyState, needing: [DeviceAddress]) {
        var keyState = roomKeyStates[code] ?? RoomKeyState()
        let listed = Set(members.map(\.userId))
        // A room whose roster was never set here (joined from another device, or before rosters
        // were kept): its current members, as when joining, except those already reported.
        let admitted = keyState.admitted ?? listed.subtracting(keyState.unconfirmed)
        keyState.admitted = admitted
        keyState.unconfirmed.formIntersection(listed)
        for member in members where !admitted.contains(member.userId) && !keyState.unconfirmed.contains(member.userId) {
            keyState.unconfirmed.insert(member.userId)
            emit(.unconfirmedMember(room: code, userId: member.userId))
        }
        var recipients: [DeviceAddress] = []
        for member in members where admitted.contains(member.userId) {
            for deviceId in member.deviceIds where contacts[member.userId]?.devices[deviceId] != nil {
                let device = DeviceAddress(userId: member.userId, deviceId: deviceId)
                if device != address { recipients.append(device) }
            }
        }
        let now = UInt64(Date().timeIntervalSince1970)
        var senderKey = senderKeys[code] ?? SenderKeyState(distributionId: SecretBytes.random(count: 16).bytes, createdAt: now)
        if keyState.rotateBeforeNextSend || senderKey.needsRotation(policy: senderKeyRotation, now: now) {
            senderKey = senderKey.rotated(now: now)
            keyState.rotateBeforeNextSend = false
        }
        if keyState.chainId != senderKey.chainId {
            keyState.chainId = senderKey.chainId
            keyState.distributedTo = []
        }
        let needing = recipients.filter { !keyState.distributedTo.contains(Self.sessionName($0)) }
        return (senderKey, keyState, needing)
    }

    /// Encrypts the distributions and the message, and commits them with the advanced states.
    private func commitRoomSend(
        _ content: Content, to code: String, senderKey: SenderKeyState, keyState: RoomKeyState, distributingTo needing: [DeviceAddress]
    ) throws(ClientError) -> ChatMessage {
        var senderKey = senderKey
        var keyState = keyState
        var changes = LocalStore.Changes()
        if !needing.isEmpty {
            let distribution = Data(senderKey.distributionMessage.serialized.bytes)
            let envelope = Envelope(id: Self.newMessageId(), content: .senderKey(room: code, distribution: distribution))
            let plaintext = MessagePadding.pad(Array(try Self.encode(envelope)))
            for batch in stride(from: 0, to: needing.count, by: APILimits.recipientsPerSend) {
                var ciphertexts: [RecipientCiphertext] = []
                for device in needing[batch..<min(batch + APILimits.recipientsPerSend, needing.count)] {
                    ciphertexts.append(try encryptPairwise(plaintext, for: device, changes: &changes))
                    keyState.distributedTo.insert(Self.sessionName(device))
                }
                let distributionId = Self.newMessageId()
                changes.enqueue(id: distributionId, try Self.encode(ClientFrame.send(.init(id: distributionId, recipients: ciphertexts))))
            }
        }
        let id = Self.newMessageId()
        let envelope = Envelope(id: id, content: content)
        let ciphertext: SenderKeyMessage
        do {
            ciphertext = try senderKey.encrypt(MessagePadding.pad(Array(try Self.encode(envelope))))
        } catch {
            throw .cryptography("\(error)")
        }
        changes.put(.senderKeyState, code, Data(senderKey.serialized.bytes))
        changes.put(.roomState, code, try Self.encode(keyState))
        changes.enqueue(id: id, try Self.encode(ClientFrame.send(.init(id: id, room: code, ciphertext: Data(ciphertext.serialized)))))
        let message = ChatMessage(conversation: .room(code: code), sender: address, envelope: envelope, sentAt: Date(), outgoing: true)
        if Self.isArchived(content) { changes.archive(message.conversation.archiveName, try Self.encode(message)) }
        try commit(changes)
        senderKeys[code] = senderKey
        roomKeyStates[code] = keyState
        return message
    }

    // MARK: Receiving

    /// A room message: verified and decrypted with the sender's key for the room.
    func decryptRoomMessage(_ delivery: ServerFrame.Delivery, room: String, changes: inout LocalStore.Changes) throws -> [UInt8] {
        var keys = senderKeyStores[room] ?? SenderKeyStore()
        let (plaintext, owner) = try keys.decrypt([UInt8](delivery.ciphertext))
        // The server names the sender; the key names who it belongs to. They must agree.
        guard owner == ProtocolAddress(name: delivery.sender.userId, deviceId: delivery.sender.deviceId) else {
            throw ClientError.cryptography("a room message signed by \(owner) arrived as from \(delivery.sender.userId).\(delivery.sender.deviceId)")
        }
        senderKeyStores[room] = keys
        if let record = keys.record(of: owner) {
            changes.put(.senderKeyRecord, Self.senderKeyRecordName(room: room, owner: owner), Data(record.serialized.bytes))
        }
        return plaintext
    }

    /// A member's key for a room, received over their pairwise session.
    func processDistribution(_ distribution: Data, room: String, from sender: DeviceAddress, changes: inout LocalStore.Changes) async throws {
        // The room is named inside the encryption by whoever sent it: only a room code of a room
        // this account is in may get a record (another device of the account may have joined it).
        guard Self.isRoomCode(room) else { throw ClientError.cryptography("a room key for something that is not a room") }
        if roomKeyStates[room] == nil && senderKeyStores[room] == nil {
            do {
                _ = try await members(of: room)
            } catch {
                throw ClientError.cryptography("a room key for a room this account is not in")
            }
        }
        let message = try SenderKeyDistributionMessage(serialized: [UInt8](distribution))
        let owner = ProtocolAddress(name: sender.userId, deviceId: sender.deviceId)
        var keys = senderKeyStores[room] ?? SenderKeyStore()
        try keys.process(message, from: owner)
        senderKeyStores[room] = keys
        if let record = keys.record(of: owner) {
            changes.put(.senderKeyRecord, Self.senderKeyRecordName(room: room, owner: owner), Data(record.serialized.bytes))
        }
    }

    /// A membership change: who left or was removed loses their keys here, and this device's next
    /// message to the room starts a new sender key, so they cannot read anything sent afterwards.
    func handle(_ event: ServerFrame.RoomEvent) async throws {
        guard event.seq > cursor else {
            // Processed before (a resume raced an ack): acknowledge again, apply nothing twice.
            try await write(.ack(.init(seq: event.seq)))
            return
        }
        var changes = LocalStore.Changes()
        memberLists[event.room] = nil
        switch event.change {
        case .left, .kicked, .banned:
            if event.userId == account.userId {
                forgetRoomChanges(event.room, into: &changes)
            } else {
                markForRotationChanges(event.room, without: event.userId, into: &changes)
            }
        case .deleted:
            forgetRoomChanges(event.room, into: &changes)
        case .joined where event.userId != account.userId:
            var state = roomKeyStates[event.room] ?? RoomKeyState()
            if state.admitted?.contains(event.userId) != true {
                state.unconfirmed.insert(event.userId)
                roomKeyStates[event.room] = state
                changes.put(.roomState, event.room, try Self.encode(state))
                joinsToReport.append(event)
            }
        case .joined, .roleChanged:
            break
        }
        if event.seq > cursor {
            changes.put(.cursor, "inbox", Self.cursorPayload(event.seq))
        }
        try commit(changes)
        cursor = max(cursor, event.seq)
        emit(.roomEvent(event))
        let joins = joinsToReport.filter { $0.seq == event.seq }
        joinsToReport.removeAll { $0.seq == event.seq }
        try await write(.ack(.init(seq: event.seq)))
        for join in joins { await reportJoin(join) }
    }

    /// A join nobody admitted yet: an admin's device set to admit automatically does so now;
    /// otherwise the application hears of it.
    private func reportJoin(_ event: ServerFrame.RoomEvent) async {
        guard roomKeyStates[event.room]?.autoAdmit == true else {
            emit(.unconfirmedMember(room: event.room, userId: event.userId))
            return
        }
        do {
            try await admit(event.userId, to: event.room)
        } catch {
            logger.warning("admitting a member automatically failed", metadata: ["room": "\(event.room)", "error": "\(error)"])
            emit(.unconfirmedMember(room: event.room, userId: event.userId))
        }
    }

    /// An admission in a room message: followed only when its sender is an admitted member whom
    /// the server lists as owner or admin.
    func processAdmission(_ userIds: [String], room: String, from sender: DeviceAddress, changes: inout LocalStore.Changes) async throws {
        let members = try await self.members(of: room)
        // Read after the await: a removal handled meanwhile must not be undone.
        guard var state = roomKeyStates[room], let admitted = state.admitted, admitted.contains(sender.userId) else {
            throw ClientError.cryptography("an admission from a member this device does not trust was ignored")
        }
        guard let role = members.first(where: { $0.userId == sender.userId })?.role, role >= .admin else {
            throw ClientError.cryptography("an admission from a member who is not an admin was ignored")
        }
        let listed = Set(members.map(\.userId))
        let newcomers = Set(userIds).intersection(listed).subtracting(admitted)
        state.admitted = admitted.union(newcomers)
        state.unconfirmed.subtract(newcomers)
        roomKeyStates[room] = state
        changes.put(.roomState, room, try Self.encode(state))
        for userId in newcomers.sorted() { emit(.memberAdmitted(room: room, userId: userId, by: sender.userId)) }
    }

    func markForRotation(_ code: String, without userId: String) throws(ClientError) {
        var changes = LocalStore.Changes()
        markForRotationChanges(code, without: userId, into: &changes)
        try commit(changes)
    }

    private func markForRotationChanges(_ code: String, without userId: String, into changes: inout LocalStore.Changes) {
        if var keys = senderKeyStores[code] {
            for member in keys.members where member.name == userId {
                keys.remove(member)
                changes.delete(.senderKeyRecord, Self.senderKeyRecordName(room: code, owner: member))
            }
            senderKeyStores[code] = keys
        }
        var state = roomKeyStates[code] ?? RoomKeyState()
        state.rotateBeforeNextSend = true
        state.admitted?.remove(userId)
        state.unconfirmed.remove(userId)
        roomKeyStates[code] = state
        if let encoded = try? Self.encode(state) { changes.put(.roomState, code, encoded) }
        memberLists[code] = nil
    }

    func forgetRoom(_ code: String) throws(ClientError) {
        var changes = LocalStore.Changes()
        forgetRoomChanges(code, into: &changes)
        try commit(changes)
    }

    private func forgetRoomChanges(_ code: String, into changes: inout LocalStore.Changes) {
        for member in senderKeyStores[code]?.members ?? [] {
            changes.delete(.senderKeyRecord, Self.senderKeyRecordName(room: code, owner: member))
        }
        senderKeyStores[code] = nil
        senderKeys[code] = nil
        roomKeyStates[code] = nil
        memberLists[code] = nil
        changes.delete(.senderKeyState, code)
        changes.delete(.roomState, code)
    }

    /// Room codes are short lowercase base32 (API.md §1.3); anything else is not a room.
    static func isRoomCode(_ text: String) -> Bool {
        (1...64).contains(text.utf8.count) && text.utf8.allSatisfy { (0x61...0x7a).contains($0) || (0x30...0x39).contains($0) }
    }

    static func senderKeyRecordName(room: String, owner: ProtocolAddress) -> String {
        "\(room)/\(owner.name).\(owner.deviceId)"
    }

    /// Loads the room key material kept in the store.
    func loadRooms() throws(ClientError) {
        for (code, payload) in try store.records(.senderKeyState) {
            guard let state = try? SenderKeyState(serialized: SecretBytes(payload)) else { throw .corruptLocalState("sender key of \(code)") }
            senderKeys[code] = state
        }
        for (code, payload) in try store.records(.roomState) {
            roomKeyStates[code] = try Self.decode(payload)
        }
        var byRoom: [String: [SenderKeyRecord]] = [:]
        for (name, payload) in try store.records(.senderKeyRecord) {
            guard let slash = name.lastIndex(of: "/"), let record = try? SenderKeyRecord(serialized: SecretBytes(payload)) else {
                throw .corruptLocalState("sender key record \(name)")
            }
            byRoom[String(name[..<slash]), default: []].append(record)
        }
        for (room, records) in byRoom {
            guard let keys = try? SenderKeyStore(records: records) else { throw .corruptLocalState("sender keys of \(room)") }
            senderKeyStores[room] = keys
        }
    }
}
