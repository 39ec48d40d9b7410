import Foundation
import SecureChatAPI
import Testing

@testable import SecureChatClient

/// Clients of the SDK talking through the real server binary over loopback.
@Suite("End to end through the real server", .serialized)
struct EndToEndTests {
    @Test("1:1 both ways, live: every message decrypts, is archived on both sides, and the server keeps no plaintext")
    func directBothWays() async throws {
        let server = try ServerBinary()
        defer { server.stop() }
        let aliceDirectory = temporaryDirectory("alice")
        let bobDirectory = temporaryDirectory("bob")
        defer {
            try? FileManager.default.removeItem(at: aliceDirectory)
            try? FileManager.default.removeItem(at: bobDirectory)
        }
        let alice = try await SecureChatClient.registerForTesting(server: server.url, username: "alice", password: "alice password 1", directory: aliceDirectory)
        let bob = try await SecureChatClient.registerForTesting(server: server.url, username: "bob", password: "bob password 12", directory: bobDirectory)
        let aliceEvents = EventLog(alice)
        let bobEvents = EventLog(bob)
        await alice.connect()
        await bob.connect()
        await alice.waitUntilCaughtUp()
        await bob.waitUntilCaughtUp()

        let secret = "the eagle lands at midnight"
        let sent = try await alice.send(secret, to: "bob")
        try await alice.flush()
        let received = try await bobEvents.message()
        #expect(received.envelope == sent.envelope)
        #expect(received.conversation == .direct(userId: await alice.userId))
        #expect(received.sender == (await alice.address))
        #expect(!received.outgoing && received.unconfirmedSender == nil)

        let reply = "copy that, over and out"
        try await bob.send(.text(reply, replyTo: sent.id), to: "alice")
        try await bob.flush()
        let answer = try await aliceEvents.message()
        #expect(answer.envelope.content == .text(reply, replyTo: sent.id))

        // Several in a row keep their order.
        for index in 1...20 { try await alice.send("burst \(index)", to: "bob") }
        try await alice.flush()
        #expect(try await bobEvents.texts(20) == (1...20).map { "burst \($0)" })

        let aliceHistory = try await alice.history(.direct(userId: await bob.userId))
        let bobHistory = try await bob.history(.direct(userId: await alice.userId))
        #expect(aliceHistory.count == 22 && bobHistory.count == 22)
        #expect(aliceHistory.first?.envelope == sent.envelope && aliceHistory.first?.outgoing == true)
        #expect(bobHistory.map(\.envelope.content) == aliceHistory.map(\.envelope.content))

        await alice.close()
        await bob.close()
        let stored = try server.storedBytes()
        for text in [secret, reply, "burst 20"] {
            #expect(stored.range(of: Data(text.utf8)) == nil, "the server stored \"\(text)\" in the clear")
        }
        // Nor does either local store.
        for directory in [aliceDirectory, bobDirectory] {
            let local = try Data(contentsOf: directory.appendingPathComponent(LocalStore.fileName))
                + ((try? Data(contentsOf: directory.appendingPathComponent(LocalStore.fileName + "-wal"))) ?? Data())
            #expect(local.range(of: Data(secret.utf8)) == nil)
            #expect(local.range(of: Data(reply.utf8)) == nil)
        }
    }

    @Test("offline delivery and restarts: queued sends go out on reconnect; sessions and archive survive reopening the store")
    func offlineAndRestart() async throws {
        let server = try ServerBinary()
        defer { server.stop() }
        let aliceDirectory = temporaryDirectory("alice")
        let bobDirectory = temporaryDirectory("bob")
        defer {
            try? FileManager.default.removeItem(at: aliceDirectory)
            try? FileManager.default.removeItem(at: bobDirectory)
        }
        var alice = try await SecureChatClient.registerForTesting(server: server.url, username: "alice", password: "alice password 1", directory: aliceDirectory)
        var bob = try await SecureChatClient.registerForTesting(server: server.url, username: "bob", password: "bob password 12", directory: bobDirectory)
        let bobId = await bob.userId
        await bob.close()

        // Alice is offline too: her sends wait in her outbox.
        for index in 1...3 { try await alice.send("while away \(index)", to: "bob") }
        await alice.close()
        alice = try await SecureChatClient.open(directory: aliceDirectory, passphrase: "test passphrase")
        await alice.connect()
        try await alice.flush()

        // Bob comes back from disk and gets all three, in order.
        bob = try await SecureChatClient.open(directory: bobDirectory, passphrase: "test passphrase")
        var bobEvents = EventLog(bob)
        await bob.connect()
        #expect(try await bobEvents.texts(3) == ["while away 1", "while away 2", "while away 3"])
        await bob.waitUntilCaughtUp()
        await bob.close()

        // Reopened again: nothing is delivered twice, and the sessions carry on both ways.
        bob = try await SecureChatClient.open(directory: bobDirectory, passphrase: "test passphrase")
        bobEvents = EventLog(bob)
        let aliceEvents = EventLog(alice)
        await bob.connect()
        await bob.waitUntilCaughtUp()
        try await bob.send("back now", to: "alice")
        try await bob.flush()
        #expect(try await aliceEvents.texts(1) == ["back now"])
        try await alice.send("welcome back", to: "bob")
        try await alice.flush()
        #expect(try await bobEvents.texts(1) == ["welcome back"])
        #expect(try await bob.history(.direct(userId: await alice.userId)).count == 5)
        #expect(try await alice.history(.direct(userId: bobId)).count == 5)
        await alice.close()
        await bob.close()
    }

    @Test("a new device of a known contact holds sending until the change is accepted; then every device gets the message")
    func identityChangeHoldsSending() async throws {
        let server = try ServerBinary()
        defer { server.stop() }
        let directories = ["alice", "bob", "bob2"].map(temporaryDirectory)
        defer { for directory in directories { try? FileManager.default.removeItem(at: directory) } }
        let alice = try await SecureChatClient.registerForTesting(server: server.url, username: "alice", password: "alice password 1", directory: directories[0])
        let bob = try await SecureChatClient.registerForTesting(server: server.url, username: "bob", password: "bob password 12", directory: directories[1])
        let aliceEvents = EventLog(alice)
        // Every send looks at Bob's devices afresh (by default a list is used for 10 seconds).
        await alice.setDeviceListLifetime(0)
        await alice.connect()
        try await alice.send("first", to: "bob")
        try await alice.flush()

        let bobLaptop = try await SecureChatClient.loginForTesting(server: server.url, username: "bob", password: "bob password 12", directory: directories[2])
        let bobId = await bob.userId
        await #expect(throws: ClientError.identityChanged(userId: bobId)) { try await alice.send("second", to: "bob") }
        let changed = try await aliceEvents.next("identity change") { if case .identityChanged(let contact) = $0 { contact } else { nil } }
        #expect(changed.changedDevices?.keys.sorted() == [await bobLaptop.deviceId])
        // Still held on a second try.
        await #expect(throws: ClientError.identityChanged(userId: bobId)) { try await alice.send("second", to: "bob") }
        // What the new device says arrives, marked: Alice has not accepted it.
        await bobLaptop.connect()
        try await bobLaptop.send("it's me, on my laptop", to: "alice")
        try await bobLaptop.flush()
        let unconfirmed = try await aliceEvents.message()
        #expect(unconfirmed.envelope.content == .text("it's me, on my laptop", replyTo: nil))
        #expect(unconfirmed.unconfirmedSender == true)
        await bobLaptop.disconnect()

        try await alice.acceptIdentityChange(of: bobId)
        try await alice.send("after accepting", to: "bob")
        try await alice.flush()
        for device in [bob, bobLaptop] {
            let events = EventLog(device)
            await device.connect()
            // Bob's first device also got his laptop's copy of what it sent.
            let texts = try await events.texts(device === bob ? 3 : 1)
            #expect(texts.last == "after accepting")
        }
        #expect(try await alice.safetyNumbers(with: bobId).count == 2)
        for client in [alice, bob, bobLaptop] { await client.close() }
    }

    @Test("refusals are precise: wrong passphrase, unknown user, taken username")
    func refusals() async throws {
        let server = try ServerBinary()
        defer { server.stop() }
        let directory = temporaryDirectory("alice")
        defer { try? FileManager.default.removeItem(at: directory) }
        let alice = try await SecureChatClient.registerForTesting(server: server.url, username: "alice", password: "alice password 1", directory: directory)
        await #expect(throws: ClientError.unknownUser("nobody")) { try await alice.send("hello?", to: "nobody") }
        await alice.close()
        await #expect(throws: ClientError.wrongPassphrase) { try await SecureChatClient.open(directory: directory, passphrase: "not it") }
        await #expect(throws: ClientError.localStateExists(directory.path)) {
            try await SecureChatClient.registerForTesting(server: server.url, username: "alice2", password: "alice password 1", directory: directory)
        }
        let other = temporaryDirectory("taken")
        defer { try? FileManager.default.removeItem(at: other) }
        do {
            _ = try await SecureChatClient.registerForTesting(server: server.url, username: "alice", password: "alice password 1", directory: other)
            Issue.record("a taken username was registered again")
        } catch {
            guard case .server(409, _, _) = error else {
                Issue.record("unexpected \(error)")
                return
            }
        }
        // The failed registration left no store behind: the folder can be used again.
        #expect(!LocalStore.exists(in: other))
    }
}

@Suite("Sessions with the server", .serialized)
struct ServerSessionTests {
    @Test("an access token near its end is refreshed before use; the rotation is stored and the next start uses it")
    func tokenRefresh() async throws {
        let server = try ServerBinary()
        defer { server.stop() }
        let directories = ["alice", "bob"].map(temporaryDirectory)
        defer { for directory in directories { try? FileManager.default.removeItem(at: directory) } }
        var alice = try await SecureChatClient.registerForTesting(server: server.url, username: "alice", password: "alice password 1", directory: directories[0])
        let bob = try await SecureChatClient.registerForTesting(server: server.url, username: "bob", password: "bob password 12", directory: directories[1])
        let bobEvents = EventLog(bob)
        await bob.connect()
        let before = await alice.account
        await alice.expireAccessTokenForTesting()
        try await alice.send("after a refresh", to: "bob")
        let after = await alice.account
        #expect(after.accessToken != before.accessToken && after.refreshToken != before.refreshToken)
        await alice.close()
        // The rotated refresh token was stored: the old one is spent, the new one works.
        alice = try await SecureChatClient.open(directory: directories[0], passphrase: "test passphrase")
        #expect(await alice.account.refreshToken == after.refreshToken)
        await alice.expireAccessTokenForTesting()
        await alice.connect()
        try await alice.flush()
        #expect(try await bobEvents.texts(1) == ["after a refresh"])
        await alice.close()
        await bob.close()
    }

    @Test("many calls needing a refresh at once share one refresh (a refresh token used twice would end the session)")
    func concurrentRefresh() async throws {
        try await withAliceAndBob { server, alice, bob, directories in
            let bobEvents = EventLog(bob)
            await bob.connect()
            await alice.expireAccessTokenForTesting()
            await alice.connect()
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<6 { group.addTask { try await alice.send("together \(index)", to: "bob") } }
                try await group.waitForAll()
            }
            try await alice.flush()
            #expect(Set(try await bobEvents.texts(6)) == Set((0..<6).map { "together \($0)" }))
            // Still logged in afterwards.
            #expect(try await alice.devices().count == 1)
        }    }

    @Test("a room key naming something that is not a room of ours is refused; the store still opens")
    func hostileRoomKey() async throws {
        let server = try ServerBinary()
        defer { server.stop() }
        let directories = ["alice", "mallory"].map(temporaryDirectory)
        defer { for directory in directories { try? FileManager.default.removeItem(at: directory) } }
        var alice = try await SecureChatClient.registerForTesting(server: server.url, username: "alice", password: "alice password 1", directory: directories[0])
        let mallory = try await SecureChatClient.registerForTesting(server: server.url, username: "mallory", password: "mallory password", directory: directories[1])
        let aliceEvents = EventLog(alice)
        await alice.connect()
        await mallory.connect()
        let key = Data(repeating: 7, count: 90)
        for room in ["x/a", "x/b", String(repeating: "z", count: 70_000), "abcdefghijklmnopqrst"] {
            try await mallory.send(.senderKey(room: room, distribution: key), to: "alice")
        }
        try await mallory.send("still friends?", to: "alice")
        try await mallory.flush()
        for _ in 0..<4 {
            let reason = try await aliceEvents.next("a refused room key") { if case .undecryptable(_, let reason) = $0 { reason } else { nil } }
            #expect(reason.contains("room key"))
        }
        #expect(try await aliceEvents.texts(1) == ["still friends?"])
        await alice.close()
        alice = try await SecureChatClient.open(directory: directories[0], passphrase: "test passphrase")
        #expect(await alice.senderKeyStores.isEmpty)
        await alice.close()
        await mallory.close()
    }

    @Test("a session the server ended (logout) stops the client with sessionEnded instead of retrying forever")
    func sessionEnded() async throws {
        let server = try ServerBinary()
        defer { server.stop() }
        let directory = temporaryDirectory("alice")
        defer { try? FileManager.default.removeItem(at: directory) }
        let alice = try await SecureChatClient.registerForTesting(server: server.url, username: "alice", password: "alice password 1", directory: directory)
        try await alice.logout()
        let reopened = try await SecureChatClient.open(directory: directory, passphrase: "test passphrase")
        let events = EventLog(reopened)
        await reopened.connect()
        _ = try await events.next("session ended") { if case .sessionEnded = $0 { true } else { nil } }
        await reopened.close()
    }
}
