import AsyncHTTPClient
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
public import Foundation
import NIOCore
import NIOHTTP1
import SecureChatAPI
import SecureChatKeys
import SecureChatProtocol

/// Files: encrypted on the way out and decrypted on the way in, a chunk at a time, so memory
/// stays the same at any file size (PROTOCOL.md §9).
extension SecureChatClient {
    /// Progress of a transfer: bytes of the file done so far, and the file's size.
    public typealias Progress = @Sendable (_ done: UInt64, _ total: UInt64) -> Void

    /// Encrypts and uploads a file, then sends a message pointing to it (with its key, digest
    /// and size) to a user; only that user (and this account) may download the stream.
    @discardableResult
    public func sendFile(
        _ file: URL, to username: String, caption: String? = nil, contentType: String = "application/octet-stream",
        progress: Progress? = nil
    ) async throws(ClientError) -> ChatMessage {
        let contact = try await resolve(username: username)
        let pointer = try await upload(file, query: "recipients=\(APIClient.segment(contact.userId))", contentType: contentType, progress: progress)
        return try await send(.attachment(pointer, caption: caption), toUserId: contact.userId)
    }

    /// Encrypts and uploads a file for a room's members, then sends a message pointing to it.
    @discardableResult
    public func sendFile(
        _ file: URL, toRoom code: String, caption: String? = nil, contentType: String = "application/octet-stream",
        progress: Progress? = nil
    ) async throws(ClientError) -> ChatMessage {
        let pointer = try await upload(file, query: "room=\(APIClient.segment(code))", contentType: contentType, progress: progress)
        return try await send(.attachment(pointer, caption: caption), toRoom: code)
    }

    func upload(_ file: URL, query: String, contentType: String, progress: Progress?) async throws(ClientError) -> AttachmentPointer {
        let size: UInt64
        let handle: FileHandle
        do {
            size = (try FileManager.default.attributesOfItem(atPath: file.path)[.size] as? NSNumber)?.uint64Value ?? 0
            handle = try FileHandle(forReadingFrom: file)
        } catch {
            throw .file("cannot read \(file.path): \(error.localizedDescription)")
        }
        defer { try? handle.close() }
        let key = SecretBytes.random(count: 32)
        let stream = EncryptingReader(handle: handle, key: key, size: size, progress: progress)
        var request = HTTPClientRequest(url: account.server.absoluteString.trimmingTrailingSlash + "/v1/attachments?\(query)")
        request.method = .POST
        request.headers.add(name: "Authorization", value: "Bearer \(try await validToken())")
        request.headers.add(name: "Content-Type", value: "application/octet-stream")
        request.body = .stream(stream, length: .known(Int64(AttachmentEncryptor.streamLength(plaintextSize: size))))
        let answer: AttachmentResponse = try await api.execute(request, path: "/v1/attachments")
        guard let digest = stream.digest else { throw .file("\(file.path) changed while it was being sent") }
        guard stream.plaintextSize == size else { throw .file("\(file.path) changed size while it was being sent") }
        return AttachmentPointer(
            attachmentId: answer.attachmentId, key: Data(key.bytes), digest: Data(digest), size: size,
            name: file.lastPathComponent, contentType: contentType)
    }

    /// Downloads and decrypts an attachment into `destination`. The file appears only once all of
    /// it has authenticated and its digest and size match the message: a tampered or cut stream
    /// leaves nothing behind.
    /// An existing file at `destination` is replaced only with `overwrite`.
    public func download(
        _ pointer: AttachmentPointer, to destination: URL, overwrite: Bool = false, progress: Progress? = nil
    ) async throws(ClientError) {
        guard pointer.key.count == 32 else { throw .cryptography("the attachment key is not 32 bytes") }
        if !overwrite, FileManager.default.fileExists(atPath: destination.path) {
            throw .file("\(destination.path) exists already")
        }
        let temporary = destination.deletingLastPathComponent()
            .appendingPathComponent(".\(destination.lastPathComponent).\(Self.newMessageId()).partial")
        var request = HTTPClientRequest(url: account.server.absoluteString.trimmingTrailingSlash + "/v1/attachments/\(APIClient.segment(pointer.attachmentId))")
        request.headers.add(name: "Authorization", value: "Bearer \(try await validToken())")
        do {
            guard FileManager.default.createFile(atPath: temporary.path, contents: nil, attributes: [.posixPermissions: 0o600]) else {
                throw ClientError.file("cannot write \(temporary.path)")
            }
            let output = try FileHandle(forWritingTo: temporary)
            defer { try? output.close() }
            let response = try await api.http.execute(request, timeout: .hours(1))
            guard response.status == .ok else {
                let body = try await response.body.collect(upTo: 1 << 16)
                throw APIClient.failure(status: Int(response.status.code), body: Data(body.readableBytesView))
            }
            var decryptor = AttachmentDecryptor(key: SecretBytes(pointer.key), expectedDigest: [UInt8](pointer.digest), expectedSize: pointer.size)
            var written: UInt64 = 0
            for try await buffer in response.body {
                let plaintext = try buffer.withUnsafeReadableBytes { bytes throws(AttachmentError) in try decryptor.update(bytes) }
                if !plaintext.isEmpty {
                    try output.write(contentsOf: plaintext)
                    written += UInt64(plaintext.count)
                    progress?(written, pointer.size)
                }
            }
            let tail = try decryptor.finalize()
            try output.write(contentsOf: tail)
            try output.synchronize()
            progress?(pointer.size, pointer.size)
            if overwrite {
                // rename(2) replaces the old file in one step: never a moment without either.
                guard rename(temporary.path, destination.path) == 0 else {
                    throw ClientError.file("cannot replace \(destination.path): \(String(cString: strerror(errno)))")
                }
            } else {
                try FileManager.default.moveItem(at: temporary, to: destination)
            }
        } catch {
            try? FileManager.default.removeItem(at: temporary)
            switch error {
            case let error as ClientError: throw error
            case let error as AttachmentError: throw .cryptography("the attachment was refused: \(error)")
            default: throw .unreachable(api.describe(error))
            }
        }
    }
}

/// Reads a file and hands out its encrypted stream as the upload asks for it (so the file is
/// never in memory as a whole), recording the digest at the end.
final class EncryptingReader: AsyncSequence, @unchecked Sendable {
    typealias Element = ByteBuffer

    // Used by one upload at a time, from the HTTP client's one consumer of the sequence.
    private let handle: FileHandle
    private var encryptor: AttachmentEncryptor?
    private let size: UInt64
    private let progress: SecureChatClient.Progress?
    private(set) var digest: [UInt8]?
    private(set) var plaintextSize: UInt64 = 0
    static let blockSize = 256 * 1024

    init(handle: FileHandle, key: SecretBytes, size: UInt64, progress: SecureChatClient.Progress?) {
        self.handle = handle
        self.encryptor = AttachmentEncryptor(key: key)
        self.size = size
        self.progress = progress
    }

    struct AsyncIterator: AsyncIteratorProtocol {
        let reader: EncryptingReader
        mutating func next() async throws -> ByteBuffer? { try reader.nextBuffer() }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(reader: self) }

    private func nextBuffer() throws -> ByteBuffer? {
        while encryptor != nil {
            let block = try handle.read(upToCount: Self.blockSize) ?? Data()
            if block.isEmpty {
                let (tail, digest) = try encryptor.take()!.finalize()  // swiftlint:disable:this force_unwrapping
                self.digest = digest
                progress?(plaintextSize, size)
                return ByteBuffer(bytes: tail)
            }
            plaintextSize += UInt64(block.count)
            let output = try encryptor!.update(block)  // swiftlint:disable:this force_unwrapping
            progress?(plaintextSize, size)
            if !output.isEmpty { return ByteBuffer(bytes: output) }
        }
        return nil
    }
}

extension SecureChatClient {
    /// Sends to a conversation, whichever kind it is.
    @discardableResult
    public func send(_ content: Content, in conversation: Conversation) async throws(ClientError) -> ChatMessage {
        switch conversation {
        case .direct(let userId): try await send(content, toUserId: userId)
        case .room(let code): try await send(content, toRoom: code)
        }
    }

    /// Sends a file to a conversation, whichever kind it is.
    @discardableResult
    public func sendFile(
        _ file: URL, in conversation: Conversation, caption: String? = nil, contentType: String = "application/octet-stream",
        progress: Progress? = nil
    ) async throws(ClientError) -> ChatMessage {
        switch conversation {
        case .direct(let userId):
            let pointer = try await upload(file, query: "recipients=\(APIClient.segment(userId))", contentType: contentType, progress: progress)
            return try await send(.attachment(pointer, caption: caption), toUserId: userId)
        case .room(let code):
            return try await sendFile(file, toRoom: code, caption: caption, contentType: contentType, progress: progress)
        }
    }
}
