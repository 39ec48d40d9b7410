import Foundation

/// A PostgreSQL server of a test's own, in a temporary folder, that the test may stop and start
/// again without disturbing the shared test database the other tests use. Built with the machine's
/// PostgreSQL binaries (Debian's `/usr/lib/postgresql/N/bin`), run as the `postgres` user when the
/// tests run as root (PostgreSQL refuses root).
final class ThrowawayPostgres: Sendable {
    let folder: URL
    let port: Int
    private let binaries: URL
    private let runAs: String?

    var url: String { "postgres://postgres@127.0.0.1:\(port)/postgres" }

    static var binaries: URL? {
        let root = URL(fileURLWithPath: "/usr/lib/postgresql")
        guard let versions = try? FileManager.default.contentsOfDirectory(atPath: root.path) else { return nil }
        let newest = versions.compactMap(Int.init).max()
        return newest.map { root.appendingPathComponent("\($0)/bin") }
            .flatMap { FileManager.default.isExecutableFile(atPath: $0.appendingPathComponent("initdb").path) ? $0 : nil }
    }

    /// Creates and starts the cluster, or returns nil if this machine has no PostgreSQL binaries.
    static func make(port: Int) async throws -> ThrowawayPostgres? {
        guard let binaries else { return nil }
        let cluster = ThrowawayPostgres(binaries: binaries, port: port)
        try await cluster.initialise()
        try await cluster.start()
        return cluster
    }

    private init(binaries: URL, port: Int) {
        self.binaries = binaries
        self.port = port
        folder = URL(fileURLWithPath: "/tmp").appendingPathComponent("securechat-pg-\(UUID().uuidString)")
        runAs = getuid() == 0 ? "postgres" : nil
    }

    private func run(_ tool: String, _ arguments: [String]) async throws {
        let path = binaries.appendingPathComponent(tool).path
        let (status, output) =
            if let runAs {
                try await ToolProcess.run(
                    "/usr/sbin/runuser", ["-u", runAs, "--", path] + arguments)
            } else {
                try await ToolProcess.run(path, arguments)
            }
        guard status == 0 else { throw Failure(description: "\(tool) failed: \(output)") }
    }

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    private var data: String { folder.appendingPathComponent("data").path }

    private func initialise() async throws {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        if let runAs {
            let (status, output) = try await ToolProcess.run("chown", ["\(runAs):", folder.path])
            guard status == 0 else { throw Failure(description: "chown failed: \(output)") }
        }
        // Trust on loopback, no fsync: a scratch server for one test.
        try await run("initdb", ["-D", data, "-U", "postgres", "-A", "trust", "--no-sync", "--no-instructions"])
    }

    func start() async throws {
        try await run(
            "pg_ctl",
            [
                "-D", data, "-l", folder.appendingPathComponent("server.log").path, "-w", "-t", "30", "-o",
                "-p \(port) -k \(folder.path) -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=60", "start",
            ])
    }

    /// Stops the server at once, cutting every connection, as a crash or a restart would.
    func stop() async throws {
        try await run("pg_ctl", ["-D", data, "-m", "fast", "-w", "-t", "30", "stop"])
    }

    /// Freezes the server and its backends (SIGSTOP): connections stay open and nothing answers,
    /// as with a database host that vanished without resetting its connections.
    func freeze() async throws { try await signalAll("-STOP") }

    func thaw() async throws { try await signalAll("-CONT") }

    private func signalAll(_ signal: String) async throws {
        let pidFile = try String(contentsOfFile: data + "/postmaster.pid", encoding: .utf8)
        guard let postmaster = pidFile.split(separator: "\n").first.map(String.init) else {
            throw Failure(description: "no postmaster.pid")
        }
        let (_, children) = try await ToolProcess.run("/usr/bin/pgrep", ["-P", postmaster])
        let pids = [postmaster] + children.split(whereSeparator: \.isNewline).map(String.init)
        let (status, output) = try await ToolProcess.run("/bin/kill", [signal] + pids)
        guard status == 0 else { throw Failure(description: "kill \(signal) failed: \(output)") }
    }

    func remove() async {
        try? await thaw()
        try? await stop()
        try? FileManager.default.removeItem(at: folder)
    }
}
