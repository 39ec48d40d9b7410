import Crypto
import SecureChatKeys
import SecureChatTestSupport
import Testing
@testable import SecureChatProtocol

@Suite("Sender keys")
struct SenderKeyTests {
    static let distributionId = [UInt8](repeating: 0xab, count: 16)
    static let alice = ProtocolAddress(name: "alice", deviceId: 1)
    static let mallory = ProtocolAddress(name: "mallory", deviceId: 1)

    static func pair() throws -> (sender: SenderKeyState, receiver: SenderKeyRecord) {
        let sender = SenderKeyState(distributionId: distributionId, createdAt: 1_800_000_000)
        let distribution = try SenderKeyDistributionMessage(serialized: sender.distributionMessage.serialized.bytes)
        return (sender, SenderKeyRecord(distribution: distribution, owner: alice))
    }

    @Test("messages decrypt in order and out of order, each exactly once")
    func outOfOrder() throws {
        var (sender, receiver) = try Self.pair()
        var generator = SeededGenerator(seed: 3)
        var messages: [([UInt8], [UInt8])] = []
        for index in 0..<200 {
            let plaintext = Array("message \(index)".utf8)
            messages.append((plaintext, try sender.encrypt(plaintext).serialized))
        }
        messages.shuffle(using: &generator)
        for (plaintext, wire) in messages {
            #expect(try receiver.decrypt(wire) == plaintext)
        }
        for (_, wire) in messages.prefix(20) {
            #expect(throws: SenderKeyError.duplicateMessage) { try receiver.decrypt(wire) }
        }
    }

    @Test("every flipped byte, signature included, is refused and changes nothing")
    func everyByteFlipped() throws {
        var (sender, receiver) = try Self.pair()
        let wire = try sender.encrypt(Array("hello room".utf8)).serialized
        let skippedAhead = try sender.encrypt([1]).serialized
        _ = try receiver.decrypt(try sender.encrypt([2]).serialized)
        for index in 0..<wire.count {
            for mask: UInt8 in [0x01, 0x40] {
                var tampered = wire
                tampered[index] ^= mask
                #expect(throws: SenderKeyError.self, "byte \(index)") { try receiver.decrypt(tampered) }
            }
        }
        // Nothing was consumed: both skipped messages still decrypt.
        #expect(try receiver.decrypt(wire) == Array("hello room".utf8))
        #expect(try receiver.decrypt(skippedAhead) == [1])
    }

    @Test("a message signed by another key is refused before any key is derived")
    func wrongSigner() throws {
        var (_, receiver) = try Self.pair()
        var impostor = SenderKeyState(
            distributionId: Self.distributionId, createdAt: 0, chainId: receiver.currentChainId, chainKey: .random(count: 32),
            signingKey: .init())
        let forged = try impostor.encrypt([1]).serialized
        #expect(throws: SenderKeyError.invalidSignature) { try receiver.decrypt(forged) }
    }

    @Test("jumps beyond the forward bound are refused; a failed jump consumes nothing")
    func forwardBound() throws {
        let signing = Curve25519.Signing.PrivateKey()
        var sender = SenderKeyState(
            distributionId: Self.distributionId, createdAt: 0, chainId: 5, chainKey: .random(count: 32), signingKey: signing)
        var record = SenderKeyRecord(distribution: sender.distributionMessage, owner: Self.alice)
        // The sender's chain restarted at far iterations: validly signed, so only the bound (or the
        // keys, which differ) can stop it.
        func restarted(at iteration: Int) -> SenderKeyState {
            SenderKeyState(
                distributionId: Self.distributionId, createdAt: 0, chainId: 5, chainKey: sender.distributionMessage.chainKey,
                signingKey: signing, iteration: UInt32(iteration))
        }
        var beyond = restarted(at: ProtocolLimits.senderKeyMaxForward + 1)
        #expect(throws: SenderKeyError.tooFarAhead) { try record.decrypt(try beyond.encrypt([1]).serialized) }
        var atBound = restarted(at: ProtocolLimits.senderKeyMaxForward)
        #expect(throws: SenderKeyError.authenticationFailed) { try record.decrypt(try atBound.encrypt([1]).serialized) }
        // Neither attempt moved the chain: the genuine first message still decrypts.
        #expect(try record.decrypt(try sender.encrypt([7]).serialized) == [7])
    }

    @Test("iteration 2^32 - 1 is never sent, accepted or distributed")
    func iterationBound() throws {
        let signing = Curve25519.Signing.PrivateKey()
        var last = SenderKeyState(
            distributionId: Self.distributionId, createdAt: 0, chainId: 1, chainKey: .random(count: 32), signingKey: signing,
            iteration: .max - 1)
        var record = SenderKeyRecord(distribution: last.distributionMessage, owner: Self.alice)
        #expect(try record.decrypt(try last.encrypt([1]).serialized) == [1])
        #expect(throws: SenderKeyError.chainExhausted) { try last.encrypt([2]) }
        var bytes = last.distributionMessage.serialized.bytes
        bytes.replaceSubrange(22..<26, with: [0xff, 0xff, 0xff, 0xff])
        #expect(throws: DecodeError.invalidField("iteration")) { try SenderKeyDistributionMessage(serialized: bytes) }
    }

    @Test("rotation: a new chain decrypts, the old chain's late messages still do, unknown chains are refused")
    func rotation() throws {
        var (sender, receiver) = try Self.pair()
        let late = try sender.encrypt(Array("late".utf8)).serialized
        var rotated = sender.rotated(now: 1_800_000_100)
        #expect(rotated.chainId != sender.chainId)
        let distribution = rotated.distributionMessage
        let fresh = try rotated.encrypt(Array("fresh".utf8)).serialized
        #expect(throws: SenderKeyError.unknownChain(rotated.chainId)) { try receiver.decrypt(fresh) }
        try receiver.add(distribution, from: Self.alice)
        #expect(try receiver.decrypt(fresh) == Array("fresh".utf8))
        #expect(try receiver.decrypt(late) == Array("late".utf8))
        // A member who never got the new distribution (a removed member) cannot read the new chain.
        var (_, removed) = try Self.pair()
        #expect(throws: SenderKeyError.self) { try removed.decrypt(fresh) }
    }

    @Test("the rotation policy triggers on message count and on age")
    func policy() throws {
        var state = SenderKeyState(distributionId: Self.distributionId, createdAt: 1000)
        let policy = SenderKeyRotationPolicy(maxMessages: 3, maxAge: 60)
        #expect(!state.needsRotation(policy: policy, now: 1059))
        #expect(state.needsRotation(policy: policy, now: 1060))
        for _ in 0..<3 { _ = try state.encrypt([0]) }
        #expect(state.needsRotation(policy: policy, now: 1000))
    }

    @Test("distribution messages decode strictly and never print the chain key")
    func distributionEncoding() throws {
        let state = SenderKeyState(distributionId: Self.distributionId, createdAt: 0)
        let bytes = state.distributionMessage.serialized.bytes
        #expect(bytes.count == SenderKeyDistributionMessage.encodedLength)
        #expect(try SenderKeyDistributionMessage(serialized: bytes) == state.distributionMessage)
        for length in 0..<bytes.count {
            #expect(throws: DecodeError.self) { try SenderKeyDistributionMessage(serialized: Array(bytes.prefix(length))) }
        }
        #expect(!"\(state.distributionMessage)".contains(Hex.encode(state.distributionMessage.chainKey.bytes.prefix(4))))
    }

    @Test("messages of another distribution are refused")
    func wrongDistribution() throws {
        var (_, receiver) = try Self.pair()
        var other = SenderKeyState(distributionId: [UInt8](repeating: 1, count: 16), createdAt: 0)
        #expect(throws: SenderKeyError.wrongDistribution) { try receiver.decrypt(try other.encrypt([1]).serialized) }
        #expect(throws: SenderKeyError.wrongDistribution) { try receiver.add(other.distributionMessage, from: Self.alice) }
    }

    @Test("a distribution id belongs to the device that first sent it; nobody can speak in another's name")
    func ownerBinding() throws {
        var store = SenderKeyStore()
        var alice = SenderKeyState(distributionId: Self.distributionId, createdAt: 0)
        try store.process(alice.distributionMessage, from: Self.alice)
        // Mallory claims Alice's distribution id with her own keys, over her own pairwise session.
        var mallory = SenderKeyState(
            distributionId: Self.distributionId, createdAt: 0, chainId: 77, chainKey: .random(count: 32), signingKey: .init())
        #expect(throws: SenderKeyError.distributionIdTaken) { try store.process(mallory.distributionMessage, from: Self.mallory) }
        #expect(throws: SenderKeyError.unknownChain(77)) { try store.decrypt(try mallory.encrypt([1]).serialized) }
        // Alice's messages come out attributed to Alice.
        let (plaintext, sender) = try store.decrypt(try alice.encrypt(Array("hi".utf8)).serialized)
        #expect(plaintext == Array("hi".utf8) && sender == Self.alice)
        // A record refuses a rotation relayed from anyone else.
        var record = try #require(store.record(of: Self.alice))
        #expect(throws: SenderKeyError.wrongSender) { try record.add(alice.rotated(now: 1).distributionMessage, from: Self.mallory) }
        // A known chain id with other keys is a conflict, not silently ignored.
        let conflicting = SenderKeyState(
            distributionId: Self.distributionId, createdAt: 0, chainId: alice.chainId, chainKey: .random(count: 32), signingKey: .init())
        #expect(throws: SenderKeyError.chainIdConflict) { try record.add(conflicting.distributionMessage, from: Self.alice) }
        // After a reinstall Alice's new distribution id replaces the old one; removal forgets her.
        let reinstalled = SenderKeyState(distributionId: [UInt8](repeating: 0xcd, count: 16), createdAt: 0)
        try store.process(reinstalled.distributionMessage, from: Self.alice)
        #expect(store.record(of: Self.alice)?.distributionId == reinstalled.distributionId)
        #expect(throws: SenderKeyError.unknownDistribution) { try store.decrypt(try alice.encrypt([2]).serialized) }
        store.remove(Self.alice)
        #expect(store.members.isEmpty)
    }

    @Test("records survive serialisation with owner, chains and skipped keys")
    func recordSerialisation() throws {
        var (sender, receiver) = try Self.pair()
        let skipped = try sender.encrypt([1]).serialized
        _ = try receiver.decrypt(try sender.encrypt([2]).serialized)
        let rotated = sender.rotated(now: 5)
        try receiver.add(rotated.distributionMessage, from: Self.alice)
        var restored = try SenderKeyRecord(serialized: receiver.serialized)
        #expect(restored.serialized == receiver.serialized)
        #expect(restored.owner == Self.alice)
        #expect(try restored.decrypt(skipped) == [1])
        let bytes = receiver.serialized.bytes
        for length in 0..<bytes.count {
            #expect(throws: DecodeError.self) { try SenderKeyRecord(serialized: SecretBytes(bytes.prefix(length))) }
        }
    }

    @Test("a store restored from its records decrypts as before and keeps the owner binding")
    func storeFromRecords() throws {
        var store = SenderKeyStore()
        var alice = SenderKeyState(distributionId: Self.distributionId, createdAt: 0)
        var mallory = SenderKeyState(distributionId: [UInt8](repeating: 0x11, count: 16), createdAt: 0)
        try store.process(alice.distributionMessage, from: Self.alice)
        try store.process(mallory.distributionMessage, from: Self.mallory)
        let records = try store.members.map { member in try SenderKeyRecord(serialized: try #require(store.record(of: member)).serialized) }
        var restored = try SenderKeyStore(records: records)
        #expect(restored.members == [Self.alice, Self.mallory])
        #expect(try restored.decrypt(try alice.encrypt([7]).serialized).sender == Self.alice)
        #expect(try restored.decrypt(try mallory.encrypt([8]).serialized).sender == Self.mallory)
        // Mallory still cannot take over Alice's distribution id.
        let impostor = SenderKeyState(
            distributionId: Self.distributionId, createdAt: 0, chainId: 5, chainKey: .random(count: 32), signingKey: .init())
        #expect(throws: SenderKeyError.distributionIdTaken) { try restored.process(impostor.distributionMessage, from: Self.mallory) }
        // Contradictory record sets are refused.
        #expect(throws: SenderKeyError.distributionIdTaken) { try SenderKeyStore(records: [records[0], records[0]]) }
        let second = SenderKeyRecord(distribution: SenderKeyState(distributionId: [UInt8](repeating: 0x22, count: 16), createdAt: 0).distributionMessage, owner: records[0].owner)
        #expect(throws: SenderKeyError.wrongSender) { try SenderKeyStore(records: [records[0], second]) }
    }

    @Test("an age limit of forever never overflows")
    func policyWithoutAgeLimit() {
        let state = SenderKeyState(distributionId: Self.distributionId, createdAt: 1000)
        #expect(!state.needsRotation(policy: SenderKeyRotationPolicy(maxMessages: 10, maxAge: .max), now: .max))
    }

    @Test("a sending state survives serialisation: same keys, position and counters")
    func senderStateSerialisation() throws {
        var (sender, receiver) = try Self.pair()
        _ = try receiver.decrypt(try sender.encrypt([1]).serialized)
        var restored = try SenderKeyState(serialized: sender.serialized)
        #expect(restored.serialized == sender.serialized)
        #expect(restored.messagesSent == 1 && restored.iteration == 1)
        #expect(try receiver.decrypt(try restored.encrypt([2]).serialized) == [2])
        let bytes = sender.serialized.bytes
        for length in 0..<bytes.count {
            #expect(throws: DecodeError.self) { try SenderKeyState(serialized: SecretBytes(bytes.prefix(length))) }
        }
    }
}
