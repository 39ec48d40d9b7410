import NIOConcurrencyHelpers
import SecureChatAPI

/// One authenticated device's socket as the rest of the server sees it: a queue of things to
/// send, drained in order by the socket's own writer task (``DeliveryWriter``).
///
/// The queue is bounded where it can be: live deliveries beyond ``maximumQueuedDeliveries`` are
/// not queued (they are in the database, and a `catchUp` marker makes the writer fetch them),
/// and ephemeral frames beyond it are dropped, as a slow device would have missed them anyway.
final class ClientConnection: Sendable {
    enum Outgoing: Sendable {
        /// A frame to write as is.
        case frame(ServerFrame)
        /// Freshly committed deliveries; written if they continue the sequence, else fetched.
        case live([InboxEntry])
        /// Deliveries were not queued: fetch them from the database.
        case catchUp
        /// The device acknowledged up to this sequence number: the delivery window moves on.
        case acknowledged(Int64)
        /// Say why and close: another connection of the device took over, or its session ended.
        case close(APIErrorCode, String)
    }

    /// Queued live deliveries and ephemeral frames at most: twice the delivery window.
    static let maximumQueuedDeliveries = 2 * APILimits.deliveryWindow

    private struct QueueState {
        var queued = 0
        var catchUpPending = false
    }

    let address: DeviceAddress
    let deviceKey: Int64
    let sessionId: String
    private let continuation: AsyncStream<Outgoing>.Continuation
    let outgoing: AsyncStream<Outgoing>
    private let queue = NIOLockedValueBox(QueueState())

    init(address: DeviceAddress, deviceKey: Int64, sessionId: String) {
        self.address = address
        self.deviceKey = deviceKey
        self.sessionId = sessionId
        (outgoing, continuation) = AsyncStream.makeStream(of: Outgoing.self)
    }

    func push(_ entries: [InboxEntry]) {
        let item: Outgoing? = queue.withLockedValue { state in
            if state.queued + entries.count <= Self.maximumQueuedDeliveries {
                state.queued += entries.count
                return .live(entries)
            }
            if state.catchUpPending { return nil }
            state.catchUpPending = true
            return .catchUp
        }
        if let item { continuation.yield(item) }
    }

    /// Ephemeral frames are dropped rather than queued without bound.
    func sendEphemeral(_ frame: ServerFrame) {
        let accepted = queue.withLockedValue { state in
            guard state.queued < Self.maximumQueuedDeliveries else { return false }
            state.queued += 1
            return true
        }
        if accepted { continuation.yield(.frame(frame)) }
    }

    /// Called by the writer for each dequeued item, to release its place in the bound.
    func dequeued(_ item: Outgoing) {
        switch item {
        case .live(let entries): queue.withLockedValue { $0.queued -= entries.count }
        case .catchUp: queue.withLockedValue { $0.catchUpPending = false }
        case .frame(.ephemeral): queue.withLockedValue { $0.queued -= 1 }
        case .frame, .acknowledged, .close: break
        }
    }

    func send(_ frame: ServerFrame) { continuation.yield(.frame(frame)) }
    func acknowledged(_ seq: Int64) { continuation.yield(.acknowledged(seq)) }
    func close(_ code: APIErrorCode, _ message: String) { continuation.yield(.close(code, message)) }
    func finish() { continuation.finish() }
}
