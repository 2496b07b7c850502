import DiskIO
import WAL
public import QuiverModel

/// Why a WAL delta cannot bring a replica up to date (the transfer then streams every record).
public enum WALDeltaError: Error, Equatable, CustomStringConvertible {
    /// The replica has no clocks to start from (it is new, or was emptied).
    case empty
    /// The replica has seen clocks this one has not.
    case unknownClocks
    /// The replica has seen newer ticks than this one.
    case higherThanCurrent
    /// Records the replica needs were written without clock tags (records a transfer brought).
    case untaggedRecords
    /// The WAL no longer reaches back to where the replica stopped.
    case notFound
    case read(String)

    public var description: String {
        switch self {
        case .empty: "the replica has no recovery point"
        case .unknownClocks: "the replica's recovery point has clocks this WAL does not know"
        case .higherThanCurrent: "the replica's recovery point is ahead of this replica"
        case .untaggedRecords: "the delta would include records without clock tags"
        case .notFound: "the WAL no longer reaches back to the replica's recovery point"
        case .read(let reason): "the WAL cannot be read: \(reason)"
        }
    }
}

/// What another replica needs to catch up with this one (DESIGN.md §6, `wal_delta` transfers).
extension LocalShard {
    /// The clocks this replica's data is known to hold every update of: the newest clocks as of
    /// when it was last active (updates it took since, such as a transfer's, do not count), or
    /// the newest clocks while it is active.
    public var recoveryPoint: ClockMap { recoveryClocks ?? newestClocks }

    /// The replica leaves an active state: its recovery point stays where it is (kept on disk).
    public func freezeRecoveryPoint() throws(ShardError) {
        guard recoveryClocks == nil else { return }
        try storeRecoveryPoint(newestClocks)
    }

    /// The replica is active again: its recovery point follows its clocks.
    public func thawRecoveryPoint() throws(ShardError) {
        guard recoveryClocks != nil else { return }
        do {
            try disk.removeItem(recoveryClocksPath)
            try disk.syncDirectory(path)
        } catch {
            throw .segment(error)
        }
        recoveryClocks = nil
    }

    /// The replica was emptied: it holds nothing a delta could start from.
    public func clearRecoveryPoint() throws(ShardError) {
        try storeRecoveryPoint(ClockMap())
    }

    private func storeRecoveryPoint(_ clocks: ClockMap) throws(ShardError) {
        try writeClocks(clocks, to: recoveryClocksPath)
        recoveryClocks = clocks
    }

    /// The first WAL record a replica at `point` lacks (nil when it lacks none): every record from
    /// there on, replayed in order, brings it to this replica's state. The WAL is held from there
    /// on for `holder` (``holdWAL(from:for:)``) until the caller releases it.
    public func resolveDelta(for point: ClockMap, holding holder: UInt64) throws(WALDeltaError) -> UInt64? {
        var records: [(UInt64, ClockTag?)] = []
        do {
            try wal.forEachRecord(from: wal.firstSequence) { record in
                records.append((record.sequence, try? OperationCodec.decodeRecord(record.payload).1))
                return true
            }
        } catch {
            throw .read("\(error)")
        }
        let start = try Self.resolveDelta(records.reversed(), point: point, newest: newestClocks)
        walHolds[holder] = start ?? wal.lastSequence + 1
        return start
    }

    /// The delta for a replica at `point` over records given newest first, this replica's clocks
    /// being `newest`: walking back, each clock the replica is behind on is settled at its first
    /// record at or before the first tick the replica lacks; the delta starts where the last one
    /// is settled (at that record when the replica lacks it, else after it).
    static func resolveDelta(_ newestFirst: some Sequence<(UInt64, ClockTag?)>, point: ClockMap, newest: ClockMap) throws(WALDeltaError) -> UInt64? {
        guard !point.clocks.isEmpty else { throw .empty }
        for (key, entry) in point.clocks {
            guard let current = newest.clocks[key] else { throw .unknownClocks }
            if entry.tick > current.tick { throw .higherThanCurrent }
        }
        // The first tick the replica lacks of each clock it is behind on.
        var lacking: [ClockMap.Key: UInt64] = [:]
        for (key, entry) in newest.clocks where (point.clocks[key]?.tick ?? 0) < entry.tick {
            lacking[key] = (point.clocks[key]?.tick ?? 0) + 1
        }
        guard !lacking.isEmpty else { return nil }
        var after: UInt64?
        for (sequence, tag) in newestFirst {
            guard let tag else { throw .untaggedRecords }
            let key = ClockMap.Key(peerID: tag.peerID, clockID: tag.clockID)
            if let first = lacking[key], tag.tick <= first {
                lacking[key] = nil
                if lacking.isEmpty { return tag.tick == first ? sequence : after }
            }
            after = sequence
        }
        throw .notFound
    }

    /// Up to `limit` WAL records from `sequence` on, decoded.
    public func walRecords(from sequence: UInt64, limit: Int) throws(ShardError) -> [(sequence: UInt64, operation: UpdateOperation, clock: ClockTag?)] {
        let records: [WALRecord]
        do {
            records = try wal.read(from: sequence, limit: limit)
        } catch {
            throw .wal(error)
        }
        var decoded: [(sequence: UInt64, operation: UpdateOperation, clock: ClockTag?)] = []
        for record in records {
            do {
                let (operation, clock) = try OperationCodec.decodeRecord(record.payload)
                decoded.append((record.sequence, operation, clock))
            } catch {
                throw .badRecord(sequence: record.sequence, reason: error.reason)
            }
        }
        return decoded
    }

    /// The sequence of the newest WAL record.
    public var walLastSequence: UInt64 { wal.lastSequence }

    /// Keeps the WAL from `sequence` on for `holder` (a transfer, by the index it started at)
    /// until it releases it (nil).
    public func holdWAL(from sequence: UInt64?, for holder: UInt64) { walHolds[holder] = sequence }
}
