import Foundation
import Logging
import NIOCore
import NIOWebSocket
import SecureChatAPI

/// One WebSocket from `hello` to close, confined to the socket's event loop: it reads client
/// frames, and writes the device's deliveries in sequence order with a bounded window of
/// unacknowledged ones.
///
/// Delivery invariants: deliveries go out in strictly increasing `seq` with no gap; at most
/// ``APILimits/deliveryWindow`` are unacknowledged at once; when the window is full or the peer
/// stops reading, nothing more is held in memory: the database has it, and the session fetches it
/// when acknowledgements arrive or the socket drains.
final class RealtimeSession {
    /// Sends a device may have waiting for their `accepted` before the socket stops reading.
    static let maximumInFlightSends = 256
    /// Frames that may arrive while `hello` is being checked.
    static let maximumFramesBeforeWelcome = 64
    /// Bytes those frames may hold together.
    static let maximumBytesBeforeWelcome = 2 * APILimits.frameBytes

    private enum Phase {
        case awaitingHello
        case authenticating(heldFrames: [ByteBuffer])
        case open(ClientConnection)
        case closed
    }

    private let services: ChatServices
    private let logger: Logger
    private let eventLoop: any EventLoop
    /// Where the socket comes from, as limits count it (``ClientAddress/limitKey(_:)``).
    private let clientAddress: String
    private var countedForAddress = false
    private var rateLimit: SocketRateLimit
    /// Reading is paused until the rate limit's debt is paid.
    private var throttled = false
    /// Weak: the transport owns the session, and callbacks may outlive the connection.
    private weak var socket: (any RealtimeSocket)?
    private var phase = Phase.awaitingHello
    private var helloTimeout: Scheduled<Void>?

    /// Meaningful once open.
    private var window = DeliveryWindow(resumeAfter: 0)
    private var inFlightSends = 0
    /// This connection's sends, for ``MessageWriter``: broken by a failed send, which closes the socket.
    private let sendChain = SendChain()

    init(services: ChatServices, socket: any RealtimeSocket, eventLoop: any EventLoop, clientAddress: String, logger: Logger) {
        self.services = services
        self.clientAddress = ClientAddress.limitKey(clientAddress)
        self.rateLimit = SocketRateLimit(services.configuration.rateLimits, now: SocketRateLimit.now)
        self.socket = socket
        self.eventLoop = eventLoop
        self.logger = logger
    }

    private var loopBound: NIOLoopBound<RealtimeSession> { NIOLoopBound(self, eventLoop: eventLoop) }

    // MARK: Socket events

    func started() {
        guard services.limits.sockets.open(clientAddress, limit: services.limits.rules.socketsPerAddress) else {
            services.metrics.rateLimited("sockets_per_address")
            // 1013, Try Again Later: unlike a refusal of the account, this one passes.
            close(.rateLimited, "too many open sockets from your address", closeCode: .unknown(1013))
            return
        }
        countedForAddress = true
        let session = loopBound
        helloTimeout = eventLoop.scheduleTask(in: .milliseconds(Int64(services.configuration.helloTimeout * 1000))) {
            session.value.helloTimedOut()
        }
    }

    private func helloTimedOut() {
        guard case .awaitingHello = phase else { return }
        close(.notAuthenticated, "send hello first")
    }

    /// The socket closed, for whatever reason: forget this device's connection.
    func ended() {
        helloTimeout?.cancel()
        if case .open(let connection) = phase {
            services.hub.unregister(connection)
            services.metrics.webSocketConnections.decrement()
        }
        if countedForAddress {
            countedForAddress = false
            services.limits.sockets.close(clientAddress)
        }
        phase = .closed
    }

    func receivedText(_ text: ByteBuffer) {
        switch phase {
        case .awaitingHello:
            helloTimeout?.cancel()
            authenticate(text)
        case .authenticating(var held):
            // Bytes too: with compression a short frame can inflate to a whole message.
            guard held.count < Self.maximumFramesBeforeWelcome,
                held.reduce(text.readableBytes, { $0 + $1.readableBytes }) <= Self.maximumBytesBeforeWelcome
            else {
                close(.rateLimited, "too many frames before welcome")
                return
            }
            held.append(text)
            phase = .authenticating(heldFrames: held)
        case .open(let connection):
            handle(text, connection: connection)
        case .closed:
            break
        }
    }

    func receivedBinary() {
        if case .awaitingHello = phase {
            helloTimeout?.cancel()
            close(.notAuthenticated, "the first frame must be hello")
            return
        }
        sendFrame(.error(.init(code: .unsupportedFrame, message: "frames are JSON text; binary frames are not accepted")))
    }

    func socketBecameWritable() {
        if window.behind { fetchStored() }
    }

    // MARK: Authentication

    private func authenticate(_ text: ByteBuffer) {
        let frame: ClientFrame
        do {
            frame = try SessionFrames.decode(text)
        } catch {
            let refusal = SessionFrames.errorFrame(error, id: nil)
            close(refusal.code, refusal.message)
            return
        }
        guard case .hello(let hello) = frame else {
            close(.notAuthenticated, "the first frame must be hello")
            return
        }
        phase = .authenticating(heldFrames: [])
        socket?.pauseReading(.authenticating)
        let session = loopBound
        let services = services
        Task {
            let result: Result<(AuthenticatedUser, DeviceRecord), any Error>
            do {
                result = .success(try await services.authenticateSocket(token: hello.token, deviceId: hello.deviceId))
            } catch {
                result = .failure(error)
            }
            session.eventLoop.execute { session.value.authenticated(result, resumeAfter: hello.resumeAfter) }
        }
    }

    private func authenticated(_ result: Result<(AuthenticatedUser, DeviceRecord), any Error>, resumeAfter claim: Int64?) {
        guard case .authenticating(let held) = phase else { return }
        let user: AuthenticatedUser
        let device: DeviceRecord
        switch result {
        case .success(let value): (user, device) = value
        case .failure(let error):
            services.metrics.webSocketAuthenticated(succeeded: false)
            let frame = SessionFrames.errorFrame(error, id: nil)
            if let kind = frame.code.authenticationFailureKind { services.metrics.authenticationFailed(kind) }
            // A refusal is final (1008); a server failure is worth a retry (1011).
            close(frame.code, frame.message, closeCode: error is APIFailure ? .policyViolation : .unexpectedServerError)
            return
        }
        let resumeAfter = DeliveryWindow.resumePoint(
            claimed: claim, acknowledged: services.writer.pendingAcknowledgement(deviceKey: device.key), stored: device.lastSeq)
        let connection = ClientConnection(
            address: DeviceAddress(userId: user.userId, deviceId: device.deviceId), deviceKey: device.key,
            sessionId: user.sessionId, session: loopBound)
        phase = .open(connection)
        services.metrics.webSocketAuthenticated(succeeded: true)
        services.metrics.webSocketConnections.increment()
        window = DeliveryWindow(resumeAfter: resumeAfter)
        sendFrame(.welcome(.init(userId: user.userId, deviceId: device.deviceId, lastSeq: device.lastSeq)))
        if device.oneTimePreKeyCount < APILimits.oneTimePreKeysLowWatermark {
            sendFrame(.preKeysLow(.init(count: device.oneTimePreKeyCount)))
        }
        if let replaced = services.hub.register(connection) {
            replaced.close(.duplicateConnection, "this device connected again on another socket")
        }
        if resumeAfter > 0 { services.writer.acknowledge(deviceKey: device.key, upTo: resumeAfter) }
        fetchStored()
        for text in held {
            guard case .open = phase else { break }
            handle(text, connection: connection)
        }
        socket?.resumeReading(.authenticating)
    }

    // MARK: Client frames

    private func handle(_ text: ByteBuffer, connection: ClientConnection) {
        let frame: ClientFrame
        do {
            frame = try SessionFrames.decode(text)
        } catch {
            sendFrame(.error(SessionFrames.errorFrame(error, id: nil)))
            chargeRateLimit(frameBytes: text.readableBytes)
            return
        }
        // Acknowledgements only free storage: they cost nothing.
        if case .ack = frame {} else { chargeRateLimit(frameBytes: text.readableBytes) }
        switch frame {
        case .hello:
            sendFrame(.error(.init(code: .badRequest, message: "this socket is already authenticated")))
        case .ack(let ack):
            acknowledged(ack.seq, connection: connection)
        case .send(let send):
            let pending: PendingSend
            do {
                pending = try SendValidation.pendingSend(send, from: connection, services: services)
            } catch {
                sendFrame(.error(SessionFrames.errorFrame(error, id: String(send.id.prefix(64)))))
                return
            }
            inFlightSends += 1
            if inFlightSends == Self.maximumInFlightSends { socket?.pauseReading(.sendsInFlight) }
            let session = loopBound
            services.writer.enqueue(pending, chain: sendChain) { result in
                session.eventLoop.execute { session.value.sendCompleted(result, id: send.id) }
            }
        case .ephemeral(let ephemeral):
            let session = loopBound
            EphemeralRelay(services: services).start(ephemeral, from: connection) { refusal in
                session.eventLoop.execute { session.value.sendFrame(.error(refusal)) }
            }
        }
    }

    /// Charges a frame to the socket's budget; over budget, stops reading until the debt is paid
    /// and says so once with a `rate_limited` error frame (no `id`: nothing was refused).
    private func chargeRateLimit(frameBytes: Int) {
        guard let pause = rateLimit.charge(frameBytes: frameBytes, now: SocketRateLimit.now), !throttled else { return }
        throttled = true
        services.metrics.rateLimited("socket_budget")
        sendFrame(
            .error(
                .init(
                    code: .rateLimited, message: "too many frames or bytes: this socket is read more slowly for a while",
                    retryAfter: max(1, Int(min(pause, 3600).rounded(.up))))))
        socket?.pauseReading(.rateLimited)
        let session = loopBound
        eventLoop.scheduleTask(in: .nanoseconds(Int64(min(pause, 3600) * 1e9))) {
            session.value.throttled = false
            session.value.socket?.resumeReading(.rateLimited)
        }
    }

    private func sendCompleted(_ result: Result<SendOutcome, any Error>, id: String) {
        if inFlightSends == Self.maximumInFlightSends { socket?.resumeReading(.sendsInFlight) }
        inFlightSends -= 1
        switch result {
        case .success(.accepted(let messageId, let sentAt, let duplicate, _)):
            sendFrame(.accepted(.init(id: id, messageId: messageId, sentAt: Date(milliseconds: sentAt), duplicate: duplicate)))
        case .success(.refused(let code, let message)):
            sendFrame(.error(.init(code: code, message: message, id: id)))
        case .failure(let error):
            sendFrame(.error(SessionFrames.errorFrame(error, id: id)))
            // The sends after this one on this socket are refused too (``SendChain``): the client
            // sends them again, in order, on a new connection.
            if sendChain.isBroken {
                close(.unavailable, "a message could not be stored; reconnect and send again", closeCode: .unexpectedServerError)
            }
        }
    }

    private func acknowledged(_ seq: Int64, connection: ClientConnection) {
        guard let upTo = window.acknowledge(seq) else { return }
        services.writer.acknowledge(deviceKey: connection.deviceKey, upTo: upTo)
        if window.behind { fetchStored() }
    }

    // MARK: Deliveries

    func receiveLive(_ entries: [InboxEntry]) {
        guard case .open = phase, !window.holdDuringFetch(entries) else { return }
        deliverLive(entries)
    }

    private func deliverLive(_ entries: [InboxEntry]) {
        if !window.behind {
            for entry in entries where entry.seq > window.lastSent {
                guard window.canSendLive(entry.seq), isWritable else {
                    window.fellBehind()
                    break
                }
                deliver(entry)
            }
        }
        if window.behind { fetchStored() }
    }

    private var isWritable: Bool { socket?.isWritable ?? false }

    /// Sends stored deliveries after `lastSent` while the window has room and the peer reads.
    /// `committedSince`: deliveries may have been committed after a read already under way began
    /// (a wake from another instance, live deliveries not handed over), so read again after it.
    func fetchStored(committedSince: Bool = false) {
        guard case .open(let connection) = phase,
            let (after, room) = window.startFetch(committedSince: committedSince, writable: isWritable)
        else { return }
        let session = loopBound
        let store = services.store
        let metrics = services.metrics
        Task {
            let result: Result<[InboxEntry], any Error>
            do {
                let started = ContinuousClock.now
                result = .success(try await store.inbox(deviceKey: connection.deviceKey, after: after, limit: room))
                metrics.inboxRead.record(ContinuousClock.now - started)
            } catch {
                result = .failure(error)
            }
            session.eventLoop.execute { session.value.fetched(result, room: room) }
        }
    }

    private func fetched(_ result: Result<[InboxEntry], any Error>, room: Int) {
        guard case .open = phase else { return }
        let entries: [InboxEntry]
        switch result {
        case .success(let value): entries = value
        case .failure(let error):
            window.fetchFailed()
            logger.error("reading a device's stored deliveries failed", metadata: ["error": "\(error)"])
            close(.unavailable, "the server could not read stored messages; reconnect", closeCode: .unexpectedServerError)
            return
        }
        for entry in entries where entry.seq > window.lastSent { deliver(entry) }
        switch window.fetchCompleted(count: entries.count, limit: room, writable: isWritable) {
        case .readAgain:
            fetchStored()
        case .caughtUp(let firstTime, let held):
            if firstTime { sendFrame(.caughtUp(.init(seq: window.lastSent))) }
            deliverLive(held)
        }
    }

    private func deliver(_ entry: InboxEntry) {
        window.sent(entry.seq)
        guard case .open(let connection) = phase else { return }
        let frame: ServerFrame
        do {
            frame = try SessionFrames.delivery(entry, to: connection.address, cipher: services.cipher)
        } catch {
            logger.error("a stored message could not be unsealed", metadata: ["seq": "\(entry.seq)", "error": "\(error)"])
            sendFrame(.error(.init(code: .internalError, message: "stored message \(entry.seq) is unreadable")))
            return
        }
        sendFrame(frame)
        services.metrics.deliveriesSent.increment()
        if case .message(_, _, _, _, _, let sentAt) = entry.content {
            services.metrics.deliveryLatency.record(.milliseconds(max(0, services.nowMilliseconds - sentAt)))
        }
    }

    func relayEphemeral(_ frame: ServerFrame) {
        // A device that does not keep up misses typing indicators rather than queueing them.
        guard case .open = phase, isWritable else { return }
        sendFrame(frame)
    }

    // MARK: Writing

    func sendFrame(_ frame: ServerFrame) {
        guard !isClosed else { return }
        do {
            socket?.sendText(try SessionFrames.text(frame))
        } catch {
            logger.error("a server frame could not be encoded", metadata: ["error": "\(error)"])
        }
    }

    private var isClosed: Bool {
        if case .closed = phase { return true }
        return false
    }

    /// Says why in an error frame, then closes (1008 unless told otherwise) with the error code as
    /// the reason.
    func close(_ code: APIErrorCode, _ message: String, closeCode: WebSocketErrorCode = .policyViolation) {
        guard !isClosed else { return }
        sendFrame(.error(.init(code: code, message: message)))
        ended()
        socket?.close(code: closeCode, reason: code.rawValue)
    }
}
