public import QuiverJSON

public enum Distance: String, StringEnum {
    case cosine = "Cosine"
    case euclid = "Euclid"
    case dot = "Dot"
    case manhattan = "Manhattan"
}

public enum Datatype: String, StringEnum {
    case float32, uint8, float16, turbo4

    /// Bytes a stored element takes (`turbo4` vectors are stored as float32).
    public var elementBytes: Int {
        switch self {
        case .float32, .turbo4: 4
        case .float16: 2
        case .uint8: 1
        }
    }
}

/// Where a structure lives: `cold` on disk (mmap, paged in on demand), `cached` mmap kept warm,
/// `pinned` locked in RAM.
public enum Memory: String, StringEnum {
    case cold, cached, pinned
}

public enum MultiVectorComparator: String, StringEnum {
    case maxSim = "max_sim"
}

public struct MultiVectorConfig: Codable, Sendable, Equatable {
    public var comparator: MultiVectorComparator

    public init(comparator: MultiVectorComparator) { self.comparator = comparator }
}

/// Parameters of one dense vector (`VectorParams` in the schema).
public struct VectorParams: Codable, Sendable, Equatable, Validatable {
    /// Largest dimension accepted, as in Qdrant.
    public static let dimensionMax: UInt64 = 65536

    public var size: UInt64
    public var distance: Distance
    public var hnswConfig: HnswConfigDiff?
    public var quantizationConfig: QuantizationConfig?
    public var onDisk: Bool?
    public var memory: Memory?
    public var datatype: Datatype?
    public var multivectorConfig: MultiVectorConfig?

    public init(size: UInt64, distance: Distance) {
        self.size = size
        self.distance = distance
    }

    enum CodingKeys: String, CodingKey {
        case size, distance
        case hnswConfig = "hnsw_config"
        case quantizationConfig = "quantization_config"
        case onDisk = "on_disk"
        case memory, datatype
        case multivectorConfig = "multivector_config"
    }

    public func validate(into errors: inout ValidationErrors, path: String) {
        errors.range(fieldPath(path, "size"), size, min: 1, max: Self.dimensionMax)
        hnswConfig?.validate(into: &errors, path: fieldPath(path, "hnsw_config"))
        quantizationConfig?.validate(into: &errors, path: fieldPath(path, "quantization_config"))
    }
}

/// Either one unnamed vector or a map of named vectors (the schema's `VectorsConfig`).
public enum VectorsConfig: Codable, Sendable, Equatable, Validatable {
    case single(VectorParams)
    case named([String: VectorParams])

    /// The name under which the single unnamed vector is addressed (Qdrant uses the empty string).
    public static let defaultVectorName = ""

    public init(from decoder: any Decoder) throws {
        let value = try JSONValue(from: decoder)
        guard case .object(let object) = value else {
            throw JSONDecodingError(path: decoder.codingPath, message: "invalid type: \(value.kindDescription), expected vector params or a map of named vector params")
        }
        // An object with `size` or `distance` is one vector's params; anything else is a name map.
        if object["size"] != nil || object["distance"] != nil {
            self = .single(try VectorParams(from: decoder))
        } else {
            self = .named(try [String: VectorParams](from: decoder))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        switch self {
        case .single(let params): try params.encode(to: encoder)
        case .named(let map): try SortedMap(map).encode(to: encoder)
        }
    }

    /// Every vector by name; the unnamed one is `""`.
    public var all: [String: VectorParams] {
        switch self {
        case .single(let params): [Self.defaultVectorName: params]
        case .named(let map): map
        }
    }

    public func params(named name: String) -> VectorParams? { all[name] }

    public mutating func update(named name: String, _ body: (inout VectorParams) -> Void) {
        switch self {
        case .single(var params):
            body(&params)
            self = .single(params)
        case .named(var map):
            guard var params = map[name] else { return }
            body(&params)
            map[name] = params
            self = .named(map)
        }
    }

    public func validate(into errors: inout ValidationErrors, path: String) {
        switch self {
        case .single(let params):
            params.validate(into: &errors, path: path)
        case .named(let map):
            for name in map.keys.sorted() {
                if name.isEmpty {
                    errors.add(path, "vector name must not be empty; use an unnamed vector instead")
                } else if let problem = NameRules.vectorNameProblem(name) {
                    errors.add(fieldPath(path, name), problem)
                }
                map[name]!.validate(into: &errors, path: fieldPath(path, name))
            }
        }
    }
}

public enum Modifier: String, StringEnum {
    case none, idf
}

public struct SparseIndexParams: Codable, Sendable, Equatable {
    public var fullScanThreshold: UInt64?
    public var onDisk: Bool?
    public var memory: Memory?
    public var datatype: Datatype?

    public init(fullScanThreshold: UInt64? = nil, onDisk: Bool? = nil, memory: Memory? = nil, datatype: Datatype? = nil) {
        self.fullScanThreshold = fullScanThreshold
        self.onDisk = onDisk
        self.memory = memory
        self.datatype = datatype
    }

    enum CodingKeys: String, CodingKey {
        case fullScanThreshold = "full_scan_threshold"
        case onDisk = "on_disk"
        case memory, datatype
    }
}

public struct SparseVectorParams: Codable, Sendable, Equatable, Validatable {
    public var index: SparseIndexParams?
    public var modifier: Modifier?

    public init(index: SparseIndexParams? = nil, modifier: Modifier? = nil) {
        self.index = index
        self.modifier = modifier
    }

    public func validate(into errors: inout ValidationErrors, path: String) {
        if index?.datatype == .turbo4 {
            errors.add(fieldPath(path, "index.datatype"), "sparse vectors do not support the `turbo4` datatype")
        }
    }

    /// Applies an update: fields given in `diff` replace ours.
    public func applying(_ diff: SparseVectorParams) -> SparseVectorParams {
        var result = self
        if let newIndex = diff.index {
            var index = result.index ?? SparseIndexParams()
            if let v = newIndex.fullScanThreshold { index.fullScanThreshold = v }
            if let v = newIndex.onDisk { index.onDisk = v }
            if let v = newIndex.memory { index.memory = v }
            if let v = newIndex.datatype { index.datatype = v }
            result.index = index
        }
        if let modifier = diff.modifier { result.modifier = modifier }
        return result
    }
}

/// A string-keyed map that encodes its keys in sorted order (Qdrant's maps are BTreeMaps, so
/// clients see a stable order).
public struct SortedMap<Value: Codable & Sendable>: Codable, Sendable {
    public var map: [String: Value]

    public init(_ map: [String: Value]) { self.map = map }

    public init(from decoder: any Decoder) throws {
        map = try [String: Value](from: decoder)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: DynamicKey.self)
        for key in map.keys.sorted() {
            try container.encode(map[key]!, forKey: DynamicKey(key))
        }
    }
}

public struct DynamicKey: CodingKey {
    public let stringValue: String
    public var intValue: Int? { nil }
    public init(_ string: String) { stringValue = string }
    public init?(stringValue: String) { self.stringValue = stringValue }
    public init?(intValue: Int) { return nil }
}
