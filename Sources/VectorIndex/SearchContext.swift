/// A (distance, point) pair; heaps of them are ordered by distance.
public struct Neighbor: Sendable, Equatable {
    public var distance: Float
    public var point: UInt32

    public init(distance: Float, point: UInt32) {
        self.distance = distance
        self.point = point
    }
}

/// A binary heap of neighbors: the nearest on top when `nearestFirst`, else the farthest.
struct NeighborHeap {
    private(set) var items: [Neighbor] = []
    let nearestFirst: Bool

    init(nearestFirst: Bool, capacity: Int) {
        self.nearestFirst = nearestFirst
        items.reserveCapacity(capacity)
    }

    var count: Int { items.count }
    var isEmpty: Bool { items.isEmpty }
    var top: Neighbor { items[0] }

    @inline(__always) private func before(_ a: Neighbor, _ b: Neighbor) -> Bool {
        nearestFirst ? a.distance < b.distance : a.distance > b.distance
    }

    mutating func removeAll() { items.removeAll(keepingCapacity: true) }

    mutating func push(_ item: Neighbor) {
        items.append(item)
        var child = items.count - 1
        while child > 0 {
            let parent = (child - 1) >> 1
            guard before(items[child], items[parent]) else { break }
            items.swapAt(child, parent)
            child = parent
        }
    }

    @discardableResult
    mutating func pop() -> Neighbor {
        let top = items[0]
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            siftDown()
        }
        return top
    }

    /// Replaces the top (cheaper than pop + push).
    mutating func replaceTop(_ item: Neighbor) {
        items[0] = item
        siftDown()
    }

    private mutating func siftDown() {
        var parent = 0
        let n = items.count
        while true {
            let left = 2 * parent + 1
            if left >= n { break }
            var pick = left
            if left + 1 < n && before(items[left + 1], items[left]) { pick = left + 1 }
            guard before(items[pick], items[parent]) else { break }
            items.swapAt(pick, parent)
            parent = pick
        }
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
    var candidates = NeighborHeap(nearestFirst: true, capacity: 256)
    var results = NeighborHeap(nearestFirst: false, capacity: 256)
    var links: [UInt32] = []
    /// ACORN's second marks (points whose links were looked through as 2-hop neighbours) and its
    /// per-step lists; made by the first ACORN search.
    lazy var expanded = VisitedSet(count: count)
    var toScore: [UInt32] = []
    var toExpand: [UInt32] = []
    let count: Int

    public init(count: Int) {
        self.count = count
        visited = VisitedSet(count: count)
    }
}
