import Foundation
import NIOPosix
import Testing

/// A real nginx on a free loopback port in front of server instances, configured with
/// `deploy/nginx/securechat-proxy.conf` — the file operators install.
final class NginxProcess: @unchecked Sendable {
    /// Debian's nginx, or one on the PATH; nil when there is none.
    static let binary: String? = {
        let candidates = ["/usr/sbin/nginx"] + (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map { "\($0)/nginx" }
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
    }()

    static var proxyConfiguration: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("deploy/nginx/securechat-proxy.conf")
    }

    let port: Int
    private let directory: URL
    private let process = Process()

    /// Starts nginx balancing over `upstreamPorts` (round robin, one worker, so that consecutive
    /// connections alternate between instances), and waits until it listens.
    static func start(upstreamPorts: [Int]) async throws -> NginxProcess {
        let nginx = try NginxProcess(upstreamPorts: upstreamPorts, port: try await reservePort())
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            if await canConnect(port: nginx.port) { return nginx }
            try await Task.sleep(for: .milliseconds(50))
        }
        let log = (try? String(contentsOf: nginx.directory.appendingPathComponent("error.log"), encoding: .utf8)) ?? ""
        nginx.stop()
        Issue.record("nginx did not start: \(log)")
        throw ServerProcessError.didNotStart
    }

    private init(upstreamPorts: [Int], port: Int) throws {
        let binary = try #require(Self.binary, "nginx is not installed")
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("securechat-nginx-\(UUID().uuidString)")
        self.port = port
        // Workers may run as another user (nobody): the folder must be theirs to use too.
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o777])
        let servers = upstreamPorts.map { "        server 127.0.0.1:\($0) max_fails=1 fail_timeout=2s;" }.joined(separator: "\n")
        let temporary = ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"].map { "    \($0)_temp_path \(directory.path)/\($0);" }
            .joined(separator: "\n")
        let configuration = """
            worker_processes 1;
            error_log \(directory.path)/error.log warn;
            pid \(directory.path)/nginx.pid;
            events { worker_connections 1024; }
            http {
                access_log off;
            \(temporary)
                upstream securechat {
            \(servers)
                }
                server {
                    listen 127.0.0.1:\(port);
                    include \(Self.proxyConfiguration.path);
                }
            }
            """
        let file = directory.appendingPathComponent("nginx.conf")
        try configuration.write(to: file, atomically: true, encoding: .utf8)
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["-p", directory.path, "-c", file.path, "-g", "daemon off;"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
    }

    func stop() {
        process.terminate()
        process.waitUntilExit()
        try? FileManager.default.removeItem(at: directory)
    }

    /// A free loopback port (for a server instance that must come back on the same one).
    static func reservePort() async throws -> Int {
        let socket = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).get()
        let port = socket.localAddress?.port ?? 0
        try await socket.close().get()
        return port
    }

    private static func canConnect(port: Int) async -> Bool {
        guard let channel = try? await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton).connect(host: "127.0.0.1", port: port).get()
        else { return false }
        try? await channel.close().get()
        return true
    }
}
