import AsyncHTTPClient
import Foundation
import HTTPTypes
import NIOCore
import NIOHTTP1
import Testing

/// The real `securechat-server` binary, started on a free port with its own data folder.
final class ServerProcess: APITransport, @unchecked Sendable {
    let dataDirectory: URL
    private(set) var port = 0
    private var process: Process?
    private var output: Pipe?

    /// The binary `swift build` put next to the test bundle.
    static var binary: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent(".build/debug/securechat-server")
    }

    private let databaseArguments: [String]
    private let schema: String?

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

    /// Drops the PostgreSQL schema the server used, if any.
    func cleanUp() async {
        if let schema { await TestDatabase.dropSchema(schema) }
    }

    /// Starts the server and waits until it says where it listens.
    func start(extraArguments: [String] = []) throws {
        let process = Process()
        process.executableURL = Self.binary
        process.arguments = ["--port", "0", "--data-dir", dataDirectory.path, "--bcrypt-cost", "10", "--log-level", "info"] + databaseArguments + extraArguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        self.process = process
        self.output = pipe
        // "… securechat-server listening" carries address=[IPv4]127.0.0.1/127.0.0.1:PORT
        var seen = ""
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            let chunk = pipe.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            seen += String(decoding: chunk, as: UTF8.self)
            if let range = seen.range(of: #"127\.0\.0\.1:(\d+)"#, options: .regularExpression) {
                port = Int(seen[range].split(separator: ":").last ?? "") ?? 0
                // Keep draining so the server never blocks on a full pipe.
                pipe.fileHandleForReading.readabilityHandler = { handle in _ = handle.availableData }
                return
            }
        }
        Issue.record("the server did not start: \(seen)")
        throw ServerProcessError.didNotStart
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
