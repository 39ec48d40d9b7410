import Foundation
public import Prometheus

/// What the server counts, exported at `/metrics` in the Prometheus text format.
///
/// Each application has its own registry, so that several servers in one process (the tests) keep
/// separate figures; `securechat-server` also makes it swift-metrics' backend, so what the
/// dependencies report through swift-metrics is exported with it. Labels have a fixed, small set
/// of values (route patterns, never paths or user ids): each value is a time series.
public final class ServerMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry

    let webSocketConnections: Gauge
    let messagesAccepted: Counter
    let roomMessagesAccepted: Counter
    let deliveriesSent: Counter
    let deliveriesPending: Gauge
    let deliveryLatency: DurationHistogram
    let messageBatchCommit: DurationHistogram
    let inboxRead: DurationHistogram
    let backplaneSignalsSent: Counter
    let backplaneSignalsReceived: Counter
    let webSocketBytesReceived: Counter
    let webSocketBytesSent: Counter
    let webSocketsCompressed: Counter
    let webSocketsUncompressed: Counter

    /// Seconds from a message's acceptance to its delivery frame being written: live deliveries
    /// land in the first buckets, deliveries to devices that were offline in the last ones.
    static let latencyBuckets: [Duration] = [
        .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25),
        .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(5), .seconds(30),
        .seconds(300), .seconds(3600),
    ]
    static let databaseBuckets: [Duration] = [
        .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10),
        .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .seconds(1), .seconds(5),
    ]
    static let httpBuckets: [Duration] = [
        .milliseconds(1), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
        .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2), .seconds(5), .seconds(30),
    ]

    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        func descriptor(_ name: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
            MetricNameDescriptor(namespace: "securechat", metricName: name, unitName: unit, helpText: help)
        }
        registry.makeGauge(
            descriptor: descriptor("build", "info", "The running build: version and Swift compiler."),
            labels: [("version", ServerBuild.version), ("swift", ServerBuild.swiftVersion)]
        ).set(to: 1.0)
        webSocketConnections = registry.makeGauge(
            descriptor: descriptor("websocket_connections", "", "Authenticated WebSockets open on this instance."))
        let accepted = descriptor("messages_accepted", "total", "Messages stored and acknowledged to their sender.")
        messagesAccepted = registry.makeCounter(descriptor: accepted, labels: [("kind", "direct")])
        roomMessagesAccepted = registry.makeCounter(descriptor: accepted, labels: [("kind", "room")])
        deliveriesSent = registry.makeCounter(
            descriptor: descriptor("deliveries_sent", "total", "Deliveries (messages and room events) written to a device's socket."))
        deliveriesPending = registry.makeGauge(
            descriptor: descriptor(
                "deliveries_pending", "", "Deliveries stored and not yet acknowledged by their device (all instances; counted each sweep)."))
        deliveryLatency = registry.makeDurationHistogram(
            descriptor: descriptor("delivery_latency", "seconds", "From a message's acceptance to its delivery frame being written."),
            labels: [], buckets: Self.latencyBuckets)
        let database = descriptor("database_duration", "seconds", "Time spent in the database, by operation.")
        messageBatchCommit = registry.makeDurationHistogram(
            descriptor: database, labels: [("operation", "message_batch")], buckets: Self.databaseBuckets)
        inboxRead = registry.makeDurationHistogram(descriptor: database, labels: [("operation", "inbox_read")], buckets: Self.databaseBuckets)
        let signals = descriptor("backplane_signals", "total", "Signals exchanged with the other instances through PostgreSQL.")
        backplaneSignalsSent = registry.makeCounter(descriptor: signals, labels: [("direction", "sent")])
        backplaneSignalsReceived = registry.makeCounter(descriptor: signals, labels: [("direction", "received")])
        let bytes = descriptor(
            "websocket_bytes", "total", "WebSocket bytes (frames as they travel, compressed or not, before TLS), by direction.")
        webSocketBytesReceived = registry.makeCounter(descriptor: bytes, labels: [("direction", "received")])
        webSocketBytesSent = registry.makeCounter(descriptor: bytes, labels: [("direction", "sent")])
        let upgrades = descriptor("websocket_upgrades", "total", "WebSocket upgrades, by whether permessage-deflate was agreed.")
        webSocketsCompressed = registry.makeCounter(descriptor: upgrades, labels: [("compression", "deflate")])
        webSocketsUncompressed = registry.makeCounter(descriptor: upgrades, labels: [("compression", "none")])
        // Series that count rare events exist from the start, at zero: "none yet" is a value a
        // dashboard or an alert can compare with, "no data" is not.
        for kind in ["password", "token", "token_expired", "refresh_token_reused", "room_password"] {
            registry.makeCounter(descriptor: Self.authenticationFailures, labels: [("kind", kind)]).increment(by: Int64(0))
        }
        for result in ["ok", "refused"] {
            registry.makeCounter(descriptor: Self.webSocketAuthentications, labels: [("result", result)]).increment(by: Int64(0))
        }
        for limit in Self.limitNames {
            registry.makeCounter(descriptor: Self.rateLimitedDescriptor, labels: [("limit", limit)]).increment(by: Int64(0))
        }
    }

    /// The `limit` label values of `securechat_rate_limited_total`.
    static let limitNames = [
        "requests_per_address", "requests_per_account", "password_checks_per_address", "rooms_created_per_account",
        "turn_credentials_per_account", "failed_logins", "failed_logins_per_account", "wrong_room_passwords", "socket_budget", "sockets_per_address",
    ]
    private static var rateLimitedDescriptor: MetricNameDescriptor {
        MetricNameDescriptor(
            namespace: "securechat", metricName: "rate_limited", unitName: "total",
            helpText: "Requests and frames refused or slowed down by a rate limit.")
    }

    private static var authenticationFailures: MetricNameDescriptor {
        MetricNameDescriptor(
            namespace: "securechat", metricName: "authentication_failures", unitName: "total",
            helpText: "Failed authentications, by what was presented.")
    }

    private static var webSocketAuthentications: MetricNameDescriptor {
        MetricNameDescriptor(
            namespace: "securechat", metricName: "websocket_authentications", unitName: "total", helpText: "WebSocket hellos, by outcome.")
    }

    /// A refusal or slow-down by a rate limit: `limit` is one of ``limitNames``.
    func rateLimited(_ limit: String) {
        registry.makeCounter(descriptor: Self.rateLimitedDescriptor, labels: [("limit", limit)]).increment()
    }

    /// A failed authentication: `kind` is `password` (login), `token` (a bearer token or a socket's
    /// hello), `token_expired`, `refresh_token_reused` or `room_password`.
    func authenticationFailed(_ kind: String) {
        registry.makeCounter(descriptor: Self.authenticationFailures, labels: [("kind", kind)]).increment()
    }

    func webSocketAuthenticated(succeeded: Bool) {
        registry.makeCounter(descriptor: Self.webSocketAuthentications, labels: [("result", succeeded ? "ok" : "refused")]).increment()
    }

    /// One HTTP request: `route` is the matched route pattern (`/v1/rooms/{code}`), never the path.
    func httpRequest(method: String, route: String, status: Int, duration: Duration) {
        registry.makeCounter(
            descriptor: MetricNameDescriptor(
                namespace: "securechat", metricName: "http_requests", unitName: "total", helpText: "HTTP requests answered, by route and status."),
            labels: [("method", method), ("route", route), ("status", String(status))]
        ).increment()
        registry.makeDurationHistogram(
            descriptor: MetricNameDescriptor(
                namespace: "securechat", metricName: "http_request_duration", unitName: "seconds", helpText: "Time to answer an HTTP request, by route."),
            labels: [("method", method), ("route", route)], buckets: Self.httpBuckets
        ).record(duration)
    }

    /// The exposition text.
    func render() -> [UInt8] {
        var buffer: [UInt8] = []
        buffer.reserveCapacity(16 * 1024)
        registry.emit(into: &buffer)
        return buffer
    }
}

/// What this binary is, for `securechat_build_info`.
enum ServerBuild {
    static let version = "0.6.0"
    static var swiftVersion: String {
        #if compiler(>=6.3)
            "6.3"
        #elseif compiler(>=6.2)
            "6.2"
        #else
            "older"
        #endif
    }
}
