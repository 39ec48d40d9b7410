import ArgumentParser

@main
struct SecureChatCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "securechat", abstract: "End-to-end encrypted chat.")
}
