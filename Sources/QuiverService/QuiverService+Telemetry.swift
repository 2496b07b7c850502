import DiskIO
import Foundation
public import QuiverJSON
import QuiverModel
import Shard
import Storage
import VectorIndex

extension QuiverService {
    /// `GET /telemetry` (`TelemetryData`) at `detailsLevel` as Qdrant's levels go (4 and above are 4):
    /// - 0: the app, the number of collections, whether the cluster is enabled, `requests`;
    /// - 1: the app's features and system, one aggregated entry per collection (no names), and in a
    ///   cluster the consensus status;
    /// - 2: one entry per collection with its id, load time and configuration; the peers;
    /// - 3: each collection's shards (replica states, and this peer's replica: sizes, status,
    ///   optimizations, update queue); each peer's metadata;
    /// - 4: each local replica's segments.
    /// `requests` is the REST layer's response statistics, passed through.
    public func telemetry(id: String, startup: String, detailsLevel: Int, requests: JSONValue?) async -> JSONValue {
        let level = min(detailsLevel, 4)
        var app = JSONObject([("name", "quiver"), ("version", .string(Self.apiVersion)), ("startup", .string(startup))])
        let names = await toc.collectionNames.filter(Access.mayRead).sorted()
        var collections = JSONObject([("number_of_collections", .int(Int64(names.count)))])
        var cluster = JSONObject([("enabled", .bool(self.cluster != nil)), ("resharding_enabled", .bool(self.cluster != nil && reshardingEnabled))])
        if level >= 1 {
            app["features"] = ["debug": false, "service_debug_feature": false, "recovery_mode": false, "gpu": false,
                               "rocksdb": false, "staging": false]
            app["system"] = Self.systemTelemetry
            var entries: [JSONValue] = []
            var snapshots: [JSONValue] = []
            let activity = await toc.snapshotActivity
            for name in names {
                guard let collection = try? await toc.collection(name) else { continue }
                if level >= 2 {
                    entries.append(Self.collectionTelemetry(await collection.telemetry(), level: level))
                    let counts = activity[name] ?? SnapshotActivity()
                    snapshots.append(["id": .string(name), "running_snapshots": .int(Int64(counts.running)),
                                      "running_snapshot_recovery": .int(Int64(counts.recovering)),
                                      "total_snapshot_creations": .int(Int64(counts.created))])
                } else {
                    let info = await collection.info()
                    let params = (try? JSONValueEncoder().encode(info.config.params)) ?? .null
                    let status = (try? JSONValueEncoder().encode(info.optimizerStatus)) ?? "ok"
                    var vectors = 0
                    for replica in await collection.telemetry(payloadSizes: false).shards {
                        for segment in replica.local?.figures.segments ?? [] { vectors += segment.vectors.values.reduce(0, +) }
                    }
                    entries.append(["vectors": .int(Int64(vectors)), "optimizers_status": status, "params": params])
                }
            }
            collections["collections"] = .array(entries)
            collections["snapshots"] = .array(snapshots)
        }
        if let control = self.cluster {
            let status = control.status()
            if level >= 1 {
                let consensus: JSONValue = switch status.consensusThreadStatus {
                case .working(let lastUpdate): ["consensus_thread_status": "working", "last_update": .string(lastUpdate)]
                case .stopped: ["consensus_thread_status": "stopped"]
                }
                cluster["status"] = [
                    "number_of_peers": .int(Int64(status.peers.count)),
                    "term": .unsigned(status.raftInfo.term),
                    "commit": .unsigned(status.raftInfo.commit),
                    "pending_operations": .unsigned(status.raftInfo.pendingOperations),
                    "role": status.raftInfo.role.map(JSONValue.string) ?? .null,
                    "is_voter": .bool(status.raftInfo.isVoter),
                    "peer_id": .unsigned(status.peerId),
                    "consensus_thread_status": consensus,
                ]
            }
            if level >= 2 {
                cluster["peers"] = .object(JSONObject(status.peers.sorted { $0.key < $1.key }.map { ($0.key, ["uri": .string($0.value.uri)] as JSONValue) }))
            }
            if level >= 3 {
                // Peers do not exchange their versions yet: each is reported with this build's API version.
                cluster["peer_metadata"] = .object(JSONObject(status.peers.keys.sorted().map { ($0, ["version": .string(Self.apiVersion)] as JSONValue) }))
            }
        }
        var result = JSONObject([("id", .string(id)), ("app", .object(app)), ("collections", .object(collections)), ("cluster", .object(cluster))])
        if let requests { result["requests"] = requests }
        // The quotas in force and the resources over them, for a caller that may see the node's.
        if (try? Access.requireGlobal(manage: false)) != nil, let quota = toc.quota {
            result["quota"] = ["config": (try? JSONValueEncoder().encode(quota.config)) ?? .null,
                               "exceeded": (try? JSONValueEncoder().encode(quota.exceeded())) ?? .null]
        }
        // Quiver's own: the storage's disk and whether writes are refused for want of space.
        if (try? Access.requireGlobal(manage: false)) != nil, let space = toc.space, let reading = space.reading {
            var disk = JSONObject([("read_only", .bool(space.refusal != nil)), ("available_bytes", .unsigned(reading.available)),
                                   ("capacity_bytes", .unsigned(reading.capacity)), ("reserve_bytes", .unsigned(reading.reserve))])
            if let refusal = space.refusal { disk["reason"] = .string(refusal) }
            result["disk"] = .object(disk)
        }
        return .object(result)
    }

    /// `CollectionTelemetry`: id, load time and configuration; from level 3 the shards.
    static func collectionTelemetry(_ telemetry: CollectionTelemetry, level: Int) -> JSONValue {
        var entry = JSONObject([("id", .string(telemetry.name)), ("init_time_ms", .unsigned(telemetry.initTimeMs))])
        var config = JSONObject()
        if case .object(let encoded) = (try? JSONValueEncoder().encode(telemetry.config)) ?? .null {
            for key in ["params", "hnsw_config", "optimizer_config", "wal_config", "quantization_config", "strict_mode_config", "metadata", "uuid"] {
                if let value = encoded[key] { config[key] = value } else if key == "quantization_config" || key == "uuid" { config[key] = .null }
            }
        }
        entry["config"] = .object(config)
        guard level >= 3 else { return .object(entry) }
        entry["shards"] = .array(telemetry.shards.map {
            replicaTelemetry($0, peerID: telemetry.peerID, config: telemetry.config, schema: telemetry.payloadSchema, level: level)
        })
        entry["transfers"] = []
        entry["resharding"] = []
        return .object(entry)
    }

    /// `ReplicaSetTelemetry` for one shard.
    static func replicaTelemetry(_ replica: CollectionTelemetry.Replica, peerID: UInt64, config: CollectionConfig,
                                 schema: [String: PayloadFieldSchema], level: Int) -> JSONValue {
        let key: JSONValue = replica.info.key.flatMap { try? JSONValueEncoder().encode($0) } ?? .null
        let holders = replica.info.peers.sorted()
        var local: JSONValue = .null
        if let shard = replica.local {
            local = localShardTelemetry(shard, config: config, schema: schema, level: level)
        }
        let remote: [JSONValue] = holders.filter { $0 != peerID }.map { peer in
            ["shard_id": .unsigned(UInt64(replica.info.id)), "peer_id": .unsigned(peer)]
        }
        return [
            "id": .unsigned(UInt64(replica.info.id)),
            "key": key,
            "local": local,
            "remote": .array(remote),
            "replicate_states": .object(JSONObject(holders.map { ("\($0)", .string(replica.info.state(of: $0).rawValue)) })),
            "partial_snapshot": ["ongoing_create_snapshot_requests": 0, "is_recovering": false, "recovery_timestamp": 0],
        ]
    }

    static func localShardTelemetry(_ shard: CollectionTelemetry.Local, config: CollectionConfig, schema: [String: PayloadFieldSchema],
                                    level: Int) -> JSONValue {
        let segments = shard.figures.segments
        var byName: [String: Int] = [:]
        for segment in segments { byName.merge(segment.vectors) { $0 + $1 } }
        let optimizerStatus: JSONValue = shard.optimizerError.map { ["error": .string($0)] } ?? "ok"
        var queue = JSONObject([("length", 0), ("op_num", .unsigned(shard.figures.lastOperation))])
        if config.optimizerConfig.preventUnoptimized == true { queue["deferred_points"] = 0 }
        var out = JSONObject([
            ("variant_name", "local shard"),
            ("status", .string(shard.status.rawValue)),
            ("total_optimized_points", .int(Int64(shard.figures.totalOptimizedPoints))),
            ("vectors_size_bytes", .int(Int64(segments.reduce(0) { $0 + $1.vectorBytes }))),
            ("payloads_size_bytes", .int(Int64(segments.reduce(0) { $0 + $1.payloadBytes }))),
            ("num_points", .int(Int64(segments.reduce(0) { $0 + $1.points }))),
            ("num_vectors", .int(Int64(byName.values.reduce(0, +)))),
            ("num_vectors_by_name", .object(JSONObject(byName.sorted { $0.key < $1.key }.map { ($0.key, .int(Int64($0.value))) }))),
            ("optimizations", ["status": optimizerStatus, "optimizations": durationStatistics(shard.figures.optimizations, level: level)]),
            ("async_scorer", false),
            ("update_queue", .object(queue)),
        ])
        if level >= 4, !segments.isEmpty {
            out["segments"] = .array(segments.map { segmentTelemetry($0, config: config, schema: schema) })
        }
        return .object(out)
    }

    /// `SegmentTelemetry`: the segment's figures and the configuration it was built with.
    static func segmentTelemetry(_ segment: SegmentTelemetry, config: CollectionConfig, schema: [String: PayloadFieldSchema]) -> JSONValue {
        let indexed = segment.indexedVectors.values.reduce(0, +)
        let vectorData = JSONObject(segment.vectors.keys.sorted().map { name in
            (name, ["num_vectors": .int(Int64(segment.vectors[name]!)), "num_indexed_vectors": .int(Int64(segment.indexedVectors[name] ?? 0)),
                    "num_deleted_vectors": .int(Int64(segment.deletedPoints))] as JSONValue)
        })
        let indexSchema = JSONObject(segment.payloadIndexes.keys.sorted().compactMap { field -> (String, JSONValue)? in
            guard let fieldSchema = schema[field] else { return nil }
            return (field, ["data_type": .string(fieldSchema.type.rawValue), "points": .int(Int64(segment.payloadIndexes[field]!.points))])
        })
        let hnsw = (try? JSONValueEncoder().encode(config.hnswConfig)) ?? .object(JSONObject())
        let vectorConfig = JSONObject(config.params.vectors.all.sorted { $0.key < $1.key }.compactMap { name, params -> (String, JSONValue)? in
            guard segment.vectors[name] != nil else { return nil }
            let hasGraph = (segment.indexedVectors[name] ?? 0) > 0
            var data = JSONObject([
                ("size", .int(Int64(params.size))),
                ("distance", (try? JSONValueEncoder().encode(params.distance)) ?? .null),
                ("storage_type", !segment.mappedVectors.contains(name) ? "Memory" : segment.isAppendable ? "ChunkedMmap" : "Mmap"),
                ("index", hasGraph ? ["type": "hnsw", "options": hnsw] : ["type": "plain", "options": .object(JSONObject())]),
            ])
            if let datatype = params.datatype { data["datatype"] = (try? JSONValueEncoder().encode(datatype)) ?? .null }
            return (name, .object(data))
        })
        return [
            "info": [
                "uuid": .string(segment.uuid),
                "segment_type": segment.isAppendable || indexed == 0 ? "plain" : "indexed",
                "num_vectors": .int(Int64(segment.vectors.values.reduce(0, +))),
                "num_points": .int(Int64(segment.points)),
                "num_indexed_vectors": .int(Int64(indexed)),
                "num_deleted_vectors": .int(Int64(segment.deletedPoints * max(segment.vectors.count, 1))),
                "vectors_size_bytes": .int(Int64(segment.vectorBytes)),
                "payloads_size_bytes": .int(Int64(segment.payloadBytes)),
                "ram_usage_bytes": .int(Int64(segment.ramBytes)),
                "disk_usage_bytes": .int(Int64(segment.diskBytes)),
                "is_appendable": .bool(segment.isAppendable),
                "index_schema": .object(indexSchema),
                "vector_data": .object(vectorData),
            ],
            "config": [
                "vector_data": .object(vectorConfig),
                "payload_storage_type": ["type": segment.mappedPayloads ? "mmap" : "in_ram_mmap"],
            ],
            "vector_index_searches": [],
            "payload_field_indices": .array(segment.payloadIndexes.keys.sorted().map { field in
                let counts = segment.payloadIndexes[field]!
                return ["field_name": .string(field), "index_type": .string(schema[field]?.type.rawValue ?? "unknown"),
                        "points_values_count": .int(Int64(counts.values)), "points_count": .int(Int64(counts.points))]
            }),
        ]
    }

    /// `OperationDurationStatistics`: the count, the failures when there were any, the average;
    /// from level 1 the extremes, the total and the time of the last one.
    public static func durationStatistics(_ times: OperationTimes, level: Int) -> JSONValue {
        var out = JSONObject([("count", .int(Int64(times.count)))])
        if times.failures > 0 { out["fail_count"] = .int(Int64(times.failures)) }
        if times.count > 0 { out["avg_duration_micros"] = .double(Double(times.totalMicros) / Double(times.count)) }
        if level >= 1 {
            if let min = times.minMicros, let max = times.maxMicros {
                out["min_duration_micros"] = .double(Double(min))
                out["max_duration_micros"] = .double(Double(max))
            }
            out["total_duration_micros"] = .int(times.totalMicros)
            if let last = times.last { out["last_responded"] = .string(last.rfc3339) }
        }
        return .object(out)
    }

    /// `RunningEnvironmentTelemetry`, read once.
    static let systemTelemetry: JSONValue = {
        var out = JSONObject()
        let release = (try? String(contentsOfFile: "/etc/os-release", encoding: .utf8)) ?? ""
        func field(_ name: String) -> String? {
            for line in release.split(separator: "\n") where line.hasPrefix(name + "=") {
                return String(line.dropFirst(name.count + 1)).trimmingCharacters(in: CharacterSet(charactersIn: "\""))
            }
            return nil
        }
        out["distribution"] = field("ID").map(JSONValue.string) ?? .null
        out["distribution_version"] = field("VERSION_ID").map(JSONValue.string) ?? .null
        out["is_docker"] = .bool(FileManager.default.fileExists(atPath: "/.dockerenv"))
        out["cores"] = .int(Int64(ProcessInfo.processInfo.activeProcessorCount))
        out["ram_size"] = .unsigned(ProcessInfo.processInfo.physicalMemory / 1024)
        out["cpu_flags"] = .string(kernelCPUFlags)
        out["cpu_endian"] = 1.littleEndian == 1 ? "little" : "big"
        return .object(out)
    }()
}
