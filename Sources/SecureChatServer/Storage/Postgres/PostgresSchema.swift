import Logging
import PostgresNIO

/// The PostgreSQL schema as named, versioned migrations, mirroring SQLiteSchema table by table.
/// Applied under an advisory lock, so several instances starting together migrate once.
enum PostgresSchema {
    static let migrations: [(name: String, sql: [String])] = [
        ("v1: accounts, devices, rooms, messages, attachments", version1),
        ("v2: only membership events expire from the inbox on their own", version2),
        ("v3: audit log", version3),
    ]

    /// Any fixed number: with the schema's name it names the lock that serialises migrations across
    /// instances. Deployments in other schemas of the same database do not wait for each other.
    private static let migrationLockKey: Int32 = 0x5EC0_C4A7

    static func migrate(_ client: PostgresClient, logger: Logger) async throws {
        try await client.withTransaction(logger: logger) { connection in
            try await connection.query("SELECT pg_advisory_xact_lock(\(migrationLockKey), hashtext(current_schema()))", logger: logger)
            try await connection.query(
                "CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
                logger: logger)
            var applied = Set<String>()
            for try await name in try await connection.query("SELECT name FROM schema_migrations", logger: logger).decode(String.self) {
                applied.insert(name)
            }
            for migration in migrations where !applied.contains(migration.name) {
                for statement in migration.sql {
                    try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                }
                try await connection.query("INSERT INTO schema_migrations (name) VALUES (\(migration.name))", logger: logger)
                logger.info("database migrated", metadata: ["migration": "\(migration.name)"])
            }
        }
    }

    private static let version1 = [
        """
        CREATE TABLE users (
            id TEXT PRIMARY KEY,
            username TEXT NOT NULL UNIQUE,
            password_hash TEXT NOT NULL,
            display_name TEXT NOT NULL DEFAULT '',
            status_text TEXT NOT NULL DEFAULT '',
            avatar_attachment_id TEXT,
            created_at BIGINT NOT NULL
        )
        """,
        """
        CREATE TABLE sessions (
            id TEXT PRIMARY KEY,
            user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            token_hash BYTEA NOT NULL UNIQUE,
            created_at BIGINT NOT NULL,
            expires_at BIGINT NOT NULL,
            revoked_at BIGINT
        )
        """,
        "CREATE INDEX sessions_user ON sessions(user_id)",
        """
        CREATE TABLE used_refresh_tokens (
            token_hash BYTEA PRIMARY KEY,
            session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE
        )
        """,
        """
        CREATE TABLE user_counters (
            user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            value BIGINT NOT NULL,
            PRIMARY KEY (user_id, name)
        )
        """,
        """
        CREATE TABLE devices (
            key BIGSERIAL PRIMARY KEY,
            user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            device_id BIGINT NOT NULL,
            name TEXT NOT NULL,
            identity_key BYTEA NOT NULL,
            signed_prekey BYTEA NOT NULL,
            last_seq BIGINT NOT NULL DEFAULT 0,
            created_at BIGINT NOT NULL,
            UNIQUE (user_id, device_id)
        )
        """,
        """
        CREATE TABLE one_time_prekeys (
            device_key BIGINT NOT NULL REFERENCES devices(key) ON DELETE CASCADE,
            key_id BIGINT NOT NULL,
            encoded BYTEA NOT NULL,
            PRIMARY KEY (device_key, key_id)
        )
        """,
        """
        CREATE TABLE rooms (
            id BIGSERIAL PRIMARY KEY,
            code TEXT NOT NULL UNIQUE,
            name TEXT NOT NULL,
            password_hash TEXT,
            retention_seconds BIGINT NOT NULL,
            created_at BIGINT NOT NULL
        )
        """,
        """
        CREATE TABLE memberships (
            room_id BIGINT NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
            user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            role TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
            joined_at BIGINT NOT NULL,
            history_after_message_id BIGINT NOT NULL,
            PRIMARY KEY (room_id, user_id)
        )
        """,
        "CREATE INDEX memberships_user ON memberships(user_id)",
        """
        CREATE TABLE bans (
            room_id BIGINT NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
            user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            banned_by TEXT NOT NULL,
            banned_at BIGINT NOT NULL,
            PRIMARY KEY (room_id, user_id)
        )
        """,
        """
        CREATE TABLE messages (
            id BIGSERIAL PRIMARY KEY,
            sender_user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            sender_device_id BIGINT NOT NULL,
            client_message_id TEXT NOT NULL,
            room_id BIGINT REFERENCES rooms(id) ON DELETE CASCADE,
            key_id TEXT,
            payload BYTEA,
            sent_at BIGINT NOT NULL,
            expires_at BIGINT NOT NULL,
            UNIQUE (sender_user_id, sender_device_id, client_message_id)
        )
        """,
        "CREATE INDEX messages_room ON messages(room_id, id) WHERE room_id IS NOT NULL",
        "CREATE INDEX messages_expiry ON messages(expires_at)",
        """
        CREATE TABLE inbox (
            device_key BIGINT NOT NULL REFERENCES devices(key) ON DELETE CASCADE,
            seq BIGINT NOT NULL,
            message_id BIGINT REFERENCES messages(id) ON DELETE CASCADE,
            key_id TEXT,
            payload BYTEA,
            event TEXT,
            expires_at BIGINT NOT NULL,
            PRIMARY KEY (device_key, seq)
        )
        """,
        "CREATE INDEX inbox_message ON inbox(message_id)",
        "CREATE INDEX inbox_expiry ON inbox(expires_at)",
        """
        CREATE TABLE attachments (
            id TEXT PRIMARY KEY,
            uploader_user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            room_id BIGINT REFERENCES rooms(id) ON DELETE CASCADE,
            size BIGINT NOT NULL,
            created_at BIGINT NOT NULL,
            expires_at BIGINT NOT NULL
        )
        """,
        "CREATE INDEX attachments_uploader ON attachments(uploader_user_id)",
        "CREATE INDEX attachments_expiry ON attachments(expires_at)",
        """
        CREATE TABLE attachment_grants (
            attachment_id TEXT NOT NULL REFERENCES attachments(id) ON DELETE CASCADE,
            user_id TEXT NOT NULL,
            PRIMARY KEY (attachment_id, user_id)
        )
        """,
        """
        CREATE TABLE message_attachments (
            message_id BIGINT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
            attachment_id TEXT NOT NULL,
            PRIMARY KEY (message_id, attachment_id)
        )
        """,
        "CREATE INDEX message_attachments_attachment ON message_attachments(attachment_id)",
    ]

    /// As in SQLiteSchema: a message's deliveries go with the message, by the cascade.
    private static let version2 = [
        "DROP INDEX inbox_expiry",
        "CREATE INDEX inbox_event_expiry ON inbox(expires_at) WHERE message_id IS NULL",
    ]

    /// As in SQLiteSchema.
    private static let version3 = [
        """
        CREATE TABLE audit_events (
            id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            at BIGINT NOT NULL,
            kind TEXT NOT NULL,
            user_id TEXT,
            actor_user_id TEXT,
            room_id BIGINT,
            client_address TEXT NOT NULL,
            detail TEXT NOT NULL DEFAULT ''
        )
        """,
        "CREATE INDEX audit_events_at ON audit_events(at)",
        "CREATE INDEX audit_events_user ON audit_events(user_id, at)",
    ]
}
