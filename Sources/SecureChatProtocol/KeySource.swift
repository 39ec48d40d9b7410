public import Crypto

/// Where new ratchet key pairs come from. Production uses ``SystemKeySource``; vectors inject a
/// deterministic source so that transcripts can be reproduced byte for byte.
public protocol RatchetKeySource: Sendable {
    /// A fresh X25519 private key.
    func makeRatchetKey() -> Curve25519.KeyAgreement.PrivateKey
}

/// Fresh keys from the system's secure random generator.
public struct SystemKeySource: RatchetKeySource {
    public init() {}
    public func makeRatchetKey() -> Curve25519.KeyAgreement.PrivateKey { .init() }
}
