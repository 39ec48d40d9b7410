import Crypto
import Foundation

/// A set of named 256-bit keys, the newest of which is current: JWT signing keys and at-rest keys.
///
/// Keys come from an environment variable (`id:base64,id:base64…`, the first is current) or from a
/// folder of `<id>.key` files (base64, one key each, the greatest id is current). A missing folder
/// is created with one fresh key. Files and folder must not be readable by anyone but the owner:
/// the server refuses to start otherwise, as ssh does.
struct KeyRing: Sendable {
    enum Failure: Error, CustomStringConvertible {
        case malformedKey(source: String)
        case empty(source: String)

        var description: String {
            switch self {
            case .malformedKey(let source): "\(source) does not hold a base64 256-bit key"
            case .empty(let source): "\(source) holds no key"
            }
        }
    }

    let currentId: String
    let keys: [String: SymmetricKey]

    init(currentId: String, keys: [String: SymmetricKey]) {
        self.currentId = currentId
        self.keys = keys
    }

    /// `id:base64,id:base64`; the first key is current.
    static func fromEnvironment(_ value: String, name: String) throws -> KeyRing {
        var keys: [String: SymmetricKey] = [:]
        var first: String?
        for entry in value.split(separator: ",") {
            let parts = entry.split(separator: ":", maxSplits: 1)
            guard parts.count == 2, let bytes = Data(base64Encoded: String(parts[1]).trimmingCharacters(in: .whitespaces)),
                bytes.count == 32
            else { throw Failure.malformedKey(source: name) }
            let id = String(parts[0]).trimmingCharacters(in: .whitespaces)
            keys[id] = SymmetricKey(data: bytes)
            if first == nil { first = id }
        }
        guard let first else { throw Failure.empty(source: name) }
        return KeyRing(currentId: first, keys: keys)
    }

    /// Loads every `<id>.key` in `folder`, creating the folder and a first key if needed.
    static func load(folder: URL) throws -> KeyRing {
        let manager = FileManager.default
        if !manager.fileExists(atPath: folder.path) {
            try manager.createDirectory(at: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            try addKey(folder: folder)
        }
        try FilePermissions.requireOwnerOnly(folder.path)
        var keys: [String: SymmetricKey] = [:]
        for name in try manager.contentsOfDirectory(atPath: folder.path) where name.hasSuffix(".key") {
            let path = folder.appendingPathComponent(name).path
            try FilePermissions.requireOwnerOnly(path)
            let text = try String(contentsOfFile: path, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            guard let bytes = Data(base64Encoded: text), bytes.count == 32 else { throw Failure.malformedKey(source: path) }
            keys[String(name.dropLast(4))] = SymmetricKey(data: bytes)
        }
        guard let currentId = keys.keys.max() else { throw Failure.empty(source: folder.path) }
        return KeyRing(currentId: currentId, keys: keys)
    }

    /// Writes a new random key whose id sorts after every existing one, readable by the owner only.
    @discardableResult
    static func addKey(folder: URL, now: Date = Date()) throws -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd'T'HHmmss"
        // The newest id must sort last: within one second (or after a clock step back) extend the
        // newest existing id, which keeps it unique and ordered.
        let existing = (try? FileManager.default.contentsOfDirectory(atPath: folder.path))?
            .filter { $0.hasSuffix(".key") }.map { String($0.dropLast(4)) } ?? []
        var id = "k\(formatter.string(from: now))"
        if let newest = existing.max(), newest >= id { id = newest + "1" }
        let key = SymmetricKey(size: .bits256).withUnsafeBytes { Data($0) }
        let path = folder.appendingPathComponent("\(id).key").path
        guard FileManager.default.createFile(
            atPath: path, contents: Data(key.base64EncodedString().utf8), attributes: [.posixPermissions: 0o600])
        else { throw CocoaError(.fileWriteUnknown) }
        return id
    }

    /// A bearer token in `file` (created with 32 random bytes, base64url, if missing), readable by
    /// the owner only.
    static func loadOrCreateToken(at file: URL) throws -> String {
        let manager = FileManager.default
        let folder = file.deletingLastPathComponent()
        if !manager.fileExists(atPath: folder.path) {
            try manager.createDirectory(at: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        }
        if !manager.fileExists(atPath: file.path) {
            let token = SymmetricKey(size: .bits256).withUnsafeBytes { Data($0) }.base64EncodedString()
                .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
            guard manager.createFile(atPath: file.path, contents: Data((token + "\n").utf8), attributes: [.posixPermissions: 0o600])
            else { throw CocoaError(.fileWriteUnknown) }
        }
        try FilePermissions.requireOwnerOnly(file.path)
        let token = try String(contentsOfFile: file.path, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        guard token.utf8.count >= 16 else { throw Failure.malformedKey(source: file.path) }
        return token
    }
}
