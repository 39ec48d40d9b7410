package import Crypto
public import SecureChatKeys

/// Why an X3DH agreement could not be completed.
public enum X3DHError: Error, Equatable, Sendable {
    /// A Diffie–Hellman output was rejected by X25519 (all-zero output from a degenerate key).
    case invalidKeyAgreement
    /// The initiator named a signed prekey the responder does not have (any more).
    case unknownSignedPreKey(id: UInt32)
    /// The initiator named a one-time prekey the responder does not have: already consumed, or never issued.
    case unknownOneTimePreKey(id: UInt32)
    /// This initiation (ephemeral key) was already accepted: the prekey message is a replay.
    case initiationReplayed
}

/// The result of X3DH on either side: the shared secret that becomes the first root key, and the
/// associated data every message of the session authenticates.
public struct X3DHAgreement: Sendable {
    /// SK, 32 bytes.
    public let sharedSecret: SecretBytes
    /// AD = initiator identity key (32, Ed25519) ‖ responder identity key (32, Ed25519).
    public let associatedData: [UInt8]
}

/// The parameters an initiator sends so that the responder can repeat its X3DH: they travel in
/// every ``PreKeyMessage`` until the responder answers.
public struct X3DHInitiation: Sendable, Hashable {
    public let initiatorIdentityKey: IdentityKey
    public let ephemeralKey: X25519PublicKey
    public let signedPreKeyId: UInt32
    public let oneTimePreKeyId: UInt32?
}

/// Signal's X3DH key agreement (https://signal.org/docs/specifications/x3dh/), with X25519,
/// SHA-256, info ``KDFLabels/x3dh`` and identity keys in Ed25519 form converted to X25519 for DH1 and DH2.
public enum X3DH {
    /// The initiator's side, from a verified bundle (``PreKeyBundle`` cannot hold a bad signature).
    /// - Parameters:
    ///   - identity: the initiator's identity key pair (IK_A).
    ///   - bundle: the responder's bundle (IK_B, SPK_B, optionally OPK_B).
    public static func initiate(
        identity: IdentityKeyPair, bundle: PreKeyBundle
    ) throws(X3DHError) -> (agreement: X3DHAgreement, initiation: X3DHInitiation) {
        try initiate(identity: identity, bundle: bundle, ephemeralKey: .init())
    }

    /// As ``initiate(identity:bundle:)`` with EK_A injected (vectors only: a reused EK_A repeats SK).
    package static func initiate(
        identity: IdentityKeyPair, bundle: PreKeyBundle, ephemeralKey: Curve25519.KeyAgreement.PrivateKey
    ) throws(X3DHError) -> (agreement: X3DHAgreement, initiation: X3DHInitiation) {
        var outputs = [
            try diffieHellman(identity.agreementKey, bundle.signedPreKey.publicKey),
            try diffieHellman(ephemeralKey, bundle.identityKey.agreementKey),
            try diffieHellman(ephemeralKey, bundle.signedPreKey.publicKey),
        ]
        if let oneTimePreKey = bundle.oneTimePreKey {
            outputs.append(try diffieHellman(ephemeralKey, oneTimePreKey.publicKey))
        }
        let agreement = deriveAgreement(
            outputs, initiator: identity.publicKey, responder: bundle.identityKey)
        let ephemeralPublic = X25519PublicKey(publicKeyOf: ephemeralKey)
        let initiation = X3DHInitiation(
            initiatorIdentityKey: identity.publicKey, ephemeralKey: ephemeralPublic,
            signedPreKeyId: bundle.signedPreKey.id, oneTimePreKeyId: bundle.oneTimePreKey?.id)
        return (agreement, initiation)
    }

    /// The responder's side. The caller looks up the keys the initiation names and deletes the
    /// one-time prekey only once the first message has decrypted (see ``SessionResponder``).
    public static func respond(
        identity: IdentityKeyPair, signedPreKey: SignedPreKeyPair, oneTimePreKey: OneTimePreKeyPair?,
        initiation: X3DHInitiation
    ) throws(X3DHError) -> X3DHAgreement {
        var outputs = [
            try diffieHellman(signedPreKey.privateKey, initiation.initiatorIdentityKey.agreementKey),
            try diffieHellman(identity.agreementKey, initiation.ephemeralKey),
            try diffieHellman(signedPreKey.privateKey, initiation.ephemeralKey),
        ]
        if let oneTimePreKey {
            outputs.append(try diffieHellman(oneTimePreKey.privateKey, initiation.ephemeralKey))
        }
        return deriveAgreement(outputs, initiator: initiation.initiatorIdentityKey, responder: identity.publicKey)
    }

    /// AD = IK_A ‖ IK_B, each the 32-byte Ed25519 encoding.
    public static func associatedData(initiator: IdentityKey, responder: IdentityKey) -> [UInt8] {
        initiator.rawRepresentation + responder.rawRepresentation
    }

    private static func deriveAgreement(_ outputs: [SecretBytes], initiator: IdentityKey, responder: IdentityKey)
        -> X3DHAgreement
    {
        let keyMaterial = SecretBytes(count: 32 * (outputs.count + 1)) { buffer in
            for index in 0..<32 { buffer[index] = KDFLabels.x3dhPrefix[index] }
            for (position, output) in outputs.enumerated() {
                output.withUnsafeBytes { bytes in
                    let offset = 32 * (position + 1)
                    UnsafeMutableRawBufferPointer(rebasing: buffer[offset..<offset + 32]).copyMemory(from: bytes)
                }
            }
        }
        let sharedSecret = HKDFSHA256.deriveKey(
            inputKeyMaterial: keyMaterial, salt: nil, info: KDFLabels.x3dh, outputByteCount: 32)
        return X3DHAgreement(
            sharedSecret: sharedSecret,
            associatedData: associatedData(initiator: initiator, responder: responder))
    }

    package static func diffieHellman(_ privateKey: Curve25519.KeyAgreement.PrivateKey, _ publicKey: X25519PublicKey)
        throws(X3DHError) -> SecretBytes
    {
        do {
            let shared = try privateKey.sharedSecretFromKeyAgreement(with: publicKey.cryptoKey)
            // swift-crypto returns the all-zero output of a small-order point instead of failing.
            // X25519PublicKey already refuses those points; this check keeps the rule local.
            let isAllZero = shared.withUnsafeBytes { bytes in bytes.reduce(UInt8(0)) { $0 | $1 } == 0 }
            guard !isAllZero else { throw X3DHError.invalidKeyAgreement }
            return shared.withUnsafeBytes { SecretBytes($0) }
        } catch {
            throw .invalidKeyAgreement
        }
    }
}
