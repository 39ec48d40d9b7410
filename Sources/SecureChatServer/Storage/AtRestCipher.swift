import Crypto
import Foundation
import SecureChatAPI
import Synchronization

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
    private let nonces = NonceSource()

    init(currentKeyId: String, keys: [String: SymmetricKey]) {
        precondition(keys[currentKeyId] != nil, "the current at-rest key must be among the loaded keys")
        self.currentKeyId = currentKeyId
        self.keys = keys
    }

    var keyIds: [String] { keys.keys.sorted() }

    func seal(_ plaintext: some DataProtocol, context: String) throws -> SealedPayload {
        guard let key = keys[currentKeyId] else { throw Failure.unknownKey(currentKeyId) }
        let box = try AES.GCM.seal(plaintext, using: key, nonce: nonces.next(), authenticating: Data(context.utf8))
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

/// Random 96-bit GCM nonces, drawn from the kernel 256 at a time: two `getrandom` calls per
/// nonce (swift-crypto's `Nonce()`) were a sixth of the cost of sealing a message. Each nonce is
/// still 96 fresh random bits, handed out once and then wiped from the pool.
final class NonceSource: Sendable {
    private static let batch = 256
    private let pool = Mutex<(bytes: [UInt8], used: Int)>(([UInt8](repeating: 0, count: 12 * 256), 256))

    func next() throws -> AES.GCM.Nonce {
        let nonce = try pool.withLock { pool throws -> [UInt8] in
            if pool.used == Self.batch {
                try pool.bytes.withUnsafeMutableBytes { buffer in try Self.fillRandom(buffer) }
                pool.used = 0
            }
            let range = (pool.used * 12)..<(pool.used * 12 + 12)
            let nonce = Array(pool.bytes[range])
            for index in range { pool.bytes[index] = 0 }
            pool.used += 1
            return nonce
        }
        return try AES.GCM.Nonce(data: nonce)
    }

    struct RandomSourceFailure: Error, CustomStringConvertible {
        let errno: Int32
        var description: String { "/dev/urandom could not be read (errno \(errno))" }
    }

    private static func fillRandom(_ buffer: UnsafeMutableRawBufferPointer) throws {
        #if canImport(Glibc)
        // Glibc's module does not export getrandom(2); /dev/urandom is the same source.
        let descriptor = open("/dev/urandom", O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw RandomSourceFailure(errno: errno) }
        defer { close(descriptor) }
        var filled = 0
        while filled < buffer.count {
            let count = read(descriptor, buffer.baseAddress! + filled, buffer.count - filled)
            if count <= 0 {
                guard count < 0, errno == EINTR else { throw RandomSourceFailure(errno: count == 0 ? EIO : errno) }
                continue
            }
            filled += count
        }
        #else
        arc4random_buf(buffer.baseAddress!, buffer.count)
        #endif
    }
}
