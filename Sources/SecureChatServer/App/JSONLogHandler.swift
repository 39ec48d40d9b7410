import Foundation
public import Logging

/// One JSON object per line on standard error: `time`, `level`, `message`, `logger`, then the
/// metadata (`hb.request.id`, `user`, `client`…), for log collectors.
///
/// What reaches a log line is decided where it is logged: no message content, key, token or
/// password is ever passed as a message or metadata (a test greps a whole run's logs for them).
public struct JSONLogHandler: LogHandler {
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    private let label: String

    public init(label: String, metadataProvider: Logger.MetadataProvider? = nil) {
        self.label = label
        self.metadataProvider = metadataProvider
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { _, new in new } }
        if let extra = event.metadata { merged.merge(extra) { _, new in new } }
        var line = "{\"time\":"
        Self.appendString(Self.timestamp(), to: &line)
        line += ",\"level\":"
        Self.appendString(event.level.rawValue, to: &line)
        line += ",\"message\":"
        Self.appendString(event.message.description, to: &line)
        line += ",\"logger\":"
        Self.appendString(label, to: &line)
        for key in merged.keys.sorted() where !["time", "level", "message", "logger"].contains(key) {
            line += ","
            Self.appendString(key, to: &line)
            line += ":"
            Self.append(merged[key]!, to: &line)
        }
        if event.level >= .warning {
            line += ",\"source\":"
            Self.appendString("\(event.file):\(event.line)", to: &line)
        }
        line += "}\n"
        FileHandle.standardError.write(Data(line.utf8))
    }

    private static func timestamp() -> String {
        Date().formatted(.iso8601.year().month().day().timeZone(separator: .omitted).time(includingFractionalSeconds: true))
    }

    private static func append(_ value: Logger.Metadata.Value, to line: inout String) {
        switch value {
        case .string(let text): appendString(text, to: &line)
        case .stringConvertible(let convertible): appendString(convertible.description, to: &line)
        case .array(let values):
            line += "["
            for (index, element) in values.enumerated() {
                if index > 0 { line += "," }
                append(element, to: &line)
            }
            line += "]"
        case .dictionary(let entries):
            line += "{"
            for (index, key) in entries.keys.sorted().enumerated() {
                if index > 0 { line += "," }
                appendString(key, to: &line)
                line += ":"
                append(entries[key]!, to: &line)
            }
            line += "}"
        }
    }

    private static func appendString(_ text: String, to line: inout String) {
        FrameEncoding.appendString(text, to: &line)
    }
}
