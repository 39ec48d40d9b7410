import HTTPTypes
import Hummingbird

/// Headers that make the browser enforce the web client's security model on every response
/// (docs/ARCHITECTURE.md, "Web client"): scripts, styles and connections from this origin only, no
/// inline code, no framing, no referrer, no MIME sniffing.
struct SecurityHeadersMiddleware<Context: RequestContext>: RouterMiddleware {
    /// Tells browsers to use HTTPS only, for a year (RFC 6797). Not `includeSubDomains`: the server
    /// may live on a domain whose other hosts are not all on HTTPS yet; a proxy in front can add it.
    var strictTransportSecurity = false
    static var hstsValue: String { "max-age=31536000" }

    /// `'self'` covers the same-origin WebSocket (`ws:`/`wss:`) under CSP Level 3; `blob:` is for
    /// decrypted images and downloads, which exist only as object URLs in the page.
    static var contentSecurityPolicy: String {
        [
            "default-src 'none'", "script-src 'self'", "style-src 'self'", "img-src 'self' blob:",
            "media-src 'self' blob:", "connect-src 'self'", "manifest-src 'self'", "base-uri 'none'",
            "form-action 'none'", "frame-ancestors 'none'",
        ].joined(separator: "; ")
    }

    static var headers: [(HTTPField.Name, String)] {
        [
            (HTTPField.Name.contentSecurityPolicy, contentSecurityPolicy),
            (HTTPField.Name.xContentTypeOptions, "nosniff"),
            (HTTPField.Name("X-Frame-Options")!, "DENY"),
            (HTTPField.Name("Referrer-Policy")!, "no-referrer"),
            (HTTPField.Name("Permissions-Policy")!, "camera=(self), microphone=(self), display-capture=(self), geolocation=(), payment=(), usb=()"),
            (HTTPField.Name("Cross-Origin-Opener-Policy")!, "same-origin"),
            (HTTPField.Name("Cross-Origin-Resource-Policy")!, "same-origin"),
        ]
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response = try await next(request, context)
        for (name, value) in Self.headers where response.headers[name] == nil {
            response.headers[name] = value
        }
        if strictTransportSecurity { response.headers[HTTPField.Name("Strict-Transport-Security")!] = Self.hstsValue }
        // The web client's files change with each release: revalidate them (ETag) every time.
        if response.headers[.cacheControl] == nil, !request.uri.path.hasPrefix("/v1/") {
            response.headers[.cacheControl] = "no-cache"
        }
        return response
    }
}
