public import Foundation

/// The answer to `POST /v1/attachments`. The body was an already encrypted blob; the key and
/// digest travel inside the end-to-end encrypted message that points at it.
public struct AttachmentResponse: Codable, Sendable, Equatable {
    /// 26 characters of base32, 130 random bits.
    public var attachmentId: String
    public var size: Int64
    public var expiresAt: Date
    public init(attachmentId: String, size: Int64, expiresAt: Date) {
        self.attachmentId = attachmentId
        self.size = size
        self.expiresAt = expiresAt
    }
}
