import CChecksum
import DiskIO
public import CVectorKernels
import Foundation

/// How vectors are compressed for the graph search. The graph is traversed with distances
/// between compressed codes (or a float query against codes); the best candidates are then
/// rescored with the original vectors by the caller.
public enum QuantizationMethod: Sendable, Equatable {
    /// One byte per element over `[lo, hi]`, the central `quantile` of all values (1 = the whole
    /// range). Query and point are both encoded; dot, L2² and L1 come from integer kernels.
    case scalar(quantile: Double)
    /// `bits` per element (1, 1.5 or 2) compared by Hamming distance, or, with `asymmetric`, a
    /// float query against the points' levels by lookup tables (1 and 2 bits).
    case binary(bits: BinaryBits, asymmetric: Bool)
    /// Product quantization: groups of `elementsPerCode` elements, each group one byte naming the
    /// nearest of 256 centroids learned by k-means. Compression = 4 × elementsPerCode.
    case product(elementsPerCode: Int)

    public enum BinaryBits: Sendable, Equatable {
        case one, oneAndHalf, two
    }

    var kindCode: UInt32 {
        switch self {
        case .scalar: 0
        case .binary(.one, _): 1
        case .binary(.oneAndHalf, _): 2
        case .binary(.two, _): 3
        case .product: 4
        }
    }
}

/// The compressed vectors of a space: `count` codes of `codeBytes`, the parameters that decode
/// them, and for scalar codes two sums per point. The memory is its own or a loaded file's.
public final class QuantizedVectors: @unchecked Sendable {
    public let method: QuantizationMethod
    public let count: Int
    public let dimension: Int
    public let codeBytes: Int
    let codes: UnsafePointer<UInt8>
    /// scalar: lo, alpha; binary: per element mean then spread; product: centroids (groups × 256 × elementsPerCode).
    let parameters: UnsafePointer<Float>
    let parameterCount: Int
    /// scalar: per point (Σc, Σc²).
    let extras: UnsafePointer<Float>
    let owner: AnyObject

    init(method: QuantizationMethod, count: Int, dimension: Int, codeBytes: Int, codes: UnsafePointer<UInt8>,
         parameters: UnsafePointer<Float>, parameterCount: Int, extras: UnsafePointer<Float>, owner: AnyObject) {
        self.method = method
        self.count = count
        self.dimension = dimension
        self.codeBytes = codeBytes
        self.codes = codes
        self.parameters = parameters
        self.parameterCount = parameterCount
        self.extras = extras
        self.owner = owner
    }

    public var bytesInMemory: Int { count * codeBytes + 4 * parameterCount + (extrasPerPoint * 4 * count) }
    var extrasPerPoint: Int { if case .scalar = method { 2 } else { 0 } }

    @inline(__always) func code(_ point: UInt32) -> UnsafePointer<UInt8> { codes + Int(point) * codeBytes }

    // MARK: Training and encoding

    /// Compresses the `points` of `space` (others get zero codes).
    public static func train(_ space: VectorSpace, method: QuantizationMethod, points: [UInt32], seed: UInt64 = 0x0ddba11) -> QuantizedVectors {
        let d = space.dimension
        var rng = SplitMix(seed: seed)
        let sample: [UInt32] = points.count <= 20_000 ? points : (0..<20_000).map { _ in points[Int(rng.next() % UInt64(points.count))] }
        var parameters: [Float] = []
        let codeBytes: Int
        switch method {
        case .scalar(let quantile):
            var values: [Float] = []
            values.reserveCapacity(min(sample.count * d, 1 << 21))
            outer: for point in sample {
                let v = space.vector(point)
                for i in 0..<d {
                    values.append(v[i])
                    if values.count >= 1 << 21 { break outer }
                }
            }
            values.sort()
            var lo: Float = -1, hi: Float = 1
            if !values.isEmpty {
                let cut = Int((Double(values.count - 1) * (1 - min(1, max(0.5, quantile))) / 2).rounded())
                lo = values[cut]
                hi = values[values.count - 1 - cut]
            }
            let alpha = hi > lo ? (hi - lo) / 255 : 1
            parameters = [lo, alpha]
            codeBytes = d
        case .binary(let bits, _):
            // Per element: the mean, and the spread that separates the levels.
            var mean = [Double](repeating: 0, count: d), square = [Double](repeating: 0, count: d)
            for point in sample {
                let v = space.vector(point)
                for i in 0..<d {
                    mean[i] += Double(v[i])
                    square[i] += Double(v[i]) * Double(v[i])
                }
            }
            let n = Double(max(1, sample.count))
            let means = mean.map { Float($0 / n) }
            let spreads = (0..<d).map { i in Float(max(0, square[i] / n - (mean[i] / n) * (mean[i] / n)).squareRoot()) }
            parameters = means + spreads
            codeBytes = switch bits {
            case .one: (d + 63) / 64 * 8
            case .two: (2 * d + 63) / 64 * 8
            case .oneAndHalf: (d + (d + 1) / 2 + 63) / 64 * 8
            }
        case .product(let group):
            let groups = (d + group - 1) / group
            parameters = kmeansCentroids(space, sample: sample, group: group, groups: groups, rng: &rng)
            codeBytes = groups
        }
        let extrasPerPoint = if case .scalar = method { 2 } else { 0 }
        let storage = Storage(count: space.count, codeBytes: codeBytes, parameters: parameters, extrasPerPoint: extrasPerPoint)
        let result = QuantizedVectors(method: method, count: space.count, dimension: d, codeBytes: codeBytes,
                                      codes: UnsafePointer(storage.codes), parameters: UnsafePointer(storage.parameters),
                                      parameterCount: parameters.count, extras: UnsafePointer(storage.extras), owner: storage)
        for point in points {
            result.encode(space.vector(point), into: storage.codes + Int(point) * codeBytes,
                          extras: storage.extras + Int(point) * extrasPerPoint)
        }
        return result
    }

    /// Writes the code of vector `v` (and its extras).
    func encode(_ v: UnsafePointer<Float>, into code: UnsafeMutablePointer<UInt8>, extras: UnsafeMutablePointer<Float>) {
        let d = dimension
        switch method {
        case .scalar:
            let lo = parameters[0], alpha = parameters[1]
            var sum: Float = 0, squares: Float = 0
            for i in 0..<d {
                let c = UInt8(clamping: Int(((v[i] - lo) / alpha).rounded()))
                code[i] = c
                sum += Float(c)
                squares += Float(c) * Float(c)
            }
            extras[0] = sum
            extras[1] = squares
        case .binary(let bits, _):
            code.update(repeating: 0, count: codeBytes)
            let mean = parameters, spread = parameters + d
            func set(_ bit: Int) { code[bit >> 3] |= 1 << UInt8(bit & 7) }
            switch bits {
            case .one:
                for i in 0..<d where v[i] > mean[i] { set(i) }
            case .two:
                // Three levels, written 00, 01, 11, so the Hamming distance is the level distance.
                for i in 0..<d {
                    let z = v[i] - mean[i], t = 0.43 * spread[i]
                    if z > -t { set(2 * i) }
                    if z > t { set(2 * i + 1) }
                }
            case .oneAndHalf:
                // A sign bit per element, and per pair of elements one bit for "far from the mean".
                for i in 0..<d where v[i] > mean[i] { set(i) }
                for pair in 0..<((d + 1) / 2) {
                    var far: Float = 0
                    for i in (2 * pair)..<min(d, 2 * pair + 2) where spread[i] > 0 { far += abs(v[i] - mean[i]) / spread[i] }
                    if far > 1.35 { set(d + pair) }
                }
            }
        case .product(let group):
            let groups = codeBytes
            for g in 0..<groups {
                let start = g * group, width = min(group, d - start)
                var best = 0, bestDistance = Float.infinity
                for c in 0..<256 {
                    let centroid = parameters + (g * 256 + c) * group
                    var dist: Float = 0
                    for j in 0..<width {
                        let diff = v[start + j] - centroid[j]
                        dist += diff * diff
                    }
                    if dist < bestDistance { (best, bestDistance) = (c, dist) }
                }
                code[g] = UInt8(best)
            }
        }
    }

    /// 256 centroids per group of `group` elements, by a few rounds of k-means over the sample.
    static func kmeansCentroids(_ space: VectorSpace, sample: [UInt32], group: Int, groups: Int, rng: inout SplitMix) -> [Float] {
        let d = space.dimension
        let sample = Array(sample.prefix(8_000))
        var centroids = [Float](repeating: 0, count: groups * 256 * group)
        guard !sample.isEmpty else { return centroids }
        var assignment = [UInt8](repeating: 0, count: sample.count)
        for g in 0..<groups {
            let start = g * group, width = min(group, d - start)
            func element(_ s: Int, _ j: Int) -> Float { space.vector(sample[s])[start + j] }
            let base = g * 256 * group
            for c in 0..<256 {
                let s = Int(rng.next() % UInt64(sample.count))
                for j in 0..<width { centroids[base + c * group + j] = element(s, j) }
            }
            for _ in 0..<8 {
                var sums = [Float](repeating: 0, count: 256 * group), counts = [Int](repeating: 0, count: 256)
                centroids.withUnsafeBufferPointer { cs in
                    for s in 0..<sample.count {
                        let v = space.vector(sample[s]) + start
                        var best = 0, bestDistance = Float.infinity
                        for c in 0..<256 {
                            let centroid = cs.baseAddress! + base + c * group
                            var dist: Float = 0
                            for j in 0..<width {
                                let diff = v[j] - centroid[j]
                                dist += diff * diff
                            }
                            if dist < bestDistance { (best, bestDistance) = (c, dist) }
                        }
                        assignment[s] = UInt8(best)
                        counts[best] += 1
                        for j in 0..<width { sums[best * group + j] += v[j] }
                    }
                }
                for c in 0..<256 {
                    if counts[c] > 0 {
                        for j in 0..<width { centroids[base + c * group + j] = sums[c * group + j] / Float(counts[c]) }
                    } else {
                        // An empty cluster restarts at a random sample point.
                        let s = Int(rng.next() % UInt64(sample.count))
                        for j in 0..<width { centroids[base + c * group + j] = element(s, j) }
                    }
                }
            }
        }
        return centroids
    }

    // MARK: Scoring

    /// Distances from `query` (float32, `dimension` elements) to the codes, smaller closer, for
    /// `metric`: the scalar and Hamming scorers compare encoded queries, the table scorer a float
    /// query against reconstructed values.
    public func scorer(_ query: UnsafePointer<Float>, metric: IndexMetric) -> QuantizedScorer {
        let kernels = quiver_active_kernels()!.pointee
        switch method {
        case .scalar:
            var code = [UInt8](repeating: 0, count: dimension)
            var extras: [Float] = [0, 0]
            code.withUnsafeMutableBufferPointer { c in extras.withUnsafeMutableBufferPointer { encode(query, into: c.baseAddress!, extras: $0.baseAddress!) } }
            let shifted = code.map { Int8(truncatingIfNeeded: Int($0) - 128) }
            return QuantizedScorer(kind: .scalar(metric), vectors: self, code: code, signed: shifted, table: [],
                                   querySum: extras[0], querySquares: extras[1], kernels: kernels)
        case .binary(let bits, let asymmetric) where asymmetric && bits != .oneAndHalf:
            return QuantizedScorer(kind: .table, vectors: self, code: [], signed: [], table: levelTable(query, bits: bits, metric: metric),
                                   querySum: 0, querySquares: 0, kernels: kernels)
        case .binary:
            var code = [UInt8](repeating: 0, count: codeBytes)
            var unused: Float = 0
            code.withUnsafeMutableBufferPointer { encode(query, into: $0.baseAddress!, extras: &unused) }
            return QuantizedScorer(kind: .hamming, vectors: self, code: code, signed: [], table: [], querySum: 0, querySquares: 0, kernels: kernels)
        case .product(let group):
            return QuantizedScorer(kind: .table, vectors: self, code: [], signed: [], table: productTable(query, group: group, metric: metric),
                                   querySum: 0, querySquares: 0, kernels: kernels)
        }
    }

    /// The contribution of one element to the distance.
    @inline(__always) static func term(_ q: Float, _ r: Float, _ metric: IndexMetric) -> Float {
        switch metric {
        case .dot: -q * r
        case .l2: (q - r) * (q - r)
        case .l1: abs(q - r)
        }
    }

    /// For each code byte, the distance contribution of each of its 256 values.
    func productTable(_ query: UnsafePointer<Float>, group: Int, metric: IndexMetric) -> [Float] {
        var table = [Float](repeating: 0, count: codeBytes * 256)
        for g in 0..<codeBytes {
            let start = g * group, width = min(group, dimension - start)
            for c in 0..<256 {
                let centroid = parameters + (g * 256 + c) * group
                var sum: Float = 0
                for j in 0..<width { sum += Self.term(query[start + j], centroid[j], metric) }
                table[g * 256 + c] = sum
            }
        }
        return table
    }

    /// The same for binary codes, each level standing for a value: mean ± spread (1 bit), or
    /// mean − spread, mean, mean + spread (2 bits).
    func levelTable(_ query: UnsafePointer<Float>, bits: QuantizationMethod.BinaryBits, metric: IndexMetric) -> [Float] {
        let mean = parameters, spread = parameters + dimension
        let perByte = bits == .one ? 8 : 4
        var table = [Float](repeating: 0, count: codeBytes * 256)
        for byte in 0..<codeBytes {
            for value in 0..<256 {
                var sum: Float = 0
                for slot in 0..<perByte {
                    let i = byte * perByte + slot
                    guard i < dimension else { break }
                    let r: Float
                    if bits == .one {
                        r = mean[i] + ((value >> slot) & 1 == 1 ? spread[i] : -spread[i])
                    } else {
                        let level = (value >> (2 * slot)) & 3
                        r = mean[i] + (level == 0 ? -spread[i] : level == 3 ? spread[i] : 0)
                    }
                    sum += Self.term(query[i], r, metric)
                }
                table[byte * 256 + value] = sum
            }
        }
        return table
    }

    // MARK: Files

    /// The file: u32 magic "QQNT", format 1, kind, count, dimension, code bytes, parameter count,
    /// u32 quantile/group/asymmetric detail, u32 extras per point, padding to 40 bytes; then the
    /// parameters (f32), the codes, the extras (f32, 4-aligned), and a CRC-32C of all before it.
    static let magic: UInt32 = 0x544E_5151 // "QQNT"
    static let headerBytes = 40

    public func encoded() -> [UInt8] {
        var out: [UInt8] = []
        func append(_ value: UInt32) { withUnsafeBytes(of: value.littleEndian) { out += $0 } }
        let detail: UInt32 = switch method {
        case .scalar(let quantile): UInt32((quantile * 1_000_000).rounded())
        case .binary(_, let asymmetric): asymmetric ? 1 : 0
        case .product(let group): UInt32(group)
        }
        for value in [Self.magic, 1, method.kindCode, UInt32(count), UInt32(dimension), UInt32(codeBytes), UInt32(parameterCount),
                      detail, UInt32(extrasPerPoint), 0] { append(value) }
        for i in 0..<parameterCount { append(parameters[i].bitPattern) }
        out += UnsafeBufferPointer(start: codes, count: count * codeBytes)
        out += repeatElement(0, count: (4 - out.count % 4) % 4)
        for i in 0..<(count * extrasPerPoint) { append(extras[i].bitPattern) }
        append(out.withUnsafeBytes { quiver_crc32c(0, $0.baseAddress, $0.count) })
        return out
    }

    /// The vectors in a file's bytes (4-byte aligned, kept alive by `owner`), or nil when they
    /// are not a whole file of this format.
    public static func load(file raw: UnsafeRawBufferPointer, owner: AnyObject) -> QuantizedVectors? {
        guard raw.count >= headerBytes + 4, let base = raw.baseAddress, Int(bitPattern: base) % 4 == 0 else { return nil }
        func u32(_ at: Int) -> UInt32 { UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: at, as: UInt32.self)) }
        let body = raw.count - 4
        guard u32(0) == magic, u32(4) == 1, quiver_crc32c(0, base, body) == u32(body) else { return nil }
        let kind = u32(8), count = Int(u32(12)), dimension = Int(u32(16)), codeBytes = Int(u32(20))
        let parameterCount = Int(u32(24)), detail = u32(28), extrasPerPoint = Int(u32(32))
        let method: QuantizationMethod
        switch kind {
        case 0: method = .scalar(quantile: Double(detail) / 1_000_000)
        case 1: method = .binary(bits: .one, asymmetric: detail == 1)
        case 2: method = .binary(bits: .oneAndHalf, asymmetric: detail == 1)
        case 3: method = .binary(bits: .two, asymmetric: detail == 1)
        case 4 where detail > 0: method = .product(elementsPerCode: Int(detail))
        default: return nil
        }
        let codesAt = headerBytes + 4 * parameterCount
        let extrasAt = (codesAt + count * codeBytes + 3) / 4 * 4
        guard extrasAt + 4 * count * extrasPerPoint == body else { return nil }
        if case .product = method, codeBytes * 256 * Int(detail) != parameterCount { return nil }
        return QuantizedVectors(method: method, count: count, dimension: dimension, codeBytes: codeBytes,
                                codes: (base + codesAt).assumingMemoryBound(to: UInt8.self),
                                parameters: (base + headerBytes).assumingMemoryBound(to: Float.self), parameterCount: parameterCount,
                                extras: (base + extrasAt).assumingMemoryBound(to: Float.self), owner: owner)
    }

    /// Memory of freshly trained vectors.
    final class Storage {
        let codes: UnsafeMutablePointer<UInt8>
        let parameters: UnsafeMutablePointer<Float>
        let extras: UnsafeMutablePointer<Float>

        init(count: Int, codeBytes: Int, parameters values: [Float], extrasPerPoint: Int) {
            codes = .allocate(capacity: max(1, count * codeBytes))
            adviseHugePages(codes, count: max(1, count * codeBytes))
            codes.initialize(repeating: 0, count: max(1, count * codeBytes))
            parameters = .allocate(capacity: max(1, values.count))
            parameters.initialize(repeating: 0, count: max(1, values.count))
            parameters.update(from: values, count: values.count)
            extras = .allocate(capacity: max(1, count * extrasPerPoint))
            extras.initialize(repeating: 0, count: max(1, count * extrasPerPoint))
        }

        deinit {
            codes.deallocate()
            parameters.deallocate()
            extras.deallocate()
        }
    }
}

/// One query's distances to quantized points.
public struct QuantizedScorer: QueryScorer {
    enum Kind {
        case scalar(IndexMetric)
        case hamming
        case table
    }

    let kind: Kind
    let vectors: QuantizedVectors
    /// The encoded query (scalar, Hamming), and for scalar its codes minus 128 as signed bytes.
    let code: [UInt8]
    let signed: [Int8]
    /// Per code byte, 256 distance contributions (product, asymmetric binary).
    let table: [Float]
    let querySum: Float
    let querySquares: Float
    let kernels: quiver_kernels

    @inline(__always) public func prefetch(_ point: UInt32) { quiver_prefetch_bytes(vectors.code(point), vectors.codeBytes) }

    @inline(__always) public func distance(_ point: UInt32) -> Float {
        let codes = vectors.code(point)
        switch kind {
        case .scalar(let metric):
            let lo = vectors.parameters[0], alpha = vectors.parameters[1]
            let extras = vectors.extras + 2 * Int(point)
            if case .l1 = metric {
                return alpha * Float(code.withUnsafeBufferPointer { kernels.sad_u8(codes, $0.baseAddress!, vectors.dimension) })
            }
            // Σ c·d = Σ c·(d − 128) + 128 Σ c.
            let shiftedDot = signed.withUnsafeBufferPointer { kernels.dot_u8s8(codes, $0.baseAddress!, vectors.dimension) }
            let cd = Float(shiftedDot) + 128 * extras[0]
            if case .l2 = metric {
                return alpha * alpha * (querySquares + extras[1] - 2 * cd)
            }
            let n = Float(vectors.dimension)
            return -(n * lo * lo + lo * alpha * (querySum + extras[0]) + alpha * alpha * cd)
        case .hamming:
            return Float(code.withUnsafeBytes { q in
                kernels.hamming(UnsafeRawPointer(codes).assumingMemoryBound(to: UInt64.self),
                                q.baseAddress!.assumingMemoryBound(to: UInt64.self), vectors.codeBytes / 8)
            })
        case .table:
            return table.withUnsafeBufferPointer { t in
                var sum: Float = 0
                var row = t.baseAddress!
                for g in 0..<vectors.codeBytes {
                    sum += row[Int(codes[g])]
                    row += 256
                }
                return sum
            }
        }
    }
}
