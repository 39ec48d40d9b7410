import Foundation
import Hummingbird
import SecureChatAPI
import SecureChatKeys

/// Devices and their public prekeys. Every key is validated and every signature checked with
/// SecureChatKeys before anything is stored: a bad bundle is refused at upload, not discovered
/// by the peer who fetches it.
struct DeviceController {
    let services: ChatServices

    func addRoutes(to group: RouterGroup<AuthenticatedContext>) {
        group.post("devices", use: register)
        group.json(.get, "devices", use: list)
        group.delete("devices/{deviceId}", use: delete)
        group.put("devices/{deviceId}/signed-prekey", use: replaceSignedPreKey)
        group.json(.post, "devices/{deviceId}/one-time-prekeys", use: uploadOneTimePreKeys)
        group.json(.get, "devices/{deviceId}/one-time-prekeys", use: countOneTimePreKeys)
        group.json(.get, "users/{userId}/devices", use: userDevices)
        group.json(.post, "users/{userId}/bundles", use: claimBundles)
    }

    @Sendable func register(_ request: Request, context: AuthenticatedContext) async throws -> JSONBody<DeviceResponse> {
        let body = try await APIRequestDecoding.decode(DeviceRegistration.self, from: request)
        guard (1...64).contains(body.name.count), !body.name.unicodeScalars.contains(where: { $0.properties.generalCategory == .control })
        else { throw APIFailure.badRequest("a device name is 1 to 64 characters without control characters") }
        let identityKey: IdentityKey
        do {
            identityKey = try IdentityKey(rawRepresentation: body.identityKey)
        } catch {
            throw APIFailure(.unprocessableContent, .invalidKey, "identityKey is not a valid Ed25519 public key: \(error)")
        }
        _ = try Self.signedPreKey(body.signedPreKey, identityKey: identityKey)
        let oneTimePreKeys = try Self.oneTimePreKeys(body.oneTimePreKeys)
        let device = try await services.store.addDevice(
            DeviceRecord(
                key: 0, userId: context.user.userId, deviceId: 0, name: body.name, identityKey: Array(body.identityKey),
                signedPreKey: Array(body.signedPreKey), createdAt: services.nowMilliseconds, oneTimePreKeyCount: 0),
            oneTimePreKeys: oneTimePreKeys)
        context.logger.info("device added", metadata: ["device": "\(device.deviceId)"])
        await services.audit(.deviceAdded, user: context.user.userId, from: context.remoteAddress, "device \(device.deviceId)")
        return JSONBody(Self.response(device), status: .created)
    }

    @Sendable func list(_ request: Request, context: AuthenticatedContext) async throws -> DeviceListResponse {
        DeviceListResponse(devices: try await services.store.devices(userId: context.user.userId).map(Self.response))
    }

    @Sendable func delete(_ request: Request, context: AuthenticatedContext) async throws -> HTTPResponse.Status {
        let deviceId = try Self.deviceId(context)
        guard try await services.store.deleteDevice(userId: context.user.userId, deviceId: deviceId) else {
            throw APIFailure.notFound("device")
        }
        services.hub.close(DeviceAddress(userId: context.user.userId, deviceId: deviceId), .unknownDevice, "this device was removed")
        await services.audit(.deviceRemoved, user: context.user.userId, from: context.remoteAddress, "device \(deviceId)")
        return .noContent
    }

    @Sendable func replaceSignedPreKey(_ request: Request, context: AuthenticatedContext) async throws -> HTTPResponse.Status {
        let deviceId = try Self.deviceId(context)
        let body = try await APIRequestDecoding.decode(SignedPreKeyUpload.self, from: request)
        guard let device = try await services.store.device(userId: context.user.userId, deviceId: deviceId) else {
            throw APIFailure.notFound("device")
        }
        let identityKey = try IdentityKey(rawRepresentation: device.identityKey)
        _ = try Self.signedPreKey(body.signedPreKey, identityKey: identityKey)
        guard try await services.store.replaceSignedPreKey(userId: context.user.userId, deviceId: deviceId, encoded: Array(body.signedPreKey))
        else { throw APIFailure.notFound("device") }
        await services.audit(.signedPreKeyReplaced, user: context.user.userId, from: context.remoteAddress, "device \(deviceId)")
        return .noContent
    }

    @Sendable func uploadOneTimePreKeys(_ request: Request, context: AuthenticatedContext) async throws -> PreKeyCountResponse {
        let deviceId = try Self.deviceId(context)
        let body = try await APIRequestDecoding.decode(OneTimePreKeyUpload.self, from: request)
        let keys = try Self.oneTimePreKeys(body.oneTimePreKeys)
        guard !keys.isEmpty else { throw APIFailure.badRequest("upload at least one one-time prekey") }
        let count = try await services.store.addOneTimePreKeys(userId: context.user.userId, deviceId: deviceId, keys: keys)
        return PreKeyCountResponse(count: count, low: count < APILimits.oneTimePreKeysLowWatermark)
    }

    @Sendable func countOneTimePreKeys(_ request: Request, context: AuthenticatedContext) async throws -> PreKeyCountResponse {
        let deviceId = try Self.deviceId(context)
        guard let device = try await services.store.device(userId: context.user.userId, deviceId: deviceId) else {
            throw APIFailure.notFound("device")
        }
        return PreKeyCountResponse(count: device.oneTimePreKeyCount, low: device.oneTimePreKeyCount < APILimits.oneTimePreKeysLowWatermark)
    }

    /// Another account's devices and identity keys (public), without consuming anything.
    @Sendable func userDevices(_ request: Request, context: AuthenticatedContext) async throws -> UserDevicesResponse {
        let userId = try context.parameters.require("userId")
        guard userId.utf8.count <= 64, let user = try await services.store.user(id: userId) else { throw APIFailure.notFound("user") }
        return UserDevicesResponse(
            userId: user.id, username: user.username,
            devices: try await services.store.devices(userId: user.id).map { PublicDevice(deviceId: $0.deviceId, identityKey: Data($0.identityKey)) })
    }

    /// Hands out one bundle per device of the user; each one-time prekey goes to one caller only.
    @Sendable func claimBundles(_ request: Request, context: AuthenticatedContext) async throws -> BundleResponse {
        let userId = try context.parameters.require("userId")
        guard userId.utf8.count <= 64, let user = try await services.store.user(id: userId) else { throw APIFailure.notFound("user") }
        let bundles = try await services.store.claimBundles(userId: user.id)
        for bundle in bundles where bundle.oneTimePreKey != nil && bundle.remaining < APILimits.oneTimePreKeysLowWatermark {
            services.hub.sendPreKeysLow(bundle.remaining, to: DeviceAddress(userId: user.id, deviceId: bundle.device.deviceId))
        }
        return BundleResponse(
            userId: user.id, username: user.username,
            devices: bundles.map { bundle in
                DeviceBundle(
                    deviceId: bundle.device.deviceId, identityKey: Data(bundle.device.identityKey),
                    signedPreKey: Data(bundle.device.signedPreKey), oneTimePreKey: bundle.oneTimePreKey.map { Data($0) })
            })
    }

    // MARK: Validation

    static func deviceId(_ context: AuthenticatedContext) throws -> UInt32 {
        guard let deviceId = context.parameters.get("deviceId", as: UInt32.self) else {
            throw APIFailure.notFound("device")
        }
        return deviceId
    }

    static func signedPreKey(_ encoded: Data, identityKey: IdentityKey) throws -> SignedPreKeyPublic {
        do {
            return try SignedPreKeyPublic(serialized: encoded, signedBy: identityKey)
        } catch .badSignedPreKeySignature {
            throw APIFailure(.unprocessableContent, .invalidSignature, "the signed prekey's signature does not verify under the identity key")
        } catch {
            throw APIFailure(.unprocessableContent, .invalidKey, "signedPreKey is not a valid signed prekey: \(error)")
        }
    }

    static func oneTimePreKeys(_ encoded: [Data]) throws -> [(id: UInt32, encoded: [UInt8])] {
        guard encoded.count <= APILimits.oneTimePreKeysPerUpload else {
            throw APIFailure(
                .unprocessableContent, .tooManyPreKeys, "upload at most \(APILimits.oneTimePreKeysPerUpload) one-time prekeys at once")
        }
        var seen = Set<UInt32>()
        return try encoded.enumerated().map { index, bytes in
            let key: OneTimePreKeyPublic
            do {
                key = try OneTimePreKeyPublic(serialized: bytes)
            } catch {
                throw APIFailure(.unprocessableContent, .invalidKey, "oneTimePreKeys[\(index)] is not a valid one-time prekey: \(error)")
            }
            guard seen.insert(key.id).inserted else {
                throw APIFailure(.unprocessableContent, .duplicatePreKey, "one-time prekey id \(key.id) appears twice")
            }
            return (key.id, Array(bytes))
        }
    }

    static func response(_ device: DeviceRecord) -> DeviceResponse {
        DeviceResponse(
            deviceId: device.deviceId, name: device.name, identityKey: Data(device.identityKey),
            createdAt: Date(milliseconds: device.createdAt), oneTimePreKeyCount: device.oneTimePreKeyCount)
    }
}

