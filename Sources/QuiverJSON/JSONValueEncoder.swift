/// Encodes `Encodable` types to a `JSONValue` (and on to bytes with `JSONWriter`).
///
/// Optional properties that are `nil` are left out (synthesised `encodeIfPresent`), object keys keep
/// the order the type encodes them in, and a `JSONValue` inside a model encodes as itself.
public struct JSONValueEncoder: Sendable {
    public init() {}

    public func encode(_ value: some Encodable) throws -> JSONValue {
        if let value = value as? JSONValue { return value }
        let encoder = JSONValueEncoderImpl(codingPath: [])
        try value.encode(to: encoder)
        return encoder.storage.resolve()
    }

    public func encodeBytes(_ value: some Encodable) throws -> [UInt8] {
        JSONWriter.write(try encode(value))
    }
}

/// Mutable storage while encoding; containers share it by reference.
final class EncodingBox {
    var storage: JSONValueEncoderImpl.Storage
    init(_ storage: JSONValueEncoderImpl.Storage) { self.storage = storage }
}

final class JSONValueEncoderImpl: Encoder {
    enum Storage {
        case empty
        case value(JSONValue)
        case object([(String, EncodingBox)])
        case array([EncodingBox])

        func resolve() -> JSONValue {
            switch self {
            case .empty: return .object(JSONObject())
            case .value(let v): return v
            case .object(let pairs):
                var object = JSONObject()
                for (key, box) in pairs { object[key] = box.storage.resolve() }
                return .object(object)
            case .array(let boxes): return .array(boxes.map { $0.storage.resolve() })
            }
        }
    }

    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }
    let box: EncodingBox
    var storage: Storage {
        get { box.storage }
        set { box.storage = newValue }
    }

    init(codingPath: [any CodingKey], box: EncodingBox = EncodingBox(.empty)) {
        self.codingPath = codingPath
        self.box = box
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        if case .object = storage {} else { storage = .object([]) }
        return KeyedEncodingContainer(KeyedEncoder<Key>(box: box, codingPath: codingPath))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        if case .array = storage {} else { storage = .array([]) }
        return UnkeyedEncoder(box: box, codingPath: codingPath)
    }

    func singleValueContainer() -> any SingleValueEncodingContainer {
        SingleEncoder(box: box, codingPath: codingPath)
    }

    static func encodeValue(_ value: some Encodable, path: [any CodingKey]) throws -> EncodingBox {
        if let value = value as? JSONValue { return EncodingBox(.value(value)) }
        let encoder = JSONValueEncoderImpl(codingPath: path)
        try value.encode(to: encoder)
        return encoder.box
    }
}

struct KeyedEncoder<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let box: EncodingBox
    let codingPath: [any CodingKey]

    private func put(_ key: Key, _ child: EncodingBox) {
        guard case .object(var pairs) = box.storage else { return }
        if let i = pairs.firstIndex(where: { $0.0 == key.stringValue }) {
            pairs[i].1 = child
        } else {
            pairs.append((key.stringValue, child))
        }
        box.storage = .object(pairs)
    }

    mutating func encodeNil(forKey key: Key) throws { put(key, EncodingBox(.value(.null))) }
    mutating func encode(_ value: Bool, forKey key: Key) throws { put(key, EncodingBox(.value(.bool(value)))) }
    mutating func encode(_ value: String, forKey key: Key) throws { put(key, EncodingBox(.value(.string(value)))) }
    mutating func encode(_ value: Double, forKey key: Key) throws { put(key, EncodingBox(.value(.double(value)))) }
    mutating func encode(_ value: Float, forKey key: Key) throws { put(key, EncodingBox(.value(.double(Double(value))))) }
    mutating func encode(_ value: Int, forKey key: Key) throws { put(key, EncodingBox(.value(.int(Int64(value))))) }
    mutating func encode(_ value: Int64, forKey key: Key) throws { put(key, EncodingBox(.value(.int(value)))) }
    mutating func encode(_ value: UInt64, forKey key: Key) throws { put(key, EncodingBox(.value(JSONValue.unsigned(value)))) }
    mutating func encode(_ value: UInt, forKey key: Key) throws { put(key, EncodingBox(.value(JSONValue.unsigned(UInt64(value))))) }
    mutating func encode(_ value: UInt32, forKey key: Key) throws { put(key, EncodingBox(.value(.int(Int64(value))))) }
    mutating func encode(_ value: UInt16, forKey key: Key) throws { put(key, EncodingBox(.value(.int(Int64(value))))) }
    mutating func encode(_ value: UInt8, forKey key: Key) throws { put(key, EncodingBox(.value(.int(Int64(value))))) }
    mutating func encode(_ value: Int32, forKey key: Key) throws { put(key, EncodingBox(.value(.int(Int64(value))))) }
    mutating func encode(_ value: Int16, forKey key: Key) throws { put(key, EncodingBox(.value(.int(Int64(value))))) }
    mutating func encode(_ value: Int8, forKey key: Key) throws { put(key, EncodingBox(.value(.int(Int64(value))))) }
    mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
        put(key, try JSONValueEncoderImpl.encodeValue(value, path: codingPath + [key]))
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key) -> KeyedEncodingContainer<NestedKey> {
        let child = EncodingBox(.object([]))
        put(key, child)
        return KeyedEncodingContainer(KeyedEncoder<NestedKey>(box: child, codingPath: codingPath + [key]))
    }

    mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
        let child = EncodingBox(.array([]))
        put(key, child)
        return UnkeyedEncoder(box: child, codingPath: codingPath + [key])
    }

    mutating func superEncoder() -> any Encoder { JSONValueEncoderImpl(codingPath: codingPath, box: box) }
    mutating func superEncoder(forKey key: Key) -> any Encoder {
        let child = EncodingBox(.empty)
        put(key, child)
        return JSONValueEncoderImpl(codingPath: codingPath + [key], box: child)
    }
}

struct UnkeyedEncoder: UnkeyedEncodingContainer {
    let box: EncodingBox
    let codingPath: [any CodingKey]

    var count: Int {
        if case .array(let boxes) = box.storage { return boxes.count }
        return 0
    }

    private func append(_ child: EncodingBox) {
        guard case .array(var boxes) = box.storage else { return }
        boxes.append(child)
        box.storage = .array(boxes)
    }

    mutating func encodeNil() throws { append(EncodingBox(.value(.null))) }
    mutating func encode(_ value: Bool) throws { append(EncodingBox(.value(.bool(value)))) }
    mutating func encode(_ value: String) throws { append(EncodingBox(.value(.string(value)))) }
    mutating func encode(_ value: Double) throws { append(EncodingBox(.value(.double(value)))) }
    mutating func encode(_ value: Float) throws { append(EncodingBox(.value(.double(Double(value))))) }
    mutating func encode(_ value: Int) throws { append(EncodingBox(.value(.int(Int64(value))))) }
    mutating func encode(_ value: Int64) throws { append(EncodingBox(.value(.int(value)))) }
    mutating func encode(_ value: UInt64) throws { append(EncodingBox(.value(JSONValue.unsigned(value)))) }
    mutating func encode(_ value: UInt) throws { append(EncodingBox(.value(JSONValue.unsigned(UInt64(value))))) }
    mutating func encode(_ value: UInt32) throws { append(EncodingBox(.value(.int(Int64(value))))) }
    mutating func encode(_ value: UInt16) throws { append(EncodingBox(.value(.int(Int64(value))))) }
    mutating func encode(_ value: UInt8) throws { append(EncodingBox(.value(.int(Int64(value))))) }
    mutating func encode(_ value: Int32) throws { append(EncodingBox(.value(.int(Int64(value))))) }
    mutating func encode(_ value: Int16) throws { append(EncodingBox(.value(.int(Int64(value))))) }
    mutating func encode(_ value: Int8) throws { append(EncodingBox(.value(.int(Int64(value))))) }
    mutating func encode<T: Encodable>(_ value: T) throws {
        append(try JSONValueEncoderImpl.encodeValue(value, path: codingPath + [IndexKey(count)]))
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
        let child = EncodingBox(.object([]))
        append(child)
        return KeyedEncodingContainer(KeyedEncoder<NestedKey>(box: child, codingPath: codingPath))
    }

    mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
        let child = EncodingBox(.array([]))
        append(child)
        return UnkeyedEncoder(box: child, codingPath: codingPath)
    }

    mutating func superEncoder() -> any Encoder {
        let child = EncodingBox(.empty)
        append(child)
        return JSONValueEncoderImpl(codingPath: codingPath, box: child)
    }
}

struct SingleEncoder: SingleValueEncodingContainer {
    let box: EncodingBox
    let codingPath: [any CodingKey]

    mutating func encodeNil() throws { box.storage = .value(.null) }
    mutating func encode(_ value: Bool) throws { box.storage = .value(.bool(value)) }
    mutating func encode(_ value: String) throws { box.storage = .value(.string(value)) }
    mutating func encode(_ value: Double) throws { box.storage = .value(.double(value)) }
    mutating func encode(_ value: Float) throws { box.storage = .value(.double(Double(value))) }
    mutating func encode(_ value: Int) throws { box.storage = .value(.int(Int64(value))) }
    mutating func encode(_ value: Int64) throws { box.storage = .value(.int(value)) }
    mutating func encode(_ value: UInt64) throws { box.storage = .value(JSONValue.unsigned(value)) }
    mutating func encode(_ value: UInt32) throws { box.storage = .value(.int(Int64(value))) }
    mutating func encode(_ value: UInt16) throws { box.storage = .value(.int(Int64(value))) }
    mutating func encode(_ value: UInt8) throws { box.storage = .value(.int(Int64(value))) }
    mutating func encode(_ value: Int32) throws { box.storage = .value(.int(Int64(value))) }
    mutating func encode(_ value: Int16) throws { box.storage = .value(.int(Int64(value))) }
    mutating func encode(_ value: Int8) throws { box.storage = .value(.int(Int64(value))) }
    mutating func encode(_ value: UInt) throws { box.storage = .value(JSONValue.unsigned(UInt64(value))) }
    mutating func encode<T: Encodable>(_ value: T) throws {
        box.storage = try JSONValueEncoderImpl.encodeValue(value, path: codingPath).storage
    }
}

extension JSONValue {
    /// An unsigned integer as the narrowest kind that holds it.
    public static func unsigned(_ value: UInt64) -> JSONValue {
        value <= UInt64(Int64.max) ? .int(Int64(value)) : .uint(value)
    }
}

/// String-valued enums decode with serde's wording for an unknown value:
/// "unknown variant `Foo`, expected one of `Cosine`, `Euclid`".
public protocol StringEnum: RawRepresentable, CaseIterable, Codable, Sendable where RawValue == String {}

extension StringEnum {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let raw = try container.decode(String.self)
        guard let value = Self(rawValue: raw) else {
            let expected = Self.allCases.map { "`\($0.rawValue)`" }.joined(separator: ", ")
            throw JSONDecodingError(path: decoder.codingPath, message: "unknown variant `\(raw)`, expected one of \(expected)")
        }
        self = value
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
}
