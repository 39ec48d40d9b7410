import Crypto

/// HMAC-SHA256 (RFC 2104) with the key's inner and outer pads hashed once up front.
///
/// Deriving two outputs from one key (KDF_CK's message key and next chain key, HKDF-Expand's
/// blocks) then costs two SHA-256 compressions per output instead of four, and a key used for
/// every message (the all-zero HKDF salt) costs nothing to set up. The output is bit-for-bit
/// HMAC-SHA256; tests compare it with swift-crypto's `HMAC<SHA256>` on random keys and messages.
package struct HMACSHA256: Sendable {
    static let blockSize = 64
    static let outputSize = 32

    private let innerState: SHA256
    private let outerState: SHA256

    package init(key: UnsafeRawBufferPointer) {
        var inner = SHA256()
        var outer = SHA256()
        withUnsafeTemporaryAllocation(byteCount: Self.blockSize, alignment: 8) { block in
            block.initializeMemory(as: UInt8.self, repeating: 0)
            if key.count > Self.blockSize {
                var hasher = SHA256()
                hasher.update(bufferPointer: key)
                hasher.finalize().withUnsafeBytes { digest in block.copyMemory(from: digest) }
            } else {
                block.copyMemory(from: key)
            }
            for index in 0..<Self.blockSize { block[index] ^= 0x36 }
            inner.update(bufferPointer: UnsafeRawBufferPointer(block))
            for index in 0..<Self.blockSize { block[index] ^= 0x36 ^ 0x5c }
            outer.update(bufferPointer: UnsafeRawBufferPointer(block))
            block.initializeMemory(as: UInt8.self, repeating: 0)
        }
        innerState = inner
        outerState = outer
    }

    package init(key: SecretBytes) {
        self = key.withUnsafeBytes { HMACSHA256(key: $0) }
    }

    package init(key: [UInt8]) {
        self = key.withUnsafeBytes { HMACSHA256(key: $0) }
    }

    /// HMAC over `first ‖ second ‖ third`, written into `output` (32 bytes).
    package func authenticate(
        _ first: UnsafeRawBufferPointer, _ second: UnsafeRawBufferPointer? = nil, _ third: UnsafeRawBufferPointer? = nil,
        into output: UnsafeMutableRawBufferPointer
    ) {
        var inner = innerState
        inner.update(bufferPointer: first)
        if let second { inner.update(bufferPointer: second) }
        if let third { inner.update(bufferPointer: third) }
        var outer = outerState
        inner.finalize().withUnsafeBytes { outer.update(bufferPointer: $0) }
        outer.finalize().withUnsafeBytes { digest in output.copyMemory(from: digest) }
    }

    /// HMAC over one byte: KDF_CK's constant inputs.
    package func authenticate(byte: UInt8) -> SecretBytes {
        SecretBytes(count: Self.outputSize) { output in
            var input = byte
            withUnsafeBytes(of: &input) { authenticate($0, into: output) }
        }
    }

    /// HMAC over the concatenation of up to three byte strings, as a tag (not secret).
    package func tag(_ first: [UInt8], _ second: [UInt8] = [], _ third: [UInt8] = []) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: Self.outputSize) { output, initialized in
            first.withUnsafeBytes { a in
                second.withUnsafeBytes { b in
                    third.withUnsafeBytes { c in
                        authenticate(a, b, c, into: UnsafeMutableRawBufferPointer(output))
                    }
                }
            }
            initialized = Self.outputSize
        }
    }
}

/// HKDF-SHA256 (RFC 5869) on ``HMACSHA256``, with the all-zero salt's pads computed once.
package enum HKDFSHA256 {
    private static let zeroSaltKey = HMACSHA256(key: [UInt8](repeating: 0, count: 32))

    /// HKDF into `output` (1…255·32 bytes), with `salt`, or 32 zero bytes when `salt` is nil (the
    /// same PRK as an empty salt).
    package static func deriveKey(
        inputKeyMaterial: UnsafeRawBufferPointer, salt: UnsafeRawBufferPointer?, info: [UInt8],
        into output: UnsafeMutableRawBufferPointer
    ) {
        let length = output.count
        precondition(length > 0 && length <= 255 * HMACSHA256.outputSize, "HKDF length")
        let extractor = salt.map { HMACSHA256(key: $0) } ?? zeroSaltKey
        withUnsafeTemporaryAllocation(byteCount: 2 * HMACSHA256.outputSize, alignment: 8) { scratch in
            let prk = UnsafeMutableRawBufferPointer(rebasing: scratch[0..<32])
            let block = UnsafeMutableRawBufferPointer(rebasing: scratch[32..<64])
            extractor.authenticate(inputKeyMaterial, into: prk)
            let expander = HMACSHA256(key: UnsafeRawBufferPointer(prk))
            info.withUnsafeBytes { infoBytes in
                var written = 0
                var counter: UInt8 = 1
                while written < length {
                    let isFirst = counter == 1
                    withUnsafeBytes(of: &counter) { counterByte in
                        if isFirst {
                            expander.authenticate(infoBytes, counterByte, into: block)
                        } else {
                            expander.authenticate(UnsafeRawBufferPointer(block), infoBytes, counterByte, into: block)
                        }
                    }
                    let take = min(32, length - written)
                    UnsafeMutableRawBufferPointer(rebasing: output[written..<written + take])
                        .copyMemory(from: UnsafeRawBufferPointer(rebasing: block[0..<take]))
                    written += take
                    counter &+= 1
                }
            }
            scratch.initializeMemory(as: UInt8.self, repeating: 0)
        }
    }

    package static func deriveKey(
        inputKeyMaterial: UnsafeRawBufferPointer, salt: UnsafeRawBufferPointer?, info: [UInt8], outputByteCount: Int
    ) -> SecretBytes {
        SecretBytes(count: outputByteCount) { output in
            deriveKey(inputKeyMaterial: inputKeyMaterial, salt: salt, info: info, into: output)
        }
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
