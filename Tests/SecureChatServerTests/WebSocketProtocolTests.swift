import Foundation
import HTTPTypes
import SecureChatAPI
import Synchronization
import Testing

@testable import SecureChatServer

/// The WebSocket protocol itself (RFC 6455) as the server speaks it, driven byte by byte. The
/// transport does not touch the database, so these run on SQLite only.
@Suite("WebSocket protocol")
struct WebSocketProtocolTests {
    private static func hello(_ user: TestUser) throws -> String {
        String(decoding: try APIJSON.makeEncoder().encode(ClientFrame.hello(.init(token: user.accessToken, deviceId: user.deviceId))), as: UTF8.self)
    }

    private static func frameType(_ frame: RawWebSocket.Frame?) -> String? {
        guard let frame, frame.opcode == RawWebSocket.Opcode.text,
            let object = try? JSONSerialization.jsonObject(with: Data(frame.payload)) as? [String: Any]
        else { return nil }
        return object["type"] as? String
    }

    @Test("a plain GET of /v1/ws answers 426, an upgrade anywhere else 400, both with a JSON error")
    func upgradeRefusals() async throws {
        try await TestServer.withLive { server in
            let (status, body) = try await server.request(.get, "/v1/ws")
            #expect(status.code == 426)
            #expect(try APIJSON.makeDecoder().decode(APIErrorBody.self, from: body).error.code == .badRequest)

            let elsewhere = try await RawWebSocket.connect(port: server.port, path: "/v1/chat")
            #expect(elsewhere.status == 400)
            let refusal = try APIJSON.makeDecoder().decode(APIErrorBody.self, from: Data(elsewhere.responseBody.utf8))
            #expect(refusal.error.message.contains("/v1/ws"))
            #expect(await elsewhere.waitForEnd())
        }
    }

    @Test("a fragmented hello is reassembled; a ping is answered with its payload; a close is echoed")
    func fragmentsPingAndClose() async throws {
        try await TestServer.withLive { server in
            let alice = try await TestUser.make("alice", on: server)
            let socket = try await RawWebSocket.connect(port: server.port)
            #expect(socket.status == 101)
            let hello = Array(try Self.hello(alice).utf8)
            let thirds = [hello[..<10], hello[10..<20], hello[20...]].map(Array.init)
            try await socket.send(.init(fin: false, opcode: RawWebSocket.Opcode.text, payload: thirds[0]))
            // A control frame may come between fragments and is answered at once.
            try await socket.send(.init(opcode: RawWebSocket.Opcode.ping, payload: Array("are you there".utf8)))
            try await socket.send(.init(fin: false, opcode: RawWebSocket.Opcode.continuation, payload: thirds[1]))
            try await socket.send(.init(fin: true, opcode: RawWebSocket.Opcode.continuation, payload: thirds[2]))
            let pong = try await socket.next()
            #expect(pong == .init(opcode: RawWebSocket.Opcode.pong, payload: Array("are you there".utf8)))
            #expect(Self.frameType(try await socket.next()) == "welcome")

            try await socket.send(.init(opcode: RawWebSocket.Opcode.close, payload: [0x0f, 0xa0]))  // 4000
            #expect(try await socket.closeCode() == 4000)
            #expect(await socket.waitForEnd())
        }
    }

    @Test(
        "protocol violations close with the RFC 6455 code",
        arguments: [
            ("invalid UTF-8 in a text frame", 1007),
            ("a reserved bit without an extension", 1002),
            ("a message over the frame limit", 1009),
            ("a continuation without a first fragment", 1002),
        ])
    func violations(violation: String, expectedCode: Int) async throws {
        try await TestServer.withLive { server in
            let alice = try await TestUser.make("alice", on: server)
            let socket = try await RawWebSocket.connect(port: server.port)
            try await socket.sendText(try Self.hello(alice))
            #expect(Self.frameType(try await socket.next()) == "welcome")
            switch expectedCode {
            case 1007:
                try await socket.send(.init(opcode: RawWebSocket.Opcode.text, payload: [0x7b, 0xff, 0xfe, 0x7d]))
            case 1009:
                // Two fragments, each under the per-frame limit, together over the message limit.
                let half = [UInt8](repeating: 0x20, count: APILimits.frameBytes / 2 + 1)
                try await socket.send(.init(fin: false, opcode: RawWebSocket.Opcode.text, payload: half))
                try await socket.send(.init(fin: true, opcode: RawWebSocket.Opcode.continuation, payload: half))
            case _ where violation.contains("reserved"):
                try await socket.send(.init(opcode: RawWebSocket.Opcode.text, payload: Array("{}".utf8)), reservedBits: 0b100)
            default:
                try await socket.send(.init(opcode: RawWebSocket.Opcode.continuation, payload: Array("{}".utf8)))
            }
            #expect(try await socket.closeCode() == UInt16(expectedCode), "\(violation)")
            #expect(await socket.waitForEnd(), "\(violation)")
        }
    }

    @Test("a connection that never sends a request is closed after the idle timeout")
    func silentConnection() async throws {
        // Three seconds: the prompt connection below must get its request in within the timeout
        // even when a loaded machine (tests run in parallel) is slow to schedule it.
        try await TestServer.withLive(configure: { $0.httpIdleTimeout = 3 }) { server in
            let silent = try await RawWebSocket.silent(port: server.port)
            #expect(await silent.waitForEnd(timeout: .seconds(15)))
            // A connection that asks in time is served.
            let prompt = try await RawWebSocket.connect(port: server.port)
            #expect(prompt.status == 101)
            await prompt.close()
        }
    }

    @Test("a peer that stops answering pings is disconnected; one that answers stays connected")
    func keepAlive() async throws {
        // Three seconds: with a shorter period a loaded machine (tests run in parallel) can be late
        // with the answering client's pong, and the test would measure the machine.
        try await TestServer.withLive(configure: { $0.webSocketKeepAlive = 3 }) { server in
            let alice = try await TestUser.make("alice", on: server)
            let bob = try await TestUser.make("bob", on: server)
            // HummingbirdWSClient answers pings by itself.
            let answering = try await TestSocket.connect(bob, port: server.port)
            let silent = try await RawWebSocket.connect(port: server.port)
            try await silent.sendText(try Self.hello(alice))
            #expect(Self.frameType(try await silent.next()) == "welcome")
            var sawPing = false
            while let frame = try await silent.next(timeout: .seconds(10)) {
                if frame.opcode == RawWebSocket.Opcode.ping { sawPing = true }
            }
            #expect(sawPing)
            #expect(await silent.waitForEnd(timeout: .seconds(5)))
            // The answering client outlived several keep-alive periods and still works.
            let aliceAgain = try await TestSocket.connect(alice, port: server.port)
            try await aliceAgain.send(RealtimeTests.pairwise("m1", to: bob, "hi"))
            let delivery = try await answering.next { frame -> ServerFrame.Delivery? in
                if case .message(let delivery) = frame { return delivery }
                return nil
            }
            #expect(delivery?.clientMessageId == "m1")
            await answering.close()
            await aliceAgain.close()
        }
    }
}

@Suite("SQLite upkeep")
struct SQLiteUpkeepTests {
    private static func size(_ url: URL) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: url.path))?[.size] as? Int) ?? 0
    }

    @Test("the write-ahead log is copied into the database in the background, not only by a full log")
    func backgroundCheckpoint() async throws {
        try await TestServer.withLive { server in
            let alice = try await TestUser.make("alice", on: server)
            let bob = try await TestUser.make("bob", on: server)
            let database = server.dataDirectory.appendingPathComponent("securechat.sqlite")
            // Let the migrations' log settle first.
            try await Task.sleep(for: .milliseconds(600))
            let before = Self.size(database)
            let socket = try await TestSocket.connect(alice, port: server.port)
            let filler = String(repeating: "x", count: 4_000)
            for index in 0..<200 { try await socket.send(RealtimeTests.pairwise("c\(index)", to: bob, filler)) }
            var accepted = 0
            while accepted < 200, try await socket.next(matching: RealtimeTests.accepted) != nil { accepted += 1 }
            #expect(accepted == 200)
            // 800 KB of log is far below SQLite's own threshold (10,000 pages here): only the
            // background checkpoint moves it into the database file.
            var after = before
            for _ in 0..<40 where after < before + 500_000 {
                try await Task.sleep(for: .milliseconds(100))
                after = Self.size(database)
            }
            #expect(after >= before + 500_000, "database file \(before) → \(after) bytes")
            await socket.close()
        }
    }

    /// In the server, Swift concurrency runs on the event loops, so a task that closes the database
    /// can hold the very thread that an in-flight read must resume on to return its connection.
    /// A task executor with one thread reproduces that exactly.
    @Test("closing the database while a read is in flight does not deadlock the thread that closes it")
    func closeDuringRead() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("securechat-close-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try SQLiteChatStore(path: directory.appendingPathComponent("db.sqlite").path)
        let executor = DedicatedThreadExecutor()
        let readStarted = DispatchSemaphore(value: 0)
        let readMayEnd = DispatchSemaphore(value: 0)
        let read = Task(executorPreference: executor) {
            try await store.pool.read { _ in
                readStarted.signal()
                readMayEnd.wait()
                return 1
            }
        }
        readStarted.wait()
        let closed = Flag()
        Task(executorPreference: executor) {
            await store.shutdown()
            closed.set()
        }
        // Let the shutdown reach the close before the read finishes and needs the executor's thread.
        // (Were the machine too slow for that, the old code could pass; the fixed one never fails.)
        try await Task.sleep(for: .milliseconds(300))
        readMayEnd.signal()
        for _ in 0..<100 where !closed.isSet { try await Task.sleep(for: .milliseconds(100)) }
        // A deadlocked read never returns: only await it when the close went through.
        try #require(closed.isSet, "the database did not close within 10 seconds")
        #expect(try await read.value == 1)
    }
}

private final class Flag: Sendable {
    private let value = Mutex(false)
    func set() { value.withLock { $0 = true } }
    var isSet: Bool { value.withLock { $0 } }
}

/// Runs every job on one thread of its own, like an event loop. The thread lives as long as the test
/// process (it holds the executor), which is what a test of a deadlock needs.
private final class DedicatedThreadExecutor: TaskExecutor, @unchecked Sendable {
    // Guarded by `condition`.
    private var jobs: [UnownedJob] = []
    private let condition = NSCondition()

    init() {
        let thread = Thread { [self] in
            while true {
                condition.lock()
                while jobs.isEmpty { condition.wait() }
                let job = jobs.removeFirst()
                condition.unlock()
                job.runSynchronously(on: asUnownedTaskExecutor())
            }
        }
        thread.start()
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        condition.lock()
        jobs.append(job)
        condition.signal()
        condition.unlock()
    }
}
