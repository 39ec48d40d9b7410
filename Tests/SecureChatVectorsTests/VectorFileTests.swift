import Foundation
import SecureChatTestSupport
import Testing
@testable import SecureChatVectors


@Suite("Vector files")
struct VectorFileTests {
    static let generated: [(name: String, data: Data)] = {
        // Generation is deterministic; a failure here is a bug the other tests report.
        (try? VectorFile.generateAll().map { ($0.name, VectorFile.seal($0.json)) }) ?? []
    }()

    @Test("the committed vectors are exactly what generate writes today")
    func committedVectorsAreCurrent() throws {
        #expect(Self.generated.count == 6)
        for (name, data) in Self.generated {
            let committed = try Data(contentsOf: vectorsDirectory.appendingPathComponent(name))
            #expect(committed == data, "Tests/Vectors/\(name) is stale: run `swift run securechat-vectors generate Tests/Vectors`")
        }
    }

    @Test("every file in Tests/Vectors passes check, including libsodium's and the Python implementation's")
    func everyCommittedFilePasses() throws {
        let files = try FileManager.default.subpathsOfDirectory(atPath: vectorsDirectory.path).filter { $0.hasSuffix(".json") }
        #expect(files.contains("identity-libsodium.json"))
        #expect(files.filter { $0.hasPrefix("python/") }.count == 6, "the Python implementation's files")
        for file in files {
            let data = try Data(contentsOf: vectorsDirectory.appendingPathComponent(file))
            #expect(throws: Never.self, "\(file)") { _ = try VectorFile.check(data) }
        }
    }

    @Test("a single changed byte anywhere in a generated file is refused")
    func everyChangedByteIsRejected() throws {
        var generator = SystemRandomNumberGenerator()
        for (name, data) in Self.generated {
            var bytes = Array(data)
            var accepted: [Int] = []
            for index in bytes.indices {
                let original = bytes[index]
                // The low bit everywhere, and a random other value at every 16th byte.
                let replacement = index % 16 == 0 ? UInt8.random(in: 0...255, using: &generator) : original ^ 0x01
                guard replacement != original else { continue }
                bytes[index] = replacement
                if (try? VectorFile.check(Data(bytes))) != nil { accepted.append(index) }
                bytes[index] = original
            }
            #expect(accepted.isEmpty, "\(name): accepted with bytes changed at \(accepted.prefix(10))")
        }
    }

    @Test("without the seal, changing any value that carries meaning is still refused")
    func semanticMutationsAreRejected() throws {
        for (name, json) in try VectorFile.generateAll() {
            // One case per file keeps this quick; every kind of field appears in it.
            let reduced = Self.keepingFirstCase(json)
            let original = Data(reduced.rendered().utf8)
            #expect(throws: Never.self, "\(name) without seal") { _ = try VectorFile.check(original) }
            var mutations = 0
            var accepted: [String] = []
            for path in Self.meaningfulLeaves(reduced) {
                for variant in 0..<2 {
                    guard let mutated = Self.mutate(reduced, at: path[...], variant: variant) else { continue }
                    mutations += 1
                    if (try? VectorFile.check(Data(mutated.rendered().utf8))) != nil {
                        accepted.append("\(path.map(\.description).joined(separator: ".")) variant \(variant)")
                    }
                }
            }
            #expect(accepted.isEmpty, "\(name): changes accepted at \(accepted)")
            #expect(mutations >= 8, "\(name): too few mutations (\(mutations))")
        }
    }

    @Test("check reports where a file is wrong")
    func preciseMessages() throws {
        let data = try #require(Self.generated.first { $0.name == "double-ratchet.json" }?.data)
        let error = try #require(throws: VectorError.self) { _ = try VectorFile.check(Data("{".utf8)) }
        #expect(error.description.hasPrefix("not valid JSON"))
        var text = String(decoding: data, as: UTF8.self)
        text = text.replacingOccurrences(of: "securechat-dr-vectors/1", with: "securechat-dr-vectors/9")
        // The seal goes first (the bytes changed); without it, the schema itself is named.
        let sealed = try #require(throws: VectorError.self) { _ = try VectorFile.check(Data(text.utf8)) }
        #expect(sealed.description.hasPrefix("sha256:"))
        let unsealed = String(text[..<text.range(of: ",\n  \"sha256\"")!.lowerBound]) + "\n}\n"
        let unknown = try #require(throws: VectorError.self) { _ = try VectorFile.check(Data(unsealed.utf8)) }
        #expect(unknown.description == "unknown schema \"securechat-dr-vectors/9\"")
    }

    // MARK: Mutation helpers

    enum Step: CustomStringConvertible {
        case key(String), index(Int)
        var description: String { switch self { case .key(let key): key; case .index(let index): "[\(index)]" } }
    }

    /// Free text and values that describe something meant to fail: changing them changes no meaning.
    static let freeTextKeys: Set<String> = ["generator", "name", "reason", "description", "tampered", "invalid_public_keys"]

    static func keepingFirstCase(_ json: JSON) -> JSON {
        guard case .object(let members) = json else { return json }
        return .object(members.map { member in
            if member.key == "cases", case .array(let cases) = member.value { return .init("cases", .array(Array(cases.prefix(1)))) }
            if member.key == "invalid_public_keys" { return .init(member.key, .array([])) }
            return member
        })
    }

    static func meaningfulLeaves(_ json: JSON, path: [Step] = []) -> [[Step]] {
        switch json {
        case .object(let members):
            // A message listed only to be refused carries no plaintext: its bytes may change freely.
            if members.contains(where: { $0.key == "plaintext" && $0.value == .null }) { return [] }
            return members.flatMap { member -> [[Step]] in
                if freeTextKeys.contains(member.key) || member.key == "schema" { return [] }
                return meaningfulLeaves(member.value, path: path + [.key(member.key)])
            }
        case .array(let items):
            return items.enumerated().flatMap { meaningfulLeaves($1, path: path + [.index($0)]) }
        case .null:
            return []
        default:
            return [path]
        }
    }

    /// Variant 0 changes the first character (or adds 1), variant 1 the last (or subtracts 1).
    static func mutate(_ json: JSON, at path: ArraySlice<Step>, variant: Int) -> JSON? {
        guard let step = path.first else {
            switch json {
            case .number(let value): return .number(variant == 0 ? value + 1 : value - 1)
            case .string(let value):
                guard !value.isEmpty else { return variant == 0 ? .string("00") : nil }
                var scalars = Array(value.unicodeScalars)
                let position = variant == 0 ? 0 : scalars.count - 1
                let isHex = value.allSatisfy { $0.isHexDigit && !$0.isUppercase }
                if isHex {
                    scalars[position] = scalars[position] == "0" ? "1" : "0"
                } else {
                    scalars[position] = Unicode.Scalar(scalars[position].value ^ 0x01) ?? "x"
                }
                return .string(String(String.UnicodeScalarView(scalars)))
            default: return nil
            }
        }
        switch (json, step) {
        case (.object(var members), .key(let key)):
            guard let position = members.firstIndex(where: { $0.key == key }),
                  let replaced = mutate(members[position].value, at: path.dropFirst(), variant: variant)
            else { return nil }
            members[position] = .init(key, replaced)
            return .object(members)
        case (.array(var items), .index(let index)):
            guard let replaced = mutate(items[index], at: path.dropFirst(), variant: variant) else { return nil }
            items[index] = replaced
            return .array(items)
        default:
            return nil
        }
    }
}
