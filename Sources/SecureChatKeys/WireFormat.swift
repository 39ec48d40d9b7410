/// Version and type bytes that open every SecureChat binary encoding, and the domain-separation
/// strings of every signature. Changing any of these is a wire-format change: bump ``version``.
///
/// Every encoding starts `version (1 byte) ‖ type (1 byte)`; decoders reject any other version
/// or an unexpected type before reading further. See docs/PROTOCOL.md, "Encodings".
public enum WireFormat {
    /// The only protocol version this implementation speaks.
    public static let version: UInt8 = 0x01

    /// The second byte of every encoding.
    public enum MessageType: UInt8, Sendable, CaseIterable {
        /// A Double Ratchet message inside an established session.
        case ratchetMessage = 0x01
        /// The first message(s) of a session: X3DH parameters followed by a ratchet message.
        case preKeyMessage = 0x02
        /// A room message encrypted with a sender key and signed by its sender.
        case senderKeyMessage = 0x03
        /// A sender's chain key and signing key, sent to each room member over pairwise sessions.
        case senderKeyDistribution = 0x04
        /// A device's identity key, signed prekey and optionally one one-time prekey.
        case preKeyBundle = 0x10
        /// A signed prekey with its signature, as uploaded by its device.
        case signedPreKey = 0x11
        /// A one-time prekey, as uploaded by its device.
        case oneTimePreKey = 0x12
        /// The header of an encrypted attachment stream.
        case attachment = 0x20
    }

    /// Signed before the signed-prekey fields, so that a signature made for any other purpose
    /// can never pass as a signed-prekey signature (and the reverse).
    public static let signedPreKeySignatureContext = Array("SecureChat signed prekey v1".utf8)

    /// Signed before every sender-key message.
    public static let senderKeyMessageSignatureContext = Array("SecureChat sender key message v1".utf8)

    /// Writes the two leading bytes of an encoding.
    public static func writeHeader(_ type: MessageType, to writer: inout ByteWriter) {
        writer.write(version)
        writer.write(type.rawValue)
    }

    /// Reads and checks the two leading bytes of an encoding.
    public static func readHeader(_ expected: MessageType, from reader: inout ByteReader) throws(DecodeError) {
        let foundVersion = try reader.readByte()
        guard foundVersion == version else { throw .unsupportedVersion(foundVersion) }
        let foundType = try reader.readByte()
        guard foundType == expected.rawValue else {
            throw .unexpectedType(expected: expected.rawValue, found: foundType)
        }
    }
}
