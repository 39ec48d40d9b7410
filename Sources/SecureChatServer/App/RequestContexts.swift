import Foundation
import Hummingbird
import Logging
import NIOCore
import SecureChatAPI

/// The context of every request: ``BearerAuthMiddleware`` records who is calling.
struct ChatRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    var user: AuthenticatedUser?
    /// The client's IP address, for rate limits keyed by client: the peer's, or behind a trusted
    /// proxy the one it forwarded (``ClientAddress``).
    var remoteAddress: String

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress?.ipAddress ?? "unknown"
    }

    /// Bodies are read through ``APIRequestDecoding`` or streamed; this bounds anything else.
    var maxUploadSize: Int { APILimits.jsonBodyBytes }
    var responseEncoder: JSONEncoder { APIJSON.makeEncoder() }
}

/// The context of routes that need a logged-in user: it cannot be created without one, so a
/// handler cannot forget to check.
struct AuthenticatedContext: ChildRequestContext {
    var coreContext: CoreRequestContextStorage
    let user: AuthenticatedUser
    let remoteAddress: String

    init(context: ChatRequestContext) throws {
        guard let user = context.user else { throw APIFailure.unauthorized }
        self.coreContext = context.coreContext
        self.user = user
        self.remoteAddress = context.remoteAddress
    }

    var maxUploadSize: Int { APILimits.jsonBodyBytes }
    var responseEncoder: JSONEncoder { APIJSON.makeEncoder() }
}

/// Checks `Authorization: Bearer <access token>`; tokens never travel in URLs.
struct BearerAuthMiddleware: RouterMiddleware {
    typealias Context = ChatRequestContext
    let services: ChatServices

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let header = request.headers[.authorization], header.utf8.count <= 4200,
            header.lowercased().hasPrefix("bearer ")
        else { throw APIFailure.unauthorized }
        var context = context
        let user = try await services.authenticate(token: String(header.dropFirst(7)))
        context.user = user
        context.logger[metadataKey: "user"] = .string(user.userId)
        return try await next(request, context)
    }
}

/// Renders every error as `{"error": {"code", "message"}}`, including the framework's own
/// (unknown routes, oversized bodies) and bugs, which are logged once and answered with a 500.
struct ErrorBodyMiddleware<Context: RequestContext>: RouterMiddleware {
    let metrics: ServerMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let failure as APIFailure {
            if let kind = failure.code.authenticationFailureKind { metrics.authenticationFailed(kind) }
            return try failure.response(from: request, context: context)
        } catch is NIOTooManyBytesError {
            return try APIFailure(.contentTooLarge, .payloadTooLarge, "the request body is too large").response(from: request, context: context)
        } catch let error as HTTPError {
            let failure: APIFailure =
                switch error.status {
                case .notFound: APIFailure(.notFound, .notFound, "no such route: \(request.method) \(request.uri.path)")
                case .badRequest: APIFailure(.badRequest, .badRequest, error.body ?? "bad request")
                case .contentTooLarge: APIFailure(.contentTooLarge, .payloadTooLarge, "the request body is too large")
                default: APIFailure(error.status, .badRequest, error.body ?? error.status.reasonPhrase)
                }
            return try failure.response(from: request, context: context)
        } catch let error as any HTTPResponseError where error.status.code < 500 {
            return try APIFailure(error.status, .badRequest, error.status.reasonPhrase).response(from: request, context: context)
        } catch {
            context.logger.error("unhandled error", metadata: ["error": "\(error)", "route": "\(request.method) \(context.endpointPath ?? "?")"])
            return try APIFailure(.internalServerError, .internalError, "the server failed to handle this request")
                .response(from: request, context: context)
        }
    }
}
