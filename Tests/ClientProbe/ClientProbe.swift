import Foundation
import SecureChatClient

/// The SDK in a process of its own.
///
/// `send` and `receive` move one file and report the process's peak memory during the transfer
/// alone (the peak is reset once the store is open and the connection is up, so the passphrase
/// derivation and start-up do not count). `send-loop` sends numbered messages until it is killed,
/// printing each number once its send is committed locally.
///
///     ClientProbe send      STORE PASSPHRASE USERNAME FILE
///     ClientProbe receive   STORE PASSPHRASE OUTPUT
///     ClientProbe send-loop STORE PASSPHRASE USERNAME
@main
enum ClientProbe {
    static func main() async {
        let arguments = CommandLine.arguments
        guard arguments.count >= 5 else {
            FileHandle.standardError.write(Data("usage: ClientProbe send|receive|send-loop STORE PASSPHRASE …\n".utf8))
            exit(2)
        }
        if arguments[1] == "send-loop" {
            await sendLoop(store: arguments[2], passphrase: arguments[3], to: arguments[4])
            return
        }
        do {
            let client = try await SecureChatClient.open(directory: URL(fileURLWithPath: arguments[2]), passphrase: arguments[3])
            await client.connect()
            await client.waitUntilCaughtUp()
            let baseline = memory("VmRSS")
            try "5".write(toFile: "/proc/self/clear_refs", atomically: false, encoding: .utf8)
            switch arguments[1] {
            case "send" where arguments.count == 6:
                try await client.sendFile(URL(fileURLWithPath: arguments[5]), to: arguments[4])
                try await client.flush()
            case "receive":
                let message = try await firstFile(in: client)
                guard case .attachment(let pointer, _) = message.envelope.content else { exit(3) }
                try await client.download(pointer, to: URL(fileURLWithPath: arguments[4]))
            default:
                exit(2)
            }
            print(#"{"baselineKiB":\#(baseline),"peakKiB":\#(memory("VmHWM"))}"#)
            await client.close()
        } catch {
            FileHandle.standardError.write(Data("ClientProbe: \(error)\n".utf8))
            exit(1)
        }
    }

    static func sendLoop(store: String, passphrase: String, to username: String) async {
        do {
            let client = try await SecureChatClient.open(directory: URL(fileURLWithPath: store), passphrase: passphrase)
            await client.connect()
            let contact = try await client.contact(named: username)
            var next = try await client.history(.direct(userId: contact.userId), limit: 1_000_000).count
            while true {
                try await client.send("message \(next)", to: username)
                // Unbuffered: the test reads each line while this process runs.
                FileHandle.standardOutput.write(Data("sent \(next)\n".utf8))
                next += 1
            }
        } catch {
            FileHandle.standardError.write(Data("ClientProbe: \(error)\n".utf8))
            exit(1)
        }
    }

    static func firstFile(in client: SecureChatClient) async throws -> ChatMessage {
        for await event in client.events {
            if case .message(let message) = event, case .attachment = message.envelope.content { return message }
        }
        throw ClientError.closed
    }

    /// A field of /proc/self/status, in KiB.
    static func memory(_ field: String) -> Int {
        let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
        guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix(field + ":") }) else { return -1 }
        return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") ?? -1
    }
}
