import Foundation
import GRDB
import NIOConcurrencyHelpers
import SecureChatProtocol

/// A device's local state in one SQLite file: every value sealed under a key derived from the
/// user's passphrase, every name replaced by a blind index. SQLite's transactions (WAL,
/// `synchronous = FULL`) make each change atomic and durable: a crash mid-write leaves the
/// previous state, never a torn one.
final class LocalStore: Sendable {
    enum Kind: UInt8, Sendable {
        case account = 1
        case identity = 2
        case signedPreKey = 3
        case oneTimePreKey = 4
        case acceptedInitiation = 5
        case session = 6
        case contact = 7
        case cursor = 8
        case senderKeyState = 9
        case senderKeyRecord = 10
        case roomState = 11
    }

    static let fileName = "securechat-client.sqlite"
    private static let checkPlaintext = Array("SecureChat local store".utf8)

    private let queue: DatabaseQueue
    private let keys: StoreKeys
    let path: String
    /// Held while this store is open; nil once closed.
    private let lock: NIOLockedValueBox<FileLock?>

    private init(queue: DatabaseQueue, keys: StoreKeys, path: String, lock: FileLock) {
        self.queue = queue
        self.keys = keys
        self.path = path
        self.lock = NIOLockedValueBox(lock)
    }

    /// One process at a time: two would each advance their own copy of the same ratchets (and
    /// reuse message keys). The kernel releases the lock when the process ends, however it ends.
    private static func takeLock(_ directory: URL) throws(ClientError) -> FileLock {
        guard let lock = try FileLock.acquire(directory.appendingPathComponent("securechat-client.lock").path) else {
            throw .storeInUse(directory.path)
        }
        return lock
    }

    static func exists(in directory: URL) -> Bool {
        FileManager.default.fileExists(atPath: directory.appendingPathComponent(fileName).path)
    }

    /// Creates a new store; refuses to overwrite one.
    static func create(in directory: URL, passphrase: String, cost: StoreKeys.Cost = .standard) throws(ClientError) -> LocalStore {
        if exists(in: directory) { throw .localStateExists(directory.path) }
        do {
            try FileManager.default.createDirectory(
                at: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw .corruptLocalState("cannot create \(directory.path): \(error.localizedDescription)")
        }
        let salt = SecretBytes.random(count: StoreKeys.saltLength).bytes
        let lock = try takeLock(directory)
        let keys: StoreKeys
        let queue: DatabaseQueue
        do {
            keys = try StoreKeys.derive(passphrase: passphrase, salt: salt, cost: cost)
            queue = try openQueue(directory)
        } catch {
            lock.release()
            throw error
        }
        let costData: Data
        do {
            costData = try JSONEncoder().encode(cost)
        } catch {
            throw .corruptLocalState("\(error)")
        }
        try wrap {
            try queue.write { db in
                try db.execute(sql: "INSERT INTO meta(name, value) VALUES ('salt', ?), ('cost', ?), ('check', ?)", arguments: [
                    Data(salt), costData, keys.seal(checkPlaintext, context: Array("check".utf8)),
                ])
            }
        }
        return LocalStore(queue: queue, keys: keys, path: directory.path, lock: lock)
    }

    /// Opens an existing store with its passphrase.
    static func open(in directory: URL, passphrase: String) throws(ClientError) -> LocalStore {
        guard exists(in: directory) else { throw .noLocalState(directory.path) }
        let lock = try takeLock(directory)
        do {
            return try open(in: directory, passphrase: passphrase, lock: lock)
        } catch {
            lock.release()
            throw error
        }
    }

    private static func open(in directory: URL, passphrase: String, lock: FileLock) throws(ClientError) -> LocalStore {
        let queue = try openQueue(directory)
        let meta = try wrap {
            try queue.read { db in
                try Dictionary(
                    Row.fetchAll(db, sql: "SELECT name, value FROM meta").map { ($0["name"] as String, $0["value"] as Data) },
                    uniquingKeysWith: { first, _ in first })
            }
        }
        guard let salt = meta["salt"], let costData = meta["cost"], let check = meta["check"],
              let cost = try? JSONDecoder().decode(StoreKeys.Cost.self, from: costData)
        else { throw .corruptLocalState("the store's header is incomplete") }
        let keys = try StoreKeys.derive(passphrase: passphrase, salt: Array(salt), cost: cost)
        guard (try? keys.open(check, context: Array("check".utf8))) == Data(checkPlaintext) else { throw .wrongPassphrase }
        return LocalStore(queue: queue, keys: keys, path: directory.path, lock: lock)
    }

    private static func openQueue(_ directory: URL) throws(ClientError) -> DatabaseQueue {
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        configuration.journalMode = .wal
        let path = directory.appendingPathComponent(fileName).path
        let queue: DatabaseQueue = try wrap { try DatabaseQueue(path: path, configuration: configuration) }
        try wrap {
            // Durable once committed: a message is acknowledged to the server only after this.
            try queue.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA synchronous = FULL") }
            var migrator = DatabaseMigrator()
            migrator.registerMigration("v1") { db in
                try db.execute(sql: """
                    CREATE TABLE meta (name TEXT PRIMARY KEY, value BLOB NOT NULL);
                    CREATE TABLE records (kind INTEGER NOT NULL, name BLOB NOT NULL, value BLOB NOT NULL, PRIMARY KEY (kind, name));
                    CREATE TABLE archive (id INTEGER PRIMARY KEY AUTOINCREMENT, conversation BLOB NOT NULL, value BLOB NOT NULL);
                    CREATE INDEX archive_by_conversation ON archive (conversation, id);
                    CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, value BLOB NOT NULL);
                    """)
            }
            try migrator.migrate(queue)
        }
        try? FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: path)
        return queue
    }

    static func wrap<Value>(_ body: () throws -> Value) throws(ClientError) -> Value {
        do {
            return try body()
        } catch let error as ClientError {
            throw error
        } catch {
            throw .corruptLocalState("\(error)")
        }
    }

    // MARK: Reading

    func record(_ kind: Kind, _ name: String) throws(ClientError) -> Data? {
        let index = keys.index(name, kind: kind.rawValue)
        let sealed = try Self.wrap {
            try queue.read { db in
                try Data.fetchOne(db, sql: "SELECT value FROM records WHERE kind = ? AND name = ?", arguments: [kind.rawValue, index])
            }
        }
        guard let sealed else { return nil }
        return try unsealRecord(sealed, kind: kind, index: index).payload
    }

    /// Every record of a kind, with its name.
    func records(_ kind: Kind) throws(ClientError) -> [(name: String, payload: Data)] {
        let rows = try Self.wrap {
            try queue.read { db in
                try Row.fetchAll(db, sql: "SELECT name, value FROM records WHERE kind = ?", arguments: [kind.rawValue])
                    .map { ($0["name"] as Data, $0["value"] as Data) }
            }
        }
        var result: [(name: String, payload: Data)] = []
        for (index, sealed) in rows { result.append(try unsealRecord(sealed, kind: kind, index: index)) }
        return result
    }

    /// A record's plaintext is its name (u16 length ‖ UTF-8) and then its payload; the sealing
    /// binds it to its kind and index value, so records cannot be swapped.
    private func unsealRecord(_ sealed: Data, kind: Kind, index: Data) throws(ClientError) -> (name: String, payload: Data) {
        let plaintext = try keys.open(sealed, context: [kind.rawValue] + Array(index))
        guard plaintext.count >= 2 else { throw .corruptLocalState("a record is truncated") }
        let start = plaintext.startIndex
        let length = Int(plaintext[start]) << 8 | Int(plaintext[start + 1])
        guard plaintext.count >= 2 + length, let name = String(data: plaintext[(start + 2)..<(start + 2 + length)], encoding: .utf8)
        else { throw .corruptLocalState("a record is truncated") }
        return (name, Data(plaintext[(start + 2 + length)...]))
    }

    func archive(conversation: String, limit: Int) throws(ClientError) -> [Data] {
        let index = keys.index(conversation, kind: 0)
        let rows = try Self.wrap {
            try queue.read { db in
                try Data.fetchAll(
                    db, sql: "SELECT value FROM (SELECT id, value FROM archive WHERE conversation = ? ORDER BY id DESC LIMIT ?) ORDER BY id",
                    arguments: [index, limit])
            }
        }
        var result: [Data] = []
        for sealed in rows { result.append(try keys.open(sealed, context: [0] + Array(index))) }
        return result
    }

    func outbox() throws(ClientError) -> [(id: Int64, frame: Data)] {
        let rows = try Self.wrap {
            try queue.read { db in
                try Row.fetchAll(db, sql: "SELECT id, value FROM outbox ORDER BY id").map { ($0["id"] as Int64, $0["value"] as Data) }
            }
        }
        var result: [(id: Int64, frame: Data)] = []
        for (id, sealed) in rows { result.append((id, try keys.open(sealed, context: Array("outbox".utf8)))) }
        return result
    }

    // MARK: Writing

    /// The changes of one step, committed together or not at all.
    struct Changes {
        fileprivate var records: [(Kind, String, Data?)] = []
        fileprivate var archived: [(String, Data)] = []
        /// Frames to queue, with their client message ids.
        private(set) var queued: [(id: String, frame: Data)] = []
        fileprivate var sent: [Int64] = []
        fileprivate var replaced: [(Int64, Data)] = []

        mutating func put(_ kind: Kind, _ name: String, _ payload: Data) { records.append((kind, name, payload)) }
        mutating func delete(_ kind: Kind, _ name: String) { records.append((kind, name, nil)) }
        mutating func archive(_ conversation: String, _ entry: Data) { archived.append((conversation, entry)) }
        mutating func enqueue(id: String, _ frame: Data) { queued.append((id, frame)) }
        mutating func removeFromOutbox(_ id: Int64) { sent.append(id) }
        mutating func replaceInOutbox(_ id: Int64, _ frame: Data) { replaced.append((id, frame)) }
        mutating func merge(_ other: Changes) {
            records += other.records
            archived += other.archived
            queued += other.queued
            sent += other.sent
            replaced += other.replaced
        }
        var isEmpty: Bool { records.isEmpty && archived.isEmpty && queued.isEmpty && sent.isEmpty && replaced.isEmpty }
    }

    /// Commits `changes` in one transaction; returns the outbox rows of the queued frames, in order.
    @discardableResult
    func commit(_ changes: Changes) throws(ClientError) -> [Int64] {
        guard !changes.isEmpty else { return [] }
        let keys = keys
        return try Self.wrap {
            try queue.write { db -> [Int64] in
                var rows: [Int64] = []
                for (kind, name, payload) in changes.records {
                    let index = keys.index(name, kind: kind.rawValue)
                    if let payload {
                        let nameBytes = Array(name.utf8)
                        guard nameBytes.count <= Int(UInt16.max) else { throw ClientError.corruptLocalState("a record name is too long") }
                        var plaintext = Data([UInt8(nameBytes.count >> 8), UInt8(nameBytes.count & 0xff)] + nameBytes)
                        plaintext.append(payload)
                        let sealed = keys.seal(plaintext, context: [kind.rawValue] + Array(index))
                        plaintext.resetBytes(in: 0..<plaintext.count)
                        try db.execute(
                            sql: "INSERT INTO records(kind, name, value) VALUES (?, ?, ?) ON CONFLICT (kind, name) DO UPDATE SET value = excluded.value",
                            arguments: [kind.rawValue, index, sealed])
                    } else {
                        try db.execute(sql: "DELETE FROM records WHERE kind = ? AND name = ?", arguments: [kind.rawValue, index])
                    }
                }
                for (conversation, entry) in changes.archived {
                    let index = keys.index(conversation, kind: 0)
                    try db.execute(
                        sql: "INSERT INTO archive(conversation, value) VALUES (?, ?)",
                        arguments: [index, keys.seal(entry, context: [0] + Array(index))])
                }
                for (_, frame) in changes.queued {
                    try db.execute(sql: "INSERT INTO outbox(value) VALUES (?)", arguments: [keys.seal(frame, context: Array("outbox".utf8))])
                    rows.append(db.lastInsertedRowID)
                }
                for id in changes.sent {
                    try db.execute(sql: "DELETE FROM outbox WHERE id = ?", arguments: [id])
                }
                for (id, frame) in changes.replaced {
                    try db.execute(sql: "UPDATE outbox SET value = ? WHERE id = ?", arguments: [keys.seal(frame, context: Array("outbox".utf8)), id])
                }
                return rows
            }
        }
    }

    /// Closes the database and releases the lock (once; later calls do nothing).
    func close() {
        let held = lock.withLockedValue { value in
            defer { value = nil }
            return value
        }
        guard let held else { return }
        try? queue.close()
        held.release()
    }
}
