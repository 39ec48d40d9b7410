
/// Why a byte string could not be decoded.
///
/// Errors carry only lengths and tags, never the bytes themselves.
public enum DecodeError: Error, Equatable, Sendable {
    /// The input ended before a field of the given length could be read.
    case truncated(needed: Int, available: Int)
    /// The input had bytes left over after the last field.
    case trailingBytes(count: Int)
    /// The leading version byte names a version this implementation does not speak.
    case unsupportedVersion(UInt8)
    /// The type byte does not name the expected message type.
    case unexpectedType(expected: UInt8, found: UInt8)
    /// A length or count is outside its documented bound.
    case lengthOutOfBounds(field: String, length: Int)
    /// A field holds a value its encoding forbids (for example a flag other than 0 or 1).
    case invalidField(String)
}

/// Appends fixed-width big-endian fields to a growing buffer.
public struct ByteWriter: Sendable {
    public private(set) var bytes: [UInt8]

    public init(capacity: Int = 64) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    public mutating func write(_ byte: UInt8) {
        bytes.append(byte)
    }

    public mutating func write<Bytes: Sequence>(contentsOf other: Bytes) where Bytes.Element == UInt8 {
        bytes.append(contentsOf: other)
    }

    public mutating func write(bigEndian value: UInt16) {
        bytes.append(UInt8(truncatingIfNeeded: value >> 8))
        bytes.append(UInt8(truncatingIfNeeded: value))
    }

    public mutating func write(bigEndian value: UInt32) {
        for shift in stride(from: 24, through: 0, by: -8) {
            bytes.append(UInt8(truncatingIfNeeded: value >> UInt32(shift)))
        }
    }

    public mutating func write(bigEndian value: UInt64) {
        for shift in stride(from: 56, through: 0, by: -8) {
            bytes.append(UInt8(truncatingIfNeeded: value >> UInt64(shift)))
        }
    }
}

/// Reads fixed-width big-endian fields from a byte string, failing with ``DecodeError`` rather than trapping.
public struct ByteReader: Sendable {
    private let bytes: [UInt8]
    public private(set) var offset: Int

    public init<Bytes: Sequence>(_ input: Bytes) where Bytes.Element == UInt8 {
        bytes = Array(input)
        offset = 0
    }

    public var remaining: Int { bytes.count - offset }

    public mutating func readByte() throws(DecodeError) -> UInt8 {
        try require(1)
        defer { offset += 1 }
        return bytes[offset]
    }

    public mutating func readBytes(_ count: Int) throws(DecodeError) -> [UInt8] {
        try require(count)
        defer { offset += count }
        return Array(bytes[offset..<offset + count])
    }

    /// Everything not yet read.
    public mutating func readRest() -> [UInt8] {
        defer { offset = bytes.count }
        return Array(bytes[offset...])
    }

    public mutating func readUInt16() throws(DecodeError) -> UInt16 {
        let raw = try readBytes(2)
        return UInt16(raw[0]) << 8 | UInt16(raw[1])
    }

    public mutating func readUInt32() throws(DecodeError) -> UInt32 {
        try readBytes(4).reduce(0) { $0 << 8 | UInt32($1) }
    }

    public mutating func readUInt64() throws(DecodeError) -> UInt64 {
        try readBytes(8).reduce(0) { $0 << 8 | UInt64($1) }
    }

    /// A single byte that must be 0 or 1.
    public mutating func readFlag(_ field: String) throws(DecodeError) -> Bool {
        switch try readByte() {
        case 0: return false
        case 1: return true
        default: throw .invalidField(field)
        }
    }

    public func requireEnd() throws(DecodeError) {
        guard remaining == 0 else { throw .trailingBytes(count: remaining) }
    }

    private func require(_ count: Int) throws(DecodeError) {
        guard count >= 0, remaining >= count else {
            throw .truncated(needed: count, available: remaining)
        }
    }
}
