import Foundation
import GRDB
import SecureChatAPI

extension SQLiteChatStore {
    func createRoom(_ room: RoomRecord, ownerId: String, now: Milliseconds) async throws -> RoomRecord {
        try await pool.write { db in
            try db.execute(
                sql: "INSERT INTO rooms (code, name, password_hash, retention_seconds, created_at) VALUES (?, ?, ?, ?, ?)",
                arguments: [room.code, room.name, room.passwordHash, room.retentionSeconds, room.createdAt])
            var stored = room
            stored.id = db.lastInsertedRowID
            try db.execute(
                sql: """
                    INSERT INTO memberships (room_id, user_id, role, joined_at, history_after_message_id)
                    VALUES (?, ?, 'owner', ?, ?)
                    """,
                arguments: [stored.id, ownerId, now, try Self.highestMessageId(db)])
            return stored
        }
    }

    private static func highestMessageId(_ db: Database) throws -> Int64 {
        // AUTOINCREMENT keeps the high-water mark in sqlite_sequence even after deletions.
        try Int64.fetchOne(db, sql: "SELECT seq FROM sqlite_sequence WHERE name = 'messages'") ?? 0
    }

    static func roomRecord(_ row: Row) -> RoomRecord {
        RoomRecord(
            id: row["id"], code: row["code"], name: row["name"], passwordHash: row["password_hash"],
            retentionSeconds: row["retention_seconds"], createdAt: row["created_at"])
    }

    func room(code: String) async throws -> RoomRecord? {
        try await pool.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM rooms WHERE code = ?", arguments: [code]).map(Self.roomRecord)
        }
    }

    static func membership(_ db: Database, roomId: Int64, userId: String) throws -> MembershipRecord? {
        try Row.fetchOne(
            db, sql: "SELECT * FROM memberships WHERE room_id = ? AND user_id = ?", arguments: [roomId, userId]
        ).map { row in
            MembershipRecord(
                roomId: row["room_id"], userId: row["user_id"], role: RoomRole(rawValue: row["role"]) ?? .member,
                joinedAt: row["joined_at"], historyAfterMessageId: row["history_after_message_id"])
        }
    }

    func membership(roomId: Int64, userId: String) async throws -> MembershipRecord? {
        try await pool.read { db in try Self.membership(db, roomId: roomId, userId: userId) }
    }

    func rooms(userId: String) async throws -> [RoomSummary] {
        try await pool.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT r.*, m.role AS member_role,
                        (SELECT COUNT(*) FROM memberships c WHERE c.room_id = r.id) AS member_count
                    FROM memberships m JOIN rooms r ON r.id = m.room_id
                    WHERE m.user_id = ? ORDER BY r.name, r.id
                    """,
                arguments: [userId]
            ).map { row in
                RoomSummary(
                    room: Self.roomRecord(row), role: RoomRole(rawValue: row["member_role"]) ?? .member,
                    memberCount: row["member_count"])
            }
        }
    }

    func pendingDeliveryCount() async throws -> Int {
        try await pool.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM inbox") ?? 0 }
    }

    func memberCount(roomId: Int64) async throws -> Int {
        try await pool.read { db in
            try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM memberships WHERE room_id = ?", arguments: [roomId]) ?? 0
        }
    }

    func join(roomId: Int64, userId: String, maxMembers: Int, now: Milliseconds) async throws -> [InboxEntry] {
        try await pool.write { db in
            if try Bool.fetchOne(db, sql: "SELECT 1 FROM bans WHERE room_id = ? AND user_id = ?", arguments: [roomId, userId]) != nil {
                throw APIFailure(.forbidden, .banned, "you are banned from this room")
            }
            if try Self.membership(db, roomId: roomId, userId: userId) != nil {
                throw APIFailure(.conflict, .alreadyMember, "you are already a member of this room")
            }
            let count = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM memberships WHERE room_id = ?", arguments: [roomId]) ?? 0
            guard count < maxMembers else { throw APIFailure(.conflict, .roomFull, "this room has \(maxMembers) members, its limit") }
            try db.execute(
                sql: """
                    INSERT INTO memberships (room_id, user_id, role, joined_at, history_after_message_id)
                    VALUES (?, ?, 'member', ?, ?)
                    """,
                arguments: [roomId, userId, now, try Self.highestMessageId(db)])
            return try Self.appendRoomEvent(
                db, roomId: roomId, change: .joined, userId: userId, actorId: userId, role: .member, now: now)
        }
    }

    func leave(roomId: Int64, userId: String, now: Milliseconds) async throws -> [InboxEntry] {
        try await pool.write { db in
            guard try Self.membership(db, roomId: roomId, userId: userId) != nil else { throw APIFailure.notAMember }
            return try Self.removeMember(db, roomId: roomId, userId: userId, actorId: userId, change: .left, ban: false, now: now)
        }
    }

    /// Removes a member, hands ownership on if they owned the room, deletes the room once empty.
    static func removeMember(
        _ db: Database, roomId: Int64, userId: String, actorId: String, change: ServerFrame.MembershipChange, ban: Bool,
        now: Milliseconds
    ) throws -> [InboxEntry] {
        let role = try membership(db, roomId: roomId, userId: userId)?.role
        // The event goes out before the membership is removed so that the member learns of it too.
        var deliveries = try appendRoomEvent(
            db, roomId: roomId, change: change, userId: userId, actorId: actorId, role: nil, now: now)
        try db.execute(sql: "DELETE FROM memberships WHERE room_id = ? AND user_id = ?", arguments: [roomId, userId])
        if ban {
            try db.execute(
                sql: "INSERT INTO bans (room_id, user_id, banned_by, banned_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                arguments: [roomId, userId, actorId, now])
        }
        let remaining = try Row.fetchAll(
            db, sql: "SELECT user_id, role, joined_at FROM memberships WHERE room_id = ?", arguments: [roomId]
        ).map { row in (userId: row["user_id"] as String, role: RoomRole(rawValue: row["role"]) ?? .member, joinedAt: row["joined_at"] as Int64) }
        if remaining.isEmpty {
            try db.execute(sql: "DELETE FROM rooms WHERE id = ?", arguments: [roomId])
        } else if role == .owner, let successor = RoomPolicy.successor(among: remaining) {
            try db.execute(
                sql: "UPDATE memberships SET role = 'owner' WHERE room_id = ? AND user_id = ?", arguments: [roomId, successor])
            deliveries += try appendRoomEvent(
                db, roomId: roomId, change: .roleChanged, userId: successor, actorId: userId, role: .owner, now: now)
        }
        return deliveries
    }

    func members(roomId: Int64) async throws -> [MemberRecord] {
        try await pool.read { db in
            let rows = try Row.fetchAll(
                db,
                sql: """
                    SELECT m.user_id, u.username, m.role, m.joined_at, d.device_id
                    FROM memberships m JOIN users u ON u.id = m.user_id LEFT JOIN devices d ON d.user_id = m.user_id
                    WHERE m.room_id = ? ORDER BY m.joined_at, m.user_id, d.device_id
                    """,
                arguments: [roomId])
            var members: [MemberRecord] = []
            for row in rows {
                let userId: String = row["user_id"]
                let deviceId = (row["device_id"] as Int64?).map { UInt32(truncatingIfNeeded: $0) }
                if members.last?.userId == userId {
                    if let deviceId { members[members.count - 1].deviceIds.append(deviceId) }
                } else {
                    members.append(
                        MemberRecord(
                            userId: userId, username: row["username"], role: RoomRole(rawValue: row["role"]) ?? .member,
                            deviceIds: deviceId.map { [$0] } ?? [], joinedAt: row["joined_at"]))
                }
            }
            return members
        }
    }

    private static func requireRole(_ db: Database, roomId: Int64, userId: String) throws -> RoomRole {
        guard let role = try membership(db, roomId: roomId, userId: userId)?.role else { throw APIFailure.notAMember }
        return role
    }

    func setRole(roomId: Int64, actorId: String, targetId: String, role: RoomRole, now: Milliseconds) async throws -> [InboxEntry] {
        try await pool.write { db in
            let actorRole = try Self.requireRole(db, roomId: roomId, userId: actorId)
            guard RoomPolicy.canChangeRole(actor: actorRole, isSelf: actorId == targetId) else {
                throw APIFailure.forbidden("only the owner changes roles, and not their own")
            }
            guard try Self.membership(db, roomId: roomId, userId: targetId) != nil else { throw APIFailure.notFound("member") }
            try db.execute(
                sql: "UPDATE memberships SET role = ? WHERE room_id = ? AND user_id = ?",
                arguments: [role.rawValue, roomId, targetId])
            var deliveries = try Self.appendRoomEvent(
                db, roomId: roomId, change: .roleChanged, userId: targetId, actorId: actorId, role: role, now: now)
            if role == .owner {
                try db.execute(
                    sql: "UPDATE memberships SET role = 'admin' WHERE room_id = ? AND user_id = ?", arguments: [roomId, actorId])
                deliveries += try Self.appendRoomEvent(
                    db, roomId: roomId, change: .roleChanged, userId: actorId, actorId: actorId, role: .admin, now: now)
            }
            return deliveries
        }
    }

    func kick(roomId: Int64, actorId: String, targetId: String, ban: Bool, now: Milliseconds) async throws -> [InboxEntry] {
        try await pool.write { db in
            let actorRole = try Self.requireRole(db, roomId: roomId, userId: actorId)
            guard actorId != targetId else { throw APIFailure.badRequest("use leave to leave a room") }
            guard RoomPolicy.canManageRoom(actor: actorRole) else { throw APIFailure.forbidden("only admins remove members") }
            if let targetRole = try Self.membership(db, roomId: roomId, userId: targetId)?.role {
                guard RoomPolicy.canRemove(actor: actorRole, target: targetRole) else {
                    throw APIFailure.forbidden("a \(actorRole.rawValue) cannot remove a \(targetRole.rawValue)")
                }
                return try Self.removeMember(
                    db, roomId: roomId, userId: targetId, actorId: actorId, change: ban ? .banned : .kicked, ban: ban, now: now)
            }
            // Banning someone who is not (or no longer) a member keeps them out.
            guard ban else { throw APIFailure.notFound("member") }
            guard try Bool.fetchOne(db, sql: "SELECT 1 FROM users WHERE id = ?", arguments: [targetId]) != nil else {
                throw APIFailure.notFound("user")
            }
            try db.execute(
                sql: "INSERT INTO bans (room_id, user_id, banned_by, banned_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                arguments: [roomId, targetId, actorId, now])
            return []
        }
    }

    func unban(roomId: Int64, actorId: String, targetId: String) async throws {
        try await pool.write { db in
            guard RoomPolicy.canManageRoom(actor: try Self.requireRole(db, roomId: roomId, userId: actorId)) else {
                throw APIFailure.forbidden("only admins lift bans")
            }
            try db.execute(sql: "DELETE FROM bans WHERE room_id = ? AND user_id = ?", arguments: [roomId, targetId])
            guard db.changesCount > 0 else { throw APIFailure.notFound("ban") }
        }
    }

    func bans(roomId: Int64) async throws -> [String] {
        try await pool.read { db in
            try String.fetchAll(db, sql: "SELECT user_id FROM bans WHERE room_id = ? ORDER BY banned_at, user_id", arguments: [roomId])
        }
    }

    func setRoomPassword(roomId: Int64, actorId: String, hash: String?) async throws {
        try await pool.write { db in
            guard RoomPolicy.canManageRoom(actor: try Self.requireRole(db, roomId: roomId, userId: actorId)) else {
                throw APIFailure.forbidden("only admins change the room password")
            }
            try db.execute(sql: "UPDATE rooms SET password_hash = ? WHERE id = ?", arguments: [hash, roomId])
        }
    }

    func deleteRoom(roomId: Int64, actorId: String, now: Milliseconds) async throws -> (attachmentIds: [String], deliveries: [InboxEntry]) {
        try await pool.write { db in
            guard RoomPolicy.canDeleteRoom(actor: try Self.requireRole(db, roomId: roomId, userId: actorId)) else {
                throw APIFailure.forbidden("only the owner deletes a room")
            }
            let deliveries = try Self.appendRoomEvent(
                db, roomId: roomId, change: .deleted, userId: actorId, actorId: actorId, role: nil, now: now)
            let attachmentIds = try String.fetchAll(db, sql: "SELECT id FROM attachments WHERE room_id = ?", arguments: [roomId])
            try db.execute(sql: "DELETE FROM rooms WHERE id = ?", arguments: [roomId])
            return (attachmentIds, deliveries)
        }
    }

    /// Stores a membership event for every device of every member, in the same
    /// transaction as the change: a client that was offline still learns who left before it sends.
    static func appendRoomEvent(
        _ db: Database, roomId: Int64, change: ServerFrame.MembershipChange, userId: String, actorId: String,
        role: RoomRole?, now: Milliseconds
    ) throws -> [InboxEntry] {
        guard let room = try Row.fetchOne(db, sql: "SELECT * FROM rooms WHERE id = ?", arguments: [roomId]).map(roomRecord) else {
            return []
        }
        let event = RoomEventRecord(room: room.code, change: change, userId: userId, actorUserId: actorId, role: role, at: now)
        let json = String(decoding: try JSONEncoder().encode(event), as: UTF8.self)
        let deviceKeys = try Int64.fetchAll(
            db,
            sql: """
                SELECT d.key FROM devices d WHERE d.user_id IN (SELECT user_id FROM memberships WHERE room_id = ?)
                ORDER BY d.key
                """,
            arguments: [roomId])
        let expiresAt = now + room.retentionSeconds * 1000
        var inbox = InboxAppender()
        let deliveries = try deviceKeys.map { deviceKey in
            let seq = try inbox.append(db, deviceKey: deviceKey, messageId: nil, payload: nil, event: json, expiresAt: expiresAt)
            return InboxEntry(deviceKey: deviceKey, seq: seq, content: .roomEvent(event))
        }
        try inbox.finish(db)
        return deliveries
    }
}

/// Hands out each device's next inbox sequence number within one transaction. A device's counter
/// is read once and written back once, in ``finish(_:)``, however many deliveries the transaction
/// adds: `UPDATE … RETURNING` per delivery made SQLite build and drop a temporary table every time
/// (a quarter of the writer's CPU at full load). A transaction that throws rolls the inserted rows
/// back with it, so an unfinished appender loses nothing.
struct InboxAppender {
    private var lastSequences: [Int64: Int64] = [:]

    mutating func append(
        _ db: Database, deviceKey: Int64, messageId: Int64?, payload: SealedPayload?, event: String?, expiresAt: Milliseconds
    ) throws -> Int64 {
        let seq: Int64
        if let last = lastSequences[deviceKey] {
            seq = last + 1
        } else {
            let read = try RawStatement(db, "SELECT last_seq FROM devices WHERE key = ?1")
            read.bind(deviceKey, at: 1)
            guard let last = try read.firstInt64() else { throw APIFailure(.notFound, .unknownDevice, "device not found") }
            seq = last + 1
        }
        let insert = try RawStatement(
            db,
            "INSERT INTO inbox (device_key, seq, message_id, key_id, payload, event, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")
        insert.bind(deviceKey, at: 1)
        insert.bind(seq, at: 2)
        insert.bind(messageId, at: 3)
        insert.bind(payload?.keyId, at: 4)
        insert.bind(payload?.bytes, at: 5)
        insert.bind(event, at: 6)
        insert.bind(expiresAt, at: 7)
        try insert.run()
        lastSequences[deviceKey] = seq
        return seq
    }

    /// Stores every counter this transaction advanced. Call it before the transaction commits.
    mutating func finish(_ db: Database) throws {
        let store = try RawStatement(db, "UPDATE devices SET last_seq = ?2 WHERE key = ?1")
        for (deviceKey, seq) in lastSequences {
            store.bind(deviceKey, at: 1)
            store.bind(seq, at: 2)
            try store.run()
        }
        lastSequences = [:]
    }
}
