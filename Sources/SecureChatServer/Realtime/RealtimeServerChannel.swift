import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1
import NIOWebSocket
import SecureChatAPI

/// Each accepted connection: HTTP/1.1 for the REST API and the web client, or, when its first
/// request asks to upgrade at ``path``, a WebSocket served by ``WebSocketTransport`` and
/// ``RealtimeSession`` directly on the connection's event loop.
///
/// Why not HummingbirdWebSocket's channel: it runs each socket through an actor and an async
/// writer, one hop and one flush per frame, plus reader, writer and ping tasks per socket. Here a
/// socket is a channel handler: frames written in one event-loop turn leave in one flush, and an
/// idle socket costs its buffers and two timers, no task.
struct RealtimeServerChannel: ServerChildChannel, HTTPChannelHandler {
    static let path = "/v1/ws"

    enum UpgradeResult: Sendable {
        case webSocket(any Channel)
        case notUpgraded(NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>)
        case refusedUpgrade(NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>)
    }

    struct Value: ServerChildChannelValue {
        let upgradeResult: EventLoopFuture<UpgradeResult>
        let channel: any Channel
    }

    let responder: HTTPChannelHandler.Responder
    let services: ChatServices
    let httpIdleTimeout: Duration
    let timing: WebSocketTransport.Timing

    init(
        responder: @escaping HTTPChannelHandler.Responder, services: ChatServices, httpIdleTimeout: Duration,
        timing: WebSocketTransport.Timing
    ) {
        self.responder = Self.refusingLateUpgrades(responder)
        self.services = services
        self.httpIdleTimeout = httpIdleTimeout
        self.timing = timing
    }

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            // Until its first request is read, nothing else in the pipeline times a connection
            // out or closes it for a graceful shutdown.
            let guardHandler = FirstRequestGuard(timeout: TimeAmount(httpIdleTimeout))
            try channel.pipeline.syncOperations.addHandler(guardHandler)
            let firstRequest = NIOLoopBound(guardHandler, eventLoop: channel.eventLoop)
            let upgradeAttempted = NIOLoopBoundBox(false, eventLoop: channel.eventLoop)
            let services = services
            let timing = timing
            let upgrader = NIOTypedWebSocketServerUpgrader<UpgradeResult>(
                maxFrameSize: APILimits.frameBytes,
                shouldUpgrade: { channel, head in
                    upgradeAttempted.value = true
                    let path = head.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
                    let accepted = head.method == .GET && path == Self.path
                    return channel.eventLoop.makeSucceededFuture(accepted ? HTTPHeaders() : nil)
                },
                upgradePipelineHandler: { channel, head in
                    channel.eventLoop.makeCompletedFuture {
                        _ = channel.pipeline.syncOperations.removeHandler(firstRequest.value)
                        let clientAddress = ClientAddress.resolve(
                            peer: channel.remoteAddress?.ipAddress ?? "unknown", forwardedFor: head.headers["X-Forwarded-For"],
                            trustedProxies: services.configuration.trustedProxies)
                        var logger = logger
                        logger[metadataKey: "client"] = .string(clientAddress)
                        let transport = WebSocketTransport(timing: timing, logger: logger) { [logger] transport, eventLoop in
                            RealtimeSession(
                                services: services, socket: transport, eventLoop: eventLoop, clientAddress: clientAddress, logger: logger)
                        }
                        try channel.pipeline.syncOperations.addHandlers(
                            NIOWebSocketFrameAggregator(
                                minNonFinalFragmentSize: 0, maxAccumulatedFrameCount: 256,
                                maxAccumulatedFrameSize: APILimits.frameBytes),
                            transport)
                        return UpgradeResult.webSocket(channel)
                    }
                })
            let httpIdleTimeout = httpIdleTimeout
            let upgradeConfiguration = NIOTypedHTTPServerUpgradeConfiguration(
                upgraders: [upgrader],
                notUpgradingCompletionHandler: { channel in
                    channel.eventLoop.makeCompletedFuture {
                        _ = channel.pipeline.syncOperations.removeHandler(firstRequest.value)
                        try channel.pipeline.syncOperations.addHandler(HTTP1ToHTTPServerCodec(secure: false))
                        try channel.pipeline.syncOperations.addHandler(
                            HTTPConnectionStateHandler(idleTimeout: httpIdleTimeout, logger: logger))
                        let asyncChannel = try NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>(
                            wrappingChannelSynchronously: channel, configuration: .init(isOutboundHalfClosureEnabled: true))
                        return upgradeAttempted.value ? .refusedUpgrade(asyncChannel) : .notUpgraded(asyncChannel)
                    }
                })
            var configuration = NIOUpgradableHTTPServerPipelineConfiguration<UpgradeResult>(
                upgradeConfiguration: upgradeConfiguration)
            // Hummingbird's responder handles pipelining, errors and header validation.
            configuration.enablePipelining = false
            configuration.enableErrorHandling = false
            configuration.enableResponseHeaderValidation = false
            let upgradeResult = try channel.pipeline.syncOperations.configureUpgradableHTTPServerPipeline(
                configuration: configuration)
            return Value(upgradeResult: upgradeResult, channel: channel)
        }
    }

    func handle(value: Value, logger: Logger) async {
        do {
            switch try await value.upgradeResult.get() {
            case .notUpgraded(let http):
                await handleHTTP(asyncChannel: http, logger: logger)
            case .refusedUpgrade(let http):
                await Self.refuseUpgrade(http)
            case .webSocket(let channel):
                // The socket lives in its handlers. Waiting here keeps the server's graceful
                // shutdown (which quiesces every channel) from finishing before it closes.
                try? await channel.closeFuture.get()
            }
        } catch {
            logger.debug("connection ended before its first request", metadata: ["error": "\(error)"])
        }
    }

    /// An upgrade to anything but ``path``, or one NIO found malformed: a JSON error, then close.
    private static func refuseUpgrade(_ http: NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>) async {
        let body = APIErrorBody(code: .badRequest, message: "WebSocket upgrades are served at \(path), with Sec-WebSocket-Version 13")
        guard let json = try? APIJSON.makeEncoder().encode(body) else { return }
        try? await http.executeThenClose { _, outbound in
            let head = HTTPResponse(
                status: .badRequest,
                headerFields: [.connection: "close", .contentType: "application/json", .contentLength: "\(json.count)"])
            try await outbound.write(contentsOf: [.head(head), .body(ByteBuffer(bytes: json)), .end(nil)])
        }
    }

    /// NIO looks for an upgrade in a connection's first request only. A later request that asks
    /// for one is redirected to the same address with the connection closed, so the client
    /// retries on a fresh connection where the upgrade can happen.
    private static func refusingLateUpgrades(_ responder: @escaping HTTPChannelHandler.Responder) -> HTTPChannelHandler.Responder {
        { request, writer, channel in
            guard request.headers[.upgrade]?.lowercased() == "websocket" else {
                try await responder(request, writer, channel)
                return
            }
            var location = request.uri.path
            if let query = request.uri.query { location += "?" + query }
            try await writer.writeResponse(
                HTTPResponse(status: .temporaryRedirect, headerFields: [.connection: "close", .location: location]))
            throw LateUpgrade()
        }
    }

    private struct LateUpgrade: Error {}
}

/// Closes a connection that sends no complete request head within `timeout`, that half-closes
/// before sending one, or that is still silent when the server shuts down. Removed once the
/// first request decides between HTTP and WebSocket; from then on `HTTPConnectionStateHandler` or
/// ``WebSocketTransport`` look after the connection.
final class FirstRequestGuard: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    private let timeout: TimeAmount
    private var deadline: Scheduled<Void>?

    init(timeout: TimeAmount) { self.timeout = timeout }

    func handlerAdded(context: ChannelHandlerContext) {
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        deadline = context.eventLoop.scheduleTask(in: timeout) { bound.value.close(promise: nil) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline?.cancel()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent {
            context.close(promise: nil)
        } else if case .inputClosed? = event as? ChannelEvent {
            context.close(promise: nil)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }
}
