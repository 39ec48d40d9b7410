import Foundation
import SecureChatAPI
import Testing

@testable import SecureChatServer

@Suite("Rooms")
struct RoomTests {
    static func roomEvent(_ frame: ServerFrame) -> ServerFrame.RoomEvent? {
        if case .roomEvent(let event) = frame { return event }
        return nil
    }

    static func createRoom(_ server: TestServer, _ owner: TestUser, password: String? = nil, retention: Int64? = nil) async throws -> RoomResponse {
        try await server.call(
            .post, "/v1/rooms", token: owner.accessToken, json: CreateRoomRequest(name: "Team", password: password, retentionSeconds: retention),
            as: RoomResponse.self)
    }

    static func join(_ server: some APITransport, _ user: TestUser, _ room: RoomResponse, password: String? = nil) async throws {
        _ = try await server.call(.post, "/v1/rooms/\(room.code)/join", token: user.accessToken, json: JoinRoomRequest(password: password), as: RoomResponse.self)
    }

    @Test("a password room: preview for outsiders, wrong passwords refused then throttled per room and client", arguments: TestDatabase.available)
    func passwordJoin(database: TestDatabase) async throws {
        try await TestServer.withLive(database: database) { server in
            let alice = try await TestUser.make("alice", on: server)
            let bob = try await TestUser.make("bob", on: server)
            let room = try await Self.createRoom(server, alice, password: "open sesame")
            #expect(room.code.count == 20 && room.role == .owner && room.passwordRequired)
            let preview = try await server.call(.get, "/v1/rooms/\(room.code)", token: bob.accessToken, as: RoomPreview.self)
            #expect(preview == RoomPreview(code: room.code, name: "Team", passwordRequired: true))
            try await server.expectError(.get, "/v1/rooms/\(room.code)/members", token: bob.accessToken, status: .forbidden, code: .notAMember)
            try await server.expectError(.post, "/v1/rooms/\(room.code)/join", token: bob.accessToken, status: .forbidden, code: .wrongRoomPassword)
            for _ in 0..<5 {
                try await server.expectError(
                    .post, "/v1/rooms/\(room.code)/join", token: bob.accessToken, json: JoinRoomRequest(password: "guess"), status: .forbidden,
                    code: .wrongRoomPassword)
            }
            // Five wrong passwords (asking without one is free): even the right password waits, 1 s
            // after the fifth, 2 s after a sixth.
            let (status, _) = try await server.request(
                .post, "/v1/rooms/\(room.code)/join", token: bob.accessToken, json: JoinRoomRequest(password: "open sesame"))
            #expect(status == .tooManyRequests)
            server.clock.advance(by: 1)
            try await server.expectError(
                .post, "/v1/rooms/\(room.code)/join", token: bob.accessToken, json: JoinRoomRequest(password: "guess"), status: .forbidden,
                code: .wrongRoomPassword)
            server.clock.advance(by: 1)
            try await server.expectError(
                .post, "/v1/rooms/\(room.code)/join", token: bob.accessToken, json: JoinRoomRequest(password: "open sesame"),
                status: .tooManyRequests, code: .rateLimited)
            server.clock.advance(by: 1)
            try await Self.join(server, bob, room, password: "open sesame")
            try await server.expectError(
                .post, "/v1/rooms/\(room.code)/join", token: bob.accessToken, json: JoinRoomRequest(password: "open sesame"), status: .conflict,
                code: .alreadyMember)
            try await server.expectError(.get, "/v1/rooms/nosuchroom", token: bob.accessToken, status: .notFound, code: .notFound)
            let members = try await server.call(.get, "/v1/rooms/\(room.code)/members", token: bob.accessToken, as: MemberListResponse.self)
            #expect(members.members.map(\.username) == ["alice", "bob"])
            #expect(members.members.map(\.deviceIds) == [[alice.deviceId], [bob.deviceId]])
        }
    }

    @Test("roles: admins remove members, only the owner removes admins, bans keep people out", arguments: TestDatabase.available)
    func roles(database: TestDatabase) async throws {
        try await TestServer.withLive(database: database) { server in
            let alice = try await TestUser.make("alice", on: server)
            let bob = try await TestUser.make("bob", on: server)
            let carol = try await TestUser.make("carol", on: server)
            let dave = try await TestUser.make("dave", on: server)
            let room = try await Self.createRoom(server, alice)
            for user in [bob, carol, dave] { try await Self.join(server, user, room) }
            let path = "/v1/rooms/\(room.code)"
            try await server.expectError(.delete, "\(path)/members/\(carol.userId)", token: bob.accessToken, status: .forbidden, code: .forbidden)
            try await server.expectError(
                .put, "\(path)/members/\(carol.userId)/role", token: bob.accessToken, json: RoleChangeRequest(role: .admin), status: .forbidden,
                code: .forbidden)
            #expect(try await server.request(.put, "\(path)/members/\(bob.userId)/role", token: alice.accessToken, json: RoleChangeRequest(role: .admin)).status == .noContent)
            try await server.expectError(.delete, "\(path)/members/\(alice.userId)", token: bob.accessToken, status: .forbidden, code: .forbidden)
            #expect(try await server.request(.delete, "\(path)/members/\(carol.userId)", token: bob.accessToken).status == .noContent)
            // Kicked, not banned: Carol may come back. Banned: Dave may not.
            try await Self.join(server, carol, room)
            #expect(try await server.request(.post, "\(path)/bans", token: bob.accessToken, json: BanRequest(userId: dave.userId)).status == .noContent)
            try await server.expectError(.post, "\(path)/join", token: dave.accessToken, status: .forbidden, code: .banned)
            #expect(try await server.call(.get, "\(path)/bans", token: alice.accessToken, as: BanListResponse.self).userIds == [dave.userId])
            #expect(try await server.request(.delete, "\(path)/bans/\(dave.userId)", token: alice.accessToken).status == .noContent)
            try await Self.join(server, dave, room)
            try await server.expectError(.delete, path, token: bob.accessToken, status: .forbidden, code: .forbidden)
            // The owner leaves: the admin takes over.
            #expect(try await server.request(.post, "\(path)/leave", token: alice.accessToken).status == .noContent)
            let members = try await server.call(.get, "\(path)/members", token: bob.accessToken, as: MemberListResponse.self)
            #expect(members.members.first { $0.userId == bob.userId }?.role == .owner)
            #expect(!members.members.contains { $0.userId == alice.userId })
            #expect(try await server.request(.delete, path, token: bob.accessToken).status == .noContent)
            try await server.expectError(.get, path, token: bob.accessToken, status: .notFound, code: .notFound)
        }
    }

    @Test("room messages fan out to every member device but the sender's; events are stored for offline members", arguments: TestDatabase.available)
    func fanOutAndEvents(database: TestDatabase) async throws {
        try await TestServer.withLive(database: database) { server in
            let alice = try await TestUser.make("alice", on: server)
            let bob = try await TestUser.make("bob", on: server)
            let carol = try await TestUser.make("carol", on: server)
            let room = try await Self.createRoom(server, alice)
            try await Self.join(server, bob, room)
            let aliceSocket = try await TestSocket.connect(alice, port: server.port)
            let bobSocket = try await TestSocket.connect(bob, port: server.port)
            // Bob's backlog starts with his own join.
            #expect(try await bobSocket.next(matching: Self.roomEvent)?.change == .joined)
            try await Self.join(server, carol, room)
            #expect(try await bobSocket.next(matching: Self.roomEvent)?.userId == carol.userId)
            try await aliceSocket.send(.send(.init(id: "r1", room: room.code, ciphertext: Data("sender key message".utf8))))
            #expect(try await aliceSocket.next(matching: RealtimeTests.accepted)?.id == "r1")
            let delivered = try await bobSocket.next(matching: RealtimeTests.message)
            #expect(delivered?.room == room.code && delivered?.ciphertext == Data("sender key message".utf8))
            // Carol is offline; Alice removes her. She learns it when she connects, after the message.
            #expect(try await server.request(.delete, "/v1/rooms/\(room.code)/members/\(carol.userId)", token: alice.accessToken).status == .noContent)
            #expect(try await bobSocket.next(matching: Self.roomEvent)?.change == .kicked)
            let carolSocket = try await TestSocket.connect(carol, port: server.port)
            var carolSaw: [String] = []
            while let frame = try await carolSocket.next(timeout: 5) {
                switch frame {
                case .roomEvent(let event): carolSaw.append(event.change.rawValue)
                case .message: carolSaw.append("message")
                case .caughtUp: break
                default: continue
                }
                if case .caughtUp = frame { break }
            }
            #expect(carolSaw == ["joined", "message", "kicked"])
            try await carolSocket.send(.send(.init(id: "c1", room: room.code, ciphertext: Data("let me in".utf8))))
            #expect(try await carolSocket.next(matching: RealtimeTests.error)?.code == .notAMember)
            // The sender's own device never receives its own room message.
            #expect(try await aliceSocket.next(timeout: 0.5, matching: RealtimeTests.message) == nil)
            for socket in [aliceSocket, bobSocket, carolSocket] { await socket.close() }
        }
    }

    @Test("history pages newest first, from the reader's joining onward", arguments: TestDatabase.available)
    func history(database: TestDatabase) async throws {
        try await TestServer.withLive(database: database) { server in
            let alice = try await TestUser.make("alice", on: server)
            let bob = try await TestUser.make("bob", on: server)
            let room = try await Self.createRoom(server, alice)
            let socket = try await TestSocket.connect(alice, port: server.port)
            for index in 0..<5 {
                try await socket.send(.send(.init(id: "before\(index)", room: room.code, ciphertext: Data("before \(index)".utf8))))
                _ = try await socket.next(matching: RealtimeTests.accepted)
            }
            try await Self.join(server, bob, room)
            for index in 0..<7 {
                try await socket.send(.send(.init(id: "after\(index)", room: room.code, ciphertext: Data("after \(index)".utf8))))
                _ = try await socket.next(matching: RealtimeTests.accepted)
            }
            let path = "/v1/rooms/\(room.code)/messages"
            let first = try await server.call(.get, "\(path)?limit=3", token: bob.accessToken, as: HistoryPage.self)
            #expect(first.messages.map(\.clientMessageId) == ["after6", "after5", "after4"])
            let before = try #require(first.nextBefore)
            let second = try await server.call(.get, "\(path)?limit=10&before=\(before)", token: bob.accessToken, as: HistoryPage.self)
            #expect(second.messages.map(\.clientMessageId) == ["after3", "after2", "after1", "after0"])
            #expect(second.nextBefore == nil)
            #expect(second.messages.first?.ciphertext == Data("after 3".utf8))
            let owner = try await server.call(.get, "\(path)?limit=200", token: alice.accessToken, as: HistoryPage.self)
            #expect(owner.messages.count == 12)
            try await server.expectError(.get, "\(path)?limit=0", token: bob.accessToken, status: .badRequest, code: .badRequest)
            try await server.expectError(.get, "\(path)?before=x", token: bob.accessToken, status: .badRequest, code: .badRequest)
            let outsider = try await TestUser.make("eve", on: server)
            try await server.expectError(.get, path, token: outsider.accessToken, status: .forbidden, code: .notAMember)
            await socket.close()
        }
    }

    @Test("expired room messages are deleted from history and from offline devices' queues", arguments: TestDatabase.available)
    func retention(database: TestDatabase) async throws {
        try await TestServer.withLive(database: database, configure: {
            $0.sweepInterval = 0.1
            $0.accessTokenLifetime = 7200
        }) { server in
            let alice = try await TestUser.make("alice", on: server)
            let bob = try await TestUser.make("bob", on: server)
            let room = try await Self.createRoom(server, alice, retention: 3600)
            try await Self.join(server, bob, room)
            let socket = try await TestSocket.connect(alice, port: server.port)
            try await socket.send(.send(.init(id: "short-lived", room: room.code, ciphertext: Data("gone in an hour".utf8))))
            _ = try await socket.next(matching: RealtimeTests.accepted)
            let path = "/v1/rooms/\(room.code)/messages"
            #expect(try await server.call(.get, path, token: bob.accessToken, as: HistoryPage.self).messages.count == 1)
            server.clock.advance(by: 3601)
            var remaining = 1
            for _ in 0..<50 where remaining > 0 {
                try await Task.sleep(for: .milliseconds(100))
                remaining = try await server.call(.get, path, token: bob.accessToken, as: HistoryPage.self).messages.count
            }
            #expect(remaining == 0)
            // Bob never connected: his queued copy went too, and so did the membership events queued
            // for him (they expire on their own, not with a message).
            let bobSocket = try await TestSocket.connect(bob, port: server.port)
            var queued: [ServerFrame] = []
            var caughtUp = false
            while let frame = try await bobSocket.next(timeout: 5) {
                if RealtimeTests.caughtUp(frame) != nil {
                    caughtUp = true
                    break
                }
                queued.append(frame)
            }
            #expect(caughtUp)
            #expect(queued.isEmpty, "still queued after expiry: \(queued)")
            await bobSocket.close()
            await socket.close()
        }
    }
}
