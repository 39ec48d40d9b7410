import ArgumentParser
import Foundation
import SecureChatClient

struct Chat: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Chat with a user interactively.",
        discussion: """
            Type a line to send it. Messages show a short id in brackets; commands take such an id (or \
            any unique start of it): /reply ID TEXT, /react ID EMOJI, /unreact ID EMOJI, /edit ID TEXT, \
            /delete ID, /verify, /help, /quit.
            """)

    @Argument(help: "The other user's username.") var username: String
    @OptionGroup var store: StoreOptions

    func run() async throws {
        try await reporting {
            let client = try await store.open()
            let contact = try await client.contact(named: username)
            let conversation = Conversation.direct(userId: contact.userId)
            for message in try await client.history(conversation, limit: 20) { await show(message, client: client) }
            await client.connect()
            let lines = Self.standardInputLines()
            Output.line("chatting with \(contact.username); /help for commands")
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    for await event in client.events {
                        switch event {
                        case .message(let message) where message.conversation == conversation:
                            await show(message, client: client)
                        case .message(let message):
                            let sender = await client.displayName(of: message.sender.userId)
                            Output.line("(new message from \(sender): 'securechat chat \(sender)' to answer)")
                        case .identityChanged(let changed) where changed.userId == contact.userId:
                            Output.line("! \(changed.username)'s devices changed. Compare safety numbers (/verify), then type /accept to keep sending.")
                        case .connection(.offline(let reason)):
                            Output.line("(offline: \(reason); reconnecting)")
                        case .undecryptable(_, let reason):
                            Output.line("! a message could not be read: \(reason)")
                        case .sessionEnded:
                            Output.line("! the server ended this device's session: log in again")
                            return
                        default:
                            break
                        }
                    }
                }
                group.addTask {
                    for await line in lines {
                        do {
                            if try await handle(line, client: client, contact: contact) == false { break }
                        } catch {
                            Output.line("! \(error)")
                        }
                    }
                    await client.close()
                }
                try await group.next()
                group.cancelAll()
            }
            await client.close()
        }
    }

    private func show(_ message: ChatMessage, client: SecureChatClient) async {
        let sender = message.outgoing ? "you" : await client.displayName(of: message.sender.userId)
        Output.line("[\(Output.time(message.sentAt))] \(sender) [\(message.id.prefix(6))]: \(Output.describe(message.envelope.content).line)")
    }

    /// Handles one typed line; false ends the chat.
    private func handle(_ line: String, client: SecureChatClient, contact: Contact) async throws -> Bool {
        let trimmed = line.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty else { return true }
        guard trimmed.hasPrefix("/") else {
            await show(try await client.send(.text(trimmed, replyTo: nil), toUserId: contact.userId), client: client)
            return true
        }
        let parts = trimmed.split(separator: " ", maxSplits: 2).map(String.init)
        let rest = parts.count > 2 ? parts[2] : ""
        switch parts[0] {
        case "/quit", "/exit":
            return false
        case "/help":
            Output.line(Self.configuration.discussion)
        case "/reply", "/edit", "/react", "/unreact", "/delete":
            guard parts.count >= 2 else { throw CLIError("\(parts[0]) needs a message id") }
            let target = try await resolve(parts[1], client: client, contact: contact)
            let content: Content
            switch parts[0] {
            case "/reply": content = .text(try nonEmpty(rest), replyTo: target.id)
            case "/edit":
                guard target.outgoing else { throw CLIError("only your own messages can be edited") }
                content = .edit(target: target.id, text: try nonEmpty(rest))
            case "/react": content = .reaction(target: target.id, emoji: try nonEmpty(rest), remove: false)
            case "/unreact": content = .reaction(target: target.id, emoji: try nonEmpty(rest), remove: true)
            default:
                guard target.outgoing else { throw CLIError("only your own messages can be deleted") }
                content = .delete(target: target.id)
            }
            await show(try await client.send(content, toUserId: contact.userId), client: client)
        case "/verify":
            for (deviceId, number) in try await client.safetyNumbers(with: contact.userId).sorted(by: { $0.key < $1.key }) {
                Output.line("device \(deviceId): \(number.groups.joined(separator: " "))")
            }
        case "/accept":
            try await client.acceptIdentityChange(of: contact.userId)
            Output.line("trusting \(contact.username)'s current devices")
        default:
            throw CLIError("unknown command \(parts[0]); /help lists them")
        }
        return true
    }

    private func nonEmpty(_ text: String) throws -> String {
        guard !text.isEmpty else { throw CLIError("that command needs text after the id") }
        return text
    }

    /// The archived message whose id starts with `prefix` (unique within the conversation).
    private func resolve(_ prefix: String, client: SecureChatClient, contact: Contact) async throws -> ChatMessage {
        let matches = try await client.history(.direct(userId: contact.userId), limit: 500).filter { $0.id.hasPrefix(prefix) }
        guard let match = matches.last else { throw CLIError("no message with id \(prefix)") }
        guard Set(matches.map(\.id)).count == 1 else { throw CLIError("several messages start with \(prefix): give more of the id") }
        return match
    }

    /// Standard input, line by line, read on a thread of its own (reading blocks).
    private static func standardInputLines() -> AsyncStream<String> {
        AsyncStream { continuation in
            let thread = Thread {
                while let line = readLine(strippingNewline: true) { continuation.yield(line) }
                continuation.finish()
            }
            thread.start()
        }
    }
}
