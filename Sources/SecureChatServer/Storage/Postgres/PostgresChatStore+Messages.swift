import Foundation
import PostgresNIO
import SecureChatAPI

extension PostgresChatStore {
    func inbox(deviceKey: Int64, after seq: Int64, limit: Int) async throws -> [InboxEntry] {
        try await rows(InboxPageQuery(deviceKey: deviceKey, after: seq, limit: Int64(limit))).compactMap { row in
            let (seq, event, inboxKeyId, inboxPayload, messageId, senderUserId, senderDeviceId, clientMessageId, keyId, payload, sentAt, code) =
                try row.decode((Int64, String?, String?, Data?, Int64?, String?, Int64?, String?, String?, Data?, Int64?, String?).self)
            if let event {
                let record = try JSONDecoder().decode(RoomEventRecord.self, from: Data(event.utf8))
                return InboxEntry(deviceKey: deviceKey, seq: seq, content: .roomEvent(record))
            }
            guard let messageId, let senderUserId, let senderDeviceId, let clientMessageId, let sentAt else { return nil }
            let sealed: SealedPayload
            if let inboxKeyId, let inboxPayload {
                sealed = SealedPayload(keyId: inboxKeyId, bytes: Array(inboxPayload))
            } else if let keyId, let payload {
                sealed = SealedPayload(keyId: keyId, bytes: Array(payload))
            } else {
                return nil
            }
            return InboxEntry(
                deviceKey: deviceKey, seq: seq,
                content: .message(
                    messageId: messageId, sender: DeviceAddress(userId: senderUserId, deviceId: UInt32(truncatingIfNeeded: senderDeviceId)),
                    clientMessageId: clientMessageId, roomCode: code, ciphertext: sealed, sentAt: sentAt))
        }
    }

    func acknowledge(deviceKey: Int64, upTo seq: Int64) async throws {
        try await execute("DELETE FROM inbox WHERE device_key = \(deviceKey) AND seq <= \(seq)")
    }

    func history(roomId: Int64, visibleAfter: Int64, before: Int64?, limit: Int) async throws -> [HistoryRecord] {
        try await rows(
            """
            SELECT id, sender_user_id, sender_device_id, client_message_id, key_id, payload, sent_at
            FROM messages WHERE room_id = \(roomId) AND id > \(visibleAfter) AND id < \(before ?? Int64.max)
            ORDER BY id DESC LIMIT \(Int64(limit))
            """
        ).map { row in
            let (id, userId, deviceId, clientMessageId, keyId, payload, sentAt) = try row.decode(
                (Int64, String, Int64, String, String, Data, Int64).self)
            return HistoryRecord(
                messageId: id, sender: DeviceAddress(userId: userId, deviceId: UInt32(truncatingIfNeeded: deviceId)),
                clientMessageId: clientMessageId, ciphertext: SealedPayload(keyId: keyId, bytes: Array(payload)), sentAt: sentAt)
        }
    }

    func deleteExpired(now: Milliseconds) async throws -> [String] {
        try await transaction { connection in
            let referenced = try await self.rows(
                """
                SELECT DISTINCT ma.attachment_id FROM message_attachments ma JOIN messages m ON m.id = ma.message_id
                WHERE m.expires_at <= \(now)
                """, on: connection
            ).map { try $0.decode(String.self) }
            try await connection.query("DELETE FROM messages WHERE expires_at <= \(now)", logger: self.logger)
            try await connection.query("DELETE FROM inbox WHERE message_id IS NULL AND expires_at <= \(now)", logger: self.logger)
            try await connection.query(
                "DELETE FROM sessions WHERE expires_at <= \(now) OR revoked_at <= \(now - 86_400_000)", logger: self.logger)
            var doomed = Set(
                try await self.rows("SELECT id FROM attachments WHERE expires_at <= \(now)", on: connection).map { try $0.decode(String.self) })
            for id in referenced
            where try await self.rows("SELECT 1 FROM message_attachments WHERE attachment_id = \(id)", on: connection).isEmpty {
                doomed.insert(id)
            }
            var deleted: [String] = []
            for id in doomed.sorted()
            where try await self.rows("SELECT 1 FROM users WHERE avatar_attachment_id = \(id)", on: connection).isEmpty {
                try await connection.query("DELETE FROM attachments WHERE id = \(id)", logger: self.logger)
                deleted.append(id)
            }
            return deleted
        }
    }

    func resealPayloads(notUnder keyId: String, reseal: @escaping @Sendable (SealedPayload, PayloadLocation) throws -> SealedPayload) async throws -> Int {
        var total = 0
        while true {
            let count = try await transaction { connection in
                let rows = try await self.rows(
                    """
                    SELECT id, sender_user_id, sender_device_id, client_message_id, key_id, payload FROM messages
                    WHERE payload IS NOT NULL AND key_id <> \(keyId) LIMIT 500 FOR UPDATE
                    """, on: connection)
                for row in rows {
                    let (id, userId, deviceId, clientMessageId, oldKey, payload) = try row.decode((Int64, String, Int64, String, String, Data).self)
                    let location = PayloadLocation(
                        sender: DeviceAddress(userId: userId, deviceId: UInt32(truncatingIfNeeded: deviceId)), clientMessageId: clientMessageId,
                        recipient: nil)
                    let sealed = try reseal(SealedPayload(keyId: oldKey, bytes: Array(payload)), location)
                    try await connection.query(
                        "UPDATE messages SET key_id = \(sealed.keyId), payload = \(Data(sealed.bytes)) WHERE id = \(id)", logger: self.logger)
                }
                return rows.count
            }
            total += count
            if count == 0 { break }
        }
        while true {
            let count = try await transaction { connection in
                let rows = try await self.rows(
                    """
                    SELECT i.device_key, i.seq, i.key_id, i.payload, m.sender_user_id, m.sender_device_id, m.client_message_id,
                        d.user_id, d.device_id
                    FROM inbox i JOIN messages m ON m.id = i.message_id JOIN devices d ON d.key = i.device_key
                    WHERE i.payload IS NOT NULL AND i.key_id <> \(keyId) LIMIT 500 FOR UPDATE OF i
                    """, on: connection)
                for row in rows {
                    let (deviceKey, seq, oldKey, payload, senderUserId, senderDeviceId, clientMessageId, recipientUserId, recipientDeviceId) =
                        try row.decode((Int64, Int64, String, Data, String, Int64, String, String, Int64).self)
                    let location = PayloadLocation(
                        sender: DeviceAddress(userId: senderUserId, deviceId: UInt32(truncatingIfNeeded: senderDeviceId)),
                        clientMessageId: clientMessageId,
                        recipient: DeviceAddress(userId: recipientUserId, deviceId: UInt32(truncatingIfNeeded: recipientDeviceId)))
                    let sealed = try reseal(SealedPayload(keyId: oldKey, bytes: Array(payload)), location)
                    try await connection.query(
                        "UPDATE inbox SET key_id = \(sealed.keyId), payload = \(Data(sealed.bytes)) WHERE device_key = \(deviceKey) AND seq = \(seq)",
                        logger: self.logger)
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
        try await transaction { connection in
            try await connection.query(
                """
                INSERT INTO attachments (id, uploader_user_id, room_id, size, created_at, expires_at)
                VALUES (\(attachment.id), \(attachment.uploaderUserId), \(attachment.roomId), \(attachment.size), \(attachment.createdAt),
                    \(attachment.expiresAt))
                """, logger: self.logger)
            for userId in Set(grantedTo).sorted() {
                try await connection.query(
                    "INSERT INTO attachment_grants (attachment_id, user_id) VALUES (\(attachment.id), \(userId))", logger: self.logger)
            }
        }
    }

    func attachment(id: String) async throws -> AttachmentRecord? {
        try await rows("SELECT id, uploader_user_id, room_id, size, created_at, expires_at FROM attachments WHERE id = \(id)").first.map { row in
            let (id, uploader, roomId, size, createdAt, expiresAt) = try row.decode((String, String, Int64?, Int64, Int64, Int64).self)
            return AttachmentRecord(id: id, uploaderUserId: uploader, roomId: roomId, size: size, createdAt: createdAt, expiresAt: expiresAt)
        }
    }

    func canRead(attachmentId: String, userId: String) async throws -> Bool {
        try await !rows(
            """
            SELECT 1 FROM attachments a WHERE a.id = \(attachmentId) AND (
                a.uploader_user_id = \(userId)
                OR EXISTS (SELECT 1 FROM attachment_grants g WHERE g.attachment_id = a.id AND g.user_id = \(userId))
                OR EXISTS (SELECT 1 FROM memberships m WHERE m.room_id = a.room_id AND m.user_id = \(userId)
                           AND m.joined_at <= a.created_at)
                OR EXISTS (SELECT 1 FROM users u JOIN memberships x ON x.user_id = u.id
                           JOIN memberships y ON y.room_id = x.room_id AND y.user_id = \(userId)
                           WHERE u.avatar_attachment_id = a.id))
            """
        ).isEmpty
    }

    func attachmentBytes(uploaderId: String, now: Milliseconds) async throws -> Int64 {
        try await rows(
            "SELECT COALESCE(SUM(size), 0)::BIGINT FROM attachments WHERE uploader_user_id = \(uploaderId) AND expires_at > \(now)"
        ).first?.decode(Int64.self) ?? 0
    }

    func deleteAttachment(id: String) async throws {
        try await transaction { connection in
            try await connection.query("UPDATE users SET avatar_attachment_id = NULL WHERE avatar_attachment_id = \(id)", logger: self.logger)
            try await connection.query("DELETE FROM attachments WHERE id = \(id)", logger: self.logger)
        }
    }
}
