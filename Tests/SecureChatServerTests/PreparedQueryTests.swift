import NIOCore
import PostgresNIO
import Testing

@testable import SecureChatServer

@Suite("PostgreSQL prepared statements")
struct PreparedQueryTests {
    /// A prepared statement's text is fixed when it is first prepared on a connection: every
    /// instance must produce exactly that text, whatever its values, with one binding per placeholder.
    @Test("each statement's text is the same for any values, with matching bindings")
    func textIndependentOfValues() {
        let payload = ByteBuffer(bytes: [1, 2, 3])
        let statements: [(sql: String, query: PostgresQuery)] = [
            (InboxPageQuery.sql, InboxPageQuery(deviceKey: 7, after: 99, limit: 500).query),
            (SocketDeviceQuery.sql, SocketDeviceQuery(sessionId: "s'; --", userId: "u", deviceId: 3, now: 1).query),
            (StoredSendsQuery.sql, StoredSendsQuery(userIds: ["a", "b"], deviceIds: [1, 2], clientMessageIds: ["x", "y"]).query),
            (DeviceKeysQuery.sql, DeviceKeysQuery(userIds: ["a"], deviceIds: [1]).query),
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
                InsertInboxQuery.sql,
                InsertInboxQuery(keys: [1], seqs: [2], messageIds: [3], keyIds: [""], payloads: [payload], expiries: [4]).query
            ),
            (DeleteAcknowledgedQuery.sql, DeleteAcknowledgedQuery(keys: [1], seqs: [5]).query),
            (NotifyQuery.sql, NotifyQuery(channel: "securechat", payloads: ["{}"]).query),
        ]
        for (sql, query) in statements {
            #expect(query.sql == sql)
            let placeholders = Set(sql.matches(of: /\$(\d+)/).map { Int($0.output.1)! })
            #expect(placeholders == Set(1...query.binds.count), "\(sql)")
            #expect(!sql.contains("s'; --") && !sql.contains("securechat"), "values travel as bindings, never in the text")
        }
    }
}
