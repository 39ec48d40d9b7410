public import SecureChatKeys

/// The sender keys of one room's members, as one receiving device holds them.
///
/// It enforces the binding of PROTOCOL.md section 7.2: a distribution id belongs to the device whose
/// pairwise session first carried it, so no member can send under another member's name; a new
/// distribution id from the same device (after a reinstall) replaces that device's old record.
/// Keep one store per room.
public struct SenderKeyStore: Sendable {
    private var records: [[UInt8]: SenderKeyRecord] = [:]
    private var distributionByOwner: [ProtocolAddress: [UInt8]] = [:]

    public init() {}

    /// Restores a store from its records (each stored with ``SenderKeyRecord/serialized``). Two
    /// records with one owner or one distribution id cannot both be right: refused.
    public init(records: [SenderKeyRecord]) throws(SenderKeyError) {
        for record in records {
            guard self.records[record.distributionId] == nil else { throw .distributionIdTaken }
            guard distributionByOwner[record.owner] == nil else { throw .wrongSender }
            self.records[record.distributionId] = record
            distributionByOwner[record.owner] = record.distributionId
        }
    }

    /// Takes a distribution message that arrived over `sender`'s pairwise session.
    public mutating func process(_ distribution: SenderKeyDistributionMessage, from sender: ProtocolAddress) throws(SenderKeyError) {
        let id = distribution.distributionId
        if var record = records[id] {
            guard record.owner == sender else { throw .distributionIdTaken }
            try record.add(distribution, from: sender)
            records[id] = record
            return
        }
        if let previous = distributionByOwner[sender] { records[previous] = nil }
        records[id] = SenderKeyRecord(distribution: distribution, owner: sender)
        distributionByOwner[sender] = id
    }

    /// Verifies and decrypts a room message; returns it with the device that sent it.
    public mutating func decrypt(_ bytes: [UInt8]) throws(SenderKeyError) -> (plaintext: [UInt8], sender: ProtocolAddress) {
        let message: SenderKeyMessage
        do {
            message = try SenderKeyMessage(serialized: bytes)
        } catch {
            throw .malformed(error)
        }
        guard var record = records[message.distributionId] else { throw .unknownDistribution }
        let plaintext = try record.decrypt(message)
        records[message.distributionId] = record
        return (plaintext, record.owner)
    }

    /// Forgets a member's sender key (the member left or was removed).
    public mutating func remove(_ member: ProtocolAddress) {
        if let id = distributionByOwner.removeValue(forKey: member) { records[id] = nil }
    }

    /// The record of a member, if any.
    public func record(of member: ProtocolAddress) -> SenderKeyRecord? {
        distributionByOwner[member].flatMap { records[$0] }
    }

    /// Members with a sender key in this store.
    public var members: Set<ProtocolAddress> { Set(distributionByOwner.keys) }
}
