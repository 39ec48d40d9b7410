import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1
import NIOSSL
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
        /// A browser page from an origin that is neither this server's nor allowed.
        case refusedOrigin(NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>)
    }

    struct Value: ServerChildChannelValue {
        let upgradeResult: EventLoopFuture<UpgradeResult>
        let channel: any Channel
    }

    let responder: HTTPChannelHandler.Responder
    let services: ChatServices
    let httpIdleTimeout: Duration
    let timing: WebSocketTransport.Timing
    /// HTTPS and WSS, when the server terminates TLS itself.
    let tls: NIOSSLContext?

    init(
        responder: @escaping HTTPChannelHandler.Responder, services: ChatServices, httpIdleTimeout: Duration,
        timing: WebSocketTransport.Timing, tls: NIOSSLContext?
    ) {
        self.responder = Self.refusingLateUpgrades(responder)
        self.services = services
        self.httpIdleTimeout = httpIdleTimeout
        self.timing = timing
        self.tls = tls
    }

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            if let tls { try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls)) }
            // Until its first request is read, nothing else in the pipeline times a connection
            // out or closes it for a graceful shutdown.
            let guardHandler = FirstRequestGuard(timeout: TimeAmount(httpIdleTimeout))
            try channel.pipeline.syncOperations.addHandler(guardHandler)
            let firstRequest = NIOLoopBound(guardHandler, eventLoop: channel.eventLoop)
            let upgradeAttempted = NIOLoopBoundBox(false, eventLoop: channel.eventLoop)
            let originRefused = NIOLoopBoundBox(false, eventLoop: channel.eventLoop)
            let secure = tls != nil
            let services = services
            let timing = timing
            let upgrader = NIOTypedWebSocketServerUpgrader<UpgradeResult>(
                maxFrameSize: APILimits.frameBytes,
                shouldUpgrade: { channel, head in
                    upgradeAttempted.value = true
                    let path = head.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
                    // WebSockets are not bound by CORS: a page elsewhere could open one. It would
                    // still need a token, but there is no reason to let it try.
                    guard
                        CrossOriginPolicy.allows(
                            origin: head.headers["Origin"].first, host: head.headers["Host"].first,
                            allowed: services.configuration.allowedOrigins)
                    else {
                        originRefused.value = true
                        return channel.eventLoop.makeSucceededFuture(nil)
                    }
                    guard head.method == .GET && path == Self.path else { return channel.eventLoop.makeSucceededFuture(nil) }
                    var headers = HTTPHeaders()
                    if let deflate = Self.compression(for: head, services.configuration) {
                        headers.add(name: "Sec-WebSocket-Extensions", value: deflate.responseHeader)
                    }
                    return channel.eventLoop.makeSucceededFuture(headers)
                },
                upgradePipelineHandler: { channel, head in
                    channel.eventLoop.makeCompletedFuture {
                        // Where the guard was: next to the socket (or to TLS), below the WebSocket codec.
                        try channel.pipeline.syncOperations.addHandler(
                            WireByteCounter(metrics: services.metrics), position: .after(firstRequest.value))
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
                        if let deflate = Self.compression(for: head, services.configuration) {
                            try channel.pipeline.syncOperations.addHandler(PerMessageDeflateHandler(agreement: deflate))
                            services.metrics.webSocketsCompressed.increment()
                        } else {
                            try channel.pipeline.syncOperations.addHandler(ReservedBitsGuard())
                            services.metrics.webSocketsUncompressed.increment()
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
                        try channel.pipeline.syncOperations.addHandler(HTTP1ToHTTPServerCodec(secure: secure))
                        try channel.pipeline.syncOperations.addHandler(
                            HTTPConnectionStateHandler(idleTimeout: httpIdleTimeout, logger: logger))
                        let asyncChannel = try NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>(
                            wrappingChannelSynchronously: channel, configuration: .init(isOutboundHalfClosureEnabled: true))
                        if originRefused.value { return .refusedOrigin(asyncChannel) }
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
                await Self.refuseUpgrade(
                    http, status: .badRequest,
                    APIErrorBody(code: .badRequest, message: "WebSocket upgrades are served at \(Self.path), with Sec-WebSocket-Version 13"))
            case .refusedOrigin(let http):
                await Self.refuseUpgrade(
                    http, status: .forbidden, APIErrorBody(code: .forbidden, message: "pages from this origin may not open a WebSocket here"))
            case .webSocket(let channel):
                // The socket lives in its handlers. Waiting here keeps the server's graceful
                // shutdown (which quiesces every channel) from finishing before it closes.
                try? await channel.closeFuture.get()
            }
        } catch {
            logger.debug("connection ended before its first request", metadata: ["error": "\(error)"])
        }
    }

    /// The permessage-deflate agreement for an upgrade request, if the client offers one the
    /// server accepts and compression is on.
    static func compression(for head: HTTPRequestHead, _ configuration: ServerConfiguration) -> PerMessageDeflateAgreement? {
        guard configuration.webSocketCompression else { return nil }
        return PerMessageDeflateAgreement.negotiate(offers: head.headers["Sec-WebSocket-Extensions"])
    }

    /// An upgrade to anything but ``path``, one NIO found malformed, or one from a foreign origin:
    /// a JSON error, then close.
    private static func refuseUpgrade(
        _ http: NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>, status: HTTPResponse.Status, _ body: APIErrorBody
    ) async {
        guard let json = try? APIJSON.makeEncoder().encode(body) else { return }
        try? await http.executeThenClose { _, outbound in
            let head = HTTPResponse(
                status: status,
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
