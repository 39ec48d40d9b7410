import ArgumentParser
import Foundation
import SecureChatClient

extension StoreOptions {
    /// Opens the store, runs `body` with the client (connected if asked), and always closes it.
    func withClient(connected: Bool = false, _ body: (SecureChatClient) async throws -> Void) async throws {
        let client = try await open()
        if connected { await client.connect() }
        do {
            try await body(client)
        } catch {
            await client.close()
            throw error
        }
        await client.close()
    }
}

struct Send: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Send a message and wait until the server has it.")
    @Argument(help: ArgumentHelp(stringLiteral: Target.help)) var target: String
    @Argument(help: "The message (several words are joined with spaces; '-' reads standard input).") var words: [String]
    @Option(help: "The id of the message this one answers.") var replyTo: String?
    @OptionGroup var store: StoreOptions

    func run() async throws {
        try await reporting {
            var text = words.joined(separator: " ")
            if text == "-" { text = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self) }
            guard !text.isEmpty else { throw CLIError("nothing to send") }
            try await store.withClient(connected: true) { client in
                let conversation = try await Target(target).conversation(client)
                let message = try await client.send(.text(text, replyTo: replyTo), in: conversation)
                try await client.flush()
                try await Self.checkAccepted(message.id, client)
                Output.line(store.json ? #"{"id":"\#(message.id)","sent":true}"# : "sent \(message.id)")
            }
        }
    }
}

extension Send {
    /// A flushed send is either accepted or refused for good; a refusal is an error.
    static func checkAccepted(_ id: String, _ client: SecureChatClient) async throws {
        if let reason = await client.failure(of: id) { throw CLIError("the server refused the message: \(reason)") }
    }
}

struct SendFile: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "send-file", abstract: "Encrypt a file, upload it, and send the message that unlocks it.")
    @Argument(help: ArgumentHelp(stringLiteral: Target.help)) var target: String
    @Argument(help: "The file to send.") var path: String
    @Option(help: "A caption sent with the file.") var caption: String?
    @Option(help: "The file's media type.") var contentType = "application/octet-stream"
    @OptionGroup var store: StoreOptions

    func run() async throws {
        try await reporting {
            let file = URL(fileURLWithPath: (path as NSString).expandingTildeInPath)
            try await store.withClient(connected: true) { client in
                let conversation = try await Target(target).conversation(client)
                let bar = ProgressBar("sending \(file.lastPathComponent)")
                let message = try await client.sendFile(file, in: conversation, caption: caption, contentType: contentType) { bar.update($0, $1) }
                try await client.flush()
                try await Send.checkAccepted(message.id, client)
                Output.line(store.json ? #"{"id":"\#(message.id)","sent":true}"# : "sent \(file.lastPathComponent) as \(message.id)")
            }
        }
    }
}

struct GetFile: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "get-file", abstract: "Download and decrypt a file from a message; its digest and size are checked.")
    @Argument(help: ArgumentHelp(stringLiteral: Target.help)) var target: String
    @Argument(help: "The id of the message with the file (or a unique start of it).") var messageId: String
    @Option(name: .shortAndLong, help: "Where to write it (default: the file's name in this folder).") var output: String?
    @Flag(help: "Replace a file that exists already.") var force = false
    @OptionGroup var store: StoreOptions

    func run() async throws {
        try await reporting {
            try await store.withClient { client in
            let conversation = try await Target(target).conversation(client)
            let matches = try await client.history(conversation, limit: 10_000).filter {
                if case .attachment = $0.envelope.content { $0.id.hasPrefix(messageId) } else { false }
            }
            guard let message = matches.last, case .attachment(let pointer, _) = message.envelope.content else {
                throw CLIError("no file message with id \(messageId) in that conversation")
            }
            guard matches.count == 1 else { throw CLIError("several file messages start with \(messageId): give more of the id") }
            // Only a plain file name from the sender is used, never a path.
            let name = URL(fileURLWithPath: pointer.name).lastPathComponent
            let destination = URL(fileURLWithPath: ((output ?? (name.isEmpty || name.hasPrefix(".") ? "attachment" : name)) as NSString).expandingTildeInPath)
            let bar = ProgressBar("receiving \(destination.lastPathComponent)")
            try await client.download(pointer, to: destination, overwrite: force) { bar.update($0, $1) }
            Output.line(store.json ? #"{"path":"\#(destination.path)","size":\#(pointer.size)}"# : "saved \(destination.path) (\(pointer.size) bytes, digest checked)")
            }
        }
    }
}

struct Listen: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print messages as they arrive (for people and bots).")
    @Option(help: "Exit after this many messages.") var count: Int?
    @Option(help: "Exit after this many seconds.") var timeout: Double?
    @OptionGroup var store: StoreOptions

    func validate() throws {
        if let timeout, !(timeout > 0 && timeout < 1e9) { throw ValidationError("--timeout must be a number of seconds above 0") }
        if let count, count < 1 { throw ValidationError("--count must be at least 1") }
    }

    func run() async throws {
        try await reporting {
            let client = try await store.open()
            await client.connect()
            let timer = Task {
                if let timeout { try await Task.sleep(for: .milliseconds(Int(timeout * 1000))) } else { try await Task.sleep(for: .seconds(1 << 40)) }
                await client.close()
            }
            defer { timer.cancel() }
            var received = 0
            for await event in client.events {
                switch event {
                case .message(let message):
                    if case .receipt = message.envelope.content {
                        // Receipts are for scripts that track delivery; people need not see them.
                        if store.json { await Output.message(message, client: client, json: true) }
                        continue
                    }
                    await Output.message(message, client: client, json: store.json)
                    received += 1
                case .sessionEnded:
                    await client.close()
                    throw CLIError("the server ended this device's session: log in again")
                default:
                    await Output.notice(event, client: client)
                }
                if let count, received >= count { break }
            }
            await client.close()
        }
    }
}

struct History: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show an archived conversation (kept on this device only).")
    @Argument(help: ArgumentHelp(stringLiteral: Target.help)) var target: String
    @Option(help: "How many of the newest archived entries (edits and reactions count).") var limit = 200
    @OptionGroup var store: StoreOptions

    func run() async throws {
        try await reporting {
            let client = try await store.open()
            let conversation: Conversation
            switch Target(target) {
            case .room(let code): conversation = .room(code: code)
            case .user(let name):
                guard let contact = await client.knownContacts.first(where: { $0.username.lowercased() == name.lowercased() }) else {
                    throw CLIError("no conversation with \(name) on this device")
                }
                conversation = .direct(userId: contact.userId)
            }
            for item in try await client.timeline(conversation, limit: limit) {
                await Output.item(item, client: client, json: store.json)
            }
            await client.close()
        }
    }
}
