import Foundation
import GRDB
import SecureChatAPI

extension SQLiteChatStore {
    func addDevice(_ device: DeviceRecord, oneTimePreKeys: [(id: UInt32, encoded: [UInt8])]) async throws -> DeviceRecord {
        try await pool.write { db in
            let existing = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM devices WHERE user_id = ?", arguments: [device.userId]) ?? 0
            guard existing < APILimits.devicesPerUser else {
                throw APIFailure(.conflict, .deviceLimit, "an account has at most \(APILimits.devicesPerUser) devices")
            }
            // Device ids are never reused within an account, so that a stale session cannot reach a new device.
            let highest = try Int64.fetchOne(
                db, sql: "SELECT MAX(device_id) FROM devices WHERE user_id = ?", arguments: [device.userId]) ?? 0
            let retired = try Int64.fetchOne(
                db, sql: "SELECT value FROM user_counters WHERE user_id = ? AND name = 'device_id'", arguments: [device.userId]) ?? 0
            let deviceId = max(highest, retired) + 1
            try db.execute(
                sql: """
                    INSERT INTO user_counters (user_id, name, value) VALUES (?, 'device_id', ?)
                    ON CONFLICT (user_id, name) DO UPDATE SET value = excluded.value
                    """,
                arguments: [device.userId, deviceId])
            try db.execute(
                sql: """
                    INSERT INTO devices (user_id, device_id, name, identity_key, signed_prekey, created_at)
                    VALUES (?, ?, ?, ?, ?, ?)
                    """,
                arguments: [device.userId, deviceId, device.name, Data(device.identityKey), Data(device.signedPreKey), device.createdAt])
            let key = db.lastInsertedRowID
            for preKey in oneTimePreKeys {
                try db.execute(
                    sql: "INSERT INTO one_time_prekeys (device_key, key_id, encoded) VALUES (?, ?, ?)",
                    arguments: [key, Int64(preKey.id), Data(preKey.encoded)])
            }
            var stored = device
            stored.key = key
            stored.deviceId = UInt32(deviceId)
            stored.oneTimePreKeyCount = oneTimePreKeys.count
            return stored
        }
    }

    private static let deviceColumns = """
        d.key, d.user_id, d.device_id, d.name, d.identity_key, d.signed_prekey, d.created_at, d.last_seq,
        (SELECT COUNT(*) FROM one_time_prekeys o WHERE o.device_key = d.key) AS prekey_count
        """

    static func deviceRecord(_ row: Row) -> DeviceRecord {
        DeviceRecord(
            key: row["key"], userId: row["user_id"], deviceId: UInt32(truncatingIfNeeded: row["device_id"] as Int64),
            name: row["name"], identityKey: (row["identity_key"] as Data).bytes,
            signedPreKey: (row["signed_prekey"] as Data).bytes, createdAt: row["created_at"],
            oneTimePreKeyCount: row["prekey_count"], lastSeq: row["last_seq"])
    }

    func devices(userId: String) async throws -> [DeviceRecord] {
        try await pool.read { db in
            try Row.fetchAll(
                db, sql: "SELECT \(Self.deviceColumns) FROM devices d WHERE d.user_id = ? ORDER BY d.device_id",
                arguments: [userId]
            ).map(Self.deviceRecord)
        }
    }

    func device(userId: String, deviceId: UInt32) async throws -> DeviceRecord? {
        try await pool.read { db in try Self.device(db, userId: userId, deviceId: deviceId) }
    }

    /// Every socket's hello reads this: one statement, prepared once per connection.
    static func device(_ db: Database, userId: String, deviceId: UInt32) throws -> DeviceRecord? {
        try Row.fetchOne(
            db.cachedStatement(sql: "SELECT \(deviceColumns) FROM devices d WHERE d.user_id = ? AND d.device_id = ?"),
            arguments: [userId, Int64(deviceId)]
        ).map(deviceRecord)
    }

    func deleteDevice(userId: String, deviceId: UInt32) async throws -> Bool {
        try await pool.write { db in
            try db.execute(sql: "DELETE FROM devices WHERE user_id = ? AND device_id = ?", arguments: [userId, Int64(deviceId)])
            return db.changesCount > 0
        }
    }

    func replaceSignedPreKey(userId: String, deviceId: UInt32, encoded: [UInt8]) async throws -> Bool {
        try await pool.write { db in
            try db.execute(
                sql: "UPDATE devices SET signed_prekey = ? WHERE user_id = ? AND device_id = ?",
                arguments: [Data(encoded), userId, Int64(deviceId)])
            return db.changesCount > 0
        }
    }

    func addOneTimePreKeys(userId: String, deviceId: UInt32, keys: [(id: UInt32, encoded: [UInt8])]) async throws -> Int {
        try await pool.write { db in
            guard let key = try Int64.fetchOne(
                db, sql: "SELECT key FROM devices WHERE user_id = ? AND device_id = ?", arguments: [userId, Int64(deviceId)])
            else { throw APIFailure.notFound("device") }
            let held = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM one_time_prekeys WHERE device_key = ?", arguments: [key]) ?? 0
            guard held + keys.count <= APILimits.oneTimePreKeysPerDevice else {
                throw APIFailure(
                    .unprocessableContent, .tooManyPreKeys,
                    "the server keeps at most \(APILimits.oneTimePreKeysPerDevice) one-time prekeys per device (\(held) held)")
            }
            for preKey in keys {
                try db.execute(
                    sql: "INSERT INTO one_time_prekeys (device_key, key_id, encoded) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                    arguments: [key, Int64(preKey.id), Data(preKey.encoded)])
                guard db.changesCount == 1 else {
                    throw APIFailure(.conflict, .duplicatePreKey, "one-time prekey \(preKey.id) is already uploaded")
                }
            }
            return held + keys.count
        }
    }

    func claimBundles(userId: String) async throws -> [ClaimedBundle] {
        // One write transaction: SQLite serialises writers, so two claims never see the same key.
        try await pool.write { db in
            let devices = try Row.fetchAll(
                db, sql: "SELECT \(Self.deviceColumns) FROM devices d WHERE d.user_id = ? ORDER BY d.device_id",
                arguments: [userId]
            ).map(Self.deviceRecord)
            return try devices.map { device in
                let claimed = try Data.fetchOne(
                    db,
                    sql: """
                        DELETE FROM one_time_prekeys WHERE device_key = ? AND key_id =
                            (SELECT MIN(key_id) FROM one_time_prekeys WHERE device_key = ?)
                        RETURNING encoded
                        """,
                    arguments: [device.key, device.key])
                let remaining = device.oneTimePreKeyCount - (claimed == nil ? 0 : 1)
                return ClaimedBundle(device: device, oneTimePreKey: claimed?.bytes, remaining: remaining)
            }
        }
    }
}
