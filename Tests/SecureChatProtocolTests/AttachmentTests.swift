import Crypto
import SecureChatKeys
import SecureChatTestSupport
import Testing
@testable import SecureChatProtocol

@Suite("Attachments")
struct AttachmentTests {
    static let chunkSize = 1024

    static func encrypt(_ plaintext: [UInt8], key: SecretBytes, pieces: Int = 1) throws -> (stream: [UInt8], digest: [UInt8]) {
        var encryptor = AttachmentEncryptor(key: key, chunkSize: chunkSize)
        var stream: [UInt8] = []
        let pieceSize = max(1, plaintext.count / pieces)
        var offset = 0
        while offset < plaintext.count {
            let end = min(plaintext.count, offset + pieceSize)
            stream += try encryptor.update(plaintext[offset..<end])
            offset = end
        }
        let (tail, digest) = try encryptor.finalize()
        return (stream + tail, digest)
    }

    static func decrypt(_ stream: [UInt8], key: SecretBytes, digest: [UInt8], size: Int, pieceSize: Int = 777) throws -> [UInt8] {
        var decryptor = AttachmentDecryptor(key: key, expectedDigest: digest, expectedSize: UInt64(size))
        var output: [UInt8] = []
        var offset = 0
        while offset < stream.count {
            let end = min(stream.count, offset + pieceSize)
            output += try decryptor.update(stream[offset..<end])
            offset = end
        }
        return output + (try decryptor.finalize())
    }

    @Test("round trip at and around chunk boundaries, fed in pieces", arguments: [0, 1, 1023, 1024, 1025, 2048, 5000, 65_537])
    func roundTrip(size: Int) throws {
        var generator = SeededGenerator(seed: UInt64(size))
        let plaintext = generator.bytes(size)
        let key = SecretBytes.random(count: 32)
        let (stream, digest) = try Self.encrypt(plaintext, key: key, pieces: 7)
        // A full last chunk is itself the final chunk; only an empty file has an empty one.
        let chunks = max(1, (size + Self.chunkSize - 1) / Self.chunkSize)
        #expect(stream.count == AttachmentEncryptor.headerLength + size + 16 * chunks)
        #expect(AttachmentEncryptor.streamLength(plaintextSize: UInt64(size), chunkSize: Self.chunkSize) == UInt64(stream.count))
        #expect(Array(SHA256.hash(data: stream)) == digest)
        #expect(try Self.decrypt(stream, key: key, digest: digest, size: size) == plaintext)
        #expect(try Self.decrypt(stream, key: key, digest: digest, size: size, pieceSize: 1) == plaintext)
    }

    @Test("truncation at every chunk boundary and inside chunks is detected")
    func truncation() throws {
        let key = SecretBytes.random(count: 32)
        let plaintext = [UInt8](repeating: 5, count: 3 * Self.chunkSize + 10)
        let (stream, digest) = try Self.encrypt(plaintext, key: key)
        let sealed = Self.chunkSize + 16
        // Cuts at chunk boundaries: the last remaining chunk was not sealed as final.
        for chunks in 1...3 {
            let cut = Array(stream.prefix(AttachmentEncryptor.headerLength + chunks * sealed))
            let truncatedDigest = Array(SHA256.hash(data: cut))
            #expect(throws: AttachmentError.truncated) {
                try Self.decrypt(cut, key: key, digest: truncatedDigest, size: chunks * Self.chunkSize)
            }
        }
        for cut in [0, 5, AttachmentEncryptor.headerLength, AttachmentEncryptor.headerLength + 10, stream.count - 1] {
            #expect(throws: AttachmentError.self) { try Self.decrypt(Array(stream.prefix(cut)), key: key, digest: digest, size: plaintext.count) }
        }
    }

    @Test("reordered, substituted or flipped chunks fail, as does a wrong key")
    func tampering() throws {
        let key = SecretBytes.random(count: 32)
        let plaintext = (0..<(3 * Self.chunkSize)).map { UInt8(truncatingIfNeeded: $0) }
        let (stream, digest) = try Self.encrypt(plaintext, key: key)
        let header = AttachmentEncryptor.headerLength, sealed = Self.chunkSize + 16
        var swapped = stream
        swapped.replaceSubrange(header..<(header + sealed), with: stream[(header + sealed)..<(header + 2 * sealed)])
        swapped.replaceSubrange((header + sealed)..<(header + 2 * sealed), with: stream[header..<(header + sealed)])
        let swappedDigest = Array(SHA256.hash(data: swapped))
        #expect(throws: AttachmentError.chunkAuthenticationFailed(index: 0)) {
            try Self.decrypt(swapped, key: key, digest: swappedDigest, size: plaintext.count)
        }
        // Another file's chunk under another key in place of chunk 1.
        let (other, _) = try Self.encrypt(plaintext, key: SecretBytes.random(count: 32))
        var substituted = stream
        substituted.replaceSubrange((header + sealed)..<(header + 2 * sealed), with: other[(header + sealed)..<(header + 2 * sealed)])
        #expect(throws: AttachmentError.chunkAuthenticationFailed(index: 1)) {
            try Self.decrypt(substituted, key: key, digest: Array(SHA256.hash(data: substituted)), size: plaintext.count)
        }
        // Every 97th byte flipped, including the header.
        for index in stride(from: 0, to: stream.count, by: 97) {
            var flipped = stream
            flipped[index] ^= 0x20
            #expect(throws: AttachmentError.self) {
                try Self.decrypt(flipped, key: key, digest: Array(SHA256.hash(data: flipped)), size: plaintext.count)
            }
        }
        #expect(throws: AttachmentError.self) {
            try Self.decrypt(stream, key: SecretBytes.random(count: 32), digest: digest, size: plaintext.count)
        }
    }

    @Test("a wrong digest or size is refused even when every chunk authenticates")
    func commitments() throws {
        let key = SecretBytes.random(count: 32)
        let plaintext = [UInt8](repeating: 1, count: 3000)
        let (stream, digest) = try Self.encrypt(plaintext, key: key)
        var wrongDigest = digest
        wrongDigest[0] ^= 1
        #expect(throws: AttachmentError.digestMismatch) { try Self.decrypt(stream, key: key, digest: wrongDigest, size: 3000) }
        #expect(throws: AttachmentError.sizeMismatch) { try Self.decrypt(stream, key: key, digest: digest, size: 2999) }
        #expect(throws: AttachmentError.sizeMismatch) { try Self.decrypt(stream, key: key, digest: digest, size: 3001) }
    }

    @Test("a header naming another version or an out-of-range chunk size is refused")
    func malformedHeader() throws {
        let key = SecretBytes.random(count: 32)
        let (stream, _) = try Self.encrypt([1, 2, 3], key: key)
        for (index, value) in [(0, UInt8(2)), (1, UInt8(0x21)), (2, UInt8(0xff))] {
            var bad = stream
            bad[index] = value
            #expect(throws: AttachmentError.malformedHeader) {
                try Self.decrypt(bad, key: key, digest: Array(SHA256.hash(data: bad)), size: 3)
            }
        }
    }

    @Test("after any error a decryptor refuses everything that follows")
    func decryptorStaysFailed() throws {
        let key = SecretBytes.random(count: 32)
        let plaintext = [UInt8](repeating: 9, count: 4 * Self.chunkSize)
        let (stream, digest) = try Self.encrypt(plaintext, key: key)
        var tampered = stream
        tampered[AttachmentEncryptor.headerLength + 3] ^= 1
        var decryptor = AttachmentDecryptor(key: key, expectedDigest: digest, expectedSize: UInt64(plaintext.count))
        let cut = AttachmentEncryptor.headerLength + 2 * (Self.chunkSize + 16)
        #expect(throws: AttachmentError.chunkAuthenticationFailed(index: 0)) { try decryptor.update(tampered[..<cut]) }
        // The genuine rest of the stream does not revive it.
        #expect(throws: AttachmentError.chunkAuthenticationFailed(index: 0)) { try decryptor.update(stream[cut...]) }
        do {
            _ = try decryptor.finalize()
            Issue.record("a failed decryptor finalised")
        } catch {
            #expect(error == .chunkAuthenticationFailed(index: 0))
        }
    }
}
