public import SecureChatKeys

/// The receiving side of one member's sender key in one room: its current chain and a few previous
/// ones, each with the keys skipped ahead of late messages.
///
/// A value type: ``decrypt(_:)`` works on a copy and commits only a message that verified and
/// authenticated, so a failure leaves the record exactly as it was.
public struct SenderKeyRecord: Sendable {
    struct ReceiverChain: Sendable {
        let chainId: UInt32
        let signingKey: SigningPublicKey
        var iteration: UInt32
        var chainKey: ChainKey
        /// Keys skipped ahead of late messages, by iteration; `order` is oldest first.
        var skipped: [UInt32: MessageKey] = [:]
        var order: [UInt32] = []
    }

    public let distributionId: [UInt8]
    /// Newest last.
    var chains: [ReceiverChain]

    /// A record from the first distribution message of a member.
    public init(distribution: SenderKeyDistributionMessage) {
        distributionId = distribution.distributionId
        chains = [Self.chain(from: distribution)]
    }

    /// Adds a rotated chain. A distribution for a chain already held is ignored: replaying an old
    /// distribution message can never move a chain backwards.
    public mutating func add(_ distribution: SenderKeyDistributionMessage) throws(SenderKeyError) {
        guard distribution.distributionId == distributionId else { throw .wrongDistribution }
        guard !chains.contains(where: { $0.chainId == distribution.chainId }) else { return }
        chains.append(Self.chain(from: distribution))
        if chains.count > ProtocolLimits.senderKeyMaxPreviousChains + 1 { chains.removeFirst() }
    }

    /// The current chain's id.
    public var currentChainId: UInt32 { chains[chains.count - 1].chainId }

    /// Verifies, then decrypts a room message.
    public mutating func decrypt(_ bytes: [UInt8]) throws(SenderKeyError) -> [UInt8] {
        let message: SenderKeyMessage
        do {
            message = try SenderKeyMessage(serialized: bytes)
        } catch {
            throw .malformed(error)
        }
        return try decrypt(message)
    }

    public mutating func decrypt(_ message: SenderKeyMessage) throws(SenderKeyError) -> [UInt8] {
        guard message.distributionId == distributionId else { throw .wrongDistribution }
        guard let position = chains.lastIndex(where: { $0.chainId == message.chainId }) else {
            throw .unknownChain(message.chainId)
        }
        var chain = chains[position]
        let header = message.header
        // The signature is checked before any key is derived: a forged message costs no HMAC work.
        guard chain.signingKey.isValidSignature(
            message.signature, for: SenderKeyMessage.signedBytes(header: header, ciphertext: message.ciphertext))
        else { throw .invalidSignature }

        let messageKey = try Self.messageKey(for: message.iteration, in: &chain)
        do {
            let plaintext = try MessageCipher.decrypt(
                message.ciphertext, key: messageKey, associatedData: header, label: KDFLabels.senderKeyMessageKeys)
            chains[position] = chain
            return plaintext
        } catch {
            throw .authenticationFailed
        }
    }

    private static func messageKey(for iteration: UInt32, in chain: inout ReceiverChain) throws(SenderKeyError) -> MessageKey {
        // No sender uses iteration 2^32 − 1 (it must rotate first), so the next iteration always fits.
        guard iteration < UInt32.max else { throw .chainExhausted }
        if iteration < chain.iteration {
            guard let key = chain.skipped.removeValue(forKey: iteration) else {
                if let oldest = chain.order.first, iteration < oldest { throw .messageKeyExpired }
                throw .duplicateMessage
            }
            chain.order.removeAll { $0 == iteration }
            return key
        }
        guard UInt64(iteration) - UInt64(chain.iteration) <= UInt64(ProtocolLimits.senderKeyMaxForward) else {
            throw .tooFarAhead
        }
        while chain.iteration < iteration {
            let (skippedKey, next) = chain.chainKey.advanced()
            chain.skipped[chain.iteration] = skippedKey
            chain.order.append(chain.iteration)
            chain.chainKey = next
            chain.iteration += 1
        }
        if chain.order.count > ProtocolLimits.senderKeyMaxStoredKeys {
            let excess = chain.order.count - ProtocolLimits.senderKeyMaxStoredKeys
            for evicted in chain.order.prefix(excess) { chain.skipped[evicted] = nil }
            chain.order.removeFirst(excess)
        }
        let (messageKey, next) = chain.chainKey.advanced()
        chain.chainKey = next
        chain.iteration = iteration + 1
        return messageKey
    }

    private static func chain(from distribution: SenderKeyDistributionMessage) -> ReceiverChain {
        ReceiverChain(
            chainId: distribution.chainId, signingKey: distribution.signingKey, iteration: distribution.iteration,
            chainKey: ChainKey(key: distribution.chainKey))
    }
}

extension SenderKeyRecord {
    static let stateEncodingVersion: UInt8 = 1

    /// The whole record, chain keys included: store it only encrypted.
    ///
    /// ```
    /// 0x01 ‖ distribution id (16) ‖ chain count (1) ‖ { chain id (u32) ‖ signing key (32) ‖ iteration (u32)
    ///   ‖ chain key (32) ‖ skipped count (u32) ‖ { iteration (u32) ‖ message key (32) }* oldest first }*
    /// ```
    public var serialized: SecretBytes {
        var writer = ByteWriter()
        writer.write(Self.stateEncodingVersion)
        writer.write(contentsOf: distributionId)
        writer.write(UInt8(chains.count))
        for chain in chains {
            writer.write(bigEndian: chain.chainId)
            writer.write(contentsOf: chain.signingKey.rawRepresentation)
            writer.write(bigEndian: chain.iteration)
            writer.write(contentsOf: chain.chainKey.key.bytes)
            writer.write(bigEndian: UInt32(chain.order.count))
            for iteration in chain.order {
                writer.write(bigEndian: iteration)
                writer.write(contentsOf: chain.skipped[iteration]?.key.bytes ?? [UInt8](repeating: 0, count: 32))
            }
        }
        var bytes = writer.bytes
        defer { for index in bytes.indices { bytes[index] = 0 } }
        return SecretBytes(bytes)
    }

    public init(serialized: SecretBytes) throws(DecodeError) {
        var reader = ByteReader(serialized.bytes)
        let version = try reader.readByte()
        guard version == Self.stateEncodingVersion else { throw .unsupportedVersion(version) }
        distributionId = try reader.readBytes(16)
        let chainCount = Int(try reader.readByte())
        guard (1...(ProtocolLimits.senderKeyMaxPreviousChains + 1)).contains(chainCount) else {
            throw .lengthOutOfBounds(field: "chains", length: chainCount)
        }
        chains = []
        for _ in 0..<chainCount {
            let chainId = try reader.readUInt32()
            guard let signingKey = try? SigningPublicKey(rawRepresentation: try reader.readBytes(32)) else {
                throw .invalidField("signing key")
            }
            var chain = ReceiverChain(
                chainId: chainId, signingKey: signingKey, iteration: try reader.readUInt32(),
                chainKey: ChainKey(key: SecretBytes(try reader.readBytes(32))))
            let skippedCount = Int(try reader.readUInt32())
            guard skippedCount <= ProtocolLimits.senderKeyMaxStoredKeys else {
                throw .lengthOutOfBounds(field: "skipped keys", length: skippedCount)
            }
            for _ in 0..<skippedCount {
                let iteration = try reader.readUInt32()
                guard chain.skipped.updateValue(MessageKey(key: SecretBytes(try reader.readBytes(32))), forKey: iteration) == nil else {
                    throw .invalidField("repeated skipped iteration")
                }
                chain.order.append(iteration)
            }
            chains.append(chain)
        }
        try reader.requireEnd()
    }
}
