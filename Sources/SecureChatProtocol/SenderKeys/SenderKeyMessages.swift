public import SecureChatKeys

/// A sender's chain key and signing key for one room, sent to each member over pairwise sessions
/// (never in the clear: it holds a secret).
///
/// ```
/// version (1) ‖ 0x04 ‖ distribution id (16) ‖ chain id (u32) ‖ iteration (u32)
///   ‖ chain key (32) ‖ signing key (32, Ed25519 public)
/// ```
public struct SenderKeyDistributionMessage: Sendable, Equatable {
    public static let encodedLength = 2 + 16 + 4 + 4 + 32 + 32

    /// Names the sender's key slot in one room; stays the same across rotations.
    public let distributionId: [UInt8]
    /// Names one chain; a rotation starts a new chain with a new id.
    public let chainId: UInt32
    /// The iteration of ``chainKey``: the next message the sender will send.
    public let iteration: UInt32
    public let chainKey: SecretBytes
    public let signingKey: SigningPublicKey

    public init(distributionId: [UInt8], chainId: UInt32, iteration: UInt32, chainKey: SecretBytes, signingKey: SigningPublicKey) {
        precondition(distributionId.count == 16 && chainKey.count == 32, "sender key field lengths")
        self.distributionId = distributionId
        self.chainId = chainId
        self.iteration = iteration
        self.chainKey = chainKey
        self.signingKey = signingKey
    }

    /// The encoding. It holds the chain key: encrypt it to each member, never log it.
    public var serialized: SecretBytes {
        SecretWriter.encode(count: Self.encodedLength) { writer in
            writer.write(WireFormat.version)
            writer.write(WireFormat.MessageType.senderKeyDistribution.rawValue)
            writer.write(distributionId)
            writer.write(bigEndian: chainId)
            writer.write(bigEndian: iteration)
            writer.write(chainKey)
            writer.write(signingKey.rawRepresentation)
        }
    }

    /// Decodes a distribution message (as it comes out of a pairwise session's decryption).
    public init(serialized bytes: SecretBytes) throws(DecodeError) {
        self = try bytes.withUnsafeBytes { buffer throws(DecodeError) in try Self(decoding: buffer) }
    }

    public init(serialized bytes: [UInt8]) throws(DecodeError) {
        try self.init(serialized: SecretBytes(bytes))
    }

    private init(decoding buffer: UnsafeRawBufferPointer) throws(DecodeError) {
        var reader = SecretReader(buffer)
        let version = try reader.readByte()
        guard version == WireFormat.version else { throw .unsupportedVersion(version) }
        let type = try reader.readByte()
        let expected = WireFormat.MessageType.senderKeyDistribution.rawValue
        guard type == expected else { throw .unexpectedType(expected: expected, found: type) }
        distributionId = try reader.readBytes(16)
        chainId = try reader.readUInt32()
        iteration = try reader.readUInt32()
        guard iteration < UInt32.max else { throw .invalidField("iteration") }
        chainKey = try reader.readSecret(32)
        guard let key = try? SigningPublicKey(rawRepresentation: try reader.readBytes(32)) else {
            throw .invalidField("signing key")
        }
        signingKey = key
        try reader.requireEnd()
    }
}

/// A room message: encrypted under a sender-key message key and signed with the sender's signing key.
///
/// ```
/// 0   1      2                  18         22          26
/// | v | 0x03 | distribution id | chain id | iteration | ciphertext (16·k) ‖ tag (32) | signature (64) |
/// ```
/// The first 26 bytes are the associated data of the encryption. The Ed25519 signature covers
/// "SecureChat sender key message v1" followed by every byte before the signature.
public struct SenderKeyMessage: Sendable, Hashable {
    static let headerLength = 26
    static let signatureLength = 64

    public let distributionId: [UInt8]
    public let chainId: UInt32
    public let iteration: UInt32
    /// AES-256-CBC ciphertext followed by the 32-byte HMAC tag.
    public let ciphertext: [UInt8]
    public let signature: [UInt8]

    init(distributionId: [UInt8], chainId: UInt32, iteration: UInt32, ciphertext: [UInt8], signature: [UInt8]) {
        self.distributionId = distributionId
        self.chainId = chainId
        self.iteration = iteration
        self.ciphertext = ciphertext
        self.signature = signature
    }

    static func header(distributionId: [UInt8], chainId: UInt32, iteration: UInt32) -> [UInt8] {
        var writer = ByteWriter(capacity: headerLength)
        WireFormat.writeHeader(.senderKeyMessage, to: &writer)
        writer.write(contentsOf: distributionId)
        writer.write(bigEndian: chainId)
        writer.write(bigEndian: iteration)
        return writer.bytes
    }

    var header: [UInt8] { Self.header(distributionId: distributionId, chainId: chainId, iteration: iteration) }

    /// What the signature covers: the context string, the header and the ciphertext.
    static func signedBytes(header: [UInt8], ciphertext: [UInt8]) -> [UInt8] {
        WireFormat.senderKeyMessageSignatureContext + header + ciphertext
    }

    public var serialized: [UInt8] { header + ciphertext + signature }

    public init(serialized bytes: some Collection<UInt8>) throws(DecodeError) {
        var reader = ByteReader(bytes)
        try WireFormat.readHeader(.senderKeyMessage, from: &reader)
        distributionId = try reader.readBytes(16)
        chainId = try reader.readUInt32()
        iteration = try reader.readUInt32()
        let ciphertextLength = reader.remaining - Self.signatureLength
        guard ciphertextLength >= 48, ciphertextLength <= RatchetMessage.maxCiphertextLength,
              (ciphertextLength - 32) % 16 == 0
        else {
            throw .lengthOutOfBounds(field: "ciphertext", length: max(ciphertextLength, 0))
        }
        ciphertext = try reader.readBytes(ciphertextLength)
        signature = try reader.readBytes(Self.signatureLength)
    }
}
