import Foundation
import Testing

/// The `securechat` binary as a person or a script runs it, against the real server binary.
@Suite("securechat command line", .serialized)
struct CommandLineTests {
    struct Run {
        var status: Int32
        var output: String
        var errors: String
    }

    static var binary: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent(".build/debug/securechat")
    }

    /// Runs the CLI with `environment` added to this process's, standard input closed.
    static func run(_ arguments: [String], environment: [String: String]) throws -> Run {
        let process = Process()
        process.executableURL = binary
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let outputData = output.fileHandleForReading.readDataToEndOfFile()
        let errorData = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Run(status: process.terminationStatus, output: String(decoding: outputData, as: UTF8.self), errors: String(decoding: errorData, as: UTF8.self))
    }

    @Test("two people chat in a few commands; failures are one line and a non-zero exit")
    func twoPeople() throws {
        let server = try ServerBinary()
        defer { server.stop() }
        let root = temporaryDirectory("cli")
        defer { try? FileManager.default.removeItem(at: root) }
        func person(_ name: String) -> [String: String] {
            [
                "SECURECHAT_HOME": root.appendingPathComponent(name).path, "SECURECHAT_SERVER": server.url.absoluteString,
                "SECURECHAT_PASSPHRASE": "\(name)'s local passphrase", "SECURECHAT_PASSWORD": "\(name)'s account password",
            ]
        }
        for name in ["alice", "bob"] {
            let registered = try Self.run(["register", name], environment: person(name))
            #expect(registered.status == 0, "\(registered.errors)")
            #expect(registered.output.contains("registered as \(name)"))
        }
        let sent = try Self.run(["send", "bob", "hello", "from", "the", "shell"], environment: person("alice"))
        #expect(sent.status == 0, "\(sent.errors)")
        let received = try Self.run(["listen", "--count", "1", "--timeout", "20", "--json"], environment: person("bob"))
        #expect(received.status == 0, "\(received.errors)")
        let line = try #require(received.output.split(separator: "\n").first)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(object["text"] as? String == "hello from the shell")
        #expect(object["from"] as? String == "alice")

        let answered = try Self.run(["send", "alice", "hi", "alice", "--json"], environment: person("bob"))
        #expect(answered.status == 0 && answered.output.contains(#""sent":true"#), "\(answered.errors)")
        let history = try Self.run(["listen", "--count", "1", "--timeout", "20"], environment: person("alice"))
        #expect(history.output.contains("bob: hi alice"))
        let archived = try Self.run(["history", "bob"], environment: person("alice"))
        #expect(archived.output.contains("you [") && archived.output.contains(": hello from the shell") && archived.output.contains("bob ["))
        #expect(archived.output.contains(": hi alice"))

        var wrong = person("alice")
        wrong["SECURECHAT_PASSPHRASE"] = "not the passphrase"
        let failures = [
            (try Self.run(["whoami"], environment: wrong), "wrong passphrase"),
            (try Self.run(["send", "nobody", "hi"], environment: person("alice")), "no user named nobody"),
            (try Self.run(["whoami"], environment: person("carol")), "register or log in first"),
            (try Self.run(["register", "alice"], environment: person("alice2")), "409"),
        ]
        for (run, expected) in failures {
            #expect(run.status == 1)
            let lines = run.errors.split(separator: "\n")
            #expect(lines.count == 1 && lines[0].hasPrefix("securechat: ") && run.errors.contains(expected), "\(run.errors)")
        }
    }
}
