import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOConcurrencyHelpers
import NIOCore
import SecureChatAPI
import Testing

@testable import SecureChatServer

/// A clock tests can move, to expire tokens and messages without waiting.
final class ManualClock: Sendable {
    private let current: NIOLockedValueBox<Date>
    init(_ start: Date = Date()) { current = NIOLockedValueBox(start) }
    var now: Date { current.withLockedValue { $0 } }
    func advance(by seconds: TimeInterval) { current.withLockedValue { $0 = $0.addingTimeInterval(seconds) } }
}

/// A data folder and, for PostgreSQL, a schema of its own: what a server keeps between restarts.
struct TestEnvironment: Sendable {
    let directory: URL
    let databaseURL: String?
    /// The PostgreSQL schema of this environment (nil on SQLite).
    let schema: String?

    init(database: TestDatabase) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("securechat-test-\(UUID().uuidString)")
        if database == .postgres {
            let isolated = try #require(TestDatabase.isolatedPostgresURL(), "no PostgreSQL server configured")
            databaseURL = isolated.url
            schema = isolated.schema
        } else {
            databaseURL = nil
            schema = nil
        }
    }

    func configuration(clock: ManualClock) -> ServerConfiguration {
        var configuration = ServerConfiguration()
        configuration.dataDirectory = directory
        configuration.databaseURL = databaseURL
        configuration.port = 0
        configuration.bcryptCost = 4
        configuration.sweepInterval = 3600
        configuration.clock = { clock.now }
        return configuration
    }

    func cleanUp() async {
        try? FileManager.default.removeItem(at: directory)
        if let schema { await TestDatabase.dropSchema(schema) }
    }
}

/// A live server on a loopback port with its own data folder, and a JSON client for it.
struct TestServer {
    let client: any TestClientProtocol
    let clock: ManualClock
    let dataDirectory: URL
    /// What the server was built with: tests open its database with it.
    let configuration: ServerConfiguration

    /// The server's clock in the API's milliseconds.
    var clockMilliseconds: Int64 { Int64((clock.now.timeIntervalSince1970 * 1000).rounded(.down)) }

    var port: Int { client.port ?? 0 }

    /// Runs `body` against a fresh server; `configure` adjusts the configuration first.
    static func withLive<Value>(
        database: TestDatabase = .sqlite,
        configure: (inout ServerConfiguration) -> Void = { _ in },
        _ body: @Sendable (TestServer) async throws -> Value
    ) async throws -> Value {
        let environment = try TestEnvironment(database: database)
        do {
            let value = try await withLive(environment: environment, configure: configure, body)
            await environment.cleanUp()
            return value
        } catch {
            await environment.cleanUp()
            throw error
        }
    }

    /// Runs `body` against a server on `environment`, which outlives it (for restarts).
    static func withLive<Value>(
        environment: TestEnvironment, clock: ManualClock = ManualClock(),
        configure: (inout ServerConfiguration) -> Void = { _ in },
        _ body: @Sendable (TestServer) async throws -> Value
    ) async throws -> Value {
        var configuration = environment.configuration(clock: clock)
        configure(&configuration)
        var logger = Logger(label: "securechat-test")
        logger.logLevel = ProcessInfo.processInfo.environment["SECURECHAT_TEST_LOG"].flatMap { Logger.Level(rawValue: $0) } ?? .critical
        let app = try await buildApplication(configuration: configuration, logger: logger)
        let built = configuration
        return try await app.test(.live) { client in
            try await body(TestServer(client: client, clock: clock, dataDirectory: environment.directory, configuration: built))
        }
    }

    @discardableResult
    func request(
        _ method: HTTPRequest.Method, _ path: String, token: String? = nil, json: (any Encodable)? = nil, raw: ByteBuffer? = nil,
        headers extra: HTTPFields = [:]
    ) async throws -> (status: HTTPResponse.Status, body: Data) {
        let (headers, body) = try Self.prepare(token: token, json: json, raw: raw, headers: extra)
        return try await client.execute(uri: path, method: method, headers: headers, body: body) { response in
            (response.status, Data(buffer: response.body))
        }
    }
}

/// Anything tests send API requests to: the in-process live server or the real binary.
protocol APITransport: Sendable {
    var port: Int { get }
    /// Sends a JSON request (or a raw body) and returns the status and body.
    func request(
        _ method: HTTPRequest.Method, _ path: String, token: String?, json: (any Encodable)?, raw: ByteBuffer?, headers: HTTPFields
    ) async throws -> (status: HTTPResponse.Status, body: Data)
}

extension TestServer: APITransport {}

extension APITransport {
    static func prepare(token: String?, json: (any Encodable)?, raw: ByteBuffer?, headers extra: HTTPFields) throws -> (HTTPFields, ByteBuffer?) {
        var headers = extra
        if let token { headers[.authorization] = "Bearer \(token)" }
        var body = raw
        if let json {
            body = ByteBuffer(bytes: try APIJSON.makeEncoder().encode(json))
            headers[.contentType] = "application/json"
        }
        return (headers, body)
    }

    @discardableResult
    func request(
        _ method: HTTPRequest.Method, _ path: String, token: String? = nil, json: (any Encodable)? = nil
    ) async throws -> (status: HTTPResponse.Status, body: Data) {
        try await request(method, path, token: token, json: json, raw: nil, headers: [:])
    }

    /// Like ``request`` but decodes a success body, failing the test on an error status.
    func call<Response: Decodable>(
        _ method: HTTPRequest.Method, _ path: String, token: String? = nil, json: (any Encodable)? = nil, as type: Response.Type,
        sourceLocation: SourceLocation = #_sourceLocation
    ) async throws -> Response {
        let (status, body) = try await request(method, path, token: token, json: json)
        #expect((200..<300).contains(status.code), "\(method) \(path) → \(status.code) \(String(decoding: body, as: UTF8.self))", sourceLocation: sourceLocation)
        return try APIJSON.makeDecoder().decode(Response.self, from: body)
    }

    /// Expects an error answer with this status and code.
    func expectError(
        _ method: HTTPRequest.Method, _ path: String, token: String? = nil, json: (any Encodable)? = nil, raw: ByteBuffer? = nil,
        headers: HTTPFields = [:], status: HTTPResponse.Status, code: APIErrorCode, sourceLocation: SourceLocation = #_sourceLocation
    ) async throws {
        let (actual, body) = try await request(method, path, token: token, json: json, raw: raw, headers: headers)
        #expect(actual == status, "\(method) \(path): \(String(decoding: body, as: UTF8.self))", sourceLocation: sourceLocation)
        let error = try? APIJSON.makeDecoder().decode(APIErrorBody.self, from: body)
        #expect(error?.error.code == code, "\(method) \(path): \(String(decoding: body, as: UTF8.self))", sourceLocation: sourceLocation)
    }
}
