public import CVectorKernels

/// How vectors compare in an index: always as a distance, smaller is closer. Dot (and Cosine,
/// which is Dot on normalised vectors) is the negated product.
public enum IndexMetric: Sendable {
    case dot, l2, l1

    /// The kernels' name of the metric (dot: the product, which the index negates).
    public var kernelMetric: quiver_metric {
        switch self {
        case .dot: QUIVER_METRIC_DOT
        case .l2: QUIVER_METRIC_L2SQ
        case .l1: QUIVER_METRIC_L1
        }
    }
}

/// `count` float32 vectors of `dimension` elements, contiguous, and the kernel that compares
/// them. The memory belongs to the caller and must outlive the space.
public struct VectorSpace: @unchecked Sendable {
    public let base: UnsafePointer<Float>
    public let count: Int
    public let dimension: Int
    public let metric: IndexMetric
    let kernel: quiver_f32_kernel
    let negate: Bool

    public init(base: UnsafePointer<Float>, count: Int, dimension: Int, metric: IndexMetric) {
        self.base = base
        self.count = count
        self.dimension = dimension
        self.metric = metric
        let isa = quiver_active_isa()
        let kernels = quiver_kernels_for(isa)!.pointee
        switch metric {
        case .dot: (kernel, negate) = (kernels.dot_f32!, true)
        case .l2: (kernel, negate) = (kernels.l2sq_f32!, false)
        case .l1: (kernel, negate) = (kernels.l1_f32!, false)
        }
    }

    @inline(__always) public func vector(_ i: UInt32) -> UnsafePointer<Float> { base + Int(i) * dimension }

    @inline(__always) public func distance(_ query: UnsafePointer<Float>, _ i: UInt32) -> Float {
        let s = kernel(query, base + Int(i) * dimension, dimension)
        return negate ? -s : s
    }

    @inline(__always) func distance(_ i: UInt32, _ j: UInt32) -> Float { distance(vector(i), j) }
}

/// What an HNSW build compares: the distance from one point, taken as a query, to another
/// (smaller is closer; not necessarily symmetric).
protocol GraphPoints {
    associatedtype Query
    var count: Int { get }
    func query(_ point: UInt32) -> Query
    func distance(_ query: Query, _ point: UInt32) -> Float
    /// Asks for what `distance` will read of `point`, ahead of it.
    func prefetch(_ point: UInt32)
}

extension VectorSpace: GraphPoints {
    typealias Query = UnsafePointer<Float>
    @inline(__always) func query(_ point: UInt32) -> UnsafePointer<Float> { vector(point) }
    @inline(__always) func prefetch(_ point: UInt32) { quiver_prefetch_bytes(vector(point), dimension * 4) }
}

/// `count` multivectors: point i's rows are rows `rowStarts[i]..<rowStarts[i + 1]` of `rows`.
/// Compared by `max_sim` as a distance: for each query row its nearest stored row, distances
/// summed (the negated `max_sim` score for Dot and Cosine). A point with no rows is infinitely far.
/// The memory belongs to the caller and must outlive the space.
public struct MultiVectorSpace: @unchecked Sendable, GraphPoints {
    public let rows: VectorSpace
    public let rowStarts: UnsafePointer<Int>
    public let count: Int
    let maxSim: @convention(c) (quiver_metric, UnsafePointer<Float>?, Int, UnsafePointer<Float>?, Int, Int) -> Float
    let kernelMetric: quiver_metric

    public init(rows: VectorSpace, rowStarts: UnsafePointer<Int>, count: Int) {
        self.rows = rows
        self.rowStarts = rowStarts
        self.count = count
        maxSim = quiver_active_kernels()!.pointee.maxsim_f32
        kernelMetric = rows.metric.kernelMetric
    }

    public typealias Query = (rows: UnsafePointer<Float>, count: Int)

    @inline(__always) func query(_ point: UInt32) -> Query {
        let start = rowStarts[Int(point)]
        return (rows.base + start * rows.dimension, rowStarts[Int(point) + 1] - start)
    }

    @inline(__always) public func distance(_ query: Query, _ point: UInt32) -> Float {
        let start = rowStarts[Int(point)], end = rowStarts[Int(point) + 1]
        return maxSim(kernelMetric, query.rows, query.count, rows.base + start * rows.dimension, end - start, rows.dimension)
    }

    @inline(__always) func prefetch(_ point: UInt32) {
        let start = rowStarts[Int(point)]
        quiver_prefetch_bytes(rows.base + start * rows.dimension, (rowStarts[Int(point) + 1] - start) * rows.dimension * 4)
    }
}

/// `max_sim` distances from a multivector query (rows normalised as the stored ones are).
public struct MultiScorer: QueryScorer {
    let space: MultiVectorSpace
    let query: MultiVectorSpace.Query

    public init(space: MultiVectorSpace, query: UnsafePointer<Float>, rows: Int) {
        self.space = space
        self.query = (query, rows)
    }

    @inline(__always) public func distance(_ point: UInt32) -> Float { space.distance(query, point) }
    @inline(__always) public func prefetch(_ point: UInt32) { space.prefetch(point) }
}

/// `max_sim` distances from a multivector query to multivectors whose rows are quantized: each
/// query row's nearest stored row by the codes, summed. Point i's rows are the codes
/// `rowStarts[i]..<rowStarts[i + 1]`.
public struct QuantizedMultiScorer: QueryScorer {
    let rows: [QuantizedScorer]
    let codes: QuantizedVectors
    let rowStarts: UnsafePointer<Int>

    /// `query` holds `rows` rows of the codes' dimension (normalised as the stored ones are).
    public init(_ codes: QuantizedVectors, rowStarts: UnsafePointer<Int>, query: UnsafePointer<Float>, rows: Int, metric: IndexMetric) {
        self.codes = codes
        self.rowStarts = rowStarts
        self.rows = (0..<rows).map { codes.scorer(query + $0 * codes.dimension, metric: metric) }
    }

    @inline(__always) public func distance(_ point: UInt32) -> Float {
        let start = rowStarts[Int(point)], end = rowStarts[Int(point) + 1]
        guard end > start else { return .infinity }
        var total: Float = 0
        for row in rows {
            var best = Float.infinity
            for j in start..<end { best = min(best, row.distance(UInt32(j))) }
            total += best
        }
        return total
    }

    @inline(__always) public func prefetch(_ point: UInt32) { quiver_prefetch(codes.code(UInt32(rowStarts[Int(point)]))) }
}

/// Which points a search may return. Traversal still passes through the others.
public protocol PointFilter {
    func accepts(_ point: UInt32) -> Bool
}

public struct AcceptAll: PointFilter {
    public init() {}
    @inline(__always) public func accepts(_ point: UInt32) -> Bool { true }
}

/// The points of a segment a search may return: not marked in `deleted`, marked in `allowed` when
/// given, and passing `check` when given (conditions no payload index answers). The graph search
/// is compiled for this filter (with the float and quantized scorers of dense vectors).
public struct LivePoints: PointFilter {
    let deleted: ChunkedArray<Bool>
    let allowed: [Bool]?
    let check: ((UInt32) -> Bool)?

    public init(deleted: ChunkedArray<Bool>, allowed: [Bool]? = nil, check: ((UInt32) -> Bool)? = nil) {
        self.deleted = deleted
        self.allowed = allowed
        self.check = check
    }

    @inline(__always) public func accepts(_ point: UInt32) -> Bool {
        let offset = Int(point)
        guard !deleted[offset], allowed?[offset] ?? true else { return false }
        return check?(point) ?? true
    }
}

public struct AcceptIf: PointFilter {
    let test: (UInt32) -> Bool
    public init(_ test: @escaping (UInt32) -> Bool) { self.test = test }
    @inline(__always) public func accepts(_ point: UInt32) -> Bool { test(point) }
}

/// Distances from one query to the points of a space, smaller closer: what a graph search
/// compares. The query is encoded once, when the scorer is made.
public protocol QueryScorer {
    func distance(_ point: UInt32) -> Float
    /// Asks for the point's data ahead of `distance`.
    func prefetch(_ point: UInt32)
}

/// Exact distances over float32 vectors.
public struct FloatScorer: QueryScorer {
    let space: VectorSpace
    let query: UnsafePointer<Float>

    public init(space: VectorSpace, query: UnsafePointer<Float>) {
        self.space = space
        self.query = query
    }

    @inline(__always) public func distance(_ point: UInt32) -> Float { space.distance(query, point) }
    @inline(__always) public func prefetch(_ point: UInt32) { space.prefetch(point) }
}

/// The CPU features the distance kernels use on this machine, as `GET /telemetry` lists them
/// (comma-separated; empty when only the portable kernels run).
public var kernelCPUFlags: String {
    var flags: [String] = []
    if quiver_kernels_for(QUIVER_ISA_AVX2) != nil { flags += ["avx", "avx2", "fma", "f16c"] }
    if quiver_kernels_for(QUIVER_ISA_AVX512) != nil { flags += ["avx512f"] }
    if quiver_kernels_for(QUIVER_ISA_AVX512_VNNI) != nil { flags += ["avx512vnni"] }
    if quiver_kernels_for(QUIVER_ISA_NEON) != nil { flags += ["neon"] }
    return flags.joined(separator: ",")
}
