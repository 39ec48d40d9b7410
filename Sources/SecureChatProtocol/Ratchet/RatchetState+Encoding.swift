import Crypto
public import SecureChatKeys

extension RatchetState {
    /// Version of the local (not wire) encoding of a session state, for storage across restarts.
    static let stateEncodingVersion: UInt8 = 1

    /// Most associated-data bytes a state may hold (X3DH's AD is 64).
    static let maxAssociatedDataLength = 1024

    /// The whole state, secrets included: store it only encrypted.
    ///
    /// ```
    /// 0x01 ‖ AD length (u16) ‖ AD ‖ root key (32) ‖ sending ratchet private key (32)
    /// ‖ flags (1: bit 0 receiving ratchet key, bit 1 sending chain, bit 2 receiving chain)
    /// [‖ receiving ratchet key (32)] [‖ sending chain key (32)] [‖ receiving chain key (32)]
    /// ‖ Ns (u32) ‖ Nr (u32) ‖ PN (u32) ‖ skipped count (u32) ‖ { ratchet key (32) ‖ N (u32) ‖ key (32) }*
    /// ```
    /// Skipped keys are written oldest first, so eviction order survives a round trip. The encoding
    /// is written straight into ``SecretBytes``: no other copy of the keys is left behind.
    public var serialized: SecretBytes {
        let entries = skippedKeys.entries
        var flags: UInt8 = 0
        if receivingRatchetKey != nil { flags |= 1 }
        if sendingChain != nil { flags |= 2 }
        if receivingChain != nil { flags |= 4 }
        let optionalFields = 32 * (flags & 1 + (flags >> 1) & 1 + (flags >> 2) & 1)
        let count = 1 + 2 + associatedData.count + 32 + 32 + 1 + Int(optionalFields) + 12 + 4 + entries.count * 68
        return SecretWriter.encode(count: count) { writer in
            writer.write(Self.stateEncodingVersion)
            writer.write(bigEndian: UInt16(associatedData.count))
            writer.write(associatedData)
            writer.write(rootKey.key)
            writer.write(erasing: sendingRatchetKey.rawRepresentation)
            writer.write(flags)
            if let receivingRatchetKey { writer.write(receivingRatchetKey.rawRepresentation) }
            if let sendingChain { writer.write(sendingChain.key) }
            if let receivingChain { writer.write(receivingChain.key) }
            writer.write(bigEndian: sendingMessageNumber)
            writer.write(bigEndian: receivingMessageNumber)
            writer.write(bigEndian: previousSendingChainLength)
            writer.write(bigEndian: UInt32(entries.count))
            for (index, key) in entries {
                writer.write(index.ratchetKey)
                writer.write(bigEndian: index.messageNumber)
                writer.write(key.key)
            }
        }
    }

    /// Restores a state written by ``serialized``.
    public init(serialized: SecretBytes) throws(DecodeError) {
        self = try serialized.withUnsafeBytes { buffer throws(DecodeError) in try Self.decode(buffer) }
    }

    private static func decode(_ buffer: UnsafeRawBufferPointer) throws(DecodeError) -> RatchetState {
        var reader = SecretReader(buffer)
        let version = try reader.readByte()
        guard version == stateEncodingVersion else { throw .unsupportedVersion(version) }
        let adLength = Int(try reader.readUInt16())
        guard adLength <= maxAssociatedDataLength else {
            throw .lengthOutOfBounds(field: "associated data", length: adLength)
        }
        let associatedData = try reader.readBytes(adLength)
        let rootKey = RootKey(key: try reader.readSecret(32))
        guard let sendingRatchetKey = try reader.withSecretField(32, { try? Curve25519.KeyAgreement.PrivateKey(rawRepresentation: $0) })
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
        let sendingChain = flags & 2 != 0 ? ChainKey(key: try reader.readSecret(32)) : nil
        let receivingChain = flags & 4 != 0 ? ChainKey(key: try reader.readSecret(32)) : nil
        var state = RatchetState(
            associatedData: associatedData, rootKey: rootKey, sendingRatchetKey: sendingRatchetKey,
            receivingRatchetKey: receivingRatchetKey, sendingChain: sendingChain, receivingChain: receivingChain)
        state.sendingMessageNumber = try reader.readUInt32()
        state.receivingMessageNumber = try reader.readUInt32()
        state.previousSendingChainLength = try reader.readUInt32()
        let skippedCount = Int(try reader.readUInt32())
        guard skippedCount <= ProtocolLimits.maxStoredSkippedKeys else {
            throw .lengthOutOfBounds(field: "skipped keys", length: skippedCount)
        }
        for _ in 0..<skippedCount {
            let ratchetKey = try reader.readBytes(32)
            let messageNumber = try reader.readUInt32()
            let key = MessageKey(key: try reader.readSecret(32))
            state.skippedKeys.insert(key, at: .init(ratchetKey: ratchetKey, messageNumber: messageNumber))
        }
        try reader.requireEnd()
        return state
    }
}
