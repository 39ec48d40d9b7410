import Crypto
import Foundation
import SecureChatProtocol

/// A ratchet key source that hands out a given list of private keys in order (checking) or makes
/// deterministic ones and records them (generating). ``rewind(to:)`` undoes what a failed
/// operation took, so the transcript lists keys of committed state only.
final class ScriptedKeySource: RatchetKeySource, @unchecked Sendable {
    // Used from one thread at a time by the vector code; the lock keeps the Sendable promise honest.
    private let lock = NSLock()
    private var scripted: [[UInt8]]
    private var deterministic: DeterministicBytes?
    private(set) var handedOut: [[UInt8]] = []
    private var failure: VectorError?

    /// Hands out `keys` in order; asking for more records a failure.
    init(scripted keys: [[UInt8]]) {
        scripted = keys
    }

    /// Makes keys from `label` and records them.
    init(generating label: String) {
        scripted = []
        deterministic = DeterministicBytes(label)
    }

    var position: Int { lock.withLock { handedOut.count } }

    func rewind(to position: Int) {
        lock.withLock { handedOut.removeLast(handedOut.count - position) }
    }

    /// Keys listed but not handed out: after checking a transcript, anything but 0 means it lists keys never used.
    var unusedCount: Int { lock.withLock { scripted.count - handedOut.count } }

    func takeFailure() -> VectorError? { lock.withLock { defer { failure = nil }; return failure } }

    func makeRatchetKey() -> Curve25519.KeyAgreement.PrivateKey {
        lock.withLock {
            let bytes: [UInt8]
            if deterministic != nil {
                if handedOut.count < scripted.count {
                    bytes = scripted[handedOut.count]  // re-use a key made before a rewind
                } else {
                    bytes = deterministic!.next()
                    scripted.append(bytes)
                }
            } else if handedOut.count < scripted.count {
                bytes = scripted[handedOut.count]
            } else {
                failure = VectorError("the implementation asked for more ratchet keys than the transcript lists")
                bytes = [UInt8](repeating: 0x42, count: 32)
            }
            handedOut.append(bytes)
            // 32 bytes are always a valid X25519 private key.
            return try! Curve25519.KeyAgreement.PrivateKey(rawRepresentation: bytes)  // swiftlint:disable:this force_try
        }
    }
}
