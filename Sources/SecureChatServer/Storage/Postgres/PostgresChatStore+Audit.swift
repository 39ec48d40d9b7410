import PostgresNIO
import SecureChatAPI

extension PostgresChatStore {
    func recordAudit(_ event: AuditEvent) async throws {
        _ = try await rows(
            """
            INSERT INTO audit_events (at, kind, user_id, actor_user_id, room_id, client_address, detail)
            VALUES (\(event.at), \(event.kind.rawValue), \(event.userId), \(event.actorUserId), \(event.roomId), \(event.clientAddress), \(event.detail))
            """)
    }

    func auditEvents(_ query: AuditQuery) async throws -> [AuditEvent] {
        let kind = query.kind?.rawValue
        return try await rows(
            """
            SELECT id, at, kind, user_id, actor_user_id, room_id, client_address, detail FROM audit_events
            WHERE (\(query.userId)::text IS NULL OR user_id = \(query.userId) OR actor_user_id = \(query.userId))
            AND (\(kind)::text IS NULL OR kind = \(kind)) AND at >= \(query.since) AND at <= \(query.until)
            ORDER BY at DESC, id DESC LIMIT \(Int64(query.limit))
            """
        ).map { row in
            let (id, at, kind, userId, actorUserId, roomId, clientAddress, detail) = try row.decode(
                (Int64, Int64, String, String?, String?, Int64?, String, String).self)
            return AuditEvent(
                id: id, at: at, kind: AuditEvent.Kind(rawValue: kind) ?? .login, userId: userId, actorUserId: actorUserId, roomId: roomId,
                clientAddress: clientAddress, detail: detail)
        }
    }

    func deleteAudit(before: Milliseconds) async throws -> Int {
        let deleted = try await rows("WITH gone AS (DELETE FROM audit_events WHERE at < \(before) RETURNING 1) SELECT COUNT(*) FROM gone")
        return Int(try deleted.first?.decode(Int64.self) ?? 0)
    }
}
