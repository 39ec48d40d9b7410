import ArgumentParser
import Foundation
import SecureChatClient

struct ServerOption: ParsableArguments {
    @Option(help: "The server's URL (default: $SECURECHAT_SERVER, else \"server\" in ~/.config/securechat/config.json, else http://127.0.0.1:8080).")
    var server: String?

    /// `~/.config/securechat/config.json` (or under $XDG_CONFIG_HOME): `{"server": "https://…"}`.
    static var configuredServer: String? {
        let environment = ProcessInfo.processInfo.environment
        let base = environment["XDG_CONFIG_HOME"].map { URL(fileURLWithPath: $0) }
            ?? FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".config")
        guard let data = FileManager.default.contents(atPath: base.appendingPathComponent("securechat/config.json").path),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        else { return nil }
        return object["server"] as? String
    }

    var url: URL {
        get throws {
            let text = server ?? ProcessInfo.processInfo.environment["SECURECHAT_SERVER"] ?? Self.configuredServer ?? "http://127.0.0.1:8080"
            guard let url = URL(string: text), let scheme = url.scheme, ["http", "https"].contains(scheme), url.host != nil else {
                throw CLIError("not a server URL: \(text) (expected http:// or https://)")
            }
            return url
        }
    }
}

/// What registering and logging in both need: where, as whom, and the local store to create.
struct NewDeviceOptions: ParsableArguments {
    @Argument(help: "The username (3–32 letters, digits, '.', '_' or '-').") var username: String
    @OptionGroup var store: StoreOptions
    @OptionGroup var server: ServerOption
    @Option(help: "A name for this device, shown in device lists.") var deviceName: String = ProcessInfo.processInfo.hostName
    @Option(help: "A file whose first line is the account password (default: $SECURECHAT_PASSWORD, else a prompt).")
    var passwordFile: String?

    typealias Create = @Sendable (URL, String, String, String, URL, String) async throws(ClientError) -> SecureChatClient

    /// Makes this device's store and account with `create`, then says who it is.
    func run(newPassword: Bool, verb: String, _ create: Create) async throws {
        let password = try Secrets.password(file: passwordFile, confirm: newPassword)
        let passphrase = try store.passphrase(new: true)
        let client = try await create(try server.url, username, password, deviceName, store.directory, passphrase)
        await Output.account(client, json: store.json, verb: verb)
        await client.close()
    }
}

struct Register: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Create an account; this device becomes its first device.")
    @OptionGroup var options: NewDeviceOptions

    func run() async throws {
        try await reporting {
            try await options.run(newPassword: true, verb: "registered") { server, username, password, device, directory, passphrase throws(ClientError) in
                try await SecureChatClient.register(
                    server: server, username: username, password: password, deviceName: device, directory: directory, passphrase: passphrase)
            }
        }
    }
}

struct Login: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Log in to an existing account; this device is added to it.",
        discussion: "A new device starts without history: earlier direct messages were encrypted for the other devices only.")
    @OptionGroup var options: NewDeviceOptions

    func run() async throws {
        try await reporting {
            try await options.run(newPassword: false, verb: "logged in") { server, username, password, device, directory, passphrase throws(ClientError) in
                try await SecureChatClient.login(
                    server: server, username: username, password: password, deviceName: device, directory: directory, passphrase: passphrase)
            }
        }
    }
}

struct Logout: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "End this device's session on the server (the local store stays).")
    @OptionGroup var store: StoreOptions

    func run() async throws {
        try await reporting {
            let client = try await store.open()
            try await client.logout()
            Output.line(store.json ? #"{"loggedOut":true}"# : "logged out")
        }
    }
}

struct WhoAmI: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "whoami", abstract: "Show this device's account.")
    @OptionGroup var store: StoreOptions

    func run() async throws {
        try await reporting {
            let client = try await store.open()
            await Output.account(client, json: store.json, verb: nil)
            await client.close()
        }
    }
}

struct Devices: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List this account's devices.")
    @OptionGroup var store: StoreOptions

    func run() async throws {
        try await reporting {
            let client = try await store.open()
            let devices = try await client.devices()
            let current = await client.deviceId
            for device in devices {
                if store.json {
                    Output.json([
                        "deviceId": device.deviceId, "name": device.name, "current": device.deviceId == current,
                        "oneTimePreKeys": device.oneTimePreKeyCount, "createdAt": Output.milliseconds(device.createdAt),
                    ])
                } else {
                    let marker = device.deviceId == current ? "*" : " "
                    Output.line("\(marker) \(device.deviceId)  \(device.name)  added \(Output.date(device.createdAt))  \(device.oneTimePreKeyCount) prekeys")
                }
            }
            await client.close()
        }
    }
}

struct Verify: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the safety numbers with a user; compare them in person, then --mark.")
    @Argument(help: "The other user's username.") var username: String
    @Flag(help: "Record that you compared them and they match.") var mark = false
    @OptionGroup var store: StoreOptions

    func run() async throws {
        try await reporting {
            let client = try await store.open()
            let contact = try await client.contact(named: username)
            let numbers = try await client.safetyNumbers(with: contact.userId)
            for (deviceId, number) in numbers.sorted(by: { $0.key < $1.key }) {
                let scannable = number.scannable.map { String(format: "%02x", $0) }.joined()
                if store.json {
                    Output.json(["deviceId": deviceId, "safetyNumber": number.groups.joined(separator: " "), "scannable": scannable])
                } else {
                    Output.line("device \(deviceId):")
                    for row in stride(from: 0, to: number.groups.count, by: 4) {
                        Output.line("  " + number.groups[row..<min(row + 4, number.groups.count)].joined(separator: " "))
                    }
                    Output.line("  scannable: \(scannable)")
                }
            }
            if contact.hasPendingChange {
                Output.line("\(username)'s devices changed; 'securechat accept \(username)' trusts the new ones")
            }
            if mark {
                try await client.markVerified(contact.userId)
                if !store.json { Output.line("\(username) marked as verified") }
            } else if !store.json {
                Output.line(contact.verified ? "verified" : "not verified: compare these numbers with \(username), then run with --mark")
            }
            await client.close()
        }
    }
}

struct Accept: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Trust a contact's changed devices, so that sending to them resumes.")
    @Argument(help: "The contact's username.") var username: String
    @OptionGroup var store: StoreOptions

    func run() async throws {
        try await reporting {
            let client = try await store.open()
            let contact = try await client.contact(named: username)
            try await client.acceptIdentityChange(of: contact.userId)
            Output.line(store.json ? #"{"accepted":true}"# : "trusting \(username)'s current devices (not verified)")
            await client.close()
        }
    }
}
