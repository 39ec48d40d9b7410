import Foundation
import NIOConcurrencyHelpers
import NIOCore
import SecureChatAPI

/// One authenticated device's socket as the rest of the server sees it. Every call hops onto the
/// socket's event loop, where its ``RealtimeSession`` does the work; nothing here blocks.
///
/// Hand-offs are bounded where they can be: live deliveries beyond ``maximumQueuedDeliveries``
/// are not handed over (they are in the database, and the session is told to fetch them instead),
/// and ephemeral frames beyond it are dropped, as a slow device would have missed them anyway.
final class ClientConnection: Sendable {
    /// Live deliveries and ephemeral frames handed to the event loop and not yet processed.
    static let maximumQueuedDeliveries = 2 * APILimits.deliveryWindow

    private struct QueueState {
        var queued = 0
        var catchUpPending = false
    }

    let address: DeviceAddress
    let deviceKey: Int64
    let sessionId: String
    /// When the device connected here (wall clock, milliseconds): the newer of two sockets of
    /// one device on two instances wins.
    let connectedAt = Int64((Date().timeIntervalSince1970 * 1000).rounded(.down))
    private let session: NIOLoopBound<RealtimeSession>
    private let queue = NIOLockedValueBox(QueueState())

    init(address: DeviceAddress, deviceKey: Int64, sessionId: String, session: NIOLoopBound<RealtimeSession>) {
        self.address = address
        self.deviceKey = deviceKey
        self.sessionId = sessionId
        self.session = session
    }

    private var eventLoop: any EventLoop { session.eventLoop }

    /// Freshly committed deliveries for this device; beyond the bound, the session reads them
    /// from the database instead.
    func push(_ entries: [InboxEntry]) {
        let handOver = queue.withLockedValue { state in
            guard state.queued + entries.count <= Self.maximumQueuedDeliveries else { return false }
            state.queued += entries.count
            return true
        }
        guard handOver else {
            wake()
            return
        }
        eventLoop.execute { [session, queue] in
            queue.withLockedValue { $0.queued -= entries.count }
            session.value.receiveLive(entries)
        }
    }

    /// New deliveries are stored that were not handed over (another instance stored them, or the
    /// hand-over queue was full): read them from the database, once however many wake-ups come
    /// before the read starts.
    func wake() {
        let schedule = queue.withLockedValue { state in
            guard !state.catchUpPending else { return false }
            state.catchUpPending = true
            return true
        }
        guard schedule else { return }
        eventLoop.execute { [session, queue] in
            queue.withLockedValue { $0.catchUpPending = false }
            session.value.fetchStored(committedSince: true)
        }
    }

    /// Ephemeral frames are dropped rather than queued without bound.
    func sendEphemeral(_ frame: ServerFrame) {
        let accepted = queue.withLockedValue { state in
            guard state.queued < Self.maximumQueuedDeliveries else { return false }
            state.queued += 1
            return true
        }
        guard accepted else { return }
        eventLoop.execute { [session, queue] in
            queue.withLockedValue { $0.queued -= 1 }
            session.value.relayEphemeral(frame)
        }
    }

    /// A frame outside the delivery sequence (`preKeysLow`).
    func send(_ frame: ServerFrame) {
        eventLoop.execute { [session] in session.value.sendFrame(frame) }
    }

    /// Says why and closes: another connection of the device took over, or its session ended.
    func close(_ code: APIErrorCode, _ message: String) {
        eventLoop.execute { [session] in session.value.close(code, message) }
    }
}
