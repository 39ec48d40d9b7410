import Crypto
import SecureChatKeys

/// Why an attachment stream was refused.
public enum AttachmentError: Error, Equatable, Sendable {
    /// The stream header is malformed or names an unsupported version or chunk size.
    case malformedHeader
    /// A chunk failed to authenticate: tampered, reordered, substituted, or the wrong key.
    case chunkAuthenticationFailed(index: UInt64)
    /// The stream ended before its final chunk (truncated) or had data after it.
    case truncated
    /// The SHA-256 of the ciphertext differs from the digest the carrying message committed to.
    case digestMismatch
    /// The plaintext size differs from the size the carrying message stated.
    case sizeMismatch
    /// More than 2^32 − 1 chunks.
    case tooLarge
}

/// Runs `body` on the bytes of `bytes`: in place when they are contiguous, else on one copy.
private func withBytes<Bytes: Collection<UInt8>, Result>(
    _ bytes: Bytes, _ body: (UnsafeRawBufferPointer) throws(AttachmentError) -> Result
) throws(AttachmentError) -> Result {
    var outcome: Swift.Result<Result, AttachmentError>?
    _ = bytes.withContiguousStorageIfAvailable { buffer in
        outcome = Swift.Result { () throws(AttachmentError) in try body(UnsafeRawBufferPointer(buffer)) }
    }
    if outcome == nil {
        Array(bytes).withUnsafeBytes { buffer in
            outcome = Swift.Result { () throws(AttachmentError) in try body(buffer) }
        }
    }
    // One of the two branches above always runs.
    return try outcome!.get()  // swiftlint:disable:this force_unwrapping
}

/// Streaming encryption of attachments in authenticated chunks, with constant memory at any size.
///
/// ```
/// stream  = header ‖ chunk₀ ‖ chunk₁ ‖ … ‖ chunkₙ          (chunkₙ is final; n ≥ 0)
/// header  = version (1) ‖ 0x20 ‖ chunk size (u32 BE) ‖ salt (16)
/// keys    = HKDF-SHA256(salt, ikm = attachment key (32), info = "SecureChat attachment v1", 39)
///         → AES-256-GCM key (32) ‖ nonce prefix (7)
/// chunkᵢ  = AES-256-GCM(key, nonce = prefix ‖ i (u32 BE) ‖ final (0x00 or 0x01), aad = header,
///                       plaintext bytes [i·size, (i+1)·size)) ‖ tag (16)
/// digest  = SHA-256(stream)
/// ```
/// Every chunk but the last holds exactly `chunk size` plaintext bytes; the last holds 0…size and
/// is the only one sealed with final = 0x01 (the STREAM construction of Hoang, Reyhanitabar,
/// Rogaway and Vizár), so truncation, reordering and substitution all fail authentication. The
/// message that carries the key also carries the digest and size, so a server cannot swap the file.
///
/// Both ends are non-copyable and ``finalize()`` consumes them: a copied encryptor would seal two
/// streams under the same nonces, so the type system forbids it.
public struct AttachmentEncryptor: ~Copyable, Sendable {
    public static let headerLength = 22
    static let tagLength = 16

    private let header: [UInt8]
    private let key: SymmetricKey
    private let noncePrefix: [UInt8]
    private let chunkSize: Int
    private var pending: [UInt8] = []
    private var chunkIndex: UInt64 = 0
    private var digest = SHA256()
    private var headerWritten = false
    public private(set) var plaintextSize: UInt64 = 0

    /// - Parameters:
    ///   - key: the attachment key: 32 fresh random bytes (``SecretBytes/random(count:)``), sent to the
    ///     recipients inside the end-to-end encrypted message that points to the attachment.
    ///   - chunkSize: plaintext bytes per chunk, within ``ProtocolLimits/attachmentChunkSizeRange``.
    public init(key: SecretBytes, chunkSize: Int = ProtocolLimits.defaultAttachmentChunkSize) {
        self.init(key: key, salt: SecretBytes.random(count: 16).bytes, chunkSize: chunkSize)
    }

    /// With the salt injected: vectors only.
    package init(key: SecretBytes, salt: [UInt8], chunkSize: Int) {
        precondition(key.count == 32 && salt.count == 16, "attachment key is 32 bytes, salt 16")
        precondition(ProtocolLimits.attachmentChunkSizeRange.contains(chunkSize), "chunk size out of range")
        var writer = ByteWriter(capacity: Self.headerLength)
        WireFormat.writeHeader(.attachment, to: &writer)
        writer.write(bigEndian: UInt32(chunkSize))
        writer.write(contentsOf: salt)
        header = writer.bytes
        (self.key, noncePrefix) = Self.deriveKeys(key: key, salt: salt)
        self.chunkSize = chunkSize
    }

    /// The length of the stream for a file of `plaintextSize` bytes (what an upload announces
    /// before it starts): the header, the plaintext, and a tag per chunk (an empty file is one
    /// empty final chunk).
    public static func streamLength(plaintextSize: UInt64, chunkSize: Int = ProtocolLimits.defaultAttachmentChunkSize) -> UInt64 {
        let chunks = max(1, (plaintextSize + UInt64(chunkSize) - 1) / UInt64(chunkSize))
        return UInt64(headerLength) + plaintextSize + chunks * UInt64(tagLength)
    }

    /// Feeds plaintext; returns the ciphertext bytes ready so far (the header first).
    public mutating func update(_ plaintext: some Collection<UInt8>) throws(AttachmentError) -> [UInt8] {
        // Contiguous input (arrays, slices, buffers, Data) is read in place; anything else is copied once.
        try withBytes(plaintext) { buffer throws(AttachmentError) in try update(buffer) }
    }

    /// Feeds plaintext from a buffer; returns the ciphertext bytes ready so far (the header first).
    public mutating func update(_ plaintext: UnsafeRawBufferPointer) throws(AttachmentError) -> [UInt8] {
        var output = takeHeader()
        plaintextSize += UInt64(plaintext.count)
        let sealedChunks = (pending.count + plaintext.count) / chunkSize
        output.reserveCapacity(output.count + sealedChunks * (chunkSize + Self.tagLength))
        var input = plaintext[...]
        // Top up a partly filled chunk first.
        if !pending.isEmpty {
            let take = min(chunkSize - pending.count, input.count)
            pending.append(contentsOf: UnsafeRawBufferPointer(rebasing: input.prefix(take)))
            input = input.dropFirst(take)
            // A chunk is sealed only once more data follows it: the last one must be marked final.
            guard !input.isEmpty else { return output }
            try sealPending(final: false, into: &output)
        }
        // Whole chunks straight from the input, keeping back the last one (it may be final).
        while input.count > chunkSize {
            try seal(UnsafeRawBufferPointer(rebasing: input.prefix(chunkSize)), final: false, into: &output)
            input = input.dropFirst(chunkSize)
        }
        pending.append(contentsOf: UnsafeRawBufferPointer(rebasing: input))
        return output
    }

    /// Seals the final chunk. Returns the last ciphertext bytes and the SHA-256 digest of the whole stream.
    public consuming func finalize() throws(AttachmentError) -> (ciphertext: [UInt8], digest: [UInt8]) {
        var output = takeHeader()
        try sealPending(final: true, into: &output)
        return (output, Array(digest.finalize()))
    }

    private mutating func takeHeader() -> [UInt8] {
        guard !headerWritten else { return [] }
        headerWritten = true
        digest.update(data: header)
        return header
    }

    /// Seals the held-back chunk and empties it (keeping its capacity).
    private mutating func sealPending(final: Bool, into output: inout [UInt8]) throws(AttachmentError) {
        var chunk: [UInt8] = []
        swap(&chunk, &pending)  // so that sealing may mutate self while reading the chunk
        try withBytes(chunk) { buffer throws(AttachmentError) in try seal(buffer, final: final, into: &output) }
        chunk.removeAll(keepingCapacity: true)
        pending = chunk
    }

    /// Seals one chunk, appends it to `output` and adds it to the digest.
    private mutating func seal(_ chunk: UnsafeRawBufferPointer, final: Bool, into output: inout [UInt8]) throws(AttachmentError) {
        guard chunkIndex < ProtocolLimits.maxAttachmentChunks else { throw .tooLarge }
        let nonce = Self.nonce(prefix: noncePrefix, index: chunkIndex, final: final)
        guard let sealed = try? AES.GCM.seal(chunk, using: key, nonce: nonce, authenticating: header) else {
            preconditionFailure("AES-GCM sealing failed")
        }
        chunkIndex += 1
        let start = output.count
        // Through raw buffers: appending a Data directly goes byte by byte.
        sealed.ciphertext.withUnsafeBytes { output.append(contentsOf: $0) }
        sealed.tag.withUnsafeBytes { output.append(contentsOf: $0) }
        output.withUnsafeBytes { digest.update(bufferPointer: UnsafeRawBufferPointer(rebasing: $0[start...])) }
    }

    static func deriveKeys(key: SecretBytes, salt: [UInt8]) -> (SymmetricKey, [UInt8]) {
        let output = salt.withUnsafeBytes { saltBytes in
            key.withUnsafeBytes { ikm in
                HKDFSHA256.deriveKey(
                    inputKeyMaterial: ikm, salt: saltBytes, info: KDFLabels.attachment, outputByteCount: 39)
            }
        }
        return output.withUnsafeBytes { bytes in (SymmetricKey(data: bytes[0..<32]), Array(bytes[32..<39])) }
    }

    static func nonce(prefix: [UInt8], index: UInt64, final: Bool) -> AES.GCM.Nonce {
        var writer = ByteWriter(capacity: 12)
        writer.write(contentsOf: prefix)
        writer.write(bigEndian: UInt32(index))
        writer.write(final ? 1 : 0)
        // 12 bytes always make a valid GCM nonce.
        return try! AES.GCM.Nonce(data: writer.bytes)  // swiftlint:disable:this force_try
    }
}

/// The receiving side of ``AttachmentEncryptor``: authenticates each chunk before releasing its
/// plaintext, and at the end checks the final flag, the digest and the size.
///
/// Plaintext released before ``finalize()`` has authenticated under the key, but the file as a
/// whole is accepted only when ``finalize()`` returns: write to a temporary file until then.
///
/// After any error the decryptor refuses everything: the stream is rejected as a whole.
public struct AttachmentDecryptor: ~Copyable, Sendable {
    private let attachmentKey: SecretBytes
    private let expectedDigest: [UInt8]
    private let expectedSize: UInt64
    private var header: [UInt8]?
    private var key: SymmetricKey?
    private var noncePrefix: [UInt8] = []
    private var chunkSize = 0
    private var pending: [UInt8] = []
    private var chunkIndex: UInt64 = 0
    private var digest = SHA256()
    private var plaintextSize: UInt64 = 0
    private var failure: AttachmentError?

    public init(key: SecretBytes, expectedDigest: [UInt8], expectedSize: UInt64) {
        attachmentKey = key
        self.expectedDigest = expectedDigest
        self.expectedSize = expectedSize
    }

    /// Feeds ciphertext; returns the plaintext of every chunk that is complete and known not to be the last.
    public mutating func update(_ ciphertext: some Collection<UInt8>) throws(AttachmentError) -> [UInt8] {
        try withBytes(ciphertext) { buffer throws(AttachmentError) in try update(buffer) }
    }

    /// Feeds ciphertext from a buffer.
    public mutating func update(_ ciphertext: UnsafeRawBufferPointer) throws(AttachmentError) -> [UInt8] {
        if let failure { throw failure }
        do {
            return try process(ciphertext)
        } catch {
            failure = error
            throw error
        }
    }

    private mutating func process(_ ciphertext: UnsafeRawBufferPointer) throws(AttachmentError) -> [UInt8] {
        digest.update(bufferPointer: ciphertext)
        pending.append(contentsOf: ciphertext)
        if header == nil {
            guard pending.count >= AttachmentEncryptor.headerLength else { return [] }
            try readHeader()
        }
        let sealedChunk = chunkSize + AttachmentEncryptor.tagLength
        var output: [UInt8] = []
        output.reserveCapacity(max(0, pending.count - sealedChunk) / sealedChunk * chunkSize)
        var consumed = 0
        while pending.count - consumed > sealedChunk {
            output += try open(pending[consumed..<consumed + sealedChunk], final: false)
            consumed += sealedChunk
        }
        if consumed > 0 { pending.removeFirst(consumed) }
        guard plaintextSize <= expectedSize else { throw .sizeMismatch }
        return output
    }

    /// Opens the final chunk and checks digest and size.
    public consuming func finalize() throws(AttachmentError) -> [UInt8] {
        if let failure { throw failure }
        guard header != nil, pending.count >= AttachmentEncryptor.tagLength else { throw .truncated }
        let output: [UInt8]
        do {
            output = try open(pending[...], final: true)
        } catch .chunkAuthenticationFailed {
            // A stream cut at a chunk boundary ends with a chunk sealed as not final.
            throw .truncated
        }
        pending.removeAll()
        guard ConstantTime.equals(Array(digest.finalize()), expectedDigest) else { throw .digestMismatch }
        guard plaintextSize == expectedSize else { throw .sizeMismatch }
        return output
    }

    private mutating func readHeader() throws(AttachmentError) {
        var reader = ByteReader(pending[0..<AttachmentEncryptor.headerLength])
        do {
            try WireFormat.readHeader(.attachment, from: &reader)
            let size = Int(try reader.readUInt32())
            guard ProtocolLimits.attachmentChunkSizeRange.contains(size) else { throw AttachmentError.malformedHeader }
            chunkSize = size
            let salt = try reader.readBytes(16)
            (key, noncePrefix) = AttachmentEncryptor.deriveKeys(key: attachmentKey, salt: salt)
        } catch {
            throw .malformedHeader
        }
        header = Array(pending[0..<AttachmentEncryptor.headerLength])
        pending.removeFirst(AttachmentEncryptor.headerLength)
    }

    private mutating func open(_ sealed: ArraySlice<UInt8>, final: Bool) throws(AttachmentError) -> [UInt8] {
        guard let key, let header else { throw .malformedHeader }
        guard chunkIndex < ProtocolLimits.maxAttachmentChunks else { throw .tooLarge }
        let nonce = AttachmentEncryptor.nonce(prefix: noncePrefix, index: chunkIndex, final: final)
        let split = sealed.endIndex - AttachmentEncryptor.tagLength
        guard let box = try? AES.GCM.SealedBox(nonce: nonce, ciphertext: sealed[sealed.startIndex..<split], tag: sealed[split...]),
              let plaintext = try? AES.GCM.open(box, using: key, authenticating: header)
        else {
            throw .chunkAuthenticationFailed(index: chunkIndex)
        }
        chunkIndex += 1
        plaintextSize += UInt64(plaintext.count)
        return Array(plaintext)
    }
}
