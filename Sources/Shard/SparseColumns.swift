import DiskIO
import QuiverModel

/// One sparse vector name of an immutable segment:
///
/// | file | content |
/// |---|---|
/// | `sparse-<i>.bin` | the vectors, one after another (`SparseCoding`) |
/// | `sparse-<i>-offsets.bin` | N + 1 little-endian u64: point j's vector is bytes `[o[j], o[j+1])`, none when empty |
/// | `has-sparse-<i>.bin` | N bytes, 1 where the point has the vector (perhaps with no dimension) |
/// | `sparse-<i>-postings.bin` | the inverted index (`SparseInvertedIndex`); its CRC-32C is in the manifest |
///
/// The vectors and the index are memory-mapped when the vector's `index.on_disk` is true, read
/// into memory otherwise. An index whose checksum does not match is rebuilt from the vectors.
struct ImmutableSparseColumn: Sendable {
    let offsets: ByteRegion
    let data: ByteRegion
    let has: [Bool]
    let index: SparseInvertedIndex
    let options: SparseStorage
    /// Live points with the vector (the segment keeps it current as points are deleted): the
    /// `N` of the idf modifier.
    var liveVectors = 0

    static func files(_ i: Int) -> (data: String, offsets: String, has: String, postings: String) {
        ("sparse-\(i).bin", "sparse-\(i)-offsets.bin", "has-sparse-\(i).bin", "sparse-\(i)-postings.bin")
    }

    func vector(at offset: Int) -> SparseVector? {
        guard offset < has.count, has[offset] else { return nil }
        return Self.vector(at: offset, offsets: offsets, data: data)
    }

    /// Point `offset`'s vector in `data` (an empty one when it has no bytes there).
    static func vector(at offset: Int, offsets: ByteRegion, data: ByteRegion) -> SparseVector? {
        let start = Int(UInt64(littleEndian: offsets.bytes.loadUnaligned(fromByteOffset: offset * 8, as: UInt64.self)))
        let end = Int(UInt64(littleEndian: offsets.bytes.loadUnaligned(fromByteOffset: offset * 8 + 8, as: UInt64.self)))
        guard end > start else { return SparseVector() }
        return SparseCoding.decode(data.bytes, at: start, end: end)
    }

    var storageBytes: Int { data.count }

    /// Writes the files of one name for the points `vectors` gives (nil: no such vector) in offset
    /// order; returns the manifest entry.
    static func write(_ vectors: [SparseVector?], number i: Int, directory: String, disk: any Disk,
                      options: SparseStorage) throws(DiskError) -> SegmentFiles.Manifest.Sparse {
        let names = files(i)
        let data = try BufferedWriter(disk: disk, path: joinPath(directory, names.data))
        var offsets: [UInt8] = []
        offsets.reserveCapacity((vectors.count + 1) * 8)
        var flags: [UInt8] = []
        flags.reserveCapacity(vectors.count)
        var position: UInt64 = 0
        var indexed: [(offset: Int, vector: SparseVector)] = []
        for (offset, vector) in vectors.enumerated() {
            LittleEndian.append(position, to: &offsets)
            flags.append(vector == nil ? 0 : 1)
            guard let vector, !vector.isEmpty else { continue }
            let bytes = SparseCoding.encode(vector)
            try data.append(bytes)
            position += UInt64(bytes.count)
            indexed.append((offset, vector))
        }
        LittleEndian.append(position, to: &offsets)
        try data.finish()
        try disk.writeFile(joinPath(directory, names.offsets), offsets)
        try disk.writeFile(joinPath(directory, names.has), flags)
        let postings = SparseInvertedIndex.build(indexed, datatype: options.datatype)
        try disk.writeFile(joinPath(directory, names.postings), postings)
        return .init(file: "sparse-\(i)", postingsChecksum: postings.withUnsafeBytes(SparseInvertedIndex.checksum),
                     datatype: options.datatype?.rawValue)
    }

    /// Opens the files of `entry` for `n` points; rebuilds a damaged index (or one built for
    /// another datatype) from the vectors.
    static func load(_ entry: SegmentFiles.Manifest.Sparse, points n: Int, directory: String, disk: any Disk,
                     options: SparseStorage) throws(DiskError) -> (ImmutableSparseColumn, rebuilt: SegmentFiles.Manifest.Sparse?) {
        let prefix = entry.file
        let dataPath = joinPath(directory, prefix + ".bin"), offsetsPath = joinPath(directory, prefix + "-offsets.bin")
        let hasPath = joinPath(directory, "has-" + prefix + ".bin"), postingsPath = joinPath(directory, prefix + "-postings.bin")
        let data = options.onDisk ? try disk.map(dataPath) : try disk.readRegion(dataPath)
        let offsets = try disk.readRegion(offsetsPath)
        guard offsets.count == (n + 1) * 8,
              Int(UInt64(littleEndian: offsets.bytes.loadUnaligned(fromByteOffset: n * 8, as: UInt64.self))) == data.count else {
            throw DiskError(operation: "load segment", path: offsetsPath, errno: 0, reason: "sparse vector offsets do not match \(prefix).bin")
        }
        let flags = try disk.readFile(hasPath)
        let has = (0..<n).map { $0 < flags.count && flags[$0] != 0 }
        var rebuilt: SegmentFiles.Manifest.Sparse?
        var index: SparseInvertedIndex?
        if disk.fileExists(postingsPath), entry.datatype == options.datatype?.rawValue {
            let region = options.onDisk ? try disk.map(postingsPath) : try disk.readRegion(postingsPath)
            if SparseInvertedIndex.checksum(region.bytes) == entry.postingsChecksum { index = SparseInvertedIndex(region: region) }
        }
        if index == nil {
            var indexed: [(offset: Int, vector: SparseVector)] = []
            for offset in 0..<n where has[offset] {
                if let vector = vector(at: offset, offsets: offsets, data: data), !vector.isEmpty { indexed.append((offset, vector)) }
            }
            let postings = SparseInvertedIndex.build(indexed, datatype: options.datatype)
            try disk.writeFileAtomically(postingsPath, postings)
            let region = options.onDisk ? try disk.map(postingsPath) : try disk.readRegion(postingsPath)
            guard let built = SparseInvertedIndex(region: region) else {
                throw DiskError(operation: "load segment", path: postingsPath, errno: 0, reason: "the rebuilt sparse index does not read back")
            }
            index = built
            rebuilt = .init(file: prefix, postingsChecksum: postings.withUnsafeBytes(SparseInvertedIndex.checksum),
                            datatype: options.datatype?.rawValue)
        }
        return (ImmutableSparseColumn(offsets: offsets, data: data, has: has, index: index!, options: options), rebuilt)
    }
}

/// Where one sparse vector's data and index live, and the datatype of the index's weights.
public struct SparseStorage: Sendable, Equatable {
    public var onDisk: Bool
    public var datatype: Datatype?

    public init(onDisk: Bool = false, datatype: Datatype? = nil) {
        self.onDisk = onDisk
        self.datatype = datatype
    }
}
