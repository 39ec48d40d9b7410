import Foundation
import SecureChatFuzzing

#if canImport(Glibc)
import Glibc
#endif

/// libFuzzer's entry, present only in a build with `-sanitize=fuzzer` (scripts/fuzz makes one).
/// Looked up at run time, so that the ordinary build links without libFuzzer.
private typealias FuzzerCallback = @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
private typealias FuzzerDriver = @convention(c) (
    UnsafeMutablePointer<CInt>, UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>, FuzzerCallback
) -> CInt

/// Set once, before libFuzzer starts calling back (a C callback captures nothing).
nonisolated(unsafe) private var selectedTarget = FuzzTarget.clientFrame

/// libFuzzer also looks for this symbol by name; the driver is given it explicitly as well.
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    do {
        try selectedTarget.check(bytes)
    } catch {
        // libFuzzer keeps the input that crashed as the reproducer.
        fatalError("\(error)")
    }
    return 0
}

private let targetVariable = "SECURECHAT_FUZZ_TARGET"

/// `securechat-fuzz TARGET [libFuzzer options] [corpus folders]`, or
/// `securechat-fuzz TARGET --write-seeds FOLDER`.
@main
struct FuzzMain {
    static func main() throws {
        var arguments = CommandLine.arguments
        let usage = "usage: securechat-fuzz (\(FuzzTarget.allCases.map(\.rawValue).joined(separator: "|"))) [--write-seeds FOLDER | libFuzzer options]"
        // libFuzzer runs itself again for -merge and -fork with its own options only: the target
        // travels to those processes in the environment.
        if arguments.count >= 2, FuzzTarget(rawValue: arguments[1]) != nil {
            setenv(targetVariable, arguments[1], 1)
            arguments.remove(at: 1)
        }
        guard let name = getenv(targetVariable), let target = FuzzTarget(rawValue: String(cString: name)) else {
            FileHandle.standardError.write(Data((usage + "\n").utf8))
            exit(2)
        }
        if arguments.count == 3, arguments[1] == "--write-seeds" {
            let folder = URL(fileURLWithPath: arguments[2])
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            for (index, seed) in try target.seeds().enumerated() {
                try Data(seed).write(to: folder.appendingPathComponent("seed-\(index)"))
            }
            return
        }
        guard let symbol = dlsym(nil, "LLVMFuzzerRunDriver") else {
            FileHandle.standardError.write(Data("securechat-fuzz: built without libFuzzer; run scripts/fuzz\n".utf8))
            exit(2)
        }
        selectedTarget = target
        let driver = unsafeBitCast(symbol, to: FuzzerDriver.self)
        var cArguments = arguments.map { strdup($0) } + [nil]
        var argc = CInt(arguments.count)
        let status = cArguments.withUnsafeMutableBufferPointer { buffer -> CInt in
            var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = buffer.baseAddress
            return driver(&argc, &argv, fuzzOneInput)
        }
        exit(status)
    }
}
