import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Passwords and passphrases: from a file or a prompt with the terminal's echo off, never from
/// the command line (where other users can read it in the process list).
enum Secrets {
    static func firstLine(of path: String, what: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: (path as NSString).expandingTildeInPath),
              let text = String(data: data, encoding: .utf8)
        else { throw CLIError("cannot read the \(what) file \(path)") }
        let line = text.split(separator: "\n", omittingEmptySubsequences: false).first.map(String.init) ?? ""
        guard !line.isEmpty else { throw CLIError("the \(what) file \(path) is empty") }
        return line
    }

    static func prompt(_ text: String) throws -> String {
        FileHandle.standardError.write(Data(text.utf8))
        var original = termios()
        let isTerminal = isatty(STDIN_FILENO) == 1 && tcgetattr(STDIN_FILENO, &original) == 0
        if isTerminal {
            var silent = original
            silent.c_lflag &= ~tcflag_t(ECHO)
            tcsetattr(STDIN_FILENO, TCSAFLUSH, &silent)
        }
        // The typed newline is not echoed, and piped input has none to show: end the prompt's line.
        defer {
            if isTerminal { tcsetattr(STDIN_FILENO, TCSAFLUSH, &original) }
            FileHandle.standardError.write(Data("\n".utf8))
        }
        guard let line = readLine(strippingNewline: true), !line.isEmpty else { throw CLIError("nothing entered") }
        return line
    }

    /// The account password: SECURECHAT_PASSWORD, --password-file, or a prompt.
    static func password(file: String?, confirm: Bool) throws -> String {
        if let file { return try firstLine(of: file, what: "password") }
        if let value = ProcessInfo.processInfo.environment["SECURECHAT_PASSWORD"], !value.isEmpty { return value }
        let value = try prompt("Account password: ")
        if confirm, try prompt("Repeat it: ") != value { throw CLIError("the passwords differ") }
        return value
    }
}
