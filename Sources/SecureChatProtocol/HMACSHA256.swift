import Crypto

/// HMAC-SHA256 (RFC 2104) with the key's inner and outer pads hashed once up front.
///
/// Deriving two outputs from one key (KDF_CK's message key and next chain key, HKDF-Expand's three
/// blocks) then costs two SHA-256 compressions per output instead of four, and a key used for
/// every message (the all-zero HKDF salt) costs nothing to set up. The output is bit-for-bit
/// HMAC-SHA256; tests compare it with swift-crypto's `HMAC<SHA256>` on random keys and messages.
package struct HMACSHA256: Sendable {
    static let blockSize = 64
    static let outputSize = 32

    private let innerState: SHA256
    private let outerState: SHA256

    package init(key: UnsafeRawBufferPointer) {
        var block = [UInt8](repeating: 0, count: Self.blockSize)
        if key.count > Self.blockSize {
            var hasher = SHA256()
            hasher.update(bufferPointer: key)
            hasher.finalize().withUnsafeBytes { digest in
                for index in 0..<digest.count { block[index] = digest[index] }
            }
        } else {
            for index in 0..<key.count { block[index] = key[index] }
        }
        var inner = SHA256()
        var outer = SHA256()
        for index in 0..<Self.blockSize { block[index] ^= 0x36 }
        inner.update(data: block)
        for index in 0..<Self.blockSize { block[index] ^= 0x36 ^ 0x5c }
        outer.update(data: block)
        for index in 0..<Self.blockSize { block[index] = 0 }
        innerState = inner
        outerState = outer
    }

    package init(key: SecretBytes) {
        self = key.withUnsafeBytes { HMACSHA256(key: $0) }
    }

    package init(key: [UInt8]) {
        self = key.withUnsafeBytes { HMACSHA256(key: $0) }
    }

    /// HMAC over the concatenation of `parts`, written into `output` (32 bytes).
    package func authenticate(_ parts: UnsafeRawBufferPointer..., into output: UnsafeMutableRawBufferPointer) {
        var inner = innerState
        for part in parts { inner.update(bufferPointer: part) }
        var outer = outerState
        inner.finalize().withUnsafeBytes { outer.update(bufferPointer: $0) }
        outer.finalize().withUnsafeBytes { digest in
            output.copyMemory(from: UnsafeRawBufferPointer(rebasing: digest[0..<Self.outputSize]))
        }
    }

    /// HMAC over one byte: KDF_CK's constant inputs.
    package func authenticate(byte: UInt8) -> SecretBytes {
        SecretBytes(count: Self.outputSize) { output in
            withUnsafeBytes(of: byte) { authenticate($0, into: output) }
        }
    }

    /// HMAC over the concatenation of `parts`, as a tag (not secret).
    package func tag(_ parts: [UInt8]...) -> [UInt8] {
        var inner = innerState
        for part in parts { part.withUnsafeBytes { inner.update(bufferPointer: $0) } }
        var outer = outerState
        inner.finalize().withUnsafeBytes { outer.update(bufferPointer: $0) }
        return outer.finalize().withUnsafeBytes { Array($0) }
    }
}

/// HKDF-SHA256 (RFC 5869) on ``HMACSHA256``, with the all-zero salt's pads computed once.
package enum HKDFSHA256 {
    private static let zeroSaltKey = HMACSHA256(key: [UInt8](repeating: 0, count: 32))

    /// HKDF with `salt`, or 32 zero bytes when `salt` is nil (the same PRK as an empty salt).
    package static func deriveKey(
        inputKeyMaterial: UnsafeRawBufferPointer, salt: UnsafeRawBufferPointer?, info: [UInt8], outputByteCount: Int
    ) -> SecretBytes {
        precondition(outputByteCount > 0 && outputByteCount <= 255 * HMACSHA256.outputSize, "HKDF length")
        let extractor = salt.map { HMACSHA256(key: $0) } ?? zeroSaltKey
        let pseudorandomKey = SecretBytes(count: HMACSHA256.outputSize) { prk in
            extractor.authenticate(inputKeyMaterial, into: prk)
        }
        let expander = HMACSHA256(key: pseudorandomKey)
        let blockCount = (outputByteCount + HMACSHA256.outputSize - 1) / HMACSHA256.outputSize
        let full = SecretBytes(count: blockCount * HMACSHA256.outputSize) { output in
            info.withUnsafeBytes { infoBytes in
                for block in 0..<blockCount {
                    var counter = UInt8(block + 1)
                    let target = UnsafeMutableRawBufferPointer(
                        rebasing: output[(block * 32)..<(block * 32 + 32)])
                    withUnsafeBytes(of: &counter) { counterByte in
                        if block == 0 {
                            expander.authenticate(infoBytes, counterByte, into: target)
                        } else {
                            let previous = UnsafeRawBufferPointer(
                                rebasing: output[((block - 1) * 32)..<(block * 32)])
                            expander.authenticate(previous, infoBytes, counterByte, into: target)
                        }
                    }
                }
            }
        }
        return full.count == outputByteCount ? full : full.slice(0..<outputByteCount)
    }

    package static func deriveKey(inputKeyMaterial: SecretBytes, salt: SecretBytes?, info: [UInt8], outputByteCount: Int)
        -> SecretBytes
    {
        inputKeyMaterial.withUnsafeBytes { ikm in
            if let salt {
                return salt.withUnsafeBytes {
                    deriveKey(inputKeyMaterial: ikm, salt: $0, info: info, outputByteCount: outputByteCount)
                }
            }
            return deriveKey(inputKeyMaterial: ikm, salt: nil, info: info, outputByteCount: outputByteCount)
        }
    }
}
