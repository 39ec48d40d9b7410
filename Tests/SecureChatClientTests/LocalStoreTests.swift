import Foundation
import GRDB
import Testing

@testable import SecureChatClient

@Suite("Local store")
struct LocalStoreTests {
    private func withStore(_ body: (URL, LocalStore) throws -> Void) throws {
        let directory = temporaryDirectory("store")
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try LocalStore.create(in: directory, passphrase: "correct horse", cost: .testing)
        defer { store.close() }
        try body(directory, store)
    }

    @Test("records and archive entries come back exactly, from a reopened store too")
    func roundTrip() throws {
        try withStore { directory, store in
            var changes = LocalStore.Changes()
            changes.put(.session, "bob.1", Data([1, 2, 3]))
            changes.put(.session, "carol.2", Data(repeating: 7, count: 5000))
            changes.put(.contact, "bob", Data("bob's contact".utf8))
            changes.archive("direct:bob", Data("first".utf8))
            changes.archive("direct:bob", Data("second".utf8))
            changes.archive("direct:carol", Data("other".utf8))
            try store.commit(changes)
            var update = LocalStore.Changes()
            update.put(.session, "bob.1", Data([4]))
            update.delete(.session, "carol.2")
            try store.commit(update)
            // One process at a time: a second opening waits for the first to close.
            #expect(throws: ClientError.storeInUse(directory.path)) { try LocalStore.open(in: directory, passphrase: "correct horse") }
            store.close()

            let reopened = try LocalStore.open(in: directory, passphrase: "correct horse")
            defer { reopened.close() }
            #expect(try reopened.record(.session, "bob.1") == Data([4]))
            #expect(try reopened.record(.session, "carol.2") == nil)
            #expect(try reopened.records(.session).map(\.name) == ["bob.1"])
            #expect(try reopened.record(.contact, "bob") == Data("bob's contact".utf8))
            // Kinds are separate name spaces.
            #expect(try reopened.record(.contact, "bob.1") == nil)
            #expect(try reopened.archive(conversation: "direct:bob", limit: 10) == [Data("first".utf8), Data("second".utf8)])
            #expect(try reopened.archive(conversation: "direct:bob", limit: 1) == [Data("second".utf8)])
        }
    }

    @Test("a wrong passphrase is refused before anything is read")
    func wrongPassphrase() throws {
        try withStore { directory, store in
            store.close()
            #expect(throws: ClientError.wrongPassphrase) { try LocalStore.open(in: directory, passphrase: "correct horse ") }
            #expect(throws: ClientError.wrongPassphrase) { try LocalStore.open(in: directory, passphrase: "") }
        }
    }

    @Test("names and values never appear in the file")
    func nothingInTheClear() throws {
        try withStore { directory, store in
            var changes = LocalStore.Changes()
            changes.put(.contact, "zebra-contact-name", Data("zebra-contact-value".utf8))
            changes.archive("direct:zebra-conversation", Data("zebra-archived-text".utf8))
            changes.enqueue(id: "zebra-id", Data("zebra-queued-frame".utf8))
            try store.commit(changes)
            var bytes = Data()
            for suffix in ["", "-wal"] {
                bytes += (try? Data(contentsOf: directory.appendingPathComponent(LocalStore.fileName + suffix))) ?? Data()
            }
            #expect(bytes.count > 1000)
            #expect(bytes.range(of: Data("zebra".utf8)) == nil)
        }
    }

    @Test("every flipped byte of a sealed record, and a record moved to another name, is refused")
    func tampering() throws {
        try withStore { directory, store in
            var changes = LocalStore.Changes()
            changes.put(.session, "bob.1", Data("session one".utf8))
            changes.put(.session, "bob.2", Data("session two".utf8))
            try store.commit(changes)
            let database = try DatabaseQueue(path: directory.appendingPathComponent(LocalStore.fileName).path)
            defer { try? database.close() }
            let rows = try database.read { db in
                try Row.fetchAll(db, sql: "SELECT name, value FROM records ORDER BY name").map { ($0["name"] as Data, $0["value"] as Data) }
            }
            try #require(rows.count == 2)
            let (name, original) = rows[0]
            for offset in 0..<original.count {
                var tampered = original
                tampered[tampered.startIndex + offset] ^= 0x01
                try database.write { try $0.execute(sql: "UPDATE records SET value = ? WHERE name = ?", arguments: [tampered, name]) }
                #expect(throws: ClientError.self, "byte \(offset)") { try store.records(.session) }
            }
            // The other record's value under this name: it authenticates only under its own.
            try database.write { try $0.execute(sql: "UPDATE records SET value = ? WHERE name = ?", arguments: [rows[1].1, name]) }
            #expect(throws: ClientError.corruptLocalState("a record does not authenticate")) { try store.records(.session) }
            try database.write { try $0.execute(sql: "UPDATE records SET value = ? WHERE name = ?", arguments: [original, name]) }
            #expect(try store.records(.session).count == 2)
        }
    }
}
