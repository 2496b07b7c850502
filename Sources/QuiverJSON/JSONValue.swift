/// A parsed JSON document.
///
/// Numbers keep the kind they were written with: `1` is `.int`, `1.0` is `.double`, and an integer
/// above `Int64.max` is `.uint`, so a payload written back out reads as it came in.
public enum JSONValue: Sendable, Hashable {
    case null
    case bool(Bool)
    case int(Int64)
    case uint(UInt64)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)
}

/// A JSON object that keeps its keys in the order they were written.
/// A key written twice keeps its first position and its last value, as serde_json does.
public struct JSONObject: Sendable, Hashable, Sequence {
    public private(set) var keys: [String] = []
    private var values: [String: JSONValue] = [:]

    public init() {}

    public init(_ pairs: [(String, JSONValue)]) {
        for (key, value) in pairs { self[key] = value }
    }

    public var count: Int { keys.count }
    public var isEmpty: Bool { keys.isEmpty }

    public subscript(key: String) -> JSONValue? {
        get { values[key] }
        set {
            if let newValue {
                if values.updateValue(newValue, forKey: key) == nil { keys.append(key) }
            } else if values.removeValue(forKey: key) != nil {
                keys.removeAll { $0 == key }
            }
        }
    }

    /// The members in key order.
    public struct Iterator: IteratorProtocol {
        let keys: [String]
        let values: [String: JSONValue]
        var index = 0

        public mutating func next() -> (key: String, value: JSONValue)? {
            guard index < keys.count else { return nil }
            defer { index += 1 }
            return (keys[index], values[keys[index]]!)
        }
    }

    public func makeIterator() -> Iterator { Iterator(keys: keys, values: values) }

    public static func == (lhs: JSONObject, rhs: JSONObject) -> Bool {
        lhs.values == rhs.values
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(values)
    }
}

extension JSONValue {
    public subscript(key: String) -> JSONValue? {
        if case .object(let object) = self { return object[key] }
        return nil
    }

    public var objectValue: JSONObject? {
        if case .object(let object) = self { return object }
        return nil
    }

    public var stringValue: String? {
        if case .string(let string) = self { return string }
        return nil
    }

    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }

    /// The numeric value as a Double, for any of the three number kinds.
    public var doubleValue: Double? {
        switch self {
        case .int(let v): Double(v)
        case .uint(let v): Double(v)
        case .double(let v): v
        case .null, .bool, .string, .array, .object: nil
        }
    }

    /// A short description of the kind of value, worded as serde_json words it in errors.
    public var kindDescription: String {
        switch self {
        case .null: "null"
        case .bool(let b): "boolean `\(b)`"
        case .int(let i): "integer `\(i)`"
        case .uint(let u): "integer `\(u)`"
        case .double(let d): "floating point `\(JSONWriter.format(d))`"
        case .string(let s): "string \"\(s)\""
        case .array: "sequence"
        case .object: "map"
        }
    }
}

// Deliberately not ExpressibleByNilLiteral: with it, `nil` in an Optional<JSONValue> context can
// silently become `.some(.null)`.
extension JSONValue: ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByFloatLiteral, ExpressibleByStringLiteral, ExpressibleByArrayLiteral,
    ExpressibleByDictionaryLiteral
{
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(integerLiteral value: Int64) { self = .int(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(stringLiteral value: String) { self = .string(value) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSONValue)...) { self = .object(JSONObject(elements)) }
}
