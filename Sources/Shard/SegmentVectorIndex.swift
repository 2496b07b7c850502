import DiskIO
import Foundation
import QuiverModel
import Synchronization
public import VectorIndex

/// How the vector index of one named vector is built in immutable segments: the resolved
/// `hnsw_config` (the vector's own over the collection's) and the distance.
public struct VectorIndexSpec: Sendable, Equatable {
    public var m: Int
    public var efConstruct: Int
    /// Extra level-0 links among points sharing an indexed keyword or integer value (0: none).
    public var payloadM: Int
    public var onDisk: Bool
    public var distance: Distance
    /// Threads a build uses (`max_indexing_threads`, 0 resolved to the CPU count).
    public var threads: Int
    /// Payload values held by fewer points get no extra links: the planner scans those
    /// (`full_scan_threshold` in points).
    public var blockMinimum: Int
    /// The vector's `quantization_config` over the collection's, resolved; nil for none.
    public var quantization: QuantizationMethod?
    /// Quantized codes in memory even when the vectors are on disk (`always_ram`).
    public var quantizationInRAM: Bool

    public init(m: Int, efConstruct: Int, payloadM: Int, onDisk: Bool, distance: Distance, threads: Int, blockMinimum: Int,
                quantization: QuantizationMethod? = nil, quantizationInRAM: Bool = false) {
        self.m = m
        self.efConstruct = efConstruct
        self.payloadM = payloadM
        self.onDisk = onDisk
        self.distance = distance
        self.threads = threads
        self.blockMinimum = blockMinimum
        self.quantization = quantization
        self.quantizationInRAM = quantizationInRAM
    }

    /// Qdrant's quantization settings as a method. Turbo quantization (4 bits or fewer per
    /// element) maps to the nearest method here: 4 bits to int8 scalar, fewer to binary.
    public static func method(_ config: QuantizationConfig?) -> (QuantizationMethod, inRAM: Bool)? {
        switch config {
        case nil: return nil
        case .scalar(let c)?: return (.scalar(quantile: c.quantile ?? 1), c.alwaysRam ?? false)
        case .binary(let c)?:
            let bits: QuantizationMethod.BinaryBits = switch c.encoding {
            case .oneAndHalfBits?: .oneAndHalf
            case .twoBits?: .two
            case .oneBit?, nil: .one
            }
            let asymmetric = c.queryEncoding == .scalar4bits || c.queryEncoding == .scalar8bits
            return (.binary(bits: bits, asymmetric: asymmetric), c.alwaysRam ?? false)
        case .product(let c)?:
            let group = switch c.compression {
            case .x4: 1
            case .x8: 2
            case .x16: 4
            case .x32: 8
            case .x64: 16
            }
            return (.product(elementsPerCode: group), c.alwaysRam ?? false)
        case .turbo(let c)?:
            let method: QuantizationMethod = switch c.bits {
            case .bits1?: .binary(bits: .one, asymmetric: true)
            case .bits1_5?: .binary(bits: .oneAndHalf, asymmetric: false)
            case .bits2?: .binary(bits: .two, asymmetric: true)
            case .bits4?, nil: .scalar(quantile: 1)
            }
            return (method, c.alwaysRam ?? false)
        }
    }

    /// The quantized codes' file of vector number `index` (`kind` "multi-" for a multivector's
    /// rows), named by the method.
    func quantizationFile(_ index: Int, kind: String = "") -> String? {
        guard let quantization else { return nil }
        let method = switch quantization {
        case .scalar(let quantile): "scalar-q\(Int((quantile * 1_000_000).rounded()))"
        case .binary(let bits, let asymmetric): "binary-\(bits)\(asymmetric ? "-asym" : "")"
        case .product(let group): "pq-\(group)"
        }
        return "quant-\(kind)\(index)-\(method)-\(distance.rawValue.lowercased()).bin"
    }

    /// `m: 0` turns the graph off, as in Qdrant.
    var buildsGraph: Bool { m > 0 }

    /// The graph file of vector number `index` (in name order): named by what shapes the graph,
    /// so a changed configuration never reads a stale file.
    func graphFile(_ index: Int) -> String {
        "hnsw-\(index)-m\(m)-ef\(efConstruct)-pm\(payloadM)-\(distance.rawValue.lowercased()).bin"
    }

    /// Whether an index built with `other` serves this configuration (storage modes aside).
    func sameIndex(_ other: VectorIndexSpec) -> Bool {
        m == other.m && efConstruct == other.efConstruct && payloadM == other.payloadM && distance == other.distance
            && (payloadM == 0 || blockMinimum == other.blockMinimum) && quantization == other.quantization
    }

    var metric: IndexMetric { distance.indexMetric }
}

extension Distance {
    /// How an index compares vectors of this distance (Cosine as Dot on normalised vectors).
    var indexMetric: IndexMetric {
        switch self {
        case .dot, .cosine: .dot
        case .euclid: .l2
        case .manhattan: .l1
        }
    }
}

/// Float32 copies of vectors stored as float16 or uint8, for the graph to compare.
final class FloatCopy: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<Float>
    init(count: Int) {
        pointer = .allocate(capacity: max(1, count))
        pointer.initialize(repeating: 0, count: max(1, count))
    }
    deinit { pointer.deallocate() }
}

/// Search contexts reused across queries (their visited marks are as large as the segment).
final class ContextPool: Sendable {
    let count: Int
    private let free = Mutex<[SearchContext]>([])

    init(count: Int) { self.count = count }

    func with<R>(_ body: (SearchContext) -> R) -> R {
        let context = free.withLock { $0.popLast() } ?? SearchContext(count: count)
        defer { free.withLock { if $0.count < 16 { $0.append(context) } } }
        return body(context)
    }
}

/// One vector's HNSW graph in an immutable segment, with the vectors it compares and, when
/// configured, their quantized codes.
struct SegmentVectorIndex: @unchecked Sendable {
    let spec: VectorIndexSpec
    let graph: HNSWGraph
    let space: VectorSpace
    /// Keeps `space`'s memory alive: the column's region, or a float32 copy.
    let vectors: AnyObject
    let quantized: QuantizedVectors?
    let contexts: ContextPool

    /// The `k` nearest offsets `accept` lets through, nearest first, by float distance, or by
    /// quantized distance when the segment has codes and `quantized` is true.
    /// With `acorn`, the walk looks through rejected neighbours to theirs (`HNSWGraph.searchACORN`).
    func search(_ query: UnsafePointer<Float>, k: Int, ef: Int, accept: LivePoints, quantized useCodes: Bool, acorn: Bool = false) -> [Neighbor] {
        contexts.with { context in
            if useCodes, let quantized {
                let scorer = quantized.scorer(query, metric: spec.metric)
                return acorn ? graph.searchACORN(scorer, k: k, ef: ef, filter: accept, context: context)
                    : graph.search(scorer, k: k, ef: ef, filter: accept, context: context)
            }
            if acorn { return graph.searchACORN(FloatScorer(space: space, query: query), k: k, ef: ef, filter: accept, context: context) }
            return graph.search(query, k: k, ef: ef, space: space, filter: accept, context: context)
        }
    }
}

extension ImmutableSegment {
    /// The float32 vectors of column `name` as one contiguous array, and what keeps it alive.
    func floatVectors(_ name: String) -> (UnsafePointer<Float>, AnyObject)? {
        guard let column = columns[name] else { return nil }
        if column.datatype == .float32 || column.datatype == .turbo4 {
            guard let raw = column.region.bytes.baseAddress else {
                let empty = FloatCopy(count: 1)
                return (UnsafePointer(empty.pointer), empty)
            }
            return (raw.assumingMemoryBound(to: Float.self), column.region)
        }
        let copy = FloatCopy(count: totalCount * column.dimension)
        for offset in 0..<totalCount {
            let v = vector(name, at: offset)
            (copy.pointer + offset * column.dimension).update(from: v, count: v.count)
        }
        return (UnsafePointer(copy.pointer), copy)
    }

    func vectorSpace(_ name: String, spec: VectorIndexSpec) -> (VectorSpace, AnyObject)? {
        guard let (base, owner) = floatVectors(name), let dimension = dimensions[name] else { return nil }
        return (VectorSpace(base: base, count: totalCount, dimension: dimension, metric: spec.metric), owner)
    }

    /// Loads the graph files the specs name; a missing or damaged file leaves that vector without
    /// a graph, which the optimizer then builds (`missingVectorIndexes`). When nothing is missing,
    /// files of other configurations are removed.
    mutating func loadVectorIndexes(_ specs: [String: VectorIndexSpec], disk: any Disk) {
        loadMultiIndexes(specs, disk: disk)
        vectorIndexes = [:]
        for (name, column) in columns {
            let number = column.number
            guard let spec = specs[name], spec.buildsGraph else { continue }
            guard let region = open(spec.graphFile(number), mapped: spec.onDisk, disk: disk),
                  let graph = HNSWGraph(file: region.bytes, owner: region), graph.count == totalCount,
                  let (space, owner) = vectorSpace(name, spec: spec) else { continue }
            if spec.onDisk { region.adviseRandomAccess() }
            var quantized: QuantizedVectors?
            if let file = spec.quantizationFile(number) {
                guard let loaded = loadCodes(file, of: name, spec, count: totalCount, disk: disk) else { continue }
                quantized = loaded
            }
            vectorIndexes[name] = SegmentVectorIndex(spec: spec, graph: graph, space: space, vectors: owner, quantized: quantized,
                                                     contexts: ContextPool(count: totalCount))
        }
        // Files of a configuration no longer in force (the graphs still wanted are rebuilt).
        if missingVectorIndexes(specs).isEmpty { removeUnusedIndexFiles(disk: disk) }
    }

    /// The vectors whose graph the specs ask for and the segment lacks (or has for other settings).
    func missingVectorIndexes(_ specs: [String: VectorIndexSpec]) -> [String] {
        specs.compactMap { name, spec in
            guard spec.buildsGraph else { return nil }
            if columns[name] != nil {
                guard let index = vectorIndexes[name], index.spec.sameIndex(spec) else { return name }
            } else if multiColumns[name] != nil {
                guard let index = multiIndexes[name], index.spec.sameIndex(spec) else { return name }
            }
            return nil
        }
    }

    /// Builds the missing graphs over the live points that have the vector, writes their files and
    /// removes graph files no spec names. Takes as long as the build: run it off the shard's actor.
    /// A graph with a seed in `seeds` starts from that earlier graph's links (see
    /// `HNSWGraph.build(_:_:only:reusing:)`). Once `stop` is requested it returns with graphs
    /// missing: the caller throws the segment away.
    mutating func buildVectorIndexes(_ specs: [String: VectorIndexSpec], disk: any Disk, seeds: [String: GraphSeed] = [:],
                                     stop: BuildStop? = nil) {
        let missing = missingVectorIndexes(specs)
        buildMultiIndexes(missing.filter { multiColumns[$0] != nil }, specs, disk: disk, stop: stop)
        for name in missing where columns[name] != nil {
            if stop?.requested == true { return }
            let spec = specs[name]!
            let number = columns[name]!.number
            guard let (space, owner) = vectorSpace(name, spec: spec) else { continue }
            let has = hasVectorFlags[name] ?? []
            let points = (0..<totalCount).compactMap { offset -> UInt32? in
                isLive(at: offset) && offset < has.count && has[offset] ? UInt32(offset) : nil
            }
            let parameters = HNSWParameters(m: spec.m, efConstruct: spec.efConstruct, threads: spec.threads, stop: stop)
            // As in Qdrant: values held by more than about 4 / (links per point) of the points are
            // reached well enough through the graph's own links and get none.
            let blocks = spec.payloadM > 0
                ? payloadBlocks(minimum: max(2, spec.blockMinimum), maximum: max(2, points.count * 4 / spec.m), among: points) : []
            var graph = if let seed = seeds[name], blocks.isEmpty {
                HNSWGraph.build(space, parameters, only: points, reusing: seed).graph
            } else {
                HNSWGraph.build(space, parameters, only: points, extraLinks: blocks.isEmpty ? 0 : 2 * spec.payloadM)
            }
            if !blocks.isEmpty {
                graph.addPayloadLinks(space, blocks: blocks,
                                      HNSWParameters(m: spec.payloadM, efConstruct: spec.efConstruct, threads: spec.threads))
            }
            if stop?.requested == true { return }
            // A file that cannot be written only costs a rebuild at the next start; a mapped index
            // is searched from its file.
            let graphFile = spec.graphFile(number)
            if (try? disk.writeFileAtomically(joinPath(directory, graphFile), graph.encoded())) != nil, spec.onDisk,
               let region = open(graphFile, mapped: true, disk: disk), let mapped = HNSWGraph(file: region.bytes, owner: region) {
                region.adviseRandomAccess()
                graph = mapped
            }
            let quantized = spec.quantizationFile(number).map { trainCodes(space, points: points, file: $0, of: name, spec, disk: disk) }
            vectorIndexes[name] = SegmentVectorIndex(spec: spec, graph: graph, space: space, vectors: owner, quantized: quantized,
                                                     contexts: ContextPool(count: totalCount))
        }
        removeUnusedIndexFiles(disk: disk)
    }

    /// A file of the segment's directory, memory-mapped or read into memory; nil when missing
    /// or unreadable.
    func open(_ file: String, mapped: Bool, disk: any Disk) -> ByteRegion? {
        let path = joinPath(directory, file)
        guard disk.fileExists(path) else { return nil }
        return try? mapped ? disk.map(path) : disk.readRegion(path)
    }

    /// The codes in `file` for vector `name`, when the file is whole and holds `count` codes of the
    /// spec's method; nil otherwise (the optimizer then builds the index again).
    func loadCodes(_ file: String, of name: String, _ spec: VectorIndexSpec, count: Int, disk: any Disk) -> QuantizedVectors? {
        guard let region = open(file, mapped: codesMapped(name, spec), disk: disk),
              let loaded = QuantizedVectors.load(file: region.bytes, owner: region), loaded.count == count,
              loaded.method == spec.quantization else { return nil }
        if codesMapped(name, spec) { region.adviseRandomAccess() }
        return loaded
    }

    /// Codes of `points` of `space` (dense vectors, or a multivector's rows) by the spec's method,
    /// written to `file` and, when they are not kept in memory, served from it mapped. A file that
    /// cannot be written only costs a rebuild at the next start.
    func trainCodes(_ space: VectorSpace, points: [UInt32], file: String, of name: String, _ spec: VectorIndexSpec, disk: any Disk) -> QuantizedVectors {
        let codes = QuantizedVectors.train(space, method: spec.quantization!, points: points)
        if (try? disk.writeFileAtomically(joinPath(directory, file), codes.encoded())) != nil, codesMapped(name, spec),
           let region = open(file, mapped: true, disk: disk), let mapped = QuantizedVectors.load(file: region.bytes, owner: region) {
            region.adviseRandomAccess()
            return mapped
        }
        return codes
    }

    /// Quantized codes stay in memory with `always_ram` or when the vectors do; else they are mapped.
    func codesMapped(_ name: String, _ spec: VectorIndexSpec) -> Bool {
        !spec.quantizationInRAM && (columns[name]?.onDisk ?? multiColumns[name]?.onDisk ?? false)
    }

    /// Removes graph and code files that no index of the segment uses (left by another
    /// configuration).
    func removeUnusedIndexFiles(disk: any Disk) {
        var wanted = Set<String>()
        for (name, index) in vectorIndexes {
            guard let number = columns[name]?.number else { continue }
            wanted.insert(index.spec.graphFile(number))
            if let file = index.spec.quantizationFile(number) { wanted.insert(file) }
        }
        for (name, column) in multiColumns {
            guard let index = multiIndexes[name] else { continue }
            wanted.insert(Self.multiGraphFile(index.spec, column.number))
            if index.quantized != nil, let file = index.spec.quantizationFile(column.number, kind: "multi-") { wanted.insert(file) }
        }
        for file in (try? disk.listDirectory(directory)) ?? [] where (file.hasPrefix("hnsw-") || file.hasPrefix("quant-")) && !wanted.contains(file) {
            try? disk.removeItem(joinPath(directory, file))
        }
    }

    /// The points of each keyword or integer value held by `minimum...maximum` of `points`, from
    /// the payload indexes.
    func payloadBlocks(minimum: Int, maximum: Int, among points: [UInt32]) -> [[UInt32]] {
        var included = [Bool](repeating: false, count: totalCount)
        for point in points { included[Int(point)] = true }
        var blocks: [[UInt32]] = []
        for key in indexes.keys.sorted() {
            let index = indexes[key]!
            guard index.schema.type == .keyword || index.schema.type == .integer else { continue }
            for offsets in index.valueBlocks(minimum: minimum) {
                let block = offsets.compactMap { included[Int($0)] ? UInt32($0) : nil }
                if (minimum...max(minimum, maximum)).contains(block.count) { blocks.append(block) }
            }
        }
        return blocks
    }
}
