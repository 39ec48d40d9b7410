import Foundation
import SecureChatAPI
import SecureChatClient

/// What the commands print: lines for people, one JSON object per line with --json.
enum Output {
    static func line(_ text: String) {
        FileHandle.standardOutput.write(Data((text + "\n").utf8))
    }

    static func json(_ object: [String: Any]) {
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]) else { return }
        line(String(decoding: data, as: UTF8.self))
    }

    static func milliseconds(_ date: Date) -> Int64 { APIJSON.milliseconds(date) }

    static func date(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.dateFormat = "yyyy-MM-dd HH:mm"
        return formatter.string(from: date)
    }

    static func time(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.dateFormat = "HH:mm"
        return formatter.string(from: date)
    }

    static func account(_ client: SecureChatClient, json: Bool, verb: String?) async {
        let fingerprint = await client.identityKey.prefix(8).map { String(format: "%02x", $0) }.joined()
        if json {
            self.json([
                "username": await client.username, "userId": await client.userId, "deviceId": await client.deviceId,
                "server": await client.server.absoluteString, "identityKey": await client.identityKey.base64EncodedString(),
            ])
        } else {
            if let verb { line("\(verb) as \(await client.username)") }
            line("user \(await client.username) (\(await client.userId)), device \(await client.deviceId) on \(await client.server.absoluteString)")
            line("identity key \(fingerprint)…")
        }
    }

    /// Events other than messages, for people (on standard error, so scripts reading standard
    /// output see messages only).
    static func notice(_ event: ClientEvent, client: SecureChatClient) async {
        let text: String
        switch event {
        case .identityChanged(let contact):
            text = "\(contact.username)'s devices changed: compare safety numbers ('securechat verify \(contact.username)'), then 'securechat accept \(contact.username)'"
        case .undecryptable(let sender, let reason):
            text = "a message from \(await client.displayName(of: sender.userId)) could not be read: \(reason)"
        case .unconfirmedMember(let room, let userId):
            text = "\(await client.displayName(of: userId)) is in #\(room) but no admin admitted them: they get none of your keys ('securechat room admit \(room) USER' if you are an admin)"
        case .memberAdmitted(let room, let userId, let by):
            text = "\(await client.displayName(of: userId)) was admitted to #\(room) by \(await client.displayName(of: by))"
        case .roomEvent(let event):
            text = "#\(event.room): \(await client.displayName(of: event.userId)) \(event.change.rawValue)"
        case .connection(.offline(let reason)):
            text = "offline (\(reason)); reconnecting"
        case .sessionEnded:
            text = "the server ended this device's session: log in again"
        default:
            return
        }
        FileHandle.standardError.write(Data("securechat: \(text)\n".utf8))
    }

    /// A message as one line: "[12:03] alice: hello".
    static func message(_ message: ChatMessage, client: SecureChatClient, json: Bool) async {
        let sender = await client.displayName(of: message.sender.userId)
        let content = describe(message.envelope.content)
        if json {
            var object: [String: Any] = [
                "type": "message", "id": message.id, "from": sender, "fromUserId": message.sender.userId,
                "fromDevice": message.sender.deviceId, "sentAt": milliseconds(message.sentAt), "outgoing": message.outgoing,
                "kind": content.kind, "unconfirmedSender": message.unconfirmedSender ?? false,
            ]
            if let text = content.text { object["text"] = text }
            if case .attachment(let pointer, _) = message.envelope.content {
                object["fileName"] = pointer.name
                object["size"] = pointer.size
                object["contentType"] = pointer.contentType
            }
            if let target = content.target { object["target"] = target }
            self.json(object)
        } else {
            line("[\(time(message.sentAt))] \(sender)\(message.unconfirmedSender == true ? " (unconfirmed)" : ""): \(content.line)")
        }
    }

    /// A timeline entry as one line: current text, "(edited)", "(deleted)", reactions.
    static func item(_ item: TimelineItem, client: SecureChatClient, json: Bool) async {
        let message = item.message
        let sender = await client.displayName(of: message.sender.userId)
        if json {
            var object: [String: Any] = [
                "type": "message", "id": message.id, "from": sender, "fromUserId": message.sender.userId,
                "sentAt": milliseconds(message.sentAt), "outgoing": message.outgoing, "edited": item.edited, "deleted": item.deleted,
                "reactions": item.reactions.mapValues { $0.count },
            ]
            if let text = item.text { object["text"] = text }
            if let replyTo = item.replyTo { object["replyTo"] = replyTo }
            if case .attachment(let pointer, _) = message.envelope.content {
                object["fileName"] = pointer.name
                object["size"] = pointer.size
            }
            self.json(object)
            return
        }
        var text: String
        if item.deleted {
            text = "(deleted)"
        } else if case .attachment(let pointer, _) = message.envelope.content {
            text = "(file \(pointer.name), \(pointer.size) bytes)" + (item.text.map { " \($0)" } ?? "")
        } else {
            text = item.text ?? ""
        }
        if let replyTo = item.replyTo { text = "(reply to \(replyTo.prefix(6))) " + text }
        if item.edited { text += " (edited)" }
        if !item.reactions.isEmpty {
            text += "  " + item.reactions.keys.sorted().map { "\($0)\(item.reactions[$0]?.count ?? 0)" }.joined(separator: " ")
        }
        let mark = message.unconfirmedSender == true ? " (unconfirmed)" : ""
        line("[\(date(message.sentAt))] \(message.outgoing ? "you" : sender)\(mark) [\(message.id.prefix(6))]: \(text)")
    }

    struct Described {
        var kind: String
        var text: String?
        var target: String?
        var line: String
    }

    static func describe(_ content: Content) -> Described {
        switch content {
        case .text(let text, let replyTo):
            Described(kind: "text", text: text, target: replyTo, line: replyTo.map { "(reply to \($0.prefix(6))) \(text)" } ?? text)
        case .edit(let target, let text):
            Described(kind: "edit", text: text, target: target, line: "(edited \(target.prefix(6))) \(text)")
        case .delete(let target):
            Described(kind: "delete", text: nil, target: target, line: "(deleted \(target.prefix(6)))")
        case .reaction(let target, let emoji, let remove):
            Described(kind: "reaction", text: emoji, target: target, line: remove ? "(took back \(emoji) on \(target.prefix(6)))" : "(reacted \(emoji) to \(target.prefix(6)))")
        case .attachment(let pointer, let caption):
            Described(kind: "attachment", text: caption, target: pointer.attachmentId, line: "(file \(pointer.name), \(pointer.size) bytes) \(caption ?? "")")
        case .receipt(let receipt, let ids):
            Described(kind: "receipt", text: receipt.rawValue, target: ids.first, line: "(\(receipt.rawValue) \(ids.count))")
        case .typing(let started):
            Described(kind: "typing", text: started ? "started" : "stopped", target: nil, line: started ? "is typing…" : "stopped typing")
        case .senderKey:
            Described(kind: "senderKey", text: nil, target: nil, line: "(a room key)")
        case .call(let signal):
            Described(kind: "call", text: signal.kind.rawValue, target: signal.callId, line: "(call \(signal.kind.rawValue))")
        case .admission(let userIds):
            Described(kind: "admission", text: userIds.joined(separator: ","), target: nil, line: "(admitted \(userIds.count) member(s))")
        case .profile(let avatar):
            Described(kind: "profile", text: avatar?.name, target: avatar?.attachmentId, line: avatar == nil ? "(removed their picture)" : "(changed their picture)")
        }
    }
}
