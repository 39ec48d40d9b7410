import Crypto
import Foundation
import SecureChatKeys
import SecureChatProtocol

/// `securechat-x3dh-vectors/1`: every private key in; bundle, DH outputs, SK, AD and the first
/// prekey message out.
///
/// ```
/// { "schema", "generator", "info_hex",
///   "cases": [ { "name",
///     "alice_identity_seed", "alice_ephemeral_private", "alice_ratchet_private",
///     "bob_identity_seed", "bob_signed_prekey_id", "bob_signed_prekey_created_at", "bob_signed_prekey_private",
///     "bob_one_time_prekey_id", "bob_one_time_prekey_private"      (both null without a one-time prekey)
///     "alice_identity_public", "alice_identity_x25519_public", "bob_identity_public", "bob_identity_x25519_public",
///     "bob_signed_prekey_public", "bob_signed_prekey_signature", "bob_one_time_prekey_public", "bundle",
///     "dh", "shared_secret", "associated_data", "first_plaintext", "prekey_message" } ] }
/// ```
/// Ed25519 signatures are checked for validity, not compared: some implementations randomise them.
enum X3DHVectors {
    static let schema = "securechat-x3dh-vectors/1"

    static let caseKeys: Set<String> = [
        "name", "alice_identity_seed", "alice_ephemeral_private", "alice_ratchet_private", "bob_identity_seed",
        "bob_signed_prekey_id", "bob_signed_prekey_created_at", "bob_signed_prekey_private", "bob_one_time_prekey_id",
        "bob_one_time_prekey_private", "alice_identity_public", "alice_identity_x25519_public", "bob_identity_public",
        "bob_identity_x25519_public", "bob_signed_prekey_public", "bob_signed_prekey_signature",
        "bob_one_time_prekey_public", "bundle", "dh", "shared_secret", "associated_data", "first_plaintext",
        "prekey_message",
    ]

    struct Inputs {
        var aliceSeed, aliceEphemeral, aliceRatchet, bobSeed, bobSignedPreKey: [UInt8]
        var bobSignedPreKeyId: UInt32
        var createdAt: UInt64
        var bobOneTimePreKey: [UInt8]?
        var bobOneTimePreKeyId: UInt32?
        var firstPlaintext: [UInt8]
    }

    struct Outputs {
        var alice, bob: IdentityKeyPair
        var signedPreKey: SignedPreKeyPair
        var oneTimePreKey: OneTimePreKeyPair?
        var bundle: PreKeyBundle
        var dh: [[UInt8]]
        var agreement: X3DHAgreement
        var preKeyMessage: [UInt8]
    }

    static func run(_ inputs: Inputs, signature: [UInt8]? = nil) throws -> Outputs {
        let alice = try IdentityKeyPair(seed: SecretBytes(inputs.aliceSeed))
        let bob = try IdentityKeyPair(seed: SecretBytes(inputs.bobSeed))
        var signedPreKey = bob.makeSignedPreKey(
            id: inputs.bobSignedPreKeyId, createdAt: inputs.createdAt,
            privateKey: try .init(rawRepresentation: inputs.bobSignedPreKey))
        if let signature {
            // Another implementation's (possibly randomised) signature: use it if it verifies.
            let publicPart = SignedPreKeyPublic(
                id: signedPreKey.id, publicKey: signedPreKey.publicPart.publicKey, createdAt: inputs.createdAt,
                signature: signature)
            guard publicPart.isSigned(by: bob.publicKey) else { throw VectorError("bob_signed_prekey_signature: does not verify") }
            signedPreKey = try SignedPreKeyPair(publicPart: publicPart, privateKey: signedPreKey.privateKeyBytes)
        }
        var oneTimePreKey: OneTimePreKeyPair?
        if let key = inputs.bobOneTimePreKey, let id = inputs.bobOneTimePreKeyId {
            oneTimePreKey = try OneTimePreKeyPair(id: id, privateKey: SecretBytes(key))
        }
        let bundle = try PreKeyBundle(
            identityKey: bob.publicKey, signedPreKey: signedPreKey.publicPart, oneTimePreKey: oneTimePreKey?.publicPart)
        let ephemeral = try Curve25519.KeyAgreement.PrivateKey(rawRepresentation: inputs.aliceEphemeral)
        var dh = [
            try X3DH.diffieHellman(alice.agreementKey, bundle.signedPreKey.publicKey).bytes,
            try X3DH.diffieHellman(ephemeral, bob.publicKey.agreementKey).bytes,
            try X3DH.diffieHellman(ephemeral, bundle.signedPreKey.publicKey).bytes,
        ]
        if let oneTimePreKey { dh.append(try X3DH.diffieHellman(ephemeral, oneTimePreKey.publicPart.publicKey).bytes) }
        let (agreement, _) = try X3DH.initiate(identity: alice, bundle: bundle, ephemeralKey: ephemeral)
        var session = try Session.initiate(
            identity: alice, bundle: bundle, ephemeralKey: ephemeral,
            keySource: ScriptedKeySource(scripted: [inputs.aliceRatchet]))
        let preKeyMessage = try session.encrypt(inputs.firstPlaintext).serialized
        // Bob's side must reach the same secret and read the message, consuming the one-time prekey.
        var store = InMemoryPreKeyStore(signedPreKeys: [signedPreKey], oneTimePreKeys: oneTimePreKey.map { [$0] } ?? [])
        guard case .preKey(let decoded) = try SessionMessage(serialized: preKeyMessage) else {
            throw VectorError("prekey_message: not a prekey message")
        }
        let (_, plaintext) = try Session.accept(decoded, identity: bob, store: &store)
        guard plaintext == inputs.firstPlaintext else { throw VectorError("prekey_message: Bob read another plaintext") }
        if let id = inputs.bobOneTimePreKeyId, store.oneTimePreKey(id: id) != nil {
            throw VectorError("bob_one_time_prekey_id: not consumed by the first message")
        }
        return Outputs(
            alice: alice, bob: bob, signedPreKey: signedPreKey, oneTimePreKey: oneTimePreKey, bundle: bundle, dh: dh,
            agreement: agreement, preKeyMessage: preKeyMessage)
    }

    static func generate() throws -> JSON {
        var cases: [JSON] = []
        for (name, withOneTime) in [("with-one-time-prekey", true), ("without-one-time-prekey", false), ("second-with-one-time-prekey", true)] {
            var random = DeterministicBytes("x3dh/\(name)")
            let inputs = Inputs(
                aliceSeed: random.next(), aliceEphemeral: random.next(), aliceRatchet: random.next(), bobSeed: random.next(),
                bobSignedPreKey: random.next(), bobSignedPreKeyId: UInt32(cases.count + 1), createdAt: 1_800_000_000,
                bobOneTimePreKey: withOneTime ? random.next() : nil, bobOneTimePreKeyId: withOneTime ? 1000 + UInt32(cases.count) : nil,
                firstPlaintext: Array("X3DH vector \(name)".utf8))
            let outputs = try run(inputs)
            let oneTimeId: JSON = inputs.bobOneTimePreKeyId.map { .number(Int($0)) } ?? .null
            cases.append(.object([
                .init("name", .string(name)),
                .init("alice_identity_seed", .hex(inputs.aliceSeed)),
                .init("alice_ephemeral_private", .hex(inputs.aliceEphemeral)),
                .init("alice_ratchet_private", .hex(inputs.aliceRatchet)),
                .init("bob_identity_seed", .hex(inputs.bobSeed)),
                .init("bob_signed_prekey_id", .number(Int(inputs.bobSignedPreKeyId))),
                .init("bob_signed_prekey_created_at", .number(Int(inputs.createdAt))),
                .init("bob_signed_prekey_private", .hex(inputs.bobSignedPreKey)),
                .init("bob_one_time_prekey_id", oneTimeId),
                .init("bob_one_time_prekey_private", inputs.bobOneTimePreKey.map { .hex($0) } ?? .null),
                .init("alice_identity_public", .hex(outputs.alice.publicKey.rawRepresentation)),
                .init("alice_identity_x25519_public", .hex(outputs.alice.publicKey.agreementKey.rawRepresentation)),
                .init("bob_identity_public", .hex(outputs.bob.publicKey.rawRepresentation)),
                .init("bob_identity_x25519_public", .hex(outputs.bob.publicKey.agreementKey.rawRepresentation)),
                .init("bob_signed_prekey_public", .hex(outputs.signedPreKey.publicPart.publicKey.rawRepresentation)),
                .init("bob_signed_prekey_signature", .hex(outputs.signedPreKey.publicPart.signature)),
                .init("bob_one_time_prekey_public", outputs.oneTimePreKey.map { .hex($0.publicPart.publicKey.rawRepresentation) } ?? .null),
                .init("bundle", .hex(outputs.bundle.serialized)),
                .init("dh", .array(outputs.dh.map { .hex($0) })),
                .init("shared_secret", .hex(outputs.agreement.sharedSecret.bytes)),
                .init("associated_data", .hex(outputs.agreement.associatedData)),
                .init("first_plaintext", .hex(inputs.firstPlaintext)),
                .init("prekey_message", .hex(outputs.preKeyMessage)),
            ]))
        }
        return .object([
            .init("schema", .string(schema)),
            .init("generator", .string(VectorFile.generator)),
            .init("info_hex", .hex(KDFLabels.x3dh)),
            .init("cases", .array(cases)),
        ])
    }

    static func check(_ json: JSON) throws(VectorError) -> Int {
        let file = try json.object("$", allowed: ["schema", "generator", "info_hex", "cases", "sha256"])
        _ = try file.string("generator")
        try expectEqual(try file.hex("info_hex"), KDFLabels.x3dh, "info_hex")
        let cases = try file.array("cases")
        for (index, item) in cases.enumerated() {
            let vector = try item.object("cases[\(index)]", allowed: caseKeys)
            let path = "cases[\(index)] (\(try vector.string("name")))"
            let oneTimeId: UInt32?
            if vector.optional("bob_one_time_prekey_id") != nil {
                oneTimeId = UInt32(exactly: try vector.int("bob_one_time_prekey_id"))
            } else {
                oneTimeId = nil
            }
            let inputs = Inputs(
                aliceSeed: try vector.hex("alice_identity_seed", length: 32),
                aliceEphemeral: try vector.hex("alice_ephemeral_private", length: 32),
                aliceRatchet: try vector.hex("alice_ratchet_private", length: 32),
                bobSeed: try vector.hex("bob_identity_seed", length: 32),
                bobSignedPreKey: try vector.hex("bob_signed_prekey_private", length: 32),
                bobSignedPreKeyId: UInt32(exactly: try vector.int("bob_signed_prekey_id")) ?? 0,
                createdAt: UInt64(exactly: try vector.int("bob_signed_prekey_created_at")) ?? 0,
                bobOneTimePreKey: try vector.optionalHex("bob_one_time_prekey_private", length: 32),
                bobOneTimePreKeyId: oneTimeId,
                firstPlaintext: try vector.hex("first_plaintext"))
            guard (inputs.bobOneTimePreKey == nil) == (oneTimeId == nil),
                  (vector.optional("bob_one_time_prekey_public") == nil) == (oneTimeId == nil)
            else { throw VectorError("\(path): one-time prekey fields must be all present or all null") }
            let outputs: Outputs
            do {
                outputs = try run(inputs, signature: try vector.hex("bob_signed_prekey_signature", length: 64))
            } catch let error as VectorError {
                throw VectorError("\(path): \(error)")
            } catch {
                throw VectorError("\(path): X3DH failed: \(error)")
            }
            try expectEqual(outputs.alice.publicKey.rawRepresentation, try vector.hex("alice_identity_public"), "\(path).alice_identity_public")
            try expectEqual(outputs.alice.publicKey.agreementKey.rawRepresentation, try vector.hex("alice_identity_x25519_public"), "\(path).alice_identity_x25519_public")
            try expectEqual(outputs.bob.publicKey.rawRepresentation, try vector.hex("bob_identity_public"), "\(path).bob_identity_public")
            try expectEqual(outputs.bob.publicKey.agreementKey.rawRepresentation, try vector.hex("bob_identity_x25519_public"), "\(path).bob_identity_x25519_public")
            try expectEqual(outputs.signedPreKey.publicPart.publicKey.rawRepresentation, try vector.hex("bob_signed_prekey_public"), "\(path).bob_signed_prekey_public")
            if let oneTime = outputs.oneTimePreKey {
                try expectEqual(oneTime.publicPart.publicKey.rawRepresentation, try vector.hex("bob_one_time_prekey_public"), "\(path).bob_one_time_prekey_public")
            }
            try expectEqual(outputs.bundle.serialized, try vector.hex("bundle"), "\(path).bundle")
            let dh = try vector.array("dh")
            try expectEqual(dh.count, outputs.dh.count, "\(path).dh count")
            for (position, value) in dh.enumerated() {
                guard case .string(let hex) = value else { throw VectorError("\(path).dh[\(position)]: expected hex") }
                try expectEqual(outputs.dh[position], try Hex.decode(hex, path: "\(path).dh[\(position)]"), "\(path).dh[\(position)]")
            }
            try expectEqual(outputs.agreement.sharedSecret.bytes, try vector.hex("shared_secret", length: 32), "\(path).shared_secret")
            try expectEqual(outputs.agreement.associatedData, try vector.hex("associated_data", length: 64), "\(path).associated_data")
            try expectEqual(outputs.preKeyMessage, try vector.hex("prekey_message"), "\(path).prekey_message")
        }
        return cases.count
    }
}
