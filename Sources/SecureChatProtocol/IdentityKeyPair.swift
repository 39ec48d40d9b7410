package import Crypto
public import SecureChatKeys

/// Why stored private key material could not be restored.
public enum PrivateKeyError: Error, Equatable, Sendable {
    /// Private keys and seeds are 32 bytes.
    case wrongLength(Int)
    /// The private key does not belong to the public key stored with it.
    case mismatchedPublicKey
}

/// A 32-byte X25519 private key from stored bytes.
func agreementPrivateKey(_ bytes: SecretBytes) throws(PrivateKeyError) -> Curve25519.KeyAgreement.PrivateKey {
    guard bytes.count == 32,
          let key = bytes.withUnsafeBytes({ try? Curve25519.KeyAgreement.PrivateKey(rawRepresentation: $0) })
    else { throw .wrongLength(bytes.count) }
    return key
}

/// A device's long-term identity: an Ed25519 key pair that signs prekeys and sender keys, with its
/// X25519 form used as IK in X3DH.
///
/// The X25519 private key is derived exactly as libsodium's `crypto_sign_ed25519_sk_to_curve25519`:
/// the first 32 bytes of SHA-512(seed), clamped (bits 0–2 and 255 cleared, bit 254 set). Its public
/// key equals ``IdentityKey/agreementKey``, the birational image of the Ed25519 public key.
public struct IdentityKeyPair: Sendable {
    public let publicKey: IdentityKey
    private let signingKey: Curve25519.Signing.PrivateKey
    package let agreementKey: Curve25519.KeyAgreement.PrivateKey

    /// A new identity from the system's secure random generator.
    public init() {
        self.init(signingKey: Curve25519.Signing.PrivateKey())
    }

    /// The identity whose Ed25519 seed is `seed` (32 bytes): for restoring a stored identity and for vectors.
    /// - Throws: ``PrivateKeyError/wrongLength(_:)`` when the seed is not 32 bytes.
    public init(seed: SecretBytes) throws(PrivateKeyError) {
        guard seed.count == 32,
              let key = seed.withUnsafeBytes({ try? Curve25519.Signing.PrivateKey(rawRepresentation: $0) })
        else { throw .wrongLength(seed.count) }
        self.init(signingKey: key)
    }

    private init(signingKey: Curve25519.Signing.PrivateKey) {
        self.signingKey = signingKey
        let hash = SHA512.hash(data: signingKey.rawRepresentation)
        let scalar = SecretBytes(count: 32) { buffer in
            hash.withUnsafeBytes { digest in
                buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: digest[0..<32]))
            }
            buffer[0] &= 0xf8
            buffer[31] &= 0x7f
            buffer[31] |= 0x40
        }
        // Both values come from swift-crypto's own key types, so the conversions below cannot fail.
        // swiftlint:disable force_try
        agreementKey = scalar.withUnsafeBytes { try! Curve25519.KeyAgreement.PrivateKey(rawRepresentation: $0) }
        publicKey = try! IdentityKey(rawRepresentation: signingKey.publicKey.rawRepresentation)
        // swiftlint:enable force_try
    }

    /// The 32-byte Ed25519 seed, for encrypted local storage only.
    public var seed: SecretBytes { SecretBytes(signingKey.rawRepresentation) }

    /// The derived X25519 private scalar (clamped), for vectors.
    public var agreementPrivateKey: SecretBytes { SecretBytes(agreementKey.rawRepresentation) }

    /// An Ed25519 signature over `message`.
    public func signature(for message: [UInt8]) -> [UInt8] {
        // Ed25519 signing fails only on allocation failure.
        Array(try! signingKey.signature(for: message))  // swiftlint:disable:this force_try
    }

    /// Creates and signs a new signed prekey.
    public func makeSignedPreKey(id: UInt32, createdAt: UInt64) -> SignedPreKeyPair {
        makeSignedPreKey(id: id, createdAt: createdAt, privateKey: .init())
    }

    package func makeSignedPreKey(
        id: UInt32, createdAt: UInt64, privateKey: Curve25519.KeyAgreement.PrivateKey
    ) -> SignedPreKeyPair {
        SignedPreKeyPair(id: id, createdAt: createdAt, privateKey: privateKey, signedBy: self)
    }
}

/// A signed prekey with its private key, kept by its device.
public struct SignedPreKeyPair: Sendable {
    public let publicPart: SignedPreKeyPublic
    package let privateKey: Curve25519.KeyAgreement.PrivateKey

    init(id: UInt32, createdAt: UInt64, privateKey: Curve25519.KeyAgreement.PrivateKey, signedBy identity: IdentityKeyPair) {
        let publicKey = X25519PublicKey(publicKeyOf: privateKey)
        let signature = identity.signature(
            for: SignedPreKeyPublic.signedBytes(id: id, publicKey: publicKey, createdAt: createdAt))
        self.publicPart = SignedPreKeyPublic(id: id, publicKey: publicKey, createdAt: createdAt, signature: signature)
        self.privateKey = privateKey
    }

    /// Restores a stored signed prekey.
    /// - Throws: ``PrivateKeyError`` for a wrong length or a private key that is not the public part's.
    public init(publicPart: SignedPreKeyPublic, privateKey: SecretBytes) throws(PrivateKeyError) {
        let key = try agreementPrivateKey(privateKey)
        guard Array(key.publicKey.rawRepresentation) == publicPart.publicKey.rawRepresentation else {
            throw .mismatchedPublicKey
        }
        self.publicPart = publicPart
        self.privateKey = key
    }

    public var id: UInt32 { publicPart.id }
    public var privateKeyBytes: SecretBytes { SecretBytes(privateKey.rawRepresentation) }
}

/// A one-time prekey with its private key, kept by its device until an X3DH consumes it.
public struct OneTimePreKeyPair: Sendable {
    public let publicPart: OneTimePreKeyPublic
    package let privateKey: Curve25519.KeyAgreement.PrivateKey

    /// A new one-time prekey.
    public init(id: UInt32) {
        self.init(id: id, privateKey: Curve25519.KeyAgreement.PrivateKey())
    }

    package init(id: UInt32, privateKey: Curve25519.KeyAgreement.PrivateKey) {
        self.publicPart = OneTimePreKeyPublic(id: id, publicKey: X25519PublicKey(publicKeyOf: privateKey))
        self.privateKey = privateKey
    }

    /// Restores a stored one-time prekey.
    /// - Throws: ``PrivateKeyError/wrongLength(_:)`` when the key is not 32 bytes.
    public init(id: UInt32, privateKey: SecretBytes) throws(PrivateKeyError) {
        self.init(id: id, privateKey: try agreementPrivateKey(privateKey))
    }

    public var id: UInt32 { publicPart.id }
    public var privateKeyBytes: SecretBytes { SecretBytes(privateKey.rawRepresentation) }
}
