import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Runs a command-line tool and waits for it without blocking a thread of the cooperative pool.
///
/// Spawned and reaped here rather than with Foundation's Process, which on Linux learns that a
/// child ended when a descriptor it shares with it closes: a daemon the tool leaves behind
/// (`pg_ctl start`) inherits that descriptor, and the tool would never seem to end.
/// (posix_spawn_file_actions_addclosefrom_np is glibc 2.34's; Swift's Glibc module does not
/// declare it, so it is looked up.)
enum ToolProcess {
    struct SpawnFailure: Error, CustomStringConvertible {
        let description: String
    }

    /// The exit status and everything the tool wrote (standard output and error together).
    @discardableResult
    static func run(_ executable: String, _ arguments: [String], environment: [String: String] = [:]) async throws -> (status: Int32, output: String) {
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("securechat-tool-\(UUID().uuidString).log")
        defer { try? FileManager.default.removeItem(at: log) }
        let path = executable.hasPrefix("/") ? executable : "/usr/bin/env"
        let argv = [path] + (executable.hasPrefix("/") ? [] : [executable]) + arguments
        let variables = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }.map { "\($0.key)=\($0.value)" }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, log.path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        // The child gets nothing else of this process: an inherited descriptor would keep a lock
        // of a test (a client's store) held for as long as the child, or a daemon it starts, lives.
        if let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np") {
            typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
            _ = unsafeBitCast(symbol, to: CloseFrom.self)(&actions, 3)
        } else {
            for descriptor in 3..<Int32(4096) where fcntl(descriptor, F_GETFD) != -1 {
                posix_spawn_file_actions_addclose(&actions, descriptor)
            }
        }
        var pid: pid_t = 0
        let spawned = withCStrings(argv) { argvPointers in
            withCStrings(variables) { environmentPointers in
                posix_spawn(&pid, path, &actions, nil, argvPointers, environmentPointers)
            }
        }
        guard spawned == 0 else { throw SpawnFailure(description: "could not start \(executable): error \(spawned)") }
        let child = pid
        let status: Int32 = await withCheckedContinuation { continuation in
            // waitpid blocks: on a thread of its own, not the cooperative pool.
            Thread.detachNewThread {
                var raw: Int32 = 0
                while waitpid(child, &raw, 0) == -1, errno == EINTR {}
                let exited = raw & 0x7f == 0
                continuation.resume(returning: exited ? (raw >> 8) & 0xff : 128 + (raw & 0x7f))
            }
        }
        return (status, (try? String(contentsOf: log, encoding: .utf8)) ?? "")
    }

    /// A NULL-terminated array of C strings that lives for the call of `body`.
    private static func withCStrings<Result>(_ strings: [String], _ body: ([UnsafeMutablePointer<CChar>?]) -> Result) -> Result {
        let pointers = strings.map { strdup($0) } + [nil]
        defer { for pointer in pointers { free(pointer) } }
        return body(pointers)
    }
}
