import AsyncHTTPClient
import Foundation
import HTTPTypes
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import SecureChatAPI
import Testing

@testable import SecureChatServer

/// HTTPS and WSS served directly, the redirect from HTTP, HSTS, and which origins may use the API.
@Suite("TLS, HSTS and cross-origin requests")
struct TransportSecurityTests {
    /// A self-signed certificate for 127.0.0.1 made by openssl, and its key (mode 0600).
    static func makeCertificate(in folder: URL) async throws -> (certificate: String, key: String) {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let certificate = folder.appendingPathComponent("cert.pem").path
        let key = folder.appendingPathComponent("key.pem").path
        let (status, output) = try await ToolProcess.run(
            "openssl",
            [
                "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
                "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", key, "-out", certificate,
            ])
        try #require(status == 0, "openssl could not make a certificate: \(output)")
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: key)
        return (certificate, key)
    }

    static func freePort() async throws -> Int {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).get()
        let port = channel.localAddress?.port ?? 0
        try await channel.close()
        return port
    }

    static func trusting(_ certificate: String) throws -> TLSConfiguration {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(certificate))
        return tls
    }

    @Test("HTTPS and WSS with the configured certificate, HSTS on every answer, plain HTTP redirected with 308")
    func servesTLS() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("securechat-tls-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        let (certificate, key) = try await Self.makeCertificate(in: folder)
        let redirectPort = try await Self.freePort()
        try await TestServer.withLive(configure: { configuration in
            configuration.tlsCertificatePath = certificate
            configuration.tlsKeyPath = key
            configuration.httpRedirectPort = redirectPort
        }) { server in
            var clientConfiguration = HTTPClient.Configuration(tlsConfiguration: try Self.trusting(certificate))
            clientConfiguration.redirectConfiguration = .disallow
            let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: clientConfiguration)
            do {
                let response = try await client.execute(HTTPClientRequest(url: "https://127.0.0.1:\(server.port)/health"), timeout: .seconds(10))
                #expect(response.status == .ok)
                #expect(response.headers.first(name: "Strict-Transport-Security") == "max-age=31536000")
                _ = try await response.body.collect(upTo: 1 << 16)

                // Plain HTTP on the TLS port gets no answer.
                var plain = HTTPClientRequest(url: "http://127.0.0.1:\(server.port)/health")
                plain.method = .GET
                await #expect(throws: (any Error).self) { _ = try await client.execute(plain, timeout: .seconds(5)) }

                var redirected = HTTPClientRequest(url: "http://127.0.0.1:\(redirectPort)/v1/rooms?x=1")
                redirected.method = .POST
                let redirect = try await client.execute(redirected, timeout: .seconds(10))
                #expect(redirect.status == .permanentRedirect)
                #expect(redirect.headers.first(name: "Location") == "https://127.0.0.1:\(server.port)/v1/rooms?x=1")

                // An account over HTTPS, then its socket over WSS.
                var register = HTTPClientRequest(url: "https://127.0.0.1:\(server.port)/v1/accounts")
                register.method = .POST
                register.body = .bytes(ByteBuffer(bytes: try APIJSON.makeEncoder().encode(RegisterRequest(username: "alice", password: "correct horse battery"))))
                #expect(try await client.execute(register, timeout: .seconds(10)).status == .created)
                let socket = try await TestSocket(port: server.port, tls: try Self.trusting(certificate))
                try await socket.send(.hello(.init(token: "not a token", deviceId: 1)))
                #expect(try await socket.next(matching: RealtimeTests.error)?.code == .unauthorized)
                await socket.close()
            } catch {
                try? await client.shutdown()
                throw error
            }
            try await client.shutdown()
        }
    }

    @Test("a JWT key, an at-rest key or a metrics token others can read stops the server at start-up")
    func secretFilePermissions() async throws {
        for secret in ["secrets/jwt-keys", "secrets/at-rest-keys", "secrets/metrics-token"] {
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("securechat-secrets-\(UUID().uuidString)")
            defer { try? FileManager.default.removeItem(at: folder) }
            var configuration = ServerConfiguration()
            configuration.dataDirectory = folder
            configuration.port = 0
            // A first start makes every secret, readable by the owner only.
            let services = try await makeServices(configuration: configuration, logger: .init(label: "secrets-test"))
            await services.store.shutdown()
            var path = folder.appendingPathComponent(secret).path
            if secret != "secrets/metrics-token" {
                let key = try #require(try FileManager.default.contentsOfDirectory(atPath: path).first { $0.hasSuffix(".key") })
                path += "/" + key
            }
            try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: path)
            await #expect(throws: (any Error).self, "\(secret)") {
                let services = try await makeServices(configuration: configuration, logger: .init(label: "secrets-test"))
                await services.store.shutdown()
            }
        }
    }

    @Test("a TLS key others can read stops the server at start-up")
    func keyPermissions() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("securechat-tls-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        let (certificate, key) = try await Self.makeCertificate(in: folder)
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: key)
        var configuration = ServerConfiguration()
        configuration.dataDirectory = folder.appendingPathComponent("data")
        configuration.port = 0
        configuration.tlsCertificatePath = certificate
        configuration.tlsKeyPath = key
        await #expect(throws: FilePermissions.TooOpen.self) {
            _ = try await buildApplication(configuration: configuration, logger: .init(label: "tls-test"))
        }
    }

    @Test("only the server's own origin and listed origins may use the API and open sockets; preflights are answered")
    func crossOrigin() async throws {
        try await TestServer.withLive(configure: { $0.allowedOrigins = ["https://app.example.org"] }) { server in
            let own = "http://127.0.0.1:\(server.port)"
            func preflight(_ origin: String) async throws -> (HTTPResponse.Status, HTTPFields) {
                try await server.client.execute(
                    uri: "/v1/rooms", method: .options,
                    headers: [.origin: origin, .accessControlRequestMethod: "POST", .accessControlRequestHeaders: "authorization, content-type"]
                ) { ($0.status, $0.headers) }
            }
            let (listedStatus, listed) = try await preflight("https://app.example.org")
            #expect(listedStatus == .noContent)
            #expect(listed[.accessControlAllowOrigin] == "https://app.example.org")
            #expect(listed[.accessControlAllowHeaders] == "Authorization, Content-Type")
            #expect(listed[.accessControlAllowCredentials] == nil)
            let (foreignStatus, foreign) = try await preflight("https://evil.example")
            #expect(foreignStatus == .forbidden && foreign[.accessControlAllowOrigin] == nil)

            // Answers, errors included, tell a listed origin it may read them, and nobody else.
            let answer = try await server.client.execute(uri: "/v1/account", method: .get, headers: [.origin: "https://app.example.org"]) { $0 }
            #expect(answer.status == .unauthorized)
            #expect(answer.headers[.accessControlAllowOrigin] == "https://app.example.org")
            #expect(answer.headers[.accessControlExposeHeaders]?.contains("Retry-After") == true)
            // A "simple" request (no preflight) from a foreign page is refused before any handler runs.
            let foreignPost = try await server.client.execute(
                uri: "/v1/accounts", method: .post, headers: [.origin: "https://evil.example", .contentType: "text/plain"],
                body: ByteBuffer(string: #"{"username":"planted","password":"correct horse battery"}"#)
            ) { $0 }
            #expect(foreignPost.status == .forbidden && foreignPost.headers[.accessControlAllowOrigin] == nil)
            #expect(foreignPost.headers[.vary] == "Origin")
            try await server.expectError(
                .post, "/v1/sessions", json: LoginRequest(username: "planted", password: "correct horse battery"), status: .unauthorized,
                code: .invalidCredentials)
            // The server's own page is served (over a client that names the host as the page does).
            let (ownPost, _) = try await HTTPTransport(port: server.port).request(
                .post, "/v1/accounts", token: nil, json: RegisterRequest(username: "ownpage", password: "correct horse battery"), raw: nil,
                headers: [.origin: own])
            #expect(ownPost == .created)

            // WebSockets: an upgrade from a foreign page is refused before any frame.
            let origins: [(String?, Int)] = [
                (own, 101), ("https://app.example.org", 101), ("https://evil.example", 403), ("null", 403),
                // Not a page: nothing, or what WebSocket libraries write (a ws: scheme, no port).
                (nil, 101), ("ws://127.0.0.1", 101),
            ]
            for (origin, expected) in origins {
                let socket = try await RawWebSocket.connect(port: server.port, extraHeaders: origin.map { ["Origin: \($0)"] } ?? [])
                #expect(socket.status == expected, "\(origin ?? "no origin"): \(socket.responseBody)")
                await socket.close()
            }
        }
        #expect(CrossOriginPolicy.isSameOrigin("https://chat.example.org", host: "chat.example.org:443"))
        #expect(CrossOriginPolicy.isSameOrigin("https://chat.example.org:443", host: "chat.example.org"))
        #expect(!CrossOriginPolicy.isSameOrigin("https://chat.example.org", host: "chat.example.org:8443"))
        #expect(!CrossOriginPolicy.isSameOrigin("https://chat.example.org.evil.example", host: "chat.example.org"))
        #expect(HTTPSRedirectHandler.hostname("chat.example.org:80") == "chat.example.org")
        #expect(HTTPSRedirectHandler.hostname("[::1]:80") == "[::1]")
        #expect(HTTPSRedirectHandler.hostname("evil.example/\r\nSet-Cookie: x") == nil)
    }
}
