import Foundation
import SecureChatClient

/// Whom a command talks to: a username, or a room as `#CODE`.
enum Target {
    case user(String)
    case room(String)

    init(_ text: String) {
        self = text.hasPrefix("#") ? .room(String(text.dropFirst())) : .user(text)
    }

    /// The conversation, looking the user up if this device has not met them.
    func conversation(_ client: SecureChatClient) async throws -> Conversation {
        switch self {
        case .user(let name): .direct(userId: try await client.contact(named: name).userId)
        case .room(let code): .room(code: code)
        }
    }

    static let help = "A username, or #CODE for a room."
}

/// A progress bar on standard error, drawn only when it is a terminal.
final class ProgressBar: @unchecked Sendable {
    private let label: String
    private let enabled = isatty(STDERR_FILENO) == 1
    private let lock = NSLock()
    private var lastPercent = -1

    init(_ label: String) { self.label = label }

    func update(_ done: UInt64, _ total: UInt64) {
        guard enabled else { return }
        let percent = total == 0 ? 100 : Int(min(done, total) * 100 / total)
        lock.lock()
        defer { lock.unlock() }
        guard percent != lastPercent else { return }
        lastPercent = percent
        let filled = percent / 5
        let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: 20 - filled)
        let mib = { (bytes: UInt64) in String(format: "%.1f", Double(bytes) / 1_048_576) }
        FileHandle.standardError.write(Data("\r\(label) [\(bar)] \(percent)% \(mib(done))/\(mib(total)) MiB".utf8))
        if percent == 100 { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}
