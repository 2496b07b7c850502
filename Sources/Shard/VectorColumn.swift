import DiskIO
import QuiverModel

/// The vectors of one name in a segment, `dim` elements per offset, in the collection's datatype:
/// 4, 2 or 1 bytes per element in memory and in the segment file. Values reaching a column are
/// already representable in its datatype (the collection converts them), so storing is exact.
///
/// The elements are in arrays, or, for a vector stored on disk, in `ScratchMemory` (`mapped`):
/// memory the kernel can write out and drop, so a write segment of such vectors does not hold
/// the process's memory. Both are values: a mapped column shared with a copy of the segment (an
/// optimization's input) is copied before it changes.
enum VectorColumn: Sendable {
    case float32([Float])
    case float16([Float16])
    case uint8([UInt8])
    case mapped(MappedColumn)

    init(_ datatype: Datatype?) {
        switch datatype {
        case .float16?: self = .float16([])
        case .uint8?: self = .uint8([])
        case .float32?, .turbo4?, nil: self = .float32([])
        }
    }

    /// An empty column in `memory` (a mapped one when it is file-backed).
    init(_ datatype: Datatype?, in memory: ScratchMemory) {
        self = VectorColumn(datatype).emptyLike(in: memory)
    }

    /// An empty column of the same datatype, in arrays.
    var emptyLike: VectorColumn {
        switch self {
        case .float32: .float32([])
        case .float16: .float16([])
        case .uint8: .uint8([])
        case .mapped(let column): column.kind
        }
    }

    /// An empty column of the same datatype, in `memory` when given.
    func emptyLike(in memory: ScratchMemory?) -> VectorColumn {
        memory.map { .mapped(MappedColumn(kind: emptyLike, memory: $0)) } ?? emptyLike
    }

    var elementBytes: Int {
        switch self {
        case .float32: 4
        case .float16: 2
        case .uint8: 1
        case .mapped(let column): column.kind.elementBytes
        }
    }

    var datatypeName: String {
        switch self {
        case .float32: "float32"
        case .float16: "float16"
        case .uint8: "uint8"
        case .mapped(let column): column.kind.datatypeName
        }
    }

    /// Whether the elements are in memory the kernel can write out to a file and drop.
    var isFileBacked: Bool {
        if case .mapped(let column) = self { column.memory.isFileBacked } else { false }
    }

    /// Bytes of elements held in the process's own memory (all of them, unless file-backed).
    var residentBytes: Int {
        switch self {
        case .float32(let a): a.count * 4
        case .float16(let a): a.count * 2
        case .uint8(let a): a.count
        case .mapped(let column): column.memory.isFileBacked ? 0 : column.count * column.kind.elementBytes
        }
    }

    /// The mapped column, made unique first (copied when a copy of the segment shares it).
    private mutating func uniqueMapped() -> MappedColumn? {
        guard case .mapped(var column) = self else { return nil }
        self = .uint8([])
        if !isKnownUniquelyReferenced(&column) { column = column.copy() }
        self = .mapped(column)
        return column
    }

    /// Each mutation first takes the array out of `self`, so it is uniquely referenced and grows or
    /// changes in place instead of being copied.
    mutating func appendZeros(_ count: Int) {
        if let column = uniqueMapped() {
            column.count += count
            column.memory.reserve(column.count * column.kind.elementBytes)
            return
        }
        switch self {
        case .float32(var a):
            self = .float32([])
            a.append(contentsOf: repeatElement(0, count: count))
            self = .float32(a)
        case .float16(var a):
            self = .float16([])
            a.append(contentsOf: repeatElement(0, count: count))
            self = .float16(a)
        case .uint8(var a):
            self = .uint8([])
            a.append(contentsOf: repeatElement(0, count: count))
            self = .uint8(a)
        case .mapped: break
        }
    }

    /// Writes `vector` at element index `start`.
    mutating func set(_ vector: [Float], at start: Int) {
        let range = start..<(start + vector.count)
        if let column = uniqueMapped() {
            column.set(vector, at: start)
            return
        }
        switch self {
        case .float32(var a):
            self = .float32([])
            a.replaceSubrange(range, with: vector)
            self = .float32(a)
        case .float16(var a):
            self = .float16([])
            a.replaceSubrange(range, with: vector.map { Float16($0) })
            self = .float16(a)
        case .uint8(var a):
            self = .uint8([])
            a.replaceSubrange(range, with: vector.map { UInt8(clamping: Int($0)) })
            self = .uint8(a)
        case .mapped: break
        }
    }

    func get(_ range: Range<Int>) -> [Float] {
        switch self {
        case .float32(let a): Array(a[range])
        case .float16(let a): a[range].map { Float($0) }
        case .uint8(let a): a[range].map { Float($0) }
        case .mapped(let column): column.get(range)
        }
    }

    /// Raw little-endian bytes of elements `range`, as stored in the file.
    func bytes(_ range: Range<Int>) -> [UInt8] {
        switch self {
        case .float32(let a): a[range].withUnsafeBytes { Array($0) }
        case .float16(let a): a[range].withUnsafeBytes { Array($0) }
        case .uint8(let a): Array(a[range])
        case .mapped(let column):
            range.isEmpty ? [] : Array(UnsafeRawBufferPointer(start: column.memory.base! + range.lowerBound * column.kind.elementBytes,
                                         count: range.count * column.kind.elementBytes))
        }
    }

    /// Writes the raw bytes of elements `range` to `file` at `offset`, straight from scratch memory
    /// when the column is mapped.
    func write(_ range: Range<Int>, to file: any DiskFile, at offset: UInt64) throws(DiskError) {
        guard case .mapped(let column) = self else { return try file.write(bytes(range), at: offset) }
        guard !range.isEmpty else { return }
        let size = column.kind.elementBytes
        try file.write(UnsafeRawBufferPointer(start: column.memory.base! + range.lowerBound * size, count: range.count * size), at: offset)
    }

    /// Calls `body` with the float32 elements from element `start` on, when the column holds
    /// float32 elements; with nil otherwise.
    func withFloat32Elements<R>(from start: Int, _ body: (UnsafePointer<Float>?) -> R) -> R {
        switch self {
        case .float32(let a): a.withUnsafeBufferPointer { body($0.baseAddress.map { $0 + start }) }
        case .mapped(let column) where column.kind.elementBytes == 4:
            body(column.memory.base.map { $0.assumingMemoryBound(to: Float.self) + start })
        default: body(nil)
        }
    }

    /// A column of `count` elements from file bytes (missing bytes read as zero), in `memory`
    /// when given.
    static func load(_ datatype: Datatype?, bytes: UnsafeRawBufferPointer, count: Int, in memory: ScratchMemory? = nil) -> VectorColumn {
        var column = memory.map { VectorColumn(datatype, in: $0) } ?? VectorColumn(datatype)
        column.appendZeros(count)
        let usable = min(bytes.count, count * column.elementBytes)
        if case .mapped(let mapped) = column {
            if usable > 0 { mapped.memory.base!.copyMemory(from: bytes.baseAddress!, byteCount: usable) }
            return column
        }
        func fill<T>(_ array: inout [T]) {
            array.withUnsafeMutableBytes { dst in
                dst.copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[0..<usable]))
            }
        }
        switch column {
        case .float32(var a): column = .float32([]); fill(&a); column = .float32(a)
        case .float16(var a): column = .float16([]); fill(&a); column = .float16(a)
        case .uint8(var a): column = .uint8([]); fill(&a); column = .uint8(a)
        case .mapped: break
        }
        return column
    }
}

/// The elements of a mapped column: `count` elements of `kind`'s datatype from the start of
/// `memory`. Changed only through `VectorColumn`, when it holds the only reference.
final class MappedColumn: @unchecked Sendable {
    /// An empty array column of the datatype, standing for it.
    let kind: VectorColumn
    let memory: ScratchMemory
    var count = 0

    init(kind: VectorColumn, memory: ScratchMemory) {
        self.kind = kind
        self.memory = memory
    }

    func copy() -> MappedColumn {
        let other = MappedColumn(kind: kind, memory: memory.copy(count * kind.elementBytes))
        other.count = count
        return other
    }

    func set(_ vector: [Float], at start: Int) {
        let base = memory.base!
        switch kind {
        case .float16:
            let target = base.assumingMemoryBound(to: Float16.self) + start
            for (i, value) in vector.enumerated() { target[i] = Float16(value) }
        case .uint8:
            let target = base.assumingMemoryBound(to: UInt8.self) + start
            for (i, value) in vector.enumerated() { target[i] = UInt8(clamping: Int(value)) }
        default:
            vector.withUnsafeBufferPointer { (base.assumingMemoryBound(to: Float.self) + start).update(from: $0.baseAddress!, count: $0.count) }
        }
    }

    func get(_ range: Range<Int>) -> [Float] {
        guard !range.isEmpty, let base = memory.base else { return [] }
        switch kind {
        case .float16: return UnsafeBufferPointer(start: base.assumingMemoryBound(to: Float16.self) + range.lowerBound, count: range.count).map { Float($0) }
        case .uint8: return UnsafeBufferPointer(start: base.assumingMemoryBound(to: UInt8.self) + range.lowerBound, count: range.count).map { Float($0) }
        default: return Array(UnsafeBufferPointer(start: base.assumingMemoryBound(to: Float.self) + range.lowerBound, count: range.count))
        }
    }
}

/// Where write segments keep dense vectors and payloads: those stored on disk (`on_disk: true`,
/// `on_disk_payload: true`) in file-backed scratch memory in the shard's directory, the others in
/// arrays.
struct SegmentMemory: Sendable {
    var disk: (any Disk)?
    var directory = ""
    var onDisk: Set<String> = []
    var payloadsOnDisk = false

    static let arrays = SegmentMemory()

    /// Scratch memory for vector `name`, nil when it is kept in arrays.
    func scratch(for name: String) -> ScratchMemory? {
        guard let disk, onDisk.contains(name) else { return nil }
        return disk.scratchMemory(in: directory)
    }

    /// Scratch memory for payloads, nil when they are kept in arrays.
    func payloadScratch() -> ScratchMemory? {
        guard let disk, payloadsOnDisk else { return nil }
        return disk.scratchMemory(in: directory)
    }

    func column(_ name: String, _ datatype: Datatype?) -> VectorColumn {
        scratch(for: name).map { VectorColumn(datatype, in: $0) } ?? VectorColumn(datatype)
    }
}
