import Foundation
import GRDB
import SecureChatAPI

extension SQLiteChatStore {
    func append(_ sends: [PendingSend], acknowledging acks: [Int64: Int64]) async throws -> [SendOutcome] {
        try await pool.write { db in
            var inbox = InboxAppender()
            let outcomes = try sends.map { send in
                do {
                    return try Self.append(db, send, inbox: &inbox)
                } catch let failure as APIFailure {
                    return .refused(failure.code, failure.message)
                }
            }
            try inbox.finish(db)
            let forget = try RawStatement(db, "DELETE FROM inbox WHERE device_key = ?1 AND seq <= ?2")
            for (deviceKey, seq) in acks {
                forget.bind(deviceKey, at: 1)
                forget.bind(seq, at: 2)
                try forget.run()
            }
            return outcomes
        }
    }

    /// Checks everything before writing anything, so that a refused send leaves no trace.
    private static func append(_ db: Database, _ send: PendingSend, inbox: inout InboxAppender) throws -> SendOutcome {
        let existing = try RawStatement(
            db, "SELECT id, sent_at FROM messages WHERE sender_user_id = ?1 AND sender_device_id = ?2 AND client_message_id = ?3")
        existing.bind(send.senderUserId, at: 1)
        existing.bind(Int64(send.senderDeviceId), at: 2)
        existing.bind(send.clientMessageId, at: 3)
        if try existing.step() {
            defer { existing.finish() }
            return .accepted(messageId: existing.int64(at: 0), sentAt: existing.int64(at: 1), duplicate: true, deliveries: [])
        }
        existing.finish()
        let sender = DeviceAddress(userId: send.senderUserId, deviceId: send.senderDeviceId)
        let attachmentIds = try checkAttachments(db, ids: send.attachmentIds, uploader: send.senderUserId)
        switch send.target {
        case .room(let code, let ciphertext):
            guard let room = try Row.fetchOne(db.cachedStatement(sql: "SELECT * FROM rooms WHERE code = ?"), arguments: [code])
                .map(roomRecord)
            else { throw APIFailure.notFound("room") }
            guard try Bool.fetchOne(
                db.cachedStatement(sql: "SELECT 1 FROM memberships WHERE room_id = ? AND user_id = ?"),
                arguments: [room.id, send.senderUserId]) != nil
            else { throw APIFailure.notAMember }
            let recipients = try Int64.fetchAll(
                db.cachedStatement(
                    sql: """
                        SELECT d.key FROM memberships m JOIN devices d ON d.user_id = m.user_id
                        WHERE m.room_id = ? AND d.key != ? ORDER BY d.key
                        """),
                arguments: [room.id, send.senderDeviceKey])
            let expiresAt = send.sentAt + room.retentionSeconds * 1000
            let messageId = try insertMessage(db, send, roomId: room.id, payload: ciphertext, expiresAt: expiresAt)
            try linkAttachments(db, messageId: messageId, attachmentIds: attachmentIds)
            let deliveries = try recipients.map { deviceKey in
                let seq = try inbox.append(db, deviceKey: deviceKey, messageId: messageId, payload: nil, event: nil, expiresAt: expiresAt)
                return InboxEntry(
                    deviceKey: deviceKey, seq: seq,
                    content: .message(
                        messageId: messageId, sender: sender, clientMessageId: send.clientMessageId, roomCode: room.code,
                        ciphertext: ciphertext, sentAt: send.sentAt))
            }
            return .accepted(messageId: messageId, sentAt: send.sentAt, duplicate: false, deliveries: deliveries)

        case .devices(let envelopes):
            let lookup = try RawStatement(db, "SELECT key FROM devices WHERE user_id = ?1 AND device_id = ?2")
            var resolved: [(key: Int64, ciphertext: SealedPayload)] = []
            resolved.reserveCapacity(envelopes.count)
            for envelope in envelopes {
                lookup.bind(envelope.address.userId, at: 1)
                lookup.bind(Int64(envelope.address.deviceId), at: 2)
                guard let key = try lookup.firstInt64() else {
                    throw APIFailure(
                        .notFound, .unknownDevice,
                        "device \(envelope.address.deviceId) of user \(envelope.address.userId) does not exist")
                }
                resolved.append((key, envelope.ciphertext))
            }
            let messageId = try insertMessage(db, send, roomId: nil, payload: nil, expiresAt: send.expiresAt)
            try linkAttachments(db, messageId: messageId, attachmentIds: attachmentIds)
            let deliveries = try resolved.map { recipient in
                let seq = try inbox.append(
                    db, deviceKey: recipient.key, messageId: messageId, payload: recipient.ciphertext, event: nil,
                    expiresAt: send.expiresAt)
                return InboxEntry(
                    deviceKey: recipient.key, seq: seq,
                    content: .message(
                        messageId: messageId, sender: sender, clientMessageId: send.clientMessageId, roomCode: nil,
                        ciphertext: recipient.ciphertext, sentAt: send.sentAt))
            }
            return .accepted(messageId: messageId, sentAt: send.sentAt, duplicate: false, deliveries: deliveries)
        }
    }

    private static func insertMessage(
        _ db: Database, _ send: PendingSend, roomId: Int64?, payload: SealedPayload?, expiresAt: Milliseconds
    ) throws -> Int64 {
        let insert = try RawStatement(
            db,
            """
            INSERT INTO messages (sender_user_id, sender_device_id, client_message_id, room_id, key_id, payload, sent_at, expires_at)
            VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
            """)
        insert.bind(send.senderUserId, at: 1)
        insert.bind(Int64(send.senderDeviceId), at: 2)
        insert.bind(send.clientMessageId, at: 3)
        insert.bind(roomId, at: 4)
        insert.bind(payload?.keyId, at: 5)
        insert.bind(payload?.bytes, at: 6)
        insert.bind(send.sentAt, at: 7)
        insert.bind(expiresAt, at: 8)
        try insert.run()
        return db.lastInsertedRowID
    }

    private static func checkAttachments(_ db: Database, ids: [String], uploader: String) throws -> [String] {
        for id in ids {
            guard try Bool.fetchOne(
                db, sql: "SELECT 1 FROM attachments WHERE id = ? AND uploader_user_id = ?", arguments: [id, uploader]) != nil
            else { throw APIFailure(.notFound, .notFound, "attachment \(id) not found among your uploads") }
        }
        return ids
    }

    private static func linkAttachments(_ db: Database, messageId: Int64, attachmentIds: [String]) throws {
        for id in attachmentIds {
            try db.execute(
                sql: "INSERT INTO message_attachments (message_id, attachment_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
                arguments: [messageId, id])
        }
    }

    func inbox(deviceKey: Int64, after seq: Int64, limit: Int) async throws -> [InboxEntry] {
        try await quickRead { db in
            let rows = try Row.fetchAll(
                db.cachedStatement(
                    sql: """
                    SELECT i.seq, i.event, i.key_id AS inbox_key_id, i.payload AS inbox_payload,
                        m.id, m.sender_user_id, m.sender_device_id, m.client_message_id, m.key_id, m.payload, m.sent_at,
                        r.code
                    FROM inbox i LEFT JOIN messages m ON m.id = i.message_id LEFT JOIN rooms r ON r.id = m.room_id
                    WHERE i.device_key = ? AND i.seq > ? ORDER BY i.seq LIMIT ?
                    """),
                arguments: [deviceKey, seq, limit])
            return try rows.map { row in
                let seq: Int64 = row["seq"]
                if let event: String = row["event"] {
                    let record = try JSONDecoder().decode(RoomEventRecord.self, from: Data(event.utf8))
                    return InboxEntry(deviceKey: deviceKey, seq: seq, content: .roomEvent(record))
                }
                let ciphertext: SealedPayload
                if let keyId: String = row["inbox_key_id"], let payload: Data = row["inbox_payload"] {
                    ciphertext = SealedPayload(keyId: keyId, bytes: payload.bytes)
                } else {
                    ciphertext = SealedPayload(keyId: row["key_id"], bytes: (row["payload"] as Data).bytes)
                }
                return InboxEntry(
                    deviceKey: deviceKey, seq: seq,
                    content: .message(
                        messageId: row["id"],
                        sender: DeviceAddress(
                            userId: row["sender_user_id"], deviceId: UInt32(truncatingIfNeeded: row["sender_device_id"] as Int64)),
                        clientMessageId: row["client_message_id"], roomCode: row["code"], ciphertext: ciphertext,
                        sentAt: row["sent_at"]))
            }
        }
    }

    func acknowledge(deviceKey: Int64, upTo seq: Int64) async throws {
        try await pool.write { db in
            try db.execute(sql: "DELETE FROM inbox WHERE device_key = ? AND seq <= ?", arguments: [deviceKey, seq])
        }
    }

    func history(roomId: Int64, visibleAfter: Int64, before: Int64?, limit: Int) async throws -> [HistoryRecord] {
        try await pool.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT id, sender_user_id, sender_device_id, client_message_id, key_id, payload, sent_at
                    FROM messages WHERE room_id = ? AND id > ? AND id < ? ORDER BY id DESC LIMIT ?
                    """,
                arguments: [roomId, visibleAfter, before ?? Int64.max, limit]
            ).map { row in
                HistoryRecord(
                    messageId: row["id"],
                    sender: DeviceAddress(
                        userId: row["sender_user_id"], deviceId: UInt32(truncatingIfNeeded: row["sender_device_id"] as Int64)),
                    clientMessageId: row["client_message_id"],
                    ciphertext: SealedPayload(keyId: row["key_id"], bytes: (row["payload"] as Data).bytes),
                    sentAt: row["sent_at"])
            }
        }
    }

    func deleteExpired(now: Milliseconds) async throws -> [String] {
        try await pool.write { db in
            // Attachments go with the last message that points at them, or at their own expiry;
            // a profile picture stays while it is someone's avatar.
            let referenced = try String.fetchAll(
                db,
                sql: """
                    SELECT DISTINCT ma.attachment_id FROM message_attachments ma JOIN messages m ON m.id = ma.message_id
                    WHERE m.expires_at <= ?
                    """,
                arguments: [now])
            try db.execute(sql: "DELETE FROM messages WHERE expires_at <= ?", arguments: [now])
            try db.execute(sql: "DELETE FROM inbox WHERE message_id IS NULL AND expires_at <= ?", arguments: [now])
            try db.execute(sql: "DELETE FROM sessions WHERE expires_at <= ? OR revoked_at <= ?", arguments: [now, now - 86_400_000])
            var doomed = Set(try String.fetchAll(db, sql: "SELECT id FROM attachments WHERE expires_at <= ?", arguments: [now]))
            for id in referenced
            where try Bool.fetchOne(db, sql: "SELECT 1 FROM message_attachments WHERE attachment_id = ?", arguments: [id]) == nil {
                doomed.insert(id)
            }
            var deleted: [String] = []
            for id in doomed.sorted()
            where try Bool.fetchOne(db, sql: "SELECT 1 FROM users WHERE avatar_attachment_id = ?", arguments: [id]) == nil {
                try db.execute(sql: "DELETE FROM attachments WHERE id = ?", arguments: [id])
                deleted.append(id)
            }
            return deleted
        }
    }

    func resealPayloads(notUnder keyId: String, reseal: @escaping @Sendable (SealedPayload, PayloadLocation) throws -> SealedPayload) async throws -> Int {
        var total = 0
        // Room messages, then pairwise inbox payloads, 500 rows per transaction so that the server keeps running.
        while true {
            let count = try await pool.write { db in
                let rows = try Row.fetchAll(
                    db,
                    sql: """
                        SELECT id, sender_user_id, sender_device_id, client_message_id, key_id, payload FROM messages
                        WHERE payload IS NOT NULL AND key_id != ? LIMIT 500
                        """,
                    arguments: [keyId])
                for row in rows {
                    let location = PayloadLocation(
                        sender: DeviceAddress(userId: row["sender_user_id"], deviceId: UInt32(truncatingIfNeeded: row["sender_device_id"] as Int64)),
                        clientMessageId: row["client_message_id"], recipient: nil)
                    let sealed = try reseal(SealedPayload(keyId: row["key_id"], bytes: (row["payload"] as Data).bytes), location)
                    try db.execute(
                        sql: "UPDATE messages SET key_id = ?, payload = ? WHERE id = ?",
                        arguments: [sealed.keyId, Data(sealed.bytes), row["id"] as Int64])
                }
                return rows.count
            }
            total += count
            if count == 0 { break }
        }
        while true {
            let count = try await pool.write { db in
                let rows = try Row.fetchAll(
                    db,
                    sql: """
                        SELECT i.device_key, i.seq, i.key_id, i.payload, m.sender_user_id, m.sender_device_id, m.client_message_id,
                            d.user_id, d.device_id
                        FROM inbox i JOIN messages m ON m.id = i.message_id JOIN devices d ON d.key = i.device_key
                        WHERE i.payload IS NOT NULL AND i.key_id != ? LIMIT 500
                        """,
                    arguments: [keyId])
                for row in rows {
                    let location = PayloadLocation(
                        sender: DeviceAddress(userId: row["sender_user_id"], deviceId: UInt32(truncatingIfNeeded: row["sender_device_id"] as Int64)),
                        clientMessageId: row["client_message_id"],
                        recipient: DeviceAddress(userId: row["user_id"], deviceId: UInt32(truncatingIfNeeded: row["device_id"] as Int64)))
                    let sealed = try reseal(SealedPayload(keyId: row["key_id"], bytes: (row["payload"] as Data).bytes), location)
                    try db.execute(
                        sql: "UPDATE inbox SET key_id = ?, payload = ? WHERE device_key = ? AND seq = ?",
                        arguments: [sealed.keyId, Data(sealed.bytes), row["device_key"] as Int64, row["seq"] as Int64])
                }
                return rows.count
            }
            total += count
            if count == 0 { break }
        }
        return total
    }

    // MARK: Attachments

    func createAttachment(_ attachment: AttachmentRecord, grantedTo: [String]) async throws {
        try await pool.write { db in
            try db.execute(
                sql: "INSERT INTO attachments (id, uploader_user_id, room_id, size, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)",
                arguments: [
                    attachment.id, attachment.uploaderUserId, attachment.roomId, attachment.size, attachment.createdAt,
                    attachment.expiresAt,
                ])
            for userId in Set(grantedTo) {
                try db.execute(
                    sql: "INSERT INTO attachment_grants (attachment_id, user_id) VALUES (?, ?)", arguments: [attachment.id, userId])
            }
        }
    }

    func attachment(id: String) async throws -> AttachmentRecord? {
        try await pool.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM attachments WHERE id = ?", arguments: [id]).map { row in
                AttachmentRecord(
                    id: row["id"], uploaderUserId: row["uploader_user_id"], roomId: row["room_id"], size: row["size"],
                    createdAt: row["created_at"], expiresAt: row["expires_at"])
            }
        }
    }

    func canRead(attachmentId: String, userId: String) async throws -> Bool {
        try await pool.read { db in
            try Bool.fetchOne(
                db,
                sql: """
                    SELECT 1 FROM attachments a WHERE a.id = ?1 AND (
                        a.uploader_user_id = ?2
                        OR EXISTS (SELECT 1 FROM attachment_grants g WHERE g.attachment_id = a.id AND g.user_id = ?2)
                        OR EXISTS (SELECT 1 FROM memberships m WHERE m.room_id = a.room_id AND m.user_id = ?2
                                   AND m.joined_at <= a.created_at)
                        OR EXISTS (SELECT 1 FROM users u JOIN memberships x ON x.user_id = u.id
                                   JOIN memberships y ON y.room_id = x.room_id AND y.user_id = ?2
                                   WHERE u.avatar_attachment_id = a.id))
                    """,
                arguments: [attachmentId, userId]) != nil
        }
    }

    func attachmentBytes(uploaderId: String, now: Milliseconds) async throws -> Int64 {
        try await pool.read { db in
            try Int64.fetchOne(
                db, sql: "SELECT COALESCE(SUM(size), 0) FROM attachments WHERE uploader_user_id = ? AND expires_at > ?",
                arguments: [uploaderId, now]) ?? 0
        }
    }

    func deleteAttachment(id: String) async throws {
        try await pool.write { db in
            try db.execute(sql: "UPDATE users SET avatar_attachment_id = NULL WHERE avatar_attachment_id = ?", arguments: [id])
            try db.execute(sql: "DELETE FROM attachments WHERE id = ?", arguments: [id])
        }
    }
}
