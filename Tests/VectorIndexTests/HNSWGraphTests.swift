import Testing
@testable import VectorIndex

/// HNSW recall against exact search on small random data, the graph's invariants, and filtered
/// search.
@Suite struct HNSWGraphTests {
    struct Data {
        let vectors: [Float]
        let queries: [Float]
        let dimension: Int
        var count: Int { vectors.count / dimension }

        init(count: Int, queries: Int, dimension: Int, seed: UInt64) {
            var rng = SplitMix(seed: seed)
            // Clustered points: harder for a graph than uniform noise.
            let centers = (0..<(20 * dimension)).map { _ in Float.random(in: -1...1, using: &rng) }
            func point() -> [Float] {
                let c = Int.random(in: 0..<20, using: &rng)
                return (0..<dimension).map { centers[c * dimension + $0] + Float.random(in: -0.3...0.3, using: &rng) }
            }
            vectors = (0..<count).flatMap { _ in point() }
            self.queries = (0..<queries).flatMap { _ in point() }
            self.dimension = dimension
        }
    }

    func exact(_ data: Data, _ space: VectorSpace, query q: Int, k: Int, accept: (UInt32) -> Bool = { _ in true }) -> [UInt32] {
        data.queries.withUnsafeBufferPointer { queries in
            let query = queries.baseAddress! + q * data.dimension
            let scored: [Neighbor] = (0..<UInt32(data.count)).filter(accept).map { Neighbor(distance: space.distance(query, $0), point: $0) }
            let sorted = scored.sorted { (a: Neighbor, b: Neighbor) -> Bool in a.distance != b.distance ? a.distance < b.distance : a.point < b.point }
            return sorted.prefix(k).map(\.point)
        }
    }

    func recall(_ data: Data, metric: IndexMetric, threads: Int, ef: Int, filter: ((UInt32) -> Bool)? = nil) -> Double {
        recalls(data, metric: metric, threads: threads, efs: [ef], filter: filter)[0]
    }

    /// Recall@10 at each beam width in `efs`, all searched on one graph.
    func recalls(_ data: Data, metric: IndexMetric, threads: Int, efs: [Int], filter: ((UInt32) -> Bool)? = nil) -> [Double] {
        data.vectors.withUnsafeBufferPointer { base in
            let space = VectorSpace(base: base.baseAddress!, count: data.count, dimension: data.dimension, metric: metric)
            let graph = HNSWGraph.build(space, HNSWParameters(m: 16, efConstruct: 100, threads: threads))
            let context = SearchContext(count: data.count)
            var hits = [Int](repeating: 0, count: efs.count), total = 0
            data.queries.withUnsafeBufferPointer { queries in
                for q in 0..<(data.queries.count / data.dimension) {
                    let query = queries.baseAddress! + q * data.dimension
                    let truth = exact(data, space, query: q, k: 10, accept: filter ?? { _ in true })
                    total += truth.count
                    for (i, ef) in efs.enumerated() {
                        let found = filter.map { graph.search(query, k: 10, ef: ef, space: space, filter: AcceptIf($0), context: context) }
                            ?? graph.search(query, k: 10, ef: ef, space: space, filter: AcceptAll(), context: context)
                        if let filter { #expect(found.allSatisfy { filter($0.point) }) }
                        hits[i] += Set(truth).intersection(found.map(\.point)).count
                    }
                }
            }
            return hits.map { Double($0) / Double(total) }
        }
    }

    @Test(arguments: [IndexMetric.l2, .dot, .l1])
    func recallIsHighOnOneThread(metric: IndexMetric) {
        let data = Data(count: 3000, queries: 100, dimension: 24, seed: 1)
        #expect(recall(data, metric: metric, threads: 1, ef: 64) >= 0.95)
    }

    @Test func parallelBuildKeepsRecall() {
        let data = Data(count: 4000, queries: 100, dimension: 24, seed: 2)
        let found = recalls(data, metric: .l2, threads: 2, efs: [10, 64, 200])
        #expect(found[1] >= 0.95)
        // On the same graph, a wider beam finds strictly more.
        #expect(found[0] < found[1] && found[1] <= found[2], "recall at ef 10, 64, 200: \(found)")
    }

    @Test func filteredSearchReturnsOnlyAcceptedPoints() {
        let data = Data(count: 3000, queries: 50, dimension: 16, seed: 3)
        #expect(recall(data, metric: .l2, threads: 1, ef: 128, filter: { $0 % 3 == 0 }) >= 0.95)
    }

    /// Parallel inserts (two threads) must not give a point a link to itself, whatever the
    /// interleaving: several builds, to meet more of them.
    @Test(arguments: [4, 5, 6, 7]) func graphInvariants(seed: UInt64) {
        let data = Data(count: 2000, queries: 0, dimension: 8, seed: seed)
        data.vectors.withUnsafeBufferPointer { base in
            let space = VectorSpace(base: base.baseAddress!, count: data.count, dimension: 8, metric: .l2)
            let graph = HNSWGraph.build(space, HNSWParameters(m: 8, efConstruct: 64, threads: 2))
            #expect(graph.maxLevel == graph.level(of: graph.entryPoint))
            Self.expectInvariants(graph, m: 8)
        }
    }

    /// A build whose stop is requested inserts no more points and skips the repairs: the graph it
    /// returns is incomplete (the caller throws it away). An untouched stop changes nothing.
    @Test(arguments: [1, 2]) func stoppedBuildInsertsNothingMore(threads: Int) {
        let data = Data(count: 3000, queries: 0, dimension: 8, seed: 9)
        data.vectors.withUnsafeBufferPointer { base in
            let space = VectorSpace(base: base.baseAddress!, count: data.count, dimension: 8, metric: .l2)
            let stop = BuildStop()
            stop.request()
            let stopped = HNSWGraph.build(space, HNSWParameters(m: 8, efConstruct: 64, threads: threads, stop: stop))
            #expect(stopped.linkedCount == 0)
            let whole = HNSWGraph.build(space, HNSWParameters(m: 8, efConstruct: 64, threads: threads, stop: BuildStop()))
            #expect(whole.linkedCount == data.count)
        }
    }

    /// Every point's links within capacity, without itself or repeats, to points on that level;
    /// every point reachable from the entry point on level 0.
    static func expectInvariants(_ graph: HNSWGraph, m: Int) {
        var reachable = Set([graph.entryPoint]), frontier = [graph.entryPoint]
        for point in 0..<UInt32(graph.count) {
            for level in 0...graph.level(of: point) {
                let links = graph.neighbors(of: point, level: level)
                #expect(links.count <= (level == 0 ? 2 * m : m))
                #expect(!links.contains(point) && Set(links).count == links.count)
                #expect(links.allSatisfy { graph.level(of: $0) >= level })
            }
        }
        while let point = frontier.popLast() {
            for link in graph.neighbors(of: point, level: 0) where reachable.insert(link).inserted { frontier.append(link) }
        }
        #expect(reachable.count == graph.count)
    }

    /// Payload links join the points of a block (2% of the points, scattered over the clusters)
    /// among themselves, within the reserved room, and survive the file round trip.
    @Test func payloadLinksJoinBlocks() {
        let data = Data(count: 5000, queries: 40, dimension: 16, seed: 8)
        data.vectors.withUnsafeBufferPointer { base in
            let space = VectorSpace(base: base.baseAddress!, count: data.count, dimension: 16, metric: .l2)
            let block = stride(from: UInt32(3), to: UInt32(data.count), by: 50).map { $0 }
            let inBlock = Set(block)
            let graph = HNSWGraph.build(space, HNSWParameters(m: 8, efConstruct: 64, threads: 2), extraLinks: 16)
            func blockLinks() -> Int { block.reduce(0) { $0 + graph.neighbors(of: $1, level: 0).filter(inBlock.contains).count } }
            let before = blockLinks()
            graph.addPayloadLinks(space, blocks: [block], HNSWParameters(m: 8, efConstruct: 64))
            #expect(blockLinks() > before + block.count, "every block point gains links to block mates")
            for point in block {
                let links = graph.neighbors(of: point, level: 0)
                #expect(links.count <= 32 && Set(links).count == links.count && !links.contains(point))
                #expect(links.contains(where: inBlock.contains))
            }
            let copy = try! #require(HNSWGraph.decode(graph.encoded()))
            #expect(copy.level0Capacity == 32 && copy.neighbors(of: block[0], level: 0) == graph.neighbors(of: block[0], level: 0))
            // Filtered to the block, the search finds the block's true neighbours.
            let context = SearchContext(count: data.count)
            var hits = 0
            data.queries.withUnsafeBufferPointer { queries in
                for q in 0..<40 {
                    let truth = exact(data, space, query: q, k: 10, accept: inBlock.contains)
                    let found = graph.search(queries.baseAddress! + q * 16, k: 10, ef: 64, space: space,
                                             filter: AcceptIf(inBlock.contains), context: context)
                    hits += Set(truth).intersection(found.map(\.point)).count
                }
            }
            #expect(Double(hits) / 400 >= 0.95)
        }
    }

    /// Counts the distances a search computes.
    final class CountingScorer: QueryScorer {
        let inner: FloatScorer
        var count = 0
        init(_ inner: FloatScorer) { self.inner = inner }
        func distance(_ point: UInt32) -> Float {
            count += 1
            return inner.distance(point)
        }
        func prefetch(_ point: UInt32) {}
    }

    /// ACORN at selectivities of 5%, 10% and 20% (a random 1 in `oneIn` points, so matches are
    /// seldom linked to each other): only matches come back, with high recall, scoring far fewer
    /// points than the plain filtered walk, which scores every neighbour it meets. (At 2% on
    /// these 6,000 clustered points the matches reachable in two hops run out: recall 0.59.)
    @Test(arguments: [20, 10, 5]) func acornFindsSparseMatchesScoringFewerPoints(oneIn: UInt32) {
        let data = Data(count: 6000, queries: 30, dimension: 16, seed: 21)
        let matches: (UInt32) -> Bool = { ($0 &* 2_654_435_761) % oneIn == 3 }
        data.vectors.withUnsafeBufferPointer { base in
            let space = VectorSpace(base: base.baseAddress!, count: data.count, dimension: data.dimension, metric: .l2)
            let graph = HNSWGraph.build(space, HNSWParameters(m: 16, efConstruct: 100))
            let context = SearchContext(count: data.count)
            var hits = (plain: 0, acorn: 0), scored = (plain: 0, acorn: 0), total = 0
            data.queries.withUnsafeBufferPointer { queries in
                for q in 0..<30 {
                    let query = queries.baseAddress! + q * data.dimension
                    let truth = Set(exact(data, space, query: q, k: 10, accept: matches))
                    total += truth.count
                    let plainScorer = CountingScorer(FloatScorer(space: space, query: query))
                    let plain = graph.search(plainScorer, k: 10, ef: 64, filter: AcceptIf(matches), context: context)
                    let acornScorer = CountingScorer(FloatScorer(space: space, query: query))
                    let acorn = graph.searchACORN(acornScorer, k: 10, ef: 64, filter: AcceptIf(matches), context: context)
                    #expect(acorn.count == 10 && acorn.allSatisfy { matches($0.point) })
                    #expect(acorn.map(\.distance) == acorn.map(\.distance).sorted())
                    hits.plain += truth.intersection(plain.map(\.point)).count
                    hits.acorn += truth.intersection(acorn.map(\.point)).count
                    scored.plain += plainScorer.count
                    scored.acorn += acornScorer.count
                }
            }
            let recall = (plain: Double(hits.plain) / Double(total), acorn: Double(hits.acorn) / Double(total))
            #expect(recall.acorn >= 0.9, "ACORN recall \(recall.acorn), plain \(recall.plain)")
            #expect(scored.acorn * 2 < scored.plain, "scored: ACORN \(scored.acorn), plain \(scored.plain)")
        }
    }

    @Test func tinyGraphs() {
        for count in [0, 1, 2, 5] {
            let vectors = (0..<(count * 4)).map(Float.init)
            vectors.withUnsafeBufferPointer { base in
                let space = VectorSpace(base: base.baseAddress ?? UnsafePointer(bitPattern: 16)!, count: count, dimension: 4, metric: .l2)
                let graph = HNSWGraph.build(space, HNSWParameters())
                let query: [Float] = [0, 1, 2, 3]
                let found = graph.search(query, k: 10, ef: 10, space: space, filter: AcceptAll(), context: SearchContext(count: count))
                #expect(found.map(\.point) == Array(0..<UInt32(count)))
            }
        }
    }
}

@Suite struct HNSWGraphFileTests {
    @Test func roundTripsAndRejectsDamage() {
        let data = HNSWGraphTests.Data(count: 1500, queries: 20, dimension: 8, seed: 5)
        data.vectors.withUnsafeBufferPointer { base in
            let space = VectorSpace(base: base.baseAddress!, count: data.count, dimension: 8, metric: .l2)
            let graph = HNSWGraph.build(space, HNSWParameters(m: 6, efConstruct: 40))
            let bytes = graph.encoded()
            let copy = try! #require(HNSWGraph.decode(bytes))
            #expect(copy.entryPoint == graph.entryPoint && copy.maxLevel == graph.maxLevel && copy.m == 6)
            for point in 0..<UInt32(data.count) {
                #expect(copy.level(of: point) == graph.level(of: point))
                for level in 0...graph.level(of: point) { #expect(copy.neighbors(of: point, level: level) == graph.neighbors(of: point, level: level)) }
            }
            let context = SearchContext(count: data.count)
            data.queries.withUnsafeBufferPointer { q in
                #expect(copy.search(q.baseAddress!, k: 5, ef: 32, space: space, filter: AcceptAll(), context: context)
                        == graph.search(q.baseAddress!, k: 5, ef: 32, space: space, filter: AcceptAll(), context: context))
            }
            var damaged = bytes
            damaged[bytes.count / 2] ^= 1
            #expect(HNSWGraph.decode(damaged) == nil)
            #expect(HNSWGraph.decode(Array(bytes.dropLast())) == nil)
        }
    }

    /// A graph over some of the points never returns the others.
    @Test func subsetGraphsSkipTheRest() {
        let data = HNSWGraphTests.Data(count: 2000, queries: 30, dimension: 8, seed: 6)
        data.vectors.withUnsafeBufferPointer { base in
            let space = VectorSpace(base: base.baseAddress!, count: data.count, dimension: 8, metric: .l2)
            let even = stride(from: UInt32(0), to: UInt32(data.count), by: 2).map { $0 }
            let graph = HNSWGraph.build(space, HNSWParameters(m: 8, efConstruct: 64, threads: 2), only: even)
            let context = SearchContext(count: data.count)
            data.queries.withUnsafeBufferPointer { q in
                for i in 0..<30 {
                    let found = graph.search(q.baseAddress! + i * 8, k: 10, ef: 64, space: space, filter: AcceptAll(), context: context)
                    #expect(found.count == 10 && found.allSatisfy { $0.point % 2 == 0 })
                }
            }
            #expect(graph.neighbors(of: 1, level: 0).isEmpty)
        }
    }

    /// A kept point whose links all went to gone points that lead to no kept point gets no link
    /// from healing; it is inserted again, so it has links and every point stays reachable.
    @Test func aPointStrandedByGonePointsIsInsertedAgain() {
        // Seed of 10 points on a line: 0 links only to 1 and 2 (gone), which link only to 0 and
        // each other; 3…9 form a chain that links to 0.
        let oldVectors: [Float] = (0..<10).flatMap { [Float($0), 0] }
        let seed = HNSWGraph(count: 10, m: 4, levels: [UInt8](repeating: 0, count: 10))
        func link(_ point: UInt32, _ to: [UInt32]) {
            let block = seed.links(point, 0)
            block[0] = UInt32(to.count)
            for (i, n) in to.enumerated() { block[1 + i] = n }
        }
        link(0, [1, 2])
        link(1, [0, 2])
        link(2, [0, 1])
        link(3, [0, 4])
        for p in UInt32(4)..<9 { link(p, [p - 1, p + 1]) }
        link(9, [8])
        seed.entryPoint = 9
        seed.maxLevel = 0
        let map: [Int32] = [0, -1, -1, 1, 2, 3, 4, 5, 6, 7]
        let newVectors: [Float] = [0, 3, 4, 5, 6, 7, 8, 9].flatMap { [Float($0), 0] }
        oldVectors.withUnsafeBufferPointer { old in
            newVectors.withUnsafeBufferPointer { new in
                let oldSpace = VectorSpace(base: old.baseAddress!, count: 10, dimension: 2, metric: .l2)
                let space = VectorSpace(base: new.baseAddress!, count: 8, dimension: 2, metric: .l2)
                #expect(seed.seedablePoints(with: map) == 8)
                let (graph, inserted) = HNSWGraph.build(space, HNSWParameters(m: 4, efConstruct: 16, threads: 1),
                                                        reusing: GraphSeed(graph: seed, map: map, space: oldSpace))
                #expect(inserted == 1)
                #expect(!graph.neighbors(of: 0, level: 0).isEmpty)
                HNSWGraphTests.expectInvariants(graph, m: 4)
            }
        }
    }

    /// A merge's graph built over the largest input's graph: that input's points renumbered and
    /// new points coming in. Only the new points are inserted, and recall and the graph's
    /// invariants hold as for a graph built from nothing, also when some of the input's points
    /// are gone and their links healed. When more than 30% are gone, the graph is built from
    /// nothing.
    @Test(arguments: [0.0, 0.03, 0.2, 0.45]) func seededBuildReusesTheEarlierGraph(gone: Double) {
        let data = HNSWGraphTests.Data(count: 5000, queries: 100, dimension: 24, seed: 9)
        let d = data.dimension, oldCount = 3000
        let parameters = HNSWParameters(m: 16, efConstruct: 100, threads: 2)
        // The new segment: survivors and new points, in an order of its own.
        var rng = SplitMix(seed: 10)
        let survivors = (0..<oldCount).filter { _ in Double.random(in: 0..<1, using: &rng) >= gone }
        let rows = (survivors + (oldCount..<data.count)).shuffled(using: &rng)
        var map = [Int32](repeating: -1, count: oldCount)
        for (offset, row) in rows.enumerated() where row < oldCount { map[row] = Int32(offset) }
        let vectors = rows.flatMap { data.vectors[($0 * d)..<(($0 + 1) * d)] }
        data.vectors.withUnsafeBufferPointer { old in
            vectors.withUnsafeBufferPointer { new in
                let oldSpace = VectorSpace(base: old.baseAddress!, count: oldCount, dimension: d, metric: .l2)
                let earlier = HNSWGraph.build(oldSpace, parameters)
                let space = VectorSpace(base: new.baseAddress!, count: rows.count, dimension: d, metric: .l2)
                let (graph, inserted) = HNSWGraph.build(space, parameters, reusing: GraphSeed(graph: earlier, map: map, space: oldSpace))
                #expect(earlier.seedablePoints(with: map) == (gone <= 0.3 ? survivors.count : 0))
                #expect(inserted == (gone <= 0.3 ? data.count - oldCount : rows.count - 1))
                #expect(graph.maxLevel == graph.level(of: graph.entryPoint))
                HNSWGraphTests.expectInvariants(graph, m: 16)
                let context = SearchContext(count: rows.count)
                func recall(_ graph: HNSWGraph) -> Double {
                    var hits = 0
                    data.queries.withUnsafeBufferPointer { queries in
                        for q in 0..<100 {
                            let query = queries.baseAddress! + q * d
                            let scored: [Neighbor] = (0..<UInt32(rows.count)).map { Neighbor(distance: space.distance(query, $0), point: $0) }
                            let sorted = scored.sorted { (a: Neighbor, b: Neighbor) -> Bool in a.distance != b.distance ? a.distance < b.distance : a.point < b.point }
                            let truth = sorted.prefix(10).map(\.point)
                            let found = graph.search(query, k: 10, ef: 64, space: space, filter: AcceptAll(), context: context)
                            hits += Set(truth).intersection(found.map(\.point)).count
                        }
                    }
                    return Double(hits) / 1000
                }
                let seeded = recall(graph), fresh = recall(HNSWGraph.build(space, parameters))
                #expect(seeded >= 0.95 && seeded >= fresh - 0.01, "recall@10 \(seeded), built from nothing \(fresh)")
            }
        }
    }
}
