public import QuiverJSON

/// Body of `PUT /collections/{name}` (`CreateCollection`).
public struct CreateCollection: Codable, Sendable, Equatable, Validatable {
    public var vectors: VectorsConfig?
    public var shardNumber: UInt32?
    public var shardingMethod: ShardingMethod?
    public var replicationFactor: UInt32?
    public var writeConsistencyFactor: UInt32?
    public var onDiskPayload: Bool?
    public var payload: PayloadStorageParams?
    public var hnswConfig: HnswConfigDiff?
    public var walConfig: WalConfigDiff?
    public var optimizersConfig: OptimizersConfigDiff?
    public var quantizationConfig: QuantizationConfig?
    public var sparseVectors: [String: SparseVectorParams]?
    public var strictModeConfig: StrictModeConfig?
    public var metadata: JSONObject?

    public init(vectors: VectorsConfig? = nil) {
        self.vectors = vectors
    }

    enum CodingKeys: String, CodingKey {
        case vectors
        case shardNumber = "shard_number"
        case shardingMethod = "sharding_method"
        case replicationFactor = "replication_factor"
        case writeConsistencyFactor = "write_consistency_factor"
        case onDiskPayload = "on_disk_payload"
        case payload
        case hnswConfig = "hnsw_config"
        case walConfig = "wal_config"
        case optimizersConfig = "optimizers_config"
        case quantizationConfig = "quantization_config"
        case sparseVectors = "sparse_vectors"
        case strictModeConfig = "strict_mode_config"
        case metadata
        case initFrom = "init_from"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        vectors = try c.decodeIfPresent(VectorsConfig.self, forKey: .vectors)
        shardNumber = try c.decodeIfPresent(UInt32.self, forKey: .shardNumber)
        shardingMethod = try c.decodeIfPresent(ShardingMethod.self, forKey: .shardingMethod)
        replicationFactor = try c.decodeIfPresent(UInt32.self, forKey: .replicationFactor)
        writeConsistencyFactor = try c.decodeIfPresent(UInt32.self, forKey: .writeConsistencyFactor)
        onDiskPayload = try c.decodeIfPresent(Bool.self, forKey: .onDiskPayload)
        payload = try c.decodeIfPresent(PayloadStorageParams.self, forKey: .payload)
        hnswConfig = try c.decodeIfPresent(HnswConfigDiff.self, forKey: .hnswConfig)
        walConfig = try c.decodeIfPresent(WalConfigDiff.self, forKey: .walConfig)
        optimizersConfig = try c.decodeIfPresent(OptimizersConfigDiff.self, forKey: .optimizersConfig)
        quantizationConfig = try c.decodeIfPresent(QuantizationConfig.self, forKey: .quantizationConfig)
        sparseVectors = try c.decodeIfPresent([String: SparseVectorParams].self, forKey: .sparseVectors)
        strictModeConfig = try c.decodeIfPresent(StrictModeConfig.self, forKey: .strictModeConfig)
        if let meta = try c.decodeIfPresent(JSONValue.self, forKey: .metadata), !meta.isNull {
            guard let object = meta.objectValue else {
                throw JSONDecodingError(path: "metadata", message: "invalid type: \(meta.kindDescription), expected a map")
            }
            metadata = object
        }
        if let initFrom = try c.decodeIfPresent(JSONValue.self, forKey: .initFrom), !initFrom.isNull {
            throw JSONDecodingError(path: "init_from", message: "`init_from` was removed from Qdrant's API in 1.16 and is not supported")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encodeIfPresent(vectors, forKey: .vectors)
        try c.encodeIfPresent(shardNumber, forKey: .shardNumber)
        try c.encodeIfPresent(shardingMethod, forKey: .shardingMethod)
        try c.encodeIfPresent(replicationFactor, forKey: .replicationFactor)
        try c.encodeIfPresent(writeConsistencyFactor, forKey: .writeConsistencyFactor)
        try c.encodeIfPresent(onDiskPayload, forKey: .onDiskPayload)
        try c.encodeIfPresent(payload, forKey: .payload)
        try c.encodeIfPresent(hnswConfig, forKey: .hnswConfig)
        try c.encodeIfPresent(walConfig, forKey: .walConfig)
        try c.encodeIfPresent(optimizersConfig, forKey: .optimizersConfig)
        try c.encodeIfPresent(quantizationConfig, forKey: .quantizationConfig)
        try c.encodeIfPresent(sparseVectors.map(SortedMap.init), forKey: .sparseVectors)
        try c.encodeIfPresent(strictModeConfig, forKey: .strictModeConfig)
        try c.encodeIfPresent(metadata.map(JSONValue.object), forKey: .metadata)
    }

    /// The most shards a collection (or a shard key) may have.
    public static let shardNumberMax: UInt32 = 1000

    public func validate(into errors: inout ValidationErrors, path: String) {
        vectors?.validate(into: &errors, path: fieldPath(path, "vectors"))
        // Qdrant sets no upper bound; a few billion shards would keep a node busy creating them.
        errors.range(fieldPath(path, "shard_number"), shardNumber, min: 1)
        errors.range(fieldPath(path, "shard_number"), shardNumber, max: Self.shardNumberMax)
        errors.range(fieldPath(path, "replication_factor"), replicationFactor, min: 1)
        errors.range(fieldPath(path, "write_consistency_factor"), writeConsistencyFactor, min: 1)
        hnswConfig?.validate(into: &errors, path: fieldPath(path, "hnsw_config"))
        walConfig?.validate(into: &errors, path: fieldPath(path, "wal_config"))
        optimizersConfig?.validate(into: &errors, path: fieldPath(path, "optimizers_config"))
        quantizationConfig?.validate(into: &errors, path: fieldPath(path, "quantization_config"))
        strictModeConfig?.validate(into: &errors, path: fieldPath(path, "strict_mode_config"))
        for (name, params) in (sparseVectors ?? [:]).sorted(by: { $0.key < $1.key }) {
            if !name.isEmpty, let problem = NameRules.vectorNameProblem(name) {
                errors.add(fieldPath(fieldPath(path, "sparse_vectors"), name), problem)
            }
            params.validate(into: &errors, path: fieldPath(fieldPath(path, "sparse_vectors"), name))
        }
    }

    /// What Qdrant refuses as wrong input (400) once the body is valid: an empty sparse vector
    /// name, or a name used for both a dense and a sparse vector (the first such name).
    public var vectorNamesProblem: String? {
        guard let sparse = sparseVectors else { return nil }
        if sparse.keys.contains("") { return "Sparse vector name cannot be empty" }
        if case .named(let dense) = vectors, let name = dense.keys.sorted().first(where: { sparse[$0] != nil }) {
            return "Dense and sparse vector names must be unique - duplicate found with '\(name)'"
        }
        return nil
    }

    /// The full configuration this request creates, with `defaults` filling what it leaves out.
    /// Under automatic sharding the shard number defaults to `peers × shard_number_per_node`.
    public func effectiveConfig(defaults: CollectionDefaults, peers: Int = 1) -> CollectionConfig {
        var vectors = self.vectors ?? .named([:])
        if let onDisk = defaults.vectorsOnDisk {
            for name in vectors.all.keys {
                vectors.update(named: name) { if $0.onDisk == nil { $0.onDisk = onDisk } }
            }
        }
        var params = CollectionParams(
            vectors: vectors,
            shardNumber: shardNumber ?? (shardingMethod == .custom ? 1 : UInt32(max(peers, 1)) * defaults.shardNumberPerNode),
            replicationFactor: replicationFactor ?? defaults.replicationFactor,
            writeConsistencyFactor: writeConsistencyFactor ?? defaults.writeConsistencyFactor,
            onDiskPayload: onDiskPayload ?? defaults.onDiskPayload
        )
        params.shardingMethod = shardingMethod
        params.payload = payload
        params.sparseVectors = sparseVectors
        return CollectionConfig(
            params: params,
            hnswConfig: defaults.hnsw.applying(hnswConfig),
            optimizerConfig: defaults.optimizers.applying(optimizersConfig),
            walConfig: defaults.wal.applying(walConfig),
            quantizationConfig: quantizationConfig ?? defaults.quantization,
            strictModeConfig: strictModeConfig ?? StrictModeConfig.disabled,
            metadata: metadata
        )
    }
}

extension StrictModeConfig {
    /// What a collection created without a strict-mode section reports.
    public static var disabled: StrictModeConfig {
        var config = StrictModeConfig()
        config.enabled = false
        return config
    }
}

public struct VectorParamsDiff: Codable, Sendable, Equatable, Validatable {
    public var hnswConfig: HnswConfigDiff?
    public var quantizationConfig: QuantizationConfigDiff?
    public var onDisk: Bool?
    public var memory: Memory?

    public init() {}

    enum CodingKeys: String, CodingKey {
        case hnswConfig = "hnsw_config"
        case quantizationConfig = "quantization_config"
        case onDisk = "on_disk"
        case memory
    }

    public func validate(into errors: inout ValidationErrors, path: String) {
        hnswConfig?.validate(into: &errors, path: fieldPath(path, "hnsw_config"))
        quantizationConfig?.validate(into: &errors, path: fieldPath(path, "quantization_config"))
    }
}

public struct CollectionParamsDiff: Codable, Sendable, Equatable, Validatable {
    public var replicationFactor: UInt32?
    public var writeConsistencyFactor: UInt32?
    public var readFanOutFactor: UInt32?
    public var readFanOutDelayMs: UInt64?
    public var onDiskPayload: Bool?
    public var payload: PayloadStorageParams?

    public init() {}

    enum CodingKeys: String, CodingKey {
        case replicationFactor = "replication_factor"
        case writeConsistencyFactor = "write_consistency_factor"
        case readFanOutFactor = "read_fan_out_factor"
        case readFanOutDelayMs = "read_fan_out_delay_ms"
        case onDiskPayload = "on_disk_payload"
        case payload
    }

    public func validate(into errors: inout ValidationErrors, path: String) {
        errors.range(fieldPath(path, "replication_factor"), replicationFactor, min: 1)
        errors.range(fieldPath(path, "write_consistency_factor"), writeConsistencyFactor, min: 1)
    }
}

/// Body of `PATCH /collections/{name}` (`UpdateCollection`).
public struct UpdateCollection: Codable, Sendable, Equatable, Validatable {
    public var vectors: [String: VectorParamsDiff]?
    public var optimizersConfig: OptimizersConfigDiff?
    public var params: CollectionParamsDiff?
    public var hnswConfig: HnswConfigDiff?
    public var quantizationConfig: QuantizationConfigDiff?
    public var sparseVectors: [String: SparseVectorParams]?
    public var strictModeConfig: StrictModeConfig?
    public var metadata: JSONObject?

    public init() {}

    enum CodingKeys: String, CodingKey {
        case vectors
        case optimizersConfig = "optimizers_config"
        case params
        case hnswConfig = "hnsw_config"
        case quantizationConfig = "quantization_config"
        case sparseVectors = "sparse_vectors"
        case strictModeConfig = "strict_mode_config"
        case metadata
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        vectors = try c.decodeIfPresent([String: VectorParamsDiff].self, forKey: .vectors)
        optimizersConfig = try c.decodeIfPresent(OptimizersConfigDiff.self, forKey: .optimizersConfig)
        params = try c.decodeIfPresent(CollectionParamsDiff.self, forKey: .params)
        hnswConfig = try c.decodeIfPresent(HnswConfigDiff.self, forKey: .hnswConfig)
        quantizationConfig = try c.decodeIfPresent(QuantizationConfigDiff.self, forKey: .quantizationConfig)
        sparseVectors = try c.decodeIfPresent([String: SparseVectorParams].self, forKey: .sparseVectors)
        strictModeConfig = try c.decodeIfPresent(StrictModeConfig.self, forKey: .strictModeConfig)
        if let meta = try c.decodeIfPresent(JSONValue.self, forKey: .metadata), !meta.isNull {
            guard let object = meta.objectValue else {
                throw JSONDecodingError(path: "metadata", message: "invalid type: \(meta.kindDescription), expected a map")
            }
            metadata = object
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encodeIfPresent(vectors.map(SortedMap.init), forKey: .vectors)
        try c.encodeIfPresent(optimizersConfig, forKey: .optimizersConfig)
        try c.encodeIfPresent(params, forKey: .params)
        try c.encodeIfPresent(hnswConfig, forKey: .hnswConfig)
        try c.encodeIfPresent(quantizationConfig, forKey: .quantizationConfig)
        try c.encodeIfPresent(sparseVectors.map(SortedMap.init), forKey: .sparseVectors)
        try c.encodeIfPresent(strictModeConfig, forKey: .strictModeConfig)
        try c.encodeIfPresent(metadata.map(JSONValue.object), forKey: .metadata)
    }

    public func validate(into errors: inout ValidationErrors, path: String) {
        for (name, diff) in (vectors ?? [:]).sorted(by: { $0.key < $1.key }) {
            diff.validate(into: &errors, path: fieldPath(fieldPath(path, "vectors"), name))
        }
        optimizersConfig?.validate(into: &errors, path: fieldPath(path, "optimizers_config"))
        params?.validate(into: &errors, path: fieldPath(path, "params"))
        hnswConfig?.validate(into: &errors, path: fieldPath(path, "hnsw_config"))
        quantizationConfig?.validate(into: &errors, path: fieldPath(path, "quantization_config"))
        strictModeConfig?.validate(into: &errors, path: fieldPath(path, "strict_mode_config"))
        for (name, params) in (sparseVectors ?? [:]).sorted(by: { $0.key < $1.key }) {
            params.validate(into: &errors, path: fieldPath(fieldPath(path, "sparse_vectors"), name))
        }
    }
}

/// Why an update cannot apply to a collection's current configuration.
public struct UpdateRejection: Error, Sendable, Equatable {
    public let message: String
    public init(message: String) { self.message = message }
}

extension CollectionConfig {
    /// The configuration after `update`; throws when it names a vector the collection lacks.
    public func applying(_ update: UpdateCollection) throws(UpdateRejection) -> CollectionConfig {
        var result = self
        for (name, diff) in (update.vectors ?? [:]).sorted(by: { $0.key < $1.key }) {
            guard result.params.vectors.params(named: name) != nil else {
                throw UpdateRejection(message: "Not existing vector name error: \(name)")
            }
            result.params.vectors.update(named: name) { params in
                if let hnsw = diff.hnswConfig { params.hnswConfig = (params.hnswConfig ?? HnswConfigDiff()).merging(hnsw) }
                switch diff.quantizationConfig {
                case .set(let config): params.quantizationConfig = config
                case .disabled: params.quantizationConfig = nil
                case nil: break
                }
                if let onDisk = diff.onDisk { params.onDisk = onDisk }
                if let memory = diff.memory { params.memory = memory }
            }
        }
        for (name, diff) in (update.sparseVectors ?? [:]).sorted(by: { $0.key < $1.key }) {
            guard let existing = result.params.sparseVectors?[name] else {
                throw UpdateRejection(message: "Not existing vector name error: \(name)")
            }
            result.params.sparseVectors?[name] = existing.applying(diff)
        }
        if let p = update.params {
            if let v = p.replicationFactor { result.params.replicationFactor = v }
            if let v = p.writeConsistencyFactor { result.params.writeConsistencyFactor = v }
            if let v = p.readFanOutFactor { result.params.readFanOutFactor = v }
            if let v = p.readFanOutDelayMs { result.params.readFanOutDelayMs = v }
            if let v = p.onDiskPayload { result.params.onDiskPayload = v }
            if let v = p.payload { result.params.payload = v }
        }
        result.hnswConfig = result.hnswConfig.applying(update.hnswConfig)
        result.optimizerConfig = result.optimizerConfig.applying(update.optimizersConfig)
        switch update.quantizationConfig {
        case .set(let config): result.quantizationConfig = config
        case .disabled: result.quantizationConfig = nil
        case nil: break
        }
        if let strict = update.strictModeConfig {
            result.strictModeConfig = (result.strictModeConfig ?? StrictModeConfig()).merging(strict)
        }
        if let metadata = update.metadata {
            var merged = result.metadata ?? JSONObject()
            for (key, value) in metadata {
                merged[key] = value.isNull ? nil : value
            }
            result.metadata = merged
        }
        return result
    }
}

/// `VectorNameConfig` (`PUT /collections/{c}/vectors/{name}`): a dense vector (`{"dense": …}`,
/// with `size`, `distance`, `multivector_config`, `datatype`) or a sparse one (`{"sparse": …}`,
/// with `modifier`, `datatype`).
public enum NamedVectorConfig: Sendable, Equatable {
    case dense(VectorParams)
    case sparse(SparseVectorParams)
}

extension CollectionConfig {
    /// Adds vector `name` (nil: removes it, whichever kind it is). Adding one that exists with
    /// the same space is nothing; with another space, or as the other kind, it is refused, as in
    /// Qdrant. Tuning fields (HNSW, quantization, on_disk) stay what they are.
    public mutating func setNamedVector(_ name: String, _ vector: NamedVectorConfig?) throws(UpdateRejection) {
        switch vector {
        case nil:
            switch params.vectors {
            case .single where name == VectorsConfig.defaultVectorName: params.vectors = .named([:])
            case .single: break
            case .named(var map):
                map[name] = nil
                params.vectors = .named(map)
            }
            params.sparseVectors?[name] = nil
        case .dense(let new)?:
            if let existing = params.vectors.all[name] {
                guard existing.size == new.size, existing.distance == new.distance, existing.multivectorConfig == new.multivectorConfig,
                      existing.datatype == new.datatype else {
                    throw UpdateRejection(message: "Vector `\(name)` already exists with a different configuration")
                }
                return
            }
            if params.sparseVectors?[name] != nil { throw UpdateRejection(message: "Vector `\(name)` already exists as a sparse vector") }
            var map = params.vectors.all
            map[name] = new
            params.vectors = .named(map)
        case .sparse(let new)?:
            if let existing = params.sparseVectors?[name] {
                guard existing.modifier == new.modifier, existing.index?.datatype == new.index?.datatype else {
                    throw UpdateRejection(message: "Sparse vector `\(name)` already exists with a different configuration")
                }
                return
            }
            if params.vectors.all[name] != nil { throw UpdateRejection(message: "Vector `\(name)` already exists as a dense vector") }
            params.sparseVectors = (params.sparseVectors ?? [:]).merging([name: new]) { $1 }
        }
    }
}

extension PointsJSON {
    /// `VectorNameConfig`: exactly one of `dense` and `sparse`.
    public static func namedVectorConfig(_ value: JSONValue) throws(Failure) -> NamedVectorConfig {
        let body = try object(value, "")
        guard body.count == 1, let (kind, raw) = body.first(where: { _ in true }), kind == "dense" || kind == "sparse" else {
            throw fail("", "expected `{\"dense\": {\"size\", \"distance\"}}` or `{\"sparse\": {…}}`")
        }
        let config = try object(raw, kind)
        if kind == "dense" {
            try allowOnly(config, ["size", "distance", "multivector_config", "datatype"], kind)
            let params: VectorParams
            do {
                params = try JSONValueDecoder().decode(VectorParams.self, from: raw)
            } catch {
                throw fail(kind, "\(error)")
            }
            guard (1...VectorParams.dimensionMax).contains(params.size) else {
                throw Failure(path: "dense.size", message: "value \(params.size) invalid, must be from 1 to \(VectorParams.dimensionMax)", isValidation: true)
            }
            return .dense(params)
        }
        try allowOnly(config, ["modifier", "datatype"], kind)
        var params = SparseVectorParams()
        if let modifier = config["modifier"], !modifier.isNull {
            guard let text = modifier.stringValue, let parsed = Modifier(rawValue: text.lowercased()) else {
                throw fail("sparse.modifier", "unknown variant `\(modifier.stringValue ?? modifier.kindDescription)`, expected `none` or `idf`")
            }
            params.modifier = parsed
        }
        if let datatype = config["datatype"], !datatype.isNull {
            guard let text = datatype.stringValue, let parsed = Datatype(rawValue: text.lowercased()), parsed != .turbo4 else {
                throw fail("sparse.datatype", "unknown variant `\(datatype.stringValue ?? datatype.kindDescription)`, expected `float32`, `float16` or `uint8`")
            }
            params.index = SparseIndexParams(datatype: parsed)
        }
        return .sparse(params)
    }
}
