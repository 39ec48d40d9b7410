import ArgumentParser
import Foundation
import SecureChatClient

struct Chat: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Chat with a user interactively.",
        discussion: """
            Type a line to send it. Messages show a short id in brackets; commands take such an id (or \
            any unique start of it): /reply ID TEXT, /react ID EMOJI, /unreact ID EMOJI, /edit ID TEXT, \
            /delete ID, /file PATH, /get ID [PATH], /members, /admit USER (rooms), /verify and /accept \
            (direct chats), /help, /quit.
            """)

    @Argument(help: ArgumentHelp(stringLiteral: Target.help)) var target: String
    @OptionGroup var store: StoreOptions

    func run() async throws {
        try await reporting {
            let client = try await store.open()
            let conversation = try await Target(target).conversation(client)
            let title: String
            switch conversation {
            case .direct(let userId): title = await client.displayName(of: userId)
            case .room(let code): title = "#\(code)"
            }
            for item in try await client.timeline(conversation, limit: 100).suffix(20) { await Output.item(item, client: client, json: false) }
            await client.connect()
            let lines = Self.standardInputLines()
            Output.line("chatting with \(title); /help for commands")
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    for await event in client.events {
                        switch event {
                        case .message(let message) where message.conversation == conversation:
                            if case .receipt(.read, _) = message.envelope.content {
                                Output.line("(\(await client.displayName(of: message.sender.userId)) read your messages)")
                            } else if case .receipt = message.envelope.content {
                                continue
                            } else {
                                await show(message, client: client)
                                try? await client.markRead([message])
                            }
                        case .message(let message) where message.envelope.content.isReceipt:
                            continue
                        case .typing(let typing, let sender, let started) where typing == conversation:
                            if started { Output.line("(\(await client.displayName(of: sender.userId)) is typing…)") }
                        case .message(let message):
                            let sender = await client.displayName(of: message.sender.userId)
                            Output.line("(new message from \(sender) elsewhere)")
                        case .sessionEnded:
                            throw CLIError("the server ended this device's session: log in again")
                        default:
                            await Output.notice(event, client: client)
                        }
                    }
                }
                group.addTask {
                    for await line in lines {
                        do {
                            if try await handle(line, client: client, conversation: conversation) == false { break }
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
        let mark = message.unconfirmedSender == true ? " (unconfirmed)" : ""
        Output.line("[\(Output.time(message.sentAt))] \(sender)\(mark) [\(message.id.prefix(6))]: \(Output.describe(message.envelope.content).line)")
    }

    /// Handles one typed line; false ends the chat.
    private func handle(_ line: String, client: SecureChatClient, conversation: Conversation) async throws -> Bool {
        let trimmed = line.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty else { return true }
        guard trimmed.hasPrefix("/") else {
            await show(try await client.send(.text(trimmed, replyTo: nil), in: conversation), client: client)
            return true
        }
        let parts = trimmed.split(separator: " ", maxSplits: 2).map(String.init)
        let argument = parts.count > 1 ? parts[1] : ""
        let rest = parts.count > 2 ? parts[2] : ""
        switch (parts[0], conversation) {
        case ("/quit", _), ("/exit", _):
            return false
        case ("/help", _):
            Output.line(Self.configuration.discussion)
        case ("/reply", _), ("/edit", _), ("/react", _), ("/unreact", _), ("/delete", _):
            guard !argument.isEmpty else { throw CLIError("\(parts[0]) needs a message id") }
            let target = try await resolve(argument, client: client, conversation: conversation)
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
            await show(try await client.send(content, in: conversation), client: client)
        case ("/file", _):
            let path = ([argument, rest].filter { !$0.isEmpty }).joined(separator: " ")
            guard !path.isEmpty else { throw CLIError("/file needs a path") }
            let file = URL(fileURLWithPath: (path as NSString).expandingTildeInPath)
            let bar = ProgressBar("sending \(file.lastPathComponent)")
            await show(try await client.sendFile(file, in: conversation) { bar.update($0, $1) }, client: client)
        case ("/get", _):
            let target = try await resolve(argument, client: client, conversation: conversation)
            guard case .attachment(let pointer, _) = target.envelope.content else { throw CLIError("that message has no file") }
            let name = URL(fileURLWithPath: pointer.name).lastPathComponent
            let destination = URL(fileURLWithPath: ((rest.isEmpty ? (name.isEmpty || name.hasPrefix(".") ? "attachment" : name) : rest) as NSString).expandingTildeInPath)
            let bar = ProgressBar("receiving \(destination.lastPathComponent)")
            try await client.download(pointer, to: destination) { bar.update($0, $1) }
            Output.line("saved \(destination.path)")
        case ("/members", .room(let code)):
            let unconfirmed = Set(try await client.unconfirmedMembers(of: code))
            for member in try await client.members(of: code) {
                Output.line("  \(member.username) (\(member.role.rawValue))\(unconfirmed.contains(member.userId) ? " not admitted" : "")")
            }
        case ("/admit", .room(let code)):
            guard let member = try await client.members(of: code).first(where: { $0.username.lowercased() == argument.lowercased() }) else {
                throw CLIError("\(argument) is not a member of #\(code)")
            }
            try await client.admit(member.userId, to: code)
            Output.line("admitted \(member.username)")
        case ("/verify", .direct(let userId)):
            for (deviceId, number) in try await client.safetyNumbers(with: userId).sorted(by: { $0.key < $1.key }) {
                Output.line("device \(deviceId): \(number.groups.joined(separator: " "))")
            }
        case ("/accept", .direct(let userId)):
            try await client.acceptIdentityChange(of: userId)
            Output.line("trusting \(await client.displayName(of: userId))'s current devices")
        default:
            throw CLIError("\(parts[0]) is not a command here; /help lists them")
        }
        return true
    }

    private func nonEmpty(_ text: String) throws -> String {
        guard !text.isEmpty else { throw CLIError("that command needs text after the id") }
        return text
    }

    /// The archived message whose id starts with `prefix` (unique within the conversation).
    private func resolve(_ prefix: String, client: SecureChatClient, conversation: Conversation) async throws -> ChatMessage {
        let matches = try await client.history(conversation, limit: 1000).filter { $0.id.hasPrefix(prefix) }
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
