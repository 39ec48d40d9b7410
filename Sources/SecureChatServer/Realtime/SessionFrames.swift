import Foundation
import NIOCore
import SecureChatAPI

/// The frames a ``RealtimeSession`` reads and writes, without the session: a client frame parsed,
/// a stored delivery turned into the frame its device gets, a server frame encoded, an error
/// described.
enum SessionFrames {
    private static let decoder = APIJSON.makeDecoder()
    private static let encoder = APIJSON.makeEncoder()

    /// `send` frames take the hand-written parser; anything it does not take goes to `JSONDecoder`.
    static func decode(_ text: ByteBuffer) throws -> ClientFrame {
        if let send = text.withUnsafeReadableBytes({ SendFrameParser.parse($0) }) { return .send(send) }
        do {
            return try decoder.decode(ClientFrame.self, from: Data(text.readableBytesView))
        } catch let error as DecodingError {
            throw APIFailure(.badRequest, .invalidJSON, "invalid frame: \(APIRequestDecoding.describe(error))")
        } catch {
            throw APIFailure(.badRequest, .invalidJSON, "a frame must be a JSON object")
        }
    }

    /// What `recipient` gets for a stored delivery. A message's payload is opened unless the send
    /// that stored it still holds the bytes it sealed (a live delivery).
    static func delivery(_ entry: InboxEntry, to recipient: DeviceAddress, cipher: AtRestCipher) throws -> ServerFrame {
        switch entry.content {
        case .message(let messageId, let sender, let clientMessageId, let roomCode, let sealed, let sentAt):
            let ciphertext: Data
            if let unsealed = sealed.unsealed {
                ciphertext = unsealed
            } else {
                let context = AtRestCipher.messageContext(
                    sender: sender, clientMessageId: clientMessageId, recipient: roomCode == nil ? recipient : nil)
                ciphertext = try cipher.open(sealed, context: context)
            }
            return .message(
                .init(
                    seq: entry.seq, messageId: messageId, sender: sender, clientMessageId: clientMessageId, room: roomCode,
                    ciphertext: ciphertext, sentAt: Date(milliseconds: sentAt)))
        case .roomEvent(let event):
            return .roomEvent(
                .init(
                    seq: entry.seq, room: event.room, change: event.change, userId: event.userId, actorUserId: event.actorUserId,
                    role: event.role, at: Date(milliseconds: event.at)))
        }
    }

    /// The two frames of every message by hand (``FrameEncoding``), the others by `JSONEncoder`.
    static func text(_ frame: ServerFrame) throws -> String {
        switch frame {
        case .accepted(let accepted): FrameEncoding.accepted(accepted)
        case .message(let delivery): FrameEncoding.delivery(delivery)
        default: String(decoding: try encoder.encode(frame), as: UTF8.self)
        }
    }

    static func errorFrame(_ error: any Error, id: String?) -> ServerFrame.ErrorFrame {
        if let failure = error as? APIFailure {
            return .init(code: failure.code, message: failure.message, id: id)
        }
        return .init(code: .internalError, message: "the server could not handle this frame", id: id)
    }
}
