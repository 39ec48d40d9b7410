import ArgumentParser
import Foundation
import SecureChatClient

struct Send: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Send a message to a user and wait until the server has it.")
    @Argument(help: "The recipient's username.") var username: String
    @Argument(help: "The message (several words are joined with spaces; '-' reads standard input).") var words: [String]
    @Option(help: "The id of the message this one answers.") var replyTo: String?
    @OptionGroup var store: StoreOptions

    func run() async throws {
        try await reporting {
            var text = words.joined(separator: " ")
            if text == "-" { text = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self) }
            guard !text.isEmpty else { throw CLIError("nothing to send") }
            let client = try await store.open()
            await client.connect()
            do {
                let message = try await client.send(text, to: username, replyTo: replyTo)
                try await client.flush()
                Output.line(store.json ? #"{"id":"\#(message.id)","sent":true}"# : "sent \(message.id)")
            } catch {
                await client.close()
                throw error
            }
            await client.close()
        }
    }
}

struct Listen: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print messages as they arrive (for people and bots).")
    @Option(help: "Exit after this many messages.") var count: Int?
    @Option(help: "Exit after this many seconds.") var timeout: Double?
    @OptionGroup var store: StoreOptions

    func run() async throws {
        try await reporting {
            let client = try await store.open()
            await client.connect()
            let deadline = timeout.map { Date().addingTimeInterval($0) }
            let timer = Task {
                if let timeout { try await Task.sleep(for: .milliseconds(Int(timeout * 1000))) } else { try await Task.sleep(for: .seconds(1 << 40)) }
                await client.close()
            }
            var received = 0
            for await event in client.events {
                switch event {
                case .message(let message):
                    await Output.message(message, client: client, json: store.json)
                    received += 1
                case .identityChanged(let contact):
                    FileHandle.standardError.write(Data("securechat: \(contact.username)'s devices changed: verify, then 'securechat accept \(contact.username)'\n".utf8))
                case .undecryptable(let sender, let reason):
                    FileHandle.standardError.write(Data("securechat: a message from \(sender.userId).\(sender.deviceId) could not be read: \(reason)\n".utf8))
                case .sessionEnded:
                    timer.cancel()
                    await client.close()
                    throw CLIError("the server ended this device's session: log in again")
                default:
                    break
                }
                if let count, received >= count { break }
                if let deadline, Date() >= deadline { break }
            }
            timer.cancel()
            await client.close()
        }
    }
}

struct History: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show the archived conversation with a user (kept on this device only).")
    @Argument(help: "The other user's username.") var username: String
    @Option(help: "How many of the newest messages.") var limit = 50
    @OptionGroup var store: StoreOptions

    func run() async throws {
        try await reporting {
            let client = try await store.open()
            guard let contact = await client.knownContacts.first(where: { $0.username.lowercased() == username.lowercased() }) else {
                throw CLIError("no conversation with \(username) on this device")
            }
            for message in try await client.history(.direct(userId: contact.userId), limit: limit) {
                await Output.message(message, client: client, json: store.json)
            }
            await client.close()
        }
    }
}
