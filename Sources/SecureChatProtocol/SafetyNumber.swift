import Crypto
public import SecureChatKeys

/// Why a scanned safety-number code could not be compared.
public enum SafetyNumberError: Error, Equatable, Sendable {
    /// The scanned bytes are not a scannable safety number.
    case malformed
    /// The scanned code was made with another fingerprint version.
    case versionMismatch(UInt8)
}

/// Signal's numeric fingerprint ("safety number"), version 0, over raw key bytes.
///
/// Per party: H₀ = SHA-512(0x0000 ‖ key ‖ stable identifier ‖ key), Hᵢ = SHA-512(Hᵢ₋₁ ‖ key), for 5200
/// hashes in all. The first 30 bytes of the last hash, as six 5-byte big-endian numbers each mod
/// 100000, give 30 digits. The two parties' digit strings, smaller first, make the 60-digit number
/// both sides display. For the same inputs it reproduces libsignal's published test values.
///
/// In SecureChat the key is the 32-byte Ed25519 identity key and the stable identifier the
/// account's user id in UTF-8 (documented in docs/PROTOCOL.md).
public struct SafetyNumber: Sendable, CustomStringConvertible {
    /// Version byte of ``scannable`` (the libsignal scannable format's version 1).
    public static let scannableVersion: UInt8 = 1

    /// 60 decimal digits.
    public let displayable: String
    /// Bytes for a QR code: `08 01 12 22 0a 20 ‖ local (32) ‖ 1a 22 0a 20 ‖ remote (32)` (libsignal's
    /// CombinedFingerprints protobuf, version 1, written with a fixed layout).
    public let scannable: [UInt8]
    private let localFingerprint: [UInt8]
    private let remoteFingerprint: [UInt8]

    public init(
        localKey: [UInt8], localIdentifier: [UInt8], remoteKey: [UInt8], remoteIdentifier: [UInt8],
        iterations: Int = ProtocolLimits.fingerprintIterations
    ) {
        localFingerprint = Self.fingerprint(key: localKey, stableIdentifier: localIdentifier, iterations: iterations)
        remoteFingerprint = Self.fingerprint(key: remoteKey, stableIdentifier: remoteIdentifier, iterations: iterations)
        let local = Self.digits(localFingerprint)
        let remote = Self.digits(remoteFingerprint)
        displayable = local < remote ? local + remote : remote + local
        scannable = Self.scannableEncoding(local: localFingerprint, remote: remoteFingerprint)
    }

    /// The safety number between two SecureChat identities, each with its user id.
    public init(local: IdentityKey, localUserId: String, remote: IdentityKey, remoteUserId: String) {
        self.init(
            localKey: local.rawRepresentation, localIdentifier: Array(localUserId.utf8),
            remoteKey: remote.rawRepresentation, remoteIdentifier: Array(remoteUserId.utf8))
    }

    /// The 60 digits in twelve groups of five, as people read them aloud.
    public var groups: [String] {
        stride(from: 0, to: displayable.count, by: 5).map { start in
            let from = displayable.index(displayable.startIndex, offsetBy: start)
            return String(displayable[from..<displayable.index(from, offsetBy: 5)])
        }
    }

    /// Whether a code scanned from the other party's screen shows the same two keys (its local is our
    /// remote and the reverse). Compared in constant time.
    public func matches(scanned: [UInt8]) throws(SafetyNumberError) -> Bool {
        guard scanned.count == 74 else { throw .malformed }
        let fixed: [(Int, [UInt8])] = [(0, [0x08]), (2, [0x12, 0x22, 0x0a, 0x20]), (38, [0x1a, 0x22, 0x0a, 0x20])]
        for (offset, bytes) in fixed where Array(scanned[offset..<offset + bytes.count]) != bytes {
            throw .malformed
        }
        guard scanned[1] == Self.scannableVersion else { throw .versionMismatch(scanned[1]) }
        let theirLocal = scanned[6..<38]
        let theirRemote = scanned[42..<74]
        let sameRemote = ConstantTime.equals(theirLocal, remoteFingerprint.prefix(32))
        let sameLocal = ConstantTime.equals(theirRemote, localFingerprint.prefix(32))
        return sameRemote && sameLocal
    }

    /// One party's 64-byte iterated hash.
    public static func fingerprint(
        key: [UInt8], stableIdentifier: [UInt8], iterations: Int = ProtocolLimits.fingerprintIterations
    ) -> [UInt8] {
        precondition(iterations >= 1, "at least one iteration")
        return key.withUnsafeBytes { keyBytes in
            var hasher = SHA512()
            hasher.update(data: [0x00, 0x00])
            hasher.update(bufferPointer: keyBytes)
            hasher.update(data: stableIdentifier)
            hasher.update(bufferPointer: keyBytes)
            let first = hasher.finalize()
            // Each later round hashes digest ‖ key: keep both in one buffer and hash it in one call.
            return withUnsafeTemporaryAllocation(byteCount: 64 + keyBytes.count, alignment: 8) { buffer in
                first.withUnsafeBytes { buffer.copyMemory(from: $0) }
                UnsafeMutableRawBufferPointer(rebasing: buffer[64...]).copyMemory(from: keyBytes)
                for _ in 1..<iterations {
                    SHA512.hash(data: UnsafeRawBufferPointer(buffer)).withUnsafeBytes {
                        UnsafeMutableRawBufferPointer(rebasing: buffer[0..<64]).copyMemory(from: $0)
                    }
                }
                return Array(buffer[0..<64])
            }
        }
    }

    /// 30 digits from the first 30 bytes of a fingerprint.
    static func digits(_ fingerprint: [UInt8]) -> String {
        (0..<6).map { chunk in
            let value = fingerprint[(chunk * 5)..<(chunk * 5 + 5)].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            let number = String(value % 100_000)
            return String(repeating: "0", count: 5 - number.count) + number
        }.joined()
    }

    static func scannableEncoding(local: [UInt8], remote: [UInt8]) -> [UInt8] {
        [0x08, scannableVersion, 0x12, 0x22, 0x0a, 0x20] + local.prefix(32) + [0x1a, 0x22, 0x0a, 0x20] + remote.prefix(32)
    }

    public var description: String { "SafetyNumber(\(groups.joined(separator: " ")))" }
}
