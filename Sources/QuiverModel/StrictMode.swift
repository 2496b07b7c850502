public import QuiverJSON

public struct StrictModeMultivector: Codable, Sendable, Equatable {
    public var maxVectors: Int?
    enum CodingKeys: String, CodingKey { case maxVectors = "max_vectors" }
}

public struct StrictModeSparse: Codable, Sendable, Equatable {
    public var maxLength: Int?
    enum CodingKeys: String, CodingKey { case maxLength = "max_length" }
}

/// Per-collection limits (`StrictModeConfig`). Every field is optional; an update merges field by
/// field. Enforcement of each limit lands with the operation it limits.
public struct StrictModeConfig: Codable, Sendable, Equatable, Validatable {
    public var enabled: Bool?
    public var maxQueryLimit: Int?
    public var maxTimeout: Int?
    public var unindexedFilteringRetrieve: Bool?
    public var unindexedFilteringUpdate: Bool?
    public var searchMaxHnswEf: Int?
    public var searchAllowExact: Bool?
    public var searchMaxOversampling: Double?
    public var upsertMaxBatchsize: Int?
    public var searchMaxBatchsize: Int?
    public var maxCollectionVectorSizeBytes: Int?
    public var readRateLimit: Int?
    public var writeRateLimit: Int?
    public var maxCollectionPayloadSizeBytes: Int?
    public var maxPointsCount: Int?
    public var filterMaxConditions: Int?
    public var conditionMaxSize: Int?
    public var multivectorConfig: [String: StrictModeMultivector]?
    public var sparseConfig: [String: StrictModeSparse]?
    public var maxPayloadIndexCount: Int?
    public var maxResidentMemoryPercent: Int?

    public init() {}

    enum CodingKeys: String, CodingKey {
        case enabled
        case maxQueryLimit = "max_query_limit"
        case maxTimeout = "max_timeout"
        case unindexedFilteringRetrieve = "unindexed_filtering_retrieve"
        case unindexedFilteringUpdate = "unindexed_filtering_update"
        case searchMaxHnswEf = "search_max_hnsw_ef"
        case searchAllowExact = "search_allow_exact"
        case searchMaxOversampling = "search_max_oversampling"
        case upsertMaxBatchsize = "upsert_max_batchsize"
        case searchMaxBatchsize = "search_max_batchsize"
        case maxCollectionVectorSizeBytes = "max_collection_vector_size_bytes"
        case readRateLimit = "read_rate_limit"
        case writeRateLimit = "write_rate_limit"
        case maxCollectionPayloadSizeBytes = "max_collection_payload_size_bytes"
        case maxPointsCount = "max_points_count"
        case filterMaxConditions = "filter_max_conditions"
        case conditionMaxSize = "condition_max_size"
        case multivectorConfig = "multivector_config"
        case sparseConfig = "sparse_config"
        case maxPayloadIndexCount = "max_payload_index_count"
        case maxResidentMemoryPercent = "max_resident_memory_percent"
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encodeIfPresent(enabled, forKey: .enabled)
        try c.encodeIfPresent(maxQueryLimit, forKey: .maxQueryLimit)
        try c.encodeIfPresent(maxTimeout, forKey: .maxTimeout)
        try c.encodeIfPresent(unindexedFilteringRetrieve, forKey: .unindexedFilteringRetrieve)
        try c.encodeIfPresent(unindexedFilteringUpdate, forKey: .unindexedFilteringUpdate)
        try c.encodeIfPresent(searchMaxHnswEf, forKey: .searchMaxHnswEf)
        try c.encodeIfPresent(searchAllowExact, forKey: .searchAllowExact)
        try c.encodeIfPresent(searchMaxOversampling, forKey: .searchMaxOversampling)
        try c.encodeIfPresent(upsertMaxBatchsize, forKey: .upsertMaxBatchsize)
        try c.encodeIfPresent(searchMaxBatchsize, forKey: .searchMaxBatchsize)
        try c.encodeIfPresent(maxCollectionVectorSizeBytes, forKey: .maxCollectionVectorSizeBytes)
        try c.encodeIfPresent(readRateLimit, forKey: .readRateLimit)
        try c.encodeIfPresent(writeRateLimit, forKey: .writeRateLimit)
        try c.encodeIfPresent(maxCollectionPayloadSizeBytes, forKey: .maxCollectionPayloadSizeBytes)
        try c.encodeIfPresent(maxPointsCount, forKey: .maxPointsCount)
        try c.encodeIfPresent(filterMaxConditions, forKey: .filterMaxConditions)
        try c.encodeIfPresent(conditionMaxSize, forKey: .conditionMaxSize)
        try c.encodeIfPresent(multivectorConfig.map(SortedMap.init), forKey: .multivectorConfig)
        try c.encodeIfPresent(sparseConfig.map(SortedMap.init), forKey: .sparseConfig)
        try c.encodeIfPresent(maxPayloadIndexCount, forKey: .maxPayloadIndexCount)
        try c.encodeIfPresent(maxResidentMemoryPercent, forKey: .maxResidentMemoryPercent)
    }

    public func validate(into errors: inout ValidationErrors, path: String) {
        errors.range(fieldPath(path, "max_query_limit"), maxQueryLimit, min: 1)
        errors.range(fieldPath(path, "max_timeout"), maxTimeout, min: 1)
        errors.range(fieldPath(path, "read_rate_limit"), readRateLimit, min: 1)
        errors.range(fieldPath(path, "write_rate_limit"), writeRateLimit, min: 1)
        errors.range(fieldPath(path, "max_points_count"), maxPointsCount, min: 1)
        errors.range(fieldPath(path, "max_resident_memory_percent"), maxResidentMemoryPercent, min: 1, max: 100)
        errors.range(fieldPath(path, "search_max_oversampling"), searchMaxOversampling, min: 1.0)
    }

    /// Fields set in `diff` replace ours.
    public func merging(_ diff: StrictModeConfig) -> StrictModeConfig {
        var r = self
        if let v = diff.enabled { r.enabled = v }
        if let v = diff.maxQueryLimit { r.maxQueryLimit = v }
        if let v = diff.maxTimeout { r.maxTimeout = v }
        if let v = diff.unindexedFilteringRetrieve { r.unindexedFilteringRetrieve = v }
        if let v = diff.unindexedFilteringUpdate { r.unindexedFilteringUpdate = v }
        if let v = diff.searchMaxHnswEf { r.searchMaxHnswEf = v }
        if let v = diff.searchAllowExact { r.searchAllowExact = v }
        if let v = diff.searchMaxOversampling { r.searchMaxOversampling = v }
        if let v = diff.upsertMaxBatchsize { r.upsertMaxBatchsize = v }
        if let v = diff.searchMaxBatchsize { r.searchMaxBatchsize = v }
        if let v = diff.maxCollectionVectorSizeBytes { r.maxCollectionVectorSizeBytes = v }
        if let v = diff.readRateLimit { r.readRateLimit = v }
        if let v = diff.writeRateLimit { r.writeRateLimit = v }
        if let v = diff.maxCollectionPayloadSizeBytes { r.maxCollectionPayloadSizeBytes = v }
        if let v = diff.maxPointsCount { r.maxPointsCount = v }
        if let v = diff.filterMaxConditions { r.filterMaxConditions = v }
        if let v = diff.conditionMaxSize { r.conditionMaxSize = v }
        if let v = diff.multivectorConfig { r.multivectorConfig = (r.multivectorConfig ?? [:]).merging(v) { $1 } }
        if let v = diff.sparseConfig { r.sparseConfig = (r.sparseConfig ?? [:]).merging(v) { $1 } }
        if let v = diff.maxPayloadIndexCount { r.maxPayloadIndexCount = v }
        if let v = diff.maxResidentMemoryPercent { r.maxResidentMemoryPercent = v }
        return r
    }
}
