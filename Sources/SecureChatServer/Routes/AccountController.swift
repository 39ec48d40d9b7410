import Crypto
import Foundation
import Hummingbird
import SecureChatAPI

/// Accounts, sessions (login, refresh, logout) and profiles.
struct AccountController {
    let services: ChatServices

    func addPublicRoutes(to group: RouterGroup<ChatRequestContext>) {
        group.post("accounts", use: register)
        group.json(.post, "sessions", use: login)
        group.json(.post, "sessions/refresh", use: refresh)
    }

    func addRoutes(to group: RouterGroup<AuthenticatedContext>) {
        group.delete("sessions/current", use: logout)
        group.json(.get, "account", use: account)
        group.put("account/password", use: changePassword)
        group.delete("account", use: deleteAccount)
        group.json(.get, "profile", use: ownProfile)
        group.json(.put, "profile", use: updateProfile)
        group.json(.get, "users", use: lookUp)
        group.json(.get, "users/{userId}/profile", use: profile)
    }

    // MARK: Public

    @Sendable func register(_ request: Request, context: ChatRequestContext) async throws -> JSONBody<AccountResponse> {
        let body = try await APIRequestDecoding.decode(RegisterRequest.self, from: request)
        let username = try Self.normalizedUsername(body.username)
        try Passwords.checkAccountPassword(body.password)
        try services.chargePasswordCheck(from: context.remoteAddress)
        let user = UserRecord(
            id: Identifiers.make(), username: username, passwordHash: try await services.passwords.hash(body.password),
            displayName: "", statusText: "", avatarAttachmentId: nil, createdAt: services.nowMilliseconds)
        try await services.store.createUser(user)
        context.logger.info("account created", metadata: ["user": "\(user.id)"])
        await services.audit(.accountCreated, user: user.id, from: context.remoteAddress)
        return JSONBody(Self.accountResponse(user), status: .created)
    }

    @Sendable func login(_ request: Request, context: ChatRequestContext) async throws -> TokenResponse {
        let body = try await APIRequestDecoding.decode(LoginRequest.self, from: request)
        let username = body.username.lowercased()
        // Per username and address: guessing from one place is slow. Per username from everywhere,
        // with a short cap: guessing from many addresses is slow too, and nobody can lock a user
        // out for more than a minute. No username is longer than 64 bytes: a longer one must not
        // grow the limiters' memory.
        let accountKey = String(decoding: username.utf8.prefix(64), as: UTF8.self)
        let limiterKey = "\(accountKey)|\(ClientAddress.limitKey(context.remoteAddress))"
        try services.limits.check(
            services.limits.failedLogins, limiterKey, limit: "failed_logins", now: services.now,
            message: "too many failed logins; try again later")
        try services.limits.check(
            services.limits.failedLoginsPerAccount, accountKey, limit: "failed_logins_per_account", now: services.now,
            message: "too many failed logins for this account; try again later")
        try services.chargePasswordCheck(from: context.remoteAddress)
        let user = username.utf8.count <= 64 ? try await services.store.user(username: username) : nil
        guard body.password.utf8.count <= 1024, try await services.passwords.verify(body.password, hash: user?.passwordHash), let user
        else {
            services.limits.failedLogins.recordFailure(limiterKey, now: services.now)
            services.limits.failedLoginsPerAccount.recordFailure(accountKey, now: services.now)
            context.logger.notice("failed login")
            // An unknown username is not kept: people sometimes type their password there.
            await services.audit(.loginFailed, user: user?.id, from: context.remoteAddress, user == nil ? "unknown account" : "")
            throw APIFailure(.unauthorized, .invalidCredentials, "wrong username or password")
        }
        services.limits.failedLogins.recordSuccess(limiterKey)
        services.limits.failedLoginsPerAccount.recordSuccess(accountKey)
        let sessionId = Identifiers.make()
        let refresh = Self.makeRefreshToken()
        let now = services.now
        let refreshExpiry = now.addingTimeInterval(services.configuration.refreshTokenLifetime)
        try await services.store.createSession(
            id: sessionId, userId: user.id, tokenHash: refresh.hash, now: services.nowMilliseconds,
            expiresAt: Milliseconds(refreshExpiry.timeIntervalSince1970 * 1000))
        let access = try await services.tokens.issue(userId: user.id, sessionId: sessionId, now: now)
        context.logger.info("login", metadata: ["user": "\(user.id)"])
        await services.audit(.login, user: user.id, from: context.remoteAddress)
        return TokenResponse(
            userId: user.id, username: user.username, accessToken: access.token, accessTokenExpiresAt: access.expiresAt,
            refreshToken: refresh.token, refreshTokenExpiresAt: refreshExpiry)
    }

    @Sendable func refresh(_ request: Request, context: ChatRequestContext) async throws -> TokenResponse {
        let body = try await APIRequestDecoding.decode(RefreshRequest.self, from: request)
        guard let oldHash = Self.hashRefreshToken(body.refreshToken) else {
            throw APIFailure(.unauthorized, .unauthorized, "unknown refresh token")
        }
        let next = Self.makeRefreshToken()
        let now = services.now
        let refreshExpiry = now.addingTimeInterval(services.configuration.refreshTokenLifetime)
        let outcome = try await services.store.rotateRefreshToken(
            oldHash: oldHash, newHash: next.hash, now: services.nowMilliseconds,
            newExpiresAt: Milliseconds(refreshExpiry.timeIntervalSince1970 * 1000))
        switch outcome {
        case .rotated(let session):
            guard let user = try await services.store.user(id: session.userId) else { throw APIFailure.unauthorized }
            let access = try await services.tokens.issue(userId: user.id, sessionId: session.id, now: now)
            return TokenResponse(
                userId: user.id, username: user.username, accessToken: access.token, accessTokenExpiresAt: access.expiresAt,
                refreshToken: next.token, refreshTokenExpiresAt: refreshExpiry)
        case .reused(let sessionId):
            context.logger.warning("a used refresh token came back: its session is revoked")
            await services.audit(.refreshTokenReused, user: nil, from: context.remoteAddress, "session \(sessionId) revoked")
            services.hub.disconnect(sessionId: sessionId, reason: "session revoked")
            throw APIFailure(
                .unauthorized, .refreshTokenReused, "this refresh token was already used; the session is ended, log in again")
        case .expired:
            throw APIFailure(.unauthorized, .tokenExpired, "the refresh token has expired; log in again")
        case .unknown:
            throw APIFailure(.unauthorized, .unauthorized, "unknown refresh token")
        }
    }

    // MARK: Authenticated

    @Sendable func logout(_ request: Request, context: AuthenticatedContext) async throws -> HTTPResponse.Status {
        try await services.store.revokeSession(id: context.user.sessionId, now: services.nowMilliseconds)
        services.hub.disconnect(sessionId: context.user.sessionId, reason: "logged out")
        await services.audit(.logout, user: context.user.userId, from: context.remoteAddress)
        return .noContent
    }

    @Sendable func account(_ request: Request, context: AuthenticatedContext) async throws -> AccountResponse {
        guard let user = try await services.store.user(id: context.user.userId) else { throw APIFailure.unauthorized }
        return Self.accountResponse(user)
    }

    @Sendable func changePassword(_ request: Request, context: AuthenticatedContext) async throws -> HTTPResponse.Status {
        let body = try await APIRequestDecoding.decode(ChangePasswordRequest.self, from: request)
        guard let user = try await services.store.user(id: context.user.userId) else { throw APIFailure.unauthorized }
        try await checkPassword(body.currentPassword, of: user, context: context, wrong: "the current password is wrong")
        try Passwords.checkAccountPassword(body.newPassword)
        try await services.store.updatePasswordHash(userId: user.id, hash: try await services.passwords.hash(body.newPassword))
        try await services.store.revokeSessions(userId: user.id, except: context.user.sessionId, now: services.nowMilliseconds)
        services.hub.disconnect(userId: user.id, exceptSessionId: context.user.sessionId, reason: "password changed")
        context.logger.info("password changed")
        await services.audit(.passwordChanged, user: user.id, from: context.remoteAddress)
        return .noContent
    }

    /// A logged-in user's password, asked again before a change that matters: someone holding a
    /// stolen access token guesses it no faster than a login would.
    private func checkPassword(_ password: String, of user: UserRecord, context: AuthenticatedContext, wrong: String) async throws {
        let key = "account|\(user.id)"
        try services.limits.check(
            services.limits.failedLogins, key, limit: "failed_logins", now: services.now, message: "too many wrong passwords; try again later")
        try services.chargePasswordCheck(from: context.remoteAddress)
        guard password.utf8.count <= 1024, try await services.passwords.verify(password, hash: user.passwordHash) else {
            services.limits.failedLogins.recordFailure(key, now: services.now)
            await services.audit(.passwordCheckFailed, user: user.id, from: context.remoteAddress)
            throw APIFailure(.forbidden, .invalidCredentials, wrong)
        }
        services.limits.failedLogins.recordSuccess(key)
    }

    @Sendable func deleteAccount(_ request: Request, context: AuthenticatedContext) async throws -> HTTPResponse.Status {
        let body = try await APIRequestDecoding.decode(DeleteAccountRequest.self, from: request)
        guard let user = try await services.store.user(id: context.user.userId) else { throw APIFailure.unauthorized }
        try await checkPassword(body.password, of: user, context: context, wrong: "the password is wrong")
        let removed = try await services.store.deleteUser(id: user.id, now: services.nowMilliseconds)
        services.attachments.delete(removed.attachmentIds)
        services.hub.deliver(removed.deliveries)
        services.hub.disconnect(userId: user.id, exceptSessionId: nil, reason: "account deleted")
        context.logger.info("account deleted")
        await services.audit(.accountDeleted, user: user.id, from: context.remoteAddress)
        return .noContent
    }

    @Sendable func ownProfile(_ request: Request, context: AuthenticatedContext) async throws -> Profile {
        guard let user = try await services.store.user(id: context.user.userId) else { throw APIFailure.unauthorized }
        return Self.profile(user)
    }

    @Sendable func updateProfile(_ request: Request, context: AuthenticatedContext) async throws -> Profile {
        let body = try await APIRequestDecoding.decode(ProfileUpdate.self, from: request)
        guard APILimits.displayNameLength.contains(body.displayName.count),
            APILimits.statusTextLength.contains(body.statusText.count)
        else {
            throw APIFailure.badRequest(
                "a display name has at most \(APILimits.displayNameLength.upperBound) characters, a status \(APILimits.statusTextLength.upperBound)")
        }
        guard !(body.displayName + body.statusText).unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            throw APIFailure.badRequest("profile texts cannot contain control characters")
        }
        if let avatar = body.avatarAttachmentId {
            guard AttachmentFiles.isValidId(avatar), let attachment = try await services.store.attachment(id: avatar),
                attachment.uploaderUserId == context.user.userId
            else { throw APIFailure(.notFound, .notFound, "the avatar must be an attachment you uploaded") }
        }
        try await services.store.updateProfile(
            userId: context.user.userId, displayName: body.displayName, statusText: body.statusText,
            avatarAttachmentId: body.avatarAttachmentId)
        guard let user = try await services.store.user(id: context.user.userId) else { throw APIFailure.unauthorized }
        return Self.profile(user)
    }

    @Sendable func lookUp(_ request: Request, context: AuthenticatedContext) async throws -> UserLookupResponse {
        guard let username = request.uri.queryParameters.get("username")?.lowercased() else {
            throw APIFailure.badRequest("give the username to look up: /v1/users?username=NAME")
        }
        guard username.utf8.count <= 64, let user = try await services.store.user(username: username) else {
            throw APIFailure.notFound("user")
        }
        return UserLookupResponse(userId: user.id, username: user.username)
    }

    /// Profiles are visible to the user and to people who share a room with them; to anyone
    /// else the user does not exist (404, not 403, which would confirm it does).
    @Sendable func profile(_ request: Request, context: AuthenticatedContext) async throws -> Profile {
        let userId = try context.parameters.require("userId")
        let visible = userId == context.user.userId ? true : try await services.store.shareARoom(context.user.userId, userId)
        guard visible, let user = try await services.store.user(id: userId)
        else { throw APIFailure.notFound("user") }
        return Self.profile(user)
    }

    // MARK: Helpers

    static func normalizedUsername(_ raw: String) throws -> String {
        let username = raw.lowercased()
        let allowed = username.utf8.allSatisfy { ($0 >= 0x61 && $0 <= 0x7a) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x5f || $0 == 0x2e || $0 == 0x2d }
        guard APILimits.usernameLength.contains(username.utf8.count), allowed,
            let first = username.utf8.first, (first >= 0x61 && first <= 0x7a) || (first >= 0x30 && first <= 0x39)
        else {
            throw APIFailure(
                .unprocessableContent, .invalidUsername,
                "a username is 3 to 32 characters of a-z, 0-9, '_', '.', '-', starting with a letter or digit")
        }
        return username
    }

    static func accountResponse(_ user: UserRecord) -> AccountResponse {
        AccountResponse(userId: user.id, username: user.username, createdAt: Date(milliseconds: user.createdAt))
    }

    static func profile(_ user: UserRecord) -> Profile {
        Profile(
            userId: user.id, username: user.username, displayName: user.displayName, statusText: user.statusText,
            avatarAttachmentId: user.avatarAttachmentId)
    }

    /// 256 random bits, base64url; only its SHA-256 is stored.
    static func makeRefreshToken() -> (token: String, hash: [UInt8]) {
        let bytes = SymmetricKey(size: .bits256).withUnsafeBytes { Data($0) }
        let token = bytes.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
        return (token, Array(SHA256.hash(data: Data(token.utf8))))
    }

    static func hashRefreshToken(_ token: String) -> [UInt8]? {
        guard token.utf8.count == 43 else { return nil }
        return Array(SHA256.hash(data: Data(token.utf8)))
    }
}

