import Foundation
import Testing

/// Rules the server's sources keep, read from the files: what must never be written.
@Suite("Source rules")
struct SourceRuleTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func sources(under folder: String) throws -> [(name: String, text: String)] {
        let base = root.appendingPathComponent(folder)
        let names = try #require(FileManager.default.enumerator(atPath: base.path)).compactMap { $0 as? String }.filter { $0.hasSuffix(".swift") }
        return try names.sorted().map { ($0, try String(contentsOf: base.appendingPathComponent($0), encoding: .utf8)) }
    }

    /// SQL handed to GRDB as text (`sql:` strings, one line or a `"""` block) whose interpolations
    /// are not the column-list constants: each is a place where a value could become SQL.
    static func interpolatedSQL(in text: String) -> [String] {
        var findings: [String] = []
        var inBlock = false
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let isSQL = inBlock || line.contains("sql:")
            if line.contains("sql: \"\"\"") {
                inBlock = true
            } else if inBlock, line.trimmingCharacters(in: .whitespaces).hasPrefix("\"\"\"") {
                inBlock = false
            }
            guard isSQL, line.contains("\\(") else { continue }
            let withoutConstants = line.replacing(/\\\((Self\.)?[a-z][A-Za-z]*Columns\)/, with: "")
            if withoutConstants.contains("\\(") { findings.append(String(line)) }
        }
        return findings
    }

    @Test("SQL is never built from values: GRDB gets arguments, PostgresNIO binds its interpolations, unsafeSQL only for constants")
    func parameterisedSQL() throws {
        for (name, text) in try Self.sources(under: "Sources/SecureChatServer/Storage/SQLite") {
            #expect(Self.interpolatedSQL(in: text).isEmpty, "\(name): \(Self.interpolatedSQL(in: text))")
        }
        // The checker finds what it is for.
        #expect(Self.interpolatedSQL(in: #"try db.execute(sql: "DELETE FROM users WHERE id = '\(id)'")"#).count == 1)
        #expect(Self.interpolatedSQL(in: "try db.execute(sql: \"\"\"\n  SELECT 1 FROM t WHERE a = \\(value)\n  \"\"\")").count == 1)
        #expect(Self.interpolatedSQL(in: #"db.cachedStatement(sql: "SELECT \(deviceColumns) FROM devices")"#).isEmpty)

        var unsafe: [String] = []
        for (name, text) in try Self.sources(under: "Sources/SecureChatServer") {
            for line in text.split(separator: "\n") where line.contains("unsafeSQL:") { unsafe.append("\(name): \(line.trimmingCharacters(in: .whitespaces))") }
        }
        // The migrations' constant statements, and the schema name validated to [a-z0-9_] first.
        #expect(
            unsafe == [
                #"Storage/Postgres/PostgresChatStore.swift: try await store.client.query(PostgresQuery(unsafeSQL: "CREATE SCHEMA IF NOT EXISTS \(schema)"), logger: logger)"#,
                "Storage/Postgres/PostgresSchema.swift: try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)",
            ])
    }

    @Test("the server target never links the protocol's secret side")
    func serverDoesNotLinkProtocol() throws {
        for (name, text) in try Self.sources(under: "Sources/SecureChatServer") {
            #expect(!text.contains("import SecureChatProtocol"), "\(name)")
        }
    }
}
