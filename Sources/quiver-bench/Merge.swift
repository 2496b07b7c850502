import Foundation
import VectorIndex

/// `quiver-bench merge`: see the usage in main.swift.
func runMerge(_ options: Options) throws {
    let dataset = try Dataset(directory: options.data)
    let (base, queries, metric) = dataset.indexed()
    let d = dataset.dimension, oldCount = Int(Double(dataset.count) * (1 - options.newShare))
    let parameters = HNSWParameters(m: options.m, efConstruct: options.efConstruct, threads: options.threads)
    let queryCount = min(options.filterQueries, dataset.queryCount)
    log("\(dataset.count) points of \(d)-d (\(dataset.metric)): earlier graph over \(oldCount), \(dataset.count - oldCount) new")
    base.withUnsafeBufferPointer { old in
        let oldSpace = VectorSpace(base: old.baseAddress!, count: oldCount, dimension: d, metric: metric)
        var start = now()
        let earlier = HNSWGraph.build(oldSpace, parameters)
        log(String(format: "earlier graph: %.2f s", now() - start))
        for gone in options.gone {
            var rng = SplitMix(seed: 17)
            let survivors = (0..<oldCount).filter { _ in Double(rng.next() >> 11) / Double(1 << 53) >= gone }
            var rows = survivors + Array(oldCount..<dataset.count)
            rows.shuffle(using: &rng)
            var map = [Int32](repeating: -1, count: oldCount)
            for (offset, row) in rows.enumerated() where row < oldCount { map[row] = Int32(offset) }
            let vectors = rows.flatMap { base[($0 * d)..<(($0 + 1) * d)] }
            vectors.withUnsafeBufferPointer { new in
                let space = VectorSpace(base: new.baseAddress!, count: rows.count, dimension: d, metric: metric)
                start = now()
                let (healed, inserted) = HNSWGraph.build(space, parameters, reusing: GraphSeed(graph: earlier, map: map, space: oldSpace))
                let healSeconds = now() - start
                start = now()
                let fresh = HNSWGraph.build(space, parameters)
                let freshSeconds = now() - start
                log(String(format: "gone %.2f: over the earlier graph %.2f s (%d inserted), from nothing %.2f s", gone, healSeconds, inserted,
                           freshSeconds))
                queries.withUnsafeBufferPointer { q in
                    let truth = (0..<queryCount).map { i in
                        (0..<UInt32(rows.count)).map { Neighbor(distance: space.distance(q.baseAddress! + i * d, $0), point: $0) }
                            .sorted { $0.distance < $1.distance }.prefix(options.k).map(\.point)
                    }
                    let context = SearchContext(count: rows.count)
                    for ef in options.efs {
                        for (label, graph) in [("healed", healed), ("fresh", fresh)] {
                            var hits = 0
                            for i in 0..<queryCount {
                                let found = graph.search(q.baseAddress! + i * d, k: options.k, ef: ef, space: space, filter: AcceptAll(), context: context)
                                hits += Set(truth[i]).intersection(found.map(\.point)).count
                            }
                            var best = 0.0
                            for _ in 0..<3 {
                                let t = now()
                                for i in 0..<queryCount {
                                    _ = graph.search(q.baseAddress! + i * d, k: options.k, ef: ef, space: space, filter: AcceptAll(), context: context)
                                }
                                best = max(best, Double(queryCount) / (now() - t))
                            }
                            log(String(format: "  ef %4d %@: recall@%d %.4f, %.0f queries/s", ef, label, options.k,
                                       Double(hits) / Double(queryCount * options.k), best))
                        }
                    }
                }
            }
        }
    }
}
