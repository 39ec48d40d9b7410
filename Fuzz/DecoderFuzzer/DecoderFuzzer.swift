import Foundation
import SecureChatKeys
import SecureChatProtocol

/// Feeds one input to every decoder and to the stateful receivers: each must return or throw,
/// never trap. Built two ways:
/// - `scripts/fuzz` builds it with `-sanitize=fuzzer -DFUZZING` and libFuzzer drives it;
/// - a normal build replays a corpus directory (`swift run DecoderFuzzer Fuzz/Corpus`), so inputs
///   found by the fuzzer stay tested.
enum DecoderFuzzer {
    /// Receivers with real state, made once: messages that parse must still fail authentication safely.
    nonisolated(unsafe) static var ratchet: RatchetState = {
        let bob = IdentityKeyPair()
        let signed = bob.makeSignedPreKey(id: 1, createdAt: 0)
        let bundle = try! PreKeyBundle(identityKey: bob.publicKey, signedPreKey: signed.publicPart, oneTimePreKey: nil)
        return try! Session.initiate(identity: IdentityKeyPair(), bundle: bundle).ratchet
    }()
    nonisolated(unsafe) static var senderKeys: SenderKeyStore = {
        var store = SenderKeyStore()
        let sender = SenderKeyState(distributionId: [UInt8](repeating: 0x42, count: 16), createdAt: 0)
        try! store.process(sender.distributionMessage, from: ProtocolAddress(name: "fuzz", deviceId: 1))
        return store
    }()
    static let attachmentKey = SecretBytes([UInt8](repeating: 7, count: 32))

    static func run(_ bytes: [UInt8]) {
        _ = try? SessionMessage(serialized: bytes)
        _ = try? PreKeyBundle(serialized: bytes)
        _ = try? OneTimePreKeyPublic(serialized: bytes)
        _ = try? SenderKeyDistributionMessage(serialized: bytes)
        _ = try? SenderKeyMessage(serialized: bytes)
        _ = try? RatchetState(serialized: SecretBytes(bytes))
        _ = try? SenderKeyRecord(serialized: SecretBytes(bytes))
        _ = try? SenderKeyState(serialized: SecretBytes(bytes))
        _ = try? IdentityKey(rawRepresentation: bytes)
        if case .ratchet(let message)? = try? SessionMessage(serialized: bytes) {
            _ = try? ratchet.decrypt(header: message.header, ciphertext: message.ciphertext)
        }
        _ = try? senderKeys.decrypt(bytes)
        var decryptor = AttachmentDecryptor(key: attachmentKey, expectedDigest: [UInt8](repeating: 0, count: 32), expectedSize: 100)
        if (try? decryptor.update(bytes)) != nil { _ = try? decryptor.finalize() }
    }
}

#if FUZZING
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTestOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    DecoderFuzzer.run(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}

typealias FuzzCallback = @convention(c) (UnsafePointer<UInt8>, Int) -> CInt

@_silgen_name("LLVMFuzzerRunDriver")
func runFuzzerDriver(
    _ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
    _ callback: FuzzCallback
) -> CInt

/// SwiftPM links an executable's entry point under the module's name; hand control to libFuzzer.
@_cdecl("DecoderFuzzer_main")
public func fuzzerMain(
    _ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>
) -> CInt {
    var count = argc
    var arguments = argv
    return runFuzzerDriver(&count, &arguments, fuzzTestOneInput)
}
#else
@main
struct CorpusReplay {
    static func main() throws {
        var count = 0
        for directory in CommandLine.arguments.dropFirst() {
            for name in try FileManager.default.contentsOfDirectory(atPath: directory).sorted() {
                let data = try Data(contentsOf: URL(fileURLWithPath: directory).appendingPathComponent(name))
                DecoderFuzzer.run(Array(data))
                count += 1
            }
        }
        print("replayed \(count) inputs without a crash")
    }
}
#endif
