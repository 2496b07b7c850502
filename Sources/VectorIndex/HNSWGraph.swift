import CVectorKernels
import DiskIO
import Dispatch
import Foundation
import Synchronization

/// Parameters of an HNSW build (Qdrant's `hnsw_config`).
public struct HNSWParameters: Sendable {
    /// Links per point on the upper levels; twice as many on level 0.
    public var m: Int
    public var efConstruct: Int
    /// Threads inserting points in parallel.
    public var threads: Int
    public var seed: UInt64
    /// Once requested, the build inserts no more points and returns an incomplete graph, which
    /// the caller throws away.
    public var stop: BuildStop?

    public init(m: Int = 16, efConstruct: Int = 100, threads: Int = 1, seed: UInt64 = 0x5eed, stop: BuildStop? = nil) {
        self.m = max(2, m)
        self.efConstruct = max(self.m, efConstruct)
        self.threads = max(1, threads)
        self.seed = seed
        self.stop = stop
    }
}

/// Asks the builds that hold it to end early: a node shutting down does not wait minutes for an
/// index it would throw away (the points are in the WAL and the segments it replaces).
public final class BuildStop: Sendable {
    private let flag = Atomic<Bool>(false)

    public init() {}

    public func request() { flag.store(true, ordering: .relaxed) }

    public var requested: Bool { flag.load(ordering: .relaxed) }
}

/// A hierarchical navigable small world graph over the points of a `VectorSpace` (Malkov and
/// Yashunin): each point on level 0, a geometrically shrinking share on each level above, every
/// point linked to near neighbours chosen by the diversity heuristic. A search descends greedily
/// from the top and explores level 0 with a beam of `ef` points.
///
/// Links are stored flat: level 0 as `count` blocks of `1 + level0Capacity` UInt32 (a length,
/// then the links), upper levels as blocks of `1 + m` per point and level in `upper`. Level 0
/// holds `m0 = 2m` links from the build and, when payload links were asked for, up to
/// `level0Capacity - m0` more (`addPayloadLinks`).
///
/// The memory is either the graph's own (built, or decoded from bytes) or a loaded file's, which
/// `owner` keeps alive (a memory-mapped graph is searched straight from the page cache).
public final class HNSWGraph: @unchecked Sendable {
    public let count: Int
    public let m: Int
    public let m0: Int
    public let level0Capacity: Int
    let level0: UnsafeMutablePointer<UInt32>
    let levels: UnsafeMutablePointer<UInt8>
    /// Index of a point's first block in `upper` (level 1), or -1.
    let upperStart: UnsafeMutablePointer<Int32>
    let upper: UnsafeMutablePointer<UInt32>
    let upperBlocks: Int
    public internal(set) var entryPoint: UInt32
    public internal(set) var maxLevel: Int
    /// The region the links live in when they are not the graph's own.
    public let owner: AnyObject?

    init(count: Int, m: Int, levels: [UInt8], extraLinks: Int = 0) {
        self.count = count
        self.m = m
        m0 = 2 * m
        level0Capacity = m0 + extraLinks
        owner = nil
        level0 = .allocate(capacity: max(1, count * (level0Capacity + 1)))
        adviseHugePages(level0, count: max(1, count * (level0Capacity + 1)) * MemoryLayout<UInt32>.stride)
        level0.initialize(repeating: 0, count: max(1, count * (level0Capacity + 1)))
        self.levels = .allocate(capacity: max(1, count))
        self.levels.initialize(repeating: 0, count: max(1, count))
        upperStart = .allocate(capacity: max(1, count))
        var blocks = 0
        for (i, level) in levels.enumerated() {
            self.levels[i] = level
            upperStart[i] = level > 0 ? Int32(blocks) : -1
            blocks += Int(level)
        }
        upperBlocks = blocks
        upper = .allocate(capacity: max(1, blocks * (m + 1)))
        upper.initialize(repeating: 0, count: max(1, blocks * (m + 1)))
        entryPoint = 0
        maxLevel = -1
    }

    /// A graph whose arrays are inside memory `owner` keeps alive.
    init(count: Int, m: Int, level0Capacity: Int, level0: UnsafeMutablePointer<UInt32>, levels: UnsafeMutablePointer<UInt8>,
         upperStart: UnsafeMutablePointer<Int32>, upper: UnsafeMutablePointer<UInt32>, upperBlocks: Int,
         entryPoint: UInt32, maxLevel: Int, owner: AnyObject) {
        self.count = count
        self.m = m
        m0 = 2 * m
        self.level0Capacity = level0Capacity
        self.level0 = level0
        self.levels = levels
        self.upperStart = upperStart
        self.upper = upper
        self.upperBlocks = upperBlocks
        self.entryPoint = entryPoint
        self.maxLevel = maxLevel
        self.owner = owner
    }

    deinit {
        guard owner == nil else { return }
        level0.deallocate()
        levels.deallocate()
        upperStart.deallocate()
        upper.deallocate()
    }

    /// The block of `point`'s links on `level`: its length, then the links.
    @inline(__always) func links(_ point: UInt32, _ level: Int) -> UnsafeMutablePointer<UInt32> {
        if level == 0 { return level0 + Int(point) * (level0Capacity + 1) }
        return upper + (Int(upperStart[Int(point)]) + level - 1) * (m + 1)
    }

    @inline(__always) func capacity(_ level: Int) -> Int { level == 0 ? m0 : m }

    public func level(of point: UInt32) -> Int { Int(levels[Int(point)]) }

    /// The links of `point` on `level` (for tests and persistence).
    public func neighbors(of point: UInt32, level: Int) -> [UInt32] {
        let block = links(point, level)
        return Array(UnsafeBufferPointer(start: block + 1, count: Int(block[0])))
    }

    // MARK: Searching

    /// The `k` nearest points to `query` that `filter` accepts, nearest first, exploring level 0
    /// with a beam of `max(ef, k)`. Not for use while the graph is being built.
    @_specialize(exported: true, where F == LivePoints)
    @_specialize(exported: true, where F == AcceptAll)
    public func search<F: PointFilter>(_ query: UnsafePointer<Float>, k: Int, ef: Int, space: VectorSpace, filter: F,
                                       context: SearchContext) -> [Neighbor] {
        search(FloatScorer(space: space, query: query), k: k, ef: ef, filter: filter, context: context)
    }

    /// The same search with distances from `scorer` (float vectors, or quantized codes).
    @_specialize(exported: true, where S == FloatScorer, F == LivePoints)
    @_specialize(exported: true, where S == QuantizedScorer, F == LivePoints)
    @_specialize(exported: true, where S == FloatScorer, F == AcceptAll)
    @_specialize(exported: true, where S == QuantizedScorer, F == AcceptAll)
    public func search<S: QueryScorer, F: PointFilter>(_ scorer: S, k: Int, ef: Int, filter: F, context: SearchContext) -> [Neighbor] {
        guard count > 0, maxLevel >= 0, k > 0 else { return [] }
        let current = descend(scorer)
        let ef = max(ef, k)
        let visited = context.visited
        context.begin(at: current, accepted: filter.accepts(current.point))
        let stride = level0Capacity + 1
        let fresh = context.fresh(capacity: level0Capacity)
        let candidates = context.candidates, results = context.results
        while !candidates.isEmpty {
            let nearest = candidates.pop()
            if results.count >= ef && nearest.distance > results.top.distance { break }
            // The next candidate's links, fetched while this step scores.
            if !candidates.isEmpty { quiver_prefetch_bytes(level0 + Int(candidates.top.point) * stride, stride * 4) }
            // The links not visited yet, their vectors fetched before the first is scored.
            let block = level0 + Int(nearest.point) * stride
            var n = 0
            for i in 0..<Int(block[0]) {
                let link = block[1 + i]
                guard visited.insert(link) else { continue }
                scorer.prefetch(link)
                fresh[n] = link
                n += 1
            }
            for i in 0..<n {
                let link = fresh[i]
                let d = scorer.distance(link)
                if results.count < ef || d < results.top.distance {
                    candidates.push(Neighbor(distance: d, point: link))
                    if filter.accepts(link) { results.push(Neighbor(distance: d, point: link), keeping: ef) }
                }
            }
        }
        return context.nearestResults(k)
    }

    /// The greedy walk from the entry point down the levels above 0: the point to search level 0 from.
    @inline(__always) func descend<S: QueryScorer>(_ scorer: S) -> Neighbor {
        var current = Neighbor(distance: scorer.distance(entryPoint), point: entryPoint)
        for level in stride(from: maxLevel, to: 0, by: -1) {
            var changed = true
            while changed {
                changed = false
                let block = links(current.point, level)
                for i in 0..<Int(block[0]) {
                    let d = scorer.distance(block[1 + i])
                    if d < current.distance {
                        current = Neighbor(distance: d, point: block[1 + i])
                        changed = true
                    }
                }
            }
        }
        return current
    }
}

extension SearchContext {
    /// Clears the marks and heaps for a level-0 walk from `entry`, itself a result when `accepted`.
    @inline(__always) func begin(at entry: Neighbor, accepted: Bool) {
        visited.reset()
        candidates.removeAll()
        results.removeAll()
        _ = visited.insert(entry.point)
        candidates.push(entry)
        if accepted { results.push(entry) }
    }

    /// The `k` nearest of a search's results, nearest first (ties by point).
    func nearestResults(_ k: Int) -> [Neighbor] {
        var found = results.items
        found.sort { $0.distance != $1.distance ? $0.distance < $1.distance : $0.point < $1.point }
        return Array(found.prefix(k))
    }
}

/// A small, fast, seeded generator (SplitMix64): level assignment, samples, test data.
public struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
