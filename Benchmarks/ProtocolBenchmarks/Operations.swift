import Crypto
import Foundation
import SecureChatKeys
import SecureChatProtocol

enum Operations {
    typealias Row = (Measurement, Double, String)

    static func measureAll(budget: Double, primitives p: Primitives) throws -> [Row] {
        var rows: [Row] = []
        let plaintext = [UInt8](repeating: 0x61, count: 100)

        // Steady chain: Alice sends, Bob receives, no DH step.
        do {
            var (alice, bob) = try pair()
            let result = try measure("ratchet encrypt+decrypt 100 B, steady chain", budget: budget) {
                let (header, ciphertext) = try alice.encrypt(plaintext)
                consume(try bob.decrypt(header: header, ciphertext: ciphertext))
            }
            let sum = 4 * p.hmac32.microseconds + 2 * p.hkdf80.microseconds + 2 * p.hmac216.microseconds
                + p.cbcEncrypt.microseconds + p.cbcDecrypt.microseconds
            rows.append((result, sum, "4 HMAC-32 + 2 HKDF-80 + 2 HMAC-216 + CBC enc + CBC dec"))
        }

        // Ping-pong: every message carries a new ratchet key, so every receive is a DH step.
        do {
            var (alice, bob) = try pair()
            let (header, ciphertext) = try alice.encrypt(plaintext)
            _ = try bob.decrypt(header: header, ciphertext: ciphertext)
            var aliceTurn = false
            let result = try measure("ratchet encrypt+decrypt 100 B, DH step each message", budget: budget) {
                if aliceTurn {
                    let (header, ciphertext) = try alice.encrypt(plaintext)
                    consume(try bob.decrypt(header: header, ciphertext: ciphertext))
                } else {
                    let (header, ciphertext) = try bob.encrypt(plaintext)
                    consume(try alice.decrypt(header: header, ciphertext: ciphertext))
                }
                aliceTurn.toggle()
            }
            let sum = 4 * p.hmac32.microseconds + 2 * p.hkdf80.microseconds + 2 * p.hmac216.microseconds
                + p.cbcEncrypt.microseconds + p.cbcDecrypt.microseconds
                + 2 * p.x25519Agreement.microseconds + p.x25519KeyGeneration.microseconds + 2 * p.hkdf64.microseconds
            rows.append((result, sum, "steady + 2 X25519 + keygen + 2 HKDF-64"))
        }

        // X3DH both sides and both ratchet initialisations, from a decoded bundle.
        do {
            let alice = IdentityKeyPair(), bob = IdentityKeyPair()
            let signed = bob.makeSignedPreKey(id: 1, createdAt: 0)
            let oneTime = OneTimePreKeyPair(id: 1)
            let bundle = try PreKeyBundle(identityKey: bob.publicKey, signedPreKey: signed.publicPart, oneTimePreKey: oneTime.publicPart)
            let result = try measure("X3DH both sides + ratchet initialisation", budget: budget, batch: 16) {
                let (agreement, initiation) = try X3DH.initiate(identity: alice, bundle: bundle)
                let initiator = try RatchetState.initiator(
                    sharedSecret: agreement.sharedSecret, associatedData: agreement.associatedData,
                    responderRatchetKey: bundle.signedPreKey.publicKey)
                let response = try X3DH.respond(identity: bob, signedPreKey: signed, oneTimePreKey: oneTime, initiation: initiation)
                consume(initiator)
                consume(response)
            }
            let sum = 9 * p.x25519Agreement.microseconds + 2 * p.x25519KeyGeneration.microseconds
                + 2 * p.hkdf32.microseconds + p.hkdf64.microseconds
            rows.append((result, sum, "9 X25519 + 2 keygen + 2 HKDF-32 + HKDF-64"))

            let encoded = bundle.serialized
            let decode = try measure("prekey bundle decode: verify + identity conversion", budget: budget, batch: 16) {
                consume(try PreKeyBundle(serialized: encoded))
            }
            rows.append((decode, p.ed25519Verify.microseconds, "Ed25519 verify (conversion is ours, not a swift-crypto primitive)"))
        }

        // Identity key decode alone: our field arithmetic.
        do {
            let raw = IdentityKeyPair().publicKey.rawRepresentation
            let result = try measure("identity key validation + X25519 conversion", budget: budget, batch: 16) {
                consume(try IdentityKey(rawRepresentation: raw))
            }
            rows.append((result, p.x25519Agreement.microseconds, "compared with one X25519 (ours is pure Swift)"))
        }

        // Sender keys: encrypt + verify-decrypt.
        do {
            var sender = SenderKeyState(distributionId: [UInt8](repeating: 1, count: 16), createdAt: 0)
            var receiver = SenderKeyRecord(distribution: sender.distributionMessage, owner: ProtocolAddress(name: "sender", deviceId: 1))
            let result = try measure("sender key encrypt + verify-decrypt 100 B", budget: budget) {
                let message = try sender.encrypt(plaintext)
                consume(try receiver.decrypt(message))
            }
            let sum = 4 * p.hmac32.microseconds + 2 * p.hkdf80.microseconds + 2 * p.hmac144.microseconds
                + p.cbcEncrypt.microseconds + p.cbcDecrypt.microseconds + p.ed25519Sign.microseconds + p.ed25519Verify.microseconds
            rows.append((result, sum, "4 HMAC-32 + 2 HKDF-80 + 2 HMAC-144 + CBC enc + dec + Ed25519 sign + verify"))
        }

        // Attachments, 16 MiB in 1 MiB pieces.
        do {
            let piece = [UInt8](repeating: 0x42, count: 1 << 20)
            let key = SecretBytes.random(count: 32)
            func encryptAll() throws -> (stream: [UInt8], digest: [UInt8]) {
                var encryptor = AttachmentEncryptor(key: key)
                var stream: [UInt8] = []
                stream.reserveCapacity((16 << 20) + 8192)
                for _ in 0..<16 { stream += try encryptor.update(piece) }
                let (tail, digest) = try encryptor.finalize()
                return (stream + tail, digest)
            }
            // Measured without keeping the stream, as a client streams it to the network.
            let encrypt = try measure("attachment encrypt, per MiB (16 MiB streams)", budget: budget, batch: 1) {
                var encryptor = AttachmentEncryptor(key: key)
                for _ in 0..<16 { consume(try encryptor.update(piece)) }
                consume(try encryptor.finalize())
            }
            let (lastStream, lastDigest) = try encryptAll()
            let perMiB = Measurement(name: encrypt.name, operations: encrypt.operations * 16, seconds: encrypt.seconds)
            rows.append((perMiB, p.aesGCMMiB.microseconds + p.sha256MiB.microseconds, "AES-GCM 1 MiB + SHA-256 1 MiB"))
            let decrypt = try measure("attachment decrypt, per MiB (16 MiB streams)", budget: budget, batch: 1) {
                var decryptor = AttachmentDecryptor(key: key, expectedDigest: lastDigest, expectedSize: 16 << 20)
                var offset = 0
                while offset < lastStream.count {
                    let end = min(lastStream.count, offset + (1 << 20))
                    consume(try decryptor.update(lastStream[offset..<end]))
                    offset = end
                }
                consume(try decryptor.finalize())
            }
            let decryptPerMiB = Measurement(name: decrypt.name, operations: decrypt.operations * 16, seconds: decrypt.seconds)
            rows.append((decryptPerMiB, p.aesGCMMiB.microseconds + p.sha256MiB.microseconds, "AES-GCM 1 MiB + SHA-256 1 MiB"))
        }

        // Safety number: 2 × 5200 SHA-512.
        do {
            let alice = IdentityKeyPair().publicKey, bob = IdentityKeyPair().publicKey
            let result = measure("safety number (both fingerprints)", budget: budget, batch: 4) {
                consume(SafetyNumber(local: alice, localUserId: "alice", remote: bob, remoteUserId: "bob"))
            }
            rows.append((result, 10_400 * p.sha512Small.microseconds, "10,400 SHA-512"))
        }
        return rows
    }

    static func pair() throws -> (RatchetState, RatchetState) {
        let secret = SecretBytes.random(count: 32)
        let bobKey = Curve25519.KeyAgreement.PrivateKey()
        let ad = [UInt8](repeating: 7, count: 64)
        let alice = try RatchetState.initiator(
            sharedSecret: secret, associatedData: ad,
            responderRatchetKey: try X25519PublicKey(rawRepresentation: bobKey.publicKey.rawRepresentation))
        return (alice, RatchetState.responder(sharedSecret: secret, associatedData: ad, ratchetKey: bobKey))
    }
}
