import SecureChatAPI

/// One authenticated device's socket as the rest of the server sees it: a queue of things to
/// send, drained in order by the socket's own writer task (``RealtimeSession``).
final class ClientConnection: Sendable {
    enum Outgoing: Sendable {
        /// A frame to write as is.
        case frame(ServerFrame)
        /// Freshly committed deliveries; written if they continue the sequence, else fetched.
        case live([InboxEntry])
        /// The device acknowledged up to this sequence number: the delivery window moves on.
        case acknowledged(Int64)
        /// Say why and close: another connection of the device took over, or its session ended.
        case close(APIErrorCode, String)
    }

    let address: DeviceAddress
    let deviceKey: Int64
    let sessionId: String
    private let continuation: AsyncStream<Outgoing>.Continuation
    let outgoing: AsyncStream<Outgoing>

    init(address: DeviceAddress, deviceKey: Int64, sessionId: String) {
        self.address = address
        self.deviceKey = deviceKey
        self.sessionId = sessionId
        (outgoing, continuation) = AsyncStream.makeStream(of: Outgoing.self)
    }

    func push(_ entries: [InboxEntry]) { continuation.yield(.live(entries)) }
    func send(_ frame: ServerFrame) { continuation.yield(.frame(frame)) }
    func acknowledged(_ seq: Int64) { continuation.yield(.acknowledged(seq)) }
    func close(_ code: APIErrorCode, _ message: String) { continuation.yield(.close(code, message)) }
    func finish() { continuation.finish() }
}
