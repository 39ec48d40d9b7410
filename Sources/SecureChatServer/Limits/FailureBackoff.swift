import Foundation
import NIOConcurrencyHelpers

/// Slows down guessing: after `freeFailures` failures for a key, each further attempt must wait
/// 1 s after the last failure, then 2 s, 4 s… up to `maximumWait`. A success clears a key; so does
/// an hour without failures (or four maximum waits, if longer), well beyond what waiting out the
/// cap costs, so the cap is what a patient guesser gets. Keys are (username, client address) for logins and (room,
/// client address) for room passwords: guessing is slow, and nobody can lock others out.
final class FailureBackoff: Sendable {
    private struct Entry {
        var failures: Int
        var lastFailure: TimeInterval
    }

    private let freeFailures: Int
    private let maximumWait: TimeInterval
    private let quietPeriod: TimeInterval
    private let entries = NIOLockedValueBox([String: Entry]())
    /// Keys tracked at most: an attacker rotating keys cannot grow this without bound.
    private static let maximumKeys = 100_000

    init(freeFailures: Int, maximumWait: TimeInterval) {
        self.freeFailures = freeFailures
        self.maximumWait = maximumWait
        self.quietPeriod = max(3600, 4 * maximumWait)
    }

    /// Seconds until `key` may try again, or nil if it may try now.
    func retryAfter(_ key: String, now: Date) -> Int? {
        let now = now.timeIntervalSince1970
        return entries.withLockedValue { entries in
            guard let entry = entries[key] else { return nil }
            if now - entry.lastFailure >= quietPeriod {
                entries[key] = nil
                return nil
            }
            let wait = wait(afterFailures: entry.failures)
            let remaining = entry.lastFailure + wait - now
            return remaining > 0 ? max(1, Int(remaining.rounded(.up))) : nil
        }
    }

    func recordFailure(_ key: String, now: Date) {
        let now = now.timeIntervalSince1970
        entries.withLockedValue { entries in
            if entries.count >= Self.maximumKeys, entries[key] == nil {
                entries = entries.filter { now - $0.value.lastFailure < quietPeriod }
                // Still full: forget the oldest half rather than refuse to track the newcomer.
                if entries.count >= Self.maximumKeys {
                    let cutoff = entries.values.map(\.lastFailure).sorted()[entries.count / 2]
                    entries = entries.filter { $0.value.lastFailure > cutoff }
                }
            }
            var entry = entries[key] ?? Entry(failures: 0, lastFailure: now)
            if now - entry.lastFailure >= quietPeriod { entry.failures = 0 }
            entry.failures += 1
            entry.lastFailure = now
            entries[key] = entry
        }
    }

    func recordSuccess(_ key: String) {
        _ = entries.withLockedValue { $0.removeValue(forKey: key) }
    }

    /// The wait after `failures` failures: none for the free ones, then doubling from one second.
    private func wait(afterFailures failures: Int) -> TimeInterval {
        guard failures >= freeFailures else { return 0 }
        let doublings = min(failures - freeFailures, 30)
        return min(maximumWait, pow(2, Double(doublings)))
    }
}
