/// Hides a message's exact length inside the encryption (PROTOCOL.md §15.1): the plaintext is
/// followed by 0x80 and then zeros up to the next multiple of ``blockSize``.
public enum MessagePadding {
    /// 160 bytes, as Signal pads: a short text and a long one differ only in whole blocks.
    public static let blockSize = 160

    public enum Error: Swift.Error, Equatable, Sendable {
        /// No 0x80 marker after the zeros: not a padded plaintext.
        case missingMarker
    }

    public static func pad(_ plaintext: [UInt8]) -> [UInt8] {
        let padded = (plaintext.count / blockSize + 1) * blockSize
        var result = plaintext
        result.reserveCapacity(padded)
        result.append(0x80)
        result.append(contentsOf: repeatElement(0, count: padded - result.count))
        return result
    }

    public static func unpad(_ padded: [UInt8]) throws(Error) -> [UInt8] {
        guard let marker = padded.lastIndex(where: { $0 != 0 }), padded[marker] == 0x80 else { throw .missingMarker }
        return Array(padded[..<marker])
    }
}
