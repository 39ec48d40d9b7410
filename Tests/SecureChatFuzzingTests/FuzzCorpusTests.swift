import Foundation
import SecureChatFuzzing
import Testing

/// The fuzzing corpus (`Fuzz/Corpus/TARGET`, grown by `scripts/fuzz` and minimised) replayed
/// as ordinary tests: every input that once reached new code in a decoder still keeps its invariants.
@Suite("Fuzzing corpus")
struct FuzzCorpusTests {
    static let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fuzz/Corpus")

    static func inputs(_ target: FuzzTarget) throws -> [URL] {
        try FileManager.default.contentsOfDirectory(
            at: corpus.appendingPathComponent(target.rawValue), includingPropertiesForKeys: nil
        ).filter { !$0.lastPathComponent.hasPrefix(".") }
    }

    @Test("every committed input keeps the target's invariants", arguments: FuzzTarget.allCases)
    func replay(_ target: FuzzTarget) throws {
        let inputs = try Self.inputs(target)
        // A campaign of a minute keeps from ten inputs (attachments: little code to reach) to a
        // hundred and more (JSON frames) for each target.
        #expect(inputs.count >= 10, "the \(target.rawValue) corpus has only \(inputs.count) inputs")
        for input in inputs {
            #expect(throws: Never.self, "\(input.lastPathComponent)") { try target.check(Array(try Data(contentsOf: input))) }
        }
    }

    @Test("fresh seeds made with the real types keep the invariants", arguments: FuzzTarget.allCases)
    func seeds(_ target: FuzzTarget) throws {
        let seeds = try target.seeds()
        #expect(!seeds.isEmpty)
        for seed in seeds { #expect(throws: Never.self) { try target.check(seed) } }
    }
}
