import GRDB

/// The SQLite schema as named, versioned migrations. A migration, once released, never changes:
/// a later change is a new migration. PostgresSchema mirrors these, table by table.
enum SQLiteSchema {
    static func makeMigrator() -> DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: accounts, devices, rooms, messages, attachments") { db in
            try db.execute(sql: version1)
        }
        migrator.registerMigration("v2: only membership events expire from the inbox on their own") { db in
            try db.execute(sql: version2)
        }
        migrator.registerMigration("v3: audit log") { db in
            try db.execute(sql: version3)
        }
        return migrator
    }

    private static let version1 = """
        CREATE TABLE users (
            id TEXT PRIMARY KEY,
            username TEXT NOT NULL UNIQUE,
            password_hash TEXT NOT NULL,
            display_name TEXT NOT NULL DEFAULT '',
            status_text TEXT NOT NULL DEFAULT '',
            avatar_attachment_id TEXT,
            created_at INTEGER NOT NULL
        );
        CREATE TABLE sessions (
            id TEXT PRIMARY KEY,
            user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            token_hash BLOB NOT NULL UNIQUE,
            created_at INTEGER NOT NULL,
            expires_at INTEGER NOT NULL,
            revoked_at INTEGER
        );
        CREATE INDEX sessions_user ON sessions(user_id);
        -- Refresh tokens already exchanged: seeing one again means it was stolen.
        CREATE TABLE used_refresh_tokens (
            token_hash BLOB PRIMARY KEY,
            session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE
        ) WITHOUT ROWID;
        -- Counters that must never go back, even when rows are deleted (device ids).
        CREATE TABLE user_counters (
            user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            value INTEGER NOT NULL,
            PRIMARY KEY (user_id, name)
        ) WITHOUT ROWID;
        CREATE TABLE devices (
            key INTEGER PRIMARY KEY AUTOINCREMENT,
            user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            device_id INTEGER NOT NULL,
            name TEXT NOT NULL,
            identity_key BLOB NOT NULL,
            signed_prekey BLOB NOT NULL,
            last_seq INTEGER NOT NULL DEFAULT 0,
            created_at INTEGER NOT NULL,
            UNIQUE (user_id, device_id)
        );
        CREATE TABLE one_time_prekeys (
            device_key INTEGER NOT NULL REFERENCES devices(key) ON DELETE CASCADE,
            key_id INTEGER NOT NULL,
            encoded BLOB NOT NULL,
            PRIMARY KEY (device_key, key_id)
        ) WITHOUT ROWID;
        CREATE TABLE rooms (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            code TEXT NOT NULL UNIQUE,
            name TEXT NOT NULL,
            password_hash TEXT,
            retention_seconds INTEGER NOT NULL,
            created_at INTEGER NOT NULL
        );
        CREATE TABLE memberships (
            room_id INTEGER NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
            user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            role TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
            joined_at INTEGER NOT NULL,
            history_after_message_id INTEGER NOT NULL,
            PRIMARY KEY (room_id, user_id)
        ) WITHOUT ROWID;
        CREATE INDEX memberships_user ON memberships(user_id);
        CREATE TABLE bans (
            room_id INTEGER NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
            user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            banned_by TEXT NOT NULL,
            banned_at INTEGER NOT NULL,
            PRIMARY KEY (room_id, user_id)
        ) WITHOUT ROWID;
        CREATE TABLE messages (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            sender_user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            sender_device_id INTEGER NOT NULL,
            client_message_id TEXT NOT NULL,
            room_id INTEGER REFERENCES rooms(id) ON DELETE CASCADE,
            key_id TEXT,
            payload BLOB,
            sent_at INTEGER NOT NULL,
            expires_at INTEGER NOT NULL,
            UNIQUE (sender_user_id, sender_device_id, client_message_id)
        );
        CREATE INDEX messages_room ON messages(room_id, id) WHERE room_id IS NOT NULL;
        CREATE INDEX messages_expiry ON messages(expires_at);
        -- One row per delivery to a device: a message (pairwise ones carry their own ciphertext)
        -- or a membership event. Deleted when the device acknowledges it.
        CREATE TABLE inbox (
            device_key INTEGER NOT NULL REFERENCES devices(key) ON DELETE CASCADE,
            seq INTEGER NOT NULL,
            message_id INTEGER REFERENCES messages(id) ON DELETE CASCADE,
            key_id TEXT,
            payload BLOB,
            event TEXT,
            expires_at INTEGER NOT NULL,
            PRIMARY KEY (device_key, seq)
        ) WITHOUT ROWID;
        CREATE INDEX inbox_message ON inbox(message_id);
        CREATE INDEX inbox_expiry ON inbox(expires_at);
        CREATE TABLE attachments (
            id TEXT PRIMARY KEY,
            uploader_user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            room_id INTEGER REFERENCES rooms(id) ON DELETE CASCADE,
            size INTEGER NOT NULL,
            created_at INTEGER NOT NULL,
            expires_at INTEGER NOT NULL
        );
        CREATE INDEX attachments_uploader ON attachments(uploader_user_id);
        CREATE INDEX attachments_expiry ON attachments(expires_at);
        CREATE TABLE attachment_grants (
            attachment_id TEXT NOT NULL REFERENCES attachments(id) ON DELETE CASCADE,
            user_id TEXT NOT NULL,
            PRIMARY KEY (attachment_id, user_id)
        ) WITHOUT ROWID;
        CREATE TABLE message_attachments (
            message_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
            attachment_id TEXT NOT NULL,
            PRIMARY KEY (message_id, attachment_id)
        ) WITHOUT ROWID;
        CREATE INDEX message_attachments_attachment ON message_attachments(attachment_id);
        """

    /// A delivery of a message expires with the message (the inbox row is deleted by the cascade
    /// from `messages`), so only membership events need their own expiry index. Every 1:1 message
    /// maintained the full index twice (insert, then delete on acknowledgement).
    private static let version2 = """
        DROP INDEX inbox_expiry;
        CREATE INDEX inbox_event_expiry ON inbox(expires_at) WHERE message_id IS NULL;
        """

    /// Security events for the operator (AuditEvent). No foreign keys: the record of an account
    /// outlives the account, until the audit retention.
    private static let version3 = """
        CREATE TABLE audit_events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            at INTEGER NOT NULL,
            kind TEXT NOT NULL,
            user_id TEXT,
            actor_user_id TEXT,
            room_id INTEGER,
            client_address TEXT NOT NULL,
            detail TEXT NOT NULL DEFAULT ''
        );
        CREATE INDEX audit_events_at ON audit_events(at);
        CREATE INDEX audit_events_user ON audit_events(user_id, at);
        """
}
