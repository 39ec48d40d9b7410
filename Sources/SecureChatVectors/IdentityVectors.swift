import Crypto
import Foundation
import SecureChatKeys
import SecureChatProtocol

/// `securechat-identity-vectors/1`: Ed25519 seeds, their public keys, and both X25519 forms;
/// plus Ed25519 encodings every implementation must refuse.
///
/// ```
/// { "schema", "generator",
///   "cases": [ {"ed25519_seed", "ed25519_public", "x25519_private", "x25519_public"} ],
///   "invalid_public_keys": [ {"ed25519_public", "reason"} ] }
/// ```
enum IdentityVectors {
    static let schema = "securechat-identity-vectors/1"

    static func generate() -> JSON {
        var random = DeterministicBytes("identity")
        var cases: [JSON] = []
        for _ in 0..<32 {
            // Deterministic seeds always make valid identities.
            let identity = try! IdentityKeyPair(seed: SecretBytes(random.next()))  // swiftlint:disable:this force_try
            cases.append(.object([
                .init("ed25519_seed", .hex(identity.seed.bytes)),
                .init("ed25519_public", .hex(identity.publicKey.rawRepresentation)),
                .init("x25519_private", .hex(identity.agreementPrivateKey.bytes)),
                .init("x25519_public", .hex(identity.publicKey.agreementKey.rawRepresentation)),
            ]))
        }
        var invalid: [JSON] = []
        let prime = [0xed] + [UInt8](repeating: 0xff, count: 30) + [0x7f]
        let candidates: [([UInt8], String)] = [
            ([1] + [UInt8](repeating: 0, count: 31), "the identity point (small order)"),
            ([UInt8](repeating: 0, count: 32), "y = 0: a point of order 4"),
            ([0xec] + [UInt8](repeating: 0xff, count: 30) + [0x7f], "y = p - 1: a point of order 2"),
            (prime, "y = p: non-canonical encoding"),
            ([0xee] + [UInt8](repeating: 0xff, count: 30) + [0x7f], "y = p + 1: non-canonical encoding of the identity"),
            ([2] + [UInt8](repeating: 0, count: 31), "y = 2: not on the curve"),
            ([1] + [UInt8](repeating: 0, count: 30) + [0x80], "x = 0 with the sign bit set"),
            ([UInt8](repeating: 0xff, count: 32), "y = 2^255 - 1 with sign bit: non-canonical"),
        ]
        for (bytes, reason) in candidates {
            precondition((try? IdentityKey(rawRepresentation: bytes)) == nil, "vector key must be invalid: \(reason)")
            invalid.append(.object([.init("ed25519_public", .hex(bytes)), .init("reason", .string(reason))]))
        }
        return .object([
            .init("schema", .string(schema)),
            .init("generator", .string(VectorFile.generator)),
            .init("cases", .array(cases)),
            .init("invalid_public_keys", .array(invalid)),
        ])
    }

    static func check(_ json: JSON) throws(VectorError) -> Int {
        let file = try json.object("$", allowed: ["schema", "generator", "cases", "invalid_public_keys", "sha256"])
        _ = try file.string("generator")
        let cases = try file.array("cases")
        for (index, item) in cases.enumerated() {
            let path = "cases[\(index)]"
            let vector = try item.object(path, allowed: ["ed25519_seed", "ed25519_public", "x25519_private", "x25519_public"])
            let identity: IdentityKeyPair
            do {
                identity = try IdentityKeyPair(seed: SecretBytes(try vector.hex("ed25519_seed", length: 32)))
            } catch let error as VectorError {
                throw error
            } catch {
                throw VectorError("\(path): bad seed")
            }
            try expectEqual(identity.publicKey.rawRepresentation, try vector.hex("ed25519_public", length: 32), "\(path).ed25519_public")
            try expectEqual(identity.agreementPrivateKey.bytes, try vector.hex("x25519_private", length: 32), "\(path).x25519_private")
            let fromPublic: IdentityKey
            do {
                fromPublic = try IdentityKey(rawRepresentation: try vector.hex("ed25519_public", length: 32))
            } catch let error as VectorError {
                throw error
            } catch {
                throw VectorError("\(path).ed25519_public: refused as \(error)")
            }
            try expectEqual(fromPublic.agreementKey.rawRepresentation, try vector.hex("x25519_public", length: 32), "\(path).x25519_public")
        }
        let invalid = try file.array("invalid_public_keys")
        for (index, item) in invalid.enumerated() {
            let path = "invalid_public_keys[\(index)]"
            let vector = try item.object(path, allowed: ["ed25519_public", "reason"])
            _ = try vector.string("reason")
            if (try? IdentityKey(rawRepresentation: try vector.hex("ed25519_public", length: 32))) != nil {
                throw VectorError("\(path): accepted a key every implementation must refuse")
            }
        }
        return cases.count + invalid.count
    }
}

func expectEqual(_ actual: [UInt8], _ expected: [UInt8], _ path: String) throws(VectorError) {
    guard actual == expected else {
        throw VectorError("\(path): expected \(Hex.encode(expected)), computed \(Hex.encode(actual))")
    }
}

func expectEqual<T: Equatable>(_ actual: T, _ expected: T, _ path: String) throws(VectorError) {
    guard actual == expected else { throw VectorError("\(path): expected \(expected), computed \(actual)") }
}
