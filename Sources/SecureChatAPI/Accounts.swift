public import Foundation

/// `POST /v1/accounts`: creates an account. The password is hashed with bcrypt and never stored.
public struct RegisterRequest: Codable, Sendable {
    public var username: String
    public var password: String
    public init(username: String, password: String) {
        self.username = username
        self.password = password
    }
}

/// `POST /v1/sessions`: logs in.
public struct LoginRequest: Codable, Sendable {
    public var username: String
    public var password: String
    public init(username: String, password: String) {
        self.username = username
        self.password = password
    }
}

/// `POST /v1/sessions/refresh`: a refresh token is used once.
public struct RefreshRequest: Codable, Sendable {
    public var refreshToken: String
    public init(refreshToken: String) { self.refreshToken = refreshToken }
}

/// The answer to a login or a refresh: a short-lived access token and the next refresh token.
public struct TokenResponse: Codable, Sendable {
    public var userId: String
    public var username: String
    public var accessToken: String
    public var accessTokenExpiresAt: Date
    public var refreshToken: String
    public var refreshTokenExpiresAt: Date
    public init(
        userId: String, username: String, accessToken: String, accessTokenExpiresAt: Date,
        refreshToken: String, refreshTokenExpiresAt: Date
    ) {
        self.userId = userId
        self.username = username
        self.accessToken = accessToken
        self.accessTokenExpiresAt = accessTokenExpiresAt
        self.refreshToken = refreshToken
        self.refreshTokenExpiresAt = refreshTokenExpiresAt
    }
}

/// `GET /v1/account` and the answer to registration.
public struct AccountResponse: Codable, Sendable, Equatable {
    public var userId: String
    public var username: String
    public var createdAt: Date
    public init(userId: String, username: String, createdAt: Date) {
        self.userId = userId
        self.username = username
        self.createdAt = createdAt
    }
}

/// `PUT /v1/account/password`: other sessions are revoked, the calling one is kept.
public struct ChangePasswordRequest: Codable, Sendable {
    public var currentPassword: String
    public var newPassword: String
    public init(currentPassword: String, newPassword: String) {
        self.currentPassword = currentPassword
        self.newPassword = newPassword
    }
}

/// `DELETE /v1/account`: the password again, so that a stolen access token cannot delete an account.
public struct DeleteAccountRequest: Codable, Sendable {
    public var password: String
    public init(password: String) { self.password = password }
}

/// `GET /v1/profile`, `PUT /v1/profile`, `GET /v1/users/{userId}/profile` (co-members only).
public struct Profile: Codable, Sendable, Equatable {
    public var userId: String
    public var username: String
    public var displayName: String
    public var statusText: String
    /// An attachment id; the picture itself is encrypted like any attachment.
    public var avatarAttachmentId: String?
    public init(userId: String, username: String, displayName: String, statusText: String, avatarAttachmentId: String?) {
        self.userId = userId
        self.username = username
        self.displayName = displayName
        self.statusText = statusText
        self.avatarAttachmentId = avatarAttachmentId
    }
}

/// `PUT /v1/profile`: every field replaces the stored one.
public struct ProfileUpdate: Codable, Sendable {
    public var displayName: String
    public var statusText: String
    public var avatarAttachmentId: String?
    public init(displayName: String, statusText: String, avatarAttachmentId: String?) {
        self.displayName = displayName
        self.statusText = statusText
        self.avatarAttachmentId = avatarAttachmentId
    }
}

/// `GET /v1/users?username=NAME`: finds an account to start a direct conversation with.
public struct UserLookupResponse: Codable, Sendable, Equatable {
    public var userId: String
    public var username: String
    public init(userId: String, username: String) {
        self.userId = userId
        self.username = username
    }
}
