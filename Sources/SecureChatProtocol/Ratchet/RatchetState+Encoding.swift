import Crypto
public import SecureChatKeys

extension RatchetState {
    /// Version of the local (not wire) encoding of a session state, for storage across restarts.
    static let stateEncodingVersion: UInt8 = 1

    /// Most associated-data bytes a stored state may claim (X3DH's AD is 64).
    static let maxAssociatedDataLength = 1024

    /// The whole state, secrets included: store it only encrypted.
    ///
    /// ```
    /// 0x01 ‖ AD length (u16) ‖ AD ‖ root key (32) ‖ sending ratchet private key (32)
    /// ‖ flags (1: bit 0 receiving ratchet key, bit 1 sending chain, bit 2 receiving chain)
    /// [‖ receiving ratchet key (32)] [‖ sending chain key (32)] [‖ receiving chain key (32)]
    /// ‖ Ns (u32) ‖ Nr (u32) ‖ PN (u32) ‖ skipped count (u32) ‖ { ratchet key (32) ‖ N (u32) ‖ key (32) }*
    /// ```
    /// Skipped keys are written oldest first, so eviction order survives a round trip.
    public var serialized: SecretBytes {
        var writer = ByteWriter(capacity: 256 + skippedKeys.count * 68)
        writer.write(Self.stateEncodingVersion)
        writer.write(bigEndian: UInt16(associatedData.count))
        writer.write(contentsOf: associatedData)
        writer.write(contentsOf: rootKey.key.bytes)
        writer.write(contentsOf: sendingRatchetKey.rawRepresentation)
        var flags: UInt8 = 0
        if receivingRatchetKey != nil { flags |= 1 }
        if sendingChain != nil { flags |= 2 }
        if receivingChain != nil { flags |= 4 }
        writer.write(flags)
        if let receivingRatchetKey { writer.write(contentsOf: receivingRatchetKey.rawRepresentation) }
        if let sendingChain { writer.write(contentsOf: sendingChain.key.bytes) }
        if let receivingChain { writer.write(contentsOf: receivingChain.key.bytes) }
        writer.write(bigEndian: sendingMessageNumber)
        writer.write(bigEndian: receivingMessageNumber)
        writer.write(bigEndian: previousSendingChainLength)
        let entries = skippedKeys.entries
        writer.write(bigEndian: UInt32(entries.count))
        for (index, key) in entries {
            writer.write(contentsOf: index.ratchetKey)
            writer.write(bigEndian: index.messageNumber)
            writer.write(contentsOf: key.key.bytes)
        }
        var bytes = writer.bytes
        defer { for index in bytes.indices { bytes[index] = 0 } }
        return SecretBytes(bytes)
    }

    /// Restores a state written by ``serialized``.
    public init(serialized: SecretBytes) throws(DecodeError) {
        var reader = ByteReader(serialized.bytes)
        let version = try reader.readByte()
        guard version == Self.stateEncodingVersion else { throw .unsupportedVersion(version) }
        let adLength = Int(try reader.readUInt16())
        guard adLength <= Self.maxAssociatedDataLength else {
            throw .lengthOutOfBounds(field: "associated data", length: adLength)
        }
        let associatedData = try reader.readBytes(adLength)
        let rootKey = RootKey(key: SecretBytes(try reader.readBytes(32)))
        guard let sendingRatchetKey = try? Curve25519.KeyAgreement.PrivateKey(rawRepresentation: try reader.readBytes(32))
        else { throw .invalidField("sending ratchet key") }
        let flags = try reader.readByte()
        guard flags & ~0x07 == 0 else { throw .invalidField("flags") }
        var receivingRatchetKey: X25519PublicKey?
        if flags & 1 != 0 {
            guard let key = try? X25519PublicKey(rawRepresentation: try reader.readBytes(32)) else {
                throw .invalidField("receiving ratchet key")
            }
            receivingRatchetKey = key
        }
        let sendingChain = flags & 2 != 0 ? ChainKey(key: SecretBytes(try reader.readBytes(32))) : nil
        let receivingChain = flags & 4 != 0 ? ChainKey(key: SecretBytes(try reader.readBytes(32))) : nil
        self.init(
            associatedData: associatedData, rootKey: rootKey, sendingRatchetKey: sendingRatchetKey,
            receivingRatchetKey: receivingRatchetKey, sendingChain: sendingChain, receivingChain: receivingChain)
        sendingMessageNumber = try reader.readUInt32()
        receivingMessageNumber = try reader.readUInt32()
        previousSendingChainLength = try reader.readUInt32()
        let skippedCount = Int(try reader.readUInt32())
        guard skippedCount <= ProtocolLimits.maxStoredSkippedKeys else {
            throw .lengthOutOfBounds(field: "skipped keys", length: skippedCount)
        }
        for _ in 0..<skippedCount {
            let ratchetKey = try reader.readBytes(32)
            let messageNumber = try reader.readUInt32()
            let key = MessageKey(key: SecretBytes(try reader.readBytes(32)))
            skippedKeys.insert(key, at: .init(ratchetKey: ratchetKey, messageNumber: messageNumber))
        }
        try reader.requireEnd()
    }
}
