import Foundation
import NIOConcurrencyHelpers

/// Counts failures per key in a sliding minute and says when a key has had too many
/// (wrong room passwords per room and client address).
final class AttemptLimiter: Sendable {
    private struct State {
        var failures: [String: [TimeInterval]] = [:]
    }

    private let limit: Int
    private let window: TimeInterval
    private let state = NIOLockedValueBox(State())
    /// Keys tracked at most: an attacker rotating keys cannot grow this without bound.
    private static let maximumKeys = 100_000

    init(limit: Int, window: TimeInterval = 60) {
        self.limit = limit
        self.window = window
    }

    /// Seconds until `key` may try again, or nil if it may try now.
    func retryAfter(_ key: String, now: Date) -> Int? {
        state.withLockedValue { state in
            let recent = (state.failures[key] ?? []).filter { $0 > now.timeIntervalSince1970 - window }
            state.failures[key] = recent.isEmpty ? nil : recent
            guard recent.count >= limit, let oldest = recent.first else { return nil }
            return max(1, Int((oldest + window - now.timeIntervalSince1970).rounded(.up)))
        }
    }

    func recordFailure(_ key: String, now: Date) {
        state.withLockedValue { state in
            if state.failures.count >= Self.maximumKeys {
                let cutoff = now.timeIntervalSince1970 - window
                state.failures = state.failures.filter { $0.value.last ?? 0 > cutoff }
            }
            state.failures[key, default: []].append(now.timeIntervalSince1970)
        }
    }
}
