import QuiverModel

/// How ids are stored in the binary formats: a tag and two 64-bit words.
extension PointID {
    static let numberTag: UInt8 = 0
    static let uuidTag: UInt8 = 1

    /// (tag, number or UUID high half, UUID low half or 0).
    var storageWords: (UInt8, UInt64, UInt64) {
        switch self {
        case .number(let n): (Self.numberTag, n, 0)
        case .uuid(let high, let low): (Self.uuidTag, high, low)
        }
    }

    init(storageTag tag: UInt8, _ a: UInt64, _ b: UInt64) {
        self = tag == Self.uuidTag ? .uuid(a, b) : .number(a)
    }
}
