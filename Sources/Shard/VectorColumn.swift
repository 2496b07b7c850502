import QuiverModel

/// The vectors of one name in a segment, `dim` elements per offset, in the collection's datatype:
/// 4, 2 or 1 bytes per element in memory and in the segment file. Values reaching a column are
/// already representable in its datatype (the collection converts them), so storing is exact.
enum VectorColumn: Sendable {
    case float32([Float])
    case float16([Float16])
    case uint8([UInt8])

    init(_ datatype: Datatype?) {
        switch datatype {
        case .float16?: self = .float16([])
        case .uint8?: self = .uint8([])
        case .float32?, .turbo4?, nil: self = .float32([])
        }
    }

    /// An empty column of the same datatype.
    var emptyLike: VectorColumn {
        switch self {
        case .float32: .float32([])
        case .float16: .float16([])
        case .uint8: .uint8([])
        }
    }

    var elementBytes: Int {
        switch self {
        case .float32: 4
        case .float16: 2
        case .uint8: 1
        }
    }

    var datatypeName: String {
        switch self {
        case .float32: "float32"
        case .float16: "float16"
        case .uint8: "uint8"
        }
    }

    /// Each mutation first takes the array out of `self`, so it is uniquely referenced and grows or
    /// changes in place instead of being copied.
    mutating func appendZeros(_ count: Int) {
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
        }
    }

    /// Writes `vector` at element index `start`.
    mutating func set(_ vector: [Float], at start: Int) {
        let range = start..<(start + vector.count)
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
        }
    }

    func get(_ range: Range<Int>) -> [Float] {
        switch self {
        case .float32(let a): Array(a[range])
        case .float16(let a): a[range].map { Float($0) }
        case .uint8(let a): a[range].map { Float($0) }
        }
    }

    /// Raw little-endian bytes of elements `range`, as stored in the file.
    func bytes(_ range: Range<Int>) -> [UInt8] {
        switch self {
        case .float32(let a): a[range].withUnsafeBytes { Array($0) }
        case .float16(let a): a[range].withUnsafeBytes { Array($0) }
        case .uint8(let a): Array(a[range])
        }
    }

    /// A column of `count` elements from file bytes (missing bytes read as zero).
    static func load(_ datatype: Datatype?, bytes: [UInt8], count: Int) -> VectorColumn {
        var column = VectorColumn(datatype)
        column.appendZeros(count)
        let usable = min(bytes.count, count * column.elementBytes)
        func fill<T>(_ array: inout [T]) {
            array.withUnsafeMutableBytes { dst in
                bytes.withUnsafeBytes { src in dst.copyMemory(from: UnsafeRawBufferPointer(rebasing: src[0..<usable])) }
            }
        }
        switch column {
        case .float32(var a): column = .float32([]); fill(&a); column = .float32(a)
        case .float16(var a): column = .float16([]); fill(&a); column = .float16(a)
        case .uint8(var a): column = .uint8([]); fill(&a); column = .uint8(a)
        }
        return column
    }
}
