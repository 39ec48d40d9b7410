import Foundation
import HTTPTypes
import NIOCore
import SecureChatAPI
import Testing

@testable import SecureChatServer

/// docs/OPERATIONS.md's backup and restore, done to the real binary: back up while it runs, wipe
/// everything, restore, and find accounts, keys, queued messages, history and attachments again.
extension RealBinaryTests {
    @Suite("Backup and restore of the real server binary", .serialized)
    struct BackupTests {
        static var pgTools: Bool { FileManager.default.isExecutableFile(atPath: "/usr/bin/pg_dump") }

        @Test("back up while running, wipe, restore: logins, queued messages, room history and attachments are all there", arguments: TestDatabase.available)
        func backupWipeRestore(database: TestDatabase) async throws {
            if database == .postgres, !Self.pgTools {
                if ProcessInfo.processInfo.environment["SECURECHAT_REQUIRE_CLUSTER"] != nil { Issue.record("pg_dump is missing") }
                return
            }
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("securechat-backup-\(UUID().uuidString)")
            defer { try? FileManager.default.removeItem(at: directory) }
            let data = directory.appendingPathComponent("data")
            let backup = directory.appendingPathComponent("backup")
            let server = try ServerProcess(dataDirectory: data, database: database)
            try await server.start()
            defer { server.stop(signal: SIGKILL) }

            let alice = try await TestUser.make("alice", on: server)
            let bob = try await TestUser.make("bob", on: server)
            let room = try await server.call(.post, "/v1/rooms", token: alice.accessToken, json: CreateRoomRequest(name: "Team"), as: RoomResponse.self)
            try await RoomTests.join(server, bob, room)
            let blob = Data((0..<70_000).map { UInt8(truncatingIfNeeded: $0 &* 31) })
            let (uploaded, body) = try await server.request(
                .post, "/v1/attachments?room=\(room.code)", token: alice.accessToken, json: nil, raw: ByteBuffer(bytes: blob),
                headers: [.contentLength: String(blob.count)])
            #expect(uploaded == .created)
            let attachment = try APIJSON.makeDecoder().decode(AttachmentResponse.self, from: body)
            // bob is offline: three messages wait for him, and one room message is in the history.
            let aliceSocket = try await TestSocket.connect(alice, port: server.port)
            for index in 0..<3 {
                try await aliceSocket.send(RealtimeTests.pairwise("before-\(index)", to: bob, "queued \(index)"))
                #expect(try await aliceSocket.next(matching: RealtimeTests.accepted)?.id == "before-\(index)")
            }
            try await aliceSocket.send(
                .send(.init(id: "room-0", room: room.code, ciphertext: Data("room message".utf8), attachmentIds: [attachment.attachmentId])))
            #expect(try await aliceSocket.next(matching: RealtimeTests.accepted)?.id == "room-0")

            // The backup, while the server runs.
            let binary = ServerProcess.binary.path
            let databaseArguments = server.databaseArguments
            let (status, output) = try await ToolProcess.run(binary, ["backup", "--data-dir", data.path, "--output", backup.path] + databaseArguments)
            #expect(status == 0, "\(output)")
            let dump = directory.appendingPathComponent("database.dump")
            if database == .postgres {
                let (url, schema) = try #require(server.postgresTarget)
                let (dumped, dumpOutput) = try await ToolProcess.run("pg_dump", ["--format=custom", "--schema=\(schema)", "--file=\(dump.path)", url])
                #expect(dumped == 0, "\(dumpOutput)")
            }
            // What happens after the backup is not in it.
            try await aliceSocket.send(RealtimeTests.pairwise("after", to: bob, "not in the backup"))
            #expect(try await aliceSocket.next(matching: RealtimeTests.accepted)?.id == "after")
            await aliceSocket.close()

            // Disaster: the server stops, its data folder and database are gone.
            #expect(server.stop(signal: SIGTERM) == 0)
            try FileManager.default.removeItem(at: data)
            if database == .postgres {
                let (url, schema) = try #require(server.postgresTarget)
                await TestDatabase.dropSchema(schema)
                let (restored, restoreOutput) = try await ToolProcess.run("pg_restore", ["--dbname=\(url)", dump.path])
                #expect(restored == 0, "\(restoreOutput)")
            }
            let (restoredStatus, restoredOutput) = try await ToolProcess.run(
                binary, ["restore", "--data-dir", data.path, "--from", backup.path] + databaseArguments)
            #expect(restoredStatus == 0, "\(restoredOutput)")
            // Restoring over a data folder in use is refused.
            let (again, againOutput) = try await ToolProcess.run(binary, ["restore", "--data-dir", data.path, "--from", backup.path] + databaseArguments)
            #expect(again != 0 && againOutput.contains("empty data folder"), "\(againOutput)")

            try await server.start()
            // The same keys: bob's password and even his access token from before still work.
            _ = try await server.call(.post, "/v1/sessions", json: LoginRequest(username: "bob", password: bob.password), as: TokenResponse.self)
            let bobSocket = try await TestSocket.connect(bob, port: server.port)
            var received: [String] = []
            // Room events and `caughtUp` come too; the messages are what matters.
            while let frame = try await bobSocket.next(timeout: 3) {
                guard case .message(let delivery) = frame else { continue }
                received.append(delivery.clientMessageId)
                if delivery.room == nil { #expect(String(decoding: delivery.ciphertext, as: UTF8.self).hasPrefix("queued ")) }
            }
            #expect(received == ["before-0", "before-1", "before-2", "room-0"])
            await bobSocket.close()
            let history = try await server.call(
                .get, "/v1/rooms/\(room.code)/messages", token: bob.accessToken, as: HistoryPage.self)
            #expect(history.messages.map(\.clientMessageId) == ["room-0"])
            let (downloaded, bytes) = try await server.request(.get, "/v1/attachments/\(attachment.attachmentId)", token: bob.accessToken)
            #expect(downloaded == .ok && bytes == blob)
            server.stop(signal: SIGTERM)
            await server.cleanUp()
        }

        @Test("a backup of a folder with no database, a restore of a backup with none into SQLite, or over a leftover log, is refused")
        func refusals() throws {
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("securechat-backup-\(UUID().uuidString)")
            defer { try? FileManager.default.removeItem(at: directory) }
            var configuration = ServerConfiguration()
            configuration.dataDirectory = directory.appendingPathComponent("wrong-folder")
            #expect(throws: Backup.Failure.self) {
                try Backup.create(configuration: configuration, destination: directory.appendingPathComponent("b1"), logger: .init(label: "backup-test"))
            }
            let withoutDatabase = directory.appendingPathComponent("b2")
            try FileManager.default.createDirectory(at: withoutDatabase.appendingPathComponent("secrets"), withIntermediateDirectories: true)
            #expect(throws: Backup.Failure.self) {
                try Backup.restore(configuration: configuration, source: withoutDatabase, logger: .init(label: "backup-test"))
            }
            try FileManager.default.createDirectory(at: configuration.dataDirectory, withIntermediateDirectories: true)
            _ = FileManager.default.createFile(atPath: withoutDatabase.appendingPathComponent("securechat.sqlite").path, contents: Data())
            _ = FileManager.default.createFile(atPath: configuration.dataDirectory.appendingPathComponent("securechat.sqlite-wal").path, contents: Data())
            #expect(throws: Backup.Failure.self) {
                try Backup.restore(configuration: configuration, source: withoutDatabase, logger: .init(label: "backup-test"))
            }
        }
    }
}
