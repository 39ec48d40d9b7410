import Foundation
import SecureChatAPI
import SecureChatKeys
import SecureChatProtocol
import Synchronization

/// An input that breaks one of a decoder's invariants. Being refused with an error is not a
/// finding: every decoder here refuses most inputs. Crashing, or accepting something it cannot
/// give back the same way, is.
public struct FuzzFinding: Error, CustomStringConvertible {
    public let target: FuzzTarget
    public let invariant: String

    public var description: String { "\(target.rawValue): \(invariant)" }
}

/// The decoders that read bytes an attacker chooses, each with the invariants it must keep on any
/// input. `securechat-fuzz` runs them under libFuzzer; the committed corpus in `Fuzz/Corpus`
/// is replayed by `swift test`.
public enum FuzzTarget: String, CaseIterable, Sendable {
    /// WebSocket text frames from clients, as the server reads them: the hand-written `send`
    /// parser never accepts what `JSONDecoder` decodes differently or refuses, and every decoded
    /// frame encodes and decodes back to itself.
    case clientFrame
    /// Frames from the server, as the client SDK reads them: the same round trip.
    case serverFrame
    /// Every JSON request body of the REST API: decoded, encoded and decoded again, it encodes to
    /// the same bytes.
    case restBody
    /// Pairwise wire messages (prekey and ratchet messages, ratchet headers): whatever decodes
    /// encodes back to exactly the input, so no message has two encodings; and no ratchet message
    /// made without the session's keys decrypts.
    case sessionMessage
    /// Room messages and sender-key distributions: the same, byte for byte; and no room message
    /// made without the sender's keys decrypts.
    case senderKeyMessage
    /// Prekey bundles and their parts as devices upload them: the same, byte for byte.
    case preKeyBundle
    /// Session, ratchet and sender-key records as the client stores them: a decoded record
    /// encodes to a form that decodes to the same record.
    case storedState
    /// Encrypted attachments as they are downloaded: bytes made without the key never decrypt.
    case attachment

    /// Checks every invariant of this target on `bytes`.
    public func check(_ bytes: [UInt8]) throws(FuzzFinding) {
        switch self {
        case .clientFrame: try checkClientFrame(bytes)
        case .serverFrame: try checkJSONRoundTrip(ServerFrame.self, bytes)
        case .restBody: try checkRESTBodies(bytes)
        case .sessionMessage: try checkSessionMessage(bytes)
        case .senderKeyMessage: try checkSenderKeyMessage(bytes)
        case .preKeyBundle: try checkPreKeyBundle(bytes)
        case .storedState: try checkStoredState(bytes)
        case .attachment: try checkAttachment(bytes)
        }
    }

    private func finding(_ invariant: String) -> FuzzFinding {
        FuzzFinding(target: self, invariant: invariant)
    }

    // MARK: JSON

    private func checkClientFrame(_ bytes: [UInt8]) throws(FuzzFinding) {
        let decoded = try? APIJSON.makeDecoder().decode(ClientFrame.self, from: Data(bytes))
        if let fast = bytes.withUnsafeBytes({ SendFrameParser.parse($0) }), decoded != .send(fast) {
            throw finding("the send parser read \(fast), JSONDecoder \(decoded.map { "\($0)" } ?? "refused the frame")")
        }
        try checkJSONRoundTrip(ClientFrame.self, bytes)
    }

    /// Decodes `bytes` as `Value`; if that works, its encoding must decode to an equal value.
    private func checkJSONRoundTrip<Value: Codable & Equatable>(_ type: Value.Type, _ bytes: [UInt8]) throws(FuzzFinding) {
        guard let value = try? APIJSON.makeDecoder().decode(Value.self, from: Data(bytes)) else { return }
        let again: Value
        do {
            again = try APIJSON.makeDecoder().decode(Value.self, from: try APIJSON.makeEncoder().encode(value))
        } catch {
            throw finding("\(Value.self) decoded, but its own encoding does not decode: \(error)")
        }
        if again != value { throw finding("\(Value.self) changed in an encode-decode round trip: \(value) became \(again)") }
    }

    static let requestBodies: [any (Codable & Sendable).Type] = [
        RegisterRequest.self, LoginRequest.self, RefreshRequest.self, ChangePasswordRequest.self, DeleteAccountRequest.self,
        ProfileUpdate.self, DeviceRegistration.self, SignedPreKeyUpload.self, OneTimePreKeyUpload.self, CreateRoomRequest.self,
        JoinRoomRequest.self, RoomPasswordRequest.self, RoleChangeRequest.self, BanRequest.self,
    ]

    private func checkRESTBodies(_ bytes: [UInt8]) throws(FuzzFinding) {
        for type in Self.requestBodies { try checkStableEncoding(type, bytes) }
    }

    /// For types without `Equatable`: the encoding of a decoded value is a fixed point.
    private func checkStableEncoding<Value: Codable>(_ type: Value.Type, _ bytes: [UInt8]) throws(FuzzFinding) {
        guard let value = try? APIJSON.makeDecoder().decode(Value.self, from: Data(bytes)) else { return }
        do {
            let once = try APIJSON.makeEncoder().encode(value)
            let twice = try APIJSON.makeEncoder().encode(try APIJSON.makeDecoder().decode(Value.self, from: once))
            if once != twice {
                throw finding("\(Value.self) encodes differently after a round trip: \(String(decoding: once, as: UTF8.self))")
            }
        } catch let error as FuzzFinding {
            throw error
        } catch {
            throw finding("\(Value.self) decoded, but its own encoding does not decode: \(error)")
        }
    }

    // MARK: Binary

    private func checkSessionMessage(_ bytes: [UInt8]) throws(FuzzFinding) {
        let message = try? SessionMessage(serialized: bytes)
        if let message, message.serialized != bytes {
            throw finding("a session message decoded from bytes it does not encode back to")
        }
        if case .ratchet(let ratchetMessage)? = message {
            let forged = Receivers.shared.withLock { receivers in
                (try? receivers.ratchet.decrypt(header: ratchetMessage.header, ciphertext: ratchetMessage.ciphertext)) != nil
            }
            if forged { throw finding("a ratchet message made without the session's keys decrypted") }
        }
        if let header = try? RatchetHeader(encoded: bytes), header.encoded != bytes {
            throw finding("a ratchet header decoded from bytes it does not encode back to")
        }
    }

    private func checkSenderKeyMessage(_ bytes: [UInt8]) throws(FuzzFinding) {
        if let message = try? SenderKeyMessage(serialized: bytes), message.serialized != bytes {
            throw finding("a sender-key message decoded from bytes it does not encode back to")
        }
        if let distribution = try? SenderKeyDistributionMessage(serialized: bytes), distribution.serialized.bytes != bytes {
            throw finding("a sender-key distribution decoded from bytes it does not encode back to")
        }
        let forged = Receivers.shared.withLock { receivers in (try? receivers.senderKeys.decrypt(bytes)) != nil }
        if forged { throw finding("a room message made without the sender's keys decrypted") }
    }

    /// The identity key signed prekeys are checked against: inputs carry the signing key's own
    /// signature only when the fuzzer rebuilds a seed, which is the interesting case.
    static let bundleIdentity = try! IdentityKeyPair(seed: SecretBytes([UInt8](repeating: 0x5c, count: 32)))

    private func checkPreKeyBundle(_ bytes: [UInt8]) throws(FuzzFinding) {
        if let bundle = try? PreKeyBundle(serialized: bytes), bundle.serialized != bytes {
            throw finding("a prekey bundle decoded from bytes it does not encode back to")
        }
        if let identity = try? IdentityKey(rawRepresentation: bytes), identity.rawRepresentation != bytes {
            throw finding("an identity key decoded from bytes it does not encode back to")
        }
        if let oneTime = try? OneTimePreKeyPublic(serialized: bytes), oneTime.serialized != bytes {
            throw finding("a one-time prekey decoded from bytes it does not encode back to")
        }
        if let signed = try? SignedPreKeyPublic(serialized: bytes, signedBy: Self.bundleIdentity.publicKey), signed.serialized != bytes {
            throw finding("a signed prekey decoded from bytes it does not encode back to")
        }
    }

    private func checkStoredState(_ bytes: [UInt8]) throws(FuzzFinding) {
        let input = SecretBytes(bytes)
        if let session = try? Session(serialized: input) {
            let once = session.serialized
            guard let again = try? Session(serialized: once) else { throw finding("a session decoded, but its own encoding does not decode") }
            if again.serialized != once { throw finding("a session encodes differently after a round trip") }
        }
        if let ratchet = try? RatchetState(serialized: input) {
            let once = ratchet.serialized
            guard let again = try? RatchetState(serialized: once) else { throw finding("a ratchet state decoded, but its own encoding does not decode") }
            if again.serialized != once { throw finding("a ratchet state encodes differently after a round trip") }
        }
        if let record = try? SenderKeyRecord(serialized: input) {
            let once = record.serialized
            guard let again = try? SenderKeyRecord(serialized: once) else {
                throw finding("a sender-key record decoded, but its own encoding does not decode")
            }
            if again.serialized != once { throw finding("a sender-key record encodes differently after a round trip") }
        }
        if let state = try? SenderKeyState(serialized: input) {
            let once = state.serialized
            guard let again = try? SenderKeyState(serialized: once) else {
                throw finding("a sender-key state decoded, but its own encoding does not decode")
            }
            if again.serialized != once { throw finding("a sender-key state encodes differently after a round trip") }
        }
    }

    private func checkAttachment(_ bytes: [UInt8]) throws(FuzzFinding) {
        // The digest no input can have: an all-zero SHA-256.
        var decryptor = AttachmentDecryptor(key: Receivers.attachmentKey, expectedDigest: [UInt8](repeating: 0, count: 32), expectedSize: 100)
        guard (try? decryptor.update(bytes)) != nil else { return }
        if (try? decryptor.finalize()) != nil { throw finding("an attachment made without its key decrypted") }
    }
}

/// Receivers with real state, shared by every input (behind a lock: the tests check inputs in
/// parallel). A message that parses must still fail to authenticate.
private struct Receivers: ~Copyable {
    static let shared = Mutex(Receivers())
    static let attachmentKey = SecretBytes([UInt8](repeating: 7, count: 32))

    var ratchet: RatchetState
    var senderKeys: SenderKeyStore

    init() {
        let bob = IdentityKeyPair()
        let signed = bob.makeSignedPreKey(id: 1, createdAt: 0)
        let bundle = try! PreKeyBundle(identityKey: bob.publicKey, signedPreKey: signed.publicPart, oneTimePreKey: nil)
        ratchet = try! Session.initiate(identity: IdentityKeyPair(), bundle: bundle).ratchet
        var store = SenderKeyStore()
        let sender = SenderKeyState(distributionId: [UInt8](repeating: 0x42, count: 16), createdAt: 0)
        try! store.process(sender.distributionMessage, from: ProtocolAddress(name: "fuzz", deviceId: 1))
        senderKeys = store
    }
}
