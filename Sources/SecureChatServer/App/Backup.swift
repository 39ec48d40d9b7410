public import Foundation
import GRDB
public import Logging

/// `securechat-server backup` and `restore`: a copy of everything a server keeps, taken while it
/// runs, and put back into an empty data folder.
///
/// A backup folder holds `securechat.sqlite` (SQLite's online backup: one consistent snapshot,
/// whatever the server writes meanwhile), `secrets/` (the JWT and at-rest keys and the metrics
/// token, without which the sealed payloads cannot be opened) and `attachments/` (copied after the
/// snapshot, so every attachment the snapshot names is there). On PostgreSQL the database is
/// `pg_dump`'s job (docs/OPERATIONS.md); the folder then holds the secrets and attachments.
public enum Backup {
    public struct Report: Sendable {
        /// Whether the database itself is in the folder (SQLite) or left to pg_dump (PostgreSQL).
        public let includesDatabase: Bool
        public let attachments: Int
        public let secretFiles: Int
    }

    public enum Failure: Error, CustomStringConvertible {
        case destinationExists(String)
        case notABackup(String)
        case dataFolderInUse(String)
        case noDatabase(String)
        case backupWithoutDatabase(String)

        public var description: String {
            switch self {
            case .destinationExists(let path): "\(path) already exists: a backup goes into a new folder"
            case .notABackup(let path): "\(path) is not a SecureChat backup (no secrets/ folder)"
            case .dataFolderInUse(let path):
                "\(path) already holds a database or secrets: restore into an empty data folder (move the old one away first)"
            case .noDatabase(let path): "no SQLite database at \(path): is --data-dir right?"
            case .backupWithoutDatabase(let path):
                "\(path) holds no SQLite database (a backup of a PostgreSQL server?): restore its database with pg_restore and use --database-url"
            }
        }
    }

    static let databaseFile = "securechat.sqlite"

    public static func create(configuration: ServerConfiguration, destination: URL, logger: Logger) throws -> Report {
        let manager = FileManager.default
        guard !manager.fileExists(atPath: destination.path) else { throw Failure.destinationExists(destination.path) }
        try manager.createDirectory(at: destination, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        var includesDatabase = false
        if configuration.databaseURL == nil {
            guard manager.fileExists(atPath: configuration.sqlitePath.path) else { throw Failure.noDatabase(configuration.sqlitePath.path) }
            var options = Configuration()
            options.busyMode = .timeout(10)
            let live = try DatabasePool(path: configuration.sqlitePath.path, configuration: options)
            let copyPath = destination.appendingPathComponent(databaseFile).path
            _ = manager.createFile(atPath: copyPath, contents: nil, attributes: [.posixPermissions: 0o600])
            let copy = try DatabaseQueue(path: copyPath)
            try live.backup(to: copy)
            try copy.close()
            try live.close()
            includesDatabase = true
        }
        let secrets = try copyTree(
            from: configuration.dataDirectory.appendingPathComponent("secrets"), to: destination.appendingPathComponent("secrets"))
        // After the snapshot: attachments uploaded meanwhile come along unneeded, none it names is missing.
        let attachments = try copyTree(
            from: configuration.attachmentsDirectory, to: destination.appendingPathComponent("attachments"), skipping: ".part")
        logger.info("backup written", metadata: ["attachments": "\(attachments)"])
        return Report(includesDatabase: includesDatabase, attachments: attachments, secretFiles: secrets)
    }

    public static func restore(configuration: ServerConfiguration, source: URL, logger: Logger) throws -> Report {
        let manager = FileManager.default
        guard manager.fileExists(atPath: source.appendingPathComponent("secrets").path) else { throw Failure.notABackup(source.path) }
        let data = configuration.dataDirectory
        // A leftover write-ahead log would be replayed onto the restored database.
        for name in [databaseFile, databaseFile + "-wal", databaseFile + "-shm", "secrets"]
        where manager.fileExists(atPath: data.appendingPathComponent(name).path) {
            throw Failure.dataFolderInUse(data.path)
        }
        let database = source.appendingPathComponent(databaseFile)
        if configuration.databaseURL == nil, !manager.fileExists(atPath: database.path) {
            throw Failure.backupWithoutDatabase(source.path)
        }
        try manager.createDirectory(at: data, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        var includesDatabase = false
        if configuration.databaseURL == nil {
            try manager.copyItem(at: database, to: configuration.sqlitePath)
            try manager.setAttributes([.posixPermissions: 0o600], ofItemAtPath: configuration.sqlitePath.path)
            includesDatabase = true
        }
        let secrets = try copyTree(from: source.appendingPathComponent("secrets"), to: data.appendingPathComponent("secrets"))
        let attachments = try copyTree(from: source.appendingPathComponent("attachments"), to: configuration.attachmentsDirectory)
        logger.info("backup restored", metadata: ["attachments": "\(attachments)"])
        return Report(includesDatabase: includesDatabase, attachments: attachments, secretFiles: secrets)
    }

    /// Copies the files under `source` (folders 0700, files 0600); returns how many files.
    private static func copyTree(from source: URL, to destination: URL, skipping suffix: String? = nil) throws -> Int {
        let manager = FileManager.default
        guard manager.fileExists(atPath: source.path) else { return 0 }
        try manager.createDirectory(at: destination, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        var count = 0
        for name in try manager.contentsOfDirectory(atPath: source.path).sorted() {
            if let suffix, name.hasSuffix(suffix) { continue }
            let from = source.appendingPathComponent(name)
            let to = destination.appendingPathComponent(name)
            var isFolder: ObjCBool = false
            guard manager.fileExists(atPath: from.path, isDirectory: &isFolder) else { continue }
            if isFolder.boolValue {
                count += try copyTree(from: from, to: to, skipping: suffix)
            } else {
                // A file deleted between listing and copying (an expired attachment) is skipped.
                do {
                    try manager.copyItem(at: from, to: to)
                } catch CocoaError.fileReadNoSuchFile {
                    continue
                }
                try manager.setAttributes([.posixPermissions: 0o600], ofItemAtPath: to.path)
                count += 1
            }
        }
        return count
    }
}
