import GRDB
import SecureChatAPI

extension SQLiteChatStore {
    func recordAudit(_ event: AuditEvent) async throws {
        try await pool.write { db in
            try db.execute(
                sql: """
                    INSERT INTO audit_events (at, kind, user_id, actor_user_id, room_id, client_address, detail)
                    VALUES (?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [event.at, event.kind.rawValue, event.userId, event.actorUserId, event.roomId, event.clientAddress, event.detail])
        }
    }

    func auditEvents(_ query: AuditQuery) async throws -> [AuditEvent] {
        try await pool.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT id, at, kind, user_id, actor_user_id, room_id, client_address, detail FROM audit_events
                    WHERE (? IS NULL OR user_id = ? OR actor_user_id = ?) AND (? IS NULL OR kind = ?) AND at >= ? AND at <= ?
                    ORDER BY at DESC, id DESC LIMIT ?
                    """,
                arguments: [
                    query.userId, query.userId, query.userId, query.kind?.rawValue, query.kind?.rawValue, query.since, query.until, query.limit,
                ]
            ).map { row in
                AuditEvent(
                    id: row["id"], at: row["at"], kind: AuditEvent.Kind(rawValue: row["kind"]) ?? .login, userId: row["user_id"],
                    actorUserId: row["actor_user_id"], roomId: row["room_id"], clientAddress: row["client_address"], detail: row["detail"])
            }
        }
    }

    func deleteAudit(before: Milliseconds) async throws -> Int {
        try await pool.write { db in
            try db.execute(sql: "DELETE FROM audit_events WHERE at < ?", arguments: [before])
            return db.changesCount
        }
    }
}
