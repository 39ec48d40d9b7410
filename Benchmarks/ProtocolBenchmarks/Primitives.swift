import Crypto
import Foundation
import SecureChatKeys
import SecureChatProtocol
import _CryptoExtras

/// swift-crypto's primitives, measured in the same run as the operations built from them.
struct Primitives {
    var hmac32: Measurement
    var hmac144: Measurement
    var hmac216: Measurement
    var hkdf32: Measurement
    var hkdf64: Measurement
    var hkdf80: Measurement
    var cbcEncrypt: Measurement
    var cbcDecrypt: Measurement
    var x25519Agreement: Measurement
    var x25519KeyGeneration: Measurement
    var ed25519Sign: Measurement
    var ed25519Verify: Measurement
    var sha512Small: Measurement
    var sha256MiB: Measurement
    var aesGCMMiB: Measurement
    var ourHMAC32: Measurement
    var ourHMACPair: Measurement

    var all: [Measurement] {
        [hmac32, hmac144, hmac216, hkdf32, hkdf64, hkdf80, cbcEncrypt, cbcDecrypt, x25519Agreement, x25519KeyGeneration,
         ed25519Sign, ed25519Verify, sha512Small, sha256MiB, aesGCMMiB, ourHMAC32, ourHMACPair]
    }

    static func measureAll(budget: Double) throws -> Primitives {
        let key32 = SymmetricKey(size: .bits256)
        let message32 = [UInt8](repeating: 1, count: 32)
        let message144 = [UInt8](repeating: 2, count: 144)
        let message216 = [UInt8](repeating: 3, count: 216)
        let plaintext100 = [UInt8](repeating: 4, count: 100)
        let iv = try AES._CBC.IV(ivBytes: [UInt8](repeating: 5, count: 16))
        let ciphertext112 = try AES._CBC.encrypt(plaintext100, using: key32, iv: iv)
        let agreementKey = Curve25519.KeyAgreement.PrivateKey()
        let peer = Curve25519.KeyAgreement.PrivateKey().publicKey
        let signingKey = Curve25519.Signing.PrivateKey()
        let signedMessage = [UInt8](repeating: 6, count: 202)
        let signature = try signingKey.signature(for: signedMessage)
        let mebibyte = [UInt8](repeating: 7, count: 1 << 20)
        let chunk = [UInt8](repeating: 8, count: 64 * 1024)
        let info = Array("SecureChat Double Ratchet message keys v1".utf8)
        let salt = [UInt8](repeating: 0, count: 32)

        return Primitives(
            hmac32: measure("HMAC-SHA256, 32 B", budget: budget) { consume(HMAC<SHA256>.authenticationCode(for: message32, using: key32)) },
            hmac144: measure("HMAC-SHA256, 144 B", budget: budget) { consume(HMAC<SHA256>.authenticationCode(for: message144, using: key32)) },
            hmac216: measure("HMAC-SHA256, 216 B", budget: budget) { consume(HMAC<SHA256>.authenticationCode(for: message216, using: key32)) },
            hkdf32: measure("HKDF-SHA256 → 32 B", budget: budget) {
                consume(HKDF<SHA256>.deriveKey(inputKeyMaterial: key32, salt: salt, info: info, outputByteCount: 32))
            },
            hkdf64: measure("HKDF-SHA256 → 64 B", budget: budget) {
                consume(HKDF<SHA256>.deriveKey(inputKeyMaterial: key32, salt: salt, info: info, outputByteCount: 64))
            },
            hkdf80: measure("HKDF-SHA256 → 80 B", budget: budget) {
                consume(HKDF<SHA256>.deriveKey(inputKeyMaterial: key32, salt: salt, info: info, outputByteCount: 80))
            },
            cbcEncrypt: try measure("AES-256-CBC encrypt, 100 B", budget: budget) { consume(try AES._CBC.encrypt(plaintext100, using: key32, iv: iv)) },
            cbcDecrypt: try measure("AES-256-CBC decrypt, 112 B", budget: budget) { consume(try AES._CBC.decrypt(ciphertext112, using: key32, iv: iv)) },
            x25519Agreement: try measure("X25519 agreement", budget: budget) { consume(try agreementKey.sharedSecretFromKeyAgreement(with: peer)) },
            x25519KeyGeneration: measure("X25519 key generation", budget: budget) { consume(Curve25519.KeyAgreement.PrivateKey().publicKey) },
            ed25519Sign: try measure("Ed25519 sign, 202 B", budget: budget) { consume(try signingKey.signature(for: signedMessage)) },
            ed25519Verify: measure("Ed25519 verify, 202 B", budget: budget) { consume(signingKey.publicKey.isValidSignature(signature, for: signedMessage)) },
            sha512Small: measure("SHA-512, 96 B", budget: budget) { consume(SHA512.hash(data: message144.prefix(96))) },
            sha256MiB: measure("SHA-256, 1 MiB", budget: budget, batch: 4) { consume(SHA256.hash(data: mebibyte)) },
            aesGCMMiB: try measure("AES-256-GCM seal, 1 MiB in 64 KiB chunks", budget: budget, batch: 2) {
                for _ in 0..<16 { consume(try AES.GCM.seal(chunk, using: key32)) }
            },
            ourHMAC32: measure("(ours) HMAC-SHA256 with key set-up, 32 B", budget: budget) {
                consume(HMACSHA256(key: message32).tag(message32))
            },
            ourHMACPair: measure("(ours) KDF_CK: two HMACs, one key set-up", budget: budget) {
                let mac = HMACSHA256(key: message32)
                consume(mac.authenticate(byte: 1))
                consume(mac.authenticate(byte: 2))
            }
        )
    }
}
