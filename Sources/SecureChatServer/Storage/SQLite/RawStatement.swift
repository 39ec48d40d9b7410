import GRDB
import GRDBSQLite

/// One of GRDB's cached statements driven through SQLite's C interface.
///
/// The writer runs five statements for every 1:1 message. Profiled at full load, building GRDB's
/// `StatementArguments` and `Row` values cost as much CPU as SQLite's own work on them; binding and
/// reading columns directly skips that. A statement used here is used nowhere else through GRDB
/// (each is a distinct SQL string), and it is reset and its bindings cleared whenever a use ends,
/// so GRDB's cache only ever holds idle statements.
struct RawStatement {
    /// Held so that the SQLite statement outlives any eviction from GRDB's cache while in use.
    private let statement: Statement
    private let handle: OpaquePointer
    private let connection: OpaquePointer?

    /// Prepares (once per connection, through GRDB's cache) and resets the statement for `sql`.
    init(_ db: Database, _ sql: String) throws {
        statement = try db.cachedStatement(sql: sql)
        handle = statement.sqliteStatement
        connection = db.sqliteConnection
        sqlite3_reset(handle)
        sqlite3_clear_bindings(handle)
    }

    func bind(_ value: Int64, at index: Int32) {
        sqlite3_bind_int64(handle, index, value)
    }

    func bind(_ value: String, at index: Int32) {
        var value = value
        value.withUTF8 { bytes in
            _ = sqlite3_bind_text(handle, index, bytes.baseAddress, Int32(bytes.count), Self.transient)
        }
    }

    func bind(_ value: String?, at index: Int32) {
        if let value { bind(value, at: index) } else { sqlite3_bind_null(handle, index) }
    }

    func bind(_ bytes: [UInt8]?, at index: Int32) {
        guard let bytes else {
            sqlite3_bind_null(handle, index)
            return
        }
        guard !bytes.isEmpty else {
            // An empty blob, not NULL (sqlite3_bind_blob with no bytes stores NULL).
            sqlite3_bind_zeroblob(handle, index, 0)
            return
        }
        bytes.withUnsafeBytes { buffer in
            _ = sqlite3_bind_blob(handle, index, buffer.baseAddress, Int32(buffer.count), Self.transient)
        }
    }

    func bind(_ value: Int64?, at index: Int32) {
        if let value { bind(value, at: index) } else { sqlite3_bind_null(handle, index) }
    }

    /// Advances to the next row: true while there is one, false once the statement is done.
    func step() throws -> Bool {
        switch sqlite3_step(handle) {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        case let code:
            let message = connection.map { String(cString: sqlite3_errmsg($0)) }
            let sql = sqlite3_sql(handle).map { String(cString: $0) }
            finish()
            throw DatabaseError(resultCode: ResultCode(rawValue: code), message: message, sql: sql)
        }
    }

    func int64(at column: Int32) -> Int64 {
        sqlite3_column_int64(handle, column)
    }

    /// Runs a statement that returns no rows, and finishes it.
    func run() throws {
        while try step() {}
        finish()
    }

    /// Reads the first column of the first row, if any, and finishes the statement.
    func firstInt64() throws -> Int64? {
        defer { finish() }
        return try step() ? int64(at: 0) : nil
    }

    func finish() {
        sqlite3_reset(handle)
        sqlite3_clear_bindings(handle)
    }

    /// SQLITE_TRANSIENT: SQLite copies the bound bytes, which Swift only lends for the call.
    private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
}
