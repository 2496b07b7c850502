public import QuiverJSON

/// A multivector: `count` vectors of `dimension` elements each, stored one after another in
/// `flat` (ColBERT-style token embeddings). Never empty: validation refuses an empty list.
public struct MultiVector: Codable, Sendable, Equatable, Hashable {
    public let dimension: Int
    public var flat: [Float]

    public init(dimension: Int, flat: [Float]) {
        precondition(dimension > 0 && flat.count % dimension == 0, "a multivector holds whole vectors")
        self.dimension = dimension
        self.flat = flat
    }

    /// `rows` must be non-empty and of one length (the parser checks).
    public init(rows: [[Float]]) {
        self.init(dimension: rows[0].count, flat: rows.flatMap { $0 })
    }

    public var count: Int { flat.count / dimension }

    public var rows: [[Float]] {
        stride(from: 0, to: flat.count, by: dimension).map { Array(flat[$0..<($0 + dimension)]) }
    }

    public var json: JSONValue { .array(rows.map(PointRecord.floats)) }

    /// The multivector with each row replaced by `transform(row)` (same length).
    public func mapRows(_ transform: ([Float]) -> [Float]) -> MultiVector {
        MultiVector(dimension: dimension, flat: rows.flatMap(transform))
    }
}

extension PointsJSON {
    /// Whether `value` is a list of lists: the JSON form of a multivector.
    static func isMulti(_ value: JSONValue) -> Bool {
        if case .array(let elements) = value, case .array? = elements.first { true } else { false }
    }

    /// A multivector `[[…], […]]`. An empty list, an empty row and rows of different lengths are
    /// validation errors (422) at `<validationPath>.data`, as Qdrant names them.
    static func multi(_ value: JSONValue, _ path: String, validationPath: String) throws(Failure) -> MultiVector {
        let list = try array(value, path)
        let at = join(validationPath, "data")
        guard !list.isEmpty else { throw Failure(path: at, message: "multi vector must not be empty", isValidation: true) }
        var rows: [[Float]] = []
        rows.reserveCapacity(list.count)
        for (i, element) in list.enumerated() { rows.append(try dense(element, "\(path)[\(i)]")) }
        if rows.contains(where: \.isEmpty) {
            throw Failure(path: at, message: "all vectors must be non-empty", isValidation: true)
        }
        let total = rows.reduce(0) { $0 + $1.count }
        guard total < MultiVector.maxFlattened else {
            throw Failure(path: at, message: "Total size of all vectors (\(total)) must be less than \(MultiVector.maxFlattened)", isValidation: true)
        }
        if let odd = rows.first(where: { $0.count != rows[0].count }) {
            throw Failure(path: at, message: "all vectors must have the same dimension, found vector with dimension \(odd.count)",
                          isValidation: true)
        }
        return MultiVector(rows: rows)
    }
}

extension MultiVector {
    /// Most elements one multivector may hold, as in Qdrant's release builds.
    public static let maxFlattened = 1024 * 1024
}
