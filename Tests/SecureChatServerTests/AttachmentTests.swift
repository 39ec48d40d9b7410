import Foundation
import NIOCore
import SecureChatAPI
import Testing

@testable import SecureChatServer

@Suite("Attachment storage")
struct AttachmentTests {
    static func blob(_ size: Int, seed: UInt8 = 7) -> ByteBuffer {
        ByteBuffer(bytes: (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ Int(seed)) })
    }

    @Test("an upload for a room is readable by its members only, byte for byte", arguments: TestDatabase.available)
    func roomAttachment(database: TestDatabase) async throws {
        try await TestServer.withLive(database: database) { server in
            let alice = try await TestUser.make("alice", on: server)
            let bob = try await TestUser.make("bob", on: server)
            let eve = try await TestUser.make("eve", on: server)
            let room = try await RoomTests.createRoom(server, alice)
            try await RoomTests.join(server, bob, room)
            let body = Self.blob(3 * 1024 * 1024 + 17)
            let (status, response) = try await server.request(
                .post, "/v1/attachments?room=\(room.code)", token: alice.accessToken, raw: body,
                headers: [.contentLength: String(body.readableBytes)])
            #expect(status == .created)
            let attachment = try APIJSON.makeDecoder().decode(AttachmentResponse.self, from: response)
            #expect(attachment.size == Int64(body.readableBytes))
            let download = try await server.request(.get, "/v1/attachments/\(attachment.attachmentId)", token: bob.accessToken)
            #expect(download.status == .ok)
            #expect(download.body == Data(buffer: body))
            try await server.expectError(.get, "/v1/attachments/\(attachment.attachmentId)", token: eve.accessToken, status: .notFound, code: .notFound)
            // Joining later does not open what was shared before, as with history.
            server.clock.advance(by: 1)
            try await RoomTests.join(server, eve, room)
            try await server.expectError(.get, "/v1/attachments/\(attachment.attachmentId)", token: eve.accessToken, status: .notFound, code: .notFound)
            try await server.expectError(.get, "/v1/attachments/../../secrets", token: bob.accessToken, status: .notFound, code: .notFound)
            try await server.expectError(.delete, "/v1/attachments/\(attachment.attachmentId)", token: bob.accessToken, status: .notFound, code: .notFound)
            #expect(try await server.request(.delete, "/v1/attachments/\(attachment.attachmentId)", token: alice.accessToken).status == .noContent)
            try await server.expectError(.get, "/v1/attachments/\(attachment.attachmentId)", token: bob.accessToken, status: .notFound, code: .notFound)
            #expect(!FileManager.default.fileExists(atPath: server.dataDirectory.appendingPathComponent("attachments/\(attachment.attachmentId)").path))
        }
    }

    @Test("size limit, quota and unknown recipients are refused before anything is kept", arguments: TestDatabase.available)
    func limits(database: TestDatabase) async throws {
        try await TestServer.withLive(database: database, configure: {
            $0.attachmentMaxBytes = 1000
            $0.attachmentQuotaBytes = 1500
        }) { server in
            let alice = try await TestUser.make("alice", on: server)
            try await server.expectError(
                .post, "/v1/attachments", token: alice.accessToken, raw: Self.blob(1001), headers: [.contentLength: "1001"],
                status: .contentTooLarge, code: .payloadTooLarge)
            let first = try await server.request(.post, "/v1/attachments", token: alice.accessToken, raw: Self.blob(900), headers: [.contentLength: "900"])
            #expect(first.status == .created)
            try await server.expectError(
                .post, "/v1/attachments", token: alice.accessToken, raw: Self.blob(900), headers: [.contentLength: "900"],
                status: .contentTooLarge, code: .quotaExceeded)
            try await server.expectError(
                .post, "/v1/attachments?recipients=nosuchuser", token: alice.accessToken, raw: Self.blob(10), headers: [.contentLength: "10"],
                status: .notFound, code: .notFound)
            let files = try FileManager.default.contentsOfDirectory(atPath: server.dataDirectory.appendingPathComponent("attachments").path)
            #expect(files.count == 1)
        }
    }

    @Test("a direct attachment is readable by the named recipients, and goes when the message that points at it expires", arguments: TestDatabase.available)
    func directAttachmentExpiry(database: TestDatabase) async throws {
        try await TestServer.withLive(database: database, configure: {
            $0.sweepInterval = 0.1
            $0.messageRetention = 3600
            $0.accessTokenLifetime = 7200
        }) { server in
            let alice = try await TestUser.make("alice", on: server)
            let bob = try await TestUser.make("bob", on: server)
            let eve = try await TestUser.make("eve", on: server)
            let (status, response) = try await server.request(
                .post, "/v1/attachments?recipients=\(bob.userId)", token: alice.accessToken, raw: Self.blob(5000), headers: [.contentLength: "5000"])
            #expect(status == .created)
            let attachment = try APIJSON.makeDecoder().decode(AttachmentResponse.self, from: response)
            #expect(try await server.request(.get, "/v1/attachments/\(attachment.attachmentId)", token: bob.accessToken).status == .ok)
            try await server.expectError(.get, "/v1/attachments/\(attachment.attachmentId)", token: eve.accessToken, status: .notFound, code: .notFound)
            let socket = try await TestSocket.connect(alice, port: server.port)
            // A message may only point at the sender's own uploads.
            try await socket.send(
                .send(.init(id: "bad", recipients: [.init(userId: bob.userId, deviceId: bob.deviceId, ciphertext: Data("x".utf8))], attachmentIds: ["aaaaaaaaaaaaaaaaaaaaaaaaaa"])))
            #expect(try await socket.next(matching: RealtimeTests.error)?.code == .notFound)
            try await socket.send(
                .send(.init(id: "file", recipients: [.init(userId: bob.userId, deviceId: bob.deviceId, ciphertext: Data("pointer".utf8))], attachmentIds: [attachment.attachmentId])))
            #expect(try await socket.next(matching: RealtimeTests.accepted)?.id == "file")
            server.clock.advance(by: 3601)
            var gone = false
            for _ in 0..<50 where !gone {
                try await Task.sleep(for: .milliseconds(100))
                gone = try await server.request(.get, "/v1/attachments/\(attachment.attachmentId)", token: bob.accessToken).status == .notFound
            }
            #expect(gone)
            #expect(!FileManager.default.fileExists(atPath: server.dataDirectory.appendingPathComponent("attachments/\(attachment.attachmentId)").path))
            await socket.close()
        }
    }
}
