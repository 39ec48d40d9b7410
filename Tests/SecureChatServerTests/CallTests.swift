import Crypto
import Foundation
import SecureChatAPI
import Testing

@testable import SecureChatServer

@Suite("ICE servers for calls")
struct CallTests {
    @Test("TURN credentials follow the TURN REST scheme, expire, are per user and rate-limited")
    func turnCredentials() async throws {
        let secret = Data("a secret shared with coturn".utf8)
        try await TestServer.withLive(database: .sqlite, configure: { configuration in
            configuration.stunURLs = ["stun:stun.example.org:3478"]
            configuration.turnURLs = ["turn:turn.example.org:3478?transport=udp", "turns:turn.example.org:5349"]
            configuration.turnSecret = secret
            configuration.turnCredentialLifetime = 600
        }) { server in
            let alice = try await TestUser.make("alice", on: server)
            let answer = try await server.call(.get, "/v1/turn", token: alice.accessToken, as: ICEServersResponse.self)
            #expect(answer.iceTransportPolicy == "all")
            #expect(answer.iceServers.count == 2)
            #expect(answer.iceServers[0] == ICEServer(urls: ["stun:stun.example.org:3478"]))
            let turn = answer.iceServers[1]
            #expect(turn.urls == ["turn:turn.example.org:3478?transport=udp", "turns:turn.example.org:5349"])
            let username = try #require(turn.username)
            let parts = username.split(separator: ":")
            #expect(parts.count == 2 && parts[1] == Substring(alice.userId))
            let expiry = try #require(Double(parts[0]))
            // 600 seconds from the server's clock (a manual clock in these tests), in whole seconds.
            #expect(expiry == server.clock.now.addingTimeInterval(600).timeIntervalSince1970.rounded(.down))
            #expect(try #require(answer.expiresAt).timeIntervalSince1970 == expiry)
            // What coturn computes from the same secret: HMAC-SHA1 of the username, base64.
            let expected = Data(HMAC<Insecure.SHA1>.authenticationCode(for: Data(username.utf8), using: SymmetricKey(data: secret))).base64EncodedString()
            #expect(turn.credential == expected)

            try await server.expectError(.get, "/v1/turn", token: nil, status: .unauthorized, code: .unauthorized)
            // Credentials made later expire later.
            server.clock.advance(by: 30)
            let later = try await server.call(.get, "/v1/turn", token: alice.accessToken, as: ICEServersResponse.self)
            #expect(try #require(later.expiresAt).timeIntervalSince1970 == expiry + 30)
            // A bucket of twenty, refilled at twenty a minute: the 30 s wait refilled it, so 19 more
            // go through, then 429 with Retry-After.
            for _ in 0..<19 { _ = try await server.call(.get, "/v1/turn", token: alice.accessToken, as: ICEServersResponse.self) }
            let (status, _) = try await server.request(.get, "/v1/turn", token: alice.accessToken)
            #expect(status == .tooManyRequests)
            let bob = try await TestUser.make("bob", on: server)
            #expect(try await server.call(.get, "/v1/turn", token: bob.accessToken, as: ICEServersResponse.self).iceServers.count == 2)
        }
    }

    @Test("without TURN: no servers and no credentials, and never a relay-only policy")
    func withoutTurn() async throws {
        try await TestServer.withLive(database: .sqlite, configure: { configuration in
            configuration.turnRelayOnly = true
        }) { server in
            let alice = try await TestUser.make("alice", on: server)
            let answer = try await server.call(.get, "/v1/turn", token: alice.accessToken, as: ICEServersResponse.self)
            #expect(answer.iceServers.isEmpty && answer.expiresAt == nil && answer.iceTransportPolicy == "all")
        }
    }
}
