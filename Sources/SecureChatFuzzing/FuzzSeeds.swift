import Foundation
import SecureChatAPI
import SecureChatKeys
import SecureChatProtocol

extension FuzzTarget {
    /// Valid inputs made with the real types (fresh keys each time): where a fuzzing campaign
    /// starts, so that it mutates messages the decoders accept rather than noise they refuse at
    /// the first byte.
    public func seeds() throws -> [[UInt8]] {
        switch self {
        case .clientFrame: try Self.encoded(Self.clientFrames)
        case .serverFrame: try Self.encoded(Self.serverFrames)
        case .restBody: try Self.requestBodySeeds()
        case .sessionMessage: try Self.sessionMessageSeeds()
        case .senderKeyMessage: try Self.senderKeySeeds().messages
        case .preKeyBundle: try Self.bundleSeeds()
        case .storedState: try Self.storedStateSeeds()
        case .attachment: try Self.attachmentSeeds()
        }
    }

    private static func encoded<Value: Encodable>(_ values: [Value]) throws -> [[UInt8]] {
        let encoder = APIJSON.makeEncoder()
        return try values.map { Array(try encoder.encode($0)) }
    }

    private static let someone = DeviceAddress(userId: "0f8fad5b-d9cb-469f-a165-70867728950e", deviceId: 1)
    private static let ciphertext = Data((0..<48).map { UInt8($0) })
    private static let sentAt = Date(timeIntervalSince1970: 1_800_000_000)

    private static var clientFrames: [ClientFrame] {
        [
            .hello(.init(token: "eyJhbGciOiJFZERTQSJ9.e30.c2ln", deviceId: 1, resumeAfter: 41)),
            .send(.init(id: "m1", recipients: [.init(userId: someone.userId, deviceId: 1, ciphertext: ciphertext)])),
            .send(.init(id: "m2", room: "k3J9x0PqLm2vW8tY", ciphertext: ciphertext, attachmentIds: ["a1"])),
            .ack(.init(seq: 7)),
            .ephemeral(.init(room: "k3J9x0PqLm2vW8tY", payload: ciphertext)),
            .ephemeral(.init(recipients: [.init(userId: someone.userId, deviceId: 2, ciphertext: ciphertext)])),
        ]
    }

    private static var serverFrames: [ServerFrame] {
        [
            .welcome(.init(userId: someone.userId, deviceId: 1, lastSeq: 12)),
            .accepted(.init(id: "m1", messageId: 99, sentAt: sentAt, duplicate: false)),
            .message(.init(seq: 13, messageId: 99, sender: someone, clientMessageId: "m1", room: nil, ciphertext: ciphertext, sentAt: sentAt)),
            .roomEvent(.init(seq: 14, room: "k3J9x0PqLm2vW8tY", change: .roleChanged, userId: "u", actorUserId: "v", role: .admin, at: sentAt)),
            .caughtUp(.init(seq: 14)),
            .ephemeral(.init(sender: someone, room: "k3J9x0PqLm2vW8tY", payload: ciphertext)),
            .preKeysLow(.init(count: 3)),
            .error(.init(code: .rateLimited, message: "slow down", id: "m3", retryAfter: 2)),
        ]
    }

    private static func requestBodySeeds() throws -> [[UInt8]] {
        let identity = IdentityKeyPair()
        let signed = identity.makeSignedPreKey(id: 1, createdAt: 1_800_000_000)
        let oneTime = Data(OneTimePreKeyPair(id: 2).publicPart.serialized)
        let encoder = APIJSON.makeEncoder()
        let bodies: [any Encodable] = [
            RegisterRequest(username: "alice", password: "correct horse battery"),
            LoginRequest(username: "alice", password: "correct horse battery"),
            RefreshRequest(refreshToken: "cmVmcmVzaA"),
            ChangePasswordRequest(currentPassword: "old password", newPassword: "new password 1"),
            DeleteAccountRequest(password: "correct horse battery"),
            ProfileUpdate(displayName: "Alice", statusText: "here", avatarAttachmentId: nil),
            DeviceRegistration(
                name: "laptop", identityKey: Data(identity.publicKey.rawRepresentation), signedPreKey: Data(signed.publicPart.serialized),
                oneTimePreKeys: [oneTime]),
            SignedPreKeyUpload(signedPreKey: Data(signed.publicPart.serialized)),
            OneTimePreKeyUpload(oneTimePreKeys: [oneTime]),
            CreateRoomRequest(name: "team", password: "room password", retentionSeconds: 86_400),
            JoinRoomRequest(password: "room password"),
            RoomPasswordRequest(password: nil),
            RoleChangeRequest(role: .admin),
            BanRequest(userId: someone.userId),
        ]
        return try bodies.map { Array(try encoder.encode($0)) }
    }

    private static func establishedSessions() throws -> (alice: Session, bob: Session, first: SessionMessage, replies: [SessionMessage]) {
        let alice = IdentityKeyPair()
        let bob = IdentityKeyPair()
        let signed = bob.makeSignedPreKey(id: 1, createdAt: 1_800_000_000)
        let oneTime = OneTimePreKeyPair(id: 100)
        var store = InMemoryPreKeyStore(signedPreKeys: [signed], oneTimePreKeys: [oneTime])
        let bundle = try PreKeyBundle(identityKey: bob.publicKey, signedPreKey: signed.publicPart, oneTimePreKey: oneTime.publicPart)
        var aliceSession = try Session.initiate(identity: alice, bundle: bundle)
        let first = try aliceSession.encrypt(Array("hello bob".utf8))
        guard case .preKey(let preKeyMessage) = first else { return (aliceSession, aliceSession, first, []) }
        var (bobSession, _) = try Session.accept(preKeyMessage, identity: bob, store: &store)
        let replies = try [bobSession.encrypt([]), bobSession.encrypt(Array(repeating: 0x61, count: 200))]
        return (aliceSession, bobSession, first, replies)
    }

    private static func sessionMessageSeeds() throws -> [[UInt8]] {
        let (_, _, first, replies) = try establishedSessions()
        var seeds = [first.serialized] + replies.map(\.serialized)
        if case .ratchet(let message) = replies[0] { seeds.append(message.header.encoded) }
        return seeds
    }

    private static func senderKeySeeds() throws -> (messages: [[UInt8]], states: [[UInt8]]) {
        var sender = SenderKeyState(distributionId: Array(repeating: 7, count: 16), createdAt: 1_800_000_000)
        let distribution = sender.distributionMessage
        var record = SenderKeyRecord(distribution: distribution, owner: ProtocolAddress(name: someone.userId, deviceId: 1))
        let messages = try [sender.encrypt(Array("hello room".utf8)), sender.encrypt([])]
        _ = try record.decrypt(messages[1].serialized)
        return (
            [distribution.serialized.bytes] + messages.map(\.serialized),
            [sender.serialized.bytes, record.serialized.bytes]
        )
    }

    private static func bundleSeeds() throws -> [[UInt8]] {
        let signed = bundleIdentity.makeSignedPreKey(id: 5, createdAt: 1_800_000_000)
        let oneTime = OneTimePreKeyPair(id: 6)
        let bundle = try PreKeyBundle(identityKey: bundleIdentity.publicKey, signedPreKey: signed.publicPart, oneTimePreKey: oneTime.publicPart)
        let withoutOneTime = try PreKeyBundle(identityKey: bundleIdentity.publicKey, signedPreKey: signed.publicPart, oneTimePreKey: nil)
        return [bundle.serialized, withoutOneTime.serialized, signed.publicPart.serialized, oneTime.publicPart.serialized]
    }

    private static func storedStateSeeds() throws -> [[UInt8]] {
        let (alice, bob, _, _) = try establishedSessions()
        return [alice.serialized.bytes, bob.serialized.bytes, alice.ratchet.serialized.bytes] + (try senderKeySeeds().states)
    }

    /// Encrypted with a key of their own: valid attachments the fuzzer's key cannot open.
    private static func attachmentSeeds() throws -> [[UInt8]] {
        try [0, 100, 5000].map { size in
            var encryptor = AttachmentEncryptor(key: SecretBytes.random(count: 32))
            var ciphertext = try encryptor.update([UInt8](repeating: 0x61, count: size))
            ciphertext += try encryptor.finalize().ciphertext
            return ciphertext
        }
    }
}
