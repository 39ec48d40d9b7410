import Foundation
import Logging
import NIOWebSocket
import SecureChatAPI
import HummingbirdWSClient
import HummingbirdWSCompression

/// A send committed to the local outbox: its row, client id and frame text.
struct OutboxEntry: Sendable {
    var row: Int64
    var id: String
    var text: String
}

/// The connection's part of the client's state.
struct ConnectionSlot {
    var task: Task<Void, Never>?
    var writer: WebSocketOutboundWriter?
    /// Set by `welcome` on the current socket; cleared when it ends.
    var welcomed = false
    var caughtUp = false
    /// Outbox rows written to the current socket, by client message id.
    var inFlight: [String: Int64] = [:]
    /// Counts sockets: work that awaited across a socket's end must not touch the next one's state.
    var generation = 0
    var flushWaiters: [CheckedContinuation<Result<Void, ClientError>, Never>] = []
    var caughtUpWaiters: [CheckedContinuation<Void, Never>] = []
}

extension SecureChatClient {
    /// Backoff after a failed or dropped connection: 0.5 s doubling to 30 s, with ±25 % jitter so
    /// that clients dropped together do not come back together.
    static func backoff(attempt: Int) -> Duration {
        let base = min(30.0, 0.5 * pow(2.0, Double(min(attempt, 10))))
        return .milliseconds(Int(base * Double.random(in: 0.75...1.25) * 1000))
    }

    /// Starts the connection; it reconnects by itself until ``close()`` or ``disconnect()``.
    public func connect() {
        guard !isClosed, connection.task == nil else { return }
        connection.task = Task { await self.runConnection() }
    }

    /// Stops the connection (the local store stays open; ``connect()`` starts it again).
    public func disconnect() async {
        guard let task = connection.task else { return }
        connection.task = nil
        task.cancel()
        if let writer = connection.writer { try? await writer.close(.normalClosure, reason: nil) }
        await task.value
    }

    /// Waits until the connection is up and everything stored for this device was received.
    public func waitUntilCaughtUp() async {
        if connection.caughtUp { return }
        await withCheckedContinuation { connection.caughtUpWaiters.append($0) }
    }

    /// Waits until the server has accepted everything queued so far (or `timeout` passes).
    public func flush(timeout: Duration = .seconds(30)) async throws(ClientError) {
        guard !outbox.isEmpty else { return }
        let timer = Task {
            try await Task.sleep(for: timeout)
            self.failFlushWaiters(.timedOut("the server did not accept every queued message"))
        }
        defer { timer.cancel() }
        let result = await withCheckedContinuation { connection.flushWaiters.append($0) }
        try result.get()
    }

    func failFlushWaiters(_ error: ClientError = .closed) {
        let waiters = connection.flushWaiters
        connection.flushWaiters = []
        for waiter in waiters { waiter.resume(returning: .failure(error)) }
    }

    private var socketURL: String {
        var components = URLComponents(url: account.server, resolvingAgainstBaseURL: false)
        components?.scheme = account.server.scheme == "https" ? "wss" : "ws"
        components?.path = "/v1/ws"
        return components?.string ?? ""
    }

    private func runConnection() async {
        var attempt = 0
        while !Task.isCancelled && !isClosed {
            emit(.connection(.connecting))
            var reason = "connection closed"
            do {
                try await refreshTokenIfNeeded()
                let close = try await WebSocketClient.connect(
                    url: socketURL,
                    configuration: .init(
                        maxFrameSize: 1 << 20,
                        // Offered, used if the server agrees: JSON frames and base64 shrink by a
                        // fifth to a half (docs/BENCHMARKS.md). Each message on its own, as the server asks.
                        extensions: [.perMessageDeflate(noContextTakeover: true, maxDecompressedFrameSize: 1 << 20)],
                        autoPing: .enabled(timePeriod: .seconds(30))),
                    logger: logger
                ) { inbound, outbound, _ in
                    try await self.opened(outbound)
                    for try await message in inbound.messages(maxSize: 1 << 20) {
                        guard case .text(let text) = message else { continue }
                        try await self.received(text)
                    }
                }
                if let close { reason = "closed by the server (\(close.closeCode))\(close.reason.map { ": \($0)" } ?? "")" }
            } catch ClientError.server(401, _, _) {
                sessionEnded()
                return
            } catch let error as ClientError where error == .closed {
                return
            } catch let error as HelloRefused {
                if error.sessionEnded {
                    sessionEnded()
                    return
                }
                reason = error.message
            } catch {
                reason = "\(error)"
            }
            let wasWelcomed = connection.welcomed
            socketEnded()
            guard !Task.isCancelled, !isClosed else { break }
            emit(.connection(.offline(reason: reason)))
            attempt = wasWelcomed ? 0 : attempt + 1
            do {
                try await Task.sleep(for: Self.backoff(attempt: attempt))
            } catch {
                break
            }
        }
        socketEnded()
        emit(.connection(.disconnected))
    }

    private func sessionEnded() {
        socketEnded()
        connection.task = nil
        emit(.sessionEnded)
    }

    private func socketEnded() {
        connection.writer = nil
        connection.welcomed = false
        connection.caughtUp = false
        connection.inFlight = [:]
    }

    private func opened(_ writer: WebSocketOutboundWriter) async throws {
        connection.generation += 1
        connection.writer = writer
        let hello = ClientFrame.hello(.init(token: account.accessToken, deviceId: account.deviceId, resumeAfter: cursor))
        try await write(hello)
    }

    func write(_ frame: ClientFrame) async throws {
        guard let writer = connection.writer else { return }
        let data = try APIJSON.makeEncoder().encode(frame)
        try await writer.write(.text(String(decoding: data, as: UTF8.self)))
    }

    private struct HelloRefused: Error {
        var message: String
        var sessionEnded: Bool
    }

    private func received(_ text: String) async throws {
        let frame: ServerFrame
        do {
            frame = try APIJSON.makeDecoder().decode(ServerFrame.self, from: Data(text.utf8))
        } catch {
            // A newer server may send frames this version does not know: skip them.
            logger.debug("unknown frame from the server")
            return
        }
        switch frame {
        case .welcome(let welcome):
            connection.welcomed = true
            if welcome.lastSeq < cursor {
                // The server's counter is behind ours (restored from a backup): it sends everything
                // it still stores, from its first seq (API.md §5.3), so start counting again.
                cursor = 0
                var changes = LocalStore.Changes()
                changes.put(.cursor, "inbox", Self.cursorPayload(cursor))
                try commit(changes)
            }
            try await maintainSignedPreKey()
            try await sendOutbox()
        case .caughtUp:
            connection.caughtUp = true
            await sendPendingReceipts()
            emit(.connection(.online))
            let waiters = connection.caughtUpWaiters
            connection.caughtUpWaiters = []
            for waiter in waiters { waiter.resume() }
        case .message(let delivery):
            try await receive(delivery)
        case .roomEvent(let event):
            try await handle(event)
        case .accepted(let accepted):
            try markAccepted(accepted.id)
        case .ephemeral(let ephemeral):
            try receiveEphemeral(ephemeral)
        case .preKeysLow(let low):
            try await replenishOneTimePreKeys(serverCount: low.count)
        case .error(let error):
            if !connection.welcomed {
                let ended = error.code == .unauthorized || error.code == .unknownDevice
                if error.code == .tokenExpired {
                    // Refreshed before the next attempt.
                    account.accessTokenExpiresAt = .distantPast
                }
                throw HelloRefused(message: error.message, sessionEnded: ended)
            }
            try await failed(error)
        }
    }

    /// Processed and committed: the server may forget it.
    func acknowledge(_ seq: Int64) async throws {
        if seq > cursor {
            cursor = seq
            var changes = LocalStore.Changes()
            changes.put(.cursor, "inbox", Self.cursorPayload(seq))
            try commit(changes)
        }
        try await write(.ack(.init(seq: seq)))
    }

    // MARK: The outbox

    /// Commits `changes`, keeping the in-memory outbox in step with the stored one.
    func commit(_ changes: LocalStore.Changes) throws(ClientError) {
        let rows = try store.commit(changes)
        for ((id, frame), row) in zip(changes.queued, rows) {
            outbox.append(OutboxEntry(row: row, id: id, text: String(decoding: frame, as: UTF8.self)))
        }
    }

    /// After a local commit: writes what is queued if a socket is up. A failed write leaves it
    /// queued; the next connection sends it.
    func sendOutboxIfConnected() async {
        do {
            try await sendOutbox()
        } catch {
            logger.debug("queued sends wait for the connection", metadata: ["error": "\(error)"])
        }
    }

    /// Writes every queued send not yet written on this socket, oldest first.
    func sendOutbox() async throws {
        guard connection.welcomed, let writer = connection.writer else { return }
        let generation = connection.generation
        for entry in outbox where connection.inFlight[entry.id] == nil {
            // The socket this loop writes to may have ended during the last write.
            guard connection.generation == generation, connection.writer != nil else { return }
            connection.inFlight[entry.id] = entry.row
            try await writer.write(.text(entry.text))
        }
    }

    private func markAccepted(_ id: String) throws {
        guard let row = connection.inFlight.removeValue(forKey: id) else { return }
        try removeFromOutbox(row)
        emit(.accepted(id: id))
        resumeFlushWaitersIfEmpty()
    }

    private func failed(_ error: ServerFrame.ErrorFrame) async throws {
        guard let id = error.id, let row = connection.inFlight.removeValue(forKey: id) else {
            logger.warning("the server refused a frame", metadata: ["code": "\(error.code.rawValue)", "message": "\(error.message)"])
            return
        }
        switch error.code {
        case .unavailable, .rateLimited:
            // Worth sending again: it stays queued for the next connection.
            logger.notice("a send will be retried", metadata: ["code": "\(error.code.rawValue)"])
        case .unknownDevice:
            // A recipient device was deleted after the list was fetched: the rest still get it.
            try await resendWithoutDeletedDevices(row: row, id: id)
        default:
            // Refused for good (too large, not a member any more): drop it and say so.
            try removeFromOutbox(row)
            failedSends[id] = error.message
            emit(.sendFailed(id: id, reason: error.message))
            resumeFlushWaitersIfEmpty()
        }
    }

    /// Why the server refused a message of this device for good, if it did (since the client opened).
    public func failure(of id: String) -> String? {
        failedSends[id]
    }

    /// The ids of messages the server refused for good since the client opened.
    public var failedSendIds: [String] { failedSends.keys.sorted() }

    /// Drops the ciphertexts of devices that no longer exist from a queued pairwise send and
    /// queues the rest under the same id (a refused send was not stored, so the id is still free).
    private func resendWithoutDeletedDevices(row: Int64, id: String) async throws {
        guard let index = outbox.firstIndex(where: { $0.row == row }),
              case .send(var send) = try? APIJSON.makeDecoder().decode(ClientFrame.self, from: Data(outbox[index].text.utf8)),
              let recipients = send.recipients
        else { return }
        var existing: Set<DeviceAddress> = []
        for userId in Set(recipients.map(\.userId)) {
            deviceLists[userId] = nil
            let token = try await validToken()
            let listed: UserDevicesResponse = try await api.send(.GET, "/v1/users/\(APIClient.segment(userId))/devices", token: token)
            existing.formUnion(listed.devices.map { DeviceAddress(userId: userId, deviceId: $0.deviceId) })
        }
        send.recipients = recipients.filter { existing.contains(DeviceAddress(userId: $0.userId, deviceId: $0.deviceId)) }
        if send.recipients?.isEmpty ?? true {
            try removeFromOutbox(row)
            failedSends[id] = "none of its recipients' devices exist any more"
            emit(.sendFailed(id: id, reason: "none of its recipients' devices exist any more"))
            resumeFlushWaitersIfEmpty()
            return
        }
        let frame = try Self.encode(ClientFrame.send(send))
        var changes = LocalStore.Changes()
        changes.replaceInOutbox(row, frame)
        try commit(changes)
        if let index = outbox.firstIndex(where: { $0.row == row }) { outbox[index].text = String(decoding: frame, as: UTF8.self) }
        try await sendOutbox()
    }

    private func removeFromOutbox(_ row: Int64) throws(ClientError) {
        var changes = LocalStore.Changes()
        changes.removeFromOutbox(row)
        try commit(changes)
        outbox.removeAll { $0.row == row }
    }

    private func resumeFlushWaitersIfEmpty() {
        guard !connection.flushWaiters.isEmpty, outbox.isEmpty else { return }
        let waiters = connection.flushWaiters
        connection.flushWaiters = []
        for waiter in waiters { waiter.resume(returning: .success(())) }
    }

    // MARK: Tokens

    /// An access token with at least a minute left, refreshed (and the rotation stored) if needed.
    func validToken() async throws(ClientError) -> String {
        try await refreshTokenIfNeeded()
        return account.accessToken
    }

    /// Refreshes at most once at a time: the server ends the whole session when one refresh token
    /// is used twice (API.md §1.6), so concurrent callers wait for the refresh in progress.
    func refreshTokenIfNeeded() async throws(ClientError) {
        guard account.accessTokenExpiresAt.timeIntervalSinceNow < 60 else { return }
        let task: Task<Void, any Error>
        if let running = refreshing {
            task = running
        } else {
            task = Task { try await self.refreshToken() }
            refreshing = task
        }
        do {
            try await task.value
        } catch {
            throw (error as? ClientError) ?? .unreachable("\(error)")
        }
    }

    private func refreshToken() async throws(ClientError) {
        defer { refreshing = nil }
        let tokens: TokenResponse = try await api.send(.POST, "/v1/sessions/refresh", json: RefreshRequest(refreshToken: account.refreshToken))
        account.apply(tokens)
        var changes = LocalStore.Changes()
        changes.put(.account, "account", try Self.encode(account))
        try commit(changes)
    }
}
