import CVectorKernels
import DiskIO
public import QuiverModel
import VectorIndex

/// A vector kept per offset in a map rather than a fixed-width column: sparse vectors and
/// multivectors, whose size varies from point to point.
protocol VariableVector: Sendable, Equatable {
    var storageBytes: Int { get }
}

extension SparseVector: VariableVector {}

extension MultiVector: VariableVector {
    /// Bytes in storage: u32 dimension, u32 count, the elements as float32.
    var storageBytes: Int { 8 + 4 * flat.count }
}

/// The vectors of one sparse or multivector name in an appendable segment, by offset, in memory.
struct AppendableVectorMap<Vector: VariableVector>: Sendable {
    private(set) var vectors: [Int: Vector] = [:]
    /// Bytes of the vectors, kept as they change (the optimizer asks for it on every plan).
    private(set) var storageBytes = 0

    mutating func set(_ vector: Vector?, at offset: Int) {
        storageBytes += (vector?.storageBytes ?? 0) - (vectors[offset]?.storageBytes ?? 0)
        vectors[offset] = vector
    }
}

/// The sparse vectors of one name in an appendable segment, with an inverted index kept current
/// as they change (dimension → offset → weight), so a search and the idf statistics read the
/// postings of the query's dimensions only.
struct AppendableSparseColumn: Sendable {
    private var map = AppendableVectorMap<SparseVector>()
    private(set) var postings: [UInt32: [Int: Float]] = [:]

    var vectors: [Int: SparseVector] { map.vectors }
    var storageBytes: Int { map.storageBytes }

    mutating func set(_ vector: SparseVector?, at offset: Int) {
        if let old = map.vectors[offset] {
            for index in old.indices {
                postings[index]?[offset] = nil
                if postings[index]?.isEmpty == true { postings[index] = nil }
            }
        }
        if let vector { for (index, value) in zip(vector.indices, vector.values) { postings[index, default: [:]][offset] = value } }
        map.set(vector, at: offset)
    }
}
typealias AppendableMultiColumn = AppendableVectorMap<MultiVector>

/// How multivectors are written in `multi.log`: u32 dimension, u32 count, count × dimension f32.
enum MultiCoding {
    static func encode(_ vector: MultiVector, into out: inout [UInt8]) {
        LittleEndian.append(UInt32(vector.dimension), to: &out)
        LittleEndian.append(UInt32(vector.count), to: &out)
        vector.flat.withUnsafeBytes { out.append(contentsOf: $0) }
    }

    /// The vector at `start` of `bytes` ending exactly at `end`, or nil when the bytes there are not one.
    static func decode(_ bytes: UnsafeRawBufferPointer, at start: Int, end: Int) -> MultiVector? {
        guard start + 8 <= end else { return nil }
        let dimension = Int(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: start, as: UInt32.self)))
        let count = Int(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: start + 4, as: UInt32.self)))
        let (elements, overflow) = dimension.multipliedReportingOverflow(by: count)
        guard dimension > 0, count > 0, !overflow, elements <= MultiVector.maxFlattened, end - start - 8 == 4 * elements else { return nil }
        let flat = (0..<(dimension * count)).map { i in
            Float(bitPattern: UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: start + 8 + 4 * i, as: UInt32.self)))
        }
        return MultiVector(dimension: dimension, flat: flat)
    }

    /// Length of the encoded vector starting at `start`, read from its header.
    static func length(_ bytes: UnsafeRawBufferPointer, at start: Int) -> Int? {
        guard start + 8 <= bytes.count else { return nil }
        let dimension = Int(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: start, as: UInt32.self)))
        let count = Int(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: start + 4, as: UInt32.self)))
        // A damaged header gives a length longer than the log, which ends it.
        let (elements, overflow) = dimension.multipliedReportingOverflow(by: count)
        guard !overflow, elements <= MultiVector.maxFlattened else { return Int(Int32.max) }
        return 8 + 4 * elements
    }
}

/// One multivector name of an immutable segment:
///
/// | file | content |
/// |---|---|
/// | `multi-<i>.bin` | the inner vectors of every point, one after another, `dim` elements each in the vector's datatype |
/// | `multi-<i>-offsets.bin` | N + 1 little-endian u64: point j's inner vectors are `[o[j], o[j+1])` (none when it has no vector) |
///
/// The vectors are memory-mapped when the vector's `on_disk` is true, read into memory otherwise.
struct ImmutableMultiColumn: Sendable {
    /// The files' number (`multi-<n>`), which also names the graph file.
    let number: Int
    let offsets: ByteRegion
    let data: ByteRegion
    let dimension: Int
    let datatype: Datatype
    let onDisk: Bool

    var elementBytes: Int { VectorColumn(datatype).elementBytes }

    /// Index of point `offset`'s first inner vector (`offset` up to N: the total after the last).
    func rowStart(_ offset: Int) -> Int {
        Int(UInt64(littleEndian: offsets.bytes.loadUnaligned(fromByteOffset: offset * 8, as: UInt64.self)))
    }

    /// Inner vectors `[start, end)` of point `offset`.
    func span(_ offset: Int) -> Range<Int> { rowStart(offset)..<rowStart(offset + 1) }

    func has(_ offset: Int) -> Bool { !span(offset).isEmpty }

    func vector(at offset: Int) -> MultiVector? {
        let rows = span(offset)
        guard !rows.isEmpty else { return nil }
        return MultiVector(dimension: dimension, flat: elements(rows))
    }

    /// The float32 elements of inner vectors `rows`.
    func elements(_ rows: Range<Int>) -> [Float] {
        let bytes = data.bytes
        let first = rows.lowerBound * dimension, count = rows.count * dimension
        switch datatype {
        case .float16:
            return (0..<count).map { Float(Float16(bitPattern: UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: 2 * (first + $0), as: UInt16.self)))) }
        case .uint8:
            return (0..<count).map { Float(bytes[first + $0]) }
        case .float32, .turbo4:
            return (0..<count).map { Float(bitPattern: UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 4 * (first + $0), as: UInt32.self))) }
        }
    }

    /// Calls `body` with point `offset`'s inner vectors as float32 (in place when the file holds
    /// float32), or not at all when the point has none.
    func withVectors<R>(at offset: Int, _ body: (UnsafeBufferPointer<Float>) -> R) -> R? {
        let rows = span(offset)
        guard !rows.isEmpty else { return nil }
        if datatype == .float32 || datatype == .turbo4, let base = data.bytes.baseAddress {
            let start = base.assumingMemoryBound(to: Float.self) + rows.lowerBound * dimension
            return body(UnsafeBufferPointer(start: start, count: rows.count * dimension))
        }
        return elements(rows).withUnsafeBufferPointer(body)
    }

    var storageBytes: Int { data.count }

    static func files(_ i: Int) -> (data: String, offsets: String) { ("multi-\(i).bin", "multi-\(i)-offsets.bin") }

    /// Writes the files of one name for the points `vectors` gives (nil: no such vector) in offset
    /// order; returns the manifest entry.
    static func write(_ vectors: [MultiVector?], number i: Int, dimension: Int, datatype: Datatype?, directory: String,
                      disk: any Disk) throws(DiskError) -> SegmentFiles.Manifest.Multi {
        let names = files(i)
        let data = try BufferedWriter(disk: disk, path: joinPath(directory, names.data))
        var offsets: [UInt8] = []
        offsets.reserveCapacity((vectors.count + 1) * 8)
        var position: UInt64 = 0
        var column = VectorColumn(datatype)
        for vector in vectors {
            LittleEndian.append(position, to: &offsets)
            guard let vector else { continue }
            precondition(vector.dimension == dimension, "multivector dimension is validated before it reaches a segment")
            column = column.emptyLike
            column.appendZeros(vector.flat.count)
            column.set(vector.flat, at: 0)
            try data.append(column.bytes(0..<vector.flat.count))
            position += UInt64(vector.count)
        }
        LittleEndian.append(position, to: &offsets)
        try data.finish()
        try disk.writeFile(joinPath(directory, names.offsets), offsets)
        return .init(file: "multi-\(i)", dim: dimension, datatype: column.datatypeName)
    }

    /// Opens the files of `entry` for `n` points.
    static func load(_ entry: SegmentFiles.Manifest.Multi, points n: Int, directory: String, disk: any Disk,
                     datatype: Datatype?, onDisk: Bool) throws(DiskError) -> ImmutableMultiColumn {
        let dataPath = joinPath(directory, entry.file + ".bin"), offsetsPath = joinPath(directory, entry.file + "-offsets.bin")
        let expected = VectorColumn(datatype)
        guard (entry.datatype ?? "float32") == expected.datatypeName else {
            throw DiskError(operation: "load segment", path: dataPath, errno: 0,
                            reason: "multivectors in \(entry.datatype ?? "float32"), the collection's are \(expected.datatypeName)")
        }
        let data = onDisk ? try disk.map(dataPath) : try disk.readRegion(dataPath)
        let offsets = try disk.readRegion(offsetsPath)
        // Offsets that only grow and end at the data's size: every row read stays inside it.
        var previous: UInt64 = 0
        var ordered = offsets.count == (n + 1) * 8 && entry.dim > 0
        for i in 0...n where ordered {
            let value = UInt64(littleEndian: offsets.bytes.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self))
            ordered = value >= previous
            previous = value
        }
        guard ordered, previous.multipliedReportingOverflow(by: UInt64(entry.dim * expected.elementBytes)) == (UInt64(data.count), false) else {
            throw DiskError(operation: "load segment", path: offsetsPath, errno: 0, reason: "multivector offsets do not match \(entry.file).bin")
        }
        return ImmutableMultiColumn(number: Int(entry.file.dropFirst("multi-".count)) ?? 0, offsets: offsets, data: data, dimension: entry.dim,
                                    datatype: datatype ?? .float32, onDisk: onDisk)
    }
}

/// Late-interaction scoring (`max_sim`): for each query vector, its best similarity among the
/// stored vectors, summed. Similarities are as the engine compares them: the dot product for Dot
/// and Cosine (vectors normalised), the negated squared distance for Euclid and the negated
/// Manhattan distance for Manhattan, so higher is always better.
public struct MaxSim: Sendable {
    public let distance: Distance

    public init(_ distance: Distance) { self.distance = distance }

    public func score(_ query: MultiVector, _ stored: UnsafeBufferPointer<Float>) -> Float {
        let dimension = query.dimension
        let rows = stored.count / dimension
        guard rows > 0, let base = stored.baseAddress else { return -.infinity }
        // The kernel sums each query row's smallest distance: the negated sum of best similarities.
        return query.flat.withUnsafeBufferPointer {
            -quiver_maxsim_f32(distance.indexMetric.kernelMetric, $0.baseAddress, query.count, base, rows, dimension)
        }
    }

    /// One vector's similarity to another as the engine compares them (higher closer).
    @inline(__always) public func similarity(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        switch distance {
        case .euclid: -quiver_l2sq_f32(a, b, n)
        case .manhattan: -quiver_l1_f32(a, b, n)
        case .dot, .cosine: quiver_dot_f32(a, b, n)
        }
    }

    /// The score users see: the similarity for Dot and Cosine, the distance (square root of the
    /// summed squared distances for Euclid) otherwise.
    public func displayed(_ score: Float) -> Float {
        switch distance {
        case .euclid: abs(score).squareRoot()
        case .manhattan: abs(score)
        case .dot, .cosine: score
        }
    }

    /// The internal score a user's `score_threshold` corresponds to (a largest distance for Euclid
    /// and Manhattan).
    public func threshold(_ displayed: Float) -> Float {
        switch distance {
        case .euclid: -(displayed * displayed)
        case .manhattan: -displayed
        case .dot, .cosine: displayed
        }
    }
}
