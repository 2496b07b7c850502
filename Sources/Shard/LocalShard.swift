public import DiskIO
import Foundation
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

    public var description: String {
        switch self {
        case .wal(let error): error.description
        case .badRecord(let sequence, let reason): "WAL record \(sequence) cannot be read: \(reason)"
        case .pointNotFound(let id): "No point with id \(id) found"
        case .segment(let error): "segment files: \(error)"
        case .inconsistent(let reason): "shard at an inconsistent state: \(reason)"
        }
    }
}

/// One shard stored on this node: a WAL and the points it describes.
///
/// Write path: encode the operation, append it to the WAL, fsync when the caller waits, apply it to
/// the segment, acknowledge. An operation is therefore durable before any reader can see it under
/// `wait=true`. Opening the shard replays the WAL into the segment (idempotently, by version).
public actor LocalShard {
    public nonisolated let path: String
    let wal: WriteAheadLog
    var segment: AppendableSegment
    let files: SegmentFiles
    /// When the oldest not-yet-fsynced append happened (`wait=false` writes).
    var unsyncedSince: ContinuousClock.Instant?
    /// Live ids in ascending order, kept between writes so scroll pages cost a binary search.
    var sortedIDsCache: [PointID]?
    /// When the segment was last written to its files (or the shard opened).
    var lastPersist = ContinuousClock.now
    /// Identifies the current segment files.
    var segmentUUID: String
    /// The WAL version a running vacuum started from; nil when none runs.
    var vacuumVersion: UInt64?
    var currentOptimization: OptimizationRecord?
    var completedOptimizations: [OptimizationRecord] = []

    /// Opens the shard: loads the flushed segment, then replays the WAL operations after it.
    public init(path: String, disk: any Disk, config: CollectionConfig) throws(ShardError) {
        self.path = path
        var dimensions: [String: Int] = [:]
        var datatypes: [String: Datatype] = [:]
        for (name, params) in config.params.vectors.all {
            dimensions[name] = Int(params.size)
            datatypes[name] = params.datatype
        }
        files = SegmentFiles(directory: joinPath(path, "segment"), disk: disk)
        var persistedVersion: UInt64 = 0
        do {
            if let (loaded, manifest) = try files.load(dimensions: dimensions, datatypes: datatypes) {
                segment = loaded
                persistedVersion = manifest.version
                segmentUUID = manifest.uuid ?? UUID().uuidString.lowercased()
            } else {
                segment = AppendableSegment(dimensions: dimensions, datatypes: datatypes)
                segmentUUID = UUID().uuidString.lowercased()
            }
        } catch {
            throw .segment(error)
        }
        let walConfig = config.walConfig
        do {
            wal = try WriteAheadLog(
                directory: joinPath(path, "wal"), disk: disk,
                options: .init(segmentCapacityBytes: walConfig.walCapacityMb * 1024 * 1024,
                               segmentsAhead: walConfig.walSegmentsAhead, retainClosed: walConfig.walRetainClosed),
                startSequence: persistedVersion + 1
            )
        } catch {
            throw .wal(error)
        }
        // The WAL must hold every operation after the flushed version, or sequence numbers would repeat.
        guard wal.lastSequence >= persistedVersion, wal.firstSequence <= persistedVersion + 1 else {
            throw .inconsistent("the segment is flushed up to operation \(persistedVersion), but the WAL holds \(wal.firstSequence)...\(wal.lastSequence)")
        }
        try Self.replay(wal, from: persistedVersion + 1, into: &segment)
    }

    static func replay(_ wal: WriteAheadLog, from start: UInt64, into segment: inout AppendableSegment) throws(ShardError) {
        guard start <= wal.lastSequence else { return }
        var failure: ShardError?
        var replayed = segment
        do {
            try wal.forEachRecord(from: start) { record in
                switch Result(catching: { () throws(OperationCodec.DecodeError) in try OperationCodec.decode(record.payload) }) {
                case .success(let operation):
                    replayed.apply(operation, version: record.sequence)
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
        segment = replayed
    }

    /// Applies `operation`; returns its sequence number (the `operation_id`). With `wait`, the WAL
    /// is fsynced before this returns.
    public func update(_ operation: UpdateOperation, wait: Bool) throws(ShardError) -> UInt64 {
        if operation.requiresExistingPoints, let missing = segment.firstMissing(operation.ids) {
            throw .pointNotFound(missing)
        }
        let sequence: UInt64
        do {
            sequence = try wal.append(OperationCodec.encode(operation))
            if wait {
                try wal.sync()
                unsyncedSince = nil
            } else if unsyncedSince == nil {
                unsyncedSince = .now
            }
        } catch {
            throw .wal(error)
        }
        segment.apply(operation, version: sequence)
        sortedIDsCache = nil
        return sequence
    }

    /// Every `interval`: fsyncs `wait=false` writes, writes the segment's changes to its files,
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

    /// Writes the segment's changes and the manifest, then truncates the WAL before them. Only
    /// fsynced operations are persisted, so the files never get ahead of the WAL.
    public func persist() throws(ShardError) {
        guard segment.hasChanges else { return }
        do {
            try wal.sync()
        } catch {
            throw .wal(error)
        }
        unsyncedSince = nil
        let version = wal.lastSequence
        do {
            try files.flush(segment, version: version, uuid: segmentUUID)
        } catch {
            throw .segment(error)
        }
        segment.clearChanges()
        // A running vacuum replays the WAL from where it started; keep it whole until then.
        guard vacuumVersion == nil else { return }
        do {
            try wal.truncate(before: version + 1)
        } catch {
            throw .wal(error)
        }
    }

    // MARK: Reading

    public var pointCount: Int { segment.liveCount }

    public func firstMissing(_ ids: [PointID]) -> PointID? { segment.firstMissing(ids) }

    public func retrieve(_ ids: [PointID], withPayload: WithPayload, withVector: WithVector) -> [PointRecord] {
        ids.compactMap { segment.record($0, withPayload: withPayload, withVector: withVector) }
    }

    /// Up to `limit` points with id ≥ `offset`, in id order.
    public func scroll(from offset: PointID?, limit: Int, withPayload: WithPayload, withVector: WithVector) -> [PointRecord] {
        let sorted = sortedIDsCache ?? segment.sortedIDs(from: nil)
        sortedIDsCache = sorted
        var start = 0
        if let offset {
            var high = sorted.count
            while start < high {
                let mid = (start + high) / 2
                if sorted[mid] < offset { start = mid + 1 } else { high = mid }
            }
        }
        return sorted[start...].prefix(limit).compactMap {
            segment.record($0, withPayload: withPayload, withVector: withVector)
        }
    }
}
