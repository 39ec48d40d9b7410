import Foundation
import SecureChatAPI
import Testing

/// Two real server binaries on one PostgreSQL database behind a real nginx configured with
/// `deploy/nginx/securechat-proxy.conf`: clients reach instances round robin, deliveries cross
/// between them by LISTEN/NOTIFY, and an instance killed mid-traffic loses nothing.
extension RealBinaryTests {
    @Suite("Two server binaries behind nginx", .serialized)
    struct ClusterTests {
        static let enabled = TestDatabase.postgresURL != nil && NginxProcess.binary != nil
        static let skipped: Comment = "needs PostgreSQL (SECURECHAT_TEST_POSTGRES_URL) and nginx (apt-get install nginx)"
        static let messageCount = 2000

        @Test("in CI, nginx is there: the cluster tests run, never skip")
        func nginxPresentInCI() {
            if ProcessInfo.processInfo.environment["SECURECHAT_REQUIRE_CLUSTER"] != nil { #expect(Self.enabled, "\(Self.skipped)") }
        }

        @Test(
            "kill -9 of one instance, then of the other, during sustained traffic through nginx: clients reconnect to the survivor and resume; nothing acknowledged is lost, nothing is processed twice, order holds",
            .enabled(if: enabled, skipped))
        func killInstancesBehindNginx() async throws {
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("securechat-cluster-\(UUID().uuidString)")
            defer { try? FileManager.default.removeItem(at: directory) }
            let first = try ServerProcess(dataDirectory: directory, database: .postgres)
            let second = ServerProcess(sharing: first)
            let instances = [first, second]
            let ports = [try await NginxProcess.reservePort(), try await NginxProcess.reservePort()]
            try await first.start(port: ports[0])
            defer { first.stop(signal: SIGKILL) }
            try await second.start(port: ports[1])
            defer { second.stop(signal: SIGKILL) }
            let nginx = try await NginxProcess.start(upstreamPorts: ports)
            defer { nginx.stop() }
            let api = HTTPTransport(port: nginx.port)
            #expect(try await api.request(.get, "/ready").status == .ok)
            let alice = try await TestUser.make("alice", on: api)
            let bob = try await TestUser.make("bob", on: api)
            let tally = DeliveryTally()

            for round in 0..<3 {
                // Consecutive connections alternate between the instances (round robin, one worker).
                let aliceSocket = try await TestSocket.connect(alice, port: nginx.port)
                let bobSocket = try await TestSocket.connect(bob, port: nginx.port, resumeAfter: await tally.lastSeq)
                await tally.stopSender(false)
                let victim = round < 2 ? instances[round] : nil
                let crashAfter = (round + 1) * Self.messageCount / 3 + 37
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { await SustainedTraffic.send(count: Self.messageCount, from: aliceSocket, to: bob, tally: tally) }
                    group.addTask { await SustainedTraffic.receive(count: Self.messageCount, on: bobSocket, tally: tally) }
                    if let victim {
                        while await tally.accepted.count < crashAfter, await !tally.senderStopped { try await Task.sleep(for: .milliseconds(5)) }
                        victim.stop(signal: SIGKILL)
                    }
                    try await group.waitForAll()
                }
                if round == 0 {
                    // The two sockets were on different instances: the kill cut one of them.
                    let aliceCut = await aliceSocket.isFinished
                    let bobCut = await bobSocket.isFinished
                    let cut = aliceCut || bobCut
                    #expect(cut, "killing an instance ended neither socket")
                }
                await aliceSocket.close()
                await bobSocket.close()
                if let victim { try await victim.start(port: ports[round]) }
            }
            await tally.check(count: Self.messageCount)
            first.stop(signal: SIGKILL)
            second.stop(signal: SIGKILL)
            await first.cleanUp()
        }
    }
}
