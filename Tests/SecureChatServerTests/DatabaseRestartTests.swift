import Foundation
import SecureChatAPI
import Testing

/// PostgreSQL goes away under traffic and comes back: the server recovers by itself (its pool
/// reconnects, its listener listens again) and loses nothing it acknowledged.
extension RealBinaryTests {
    @Suite("PostgreSQL restarted under traffic", .serialized)
    struct DatabaseRestartTests {
        static let messageCount = 1500

        @Test(
            "PostgreSQL stopped for three seconds mid-traffic, then started: clients retry, nothing acknowledged is lost or processed twice, order holds",
            .enabled(if: ThrowawayPostgres.binaries != nil, "PostgreSQL tests skipped: this test starts its own PostgreSQL and needs its binaries"))
        func restartUnderTraffic() async throws {
            try await Self.withServer(named: "restart", arguments: ["--log-level", "debug"], Self.traffic)
        }

        @Test(
            "PostgreSQL frozen mid-batch, as a half-open connection: the batch gives up at its time limit and its send is refused, not held; after the thaw the send is stored once",
            .enabled(if: ThrowawayPostgres.binaries != nil, "PostgreSQL tests skipped: this test starts its own PostgreSQL and needs its binaries"))
        func frozenDatabase() async throws {
            try await Self.withServer(named: "frozen", arguments: ["--database-batch-timeout", "2"], Self.freezeAndThaw)
        }

        /// The server binary on a PostgreSQL of the test's own; its log is kept in
        /// `/tmp/securechat-pg-NAME.log`.
        static func withServer(
            named name: String, arguments: [String], _ body: (ServerProcess, ThrowawayPostgres) async throws -> Void
        ) async throws {
            let database = try #require(try await ThrowawayPostgres.make(port: try await TransportSecurityTests.freePort()))
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("securechat-pg-\(name)-\(UUID().uuidString)")
            let server = ServerProcess(dataDirectory: directory, databaseURL: database.url)
            defer { try? server.log.write(toFile: "/tmp/securechat-pg-\(name).log", atomically: true, encoding: .utf8) }
            do {
                try await server.start(extraArguments: arguments)
                try await body(server, database)
            } catch {
                server.stop(signal: SIGKILL)
                await database.remove()
                try? FileManager.default.removeItem(at: directory)
                throw error
            }
            #expect(server.stop(signal: SIGTERM) == 0)
            await database.remove()
            try? FileManager.default.removeItem(at: directory)
        }

        static func freezeAndThaw(server: ServerProcess, database: ThrowawayPostgres) async throws {
            let alice = try await TestUser.make("alice", on: server)
            let bob = try await TestUser.make("bob", on: server)
            func message(_ number: Int) -> ClientFrame {
                .send(.init(id: "m\(number)", recipients: [.init(userId: bob.userId, deviceId: bob.deviceId, ciphertext: Data("\(number)".utf8))]))
            }
            let sender = try await TestSocket.connect(alice, port: server.port)
            try await sender.send(message(0))
            #expect(try await sender.next(matching: RealtimeTests.accepted)?.id == "m0")

            try await database.freeze()
            let frozenAt = ContinuousClock.now
            try await sender.send(message(1))
            // Without a time limit the batch would wait for the database's return (or TCP's
            // verdict, hours later), and every send behind it too.
            let refusal = try await sender.next(timeout: 20) { frame -> ServerFrame.ErrorFrame? in
                if case .error(let error) = frame, error.id == "m1" { error } else { nil }
            }
            #expect(refusal?.code == .unavailable)
            #expect(ContinuousClock.now - frozenAt < .seconds(15))
            #expect(await sender.closeCode() == .unexpectedServerError)
            try await database.thaw()

            // The client sends it again on a new connection, as the SDK does.
            var accepted: ServerFrame.Accepted?
            let deadline = ContinuousClock.now + .seconds(60)
            while accepted == nil, ContinuousClock.now < deadline {
                guard let socket = await connect(alice, port: server.port) else {
                    try await Task.sleep(for: .milliseconds(200))
                    continue
                }
                try? await socket.send(message(1))
                accepted = try? await socket.next(timeout: 10, matching: RealtimeTests.accepted)
                await socket.close()
            }
            #expect(accepted?.id == "m1")

            let receiver = try await TestSocket.connect(bob, port: server.port)
            var received: [String] = []
            while let delivery = try await receiver.next(timeout: 3, matching: RealtimeTests.message) {
                received.append(String(decoding: delivery.ciphertext, as: UTF8.self))
            }
            #expect(received == ["0", "1"], "each message once, in order")
            await receiver.close()
        }

        static func traffic(server: ServerProcess, database: ThrowawayPostgres) async throws {
            let alice = try await TestUser.make("alice", on: server)
            let bob = try await TestUser.make("bob", on: server)
            let tally = DeliveryTally()
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await Self.send(from: alice, to: bob, port: server.port, tally: tally) }
                group.addTask { try await Self.receive(as: bob, port: server.port, tally: tally) }
                while await tally.accepted.count < Self.messageCount / 3 { try await Task.sleep(for: .milliseconds(10)) }
                try await database.stop()
                try await Task.sleep(for: .seconds(3))
                // Meanwhile the server answers that it is not ready, and sends are refused, not lost.
                #expect(try await server.request(.get, "/ready").status == .serviceUnavailable)
                try await database.start()
                try await group.waitForAll()
            }
            await tally.check(count: Self.messageCount)
            #expect(try await server.request(.get, "/ready").status == .ok)
        }

        /// A socket with `welcome`, or nil while the server cannot check the hello.
        static func connect(_ user: TestUser, port: Int, resumeAfter: Int64? = nil) async -> TestSocket? {
            guard let socket = try? await TestSocket(port: port) else { return nil }
            try? await socket.send(.hello(.init(token: user.accessToken, deviceId: user.deviceId, resumeAfter: resumeAfter)))
            if case .welcome? = try? await socket.next(timeout: 5) { return socket }
            await socket.close()
            return nil
        }

        /// Up to 100 sends in flight, as the SDK sends its outbox; whenever the socket is lost (the
        /// server closes it after a send it could not store), reconnects and sends again, with the
        /// same ids, everything not yet accepted, in order. A send committed before an earlier one
        /// of its connection would show as an `accepted` out of order, or as a receiver's gap.
        static func send(from sender: TestUser, to recipient: TestUser, port: Int, tally: DeliveryTally) async throws {
            let deadline = ContinuousClock.now + .seconds(120)
            while await tally.accepted.count < messageCount {
                guard ContinuousClock.now < deadline else {
                    Issue.record("the sender is stuck at message \(await tally.accepted.count)")
                    break
                }
                guard let socket = await connect(sender, port: port) else {
                    try await Task.sleep(for: .milliseconds(200))
                    continue
                }
                await SustainedTraffic.send(count: messageCount, from: socket, to: recipient, tally: tally)
                await socket.close()
            }
            await tally.stopSender(true)
        }

        /// Processes deliveries once each by sequence number, reconnecting after the last one
        /// processed whenever the socket drops.
        static func receive(as user: TestUser, port: Int, tally: DeliveryTally) async throws {
            let deadline = ContinuousClock.now + .seconds(150)
            var socket: TestSocket?
            while await tally.received.count < messageCount, ContinuousClock.now < deadline {
                guard let open = socket else {
                    socket = await connect(user, port: port, resumeAfter: await tally.lastSeq)
                    if socket == nil { try await Task.sleep(for: .milliseconds(200)) }
                    continue
                }
                guard let frame = try? await open.next(timeout: 3) else {
                    if await open.isFinished { socket = nil }
                    continue
                }
                guard case .message(let delivery) = frame else { continue }
                let index = Int(String(decoding: delivery.ciphertext, as: UTF8.self)) ?? -1
                if await tally.receive(seq: delivery.seq, index: index), delivery.seq % 50 == 0 {
                    try? await open.send(.ack(.init(seq: delivery.seq)))
                }
            }
            try? await socket?.send(.ack(.init(seq: await tally.lastSeq)))
            await socket?.close()
        }
    }
}
