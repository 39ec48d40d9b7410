/// Every HKDF `info` string and KDF constant of the protocol, in one place.
///
/// Each label names the protocol, the purpose and a version. A label is part of the wire format:
/// changing one makes old and new peers derive different keys, so a change means a new
/// ``SecureChatKeys/WireFormat/version``. docs/PROTOCOL.md lists each with its hex form.
public enum KDFLabels {
    /// X3DH: SK = HKDF(salt = 0³², ikm = 0xFF³² ‖ DH1 ‖ DH2 ‖ DH3 [‖ DH4], info = this, 32 bytes).
    public static let x3dh = Array("SecureChat X3DH v1".utf8)

    /// KDF_RK: HKDF(salt = root key, ikm = DH output, info = this, 64 bytes) → root key ‖ chain key.
    public static let rootKey = Array("SecureChat Double Ratchet root v1".utf8)

    /// ENCRYPT of the Double Ratchet: HKDF(salt = 0³², ikm = message key, info = this, 80 bytes)
    /// → AES-256 key ‖ HMAC-SHA256 key ‖ CBC IV.
    public static let ratchetMessageKeys = Array("SecureChat Double Ratchet message keys v1".utf8)

    /// Sender keys: the same 80-byte expansion as ``ratchetMessageKeys`` under its own label, so a
    /// room message key can never decrypt a pairwise message or the reverse.
    public static let senderKeyMessageKeys = Array("SecureChat Sender Key message keys v1".utf8)

    /// Attachments: HKDF(salt = the stream's 16-byte salt, ikm = attachment key, info = this, 39 bytes)
    /// → AES-256-GCM key ‖ 7-byte nonce prefix.
    public static let attachment = Array("SecureChat attachment v1".utf8)

    /// KDF_CK input byte that yields the message key: HMAC-SHA256(chain key, 0x01).
    public static let messageKeySeed: UInt8 = 0x01
    /// KDF_CK input byte that yields the next chain key: HMAC-SHA256(chain key, 0x02).
    public static let chainKeySeed: UInt8 = 0x02

    /// X3DH's F: 32 bytes of 0xFF before the DH outputs, so the input can never be mistaken for an
    /// X25519 output fed to XEdDSA-style constructions (X3DH specification, section 2.2).
    public static let x3dhPrefix = [UInt8](repeating: 0xff, count: 32)
}
