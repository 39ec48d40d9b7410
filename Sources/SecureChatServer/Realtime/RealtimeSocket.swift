import NIOWebSocket

/// What a session needs from its socket. Implemented by ``WebSocketTransport``; every call is made
/// on the socket's event loop.
protocol RealtimeSocket: AnyObject {
    /// Queues a text frame; frames queued in one event-loop turn leave in one flush.
    func sendText(_ text: String)
    /// Sends `error`, then a close frame with `code`, and closes the connection.
    func close(code: WebSocketErrorCode, reason: String)
    /// False while the peer is not reading what was already written.
    var isWritable: Bool { get }
    func pauseReading(_ reason: ReadPause)
    func resumeReading(_ reason: ReadPause)
}

/// Why a socket stopped reading: reading resumes when no reason is left.
struct ReadPause: OptionSet, Sendable {
    let rawValue: UInt8
    /// `hello` is being checked: later frames wait for the outcome.
    static let authenticating = ReadPause(rawValue: 1)
    /// The device has ``RealtimeSession/maximumInFlightSends`` sends waiting for the database.
    static let sendsInFlight = ReadPause(rawValue: 2)
    /// The peer does not read: what it sends would produce answers nobody takes.
    static let peerNotReading = ReadPause(rawValue: 4)
    /// The socket spent its budget of frames or bytes (``SocketRateLimit``) and waits for it to refill.
    static let rateLimited = ReadPause(rawValue: 8)
}
