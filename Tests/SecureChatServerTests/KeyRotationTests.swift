import Foundation
import Logging
import SecureChatAPI
import Testing

@testable import SecureChatServer

@Suite("At-rest key rotation")
struct KeyRotationTests {
    @Test("rotation re-seals stored messages: after it the old key can be deleted and everything still reads", arguments: TestDatabase.available)
    func rotateAtRestKey(database: TestDatabase) async throws {
        let environment = try TestEnvironment(database: database)
        let clock = ManualClock()
        // Given a room message in history and a pairwise message queued for an offline device
        let (alice, bob, room) = try await TestServer.withLive(environment: environment, clock: clock) { server in
            let alice = try await TestUser.make("alice", on: server)
            let bob = try await TestUser.make("bob", on: server)
            let room = try await RoomTests.createRoom(server, alice)
            try await RoomTests.join(server, bob, room)
            let socket = try await TestSocket.connect(alice, port: server.port)
            try await socket.send(.send(.init(id: "room-1", room: room.code, ciphertext: Data("room secret".utf8))))
            _ = try await socket.next(matching: RealtimeTests.accepted)
            try await socket.send(RealtimeTests.pairwise("pair-1", to: bob, "pairwise secret"))
            _ = try await socket.next(matching: RealtimeTests.accepted)
            await socket.close()
            return (alice, bob, room)
        }
        let keyFolder = environment.directory.appendingPathComponent("secrets/at-rest-keys")
        let oldKeys = try FileManager.default.contentsOfDirectory(atPath: keyFolder.path)
        #expect(oldKeys.count == 1)

        // When the key is rotated and the old one removed
        let report = try await KeyRotation.rotateAtRestKey(
            configuration: environment.configuration(clock: clock), removeOldKeys: true, logger: Logger(label: "rotation"))
        #expect(report.resealed == 2)
        #expect(report.removedKeyIds.map { "\($0).key" } == oldKeys)
        let newKeys = try FileManager.default.contentsOfDirectory(atPath: keyFolder.path)
        #expect(newKeys == ["\(try #require(report.newKeyId)).key"])

        // Then both messages still read, under the new key only
        try await TestServer.withLive(environment: environment, clock: clock) { server in
            let history = try await server.call(.get, "/v1/rooms/\(room.code)/messages", token: bob.accessToken, as: HistoryPage.self)
            #expect(history.messages.map(\.ciphertext) == [Data("room secret".utf8)])
            let socket = try await TestSocket.connect(bob, port: server.port)
            var texts: [String] = []
            while texts.count < 2, let delivery = try await socket.next(matching: RealtimeTests.message) {
                texts.append(String(decoding: delivery.ciphertext, as: UTF8.self))
            }
            #expect(texts == ["room secret", "pairwise secret"])
            await socket.close()
            _ = alice
        }
        // A second rotation without new data re-seals nothing more than what exists.
        let again = try await KeyRotation.rotateAtRestKey(
            configuration: environment.configuration(clock: clock), addKey: false, logger: Logger(label: "rotation"))
        #expect(again.resealed == 0)
        await environment.cleanUp()
    }
}

@Suite("Key rings")
struct KeyRingTests {
    @Test("a new key always becomes current, even several within one second")
    func newestIsCurrent() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("securechat-keyring-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        let first = try KeyRing.load(folder: folder)
        let now = Date()
        var previous = first.currentId
        for _ in 0..<5 {
            let added = try KeyRing.addKey(folder: folder, now: now)
            let ring = try KeyRing.load(folder: folder)
            #expect(ring.currentId == added)
            #expect(added > previous)
            previous = added
        }
        // A clock that stepped back does not demote the newest key either.
        let earlier = try KeyRing.addKey(folder: folder, now: now.addingTimeInterval(-3600))
        #expect(try KeyRing.load(folder: folder).currentId == earlier)
        #expect(try KeyRing.load(folder: folder).keys.count == 7)
    }
}
