import Foundation
import NIOConcurrencyHelpers

/// One token bucket: holds up to `burst` tokens, refilled at `perSecond`. Confined to one owner
/// (a socket's event loop), or kept inside ``KeyedTokenBuckets``' lock.
struct TokenBucket: Sendable {
    private var tokens: Double
    private var updated: TimeInterval

    init(_ rule: RateLimits.Bucket, now: TimeInterval) {
        tokens = rule.burst
        updated = now
    }

    /// Takes `cost` tokens, or returns the seconds until that many will be there. A cost above the
    /// burst is charged as the whole burst, so it waits for a full bucket rather than forever.
    mutating func take(_ cost: Double, rule: RateLimits.Bucket, now: TimeInterval) -> TimeInterval? {
        guard rule.burst.isFinite else { return nil }
        tokens = min(rule.burst, tokens + max(0, now - updated) * rule.perSecond)
        updated = now
        let cost = min(cost, rule.burst)
        if tokens >= cost {
            tokens -= cost
            return nil
        }
        return rule.perSecond > 0 ? (cost - tokens) / rule.perSecond : .infinity
    }

    /// Takes `cost` tokens even if there are not enough, and returns the seconds until the bucket
    /// is out of debt, if it is in debt.
    mutating func charge(_ cost: Double, rule: RateLimits.Bucket, now: TimeInterval) -> TimeInterval? {
        guard rule.burst.isFinite else { return nil }
        tokens = min(rule.burst, tokens + max(0, now - updated) * rule.perSecond) - cost
        updated = now
        return tokens < 0 ? -tokens / rule.perSecond : nil
    }

    var lastUsed: TimeInterval { updated }

    func isFull(_ rule: RateLimits.Bucket, now: TimeInterval) -> Bool {
        tokens + max(0, now - updated) * rule.perSecond >= rule.burst
    }
}

/// A token bucket per key (a client address, an account), all under one rule.
final class KeyedTokenBuckets: Sendable {
    let rule: RateLimits.Bucket
    private let buckets = NIOLockedValueBox([String: TokenBucket]())
    /// Keys tracked at most. A full bucket is the same as no bucket, so full ones go first.
    private static let maximumKeys = 100_000

    init(_ rule: RateLimits.Bucket) {
        self.rule = rule
    }

    /// Whole seconds to wait (at least 1), or nil if `key` may go on now.
    func retryAfter(_ key: String, cost: Double = 1, now: Date) -> Int? {
        guard rule.burst.isFinite else { return nil }
        let now = now.timeIntervalSince1970
        let wait = buckets.withLockedValue { buckets -> TimeInterval? in
            if buckets.count >= Self.maximumKeys, buckets[key] == nil {
                buckets = buckets.filter { !$0.value.isFull(rule, now: now) }
                // Still full: forget the least recently used half, not everyone at once.
                if buckets.count >= Self.maximumKeys {
                    let cutoff = buckets.values.map(\.lastUsed).sorted()[buckets.count / 2]
                    buckets = buckets.filter { $0.value.lastUsed > cutoff }
                }
            }
            var bucket = buckets[key] ?? TokenBucket(rule, now: now)
            let wait = bucket.take(cost, rule: rule, now: now)
            buckets[key] = bucket
            return wait
        }
        return wait.map { max(1, Int(min($0, 86_400).rounded(.up))) }
    }
}

/// Open sockets per client address.
final class SocketCounter: Sendable {
    private let counts = NIOLockedValueBox([String: Int]())

    /// Counts a socket for `address` unless it already has `limit`.
    func open(_ address: String, limit: Int) -> Bool {
        counts.withLockedValue { counts in
            let count = counts[address] ?? 0
            guard count < limit else { return false }
            counts[address] = count + 1
            return true
        }
    }

    func close(_ address: String) {
        counts.withLockedValue { counts in
            let count = (counts[address] ?? 1) - 1
            counts[address] = count > 0 ? count : nil
        }
    }
}

/// A socket's budget of frames and bytes, confined to its event loop.
///
/// A socket over budget is slowed down, not refused: the frame in hand is handled and the socket
/// stops reading until the debt is paid, so the client's next frames wait in its own TCP buffers.
/// Nothing a well-behaved client pipelines (an outbox flushed after a reconnect) is lost or has
/// to be sent again, and a flood costs the server no more than the budget.
struct SocketRateLimit {
    private let frames: RateLimits.Bucket
    private let bytes: RateLimits.Bucket
    private var frameBucket: TokenBucket
    private var byteBucket: TokenBucket

    init(_ limits: RateLimits, now: TimeInterval) {
        frames = limits.framesPerSocket
        bytes = limits.bytesPerSocket
        frameBucket = TokenBucket(frames, now: now)
        byteBucket = TokenBucket(bytes, now: now)
    }

    /// Charges one frame of `frameBytes`; returns how long to stop reading, if the socket is now in debt.
    mutating func charge(frameBytes: Int, now: TimeInterval) -> TimeInterval? {
        let frameDebt = frameBucket.charge(1, rule: frames, now: now)
        let byteDebt = byteBucket.charge(Double(frameBytes), rule: bytes, now: now)
        switch (frameDebt, byteDebt) {
        case (nil, nil): return nil
        case (let a?, nil): return a
        case (nil, let b?): return b
        case (let a?, let b?): return max(a, b)
        }
    }

    /// Seconds since an arbitrary start, from the monotonic clock.
    static var now: TimeInterval { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }
}
