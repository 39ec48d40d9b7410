import ArgumentParser
import Foundation
import SecureChatAPI
import SecureChatClient

struct Room: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create, join and manage rooms (a room is addressed as its code, or #CODE elsewhere).",
        subcommands: [
            RoomCreate.self, RoomJoin.self, RoomLeave.self, RoomList.self, RoomInfo.self, RoomMembers.self, RoomAdmit.self,
            RoomKick.self, RoomBan.self, RoomUnban.self, RoomPassword.self,
        ])
}

/// A room password: from a file, SECURECHAT_ROOM_PASSWORD, or a prompt (never the command line).
struct RoomPasswordOptions: ParsableArguments {
    @Flag(name: .customLong("password"), help: "Ask for the room's password.") var askPassword = false
    @Option(help: "A file whose first line is the room's password.") var passwordFile: String?

    func password() throws -> String? {
        if let passwordFile { return try Secrets.firstLine(of: passwordFile, what: "room password") }
        if let value = ProcessInfo.processInfo.environment["SECURECHAT_ROOM_PASSWORD"], !value.isEmpty { return value }
        return askPassword ? try Secrets.prompt("Room password: ") : nil
    }
}

extension Output {
    static func room(_ room: RoomResponse, json: Bool) {
        if json {
            self.json([
                "code": room.code, "name": room.name, "passwordRequired": room.passwordRequired, "members": room.memberCount,
                "role": room.role.rawValue, "retentionSeconds": room.retentionSeconds,
            ])
        } else {
            line("#\(room.code)  \(room.name)  \(room.memberCount) member(s)  you: \(room.role.rawValue)\(room.passwordRequired ? "  password" : "")")
        }
    }
}

struct RoomCreate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "create", abstract: "Create a room; you are its owner.")
    @Argument(help: "The room's name.") var name: String
    @OptionGroup var password: RoomPasswordOptions
    @Flag(help: "Admit everyone who joins (with the code and password) without asking.") var autoAdmit = false
    @Option(help: "Delete messages after this many seconds (default: the server's retention).") var retention: Int64?
    @OptionGroup var store: StoreOptions

    func run() async throws {
        try await reporting {
            try await store.withClient { client in
                let room = try await client.createRoom(name: name, password: try password.password(), retentionSeconds: retention, autoAdmit: autoAdmit)
                Output.room(room, json: store.json)
                if !store.json {
                    Output.line("share the code \(room.code)\(room.passwordRequired ? " and the password" : ""); "
                        + (autoAdmit ? "everyone who joins is admitted" : "admit each joiner with 'securechat room admit \(room.code) USER'"))
                }
            }
        }
    }
}

struct RoomJoin: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "join", abstract: "Join a room by its code.")
    @Argument(help: "The room's code.") var code: String
    @OptionGroup var password: RoomPasswordOptions
    @OptionGroup var store: StoreOptions

    func run() async throws {
        try await reporting {
            try await store.withClient { client in
                Output.room(try await client.joinRoom(code.trimmingPrefix("#").description, password: try password.password()), json: store.json)
            }
        }
    }
}

/// The room code and username most room commands take.
struct RoomMemberArguments: ParsableArguments {
    @Argument(help: "The room's code.") var code: String
    @Argument(help: "The member's username.") var username: String

    var room: String { String(code.trimmingPrefix("#")) }

    func userId(_ client: SecureChatClient) async throws -> String {
        let members = try await client.members(of: room)
        guard let member = members.first(where: { $0.username.lowercased() == username.lowercased() }) else {
            throw CLIError("\(username) is not a member of #\(room)")
        }
        return member.userId
    }
}

struct RoomLeave: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "leave", abstract: "Leave a room.")
    @Argument(help: "The room's code.") var code: String
    @OptionGroup var store: StoreOptions

    func run() async throws {
        try await reporting {
            try await store.withClient { client in
                try await client.leaveRoom(String(code.trimmingPrefix("#")))
                Output.line(store.json ? #"{"left":true}"# : "left #\(code.trimmingPrefix("#"))")
            }
        }
    }
}

struct RoomList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "The rooms you are in.")
    @OptionGroup var store: StoreOptions

    func run() async throws {
        try await reporting {
            try await store.withClient { client in
                for room in try await client.rooms() { Output.room(room, json: store.json) }
            }
        }
    }
}

struct RoomInfo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "info", abstract: "A room's details.")
    @Argument(help: "The room's code.") var code: String
    @OptionGroup var store: StoreOptions

    func run() async throws {
        try await reporting {
            try await store.withClient { client in
                let room = String(code.trimmingPrefix("#"))
                guard let found = try await client.rooms().first(where: { $0.code == room }) else {
                    throw CLIError("you are not a member of #\(room)")
                }
                Output.room(found, json: store.json)
            }
        }
    }
}

struct RoomMembers: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "members", abstract: "A room's members, roles and devices.")
    @Argument(help: "The room's code.") var code: String
    @OptionGroup var store: StoreOptions

    func run() async throws {
        try await reporting {
            try await store.withClient { client in
                let room = String(code.trimmingPrefix("#"))
                let members = try await client.members(of: room)
                let unconfirmed = Set(try await client.unconfirmedMembers(of: room))
                for member in members {
                    if store.json {
                        Output.json([
                            "username": member.username, "userId": member.userId, "role": member.role.rawValue,
                            "devices": member.deviceIds, "admitted": !unconfirmed.contains(member.userId),
                        ])
                    } else {
                        let note = unconfirmed.contains(member.userId) ? "  (not admitted)" : ""
                        Output.line("\(member.username)  \(member.role.rawValue)  \(member.deviceIds.count) device(s)\(note)")
                    }
                }
            }
        }
    }
}

struct RoomAdmit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "admit", abstract: "Admit a member who joined (owner or admin): every member's device then trusts them.")
    @OptionGroup var member: RoomMemberArguments
    @OptionGroup var store: StoreOptions

    func run() async throws {
        try await reporting {
            try await store.withClient(connected: true) { client in
                try await client.admit(try await member.userId(client), to: member.room)
                try await client.flush()
                if await !client.failedSendIds.isEmpty { throw CLIError("the server refused the admission message") }
                Output.line(store.json ? #"{"admitted":true}"# : "admitted \(member.username) to #\(member.room)")
            }
        }
    }
}

struct RoomKick: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kick", abstract: "Remove a member; everyone's next message uses a new key they do not get.")
    @OptionGroup var member: RoomMemberArguments
    @OptionGroup var store: StoreOptions

    func run() async throws {
        try await reporting {
            try await store.withClient { client in
                try await client.removeMember(try await member.userId(client), from: member.room)
                Output.line(store.json ? #"{"removed":true}"# : "removed \(member.username) from #\(member.room)")
            }
        }
    }
}

struct RoomBan: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ban", abstract: "Ban a user (removing them if they are a member).")
    @Argument(help: "The room's code.") var code: String
    @Argument(help: "The username.") var username: String
    @OptionGroup var store: StoreOptions

    func run() async throws {
        try await reporting {
            try await store.withClient { client in
                let room = String(code.trimmingPrefix("#"))
                let userId = try await client.contact(named: username).userId
                try await client.ban(userId, from: room)
                Output.line(store.json ? #"{"banned":true}"# : "banned \(username) from #\(room)")
            }
        }
    }
}

struct RoomUnban: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "unban", abstract: "Lift a ban.")
    @Argument(help: "The room's code.") var code: String
    @Argument(help: "The username.") var username: String
    @OptionGroup var store: StoreOptions

    func run() async throws {
        try await reporting {
            try await store.withClient { client in
                let room = String(code.trimmingPrefix("#"))
                try await client.unban(try await client.contact(named: username).userId, from: room)
                Output.line(store.json ? #"{"unbanned":true}"# : "lifted the ban on \(username) in #\(room)")
            }
        }
    }
}

struct RoomPassword: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "password", abstract: "Set or remove a room's password.")
    @Argument(help: "The room's code.") var code: String
    @Flag(help: "Remove the password.") var remove = false
    @OptionGroup var password: RoomPasswordOptions
    @OptionGroup var store: StoreOptions

    func run() async throws {
        try await reporting {
            let room = String(code.trimmingPrefix("#"))
            let newPassword: String? = remove ? nil : try password.password() ?? Secrets.prompt("New room password: ")
            try await store.withClient { client in
                try await client.setRoomPassword(room, password: newPassword)
                Output.line(store.json ? #"{"passwordRequired":\#(newPassword != nil)}"# : (newPassword == nil ? "#\(room) has no password now" : "#\(room) has a new password"))
            }
        }
    }
}

struct ProfileCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "profile", abstract: "Show your profile, or change it with --display-name and --status.")
    @Option(help: "Your display name.") var displayName: String?
    @Option(help: "Your status line.") var status: String?
    @OptionGroup var store: StoreOptions

    func run() async throws {
        try await reporting {
            try await store.withClient { client in
                var profile = try await client.profile()
                if displayName != nil || status != nil {
                    profile = try await client.setProfile(
                        displayName: displayName ?? profile.displayName, statusText: status ?? profile.statusText,
                        avatarAttachmentId: profile.avatarAttachmentId)
                }
                if store.json {
                    Output.json(["username": profile.username, "displayName": profile.displayName, "status": profile.statusText])
                } else {
                    Output.line("\(profile.username): \(profile.displayName.isEmpty ? "(no display name)" : profile.displayName)")
                    if !profile.statusText.isEmpty { Output.line(profile.statusText) }
                }
            }
        }
    }
}
