import Foundation
import HTTPTypes
import SecureChatAPI
import Testing

@testable import SecureChatServer

@Suite("Prometheus metrics")
struct MetricsTests {
    static let token = "metrics-token-for-tests-0123456789"

    /// `name{labels}` → value, from the exposition text.
    static func scrape(_ server: TestServer) async throws -> [String: Double] {
        let (status, body) = try await server.request(
            .get, "/metrics", token: nil, json: nil, raw: nil, headers: [.authorization: "Bearer \(token)"])
        #expect(status == .ok)
        var values: [String: Double] = [:]
        for line in String(decoding: body, as: UTF8.self).split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
            values[String(line[..<space])] = value
        }
        return values
    }

    @Test("/metrics needs the metrics token, compared in constant time; the text is Prometheus' format")
    func protected() async throws {
        try await TestServer.withLive(configure: { $0.metricsToken = Self.token }) { server in
            try await server.expectError(.get, "/metrics", status: .unauthorized, code: .unauthorized)
            try await server.expectError(
                .get, "/metrics", headers: [.authorization: "Bearer \(Self.token.dropLast())"], status: .unauthorized, code: .unauthorized)
            try await server.expectError(
                .get, "/metrics", headers: [.authorization: "Bearer \(Self.token)x"], status: .unauthorized, code: .unauthorized)
            let response = try await server.client.execute(
                uri: "/metrics", method: .get, headers: [.authorization: "Bearer \(Self.token)"]) { $0 }
            #expect(response.status == .ok)
            #expect(response.headers[.contentType]?.hasPrefix("text/plain; version=0.0.4") == true)
            let text = String(buffer: response.body)
            #expect(text.contains("# HELP securechat_messages_accepted_total"))
            #expect(text.contains("# TYPE securechat_delivery_latency_seconds histogram"))
            let values = try await Self.scrape(server)
            #expect(values[#"securechat_build_info{version="\#(ServerBuild.version)",swift="\#(ServerBuild.swiftVersion)"}"#] == 1)
        }
    }

    @Test("without a configured token one is generated in the data folder, readable by its owner only")
    func generatedToken() async throws {
        try await TestServer.withLive { server in
            let file = server.dataDirectory.appendingPathComponent("secrets/metrics-token")
            let attributes = try FileManager.default.attributesOfItem(atPath: file.path)
            #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)
            let token = try String(contentsOf: file, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(token.count == 43)
            let (status, _) = try await server.request(.get, "/metrics", token: token)
            #expect(status == .ok)
        }
    }

    @Test("messages, deliveries, sockets, authentication failures, rate limits and requests are counted")
    func counts() async throws {
        try await TestServer.withLive(configure: { configuration in
            configuration.metricsToken = Self.token
            configuration.rateLimits.roomsCreatedPerAccount = .perMinute(1)
        }) { server in
            let alice = try await TestUser.make("alice", on: server)
            let bob = try await TestUser.make("bob", on: server)
            try await server.expectError(
                .post, "/v1/sessions", json: LoginRequest(username: "alice", password: "not the password"), status: .unauthorized,
                code: .invalidCredentials)
            try await server.expectError(.get, "/v1/account", token: "forged", status: .unauthorized, code: .unauthorized)
            _ = try await server.call(.post, "/v1/rooms", token: alice.accessToken, json: CreateRoomRequest(name: "One"), as: RoomResponse.self)
            try await server.expectError(
                .post, "/v1/rooms", token: alice.accessToken, json: CreateRoomRequest(name: "Two"), status: .tooManyRequests, code: .rateLimited)

            let refused = try await TestSocket(port: server.port)
            try await refused.send(.hello(.init(token: "forged", deviceId: 1)))
            _ = try await refused.next(matching: RealtimeTests.error)
            let sender = try await TestSocket.connect(alice, port: server.port)
            let receiver = try await TestSocket.connect(bob, port: server.port)
            for index in 0..<3 {
                try await sender.send(RealtimeTests.pairwise("m\(index)", to: bob, "hello"))
                _ = try await sender.next(matching: RealtimeTests.accepted)
                _ = try await receiver.next(matching: RealtimeTests.message)
            }
            // A retried send is not counted twice.
            try await sender.send(RealtimeTests.pairwise("m0", to: bob, "hello"))
            #expect(try await sender.next(matching: RealtimeTests.accepted)?.duplicate == true)

            let values = try await Self.scrape(server)
            #expect(values[#"securechat_messages_accepted_total{kind="direct"}"#] == 3)
            #expect(values[#"securechat_messages_accepted_total{kind="room"}"#] == 0)
            #expect(values["securechat_deliveries_sent_total"] == 3)
            #expect(values["securechat_websocket_connections"] == 2)
            #expect(values[#"securechat_websocket_authentications_total{result="ok"}"#] == 2)
            #expect(values[#"securechat_websocket_authentications_total{result="refused"}"#] == 1)
            #expect(values[#"securechat_authentication_failures_total{kind="password"}"#] == 1)
            #expect(values[#"securechat_authentication_failures_total{kind="token"}"#] == 2)
            #expect(values[#"securechat_rate_limited_total{limit="rooms_created_per_account"}"#] == 1)
            #expect(values[#"securechat_http_requests_total{method="POST",route="/v1/sessions",status="401"}"#] == 1)
            #expect(values[#"securechat_http_requests_total{method="POST",route="/v1/rooms",status="429"}"#] == 1)
            #expect(values[#"securechat_delivery_latency_seconds_count"#] == 3)
            #expect((values[#"securechat_database_duration_seconds_count{operation="message_batch"}"#] ?? 0) >= 1)
            // Paths never become labels: a room code or an attachment id would be a series each.
            #expect(!values.keys.contains { $0.contains("route=\"/v1/rooms/") && !$0.contains("{code}") })

            await receiver.close()
            await sender.close()
            var connections = 2.0
            for _ in 0..<50 where connections != 0 {
                try await Task.sleep(for: .milliseconds(100))
                connections = try await Self.scrape(server)["securechat_websocket_connections"] ?? -1
            }
            #expect(connections == 0)
        }
    }

    @Test("every series the Grafana dashboard queries is one the server exports")
    func dashboardMatchesMetrics() async throws {
        let dashboard = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("deploy/grafana/securechat.json")
        let text = try String(contentsOf: dashboard, encoding: .utf8)
        _ = try JSONSerialization.jsonObject(with: Data(text.utf8))
        let queried = Set(text.matches(of: /securechat_[a-z_]+/).map { String($0.output) })
        #expect(queried.count >= 10)
        try await TestServer.withLive(configure: { $0.metricsToken = Self.token }) { server in
            _ = try await server.request(.get, "/health")
            let (_, body) = try await server.request(
                .get, "/metrics", token: nil, json: nil, raw: nil, headers: [.authorization: "Bearer \(Self.token)"])
            let exported = Set(
                String(decoding: body, as: UTF8.self).split(separator: "\n").filter { $0.hasPrefix("# TYPE ") }
                    .map { String($0.split(separator: " ")[2]) })
            for name in queried {
                let base = name.replacing(/_(bucket|count|sum)$/, with: "")
                #expect(exported.contains(base), "the dashboard queries \(name), which the server does not export")
            }
        }
    }
}
