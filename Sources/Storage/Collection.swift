import CVectorKernels
import Foundation
import QuiverJSON
public import DiskIO
public import QuiverModel
public import Shard

/// What `GET /collections/{c}/optimizations` reports.
public struct OptimizationsReport: Sendable {
    public var running: [OptimizationRecord] = []
    public var queued: [PlannedOptimization] = []
    public var completed: [OptimizationRecord] = []
    /// Segments no optimization runs on or is planned for.
    public var idle: [SegmentSummary] = []
}

/// One collection on this node: its configuration, where its shards are (``ShardInfo``), and the
/// shards this peer holds. On a single node (`network` nil) every shard is local.
public actor Collection {
    public nonisolated let name: String
    /// Directory `storage/collections/<name>`; local shard `i` lives in `<path>/<i>`.
    public nonisolated let path: String
    public private(set) var config: CollectionConfig
    /// Every shard of the collection, sorted by id.
    public private(set) var layout: [ShardInfo]
    /// How points are routed to the shards (in `routing.json`; changed with the layout).
    public private(set) var routing: ShardRouting
    /// The shards held here, by id.
    var shards: [UInt32: LocalShard]
    /// This peer's id (reported by `GET …/cluster`).
    public nonisolated let peerID: UInt64
    let network: (any ShardNetwork)?
    /// Where replicas that failed a write are reported (consensus marks them `Dead`).
    let failures: ReplicaFailureRelay
    /// Where writes on their way to replicas are registered (see ``RoutedWrites``).
    let routedWrites: RoutedWrites
    /// Per shard, the peers this peer stopped sending updates to after a failed write, until
    /// consensus changes their state (Qdrant's locally disabled peers), with when they were last
    /// reported and the delay before the next report.
    var disabled: [UInt32: [UInt64: DisabledReplica]] = [:]
    /// Per shard, the clocks this peer sends replicated writes under.
    var clockSets: [UInt32: ClockSet] = [:]
    /// Per shard, the lock that orders `medium` and `strong` writes this peer leads.
    var orderingLocks: [UInt32: OrderingLock] = [:]
    /// The catalogue's transfers of this collection's shards.
    public internal(set) var transfers: [ShardTransfer] = []
    /// Per local shard, the transfer this peer is the source of, while it runs.
    var outgoing: [UInt32: TransferRelay] = [:]
    /// Strict mode's rate limits for the requests this peer receives, per kind and shard.
    var rateLimiters: [RateLimiter.Kind: [UInt32: RateLimiter]] = [:]
    let disk: any Disk
    /// The storage's free-space guard: writes that add data are refused while the disk is nearly
    /// full (nil: not guarded, as in tests).
    let space: SpaceGuard?
    /// The node's quotas (`/quotas`): checked with the free space, on the same writes.
    let quota: NodeQuota?
    /// Payload indexes by field, in `payload_index.json`.
    public private(set) var payloadSchema: [String: PayloadFieldSchema] = [:]
    /// How long opening (or creating) the collection took.
    let initTimeMs: UInt64

    init(name: String, path: String, config: CollectionConfig, layout: [ShardInfo], routing: ShardRouting = .legacy,
         shards: [UInt32: LocalShard], peerID: UInt64, network: (any ShardNetwork)?, failures: ReplicaFailureRelay = ReplicaFailureRelay(), routedWrites: RoutedWrites = RoutedWrites(),
         disk: any Disk, space: SpaceGuard? = nil, quota: NodeQuota? = nil, payloadSchema: [String: PayloadFieldSchema],
         initTimeMs: UInt64 = 0) {
        self.space = space
        self.quota = quota
        self.failures = failures
        self.routedWrites = routedWrites
        self.payloadSchema = payloadSchema
        self.initTimeMs = initTimeMs
        self.name = name
        self.path = path
        self.config = config
        self.layout = layout.sorted { $0.id < $1.id }
        self.routing = routing
        self.shards = shards
        self.peerID = peerID
        self.network = network
        self.disk = disk
    }

    static let layoutFile = "shards.json"
    static let routingFile = "routing.json"

    /// Opens (creating when missing) the local shards of a collection whose directory exists. The
    /// layout is `layout` when given (the catalogue's), else `shards.json`, else (collections from
    /// before sharding) `shard_number` shards on this peer.
    static func open(name: String, path: String, config: CollectionConfig, layout given: [ShardInfo]?, routing givenRouting: ShardRouting? = nil,
                     peerID: UInt64, network: (any ShardNetwork)?, failures: ReplicaFailureRelay = ReplicaFailureRelay(),
                     routedWrites: RoutedWrites = RoutedWrites(), disk: any Disk, space: SpaceGuard? = nil,
                     quota: NodeQuota? = nil) throws(StorageError) -> Collection {
        let started = ContinuousClock.now
        var schema: [String: PayloadFieldSchema] = [:]
        let schemaPath = joinPath(path, Self.payloadIndexFile)
        if disk.fileExists(schemaPath) {
            do {
                let stored = try JSONParser.parse(try disk.readFile(schemaPath)).objectValue ?? JSONObject()
                for (field, value) in stored { schema[field] = try PointsJSON.fieldSchema(value, field) }
            } catch {
                throw .serviceError("cannot read \(schemaPath): \(error)")
            }
        }
        var layout: [ShardInfo]
        let layoutPath = joinPath(path, Self.layoutFile)
        if let given {
            layout = given
        } else if disk.fileExists(layoutPath) {
            do {
                layout = try JSONValueDecoder().decode([ShardInfo].self, from: try disk.readFile(layoutPath))
            } catch {
                throw .serviceError("cannot read \(layoutPath): \(error)")
            }
        } else {
            layout = ShardPlacement.initial(config, peers: [peerID])
        }
        // A single node holds every shard, whatever peer ids an earlier life recorded; the file
        // keeps them (its peer id changes at every start, and a start must not need free space).
        let recorded = layout
        if network == nil {
            layout = layout.map { ShardInfo(id: $0.id, key: $0.key, peers: [peerID]) }
        }
        let routing: ShardRouting
        if let givenRouting { routing = givenRouting } else { routing = try Self.readRouting(path, disk: disk) }
        let local = try openShards(layout.filter { $0.peers.contains(peerID) }.map(\.id), name: name, path: path,
                                   config: config, schema: schema, disk: disk, space: space)
        try writeLayout(network == nil ? recorded : layout, routing: routing, name: name, path: path, disk: disk)
        let elapsed = ContinuousClock.now - started
        return Collection(name: name, path: path, config: config, layout: layout, routing: routing, shards: local, peerID: peerID,
                          network: network, failures: failures, routedWrites: routedWrites, disk: disk, space: space, quota: quota, payloadSchema: schema,
                          initTimeMs: UInt64(elapsed.wholeMilliseconds))
    }

    private static func openShards(_ ids: [UInt32], name: String, path: String, config: CollectionConfig,
                                   schema: [String: PayloadFieldSchema], disk: any Disk, space: SpaceGuard?) throws(StorageError) -> [UInt32: LocalShard] {
        var shards: [UInt32: LocalShard] = [:]
        for id in ids {
            do {
                shards[id] = try LocalShard(path: joinPath(path, String(id)), disk: disk, config: config, payloadSchema: schema, space: space)
            } catch {
                throw .writeFailed("cannot open shard \(id) of collection `\(name)`", error)
            }
        }
        return shards
    }

    /// `routing.json`, else (collections from before rings were recorded) the legacy routing.
    static func readRouting(_ path: String, disk: any Disk) throws(StorageError) -> ShardRouting {
        let file = joinPath(path, Self.routingFile)
        guard disk.fileExists(file) else { return .legacy }
        do {
            return try JSONValueDecoder().decode(ShardRouting.self, from: try disk.readFile(file))
        } catch {
            throw .serviceError("cannot read \(file): \(error)")
        }
    }

    private static func writeLayout(_ layout: [ShardInfo], routing: ShardRouting, name: String, path: String, disk: any Disk) throws(StorageError) {
        do {
            if routing != .legacy || disk.fileExists(joinPath(path, Self.routingFile)) {
                try disk.writeFileAtomically(joinPath(path, Self.routingFile), try JSONValueEncoder().encodeBytes(routing))
            }
            try disk.writeFileAtomically(joinPath(path, Self.layoutFile), try JSONValueEncoder().encodeBytes(layout))
        } catch {
            throw .writeFailed("cannot write the shard layout of `\(name)`", error)
        }
    }

    /// Moves to a new layout (from the catalogue): opens the local shards that are new here and
    /// closes and deletes the local shards that are gone (a dropped shard key or replica).
    func applyLayout(_ updated: [ShardInfo], routing newRouting: ShardRouting? = nil) async throws(StorageError) {
        let sorted = updated.sorted { $0.id < $1.id }
        let newRouting = newRouting ?? routing
        guard sorted != layout || newRouting != routing else { return }
        // Before the new stage is recorded: a restart in the middle cleans up again. A peer that
        // catches up past the clean-up (from a snapshot of the catalogue) cleans up all the same.
        let before = routing.resharding, after = newRouting.resharding
        let updated = ShardHolder(sorted, sharding: config.params.shardingMethod, routing: newRouting)
        if let stage = after?.stage, stage != before?.stage, stage == .cleaned || stage == .aborted {
            try await dropPointsNotOwned(updated.readRestrictions())
        } else if after == nil, before.map({ $0.stage != .cleaned && $0.stage != .aborted }) ?? Self.groupsResized(layout, sorted) {
            try await dropPointsNotOwned(updated.ownership())
        }
        let wanted = Set(sorted.filter { $0.peers.contains(peerID) }.map(\.id))
        let added = wanted.subtracting(shards.keys).sorted()
        let opened = try Self.openShards(added, name: name, path: path, config: config, schema: payloadSchema, disk: disk, space: space)
        // A replica's recovery point stays where it was when it left an active state; recorded
        // before the new states are, so no restart finds a replica that left without one.
        for shard in sorted where shard.peers.contains(peerID) {
            guard let local = shards[shard.id] ?? opened[shard.id] else { continue }
            do {
                if shard.state(of: peerID).isActive { try await local.thawRecoveryPoint() } else { try await local.freezeRecoveryPoint() }
            } catch {
                throw .serviceError("cannot record the recovery point of shard \(shard.id) of collection `\(name)`: \(error)")
            }
        }
        try Self.writeLayout(sorted, routing: newRouting, name: name, path: path, disk: disk)
        // A replica whose state consensus changed is no longer disabled here.
        for shard in sorted {
            guard let old = layout.first(where: { $0.id == shard.id }) else { continue }
            for peer in (disabled[shard.id] ?? [:]).keys where !shard.peers.contains(peer) || shard.state(of: peer) != old.state(of: peer) {
                disabled[shard.id]![peer] = nil
            }
        }
        disabled = disabled.filter { entry in sorted.contains { $0.id == entry.key } && !entry.value.isEmpty }
        layout = sorted
        routing = newRouting
        shards.merge(opened) { $1 }
        for id in Set(shards.keys).subtracting(wanted).sorted() {
            guard let dropped = shards.removeValue(forKey: id) else { continue }
            // No optimization of the dropped shard may write into its directory once it is gone.
            await dropped.close(waiting: false)
            try? disk.removeItem(joinPath(path, String(id)))
        }
    }

    /// Deletes, from each replica here of the shards reads reach in a resharded group, the points
    /// its shard does not own (copies of points that moved away, or that came in from an aborted
    /// scale-down): done when this peer applies the stage, so that when every peer has, no
    /// replica holds a point twice.
    private func dropPointsNotOwned(_ conditions: [UInt32: Condition]) async throws(StorageError) {
        for (id, condition) in conditions.sorted(by: { $0.key < $1.key }) {
            guard let shard = shards[id] else { continue }
            do {
                _ = try await shard.update(.delete([]), matching: Filter(mustNot: [condition]), wait: true)
            } catch {
                throw .serviceError("cannot delete the points shard \(id) of collection `\(name)` no longer owns: \(error)")
            }
        }
    }

    /// Whether a group of shards (one shard key's, or all) has another count in `updated`.
    static func groupsResized(_ current: [ShardInfo], _ updated: [ShardInfo]) -> Bool {
        let before = Dictionary(grouping: current, by: \.key).mapValues(\.count)
        return Dictionary(grouping: updated, by: \.key).mapValues(\.count).contains { key, count in before[key].map { $0 != count } ?? false }
    }

    /// Local shards in id order.
    var localShards: [(id: UInt32, shard: LocalShard)] {
        shards.keys.sorted().map { ($0, shards[$0]!) }
    }

    /// A configuration change (`PATCH`) also starts optimizations waiting since a restart, as in Qdrant.
    /// The shards' segments brought to the new configuration's vectors, then the configuration
    /// in force: a write naming a vector just added is accepted only once every local shard keeps
    /// it.
    func replaceConfig(_ config: CollectionConfig) async throws(StorageError) {
        var failure: StorageError?
        for (id, shard) in shards {
            do {
                try await shard.setVectors(config)
            } catch {
                failure = failure ?? .serviceError("shard \(id) of `\(name)` could not take the new vectors: \(error)")
            }
        }
        self.config = config
        rateLimiters = [:]
        for shard in shards.values { await shard.triggerOptimizers() }
        if let failure { throw failure }
    }

    static let payloadIndexFile = "payload_index.json"

    /// The filter as the shards run it: text conditions bound to the tokenizers of their fields'
    /// text indexes, after rejecting conditions a field's payload index cannot serve (a range on a
    /// field indexed as keyword, bool, uuid, geo or text; a geo condition on a field indexed as
    /// anything but geo; a phrase on a text index without `phrase_matching`).
    public func prepare(_ filter: Filter?) throws(StorageError) -> Filter? {
        guard let filter else { return nil }
        try check(filter)
        var analyzers: [String: TextAnalyzer] = [:]
        for (field, schema) in payloadSchema where schema.type == .text {
            analyzers[field] = try? TextAnalyzer(params: schema.params)
        }
        return filter.binding(analyzers)
    }

    private func check(_ filter: Filter) throws(StorageError) {
        for condition in (filter.must ?? []) + (filter.should ?? []) + (filter.mustNot ?? []) + (filter.minShould?.conditions ?? []) {
            switch condition {
            case .filter(let inner): try check(inner)
            case .field(let field):
                guard let schema = payloadSchema[field.key] else { continue }
                let type = schema.type
                if field.range != nil, ![.integer, .float, .datetime].contains(type) {
                    throw .badRequest("field `\(field.key)` has a `\(type.rawValue)` index, which cannot serve a range condition; a range needs an `integer`, `float` or `datetime` index")
                }
                if field.geoRadius != nil || field.geoBoundingBox != nil || field.geoPolygon != nil, type != .geo {
                    throw .badRequest("field `\(field.key)` has a `\(type.rawValue)` index, which cannot serve a geo condition; it needs a `geo` index")
                }
                if case .phrase? = field.match, type == .text, schema.params?["phrase_matching"] != .bool(true) {
                    throw .badRequest("field `\(field.key)` has a text index without `phrase_matching: true`, which a phrase condition needs")
                }
            default: continue
            }
        }
    }

    /// Makes `schema` the payload indexes (as the catalogue says), building new ones over the stored points.
    func setIndexes(_ schema: [String: PayloadFieldSchema]) async throws(StorageError) {
        let object = JSONObject(schema.keys.sorted().map { ($0, schema[$0]!.json) })
        do {
            try disk.writeFileAtomically(joinPath(path, Self.payloadIndexFile), JSONWriter.write(.object(object)))
        } catch {
            throw .serviceError("cannot write the payload indexes of `\(name)`: \(error)")
        }
        payloadSchema = schema
        for shard in shards.values { await shard.setPayloadSchema(schema) }
    }

    /// Status as Qdrant reports it: red after a failed optimization (or one waiting for disk space,
    /// or while writes are refused for want of it), yellow while one runs or is due, grey when one is due but optimizations have not been triggered since the restart (or
    /// are disabled), green otherwise.
    public func info() async -> CollectionInfo {
        var points = 0
        var indexedVectors = 0
        var segments = 0
        var state = OptimizerState()
        let thresholds = thresholds
        for shard in shards.values {
            points += await shard.pointCount
            segments += await shard.segmentCount
            state.merge(await OptimizerState(shard, thresholds))
        }
        // A node refusing writes for want of disk space says so here too (red, with the reason).
        if let refusal = space?.refusal, !shards.isEmpty { state.failure = StorageError.insufficientStorage(refusal).description }
        let failure = state.failure
        let status = state.status
        var schemaInfo: [String: JSONValue] = [:]
        for (field, schema) in payloadSchema {
            var indexed = 0
            for shard in shards.values { indexed += await shard.pointsWithValue(field) }
            schemaInfo[field] = schema.info(points: indexed)
        }
        // Every shard's, as in Qdrant, when some are held by other peers.
        if shards.count < layout.count, let total = try? await count() { points = total }
        // Every shard's too; this peer's own when the others do not answer.
        if shards.count < layout.count, let total = try? await indexedVectorCount() {
            indexedVectors = total
        } else {
            for shard in shards.values { indexedVectors += await shard.indexedVectorCount }
        }
        let queue = UpdateQueueInfo(deferredPoints: config.optimizerConfig.preventUnoptimized == true ? 0 : nil)
        return CollectionInfo(status: status, optimizerStatus: failure.map { .error($0) } ?? .ok, warnings: config.warnings,
                              indexedVectorsCount: UInt64(indexedVectors), pointsCount: UInt64(points), segmentsCount: UInt64(segments),
                              config: config, payloadSchema: schemaInfo,
                              updateQueue: queue)
    }

    /// One or more shards' optimizer activity, which decides the status ``info()`` reports.
    struct OptimizerState {
        var running = false, pending = false, waiting = false
        var failure: String?

        init() {}

        init(_ shard: LocalShard, _ thresholds: OptimizerThresholds) async {
            running = await shard.isOptimizing
            if await shard.plannedOptimization(thresholds) != nil {
                pending = true
                waiting = await !shard.optimizersTriggered || !thresholds.enabled
            }
            let postponed = await shard.optimizationPostponed
            failure = await shard.optimizerError ?? postponed
        }

        mutating func merge(_ other: OptimizerState) {
            running = running || other.running
            pending = pending || other.pending
            waiting = waiting || other.waiting
            failure = other.failure ?? failure
        }

        var status: CollectionStatus {
            if failure != nil { .red } else if running || (pending && !waiting) { .yellow } else if pending { .grey } else { .green }
        }
    }

    // MARK: Telemetry

    /// Every shard of the layout in id order, with this peer's replica's figures where it holds one
    /// (payload sizes only with `payloadSizes`: they read every payload).
    public func telemetry(payloadSizes: Bool = true) async -> CollectionTelemetry {
        let thresholds = thresholds
        var replicas: [CollectionTelemetry.Replica] = []
        for info in layout {
            var local: CollectionTelemetry.Local?
            if let shard = shards[info.id] {
                let state = await OptimizerState(shard, thresholds)
                local = .init(figures: await shard.telemetry(payloadSizes: payloadSizes), status: state.status, optimizerError: state.failure)
            }
            replicas.append(.init(info: info, local: local))
        }
        return CollectionTelemetry(name: name, peerID: peerID, initTimeMs: initTimeMs, config: config, payloadSchema: payloadSchema, shards: replicas)
    }

    // MARK: Optimization

    /// The optimizer configuration resolved to numbers, with Qdrant's defaults: 10,000 KB
    /// indexing threshold (0 disables indexing), 256,000 KB per indexing thread as the maximum
    /// segment size, and one segment per two CPUs (2 to 8) as the segment number.
    var thresholds: OptimizerThresholds {
        let optimizers = config.optimizerConfig
        let cpus = ProcessInfo.processInfo.activeProcessorCount
        let indexingThreads = config.hnswConfig.indexingThreads(cpus: cpus)
        let indexingKB = optimizers.indexingThresholdKB
        return OptimizerThresholds(
            deletedThreshold: optimizers.deletedThreshold,
            vacuumMinVectors: optimizers.vacuumMinVectorNumber,
            segmentNumber: optimizers.defaultSegmentNumber > 0 ? optimizers.defaultSegmentNumber : min(max(cpus / 2, 2), 8),
            maxSegmentBytes: (optimizers.maxSegmentSize ?? indexingThreads * 256_000) * 1024,
            indexingThresholdBytes: indexingKB == 0 ? Int.max : indexingKB * 1024,
            enabled: optimizers.maxOptimizationThreads != 0,
            storage: LocalShard.storage(for: config))
    }

    /// Runs the optimizations that are due, one at a time per shard, until none is left.
    public func optimize() async throws(StorageError) {
        for (index, shard) in localShards {
            do {
                while try await shard.optimize(thresholds) {}
            } catch .stopped {
                return  // the node is shutting down
            } catch {
                throw .serviceError("optimization of shard \(index) of collection `\(name)` failed: \(error)")
            }
        }
    }

    /// Running, planned, completed optimizations and idle segments, for `GET …/optimizations`.
    public func optimizations() async -> OptimizationsReport {
        var report = OptimizationsReport()
        let thresholds = thresholds
        for (_, shard) in localShards {
            let (running, completed) = await shard.optimizations
            report.running += running
            report.completed += completed
            var busy = Set(running.flatMap(\.segments).map(\.uuid))
            if let planned = await shard.plannedOptimization(thresholds) {
                report.queued.append(planned)
                busy.formUnion(planned.segments.map(\.uuid))
            }
            report.idle += await shard.segmentSummaries.filter { !busy.contains($0.uuid) }
        }
        report.completed.sort { $0.startedAt > $1.startedAt }
        return report
    }

    // MARK: Points

    /// Checks points' vectors against the vector config and normalises Cosine vectors. A dense
    /// vector given for a multivector becomes a multivector of one, as in Qdrant.
    func prepare(_ points: [PointStruct]) throws(StorageError) -> [PointStruct] {
        let params = config.params.vectors.all
        let sparseParams = config.params.sparseVectors ?? [:]
        func known(_ name: String) throws(StorageError) -> VectorParams {
            if sparseParams[name] != nil { throw .badInput("Conversion between sparse and regular vectors failed") }
            guard let vectorParams = params[name] else {
                throw .badInput(name.isEmpty
                    ? "Not existing vector name error: the collection has only named vectors (\(params.keys.sorted().joined(separator: ", "))); name the vector"
                    : "Not existing vector name error: \(name)")
            }
            return vectorParams
        }
        var result = points
        for i in result.indices {
            for name in result[i].sparse.keys where sparseParams[name] == nil {
                throw .badInput(params[name] != nil ? "Conversion between sparse and regular vectors failed" : "Not existing vector name error: \(name)")
            }
            for (name, vector) in result[i].vectors {
                let vectorParams = try known(name)
                let stored = try Self.stored(vector, name, vectorParams)
                if vectorParams.multivectorConfig != nil {
                    result[i].vectors[name] = nil
                    result[i].multi[name] = MultiVector(dimension: stored.count, flat: stored)
                } else {
                    result[i].vectors[name] = stored
                }
            }
            for (name, vector) in points[i].multi {
                let vectorParams = try known(name)
                guard vectorParams.multivectorConfig != nil else { throw .badInput("Conversion between multi and regular vectors failed") }
                var flat: [Float] = []
                flat.reserveCapacity(vector.flat.count)
                for row in vector.rows { flat += try Self.stored(row, name, vectorParams) }
                result[i].multi[name] = MultiVector(dimension: vector.dimension, flat: flat)
            }
        }
        return result
    }

    /// One dense vector (or row of a multivector) as stored: its dimension checked, normalised
    /// for Cosine, its values as the datatype keeps them (so what is read back is what is stored).
    static func stored(_ vector: [Float], _ name: String, _ params: VectorParams) throws(StorageError) -> [Float] {
        guard vector.count == Int(params.size) else {
            throw .badInput("Vector dimension error: expected dim: \(params.size), got \(vector.count)")
        }
        var stored = vector
        if params.distance == .cosine { quiver_normalize_f32(&stored, stored.count) }
        switch params.datatype {
        case .float16?:
            stored = stored.map { Float(Float16($0)) }
            if let index = stored.firstIndex(where: { !$0.isFinite }) {
                throw .badInput("Vector value \(vector[index]) of `\(name)` does not fit the float16 datatype (largest: 65504)")
            }
        case .uint8?: stored = stored.map { Float(UInt8(clamping: Int($0))) }
        case .float32?, .turbo4?, nil: break
        }
        return stored
    }

    /// The operation with its vectors checked and normalised.
    func prepare(_ operation: UpdateOperation) throws(StorageError) -> UpdateOperation {
        switch operation {
        case .upsert(let points): return .upsert(try prepare(points))
        case .updateVectors(let points): return .updateVectors(try prepare(points))
        case .deleteVectors(_, let names):
            let known = config.params.vectors.all
            let sparse = config.params.sparseVectors ?? [:]
            if let unknown = names.first(where: { known[$0] == nil && sparse[$0] == nil }) {
                throw .badInput("Not existing vector name error: \(unknown)")
            }
            return operation
        case .delete, .setPayload, .overwritePayload, .deletePayload, .clearPayload:
            return operation
        }
    }

    /// Writes every shard's changes to its segment files now (at shutdown).
    public func persist() async throws(StorageError) {
        var failure: StorageError?
        for (index, shard) in localShards {
            do {
                try await shard.persist()
            } catch {
                failure = failure ?? .writeFailed("persisting shard \(index) of collection `\(name)` failed", error)
            }
        }
        if let failure { throw failure }
    }

    /// Fsyncs `wait=false` writes and persists segments once `flush_interval_sec` has passed.
    public func flushIfDue() async throws(StorageError) {
        let interval = Duration.seconds(Int64(config.optimizerConfig.flushIntervalSec))
        // One shard that cannot write (a full disk) does not keep the others from flushing.
        var failure: StorageError?
        for (index, shard) in localShards {
            do {
                try await shard.flushIfDue(interval: interval)
            } catch {
                failure = failure ?? .writeFailed("flush of shard \(index) of collection `\(name)` failed", error)
            }
        }
        if let failure { throw failure }
    }
}
