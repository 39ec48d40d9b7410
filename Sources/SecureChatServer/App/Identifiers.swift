import Crypto
import Foundation

/// Random identifiers that are safe to show and impossible to guess.
enum Identifiers {
    /// RFC 4648 base32 in lower case without padding: no `0`/`o` or `1`/`l` confusion in the
    /// alphabet's letters-and-2-7 set, easy to type and to read out.
    private static let alphabet = Array("abcdefghijklmnopqrstuvwxyz234567".utf8)

    static func random(bits: Int) -> String {
        let byteCount = (bits + 7) / 8
        let bytes = SymmetricKey(size: .init(bitCount: byteCount * 8)).withUnsafeBytes { Array($0) }
        return base32(bytes, characters: (bits + 4) / 5)
    }

    /// 128 bits: user, session and attachment ids.
    static func make() -> String { random(bits: 130) }

    /// 100 bits: room join codes (20 characters).
    static func roomCode() -> String { random(bits: 100) }

    private static func base32(_ bytes: [UInt8], characters: Int) -> String {
        var output = [UInt8]()
        output.reserveCapacity(characters)
        var buffer = 0
        var bitsInBuffer = 0
        for byte in bytes {
            buffer = (buffer << 8) | Int(byte)
            bitsInBuffer += 8
            while bitsInBuffer >= 5, output.count < characters {
                output.append(alphabet[(buffer >> (bitsInBuffer - 5)) & 31])
                bitsInBuffer -= 5
            }
            buffer &= (1 << bitsInBuffer) - 1
        }
        return String(decoding: output, as: UTF8.self)
    }
}
