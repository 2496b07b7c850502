import QuiverJSON
public import QuiverModel

/// Points held in memory, addressed by a dense internal offset; the id tracker maps external ids
/// to offsets and keeps a version (the sequence number of the last operation that changed the
/// point) per offset. Deleted offsets stay as tombstones until the optimizer compacts them.
public struct AppendableSegment: SegmentData {
    private(set) var ids: [PointID] = []
    private(set) var versions: [UInt64] = []
    private(set) var deleted: [Bool] = []
    /// Payloads as compact JSON (what the WAL and the payload log hold too); parsed only when a
    /// request asks for them. Much smaller in memory than parsed objects, and in file-backed
    /// memory when payloads are stored on disk.
    private(set) var payloads = PayloadColumn()
    /// Per vector name: `dimension` elements per offset in the vector's datatype, and which
    /// offsets have one.
    var vectors: [String: VectorColumn] = [:]
    /// Where new vector columns go (and payloads, from the start).
    var memory = SegmentMemory.arrays
    var hasVector: [String: [Bool]] = [:]
    /// Sparse vectors by name and offset (any name the collection accepted).
    var sparse: [String: AppendableSparseColumn] = [:]
    /// Multivectors by name and offset.
    var multi: [String: AppendableMultiColumn] = [:]
    var dimensions: [String: Int]
    /// The number of each dense vector's files (`vectors-<n>.bin`). A number is never given to
    /// another vector while the segment lives, so a flush never writes one vector's data over
    /// a file the manifest on disk still names for another.
    var fileNumbers: [String: Int] = [:]
    var nextFileNumber = 0
    private(set) var offsets: [PointID: Int] = [:]
    /// Versions of deleted points, so replaying an older upsert cannot resurrect them.
    private(set) var deletedVersions: [PointID: UInt64] = [:]
    /// What changed since the last flush (`SegmentFiles.flush`).
    private(set) var dirtyOffsets = Set<Int>()
    private(set) var dirtyPayloads = Set<Int>()
    /// Offsets whose sparse vectors or multivectors changed.
    private(set) var dirtyVariable = Set<Int>()
    /// The sparse and multivector logs are to be written anew (a name was removed).
    var rewriteLogs = false
    private(set) var newTombstones: [(PointID, UInt64)] = []
    /// Payload indexes (exact values), kept current on every payload change.
    private(set) var indexes: [String: FieldIndex] = [:]

    public init(dimensions: [String: Int], datatypes: [String: Datatype] = [:]) {
        self.init(dimensions: dimensions, datatypes: datatypes, memory: .arrays)
    }

    init(dimensions: [String: Int], datatypes: [String: Datatype], memory: SegmentMemory) {
        self.dimensions = dimensions
        self.memory = memory
        payloads = PayloadColumn(in: memory.payloadScratch())
        for name in dimensions.keys {
            vectors[name] = memory.column(name, datatypes[name])
            hasVector[name] = []
        }
        for (number, name) in dimensions.keys.sorted().enumerated() { fileNumbers[name] = number }
        nextFileNumber = dimensions.count
    }

    /// A segment as loaded from its files.
    init(loaded dimensions: [String: Int], ids: [PointID], versions: [UInt64], deleted: [Bool], payloads: PayloadColumn,
         vectors: [String: VectorColumn], hasVector: [String: [Bool]], sparse: [String: AppendableSparseColumn],
         multi: [String: AppendableMultiColumn], tombstones: [PointID: UInt64], fileNumbers: [String: Int], nextFileNumber: Int,
         memory: SegmentMemory) {
        self.dimensions = dimensions
        self.memory = memory
        self.fileNumbers = fileNumbers
        self.nextFileNumber = nextFileNumber
        self.ids = ids
        self.versions = versions
        self.deleted = deleted
        self.payloads = payloads
        self.vectors = vectors
        self.hasVector = hasVector
        self.sparse = sparse
        self.multi = multi
        self.deletedVersions = tombstones
        for (offset, id) in ids.enumerated() where !deleted[offset] { offsets[id] = offset }
    }

    var hasChanges: Bool { !dirtyOffsets.isEmpty || !dirtyPayloads.isEmpty || !dirtyVariable.isEmpty || !newTombstones.isEmpty }

    /// Exactly as many bytes as the JSON needs (the writer's buffer has spare capacity).
    static func encode(_ payload: JSONObject?) -> [UInt8]? {
        payload.map { JSONWriter.write(.object($0)).withUnsafeBufferPointer { Array($0) } }
    }

    /// The stored bytes were written by `encode`; bytes of a damaged file that do not parse to an
    /// object read as no payload rather than stopping the node.
    static func decode(_ bytes: [UInt8]?) -> JSONObject? {
        guard let bytes, case .object(let object)? = try? JSONParser.parse(bytes) else { return nil }
        return object
    }

    /// The live points only, at new dense offsets, everything marked changed (for a full write).
    /// Tombstones are dropped: they only guard against replaying operations older than the delete,
    /// and the compacted files are written at a version after every one of them.
    func compacted() -> AppendableSegment {
        var result = AppendableSegment(dimensions: dimensions)
        result.memory = memory
        result.payloads = PayloadColumn(in: memory.payloadScratch())
        result.vectors = Dictionary(uniqueKeysWithValues: vectors.map { name, column in (name, column.emptyLike(in: memory.scratch(for: name))) })
        for id in offsets.keys.sorted() {
            let old = offsets[id]!
            let new = result.ids.count
            result.ids.append(id)
            result.versions.append(versions[old])
            result.deleted.append(false)
            result.payloads.append(payloads[old])
            for (name, dimension) in dimensions {
                result.vectors[name]!.appendZeros(dimension)
                result.vectors[name]!.set(vectors[name]!.get((old * dimension)..<((old + 1) * dimension)), at: new * dimension)
                result.hasVector[name]!.append(hasVector[name]![old])
            }
            for (name, column) in sparse {
                if let vector = column.vectors[old] { result.sparse[name, default: .init()].set(vector, at: new) }
            }
            for (name, column) in multi {
                if let vector = column.vectors[old] { result.multi[name, default: .init()].set(vector, at: new) }
            }
            result.offsets[id] = new
            result.dirtyOffsets.insert(new)
            result.dirtyPayloads.insert(new)
            result.dirtyVariable.insert(new)
        }
        return result
    }

    /// Gives the segment exactly the indexes `schema` names (built from the payloads).
    mutating func applySchema(_ schema: [String: PayloadFieldSchema]) {
        indexes = indexes.filter { schema[$0.key] == $0.value.schema }
        for (key, fieldSchema) in schema where indexes[key] == nil {
            indexes[key] = FieldIndex(appendableSchema: fieldSchema, key: key, segment: self)
        }
    }

    private mutating func reindex(_ offset: Int, old: [UInt8]?) {
        for key in indexes.keys { indexes[key]!.update(offset: Int32(offset), key: key, old: old, new: payloads[offset]) }
    }

    /// Every offset changed: the next flush writes the files in full.
    mutating func markAllChanged() {
        dirtyOffsets.formUnion(ids.indices)
        dirtyPayloads.formUnion(ids.indices)
        dirtyVariable.formUnion(ids.indices)
    }

    mutating func clearChanges() {
        rewriteLogs = false
        dirtyOffsets.removeAll(keepingCapacity: true)
        dirtyPayloads.removeAll(keepingCapacity: true)
        dirtyVariable.removeAll(keepingCapacity: true)
        newTombstones.removeAll(keepingCapacity: true)
    }

    public var liveCount: Int { offsets.count }

    public var deletedCount: Int { deleted.count - offsets.count }

    /// Applies `operation` with sequence number `version`; points already at that version or newer
    /// are left alone, so replaying the WAL twice changes nothing.
    public mutating func apply(_ operation: UpdateOperation, version: UInt64) {
        switch operation {
        case .upsert(let points):
            for point in points { upsert(point, version: version) }
        case .delete(let ids):
            for id in ids { delete(id, version: version) }
        case .updateVectors(let points):
            for point in points {
                modify(point.id, version: version) { segment, offset in
                    for (name, vector) in point.vectors { segment.setVector(name, vector, at: offset) }
                    for (name, vector) in point.sparse { segment.setSparse(name, vector, at: offset) }
                    for (name, vector) in point.multi { segment.setMulti(name, vector, at: offset) }
                }
            }
        case .deleteVectors(let ids, let names):
            for id in ids {
                modify(id, version: version) { segment, offset in
                    for name in names where segment.dimensions[name] != nil { segment.hasVector[name]![offset] = false }
                    for name in names where segment.sparse[name]?.vectors[offset] != nil { segment.setSparse(name, nil, at: offset) }
                    for name in names where segment.multi[name]?.vectors[offset] != nil { segment.setMulti(name, nil, at: offset) }
                }
            }
        case .setPayload(let ids, let payload, let key):
            for id in ids {
                modify(id, version: version) { segment, offset in
                    var current = Self.decode(segment.payloads[offset]) ?? JSONObject()
                    PayloadPath.set(payload, into: &current, at: key)
                    segment.payloads[offset] = Self.encode(current)
                }
            }
        case .overwritePayload(let ids, let payload):
            let encoded = Self.encode(payload)
            for id in ids { modify(id, version: version) { segment, offset in segment.payloads[offset] = encoded } }
        case .deletePayload(let ids, let keys):
            for id in ids {
                modify(id, version: version) { segment, offset in
                    guard var current = Self.decode(segment.payloads[offset]) else { return }
                    for key in keys { PayloadPath.delete(key, from: &current) }
                    segment.payloads[offset] = Self.encode(current)
                }
            }
        case .clearPayload(let ids):
            for id in ids { modify(id, version: version) { segment, offset in segment.payloads[offset] = nil } }
        }
    }

    /// Changes an existing point if `version` is newer than its own; a missing point is skipped
    /// (the shard checks existence before the operation is logged).
    private mutating func modify(_ id: PointID, version: UInt64, _ change: (inout AppendableSegment, Int) -> Void) {
        guard let offset = offsets[id], versions[offset] < version else { return }
        versions[offset] = version
        dirtyOffsets.insert(offset)
        let changesBefore = payloads.changes
        let payloadBefore = indexes.isEmpty ? nil : payloads[offset]
        change(&self, offset)
        if payloads.changes != changesBefore {
            dirtyPayloads.insert(offset)
            if !indexes.isEmpty { reindex(offset, old: payloadBefore) }
        }
    }

    private mutating func setVector(_ name: String, _ vector: [Float], at offset: Int) {
        guard let dimension = dimensions[name] else { return }
        precondition(vector.count == dimension, "vector dimension is validated before it reaches a segment")
        vectors[name]!.set(vector, at: offset * dimension)
        hasVector[name]![offset] = true
    }

    private mutating func setSparse(_ name: String, _ vector: SparseVector?, at offset: Int) {
        guard sparse[name]?.vectors[offset] != vector else { return }
        sparse[name, default: .init()].set(vector, at: offset)
        dirtyVariable.insert(offset)
    }

    private mutating func setMulti(_ name: String, _ vector: MultiVector?, at offset: Int) {
        guard multi[name]?.vectors[offset] != vector else { return }
        multi[name, default: .init()].set(vector, at: offset)
        dirtyVariable.insert(offset)
    }

    mutating func upsert(_ point: PointStruct, version: UInt64) {
        if let offset = offsets[point.id] {
            guard versions[offset] < version else { return }
            write(point, at: offset, version: version)
            return
        }
        if let removedAt = deletedVersions[point.id] {
            // Removed at the same version means moved away by this operation (see `SegmentSet`).
            guard removedAt <= version else { return }
            deletedVersions[point.id] = nil
        }
        let offset = ids.count
        ids.append(point.id)
        versions.append(version)
        deleted.append(false)
        payloads.append(nil)
        for (name, dimension) in dimensions {
            vectors[name]!.appendZeros(dimension)
            hasVector[name]!.append(false)
        }
        offsets[point.id] = offset
        write(point, at: offset, version: version)
    }

    private mutating func write(_ point: PointStruct, at offset: Int, version: UInt64) {
        versions[offset] = version
        let old = indexes.isEmpty ? nil : payloads[offset]
        payloads[offset] = Self.encode(point.payload)
        if !indexes.isEmpty { reindex(offset, old: old) }
        dirtyOffsets.insert(offset)
        dirtyPayloads.insert(offset)
        for name in dimensions.keys {
            if let vector = point.vectors[name] {
                setVector(name, vector, at: offset)
            } else {
                hasVector[name]![offset] = false
            }
        }
        for name in Set(sparse.keys).union(point.sparse.keys) { setSparse(name, point.sparse[name], at: offset) }
        for name in Set(multi.keys).union(point.multi.keys) { setMulti(name, point.multi[name], at: offset) }
    }

    mutating func delete(_ id: PointID, version: UInt64) {
        if let offset = offsets[id] {
            guard versions[offset] < version else { return }
            remove(id, version: version)
        } else if deletedVersions[id].map({ $0 < version }) ?? true {
            deletedVersions[id] = version
            newTombstones.append((id, version))
        }
    }

    /// Marks the live point `id` deleted at `version` (or at its own, when that is newer); the
    /// caller has decided it must go.
    mutating func remove(_ id: PointID, version: UInt64) {
        guard let offset = offsets[id] else { return }
        let at = max(versions[offset], version)
        deleted[offset] = true
        versions[offset] = at
        offsets[id] = nil
        deletedVersions[id] = at
        dirtyOffsets.insert(offset)
        for name in sparse.keys { sparse[name]!.set(nil, at: offset) }
        for name in multi.keys { multi[name]!.set(nil, at: offset) }
        newTombstones.append((id, at))
    }

    // MARK: Reading

    public func contains(_ id: PointID) -> Bool { offsets[id] != nil }

    var totalCount: Int { ids.count }
    func isLive(at offset: Int) -> Bool { !deleted[offset] }
    func id(at offset: Int) -> PointID { ids[offset] }
    func version(at offset: Int) -> UInt64 { versions[offset] }
    func hasVector(_ name: String, at offset: Int) -> Bool {
        hasVector[name]?[offset] ?? (sparse[name]?.vectors[offset] != nil || multi[name]?.vectors[offset] != nil)
    }
    func sparseVector(_ name: String, at offset: Int) -> SparseVector? { sparse[name]?.vectors[offset] }
    var sparseNames: [String] { sparse.filter { !$0.value.vectors.isEmpty }.keys.sorted() }
    func multiVector(_ name: String, at offset: Int) -> MultiVector? { multi[name]?.vectors[offset] }
    var multiNames: [String] { multi.filter { !$0.value.vectors.isEmpty }.keys.sorted() }
    var variableStorageBytes: Int { sparse.values.reduce(0) { $0 + $1.storageBytes } + multi.values.reduce(0) { $0 + $1.storageBytes } }
    func payloadBytes(at offset: Int) -> [UInt8]? { payloads[offset] }
    func liveOffset(of id: PointID) -> Int? { offsets[id] }
    func deletedVersion(of id: PointID) -> UInt64? { deletedVersions[id] }

    func vectorBytes(_ name: String, at offset: Int) -> [UInt8] {
        let dimension = dimensions[name]!
        return vectors[name]!.bytes((offset * dimension)..<((offset + 1) * dimension))
    }

    /// Bytes of dense vectors held in the process's own memory.
    var residentVectorBytes: Int { vectors.values.reduce(0) { $0 + $1.residentBytes } }

    var vectorStorageBytes: Int {
        ids.count * vectors.reduce(0) { $0 + dimensions[$1.key]! * $1.value.elementBytes } + variableStorageBytes
    }

    func forEachVector(_ name: String, _ body: (Int, UnsafePointer<Float>) -> Void) {
        guard let dimension = dimensions[name], dimension > 0, let column = vectors[name], let has = hasVector[name] else { return }
        let direct = column.withFloat32Elements(from: 0) { base -> Bool in
            guard let base else { return false }
            for offset in ids.indices where !deleted[offset] && has[offset] { body(offset, base + offset * dimension) }
            return true
        }
        if direct { return }
        for offset in ids.indices where !deleted[offset] && has[offset] {
            column.get((offset * dimension)..<((offset + 1) * dimension)).withUnsafeBufferPointer { body(offset, $0.baseAddress!) }
        }
    }

    /// Calls `body` with the float32 elements of vector `name` of the point at `offset`.
    func withVector<R>(_ name: String, at offset: Int, _ body: (UnsafePointer<Float>) -> R) -> R {
        let dimension = dimensions[name]!
        if let result = vectors[name]!.withFloat32Elements(from: offset * dimension, { $0.map(body) }) { return result }
        return vectors[name]!.get((offset * dimension)..<((offset + 1) * dimension)).withUnsafeBufferPointer { body($0.baseAddress!) }
    }

    /// The whole point, as an upsert would write it.
    func point(at offset: Int) -> PointStruct {
        var found: [String: [Float]] = [:]
        for (name, dimension) in dimensions where hasVector[name]![offset] {
            found[name] = vectors[name]!.get((offset * dimension)..<((offset + 1) * dimension))
        }
        return PointStruct(id: ids[offset], vectors: found, sparse: sparse.compactMapValues { $0.vectors[offset] },
                           multi: multi.compactMapValues { $0.vectors[offset] }, payload: Self.decode(payloads[offset]))
    }

    /// The first of `ids` that is not a live point.
    public func firstMissing(_ ids: [PointID]) -> PointID? {
        ids.first { offsets[$0] == nil }
    }

    public func record(_ id: PointID, withPayload: WithPayload, withVector: WithVector) -> PointRecord? {
        guard let offset = offsets[id] else { return nil }
        return record(at: offset, withPayload: withPayload, withVector: withVector)
    }

    func record(at offset: Int, withPayload: WithPayload, withVector: WithVector) -> PointRecord {
        let names: [String] = switch withVector {
        case .none: []
        case .all: Array(dimensions.keys)
        case .named(let wanted): wanted.filter { dimensions[$0] != nil }
        }
        var result: [String: [Float]]?
        var sparseFound: [String: SparseVector]?
        var multiFound: [String: MultiVector]?
        if withVector != .none {
            var found: [String: [Float]] = [:]
            for name in names where hasVector[name]![offset] {
                let dimension = dimensions[name]!
                found[name] = vectors[name]!.get((offset * dimension)..<((offset + 1) * dimension))
            }
            result = found
            sparseFound = sparse.compactMapValues { $0.vectors[offset] }.filter { withVector.includes($0.key) }
            multiFound = multi.compactMapValues { $0.vectors[offset] }.filter { withVector.includes($0.key) }
        }
        let payload = withPayload == .none ? nil : withPayload.apply(Self.decode(payloads[offset]))
        return PointRecord(id: ids[offset], payload: payload, vectors: result, sparse: sparseFound, multi: multiFound)
    }

    /// Live ids in ascending order, from `start` on.
    public func sortedIDs(from start: PointID?) -> [PointID] {
        let all = offsets.keys.sorted()
        guard let start else { return all }
        return Array(all.drop { $0 < start })
    }
}
