import Foundation
import PostgresNIO
import SecureChatAPI

extension PostgresChatStore {
    /// The whole batch in a handful of set-based statements: round trips, not rows, are what a
    /// PostgreSQL transaction pays for, so each step handles every send of the batch at once.
    ///
    /// Every send waits behind the batch in progress, so a batch gets ``batchTimeLimit``: past it,
    /// its connection is closed and its sends are refused (the clients send them again) rather
    /// than held until TCP notices a half-open connection, which can take hours.
    func append(_ sends: [PendingSend], acknowledging acks: [Int64: Int64]) async throws -> [SendOutcome] {
        try await transaction(timeLimit: batchTimeLimit) { connection in
            var (outcomes, writes) = try await self.appendBatch(connection, sends)
            let ordered = acks.sorted { $0.key < $1.key }
            writes.acknowledgedKeys = ordered.map(\.key)
            writes.acknowledgedSeqs = ordered.map(\.value)
            writes.wakeUps = self.wakeUps(for: outcomes)
            // The rows are read: an error raised while the statement runs arrives with them, and
            // left unread it would abort the transaction unseen (its COMMIT would then quietly roll back).
            if !writes.isEmpty { _ = try await self.rows(FinishBatchQuery(writes, channel: self.notificationChannel), on: connection) }
            return outcomes
        }
    }

    /// Wake-ups for the other instances, sent in the same transaction: PostgreSQL sends the
    /// notification when (and only if) the rows are committed, so no crash between the commit and
    /// the signal can leave a device on another instance unaware.
    private func wakeUps(for outcomes: [SendOutcome]) -> [String] {
        guard let instance = announcingInstance else { return [] }
        var keys = Set<Int64>()
        for case .accepted(_, _, _, let entries) in outcomes { for entry in entries { keys.insert(entry.deviceKey) } }
        guard !keys.isEmpty else { return [] }
        return ClusterMessage.payloads(.wake(deviceKeys: keys.sorted()), from: instance)
    }

    private struct SendKey: Hashable {
        let userId: String
        let deviceId: Int64
        let clientMessageId: String
    }

    private func appendBatch(_ connection: PostgresConnection, _ sends: [PendingSend]) async throws -> ([SendOutcome], FinishBatchQuery.InboxWrites) {
        guard !sends.isEmpty else { return ([], .init()) }
        let keys = sends.map { SendKey(userId: $0.senderUserId, deviceId: Int64($0.senderDeviceId), clientMessageId: $0.clientMessageId) }
        // 1. Sends already stored (retries), and 2. every device a pairwise send names.
        var addresses: [DeviceAddress] = []
        for send in sends { if case .devices(let envelopes) = send.target { addresses += envelopes.map(\.address) } }
        var existing: [SendKey: (id: Int64, sentAt: Int64)] = [:]
        var deviceKeys: [DeviceAddress: Int64] = [:]
        for row in try await rows(
            BatchLookupQuery(
                userIds: keys.map(\.userId), deviceIds: keys.map(\.deviceId), clientMessageIds: keys.map(\.clientMessageId),
                recipientUserIds: addresses.map(\.userId), recipientDeviceIds: addresses.map { Int64($0.deviceId) }),
            on: connection)
        {
            let (kind, userId, deviceId, clientMessageId, id, sentAt) = try row.decode((Int32, String, Int64, String, Int64, Int64).self)
            if kind == 0 {
                existing[SendKey(userId: userId, deviceId: deviceId, clientMessageId: clientMessageId)] = (id, sentAt)
            } else {
                deviceKeys[DeviceAddress(userId: userId, deviceId: UInt32(truncatingIfNeeded: deviceId))] = id
            }
        }
        // 3. Each room the batch writes to: the room, its members and their devices.
        var rooms: [String: (room: RoomRecord, members: Set<String>, devices: [(key: Int64, userId: String)])] = [:]
        for code in Set(sends.compactMap { send -> String? in if case .room(let code, _) = send.target { code } else { nil } }) {
            guard let room = try await rows(RoomByCodeQuery(code: code), on: connection).first.map(Self.roomRecord)
            else { continue }
            var members = Set<String>()
            var devices: [(key: Int64, userId: String)] = []
            for row in try await rows(RoomDevicesQuery(roomId: room.id), on: connection) {
                let (userId, key) = try row.decode((String, Int64?).self)
                members.insert(userId)
                if let key { devices.append((key, userId)) }
            }
            rooms[code] = (room, members, devices)
        }
        // 4. Decide each send in order; nothing is written for a refused one.
        enum Plan {
            case refused(APIErrorCode, String)
            case duplicate(of: Int)
            case existing(id: Int64, sentAt: Int64)
            case new(roomId: Int64?, roomCode: String?, payload: SealedPayload?, recipients: [(key: Int64, address: DeviceAddress?, payload: SealedPayload)], expiresAt: Int64)
        }
        var plans: [Plan] = []
        var firstInBatch: [SendKey: Int] = [:]
        for (index, send) in sends.enumerated() {
            let key = keys[index]
            if let found = existing[key] {
                plans.append(.existing(id: found.id, sentAt: found.sentAt))
                continue
            }
            if let first = firstInBatch[key] {
                plans.append(.duplicate(of: first))
                continue
            }
            do {
                for id in send.attachmentIds {
                    guard try await !rows(
                        "SELECT 1 FROM attachments WHERE id = \(id) AND uploader_user_id = \(send.senderUserId)", on: connection
                    ).isEmpty
                    else { throw APIFailure(.notFound, .notFound, "attachment \(id) not found among your uploads") }
                }
                switch send.target {
                case .room(let code, let ciphertext):
                    guard let entry = rooms[code] else { throw APIFailure.notFound("room") }
                    guard entry.members.contains(send.senderUserId) else { throw APIFailure.notAMember }
                    let recipients = entry.devices.filter { $0.key != send.senderDeviceKey }.map { (key: $0.key, address: DeviceAddress?.none, payload: ciphertext) }
                    plans.append(
                        .new(
                            roomId: entry.room.id, roomCode: entry.room.code, payload: ciphertext, recipients: recipients,
                            expiresAt: send.sentAt + entry.room.retentionSeconds * 1000))
                case .devices(let envelopes):
                    var recipients: [(key: Int64, address: DeviceAddress?, payload: SealedPayload)] = []
                    for envelope in envelopes {
                        guard let key = deviceKeys[envelope.address] else {
                            throw APIFailure(
                                .notFound, .unknownDevice,
                                "device \(envelope.address.deviceId) of user \(envelope.address.userId) does not exist")
                        }
                        recipients.append((key, envelope.address, envelope.ciphertext))
                    }
                    plans.append(.new(roomId: nil, roomCode: nil, payload: nil, recipients: recipients, expiresAt: send.expiresAt))
                }
                firstInBatch[key] = index
            } catch let failure as APIFailure {
                plans.append(.refused(failure.code, failure.message))
            }
        }
        // 5. Insert the new messages in one statement.
        var newIndices: [Int] = []
        for (index, plan) in plans.enumerated() { if case .new = plan { newIndices.append(index) } }
        var messageIds: [Int: Int64] = [:]
        if !newIndices.isEmpty {
            var userIds: [String] = [], deviceIds: [Int64] = [], clientIds: [String] = [], roomIds: [Int64] = []
            var keyIds: [String] = [], payloads: [ByteBuffer] = [], sentAts: [Int64] = [], expiries: [Int64] = [], ordinals: [Int64] = []
            for index in newIndices {
                guard case .new(let roomId, _, let payload, _, let expiresAt) = plans[index] else { continue }
                let send = sends[index]
                userIds.append(send.senderUserId)
                deviceIds.append(Int64(send.senderDeviceId))
                clientIds.append(send.clientMessageId)
                roomIds.append(roomId ?? 0)
                keyIds.append(payload?.keyId ?? "")
                payloads.append(ByteBuffer(bytes: payload?.bytes ?? []))
                sentAts.append(send.sentAt)
                expiries.append(expiresAt)
                ordinals.append(Int64(index))
            }
            for row in try await rows(
                InsertMessagesQuery(
                    userIds: userIds, deviceIds: deviceIds, clientMessageIds: clientIds, roomIds: roomIds, keyIds: keyIds, payloads: payloads,
                    sentAts: sentAts, expiries: expiries, ordinals: ordinals),
                on: connection)
            {
                let (ordinal, id) = try row.decode((Int64, Int64).self)
                messageIds[Int(ordinal)] = id
            }
        }
        // 6. Sequence numbers: one UPDATE reserves a contiguous range per device; rows lock until commit.
        var perDevice: [Int64: Int64] = [:]
        for index in newIndices where messageIds[index] != nil {
            guard case .new(_, _, _, let recipients, _) = plans[index] else { continue }
            for recipient in recipients { perDevice[recipient.key, default: 0] += 1 }
        }
        var nextSeq: [Int64: Int64] = [:]
        if !perDevice.isEmpty {
            let ordered = perDevice.sorted { $0.key < $1.key }
            // Lock in key order first, as membership events do, so that the two never deadlock.
            _ = try await rows(LockDevicesQuery(keys: ordered.map(\.key)), on: connection)
            for row in try await rows(ReserveSequenceNumbersQuery(keys: ordered.map(\.key), counts: ordered.map(\.value)), on: connection) {
                let (key, last, count) = try row.decode((Int64, Int64, Int64).self)
                nextSeq[key] = last - count + 1
            }
        }
        // 7. The inbox rows (written by the batch's last statement); the outcomes in order.
        var inbox = FinishBatchQuery.InboxWrites()
        var outcomes: [SendOutcome] = []
        for (index, plan) in plans.enumerated() {
            let send = sends[index]
            switch plan {
            case .refused(let code, let message):
                outcomes.append(.refused(code, message))
            case .existing(let id, let sentAt):
                outcomes.append(.accepted(messageId: id, sentAt: sentAt, duplicate: true, deliveries: []))
            case .duplicate(let first):
                if let id = messageIds[first] {
                    outcomes.append(.accepted(messageId: id, sentAt: sends[first].sentAt, duplicate: true, deliveries: []))
                } else {
                    outcomes.append(try await duplicateAfterRace(connection, send))
                }
            case .new(_, let roomCode, _, let recipients, let expiresAt):
                guard let messageId = messageIds[index] else {
                    // Another transaction stored the same send since step 1.
                    outcomes.append(try await duplicateAfterRace(connection, send))
                    continue
                }
                try await linkAttachments(connection, messageId: messageId, attachmentIds: send.attachmentIds)
                let sender = DeviceAddress(userId: send.senderUserId, deviceId: send.senderDeviceId)
                var deliveries: [InboxEntry] = []
                for recipient in recipients {
                    guard let seq = nextSeq[recipient.key] else { continue }
                    nextSeq[recipient.key] = seq + 1
                    inbox.keys.append(recipient.key)
                    inbox.seqs.append(seq)
                    inbox.messageIds.append(messageId)
                    // Room deliveries read the message's payload; pairwise ones carry their own.
                    inbox.keyIds.append(recipient.address == nil ? "" : recipient.payload.keyId)
                    inbox.payloads.append(ByteBuffer(bytes: recipient.address == nil ? [] : recipient.payload.bytes))
                    inbox.expiries.append(expiresAt)
                    deliveries.append(
                        InboxEntry(
                            deviceKey: recipient.key, seq: seq,
                            content: .message(
                                messageId: messageId, sender: sender, clientMessageId: send.clientMessageId, roomCode: roomCode,
                                ciphertext: recipient.payload, sentAt: send.sentAt)))
                }
                outcomes.append(.accepted(messageId: messageId, sentAt: send.sentAt, duplicate: false, deliveries: deliveries))
            }
        }
        return (outcomes, inbox)
    }

    private func existingMessage(_ connection: PostgresConnection, _ send: PendingSend) async throws -> (id: Int64, sentAt: Int64)? {
        try await rows(
            """
            SELECT id, sent_at FROM messages
            WHERE sender_user_id = \(send.senderUserId) AND sender_device_id = \(Int64(send.senderDeviceId))
                AND client_message_id = \(send.clientMessageId)
            """, on: connection
        ).first.map { try $0.decode((Int64, Int64).self) }
    }

    /// Another transaction stored the same send between our check and our insert.
    private func duplicateAfterRace(_ connection: PostgresConnection, _ send: PendingSend) async throws -> SendOutcome {
        guard let existing = try await existingMessage(connection, send) else {
            throw APIFailure(.serviceUnavailable, .unavailable, "storing the message failed; send again")
        }
        return .accepted(messageId: existing.id, sentAt: existing.sentAt, duplicate: true, deliveries: [])
    }

    private func linkAttachments(_ connection: PostgresConnection, messageId: Int64, attachmentIds: [String]) async throws {
        for id in attachmentIds {
            try await connection.query(
                "INSERT INTO message_attachments (message_id, attachment_id) VALUES (\(messageId), \(id)) ON CONFLICT DO NOTHING",
                logger: logger)
        }
    }
}
