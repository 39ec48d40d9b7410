import CompressNIO
import Foundation
import NIOCore
import NIOEmbedded
import NIOWebSocket
import SecureChatAPI
import SecureChatTestSupport
import Testing

@testable import SecureChatServer

@Suite("permessage-deflate negotiation")
struct CompressionNegotiationTests {
    static let answer = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"

    @Test(
        "acceptable offers are answered without context takeover",
        arguments: [
            ("permessage-deflate", answer),
            ("permessage-deflate; client_max_window_bits", answer),
            ("permessage-deflate; client_max_window_bits=10; server_no_context_takeover", answer),
            ("x-webkit-deflate-frame, permessage-deflate; client_no_context_takeover", answer),
            ("permessage-deflate; server_max_window_bits=12", answer + "; server_max_window_bits=12"),
            // The first offer is declined (an unknown parameter), the second accepted.
            ("permessage-deflate; mystery=1, permessage-deflate", answer),
        ])
    func accepted(offer: String, expected: String) {
        #expect(PerMessageDeflateAgreement.negotiate(offers: [offer])?.responseHeader == expected)
    }

    @Test(
        "offers RFC 7692 says to decline are declined",
        arguments: [
            "permessage-deflate; mystery", "permessage-deflate; client_max_window_bits=16", "permessage-deflate; client_max_window_bits=7",
            "permessage-deflate; server_max_window_bits", "permessage-deflate; server_max_window_bits=8",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover", "permessage-deflate; client_no_context_takeover=1",
            "x-webkit-deflate-frame", "", "permessage-deflate; ", "permessage-deflate;=", "permessage-deflate; ;x", "permessage-deflate; =1",
            "permessage-deflate; client_max_window_bits=", "permessage-deflate;;",
        ])
    func declined(offer: String) {
        #expect(PerMessageDeflateAgreement.negotiate(offers: [offer]) == nil)
    }

    /// The header is read before authentication: no value may crash it.
    @Test("random headers made of the grammar's characters are answered or declined, never a crash")
    func randomHeaders() {
        var generator = SeededGenerator(seed: 7692)
        let pieces = ["permessage-deflate", ";", "=", ",", " ", "\"", "server_no_context_takeover", "client_max_window_bits", "15", "8", "x", ""]
        var accepted = 0
        for _ in 0..<20_000 {
            let header = (0..<Int.random(in: 0...8, using: &generator)).map { _ in pieces.randomElement(using: &generator)! }.joined()
            if let agreement = PerMessageDeflateAgreement.negotiate(offers: [header]) {
                accepted += 1
                #expect(agreement.responseHeader.hasPrefix(CompressionNegotiationTests.answer), "\(header)")
            }
        }
        #expect(accepted > 0)
    }
}

@Suite("permessage-deflate on live sockets")
struct CompressionTests {
    static let offer = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits"

    /// Raw deflate with a sync flush and its 00 00 ff ff tail removed, as RFC 7692 sends a message.
    static func deflate(_ bytes: [UInt8]) throws -> [UInt8] {
        let compressor = try ZlibCompressor(algorithm: .deflate)
        var input = ByteBuffer(bytes: bytes)
        var output = ByteBuffer()
        output.reserveCapacity(compressor.maxSize(from: input))
        try compressor.deflate(from: &input, to: &output, flush: .sync)
        return Array(output.readableBytesView.dropLast(4))
    }

    static func inflate(_ bytes: [UInt8]) throws -> [UInt8] {
        let decompressor = try ZlibDecompressor(algorithm: .deflate)
        var input = ByteBuffer(bytes: bytes + [0, 0, 0xff, 0xff])
        var output = ByteBuffer()
        output.reserveCapacity(1 << 21)
        do { try decompressor.inflate(from: &input, to: &output) } catch let error as CompressNIOError where error == .inputBufferOverflow {}
        return Array(output.readableBytesView)
    }

    /// A socket that agreed to compression and said a compressed hello.
    static func compressedSocket(_ user: TestUser, port: Int) async throws -> RawWebSocket {
        let socket = try await RawWebSocket.connect(port: port, extraHeaders: [offer])
        #expect(socket.status == 101)
        #expect(socket.responseHead.contains("Sec-WebSocket-Extensions: \(CompressionNegotiationTests.answer)"))
        let hello = try APIJSON.makeEncoder().encode(ClientFrame.hello(.init(token: user.accessToken, deviceId: user.deviceId)))
        try await socket.send(.init(opcode: RawWebSocket.Opcode.text, payload: try deflate(Array(hello))), reservedBits: 0b100)
        let welcome = try #require(try await socket.next())
        #expect(String(decoding: welcome.rsv1 ? try inflate(welcome.payload) : welcome.payload, as: UTF8.self).contains(#""type":"welcome""#))
        return socket
    }

    /// The next data frame as a server frame, inflated when compressed.
    static func nextFrame(_ socket: RawWebSocket) async throws -> (ServerFrame, compressed: Bool)? {
        while let frame = try await socket.next() {
            guard frame.opcode == RawWebSocket.Opcode.text else { continue }
            let text = frame.rsv1 ? try inflate(frame.payload) : frame.payload
            return (try APIJSON.makeDecoder().decode(ServerFrame.self, from: Data(text)), frame.rsv1)
        }
        return nil
    }

    @Test("a compressed, fragmented send is inflated; the delivery to a compressing device arrives compressed and intact")
    func roundTrip() async throws {
        try await TestServer.withLive(configure: { $0.metricsToken = MetricsTests.token }) { server in
            let alice = try await TestUser.make("alice", on: server)
            let bob = try await TestUser.make("bob", on: server)
            let aliceSocket = try await Self.compressedSocket(alice, port: server.port)
            let bobSocket = try await Self.compressedSocket(bob, port: server.port)
            _ = try await Self.nextFrame(bobSocket)  // caughtUp
            let ciphertext = Data((0..<3000).map { UInt8(truncatingIfNeeded: $0 * 7) })
            let send = try APIJSON.makeEncoder().encode(
                ClientFrame.send(.init(id: "m1", recipients: [.init(userId: bob.userId, deviceId: bob.deviceId, ciphertext: ciphertext)])))
            let compressed = try Self.deflate(Array(send))
            let third = compressed.count / 3
            try await aliceSocket.send(.init(fin: false, opcode: RawWebSocket.Opcode.text, payload: Array(compressed[..<third])), reservedBits: 0b100)
            try await aliceSocket.send(.init(fin: false, opcode: RawWebSocket.Opcode.continuation, payload: Array(compressed[third..<(2 * third)])))
            try await aliceSocket.send(.init(fin: true, opcode: RawWebSocket.Opcode.continuation, payload: Array(compressed[(2 * third)...])))
            var accepted = false
            while let (frame, _) = try await Self.nextFrame(aliceSocket) {
                if case .accepted(let answer) = frame {
                    #expect(answer.id == "m1")
                    accepted = true
                    break
                }
            }
            #expect(accepted)
            let (frame, compressedDelivery) = try #require(try await Self.nextFrame(bobSocket))
            guard case .message(let delivery) = frame else {
                Issue.record("expected the message, got \(frame)")
                return
            }
            #expect(delivery.ciphertext == ciphertext)
            #expect(compressedDelivery, "a 4 KB delivery is sent compressed")
            let values = try await MetricsTests.scrape(server)
            #expect(values[#"securechat_websocket_upgrades_total{compression="deflate"}"#] == 2)
            #expect((values[#"securechat_websocket_bytes_total{direction="received"}"#] ?? 0) > 0)
            #expect((values[#"securechat_websocket_bytes_total{direction="sent"}"#] ?? 0) > 0)
        }
    }

    @Test("HummingbirdWSCompression, an independent implementation, interoperates in both directions")
    func interoperates() async throws {
        try await TestServer.withLive(configure: { $0.metricsToken = MetricsTests.token }) { server in
            let alice = try await TestUser.make("alice", on: server)
            let bob = try await TestUser.make("bob", on: server)
            let aliceSocket = try await TestSocket.connect(alice, port: server.port, compression: true)
            let bobSocket = try await TestSocket.connect(bob, port: server.port, compression: true)
            let ciphertext = Data(repeating: 0x41, count: 20_000)
            try await aliceSocket.send(.send(.init(id: "m1", recipients: [.init(userId: bob.userId, deviceId: bob.deviceId, ciphertext: ciphertext)])))
            let accepted = try await aliceSocket.next(matching: RealtimeTests.accepted)
            #expect(accepted?.id == "m1")
            let delivery = try await bobSocket.next { frame -> ServerFrame.Delivery? in if case .message(let delivery) = frame { delivery } else { nil } }
            #expect(delivery?.ciphertext == ciphertext)
            let values = try await MetricsTests.scrape(server)
            #expect(values[#"securechat_websocket_upgrades_total{compression="deflate"}"#] == 2)
            // 20,000 repeated bytes, 26,668 in base64, cross the wire in a few hundred bytes each way
            // (with the hellos, welcomes and the rest, under 2,000).
            #expect((values[#"securechat_websocket_bytes_total{direction="sent"}"#] ?? .infinity) < 2_000)
            #expect((values[#"securechat_websocket_bytes_total{direction="received"}"#] ?? .infinity) < 2_000)
            await aliceSocket.close()
            await bobSocket.close()
        }
    }

    @Test(
        "bad compressed input closes the socket with the matching code",
        arguments: [
            // A message that inflates past the 512 KiB message limit: 1009.
            ("bomb", UInt16(1009)),
            // Not a deflate stream: 1007.
            ("garbage", UInt16(1007)),
            // RSV1 on a control frame or on a continuation, RSV2 on a compressed message: 1002.
            ("compressed ping", UInt16(1002)),
            ("compressed continuation", UInt16(1002)),
            ("RSV2 on a compressed message", UInt16(1002)),
            ("RSV3 on a continuation of an uncompressed message", UInt16(1002)),
            // A message started before a fragmented one ended, compressed or not: 1002.
            ("a message inside a compressed fragmented one", UInt16(1002)),
            ("a compressed message inside a fragmented one", UInt16(1002)),
        ])
    func refusals(kind: String, code: UInt16) async throws {
        try await TestServer.withLive { server in
            let alice = try await TestUser.make("alice", on: server)
            let socket = try await Self.compressedSocket(alice, port: server.port)
            switch kind {
            case "bomb":
                let bomb = try Self.deflate(Array(#"{"type":"ack","seq":1,"pad":""#.utf8) + [UInt8](repeating: 0x20, count: 2 << 20) + Array(#""}"#.utf8))
                #expect(bomb.count < 10_000)
                try await socket.send(.init(opcode: RawWebSocket.Opcode.text, payload: bomb), reservedBits: 0b100)
            case "garbage":
                try await socket.send(.init(opcode: RawWebSocket.Opcode.text, payload: [0xff, 0xff, 0xff, 0xff, 0x00]), reservedBits: 0b100)
            case "compressed ping":
                try await socket.send(.init(opcode: RawWebSocket.Opcode.ping, payload: []), reservedBits: 0b100)
            case "compressed continuation":
                try await socket.send(.init(fin: false, opcode: RawWebSocket.Opcode.text, payload: Array("{".utf8)))
                try await socket.send(.init(fin: true, opcode: RawWebSocket.Opcode.continuation, payload: try Self.deflate(Array("}".utf8))), reservedBits: 0b100)
            case "RSV2 on a compressed message":
                try await socket.send(.init(opcode: RawWebSocket.Opcode.text, payload: try Self.deflate(Array(#"{"type":"ack","seq":1}"#.utf8))), reservedBits: 0b110)
            case "RSV3 on a continuation of an uncompressed message":
                try await socket.send(.init(fin: false, opcode: RawWebSocket.Opcode.text, payload: Array(#"{"type":"ack","#.utf8)))
                try await socket.send(.init(fin: true, opcode: RawWebSocket.Opcode.continuation, payload: Array(#""seq":1}"#.utf8)), reservedBits: 0b001)
            case "a message inside a compressed fragmented one":
                let compressed = try Self.deflate(Array(#"{"type":"ack","seq":1}"#.utf8))
                try await socket.send(.init(fin: false, opcode: RawWebSocket.Opcode.text, payload: Array(compressed.prefix(4))), reservedBits: 0b100)
                try await socket.send(.init(opcode: RawWebSocket.Opcode.text, payload: Array(#"{"type":"ack","seq":1}"#.utf8)))
            default:
                try await socket.send(.init(fin: false, opcode: RawWebSocket.Opcode.text, payload: Array("{".utf8)))
                try await socket.send(.init(opcode: RawWebSocket.Opcode.text, payload: try Self.deflate(Array(#"{"type":"ack","seq":1}"#.utf8))), reservedBits: 0b100)
            }
            #expect(try await socket.closeCode() == code)
        }
    }

    @Test("what arrives compressed while hello is checked is bounded in bytes, not only in frames")
    func boundedBeforeWelcome() async throws {
        try await TestServer.withLive { server in
            let alice = try await TestUser.make("alice", on: server)
            let socket = try await RawWebSocket.connect(port: server.port, extraHeaders: [Self.offer])
            let hello = try APIJSON.makeEncoder().encode(ClientFrame.hello(.init(token: alice.accessToken, deviceId: alice.deviceId)))
            // Each a few hundred bytes on the wire, 400 KB once inflated; in one write with the
            // hello, so that they arrive while it is being checked.
            let padded = try Self.deflate(Array(#"{"type":"ack","seq":1,"pad":""#.utf8) + [UInt8](repeating: 0x20, count: 400_000) + Array(#""}"#.utf8))
            var frames: [(RawWebSocket.Frame, UInt8)] = [(.init(opcode: RawWebSocket.Opcode.text, payload: Array(hello)), 0)]
            for _ in 0..<4 { frames.append((.init(opcode: RawWebSocket.Opcode.text, payload: padded), 0b100)) }
            try await socket.send(frames)
            #expect(try await socket.closeCode() == 1008)
        }
    }

    @Test("with compression off, nothing is agreed and RSV1 is a protocol error")
    func off() async throws {
        try await TestServer.withLive(configure: {
            $0.webSocketCompression = false
            $0.metricsToken = MetricsTests.token
        }) { server in
            let socket = try await RawWebSocket.connect(port: server.port, extraHeaders: [Self.offer])
            #expect(socket.status == 101)
            #expect(!socket.responseHead.lowercased().contains("sec-websocket-extensions"))
            try await socket.send(.init(opcode: RawWebSocket.Opcode.text, payload: try Self.deflate(Array("{}".utf8))), reservedBits: 0b100)
            #expect(try await socket.closeCode() == 1002)
            // On a fragment too, which NIO's aggregator would join into a frame without the bit.
            let fragmented = try await RawWebSocket.connect(port: server.port)
            try await fragmented.send(.init(fin: false, opcode: RawWebSocket.Opcode.text, payload: Array("{".utf8)), reservedBits: 0b100)
            try await fragmented.send(.init(fin: true, opcode: RawWebSocket.Opcode.continuation, payload: Array("}".utf8)))
            #expect(try await fragmented.closeCode() == 1002)
            let values = try await MetricsTests.scrape(server)
            #expect(values[#"securechat_websocket_upgrades_total{compression="none"}"#] == 2)
        }
    }
}

@Suite("permessage-deflate handler")
struct PerMessageDeflateHandlerTests {
    @Test("outbound messages of 128 bytes or more are compressed when that makes them smaller, and inflate back exactly")
    func outbound() throws {
        let channel = EmbeddedChannel(handler: PerMessageDeflateHandler(agreement: PerMessageDeflateAgreement()))
        defer { _ = try? channel.finish() }
        let base64 = Data(repeating: 0x41, count: 20_000).base64EncodedString()
        let cases: [(String, Bool)] = [
            (#"{"type":"caughtUp","seq":12}"#, false),
            (#"{"type":"message","ciphertext":"\#(base64)"}"#, true),
            // Random bytes in base64 still shrink: six bits of eight carry information.
            (#"{"type":"message","ciphertext":"\#(Data((0..<600).map { _ in UInt8.random(in: 0...255) }).base64EncodedString())"}"#, true),
        ]
        for (text, compressed) in cases {
            try channel.writeOutbound(WebSocketFrame(fin: true, opcode: .text, data: ByteBuffer(string: text)))
            let frame = try #require(try channel.readOutbound(as: WebSocketFrame.self))
            #expect(frame.rsv1 == compressed)
            let payload = Array(frame.data.readableBytesView)
            #expect(String(decoding: compressed ? try CompressionTests.inflate(payload) : payload, as: UTF8.self) == text)
        }
    }
}
