public import Crypto
public import Foundation

/// Why a public key was refused.
public enum PublicKeyError: Error, Equatable, Sendable {
    /// The key is not 32 bytes.
    case wrongLength(Int)
    /// The Ed25519 encoding is non-canonical, off the curve, of small order or outside the prime-order subgroup.
    case invalidEd25519Point
    /// The X25519 encoding is non-canonical (u ≥ p or bit 255 set) or a point of small order.
    case invalidX25519Point
}

/// A validated Ed25519 public key: canonical, on the curve, not of small order, in the prime-order subgroup.
///
/// The checks are those of libsodium's `crypto_sign_ed25519_pk_to_curve25519`, plus rejection of
/// non-canonical encodings (y ≥ p), so every valid key has exactly one encoding.
public struct SigningPublicKey: Sendable, Hashable, CustomStringConvertible {
    /// The 32-byte Ed25519 public key.
    public let rawRepresentation: [UInt8]
    private let cryptoKey: Curve25519.Signing.PublicKey
    /// The decoded point, kept for the X25519 conversion.
    let point: EdwardsPoint

    /// - Throws: ``PublicKeyError`` when the bytes are not a valid prime-order point.
    public init(rawRepresentation bytes: some Collection<UInt8>) throws(PublicKeyError) {
        let raw = Array(bytes)
        guard raw.count == 32 else { throw .wrongLength(raw.count) }
        guard let point = EdwardsPoint(compressed: raw), !point.hasSmallOrder, point.isInPrimeOrderSubgroup,
              let cryptoKey = try? Curve25519.Signing.PublicKey(rawRepresentation: raw)
        else {
            throw .invalidEd25519Point
        }
        self.rawRepresentation = raw
        self.cryptoKey = cryptoKey
        self.point = point
    }

    /// Whether `signature` is a valid Ed25519 signature by this key over `message`.
    public func isValidSignature(_ signature: some DataProtocol, for message: some DataProtocol) -> Bool {
        signature.count == 64 && cryptoKey.isValidSignature(signature, for: message)
    }

    public static func == (lhs: SigningPublicKey, rhs: SigningPublicKey) -> Bool {
        lhs.rawRepresentation == rhs.rawRepresentation
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(rawRepresentation)
    }

    public var description: String { "SigningPublicKey(\(fingerprintPrefix)…)" }

    /// The first four bytes in hex: enough to tell keys apart in logs, never a whole key.
    var fingerprintPrefix: String { rawRepresentation.prefix(4).map { String(format: "%02x", $0) }.joined() }
}

/// The public half of an identity: an Ed25519 key that signs, and its X25519 form used in X3DH.
///
/// The X25519 form is the birational map u = (1 + y) / (1 − y) that libsodium's
/// `crypto_sign_ed25519_pk_to_curve25519` computes, after the validation of ``SigningPublicKey``.
public struct IdentityKey: Sendable, Hashable, CustomStringConvertible {
    public let signingKey: SigningPublicKey
    /// The X25519 form, used as IK in X3DH.
    public let agreementKey: X25519PublicKey

    /// The 32-byte Ed25519 public key.
    public var rawRepresentation: [UInt8] { signingKey.rawRepresentation }

    /// Validates a 32-byte Ed25519 public key and derives its X25519 form.
    /// - Throws: ``PublicKeyError`` when the bytes are not a valid prime-order point.
    public init(rawRepresentation bytes: some Collection<UInt8>) throws(PublicKeyError) {
        signingKey = try SigningPublicKey(rawRepresentation: bytes)
        let y = signingKey.point.affineY
        let u = (FieldElement.one + y) * (FieldElement.one - y).inverse
        agreementKey = try X25519PublicKey(rawRepresentation: u.canonicalBytes)
    }

    /// Whether `signature` is a valid Ed25519 signature by this key over `message`.
    public func isValidSignature(_ signature: some DataProtocol, for message: some DataProtocol) -> Bool {
        signingKey.isValidSignature(signature, for: message)
    }

    public static func == (lhs: IdentityKey, rhs: IdentityKey) -> Bool {
        lhs.signingKey == rhs.signingKey
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(signingKey)
    }

    public var description: String { "IdentityKey(\(signingKey.fingerprintPrefix)…)" }
}

/// A validated X25519 public key: canonical (u < p, bit 255 clear) and not of small order.
public struct X25519PublicKey: Sendable, Hashable {
    public let rawRepresentation: [UInt8]
    /// The swift-crypto form, for key agreement.
    public let cryptoKey: Curve25519.KeyAgreement.PublicKey

    /// The canonical u-coordinates of the points of order 1, 2, 4 and 8 on Curve25519. A Diffie–Hellman
    /// with any of them yields a value the peer can predict, so they are refused at decoding.
    static let smallOrderPoints: [[UInt8]] = [
        [UInt8](repeating: 0, count: 32),
        [1] + [UInt8](repeating: 0, count: 31),
        [0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f, 0xc4, 0x6a,
         0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49, 0xb8, 0x00],
        [0x5f, 0x9c, 0x95, 0xbc, 0xa3, 0x50, 0x8c, 0x24, 0xb1, 0xd0, 0xb1, 0x55, 0x9c, 0x83, 0xef, 0x5b,
         0x04, 0x44, 0x5c, 0xc4, 0x58, 0x1c, 0x8e, 0x86, 0xd8, 0x22, 0x4e, 0xdd, 0xd0, 0x9f, 0x11, 0x57],
        [0xec] + [UInt8](repeating: 0xff, count: 30) + [0x7f],
    ]

    /// - Throws: ``PublicKeyError`` for a wrong length, a non-canonical encoding or a small-order point.
    public init(rawRepresentation bytes: some Collection<UInt8>) throws(PublicKeyError) {
        let raw = Array(bytes)
        guard raw.count == 32 else { throw .wrongLength(raw.count) }
        guard raw[31] & 0x80 == 0, FieldElement(canonicalBytes: raw) != nil,
              !Self.smallOrderPoints.contains(raw),
              let cryptoKey = try? Curve25519.KeyAgreement.PublicKey(rawRepresentation: raw) else {
            throw .invalidX25519Point
        }
        self.rawRepresentation = raw
        self.cryptoKey = cryptoKey
    }

    public static func == (lhs: X25519PublicKey, rhs: X25519PublicKey) -> Bool {
        lhs.rawRepresentation == rhs.rawRepresentation
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(rawRepresentation)
    }
}
