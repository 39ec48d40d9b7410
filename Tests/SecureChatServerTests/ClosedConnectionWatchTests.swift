import Foundation
import Logging
import NIOPosix
import PostgresNIO
import Testing

@testable import SecureChatServer

/// The watch that stops a query lost on a closed connection from waiting forever (the writer hang
/// that `DatabaseRestartTests` exposed), on real connections to the test PostgreSQL server.
@Suite(
    "Queries on a closed PostgreSQL connection",
    .enabled(if: TestDatabase.postgresURL != nil, "PostgreSQL tests skipped: set SECURECHAT_TEST_POSTGRES_URL"),
    // Without the watch, the lost-work test would wait forever.
    .timeLimit(.minutes(1)))
struct ClosedConnectionWatchTests {
    static let logger = Logger(label: "closed-connection-watch-test")

    static func connect() async throws -> PostgresConnection {
        let url = try #require(TestDatabase.postgresURL.flatMap(URLComponents.init(string:)))
        let configuration = PostgresConnection.Configuration(
            host: try #require(url.host), port: url.port ?? 5432, username: try #require(url.user), password: url.password,
            database: String(url.path.drop { $0 == "/" }), tls: .disable)
        return try await PostgresConnection.connect(
            on: MultiThreadedEventLoopGroup.singleton.any(), configuration: configuration, id: 1, logger: logger
        ).get()
    }

    @Test("Work that finishes answers with its value or its own error, and a closed connection is forgotten")
    func passesThrough() async throws {
        let watch = ClosedConnectionWatch(grace: .milliseconds(100))
        let connection = try await Self.connect()
        let value = try await watch.run(on: connection, logger: Self.logger) {
            try await connection.query("SELECT 41 + 1", logger: Self.logger).collect().first?.decode(Int.self)
        }
        #expect(value == 42)
        await #expect(throws: PSQLError.self) {
            try await watch.run(on: connection, logger: Self.logger) {
                try await connection.query("SELECT * FROM no_such_table", logger: Self.logger).collect().count
            }
        }
        #expect(watch.watchedConnectionCount == 1)
        try await connection.close()
        try await Task.sleep(for: .milliseconds(500))
        #expect(watch.watchedConnectionCount == 0)
    }

    /// Runs `work` under `watch`, closes the connection while it runs, and returns how `run` ended.
    /// `ready`: what to wait for before closing (the work must be under way).
    static func closeDuring(
        _ watch: ClosedConnectionWatch, ready: @Sendable () async throws -> Bool = { true },
        _ work: @escaping @Sendable (PostgresConnection) async throws -> Int
    ) async throws -> Result<Int, any Error> {
        let connection = try await connect()
        let running = Task { () -> Result<Int, any Error> in
            do { return .success(try await watch.run(on: connection, logger: logger) { try await work(connection) }) } catch { return .failure(error) }
        }
        try await Task.sleep(for: .milliseconds(100))
        let deadline = ContinuousClock.now + .seconds(20)
        while try await !ready(), ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
        try await connection.close()
        return await running.value
    }

    @Test("A query failed by the connection's close reports that failure, not a lost query")
    func closeFailsQuery() async throws {
        let marker = "closed-connection-watch-\(UUID().uuidString)"
        // Closed only once PostgreSQL runs the query: then it is in flight, not a write NIO could drop.
        let running: @Sendable () async throws -> Bool = {
            try await TestDatabase.execute("SELECT 1 FROM pg_stat_activity WHERE state = 'active' AND query LIKE '%\(marker)%' AND query NOT LIKE '%pg_stat_activity%'") > 0
        }
        let result = try await Self.closeDuring(ClosedConnectionWatch(grace: .seconds(30)), ready: running) { connection in
            try await connection.query(PostgresQuery(unsafeSQL: "SELECT pg_sleep(30) /* \(marker) */"), logger: Self.logger).collect().count
        }
        guard case .failure(let error) = result else {
            Issue.record("the query answered \(result) after its connection closed")
            return
        }
        #expect(error is PSQLError, "\(error)")
    }

    @Test("Work still waiting once its connection has been closed for the grace period gets PostgresConnectionLost")
    func lostWorkIsAnswered() async throws {
        let watch = ClosedConnectionWatch(grace: .milliseconds(200))
        // Stands in for a query whose write NIO dropped: it would never answer by itself.
        let neverAnswered = AsyncStream<Int>.makeStream()
        defer { neverAnswered.continuation.finish() }
        let result = try await Self.closeDuring(watch) { _ in
            for await value in neverAnswered.stream { return value }
            return -1
        }
        guard case .failure(let error) = result else {
            Issue.record("the watch let the work answer \(result)")
            return
        }
        #expect(error is PostgresConnectionLost, "\(error)")
        #expect(watch.watchedConnectionCount == 0)
    }
}
