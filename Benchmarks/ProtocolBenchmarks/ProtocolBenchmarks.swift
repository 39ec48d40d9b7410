import Crypto
import Foundation
import SecureChatKeys
import SecureChatProtocol
import _CryptoExtras

/// Release-mode benchmarks of the protocol core, each beside the primitives it is made of.
///
/// Run: `swift run -c release ProtocolBenchmarks [seconds-per-measurement]`.
/// "Sum of primitives" adds the measured per-operation cost of swift-crypto's own primitives
/// (HMAC<SHA256>, HKDF<SHA256>, AES._CBC, X25519, Ed25519, AES.GCM, SHA256) in the counts the
/// operation performs; the ratio is operation cost ÷ that sum.
@main
struct ProtocolBenchmarks {
    static func main() throws {
        if CommandLine.arguments.dropFirst().first == "--profile-steady" {
            // A fixed amount of work for instruction-counting profilers (valgrind --tool=callgrind).
            let count = CommandLine.arguments.dropFirst(2).first.flatMap(Int.init) ?? 10_000
            var (alice, bob) = try Operations.pair()
            let plaintext = [UInt8](repeating: 0x61, count: 100)
            for _ in 0..<count {
                let (header, ciphertext) = try alice.encrypt(plaintext)
                consume(try bob.decrypt(header: header, ciphertext: ciphertext))
            }
            return
        }
        if CommandLine.arguments.dropFirst().first == "--profile-attachment" {
            let piece = [UInt8](repeating: 0x42, count: 1 << 20)
            for _ in 0..<8 {
                var encryptor = AttachmentEncryptor(key: .random(count: 32))
                for _ in 0..<16 { consume(try encryptor.update(piece)) }
                consume(try encryptor.finalize())
            }
            return
        }
        if CommandLine.arguments.dropFirst().first == "--profile-identity" {
            let raw = IdentityKeyPair().publicKey.rawRepresentation
            for _ in 0..<3000 { consume(try IdentityKey(rawRepresentation: raw)) }
            return
        }
        let budget = CommandLine.arguments.dropFirst().first.flatMap(Double.init) ?? 1.0
        let machine = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8))?
            .split(separator: "\n").first { $0.hasPrefix("model name") }?.split(separator: ":").last?
            .trimmingCharacters(in: .whitespaces) ?? "unknown CPU"
        print("SecureChat protocol benchmarks — \(machine), \(ProcessInfo.processInfo.activeProcessorCount) cores, one thread, \(budget) s per measurement")
        print("")

        let primitives = try Primitives.measureAll(budget: budget)
        print("Primitives (swift-crypto 4.5.2 unless noted)")
        for measurement in primitives.all {
            print("  \(pad(measurement.name, 52)) \(pad(format(measurement.microseconds, decimals: 3) + " µs", 14)) \(format(measurement.perSecond, decimals: 0))/s")
        }
        print("")
        print("Operations")
        for (measurement, sum, parts) in try Operations.measureAll(budget: budget, primitives: primitives) {
            print("  \(pad(measurement.name, 52)) \(pad(format(measurement.microseconds, decimals: 3) + " µs", 14)) \(pad(format(measurement.perSecond, decimals: 0) + "/s", 12))"
                + " primitives \(format(sum, decimals: 3)) µs, ratio \(format(measurement.microseconds / sum)) [\(parts)]")
        }
    }
}
