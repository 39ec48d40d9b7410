import ArgumentParser
import Foundation
import Hummingbird
import Logging
import SecureChatServer

/// `securechat-server`: configuration only. Flags win over `SECURECHAT_*` environment variables,
/// which win over the defaults.
@main
struct ServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "securechat-server",
        abstract: "The SecureChat server: stores and relays end-to-end encrypted messages it cannot read.")

    @Option(help: "Address to listen on (SECURECHAT_HOST).")
    var host: String?

    @Option(help: "Port to listen on (SECURECHAT_PORT).")
    var port: Int?

    @Option(help: "Folder for the SQLite database, keys and attachments (SECURECHAT_DATA_DIR).")
    var dataDir: String?

    @Option(help: "postgres://user:password@host:port/database to use PostgreSQL instead of SQLite (SECURECHAT_DATABASE_URL).")
    var databaseURL: String?

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

    func run() async throws {
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
        if let members = try number(maxRoomMembers, "MAX_ROOM_MEMBERS") { configuration.maxMembersPerRoom = members }
        configuration.jwtKeys = environment["SECURECHAT_JWT_KEYS"]
        configuration.atRestKeys = environment["SECURECHAT_AT_REST_KEYS"]

        var logger = Logger(label: "securechat")
        let levelName = setting(logLevel, "LOG_LEVEL") ?? "info"
        guard let level = Logger.Level(rawValue: levelName) else { throw ValidationError("unknown log level \(levelName)") }
        logger.logLevel = level

        let app = try await buildApplication(configuration: configuration, logger: logger)
        try await app.runService()
    }
}
