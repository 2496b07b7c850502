public import DiskIO
public import QuiverModel
public import WAL

public enum ShardError: Error, Sendable, Equatable, CustomStringConvertible {
    case wal(WALError)
    /// A WAL record that does not decode: written by something else, or damaged in a way the
    /// checksum did not catch.
    case badRecord(sequence: UInt64, reason: String)
    /// The operation names a point the shard does not hold; nothing was written.
    case pointNotFound(PointID)

    public var description: String {
        switch self {
        case .wal(let error): error.description
        case .badRecord(let sequence, let reason): "WAL record \(sequence) cannot be read: \(reason)"
        case .pointNotFound(let id): "No point with id \(id) found"
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
    /// When the oldest not-yet-fsynced append happened (`wait=false` writes).
    var unsyncedSince: ContinuousClock.Instant?

    public init(path: String, disk: any Disk, config: CollectionConfig) throws(ShardError) {
        self.path = path
        let wal = config.walConfig
        do {
            self.wal = try WriteAheadLog(
                directory: joinPath(path, "wal"), disk: disk,
                options: .init(segmentCapacityBytes: wal.walCapacityMb * 1024 * 1024,
                               segmentsAhead: wal.walSegmentsAhead, retainClosed: wal.walRetainClosed)
            )
        } catch {
            throw .wal(error)
        }
        var dimensions: [String: Int] = [:]
        for (name, params) in config.params.vectors.all { dimensions[name] = Int(params.size) }
        segment = AppendableSegment(dimensions: dimensions)
        try Self.replay(self.wal, into: &segment)
    }

    static func replay(_ wal: WriteAheadLog, into segment: inout AppendableSegment) throws(ShardError) {
        var failure: ShardError?
        var replayed = segment
        do {
            try wal.forEachRecord(from: wal.firstSequence) { record in
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
        return sequence
    }

    /// Fsyncs `wait=false` writes that have waited `interval` or longer.
    public func flushIfDue(interval: Duration, now: ContinuousClock.Instant = .now) throws(ShardError) {
        guard let since = unsyncedSince, now - since >= interval else { return }
        do {
            try wal.sync()
        } catch {
            throw .wal(error)
        }
        unsyncedSince = nil
    }

    // MARK: Reading

    public var pointCount: Int { segment.liveCount }

    public func firstMissing(_ ids: [PointID]) -> PointID? { segment.firstMissing(ids) }

    public func retrieve(_ ids: [PointID], withPayload: WithPayload, withVector: WithVector) -> [PointRecord] {
        ids.compactMap { segment.record($0, withPayload: withPayload, withVector: withVector) }
    }

    /// Up to `limit` points with id ≥ `offset`, in id order.
    public func scroll(from offset: PointID?, limit: Int, withPayload: WithPayload, withVector: WithVector) -> [PointRecord] {
        segment.sortedIDs(from: offset).prefix(limit).compactMap {
            segment.record($0, withPayload: withPayload, withVector: withVector)
        }
    }
}
