import Foundation
import SecureChatAPI
import SecureChatKeys
import SecureChatProtocol
import Testing

@testable import SecureChatClient

@Suite("Rooms end to end", .serialized)
struct RoomTests {
    @Test("three members talk in a room; a removed member's keys cannot read what is sent afterwards")
    func threeMembersAndRemoval() async throws {
        let server = try ServerBinary()
        defer { server.stop() }
        let directories = ["alice", "bob", "carol"].map(temporaryDirectory)
        defer { for directory in directories { try? FileManager.default.removeItem(at: directory) } }
        let alice = try await SecureChatClient.registerForTesting(server: server.url, username: "alice", password: "alice password 1", directory: directories[0])
        let bob = try await SecureChatClient.registerForTesting(server: server.url, username: "bob", password: "bob password 12", directory: directories[1])
        let carol = try await SecureChatClient.registerForTesting(server: server.url, username: "carol", password: "carol password", directory: directories[2])
        let (aliceEvents, bobEvents, carolEvents) = (EventLog(alice), EventLog(bob), EventLog(carol))

        let room = try await alice.createRoom(name: "plans", password: "room secret")
        await #expect(throws: ClientError.server(status: 403, code: .wrongRoomPassword, message: "wrong room password")) {
            try await bob.joinRoom(room.code, password: "guess")
        }
        _ = try await bob.joinRoom(room.code, password: "room secret")
        _ = try await carol.joinRoom(room.code, password: "room secret")
        for client in [alice, bob, carol] {
            await client.connect()
            await client.waitUntilCaughtUp()
        }
        // Alice owns the room and admits both (her room does not admit by itself).
        for client in [bob, carol] {
            let userId = await client.userId
            let joined = try await aliceEvents.next("a join to admit") { if case .unconfirmedMember(_, let id) = $0, id == userId { id } else { nil } }
            try await alice.admit(joined, to: room.code)
        }
        // Bob joined before Carol: he follows Alice's signed admission of her.
        let carolId = await carol.userId
        _ = try await bobEvents.next("Carol's admission") { if case .memberAdmitted(_, let id, _) = $0, id == carolId { id } else { nil } }

        try await alice.send("meet at noon", toRoom: room.code)
        try await alice.flush()
        for events in [bobEvents, carolEvents] {
            let message = try await events.message()
            #expect(message.envelope.content == .text("meet at noon", replyTo: nil))
            #expect(message.conversation == .room(code: room.code))
            #expect(message.sender == (await alice.address))
        }
        try await bob.send("I'll bring the map", toRoom: room.code)
        try await bob.flush()
        #expect(try await aliceEvents.texts(1) == ["I'll bring the map"])
        #expect(try await carolEvents.texts(1) == ["I'll bring the map"])

        // Carol is removed. Everyone hears of it; her copy of Bob's key is what she would try.
        let carolsKeys = try #require(await carol.senderKeyStores[room.code])
        let bobChainBefore = try #require(await bob.senderKeys[room.code]?.chainId)
        try await alice.removeMember(carolId, from: room.code)
        for events in [bobEvents, carolEvents] {
            let event = try await events.next("the removal") { if case .roomEvent(let event) = $0, event.change == .kicked { event } else { nil } }
            #expect(event.userId == carolId)
        }
        #expect(await carol.senderKeyStores[room.code] == nil)

        try await bob.send("new plan: one o'clock", toRoom: room.code)
        try await bob.flush()
        #expect(try await aliceEvents.texts(1) == ["new plan: one o'clock"])
        let bobChainAfter = try #require(await bob.senderKeys[room.code]?.chainId)
        #expect(bobChainAfter != bobChainBefore)
        // The ciphertext as the server stores it, tried with every key Carol held.
        let token = try await alice.validToken()
        let page: HistoryPage = try await alice.api.send(.GET, "/v1/rooms/\(room.code)/messages?limit=1", token: token)
        let newest = try #require(page.messages.first)
        #expect(newest.sender == (await bob.address))
        var stolen = carolsKeys
        #expect(throws: SenderKeyError.unknownChain(bobChainAfter)) { try stolen.decrypt([UInt8](newest.ciphertext)) }
        // Nothing reached Carol either.
        await #expect(throws: HarnessError.self) { try await carolEvents.message(timeout: 1) }

        let history = try await alice.history(.room(code: room.code))
        #expect(history.map(\.envelope.content) == [
            .text("meet at noon", replyTo: nil), .text("I'll bring the map", replyTo: nil), .text("new plan: one o'clock", replyTo: nil),
        ])
        for client in [alice, bob, carol] { await client.close() }
    }

    @Test("room keys survive a restart; with automatic admission a member who joins later reads what follows")
    func restartAndLateJoiner() async throws {
        let server = try ServerBinary()
        defer { server.stop() }
        let directories = ["alice", "bob", "dave"].map(temporaryDirectory)
        defer { for directory in directories { try? FileManager.default.removeItem(at: directory) } }
        var alice = try await SecureChatClient.registerForTesting(server: server.url, username: "alice", password: "alice password 1", directory: directories[0])
        let bob = try await SecureChatClient.registerForTesting(server: server.url, username: "bob", password: "bob password 12", directory: directories[1])
        let room = try await alice.createRoom(name: "open", autoAdmit: true)
        _ = try await bob.joinRoom(room.code)
        let bobEvents = EventLog(bob)
        await bob.connect()
        await alice.connect()
        let bobId = await bob.userId
        let aliceEvents = EventLog(alice)
        _ = try await aliceEvents.next("Bob admitted automatically") { if case .memberAdmitted(_, let id, _) = $0, id == bobId { id } else { nil } }
        try await alice.send("before restart", toRoom: room.code)
        try await alice.flush()
        #expect(try await bobEvents.texts(1) == ["before restart"])
        await alice.close()

        alice = try await SecureChatClient.open(directory: directories[0], passphrase: "test passphrase")
        let reopenedEvents = EventLog(alice)
        await alice.connect()
        try await alice.send("after restart", toRoom: room.code)
        try await alice.flush()
        #expect(try await bobEvents.texts(1) == ["after restart"])

        let dave = try await SecureChatClient.registerForTesting(server: server.url, username: "dave", password: "dave password 1", directory: directories[2])
        _ = try await dave.joinRoom(room.code)
        let daveEvents = EventLog(dave)
        await dave.connect()
        let daveId = await dave.userId
        _ = try await reopenedEvents.next("Dave admitted automatically") { if case .memberAdmitted(_, let id, _) = $0, id == daveId { id } else { nil } }
        try await alice.send("welcome dave", toRoom: room.code)
        try await alice.flush()
        #expect(try await daveEvents.texts(1) == ["welcome dave"])
        #expect(try await bobEvents.texts(1) == ["welcome dave"])
        #expect(try await dave.history(.room(code: room.code)).count == 1)
        for client in [alice, bob, dave] { await client.close() }
    }

    @Test("a member no admin admitted gets no keys and is reported; after admission they read along")
    func unadmittedMemberGetsNoKeys() async throws {
        let server = try ServerBinary()
        defer { server.stop() }
        let directories = ["alice", "bob", "mallory"].map(temporaryDirectory)
        defer { for directory in directories { try? FileManager.default.removeItem(at: directory) } }
        let alice = try await SecureChatClient.registerForTesting(server: server.url, username: "alice", password: "alice password 1", directory: directories[0])
        let bob = try await SecureChatClient.registerForTesting(server: server.url, username: "bob", password: "bob password 12", directory: directories[1])
        let mallory = try await SecureChatClient.registerForTesting(server: server.url, username: "mallory", password: "mallory password", directory: directories[2])
        let room = try await alice.createRoom(name: "closed")
        _ = try await bob.joinRoom(room.code)
        let (aliceEvents, bobEvents, malloryEvents) = (EventLog(alice), EventLog(bob), EventLog(mallory))
        for client in [alice, bob] { await client.connect() }
        let bobId = await bob.userId
        try await alice.admit(bobId, to: room.code)

        // Mallory gets in (as a server could put anyone in). Nobody admits her.
        _ = try await mallory.joinRoom(room.code)
        await mallory.connect()
        let malloryId = await mallory.userId
        _ = try await aliceEvents.next("Mallory reported") { if case .unconfirmedMember(_, let id) = $0, id == malloryId { id } else { nil } }
        try await alice.send("for admitted eyes", toRoom: room.code)
        try await alice.flush()
        #expect(try await bobEvents.texts(1) == ["for admitted eyes"])
        #expect(try await alice.unconfirmedMembers(of: room.code) == [malloryId])
        // The ciphertext reached Mallory's device, but no key did.
        let refused = try await malloryEvents.next("Mallory cannot read") { if case .undecryptable(_, let reason) = $0 { reason } else { nil } }
        #expect(refused.contains("unknownDistribution"))
        #expect(await mallory.senderKeyStores[room.code] == nil)
        // A non-admin cannot admit.
        await #expect(throws: ClientError.notAdmin(room: room.code)) { try await bob.admit(malloryId, to: room.code) }
        // Mallory can speak (she holds her own key), but her messages come marked.
        try await mallory.send("let me in", toRoom: room.code)
        try await mallory.flush()
        let fromMallory = try await bobEvents.message()
        #expect(fromMallory.sender.userId == malloryId && fromMallory.unconfirmedSender == true)

        try await alice.admit(malloryId, to: room.code)
        _ = try await bobEvents.next("Mallory admitted for Bob too") { if case .memberAdmitted(_, let id, _) = $0, id == malloryId { id } else { nil } }
        try await alice.send("now everyone", toRoom: room.code)
        try await alice.flush()
        #expect(try await malloryEvents.texts(1) == ["now everyone"])
        for client in [alice, bob, mallory] { await client.close() }
    }
}
