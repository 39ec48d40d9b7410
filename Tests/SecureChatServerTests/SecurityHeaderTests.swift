import Foundation
import HTTPTypes
import Testing

@testable import SecureChatServer

@Suite("Security headers")
struct SecurityHeaderTests {
    @Test("every answer, API errors and files alike, carries the browser-side protections; HSTS only when asked")
    func headers() async throws {
        try await TestServer.withLive { server in
            for path in ["/health", "/v1/account", "/no/such/route"] {
                let headers = try await server.client.execute(uri: path, method: .get) { $0.headers }
                #expect(headers[.contentSecurityPolicy]?.contains("frame-ancestors 'none'") == true, "\(path)")
                #expect(headers[.contentSecurityPolicy]?.contains("default-src 'none'") == true, "\(path)")
                #expect(headers[.xContentTypeOptions] == "nosniff", "\(path)")
                #expect(headers[HTTPField.Name("X-Frame-Options")!] == "DENY", "\(path)")
                #expect(headers[HTTPField.Name("Referrer-Policy")!] == "no-referrer", "\(path)")
                #expect(headers[HTTPField.Name("Permissions-Policy")!]?.contains("geolocation=()") == true, "\(path)")
                #expect(headers[HTTPField.Name("Cross-Origin-Opener-Policy")!] == "same-origin", "\(path)")
                #expect(headers[HTTPField.Name("Strict-Transport-Security")!] == nil, "\(path)")
                #expect(headers[HTTPField.Name("X-Request-Id")!]?.count == 32, "\(path)")
            }
        }
        try await TestServer.withLive(configure: { $0.strictTransportSecurity = true }) { server in
            let headers = try await server.client.execute(uri: "/health", method: .get) { $0.headers }
            #expect(headers[HTTPField.Name("Strict-Transport-Security")!] == "max-age=31536000")
        }
    }
}
