import Foundation
import Logging
import PostgresNIO
import Testing

/// The databases the server tests run against: SQLite always, PostgreSQL when
/// `SECURECHAT_TEST_POSTGRES_URL` names a server (`.ci/run` starts one and sets it).
enum TestDatabase: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case sqlite
    case postgres

    static let postgresURL = ProcessInfo.processInfo.environment["SECURECHAT_TEST_POSTGRES_URL"].flatMap { $0.isEmpty ? nil : $0 }

    /// What the parameterised tests run on here.
    static var available: [TestDatabase] { postgresURL == nil ? [.sqlite] : [.sqlite, .postgres] }

    var testDescription: String { rawValue }

    /// A database URL for one test: its own schema, dropped afterwards by ``dropSchema(_:)``.
    static func isolatedPostgresURL() -> (url: String, schema: String)? {
        guard let base = postgresURL else { return nil }
        let schema = "t_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        return (base + (base.contains("?") ? "&" : "?") + "schema=\(schema)", schema)
    }

    static func dropSchema(_ schema: String) async {
        _ = try? await execute("DROP SCHEMA IF EXISTS \(schema) CASCADE")
    }

    /// Runs one statement on the test server as its own connection (identifiers in `sql` must be
    /// safe already: they come from the tests, never from input).
    @discardableResult
    static func execute(_ sql: String) async throws -> Int {
        guard let base = postgresURL, let components = URLComponents(string: base), let host = components.host,
            let user = components.user
        else { return 0 }
        let configuration = PostgresClient.Configuration(
            host: host, port: components.port ?? 5432, username: user, password: components.password,
            database: String(components.path.drop { $0 == "/" }), tls: .disable)
        let client = PostgresClient(configuration: configuration, backgroundLogger: Logger(label: "test-database"))
        let run = Task { await client.run() }
        let result: Result<Int, any Error>
        do {
            result = .success(try await client.query(PostgresQuery(unsafeSQL: sql)).collect().count)
        } catch {
            result = .failure(error)
        }
        run.cancel()
        await run.value
        return try result.get()
    }
}

@Suite("Database coverage")
struct DatabaseCoverageTests {
    @Test(
        "PostgreSQL: every parameterised server test also runs against a real PostgreSQL server",
        .enabled(if: TestDatabase.postgresURL != nil, "PostgreSQL tests skipped: set SECURECHAT_TEST_POSTGRES_URL (scripts/test does when PostgreSQL is installed)"))
    func postgresIsCovered() async throws {
        #expect(TestDatabase.available.contains(.postgres))
        try await TestServer.withLive(database: .postgres) { server in
            let (status, body) = try await server.request(.get, "/ready")
            #expect(status == .ok, "\(String(decoding: body, as: UTF8.self))")
        }
    }
}
