import Foundation
import SecureChatAPI
import Testing

/// What the sender saw accepted and what the receiving application processed, across the
/// connections of a test that crashes servers under traffic.
actor DeliveryTally {
    var accepted: [Int] = []
    var received: [Int] = []
    var lastSeq: Int64 = 0
    var senderStopped = false

    func accept(_ index: Int) { accepted.append(index) }
    func stopSender(_ stopped: Bool) { senderStopped = stopped }

    /// Application-level processing: a delivery is handled once, by its sequence number.
    func receive(seq: Int64, index: Int) -> Bool {
        guard seq > lastSeq else { return false }
        lastSeq = seq
        received.append(index)
        return true
    }

    /// Expects every message 0..<count processed exactly once, in order, and every accepted one among them.
    func check(count: Int, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(received.count == count, sourceLocation: sourceLocation)
        // Compared element by element so that a failure names the first difference, not thousands of numbers.
        let firstDifference = zip(received, 0..<count).first { $0 != $1 }
        #expect(
            firstDifference == nil, "processed \(firstDifference.map { "\($0.0)" } ?? "") where \(firstDifference.map { "\($0.1)" } ?? "") was due",
            sourceLocation: sourceLocation)
        #expect(Set(accepted).isSubset(of: Set(received)), sourceLocation: sourceLocation)
    }
}

/// One sender and one receiver of numbered 1:1 messages, resumable after a crash.
enum SustainedTraffic {
    /// Sends every message not yet accepted, in order, keeping 100 unanswered in flight so that a
    /// crash always catches some stored but not yet acknowledged; returns when all are accepted
    /// or the socket dies, and says so in the tally.
    static func send(count: Int, from socket: TestSocket, to recipient: TestUser, tally: DeliveryTally) async {
        var acknowledged = (await tally.accepted.last).map { $0 + 1 } ?? 0
        var sent = acknowledged
        while acknowledged < count {
            while sent < count, sent - acknowledged < 100 {
                do {
                    try await socket.send(
                        .send(.init(id: "m\(sent)", recipients: [.init(userId: recipient.userId, deviceId: recipient.deviceId, ciphertext: Data("\(sent)".utf8))])))
                } catch {
                    await tally.stopSender(true)
                    return
                }
                sent += 1
            }
            guard let accepted = try? await socket.next(timeout: 30, matching: RealtimeTests.accepted) else { break }
            #expect(accepted.id == "m\(acknowledged)")
            await tally.accept(acknowledged)
            acknowledged += 1
        }
        await tally.stopSender(true)
    }

    /// Processes deliveries, acknowledging every 50, until all arrived, the socket died, or the
    /// sender stopped and nothing more came for three seconds.
    static func receive(count: Int, on socket: TestSocket, tally: DeliveryTally) async {
        while await tally.received.count < count {
            guard let delivery = try? await socket.next(timeout: 3, matching: RealtimeTests.message) else {
                let finished = await socket.isFinished
                let senderStopped = await tally.senderStopped
                if finished || senderStopped { break }
                continue
            }
            let index = Int(String(decoding: delivery.ciphertext, as: UTF8.self)) ?? -1
            if await tally.receive(seq: delivery.seq, index: index), delivery.seq % 50 == 0 {
                try? await socket.send(.ack(.init(seq: delivery.seq)))
            }
        }
        try? await socket.send(.ack(.init(seq: await tally.lastSeq)))
    }
}
