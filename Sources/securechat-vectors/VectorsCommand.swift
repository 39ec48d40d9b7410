import ArgumentParser
import Foundation
import SecureChatVectors

@main
struct VectorsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "securechat-vectors",
        abstract: "Generate and check SecureChat protocol test vectors.",
        subcommands: [Generate.self, Check.self])

    struct Generate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write every vector file into DIR, deterministically (the same bytes on every run).")

        @Argument(help: "Directory to write into (created if missing).")
        var directory: String

        func run() throws {
            let url = URL(fileURLWithPath: directory, isDirectory: true)
            try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
            for (name, json) in try VectorFile.generateAll() {
                let data = VectorFile.seal(json)
                try data.write(to: url.appendingPathComponent(name), options: .atomic)
                print("wrote \(url.appendingPathComponent(name).path) (\(data.count) bytes)")
            }
        }
    }

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check vector files written by any implementation; exits non-zero on the first mismatch.")

        @Argument(help: "Vector files to check.")
        var files: [String]

        func run() throws {
            var failed = false
            for file in files {
                do {
                    let data = try Data(contentsOf: URL(fileURLWithPath: file))
                    print("ok    \(file): \(try VectorFile.check(data))")
                } catch let error as VectorError {
                    failed = true
                    FileHandle.standardError.write(Data("FAIL  \(file): \(error)\n".utf8))
                } catch {
                    failed = true
                    FileHandle.standardError.write(Data("FAIL  \(file): cannot read: \(error.localizedDescription)\n".utf8))
                }
            }
            if failed { throw ExitCode(1) }
        }
    }
}
