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
                // Hummingbird's id: a per-process random prefix in hex (not zero-padded, so 1 to 16
                // digits) and a zero-padded 16-digit counter.
                let requestId = headers[HTTPField.Name("X-Request-Id")!] ?? ""
                #expect((17...32).contains(requestId.count) && requestId.allSatisfy(\.isHexDigit), "\(path): \(requestId)")
            }
        }
        try await TestServer.withLive(configure: { $0.strictTransportSecurity = true }) { server in
            let headers = try await server.client.execute(uri: "/health", method: .get) { $0.headers }
            #expect(headers[HTTPField.Name("Strict-Transport-Security")!] == "max-age=31536000")
        }
    }
}
