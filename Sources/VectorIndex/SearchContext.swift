/// A (distance, point) pair; heaps of them are ordered by distance.
public struct Neighbor: Sendable, Equatable {
    public var distance: Float
    public var point: UInt32

    public init(distance: Float, point: UInt32) {
        self.distance = distance
        self.point = point
    }
}

/// A binary heap of neighbors: the nearest on top when `nearestFirst`, else the farthest. Its
/// storage is its own (no copy-on-write checks in a search's inner loop) and grows by doubling.
final class NeighborHeap {
    private var storage: UnsafeMutablePointer<Neighbor>
    private var capacity: Int
    private(set) var count = 0
    let nearestFirst: Bool

    init(nearestFirst: Bool, capacity: Int) {
        self.nearestFirst = nearestFirst
        self.capacity = max(capacity, 16)
        storage = .allocate(capacity: self.capacity)
    }

    deinit { storage.deallocate() }

    var isEmpty: Bool { count == 0 }
    var top: Neighbor { storage[0] }
    var items: [Neighbor] { Array(UnsafeBufferPointer(start: storage, count: count)) }

    @inline(__always) private func before(_ a: Neighbor, _ b: Neighbor) -> Bool {
        nearestFirst ? a.distance < b.distance : a.distance > b.distance
    }

    func removeAll() { count = 0 }

    @inline(__always) func push(_ item: Neighbor) {
        if count == capacity { grow() }
        var child = count
        count += 1
        while child > 0 {
            let parent = (child - 1) >> 1
            let above = storage[parent]
            guard before(item, above) else { break }
            storage[child] = above
            child = parent
        }
        storage[child] = item
    }

    /// Pushes `item` and keeps the `limit` best (a bounded result set): when full, `item` takes
    /// the top's place if it is better, one sift instead of a push and a pop.
    @inline(__always) func push(_ item: Neighbor, keeping limit: Int) {
        if count < limit { push(item) } else if before(storage[0], item) { replaceTop(item) }
    }

    @discardableResult
    @inline(__always) func pop() -> Neighbor {
        let top = storage[0]
        count -= 1
        if count > 0 { siftDown(storage[count]) }
        return top
    }

    /// Replaces the top (cheaper than pop + push).
    @inline(__always) func replaceTop(_ item: Neighbor) { siftDown(item) }

    /// Puts `item` at the top and moves it down to its place.
    @inline(__always) private func siftDown(_ item: Neighbor) {
        var parent = 0
        let n = count
        while true {
            let left = 2 * parent + 1
            if left >= n { break }
            var pick = left
            if left + 1 < n && before(storage[left + 1], storage[left]) { pick = left + 1 }
            let below = storage[pick]
            guard before(below, item) else { break }
            storage[parent] = below
            parent = pick
        }
        storage[parent] = item
    }

    private func grow() {
        let larger = UnsafeMutablePointer<Neighbor>.allocate(capacity: capacity * 2)
        larger.moveInitialize(from: storage, count: count)
        storage.deallocate()
        storage = larger
        capacity *= 2
    }
}

/// Marks of visited points for one search at a time: a generation counter per point, so that
/// starting a search costs nothing.
final class VisitedSet {
    private var marks: UnsafeMutablePointer<UInt16>
    private let count: Int
    private var generation: UInt16 = 0

    init(count: Int) {
        self.count = count
        marks = .allocate(capacity: max(1, count))
        marks.initialize(repeating: 0, count: max(1, count))
    }

    deinit { marks.deallocate() }

    func reset() {
        generation &+= 1
        if generation == 0 {
            marks.update(repeating: 0, count: max(1, count))
            generation = 1
        }
    }

    @inline(__always) func contains(_ point: UInt32) -> Bool { marks[Int(point)] == generation }

    /// Marks `point`; false if it was already marked in this search.
    @inline(__always) func insert(_ point: UInt32) -> Bool {
        if marks[Int(point)] == generation { return false }
        marks[Int(point)] = generation
        return true
    }
}

/// What one thread needs to search a graph: visited marks and heaps, reused across searches.
/// Used by one thread at a time; may move between threads (pools hand it out).
public final class SearchContext: @unchecked Sendable {
    let visited: VisitedSet
    let candidates = NeighborHeap(nearestFirst: true, capacity: 256)
    let results = NeighborHeap(nearestFirst: false, capacity: 256)
    var links: [UInt32] = []
    /// ACORN's second marks (points whose links were looked through as 2-hop neighbours) and its
    /// per-step lists; made by the first ACORN search.
    lazy var expanded = VisitedSet(count: count)
    var toScore: [UInt32] = []
    var toExpand: [UInt32] = []
    let count: Int
    /// A level-0 step's links not visited before, gathered to be fetched together.
    private var freshLinks: UnsafeMutablePointer<UInt32>
    private var freshCapacity = 64

    public init(count: Int) {
        self.count = count
        visited = VisitedSet(count: count)
        freshLinks = .allocate(capacity: freshCapacity)
    }

    deinit { freshLinks.deallocate() }

    /// Room for a step's unvisited links, at least `capacity` of them.
    @inline(__always) func fresh(capacity: Int) -> UnsafeMutablePointer<UInt32> {
        if capacity > freshCapacity {
            freshLinks.deallocate()
            freshCapacity = capacity
            freshLinks = .allocate(capacity: capacity)
        }
        return freshLinks
    }
}
