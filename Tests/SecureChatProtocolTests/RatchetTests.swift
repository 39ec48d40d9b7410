import Crypto
import SecureChatKeys
import SecureChatTestSupport
import Testing
@testable import SecureChatProtocol

@Suite("Double Ratchet")
struct RatchetTests {
    /// Bare ratchet states sharing a secret, without X3DH.
    static func pair() throws -> (alice: RatchetState, bob: RatchetState) {
        let secret = SecretBytes.random(count: 32)
        let bobKey = Curve25519.KeyAgreement.PrivateKey()
        let ad = [UInt8](repeating: 7, count: 64)
        let alice = try RatchetState.initiator(
            sharedSecret: secret, associatedData: ad,
            responderRatchetKey: try X25519PublicKey(rawRepresentation: bobKey.publicKey.rawRepresentation))
        let bob = RatchetState.responder(sharedSecret: secret, associatedData: ad, ratchetKey: bobKey)
        return (alice, bob)
    }

    struct Sent {
        let header: RatchetHeader
        let ciphertext: [UInt8]
        let plaintext: [UInt8]
    }

    @Test("multi-turn conversation with empty, short and long plaintexts")
    func conversation() throws {
        var (alice, bob) = try Self.pair()
        #expect(!bob.canSend)
        #expect(throws: RatchetError.sendingChainNotReady) { try bob.encrypt([1]) }
        for turn in 0..<10 {
            for length in [0, 1, 15, 16, 17, 100, 1000] {
                let plaintext = [UInt8](repeating: UInt8(turn), count: length)
                let (header, ciphertext) = try alice.encrypt(plaintext)
                #expect(try bob.decrypt(header: header, ciphertext: ciphertext) == plaintext)
            }
            let (header, ciphertext) = try bob.encrypt(Array("turn \(turn)".utf8))
            #expect(try alice.decrypt(header: header, ciphertext: ciphertext) == Array("turn \(turn)".utf8))
        }
    }

    @Test("every flipped byte of header, ciphertext or tag fails and leaves the state byte-for-byte unchanged")
    func everyByteFlipped() throws {
        var (alice, bob) = try Self.pair()
        // Bring Bob into a state with a receiving chain and skipped keys, so all of it is at stake.
        let early = try alice.encrypt(Array("early".utf8))
        let target = try alice.encrypt(Array("a message of some length, 40 bytes long".utf8))
        _ = try alice.encrypt([1])
        let later = try alice.encrypt([2])
        _ = try bob.decrypt(header: later.header, ciphertext: later.ciphertext)
        let before = bob.snapshot
        let wire = RatchetMessage(header: target.header, ciphertext: target.ciphertext).serialized
        var failures = 0
        for index in 2..<wire.count {
            for mask: UInt8 in [0x01, 0x80] {
                var tampered = wire
                tampered[index] ^= mask
                do {
                    let message = try RatchetMessage(serialized: tampered)
                    _ = try bob.decrypt(header: message.header, ciphertext: message.ciphertext)
                    Issue.record("byte \(index) flipped with \(mask) was accepted")
                } catch {
                    failures += 1
                }
                #expect(bob.snapshot == before, "state changed after flipping byte \(index)")
            }
        }
        #expect(failures == (wire.count - 2) * 2)
        // The genuine messages still decrypt afterwards.
        #expect(try bob.decrypt(header: target.header, ciphertext: target.ciphertext) == Array("a message of some length, 40 bytes long".utf8))
        #expect(try bob.decrypt(header: early.header, ciphertext: early.ciphertext) == Array("early".utf8))
    }

    @Test("replays are refused and change nothing")
    func replay() throws {
        var (alice, bob) = try Self.pair()
        let first = try alice.encrypt([1])
        let second = try alice.encrypt([2])
        _ = try bob.decrypt(header: second.header, ciphertext: second.ciphertext)
        _ = try bob.decrypt(header: first.header, ciphertext: first.ciphertext)  // from a skipped key
        let before = bob.snapshot
        #expect(throws: RatchetError.duplicateMessage) { try bob.decrypt(header: second.header, ciphertext: second.ciphertext) }
        #expect(throws: RatchetError.duplicateMessage) { try bob.decrypt(header: first.header, ciphertext: first.ciphertext) }
        #expect(bob.snapshot == before)
        // After a DH step, a replay of the old chain fails authentication and still changes nothing.
        let reply = try bob.encrypt([3])
        _ = try alice.decrypt(header: reply.header, ciphertext: reply.ciphertext)
        let next = try alice.encrypt([4])
        _ = try bob.decrypt(header: next.header, ciphertext: next.ciphertext)
        let afterStep = bob.snapshot
        #expect(throws: RatchetError.self) { try bob.decrypt(header: second.header, ciphertext: second.ciphertext) }
        #expect(bob.snapshot == afterStep)
    }

    @Test("skipping more than MAX_SKIP in one chain is refused; exactly MAX_SKIP is fine")
    func maxSkip() throws {
        var (alice, bob) = try Self.pair()
        var sent: [Sent] = []
        for index in 0...(ProtocolLimits.maxSkip + 1) {
            let (header, ciphertext) = try alice.encrypt([UInt8(truncatingIfNeeded: index)])
            sent.append(Sent(header: header, ciphertext: ciphertext, plaintext: [UInt8(truncatingIfNeeded: index)]))
        }
        let before = bob.snapshot
        let tooFar = sent[ProtocolLimits.maxSkip + 1]
        #expect(throws: RatchetError.tooManySkippedMessages) { try bob.decrypt(header: tooFar.header, ciphertext: tooFar.ciphertext) }
        #expect(bob.snapshot == before)
        let farthest = sent[ProtocolLimits.maxSkip]
        #expect(try bob.decrypt(header: farthest.header, ciphertext: farthest.ciphertext) == farthest.plaintext)
        #expect(bob.skippedKeys.count == ProtocolLimits.maxSkip)
        #expect(try bob.decrypt(header: sent[0].header, ciphertext: sent[0].ciphertext) == sent[0].plaintext)
    }

    @Test("the skipped-key store evicts oldest first at its bound")
    func eviction() throws {
        var (alice, bob) = try Self.pair()
        var chains: [[Sent]] = []
        for _ in 0..<3 {
            var chain: [Sent] = []
            for index in 0...ProtocolLimits.maxSkip {
                let (header, ciphertext) = try alice.encrypt([UInt8(truncatingIfNeeded: index)])
                chain.append(Sent(header: header, ciphertext: ciphertext, plaintext: [UInt8(truncatingIfNeeded: index)]))
            }
            // Bob reads only the last message of the chain, then answers so that Alice ratchets.
            let last = chain[ProtocolLimits.maxSkip]
            _ = try bob.decrypt(header: last.header, ciphertext: last.ciphertext)
            let reply = try bob.encrypt([0])
            _ = try alice.decrypt(header: reply.header, ciphertext: reply.ciphertext)
            chains.append(chain)
        }
        #expect(bob.skippedKeys.count == ProtocolLimits.maxStoredSkippedKeys)
        // 3000 keys were skipped; the 1000 of the first chain were evicted.
        let evicted = chains[0][ProtocolLimits.maxSkip - 1]
        #expect(throws: RatchetError.self) { try bob.decrypt(header: evicted.header, ciphertext: evicted.ciphertext) }
        let kept = chains[1][0]
        #expect(try bob.decrypt(header: kept.header, ciphertext: kept.ciphertext) == kept.plaintext)
    }

    @Test("1000 random interleavings of sending and out-of-order delivery decrypt every message once")
    func randomDeliveryOrders() throws {
        var generator = SeededGenerator(seed: 20261127)
        for _ in 0..<1000 {
            var (alice, bob) = try Self.pair()
            var toBob: [Sent] = []
            var toAlice: [Sent] = []
            var delivered: [(Sent, toBob: Bool)] = []
            var counter = 0
            let first = try alice.encrypt([0])
            _ = try bob.decrypt(header: first.header, ciphertext: first.ciphertext)
            for _ in 0..<24 {
                switch Int.random(in: 0..<4, using: &generator) {
                case 0:
                    counter += 1
                    let plaintext = Array("a\(counter)".utf8)
                    let (header, ciphertext) = try alice.encrypt(plaintext)
                    toBob.append(Sent(header: header, ciphertext: ciphertext, plaintext: plaintext))
                case 1:
                    counter += 1
                    let plaintext = Array("b\(counter)".utf8)
                    let (header, ciphertext) = try bob.encrypt(plaintext)
                    toAlice.append(Sent(header: header, ciphertext: ciphertext, plaintext: plaintext))
                case 2 where !toBob.isEmpty:
                    let message = toBob.remove(at: Int.random(in: 0..<toBob.count, using: &generator))
                    #expect(try bob.decrypt(header: message.header, ciphertext: message.ciphertext) == message.plaintext)
                    delivered.append((message, true))
                case 3 where !toAlice.isEmpty:
                    let message = toAlice.remove(at: Int.random(in: 0..<toAlice.count, using: &generator))
                    #expect(try alice.decrypt(header: message.header, ciphertext: message.ciphertext) == message.plaintext)
                    delivered.append((message, false))
                default:
                    // Redeliver something already delivered: it must be refused without effect.
                    guard let (message, wentToBob) = delivered.randomElement(using: &generator) else { continue }
                    if wentToBob {
                        let before = bob.snapshot
                        #expect(throws: RatchetError.self) { try bob.decrypt(header: message.header, ciphertext: message.ciphertext) }
                        #expect(bob.snapshot == before)
                    } else {
                        let before = alice.snapshot
                        #expect(throws: RatchetError.self) { try alice.decrypt(header: message.header, ciphertext: message.ciphertext) }
                        #expect(alice.snapshot == before)
                    }
                }
            }
            for message in toBob.shuffled(using: &generator) {
                #expect(try bob.decrypt(header: message.header, ciphertext: message.ciphertext) == message.plaintext)
            }
            for message in toAlice.shuffled(using: &generator) {
                #expect(try alice.decrypt(header: message.header, ciphertext: message.ciphertext) == message.plaintext)
            }
            #expect(bob.skippedKeys.count == 0 && alice.skippedKeys.count == 0)
        }
    }

    @Test("a state survives serialisation and keeps working")
    func serialisation() throws {
        var (alice, bob) = try Self.pair()
        // Every shape of state encodes and decodes: a fresh responder (no chains), a fresh initiator.
        #expect(try RatchetState(serialized: bob.serialized).snapshot == bob.snapshot)
        #expect(try RatchetState(serialized: alice.serialized).snapshot == alice.snapshot)
        let skipped = try alice.encrypt([1])
        let next = try alice.encrypt([2])
        _ = try bob.decrypt(header: next.header, ciphertext: next.ciphertext)
        var restored = try RatchetState(serialized: bob.serialized)
        #expect(restored.snapshot == bob.snapshot)
        #expect(try restored.decrypt(header: skipped.header, ciphertext: skipped.ciphertext) == [1])
        let reply = try restored.encrypt([3])
        #expect(try alice.decrypt(header: reply.header, ciphertext: reply.ciphertext) == [3])
        // Every truncation of the encoding is a typed error.
        let bytes = bob.serialized.bytes
        for length in 0..<bytes.count {
            #expect(throws: DecodeError.self) { try RatchetState(serialized: SecretBytes(bytes.prefix(length))) }
        }
    }

    @Test("message numbers stop below 2^32 - 1 on both sides")
    func counterBounds() throws {
        var (alice, bob) = try Self.pair()
        // Alice's Ns lives at byte 196 of her encoded state (version, AD, RK, DHs, flags, DHr, CKs).
        var bytes = alice.serialized.bytes
        bytes.replaceSubrange(196..<200, with: [0xff, 0xff, 0xff, 0xfe])
        var nearEnd = try RatchetState(serialized: SecretBytes(bytes))
        let last = try nearEnd.encrypt([1])
        #expect(last.header.messageNumber == UInt32.max - 1)
        #expect(throws: RatchetError.messageNumberOutOfRange) { try nearEnd.encrypt([2]) }
        // A header claiming N = 2^32 - 1 is refused before any work, and changes nothing.
        let genuine = try alice.encrypt([3])
        let forged = RatchetHeader(ratchetKey: genuine.header.ratchetKey, previousChainLength: 0, messageNumber: .max)
        let before = bob.snapshot
        #expect(throws: RatchetError.messageNumberOutOfRange) { try bob.decrypt(header: forged, ciphertext: genuine.ciphertext) }
        #expect(bob.snapshot == before)
    }

    @Test("oversized plaintexts and malformed ciphertext lengths are refused")
    func bounds() throws {
        var (alice, _) = try Self.pair()
        #expect(throws: RatchetError.plaintextTooLarge) { try alice.encrypt([UInt8](repeating: 0, count: ProtocolLimits.maxMessagePlaintext + 1)) }
        let (header, ciphertext) = try alice.encrypt([1])
        let wire = RatchetMessage(header: header, ciphertext: ciphertext).serialized
        for length in 0..<wire.count {
            #expect(throws: DecodeError.self) { try RatchetMessage(serialized: wire.prefix(length)) }
        }
        #expect(throws: DecodeError.self) { try RatchetMessage(serialized: wire + [0]) }
    }
}
