import Foundation
import Testing

@testable import SecureChatClient

/// The real `securechat-server` binary on a free port, with a data folder of its own.
final class ServerBinary: @unchecked Sendable {
    let dataDirectory: URL
    private(set) var port: Int
    private var process: Process

    var url: URL { URL(string: "http://127.0.0.1:\(port)")! }

    /// The binary `swift build` put beside the test bundle.
    static var binary: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent(".build/debug/securechat-server")
    }

    convenience init() throws {
        try self.init(port: 0, dataDirectory: FileManager.default.temporaryDirectory.appendingPathComponent("securechat-e2e-\(UUID().uuidString)"))
    }

    /// Stops the server gracefully and starts it again on the same port and data.
    func restart() throws {
        process.terminate()
        process.waitUntilExit()
        let started = try ServerBinary(port: port, dataDirectory: dataDirectory)
        process = started.process
    }

    private init(port requested: Int, dataDirectory: URL) throws {
        self.dataDirectory = dataDirectory
        process = Process()
        process.executableURL = Self.binary
        process.arguments = ["--port", "\(requested)", "--data-dir", dataDirectory.path, "--bcrypt-cost", "10", "--log-level", "info"]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        var seen = ""
        var found: Int?
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline, found == nil {
            let chunk = pipe.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            seen += String(decoding: chunk, as: UTF8.self)
            if let range = seen.range(of: #"127\.0\.0\.1:(\d+)"#, options: .regularExpression) {
                found = Int(seen[range].split(separator: ":").last ?? "")
            }
        }
        guard let found else {
            process.terminate()
            throw HarnessError.serverDidNotStart(seen)
        }
        port = found
        // Keep draining, so the server never blocks on a full pipe.
        pipe.fileHandleForReading.readabilityHandler = { _ = $0.availableData }
    }

    func stop() {
        process.terminate()
        process.waitUntilExit()
        try? FileManager.default.removeItem(at: dataDirectory)
    }

    /// Every byte the server keeps: its database (with the write-ahead log) and attachment store.
    func storedBytes() throws -> Data {
        var all = Data()
        let files = FileManager.default.enumerator(at: dataDirectory, includingPropertiesForKeys: nil)
        while let file = files?.nextObject() as? URL {
            if let data = try? Data(contentsOf: file) { all.append(data) }
        }
        return all
    }
}

enum HarnessError: Error {
    case serverDidNotStart(String)
    case timedOut(String)
}

/// A fresh folder for a client's local store.
func temporaryDirectory(_ name: String) -> URL {
    FileManager.default.temporaryDirectory.appendingPathComponent("securechat-client-\(name)-\(UUID().uuidString)")
}

/// Collects a client's events so a test can wait for the one it expects.
actor EventLog {
    private var events: [ClientEvent] = []
    private var task: Task<Void, Never>?

    init(_ client: SecureChatClient) {
        let stream = client.events
        Task { await self.start(stream) }
    }

    private func start(_ stream: AsyncStream<ClientEvent>) {
        task = Task {
            for await event in stream { self.append(event) }
        }
    }

    private func append(_ event: ClientEvent) { events.append(event) }

    /// Removes and returns the first event `extract` accepts, waiting up to `timeout` seconds.
    func next<T: Sendable>(timeout: TimeInterval = 15, _ what: String, _ extract: (ClientEvent) -> T?) async throws -> T {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let index = events.firstIndex(where: { extract($0) != nil }) {
                return extract(events.remove(at: index))!
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw HarnessError.timedOut(what)
    }

    /// The next message a person would see (receipts are skipped).
    func message(timeout: TimeInterval = 15) async throws -> ChatMessage {
        try await next(timeout: timeout, "a message") { event in
            guard case .message(let message) = event else { return nil }
            if case .receipt = message.envelope.content { return nil }
            return message
        }
    }

    func receipt(timeout: TimeInterval = 15) async throws -> (Content.Receipt, [String]) {
        try await next(timeout: timeout, "a receipt") { event in
            guard case .message(let message) = event, case .receipt(let kind, let ids) = message.envelope.content else { return nil }
            return (kind, ids)
        }
    }

    /// The texts of the next `count` messages, in arrival order. On a time-out, what did arrive
    /// is part of the error.
    func texts(_ count: Int, timeout: TimeInterval = 15) async throws -> [String] {
        var texts: [String] = []
        for _ in 0..<count {
            do {
                let message = try await message(timeout: timeout)
                if case .text(let text, _) = message.envelope.content { texts.append(text) }
            } catch {
                let others = events.map { "\($0)" }.joined(separator: "\n")
                throw HarnessError.timedOut("after \(texts.count) of \(count) messages (last \(texts.last ?? "none")); other events:\n\(others)")
            }
        }
        return texts
    }
}

/// Alice and Bob, registered on a fresh server binary with stores in fresh folders; everything is
/// removed afterwards.
func withAliceAndBob(
    _ body: (ServerBinary, SecureChatClient, SecureChatClient, [URL]) async throws -> Void
) async throws {
    let server = try ServerBinary()
    defer { server.stop() }
    let directories = ["alice", "bob"].map(temporaryDirectory)
    defer { for directory in directories { try? FileManager.default.removeItem(at: directory) } }
    let alice = try await SecureChatClient.registerForTesting(server: server.url, username: "alice", password: "alice password 1", directory: directories[0])
    let bob = try await SecureChatClient.registerForTesting(server: server.url, username: "bob", password: "bob password 12", directory: directories[1])
    try await body(server, alice, bob, directories)
    await alice.close()
    await bob.close()
}

