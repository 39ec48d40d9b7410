import NIOConcurrencyHelpers
import SecureChatAPI

/// The devices connected to this process, and the way deliveries reach them.
///
/// One connection per device: a device that reconnects (its old socket may not be known dead
/// yet) replaces its previous connection, which is told so and closed.
final class DeliveryHub: Sendable {
    private struct Registry {
        var byDeviceKey: [Int64: ClientConnection] = [:]
        var byAddress: [DeviceAddress: ClientConnection] = [:]
    }

    private let registry = NIOLockedValueBox(Registry())

    /// Registers `connection`, returning the one it replaces.
    func register(_ connection: ClientConnection) -> ClientConnection? {
        registry.withLockedValue { registry in
            let previous = registry.byDeviceKey[connection.deviceKey]
            registry.byDeviceKey[connection.deviceKey] = connection
            registry.byAddress[connection.address] = connection
            return previous
        }
    }

    func unregister(_ connection: ClientConnection) {
        registry.withLockedValue { registry in
            if registry.byDeviceKey[connection.deviceKey] === connection {
                registry.byDeviceKey[connection.deviceKey] = nil
                registry.byAddress[connection.address] = nil
            }
        }
    }

    var connectionCount: Int { registry.withLockedValue { $0.byDeviceKey.count } }

    /// Hands committed deliveries to the devices that are connected; the others find them stored.
    func deliver(_ entries: [InboxEntry]) {
        var byDevice: [Int64: [InboxEntry]] = [:]
        for entry in entries { byDevice[entry.deviceKey, default: []].append(entry) }
        let targets = registry.withLockedValue { registry in
            byDevice.compactMap { key, entries in registry.byDeviceKey[key].map { ($0, entries) } }
        }
        for (connection, entries) in targets { connection.push(entries) }
    }

    /// Closes the sockets of one session (logout).
    func disconnect(sessionId: String, reason: String) {
        let doomed = registry.withLockedValue { $0.byDeviceKey.values.filter { $0.sessionId == sessionId } }
        for connection in doomed { connection.close(.unauthorized, reason) }
    }

    /// Closes an account's sockets, but those of `exceptSessionId` (password change, deletion).
    func disconnect(userId: String, exceptSessionId: String?, reason: String) {
        let doomed = registry.withLockedValue { registry in
            registry.byDeviceKey.values.filter { $0.address.userId == userId && $0.sessionId != exceptSessionId }
        }
        for connection in doomed { connection.close(.unauthorized, reason) }
    }

    /// The sessions with an open socket here.
    var connectedSessionIds: Set<String> {
        registry.withLockedValue { Set($0.byDeviceKey.values.map(\.sessionId)) }
    }

    func connection(for address: DeviceAddress) -> ClientConnection? {
        registry.withLockedValue { $0.byAddress[address] }
    }
}
