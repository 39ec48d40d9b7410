import Foundation
import HTTPTypes
import SecureChatAPI
import Testing

@testable import SecureChatServer

@Suite("Audit log of security events")
struct AuditTests {
    static func events(_ server: TestServer, _ query: AuditQuery = AuditQuery()) async throws -> [AuditEvent] {
        let store = try await openStore(configuration: server.configuration, logger: .init(label: "audit-test"))
        defer { Task { await store.shutdown() } }
        return try await store.auditEvents(query)
    }

    @Test("logins, failures, password changes, devices, room passwords, kicks, bans and roles are recorded with who, whom and from where", arguments: TestDatabase.available)
    func recorded(database: TestDatabase) async throws {
        try await TestServer.withLive(database: database, configure: { $0.trustedProxies = [IPAddressRange("127.0.0.1")!] }) { server in
            let alice = try await TestUser.make("alice", on: server)
            let bob = try await TestUser.make("bob", on: server)
            let from = { (address: String) -> HTTPFields in [.xForwardedFor: address] }
            _ = try await server.request(
                .post, "/v1/sessions", token: nil, json: LoginRequest(username: "alice", password: "a wrong guess"), raw: nil,
                headers: from("198.51.100.7"))
            _ = try await server.request(
                .post, "/v1/sessions", token: nil, json: LoginRequest(username: "nobody-here", password: "my actual password maybe"), raw: nil,
                headers: from("198.51.100.8"))
            let room = try await server.call(
                .post, "/v1/rooms", token: alice.accessToken, json: CreateRoomRequest(name: "Team", password: "open sesame"), as: RoomResponse.self)
            _ = try await server.request(.post, "/v1/rooms/\(room.code)/join", token: bob.accessToken, json: JoinRoomRequest(password: "wrong one"))
            server.clock.advance(by: 1)
            try await RoomTests.join(server, bob, room, password: "open sesame")
            _ = try await server.request(.put, "/v1/rooms/\(room.code)/members/\(bob.userId)/role", token: alice.accessToken, json: RoleChangeRequest(role: .admin))
            _ = try await server.request(.put, "/v1/rooms/\(room.code)/password", token: alice.accessToken, json: RoomPasswordRequest(password: "new sesame"))
            _ = try await server.request(.post, "/v1/rooms/\(room.code)/bans", token: alice.accessToken, json: BanRequest(userId: bob.userId))
            let (changed, _) = try await server.request(
                .put, "/v1/account/password", token: bob.accessToken,
                json: ChangePasswordRequest(currentPassword: bob.password, newPassword: "bob's new passphrase"))
            #expect(changed == .noContent)

            let events = try await Self.events(server)
            let summary = events.reversed().map { event in
                "\(event.kind.rawValue) \(event.userId == alice.userId ? "alice" : event.userId == bob.userId ? "bob" : event.userId ?? "-")"
                    + (event.actorUserId.map { $0 == alice.userId ? " by alice" : " by \($0)" } ?? "")
            }
            #expect(
                summary == [
                    "account_created alice", "login alice", "device_added alice", "account_created bob", "login bob", "device_added bob",
                    "login_failed alice", "login_failed -", "wrong_room_password bob", "role_changed bob by alice",
                    "room_password_changed alice", "member_banned bob by alice", "password_changed bob",
                ])
            let failed = events.filter { $0.kind == .loginFailed }
            #expect(Set(failed.map(\.clientAddress)) == ["198.51.100.7", "198.51.100.8"])
            // The unknown username (perhaps a password typed in the wrong box) is not kept.
            #expect(failed.allSatisfy { !$0.detail.contains("nobody") && !$0.detail.contains("password") })
            #expect(events.first { $0.kind == .roleChanged }?.detail == "role admin")
            #expect(events.filter { $0.roomId != nil }.allSatisfy { $0.roomId == events.first { $0.kind == .memberBanned }?.roomId })

            // Filters: by account (as subject or actor), by kind, by time.
            let aboutBob = try await Self.events(server, AuditQuery(userId: bob.userId))
            #expect(aboutBob.count == 7)
            #expect(try await Self.events(server, AuditQuery(kind: .loginFailed)).count == 2)
            #expect(try await Self.events(server, AuditQuery(limit: 3)).map(\.kind) == [.passwordChanged, .memberBanned, .roomPasswordChanged])
            #expect(try await Self.events(server, AuditQuery(since: server.clockMilliseconds + 1)).isEmpty)
        }
    }

    @Test("the audit trail command prints filtered events as text or JSON, and retention deletes old ones")
    func trailAndRetention() async throws {
        try await TestServer.withLive { server in
            _ = try await TestUser.make("alice", on: server)
            let text = try await AuditTrail.lines(
                configuration: server.configuration, userId: nil, kind: "login", since: nil, until: nil, limit: 10, json: false,
                logger: .init(label: "audit-test"))
            #expect(text.count == 1 && text[0].contains(" login user=") && text[0].contains("client=127.0.0.1"))
            let json = try await AuditTrail.lines(
                configuration: server.configuration, userId: nil, kind: nil, since: nil, until: nil, limit: 10, json: true,
                logger: .init(label: "audit-test"))
            #expect(json.count == 3)
            let decoded = try json.map { try JSONDecoder().decode(AuditEvent.self, from: Data($0.utf8)) }
            #expect(decoded.map(\.kind) == [.deviceAdded, .login, .accountCreated])

            let store = try await openStore(configuration: server.configuration, logger: .init(label: "audit-test"))
            #expect(try await store.deleteAudit(before: server.clockMilliseconds) == 0)
            #expect(try await store.deleteAudit(before: server.clockMilliseconds + 1) == 3)
            #expect(try await store.auditEvents(AuditQuery()).isEmpty)
            await store.shutdown()
        }
    }
}
