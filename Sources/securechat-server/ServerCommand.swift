import ArgumentParser
import Foundation
import Hummingbird
import Logging
import Metrics
import Prometheus
import SecureChatAPI
import SecureChatServer

/// The entry point: NIO's event loops become Swift concurrency's executor before anything runs.
@main
enum ServerMain {
    static func main() async {
        if !installEventLoopsAsGlobalExecutor() {
            FileHandle.standardError.write(Data("note: Swift concurrency keeps its own thread pool\n".utf8))
        }
        await ServerCommand.main()
    }
}

/// `securechat-server`: configuration only. Flags win over `SECURECHAT_*` environment variables,
/// which win over the defaults.
struct ServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "securechat-server",
        abstract: "The SecureChat server: stores and relays end-to-end encrypted messages it cannot read.",
        subcommands: [Serve.self, RotateAtRestKey.self, RotateJWTKey.self, Audit.self, BackupCommand.self, RestoreCommand.self],
        defaultSubcommand: Serve.self)
}

/// Runs the server (the default command).
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the server (the default).")

    @OptionGroup var options: ServerOptions

    func run() async throws {
        let (configuration, logger) = try options.makeConfiguration()
        // What the dependencies report through swift-metrics lands in the server's own registry.
        let metrics = ServerMetrics()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: metrics.registry))
        let app = try await buildApplication(configuration: configuration, logger: logger, metrics: metrics)
        try await app.runService()
    }
}

/// Adds an at-rest key and re-seals every stored payload under it.
struct RotateAtRestKey: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Add a new at-rest key and re-seal stored messages under it.",
        discussion: """
            One server: stop it, run this, start it. Several servers sharing PostgreSQL: run with \
            --no-reseal, restart every instance (they then know the new key), then run with --no-add-key.
            """)

    @OptionGroup var options: ServerOptions

    @Flag(help: "Only add the key; re-seal later.")
    var noReseal = false

    @Flag(help: "Do not add a key: re-seal under the newest existing one.")
    var noAddKey = false

    @Flag(help: "Delete the older key files once everything is re-sealed.")
    var removeOldKeys = false

    func run() async throws {
        let (configuration, logger) = try options.makeConfiguration()
        let report = try await KeyRotation.rotateAtRestKey(
            configuration: configuration, addKey: !noAddKey, reseal: !noReseal, removeOldKeys: removeOldKeys, logger: logger)
        if let id = report.newKeyId { print("added at-rest key \(id)") }
        if !noReseal { print("re-sealed \(report.resealed) stored payloads") }
        for id in report.removedKeyIds { print("removed at-rest key \(id)") }
    }
}

/// Adds a JWT signing key.
struct RotateJWTKey: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rotate-jwt-key",
        abstract: "Add a new JWT signing key; restart the server to sign with it.",
        discussion: "Tokens signed with older keys stay valid until they expire; delete an old key file after one access-token lifetime.")

    @OptionGroup var options: ServerOptions

    func run() async throws {
        let (configuration, _) = try options.makeConfiguration()
        print("added JWT signing key \(try KeyRotation.rotateJWTKey(configuration: configuration))")
    }
}

/// Copies the database (SQLite), secrets and attachments into a new folder, while the server runs.
struct BackupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Copy the database, keys and attachments into a new folder; the server may keep running.",
        discussion: "On PostgreSQL the folder gets the keys and attachments; back up the database with pg_dump (docs/OPERATIONS.md).")

    @OptionGroup var options: ServerOptions

    @Option(help: "The folder to create.")
    var output: String

    func run() async throws {
        let (configuration, logger) = try options.makeConfiguration()
        let report = try Backup.create(configuration: configuration, destination: URL(fileURLWithPath: output), logger: logger)
        print("backed up \(report.includesDatabase ? "the database, " : "")\(report.secretFiles) secret files and \(report.attachments) attachments to \(output)")
        if !report.includesDatabase { print("the database is PostgreSQL: back it up with pg_dump (docs/OPERATIONS.md)") }
    }
}

/// Puts a backup into an empty data folder.
struct RestoreCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore", abstract: "Put a backup folder back into an empty data folder; start the server afterwards.")

    @OptionGroup var options: ServerOptions

    @Option(help: "The backup folder.")
    var from: String

    func run() async throws {
        let (configuration, logger) = try options.makeConfiguration()
        let report = try Backup.restore(configuration: configuration, source: URL(fileURLWithPath: from), logger: logger)
        print("restored \(report.includesDatabase ? "the database, " : "")\(report.secretFiles) secret files and \(report.attachments) attachments into \(configuration.dataDirectory.path)")
    }
}

/// Reads the audit log of security events from the database.
struct Audit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show security events: logins, failed logins, password changes, devices, kicks, bans, room passwords.",
        discussion: "Newest first. Kinds: \(AuditTrail.kinds.joined(separator: ", ")).")

    @OptionGroup var options: ServerOptions

    @Option(help: "Only events about this account (as subject or as actor).")
    var user: String?

    @Option(help: "Only events of this kind.")
    var kind: String?

    @Option(help: "Only events at or after this time (ISO 8601, e.g. 2026-11-01T00:00:00Z).")
    var since: String?

    @Option(help: "Only events at or before this time (ISO 8601).")
    var until: String?

    @Option(help: "At most this many events.")
    var limit = 100

    @Flag(help: "One JSON object per line.")
    var json = false

    func run() async throws {
        if let kind, !AuditTrail.kinds.contains(kind) {
            throw ValidationError("unknown kind \(kind); the kinds are \(AuditTrail.kinds.joined(separator: ", "))")
        }
        func date(_ text: String?) throws -> Date? {
            guard let text else { return nil }
            guard let date = try? Date(text, strategy: .iso8601) else { throw ValidationError("\(text) is not an ISO 8601 time") }
            return date
        }
        guard limit > 0 else { throw ValidationError("the limit must be positive") }
        let (configuration, defaultLogger) = try options.makeConfiguration()
        var logger = defaultLogger
        logger.logLevel = .warning
        for line in try await AuditTrail.lines(
            configuration: configuration, userId: user, kind: kind, since: date(since), until: date(until), limit: limit, json: json,
            logger: logger)
        {
            print(line)
        }
    }
}

/// The settings every command shares.
struct ServerOptions: ParsableArguments {
    @Option(help: "Address to listen on (SECURECHAT_HOST).")
    var host: String?

    @Option(help: "Port to listen on (SECURECHAT_PORT).")
    var port: Int?

    @Option(help: "Folder for the SQLite database, keys and attachments (SECURECHAT_DATA_DIR).")
    var dataDir: String?

    @Option(help: "postgres://user:password@host:port/database to use PostgreSQL instead of SQLite (SECURECHAT_DATABASE_URL).")
    var databaseURL: String?

    @Option(help: "PostgreSQL: seconds a message batch may wait before its connection is closed and its sends refused, default 30 (SECURECHAT_DATABASE_BATCH_TIMEOUT).")
    var databaseBatchTimeout: Double?

    @Option(help: "Folder of the web client served at / (SECURECHAT_WEB_DIR; default ./Web if present).")
    var webDir: String?

    @Option(help: "bcrypt cost, 10 to 16 (SECURECHAT_BCRYPT_COST).")
    var bcryptCost: UInt8?

    @Option(help: "Days messages are kept (SECURECHAT_RETENTION_DAYS).")
    var retentionDays: Double?

    @Option(help: "Largest attachment in MiB (SECURECHAT_ATTACHMENT_MAX_MIB).")
    var attachmentMaxMiB: Int64?

    @Option(help: "Attachment storage per user in MiB (SECURECHAT_ATTACHMENT_QUOTA_MIB).")
    var attachmentQuotaMiB: Int64?

    @Option(help: "Members per room (SECURECHAT_MAX_ROOM_MEMBERS).")
    var maxRoomMembers: Int?

    @Option(help: "Log level: trace, debug, info, notice, warning, error (SECURECHAT_LOG_LEVEL).")
    var logLevel: String?

    @Option(help: "Log format: text, or json for one JSON object per line (SECURECHAT_LOG_FORMAT).")
    var logFormat: String?

    @Option(help: "File holding the bearer token /metrics asks for, readable by its owner only (SECURECHAT_METRICS_TOKEN_FILE; or SECURECHAT_METRICS_TOKEN; default: secrets/metrics-token in the data folder, created on first run).")
    var metricsTokenFile: String?

    @Option(help: "Proxies whose X-Forwarded-For is believed: comma-separated addresses or CIDR ranges (SECURECHAT_TRUSTED_PROXIES).")
    var trustedProxies: String?

    @Option(help: "PEM certificate chain: serve HTTPS and WSS directly (SECURECHAT_TLS_CERTIFICATE).")
    var tlsCertificate: String?

    @Option(help: "PEM private key of the certificate, readable by its owner only (SECURECHAT_TLS_KEY).")
    var tlsKey: String?

    @Option(help: "With TLS: also listen on this port and redirect every request to HTTPS (SECURECHAT_HTTP_REDIRECT_PORT).")
    var httpRedirectPort: Int?

    @Flag(help: "Send Strict-Transport-Security behind a proxy that terminates TLS (on by itself with --tls-certificate; SECURECHAT_HSTS=1).")
    var hsts = false

    @Option(help: "permessage-deflate for WebSocket clients that offer it: on (default) or off (SECURECHAT_WEBSOCKET_COMPRESSION).")
    var websocketCompression: String?

    @Option(help: "Origins of web clients served elsewhere that may use the API, comma-separated, e.g. https://app.example.org (SECURECHAT_ALLOWED_ORIGINS).")
    var allowedOrigins: String?

    @Option(help: "Rate limits: off, or comma-separated NAME=BURST/PER_SECOND (or NAME=COUNT for counts), e.g. frames_per_socket=500/100 (SECURECHAT_RATE_LIMITS; names in docs/OPERATIONS.md).")
    var rateLimits: String?

    @Option(help: "STUN servers for calls, comma-separated stun: URLs (SECURECHAT_STUN_URLS).")
    var stunUrls: String?

    @Option(help: "TURN servers for calls, comma-separated turn: or turns: URLs (SECURECHAT_TURN_URLS).")
    var turnUrls: String?

    @Option(help: "File holding the secret shared with the TURN server, readable by its owner only (SECURECHAT_TURN_SECRET_FILE; or SECURECHAT_TURN_SECRET).")
    var turnSecretFile: String?

    @Flag(help: "Calls go through the TURN server only, so peers never learn each other's addresses (SECURECHAT_TURN_RELAY_ONLY=1).")
    var turnRelayOnly = false

    /// A secret from a file that only its owner can read; the first line, without its newline.
    static func readSecretFile(_ path: String) throws -> Data {
        do {
            try FilePermissions.requireOwnerOnly(path)
        } catch let tooOpen as FilePermissions.TooOpen {
            throw ValidationError(tooOpen.description)
        }
        let resolved = URL(fileURLWithPath: path).resolvingSymlinksInPath().path
        let text = try String(contentsOfFile: resolved, encoding: .utf8)
        let secret = text.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
        guard secret.utf8.count >= 16 else { throw ValidationError("the secret in \(path) is shorter than 16 bytes") }
        return Data(secret.utf8)
    }

    func makeConfiguration() throws -> (ServerConfiguration, Logger) {
        let environment = ProcessInfo.processInfo.environment
        func setting(_ flag: String?, _ name: String) -> String? { flag ?? environment["SECURECHAT_\(name)"] }
        func number<T: LosslessStringConvertible>(_ flag: T?, _ name: String) throws -> T? {
            if let flag { return flag }
            guard let text = environment["SECURECHAT_\(name)"] else { return nil }
            guard let value = T(text) else { throw ValidationError("SECURECHAT_\(name)=\(text) is not a valid number") }
            return value
        }

        var configuration = ServerConfiguration()
        configuration.host = setting(host, "HOST") ?? configuration.host
        configuration.port = try number(port, "PORT") ?? configuration.port
        configuration.dataDirectory = URL(fileURLWithPath: setting(dataDir, "DATA_DIR") ?? "securechat-data")
        configuration.databaseURL = setting(databaseURL, "DATABASE_URL")
        if let web = setting(webDir, "WEB_DIR") {
            configuration.webDirectory = URL(fileURLWithPath: web)
        } else if FileManager.default.fileExists(atPath: "Web/index.html") {
            configuration.webDirectory = URL(fileURLWithPath: "Web")
        }
        if let seconds = try number(databaseBatchTimeout, "DATABASE_BATCH_TIMEOUT") {
            guard seconds >= 1 else { throw ValidationError("the database batch timeout is at least 1 second") }
            configuration.databaseBatchTimeout = seconds
        }
        if let cost = try number(bcryptCost, "BCRYPT_COST") {
            guard (10...16).contains(cost) else { throw ValidationError("the bcrypt cost must be between 10 and 16") }
            configuration.bcryptCost = cost
        }
        if let days = try number(retentionDays, "RETENTION_DAYS") {
            guard days > 0 else { throw ValidationError("retention must be positive") }
            configuration.messageRetention = days * 86_400
        }
        if let mib = try number(attachmentMaxMiB, "ATTACHMENT_MAX_MIB") { configuration.attachmentMaxBytes = mib * 1_048_576 }
        if let mib = try number(attachmentQuotaMiB, "ATTACHMENT_QUOTA_MIB") { configuration.attachmentQuotaBytes = mib * 1_048_576 }
        if let members = try number(maxRoomMembers, "MAX_ROOM_MEMBERS") {
            guard (2...APILimits.membersPerRoom).contains(members) else {
                throw ValidationError("members per room must be between 2 and \(APILimits.membersPerRoom)")
            }
            configuration.maxMembersPerRoom = members
        }
        let urls = { (text: String?) in (text ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty } }
        configuration.stunURLs = urls(setting(stunUrls, "STUN_URLS"))
        configuration.turnURLs = urls(setting(turnUrls, "TURN_URLS"))
        guard configuration.stunURLs.allSatisfy({ $0.hasPrefix("stun:") || $0.hasPrefix("stuns:") }),
              configuration.turnURLs.allSatisfy({ $0.hasPrefix("turn:") || $0.hasPrefix("turns:") })
        else { throw ValidationError("STUN URLs start with stun: and TURN URLs with turn: or turns:") }
        if let path = setting(turnSecretFile, "TURN_SECRET_FILE") {
            configuration.turnSecret = try Self.readSecretFile(path)
        } else if let secret = environment["SECURECHAT_TURN_SECRET"], !secret.isEmpty {
            guard secret.utf8.count >= 16 else { throw ValidationError("SECURECHAT_TURN_SECRET is shorter than 16 bytes") }
            configuration.turnSecret = Data(secret.utf8)
        }
        if !configuration.turnURLs.isEmpty, configuration.turnSecret == nil {
            throw ValidationError("TURN URLs need the shared secret (--turn-secret-file or SECURECHAT_TURN_SECRET)")
        }
        configuration.turnRelayOnly = turnRelayOnly || environment["SECURECHAT_TURN_RELAY_ONLY"] == "1"
        if configuration.turnRelayOnly, configuration.turnURLs.isEmpty {
            throw ValidationError("relay-only calls need a TURN server (--turn-urls)")
        }
        if let path = setting(metricsTokenFile, "METRICS_TOKEN_FILE") {
            configuration.metricsToken = String(decoding: try Self.readSecretFile(path), as: UTF8.self)
        } else if let token = environment["SECURECHAT_METRICS_TOKEN"], !token.isEmpty {
            guard token.utf8.count >= 16 else { throw ValidationError("SECURECHAT_METRICS_TOKEN is shorter than 16 bytes") }
            configuration.metricsToken = token
        }
        configuration.trustedProxies = try urls(setting(trustedProxies, "TRUSTED_PROXIES")).map { text in
            guard let range = IPAddressRange(text) else { throw ValidationError("\(text) is not an IP address or CIDR range") }
            return range
        }
        configuration.tlsCertificatePath = setting(tlsCertificate, "TLS_CERTIFICATE")
        configuration.tlsKeyPath = setting(tlsKey, "TLS_KEY")
        if configuration.tlsKeyPath != nil, configuration.tlsCertificatePath == nil {
            throw ValidationError("a TLS key needs its certificate (--tls-certificate)")
        }
        configuration.httpRedirectPort = try number(httpRedirectPort, "HTTP_REDIRECT_PORT")
        if configuration.httpRedirectPort != nil, configuration.tlsCertificatePath == nil {
            throw ValidationError("--http-redirect-port redirects to the server's HTTPS: it needs --tls-certificate")
        }
        configuration.strictTransportSecurity = hsts || environment["SECURECHAT_HSTS"] == "1"
        switch setting(websocketCompression, "WEBSOCKET_COMPRESSION") {
        case nil, "on": configuration.webSocketCompression = true
        case "off": configuration.webSocketCompression = false
        case let other?: throw ValidationError("WebSocket compression is on or off, not \(other)")
        }
        configuration.allowedOrigins = urls(setting(allowedOrigins, "ALLOWED_ORIGINS"))
        for origin in configuration.allowedOrigins {
            let parts = origin.split(separator: "://", maxSplits: 1)
            guard parts.count == 2, ["http", "https"].contains(parts[0]), !parts[1].isEmpty, !parts[1].contains("/") else {
                throw ValidationError("\(origin) is not an origin: scheme://host[:port], without a path or a trailing slash")
            }
        }
        if let text = setting(rateLimits, "RATE_LIMITS") {
            do {
                configuration.rateLimits = try RateLimits(parsing: text)
            } catch {
                throw ValidationError("rate limits: \(error)")
            }
        }
        configuration.jwtKeys = environment["SECURECHAT_JWT_KEYS"]
        configuration.atRestKeys = environment["SECURECHAT_AT_REST_KEYS"]

        switch setting(logFormat, "LOG_FORMAT") ?? "text" {
        case "json":
            configuration.jsonLogs = true
            LoggingSystem.bootstrap { label in JSONLogHandler(label: label) }
        case "text": break
        case let other: throw ValidationError("unknown log format \(other): text or json")
        }
        var logger = Logger(label: "securechat")
        let levelName = setting(logLevel, "LOG_LEVEL") ?? "info"
        guard let level = Logger.Level(rawValue: levelName) else { throw ValidationError("unknown log level \(levelName)") }
        logger.logLevel = level
        return (configuration, logger)
    }
}
