package import Crypto

/// Where new ratchet key pairs come from. The public API always uses ``SystemKeySource``; only the
/// package's vectors and benchmarks inject a deterministic source, so that transcripts can be
/// reproduced byte for byte. (Injected keys in an application would be a way to reuse them.)
package protocol RatchetKeySource: Sendable {
    /// A fresh X25519 private key.
    func makeRatchetKey() -> Curve25519.KeyAgreement.PrivateKey
}

/// Fresh keys from the system's secure random generator.
package struct SystemKeySource: RatchetKeySource {
    package init() {}
    package func makeRatchetKey() -> Curve25519.KeyAgreement.PrivateKey { .init() }
}
