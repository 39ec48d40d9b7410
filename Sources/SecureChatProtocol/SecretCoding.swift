import Foundation
import SecureChatKeys

/// Writes an encoding that holds secrets straight into ``SecretBytes``, so no intermediate array
/// keeps a copy of the keys after the value is gone.
struct SecretWriter {
    private let buffer: UnsafeMutableRawBufferPointer
    private(set) var offset = 0

    /// Encodes exactly `count` bytes through `body`; a mismatch is a programming error.
    static func encode(count: Int, _ body: (inout SecretWriter) -> Void) -> SecretBytes {
        SecretBytes(count: count) { buffer in
            var writer = SecretWriter(buffer: buffer)
            body(&writer)
            precondition(writer.offset == count, "secret encoding length \(writer.offset) != \(count)")
        }
    }

    private init(buffer: UnsafeMutableRawBufferPointer) {
        self.buffer = buffer
    }

    mutating func write(_ byte: UInt8) {
        buffer[offset] = byte
        offset += 1
    }

    mutating func write(_ bytes: UnsafeRawBufferPointer) {
        UnsafeMutableRawBufferPointer(rebasing: buffer[offset..<offset + bytes.count]).copyMemory(from: bytes)
        offset += bytes.count
    }

    mutating func write(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { write($0) }
    }

    mutating func write(_ secret: SecretBytes) {
        secret.withUnsafeBytes { write($0) }
    }

    /// A swift-crypto raw representation: copied, then the temporary copy is zeroed.
    mutating func write(erasing data: Data) {
        var data = data
        data.withUnsafeBytes { write($0) }
        data.resetBytes(in: 0..<data.count)
    }

    mutating func write(bigEndian value: UInt16) {
        write(UInt8(truncatingIfNeeded: value >> 8))
        write(UInt8(truncatingIfNeeded: value))
    }

    mutating func write(bigEndian value: UInt32) {
        for shift in stride(from: 24, through: 0, by: -8) { write(UInt8(truncatingIfNeeded: value >> UInt32(shift))) }
    }

    mutating func write(bigEndian value: UInt64) {
        for shift in stride(from: 56, through: 0, by: -8) { write(UInt8(truncatingIfNeeded: value >> UInt64(shift))) }
    }
}

/// Reads an encoding that holds secrets in place, handing key fields out as ``SecretBytes``.
struct SecretReader {
    private let buffer: UnsafeRawBufferPointer
    private(set) var offset = 0

    init(_ buffer: UnsafeRawBufferPointer) {
        self.buffer = buffer
    }

    var remaining: Int { buffer.count - offset }

    private func require(_ count: Int) throws(DecodeError) {
        guard count >= 0, remaining >= count else { throw .truncated(needed: count, available: remaining) }
    }

    mutating func readByte() throws(DecodeError) -> UInt8 {
        try require(1)
        defer { offset += 1 }
        return buffer[offset]
    }

    /// Public bytes (identifiers, public keys).
    mutating func readBytes(_ count: Int) throws(DecodeError) -> [UInt8] {
        try require(count)
        defer { offset += count }
        return Array(buffer[offset..<offset + count])
    }

    mutating func readSecret(_ count: Int) throws(DecodeError) -> SecretBytes {
        try require(count)
        defer { offset += count }
        return SecretBytes(UnsafeRawBufferPointer(rebasing: buffer[offset..<offset + count]))
    }

    /// A secret field for swift-crypto, which takes contiguous bytes.
    mutating func withSecretField<Result>(
        _ count: Int, _ body: (UnsafeRawBufferPointer) -> Result
    ) throws(DecodeError) -> Result {
        try require(count)
        defer { offset += count }
        return body(UnsafeRawBufferPointer(rebasing: buffer[offset..<offset + count]))
    }

    mutating func readUInt16() throws(DecodeError) -> UInt16 {
        UInt16(try readByte()) << 8 | UInt16(try readByte())
    }

    mutating func readUInt32() throws(DecodeError) -> UInt32 {
        var value: UInt32 = 0
        for _ in 0..<4 { value = value << 8 | UInt32(try readByte()) }
        return value
    }

    mutating func readUInt64() throws(DecodeError) -> UInt64 {
        var value: UInt64 = 0
        for _ in 0..<8 { value = value << 8 | UInt64(try readByte()) }
        return value
    }

    func requireEnd() throws(DecodeError) {
        guard remaining == 0 else { throw .trailingBytes(count: remaining) }
    }
}
