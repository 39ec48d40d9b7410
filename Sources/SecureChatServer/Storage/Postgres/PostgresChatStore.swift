import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOSSL
import PostgresNIO
import SecureChatAPI

/// The production store: PostgreSQL through PostgresNIO's connection pool. Row locks and
/// `SKIP LOCKED` take the place of SQLite's single writer, so several instances can share it.
final class PostgresChatStore: ChatStore {
    let client: PostgresClient
    let logger: Logger
    /// The LISTEN/NOTIFY channel of the instances sharing this database and schema (channels are
    /// per database, so each schema gets its own).
    let notificationChannel: String
    /// How long a message batch may wait before its connection is closed (see ``append(_:acknowledging:)``).
    let batchTimeLimit: TimeAmount
    private let announcer = NIOLockedValueBox<String?>(nil)
    private let runTask: Task<Void, Never>

    private init(client: PostgresClient, notificationChannel: String, batchTimeLimit: TimeAmount, logger: Logger) {
        self.client = client
        self.notificationChannel = notificationChannel
        self.batchTimeLimit = batchTimeLimit
        self.logger = logger
        runTask = Task { await client.run() }
    }

    /// Connects to `postgres://user:password@host:port/database[?sslmode=…&schema=…]` and migrates.
    ///
    /// `sslmode` is `disable`, `prefer` or `require`; without it loopback hosts use plain TCP and
    /// others require TLS. `schema` keeps SecureChat's tables in their own schema (created if
    /// missing) of a shared database.
    static func connect(url: String, batchTimeLimit: TimeAmount = .seconds(30), logger: Logger) async throws -> PostgresChatStore {
        guard let components = URLComponents(string: url), let scheme = components.scheme,
            ["postgres", "postgresql"].contains(scheme), let host = components.host, !host.isEmpty,
            let user = components.user
        else { throw StoreSetupError.unsupportedDatabaseURL(URLComponents(string: url)?.scheme ?? "?") }
        let database = String(components.path.drop { $0 == "/" })
        let loopback = ["localhost", "127.0.0.1", "::1"].contains(host)
        let mode = components.queryItems?.first { $0.name == "sslmode" }?.value ?? (loopback ? "disable" : "require")
        let tls: PostgresClient.Configuration.TLS
        switch mode {
        case "disable": tls = .disable
        case "prefer": tls = .prefer(.makeClientConfiguration())
        case "require": tls = .require(.makeClientConfiguration())
        default: throw StoreSetupError.unsupportedDatabaseURL("sslmode=\(mode)")
        }
        var configuration = PostgresClient.Configuration(
            host: host, port: components.port ?? 5432, username: user.removingPercentEncoding ?? user,
            password: components.password.map { $0.removingPercentEncoding ?? $0 }, database: database.isEmpty ? nil : database,
            tls: tls)
        configuration.options.maximumConnections = 20
        let schema = components.queryItems?.first { $0.name == "schema" }?.value
        if let schema {
            // 52 bytes: the instances' channel, "securechat_" + schema, must fit PostgreSQL's 63.
            guard !schema.isEmpty, schema.utf8.count <= 52,
                schema.utf8.allSatisfy({ ($0 >= 0x61 && $0 <= 0x7a) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x5f })
            else { throw StoreSetupError.unsupportedDatabaseURL("schema=\(schema) (use a-z, 0-9 and _, at most 52 characters)") }
            configuration.options.additionalStartupParameters = [("search_path", schema)]
        }
        let store = PostgresChatStore(
            client: PostgresClient(configuration: configuration, backgroundLogger: logger),
            notificationChannel: schema.map { "securechat_\($0)" } ?? "securechat", batchTimeLimit: batchTimeLimit, logger: logger)
        do {
            if let schema {
                // Validated above to [a-z0-9_]: safe to name in SQL, which cannot bind identifiers.
                try await store.client.query(PostgresQuery(unsafeSQL: "CREATE SCHEMA IF NOT EXISTS \(schema)"), logger: logger)
            }
            try await PostgresSchema.migrate(store.client, logger: logger)
        } catch {
            await store.shutdown()
            throw error
        }
        return store
    }

    /// From now on, message appends announce their deliveries to the other instances as `instanceId`.
    func announceDeliveries(as instanceId: String) {
        announcer.withLockedValue { $0 = instanceId }
    }

    var announcingInstance: String? { announcer.withLockedValue { $0 } }

    func shutdown() async {
        runTask.cancel()
        await runTask.value
    }

    func ping() async throws {
        try await execute("SELECT 1")
    }

    /// Runs `body` in a transaction, rethrowing the closure's own error rather than the wrapper.
    /// Every statement of the store goes through this or ``rows(_:on:)``, on a connection
    /// ``ClosedConnectionWatch`` watches.
    /// `timeLimit`: past it, the connection is closed and the transaction fails (see ``ClosedConnectionWatch``).
    func transaction<Result: Sendable>(
        timeLimit: TimeAmount? = nil, _ body: @escaping @Sendable (PostgresConnection) async throws -> Result
    ) async throws -> Result {
        let logger = logger
        do {
            return try await client.withWatchedConnection(logger: logger, timeLimit: timeLimit) { connection in
                try await connection.withTransaction(logger: logger) { connection in try await body(connection) }
            }
        } catch let error as PostgresTransactionError {
            throw error.closureError ?? error.commitError ?? error.beginError ?? error
        }
    }

    /// The rows of `query`, run on `connection` (inside a transaction) or on a pooled connection.
    func rows(_ query: PostgresQuery, on connection: PostgresConnection? = nil) async throws -> [PostgresRow] {
        let logger = logger
        if let connection { return try await connection.query(query, logger: logger).collect() }
        return try await client.withWatchedConnection(logger: logger) { connection in
            try await connection.query(query, logger: logger).collect()
        }
    }

    /// The rows of a prepared statement, run on `connection` (inside a transaction) or on a pooled connection.
    func rows<Statement: PreparedQuery>(_ statement: Statement, on connection: PostgresConnection? = nil) async throws -> [PostgresRow] {
        let logger = logger
        if let connection { return try await connection.rows(statement, logger: logger) }
        return try await client.withWatchedConnection(logger: logger) { connection in
            try await connection.rows(statement, logger: logger)
        }
    }

    /// Runs a statement whose rows are not needed (read all the same: an error raised while the
    /// statement runs arrives with them).
    func execute(_ query: PostgresQuery) async throws {
        _ = try await rows(query)
    }

    // MARK: Accounts

    static func userRecord(_ row: PostgresRow) throws -> UserRecord {
        let (id, username, hash, displayName, statusText, avatar, createdAt) = try row.decode(
            (String, String, String, String, String, String?, Int64).self)
        return UserRecord(
            id: id, username: username, passwordHash: hash, displayName: displayName, statusText: statusText,
            avatarAttachmentId: avatar, createdAt: createdAt)
    }

    private static let userColumns = "id, username, password_hash, display_name, status_text, avatar_attachment_id, created_at"

    func createUser(_ user: UserRecord) async throws {
        let inserted = try await rows(
            """
            INSERT INTO users (id, username, password_hash, display_name, status_text, created_at)
            VALUES (\(user.id), \(user.username), \(user.passwordHash), \(user.displayName), \(user.statusText), \(user.createdAt))
            ON CONFLICT (username) DO NOTHING RETURNING id
            """)
        guard !inserted.isEmpty else { throw APIFailure(.conflict, .usernameTaken, "this username is taken") }
    }

    func user(id: String) async throws -> UserRecord? {
        try await rows("SELECT \(unescaped: Self.userColumns) FROM users WHERE id = \(id)").first.map(Self.userRecord)
    }

    func user(username: String) async throws -> UserRecord? {
        try await rows("SELECT \(unescaped: Self.userColumns) FROM users WHERE username = \(username)").first.map(Self.userRecord)
    }

    func updatePasswordHash(userId: String, hash: String) async throws {
        try await execute("UPDATE users SET password_hash = \(hash) WHERE id = \(userId)")
    }

    func updateProfile(userId: String, displayName: String, statusText: String, avatarAttachmentId: String?) async throws {
        try await execute(
            """
            UPDATE users SET display_name = \(displayName), status_text = \(statusText), avatar_attachment_id = \(avatarAttachmentId)
            WHERE id = \(userId)
            """)
    }

    func deleteUser(id: String, now: Milliseconds) async throws -> (attachmentIds: [String], deliveries: [InboxEntry]) {
        try await transaction { connection in
            var deliveries: [InboxEntry] = []
            let roomIds = try await self.rows("SELECT room_id FROM memberships WHERE user_id = \(id) ORDER BY room_id", on: connection)
                .map { try $0.decode(Int64.self) }
            for roomId in roomIds {
                deliveries += try await self.removeMember(
                    connection, roomId: roomId, userId: id, actorId: id, change: .left, ban: false, now: now)
            }
            let attachmentIds = try await self.rows("SELECT id FROM attachments WHERE uploader_user_id = \(id)", on: connection)
                .map { try $0.decode(String.self) }
            try await connection.query("DELETE FROM users WHERE id = \(id)", logger: self.logger)
            return (attachmentIds, deliveries)
        }
    }

    func shareARoom(_ userA: String, _ userB: String) async throws -> Bool {
        try await !rows(
            """
            SELECT 1 FROM memberships a JOIN memberships b ON a.room_id = b.room_id
            WHERE a.user_id = \(userA) AND b.user_id = \(userB) LIMIT 1
            """
        ).isEmpty
    }

    // MARK: Sessions

    func createSession(id: String, userId: String, tokenHash: [UInt8], now: Milliseconds, expiresAt: Milliseconds) async throws {
        try await execute(
            """
            INSERT INTO sessions (id, user_id, token_hash, created_at, expires_at)
            VALUES (\(id), \(userId), \(Data(tokenHash)), \(now), \(expiresAt))
            """)
    }

    func rotateRefreshToken(oldHash: [UInt8], newHash: [UInt8], now: Milliseconds, newExpiresAt: Milliseconds) async throws
        -> RefreshOutcome
    {
        try await transaction { connection in
            let old = Data(oldHash)
            if let row = try await self.rows(
                "SELECT id, user_id, expires_at, revoked_at FROM sessions WHERE token_hash = \(old) FOR UPDATE", on: connection
            ).first {
                let (sessionId, userId, expiresAt, revokedAt) = try row.decode((String, String, Int64, Int64?).self)
                if revokedAt != nil { return .unknown }
                if expiresAt <= now { return .expired }
                try await connection.query(
                    "INSERT INTO used_refresh_tokens (token_hash, session_id) VALUES (\(old), \(sessionId))", logger: self.logger)
                try await connection.query(
                    "UPDATE sessions SET token_hash = \(Data(newHash)), expires_at = \(newExpiresAt) WHERE id = \(sessionId)",
                    logger: self.logger)
                return .rotated(SessionRecord(id: sessionId, userId: userId, expiresAt: newExpiresAt))
            }
            if let row = try await self.rows(
                "SELECT session_id FROM used_refresh_tokens WHERE token_hash = \(old)", on: connection
            ).first {
                let sessionId = try row.decode(String.self)
                try await connection.query(
                    "UPDATE sessions SET revoked_at = \(now) WHERE id = \(sessionId) AND revoked_at IS NULL", logger: self.logger)
                return .reused(sessionId: sessionId)
            }
            return .unknown
        }
    }

    func revokeSession(id: String, now: Milliseconds) async throws {
        try await execute("UPDATE sessions SET revoked_at = \(now) WHERE id = \(id) AND revoked_at IS NULL")
    }

    func revokeSessions(userId: String, except keptSessionId: String?, now: Milliseconds) async throws {
        try await execute(
            """
            UPDATE sessions SET revoked_at = \(now)
            WHERE user_id = \(userId) AND revoked_at IS NULL AND id IS DISTINCT FROM \(keptSessionId)
            """)
    }

    func isSessionActive(id: String, now: Milliseconds) async throws -> Bool {
        try await !rows("SELECT 1 FROM sessions WHERE id = \(id) AND revoked_at IS NULL AND expires_at > \(now)").isEmpty
    }
}
