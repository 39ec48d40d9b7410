public import Foundation

/// Everything an operator can set. `securechat-server` fills it from flags, then `SECURECHAT_*`
/// environment variables, then these defaults; tests build it directly.
public struct ServerConfiguration: Sendable {
    public var host = "127.0.0.1"
    public var port = 8080
    /// Holds the SQLite database, secrets and attachments.
    public var dataDirectory = URL(fileURLWithPath: "securechat-data")
    /// `postgres://user:password@host:port/database`; absent means SQLite in the data directory.
    public var databaseURL: String?
    /// Static web client files served at `/`, if present.
    public var webDirectory: URL?

    /// bcrypt cost for account and room passwords (each step doubles the work).
    public var bcryptCost: UInt8 = 12
    public var accessTokenLifetime: TimeInterval = 15 * 60
    public var refreshTokenLifetime: TimeInterval = 30 * 24 * 3600
    /// How long messages (and undelivered ones) are kept; rooms may choose less.
    public var messageRetention: TimeInterval = 30 * 24 * 3600
    /// How often expired data is deleted.
    public var sweepInterval: TimeInterval = 60
    public var maxMembersPerRoom = 1000
    public var attachmentMaxBytes: Int64 = 100 * 1024 * 1024
    public var attachmentQuotaBytes: Int64 = 1024 * 1024 * 1024
    /// Wrong room passwords allowed per (room, client address) per minute before 429.
    public var roomJoinAttemptsPerMinute = 5
    /// Seconds a new WebSocket has to send its `hello`.
    public var helloTimeout: TimeInterval = 10
    /// Seconds an HTTP connection may stay idle, and a new connection may take to send its first
    /// request, before the server closes it.
    public var httpIdleTimeout: TimeInterval = 120
    /// Seconds of silence after which the server pings a WebSocket; as many again without an
    /// answer close it (a peer that vanished without a TCP reset).
    public var webSocketKeepAlive: TimeInterval = 30
    /// Keys from the environment (`id:base64,…`) instead of generated files in the data directory.
    public var jwtKeys: String?
    public var atRestKeys: String?
    /// STUN servers handed to calls (`stun:host:port`).
    public var stunURLs: [String] = []
    /// TURN servers handed to calls (`turn:host:port?transport=udp`, `turns:…`), with credentials
    /// from `turnSecret`, the secret shared with the TURN server (coturn's `static-auth-secret`).
    public var turnURLs: [String] = []
    public var turnSecret: Data?
    /// How long TURN credentials work; a call keeps its relay for as long as they do.
    public var turnCredentialLifetime: TimeInterval = 12 * 3600
    /// Calls use the TURN server only (peers never learn each other's addresses).
    public var turnRelayOnly = false
    /// The server's clock; tests move it to expire tokens and messages.
    public var clock: @Sendable () -> Date = { Date() }

    public init() {}

    var sqlitePath: URL { dataDirectory.appendingPathComponent("securechat.sqlite") }
    var attachmentsDirectory: URL { dataDirectory.appendingPathComponent("attachments", isDirectory: true) }
    var jwtKeysDirectory: URL { dataDirectory.appendingPathComponent("secrets/jwt-keys", isDirectory: true) }
    var atRestKeysDirectory: URL { dataDirectory.appendingPathComponent("secrets/at-rest-keys", isDirectory: true) }
}
