import Foundation
public import Logging

/// Operator commands for the server's own keys (`securechat-server rotate-at-rest-key`, `rotate-jwt-key`).
public enum KeyRotation {
    /// What a rotation did.
    public struct Report: Sendable {
        public let newKeyId: String?
        public let resealed: Int
        public let removedKeyIds: [String]
    }

    /// Adds a new at-rest key (unless `addKey` is false), re-seals every stored payload under the
    /// newest key, and, if asked, deletes the key files nothing is sealed under any more.
    ///
    /// With one server: stop it, rotate, start it. With several: add the key (`reseal: false`),
    /// restart every instance so that all know it, then reseal (`addKey: false`) while they run.
    public static func rotateAtRestKey(
        configuration: ServerConfiguration, addKey: Bool = true, reseal: Bool = true, removeOldKeys: Bool = false, logger: Logger
    ) async throws -> Report {
        guard configuration.atRestKeys == nil else { throw KeyRotationError.keysFromEnvironment }
        let folder = configuration.atRestKeysDirectory
        let newKeyId: String? = addKey ? try KeyRing.addKey(folder: folder) : nil
        let ring = try KeyRing.load(folder: folder)
        var resealed = 0
        var removed: [String] = []
        if reseal {
            let services = try await makeServices(configuration: configuration, logger: logger)
            let cipher = services.cipher
            do {
                resealed = try await services.store.resealPayloads(notUnder: ring.currentId) { sealed, location in
                    try cipher.reseal(
                        sealed,
                        context: AtRestCipher.messageContext(
                            sender: location.sender, clientMessageId: location.clientMessageId, recipient: location.recipient))
                }
            } catch {
                await services.store.shutdown()
                throw error
            }
            await services.store.shutdown()
            if removeOldKeys {
                for id in ring.keys.keys.sorted() where id != ring.currentId {
                    try FileManager.default.removeItem(at: folder.appendingPathComponent("\(id).key"))
                    removed.append(id)
                }
            }
        }
        logger.info("at-rest key rotation", metadata: ["current": "\(ring.currentId)", "resealed": "\(resealed)"])
        return Report(newKeyId: newKeyId, resealed: resealed, removedKeyIds: removed)
    }

    /// Adds a JWT signing key; tokens signed by older keys stay valid until they expire, and the
    /// old key file can be deleted after one access-token lifetime.
    public static func rotateJWTKey(configuration: ServerConfiguration) throws -> String {
        guard configuration.jwtKeys == nil else { throw KeyRotationError.keysFromEnvironment }
        _ = try KeyRing.load(folder: configuration.jwtKeysDirectory)
        return try KeyRing.addKey(folder: configuration.jwtKeysDirectory)
    }
}

public enum KeyRotationError: Error, CustomStringConvertible {
    case keysFromEnvironment

    public var description: String {
        "keys come from the environment: put the new key first in the variable and restart instead"
    }
}
