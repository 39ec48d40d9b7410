import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An exclusive advisory lock on a file (flock), held until ``release()`` or the process's end.
struct FileLock: Sendable {
    private let descriptor: Int32

    /// Nil when another process holds it.
    static func acquire(_ path: String) throws(ClientError) -> FileLock? {
        let descriptor = open(path, O_RDWR | O_CREAT, 0o600)
        guard descriptor >= 0 else { throw .corruptLocalState("cannot open \(path)") }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            close(descriptor)
            return nil
        }
        return FileLock(descriptor: descriptor)
    }

    func release() {
        close(descriptor)
    }
}
