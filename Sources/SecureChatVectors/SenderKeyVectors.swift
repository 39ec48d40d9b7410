import Crypto
import Foundation
import SecureChatKeys
import SecureChatProtocol

/// `securechat-sender-key-vectors/1`: one sender's chain and a receiver that starts from its
/// distribution message.
///
/// ```
/// { "schema", "generator",
///   "params": {"message_keys_info_hex", "signature_context_hex", "max_forward", "max_stored_keys"},
///   "cases": [ { "name", "distribution_id", "chain_id", "initial_iteration", "chain_key",
///                "signing_key_seed", "signing_key_public", "distribution_message",
///                "messages": [ {"id", "iteration", "plaintext", "message_key", "serialized"} ],
///                "events": [ {"op": "send"|"recv", "msg", "expect"?: "fail"} ] } ] }
/// ```
/// A `send` must reproduce `serialized` exactly up to the signature, whose validity is checked
/// (Ed25519 signing may be randomised elsewhere). A failing `recv` must leave the receiver unchanged.
enum SenderKeyVectors {
    static let schema = "securechat-sender-key-vectors/1"

    enum Step {
        case send(String, [UInt8])
        case recv(String)
        case tampered(String, from: String, byteFromEnd: Int)
        case recvFail(String)
    }

    static let scenarios: [(String, UInt32, [Step])] = [
        ("in-order", 0, [
            .send("m0", Array("hello room".utf8)), .recv("m0"),
            .send("m1", Array("second".utf8)), .send("m2", Array("third".utf8)), .recv("m1"), .recv("m2"),
        ]),
        ("out-of-order-and-duplicates", 0, [
            .send("m0", Array("0".utf8)), .send("m1", Array("1".utf8)), .send("m2", Array("2".utf8)),
            .send("m3", Array("3".utf8)), .send("m4", Array("4".utf8)),
            .recv("m3"), .recv("m0"), .recv("m4"), .recvFail("m3"), .recv("m1"), .recv("m2"), .recvFail("m0"),
        ]),
        ("tampered-and-forged", 0, [
            .send("m0", Array("genuine".utf8)), .send("m1", Array("also genuine".utf8)),
            .tampered("m1-tampered-signature", from: "m1", byteFromEnd: 1),
            .recvFail("m1-tampered-signature"),
            .tampered("m1-tampered-tag", from: "m1", byteFromEnd: 65),
            .recvFail("m1-tampered-tag"),
            .tampered("m1-tampered-iteration", from: "m1", byteFromEnd: -25),
            .recvFail("m1-tampered-iteration"),
            .recv("m1"), .recv("m0"),
        ]),
        ("starts-at-later-iteration", 7, [
            .send("m7", Array("joined late".utf8)), .send("m8", Array("next".utf8)), .recv("m8"), .recv("m7"),
        ]),
        ("empty-and-1000-byte-plaintexts", 0, [
            .send("m0", []), .send("m1", [UInt8](repeating: 0xa5, count: 1000)), .recv("m1"), .recv("m0"),
        ]),
    ]

    static var params: JSON {
        .object([
            .init("message_keys_info_hex", .hex(KDFLabels.senderKeyMessageKeys)),
            .init("signature_context_hex", .hex(WireFormat.senderKeyMessageSignatureContext)),
            .init("max_forward", .number(ProtocolLimits.senderKeyMaxForward)),
            .init("max_stored_keys", .number(ProtocolLimits.senderKeyMaxStoredKeys)),
        ])
    }

    static func generate() throws -> JSON {
        var cases: [JSON] = []
        for (name, initialIteration, steps) in scenarios {
            var random = DeterministicBytes("sender-keys/\(name)")
            let distributionId = random.next(16)
            let chainId = random.next(4).reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
            let chainKey = random.next()
            let signingSeed = random.next()
            let signingKey = try Curve25519.Signing.PrivateKey(rawRepresentation: signingSeed)
            var sender = SenderKeyState(
                distributionId: distributionId, createdAt: 0, chainId: chainId, chainKey: SecretBytes(chainKey),
                signingKey: signingKey, iteration: initialIteration)
            let distribution = sender.distributionMessage
            var receiver = SenderKeyRecord(distribution: distribution, owner: ProtocolAddress(name: "sender", deviceId: 1))
            var messages: [String: JSON] = [:]
            var wire: [String: [UInt8]] = [:]
            var order: [String] = []
            var events: [JSON] = []
            for step in steps {
                switch step {
                case .send(let id, let plaintext):
                    let (message, key) = try sender.encryptReturningKey(plaintext)
                    wire[id] = message.serialized
                    messages[id] = .object([
                        .init("id", .string(id)), .init("iteration", .number(Int(message.iteration))),
                        .init("plaintext", .hex(plaintext)), .init("message_key", .hex(key.key.bytes)),
                        .init("serialized", .hex(message.serialized)),
                    ])
                    order.append(id)
                    events.append(.object([.init("op", .string("send")), .init("msg", .string(id))]))
                case .recv(let id):
                    _ = try receiver.decrypt(wire[id]!)
                    events.append(.object([.init("op", .string("recv")), .init("msg", .string(id))]))
                case .tampered(let id, let original, let offset):
                    var bytes = wire[original]!
                    let index = offset > 0 ? bytes.count - offset : -offset
                    bytes[index] ^= 0x01
                    wire[id] = bytes
                    messages[id] = .object([
                        .init("id", .string(id)), .init("iteration", .null), .init("plaintext", .null),
                        .init("message_key", .null), .init("serialized", .hex(bytes)),
                    ])
                    order.append(id)
                case .recvFail(let id):
                    precondition((try? receiver.decrypt(wire[id]!)) == nil, "a message meant to fail was accepted")
                    events.append(.object([.init("op", .string("recv")), .init("msg", .string(id)), .init("expect", .string("fail"))]))
                }
            }
            cases.append(.object([
                .init("name", .string(name)),
                .init("distribution_id", .hex(distributionId)),
                .init("chain_id", .number(Int(chainId))),
                .init("initial_iteration", .number(Int(initialIteration))),
                .init("chain_key", .hex(chainKey)),
                .init("signing_key_seed", .hex(signingSeed)),
                .init("signing_key_public", .hex(signingKey.publicKey.rawRepresentation)),
                .init("distribution_message", .hex(distribution.serialized.bytes)),
                .init("messages", .array(order.map { messages[$0]! })),
                .init("events", .array(events)),
            ]))
        }
        return .object([
            .init("schema", .string(schema)),
            .init("generator", .string(VectorFile.generator)),
            .init("params", params),
            .init("cases", .array(cases)),
        ])
    }

    static func check(_ json: JSON) throws(VectorError) -> Int {
        let file = try json.object("$", allowed: ["schema", "generator", "params", "cases", "sha256"])
        _ = try file.string("generator")
        let params = try file.value("params").object("params", allowed: [
            "message_keys_info_hex", "signature_context_hex", "max_forward", "max_stored_keys",
        ])
        try expectEqual(try params.hex("message_keys_info_hex"), KDFLabels.senderKeyMessageKeys, "params.message_keys_info_hex")
        try expectEqual(try params.hex("signature_context_hex"), WireFormat.senderKeyMessageSignatureContext, "params.signature_context_hex")
        try expectEqual(try params.int("max_forward"), ProtocolLimits.senderKeyMaxForward, "params.max_forward")
        try expectEqual(try params.int("max_stored_keys"), ProtocolLimits.senderKeyMaxStoredKeys, "params.max_stored_keys")
        let cases = try file.array("cases")
        for (index, item) in cases.enumerated() {
            do {
                try checkCase(item, index: index)
            } catch let error as VectorError {
                throw error
            } catch {
                throw VectorError("cases[\(index)]: \(error)")
            }
        }
        return cases.count
    }

    private static func checkCase(_ item: JSON, index: Int) throws {
        let vector = try item.object("cases[\(index)]", allowed: [
            "name", "distribution_id", "chain_id", "initial_iteration", "chain_key", "signing_key_seed",
            "signing_key_public", "distribution_message", "messages", "events",
        ])
        let path = "cases[\(index)] (\(try vector.string("name")))"
        let signingKey = try Curve25519.Signing.PrivateKey(rawRepresentation: try vector.hex("signing_key_seed", length: 32))
        try expectEqual(Array(signingKey.publicKey.rawRepresentation), try vector.hex("signing_key_public", length: 32), "\(path).signing_key_public")
        guard let chainId = UInt32(exactly: try vector.int("chain_id")),
              let initialIteration = UInt32(exactly: try vector.int("initial_iteration"))
        else { throw VectorError("\(path): chain_id and initial_iteration are u32") }
        var sender = SenderKeyState(
            distributionId: try vector.hex("distribution_id", length: 16), createdAt: 0, chainId: chainId,
            chainKey: SecretBytes(try vector.hex("chain_key", length: 32)), signingKey: signingKey, iteration: initialIteration)
        let distributionBytes = try vector.hex("distribution_message")
        try expectEqual(sender.distributionMessage.serialized.bytes, distributionBytes, "\(path).distribution_message")
        var receiver = SenderKeyRecord(distribution: try SenderKeyDistributionMessage(serialized: distributionBytes), owner: ProtocolAddress(name: "sender", deviceId: 1))

        struct Message { let iteration: Int?; let plaintext: [UInt8]?; let messageKey: [UInt8]?; let serialized: [UInt8] }
        var messages: [String: Message] = [:]
        for (position, value) in try vector.array("messages").enumerated() {
            let messagePath = "\(path).messages[\(position)]"
            let object = try value.object(messagePath, allowed: ["id", "iteration", "plaintext", "message_key", "serialized"])
            let id = try object.string("id")
            let message = Message(
                iteration: object.optional("iteration") == nil ? nil : try object.int("iteration"),
                plaintext: try object.optionalHex("plaintext"), messageKey: try object.optionalHex("message_key", length: 32),
                serialized: try object.hex("serialized"))
            guard messages.updateValue(message, forKey: id) == nil else { throw VectorError("\(messagePath).id: repeated") }
        }
        var used = Set<String>()
        for (position, value) in try vector.array("events").enumerated() {
            let eventPath = "\(path).events[\(position)]"
            let event = try value.object(eventPath, allowed: ["op", "msg", "expect"])
            let id = try event.string("msg")
            guard let message = messages[id] else { throw VectorError("\(eventPath).msg: no message \"\(id)\"") }
            used.insert(id)
            let expectation = try event.optionalString("expect") ?? "ok"
            switch (try event.string("op"), expectation) {
            case ("send", "ok"):
                guard let plaintext = message.plaintext else { throw VectorError("\(eventPath): a sent message needs a plaintext") }
                let (sent, key) = try sender.encryptReturningKey(plaintext)
                let bytes = sent.serialized
                try expectEqual(Array(bytes.dropLast(64)), Array(message.serialized.dropLast(64)), "\(eventPath) (send \(id)) serialized")
                let listed = try SenderKeyMessage(serialized: message.serialized)
                guard sender.signingPublicKey.isValidSignature(listed.signature, for: WireFormat.senderKeyMessageSignatureContext + bytes.dropLast(64)) else {
                    throw VectorError("\(eventPath) (send \(id)): the listed signature does not verify")
                }
                if let iteration = message.iteration { try expectEqual(Int(sent.iteration), iteration, "\(eventPath) (send \(id)) iteration") }
                if let expectedKey = message.messageKey { try expectEqual(key.key.bytes, expectedKey, "\(eventPath) (send \(id)) message_key") }
            case ("recv", "ok"):
                guard let plaintext = message.plaintext else { throw VectorError("\(eventPath): a message expected to decrypt needs a plaintext") }
                let decrypted: [UInt8]
                do {
                    decrypted = try receiver.decrypt(message.serialized)
                } catch {
                    throw VectorError("\(eventPath) (recv \(id)): expected to decrypt, failed with \(error)")
                }
                try expectEqual(decrypted, plaintext, "\(eventPath) (recv \(id)) plaintext")
            case ("recv", "fail"):
                let before = receiver.serialized
                if (try? receiver.decrypt(message.serialized)) != nil {
                    throw VectorError("\(eventPath) (recv \(id)): expected a failure, but the message was accepted")
                }
                guard receiver.serialized == before else { throw VectorError("\(eventPath) (recv \(id)): a refused message changed the receiver") }
            default:
                throw VectorError("\(eventPath): op must be send or recv, expect ok or fail (sends cannot fail)")
            }
        }
        if let unused = Set(messages.keys).subtracting(used).sorted().first {
            throw VectorError("\(path): message \"\(unused)\" is used by no event")
        }
    }
}
