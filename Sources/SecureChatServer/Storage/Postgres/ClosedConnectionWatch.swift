import Logging
import NIOConcurrencyHelpers
import NIOCore
import PostgresNIO

/// A query that was still waiting when its connection closed and never got an answer.
struct PostgresConnectionLost: Error, CustomStringConvertible {
    var description: String { "the PostgreSQL connection closed and the query never answered" }
}

/// Answers for work that PostgresNIO would leave waiting forever on a closed connection.
///
/// PostgresNIO 1.33 writes each query to its connection's channel without a write promise. If the
/// channel closed just before (PostgreSQL stopped or restarted), NIO has already taken the
/// connection's handler out of the pipeline, so the write is dropped and the query's promise is
/// never completed. Its caller then waits forever while holding the connection's lease; when that
/// caller was ``MessageWriter``'s batch, every later send waited behind it (about one PostgreSQL
/// restart under traffic in three, before this watch).
///
/// The watch runs the work in a task of its own; once the connection has been closed for
/// ``grace`` and the work has still not finished, the caller gets ``PostgresConnectionLost`` and
/// the stuck task is abandoned. A closed connection can commit nothing more: whatever the work had
/// not committed is rolled back by PostgreSQL, and whatever it had committed stays committed (a
/// retried send finds it and is deduplicated).
final class ClosedConnectionWatch: Sendable {
    static let shared = ClosedConnectionWatch(grace: .seconds(2))

    private struct Watched {
        var connection: PostgresConnection
        var waiters: [UInt64: @Sendable () -> Void] = [:]
    }

    private struct State {
        var nextToken: UInt64 = 0
        var watched: [ObjectIdentifier: Watched] = [:]
    }

    /// How long the work may go on after its connection closed: a query failed by the close
    /// itself reports within microseconds, so only a lost one is still waiting after this.
    let grace: TimeAmount
    private let state = NIOLockedValueBox(State())

    init(grace: TimeAmount) {
        self.grace = grace
    }

    /// Runs `work` on `connection`, or throws ``PostgresConnectionLost`` once the connection has
    /// been closed for ``grace`` without `work` finishing. `timeLimit`: if `work` has not finished
    /// by then, the connection is closed (a half-open connection never closes by itself: its
    /// queries wait until TCP gives up), and the caller hears ``PostgresConnectionLost`` one
    /// ``grace`` later, unless the close makes the work fail sooner.
    func run<Value: Sendable>(
        on connection: PostgresConnection, logger: Logger, timeLimit: TimeAmount? = nil, _ work: @escaping @Sendable () async throws -> Value
    ) async throws -> Value {
        let key = ObjectIdentifier(connection)
        // The work runs in a task of its own: the caller's cancellation is passed on to it.
        let running = NIOLockedValueBox<Task<Void, Never>?>(nil)
        return try await withTaskCancellationHandler {
            try await watch(key, connection, logger, timeLimit, work, running)
        } onCancel: {
            running.withLockedValue { $0 }?.cancel()
        }
    }

    private func watch<Value: Sendable>(
        _ key: ObjectIdentifier, _ connection: PostgresConnection, _ logger: Logger, _ timeLimit: TimeAmount?,
        _ work: @escaping @Sendable () async throws -> Value, _ running: NIOLockedValueBox<Task<Void, Never>?>
    ) async throws -> Value {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Value, any Error>) in
            let answer = NIOLockedValueBox<CheckedContinuation<Value, any Error>?>(continuation)
            let (token, firstSeen) = state.withLockedValue { state -> (UInt64, Bool) in
                let token = state.nextToken
                state.nextToken &+= 1
                let firstSeen = state.watched[key] == nil
                if firstSeen { state.watched[key] = Watched(connection: connection) }
                state.watched[key]?.waiters[token] = {
                    guard let continuation = answer.withLockedValue({ $0.take() }) else { return }
                    logger.warning("a PostgreSQL query never answered after its connection closed; giving up on it")
                    continuation.resume(throwing: PostgresConnectionLost())
                }
                return (token, firstSeen)
            }
            if firstSeen {
                connection.closeFuture.whenComplete { _ in
                    connection.eventLoop.scheduleTask(in: self.grace) { self.abandonWaiters(of: key) }
                }
            }
            let overdue = timeLimit.map { limit in
                connection.eventLoop.scheduleTask(in: limit) {
                    logger.warning("a PostgreSQL transaction did not finish in time; closing its connection", metadata: ["seconds": "\(limit.nanoseconds / 1_000_000_000)"])
                    connection.close().whenFailure { _ in }
                }
            }
            let task = Task {
                let result: Result<Value, any Error>
                do { result = .success(try await work()) } catch { result = .failure(error) }
                overdue?.cancel()
                self.state.withLockedValue { _ = $0.watched[key]?.waiters.removeValue(forKey: token) }
                answer.withLockedValue { $0.take() }?.resume(with: result)
            }
            running.withLockedValue { $0 = task }
            // Cancelled before the task existed: the handler found nothing to cancel.
            if Task.isCancelled { task.cancel() }
        }
    }

    /// Connections being watched, for tests: each is forgotten once closed.
    var watchedConnectionCount: Int { state.withLockedValue { $0.watched.count } }

    private func abandonWaiters(of key: ObjectIdentifier) {
        let waiters = state.withLockedValue { state in state.watched.removeValue(forKey: key)?.waiters.values.map { $0 } ?? [] }
        for abandon in waiters { abandon() }
    }
}

extension PostgresClient {
    /// Leases a connection for `work`, watched by ``ClosedConnectionWatch``.
    func withWatchedConnection<Value: Sendable>(
        logger: Logger, timeLimit: TimeAmount? = nil, _ work: @escaping @Sendable (PostgresConnection) async throws -> Value
    ) async throws -> Value {
        try await withConnection { connection in
            try await ClosedConnectionWatch.shared.run(on: connection, logger: logger, timeLimit: timeLimit) { try await work(connection) }
        }
    }
}
