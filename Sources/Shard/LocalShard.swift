public import DiskIO
import Foundation
import QuiverJSON
public import QuiverModel
public import WAL

public enum ShardError: Error, Sendable, Equatable, CustomStringConvertible {
    case wal(WALError)
    /// A WAL record that does not decode: written by something else, or damaged in a way the
    /// checksum did not catch.
    case badRecord(sequence: UInt64, reason: String)
    /// The operation names a point the shard does not hold; nothing was written.
    case pointNotFound(PointID)
    /// Reading or writing the segment files failed.
    case segment(DiskError)
    /// Files that contradict each other; the shard needs an operator.
    case inconsistent(String)
    /// The update's clock tag is not newer than what this replica has seen from that clock;
    /// nothing was written. `tick` is the replica's newest tick of the clock.
    case clockRejected(tick: UInt64)
    /// The shard was closed (its collection is being recovered or deleted); nothing was written.
    case closed
    /// An optimization was stopped before it finished (the node is shutting down); the segments it
    /// would have replaced are unchanged.
    case stopped

    /// A write that failed because the disk is full; nothing of it was kept.
    public var isOutOfSpace: Bool {
        switch self {
        case .wal(.io(let error)), .segment(let error): error.isOutOfSpace
        default: false
        }
    }

    public var description: String {
        switch self {
        case .wal(let error): error.description
        case .badRecord(let sequence, let reason): "WAL record \(sequence) cannot be read: \(reason)"
        case .pointNotFound(let id): "No point with id \(id) found"
        case .segment(let error): "segment files: \(error)"
        case .inconsistent(let reason): "shard at an inconsistent state: \(reason)"
        case .closed: "the shard is closed: its collection is being replaced or deleted"
        case .stopped: "the optimization was stopped before it finished"
        case .clockRejected(let tick): "update rejected: this replica has seen tick \(tick) of its clock"
        }
    }
}

/// One shard stored on this node: a WAL and the segments holding its points.
///
/// Write path: encode the operation, append it to the WAL, fsync when the caller waits, apply it to
/// the segments, acknowledge. An operation is therefore durable before any reader can see it under
/// `wait=true`. Opening the shard loads the segments listed in `segments.json` and replays the WAL
/// after the version recorded there (idempotently, by point version).
///
/// On disk: `wal/`, `segments/<uuid>/` per segment, and `segments.json` — `{"format":1,
/// "version":V,"segments":[{"uuid":…,"kind":"appendable"|"immutable"}]}` — written atomically
/// after the segments' own files. Segment directories it does not list (an optimization cut short)
/// are removed at start-up.
public actor LocalShard {
    public nonisolated let path: String
    let disk: any Disk
    let wal: WriteAheadLog
    var segments: SegmentSet
    /// Where segments keep vectors and payloads (from the collection's configuration).
    var storage: ImmutableSegment.Storage {
        didSet {
            let onDisk = storage.vectorsStoredOnDisk
            guard onDisk != segments.memory.onDisk || storage.payloadOnDisk != segments.memory.payloadsOnDisk else { return }
            segments.memory.onDisk = onDisk
            segments.memory.payloadsOnDisk = storage.payloadOnDisk
            for index in segments.entries.indices where segments.entries[index].appendable != nil {
                segments.entries[index].appendable!.memory = segments.memory
            }
        }
    }
    /// When the oldest not-yet-fsynced append happened (`wait=false` writes).
    var unsyncedSince: ContinuousClock.Instant?
    /// Live ids in ascending order, kept between writes so scroll pages cost a binary search.
    var sortedIDsCache: [PointID]?
    /// When the segments were last written to their files (or the shard opened).
    var lastPersist = ContinuousClock.now
    /// The WAL version `segments.json` records.
    var persistedVersion: UInt64
    /// The collection's payload indexes; every segment keeps one `FieldIndex` per field.
    var payloadSchema: [String: PayloadFieldSchema] = [:]
    var currentOptimization: OptimizationRecord?
    /// Set by ``close()``: no writes, persisting or optimizations any more.
    var closed = false
    var completedOptimizations: [OptimizationRecord] = []
    /// Since the shard was opened: points written by finished optimizations, and their timings.
    var optimizedPoints = 0
    var optimizationTimes = OperationTimes()
    /// The error of the last optimization, until one succeeds (collection status red).
    public internal(set) var optimizerError: String?
    /// Why the planned optimization waits: it would not fit on the disk (collection status red
    /// while it waits, as Qdrant reports it).
    public internal(set) var optimizationPostponed: String?
    /// The storage's free-space guard, asked before an optimization writes its segment.
    let space: SpaceGuard?
    /// Qdrant does not start optimizations after a restart until the first update (so a crashing
    /// optimization cannot become a crash loop); until then pending work shows as grey.
    public internal(set) var optimizersTriggered = false
    /// When the last update was applied (or the shard opened): a write segment below the indexing
    /// threshold is indexed once updates pause (`OptimizerThresholds.tailIdle`).
    var lastUpdate = ContinuousClock.now
    /// The write segment planned for indexing below the threshold, and since when.
    var tailDue: (uuid: String, since: ContinuousClock.Instant)?
    /// When a tail merge last rewrote a segment past `tailMergeRatio` (see `plannedTail`).
    var lastOversizedTail: ContinuousClock.Instant?
    /// The newest tick seen from each sender's clock: in the WAL records, and in
    /// `newest_clocks.json` for records the WAL no longer holds.
    public internal(set) var newestClocks = ClockMap()
    var clocksChanged = false
    var clocksPath: String { joinPath(path, "newest_clocks.json") }
    /// The clocks as of when this replica was last whole (`recovery_clocks.json`): taken when it
    /// leaves an active state, dropped when it is active again; empty for a replica emptied for
    /// a transfer. See ``recoveryPoint``.
    var recoveryClocks: ClockMap?
    var recoveryClocksPath: String { joinPath(path, "recovery_clocks.json") }
    /// The oldest WAL record each running transfer (by the index it started at) still has to
    /// read: truncation keeps them.
    var walHolds: [UInt64: UInt64] = [:]

    var segmentsDirectory: String { joinPath(path, "segments") }
    var listPath: String { joinPath(path, "segments.json") }

    struct SegmentList: Codable {
        struct Item: Codable {
            var uuid: String
            var kind: String
        }
        var format: Int
        var version: UInt64
        var segments: [Item]
    }

    /// Opens the shard: loads the listed segments, then replays the WAL operations after them.
    public init(path: String, disk: any Disk, config: CollectionConfig, payloadSchema: [String: PayloadFieldSchema] = [:],
                space: SpaceGuard? = nil) throws(ShardError) {
        self.path = path
        self.space = space
        self.payloadSchema = payloadSchema
        self.disk = disk
        storage = Self.storage(for: config)
        var set = SegmentSet(names: VectorNames(config))
        set.memory = SegmentMemory(disk: disk, directory: path, onDisk: storage.vectorsStoredOnDisk, payloadsOnDisk: storage.payloadOnDisk)
        let version: UInt64
        do {
            version = try Self.loadSegments(path: path, disk: disk, storage: storage, into: &set)
        } catch {
            throw .segment(error)
        }
        set.removeDuplicates()
        do {
            // Vectors removed from the collection while files of them remained are dropped now.
            for i in set.entries.indices { try set.entries[i].setVectors(set.names, disk: disk) }
        } catch {
            throw .segment(error)
        }
        persistedVersion = version
        let walConfig = config.walConfig
        do {
            wal = try WriteAheadLog(
                directory: joinPath(path, "wal"), disk: disk,
                options: .init(segmentCapacityBytes: walConfig.walCapacityMb * 1024 * 1024,
                               segmentsAhead: walConfig.walSegmentsAhead, retainClosed: walConfig.walRetainClosed),
                startSequence: version + 1
            )
        } catch {
            throw .wal(error)
        }
        // The WAL must hold every operation after the persisted version, or sequence numbers would repeat.
        guard wal.lastSequence >= version, wal.firstSequence <= version + 1 else {
            throw .inconsistent("the segments are persisted up to operation \(version), but the WAL holds \(wal.firstSequence)...\(wal.lastSequence)")
        }
        var clocks = try Self.readClocks(joinPath(path, "newest_clocks.json"), disk: disk) ?? ClockMap()
        try Self.replay(wal, from: version + 1, into: &set, clocks: &clocks)
        newestClocks = clocks
        recoveryClocks = try Self.readClocks(joinPath(path, "recovery_clocks.json"), disk: disk)
        set.payloadSchema = payloadSchema
        for index in set.entries.indices {
            set.entries[index].applySchema(payloadSchema, disk: disk)
        }
        segments = set
    }

    /// Where immutable segments keep their data, and the vector indexes they get: one HNSW graph
    /// per vector, with the vector's `hnsw_config` over the collection's, unless indexing is off
    /// (`indexing_threshold: 0`). `payload_m` defaults to `m`, as in Qdrant. Quantized codes go
    /// with the graph (the vector's `quantization_config` over the collection's).
    public static func storage(for config: CollectionConfig) -> ImmutableSegment.Storage {
        var specs: [String: VectorIndexSpec] = [:]
        if config.optimizerConfig.indexingThresholdKB != 0 {
            for (name, params) in config.params.vectors.all {
                let hnsw = config.hnswConfig.applying(params.hnswConfig)
                let quantization = VectorIndexSpec.method(params.quantizationConfig ?? config.quantizationConfig)
                specs[name] = VectorIndexSpec(m: hnsw.m, efConstruct: hnsw.efConstruct, payloadM: hnsw.payloadM ?? hnsw.m,
                                              onDisk: hnsw.onDisk ?? false, distance: params.distance,
                                              threads: hnsw.indexingThreads(cpus: ProcessInfo.processInfo.activeProcessorCount),
                                              blockMinimum: hnsw.fullScanPoints(dimension: Int(params.size)),
                                              quantization: quantization?.0, quantizationInRAM: quantization?.inRAM ?? false)
            }
        }
        let sparse = (config.params.sparseVectors ?? [:]).mapValues { SparseStorage(onDisk: $0.index?.onDisk ?? false, datatype: $0.index?.datatype) }
        return ImmutableSegment.Storage(vectorsOnDisk: config.params.vectors.all.mapValues { $0.onDisk ?? false },
                                        payloadOnDisk: config.params.onDiskPayload, vectorIndexes: specs, sparse: sparse)
    }

    /// Loads the segments `segments.json` lists into `set` and returns its version (0 when the
    /// shard is new); removes segment directories it does not list.
    static func loadSegments(path: String, disk: any Disk, storage: ImmutableSegment.Storage,
                             into set: inout SegmentSet) throws(DiskError) -> UInt64 {
        let directory = joinPath(path, "segments")
        let listPath = joinPath(path, "segments.json")
        var list = SegmentList(format: 1, version: 0, segments: [])
        if disk.fileExists(listPath) {
            let bytes = try disk.readFile(listPath)
            guard let decoded = try? JSONValueDecoder().decode(SegmentList.self, from: bytes), decoded.format == 1 else {
                throw DiskError(operation: "read segment list", path: listPath, errno: 0, reason: "damaged or of an unknown format")
            }
            list = decoded
        }
        for item in list.segments {
            let segmentPath = joinPath(directory, item.uuid)
            switch item.kind {
            case "immutable":
                let segment = try ImmutableSegment.load(directory: segmentPath, disk: disk, dimensions: set.dimensions,
                                                        datatypes: set.datatypes, storage: storage)
                set.entries.append(SegmentEntry(uuid: item.uuid, immutable: segment))
            default:
                let files = SegmentFiles(directory: segmentPath, disk: disk)
                guard let (segment, _) = try files.load(dimensions: set.dimensions, datatypes: set.datatypes, memory: set.memory) else {
                    throw DiskError(operation: "load segment", path: segmentPath, errno: 0, reason: "listed in segments.json but has no manifest")
                }
                set.entries.append(SegmentEntry(uuid: item.uuid, appendable: segment, listed: true))
            }
        }
        if disk.isDirectory(directory) {
            let listed = Set(list.segments.map(\.uuid))
            for name in try disk.listDirectory(directory) where !listed.contains(name) {
                try disk.removeItem(joinPath(directory, name))
            }
        }
        return list.version
    }

    /// Applies the WAL's records from `start` on to `segments`; every record's clock tag, older
    /// ones still in the WAL too, advances `clocks`.
    static func replay(_ wal: WriteAheadLog, from start: UInt64, into segments: inout SegmentSet, clocks: inout ClockMap) throws(ShardError) {
        guard min(start, wal.firstSequence) <= wal.lastSequence else { return }
        var failure: ShardError?
        // Moved out rather than copied, so the segments' columns stay uniquely held and change in
        // place (a failure ends the shard's opening anyway).
        var replayed = segments
        segments = SegmentSet(names: segments.names)
        var replayedClocks = clocks
        do {
            try wal.forEachRecord(from: min(start, wal.firstSequence)) { record in
                switch Result(catching: { () throws(OperationCodec.DecodeError) in try OperationCodec.decodeRecord(record.payload) }) {
                case .success(let (operation, clock)):
                    if record.sequence >= start { replayed.apply(operation, version: record.sequence) }
                    if var clock { _ = replayedClocks.advance(&clock) }
                    return true
                case .failure(let error):
                    failure = .badRecord(sequence: record.sequence, reason: error.reason)
                    return false
                }
            }
        } catch {
            throw .wal(error)
        }
        if let failure { throw failure }
        segments = replayed
        clocks = replayedClocks
    }

    /// Throws `clockRejected` with the replica's tick unless `clock` is newer than what this
    /// replica has seen from its sender's clock (or the same send again, or forced). Changes nothing.
    public func check(_ clock: ClockTag?) throws(ShardError) {
        guard !closed else { throw .closed }
        guard var tag = clock else { return }
        var probe = newestClocks
        guard probe.advance(&tag) else { throw .clockRejected(tick: tag.tick) }
    }

    /// Moves the sender's clock to `clock`, once its operation is in the WAL (or had nothing to write).
    func advance(_ clock: ClockTag?) {
        guard var tag = clock else { return }
        _ = newestClocks.advance(&tag)
        clocksChanged = true
    }

    /// Applies `operation`; returns its sequence number (the `operation_id`). With `wait`, the WAL
    /// is fsynced before this returns. A replicated update carries its sender's `clock`: one
    /// older than what this replica has seen is rejected before anything is written.
    public func update(_ operation: UpdateOperation, clock: ClockTag? = nil, wait: Bool) throws(ShardError) -> UInt64 {
        try check(clock)
        return try append(operation, clock: clock, wait: wait)
    }

    private func append(_ operation: UpdateOperation, clock: ClockTag?, wait: Bool) throws(ShardError) -> UInt64 {
        var operation = operation
        if operation.requiresExistingPoints, let missing = segments.firstMissing(operation.ids) {
            // A forced update (a transfer's source forwarding to its target) goes to the points
            // the target has; the others come later, with the update applied.
            guard clock?.force == true else { throw .pointNotFound(missing) }
            operation = operation.restricted { self.segments.find($0) != nil }
        }
        let sequence: UInt64
        do {
            sequence = try wal.append(OperationCodec.encode(operation, clock: clock))
            advance(clock)
            if wait {
                try wal.sync()
                unsyncedSince = nil
            } else if unsyncedSince == nil {
                unsyncedSince = .now
            }
        } catch {
            throw .wal(error)
        }
        segments.apply(operation, version: sequence)
        sortedIDsCache = nil
        optimizersTriggered = true
        lastUpdate = .now
        return sequence
    }

    /// Applies `operation` to the points that match `filter` now (the shard looks them up and logs
    /// the operation with their ids, so replay does not depend on the filter). Returns the sequence
    /// number, or the last one when no point matches and nothing is written.
    public func update(_ operation: UpdateOperation, matching filter: Filter, clock: ClockTag? = nil,
                       wait: Bool) throws(ShardError) -> UInt64 {
        try check(clock)
        let ids = matchingIDs(filter)
        guard !ids.isEmpty else {
            advance(clock)
            return wal.lastSequence
        }
        return try append(operation.selecting(ids), clock: clock, wait: wait)
    }

    /// Applies an upsert or vector update to the points `condition` admits, decided against the
    /// points as they are now; only those are logged. Returns the sequence number, or the last one
    /// when no point is admitted and nothing is written.
    public func update(_ operation: UpdateOperation, condition: UpdateCondition, clock: ClockTag? = nil,
                       wait: Bool) throws(ShardError) -> UInt64 {
        try check(clock)
        let admitted = operation.restricted { id in
            let location = segments.find(id)
            return condition.admits(exists: location != nil) {
                guard let filter = condition.filter, let (segment, offset) = location else { return true }
                return segments.entries[segment].matches(filter, at: offset)
            }
        }
        guard !admitted.ids.isEmpty else {
            advance(clock)
            return wal.lastSequence
        }
        return try append(admitted, clock: clock, wait: wait)
    }

    /// Stops the shard for good before its directory is moved away or removed: from now on it
    /// takes no writes and writes no files, and a running optimization is not swapped in. With
    /// `waiting`, this returns only once that optimization is over (its files written); without,
    /// at once. Reads still answer from memory.
    public func close(waiting: Bool = true) async {
        closed = true
        while waiting && currentOptimization != nil {
            try? await Task.sleep(for: .milliseconds(10))
        }
    }

    /// Every `interval`: fsyncs `wait=false` writes, writes the segments' changes to their files,
    /// and drops the WAL segments those files now cover.
    public func flushIfDue(interval: Duration, now: ContinuousClock.Instant = .now) throws(ShardError) {
        if let since = unsyncedSince, now - since >= interval {
            do {
                try wal.sync()
            } catch {
                throw .wal(error)
            }
            unsyncedSince = nil
        }
        if now - lastPersist >= interval {
            try persist()
            lastPersist = now
        }
    }

    /// Writes the segments' changes, then `segments.json` at the WAL's last version, then truncates
    /// the WAL before it. Only fsynced operations are persisted, so the files never get ahead of
    /// the WAL.
    public func persist() throws(ShardError) {
        guard !closed else { return }
        guard segments.entries.contains(where: \.hasChanges) else {
            try persistClocks()
            return
        }
        do {
            try wal.sync()
        } catch {
            throw .wal(error)
        }
        unsyncedSince = nil
        let version = wal.lastSequence
        // The clocks first: once `segments.json` says `version`, start-up replays only what follows.
        try persistClocks()
        // A moved point must be stored, in a segment start-up will load, before its old copy is
        // stored as deleted. Moves go from immutable segments, or from an older appendable one, to
        // the newest appendable one (`SegmentSet.writeSegment`). So: appendable segments newest
        // first, each listed in `segments.json` before an older one is written, then the rest.
        let appendable = segments.entries.indices.filter { segments.entries[$0].isAppendable }.reversed()
        let immutable = segments.entries.indices.filter { !segments.entries[$0].isAppendable }
        do {
            var unlisted = false
            for index in appendable where segments.entries[index].hasChanges {
                if unlisted { try writeSegmentList(version: persistedVersion) }
                let entry = segments.entries[index]
                try SegmentFiles(directory: joinPath(segmentsDirectory, entry.uuid), disk: disk)
                    .flush(entry.appendable!, version: version, uuid: entry.uuid)
                segments.entries[index].appendable!.clearChanges()
                unlisted = !entry.listed
                segments.entries[index].listed = true
            }
            for index in immutable where segments.entries[index].hasChanges {
                if unlisted { try writeSegmentList(version: persistedVersion) }
                unlisted = false
                try segments.entries[index].immutable!.flush(disk: disk)
                segments.entries[index].immutable!.clearChanges()
            }
            try writeSegmentList(version: version)
        } catch {
            throw .segment(error)
        }
        do {
            try wal.truncate(before: min(version + 1, walHolds.values.min() ?? .max))
        } catch {
            throw .wal(error)
        }
    }

    /// Writes `newest_clocks.json` when a clock moved since it was last written.
    func persistClocks() throws(ShardError) {
        guard clocksChanged else { return }
        try writeClocks(newestClocks, to: clocksPath)
        clocksChanged = false
    }

    /// Writes a clock map to `path`, atomically.
    func writeClocks(_ clocks: ClockMap, to path: String) throws(ShardError) {
        do {
            try disk.writeFileAtomically(path, try JSONValueEncoder().encodeBytes(clocks))
        } catch let error as DiskError {
            throw .segment(error)
        } catch {
            preconditionFailure("a clock map always encodes: \(error)")
        }
    }

    /// The clock map at `path`, nil when there is none.
    static func readClocks(_ path: String, disk: any Disk) throws(ShardError) -> ClockMap? {
        guard disk.fileExists(path) else { return nil }
        do {
            return try JSONValueDecoder().decode(ClockMap.self, from: try disk.readFile(path))
        } catch {
            throw .inconsistent("\(path) cannot be read: \(error)")
        }
    }

    /// Records which segments make up the shard and the WAL version they contain.
    func writeSegmentList(version: UInt64) throws(DiskError) {
        let items = segments.entries.filter(\.listed).map {
            SegmentList.Item(uuid: $0.uuid, kind: $0.isAppendable ? "appendable" : "immutable")
        }
        let encoded: [UInt8]
        do {
            encoded = try JSONValueEncoder().encodeBytes(SegmentList(format: 1, version: version, segments: items))
        } catch {
            preconditionFailure("a segment list always encodes: \(error)")
        }
        try disk.writeFileAtomically(listPath, encoded)
        persistedVersion = version
    }

    // MARK: Reading

    public var pointCount: Int { segments.liveCount }

    /// Live points matching `filter`, in no particular order.
    public func matchingIDs(_ filter: Filter) -> [PointID] {
        var result: [PointID] = []
        for entry in segments.entries {
            let data = entry.data
            entry.forEachCandidate(filter) { offset in
                if entry.matches(filter, at: offset) { result.append(data.id(at: offset)) }
            }
        }
        return result
    }

    /// Builds and drops payload indexes so that immutable segments have exactly `schema`'s.
    public func setPayloadSchema(_ schema: [String: PayloadFieldSchema]) {
        payloadSchema = schema
        segments.payloadSchema = schema
        for index in segments.entries.indices { segments.entries[index].applySchema(schema, disk: disk) }
    }

    /// Live points with a value of `key` (`payload_schema`'s `points`).
    public func pointsWithValue(_ key: String) -> Int {
        var total = 0
        for entry in segments.entries {
            let data = entry.data
            if let index = entry.appendable?.indexes[key] ?? entry.immutable?.indexes[key] {
                total += index.withValue.count { data.isLive(at: Int($0)) }
                continue
            }
            for offset in 0..<data.totalCount where data.isLive(at: offset) {
                let root = JSONValue.object(AppendableSegment.decode(data.payloadBytes(at: offset)) ?? JSONObject())
                if !PayloadPath.values(key, in: root).allSatisfy(\.isEmptyValue) { total += 1 }
            }
        }
        return total
    }

    public func count(filter: Filter?) -> Int {
        guard let filter else { return segments.liveCount }
        return matchingIDs(filter).count
    }

    public func firstMissing(_ ids: [PointID]) -> PointID? { segments.firstMissing(ids) }

    /// Those of `ids` this shard does not hold.
    public func missing(_ ids: [PointID]) -> Set<PointID> { Set(ids.filter { segments.find($0) == nil }) }

    public func retrieve(_ ids: [PointID], withPayload: WithPayload, withVector: WithVector) -> [PointRecord] {
        ids.compactMap { id in
            segments.find(id).map { segments.entries[$0.segment].record(at: $0.offset, withPayload: withPayload, withVector: withVector) }
        }
    }

    /// Up to `limit` points with id ≥ `offset` that match `filter`, in id order.
    public func scroll(from offset: PointID?, limit: Int, filter: Filter? = nil, withPayload: WithPayload, withVector: WithVector) -> [PointRecord] {
        let sorted = sortedIDsCache ?? segments.entries.flatMap { $0.liveIDs() }.sorted()
        sortedIDsCache = sorted
        var start = 0
        if let offset {
            var high = sorted.count
            while start < high {
                let mid = (start + high) / 2
                if sorted[mid] < offset { start = mid + 1 } else { high = mid }
            }
        }
        guard let filter else {
            return retrieve(Array(sorted[start...].prefix(limit)), withPayload: withPayload, withVector: withVector)
        }
        if segments.entries.contains(where: { $0.indexes(filter) }) {
            // An index narrows the points down: collect the matching ones, then page them.
            let page = matchingIDs(filter).filter { id in offset.map { id >= $0 } ?? true }.sorted().prefix(limit)
            return retrieve(Array(page), withPayload: withPayload, withVector: withVector)
        }
        var page: [PointRecord] = []
        for id in sorted[start...] where page.count < limit {
            guard let (segment, offset) = segments.find(id), segments.entries[segment].matches(filter, at: offset) else { continue }
            page.append(segments.entries[segment].record(at: offset, withPayload: withPayload, withVector: withVector))
        }
        return page
    }
}
