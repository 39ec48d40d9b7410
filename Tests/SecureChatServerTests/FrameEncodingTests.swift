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

@Suite("Hand-written send parser")
struct SendFrameParserTests {
    private static func parse(_ text: String) -> ClientFrame.Send? {
        Array(text.utf8).withUnsafeBytes { SendFrameParser.parse($0) }
    }

    private static func reference(_ text: String) -> ClientFrame? {
        try? APIJSON.makeDecoder().decode(ClientFrame.self, from: Data(text.utf8))
    }

    /// A random `send` frame as a client might write it: keys in any order, optional spacing.
    private static func randomFrame(_ generator: inout SeededGenerator) -> String {
        let space = Bool.random(using: &generator) ? " " : ""
        func string(_ value: String) -> String { "\"\(value)\"" }
        func base64() -> String { string(Data(generator.bytes(Int.random(in: 1...120, using: &generator))).base64EncodedString()) }
        var fields = [("type", string("send")), ("id", string("m-\(UInt32.random(in: 0...UInt32.max, using: &generator))"))]
        if Bool.random(using: &generator) {
            fields.append(("room", string(Identifiers.roomCode())))
            fields.append(("ciphertext", base64()))
        } else {
            let recipients = (0..<Int.random(in: 1...3, using: &generator)).map { _ in
                var parts = [
                    ("userId", string(Identifiers.make())), ("deviceId", String(UInt32.random(in: 0...UInt32.max, using: &generator))),
                    ("ciphertext", base64()),
                ]
                parts.shuffle(using: &generator)
                return "{" + parts.map { "\"\($0.0)\":\(space)\($0.1)" }.joined(separator: ",\(space)") + "}"
            }
            fields.append(("recipients", "[" + recipients.joined(separator: ",") + "]"))
        }
        if Bool.random(using: &generator) {
            fields.append(("attachmentIds", "[" + (0..<Int.random(in: 0...2, using: &generator)).map { _ in string(Identifiers.make()) }.joined(separator: ",") + "]"))
        }
        fields.shuffle(using: &generator)
        return "{" + space + fields.map { "\"\($0.0)\":\(space)\($0.1)" }.joined(separator: ",\(space)") + space + "}"
    }

    @Test("well-formed send frames parse to exactly what JSONDecoder decodes")
    func agreesOnValidFrames() {
        var generator = SeededGenerator(seed: 11)
        for _ in 0..<2_000 {
            let frame = Self.randomFrame(&generator)
            let fast = Self.parse(frame)
            #expect(fast != nil, "the fast path should take \(frame)")
            #expect(fast.map(ClientFrame.send) == Self.reference(frame), "\(frame)")
        }
    }

    @Test("whatever the parser accepts from mutated frames, JSONDecoder decodes the same; the rest falls back")
    func neverAcceptsWhatTheDecoderWouldNot() {
        var generator = SeededGenerator(seed: 12)
        var accepted = 0
        let alphabet = Array(#"{}[]:,"\ 0123456789.e-abcnulltruesend=+/"#.utf8)
        for _ in 0..<20_000 {
            var bytes = Array(Self.randomFrame(&generator).utf8)
            for _ in 0..<Int.random(in: 1...3, using: &generator) {
                let position = Int.random(in: 0..<bytes.count, using: &generator)
                switch Int.random(in: 0..<3, using: &generator) {
                case 0: bytes[position] = alphabet.randomElement(using: &generator)!
                case 1: bytes.remove(at: position)
                default: bytes.insert(alphabet.randomElement(using: &generator)!, at: position)
                }
            }
            let text = String(decoding: bytes, as: UTF8.self)
            guard let fast = Self.parse(text) else { continue }
            accepted += 1
            #expect(Self.reference(text) == .send(fast), "\(text)")
        }
        // Some mutations keep a frame valid (a digit for a digit, a space between tokens).
        #expect(accepted > 0)
    }

    @Test("frames outside the subset fall back to JSONDecoder", arguments: [
        #"{"type":"ack","seq":5}"#,
        #"{"type":"send","id":"a\"b","room":"r","ciphertext":"AA=="}"#,
        #"{"type":"send","id":"x","room":null,"recipients":[]}"#,
        #"{"type":"send","id":"x","extra":1,"room":"r","ciphertext":"AA=="}"#,
        #"{"type":"send","id":"x","id":"y","room":"r","ciphertext":"AA=="}"#,
        #"{"type":"send","id":"x","recipients":[{"userId":"u","deviceId":1.0,"ciphertext":"AA=="}]}"#,
        #"{"type":"send","id":"x","recipients":[{"userId":"u","deviceId":4294967296,"ciphertext":"AA=="}]}"#,
        #"{"type":"send","id":"x","recipients":[{"userId":"u","deviceId":01,"ciphertext":"AA=="}]}"#,
        #"{"type":"send","id":"x","room":"r","ciphertext":"not base64!"}"#,
        #"{"type":"send","id":"x","room":"r","ciphertext":"AA=="} trailing"#,
        #"{"id":"x","room":"r","ciphertext":"AA=="}"#,
    ])
    func fallsBack(frame: String) {
        #expect(Self.parse(frame) == nil)
    }
}
