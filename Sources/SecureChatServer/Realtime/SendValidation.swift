import Foundation
import SecureChatAPI

/// Turns a client's `send` into a sealed ``PendingSend``, refusing anything malformed before it
/// reaches the writer.
enum SendValidation {
    static func pendingSend(_ send: ClientFrame.Send, from connection: ClientConnection, services: ChatServices) throws -> PendingSend {
        try checkClientMessageId(send.id)
        let attachmentIds = send.attachmentIds ?? []
        guard attachmentIds.count <= 16 else { throw APIFailure.badRequest("a message points at 16 attachments at most") }
        let sender = connection.address
        let now = services.nowMilliseconds
        let target: PendingSend.Target
        switch (send.room, send.ciphertext, send.recipients) {
        case (let room?, let ciphertext?, nil):
            try checkCiphertext(ciphertext)
            let sealed = try services.cipher.seal(
                ciphertext, context: AtRestCipher.messageContext(sender: sender, clientMessageId: send.id, recipient: nil))
            target = .room(code: room.lowercased(), ciphertext: sealed)
        case (nil, nil, let recipients?):
            guard !recipients.isEmpty, recipients.count <= APILimits.recipientsPerSend else {
                throw APIFailure.badRequest("a send has 1 to \(APILimits.recipientsPerSend) recipients")
            }
            var seen = Set<DeviceAddress>()
            var envelopes: [(address: DeviceAddress, ciphertext: SealedPayload)] = []
            for recipient in recipients {
                let address = DeviceAddress(userId: recipient.userId, deviceId: recipient.deviceId)
                guard seen.insert(address).inserted else {
                    throw APIFailure.badRequest("device \(recipient.deviceId) of \(recipient.userId) is listed twice")
                }
                try checkCiphertext(recipient.ciphertext)
                let sealed = try services.cipher.seal(
                    recipient.ciphertext,
                    context: AtRestCipher.messageContext(sender: sender, clientMessageId: send.id, recipient: address))
                envelopes.append((address, sealed))
            }
            target = .devices(envelopes)
        default:
            throw APIFailure.badRequest("a send has either room and ciphertext, or recipients")
        }
        return PendingSend(
            senderUserId: sender.userId, senderDeviceId: sender.deviceId, senderDeviceKey: connection.deviceKey,
            clientMessageId: send.id, target: target, attachmentIds: attachmentIds, sentAt: now,
            expiresAt: now + Milliseconds(services.configuration.messageRetention * 1000))
    }

    static func checkClientMessageId(_ id: String) throws {
        guard APILimits.clientMessageIdLength.contains(id.utf8.count), id.utf8.allSatisfy({ $0 >= 0x21 && $0 <= 0x7e }) else {
            throw APIFailure.badRequest("a message id is 1 to 64 printable ASCII characters")
        }
    }

    static func checkCiphertext(_ ciphertext: Data) throws {
        guard !ciphertext.isEmpty else { throw APIFailure.badRequest("a ciphertext cannot be empty") }
        guard ciphertext.count <= APILimits.ciphertextBytes else {
            throw APIFailure(
                .contentTooLarge, .payloadTooLarge, "a ciphertext is at most \(APILimits.ciphertextBytes) bytes; send files as attachments")
        }
    }
}

/// Relays typing indicators and call signalling to the connected devices, storing nothing.
struct EphemeralRelay {
    let services: ChatServices

    /// Relays in a task of its own; a refusal comes back through `refused` (on no particular thread).
    func start(
        _ ephemeral: ClientFrame.Ephemeral, from connection: ClientConnection,
        refused: @escaping @Sendable (ServerFrame.ErrorFrame) -> Void
    ) {
        Task {
            do {
                try await relay(ephemeral, from: connection)
            } catch {
                refused(SessionFrames.errorFrame(error, id: nil))
            }
        }
    }

    func relay(_ ephemeral: ClientFrame.Ephemeral, from connection: ClientConnection) async throws {
        let sender = connection.address
        switch (ephemeral.room, ephemeral.payload, ephemeral.recipients) {
        case (let code?, let payload?, nil):
            try SendValidation.checkCiphertext(payload)
            guard code.utf8.count <= 64, let room = try await services.store.room(code: code.lowercased()) else {
                throw APIFailure.notFound("room")
            }
            guard try await services.store.membership(roomId: room.id, userId: sender.userId) != nil else {
                throw APIFailure.notAMember
            }
            var addresses: [DeviceAddress] = []
            for member in try await services.store.members(roomId: room.id) {
                for deviceId in member.deviceIds {
                    let address = DeviceAddress(userId: member.userId, deviceId: deviceId)
                    if address != sender { addresses.append(address) }
                }
            }
            services.hub.relayEphemeral(.init(sender: sender, room: room.code, payload: payload), to: addresses)
        case (nil, nil, let recipients?):
            guard !recipients.isEmpty, recipients.count <= APILimits.recipientsPerSend else {
                throw APIFailure.badRequest("an ephemeral frame has 1 to \(APILimits.recipientsPerSend) recipients")
            }
            for recipient in recipients { try SendValidation.checkCiphertext(recipient.ciphertext) }
            for recipient in recipients {
                let address = DeviceAddress(userId: recipient.userId, deviceId: recipient.deviceId)
                services.hub.relayEphemeral(.init(sender: sender, room: nil, payload: recipient.ciphertext), to: [address])
            }
        default:
            throw APIFailure.badRequest("an ephemeral frame has either room and payload, or recipients")
        }
    }
}
