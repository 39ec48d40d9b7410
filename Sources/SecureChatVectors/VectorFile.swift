import Crypto
public import Foundation

/// Sealing and dispatch of vector files.
///
/// A file written by ``VectorFile/seal(_:)`` ends with a `"sha256"` member holding the SHA-256 of
/// every byte before that member's line, so a change to any byte — even in free text such as a
/// case name — is refused. Files from other implementations may omit it; every value that carries
/// meaning is checked by recomputation either way.
public enum VectorFile {
    static let sealMarker = Array(",\n  \"sha256\": \"".utf8)

    /// Renders `json` (an object) and appends its seal.
    public static func seal(_ json: JSON) -> Data {
        let body = Array(json.rendered().utf8)
        // The rendered object ends with "\n}"; the seal becomes its last member.
        precondition(body.suffix(2) == Array("\n}".utf8), "vector files are multi-line objects")
        let prefix = Array(body.dropLast(2)) + Array(",\n".utf8)
        let digest = Hex.encode(SHA256.hash(data: prefix))
        return Data(prefix + Array("  \"sha256\": \"\(digest)\"\n}\n".utf8))
    }

    /// Verifies the seal when present and returns the parsed file.
    static func open(_ data: Data) throws(VectorError) -> (json: JSON, sealed: Bool) {
        // The seal is checked before parsing: it is cheap and names the problem precisely.
        let bytes = Array(data)
        var sealed = false
        if let markerStart = lastRange(of: sealMarker, in: bytes) {
            let prefix = Array(bytes[..<(markerStart + 2)])
            let expectedTail = Array("  \"sha256\": \"\(Hex.encode(SHA256.hash(data: prefix)))\"\n}\n".utf8)
            guard Array(bytes[(markerStart + 2)...]) == expectedTail else {
                throw VectorError("sha256: the file's bytes do not match its seal (the file was changed)")
            }
            sealed = true
        }
        let json = try JSON.parse(data)
        guard case .object(let members) = json else { throw VectorError("a vector file is a JSON object") }
        if members.contains(where: { $0.key == "sha256" }) && !sealed {
            throw VectorError("sha256: present but not the last member in the sealed layout")
        }
        return (json, sealed)
    }

    private static func lastRange(of needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        for start in stride(from: haystack.count - needle.count, through: 0, by: -1)
        where haystack[start] == needle[0] && Array(haystack[start..<start + needle.count]) == needle {
            return start
        }
        return nil
    }

    /// Every file `generate` writes, by name.
    public static func generateAll() throws -> [(name: String, json: JSON)] {
        [
            ("identity.json", IdentityVectors.generate()),
            ("x3dh.json", try X3DHVectors.generate()),
            ("double-ratchet.json", try DoubleRatchetVectors.generate()),
            ("sender-keys.json", try SenderKeyVectors.generate()),
            ("safety-numbers.json", SafetyNumberVectors.generate()),
            ("attachments.json", try AttachmentVectors.generate()),
        ]
    }

    /// Checks one file of any supported schema. Returns a one-line summary.
    public static func check(_ data: Data) throws(VectorError) -> String {
        let (json, sealed) = try open(data)
        guard case .object(let members) = json, case .string(let schema)? = members.first(where: { $0.key == "schema" })?.value
        else { throw VectorError("missing \"schema\"") }
        let cases: Int
        switch schema {
        case IdentityVectors.schema: cases = try IdentityVectors.check(json)
        case X3DHVectors.schema: cases = try X3DHVectors.check(json)
        case DoubleRatchetVectors.schema: cases = try DoubleRatchetVectors.check(json)
        case SenderKeyVectors.schema: cases = try SenderKeyVectors.check(json)
        case SafetyNumberVectors.schema: cases = try SafetyNumberVectors.check(json)
        case AttachmentVectors.schema: cases = try AttachmentVectors.check(json)
        default: throw VectorError("unknown schema \"\(schema)\"")
        }
        return "\(schema): \(cases) case(s) passed" + (sealed ? ", seal verified" : " (unsealed)")
    }

    /// The generator string written into every file.
    static let generator = "securechat-swift (SecureChatProtocol, swift-crypto 4.5)"
}

/// Deterministic bytes for vectors: SHA-256(label ‖ 0x00 ‖ counter), so every input of a case
/// is reproducible from its name alone.
struct DeterministicBytes {
    let label: String
    private var counter: UInt32 = 0

    init(_ label: String) { self.label = label }

    mutating func next(_ count: Int = 32) -> [UInt8] {
        var output: [UInt8] = []
        while output.count < count {
            var hasher = SHA256()
            hasher.update(data: Array("securechat-vectors/\(label)".utf8) + [0])
            withUnsafeBytes(of: counter.bigEndian) { hasher.update(bufferPointer: $0) }
            counter += 1
            output += Array(hasher.finalize())
        }
        return Array(output.prefix(count))
    }
}
