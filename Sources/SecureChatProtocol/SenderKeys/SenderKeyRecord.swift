public import SecureChatKeys

/// The receiving side of one member's sender key in one room: its current chain and a few previous
/// ones, each with the keys skipped ahead of late messages, bound to the device that sent it.
///
/// A value type: ``decrypt(_:)`` works on a copy and commits only a message that verified and
/// authenticated, so a failure leaves the record exactly as it was. Applications keep records in
/// a ``SenderKeyStore``, which enforces that a distribution id belongs to one sender.
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
    /// The device whose pairwise session carried the distribution: the sender shown for every message.
    public let owner: ProtocolAddress
    /// Newest last.
    var chains: [ReceiverChain]

    /// A record from the first distribution message of a member, received over `owner`'s pairwise session.
    public init(distribution: SenderKeyDistributionMessage, owner: ProtocolAddress) {
        distributionId = distribution.distributionId
        self.owner = owner
        chains = [Self.chain(from: distribution)]
    }

    /// Adds a rotated chain. The same distribution again is ignored (a replay can never move a chain
    /// backwards); a known chain id with other keys is refused.
    public mutating func add(_ distribution: SenderKeyDistributionMessage, from sender: ProtocolAddress) throws(SenderKeyError) {
        guard sender == owner else { throw .wrongSender }
        guard distribution.distributionId == distributionId else { throw .wrongDistribution }
        if let known = chains.first(where: { $0.chainId == distribution.chainId }) {
            guard known.signingKey == distribution.signingKey else { throw .chainIdConflict }
            return
        }
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
    static let maxOwnerNameLength = 1024

    /// The whole record, chain keys included: store it only encrypted.
    ///
    /// ```
    /// 0x01 ‖ distribution id (16) ‖ owner name length (u16) ‖ owner name (UTF-8) ‖ owner device (u32)
    ///   ‖ chain count (1) ‖ { chain id (u32) ‖ signing key (32) ‖ iteration (u32) ‖ chain key (32)
    ///   ‖ skipped count (u32) ‖ { iteration (u32) ‖ message key (32) }* oldest first }*
    /// ```
    public var serialized: SecretBytes {
        let name = Array(owner.name.utf8)
        let count = 1 + 16 + 2 + name.count + 4 + 1 + chains.reduce(0) { $0 + 76 + $1.order.count * 36 }
        return SecretWriter.encode(count: count) { writer in
            writer.write(Self.stateEncodingVersion)
            writer.write(distributionId)
            writer.write(bigEndian: UInt16(name.count))
            writer.write(name)
            writer.write(bigEndian: owner.deviceId)
            writer.write(UInt8(chains.count))
            for chain in chains {
                writer.write(bigEndian: chain.chainId)
                writer.write(chain.signingKey.rawRepresentation)
                writer.write(bigEndian: chain.iteration)
                writer.write(chain.chainKey.key)
                writer.write(bigEndian: UInt32(chain.order.count))
                for iteration in chain.order {
                    writer.write(bigEndian: iteration)
                    // Every ordered iteration has its key: insertions and removals touch both together.
                    writer.write(chain.skipped[iteration]?.key ?? SecretBytes([UInt8](repeating: 0, count: 32)))
                }
            }
        }
    }

    public init(serialized: SecretBytes) throws(DecodeError) {
        self = try serialized.withUnsafeBytes { buffer throws(DecodeError) in try Self.decode(buffer) }
    }

    private static func decode(_ buffer: UnsafeRawBufferPointer) throws(DecodeError) -> SenderKeyRecord {
        var reader = SecretReader(buffer)
        let version = try reader.readByte()
        guard version == stateEncodingVersion else { throw .unsupportedVersion(version) }
        let distributionId = try reader.readBytes(16)
        let nameLength = Int(try reader.readUInt16())
        guard nameLength <= maxOwnerNameLength else { throw .lengthOutOfBounds(field: "owner name", length: nameLength) }
        guard let name = String(validating: try reader.readBytes(nameLength), as: UTF8.self) else {
            throw .invalidField("owner name")
        }
        let owner = ProtocolAddress(name: name, deviceId: try reader.readUInt32())
        let chainCount = Int(try reader.readByte())
        guard (1...(ProtocolLimits.senderKeyMaxPreviousChains + 1)).contains(chainCount) else {
            throw .lengthOutOfBounds(field: "chains", length: chainCount)
        }
        var chains: [ReceiverChain] = []
        for _ in 0..<chainCount {
            let chainId = try reader.readUInt32()
            guard let signingKey = try? SigningPublicKey(rawRepresentation: try reader.readBytes(32)) else {
                throw .invalidField("signing key")
            }
            var chain = ReceiverChain(
                chainId: chainId, signingKey: signingKey, iteration: try reader.readUInt32(),
                chainKey: ChainKey(key: try reader.readSecret(32)))
            let skippedCount = Int(try reader.readUInt32())
            guard skippedCount <= ProtocolLimits.senderKeyMaxStoredKeys else {
                throw .lengthOutOfBounds(field: "skipped keys", length: skippedCount)
            }
            for _ in 0..<skippedCount {
                let iteration = try reader.readUInt32()
                guard chain.skipped.updateValue(MessageKey(key: try reader.readSecret(32)), forKey: iteration) == nil else {
                    throw .invalidField("repeated skipped iteration")
                }
                chain.order.append(iteration)
            }
            chains.append(chain)
        }
        try reader.requireEnd()
        return SenderKeyRecord(distributionId: distributionId, owner: owner, chains: chains)
    }

    private init(distributionId: [UInt8], owner: ProtocolAddress, chains: [ReceiverChain]) {
        self.distributionId = distributionId
        self.owner = owner
        self.chains = chains
    }
}
