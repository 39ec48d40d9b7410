import Foundation
import SecureChatAPI
import SecureChatKeys
import SecureChatProtocol
import Testing

/// A person with an account, a session and one device whose keys are real.
struct TestUser: Sendable {
    let username: String
    let password: String
    let userId: String
    var accessToken: String
    var refreshToken: String
    var deviceId: UInt32 = 0
    let identity: IdentityKeyPair

    var address: DeviceAddress { DeviceAddress(userId: userId, deviceId: deviceId) }

    /// Registers and logs in `username`, then registers a device with `oneTimePreKeys` keys.
    static func make(
        _ username: String, on server: some APITransport, oneTimePreKeys: Int = 20, password: String = "correct horse battery staple"
    ) async throws -> TestUser {
        _ = try await server.call(.post, "/v1/accounts", json: RegisterRequest(username: username, password: password), as: AccountResponse.self)
        let tokens = try await server.call(.post, "/v1/sessions", json: LoginRequest(username: username, password: password), as: TokenResponse.self)
        var user = TestUser(
            username: username, password: password, userId: tokens.userId, accessToken: tokens.accessToken,
            refreshToken: tokens.refreshToken, identity: IdentityKeyPair())
        let device = try await server.call(
            .post, "/v1/devices", token: user.accessToken, json: user.deviceRegistration(oneTimePreKeys: oneTimePreKeys),
            as: DeviceResponse.self)
        user.deviceId = device.deviceId
        return user
    }

    func deviceRegistration(oneTimePreKeys count: Int, firstId: UInt32 = 1) -> DeviceRegistration {
        DeviceRegistration(
            name: "test device", identityKey: Data(identity.publicKey.rawRepresentation),
            signedPreKey: Data(signedPreKey(id: 1).serialized), oneTimePreKeys: Self.oneTimePreKeys(count: count, firstId: firstId))
    }

    func signedPreKey(id: UInt32) -> SignedPreKeyPublic {
        identity.makeSignedPreKey(id: id, createdAt: 1_790_000_000).publicPart
    }

    static func oneTimePreKeys(count: Int, firstId: UInt32 = 1) -> [Data] {
        (0..<count).map { offset in Data(OneTimePreKeyPair(id: firstId + UInt32(offset)).publicPart.serialized) }
    }
}
