public import Foundation

/// One entry of `GET /v1/turn`: what WebRTC's `RTCIceServer` takes.
public struct ICEServer: Codable, Sendable, Equatable {
    public var urls: [String]
    public var username: String?
    public var credential: String?
    public init(urls: [String], username: String? = nil, credential: String? = nil) {
        self.urls = urls
        self.username = username
        self.credential = credential
    }
}

/// The answer to `GET /v1/turn`: STUN and TURN servers for calls, with short-lived TURN
/// credentials in the TURN REST scheme (a username of `expiry:userId` and its HMAC-SHA1 under the
/// secret the server shares with the TURN server).
public struct ICEServersResponse: Codable, Sendable, Equatable {
    public var iceServers: [ICEServer]
    /// `relay` when the operator asks calls to go through the TURN server only (hiding the peers'
    /// addresses from each other), else `all`.
    public var iceTransportPolicy: String
    /// When the TURN credentials stop working; absent without TURN.
    public var expiresAt: Date?
    public init(iceServers: [ICEServer], iceTransportPolicy: String, expiresAt: Date?) {
        self.iceServers = iceServers
        self.iceTransportPolicy = iceTransportPolicy
        self.expiresAt = expiresAt
    }
}
