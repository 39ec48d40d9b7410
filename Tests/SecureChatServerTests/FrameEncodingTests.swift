import Foundation
import SecureChatAPI
import SecureChatTestSupport
import Testing

@testable import SecureChatServer

@Suite("Hand-written frame encoding")
struct FrameEncodingTests {
    /// Ids with every kind of character JSON must escape, and some it must not.
    static let awkwardIds = ["plain", "quote\"d", "back\\slash", "new\nline", "tab\t", "\u{01}ctl\u{1f}", "ünïcödé", "slash/ok", "emoji 🙂", ""]

    @Test("message and accepted frames encode exactly as JSONEncoder does, and decode back")
    func sameBytesAsJSONEncoder() throws {
        var generator = SeededGenerator(seed: 7)
        let encoder = APIJSON.makeEncoder()
        for round in 0..<500 {
            let id = Self.awkwardIds[round % Self.awkwardIds.count] + String(round)
            let delivery = ServerFrame.Delivery(
                seq: Int64.random(in: 1...Int64.max, using: &generator), messageId: Int64.random(in: 1...Int64.max, using: &generator),
                sender: DeviceAddress(userId: Identifiers.make(), deviceId: UInt32.random(in: 0...UInt32.max, using: &generator)),
                clientMessageId: id, room: round % 2 == 0 ? Identifiers.roomCode() : nil,
                ciphertext: Data(generator.bytes(Int.random(in: 0...300, using: &generator))),
                sentAt: Date(milliseconds: Int64.random(in: 0...4_000_000_000_000, using: &generator)))
            let fast = FrameEncoding.delivery(delivery)
            let reference = String(decoding: try encoder.encode(ServerFrame.message(delivery)), as: UTF8.self)
            #expect(fast == reference, "\(fast) ≠ \(reference)")
            #expect(try APIJSON.makeDecoder().decode(ServerFrame.self, from: Data(fast.utf8)) == .message(delivery))

            let accepted = ServerFrame.Accepted(
                id: id, messageId: Int64.random(in: 1...Int64.max, using: &generator), sentAt: delivery.sentAt, duplicate: round % 3 == 0)
            let fastAccepted = FrameEncoding.accepted(accepted)
            #expect(fastAccepted == String(decoding: try encoder.encode(ServerFrame.accepted(accepted)), as: UTF8.self))
            #expect(try APIJSON.makeDecoder().decode(ServerFrame.self, from: Data(fastAccepted.utf8)) == .accepted(accepted))
        }
    }
}
