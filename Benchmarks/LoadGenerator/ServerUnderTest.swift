import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import SecureChatAPI
import SecureChatKeys
import SecureChatProtocol

/// The release `securechat-server` binary in a child process, observed through /proc.
final class ServerUnderTest: @unchecked Sendable {
    let process = Process()
    let port: Int
    let dataDirectory: URL

    private let ownsDataDirectory: Bool

    /// Starts the server; `sharing` another instance's data folder (its keys), as a second
    /// instance on the same database behind a load balancer.
    init(binary: URL, databaseURL: String?, sharing other: ServerUnderTest? = nil, extraArguments: [String] = []) throws {
        dataDirectory = other?.dataDirectory
            ?? FileManager.default.temporaryDirectory.appendingPathComponent("securechat-load-\(UUID().uuidString)")
        ownsDataDirectory = other == nil
        process.executableURL = binary
        process.arguments = ["--port", "0", "--data-dir", dataDirectory.path, "--bcrypt-cost", "10", "--log-level", "info", "--rate-limits", "off"]
            + extraArguments
        var environment = ProcessInfo.processInfo.environment
        if let databaseURL { environment["SECURECHAT_DATABASE_URL"] = databaseURL }
        process.environment = environment
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        var seen = ""
        var found = 0
        while found == 0 {
            let chunk = pipe.fileHandleForReading.availableData
            if chunk.isEmpty { throw LoadError.serverDidNotStart(seen) }
            seen += String(decoding: chunk, as: UTF8.self)
            if let range = seen.range(of: #"127\.0\.0\.1:(\d+)"#, options: .regularExpression) {
                found = Int(seen[range].split(separator: ":").last ?? "") ?? 0
            }
        }
        port = found
        pipe.fileHandleForReading.readabilityHandler = { handle in _ = handle.availableData }
    }

    func stop() {
        process.terminate()
        process.waitUntilExit()
        if ownsDataDirectory { try? FileManager.default.removeItem(at: dataDirectory) }
    }

    /// User plus system CPU seconds the server has used.
    var cpuSeconds: Double {
        guard let stat = try? String(contentsOfFile: "/proc/\(process.processIdentifier)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return 0 }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // After the command name: field 3 is index 0, so utime (14) and stime (15) are 11 and 12.
        let ticks = (Double(fields[11]) ?? 0) + (Double(fields[12]) ?? 0)
        return ticks / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// Resident memory in bytes.
    var residentBytes: Int {
        guard let status = try? String(contentsOfFile: "/proc/\(process.processIdentifier)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") })
        else { return 0 }
        return (Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0) * 1024
    }

    /// WebSocket bytes the server has received and sent (`securechat_websocket_bytes_total`).
    func webSocketBytes() async throws -> (received: Double, sent: Double) {
        let token = try String(contentsOf: dataDirectory.appendingPathComponent("secrets/metrics-token"), encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/metrics")
        request.headers.add(name: "Authorization", value: "Bearer \(token)")
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        let text = String(buffer: try await response.body.collect(upTo: 4 << 20))
        func value(_ direction: String) -> Double {
            let prefix = #"securechat_websocket_bytes_total{direction="\#(direction)"} "#
            return text.split(separator: "\n").first { $0.hasPrefix(prefix) }.flatMap { Double($0.dropFirst(prefix.count)) } ?? 0
        }
        return (value("received"), value("sent"))
    }

    // MARK: REST

    func call<Response: Decodable>(_ method: HTTPMethod, _ path: String, token: String? = nil, json: some Encodable, as: Response.Type)
        async throws -> Response
    {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)")
        request.method = method
        request.headers.add(name: "Content-Type", value: "application/json")
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        request.body = .bytes(ByteBuffer(bytes: try APIJSON.makeEncoder().encode(json)))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(60))
        let body = try await response.body.collect(upTo: 1 << 20)
        guard (200..<300).contains(response.status.code) else {
            throw LoadError.request("\(method) \(path): \(response.status.code) \(String(decoding: Data(body.readableBytesView), as: UTF8.self))")
        }
        return try APIJSON.makeDecoder().decode(Response.self, from: Data(body.readableBytesView))
    }

    /// Registers a user, logs in, and registers `devices` devices with real keys.
    func makeUser(_ name: String, devices: Int) async throws -> BenchUser {
        let password = "load generator password"
        _ = try await call(.POST, "/v1/accounts", json: RegisterRequest(username: name, password: password), as: AccountResponse.self)
        let tokens = try await call(.POST, "/v1/sessions", json: LoginRequest(username: name, password: password), as: TokenResponse.self)
        let identity = IdentityKeyPair()
        var deviceIds: [UInt32] = []
        for _ in 0..<devices {
            let registration = DeviceRegistration(
                name: "load", identityKey: Data(identity.publicKey.rawRepresentation),
                signedPreKey: Data(identity.makeSignedPreKey(id: 1, createdAt: 1_790_000_000).publicPart.serialized), oneTimePreKeys: [])
            deviceIds.append(
                try await call(.POST, "/v1/devices", token: tokens.accessToken, json: registration, as: DeviceResponse.self).deviceId)
        }
        return BenchUser(userId: tokens.userId, token: tokens.accessToken, deviceIds: deviceIds)
    }
}

struct BenchUser: Sendable {
    let userId: String
    let token: String
    let deviceIds: [UInt32]
}

enum LoadError: Error, CustomStringConvertible {
    case serverDidNotStart(String)
    case request(String)
    case protocolViolation(String)
    case upgradeRefused

    var description: String {
        switch self {
        case .serverDidNotStart(let output): "the server did not start: \(output)"
        case .request(let message): message
        case .protocolViolation(let text): "unexpected frame: \(text.prefix(300))"
        case .upgradeRefused: "the connection closed before the WebSocket upgrade"
        }
    }
}
