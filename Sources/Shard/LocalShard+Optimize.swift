import DiskIO
import Foundation
import QuiverModel
import VectorIndex
import WAL

/// One optimization, as `GET /collections/{c}/optimizations` reports it.
public struct OptimizationRecord: Sendable, Equatable {
    public enum Status: Sendable, Equatable {
        case optimizing, done
        case failed(String)
    }

    public let uuid: String
    public let optimizer: String
    public var status: Status
    /// The segments being replaced, with their live points when the optimization started.
    public let segments: [SegmentSummary]
    public let startedAt: Date
    public var finishedAt: Date?
}

public struct SegmentSummary: Sendable, Equatable {
    public let uuid: String
    public let points: Int
}

/// The collection's optimizer settings, resolved to numbers (defaults as Qdrant chooses them).
public struct OptimizerThresholds: Sendable {
    /// `deleted_threshold`, `vacuum_min_vector_number`.
    public var deletedThreshold: Double
    public var vacuumMinVectors: Int
    /// `default_segment_number` (0 resolved to the CPU-based default).
    public var segmentNumber: Int
    /// `max_segment_size` and `indexing_threshold` in bytes of vector storage; indexing
    /// disabled (`indexing_threshold: 0`) is `Int.max`.
    public var maxSegmentBytes: Int
    public var indexingThresholdBytes: Int
    /// `max_optimization_threads: 0` turns optimizations off.
    public var enabled: Bool
    public var storage: ImmutableSegment.Storage
    /// A write segment smaller than the indexing threshold, yet due for indexing (see
    /// `tailBytes`), is indexed once the shard has had no update for `tailIdle`, or after
    /// `tailPatience` of steady updates (so the collection does not stay `yellow` under them).
    public var tailIdle: Duration
    public var tailPatience: Duration

    public init(deletedThreshold: Double, vacuumMinVectors: Int, segmentNumber: Int, maxSegmentBytes: Int,
                indexingThresholdBytes: Int, enabled: Bool, storage: ImmutableSegment.Storage, tailIdle: Duration = .seconds(1),
                tailPatience: Duration = .seconds(5)) {
        self.deletedThreshold = deletedThreshold
        self.vacuumMinVectors = vacuumMinVectors
        self.segmentNumber = segmentNumber
        self.maxSegmentBytes = maxSegmentBytes
        self.indexingThresholdBytes = indexingThresholdBytes
        self.enabled = enabled
        self.storage = storage
        self.tailIdle = tailIdle
        self.tailPatience = tailPatience
    }

    /// An appendable segment this large is turned into an immutable one: at the indexing
    /// threshold, or at the maximum segment size when indexing is disabled.
    var sealBytes: Int { indexingThresholdBytes == Int.max ? maxSegmentBytes : indexingThresholdBytes }

    /// The write segment is due for indexing below the threshold from a tenth of it on: smaller,
    /// an exact scan of it costs a search little.
    var tailBytes: Int? { indexingThresholdBytes == Int.max ? nil : max(1, indexingThresholdBytes / 10) }
}

/// An optimization the planner chose: which segments, and what kind of segment replaces them.
public struct PlannedOptimization: Sendable, Equatable {
    /// `vacuum`, `indexing` or `merge`.
    public let optimizer: String
    public let segments: [SegmentSummary]
    let outputAppendable: Bool
    /// The write segment below the indexing threshold (`LocalShard.plannedTail`): started once
    /// updates pause, or once it has been due for `tailPatience`.
    var tail = false
    /// A tail merge with an immutable segment more than `LocalShard.tailMergeRatio` times the
    /// write segment's size.
    var oversizedTail = false
}

/// The optimizers: they replace segments with rewritten ones while reads and writes go on.
///
/// 1. On the actor: lock the chosen segments (from now on their points only get deletion flags;
///    an update moves the point to the write segment) and take value copies of them.
/// 2. Off the actor: write the replacement from the copies (live points only) into a new
///    `segments/<uuid>/`, unlisted.
/// 3. On the actor, without suspending: persist the shard, repeat on the replacement the
///    deletions the locked segments received meanwhile and flush them, write `segments.json`
///    listing the replacement instead of the inputs, then remove the inputs' directories.
///
/// A crash before step 3's list write leaves the old list (the new directory is removed at
/// start-up); after it, the new one. Either list describes every point at the recorded version.
extension LocalShard {
    /// Completed optimizations kept for the endpoint.
    static let completedOptimizationsMax = 16

    public var isOptimizing: Bool { currentOptimization != nil }

    public var segmentSummaries: [SegmentSummary] {
        segments.entries.map { SegmentSummary(uuid: $0.uuid, points: $0.liveCount) }
    }

    public var segmentCount: Int { segments.entries.count }

    /// Makes optimizations run from now on (after a restart they wait for an update or this).
    public func triggerOptimizers() { optimizersTriggered = true }

    /// The optimization due next, if any: vacuum first, then indexing (sealing a full appendable
    /// segment, giving an immutable one its missing graphs, or indexing a smaller write segment,
    /// which starts once updates pause; the shard notes since when it is due), then merge.
    public func plannedOptimization(_ t: OptimizerThresholds) -> PlannedOptimization? {
        let entries = segments.entries
        let free = entries.indices.filter { !entries[$0].locked && entries[$0].liveCount + entries[$0].deletedCount > 0 }
        func plan(_ optimizer: String, _ chosen: [Int], appendable: Bool = false) -> PlannedOptimization {
            PlannedOptimization(optimizer: optimizer, segments: chosen.map { SegmentSummary(uuid: entries[$0].uuid, points: entries[$0].liveCount) },
                                outputAppendable: appendable)
        }
        for index in free {
            let entry = entries[index]
            let total = entry.liveCount + entry.deletedCount
            if total >= t.vacuumMinVectors, Double(entry.deletedCount) / Double(total) > t.deletedThreshold {
                return plan("vacuum", [index], appendable: entry.isAppendable && entry.vectorStorageBytes < t.sealBytes)
            }
        }
        let size = { (index: Int) in entries[index].vectorStorageBytes }
        let immutables = free.filter { !entries[$0].isAppendable }.sorted { size($0) < size($1) }
        // A write segment full at `max_segment_size` (see `SegmentSet.maxSegmentBytes`) is sealed too.
        let seal = min(t.sealBytes, t.maxSegmentBytes)
        if let largest = free.filter({ entries[$0].isAppendable && size($0) >= seal }).max(by: { size($0) < size($1) }) {
            // At the segment budget, index together with the smallest immutable segment when they
            // fit, so the count does not grow.
            if entries.count >= t.segmentNumber, let smallest = immutables.first, size(largest) + size(smallest) < t.maxSegmentBytes {
                return plan("indexing", [largest, smallest])
            }
            return plan("indexing", [largest])
        }
        // An immutable segment without the graphs the configuration asks for (opened after a crash
        // cut a build short, or `hnsw_config` changed) is rewritten with them.
        if let unindexed = immutables.first(where: { !entries[$0].immutable!.missingVectorIndexes(t.storage.vectorIndexes).isEmpty }) {
            return plan("indexing", [unindexed])
        }
        if optimizersTriggered, let (chosen, oversized) = plannedTail(t, free: free, immutables: immutables) {
            var planned = plan("indexing", chosen)
            planned.tail = true
            planned.oversizedTail = oversized
            if tailDue?.uuid != entries[chosen[0]].uuid { tailDue = (entries[chosen[0]].uuid, .now) }
            return planned
        }
        if entries.count > t.segmentNumber {
            var chosen: [Int] = []
            var total = 0
            for index in immutables where chosen.count < entries.count - t.segmentNumber + 1 {
                guard total + size(index) < t.maxSegmentBytes else { break }
                total += size(index)
                chosen.append(index)
            }
            if chosen.count >= 2 { return plan("merge", chosen) }
        }
        return nil
    }

    /// The write segment's points go into a graph as well, once it holds a tenth of the indexing
    /// threshold, rather than being scanned by every search until the threshold (not before the
    /// first update after a restart, so a restarted shard is not `grey` for it). The segment is indexed
    /// alone while the shard is below its segment budget. At the budget it is indexed together with
    /// the smallest immutable segment, only when that rewrite is cheap: the smallest segment's graph
    /// can seed the new one (it lost at most `GraphSeed.healingLimit` of its points, no payload
    /// links are built, no multivector graph or product codes are rebuilt), so only the write
    /// segment's points are inserted. A smallest segment more than `tailMergeRatio` times the write
    /// segment's size is rewritten so at most once per `oversizedTailInterval`: the points a bulk
    /// upload leaves in the write segment get a graph, but a writer that pauses often does not
    /// rewrite a large segment for every few points. Otherwise the tail waits for the threshold.
    /// Returns the segments, and whether the merge is such an oversized one.
    private func plannedTail(_ t: OptimizerThresholds, free: [Int], immutables: [Int]) -> (segments: [Int], oversized: Bool)? {
        let entries = segments.entries, specs = t.storage.vectorIndexes.values
        guard let minimum = t.tailBytes, specs.contains(where: \.buildsGraph),
              let tail = free.last(where: { entries[$0].isAppendable && entries[$0].vectorStorageBytes >= minimum }) else { return nil }
        if entries.count < t.segmentNumber { return ([tail], false) }
        let payloadLinks = !payloadSchema.isEmpty && specs.contains { $0.payloadM > 0 }
        let productCodes = specs.contains { if case .product? = $0.quantization { true } else { false } }
        guard let smallest = immutables.first, let segment = entries[smallest].immutable,
              Double(segment.deletedCount) <= GraphSeed.healingLimit * Double(segment.deletedCount + segment.liveCount),
              segment.multiIndexes.isEmpty, !payloadLinks, !productCodes,
              entries[tail].vectorStorageBytes + entries[smallest].vectorStorageBytes < t.maxSegmentBytes else { return nil }
        let oversized = entries[smallest].vectorStorageBytes > Self.tailMergeRatio * entries[tail].vectorStorageBytes
        if oversized, let last = lastOversizedTail, ContinuousClock.now - last < Self.oversizedTailInterval { return nil }
        return ([tail, smallest], oversized)
    }

    /// How many times larger than the write segment the immutable segment it is indexed with may
    /// be, more often than once per `oversizedTailInterval`.
    static let tailMergeRatio = 16
    static let oversizedTailInterval = Duration.seconds(300)

    /// Moves immutable segments to the configured storage mode, then runs one planned
    /// optimization if optimizations are on and triggered; returns whether it ran one.
    @discardableResult
    public func optimize(_ t: OptimizerThresholds) async throws(ShardError) -> Bool {
        segments.maxSegmentBytes = t.maxSegmentBytes
        guard currentOptimization == nil, !closed, !Task.isCancelled else { return false }
        try applyStorage(t.storage)
        guard t.enabled, optimizersTriggered, let plan = plannedOptimization(t) else {
            optimizationPostponed = nil
            return false
        }
        if plan.tail, ContinuousClock.now - lastUpdate < t.tailIdle, ContinuousClock.now - (tailDue?.since ?? .now) < t.tailPatience {
            return false
        }
        let chosen = Set(plan.segments.map(\.uuid))
        // The replacement is written before the inputs go: twice their files must fit (as Qdrant
        // estimates it) beside the reserve, which only a node already refusing writes may use:
        // rewriting segments is what gives deleted points' space back. Otherwise it waits. The
        // space is held while it runs, so writes cannot take it meanwhile.
        var held: UInt64 = 0
        if let space {
            // An appendable segment's vectors are in memory more than in its files.
            let needed = 2 * segments.entries.filter { chosen.contains($0.uuid) }.reduce(UInt64(0)) { sum, entry in
                sum + max(disk.directoryBytes(joinPath(segmentsDirectory, entry.uuid)), UInt64(entry.vectorStorageBytes))
            }
            if let refusal = space.hold(needed, usingReserve: space.refusal != nil) {
                optimizationPostponed = "Not enough space available for optimization: \(refusal)"
                return false
            }
            held = needed
        }
        defer { space?.release(held) }
        optimizationPostponed = nil
        var inputs: [any SegmentData] = []
        for index in segments.entries.indices where chosen.contains(segments.entries[index].uuid) {
            segments.entries[index].locked = true
            inputs.append(segments.entries[index].data)
        }
        let uuid = UUID().uuidString.lowercased()
        var record = OptimizationRecord(uuid: uuid, optimizer: plan.optimizer, status: .optimizing, segments: plan.segments, startedAt: Date())
        currentOptimization = record
        let started = ContinuousClock.now
        defer {
            currentOptimization = nil
            record.finishedAt = Date()
            optimizationTimes.record(micros: (ContinuousClock.now - started).wholeMicroseconds, success: record.status == .done,
                                     at: record.finishedAt!)
            completedOptimizations.append(record)
            if completedOptimizations.count > Self.completedOptimizationsMax { completedOptimizations.removeFirst() }
        }
        let directory = joinPath(segmentsDirectory, uuid)
        do throws(ShardError) {
            // Created one level at a time, so a shard whose directory was moved away (a deleted or
            // replaced collection) gets an error here instead of its old path back.
            do throws(DiskError) {
                if !disk.isDirectory(segmentsDirectory) { try disk.createDirectory(segmentsDirectory) }
                try disk.createDirectory(directory)
            } catch {
                throw .segment(error)
            }
            var built = try await Self.build(inputs, appendable: plan.outputAppendable, directory: directory, disk: disk,
                                             datatypes: segments.datatypes, version: wal.lastSequence, uuid: uuid, storage: t.storage,
                                             schema: payloadSchema)
            // The schema may have changed while the replacement was built.
            built.applySchema(payloadSchema, disk: disk)
            try swapIn(built, replacing: chosen)
            if plan.oversizedTail { lastOversizedTail = .now }
            optimizedPoints += built.liveCount
            record.status = .done
            optimizerError = nil
            return true
        } catch {
            for index in segments.entries.indices where chosen.contains(segments.entries[index].uuid) {
                segments.entries[index].locked = false
                segments.entries[index].deletedWhileLocked = []
            }
            try? disk.removeItem(directory)
            record.status = .failed("\(error)")
            if error != .stopped { optimizerError = "\(plan.optimizer) optimization failed: \(error)" }
            throw error
        }
    }

    /// Writes and opens the replacement; runs on the global executor, not the actor. When the task
    /// is cancelled (the node shuts down) the index builds end early and this throws `.stopped`.
    nonisolated static func build(_ inputs: [any SegmentData], appendable: Bool, directory: String, disk: any Disk,
                                  datatypes: [String: Datatype], version: UInt64, uuid: String,
                                  storage: ImmutableSegment.Storage, schema: [String: PayloadFieldSchema]) async throws(ShardError) -> SegmentEntry {
        // Minutes of blocking work for a large segment: on a thread of its own (see WorkerThreads).
        // The inputs are only read there, and the optimization holds them locked.
        let inputs = Unchecked(inputs)
        let stop = BuildStop()
        let built = await withTaskCancellationHandler {
            await WorkerThreads.run { () -> Result<SegmentEntry, ShardError> in
                Result { () throws(ShardError) in
                    try buildNow(inputs.value, appendable: appendable, directory: directory, disk: disk, datatypes: datatypes,
                                 version: version, uuid: uuid, storage: storage, schema: schema, stop: stop)
                }
            }
        } onCancel: {
            stop.request()
        }
        if stop.requested { throw .stopped }
        return try built.get()
    }

    private nonisolated static func buildNow(_ inputs: [any SegmentData], appendable: Bool, directory: String, disk: any Disk,
                                             datatypes: [String: Datatype], version: UInt64, uuid: String,
                                             storage: ImmutableSegment.Storage, schema: [String: PayloadFieldSchema],
                                             stop: BuildStop) throws(ShardError) -> SegmentEntry {
        do {
            if appendable, let source = inputs.first as? AppendableSegment {
                var compacted = source.compacted()
                try disk.removeItem(directory)
                try SegmentFiles(directory: directory, disk: disk).flush(compacted, version: version, uuid: uuid)
                try disk.syncDirectory(parentDirectory(of: directory))
                compacted.clearChanges()
                compacted.applySchema(schema)
                return SegmentEntry(uuid: uuid, appendable: compacted, listed: true)
            }
            let placements = try ImmutableSegment.write(from: inputs, directory: directory, disk: disk, datatypes: datatypes, version: version,
                                                        uuid: uuid, sparse: storage.sparse)
            var segment = try ImmutableSegment.load(directory: directory, disk: disk, dimensions: ImmutableSegment.dimensions(of: inputs),
                                                    datatypes: datatypes, storage: storage)
            segment.applySchema(schema, disk: disk)
            segment.buildVectorIndexes(storage.vectorIndexes, disk: disk, seeds: graphSeeds(inputs, placements, storage.vectorIndexes), stop: stop)
            return SegmentEntry(uuid: uuid, immutable: segment)
        } catch {
            throw .segment(error)
        }
    }

    /// For each vector, the input graph that serves the configuration (same links per point,
    /// `ef_construct` and distance; no payload links), lost at most `GraphSeed.healingLimit` of its
    /// points, and keeps the most points in the replacement, for the replacement's graph to start
    /// from: a merge then heals it and inserts the other inputs' points into it instead of building
    /// from nothing. (A replacement that gets payload links is built from nothing.)
    private nonisolated static func graphSeeds(_ inputs: [any SegmentData], _ placements: [[Int32]],
                                               _ specs: [String: VectorIndexSpec]) -> [String: GraphSeed] {
        var seeds: [String: GraphSeed] = [:]
        for (name, spec) in specs where spec.buildsGraph {
            var best: (seed: GraphSeed, points: Int)?
            for (input, map) in zip(inputs, placements) {
                guard let segment = input as? ImmutableSegment, let index = segment.vectorIndexes[name], index.spec.m == spec.m,
                      index.spec.efConstruct == spec.efConstruct, index.spec.distance == spec.distance else { continue }
                let points = index.graph.seedablePoints(with: map)
                if points > (best?.points ?? 0) { best = (GraphSeed(graph: index.graph, map: map, space: index.space), points) }
            }
            if let best { seeds[name] = best.seed }
        }
        return seeds
    }

    /// Step 3: makes `built` replace the segments `inputs` names, durably.
    func swapIn(_ built: SegmentEntry, replacing inputs: Set<String>) throws(ShardError) {
        guard !closed else { throw .closed }
        try persist()
        var replacement = built
        for entry in segments.entries where inputs.contains(entry.uuid) {
            for (id, version) in entry.deletedWhileLocked {
                if let offset = replacement.liveOffset(of: id) { replacement.markDeleted(id, at: offset, version: version) }
            }
        }
        let directory = joinPath(segmentsDirectory, replacement.uuid)
        do throws(DiskError) {
            // Built from segments of the vectors in force when it started.
            try replacement.setVectors(segments.names, disk: disk)
            // And where the storage settings in force now put the columns it adds.
            replacement.appendable?.memory = segments.memory
            if let appendable = replacement.appendable {
                try SegmentFiles(directory: directory, disk: disk).flush(appendable, version: persistedVersion, uuid: replacement.uuid)
                replacement.appendable!.clearChanges()
            } else {
                try replacement.immutable!.flush(disk: disk)
                replacement.immutable!.clearChanges()
            }
            let position = segments.entries.firstIndex { inputs.contains($0.uuid) } ?? segments.entries.count
            let previous = segments.entries
            segments.entries.removeAll { inputs.contains($0.uuid) }
            // A replacement without live points is dropped rather than kept as an empty segment.
            let empty = replacement.liveCount == 0
            if !empty { segments.entries.insert(replacement, at: min(position, segments.entries.count)) }
            do throws(DiskError) {
                try writeSegmentList(version: persistedVersion)
            } catch {
                segments.entries = previous
                throw error
            }
            sortedIDsCache = nil
            // Unlisted now; what a failure leaves behind is removed at the next start.
            for uuid in inputs.union(empty ? [replacement.uuid] : []) { try? disk.removeItem(joinPath(segmentsDirectory, uuid)) }
        } catch {
            throw .segment(error)
        }
    }

    /// Reopens immutable segments whose vectors or payloads should now live elsewhere (RAM or
    /// mapped); the files stay as they are.
    func applyStorage(_ wanted: ImmutableSegment.Storage) throws(ShardError) {
        storage = wanted
        for index in segments.entries.indices {
            guard let segment = segments.entries[index].immutable, !segments.entries[index].locked, segment.needsReopening(for: wanted) else { continue }
            do {
                segments.entries[index].immutable = try segment.reopened(disk: disk, datatypes: segments.datatypes, storage: wanted)
            } catch {
                throw .segment(error)
            }
        }
    }

    public var optimizations: (running: [OptimizationRecord], completed: [OptimizationRecord]) {
        (currentOptimization.map { [$0] } ?? [], completedOptimizations)
    }
}
