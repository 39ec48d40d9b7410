import Foundation
import Hummingbird
import NIOCore
import SecureChatAPI

/// Reads JSON request bodies with the API's limits and precise errors.
enum APIRequestDecoding {
    static func decode<Body: Decodable>(_ type: Body.Type, from request: Request, limit: Int = APILimits.jsonBodyBytes)
        async throws -> Body
    {
        guard let body = try await decodeIfPresent(type, from: request, limit: limit) else {
            throw APIFailure(.badRequest, .invalidJSON, "the request needs a JSON body")
        }
        return body
    }

    /// A body that may be absent (or empty); when present it must be valid.
    static func decodeIfPresent<Body: Decodable>(_ type: Body.Type, from request: Request, limit: Int = APILimits.jsonBodyBytes)
        async throws -> Body?
    {
        var request = request
        let buffer: ByteBuffer
        do {
            buffer = try await request.collectBody(upTo: limit)
        } catch is NIOTooManyBytesError {
            throw APIFailure(.contentTooLarge, .payloadTooLarge, "the request body is larger than \(limit) bytes")
        }
        guard buffer.readableBytes > 0 else { return nil }
        do {
            return try APIJSON.makeDecoder().decode(Body.self, from: Data(buffer: buffer))
        } catch let error as DecodingError {
            throw APIFailure(.badRequest, .invalidJSON, "invalid request body: \(describe(error))")
        }
    }

    /// Says what was wrong and where, without echoing the input (it may hold a password).
    static func describe(_ error: DecodingError) -> String {
        func path(_ codingPath: [any CodingKey]) -> String {
            let joined = codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
            return joined.isEmpty ? "the document" : String(joined.drop { $0 == "." })
        }
        switch error {
        case .keyNotFound(let key, let context):
            return "missing field \(path(context.codingPath + [key]))"
        case .typeMismatch(let type, let context):
            return "\(path(context.codingPath)) should be \(describe(type))"
        case .valueNotFound(let type, let context):
            return "\(path(context.codingPath)) should be \(describe(type)), not null"
        case .dataCorrupted(let context):
            if context.codingPath.isEmpty { return "not valid JSON" }
            if context.debugDescription.hasPrefix("unknown frame type") { return context.debugDescription }
            return "\(path(context.codingPath)) has an invalid value (base64 expected for binary fields)"
        @unknown default:
            return "not valid JSON"
        }
    }

    private static func describe(_ type: Any.Type) -> String {
        switch type {
        case is String.Type, is Data.Type: "a string"
        case is Bool.Type: "a boolean"
        case is Int.Type, is Int64.Type, is UInt32.Type: "an integer"
        case is Date.Type: "a number (milliseconds)"
        default: "\(type)".contains("Array") ? "an array" : "an object"
        }
    }
}
