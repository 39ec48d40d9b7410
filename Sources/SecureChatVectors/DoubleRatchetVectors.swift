import Crypto
import Foundation
import SecureChatKeys
import SecureChatProtocol

/// `securechat-dr-vectors/1`: Double Ratchet transcripts, in the schema other implementations
/// produce too (docs/PROTOCOL.md, "Test vectors").
///
/// Checking plays both roles: a `send` event encrypts with the injected keys and must reproduce the
/// header and ciphertext exactly; a `recv` event decrypts and must produce the plaintext, or — with
/// `"expect": "fail"` — must refuse the message and leave the state exactly as it was.
enum DoubleRatchetVectors {
    static let schema = "securechat-dr-vectors/1"

    enum Party: String { case alice, bob }

    enum Tamper {
        case ratchetKey, previousChainLength, messageNumber(UInt32), ciphertext, tag
    }

    enum Step {
        case send(Party, String, [UInt8])
        case recv(Party, String)
        case tampered(String, from: String, Tamper)
        case recvFail(Party, String)
    }

    struct Message {
        let id: String
        let sender: Party
        let plaintext: [UInt8]?
        let headerBytes: [UInt8]
        let ciphertext: [UInt8]
        let messageKey: [UInt8]?
    }

    static func text(_ string: String) -> [UInt8] { Array(string.utf8) }

    static let scenarios: [(String, [Step])] = [
        ("multi-turn", [
            .send(.alice, "a0", text("Hello Bob")), .send(.alice, "a1", text("Are you there?")),
            .recv(.bob, "a0"), .recv(.bob, "a1"),
            .send(.bob, "b0", text("Hi Alice")), .send(.bob, "b1", text("Yes.")),
            .recv(.alice, "b0"), .recv(.alice, "b1"),
            .send(.alice, "a2", text("Good")), .recv(.bob, "a2"),
            .send(.bob, "b2", text("One")), .send(.bob, "b3", text("Two")), .recv(.alice, "b2"), .recv(.alice, "b3"),
            .send(.alice, "a3", text("x")), .send(.alice, "a4", text("y")), .send(.alice, "a5", text("z")),
            .recv(.bob, "a3"), .recv(.bob, "a4"), .recv(.bob, "a5"),
            .send(.bob, "b4", text("last word")),
        ]),
        ("first-received-n-greater-than-zero", [
            .send(.alice, "a0", text("zero")), .send(.alice, "a1", text("one")), .send(.alice, "a2", text("two")),
            .recv(.bob, "a2"), .recv(.bob, "a0"), .recv(.bob, "a1"),
            .send(.bob, "b0", text("got all three")), .recv(.alice, "b0"),
            .send(.alice, "a3", text("good")),
        ]),
        ("out-of-order-across-dh-steps", [
            .send(.alice, "a0", text("a0")), .send(.alice, "a1", text("a1")), .send(.alice, "a2", text("a2")),
            .recv(.bob, "a0"),
            .send(.bob, "b0", text("b0")), .recv(.alice, "b0"),
            .send(.alice, "a3", text("a3")), .send(.alice, "a4", text("a4")),
            .recv(.bob, "a3"), .recv(.bob, "a2"),
            .send(.bob, "b1", text("b1")), .send(.bob, "b2", text("b2")), .recv(.alice, "b2"),
            .send(.alice, "a5", text("a5")), .recv(.bob, "a5"),
            .recv(.bob, "a1"), .recv(.bob, "a4"), .recv(.alice, "b1"),
            .send(.bob, "b3", text("b3")),
        ]),
        ("tampered-messages-rolled-back", [
            .send(.alice, "a0", text("first")), .send(.alice, "a1", text("second")), .recv(.bob, "a0"),
            .tampered("a1-tampered-ciphertext", from: "a1", .ciphertext), .recvFail(.bob, "a1-tampered-ciphertext"),
            .tampered("a1-tampered-tag", from: "a1", .tag), .recvFail(.bob, "a1-tampered-tag"),
            .tampered("a1-tampered-n", from: "a1", .messageNumber(5)), .recvFail(.bob, "a1-tampered-n"),
            .recv(.bob, "a1"),
            .send(.bob, "b0", text("reply")), .recv(.alice, "b0"),
            .send(.alice, "a2", text("new chain")),
            .tampered("a2-tampered-ratchet-key", from: "a2", .ratchetKey), .recvFail(.bob, "a2-tampered-ratchet-key"),
            .tampered("a2-tampered-pn", from: "a2", .previousChainLength), .recvFail(.bob, "a2-tampered-pn"),
            .recv(.bob, "a2"),
            .send(.bob, "b1", text("still in sync")), .recv(.alice, "b1"),
            .send(.alice, "a3", text("a3")),
        ]),
        ("duplicates-rejected", [
            .send(.alice, "a0", text("once")), .send(.alice, "a1", text("twice?")),
            .recv(.bob, "a1"), .recv(.bob, "a0"), .recvFail(.bob, "a1"), .recvFail(.bob, "a0"),
            .send(.bob, "b0", text("b0")), .recv(.alice, "b0"), .recvFail(.alice, "b0"),
            .send(.alice, "a2", text("a2")), .recv(.bob, "a2"), .recvFail(.bob, "a0"), .recvFail(.bob, "a2"),
            .send(.bob, "b1", text("b1")),
        ]),
        ("empty-and-1000-byte-plaintexts", [
            .send(.alice, "a0", []), .send(.alice, "a1", (0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 7) }),
            .recv(.bob, "a0"), .recv(.bob, "a1"),
            .send(.bob, "b0", [UInt8](repeating: 0x5a, count: 1000)), .send(.bob, "b1", []),
            .recv(.alice, "b1"), .recv(.alice, "b0"),
            .send(.alice, "a2", text("a2")),
        ]),
    ]

    static var params: JSON {
        .object([
            .init("kdf_rk_info_hex", .hex(KDFLabels.rootKey)),
            .init("aead_info_hex", .hex(KDFLabels.ratchetMessageKeys)),
            .init("header_encoding", .string("dh32|pn_u32be|n_u32be")),
            .init("max_skip", .number(ProtocolLimits.maxSkip)),
            .init("max_stored_skipped_keys", .number(ProtocolLimits.maxStoredSkippedKeys)),
        ])
    }

    static func generate() throws -> JSON {
        var cases: [JSON] = []
        for (name, steps) in scenarios {
            cases.append(try generateCase(name: name, steps: steps))
        }
        return .object([
            .init("schema", .string(schema)),
            .init("generator", .string(VectorFile.generator)),
            .init("params", params),
            .init("cases", .array(cases)),
        ])
    }

    private static func generateCase(name: String, steps: [Step]) throws -> JSON {
        var random = DeterministicBytes("dr/\(name)")
        let sharedSecret = random.next()
        let associatedData = random.next(64)
        let bobInitial = try Curve25519.KeyAgreement.PrivateKey(rawRepresentation: random.next())
        let aliceKeys = ScriptedKeySource(generating: "dr/\(name)/alice")
        let bobKeys = ScriptedKeySource(generating: "dr/\(name)/bob")
        var alice = try RatchetState.initiator(
            sharedSecret: SecretBytes(sharedSecret), associatedData: associatedData,
            responderRatchetKey: try X25519PublicKey(rawRepresentation: bobInitial.publicKey.rawRepresentation),
            keySource: aliceKeys)
        var bob = RatchetState.responder(sharedSecret: SecretBytes(sharedSecret), associatedData: associatedData, ratchetKey: bobInitial)
        var messages: [String: Message] = [:]
        var order: [String] = []
        var events: [JSON] = []

        for step in steps {
            switch step {
            case .send(let party, let id, let plaintext):
                let (header, ciphertext, key) = party == .alice
                    ? try alice.encryptReturningKey(plaintext) : try bob.encryptReturningKey(plaintext)
                messages[id] = Message(id: id, sender: party, plaintext: plaintext, headerBytes: header.encoded,
                                       ciphertext: ciphertext, messageKey: key.key.bytes)
                order.append(id)
                events.append(.object([.init("op", .string("send")), .init("party", .string(party.rawValue)), .init("msg", .string(id))]))
            case .recv(let party, let id):
                let message = messages[id]!
                let header = try RatchetHeader(encoded: message.headerBytes)
                let plaintext = party == .alice
                    ? try alice.decrypt(header: header, ciphertext: message.ciphertext, keySource: aliceKeys)
                    : try bob.decrypt(header: header, ciphertext: message.ciphertext, keySource: bobKeys)
                precondition(plaintext == message.plaintext, "generated transcript must decrypt")
                events.append(.object([.init("op", .string("recv")), .init("party", .string(party.rawValue)), .init("msg", .string(id))]))
            case .tampered(let id, let original, let tamper):
                let source = messages[original]!
                var header = source.headerBytes
                var ciphertext = source.ciphertext
                switch tamper {
                case .ratchetKey: header[0] ^= 0x01
                case .previousChainLength: header[35] ^= 0x01
                case .messageNumber(let number):
                    header.replaceSubrange(36..<40, with: withUnsafeBytes(of: number.bigEndian, Array.init))
                case .ciphertext: ciphertext[0] ^= 0x01
                case .tag: ciphertext[ciphertext.count - 1] ^= 0x80
                }
                messages[id] = Message(id: id, sender: source.sender, plaintext: nil, headerBytes: header,
                                       ciphertext: ciphertext, messageKey: nil)
                order.append(id)
            case .recvFail(let party, let id):
                let message = messages[id]!
                let keys = party == .alice ? aliceKeys : bobKeys
                let position = keys.position
                let failed: Bool
                if let header = try? RatchetHeader(encoded: message.headerBytes) {
                    failed = party == .alice
                        ? (try? alice.decrypt(header: header, ciphertext: message.ciphertext, keySource: keys)) == nil
                        : (try? bob.decrypt(header: header, ciphertext: message.ciphertext, keySource: keys)) == nil
                } else {
                    failed = true
                }
                precondition(failed, "a message meant to fail was accepted")
                keys.rewind(to: position)
                events.append(.object([
                    .init("op", .string("recv")), .init("party", .string(party.rawValue)), .init("msg", .string(id)),
                    .init("expect", .string("fail")),
                ]))
            }
        }
        // Every generated key must show in some header, or a transcript could list any key there.
        let headerKeys = Set(messages.values.filter { $0.plaintext != nil }.map { Array($0.headerBytes.prefix(32)) })
        for key in aliceKeys.handedOut + bobKeys.handedOut {
            let publicKey = Array(try Curve25519.KeyAgreement.PrivateKey(rawRepresentation: key).publicKey.rawRepresentation)
            precondition(headerKeys.contains(publicKey), "scenario \(name) must end with a send by the party that ratcheted last")
        }
        let bobGenerated = bobKeys.handedOut
        return .object([
            .init("name", .string(name)),
            .init("shared_secret", .hex(sharedSecret)),
            .init("associated_data", .hex(associatedData)),
            .init("bob_initial_ratchet_priv", .hex(bobInitial.rawRepresentation)),
            .init("bob_initial_ratchet_pub", .hex(bobInitial.publicKey.rawRepresentation)),
            .init("alice_generated_ratchet_privs", .array(aliceKeys.handedOut.map { .hex($0) })),
            .init("bob_generated_ratchet_privs", .array(bobGenerated.map { .hex($0) })),
            .init("messages", .array(order.map { messageJSON(messages[$0]!) })),
            .init("events", .array(events)),
        ])
    }

    private static func messageJSON(_ message: Message) -> JSON {
        var header: JSON = .null
        if message.plaintext != nil, let decoded = try? RatchetHeader(encoded: message.headerBytes) {
            header = .object([
                .init("dh", .hex(decoded.ratchetKey.rawRepresentation)),
                .init("pn", .number(Int(decoded.previousChainLength))),
                .init("n", .number(Int(decoded.messageNumber))),
            ])
        }
        return .object([
            .init("id", .string(message.id)),
            .init("sender", .string(message.sender.rawValue)),
            .init("plaintext", message.plaintext.map { .hex($0) } ?? .null),
            .init("header", header),
            .init("header_bytes", .hex(message.headerBytes)),
            .init("ciphertext", .hex(message.ciphertext)),
            .init("message_key", message.messageKey.map { .hex($0) } ?? .null),
        ])
    }

    // MARK: Checking

    static func check(_ json: JSON) throws(VectorError) -> Int {
        let file = try json.object("$", allowed: ["schema", "generator", "params", "cases", "sha256"])
        _ = try file.string("generator")
        let params = try file.value("params").object("params", allowed: [
            "kdf_rk_info_hex", "aead_info_hex", "header_encoding", "max_skip", "max_stored_skipped_keys",
        ])
        try expectEqual(try params.hex("kdf_rk_info_hex"), KDFLabels.rootKey, "params.kdf_rk_info_hex")
        try expectEqual(try params.hex("aead_info_hex"), KDFLabels.ratchetMessageKeys, "params.aead_info_hex")
        try expectEqual(try params.string("header_encoding"), "dh32|pn_u32be|n_u32be", "params.header_encoding")
        try expectEqual(try params.int("max_skip"), ProtocolLimits.maxSkip, "params.max_skip")
        try expectEqual(try params.int("max_stored_skipped_keys"), ProtocolLimits.maxStoredSkippedKeys, "params.max_stored_skipped_keys")
        let cases = try file.array("cases")
        for (index, item) in cases.enumerated() {
            try checkCase(item, index: index)
        }
        return cases.count
    }

    private static func keyList(_ object: JSONObject, _ key: String) throws(VectorError) -> [[UInt8]] {
        var keys: [[UInt8]] = []
        for (position, value) in try object.array(key).enumerated() {
            guard case .string(let hex) = value else { throw VectorError("\(object.path).\(key)[\(position)]: expected hex") }
            let bytes = try Hex.decode(hex, path: "\(object.path).\(key)[\(position)]")
            guard bytes.count == 32 else { throw VectorError("\(object.path).\(key)[\(position)]: expected 32 bytes") }
            keys.append(bytes)
        }
        return keys
    }

    private static func checkCase(_ item: JSON, index: Int) throws(VectorError) {
        let vector = try item.object("cases[\(index)]", allowed: [
            "name", "shared_secret", "associated_data", "bob_initial_ratchet_priv", "bob_initial_ratchet_pub",
            "alice_generated_ratchet_privs", "bob_generated_ratchet_privs", "messages", "events",
        ])
        let path = "cases[\(index)] (\(try vector.string("name")))"
        let sharedSecret = SecretBytes(try vector.hex("shared_secret", length: 32))
        let associatedData = try vector.hex("associated_data")
        let aliceKeys = ScriptedKeySource(scripted: try keyList(vector, "alice_generated_ratchet_privs"))
        let bobKeys = ScriptedKeySource(scripted: try keyList(vector, "bob_generated_ratchet_privs"))
        var alice: RatchetState
        var bob: RatchetState
        do {
            let bobInitial = try Curve25519.KeyAgreement.PrivateKey(rawRepresentation: try vector.hex("bob_initial_ratchet_priv", length: 32))
            try expectEqual(Array(bobInitial.publicKey.rawRepresentation), try vector.hex("bob_initial_ratchet_pub", length: 32), "\(path).bob_initial_ratchet_pub")
            alice = try RatchetState.initiator(
                sharedSecret: sharedSecret, associatedData: associatedData,
                responderRatchetKey: try X25519PublicKey(rawRepresentation: bobInitial.publicKey.rawRepresentation),
                keySource: aliceKeys)
            bob = RatchetState.responder(sharedSecret: sharedSecret, associatedData: associatedData, ratchetKey: bobInitial)
        } catch let error as VectorError {
            throw error
        } catch {
            throw VectorError("\(path): cannot initialise: \(error)")
        }

        var messages: [String: Message] = [:]
        for (position, value) in try vector.array("messages").enumerated() {
            let messagePath = "\(path).messages[\(position)]"
            let object = try value.object(messagePath, allowed: ["id", "sender", "plaintext", "header", "header_bytes", "ciphertext", "message_key"])
            guard let sender = Party(rawValue: try object.string("sender")) else { throw VectorError("\(messagePath).sender: alice or bob") }
            let message = Message(
                id: try object.string("id"), sender: sender, plaintext: try object.optionalHex("plaintext"),
                headerBytes: try object.hex("header_bytes"), ciphertext: try object.hex("ciphertext"),
                messageKey: try object.optionalHex("message_key", length: 32))
            guard messages.updateValue(message, forKey: message.id) == nil else { throw VectorError("\(messagePath).id: repeated") }
            if let header = object.optional("header") {
                let fields = try header.object("\(messagePath).header", allowed: ["dh", "pn", "n"])
                var expected = ByteWriter()
                expected.write(contentsOf: try fields.hex("dh", length: 32))
                expected.write(bigEndian: UInt32(truncatingIfNeeded: try fields.int("pn")))
                expected.write(bigEndian: UInt32(truncatingIfNeeded: try fields.int("n")))
                try expectEqual(message.headerBytes, expected.bytes, "\(messagePath).header_bytes (vs header)")
            }
        }

        var used = Set<String>()
        for (position, value) in try vector.array("events").enumerated() {
            let eventPath = "\(path).events[\(position)]"
            let event = try value.object(eventPath, allowed: ["op", "party", "msg", "expect"])
            guard let party = Party(rawValue: try event.string("party")) else { throw VectorError("\(eventPath).party: alice or bob") }
            let id = try event.string("msg")
            guard let message = messages[id] else { throw VectorError("\(eventPath).msg: no message \"\(id)\"") }
            used.insert(id)
            let expectation = try event.optionalString("expect") ?? "ok"
            guard expectation == "ok" || expectation == "fail" else { throw VectorError("\(eventPath).expect: ok or fail") }
            let keys = party == .alice ? aliceKeys : bobKeys
            switch try event.string("op") {
            case "send":
                guard expectation == "ok", message.sender == party, let plaintext = message.plaintext else {
                    throw VectorError("\(eventPath): a send must be by the message's sender, with a plaintext")
                }
                let result: (header: RatchetHeader, ciphertext: [UInt8], messageKey: MessageKey)
                do {
                    result = party == .alice ? try alice.encryptReturningKey(plaintext) : try bob.encryptReturningKey(plaintext)
                } catch {
                    throw VectorError("\(eventPath) (send \(id)): encryption failed: \(error)")
                }
                try expectEqual(result.header.encoded, message.headerBytes, "\(eventPath) (send \(id)) header_bytes")
                try expectEqual(result.ciphertext, message.ciphertext, "\(eventPath) (send \(id)) ciphertext")
                if let key = message.messageKey { try expectEqual(result.messageKey.key.bytes, key, "\(eventPath) (send \(id)) message_key") }
            case "recv":
                let before = party == .alice ? alice.serialized : bob.serialized
                let keyPosition = keys.position
                var outcome: Result<(plaintext: [UInt8], messageKey: MessageKey), any Error>
                do {
                    let header = try RatchetHeader(encoded: message.headerBytes)
                    outcome = .success(party == .alice
                        ? try alice.decryptReturningKey(header: header, ciphertext: message.ciphertext, keySource: keys)
                        : try bob.decryptReturningKey(header: header, ciphertext: message.ciphertext, keySource: keys))
                } catch {
                    outcome = .failure(error)
                }
                // A refused message may have asked for a key the transcript (committed state only) does not
                // list; that attempt is rolled back below. A decrypted one may not.
                let keyFailure = keys.takeFailure()
                if let keyFailure, expectation == "ok" { throw VectorError("\(eventPath) (recv \(id)): \(keyFailure)") }
                switch (outcome, expectation) {
                case (.success(let result), "ok"):
                    guard let plaintext = message.plaintext else { throw VectorError("\(eventPath): a message expected to decrypt needs a plaintext") }
                    try expectEqual(result.plaintext, plaintext, "\(eventPath) (recv \(id)) plaintext")
                    if let key = message.messageKey { try expectEqual(result.messageKey.key.bytes, key, "\(eventPath) (recv \(id)) message_key") }
                case (.failure(let error), "ok"):
                    throw VectorError("\(eventPath) (recv \(id)): expected to decrypt, failed with \(error)")
                case (.success, _):
                    throw VectorError("\(eventPath) (recv \(id)): expected a failure, but the message was accepted")
                default:
                    keys.rewind(to: keyPosition)
                    let after = party == .alice ? alice.serialized : bob.serialized
                    guard after == before else { throw VectorError("\(eventPath) (recv \(id)): a refused message changed the state") }
                }
            default:
                throw VectorError("\(eventPath).op: send or recv")
            }
            if let failure = keys.takeFailure() { throw VectorError("\(eventPath): \(failure)") }
        }
        if let unused = Set(messages.keys).subtracting(used).sorted().first {
            throw VectorError("\(path): message \"\(unused)\" is used by no event")
        }
        if aliceKeys.unusedCount != 0 || bobKeys.unusedCount != 0 {
            throw VectorError("\(path): the transcript lists ratchet keys the conversation never generated "
                + "(alice \(aliceKeys.unusedCount), bob \(bobKeys.unusedCount) unused)")
        }
    }
}
