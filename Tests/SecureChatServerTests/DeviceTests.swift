import Foundation
import SecureChatAPI
import SecureChatKeys
import SecureChatProtocol
import Testing

@testable import SecureChatServer

@Suite("Devices and prekeys")
struct DeviceTests {
    @Test("a bundle whose signature or keys do not verify is refused at upload, every byte of the signed prekey checked", arguments: TestDatabase.available)
    func uploadVerification(database: TestDatabase) async throws {
        try await TestServer.withLive(database: database) { server in
            let alice = try await TestUser.make("alice", on: server, oneTimePreKeys: 0)
            let registration = alice.deviceRegistration(oneTimePreKeys: 1)
            // Every single-byte change of the signed prekey encoding is refused.
            let signed = [UInt8](registration.signedPreKey)
            for index in signed.indices {
                var tampered = signed
                tampered[index] ^= 0x01
                var body = registration
                body.signedPreKey = Data(tampered)
                let (status, response) = try await server.request(.post, "/v1/devices", token: alice.accessToken, json: body)
                let code = try APIJSON.makeDecoder().decode(APIErrorBody.self, from: response).error.code
                #expect(status == .unprocessableContent && [.invalidKey, .invalidSignature].contains(code), "byte \(index)")
            }
            // A signed prekey signed by someone else.
            var foreign = registration
            foreign.signedPreKey = Data(IdentityKeyPair().makeSignedPreKey(id: 1, createdAt: 1).publicPart.serialized)
            try await server.expectError(
                .post, "/v1/devices", token: alice.accessToken, json: foreign, status: .unprocessableContent, code: .invalidSignature)
            // A small-order identity key and a malformed one-time prekey.
            var weak = registration
            weak.identityKey = Data([1] + [UInt8](repeating: 0, count: 31))
            try await server.expectError(
                .post, "/v1/devices", token: alice.accessToken, json: weak, status: .unprocessableContent, code: .invalidKey)
            var badOneTime = registration
            badOneTime.oneTimePreKeys = [Data(count: 38)]
            try await server.expectError(
                .post, "/v1/devices", token: alice.accessToken, json: badOneTime, status: .unprocessableContent, code: .invalidKey)
            var duplicateIds = registration
            duplicateIds.oneTimePreKeys = TestUser.oneTimePreKeys(count: 1) + TestUser.oneTimePreKeys(count: 1)
            try await server.expectError(
                .post, "/v1/devices", token: alice.accessToken, json: duplicateIds, status: .unprocessableContent, code: .duplicatePreKey)
            var tooMany = registration
            tooMany.oneTimePreKeys = TestUser.oneTimePreKeys(count: APILimits.oneTimePreKeysPerUpload + 1)
            try await server.expectError(
                .post, "/v1/devices", token: alice.accessToken, json: tooMany, status: .unprocessableContent, code: .tooManyPreKeys)
            // Only the first device exists.
            let devices = try await server.call(.get, "/v1/devices", token: alice.accessToken, as: DeviceListResponse.self)
            #expect(devices.devices.map(\.deviceId) == [alice.deviceId])
        }
    }

    @Test("claimed bundles verify on the client, and each one-time prekey is handed out once under 24 concurrent claims", arguments: TestDatabase.available)
    func concurrentClaims(database: TestDatabase) async throws {
        try await TestServer.withLive(database: database) { server in
            let alice = try await TestUser.make("alice", on: server, oneTimePreKeys: 10)
            let bob = try await TestUser.make("bob", on: server)
            let claims = try await withThrowingTaskGroup(of: BundleResponse.self) { group in
                for _ in 0..<24 {
                    group.addTask {
                        try await server.call(.post, "/v1/users/\(alice.userId)/bundles", token: bob.accessToken, as: BundleResponse.self)
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            let handedOut = claims.compactMap { $0.devices.first?.oneTimePreKey }
            #expect(handedOut.count == 10)
            #expect(Set(handedOut).count == 10)
            for claim in claims {
                let device = try #require(claim.devices.first)
                let bundle = try PreKeyBundle(
                    identityKey: try IdentityKey(rawRepresentation: device.identityKey),
                    signedPreKey: try SignedPreKeyPublic(
                        serialized: device.signedPreKey, signedBy: try IdentityKey(rawRepresentation: device.identityKey)),
                    oneTimePreKey: try device.oneTimePreKey.map { try OneTimePreKeyPublic(serialized: $0) })
                #expect(bundle.identityKey == alice.identity.publicKey)
            }
            let count = try await server.call(
                .get, "/v1/devices/\(alice.deviceId)/one-time-prekeys", token: alice.accessToken, as: PreKeyCountResponse.self)
            #expect(count == PreKeyCountResponse(count: 0, low: true))
        }
    }

    @Test("a device is told over its socket when its one-time prekeys run low, and can upload more", arguments: TestDatabase.available)
    func lowSupply(database: TestDatabase) async throws {
        try await TestServer.withLive(database: database) { server in
            let alice = try await TestUser.make("alice", on: server, oneTimePreKeys: APILimits.oneTimePreKeysLowWatermark)
            let bob = try await TestUser.make("bob", on: server)
            let socket = try await TestSocket.connect(alice, port: server.port)
            _ = try await server.call(.post, "/v1/users/\(alice.userId)/bundles", token: bob.accessToken, as: BundleResponse.self)
            let low = try await socket.next { frame -> Int? in
                if case .preKeysLow(let low) = frame { return low.count }
                return nil
            }
            #expect(low == APILimits.oneTimePreKeysLowWatermark - 1)
            let upload = try await server.call(
                .post, "/v1/devices/\(alice.deviceId)/one-time-prekeys", token: alice.accessToken,
                json: OneTimePreKeyUpload(oneTimePreKeys: TestUser.oneTimePreKeys(count: 50, firstId: 1000)), as: PreKeyCountResponse.self)
            #expect(upload == PreKeyCountResponse(count: 59, low: false))
            try await server.expectError(
                .post, "/v1/devices/\(alice.deviceId)/one-time-prekeys", token: alice.accessToken,
                json: OneTimePreKeyUpload(oneTimePreKeys: TestUser.oneTimePreKeys(count: 1, firstId: 1000)), status: .conflict,
                code: .duplicatePreKey)
            await socket.close()
        }
    }

    @Test("the signed prekey is replaced only with one the device's identity signed", arguments: TestDatabase.available)
    func signedPreKeyReplacement(database: TestDatabase) async throws {
        try await TestServer.withLive(database: database) { server in
            let alice = try await TestUser.make("alice", on: server)
            let bob = try await TestUser.make("bob", on: server)
            let next = alice.signedPreKey(id: 2)
            let replaced = try await server.request(
                .put, "/v1/devices/\(alice.deviceId)/signed-prekey", token: alice.accessToken,
                json: SignedPreKeyUpload(signedPreKey: Data(next.serialized)))
            #expect(replaced.status == .noContent)
            try await server.expectError(
                .put, "/v1/devices/\(alice.deviceId)/signed-prekey", token: alice.accessToken,
                json: SignedPreKeyUpload(signedPreKey: Data(IdentityKeyPair().makeSignedPreKey(id: 3, createdAt: 1).publicPart.serialized)),
                status: .unprocessableContent, code: .invalidSignature)
            let claim = try await server.call(.post, "/v1/users/\(alice.userId)/bundles", token: bob.accessToken, as: BundleResponse.self)
            #expect(claim.devices.first?.signedPreKey == Data(next.serialized))
            // Device paths are the caller's own: the same id from Bob changes Bob's device, never Alice's.
            let bobs = try await server.request(
                .put, "/v1/devices/\(alice.deviceId)/signed-prekey", token: bob.accessToken,
                json: SignedPreKeyUpload(signedPreKey: Data(bob.signedPreKey(id: 2).serialized)))
            #expect(bobs.status == .noContent)
            let again = try await server.call(.post, "/v1/users/\(alice.userId)/bundles", token: bob.accessToken, as: BundleResponse.self)
            #expect(again.devices.first?.signedPreKey == Data(next.serialized))
            try await server.expectError(
                .put, "/v1/devices/77/signed-prekey", token: bob.accessToken,
                json: SignedPreKeyUpload(signedPreKey: Data(bob.signedPreKey(id: 2).serialized)), status: .notFound, code: .notFound)
        }
    }

    @Test("device ids are never reused after a device is removed", arguments: TestDatabase.available)
    func deviceIdsNotReused(database: TestDatabase) async throws {
        try await TestServer.withLive(database: database) { server in
            let alice = try await TestUser.make("alice", on: server)
            let second = try await server.call(
                .post, "/v1/devices", token: alice.accessToken, json: alice.deviceRegistration(oneTimePreKeys: 0), as: DeviceResponse.self)
            #expect(second.deviceId == alice.deviceId + 1)
            #expect(try await server.request(.delete, "/v1/devices/\(second.deviceId)", token: alice.accessToken).status == .noContent)
            let third = try await server.call(
                .post, "/v1/devices", token: alice.accessToken, json: alice.deviceRegistration(oneTimePreKeys: 0), as: DeviceResponse.self)
            #expect(third.deviceId == second.deviceId + 1)
            try await server.expectError(.delete, "/v1/devices/\(second.deviceId)", token: alice.accessToken, status: .notFound, code: .notFound)
            try await server.expectError(.delete, "/v1/devices/banana", token: alice.accessToken, status: .notFound, code: .notFound)
        }
    }
}
