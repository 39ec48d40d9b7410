import Foundation
import NIOWebSocket
import SecureChatAPI
import Testing

/// What the sender saw accepted and what the receiver's application processed, shared by the
/// tasks that drive the two sockets.
private actor Tally {
    var accepted: [Int] = []
    var received: [Int] = []
    var lastSeq: Int64 = 0

    func accept(_ index: Int) { accepted.append(index) }

    /// Application-level processing: a delivery is handled once, by its sequence number.
    func receive(seq: Int64, index: Int) -> Bool {
        guard seq > lastSeq else { return false }
        lastSeq = seq
        received.append(index)
        return true
    }
}

@Suite("Durability of the real server binary", .serialized)
struct DurabilityTests {
    static let messageCount = 3000

    @Test(
        "kill -9 twice during sustained traffic: nothing acknowledged is lost, nothing is processed twice, order holds",
        arguments: TestDatabase.available)
    func killNine(database: TestDatabase) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("securechat-kill-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let server = try ServerProcess(dataDirectory: directory, database: database)
        try server.start()
        defer { server.stop(signal: SIGKILL) }
        let alice = try await TestUser.make("alice", on: server)
        let bob = try await TestUser.make("bob", on: server)
        let tally = Tally()

        for round in 0..<3 {
            let aliceSocket = try await TestSocket.connect(alice, port: server.port)
            let bobSocket = try await TestSocket.connect(bob, port: server.port, resumeAfter: await tally.lastSeq)
            let crashAfter = round < 2 ? (round + 1) * Self.messageCount / 3 + 37 : nil
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await Self.send(from: aliceSocket, to: bob, tally: tally) }
                group.addTask { try await Self.receive(on: bobSocket, tally: tally) }
                if let crashAfter {
                    while await tally.accepted.count < crashAfter { try await Task.sleep(for: .milliseconds(5)) }
                    server.stop(signal: SIGKILL)
                }
                try await group.waitForAll()
            }
            await aliceSocket.close()
            await bobSocket.close()
            if crashAfter != nil { try server.start() }
        }
        let received = await tally.received
        #expect(received.count == Self.messageCount)
        // Compared element by element so that a failure names the first difference, not 3,000 numbers.
        let firstDifference = zip(received, 0..<Self.messageCount).first { $0 != $1 }
        #expect(firstDifference == nil, "processed \(firstDifference.map { "\($0.0)" } ?? "") where \(firstDifference.map { "\($0.1)" } ?? "") was due")
        #expect(Set(await tally.accepted).isSubset(of: Set(received)))
        server.stop(signal: SIGKILL)
        await server.cleanUp()
    }

    /// Sends every message not yet accepted, in order, keeping 100 unanswered in flight so that a
    /// crash always catches some stored but not yet acknowledged; stops when the socket dies.
    private static func send(from socket: TestSocket, to bob: TestUser, tally: Tally) async throws {
        var acknowledged = (await tally.accepted.last).map { $0 + 1 } ?? 0
        var sent = acknowledged
        while acknowledged < messageCount {
            while sent < messageCount, sent - acknowledged < 100 {
                do {
                    try await socket.send(
                        .send(.init(id: "m\(sent)", recipients: [.init(userId: bob.userId, deviceId: bob.deviceId, ciphertext: Data("\(sent)".utf8))])))
                } catch {
                    return
                }
                sent += 1
            }
            guard let accepted = try await socket.next(timeout: 30, matching: RealtimeTests.accepted) else { return }
            #expect(accepted.id == "m\(acknowledged)")
            await tally.accept(acknowledged)
            acknowledged += 1
        }
    }

    /// Processes deliveries and acknowledges every 50, until all arrived or the socket died.
    private static func receive(on socket: TestSocket, tally: Tally) async throws {
        while await tally.received.count < messageCount {
            guard let delivery = try await socket.next(timeout: 30, matching: RealtimeTests.message) else { return }
            let index = Int(String(decoding: delivery.ciphertext, as: UTF8.self)) ?? -1
            if await tally.receive(seq: delivery.seq, index: index), delivery.seq % 50 == 0 {
                try? await socket.send(.ack(.init(seq: delivery.seq)))
            }
        }
        try? await socket.send(.ack(.init(seq: await tally.lastSeq)))
    }

    @Test(
        "SIGTERM drains: sockets get a close frame, silent connections do not hold it up, the process exits cleanly, and accepted messages survive",
        arguments: TestDatabase.available)
    func gracefulShutdown(database: TestDatabase) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("securechat-term-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let server = try ServerProcess(dataDirectory: directory, database: database)
        try server.start()
        defer { server.stop(signal: SIGKILL) }
        let alice = try await TestUser.make("alice", on: server)
        let bob = try await TestUser.make("bob", on: server)
        let aliceSocket = try await TestSocket.connect(alice, port: server.port)
        for index in 0..<200 {
            try await aliceSocket.send(
                .send(.init(id: "t\(index)", recipients: [.init(userId: bob.userId, deviceId: bob.deviceId, ciphertext: Data("\(index)".utf8))])))
        }
        var accepted = 0
        while accepted < 200, try await aliceSocket.next(matching: RealtimeTests.accepted) != nil { accepted += 1 }
        #expect(accepted == 200)
        // Connections that never finish a request, or never say hello, must not hold it up.
        let silent = try await RawWebSocket.silent(port: server.port)
        let speechless = try await RawWebSocket.connect(port: server.port)
        #expect(speechless.status == 101)
        let status = server.stop(signal: SIGTERM)
        #expect(status == 0)
        #expect(await aliceSocket.closeCode() == .normalClosure)
        #expect(await silent.waitForEnd(timeout: .seconds(1)))
        #expect(await speechless.waitForEnd(timeout: .seconds(1)))
        try server.start()
        let bobSocket = try await TestSocket.connect(bob, port: server.port)
        var texts: [String] = []
        while texts.count < 200, let delivery = try await bobSocket.next(matching: RealtimeTests.message) {
            texts.append(String(decoding: delivery.ciphertext, as: UTF8.self))
        }
        #expect(texts == (0..<200).map { "\($0)" })
        await bobSocket.close()
        server.stop(signal: SIGKILL)
        await server.cleanUp()
    }

    @Test(
        "SIGTERM in the middle of a burst of authentications: the process still exits cleanly",
        arguments: TestDatabase.available)
    func shutdownDuringAuthentication(database: TestDatabase) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("securechat-term-auth-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let server = try ServerProcess(dataDirectory: directory, database: database)
        try server.start()
        defer { server.stop(signal: SIGKILL) }
        let alice = try await TestUser.make("alice", on: server)
        let hello = String(
            decoding: try APIJSON.makeEncoder().encode(ClientFrame.hello(.init(token: alice.accessToken, deviceId: alice.deviceId))),
            as: UTF8.self)
        // A shutdown once hung closing the database under a read in flight (SQLiteUpkeepTests
        // reproduces that exactly); here the real binary is stopped mid-burst, twice.
        for round in 0..<2 {
            if round > 0 { try server.start() }
            var sockets: [RawWebSocket] = []
            for _ in 0..<40 { sockets.append(try await RawWebSocket.connect(port: server.port)) }
            for socket in sockets { try await socket.sendText(hello) }
            let status = server.stop(signal: SIGTERM, patience: 15)
            #expect(status == 0, "round \(round): the server did not exit on SIGTERM (status \(status))")
            for socket in sockets { await socket.close() }
        }
        await server.cleanUp()
    }
}
