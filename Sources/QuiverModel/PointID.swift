public import QuiverJSON

/// A point's external id: an unsigned integer or a UUID. Numbers sort before UUIDs (as in Qdrant),
/// which fixes the order of `scroll`.
public enum PointID: Hashable, Sendable, Comparable, CustomStringConvertible {
    case number(UInt64)
    case uuid(UInt64, UInt64)

    /// Parses a JSON id: a non-negative integer, or a UUID string (hyphenated, simple, braced or
    /// `urn:uuid:` form, as Qdrant accepts).
    public init(json: JSONValue) throws(ValidationMessage) {
        switch json {
        case .int(let i) where i >= 0: self = .number(UInt64(i))
        case .uint(let u): self = .number(u)
        case .string(let s):
            guard let parsed = PointID(uuidString: s) else {
                throw ValidationMessage("Unable to parse UUID: \(s)")
            }
            self = parsed
        default:
            throw ValidationMessage("point id must be an unsigned integer or a UUID, found \(json.kindDescription)")
        }
    }

    public init?(uuidString: String) {
        var text = Substring(uuidString)
        if text.hasPrefix("urn:uuid:") { text = text.dropFirst(9) }
        if text.hasPrefix("{") && text.hasSuffix("}") { text = text.dropFirst().dropLast() }
        let hex = text.filter { $0 != "-" }
        let hyphenated = text.count == 36
        if hyphenated {
            let positions = [8, 13, 18, 23]
            for (i, c) in text.enumerated() where (c == "-") != positions.contains(i) { return nil }
        } else if text.count != 32 {
            return nil
        }
        guard hex.count == 32, let high = UInt64(hex.prefix(16), radix: 16), let low = UInt64(hex.suffix(16), radix: 16) else {
            return nil
        }
        self = .uuid(high, low)
    }

    public var json: JSONValue {
        switch self {
        case .number(let n): .unsigned(n)
        case .uuid: .string(description)
        }
    }

    /// Numbers as digits; UUIDs hyphenated, lower case.
    public var description: String {
        switch self {
        case .number(let n): return String(n)
        case .uuid(let high, let low):
            func hex(_ v: UInt64, _ digits: Int) -> String {
                let s = String(v, radix: 16)
                return String(repeating: "0", count: digits - s.count) + s
            }
            let h = hex(high, 16), l = hex(low, 16)
            return "\(h.prefix(8))-\(h.dropFirst(8).prefix(4))-\(h.suffix(4))-\(l.prefix(4))-\(l.suffix(12))"
        }
    }

    public static func < (a: PointID, b: PointID) -> Bool {
        switch (a, b) {
        case (.number(let x), .number(let y)): x < y
        case (.number, .uuid): true
        case (.uuid, .number): false
        case (.uuid(let h1, let l1), .uuid(let h2, let l2)): (h1, l1) < (h2, l2)
        }
    }
}

/// A rule broken by a request, with the message to show; the caller adds where it was.
public struct ValidationMessage: Error, Sendable, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
}

/// As in JSON: a number, or a UUID string.
extension PointID: Codable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let number = try? container.decode(UInt64.self) {
            self = .number(number)
            return
        }
        let text = try container.decode(String.self)
        guard let id = PointID(uuidString: text) else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "Unable to parse UUID: \(text)")
        }
        self = id
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .number(let n): try container.encode(n)
        case .uuid: try container.encode(description)
        }
    }
}
