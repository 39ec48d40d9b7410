import Crypto
import Foundation
import SecureChatAPI

/// Seals stored ciphertexts a second time, under a server key, so that a copied database file or
/// backup alone reveals not even the end-to-end ciphertexts.
///
/// AES-256-GCM with a random 96-bit nonce: sealed = nonce (12) ‖ ciphertext ‖ tag (16). The
/// associated data names where the payload belongs (sender, client message id, recipient), so a
/// row's payload cannot be moved to another row. Each row stores the id of the key that sealed it;
/// `securechat-server rotate-key` adds a key and re-seals everything under it.
struct AtRestCipher: Sendable {
    enum Failure: Error, CustomStringConvertible {
        case unknownKey(String)
        case malformed
        case authenticationFailed

        var description: String {
            switch self {
            case .unknownKey(let id): "no at-rest key with id \(id) is loaded"
            case .malformed: "a stored payload is too short to be sealed"
            case .authenticationFailed: "a stored payload failed authentication (wrong key or altered data)"
            }
        }
    }

    /// The key new payloads are sealed under.
    let currentKeyId: String
    private let keys: [String: SymmetricKey]

    init(currentKeyId: String, keys: [String: SymmetricKey]) {
        precondition(keys[currentKeyId] != nil, "the current at-rest key must be among the loaded keys")
        self.currentKeyId = currentKeyId
        self.keys = keys
    }

    var keyIds: [String] { keys.keys.sorted() }

    func seal(_ plaintext: some DataProtocol, context: String) throws -> SealedPayload {
        guard let key = keys[currentKeyId] else { throw Failure.unknownKey(currentKeyId) }
        let box = try AES.GCM.seal(plaintext, using: key, authenticating: Data(context.utf8))
        var bytes = [UInt8]()
        bytes.reserveCapacity(12 + plaintext.count + 16)
        bytes.append(contentsOf: box.nonce)
        bytes.append(contentsOf: box.ciphertext)
        bytes.append(contentsOf: box.tag)
        return SealedPayload(keyId: currentKeyId, bytes: bytes, unsealed: Data(plaintext))
    }

    func open(_ sealed: SealedPayload, context: String) throws -> Data {
        guard let key = keys[sealed.keyId] else { throw Failure.unknownKey(sealed.keyId) }
        guard sealed.bytes.count >= 28 else { throw Failure.malformed }
        do {
            let box = try AES.GCM.SealedBox(
                nonce: AES.GCM.Nonce(data: sealed.bytes[0..<12]), ciphertext: sealed.bytes[12..<(sealed.bytes.count - 16)],
                tag: sealed.bytes[(sealed.bytes.count - 16)...])
            return try AES.GCM.open(box, using: key, authenticating: Data(context.utf8))
        } catch {
            throw Failure.authenticationFailed
        }
    }

    func reseal(_ sealed: SealedPayload, context: String) throws -> SealedPayload {
        try seal(open(sealed, context: context), context: context)
    }

    /// Where a message payload belongs: a room message once, a pairwise one per recipient device.
    static func messageContext(sender: DeviceAddress, clientMessageId: String, recipient: DeviceAddress?) -> String {
        var context = "securechat at-rest v1|\(sender.userId)|\(sender.deviceId)|\(clientMessageId)"
        if let recipient { context += "|\(recipient.userId)|\(recipient.deviceId)" }
        return context
    }
}
