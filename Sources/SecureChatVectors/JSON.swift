public import Foundation

/// Why a vector file failed to parse or to check. The message names the file part that failed.
public struct VectorError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// A JSON value that keeps object members in order, so generated files are byte-for-byte
/// deterministic and read in the order the schema documents.
public indirect enum JSON: Equatable, Sendable {
    case null
    case number(Int)
    case string(String)
    case array([JSON])
    case object([Member])

    public struct Member: Equatable, Sendable {
        public let key: String
        public let value: JSON
        public init(_ key: String, _ value: JSON) {
            self.key = key
            self.value = value
        }
    }

    static func hex(_ bytes: some Sequence<UInt8>) -> JSON { .string(Hex.encode(bytes)) }

    // MARK: Reading

    /// Parses with Foundation, then converts; numbers must be integers.
    public static func parse(_ data: Data) throws(VectorError) -> JSON {
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
        } catch {
            throw VectorError("not valid JSON: \(error.localizedDescription)")
        }
        return try convert(object, path: "$")
    }

    private static func convert(_ value: Any, path: String) throws(VectorError) -> JSON {
        switch value {
        case is NSNull: return .null
        case let string as String: return .string(string)
        case let array as [Any]:
            var items: [JSON] = []
            for (index, item) in array.enumerated() { items.append(try convert(item, path: "\(path)[\(index)]")) }
            return .array(items)
        case let dictionary as [String: Any]:
            var members: [Member] = []
            for key in dictionary.keys.sorted() {
                members.append(Member(key, try convert(dictionary[key]!, path: "\(path).\(key)")))
            }
            return .object(members)
        case let number as NSNumber:
            // Through Int64, not Double: u64 timestamps up to 2^63 - 1 must survive exactly.
            let integer = number.int64Value
            guard NSNumber(value: integer).isEqual(to: number) else {
                throw VectorError("\(path): not an integer in -2^63 ..< 2^63")
            }
            return .number(Int(integer))
        default:
            throw VectorError("\(path): unsupported JSON value")
        }
    }

    /// An object's members, after checking that every key is one of `allowed` and none is repeated.
    func object(_ path: String, allowed: Set<String>) throws(VectorError) -> JSONObject {
        guard case .object(let members) = self else { throw VectorError("\(path): expected an object") }
        var seen = Set<String>()
        for member in members {
            guard allowed.contains(member.key) else { throw VectorError("\(path): unknown member \"\(member.key)\"") }
            guard seen.insert(member.key).inserted else { throw VectorError("\(path): repeated member \"\(member.key)\"") }
        }
        return JSONObject(path: path, members: members)
    }

    func array(_ path: String) throws(VectorError) -> [JSON] {
        guard case .array(let items) = self else { throw VectorError("\(path): expected an array") }
        return items
    }

    // MARK: Writing

    /// Two-space indentation; objects and arrays holding only scalars are written on one line.
    public func rendered(indent: Int = 0) -> String {
        let pad = String(repeating: " ", count: indent)
        let innerPad = String(repeating: " ", count: indent + 2)
        switch self {
        case .null: return "null"
        case .number(let value): return String(value)
        case .string(let value): return Self.quoted(value)
        case .array(let items):
            if items.isEmpty { return "[]" }
            if items.allSatisfy(\.isScalar) { return "[" + items.map { $0.rendered() }.joined(separator: ", ") + "]" }
            return "[\n" + items.map { innerPad + $0.rendered(indent: indent + 2) }.joined(separator: ",\n") + "\n\(pad)]"
        case .object(let members):
            if members.isEmpty { return "{}" }
            if members.allSatisfy({ $0.value.isScalar }) {
                return "{" + members.map { "\(Self.quoted($0.key)): \($0.value.rendered())" }.joined(separator: ", ") + "}"
            }
            return "{\n" + members.map { "\(innerPad)\(Self.quoted($0.key)): \($0.value.rendered(indent: indent + 2))" }
                .joined(separator: ",\n") + "\n\(pad)}"
        }
    }

    var isScalar: Bool {
        switch self {
        case .array(let items): items.isEmpty
        case .object(let members): members.isEmpty
        default: true
        }
    }

    private static func quoted(_ string: String) -> String {
        var result = "\""
        for scalar in string.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\t": result += "\\t"
            case "\r": result += "\\r"
            default:
                if scalar.value < 0x20 {
                    result += String(format: "\\u%04x", scalar.value)
                } else {
                    result.unicodeScalars.append(scalar)
                }
            }
        }
        return result + "\""
    }
}

/// Typed access to a checked object's members, with the path in every error.
struct JSONObject {
    let path: String
    let members: [JSON.Member]

    func optional(_ key: String) -> JSON? {
        members.first { $0.key == key }.flatMap { $0.value == .null ? nil : $0.value }
    }

    func value(_ key: String) throws(VectorError) -> JSON {
        guard let value = optional(key) else { throw VectorError("\(path): missing \"\(key)\"") }
        return value
    }

    func string(_ key: String) throws(VectorError) -> String {
        guard case .string(let value) = try value(key) else { throw VectorError("\(path).\(key): expected a string") }
        return value
    }

    func optionalString(_ key: String) throws(VectorError) -> String? {
        guard let value = optional(key) else { return nil }
        guard case .string(let string) = value else { throw VectorError("\(path).\(key): expected a string") }
        return string
    }

    func int(_ key: String) throws(VectorError) -> Int {
        guard case .number(let value) = try value(key) else { throw VectorError("\(path).\(key): expected an integer") }
        return value
    }

    /// Lowercase hex of exactly `length` bytes when a length is given.
    func hex(_ key: String, length: Int? = nil) throws(VectorError) -> [UInt8] {
        let bytes = try Hex.decode(try string(key), path: "\(path).\(key)")
        if let length, bytes.count != length {
            throw VectorError("\(path).\(key): expected \(length) bytes, found \(bytes.count)")
        }
        return bytes
    }

    func optionalHex(_ key: String, length: Int? = nil) throws(VectorError) -> [UInt8]? {
        optional(key) == nil ? nil : try hex(key, length: length)
    }

    func array(_ key: String) throws(VectorError) -> [JSON] {
        try value(key).array("\(path).\(key)")
    }
}

public enum Hex {
    public static func encode(_ bytes: some Sequence<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var output: [UInt8] = []
        for byte in bytes {
            output.append(digits[Int(byte >> 4)])
            output.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: output, as: UTF8.self)
    }

    /// Strict: lowercase digits only, even length.
    static func decode(_ string: String, path: String) throws(VectorError) -> [UInt8] {
        let characters = Array(string.utf8)
        guard characters.count % 2 == 0 else { throw VectorError("\(path): odd-length hex") }
        func nibble(_ character: UInt8) throws(VectorError) -> UInt8 {
            switch character {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): return character - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): return character - UInt8(ascii: "a") + 10
            default: throw VectorError("\(path): not lowercase hex")
            }
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(characters.count / 2)
        var index = 0
        while index < characters.count {
            bytes.append(try nibble(characters[index]) << 4 | nibble(characters[index + 1]))
            index += 2
        }
        return bytes
    }
}
