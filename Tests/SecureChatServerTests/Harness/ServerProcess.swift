import AsyncHTTPClient
import Foundation
import HTTPTypes
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import Testing

/// The real `securechat-server` binary, started on a free port with its own data folder.
final class ServerProcess: APITransport, @unchecked Sendable {
    let dataDirectory: URL
    private(set) var port = 0
    private var process: Process?
    private var output: Pipe?
    /// Everything the process wrote (standard output and error), for tests that read its logs.
    private let transcript = NIOLockedValueBox(Data())
    var log: String { transcript.withLockedValue { String(decoding: $0, as: UTF8.self) } }

    /// The binary `swift build` put next to the test bundle.
    static var binary: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent(".build/debug/securechat-server")
    }

    /// `--database-url …` for PostgreSQL, nothing for SQLite: what other commands of the binary need too.
    let databaseArguments: [String]
    private let schema: String?

    /// For PostgreSQL's own tools: the database URL (without the server's `schema=`) and the schema.
    var postgresTarget: (url: String, schema: String)? {
        guard let schema, let base = TestDatabase.postgresURL else { return nil }
        return (base, schema)
    }

    init(dataDirectory: URL, database: TestDatabase = .sqlite) throws {
        self.dataDirectory = dataDirectory
        if database == .postgres {
            let isolated = try #require(TestDatabase.isolatedPostgresURL(), "no PostgreSQL server configured")
            databaseArguments = ["--database-url", isolated.url]
            schema = isolated.schema
        } else {
            databaseArguments = []
            schema = nil
        }
    }

    /// A server on a database of the test's own choosing (a throwaway PostgreSQL).
    init(dataDirectory: URL, databaseURL: String) {
        self.dataDirectory = dataDirectory
        databaseArguments = ["--database-url", databaseURL]
        schema = nil
    }

    /// Another instance sharing `other`'s database and data folder (and so its keys), as behind a
    /// load balancer; `other` drops the schema.
    init(sharing other: ServerProcess) {
        dataDirectory = other.dataDirectory
        databaseArguments = other.databaseArguments
        schema = nil
    }

    /// Drops the PostgreSQL schema the server used, if any.
    func cleanUp() async {
        if let schema { await TestDatabase.dropSchema(schema) }
    }

    /// Starts the server and waits until it says where it listens.
    func start(port requested: Int = 0, extraArguments: [String] = [], environment: [String: String] = [:]) async throws {
        let process = Process()
        process.executableURL = Self.binary
        if !environment.isEmpty { process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new } }
        // Sustained traffic at full speed: the limits are tested in process (RateLimitTests).
        process.arguments = ["--port", "\(requested)", "--data-dir", dataDirectory.path, "--bcrypt-cost", "10", "--log-level", "info", "--rate-limits", "off"]
            + databaseArguments + extraArguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        // The output is read on Foundation's thread and awaited: a blocking read on the cooperative
        // pool can starve the in-process servers of other tests, which this one may wait for.
        let watch = StartupWatch()
        let transcript = transcript
        pipe.fileHandleForReading.readabilityHandler = { handle in
            let chunk = handle.availableData
            if chunk.isEmpty { handle.readabilityHandler = nil }
            transcript.withLockedValue { text in
                if text.count < 256 << 20 { text.append(chunk) }
            }
            watch.feed(chunk)
        }
        try process.run()
        self.process = process
        self.output = pipe
        let timeout = Task {
            try await Task.sleep(for: .seconds(60))
            watch.feed(Data())
        }
        let (found, text) = await watch.outcome()
        timeout.cancel()
        guard let found else {
            Issue.record("the server did not start: \(text)")
            throw ServerProcessError.didNotStart
        }
        port = found
    }

    /// The server's resident memory in bytes (Linux `/proc`), or nil when it is not running.
    var residentBytes: Int? {
        guard let process,
            let status = try? String(contentsOfFile: "/proc/\(process.processIdentifier)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
            let kilobytes = line.split(separator: " ").dropFirst().first.flatMap({ Int($0) })
        else { return nil }
        return kilobytes * 1024
    }

    /// Sends `signal` and waits for the process to end; returns its termination status. A process
    /// still running after `patience` is killed, so that a hung shutdown fails instead of hanging.
    @discardableResult
    func stop(signal: Int32, patience: TimeInterval = 30) -> Int32 {
        guard let process else { return -1 }
        kill(process.processIdentifier, signal)
        let pid = process.processIdentifier
        let watchdog = DispatchWorkItem { kill(pid, SIGKILL) }
        DispatchQueue.global().asyncAfter(deadline: .now() + patience, execute: watchdog)
        process.waitUntilExit()
        watchdog.cancel()
        output?.fileHandleForReading.readabilityHandler = nil
        self.process = nil
        return process.terminationStatus
    }

    @discardableResult
    func request(
        _ method: HTTPRequest.Method, _ path: String, token: String?, json: (any Encodable)?, raw: ByteBuffer?, headers extra: HTTPFields
    ) async throws -> (status: HTTPResponse.Status, body: Data) {
        try await HTTPTransport(port: port).request(method, path, token: token, json: json, raw: raw, headers: extra)
    }
}

/// The API over HTTP to a port: a server binary, or a proxy in front of several.
struct HTTPTransport: APITransport {
    let port: Int

    @discardableResult
    func request(
        _ method: HTTPRequest.Method, _ path: String, token: String?, json: (any Encodable)?, raw: ByteBuffer?, headers extra: HTTPFields
    ) async throws -> (status: HTTPResponse.Status, body: Data) {
        let (fields, body) = try Self.prepare(token: token, json: json, raw: raw, headers: extra)
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)")
        request.method = HTTPMethod(rawValue: method.rawValue)
        for field in fields { request.headers.add(name: field.name.rawName, value: field.value) }
        if let body { request.body = .bytes(body) }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        let collected = try await response.body.collect(upTo: 64 << 20)
        return (HTTPResponse.Status(code: Int(response.status.code)), Data(buffer: collected))
    }
}

enum ServerProcessError: Error { case didNotStart }

/// Watches a starting server's output for the port it listens on ("… securechat-server
/// listening" carries address=[IPv4]127.0.0.1/127.0.0.1:PORT); empty data means the end.
private final class StartupWatch: Sendable {
    private struct State {
        var text = ""
        var port: Int?
        var done = false
        var waiter: CheckedContinuation<Void, Never>?
    }

    private let state = NIOLockedValueBox(State())

    func feed(_ chunk: Data) {
        let waiter = state.withLockedValue { state -> CheckedContinuation<Void, Never>? in
            guard !state.done else { return nil }
            if chunk.isEmpty {
                state.done = true
            } else {
                state.text += String(decoding: chunk, as: UTF8.self)
                if let range = state.text.range(of: #"127\.0\.0\.1:(\d+)"#, options: .regularExpression) {
                    state.port = Int(state.text[range].split(separator: ":").last ?? "")
                    state.done = true
                }
            }
            guard state.done else { return nil }
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
    }

    func outcome() async -> (port: Int?, text: String) {
        await withCheckedContinuation { continuation in
            let resumeNow = state.withLockedValue { state -> Bool in
                if state.done { return true }
                state.waiter = continuation
                return false
            }
            if resumeNow { continuation.resume() }
        }
        return state.withLockedValue { ($0.port, $0.text) }
    }
}
