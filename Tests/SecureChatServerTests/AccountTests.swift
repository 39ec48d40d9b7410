import Crypto
import Foundation
import HTTPTypes
import NIOCore
import SecureChatAPI
import Testing

@testable import SecureChatServer

@Suite("Accounts and sessions")
struct AccountTests {
    @Test("registration checks usernames and passwords, and a username is taken once", arguments: TestDatabase.available)
    func registrationRules(database: TestDatabase) async throws {
        try await TestServer.withLive(database: database) { server in
            let good = "correct horse battery staple"
            for bad in ["ab", "with space", "_underscorefirst", String(repeating: "a", count: 33), "émile", ""] {
                try await server.expectError(
                    .post, "/v1/accounts", json: RegisterRequest(username: bad, password: good), status: .unprocessableContent,
                    code: .invalidUsername)
            }
            for weak in ["short", String(repeating: "x", count: 73), "ten chars\u{0}!"] {
                try await server.expectError(
                    .post, "/v1/accounts", json: RegisterRequest(username: "alice", password: weak), status: .unprocessableContent,
                    code: .weakPassword)
            }
            let account = try await server.call(
                .post, "/v1/accounts", json: RegisterRequest(username: "Alice", password: good), as: AccountResponse.self)
            #expect(account.username == "alice")
            #expect(account.userId.count == 26)
            try await server.expectError(
                .post, "/v1/accounts", json: RegisterRequest(username: "ALICE", password: good), status: .conflict, code: .usernameTaken)
        }
    }

    @Test("malformed bodies get precise 4xx answers, never a 500", arguments: TestDatabase.available)
    func malformedBodies(database: TestDatabase) async throws {
        try await TestServer.withLive(database: database) { server in
            try await server.expectError(.post, "/v1/accounts", raw: .init(string: "{"), status: .badRequest, code: .invalidJSON)
            try await server.expectError(.post, "/v1/accounts", raw: .init(string: #"{"username": 5, "password": "x"}"#), status: .badRequest, code: .invalidJSON)
            try await server.expectError(.post, "/v1/accounts", raw: .init(string: #"{"username": "bob"}"#), status: .badRequest, code: .invalidJSON)
            try await server.expectError(.post, "/v1/accounts", status: .badRequest, code: .invalidJSON)
            try await server.expectError(
                .post, "/v1/accounts", raw: .init(string: String(repeating: " ", count: APILimits.jsonBodyBytes + 1)),
                status: .contentTooLarge, code: .payloadTooLarge)
            try await server.expectError(.get, "/v1/no-such-route", status: .notFound, code: .notFound)
            try await server.expectError(.get, "/v1/account", status: .unauthorized, code: .unauthorized)
            try await server.expectError(.get, "/v1/account", token: "not.a.token", status: .unauthorized, code: .unauthorized)
        }
    }

    @Test("login: wrong passwords and unknown users get the same answer; success gives working tokens", arguments: TestDatabase.available)
    func login(database: TestDatabase) async throws {
        try await TestServer.withLive(database: database) { server in
            let alice = try await TestUser.make("alice", on: server)
            try await server.expectError(
                .post, "/v1/sessions", json: LoginRequest(username: "alice", password: "wrong password!"), status: .unauthorized,
                code: .invalidCredentials)
            try await server.expectError(
                .post, "/v1/sessions", json: LoginRequest(username: "nobody", password: "wrong password!"), status: .unauthorized,
                code: .invalidCredentials)
            let account = try await server.call(.get, "/v1/account", token: alice.accessToken, as: AccountResponse.self)
            #expect(account.userId == alice.userId)
        }
    }

    @Test("failed logins back off: five free, then 1 s, 2 s, 4 s… before the next try; a success starts over", arguments: TestDatabase.available)
    func loginThrottle(database: TestDatabase) async throws {
        try await TestServer.withLive(database: database) { server in
            _ = try await TestUser.make("alice", on: server)
            let wrong = LoginRequest(username: "alice", password: "wrong password!")
            let right = LoginRequest(username: "alice", password: "correct horse battery staple")
            func retryAfter(_ login: LoginRequest) async throws -> (HTTPResponse.Status, Int?) {
                try await server.client.execute(
                    uri: "/v1/sessions", method: .post, headers: [.contentType: "application/json"],
                    body: ByteBuffer(bytes: try APIJSON.makeEncoder().encode(login))
                ) { ($0.status, $0.headers[.retryAfter].flatMap(Int.init)) }
            }
            for _ in 0..<5 {
                try await server.expectError(.post, "/v1/sessions", json: wrong, status: .unauthorized, code: .invalidCredentials)
            }
            // Even the right password waits: the wait does not depend on what is tried.
            try await server.expectError(.post, "/v1/sessions", json: right, status: .tooManyRequests, code: .rateLimited)
            #expect(try await retryAfter(right) == (.tooManyRequests, 1))
            for expectedWait in [2, 4, 8] {
                server.clock.advance(by: Double(expectedWait / 2))
                try await server.expectError(.post, "/v1/sessions", json: wrong, status: .unauthorized, code: .invalidCredentials)
                #expect(try await retryAfter(right) == (.tooManyRequests, expectedWait))
            }
            // Another address is not slowed down by these failures (the key is username and address):
            // checked in RateLimitTests, where a trusted proxy names the address.
            server.clock.advance(by: 8)
            _ = try await server.call(.post, "/v1/sessions", json: right, as: TokenResponse.self)
            // The success cleared the count: five free failures again.
            for _ in 0..<5 {
                try await server.expectError(.post, "/v1/sessions", json: wrong, status: .unauthorized, code: .invalidCredentials)
            }
            try await server.expectError(.post, "/v1/sessions", json: right, status: .tooManyRequests, code: .rateLimited)
            server.clock.advance(by: 1)
            _ = try await server.call(.post, "/v1/sessions", json: right, as: TokenResponse.self)
        }
    }

    @Test("access tokens: alg none, another algorithm, an unknown kid, a forged signature and expiry are all refused", arguments: TestDatabase.available)
    func tokenPinning(database: TestDatabase) async throws {
        try await TestServer.withLive(database: database) { server in
            let alice = try await TestUser.make("alice", on: server)
            let parts = alice.accessToken.split(separator: ".").map(String.init)
            let header = try JSONSerialization.jsonObject(with: Self.base64URLDecode(parts[0])) as! [String: String]
            let kid = try #require(header["kid"])

            func token(header: [String: String], signature: String) throws -> String {
                let headerPart = Self.base64URLEncode(try JSONSerialization.data(withJSONObject: header, options: .sortedKeys))
                return "\(headerPart).\(parts[1]).\(signature)"
            }
            // alg none, with and without a signature.
            for signature in ["", parts[2]] {
                try await server.expectError(
                    .get, "/v1/account", token: try token(header: ["alg": "none", "typ": "JWT", "kid": kid], signature: signature),
                    status: .unauthorized, code: .unauthorized)
            }
            // HS512 with the right key would verify if the algorithm were not pinned.
            let keyText = try String(
                contentsOf: server.dataDirectory.appendingPathComponent("secrets/jwt-keys/\(kid).key"), encoding: .utf8)
            let key = SymmetricKey(data: try #require(Data(base64Encoded: keyText.trimmingCharacters(in: .whitespacesAndNewlines))))
            let hs512Header = Self.base64URLEncode(
                try JSONSerialization.data(withJSONObject: ["alg": "HS512", "typ": "JWT", "kid": kid], options: .sortedKeys))
            let signingInput = "\(hs512Header).\(parts[1])"
            let hs512 = Self.base64URLEncode(Data(HMAC<SHA512>.authenticationCode(for: Data(signingInput.utf8), using: key)))
            try await server.expectError(.get, "/v1/account", token: "\(signingInput).\(hs512)", status: .unauthorized, code: .unauthorized)
            // The same token under a kid the server does not have.
            try await server.expectError(
                .get, "/v1/account", token: try token(header: ["alg": "HS256", "typ": "JWT", "kid": "other"], signature: parts[2]),
                status: .unauthorized, code: .unauthorized)
            // One flipped signature character.
            var forged = Array(parts[2])
            forged[3] = forged[3] == "A" ? "B" : "A"
            try await server.expectError(
                .get, "/v1/account", token: "\(parts[0]).\(parts[1]).\(String(forged))", status: .unauthorized, code: .unauthorized)
            // Expiry: 15 minutes by default.
            server.clock.advance(by: 15 * 60 + 1)
            try await server.expectError(.get, "/v1/account", token: alice.accessToken, status: .unauthorized, code: .tokenExpired)
        }
    }

    @Test("refresh tokens rotate; presenting a used one ends the whole session", arguments: TestDatabase.available)
    func refreshRotation(database: TestDatabase) async throws {
        try await TestServer.withLive(database: database) { server in
            let alice = try await TestUser.make("alice", on: server)
            let first = try await server.call(
                .post, "/v1/sessions/refresh", json: RefreshRequest(refreshToken: alice.refreshToken), as: TokenResponse.self)
            #expect(first.refreshToken != alice.refreshToken)
            let socket = try await TestSocket.connect(alice, port: server.port)
            _ = try await server.call(.get, "/v1/account", token: first.accessToken, as: AccountResponse.self)
            // The old token again: treated as stolen, the family is revoked.
            try await server.expectError(
                .post, "/v1/sessions/refresh", json: RefreshRequest(refreshToken: alice.refreshToken), status: .unauthorized,
                code: .refreshTokenReused)
            try await server.expectError(
                .post, "/v1/sessions/refresh", json: RefreshRequest(refreshToken: first.refreshToken), status: .unauthorized,
                code: .unauthorized)
            try await server.expectError(.get, "/v1/account", token: first.accessToken, status: .unauthorized, code: .unauthorized)
            #expect(try await socket.next(matching: RealtimeTests.error)?.code == .unauthorized)
            #expect(await socket.closeCode() == .policyViolation)
            try await server.expectError(
                .post, "/v1/sessions/refresh", json: RefreshRequest(refreshToken: "garbage"), status: .unauthorized, code: .unauthorized)
        }
    }

    @Test("logout ends the session; a password change ends the others; deletion removes the account", arguments: TestDatabase.available)
    func sessionEnds(database: TestDatabase) async throws {
        try await TestServer.withLive(database: database) { server in
            let alice = try await TestUser.make("alice", on: server)
            let second = try await server.call(
                .post, "/v1/sessions", json: LoginRequest(username: "alice", password: alice.password), as: TokenResponse.self)
            try await server.request(.delete, "/v1/sessions/current", token: second.accessToken)
            try await server.expectError(.get, "/v1/account", token: second.accessToken, status: .unauthorized, code: .unauthorized)

            let third = try await server.call(
                .post, "/v1/sessions", json: LoginRequest(username: "alice", password: alice.password), as: TokenResponse.self)
            try await server.expectError(
                .put, "/v1/account/password", token: alice.accessToken,
                json: ChangePasswordRequest(currentPassword: "wrong password!", newPassword: "another good password"),
                status: .forbidden, code: .invalidCredentials)
            let changed = try await server.request(
                .put, "/v1/account/password", token: alice.accessToken,
                json: ChangePasswordRequest(currentPassword: alice.password, newPassword: "another good password"))
            #expect(changed.status == .noContent)
            _ = try await server.call(.get, "/v1/account", token: alice.accessToken, as: AccountResponse.self)
            try await server.expectError(.get, "/v1/account", token: third.accessToken, status: .unauthorized, code: .unauthorized)
            try await server.expectError(
                .post, "/v1/sessions", json: LoginRequest(username: "alice", password: alice.password), status: .unauthorized,
                code: .invalidCredentials)

            try await server.expectError(
                .delete, "/v1/account", token: alice.accessToken, json: DeleteAccountRequest(password: alice.password),
                status: .forbidden, code: .invalidCredentials)
            let deleted = try await server.request(
                .delete, "/v1/account", token: alice.accessToken, json: DeleteAccountRequest(password: "another good password"))
            #expect(deleted.status == .noContent)
            try await server.expectError(.get, "/v1/account", token: alice.accessToken, status: .unauthorized, code: .unauthorized)
            _ = try await server.call(
                .post, "/v1/accounts", json: RegisterRequest(username: "alice", password: alice.password), as: AccountResponse.self)
        }
    }

    static func base64URLEncode(_ data: Data) -> String {
        data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    static func base64URLDecode(_ text: String) throws -> Data {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64.append("=") }
        return try #require(Data(base64Encoded: base64))
    }
}
