import SecureChatAPI

/// A socket's delivery bookkeeping, without the socket: which sequence numbers went out, which
/// came back acknowledged, whether the database may hold more than was sent, and the live
/// deliveries that arrived while a read of the database was under way.
///
/// Invariants it keeps for ``RealtimeSession``: `lastAcknowledged <= lastSent`; at most
/// `capacity` (``APILimits/deliveryWindow``) deliveries are unacknowledged; a live delivery goes
/// out only when it is the next sequence number and nothing stored comes before it.
struct DeliveryWindow {
    /// Deliveries that may be unacknowledged at once.
    let capacity: Int
    /// Live deliveries held during a read; beyond them the read is repeated instead.
    let heldLimit: Int
    private(set) var lastSent: Int64
    private(set) var lastAcknowledged: Int64
    /// The database may hold deliveries this socket has not sent: read it before sending live ones.
    private(set) var behind = true
    private(set) var fetching = false
    /// A wake-up (or live deliveries not handed over) came during a read whose query may predate their commit.
    private var fetchAgain = false
    /// Live deliveries that arrived during a read: applied after it, as they may follow it.
    private var heldLive: [InboxEntry] = []
    private var heldLiveOverflowed = false
    private var announcedCaughtUp = false

    init(
        resumeAfter: Int64, capacity: Int = APILimits.deliveryWindow, heldLimit: Int = ClientConnection.maximumQueuedDeliveries
    ) {
        lastSent = resumeAfter
        lastAcknowledged = resumeAfter
        self.capacity = capacity
        self.heldLimit = heldLimit
    }

    /// Where a new socket of a device starts: after what the device says it processed, or what it
    /// acknowledged and the writer has not stored yet, whichever is later. A device cannot have
    /// processed more than was stored for it (`stored`): a larger claim comes from state that
    /// predates this database (a restore, another server); it is ignored, and `welcome.lastSeq`
    /// tells the client to reset its counter.
    static func resumePoint(claimed: Int64?, acknowledged: Int64, stored: Int64) -> Int64 {
        let claimed = max(0, claimed ?? 0)
        return max(claimed <= stored ? claimed : 0, min(acknowledged, stored))
    }

    /// Deliveries that may still go out before the client acknowledges any.
    var room: Int { capacity - Int(lastSent - lastAcknowledged) }

    /// Whether a live delivery with this sequence number may go out now (the socket aside).
    func canSendLive(_ seq: Int64) -> Bool { !behind && seq == lastSent + 1 && room > 0 }

    mutating func sent(_ seq: Int64) { lastSent = seq }

    mutating func fellBehind() { behind = true }

    /// Moves the acknowledged bound, never past what was sent. Returns the new bound if it moved.
    mutating func acknowledge(_ seq: Int64) -> Int64? {
        let upTo = min(seq, lastSent)
        guard upTo > lastAcknowledged else { return nil }
        lastAcknowledged = upTo
        return upTo
    }

    /// During a read, live deliveries wait for it (bounded: beyond the bound the read is simply
    /// repeated). Returns false when no read is under way and the caller should deliver them.
    mutating func holdDuringFetch(_ entries: [InboxEntry]) -> Bool {
        guard fetching else { return false }
        if heldLive.count + entries.count <= heldLimit {
            heldLive += entries
        } else {
            heldLive = []
            heldLiveOverflowed = true
        }
        return true
    }

    /// Marks the socket behind and, if a read may start now, starts it: returns what to read.
    /// `committedSince`: deliveries may have been committed after a read already under way began.
    mutating func startFetch(committedSince: Bool, writable: Bool) -> (after: Int64, limit: Int)? {
        behind = true
        guard !fetching else {
            if committedSince { fetchAgain = true }
            return nil
        }
        let limit = room
        guard limit > 0, writable else { return nil }
        fetching = true
        return (lastSent, limit)
    }

    /// The read failed (the session then closes the socket).
    mutating func fetchFailed() { fetching = false }

    enum AfterFetch {
        /// The database may hold more: read again.
        case readAgain
        /// Everything stored was sent; `held` live deliveries go out next.
        case caughtUp(firstTime: Bool, held: [InboxEntry])
    }

    /// Call once the fetched entries were sent (``sent(_:)``).
    mutating func fetchCompleted(count: Int, limit: Int, writable: Bool) -> AfterFetch {
        fetching = false
        let held = heldLive
        let overflowed = heldLiveOverflowed
        let again = fetchAgain
        heldLive = []
        heldLiveOverflowed = false
        fetchAgain = false
        if count >= limit || overflowed || !writable || again { return .readAgain }
        behind = false
        let firstTime = !announcedCaughtUp
        announcedCaughtUp = true
        return .caughtUp(firstTime: firstTime, held: held)
    }
}
