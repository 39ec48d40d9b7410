import Foundation
import SecureChatAPI
import Testing

@testable import SecureChatClient

@Suite("Replies, edits, deletions, reactions, receipts and typing", .serialized)
struct SignalsTests {
    /// The same bytes as the web client's test (Tests/Web/client.test.mjs): both write one layout.
    static let profileEnvelope = #"{"avatar":{"attachmentId":"aaaaaaaaaaaaaaaaaaaaaaaaaa","contentType":"image/png","digest":"CQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk=","key":"BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=","name":"me.png","size":1234},"id":"p1","type":"profile","v":1}"#

    @Test("a profile envelope (the sender's avatar) has one JSON layout in Swift and in the web client")
    func profileEnvelope() throws {
        let envelope = try JSONDecoder().decode(Envelope.self, from: Data(Self.profileEnvelope.utf8))
        guard case .profile(let avatar?) = envelope.content else {
            Issue.record("not a profile with an avatar")
            return
        }
        #expect(avatar.key == Data(repeating: 7, count: 32) && avatar.size == 1234 && avatar.name == "me.png")
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        #expect(String(decoding: try encoder.encode(envelope), as: UTF8.self) == Self.profileEnvelope)
        let removed = Envelope(id: "p2", content: .profile(avatar: nil))
        #expect(String(decoding: try encoder.encode(removed), as: UTF8.self) == #"{"id":"p2","type":"profile","v":1}"#)
    }

    @Test("each kind of content arrives, and the timeline applies edits, deletions and reactions")
    func everyKind() async throws {
        try await withAliceAndBob { server, alice, bob, directories in
            let (aliceEvents, bobEvents) = (EventLog(alice), EventLog(bob))
            await alice.connect()
            await bob.connect()
            await alice.waitUntilCaughtUp()
            await bob.waitUntilCaughtUp()
            let (aliceId, bobId) = (await alice.userId, await bob.userId)

            let first = try await alice.send("lunch at 12?", to: "bob")
            let typo = try await alice.send("bring the mpa", to: "bob")
            let regret = try await alice.send("I'll be late", to: "bob")
            #expect(try await bobEvents.texts(3) == ["lunch at 12?", "bring the mpa", "I'll be late"])
            // Bob's client said "delivered" for each by itself.
            var delivered: Set<String> = []
            while delivered.count < 3 {
                let (kind, ids) = try await aliceEvents.receipt()
                #expect(kind == .delivered)
                delivered.formUnion(ids)
            }
            #expect(delivered == [first.id, typo.id, regret.id])

            try await alice.send(.edit(target: typo.id, text: "bring the map"), to: "bob")
            try await alice.send(.delete(target: regret.id), to: "bob")
            try await bob.send(.text("yes!", replyTo: first.id), to: "alice")
            try await bob.send(.reaction(target: first.id, emoji: "👍", remove: false), to: "alice")
            try await alice.send(.reaction(target: first.id, emoji: "👍", remove: false), to: "bob")
            try await alice.send(.reaction(target: first.id, emoji: "🎉", remove: false), to: "bob")
            try await alice.send(.reaction(target: first.id, emoji: "🎉", remove: true), to: "bob")
            // Bob, who did not write it, cannot edit Alice's message.
            try await bob.send(.edit(target: first.id, text: "forged"), to: "alice")
            try await alice.flush()
            try await bob.flush()
            for _ in 0..<5 { _ = try await bobEvents.message() }
            for _ in 0..<3 { _ = try await aliceEvents.message() }

            for client in [alice, bob] {
                let peer = client === alice ? bobId : aliceId
                let timeline = try await client.timeline(.direct(userId: peer))
                #expect(timeline.map(\.text) == ["lunch at 12?", "bring the map", nil, "yes!"])
                #expect(timeline[0].reactions == ["👍": [aliceId, bobId]])
                #expect(timeline[0].edited == false)
                #expect(timeline[1].edited && timeline[2].deleted)
                #expect(timeline[3].replyTo == first.id)
            }

            // Read receipts go to the sender; typing is relayed, never stored.
            let reply = try #require(try await alice.history(.direct(userId: bobId)).first { $0.envelope.content == .text("yes!", replyTo: first.id) })
            try await alice.markRead([reply])
            let (kind, ids) = try await bobEvents.next("a read receipt") { event -> (Content.Receipt, [String])? in
                guard case .message(let message) = event, case .receipt(let kind, let ids) = message.envelope.content, kind == .read else { return nil }
                return (kind, ids)
            }
            #expect(kind == .read && ids == [reply.id])
            try await bob.sendTyping(true, in: .direct(userId: aliceId))
            let typing = try await aliceEvents.next("typing") { if case .typing(let conversation, let sender, let started) = $0 { (conversation, sender, started) } else { nil } }
            #expect(typing.0 == .direct(userId: bobId) && typing.1.userId == bobId && typing.2)
            // A message after the typing indicator still decrypts (the ratchet stepped for it).
            try await bob.send("typed", to: "alice")
            #expect(try await aliceEvents.texts(1) == ["typed"])
        }    }
}
