import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import SecureChatAPI

/// The first thing every request meets: it finds the client's address (``ClientAddress``), names
/// the request (`X-Request-Id`, the `hb.request.id` of its log lines), and once answered counts
/// and times it by route pattern and writes one log line. Paths are never logged or used as
/// labels: they hold room codes and attachment ids.
struct RequestObservationMiddleware: RouterMiddleware {
    typealias Context = ChatRequestContext
    let services: ChatServices

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let started = ContinuousClock.now
        var context = context
        context.remoteAddress = ClientAddress.resolve(
            peer: context.remoteAddress, forwardedFor: request.headers[values: .xForwardedFor],
            trustedProxies: services.configuration.trustedProxies)
        var response = try await next(request, context)
        let duration = ContinuousClock.now - started
        let status = response.status.code
        // No matched route: a web client file, an unknown path, or a refusal before routing.
        let route = context.endpointPath ?? (status < 400 ? "static" : "unmatched")
        services.metrics.httpRequest(method: request.method.rawValue, route: route, status: status, duration: duration)
        response.headers[.xRequestId] = context.id
        let level: Logger.Level = status >= 500 ? .error : (route == "static" || route == "/health" || route == "/metrics" ? .debug : .info)
        context.logger.log(
            level: level, "request",
            metadata: [
                "method": .string(request.method.rawValue), "route": .string(route), "status": .stringConvertible(status),
                "ms": .string(String(format: "%.1f", Double(duration.components.attoseconds) / 1e15 + Double(duration.components.seconds) * 1000)),
                "client": .string(context.remoteAddress),
            ])
        return response
    }
}

extension APIErrorCode {
    /// The `kind` of `securechat_authentication_failures_total` this refusal counts as, if any.
    var authenticationFailureKind: String? {
        switch self {
        case .unauthorized: "token"
        case .tokenExpired: "token_expired"
        case .invalidCredentials: "password"
        case .refreshTokenReused: "refresh_token_reused"
        case .wrongRoomPassword: "room_password"
        default: nil
        }
    }
}

/// `GET /metrics`: the Prometheus text format, for whoever holds the metrics token. The figures
/// are not secret content, but they tell an outsider how busy the server is and when.
struct MetricsController {
    let metrics: ServerMetrics
    let token: [UInt8]

    func addRoutes(to router: Router<ChatRequestContext>) {
        router.get("metrics") { request, _ -> Response in
            guard let header = request.headers[.authorization], header.lowercased().hasPrefix("bearer "),
                Self.constantTimeEqual(Array(header.utf8.dropFirst(7)), token)
            else {
                throw APIFailure(.unauthorized, .unauthorized, "/metrics needs the metrics token (secrets/metrics-token or SECURECHAT_METRICS_TOKEN)")
            }
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8", .cacheControl: "no-store"],
                body: .init(byteBuffer: ByteBuffer(bytes: metrics.render())))
        }
    }

    /// Compares digests, so the time taken says nothing about how much of the token was right.
    static func constantTimeEqual(_ presented: [UInt8], _ expected: [UInt8]) -> Bool {
        let key = SymmetricKey(size: .bits256)
        let a = HMAC<SHA256>.authenticationCode(for: presented, using: key)
        let b = HMAC<SHA256>.authenticationCode(for: expected, using: key)
        return a == b
    }
}

extension HTTPField.Name {
    static let xRequestId = HTTPField.Name("X-Request-Id")!
}
