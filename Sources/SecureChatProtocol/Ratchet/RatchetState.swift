public import Crypto
public import SecureChatKeys

/// Why a Double Ratchet operation failed. The session is unchanged after every one of them.
public enum RatchetError: Error, Equatable, Sendable {
    /// The message did not authenticate (wrong key, tampered, or from another session).
    case authenticationFailed
    /// The header asks to skip more than ``ProtocolLimits/maxSkip`` message keys in one chain.
    case tooManySkippedMessages
    /// The message's key was already used: it is a replay or a duplicate.
    case duplicateMessage
    /// The session cannot send yet: the responder must first receive a message.
    case sendingChainNotReady
    /// A ratchet public key produced a degenerate Diffie–Hellman output.
    case invalidKeyAgreement
    /// The plaintext exceeds ``ProtocolLimits/maxMessagePlaintext``.
    case plaintextTooLarge
    /// N would reach 2^32 − 1, which no message may carry: the chain must ratchet first.
    case messageNumberOutOfRange
}

/// One side of a Double Ratchet session (https://signal.org/docs/specifications/doubleratchet/),
/// with the specification's recommended algorithms (section 5.2).
///
/// A value type: ``decrypt(header:ciphertext:)`` works on a copy and commits only when the
/// message authenticates, so a message that fails for any reason leaves the state exactly as it was.
///
/// **A value is one session.** Never encrypt from two copies of the same state (for example an old
/// one restored from a backup): both would derive the same message keys. Persist the state after
/// every operation and keep exactly one live copy.
public struct RatchetState: Sendable {
    /// AD from X3DH, prepended to every header as associated data.
    public let associatedData: [UInt8]
    var rootKey: RootKey
    var sendingRatchetKey: Curve25519.KeyAgreement.PrivateKey {
        didSet { sendingRatchetPublicKey = X25519PublicKey(publicKeyOf: sendingRatchetKey) }
    }
    /// DHs's public key, kept because every header carries it.
    public private(set) var sendingRatchetPublicKey: X25519PublicKey
    var receivingRatchetKey: X25519PublicKey?
    var sendingChain: ChainKey?
    var receivingChain: ChainKey?
    var sendingMessageNumber: UInt32 = 0
    var receivingMessageNumber: UInt32 = 0
    var previousSendingChainLength: UInt32 = 0
    var skippedKeys = SkippedMessageKeys()

    /// RatchetInitAlice: the initiator ratchets at once against the responder's signed prekey.
    public static func initiator(
        sharedSecret: SecretBytes, associatedData: [UInt8], responderRatchetKey: X25519PublicKey
    ) throws(RatchetError) -> RatchetState {
        try initiator(
            sharedSecret: sharedSecret, associatedData: associatedData, responderRatchetKey: responderRatchetKey,
            keySource: SystemKeySource())
    }

    package static func initiator(
        sharedSecret: SecretBytes, associatedData: [UInt8], responderRatchetKey: X25519PublicKey,
        keySource: some RatchetKeySource
    ) throws(RatchetError) -> RatchetState {
        checkInitialisation(sharedSecret: sharedSecret, associatedData: associatedData)
        let ratchetKey = keySource.makeRatchetKey()
        let (root, chain) = RootKey(key: sharedSecret).ratcheted(
            with: try diffieHellman(ratchetKey, responderRatchetKey))
        return RatchetState(
            associatedData: associatedData, rootKey: root, sendingRatchetKey: ratchetKey,
            receivingRatchetKey: responderRatchetKey, sendingChain: chain, receivingChain: nil)
    }

    /// RatchetInitBob: the responder starts from its signed prekey pair and waits for a message.
    public static func responder(
        sharedSecret: SecretBytes, associatedData: [UInt8], ratchetKey: Curve25519.KeyAgreement.PrivateKey
    ) -> RatchetState {
        checkInitialisation(sharedSecret: sharedSecret, associatedData: associatedData)
        return RatchetState(
            associatedData: associatedData, rootKey: RootKey(key: sharedSecret), sendingRatchetKey: ratchetKey,
            receivingRatchetKey: nil, sendingChain: nil, receivingChain: nil)
    }

    init(
        associatedData: [UInt8], rootKey: RootKey, sendingRatchetKey: Curve25519.KeyAgreement.PrivateKey,
        receivingRatchetKey: X25519PublicKey?, sendingChain: ChainKey?, receivingChain: ChainKey?
    ) {
        self.associatedData = associatedData
        self.rootKey = rootKey
        self.sendingRatchetKey = sendingRatchetKey
        self.sendingRatchetPublicKey = X25519PublicKey(publicKeyOf: sendingRatchetKey)
        self.receivingRatchetKey = receivingRatchetKey
        self.sendingChain = sendingChain
        self.receivingChain = receivingChain
    }

    /// SK comes from X3DH (32 bytes) and AD is two identity keys: anything else is a programming error.
    private static func checkInitialisation(sharedSecret: SecretBytes, associatedData: [UInt8]) {
        precondition(sharedSecret.count == 32, "the shared secret is 32 bytes")
        precondition(associatedData.count <= maxAssociatedDataLength, "associated data is at most 1024 bytes")
    }

    /// Whether this side has a sending chain (the responder has none until it receives).
    public var canSend: Bool { sendingChain != nil }

    /// RatchetEncrypt: the header and `ciphertext ‖ tag` of the next message.
    public mutating func encrypt(_ plaintext: [UInt8]) throws(RatchetError) -> (header: RatchetHeader, ciphertext: [UInt8]) {
        let (header, ciphertext, _) = try encryptReturningKey(plaintext)
        return (header, ciphertext)
    }

    /// As ``encrypt(_:)``, also returning the message key (vectors record it).
    package mutating func encryptReturningKey(_ plaintext: [UInt8]) throws(RatchetError)
        -> (header: RatchetHeader, ciphertext: [UInt8], messageKey: MessageKey)
    {
        guard plaintext.count <= ProtocolLimits.maxMessagePlaintext else { throw .plaintextTooLarge }
        guard let chain = sendingChain else { throw .sendingChainNotReady }
        guard sendingMessageNumber < UInt32.max else { throw .messageNumberOutOfRange }
        let (messageKey, next) = chain.advanced()
        let header = RatchetHeader(
            ratchetKey: sendingRatchetPublicKey, previousChainLength: previousSendingChainLength,
            messageNumber: sendingMessageNumber)
        let ciphertext = MessageCipher.encrypt(
            plaintext, key: messageKey, associatedData: associatedData, header: header.encoded,
            label: KDFLabels.ratchetMessageKeys)
        sendingChain = next
        sendingMessageNumber += 1
        return (header, ciphertext, messageKey)
    }

    /// RatchetDecrypt. On any error the state is unchanged.
    public mutating func decrypt(header: RatchetHeader, ciphertext: [UInt8]) throws(RatchetError) -> [UInt8] {
        try decryptReturningKey(header: header, ciphertext: ciphertext, keySource: SystemKeySource()).plaintext
    }

    package mutating func decrypt(
        header: RatchetHeader, ciphertext: [UInt8], keySource: some RatchetKeySource
    ) throws(RatchetError) -> [UInt8] {
        try decryptReturningKey(header: header, ciphertext: ciphertext, keySource: keySource).plaintext
    }

    /// As ``decrypt(header:ciphertext:)``, with the key source injected, also returning the message key used.
    package mutating func decryptReturningKey(
        header: RatchetHeader, ciphertext: [UInt8], keySource: some RatchetKeySource
    ) throws(RatchetError) -> (plaintext: [UInt8], messageKey: MessageKey) {
        var next = self
        let messageKey = try next.messageKey(for: header, keySource: keySource)
        do {
            let plaintext = try MessageCipher.decrypt(
                ciphertext, key: messageKey, associatedData: associatedData, header: header.encoded,
                label: KDFLabels.ratchetMessageKeys)
            self = next
            return (plaintext, messageKey)
        } catch {
            throw .authenticationFailed
        }
    }

    /// Finds or derives the key for `header`, advancing this (scratch) copy of the state.
    private mutating func messageKey(for header: RatchetHeader, keySource: some RatchetKeySource)
        throws(RatchetError) -> MessageKey
    {
        // N = 2^32 − 1 is never sent; refusing it keeps Nr + 1 below 2^32.
        guard header.messageNumber < UInt32.max else { throw .messageNumberOutOfRange }
        let index = SkippedMessageKeys.Index(
            ratchetKey: header.ratchetKey.rawRepresentation, messageNumber: header.messageNumber)
        if let skipped = skippedKeys.take(index) { return skipped }

        if header.ratchetKey != receivingRatchetKey {
            try skipMessageKeys(until: header.previousChainLength)
            try performDiffieHellmanRatchet(with: header.ratchetKey, keySource: keySource)
        } else if header.messageNumber < receivingMessageNumber {
            // Current chain, already past this number, and no skipped key: it was used before.
            throw .duplicateMessage
        }
        try skipMessageKeys(until: header.messageNumber)
        guard let chain = receivingChain else { throw .authenticationFailed }
        let (messageKey, nextChain) = chain.advanced()
        receivingChain = nextChain
        receivingMessageNumber += 1
        return messageKey
    }

    private mutating func skipMessageKeys(until end: UInt32) throws(RatchetError) {
        guard UInt64(receivingMessageNumber) + UInt64(ProtocolLimits.maxSkip) >= UInt64(end) else {
            throw .tooManySkippedMessages
        }
        guard var chain = receivingChain, let ratchetKey = receivingRatchetKey else { return }
        while receivingMessageNumber < end {
            let (messageKey, nextChain) = chain.advanced()
            skippedKeys.insert(
                messageKey,
                at: .init(ratchetKey: ratchetKey.rawRepresentation, messageNumber: receivingMessageNumber))
            chain = nextChain
            receivingMessageNumber += 1
        }
        receivingChain = chain
    }

    private mutating func performDiffieHellmanRatchet(
        with ratchetKey: X25519PublicKey, keySource: some RatchetKeySource
    ) throws(RatchetError) {
        previousSendingChainLength = sendingMessageNumber
        sendingMessageNumber = 0
        receivingMessageNumber = 0
        receivingRatchetKey = ratchetKey
        let (root, receiving) = rootKey.ratcheted(with: try Self.diffieHellman(sendingRatchetKey, ratchetKey))
        receivingChain = receiving
        sendingRatchetKey = keySource.makeRatchetKey()
        let (nextRoot, sending) = root.ratcheted(with: try Self.diffieHellman(sendingRatchetKey, ratchetKey))
        rootKey = nextRoot
        sendingChain = sending
    }

    private static func diffieHellman(
        _ privateKey: Curve25519.KeyAgreement.PrivateKey, _ publicKey: X25519PublicKey
    ) throws(RatchetError) -> SecretBytes {
        do {
            return try X3DH.diffieHellman(privateKey, publicKey)
        } catch {
            throw .invalidKeyAgreement
        }
    }
}
