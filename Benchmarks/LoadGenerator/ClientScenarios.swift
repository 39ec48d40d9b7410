import Foundation
import SecureChatClient

/// The SDK end to end: messages encrypted, sent, received and decrypted by real clients (each
/// with its encrypted local store, committed with fsync on both sides), through the server.
extension LoadGenerator {
    /// This process's user plus system CPU seconds (both clients live here).
    static var ownCPUSeconds: Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
    }

    func makeClient(_ server: ServerUnderTest, _ name: String, root: URL) async throws -> SecureChatClient {
        try await SecureChatClient.register(
            server: URL(string: "http://127.0.0.1:\(server.port)")!, username: name, password: "client benchmark password",
            deviceName: "bench", directory: root.appendingPathComponent(name), passphrase: "client benchmark passphrase")
    }

    /// Waits until `client` has delivered `count` text messages to the application.
    static func receive(_ count: Int, on client: SecureChatClient) async {
        var received = 0
        for await event in client.events {
            if case .message(let message) = event, case .text = message.envelope.content {
                received += 1
                if received == count { return }
            }
        }
    }

    /// Sends `count` messages through `send` while `receiver` takes them; returns messages/s and CPU.
    func timeMessages(
        _ server: ServerUnderTest, count: Int, receiver: SecureChatClient, send: @escaping @Sendable (Int) async throws -> Void
    ) async throws -> (rate: Double, clientCPU: Double, serverCPU: Double, wireBytes: Double) {
        let bytesStart = try await server.webSocketBytes()
        let cpuStart = (Self.ownCPUSeconds, server.cpuSeconds)
        let start = monotonicNanoseconds()
        async let received: Void = Self.receive(count, on: receiver)
        for index in 0..<count { try await send(index) }
        await received
        let elapsed = Double(monotonicNanoseconds() - start) / 1e9
        let cpu = (Self.ownCPUSeconds - cpuStart.0, server.cpuSeconds - cpuStart.1)
        let bytes = try await server.webSocketBytes()
        let wire = bytes.received - bytesStart.received + bytes.sent - bytesStart.sent
        return (Double(count) / elapsed, cpu.0, cpu.1, wire)
    }

    func clientOneToOne(_ server: ServerUnderTest, receipts: Bool) async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("securechat-client-bench-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        let alice = try await makeClient(server, "alice\(receipts ? "r" : "")", root: root)
        let bob = try await makeClient(server, "bob\(receipts ? "r" : "")", root: root)
        await bob.setSendsDeliveryReceipts(receipts)
        await alice.connect()
        await bob.connect()
        await alice.waitUntilCaughtUp()
        await bob.waitUntilCaughtUp()
        let bobName = await bob.username
        // Warm-up: the session starts (X3DH) and both ratchets turn.
        _ = try await timeMessages(server, count: 50, receiver: bob) { index in try await alice.send("warm-up \(index)", to: bobName) }
        let count = 2000
        let result = try await timeMessages(server, count: count, receiver: bob) { index in
            try await alice.send("benchmark message \(index)", to: bobName)
        }
        emit(String(
            format: "client 1:1%@: %.0f messages/s (encrypt, store, send, receive, decrypt, store); client CPU %.0f µs, server CPU %.0f µs, %.0f WebSocket bytes (both ways) per message",
            receipts ? " with delivery receipts" : "", result.rate, result.clientCPU / Double(count) * 1e6, result.serverCPU / Double(count) * 1e6,
            result.wireBytes / Double(count)))
        await alice.close()
        await bob.close()
    }

    func clientRoom(_ server: ServerUnderTest, members: Int) async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("securechat-client-bench-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        let alice = try await makeClient(server, "roomalice", root: root)
        let bob = try await makeClient(server, "roombob", root: root)
        let room = try await alice.createRoom(name: "bench", autoAdmit: true)
        _ = try await bob.joinRoom(room.code)
        // The other members join and stay offline: their queues fill, as a real room's would.
        for index in 0..<(members - 2) {
            let member = try await makeClient(server, "member\(index)", root: root)
            _ = try await member.joinRoom(room.code)
            await member.close()
        }
        await alice.connect()
        await bob.connect()
        await alice.waitUntilCaughtUp()
        await bob.waitUntilCaughtUp()
        // Warm-up: Alice admits everyone and hands her room key to every member device (X3DH with each).
        _ = try await timeMessages(server, count: 20, receiver: bob) { index in try await alice.send("warm-up \(index)", toRoom: room.code) }
        let count = 2000
        let result = try await timeMessages(server, count: count, receiver: bob) { index in
            try await alice.send("room message \(index)", toRoom: room.code)
        }
        emit(String(
            format: "client room of %d: %.0f messages/s from one sender to one reading member (%d deliveries each); client CPU %.0f µs, server CPU %.0f µs, %.0f WebSocket bytes per message",
            members, result.rate, members - 1, result.clientCPU / Double(count) * 1e6, result.serverCPU / Double(count) * 1e6,
            result.wireBytes / Double(count)))
        await alice.close()
        await bob.close()
    }
}
