public import Foundation

private enum FrameTypeKey: String, CodingKey { case type }

extension ClientFrame: Codable {
    public init(from decoder: any Decoder) throws {
        let type = try decoder.container(keyedBy: FrameTypeKey.self).decode(String.self, forKey: .type)
        switch type {
        case "hello": self = .hello(try Hello(from: decoder))
        case "send": self = .send(try Send(from: decoder))
        case "ack": self = .ack(try Ack(from: decoder))
        case "ephemeral": self = .ephemeral(try Ephemeral(from: decoder))
        default:
            throw DecodingError.dataCorrupted(
                .init(codingPath: [FrameTypeKey.type], debugDescription: "unknown frame type \"\(type.prefix(32))\""))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: FrameTypeKey.self)
        switch self {
        case .hello(let body):
            try container.encode("hello", forKey: .type)
            try body.encode(to: encoder)
        case .send(let body):
            try container.encode("send", forKey: .type)
            try body.encode(to: encoder)
        case .ack(let body):
            try container.encode("ack", forKey: .type)
            try body.encode(to: encoder)
        case .ephemeral(let body):
            try container.encode("ephemeral", forKey: .type)
            try body.encode(to: encoder)
        }
    }
}

extension ServerFrame: Codable {
    public init(from decoder: any Decoder) throws {
        let type = try decoder.container(keyedBy: FrameTypeKey.self).decode(String.self, forKey: .type)
        switch type {
        case "welcome": self = .welcome(try Welcome(from: decoder))
        case "accepted": self = .accepted(try Accepted(from: decoder))
        case "message": self = .message(try Delivery(from: decoder))
        case "roomEvent": self = .roomEvent(try RoomEvent(from: decoder))
        case "caughtUp": self = .caughtUp(try CaughtUp(from: decoder))
        case "ephemeral": self = .ephemeral(try EphemeralDelivery(from: decoder))
        case "preKeysLow": self = .preKeysLow(try PreKeysLow(from: decoder))
        case "error": self = .error(try ErrorFrame(from: decoder))
        default:
            throw DecodingError.dataCorrupted(
                .init(codingPath: [FrameTypeKey.type], debugDescription: "unknown frame type \"\(type.prefix(32))\""))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: FrameTypeKey.self)
        switch self {
        case .welcome(let body):
            try container.encode("welcome", forKey: .type)
            try body.encode(to: encoder)
        case .accepted(let body):
            try container.encode("accepted", forKey: .type)
            try body.encode(to: encoder)
        case .message(let body):
            try container.encode("message", forKey: .type)
            try body.encode(to: encoder)
        case .roomEvent(let body):
            try container.encode("roomEvent", forKey: .type)
            try body.encode(to: encoder)
        case .caughtUp(let body):
            try container.encode("caughtUp", forKey: .type)
            try body.encode(to: encoder)
        case .ephemeral(let body):
            try container.encode("ephemeral", forKey: .type)
            try body.encode(to: encoder)
        case .preKeysLow(let body):
            try container.encode("preKeysLow", forKey: .type)
            try body.encode(to: encoder)
        case .error(let body):
            try container.encode("error", forKey: .type)
            try body.encode(to: encoder)
        }
    }
}

/// The JSON conventions of the API: dates as milliseconds since 1970-01-01 UTC, binary as standard base64.
public enum APIJSON {
    public static func makeEncoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        // Whole milliseconds as an integer: `.millisecondsSince1970` would write the binary
        // rounding error of seconds × 1000 (`160305747848.00006`).
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(milliseconds(date))
        }
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }

    public static func makeDecoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let value = try decoder.singleValueContainer().decode(Double.self)
            guard value.isFinite, abs(value) < 1e15 else {
                throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not a time in milliseconds"))
            }
            return date(milliseconds: Int64(value.rounded()))
        }
        return decoder
    }

    /// The API's time unit: whole milliseconds since 1970-01-01 UTC.
    public static func milliseconds(_ date: Date) -> Int64 {
        Int64((date.timeIntervalSince1970 * 1000).rounded())
    }

    public static func date(milliseconds: Int64) -> Date {
        Date(timeIntervalSince1970: Double(milliseconds) / 1000)
    }
}
