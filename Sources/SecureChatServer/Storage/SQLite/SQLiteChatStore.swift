import Foundation
import GRDB
import NIOPosix
import SecureChatAPI

/// The embedded store: one SQLite file in WAL mode with `synchronous = FULL`, so that a committed
/// transaction survives a power cut, not only a crash of the process.
final class SQLiteChatStore: ChatStore {
    let pool: DatabasePool
    /// A connection of its own for WAL checkpoints, so that copying the log into the database
    /// (and its fsync) happens beside the writer instead of inside a commit.
    private let checkpointer: DatabaseQueue
    /// Threads of its own for `quickRead`, one per reader connection: NIO's shared blocking pool
    /// also runs bcrypt, and a flood of logins must not hold up every socket's reads.
    private let readThreads = NIOThreadPool(numberOfThreads: 4)

    /// Opens (creating if needed) the database at `path` and migrates it to the latest schema.
    init(path: String) throws {
        // Owner-only from the start: SQLite gives its -wal and -shm files the database's mode.
        if !FileManager.default.fileExists(atPath: path) {
            _ = FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o600])
        }
        var configuration = Configuration()
        configuration.foreignKeysEnabled = true
        configuration.busyMode = .timeout(10)
        // Readers never see half a transaction; the writer is one connection anyway.
        configuration.maximumReaderCount = 4
        pool = try DatabasePool(path: path, configuration: configuration)
        // GRDB sets synchronous = NORMAL when it enables WAL; durability needs FULL, set after opening
        // and checked, since a silent NORMAL would lose acknowledged messages on power loss.
        try pool.writeWithoutTransaction { db in
            try db.execute(sql: "PRAGMA synchronous = FULL")
            let level = try Int.fetchOne(db, sql: "PRAGMA synchronous")
            guard level == 2 else { throw StoreSetupError.synchronousNotFull(level ?? -1) }
            // The writer checkpoints only as a backstop (40 MiB of log); `maintain()` does it
            // every 250 ms. Measured: 9,400 → 10,400 messages/s with the writer never checkpointing.
            try db.execute(sql: "PRAGMA wal_autocheckpoint = 10000")
        }
        try SQLiteSchema.makeMigrator().migrate(pool)
        var checkpointConfiguration = Configuration()
        checkpointConfiguration.busyMode = .timeout(10)
        checkpointer = try DatabaseQueue(path: path, configuration: checkpointConfiguration)
        readThreads.start()
    }

    func maintain() async throws {
        // PASSIVE never waits for readers or the writer: it copies what it can and returns.
        try await checkpointer.writeWithoutTransaction { db in
            _ = try db.checkpoint(.passive)
        }
    }

    func shutdown() async {
        // `DatabasePool.close()` blocks its thread until every reader is back in the pool, and an
        // async read returns its reader only when its task resumes, on an event loop (Swift
        // concurrency runs on the event loops). Closing on an event loop deadlocked a shutdown
        // whenever a read was in flight, so the pool closes on a thread of its own.
        let pool = pool
        let checkpointer = checkpointer
        await withCheckedContinuation { (finished: CheckedContinuation<Void, Never>) in
            Thread.detachNewThread {
                try? checkpointer.close()
                try? pool.close()
                finished.resume()
            }
        }
        try? await readThreads.shutdownGracefully()
    }

    func ping() async throws {
        _ = try await pool.read { db in try Int.fetchOne(db, sql: "SELECT 1") }
    }

    // MARK: Accounts

    func createUser(_ user: UserRecord) async throws {
        try await pool.write { db in
            if try Bool.fetchOne(db, sql: "SELECT 1 FROM users WHERE username = ?", arguments: [user.username]) != nil {
                throw APIFailure(.conflict, .usernameTaken, "this username is taken")
            }
            try db.execute(
                sql: """
                    INSERT INTO users (id, username, password_hash, display_name, status_text, created_at)
                    VALUES (?, ?, ?, ?, ?, ?)
                    """,
                arguments: [user.id, user.username, user.passwordHash, user.displayName, user.statusText, user.createdAt])
        }
    }

    func user(id: String) async throws -> UserRecord? {
        try await pool.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM users WHERE id = ?", arguments: [id]).map(Self.userRecord)
        }
    }

    func user(username: String) async throws -> UserRecord? {
        try await pool.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM users WHERE username = ?", arguments: [username]).map(Self.userRecord)
        }
    }

    private static func userRecord(_ row: Row) -> UserRecord {
        UserRecord(
            id: row["id"], username: row["username"], passwordHash: row["password_hash"],
            displayName: row["display_name"], statusText: row["status_text"],
            avatarAttachmentId: row["avatar_attachment_id"], createdAt: row["created_at"])
    }

    func updatePasswordHash(userId: String, hash: String) async throws {
        try await pool.write { db in
            try db.execute(sql: "UPDATE users SET password_hash = ? WHERE id = ?", arguments: [hash, userId])
        }
    }

    func updateProfile(userId: String, displayName: String, statusText: String, avatarAttachmentId: String?) async throws {
        try await pool.write { db in
            try db.execute(
                sql: "UPDATE users SET display_name = ?, status_text = ?, avatar_attachment_id = ? WHERE id = ?",
                arguments: [displayName, statusText, avatarAttachmentId, userId])
        }
    }

    func deleteUser(id: String, now: Milliseconds) async throws -> (attachmentIds: [String], deliveries: [InboxEntry]) {
        try await pool.write { db in
            var deliveries: [InboxEntry] = []
            let roomIds = try Int64.fetchAll(db, sql: "SELECT room_id FROM memberships WHERE user_id = ?", arguments: [id])
            for roomId in roomIds {
                deliveries += try Self.removeMember(db, roomId: roomId, userId: id, actorId: id, change: .left, ban: false, now: now)
            }
            let attachmentIds = try String.fetchAll(
                db, sql: "SELECT id FROM attachments WHERE uploader_user_id = ?", arguments: [id])
            try db.execute(sql: "DELETE FROM users WHERE id = ?", arguments: [id])
            return (attachmentIds, deliveries)
        }
    }

    func shareARoom(_ userA: String, _ userB: String) async throws -> Bool {
        try await pool.read { db in
            try Bool.fetchOne(
                db,
                sql: """
                    SELECT 1 FROM memberships a JOIN memberships b ON a.room_id = b.room_id
                    WHERE a.user_id = ? AND b.user_id = ? LIMIT 1
                    """,
                arguments: [userA, userB]) != nil
        }
    }

    // MARK: Sessions

    func createSession(id: String, userId: String, tokenHash: [UInt8], now: Milliseconds, expiresAt: Milliseconds) async throws {
        try await pool.write { db in
            try db.execute(
                sql: "INSERT INTO sessions (id, user_id, token_hash, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
                arguments: [id, userId, Data(tokenHash), now, expiresAt])
        }
    }

    func rotateRefreshToken(oldHash: [UInt8], newHash: [UInt8], now: Milliseconds, newExpiresAt: Milliseconds) async throws
        -> RefreshOutcome
    {
        try await pool.write { db in
            if let row = try Row.fetchOne(
                db, sql: "SELECT id, user_id, expires_at, revoked_at FROM sessions WHERE token_hash = ?",
                arguments: [Data(oldHash)])
            {
                let sessionId: String = row["id"]
                if (row["revoked_at"] as Int64?) != nil { return .unknown }
                let expiresAt: Int64 = row["expires_at"]
                if expiresAt <= now { return .expired }
                try db.execute(
                    sql: "INSERT INTO used_refresh_tokens (token_hash, session_id) VALUES (?, ?)",
                    arguments: [Data(oldHash), sessionId])
                try db.execute(
                    sql: "UPDATE sessions SET token_hash = ?, expires_at = ? WHERE id = ?",
                    arguments: [Data(newHash), newExpiresAt, sessionId])
                return .rotated(SessionRecord(id: sessionId, userId: row["user_id"], expiresAt: newExpiresAt))
            }
            if let sessionId = try String.fetchOne(
                db, sql: "SELECT session_id FROM used_refresh_tokens WHERE token_hash = ?", arguments: [Data(oldHash)])
            {
                try db.execute(
                    sql: "UPDATE sessions SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", arguments: [now, sessionId])
                return .reused(sessionId: sessionId)
            }
            return .unknown
        }
    }

    func revokeSession(id: String, now: Milliseconds) async throws {
        try await pool.write { db in
            try db.execute(sql: "UPDATE sessions SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", arguments: [now, id])
        }
    }

    func revokeSessions(userId: String, except keptSessionId: String?, now: Milliseconds) async throws {
        try await pool.write { db in
            try db.execute(
                sql: "UPDATE sessions SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL AND id IS NOT ?",
                arguments: [now, userId, keptSessionId])
        }
    }

    /// A short read for the socket and authentication paths, run with GRDB's synchronous API on
    /// the store's read threads: one hop there and one back, where GRDB's async read hops through
    /// a semaphore queue, a barrier queue and the reader's queue before resuming. The reader goes
    /// back to the pool on that thread, never waiting for an event loop.
    ///
    /// No transaction: `body` runs one statement, which SQLite reads from one snapshot anyway, or
    /// statements that need no common snapshot. GRDB's BEGIN and COMMIT, prepared anew every time,
    /// were a tenth of an authentication's CPU.
    func quickRead<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        let pool = pool
        return try await readThreads.runIfActive { try pool.unsafeRead(body) }
    }

    /// Both checks in one read: each GRDB read is several hops between threads, which cost more
    /// than the statements (a third of an authentication's CPU was reads). The two need no common
    /// snapshot: a session revoked a moment later is caught by the sweep that closes its sockets.
    func socketDevice(sessionId: String, userId: String, deviceId: UInt32, now: Milliseconds) async throws -> SocketDevice {
        try await quickRead { db in
            guard try Self.isSessionActive(db, id: sessionId, now: now) else { return .sessionEnded }
            return try Self.device(db, userId: userId, deviceId: deviceId).map(SocketDevice.device) ?? .unknownDevice
        }
    }

    func isSessionActive(id: String, now: Milliseconds) async throws -> Bool {
        try await quickRead { db in try Self.isSessionActive(db, id: id, now: now) }
    }

    /// Every authenticated request and socket reads this: prepared once per connection.
    private static func isSessionActive(_ db: Database, id: String, now: Milliseconds) throws -> Bool {
        let session = try RawStatement(db, "SELECT 1 FROM sessions WHERE id = ?1 AND revoked_at IS NULL AND expires_at > ?2")
        session.bind(id, at: 1)
        session.bind(now, at: 2)
        return try session.firstInt64() != nil
    }
}

enum StoreSetupError: Error, CustomStringConvertible {
    case synchronousNotFull(Int)
    case unsupportedDatabaseURL(String)

    var description: String {
        switch self {
        case .synchronousNotFull(let level): "SQLite refused PRAGMA synchronous = FULL (level \(level))"
        case .unsupportedDatabaseURL(let scheme): "unsupported database URL scheme \"\(scheme)\" (use postgres://)"
        }
    }
}

extension Data {
    var bytes: [UInt8] { [UInt8](self) }
}
