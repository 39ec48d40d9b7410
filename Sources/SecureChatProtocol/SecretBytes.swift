import SecureChatKeys

/// Secret key material: fixed at creation, compared in constant time, zeroed when the last copy
/// goes away, and never printed.
///
/// Copies share one immutable buffer (a single allocation holding the bytes inline), so zeroing
/// on `deinit` erases the only copy this type made. Bytes handed to swift-crypto, or copied out
/// through ``bytes``, are the caller's concern.
///
/// `@unchecked Sendable`: the buffer is written only while the value is created, before it can be
/// shared, and is read-only afterwards.
public struct SecretBytes: @unchecked Sendable, Equatable {
    private final class Storage: ManagedBuffer<Int, UInt8> {
        deinit {
            withUnsafeMutablePointers { count, bytes in
                // Writes through the pointer right before deallocation are not removed: the memory escapes.
                bytes.update(repeating: 0, count: count.pointee)
            }
        }

        static func make(count: Int) -> Storage {
            let buffer = Storage.create(minimumCapacity: max(count, 1)) { _ in count }
            // swiftlint:disable:next force_cast
            let storage = unsafeDowncast(buffer, to: Storage.self)
            storage.withUnsafeMutablePointerToElements { $0.initialize(repeating: 0, count: max(count, 1)) }
            return storage
        }
    }

    private let storage: Storage

    /// Copies `bytes` into fresh secret storage.
    public init(_ bytes: some Collection<UInt8>) {
        let count = bytes.count
        storage = Storage.make(count: count)
        storage.withUnsafeMutablePointerToElements { pointer in
            UnsafeMutableRawBufferPointer(start: pointer, count: count).copyBytes(from: bytes)
        }
    }

    /// Fills fresh storage through `body`, so the secret never exists in an array first.
    public init(count: Int, initializingWith body: (UnsafeMutableRawBufferPointer) throws -> Void) rethrows {
        storage = Storage.make(count: count)
        try storage.withUnsafeMutablePointerToElements { pointer in
            try body(UnsafeMutableRawBufferPointer(start: pointer, count: count))
        }
    }

    /// `count` bytes from the system's secure random generator.
    public static func random(count: Int) -> SecretBytes {
        var generator = SystemRandomNumberGenerator()
        return SecretBytes(count: count) { buffer in
            for index in buffer.indices { buffer[index] = UInt8.random(in: .min ... .max, using: &generator) }
        }
    }

    public var count: Int { storage.header }

    /// Calls `body` with the bytes; the pointer must not escape the call.
    public func withUnsafeBytes<Result, Failure: Error>(
        _ body: (UnsafeRawBufferPointer) throws(Failure) -> Result
    ) throws(Failure) -> Result {
        let outcome: Swift.Result<Result, Failure> = storage.withUnsafeMutablePointerToElements { pointer in
            Swift.Result { () throws(Failure) -> Result in
                try body(UnsafeRawBufferPointer(start: pointer, count: storage.header))
            }
        }
        return try outcome.get()
    }

    /// A copy of the bytes, for encodings and vectors. Prefer ``withUnsafeBytes(_:)``.
    public var bytes: [UInt8] { withUnsafeBytes { Array($0) } }

    /// A sub-range of the secret, as a new secret.
    public func slice(_ range: Range<Int>) -> SecretBytes {
        precondition(range.lowerBound >= 0 && range.upperBound <= count, "slice out of range")
        return withUnsafeBytes { SecretBytes(UnsafeRawBufferPointer(rebasing: $0[range])) }
    }

    /// Constant-time comparison.
    public static func == (lhs: SecretBytes, rhs: SecretBytes) -> Bool {
        lhs.withUnsafeBytes { left in rhs.withUnsafeBytes { right in ConstantTime.equals(left, right) } }
    }
}
