import Crypto
import Foundation
import Testing

@testable import SecureChatServer

@Suite("At-rest cipher")
struct AtRestCipherTests {
    let cipher = AtRestCipher(currentKeyId: "k1", keys: ["k1": SymmetricKey(size: .bits256)])

    @Test("sealed payloads open under their context only, and every flipped byte is refused")
    func roundTripAndTampering() throws {
        let plaintext = Data((0..<96).map { UInt8($0) })
        let sealed = try cipher.seal(plaintext, context: "here")
        #expect(sealed.bytes.count == 12 + plaintext.count + 16)
        #expect(sealed.unsealed == plaintext)
        #expect(try cipher.open(sealed, context: "here") == plaintext)
        #expect(throws: AtRestCipher.Failure.self) { try cipher.open(sealed, context: "there") }
        for index in sealed.bytes.indices {
            var altered = sealed
            altered.bytes[index] ^= 0x01
            altered.unsealed = nil
            #expect(throws: AtRestCipher.Failure.self) { try cipher.open(altered, context: "here") }
        }
    }

    @Test("the stored form alone decides equality: the kept plaintext is a cache")
    func equalityIgnoresTheCache() throws {
        let sealed = try cipher.seal(Data([1, 2, 3]), context: "c")
        let fromDisk = SealedPayload(keyId: sealed.keyId, bytes: sealed.bytes)
        #expect(fromDisk.unsealed == nil)
        #expect(fromDisk == sealed)
    }

    @Test("every seal draws a fresh nonce")
    func noncesAcrossRefills() throws {
        var seen = Set<[UInt8]>()
        for _ in 0..<(3 * 256 + 5) {
            let sealed = try cipher.seal(Data([0]), context: "n")
            let nonce = Array(sealed.bytes[0..<12])
            #expect(nonce != [UInt8](repeating: 0, count: 12))
            seen.insert(nonce)
        }
        #expect(seen.count == 3 * 256 + 5)
    }
}
