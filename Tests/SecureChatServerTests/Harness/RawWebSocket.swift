import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// A WebSocket client written byte by byte, for what a well-behaved client library never sends:
/// fragments, reserved bits, invalid UTF-8, unanswered pings.
final class RawWebSocket: Sendable {
    struct Frame: Equatable {
        var fin = true
        var opcode: UInt8
        var payload: [UInt8]
        /// RSV1: the message is compressed (permessage-deflate).
        var rsv1 = false
    }

    enum Opcode {
        static let continuation: UInt8 = 0x0
        static let text: UInt8 = 0x1
        static let binary: UInt8 = 0x2
        static let close: UInt8 = 0x8
        static let ping: UInt8 = 0x9
        static let pong: UInt8 = 0xA
    }

    private let channel: any Channel
    private let bytes: Received

    /// The HTTP answer to the upgrade request: its status code, head and body.
    let status: Int
    let responseHead: String
    let responseBody: String

    private init(channel: any Channel, bytes: Received, status: Int, responseHead: String = "", responseBody: String) {
        self.channel = channel
        self.bytes = bytes
        self.status = status
        self.responseHead = responseHead
        self.responseBody = responseBody
    }

    private static func open(port: Int) async throws -> (any Channel, Received) {
        let received = Received()
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(Collector(received: received)) }
            }
            .connect(host: "127.0.0.1", port: port).get()
        return (channel, received)
    }

    /// A TCP connection that never sends a byte.
    static func silent(port: Int) async throws -> RawWebSocket {
        let (channel, received) = try await open(port: port)
        return RawWebSocket(channel: channel, bytes: received, status: 0, responseBody: "")
    }

    /// Opens a TCP connection and asks for an upgrade at `path`, with `extraHeaders` (`Name: value`).
    static func connect(port: Int, path: String = "/v1/ws", extraHeaders: [String] = []) async throws -> RawWebSocket {
        let (channel, received) = try await open(port: port)
        let key = Data((0..<16).map { _ in UInt8.random(in: 0...255) }).base64EncodedString()
        let request =
            "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Key: \(key)\r\nSec-WebSocket-Version: 13\r\n" + extraHeaders.map { $0 + "\r\n" }.joined() + "\r\n"
        try await channel.writeAndFlush(ByteBuffer(string: request))
        let head = try await received.take(until: Array("\r\n\r\n".utf8))
        let headText = String(decoding: head, as: UTF8.self)
        let statusLine = headText.split(separator: "\r\n").first ?? ""
        let status = Int(statusLine.split(separator: " ").dropFirst().first ?? "") ?? 0
        var body = ""
        if status != 101,
            let lengthLine = headText.split(separator: "\r\n").first(where: { $0.lowercased().hasPrefix("content-length:") }),
            let length = Int(lengthLine.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)), length > 0
        {
            body = String(decoding: try await received.take(count: length) ?? [], as: UTF8.self)
        }
        return RawWebSocket(channel: channel, bytes: received, status: status, responseHead: headText, responseBody: body)
    }

    /// Sends one frame, masked as a client must.
    func send(_ frame: Frame, reservedBits: UInt8 = 0) async throws {
        try await send([(frame, reservedBits)])
    }

    /// Sends frames in one write, so that the server reads them together.
    func send(_ frames: [(Frame, UInt8)]) async throws {
        var buffer = ByteBuffer()
        for (frame, reservedBits) in frames { Self.encode(frame, reservedBits: reservedBits, into: &buffer) }
        try await channel.writeAndFlush(buffer)
    }

    private static func encode(_ frame: Frame, reservedBits: UInt8, into buffer: inout ByteBuffer) {
        buffer.writeInteger((frame.fin ? 0x80 : 0) | (reservedBits << 4) | frame.opcode)
        let count = frame.payload.count
        if count < 126 {
            buffer.writeInteger(UInt8(0x80 | count))
        } else if count <= UInt16.max {
            buffer.writeInteger(UInt8(0x80 | 126))
            buffer.writeInteger(UInt16(count))
        } else {
            buffer.writeInteger(UInt8(0x80 | 127))
            buffer.writeInteger(UInt64(count))
        }
        let mask = (0..<4).map { _ in UInt8.random(in: 0...255) }
        buffer.writeBytes(mask)
        buffer.writeBytes(frame.payload.enumerated().map { $0.element ^ mask[$0.offset % 4] })
    }

    func sendText(_ text: String) async throws {
        try await send(Frame(opcode: Opcode.text, payload: Array(text.utf8)))
    }

    /// The next frame from the server, or nil once the connection is closed.
    func next(timeout: Duration = .seconds(10)) async throws -> Frame? {
        guard let header = try await bytes.take(count: 2, timeout: timeout) else { return nil }
        var length = Int(header[1] & 0x7f)
        if length == 126 {
            guard let extended = try await bytes.take(count: 2, timeout: timeout) else { return nil }
            length = Int(extended[0]) << 8 | Int(extended[1])
        } else if length == 127 {
            guard let extended = try await bytes.take(count: 8, timeout: timeout) else { return nil }
            length = extended.reduce(0) { $0 << 8 | Int($1) }
        }
        guard let payload = try await bytes.take(count: length, timeout: timeout) else { return nil }
        return Frame(fin: header[0] & 0x80 != 0, opcode: header[0] & 0x0f, payload: payload, rsv1: header[0] & 0x40 != 0)
    }

    /// Skips text frames until a close frame arrives, and returns its code.
    func closeCode(timeout: Duration = .seconds(10)) async throws -> UInt16? {
        while let frame = try await next(timeout: timeout) {
            if frame.opcode == Opcode.close {
                return frame.payload.count >= 2 ? UInt16(frame.payload[0]) << 8 | UInt16(frame.payload[1]) : nil
            }
        }
        return nil
    }

    /// True once the server has closed the TCP connection.
    func waitForEnd(timeout: Duration = .seconds(10)) async -> Bool {
        await bytes.waitForEnd(timeout: timeout)
    }

    func close() async {
        try? await channel.close()
    }
}

/// The bytes received so far, taken by count or up to a delimiter.
private final class Received: Sendable {
    private struct State {
        var bytes: [UInt8] = []
        var ended = false
    }

    private let state = NIOLockedValueBox(State())

    func append(_ buffer: ByteBuffer) { state.withLockedValue { $0.bytes += buffer.readableBytesView } }
    func end() { state.withLockedValue { $0.ended = true } }

    /// Exactly `count` bytes, or nil if the connection ended or `timeout` passed first.
    func take(count: Int, timeout: Duration = .seconds(10)) async throws -> [UInt8]? {
        try await poll(timeout: timeout) { state in
            guard state.bytes.count >= count else { return nil }
            defer { state.bytes.removeFirst(count) }
            return Array(state.bytes.prefix(count))
        }
    }

    /// The bytes up to and including `delimiter`.
    func take(until delimiter: [UInt8]) async throws -> [UInt8] {
        let found = try await poll(timeout: .seconds(10)) { state -> [UInt8]? in
            guard let range = state.bytes.firstRange(of: delimiter) else { return nil }
            defer { state.bytes.removeFirst(range.upperBound) }
            return Array(state.bytes[..<range.upperBound])
        }
        guard let found else { throw RawWebSocketError.noResponse }
        return found
    }

    func waitForEnd(timeout: Duration) async -> Bool {
        (try? await poll(timeout: timeout) { state in state.ended ? true : nil }) == true
    }

    private func poll<T>(timeout: Duration, _ attempt: @escaping (inout State) -> T?) async throws -> T? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let (value, ended) = state.withLockedValue { state in (attempt(&state), state.ended) }
            if let value { return value }
            if ended { return nil }
            try await Task.sleep(for: .milliseconds(5))
        }
        return nil
    }
}

private final class Collector: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    let received: Received

    init(received: Received) { self.received = received }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        received.append(unwrapInboundIn(data))
    }

    func channelInactive(context: ChannelHandlerContext) {
        received.end()
        context.fireChannelInactive()
    }
}

enum RawWebSocketError: Error {
    case noResponse
}
