import CVectorKernels
import Dispatch
import Foundation
import Synchronization

/// An earlier graph to build from: `map[o]` is the number that the earlier graph's point `o` has
/// in the new space, or -1 when the point is gone. `space` holds the earlier graph's vectors,
/// gone points' included: healing the links that went to gone points measures them.
public struct GraphSeed: Sendable {
    public let graph: HNSWGraph
    public let map: [Int32]
    public let space: VectorSpace

    public init(graph: HNSWGraph, map: [Int32], space: VectorSpace) {
        self.graph = graph
        self.map = map
        self.space = space
    }

    /// The largest share of an earlier graph's points that may be gone for the graph to seed a
    /// build (Qdrant's default `healing_threshold`); with more gone, the graph is built anew.
    public static let healingLimit = 0.3
}

/// Building graphs: from nothing, over an earlier graph (`GraphSeed`), and payload links.
extension HNSWGraph {
    /// Builds the graph over `points` of `space` (every point when nil); the others stay
    /// unlinked, so no search finds them.
    /// `extraLinks` reserves level-0 room for `addPayloadLinks`.
    public static func build(_ space: VectorSpace, _ parameters: HNSWParameters, only points: [UInt32]? = nil,
                             extraLinks: Int = 0) -> HNSWGraph {
        buildOver(space, parameters, only: points, extraLinks: extraLinks).graph
    }

    /// The same build over multivectors, compared by `max_sim` (Qdrant builds its multivector
    /// graphs so: the inserted point's rows are the query).
    public static func build(_ space: MultiVectorSpace, _ parameters: HNSWParameters, only points: [UInt32]? = nil) -> HNSWGraph {
        buildOver(space, parameters, only: points, extraLinks: 0).graph
    }

    /// Builds the graph over `points` of `space` (every point when nil) starting from the links
    /// of an earlier graph (`seed`) instead of from nothing: the seed's points that are among
    /// `points` keep their levels and links, and only the other points are inserted (`inserted`
    /// counts the inserts). A merge of segments builds its graph so over the largest segment's
    /// graph. When some of the seed's points are gone (at most `GraphSeed.healingLimit` of them),
    /// the links that went to them are healed first: each point that lost links looks through
    /// the gone points it linked to, nearest first, for the kept points beyond them, and chooses
    /// its links again among those and its kept links by the diversity heuristic, with links
    /// back. With more gone, or none kept, the graph is built from nothing.
    public static func build(_ space: VectorSpace, _ parameters: HNSWParameters, only points: [UInt32]? = nil,
                             reusing seed: GraphSeed) -> (graph: HNSWGraph, inserted: Int) {
        buildOver(space, parameters, only: points, extraLinks: 0, seed: seed) { seed.space.distance($0, $1) }
    }

    /// Points of the graph: those with level-0 links.
    public var linkedCount: Int { (0..<count).reduce(0) { $0 + (level0[$1 * (level0Capacity + 1)] > 0 ? 1 : 0) } }

    /// How many of the graph's points (those with links) a build whose points `map` gives (see
    /// `GraphSeed`) would carry over, when the graph can seed it: it has the plain layout and at
    /// most `GraphSeed.healingLimit` of its points are gone. 0 when it cannot.
    public func seedablePoints(with map: [Int32]) -> Int {
        guard map.count == count, level0Capacity == m0 else { return 0 }
        var linked = 0, gone = 0
        for point in 0..<count where level0[point * (level0Capacity + 1)] > 0 {
            linked += 1
            if map[point] < 0 { gone += 1 }
        }
        return Double(gone) <= GraphSeed.healingLimit * Double(linked) ? linked - gone : 0
    }

    static func buildOver<Space: GraphPoints>(_ space: Space, _ parameters: HNSWParameters, only points: [UInt32]?,
                                              extraLinks: Int, seed: GraphSeed? = nil,
                                              toSeedPoint: ((Space.Query, UInt32) -> Float)? = nil) -> (graph: HNSWGraph, inserted: Int) {
        var rng = SplitMix(seed: parameters.seed)
        let scale = 1 / log(Double(parameters.m))
        var levels = (0..<space.count).map { _ -> UInt8 in
            let u = Double(rng.next() >> 11) / Double(1 << 53)
            return UInt8(min(15, Int(-log(max(u, 1e-300)) * scale)))
        }
        let all = points ?? Array(0..<UInt32(space.count))
        var included = [Bool](repeating: points == nil, count: space.count)
        if points != nil { for point in all { included[Int(point)] = true } }
        // The seed's points (those with links) that the new graph keeps, by their numbers in
        // both; none when too many are gone.
        var carried: [(old: UInt32, new: UInt32)] = []
        var kept: [Int32] = []
        if let seed, toSeedPoint != nil, seed.graph.m == parameters.m, seed.graph.level0Capacity == seed.graph.m0,
           seed.map.count == seed.graph.count, extraLinks == 0 {
            var gone = 0
            // Only carried points count as kept: a point of the seed without links is not in it.
            kept = [Int32](repeating: -1, count: seed.map.count)
            for (old, new) in seed.map.enumerated() where seed.graph.level0[old * (seed.graph.level0Capacity + 1)] > 0 {
                if new >= 0 && Int(new) < space.count && included[Int(new)] {
                    carried.append((UInt32(old), UInt32(new)))
                    kept[old] = new
                } else {
                    gone += 1
                }
            }
            if Double(gone) > GraphSeed.healingLimit * Double(gone + carried.count) { carried = [] }
            for (old, new) in carried { levels[Int(new)] = UInt8(seed.graph.level(of: old)) }
        }
        let graph = HNSWGraph(count: space.count, m: parameters.m, levels: zip(levels, included).map { $1 ? $0 : 0 },
                              extraLinks: extraLinks)
        var order = all
        let builder = Builder(graph: graph, space: space, efConstruct: parameters.efConstruct)
        if let seed, let toSeedPoint, !carried.isEmpty {
            var isCarried = [Bool](repeating: false, count: space.count)
            for point in carried { isCarried[Int(point.new)] = true }
            // (point, its number in the seed, level) whose links on that level lost points.
            var wounded: [(point: UInt32, old: UInt32, level: Int)] = []
            for (old, new) in carried {
                for level in 0...graph.level(of: new) {
                    let from = seed.graph.links(old, level), to = graph.links(new, level)
                    var n = 0
                    for i in 0..<Int(from[0]) where kept[Int(from[1 + i])] >= 0 {
                        to[1 + n] = UInt32(kept[Int(from[1 + i])])
                        n += 1
                    }
                    to[0] = UInt32(n)
                    if n < Int(from[0]) { wounded.append((new, old, level)) }
                }
            }
            let entry = carried.first { $0.old == seed.graph.entryPoint }?.new ?? carried.max { graph.level(of: $0.new) < graph.level(of: $1.new) }!.new
            graph.entryPoint = entry
            graph.maxLevel = graph.level(of: entry)
            order = all.filter { !isCarried[Int($0)] }
            let healer = Healer(builder: builder, seed: seed.graph, kept: kept, toSeedPoint: toSeedPoint)
            let threads = min(parameters.threads, max(1, wounded.count / 1000))
            let next = Counter(0)
            WorkerThreads.forEach(threads) { _ in
                let context = SearchContext(count: seed.graph.count)
                while true {
                    let index = next.value.wrappingAdd(1, ordering: .relaxed).oldValue
                    if index >= wounded.count { break }
                    healer.heal(wounded[index].point, old: wounded[index].old, level: wounded[index].level, context)
                }
            }
            // A point whose links all went to gone points, with no kept point found beyond them,
            // is inserted again like a new one.
            let stranded = carried.map(\.new).filter { graph.level0[Int($0) * (graph.level0Capacity + 1)] == 0 }
            order += stranded
        }
        var start = 0
        if graph.maxLevel < 0 {
            guard let first = order.first else { return (graph, 0) }
            builder.insertFirst(first)
            start = 1
        }
        let threads = min(parameters.threads, max(1, (order.count - start) / 1000))
        if threads <= 1 {
            let context = SearchContext(count: space.count)
            for point in order.dropFirst(start) {
                if parameters.stop?.requested == true { break }
                builder.insert(point, context)
            }
        } else {
            let next = Counter(start)
            WorkerThreads.forEach(threads) { _ in
                let context = SearchContext(count: space.count)
                while true {
                    let index = next.value.wrappingAdd(1, ordering: .relaxed).oldValue
                    if index >= order.count || parameters.stop?.requested == true { break }
                    builder.insert(order[index], context)
                }
            }
        }
        if parameters.stop?.requested == true { return (graph, 0) }
        builder.linkOrphans(all)
        builder.connectUnreachable(all, stop: parameters.stop)
        return (graph, order.count - start)
    }

    /// Qdrant's payload-aware links: for each block (the points sharing one payload value), an
    /// HNSW graph over the block alone with `parameters.m`, whose level-0 links are added to the
    /// points' own while the reserved room lasts. A filtered search for that value then walks
    /// from match to match instead of relying on the global links alone.
    public func addPayloadLinks(_ space: VectorSpace, blocks: [[UInt32]], _ parameters: HNSWParameters) {
        let stride = level0Capacity + 1
        for block in blocks where block.count > 1 {
            let sub = HNSWGraph.build(space, parameters, only: block)
            let subStride = sub.level0Capacity + 1
            for point in block {
                let own = level0 + Int(point) * stride
                let extra = sub.level0 + Int(point) * subStride
                for i in 0..<Int(extra[0]) {
                    let n = Int(own[0])
                    guard n < level0Capacity else { break }
                    let link = extra[1 + i]
                    if !(0..<n).contains(where: { own[1 + $0] == link }) {
                        own[1 + n] = link
                        own[0] = UInt32(n + 1)
                    }
                }
            }
        }
    }

    final class Builder<Space: GraphPoints>: @unchecked Sendable {
        let graph: HNSWGraph
        let space: Space
        let efConstruct: Int
        /// One spinlock per point, held while its links are read or changed.
        let locks: UnsafeMutablePointer<UInt8>
        /// Held while the entry point changes, and by inserts of points above the top level.
        let entryLock = Mutex<Void>(())

        init(graph: HNSWGraph, space: Space, efConstruct: Int) {
            self.graph = graph
            self.space = space
            self.efConstruct = efConstruct
            locks = .allocate(capacity: max(1, graph.count))
            locks.initialize(repeating: 0, count: max(1, graph.count))
        }

        deinit { locks.deallocate() }

        func insertFirst(_ point: UInt32) {
            graph.entryPoint = point
            graph.maxLevel = graph.level(of: point)
        }

        /// Copies `point`'s links on `level` into `buffer` under its lock.
        @inline(__always) func copyLinks(_ point: UInt32, _ level: Int, into buffer: inout [UInt32]) {
            buffer.removeAll(keepingCapacity: true)
            quiver_spin_lock(locks + Int(point))
            let block = graph.links(point, level)
            for i in 0..<Int(block[0]) { buffer.append(block[1 + i]) }
            quiver_spin_unlock(locks + Int(point))
        }

        func insert(_ point: UInt32, _ context: SearchContext) {
            let level = graph.level(of: point)
            // Points that raise the top level hold the entry lock for their whole insert.
            var (entry, top) = entryLock.withLock { _ in (graph.entryPoint, graph.maxLevel) }
            if level > top {
                entryLock.withLock { _ in
                    (entry, top) = (graph.entryPoint, graph.maxLevel)
                    if level > top {
                        link(point, level: level, entry: entry, top: top, context)
                        graph.entryPoint = point
                        graph.maxLevel = level
                    }
                }
                if level > top { return }
            }
            link(point, level: level, entry: entry, top: top, context)
        }

        private func link(_ point: UInt32, level: Int, entry: UInt32, top: Int, _ context: SearchContext) {
            let query = space.query(point)
            var current = Neighbor(distance: space.distance(query, entry), point: entry)
            if top > level {
                for l in stride(from: top, to: level, by: -1) {
                    current = greedy(query, from: current, level: l, context)
                }
            }
            var entries = [current]
            for l in stride(from: min(level, top), through: 0, by: -1) {
                var found = searchLayer(query, entries: entries, ef: efConstruct, level: l, context)
                // A parallel insert that found this point on a level above may already have linked
                // it in here, so the search can meet the point itself: never its own neighbour.
                found.removeAll { $0.point == point }
                found.sort { $0.distance < $1.distance }
                let chosen = selectNeighbors(found, max: graph.capacity(l))
                // The point's own links (no one else writes them until they are published).
                quiver_spin_lock(locks + Int(point))
                let block = graph.links(point, l)
                block[0] = UInt32(chosen.count)
                for (i, n) in chosen.enumerated() { block[1 + i] = n.point }
                quiver_spin_unlock(locks + Int(point))
                for n in chosen { addLink(from: n.point, to: point, distance: n.distance, level: l) }
                entries = found
            }
        }

        /// Greedy descent on an upper level: move to a nearer neighbour while there is one.
        private func greedy(_ query: Space.Query, from start: Neighbor, level: Int, _ context: SearchContext) -> Neighbor {
            var current = start
            var changed = true
            while changed {
                changed = false
                copyLinks(current.point, level, into: &context.links)
                for link in context.links {
                    let d = space.distance(query, link)
                    if d < current.distance {
                        current = Neighbor(distance: d, point: link)
                        changed = true
                    }
                }
            }
            return current
        }

        /// The `ef` nearest points found from `entries` on `level` (in no order).
        private func searchLayer(_ query: Space.Query, entries: [Neighbor], ef: Int, level: Int, _ context: SearchContext) -> [Neighbor] {
            context.visited.reset()
            context.candidates.removeAll()
            context.results.removeAll()
            for e in entries where context.visited.insert(e.point) {
                context.candidates.push(e)
                context.results.push(e)
                if context.results.count > ef { context.results.pop() }
            }
            while !context.candidates.isEmpty {
                let nearest = context.candidates.pop()
                if context.results.count >= ef && nearest.distance > context.results.top.distance { break }
                copyLinks(nearest.point, level, into: &context.links)
                // The links not visited yet, their vectors asked for before the first is measured.
                var fresh = 0
                for i in context.links.indices where context.visited.insert(context.links[i]) {
                    space.prefetch(context.links[i])
                    context.links[fresh] = context.links[i]
                    fresh += 1
                }
                for link in context.links.prefix(fresh) {
                    let d = space.distance(query, link)
                    if context.results.count < ef || d < context.results.top.distance {
                        context.candidates.push(Neighbor(distance: d, point: link))
                        context.results.push(Neighbor(distance: d, point: link), keeping: ef)
                    }
                }
            }
            return context.results.items
        }

        /// The diversity heuristic: from candidates sorted nearest first, keep one only if it is
        /// nearer to the point than to every neighbour kept before it.
        func selectNeighbors(_ sorted: [Neighbor], max: Int) -> [Neighbor] {
            var kept: [Neighbor] = []
            kept.reserveCapacity(max)
            for candidate in sorted {
                if kept.count >= max { break }
                let vector = space.query(candidate.point)
                var good = true
                for k in kept where space.distance(vector, k.point) < candidate.distance {
                    good = false
                    break
                }
                if good { kept.append(candidate) }
            }
            return kept
        }

        /// Pruning can leave a point that no other point links to on level 0, which no search
        /// then reaches. Each such point gets a link from the nearest of its own neighbours that
        /// has room, or else replaces that neighbour's farthest link to a point other links reach.
        func linkOrphans(_ points: [UInt32]) {
            let stride = graph.level0Capacity + 1
            var incoming = [Int32](repeating: 0, count: graph.count)
            for point in 0..<graph.count {
                let block = graph.level0 + point * stride
                for i in 0..<Int(block[0]) { incoming[Int(block[1 + i])] += 1 }
            }
            for orphan in points where incoming[Int(orphan)] == 0 && orphan != graph.entryPoint {
                let own = graph.level0 + Int(orphan) * stride
                for i in 0..<Int(own[0]) {
                    let node = own[1 + i]
                    let block = graph.level0 + Int(node) * stride
                    let n = Int(block[0])
                    if n < graph.m0 {
                        block[1 + n] = orphan
                        block[0] = UInt32(n + 1)
                        incoming[Int(orphan)] += 1
                        break
                    }
                    let vector = space.query(node)
                    let farthest = (0..<n).filter { incoming[Int(block[1 + $0])] > 1 }
                        .max { space.distance(vector, block[1 + $0]) < space.distance(vector, block[1 + $1]) }
                    guard let slot = farthest else { continue }
                    incoming[Int(block[1 + slot])] -= 1
                    block[1 + slot] = orphan
                    incoming[Int(orphan)] += 1
                    break
                }
            }
        }

        /// Pruning, and concurrent inserts, can also leave small groups of points that link to
        /// each other but that nothing outside them links to: no search from the entry point
        /// reaches them. Each such point gets a level-0 link from the nearest reachable point (to
        /// its free room, or in place of its farthest link to a point that others link to as
        /// well), until every point is reachable or a round makes no progress.
        func connectUnreachable(_ points: [UInt32], stop: BuildStop? = nil) {
            let stride = graph.level0Capacity + 1
            for _ in 0..<8 {
                var reachable = [Bool](repeating: false, count: graph.count)
                var frontier = [graph.entryPoint]
                reachable[Int(graph.entryPoint)] = true
                func spread() {
                    while let point = frontier.popLast() {
                        let block = graph.level0 + Int(point) * stride
                        for i in 0..<Int(block[0]) where !reachable[Int(block[1 + i])] {
                            reachable[Int(block[1 + i])] = true
                            frontier.append(block[1 + i])
                        }
                    }
                }
                spread()
                let lost = points.filter { !reachable[Int($0)] }
                guard !lost.isEmpty else { return }
                var incoming = [Int32](repeating: 0, count: graph.count)
                for point in 0..<graph.count {
                    let block = graph.level0 + point * stride
                    for i in 0..<Int(block[0]) { incoming[Int(block[1 + i])] += 1 }
                }
                for point in lost where !reachable[Int(point)] {
                    if stop?.requested == true { return }
                    let vector = space.query(point)
                    // The nearest reachable point (few points are lost, so a scan is cheap).
                    var best: (node: UInt32, distance: Float)?
                    for candidate in points where reachable[Int(candidate)] {
                        let distance = space.distance(vector, candidate)
                        if best == nil || distance < best!.distance { best = (candidate, distance) }
                    }
                    guard let node = best?.node else { return }
                    let block = graph.level0 + Int(node) * stride
                    let n = Int(block[0])
                    if n < graph.m0 {
                        block[1 + n] = point
                        block[0] = UInt32(n + 1)
                    } else {
                        let nodeVector = space.query(node)
                        guard let slot = (0..<n).filter({ incoming[Int(block[1 + $0])] > 1 })
                            .max(by: { space.distance(nodeVector, block[1 + $0]) < space.distance(nodeVector, block[1 + $1]) }) else { continue }
                        incoming[Int(block[1 + slot])] -= 1
                        block[1 + slot] = point
                    }
                    incoming[Int(point)] += 1
                    reachable[Int(point)] = true
                    frontier = [point]
                    spread()
                }
            }
        }

        /// Makes `chosen` the first links of `point` on `level`; its other links (some may have
        /// come from other points meanwhile) keep the room that is left.
        func replaceLinks(of point: UInt32, with chosen: [Neighbor], level: Int) {
            quiver_spin_lock(locks + Int(point))
            defer { quiver_spin_unlock(locks + Int(point)) }
            let block = graph.links(point, level), capacity = graph.capacity(level)
            var links = chosen.map(\.point)
            for i in 0..<Int(block[0]) where links.count < capacity && !links.contains(block[1 + i]) { links.append(block[1 + i]) }
            block[0] = UInt32(links.count)
            for (i, link) in links.enumerated() { block[1 + i] = link }
        }

        /// Adds a link from `node` to `point`; when `node` is full, re-selects its links among
        /// the old ones and `point` with the heuristic.
        func addLink(from node: UInt32, to point: UInt32, distance: Float, level: Int) {
            let capacity = graph.capacity(level)
            quiver_spin_lock(locks + Int(node))
            defer { quiver_spin_unlock(locks + Int(node)) }
            let block = graph.links(node, level)
            let n = Int(block[0])
            for i in 0..<n where block[1 + i] == point { return }
            if n < capacity {
                block[1 + n] = point
                block[0] = UInt32(n + 1)
                return
            }
            let vector = space.query(node)
            var all = [Neighbor(distance: distance, point: point)]
            all.reserveCapacity(n + 1)
            for i in 0..<n { all.append(Neighbor(distance: space.distance(vector, block[1 + i]), point: block[1 + i])) }
            all.sort { $0.distance < $1.distance }
            let chosen = selectNeighbors(all, max: capacity)
            block[0] = UInt32(chosen.count)
            for (i, c) in chosen.enumerated() { block[1 + i] = c.point }
        }
    }
}

/// Heals a seeded build's links that went to points of the seed that are gone (see
/// `HNSWGraph.build(_:_:only:reusing:)`). Gone points are looked through in the seed's graph and
/// measured with the seed's vectors; they are never linked to.
private final class Healer<Space: GraphPoints>: @unchecked Sendable {
    let builder: HNSWGraph.Builder<Space>
    let seed: HNSWGraph
    /// The seed's points' numbers in the new graph, -1 for gone points.
    let kept: [Int32]
    let toSeedPoint: (Space.Query, UInt32) -> Float

    init(builder: HNSWGraph.Builder<Space>, seed: HNSWGraph, kept: [Int32], toSeedPoint: @escaping (Space.Query, UInt32) -> Float) {
        self.builder = builder
        self.seed = seed
        self.kept = kept
        self.toSeedPoint = toSeedPoint
    }

    /// `point` (`old` in the seed) lost links on `level`. The kept points reached through the gone
    /// points it linked to, nearest first and no farther than the `ef_construct` nearest found,
    /// join its kept links as candidates; the heuristic picks its links among them, and the
    /// picked points link back.
    func heal(_ point: UInt32, old: UInt32, level: Int, _ context: SearchContext) {
        let space = builder.space, ef = builder.efConstruct
        let query = space.query(point)
        context.visited.reset()
        context.candidates.removeAll()
        context.results.removeAll()
        _ = context.visited.insert(old)
        var found: [Neighbor] = []
        let own = seed.links(old, level)
        for i in 0..<Int(own[0]) {
            let link = own[1 + i]
            _ = context.visited.insert(link)
            if kept[Int(link)] >= 0 {
                let new = UInt32(kept[Int(link)])
                found.append(Neighbor(distance: space.distance(query, new), point: new))
            } else {
                context.candidates.push(Neighbor(distance: toSeedPoint(query, link), point: link))
            }
        }
        while !context.candidates.isEmpty {
            let gone = context.candidates.pop()
            if context.results.count >= ef && gone.distance > context.results.top.distance { break }
            let links = seed.links(gone.point, level)
            for i in 0..<Int(links[0]) where context.visited.insert(links[1 + i]) {
                let link = links[1 + i]
                if kept[Int(link)] >= 0 {
                    let new = UInt32(kept[Int(link)])
                    context.results.push(Neighbor(distance: space.distance(query, new), point: new), keeping: ef)
                } else {
                    context.candidates.push(Neighbor(distance: toSeedPoint(query, link), point: link))
                }
            }
        }
        found += context.results.items
        found.sort { $0.distance < $1.distance }
        let chosen = builder.selectNeighbors(found, max: builder.graph.capacity(level))
        builder.replaceLinks(of: point, with: chosen, level: level)
        for link in chosen { builder.addLink(from: link.point, to: point, distance: link.distance, level: level) }
    }
}

/// The next point to insert, shared by a build's threads.
private final class Counter: Sendable {
    let value: Atomic<Int>
    init(_ start: Int) { value = Atomic(start) }
}
