public import Hummingbird
import HummingbirdCore
public import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ServiceLifecycle
import SecureChatAPI
import Foundation

/// Makes Swift concurrency run on NIO's event loops, saving a thread hop per await that touches a
/// socket. Call it first thing on the main thread, before any task starts.
@discardableResult
public func installEventLoopsAsGlobalExecutor() -> Bool {
    NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
}

/// Builds the whole server from its configuration; `securechat-server` runs it, tests use it live.
///
/// `metrics` is where the server's figures go; `securechat-server` passes the registry it made
/// swift-metrics' backend.
public func buildApplication(
    configuration: ServerConfiguration, logger: Logger, metrics: ServerMetrics = ServerMetrics()
) async throws -> some ApplicationProtocol {
    let tls = try configuration.tlsCertificatePath.map { try ServerTLS.makeContext(certificatePath: $0, keyPath: configuration.tlsKeyPath) }
    let services = try await makeServices(configuration: configuration, logger: logger, metrics: metrics)
    let router = buildRouter(services: services)
    let sweeper = ExpirySweeper(services: services)
    var redirect: [any Service] = []
    let httpsPort = NIOLockedValueBox(configuration.port)
    if let port = configuration.httpRedirectPort, configuration.servesTLS {
        redirect.append(HTTPSRedirectService(host: configuration.host, port: port, httpsPort: httpsPort, logger: logger))
    }
    return Application(
        router: router,
        server: HTTPServerBuilder { responder in
            RealtimeServerChannel(
                responder: responder, services: services, httpIdleTimeout: .milliseconds(Int64(configuration.httpIdleTimeout * 1000)),
                timing: .init(keepAlive: .milliseconds(Int64(configuration.webSocketKeepAlive * 1000))), tls: tls)
        },
        // A restart makes every client reconnect at once: a deep accept queue (the kernel caps it
        // at net.core.somaxconn) keeps that burst from overflowing into SYN retries.
        configuration: .init(
            address: .hostname(configuration.host, port: configuration.port), serverName: "securechat", backlog: 4096),
        // Shut down in reverse: the sweeper stops, the writer commits what it holds, then the
        // database connections close.
        services: [StoreLifecycle(store: services.store, logger: logger)] + (services.backplane.map { [$0] } ?? [])
            + [services.writer, sweeper] + redirect,
        onServerRunning: { channel in
            if let port = channel.localAddress?.port { httpsPort.withLockedValue { $0 = port } }
            logger.info(
                "securechat-server listening",
                metadata: ["address": "\(channel.localAddress?.description ?? "?")", "data": "\(configuration.dataDirectory.path)"])
        },
        logger: logger)
}

func makeServices(configuration: ServerConfiguration, logger: Logger, metrics: ServerMetrics = ServerMetrics()) async throws -> ChatServices {
    try FileManager.default.createDirectory(
        at: configuration.dataDirectory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
    // Secrets first: a refusal (a key file others can read) leaves no database connection open.
    let jwtKeys = try configuration.jwtKeys.map { try KeyRing.fromEnvironment($0, name: "SECURECHAT_JWT_KEYS") }
        ?? KeyRing.load(folder: configuration.jwtKeysDirectory)
    let atRestKeys = try configuration.atRestKeys.map { try KeyRing.fromEnvironment($0, name: "SECURECHAT_AT_REST_KEYS") }
        ?? KeyRing.load(folder: configuration.atRestKeysDirectory)
    let metricsToken = try configuration.metricsToken ?? KeyRing.loadOrCreateToken(at: configuration.metricsTokenPath)
    let store = try await openStore(configuration: configuration, logger: logger)
    let hub = DeliveryHub()
    // Several instances on one PostgreSQL database reach each other's sockets through it.
    var backplane: PostgresBackplane?
    if let postgres = store as? PostgresChatStore {
        let link = PostgresBackplane(
            client: postgres.client, channel: postgres.notificationChannel, hub: hub, metrics: metrics, logger: logger)
        hub.attach(link)
        postgres.announceDeliveries(as: hub.instanceId)
        backplane = link
    }
    return ChatServices(
        configuration: configuration,
        store: store,
        cipher: AtRestCipher(currentKeyId: atRestKeys.currentId, keys: atRestKeys.keys),
        tokens: await AccessTokens(keys: jwtKeys, lifetime: configuration.accessTokenLifetime),
        passwords: Passwords(cost: configuration.bcryptCost),
        hub: hub,
        backplane: backplane,
        writer: MessageWriter(store: store, hub: hub, storeAnnouncesDeliveries: backplane != nil, metrics: metrics, logger: logger),
        attachments: try AttachmentFiles(directory: configuration.attachmentsDirectory),
        limits: RateLimiters(configuration.rateLimits, metrics: metrics),
        metrics: metrics,
        metricsToken: metricsToken,
        logger: logger)
}

/// The configured database, migrated.
func openStore(configuration: ServerConfiguration, logger: Logger) async throws -> any ChatStore {
    if let url = configuration.databaseURL {
        return try await PostgresChatStore.connect(
            url: url, batchTimeLimit: .milliseconds(Int64(configuration.databaseBatchTimeout * 1000)), logger: logger)
    }
    return try SQLiteChatStore(path: configuration.sqlitePath.path)
}

/// Every route of the API under `/v1`, the WebSocket at `/v1/ws`, health checks, and the web client.
func buildRouter(services: ChatServices) -> Router<ChatRequestContext> {
    let router = Router(context: ChatRequestContext.self)
    router.add(middleware: RequestObservationMiddleware(services: services))
    router.add(
        middleware: SecurityHeadersMiddleware(
            strictTransportSecurity: services.configuration.servesTLS || services.configuration.strictTransportSecurity))
    router.add(middleware: CrossOriginMiddleware(allowed: services.configuration.allowedOrigins))
    router.add(middleware: ErrorBodyMiddleware(metrics: services.metrics))
    router.add(middleware: ClientRateLimitMiddleware(services: services))
    if let web = services.configuration.webDirectory {
        router.add(middleware: FileMiddleware(web.path, searchForIndexHtml: true))
    }
    HealthController(services: services).addRoutes(to: router)
    MetricsController(metrics: services.metrics, token: Array(services.metricsToken.utf8)).addRoutes(to: router)
    let v1 = router.group("v1")
    AccountController(services: services).addPublicRoutes(to: v1)
    // The upgrade itself is taken by ``RealtimeServerChannel`` before routing; a plain request
    // here did not ask for one.
    v1.get("ws") { _, _ -> Response in
        throw APIFailure(
            HTTPResponse.Status(code: 426, reasonPhrase: "Upgrade Required"), .badRequest,
            "connect with a WebSocket upgrade (Sec-WebSocket-Version 13)")
    }
    let authenticated = v1.add(middleware: BearerAuthMiddleware(services: services)).group(context: AuthenticatedContext.self)
        .add(middleware: AccountRateLimitMiddleware(services: services))
    AccountController(services: services).addRoutes(to: authenticated)
    DeviceController(services: services).addRoutes(to: authenticated)
    RoomController(services: services).addRoutes(to: authenticated)
    AttachmentController(services: services).addRoutes(to: authenticated)
    CallController(services: services).addRoutes(to: authenticated)
    return router
}

/// `GET /health`: the process answers. `GET /ready`: and its database does too.
struct HealthController {
    let services: ChatServices

    func addRoutes(to router: Router<ChatRequestContext>) {
        router.get("health") { _, _ in JSONBody(HealthStatus(status: "ok")) }
        router.get("ready") { _, _ in
            guard await Self.answers(within: .seconds(2), services.store.ping) else {
                throw APIFailure(.serviceUnavailable, .unavailable, "the database is not reachable")
            }
            return JSONBody(HealthStatus(status: "ready"))
        }
    }

    /// Whether `operation` succeeds within `limit`. A database that is down may not refuse a
    /// query: its pool waits for a connection. A probe must answer anyway, so it stops waiting
    /// (the query itself finishes or fails on its own later).
    static func answers(within limit: Duration, _ operation: @escaping @Sendable () async throws -> Void) async -> Bool {
        let outcome = NIOLockedValueBox<CheckedContinuation<Bool, Never>?>(nil)
        let finish = { @Sendable (answer: Bool) in
            outcome.withLockedValue { continuation in
                continuation?.resume(returning: answer)
                continuation = nil
            }
        }
        return await withCheckedContinuation { continuation in
            outcome.withLockedValue { $0 = continuation }
            Task {
                do {
                    try await operation()
                    finish(true)
                } catch {
                    finish(false)
                }
            }
            Task {
                try? await Task.sleep(for: limit)
                finish(false)
            }
        }
    }
}

struct HealthStatus: Encodable, Sendable {
    let status: String
}

/// Keeps the store open while the server runs, gives it its upkeep, and closes it last.
struct StoreLifecycle: Service, CustomStringConvertible {
    var description: String { "StoreLifecycle" }
    let store: any ChatStore
    let logger: Logger

    func run() async throws {
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    try await store.maintain()
                } catch {
                    logger.warning("store maintenance failed", metadata: ["error": "\(error)"])
                }
                try await Task.sleep(for: store.maintenanceInterval)
            }
        }
        await store.shutdown()
    }
}

/// Deletes expired messages, events, sessions and attachments every `sweepInterval`, and closes
/// sockets whose session has ended.
struct ExpirySweeper: Service, CustomStringConvertible {
    var description: String { "ExpirySweeper" }
    let services: ChatServices

    func run() async throws {
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    let removed = try await services.store.deleteExpired(now: services.nowMilliseconds)
                    services.attachments.delete(removed)
                    // A socket outlives its access token; it must not outlive its session or its
                    // device (whose removal another instance may have signalled while this one
                    // was not listening).
                    for connection in services.hub.connections {
                        switch try await services.store.socketDevice(
                            sessionId: connection.sessionId, userId: connection.address.userId, deviceId: connection.address.deviceId,
                            now: services.nowMilliseconds)
                        {
                        case .sessionEnded: connection.close(.unauthorized, "session ended")
                        case .unknownDevice: connection.close(.unknownDevice, "this device was removed")
                        case .device: break
                        }
                    }
                } catch {
                    services.logger.error("expiry sweep failed", metadata: ["error": "\(error)"])
                }
                // Bookkeeping after the sockets, each on its own: a slow count must not keep a
                // revoked session's socket open.
                do {
                    try await services.store.deleteAudit(
                        before: services.nowMilliseconds - Milliseconds(services.configuration.auditRetention * 1000))
                    services.metrics.deliveriesPending.set(Double(try await services.store.pendingDeliveryCount()))
                } catch {
                    services.logger.error("audit clean-up or delivery count failed", metadata: ["error": "\(error)"])
                }
                try await Task.sleep(for: .seconds(services.configuration.sweepInterval))
            }
        }
    }
}
