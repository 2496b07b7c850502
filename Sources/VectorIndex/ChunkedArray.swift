/// An array kept in chunks of 16,384 elements. Copies share the chunks, and changing a copy
/// duplicates only the chunk it changes: a search can hold a segment's deletion flags while
/// writes go on, and a write then copies 16 KiB of flags rather than all of them.
public struct ChunkedArray<Element>: RandomAccessCollection, MutableCollection {
    @inlinable static var chunkShift: Int { 14 }
    @inlinable static var chunkMask: Int { (1 << chunkShift) - 1 }

    @usableFromInline var chunks: [[Element]]
    public let count: Int

    public init(repeating element: Element, count: Int) {
        self.init(Array(repeating: element, count: count))
    }

    public init(_ elements: [Element]) {
        let size = 1 << Self.chunkShift, total = elements.count
        chunks = stride(from: 0, to: total, by: size).map { Array(elements[$0..<Swift.min(total, $0 + size)]) }
        count = total
    }

    public var startIndex: Int { 0 }
    public var endIndex: Int { count }

    // Inlinable, so other modules read elements without going through generic value witnesses.
    @inlinable @inline(__always) public subscript(position: Int) -> Element {
        get { chunks[position >> Self.chunkShift][position & Self.chunkMask] }
        set { chunks[position >> Self.chunkShift][position & Self.chunkMask] = newValue }
    }
}

extension ChunkedArray: Sendable where Element: Sendable {}
extension ChunkedArray: Equatable where Element: Equatable {}
