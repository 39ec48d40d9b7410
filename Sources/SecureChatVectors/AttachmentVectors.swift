import Crypto
import Foundation
import SecureChatProtocol

/// `securechat-attachment-vectors/1`: attachment streams from key, salt and plaintext, and tampered
/// streams that must be refused.
///
/// ```
/// { "schema", "generator", "info_hex",
///   "cases": [ { "name", "key", "salt", "chunk_size", "plaintext", "stream", "digest",
///                "tampered": [ {"description", "stream"} ] } ] }
/// ```
/// A tampered stream is decrypted with the digest of the tampered stream itself, so that the
/// chunk authentication and final-chunk rules — not the digest — must catch it.
enum AttachmentVectors {
    static let schema = "securechat-attachment-vectors/1"

    static func encrypt(key: [UInt8], salt: [UInt8], chunkSize: Int, plaintext: [UInt8]) throws -> (stream: [UInt8], digest: [UInt8]) {
        var encryptor = AttachmentEncryptor(key: SecretBytes(key), salt: salt, chunkSize: chunkSize)
        var stream = try encryptor.update(plaintext)
        let (tail, digest) = try encryptor.finalize()
        stream += tail
        return (stream, digest)
    }

    static func decrypt(key: [UInt8], stream: [UInt8], digest: [UInt8], size: Int) throws -> [UInt8] {
        var decryptor = AttachmentDecryptor(key: SecretBytes(key), expectedDigest: digest, expectedSize: UInt64(size))
        return try decryptor.update(stream) + decryptor.finalize()
    }

    static func generate() throws -> JSON {
        var cases: [JSON] = []
        for (name, size) in [("empty", 0), ("one-byte", 1), ("one-short-of-a-chunk", 1023), ("exactly-one-chunk", 1024), ("two-and-a-half-chunks", 2560)] {
            var random = DeterministicBytes("attachments/\(name)")
            let key = random.next(), salt = random.next(16), plaintext = random.next(size)
            let chunkSize = 1024
            let (stream, digest) = try encrypt(key: key, salt: salt, chunkSize: chunkSize, plaintext: plaintext)
            var tampered: [JSON] = []
            func add(_ description: String, _ bytes: [UInt8]) {
                precondition((try? decrypt(key: key, stream: bytes, digest: Array(SHA256.hash(data: bytes)), size: size)) == nil,
                             "tampered stream must fail: \(description)")
                tampered.append(.object([.init("description", .string(description)), .init("stream", .hex(bytes))]))
            }
            var flipped = stream
            flipped[flipped.count - 1] ^= 1
            add("last tag byte flipped", flipped)
            var header = stream
            header[21] ^= 1
            add("salt byte flipped", header)
            if size > chunkSize {
                let sealed = chunkSize + 16
                add("truncated after the first chunk", Array(stream.prefix(22 + sealed)))
                var swapped = stream
                swapped.replaceSubrange(22..<(22 + sealed), with: stream[(22 + sealed)..<(22 + 2 * sealed)])
                swapped.replaceSubrange((22 + sealed)..<(22 + 2 * sealed), with: stream[22..<(22 + sealed)])
                add("first two chunks swapped", swapped)
            }
            cases.append(.object([
                .init("name", .string(name)), .init("key", .hex(key)), .init("salt", .hex(salt)),
                .init("chunk_size", .number(chunkSize)), .init("plaintext", .hex(plaintext)),
                .init("stream", .hex(stream)), .init("digest", .hex(digest)), .init("tampered", .array(tampered)),
            ]))
        }
        return .object([
            .init("schema", .string(schema)),
            .init("generator", .string(VectorFile.generator)),
            .init("info_hex", .hex(KDFLabels.attachment)),
            .init("cases", .array(cases)),
        ])
    }

    static func check(_ json: JSON) throws(VectorError) -> Int {
        let file = try json.object("$", allowed: ["schema", "generator", "info_hex", "cases", "sha256"])
        _ = try file.string("generator")
        try expectEqual(try file.hex("info_hex"), KDFLabels.attachment, "info_hex")
        let cases = try file.array("cases")
        for (index, item) in cases.enumerated() {
            let vector = try item.object("cases[\(index)]", allowed: ["name", "key", "salt", "chunk_size", "plaintext", "stream", "digest", "tampered"])
            let path = "cases[\(index)] (\(try vector.string("name")))"
            let key = try vector.hex("key", length: 32), salt = try vector.hex("salt", length: 16)
            let chunkSize = try vector.int("chunk_size")
            guard ProtocolLimits.attachmentChunkSizeRange.contains(chunkSize) else { throw VectorError("\(path).chunk_size: out of range") }
            let plaintext = try vector.hex("plaintext"), stream = try vector.hex("stream"), digest = try vector.hex("digest", length: 32)
            do {
                let (computed, computedDigest) = try encrypt(key: key, salt: salt, chunkSize: chunkSize, plaintext: plaintext)
                try expectEqual(computed, stream, "\(path).stream")
                try expectEqual(computedDigest, digest, "\(path).digest")
                try expectEqual(try decrypt(key: key, stream: stream, digest: digest, size: plaintext.count), plaintext, "\(path): decrypted plaintext")
            } catch let error as VectorError {
                throw error
            } catch {
                throw VectorError("\(path): \(error)")
            }
            for (position, value) in try vector.array("tampered").enumerated() {
                let tampered = try value.object("\(path).tampered[\(position)]", allowed: ["description", "stream"])
                let bytes = try tampered.hex("stream")
                if (try? decrypt(key: key, stream: bytes, digest: Array(SHA256.hash(data: bytes)), size: plaintext.count)) != nil {
                    throw VectorError("\(path).tampered[\(position)] (\(try tampered.string("description"))): accepted")
                }
            }
        }
        return cases.count
    }
}
