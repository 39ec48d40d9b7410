import Foundation
import HummingbirdWebSocket
import Logging
import NIOWebSocket
import SecureChatAPI

/// Writes one device's frames in order: stored deliveries first (from `lastSent`), then live ones.
///
/// Invariants: deliveries go out in strictly increasing `seq` with no gap; at most
/// ``APILimits/deliveryWindow`` are unacknowledged at once (a slow device costs the server no
/// memory: what does not fit stays in the database and is fetched when acknowledgements arrive).
struct DeliveryWriter {
    let services: ChatServices
    let connection: ClientConnection
    let outbound: WebSocketOutboundWriter
    var lastSent: Int64
    let logger: Logger

    private var lastAcknowledged: Int64 = 0
    /// Live deliveries were skipped (window full or a gap): the database holds what comes next.
    private var behind = true
    private var announcedCaughtUp = false
    private let encoder = APIJSON.makeEncoder()

    init(services: ChatServices, connection: ClientConnection, outbound: WebSocketOutboundWriter, lastSent: Int64, logger: Logger) {
        self.services = services
        self.connection = connection
        self.outbound = outbound
        self.lastSent = lastSent
        self.lastAcknowledged = lastSent
        self.logger = logger
    }

    consuming func run() async throws {
        // `welcome` is always queued first; `behind` starts true, so the backlog follows it.
        for await item in connection.outgoing {
            connection.dequeued(item)
            switch item {
            case .frame(let frame):
                try await write(frame)
            case .live(let entries):
                if !behind {
                    for entry in entries where entry.seq > lastSent {
                        guard entry.seq == lastSent + 1, lastSent - lastAcknowledged < APILimits.deliveryWindow else {
                            behind = true
                            break
                        }
                        try await deliver(entry)
                    }
                }
            case .catchUp:
                behind = true
            case .acknowledged(let seq):
                let upTo = min(seq, lastSent)
                if upTo > lastAcknowledged {
                    lastAcknowledged = upTo
                    services.writer.acknowledge(deviceKey: connection.deviceKey, upTo: upTo)
                }
            case .close(let code, let message):
                try await write(.error(.init(code: code, message: message)))
                try await outbound.close(.policyViolation, reason: code.rawValue)
                return
            }
            if behind { try await catchUp() }
        }
    }

    /// Sends stored deliveries after `lastSent` while the window has room.
    private mutating func catchUp() async throws {
        while true {
            let room = APILimits.deliveryWindow - Int(lastSent - lastAcknowledged)
            guard room > 0 else {
                behind = true
                return
            }
            let entries = try await services.store.inbox(deviceKey: connection.deviceKey, after: lastSent, limit: room)
            for entry in entries { try await deliver(entry) }
            if entries.count < room {
                behind = false
                if !announcedCaughtUp {
                    announcedCaughtUp = true
                    try await write(.caughtUp(.init(seq: lastSent)))
                }
                return
            }
        }
    }

    private mutating func deliver(_ entry: InboxEntry) async throws {
        lastSent = entry.seq
        switch entry.content {
        case .message(let messageId, let sender, let clientMessageId, let roomCode, let sealed, let sentAt):
            let context = AtRestCipher.messageContext(
                sender: sender, clientMessageId: clientMessageId, recipient: roomCode == nil ? connection.address : nil)
            let ciphertext: Data
            do {
                ciphertext = try services.cipher.open(sealed, context: context)
            } catch {
                logger.error("a stored message could not be unsealed", metadata: ["seq": "\(entry.seq)", "error": "\(error)"])
                try await write(.error(.init(code: .internalError, message: "stored message \(entry.seq) is unreadable")))
                return
            }
            try await write(
                .message(
                    .init(
                        seq: entry.seq, messageId: messageId, sender: sender, clientMessageId: clientMessageId, room: roomCode,
                        ciphertext: ciphertext, sentAt: Date(milliseconds: sentAt))))
        case .roomEvent(let event):
            try await write(
                .roomEvent(
                    .init(
                        seq: entry.seq, room: event.room, change: event.change, userId: event.userId,
                        actorUserId: event.actorUserId, role: event.role, at: Date(milliseconds: event.at))))
        }
    }

    private func write(_ frame: ServerFrame) async throws {
        let text: String
        switch frame {
        case .message(let delivery): text = FrameEncoding.delivery(delivery)
        case .accepted(let accepted): text = FrameEncoding.accepted(accepted)
        default: text = String(decoding: try encoder.encode(frame), as: UTF8.self)
        }
        try await outbound.write(.text(text))
    }
}
