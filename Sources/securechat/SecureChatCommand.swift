import ArgumentParser
import Foundation
import SecureChatClient

@main
struct SecureChatCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "securechat",
        abstract: "End-to-end encrypted chat from the terminal.",
        discussion: """
            Keys, sessions and the message archive live in an encrypted local store (--home, default \
            ~/.securechat), opened with a passphrase: SECURECHAT_PASSPHRASE, --passphrase-file, or a prompt.
            """,
        subcommands: [
            Register.self, Login.self, Logout.self, WhoAmI.self, ProfileCommand.self, Devices.self, Send.self, SendFile.self,
            GetFile.self, Listen.self, Chat.self, History.self, Room.self, Verify.self, Accept.self,
        ])
}

/// Where the local store is and how to open it; shared by every command.
struct StoreOptions: ParsableArguments {
    @Option(help: "The folder of this device's local store (default: $SECURECHAT_HOME or ~/.securechat).")
    var home: String?

    @Option(help: "A file whose first line is the local store's passphrase (default: $SECURECHAT_PASSPHRASE, else a prompt).")
    var passphraseFile: String?

    @Flag(help: "Print results as JSON (one object per line) for scripts.")
    var json = false

    var directory: URL {
        if let home { return URL(fileURLWithPath: (home as NSString).expandingTildeInPath) }
        if let home = ProcessInfo.processInfo.environment["SECURECHAT_HOME"], !home.isEmpty {
            return URL(fileURLWithPath: (home as NSString).expandingTildeInPath)
        }
        return FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".securechat")
    }

    /// The passphrase; `new` for a store about to be created (checked for length, confirmed when typed).
    func passphrase(new: Bool = false) throws -> String {
        var value: String
        var typed = false
        if let passphraseFile {
            value = try Secrets.firstLine(of: passphraseFile, what: "passphrase")
        } else if let environment = ProcessInfo.processInfo.environment["SECURECHAT_PASSPHRASE"], !environment.isEmpty {
            value = environment
        } else {
            value = try Secrets.prompt(new ? "Choose a passphrase for this device's local store: " : "Passphrase for the local store: ")
            typed = true
        }
        if new {
            guard value.count >= 8 else { throw CLIError("a passphrase needs at least 8 characters") }
            if typed, try Secrets.prompt("Repeat it: ") != value { throw CLIError("the passphrases differ") }
        }
        return value
    }

    func open() async throws -> SecureChatClient {
        try await SecureChatClient.open(directory: directory, passphrase: try passphrase())
    }
}

/// One line on standard error and a non-zero exit: never a stack trace.
struct CLIError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

extension AsyncParsableCommand {
    /// Runs `body`, turning any failure into one clear line and exit code 1.
    func reporting(_ body: () async throws -> Void) async throws {
        do {
            try await body()
        } catch let error as ExitCode {
            throw error
        } catch let error as CleanExit {
            throw error
        } catch {
            FileHandle.standardError.write(Data("securechat: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}
