import CChecksum
import DiskIO
import QuiverModel

/// A sparse vector's storage form: u32 count n, n u32 indices (ascending), n f32 values.
enum SparseCoding {
    static func encode(_ vector: SparseVector, into out: inout [UInt8]) {
        LittleEndian.append(UInt32(vector.count), to: &out)
        for index in vector.indices { LittleEndian.append(index, to: &out) }
        for value in vector.values { LittleEndian.append(value.bitPattern, to: &out) }
    }

    static func encode(_ vector: SparseVector) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(vector.storageBytes)
        encode(vector, into: &out)
        return out
    }

    /// The vector at `start` of `bytes`, or nil when the bytes there are not one.
    static func decode(_ bytes: UnsafeRawBufferPointer, at start: Int = 0, end: Int? = nil) -> SparseVector? {
        let end = end ?? bytes.count
        guard start + 4 <= end else { return nil }
        let n = Int(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: start, as: UInt32.self)))
        guard start + 4 + 8 * n == end else { return nil }
        var indices: [UInt32] = []
        var values: [Float] = []
        indices.reserveCapacity(n)
        values.reserveCapacity(n)
        for i in 0..<n {
            indices.append(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: start + 4 + 4 * i, as: UInt32.self)))
            values.append(Float(bitPattern: UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: start + 4 + 4 * n + 4 * i, as: UInt32.self))))
        }
        guard zip(indices, indices.dropFirst()).allSatisfy({ $0 < $1 }) else { return nil }
        return SparseVector(indices: indices, values: values)
    }
}

/// The inverted index of one sparse vector of an immutable segment (`sparse-<i>-postings.bin`):
/// for each dimension, the offsets of the points whose vector has it, with their weights.
///
/// | part | content |
/// |---|---|
/// | header | u32 magic `QSPI`, u32 format 1, u64 term count T, u64 posting count P |
/// | terms | T records, ascending by term: u32 term, u32 posting count, u64 first posting |
/// | postings | P records, by term and then ascending offset: u32 offset, f32 weight |
///
/// Weights are as the index's datatype keeps them (float16 rounded; uint8 quantized per
/// posting list as Qdrant does, min + q × (max − min) / 255), so scores match the server's.
struct SparseInvertedIndex: Sendable {
    static let magic: UInt32 = 0x4950_5351 // "QSPI"
    static let headerBytes = 24
    static let termBytes = 16
    static let postingBytes = 8

    let region: ByteRegion
    let termCount: Int
    let postingCount: Int

    /// Checks the header and sizes; nil when the bytes are not a whole index.
    init?(region: ByteRegion) {
        let bytes = region.bytes
        guard bytes.count >= Self.headerBytes,
              UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 0, as: UInt32.self)) == Self.magic,
              UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 4, as: UInt32.self)) == 1 else { return nil }
        let terms = Int(UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 8, as: UInt64.self)))
        let postings = Int(UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 16, as: UInt64.self)))
        guard terms >= 0, postings >= 0, terms <= bytes.count, postings <= bytes.count,
              bytes.count == Self.headerBytes + terms * Self.termBytes + postings * Self.postingBytes else { return nil }
        self.region = region
        termCount = terms
        postingCount = postings
    }

    /// The file for `vectors` (offset and vector, any order).
    static func build(_ vectors: [(offset: Int, vector: SparseVector)], datatype: Datatype?) -> [UInt8] {
        var lists: [UInt32: [(UInt32, Float)]] = [:]
        for (offset, vector) in vectors {
            for (index, value) in zip(vector.indices, vector.values) { lists[index, default: []].append((UInt32(offset), value)) }
        }
        let terms = lists.keys.sorted()
        let total = lists.values.reduce(0) { $0 + $1.count }
        var out: [UInt8] = []
        out.reserveCapacity(headerBytes + terms.count * termBytes + total * postingBytes)
        LittleEndian.append(magic, to: &out)
        LittleEndian.append(UInt32(1), to: &out)
        LittleEndian.append(UInt64(terms.count), to: &out)
        LittleEndian.append(UInt64(total), to: &out)
        var first: UInt64 = 0
        for term in terms {
            LittleEndian.append(term, to: &out)
            LittleEndian.append(UInt32(lists[term]!.count), to: &out)
            LittleEndian.append(first, to: &out)
            first += UInt64(lists[term]!.count)
        }
        for term in terms {
            var list = lists[term]!.sorted { $0.0 < $1.0 }
            stored(&list, datatype)
            for (offset, value) in list {
                LittleEndian.append(offset, to: &out)
                LittleEndian.append(value.bitPattern, to: &out)
            }
        }
        return out
    }

    /// The weights of one posting list as `datatype` keeps them.
    private static func stored(_ list: inout [(UInt32, Float)], _ datatype: Datatype?) {
        switch datatype {
        case .float16?:
            for i in list.indices { list[i].1 = Float(Float16(list[i].1)) }
        case .uint8?:
            let values = list.map(\.1)
            guard let low = values.min(), let high = values.max() else { return }
            let step = (high - low) / 255
            for i in list.indices {
                let q = step > 0 ? ((list[i].1 - low) / step).rounded().clamped(0, 255) : 0
                list[i].1 = low + q * step
            }
        case .float32?, .turbo4?, nil:
            break
        }
    }

    /// Where the postings of `term` are, or nil when no vector has it.
    func postings(of term: UInt32) -> Range<Int>? {
        let bytes = region.bytes
        var low = 0, high = termCount
        while low < high {
            let middle = (low + high) / 2
            let at = Self.headerBytes + middle * Self.termBytes
            let found = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: at, as: UInt32.self))
            if found == term {
                let count = Int(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: at + 4, as: UInt32.self)))
                let start = Int(UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: at + 8, as: UInt64.self)))
                guard start + count <= postingCount else { return nil }
                return start..<(start + count)
            }
            if found < term { low = middle + 1 } else { high = middle }
        }
        return nil
    }

    /// Calls `body` with each posting of `term`: the point's offset and its weight.
    @inline(__always) func forEachPosting(of term: UInt32, _ body: (Int, Float) -> Void) {
        guard let range = postings(of: term) else { return }
        let bytes = region.bytes
        let base = Self.headerBytes + termCount * Self.termBytes
        for i in range {
            let at = base + i * Self.postingBytes
            body(Int(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: at, as: UInt32.self))),
                 Float(bitPattern: UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: at + 4, as: UInt32.self))))
        }
    }

    static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        quiver_crc32c(0, bytes.baseAddress, bytes.count)
    }
}

extension Float {
    func clamped(_ low: Float, _ high: Float) -> Float { Swift.min(Swift.max(self, low), high) }
}

/// Sums the products of a sparse query's weights with the postings of its dimensions: the scores
/// of every point that shares a dimension with the query, for one segment.
struct SparseAccumulator {
    private var scores: [Float]
    private var seen: [Bool]
    private(set) var touched: [Int] = []

    init(count: Int) {
        scores = [Float](repeating: 0, count: count)
        seen = [Bool](repeating: false, count: count)
    }

    @inline(__always) mutating func add(_ offset: Int, _ value: Float) {
        guard offset < scores.count else { return }
        if !seen[offset] {
            seen[offset] = true
            touched.append(offset)
        }
        scores[offset] += value
    }

    func score(_ offset: Int) -> Float { scores[offset] }
}
