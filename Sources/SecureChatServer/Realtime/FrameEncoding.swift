import Foundation
import SecureChatAPI

/// Hand-written JSON for the two frames every message produces (`message` to each recipient,
/// `accepted` to the sender): the same bytes ``APIJSON`` would write (keys sorted, dates as
/// milliseconds), without the reflection Foundation's encoder pays on each call. Every other
/// frame goes through `JSONEncoder`; a test compares both encodings.
enum FrameEncoding {
    static func delivery(_ delivery: ServerFrame.Delivery) -> String {
        var json = #"{"ciphertext":""#
        json.reserveCapacity(delivery.ciphertext.count * 4 / 3 + 256)
        json += delivery.ciphertext.base64EncodedString()
        json += #"","clientMessageId":"#
        appendString(delivery.clientMessageId, to: &json)
        json += #","messageId":"#
        json += String(delivery.messageId)
        if let room = delivery.room {
            json += #","room":"#
            appendString(room, to: &json)
        }
        json += #","sender":{"deviceId":"#
        json += String(delivery.sender.deviceId)
        json += #","userId":"#
        appendString(delivery.sender.userId, to: &json)
        json += #"},"sentAt":"#
        json += milliseconds(delivery.sentAt)
        json += #","seq":"#
        json += String(delivery.seq)
        json += #","type":"message"}"#
        return json
    }

    static func accepted(_ accepted: ServerFrame.Accepted) -> String {
        var json = #"{"duplicate":"#
        json += accepted.duplicate ? "true" : "false"
        json += #","id":"#
        appendString(accepted.id, to: &json)
        json += #","messageId":"#
        json += String(accepted.messageId)
        json += #","sentAt":"#
        json += milliseconds(accepted.sentAt)
        json += #","type":"accepted"}"#
        return json
    }

    private static func milliseconds(_ date: Date) -> String {
        String(APIJSON.milliseconds(date))
    }

    /// A JSON string literal: quotes, backslashes and control characters escaped, as RFC 8259 asks.
    static func appendString(_ value: String, to json: inout String) {
        json += "\""
        if value.utf8.allSatisfy({ $0 >= 0x20 && $0 != 0x22 && $0 != 0x5c }) {
            json += value
        } else {
            for scalar in value.unicodeScalars {
                switch scalar {
                case "\"": json += "\\\""
                case "\\": json += "\\\\"
                case "\n": json += "\\n"
                case "\r": json += "\\r"
                case "\t": json += "\\t"
                case "\u{08}": json += "\\b"
                case "\u{0C}": json += "\\f"
                case _ where scalar.value < 0x20:
                    let hex = String(scalar.value, radix: 16)
                    json += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                default: json.unicodeScalars.append(scalar)
                }
            }
        }
        json += "\""
    }
}
