import DiskIO
public import QuiverModel
import VectorIndex

/// Search on multivectors by late interaction (`max_sim`): each segment's graph over its
/// multivectors, or an exact scan, chosen as for dense vectors (`SegmentEntry.plan`).
extension LocalShard {
    /// The best `limit` live points that have multivector `name` and pass `filter`, best first,
    /// scored by `max_sim` with `query` (rows normalised for Cosine): the summed similarity for Dot
    /// and Cosine, the summed distance for Euclid and Manhattan (see `MaxSim`). `threshold` is a
    /// score as users see it.
    public func searchMulti(_ query: MultiVector, using name: String, distance: Distance, filter: Filter?, limit: Int,
                            threshold: Float?, withPayload: WithPayload, withVector: WithVector,
                            options: SearchOptions = SearchOptions()) -> [ScoredPoint] {
        guard limit > 0 else { return [] }
        let maxSim = MaxSim(distance)
        let minimum = threshold.map(maxSim.threshold)
        var best = TopK(limit: limit)
        for (segment, entry) in segments.entries.enumerated() {
            func consider(_ offset: Int, _ rows: UnsafeBufferPointer<Float>, checkFilter: Bool) {
                let score = maxSim.score(query, rows)
                if let minimum, score < minimum { return }
                guard best.admits(score) else { return }
                if checkFilter, let filter, !entry.matches(filter, at: offset) { return }
                best.insert(Candidate(goodness: score, score: maxSim.displayed(score), id: entry.data.id(at: offset), segment: segment, offset: offset))
            }
            let index = entry.immutable?.multiIndexes[name]
            let plan = entry.plan(filter, vectorIndexed: index != nil, exact: options.exact, fullScanThreshold: options.fullScanThreshold)
            if options.leavesOut(plan, of: entry, indexed: index != nil) { continue }
            switch plan {
            case .vectorIndex:
                // As for dense vectors: the codes choose `oversampling` × limit candidates, which
                // the float rows then score.
                let quantized = index!.quantized != nil && !options.ignoreQuantization
                let k = options.candidates(limit, quantized: quantized)
                let hits = index!.search(query, k: k, ef: max(k, options.hnswEf ?? index!.spec.efConstruct),
                                         accept: LivePoints(entry: entry, filter: filter), quantized: quantized,
                                         acorn: options.walksByACORN(filter, in: entry))
                for hit in hits {
                    _ = entry.withMultiVector(name, at: Int(hit.point)) { consider(Int(hit.point), $0, checkFilter: false) }
                }
            case .candidates(let candidates):
                let data = entry.data
                for candidate in candidates where data.isLive(at: Int(candidate)) {
                    _ = entry.withMultiVector(name, at: Int(candidate)) { consider(Int(candidate), $0, checkFilter: true) }
                }
            case .fullScan:
                entry.forEachMultiVector(name) { consider($0, $1, checkFilter: true) }
            }
        }
        return best.sorted().map { candidate in
            let entry = segments.entries[candidate.segment]
            let record = entry.record(at: candidate.offset, withPayload: withPayload, withVector: withVector)
            return ScoredPoint(record, score: candidate.score, version: entry.version(at: candidate.offset))
        }
    }
}

extension SegmentEntry {
    /// Calls `body` with the rows of the point's multivector `name` as float32, one after another;
    /// nil when it has none.
    func withMultiVector<R>(_ name: String, at offset: Int, _ body: (UnsafeBufferPointer<Float>) -> R) -> R? {
        if let appendable { return appendable.multi[name]?.vectors[offset]?.flat.withUnsafeBufferPointer(body) }
        return immutable!.multiColumns[name]?.withVectors(at: offset, body)
    }

    /// Calls `body` with each live point that has multivector `name` and its rows.
    func forEachMultiVector(_ name: String, _ body: (Int, UnsafeBufferPointer<Float>) -> Void) {
        if let appendable {
            for (offset, vector) in appendable.multi[name]?.vectors ?? [:] where appendable.isLive(at: offset) {
                vector.flat.withUnsafeBufferPointer { body(offset, $0) }
            }
            return
        }
        let segment = immutable!
        guard let column = segment.multiColumns[name] else { return }
        for offset in 0..<segment.totalCount where segment.isLive(at: offset) {
            _ = column.withVectors(at: offset) { body(offset, $0) }
        }
    }
}

/// One multivector's HNSW graph in an immutable segment, with the rows it compares and, when
/// configured, their quantized codes (one code per row).
struct MultiVectorIndex: @unchecked Sendable {
    let spec: VectorIndexSpec
    let graph: HNSWGraph
    let space: MultiVectorSpace
    /// Keep `space`'s memory alive: the rows (the column's region or a float32 copy) and the
    /// row starts.
    let owners: [AnyObject]
    let quantized: QuantizedVectors?
    let contexts: ContextPool

    /// The `k` nearest points `accept` lets through, by `max_sim` over the float rows, or over
    /// the rows' codes when the index has them and `quantized` is true. With `acorn`, the walk
    /// looks through rejected neighbours to theirs (`HNSWGraph.searchACORN`).
    func search<F: PointFilter>(_ query: MultiVector, k: Int, ef: Int, accept: F, quantized useCodes: Bool, acorn: Bool = false) -> [Neighbor] {
        query.flat.withUnsafeBufferPointer { rows in
            contexts.with { context in
                func walk<S: QueryScorer>(_ scorer: S) -> [Neighbor] {
                    acorn ? graph.searchACORN(scorer, k: k, ef: ef, filter: accept, context: context)
                        : graph.search(scorer, k: k, ef: ef, filter: accept, context: context)
                }
                if useCodes, let quantized {
                    return walk(QuantizedMultiScorer(quantized, rowStarts: space.rowStarts, query: rows.baseAddress!, rows: query.count,
                                                     metric: spec.metric))
                }
                return walk(MultiScorer(space: space, query: rows.baseAddress!, rows: query.count))
            }
        }
    }
}

/// Row starts of a multivector column, as the graph reads them.
final class RowStarts: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<Int>
    init(_ values: [Int]) {
        pointer = .allocate(capacity: max(1, values.count))
        pointer.initialize(from: values, count: values.count)
    }
    deinit { pointer.deallocate() }
}

extension ImmutableSegment {
    /// The multivectors of `name` as a graph compares them, and what keeps their memory alive.
    func multiVectorSpace(_ name: String, spec: VectorIndexSpec) -> (MultiVectorSpace, [AnyObject])? {
        guard let column = multiColumns[name] else { return nil }
        let starts = RowStarts((0...totalCount).map(column.rowStart))
        let rows = starts.pointer[totalCount]
        let base: UnsafePointer<Float>
        let owner: AnyObject
        if (column.datatype == .float32 || column.datatype == .turbo4), let raw = column.data.bytes.baseAddress {
            (base, owner) = (raw.assumingMemoryBound(to: Float.self), column.data)
        } else {
            let copy = FloatCopy(count: rows * column.dimension)
            let elements = column.elements(0..<rows)
            copy.pointer.update(from: elements, count: elements.count)
            (base, owner) = (UnsafePointer(copy.pointer), copy)
        }
        let space = VectorSpace(base: base, count: rows, dimension: column.dimension, metric: spec.metric)
        return (MultiVectorSpace(rows: space, rowStarts: starts.pointer, count: totalCount), [owner, starts])
    }

    /// The graph file of multivector number `index` (in name order).
    static func multiGraphFile(_ spec: VectorIndexSpec, _ index: Int) -> String {
        "hnsw-multi-\(index)-m\(spec.m)-ef\(spec.efConstruct)-\(spec.distance.rawValue.lowercased()).bin"
    }

    /// Loads the multivector graphs and codes the specs name (a missing or damaged file leaves
    /// that multivector without an index, for the optimizer to build).
    mutating func loadMultiIndexes(_ specs: [String: VectorIndexSpec], disk: any Disk) {
        multiIndexes = [:]
        for (name, column) in multiColumns {
            guard let spec = specs[name], spec.buildsGraph,
                  let region = open(Self.multiGraphFile(spec, column.number), mapped: spec.onDisk, disk: disk),
                  let graph = HNSWGraph(file: region.bytes, owner: region), graph.count == totalCount,
                  let (space, owners) = multiVectorSpace(name, spec: spec) else { continue }
            var quantized: QuantizedVectors?
            if let file = spec.quantizationFile(column.number, kind: "multi-") {
                guard let loaded = loadCodes(file, of: name, spec, count: space.rows.count, disk: disk) else { continue }
                quantized = loaded
            }
            multiIndexes[name] = MultiVectorIndex(spec: spec, graph: graph, space: space, owners: owners, quantized: quantized,
                                                  contexts: ContextPool(count: totalCount))
        }
    }

    /// Builds the multivector graphs `missingVectorIndexes` names, over the live points that have
    /// the multivector, and writes their files.
    mutating func buildMultiIndexes(_ names: [String], _ specs: [String: VectorIndexSpec], disk: any Disk, stop: BuildStop? = nil) {
        for name in names {
            guard let spec = specs[name], let column = multiColumns[name], let (space, owners) = multiVectorSpace(name, spec: spec) else { continue }
            let number = column.number
            let points = (0..<totalCount).compactMap { offset -> UInt32? in isLive(at: offset) && column.has(offset) ? UInt32(offset) : nil }
            var graph = HNSWGraph.build(space, HNSWParameters(m: spec.m, efConstruct: spec.efConstruct, threads: spec.threads, stop: stop),
                                        only: points)
            if stop?.requested == true { return }
            let file = Self.multiGraphFile(spec, number)
            if (try? disk.writeFileAtomically(joinPath(directory, file), graph.encoded())) != nil, spec.onDisk,
               let region = open(file, mapped: true, disk: disk), let mapped = HNSWGraph(file: region.bytes, owner: region) {
                graph = mapped
            }
            // The codes of the rows of the points the graph holds.
            let quantized = spec.quantizationFile(number, kind: "multi-").map { file in
                let rows = points.flatMap { point in (space.rowStarts[Int(point)]..<space.rowStarts[Int(point) + 1]).map { UInt32($0) } }
                return trainCodes(space.rows, points: rows, file: file, of: name, spec, disk: disk)
            }
            multiIndexes[name] = MultiVectorIndex(spec: spec, graph: graph, space: space, owners: owners, quantized: quantized,
                                                  contexts: ContextPool(count: totalCount))
        }
    }
}

extension LocalShard {
    /// Up to `limit` live points passing `filter`, drawn uniformly at random with `seed`
    /// (reservoir sampling over every segment), score 1: the `sample: random` query.
    public func sample(seed: UInt64, filter: Filter?, limit: Int, withPayload: WithPayload, withVector: WithVector) -> [ScoredPoint] {
        guard limit > 0 else { return [] }
        var generator = SplitMix(seed: seed)
        var chosen: [(segment: Int, offset: Int)] = []
        var seen = 0
        for (segment, entry) in segments.entries.enumerated() {
            let data = entry.data
            for offset in 0..<data.totalCount where data.isLive(at: offset) {
                if let filter, !entry.matches(filter, at: offset) { continue }
                seen += 1
                if chosen.count < limit {
                    chosen.append((segment, offset))
                } else {
                    let slot = Int(generator.next() % UInt64(seen))
                    if slot < limit { chosen[slot] = (segment, offset) }
                }
            }
        }
        chosen.shuffle(using: &generator)
        return chosen.map { segment, offset in
            let entry = segments.entries[segment]
            return ScoredPoint(entry.record(at: offset, withPayload: withPayload, withVector: withVector), score: 1, version: entry.version(at: offset))
        }
    }
}
