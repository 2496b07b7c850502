import CChecksum
import DiskIO
import QuiverJSON
import QuiverModel

/// An appendable segment on disk, in `<shard>/segments/<uuid>/`. Flushes write only what changed.
///
/// | file | content |
/// |---|---|
/// | `manifest.json` | `{"format":1,"version":V,"points":N,"vectors":{"name":{"file":"vectors-0.bin","dim":d}}}`; written last, atomically |
/// | `ids.bin` | N records of 32 bytes: u8 id tag (0 number, 1 UUID), u8 deleted, 6 zero bytes, u64 number or UUID high half, u64 UUID low half, u64 version |
/// | `vectors-<i>.bin` | N × dim little-endian f32 for the i-th vector name (in manifest order) |
/// | `has-vector-<i>.bin` | N bytes, 1 where the point has that vector |
/// | `payload.log` | records: u32 JSON length (0xFFFFFFFF = no payload), u32 CRC-32C of the rest, u64 offset, JSON; the last record of an offset wins; a damaged tail ends the log |
/// | `tombstones.log` | 32-byte records: u32 CRC-32C of bytes 4..<32, u8 tag, 3 zero bytes, u64 a, u64 b, u64 version — deleted ids and when |
/// | `sparse.log` | records: u32 body length, u32 CRC-32C of the body; body: u64 offset, u16 count, per sparse vector u16 name length, name UTF-8, the vector (`SparseCoding`) — the point's sparse vectors; the last record of an offset wins |
/// | `multi.log` | records as in `sparse.log`, each vector a multivector (`MultiCoding`) |
///
/// Write order within a flush: vectors, has-vector, payload and tombstone logs (fsynced), then
/// `ids.bin` (fsynced), then the manifest. A point's stored version therefore never runs ahead of
/// its stored content, and the WAL replayed from the manifest's version repairs anything newer.
struct SegmentFiles: Sendable {
    static let idRecordBytes = 32
    static let tombstoneRecordBytes = 32

    struct Manifest: Codable, Equatable {
        struct Vector: Codable, Equatable {
            var file: String
            var dim: Int
            /// Element type of the file: float32 (when absent), float16 or uint8.
            var datatype: String?
        }
        var format: Int
        /// Sequence number of the last WAL operation the files contain.
        var version: UInt64
        var points: Int
        var vectors: [String: Vector]
        /// Identifies this set of files (reported by `GET …/optimizations`).
        var uuid: String?
        /// `appendable` (when absent) or `immutable` (`ImmutableSegment`).
        var kind: String?
        /// An immutable segment's sparse vectors by name (`ImmutableSparseColumn`).
        struct Sparse: Codable, Equatable {
            /// File name prefix: `sparse-<i>`.
            var file: String
            var postingsChecksum: UInt32
            /// The datatype the index's weights were written in (float32 when absent).
            var datatype: String?
        }
        var sparse: [String: Sparse]?
        /// An immutable segment's multivectors by name (`ImmutableMultiColumn`).
        struct Multi: Codable, Equatable {
            /// File name prefix: `multi-<i>`.
            var file: String
            var dim: Int
            var datatype: String?
        }
        var multi: [String: Multi]?
    }

    let directory: String
    let disk: any Disk

    var manifestPath: String { joinPath(directory, "manifest.json") }

    func manifest() throws(DiskError) -> Manifest? {
        guard disk.fileExists(manifestPath) else { return nil }
        let bytes = try disk.readFile(manifestPath)
        guard let manifest = try? JSONValueDecoder().decode(Manifest.self, from: bytes), manifest.format == 1 else {
            throw DiskError(operation: "read manifest", path: manifestPath, errno: 0, reason: "manifest is damaged or of an unknown format")
        }
        return manifest
    }

    static func vectorFiles(_ segment: AppendableSegment) -> [String: Manifest.Vector] {
        var result: [String: Manifest.Vector] = [:]
        for (name, dimension) in segment.dimensions {
            result[name] = Manifest.Vector(file: "vectors-\(segment.fileNumbers[name]!).bin", dim: dimension,
                                           datatype: segment.vectors[name]!.datatypeName)
        }
        return result
    }

    // MARK: Writing

    /// Persists what changed since the last flush and then the manifest naming `version`.
    func flush(_ segment: AppendableSegment, version: UInt64, uuid: String) throws(DiskError) {
        // segments/<uuid> inside the shard's directory, never the shard's directory itself.
        try disk.createDirectories(directory, below: parentDirectory(of: parentDirectory(of: directory)))
        let dirty = segment.dirtyOffsets.sorted()
        let vectorFiles = Self.vectorFiles(segment)
        for (name, file) in vectorFiles {
            let vectors = try disk.open(joinPath(directory, file.file), create: true)
            let flags = try disk.open(joinPath(directory, Self.flagsFile(of: file.file)), create: true)
            let column = segment.vectors[name]!
            let has = segment.hasVector[name]!
            for run in Self.runs(dirty) {
                let start = run.lowerBound * file.dim
                try column.write(start..<(run.upperBound * file.dim), to: vectors, at: UInt64(start * column.elementBytes))
                try flags.write(has[run].map { $0 ? 1 : 0 }, at: UInt64(run.lowerBound))
            }
            try vectors.sync()
            try flags.sync()
        }
        if !segment.dirtyPayloads.isEmpty {
            // Written in pieces of a few MiB: a large flush (a whole compacted segment's payloads)
            // does not gather every record in memory first.
            let file = try disk.open(joinPath(directory, "payload.log"), create: true)
            defer { file.close() }
            var end = try file.size()
            var log: [UInt8] = []
            func writePiece() throws(DiskError) {
                try file.write(log, at: end)
                end += UInt64(log.count)
                log.removeAll(keepingCapacity: true)
            }
            for offset in segment.dirtyPayloads.sorted() {
                Self.appendPayloadRecord(offset: offset, payload: segment.payloads[offset], to: &log)
                if log.count >= 4 << 20 { try writePiece() }
            }
            if !log.isEmpty { try writePiece() }
            try file.sync()
        }
        if !segment.dirtyVariable.isEmpty {
            var sparseLog: [UInt8] = [], multiLog: [UInt8] = []
            for offset in segment.dirtyVariable.sorted() {
                if !segment.sparse.isEmpty {
                    Self.appendVectorRecord(offset: offset, vectors: segment.sparse.compactMapValues { $0.vectors[offset] },
                                            encode: SparseCoding.encode, to: &sparseLog)
                }
                if !segment.multi.isEmpty {
                    Self.appendVectorRecord(offset: offset, vectors: segment.multi.compactMapValues { $0.vectors[offset] },
                                            encode: MultiCoding.encode, to: &multiLog)
                }
            }
            if segment.rewriteLogs {
                // Every offset is dirty: these records replace the logs (a removed name leaves none).
                try disk.writeFileAtomically(joinPath(directory, "sparse.log"), sparseLog)
                try disk.writeFileAtomically(joinPath(directory, "multi.log"), multiLog)
            } else {
                if !sparseLog.isEmpty { try append(sparseLog, to: joinPath(directory, "sparse.log")) }
                if !multiLog.isEmpty { try append(multiLog, to: joinPath(directory, "multi.log")) }
            }
        }
        if !segment.newTombstones.isEmpty {
            var log: [UInt8] = []
            for (id, version) in segment.newTombstones { Self.appendTombstone(id, version, to: &log) }
            try append(log, to: joinPath(directory, "tombstones.log"))
        }
        let ids = try disk.open(joinPath(directory, "ids.bin"), create: true)
        for run in Self.runs(dirty) {
            var bytes: [UInt8] = []
            bytes.reserveCapacity(run.count * Self.idRecordBytes)
            for offset in run {
                Self.appendIDRecord(segment.ids[offset], deleted: segment.deleted[offset], version: segment.versions[offset], to: &bytes)
            }
            try ids.write(bytes, at: UInt64(run.lowerBound * Self.idRecordBytes))
        }
        try ids.sync()
        try writeManifest(Manifest(format: 1, version: version, points: segment.ids.count, vectors: vectorFiles, uuid: uuid))
    }

    func writeManifest(_ manifest: Manifest) throws(DiskError) {
        let encoded: [UInt8]
        do {
            encoded = try JSONValueEncoder().encodeBytes(manifest)
        } catch {
            preconditionFailure("a manifest always encodes: \(error)")
        }
        try disk.writeFileAtomically(manifestPath, encoded)
    }

    static func flagsFile(of vectorFile: String) -> String {
        "has-" + vectorFile.replacingPrefix("vectors-", with: "vector-")
    }

    private func append(_ bytes: [UInt8], to path: String) throws(DiskError) {
        let file = try disk.open(path, create: true)
        try file.write(bytes, at: try file.size())
        try file.sync()
    }

    /// Consecutive runs of sorted offsets, so each run is one write.
    static func runs(_ sorted: [Int]) -> [Range<Int>] {
        var result: [Range<Int>] = []
        var start: Int?
        var previous = -2
        for offset in sorted {
            if offset != previous + 1 {
                if let s = start { result.append(s..<(previous + 1)) }
                start = offset
            }
            previous = offset
        }
        if let s = start { result.append(s..<(previous + 1)) }
        return result
    }

    static func appendIDRecord(_ id: PointID, deleted: Bool, version: UInt64, to bytes: inout [UInt8]) {
        let (tag, a, b) = id.storageWords
        bytes.append(tag)
        bytes.append(deleted ? 1 : 0)
        bytes += [UInt8](repeating: 0, count: 6)
        put(a, &bytes)
        put(b, &bytes)
        put(version, &bytes)
    }

    static func appendPayloadRecord(offset: Int, payload: [UInt8]?, to log: inout [UInt8]) {
        let json = payload ?? []
        var body: [UInt8] = []
        put(UInt64(offset), &body)
        body += json
        put(payload == nil ? UInt32.max : UInt32(json.count), &log)
        put(body.withUnsafeBytes { quiver_crc32c(0, $0.baseAddress, $0.count) }, &log)
        log += body
    }

    /// A record of `sparse.log` or `multi.log`: the point's vectors of that kind.
    static func appendVectorRecord<V>(offset: Int, vectors: [String: V], encode: (V, inout [UInt8]) -> Void, to log: inout [UInt8]) {
        var body: [UInt8] = []
        put(UInt64(offset), &body)
        put(UInt16(vectors.count), &body)
        for name in vectors.keys.sorted() {
            put(UInt16(name.utf8.count), &body)
            body += name.utf8
            encode(vectors[name]!, &body)
        }
        put(UInt32(body.count), &log)
        put(body.withUnsafeBytes { quiver_crc32c(0, $0.baseAddress, $0.count) }, &log)
        log += body
    }

    /// Calls `body` with each record's offset and sparse vectors, up to the first damaged record.
    static func readSparseLog(_ log: [UInt8], _ body: (Int, [String: SparseVector]) -> Void) {
        readVectorLog(log, length: { bytes, at in 4 + 8 * Int(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: at, as: UInt32.self))) },
                      decode: { SparseCoding.decode($0, at: $1, end: $2) }, body)
    }

    /// Calls `body` with each record's offset and multivectors, up to the first damaged record.
    static func readMultiLog(_ log: [UInt8], _ body: (Int, [String: MultiVector]) -> Void) {
        readVectorLog(log, length: { bytes, at in MultiCoding.length(bytes, at: at) ?? Int.max / 2 },
                      decode: { MultiCoding.decode($0, at: $1, end: $2) }, body)
    }

    /// Reads records written by `appendVectorRecord`: `length` gives an encoded vector's size from
    /// its first bytes, `decode` the vector in a range.
    static func readVectorLog<V>(_ log: [UInt8], length vectorLength: (UnsafeRawBufferPointer, Int) -> Int,
                                 decode: (UnsafeRawBufferPointer, Int, Int) -> V?, _ body: (Int, [String: V]) -> Void) {
        var at = 0
        while at + 8 <= log.count {
            let length = Int(u32(log, at))
            let end = at + 8 + length
            guard length >= 10, end <= log.count else { return }
            let crc = log.withUnsafeBytes { quiver_crc32c(0, $0.baseAddress! + at + 8, length) }
            guard crc == u32(log, at + 4) else { return }
            let offset = Int(u64(log, at + 8))
            let count = Int(LittleEndian.read(UInt16.self, log, at: at + 16))
            var position = at + 18
            var vectors: [String: V] = [:]
            for _ in 0..<count {
                guard position + 2 <= end else { return }
                let nameLength = Int(LittleEndian.read(UInt16.self, log, at: position))
                position += 2
                guard position + nameLength + 4 <= end else { return }
                let name = String(decoding: log[position..<(position + nameLength)], as: UTF8.self)
                position += nameLength
                let vectorEnd = position + log.withUnsafeBytes { vectorLength($0, position) }
                guard vectorEnd <= end, let vector = log.withUnsafeBytes({ decode($0, position, vectorEnd) }) else { return }
                vectors[name] = vector
                position = vectorEnd
            }
            body(offset, vectors)
            at = end
        }
    }

    static func appendTombstone(_ id: PointID, _ version: UInt64, to log: inout [UInt8]) {
        var body: [UInt8] = []
        let (tag, a, b) = id.storageWords
        body.append(tag)
        body += [0, 0, 0]
        put(a, &body)
        put(b, &body)
        put(version, &body)
        put(body.withUnsafeBytes { quiver_crc32c(0, $0.baseAddress, $0.count) }, &log)
        log += body
    }

    static func put<T: FixedWidthInteger>(_ value: T, _ out: inout [UInt8]) {
        LittleEndian.append(value, to: &out)
    }

    // MARK: Loading

    /// Ids, deletion flags and versions of the first `count` records of `ids.bin`.
    func readIDs(count n: Int) throws(DiskError) -> ([PointID], [Bool], [UInt64]) {
        let idBytes = try disk.readFile(joinPath(directory, "ids.bin"))
        guard idBytes.count >= n * Self.idRecordBytes else {
            throw DiskError(operation: "load segment", path: directory, errno: 0, reason: "ids.bin holds fewer than \(n) points")
        }
        var ids: [PointID] = []
        var deleted: [Bool] = []
        var versions: [UInt64] = []
        ids.reserveCapacity(n)
        deleted.reserveCapacity(n)
        versions.reserveCapacity(n)
        for i in 0..<n {
            let base = i * Self.idRecordBytes
            let a = Self.u64(idBytes, base + 8), b = Self.u64(idBytes, base + 16)
            ids.append(PointID(storageTag: idBytes[base], a, b))
            deleted.append(idBytes[base + 1] != 0)
            versions.append(Self.u64(idBytes, base + 24))
        }
        return (ids, deleted, versions)
    }

    /// The segment as of its last flush, or nil when it was never flushed.
    func load(dimensions: [String: Int], datatypes: [String: Datatype] = [:],
              memory: SegmentMemory = .arrays) throws(DiskError) -> (AppendableSegment, Manifest)? {
        guard let manifest = try manifest() else { return nil }
        let n = manifest.points
        let (ids, deleted, versions) = try readIDs(count: n)
        var vectors: [String: VectorColumn] = [:]
        var hasVector: [String: [Bool]] = [:]
        // A vector added after the last flush gets a file number no entry of the manifest on disk
        // uses, and the next flush writes its file in full.
        var fileNumbers: [String: Int] = [:]
        var nextFileNumber = 1 + (manifest.vectors.values.compactMap { Self.fileNumber($0.file) }.max() ?? -1)
        var added = false
        for name in dimensions.keys.sorted() {
            let dimension = dimensions[name]!
            let datatype = datatypes[name]
            // A file of another dimension or datatype is of a vector removed and created again
            // since: its data does not carry over.
            guard let entry = manifest.vectors[name], entry.dim == dimension,
                  (entry.datatype ?? "float32") == VectorColumn(datatype).datatypeName else {
                var column = memory.column(name, datatype)
                column.appendZeros(n * dimension)
                vectors[name] = column
                hasVector[name] = [Bool](repeating: false, count: n)
                fileNumbers[name] = nextFileNumber
                nextFileNumber += 1
                added = true
                continue
            }
            let file = entry
            fileNumbers[name] = Self.fileNumber(file.file) ?? 0
            let path = joinPath(directory, file.file)
            let flags = try disk.readFile(joinPath(directory, Self.flagsFile(of: file.file)))
            if let scratch = memory.scratch(for: name) {
                // Through a mapping: the file's bytes need not pass through process memory.
                let region = try disk.map(path)
                vectors[name] = withExtendedLifetime(region) {
                    VectorColumn.load(datatype, bytes: region.bytes, count: n * dimension, in: scratch)
                }
            } else {
                let raw = try disk.readFile(path)
                vectors[name] = raw.withUnsafeBytes { VectorColumn.load(datatype, bytes: $0, count: n * dimension) }
            }
            hasVector[name] = (0..<n).map { $0 < flags.count && flags[$0] != 0 }
        }
        // Read through a mapping, and only each offset's last record copied (into scratch memory
        // where payloads are stored on disk): the log need not pass through process memory.
        var payloads = PayloadColumn(in: memory.payloadScratch())
        let payloadPath = joinPath(directory, "payload.log")
        let log = disk.fileExists(payloadPath) ? try disk.map(payloadPath) : .empty
        withExtendedLifetime(log) {
            var latest = [Range<Int>?](repeating: nil, count: n)
            Self.readPayloadLog(log.bytes) { offset, range in
                if offset < n { latest[offset] = range }
            }
            for range in latest {
                payloads.append(range.map { Array(UnsafeRawBufferPointer(rebasing: log.bytes[$0])) })
            }
        }
        var sparse: [String: AppendableSparseColumn] = [:]
        let sparsePath = joinPath(directory, "sparse.log")
        if disk.fileExists(sparsePath) {
            Self.readSparseLog(try disk.readFile(sparsePath)) { offset, vectors in
                guard offset < n else { return }
                for name in sparse.keys { sparse[name]!.set(nil, at: offset) }
                for (name, vector) in vectors { sparse[name, default: .init()].set(vector, at: offset) }
            }
        }
        var multi: [String: AppendableMultiColumn] = [:]
        let multiPath = joinPath(directory, "multi.log")
        if disk.fileExists(multiPath) {
            Self.readMultiLog(try disk.readFile(multiPath)) { offset, vectors in
                guard offset < n else { return }
                for name in multi.keys { multi[name]!.set(nil, at: offset) }
                for (name, vector) in vectors { multi[name, default: .init()].set(vector, at: offset) }
            }
        }
        var tombstones: [PointID: UInt64] = [:]
        let tombstonePath = joinPath(directory, "tombstones.log")
        if disk.fileExists(tombstonePath) {
            let log = try disk.readFile(tombstonePath)
            var at = 0
            while at + Self.tombstoneRecordBytes <= log.count {
                let body = Array(log[(at + 4)..<(at + Self.tombstoneRecordBytes)])
                guard Self.u32(log, at) == body.withUnsafeBytes({ quiver_crc32c(0, $0.baseAddress, $0.count) }) else { break }
                let id = PointID(storageTag: body[0], Self.u64(body, 4), Self.u64(body, 12))
                let version = Self.u64(body, 20)
                if tombstones[id].map({ $0 < version }) ?? true { tombstones[id] = version }
                at += Self.tombstoneRecordBytes
            }
        }
        var segment = AppendableSegment(loaded: dimensions, ids: ids, versions: versions, deleted: deleted,
                                        payloads: payloads, vectors: vectors, hasVector: hasVector, sparse: sparse, multi: multi,
                                        tombstones: tombstones, fileNumbers: fileNumbers, nextFileNumber: nextFileNumber,
                                        memory: memory)
        if added { segment.markAllChanged() }
        return (segment, manifest)
    }

    /// `n` of a file named `vectors-<n>.bin`.
    static func fileNumber(_ file: String) -> Int? { Int(file.dropFirst("vectors-".count).dropLast(".bin".count)) }

    /// Calls `body` with each record's offset and where its JSON bytes are in `log` (nil: no
    /// payload), up to the first damaged record.
    static func readPayloadLog(_ log: UnsafeRawBufferPointer, _ body: (Int, Range<Int>?) -> Void) {
        func u32(_ at: Int) -> UInt32 { UInt32(littleEndian: log.loadUnaligned(fromByteOffset: at, as: UInt32.self)) }
        var at = 0
        while at + 16 <= log.count {
            let length = u32(at)
            let jsonLength = length == UInt32.max ? 0 : Int(length)
            let end = at + 16 + jsonLength
            guard end <= log.count else { return }
            guard quiver_crc32c(0, log.baseAddress! + at + 8, 8 + jsonLength) == u32(at + 4) else { return }
            let offset = Int(UInt64(littleEndian: log.loadUnaligned(fromByteOffset: at + 8, as: UInt64.self)))
            if length == UInt32.max {
                body(offset, nil)
            } else if jsonLength > 0 && log[at + 16] == UInt8(ascii: "{") {
                body(offset, (at + 16)..<end)
            } else {
                return
            }
            at = end
        }
    }

    static func u32(_ bytes: [UInt8], _ at: Int) -> UInt32 { LittleEndian.read(UInt32.self, bytes, at: at) }

    static func u64(_ bytes: [UInt8], _ at: Int) -> UInt64 { LittleEndian.read(UInt64.self, bytes, at: at) }
}

extension String {
    func replacingPrefix(_ prefix: String, with replacement: String) -> String {
        hasPrefix(prefix) ? replacement + dropFirst(prefix.count) : self
    }
}
