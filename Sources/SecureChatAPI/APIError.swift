/// Every error the server reports, over HTTP as `{"error": {"code", "message"}}` and over the
/// WebSocket as an `error` frame. Codes are stable: clients switch on them, people read the message.
public enum APIErrorCode: String, Codable, Sendable, CaseIterable {
    // Input
    case badRequest = "bad_request"
    case invalidJSON = "invalid_json"
    case payloadTooLarge = "payload_too_large"
    case invalidUsername = "invalid_username"
    case weakPassword = "weak_password"
    case invalidKey = "invalid_key"
    case invalidSignature = "invalid_signature"
    case tooManyPreKeys = "too_many_prekeys"
    case duplicatePreKey = "duplicate_prekey"
    // Authentication and authorisation
    case unauthorized = "unauthorized"
    case tokenExpired = "token_expired"
    case invalidCredentials = "invalid_credentials"
    case refreshTokenReused = "refresh_token_reused"
    case forbidden = "forbidden"
    case wrongRoomPassword = "wrong_room_password"
    case banned = "banned"
    case notAMember = "not_a_member"
    // Lookups and conflicts
    case notFound = "not_found"
    case usernameTaken = "username_taken"
    case alreadyMember = "already_member"
    case roomFull = "room_full"
    case unknownDevice = "unknown_device"
    case deviceLimit = "device_limit"
    case quotaExceeded = "quota_exceeded"
    // Realtime
    case notAuthenticated = "not_authenticated"
    case unsupportedFrame = "unsupported_frame"
    case duplicateConnection = "duplicate_connection"
    // Throttling and the server
    case rateLimited = "rate_limited"
    case unavailable = "unavailable"
    case internalError = "internal_error"
}

/// The body of every error response.
public struct APIErrorBody: Codable, Sendable, Equatable {
    public struct Detail: Codable, Sendable, Equatable {
        public let code: APIErrorCode
        public let message: String
        public init(code: APIErrorCode, message: String) {
            self.code = code
            self.message = message
        }
    }

    public let error: Detail

    public init(code: APIErrorCode, message: String) {
        self.error = Detail(code: code, message: message)
    }
}
