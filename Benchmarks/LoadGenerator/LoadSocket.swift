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
                    try channel.pipeline.syncOperations.addHandler(UpgradeRequest(host: "127.0.0.1:\(endpoint.port)"))
                }
            }
            .connect(host: "127.0.0.1", port: endpoint.port).get()
    } catch {
        finished.fail(error)
        throw error
    }
    // A connection that closes before the upgrade never reaches the handler that completes `finished`.
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
            received(String(buffer: frame.unmaskedData), context: context)
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

    private func received(_ text: String, context: ChannelHandlerContext) {
        if text.contains("\"type\":\"error\"") {
            finished.fail(LoadError.protocolViolation(text))
            context.close(promise: nil)
            return
        }
        guard caughtUp else {
            if text.contains("\"type\":\"caughtUp\"") {
                caughtUp = true
                start(context: context)
            }
            return
        }
        switch role {
        case .sender, .roomSender:
            guard text.contains("\"type\":\"accepted\"") else { return }
            answered += 1
            counters.accepted(1)
            if case .sender(_, _, _, let interval, _) = role, interval > 0 { return }
            sendWithinWindow(context: context)
        case .receiver:
            guard text.contains("\"type\":\"message\""), let seq = integerField("seq", in: text), seq > lastSeq else { return }
            lastSeq = seq
            unacknowledged += 1
            if let sentAt = sentTimestamp(in: text) { latencies.append(monotonicNanoseconds() &- sentAt) }
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
        switch role {
        case .sender(let userId, let deviceId, _, _, let prefix):
            sendText(
                #"{"type":"send","id":"\#(prefix)-\#(sent)","recipients":[{"userId":"\#(userId)","deviceId":\#(deviceId),"ciphertext":"\#(payload(at: monotonicNanoseconds()))"}]}"#,
                context: context)
        case .roomSender(let room, _, let prefix):
            sendText(
                #"{"type":"send","id":"\#(prefix)-\#(sent)","room":"\#(room)","ciphertext":"\#(payload(at: monotonicNanoseconds()))"}"#,
                context: context)
        default:
            return
        }
        sent += 1
    }

    private func sendText(_ text: String, context: ChannelHandlerContext) {
        write(.text, context.channel.allocator.buffer(string: text), context: context)
    }

    /// Client frames are masked (RFC 6455, section 5.3).
    private func write(_ opcode: WebSocketOpcode, _ payload: ByteBuffer, context: ChannelHandlerContext) {
        let frame = WebSocketFrame(fin: true, opcode: opcode, maskKey: .random(), data: payload)
        context.write(wrapOutboundOut(frame), promise: nil)
    }
}
