import HTTPTypes
import Hummingbird
import NIOCore
import SecureChatAPI

/// Which browser pages may use the API: the server's own (the web client it serves), and the
/// origins the operator lists. Requests without a web origin come from other programs, which no
/// page can impersonate: browsers set `Origin` themselves, always `http(s)://…` or `null`. (Some
/// WebSocket libraries send `ws://host` or `wss://host`; that is not a page either.)
enum CrossOriginPolicy {
    static func allows(origin: String?, host: String?, allowed: [String]) -> Bool {
        guard let origin, isWebPage(origin) else { return true }
        if allowed.contains(origin) { return true }
        return isSameOrigin(origin, host: host)
    }

    /// Whether `origin` is what a browser sends for a page: an http(s) origin, or `null` for
    /// sandboxed frames and local files.
    static func isWebPage(_ origin: String) -> Bool {
        let lowered = origin.lowercased()
        return lowered == "null" || lowered.hasPrefix("http://") || lowered.hasPrefix("https://")
    }

    /// Whether `origin` (`scheme://authority`) names the authority the request was sent to.
    static func isSameOrigin(_ origin: String, host: String?) -> Bool {
        guard let host, let range = origin.range(of: "://") else { return false }
        let scheme = origin[..<range.lowerBound].lowercased()
        var authority = origin[range.upperBound...].lowercased()
        let hostValue = host.lowercased()
        if authority == hostValue { return true }
        // An origin leaves out its scheme's default port, a Host header may not.
        let defaultPort = scheme == "https" ? ":443" : scheme == "http" ? ":80" : nil
        if let defaultPort {
            if authority + defaultPort == hostValue { return true }
            if authority.hasSuffix(defaultPort) { authority.removeLast(defaultPort.count) }
        }
        return authority == hostValue
    }
}

/// CORS (the Fetch standard) for the allowed origins: preflights are answered here, and responses
/// to allowed origins say so and expose `Retry-After` and `X-Request-Id`. Tokens travel in
/// headers, never cookies, so credentials are never allowed.
struct CrossOriginMiddleware<Context: RequestContext>: RouterMiddleware {
    let allowed: [String]
    static var allowedMethods: String { "GET, POST, PUT, DELETE" }
    static var allowedHeaders: String { "Authorization, Content-Type" }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let origin = request.headers[.origin] else { return try await next(request, context) }
        let listed = allowed.contains(origin)
        if request.method == .options, request.headers[.accessControlRequestMethod] != nil {
            // HTTP/1's Host header becomes the request's authority in HTTPTypes.
            guard listed || CrossOriginPolicy.isSameOrigin(origin, host: request.head.authority) else {
                return try APIFailure(.forbidden, .forbidden, "this origin may not call the API").response(from: request, context: context)
            }
            var response = Response(status: .noContent)
            response.headers[.accessControlAllowOrigin] = origin
            response.headers[.accessControlAllowMethods] = Self.allowedMethods
            response.headers[.accessControlAllowHeaders] = Self.allowedHeaders
            response.headers[.accessControlMaxAge] = "600"
            response.headers[.vary] = "Origin"
            return response
        }
        // A page elsewhere can still send "simple" requests (a form's POST, text/plain) without a
        // preflight; the browser would hide the answer, but the handler would run. Refused here.
        guard listed || !CrossOriginPolicy.isWebPage(origin) || CrossOriginPolicy.isSameOrigin(origin, host: request.head.authority) else {
            var refusal = try APIFailure(.forbidden, .forbidden, "this origin may not call the API").response(from: request, context: context)
            refusal.headers[.vary] = "Origin"
            return refusal
        }
        var response = try await next(request, context)
        // Answers differ by origin: caches must keep them apart.
        response.headers[.vary] = "Origin"
        if listed {
            response.headers[.accessControlAllowOrigin] = origin
            response.headers[.accessControlExposeHeaders] = "Retry-After, X-Request-Id"
        }
        return response
    }
}
