import Foundation
import NIOConcurrencyHelpers
import SecureChatAPI

/// The devices connected to this process, and the way deliveries reach them — here, or through
/// the ``Backplane`` on the instance that holds a device's socket.
///
/// One connection per device: a device that reconnects (its old socket may not be known dead
/// yet) replaces its previous connection, which is told so and closed, on whichever instance.
final class DeliveryHub: Sendable {
    private struct Registry {
        var byDeviceKey: [Int64: ClientConnection] = [:]
        var byAddress: [DeviceAddress: ClientConnection] = [:]
    }

    private let registry = NIOLockedValueBox(Registry())
    private let backplaneBox = NIOLockedValueBox<(any Backplane)?>(nil)

    /// This process among the instances sharing the database; signals it sent come back to it.
    let instanceId = UUID().uuidString.lowercased()

    /// Connects this hub to the other instances.
    func attach(_ backplane: any Backplane) {
        backplaneBox.withLockedValue { $0 = backplane }
    }

    private var backplane: (any Backplane)? { backplaneBox.withLockedValue { $0 } }

    /// Registers `connection`, returning the one it replaces here; other instances close theirs.
    func register(_ connection: ClientConnection) -> ClientConnection? {
        let previous = registry.withLockedValue { registry in
            let previous = registry.byDeviceKey[connection.deviceKey]
            registry.byDeviceKey[connection.deviceKey] = connection
            registry.byAddress[connection.address] = connection
            return previous
        }
        backplane?.publish(.claimed(deviceKey: connection.deviceKey, at: connection.connectedAt))
        return previous
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

    /// Hands committed deliveries to the devices connected here, and wakes the other instances
    /// (they read them from the database) unless the store `announced` them already; devices
    /// connected nowhere find them stored. Every device is woken elsewhere too, not only those
    /// unknown here: a socket here may be an old one of a device that has just moved.
    func deliver(_ entries: [InboxEntry], announced: Bool = false) {
        guard !entries.isEmpty else { return }
        var byDevice: [Int64: [InboxEntry]] = [:]
        for entry in entries { byDevice[entry.deviceKey, default: []].append(entry) }
        let targets = registry.withLockedValue { registry in
            byDevice.compactMap { key, entries in registry.byDeviceKey[key].map { ($0, entries) } }
        }
        for (connection, entries) in targets { connection.push(entries) }
        if !announced { backplane?.publish(.wake(deviceKeys: byDevice.keys.sorted())) }
    }

    /// Relays an ephemeral frame to devices, here or through the other instances.
    func relayEphemeral(_ delivery: ServerFrame.EphemeralDelivery, to addresses: [DeviceAddress]) {
        let elsewhere = relayEphemeralHere(delivery, to: addresses)
        if !elsewhere.isEmpty { backplane?.publish(.ephemeral(to: elsewhere, delivery: delivery)) }
    }

    /// Relays to the devices connected here; returns the others.
    private func relayEphemeralHere(_ delivery: ServerFrame.EphemeralDelivery, to addresses: [DeviceAddress]) -> [DeviceAddress] {
        var elsewhere: [DeviceAddress] = []
        for address in addresses {
            if let connection = connection(for: address) { connection.sendEphemeral(.ephemeral(delivery)) } else { elsewhere.append(address) }
        }
        return elsewhere
    }

    /// Tells a device that its one-time prekeys run low, wherever it is connected.
    func sendPreKeysLow(_ count: Int, to address: DeviceAddress) {
        if let connection = connection(for: address) {
            connection.send(.preKeysLow(.init(count: count)))
        } else {
            backplane?.publish(.preKeysLow(to: address, count: count))
        }
    }

    /// Closes a device's socket, wherever it is connected.
    func close(_ address: DeviceAddress, _ code: APIErrorCode, _ message: String) {
        connection(for: address)?.close(code, message)
        backplane?.publish(.closeDevice(address, code: code, message: message))
    }

    /// Closes the sockets of one session (logout); `everywhere: false` only here (each instance
    /// sweeps its own sockets of ended sessions).
    func disconnect(sessionId: String, reason: String, everywhere: Bool = true) {
        let doomed = registry.withLockedValue { $0.byDeviceKey.values.filter { $0.sessionId == sessionId } }
        for connection in doomed { connection.close(.unauthorized, reason) }
        if everywhere { backplane?.publish(.endSession(sessionId: sessionId, reason: reason)) }
    }

    /// Closes an account's sockets, but those of `exceptSessionId` (password change, deletion).
    func disconnect(userId: String, exceptSessionId: String?, reason: String) {
        disconnectHere(userId: userId, exceptSessionId: exceptSessionId, reason: reason)
        backplane?.publish(.endAccount(userId: userId, exceptSessionId: exceptSessionId, reason: reason))
    }

    private func disconnectHere(userId: String, exceptSessionId: String?, reason: String) {
        let doomed = registry.withLockedValue { registry in
            registry.byDeviceKey.values.filter { $0.address.userId == userId && $0.sessionId != exceptSessionId }
        }
        for connection in doomed { connection.close(.unauthorized, reason) }
    }

    /// The sockets open here.
    var connections: [ClientConnection] {
        registry.withLockedValue { Array($0.byDeviceKey.values) }
    }

    func connection(for address: DeviceAddress) -> ClientConnection? {
        registry.withLockedValue { $0.byAddress[address] }
    }

    // MARK: Signals from other instances

    /// Acts on another instance's signal, for the devices connected here only.
    func apply(_ message: ClusterMessage) {
        guard message.from != instanceId else { return }
        switch message.signal {
        case .wake(let keys):
            let connections = registry.withLockedValue { registry in keys.compactMap { registry.byDeviceKey[$0] } }
            for connection in connections { connection.wake() }
        case .ephemeral(let addresses, let delivery):
            _ = relayEphemeralHere(delivery, to: addresses)
        case .preKeysLow(let address, let count):
            connection(for: address)?.send(.preKeysLow(.init(count: count)))
        case .closeDevice(let address, let code, let message):
            connection(for: address)?.close(code, message)
        case .endSession(let sessionId, let reason):
            disconnect(sessionId: sessionId, reason: reason, everywhere: false)
        case .endAccount(let userId, let exceptSessionId, let reason):
            disconnectHere(userId: userId, exceptSessionId: exceptSessionId, reason: reason)
        case .claimed(let key, let at):
            // The newer socket wins; instances' clocks are compared (keep them in sync), ties by id.
            let replaced = registry.withLockedValue { registry in
                registry.byDeviceKey[key].flatMap { local in
                    (local.connectedAt, instanceId) < (at, message.from) ? local : nil
                }
            }
            replaced?.close(.duplicateConnection, "this device connected again on another socket")
        case .heartbeat:
            break
        }
    }

    /// After signals may have been missed (the backplane reconnected), every device here looks
    /// in the database for what it has not been sent.
    func wakeAll() {
        for connection in connections { connection.wake() }
    }
}
