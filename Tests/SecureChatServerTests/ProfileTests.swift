import Foundation
import NIOCore
import SecureChatAPI
import Testing

@testable import SecureChatServer

@Suite("Profiles and contacts")
struct ProfileTests {
    @Test("profiles are visible to the user and to co-members only; an avatar is one's own attachment", arguments: TestDatabase.available)
    func visibility(database: TestDatabase) async throws {
        try await TestServer.withLive(database: database) { server in
            let alice = try await TestUser.make("alice", on: server)
            let bob = try await TestUser.make("bob", on: server)
            let eve = try await TestUser.make("eve", on: server)
            let (status, body) = try await server.request(
                .post, "/v1/attachments", token: alice.accessToken, raw: ByteBuffer(bytes: [1, 2, 3, 4]), headers: [.contentLength: "4"])
            #expect(status == .created)
            let avatar = try APIJSON.makeDecoder().decode(AttachmentResponse.self, from: body).attachmentId
            let updated = try await server.call(
                .put, "/v1/profile", token: alice.accessToken,
                json: ProfileUpdate(displayName: "Alice A.", statusText: "around", avatarAttachmentId: avatar), as: Profile.self)
            #expect(updated.displayName == "Alice A." && updated.avatarAttachmentId == avatar)
            try await server.expectError(
                .put, "/v1/profile", token: bob.accessToken, json: ProfileUpdate(displayName: "Bob", statusText: "", avatarAttachmentId: avatar),
                status: .notFound, code: .notFound)
            try await server.expectError(
                .put, "/v1/profile", token: bob.accessToken,
                json: ProfileUpdate(displayName: String(repeating: "b", count: 65), statusText: "", avatarAttachmentId: nil),
                status: .badRequest, code: .badRequest)
            // Strangers: not found, not forbidden.
            try await server.expectError(.get, "/v1/users/\(alice.userId)/profile", token: bob.accessToken, status: .notFound, code: .notFound)
            try await server.expectError(.get, "/v1/attachments/\(avatar)", token: bob.accessToken, status: .notFound, code: .notFound)
            let room = try await RoomTests.createRoom(server, alice)
            try await RoomTests.join(server, bob, room)
            let seen = try await server.call(.get, "/v1/users/\(alice.userId)/profile", token: bob.accessToken, as: Profile.self)
            #expect(seen == updated)
            #expect(try await server.request(.get, "/v1/attachments/\(avatar)", token: bob.accessToken).body == Data([1, 2, 3, 4]))
            try await server.expectError(.get, "/v1/users/\(alice.userId)/profile", token: eve.accessToken, status: .notFound, code: .notFound)
            // Deleting the picture clears the avatar.
            #expect(try await server.request(.delete, "/v1/attachments/\(avatar)", token: alice.accessToken).status == .noContent)
            #expect(try await server.call(.get, "/v1/profile", token: alice.accessToken, as: Profile.self).avatarAttachmentId == nil)
        }
    }

    @Test("looking up a user by name and listing their devices consumes no prekeys", arguments: TestDatabase.available)
    func lookUpAndDevices(database: TestDatabase) async throws {
        try await TestServer.withLive(database: database) { server in
            let alice = try await TestUser.make("alice", on: server, oneTimePreKeys: 3)
            let bob = try await TestUser.make("bob", on: server)
            let found = try await server.call(.get, "/v1/users?username=Alice", token: bob.accessToken, as: UserLookupResponse.self)
            #expect(found == UserLookupResponse(userId: alice.userId, username: "alice"))
            try await server.expectError(.get, "/v1/users?username=nobody", token: bob.accessToken, status: .notFound, code: .notFound)
            try await server.expectError(.get, "/v1/users", token: bob.accessToken, status: .badRequest, code: .badRequest)
            let devices = try await server.call(.get, "/v1/users/\(alice.userId)/devices", token: bob.accessToken, as: UserDevicesResponse.self)
            #expect(devices.devices == [PublicDevice(deviceId: alice.deviceId, identityKey: Data(alice.identity.publicKey.rawRepresentation))])
            let count = try await server.call(
                .get, "/v1/devices/\(alice.deviceId)/one-time-prekeys", token: alice.accessToken, as: PreKeyCountResponse.self)
            #expect(count.count == 3)
        }
    }
}
