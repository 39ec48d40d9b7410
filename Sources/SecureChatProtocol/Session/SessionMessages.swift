public import SecureChatKeys

/// A Double Ratchet message inside an established session.
///
/// ```
/// version (1) ‖ 0x01 ‖ header (40: ratchet key ‖ PN ‖ N) ‖ ciphertext (16·k, k ≥ 1) ‖ tag (32)
/// ```
public struct RatchetMessage: Sendable, Hashable {
    public let header: RatchetHeader
    /// AES-256-CBC ciphertext followed by the 32-byte HMAC-SHA256 tag.
    public let ciphertext: [UInt8]

    /// Largest ciphertext accepted: the plaintext bound, one padding block and the tag.
    static let maxCiphertextLength = ProtocolLimits.maxMessagePlaintext + 16 + 32

    public init(header: RatchetHeader, ciphertext: [UInt8]) {
        self.header = header
        self.ciphertext = ciphertext
    }

    public var serialized: [UInt8] {
        var writer = ByteWriter(capacity: 2 + RatchetHeader.encodedLength + ciphertext.count)
        WireFormat.writeHeader(.ratchetMessage, to: &writer)
        writer.write(contentsOf: header.encoded)
        writer.write(contentsOf: ciphertext)
        return writer.bytes
    }

    public init(serialized bytes: some Collection<UInt8>) throws(DecodeError) {
        var reader = ByteReader(bytes)
        try WireFormat.readHeader(.ratchetMessage, from: &reader)
        header = try RatchetHeader(encoded: try reader.readBytes(RatchetHeader.encodedLength))
        ciphertext = reader.readRest()
        guard ciphertext.count >= 48, ciphertext.count <= Self.maxCiphertextLength, (ciphertext.count - 32) % 16 == 0 else {
            throw .lengthOutOfBounds(field: "ciphertext", length: ciphertext.count)
        }
    }
}

/// The initiator's messages until the responder first answers: X3DH parameters and a ratchet message.
///
/// ```
/// version (1) ‖ 0x02 ‖ initiator identity key (32, Ed25519) ‖ ephemeral key (32, X25519)
///   ‖ signed prekey id (u32) ‖ has one-time prekey (1: 0 or 1) [‖ one-time prekey id (u32)]
///   ‖ ratchet message (its full encoding, version and type included)
/// ```
public struct PreKeyMessage: Sendable, Hashable {
    public let initiation: X3DHInitiation
    public let message: RatchetMessage

    public init(initiation: X3DHInitiation, message: RatchetMessage) {
        self.initiation = initiation
        self.message = message
    }

    public var serialized: [UInt8] {
        var writer = ByteWriter(capacity: 80 + message.ciphertext.count)
        WireFormat.writeHeader(.preKeyMessage, to: &writer)
        writer.write(contentsOf: initiation.initiatorIdentityKey.rawRepresentation)
        writer.write(contentsOf: initiation.ephemeralKey.rawRepresentation)
        writer.write(bigEndian: initiation.signedPreKeyId)
        if let oneTimePreKeyId = initiation.oneTimePreKeyId {
            writer.write(1)
            writer.write(bigEndian: oneTimePreKeyId)
        } else {
            writer.write(0)
        }
        writer.write(contentsOf: message.serialized)
        return writer.bytes
    }

    public init(serialized bytes: some Collection<UInt8>) throws(DecodeError) {
        var reader = ByteReader(bytes)
        try WireFormat.readHeader(.preKeyMessage, from: &reader)
        guard let identityKey = try? IdentityKey(rawRepresentation: try reader.readBytes(32)) else {
            throw .invalidField("initiator identity key")
        }
        guard let ephemeralKey = try? X25519PublicKey(rawRepresentation: try reader.readBytes(32)) else {
            throw .invalidField("ephemeral key")
        }
        let signedPreKeyId = try reader.readUInt32()
        let oneTimePreKeyId: UInt32? = try reader.readFlag("has one-time prekey") ? try reader.readUInt32() : nil
        initiation = X3DHInitiation(
            initiatorIdentityKey: identityKey, ephemeralKey: ephemeralKey, signedPreKeyId: signedPreKeyId,
            oneTimePreKeyId: oneTimePreKeyId)
        message = try RatchetMessage(serialized: reader.readRest())
    }
}

/// Either kind of pairwise message, as it arrives off the wire.
public enum SessionMessage: Sendable, Hashable {
    case preKey(PreKeyMessage)
    case ratchet(RatchetMessage)

    public var serialized: [UInt8] {
        switch self {
        case .preKey(let message): message.serialized
        case .ratchet(let message): message.serialized
        }
    }

    /// Decodes by the type byte.
    public init(serialized bytes: [UInt8]) throws(DecodeError) {
        guard bytes.count >= 2 else { throw .truncated(needed: 2, available: bytes.count) }
        guard bytes[0] == WireFormat.version else { throw .unsupportedVersion(bytes[0]) }
        switch bytes[1] {
        case WireFormat.MessageType.preKeyMessage.rawValue: self = .preKey(try PreKeyMessage(serialized: bytes))
        case WireFormat.MessageType.ratchetMessage.rawValue: self = .ratchet(try RatchetMessage(serialized: bytes))
        default: throw .unexpectedType(expected: WireFormat.MessageType.ratchetMessage.rawValue, found: bytes[1])
        }
    }
}
