import Logging
import NIOConcurrencyHelpers
import ServiceLifecycle
import SecureChatAPI

/// Commits sends and acknowledgements in batches: one transaction, hence one fsync, for everything
/// that arrived while the previous transaction was being committed ("group commit").
///
/// A sender's `accepted` is written only after its batch is durable, and batches are committed in
/// arrival order, so each connection's sends keep their order. A failed batch breaks the
/// ``SendChain`` of every connection it held a send of: that connection's later sends, queued or
/// still to come, are refused too, and its session closes the socket. The client sends them all
/// again, in order, on its next connection; without this, a send queued behind a failed one could
/// be committed before the failed one's retry. After each commit the deliveries go to
/// ``DeliveryHub`` for the devices that are connected. On graceful shutdown the writer commits what
/// it holds before it returns.
final class MessageWriter: Service, Sendable {
    typealias Completion = @Sendable (Result<SendOutcome, any Error>) -> Void

    private struct Job {
        var send: PendingSend
        var chain: SendChain
        var completion: Completion
    }

    private static var chainBroken: APIFailure {
        APIFailure(.serviceUnavailable, .unavailable, "an earlier message on this connection could not be stored; send again, in order")
    }

    private struct State {
        var jobs: [Job] = []
        var acks: [Int64: Int64] = [:]
        /// Acknowledgements taken into the transaction being committed: still not visible to reads.
        var committingAcks: [Int64: Int64] = [:]
        var wakeUp: CheckedContinuation<Void, Never>?
        var stopping = false
        /// A batch failed since the last commit. A failure can be ambiguous (the connection closed
        /// after PostgreSQL committed but before it said so): its deliveries may be stored without
        /// having been handed to the sockets, so after the next commit every socket reads its queue.
        var failedSinceLastCommit = false
    }

    private let store: any ChatStore
    private let hub: DeliveryHub
    private let metrics: ServerMetrics
    private let logger: Logger
    private let state = NIOLockedValueBox(State())
    /// The most sends committed in one transaction: bounds the transaction's time and memory.
    static let maximumBatch = 1024

    /// Whether the store tells the other instances about appended deliveries itself (PostgreSQL,
    /// inside the transaction): then the hub only hands them to this instance's sockets.
    private let storeAnnouncesDeliveries: Bool

    init(store: any ChatStore, hub: DeliveryHub, storeAnnouncesDeliveries: Bool = false, metrics: ServerMetrics, logger: Logger) {
        self.storeAnnouncesDeliveries = storeAnnouncesDeliveries
        self.metrics = metrics
        self.store = store
        self.hub = hub
        self.logger = logger
    }

    /// Queues a send of the connection `chain` stands for; `completion` runs once it is durable or
    /// refused, in queue order.
    func enqueue(_ send: PendingSend, chain: SendChain, completion: @escaping Completion) {
        let refusal = state.withLockedValue { state -> APIFailure? in
            if state.stopping { return APIFailure(.serviceUnavailable, .unavailable, "the server is shutting down; send again") }
            if chain.isBroken { return Self.chainBroken }
            state.jobs.append(Job(send: send, chain: chain, completion: completion))
            return nil
        }
        if let refusal {
            completion(.failure(refusal))
            return
        }
        wake()
    }

    /// Queues an acknowledgement; several for one device collapse into the highest.
    func acknowledge(deviceKey: Int64, upTo seq: Int64) {
        state.withLockedValue { state in
            state.acks[deviceKey] = max(state.acks[deviceKey] ?? 0, seq)
        }
        wake()
    }

    /// The highest acknowledgement of a device not yet committed, or 0. A reconnecting device
    /// resumes after it: a read of its queue can run before the acknowledgement's commit, and
    /// would otherwise send again what the device already acknowledged.
    func pendingAcknowledgement(deviceKey: Int64) -> Int64 {
        state.withLockedValue { state in
            max(state.acks[deviceKey] ?? 0, state.committingAcks[deviceKey] ?? 0)
        }
    }

    private func wake() {
        let continuation = state.withLockedValue { state -> CheckedContinuation<Void, Never>? in
            defer { state.wakeUp = nil }
            return state.wakeUp
        }
        continuation?.resume()
    }

    func run() async throws {
        await withGracefulShutdownHandler {
            while true {
                let (jobs, acks, stopping) = await nextBatch()
                if jobs.isEmpty && acks.isEmpty {
                    if stopping { return }
                    continue
                }
                await commit(jobs, acks: acks)
            }
        } onGracefulShutdown: {
            self.state.withLockedValue { $0.stopping = true }
            self.wake()
        }
    }

    private func nextBatch() async -> ([Job], [Int64: Int64], Bool) {
        while true {
            var refused: [Job] = []
            let taken = state.withLockedValue { state -> ([Job], [Int64: Int64], Bool)? in
                // Sends queued behind a failed one of their connection are not committed. Taken out
                // of the whole queue first: an empty batch then means an empty queue (shutdown
                // returns only then), and batches stay full.
                refused = state.jobs.filter(\.chain.isBroken)
                if !refused.isEmpty { state.jobs.removeAll(where: \.chain.isBroken) }
                if state.jobs.isEmpty && state.acks.isEmpty && !state.stopping { return nil }
                let count = min(state.jobs.count, Self.maximumBatch)
                let jobs = Array(state.jobs.prefix(count))
                state.jobs.removeFirst(count)
                let acks = state.acks
                state.acks = [:]
                state.committingAcks = acks
                return (jobs, acks, state.stopping)
            }
            for job in refused { job.completion(.failure(Self.chainBroken)) }
            if let taken { return taken }
            await withCheckedContinuation { continuation in
                let resumeNow = state.withLockedValue { state -> Bool in
                    if !state.jobs.isEmpty || !state.acks.isEmpty || state.stopping { return true }
                    state.wakeUp = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        }
    }

    private func commit(_ jobs: [Job], acks: [Int64: Int64]) async {
        do {
            let started = ContinuousClock.now
            let outcomes = try await store.append(jobs.map(\.send), acknowledging: acks)
            metrics.messageBatchCommit.record(ContinuousClock.now - started)
            state.withLockedValue { $0.committingAcks = [:] }
            for (job, outcome) in zip(jobs, outcomes) { job.completion(.success(outcome)) }
            var deliveries: [InboxEntry] = []
            var direct: Int64 = 0
            var room: Int64 = 0
            for (job, outcome) in zip(jobs, outcomes) {
                guard case .accepted(_, _, let duplicate, let entries) = outcome else { continue }
                deliveries += entries
                if duplicate { continue }
                if case .room = job.send.target { room += 1 } else { direct += 1 }
            }
            if direct > 0 { metrics.messagesAccepted.increment(by: direct) }
            if room > 0 { metrics.roomMessagesAccepted.increment(by: room) }
            if !deliveries.isEmpty { hub.deliver(deliveries, announced: storeAnnouncesDeliveries) }
            let recovered = state.withLockedValue { state in
                defer { state.failedSinceLastCommit = false }
                return state.failedSinceLastCommit
            }
            if recovered { hub.wakeAll() }
        } catch {
            // Nothing of the batch is stored: each sender hears so and retries with the same id.
            logger.error("message batch failed to commit", metadata: ["error": "\(error)", "sends": "\(jobs.count)"])
            // Acknowledgements are only clean-up: keep them for the next batch.
            state.withLockedValue { state in
                state.acks.merge(acks) { max($0, $1) }
                state.committingAcks = [:]
                state.failedSinceLastCommit = true
            }
            for job in jobs {
                // Before the completion: a send the session makes in reaction must find it broken.
                job.chain.breakChain()
                job.completion(.failure(APIFailure(.serviceUnavailable, .unavailable, "storing the message failed; send again")))
            }
        }
    }
}

/// The sends of one connection, in order. Broken once one of them failed to be stored: none of
/// the connection's later sends may be committed before the client has sent that one again.
final class SendChain: Sendable {
    private let broken = NIOLockedValueBox(false)

    init() {}

    var isBroken: Bool { broken.withLockedValue { $0 } }

    func breakChain() {
        broken.withLockedValue { $0 = true }
    }
}
