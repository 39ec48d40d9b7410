import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import SecureChatAPI

/// The server's REST API (docs/API.md §3) over HTTP, with its JSON conventions and error bodies.
struct APIClient: Sendable {
    let baseURL: URL
    let http: HTTPClient
    static let timeout = TimeAmount.seconds(30)
    /// Bounds every JSON answer read into memory (downloads stream instead).
    static let maximumResponse = 16 << 20

    init(baseURL: URL, http: HTTPClient = .shared) {
        self.baseURL = baseURL
        self.http = http
    }

    private struct Empty: Codable {}

    func send<Response: Decodable>(
        _ method: HTTPMethod, _ path: String, token: String? = nil, json: (any Encodable)? = nil,
        as: Response.Type = Response.self
    ) async throws(ClientError) -> Response {
        let body = try await raw(method, path, token: token, json: json)
        do {
            return try APIJSON.makeDecoder().decode(Response.self, from: body)
        } catch {
            throw .unreachable("unexpected answer to \(method) \(path)")
        }
    }

    func send(_ method: HTTPMethod, _ path: String, token: String? = nil, json: (any Encodable)? = nil) async throws(ClientError) {
        _ = try await raw(method, path, token: token, json: json)
    }

    private func raw(_ method: HTTPMethod, _ path: String, token: String?, json: (any Encodable)?) async throws(ClientError) -> Data {
        var request = HTTPClientRequest(url: baseURL.absoluteString.trimmingTrailingSlash + path)
        request.method = method
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        if let json {
            let data: Data
            do {
                data = try APIJSON.makeEncoder().encode(json)
            } catch {
                throw .cryptography("could not encode the request: \(error)")
            }
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: data))
        }
        return try await execute(request)
    }

    /// Sends a prepared request; a 2xx answer's body is returned, anything else thrown as the
    /// server's error.
    func execute(_ request: HTTPClientRequest, timeout: TimeAmount = Self.timeout) async throws(ClientError) -> Data {
        let status: Int
        let body: ByteBuffer
        do {
            let response = try await http.execute(request, timeout: timeout)
            status = Int(response.status.code)
            body = try await response.body.collect(upTo: Self.maximumResponse)
        } catch {
            throw .unreachable(describe(error))
        }
        let data = Data(body.readableBytesView)
        guard (200..<300).contains(status) else { throw Self.failure(status: status, body: data) }
        return data
    }

    func execute<Response: Decodable>(_ request: HTTPClientRequest, path: String) async throws(ClientError) -> Response {
        let body = try await execute(request, timeout: .hours(1))
        do {
            return try APIJSON.makeDecoder().decode(Response.self, from: body)
        } catch {
            throw .unreachable("unexpected answer to \(path)")
        }
    }

    /// The error an answer with a non-2xx status stands for.
    static func failure(status: Int, body: Data) -> ClientError {
        if let error = try? APIJSON.makeDecoder().decode(APIErrorBody.self, from: body) {
            return .server(status: status, code: error.error.code, message: error.error.message)
        }
        return .server(status: status, code: nil, message: HTTPResponseStatus(statusCode: status).reasonPhrase)
    }

    /// A network failure in a few words (NIO's descriptions are written for developers).
    func describe(_ error: any Error) -> String {
        let place = "\(baseURL.host ?? "?")\(baseURL.port.map { ":\($0)" } ?? "")"
        if let error = error as? IOError, error.errnoCode == ECONNREFUSED { return "connection refused by \(place)" }
        if let error = error as? HTTPClientError {
            if error == .deadlineExceeded || error == .connectTimeout { return "no answer from \(place) in time" }
            if error == .remoteConnectionClosed { return "\(place) closed the connection" }
        }
        let text = String(describing: error)
        if text.contains("Connection refused") { return "connection refused by \(place)" }
        return "\(place): \(text)"
    }

    /// A path segment with everything but unreserved characters percent-encoded.
    static func segment(_ value: String) -> String {
        value.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(.init(charactersIn: "-._~"))) ?? value
    }
}

extension String {
    var trimmingTrailingSlash: String { hasSuffix("/") ? String(dropLast()) : self }
}
