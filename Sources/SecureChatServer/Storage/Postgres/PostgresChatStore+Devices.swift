import Foundation
import PostgresNIO
import SecureChatAPI

extension PostgresChatStore {
    static let deviceColumns = """
        d.key, d.user_id, d.device_id, d.name, d.identity_key, d.signed_prekey, d.created_at, d.last_seq,
        (SELECT COUNT(*) FROM one_time_prekeys o WHERE o.device_key = d.key) AS prekey_count
        """

    static func deviceRecord(_ row: PostgresRow) throws -> DeviceRecord {
        let (key, userId, deviceId, name, identityKey, signedPreKey, createdAt, lastSeq, count) = try row.decode(
            (Int64, String, Int64, String, Data, Data, Int64, Int64, Int64).self)
        return DeviceRecord(
            key: key, userId: userId, deviceId: UInt32(truncatingIfNeeded: deviceId), name: name, identityKey: Array(identityKey),
            signedPreKey: Array(signedPreKey), createdAt: createdAt, oneTimePreKeyCount: Int(count), lastSeq: lastSeq)
    }

    func addDevice(_ device: DeviceRecord, oneTimePreKeys: [(id: UInt32, encoded: [UInt8])]) async throws -> DeviceRecord {
        try await transaction { connection in
            // The account row serialises concurrent registrations of its devices.
            _ = try await self.rows("SELECT 1 FROM users WHERE id = \(device.userId) FOR UPDATE", on: connection)
            let existing = try await self.rows("SELECT COUNT(*) FROM devices WHERE user_id = \(device.userId)", on: connection)
                .first?.decode(Int64.self) ?? 0
            guard existing < APILimits.devicesPerUser else {
                throw APIFailure(.conflict, .deviceLimit, "an account has at most \(APILimits.devicesPerUser) devices")
            }
            let highest = try await self.rows(
                "SELECT COALESCE(MAX(device_id), 0) FROM devices WHERE user_id = \(device.userId)", on: connection
            ).first?.decode(Int64.self) ?? 0
            let retired = try await self.rows(
                "SELECT value FROM user_counters WHERE user_id = \(device.userId) AND name = 'device_id'", on: connection
            ).first?.decode(Int64.self) ?? 0
            let deviceId = max(highest, retired) + 1
            try await connection.query(
                """
                INSERT INTO user_counters (user_id, name, value) VALUES (\(device.userId), 'device_id', \(deviceId))
                ON CONFLICT (user_id, name) DO UPDATE SET value = excluded.value
                """, logger: self.logger)
            let key = try await self.rows(
                """
                INSERT INTO devices (user_id, device_id, name, identity_key, signed_prekey, created_at)
                VALUES (\(device.userId), \(deviceId), \(device.name), \(Data(device.identityKey)), \(Data(device.signedPreKey)),
                    \(device.createdAt))
                RETURNING key
                """, on: connection
            ).first?.decode(Int64.self) ?? 0
            for preKey in oneTimePreKeys {
                try await connection.query(
                    "INSERT INTO one_time_prekeys (device_key, key_id, encoded) VALUES (\(key), \(Int64(preKey.id)), \(Data(preKey.encoded)))",
                    logger: self.logger)
            }
            var stored = device
            stored.key = key
            stored.deviceId = UInt32(deviceId)
            stored.oneTimePreKeyCount = oneTimePreKeys.count
            return stored
        }
    }

    func devices(userId: String) async throws -> [DeviceRecord] {
        try await rows("SELECT \(unescaped: Self.deviceColumns) FROM devices d WHERE d.user_id = \(userId) ORDER BY d.device_id")
            .map(Self.deviceRecord)
    }

    func device(userId: String, deviceId: UInt32) async throws -> DeviceRecord? {
        try await rows(
            "SELECT \(unescaped: Self.deviceColumns) FROM devices d WHERE d.user_id = \(userId) AND d.device_id = \(Int64(deviceId))"
        ).first.map(Self.deviceRecord)
    }

    /// One round trip in the common case, where the session is active and the device exists; a
    /// refusal takes two more to say which check failed.
    func socketDevice(sessionId: String, userId: String, deviceId: UInt32, now: Milliseconds) async throws -> SocketDevice {
        let admitted = try await rows(SocketDeviceQuery(sessionId: sessionId, userId: userId, deviceId: Int64(deviceId), now: now))
            .first.map(Self.deviceRecord)
        if let admitted { return .device(admitted) }
        return try await socketDeviceInTwoReads(sessionId: sessionId, userId: userId, deviceId: deviceId, now: now)
    }

    func deleteDevice(userId: String, deviceId: UInt32) async throws -> Bool {
        try await !rows("DELETE FROM devices WHERE user_id = \(userId) AND device_id = \(Int64(deviceId)) RETURNING key").isEmpty
    }

    func replaceSignedPreKey(userId: String, deviceId: UInt32, encoded: [UInt8]) async throws -> Bool {
        try await !rows(
            "UPDATE devices SET signed_prekey = \(Data(encoded)) WHERE user_id = \(userId) AND device_id = \(Int64(deviceId)) RETURNING key"
        ).isEmpty
    }

    func addOneTimePreKeys(userId: String, deviceId: UInt32, keys: [(id: UInt32, encoded: [UInt8])]) async throws -> Int {
        try await transaction { connection in
            guard let key = try await self.rows(
                "SELECT key FROM devices WHERE user_id = \(userId) AND device_id = \(Int64(deviceId)) FOR UPDATE", on: connection
            ).first?.decode(Int64.self)
            else { throw APIFailure.notFound("device") }
            let held = Int(
                try await self.rows("SELECT COUNT(*) FROM one_time_prekeys WHERE device_key = \(key)", on: connection).first?
                    .decode(Int64.self) ?? 0)
            guard held + keys.count <= APILimits.oneTimePreKeysPerDevice else {
                throw APIFailure(
                    .unprocessableContent, .tooManyPreKeys,
                    "the server keeps at most \(APILimits.oneTimePreKeysPerDevice) one-time prekeys per device (\(held) held)")
            }
            for preKey in keys {
                let inserted = try await self.rows(
                    """
                    INSERT INTO one_time_prekeys (device_key, key_id, encoded) VALUES (\(key), \(Int64(preKey.id)), \(Data(preKey.encoded)))
                    ON CONFLICT DO NOTHING RETURNING key_id
                    """, on: connection)
                guard !inserted.isEmpty else {
                    throw APIFailure(.conflict, .duplicatePreKey, "one-time prekey \(preKey.id) is already uploaded")
                }
            }
            return held + keys.count
        }
    }

    func claimBundles(userId: String) async throws -> [ClaimedBundle] {
        try await transaction { connection in
            let devices = try await self.rows(
                "SELECT \(unescaped: Self.deviceColumns) FROM devices d WHERE d.user_id = \(userId) ORDER BY d.device_id", on: connection
            ).map(Self.deviceRecord)
            var bundles: [ClaimedBundle] = []
            for device in devices {
                // SKIP LOCKED: concurrent claimers each take a different key instead of waiting for the same one.
                let claimed = try await self.rows(
                    """
                    DELETE FROM one_time_prekeys WHERE (device_key, key_id) = (
                        SELECT device_key, key_id FROM one_time_prekeys WHERE device_key = \(device.key)
                        ORDER BY key_id LIMIT 1 FOR UPDATE SKIP LOCKED)
                    RETURNING encoded
                    """, on: connection
                ).first?.decode(Data.self)
                let remaining = Int(
                    try await self.rows("SELECT COUNT(*) FROM one_time_prekeys WHERE device_key = \(device.key)", on: connection).first?
                        .decode(Int64.self) ?? 0)
                bundles.append(ClaimedBundle(device: device, oneTimePreKey: claimed.map(Array.init), remaining: remaining))
            }
            return bundles
        }
    }
}
