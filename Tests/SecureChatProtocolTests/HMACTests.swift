import Crypto
import SecureChatTestSupport
import Testing
@testable import SecureChatProtocol

@Suite("HMAC and HKDF with precomputed pads")
struct HMACTests {
    @Test("HMAC-SHA256 equals swift-crypto's for random keys of 0…150 bytes and messages of 0…300 bytes")
    func hmacMatchesSwiftCrypto() {
        var generator = SeededGenerator(seed: 1)
        for _ in 0..<500 {
            let key = generator.bytes(Int.random(in: 0...150, using: &generator))
            let message = generator.bytes(Int.random(in: 0...300, using: &generator))
            let split = Int.random(in: 0...message.count, using: &generator)
            let ours = HMACSHA256(key: key).tag(Array(message[..<split]), Array(message[split...]))
            let theirs = Array(HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: key)))
            #expect(ours == theirs)
        }
    }

    @Test("HKDF-SHA256 equals swift-crypto's, with and without salt, for lengths 1…200")
    func hkdfMatchesSwiftCrypto() {
        var generator = SeededGenerator(seed: 2)
        for length in 1...200 {
            let ikm = generator.bytes(Int.random(in: 1...64, using: &generator))
            let salt: [UInt8]? = length % 2 == 0 ? generator.bytes(Int.random(in: 1...80, using: &generator)) : nil
            let info = generator.bytes(Int.random(in: 0...40, using: &generator))
            let ours = HKDFSHA256.deriveKey(
                inputKeyMaterial: SecretBytes(ikm), salt: salt.map { SecretBytes($0) }, info: info, outputByteCount: length)
            let theirs = HKDF<SHA256>.deriveKey(
                inputKeyMaterial: SymmetricKey(data: ikm), salt: salt ?? [], info: info, outputByteCount: length)
            #expect(ours.bytes == theirs.withUnsafeBytes { Array($0) })
        }
    }

    @Test("RFC 5869 test case 1")
    func rfc5869() {
        let ikm = [UInt8](repeating: 0x0b, count: 22)
        let salt = Hex.decode("000102030405060708090a0b0c")
        let info = Hex.decode("f0f1f2f3f4f5f6f7f8f9")
        let okm = HKDFSHA256.deriveKey(
            inputKeyMaterial: SecretBytes(ikm), salt: SecretBytes(salt), info: info, outputByteCount: 42)
        #expect(Hex.encode(okm.bytes)
            == "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865")
    }

    @Test("secrets never print their bytes")
    func redaction() {
        let secret = SecretBytes([0xde, 0xad, 0xbe, 0xef])
        #expect(!"\(secret)".contains("de"))
        #expect(!String(reflecting: secret).contains("ad"))
        #expect(SecretBytes([1, 2]) == SecretBytes([1, 2]))
        #expect(SecretBytes([1, 2]) != SecretBytes([1, 3]))
    }
}
