import Crypto
import Foundation
import _CryptoExtras

/// The keys of a local store, derived from the user's passphrase with scrypt. One key seals every
/// record (AES-256-GCM); the other turns names into blind index values (HMAC-SHA256), so the file
/// does not show whom the device talks to.
struct StoreKeys: Sendable {
    /// scrypt's cost parameters, stored beside the salt so a store opens with the cost it was made with.
    struct Cost: Sendable, Equatable, Codable {
        var rounds: Int
        var blockSize: Int
        var parallelism: Int

        /// 2¹⁵ rounds with blocks of 8: 32 MiB and about a tenth of a second per derivation
        /// here, paid once when the store opens.
        static let standard = Cost(rounds: 1 << 15, blockSize: 8, parallelism: 1)
        /// For tests only: the same algorithm at a cost that does not dominate a test run.
        static let testing = Cost(rounds: 1 << 10, blockSize: 8, parallelism: 1)

        var isValid: Bool {
            rounds >= 1 << 10 && rounds <= 1 << 22 && rounds & (rounds - 1) == 0
                && (1...32).contains(blockSize) && (1...16).contains(parallelism)
        }
    }

    private let sealing: SymmetricKey
    private let indexing: SymmetricKey

    static let saltLength = 16

    static func derive(passphrase: String, salt: [UInt8], cost: Cost) throws(ClientError) -> StoreKeys {
        guard cost.isValid else { throw .corruptLocalState("unsupported key derivation parameters") }
        let master: SymmetricKey
        do {
            master = try KDF.Scrypt.deriveKey(
                from: Array(passphrase.utf8), salt: salt, outputByteCount: 32, rounds: cost.rounds,
                blockSize: cost.blockSize, parallelism: cost.parallelism)
        } catch {
            throw .corruptLocalState("key derivation failed: \(error)")
        }
        return StoreKeys(
            sealing: HKDF<SHA256>.deriveKey(
                inputKeyMaterial: master, info: Array("SecureChat local store sealing v1".utf8), outputByteCount: 32),
            indexing: HKDF<SHA256>.deriveKey(
                inputKeyMaterial: master, info: Array("SecureChat local store index v1".utf8), outputByteCount: 32))
    }

    /// nonce (12) ‖ ciphertext ‖ tag (16), bound to `context` (the record's kind and index value).
    func seal(_ plaintext: some DataProtocol, context: [UInt8]) -> Data {
        // AES-GCM sealing fails only on a malformed nonce or key, which cannot happen here.
        let box = try! AES.GCM.seal(plaintext, using: sealing, authenticating: context)  // swiftlint:disable:this force_try
        return box.combined!  // swiftlint:disable:this force_unwrapping
    }

    func open(_ sealed: Data, context: [UInt8]) throws(ClientError) -> Data {
        do {
            return try AES.GCM.open(AES.GCM.SealedBox(combined: sealed), using: sealing, authenticating: context)
        } catch {
            throw .corruptLocalState("a record does not authenticate")
        }
    }

    /// The blind index value of a name.
    func index(_ name: String, kind: UInt8) -> Data {
        Data(HMAC<SHA256>.authenticationCode(for: [kind] + Array(name.utf8), using: indexing))
    }
}
