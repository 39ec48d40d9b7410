import Foundation
import Hummingbird
import SecureChatAPI

/// Encrypted blobs: streamed to disk on upload, readable by the uploader and by the people the
/// upload names (a room's members or listed users), deleted with the messages that point at them.
struct AttachmentController {
    let services: ChatServices

    func addRoutes(to group: RouterGroup<AuthenticatedContext>) {
        group.post("attachments", use: upload)
        group.get("attachments/{attachmentId}", use: download)
        group.delete("attachments/{attachmentId}", use: delete)
    }

    /// `POST /v1/attachments?room=CODE` or `?recipients=userId,userId`, body = the encrypted blob.
    @Sendable func upload(_ request: Request, context: AuthenticatedContext) async throws -> JSONBody<AttachmentResponse> {
        let limit = services.configuration.attachmentMaxBytes
        guard let length = request.headers[.contentLength].flatMap({ Int64($0) }) else {
            throw APIFailure(.lengthRequired, .badRequest, "send the attachment with a Content-Length")
        }
        guard length > 0 else { throw APIFailure.badRequest("an attachment cannot be empty") }
        guard length <= limit else {
            throw APIFailure(.contentTooLarge, .payloadTooLarge, "an attachment is at most \(limit) bytes")
        }
        let now = services.nowMilliseconds
        let used = try await services.store.attachmentBytes(uploaderId: context.user.userId, now: now)
        guard used + length <= services.configuration.attachmentQuotaBytes else {
            throw APIFailure(
                .contentTooLarge, .quotaExceeded,
                "this upload would pass your quota of \(services.configuration.attachmentQuotaBytes) bytes (\(used) in use)")
        }
        let query = request.uri.queryParameters
        var roomId: Int64?
        if let code = query.get("room") {
            guard let room = try await services.store.room(code: code.lowercased()) else { throw APIFailure.notFound("room") }
            guard try await services.store.membership(roomId: room.id, userId: context.user.userId) != nil else {
                throw APIFailure.notAMember
            }
            roomId = room.id
        }
        let recipients = query.get("recipients").map { $0.split(separator: ",").map(String.init) } ?? []
        guard recipients.count <= APILimits.recipientsPerSend else {
            throw APIFailure.badRequest("an attachment names at most \(APILimits.recipientsPerSend) recipients")
        }
        for userId in recipients where try await services.store.user(id: userId) == nil {
            throw APIFailure.notFound("user \(userId.prefix(64))")
        }
        let id = Identifiers.make()
        let size = try await services.attachments.store(id: id, body: request.body, limit: length, context: context)
        guard size == length else {
            services.attachments.delete([id])
            throw APIFailure.badRequest("the body was \(size) bytes, not the announced \(length)")
        }
        let expiresAt = now + Milliseconds(services.configuration.messageRetention * 1000)
        try await services.store.createAttachment(
            AttachmentRecord(id: id, uploaderUserId: context.user.userId, roomId: roomId, size: size, createdAt: now, expiresAt: expiresAt),
            grantedTo: recipients)
        return JSONBody(AttachmentResponse(attachmentId: id, size: size, expiresAt: Date(milliseconds: expiresAt)), status: .created)
    }

    @Sendable func download(_ request: Request, context: AuthenticatedContext) async throws -> Response {
        let id = try context.parameters.require("attachmentId")
        // Unknown and forbidden look the same: an id is a secret only its holders know.
        guard AttachmentFiles.isValidId(id), try await services.store.canRead(attachmentId: id, userId: context.user.userId),
            let attachment = try await services.store.attachment(id: id)
        else { throw APIFailure.notFound("attachment") }
        let chunks = try services.attachments.open(id: id)
        return Response(
            status: .ok,
            headers: [
                .contentType: "application/octet-stream", .contentLength: String(attachment.size),
                .cacheControl: "private, no-store",
            ],
            body: ResponseBody(asyncSequence: chunks))
    }

    @Sendable func delete(_ request: Request, context: AuthenticatedContext) async throws -> HTTPResponse.Status {
        let id = try context.parameters.require("attachmentId")
        guard AttachmentFiles.isValidId(id), let attachment = try await services.store.attachment(id: id),
            attachment.uploaderUserId == context.user.userId
        else { throw APIFailure.notFound("attachment") }
        try await services.store.deleteAttachment(id: id)
        services.attachments.delete([id])
        return .noContent
    }
}

