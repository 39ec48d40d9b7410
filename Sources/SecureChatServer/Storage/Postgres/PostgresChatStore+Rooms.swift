import Foundation
import PostgresNIO
import SecureChatAPI

extension PostgresChatStore {
    static let roomColumns = "id, code, name, password_hash, retention_seconds, created_at"

    static func roomRecord(_ row: PostgresRow) throws -> RoomRecord {
        let (id, code, name, hash, retention, createdAt) = try row.decode((Int64, String, String, String?, Int64, Int64).self)
        return RoomRecord(id: id, code: code, name: name, passwordHash: hash, retentionSeconds: retention, createdAt: createdAt)
    }

    /// The highest message id handed out so far: a new member's history starts after it.
    private func highestMessageId(_ connection: PostgresConnection) async throws -> Int64 {
        try await rows("SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM messages_id_seq", on: connection).first?
            .decode(Int64.self) ?? 0
    }

    func createRoom(_ room: RoomRecord, ownerId: String, now: Milliseconds) async throws -> RoomRecord {
        try await transaction { connection in
            let id = try await self.rows(
                """
                INSERT INTO rooms (code, name, password_hash, retention_seconds, created_at)
                VALUES (\(room.code), \(room.name), \(room.passwordHash), \(room.retentionSeconds), \(room.createdAt)) RETURNING id
                """, on: connection
            ).first?.decode(Int64.self) ?? 0
            try await connection.query(
                """
                INSERT INTO memberships (room_id, user_id, role, joined_at, history_after_message_id)
                VALUES (\(id), \(ownerId), 'owner', \(now), \(try await self.highestMessageId(connection)))
                """, logger: self.logger)
            var stored = room
            stored.id = id
            return stored
        }
    }

    func room(code: String) async throws -> RoomRecord? {
        try await rows("SELECT \(unescaped: Self.roomColumns) FROM rooms WHERE code = \(code)").first.map(Self.roomRecord)
    }

    func membership(_ connection: PostgresConnection?, roomId: Int64, userId: String) async throws -> MembershipRecord? {
        try await rows(
            "SELECT role, joined_at, history_after_message_id FROM memberships WHERE room_id = \(roomId) AND user_id = \(userId)",
            on: connection
        ).first.map { row in
            let (role, joinedAt, historyAfter) = try row.decode((String, Int64, Int64).self)
            return MembershipRecord(
                roomId: roomId, userId: userId, role: RoomRole(rawValue: role) ?? .member, joinedAt: joinedAt,
                historyAfterMessageId: historyAfter)
        }
    }

    func membership(roomId: Int64, userId: String) async throws -> MembershipRecord? {
        try await membership(nil, roomId: roomId, userId: userId)
    }

    func rooms(userId: String) async throws -> [RoomSummary] {
        try await rows(
            """
            SELECT r.id, r.code, r.name, r.password_hash, r.retention_seconds, r.created_at, m.role,
                (SELECT COUNT(*) FROM memberships c WHERE c.room_id = r.id)
            FROM memberships m JOIN rooms r ON r.id = m.room_id
            WHERE m.user_id = \(userId) ORDER BY r.name, r.id
            """
        ).map { row in
            let (id, code, name, hash, retention, createdAt, role, count) = try row.decode(
                (Int64, String, String, String?, Int64, Int64, String, Int64).self)
            return RoomSummary(
                room: RoomRecord(id: id, code: code, name: name, passwordHash: hash, retentionSeconds: retention, createdAt: createdAt),
                role: RoomRole(rawValue: role) ?? .member, memberCount: Int(count))
        }
    }

    func pendingDeliveryCount() async throws -> Int {
        Int(try await rows("SELECT COUNT(*) FROM inbox").first?.decode(Int64.self) ?? 0)
    }

    func memberCount(roomId: Int64) async throws -> Int {
        Int(try await rows("SELECT COUNT(*) FROM memberships WHERE room_id = \(roomId)").first?.decode(Int64.self) ?? 0)
    }

    /// Locks the room row: membership changes of one room happen one at a time.
    private func lockRoom(_ connection: PostgresConnection, _ roomId: Int64) async throws {
        guard try await !rows("SELECT 1 FROM rooms WHERE id = \(roomId) FOR UPDATE", on: connection).isEmpty else {
            throw APIFailure.notFound("room")
        }
    }

    func join(roomId: Int64, userId: String, maxMembers: Int, now: Milliseconds) async throws -> [InboxEntry] {
        try await transaction { connection in
            try await self.lockRoom(connection, roomId)
            if try await !self.rows("SELECT 1 FROM bans WHERE room_id = \(roomId) AND user_id = \(userId)", on: connection).isEmpty {
                throw APIFailure(.forbidden, .banned, "you are banned from this room")
            }
            if try await self.membership(connection, roomId: roomId, userId: userId) != nil {
                throw APIFailure(.conflict, .alreadyMember, "you are already a member of this room")
            }
            let count = try await self.rows("SELECT COUNT(*) FROM memberships WHERE room_id = \(roomId)", on: connection).first?
                .decode(Int64.self) ?? 0
            guard count < maxMembers else { throw APIFailure(.conflict, .roomFull, "this room has \(maxMembers) members, its limit") }
            try await connection.query(
                """
                INSERT INTO memberships (room_id, user_id, role, joined_at, history_after_message_id)
                VALUES (\(roomId), \(userId), 'member', \(now), \(try await self.highestMessageId(connection)))
                """, logger: self.logger)
            return try await self.appendRoomEvent(
                connection, roomId: roomId, change: .joined, userId: userId, actorId: userId, role: .member, now: now)
        }
    }

    func leave(roomId: Int64, userId: String, now: Milliseconds) async throws -> [InboxEntry] {
        try await transaction { connection in
            try await self.lockRoom(connection, roomId)
            guard try await self.membership(connection, roomId: roomId, userId: userId) != nil else { throw APIFailure.notAMember }
            return try await self.removeMember(connection, roomId: roomId, userId: userId, actorId: userId, change: .left, ban: false, now: now)
        }
    }

    func removeMember(
        _ connection: PostgresConnection, roomId: Int64, userId: String, actorId: String, change: ServerFrame.MembershipChange,
        ban: Bool, now: Milliseconds
    ) async throws -> [InboxEntry] {
        let role = try await membership(connection, roomId: roomId, userId: userId)?.role
        var deliveries = try await appendRoomEvent(connection, roomId: roomId, change: change, userId: userId, actorId: actorId, role: nil, now: now)
        try await connection.query("DELETE FROM memberships WHERE room_id = \(roomId) AND user_id = \(userId)", logger: logger)
        if ban {
            try await connection.query(
                """
                INSERT INTO bans (room_id, user_id, banned_by, banned_at) VALUES (\(roomId), \(userId), \(actorId), \(now))
                ON CONFLICT DO NOTHING
                """, logger: logger)
        }
        let remaining = try await rows("SELECT user_id, role, joined_at FROM memberships WHERE room_id = \(roomId)", on: connection)
            .map { row in
                let (user, role, joinedAt) = try row.decode((String, String, Int64).self)
                return (userId: user, role: RoomRole(rawValue: role) ?? .member, joinedAt: joinedAt)
            }
        if remaining.isEmpty {
            try await connection.query("DELETE FROM rooms WHERE id = \(roomId)", logger: logger)
        } else if role == .owner, let successor = RoomPolicy.successor(among: remaining) {
            try await connection.query(
                "UPDATE memberships SET role = 'owner' WHERE room_id = \(roomId) AND user_id = \(successor)", logger: logger)
            deliveries += try await appendRoomEvent(
                connection, roomId: roomId, change: .roleChanged, userId: successor, actorId: userId, role: .owner, now: now)
        }
        return deliveries
    }

    func members(roomId: Int64) async throws -> [MemberRecord] {
        let rows = try await rows(
            """
            SELECT m.user_id, u.username, m.role, m.joined_at, d.device_id
            FROM memberships m JOIN users u ON u.id = m.user_id LEFT JOIN devices d ON d.user_id = m.user_id
            WHERE m.room_id = \(roomId) ORDER BY m.joined_at, m.user_id, d.device_id
            """)
        var members: [MemberRecord] = []
        for row in rows {
            let (userId, username, role, joinedAt, deviceId) = try row.decode((String, String, String, Int64, Int64?).self)
            let device = deviceId.map { UInt32(truncatingIfNeeded: $0) }
            if members.last?.userId == userId {
                if let device { members[members.count - 1].deviceIds.append(device) }
            } else {
                members.append(
                    MemberRecord(
                        userId: userId, username: username, role: RoomRole(rawValue: role) ?? .member, deviceIds: device.map { [$0] } ?? [],
                        joinedAt: joinedAt))
            }
        }
        return members
    }

    private func requireRole(_ connection: PostgresConnection, roomId: Int64, userId: String) async throws -> RoomRole {
        guard let role = try await membership(connection, roomId: roomId, userId: userId)?.role else { throw APIFailure.notAMember }
        return role
    }

    func setRole(roomId: Int64, actorId: String, targetId: String, role: RoomRole, now: Milliseconds) async throws -> [InboxEntry] {
        try await transaction { connection in
            try await self.lockRoom(connection, roomId)
            let actorRole = try await self.requireRole(connection, roomId: roomId, userId: actorId)
            guard RoomPolicy.canChangeRole(actor: actorRole, isSelf: actorId == targetId) else {
                throw APIFailure.forbidden("only the owner changes roles, and not their own")
            }
            guard try await self.membership(connection, roomId: roomId, userId: targetId) != nil else { throw APIFailure.notFound("member") }
            try await connection.query(
                "UPDATE memberships SET role = \(role.rawValue) WHERE room_id = \(roomId) AND user_id = \(targetId)", logger: self.logger)
            var deliveries = try await self.appendRoomEvent(
                connection, roomId: roomId, change: .roleChanged, userId: targetId, actorId: actorId, role: role, now: now)
            if role == .owner {
                try await connection.query(
                    "UPDATE memberships SET role = 'admin' WHERE room_id = \(roomId) AND user_id = \(actorId)", logger: self.logger)
                deliveries += try await self.appendRoomEvent(
                    connection, roomId: roomId, change: .roleChanged, userId: actorId, actorId: actorId, role: .admin, now: now)
            }
            return deliveries
        }
    }

    func kick(roomId: Int64, actorId: String, targetId: String, ban: Bool, now: Milliseconds) async throws -> [InboxEntry] {
        try await transaction { connection in
            try await self.lockRoom(connection, roomId)
            let actorRole = try await self.requireRole(connection, roomId: roomId, userId: actorId)
            guard actorId != targetId else { throw APIFailure.badRequest("use leave to leave a room") }
            guard RoomPolicy.canManageRoom(actor: actorRole) else { throw APIFailure.forbidden("only admins remove members") }
            if let targetRole = try await self.membership(connection, roomId: roomId, userId: targetId)?.role {
                guard RoomPolicy.canRemove(actor: actorRole, target: targetRole) else {
                    throw APIFailure.forbidden("a \(actorRole.rawValue) cannot remove a \(targetRole.rawValue)")
                }
                return try await self.removeMember(
                    connection, roomId: roomId, userId: targetId, actorId: actorId, change: ban ? .banned : .kicked, ban: ban, now: now)
            }
            guard ban else { throw APIFailure.notFound("member") }
            guard try await !self.rows("SELECT 1 FROM users WHERE id = \(targetId)", on: connection).isEmpty else {
                throw APIFailure.notFound("user")
            }
            try await connection.query(
                """
                INSERT INTO bans (room_id, user_id, banned_by, banned_at) VALUES (\(roomId), \(targetId), \(actorId), \(now))
                ON CONFLICT DO NOTHING
                """, logger: self.logger)
            return []
        }
    }

    func unban(roomId: Int64, actorId: String, targetId: String) async throws {
        try await transaction { connection in
            guard RoomPolicy.canManageRoom(actor: try await self.requireRole(connection, roomId: roomId, userId: actorId)) else {
                throw APIFailure.forbidden("only admins lift bans")
            }
            guard try await !self.rows(
                "DELETE FROM bans WHERE room_id = \(roomId) AND user_id = \(targetId) RETURNING user_id", on: connection
            ).isEmpty
            else { throw APIFailure.notFound("ban") }
        }
    }

    func bans(roomId: Int64) async throws -> [String] {
        try await rows("SELECT user_id FROM bans WHERE room_id = \(roomId) ORDER BY banned_at, user_id").map { try $0.decode(String.self) }
    }

    func setRoomPassword(roomId: Int64, actorId: String, hash: String?) async throws {
        try await transaction { connection in
            guard RoomPolicy.canManageRoom(actor: try await self.requireRole(connection, roomId: roomId, userId: actorId)) else {
                throw APIFailure.forbidden("only admins change the room password")
            }
            try await connection.query("UPDATE rooms SET password_hash = \(hash) WHERE id = \(roomId)", logger: self.logger)
        }
    }

    func deleteRoom(roomId: Int64, actorId: String, now: Milliseconds) async throws -> (attachmentIds: [String], deliveries: [InboxEntry]) {
        try await transaction { connection in
            try await self.lockRoom(connection, roomId)
            guard RoomPolicy.canDeleteRoom(actor: try await self.requireRole(connection, roomId: roomId, userId: actorId)) else {
                throw APIFailure.forbidden("only the owner deletes a room")
            }
            let deliveries = try await self.appendRoomEvent(
                connection, roomId: roomId, change: .deleted, userId: actorId, actorId: actorId, role: nil, now: now)
            let attachmentIds = try await self.rows("SELECT id FROM attachments WHERE room_id = \(roomId)", on: connection)
                .map { try $0.decode(String.self) }
            try await connection.query("DELETE FROM rooms WHERE id = \(roomId)", logger: self.logger)
            return (attachmentIds, deliveries)
        }
    }

    func appendRoomEvent(
        _ connection: PostgresConnection, roomId: Int64, change: ServerFrame.MembershipChange, userId: String, actorId: String,
        role: RoomRole?, now: Milliseconds
    ) async throws -> [InboxEntry] {
        guard let room = try await rows("SELECT \(unescaped: Self.roomColumns) FROM rooms WHERE id = \(roomId)", on: connection).first
            .map(Self.roomRecord)
        else { return [] }
        let event = RoomEventRecord(room: room.code, change: change, userId: userId, actorUserId: actorId, role: role, at: now)
        let json = String(decoding: try JSONEncoder().encode(event), as: UTF8.self)
        let deviceKeys = try await rows(
            """
            SELECT d.key FROM devices d WHERE d.user_id IN (SELECT user_id FROM memberships WHERE room_id = \(roomId)) ORDER BY d.key
            """, on: connection
        ).map { try $0.decode(Int64.self) }
        let expiresAt = now + room.retentionSeconds * 1000
        var entries: [InboxEntry] = []
        for deviceKey in deviceKeys {
            let seq = try await appendInbox(connection, deviceKey: deviceKey, messageId: nil, payload: nil, event: json, expiresAt: expiresAt)
            entries.append(InboxEntry(deviceKey: deviceKey, seq: seq, content: .roomEvent(event)))
        }
        return entries
    }

    /// Takes the device's next sequence number (its row stays locked until commit, so numbers
    /// commit in order) and stores the delivery under it.
    func appendInbox(
        _ connection: PostgresConnection, deviceKey: Int64, messageId: Int64?, payload: SealedPayload?, event: String?,
        expiresAt: Milliseconds
    ) async throws -> Int64 {
        guard let seq = try await rows(
            """
            WITH next AS (UPDATE devices SET last_seq = last_seq + 1 WHERE key = \(deviceKey) RETURNING last_seq)
            INSERT INTO inbox (device_key, seq, message_id, key_id, payload, event, expires_at)
            SELECT \(deviceKey), last_seq, \(messageId), \(payload?.keyId), \(payload.map { Data($0.bytes) }), \(event), \(expiresAt) FROM next
            RETURNING seq
            """, on: connection
        ).first?.decode(Int64.self)
        else { throw APIFailure(.notFound, .unknownDevice, "device not found") }
        return seq
    }
}
