import Crypto
import _CryptoExtras
import SecureChatKeys

/// A single-use message key from a chain step (32 bytes).
public struct MessageKey: Sendable, Equatable, CustomStringConvertible {
    public let key: SecretBytes
    public var description: String { "MessageKey(redacted)" }
}

/// Why a message did not authenticate or decrypt. Every cause looks the same on purpose.
public struct AuthenticationFailure: Error, Equatable, Sendable {}

/// The Double Ratchet specification's recommended ENCRYPT/DECRYPT (section 5.2), shared by pairwise and
/// sender-key messages under different labels:
///
/// ```
/// HKDF-SHA256(salt = 0³², ikm = mk, info = label, 80) → enc key (32) ‖ auth key (32) ‖ IV (16)
/// ciphertext = AES-256-CBC(enc key, IV, PKCS#7(plaintext))
/// output     = ciphertext ‖ HMAC-SHA256(auth key, associated data ‖ ciphertext)   (full 32 bytes)
/// ```
/// The IV comes from the key, so encryption is deterministic per message key, which is used once.
enum MessageCipher {
    static let tagLength = 32
    static let blockLength = 16

    static func encrypt(_ plaintext: [UInt8], key: MessageKey, associatedData: [UInt8], label: [UInt8]) -> [UInt8] {
        let keys = expand(key, label: label)
        let ciphertext: [UInt8]
        do {
            ciphertext = try keys.encryptionKey.withUnsafeBytes { encryptionKey in
                Array(try AES._CBC.encrypt(plaintext, using: SymmetricKey(data: encryptionKey), iv: keys.iv))
            }
        } catch {
            // AES-CBC with a 32-byte key and a 16-byte IV has no failure mode but allocation.
            preconditionFailure("AES-CBC encryption failed: \(error)")
        }
        let tag = HMACSHA256(key: keys.authenticationKey).tag(associatedData, ciphertext)
        return ciphertext + tag
    }

    static func decrypt(_ message: [UInt8], key: MessageKey, associatedData: [UInt8], label: [UInt8])
        throws(AuthenticationFailure) -> [UInt8]
    {
        guard message.count >= blockLength + tagLength, (message.count - tagLength) % blockLength == 0 else {
            throw AuthenticationFailure()
        }
        let ciphertext = Array(message[0..<(message.count - tagLength)])
        let receivedTag = message[(message.count - tagLength)...]
        let keys = expand(key, label: label)
        let expectedTag = HMACSHA256(key: keys.authenticationKey).tag(associatedData, ciphertext)
        // Padding is checked only after the tag, so no padding oracle exists.
        guard ConstantTime.equals(expectedTag, receivedTag) else { throw AuthenticationFailure() }
        do {
            return try keys.encryptionKey.withUnsafeBytes { encryptionKey in
                Array(try AES._CBC.decrypt(ciphertext, using: SymmetricKey(data: encryptionKey), iv: keys.iv))
            }
        } catch {
            throw AuthenticationFailure()
        }
    }

    private struct ExpandedKeys {
        let encryptionKey: SecretBytes
        let authenticationKey: SecretBytes
        let iv: AES._CBC.IV
    }

    private static func expand(_ key: MessageKey, label: [UInt8]) -> ExpandedKeys {
        let output = HKDFSHA256.deriveKey(inputKeyMaterial: key.key, salt: nil, info: label, outputByteCount: 80)
        // 16 bytes always make a valid IV.
        let iv = output.withUnsafeBytes { try! AES._CBC.IV(ivBytes: $0[64..<80]) }  // swiftlint:disable:this force_try
        return ExpandedKeys(
            encryptionKey: output.slice(0..<32), authenticationKey: output.slice(32..<64), iv: iv)
    }
}
