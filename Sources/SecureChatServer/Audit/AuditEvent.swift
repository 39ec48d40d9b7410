public import Foundation
public import Logging
import SecureChatAPI

/// A security event, kept for the operator (`securechat-server audit`) for
/// ``ServerConfiguration/auditRetention``. It names accounts by id and never holds a password, a
/// token, a room code or content: an unknown username tried at login is not kept either, as people
/// sometimes type their password there.
struct AuditEvent: Sendable, Equatable, Codable {
    enum Kind: String, Sendable, Codable, CaseIterable {
        case accountCreated = "account_created"
        case login
        case loginFailed = "login_failed"
        case logout
        case refreshTokenReused = "refresh_token_reused"
        case passwordChanged = "password_changed"
        case passwordCheckFailed = "password_check_failed"
        case accountDeleted = "account_deleted"
        case deviceAdded = "device_added"
        case deviceRemoved = "device_removed"
        case signedPreKeyReplaced = "signed_prekey_replaced"
        case roomPasswordChanged = "room_password_changed"
        case wrongRoomPassword = "wrong_room_password"
        case memberKicked = "member_kicked"
        case memberBanned = "member_banned"
        case memberUnbanned = "member_unbanned"
        case roleChanged = "role_changed"
        case roomDeleted = "room_deleted"
    }

    /// Assigned by the store; 0 before.
    var id: Int64 = 0
    var at: Milliseconds
    var kind: Kind
    /// The account the event is about.
    var userId: String?
    /// Who did it, when not that account (an admin kicking a member).
    var actorUserId: String?
    /// The room's internal id (not its code, which is a secret that lets people in).
    var roomId: Int64?
    var clientAddress: String
    /// A few words more: `device 2`, `role admin`, `unknown account`.
    var detail: String = ""
}

/// What `securechat-server audit` asks for; every filter is optional.
struct AuditQuery: Sendable {
    var userId: String?
    var kind: AuditEvent.Kind?
    var since: Milliseconds = 0
    var until: Milliseconds = .max
    var limit = 1000
}

/// Records audit events without ever failing the request that caused them: the event happened
/// either way, and a database that cannot take it is logged loudly instead.
struct AuditLog: Sendable {
    let store: any ChatStore
    let logger: Logger

    func record(_ event: AuditEvent) async {
        do {
            try await store.recordAudit(event)
        } catch {
            logger.error("an audit event could not be stored", metadata: ["kind": "\(event.kind.rawValue)", "error": "\(error)"])
        }
    }
}

/// `securechat-server audit`: the operator reads the audit log straight from the database (no
/// HTTP route exposes it: whoever can run this already holds the database).
public enum AuditTrail {
    public static var kinds: [String] { AuditEvent.Kind.allCases.map(\.rawValue) }

    /// The events matching the filters, newest first, as text lines or JSON lines.
    public static func lines(
        configuration: ServerConfiguration, userId: String?, kind: String?, since: Date?, until: Date?, limit: Int, json: Bool,
        logger: Logger
    ) async throws -> [String] {
        let store = try await openStore(configuration: configuration, logger: logger)
        let events: [AuditEvent]
        do {
            events = try await store.auditEvents(
                AuditQuery(
                    userId: userId, kind: kind.flatMap(AuditEvent.Kind.init(rawValue:)),
                    since: since.map { Milliseconds($0.timeIntervalSince1970 * 1000) } ?? 0,
                    until: until.map { Milliseconds($0.timeIntervalSince1970 * 1000) } ?? .max, limit: limit))
        } catch {
            await store.shutdown()
            throw error
        }
        await store.shutdown()
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try events.map { event in
            if json { return String(decoding: try encoder.encode(event), as: UTF8.self) }
            var line = "\(Date(milliseconds: event.at).formatted(.iso8601)) \(event.kind.rawValue)"
            if let user = event.userId { line += " user=\(user)" }
            if let actor = event.actorUserId { line += " by=\(actor)" }
            if let room = event.roomId { line += " room=\(room)" }
            line += " client=\(event.clientAddress)"
            if !event.detail.isEmpty { line += " (\(event.detail))" }
            return line
        }
    }
}
