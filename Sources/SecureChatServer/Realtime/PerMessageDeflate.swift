import CompressNIO
import Foundation
import NIOCore
import NIOPosix
import NIOWebSocket
import SecureChatAPI

/// What the server agreed to in a `permessage-deflate` negotiation (RFC 7692).
///
/// The server always answers with `server_no_context_takeover` and `client_no_context_takeover`:
/// every message is compressed on its own. That costs some ratio on a chatty connection, and buys
/// two things. An idle socket holds no zlib state (a compressor and its window are about 300 KB,
/// a decompressor 40 KB: with context takeover, 10,000 sockets would need gigabytes), so one
/// compressor and one decompressor per event loop serve every socket. And no message's
/// compression depends on another's, so nothing an attacker sends can be compressed together with
/// a secret of someone else's (the CRIME and BREACH attacks).
struct PerMessageDeflateAgreement: Equatable, Sendable {
    /// The window the server compresses with: 15 unless the client asked for less.
    var serverWindowBits: Int32 = 15

    /// The `Sec-WebSocket-Extensions` value of the server's answer.
    var responseHeader: String {
        var header = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
        if serverWindowBits < 15 { header += "; server_max_window_bits=\(serverWindowBits)" }
        return header
    }

    /// The first acceptable `permessage-deflate` offer among the client's `Sec-WebSocket-Extensions`
    /// values, or nil (the connection then runs without compression).
    static func negotiate(offers headerValues: [String]) -> PerMessageDeflateAgreement? {
        for value in headerValues {
            for offer in value.split(separator: ",") {
                let parts = offer.split(separator: ";", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
                guard parts.first?.lowercased() == "permessage-deflate" else { continue }
                if let agreement = accept(parameters: parts.dropFirst()) { return agreement }
            }
        }
        return nil
    }

    /// An offer is declined, as RFC 7692 asks, if a parameter is unknown, repeated or invalid.
    private static func accept(parameters: ArraySlice<String>) -> PerMessageDeflateAgreement? {
        var agreement = PerMessageDeflateAgreement()
        var seen = Set<String>()
        for parameter in parameters {
            // Kept empty: `permessage-deflate; ` and `; =` are malformed offers, declined.
            let pair = parameter.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                .map { $0.trimmingCharacters(in: .whitespaces) }
            guard let first = pair.first, !first.isEmpty else { return nil }
            let name = first.lowercased()
            let value = pair.count == 2 ? pair[1].trimmingCharacters(in: CharacterSet(charactersIn: "\"")) : nil
            guard seen.insert(name).inserted else { return nil }
            switch name {
            case "server_no_context_takeover", "client_no_context_takeover":
                guard value == nil else { return nil }
            case "client_max_window_bits":
                // The client may compress with any window: the server inflates with the largest.
                if let value { guard let bits = Int32(value), (8...15).contains(bits) else { return nil } }
            case "server_max_window_bits":
                // zlib cannot make a raw deflate stream with an 8-bit window (it uses 9), so an
                // offer asking for 8 is declined rather than answered with a larger window.
                guard let value, let bits = Int32(value), (9...15).contains(bits) else { return nil }
                agreement.serverWindowBits = bits
            default:
                return nil
            }
        }
        return agreement
    }
}

/// A compressed message the server refuses; the transport closes the connection with the
/// matching close code.
enum PerMessageDeflateError: Error {
    /// The message inflates to more than ``APILimits/frameBytes`` (a "zip bomb").
    case messageTooLarge
    /// Not a valid deflate stream.
    case invalidCompressedData
    /// RSV1 on a control frame or a continuation, where RFC 7692 forbids it; RSV2 or RSV3
    /// anywhere; any reserved bit when no extension was agreed (``ReservedBitsGuard``).
    case misplacedReservedBit
    /// A data frame that starts a message while a fragmented one is unfinished (RFC 6455 §5.4).
    case interleavedMessage
}

/// permessage-deflate for one WebSocket, between NIO's frame codec and the frame aggregator:
/// inbound messages with RSV1 are inflated (their fragments gathered first, since NIO's aggregator
/// drops RSV1), outbound text and binary messages of ``minimumCompressedSize`` bytes or more are
/// deflated when that makes them smaller.
final class PerMessageDeflateHandler: ChannelDuplexHandler {
    typealias InboundIn = WebSocketFrame
    typealias InboundOut = WebSocketFrame
    typealias OutboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    /// Below this, deflate's framing costs more than it saves.
    static let minimumCompressedSize = 128
    /// The bytes RFC 7692 removes from the end of each compressed message and the receiver appends.
    private static let syncFlushTail: [UInt8] = [0x00, 0x00, 0xff, 0xff]

    private let agreement: PerMessageDeflateAgreement
    private let limit: Int
    /// A compressed message arriving in fragments: its opcode and the compressed bytes so far.
    private var gathering: (opcode: WebSocketOpcode, bytes: ByteBuffer, fragments: Int)?
    /// An uncompressed fragmented message is under way: its continuations pass through, and no
    /// compressed message may start before it ends.
    private var passingFragments = false

    init(agreement: PerMessageDeflateAgreement, limit: Int = APILimits.frameBytes) {
        self.agreement = agreement
        self.limit = limit
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        let compressed = frame.rsv1
        do {
            // Checked here, on every frame: inflating a message, or NIO's aggregator joining
            // fragments, makes a frame without reserved bits, so the transport would not see them.
            guard !frame.rsv2, !frame.rsv3 else { throw PerMessageDeflateError.misplacedReservedBit }
            switch frame.opcode {
            case .text, .binary:
                guard gathering == nil, !passingFragments else { throw PerMessageDeflateError.interleavedMessage }
                if compressed {
                    var bytes = frame.unmaskedData
                    if frame.fin {
                        context.fireChannelRead(wrapInboundOut(try inflated(frame.opcode, &bytes, allocator: context.channel.allocator)))
                    } else {
                        gathering = (frame.opcode, bytes, 1)
                    }
                    return
                }
                passingFragments = !frame.fin
            case .continuation:
                guard !compressed else { throw PerMessageDeflateError.misplacedReservedBit }
                if gathering != nil {
                    var fragment = frame.unmaskedData
                    gathering!.fragments += 1
                    guard gathering!.bytes.readableBytes + fragment.readableBytes <= limit, gathering!.fragments <= 256 else {
                        throw PerMessageDeflateError.messageTooLarge
                    }
                    // In place: a copy of the tuple would make each fragment copy all the others.
                    gathering!.bytes.writeBuffer(&fragment)
                    if frame.fin, var message = gathering.take() {
                        context.fireChannelRead(wrapInboundOut(try inflated(message.opcode, &message.bytes, allocator: context.channel.allocator)))
                    }
                    return
                }
                if frame.fin { passingFragments = false }
            default:
                guard !compressed else { throw PerMessageDeflateError.misplacedReservedBit }
            }
        } catch {
            gathering = nil
            passingFragments = false
            context.fireErrorCaught(error)
            return
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let frame = unwrapOutboundIn(data)
        guard frame.fin, frame.opcode == .text || frame.opcode == .binary, frame.length >= Self.minimumCompressedSize,
            let compressed = try? deflated(frame.data, allocator: context.channel.allocator), compressed.readableBytes < frame.length
        else {
            context.write(data, promise: promise)
            return
        }
        context.write(wrapOutboundOut(WebSocketFrame(fin: true, rsv1: true, opcode: frame.opcode, data: compressed)), promise: promise)
    }

    // MARK: zlib

    private func inflated(_ opcode: WebSocketOpcode, _ input: inout ByteBuffer, allocator: ByteBufferAllocator) throws -> WebSocketFrame {
        input.writeBytes(Self.syncFlushTail)
        let inflater = try ZlibStreams.current.inflater()
        try inflater.reset()
        var output = allocator.buffer(capacity: min(limit + 1, max(4096, input.readableBytes * 4)))
        while true {
            do {
                try inflater.inflate(from: &input, to: &output)
                break
            } catch let error as CompressNIOError where error == .bufferOverflow {
                // Out of room: grow, up to one byte over the limit, which proves the message too large.
                guard output.capacity <= limit else { throw PerMessageDeflateError.messageTooLarge }
                output.reserveCapacity(min(limit + 1, output.capacity * 2))
            } catch let error as CompressNIOError where error == .inputBufferOverflow {
                // No more input to make progress with: the message is complete.
                break
            } catch {
                throw PerMessageDeflateError.invalidCompressedData
            }
        }
        guard output.readableBytes <= limit else { throw PerMessageDeflateError.messageTooLarge }
        return WebSocketFrame(fin: true, opcode: opcode, data: output)
    }

    private func deflated(_ payload: ByteBuffer, allocator: ByteBufferAllocator) throws -> ByteBuffer {
        let deflater = try ZlibStreams.current.deflater(windowBits: agreement.serverWindowBits)
        try deflater.reset()
        var input = payload
        var output = allocator.buffer(capacity: deflater.maxSize(from: input))
        try deflater.deflate(from: &input, to: &output, flush: .sync)
        // A sync flush ends with an empty stored block, 00 00 ff ff, which RFC 7692 leaves out.
        guard output.readableBytes >= 4, output.getBytes(at: output.writerIndex - 4, length: 4) == Self.syncFlushTail else {
            throw PerMessageDeflateError.invalidCompressedData
        }
        output.moveWriterIndex(to: output.writerIndex - 4)
        return output
    }
}

/// One inflater and one deflater per window size for each event-loop thread: messages are
/// compressed independently, so the streams are reset and shared by every socket of the loop.
private final class ZlibStreams {
    /// Each thread reads and writes only its own value.
    nonisolated(unsafe) private static let perThread = ThreadSpecificVariable<ZlibStreams>()

    static var current: ZlibStreams {
        if let streams = perThread.currentValue { return streams }
        let streams = ZlibStreams()
        perThread.currentValue = streams
        return streams
    }

    private var inflaterStream: ZlibDecompressor?
    private var deflaters: [Int32: ZlibCompressor] = [:]

    func inflater() throws -> ZlibDecompressor {
        if let inflaterStream { return inflaterStream }
        let made = try ZlibDecompressor(algorithm: .deflate, windowSize: 15)
        inflaterStream = made
        return made
    }

    func deflater(windowBits: Int32) throws -> ZlibCompressor {
        if let made = deflaters[windowBits] { return made }
        // Level 1: for short chat frames the faster levels lose a few bytes at most, and
        // compression runs on the event loop for every delivery.
        let made = try ZlibCompressor(
            algorithm: .deflate, configuration: ZlibConfiguration(windowSize: windowBits, compressionLevel: 1, memoryLevel: 8, strategy: .default))
        deflaters[windowBits] = made
        return made
    }
}

/// Without an agreed extension, no frame may set a reserved bit. Checked before NIO's aggregator,
/// which drops the bits of the fragments it joins (the transport checks whole frames only).
final class ReservedBitsGuard: ChannelInboundHandler {
    typealias InboundIn = WebSocketFrame
    typealias InboundOut = WebSocketFrame

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard unwrapInboundIn(data).reservedBits.isEmpty else {
            context.fireErrorCaught(PerMessageDeflateError.misplacedReservedBit)
            return
        }
        context.fireChannelRead(data)
    }
}
