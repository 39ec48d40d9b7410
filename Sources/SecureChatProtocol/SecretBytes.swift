import SecureChatKeys

/// Secret key material: fixed at creation, compared in constant time, zeroed when the last copy
/// goes away, and never printed.
///
/// Copies share one immutable buffer, so zeroing on `deinit` erases the only copy this type made.
/// (Bytes handed to swift-crypto or returned by ``withUnsafeBytes(_:)`` callers are their concern.)
public struct SecretBytes: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible {
    private final class Storage: @unchecked Sendable {
        // Written once in init, read-only afterwards: safe to share across threads.
        let buffer: UnsafeMutableRawBufferPointer

        init(count: Int) {
            buffer = .allocate(byteCount: max(count, 1), alignment: 8)
            buffer.initializeMemory(as: UInt8.self, repeating: 0)
        }

        deinit {
            // memset_s is not portable; a volatile-style loop through the pointer is not elided
            // because the memory escapes to deallocate.
            for index in buffer.indices { buffer[index] = 0 }
            buffer.deallocate()
        }
    }

    private let storage: Storage
    public let count: Int

    /// Copies `bytes` into fresh secret storage.
    public init(_ bytes: some Collection<UInt8>) {
        count = bytes.count
        storage = Storage(count: count)
        UnsafeMutableRawBufferPointer(rebasing: storage.buffer[0..<count]).copyBytes(from: bytes)
    }

    /// Fills fresh storage through `body`, so the secret never exists in an array first.
    public init(count: Int, initializingWith body: (UnsafeMutableRawBufferPointer) -> Void) {
        self.count = count
        storage = Storage(count: count)
        body(UnsafeMutableRawBufferPointer(rebasing: storage.buffer[0..<count]))
    }

    /// `count` bytes from the system's secure random generator.
    public static func random(count: Int) -> SecretBytes {
        var generator = SystemRandomNumberGenerator()
        return SecretBytes(count: count) { buffer in
            for index in buffer.indices { buffer[index] = UInt8.random(in: .min ... .max, using: &generator) }
        }
    }

    public func withUnsafeBytes<Result>(_ body: (UnsafeRawBufferPointer) throws -> Result) rethrows -> Result {
        try body(UnsafeRawBufferPointer(rebasing: storage.buffer[0..<count]))
    }

    /// A copy of the bytes, for encodings and vectors. Prefer ``withUnsafeBytes(_:)``.
    public var bytes: [UInt8] { withUnsafeBytes { Array($0) } }

    /// A sub-range of the secret, as a new secret.
    public func slice(_ range: Range<Int>) -> SecretBytes {
        precondition(range.lowerBound >= 0 && range.upperBound <= count, "slice out of range")
        return withUnsafeBytes { SecretBytes($0[range]) }
    }

    /// Constant-time comparison.
    public static func == (lhs: SecretBytes, rhs: SecretBytes) -> Bool {
        lhs.withUnsafeBytes { left in rhs.withUnsafeBytes { right in ConstantTime.equals(left, right) } }
    }

    public var description: String { "SecretBytes(\(count) bytes, redacted)" }
    public var debugDescription: String { description }
}
