import Foundation
import SecureChatAPI

/// What one server instance tells the others about devices it cannot reach itself, when several
/// share one PostgreSQL database (`PostgresBackplane`). Nothing here is needed for correctness of
/// storage: every delivery is in the database before a `wake` is sent, so a lost signal delays a
/// delivery until the device's next wake-up or reconnection but never loses it. The signals carry
/// no message content: `wake` names devices, `ephemeral` carries ciphertext only.
enum ClusterSignal: Codable, Sendable, Equatable {
    /// These devices have new stored deliveries: the instance holding their sockets fetches them.
    case wake(deviceKeys: [Int64])
    /// A typing indicator or other ephemeral frame for devices connected elsewhere.
    case ephemeral(to: [DeviceAddress], delivery: ServerFrame.EphemeralDelivery)
    /// Tell a device its one-time prekeys run low.
    case preKeysLow(to: DeviceAddress, count: Int)
    /// Close a device's socket (the device was removed).
    case closeDevice(DeviceAddress, code: APIErrorCode, message: String)
    /// Close the sockets of a session (logout, revocation).
    case endSession(sessionId: String, reason: String)
    /// Close an account's sockets but one session's (password change, deletion).
    case endAccount(userId: String, exceptSessionId: String?, reason: String)
    /// A device connected to the sending instance at `at` (milliseconds): an older socket of the
    /// same device elsewhere is closed, as one instance does with a reconnection.
    case claimed(deviceKey: Int64, at: Int64)
    /// An instance checking that its own listening connection still hears the channel.
    case heartbeat
}

/// A signal on the wire: the sending instance (which ignores its own) and the signal, as JSON.
struct ClusterMessage: Codable, Sendable, Equatable {
    var from: String
    var signal: ClusterSignal

    /// PostgreSQL refuses NOTIFY payloads of 8000 bytes or more.
    static let maximumPayloadBytes = 7_900
    /// Ephemeral payloads larger than this stay on their instance: a typing indicator is a few
    /// hundred bytes, and a large one copied into every split signal would multiply.
    static let maximumCrossingEphemeralBytes = 2_048

    /// The JSON payloads carrying `signal`, split where it is too long for one; an ephemeral frame
    /// too long even for a single recipient yields none (ephemeral frames may be lost).
    static func payloads(_ signal: ClusterSignal, from instance: String) -> [String] {
        if case .ephemeral(_, let delivery) = signal, delivery.payload.count > maximumCrossingEphemeralBytes { return [] }
        guard let data = try? JSONEncoder().encode(ClusterMessage(from: instance, signal: signal)) else { return [] }
        if data.count <= maximumPayloadBytes { return [String(decoding: data, as: UTF8.self)] }
        switch signal {
        case .wake(let keys) where keys.count > 1:
            let half = keys.count / 2
            return payloads(.wake(deviceKeys: Array(keys[..<half])), from: instance)
                + payloads(.wake(deviceKeys: Array(keys[half...])), from: instance)
        case .ephemeral(let addresses, let delivery) where addresses.count > 1:
            let half = addresses.count / 2
            return payloads(.ephemeral(to: Array(addresses[..<half]), delivery: delivery), from: instance)
                + payloads(.ephemeral(to: Array(addresses[half...]), delivery: delivery), from: instance)
        default:
            return []
        }
    }

    static func decode(_ payload: String) -> ClusterMessage? {
        try? JSONDecoder().decode(ClusterMessage.self, from: Data(payload.utf8))
    }
}

/// Carries signals between instances. The single-process server has none.
protocol Backplane: Sendable {
    func publish(_ signal: ClusterSignal)
}
