import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket
import SecureChatAPI

/// What one connection does once the server has said `caughtUp`.
enum Role: Sendable {
    /// Pairwise sends to one device, at most `window` unanswered; `interval` nanoseconds apart, or
    /// as fast as the server answers when 0.
    case sender(recipientUserId: String, recipientDeviceId: UInt32, window: Int, interval: UInt64, prefix: String)
    /// Room sends (one ciphertext for the whole room), at most `window` unanswered.
    case roomSender(room: String, window: Int, prefix: String)
    /// Counts deliveries once each, records their latency and acknowledges every 20.
    case receiver
    /// Stays connected, answering pings.
    case idle
    /// Closes as soon as it is in: one whole authentication.
    case authenticateOnce
}

/// Connects one device and plays `role` until the connection ends or the task is cancelled.
///
/// A channel handler rather than an async frame loop: the load generator shares the two cores
/// with the server, and HummingbirdWSClient's per-frame tasks and actor hops cost it about as much
/// CPU as the server spent on each message. Frames written while handling one read leave together.
func runDevice(_ endpoint: Endpoint, token: String, deviceId: UInt32, role: Role, counters: Counters) async throws {
    let hello = String(decoding: try APIJSON.makeEncoder().encode(ClientFrame.hello(.init(token: token, deviceId: deviceId))), as: UTF8.self)
    // The channel and the promise on one event loop: they complete in the order they are told to.
    let eventLoop = MultiThreadedEventLoopGroup.singleton.next()
    let finished = eventLoop.makePromise(of: Void.self)
    let upgrader = NIOWebSocketClientUpgrader(
        maxFrameSize: 1 << 20, automaticErrorHandling: false,
        upgradePipelineHandler: { channel, _ in
            channel.eventLoop.makeCompletedFuture {
                // Before any WebSocket byte arrives: the request's handler only ever sees a refusal.
                channel.pipeline.syncOperations.removeHandler(name: UpgradeRequest.name, promise: nil)
                try channel.pipeline.syncOperations.addHandler(
                    DeviceHandler(hello: hello, role: role, counters: counters, finished: finished))
            }
        })
    let channel: any Channel
    do {
        channel = try await ClientBootstrap(group: eventLoop)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers(
                        withClientUpgrade: (upgraders: [upgrader], completionHandler: { _ in }))
                    try channel.pipeline.syncOperations.addHandler(
                        UpgradeRequest(host: "127.0.0.1:\(endpoint.port)"), name: UpgradeRequest.name)
                }
            }
            .connect(host: "127.0.0.1", port: endpoint.port).get()
    } catch {
        finished.fail(error)
        throw error
    }
    // A connection that closes before the upgrade (or is closed on a refusal) never reaches the
    // handler that completes `finished`.
    channel.closeFuture.whenComplete { _ in finished.fail(LoadError.upgradeRefused) }
    try await withTaskCancellationHandler {
        try await finished.futureResult.get()
    } onCancel: {
        channel.close(promise: nil)
    }
}

/// Sends the upgrade request once the connection is up (the upgrade handler adds its headers).
private final class UpgradeRequest: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    static let name = "upgrade-request"

    private let host: String

    init(host: String) { self.host = host }

    func channelActive(context: ChannelHandlerContext) {
        var headers = HTTPHeaders()
        headers.add(name: "Host", value: host)
        headers.add(name: "Content-Length", value: "0")
        context.write(wrapOutboundOut(.head(HTTPRequestHead(version: .http1_1, method: .GET, uri: "/v1/ws", headers: headers))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        context.fireChannelActive()
    }

    /// Only a response that is not the upgrade reaches this handler (a successful upgrade removes
    /// it first): the connection ends, and `runDevice` reports the refusal.
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.close(promise: nil)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

private final class DeviceHandler: ChannelInboundHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    private let hello: String
    private let role: Role
    private let counters: Counters
    private let finished: EventLoopPromise<Void>
    private var caughtUp = false
    private var sent = 0
    private var answered = 0
    private var lastSeq: Int64 = 0
    private var unacknowledged = 0
    private var latencies: [UInt64] = []
    private var pacing: Scheduled<Void>?

    init(hello: String, role: Role, counters: Counters, finished: EventLoopPromise<Void>) {
        self.hello = hello
        self.role = role
        self.counters = counters
        self.finished = finished
    }

    func handlerAdded(context: ChannelHandlerContext) {
        sendText(hello, context: context)
        context.flush()
    }

    func channelInactive(context: ChannelHandlerContext) {
        pacing?.cancel()
        if unacknowledged > 0 { counters.delivered(unacknowledged, latencies: latencies) }
        finished.succeed()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        finished.fail(error)
        context.close(promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.opcode {
        case .text:
            received(frame.unmaskedData, context: context)
        case .ping:
            write(.pong, frame.unmaskedData, context: context)
        case .connectionClose:
            write(.connectionClose, frame.unmaskedData, context: context)
            context.flush()
            context.close(promise: nil)
        default:
            break
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
    }

    private func received(_ frame: ByteBuffer, context: ChannelHandlerContext) {
        let kind = ServerFrameScan.kind(of: frame)
        if kind == .error {
            finished.fail(LoadError.protocolViolation(String(buffer: frame)))
            context.close(promise: nil)
            return
        }
        guard caughtUp else {
            if kind == .caughtUp {
                caughtUp = true
                start(context: context)
            }
            return
        }
        switch role {
        case .sender, .roomSender:
            guard kind == .accepted else { return }
            answered += 1
            counters.accepted(1)
            if case .sender(_, _, _, let interval, _) = role, interval > 0 { return }
            sendWithinWindow(context: context)
        case .receiver:
            guard kind == .message, let seq = ServerFrameScan.sequence(in: frame), seq > lastSeq else { return }
            lastSeq = seq
            unacknowledged += 1
            if let sentAt = ServerFrameScan.sentTimestamp(in: frame) { latencies.append(monotonicNanoseconds() &- sentAt) }
            if unacknowledged >= 20 {
                sendText(#"{"type":"ack","seq":\#(lastSeq)}"#, context: context)
                counters.delivered(unacknowledged, latencies: latencies)
                unacknowledged = 0
                latencies.removeAll(keepingCapacity: true)
            }
        case .idle, .authenticateOnce:
            break
        }
    }

    private func start(context: ChannelHandlerContext) {
        switch role {
        case .sender(_, _, _, let interval, _) where interval > 0:
            paceNext(at: .now(), interval: Int64(interval), context: context)
        case .sender, .roomSender:
            sendWithinWindow(context: context)
            context.flush()
        case .authenticateOnce:
            counters.delivered(1)
            write(.connectionClose, context.channel.allocator.buffer(integer: UInt16(1000)), context: context)
            context.flush()
        case .idle:
            counters.delivered(1)
        case .receiver:
            break
        }
    }

    /// Sends on a fixed schedule (each deadline one interval after the previous one, not after
    /// the previous send), so that the offered rate is the rate asked for.
    private func paceNext(at deadline: NIODeadline, interval: Int64, context: ChannelHandlerContext) {
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        pacing = context.eventLoop.scheduleTask(deadline: deadline) {
            let (handler, context) = loopBound.value
            handler.sendOne(context: context)
            context.flush()
            handler.paceNext(at: deadline + .nanoseconds(interval), interval: interval, context: context)
        }
    }

    private var window: Int {
        switch role {
        case .sender(_, _, let window, _, _), .roomSender(_, let window, _): window
        default: 0
        }
    }

    private func sendWithinWindow(context: ChannelHandlerContext) {
        while sent - answered < window { sendOne(context: context) }
    }

    private func sendOne(context: ChannelHandlerContext) {
        guard sent - answered < window || window == 0 else { return }
        guard let template = sendTemplate else { return }
        var buffer = context.channel.allocator.buffer(capacity: template.head.count + template.middle.count + template.tail.count + 32)
        buffer.writeBytes(template.head)
        buffer.writeString(String(sent))
        buffer.writeBytes(template.middle)
        PayloadTemplate.writeTimestampedPrefix(monotonicNanoseconds(), to: &buffer)
        buffer.writeBytes(template.tail)
        write(.text, buffer, context: context)
        sent += 1
    }

    /// The constant parts of this sender's `send` frames, around the message number and the
    /// payload's first 12 base64 characters (which carry the send time).
    private lazy var sendTemplate: (head: [UInt8], middle: [UInt8], tail: [UInt8])? = {
        let tail = Array((PayloadTemplate.constantSuffix + "\"").utf8)
        switch role {
        case .sender(let userId, let deviceId, _, _, let prefix):
            return (
                Array(#"{"type":"send","id":"\#(prefix)-"#.utf8),
                Array(#"","recipients":[{"userId":"\#(userId)","deviceId":\#(deviceId),"ciphertext":""#.utf8),
                tail + Array("}]}".utf8)
            )
        case .roomSender(let room, _, let prefix):
            return (Array(#"{"type":"send","id":"\#(prefix)-"#.utf8), Array(#"","room":"\#(room)","ciphertext":""#.utf8), tail + Array("}".utf8))
        default:
            return nil
        }
    }()

    private func sendText(_ text: String, context: ChannelHandlerContext) {
        write(.text, context.channel.allocator.buffer(string: text), context: context)
    }

    /// Client frames are masked (RFC 6455, section 5.3).
    private func write(_ opcode: WebSocketOpcode, _ payload: ByteBuffer, context: ChannelHandlerContext) {
        let frame = WebSocketFrame(fin: true, opcode: opcode, maskKey: .random(), data: payload)
        context.write(wrapOutboundOut(frame), promise: nil)
    }
}

/// Reads what the load generator needs from a server frame without decoding it: the frame's type,
/// a delivery's sequence number and the send time its payload carries.
enum ServerFrameScan {
    enum Kind { case accepted, message, caughtUp, error, other }

    static func kind(of frame: ByteBuffer) -> Kind {
        frame.withUnsafeReadableBytes { bytes in
            guard let start = find(typeKey, in: bytes) else { return .other }
            let rest = UnsafeRawBufferPointer(rebasing: bytes[(start + typeKey.count)...])
            if hasPrefix(rest, accepted) { return .accepted }
            if hasPrefix(rest, message) { return .message }
            if hasPrefix(rest, caughtUp) { return .caughtUp }
            if hasPrefix(rest, error) { return .error }
            return .other
        }
    }

    static func sequence(in frame: ByteBuffer) -> Int64? {
        frame.withUnsafeReadableBytes { bytes in
            guard let start = find(seqKey, in: bytes) else { return nil }
            var value: Int64 = 0
            var index = start + seqKey.count
            var any = false
            while index < bytes.count, bytes[index] >= 0x30, bytes[index] <= 0x39 {
                value = value * 10 + Int64(bytes[index] - 0x30)
                index += 1
                any = true
            }
            return any ? value : nil
        }
    }

    /// The first 8 bytes of the payload, from its first 12 base64 characters (9 bytes).
    static func sentTimestamp(in frame: ByteBuffer) -> UInt64? {
        frame.withUnsafeReadableBytes { bytes -> UInt64? in
            guard let start = find(ciphertextKey, in: bytes), start + ciphertextKey.count + 12 <= bytes.count else { return nil }
            var decoded = [UInt8]()
            decoded.reserveCapacity(9)
            var index = start + ciphertextKey.count
            for _ in 0..<3 {
                var group: UInt32 = 0
                for offset in 0..<4 {
                    guard let sextet = PayloadTemplate.sextet(bytes[index + offset]) else { return nil }
                    group = group << 6 | UInt32(sextet)
                }
                decoded += [UInt8(group >> 16 & 0xff), UInt8(group >> 8 & 0xff), UInt8(group & 0xff)]
                index += 4
            }
            return decoded.prefix(8).reversed().reduce(0) { $0 << 8 | UInt64($1) }
        }
    }

    private static let typeKey = Array(#""type":""#.utf8)
    private static let seqKey = Array(#""seq":"#.utf8)
    private static let ciphertextKey = Array(#""ciphertext":""#.utf8)
    private static let accepted = Array(#"accepted""#.utf8)
    private static let message = Array(#"message""#.utf8)
    private static let caughtUp = Array(#"caughtUp""#.utf8)
    private static let error = Array(#"error""#.utf8)

    private static func hasPrefix(_ bytes: UnsafeRawBufferPointer, _ prefix: [UInt8]) -> Bool {
        bytes.count >= prefix.count && zip(bytes, prefix).allSatisfy { $0 == $1 }
    }

    private static func find(_ needle: [UInt8], in bytes: UnsafeRawBufferPointer) -> Int? {
        guard bytes.count >= needle.count, let first = needle.first else { return nil }
        var index = 0
        while index <= bytes.count - needle.count {
            if bytes[index] == first, hasPrefix(UnsafeRawBufferPointer(rebasing: bytes[index...]), needle) { return index }
            index += 1
        }
        return nil
    }
}

/// The 96-byte stand-in ciphertext: the send time in its first 8 bytes (little-endian), then 0x5a.
/// Its base64 form is 12 characters that change (bytes 0..<9) followed by 116 that never do.
enum PayloadTemplate {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    static let constantSuffix: String = String(payload(at: 0).dropFirst(12))

    static func sextet(_ character: UInt8) -> UInt8? {
        alphabet.firstIndex(of: character).map { UInt8($0) }
    }

    static func writeTimestampedPrefix(_ time: UInt64, to buffer: inout ByteBuffer) {
        var bytes = (0..<8).map { UInt8(truncatingIfNeeded: time >> (8 * $0)) }
        bytes.append(0x5a)
        for group in stride(from: 0, to: 9, by: 3) {
            let value = UInt32(bytes[group]) << 16 | UInt32(bytes[group + 1]) << 8 | UInt32(bytes[group + 2])
            buffer.writeInteger(alphabet[Int(value >> 18 & 63)])
            buffer.writeInteger(alphabet[Int(value >> 12 & 63)])
            buffer.writeInteger(alphabet[Int(value >> 6 & 63)])
            buffer.writeInteger(alphabet[Int(value & 63)])
        }
    }
}
