import Foundation
import HummingbirdWSClient
import HummingbirdWSCompression
import Logging
import NIOSSL
import NIOWebSocket
import SecureChatAPI
import Testing

/// A WebSocket client for tests: frames in, frames out, and the close code at the end.
final class TestSocket: Sendable {
    private let inbox = FrameInbox()
    private let task: Task<Void, Never>

    /// Connects to `/v1/ws` without saying anything yet.
    /// `tls`: over WSS, trusting what it says. `compression`: offers permessage-deflate, with
    /// HummingbirdWSCompression (an implementation independent of the server's).
    init(port: Int, maxFrameSize: Int = 1 << 20, tls: TLSConfiguration? = nil, compression: Bool = false) async throws {
        let inbox = self.inbox
        task = Task {
            do {
                let close = try await WebSocketClient.connect(
                    // TLS names the server in SNI, which cannot carry an address: by name then.
                    url: tls == nil ? "ws://127.0.0.1:\(port)/v1/ws" : "wss://localhost:\(port)/v1/ws",
                    configuration: .init(
                        maxFrameSize: maxFrameSize,
                        extensions: compression ? [.perMessageDeflate(noContextTakeover: true, maxDecompressedFrameSize: maxFrameSize)] : []),
                    tlsConfiguration: tls, logger: Logger(label: "test-socket")
                ) { inbound, outbound, _ in
                    await inbox.attach(outbound)
                    for try await message in inbound.messages(maxSize: 1 << 24) {
                        if case .text(let text) = message { await inbox.receive(text) }
                    }
                }
                await inbox.finish(close?.closeCode)
            } catch {
                await inbox.finish(nil)
            }
        }
        try await inbox.waitUntilAttached()
    }

    /// Connects and says hello as `user`'s device, expecting `welcome`.
    static func connect(_ user: TestUser, port: Int, resumeAfter: Int64? = nil, compression: Bool = false) async throws -> TestSocket {
        let socket = try await TestSocket(port: port, compression: compression)
        try await socket.send(.hello(.init(token: user.accessToken, deviceId: user.deviceId, resumeAfter: resumeAfter)))
        let first = try await socket.next()
        guard case .welcome = first else {
            Issue.record("expected welcome, got \(String(describing: first))")
            throw TestSocketError.unexpected
        }
        return socket
    }

    func send(_ frame: ClientFrame) async throws {
        try await sendText(String(decoding: try APIJSON.makeEncoder().encode(frame), as: UTF8.self))
    }

    func sendText(_ text: String) async throws { try await inbox.write(.text(text)) }

    func sendBinary(_ bytes: [UInt8]) async throws { try await inbox.write(.binary(.init(bytes: bytes))) }

    /// The next frame, or nil when the socket closed or nothing came within `timeout` seconds.
    func next(timeout: TimeInterval = 10) async throws -> ServerFrame? {
        guard let text = await inbox.next(timeout: timeout) else { return nil }
        return try APIJSON.makeDecoder().decode(ServerFrame.self, from: Data(text.utf8))
    }

    /// Skips frames until one matches, failing after `timeout`.
    func next<T>(timeout: TimeInterval = 10, matching extract: (ServerFrame) -> T?) async throws -> T? {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            guard let frame = try await next(timeout: deadline.timeIntervalSinceNow) else { return nil }
            if let value = extract(frame) { return value }
        }
        return nil
    }

    /// Waits for the server to close the socket and returns its close code.
    func closeCode(timeout: TimeInterval = 10) async -> WebSocketErrorCode? {
        await inbox.waitForClose(timeout: timeout)
    }

    /// Whether the connection ended (closed by either side, or lost).
    var isFinished: Bool { get async { await inbox.isFinished } }

    func close() async {
        try? await inbox.close()
        _ = await inbox.waitForClose(timeout: 5)
        task.cancel()
    }

    /// Goes away without a close frame, as a phone losing its network does.
    func drop() async {
        task.cancel()
        _ = await inbox.waitForClose(timeout: 5)
    }
}

enum TestSocketError: Error { case unexpected, notConnected }

private actor FrameInbox {
    private var frames: [String] = []
    private var waiter: CheckedContinuation<String?, Never>?
    private var outbound: WebSocketOutboundWriter?
    private var attachWaiters: [CheckedContinuation<Void, any Error>] = []
    private var finished = false
    private var closeCode: WebSocketErrorCode?
    private var closeWaiters: [CheckedContinuation<Void, Never>] = []

    var isFinished: Bool { finished }

    func attach(_ writer: WebSocketOutboundWriter) {
        outbound = writer
        for waiter in attachWaiters { waiter.resume() }
        attachWaiters = []
    }

    func waitUntilAttached() async throws {
        if outbound != nil { return }
        if finished { throw TestSocketError.notConnected }
        try await withCheckedThrowingContinuation { attachWaiters.append($0) }
    }

    func write(_ frame: WebSocketOutboundWriter.OutboundFrame) async throws {
        guard let outbound else { throw TestSocketError.notConnected }
        try await outbound.write(frame)
    }

    func close() async throws {
        try await outbound?.close(.normalClosure, reason: nil)
    }

    func receive(_ text: String) {
        if let waiter {
            self.waiter = nil
            waiter.resume(returning: text)
        } else {
            frames.append(text)
        }
    }

    func finish(_ code: WebSocketErrorCode?) {
        finished = true
        closeCode = code
        waiter?.resume(returning: nil)
        waiter = nil
        for waiter in attachWaiters { waiter.resume(throwing: TestSocketError.notConnected) }
        attachWaiters = []
        for waiter in closeWaiters { waiter.resume() }
        closeWaiters = []
    }

    func next(timeout: TimeInterval) async -> String? {
        if !frames.isEmpty { return frames.removeFirst() }
        if finished || timeout <= 0 { return nil }
        let timer = Task {
            try await Task.sleep(for: .seconds(timeout))
            self.expireWaiter()
        }
        defer { timer.cancel() }
        return await withCheckedContinuation { waiter = $0 }
    }

    private func expireWaiter() {
        waiter?.resume(returning: nil)
        waiter = nil
    }

    func waitForClose(timeout: TimeInterval) async -> WebSocketErrorCode? {
        if !finished {
            let timer = Task {
                try await Task.sleep(for: .seconds(timeout))
                self.expireCloseWaiters()
            }
            defer { timer.cancel() }
            await withCheckedContinuation { closeWaiters.append($0) }
        }
        return closeCode
    }

    private func expireCloseWaiters() {
        for waiter in closeWaiters { waiter.resume() }
        closeWaiters = []
    }
}
