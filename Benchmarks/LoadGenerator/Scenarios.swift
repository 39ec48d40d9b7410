import Foundation
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
