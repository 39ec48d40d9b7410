import NIOCore
import Prometheus

/// Counts a WebSocket's bytes as they travel (after compression, before TLS), for
/// `securechat_websocket_bytes_total`. Added below the WebSocket codec once the upgrade is done.
///
/// Counts are kept per connection and added to the shared counters on each read completion and
/// flush, not on every buffer: one atomic update per event-loop turn.
final class WireByteCounter: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let received: Counter
    private let sent: Counter
    private var unreportedReceived = 0
    private var unreportedSent = 0

    init(metrics: ServerMetrics) {
        received = metrics.webSocketBytesReceived
        sent = metrics.webSocketBytesSent
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        unreportedReceived += unwrapInboundIn(data).readableBytes
        context.fireChannelRead(data)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        report()
        context.fireChannelReadComplete()
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        unreportedSent += unwrapOutboundIn(data).readableBytes
        context.write(data, promise: promise)
    }

    func flush(context: ChannelHandlerContext) {
        report()
        context.flush()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        report()
    }

    private func report() {
        if unreportedReceived > 0 { received.increment(by: Int64(unreportedReceived)) }
        if unreportedSent > 0 { sent.increment(by: Int64(unreportedSent)) }
        unreportedReceived = 0
        unreportedSent = 0
    }
}
