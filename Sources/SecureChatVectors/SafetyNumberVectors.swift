import Foundation
import SecureChatProtocol

/// `securechat-fingerprint-vectors/1`: safety numbers from raw key bytes and stable identifiers.
///
/// ```
/// { "schema", "generator", "iterations",
///   "cases": [ { "name", "local_key", "local_identifier", "remote_key", "remote_identifier",
///                "local_fingerprint", "remote_fingerprint", "displayable", "scannable" } ] }
/// ```
/// `scannable` is the code shown by the local party. The first case is libsignal's published test
/// (keys with their 0x05 type byte, phone numbers as identifiers).
enum SafetyNumberVectors {
    static let schema = "securechat-fingerprint-vectors/1"

    static func generate() -> JSON {
        var inputs: [(String, [UInt8], [UInt8], [UInt8], [UInt8])] = [(
            "libsignal-published",
            Array(hex: "0506863bc66d02b40d27b8d49ca7c09e9239236f9d7d25d6fcca5ce13c7064d868"), Array("+14152222222".utf8),
            Array(hex: "05f781b6fb32fed9ba1cf2de978d4d5da28dc34046ae814402b5c0dbd96fda907b"), Array("+14153333333".utf8)
        )]
        var random = DeterministicBytes("safety-numbers")
        for index in 0..<3 {
            let local = try! IdentityKeyPair(seed: SecretBytes(random.next()))  // swiftlint:disable:this force_try
            let remote = try! IdentityKeyPair(seed: SecretBytes(random.next()))  // swiftlint:disable:this force_try
            inputs.append((
                "securechat-identities-\(index)", local.publicKey.rawRepresentation, Array("user-\(2 * index)".utf8),
                remote.publicKey.rawRepresentation, Array("user-\(2 * index + 1)".utf8)))
        }
        let cases: [JSON] = inputs.map { name, localKey, localId, remoteKey, remoteId in
            let number = SafetyNumber(localKey: localKey, localIdentifier: localId, remoteKey: remoteKey, remoteIdentifier: remoteId)
            return .object([
                .init("name", .string(name)),
                .init("local_key", .hex(localKey)), .init("local_identifier", .hex(localId)),
                .init("remote_key", .hex(remoteKey)), .init("remote_identifier", .hex(remoteId)),
                .init("local_fingerprint", .hex(SafetyNumber.fingerprint(key: localKey, stableIdentifier: localId))),
                .init("remote_fingerprint", .hex(SafetyNumber.fingerprint(key: remoteKey, stableIdentifier: remoteId))),
                .init("displayable", .string(number.displayable)),
                .init("scannable", .hex(number.scannable)),
            ])
        }
        return .object([
            .init("schema", .string(schema)),
            .init("generator", .string(VectorFile.generator + "; case libsignal-published from libsignal's tests")),
            .init("iterations", .number(ProtocolLimits.fingerprintIterations)),
            .init("cases", .array(cases)),
        ])
    }

    static func check(_ json: JSON) throws(VectorError) -> Int {
        let file = try json.object("$", allowed: ["schema", "generator", "iterations", "cases", "sha256"])
        _ = try file.string("generator")
        try expectEqual(try file.int("iterations"), ProtocolLimits.fingerprintIterations, "iterations")
        let cases = try file.array("cases")
        for (index, item) in cases.enumerated() {
            let vector = try item.object("cases[\(index)]", allowed: [
                "name", "local_key", "local_identifier", "remote_key", "remote_identifier", "local_fingerprint",
                "remote_fingerprint", "displayable", "scannable",
            ])
            let path = "cases[\(index)] (\(try vector.string("name")))"
            let localKey = try vector.hex("local_key"), localId = try vector.hex("local_identifier")
            let remoteKey = try vector.hex("remote_key"), remoteId = try vector.hex("remote_identifier")
            try expectEqual(SafetyNumber.fingerprint(key: localKey, stableIdentifier: localId), try vector.hex("local_fingerprint", length: 64), "\(path).local_fingerprint")
            try expectEqual(SafetyNumber.fingerprint(key: remoteKey, stableIdentifier: remoteId), try vector.hex("remote_fingerprint", length: 64), "\(path).remote_fingerprint")
            let local = SafetyNumber(localKey: localKey, localIdentifier: localId, remoteKey: remoteKey, remoteIdentifier: remoteId)
            let remote = SafetyNumber(localKey: remoteKey, localIdentifier: remoteId, remoteKey: localKey, remoteIdentifier: localId)
            try expectEqual(local.displayable, try vector.string("displayable"), "\(path).displayable")
            try expectEqual(remote.displayable, local.displayable, "\(path): the two sides' numbers")
            try expectEqual(local.scannable, try vector.hex("scannable"), "\(path).scannable")
            guard (try? remote.matches(scanned: local.scannable)) == true else { throw VectorError("\(path): the other side does not match the scan") }
        }
        return cases.count
    }
}

extension Array where Element == UInt8 {
    /// For literals in generators only.
    init(hex: String) {
        self = (try? Hex.decode(hex, path: "literal")) ?? []
    }
}
