import Foundation

/// A fast path for the frame every message arrives as: `{"type":"send", …}` read straight from
/// the socket's bytes, without the reflection Foundation's `JSONDecoder` pays on each frame.
///
/// It accepts a strict subset of JSON: the keys `send` frames have, each at most once, strings
/// without escapes, plain unsigned integers. Anything else (another frame type, an unknown key,
/// an escape, `null`, invalid base64…) returns nil and the frame goes through `JSONDecoder`,
/// so every error message and every edge case stays the decoder's. A test and the `clientFrame`
/// fuzz target check that whatever this accepts, the decoder decodes to the same value. It lives
/// here, with the frames, so that it can be fuzzed without building the server.
public enum SendFrameParser {
    public static func parse(_ bytes: UnsafeRawBufferPointer) -> ClientFrame.Send? {
        var scanner = Scanner(bytes: bytes)
        guard let send = scanner.sendObject(), scanner.atEnd else { return nil }
        return send
    }

    private struct Scanner {
        let bytes: UnsafeRawBufferPointer
        var index = 0

        private static let quote = UInt8(ascii: "\"")
        private static let backslash = UInt8(ascii: "\\")

        var atEnd: Bool {
            mutating get {
                skipWhitespace()
                return index == bytes.count
            }
        }

        mutating func skipWhitespace() {
            while index < bytes.count {
                switch bytes[index] {
                case 0x20, 0x09, 0x0a, 0x0d: index += 1
                default: return
                }
            }
        }

        mutating func consume(_ byte: UInt8) -> Bool {
            skipWhitespace()
            guard index < bytes.count, bytes[index] == byte else { return false }
            index += 1
            return true
        }

        /// A string without escapes or control characters, as its raw bytes.
        mutating func plainStringBytes() -> UnsafeRawBufferPointer? {
            guard consume(Self.quote) else { return nil }
            let start = index
            while index < bytes.count {
                let byte = bytes[index]
                if byte == Self.quote {
                    defer { index += 1 }
                    return UnsafeRawBufferPointer(rebasing: bytes[start..<index])
                }
                if byte == Self.backslash || byte < 0x20 { return nil }
                index += 1
            }
            return nil
        }

        /// Invalid UTF-8 is refused, as `JSONDecoder` refuses it (`String(decoding:)` would quietly
        /// replace it; the fuzzer found that difference).
        mutating func plainString() -> String? {
            plainStringBytes().flatMap { String(validating: $0, as: UTF8.self) }
        }

        /// Base64 as `JSONDecoder`'s default data strategy reads it.
        mutating func base64Data() -> Data? {
            guard let raw = plainStringBytes() else { return nil }
            return Data(base64Encoded: Data(raw))
        }

        /// Digits only: no sign, fraction, exponent or leading zero.
        mutating func unsigned32() -> UInt32? {
            skipWhitespace()
            let start = index
            var value: UInt64 = 0
            while index < bytes.count, (0x30...0x39).contains(bytes[index]), index - start < 11 {
                value = value * 10 + UInt64(bytes[index] - 0x30)
                index += 1
            }
            let digits = index - start
            guard digits > 0, digits <= 10, !(digits > 1 && bytes[start] == 0x30), value <= UInt32.max else { return nil }
            // A number must end here: a fraction or exponent is not this subset.
            if index < bytes.count, [UInt8(ascii: "."), UInt8(ascii: "e"), UInt8(ascii: "E")].contains(bytes[index]) { return nil }
            return UInt32(value)
        }

        /// `"key":` of the object being read, or nil at its end (`}` consumed).
        mutating func nextKey(first: inout Bool) -> UnsafeRawBufferPointer?? {
            if consume(UInt8(ascii: "}")) { return .some(nil) }
            if !first, !consume(UInt8(ascii: ",")) { return nil }
            first = false
            guard let key = plainStringBytes(), consume(UInt8(ascii: ":")) else { return nil }
            return .some(key)
        }

        mutating func sendObject() -> ClientFrame.Send? {
            guard consume(UInt8(ascii: "{")) else { return nil }
            var first = true
            var sawType = false
            var id: String?
            var room: String?
            var ciphertext: Data?
            var recipients: [RecipientCiphertext]?
            var attachmentIds: [String]?
            while true {
                guard let next = nextKey(first: &first) else { return nil }
                guard let key = next else { break }
                switch String(decoding: key, as: UTF8.self) {
                case "type" where !sawType:
                    guard plainString() == "send" else { return nil }
                    sawType = true
                case "id" where id == nil:
                    guard let value = plainString() else { return nil }
                    id = value
                case "room" where room == nil:
                    guard let value = plainString() else { return nil }
                    room = value
                case "ciphertext" where ciphertext == nil:
                    guard let value = base64Data() else { return nil }
                    ciphertext = value
                case "recipients" where recipients == nil:
                    guard let value = recipientArray() else { return nil }
                    recipients = value
                case "attachmentIds" where attachmentIds == nil:
                    guard let value = stringArray() else { return nil }
                    attachmentIds = value
                default:
                    return nil
                }
            }
            guard sawType, let id else { return nil }
            var send = ClientFrame.Send(id: id, recipients: [])
            send.room = room
            send.ciphertext = ciphertext
            send.recipients = recipients
            send.attachmentIds = attachmentIds
            return send
        }

        mutating func stringArray() -> [String]? {
            guard consume(UInt8(ascii: "[")) else { return nil }
            var values: [String] = []
            if consume(UInt8(ascii: "]")) { return values }
            repeat {
                guard let value = plainString() else { return nil }
                values.append(value)
            } while consume(UInt8(ascii: ","))
            return consume(UInt8(ascii: "]")) ? values : nil
        }

        mutating func recipientArray() -> [RecipientCiphertext]? {
            guard consume(UInt8(ascii: "[")) else { return nil }
            var values: [RecipientCiphertext] = []
            if consume(UInt8(ascii: "]")) { return values }
            repeat {
                guard let value = recipient() else { return nil }
                values.append(value)
            } while consume(UInt8(ascii: ","))
            return consume(UInt8(ascii: "]")) ? values : nil
        }

        mutating func recipient() -> RecipientCiphertext? {
            guard consume(UInt8(ascii: "{")) else { return nil }
            var first = true
            var userId: String?
            var deviceId: UInt32?
            var ciphertext: Data?
            while true {
                guard let next = nextKey(first: &first) else { return nil }
                guard let key = next else { break }
                switch String(decoding: key, as: UTF8.self) {
                case "userId" where userId == nil:
                    guard let value = plainString() else { return nil }
                    userId = value
                case "deviceId" where deviceId == nil:
                    guard let value = unsigned32() else { return nil }
                    deviceId = value
                case "ciphertext" where ciphertext == nil:
                    guard let value = base64Data() else { return nil }
                    ciphertext = value
                default:
                    return nil
                }
            }
            guard let userId, let deviceId, let ciphertext else { return nil }
            return RecipientCiphertext(userId: userId, deviceId: deviceId, ciphertext: ciphertext)
        }
    }
}
