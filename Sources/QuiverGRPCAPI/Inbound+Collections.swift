import SwiftProtobuf
import QuiverJSON

/// The `qdrant.Collections` requests (and the vector configuration `qdrant.Points` can change) as
/// the REST bodies of the same operations.
extension Inbound {
    static func uint(_ has: Bool, _ value: some BinaryInteger) -> JSONValue? { has ? .unsigned(UInt64(value)) : nil }
    static func double(_ has: Bool, _ value: Double) -> JSONValue? { has ? .double(value) : nil }

    static func distance(_ d: Qdrant_Distance) -> JSONValue {
        switch d {
        case .cosine: "Cosine"
        case .euclid: "Euclid"
        case .dot: "Dot"
        case .manhattan: "Manhattan"
        case .unknownDistance, .UNRECOGNIZED: "UnknownDistance"
        }
    }

    static func datatype(_ d: Qdrant_Datatype) -> JSONValue? {
        switch d {
        case .float32: "float32"
        case .uint8: "uint8"
        case .float16: "float16"
        case .turbo4: "turbo4"
        case .default, .UNRECOGNIZED: nil
        }
    }

    static func modifier(_ m: Qdrant_Modifier) -> JSONValue {
        m == .idf ? "idf" : "none"
    }

    static func multivector(_ m: Qdrant_MultiVectorConfig) -> JSONValue {
        ["comparator": "max_sim"]
    }

    static func hnsw(_ h: Qdrant_HnswConfigDiff) -> JSONValue {
        object([("m", uint(h.hasM, h.m)), ("ef_construct", uint(h.hasEfConstruct, h.efConstruct)),
                ("full_scan_threshold", uint(h.hasFullScanThreshold, h.fullScanThreshold)),
                ("max_indexing_threads", uint(h.hasMaxIndexingThreads, h.maxIndexingThreads)), ("on_disk", bool(h.hasOnDisk, h.onDisk)),
                ("payload_m", uint(h.hasPayloadM, h.payloadM)), ("inline_storage", bool(h.hasInlineStorage, h.inlineStorage))])
    }

    static func wal(_ w: Qdrant_WalConfigDiff) -> JSONValue {
        object([("wal_capacity_mb", uint(w.hasWalCapacityMb, w.walCapacityMb)), ("wal_segments_ahead", uint(w.hasWalSegmentsAhead, w.walSegmentsAhead)),
                ("wal_retain_closed", uint(w.hasWalRetainClosed, w.walRetainClosed))])
    }

    static func optimizers(_ o: Qdrant_OptimizersConfigDiff) -> JSONValue {
        var threads: JSONValue?
        if o.hasMaxOptimizationThreads {
            switch o.maxOptimizationThreads.variant {
            case .value(let n): threads = .unsigned(n)
            case .setting: threads = "auto"
            case nil: threads = nil
            }
        } else if o.hasDeprecatedMaxOptimizationThreads {
            threads = .unsigned(o.deprecatedMaxOptimizationThreads)
        }
        return object([("deleted_threshold", double(o.hasDeletedThreshold, o.deletedThreshold)),
                       ("vacuum_min_vector_number", uint(o.hasVacuumMinVectorNumber, o.vacuumMinVectorNumber)),
                       ("default_segment_number", uint(o.hasDefaultSegmentNumber, o.defaultSegmentNumber)),
                       ("max_segment_size", uint(o.hasMaxSegmentSize, o.maxSegmentSize)), ("memmap_threshold", uint(o.hasMemmapThreshold, o.memmapThreshold)),
                       ("indexing_threshold", uint(o.hasIndexingThreshold, o.indexingThreshold)),
                       ("flush_interval_sec", uint(o.hasFlushIntervalSec, o.flushIntervalSec)), ("max_optimization_threads", threads),
                       ("prevent_unoptimized", bool(o.hasPreventUnoptimized, o.preventUnoptimized))])
    }

    static func scalar(_ s: Qdrant_ScalarQuantization) -> JSONValue {
        ["scalar": object([("type", s.type == .int8 ? "int8" : "unknown"), ("quantile", s.hasQuantile ? .double(Double(s.quantile)) : nil),
                           ("always_ram", bool(s.hasAlwaysRam, s.alwaysRam))])]
    }

    static func product(_ p: Qdrant_ProductQuantization) -> JSONValue {
        let compression: JSONValue = switch p.compression {
        case .x4: "x4"
        case .x8: "x8"
        case .x16: "x16"
        case .x32: "x32"
        case .x64: "x64"
        case .UNRECOGNIZED(let n): .int(Int64(n))
        }
        return ["product": object([("compression", compression), ("always_ram", bool(p.hasAlwaysRam, p.alwaysRam))])]
    }

    static func binary(_ b: Qdrant_BinaryQuantization) -> JSONValue {
        var encoding: JSONValue?
        if b.hasEncoding {
            encoding = switch b.encoding {
            case .oneBit: "one_bit"
            case .twoBits: "two_bits"
            case .oneAndHalfBits: "one_and_half_bits"
            case .UNRECOGNIZED(let n): .int(Int64(n))
            }
        }
        var query: JSONValue?
        if b.hasQueryEncoding, case .setting(let s)? = b.queryEncoding.variant {
            query = switch s {
            case .default: "default"
            case .binary: "binary"
            case .scalar4Bits: "scalar4bits"
            case .scalar8Bits: "scalar8bits"
            case .UNRECOGNIZED(let n): .int(Int64(n))
            }
        }
        return ["binary": object([("always_ram", bool(b.hasAlwaysRam, b.alwaysRam)), ("encoding", encoding), ("query_encoding", query)])]
    }

    static func turbo(_ t: Qdrant_TurboQuantization) -> JSONValue {
        ["turboquant": object([("always_ram", bool(t.hasAlwaysRam, t.alwaysRam))])]
    }

    static func quantization(_ q: Qdrant_QuantizationConfig) -> JSONValue? {
        switch q.quantization {
        case nil: nil
        case .scalar(let s): scalar(s)
        case .product(let p): product(p)
        case .binary(let b): binary(b)
        case .turboquant(let t): turbo(t)
        }
    }

    static func quantization(_ q: Qdrant_QuantizationConfigDiff) -> JSONValue? {
        switch q.quantization {
        case nil: nil
        case .scalar(let s): scalar(s)
        case .product(let p): product(p)
        case .binary(let b): binary(b)
        case .turboquant(let t): turbo(t)
        case .disabled: "Disabled"
        }
    }

    static func vectorParams(_ p: Qdrant_VectorParams) -> JSONValue {
        object([("size", .unsigned(p.size)), ("distance", distance(p.distance)), ("hnsw_config", p.hasHnswConfig ? hnsw(p.hnswConfig) : nil),
                ("quantization_config", p.hasQuantizationConfig ? quantization(p.quantizationConfig) : nil), ("on_disk", bool(p.hasOnDisk, p.onDisk)),
                ("datatype", p.hasDatatype ? datatype(p.datatype) : nil),
                ("multivector_config", p.hasMultivectorConfig ? multivector(p.multivectorConfig) : nil)])
    }

    static func vectors(_ v: Qdrant_VectorsConfig) -> JSONValue? {
        switch v.config {
        case nil: nil
        case .params(let p): vectorParams(p)
        case .paramsMap(let m): .object(JSONObject(m.map.sorted { $0.key < $1.key }.map { ($0.key, vectorParams($0.value)) }))
        }
    }

    static func vectorsDiff(_ v: Qdrant_VectorsConfigDiff) -> JSONValue? {
        func diff(_ d: Qdrant_VectorParamsDiff) -> JSONValue {
            object([("hnsw_config", d.hasHnswConfig ? hnsw(d.hnswConfig) : nil),
                    ("quantization_config", d.hasQuantizationConfig ? quantization(d.quantizationConfig) : nil), ("on_disk", bool(d.hasOnDisk, d.onDisk))])
        }
        switch v.config {
        case nil: return nil
        case .params(let p): return ["": diff(p)]
        case .paramsMap(let m): return .object(JSONObject(m.map.sorted { $0.key < $1.key }.map { ($0.key, diff($0.value)) }))
        }
    }

    static func sparseVectors(_ s: Qdrant_SparseVectorConfig) -> JSONValue {
        .object(JSONObject(s.map.sorted { $0.key < $1.key }.map { name, p in
            let index: JSONValue? = p.hasIndex
                ? object([("full_scan_threshold", uint(p.index.hasFullScanThreshold, p.index.fullScanThreshold)),
                          ("on_disk", bool(p.index.hasOnDisk, p.index.onDisk)), ("datatype", p.index.hasDatatype ? datatype(p.index.datatype) : nil)])
                : nil
            return (name, object([("index", index), ("modifier", p.hasModifier ? modifier(p.modifier) : nil)]))
        }))
    }

    static func strictMode(_ s: Qdrant_StrictModeConfig) -> JSONValue {
        var multivector: JSONValue?
        if s.hasMultivectorConfig {
            multivector = .object(JSONObject(s.multivectorConfig.multivectorConfig.sorted { $0.key < $1.key }.map {
                ($0.key, object([("max_vectors", uint($0.value.hasMaxVectors, $0.value.maxVectors))]))
            }))
        }
        var sparse: JSONValue?
        if s.hasSparseConfig {
            sparse = .object(JSONObject(s.sparseConfig.sparseConfig.sorted { $0.key < $1.key }.map {
                ($0.key, object([("max_length", uint($0.value.hasMaxLength, $0.value.maxLength))]))
            }))
        }
        return object([
            ("enabled", bool(s.hasEnabled, s.enabled)), ("max_query_limit", uint(s.hasMaxQueryLimit, s.maxQueryLimit)),
            ("max_timeout", uint(s.hasMaxTimeout, s.maxTimeout)),
            ("unindexed_filtering_retrieve", bool(s.hasUnindexedFilteringRetrieve, s.unindexedFilteringRetrieve)),
            ("unindexed_filtering_update", bool(s.hasUnindexedFilteringUpdate, s.unindexedFilteringUpdate)),
            ("search_max_hnsw_ef", uint(s.hasSearchMaxHnswEf, s.searchMaxHnswEf)), ("search_allow_exact", bool(s.hasSearchAllowExact, s.searchAllowExact)),
            ("search_max_oversampling", s.hasSearchMaxOversampling ? .double(Double(s.searchMaxOversampling)) : nil),
            ("upsert_max_batchsize", uint(s.hasUpsertMaxBatchsize, s.upsertMaxBatchsize)),
            ("search_max_batchsize", uint(s.hasSearchMaxBatchsize, s.searchMaxBatchsize)),
            ("max_collection_vector_size_bytes", uint(s.hasMaxCollectionVectorSizeBytes, s.maxCollectionVectorSizeBytes)),
            ("read_rate_limit", uint(s.hasReadRateLimit, s.readRateLimit)), ("write_rate_limit", uint(s.hasWriteRateLimit, s.writeRateLimit)),
            ("max_collection_payload_size_bytes", uint(s.hasMaxCollectionPayloadSizeBytes, s.maxCollectionPayloadSizeBytes)),
            ("filter_max_conditions", uint(s.hasFilterMaxConditions, s.filterMaxConditions)),
            ("condition_max_size", uint(s.hasConditionMaxSize, s.conditionMaxSize)), ("multivector_config", multivector), ("sparse_config", sparse),
            ("max_points_count", uint(s.hasMaxPointsCount, s.maxPointsCount)),
            ("max_payload_index_count", uint(s.hasMaxPayloadIndexCount, s.maxPayloadIndexCount)),
        ])
    }

    static func createCollection(_ r: Qdrant_CreateCollection) -> JSONValue {
        object([
            ("vectors", r.hasVectorsConfig ? vectors(r.vectorsConfig) : nil), ("shard_number", uint(r.hasShardNumber, r.shardNumber)),
            ("sharding_method", r.hasShardingMethod ? (r.shardingMethod == .custom ? "custom" : "auto") : nil),
            ("replication_factor", uint(r.hasReplicationFactor, r.replicationFactor)),
            ("write_consistency_factor", uint(r.hasWriteConsistencyFactor, r.writeConsistencyFactor)),
            ("on_disk_payload", bool(r.hasOnDiskPayload, r.onDiskPayload)), ("hnsw_config", r.hasHnswConfig ? hnsw(r.hnswConfig) : nil),
            ("wal_config", r.hasWalConfig ? wal(r.walConfig) : nil), ("optimizers_config", r.hasOptimizersConfig ? optimizers(r.optimizersConfig) : nil),
            ("quantization_config", r.hasQuantizationConfig ? quantization(r.quantizationConfig) : nil),
            ("sparse_vectors", r.hasSparseVectorsConfig ? sparseVectors(r.sparseVectorsConfig) : nil),
            ("strict_mode_config", r.hasStrictModeConfig ? strictMode(r.strictModeConfig) : nil),
            ("metadata", r.metadata.isEmpty ? nil : json(r.metadata)),
        ])
    }

    static func updateCollection(_ r: Qdrant_UpdateCollection) -> JSONValue {
        var params: JSONValue?
        if r.hasParams {
            let p = r.params
            params = object([("replication_factor", uint(p.hasReplicationFactor, p.replicationFactor)),
                             ("write_consistency_factor", uint(p.hasWriteConsistencyFactor, p.writeConsistencyFactor)),
                             ("read_fan_out_factor", uint(p.hasReadFanOutFactor, p.readFanOutFactor)),
                             ("read_fan_out_delay_ms", uint(p.hasReadFanOutDelayMs, p.readFanOutDelayMs)),
                             ("on_disk_payload", bool(p.hasOnDiskPayload, p.onDiskPayload))])
        }
        return object([
            ("optimizers_config", r.hasOptimizersConfig ? optimizers(r.optimizersConfig) : nil), ("params", params),
            ("hnsw_config", r.hasHnswConfig ? hnsw(r.hnswConfig) : nil), ("vectors", r.hasVectorsConfig ? vectorsDiff(r.vectorsConfig) : nil),
            ("quantization_config", r.hasQuantizationConfig ? quantization(r.quantizationConfig) : nil),
            ("sparse_vectors", r.hasSparseVectorsConfig ? sparseVectors(r.sparseVectorsConfig) : nil),
            ("strict_mode_config", r.hasStrictModeConfig ? strictMode(r.strictModeConfig) : nil),
            ("metadata", r.metadata.isEmpty ? nil : json(r.metadata)),
        ])
    }

    /// `PUT /collections/{c}/vectors/{name}`'s body: `{"dense": {...}}` or `{"sparse": {...}}`.
    static func namedVectorConfig(_ r: Qdrant_CreateVectorNameRequest) -> JSONValue {
        switch r.vectorConfig {
        case nil: return [:]
        case .denseConfig(let d):
            return ["dense": object([("size", .unsigned(d.size)), ("distance", distance(d.distance)),
                                     ("multivector_config", d.hasMultivectorConfig ? multivector(d.multivectorConfig) : nil),
                                     ("datatype", d.hasDatatype ? datatype(d.datatype) : nil)])]
        case .sparseConfig(let s):
            return ["sparse": object([("modifier", s.hasModifier ? modifier(s.modifier) : nil), ("datatype", s.hasDatatype ? datatype(s.datatype) : nil)])]
        }
    }

    static func aliases(_ r: Qdrant_ChangeAliases) -> JSONValue {
        ["actions": .array(r.actions.map { action in
            switch action.action {
            case nil: [:]
            case .createAlias(let c): ["create_alias": ["collection_name": .string(c.collectionName), "alias_name": .string(c.aliasName)]]
            case .renameAlias(let r): ["rename_alias": ["old_alias_name": .string(r.oldAliasName), "new_alias_name": .string(r.newAliasName)]]
            case .deleteAlias(let d): ["delete_alias": ["alias_name": .string(d.aliasName)]]
            }
        })]
    }

    // MARK: Cluster setup

    static func replicaState(_ s: Qdrant_ReplicaState) -> JSONValue {
        switch s {
        case .active: "Active"
        case .dead: "Dead"
        case .partial: "Partial"
        case .initializing: "Initializing"
        case .listener: "Listener"
        case .partialSnapshot: "PartialSnapshot"
        case .recovery: "Recovery"
        case .resharding: "Resharding"
        case .reshardingScaleDown: "ReshardingScaleDown"
        case .activeRead: "ActiveRead"
        case .manualRecovery: "ManualRecovery"
        case .UNRECOGNIZED(let n): .int(Int64(n))
        }
    }

    static func transferMethod(_ m: Qdrant_ShardTransferMethod) -> JSONValue {
        switch m {
        case .streamRecords: "stream_records"
        case .snapshot: "snapshot"
        case .walDelta: "wal_delta"
        case .reshardingStreamRecords: "resharding_stream_records"
        case .UNRECOGNIZED(let n): .int(Int64(n))
        }
    }

    static func createShardKey(_ c: Qdrant_CreateShardKey) -> JSONValue {
        object([("shard_key", json(c.shardKey)), ("shards_number", uint(c.hasShardsNumber, c.shardsNumber)),
                ("replication_factor", uint(c.hasReplicationFactor, c.replicationFactor)),
                ("placement", c.placement.isEmpty ? nil : uints(c.placement)), ("initial_state", c.hasInitialState ? replicaState(c.initialState) : nil)])
    }

    static func clusterOperation(_ r: Qdrant_UpdateCollectionClusterSetupRequest) -> JSONValue {
        func transfer(_ shard: UInt32, _ hasTo: Bool, _ to: UInt32, _ from: UInt64, _ toPeer: UInt64, _ method: JSONValue?) -> JSONValue {
            object([("shard_id", .unsigned(UInt64(shard))), ("to_shard_id", uint(hasTo, to)), ("from_peer_id", .unsigned(from)),
                    ("to_peer_id", .unsigned(toPeer)), ("method", method)])
        }
        switch r.operation {
        case nil: return [:]
        case .moveShard(let m):
            return ["move_shard": transfer(m.shardID, m.hasToShardID, m.toShardID, m.fromPeerID, m.toPeerID, m.hasMethod ? transferMethod(m.method) : nil)]
        case .replicateShard(let m):
            return ["replicate_shard": transfer(m.shardID, m.hasToShardID, m.toShardID, m.fromPeerID, m.toPeerID,
                                                m.hasMethod ? transferMethod(m.method) : nil)]
        case .abortTransfer(let m):
            return ["abort_transfer": transfer(m.shardID, m.hasToShardID, m.toShardID, m.fromPeerID, m.toPeerID, nil)]
        case .restartTransfer(let m):
            return ["restart_transfer": transfer(m.shardID, m.hasToShardID, m.toShardID, m.fromPeerID, m.toPeerID, transferMethod(m.method))]
        case .dropReplica(let d): return ["drop_replica": ["shard_id": .unsigned(UInt64(d.shardID)), "peer_id": .unsigned(d.peerID)]]
        case .createShardKey(let c): return ["create_sharding_key": createShardKey(c)]
        case .deleteShardKey(let d): return ["drop_sharding_key": ["shard_key": json(d.shardKey)]]
        case .replicatePoints(let p):
            return ["replicate_points": object([("from_shard_key", json(p.fromShardKey)), ("to_shard_key", json(p.toShardKey)),
                                                ("filter", p.hasFilter ? json(p.filter) : nil)])]
        }
    }
}
