import SecureChatAPI
import SecureChatTestSupport
import Testing

@testable import SecureChatServer

@Suite("Delivery window bookkeeping")
struct DeliveryWindowTests {
    private static func entry(_ seq: Int64) -> InboxEntry {
        InboxEntry(
            deviceKey: 1, seq: seq,
            content: .roomEvent(.init(room: "r", change: .joined, userId: "u", actorUserId: "u", role: nil, at: 0)))
    }

    @Test("acknowledgements never pass what was sent and only move forward")
    func acknowledgementBounds() {
        var window = DeliveryWindow(resumeAfter: 10)
        let outcome1 = window.acknowledge(12)
        #expect(outcome1 == nil)
        window.sent(11)
        window.sent(12)
        let outcome2 = window.acknowledge(99)
        #expect(outcome2 == 12)
        #expect(window.lastAcknowledged == 12)
        let outcome3 = window.acknowledge(11)
        #expect(outcome3 == nil)
        #expect(window.room == APILimits.deliveryWindow)
    }

    @Test("a new socket resumes after the later of its claim and its unstored acknowledgement, never past what was stored")
    func resumePoint() {
        #expect(DeliveryWindow.resumePoint(claimed: nil, acknowledged: 0, stored: 9) == 0)
        #expect(DeliveryWindow.resumePoint(claimed: 5, acknowledged: 0, stored: 9) == 5)
        #expect(DeliveryWindow.resumePoint(claimed: 5, acknowledged: 7, stored: 9) == 7)
        #expect(DeliveryWindow.resumePoint(claimed: 8, acknowledged: 7, stored: 9) == 8)
        #expect(DeliveryWindow.resumePoint(claimed: 12, acknowledged: 0, stored: 9) == 0, "a claim beyond the database is ignored")
        #expect(DeliveryWindow.resumePoint(claimed: 12, acknowledged: 12, stored: 9) == 9)
        #expect(DeliveryWindow.resumePoint(claimed: -3, acknowledged: 0, stored: 9) == 0)
    }

    @Test("a read starts only with room and a writable socket, and one at a time")
    func readStarts() throws {
        var window = DeliveryWindow(resumeAfter: 0)
        let outcome4 = window.startFetch(committedSince: false, writable: false)
        #expect(outcome4 == nil)
        #expect(window.behind)
        let readStarted = window.startFetch(committedSince: false, writable: true)
        let read = try #require(readStarted)
        #expect(read.after == 0 && read.limit == APILimits.deliveryWindow)
        let outcome5 = window.startFetch(committedSince: false, writable: true)
        #expect(outcome5 == nil)
        for seq in 1...Int64(APILimits.deliveryWindow) { window.sent(seq) }
        guard case .readAgain = window.fetchCompleted(count: APILimits.deliveryWindow, limit: read.limit, writable: true) else {
            Issue.record("a full page must be read again")
            return
        }
        #expect(window.room == 0)
        let outcome6 = window.startFetch(committedSince: false, writable: true)
        #expect(outcome6 == nil, "no room: no read")
    }

    @Test("a commit announced during a read makes the read repeat; the first catch-up is announced once")
    func wakeDuringRead() throws {
        var window = DeliveryWindow(resumeAfter: 0)
        let readStarted = window.startFetch(committedSince: false, writable: true)
        let read = try #require(readStarted)
        let outcome7 = window.startFetch(committedSince: true, writable: true)
        #expect(outcome7 == nil)
        guard case .readAgain = window.fetchCompleted(count: 0, limit: read.limit, writable: true) else {
            Issue.record("a wake during the read must repeat it")
            return
        }
        let againStarted = window.startFetch(committedSince: false, writable: true)
        let again = try #require(againStarted)
        guard case .caughtUp(true, let held) = window.fetchCompleted(count: 0, limit: again.limit, writable: true) else {
            Issue.record("expected the first catch-up")
            return
        }
        #expect(held.isEmpty && !window.behind)
        let outcome8 = window.startFetch(committedSince: false, writable: true)
        #expect(outcome8 != nil)
        guard case .caughtUp(false, _) = window.fetchCompleted(count: 0, limit: again.limit, writable: true) else {
            Issue.record("the catch-up is announced only once")
            return
        }
    }

    @Test("live deliveries during a read are held and handed back; too many make the read repeat")
    func heldLive() throws {
        var window = DeliveryWindow(resumeAfter: 0)
        let outcome9 = window.holdDuringFetch([Self.entry(1)])
        #expect(!outcome9, "no read: deliver at once")
        let readStarted = window.startFetch(committedSince: false, writable: true)
        let read = try #require(readStarted)
        let outcome10 = window.holdDuringFetch([Self.entry(1), Self.entry(2)])
        #expect(outcome10)
        guard case .caughtUp(_, let held) = window.fetchCompleted(count: 0, limit: read.limit, writable: true) else {
            Issue.record("expected a catch-up")
            return
        }
        #expect(held.map(\.seq) == [1, 2])
        #expect(window.canSendLive(1) && !window.canSendLive(2))

        let outcome11 = window.startFetch(committedSince: false, writable: true)
        #expect(outcome11 != nil)
        let flood = (1...Int64(ClientConnection.maximumQueuedDeliveries + 1)).map(Self.entry)
        let outcome12 = window.holdDuringFetch(flood)
        #expect(outcome12)
        guard case .readAgain = window.fetchCompleted(count: 0, limit: read.limit, writable: true) else {
            Issue.record("an overflow must repeat the read")
            return
        }
    }

    @Test("a full window stops live deliveries until an acknowledgement makes room")
    func fullWindow() {
        var window = DeliveryWindow(resumeAfter: 0, capacity: 2, heldLimit: 4)
        window.sent(1)
        window.sent(2)
        #expect(window.room == 0)
        #expect(!window.canSendLive(3), "no room")
        let moved = window.acknowledge(1)
        #expect(moved == 1)
        #expect(window.room == 1)
    }

    /// Drives the window as ``RealtimeSession`` does, against a model database that grows while
    /// reads are under way, with a small window (so that it fills), random acknowledgements and
    /// writability, lost live hand-overs (another instance's commits, announced by a wake) and
    /// reads whose snapshot may include commits made after they began. What goes out is every
    /// sequence number once, in order, never more than the window ahead of the acknowledgements;
    /// and a window that says it is caught up has sent everything stored.
    @Test("randomised: in order, no gap, no duplicate, bounded, and everything arrives", arguments: 1...40)
    func randomised(seed: UInt64) {
        var generator = SeededGenerator(seed: seed)
        let capacity = 8
        var window = DeliveryWindow(resumeAfter: 0, capacity: capacity, heldLimit: 12)
        var stored: Int64 = 0
        var sentOut: [Int64] = []
        var pendingRead: (after: Int64, limit: Int, startedAt: Int64)?
        var writable = true

        func send(_ seq: Int64) {
            #expect(seq == (sentOut.last ?? 0) + 1)
            #expect(window.room > 0)
            window.sent(seq)
            sentOut.append(seq)
        }
        func deliverLive(_ seqs: [Int64]) {
            if !window.behind {
                for seq in seqs where seq > window.lastSent {
                    guard window.canSendLive(seq), writable else {
                        window.fellBehind()
                        break
                    }
                    send(seq)
                }
            }
            if window.behind { fetch() }
        }
        func fetch(committedSince: Bool = false) {
            guard let read = window.startFetch(committedSince: committedSince, writable: writable) else { return }
            #expect(pendingRead == nil, "one read at a time")
            pendingRead = (read.after, read.limit, stored)
        }
        func completeRead() {
            guard let read = pendingRead else { return }
            pendingRead = nil
            // The query saw at least what was committed when it began, and maybe more.
            let snapshot = Int64.random(in: read.startedAt...stored, using: &generator)
            let upper = min(snapshot, read.after + Int64(read.limit))
            let entries = read.after < upper ? Array(read.after + 1...upper) : []
            for seq in entries where seq > window.lastSent { send(seq) }
            switch window.fetchCompleted(count: entries.count, limit: read.limit, writable: writable) {
            case .readAgain: fetch()
            case .caughtUp(_, let held): deliverLive(held.map(\.seq))
            }
        }

        fetch()
        for step in 0..<4000 {
            switch Int.random(in: 0..<12, using: &generator) {
            case 0...3 where step < 3000:
                let count = Int64.random(in: 1...5, using: &generator)
                let committed = Array(stored + 1...stored + count)
                stored += count
                if Int.random(in: 0..<10, using: &generator) > 0 {
                    if !window.holdDuringFetch(committed.map(Self.entry)) { deliverLive(committed) }
                } else {
                    fetch(committedSince: true)
                }
            case 4...6:
                completeRead()
            case 7:
                let seq = window.lastAcknowledged + Int64.random(in: 0...Int64(capacity), using: &generator)
                if window.acknowledge(seq) != nil, window.behind { fetch() }
            case 8:
                writable.toggle()
                if writable, window.behind { fetch() }
            default:
                break
            }
            #expect(window.lastAcknowledged <= window.lastSent)
            #expect(window.lastSent - window.lastAcknowledged <= Int64(capacity))
            if !window.behind { #expect(window.lastSent == stored, "caught up means everything stored was sent") }
        }
        // Drain: the client reads and acknowledges everything.
        writable = true
        if window.behind { fetch() }
        for _ in 0..<10_000 where sentOut.count < Int(stored) {
            completeRead()
            if window.acknowledge(window.lastSent) != nil, window.behind { fetch() }
        }
        #expect(sentOut == Array(stride(from: 1, through: stored, by: 1)))
    }
}
