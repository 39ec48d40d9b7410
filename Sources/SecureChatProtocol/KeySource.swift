package import Crypto
import SecureChatKeys

/// Where new ratchet key pairs come from. The public API always uses ``SystemKeySource``; only the
/// package's vectors and benchmarks inject a deterministic source, so that transcripts can be
/// reproduced byte for byte. (Injected keys in an application would be a way to reuse them.)
package protocol RatchetKeySource: Sendable {
    /// A fresh X25519 private key.
    func makeRatchetKey() -> Curve25519.KeyAgreement.PrivateKey
}

extension X25519PublicKey {
    /// The public key of a private key this process holds. swift-crypto derives it from a clamped
    /// scalar, so it is always canonical and of full order: validation cannot fail here.
    init(publicKeyOf privateKey: Curve25519.KeyAgreement.PrivateKey) {
        // Unreachable failure (see above); no untrusted bytes pass through this initialiser.
        self = try! X25519PublicKey(rawRepresentation: privateKey.publicKey.rawRepresentation)  // swiftlint:disable:this force_try
    }
}

/// Fresh keys from the system's secure random generator.
package struct SystemKeySource: RatchetKeySource {
    package init() {}
    package func makeRatchetKey() -> Curve25519.KeyAgreement.PrivateKey { .init() }
}
