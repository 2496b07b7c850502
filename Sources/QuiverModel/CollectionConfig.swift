public import QuiverJSON

public enum ShardingMethod: String, StringEnum {
    case auto, custom
}

public struct PayloadStorageParams: Codable, Sendable, Equatable {
    public var memory: Memory?
}

/// Effective base parameters of a collection (`CollectionParams`).
public struct CollectionParams: Codable, Sendable, Equatable {
    public var vectors: VectorsConfig
    public var shardNumber: UInt32
    public var shardingMethod: ShardingMethod?
    public var replicationFactor: UInt32
    public var writeConsistencyFactor: UInt32
    public var readFanOutFactor: UInt32?
    public var readFanOutDelayMs: UInt64?
    public var onDiskPayload: Bool
    public var payload: PayloadStorageParams?
    public var sparseVectors: [String: SparseVectorParams]?

    public init(vectors: VectorsConfig, shardNumber: UInt32 = 1, replicationFactor: UInt32 = 1,
                writeConsistencyFactor: UInt32 = 1, onDiskPayload: Bool = true) {
        self.vectors = vectors
        self.shardNumber = shardNumber
        self.replicationFactor = replicationFactor
        self.writeConsistencyFactor = writeConsistencyFactor
        self.onDiskPayload = onDiskPayload
    }

    enum CodingKeys: String, CodingKey {
        case vectors
        case shardNumber = "shard_number"
        case shardingMethod = "sharding_method"
        case replicationFactor = "replication_factor"
        case writeConsistencyFactor = "write_consistency_factor"
        case readFanOutFactor = "read_fan_out_factor"
        case readFanOutDelayMs = "read_fan_out_delay_ms"
        case onDiskPayload = "on_disk_payload"
        case payload
        case sparseVectors = "sparse_vectors"
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(vectors, forKey: .vectors)
        try c.encode(shardNumber, forKey: .shardNumber)
        try c.encodeIfPresent(shardingMethod, forKey: .shardingMethod)
        try c.encode(replicationFactor, forKey: .replicationFactor)
        try c.encode(writeConsistencyFactor, forKey: .writeConsistencyFactor)
        try c.encodeIfPresent(readFanOutFactor, forKey: .readFanOutFactor)
        try c.encodeIfPresent(readFanOutDelayMs, forKey: .readFanOutDelayMs)
        try c.encode(onDiskPayload, forKey: .onDiskPayload)
        try c.encodeIfPresent(payload, forKey: .payload)
        try c.encodeIfPresent(sparseVectors.map(SortedMap.init), forKey: .sparseVectors)
    }
}

/// The stored and reported configuration of a collection (`CollectionConfig`). This is what
/// `collections/<name>/config.json` holds.
public struct CollectionConfig: Codable, Sendable, Equatable {
    public var params: CollectionParams
    public var hnswConfig: HnswConfig
    public var optimizerConfig: OptimizersConfig
    public var walConfig: WalConfig
    public var quantizationConfig: QuantizationConfig?
    public var strictModeConfig: StrictModeConfig?
    public var metadata: JSONObject?

    public init(params: CollectionParams, hnswConfig: HnswConfig, optimizerConfig: OptimizersConfig,
                walConfig: WalConfig, quantizationConfig: QuantizationConfig? = nil,
                strictModeConfig: StrictModeConfig? = nil, metadata: JSONObject? = nil) {
        self.params = params
        self.hnswConfig = hnswConfig
        self.optimizerConfig = optimizerConfig
        self.walConfig = walConfig
        self.quantizationConfig = quantizationConfig
        self.strictModeConfig = strictModeConfig
        self.metadata = metadata
    }

    enum CodingKeys: String, CodingKey {
        case params
        case hnswConfig = "hnsw_config"
        case optimizerConfig = "optimizer_config"
        case walConfig = "wal_config"
        case quantizationConfig = "quantization_config"
        case strictModeConfig = "strict_mode_config"
        case metadata
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        params = try c.decode(CollectionParams.self, forKey: .params)
        hnswConfig = try c.decode(HnswConfig.self, forKey: .hnswConfig)
        optimizerConfig = try c.decode(OptimizersConfig.self, forKey: .optimizerConfig)
        walConfig = try c.decodeIfPresent(WalConfig.self, forKey: .walConfig) ?? WalConfig()
        quantizationConfig = try c.decodeIfPresent(QuantizationConfig.self, forKey: .quantizationConfig)
        strictModeConfig = try c.decodeIfPresent(StrictModeConfig.self, forKey: .strictModeConfig)
        metadata = try c.decodeIfPresent(JSONValue.self, forKey: .metadata)?.objectValue
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(params, forKey: .params)
        try c.encode(hnswConfig, forKey: .hnswConfig)
        try c.encode(optimizerConfig, forKey: .optimizerConfig)
        try c.encode(walConfig, forKey: .walConfig)
        // Qdrant always reports this key, as null when there is no quantization.
        try c.encode(quantizationConfig, forKey: .quantizationConfig)
        try c.encodeIfPresent(strictModeConfig, forKey: .strictModeConfig)
        try c.encodeIfPresent(metadata.map(JSONValue.object), forKey: .metadata)
    }
}

/// Node-wide defaults that fill in what a create request leaves out (the `storage` section of
/// the configuration file).
public struct CollectionDefaults: Sendable, Equatable {
    public var hnsw = HnswConfig()
    public var optimizers = OptimizersConfig()
    public var wal = WalConfig()
    public var replicationFactor: UInt32 = 1
    public var writeConsistencyFactor: UInt32 = 1
    /// `storage.collection.shard_number_per_node`.
    public var shardNumberPerNode: UInt32 = 1
    public var onDiskPayload = true
    public var vectorsOnDisk: Bool?
    public var quantization: QuantizationConfig?

    public init() {}
}
