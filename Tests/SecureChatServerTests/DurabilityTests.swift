import Foundation
import NIOWebSocket
import SecureChatAPI
import Testing

/// The suites that run real server binaries under sustained traffic, one at a time: together they
/// would load the two cores enough to push other tests past their timeouts.
@Suite(.serialized)
struct RealBinaryTests {}

extension RealBinaryTests {
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
            try await server.start()
            defer { server.stop(signal: SIGKILL) }
            let alice = try await TestUser.make("alice", on: server)
            let bob = try await TestUser.make("bob", on: server)
            let tally = DeliveryTally()

            for round in 0..<3 {
                let aliceSocket = try await TestSocket.connect(alice, port: server.port)
                let bobSocket = try await TestSocket.connect(bob, port: server.port, resumeAfter: await tally.lastSeq)
                let crashAfter = round < 2 ? (round + 1) * Self.messageCount / 3 + 37 : nil
                try await withThrowingTaskGroup(of: Void.self) { group in
                    await tally.stopSender(false)
                    group.addTask { await SustainedTraffic.send(count: Self.messageCount, from: aliceSocket, to: bob, tally: tally) }
                    group.addTask { await SustainedTraffic.receive(count: Self.messageCount, on: bobSocket, tally: tally) }
                    if let crashAfter {
                        while await tally.accepted.count < crashAfter { try await Task.sleep(for: .milliseconds(5)) }
                        server.stop(signal: SIGKILL)
                    }
                    try await group.waitForAll()
                }
                await aliceSocket.close()
                await bobSocket.close()
                if crashAfter != nil { try await server.start() }
            }
            await tally.check(count: Self.messageCount)
            server.stop(signal: SIGKILL)
            await server.cleanUp()
        }

        @Test(
            "SIGTERM drains: sockets get a close frame, silent connections do not hold it up, the process exits cleanly, and accepted messages survive",
            arguments: TestDatabase.available)
        func gracefulShutdown(database: TestDatabase) async throws {
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("securechat-term-\(UUID().uuidString)")
            defer { try? FileManager.default.removeItem(at: directory) }
            let server = try ServerProcess(dataDirectory: directory, database: database)
            try await server.start()
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
            try await server.start()
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
            try await server.start()
            defer { server.stop(signal: SIGKILL) }
            let alice = try await TestUser.make("alice", on: server)
            let hello = String(
                decoding: try APIJSON.makeEncoder().encode(ClientFrame.hello(.init(token: alice.accessToken, deviceId: alice.deviceId))),
                as: UTF8.self)
            // A shutdown once hung closing the database under a read in flight (SQLiteUpkeepTests
            // reproduces that exactly); here the real binary is stopped mid-burst, twice.
            for round in 0..<2 {
                if round > 0 { try await server.start() }
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
}
