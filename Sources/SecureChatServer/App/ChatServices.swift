import Foundation
import Logging
import SecureChatAPI

/// Everything the routes and sockets share: one value built at start-up, passed to each controller.
struct ChatServices: Sendable {
    let configuration: ServerConfiguration
    let store: any ChatStore
    let cipher: AtRestCipher
    let tokens: AccessTokens
    let passwords: Passwords
    let hub: DeliveryHub
    /// The link to the other instances (PostgreSQL only).
    let backplane: PostgresBackplane?
    let writer: MessageWriter
    let attachments: AttachmentFiles
    let limits: RateLimiters
    let metrics: ServerMetrics
    /// What `/metrics` asks for as a bearer token.
    let metricsToken: String

    var audit: AuditLog { AuditLog(store: store, logger: logger) }

    /// Records a security event now, from `client`.
    func audit(
        _ kind: AuditEvent.Kind, user: String?, by actor: String? = nil, room: Int64? = nil, from client: String, _ detail: String = ""
    ) async {
        await audit.record(
            AuditEvent(at: nowMilliseconds, kind: kind, userId: user, actorUserId: actor, roomId: room, clientAddress: client, detail: detail))
    }
    let logger: Logger

    /// The clock, truncated to whole milliseconds, the API's resolution.
    var now: Date { Date(milliseconds: nowMilliseconds) }
    var nowMilliseconds: Milliseconds { Milliseconds((configuration.clock().timeIntervalSince1970 * 1000).rounded(.down)) }

    /// Holds each bcrypt computation (tens of milliseconds of CPU) to the client address's budget.
    func chargePasswordCheck(from address: String) throws(APIFailure) {
        try limits.take(
            limits.passwordChecksPerAddress, ClientAddress.limitKey(address), limit: "password_checks_per_address", now: now,
            message: "too many password checks from your address; try again later")
    }

    /// Checks an access token and that its session is still live (logout and password changes end it).
    func authenticate(token: String) async throws -> AuthenticatedUser {
        let claims = try await verifiedClaims(token)
        guard try await store.isSessionActive(id: claims.sid, now: nowMilliseconds) else { throw APIFailure.sessionEnded }
        return AuthenticatedUser(userId: claims.sub.value, sessionId: claims.sid)
    }

    /// A socket's hello: the token, its session and the device it names.
    func authenticateSocket(token: String, deviceId: UInt32) async throws -> (AuthenticatedUser, DeviceRecord) {
        let claims = try await verifiedClaims(token)
        let user = AuthenticatedUser(userId: claims.sub.value, sessionId: claims.sid)
        switch try await store.socketDevice(sessionId: claims.sid, userId: user.userId, deviceId: deviceId, now: nowMilliseconds) {
        case .sessionEnded: throw APIFailure.sessionEnded
        case .unknownDevice: throw APIFailure(.unauthorized, .unknownDevice, "device \(deviceId) is not registered to this account")
        case .device(let device): return (user, device)
        }
    }

    private func verifiedClaims(_ token: String) async throws -> AccessTokenClaims {
        let claims: AccessTokenClaims
        do {
            claims = try await tokens.verify(token, now: now)
        } catch .expired {
            throw APIFailure(.unauthorized, .tokenExpired, "the access token has expired; refresh it")
        } catch {
            throw APIFailure.unauthorized
        }
        return claims
    }
}

/// Holds keys and the metrics token: it describes itself without them, however it is printed.
extension ChatServices: CustomStringConvertible {
    var description: String { "ChatServices(\(configuration))" }
}

/// Who made a request, once their token has been checked.
struct AuthenticatedUser: Sendable, Equatable {
    let userId: String
    let sessionId: String
}

extension Date {
    init(milliseconds: Milliseconds) { self.init(timeIntervalSince1970: Double(milliseconds) / 1000) }
}
