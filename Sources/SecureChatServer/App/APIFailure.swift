import HTTPTypes
import Hummingbird
import NIOCore
import SecureChatAPI
import Foundation

/// A refusal the client must see: an HTTP status, a stable code and a message for people.
///
/// Every error a route throws becomes `{"error": {"code", "message"}}` through ``ErrorBodyMiddleware``;
/// messages never contain secrets or user content.
struct APIFailure: Error, Sendable, Equatable, HTTPResponseError {
    let status: HTTPResponse.Status
    let code: APIErrorCode
    let message: String
    /// Seconds the client should wait, for 429 answers.
    var retryAfter: Int?

    init(_ status: HTTPResponse.Status, _ code: APIErrorCode, _ message: String, retryAfter: Int? = nil) {
        self.status = status
        self.code = code
        self.message = message
        self.retryAfter = retryAfter
    }

    var headers: HTTPFields {
        var fields: HTTPFields = [.contentType: "application/json; charset=utf-8"]
        if let retryAfter { fields[.retryAfter] = String(retryAfter) }
        return fields
    }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        let body = try APIJSON.makeEncoder().encode(APIErrorBody(code: code, message: message))
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }

    static func notFound(_ what: String) -> APIFailure { APIFailure(.notFound, .notFound, "\(what) not found") }
    static func badRequest(_ message: String) -> APIFailure { APIFailure(.badRequest, .badRequest, message) }
    static func forbidden(_ message: String) -> APIFailure { APIFailure(.forbidden, .forbidden, message) }
    static let unauthorized = APIFailure(.unauthorized, .unauthorized, "missing or invalid access token")
    static let sessionEnded = APIFailure(.unauthorized, .unauthorized, "this session has ended; log in again")
    static let notAMember = APIFailure(.forbidden, .notAMember, "you are not a member of this room")
}

/// The rules about who may do what in a room, shared by both stores so that they cannot disagree.
enum RoomPolicy {
    /// Admins remove members; only the owner removes admins; nobody removes the owner.
    static func canRemove(actor: RoomRole, target: RoomRole) -> Bool {
        switch actor {
        case .owner: target != .owner
        case .admin: target == .member
        case .member: false
        }
    }

    /// Only the owner changes roles, and never their own.
    static func canChangeRole(actor: RoomRole, isSelf: Bool) -> Bool { actor == .owner && !isSelf }

    static func canManageRoom(actor: RoomRole) -> Bool { actor >= .admin }

    static func canDeleteRoom(actor: RoomRole) -> Bool { actor == .owner }

    /// When the owner leaves, the longest-standing admin, else the longest-standing member, takes over.
    static func successor(among members: [(userId: String, role: RoomRole, joinedAt: Int64)]) -> String? {
        members.sorted { lhs, rhs in
            if lhs.role != rhs.role { return lhs.role > rhs.role }
            if lhs.joinedAt != rhs.joinedAt { return lhs.joinedAt < rhs.joinedAt }
            return lhs.userId < rhs.userId
        }.first?.userId
    }
}

/// A JSON answer in the API's conventions (``APIJSON``), so that the wire types in SecureChatAPI
/// need not know about Hummingbird.
struct JSONBody<Value: Encodable & Sendable>: ResponseGenerator {
    var status: HTTPResponse.Status = .ok
    let value: Value

    init(_ value: Value, status: HTTPResponse.Status = .ok) {
        self.value = value
        self.status = status
    }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        let data = try APIJSON.makeEncoder().encode(value)
        return Response(
            status: status, headers: [.contentType: "application/json; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}

extension RouterMethods {
    /// Registers a handler that returns a wire type, answered as ``JSONBody``.
    @discardableResult
    func json<Value: Encodable & Sendable>(
        _ method: HTTPRequest.Method, _ path: RouterPath,
        use handler: @Sendable @escaping (Request, Context) async throws -> Value
    ) -> Self {
        on(path, method: method) { request, context in JSONBody(try await handler(request, context)) }
    }
}
