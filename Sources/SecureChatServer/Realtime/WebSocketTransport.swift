import Logging
import NIOCore
import NIOWebSocket
import SecureChatAPI

/// The WebSocket protocol of one upgraded connection, on its event loop: control frames, the
/// close handshake, keep-alive pings, UTF-8 checks, read back-pressure, and one flush per
/// event-loop turn for everything written in it. Text and binary messages go to the connection's
/// ``RealtimeSession``.
///
/// It sits after NIO's frame decoder and ``NIOWebSocketFrameAggregator``, which bound frame and
/// message sizes; the decoder's protocol errors are answered by NIO's `WebSocketProtocolErrorHandler`.
final class WebSocketTransport: ChannelDuplexHandler, RealtimeSocket {
    typealias InboundIn = WebSocketFrame
    typealias OutboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    struct Timing: Sendable {
        /// Silence after which the server pings; a second period of silence closes the connection.
        var keepAlive: TimeAmount = .seconds(30)
        /// How long the server waits for the peer's close frame after sending its own.
        var closeHandshake: TimeAmount = .seconds(5)
    }

    private enum State {
        case open
        /// A close frame was sent; the peer's answer (or the timeout) ends the connection.
        case closeSent
        case closed
    }

    private let makeSession: (WebSocketTransport, any EventLoop) -> RealtimeSession
    private let timing: Timing
    private let logger: Logger
    private var session: RealtimeSession?
    private var context: ChannelHandlerContext?
    private var state = State.open
    private var flushScheduled = false
    private var pauses: ReadPause = []
    private var readRequested = false
    private var heardSinceLastCheck = true
    private var pingOutstanding = false
    private var keepAliveTask: RepeatedTask?
    private var closeTimer: Scheduled<Void>?

    init(timing: Timing, logger: Logger, makeSession: @escaping (WebSocketTransport, any EventLoop) -> RealtimeSession) {
        self.timing = timing
        self.logger = logger
        self.makeSession = makeSession
    }

    // MARK: Pipeline events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        let session = makeSession(self, context.eventLoop)
        self.session = session
        let transport = NIOLoopBound(self, eventLoop: context.eventLoop)
        keepAliveTask = context.eventLoop.scheduleRepeatedTask(initialDelay: timing.keepAlive, delay: timing.keepAlive) { _ in
            transport.value.checkAlive()
        }
        session.started()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        shutDown()
        self.context = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        shutDown()
        context.fireChannelInactive()
    }

    private func shutDown() {
        state = .closed
        keepAliveTask?.cancel()
        keepAliveTask = nil
        closeTimer?.cancel()
        closeTimer = nil
        session?.ended()
        session = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        heardSinceLastCheck = true
        pingOutstanding = false
        guard frame.reservedBits.isEmpty else {
            // permessage-deflate, when agreed, clears RSV1 of what it inflates: any bit left is
            // one no extension gave a meaning to.
            close(code: .protocolError, reason: "reserved bits set")
            return
        }
        switch frame.opcode {
        case .text:
            guard case .open = state else { return }
            let text = frame.unmaskedData
            guard String(validating: text.readableBytesView, as: UTF8.self) != nil else {
                close(code: .dataInconsistentWithMessage, reason: "text frames are UTF-8")
                return
            }
            session?.receivedText(text)
        case .binary:
            guard case .open = state else { return }
            session?.receivedBinary()
        case .ping:
            guard frame.fin, frame.length <= 125 else {
                close(code: .protocolError, reason: "invalid ping")
                return
            }
            if case .open = state { write(WebSocketFrame(fin: true, opcode: .pong, data: frame.unmaskedData)) }
        case .pong:
            break
        case .connectionClose:
            receivedClose(frame)
        default:
            close(code: .protocolError, reason: "unknown opcode")
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        flushNow()
        context.fireChannelReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            resumeReading(.peerNotReading)
            session?.socketBecameWritable()
        } else {
            pauseReading(.peerNotReading)
        }
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        switch error {
        case NIOWebSocketFrameAggregator.Error.accumulatedFrameSizeIsTooLarge:
            close(code: .messageTooLarge, reason: "a message is at most \(APILimits.frameBytes) bytes")
        case is NIOWebSocketFrameAggregator.Error:
            close(code: .protocolError, reason: "invalid fragmentation")
        case PerMessageDeflateError.messageTooLarge:
            close(code: .messageTooLarge, reason: "a message is at most \(APILimits.frameBytes) bytes, inflated")
        case PerMessageDeflateError.invalidCompressedData:
            close(code: .dataInconsistentWithMessage, reason: "invalid compressed data")
        case PerMessageDeflateError.misplacedReservedBit:
            close(code: .protocolError, reason: "reserved bits set where no extension uses them")
        case PerMessageDeflateError.interleavedMessage:
            close(code: .protocolError, reason: "a message started before the fragmented one ended")
        case is NIOWebSocketError:
            // NIO's protocol error handler has already sent its close frame and closes the channel.
            state = .closed
        default:
            logger.debug("WebSocket connection error", metadata: ["error": "\(error)"])
            context.close(promise: nil)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent {
            // Graceful shutdown: a normal close; the client reconnects to whichever server is up.
            close(code: .normalClosure, reason: "server shutting down")
        } else if case .inputClosed? = event as? ChannelEvent {
            // The peer sent FIN (Hummingbird allows half-closure): it will send no close frame
            // and no more frames, so nothing is gained by keeping the connection.
            context.close(promise: nil)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func read(context: ChannelHandlerContext) {
        if pauses.isEmpty {
            context.read()
        } else {
            readRequested = true
        }
    }

    // MARK: Keep-alive and close

    private func checkAlive() {
        guard case .open = state else { return }
        if heardSinceLastCheck {
            heardSinceLastCheck = false
            return
        }
        if pingOutstanding {
            logger.debug("WebSocket peer stopped answering pings")
            context?.close(promise: nil)
            return
        }
        pingOutstanding = true
        write(WebSocketFrame(fin: true, opcode: .ping, data: ByteBuffer()))
    }

    private func receivedClose(_ frame: WebSocketFrame) {
        switch state {
        case .open:
            // Echo the peer's code, as RFC 6455 asks; a close without one is answered with 1000.
            var data = frame.unmaskedData
            let code = data.readableBytes >= 2 ? data.readWebSocketErrorCode() ?? .normalClosure : .normalClosure
            sendClose(code: code, reason: "")
            context?.close(promise: nil)
        case .closeSent:
            context?.close(promise: nil)
        case .closed:
            break
        }
    }

    private func sendClose(code: WebSocketErrorCode, reason: String) {
        guard let context else { return }
        var data = context.channel.allocator.buffer(capacity: 2 + reason.utf8.count)
        data.write(webSocketErrorCode: code)
        // A close reason is at most 123 bytes.
        data.writeString(String(decoding: reason.utf8.prefix(123), as: UTF8.self))
        write(WebSocketFrame(fin: true, opcode: .connectionClose, data: data))
        flushNow()
        state = .closeSent
        session?.ended()
        // Whatever paused reading no longer matters: only the peer's close frame is awaited.
        pauses = []
        if readRequested {
            readRequested = false
            context.read()
        }
    }

    // MARK: RealtimeSocket

    var isWritable: Bool { context?.channel.isWritable ?? false }

    func sendText(_ text: String) {
        guard case .open = state, let context else { return }
        var buffer = context.channel.allocator.buffer(capacity: text.utf8.count)
        buffer.writeString(text)
        write(WebSocketFrame(fin: true, opcode: .text, data: buffer))
    }

    func close(code: WebSocketErrorCode, reason: String) {
        guard case .open = state, let context else { return }
        sendClose(code: code, reason: reason)
        let transport = NIOLoopBound(self, eventLoop: context.eventLoop)
        closeTimer = context.eventLoop.scheduleTask(in: timing.closeHandshake) {
            transport.value.context?.close(promise: nil)
        }
    }

    func pauseReading(_ reason: ReadPause) {
        pauses.insert(reason)
    }

    func resumeReading(_ reason: ReadPause) {
        pauses.remove(reason)
        if pauses.isEmpty, readRequested, let context {
            readRequested = false
            context.read()
        }
    }

    // MARK: Writing

    private func write(_ frame: WebSocketFrame) {
        guard let context else { return }
        context.write(wrapOutboundOut(frame), promise: nil)
        guard !flushScheduled else { return }
        flushScheduled = true
        let transport = NIOLoopBound(self, eventLoop: context.eventLoop)
        context.eventLoop.execute { transport.value.flushNow() }
    }

    private func flushNow() {
        guard flushScheduled else { return }
        flushScheduled = false
        context?.flush()
    }
}
