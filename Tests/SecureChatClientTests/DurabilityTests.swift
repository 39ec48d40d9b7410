import Foundation
import Testing

@testable import SecureChatClient

@Suite("Client durability", .serialized)
struct DurabilityTests {
    static var probe: URL { AttachmentTests.probe }

    @Test("reconnects and a server restart during traffic: every message arrives once, in order")
    func reconnectDuringTraffic() async throws {
        try await withAliceAndBob { server, alice, bob, directories in
            let bobEvents = EventLog(bob)
            await alice.connect()
            await bob.connect()
            let total = 300
            let sender = Task {
                for index in 0..<total { try await alice.send("n\(index)", to: "bob") }
            }
            for round in 0..<6 {
                try await Task.sleep(for: .milliseconds(150))
                if round == 3 {
                    try server.restart()
                } else {
                    await bob.disconnect()
                    await bob.connect()
                }
            }
            try await sender.value
            try await alice.flush(timeout: .seconds(60))
            #expect(try await bobEvents.texts(total) == (0..<total).map { "n\($0)" })
            await #expect(throws: HarnessError.self) { try await bobEvents.message(timeout: 1) }
        }    }

    @Test("killed mid-write three times: the store opens, and every message it kept reaches the peer once, in order")
    func killedMidWrite() async throws {
        try await withAliceAndBob { server, alice, bob, directories in
            let bobId = await bob.userId
            await alice.close()

            var reported = 0
            for round in 0..<3 {
                let process = Process()
                process.executableURL = Self.probe
                process.arguments = ["send-loop", directories[0].path, "test passphrase", "bob"]
                let output = Pipe()
                process.standardOutput = output
                try process.run()
                // Let it get going, then kill it at a moment that differs each round.
                var seen = ""
                while !seen.contains("sent \(reported + 10 + round * 7)\n") {
                    let chunk = output.fileHandleForReading.availableData
                    if chunk.isEmpty { break }
                    seen += String(decoding: chunk, as: UTF8.self)
                }
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
                #expect(process.terminationReason == .uncaughtSignal)
                seen += String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
                reported = seen.split(separator: "\n").compactMap { Int($0.split(separator: " ").last ?? "") }.max().map { $0 + 1 } ?? reported
            }

            let reopened = try await SecureChatClient.open(directory: directories[0], passphrase: "test passphrase")
            let kept = try await reopened.history(.direct(userId: bobId), limit: 100_000)
            // Everything reported as sent was kept, numbered without gaps.
            #expect(kept.count >= reported)
            #expect(kept.map(\.envelope.content) == (0..<kept.count).map { .text("message \($0)", replyTo: nil) })
            await reopened.connect()
            try await reopened.flush(timeout: .seconds(60))
            let bobEvents = EventLog(bob)
            await bob.connect()
            #expect(try await bobEvents.texts(kept.count) == (0..<kept.count).map { "message \($0)" })
            await #expect(throws: HarnessError.self) { try await bobEvents.message(timeout: 1) }
            await reopened.close()
        }    }
}
