import Foundation
import Logging
import NIOCore
import NIOPosix
import PostgresNIO
import Testing

@testable import SecureChatServer

@Suite("PostgreSQL prepared statements")
struct PreparedQueryTests {
    /// A prepared statement's text is fixed when it is first prepared on a connection: every
    /// instance must produce exactly that text, whatever its values, with one binding per placeholder.
    static let payload = ByteBuffer(bytes: [1, 2, 3])

    static let statements: [(sql: String, query: PostgresQuery)] = [
            (InboxPageQuery.sql, InboxPageQuery(deviceKey: 7, after: 99, limit: 500).query),
            (SocketDeviceQuery.sql, SocketDeviceQuery(sessionId: "s'; --", userId: "u", deviceId: 3, now: 1).query),
            (
                BatchLookupQuery.sql,
                BatchLookupQuery(userIds: ["a", "b"], deviceIds: [1, 2], clientMessageIds: ["x", "y"], recipientUserIds: ["c"], recipientDeviceIds: [3])
                    .query
            ),
            (RoomByCodeQuery.sql, RoomByCodeQuery(code: "abc").query),
            (RoomDevicesQuery.sql, RoomDevicesQuery(roomId: 4).query),
            (
                InsertMessagesQuery.sql,
                InsertMessagesQuery(
                    userIds: ["a"], deviceIds: [1], clientMessageIds: ["m"], roomIds: [0], keyIds: ["k"], payloads: [payload], sentAts: [1],
                    expiries: [2], ordinals: [0]
                ).query
            ),
            (LockDevicesQuery.sql, LockDevicesQuery(keys: [1, 2, 3]).query),
            (ReserveSequenceNumbersQuery.sql, ReserveSequenceNumbersQuery(keys: [1], counts: [2]).query),
            (
                FinishBatchQuery.sql,
                FinishBatchQuery(
                    .init(
                        keys: [1], seqs: [2], messageIds: [3], keyIds: [""], payloads: [payload], expiries: [4], acknowledgedKeys: [5],
                        acknowledgedSeqs: [6], wakeUps: ["{}"]),
                    channel: "securechat"
                ).query
            ),
    ]

    @Test("each statement's text is the same for any values, with matching bindings")
    func textIndependentOfValues() {
        for (sql, query) in Self.statements {
            #expect(query.sql == sql)
            let placeholders = Set(sql.matches(of: /\$(\d+)/).map { Int($0.output.1)! })
            #expect(placeholders == Set(1...query.binds.count), "\(sql)")
            #expect(!sql.contains("s'; --") && !sql.contains("securechat"), "values travel as bindings, never in the text")
        }
    }

    /// A generic plan made on an empty database must still reach `messages` and `inbox` through
    /// an index: it may be kept while those tables grow by millions of rows.
    @Test(
        "on a new, empty database, no generic plan scans messages or inbox whole",
        .enabled(if: TestDatabase.postgresURL != nil, "PostgreSQL tests skipped: set SECURECHAT_TEST_POSTGRES_URL"))
    func genericPlansUseIndexes() async throws {
        let logger = Logger(label: "prepared-query-test")
        let (url, schema) = try #require(TestDatabase.isolatedPostgresURL())
        let store = try await PostgresChatStore.connect(url: url, logger: logger)
        await store.shutdown()
        do {
            try await checkGenericPlans(url: url, schema: schema, logger: logger)
        } catch {
            await TestDatabase.dropSchema(schema)
            throw error
        }
        await TestDatabase.dropSchema(schema)
    }

    private func checkGenericPlans(url: String, schema: String, logger: Logger) async throws {

        let components = try #require(URLComponents(string: url))
        var configuration = PostgresConnection.Configuration(
            host: try #require(components.host), port: components.port ?? 5432, username: try #require(components.user),
            password: components.password, database: String(components.path.drop { $0 == "/" }), tls: .disable)
        configuration.options.additionalStartupParameters = [("search_path", schema)]
        let connection = try await PostgresConnection.connect(
            on: MultiThreadedEventLoopGroup.singleton.any(), configuration: configuration, id: 1, logger: logger
        ).get()
        do {
            try await checkGenericPlans(on: connection, logger: logger)
        } catch {
            try? await connection.close()
            throw error
        }
        try await connection.close()
    }

    private func checkGenericPlans(on connection: PostgresConnection, logger: Logger) async throws {
        _ = try await connection.query("SET plan_cache_mode = force_generic_plan", logger: logger).collect()
        let mode = try await connection.query("SHOW plan_cache_mode", logger: logger).collect().first?.decode(String.self)
        try #require(mode == "force_generic_plan")
        for (index, (sql, query)) in Self.statements.enumerated() {
            // A generic plan does not depend on the values: NULLs stand in for them.
            _ = try await connection.query(PostgresQuery(unsafeSQL: "PREPARE statement\(index) AS \(sql)"), logger: logger).collect()
            let nulls = Array(repeating: "NULL", count: query.binds.count).joined(separator: ", ")
            let plan = try await connection.query(PostgresQuery(unsafeSQL: "EXPLAIN EXECUTE statement\(index)(\(nulls))"), logger: logger)
                .collect().map { try $0.decode(String.self) }.joined(separator: "\n")
            #expect(!plan.contains("Seq Scan on messages") && !plan.contains("Seq Scan on inbox"), "\(sql)\n\(plan)")
        }
    }
}
