import Foundation
import SecureChatAPI
import Testing

@testable import SecureChatServer

/// Two live instances on one PostgreSQL database, as behind a load balancer: what one accepts
/// reaches sockets held by the other at once, through LISTEN/NOTIFY.
@Suite("Several instances on one PostgreSQL database")
struct ScaleOutTests {
    static let enabled = TestDatabase.postgresURL != nil
    static let skipped: Comment = "PostgreSQL tests skipped: set SECURECHAT_TEST_POSTGRES_URL"

    /// A PostgreSQL environment of its own, cleaned up however `body` ends.
    static func withEnvironment(_ body: (TestEnvironment) async throws -> Void) async throws {
        let environment = try TestEnvironment(database: .postgres)
        do {
            try await body(environment)
        } catch {
            await environment.cleanUp()
            throw error
        }
        await environment.cleanUp()
    }

    /// Two servers sharing a schema and a data folder (so, the same signing keys).
    static func withTwoInstances(_ body: @Sendable (TestServer, TestServer, TestEnvironment) async throws -> Void) async throws {
        try await withEnvironment { environment in
            try await TestServer.withLive(environment: environment) { first in
                try await TestServer.withLive(environment: environment) { second in try await body(first, second, environment) }
            }
        }
    }

    static func typing(to user: TestUser) -> ClientFrame {
        .ephemeral(.init(recipients: [RecipientCiphertext(userId: user.userId, deviceId: user.deviceId, ciphertext: Data("typing".utf8))]))
    }

    static func ephemeral(_ frame: ServerFrame) -> ServerFrame.EphemeralDelivery? {
        if case .ephemeral(let delivery) = frame { delivery } else { nil }
    }

    @Test("messages sent on one instance reach a device on the other at once, in order; typing too", .enabled(if: enabled, skipped))
    func crossInstanceDelivery() async throws {
        try await Self.withTwoInstances { first, second, _ in
            let alice = try await TestUser.make("alice", on: first)
            let bob = try await TestUser.make("bob", on: second)
            let aliceSocket = try await TestSocket.connect(alice, port: first.port)
            let bobSocket = try await TestSocket.connect(bob, port: second.port)
            #expect(try await bobSocket.next(matching: RealtimeTests.caughtUp) == 0)
            for index in 1...30 {
                try await aliceSocket.send(RealtimeTests.pairwise("m\(index)", to: bob, "message \(index)"))
            }
            for index in 1...30 { #expect(try await aliceSocket.next(matching: RealtimeTests.accepted)?.id == "m\(index)") }
            for index in 1...30 {
                let delivery = try #require(try await bobSocket.next(matching: RealtimeTests.message))
                #expect(delivery.seq == Int64(index) && delivery.clientMessageId == "m\(index)")
            }
            try await aliceSocket.send(Self.typing(to: bob))
            let relayed = try #require(try await bobSocket.next(matching: Self.ephemeral))
            #expect(relayed.payload == Data("typing".utf8) && relayed.sender == alice.address)
            // Both ways: bob's answer, through the other instance, reaches alice.
            try await bobSocket.send(RealtimeTests.pairwise("b1", to: alice, "hi alice"))
            #expect(try await aliceSocket.next(matching: RealtimeTests.message)?.clientMessageId == "b1")
            await aliceSocket.close()
            await bobSocket.close()
        }
    }

    @Test("logout, password change and device removal on one instance close the sockets on the other", .enabled(if: enabled, skipped))
    func crossInstanceRevocation() async throws {
        try await Self.withTwoInstances { first, second, _ in
            let alice = try await TestUser.make("alice", on: first)
            let socket = try await TestSocket.connect(alice, port: second.port)
            try await first.request(.delete, "/v1/sessions/current", token: alice.accessToken)
            #expect(try await socket.next(matching: RealtimeTests.error)?.code == .unauthorized)
            #expect(await socket.closeCode() == .policyViolation)

            let bob = try await TestUser.make("bob", on: first)
            let bobSocket = try await TestSocket.connect(bob, port: second.port)
            try await first.request(.delete, "/v1/devices/\(bob.deviceId)", token: bob.accessToken)
            #expect(try await bobSocket.next(matching: RealtimeTests.error)?.code == .unknownDevice)
            #expect(await bobSocket.closeCode() == .policyViolation)
        }
    }

    @Test("a device connecting to the other instance replaces its socket on the first", .enabled(if: enabled, skipped))
    func crossInstanceReplacement() async throws {
        try await Self.withTwoInstances { first, second, _ in
            let alice = try await TestUser.make("alice", on: first)
            let bob = try await TestUser.make("bob", on: first)
            let old = try await TestSocket.connect(bob, port: first.port)
            let new = try await TestSocket.connect(bob, port: second.port)
            #expect(try await old.next(matching: RealtimeTests.error)?.code == .duplicateConnection)
            #expect(await old.closeCode() == .policyViolation)
            let aliceSocket = try await TestSocket.connect(alice, port: first.port)
            try await aliceSocket.send(RealtimeTests.pairwise("m1", to: bob, "to the new socket"))
            #expect(try await new.next(matching: RealtimeTests.message)?.clientMessageId == "m1")
            await aliceSocket.close()
            await new.close()
        }
    }

    @Test("a device removed while this instance heard nothing of it (a lost signal) loses its socket at the next sweep", .enabled(if: enabled, skipped))
    func sweepClosesRemovedDevices() async throws {
        try await Self.withEnvironment { environment in
            try await TestServer.withLive(environment: environment, configure: { $0.sweepInterval = 0.2 }) { server in
                let bob = try await TestUser.make("bob", on: server)
                let socket = try await TestSocket.connect(bob, port: server.port)
                #expect(try await socket.next(matching: RealtimeTests.caughtUp) == 0)
                // Removed behind the server's back, as another instance would with its signal lost.
                let schema = try #require(environment.schema)
                try await TestDatabase.execute("DELETE FROM \(schema).devices WHERE user_id = '\(bob.userId)'")
                #expect(try await socket.next(matching: RealtimeTests.error)?.code == .unknownDevice)
                #expect(await socket.closeCode() == .policyViolation)
            }
        }
    }

    @Test("a schema whose instances' channel name would not fit PostgreSQL's 63 bytes is refused at start", .enabled(if: enabled, skipped))
    func schemaNameBound() async throws {
        let base = try #require(TestDatabase.postgresURL)
        let fits = String(repeating: "s", count: 52)
        let store = try await PostgresChatStore.connect(url: base + "?schema=\(fits)", logger: .init(label: "test"))
        #expect(store.notificationChannel.utf8.count == 63)
        await store.shutdown()
        await TestDatabase.dropSchema(fits)
        await #expect(throws: StoreSetupError.self) {
            _ = try await PostgresChatStore.connect(url: base + "?schema=\(fits)s", logger: .init(label: "test"))
        }
    }

    @Test("signals missed while an instance's listening connection is down are made up when it is back", .enabled(if: enabled, skipped))
    func listenerReconnects() async throws {
        try await Self.withTwoInstances { first, second, environment in
            let alice = try await TestUser.make("alice", on: first)
            let bob = try await TestUser.make("bob", on: second)
            let aliceSocket = try await TestSocket.connect(alice, port: first.port)
            let bobSocket = try await TestSocket.connect(bob, port: second.port)
            #expect(try await bobSocket.next(matching: RealtimeTests.caughtUp) == 0)
            // PostgreSQL drops both instances' listening connections; a message goes out meanwhile.
            let schema = try #require(environment.schema)
            let terminated = try await TestDatabase.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'LISTEN%securechat_\(schema)%'")
            #expect(terminated == 2)
            try await aliceSocket.send(RealtimeTests.pairwise("m1", to: bob, "while nobody listened"))
            #expect(try await aliceSocket.next(matching: RealtimeTests.accepted)?.id == "m1")
            #expect(try await bobSocket.next(timeout: 20, matching: RealtimeTests.message)?.clientMessageId == "m1")
            await aliceSocket.close()
            await bobSocket.close()
        }
    }
}
