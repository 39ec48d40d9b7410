import PostgresNIO

/// A statement on a hot path (every message, every socket), run as a named prepared statement:
/// PostgreSQL parses and plans it once per connection rather than once per call. Measured with
/// `pg_stat_statements`, planning was most of PostgreSQL's time in these statements (a socket's
/// inbox read: 103 µs planning, 3 µs executing).
///
/// Each conforming type writes its statement once, with interpolated values as everywhere else in
/// the store; its `sql` is that statement's text, taken from an instance with placeholder values.
/// Nothing in the text may depend on the values (no interpolated SQL that varies), so that the
/// text of every instance is the text that was prepared.
///
/// A prepared statement soon runs on a generic plan, made once from the statistics of the moment,
/// and kept until PostgreSQL analyses the table again. Made on a new database, such a plan
/// joined `messages` and `inbox` to the batch's arrays by hashing the whole table, and kept doing
/// so as the tables grew: in a 10-second benchmark, batches went from 2 to 30 ms. So every
/// statement here reaches `messages` and `inbox` through an index whatever the statistics say: a
/// lateral lookup per array element (`LIMIT 1`, `OFFSET 0` keep PostgreSQL from flattening it
/// into a join it may plan otherwise), or a condition on the index's leading column
/// (`= ANY(keys)`). The plans are checked on empty tables in `PreparedQueryTests`.
protocol PreparedQuery: PostgresPreparedStatement where Row == PostgresRow {
    var query: PostgresQuery { get }
}

extension PreparedQuery {
    func makeBindings() -> PostgresBindings { query.binds }
    func decodeRow(_ row: PostgresRow) -> PostgresRow { row }
}

extension PostgresConnection {
    /// All the rows of a prepared statement (read to the end: an error raised while the statement
    /// runs arrives with them).
    ///
    /// On any error the connection is closed, and the pool replaces it: PostgresNIO 1.33 remembers
    /// a statement whose preparation failed (cancelled, timed out behind a migration's lock, or
    /// already prepared by a pooler's earlier client) and fails it on that connection for good.
    /// Errors here are rare (the batch's statements refuse nothing by failing), so a new
    /// connection now and then is the cheaper certainty.
    func rows<Statement: PreparedQuery>(_ statement: Statement, logger: Logger) async throws -> [PostgresRow] {
        do {
            var rows: [PostgresRow] = []
            for try await row in try await execute(statement, logger: logger) { rows.append(row) }
            return rows
        } catch {
            close().whenFailure { _ in }
            throw error
        }
    }
}

/// A device's stored deliveries after a sequence number, in order: the page of the inbox first
/// (its primary key, in order), then each row's message by its id.
struct InboxPageQuery: PreparedQuery {
    static let sql = Self(deviceKey: 0, after: 0, limit: 0).query.sql
    let query: PostgresQuery

    init(deviceKey: Int64, after seq: Int64, limit: Int64) {
        query = """
            SELECT i.seq, i.event, i.key_id, i.payload, m.id, m.sender_user_id, m.sender_device_id, m.client_message_id,
                m.key_id, m.payload, m.sent_at, r.code
            FROM (
                SELECT seq, event, key_id, payload, message_id FROM inbox
                WHERE device_key = \(deviceKey) AND seq > \(seq) ORDER BY seq LIMIT \(limit)
            ) i
            LEFT JOIN LATERAL (
                SELECT id, sender_user_id, sender_device_id, client_message_id, key_id, payload, sent_at, room_id
                FROM messages WHERE id = i.message_id OFFSET 0
            ) m ON true
            LEFT JOIN rooms r ON r.id = m.room_id
            ORDER BY i.seq
            """
    }
}

/// The device a socket's `hello` names, if the session is live (the common case in one read).
struct SocketDeviceQuery: PreparedQuery {
    static let sql = Self(sessionId: "", userId: "", deviceId: 0, now: 0).query.sql
    let query: PostgresQuery

    init(sessionId: String, userId: String, deviceId: Int64, now: Int64) {
        query = """
            SELECT \(unescaped: PostgresChatStore.deviceColumns) FROM devices d
            WHERE d.user_id = \(userId) AND d.device_id = \(deviceId)
            AND EXISTS (SELECT 1 FROM sessions s WHERE s.id = \(sessionId) AND s.revoked_at IS NULL AND s.expires_at > \(now))
            """
    }
}

// MARK: The message batch (``PostgresChatStore/append(_:acknowledging:)``)

/// Sends of the batch already stored (retries), kind 0, and the keys of the devices pairwise
/// sends name, kind 1: one round trip for both.
struct BatchLookupQuery: PreparedQuery {
    static let sql = Self(userIds: [], deviceIds: [], clientMessageIds: [], recipientUserIds: [], recipientDeviceIds: []).query.sql
    let query: PostgresQuery

    init(userIds: [String], deviceIds: [Int64], clientMessageIds: [String], recipientUserIds: [String], recipientDeviceIds: [Int64]) {
        query = """
            SELECT 0, k.user_id, k.device_id, k.client_message_id, m.id, m.sent_at
            FROM unnest(\(userIds)::text[], \(deviceIds)::bigint[], \(clientMessageIds)::text[]) AS k(user_id, device_id, client_message_id)
            CROSS JOIN LATERAL (
                SELECT id, sent_at FROM messages
                WHERE sender_user_id = k.user_id AND sender_device_id = k.device_id AND client_message_id = k.client_message_id LIMIT 1
            ) m
            UNION ALL
            SELECT 1, a.user_id, a.device_id, '', d.key, 0
            FROM unnest(\(recipientUserIds)::text[], \(recipientDeviceIds)::bigint[]) AS a(user_id, device_id)
            CROSS JOIN LATERAL (SELECT key FROM devices WHERE user_id = a.user_id AND device_id = a.device_id LIMIT 1) d
            """
    }
}

/// A room a send names.
struct RoomByCodeQuery: PreparedQuery {
    static let sql = Self(code: "").query.sql
    let query: PostgresQuery

    init(code: String) {
        query = "SELECT \(unescaped: PostgresChatStore.roomColumns) FROM rooms WHERE code = \(code)"
    }
}

/// A room's members and their devices, in key order.
struct RoomDevicesQuery: PreparedQuery {
    static let sql = Self(roomId: 0).query.sql
    let query: PostgresQuery

    init(roomId: Int64) {
        query = """
            SELECT m.user_id, d.key FROM memberships m
            LEFT JOIN LATERAL (SELECT key FROM devices WHERE user_id = m.user_id OFFSET 0) d ON true
            WHERE m.room_id = \(roomId) ORDER BY d.key
            """
    }
}

/// The new messages, in one statement; ordinals come back with the ids, so each id lands on its
/// send. NULLIF turns the empty sentinels (the arrays cannot hold NULL here) back into NULL.
struct InsertMessagesQuery: PreparedQuery {
    static let sql = Self(
        userIds: [], deviceIds: [], clientMessageIds: [], roomIds: [], keyIds: [], payloads: [], sentAts: [], expiries: [],
        ordinals: []
    ).query.sql
    let query: PostgresQuery

    init(
        userIds: [String], deviceIds: [Int64], clientMessageIds: [String], roomIds: [Int64], keyIds: [String], payloads: [ByteBuffer],
        sentAts: [Int64], expiries: [Int64], ordinals: [Int64]
    ) {
        query = """
            WITH input AS (
                SELECT * FROM unnest(\(userIds)::text[], \(deviceIds)::bigint[], \(clientMessageIds)::text[], \(roomIds)::bigint[],
                    \(keyIds)::text[], \(payloads)::bytea[], \(sentAts)::bigint[], \(expiries)::bigint[], \(ordinals)::bigint[])
                    AS t(user_id, device_id, client_message_id, room_id, key_id, payload, sent_at, expires_at, ordinal)
                ORDER BY ordinal
            ), inserted AS (
                INSERT INTO messages (sender_user_id, sender_device_id, client_message_id, room_id, key_id, payload, sent_at, expires_at)
                SELECT user_id, device_id, client_message_id, NULLIF(room_id, 0), NULLIF(key_id, ''), NULLIF(payload, ''::bytea),
                    sent_at, expires_at
                FROM input ORDER BY ordinal
                ON CONFLICT (sender_user_id, sender_device_id, client_message_id) DO NOTHING
                RETURNING id, sender_user_id, sender_device_id, client_message_id
            )
            SELECT input.ordinal, inserted.id FROM inserted JOIN input
            ON input.user_id = inserted.sender_user_id AND input.device_id = inserted.sender_device_id
                AND input.client_message_id = inserted.client_message_id
            """
    }
}

/// Locks the recipients' device rows in key order, as membership events do, so that the two
/// never deadlock.
struct LockDevicesQuery: PreparedQuery {
    static let sql = Self(keys: []).query.sql
    let query: PostgresQuery

    init(keys: [Int64]) {
        query = "SELECT key FROM devices WHERE key = ANY(\(keys)::bigint[]) ORDER BY key FOR UPDATE"
    }
}

/// Reserves a contiguous range of sequence numbers per device.
struct ReserveSequenceNumbersQuery: PreparedQuery {
    static let sql = Self(keys: [], counts: []).query.sql
    let query: PostgresQuery

    init(keys: [Int64], counts: [Int64]) {
        query = """
            UPDATE devices d SET last_seq = d.last_seq + c.n
            FROM unnest(\(keys)::bigint[], \(counts)::bigint[]) AS c(key, n)
            WHERE d.key = c.key AND d.key = ANY(\(keys)::bigint[]) RETURNING d.key, d.last_seq, c.n
            """
    }
}

/// The batch's last statement: its inbox rows (room deliveries read the message's payload, hence
/// the empty sentinels), the rows devices acknowledged, and the other instances' wake-ups, which
/// PostgreSQL sends at commit. One round trip for the three. The parts see one snapshot: the
/// DELETE cannot reach rows the INSERT adds, and need not, since a device acknowledges only
/// deliveries committed before.
struct FinishBatchQuery: PreparedQuery {
    static let sql = Self(InboxWrites(), channel: "").query.sql
    let query: PostgresQuery

    struct InboxWrites {
        var keys: [Int64] = [], seqs: [Int64] = [], messageIds: [Int64] = []
        var keyIds: [String] = [], payloads: [ByteBuffer] = [], expiries: [Int64] = []
        var acknowledgedKeys: [Int64] = [], acknowledgedSeqs: [Int64] = []
        var wakeUps: [String] = []

        var isEmpty: Bool { keys.isEmpty && acknowledgedKeys.isEmpty && wakeUps.isEmpty }
    }

    init(_ writes: InboxWrites, channel: String) {
        query = """
            WITH inserted AS (
                INSERT INTO inbox (device_key, seq, message_id, key_id, payload, event, expires_at)
                SELECT device_key, seq, message_id, NULLIF(key_id, ''), NULLIF(payload, ''::bytea), NULL, expires_at
                FROM unnest(\(writes.keys)::bigint[], \(writes.seqs)::bigint[], \(writes.messageIds)::bigint[], \(writes.keyIds)::text[],
                    \(writes.payloads)::bytea[], \(writes.expiries)::bigint[]) AS t(device_key, seq, message_id, key_id, payload, expires_at)
            ), acknowledged AS (
                DELETE FROM inbox i USING unnest(\(writes.acknowledgedKeys)::bigint[], \(writes.acknowledgedSeqs)::bigint[]) AS a(device_key, seq)
                WHERE i.device_key = a.device_key AND i.seq <= a.seq AND i.device_key = ANY(\(writes.acknowledgedKeys)::bigint[])
            )
            SELECT pg_notify(\(channel), p) FROM unnest(\(writes.wakeUps)::text[]) AS p
            """
    }
}
