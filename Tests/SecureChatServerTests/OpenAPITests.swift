import Foundation
import Logging
import SecureChatAPI
import Testing

@testable import SecureChatServer

/// docs/openapi.yaml describes the router exactly: same routes, same error codes.
@Suite("OpenAPI contract")
struct OpenAPITests {
    static let specification = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("docs/openapi.yaml")

    /// "METHOD /path" for every operation under `paths:` (two-space path keys, four-space methods).
    static func documentedRoutes(_ text: String) -> Set<String> {
        var routes = Set<String>()
        var inPaths = false
        var path: String?
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("paths:") {
                inPaths = true
                continue
            }
            if inPaths, let first = line.first, first != " ", first != "#" { break }
            guard inPaths else { continue }
            if line.hasPrefix("  /"), line.hasSuffix(":") {
                path = String(line.dropFirst(2).dropLast())
            } else if let path, line.hasPrefix("    "), !line.hasPrefix("     "), line.hasSuffix(":") {
                let method = line.trimmingCharacters(in: .whitespaces).dropLast()
                if ["get", "post", "put", "delete", "patch", "head"].contains(method) {
                    routes.insert("\(method.uppercased()) \(path)")
                }
            }
        }
        return routes
    }

    @Test("every route of the router is in openapi.yaml and nothing else is")
    func routesMatch() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("securechat-openapi-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        var configuration = ServerConfiguration()
        configuration.dataDirectory = directory
        configuration.bcryptCost = 4
        let services = try await makeServices(configuration: configuration, logger: Logger(label: "openapi-test"))
        let router = buildRouter(services: services)
        // The WebSocket is not a REST operation; docs/API.md describes it.
        let served = Set(router.routes.map { "\($0.method.rawValue) \($0.path.description)" }).subtracting(["GET /v1/ws"])
        let documented = Self.documentedRoutes(try String(contentsOf: Self.specification, encoding: .utf8))
        #expect(served.count > 30)
        #expect(served.subtracting(documented).sorted() == [], "served but undocumented")
        #expect(documented.subtracting(served).sorted() == [], "documented but not served")
        await services.store.shutdown()
    }

    @Test("the error code list in openapi.yaml is exactly APIErrorCode")
    func errorCodesMatch() throws {
        let text = try String(contentsOf: Self.specification, encoding: .utf8)
        for code in APIErrorCode.allCases {
            #expect(text.contains("- \(code.rawValue)\n"), "\(code.rawValue) missing from openapi.yaml")
        }
        // And no stale code: every "- snake_case" item in the Error schema's enum is a known code.
        let known = Set(APIErrorCode.allCases.map(\.rawValue))
        let section = try #require(text.range(of: "ErrorCode:")).upperBound
        let enumLines = text[section...].split(separator: "\n").prefix { !$0.hasPrefix("    ") || $0.hasPrefix("     ") }
        let listed = enumLines.compactMap { line -> String? in
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            return trimmed.hasPrefix("- ") ? String(trimmed.dropFirst(2)) : nil
        }
        #expect(!listed.isEmpty)
        #expect(Set(listed).subtracting(known).sorted() == [])
    }
}
