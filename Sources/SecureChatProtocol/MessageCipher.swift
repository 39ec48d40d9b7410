import Crypto
import _CryptoExtras
import SecureChatKeys

/// A single-use message key from a chain step (32 bytes).
public struct MessageKey: Sendable, Equatable {
    package let key: SecretBytes
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

    static func encrypt(_ plaintext: [UInt8], key: MessageKey, associatedData: [UInt8], header: [UInt8] = [], label: [UInt8]) -> [UInt8] {
        withExpandedKeys(key, label: label) { encryptionKey, authenticationKey, iv in
            let ciphertext: [UInt8]
            do {
                ciphertext = Array(try AES._CBC.encrypt(plaintext, using: encryptionKey, iv: iv))
            } catch {
                // AES-CBC with a 32-byte key and a 16-byte IV has no failure mode but allocation.
                preconditionFailure("AES-CBC encryption failed: \(error)")
            }
            return ciphertext + authenticationKey.tag(associatedData, header, ciphertext)
        }
    }

    /// - Parameters:
    ///   - associatedData, header: authenticated before the ciphertext, in this order.
    static func decrypt(_ message: [UInt8], key: MessageKey, associatedData: [UInt8], header: [UInt8] = [], label: [UInt8])
        throws(AuthenticationFailure) -> [UInt8]
    {
        guard message.count >= blockLength + tagLength, (message.count - tagLength) % blockLength == 0 else {
            throw AuthenticationFailure()
        }
        let plaintext: [UInt8]? = withExpandedKeys(key, label: label) { encryptionKey, authenticationKey, iv in
            message.withUnsafeBytes { bytes -> [UInt8]? in
                let ciphertext = UnsafeRawBufferPointer(rebasing: bytes[0..<(bytes.count - tagLength)])
                let receivedTag = UnsafeRawBufferPointer(rebasing: bytes[(bytes.count - tagLength)...])
                var expectedTag = [UInt8](repeating: 0, count: tagLength)
                associatedData.withUnsafeBytes { ad in
                    header.withUnsafeBytes { headerBytes in
                        expectedTag.withUnsafeMutableBytes { authenticationKey.authenticate(ad, headerBytes, ciphertext, into: $0) }
                    }
                }
                // Padding is checked only after the tag, so no padding oracle exists.
                guard expectedTag.withUnsafeBytes({ ConstantTime.equals($0, receivedTag) }) else { return nil }
                return try? Array(AES._CBC.decrypt(ciphertext, using: encryptionKey, iv: iv))
            }
        }
        guard let plaintext else { throw AuthenticationFailure() }
        return plaintext
    }

    /// HKDF(0³², mk, label, 80) → AES key ‖ HMAC key ‖ IV, held in a stack buffer zeroed afterwards.
    private static func withExpandedKeys<Result>(
        _ key: MessageKey, label: [UInt8], _ body: (SymmetricKey, HMACSHA256, AES._CBC.IV) -> Result
    ) -> Result {
        withUnsafeTemporaryAllocation(byteCount: 80, alignment: 8) { output in
            defer { output.initializeMemory(as: UInt8.self, repeating: 0) }
            key.key.withUnsafeBytes { HKDFSHA256.deriveKey(inputKeyMaterial: $0, salt: nil, info: label, into: output) }
            let encryptionKey = SymmetricKey(data: UnsafeRawBufferPointer(rebasing: output[0..<32]))
            let authenticationKey = HMACSHA256(key: UnsafeRawBufferPointer(rebasing: output[32..<64]))
            // 16 bytes always make a valid IV.
            let iv = try! AES._CBC.IV(ivBytes: UnsafeRawBufferPointer(rebasing: output[64..<80]))  // swiftlint:disable:this force_try
            return body(encryptionKey, authenticationKey, iv)
        }
    }
}
