import DiskIO
import Foundation
import QuiverModel

/// One segment of a shard: appendable (in memory, changed in place) or immutable (written once by
/// the optimizer). Exactly one of `appendable` and `immutable` is set; both are stored properties
/// so that `entries[i].appendable!.apply(…)` changes the segment in place.
struct SegmentEntry: Sendable {
    let uuid: String
    var appendable: AppendableSegment?
    var immutable: ImmutableSegment?
    /// Taken by a running optimization: its points are not changed in place any more (an update
    /// moves the point to the write segment); deletions are still recorded, and remembered in
    /// `deletedWhileLocked` so the optimized replacement can repeat them.
    var locked = false
    var deletedWhileLocked: [(PointID, UInt64)] = []
    /// Whether the segment has files listed in `segments.json` (an appendable one only after its
    /// first flush).
    var listed: Bool

    init(uuid: String, appendable: AppendableSegment, listed: Bool) {
        self.uuid = uuid
        self.appendable = appendable
        self.listed = listed
    }

    init(uuid: String, immutable: ImmutableSegment) {
        self.uuid = uuid
        self.immutable = immutable
        self.listed = true
    }

    var data: any SegmentData { appendable ?? immutable! }
    var isAppendable: Bool { appendable != nil }
    /// Changed in place: appendable and not being optimized.
    var isMutable: Bool { appendable != nil && !locked }
    var liveCount: Int { appendable?.liveCount ?? immutable!.liveCount }
    var deletedCount: Int { appendable?.deletedCount ?? immutable!.deletedCount }
    var vectorStorageBytes: Int { appendable?.vectorStorageBytes ?? immutable!.vectorStorageBytes }
    var hasChanges: Bool { appendable?.hasChanges ?? immutable!.hasChanges }

    func liveOffset(of id: PointID) -> Int? {
        if let appendable { return appendable.liveOffset(of: id) }
        return immutable!.liveOffset(of: id)
    }

    func deletedVersion(of id: PointID) -> UInt64? {
        if let appendable { return appendable.deletedVersion(of: id) }
        return immutable!.deletedVersion(of: id)
    }

    func version(at offset: Int) -> UInt64 { appendable?.version(at: offset) ?? immutable!.version(at: offset) }

    func point(at offset: Int) -> PointStruct { appendable?.point(at: offset) ?? immutable!.point(at: offset) }

    func record(at offset: Int, withPayload: WithPayload, withVector: WithVector) -> PointRecord {
        var record = appendable?.record(at: offset, withPayload: withPayload, withVector: withVector)
            ?? immutable!.record(at: offset, withPayload: withPayload, withVector: withVector)
        record.version = version(at: offset)
        return record
    }

    mutating func applySchema(_ schema: [String: PayloadFieldSchema], disk: any Disk) {
        if appendable != nil { appendable!.applySchema(schema) } else { immutable!.applySchema(schema, disk: disk) }
    }

    func hasVector(_ name: String, at offset: Int) -> Bool {
        appendable?.hasVector(name, at: offset) ?? immutable!.hasVector(name, at: offset)
    }

    func withVector<R>(_ name: String, at offset: Int, _ body: (UnsafePointer<Float>) -> R) -> R {
        if let appendable { return appendable.withVector(name, at: offset, body) }
        return immutable!.withVector(name, at: offset, body)
    }

    /// Calls `body` with the offset and float32 elements of vector `name` of every live point
    /// that has one (float16 and uint8 vectors converted on the way).
    func forEachVector(_ name: String, _ body: (Int, UnsafePointer<Float>) -> Void) {
        if let appendable { appendable.forEachVector(name, body) } else { immutable!.forEachVector(name, body) }
    }

    /// Calls `body` with each of `offsets` whose point is live and has vector `name`, and its
    /// float32 elements.
    func forEachVector(_ name: String, at offsets: [Int32], _ body: (Int, UnsafePointer<Float>) -> Void) {
        if let immutable { return immutable.forEachVector(name, at: offsets, body) }
        let segment = appendable!
        for candidate in offsets where segment.isLive(at: Int(candidate)) && segment.hasVector(name, at: Int(candidate)) {
            segment.withVector(name, at: Int(candidate)) { body(Int(candidate), $0) }
        }
    }

    /// Offsets that include every point passing `filter`, from the most selective payload index
    /// of a `must` condition; nil when no index applies (then every point is a candidate).
    /// A `has_id` condition proposes the offsets of its ids.
    func candidates(_ filter: Filter?) -> [Int32]? {
        let indexes = appendable?.indexes ?? immutable!.indexes
        guard let filter, let must = filter.must else { return nil }
        var best: [Int32]?
        for condition in must {
            let found: [Int32]
            switch condition {
            case .field(let field):
                guard !indexes.isEmpty, let proposed = indexes[field.key]?.candidates(field) else { continue }
                found = proposed
            case .hasID(let ids):
                found = ids.compactMap { liveOffset(of: $0).map(Int32.init) }.sorted()
            default:
                continue
            }
            if best == nil || found.count < best!.count { best = found }
        }
        return best
    }

    /// Whether a payload index covers a field of `filter`'s `must` conditions (cheaper than
    /// `candidates`, which also collects them).
    func indexes(_ filter: Filter) -> Bool {
        let indexes = appendable?.indexes ?? immutable!.indexes
        return filter.must?.contains { if case .field(let condition) = $0 { indexes[condition.key] != nil } else { false } } ?? false
    }

    /// Calls `body` with each live point's offset that may pass `filter` (still to be checked).
    func forEachCandidate(_ filter: Filter?, _ body: (Int) -> Void) {
        let data = self.data
        if let candidates = candidates(filter) {
            for offset in candidates where data.isLive(at: Int(offset)) { body(Int(offset)) }
        } else {
            for offset in 0..<data.totalCount where data.isLive(at: offset) { body(offset) }
        }
    }

    /// Whether the live point at `offset` passes `filter`.
    func matches(_ filter: Filter, at offset: Int) -> Bool {
        let data = self.data
        return filter.matches(id: data.id(at: offset), payload: AppendableSegment.decode(data.payloadBytes(at: offset)),
                              hasVector: { data.hasVector($0, at: offset) })
    }

    func liveIDs() -> [PointID] {
        let data = data
        return (0..<data.totalCount).compactMap { data.isLive(at: $0) ? data.id(at: $0) : nil }
    }

    mutating func markDeleted(_ id: PointID, at offset: Int, version: UInt64) {
        if appendable != nil {
            appendable!.remove(id, version: version)
        } else {
            immutable!.markDeleted(at: offset, version: version)
        }
        if locked { deletedWhileLocked.append((id, version)) }
    }
}

/// The segments of a shard and the rules that keep one live copy of each point among them.
///
/// New points go to the write segment (an unlocked appendable one, created when missing). A point
/// in an appendable segment is changed in place; a point in an immutable or locked segment is
/// copied to the write segment, changed there, and its old copy marked deleted at the operation's
/// version (copy-on-write). Every change is guarded by the point's version, so replaying the WAL
/// over segments that are already ahead changes nothing.
struct SegmentSet: Sendable {
    var entries: [SegmentEntry] = []
    /// The vectors points may have; others in an operation (replayed from before a vector was
    /// removed) are left out.
    var names: VectorNames
    var dimensions: [String: Int] { names.dimensions }
    var datatypes: [String: Datatype] { names.datatypes }
    /// The payload indexes a new write segment starts with.
    var payloadSchema: [String: PayloadFieldSchema] = [:]
    /// Where a new write segment keeps its vectors and payloads.
    var memory = SegmentMemory.arrays
    /// A write segment with this many bytes of vectors takes no new points: the next go to a new
    /// one (`max_segment_size`, as Qdrant keeps an appendable segment with capacity), so a segment
    /// the optimizer indexes is at most that large however far the writes run ahead of it.
    var maxSegmentBytes = Int.max

    init(names: VectorNames, entries: [SegmentEntry] = []) {
        self.names = names
        self.entries = entries
    }

    var liveCount: Int { entries.reduce(0) { $0 + $1.liveCount } }

    /// The segment and offset of the live copy of `id`.
    func find(_ id: PointID) -> (segment: Int, offset: Int)? {
        for (index, entry) in entries.enumerated() {
            if let offset = entry.liveOffset(of: id) { return (index, offset) }
        }
        return nil
    }

    func firstMissing(_ ids: [PointID]) -> PointID? {
        ids.first { find($0) == nil }
    }

    /// The newest version at which any segment recorded `id` as deleted.
    func deletedVersion(of id: PointID) -> UInt64? {
        entries.compactMap { $0.deletedVersion(of: id) }.max()
    }

    /// Index of the write segment: the newest appendable segment, or a new one when that is
    /// locked or full (or there is none). New points and moved points only ever go there, so a move
    /// always goes to a segment newer than any appendable it comes from — the order `persist`
    /// relies on. Appendable segments are kept in `entries` in the order they were created.
    mutating func writeSegment() -> Int {
        if let index = entries.lastIndex(where: \.isAppendable), entries[index].isMutable,
           entries[index].vectorStorageBytes < maxSegmentBytes { return index }
        var segment = AppendableSegment(dimensions: dimensions, datatypes: datatypes, memory: memory)
        segment.applySchema(payloadSchema)
        entries.append(SegmentEntry(uuid: UUID().uuidString.lowercased(), appendable: segment, listed: false))
        return entries.count - 1
    }

    mutating func apply(_ operation: UpdateOperation, version: UInt64) {
        var operation = operation
        switch operation {
        case .upsert(let points) where !points.allSatisfy(names.keeps): operation = .upsert(points.map(names.restricted))
        case .updateVectors(let points) where !points.allSatisfy(names.keeps): operation = .updateVectors(points.map(names.restricted))
        default: break
        }
        switch operation {
        case .upsert(let points):
            for point in points { upsert(point, version: version) }
        case .delete(let ids):
            for id in ids {
                if let (segment, offset) = find(id) {
                    guard entries[segment].version(at: offset) < version else { continue }
                    entries[segment].markDeleted(id, at: offset, version: version)
                } else {
                    // Remember the deletion, so replaying an older upsert of it cannot bring it back.
                    let target = writeSegment()
                    entries[target].appendable!.delete(id, version: version)
                }
            }
        case .updateVectors, .deleteVectors, .setPayload, .overwritePayload, .deletePayload, .clearPayload:
            // Copy the points that are not in a mutable segment to the write segment at their own
            // version, then change every point in place.
            var segmentOf: [PointID: Int] = [:]
            for id in operation.ids where segmentOf[id] == nil {
                guard let (segment, offset) = find(id) else { continue }
                guard !entries[segment].isMutable else {
                    segmentOf[id] = segment
                    continue
                }
                guard entries[segment].version(at: offset) < version else { continue }
                let point = entries[segment].point(at: offset)
                let oldVersion = entries[segment].version(at: offset)
                entries[segment].markDeleted(id, at: offset, version: version)
                let target = writeSegment()
                entries[target].appendable!.upsert(point, version: oldVersion)
                segmentOf[id] = target
            }
            for (segment, part) in operation.partitioned(by: { segmentOf[$0] ?? -1 }) where segment >= 0 {
                entries[segment].appendable!.apply(part, version: version)
            }
        }
    }

    private mutating func upsert(_ point: PointStruct, version: UInt64) {
        if let (segment, offset) = find(point.id) {
            if entries[segment].isMutable {
                entries[segment].appendable!.upsert(point, version: version)
                return
            }
            guard entries[segment].version(at: offset) < version else { return }
            entries[segment].markDeleted(point.id, at: offset, version: version)
        } else if let deletedAt = deletedVersion(of: point.id), deletedAt > version {
            // Deleted after this operation. (A deletion at the same version is the point's move to
            // another segment by this very operation, so it is no reason to skip.)
            return
        }
        let target = writeSegment()
        entries[target].appendable!.upsert(point, version: version)
    }

    /// After loading: when a crash left two live copies of a point (a copy-on-write whose old copy's
    /// deletion was not flushed), keeps the newer and marks the other deleted.
    mutating func removeDuplicates() {
        guard entries.count > 1 else { return }
        var seen: [PointID: (segment: Int, offset: Int)] = [:]
        seen.reserveCapacity(liveCount)
        for segment in entries.indices {
            let data = entries[segment].data
            for offset in 0..<data.totalCount where data.isLive(at: offset) {
                let id = data.id(at: offset)
                guard let other = seen[id] else {
                    seen[id] = (segment, offset)
                    continue
                }
                let otherVersion = entries[other.segment].version(at: other.offset)
                if otherVersion >= data.version(at: offset) {
                    entries[segment].markDeleted(id, at: offset, version: otherVersion)
                } else {
                    entries[other.segment].markDeleted(id, at: other.offset, version: data.version(at: offset))
                    seen[id] = (segment, offset)
                }
            }
        }
    }
}
