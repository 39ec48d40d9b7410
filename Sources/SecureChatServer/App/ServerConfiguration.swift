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
    /// PostgreSQL: seconds a message batch may wait for the database before its connection is
    /// closed and its sends are refused (clients send them again). A connection left half-open
    /// (the database's host gone without a reset) would otherwise hold every send until TCP gives up.
    public var databaseBatchTimeout: TimeInterval = 30
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
    /// The bearer token `/metrics` asks for; absent means a generated one in
    /// `secrets/metrics-token` in the data directory.
    public var metricsToken: String?
    /// Limits per client address, per account and per socket (docs/OPERATIONS.md, "Rate limits").
    public var rateLimits = RateLimits()
    /// Proxies whose `X-Forwarded-For` is believed (addresses or CIDR ranges). A request from
    /// anywhere else is attributed to its peer address whatever its headers say.
    public var trustedProxies: [IPAddressRange] = []
    /// PEM files of a certificate chain and its private key: the server then speaks HTTPS and WSS
    /// itself (TLS 1.2 or later). The key file must be readable by its owner only.
    public var tlsCertificatePath: String?
    public var tlsKeyPath: String?
    /// With TLS: also listen on this port and answer every request with a redirect to HTTPS.
    public var httpRedirectPort: Int?
    /// Send `Strict-Transport-Security` with every response. On by itself with TLS; set it when a
    /// proxy in front terminates TLS and does not add the header itself.
    public var strictTransportSecurity = false
    /// Origins (`https://app.example.org`) of web clients served from elsewhere that may call the
    /// API and open WebSockets. The server's own origin always may; by default no other may.
    public var allowedOrigins: [String] = []
    /// How long audit events (logins, password changes, kicks…) are kept.
    public var auditRetention: TimeInterval = 90 * 24 * 3600
    /// Write log lines as JSON objects, one per line (otherwise as text for people).
    public var jsonLogs = false
    /// Agree to permessage-deflate (RFC 7692) when a WebSocket client offers it; each message is
    /// compressed on its own (``PerMessageDeflateAgreement``).
    public var webSocketCompression = true
    /// The server's clock; tests move it to expire tokens and messages.
    public var clock: @Sendable () -> Date = { Date() }

    public init() {}

    var servesTLS: Bool { tlsCertificatePath != nil }
    var sqlitePath: URL { dataDirectory.appendingPathComponent("securechat.sqlite") }
    var attachmentsDirectory: URL { dataDirectory.appendingPathComponent("attachments", isDirectory: true) }
    var jwtKeysDirectory: URL { dataDirectory.appendingPathComponent("secrets/jwt-keys", isDirectory: true) }
    var metricsTokenPath: URL { dataDirectory.appendingPathComponent("secrets/metrics-token") }
    var atRestKeysDirectory: URL { dataDirectory.appendingPathComponent("secrets/at-rest-keys", isDirectory: true) }
}

/// Token buckets: each allows `burst` at once, then `perSecond` (or per minute) sustained.
public struct RateLimits: Sendable {
    public struct Bucket: Sendable, Equatable {
        public var burst: Double
        public var perSecond: Double

        public init(burst: Double, perSecond: Double) {
            self.burst = burst
            self.perSecond = perSecond
        }

        public static func perMinute(_ count: Double, burst: Double? = nil) -> Bucket {
            Bucket(burst: burst ?? count, perSecond: count / 60)
        }
    }

    /// Every HTTP request, per client address. A page load of the web client is about 40.
    public var requestsPerAddress = Bucket(burst: 300, perSecond: 30)
    /// Every authenticated HTTP request, per account.
    public var requestsPerAccount = Bucket(burst: 200, perSecond: 20)
    /// Requests that check a password with bcrypt (register, login, password changes, account
    /// deletion), per client address: each costs tens of milliseconds of CPU.
    public var passwordChecksPerAddress = Bucket.perMinute(30)
    /// Rooms created per account.
    public var roomsCreatedPerAccount = Bucket.perMinute(5)
    /// Failed logins per username, and per client address, before each further attempt waits
    /// (1 s, doubling up to ``maximumBackoff``).
    public var failedLoginsBeforeBackoff = 5
    /// Failed logins for one username from all addresses together before each further attempt,
    /// from anywhere, waits (1 s, doubling up to ``maximumAccountBackoff``): a guesser with many
    /// addresses gets about one guess a minute, and the owner is never locked out for longer.
    public var failedLoginsPerAccountBeforeBackoff = 50
    public var maximumAccountBackoff: TimeInterval = 60
    /// Wrong passwords per room and client address before the same backoff.
    public var wrongRoomPasswordsBeforeBackoff = 5
    public var maximumBackoff: TimeInterval = 900
    /// Frames per WebSocket.
    public var framesPerSocket = Bucket(burst: 500, perSecond: 100)
    /// Bytes received per WebSocket (a burst holds a few frames of the largest size).
    public var bytesPerSocket = Bucket(burst: 16 * 1024 * 1024, perSecond: 2 * 1024 * 1024)
    /// Open WebSockets per client address.
    public var socketsPerAddress = 64
    /// TURN credentials per account.
    public var turnCredentialsPerAccount = Bucket.perMinute(20)

    public init() {}

    /// No limit at all: for load generators and tests that measure something else.
    public static var unlimited: RateLimits {
        var limits = RateLimits()
        let none = Bucket(burst: .infinity, perSecond: .infinity)
        limits.requestsPerAddress = none
        limits.requestsPerAccount = none
        limits.passwordChecksPerAddress = none
        limits.roomsCreatedPerAccount = none
        limits.failedLoginsBeforeBackoff = .max
        limits.failedLoginsPerAccountBeforeBackoff = .max
        limits.wrongRoomPasswordsBeforeBackoff = .max
        limits.framesPerSocket = none
        limits.bytesPerSocket = none
        limits.socketsPerAddress = .max
        limits.turnCredentialsPerAccount = none
        return limits
    }
}

extension RateLimits {
    struct ParseError: Error, CustomStringConvertible {
        let description: String
    }

    /// The names operators use for each limit (`SECURECHAT_RATE_LIMITS`).
    static var bucketNames: [String: WritableKeyPath<RateLimits, Bucket>] { [
        "requests_per_address": \.requestsPerAddress, "requests_per_account": \.requestsPerAccount,
        "password_checks_per_address": \.passwordChecksPerAddress, "rooms_created_per_account": \.roomsCreatedPerAccount,
        "frames_per_socket": \.framesPerSocket, "bytes_per_socket": \.bytesPerSocket,
        "turn_credentials_per_account": \.turnCredentialsPerAccount,
    ] }
    static var countNames: [String: WritableKeyPath<RateLimits, Int>] { [
        "failed_logins_before_backoff": \.failedLoginsBeforeBackoff,
        "failed_logins_per_account_before_backoff": \.failedLoginsPerAccountBeforeBackoff,
        "wrong_room_passwords_before_backoff": \.wrongRoomPasswordsBeforeBackoff, "sockets_per_address": \.socketsPerAddress,
    ] }

    /// `off`, or the defaults changed by `name=burst/perSecond` and `name=count` entries.
    public init(parsing text: String) throws {
        self.init()
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if trimmed == "off" {
            self = .unlimited
            return
        }
        for entry in trimmed.split(separator: ",") {
            let parts = entry.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2 else { throw ParseError(description: "\(entry) is not NAME=VALUE") }
            if let path = Self.bucketNames[parts[0]] {
                let numbers = parts[1].split(separator: "/").map { Double($0) }
                guard numbers.count == 2, let burst = numbers[0], let rate = numbers[1], burst >= 1, rate >= 0.001,
                    burst.isFinite, rate.isFinite
                else {
                    throw ParseError(description: "\(parts[0]) takes BURST/PER_SECOND: a burst of at least 1 and at least 0.001 a second (e.g. 500/100)")
                }
                self[keyPath: path] = Bucket(burst: burst, perSecond: rate)
            } else if let path = Self.countNames[parts[0]] {
                guard let count = Int(parts[1]), count >= 1 else { throw ParseError(description: "\(parts[0]) takes a positive count") }
                self[keyPath: path] = count
            } else if parts[0] == "maximum_backoff_seconds" {
                guard let seconds = Double(parts[1]), seconds >= 1, seconds <= 86_400 else {
                    throw ParseError(description: "maximum_backoff_seconds takes 1 to 86400 seconds")
                }
                maximumBackoff = seconds
            } else {
                let names = (Array(Self.bucketNames.keys) + Array(Self.countNames.keys) + ["maximum_backoff_seconds"]).sorted()
                throw ParseError(description: "unknown limit \(parts[0]); the limits are \(names.joined(separator: ", "))")
            }
        }
    }
}

/// Secrets never print: ServiceLifecycle, for one, logs its services by describing them.
extension ServerConfiguration: CustomStringConvertible {
    public var description: String {
        "ServerConfiguration(host: \(host), port: \(port), data: \(dataDirectory.path), database: \(databaseURL == nil ? "sqlite" : "postgres"))"
    }
}
