import Foundation
import Logging
import NIOConcurrencyHelpers
import PostgresNIO
import ServiceLifecycle

/// The instances sharing one PostgreSQL database tell each other about devices through
/// LISTEN/NOTIFY (``ClusterSignal``): no cluster protocol of our own, no other service to run.
///
/// Each instance listens on one pooled connection. A connection that dies without an error (a
/// half-open socket behind a NAT) would leave the instance deaf for good, so the listener sends
/// itself a heartbeat every ``heartbeatInterval`` and reconnects when one does not come back in
/// time. While the listener is being re-established, signals are missed: once it listens again,
/// every device connected here re-reads its stored deliveries (``DeliveryHub/wakeAll()``).
/// Signals are sent in order by one task, as many as are waiting in one statement (a reconnection
/// storm is thousands of `claimed` signals). LISTEN needs a session of its own: behind PgBouncer,
/// use session pooling.
final class PostgresBackplane: Backplane, Service {
    static let heartbeatInterval: Duration = .seconds(10)
    /// Missing heartbeats for this long means the listening connection is gone.
    static let heartbeatTimeout: TimeInterval = 35

    private let client: PostgresClient
    private let channel: String
    private let hub: DeliveryHub
    private let metrics: ServerMetrics
    private let logger: Logger
    /// Payloads waiting to be sent and their bytes; `wakeUps` says there are some.
    private let pending = NIOLockedValueBox<(payloads: [String], bytes: Int)>(([], 0))
    private let wakeUps: AsyncStream<Void>
    private let wakeUpContinuation: AsyncStream<Void>.Continuation
    /// When this instance last heard its own heartbeat.
    private let lastHeartbeat = NIOLockedValueBox(Date())

    /// Payloads per statement: each is at most ~8 KB.
    private static let payloadsPerStatement = 256
    /// Beyond this many unsent bytes (the database is unreachable) new signals are dropped: they
    /// are hints, and every listener re-reads everything when it listens again.
    private static let maximumPendingBytes = 32 << 20

    init(client: PostgresClient, channel: String, hub: DeliveryHub, metrics: ServerMetrics, logger: Logger) {
        self.client = client
        self.metrics = metrics
        self.channel = channel
        self.hub = hub
        self.logger = logger
        (wakeUps, wakeUpContinuation) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    func publish(_ signal: ClusterSignal) {
        let payloads = ClusterMessage.payloads(signal, from: hub.instanceId)
        guard !payloads.isEmpty else {
            logger.debug("a signal too large for NOTIFY was not sent to the other instances")
            return
        }
        let size = payloads.reduce(0) { $0 + $1.utf8.count }
        let accepted = pending.withLockedValue { pending in
            guard pending.bytes + size <= Self.maximumPendingBytes else { return false }
            pending.payloads += payloads
            pending.bytes += size
            return true
        }
        if accepted {
            metrics.backplaneSignalsSent.increment(by: Int64(payloads.count))
            wakeUpContinuation.yield()
        } else { logger.warning("too many signals waiting for the database; one was dropped") }
    }

    func run() async throws {
        await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                group.addTask { await self.sendLoop() }
                group.addTask { await self.listenLoop() }
            }
        }
        wakeUpContinuation.finish()
    }

    private func sendLoop() async {
        for await _ in wakeUps {
            while true {
                let batch = pending.withLockedValue { pending -> [String] in
                    let batch = Array(pending.payloads.prefix(Self.payloadsPerStatement))
                    pending.payloads.removeFirst(batch.count)
                    pending.bytes -= batch.reduce(0) { $0 + $1.utf8.count }
                    return batch
                }
                if batch.isEmpty { break }
                // A few tries: a signal is a hint (deliveries are stored), not worth holding up the rest.
                for attempt in 0..<3 {
                    do {
                        // Read to the end: an error raised while the statement runs comes with its rows.
                        let logger = logger
                        let channel = channel
                        _ = try await client.withWatchedConnection(logger: logger) { connection in
                            try await connection.query("SELECT pg_notify(\(channel), p) FROM unnest(\(batch)::text[]) AS p", logger: logger)
                                .collect()
                        }
                        break
                    } catch {
                        if Task.isCancelled { return }
                        logger.warning("sending signals to the other instances failed", metadata: ["error": "\(error)", "attempt": "\(attempt + 1)"])
                        try? await Task.sleep(for: .milliseconds(100 << attempt))
                    }
                }
            }
        }
    }

    private struct ListenerStalled: Error {}

    private func listenLoop() async {
        var failures = 0
        while !Task.isCancelled {
            do {
                try await client.withConnection { connection in
                    try await connection.listen(on: self.channel) { notifications in
                        failures = 0
                        self.lastHeartbeat.withLockedValue { $0 = Date() }
                        self.logger.info("listening for the other instances", metadata: ["channel": "\(self.channel)"])
                        self.hub.wakeAll()
                        try await withThrowingTaskGroup(of: Void.self) { group in
                            group.addTask {
                                for try await notification in notifications { self.receive(notification.payload) }
                            }
                            group.addTask { try await self.watchHeartbeats() }
                            // Either ends only by failing (or when cancelled): then both stop.
                            try await group.next()
                            group.cancelAll()
                        }
                    }
                }
            } catch {
                if Task.isCancelled { return }
                failures += 1
                logger.warning("listening for the other instances failed; listening again", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: .milliseconds(min(5_000, 100 << min(failures, 6))))
        }
    }

    private func receive(_ payload: String) {
        guard let message = ClusterMessage.decode(payload) else {
            logger.warning("an unreadable signal on the instances' channel was ignored")
            return
        }
        metrics.backplaneSignalsReceived.increment()
        if case .heartbeat = message.signal {
            if message.from == hub.instanceId { lastHeartbeat.withLockedValue { $0 = Date() } }
            return
        }
        hub.apply(message)
    }

    /// Sends a heartbeat to itself every interval; throws when they stop coming back.
    private func watchHeartbeats() async throws {
        while true {
            publish(.heartbeat)
            try await Task.sleep(for: Self.heartbeatInterval)
            let silence = Date().timeIntervalSince(lastHeartbeat.withLockedValue { $0 })
            if silence > Self.heartbeatTimeout {
                logger.warning("the listening connection went quiet", metadata: ["seconds": "\(Int(silence))"])
                throw ListenerStalled()
            }
        }
    }
}
