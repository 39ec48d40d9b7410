import Foundation
import HTTPTypes
import NIOCore
import SecureChatAPI
import Testing

/// The real binary with JSON logs at trace level, the most it ever says, through a workload that
/// touches every kind of secret: the logs must be JSON lines that never contain any of them.
@Suite("Logs of the real server binary")
struct LogHygieneTests {
    @Test("JSON log lines with request ids, and no password, token, key, room code or message content at any level", arguments: TestDatabase.available)
    func noSecretsInLogs(database: TestDatabase) async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("securechat-logs-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        let server = try ServerProcess(dataDirectory: folder, database: database)
        let metricsToken = "metrics-token-" + UUID().uuidString
        try await server.start(extraArguments: ["--log-format", "json", "--log-level", "trace"], environment: ["SECURECHAT_METRICS_TOKEN": metricsToken])
        defer { server.stop(signal: SIGKILL) }
        var secrets: [String: String] = ["metrics token": metricsToken]

        let alice = try await TestUser.make("alice", on: server, password: "alice's secret passphrase")
        let bob = try await TestUser.make("bob", on: server, password: "bob's secret passphrase")
        secrets["alice's password"] = alice.password
        secrets["bob's password"] = bob.password
        secrets["alice's access token"] = alice.accessToken
        secrets["alice's refresh token"] = alice.refreshToken
        secrets["bob's access token"] = bob.accessToken
        try await server.expectError(
            .post, "/v1/sessions", json: LoginRequest(username: "alice", password: "a wrong guess at it"), status: .unauthorized,
            code: .invalidCredentials)
        secrets["a wrong password"] = "a wrong guess at it"
        let refreshed = try await server.call(
            .post, "/v1/sessions/refresh", json: RefreshRequest(refreshToken: alice.refreshToken), as: TokenResponse.self)
        secrets["a refreshed access token"] = refreshed.accessToken
        secrets["a refreshed refresh token"] = refreshed.refreshToken
        try await server.expectError(
            .post, "/v1/sessions/refresh", json: RefreshRequest(refreshToken: alice.refreshToken), status: .unauthorized, code: .refreshTokenReused)
        let carol = try await TestUser.make("carol", on: server)

        let room = try await server.call(
            .post, "/v1/rooms", token: carol.accessToken, json: CreateRoomRequest(name: "Team", password: "room passphrase here"),
            as: RoomResponse.self)
        secrets["the room password"] = "room passphrase here"
        secrets["the room code"] = room.code
        try await server.expectError(
            .post, "/v1/rooms/\(room.code)/join", token: bob.accessToken, json: JoinRoomRequest(password: "not the room passphrase"),
            status: .forbidden, code: .wrongRoomPassword)
        _ = try await server.call(
            .post, "/v1/rooms/\(room.code)/join", token: bob.accessToken, json: JoinRoomRequest(password: "room passphrase here"),
            as: RoomResponse.self)

        let attachmentBytes = Data("attachment-content-marker-".utf8) + Data((0..<4096).map { UInt8(truncatingIfNeeded: $0 * 7) })
        let (status, body) = try await server.request(
            .post, "/v1/attachments?room=\(room.code)", token: bob.accessToken, json: nil, raw: ByteBuffer(bytes: attachmentBytes),
            headers: [.contentLength: String(attachmentBytes.count), .contentType: "application/octet-stream"])
        #expect(status == .created)
        let attachment = try APIJSON.makeDecoder().decode(AttachmentResponse.self, from: body)
        // An attachment id is no credential (a download checks who asks), and debug lines name
        // its file; the content must never show.
        secrets["attachment content"] = "attachment-content-marker-"
        _ = try await server.call(
            .put, "/v1/profile", token: bob.accessToken, json: ProfileUpdate(displayName: "Bob", statusText: "status-marker-text", avatarAttachmentId: nil),
            as: Profile.self)

        let pairwise = Data("pairwise-ciphertext-marker".utf8)
        let roomCiphertext = Data("room-ciphertext-marker".utf8)
        secrets["pairwise ciphertext"] = "pairwise-ciphertext-marker"
        secrets["pairwise ciphertext in base64"] = pairwise.base64EncodedString()
        secrets["room ciphertext in base64"] = roomCiphertext.base64EncodedString()
        // The reused refresh token ended that session: alice logs in again.
        var refreshedAlice = alice
        refreshedAlice.accessToken = try await server.call(
            .post, "/v1/sessions", json: LoginRequest(username: "alice", password: alice.password), as: TokenResponse.self
        ).accessToken
        secrets["alice's second access token"] = refreshedAlice.accessToken
        let aliceSocket = try await TestSocket.connect(refreshedAlice, port: server.port)
        let bobSocket = try await TestSocket.connect(bob, port: server.port)
        try await aliceSocket.send(
            .send(.init(id: "p1", recipients: [RecipientCiphertext(userId: bob.userId, deviceId: bob.deviceId, ciphertext: pairwise)])))
        #expect(try await aliceSocket.next(matching: RealtimeTests.accepted)?.id == "p1")
        let delivered = try #require(try await bobSocket.next(matching: RealtimeTests.message))
        try await bobSocket.send(.ack(.init(seq: delivered.seq)))
        try await bobSocket.send(.send(.init(id: "r1", room: room.code, ciphertext: roomCiphertext, attachmentIds: [attachment.attachmentId])))
        #expect(try await bobSocket.next(matching: RealtimeTests.accepted)?.id == "r1")
        let forged = try await TestSocket(port: server.port)
        try await forged.send(.hello(.init(token: refreshed.accessToken + "x", deviceId: alice.deviceId)))
        _ = try await forged.next(matching: RealtimeTests.error)

        let (metricsStatus, _) = try await server.request(
            .get, "/metrics", token: nil, json: nil, raw: nil, headers: [.authorization: "Bearer \(metricsToken)"])
        #expect(metricsStatus == .ok)
        let (changed, _) = try await server.request(
            .put, "/v1/account/password", token: carol.accessToken,
            json: ChangePasswordRequest(currentPassword: carol.password, newPassword: "carol's brand new passphrase"))
        #expect(changed == .noContent)
        secrets["carol's old password"] = carol.password
        secrets["carol's new password"] = "carol's brand new passphrase"
        await aliceSocket.close()
        await bobSocket.close()
        #expect(server.stop(signal: SIGTERM) == 0)
        await server.cleanUp()

        let lines = server.log.split(separator: "\n", omittingEmptySubsequences: true)
        #expect(lines.count > 50)
        var requestIds = Set<String>()
        for line in lines {
            let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            #expect(object != nil, "not a JSON object: \(line)")
            guard let object else { continue }
            #expect(object["time"] is String && object["level"] is String && object["message"] is String, "\(line)")
            if object["message"] as? String == "request", let id = object["hb.request.id"] as? String { requestIds.insert(id) }
        }
        // Every request has its own id (one line each at least; /metrics logs at debug, and trace shows it).
        #expect(requestIds.count >= 20)
        let log = server.log
        for (name, secret) in secrets {
            #expect(!log.contains(secret), "the logs contain \(name)")
        }
    }
}
