/// One device of one account: who a session or a sender key belongs to.
///
/// Addressing is always (user, device), so that accounts with several devices need no wire change.
public struct ProtocolAddress: Hashable, Sendable, CustomStringConvertible {
    /// The account's stable user id.
    public let name: String
    public let deviceId: UInt32

    public init(name: String, deviceId: UInt32) {
        self.name = name
        self.deviceId = deviceId
    }

    public var description: String { "\(name).\(deviceId)" }
}
