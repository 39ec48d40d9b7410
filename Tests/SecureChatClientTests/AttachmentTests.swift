import Crypto
import Foundation
import Testing

@testable import SecureChatClient

@Suite("Attachments end to end", .serialized)
struct AttachmentTests {
    static var probe: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent(".build/debug/ClientProbe")
    }

    /// Runs the probe and returns its peak memory during the transfer, in KiB above its baseline.
    static func probe(_ arguments: [String]) throws -> (baseline: Int, peak: Int) {
        let process = Process()
        process.executableURL = probe
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        try #require(process.terminationStatus == 0, "ClientProbe \(arguments[0]) failed")
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Int])
        return (try #require(object["baselineKiB"]), try #require(object["peakKiB"]))
    }

    @Test("a 50 MiB file goes through encrypted, in constant memory, and the server keeps none of it in the clear")
    func largeFile() async throws {
        let server = try ServerBinary()
        defer { server.stop() }
        let directories = ["alice", "bob"].map(temporaryDirectory)
        let scratch = temporaryDirectory("files")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { for directory in directories + [scratch] { try? FileManager.default.removeItem(at: directory) } }
        let alice = try await SecureChatClient.registerForTesting(server: server.url, username: "alice", password: "alice password 1", directory: directories[0])
        let bob = try await SecureChatClient.registerForTesting(server: server.url, username: "bob", password: "bob password 12", directory: directories[1])
        await alice.close()
        await bob.close()

        // 50 MiB of a pattern no encryption could produce by chance.
        let original = scratch.appendingPathComponent("big.bin")
        #expect(FileManager.default.createFile(atPath: original.path, contents: nil))
        let writer = try FileHandle(forWritingTo: original)
        let block = Data((0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ ($0 >> 8)) })
        var digest = SHA256()
        for index in 0..<50 {
            var chunk = block
            chunk[0] = UInt8(index)
            writer.write(chunk)
            digest.update(data: chunk)
        }
        try writer.close()

        let sent = try Self.probe(["send", directories[0].path, "test passphrase", "bob", original.path])
        let copy = scratch.appendingPathComponent("copy.bin")
        let received = try Self.probe(["receive", directories[1].path, "test passphrase", copy.path])
        let copied = try Data(contentsOf: copy)
        #expect(copied.count == 50 << 20)
        #expect(Data(SHA256.hash(data: copied)) == Data(digest.finalize()))
        // The transfer itself: growth over the process's baseline, far below the 51,200 KiB file.
        #expect(sent.peak - sent.baseline < 12 * 1024, "sending peaked at \(sent.peak) KiB over \(sent.baseline) KiB")
        #expect(received.peak - received.baseline < 12 * 1024, "receiving peaked at \(received.peak) KiB over \(received.baseline) KiB")
        print("attachment transfer of 50 MiB: send peak \(sent.peak) KiB (baseline \(sent.baseline)), receive peak \(received.peak) KiB (baseline \(received.baseline))")

        let stored = try server.storedBytes()
        #expect(stored.count > 50 << 20)
        #expect(stored.range(of: block.subdata(in: 1000..<1064)) == nil, "the server holds the file's bytes in the clear")
    }

    @Test("a tampered stream is refused and leaves no file; an existing file is not replaced unless asked")
    func tamperedAndExisting() async throws {
        let server = try ServerBinary()
        defer { server.stop() }
        let directories = ["alice", "bob"].map(temporaryDirectory)
        let scratch = temporaryDirectory("files")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { for directory in directories + [scratch] { try? FileManager.default.removeItem(at: directory) } }
        let alice = try await SecureChatClient.registerForTesting(server: server.url, username: "alice", password: "alice password 1", directory: directories[0])
        let bob = try await SecureChatClient.registerForTesting(server: server.url, username: "bob", password: "bob password 12", directory: directories[1])
        let bobEvents = EventLog(bob)
        await alice.connect()
        await bob.connect()
        let file = scratch.appendingPathComponent("note.txt")
        try Data("meet me by the old oak".utf8).write(to: file)
        try await alice.sendFile(file, to: "bob", caption: "directions", contentType: "text/plain")
        try await alice.flush()
        let message = try await bobEvents.message()
        guard case .attachment(let pointer, let caption) = message.envelope.content else {
            Issue.record("expected a file message")
            return
        }
        #expect(caption == "directions" && pointer.name == "note.txt" && pointer.size == 22 && pointer.contentType == "text/plain")

        let target = scratch.appendingPathComponent("received.txt")
        try await bob.download(pointer, to: target)
        #expect(try Data(contentsOf: target) == Data("meet me by the old oak".utf8))
        await #expect(throws: ClientError.file("\(target.path) exists already")) { try await bob.download(pointer, to: target) }
        try await bob.download(pointer, to: target, overwrite: true)

        // A pointer whose digest does not match what the server holds: refused, nothing written.
        var forged = pointer
        forged.digest[0] ^= 1
        let other = scratch.appendingPathComponent("forged.txt")
        await #expect(throws: ClientError.self) { try await bob.download(forged, to: other) }
        #expect(!FileManager.default.fileExists(atPath: other.path))
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: scratch.path).filter { $0.hasSuffix(".partial") }
        #expect(leftovers.isEmpty)
        var wrongKey = pointer
        wrongKey.key[5] ^= 1
        await #expect(throws: ClientError.self) { try await bob.download(wrongKey, to: other) }
        #expect(!FileManager.default.fileExists(atPath: other.path))
        await alice.close()
        await bob.close()
    }
}
