import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// An IP address or a CIDR range (`10.0.0.0/8`, `fd00::/8`, `127.0.0.1`): the proxies whose
/// `X-Forwarded-For` the server believes.
public struct IPAddressRange: Sendable, Equatable, CustomStringConvertible {
    private let network: [UInt8]
    private let prefixLength: Int

    public init?(_ text: String) {
        let parts = text.trimmingCharacters(in: .whitespaces).split(separator: "/", maxSplits: 1)
        guard let first = parts.first, let bytes = Self.bytes(of: String(first)) else { return nil }
        let bits = bytes.count * 8
        if parts.count == 2 {
            guard let length = Int(parts[1]), (0...bits).contains(length) else { return nil }
            prefixLength = length
        } else {
            prefixLength = bits
        }
        network = bytes
    }

    public var description: String {
        var text = ""
        network.withUnsafeBufferPointer { raw in
            var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
            if inet_ntop(raw.count == 4 ? AF_INET : AF_INET6, raw.baseAddress, &buffer, socklen_t(buffer.count)) != nil {
                text = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            }
        }
        return "\(text)/\(prefixLength)"
    }

    func contains(_ address: String) -> Bool {
        guard let bytes = Self.bytes(of: address) else { return false }
        guard bytes.count == network.count else {
            // An IPv4 peer seen on a dual-stack socket arrives as ::ffff:a.b.c.d.
            if network.count == 4, bytes.count == 16, bytes.prefix(12).elementsEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF]) {
                return matches(Array(bytes.suffix(4)))
            }
            return false
        }
        return matches(bytes)
    }

    private func matches(_ bytes: [UInt8]) -> Bool {
        var remaining = prefixLength
        for (a, b) in zip(network, bytes) where remaining > 0 {
            let bits = min(8, remaining)
            let mask = UInt8(truncatingIfNeeded: 0xFF << (8 - bits))
            guard a & mask == b & mask else { return false }
            remaining -= bits
        }
        return true
    }

    /// The address's bytes: 4 for IPv4, 16 for IPv6; nil if it is neither.
    static func bytes(of text: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 { return withUnsafeBytes(of: &v4) { Array($0) } }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 { return withUnsafeBytes(of: &v6) { Array($0) } }
        return nil
    }
}

/// Who a request comes from, for rate limits and the audit log.
enum ClientAddress {
    /// The peer itself, unless it is a trusted proxy: then the nearest address in
    /// `X-Forwarded-For` that is not one (proxies append, so the client's own claims sit to the left
    /// of what the trusted proxies wrote and are never believed).
    static func resolve(peer: String, forwardedFor: [String], trustedProxies: [IPAddressRange]) -> String {
        guard !trustedProxies.isEmpty, isTrusted(peer, trustedProxies) else { return peer }
        let hops = forwardedFor.flatMap { $0.split(separator: ",") }.map { $0.trimmingCharacters(in: .whitespaces) }
        var nearest = peer
        for hop in hops.reversed() {
            guard IPAddressRange.bytes(of: hop) != nil else { return nearest }
            nearest = hop
            if !isTrusted(hop, trustedProxies) { return hop }
        }
        return nearest
    }

    /// What per-address limits count by: the address itself for IPv4, its /64 for IPv6, since
    /// one IPv6 host commonly has a whole /64 to pick addresses from.
    static func limitKey(_ address: String) -> String {
        guard let bytes = IPAddressRange.bytes(of: address), bytes.count == 16 else { return address }
        if bytes.prefix(12).elementsEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF]) {
            return bytes.suffix(4).map(String.init).joined(separator: ".")
        }
        return bytes.prefix(8).map { String($0, radix: 16) }.joined(separator: ":") + "::/64"
    }

    private static func isTrusted(_ address: String, _ proxies: [IPAddressRange]) -> Bool {
        proxies.contains { $0.contains(address) }
    }
}
