import Foundation
public import QuiverJSON

/// A sparse vector: the non-zero dimensions (`indices`) and their weights (`values`), kept sorted
/// by index (Qdrant sorts on write and returns them sorted). Zero weights given are kept.
public struct SparseVector: Codable, Sendable, Equatable, Hashable {
    public private(set) var indices: [UInt32]
    public private(set) var values: [Float]

    /// `indices` unique and as long as `values`; sorts them.
    public init(indices: [UInt32], values: [Float]) {
        precondition(indices.count == values.count, "a sparse vector has one value per index")
        if zip(indices, indices.dropFirst()).allSatisfy({ $0 < $1 }) {
            self.indices = indices
            self.values = values
        } else {
            let order = indices.indices.sorted { indices[$0] < indices[$1] }
            self.indices = order.map { indices[$0] }
            self.values = order.map { values[$0] }
        }
    }

    public init() {
        indices = []
        values = []
    }

    public var isEmpty: Bool { indices.isEmpty }
    public var count: Int { indices.count }

    /// The dot product over the indices both vectors have, or nil when they share none (such a
    /// point is no match for a sparse search, as in Qdrant).
    public func dot(_ other: SparseVector) -> Float? {
        var i = 0, j = 0
        var sum: Float = 0
        var overlap = false
        while i < indices.count && j < other.indices.count {
            let a = indices[i], b = other.indices[j]
            if a == b {
                sum += values[i] * other.values[j]
                overlap = true
                i += 1
                j += 1
            } else if a < b {
                i += 1
            } else {
                j += 1
            }
        }
        return overlap ? sum : nil
    }

    /// The same indices with each value multiplied by `weight(index)` (the `idf` modifier).
    public func weighted(_ weight: (UInt32) -> Float) -> SparseVector {
        var result = self
        for i in values.indices { result.values[i] = values[i] * weight(indices[i]) }
        return result
    }

    public var json: JSONValue {
        ["indices": .array(indices.map { .uint(UInt64($0)) }), "values": PointRecord.floats(values)]
    }

    /// Bytes in storage: u32 count, the indices, the values.
    public var storageBytes: Int { 4 + 8 * indices.count }

    /// The inverse-document-frequency weight Qdrant's `idf` modifier gives a dimension found in
    /// `df` of `n` vectors: ln((n − df + 0.5) / (df + 0.5) + 1).
    public static func idf(n: Int, df: Int) -> Float {
        let ratio = (Double(n) - Double(df) + 0.5) / (Double(df) + 0.5)
        return Float(Foundation.log(ratio + 1))
    }
}

/// How many of a shard's vectors of one sparse name there are, and how many hold each index:
/// the statistics the `idf` modifier needs, summed over every shard of a collection.
public struct SparseStatistics: Codable, Sendable, Equatable {
    public var vectors: Int
    public var documentFrequency: [UInt32: Int]

    public init(vectors: Int = 0, documentFrequency: [UInt32: Int] = [:]) {
        self.vectors = vectors
        self.documentFrequency = documentFrequency
    }

    public mutating func add(_ other: SparseStatistics) {
        vectors += other.vectors
        documentFrequency.merge(other.documentFrequency, uniquingKeysWith: +)
    }

    /// `query` with each value multiplied by its index's idf.
    public func idfWeighted(_ query: SparseVector) -> SparseVector {
        query.weighted { SparseVector.idf(n: vectors, df: documentFrequency[$0] ?? 0) }
    }
}

extension PointsJSON {
    /// A sparse vector `{"indices": [...], "values": [...]}`. Wrong types are format errors (400);
    /// lengths that differ and repeated indices are validation errors (422) at `<validationPath>`
    /// `.values` / `.indices`, as Qdrant names them.
    public static func sparse(_ value: JSONValue, _ path: String, validationPath: String? = nil) throws(Failure) -> SparseVector {
        let body = try object(value, path)
        try allowOnly(body, ["indices", "values"], path)
        guard let rawIndices = body["indices"] else { throw fail(path, "missing field `indices`") }
        guard let rawValues = body["values"] else { throw fail(path, "missing field `values`") }
        var indices: [UInt32] = []
        for (i, element) in try array(rawIndices, join(path, "indices")).enumerated() {
            let number: UInt64? = switch element {
            case .uint(let n): n
            case .int(let n) where n >= 0: UInt64(n)
            default: nil
            }
            guard let number, number <= UInt64(UInt32.max) else {
                throw fail("\(join(path, "indices"))[\(i)]", "invalid value: \(element.kindDescription), expected an integer between 0 and 4294967295")
            }
            indices.append(UInt32(number))
        }
        let values = try dense(rawValues, join(path, "values"))
        let at = validationPath ?? path
        guard indices.count == values.count else {
            throw Failure(path: join(at, "values"), message: "Validation error: must be the same length as indices [{}]", isValidation: true)
        }
        guard Set(indices).count == indices.count else {
            throw Failure(path: join(at, "indices"), message: "Validation error: must be unique [{}]", isValidation: true)
        }
        return SparseVector(indices: indices, values: values)
    }

    static func isSparse(_ value: JSONValue) -> Bool {
        if case .object(let object) = value { object["indices"] != nil || object["values"] != nil } else { false }
    }
}
