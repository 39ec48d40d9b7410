import Foundation
import HummingbirdWSClient
import Logging
import NIOConcurrencyHelpers
import SecureChatAPI

/// Counters shared by the client tasks of one scenario.
final class Counters: Sendable {
    private struct State {
        var delivered = 0
        var accepted = 0
        var latencies: [UInt64] = []
        var recordLatency = false
    }

    private let state = NIOLockedValueBox(State())

    func delivered(_ count: Int, latencies: [UInt64] = []) {
        state.withLockedValue { state in
            state.delivered += count
            if state.recordLatency { state.latencies.append(contentsOf: latencies) }
        }
    }

    func accepted(_ count: Int) { state.withLockedValue { $0.accepted += count } }

    func startMeasuring() {
        state.withLockedValue { state in
            state.delivered = 0
            state.accepted = 0
            state.latencies = []
            state.recordLatency = true
        }
    }

    var snapshot: (delivered: Int, accepted: Int, latencies: [UInt64]) {
        state.withLockedValue { ($0.delivered, $0.accepted, $0.latencies) }
    }
}

/// Monotonic nanoseconds, the clock latencies are measured on (both ends live in this process).
func monotonicNanoseconds() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

/// Reads an integer field from a server frame without a full JSON decode: the load generator
/// shares the machine with the server, and every microsecond it spends is one the server lacks.
func integerField(_ name: String, in text: String) -> Int64? {
    guard let range = text.range(of: "\"\(name)\":") else { return nil }
    var value: Int64 = 0
    var any = false
    for character in text.utf8[range.upperBound...] {
        guard character >= 0x30 && character <= 0x39 else { break }
        value = value * 10 + Int64(character - 0x30)
        any = true
    }
    return any ? value : nil
}

/// The send timestamp a message carries in its first 16 base64 characters (12 bytes).
func sentTimestamp(in text: String) -> UInt64? {
    guard let range = text.range(of: "\"ciphertext\":\"") else { return nil }
    let base64 = text[range.upperBound...].prefix(16)
    guard let data = Data(base64Encoded: String(base64)), data.count == 12 else { return nil }
    return data.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
}

/// A 96-byte ciphertext stand-in whose first 8 bytes are the send time.
func payload(at time: UInt64) -> String {
    var bytes = [UInt8](repeating: 0x5a, count: 96)
    withUnsafeBytes(of: time) { for index in 0..<8 { bytes[index] = $0[index] } }
    return Data(bytes).base64EncodedString()
}

struct Endpoint: Sendable {
    let port: Int
    var url: String { "ws://127.0.0.1:\(port)/v1/ws" }
}

/// Connects one device, says hello, waits for `caughtUp`, then runs `body` with the socket.
func withDevice(
    _ endpoint: Endpoint, token: String, deviceId: UInt32,
    _ body: @escaping @Sendable (inout WebSocketInboundMessageStream.AsyncIterator, WebSocketOutboundWriter) async throws -> Void
) async throws {
    let hello = String(decoding: try APIJSON.makeEncoder().encode(ClientFrame.hello(.init(token: token, deviceId: deviceId))), as: UTF8.self)
    _ = try await WebSocketClient.connect(
        url: endpoint.url, configuration: .init(maxFrameSize: 1 << 20), logger: Logger(label: "load")
    ) { inbound, outbound, _ in
        try await outbound.write(.text(hello))
        var frames = inbound.messages(maxSize: 1 << 20).makeAsyncIterator()
        while let frame = try await frames.next() {
            guard case .text(let text) = frame else { continue }
            if text.contains("\"type\":\"caughtUp\"") { break }
            if text.contains("\"type\":\"error\"") { throw LoadError.protocolViolation(text) }
        }
        try await body(&frames, outbound)
        try? await outbound.close(.normalClosure, reason: nil)
    }
}

/// Sends pairwise messages to `recipient` until cancelled, keeping at most `window` unanswered;
/// `interval` (nanoseconds) paces them, 0 for as fast as the server answers.
func runSender(
    frames: inout WebSocketInboundMessageStream.AsyncIterator, outbound: WebSocketOutboundWriter, recipient: (String, UInt32),
    window: Int, interval: UInt64, counters: Counters, prefix: String
) async throws {
    var sent = 0
    var answered = 0
    var nextSend = monotonicNanoseconds()
    while !Task.isCancelled {
        if sent - answered < window, interval == 0 || monotonicNanoseconds() >= nextSend {
            let frame = """
                {"type":"send","id":"\(prefix)-\(sent)","recipients":[{"userId":"\(recipient.0)","deviceId":\(recipient.1),"ciphertext":"\(payload(at: monotonicNanoseconds()))"}]}
                """
            try await outbound.write(.text(frame))
            sent += 1
            nextSend += interval
            if interval > 0 || sent - answered < window { continue }
        }
        if interval > 0 && sent - answered == 0 {
            let now = monotonicNanoseconds()
            if nextSend > now { try await Task.sleep(nanoseconds: nextSend - now) }
            continue
        }
        guard let frame = try await frames.next() else { return }
        guard case .text(let text) = frame else { continue }
        if text.contains("\"type\":\"accepted\"") {
            answered += 1
            counters.accepted(1)
        } else if text.contains("\"type\":\"error\"") {
            throw LoadError.protocolViolation(text)
        }
    }
}

/// Sends room messages (sender-key style: one ciphertext for the whole room) until cancelled.
func runRoomSender(
    frames: inout WebSocketInboundMessageStream.AsyncIterator, outbound: WebSocketOutboundWriter, room: String, window: Int,
    counters: Counters, prefix: String
) async throws {
    var sent = 0
    var answered = 0
    while !Task.isCancelled {
        if sent - answered < window {
            try await outbound.write(
                .text(#"{"type":"send","id":"\#(prefix)-\#(sent)","room":"\#(room)","ciphertext":"\#(payload(at: monotonicNanoseconds()))"}"#))
            sent += 1
            continue
        }
        guard let frame = try await frames.next() else { return }
        guard case .text(let text) = frame else { continue }
        if text.contains("\"type\":\"accepted\"") {
            answered += 1
            counters.accepted(1)
        } else if text.contains("\"type\":\"error\"") {
            throw LoadError.protocolViolation(text)
        }
    }
}

/// Receives until cancelled, acknowledging every 20 deliveries and
/// recording latencies. Counts each sequence number once, as an application would.
func runReceiver(
    frames: inout WebSocketInboundMessageStream.AsyncIterator, outbound: WebSocketOutboundWriter, counters: Counters
) async throws {
    var lastSeq: Int64 = 0
    var pending = 0
    var latencies: [UInt64] = []
    while !Task.isCancelled {
        guard let frame = try await frames.next() else { return }
        guard case .text(let text) = frame, text.contains("\"type\":\"message\""), let seq = integerField("seq", in: text) else { continue }
        guard seq > lastSeq else { continue }
        lastSeq = seq
        pending += 1
        if let sentAt = sentTimestamp(in: text) { latencies.append(monotonicNanoseconds() &- sentAt) }
        if pending >= 20 {
            try await outbound.write(.text(#"{"type":"ack","seq":\#(lastSeq)}"#))
            counters.delivered(pending, latencies: latencies)
            pending = 0
            latencies.removeAll(keepingCapacity: true)
        }
    }
    counters.delivered(pending, latencies: latencies)
}
