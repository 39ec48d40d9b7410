import Foundation
import GRDB
import NIOWebSocket
import SecureChatAPI
import Testing

@testable import SecureChatServer

@Suite("Real-time delivery over WebSocket")
struct RealtimeTests {
    static func message(_ frame: ServerFrame) -> ServerFrame.Delivery? {
        if case .message(let delivery) = frame { return delivery }
        return nil
    }

    static func accepted(_ frame: ServerFrame) -> ServerFrame.Accepted? {
        if case .accepted(let accepted) = frame { return accepted }
        return nil
    }

    static func error(_ frame: ServerFrame) -> ServerFrame.ErrorFrame? {
        if case .error(let error) = frame { return error }
        return nil
    }

    static func caughtUp(_ frame: ServerFrame) -> Int64? {
        if case .caughtUp(let caughtUp) = frame { return caughtUp.seq }
        return nil
    }

    static func pairwise(_ id: String, to user: TestUser, _ text: String) -> ClientFrame {
        .send(.init(id: id, recipients: [RecipientCiphertext(userId: user.userId, deviceId: user.deviceId, ciphertext: Data(text.utf8))]))
    }

    @Test("the first frame must be a valid hello: otherwise an error frame and close 1008", arguments: TestDatabase.available)
    func helloRequired(database: TestDatabase) async throws {
        // Long enough that a loaded machine still sends the first frame in time.
        try await TestServer.withLive(database: database, configure: { $0.helloTimeout = 4 }) { server in
            let alice = try await TestUser.make("alice", on: server)
            let cases: [(String, APIErrorCode)] = [
                (#"{"type":"ack","seq":1}"#, .notAuthenticated),
                (#"{"type":"hello","token":"nope","deviceId":1}"#, .unauthorized),
                ("not json", .invalidJSON),
                (#"{"type":"hello","token":"\#(alice.accessToken)","deviceId":99}"#, .unknownDevice),
            ]
            for (text, code) in cases {
                let socket = try await TestSocket(port: server.port)
                try await socket.sendText(text)
                let error = try await socket.next(matching: Self.error)
                #expect(error?.code == code, "\(text)")
                #expect(await socket.closeCode() == .policyViolation)
            }
            // Silence: closed after the hello timeout.
            let silent = try await TestSocket(port: server.port)
            #expect(try await silent.next(timeout: 15).flatMap(Self.error)?.code == .notAuthenticated)
            #expect(await silent.closeCode() == .policyViolation)
        }
    }

    @Test("a pairwise message is accepted after it is stored and delivered at once to a connected device", arguments: TestDatabase.available)
    func pairwiseLive(database: TestDatabase) async throws {
        try await TestServer.withLive(database: database) { server in
            let alice = try await TestUser.make("alice", on: server)
            let bob = try await TestUser.make("bob", on: server)
            let aliceSocket = try await TestSocket.connect(alice, port: server.port)
            let bobSocket = try await TestSocket.connect(bob, port: server.port)
            #expect(try await bobSocket.next(matching: Self.caughtUp) == 0)
            try await aliceSocket.send(Self.pairwise("m1", to: bob, "hello bob"))
            let accepted = try #require(try await aliceSocket.next(matching: Self.accepted))
            #expect(accepted.id == "m1" && !accepted.duplicate)
            let delivery = try #require(try await bobSocket.next(matching: Self.message))
            #expect(delivery.seq == 1)
            #expect(delivery.ciphertext == Data("hello bob".utf8))
            #expect(delivery.sender == alice.address)
            #expect(delivery.messageId == accepted.messageId)
            #expect(delivery.room == nil)
            await aliceSocket.close()
            await bobSocket.close()
        }
    }

    @Test("offline delivery, resume after the last processed seq, and acknowledgement forgets messages", arguments: TestDatabase.available)
    func offlineAndResume(database: TestDatabase) async throws {
        try await TestServer.withLive(database: database) { server in
            let alice = try await TestUser.make("alice", on: server)
            let bob = try await TestUser.make("bob", on: server)
            let aliceSocket = try await TestSocket.connect(alice, port: server.port)
            for index in 1...5 {
                try await aliceSocket.send(Self.pairwise("m\(index)", to: bob, "message \(index)"))
                #expect(try await aliceSocket.next(matching: Self.accepted)?.id == "m\(index)")
            }
            // Bob connects, processes three, drops without acknowledging.
            var bobSocket = try await TestSocket.connect(bob, port: server.port)
            for expected in 1...5 {
                #expect(try await bobSocket.next(matching: Self.message)?.seq == Int64(expected))
            }
            #expect(try await bobSocket.next(matching: Self.caughtUp) == 5)
            await bobSocket.close()
            // Resuming after 3 sends 4 and 5 only, and counts as acknowledging 1–3.
            bobSocket = try await TestSocket.connect(bob, port: server.port, resumeAfter: 3)
            #expect(try await bobSocket.next(matching: Self.message)?.ciphertext == Data("message 4".utf8))
            #expect(try await bobSocket.next(matching: Self.message)?.seq == 5)
            try await bobSocket.send(.ack(.init(seq: 5)))
            // Two sockets are not ordered with each other: this answer means the ack was handled
            // before the reconnect. Its commit may still be pending; the reconnect must not care.
            try await bobSocket.sendText("{}")
            #expect(try await bobSocket.next(matching: Self.error)?.code == .invalidJSON)
            await bobSocket.close()
            // Everything acknowledged: a reconnect without resume gets nothing old.
            bobSocket = try await TestSocket.connect(bob, port: server.port)
            let first = try await bobSocket.next()
            #expect(first.flatMap(Self.caughtUp) != nil, "\(String(describing: first))")
            try await aliceSocket.send(Self.pairwise("m6", to: bob, "message 6"))
            #expect(try await bobSocket.next(matching: Self.message)?.seq == 6)
            await bobSocket.close()
            await aliceSocket.close()
        }
    }

    /// Acknowledgements are committed in the writer's next batch. Another connection to the SQLite
    /// file holding the write lock keeps that commit waiting for as long as the test needs.
    @Test("a device reconnecting before its acknowledgement is committed gets nothing it acknowledged")
    func acknowledgementBeingCommitted() async throws {
        try await TestServer.withLive { server in
            let alice = try await TestUser.make("alice", on: server)
            let bob = try await TestUser.make("bob", on: server)
            let aliceSocket = try await TestSocket.connect(alice, port: server.port)
            for index in 1...2 {
                try await aliceSocket.send(Self.pairwise("m\(index)", to: bob, "message \(index)"))
                #expect(try await aliceSocket.next(matching: Self.accepted)?.id == "m\(index)")
            }
            var bobSocket = try await TestSocket.connect(bob, port: server.port)
            #expect(try await bobSocket.next(matching: Self.caughtUp) == 2)

            var configuration = Configuration()
            configuration.allowsUnsafeTransactions = true
            let blocker = try DatabaseQueue(
                path: server.dataDirectory.appendingPathComponent("securechat.sqlite").path, configuration: configuration)
            try await blocker.writeWithoutTransaction { try $0.execute(sql: "BEGIN IMMEDIATE") }
            try await bobSocket.send(.ack(.init(seq: 2)))
            try await bobSocket.sendText("{}")
            #expect(try await bobSocket.next(matching: Self.error)?.code == .invalidJSON)
            await bobSocket.close()

            bobSocket = try await TestSocket.connect(bob, port: server.port)
            let first = try await bobSocket.next()
            #expect(first.flatMap(Self.caughtUp) == 2, "\(String(describing: first))")
            try await blocker.writeWithoutTransaction { try $0.execute(sql: "ROLLBACK") }
            try blocker.close()

            try await aliceSocket.send(Self.pairwise("m3", to: bob, "message 3"))
            #expect(try await bobSocket.next(matching: Self.message)?.seq == 3)
            await bobSocket.close()
            // Committed now: with nothing held back in memory, the store itself has forgotten 1 and 2.
            bobSocket = try await TestSocket.connect(bob, port: server.port, resumeAfter: 0)
            #expect(try await bobSocket.next(matching: Self.message)?.seq == 3)
            await bobSocket.close()
            await aliceSocket.close()
        }
    }

    @Test("acknowledgements and resume claims beyond what was delivered forget nothing", arguments: TestDatabase.available)
    func acknowledgementsAreBounded(database: TestDatabase) async throws {
        try await TestServer.withLive(database: database) { server in
            let alice = try await TestUser.make("alice", on: server)
            let bob = try await TestUser.make("bob", on: server)
            var bobSocket = try await TestSocket.connect(bob, port: server.port)
            #expect(try await bobSocket.next(matching: Self.caughtUp) == 0)
            try await bobSocket.send(.ack(.init(seq: 1000)))
            // Frames of one socket are handled in order: this error answer means the ack was handled
            // before Alice sends. (An ack covers what had been sent when it was handled.)
            try await bobSocket.sendText("{}")
            #expect(try await bobSocket.next(matching: Self.error)?.code == .invalidJSON)
            let aliceSocket = try await TestSocket.connect(alice, port: server.port)
            try await aliceSocket.send(Self.pairwise("m1", to: bob, "one"))
            #expect(try await bobSocket.next(matching: Self.message)?.seq == 1)
            await bobSocket.close()
            // The early ack covered nothing: message 1 is still stored. A claim beyond the stored
            // sequence is state from elsewhere: ignored, and welcome says where the server is.
            bobSocket = try await TestSocket(port: server.port)
            try await bobSocket.send(.hello(.init(token: bob.accessToken, deviceId: bob.deviceId, resumeAfter: 50)))
            guard case .welcome(let welcome) = try await bobSocket.next() else {
                Issue.record("expected welcome")
                return
            }
            #expect(welcome.lastSeq == 1)
            #expect(try await bobSocket.next(matching: Self.message)?.ciphertext == Data("one".utf8))
            await bobSocket.close()
            await aliceSocket.close()
        }
    }

    @Test("a retried send with the same id is stored once and answered with the first answer", arguments: TestDatabase.available)
    func deduplication(database: TestDatabase) async throws {
        try await TestServer.withLive(database: database) { server in
            let alice = try await TestUser.make("alice", on: server)
            let bob = try await TestUser.make("bob", on: server)
            let aliceSocket = try await TestSocket.connect(alice, port: server.port)
            try await aliceSocket.send(Self.pairwise("same-id", to: bob, "once"))
            let first = try #require(try await aliceSocket.next(matching: Self.accepted))
            // Retried on another connection, as after a reconnect.
            await aliceSocket.close()
            let again = try await TestSocket.connect(alice, port: server.port)
            try await again.send(Self.pairwise("same-id", to: bob, "once"))
            let second = try #require(try await again.next(matching: Self.accepted))
            #expect(second.duplicate)
            #expect(second.messageId == first.messageId)
            #expect(second.sentAt == first.sentAt)
            let bobSocket = try await TestSocket.connect(bob, port: server.port)
            #expect(try await bobSocket.next(matching: Self.message)?.seq == 1)
            #expect(try await bobSocket.next(matching: Self.caughtUp) == 1)
            await bobSocket.close()
            await again.close()
        }
    }

    @Test("per-sender order holds for 2,000 pipelined sends, live and from storage", arguments: TestDatabase.available)
    func ordering(database: TestDatabase) async throws {
        // At full speed: the per-socket budget would only slow this down (RateLimitTests).
        try await TestServer.withLive(database: database, configure: { $0.rateLimits = .unlimited }) { server in
            let alice = try await TestUser.make("alice", on: server)
            let bob = try await TestUser.make("bob", on: server)
            let aliceSocket = try await TestSocket.connect(alice, port: server.port)
            let bobSocket = try await TestSocket.connect(bob, port: server.port)
            #expect(try await bobSocket.next(matching: Self.caughtUp) == 0)
            let count = 2000
            for index in 0..<count { try await aliceSocket.send(Self.pairwise("o\(index)", to: bob, "\(index)")) }
            var acceptedIds: [String] = []
            while acceptedIds.count < count, let accepted = try await aliceSocket.next(matching: Self.accepted) {
                acceptedIds.append(accepted.id)
            }
            #expect(acceptedIds == (0..<count).map { "o\($0)" })
            // Live deliveries stop at the window until acknowledged; acknowledge as we go.
            var texts: [String] = []
            var lastSeq: Int64 = 0
            while texts.count < count, let delivery = try await bobSocket.next(matching: Self.message) {
                #expect(delivery.seq == lastSeq + 1)
                lastSeq = delivery.seq
                texts.append(String(decoding: delivery.ciphertext, as: UTF8.self))
                if delivery.seq % 100 == 0 { try await bobSocket.send(.ack(.init(seq: delivery.seq))) }
            }
            #expect(texts == (0..<count).map { "\($0)" })
            await aliceSocket.close()
            await bobSocket.close()
        }
    }

    @Test("bad frames get an error frame naming the problem and the socket stays usable", arguments: TestDatabase.available)
    func badFrames(database: TestDatabase) async throws {
        try await TestServer.withLive(database: database) { server in
            let alice = try await TestUser.make("alice", on: server)
            let bob = try await TestUser.make("bob", on: server)
            let socket = try await TestSocket.connect(alice, port: server.port)
            let cases: [(String, APIErrorCode)] = [
                ("{", .invalidJSON),
                (#"{"type":"teleport"}"#, .invalidJSON),
                (#"{"type":"send","id":"x"}"#, .badRequest),
                (#"{"type":"send","id":"","recipients":[{"userId":"\#(bob.userId)","deviceId":1,"ciphertext":"AA=="}]}"#, .badRequest),
                (#"{"type":"send","id":"x","recipients":[{"userId":"\#(bob.userId)","deviceId":1,"ciphertext":"not base64!"}]}"#, .invalidJSON),
                (#"{"type":"send","id":"x","recipients":[{"userId":"\#(bob.userId)","deviceId":7,"ciphertext":"AA=="}]}"#, .unknownDevice),
                (#"{"type":"send","id":"y","room":"nosuchroom","ciphertext":"AA=="}"#, .notFound),
                (#"{"type":"hello","token":"t","deviceId":1}"#, .badRequest),
            ]
            for (text, code) in cases {
                try await socket.sendText(text)
                let error = try await socket.next(matching: Self.error)
                #expect(error?.code == code, "\(text) → \(String(describing: error))")
            }
            try await socket.sendBinary([1, 2, 3])
            #expect(try await socket.next(matching: Self.error)?.code == .unsupportedFrame)
            let tooLong = Data(count: APILimits.ciphertextBytes + 1)
            try await socket.send(Self.pairwise("big", to: bob, String(decoding: tooLong, as: UTF8.self)))
            let big = try await socket.next(matching: Self.error)
            #expect(big?.code == .payloadTooLarge && big?.id == "big")
            // Still usable.
            try await socket.send(Self.pairwise("ok", to: bob, "fine"))
            #expect(try await socket.next(matching: Self.accepted)?.id == "ok")
            await socket.close()
        }
    }

    @Test("a second connection of the same device replaces the first", arguments: TestDatabase.available)
    func replacedConnection(database: TestDatabase) async throws {
        try await TestServer.withLive(database: database) { server in
            let alice = try await TestUser.make("alice", on: server)
            let first = try await TestSocket.connect(alice, port: server.port)
            let second = try await TestSocket.connect(alice, port: server.port)
            #expect(try await first.next(matching: Self.error)?.code == .duplicateConnection)
            #expect(await first.closeCode() == .policyViolation)
            await second.close()
        }
    }

    @Test("logout closes the session's sockets, and its token no longer opens one", arguments: TestDatabase.available)
    func logoutCloses(database: TestDatabase) async throws {
        try await TestServer.withLive(database: database) { server in
            let alice = try await TestUser.make("alice", on: server)
            let socket = try await TestSocket.connect(alice, port: server.port)
            try await server.request(.delete, "/v1/sessions/current", token: alice.accessToken)
            #expect(try await socket.next(matching: Self.error)?.code == .unauthorized)
            #expect(await socket.closeCode() == .policyViolation)
            // The access token has not expired, but its session has: a new hello is refused.
            let again = try await TestSocket(port: server.port)
            try await again.send(.hello(.init(token: alice.accessToken, deviceId: alice.deviceId)))
            let refusal = try await again.next(matching: Self.error)
            #expect(refusal?.code == .unauthorized)
            #expect(refusal?.message.contains("session has ended") == true, "\(String(describing: refusal))")
            #expect(await again.closeCode() == .policyViolation)
        }
    }

    @Test("ephemeral frames reach connected devices and are never stored", arguments: TestDatabase.available)
    func ephemeral(database: TestDatabase) async throws {
        try await TestServer.withLive(database: database) { server in
            let alice = try await TestUser.make("alice", on: server)
            let bob = try await TestUser.make("bob", on: server)
            let aliceSocket = try await TestSocket.connect(alice, port: server.port)
            let bobSocket = try await TestSocket.connect(bob, port: server.port)
            try await aliceSocket.send(
                .ephemeral(.init(recipients: [RecipientCiphertext(userId: bob.userId, deviceId: bob.deviceId, ciphertext: Data("typing".utf8))])))
            let relayed = try await bobSocket.next { frame -> ServerFrame.EphemeralDelivery? in
                if case .ephemeral(let ephemeral) = frame { return ephemeral }
                return nil
            }
            #expect(relayed?.payload == Data("typing".utf8))
            #expect(relayed?.sender == alice.address)
            await bobSocket.close()
            // Bob offline: nothing is queued for him.
            try await aliceSocket.send(
                .ephemeral(.init(recipients: [RecipientCiphertext(userId: bob.userId, deviceId: bob.deviceId, ciphertext: Data("typing".utf8))])))
            let again = try await TestSocket.connect(bob, port: server.port)
            #expect(try await again.next(matching: Self.caughtUp) == 0)
            await again.close()
            await aliceSocket.close()
        }
    }
}
