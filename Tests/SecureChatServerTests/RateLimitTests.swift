import Foundation
import HTTPTypes
import NIOWebSocket
import SecureChatAPI
import Testing

@testable import SecureChatServer

@Suite("Rate limits, client addresses behind proxies")
struct RateLimitTests {
    static let loopback = [IPAddressRange("127.0.0.1")!, IPAddressRange("::1")!]

    static func from(_ address: String) -> HTTPFields { [HTTPField.Name.xForwardedFor: address] }

    @Test("every request counts against its client address: 429 with Retry-After, then the bucket refills")
    func perAddress() async throws {
        try await TestServer.withLive(configure: { configuration in
            configuration.rateLimits.requestsPerAddress = .init(burst: 3, perSecond: 0.5)
            configuration.trustedProxies = Self.loopback
        }) { server in
            for _ in 0..<3 {
                #expect(try await server.request(.get, "/health", headers: Self.from("203.0.113.5")).status == .ok)
            }
            let refused = try await server.client.execute(uri: "/health", method: .get, headers: Self.from("203.0.113.5")) { $0 }
            #expect(refused.status == .tooManyRequests)
            #expect(refused.headers[.retryAfter] == "2")
            #expect(try APIJSON.makeDecoder().decode(APIErrorBody.self, from: Data(buffer: refused.body)).error.code == .rateLimited)
            // Another client behind the same proxy has its own budget.
            #expect(try await server.request(.get, "/health", headers: Self.from("203.0.113.6")).status == .ok)
            // What the client itself put in the header (left of what the proxy appended) is not believed.
            #expect(try await server.request(.get, "/health", headers: Self.from("198.51.100.1, 203.0.113.5")).status == .tooManyRequests)
            server.clock.advance(by: 2)
            #expect(try await server.request(.get, "/health", headers: Self.from("203.0.113.5")).status == .ok)
            #expect(try await server.request(.get, "/health", headers: Self.from("203.0.113.5")).status == .tooManyRequests)
        }
    }

    @Test("X-Forwarded-For from a peer that is not a trusted proxy is ignored")
    func untrustedForwardedFor() async throws {
        try await TestServer.withLive(configure: { configuration in
            configuration.rateLimits.requestsPerAddress = .init(burst: 2, perSecond: 0.01)
        }) { server in
            var statuses: [HTTPResponse.Status] = []
            for claimed in ["203.0.113.1", "203.0.113.2", "203.0.113.3"] {
                statuses.append(try await server.request(.get, "/health", headers: Self.from(claimed)).status)
            }
            // All three were counted against 127.0.0.1, whatever they claimed.
            #expect(statuses == [.ok, .ok, .tooManyRequests])
        }
    }

    @Test("an account's requests share one budget whatever address they come from; room creation has its own")
    func perAccount() async throws {
        try await TestServer.withLive(configure: { configuration in
            configuration.rateLimits.requestsPerAccount = .init(burst: 8, perSecond: 0.01)
            configuration.trustedProxies = Self.loopback
        }) { server in
            let alice = try await TestUser.make("alice", on: server)
            let bob = try await TestUser.make("bob", on: server)
            // make() spent one of alice's eight (registering her device).
            for index in 0..<7 {
                let (status, _) = try await server.request(
                    .get, "/v1/account", token: alice.accessToken, json: nil, raw: nil, headers: Self.from("203.0.113.\(index)"))
                #expect(status == .ok)
            }
            try await server.expectError(
                .get, "/v1/account", token: alice.accessToken, headers: Self.from("203.0.113.99"), status: .tooManyRequests, code: .rateLimited)
            _ = try await server.call(.get, "/v1/account", token: bob.accessToken, as: AccountResponse.self)
        }
        try await TestServer.withLive { server in
            let alice = try await TestUser.make("alice", on: server)
            for index in 0..<5 {
                _ = try await server.call(.post, "/v1/rooms", token: alice.accessToken, json: CreateRoomRequest(name: "Room \(index)"), as: RoomResponse.self)
            }
            try await server.expectError(
                .post, "/v1/rooms", token: alice.accessToken, json: CreateRoomRequest(name: "One too many"), status: .tooManyRequests,
                code: .rateLimited)
            server.clock.advance(by: 12)
            _ = try await server.call(.post, "/v1/rooms", token: alice.accessToken, json: CreateRoomRequest(name: "Later"), as: RoomResponse.self)
        }
    }

    @Test("password checks (bcrypt) are budgeted per address; failed logins back off per username and address")
    func passwordChecks() async throws {
        try await TestServer.withLive(configure: { configuration in
            configuration.rateLimits.passwordChecksPerAddress = .perMinute(3)
            configuration.trustedProxies = Self.loopback
        }) { server in
            let register = { (name: String, address: String) async throws -> HTTPResponse.Status in
                try await server.request(
                    .post, "/v1/accounts", token: nil, json: RegisterRequest(username: name, password: "correct horse battery staple"), raw: nil,
                    headers: Self.from(address)
                ).status
            }
            var statuses: [HTTPResponse.Status] = []
            for (name, address) in [("alice", "203.0.113.1"), ("bob", "203.0.113.1"), ("carol", "203.0.113.1"), ("dave", "203.0.113.1")] {
                statuses.append(try await register(name, address))
            }
            // Another address has its own budget.
            statuses.append(try await register("dave", "203.0.113.2"))
            #expect(statuses == [.created, .created, .created, .tooManyRequests, .created])
        }
        try await TestServer.withLive(configure: { configuration in
            configuration.trustedProxies = Self.loopback
        }) { server in
            _ = try await TestUser.make("alice", on: server)
            let wrong = LoginRequest(username: "alice", password: "not her password")
            for _ in 0..<5 {
                try await server.expectError(
                    .post, "/v1/sessions", json: wrong, headers: Self.from("203.0.113.7"), status: .unauthorized, code: .invalidCredentials)
            }
            try await server.expectError(
                .post, "/v1/sessions", json: wrong, headers: Self.from("203.0.113.7"), status: .tooManyRequests, code: .rateLimited)
            // Someone guessing from one address does not lock alice out from hers.
            let (status, _) = try await server.request(
                .post, "/v1/sessions", token: nil, json: LoginRequest(username: "alice", password: "correct horse battery staple"), raw: nil,
                headers: Self.from("203.0.113.8"))
            #expect(status == .ok)
        }
    }

    @Test("failed logins for one username from many addresses back off for everyone, for a minute at most")
    func distributedGuessing() async throws {
        try await TestServer.withLive(configure: { configuration in
            configuration.trustedProxies = Self.loopback
            configuration.rateLimits.failedLoginsPerAccountBeforeBackoff = 4
            configuration.metricsToken = MetricsTests.token
        }) { server in
            _ = try await TestUser.make("alice", on: server)
            _ = try await TestUser.make("bob", on: server)
            let wrong = LoginRequest(username: "alice", password: "not her password")
            // Four guesses, each from an address of its own: none reaches its per-address backoff.
            for index in 0..<4 {
                try await server.expectError(
                    .post, "/v1/sessions", json: wrong, headers: Self.from("198.51.100.\(index)"), status: .unauthorized, code: .invalidCredentials)
            }
            try await server.expectError(
                .post, "/v1/sessions", json: wrong, headers: Self.from("198.51.100.50"), status: .tooManyRequests, code: .rateLimited)
            // The backoff is the account's: its owner waits too, but never long, and others do not.
            let right = LoginRequest(username: "alice", password: "correct horse battery staple")
            let refused = try await server.request(.post, "/v1/sessions", token: nil, json: right, raw: nil, headers: Self.from("192.0.2.10"))
            #expect(refused.status == .tooManyRequests)
            let bob = LoginRequest(username: "bob", password: "correct horse battery staple")
            #expect(try await server.request(.post, "/v1/sessions", token: nil, json: bob, raw: nil, headers: Self.from("198.51.100.50")).status == .ok)
            server.clock.advance(by: 60)
            #expect(try await server.request(.post, "/v1/sessions", token: nil, json: right, raw: nil, headers: Self.from("192.0.2.10")).status == .ok)
            let values = try await MetricsTests.scrape(server)
            #expect((values[#"securechat_rate_limited_total{limit="failed_logins_per_account"}"#] ?? 0) >= 2)
        }
    }

    @Test("a logged-in user's password, asked again to change it, backs off like a login")
    func changePasswordBackoff() async throws {
        try await TestServer.withLive { server in
            let alice = try await TestUser.make("alice", on: server)
            let wrong = ChangePasswordRequest(currentPassword: "a wrong guess here", newPassword: "another horse battery staple")
            for _ in 0..<5 {
                try await server.expectError(
                    .put, "/v1/account/password", token: alice.accessToken, json: wrong, status: .forbidden, code: .invalidCredentials)
            }
            try await server.expectError(
                .put, "/v1/account/password", token: alice.accessToken,
                json: ChangePasswordRequest(currentPassword: alice.password, newPassword: "another horse battery staple"),
                status: .tooManyRequests, code: .rateLimited)
            server.clock.advance(by: 1)
            let (status, _) = try await server.request(
                .put, "/v1/account/password", token: alice.accessToken,
                json: ChangePasswordRequest(currentPassword: alice.password, newPassword: "another horse battery staple"))
            #expect(status == .noContent)
        }
    }

    @Test("sockets per address: one too many hears rate_limited and closes with 1013; a freed slot can be used again")
    func socketsPerAddress() async throws {
        try await TestServer.withLive(configure: { $0.rateLimits.socketsPerAddress = 2 }) { server in
            let alice = try await TestUser.make("alice", on: server)
            let bob = try await TestUser.make("bob", on: server)
            let first = try await TestSocket.connect(alice, port: server.port)
            let second = try await TestSocket.connect(bob, port: server.port)
            let third = try await TestSocket(port: server.port)
            #expect(try await third.next(matching: RealtimeTests.error)?.code == .rateLimited)
            #expect(await third.closeCode() == .unknown(1013))
            await first.close()
            // The server notices the close on its side shortly after.
            var reconnected: TestSocket?
            for _ in 0..<50 where reconnected == nil {
                let attempt = try await TestSocket(port: server.port)
                try await attempt.send(.hello(.init(token: alice.accessToken, deviceId: alice.deviceId)))
                if case .welcome? = try await attempt.next() { reconnected = attempt } else { try await Task.sleep(for: .milliseconds(100)) }
            }
            #expect(reconnected != nil)
            await reconnected?.close()
            await second.close()
        }
    }

    @Test("a socket over its budget is read more slowly, told so once, and loses nothing it pipelined")
    func socketBudget() async throws {
        try await TestServer.withLive(configure: { $0.rateLimits.framesPerSocket = .init(burst: 3, perSecond: 4) }) { server in
            let alice = try await TestUser.make("alice", on: server)
            let bob = try await TestUser.make("bob", on: server)
            let socket = try await TestSocket.connect(alice, port: server.port)
            let receiver = try await TestSocket.connect(bob, port: server.port)
            let count = 12
            for index in 0..<count { try await socket.send(RealtimeTests.pairwise("m\(index)", to: bob, "hello \(index)")) }
            var accepted: [String] = []
            var warnings: [ServerFrame.ErrorFrame] = []
            while accepted.count < count, let frame = try await socket.next() {
                switch frame {
                case .accepted(let answer): accepted.append(answer.id)
                case .error(let error): warnings.append(error)
                default: break
                }
            }
            #expect(accepted == (0..<count).map { "m\($0)" })
            // Told, without an id (nothing was refused), with when the budget is back.
            #expect(!warnings.isEmpty && warnings.allSatisfy { $0.code == .rateLimited && $0.id == nil && ($0.retryAfter ?? 0) >= 1 })
            var received: [String] = []
            while received.count < count, let delivery = try await receiver.next(matching: RealtimeTests.message) {
                received.append(delivery.clientMessageId)
                // Acknowledgements cost nothing, however many.
                try await receiver.send(.ack(.init(seq: delivery.seq)))
            }
            #expect(received == accepted)
            await receiver.close()
            await socket.close()
        }
    }

    @Test("SECURECHAT_RATE_LIMITS: off, overrides by name, and precise errors")
    func parsing() throws {
        let off = try RateLimits(parsing: "off")
        #expect(off.framesPerSocket.burst == .infinity && off.socketsPerAddress == .max)
        let custom = try RateLimits(parsing: "frames_per_socket=50/10, sockets_per_address=3,maximum_backoff_seconds=60")
        #expect(custom.framesPerSocket == .init(burst: 50, perSecond: 10))
        #expect(custom.socketsPerAddress == 3 && custom.maximumBackoff == 60)
        #expect(custom.requestsPerAddress == RateLimits().requestsPerAddress)
        for bad in [
            "frames_per_socket=50", "frames_per_socket=0/1", "sockets_per_address=-1", "nonsense=1/1", "frames_per_socket",
            "requests_per_address=1/1e-300", "requests_per_address=inf/1", "maximum_backoff_seconds=1e300",
        ] {
            #expect(throws: (any Error).self, "\(bad)") { try RateLimits(parsing: bad) }
        }
    }

    @Test("client addresses: CIDR ranges, IPv6, IPv4-mapped peers, and only the nearest untrusted hop is believed")
    func clientAddresses() {
        let proxies = [IPAddressRange("10.0.0.0/8")!, IPAddressRange("fd00::/8")!]
        #expect(IPAddressRange("10.1.2.3/33") == nil && IPAddressRange("not an address") == nil && IPAddressRange("::1/129") == nil)
        #expect(proxies[0].contains("10.255.0.1") && !proxies[0].contains("11.0.0.1"))
        #expect(proxies[0].contains("::ffff:10.0.0.9"))
        #expect(proxies[1].contains("fd12::1") && !proxies[1].contains("fe80::1"))
        #expect(IPAddressRange("192.168.1.0/24")!.description == "192.168.1.0/24")
        // Not from a proxy: the peer, whatever the header says.
        #expect(ClientAddress.resolve(peer: "203.0.113.9", forwardedFor: ["1.2.3.4"], trustedProxies: proxies) == "203.0.113.9")
        // Through two trusted proxies: the first hop that is not one.
        #expect(ClientAddress.resolve(peer: "10.0.0.2", forwardedFor: ["6.6.6.6, 203.0.113.9, 10.0.0.1"], trustedProxies: proxies) == "203.0.113.9")
        // Headers split over several lines read as one list.
        #expect(ClientAddress.resolve(peer: "10.0.0.2", forwardedFor: ["6.6.6.6", "203.0.113.9"], trustedProxies: proxies) == "203.0.113.9")
        // Garbage in the list stops the walk at the last good hop.
        #expect(ClientAddress.resolve(peer: "10.0.0.2", forwardedFor: ["junk, 10.0.0.7"], trustedProxies: proxies) == "10.0.0.7")
        #expect(ClientAddress.resolve(peer: "10.0.0.2", forwardedFor: [], trustedProxies: proxies) == "10.0.0.2")
        // Limits count IPv6 clients by their /64, which one host can have to itself.
        #expect(ClientAddress.limitKey("2001:db8:1:2:aaaa::1") == ClientAddress.limitKey("2001:db8:1:2:bbbb::99"))
        #expect(ClientAddress.limitKey("2001:db8:1:2::1") != ClientAddress.limitKey("2001:db8:1:3::1"))
        #expect(ClientAddress.limitKey("::ffff:192.0.2.7") == "192.0.2.7" && ClientAddress.limitKey("192.0.2.7") == "192.0.2.7")
    }

    @Test("the failure backoff doubles from one second, caps, and forgets a key after an hour of quiet")
    func backoff() {
        let backoff = FailureBackoff(freeFailures: 2, maximumWait: 8)
        let start = Date(timeIntervalSince1970: 1_000_000)
        backoff.recordFailure("k", now: start)
        #expect(backoff.retryAfter("k", now: start) == nil)
        backoff.recordFailure("k", now: start)
        #expect(backoff.retryAfter("k", now: start) == 1)
        var now = start
        for expected in [2, 4, 8, 8] {
            now = now.addingTimeInterval(Double(expected))
            #expect(backoff.retryAfter("k", now: now) == nil)
            backoff.recordFailure("k", now: now)
            #expect(backoff.retryAfter("k", now: now) == expected)
        }
        #expect(backoff.retryAfter("other", now: now) == nil)
        // Quiet for an hour: a fresh start with two free failures.
        now = now.addingTimeInterval(3600)
        backoff.recordFailure("k", now: now)
        #expect(backoff.retryAfter("k", now: now) == nil)
    }
}
