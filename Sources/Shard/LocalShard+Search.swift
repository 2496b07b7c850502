import CVectorKernels
import Foundation
public import QuiverJSON
public import QuiverModel
import VectorIndex

/// Nearest-neighbour search over a shard's segments: each segment's graph, or an exact scan.
///
/// A search holds the shard's actor only to scan the appendable segments (small, and changed in
/// place by writes) and to take the immutable segments as they are at that moment (values: a
/// later write changes the actor's copy, not the one being searched). The immutable segments are
/// then searched off the actor, in parallel up to the core count, so writes and other searches
/// of the shard do not wait for them; the points found are one consistent view of the shard.
extension LocalShard {
    /// The best `limit` points by `distance` to `query` among the live points that have vector
    /// `name` and pass `filter`, best first. Scores are what Qdrant reports: the similarity for
    /// Dot and Cosine (stored and query vectors normalised), the distance for Euclid and Manhattan.
    /// `threshold` drops worse scores. Ties go to the smaller id. Each segment's plan (`plan`)
    /// compares the filter's estimated cardinality with `options.fullScanThreshold` points and
    /// chooses its graph (approximate) or a scan (exact); `options.exact` always scans.
    public nonisolated func search(_ query: [Float], using name: String, distance: Distance, filter: Filter?, limit: Int,
                                   threshold: Float?, withPayload: WithPayload, withVector: WithVector,
                                   options: SearchOptions = SearchOptions()) async -> [ScoredPoint] {
        let search = DenseSearch(query: query, name: name, distance: distance, filter: filter, limit: limit,
                                 minimum: threshold.map { distance.higherIsBetter ? $0 : -$0 }, options: options)
        guard limit > 0, let (tail, frozen) = await searchAppendable(search, withPayload: withPayload, withVector: withVector) else { return [] }
        let best = await Self.inParallel(frozen) { search.run(on: frozen, $0) }
        var found = tail.map { (goodness: distance.higherIsBetter ? $0.score : -$0.score, id: $0.id, point: Optional($0), candidate: Candidate?.none) }
        found += best.map { (goodness: $0.goodness, id: $0.id, point: nil, candidate: Optional($0)) }
        found.sort { $0.goodness != $1.goodness ? $0.goodness > $1.goodness : $0.id < $1.id }
        return found.prefix(limit).map { hit in
            if let point = hit.point { return point }
            let candidate = hit.candidate!, entry = frozen[candidate.segment]
            let record = entry.record(at: candidate.offset, withPayload: withPayload, withVector: withVector)
            return ScoredPoint(record, score: candidate.score, version: entry.version(at: candidate.offset))
        }
    }

    /// Under the actor: the best points of the appendable segments, read out, and the immutable
    /// segments to search next. Nil when the query does not fit the vector.
    private func searchAppendable(_ search: DenseSearch, withPayload: WithPayload,
                                  withVector: WithVector) -> (tail: [ScoredPoint], frozen: [SegmentEntry])? {
        guard search.query.count == segments.dimensions[search.name] else { return nil }
        var best = TopK(limit: search.limit)
        var frozen: [SegmentEntry] = []
        for (segment, entry) in segments.entries.enumerated() {
            if entry.isAppendable { search.run(entry, segment: segment, into: &best) } else { frozen.append(entry) }
        }
        let tail = best.sorted().map { candidate in
            let entry = segments.entries[candidate.segment]
            let record = entry.record(at: candidate.offset, withPayload: withPayload, withVector: withVector)
            return ScoredPoint(record, score: candidate.score, version: entry.version(at: candidate.offset))
        }
        return (tail, frozen)
    }

    /// `body` over the segments, shared out by size among up to the core count of tasks (this
    /// one included; each task gets indexes into `entries`): the best candidates of all of them.
    static func inParallel(_ entries: [SegmentEntry], _ body: @escaping @Sendable ([Int]) -> TopK) async -> [Candidate] {
        guard entries.count > 1 else { return entries.isEmpty ? [] : body([0]).heap }
        // The largest segment first, each to the task with the fewest points so far.
        var parts = [[Int]](repeating: [], count: min(entries.count, coreCount))
        var loads = [Int](repeating: 0, count: parts.count)
        let sizes = entries.map(\.liveCount)
        for index in entries.indices.sorted(by: { sizes[$0] > sizes[$1] }) {
            let lightest = loads.indices.min { loads[$0] < loads[$1] }!
            parts[lightest].append(index)
            loads[lightest] += sizes[index]
        }
        return await withTaskGroup(of: TopK.self) { group in
            // On the shared pool even when the request's task prefers another executor (the REST
            // edge runs a request on its connection's event loop), so the parts use every core.
            for part in parts.dropFirst() { group.addTask(executorPreference: globalConcurrentExecutor) { body(part) } }
            var all = body(parts[0]).heap
            for await part in group { all += part.heap }
            return all
        }
    }

    /// The stored vector `name` of a live point, dense, sparse or multi (for queries by point id).
    public func vector(of id: PointID, name: String) -> QueryInput? {
        guard let (segment, offset) = segments.find(id) else { return nil }
        let record = segments.entries[segment].record(at: offset, withPayload: .none, withVector: .named([name]))
        if let dense = record.vectors?[name] { return .vector(dense) }
        if let sparse = record.sparse?[name] { return .sparse(sparse) }
        return record.multi?[name].map(QueryInput.multi)
    }
}

/// The cores this process may use, read once (Foundation reads cgroup files for it).
let coreCount = max(1, ProcessInfo.processInfo.activeProcessorCount)

/// One dense-vector search, run segment by segment.
struct DenseSearch: Sendable {
    let query: [Float]
    let name: String
    let distance: Distance
    let filter: Filter?
    let limit: Int
    /// `score_threshold` as goodness.
    let minimum: Float?
    let options: SearchOptions

    /// The best `limit` candidates of the segments `indexes` of `entries` (immutable segments;
    /// a candidate's `segment` is its index in `entries`).
    func run(on entries: [SegmentEntry], _ indexes: [Int]) -> TopK {
        var best = TopK(limit: limit)
        for index in indexes { run(entries[index], segment: index, into: &best) }
        return best
    }

    /// Adds the segment's candidates to `best`: from its graph, or by scoring the points a
    /// payload index proposes, or all of them.
    func run(_ entry: SegmentEntry, segment: Int, into best: inout TopK) {
        let name = self.name, filter = self.filter, options = self.options, limit = self.limit
        query.withUnsafeBufferPointer { q in
            let index = entry.immutable?.vectorIndexes[name]
            let plan = entry.plan(filter, vectorIndexed: index != nil, exact: options.exact, fullScanThreshold: options.fullScanThreshold)
            if options.leavesOut(plan, of: entry, indexed: index != nil) { return }
            // The graph checks the filter while it walks; its hits are only scored.
            let scan = Scan(query: q, distance: distance, minimum: minimum, filter: plan == .vectorIndex ? nil : filter,
                            entry: entry, segment: segment)
            switch plan {
            case .vectorIndex:
                let accept = LivePoints(entry: entry, filter: filter)
                // Quantized codes choose `oversampling` × limit candidates, which the float
                // vectors then rank (rescoring); without rescoring only `limit` are chosen.
                let quantized = index!.quantized != nil && !options.ignoreQuantization
                let k = options.candidates(limit, quantized: quantized)
                let hits = index!.search(q.baseAddress!, k: k, ef: max(k, options.hnswEf ?? index!.spec.efConstruct), accept: accept,
                                         quantized: quantized, acorn: options.walksByACORN(filter, in: entry))
                for hit in hits {
                    entry.withVector(name, at: Int(hit.point)) { scan.consider(Int(hit.point), $0, into: &best) }
                }
            case .candidates(let candidates):
                // A payload index narrowed the points down: score only those.
                entry.forEachVector(name, at: candidates) { scan.consider($0, $1, into: &best) }
            case .fullScan:
                entry.forEachVector(name) { scan.consider($0, $1, into: &best) }
            }
        }
    }
}

extension SearchOptions {
    /// `indexed_only`: a segment without a graph for the vector is searched only when scanning
    /// it is cheap (the points `plan` would score).
    func leavesOut(_ plan: SearchPlan, of entry: SegmentEntry, indexed: Bool) -> Bool {
        guard !indexed, let most = unindexedPointsMax else { return false }
        let scanned = if case .candidates(let candidates) = plan { candidates.count } else { entry.liveCount }
        return scanned > most
    }

    /// `acorn`: a segment's graph is walked by ACORN when the filter is expected to pass few
    /// enough of its points.
    func walksByACORN(_ filter: Filter?, in entry: SegmentEntry) -> Bool {
        guard let filter, let most = acornMaxSelectivity else { return false }
        return Double(entry.cardinality(filter).expected) <= most * Double(max(1, entry.liveCount))
    }
}

/// How a search may use the segments' indexes.
public struct SearchOptions: Sendable {
    /// Scan every point (`params.exact`).
    public var exact: Bool
    /// Filters expected to pass at most this many points of a segment are answered by scoring
    /// them directly rather than through the graph (`full_scan_threshold` in points).
    public var fullScanThreshold: Int
    /// The graph search's beam (`params.hnsw_ef`); the graph's `ef_construct` when nil.
    public var hnswEf: Int?
    /// `params.quantization`: search with the float vectors only (`ignore`); rank the quantized
    /// candidates by the float vectors (`rescore`), taking `oversampling` × limit of them.
    public var ignoreQuantization: Bool
    public var rescore: Bool
    public var oversampling: Double
    /// `params.indexed_only`: a segment without a graph for the vector is left out when more
    /// than this many of its points would be scanned (nil: every segment is searched).
    public var unindexedPointsMax: Int?
    /// `params.acorn` when enabled: its `max_selectivity` (filters expected to pass at most this
    /// share of a segment's points walk its graph by ACORN); nil when off.
    public var acornMaxSelectivity: Double?

    /// How many candidates a graph search takes for `limit` results: `oversampling` × limit when
    /// it walks quantized codes whose candidates the float vectors rank again.
    func candidates(_ limit: Int, quantized: Bool) -> Int {
        quantized && rescore ? Int((Double(limit) * max(1, oversampling)).rounded(.up)) : limit
    }

    public init(exact: Bool = false, fullScanThreshold: Int = .max, hnswEf: Int? = nil,
                ignoreQuantization: Bool = false, rescore: Bool = true, oversampling: Double = 1, unindexedPointsMax: Int? = nil,
                acornMaxSelectivity: Double? = nil) {
        self.exact = exact
        self.fullScanThreshold = fullScanThreshold
        self.hnswEf = hnswEf
        self.ignoreQuantization = ignoreQuantization
        self.rescore = rescore
        self.oversampling = oversampling
        self.unindexedPointsMax = unindexedPointsMax
        self.acornMaxSelectivity = acornMaxSelectivity
    }
}

extension LivePoints {
    /// What a graph search in an immutable segment checks at each point it may return: live, and
    /// passing the filter. When the payload indexes answer every condition exactly (`must` of
    /// value matches on indexed fields), their offsets decide alone; otherwise they narrow the
    /// points whose payload is read.
    init(entry: SegmentEntry, filter: Filter?) {
        let segment = entry.immutable!
        guard let filter else {
            self.init(deleted: segment.deleted)
            return
        }
        let indexes = segment.indexes
        var allowed: [Bool]?
        var exact = filter.should == nil && filter.mustNot == nil && filter.minShould == nil
        for condition in filter.must ?? [] {
            guard case .field(let field) = condition, let index = indexes[field.key], let found = index.candidates(field) else {
                exact = false
                continue
            }
            if !index.answersExactly(field) { exact = false }
            var bits = [Bool](repeating: false, count: segment.totalCount)
            for offset in found where allowed?[Int(offset)] ?? true { bits[Int(offset)] = true }
            allowed = bits
        }
        let check: ((UInt32) -> Bool)? = exact && allowed != nil ? nil : { entry.matches(filter, at: Int($0)) }
        self.init(deleted: segment.deleted, allowed: allowed, check: check)
    }
}

extension Distance {
    public var higherIsBetter: Bool { self == .dot || self == .cosine }

    func score(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ dimension: Int) -> Float {
        switch self {
        case .dot, .cosine: quiver_dot_f32(a, b, dimension)
        case .euclid: quiver_l2sq_f32(a, b, dimension).squareRoot()
        case .manhattan: quiver_l1_f32(a, b, dimension)
        }
    }
}

/// Scoring of one segment's points against the query.
struct Scan {
    let query: UnsafeBufferPointer<Float>
    let distance: Distance
    /// `score_threshold` as goodness.
    let minimum: Float?
    let filter: Filter?
    let entry: SegmentEntry
    let segment: Int

    /// Scores the point, and checks the filter only when the score would make the cut.
    func consider(_ offset: Int, _ vector: UnsafePointer<Float>, into best: inout TopK) {
        let score = distance.score(query.baseAddress!, vector, query.count)
        let goodness = distance.higherIsBetter ? score : -score
        if let minimum, goodness < minimum { return }
        guard best.admits(goodness) else { return }
        if let filter, !entry.matches(filter, at: offset) { return }
        best.insert(Candidate(goodness: goodness, score: score, id: entry.data.id(at: offset), segment: segment, offset: offset))
    }
}

struct Candidate: Sendable {
    /// Higher is better, whatever the distance.
    let goodness: Float
    let score: Float
    let id: PointID
    let segment: Int
    let offset: Int

    /// Better: more goodness, then the smaller id.
    func beats(_ other: Candidate) -> Bool {
        goodness != other.goodness ? goodness > other.goodness : id < other.id
    }
}

/// The `limit` best candidates: a binary heap with the worst at the root.
struct TopK: Sendable {
    let limit: Int
    private(set) var heap: [Candidate] = []

    init(limit: Int) {
        self.limit = limit
        heap.reserveCapacity(min(limit, 4096))
    }

    /// Whether a candidate this good may enter (ties are decided in `insert`).
    func admits(_ goodness: Float) -> Bool { heap.count < limit || goodness >= heap[0].goodness }

    mutating func insert(_ candidate: Candidate) {
        if heap.count < limit {
            heap.append(candidate)
            var child = heap.count - 1
            while child > 0 {
                let parent = (child - 1) / 2
                guard heap[parent].beats(heap[child]) else { break }
                heap.swapAt(parent, child)
                child = parent
            }
            return
        }
        guard candidate.beats(heap[0]) else { return }
        heap[0] = candidate
        var parent = 0
        while true {
            let left = 2 * parent + 1, right = left + 1
            var worst = parent
            if left < heap.count, heap[worst].beats(heap[left]) { worst = left }
            if right < heap.count, heap[worst].beats(heap[right]) { worst = right }
            if worst == parent { break }
            heap.swapAt(parent, worst)
            parent = worst
        }
    }

    func sorted() -> [Candidate] { heap.sorted { $0.beats($1) } }
}

/// Scrolling by a payload value, and facet counts.
extension LocalShard {
    /// The first `limit` (value, point) pairs of the points matching `filter`, ordered by the
    /// values of `orderBy.key` (a point with several values appears once per value), ties by id.
    public func scroll(orderedBy orderBy: OrderBy, filter: Filter?, limit: Int, withPayload: WithPayload, withVector: WithVector) -> [PointRecord] {
        var found: [(value: Double, json: JSONValue, id: PointID, segment: Int, offset: Int)] = []
        for (segment, entry) in segments.entries.enumerated() {
            let data = entry.data
            entry.forEachCandidate(filter) { offset in
                if let filter, !entry.matches(filter, at: offset) { return }
                let root = JSONValue.object(AppendableSegment.decode(data.payloadBytes(at: offset)) ?? JSONObject())
                var seen = Set<Double>()
                for value in PayloadPath.values(orderBy.key, in: root).flatMap(\.elements) {
                    guard let json = OrderBy.orderValue(value), let number = json.doubleValue, seen.insert(number).inserted else { continue }
                    if let start = orderBy.startFrom, orderBy.descending ? number > start : number < start { continue }
                    found.append((number, json, data.id(at: offset), segment, offset))
                }
            }
        }
        found.sort { a, b in a.value != b.value ? (orderBy.descending ? a.value > b.value : a.value < b.value) : a.id < b.id }
        return found.prefix(limit).map { hit in
            var record = segments.entries[hit.segment].record(at: hit.offset, withPayload: withPayload, withVector: withVector)
            record.orderValue = hit.json
            return record
        }
    }

    /// How many points matching `filter` have each value of `key` of the index's type: strings
    /// for keyword, integers, booleans, or UUIDs (in their hyphenated form).
    public func facetCounts(_ key: String, type: PayloadSchemaType, filter: Filter?) -> [JSONValue: Int] {
        var counts: [JSONValue: Int] = [:]
        for entry in segments.entries {
            let data = entry.data
            entry.forEachCandidate(filter) { offset in
                if let filter, !entry.matches(filter, at: offset) { return }
                let root = JSONValue.object(AppendableSegment.decode(data.payloadBytes(at: offset)) ?? JSONObject())
                var values = Set<JSONValue>()
                for value in PayloadPath.values(key, in: root).flatMap(\.elements) {
                    switch (type, value) {
                    case (.keyword, .string), (.integer, .int), (.bool, .bool): values.insert(value)
                    case (.uuid, .string(let s)): if let id = PointID(uuidString: s) { values.insert(.string(id.description)) }
                    default: continue
                    }
                }
                for value in values { counts[value, default: 0] += 1 }
            }
        }
        return counts
    }
}

extension JSONValue {
    /// An array's elements, or the value itself: one level of unwrapping, as conditions do.
    var elements: [JSONValue] {
        if case .array(let elements) = self { return elements }
        return [self]
    }
}
