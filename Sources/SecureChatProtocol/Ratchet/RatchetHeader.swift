public import SecureChatKeys

/// The Double Ratchet header: the sender's current ratchet public key, the length of its previous
/// sending chain (PN) and the message's index in the current chain (N, from 0).
///
/// ```
/// 0                  32        36        40
/// | ratchet key (32) | PN u32BE | N u32BE |
/// ```
public struct RatchetHeader: Sendable, Hashable {
    public static let encodedLength = 40

    public let ratchetKey: X25519PublicKey
    public let previousChainLength: UInt32
    public let messageNumber: UInt32

    public init(ratchetKey: X25519PublicKey, previousChainLength: UInt32, messageNumber: UInt32) {
        self.ratchetKey = ratchetKey
        self.previousChainLength = previousChainLength
        self.messageNumber = messageNumber
    }

    public var encoded: [UInt8] {
        var writer = ByteWriter(capacity: Self.encodedLength)
        writer.write(contentsOf: ratchetKey.rawRepresentation)
        writer.write(bigEndian: previousChainLength)
        writer.write(bigEndian: messageNumber)
        return writer.bytes
    }

    /// - Throws: ``DecodeError`` for a wrong length, ``DecodeError/invalidField(_:)`` for a bad key.
    public init(encoded bytes: some Collection<UInt8>) throws(DecodeError) {
        var reader = ByteReader(bytes)
        let keyBytes = try reader.readBytes(32)
        guard let key = try? X25519PublicKey(rawRepresentation: keyBytes) else { throw .invalidField("ratchet key") }
        ratchetKey = key
        previousChainLength = try reader.readUInt32()
        messageNumber = try reader.readUInt32()
        try reader.requireEnd()
    }
}
