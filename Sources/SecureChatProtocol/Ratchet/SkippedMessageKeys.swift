import SecureChatKeys

/// Message keys derived ahead of messages that have not arrived yet, indexed by (ratchet key, N).
///
/// Bounded by ``ProtocolLimits/maxStoredSkippedKeys``: inserting past the bound evicts the oldest
/// key first. A key is removed when it is used, so a replayed message finds nothing.
struct SkippedMessageKeys: Sendable, Equatable {
    struct Index: Hashable, Sendable {
        let ratchetKey: [UInt8]
        let messageNumber: UInt32
    }

    /// Insertion order, oldest first; the dictionary holds the keys.
    private(set) var order: [Index] = []
    private var keys: [Index: MessageKey] = [:]
    private let capacity: Int

    init(capacity: Int = ProtocolLimits.maxStoredSkippedKeys) {
        self.capacity = capacity
    }

    var count: Int { keys.count }

    mutating func insert(_ key: MessageKey, at index: Index) {
        if keys.updateValue(key, forKey: index) == nil {
            order.append(index)
        }
        while keys.count > capacity {
            let oldest = order.removeFirst()
            keys[oldest] = nil
        }
    }

    mutating func take(_ index: Index) -> MessageKey? {
        guard !keys.isEmpty, let key = keys.removeValue(forKey: index) else { return nil }
        if let position = order.firstIndex(of: index) { order.remove(at: position) }
        return key
    }

    /// Entries in insertion order, for serialisation.
    var entries: [(Index, MessageKey)] {
        order.compactMap { index in keys[index].map { (index, $0) } }
    }
}
