import Foundation

/// Secret files (keys, tokens, TLS keys, the TURN secret) and their folders must be reachable by
/// their owner only: the server refuses to start otherwise, as ssh does.
public enum FilePermissions {
    public struct TooOpen: Error, CustomStringConvertible {
        public let path: String
        public let mode: Int
        public var description: String {
            "\(path) is accessible to others (mode \(String(mode, radix: 8))): chmod 600 secret files and 700 their folders"
        }
    }

    /// Checks the file itself, not a symbolic link to it (secrets are often mounted that way).
    public static func requireOwnerOnly(_ path: String) throws {
        let resolved = URL(fileURLWithPath: path).resolvingSymlinksInPath().path
        let attributes = try FileManager.default.attributesOfItem(atPath: resolved)
        let mode = (attributes[.posixPermissions] as? NSNumber)?.intValue ?? 0
        guard mode & 0o077 == 0 else { throw TooOpen(path: path, mode: mode) }
    }
}
