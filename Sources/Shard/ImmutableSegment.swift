import CVectorKernels
import DiskIO
import QuiverJSON
import QuiverModel
import VectorIndex

/// Read access the optimizer needs to copy points out of a segment of either kind.
protocol SegmentData: Sendable {
    var dimensions: [String: Int] { get }
    /// Offsets `0..<totalCount`, live or deleted.
    var totalCount: Int { get }
    var liveCount: Int { get }
    func isLive(at offset: Int) -> Bool
    func id(at offset: Int) -> PointID
    func version(at offset: Int) -> UInt64
    func hasVector(_ name: String, at offset: Int) -> Bool
    /// The stored bytes of the point's vector `name` (elements in the segment's datatype).
    func vectorBytes(_ name: String, at offset: Int) -> [UInt8]
    func payloadBytes(at offset: Int) -> [UInt8]?
    /// Names of the sparse vectors the segment holds any of.
    var sparseNames: [String] { get }
    func sparseVector(_ name: String, at offset: Int) -> SparseVector?
    /// Names of the multivectors the segment holds any of.
    var multiNames: [String] { get }
    func multiVector(_ name: String, at offset: Int) -> MultiVector?
    /// Bytes of vector storage, live and deleted points: what the optimizer thresholds compare.
    var vectorStorageBytes: Int { get }
}

/// A segment the optimizer wrote in full, in `segments/<uuid>/`; only deletion flags change after.
///
/// | file | content |
/// |---|---|
/// | `manifest.json` | `{"format":1,"kind":"immutable","version":V,"points":N,"vectors":{…},"uuid":…}`, written last |
/// | `ids.bin` | N records of 32 bytes as in `SegmentFiles` (deleted flag and version rewritten in place) |
/// | `vectors-<i>.bin`, `has-vector-<i>.bin` | as in `SegmentFiles` |
/// | `payload-index.bin` | N + 1 little-endian u64 offsets into `payload.bin`; point i's JSON is `[idx[i], idx[i+1])`, empty when it has none |
/// | `payload.bin` | the payloads' compact JSON, one after another |
///
/// Ids, versions and deletion flags are always in memory. Vectors are memory-mapped when the
/// vector's `on_disk` is true and read into memory otherwise; payloads likewise with
/// `on_disk_payload`.
public struct ImmutableSegment: SegmentData {
    struct Column: Sendable {
        /// The file's number in its name (`vectors-<n>.bin`), which also names the vector's graph
        /// and code files: fixed when the segment is written, whatever vectors come and go later.
        let number: Int
        let region: ByteRegion
        let datatype: Datatype
        let dimension: Int
        let elementBytes: Int
        let onDisk: Bool
    }

    let directory: String
    private(set) var ids: [PointID]
    /// Chunked, so that a search holding a copy of the segment costs a deletion one chunk's copy.
    private(set) var versions: ChunkedArray<UInt64>
    private(set) var deleted: ChunkedArray<Bool>
    /// Every id in the segment, live or deleted, to its offset.
    private(set) var offsets: [PointID: Int]
    public private(set) var liveCount: Int
    /// The dense vectors the segment has files for (a vector added to the collection after it
    /// was written is not among them: its points have none).
    private(set) var dimensions: [String: Int]
    private(set) var columns: [String: Column]
    private(set) var hasVectorFlags: [String: [Bool]]
    let payloadIndex: ByteRegion
    let payloadData: ByteRegion
    let payloadOnDisk: Bool
    /// Offsets whose deletion is not written to `ids.bin` yet.
    private(set) var dirtyOffsets = Set<Int>()
    /// Payload indexes by field, built from the payloads when the segment is opened or an index
    /// is created.
    private(set) var indexes: [String: FieldIndex] = [:]
    /// HNSW graphs by vector name (`hnsw-<i>-….bin`), for the vectors whose spec builds one.
    var vectorIndexes: [String: SegmentVectorIndex] = [:]
    /// Sparse vectors and their inverted indexes, by name.
    var sparseColumns: [String: ImmutableSparseColumn] = [:]
    /// Multivectors by name, and the HNSW graphs over them.
    var multiColumns: [String: ImmutableMultiColumn] = [:]
    var multiIndexes: [String: MultiVectorIndex] = [:]

    var totalCount: Int { ids.count }
    var deletedCount: Int { ids.count - liveCount }
    var hasChanges: Bool { !dirtyOffsets.isEmpty }

    var vectorStorageBytes: Int {
        ids.count * columns.values.reduce(0) { $0 + $1.dimension * $1.elementBytes } + sparseColumns.values.reduce(0) { $0 + $1.storageBytes }
            + multiColumns.values.reduce(0) { $0 + $1.storageBytes }
    }

    var sparseNames: [String] { sparseColumns.keys.sorted() }
    func sparseVector(_ name: String, at offset: Int) -> SparseVector? { sparseColumns[name]?.vector(at: offset) }
    var multiNames: [String] { multiColumns.keys.sorted() }
    func multiVector(_ name: String, at offset: Int) -> MultiVector? { multiColumns[name]?.vector(at: offset) }

    func isLive(at offset: Int) -> Bool { !deleted[offset] }
    func id(at offset: Int) -> PointID { ids[offset] }
    func version(at offset: Int) -> UInt64 { versions[offset] }
    func hasVector(_ name: String, at offset: Int) -> Bool {
        if let flags = hasVectorFlags[name] { return flags[offset] }
        if let column = multiColumns[name] { return column.has(offset) }
        return sparseColumns[name]?.has[offset] ?? false
    }

    func vectorBytes(_ name: String, at offset: Int) -> [UInt8] {
        let column = columns[name]!
        let size = column.dimension * column.elementBytes
        return Array(UnsafeRawBufferPointer(rebasing: column.region.bytes[(offset * size)..<((offset + 1) * size)]))
    }

    func payloadBytes(at offset: Int) -> [UInt8]? {
        let index = payloadIndex.bytes
        let start = Int(UInt64(littleEndian: index.loadUnaligned(fromByteOffset: offset * 8, as: UInt64.self)))
        let end = Int(UInt64(littleEndian: index.loadUnaligned(fromByteOffset: (offset + 1) * 8, as: UInt64.self)))
        // Offsets from a damaged file must not reach past payload.bin: no payload rather than a crash.
        guard end > start, start >= 0, end <= payloadData.bytes.count else { return nil }
        return Array(UnsafeRawBufferPointer(rebasing: payloadData.bytes[start..<end]))
    }

    func liveOffset(of id: PointID) -> Int? {
        guard let offset = offsets[id], !deleted[offset] else { return nil }
        return offset
    }

    /// The version a deleted copy of `id` was deleted at.
    func deletedVersion(of id: PointID) -> UInt64? {
        guard let offset = offsets[id], deleted[offset] else { return nil }
        return versions[offset]
    }

    /// Marks a live point deleted at `version` (deleted, or moved to an appendable segment).
    mutating func markDeleted(at offset: Int, version: UInt64) {
        guard !deleted[offset] else { return }
        deleted[offset] = true
        versions[offset] = max(versions[offset], version)
        liveCount -= 1
        dirtyOffsets.insert(offset)
        for name in sparseColumns.keys where sparseColumns[name]!.has[offset] { sparseColumns[name]!.liveVectors -= 1 }
    }

    mutating func clearChanges() { dirtyOffsets.removeAll(keepingCapacity: true) }

    /// Forgets dense vector `name` (its files are the caller's to remove).
    mutating func dropColumn(_ name: String) {
        dimensions[name] = nil
        columns[name] = nil
        hasVectorFlags[name] = nil
        vectorIndexes[name] = nil
    }

    func vector(_ name: String, at offset: Int) -> [Float] {
        let column = columns[name]!
        let start = offset * column.dimension * column.elementBytes
        let bytes = column.region.bytes
        return (0..<column.dimension).map { i in
            switch column.datatype {
            case .float16: Float(Float16(bitPattern: UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: start + 2 * i, as: UInt16.self))))
            case .uint8: Float(bytes[start + i])
            case .float32, .turbo4: Float(bitPattern: UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: start + 4 * i, as: UInt32.self)))
            }
        }
    }

    func record(at offset: Int, withPayload: WithPayload, withVector: WithVector) -> PointRecord {
        var vectors: [String: [Float]]?
        var sparse: [String: SparseVector]?
        var multi: [String: MultiVector]?
        if withVector != .none {
            let names: [String] = switch withVector {
            case .none: []
            case .all: Array(dimensions.keys)
            case .named(let wanted): wanted.filter { dimensions[$0] != nil }
            }
            var found: [String: [Float]] = [:]
            for name in names where hasVector(name, at: offset) { found[name] = vector(name, at: offset) }
            vectors = found
            sparse = sparseColumns.filter { withVector.includes($0.key) }.compactMapValues { $0.vector(at: offset) }
            multi = multiColumns.filter { withVector.includes($0.key) }.compactMapValues { $0.vector(at: offset) }
        }
        let payload = withPayload == .none ? nil : withPayload.apply(AppendableSegment.decode(payloadBytes(at: offset)))
        return PointRecord(id: ids[offset], payload: payload, vectors: vectors, sparse: sparse, multi: multi)
    }

    /// Gives the segment exactly the indexes `schema` names: each read from its file in the
    /// segment's directory when that file was written for the same schema, built from the payloads
    /// (and its file written) otherwise. Files of other indexes are removed. A file that cannot be
    /// written only costs a rebuild at the next start.
    mutating func applySchema(_ schema: [String: PayloadFieldSchema], disk: any Disk) {
        indexes = indexes.filter { schema[$0.key] == $0.value.schema }
        for (key, fieldSchema) in schema where indexes[key] == nil {
            let path = joinPath(directory, FieldIndex.fileName(key))
            if let bytes = try? disk.readFile(path), let stored = FieldIndex(decoding: bytes, schema: fieldSchema) {
                indexes[key] = stored
                continue
            }
            let built = FieldIndex(schema: fieldSchema, key: key, segment: self)
            try? disk.writeFileAtomically(path, built.encoded())
            indexes[key] = built
        }
        let wanted = Set(schema.keys.map(FieldIndex.fileName))
        for name in (try? disk.listDirectory(directory)) ?? [] where name.hasPrefix("index-") && !wanted.contains(name) {
            try? disk.removeItem(joinPath(directory, name))
        }
    }

    /// Calls `body` with the float32 elements of vector `name` of the point at `offset`.
    func withVector<R>(_ name: String, at offset: Int, _ body: (UnsafePointer<Float>) -> R) -> R {
        let column = columns[name]!
        if column.datatype == .float32 || column.datatype == .turbo4, let raw = column.region.bytes.baseAddress {
            return body(raw.assumingMemoryBound(to: Float.self) + offset * column.dimension)
        }
        return vector(name, at: offset).withUnsafeBufferPointer { body($0.baseAddress!) }
    }

    /// Calls `body` with each of `offsets` whose point is live and has vector `name`, and its
    /// float32 elements. Rows stored as float32 are asked for `QUIVER_SCAN_AHEAD` offsets before
    /// they are scored: scattered rows then come from memory several at a time.
    func forEachVector(_ name: String, at offsets: [Int32], _ body: (Int, UnsafePointer<Float>) -> Void) {
        guard let column = columns[name], column.dimension > 0, let has = hasVectorFlags[name] else { return }
        if column.datatype == .float32 || column.datatype == .turbo4, let raw = column.region.bytes.baseAddress {
            let base = raw.assumingMemoryBound(to: Float.self), dimension = column.dimension, ahead = Int(QUIVER_SCAN_AHEAD)
            for (i, candidate) in offsets.enumerated() {
                if i + ahead < offsets.count { quiver_prefetch_bytes(base + Int(offsets[i + ahead]) * dimension, dimension * 4) }
                let offset = Int(candidate)
                if !deleted[offset] && has[offset] { body(offset, base + offset * dimension) }
            }
            return
        }
        for candidate in offsets where !deleted[Int(candidate)] && has[Int(candidate)] {
            vector(name, at: Int(candidate)).withUnsafeBufferPointer { body(Int(candidate), $0.baseAddress!) }
        }
    }

    func forEachVector(_ name: String, _ body: (Int, UnsafePointer<Float>) -> Void) {
        guard let column = columns[name], column.dimension > 0, !ids.isEmpty, let has = hasVectorFlags[name] else { return }
        if column.datatype == .float32 || column.datatype == .turbo4, let raw = column.region.bytes.baseAddress {
            let base = raw.assumingMemoryBound(to: Float.self)
            for offset in ids.indices where !deleted[offset] && has[offset] { body(offset, base + offset * column.dimension) }
            return
        }
        for offset in ids.indices where !deleted[offset] && has[offset] {
            vector(name, at: offset).withUnsafeBufferPointer { body(offset, $0.baseAddress!) }
        }
    }

    /// The whole point, as an upsert would write it.
    func point(at offset: Int) -> PointStruct {
        var vectors: [String: [Float]] = [:]
        for name in dimensions.keys where hasVector(name, at: offset) { vectors[name] = vector(name, at: offset) }
        return PointStruct(id: ids[offset], vectors: vectors, sparse: sparseColumns.compactMapValues { $0.vector(at: offset) },
                           multi: multiColumns.compactMapValues { $0.vector(at: offset) }, payload: AppendableSegment.decode(payloadBytes(at: offset)))
    }

    // MARK: Files

    /// Writes the deletions made since the last flush into `ids.bin`.
    func flush(disk: any Disk) throws(DiskError) {
        guard !dirtyOffsets.isEmpty else { return }
        let file = try disk.open(joinPath(directory, "ids.bin"), create: false)
        for run in SegmentFiles.runs(dirtyOffsets.sorted()) {
            var bytes: [UInt8] = []
            for offset in run {
                SegmentFiles.appendIDRecord(ids[offset], deleted: deleted[offset], version: versions[offset], to: &bytes)
            }
            try file.write(bytes, at: UInt64(run.lowerBound * SegmentFiles.idRecordBytes))
        }
        try file.sync()
    }

    /// Where each vector is stored, whether payloads are mapped, and the vector indexes wanted.
    public struct Storage: Sendable, Equatable {
        public var vectorsOnDisk: [String: Bool]
        public var payloadOnDisk: Bool
        /// By vector name; none when indexing is off (`indexing_threshold: 0`).
        public var vectorIndexes: [String: VectorIndexSpec]
        /// Sparse vectors by name.
        public var sparse: [String: SparseStorage]

        public init(vectorsOnDisk: [String: Bool], payloadOnDisk: Bool, vectorIndexes: [String: VectorIndexSpec] = [:],
                    sparse: [String: SparseStorage] = [:]) {
            self.vectorsOnDisk = vectorsOnDisk
            self.payloadOnDisk = payloadOnDisk
            self.vectorIndexes = vectorIndexes
            self.sparse = sparse
        }

        var vectorsStoredOnDisk: Set<String> { Set(vectorsOnDisk.filter(\.value).keys) }
    }

    /// The storage the segment was opened with (its graphs' specs for the indexes it has).
    var storage: Storage {
        Storage(vectorsOnDisk: columns.mapValues(\.onDisk).merging(multiColumns.mapValues(\.onDisk)) { a, _ in a }, payloadOnDisk: payloadOnDisk,
                vectorIndexes: vectorIndexes.mapValues(\.spec).merging(multiIndexes.mapValues(\.spec)) { a, _ in a }, sparse: sparseColumns.mapValues(\.options))
    }

    /// Whether the files must be opened again for `wanted`: vectors or payloads move between
    /// memory and disk, or a graph it has is no longer what `wanted` asks for. (A graph it lacks
    /// is the optimizer's to build.)
    func needsReopening(for wanted: Storage) -> Bool {
        columns.mapValues(\.onDisk) != wanted.vectorsOnDisk.filter { columns[$0.key] != nil }
            || payloadOnDisk != wanted.payloadOnDisk
            || vectorIndexes.contains { name, index in wanted.vectorIndexes[name] != index.spec }
            || multiIndexes.contains { name, index in wanted.vectorIndexes[name] != index.spec }
            || sparseColumns.contains { name, column in (wanted.sparse[name] ?? SparseStorage()) != column.options }
            || multiColumns.contains { name, column in (wanted.vectorsOnDisk[name] ?? false) != column.onDisk }
    }

    static func load(directory: String, disk: any Disk, dimensions: [String: Int], datatypes: [String: Datatype],
                     storage: Storage) throws(DiskError) -> ImmutableSegment {
        let files = SegmentFiles(directory: directory, disk: disk)
        guard let manifest = try files.manifest(), manifest.kind == "immutable" else {
            throw DiskError(operation: "load segment", path: directory, errno: 0, reason: "no manifest of an immutable segment")
        }
        let n = manifest.points
        let (ids, deleted, versions) = try files.readIDs(count: n)
        var offsets: [PointID: Int] = [:]
        offsets.reserveCapacity(n)
        var live = 0
        for (offset, id) in ids.enumerated() {
            offsets[id] = offset
            if !deleted[offset] { live += 1 }
        }
        var columns: [String: Column] = [:]
        var flags: [String: [Bool]] = [:]
        var present: [String: Int] = [:]
        for (name, dimension) in dimensions {
            let datatype = datatypes[name] ?? .float32
            // No file, or one of another dimension or datatype (a vector removed and created
            // again since): the segment has no such vector.
            guard let file = manifest.vectors[name], file.dim == dimension,
                  (file.datatype ?? "float32") == VectorColumn(datatype).datatypeName else { continue }
            present[name] = dimension
            let onDisk = storage.vectorsOnDisk[name] ?? false
            let path = joinPath(directory, file.file)
            let region = onDisk ? try disk.map(path) : try disk.readRegion(path)
            if onDisk { region.adviseRandomAccess() }
            let elementBytes = VectorColumn(datatype).elementBytes
            guard region.count >= n * dimension * elementBytes else {
                throw DiskError(operation: "load segment", path: path, errno: 0, reason: "holds fewer than \(n) vectors")
            }
            let number = SegmentFiles.fileNumber(file.file) ?? 0
            columns[name] = Column(number: number, region: region, datatype: datatype, dimension: dimension, elementBytes: elementBytes, onDisk: onDisk)
            let bytes = try disk.readFile(joinPath(directory, SegmentFiles.flagsFile(of: file.file)))
            flags[name] = (0..<n).map { $0 < bytes.count && bytes[$0] != 0 }
        }
        let indexPath = joinPath(directory, "payload-index.bin"), dataPath = joinPath(directory, "payload.bin")
        let index = storage.payloadOnDisk ? try disk.map(indexPath) : try disk.readRegion(indexPath)
        let data = storage.payloadOnDisk ? try disk.map(dataPath) : try disk.readRegion(dataPath)
        guard index.count == (n + 1) * 8, Int(LittleEndian.read(UInt64.self, index.bytes, at: n * 8)) == data.count else {
            throw DiskError(operation: "load segment", path: indexPath, errno: 0, reason: "payload index does not match payload.bin")
        }
        var segment = ImmutableSegment(directory: directory, ids: ids, versions: ChunkedArray(versions), deleted: ChunkedArray(deleted), offsets: offsets,
                                       liveCount: live, dimensions: present, columns: columns, hasVectorFlags: flags,
                                       payloadIndex: index, payloadData: data, payloadOnDisk: storage.payloadOnDisk)
        var rebuilt = manifest.sparse ?? [:]
        for (name, entry) in manifest.sparse ?? [:] {
            var (column, replaced) = try ImmutableSparseColumn.load(entry, points: n, directory: directory, disk: disk,
                                                                    options: storage.sparse[name] ?? SparseStorage())
            column.liveVectors = column.has.indices.reduce(0) { $0 + (column.has[$1] && !deleted[$1] ? 1 : 0) }
            segment.sparseColumns[name] = column
            if let replaced { rebuilt[name] = replaced }
        }
        // Multivectors in another datatype than the collection's are of a vector removed since.
        for (name, entry) in manifest.multi ?? [:] where (entry.datatype ?? "float32") == VectorColumn(datatypes[name]).datatypeName {
            segment.multiColumns[name] = try ImmutableMultiColumn.load(entry, points: n, directory: directory, disk: disk,
                                                                       datatype: datatypes[name], onDisk: storage.vectorsOnDisk[name] ?? false)
        }
        if rebuilt != (manifest.sparse ?? [:]) {
            var updated = manifest
            updated.sparse = rebuilt
            try files.writeManifest(updated)
        }
        segment.loadVectorIndexes(storage.vectorIndexes, disk: disk)
        return segment
    }

    /// The same files opened with another storage mode (no rewrite: the format does not depend on it).
    func reopened(disk: any Disk, datatypes: [String: Datatype], storage: Storage) throws(DiskError) -> ImmutableSegment {
        var result = try Self.load(directory: directory, disk: disk, dimensions: dimensions, datatypes: datatypes, storage: storage)
        // Deletions not flushed yet live only in memory; carry them over, and the payload indexes.
        for offset in dirtyOffsets { result.markDeleted(at: offset, version: versions[offset]) }
        result.indexes = indexes
        return result
    }

    /// The dense vectors of any of `sources`.
    static func dimensions(of sources: [any SegmentData]) -> [String: Int] {
        sources.reduce(into: [:]) { result, source in result.merge(source.dimensions) { first, _ in first } }
    }

    /// Writes the live points of `sources` (deduplicated by id, highest version winning) in id
    /// order as a new immutable segment in `directory`: data files fsynced, then the manifest.
    /// Returns where each source's points went: per source, the new offset of each of its
    /// offsets, or -1 for a point left out.
    @discardableResult
    static func write(from sources: [any SegmentData], directory: String, disk: any Disk,
                      datatypes: [String: Datatype], version: UInt64, uuid: String,
                      sparse sparseStorage: [String: SparseStorage] = [:]) throws(DiskError) -> [[Int32]] {
        let dimensions = Self.dimensions(of: sources)
        let sparseNames = Set(sources.flatMap(\.sparseNames)).sorted()
        var sparseVectors = [[SparseVector?]](repeating: [], count: sparseNames.count)
        let multiNames = Set(sources.flatMap(\.multiNames)).sorted()
        var multiVectors = [[MultiVector?]](repeating: [], count: multiNames.count)
        var chosen: [PointID: (source: Int, offset: Int)] = [:]
        for (s, source) in sources.enumerated() {
            for offset in 0..<source.totalCount where source.isLive(at: offset) {
                let id = source.id(at: offset)
                if let other = chosen[id], sources[other.source].version(at: other.offset) >= source.version(at: offset) { continue }
                chosen[id] = (s, offset)
            }
        }
        let order = chosen.keys.sorted()
        try disk.removeItem(directory)
        try disk.createDirectories(directory, below: parentDirectory(of: directory))
        let names = dimensions.keys.sorted()
        let ids = try BufferedWriter(disk: disk, path: joinPath(directory, "ids.bin"))
        let payloadIndex = try BufferedWriter(disk: disk, path: joinPath(directory, "payload-index.bin"))
        let payloadData = try BufferedWriter(disk: disk, path: joinPath(directory, "payload.bin"))
        var vectorWriters: [BufferedWriter] = []
        var flagWriters: [BufferedWriter] = []
        var manifestVectors: [String: SegmentFiles.Manifest.Vector] = [:]
        for (i, name) in names.enumerated() {
            let file = "vectors-\(i).bin"
            manifestVectors[name] = .init(file: file, dim: dimensions[name]!, datatype: VectorColumn(datatypes[name]).datatypeName)
            vectorWriters.append(try BufferedWriter(disk: disk, path: joinPath(directory, file)))
            flagWriters.append(try BufferedWriter(disk: disk, path: joinPath(directory, SegmentFiles.flagsFile(of: file))))
        }
        var payloadOffset: UInt64 = 0
        var record: [UInt8] = []
        for id in order {
            let (s, offset) = chosen[id]!
            let source = sources[s]
            record.removeAll(keepingCapacity: true)
            SegmentFiles.appendIDRecord(id, deleted: false, version: source.version(at: offset), to: &record)
            try ids.append(record)
            record.removeAll(keepingCapacity: true)
            LittleEndian.append(payloadOffset, to: &record)
            try payloadIndex.append(record)
            if let payload = source.payloadBytes(at: offset) {
                try payloadData.append(payload)
                payloadOffset += UInt64(payload.count)
            }
            for (i, name) in names.enumerated() {
                // A source written before the vector was added has no file for it: no vector.
                let has = source.dimensions[name] != nil && source.hasVector(name, at: offset)
                try flagWriters[i].append([has ? 1 : 0])
                try vectorWriters[i].append(source.dimensions[name] != nil ? source.vectorBytes(name, at: offset)
                                            : [UInt8](repeating: 0, count: dimensions[name]! * VectorColumn(datatypes[name]).elementBytes))
            }
            for (i, name) in sparseNames.enumerated() { sparseVectors[i].append(source.sparseVector(name, at: offset)) }
            for (i, name) in multiNames.enumerated() { multiVectors[i].append(source.multiVector(name, at: offset)) }
        }
        var manifestSparse: [String: SegmentFiles.Manifest.Sparse] = [:]
        for (i, name) in sparseNames.enumerated() {
            manifestSparse[name] = try ImmutableSparseColumn.write(sparseVectors[i], number: i, directory: directory, disk: disk,
                                                                   options: sparseStorage[name] ?? SparseStorage())
        }
        var manifestMulti: [String: SegmentFiles.Manifest.Multi] = [:]
        for (i, name) in multiNames.enumerated() {
            guard let dimension = multiVectors[i].lazy.compactMap({ $0?.dimension }).first else { continue }
            manifestMulti[name] = try ImmutableMultiColumn.write(multiVectors[i], number: i, dimension: dimension, datatype: datatypes[name],
                                                                 directory: directory, disk: disk)
        }
        record.removeAll(keepingCapacity: true)
        LittleEndian.append(payloadOffset, to: &record)
        try payloadIndex.append(record)
        for writer in [ids, payloadIndex, payloadData] + vectorWriters + flagWriters { try writer.finish() }
        let manifest = SegmentFiles.Manifest(format: 1, version: version, points: order.count, vectors: manifestVectors,
                                             uuid: uuid, kind: "immutable", sparse: manifestSparse.isEmpty ? nil : manifestSparse,
                                             multi: manifestMulti.isEmpty ? nil : manifestMulti)
        try SegmentFiles(directory: directory, disk: disk).writeManifest(manifest)
        try disk.syncDirectory(parentDirectory(of: directory))
        var placements = sources.map { [Int32](repeating: -1, count: $0.totalCount) }
        for (offset, id) in order.enumerated() {
            let (s, old) = chosen[id]!
            placements[s][old] = Int32(offset)
        }
        return placements
    }
}

/// Appends to a new file through a 4 MiB buffer; `finish` writes the rest and fsyncs.
final class BufferedWriter {
    private let file: any DiskFile
    private var buffer: [UInt8] = []
    private var written: UInt64 = 0
    private static let capacity = 4 << 20

    init(disk: any Disk, path: String) throws(DiskError) {
        file = try disk.open(path, create: true)
        try file.truncate(to: 0)
        buffer.reserveCapacity(Self.capacity)
    }

    func append(_ bytes: [UInt8]) throws(DiskError) {
        buffer += bytes
        if buffer.count >= Self.capacity { try drain() }
    }

    private func drain() throws(DiskError) {
        try file.write(buffer, at: written)
        written += UInt64(buffer.count)
        buffer.removeAll(keepingCapacity: true)
    }

    func finish() throws(DiskError) {
        try drain()
        try file.sync()
        file.close()
    }
}
