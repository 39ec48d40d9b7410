package import Crypto
public import SecureChatKeys

/// Why a sender-key operation failed. The record is unchanged after each.
public enum SenderKeyError: Error, Equatable, Sendable {
    case malformed(DecodeError)
    /// The message belongs to another sender's or another room's distribution.
    case wrongDistribution
    /// No distribution message for this chain has been received (or it was rotated out long ago).
    case unknownChain(UInt32)
    /// The signature does not verify under the chain's signing key.
    case invalidSignature
    /// The message's key was already used: a replay or duplicate.
    case duplicateMessage
    /// The message is older than every stored key of its chain.
    case messageKeyExpired
    /// The iteration is more than ``ProtocolLimits/senderKeyMaxForward`` ahead of the chain.
    case tooFarAhead
    /// The ciphertext did not authenticate.
    case authenticationFailed
    case plaintextTooLarge
    /// The chain has used all 2^32 − 1 iterations: rotate.
    case chainExhausted
    /// The distribution came from another device than the record's owner.
    case wrongSender
    /// The distribution id is already bound to another member of the room.
    case distributionIdTaken
    /// No sender key with this distribution id is known in this room.
    case unknownDistribution
    /// A chain id already held arrived with other keys.
    case chainIdConflict
}

/// When a sender starts a new sender key besides membership changes (which always rotate).
public struct SenderKeyRotationPolicy: Sendable, Equatable {
    public var maxMessages: Int
    /// Seconds.
    public var maxAge: UInt64

    /// 5,000 messages or 7 days, whichever comes first.
    public static let standard = SenderKeyRotationPolicy(maxMessages: 5000, maxAge: 7 * 24 * 3600)

    public init(maxMessages: Int, maxAge: UInt64) {
        self.maxMessages = maxMessages
        self.maxAge = maxAge
    }
}

/// The sending side of a sender key: one chain, its position and its signing key.
public struct SenderKeyState: Sendable {
    public let distributionId: [UInt8]
    public let chainId: UInt32
    public private(set) var iteration: UInt32
    private var chainKey: ChainKey
    private let signingKey: Curve25519.Signing.PrivateKey
    public let signingPublicKey: SigningPublicKey
    /// Seconds since 1970, for the rotation policy.
    public let createdAt: UInt64
    public private(set) var messagesSent: Int = 0

    /// A new chain for `distributionId` (16 random bytes naming this member's slot in one room).
    public init(distributionId: [UInt8], createdAt: UInt64) {
        self.init(
            distributionId: distributionId, createdAt: createdAt, chainId: .random(in: 0...UInt32.max),
            chainKey: .random(count: 32), signingKey: .init(), iteration: 0)
    }

    /// Every random part injected: vectors and tests only.
    package init(
        distributionId: [UInt8], createdAt: UInt64, chainId: UInt32, chainKey: SecretBytes,
        signingKey: Curve25519.Signing.PrivateKey, iteration: UInt32 = 0
    ) {
        precondition(distributionId.count == 16 && chainKey.count == 32, "sender key field lengths")
        self.distributionId = distributionId
        self.chainId = chainId
        self.iteration = iteration
        self.chainKey = ChainKey(key: chainKey)
        self.signingKey = signingKey
        // swift-crypto's own public keys are valid prime-order points.
        self.signingPublicKey = try! SigningPublicKey(rawRepresentation: signingKey.publicKey.rawRepresentation)  // swiftlint:disable:this force_try
        self.createdAt = createdAt
    }

    /// The message that lets a member decrypt from the current iteration on.
    public var distributionMessage: SenderKeyDistributionMessage {
        SenderKeyDistributionMessage(
            distributionId: distributionId, chainId: chainId, iteration: iteration, chainKey: chainKey.key,
            signingKey: signingPublicKey)
    }

    /// Whether the policy asks for a new sender key now.
    public func needsRotation(policy: SenderKeyRotationPolicy, now: UInt64) -> Bool {
        // An age limit past the end of time ("never by age") must not overflow.
        let (deadline, overflow) = createdAt.addingReportingOverflow(policy.maxAge)
        return messagesSent >= policy.maxMessages || (!overflow && now >= deadline)
    }

    /// A fresh chain for the same distribution: new chain id, chain key and signing key.
    public func rotated(now: UInt64) -> SenderKeyState {
        var newChainId = UInt32.random(in: 0...UInt32.max)
        while newChainId == chainId { newChainId = .random(in: 0...UInt32.max) }
        return SenderKeyState(
            distributionId: distributionId, createdAt: now, chainId: newChainId, chainKey: .random(count: 32),
            signingKey: .init())
    }

    /// Encrypts and signs the next room message.
    public mutating func encrypt(_ plaintext: [UInt8]) throws(SenderKeyError) -> SenderKeyMessage {
        try encryptReturningKey(plaintext).message
    }

    /// As ``encrypt(_:)``, also returning the message key (vectors record it).
    package mutating func encryptReturningKey(_ plaintext: [UInt8]) throws(SenderKeyError)
        -> (message: SenderKeyMessage, messageKey: MessageKey)
    {
        guard plaintext.count <= ProtocolLimits.maxMessagePlaintext else { throw .plaintextTooLarge }
        guard iteration < UInt32.max else { throw .chainExhausted }
        let (messageKey, next) = chainKey.advanced()
        let header = SenderKeyMessage.header(distributionId: distributionId, chainId: chainId, iteration: iteration)
        let ciphertext = MessageCipher.encrypt(
            plaintext, key: messageKey, associatedData: header, label: KDFLabels.senderKeyMessageKeys)
        // Ed25519 signing fails only on allocation failure.
        let signature = try! signingKey.signature(for: SenderKeyMessage.signedBytes(header: header, ciphertext: ciphertext))  // swiftlint:disable:this force_try
        let message = SenderKeyMessage(
            distributionId: distributionId, chainId: chainId, iteration: iteration, ciphertext: ciphertext,
            signature: Array(signature))
        chainKey = next
        iteration += 1
        messagesSent += 1
        return (message, messageKey)
    }
}

extension SenderKeyState {
    static let stateEncodingVersion: UInt8 = 1
    static let encodedLength = 1 + 16 + 4 + 4 + 32 + 32 + 8 + 8

    /// The whole sending state, signing key included: store it only encrypted, and after every
    /// message (a restored older state would reuse message keys).
    ///
    /// ```
    /// 0x01 ‖ distribution id (16) ‖ chain id (u32) ‖ iteration (u32) ‖ chain key (32)
    ///   ‖ signing key seed (32) ‖ created at (u64) ‖ messages sent (u64)
    /// ```
    public var serialized: SecretBytes {
        SecretWriter.encode(count: Self.encodedLength) { writer in
            writer.write(Self.stateEncodingVersion)
            writer.write(distributionId)
            writer.write(bigEndian: chainId)
            writer.write(bigEndian: iteration)
            writer.write(chainKey.key)
            writer.write(erasing: signingKey.rawRepresentation)
            writer.write(bigEndian: createdAt)
            writer.write(bigEndian: UInt64(messagesSent))
        }
    }

    public init(serialized: SecretBytes) throws(DecodeError) {
        self = try serialized.withUnsafeBytes { buffer throws(DecodeError) in
            var reader = SecretReader(buffer)
            let version = try reader.readByte()
            guard version == Self.stateEncodingVersion else { throw .unsupportedVersion(version) }
            let distributionId = try reader.readBytes(16)
            let chainId = try reader.readUInt32()
            let iteration = try reader.readUInt32()
            let chainKey = try reader.readSecret(32)
            guard let signingKey = try reader.withSecretField(32, { try? Curve25519.Signing.PrivateKey(rawRepresentation: $0) })
            else { throw .invalidField("signing key") }
            let createdAt = try reader.readUInt64()
            guard let messagesSent = Int(exactly: try reader.readUInt64()) else { throw .invalidField("messages sent") }
            try reader.requireEnd()
            var state = SenderKeyState(
                distributionId: distributionId, createdAt: createdAt, chainId: chainId, chainKey: chainKey,
                signingKey: signingKey, iteration: iteration)
            state.messagesSent = messagesSent
            return state
        }
    }
}
