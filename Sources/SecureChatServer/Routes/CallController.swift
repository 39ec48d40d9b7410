import Crypto
import Foundation
import Hummingbird
import SecureChatAPI

/// `GET /v1/turn`: where calls find STUN and TURN servers, with TURN credentials that expire
/// (the TURN REST scheme coturn implements as `use-auth-secret`). Media never touches this
/// server; the TURN server relays it still encrypted (DTLS-SRTP) when peers cannot connect directly.
struct CallController {
    let services: ChatServices

    func addRoutes(to group: RouterGroup<AuthenticatedContext>) {
        group.json(.get, "turn", use: iceServers)
    }

    @Sendable func iceServers(_ request: Request, context: AuthenticatedContext) async throws -> ICEServersResponse {
        let configuration = services.configuration
        let userId = context.user.userId
        // Credentials are cheap to make but each is a ticket to relay traffic: a few per minute.
        try services.limits.take(
            services.limits.turnCredentialsPerAccount, userId, limit: "turn_credentials_per_account", now: services.now,
            message: "too many TURN credential requests; try again later")
        var servers: [ICEServer] = []
        if !configuration.stunURLs.isEmpty { servers.append(ICEServer(urls: configuration.stunURLs)) }
        var expiresAt: Date?
        if let secret = configuration.turnSecret, !configuration.turnURLs.isEmpty {
            // Whole seconds: the username carries them, and expiresAt must say the same.
            let expiry = Date(timeIntervalSince1970: (services.now.timeIntervalSince1970 + configuration.turnCredentialLifetime).rounded(.down))
            let credential = Self.credential(secret: SymmetricKey(data: secret), userId: userId, expiry: expiry)
            servers.append(ICEServer(urls: configuration.turnURLs, username: credential.username, credential: credential.password))
            expiresAt = expiry
        }
        return ICEServersResponse(
            iceServers: servers, iceTransportPolicy: configuration.turnRelayOnly && expiresAt != nil ? "relay" : "all", expiresAt: expiresAt)
    }

    /// username = "<expiry in Unix seconds>:<userId>", password = base64(HMAC-SHA1(secret, username)).
    static func credential(secret: SymmetricKey, userId: String, expiry: Date) -> (username: String, password: String) {
        let username = "\(Int64(expiry.timeIntervalSince1970)):\(userId)"
        let mac = HMAC<Insecure.SHA1>.authenticationCode(for: Data(username.utf8), using: secret)
        return (username, Data(mac).base64EncodedString())
    }
}
