/// Why a prekey bundle (or one of its parts) was refused.
public enum PreKeyBundleError: Error, Equatable, Sendable {
    /// The encoding is truncated, oversized or otherwise malformed.
    case malformed(DecodeError)
    /// The identity key is not a valid Ed25519 public key.
    case invalidIdentityKey(PublicKeyError)
    /// The signed prekey is not a valid X25519 public key.
    case invalidSignedPreKey(PublicKeyError)
    /// The one-time prekey is not a valid X25519 public key.
    case invalidOneTimePreKey(PublicKeyError)
    /// The signed prekey's signature does not verify under the identity key.
    case badSignedPreKeySignature
}

/// The public part of a signed prekey: an X25519 key its owner's identity key vouches for.
///
/// The signature is Ed25519 by the identity key over ``signedBytes``:
/// ```
/// "SecureChat signed prekey v1" (27 bytes) ‖ id (u32 BE) ‖ public key (32) ‖ created at (u64 BE, Unix seconds)
/// ```
public struct SignedPreKeyPublic: Sendable, Hashable {
    public let id: UInt32
    public let publicKey: X25519PublicKey
    /// Seconds since 1970-01-01T00:00:00Z, signed so that a server cannot make an old key look new.
    public let createdAt: UInt64
    public let signature: [UInt8]

    /// Length of ``serialized``: 2 + 4 + 32 + 8 + 64.
    public static let encodedLength = 110

    public init(id: UInt32, publicKey: X25519PublicKey, createdAt: UInt64, signature: [UInt8]) {
        self.id = id
        self.publicKey = publicKey
        self.createdAt = createdAt
        self.signature = signature
    }

    /// The bytes the identity key signs.
    public static func signedBytes(id: UInt32, publicKey: X25519PublicKey, createdAt: UInt64) -> [UInt8] {
        var writer = ByteWriter(capacity: 71)
        writer.write(contentsOf: WireFormat.signedPreKeySignatureContext)
        writer.write(bigEndian: id)
        writer.write(contentsOf: publicKey.rawRepresentation)
        writer.write(bigEndian: createdAt)
        return writer.bytes
    }

    /// Whether the signature verifies under `identityKey`.
    public func isSigned(by identityKey: IdentityKey) -> Bool {
        identityKey.isValidSignature(
            signature, for: Self.signedBytes(id: id, publicKey: publicKey, createdAt: createdAt))
    }

    /// `version ‖ 0x11 ‖ id (u32) ‖ key (32) ‖ created at (u64) ‖ signature (64)`.
    public var serialized: [UInt8] {
        var writer = ByteWriter(capacity: Self.encodedLength)
        WireFormat.writeHeader(.signedPreKey, to: &writer)
        write(to: &writer)
        return writer.bytes
    }

    /// Decodes a signed prekey and checks its signature under `identityKey`.
    public init(serialized bytes: some Collection<UInt8>, signedBy identityKey: IdentityKey) throws(PreKeyBundleError) {
        var reader = ByteReader(bytes)
        do {
            try WireFormat.readHeader(.signedPreKey, from: &reader)
        } catch {
            throw .malformed(error)
        }
        try self.init(reading: &reader)
        do { try reader.requireEnd() } catch { throw .malformed(error) }
        guard isSigned(by: identityKey) else { throw .badSignedPreKeySignature }
    }

    func write(to writer: inout ByteWriter) {
        writer.write(bigEndian: id)
        writer.write(contentsOf: publicKey.rawRepresentation)
        writer.write(bigEndian: createdAt)
        writer.write(contentsOf: signature)
    }

    init(reading reader: inout ByteReader) throws(PreKeyBundleError) {
        do {
            id = try reader.readUInt32()
            let keyBytes = try reader.readBytes(32)
            do {
                publicKey = try X25519PublicKey(rawRepresentation: keyBytes)
            } catch {
                throw PreKeyBundleError.invalidSignedPreKey(error)
            }
            createdAt = try reader.readUInt64()
            signature = try reader.readBytes(64)
        } catch let error as DecodeError {
            throw .malformed(error)
        } catch let error as PreKeyBundleError {
            throw error
        } catch {
            preconditionFailure("unexpected error \(error)")
        }
    }
}

/// The public part of a one-time prekey: used in at most one X3DH, then deleted by both sides.
public struct OneTimePreKeyPublic: Sendable, Hashable {
    public let id: UInt32
    public let publicKey: X25519PublicKey

    /// Length of ``serialized``: 2 + 4 + 32.
    public static let encodedLength = 38

    public init(id: UInt32, publicKey: X25519PublicKey) {
        self.id = id
        self.publicKey = publicKey
    }

    /// `version ‖ 0x12 ‖ id (u32) ‖ key (32)`.
    public var serialized: [UInt8] {
        var writer = ByteWriter(capacity: Self.encodedLength)
        WireFormat.writeHeader(.oneTimePreKey, to: &writer)
        writer.write(bigEndian: id)
        writer.write(contentsOf: publicKey.rawRepresentation)
        return writer.bytes
    }

    public init(serialized bytes: some Collection<UInt8>) throws(PreKeyBundleError) {
        var reader = ByteReader(bytes)
        let keyBytes: [UInt8]
        do {
            try WireFormat.readHeader(.oneTimePreKey, from: &reader)
            id = try reader.readUInt32()
            keyBytes = try reader.readBytes(32)
            try reader.requireEnd()
        } catch {
            throw .malformed(error)
        }
        do {
            publicKey = try X25519PublicKey(rawRepresentation: keyBytes)
        } catch {
            throw .invalidOneTimePreKey(error)
        }
    }
}

/// What an initiator fetches to start a session with a device: its identity key, its current
/// signed prekey and, while the supply lasts, one one-time prekey.
///
/// A bundle value always carries a verified signature: both initialisers check it.
///
/// Encoding (`serialized`):
/// ```
/// version (1) ‖ 0x10 ‖ identity key (32, Ed25519)
///   ‖ signed prekey id (u32 BE) ‖ signed prekey (32) ‖ created at (u64 BE) ‖ signature (64)
///   ‖ has one-time prekey (1 byte: 0 or 1) [‖ one-time prekey id (u32 BE) ‖ one-time prekey (32)]
/// ```
public struct PreKeyBundle: Sendable, Hashable {
    public let identityKey: IdentityKey
    public let signedPreKey: SignedPreKeyPublic
    public let oneTimePreKey: OneTimePreKeyPublic?

    /// - Throws: ``PreKeyBundleError/badSignedPreKeySignature`` when the signature does not verify.
    public init(
        identityKey: IdentityKey, signedPreKey: SignedPreKeyPublic, oneTimePreKey: OneTimePreKeyPublic?
    ) throws(PreKeyBundleError) {
        guard signedPreKey.isSigned(by: identityKey) else { throw .badSignedPreKeySignature }
        self.identityKey = identityKey
        self.signedPreKey = signedPreKey
        self.oneTimePreKey = oneTimePreKey
    }

    public var serialized: [UInt8] {
        var writer = ByteWriter(capacity: 2 + 32 + 108 + 1 + 36)
        WireFormat.writeHeader(.preKeyBundle, to: &writer)
        writer.write(contentsOf: identityKey.rawRepresentation)
        signedPreKey.write(to: &writer)
        if let oneTimePreKey {
            writer.write(1)
            writer.write(bigEndian: oneTimePreKey.id)
            writer.write(contentsOf: oneTimePreKey.publicKey.rawRepresentation)
        } else {
            writer.write(0)
        }
        return writer.bytes
    }

    /// Decodes a bundle and verifies every key and the signature.
    public init(serialized bytes: some Collection<UInt8>) throws(PreKeyBundleError) {
        var reader = ByteReader(bytes)
        let identityBytes: [UInt8]
        do {
            try WireFormat.readHeader(.preKeyBundle, from: &reader)
            identityBytes = try reader.readBytes(32)
        } catch {
            throw .malformed(error)
        }
        let identityKey: IdentityKey
        do {
            identityKey = try IdentityKey(rawRepresentation: identityBytes)
        } catch {
            throw .invalidIdentityKey(error)
        }
        let signedPreKey = try SignedPreKeyPublic(reading: &reader)
        var oneTimePreKey: OneTimePreKeyPublic?
        let oneTimeBytes: [UInt8]?
        let oneTimeId: UInt32
        do {
            if try reader.readFlag("has one-time prekey") {
                oneTimeId = try reader.readUInt32()
                oneTimeBytes = try reader.readBytes(32)
            } else {
                oneTimeId = 0
                oneTimeBytes = nil
            }
            try reader.requireEnd()
        } catch {
            throw .malformed(error)
        }
        if let oneTimeBytes {
            do {
                oneTimePreKey = OneTimePreKeyPublic(
                    id: oneTimeId, publicKey: try X25519PublicKey(rawRepresentation: oneTimeBytes))
            } catch {
                throw .invalidOneTimePreKey(error)
            }
        }
        try self.init(identityKey: identityKey, signedPreKey: signedPreKey, oneTimePreKey: oneTimePreKey)
    }
}
