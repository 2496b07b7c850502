import SwiftProtobuf
import QuiverJSON
import QuiverModel

/// Collection information as `qdrant.*` messages. The configuration is read from the REST rendering
/// of the model (`JSONValueEncoder`), so both APIs report the same values.
extension Outbound {
    static func shardKey(_ key: ShardKey) -> Qdrant_ShardKey {
        var out = Qdrant_ShardKey()
        switch key {
        case .string(let s): out.keyword = s
        case .number(let n): out.number = n
        }
        return out
    }

    static func replicaState(_ state: ReplicaState) -> Qdrant_ReplicaState {
        switch state {
        case .active: .active
        case .dead: .dead
        case .partial: .partial
        case .initializing: .initializing
        case .listener: .listener
        case .partialSnapshot: .partialSnapshot
        case .recovery: .recovery
        case .resharding: .resharding
        case .reshardingScaleDown: .reshardingScaleDown
        case .activeRead: .activeRead
        case .manualRecovery: .manualRecovery
        }
    }

    static func clusterInfo(_ info: CollectionClusterInfo) -> Qdrant_CollectionClusterInfoResponse {
        Qdrant_CollectionClusterInfoResponse.with { out in
            out.peerID = info.peerID
            out.shardCount = UInt64(info.shardCount)
            out.localShards = info.localShards.map { local in
                Qdrant_LocalShardInfo.with {
                    $0.shardID = local.shardID
                    $0.pointsCount = UInt64(local.pointsCount)
                    $0.state = replicaState(local.state)
                    if let key = local.shardKey { $0.shardKey = shardKey(key) }
                }
            }
            out.remoteShards = info.remoteShards.map { remote in
                Qdrant_RemoteShardInfo.with {
                    $0.shardID = remote.shardID
                    $0.peerID = remote.peerID
                    $0.state = replicaState(remote.state)
                    if let key = remote.shardKey { $0.shardKey = shardKey(key) }
                }
            }
            out.shardTransfers = info.shardTransfers.map { transfer in
                Qdrant_ShardTransferInfo.with {
                    $0.shardID = transfer.shardID
                    if let to = transfer.toShardID { $0.toShardID = to }
                    $0.from = transfer.from
                    $0.to = transfer.to
                    $0.sync = transfer.sync
                }
            }
        }
    }

    static func snapshot(_ s: SnapshotDescription) -> Qdrant_SnapshotDescription {
        Qdrant_SnapshotDescription.with {
            $0.name = s.name
            $0.size = Int64(clamping: s.size)
            if let checksum = s.checksum { $0.checksum = checksum }
            if let time = s.creationTime, let timestamp = timestamp(time) { $0.creationTime = timestamp }
        }
    }

    // MARK: Collection info from its REST rendering

    private static func u64(_ json: JSONValue?) -> UInt64? {
        switch json {
        case .uint(let u): u
        case .int(let i): UInt64(exactly: i)
        case .double(let d): UInt64(exactly: d)
        default: nil
        }
    }

    private static func bool(_ json: JSONValue?) -> Bool? {
        if case .bool(let b) = json { return b }
        return nil
    }

    private static func double(_ json: JSONValue?) -> Double? { json?.doubleValue }

    static func collectionInfo(_ info: CollectionInfo) -> Qdrant_CollectionInfo {
        let json = (try? JSONValueEncoder().encode(info)) ?? .null
        var out = Qdrant_CollectionInfo()
        out.status = switch info.status {
        case .green: .green
        case .yellow: .yellow
        case .red: .red
        case .grey: .grey
        }
        out.optimizerStatus = Qdrant_OptimizerStatus.with {
            switch info.optimizerStatus {
            case .ok: $0.ok = true
            case .error(let message): $0.ok = false; $0.error = message
            }
        }
        out.warnings = info.warnings.map { warning in Qdrant_CollectionWarning.with { $0.message = warning.message } }
        out.segmentsCount = info.segmentsCount
        out.pointsCount = info.pointsCount
        out.indexedVectorsCount = info.indexedVectorsCount
        out.updateQueue = Qdrant_UpdateQueueInfo.with { $0.length = u64(json["update_queue"]?["length"]) ?? 0 }
        if let config = json["config"] { out.config = collectionConfig(config) }
        for (field, schema) in info.payloadSchema { out.payloadSchema[field] = payloadSchemaInfo(schema) }
        return out
    }

    static func collectionConfig(_ json: JSONValue) -> Qdrant_CollectionConfig {
        Qdrant_CollectionConfig.with { out in
            if let params = json["params"] { out.params = collectionParams(params) }
            if let hnsw = json["hnsw_config"] { out.hnswConfig = hnswConfig(hnsw) }
            if let optimizers = json["optimizer_config"] { out.optimizerConfig = optimizersConfig(optimizers) }
            if let wal = json["wal_config"] {
                out.walConfig = Qdrant_WalConfigDiff.with {
                    if let v = u64(wal["wal_capacity_mb"]) { $0.walCapacityMb = v }
                    if let v = u64(wal["wal_segments_ahead"]) { $0.walSegmentsAhead = v }
                    if let v = u64(wal["wal_retain_closed"]) { $0.walRetainClosed = v }
                }
            }
            if let q = json["quantization_config"], let quantization = quantizationConfig(q) { out.quantizationConfig = quantization }
            if let strict = json["strict_mode_config"], case .object = strict { out.strictModeConfig = strictModeConfig(strict) }
            if case .object(let metadata)? = json["metadata"] { out.metadata = fields(metadata) }
        }
    }

    static func distance(_ json: JSONValue?) -> Qdrant_Distance {
        switch json?.stringValue {
        case "Cosine": .cosine
        case "Euclid": .euclid
        case "Dot": .dot
        case "Manhattan": .manhattan
        default: .unknownDistance
        }
    }

    static func datatype(_ json: JSONValue?) -> Qdrant_Datatype? {
        switch json?.stringValue {
        case "float32": .float32
        case "uint8": .uint8
        case "float16": .float16
        default: nil
        }
    }

    static func vectorParams(_ json: JSONValue) -> Qdrant_VectorParams {
        Qdrant_VectorParams.with {
            $0.size = u64(json["size"]) ?? 0
            $0.distance = distance(json["distance"])
            if let hnsw = json["hnsw_config"], case .object = hnsw { $0.hnswConfig = hnswConfig(hnsw) }
            if let q = json["quantization_config"], let quantization = quantizationConfig(q) { $0.quantizationConfig = quantization }
            if let onDisk = bool(json["on_disk"]) { $0.onDisk = onDisk }
            if let datatype = datatype(json["datatype"]) { $0.datatype = datatype }
            if case .object? = json["multivector_config"] { $0.multivectorConfig = Qdrant_MultiVectorConfig.with { $0.comparator = .maxSim } }
        }
    }

    static func collectionParams(_ json: JSONValue) -> Qdrant_CollectionParams {
        Qdrant_CollectionParams.with { out in
            out.shardNumber = UInt32(clamping: u64(json["shard_number"]) ?? 1)
            out.onDiskPayload = bool(json["on_disk_payload"]) ?? false
            if let vectors = json["vectors"] {
                out.vectorsConfig = Qdrant_VectorsConfig.with {
                    if vectors["size"] != nil {
                        $0.params = vectorParams(vectors)
                    } else if case .object(let named) = vectors {
                        $0.paramsMap = Qdrant_VectorParamsMap.with { map in
                            for (name, params) in named { map.map[name] = vectorParams(params) }
                        }
                    }
                }
            }
            if let v = u64(json["replication_factor"]) { out.replicationFactor = UInt32(clamping: v) }
            if let v = u64(json["write_consistency_factor"]) { out.writeConsistencyFactor = UInt32(clamping: v) }
            if let v = u64(json["read_fan_out_factor"]) { out.readFanOutFactor = UInt32(clamping: v) }
            if let v = u64(json["read_fan_out_delay_ms"]) { out.readFanOutDelayMs = v }
            if let method = json["sharding_method"]?.stringValue { out.shardingMethod = method == "custom" ? .custom : .auto }
            if case .object(let sparse)? = json["sparse_vectors"] {
                out.sparseVectorsConfig = Qdrant_SparseVectorConfig.with { config in
                    for (name, params) in sparse {
                        config.map[name] = Qdrant_SparseVectorParams.with {
                            if let index = params["index"], case .object = index {
                                $0.index = Qdrant_SparseIndexConfig.with {
                                    if let v = u64(index["full_scan_threshold"]) { $0.fullScanThreshold = v }
                                    if let v = bool(index["on_disk"]) { $0.onDisk = v }
                                    if let v = datatype(index["datatype"]) { $0.datatype = v }
                                }
                            }
                            if let modifier = params["modifier"]?.stringValue { $0.modifier = modifier == "idf" ? .idf : .none }
                        }
                    }
                }
            }
        }
    }

    static func hnswConfig(_ json: JSONValue) -> Qdrant_HnswConfigDiff {
        Qdrant_HnswConfigDiff.with {
            if let v = u64(json["m"]) { $0.m = v }
            if let v = u64(json["ef_construct"]) { $0.efConstruct = v }
            if let v = u64(json["full_scan_threshold"]) { $0.fullScanThreshold = v }
            if let v = u64(json["max_indexing_threads"]) { $0.maxIndexingThreads = v }
            if let v = bool(json["on_disk"]) { $0.onDisk = v }
            if let v = u64(json["payload_m"]) { $0.payloadM = v }
            if let v = bool(json["inline_storage"]) { $0.inlineStorage = v }
        }
    }

    static func optimizersConfig(_ json: JSONValue) -> Qdrant_OptimizersConfigDiff {
        Qdrant_OptimizersConfigDiff.with {
            if let v = double(json["deleted_threshold"]) { $0.deletedThreshold = v }
            if let v = u64(json["vacuum_min_vector_number"]) { $0.vacuumMinVectorNumber = v }
            if let v = u64(json["default_segment_number"]) { $0.defaultSegmentNumber = v }
            if let v = u64(json["max_segment_size"]) { $0.maxSegmentSize = v }
            if let v = u64(json["memmap_threshold"]) { $0.memmapThreshold = v }
            if let v = u64(json["indexing_threshold"]) { $0.indexingThreshold = v }
            if let v = u64(json["flush_interval_sec"]) { $0.flushIntervalSec = v }
            if let v = u64(json["max_optimization_threads"]) {
                $0.maxOptimizationThreads = Qdrant_MaxOptimizationThreads.with { $0.value = v }
            } else if json["max_optimization_threads"]?.stringValue == "auto" {
                $0.maxOptimizationThreads = Qdrant_MaxOptimizationThreads.with { $0.setting = .auto }
            }
            if let v = bool(json["prevent_unoptimized"]) { $0.preventUnoptimized = v }
        }
    }

    static func quantizationConfig(_ json: JSONValue) -> Qdrant_QuantizationConfig? {
        if let s = json["scalar"] {
            return Qdrant_QuantizationConfig.with {
                $0.scalar = Qdrant_ScalarQuantization.with {
                    $0.type = .int8
                    if let q = double(s["quantile"]) { $0.quantile = Float(q) }
                    if let v = bool(s["always_ram"]) { $0.alwaysRam = v }
                }
            }
        }
        if let p = json["product"] {
            return Qdrant_QuantizationConfig.with {
                $0.product = Qdrant_ProductQuantization.with {
                    $0.compression = switch p["compression"]?.stringValue {
                    case "x8": .x8
                    case "x16": .x16
                    case "x32": .x32
                    case "x64": .x64
                    default: .x4
                    }
                    if let v = bool(p["always_ram"]) { $0.alwaysRam = v }
                }
            }
        }
        if let b = json["binary"] {
            return Qdrant_QuantizationConfig.with {
                $0.binary = Qdrant_BinaryQuantization.with {
                    if let v = bool(b["always_ram"]) { $0.alwaysRam = v }
                    switch b["encoding"]?.stringValue {
                    case "one_bit": $0.encoding = .oneBit
                    case "two_bits": $0.encoding = .twoBits
                    case "one_and_half_bits": $0.encoding = .oneAndHalfBits
                    default: break
                    }
                    let query: Qdrant_BinaryQuantizationQueryEncoding.Setting? = switch b["query_encoding"]?.stringValue {
                    case "default": .default
                    case "binary": .binary
                    case "scalar4bits": .scalar4Bits
                    case "scalar8bits": .scalar8Bits
                    default: nil
                    }
                    if let query { $0.queryEncoding = Qdrant_BinaryQuantizationQueryEncoding.with { $0.setting = query } }
                }
            }
        }
        return nil
    }

    static func strictModeConfig(_ json: JSONValue) -> Qdrant_StrictModeConfig {
        Qdrant_StrictModeConfig.with {
            if let v = bool(json["enabled"]) { $0.enabled = v }
            if let v = u64(json["max_query_limit"]) { $0.maxQueryLimit = UInt32(clamping: v) }
            if let v = u64(json["max_timeout"]) { $0.maxTimeout = UInt32(clamping: v) }
            if let v = bool(json["unindexed_filtering_retrieve"]) { $0.unindexedFilteringRetrieve = v }
            if let v = bool(json["unindexed_filtering_update"]) { $0.unindexedFilteringUpdate = v }
            if let v = u64(json["search_max_hnsw_ef"]) { $0.searchMaxHnswEf = UInt32(clamping: v) }
            if let v = bool(json["search_allow_exact"]) { $0.searchAllowExact = v }
            if let v = double(json["search_max_oversampling"]) { $0.searchMaxOversampling = Float(v) }
            if let v = u64(json["upsert_max_batchsize"]) { $0.upsertMaxBatchsize = v }
            if let v = u64(json["search_max_batchsize"]) { $0.searchMaxBatchsize = v }
            if let v = u64(json["max_collection_vector_size_bytes"]) { $0.maxCollectionVectorSizeBytes = v }
            if let v = u64(json["read_rate_limit"]) { $0.readRateLimit = UInt32(clamping: v) }
            if let v = u64(json["write_rate_limit"]) { $0.writeRateLimit = UInt32(clamping: v) }
            if let v = u64(json["max_collection_payload_size_bytes"]) { $0.maxCollectionPayloadSizeBytes = v }
            if let v = u64(json["filter_max_conditions"]) { $0.filterMaxConditions = v }
            if let v = u64(json["condition_max_size"]) { $0.conditionMaxSize = v }
            if let v = u64(json["max_points_count"]) { $0.maxPointsCount = v }
            if let v = u64(json["max_payload_index_count"]) { $0.maxPayloadIndexCount = v }
            if case .object(let multi)? = json["multivector_config"] {
                $0.multivectorConfig = Qdrant_StrictModeMultivectorConfig.with { config in
                    for (name, limits) in multi {
                        config.multivectorConfig[name] = Qdrant_StrictModeMultivector.with { if let v = u64(limits["max_vectors"]) { $0.maxVectors = v } }
                    }
                }
            }
            if case .object(let sparse)? = json["sparse_config"] {
                $0.sparseConfig = Qdrant_StrictModeSparseConfig.with { config in
                    for (name, limits) in sparse {
                        config.sparseConfig[name] = Qdrant_StrictModeSparse.with { if let v = u64(limits["max_length"]) { $0.maxLength = v } }
                    }
                }
            }
        }
    }

    static func payloadSchemaType(_ name: String?) -> Qdrant_PayloadSchemaType {
        switch name {
        case "keyword": .keyword
        case "integer": .integer
        case "float": .float
        case "geo": .geo
        case "text": .text
        case "bool": .bool
        case "datetime": .datetime
        case "uuid": .uuid
        default: .unknownType
        }
    }

    static func payloadSchemaInfo(_ json: JSONValue) -> Qdrant_PayloadSchemaInfo {
        Qdrant_PayloadSchemaInfo.with { out in
            let type = json["data_type"]?.stringValue
            out.dataType = payloadSchemaType(type)
            if let points = u64(json["points"]) { out.points = points }
            guard let params = json["params"], case .object = params else { return }
            out.params = Qdrant_PayloadIndexParams.with {
                switch type {
                case "keyword":
                    $0.keywordIndexParams = Qdrant_KeywordIndexParams.with {
                        if let v = bool(params["is_tenant"]) { $0.isTenant = v }
                        if let v = bool(params["on_disk"]) { $0.onDisk = v }
                        if let v = bool(params["enable_hnsw"]) { $0.enableHnsw = v }
                    }
                case "integer":
                    $0.integerIndexParams = Qdrant_IntegerIndexParams.with {
                        if let v = bool(params["lookup"]) { $0.lookup = v }
                        if let v = bool(params["range"]) { $0.range = v }
                        if let v = bool(params["is_principal"]) { $0.isPrincipal = v }
                        if let v = bool(params["on_disk"]) { $0.onDisk = v }
                        if let v = bool(params["enable_hnsw"]) { $0.enableHnsw = v }
                    }
                case "float":
                    $0.floatIndexParams = Qdrant_FloatIndexParams.with {
                        if let v = bool(params["is_principal"]) { $0.isPrincipal = v }
                        if let v = bool(params["on_disk"]) { $0.onDisk = v }
                        if let v = bool(params["enable_hnsw"]) { $0.enableHnsw = v }
                    }
                case "geo":
                    $0.geoIndexParams = Qdrant_GeoIndexParams.with {
                        if let v = bool(params["on_disk"]) { $0.onDisk = v }
                        if let v = bool(params["enable_hnsw"]) { $0.enableHnsw = v }
                    }
                case "bool":
                    $0.boolIndexParams = Qdrant_BoolIndexParams.with {
                        if let v = bool(params["on_disk"]) { $0.onDisk = v }
                        if let v = bool(params["enable_hnsw"]) { $0.enableHnsw = v }
                    }
                case "datetime":
                    $0.datetimeIndexParams = Qdrant_DatetimeIndexParams.with {
                        if let v = bool(params["is_principal"]) { $0.isPrincipal = v }
                        if let v = bool(params["on_disk"]) { $0.onDisk = v }
                        if let v = bool(params["enable_hnsw"]) { $0.enableHnsw = v }
                    }
                case "uuid":
                    $0.uuidIndexParams = Qdrant_UuidIndexParams.with {
                        if let v = bool(params["is_tenant"]) { $0.isTenant = v }
                        if let v = bool(params["on_disk"]) { $0.onDisk = v }
                        if let v = bool(params["enable_hnsw"]) { $0.enableHnsw = v }
                    }
                case "text":
                    $0.textIndexParams = Qdrant_TextIndexParams.with {
                        $0.tokenizer = switch params["tokenizer"]?.stringValue {
                        case "prefix": .prefix
                        case "whitespace": .whitespace
                        case "word": .word
                        case "multilingual": .multilingual
                        default: .unknown
                        }
                        if let v = bool(params["lowercase"]) { $0.lowercase = v }
                        if let v = u64(params["min_token_len"]) { $0.minTokenLen = v }
                        if let v = u64(params["max_token_len"]) { $0.maxTokenLen = v }
                        if let v = bool(params["on_disk"]) { $0.onDisk = v }
                        if let v = bool(params["phrase_matching"]) { $0.phraseMatching = v }
                        if let v = bool(params["ascii_folding"]) { $0.asciiFolding = v }
                        if let v = bool(params["enable_hnsw"]) { $0.enableHnsw = v }
                    }
                default: break
                }
            }
        }
    }
}
