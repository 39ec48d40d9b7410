import Foundation
import HummingbirdWebSocket
import Logging
import NIOConcurrencyHelpers
import NIOWebSocket
import SecureChatAPI

/// One WebSocket from `hello` to close: reads client frames, and in a second task writes the
/// device's deliveries in sequence order with a bounded window of unacknowledged ones.
struct RealtimeSession {
    let services: ChatServices
    let logger: Logger
    /// One decoder for the socket's life: every frame goes through it.
    private let decoder = APIJSON.makeDecoder()

    init(services: ChatServices, logger: Logger) {
        self.services = services
        self.logger = logger
    }

    /// Sends a device may have waiting for their `accepted` before the socket stops reading.
    static let maximumInFlightSends = 256

    func run(inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter) async throws {
        var frames = inbound.messages(maxSize: APILimits.frameBytes).makeAsyncIterator()
        let watchdog = Task {
            try await Task.sleep(for: .seconds(services.configuration.helloTimeout))
            try await outbound.write(.text(Self.encode(.error(.init(code: .notAuthenticated, message: "send hello first")))))
            try await outbound.close(.policyViolation, reason: "no hello")
        }
        defer { watchdog.cancel() }
        guard let first = try await frames.next() else { return }
        watchdog.cancel()
        let connection: ClientConnection
        let resumeAfter: Int64
        do {
            (connection, resumeAfter) = try await authenticate(first)
        } catch let failure as APIFailure {
            try await outbound.write(.text(Self.encode(.error(.init(code: failure.code, message: failure.message)))))
            try await outbound.close(.policyViolation, reason: failure.code.rawValue)
            return
        }
        if let replaced = services.hub.register(connection) {
            replaced.close(.duplicateConnection, "this device connected again on another socket")
        }
        defer {
            services.hub.unregister(connection)
            connection.finish()
        }
        if resumeAfter > 0 { services.writer.acknowledge(deviceKey: connection.deviceKey, upTo: resumeAfter) }
        let writer = DeliveryWriter(
            services: services, connection: connection, outbound: outbound, lastSent: resumeAfter, logger: logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await writer.run() }
            let inFlight = InFlightLimit(maximum: Self.maximumInFlightSends)
            while let message = try await frames.next() {
                await handle(message, connection: connection, inFlight: inFlight)
            }
            connection.finish()
            try await group.waitForAll()
        }
    }

    private func authenticate(_ message: WebSocketMessage) async throws -> (ClientConnection, Int64) {
        guard case .hello(let hello) = try decode(message) else {
            throw APIFailure(.unauthorized, .notAuthenticated, "the first frame must be hello")
        }
        let user = try await services.authenticate(token: hello.token)
        guard let device = try await services.store.device(userId: user.userId, deviceId: hello.deviceId) else {
            throw APIFailure(.unauthorized, .unknownDevice, "device \(hello.deviceId) is not registered to this account")
        }
        // A device cannot have processed more than was stored for it. A larger claim comes from
        // state that predates this database (a restore, another server): it is ignored, and
        // `welcome.lastSeq` tells the client to reset its counter.
        let claimed = max(0, hello.resumeAfter ?? 0)
        let resumeAfter = claimed <= device.lastSeq ? claimed : 0
        let connection = ClientConnection(
            address: DeviceAddress(userId: user.userId, deviceId: device.deviceId), deviceKey: device.key,
            sessionId: user.sessionId)
        connection.send(.welcome(.init(userId: user.userId, deviceId: device.deviceId, lastSeq: device.lastSeq)))
        if device.oneTimePreKeyCount < APILimits.oneTimePreKeysLowWatermark {
            connection.send(.preKeysLow(.init(count: device.oneTimePreKeyCount)))
        }
        return (connection, resumeAfter)
    }

    private func decode(_ message: WebSocketMessage) throws -> ClientFrame {
        guard case .text(let text) = message else {
            throw APIFailure(.badRequest, .unsupportedFrame, "frames are JSON text; binary frames are not accepted")
        }
        do {
            return try decoder.decode(ClientFrame.self, from: Data(text.utf8))
        } catch let error as DecodingError {
            throw APIFailure(.badRequest, .invalidJSON, "invalid frame: \(APIRequestDecoding.describe(error))")
        } catch {
            throw APIFailure(.badRequest, .invalidJSON, "a frame must be a JSON object")
        }
    }

    private func handle(_ message: WebSocketMessage, connection: ClientConnection, inFlight: InFlightLimit) async {
        let frame: ClientFrame
        do {
            frame = try decode(message)
        } catch {
            connection.send(.error(Self.errorFrame(error, id: nil)))
            return
        }
        switch frame {
        case .hello:
            connection.send(.error(.init(code: .badRequest, message: "this socket is already authenticated")))
        case .ack(let ack):
            guard ack.seq > 0 else { return }
            // The delivery writer forgets only what it actually sent.
            connection.acknowledged(ack.seq)
        case .send(let send):
            let pending: PendingSend
            do {
                pending = try SendValidation.pendingSend(send, from: connection, services: services)
            } catch {
                connection.send(.error(Self.errorFrame(error, id: String(send.id.prefix(64)))))
                return
            }
            await inFlight.acquire()
            services.writer.enqueue(pending) { result in
                inFlight.release()
                switch result {
                case .success(.accepted(let messageId, let sentAt, let duplicate, _)):
                    connection.send(
                        .accepted(
                            .init(id: send.id, messageId: messageId, sentAt: Date(milliseconds: sentAt), duplicate: duplicate)))
                case .success(.refused(let code, let message)):
                    connection.send(.error(.init(code: code, message: message, id: send.id)))
                case .failure(let error):
                    connection.send(.error(Self.errorFrame(error, id: send.id)))
                }
            }
        case .ephemeral(let ephemeral):
            do {
                try await EphemeralRelay(services: services).relay(ephemeral, from: connection)
            } catch {
                connection.send(.error(Self.errorFrame(error, id: nil)))
            }
        }
    }

    static func errorFrame(_ error: any Error, id: String?) -> ServerFrame.ErrorFrame {
        if let failure = error as? APIFailure {
            return .init(code: failure.code, message: failure.message, id: id)
        }
        return .init(code: .internalError, message: "the server could not handle this frame", id: id)
    }

    static func encode(_ frame: ServerFrame) throws -> String {
        String(decoding: try APIJSON.makeEncoder().encode(frame), as: UTF8.self)
    }
}

/// Bounds how many sends one socket has waiting for the database.
final class InFlightLimit: Sendable {
    private struct State {
        var available: Int
        var waiting: [CheckedContinuation<Void, Never>] = []
    }

    private let state: NIOLockedValueBox<State>

    init(maximum: Int) { state = NIOLockedValueBox(State(available: maximum)) }

    func acquire() async {
        await withCheckedContinuation { continuation in
            let granted = state.withLockedValue { state -> Bool in
                if state.available > 0 {
                    state.available -= 1
                    return true
                }
                state.waiting.append(continuation)
                return false
            }
            if granted { continuation.resume() }
        }
    }

    func release() {
        let next = state.withLockedValue { state -> CheckedContinuation<Void, Never>? in
            if state.waiting.isEmpty {
                state.available += 1
                return nil
            }
            return state.waiting.removeFirst()
        }
        next?.resume()
    }
}
