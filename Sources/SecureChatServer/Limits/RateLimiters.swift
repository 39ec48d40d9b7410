import Foundation
import HTTPTypes
import Hummingbird
import SecureChatAPI

/// Every limit of one server, built from ``RateLimits``. A refusal is a 429 with `Retry-After`
/// and the `rate_limited` code, and is counted in `securechat_rate_limited_total{limit}`.
struct RateLimiters: Sendable {
    let rules: RateLimits
    let requestsPerAddress: KeyedTokenBuckets
    let requestsPerAccount: KeyedTokenBuckets
    let passwordChecksPerAddress: KeyedTokenBuckets
    let roomsCreatedPerAccount: KeyedTokenBuckets
    let turnCredentialsPerAccount: KeyedTokenBuckets
    let failedLogins: FailureBackoff
    let failedLoginsPerAccount: FailureBackoff
    let wrongRoomPasswords: FailureBackoff
    let sockets = SocketCounter()
    let metrics: ServerMetrics

    init(_ rules: RateLimits, metrics: ServerMetrics) {
        self.rules = rules
        self.metrics = metrics
        requestsPerAddress = KeyedTokenBuckets(rules.requestsPerAddress)
        requestsPerAccount = KeyedTokenBuckets(rules.requestsPerAccount)
        passwordChecksPerAddress = KeyedTokenBuckets(rules.passwordChecksPerAddress)
        roomsCreatedPerAccount = KeyedTokenBuckets(rules.roomsCreatedPerAccount)
        turnCredentialsPerAccount = KeyedTokenBuckets(rules.turnCredentialsPerAccount)
        failedLogins = FailureBackoff(freeFailures: rules.failedLoginsBeforeBackoff, maximumWait: rules.maximumBackoff)
        failedLoginsPerAccount = FailureBackoff(
            freeFailures: rules.failedLoginsPerAccountBeforeBackoff, maximumWait: rules.maximumAccountBackoff)
        wrongRoomPasswords = FailureBackoff(freeFailures: rules.wrongRoomPasswordsBeforeBackoff, maximumWait: rules.maximumBackoff)
    }

    /// Takes a token for `key` (an address is counted by ``ClientAddress/limitKey(_:)``), or throws
    /// the 429 that names what was limited.
    func take(_ buckets: KeyedTokenBuckets, _ key: String, limit: String, now: Date, message: String) throws(APIFailure) {
        if let retryAfter = buckets.retryAfter(key, now: now) {
            throw refusal(limit: limit, retryAfter: retryAfter, message: message)
        }
    }

    /// Throws the 429 of a backoff that has not run out yet.
    func check(_ backoff: FailureBackoff, _ key: String, limit: String, now: Date, message: String) throws(APIFailure) {
        if let retryAfter = backoff.retryAfter(key, now: now) {
            throw refusal(limit: limit, retryAfter: retryAfter, message: message)
        }
    }

    func refusal(limit: String, retryAfter: Int, message: String) -> APIFailure {
        metrics.rateLimited(limit)
        return APIFailure(.tooManyRequests, .rateLimited, message, retryAfter: retryAfter)
    }
}

/// Holds every request to its client address's budget (the address found by
/// ``RequestObservationMiddleware``), before anything else is done with it.
struct ClientRateLimitMiddleware: RouterMiddleware {
    typealias Context = ChatRequestContext
    let services: ChatServices

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        try services.limits.take(
            services.limits.requestsPerAddress, ClientAddress.limitKey(context.remoteAddress), limit: "requests_per_address", now: services.now,
            message: "too many requests from your address; slow down")
        return try await next(request, context)
    }
}

/// The per-account budget of authenticated requests (after ``BearerAuthMiddleware``).
struct AccountRateLimitMiddleware: RouterMiddleware {
    typealias Context = AuthenticatedContext
    let services: ChatServices

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        try services.limits.take(
            services.limits.requestsPerAccount, context.user.userId, limit: "requests_per_account", now: services.now,
            message: "too many requests from your account; slow down")
        return try await next(request, context)
    }
}

extension HTTPField.Name {
    static let xForwardedFor = HTTPField.Name("X-Forwarded-For")!
}
