import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import ServiceLifecycle

/// HTTPS and WSS served by the server itself, from PEM files.
enum ServerTLS {
    enum Failure: Error, CustomStringConvertible {
        case missingKey
        case emptyChain(String)

        var description: String {
            switch self {
            case .missingKey: "a TLS certificate needs its private key (--tls-key)"
            case .emptyChain(let path): "\(path) holds no PEM certificate"
            }
        }
    }

    /// TLS 1.2 or later, HTTP/1.1 over ALPN (WebSockets upgrade from it).
    static func makeContext(certificatePath: String, keyPath: String?) throws -> NIOSSLContext {
        guard let keyPath else { throw Failure.missingKey }
        try FilePermissions.requireOwnerOnly(keyPath)
        let chain = try NIOSSLCertificate.fromPEMFile(certificatePath)
        guard !chain.isEmpty else { throw Failure.emptyChain(certificatePath) }
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(try NIOSSLPrivateKey(file: keyPath, format: .pem)))
        configuration.minimumTLSVersion = .tlsv12
        configuration.applicationProtocols = ["http/1.1"]
        return try NIOSSLContext(configuration: configuration)
    }
}

/// A plain-HTTP listener that sends every request to the same place over HTTPS (308, so that the
/// method and body are kept).
struct HTTPSRedirectService: Service, CustomStringConvertible {
    let host: String
    let port: Int
    /// The HTTPS port, known once the main server has bound it (it may have been asked for port 0).
    let httpsPort: NIOLockedValueBox<Int>
    let logger: Logger

    var description: String { "HTTPSRedirectService(port: \(port))" }

    func run() async throws {
        let httpsPort = httpsPort
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    // A connection that says nothing for 10 s is closed: it holds a descriptor.
                    try channel.pipeline.syncOperations.addHandler(IdleStateHandler(readTimeout: .seconds(10)))
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(HTTPSRedirectHandler(httpsPort: httpsPort.withLockedValue { $0 }))
                }
            }
            .bind(host: host, port: port).get()
        logger.info("redirecting HTTP to HTTPS", metadata: ["address": "\(channel.localAddress?.description ?? "?")"])
        try? await gracefulShutdown()
        try? await channel.close()
    }
}

final class HTTPSRedirectHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let httpsPort: Int

    init(httpsPort: Int) { self.httpsPort = httpsPort }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent { context.close(promise: nil) } else { context.fireUserInboundEventTriggered(event) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .head(let head) = unwrapInboundIn(data) else { return }
        var headers = HTTPHeaders([("Content-Length", "0"), ("Connection", "close")])
        let status: HTTPResponseStatus
        if let host = Self.hostname(head.headers["Host"].first ?? "") {
            let path = head.uri.hasPrefix("/") ? head.uri : "/"
            headers.add(name: "Location", value: "https://\(host)\(httpsPort == 443 ? "" : ":\(httpsPort)")\(path)")
            status = .permanentRedirect
        } else {
            status = .badRequest
        }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))), promise: nil)
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in bound.value.close(promise: nil) }
    }

    /// The Host header without its port, if it is a plausible name or address (nothing that could
    /// smuggle another header or path into the Location).
    static func hostname(_ header: String) -> String? {
        var host = Substring(header)
        if host.hasPrefix("[") {
            guard let end = host.firstIndex(of: "]") else { return nil }
            host = host[...end]
        } else if let colon = host.lastIndex(of: ":") {
            host = host[..<colon]
        }
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:[]")
        guard !host.isEmpty, host.count <= 253, host.allSatisfy(allowed.contains) else { return nil }
        return String(host)
    }
}
