import Logging
import NIOConcurrencyHelpers
import PostgresNIO
import ServiceLifecycle

/// The instances sharing one PostgreSQL database tell each other about devices through
/// LISTEN/NOTIFY on one channel (``ClusterSignal``): no cluster protocol of our own, no other
/// service to run. Each instance listens on one pooled connection; while that connection is
/// being re-established, signals are missed, so every connected device then re-reads its stored
/// deliveries (``DeliveryHub/wakeAll()``). Signals are sent in order by one task, as many as are
/// waiting in one statement (a reconnection storm is thousands of `claimed` signals).
final class PostgresBackplane: Backplane, Service {
    private let client: PostgresClient
    private let channel: String
    private let hub: DeliveryHub
    private let logger: Logger
    /// Payloads waiting to be sent; `wakeUps` says there are some.
    private let pending = NIOLockedValueBox<[String]>([])
    private let wakeUps: AsyncStream<Void>
    private let wakeUpContinuation: AsyncStream<Void>.Continuation

    /// Payloads per statement: each is at most ~8 KB.
    private static let payloadsPerStatement = 256
    /// Beyond this many unsent payloads new ones are dropped (the database is unreachable): they
    /// are hints, and every listener re-reads everything when it reconnects.
    private static let maximumPending = 100_000

    init(client: PostgresClient, channel: String, hub: DeliveryHub, logger: Logger) {
        self.client = client
        self.channel = channel
        self.hub = hub
        self.logger = logger
        (wakeUps, wakeUpContinuation) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    func publish(_ signal: ClusterSignal) {
        let payloads = ClusterMessage.payloads(signal, from: hub.instanceId)
        if payloads.isEmpty { logger.debug("a signal too large for NOTIFY was not sent to the other instances") }
        guard !payloads.isEmpty else { return }
        let accepted = pending.withLockedValue { pending in
            guard pending.count + payloads.count <= Self.maximumPending else { return false }
            pending += payloads
            return true
        }
        if accepted { wakeUpContinuation.yield() } else { logger.warning("too many signals waiting for the database; one was dropped") }
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
                    let batch = Array(pending.prefix(Self.payloadsPerStatement))
                    pending.removeFirst(batch.count)
                    return batch
                }
                if batch.isEmpty { break }
                // A few tries: a signal is a hint (deliveries are stored), not worth holding up the rest.
                for attempt in 0..<3 {
                    do {
                        try await client.query("SELECT pg_notify(\(channel), p) FROM unnest(\(batch)::text[]) AS p", logger: logger)
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

    private func listenLoop() async {
        var failures = 0
        while !Task.isCancelled {
            do {
                try await client.withConnection { connection in
                    try await connection.listen(on: self.channel) { notifications in
                        failures = 0
                        self.logger.info("listening for the other instances", metadata: ["channel": "\(self.channel)"])
                        self.hub.wakeAll()
                        for try await notification in notifications {
                            guard let message = ClusterMessage.decode(notification.payload) else {
                                self.logger.warning("an unreadable signal on the instances' channel was ignored")
                                continue
                            }
                            self.hub.apply(message)
                        }
                    }
                }
            } catch {
                if Task.isCancelled { return }
                failures += 1
                logger.warning("listening for the other instances failed; retrying", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: .milliseconds(min(5_000, 100 << min(failures, 6))))
        }
    }
}
