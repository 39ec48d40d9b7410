public import SecureChatKeys

extension Session {
    /// Version of the local (not wire) encoding of a session, for storage across restarts.
    static let sessionEncodingVersion: UInt8 = 1

    /// The whole session, secrets included: store it only encrypted.
    ///
    /// ```
    /// 0x01 ‖ local identity (32) ‖ remote identity (32)
    /// ‖ flags (1: bit 0 pending initiation, bit 1 accepted initiation)
    /// [‖ pending initiation] [‖ accepted initiation] ‖ ratchet state (the rest, PROTOCOL.md §12)
    /// initiation = initiator identity (32) ‖ ephemeral key (32) ‖ signed prekey id (u32)
    ///              ‖ has one-time prekey (1) [‖ one-time prekey id (u32)]
    /// ```
    public var serialized: SecretBytes {
        let ratchetBytes = ratchet.serialized
        var flags: UInt8 = 0
        if pendingInitiation != nil { flags |= 1 }
        if acceptedInitiation != nil { flags |= 2 }
        let initiations = [pendingInitiation, acceptedInitiation].compactMap { $0 }
        let initiationBytes = initiations.reduce(0) { $0 + 69 + ($1.oneTimePreKeyId == nil ? 0 : 4) }
        let count = 1 + 32 + 32 + 1 + initiationBytes + ratchetBytes.count
        return SecretWriter.encode(count: count) { writer in
            writer.write(Self.sessionEncodingVersion)
            writer.write(localIdentity.rawRepresentation)
            writer.write(remoteIdentity.rawRepresentation)
            writer.write(flags)
            for initiation in initiations {
                writer.write(initiation.initiatorIdentityKey.rawRepresentation)
                writer.write(initiation.ephemeralKey.rawRepresentation)
                writer.write(bigEndian: initiation.signedPreKeyId)
                if let id = initiation.oneTimePreKeyId {
                    writer.write(1)
                    writer.write(bigEndian: id)
                } else {
                    writer.write(0)
                }
            }
            writer.write(ratchetBytes)
        }
    }

    /// Restores a session written by ``serialized``.
    public init(serialized: SecretBytes) throws(DecodeError) {
        self = try serialized.withUnsafeBytes { buffer throws(DecodeError) in try Self.decode(buffer) }
    }

    private static func decode(_ buffer: UnsafeRawBufferPointer) throws(DecodeError) -> Session {
        var reader = SecretReader(buffer)
        let version = try reader.readByte()
        guard version == sessionEncodingVersion else { throw .unsupportedVersion(version) }
        let localIdentity = try readIdentity(&reader, field: "local identity")
        let remoteIdentity = try readIdentity(&reader, field: "remote identity")
        let flags = try reader.readByte()
        guard flags & ~0x03 == 0 else { throw .invalidField("session flags") }
        let pending = flags & 1 != 0 ? try readInitiation(&reader) : nil
        let accepted = flags & 2 != 0 ? try readInitiation(&reader) : nil
        let ratchet = try reader.withSecretField(reader.remaining) { bytes in
            Result { () throws(DecodeError) in try RatchetState(serialized: SecretBytes(bytes)) }
        }
        return Session(
            ratchet: try ratchet.get(), localIdentity: localIdentity, remoteIdentity: remoteIdentity,
            pendingInitiation: pending, acceptedInitiation: accepted)
    }

    private static func readIdentity(_ reader: inout SecretReader, field: String) throws(DecodeError) -> IdentityKey {
        guard let key = try? IdentityKey(rawRepresentation: try reader.readBytes(32)) else { throw .invalidField(field) }
        return key
    }

    private static func readInitiation(_ reader: inout SecretReader) throws(DecodeError) -> X3DHInitiation {
        let identity = try readIdentity(&reader, field: "initiator identity")
        guard let ephemeralKey = try? X25519PublicKey(rawRepresentation: try reader.readBytes(32)) else {
            throw .invalidField("ephemeral key")
        }
        let signedPreKeyId = try reader.readUInt32()
        let oneTimePreKeyId: UInt32?
        switch try reader.readByte() {
        case 0: oneTimePreKeyId = nil
        case 1: oneTimePreKeyId = try reader.readUInt32()
        default: throw .invalidField("has one-time prekey")
        }
        return X3DHInitiation(
            initiatorIdentityKey: identity, ephemeralKey: ephemeralKey, signedPreKeyId: signedPreKeyId,
            oneTimePreKeyId: oneTimePreKeyId)
    }
}
