public import DiskIO

/// One record read back from the log.
public struct WALRecord: Sendable, Equatable {
    public let sequence: UInt64
    public let payload: [UInt8]

    public init(sequence: UInt64, payload: [UInt8]) {
        self.sequence = sequence
        self.payload = payload
    }
}

/// An append-only, checksummed log of opaque records in a directory of segment files
/// (format: `WALFormat`).
///
/// Contract:
/// - `append` writes a record and returns its sequence number; it is durable only after `sync()`
///   returns. Callers acknowledging `wait=true` writes call `sync()` first.
/// - If `sync()` fails, the log is poisoned: every later `append`/`sync` throws `.poisoned`, because
///   what the kernel dropped is unknown. Reopening recovers whatever reached the disk.
/// - Opening recovers: a damaged record at the tail of the last segment (a torn write) and
///   everything after it are erased; a damaged record anywhere else is `.corrupted`, never skipped.
/// - Not thread-safe: one owner (the shard's update worker) calls it.
public final class WriteAheadLog {
    /// Largest payload accepted.
    public static let recordBytesMax = 256 * 1024 * 1024

    public struct Options: Sendable {
        /// Segment file size (`wal_capacity_mb`); a single larger record gets a segment of its own.
        public var segmentCapacityBytes: Int
        /// Preallocated empty segments kept ready (`wal_segments_ahead`).
        public var segmentsAhead: Int
        /// Segments wholly below the truncation point that are kept anyway (`wal_retain_closed`).
        public var retainClosed: Int

        public init(segmentCapacityBytes: Int = 32 * 1024 * 1024, segmentsAhead: Int = 0, retainClosed: Int = 1) {
            self.segmentCapacityBytes = segmentCapacityBytes
            self.segmentsAhead = segmentsAhead
            self.retainClosed = retainClosed
        }
    }

    struct Segment {
        let firstSequence: UInt64
        let path: String
        /// Sequence of its last record; `firstSequence - 1` while empty.
        var lastSequence: UInt64
    }

    public let directory: String
    let disk: any Disk
    let options: Options
    var segments: [Segment] = []
    var file: (any DiskFile)?
    /// Where the next record goes in the current segment.
    var writeOffset = 0
    var poison: DiskError?
    var spareCounter = 0

    /// Opens (creating if needed) the log in `directory` and recovers it. An empty log starts at
    /// sequence `startSequence`.
    public init(directory: String, disk: any Disk, options: Options = Options(), startSequence: UInt64 = 1) throws(WALError) {
        precondition(startSequence >= 1, "WAL sequence numbers start at 1")
        self.directory = directory
        self.disk = disk
        self.options = options
        do {
            try disk.createDirectories(directory)
        } catch {
            throw .io(error)
        }
        try recover(startSequence: startSequence)
        try replenishSpares()
    }

    /// Sequence of the oldest retained record (or of the next record, when empty).
    public var firstSequence: UInt64 { segments.first?.firstSequence ?? 1 }
    /// Sequence of the newest record; `firstSequence - 1` when empty.
    public var lastSequence: UInt64 { segments.last.map(\.lastSequence) ?? 0 }
    public var isEmpty: Bool { lastSequence < firstSequence }
    public var segmentCount: Int { segments.count }

    // MARK: Writing

    /// Appends a record; returns its sequence number. Not durable until `sync()`.
    @discardableResult
    public func append(_ payload: [UInt8]) throws(WALError) -> UInt64 {
        if let poison { throw .poisoned(poison) }
        guard payload.count <= Self.recordBytesMax else {
            throw .recordTooLarge(bytes: payload.count, limit: Self.recordBytesMax)
        }
        let size = WALFormat.paddedLength(payload: payload.count)
        let current = segments[segments.count - 1]
        let currentHasRecords = current.lastSequence >= current.firstSequence
        if currentHasRecords && writeOffset + size > options.segmentCapacityBytes {
            try roll()
        }
        let sequence = lastSequence + 1
        var bytes: [UInt8] = []
        bytes.reserveCapacity(size)
        payload.withUnsafeBytes { WALFormat.encodeRecord(sequence: sequence, payload: $0, into: &bytes) }
        do {
            try file!.write(bytes, at: UInt64(writeOffset))
        } catch {
            // A failed write may have left part of the record; the next append overwrites it, and
            // recovery would see it as a torn tail. The record is not in the log.
            throw .io(error)
        }
        writeOffset += size
        segments[segments.count - 1].lastSequence = sequence
        return sequence
    }

    /// Makes every appended record durable.
    public func sync() throws(WALError) {
        if let poison { throw .poisoned(poison) }
        do {
            try file!.sync()
        } catch {
            poison = error
            throw .poisoned(error)
        }
    }

    /// Closes the current segment (synced) and continues in a new one.
    func roll() throws(WALError) {
        try sync()
        let next = lastSequence + 1
        let path = joinPath(directory, WALFormat.segmentName(firstSequence: next))
        do {
            let header = WALFormat.segmentHeader(firstSequence: next)
            if let spare = try disk.listDirectory(directory).first(where: { $0.hasSuffix(WALFormat.spareSuffix) }) {
                // A spare is preallocated and zero-filled; give it a header and its name.
                let sparePath = joinPath(directory, spare)
                let spareFile = try disk.open(sparePath, create: false)
                try spareFile.write(header, at: 0)
                try spareFile.sync()
                try disk.rename(sparePath, path)
            } else {
                let temp = path + WALFormat.tempSuffix
                let newFile = try disk.open(temp, create: true)
                try newFile.preallocate(to: UInt64(options.segmentCapacityBytes))
                try newFile.write(header, at: 0)
                try newFile.sync()
                try disk.rename(temp, path)
            }
            try disk.syncDirectory(directory)
            file?.close()
            file = try disk.open(path, create: false)
        } catch {
            throw .io(error)
        }
        segments.append(Segment(firstSequence: next, path: path, lastSequence: next - 1))
        writeOffset = WALFormat.segmentHeaderBytes
        try replenishSpares()
    }

    /// Keeps `segmentsAhead` preallocated spare files ready for `roll()`.
    func replenishSpares() throws(WALError) {
        do {
            let existing = try disk.listDirectory(directory).filter { $0.hasSuffix(WALFormat.spareSuffix) }.count
            for _ in existing..<max(existing, options.segmentsAhead) {
                spareCounter += 1
                let path = joinPath(directory, "ahead-\(spareCounter)\(WALFormat.spareSuffix)")
                let spare = try disk.open(path, create: true)
                try spare.preallocate(to: UInt64(options.segmentCapacityBytes))
                try spare.sync()
                spare.close()
            }
        } catch {
            throw .io(error)
        }
    }

    // MARK: Reading

    /// Records from `sequence` on, at most `limit` of them, in order.
    public func read(from sequence: UInt64, limit: Int = .max) throws(WALError) -> [WALRecord] {
        var result: [WALRecord] = []
        try forEachRecord(from: sequence) { record in
            result.append(record)
            return result.count < limit
        }
        return result
    }

    /// Calls `body` with each record from `sequence` on, in order, reading every segment once;
    /// `body` returns false to stop.
    public func forEachRecord(from sequence: UInt64, _ body: (WALRecord) -> Bool) throws(WALError) {
        guard sequence >= firstSequence, sequence <= lastSequence + 1 else {
            throw .sequenceNotRetained(requested: sequence, first: firstSequence, last: lastSequence)
        }
        for segment in segments where segment.lastSequence >= sequence && segment.lastSequence >= segment.firstSequence {
            var reader: SegmentReader
            do {
                reader = try SegmentReader(path: segment.path, disk: disk)
            } catch {
                throw .io(error)
            }
            var offset = WALFormat.segmentHeaderBytes
            while true {
                let decoded: WALFormat.Decoded
                do {
                    decoded = try reader.record(at: offset)
                } catch {
                    throw .io(error)
                }
                guard case .record(let seq, let payload, let next) = decoded, seq <= segment.lastSequence else { break }
                if seq >= sequence, !body(WALRecord(sequence: seq, payload: Array(payload))) { return }
                offset = next
            }
        }
    }

    // MARK: Truncation

    /// Drops closed segments whose records are all below `sequence` (they are persisted elsewhere),
    /// keeping the newest `retainClosed` of them. The current segment is never dropped.
    public func truncate(before sequence: UInt64) throws(WALError) {
        let droppable = segments.dropLast().filter { $0.lastSequence < sequence }
        let drop = droppable.dropLast(options.retainClosed)
        guard !drop.isEmpty else { return }
        do {
            for segment in drop { try disk.removeItem(segment.path) }
            try disk.syncDirectory(directory)
        } catch {
            throw .io(error)
        }
        segments.removeFirst(drop.count)
    }
}
